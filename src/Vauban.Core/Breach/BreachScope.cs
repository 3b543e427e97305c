// The scope of a compromise: from the establishment's audit log, once it verifies, every patient whose data a compromised
// account or API client reached — read, found in a search, opened whole, exported, written — with when, how often and which
// kinds of data. What it tried and was refused (policy, guard, a failed read) did not leave: it is counted apart, for the
// report's narrative, and puts no patient in scope. The entries are found by the principal's lookup, the officer's search
// (each page of it is itself audited), never by reading the storage around the audit log. Design: docs/adr/0011-breach-scope.md.
using Vauban.Access;
using Vauban.Audit;
using Vauban.Fhir;

namespace Vauban.Breach;

/// <summary>The kinds of a patient's data an access can reach, from the resource types of the records it named.</summary>
public enum BreachCategory { Identity, CareEpisodes, Prescriptions, LabResults, ClinicalDocuments, InsuranceAndBilling, CareTeam, AccessHistory }

/// <summary>One patient in scope: whose data left through the principal, when first and last, in how many audited acts, how many
/// distinct records, which kinds of data, by which acts; and whether the patient is a canary (synthetic, no one to notify).</summary>
public sealed record BreachPatient(string Id, DateTimeOffset FirstAccess, DateTimeOffset LastAccess, int Accesses, int Records,
    IReadOnlyList<BreachCategory> Categories, IReadOnlyList<AuditAction> Actions, bool Canary);

/// <summary>What the check of the audit log found before a scope was computed from it: the chain and its signed checkpoints, and
/// the principal lookups the scope is read through (a lookup row removed would hide an access from the scope).</summary>
public sealed record BreachLogCheck(AuditVerification Chain, AuditLookupCheck Lookups)
{
    public bool Trustworthy => Chain.Valid && Lookups.Complete;

    /// <summary>The first problem, in words, or null when the log verifies.</summary>
    public string? Problem => Chain.InSecurityRecords
        ? $"the audit log's security records are BROKEN: {Chain.Problem}"
        : !Chain.Valid
        ? $"the audit log is BROKEN at entry {Chain.FirstBroken}: {Chain.Problem}"
        : !Lookups.Complete ? $"the audit log's principal and patient lookups are INCOMPLETE from entry {Lookups.FirstMissing} (rows removed from audit_index): accesses may be missing from the scope" : null;
}

/// <summary>The principal's state now, read from the store: what was done to stop it (the measures of the notification).</summary>
public sealed record BreachContainment(string? GuardLevel, DateTimeOffset? GuardContainedAt, bool AccountLocked, bool ClientRevoked, bool Known);

/// <summary>The scope of a compromise of <see cref="Principal"/> over a window (null ends: all time; <see cref="To"/> exclusive).</summary>
public sealed record BreachScope(string Principal, string PrincipalKind, DateTimeOffset? From, DateTimeOffset? To, BreachLogCheck Log,
    IReadOnlyList<BreachPatient> Patients, int RefusedAccesses, int RefusedPatientsNotInScope, IReadOnlyList<string> RefusedCanaries, long EntriesExamined)
{
    /// <summary>The patients reached who are real people (canaries excluded): those to notify.</summary>
    public IEnumerable<BreachPatient> DataSubjects => Patients.Where(p => !p.Canary);

    /// <summary>The distinct records of the data subjects reached (a canary's are evidence, not anyone's data).</summary>
    public int Records => DataSubjects.Sum(p => p.Records);

    /// <summary>The audited acts that reached the data subjects.</summary>
    public int Accesses => DataSubjects.Sum(p => p.Accesses);

    /// <summary>The categories of the data subjects' data reached.</summary>
    public IReadOnlyList<BreachCategory> Categories => DataSubjects.SelectMany(p => p.Categories).Distinct().Order().ToList();
}

public static class BreachInvestigation
{
    /// <summary>The page size of the officer's search the scope reads the principal's entries with (its maximum).</summary>
    private const int Page = 1000;

    /// <summary>Acts by which a patient's data leaves (or is written) when they succeed.</summary>
    private static readonly HashSet<AuditAction> Reaching =
    [
        AuditAction.Read, AuditAction.VRead, AuditAction.History, AuditAction.TypeHistory, AuditAction.Search, AuditAction.Everything,
        AuditAction.Export, AuditAction.Create, AuditAction.Update, AuditAction.Delete, AuditAction.Import,
        // The audit log read by an account that may read it (a security officer's stolen password): each entry returned names
        // its patient, and says who cared for them, when and from where.
        AuditAction.AuditRead,
    ];

    /// <summary>The principal id the audit log names, from what the officer types: <c>user:…</c> as it is, <c>client:vc_…</c>
    /// or the client id alone (the log names a client by its id); null when it is neither.</summary>
    public static string? PrincipalId(string? typed)
    {
        if (typed is null || !Guard.RecordsGuard.IsValidPrincipal(typed)) return null;
        if (typed.StartsWith(StaffUser.PrincipalPrefix, StringComparison.Ordinal)) return typed.Length > StaffUser.PrincipalPrefix.Length ? typed : null;
        if (typed.StartsWith("client:", StringComparison.Ordinal)) typed = typed["client:".Length..];
        // Sessions, the command line (cli:…) and other prefixed names are not accounts or clients.
        return typed.Length > 0 && !typed.Contains(':', StringComparison.Ordinal) ? typed : null;
    }

    /// <summary>Verifies the establishment's chain end to end and its principal lookups: a scope from a tampered log cannot be
    /// trusted.</summary>
    public static async Task<BreachLogCheck> CheckLogAsync(VaubanStore store, Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(tenant);
        var chain = await store.AuditLog.VerifyAsync(tenant.Id, null, cancellationToken);
        var lookups = await store.AuditLog.VerifyLookupsAsync(tenant.Id, cancellationToken);
        return new BreachLogCheck(chain, lookups);
    }

    /// <summary>The scope of <paramref name="principal"/>'s acts from <paramref name="from"/> (inclusive) to <paramref name="to"/>
    /// (exclusive), read by <paramref name="investigator"/> (who must be allowed to read the audit log); null when the log holds
    /// no entry of that principal at all (at any time). <see cref="AuditLogHeldException"/> when the guard holds a page of it.</summary>
    public static async Task<BreachScope?> ScopeAsync(VaubanStore store, AccessContext investigator, string principal, DateTimeOffset? from, DateTimeOffset? to,
        BreachLogCheck log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(investigator);
        ArgumentNullException.ThrowIfNull(log);
        if (!AuditLog.MayRead(investigator)) throw new UnauthorizedAccessException("Only the security officer or the operator computes a breach's scope.");
        var canaries = (await store.Guard.CanariesAsync(investigator.Tenant.Id, cancellationToken)).Select(c => c.Patient).ToHashSet(StringComparer.Ordinal);
        var reached = new Dictionary<string, Reach>(StringComparer.Ordinal);
        var refusedPatients = new HashSet<string>(StringComparer.Ordinal);
        var refused = 0;
        var examined = 0L;
        var kind = "";
        long? before = null;
        while (true)
        {
            var page = await store.AuditLog.SearchPageAsync(investigator,
                new AuditQuery { Agent = principal, From = from, To = to, Count = Page, BeforeSequence = before }, cancellationToken)
                ?? throw new UnauthorizedAccessException("The audit log refused the investigator.");
            if (page.Held is { } held) throw Withheld(held);
            foreach (var entry in page.Entries)
            {
                examined++;
                if (kind.Length == 0) kind = entry.Detail.PrincipalKind;
                if (entry.Detail.Patient is not { } patient) continue; // sign-ins, the directory, exports' kick-off: no patient's data
                if (Left(entry))
                {
                    if (!reached.TryGetValue(patient, out var reach)) reached[patient] = reach = new Reach();
                    reach.Add(entry);
                }
                else if (entry.Outcome != AuditOutcome.Success && (Reaching.Contains(entry.Action) || entry.Action == AuditAction.Containment))
                {
                    refused++;
                    refusedPatients.Add(patient);
                }
            }
            if (!page.More || page.Entries.Count == 0) break;
            before = page.Entries[^1].Sequence;
        }
        if (examined == 0)
        {
            // Nothing in the window: a principal the log has never seen is a mistyped name, not an empty scope.
            var ever = await store.AuditLog.SearchPageAsync(investigator, new AuditQuery { Agent = principal, Count = 0 }, cancellationToken);
            if (ever?.Held is { } held) throw Withheld(held);
            if (ever?.Total is null or 0) return null;
        }
        var patients = reached.Select(p => p.Value.ToPatient(p.Key, canaries.Contains(p.Key)))
            .OrderBy(p => p.FirstAccess).ThenBy(p => p.Id, StringComparer.Ordinal).ToList();
        refusedPatients.ExceptWith(reached.Keys);
        var refusedCanaries = refusedPatients.Where(canaries.Contains).Order(StringComparer.Ordinal).ToList();
        return new BreachScope(principal, kind.Length == 0 ? (principal.StartsWith(StaffUser.PrincipalPrefix, StringComparison.Ordinal) ? "person" : "client") : kind,
            from, to, log, patients, refused, refusedPatients.Count, refusedCanaries, examined);
    }

    /// <summary>The guard held a page of the principal's entries (the operator is never held; an officer investigating can be):
    /// no scope, rather than one that leaves out the patients of the pages withheld, or "no such principal" for a count withheld.</summary>
    private static AuditLogHeldException Withheld(Guard.GuardDecision held) =>
        new($"The breach scope was withheld by the guard ({held.Verdict}): no partial scope is given. `vauban breach` computes it at the server.", held);

    /// <summary>Whether an entry is data that left (or a write): a successful reaching act. A count alone (a search's, a history's,
    /// $everything's with _count=0) returns no record.</summary>
    private static bool Left(AuditEntry entry) =>
        (entry.Outcome == AuditOutcome.Success
            && (Reaching.Contains(entry.Action) || (entry.Action == AuditAction.Administration && entry.Detail.Records.Any(NamesReviewedGrant)))
            && !(entry.Detail.Note is { } note && note.StartsWith(AuditTrail.CountOnlyNote, StringComparison.Ordinal)))
        // A patch refused after it was applied to the record (a failed test, an invalid result): nothing written, but the answer
        // told what the record holds — a test can confirm a diagnosis code value by value.
        || (entry.Action == AuditAction.Update && entry.Detail.Note is { } evaluated && evaluated.StartsWith(Records.RecordPatch.Evaluated, StringComparison.Ordinal));

    /// <summary>A break-the-glass grant the security officer's review read (<see cref="ReviewedGrant.Audited"/>): the emergency
    /// stated about the patient, in its holder's words.</summary>
    private static bool NamesReviewedGrant(string record) => record.StartsWith(ReviewedGrant.AuditedType + "/", StringComparison.Ordinal);

    /// <summary>The category of a resource type's records; null for the directory (practitioners, roles, organizations).</summary>
    public static BreachCategory? CategoryOf(string type) => type switch
    {
        KnownResourceTypes.Patient => BreachCategory.Identity,
        KnownResourceTypes.Encounter or KnownResourceTypes.Appointment => BreachCategory.CareEpisodes,
        KnownResourceTypes.MedicationRequest => BreachCategory.Prescriptions,
        KnownResourceTypes.Observation or KnownResourceTypes.DiagnosticReport => BreachCategory.LabResults,
        KnownResourceTypes.DocumentReference => BreachCategory.ClinicalDocuments,
        KnownResourceTypes.Coverage or KnownResourceTypes.Invoice => BreachCategory.InsuranceAndBilling,
        KnownResourceTypes.CareTeam => BreachCategory.CareTeam,
        "AuditEvent" or ReviewedGrant.AuditedType => BreachCategory.AccessHistory,
        _ => null,
    };

    /// <summary>The principal's containment and revocation now: the guard's hold, a locked account, a revoked client.</summary>
    public static async Task<BreachContainment> ContainmentAsync(VaubanStore store, Tenant tenant, string principal, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(tenant);
        var held = (await store.Guard.ContainmentsAsync(tenant.Id, cancellationToken))
            .FirstOrDefault(c => c.Principal == principal || c.Account == principal);
        if (principal.StartsWith(StaffUser.PrincipalPrefix, StringComparison.Ordinal))
        {
            var user = await store.Accounts.FindByIdAsync(principal[StaffUser.PrincipalPrefix.Length..], cancellationToken);
            var known = user is not null && user.Tenant.Id == tenant.Id;
            return new BreachContainment(held?.Level, held?.ContainedAt, known && user!.LockoutEnd > store.Time.GetUtcNow(), false, known);
        }
        var client = (await store.Clients.ListAsync(tenant, cancellationToken)).FirstOrDefault(c => c.ClientId == principal);
        return new BreachContainment(held?.Level, held?.ContainedAt, false, client?.Revoked ?? false, client is not null);
    }

    /// <summary>What one patient's entries add up to.</summary>
    private sealed class Reach
    {
        private readonly HashSet<string> _records = new(StringComparer.Ordinal);
        private readonly HashSet<BreachCategory> _categories = [];
        private readonly HashSet<AuditAction> _actions = [];
        private DateTimeOffset _first = DateTimeOffset.MaxValue, _last = DateTimeOffset.MinValue;
        private int _accesses;

        public void Add(AuditEntry entry)
        {
            _accesses++;
            if (entry.At < _first) _first = entry.At;
            if (entry.At > _last) _last = entry.At;
            _actions.Add(entry.Action);
            var named = false;
            foreach (var reference in entry.Detail.Records)
            {
                var slash = reference.IndexOf('/', StringComparison.Ordinal);
                if (slash <= 0 || CategoryOf(reference[..slash]) is not { } category) continue;
                _records.Add(reference);
                _categories.Add(category);
                named = true;
            }
            // An entry that names no record of the patient (none should) still reached the patient's data of its type.
            if (!named && CategoryOf(entry.ResourceType) is { } byType) _categories.Add(byType);
        }

        public BreachPatient ToPatient(string id, bool canary) =>
            new(id, _first, _last, _accesses, _records.Count, _categories.Order().ToList(), _actions.Order().ToList(), canary);
    }
}
