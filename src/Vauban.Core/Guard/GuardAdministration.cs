// The security officer's side of the guard: active containments, release, canary patients. The same
// methods serve the command line (vauban guard …) and the admin API (/admin/guard/…).
using System.Text.Json;
using System.Text.Json.Nodes;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Fhir;
using Vauban.Records;
using Vauban.Records.Synthetic;
using Vauban.Storage;

namespace Vauban.Guard;

public sealed record Canary(string Patient, DateTimeOffset CreatedAt);

public enum ReleaseStatus
{
    Released,
    NotContained,

    /// <summary>Nothing released: a containment the release covers was caused by a canary, and the releaser is not the
    /// security officer (<see cref="RecordsGuard.MayActOnCanaries"/>).</summary>
    CanaryIsTheOfficers,

    /// <summary>Nothing released: a containment the release covers is the releaser's own (her account, or one of its sessions).</summary>
    OwnContainment,
}

/// <summary>What a release did.</summary>
/// <param name="Containments">Released; or, refused, the active containments the release covered (none of them released).</param>
/// <param name="ByCanary">Of those, the ones the security officer alone releases (<see cref="Containment.OfficersToRelease"/>): a
/// canary's, or an officer's reading of the audit log.</param>
public sealed record GuardRelease(ReleaseStatus Status, int Containments, int ByCanary)
{
    /// <summary>Of <see cref="ByCanary"/>, the ones an officer's reading of the audit log caused.</summary>
    public int ByAuditLog { get; init; }

    /// <summary>How many containments were released (0 unless <see cref="ReleaseStatus.Released"/>).</summary>
    public int Released => Status == ReleaseStatus.Released ? Containments : 0;
}

public sealed partial class RecordsGuard
{
    public const int MaxCanariesPerCall = 100;

    /// <summary>Principal names the officer may type: session:…, user:…, client ids. Anything else is refused before the database is asked.</summary>
    public static bool IsValidPrincipal(string? principal) =>
        principal is { Length: > 0 and <= 200 } && principal.All(c => char.IsAsciiLetterOrDigit(c) || c is ':' or '-' or '_' or '.');

    /// <summary>The tenant's active containments, newest first.</summary>
    public async Task<IReadOnlyList<Containment>> ContainmentsAsync(long tenantId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("""
            SELECT tenant_id, principal, account, level, cause, reason, contained_at FROM guard_containments
            WHERE tenant_id = @t AND released_at IS NULL ORDER BY contained_at DESC, id DESC
            """).With("t", tenantId);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var list = new List<Containment>();
        while (await reader.ReadAsync(cancellationToken)) list.Add(ReadContainment(reader));
        return list;
    }

    /// <summary>A row of <c>SELECT tenant_id, principal, account, level, cause, reason, contained_at FROM guard_containments</c>.</summary>
    private static Containment ReadContainment(System.Data.Common.DbDataReader reader) =>
        new(reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
            DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)));

    /// <summary>
    /// Whether <paramref name="actor"/> may act on what a canary caused — acknowledge its alert, release its containment: the
    /// security officer, and the operator at the command line (a system principal), not an administrator or anyone else signed
    /// in. The canaries are the officer's: an insider administrator (or a stolen administrator's account) who acknowledged a
    /// canary's alert, or released the lock it put on an accomplice, ended the incident before she had looked (a black-box probe).
    /// </summary>
    public static bool MayActOnCanaries(Principal actor)
    {
        ArgumentNullException.ThrowIfNull(actor);
        return actor.Kind == PrincipalKind.System || (actor.Kind == PrincipalKind.Person && actor.Role == StaffRole.SecurityOfficer);
    }

    /// <summary>Whether <paramref name="containment"/> holds <paramref name="actor"/> herself — her account, or one of its sessions: no one
    /// releases their own. A suspended officer signed in again (a suspension holds the session, not the account) and released her
    /// old session, which also wiped her reading windows: the audit log's levels held no one who had her factors (a review).</summary>
    public static bool IsOwn(Principal actor, Containment containment)
    {
        ArgumentNullException.ThrowIfNull(actor);
        ArgumentNullException.ThrowIfNull(containment);
        return IsOwn(actor, containment.Principal, containment.Account);
    }

    private static bool IsOwn(Principal actor, string subject, string? account) =>
        actor.Kind == PrincipalKind.Person && (account == actor.Id || subject == actor.Id || (actor.SessionId is { } session && subject == SessionSubject(session)));

    /// <summary>Whether a release of <paramref name="principal"/> covers <paramref name="containment"/>: its own, or, for an account,
    /// every containment of its sessions (as <see cref="ReleaseAsync"/> selects them).</summary>
    public static bool Covers(string principal, Containment containment)
    {
        ArgumentNullException.ThrowIfNull(containment);
        return containment.Principal == principal || containment.Account == principal;
    }

    /// <summary>Most alerts one acknowledgement names.</summary>
    public const int MaxAcknowledgedPerCall = 1000;

    /// <summary>
    /// Marks alerts as reviewed by <paramref name="officer"/>: they leave the default list (<c>vauban guard alerts</c> without
    /// <c>--all</c>). An administrative act, audited in its own transaction (an audit log that cannot be written acknowledges
    /// nothing). Returns the ids acknowledged; ids unknown in the establishment, or already acknowledged, are left out.
    /// </summary>
    public async Task<IReadOnlyList<long>> AcknowledgeAlertsAsync(AccessContext officer, IReadOnlyCollection<long> ids, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(officer);
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.Count is 0 or > MaxAcknowledgedPerCall) throw new ArgumentException($"Acknowledge between 1 and {MaxAcknowledgedPerCall:N0} alerts at a time.");
        // A connection lost before the commit: the whole of it once more on a new one (nothing was marked: the alerts are found and
        // marked afresh there, and the act's entry made once more).
        return await _database.WriteAsync(async scope =>
        {
            // A canary's alert is the security officer's to review, as the canaries are hers.
            var done = await _alerts.AcknowledgeAsync(scope, officer.Tenant.Id, ids, officer.Principal.Id, officersOnly: !MayActOnCanaries(officer.Principal), cancellationToken);
            if (done.Count == 0) return done;
            await _audit.AppendAsync(scope, officer, AuditAction.Administration, AuditOutcome.Success, null,
                [new AuditedRecord("alerts:" + string.Join(",", done.Take(20)) + (done.Count > 20 ? ",…" : ""), null, null)], cancellationToken,
                $"guard alerts acknowledged ({done.Count})");
            await scope.CommitAsync(cancellationToken);
            return done;
        }, cancellationToken);
    }

    /// <summary>
    /// Releases a session, client or account (and, for an account, its suspended sessions and the guard's lock on it),
    /// and forgets the principal's reading windows: the officer has reviewed the access. The release is an administrative act
    /// of <paramref name="releasedBy"/>: its audit entry is written in the release's own transaction, so an audit log that cannot
    /// be written releases nothing (fail closed). A containment a canary caused is released only by those who
    /// <see cref="MayActOnCanaries"/>: anyone else's release that covers one releases nothing at all — not the others it covers
    /// either, the incident is one — and is an administrative act refused, on the chain.
    /// </summary>
    public async Task<GuardRelease> ReleaseAsync(AccessContext releasedBy, string principal, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(releasedBy);
        var tenant = releasedBy.Tenant;
        if (!IsValidPrincipal(principal)) throw new ArgumentException("A principal is a session:…, user:… or client id (letters, digits, ':', '-', '_', '.').");
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var mayReleaseCanaries = MayActOnCanaries(releasedBy.Principal);
        // Who released, as the chain's blind index: the releaser may be "cli:<operating-system user>", a person's name.
        var keys = await _keys.ForTenantAsync(tenant.Id, cancellationToken);
        var releaser = AuditChain.PrincipalReference(keys, releasedBy.Principal.Id);
        var released = new List<(string Subject, string? Account, string Level, string Cause)>();
        // A connection lost before the commit: the whole of it once more on a new one, the containments selected afresh there (a
        // refusal's entry and alert kept once: the abandoned attempt's are dropped). What is forgotten in memory is forgotten after
        // the commit, once.
        var refused = await _database.WriteAsync<GuardRelease?>(async scope =>
        {
            released.Clear();
            using (var select = scope.Command("""
                SELECT principal, account, level, cause FROM guard_containments WHERE tenant_id = @t AND released_at IS NULL AND (principal = @p OR account = @p)
                """).With("t", tenant.Id).With("p", principal))
            using (var reader = await select.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                    released.Add((reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetString(2), reader.GetString(3)));
            }
            if (released.Count == 0) return new GuardRelease(ReleaseStatus.NotContained, 0, 0);
            // A refused release: not committed, so nothing changes; the refusal is kept on the chain when the transaction rolls back,
            // and told to the officers once the writer is free (who tried to free whom is the insider's move).
            async Task<GuardRelease> RefusedAsync(GuardRelease refusal, string note, string told)
            {
                await _audit.AppendAsync(scope, releasedBy, AuditAction.Administration, AuditOutcome.MinorFailure, null,
                    [new AuditedRecord("principal:" + principal, null, null)], cancellationToken, "guard release refused: " + note);
                // Once an hour for a releaser and whom it tried to free, while the officer has not acknowledged it: an administrator
                // retrying at will flooded her list (a review); every attempt is on the chain. One on another principal is told.
                var tried = $"{releasedBy.Principal.Id} tried to release {principal}, ";
                scope.AfterRollback.Add(() => _alerts.RaiseOnceWithinAsync(tenant.Id, KnownAlertKinds.GuardReleaseRefused, releasedBy.Principal.Id,
                    tried + told + " Its further attempts on it within the hour are on the audit log, not told again.", tried,
                    TimeSpan.FromHours(1), CancellationToken.None));
                return refusal;
            }
            if (released.Any(r => IsOwn(releasedBy.Principal, r.Subject, r.Account)))
            {
                return await RefusedAsync(new GuardRelease(ReleaseStatus.OwnContainment, released.Count, 0), "one's own containment",
                    "a containment of its own: refused, nothing released. Another security officer, or the operator at the server, reviews it.");
            }
            var byCanary = released.Count(r => ContainmentCauses.AreOfficersToRelease(r.Cause));
            if (byCanary > 0 && !mayReleaseCanaries)
            {
                var canary = released.Any(r => r.Cause == ContainmentCauses.Canary);
                return await RefusedAsync(
                    new GuardRelease(ReleaseStatus.CanaryIsTheOfficers, released.Count, byCanary) { ByAuditLog = released.Count(r => r.Cause == ContainmentCauses.AuditLog) },
                    $"{(canary ? "a canary's containment" : "an officer's containment for reading the audit log")} is the security officer's to release ({byCanary} of {released.Count})",
                    canary
                        ? $"whom a canary contained ({byCanary} of {released.Count} containment(s)): refused, nothing released. A canary's containment is the security officer's to release."
                        : "a security officer contained for reading the audit log: refused, nothing released. Another security officer, or the operator at the server, releases it.");
            }
            // A canary's containment written since the SELECT (PostgreSQL: another server's guard) is not this releaser's either.
            var releasedIds = new List<long>();
            using (var update = scope.Command("""
                UPDATE guard_containments SET released_at = @at, released_by = @b WHERE tenant_id = @t AND released_at IS NULL AND (principal = @p OR account = @p)
                """ + (mayReleaseCanaries ? "" : " AND cause NOT IN (@canary, @log)") + " RETURNING id").With("at", now).With("b", releaser).With("t", tenant.Id).With("p", principal))
            {
                if (!mayReleaseCanaries) update.With("canary", ContainmentCauses.Canary).With("log", ContainmentCauses.AuditLog);
                using var reader = await update.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken)) releasedIds.Add(reader.GetInt64(0));
            }
            // Each release on the chain with the act: a containment marked released in the database alone is found.
            await _audit.AttestAsync(scope, tenant.Id, SecurityTable.Containments, state: true,
                [.. releasedIds.Select(id => (id, new object?[] { now, releaser }))], cancellationToken);
            // What they read outside care relationships starts afresh on every server, as their reading windows do on each.
            foreach (var owner in released.Select(r => r.Account ?? r.Subject).Distinct(StringComparer.Ordinal))
            {
                await OutsideCareReads.ForgetAsync(_database, scope, keys, tenant.Id, owner, cancellationToken);
            }
            foreach (var account in released.Where(r => r.Level == ContainmentLevels.Locked && r.Account is not null).Select(r => r.Account!).Distinct())
            {
                if (!account.StartsWith(StaffUser.PrincipalPrefix, StringComparison.Ordinal)) continue;
                var userId = account[StaffUser.PrincipalPrefix.Length..];
                await StaffAccounts.ChangeAsync(_rows, scope, userId, tenant.Id, row => row.With("lockout_end", null), cancellationToken);
                using var unlock = scope.Command("UPDATE staff_users SET access_failed_count = 0 WHERE id = @u AND tenant_id = @t").With("u", userId).With("t", tenant.Id);
                await unlock.ExecuteNonQueryAsync(cancellationToken);
            }
            await _alerts.RaiseAsync(scope, tenant.Id, KnownAlertKinds.GuardReleased, principal, $"{principal} released by {releasedBy.Principal.Id} ({released.Count} containment(s)).", cancellationToken);
            await _audit.AppendAsync(scope, releasedBy, AuditAction.Administration, AuditOutcome.Success, null,
                [new AuditedRecord("principal:" + principal, null, null)], cancellationToken, "guard release");
            await scope.CommitAsync(cancellationToken);
            return null;
        }, cancellationToken);
        if (refused is not null) return refused;
        foreach (var (subject, account, _, _) in released)
        {
            // A canary's containment made here since the SELECT, not yet written, took the released one's place: not this releaser's.
            var key = (tenant.Id, subject);
            if (_contained.TryGetValue(key, out var here) && here.OfficersToRelease && !mayReleaseCanaries) continue;
            if (here is not null) _contained.TryRemove(new KeyValuePair<(long, string), Containment>(key, here));
            _unwritten.TryRemove(key, out _);
            Forget(tenant.Id, account ?? subject);
        }
        return new GuardRelease(ReleaseStatus.Released, released.Count, released.Count(r => ContainmentCauses.AreOfficersToRelease(r.Cause)))
        {
            ByAuditLog = released.Count(r => r.Cause == ContainmentCauses.AuditLog),
        };
    }

    /// <summary>
    /// Adds canary patients: synthetic identities like any other (same generator as the seed, no marker in the
    /// resource, no care relationship, no general practitioner), created through the records service under the
    /// operator's context, and listed in guard_canaries so the guard knows them.
    /// </summary>
    public Task<IReadOnlyList<string>> AddCanariesAsync(RecordsService records, Tenant tenant, int count, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        return AddCanariesAsync(records, AccessContext.Operator(tenant, "guard canary patients"), count, cancellationToken);
    }

    /// <summary>Adds canaries at the request of <paramref name="requester"/> (the security officer at the console), whose id, role,
    /// session and source address their creation entries carry. A canary is the guard's own record, which no role's grants cover
    /// (a security officer may not create patients) and which must not count as the officer's reading: it is created as a system
    /// act in the officer's name.</summary>
    public async Task<IReadOnlyList<string>> AddCanariesAsync(RecordsService records, AccessContext requester, int count, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(requester);
        if (count is < 1 or > MaxCanariesPerCall) throw new ArgumentException($"Add between 1 and {MaxCanariesPerCall} canaries at a time.");
        var tenant = requester.Tenant;
        var context = requester.Principal.Kind == PrincipalKind.System ? requester : new AccessContext(
            new Principal(PrincipalKind.System, requester.Principal.Id, requester.Principal.DisplayName, CanaryScopes)
            {
                Role = requester.Principal.Role,
                Service = requester.Principal.Service,
                SessionId = requester.Principal.SessionId,
            }, tenant, "guard canary patients", requester.SourceAddress, requester.CorrelationId);
        var hospital = new SyntheticHospital(System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue), ParisTime.DateOf(_time.GetUtcNow()));
        var ids = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            var patient = hospital.Patient(System.Security.Cryptography.RandomNumberGenerator.GetInt32(1_000_000))[0];
            var json = JsonNode.Parse(CanaryIdentity(patient.Json))!.AsObject();
            json.Remove("id");
            using var document = JsonDocument.Parse(json.ToJsonString());
            // Created now with a server id, as a patient admitted now would be.
            var created = await records.CreateAsync(context, KnownResourceTypes.Patient, document.RootElement, null, cancellationToken);
            if (created.Status != RecordStatus.Created) throw new InvalidOperationException("A canary patient could not be created: " + string.Join("; ", (created.Issues ?? []).Select(x => x.Diagnostics)));
            ids.Add(created.Id!);
        }
        await RegisterCanariesAsync(tenant, ids, cancellationToken);
        return ids;
    }

    private static readonly SmartScopes CanaryScopes =
        SmartScopes.TryParse("system/Patient.c", TypeCodes.Names, out var scopes, out _) ? scopes : SmartScopes.None;

    /// <summary>A synthetic patient's identity made a canary's: no general practitioner or managing organisation (whoever they
    /// name would be in a care relationship with it), nothing added.</summary>
    public static byte[] CanaryIdentity(byte[] patientJson)
    {
        var json = JsonNode.Parse(patientJson)!.AsObject();
        json.Remove("generalPractitioner");
        json.Remove("managingOrganization");
        return System.Text.Encoding.UTF8.GetBytes(json.ToJsonString());
    }

    /// <summary>Lists existing patients as canaries (the seed interleaves them with the synthetic population, with the same kind of ids).</summary>
    public async Task RegisterCanariesAsync(Tenant tenant, IReadOnlyCollection<string> patients, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(patients);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // A connection lost before the commit: once more on a new one (the first listed none).
        await _database.WriteAsync(async scope =>
        {
            foreach (var id in patients)
            {
                using var insert = scope.Command("INSERT INTO guard_canaries (tenant_id, patient, created_at) VALUES (@t, @p, @at)").With("t", tenant.Id).With("p", id).With("at", now);
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);
        await LoadAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<Canary>> CanariesAsync(long tenantId, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT patient, created_at FROM guard_canaries WHERE tenant_id = @t ORDER BY created_at, patient").With("t", tenantId);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var list = new List<Canary>();
        while (await reader.ReadAsync(cancellationToken)) list.Add(new Canary(reader.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1))));
        return list;
    }
}
