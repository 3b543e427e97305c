// What the security officer is told: an account locked after failed sign-ins, a break-the-glass access,
// the guard's containments. Alerts name principals and resource ids, never patient data. The detail may still
// name staff (a display name, the operating-system user at the command line) or a source address, and a principal at
// the command line is "cli:<operating-system user>": both are sealed under the establishment's data key like a record,
// so the database shows only kind, the principal's blind index and time. Each alert raised or acknowledged is on the establishment's
// audit chain in the same transaction (Audit.SecurityRecords): one deleted or edited in the database fails `vauban audit verify`.
using Vauban.Crypto;
using Vauban.Storage;

namespace Vauban.Access;

public static class KnownAlertKinds
{
    public const string AccountLocked = "account-locked";
    public const string BreakTheGlass = "break-the-glass";
    public const string SessionRevoked = "session-revoked";

    /// <summary>Many failed sign-ins from one source in the establishment's own networks, which are not delayed per source:
    /// password spraying from inside (or a misconfigured device). Raised again for every further as many.</summary>
    public const string SignInSpraying = "sign-in-spraying";

    /// <summary>A bulk export above the establishment's size threshold waits for a second person's approval.</summary>
    public const string ExportApprovalRequested = "export-approval-requested";

    /// <summary>A bulk export was approved, or denied, by the security officer or an administrator.</summary>
    public const string ExportApproved = "export-approved";
    public const string ExportDenied = "export-denied";

    /// <summary>The guard suspended a session or an API client (reading beyond its bounds).</summary>
    public const string GuardSuspended = "guard-suspended";

    /// <summary>The guard asked a person to prove both factors again (reading beyond the step-up level); once per episode.</summary>
    public const string GuardStepUp = "guard-step-up";

    /// <summary>The guard locked a person's account (second suspension within a day).</summary>
    public const string GuardLocked = "guard-locked";

    /// <summary>A canary patient was read, or appeared in a broad search page: the principal is contained at once.</summary>
    public const string GuardCanary = "guard-canary";

    /// <summary>A canary appeared in a narrow search (a few patients): reported, not contained.</summary>
    public const string GuardCanarySeen = "guard-canary-seen";

    /// <summary>A signal raised a principal's risk (unusual hour, new source or device, failed sign-ins before success, an enumeration shape); the detail starts with its name.</summary>
    public const string GuardSignal = "guard-signal";

    /// <summary>The security officer released a containment.</summary>
    public const string GuardReleased = "guard-released";

    /// <summary>Someone other than the security officer (an administrator) tried to release a containment a canary caused: refused,
    /// and told to the officer — the insider freeing an accomplice, or a stolen administrator's account. The officer's to review,
    /// as a canary's alert is.</summary>
    public const string GuardReleaseRefused = "guard-release-refused";

    /// <summary>Kinds of alert only the security officer (or the operator) acknowledges: the canaries' and what was tried on their
    /// containments.</summary>
    public static readonly IReadOnlyList<string> OfficersOnly = [GuardCanary, GuardCanarySeen, GuardReleaseRefused];

    /// <summary>An audit journal left by a stopped process ended in bytes that could not be read (a power loss tore its last
    /// write, or the file was damaged): the acts it was recording then are missing from the log. Raised for every establishment,
    /// since a journal holds all of a process's acts.</summary>
    public const string AuditJournalDamaged = "audit-journal-damaged";

    /// <summary>A stored record failed its integrity check when read (altered or moved in the database, or a wrong key): it was
    /// not shown, and the read was audited as a serious failure.</summary>
    public const string RecordIntegrity = "record-integrity";

    /// <summary>A row that grants access (an API client, an access token, a staff session, a staff account or its passkey, recovery
    /// code or enrolment link) failed its MAC when read: written or changed in the database, not by Vauban. It was refused as if it did not exist (ADR 0014). Once per row and process.</summary>
    public const string RowIntegrity = "row-integrity";

    private static readonly Dictionary<string, string> Labels = new(StringComparer.Ordinal)
    {
        [AccountLocked] = "Account locked after failed sign-ins",
        [BreakTheGlass] = "Break-the-glass access",
        [SessionRevoked] = "Sessions ended",
        [SignInSpraying] = "Many failed sign-ins from one source",
        [ExportApprovalRequested] = "Export awaiting approval",
        [ExportApproved] = "Export approved",
        [ExportDenied] = "Export denied",
        [GuardSuspended] = "Suspended by the guard",
        [GuardStepUp] = "Asked to prove both factors again",
        [GuardLocked] = "Account locked by the guard",
        [GuardCanary] = "Canary patient read",
        [GuardCanarySeen] = "Canary patient in a search",
        [GuardSignal] = "Unusual activity",
        [GuardReleased] = "Containment released",
        [GuardReleaseRefused] = "Release of a canary's containment refused",
        [AuditJournalDamaged] = "Audit journal damaged",
        [RecordIntegrity] = "A record failed its integrity check",
        [RowIntegrity] = "An access row failed its integrity check",
    };

    /// <summary>What a person reading the console calls an alert of this kind; the kind itself when it has no label.</summary>
    public static string Label(string kind) => Labels.TryGetValue(kind, out var label) ? label : kind;
}

public sealed record SecurityAlert(long Id, long TenantId, DateTimeOffset RaisedAt, string Kind, string Principal, string Detail,
    DateTimeOffset? AcknowledgedAt, string? AcknowledgedBy);

/// <summary>An alert just stored, as the server's log tells it: its id, kind and establishment, and whom it is about when that is an
/// account, session or API client id, or the server's own words ("unknown", "vauban"); a command-line operator (whose id is their
/// operating-system user) is "the command line"; anything else is not shown. Never the detail,
/// which may name staff, a source address or a record, and stays sealed for the console.</summary>
public sealed record RaisedAlert(long Id, long TenantId, string Kind, string? Principal)
{
    internal static string? Loggable(string principal) =>
        principal.StartsWith("user:", StringComparison.Ordinal) || principal.StartsWith("session:", StringComparison.Ordinal)
        || principal.StartsWith("vc_", StringComparison.Ordinal) || principal is "unknown" or "vauban" ? principal
        : principal.StartsWith("cli:", StringComparison.Ordinal) ? "the command line" : null;
}

public sealed class SecurityAlerts
{
    /// <summary>Type code of a sealed alert detail's associated data (never a resource type's).</summary>
    internal const int SealedDetailCode = 9003;

    /// <summary>How a sealed detail starts in the column (base64 follows); an alert raised before details were sealed has none.</summary>
    internal const string SealedPrefix = "sealed:";

    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly Audit.AuditTrail _audit;
    private readonly TimeProvider _time;

    internal SecurityAlerts(StoreDatabase database, KeyRing keys, Audit.AuditTrail audit, TimeProvider time)
    {
        _database = database;
        _keys = keys;
        _audit = audit;
        _time = time;
    }

    /// <summary>Raises an alert in a transaction of its own: run once more from its start on a new connection when its connection was
    /// found lost before the commit (an alert written during a request — the guard's, a row that does not verify — answered 503).</summary>
    public Task<long> RaiseAsync(long tenantId, string kind, string principal, string detail, CancellationToken cancellationToken) =>
        _database.WriteAsync(async scope =>
        {
            var id = await RaiseAsync(scope, tenantId, kind, principal, detail, cancellationToken);
            await scope.CommitAsync(cancellationToken);
            return id;
        }, cancellationToken);

    /// <summary>
    /// Raises the alert unless one of the same kind about the same principal whose detail holds <paramref name="same"/>, raised
    /// within <paramref name="within"/>, is still unacknowledged: for acts a principal can repeat at will (an administrator retrying
    /// a refused release of one principal), whose every attempt is on the audit chain, so that the officer's list is not flooded past
    /// what she can read, while an attempt on another is still told. Returns the alert's id, or null when one was already open.
    /// </summary>
    internal async Task<long?> RaiseOnceWithinAsync(long tenantId, string kind, string principal, string detail, string same, TimeSpan within, CancellationToken cancellationToken)
    {
        var keys = await _keys.ForTenantAsync(tenantId, cancellationToken);
        var since = _time.GetUtcNow().Subtract(within).ToUnixTimeMilliseconds();
        return await _database.WriteAsync<long?>(async scope =>
        {
            using (var open = scope.Command(
                "SELECT raised_at, principal, detail FROM security_alerts WHERE tenant_id = @t AND raised_at >= @since AND kind = @k AND principal = @p AND acknowledged_at IS NULL")
                .With("t", tenantId).With("since", since).With("k", kind).With("p", Audit.AuditChain.PrincipalReference(keys, principal)))
            using (var reader = await open.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    if (Open(keys, kind, reader.GetString(1), reader.GetInt64(0), reader.GetString(2)).Detail.Contains(same, StringComparison.Ordinal)) return null;
                }
            }
            var id = await RaiseAsync(scope, tenantId, kind, principal, detail, cancellationToken);
            await scope.CommitAsync(cancellationToken);
            return id;
        }, cancellationToken);
    }

    /// <summary>Told of each alert once its transaction has committed (the server writes it to its log, for whoever watches the log
    /// as well as the console); not of one rolled back with its transaction.</summary>
    public event Action<RaisedAlert>? Raised;

    internal async Task<long> RaiseAsync(WriteScope scope, long tenantId, string kind, string principal, string detail, CancellationToken cancellationToken)
    {
        var keys = await _keys.ForTenantAsync(tenantId, cancellationToken);
        var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // The principal column holds the principal's blind index; the principal itself is sealed with the detail.
        var reference = Audit.AuditChain.PrincipalReference(keys, principal);
        var attributed = new AttributedText(principal, detail);
        var sealedDetail = SealedPrefix + Convert.ToBase64String(attributed.Seal(keys, SealedDetailCode, Binding(kind, reference, at)));
        using var insert = scope.Command(
            "INSERT INTO security_alerts (tenant_id, raised_at, kind, principal, detail) VALUES (@t, @at, @k, @p, @d) RETURNING id")
            .With("t", tenantId).With("at", at).With("k", kind).With("p", reference).With("d", sealedDetail);
        var id = await insert.ScalarLongAsync(cancellationToken);
        // On the establishment's chain with it: an alert deleted or edited in the database is found by `vauban audit verify`.
        await _audit.AttestAsync(scope, tenantId, Audit.SecurityTable.Alerts, state: false,
            [(id, [at, kind, reference, attributed.Plain()])], cancellationToken);
        var raised = new RaisedAlert(id, tenantId, kind, RaisedAlert.Loggable(principal));
        scope.AfterCommit.Add(() => Raised?.Invoke(raised));
        return id;
    }

    /// <summary>The sealed detail is bound to its alert's clear columns: it cannot be moved to another alert.</summary>
    internal static string Binding(string kind, string principal, long raisedAt) =>
        kind + "|" + principal + "|" + raisedAt.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>An alert's principal and detail: sealed together (the principal column a blind index), the detail alone sealed
    /// (alerts raised before the principal was sealed), or both in clear (before details were sealed). One altered in the
    /// database is listed as such: it must not take the officer's whole list down with it (an intruder would blind the officer
    /// by damaging one row).</summary>
    private static (string Principal, string Detail) Open(TenantKeys keys, string kind, string principal, long raisedAt, string stored)
    {
        if (!stored.StartsWith(SealedPrefix, StringComparison.Ordinal)) return (principal, stored);
        var sealedText = new byte[stored.Length];
        if (!Convert.TryFromBase64String(stored[SealedPrefix.Length..], sealedText, out var length)) sealedText = [];
        else Array.Resize(ref sealedText, length);
        var opened = AttributedText.OpenStoredOrAltered(keys, SealedDetailCode, Binding(kind, principal, raisedAt), principal, sealedText, "alert");
        return (opened.Principal, opened.Text);
    }

    /// <summary>The principal an alert whose sealed detail does not open is listed under.</summary>
    public const string Altered = AttributedText.AlteredPrincipal;

    /// <summary>The tenant's alerts, newest first; unacknowledged only unless <paramref name="all"/>.</summary>
    public async Task<IReadOnlyList<SecurityAlert>> ListAsync(long tenantId, bool all, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command(
            "SELECT id, tenant_id, raised_at, kind, principal, detail, acknowledged_at, acknowledged_by FROM security_alerts WHERE tenant_id = @t"
            + (all ? "" : " AND acknowledged_at IS NULL") + " ORDER BY raised_at DESC, id DESC" + Sql.Limit(limit))
            .With("t", tenantId);
        var keys = await _keys.ForTenantAsync(tenantId, cancellationToken);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var alerts = new List<SecurityAlert>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var (kind, raisedAt) = (reader.GetString(3), reader.GetInt64(2));
            var (principal, detail) = Open(keys, kind, reader.GetString(4), raisedAt, reader.GetString(5));
            alerts.Add(new SecurityAlert(reader.GetInt64(0), reader.GetInt64(1), DateTimeOffset.FromUnixTimeMilliseconds(raisedAt),
                kind, principal, detail,
                reader.IsDBNull(6) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)), reader.IsDBNull(7) ? null : reader.GetString(7)));
        }
        return alerts;
    }

    /// <summary>Marks the tenant's unacknowledged alerts among <paramref name="ids"/> as reviewed by <paramref name="by"/> (stored as
    /// the principal's blind index), in the caller's transaction; returns the ids it acknowledged.</summary>
    /// <param name="officersOnly">Kinds left unacknowledged: for anyone but the security officer, <see cref="KnownAlertKinds.OfficersOnly"/>.</param>
    internal async Task<List<long>> AcknowledgeAsync(WriteScope scope, long tenantId, IReadOnlyCollection<long> ids, string by, bool officersOnly, CancellationToken cancellationToken)
    {
        var keys = await _keys.ForTenantAsync(tenantId, cancellationToken);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var reference = Audit.AuditChain.PrincipalReference(keys, by);
        var done = new List<long>();
        foreach (var id in ids.Distinct())
        {
            using var update = scope.Command("UPDATE security_alerts SET acknowledged_at = @at, acknowledged_by = @b WHERE tenant_id = @t AND id = @i AND acknowledged_at IS NULL"
                    + (officersOnly ? " AND kind NOT IN (" + string.Join(", ", KnownAlertKinds.OfficersOnly.Select((_, k) => "@k" + k)) + ")" : ""))
                .With("at", now).With("b", reference).With("t", tenantId).With("i", id);
            if (officersOnly)
            {
                for (var k = 0; k < KnownAlertKinds.OfficersOnly.Count; k++) update.With("k" + k, KnownAlertKinds.OfficersOnly[k]);
            }
            if (await update.ExecuteNonQueryAsync(cancellationToken) == 1) done.Add(id);
        }
        // The acknowledgement on the chain too: one set in the database alone (an alert hidden from the default list) is found.
        await _audit.AttestAsync(scope, tenantId, Audit.SecurityTable.Alerts, state: true,
            [.. done.Select(id => (id, new object?[] { now, reference }))], cancellationToken);
        return done;
    }
}
