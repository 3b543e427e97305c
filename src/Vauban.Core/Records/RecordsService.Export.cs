// Bulk $export (FHIR Bulk Data Access v2) through the one door. A kick-off records a job — the request, never
// data — after the policy (scopes and role for every type), the guard (a contained principal gets nothing; a
// stated reason is required) and a size estimate computed with the policy's own filter: above the
// establishment's threshold the job waits for a second person's approval (ExportApprovals). Each NDJSON file
// is generated when it is downloaded, from the current versions the policy lets the principal see, as of the
// job's transaction time; the guard weighs the patients it carries, and every part is audited (one entry per
// patient in each part of about 500 resources, action Export) before it is written to the response.
using System.Buffers;
using System.Data.Common;
using System.Text;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Guard;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Records;

public sealed partial class RecordsService
{
    /// <summary>The type code binding a job's sealed reason (never a resource type).</summary>
    internal const int ExportReasonTypeCode = 9001;

    /// <summary>Rows written per audited part of a file.</summary>
    private const int ExportPart = 500;

    private static readonly byte[] NewLine = "\n"u8.ToArray();

    /// <summary>About how many bytes of a file are gathered before they are written to the response.</summary>
    private const int ExportWriteBytes = 64 * 1024;

    /// <summary>
    /// Kick-off: checks, estimates and records a job. <paramref name="types"/> null = every type the principal may export
    /// (at Patient level, every type of the Patient compartment). <paramref name="requestUrl"/> is echoed in the manifest.
    /// </summary>
    public async Task<ExportOutcome> ExportAsync(AccessContext context, ExportLevel level, IReadOnlyList<string>? types, long? since, string requestUrl,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(requestUrl);
        var chosen = new List<string>();
        if (types is not null)
        {
            foreach (var type in types.Distinct(StringComparer.Ordinal))
            {
                if (!TypeCodes.TryGet(type, out _))
                    return ExportOutcome.Fail(RecordStatus.Invalid, Issue.Invalid($"_type: '{Shorten(type)}' is not a supported type. Supported: {string.Join(", ", TypeCodes.Names)}.", "_type"));
                if (level == ExportLevel.Patient && !AccessPolicy.HasCompartment(type))
                    return ExportOutcome.Fail(RecordStatus.Invalid, Issue.Invalid($"_type: {type} is not in the Patient compartment; export it at system level ([base]/$export).", "_type"));
                var decision = _policy.Authorize(context, Interaction.Export, type);
                if (!decision.Allowed)
                {
                    await AuditRefusalAsync(context, Interaction.Export, type, null, decision.Reason!, cancellationToken);
                    return ExportOutcome.Fail(RecordStatus.Forbidden, Issue.Forbidden(decision.Reason! + " (a bulk export needs read and search on each type it exports)"));
                }
                chosen.Add(type);
            }
        }
        else
        {
            chosen.AddRange(TypeCodes.Names.Order(StringComparer.Ordinal)
                .Where(t => (level == ExportLevel.System || AccessPolicy.HasCompartment(t)) && _policy.Authorize(context, Interaction.Export, t).Allowed));
            if (chosen.Count == 0)
            {
                const string refusal = "The granted scopes allow exporting no resource type (read and search are needed, e.g. system/*.rs).";
                await _audit.AppendAsync(context, AuditAction.Export, AuditOutcome.MinorFailure, null, [], cancellationToken, "refused by the access policy: " + refusal);
                return ExportOutcome.Fail(RecordStatus.Forbidden, Issue.Forbidden(refusal));
            }
        }
        if (chosen.Count == 0) return ExportOutcome.Fail(RecordStatus.Invalid, Issue.Invalid("_type names no type.", "_type"));

        var admitted = await _guard.AdmitExportRequestAsync(context, cancellationToken);
        if (admitted.Verdict != GuardVerdict.Admit)
        {
            await _audit.AppendAsync(context, AuditAction.Export, AuditOutcome.MinorFailure, null, [], cancellationToken, "bulk export refused by the guard: " + admitted.Verdict);
            return ExportOutcome.Fail(admitted.Verdict == GuardVerdict.ReasonRequired ? RecordStatus.Forbidden : RecordStatus.Locked,
                Issue.Error(admitted.Verdict == GuardVerdict.ReasonRequired ? "business-rule" : "security", admitted.Reason!));
        }

        var limits = _guard.Options.ExportFor(context.Tenant);
        var now = _time.GetUtcNow();
        var jobs = new ExportJobRows(_database);
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        // Checked before the size is estimated (the costly part), and again where the job is stored.
        if (await jobs.CountActiveAsync(keys, context.Principal.Id, now.ToUnixTimeMilliseconds(), cancellationToken) >= limits.MaxJobsPerPrincipal)
        {
            return await TooManyJobsAsync(context, limits, cancellationToken);
        }

        var probe = new ExportJob("", context.Tenant.Id, context.Principal.Id, level, chosen, since, now.ToUnixTimeMilliseconds(), requestUrl, 0, 0,
            ExportStatus.Ready, now, now + limits.JobLifetime, null, null);
        var patients = new HashSet<string>(StringComparer.Ordinal);
        var resources = 0;
        foreach (var type in chosen)
        {
            var (count, ofPatients) = await ExportSizeAsync(context, probe, type, cancellationToken);
            resources += count;
            patients.UnionWith(ofPatients);
        }
        var needsApproval = patients.Count > limits.ApprovalAbovePatients || resources > limits.ApprovalAboveResources;
        var job = probe with
        {
            Id = ExportJob.NewId(),
            Patients = patients.Count,
            Resources = resources,
            Status = needsApproval ? ExportStatus.AwaitingApproval : ExportStatus.Ready,
        };
        if (!await jobs.InsertAsync(job, keys, context.StatedReason!, limits.MaxJobsPerPrincipal, cancellationToken))
        {
            return await TooManyJobsAsync(context, limits, cancellationToken);
        }
        var summary = $"bulk export {job.Id} requested: {string.Join(",", chosen)}, {patients.Count} patient(s), {resources} resource(s)"
            + (needsApproval ? $"; above the threshold ({limits.ApprovalAbovePatients} patients or {limits.ApprovalAboveResources} resources), awaiting approval" : "");
        await _audit.AppendAsync(context, AuditAction.Export, AuditOutcome.Success, null, [new AuditedRecord("export:" + job.Id, null, null)], cancellationToken, summary);
        if (needsApproval)
        {
            await _guard.RaiseAsync(context.Tenant.Id, KnownAlertKinds.ExportApprovalRequested, context.Principal.Id,
                $"{context.Principal.Id} asks to export {Counted.En(patients.Count, "patient", "patients")}, {Counted.En(resources, "resource", "resources")} ({string.Join(", ", chosen)}); job {job.Id}. "
                + $"Approve or deny: vauban guard approve-export|deny-export --tenant {context.Tenant.Name} {job.Id}, or the security console.", cancellationToken);
        }
        return new ExportOutcome(RecordStatus.Ok, job);
    }

    /// <summary>Bulk Data's answer to a client that would hold more jobs than it may: 429, after an audit entry.</summary>
    private async Task<ExportOutcome> TooManyJobsAsync(AccessContext context, ExportLimits limits, CancellationToken cancellationToken)
    {
        await _audit.AppendAsync(context, AuditAction.Export, AuditOutcome.MinorFailure, null, [], cancellationToken,
            $"bulk export refused: {limits.MaxJobsPerPrincipal} export jobs already at once");
        return ExportOutcome.Fail(RecordStatus.TooManyRequests, Issue.Error("too-costly",
            $"At most {limits.MaxJobsPerPrincipal} export jobs at a time: download or cancel (DELETE the status URL) earlier ones first."));
    }

    /// <summary>The status of one of the principal's jobs; when ready, its files and their current counts.</summary>
    public async Task<ExportOutcome> ExportStatusAsync(AccessContext context, string jobId, CancellationToken cancellationToken)
    {
        var (found, _, refused) = await OwnJobAsync(context, jobId, cancellationToken);
        if (found is not { } job) return refused!;
        if (job.Status != ExportStatus.Ready) return new ExportOutcome(RecordStatus.Ok, job);
        var files = new List<ExportFile>();
        foreach (var type in job.Types)
        {
            // Scopes can shrink after the kick-off (a new token): only what may still be exported is listed.
            if (!_policy.Authorize(context, Interaction.Export, type).Allowed) continue;
            var count = await ExportCountAsync(context, job, type, cancellationToken);
            if (count > 0) files.Add(new ExportFile(type, count));
        }
        return new ExportOutcome(RecordStatus.Ok, job, files);
    }

    /// <summary>DELETE on the status URL: the job is forgotten (it held no data).</summary>
    public async Task<ExportOutcome> CancelExportAsync(AccessContext context, string jobId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!ExportJob.IsValidId(jobId)
            || !await new ExportJobRows(_database).DeleteAsync(await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken), context.Principal.Id, jobId, cancellationToken))
        {
            return ExportOutcome.Fail(RecordStatus.NotFound, Issue.NotFound("No such export job (unknown, expired, or not yours)."));
        }
        await _audit.AppendAsync(context, AuditAction.Export, AuditOutcome.Success, null, [new AuditedRecord("export:" + jobId, null, null)], cancellationToken, $"bulk export {jobId} cancelled");
        return new ExportOutcome(RecordStatus.NoContent);
    }

    /// <summary>
    /// One NDJSON file of a ready job: the guard is asked about every patient it carries before anything is written;
    /// then it is written in parts, each audited before it leaves.
    /// </summary>
    public async Task<ExportDownload> ExportFileAsync(AccessContext context, string jobId, string type, CancellationToken cancellationToken)
    {
        var (found, reason, refused) = await OwnJobAsync(context, jobId, cancellationToken);
        if (found is not { } job) return ExportDownload.Fail(refused!.Status, [.. refused.Issues!]);
        if (job.Status != ExportStatus.Ready || !job.Types.Contains(type, StringComparer.Ordinal))
            return ExportDownload.Fail(RecordStatus.NotFound, Issue.NotFound("No such export file (the job is not ready, or did not ask for this type)."));
        if (await CheckAsync(context, Interaction.Export, type, null, cancellationToken) is { } denied) return ExportDownload.Fail(denied.Status, [.. denied.Issues!]);
        var (records, patients) = await ExportSizeAsync(context, job, type, cancellationToken);
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        // The audit entries of the download carry the reason stated at kick-off.
        var audited = context with { StatedReason = reason };
        // The second person approved the size estimated at kick-off, and an approved file is not weighed again. Nothing the job
        // selects can appear after its transaction time, so a file larger than that means the principal's reach widened since
        // (new care relationships, a break-the-glass grant): what was added was never approved, so the file is refused.
        if (job.Approved && (patients.Count > job.Patients || records > job.Resources))
        {
            var grown = $"This export now covers {patients.Count} patient(s) and {records} {type} resource(s), more than the {job.Patients} patient(s) and "
                + $"{job.Resources} resource(s) approved: nothing was exported. Request a new export; it will be sized and approved again.";
            await _audit.AppendAsync(audited, AuditAction.Export, AuditOutcome.MinorFailure, type, [new AuditedRecord("export:" + job.Id, null, null)], cancellationToken,
                $"bulk export {job.Id}, {type}: refused, larger than approved ({patients.Count} patient(s), {records} resource(s))");
            return ExportDownload.Fail(RecordStatus.Forbidden, Issue.Error("business-rule", grown));
        }
        var decision = await _guard.AdmitExportAsync(audited, new GuardRequest(Interaction.Export, type, records, patients, patients)
        {
            Identities = type == KnownResourceTypes.Patient ? patients : [],
        }, job.Approved, cancellationToken);
        if (decision.Delay > TimeSpan.Zero) await Task.Delay(decision.Delay, cancellationToken);
        if (decision.Verdict != GuardVerdict.Admit)
        {
            await AuditAsync(audited, AuditAction.Containment, AuditOutcome.MinorFailure, type, [new AuditedRecord("export:" + job.Id, null, null)], cancellationToken,
                note: $"guard: {decision.Verdict} (bulk export {job.Id}, {type}, {patients.Count} patient(s))");
            var held = RecordResult.Held(decision, type);
            return ExportDownload.Fail(held.Status, [.. held.Issues!]);
        }
        return new ExportDownload(RecordStatus.Ok, (stream, ct) => WriteExportAsync(audited, job, type, keys, patients, stream, ct));
    }

    private async Task<bool> WriteExportAsync(AccessContext context, ExportJob job, string type, TenantKeys keys, HashSet<string> admitted, Stream output,
        CancellationToken cancellationToken)
    {
        await _policy.PrepareAsync(context, cancellationToken); // the grants the policy's filter opens, as they are now
        var after = 0L;
        var pending = new ArrayBufferWriter<byte>(ExportWriteBytes);
        while (true)
        {
            // Contained meanwhile (another request crossed a bound, the officer acted): the file stops here, and says so — a
            // file that merely ended would pass for the whole of it.
            if (await _guard.ContainmentRefusalAsync(context, cancellationToken) is { } contained)
            {
                await AuditAsync(context, AuditAction.Containment, AuditOutcome.MinorFailure, type, [new AuditedRecord("export:" + job.Id, null, null)], cancellationToken,
                    note: $"guard: {contained.Verdict} (bulk export {job.Id}, {type}: stopped before its end)");
                return false;
            }
            List<StoredVersion> rows;
            using (var command = _database.NewCommand())
            {
                ExportQuery(command, context, job, type, SearchSql.Columns, " AND r.rid > @after ORDER BY r.rid" + Sql.Limit(ExportPart));
                command.With("after", after);
                rows = await _database.QueryAsync(command, static async (DbDataReader reader, CancellationToken ct) =>
                {
                    var found = new List<StoredVersion>();
                    while (await reader.ReadAsync(ct)) found.Add(ResourceRows.ReadRow(reader));
                    return found;
                }, cancellationToken);
            }
            if (rows.Count == 0) return true;
            after = rows[^1].Rid;
            // Only the patients the guard was asked about leave (a record that moved to another patient since is left out).
            rows.RemoveAll(r => r.Compartment is { } patient && !admitted.Contains(patient));
            if (rows.Count == 0) continue;
            // A damaged record stops the file like a containment (audited as a serious failure, the officer alerted).
            var (bodies, damaged) = await OpenAllAsync(context, Interaction.Export, type, keys, rows, null, cancellationToken);
            if (damaged is not null) return false;
            await AuditAsync(context, AuditAction.Export, AuditOutcome.Success, type,
                rows.Select(r => new AuditedRecord(type, r.Id, r.Compartment)).ToList(), cancellationToken, note: $"bulk export {job.Id}");
            // Every write to the response is a flush and an HTTP chunk: lines are gathered into writes of about 64 KiB, not two per resource.
            foreach (var body in bodies)
            {
                pending.Write(OneLine(body!));
                pending.Write(NewLine);
                if (pending.WrittenCount >= ExportWriteBytes) await WritePendingAsync(output, pending, cancellationToken);
            }
            await WritePendingAsync(output, pending, cancellationToken);
        }
    }

    private static async Task WritePendingAsync(Stream output, ArrayBufferWriter<byte> pending, CancellationToken cancellationToken)
    {
        if (pending.WrittenCount == 0) return;
        await output.WriteAsync(pending.WrittenMemory, cancellationToken);
        pending.ResetWrittenCount();
    }

    /// <summary>NDJSON: one resource per line. Stored JSON is compact; anything else is rewritten compactly.</summary>
    private static byte[] OneLine(byte[] json)
    {
        if (Array.IndexOf(json, (byte)'\n') < 0 && Array.IndexOf(json, (byte)'\r') < 0) return json;
        using var document = JsonDocument.Parse(json);
        using var buffer = new MemoryStream(json.Length);
        using (var writer = new Utf8JsonWriter(buffer)) document.WriteTo(writer);
        return buffer.ToArray();
    }

    /// <summary>The job, if it is this principal's in this tenant and has not expired; a contained principal is refused.</summary>
    private async Task<(ExportJob? Job, string? Reason, ExportOutcome? Refused)> OwnJobAsync(AccessContext context, string jobId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (await _guard.ContainmentRefusalAsync(context, cancellationToken) is { } contained)
        {
            // A contained principal polling or downloading an export (an approved file pulled from a suspended session) is what the
            // officer wants to see: on the chain, naming the job (when the id can be one).
            await AuditAsync(context, AuditAction.Containment, AuditOutcome.MinorFailure, null,
                [new AuditedRecord("export:" + (ExportJob.IsValidId(jobId) ? jobId : "?"), null, null)], cancellationToken,
                note: $"guard: {contained.Verdict} (bulk export status or file)");
            return (null, null, ExportOutcome.Fail(RecordStatus.Locked, Issue.Error("security", contained.Reason!)));
        }
        var found = ExportJob.IsValidId(jobId)
            ? await new ExportJobRows(_database).FindAsync(await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken), jobId, _time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken)
            : null;
        // Another principal's job is not revealed.
        if (found is not { } f || !string.Equals(f.Job.Principal, context.Principal.Id, StringComparison.Ordinal))
            return (null, null, ExportOutcome.Fail(RecordStatus.NotFound, Issue.NotFound("No such export job (unknown, expired, or not yours).")));
        return (f.Job, f.Reason, null);
    }

    /// <summary>How many current resources of <paramref name="type"/> the job covers and the policy lets the principal see, and the patients they concern.</summary>
    private async Task<(int Resources, HashSet<string> Patients)> ExportSizeAsync(AccessContext context, ExportJob job, string type, CancellationToken cancellationToken)
    {
        await _policy.PrepareAsync(context, cancellationToken);
        using var command = _database.NewCommand();
        ExportQuery(command, context, job, type, "r.compartment, count(*)", " GROUP BY r.compartment");
        return await _database.QueryAsync(command, static async (DbDataReader reader, CancellationToken ct) =>
        {
            var resources = 0;
            var patients = new HashSet<string>(StringComparer.Ordinal);
            while (await reader.ReadAsync(ct))
            {
                resources += Convert.ToInt32(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture);
                if (!reader.IsDBNull(0)) patients.Add(reader.GetString(0));
            }
            return (resources, patients);
        }, cancellationToken);
    }

    /// <summary>How many current resources of <paramref name="type"/> the job covers and the policy lets the principal see: the
    /// manifest's count, counted by the database (a poll, repeated every few seconds, must not carry every patient id of the file).</summary>
    private async Task<int> ExportCountAsync(AccessContext context, ExportJob job, string type, CancellationToken cancellationToken)
    {
        await _policy.PrepareAsync(context, cancellationToken);
        using var command = _database.NewCommand();
        ExportQuery(command, context, job, type, "count(*)", "");
        return await _database.QueryAsync(command, static async (DbDataReader reader, CancellationToken ct) =>
            await reader.ReadAsync(ct) ? Convert.ToInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture) : 0, cancellationToken);
    }

    /// <summary>The one selection of an export, for sizes and for files: the job's type, current and not deleted, last updated
    /// between _since and the transaction time, in the Patient compartment at Patient level, and what the policy lets the principal see.</summary>
    private void ExportQuery(DbCommand command, AccessContext context, ExportJob job, string type, string columns, string tail)
    {
        var sql = new StringBuilder($"SELECT {columns} FROM resources r WHERE r.tenant_id = @t AND r.type = @ty AND r.deleted = 0 AND r.last_updated <= @tt");
        command.With("t", context.Tenant.Id).With("ty", TypeCodes.Of(type)).With("tt", job.TransactionTime);
        if (job.Since is { } since)
        {
            sql.Append(" AND r.last_updated >= @since");
            command.With("since", since);
        }
        if (job.Level == ExportLevel.Patient) sql.Append(" AND r.compartment IS NOT NULL");
        if (_policy.FilterFor(context, type, command, Engine) is { } allowed) sql.Append(" AND ").Append(allowed);
        command.CommandText = sql.Append(tail).ToString();
    }
}
