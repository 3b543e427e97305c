// Break-the-glass: a person opens a patient's record outside their care relationships, in an emergency.
// They must state a reason from a fixed list plus free text, and have proven both factors within the
// last few minutes; the grant lasts a limited time, is marked in the audit trail, and the security
// officer is told at once. The free text may name clinical facts: it is stored encrypted, and its digest is on the audit chain
// (Audit.SecurityRecords), so an explanation rewritten in the database fails `vauban audit verify`. The row that grants carries a MAC
// under the store's key (ADR 0014, AuthenticatedTable.Grants): a grant written or changed in the database grants nothing.
using System.Security.Cryptography;
using System.Text;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records;
using Vauban.Storage;

namespace Vauban.Access;

public static class KnownBreakGlassReasons
{
    public const string Emergency = "emergency";
    public const string ContinuityOfCare = "continuity-of-care";
    public const string PatientRequest = "patient-request";
    public const string OnCall = "on-call";
    public const string Other = "other";

    public static IReadOnlyDictionary<string, string> Labels { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [Emergency] = "Medical emergency",
        [ContinuityOfCare] = "Continuity of care (patient transferred or referred to me)",
        [PatientRequest] = "At the patient's request, patient present",
        [OnCall] = "On-call duty, patient under my care tonight",
        [Other] = "Other (explain below)",
    };
}

public sealed record BreakGlassGrant(string Patient, string Reason, DateTimeOffset GrantedAt, DateTimeOffset ExpiresAt);

/// <summary>A grant as the security officer reviews it: who, for which patient, the reason and the explanation they stated.</summary>
public sealed record ReviewedGrant(long Id, string Principal, string Patient, string Reason, string Explanation, DateTimeOffset GrantedAt, DateTimeOffset ExpiresAt)
{
    /// <summary>What a review of <paramref name="grants"/> puts on the chain besides the act: each grant under its patient, so that
    /// the patient's access history shows who read the emergency stated about them (the explanation may hold clinical words).</summary>
    public static IReadOnlyList<Audit.AuditedRecord> Audited(IEnumerable<ReviewedGrant> grants) =>
        grants.Select(g => new Audit.AuditedRecord(AuditedType, g.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), g.Patient)).ToList();

    /// <summary>The type a reviewed grant is named under on the chain ("BreakTheGlass/&lt;id&gt;").</summary>
    public const string AuditedType = "BreakTheGlass";
}

public enum BreakGlassStatus { Granted, Invalid, ReauthenticationRequired, NotAllowed, PatientNotFound }

public sealed record BreakGlassResult(BreakGlassStatus Status, BreakGlassGrant? Grant, string Message);

public sealed class BreakTheGlass
{
    public const int MinimumDetailLength = 10;
    public const int MaximumDetailLength = 1000;

    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly AccessPolicy _policy;
    private readonly AuditTrail _audit;
    private readonly SecurityAlerts _alerts;
    private readonly Guard.RecordsGuard _guard;
    private readonly AccessRows _rows;
    private readonly TimeProvider _time;

    internal BreakTheGlass(StoreDatabase database, KeyRing keys, AccessPolicy policy, Guard.RecordsGuard guard, AuditTrail audit, SecurityAlerts alerts, AccessRows rows,
        TimeProvider time)
    {
        _rows = rows;
        _database = database;
        _keys = keys;
        _policy = policy;
        _guard = guard;
        _audit = audit;
        _alerts = alerts;
        _time = time;
    }

    public async Task<BreakGlassResult> OpenAsync(AccessContext context, string patientId, string? reason, string? detail, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var principal = context.Principal;
        var options = _policy.Options;
        // Breaking the glass is asking for emergency access: its entries, granted or refused, say so (HL7 ETREAT), like every
        // act under the grant (RecordsService).
        var emergency = context with { Purpose = KnownPurposes.EmergencyTreatment };
        // Every refused attempt is an entry too (a security officer looks for attempts as much as for grants), naming the
        // patient when the id is one; never the free-text justification, which may quote anything.
        async Task<BreakGlassResult> RefusedAsync(BreakGlassStatus status, string message, string note)
        {
            await _audit.AppendAsync(emergency, AuditAction.BreakTheGlass, AuditOutcome.MinorFailure, KnownResourceTypes.Patient,
                [new AuditedRecord(KnownResourceTypes.Patient, IdRules.IsValid(patientId) ? patientId : null, IdRules.IsValid(patientId) ? patientId : null)],
                cancellationToken, "refused: " + note);
            return new(status, null, message);
        }
        if (principal.Kind != PrincipalKind.Person || principal.Role is not { } role || !RolePermissions.MayBreakTheGlass(role))
        {
            return await RefusedAsync(BreakGlassStatus.NotAllowed, "Only physicians, nurses, biologists and admissions staff, signed in in person, may break the glass.",
                "not allowed for this principal");
        }
        if (reason is null || !KnownBreakGlassReasons.Labels.ContainsKey(reason))
        {
            return await RefusedAsync(BreakGlassStatus.Invalid, "State a reason from the list: " + string.Join(", ", KnownBreakGlassReasons.Labels.Keys) + ".",
                "no reason from the list");
        }
        detail = detail?.Trim();
        if (string.IsNullOrEmpty(detail) || detail.Length < MinimumDetailLength || detail.Length > MaximumDetailLength)
        {
            return await RefusedAsync(BreakGlassStatus.Invalid, $"Explain the access in your own words ({MinimumDetailLength} to {MaximumDetailLength} characters).",
                "no valid explanation");
        }
        if (StatedText.HasHiddenCharacters(detail, lineBreaks: true))
        {
            // The officer reads it to judge the emergency: it must show what it holds.
            return await RefusedAsync(BreakGlassStatus.Invalid, "Explain the access in plain text: invisible characters (direction overrides, zero-width) are not accepted.",
                "explanation with invisible characters");
        }
        var now = _time.GetUtcNow();
        if (principal.AuthenticatedAt is not { } proven || now - proven > options.ReauthenticationMaxAge)
        {
            return await RefusedAsync(BreakGlassStatus.ReauthenticationRequired,
                $"Breaking the glass needs a fresh sign-in: prove both factors again (within the last {options.ReauthenticationMaxAge.TotalMinutes:0} minutes), then retry.",
                "no fresh proof of both factors");
        }
        if (!IdRules.IsValid(patientId)) return await RefusedAsync(BreakGlassStatus.PatientNotFound, "Not a valid Patient id.", "not a valid Patient id");
        // The guard counts the grant, and its patient outside care relationships, before it is made: past the day's bound of either
        // the principal is contained here, not granted (and the officer told) again and again until its next read. A contained
        // principal is refused.
        var guard = await _guard.AdmitGrantAsync(context, patientId, cancellationToken);
        if (guard.Delay > TimeSpan.Zero) await Task.Delay(guard.Delay, cancellationToken);
        switch (guard.Verdict)
        {
            case Guard.GuardVerdict.Admit:
                break;
            case Guard.GuardVerdict.StepUp:
                return await RefusedAsync(BreakGlassStatus.ReauthenticationRequired, guard.Reason!, "guard: " + guard.Verdict);
            default:
                return await RefusedAsync(BreakGlassStatus.NotAllowed, guard.Reason!, "contained by the guard");
        }

        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var expires = now + options.BreakGlassDuration;
        // The grant as a unit of work: a connection lost before its commit runs the whole of it once more on a new one (the server rolled
        // the first back; nothing of it is outside the transaction — the alert is logged after the commit, the grant told to the policy
        // and the guard after it; the guard counted the patient before, once). Before, a physician at the bedside got 503 and asked again.
        var known = await _database.WriteAsync(async scope =>
        {
            using (var exists = scope.Command("SELECT count(*) FROM resources WHERE tenant_id = @t AND type = @ty AND id = @id AND deleted = 0")
                .With("t", context.Tenant.Id).With("ty", TypeCodes.Of(KnownResourceTypes.Patient)).With("id", patientId))
            {
                if (await exists.ScalarLongAsync(cancellationToken) == 0)
                {
                    await _audit.AppendAsync(scope, emergency, AuditAction.BreakTheGlass, AuditOutcome.MinorFailure, KnownResourceTypes.Patient,
                        [new AuditedRecord(KnownResourceTypes.Patient, patientId, null)], cancellationToken, "patient not known");
                    return false; // the refusal's entry is kept when the transaction rolls back
                }
            }
            // The free text is sealed under the tenant's data key, bound to this grant's principal, patient and time.
            var (bindingId, bindingVersion) = ExplanationBinding(principal.Id, patientId, now.ToUnixTimeMilliseconds());
            var sealedDetail = RecordCipher.Seal(keys, 0, bindingId, bindingVersion, Encoding.UTF8.GetBytes(detail));
            // The row and its MAC in one statement (ADR 0014): its id is taken first, since the MAC covers it.
            var id = await NextGrantIdAsync(scope, cancellationToken);
            var row = AuthenticatedTable.Grants.Row(("id", id), ("tenant_id", context.Tenant.Id), ("principal", principal.Id), ("session", principal.SessionId),
                ("patient", patientId), ("granted_at", now.ToUnixTimeMilliseconds()), ("expires_at", expires.ToUnixTimeMilliseconds()));
            using (var insert = scope.Command(""))
            {
                insert.CommandText = $"INSERT INTO break_glass ({AuthenticatedTable.Grants.ColumnList}, reason, detail) VALUES ({_rows.Bind(insert, row)}, @r, @d)";
                await insert.With("r", reason).With("d", sealedDetail).ExecuteNonQueryAsync(cancellationToken);
                // The grant and its explanation on the chain, digested (never the words themselves): rewritten in the database, it is found.
                await _audit.AttestAsync(scope, context.Tenant.Id, SecurityTable.Grants, state: false,
                    [(id,
                        [principal.Id, principal.SessionId, patientId, reason, Encoding.UTF8.GetBytes(detail), now.ToUnixTimeMilliseconds(), expires.ToUnixTimeMilliseconds()])],
                    cancellationToken);
            }
            await _alerts.RaiseAsync(scope, context.Tenant.Id, KnownAlertKinds.BreakTheGlass, principal.Id,
                $"{principal.DisplayName} ({AccessPolicy.RoleName(role)}) broke the glass on Patient/{patientId}: {KnownBreakGlassReasons.Labels[reason]}; until {ParisTime.WithUtc(expires)}. "
                + GrantExplanationWhere,
                cancellationToken);
            await _audit.AppendAsync(scope, emergency, AuditAction.BreakTheGlass, AuditOutcome.Success, KnownResourceTypes.Patient,
                [new AuditedRecord(KnownResourceTypes.Patient, patientId, patientId)], cancellationToken, "reason: " + reason);
            await scope.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);
        if (!known) return new(BreakGlassStatus.PatientNotFound, null, $"Patient/{patientId} is not known.");
        _policy.Granted(context.Tenant.Id, patientId);
        _guard.NoteGrant(context, patientId, expires);
        return new(BreakGlassStatus.Granted, new BreakGlassGrant(patientId, reason, now, expires),
            $"Access to Patient/{patientId} granted until {expires:yyyy-MM-dd HH:mm} UTC. The security officer has been told.");
    }

    /// <summary>The id a new grant takes, in <paramref name="scope"/>: the next of the identity column's sequence (PostgreSQL; never
    /// given twice, whatever writes run beside), or one past the greatest (SQLite, whose one writer is this transaction: what its
    /// INTEGER PRIMARY KEY would have taken).</summary>
    private async Task<long> NextGrantIdAsync(WriteScope scope, CancellationToken cancellationToken)
    {
        using var next = scope.Command(_database.Engine == StorageEngine.Postgres
            ? "SELECT nextval(pg_get_serial_sequence('break_glass', 'id'))"
            : "SELECT coalesce(max(id), 0) + 1 FROM break_glass");
        return await next.ScalarLongAsync(cancellationToken);
    }

    /// <summary>What the officer's list says in place of the explanation of a grant whose row does not verify (ADR 0014).</summary>
    public const string NotAuthenticExplanation = "(not authentic: this grant's row was written or changed in the database, not by Vauban; it grants nothing "
        + "— see the row-integrity alert, and `vauban audit verify`)";

    /// <summary>The last sentence of a break-the-glass alert: where the explanation stated is read, for the command line and the API
    /// (the console shows its own link in its place). It used to read "The explanation they stated: the console's …", as if the
    /// places were the explanation.</summary>
    public const string GrantExplanationWhere = "Their explanation is kept with the grant: vauban guard grants, GET /admin/guard/grants, or the console's Break-the-glass grants.";

    /// <summary>What a grant's sealed explanation is bound to (type code 0): its principal and patient, hashed, and the second it
    /// was granted (<paramref name="grantedAt"/> in Unix milliseconds, as stored).</summary>
    internal static (string Id, int Version) ExplanationBinding(string principal, string patient, long grantedAt) =>
        (Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(principal + "|" + patient))), (int)(grantedAt / 1000 & int.MaxValue));

    /// <summary>The establishment's grants, newest first, each with the explanation its holder stated (opened here: it is sealed
    /// at rest), for the security officer who reviews them. A grant whose row does not verify (ADR 0014) is listed as such, its explanation
    /// not opened (<see cref="NotAuthenticExplanation"/>), and reported once. The caller audits the reading.</summary>
    public async Task<IReadOnlyList<ReviewedGrant>> ReviewAsync(Tenant tenant, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var keys = await _keys.ForTenantAsync(tenant.Id, cancellationToken);
        List<(AuthenticatedRow Row, string Reason, byte[]? Detail)> rows;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            rows = await AccessRows.ReadAllAsync(connection.Command(""), AuthenticatedTable.Grants, "r.reason, r.detail",
                "WHERE r.tenant_id = @t ORDER BY r.granted_at DESC, r.id DESC LIMIT @n",
                static (row, reader, i) => (row, reader.GetString(i), reader.IsDBNull(i + 1) ? null : (byte[])reader.GetValue(i + 1)), cancellationToken,
                ("t", tenant.Id), ("n", limit));
        }
        var grants = new List<ReviewedGrant>(rows.Count);
        foreach (var (row, reason, detail) in rows)
        {
            var principal = row.Text("principal") ?? "";
            var patient = row.Text("patient") ?? "";
            var granted = row.Number("granted_at") ?? 0;
            string explanation;
            if (!_rows.Believe(row))
            {
                explanation = NotAuthenticExplanation;
            }
            else
            {
                try
                {
                    var (bindingId, bindingVersion) = ExplanationBinding(principal, patient, granted);
                    explanation = Encoding.UTF8.GetString(RecordCipher.Open(keys, 0, bindingId, bindingVersion, detail ?? []));
                }
                catch (RecordIntegrityException)
                {
                    explanation = "(cannot be opened: the stored explanation was altered)";
                }
            }
            grants.Add(new ReviewedGrant(row.Number("id") ?? 0, principal, patient, reason, explanation,
                DateTimeOffset.FromUnixTimeMilliseconds(granted), DateTimeOffset.FromUnixTimeMilliseconds(row.Number("expires_at") ?? 0)));
        }
        return grants;
    }

    /// <summary>The person's unexpired grants, newest first (for their screen): those whose rows verify (ADR 0014), as the policy
    /// believes them; one that does not is left out and reported once.</summary>
    public async Task<IReadOnlyList<BreakGlassGrant>> ActiveAsync(AccessContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        List<(AuthenticatedRow Row, string Reason)> rows;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            rows = await AccessRows.ReadAllAsync(connection.Command(""), AuthenticatedTable.Grants, "r.reason",
                "WHERE r.tenant_id = @t AND r.principal = @p AND r.expires_at > @now ORDER BY r.granted_at DESC LIMIT 100",
                static (row, reader, i) => (row, reader.GetString(i)), cancellationToken,
                ("t", context.Tenant.Id), ("p", context.Principal.Id), ("now", _time.GetUtcNow().ToUnixTimeMilliseconds()));
        }
        return [.. rows.Where(r => _rows.Believe(r.Row)).Select(r => new BreakGlassGrant(r.Row.Text("patient") ?? "", r.Reason,
            DateTimeOffset.FromUnixTimeMilliseconds(r.Row.Number("granted_at") ?? 0), DateTimeOffset.FromUnixTimeMilliseconds(r.Row.Number("expires_at") ?? 0)))];
    }
}
