// Bulk $export (FHIR Bulk Data Access v2) through the one door. A kick-off records a job — the request, never
// data — after the policy (scopes and role for every type), the guard (a contained principal gets nothing; a
// stated reason is required) and a size estimate computed with the policy's own filter: above the
// establishment's threshold the job waits for a second person's approval (ExportApprovals). Each NDJSON file
// is generated when it is downloaded, from the current versions the policy lets the principal see, as of the
// job's transaction time; the guard weighs the patients it carries, and every part is audited (one entry per
// patient, action Export) before it is written to the response.
using System.Data.Common;
using System.Security.Cryptography;
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
                if (!decision.Allowed) return ExportOutcome.Fail(RecordStatus.Forbidden, Issue.Forbidden(decision.Reason! + " (a bulk export needs read and search on each type it exports)"));
                chosen.Add(type);
            }
        }
        else
        {
            chosen.AddRange(TypeCodes.Names.Order(StringComparer.Ordinal)
                .Where(t => (level == ExportLevel.System || AccessPolicy.HasCompartment(t)) && _policy.Authorize(context, Interaction.Export, t).Allowed));
            if (chosen.Count == 0) return ExportOutcome.Fail(RecordStatus.Forbidden, Issue.Forbidden("The granted scopes allow exporting no resource type (read and search are needed, e.g. system/*.rs)."));
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
        if (await jobs.CountActiveAsync(context.Tenant.Id, context.Principal.Id, now.ToUnixTimeMilliseconds(), cancellationToken) >= limits.MaxJobsPerPrincipal)
        {
            return ExportOutcome.Fail(RecordStatus.Conflict, Issue.Error("too-costly",
                $"At most {limits.MaxJobsPerPrincipal} export jobs at a time: download or cancel (DELETE the status URL) earlier ones first."));
        }

        var probe = new ExportJob("", context.Tenant.Id, context.Principal.Id, level, chosen, since, now.ToUnixTimeMilliseconds(), requestUrl, 0, 0,
            ExportStatus.Ready, now, now + limits.JobLifetime, null, null);
        var patients = new HashSet<string>(StringComparer.Ordinal);
        var resources = 0;
        foreach (var type in chosen)
        {
            foreach (var (_, compartment) in await ExportCandidatesAsync(context, probe, type, cancellationToken))
            {
                resources++;
                if (compartment is not null) patients.Add(compartment);
            }
        }
        var needsApproval = patients.Count > limits.ApprovalAbovePatients || resources > limits.ApprovalAboveResources;
        var job = probe with
        {
            Id = Base64Url(RandomNumberGenerator.GetBytes(16)),
            Patients = patients.Count,
            Resources = resources,
            Status = needsApproval ? ExportStatus.AwaitingApproval : ExportStatus.Ready,
        };
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var sealedReason = RecordCipher.Seal(keys, ExportReasonTypeCode, job.Id, 1, Encoding.UTF8.GetBytes(context.StatedReason!), compress: false);
        await jobs.InsertAsync(job, sealedReason, cancellationToken);
        var summary = $"bulk export {job.Id} requested: {string.Join(",", chosen)}, {patients.Count} patient(s), {resources} resource(s)"
            + (needsApproval ? $"; above the threshold ({limits.ApprovalAbovePatients} patients or {limits.ApprovalAboveResources} resources), awaiting approval" : "");
        await _audit.AppendAsync(context, AuditAction.Export, AuditOutcome.Success, null, [new AuditedRecord("export:" + job.Id, null, null)], cancellationToken, summary);
        if (needsApproval)
        {
            await _guard.RaiseAsync(context.Tenant.Id, KnownAlertKinds.ExportApprovalRequested, context.Principal.Id,
                $"{context.Principal.Id} asks to export {patients.Count} patient(s), {resources} resource(s) ({string.Join(",", chosen)}); job {job.Id}. "
                + $"Approve or deny: vauban guard approve-export|deny-export --tenant {context.Tenant.Name} {job.Id}, or the security console.", cancellationToken);
        }
        return new ExportOutcome(RecordStatus.Ok, job);
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
            var count = (await ExportCandidatesAsync(context, job, type, cancellationToken)).Count;
            if (count > 0) files.Add(new ExportFile(type, count));
        }
        return new ExportOutcome(RecordStatus.Ok, job, files);
    }

    /// <summary>DELETE on the status URL: the job is forgotten (it held no data).</summary>
    public async Task<ExportOutcome> CancelExportAsync(AccessContext context, string jobId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!ExportJob.IsValidId(jobId) || !await new ExportJobRows(_database).DeleteAsync(context.Tenant.Id, context.Principal.Id, jobId, cancellationToken))
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
        var (found, sealedReason, refused) = await OwnJobAsync(context, jobId, cancellationToken);
        if (found is not { } job) return ExportDownload.Fail(refused!.Status, [.. refused.Issues!]);
        if (job.Status != ExportStatus.Ready || !job.Types.Contains(type, StringComparer.Ordinal))
            return ExportDownload.Fail(RecordStatus.NotFound, Issue.NotFound("No such export file (the job is not ready, or did not ask for this type)."));
        if (Check(context, Interaction.Export, type) is { } denied) return ExportDownload.Fail(denied.Status, [.. denied.Issues!]);
        var candidates = await ExportCandidatesAsync(context, job, type, cancellationToken);
        var patients = new HashSet<string>(StringComparer.Ordinal);
        var counted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, compartment) in candidates)
        {
            if (compartment is null) continue;
            patients.Add(compartment);
            counted.Add(compartment);
        }
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var reason = Encoding.UTF8.GetString(RecordCipher.Open(keys, ExportReasonTypeCode, job.Id, 1, sealedReason));
        // The audit entries of the download carry the reason stated at kick-off.
        var audited = context with { StatedReason = reason };
        var decision = await _guard.AdmitExportAsync(audited, new GuardRequest(Interaction.Export, type, candidates.Count, patients, counted), job.Approved, cancellationToken);
        if (decision.Delay > TimeSpan.Zero) await Task.Delay(decision.Delay, cancellationToken);
        if (decision.Verdict != GuardVerdict.Admit)
        {
            await AuditAsync(audited, AuditAction.Containment, AuditOutcome.MinorFailure, type, [new AuditedRecord("export:" + job.Id, null, null)], cancellationToken,
                note: $"guard: {decision.Verdict} (bulk export {job.Id}, {type}, {patients.Count} patient(s))");
            return ExportDownload.Fail(decision.Verdict switch
            {
                GuardVerdict.StepUp => RecordStatus.ReauthenticationRequired,
                GuardVerdict.ReasonRequired => RecordStatus.Forbidden,
                _ => RecordStatus.Locked,
            }, Issue.Error(decision.Verdict == GuardVerdict.StepUp ? "login" : decision.Verdict == GuardVerdict.ReasonRequired ? "business-rule" : "security", decision.Reason!));
        }
        return new ExportDownload(RecordStatus.Ok, (stream, ct) => WriteExportAsync(audited, job, type, keys, candidates, stream, ct));
    }

    private async Task WriteExportAsync(AccessContext context, ExportJob job, string type, TenantKeys keys, List<(long Rid, string? Compartment)> candidates, Stream output,
        CancellationToken cancellationToken)
    {
        var start = 0;
        while (start < candidates.Count)
        {
            // A part ends at a patient boundary when it can, so that a patient's records share one audit entry.
            var end = Math.Min(start + ExportPart, candidates.Count);
            while (end < candidates.Count && end - start < ExportPart * 2 && candidates[end].Compartment is { } c && c == candidates[end - 1].Compartment) end++;
            var part = candidates.GetRange(start, end - start);
            start = end;
            List<StoredVersion> rows;
            using (var command = _database.NewCommand())
            {
                command.CommandText = $"SELECT {SearchSql.Columns} FROM resources r WHERE r.tenant_id = @t AND r.deleted = 0 AND r.last_updated <= @tt AND "
                    + command.InList(Engine, "r.rid", "rid", part.Select(p => p.Rid).ToList());
                command.With("t", context.Tenant.Id).With("tt", job.TransactionTime);
                var byRid = await _database.QueryAsync(command, async (reader, ct) =>
                {
                    var found = new Dictionary<long, StoredVersion>();
                    while (await reader.ReadAsync(ct)) { var row = ResourceRows.ReadRow(reader); found[row.Rid] = row; }
                    return found;
                }, cancellationToken);
                // Changed or deleted since the estimate: left out (the next export, _since the transaction time, has it).
                rows = part.Where(p => byRid.ContainsKey(p.Rid)).Select(p => byRid[p.Rid]).ToList();
            }
            if (rows.Count == 0) continue;
            await AuditAsync(context, AuditAction.Export, AuditOutcome.Success, type,
                rows.Select(r => new AuditedRecord(type, r.Id, r.Compartment)).ToList(), cancellationToken, note: $"bulk export {job.Id}");
            foreach (var row in rows)
            {
                await output.WriteAsync(OneLine(Open(keys, row)), cancellationToken);
                await output.WriteAsync(NewLine, cancellationToken);
            }
        }
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
    private async Task<(ExportJob? Job, byte[]? SealedReason, ExportOutcome? Refused)> OwnJobAsync(AccessContext context, string jobId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (await _guard.ContainmentRefusalAsync(context, cancellationToken) is { } contained)
        {
            return (null, null, ExportOutcome.Fail(RecordStatus.Locked, Issue.Error("security", contained.Reason!)));
        }
        var found = ExportJob.IsValidId(jobId)
            ? await new ExportJobRows(_database).FindAsync(context.Tenant.Id, jobId, _time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken)
            : null;
        // Another principal's job is not revealed.
        if (found is not { } f || !string.Equals(f.Job.Principal, context.Principal.Id, StringComparison.Ordinal))
            return (null, null, ExportOutcome.Fail(RecordStatus.NotFound, Issue.NotFound("No such export job (unknown, expired, or not yours).")));
        return (f.Job, f.SealedReason, null);
    }

    /// <summary>(rid, patient) of every current resource of <paramref name="type"/> the job covers and the policy lets the principal see, grouped by patient.</summary>
    private async Task<List<(long Rid, string? Compartment)>> ExportCandidatesAsync(AccessContext context, ExportJob job, string type, CancellationToken cancellationToken)
    {
        using var command = _database.NewCommand();
        var sql = new StringBuilder("SELECT r.rid, r.compartment FROM resources r WHERE r.tenant_id = @t AND r.type = @ty AND r.deleted = 0 AND r.last_updated <= @tt");
        command.With("t", context.Tenant.Id).With("ty", TypeCodes.Of(type)).With("tt", job.TransactionTime);
        if (job.Since is { } since)
        {
            sql.Append(" AND r.last_updated >= @since");
            command.With("since", since);
        }
        if (job.Level == ExportLevel.Patient) sql.Append(" AND r.compartment IS NOT NULL");
        if (_policy.FilterFor(context, type, command, Engine) is { } allowed) sql.Append(" AND ").Append(allowed);
        sql.Append(" ORDER BY r.compartment, r.rid");
        command.CommandText = sql.ToString();
        return await _database.QueryAsync(command, static async (DbDataReader reader, CancellationToken ct) =>
        {
            var list = new List<(long, string?)>();
            while (await reader.ReadAsync(ct)) list.Add((reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1)));
            return list;
        }, cancellationToken);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
