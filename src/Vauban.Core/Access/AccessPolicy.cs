// The one access policy, for people and API clients alike. Two questions, asked by the records services
// and only there:
//   Authorize        — may this principal do this interaction on this resource type at all?
//                      (SMART scopes; for people also their role's table, RolePermissions)
//   AuthorizeRecord  — may it touch this record, given the patient the record concerns (its compartment)?
//                      (people: care relationships or break-the-glass, unless their role reaches the whole
//                      establishment; clients: their patient list and own-resources limits)
// Searches ask the second question in SQL (FilterFor), so that counts and paging never see the rest.
using System.Collections.Concurrent;
using System.Data.Common;
using Vauban.Fhir;
using Vauban.Storage;

namespace Vauban.Access;

public enum Interaction { Read, VRead, HistoryInstance, HistoryType, Search, Create, Update, Delete, Everything, Import, BreakTheGlass, Export }

public readonly record struct PolicyDecision(bool Allowed, string? Reason)
{
    public static PolicyDecision Allow => new(true, null);
    public static PolicyDecision Deny(string reason) => new(false, reason);
}

/// <summary>Allow; Forbidden (403: the record exists and break-the-glass is possible); Hidden (404: its existence must not be revealed).</summary>
public enum RecordVerdict { Allow, Forbidden, Hidden }

public readonly record struct RecordDecision(RecordVerdict Verdict, string? Reason)
{
    public static RecordDecision Allow => new(RecordVerdict.Allow, null);
}

public sealed class AccessPolicy
{
    private readonly StoreDatabase _database;
    private readonly TimeProvider _time;
    private readonly Crypto.KeyRing _keys;
    // (tenant, principal and actors, patient) → the decision, until when (ms), and the patient's write generation then.
    // A write into a patient's record or a break-the-glass grant in this process bumps the patient's generation,
    // so a remembered refusal never outlives a relationship created here; other processes see it within the
    // refusal lifetime (seconds).
    private readonly ConcurrentDictionary<(long, string, string), (bool Allowed, long Until, int Generation)> _decisions = new();
    private readonly ConcurrentDictionary<(long, string), int> _generations = new();
    // (tenant, person) → the patients of their unexpired break-the-glass grants whose rows verify (ADR 0014), each with its end (ms);
    // when they were read (ms), and the grant epoch then. Read again past the refusal lifetime — a grant made through another server
    // shows within it, as a refusal remembered there did before — or once this process has granted anything since (the epoch).
    private readonly ConcurrentDictionary<(long, string), HeldGrants> _grants = new();
    private long _grantEpoch;
    private readonly AccessRows _rows;

    private sealed record HeldGrants(IReadOnlyDictionary<string, long> Patients, long ReadAt, long Epoch);

    private static readonly IReadOnlyDictionary<string, long> NoGrants = new Dictionary<string, long>();

    internal AccessPolicy(StoreDatabase database, Crypto.KeyRing keys, AccessRows rows, AccessOptions options, TimeProvider time)
    {
        options.Validate();
        _database = database;
        _keys = keys;
        _rows = rows;
        Options = options;
        _time = time;
    }

    public AccessOptions Options { get; }

    /// <summary>Set only by the policy benchmark: every decision allows, to measure what the policy costs.</summary>
    internal bool ForceAllow { get; set; }

    public PolicyDecision Authorize(AccessContext context, Interaction interaction, string resourceType)
    {
        ArgumentNullException.ThrowIfNull(context);
        var needed = Needed(interaction);
        if (needed == Permission.None) return PolicyDecision.Deny("unknown interaction");
        if (ForceAllow) return PolicyDecision.Allow;
        var principal = context.Principal;
        if (principal.Kind == PrincipalKind.Person)
        {
            if (principal.Role is not { } role) return PolicyDecision.Deny("This account has no role.");
            if (!RolePermissions.For(role, resourceType).Permissions.HasFlag(needed))
            {
                return PolicyDecision.Deny($"The {RoleName(role)} role does not allow {Verb(interaction)} on {resourceType}.");
            }
        }
        if (interaction == Interaction.Import && principal.Kind != PrincipalKind.System)
        {
            return PolicyDecision.Deny("Bulk import is an operator's act (vauban import).");
        }
        return principal.Scopes.Allows(resourceType, needed)
            ? PolicyDecision.Allow
            : PolicyDecision.Deny($"The granted scopes do not allow {Verb(interaction)} on {resourceType}.");
    }

    /// <summary>
    /// May the principal touch this record? <paramref name="compartment"/> is the id of the patient it concerns
    /// (null for directory resources), <paramref name="createdBy"/> the principal that created it. Decided on
    /// committed data only; <paramref name="newPatients"/> are patients the caller's own transaction creates.
    /// </summary>
    internal async ValueTask<RecordDecision> AuthorizeRecordAsync(AccessContext context, string type, string? compartment, string? createdBy,
        IReadOnlySet<string>? newPatients, CancellationToken cancellationToken)
    {
        var principal = context.Principal;
        if (ForceAllow) return RecordDecision.Allow;
        switch (principal.Kind)
        {
            case PrincipalKind.System:
                return RecordDecision.Allow;
            case PrincipalKind.ApiClient:
                if (principal.OwnResourcesOnly && !string.Equals(createdBy, principal.Id, StringComparison.Ordinal)) return Hidden(type);
                if (principal.PatientLimit is { } limit && compartment is not null && !limit.Contains(compartment, StringComparer.Ordinal)) return Hidden(type);
                return RecordDecision.Allow;
            case PrincipalKind.Person:
                if (compartment is null || principal.Role is not { } role) return principal.Role is null ? Hidden(type) : RecordDecision.Allow;
                if (RolePermissions.For(role, type).Reach == Reach.Tenant) return RecordDecision.Allow;
                if (BookedBy(principal, type, createdBy)) return RecordDecision.Allow;
                if (newPatients is not null && newPatients.Contains(compartment)) return RecordDecision.Allow;
                if (await MayOpenPatientAsync(context, compartment, cancellationToken)) return RecordDecision.Allow;
                return RolePermissions.MayBreakTheGlass(role)
                    ? new RecordDecision(RecordVerdict.Forbidden,
                        // The same words whether or not the patient exists here (a write naming an unknown patient gets them too):
                        // the answer tells nothing about existence, and does not claim it.
                        $"Patient/{compartment} is not a patient in your care relationships (or not a patient here). Break-the-glass is possible: state a reason and re-authenticate "
                        + $"(POST [base]/Patient/{compartment}/$break-the-glass, or the page /patients/{compartment}/break-the-glass); the access will be reported to the security officer.")
                    : Hidden(type);
            default:
                return Hidden(type);
        }
    }

    /// <summary>
    /// The search-time form of AuthorizeRecord: a boolean SQL expression over the resource row "r", or null when
    /// the principal may see every row the query matches. Its parameters are added to the command. <paramref name="newPatients"/>
    /// are patients the caller's own transaction creates, open to it as in <see cref="AuthorizeRecordAsync"/> (a search inside a
    /// transaction bundle, on the transaction's connection). The person's grants are those <see cref="GrantsAsync"/> read last: the
    /// records services read them before they search, list or export anything (<see cref="PrepareAsync"/>).
    /// </summary>
    internal string? FilterFor(AccessContext context, string type, DbCommand command, StorageEngine engine, IReadOnlySet<string>? newPatients = null)
    {
        var principal = context.Principal;
        if (ForceAllow) return null;
        switch (principal.Kind)
        {
            case PrincipalKind.ApiClient:
                var parts = new List<string>();
                if (principal.OwnResourcesOnly)
                {
                    command.With("fcb", principal.Id);
                    parts.Add("r.created_by = @fcb");
                }
                if (principal.PatientLimit is { } limit)
                {
                    parts.Add($"(r.compartment IS NULL OR {command.InList(engine, "r.compartment", "fpl", limit)})");
                }
                return parts.Count == 0 ? null : string.Join(" AND ", parts);
            case PrincipalKind.Person:
                if (!HasCompartment(type)) return null;
                if (principal.Role is not { } role) return "1 = 0";
                if (RolePermissions.For(role, type).Reach == Reach.Tenant) return null;
                var now = _time.GetUtcNow();
                var created = newPatients is { Count: > 0 } ? " OR " + command.InList(engine, "r.compartment", "fnp", newPatients.Order(StringComparer.Ordinal).ToList()) : "";
                if (type == KnownResourceTypes.Appointment)
                {
                    command.With("fbk", principal.Id);
                    created += " OR r.created_by = @fbk";
                }
                // The records services load the establishment's keys before they search, list or export anything of it.
                var index = _keys.HeldIndex(context.Tenant.Id)
                    ?? throw new InvalidOperationException("The establishment's keys are loaded before its records are filtered.");
                var granted = HeldGrantsOf(context, now.ToUnixTimeMilliseconds());
                return "(r.compartment IS NULL OR " + CareRelationSql.Related(command, engine, "r.compartment", "f", context.Tenant.Id, Actors(principal),
                    (now - Options.CareWindowPast).ToUnixTimeMilliseconds(), (now + Options.CareWindowAhead).ToUnixTimeMilliseconds(),
                    CareRelationSql.VoidedStatuses(index), granted) + created + ")";
            default:
                return null;
        }
    }

    /// <summary>Whether a search by this principal on this type may be screened in memory against remembered decisions
    /// (people whose role reaches only related patients), instead of testing every row's relationships in SQL.</summary>
    internal bool ScreensInMemory(AccessContext context, string type) =>
        // Not appointments: the screen decides by patient alone, and an appointment she booked is hers whatever its patient (BookedBy).
        !ForceAllow && context.Principal is { Kind: PrincipalKind.Person, Role: { } role } && HasCompartment(type) && type != KnownResourceTypes.Appointment
        && RolePermissions.For(role, type).Reach == Reach.Related && Options.DecisionCacheLifetime > TimeSpan.Zero;

    /// <summary>The remembered decision for this (principal, patient), if still fresh: true allowed, false refused, null unknown.</summary>
    internal bool? Remembered(AccessContext context, string patient)
    {
        var principal = context.Principal;
        if (!_decisions.TryGetValue((context.Tenant.Id, principal.Id + "|" + principal.Practitioner + "|" + principal.Service, patient), out var decision)) return null;
        if (decision.Until <= _time.GetUtcNow().ToUnixTimeMilliseconds()) return null;
        if (!decision.Allowed && decision.Generation != Generation(context.Tenant.Id, patient)) return null;
        return decision.Allowed;
    }

    /// <summary>Something about this patient's relationships may have changed (a write into their record, a grant): forget remembered refusals.</summary>
    internal void Touch(long tenant, string patient)
    {
        if (_generations.Count > 100_000) _generations.Clear();
        _generations.AddOrUpdate((tenant, patient), 1, (_, g) => g + 1);
    }

    private int Generation(long tenant, string patient) => _generations.TryGetValue((tenant, patient), out var g) ? g : 0;

    /// <summary>Whether the person may open this patient's record: a care relationship or an unexpired break-the-glass grant.</summary>
    internal async ValueTask<bool> MayOpenPatientAsync(AccessContext context, string patient, CancellationToken cancellationToken)
    {
        var principal = context.Principal;
        var now = _time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        var key = (context.Tenant.Id, principal.Id + "|" + principal.Practitioner + "|" + principal.Service, patient);
        if (Remembered(context, patient) is { } remembered) return remembered;
        var generation = Generation(context.Tenant.Id, patient);
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        // A grant first: it is in memory most of the time, and when it opens the patient no relationship need be looked for.
        var related = (await GrantsAsync(context, cancellationToken)).TryGetValue(patient, out var ends) && ends > nowMs
            || await CareRelationSql.IsRelatedAsync(_database, context.Tenant.Id, Actors(principal), patient,
                (now - Options.CareWindowPast).ToUnixTimeMilliseconds(), (now + Options.CareWindowAhead).ToUnixTimeMilliseconds(),
                CareRelationSql.VoidedStatuses(keys.Index), cancellationToken);
        var lifetime = related ? Options.DecisionCacheLifetime : Options.RefusalCacheLifetime;
        if (lifetime > TimeSpan.Zero)
        {
            if (_decisions.Count > 100_000) _decisions.Clear();
            _decisions[key] = (related, nowMs + (long)lifetime.TotalMilliseconds, generation);
        }
        return related;
    }

    /// <summary>
    /// The patients of the person's unexpired break-the-glass grants that may be believed, each with its end (Unix ms): the rows of
    /// break_glass naming them whose MAC verifies (ADR 0014). One that does not is as if it did not exist, and is reported once
    /// (<see cref="AccessRows.Believe"/>, in the background: this is asked during a person's write too). Read on a look-up's connection
    /// (committed grants, as the relationships), and held for the refusal lifetime (5 s) or until this process grants anything: a
    /// person's grants are few, and most of the time there are none, which is remembered too — a decision not remembered costs one
    /// more query per person and lifetime, not per read, and one fewer when a grant opens the patient. Empty for anyone else.
    /// </summary>
    internal async ValueTask<IReadOnlyDictionary<string, long>> GrantsAsync(AccessContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var principal = context.Principal;
        if (principal.Kind != PrincipalKind.Person) return NoGrants;
        var key = (context.Tenant.Id, principal.Id);
        var epoch = Interlocked.Read(ref _grantEpoch);
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (_grants.TryGetValue(key, out var held) && held.Epoch == epoch && nowMs >= held.ReadAt
            && nowMs - held.ReadAt < (long)Options.RefusalCacheLifetime.TotalMilliseconds)
        {
            return held.Patients;
        }
        var rows = await _database.LookUpAsync((connection, ct) => AccessRows.ReadAllAsync(connection.Command(""), AuthenticatedTable.Grants, "",
            "WHERE r.tenant_id = @t AND r.principal = @p AND r.expires_at > @now", static (row, _, _) => row, ct,
            ("t", context.Tenant.Id), ("p", principal.Id), ("now", nowMs)), cancellationToken);
        var patients = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (!_rows.Believe(row) || row.Text("patient") is not { } patient || row.Number("expires_at") is not { } ends) continue;
            patients[patient] = patients.TryGetValue(patient, out var other) ? Math.Max(other, ends) : ends;
        }
        if (_grants.Count > 100_000)
        {
            // Those read long enough ago to be read again anyway: never one a search is between reading and filtering with.
            foreach (var (k, v) in _grants)
            {
                if (nowMs - v.ReadAt > (long)TimeSpan.FromMinutes(1).TotalMilliseconds) _grants.TryRemove(k, out _);
            }
        }
        _grants[key] = new HeldGrants(patients, nowMs, epoch);
        return patients;
    }

    /// <summary>Before a person's records are searched, listed or exported: their grants read (<see cref="GrantsAsync"/>), for the SQL
    /// filter (<see cref="FilterFor"/>), which is built where nothing can be awaited.</summary>
    internal async ValueTask PrepareAsync(AccessContext context, CancellationToken cancellationToken) => await GrantsAsync(context, cancellationToken);

    /// <summary>The patients of the person's grants as <see cref="GrantsAsync"/> last read them, unexpired at <paramref name="nowMs"/>.</summary>
    private List<string> HeldGrantsOf(AccessContext context, long nowMs) =>
        _grants.TryGetValue((context.Tenant.Id, context.Principal.Id), out var held)
            ? [.. held.Patients.Where(p => p.Value > nowMs).Select(p => p.Key).Order(StringComparer.Ordinal)]
            : throw new InvalidOperationException("A person's break-the-glass grants are read (AccessPolicy.PrepareAsync) before their records are filtered.");

    /// <summary>This process made a grant: every person's grants are read again at their next decision (grants are rare; the grant's
    /// holder sees it at once), and refusals remembered for the patient are forgotten.</summary>
    internal void Granted(long tenant, string patient)
    {
        Interlocked.Increment(ref _grantEpoch);
        Touch(tenant, patient);
    }

    /// <summary>Forget remembered allowances of one principal (its relationships or account changed).</summary>
    public void Forget(string principalId)
    {
        foreach (var key in _decisions.Keys)
        {
            if (key.Item2.StartsWith(principalId + "|", StringComparison.Ordinal)) _decisions.TryRemove(key, out _);
        }
    }

    /// <summary>
    /// An appointment the person booked is open to her, whatever the rule of care says of its patient (ADR 0006, revised
    /// 2026-12-06): the front desk sees on the chart, and may cancel, what it booked five months ahead, beyond the window in which
    /// an appointment makes a care relationship. Appointments only — not every record she ever wrote, which would leave a stolen
    /// account years of prescriptions and notes to read. What a change of it names is still asked of each patient it names
    /// (a person's written check asks of the type Patient, which this rule never answers), so that moving her booking into
    /// another patient's record does not give her a care relationship with that patient.
    /// </summary>
    private static bool BookedBy(Principal principal, string type, string? createdBy) =>
        type == KnownResourceTypes.Appointment && createdBy is not null && string.Equals(createdBy, principal.Id, StringComparison.Ordinal);

    /// <summary>Types whose records concern a patient; the directory (practitioners, roles, organizations) does not.</summary>
    public static bool HasCompartment(string type) =>
        type is not (KnownResourceTypes.Practitioner or KnownResourceTypes.PractitionerRole or KnownResourceTypes.Organization);

    private static List<string> Actors(Principal principal)
    {
        var actors = new List<string>(2);
        if (!string.IsNullOrEmpty(principal.Practitioner)) actors.Add("Practitioner/" + principal.Practitioner);
        if (!string.IsNullOrEmpty(principal.Service)) actors.Add("Organization/" + principal.Service);
        return actors;
    }

    private static RecordDecision Hidden(string type) => new(RecordVerdict.Hidden, type);

    private static Permission Needed(Interaction interaction) => interaction switch
    {
        Interaction.Read or Interaction.VRead or Interaction.HistoryInstance or Interaction.Everything or Interaction.BreakTheGlass => Permission.Read,
        Interaction.Search or Interaction.HistoryType => Permission.Search,
        Interaction.Create or Interaction.Import => Permission.Create,
        Interaction.Update => Permission.Update,
        Interaction.Delete => Permission.Delete,
        // A bulk export reads and enumerates: both, for every type exported (SMART Bulk Data: system/*.rs).
        Interaction.Export => Permission.Read | Permission.Search,
        _ => Permission.None,
    };

    private static string Verb(Interaction interaction) => interaction switch
    {
        Interaction.VRead => "vread",
        Interaction.HistoryInstance or Interaction.HistoryType => "history",
        Interaction.BreakTheGlass => "break-the-glass",
        _ => interaction.ToString().ToLowerInvariant(),
    };

    public static string RoleName(StaffRole role) => role switch
    {
        StaffRole.SecurityOfficer => "security-officer",
        _ => role.ToString().ToLowerInvariant(),
    };
}
