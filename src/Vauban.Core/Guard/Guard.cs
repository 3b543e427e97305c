// The guard sits between the policy and the audit in the one door. For every response that carries
// patient data it is told which patients the records concern, and decides, synchronously, whether
// they may leave: within the principal's normal reading (admit), a little beyond (admit, slowly),
// further (a person must prove both factors again), or beyond the bound (refuse, suspend the session
// or client, tell the security officer; a second suspension or a canary locks the person's account).
// Reading patterns live in memory, one small state per principal under its own lock; containments,
// canaries and releases are rows in the database, written when they happen and re-read every few
// seconds, so they survive a restart and reach every server. The one bound of DESIGN.md's invariant 5,
// patients outside care relationships, is counted in the database itself (OutsideCareReads), so that
// it holds across every server of a store, synchronously.
using System.Collections.Concurrent;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Storage;

namespace Vauban.Guard;

public enum GuardVerdict { Admit, StepUp, Suspended, Locked, ReasonRequired }

public readonly record struct GuardDecision(GuardVerdict Verdict, TimeSpan Delay, string? Reason)
{
    public static GuardDecision Admit => new(GuardVerdict.Admit, TimeSpan.Zero, null);
    public bool Admitted => Verdict == GuardVerdict.Admit;
}

/// <summary>
/// What is about to leave: the interaction, the number of records, the distinct patients they concern
/// (<see cref="Patients"/>, all of them, for canaries) and those the principal did not create itself
/// (<see cref="Counted"/>, for the reading windows), and for searches, histories and $everything the page depth (1 = first page).
/// </summary>
public sealed record GuardRequest(Interaction Interaction, string ResourceType, int Records, IReadOnlyCollection<string> Patients, IReadOnlyCollection<string> Counted, int PageDepth = 1)
{
    public static GuardRequest Write(Interaction interaction, string type) => new(interaction, type, 0, [], []);

    /// <summary>Of <see cref="Counted"/>, the patients whose identity leaves: their Patient resource itself (name, NIR/INS,
    /// birth date, address, phone, e-mail) is among the records — read, vread, history, a search match or an
    /// <c>_include</c>, <c>$everything</c>, an export of Patient — not merely a record that concerns them.</summary>
    public IReadOnlyCollection<string> Identities { get; init; } = [];

    /// <summary>Of <see cref="Counted"/>, the patients on the principal's own schedule of a day: the patients of her appointments,
    /// listed by a search of them by herself as practitioner over at most a day (her agenda). They count in every window but the
    /// minute's: paging through a busy day is her work, and how many patients she reads stays bounded by the hour and the day.</summary>
    public IReadOnlyCollection<string> Scheduled { get; init; } = [];

    /// <summary>The patient of a Patient/$everything, or of a break-the-glass grant asked for; null otherwise.</summary>
    public string? Subject { get; init; }

    /// <summary>A first search page's parameters, for the enumeration shapes (name and birth-date sweeps); null otherwise.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? SearchParameters { get; init; }

    /// <summary>The records leave from inside a write transaction (a read entry of a transaction Bundle, a conditional
    /// create's match): the guard's own writes (containment, alert) must not wait for the writer slot that transaction
    /// holds, so they are written just after, in the background, while the containment already holds in memory.</summary>
    public bool InsideWriteTransaction { get; init; }

    /// <summary>That write transaction, when the records services hold one: the count of patients outside care relationships
    /// (<see cref="OutsideCareReads"/>) is written in it, since the writer it holds (SQLite) would not be had twice.</summary>
    internal WriteScope? Scope { get; init; }

    /// <summary>Entries of the audit log, not records: the patients they name count in the reader's windows as any patient's data
    /// would, but a canary among them is the incident the security officer is looking into, which contains no one.</summary>
    public bool OfTheAuditLog { get; init; }
}

/// <summary>An active containment: a suspended session or client, or a locked account, and why (<see cref="ContainmentCauses"/>).</summary>
public sealed record Containment(long TenantId, string Principal, string? Account, string Level, string Cause, string Reason, DateTimeOffset ContainedAt)
{
    /// <summary>Made because the principal reached a canary patient: the security officer's to release (<see cref="RecordsGuard.MayActOnCanaries"/>).</summary>
    public bool ByCanary => Cause == ContainmentCauses.Canary;

    /// <summary>Released by the security officer or the operator only (<see cref="RecordsGuard.MayActOnCanaries"/>): a canary's, or
    /// the one her own reading of the audit log caused (an administrator releasing it is the insider pair the canary rule closes).</summary>
    public bool OfficersToRelease => ContainmentCauses.AreOfficersToRelease(Cause);
}

public static class ContainmentLevels
{
    public const string Suspended = "suspended";
    public const string Locked = "locked";
}

/// <summary>Why a containment was made, as stored in <c>guard_containments.cause</c> (schema step 17).</summary>
public static class ContainmentCauses
{
    /// <summary>A canary patient was reached: no workflow opens one. Released by the security officer or the operator only.</summary>
    public const string Canary = "canary";

    /// <summary>A reading level was crossed: distinct patients or identities in a window, patients outside care relationships,
    /// break-the-glass grants, search results, $everything, the high-risk bound.</summary>
    public const string Volume = "volume";

    /// <summary>The security officer read the audit log beyond her levels (ADR 0008): another officer or the operator releases it,
    /// not an administrator (since 2026-12-06; made before, such containments are <see cref="Volume"/>).</summary>
    public const string AuditLog = "audit-log";

    /// <summary>Whether a containment of this cause is released by the security officer or the operator only (a canary's, or the one
    /// an officer's reading of the audit log caused), not by an administrator.</summary>
    public static bool AreOfficersToRelease(string cause) => cause is Canary or AuditLog;
}

public sealed partial class RecordsGuard
{
    /// <summary>The header in which a principal states why it needs a bulk read ($everything beyond a few patients, deep search pages).</summary>
    public const string ReasonHeader = "X-Vauban-Reason";
    public const int MinimumReasonLength = 10;
    public const int MaximumReasonLength = 500;

    private readonly StoreDatabase _database;
    private readonly SecurityAlerts _alerts;
    private readonly KeyRing _keys;
    private readonly AuditTrail _audit;
    private readonly AccessRows _rows;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<(long Tenant, string Principal), ReadingState> _states = new();
    private readonly ConcurrentDictionary<(long Tenant, string Subject), Containment> _contained = new();
    private volatile Dictionary<long, HashSet<string>> _canaries = [];

    // A canary met in a narrow search (a desk looking up a name) is told to the officer once a day for each principal and
    // canary: a desk searching a common name again and again raised the same alert every time. In this process's memory: a
    // restart may tell it once more. Bounded: past MaxCanarySeen pairs the newest half is kept.
    private readonly ConcurrentDictionary<(long Tenant, string Principal, string Canary), long> _canarySeen = new();
    private readonly Lock _canaryTrim = new();
    private static readonly long CanarySeenRepeatMs = (long)TimeSpan.FromDays(1).TotalMilliseconds;
    internal const int MaxCanarySeen = 10_000;
    private readonly ConcurrentDictionary<(long Tenant, string Principal), ConcurrentDictionary<string, long>> _grants = new();
    private long _refreshedAt = long.MinValue;
    private long _sweptAt;
    private int _refreshing;

    internal RecordsGuard(StoreDatabase database, SecurityAlerts alerts, KeyRing keys, AuditTrail audit, AccessRows rows, GuardOptions options, TimeProvider time)
    {
        options.Validate();
        _database = database;
        _alerts = alerts;
        _keys = keys;
        _audit = audit;
        _rows = rows;
        Options = options;
        _time = time;
    }

    public GuardOptions Options { get; }

    /// <summary>Set only by the guard benchmark, to measure what the guard costs.</summary>
    internal bool Disabled { get; set; }

    /// <summary>Reads containments, canaries and break-the-glass grants from the database (at start, then every few seconds).</summary>
    internal async Task LoadAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetUtcNow();
        var now = started.ToUnixTimeMilliseconds();
        // Containments this server wrote up to here are in what is read next; later ones may not be.
        var writtenBefore = Interlocked.Read(ref _containmentsWritten);
        var contained = new Dictionary<(long, string), Containment>();
        var canaries = new Dictionary<long, HashSet<string>>();
        var grants = new List<AuthenticatedRow>();
        // Asked by a request that may hold a write transaction: a connection that the requests waiting for this refresh do not hold.
        await _database.LookUpAsync(async (connection, cancellationToken) =>
        {
            contained.Clear(); // read again from the start on a new connection, when the first had died
            canaries.Clear();
            grants.Clear();
            // Baselines are read once, at start: after that this server is where they are learned.
            if (!_baselinesLoaded)
            {
                await LoadBaselinesAsync(connection, cancellationToken);
                _baselinesLoaded = true;
                Interlocked.Exchange(ref _flushedAt, now);
            }
            using (var command = connection.Command("SELECT tenant_id, principal, account, level, cause, reason, contained_at FROM guard_containments WHERE released_at IS NULL"))
            using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    var c = ReadContainment(reader);
                    if (!contained.TryGetValue((c.TenantId, c.Principal), out var had) || !Outranks(had, c)) contained[(c.TenantId, c.Principal)] = c;
                }
            }
            using (var command = connection.Command("SELECT tenant_id, patient FROM guard_canaries"))
            using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    var tenant = reader.GetInt64(0);
                    if (!canaries.TryGetValue(tenant, out var set)) canaries[tenant] = set = new HashSet<string>(StringComparer.Ordinal);
                    set.Add(reader.GetString(1));
                }
            }
            grants.AddRange(await AccessRows.ReadAllAsync(connection.Command(""), AuthenticatedTable.Grants, "", "WHERE r.expires_at > @now",
                static (row, _, _) => row, cancellationToken, ("now", now)));
            return true;
        }, cancellationToken);
        // A containment missing from the database was released elsewhere (the command line, another server): the principal's
        // reading here starts afresh, as a release on this server does. One this server has not finished writing, or wrote
        // after the read began, is not missing.
        foreach (var (key, value) in _contained)
        {
            if (contained.ContainsKey(key))
            {
                if (_unwritten.TryGetValue(key, out var written) && written <= writtenBefore) _unwritten.TryRemove(new KeyValuePair<(long, string), long>(key, written));
                continue;
            }
            if (_unwritten.TryGetValue(key, out var pending) && pending > writtenBefore) continue;
            if (value.ContainedAt >= started.AddSeconds(-1)) continue;
            if (!_contained.TryRemove(new KeyValuePair<(long, string), Containment>(key, value))) continue;
            _unwritten.TryRemove(key, out _);
            Forget(key.Tenant, value.Account ?? value.Principal);
        }
        foreach (var (key, value) in contained)
        {
            // One made here that outranks what the store holds (a canary's over a volume one) and is not written yet stays.
            if (_contained.TryGetValue(key, out var here) && Outranks(here, value) && _unwritten.TryGetValue(key, out var pending) && pending > writtenBefore) continue;
            _contained[key] = value;
        }
        _canaries = canaries;
        // Only grants whose rows verify (ADR 0014), as the policy believes them: one written in the database is no emergency access to
        // count or to record as such. One that does not is reported once, in the background (a request may hold the writer here).
        foreach (var grant in grants)
        {
            if (!_rows.Believe(grant) || grant.TenantId is not { } tenant || grant.Text("principal") is not { } principal || grant.Text("patient") is not { } patient
                || grant.Number("expires_at") is not { } expires) continue;
            _grants.GetOrAdd((tenant, principal), _ => new(StringComparer.Ordinal))[patient] = expires;
        }
        if (now - _sweptAt > (long)TimeSpan.FromMinutes(10).TotalMilliseconds) Sweep(now);
        Interlocked.Exchange(ref _refreshedAt, now);
    }

    /// <summary>Forgets expired grants and the reading of principals idle for longer than the longest window (and the lock window);
    /// removes the rows of patients read outside care relationships that left their window, in the background (not at the first
    /// sweep, at start: a command-line verb opens the store for a moment).</summary>
    private void Sweep(long now)
    {
        if (_sweptAt != 0)
        {
            Track(async () =>
            {
                try { await OutsideCareReads.PruneAsync(_database, now, CancellationToken.None); }
                catch (System.Data.Common.DbException) { /* left for the next sweep: rows out of the window are not counted */ }
            });
        }
        _sweptAt = now;
        foreach (var (key, grants) in _grants)
        {
            foreach (var (patient, expires) in grants)
            {
                if (expires <= now) grants.TryRemove(patient, out _);
            }
            if (grants.IsEmpty) _grants.TryRemove(key, out _);
        }
        var idle = now - (long)Math.Max(TimeSpan.FromDays(1).TotalMilliseconds, Options.LockAfterSecondSuspensionWithin.TotalMilliseconds);
        foreach (var (key, state) in _states)
        {
            bool forget;
            lock (state) forget = state.LastSeenMs < idle;
            if (forget) _states.TryRemove(key, out _);
        }
    }

    private async ValueTask RefreshIfStaleAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (now - Interlocked.Read(ref _refreshedAt) < (long)Options.RefreshInterval.TotalMilliseconds) return;
        if (Interlocked.CompareExchange(ref _refreshing, 1, 0) != 0) return;
        try
        {
            await LoadAsync(cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }
    }

    /// <summary>
    /// The guard's question, asked by the records services after the policy and before the audit append, for
    /// every response that carries records. Writes ask it too (with no patients): a contained principal writes nothing.
    /// </summary>
    public async ValueTask<GuardDecision> AdmitAsync(AccessContext context, GuardRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var principal = context.Principal;
        if (Disabled || !Options.Enabled || principal.Kind == PrincipalKind.System) return GuardDecision.Admit;
        await RefreshIfStaleAsync(cancellationToken);
        var tenant = context.Tenant.Id;
        // A contained principal is refused below, after the canaries: one it reaches while held is still the officer's incident.
        var held = ContainmentOf(tenant, principal);
        if (held is not null && request.Patients.Count == 0) return Refusal(principal, held);

        var now = _time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();

        // Canaries: no workflow opens them. A read, or a broad search page carrying one, is a principal walking the records.
        if (request.Patients.Count > 0 && !request.OfTheAuditLog && _canaries.TryGetValue(tenant, out var canaries))
        {
            string? canary = null;
            foreach (var patient in request.Patients)
            {
                if (canaries.Contains(patient)) { canary = patient; break; }
            }
            if (canary is not null)
            {
                // The narrow search is the desk's (a person typing a name); an API client types none, and a page of three ids it
                // chose (_id=a,b,canary) returns the canary's identity as fully as a read would.
                if (principal.Kind == PrincipalKind.Person && request.Interaction is Interaction.Search or Interaction.HistoryType
                    && request.Patients.Count <= Options.CanaryNarrowSearchPatients && request.PageDepth == 1)
                {
                    if (held is null && FirstSightingToday(tenant, principal.Id, canary, nowMs))
                    {
                        var seen = $"{Who(principal)}: canary Patient/{canary} appeared in a narrow {Verb(request.Interaction)} on {request.ResourceType} ({request.Patients.Count} patient(s)); not contained. Told once a day for this principal and canary.";
                        if (request.InsideWriteTransaction) Defer(() => _alerts.RaiseAsync(tenant, KnownAlertKinds.GuardCanarySeen, principal.Id, seen, CancellationToken.None));
                        else await _alerts.RaiseAsync(tenant, KnownAlertKinds.GuardCanarySeen, principal.Id, seen, cancellationToken);
                    }
                }
                else if (held is null || !held.ByCanary)
                {
                    var contained = await ContainForCanaryAsync(context, request.Interaction, request.ResourceType, canary,
                        request.Interaction == Interaction.Search ? $" (page {request.PageDepth}, {request.Patients.Count} patients)" : "",
                        held, request.InsideWriteTransaction, cancellationToken);
                    // Held already, it is told what it was held for: a suspended session told "locked" here would learn a canary.
                    return held is null ? contained : Refusal(principal, held);
                }
            }
        }

        if (held is not null) return Refusal(principal, held);

        var limits = Options.For(context.Tenant, principal);
        var state = _states.GetOrAdd((tenant, principal.Id), _ => new ReadingState());
        var reasonStated = !string.IsNullOrWhiteSpace(context.StatedReason);
        var signals = Options.Signals;
        // Most requests of a principal come from where its previous one came: its last source and device are remembered with their blind index.
        long? source = null, device = null;
        if (context.SourceAddress is { } address)
        {
            source = state.LastSource is { } last && string.Equals(last.Raw, address, StringComparison.Ordinal) ? last.Hash
                : SourceNetwork.Of(address) is { } network ? await BlindAsync(tenant, 'a', network, cancellationToken) : null;
            if (source is { } hashed) state.LastSource = new Remembered(address, hashed);
        }
        if (context.Device is { Length: > 0 } deviceClass)
        {
            device = state.LastDevice is { } last && string.Equals(last.Raw, deviceClass, StringComparison.Ordinal) ? last.Hash : await BlindAsync(tenant, 'd', deviceClass, cancellationToken);
            state.LastDevice = new Remembered(deviceClass, device.Value);
        }
        var baseline = state.Baseline ??= BaselineOf(tenant, principal.Id);
        var role = principal.Kind == PrincipalKind.Person && principal.Role is { } staffRole ? BaselineOf(tenant, RoleSubject(staffRole)) : null;
        // Patients outside the principal's care relationships (a person's break-the-glass grants) are counted in the store, across
        // every server of it, before the principal's lock is taken (nothing is awaited under it). Requests without any never get here.
        // A grant asked for counts its patient: another server learns of a grant only when it next re-reads the store (within 2 s),
        // and a read there meanwhile, which the policy admits from the stored grant, would not be counted outside care.
        var outside = request.Interaction == Interaction.BreakTheGlass && request.Subject is { } granted
            ? new HashSet<string>(StringComparer.Ordinal) { granted }
            : OutsideCare(tenant, principal, request.Counted, nowMs);
        var outsideCount = outside.Count == 0 ? 0 : await OutsideCareReads.RecordAndCountAsync(_database, request.Scope,
            await _keys.ForTenantAsync(tenant, cancellationToken), tenant, principal.Id, outside, nowMs, cancellationToken);
        var raised = new List<(string Signal, string Detail)>();
        string? suspendWhy = null;
        string? stepUpWhy = null;
        GuardDecision decision;
        lock (state)
        {
            // Bulk reads need a stated reason.
            // One $everything is one patient's record, however many pages and times it is read in: the distinct patients
            // whose $everything was asked for (each call's first page) are counted, and the next pages (sealed to the same
            // principal and patient) are weighed as the records they carry, like any read. An API client's only: a person's
            // $everything is the chart she opens, one patient at a time, which her distinct-patient levels weigh as any read
            // (before, the fourth chart of an hour was refused for want of a reason the pages cannot give, shown as "not in
            // your care", and the 51st of a day suspended a front desk).
            var everythingOf = principal.Kind == PrincipalKind.ApiClient && request.Interaction == Interaction.Everything && request.PageDepth == 1
                ? request.Subject ?? "" : null;
            if (everythingOf is not null && !reasonStated && !state.Everything.Contains(ReadingState.Hour, everythingOf, nowMs)
                && state.Everything.Count(ReadingState.Hour, nowMs) >= limits.EverythingWithoutReasonPerHour)
            {
                return new GuardDecision(GuardVerdict.ReasonRequired, TimeSpan.Zero,
                    $"Patient/$everything for more than {limits.EverythingWithoutReasonPerHour} patient(s) an hour needs a stated reason: send it in the {ReasonHeader} header "
                    + $"({MinimumReasonLength}–{MaximumReasonLength} characters). It is kept with the audit record of the access.");
            }
            if (request.Interaction is Interaction.Search or Interaction.HistoryType && request.PageDepth > limits.PageDepthWithoutReason && !reasonStated)
            {
                return new GuardDecision(GuardVerdict.ReasonRequired, TimeSpan.Zero,
                    $"Search pages beyond page {limits.PageDepthWithoutReason} need a stated reason: send it in the {ReasonHeader} header "
                    + $"({MinimumReasonLength}–{MaximumReasonLength} characters), or narrow the search.");
            }

            state.LastSeenMs = nowMs;
            var day = nowMs / MsPerDay;
            // The hour on Paris's clocks: a night shift is 22:00–06:00 in winter and in summer, not UTC's hours shifted by the season.
            var hour = (int)(ParisTime.WallClockOf(nowMs) / MsPerHour % 24);
            int? learnedHour = null, learnedDay = null, learnedIdentityHour = null, learnedIdentityDay = null;
            void Raise(string signal, string detail)
            {
                if (state.Signals.TryGetValue(signal, out var until) && until > nowMs) return;
                state.Signals[signal] = nowMs + (long)signals.SignalLifetime.TotalMilliseconds;
                raised.Add((signal, detail));
            }
            lock (baseline)
            {
                if (baseline.Day != day) Roll(tenant, principal.Id, baseline, day);
                if (principal.Role is { } accountRole) baseline.RoleName = accountRole.ToString();
                var mature = baseline.Mature(signals.LearningDays);
                if (source is { } s)
                {
                    var establishment = BaselineOf(tenant, EstablishmentSubject);
                    var known = establishment.SourcesView;
                    if (known is { Count: > 0 } && day - establishment.FirstDay >= signals.LearningDays && !known.Contains(s))
                        Raise(KnownGuardSignals.NewSourceForEstablishment, "a source network the establishment has never seen");
                    else if (mature && !baseline.Sources.ContainsKey(s) && !baseline.TodaySources.Contains(s))
                        Raise(KnownGuardSignals.NewSource, "a source network this principal has not used");
                    baseline.TodaySources.Add(s);
                }
                if (device is { } d)
                {
                    if (mature && !baseline.Devices.ContainsKey(d) && !baseline.TodayDevices.Contains(d)) Raise(KnownGuardSignals.NewDevice, "a device class this principal has not used");
                    baseline.TodayDevices.Add(d);
                }
                var roleMature = role is not null && role.Mature(signals.RoleLearningDays);
                // Unusual for this account: its own hours only (a role mixes day and night shifts; a new night nurse is not an intruder).
                if (request.Counted.Count > 0 && mature && Baseline.ShareAround(baseline.Hours, hour) is { } share && share < signals.UnusualHourShare)
                    Raise(KnownGuardSignals.UnusualHour, $"reading at {hour:00}:00 {ParisTime.Name}, an hour that carries {share:P1} of its learned activity");
                // The audit log's reader is weighed by her configured levels only: an officer's reading comes in bursts (an incident
                // looked into), which her quiet days' peak would mistake for a theft.
                if (request.OfTheAuditLog) (learnedHour, learnedDay) = (null, null);
                else if (mature) (learnedHour, learnedDay) = (baseline.HourPeak, baseline.DayPeak);
                else if (roleMature) (learnedHour, learnedDay) = (role!.HourPeak, role.DayPeak);
                // Identity peaks are trusted once learned for as long (a baseline learned before they were counted has none yet).
                if (baseline.IdentityDays >= signals.LearningDays) (learnedIdentityHour, learnedIdentityDay) = (baseline.IdentityHourPeak, baseline.IdentityDayPeak);
                else if (role is not null && role.IdentityDays >= signals.RoleLearningDays) (learnedIdentityHour, learnedIdentityDay) = (role.IdentityHourPeak, role.IdentityDayPeak);
            }
            // Enumeration shapes. Inside a unit of work that may run again whole (its connection lost before COMMIT), what the
            // attempt fed them is put back when it is abandoned, whatever the verdict: the same read or search fed again by the next
            // attempt is a step of 0, which broke the run the act extends (a sweep crossing a lost connection went uncaught).
            var shapesBefore = request.Scope is not null ? state.Shapes.Save() : default;
            var shapesChanges = state.Shapes.Changes;
            if (request.Interaction is Interaction.Read or Interaction.VRead && request.ResourceType == KnownResourceTypes.Patient && request.Patients.Count == 1
                && state.Shapes.ReadId(request.Patients.First()) is var run && run >= signals.ConsecutiveIdRun)
            {
                Raise(KnownGuardSignals.ConsecutiveIds, $"{run} patients read one after another by consecutive ids");
            }
            if (request.SearchParameters is { Count: > 0 } searched)
            {
                var (nameSteps, dateSteps) = state.Shapes.Search(searched);
                if (nameSteps >= signals.SweepSteps) Raise(KnownGuardSignals.NameSweep, $"{nameSteps + 1} successive searches stepping a name prefix one letter at a time");
                if (dateSteps >= signals.SweepSteps) Raise(KnownGuardSignals.BirthDateSweep, $"{dateSteps + 1} successive searches stepping birth dates");
            }
            if (request.Scope is { } fed && state.Shapes.Changes != shapesChanges)
            {
                var changesAfter = state.Shapes.Changes;
                fed.TakenBackIfAbandoned.Add(() =>
                {
                    lock (state) state.Shapes.TakeBack(shapesBefore, changesAfter);
                });
            }
            var (risk, riskSignals) = state.Risk(nowMs, signals);
            var level = Level.Admit;
            var slowExcess = 0;
            string? stepUpSignal = null;
            void Weigh(string signal, long value, Threshold threshold)
            {
                if (threshold.Suspend is { } suspend && value > suspend)
                {
                    if (level < Level.Suspend) suspendWhy = $"{signal}: {value} > {suspend}";
                    level = Level.Suspend;
                }
                else if (threshold.StepUp is { } stepUp && value >= stepUp && principal.Kind == PrincipalKind.Person)
                {
                    if (level < Level.StepUp) stepUpSignal = $"{signal}: {value} ≥ {stepUp}";
                    level = Max(level, Level.StepUp);
                }
                else if (threshold.Slow is { } slow && value >= slow)
                {
                    level = Max(level, Level.Slow);
                    slowExcess = (int)Math.Max(slowExcess, Math.Min(value - slow + 1, 1000));
                }
            }
            var client = principal.Kind == PrincipalKind.ApiClient;
            var scale = risk >= signals.ElevatedRisk ? signals.ElevatedScale : 1.0;
            var riskNote = risk >= signals.ElevatedRisk ? $", risk {risk}: {riskSignals}" : "";
            var (hourCount, dayCount, identityHourCount, identityDayCount) = (0, 0, 0, 0);
            if (request.Counted.Count > 0)
            {
                Span<int> counts = stackalloc int[ReadingState.Windows];
                state.Patients.CountWith(request.Counted, nowMs, counts);
                (hourCount, dayCount) = (counts[ReadingState.Hour], counts[ReadingState.Day]);
                // Elevated risk tightens the hour: the minute already stops scripts, and a page of results must not trip it.
                // Her own day's list is left out of the minute (ADR 0008), unless a risk signal is active: a new network or device is
                // what a stolen session looks like.
                var scheduled = risk >= signals.ElevatedRisk ? 0 : state.ScheduledInMinute(request, counts[ReadingState.Minute], limits.PatientsPerMinute, nowMs);
                Weigh("distinct patients in a minute", counts[ReadingState.Minute] - scheduled, limits.PatientsPerMinute);
                Weigh(learnedHour is null ? "distinct patients in an hour" : $"distinct patients in an hour (learned peak {learnedHour})",
                    hourCount, Scale(Learned(limits.PatientsPerHour, learnedHour, client, signals), scale));
                // The day's level is not scaled: it already holds the day's legitimate work; high risk has its own bound from when it began.
                Weigh(learnedDay is null ? "distinct patients in a day" : $"distinct patients in a day (learned peak {learnedDay})",
                    dayCount, Learned(limits.PatientsPerDay, learnedDay, client, signals));
            }
            if (request.Identities.Count > 0)
            {
                // Identity reads: the same windows, counting only the patients whose identity left; their own levels and learned peaks.
                Span<int> counts = stackalloc int[ReadingState.Windows];
                state.Identities.CountWith(request.Identities, nowMs, counts);
                (identityHourCount, identityDayCount) = (counts[ReadingState.Hour], counts[ReadingState.Day]);
                Weigh(IdentityReads("an hour", learnedIdentityHour), identityHourCount,
                    Scale(Learned(limits.IdentitiesPerHour ?? limits.PatientsPerHour, learnedIdentityHour, client, signals), scale));
                Weigh(IdentityReads("a day", learnedIdentityDay), identityDayCount, Learned(limits.IdentitiesPerDay ?? limits.PatientsPerDay, learnedIdentityDay, client, signals));
            }
            if (risk >= signals.HighRisk)
            {
                // At high risk the principal meets a small bound counted from when the risk began, whatever its role or baseline.
                if (state.RiskSince is null)
                {
                    // Counted from the last hour: what the signals' shape (a sweep, a run of ids) already returned counts too.
                    state.RiskSince = nowMs;
                    state.AtRisk.Clear();
                    foreach (var patient in state.Patients.Keys(ReadingState.Hour, nowMs).ToList()) state.AtRisk.Touch(patient, nowMs);
                }
                if (request.Counted.Count > 0) Weigh("distinct patients since the risk signals", state.AtRisk.CountWith(request.Counted, nowMs), signals.AtRiskPatients);
            }
            else state.RiskSince = null;
            if (outside.Count > 0) Weigh("distinct patients outside care relationships in a day", outsideCount, limits.OutsideCarePerDay);
            // Asked before a grant is made (AdmitGrantAsync), the grant asked for counts: the grant past the bound is refused and
            // contains the principal, instead of being made, and told to the officer, again and again until it next reads.
            Weigh("break-the-glass grants in a day", state.BreakTheGlass.Sum(nowMs) + (request.Interaction == Interaction.BreakTheGlass ? 1 : 0), limits.BreakTheGlassPerDay);
            if (request.Interaction is Interaction.Search or Interaction.HistoryType && request.Records > 0)
                Weigh("search results in an hour", state.SearchRecords.Sum(nowMs) + request.Records, limits.SearchRecordsPerHour);
            if (everythingOf is not null)
            {
                Span<int> counts = stackalloc int[ReadingState.Windows];
                state.Everything.CountWith([everythingOf], nowMs, counts);
                Weigh("patients' $everything in a day", counts[ReadingState.Day], limits.EverythingPerDay);
            }

            if (level == Level.Suspend || risk >= signals.HighRisk)
            {
                // A day spent at high risk or contained teaches the baseline nothing.
                lock (baseline) baseline.Tainted = true;
            }
            if (suspendWhy is not null) suspendWhy += riskNote;
            if (stepUpSignal is not null) stepUpSignal += riskNote;
            var stepUpOwed = false;
            if (level == Level.StepUp)
            {
                if (state.StepUpSince is null)
                {
                    state.StepUpSince = nowMs;
                    stepUpWhy = stepUpSignal;
                }
                stepUpOwed = principal.AuthenticatedAt is not { } proven || proven.ToUnixTimeMilliseconds() < state.StepUpSince;
            }
            // The episode ends when reading is back under the levels: not at a write or an empty page, which weigh no patients
            // (a person who had proven both factors again was asked again at the next read, and the officer told again).
            else if (level == Level.Admit && request.Counted.Count > 0) state.StepUpSince = null;

            if (stepUpOwed)
            {
                decision = new GuardDecision(GuardVerdict.StepUp, TimeSpan.Zero, principal.Role == StaffRole.SecurityOfficer
                    ? "You have read the audit log beyond the security officer's level for proving both factors again: prove them (sign-in page "
                      + "/account/reauth), then retry. Larger investigations run at the server (vauban breach, vauban audit patient)."
                    : "Your reading is unusual for your role: prove both factors again (sign-in page /account/reauth), then retry. The security officer is told.");
            }
            else if (level == Level.Suspend)
            {
                decision = default;
            }
            else
            {
                state.Admit(request, nowMs);
                if (state.RiskSince is not null)
                {
                    foreach (var patient in request.Counted) state.AtRisk.Touch(patient, nowMs);
                }
                if (request.Counted.Count > 0)
                {
                    lock (baseline)
                    {
                        baseline.TodayDayPeak = Math.Max(baseline.TodayDayPeak, dayCount);
                        baseline.TodayHourPeak = Math.Max(baseline.TodayHourPeak, hourCount);
                        baseline.TodayIdentityDayPeak = Math.Max(baseline.TodayIdentityDayPeak, identityDayCount);
                        baseline.TodayIdentityHourPeak = Math.Max(baseline.TodayIdentityHourPeak, identityHourCount);
                        baseline.TodayHours[hour]++;
                        baseline.Dirty = true;
                    }
                }
                if (request.Interaction is Interaction.Search or Interaction.HistoryType) state.SearchRecords.Add(request.Records, nowMs);
                if (everythingOf is not null)
                {
                    state.Everything.Touch(everythingOf, nowMs);
                }
                if (request.Scope is { } unit)
                {
                    // Inside a unit of work that runs again whole when its connection is found lost before COMMIT: what is summed
                    // rather than kept once per patient is taken back with the abandoned attempt, which the next one counts again
                    // (a retried transaction Bundle's search results counted twice towards the level).
                    var records = request.Interaction is Interaction.Search or Interaction.HistoryType ? request.Records : 0;
                    int? activeHour = request.Counted.Count > 0 ? hour : null;
                    unit.TakenBackIfAbandoned.Add(() => TakeBack(state, baseline, records, activeHour, day, nowMs));
                }
                var delay = level == Level.Slow ? TimeSpan.FromTicks(Math.Min(Options.MaxDelay.Ticks, Options.SlowDelay.Ticks * slowExcess)) : TimeSpan.Zero;
                decision = new GuardDecision(GuardVerdict.Admit, delay, null);
            }
        }
        foreach (var (signal, detail) in raised) await SignalAsync(context, request, signal, detail, cancellationToken);
        FlushBaselinesIfDue(nowMs);
        if (stepUpWhy is not null)
        {
            // Once per episode: the officer sees who was asked to prove both factors again, and why. Inside a write transaction
            // (a transaction Bundle's read, a conditional create's match) the alert waits for it to end: on SQLite the alert's own
            // write would wait for the writer slot that transaction holds, for ever, and every writer of the server behind it.
            var stepUp = $"{Who(principal)}: asked to prove both factors again ({stepUpWhy}, limit for {LimitsName(principal)}) on {Verb(request.Interaction)} of {request.ResourceType}.";
            if (request.InsideWriteTransaction) Defer(() => _alerts.RaiseAsync(tenant, KnownAlertKinds.GuardStepUp, principal.Id, stepUp, CancellationToken.None));
            else await _alerts.RaiseAsync(tenant, KnownAlertKinds.GuardStepUp, principal.Id, stepUp, CancellationToken.None);
        }
        if (suspendWhy is null) return decision;
        // A second suspension of the same account within the window locks it: a suspension of another of its sessions, remembered
        // here or still held in the database (a restart forgets the reading, not the containments). Requests of one session
        // crossing together are one suspension, not two.
        var lockAccount = false;
        if (principal.Kind == PrincipalKind.Person)
        {
            var window = (long)Options.LockAfterSecondSuspensionWithin.TotalMilliseconds;
            var subject = SuspensionSubject(principal);
            lock (state)
            {
                lockAccount = state.LastSuspension is { } last && last.Subject != subject && nowMs - last.At <= window;
                state.LastSuspension = (subject, nowMs);
            }
            lockAccount = lockAccount || HeldSuspension(tenant, principal.Id, subject, nowMs - window);
        }
        return await ContainAsync(context, lockAccount ? ContainmentLevels.Locked : ContainmentLevels.Suspended,
            request.OfTheAuditLog ? ContainmentCauses.AuditLog : ContainmentCauses.Volume,
            lockAccount ? KnownAlertKinds.GuardLocked : KnownAlertKinds.GuardSuspended,
            $"{Who(principal)}: {suspendWhy} (limit for {LimitsName(principal)}) on {Verb(request.Interaction)} of {request.ResourceType}"
            + (lockAccount ? "; second suspension within " + Options.LockAfterSecondSuspensionWithin.TotalHours.ToString("0", System.Globalization.CultureInfo.InvariantCulture) + " h" : "") + ".",
            request.InsideWriteTransaction, cancellationToken);
    }

    /// <summary>Takes back what an admitted request inside an abandoned attempt of a unit of work summed (<see cref="WriteScope.TakenBackIfAbandoned"/>):
    /// its search results, and its hour of activity in the day's baseline (still that day's).</summary>
    private static void TakeBack(ReadingState state, Baseline baseline, int records, int? hour, long day, long atMs)
    {
        lock (state) state.SearchRecords.TakeBack(records, atMs);
        if (hour is not { } h) return;
        lock (baseline)
        {
            if (baseline.Day == day && baseline.TodayHours[h] > 0) baseline.TodayHours[h]--;
        }
    }

    /// <summary>Asked by break-the-glass before it grants: a contained principal, or one whose grant would cross the day's bound of
    /// grants or of patients outside care relationships (either contains it), is refused; so is one owing a step-up. The patient
    /// counts outside care from the grant on, on every server: one that has not yet re-read the grants admits its reads uncounted.</summary>
    internal ValueTask<GuardDecision> AdmitGrantAsync(AccessContext context, string patient, CancellationToken cancellationToken) =>
        AdmitAsync(context, GuardRequest.Write(Interaction.BreakTheGlass, KnownResourceTypes.Patient) with { Subject = patient }, cancellationToken);

    /// <summary>Told by break-the-glass: a grant was made (it counts, and the patient is outside the person's care relationships until it expires).</summary>
    internal void NoteGrant(AccessContext context, string patient, DateTimeOffset expires)
    {
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        _grants.GetOrAdd((context.Tenant.Id, context.Principal.Id), _ => new(StringComparer.Ordinal))[patient] = expires.ToUnixTimeMilliseconds();
        var state = _states.GetOrAdd((context.Tenant.Id, context.Principal.Id), _ => new ReadingState());
        lock (state)
        {
            state.BreakTheGlass.Add(1, nowMs);
            state.LastSeenMs = nowMs;
        }
    }

    /// <summary>The active containment of this principal (its session, or its account, or the client), if any.</summary>
    public Containment? ContainmentOf(long tenant, Principal principal)
    {
        ArgumentNullException.ThrowIfNull(principal);
        if (_contained.IsEmpty) return null;
        if (_contained.TryGetValue((tenant, principal.Id), out var own)) return own;
        if (principal.SessionId is { } session && _contained.TryGetValue((tenant, SessionSubject(session)), out var bySession)) return bySession;
        return null;
    }

    public static string SessionSubject(string sessionId) => "session:" + sessionId;

    /// <summary>What a suspension holds: a person's session (their account when the request names none), or the client.</summary>
    private static string SuspensionSubject(Principal principal) =>
        principal.Kind == PrincipalKind.Person && principal.SessionId is { } session ? SessionSubject(session) : principal.Id;

    /// <summary>Whether another session of <paramref name="account"/> is held suspended since <paramref name="sinceMs"/>.</summary>
    private bool HeldSuspension(long tenant, string account, string subject, long sinceMs)
    {
        foreach (var (key, containment) in _contained)
        {
            if (key.Tenant == tenant && containment.Level == ContainmentLevels.Suspended && containment.Account == account && key.Subject != subject
                && containment.ContainedAt.ToUnixTimeMilliseconds() >= sinceMs) return true;
        }
        return false;
    }

    /// <summary>Whether the person holds an unexpired break-the-glass grant for the patient: what they do in that patient's
    /// record is emergency access (as the guard counts it, and as the audit entry's purpose records it), whatever else relates them.</summary>
    internal bool UnderBreakTheGlass(long tenant, Principal principal, string patient) =>
        principal.Kind == PrincipalKind.Person && !_grants.IsEmpty && _grants.TryGetValue((tenant, principal.Id), out var grants)
        && grants.TryGetValue(patient, out var expires) && expires > _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Whether the person holds any grant at all (the audit's cheap first question).</summary>
    internal bool HoldsGrants(long tenant, Principal principal) =>
        principal.Kind == PrincipalKind.Person && !_grants.IsEmpty && _grants.TryGetValue((tenant, principal.Id), out var grants) && !grants.IsEmpty;

    private HashSet<string> OutsideCare(long tenant, Principal principal, IReadOnlyCollection<string> patients, long nowMs)
    {
        var outside = new HashSet<string>(StringComparer.Ordinal);
        if (principal.Kind != PrincipalKind.Person || patients.Count == 0 || !_grants.TryGetValue((tenant, principal.Id), out var grants) || grants.IsEmpty) return outside;
        foreach (var patient in patients)
        {
            if (grants.TryGetValue(patient, out var expires) && expires > nowMs) outside.Add(patient);
        }
        return outside;
    }

    private readonly ConcurrentDictionary<Task, bool> _deferred = new();

    /// <summary>Runs a write of the guard's after the current write transaction (see <see cref="GuardRequest.InsideWriteTransaction"/>).</summary>
    private void Defer(Func<Task> write)
    {
        Interlocked.Increment(ref _deferrals);
        Track(write);
    }

    /// <summary>Runs <paramref name="work"/> in the background, waited for at shutdown (<see cref="FlushAsync"/>).</summary>
    private void Track(Func<Task> work)
    {
        var task = Task.Run(work);
        _deferred[task] = true;
        _ = task.ContinueWith(t => _deferred.TryRemove(t, out _), TaskScheduler.Default);
    }

    /// <summary>How many of the guard's writes were deferred past their answer since start (a test's view: a write deferred is
    /// one a crash right after the answer would lose).</summary>
    internal long Deferrals => Interlocked.Read(ref _deferrals);

    private long _deferrals;

    /// <summary>Waits for the guard's deferred writes (at shutdown, so that a containment decided just before survives the restart).</summary>
    public async Task FlushAsync()
    {
        foreach (var task in _deferred.Keys)
        {
            try { await task; }
            // The containment still held in memory; the officer sees the alert missing. A write refused by the audit chain (unwritable,
            // or a row changed as it was written) is caught too: at shutdown it escaped the store's disposal, which then left the
            // audit trail, the keys and the database undisposed.
            catch (Exception e) when (e is System.Data.Common.DbException or AuditUnavailableException or AuditIntegrityException) { }
        }
        try
        {
            await FlushBaselinesAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or AuditUnavailableException or AuditIntegrityException)
        {
            // Not written: what was learned since the last flush is learned again.
        }
    }

    /// <summary>Whether this principal's narrow search meeting this canary is the first in a day (and notes it).</summary>
    internal bool FirstSightingToday(long tenant, string principal, string canary, long nowMs)
    {
        var key = (tenant, principal, canary);
        while (true)
        {
            if (_canarySeen.TryGetValue(key, out var last))
            {
                if (nowMs - last < CanarySeenRepeatMs && nowMs >= last) return false;
                if (_canarySeen.TryUpdate(key, nowMs, last)) return true;
            }
            else if (_canarySeen.TryAdd(key, nowMs))
            {
                if (_canarySeen.Count > MaxCanarySeen) TrimCanarySightings();
                return true;
            }
        }
    }

    /// <summary>Past MaxCanarySeen pairs, keeps the newest half: a flood of pairs within one day had every new pair scan them all
    /// again, and the map grow past its bound. The next trim is then MaxCanarySeen / 2 new pairs away; a pair forgotten early
    /// is told once more when met again, as after a restart.</summary>
    private void TrimCanarySightings()
    {
        if (!_canaryTrim.TryEnter()) return; // another request is trimming
        try
        {
            if (_canarySeen.Count <= MaxCanarySeen) return;
            var pairs = _canarySeen.ToArray();
            Array.Sort(pairs, (a, b) => b.Value.CompareTo(a.Value));
            // Removed only if unchanged: a pair met again meanwhile is newer than this snapshot says.
            for (var i = MaxCanarySeen / 2; i < pairs.Length; i++) _canarySeen.TryRemove(pairs[i]);
        }
        finally
        {
            _canaryTrim.Exit();
        }
    }

    /// <summary>How many (principal, canary) sightings the guard remembers (tests).</summary>
    internal int CanarySightingsHeld => _canarySeen.Count;

    private async Task<GuardDecision> ContainAsync(AccessContext context, string level, string cause, string alertKind, string detail, bool deferWrite, CancellationToken cancellationToken)
    {
        var principal = context.Principal;
        var tenant = context.Tenant.Id;
        var now = _time.GetUtcNow();
        // People: a suspension holds the session (a new sign-in proves both factors again, and meets the same
        // counters); a lock holds the account. Clients: the client.
        var subject = level == ContainmentLevels.Suspended ? SuspensionSubject(principal) : principal.Id;
        var account = principal.Kind == PrincipalKind.Person ? principal.Id : null;
        var containment = new Containment(tenant, subject, account, level, cause, detail, now);
        // Concurrent requests of the same principal crossing together: the first one writes the containment and the alert. Whether
        // this call's containment is the one stored is told by what AddOrUpdate returns, not by a flag its delegates set: it may
        // run the add delegate, lose the race to another request, then run the update delegate — a flag set by the first stayed
        // set, and two requests both wrote a containment and its alert (GuardTests' sixteen parallel reads saw two rows once).
        // A canary's containment takes the place of a volume one of the same subject, whichever came first (helper-105 M1: two requests
        // of a client crossing together, the volume suspension landing first, kept the canary's cause and alert from being written).
        var current = _contained.AddOrUpdate((tenant, subject), _ => containment, (_, had) => Outranks(containment, had) ? containment : had);
        if (!ReferenceEquals(current, containment)) return Refusal(principal, current);
        _ = cancellationToken;
        // Until its row is written, the refresh must not take the containment for one released elsewhere.
        _unwritten[(tenant, subject)] = long.MaxValue;
        if (deferWrite) Defer(() => PersistAndNoteAsync(principal, containment, alertKind));
        else await PersistAndNoteAsync(principal, containment, alertKind);
        return Refusal(principal, containment);
    }

    /// <summary>
    /// Contains a principal that reached a canary, before anything of the request leaves (the detail says so: "returned by" read as if it
    /// had left). One already held for another cause is walking on: the canary's containment takes the place of that one
    /// (<see cref="Outranks"/>), so that the officer hears of the canary and an administrator cannot release it.
    /// </summary>
    private Task<GuardDecision> ContainForCanaryAsync(AccessContext context, Interaction interaction, string type, string canary, string page,
        Containment? held, bool deferWrite, CancellationToken cancellationToken) =>
        ContainAsync(context, context.Principal.Kind == PrincipalKind.Person ? ContainmentLevels.Locked : ContainmentLevels.Suspended,
            ContainmentCauses.Canary, KnownAlertKinds.GuardCanary,
            $"{Who(context.Principal)}: canary Patient/{canary} reached by {Verb(interaction)} on {type}{page}; refused, nothing of it was returned"
            + (held is null ? "." : $" (already {held.Level} for its {held.Cause})."),
            deferWrite, cancellationToken);

    /// <summary>
    /// Asked by the records service of a principal it refuses as contained before looking at any record, when the request reads a
    /// patient it names (a Patient read by id, its history, a patient's $everything) that its policy would have let it reach: a
    /// canary, with the principal held for another cause, is a canary reached (a walker going on through the 423s), as it would
    /// have been had the principal been free; it is contained for the canary. The caller answers with the refusal it already had,
    /// the same for any id. The containment is written before the caller answers, as any other containment made outside a write
    /// transaction is (the door asks this before a request opens one): deferred, a crash between the answer and the write lost the
    /// canary's cause at the next start, and the principal was again an administrator's to release.
    /// </summary>
    internal async ValueTask CanaryNamedWhileHeldAsync(AccessContext context, Interaction interaction, string type, string patient,
        Func<ValueTask<bool>> reachable, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(reachable);
        var tenant = context.Tenant.Id;
        if (!_canaries.TryGetValue(tenant, out var canaries) || !canaries.Contains(patient)) return;
        if (ContainmentOf(tenant, context.Principal) is not { ByCanary: false } held || !await reachable()) return;
        await ContainForCanaryAsync(context, interaction, type, patient, "", held, deferWrite: false, cancellationToken);
    }

    /// <summary>Which of two containments of one subject holds it: a lock over a suspension; at the same level, one the officer alone
    /// releases (a canary's, her own reading of the log's) over a volume one. Ties keep the one held.</summary>
    private static bool Outranks(Containment next, Containment had) => Rank(next) > Rank(had);

    private static int Rank(Containment containment) => (containment.Level == ContainmentLevels.Locked ? 2 : 0) + (containment.OfficersToRelease ? 1 : 0);

    /// <summary>Containments written by this server (their rows committed), in order: a refresh knows which ones it can see.</summary>
    private long _containmentsWritten;

    /// <summary>Containments made here → the number of their write (long.MaxValue while not written: a write that failed holds
    /// the containment in memory until a restart rather than let the refresh drop it).</summary>
    private readonly ConcurrentDictionary<(long Tenant, string Subject), long> _unwritten = new();

    private async Task PersistAndNoteAsync(Principal principal, Containment containment, string alertKind)
    {
        await PersistAsync(principal, containment, alertKind);
        var key = (containment.TenantId, containment.Principal);
        var written = Interlocked.Increment(ref _containmentsWritten);
        // A volume containment written after a canary's took its place in memory leaves that one still to be written.
        if (_contained.TryGetValue(key, out var held) && ReferenceEquals(held, containment)) _unwritten[key] = written;
    }

    /// <summary>Forgets a released principal's reading (a person's account, or a client) and vouches for where it reads from:
    /// the officer reviewed the access.</summary>
    private void Forget(long tenant, string owner)
    {
        if (_states.TryGetValue((tenant, owner), out var state))
        {
            lock (state) state.Clear();
        }
        if (_baselines.TryGetValue((tenant, owner), out var baseline))
        {
            lock (baseline) baseline.Vouch();
        }
    }

    private async Task PersistAsync(Principal principal, Containment containment, string alertKind)
    {
        try
        {
            await PersistAsync(principal, containment, alertKind, onChain: true);
        }
        catch (AuditUnavailableException)
        {
            // The chain cannot be written: the containment and its alert are committed without their digests rather than held in
            // this process's memory alone, which a restart or another server would not see (invariant 5). Verification reports
            // them as added in the database — the truth: they are not on the chain.
            await PersistAsync(principal, containment, alertKind, onChain: false);
        }
    }

    private async Task PersistAsync(Principal principal, Containment containment, string alertKind, bool onChain)
    {
        var (tenant, subject, level, detail) = (containment.TenantId, containment.Principal, containment.Level, containment.Reason);
        // Storage must not be skipped by a client that disconnects: the containment is written whatever happens to the request. A
        // connection lost before the commit: the whole of it once more on a new one (the server rolled the first back; nothing of it
        // is outside the transaction — the alert is logged after the commit, the containment already held in memory), rather than
        // the request answering 503 with the containment left out of the store until the principal's next request crossed again.
        await _database.WriteAsync(async scope =>
        {
            scope.SecurityRecordsOffChain = !onChain;
            using (var insert = scope.Command("""
                INSERT INTO guard_containments (tenant_id, principal, account, level, cause, reason, contained_at) VALUES (@t, @p, @a, @l, @c, @r, @at) RETURNING id
                """).With("t", tenant).With("p", subject).With("a", containment.Account).With("l", level).With("c", containment.Cause).With("r", detail)
                .With("at", containment.ContainedAt.ToUnixTimeMilliseconds()))
            {
                // On the establishment's chain with its alert, in this transaction: a containment deleted or edited is found.
                await _audit.AttestAsync(scope, tenant, SecurityTable.Containments, state: false,
                    [(await insert.ScalarLongAsync(CancellationToken.None),
                        [subject, containment.Account, level, containment.Cause, detail, containment.ContainedAt.ToUnixTimeMilliseconds()])],
                    CancellationToken.None);
            }
            if (level == ContainmentLevels.Locked && principal.Kind == PrincipalKind.Person && principal.Id.StartsWith(StaffUser.PrincipalPrefix, StringComparison.Ordinal))
            {
                var userId = principal.Id[StaffUser.PrincipalPrefix.Length..];
                await StaffAccounts.ChangeAsync(_rows, scope, userId, tenant,
                    row => row.With("lockout_end", StaffAccounts.LockedForGood).With("security_stamp", StaffAccounts.NewStamp()), CancellationToken.None);
                using var end = scope.Command("DELETE FROM staff_sessions WHERE user_id = @u").With("u", userId);
                await end.ExecuteNonQueryAsync(CancellationToken.None);
            }
            await _alerts.RaiseAsync(scope, tenant, alertKind, subject, detail, CancellationToken.None);
            await scope.CommitAsync(CancellationToken.None);
        }, CancellationToken.None);
    }

    private static GuardDecision Refusal(Principal principal, Containment containment)
    {
        if (containment.Level == ContainmentLevels.Locked)
        {
            return new GuardDecision(GuardVerdict.Locked, TimeSpan.Zero,
                "This account is locked by the guard: its reading departed from normal care. No patient data can be opened with it until the "
                + "establishment's security officer has reviewed the access and released it at the security console.");
        }
        return new GuardDecision(GuardVerdict.Suspended, TimeSpan.Zero, principal.Kind == PrincipalKind.ApiClient
            ? "This API client is suspended by the guard: its reading departed from its normal volume. Contact the establishment's security officer, "
              + "who reviews the access and releases the client (vauban guard release)."
            // The officer's reading is the audit log's, and she cannot release herself: another officer, or the operator at the server.
            : principal.Role == StaffRole.SecurityOfficer
            ? "This session is suspended by the guard: it read the audit log beyond the security officer's levels. No one releases their own "
              + "containment: another security officer reviews the access and releases it at the security console, or the operator at the server "
              + "(vauban guard release)."
            : "This session is suspended by the guard: its reading departed from normal care. Contact the establishment's security officer, "
              + "who reviews the access and releases it at the security console.");
    }

    private string LimitsName(Principal principal) =>
        principal.Kind == PrincipalKind.ApiClient ? "API clients" : principal.Role switch
        {
            StaffRole.Secretary => "secretaries",
            StaffRole.Billing => "billing staff",
            StaffRole.SecurityOfficer => "security officers",
            { } role => AccessPolicy.RoleName(role) + "s",
            null => "people",
        };

    private static string Who(Principal principal) => principal.Kind switch
    {
        PrincipalKind.Person => $"{principal.Id} ({(principal.Role is { } r ? AccessPolicy.RoleName(r) : "no role")}"
            + (principal.SessionId is { } s ? ", session " + s : "") + ")",
        _ => $"client {principal.Id}",
    };

    private static string Verb(Interaction interaction) => interaction switch
    {
        Interaction.VRead => "vread",
        Interaction.HistoryInstance or Interaction.HistoryType => "history",
        Interaction.Everything => "$everything",
        Interaction.BreakTheGlass => "break-the-glass",
        _ => interaction.ToString().ToLowerInvariant(),
    };

    private enum Level { Admit, Slow, StepUp, Suspend }

    /// <summary>The identity-read signal as the officer reads it in step-up and containment alerts.</summary>
    private static string IdentityReads(string window, int? learnedPeak) =>
        $"{KnownGuardSignals.IdentityReads}: distinct patients' identities in {window}" + (learnedPeak is null ? "" : $" (learned peak {learnedPeak})");

    private const long MsPerHour = 3_600_000;
    private const long MsPerDay = 86_400_000;

    /// <summary>A threshold at <paramref name="factor"/> of its levels (elevated risk).</summary>
    private static Threshold Scale(Threshold threshold, double factor) => factor >= 1 ? threshold : new Threshold(
        threshold.Slow is { } slow ? Math.Max(1, (int)Math.Ceiling(slow * factor)) : null,
        threshold.StepUp is { } stepUp ? Math.Max(1, (int)Math.Ceiling(stepUp * factor)) : null,
        threshold.Suspend is { } suspend ? Math.Max(1, (int)Math.Ceiling(suspend * factor)) : null);

    /// <summary>
    /// The configured levels, tightened to what the principal (or its role) has learned to be normal: an API client is
    /// suspended beyond its peak plus a margin; a person asked to step up, then suspended, well beyond theirs. Never looser than configured.
    /// </summary>
    private static Threshold Learned(Threshold configured, int? peak, bool client, GuardSignalOptions signals)
    {
        if (peak is not { } p) return configured;
        int suspend, stepUp;
        if (client)
        {
            suspend = p + signals.ClientMargin;
            stepUp = suspend;
        }
        else
        {
            suspend = Math.Max((int)Math.Ceiling(p * signals.PersonSuspendFactor), p + signals.PersonSuspendMargin);
            stepUp = Math.Max((int)Math.Ceiling(p * signals.PersonStepUpFactor), p + signals.PersonStepUpMargin);
        }
        var newSuspend = configured.Suspend is { } s ? Math.Min(s, suspend) : (int?)null;
        var newStepUp = configured.StepUp is { } u ? Math.Min(u, stepUp) : (int?)null;
        if (newSuspend is { } cap && newStepUp > cap) newStepUp = cap;
        var ceiling = newStepUp ?? newSuspend;
        var newSlow = configured.Slow is { } w ? (ceiling is { } c ? Math.Min(w, c) : w) : (int?)null;
        return new Threshold(newSlow, newStepUp, newSuspend);
    }

    /// <summary>Folds a principal's finished day into its baseline and, when the day was clean, into its role's and its establishment's.</summary>
    private void Roll(long tenant, string subject, Baseline baseline, long day)
    {
        var (dayPeak, hourPeak, hours, sources) = (baseline.TodayDayPeak, baseline.TodayHourPeak, (int[])baseline.TodayHours.Clone(), baseline.TodaySources.ToList());
        var (identityDayPeak, identityHourPeak) = (baseline.TodayIdentityDayPeak, baseline.TodayIdentityHourPeak);
        var previous = baseline.Day;
        if (!baseline.Roll(day, Options.Signals)) return;
        if (subject.StartsWith(StaffUser.PrincipalPrefix, StringComparison.Ordinal) && baseline.RoleName is { } roleName)
        {
            var role = BaselineOf(tenant, "role:" + roleName);
            lock (role) role.FoldFrom(dayPeak, hourPeak, identityDayPeak, identityHourPeak, hours, previous);
        }
        if (sources.Count > 0)
        {
            var establishment = BaselineOf(tenant, EstablishmentSubject);
            lock (establishment) establishment.LearnSources(sources, previous);
        }
    }

    /// <summary>Folds the baselines of principals not seen since their day ended (at each flush), so that roles learn from everyone.</summary>
    private void RollIdle(long nowMs)
    {
        var day = nowMs / MsPerDay;
        foreach (var ((tenant, subject), baseline) in _baselines)
        {
            if (subject.StartsWith("role:", StringComparison.Ordinal) || subject == EstablishmentSubject) continue;
            lock (baseline)
            {
                if (baseline.Day != 0 && baseline.Day != day) Roll(tenant, subject, baseline, day);
            }
        }
    }

    private readonly ConcurrentDictionary<(long Tenant, char Kind, string Value), long> _blind = new();

    /// <summary>A source network or device class as a blind index under the establishment's index key (cached: one HMAC per new value).</summary>
    private async ValueTask<long> BlindAsync(long tenant, char kind, string value, CancellationToken cancellationToken)
    {
        if (_blind.TryGetValue((tenant, kind, value), out var hash)) return hash;
        var keys = await _keys.ForTenantAsync(tenant, cancellationToken);
        hash = keys.Index.Hash(GuardIndexCode, kind, value);
        if (_blind.Count > 100_000) _blind.Clear();
        _blind[(tenant, kind, value)] = hash;
        return hash;
    }

    /// <summary>The blind-index parameter code of the guard's values (search parameters use positive codes).</summary>
    private const int GuardIndexCode = -5;

    /// <summary>A signal began: an alert for the security officer and an entry on the audit chain (after the write transaction when inside one).</summary>
    private async Task SignalAsync(AccessContext context, GuardRequest? request, string signal, string detail, CancellationToken cancellationToken)
    {
        var text = $"{signal}: {Who(context.Principal)}: {detail}" + (request is null ? "." : $" ({Verb(request.Interaction)} of {request.ResourceType}).");
        async Task Write()
        {
            await _alerts.RaiseAsync(context.Tenant.Id, KnownAlertKinds.GuardSignal, context.Principal.Id, text, CancellationToken.None);
            await _audit.AppendAsync(context, AuditAction.Containment, AuditOutcome.Success, request?.ResourceType, [], CancellationToken.None, "guard signal: " + signal);
        }
        if (request?.InsideWriteTransaction == true) Defer(Write);
        else await Write();
        _ = cancellationToken;
    }

    /// <summary>
    /// Told by the sign-in: the account succeeded after <paramref name="failures"/> failed attempts. At the configured
    /// count it is a signal: the account's reading is held to tighter bounds for the signal's lifetime.
    /// </summary>
    public async Task NoteSignInAsync(AccessContext context, int failures, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Disabled || !Options.Enabled || failures < Options.Signals.FailedSignInsBeforeSuccess) return;
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var state = _states.GetOrAdd((context.Tenant.Id, context.Principal.Id), _ => new ReadingState());
        bool began;
        lock (state)
        {
            began = !(state.Signals.TryGetValue(KnownGuardSignals.FailedSignIns, out var until) && until > nowMs);
            state.Signals[KnownGuardSignals.FailedSignIns] = nowMs + (long)Options.Signals.SignalLifetime.TotalMilliseconds;
            state.LastSeenMs = nowMs;
        }
        if (began) await SignalAsync(context, null, KnownGuardSignals.FailedSignIns, $"signed in after {failures} failed attempts", cancellationToken);
    }

    private static Level Max(Level a, Level b) => a > b ? a : b;

    private sealed record Remembered(string Raw, long Hash);

    /// <summary>One principal's reading, under its own lock.</summary>
    private sealed class ReadingState
    {
        /// <summary>The windows of <see cref="Patients"/>, <see cref="Identities"/> and <see cref="Everything"/>, by index.</summary>
        public const int Minute = 0, Hour = 1, Day = 2, Windows = 3;
        private static DistinctWindows MinuteHourDay() => new(TimeSpan.FromMinutes(1), TimeSpan.FromHours(1), TimeSpan.FromDays(1));

        /// <summary>Patients returned.</summary>
        public DistinctWindows Patients { get; } = MinuteHourDay();

        /// <summary>Patients whose identity (their Patient resource) was returned.</summary>
        public DistinctWindows Identities { get; } = MinuteHourDay();
        public CountWindow BreakTheGlass { get; } = new(TimeSpan.FromDays(1));
        public CountWindow SearchRecords { get; } = new(TimeSpan.FromHours(1));
        /// <summary>The patients whose $everything was asked for.</summary>
        public DistinctWindows Everything { get; } = MinuteHourDay();
        public long? StepUpSince { get; set; }
        /// <summary>The account's last suspension: the session (or principal) suspended, and when.</summary>
        public (string Subject, long At)? LastSuspension { get; set; }
        public long LastSeenMs { get; set; }

        /// <summary>Active signals → when they stop weighing.</summary>
        public Dictionary<string, long> Signals { get; } = new(StringComparer.Ordinal);

        /// <summary>Patients opened since the risk became high.</summary>
        public DistinctWindow AtRisk { get; } = new(TimeSpan.FromDays(1));
        public long? RiskSince { get; set; }
        public EnumerationShapes Shapes { get; } = new();
        public Baseline? Baseline { get; set; }

        /// <summary>The last source address and device class with their blind indexes (replaced whole: read without the lock).</summary>
        public volatile Remembered? LastSource;
        public volatile Remembered? LastDevice;

        /// <summary>The patients listed on the principal's own schedule of a day (<see cref="GuardRequest.Scheduled"/>), each for an
        /// hour after it was last listed: the day's work list, left out of the minute's count while it is being worked through. Made at the first.</summary>
        public DistinctWindow? Scheduled { get; private set; }

        /// <summary>Counts the patients and identities an admitted request returns into the reading windows (under the lock).</summary>
        public void Admit(GuardRequest request, long nowMs)
        {
            foreach (var patient in request.Counted) Patients.Touch(patient, nowMs);
            foreach (var patient in request.Identities) Identities.Touch(patient, nowMs);
            if (request.Scheduled.Count == 0) return;
            Scheduled ??= new DistinctWindow(TimeSpan.FromHours(1));
            foreach (var patient in request.Scheduled) Scheduled.Touch(patient, nowMs);
        }

        /// <summary>Of <paramref name="minute"/>, the minute's distinct patients were the request admitted, those on the principal's
        /// schedule: listed by this request or by one in the last hour. Counted only when the minute would weigh at all.</summary>
        public int ScheduledInMinute(GuardRequest request, int minute, Threshold threshold, long nowMs)
        {
            if (request.Scheduled.Count == 0 && Scheduled is null) return 0;
            if (minute < (threshold.Slow ?? threshold.StepUp ?? threshold.Suspend ?? int.MaxValue)) return 0;
            var listed = new HashSet<string>(request.Scheduled, StringComparer.Ordinal);
            if (Scheduled is not null) listed.UnionWith(Scheduled.Keys(nowMs));
            var within = 0;
            foreach (var patient in listed)
            {
                // In the minute once the request is admitted: returned by it, or by another in the last minute.
                if (request.Counted.Contains(patient) || Patients.Contains(Minute, patient, nowMs)) within++;
            }
            return within;
        }

        /// <summary>The sum of the active signals' weights, and their names.</summary>
        public (int Risk, string Names) Risk(long nowMs, GuardSignalOptions options)
        {
            if (Signals.Count == 0) return (0, "");
            var risk = 0;
            var names = new List<string>();
            foreach (var (signal, until) in Signals.ToList())
            {
                if (until <= nowMs)
                {
                    Signals.Remove(signal);
                    continue;
                }
                risk += signal switch
                {
                    KnownGuardSignals.NewSource => options.NewSourceWeight,
                    KnownGuardSignals.NewSourceForEstablishment => options.NewSourceForEstablishmentWeight,
                    KnownGuardSignals.NewDevice => options.NewDeviceWeight,
                    KnownGuardSignals.UnusualHour => options.UnusualHourWeight,
                    KnownGuardSignals.FailedSignIns => options.FailedSignInsWeight,
                    _ => options.EnumerationWeight,
                };
                names.Add(signal);
            }
            return (risk, string.Join(", ", names));
        }

        public void Clear()
        {
            Patients.Clear();
            Identities.Clear();
            BreakTheGlass.Clear();
            SearchRecords.Clear();
            Everything.Clear();
            Scheduled = null;
            StepUpSince = null;
            LastSuspension = null;
            Signals.Clear();
            AtRisk.Clear();
            RiskSince = null;
            Shapes.Clear();
        }
    }
}
