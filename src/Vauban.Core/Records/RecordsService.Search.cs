// Search, _include/_revinclude and Patient/$everything. Results are limited
// to the caller's tenant in SQL, then pass the policy, guard and audit like any read.
using System.Data.Common;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Records;

public sealed partial class RecordsService
{
    /// <summary>Resources a page's _include/_revinclude add at most; past it the page says so (an OperationOutcome entry).</summary>
    internal const int MaxIncluded = 1000;

    /// <summary>Resources a page of Patient/$everything without _count; a larger record gets next links.</summary>
    internal const int MaxEverythingPage = 10_000;

    /// <summary>What $everything adds beyond the patient's own records: the practitioners and organizations they refer to.</summary>
    private static readonly string[] EverythingReferencedTypes = ["Practitioner", "PractitionerRole", "Organization"];

    /// <summary>A next link's state, if it was sealed by this server for this tenant, this principal and this
    /// <paramref name="scope"/> (a search's type, a history's or an $everything's scope) and has not expired; else null.</summary>
    private PageState? OpenPage(AccessContext context, string page, string scope) =>
        _pages.Open(page) is { } state && state.Tenant == context.Tenant.Id && state.Principal == context.Principal.Id && state.Type == scope
            && state.Expires >= _time.GetUtcNow().ToUnixTimeMilliseconds() ? state : null;

    /// <summary>The query a next link carries, as <see cref="SearchPage.Searched"/> tells it once the page is run, if the link is this
    /// principal's, of a search on <paramref name="type"/>, and has not expired; else null. Nothing is run, read, counted or audited:
    /// a page that shows a link's rows as its own (the agenda's day) asks what the link searches before following it, so that
    /// another search's link is refused before its patients are counted by the guard and written on the audit chain as read.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? PagedQuery(AccessContext context, string type, string page)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(page);
        return OpenPage(context, page, type) is { } state ? QueryOf(state) : null;
    }

    /// <summary>What a search form's token is sealed for: no records search, history or $everything has this scope, so that
    /// neither kind of token opens as the other.</summary>
    private const string SearchFormScope = "search-form";

    /// <summary>A page's search form as typed (<paramref name="form"/>: its fields' names and values, a next page's token among
    /// them), sealed as a next link is but for this principal and tenant and this sign-in (<paramref name="session"/>) only, and
    /// for <paramref name="lifetime"/>: the clinician UI answers a posted search by a redirect to its results with this token in
    /// the URL (Post/Redirect/Get), so that Back from a chart finds the results without sending the form again, and no value
    /// searched for is in a URL (ADR 0003). Nothing is run, read or audited: the page runs the search, as any, when it is shown.</summary>
    public string SealSearchForm(AccessContext context, string session, IReadOnlyList<KeyValuePair<string, string>> form, TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(session);
        ArgumentNullException.ThrowIfNull(form);
        return _pages.Seal(new PageState(context.Tenant.Id, context.Principal.Id, SearchFormScope, form.Select(p => new[] { p.Key, p.Value }).ToList(), "", 0,
            _time.GetUtcNow().Add(lifetime).ToUnixTimeMilliseconds(), 1, session));
    }

    /// <summary>The form <see cref="SealSearchForm"/> sealed in <paramref name="token"/>, if this server sealed it for this principal,
    /// tenant and <paramref name="session"/> and it has not expired; else null (another person's, another sign-in's, altered, expired).</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? OpenSearchForm(AccessContext context, string session, string token)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(token);
        return OpenPage(context, token, SearchFormScope) is { } state && state.Session is { Length: > 0 } sealedFor && sealedFor == session
            && state.Query.All(p => p.Length == 2) ? QueryOf(state) : null;
    }

    /// <summary>A sealed link's query, as its search's parameters.</summary>
    private static List<KeyValuePair<string, string>> QueryOf(PageState state) => [.. state.Query.Select(p => new KeyValuePair<string, string>(p[0], p[1]))];

    /// <summary>The token of a first page (no cursor, depth 1), sealed as a next link is, for the page's self link: the search
    /// values stay out of every URL the server hands out (ADR 0003), a POST _search's included.</summary>
    private string FirstPage(AccessContext context, string scope, List<string[]> query) =>
        _pages.Seal(new PageState(context.Tenant.Id, context.Principal.Id, scope, query, "", 0, _time.GetUtcNow().AddHours(1).ToUnixTimeMilliseconds(), 1));

    private static readonly SearchParameter AppointmentDate = SearchParameters.For(KnownResourceTypes.Appointment)["date"];
    private static readonly SearchParameter AppointmentActor = SearchParameters.For(KnownResourceTypes.Appointment)["actor"];

    /// <summary>The longest day: 25 hours, the day the clocks go back, and a minute for a bound given to the minute.</summary>
    private static readonly long LongestDayMs = (long)(TimeSpan.FromHours(25) + TimeSpan.FromMinutes(1)).TotalMilliseconds;

    /// <summary>Whether a search is a person's own schedule of a day (ADR 0008): Appointment, by her own practitioner record as an
    /// actor every match has, starting within at most a day, between yesterday and a week ahead — her agenda, or the same question
    /// asked through the API. The patients of its appointments are her day's work list, which the guard leaves out of the minute's
    /// distinct patients (they count in every other window). A day of last year, listed at speed, is no work list: day after day
    /// it would let a stolen session meet the hour's levels in seconds rather than minutes.</summary>
    private bool IsOwnSchedule(AccessContext context, SearchQuery query)
    {
        if (!AppointmentsNamingHer(context, query)
            || query.DateBounds(AppointmentDate) is not { } bounds
            || bounds.To - bounds.From > LongestDayMs)
        {
            return false;
        }
        // Yesterday and the week ahead are days on Paris's clocks (ADR 0013), from yesterday's midnight to the midnight that ends the
        // seventh day ahead. Margins of two days before now and eight after missed an hour of them around the 25-hour day the clocks
        // go back (yesterday asked in the last hour of that day or the next, the seventh day ahead in the first hour of a day of the
        // week before), and took in the day before yesterday in the first hour after the 23-hour day in March.
        var today = ParisTime.DateOf(_time.GetUtcNow());
        return bounds.From >= ParisTime.StartOf(today.DayNumber - 1) && bounds.To <= ParisTime.StartOf(today.DayNumber + 8);
    }

    /// <summary>Whether a search asks only for appointments that name the person herself (her practitioner record) as an actor:
    /// each match is her own schedule, open to her whatever her care relationship with its patient (ADR 0006, revised
    /// 2026-12-06). Before, an appointment booked beyond the care window's 90 days ahead for a patient not otherwise hers was
    /// missing from her agenda, as if the slot were free. Its patient, brought by <c>_include</c>, is still judged by the rule of
    /// care (the agenda shows "not open to you"); the guard counts and the audit records each match as any search's.</summary>
    private static bool AppointmentsNamingHer(AccessContext context, SearchQuery query) =>
        query.Type == KnownResourceTypes.Appointment
        && context.Principal is { Kind: PrincipalKind.Person, Practitioner: { } practitioner }
        && query.RefersOnlyTo(AppointmentActor, KnownResourceTypes.Practitioner + "/" + practitioner);

    /// <summary>Whether a search asks only for the appointments of one practitioner of the person's service, by a person whose role
    /// keeps the service's agendas (<see cref="RolePermissions.KeepsServiceAgendas"/>: the front desk, which books for the service's
    /// practitioners and reaches every patient's identity): each match is the service's schedule, open to her whatever the rule of
    /// care says of its patient (ADR 0006, revised 2026-12-07). Before, the desk's view of a physician's day held only the patients
    /// her service already had a relationship with, and a slot booked for another looked free. A practitioner of another service,
    /// or of none, is searched under the rule of care as before; a membership is an active PractitionerRole of this establishment
    /// naming the practitioner and her service's Organization (<see cref="ServiceMembershipSql"/>).</summary>
    private async ValueTask<bool> ServiceScheduleAsync(AccessContext context, SearchQuery query, CancellationToken cancellationToken)
    {
        if (query.Type != KnownResourceTypes.Appointment
            || context.Principal is not { Kind: PrincipalKind.Person, Role: { } role, Service: { Length: > 0 } service }
            || !RolePermissions.KeepsServiceAgendas(role)
            || query.OnlyTarget(AppointmentActor, KnownResourceTypes.Practitioner) is not { } practitioner)
        {
            return false;
        }
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        return await ServiceMembershipSql.IsMemberAsync(_database, context.Tenant.Id, practitioner, service,
            IndexEntries.CodeHash(keys.Index, SearchParameters.For(KnownResourceTypes.PractitionerRole)["active"], "false"), cancellationToken);
    }

    /// <summary>The policy's SQL filter of a search's matches; none for a schedule open to her (<see cref="SearchQuery.OpenSchedule"/>).</summary>
    private string? Filter(AccessContext context, SearchQuery query, DbCommand command, IReadOnlySet<string>? newPatients) =>
        query.OpenSchedule ? null : _policy.FilterFor(context, query.Type, command, Engine, newPatients);

    /// <summary>
    /// A person's search of one patient's records (<c>Observation?patient=…</c>) when that patient is not open to her: answered as
    /// a read of the patient's record is — 403 with the way to break the glass, or, for a role that may not, the filtered (empty)
    /// page — and in either case recorded as a refusal concerning that patient, on their access history. Before, it was an empty
    /// page and an entry naming no one: an attempt on a patient's record left no trace on it, and "no result" on a chart could be
    /// read as the patient having none. Not for appointments: those she booked are open to her whatever their patient (ADR 0006).
    /// </summary>
    private async ValueTask<SearchPage?> RefusedPatientAsync(AccessContext context, SearchQuery query, WriteBatch? batch, CancellationToken cancellationToken)
    {
        if (context.Principal.Kind != PrincipalKind.Person || query.Type == KnownResourceTypes.Appointment || query.OnlyPatient() is not { } patient) return null;
        var decision = await _policy.AuthorizeRecordAsync(context, query.Type, patient, null, batch?.NewPatients, cancellationToken);
        if (decision.Verdict == RecordVerdict.Allow) return null;
        var forbidden = decision.Verdict == RecordVerdict.Forbidden;
        await AuditAsync(context, Interaction.Search, AuditOutcome.MinorFailure, query.Type, [new AuditedRecord(KnownResourceTypes.Patient, patient, patient)],
            cancellationToken, batch?.Scope, forbidden ? "refused by the access policy" : "refused by the access policy (not revealed)");
        return forbidden ? SearchPage.Fail(RecordStatus.Forbidden, Issue.Forbidden(decision.Reason!)) : null;
    }

    /// <summary>Today in Paris by this service's clock: what a search's <c>ap</c> and a birth date's <c>ne</c>, <c>gt</c>, <c>ge</c> and
    /// <c>ap</c> are reckoned from. Paris's, as the pages' is: from midnight in Paris to midnight UTC, UTC's date is still
    /// yesterday, and a child born after midnight was beyond the last year a birth-date search covered.</summary>
    private DateOnly Today() => ParisTime.DateOf(_time.GetUtcNow());

    /// <summary>Runs a search. <paramref name="page"/> is the opaque token of a next link; when given, <paramref name="parameters"/> are ignored.</summary>
    public async Task<SearchPage> SearchAsync(AccessContext context, string type, IReadOnlyList<KeyValuePair<string, string>> parameters, string? page, bool lenient, CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.Search, type, null, cancellationToken) is { } denied) return SearchPage.Fail(denied.Status, [.. denied.Issues!]);
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        (string Value, long Rid)? after = null;
        var depth = 1;
        if (page is not null)
        {
            if (PageParameters.Beside(parameters.Select(p => p.Key)) is { } beside) return SearchPage.Fail(RecordStatus.Invalid, PageParameters.Refusal(beside));
            if (OpenPage(context, page, type) is not { } state)
            {
                return SearchPage.Fail(RecordStatus.Invalid, Issue.Invalid("The paging link is invalid or has expired; run the search again."));
            }
            parameters = QueryOf(state);
            if (state.Depth > 1) after = (state.SortValue, state.Rid);
            depth = state.Depth;
        }
        var (query, refused) = await ParseSearchAsync(context, keys, type, parameters, lenient, cancellationToken);
        if (query is null) return refused!;
        var thisPage = page ?? FirstPage(context, type, query.Canonical.Select(p => new[] { p.Name, p.Value }).ToList());
        return await RunSearchAsync(context, keys, query, parameters, after, depth, thisPage, null, cancellationToken);
    }

    /// <summary>
    /// A search's parameters read into its query, as a search alone, in a batch or in a transaction reads them: an unknown or
    /// malformed one is refused (400) unless <paramref name="lenient"/>, and an include naming a type the principal may not read
    /// is refused (403, audited); "any type" includes are narrowed to the readable types (<see cref="IncludesAsync"/>'s caller
    /// filters them).
    /// </summary>
    private async Task<(SearchQuery? Query, SearchPage? Refused)> ParseSearchAsync(AccessContext context, TenantKeys keys, string type,
        IReadOnlyList<KeyValuePair<string, string>> parameters, bool lenient, CancellationToken cancellationToken)
    {
        var issues = new List<Issue>();
        var query = SearchQuery.Parse(type, parameters, keys, lenient, issues, Today(), context.ServerBase);
        if (query is null) return (null, SearchPage.Fail(RecordStatus.Invalid, [.. issues]));
        foreach (var include in query.Includes)
        {
            var named = include.Reverse ? include.SourceType : include.TargetType ?? (include.Parameter.Targets is [var only] ? only : null);
            if (named is not null && ReadRefusal(context, named, $"_{(include.Reverse ? "rev" : "")}include") is { } refusal)
            {
                await AuditRefusalAsync(context, Interaction.Search, type, null, refusal, cancellationToken);
                return (null, SearchPage.Fail(RecordStatus.Forbidden, Issue.Forbidden(refusal)));
            }
        }
        return (query, null);
    }

    /// <summary>Why <paramref name="type"/>, which a search or <c>$everything</c> names in <paramref name="requestedBy"/>, may not be
    /// read by the principal — in the words of what refuses it: a person's role, a client's scopes —; null when it may.</summary>
    private string? ReadRefusal(AccessContext context, string type, string requestedBy) =>
        _policy.Authorize(context, Interaction.Read, type).Allowed ? null
        : (context.Principal is { Kind: PrincipalKind.Person, Role: { } role } ? $"The {AccessPolicy.RoleName(role)} role does" : "The granted scopes do")
            + $" not allow reading {type}, requested by {requestedBy}.";

    /// <summary>
    /// A search once its query is read and its principal allowed the type: the page's rows — limited by the policy, in SQL or
    /// screened in memory —, then the guard, the opening of the bodies and the audit, in that order, before anything leaves.
    /// Alone (<paramref name="batch"/> null) on a read connection, the audit group-committed; inside a transaction bundle on the
    /// transaction's connection, so that it sees the transaction's own writes (the policy's SQL filter then, never the screening,
    /// which reads pooled connections), with its audit entries written in the transaction, committed with it or rolled back
    /// with everything else.
    /// </summary>
    /// <param name="searched">The parameters as given (a next page's from its token): for the guard on a first page (successive searches can sweep
    /// names), and told back with the page (<see cref="SearchPage.Searched"/>).</param>
    private async Task<SearchPage> RunSearchAsync(AccessContext context, TenantKeys keys, SearchQuery query, IReadOnlyList<KeyValuePair<string, string>> searched,
        (string Value, long Rid)? after, int depth, string thisPage, WriteBatch? batch, CancellationToken cancellationToken)
    {
        var type = query.Type;
        var scope = batch?.Scope;
        // Patients the transaction creates are open to it, as a read by id in it finds them (AccessPolicy.AuthorizeRecordAsync).
        var newPatients = batch?.NewPatients;
        if (await RefusedPatientAsync(context, query, batch, cancellationToken) is { } refusedPatient) return refusedPatient;
        query.OpenSchedule = AppointmentsNamingHer(context, query) || await ServiceScheduleAsync(context, query, cancellationToken);
        // A count carries no record but tells whether patients matching a name and birth date are here: a contained principal
        // gets none (the guard is asked with no patients, as for a write).
        if ((query.SummaryCount || query.Count == 0) && await AdmitAsync(context, Interaction.Search, type, [], depth, cancellationToken, scope) is { } held)
            return SearchPage.Fail(held.Status, [.. held.Issues!]);
        await using var own = scope is null ? await _database.OpenAsync(cancellationToken) : null;
        var connection = scope?.Connection ?? own!;
        var transaction = scope?.Transaction;
        var screened = scope is null && !query.OpenSchedule
            ? await ScreenAsync(context, query, after, query.SummaryCount || query.Count == 0 || query.TotalAccurate, cancellationToken) : null;
        if (query.SummaryCount || query.Count == 0)
        {
            var total = screened?.Total ?? await CountAsync(context, connection, transaction, query, cancellationToken, newPatients);
            await AuditAsync(context, Interaction.Search, AuditOutcome.Success, type, [], cancellationToken, scope, AuditTrail.CountOnlyNote);
            return new SearchPage(RecordStatus.Ok, [], total, null) { ThisPage = thisPage };
        }

        var (rows, sortValues) = screened is not null ? (screened.Rows, screened.SortValues) : await QueryAsync(context, connection, transaction, query, after, cancellationToken, newPatients);
        string? next = null;
        if (rows.Count > query.Count)
        {
            rows.RemoveAt(rows.Count - 1);
            next = _pages.Seal(new PageState(context.Tenant.Id, context.Principal.Id, type, query.Canonical.Select(p => new[] { p.Name, p.Value }).ToList(),
                sortValues[rows.Count - 1], rows[^1].Rid, _time.GetUtcNow().AddHours(1).ToUnixTimeMilliseconds(), depth + 1));
        }
        int? totalCount = null;
        if (query.TotalAccurate) totalCount = screened?.Total ?? await CountAsync(context, connection, transaction, query, cancellationToken, newPatients);
        else if (after is null && next is null) totalCount = rows.Count;

        var (includes, includesCut) = await IncludesAsync(connection, transaction, query, rows, context.Tenant.Id, cancellationToken);
        var included = await AllowedAsync(context, includes.Where(r => _policy.Authorize(context, Interaction.Read, TypeCodes.NameOf(r.Type)).Allowed).ToList(), cancellationToken, newPatients);
        // A first page's parameters go to the guard too: successive searches can sweep names or birth dates.
        // A page the guard holds back for both factors again keeps its token: once they are given, the person comes back to this
        // page, not to an empty form (the search's values were posted, and are in no URL).
        var scheduled = IsOwnSchedule(context, query) ? rows.Select(r => r.Compartment).OfType<string>().ToHashSet(StringComparer.Ordinal) : null;
        if (await AdmitAsync(context, Interaction.Search, type, [.. rows, .. included], depth, cancellationToken, scope, searched: after is null ? searched : null,
                scheduled: scheduled) is { } contained)
            return SearchPage.Fail(contained.Status, [.. contained.Issues!]) with { ThisPage = contained.Status == RecordStatus.ReauthenticationRequired ? thisPage : null };
        List<StoredVersion> leaving = [.. rows, .. included];
        var (bodies, damaged) = await OpenAllAsync(context, Interaction.Search, type, keys, leaving, scope, cancellationToken);
        if (damaged is not null) return SearchPage.Fail(damaged.Status, [.. damaged.Issues!]);
        // One entry per patient whose records the page returns (matches and includes together), or one for an empty page.
        await AuditAsync(context, Interaction.Search, AuditOutcome.Success, type,
            leaving.Select(r => new AuditedRecord(TypeCodes.NameOf(r.Type), r.Id, r.Compartment)).ToList(), cancellationToken, scope);
        var entries = leaving.Select((r, i) => new SearchEntry(TypeCodes.NameOf(r.Type), r.Id, r.Version, r.LastUpdated,
            query.Subset is { } subset && (i < rows.Count || subset.AppliesToIncluded) ? subset.Apply(TypeCodes.NameOf(r.Type), bodies[i]!) : bodies[i], i >= rows.Count)).ToList();
        return new SearchPage(RecordStatus.Ok, entries, totalCount, next)
        {
            ThisPage = thisPage,
            Searched = searched,
            Outcome = includesCut || query.Ignored.Count > 0
                ? [.. query.Ignored.Select(i => new Issue("warning", "not-supported", i)),
                   .. includesCut ? [new Issue("warning", "incomplete", $"This page includes the first {MaxIncluded:N0} resources that _include/_revinclude found, not all of them; ask for fewer matches a page (_count) to get the rest.")] : Array.Empty<Issue>()]
                : null,
        };
    }

    /// <summary>Patients an outside-care lookup offers at most; past it none is offered (a NIR filed under more patients than
    /// this is a matter for identity vigilance, not a choice to make on a search page).</summary>
    public const int MaxOutsideCareMatches = 5;

    /// <summary>What the audit entry of an outside-care lookup says, beside the patients it returned.</summary>
    public const string OutsideCareLookupNote = "outside-care lookup (break-the-glass candidates)";

    /// <summary>
    /// The patients outside a person's care relationships that an exact identifying search finds — a complete NIR with its valid
    /// control key as <c>identifier</c>, optionally narrowed by family, given and birth date —, for a clinician who holds a
    /// patient's number to choose whom to break the glass for (ADR 0006, revised 2026-12-07). Only for a person whose role may
    /// break the glass and reaches patients through care relationships; anyone else gets an empty page, as their search gives.
    /// Partial identifiers and names alone are refused (400): they would make the lookup an oracle of who is filed here. At most
    /// <see cref="MaxOutsideCareMatches"/> patients; more, and none is returned. What is returned leaves as a search's matches do:
    /// counted by the guard (as identities), then audited as a search by this person, with <see cref="OutsideCareLookupNote"/>.
    /// </summary>
    public async Task<SearchPage> OutsideCareMatchesAsync(AccessContext context, IReadOnlyList<KeyValuePair<string, string>> parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(parameters);
        const string type = KnownResourceTypes.Patient;
        if (await CheckAsync(context, Interaction.Search, type, null, cancellationToken) is { } denied) return SearchPage.Fail(denied.Status, [.. denied.Issues!]);
        if (context.Principal is not { Kind: PrincipalKind.Person, Role: { } role } || !RolePermissions.MayBreakTheGlass(role)
            || RolePermissions.For(role, type).Reach != Reach.Related)
        {
            return new SearchPage(RecordStatus.Ok, [], 0, null);
        }
        if (!IsExactIdentifying(parameters))
        {
            return SearchPage.Fail(RecordStatus.Invalid, Issue.Invalid("An outside-care lookup takes one complete NIR with its valid control key (identifier), and only family, given and birthdate beside it."));
        }
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var (query, refused) = await ParseSearchAsync(context, keys, type,
            [.. parameters, new("_count", MaxOutsideCareMatches.ToString(System.Globalization.CultureInfo.InvariantCulture))], lenient: false, cancellationToken);
        if (query is null) return refused!;
        // The query without the policy's filter: every patient the criteria name, as the policy's screening reads its candidates.
        var found = await UnfilteredRowsAsync(context, query, cancellationToken);
        var outside = new List<StoredVersion>();
        if (found.Count <= MaxOutsideCareMatches)
        {
            // Only those the policy refuses with the way to break the glass: one in her care is her search's to show.
            foreach (var row in found)
            {
                if ((await _policy.AuthorizeRecordAsync(context, type, row.Compartment, row.CreatedBy, null, cancellationToken)).Verdict == RecordVerdict.Forbidden) outside.Add(row);
            }
        }
        if (await AdmitAsync(context, Interaction.Search, type, outside, 1, cancellationToken, searched: parameters) is { } held)
            return SearchPage.Fail(held.Status, [.. held.Issues!]);
        var (bodies, damaged) = await OpenAllAsync(context, Interaction.Search, type, keys, outside, null, cancellationToken);
        if (damaged is not null) return SearchPage.Fail(damaged.Status, [.. damaged.Issues!]);
        await AuditAsync(context, Interaction.Search, AuditOutcome.Success, type,
            outside.Select(r => new AuditedRecord(type, r.Id, r.Compartment)).ToList(), cancellationToken, note: OutsideCareLookupNote);
        var entries = outside.Select((r, i) => new SearchEntry(type, r.Id, r.Version, r.LastUpdated, bodies[i], false)).ToList();
        return new SearchPage(RecordStatus.Ok, entries, entries.Count, null);
    }

    /// <summary>The first page of <paramref name="query"/>'s records in the context's establishment, without the access policy's
    /// filter: for the look-ups that decide themselves what of them leaves (a NIR's patients, outside-care candidates).</summary>
    private async Task<List<StoredVersion>> UnfilteredRowsAsync(AccessContext context, SearchQuery query, CancellationToken cancellationToken)
    {
        using var command = _database.NewCommand();
        SearchSql.Build(command, Engine, query, context.Tenant.Id, null, countOnly: false, allowed: null);
        return await _database.QueryAsync(command, static async (reader, ct) =>
        {
            var rows = new List<StoredVersion>();
            while (await reader.ReadAsync(ct)) rows.Add(ResourceRows.ReadRow(reader));
            return rows;
        }, cancellationToken);
    }

    /// <summary>Whether search parameters name one patient by a complete NIR with its valid key (one identifier, one value, no
    /// system), with nothing beside it but family, given and birth date: no prefix, list or modifier reaches further.</summary>
    public static bool IsExactIdentifying(IReadOnlyList<KeyValuePair<string, string>> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var identifiers = parameters.Where(p => p.Key == "identifier").ToList();
        return identifiers is [{ Value: var nir }] && Nir.Normalize(nir) == nir
            && parameters.All(p => p.Key is "identifier" or "family" or "given" or "birthdate");
    }

    /// <summary>Patient/$everything without parameters: everything, in one page.</summary>
    public Task<SearchPage> EverythingAsync(AccessContext context, string patientId, CancellationToken cancellationToken) =>
        EverythingAsync(context, patientId, [], null, false, cancellationToken);

    /// <summary>
    /// Patient/$everything: the patient, every resource that refers to them, and the practitioners and organizations those
    /// refer to; restricted by <c>_type</c> and <c>_since</c>, and paged when <c>_count</c> is given (FHIR R4
    /// Patient-everything). <paramref name="page"/> is the opaque token of a next link; when given, it carries the first
    /// page's parameters and <paramref name="parameters"/> are ignored. Unknown parameters are refused, or ignored when
    /// <paramref name="lenient"/>.
    /// </summary>
    public async Task<SearchPage> EverythingAsync(AccessContext context, string patientId, IReadOnlyList<KeyValuePair<string, string>> parameters, string? page, bool lenient,
        CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.Everything, "Patient", patientId, cancellationToken) is { } denied) return SearchPage.Fail(denied.Status, [.. denied.Issues!]);
        if (!IdRules.IsValid(patientId)) return SearchPage.Fail(RecordStatus.NotFound, Issue.NotFound("Not a valid id."));
        var scope = "$everything/Patient/" + patientId;
        (int Group, long Rid)? after = null;
        var depth = 1;
        if (page is not null)
        {
            if (PageParameters.Beside(parameters.Select(p => p.Key)) is { } beside) return SearchPage.Fail(RecordStatus.Invalid, PageParameters.Refusal(beside));
            if (OpenPage(context, page, scope) is not { } state)
            {
                return SearchPage.Fail(RecordStatus.Invalid, Issue.Invalid("The paging link is invalid or has expired; run $everything again."));
            }
            parameters = QueryOf(state);
            if (state.Depth > 1) after = (int.Parse(state.SortValue, System.Globalization.CultureInfo.InvariantCulture), state.Rid);
            depth = state.Depth;
        }
        var request = EverythingRequest.Parse(parameters, lenient, out var problems);
        if (request is null) return SearchPage.Fail(RecordStatus.Invalid, [.. problems]);
        // A type asked for by name that the principal may not read is refused, as an _include of it is: left out silently, "no
        // observations" read as a fact (the patient's own record, which $everything itself is allowed on, is always readable here).
        if (request.Types?.Order(StringComparer.Ordinal).Where(t => t != "Patient").Select(t => ReadRefusal(context, t, "_type")).FirstOrDefault(r => r is not null) is { } typeRefused)
        {
            await AuditRefusalAsync(context, Interaction.Everything, "Patient", patientId, typeRefused, cancellationToken);
            return SearchPage.Fail(RecordStatus.Forbidden, Issue.Forbidden(typeRefused));
        }

        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        await using var connection = await _database.OpenAsync(cancellationToken);
        var patient = await _rows.CurrentAsync(connection, null, context.Tenant.Id, TypeCodes.Of("Patient"), patientId, false, cancellationToken);
        if (patient is null)
        {
            await AuditAsync(context, Interaction.Everything, AuditOutcome.MinorFailure, "Patient", [new AuditedRecord("Patient", patientId, patientId)], cancellationToken);
            return SearchPage.Fail(RecordStatus.NotFound, Issue.NotFound($"Patient/{patientId} is not known."));
        }
        if (await CheckRecordAsync(context, Interaction.Everything, "Patient", patientId, patient.Compartment, patient.CreatedBy, null, cancellationToken) is { } refused)
        {
            return SearchPage.Fail(refused.Status, [.. refused.Issues!]);
        }
        if (patient.Deleted)
        {
            // 410, as a read of the patient answers (it was 404, as if the record had never existed), once the policy has let the
            // person see that much.
            await AuditAsync(context, Interaction.Everything, AuditOutcome.MinorFailure, "Patient", [new AuditedRecord("Patient", patientId, patientId)], cancellationToken);
            return SearchPage.Fail(RecordStatus.Gone, Issue.Error("deleted", $"Patient/{patientId} was deleted (version {patient.Version})."));
        }
        if (request.Count == 0) return await EverythingCountAsync(context, connection, patient, request, depth, page ?? FirstPage(context, scope, request.Used.Select(p => new[] { p.Key, p.Value }).ToList()),
            cancellationToken);
        // In a stable order, paged by (group, rid): the patient (group 0), the records that refer to them (1), then the
        // practitioners and organizations those records refer to (2). Each page reads only its own rows, so a record of any
        // size is returned whole, a page at a time; without _count a page holds up to MaxEverythingPage resources.
        var budget = request.Count ?? MaxEverythingPage;
        var readable = (IReadOnlyList<string> types) => types.Where(t => (request.Types is null || request.Types.Contains(t))
            && _policy.Authorize(context, Interaction.Read, t).Allowed).ToList();
        var rows = new List<StoredVersion>();
        string? next = null;
        if (after is null && Wanted(patient)) rows.Add(patient);
        if (after is null || after.Value.Group <= 1)
        {
            var types = readable([.. TypeCodes.Names.Where(t => !EverythingReferencedTypes.Contains(t))]);
            var referring = new List<StoredVersion>();
            if (types.Count > 0)
            {
                using var command = connection.CreateCommand();
                command.CommandText = $"""
                    SELECT DISTINCT {SearchSql.Columns} FROM idx_ref x JOIN resources r ON r.rid = x.rid
                    WHERE x.target = @p AND r.tenant_id = @t AND r.deleted = 0 AND {command.InList(Engine, "r.type", "ty", types.Select(TypeCodes.Of).ToList())}
                    """ + (request.Since is null ? "" : " AND r.last_updated >= @since") + (after is { Group: 1 } ? " AND r.rid > @after" : "")
                    + " ORDER BY r.rid" + Sql.Limit(budget - rows.Count + 1);
                command.With("p", "Patient/" + patientId).With("t", context.Tenant.Id);
                if (request.Since is { } since) command.With("since", since);
                if (after is { Group: 1 } cursor) command.With("after", cursor.Rid);
                using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken)) referring.Add(ResourceRows.ReadRow(reader));
            }
            if (rows.Count + referring.Count > budget)
            {
                referring.RemoveAt(referring.Count - 1);
                // A first page that the patient alone fills goes on from the first record.
                next = NextPage(1, referring.Count > 0 ? referring[^1].Rid : 0);
            }
            rows.AddRange(await AllowedAsync(context, referring, cancellationToken));
        }
        if (next is null)
        {
            var types = readable(EverythingReferencedTypes);
            var referenced = types.Count == 0 ? [] : (await AllowedAsync(context, await ReferencedByVisibleRecordsAsync(context, connection, patientId, types, cancellationToken), cancellationToken))
                .Where(r => Wanted(r) && (after is not { Group: 2 } cursor || r.Rid > cursor.Rid)).OrderBy(r => r.Rid).ToList();
            if (rows.Count + referenced.Count > budget)
            {
                referenced = referenced.Take(budget - rows.Count).ToList();
                next = NextPage(2, referenced.Count > 0 ? referenced[^1].Rid : 0);
            }
            rows.AddRange(referenced);
        }
        bool Wanted(StoredVersion r) => (request.Types is null || request.Types.Contains(TypeCodes.NameOf(r.Type))) && (request.Since is null || r.LastUpdated >= request.Since);
        string NextPage(int group, long rid) => _pages.Seal(new PageState(context.Tenant.Id, context.Principal.Id, scope, request.Used.Select(p => new[] { p.Key, p.Value }).ToList(),
            group.ToString(System.Globalization.CultureInfo.InvariantCulture), rid, _time.GetUtcNow().AddHours(1).ToUnixTimeMilliseconds(), depth + 1));
        if (await AdmitAsync(context, Interaction.Everything, "Patient", rows, depth, cancellationToken, subject: patientId) is { } contained) return SearchPage.Fail(contained.Status, [.. contained.Issues!]);
        var (bodies, damaged) = await OpenAllAsync(context, Interaction.Everything, "Patient", keys, rows, null, cancellationToken);
        if (damaged is not null) return SearchPage.Fail(damaged.Status, [.. damaged.Issues!]);
        // Each record under the patient whose compartment holds it; one held by another patient (an appointment of A that
        // names B as a participant too) also under this patient, whose record it is part of; practitioners and organizations
        // referenced belong to no compartment but were returned for this patient.
        await AuditAsync(context, Interaction.Everything, AuditOutcome.Success, "Patient",
            rows.SelectMany(r => r.Compartment is { } holder && holder != patientId
                ? [new AuditedRecord(TypeCodes.NameOf(r.Type), r.Id, holder), new AuditedRecord(TypeCodes.NameOf(r.Type), r.Id, patientId)]
                : new[] { new AuditedRecord(TypeCodes.NameOf(r.Type), r.Id, patientId) }).ToList(), cancellationToken);
        var entries = rows.Select((r, i) => new SearchEntry(TypeCodes.NameOf(r.Type), r.Id, r.Version, r.LastUpdated, bodies[i], false)).ToList();
        // A total only when the whole record is on this one page: across pages, counting would read every page at once.
        return new SearchPage(RecordStatus.Ok, entries, after is null && next is null ? rows.Count : null, next)
        {
            ThisPage = page ?? FirstPage(context, scope, request.Used.Select(p => new[] { p.Key, p.Value }).ToList()),
        };
    }

    /// <summary>
    /// Patient/$everything?_count=0: how many resources its pages would return, and none of them (as a search's _count=0). The
    /// patient's record was opened to the principal by the caller; the guard is asked as for a first page of this patient's
    /// $everything, with no record, and the act is audited as a count. Each group is counted as its pages select it, reading
    /// the referring records' keys and policy columns, not their bodies.
    /// </summary>
    private async Task<SearchPage> EverythingCountAsync(AccessContext context, DbConnection connection, StoredVersion patient, EverythingRequest request, int depth,
        string thisPage, CancellationToken cancellationToken)
    {
        bool Readable(string type) => (request.Types is null || request.Types.Contains(type)) && _policy.Authorize(context, Interaction.Read, type).Allowed;
        bool Since(long lastUpdated) => request.Since is null || lastUpdated >= request.Since;
        var total = (request.Types is null || request.Types.Contains("Patient")) && Since(patient.LastUpdated) ? 1 : 0; // as the first page adds it
        var types = TypeCodes.Names.Where(t => !EverythingReferencedTypes.Contains(t) && Readable(t)).ToList();
        if (types.Count > 0)
        {
            var referring = new List<(string Type, string? Compartment, string? CreatedBy)>();
            using (var command = connection.CreateCommand())
            {
                command.CommandText = $"""
                    SELECT DISTINCT r.rid, r.type, r.compartment, r.created_by FROM idx_ref x JOIN resources r ON r.rid = x.rid
                    WHERE x.target = @p AND r.tenant_id = @t AND r.deleted = 0 AND {command.InList(Engine, "r.type", "ty", types.Select(TypeCodes.Of).ToList())}
                    """ + (request.Since is null ? "" : " AND r.last_updated >= @since");
                command.With("p", "Patient/" + patient.Id).With("t", context.Tenant.Id);
                if (request.Since is { } since) command.With("since", since);
                using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    referring.Add((TypeCodes.NameOf(Convert.ToInt32(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture)),
                        reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
                }
            }
            foreach (var (type, compartment, createdBy) in referring)
            {
                if ((await _policy.AuthorizeRecordAsync(context, type, compartment, createdBy, null, cancellationToken)).Verdict == RecordVerdict.Allow) total++;
            }
        }
        var referencedTypes = EverythingReferencedTypes.Where(Readable).ToList();
        if (referencedTypes.Count > 0)
        {
            var referenced = await AllowedAsync(context, await ReferencedByVisibleRecordsAsync(context, connection, patient.Id, referencedTypes, cancellationToken), cancellationToken);
            total += referenced.Count(r => Since(r.LastUpdated));
        }
        if (await AdmitAsync(context, Interaction.Everything, "Patient", [], depth, cancellationToken, subject: patient.Id) is { } held)
            return SearchPage.Fail(held.Status, [.. held.Issues!]);
        await AuditAsync(context, Interaction.Everything, AuditOutcome.Success, "Patient", [new AuditedRecord("Patient", patient.Id, patient.Id)], cancellationToken, note: AuditTrail.CountOnlyNote);
        return new SearchPage(RecordStatus.Ok, [], total, null) { ThisPage = thisPage };
    }

    /// <param name="newPatients">Patients the caller's own transaction creates (<paramref name="transaction"/>'s), open to it.</param>
    private async Task<(List<StoredVersion> Rows, List<string> SortValues)> QueryAsync(AccessContext context, DbConnection connection, DbTransaction? transaction, SearchQuery query, (string, long)? after, CancellationToken cancellationToken,
        IReadOnlySet<string>? newPatients = null)
    {
        using var command = transaction is null ? _database.NewCommand() : connection.CreateCommand();
        command.Transaction = transaction;
        SearchSql.Build(command, Engine, query, context.Tenant.Id, after, countOnly: false, Filter(context, query, command, newPatients));
        static async Task<(List<StoredVersion>, List<string>)> Read(DbDataReader reader, SearchQuery query, CancellationToken cancellationToken)
        {
            var rows = new List<StoredVersion>();
            var sortValues = new List<string>();
            while (await reader.ReadAsync(cancellationToken))
            {
                rows.Add(ResourceRows.ReadRow(reader));
                sortValues.Add(SearchSql.SortValue(query, reader.GetValue(10)));
            }
            return (rows, sortValues);
        }
        // Outside a write, on a pooled read connection with the statement kept prepared.
        if (transaction is null) return await _database.QueryAsync(command, (reader, ct) => Read(reader, query, ct), cancellationToken);
        using var direct = await command.ExecuteReaderAsync(cancellationToken);
        return await Read(direct, query, cancellationToken);
    }

    private async Task<int> CountAsync(AccessContext context, DbConnection connection, DbTransaction? transaction, SearchQuery query, CancellationToken cancellationToken,
        IReadOnlySet<string>? newPatients = null)
    {
        using var command = transaction is null ? _database.NewCommand() : connection.CreateCommand();
        command.Transaction = transaction;
        SearchSql.Build(command, Engine, query, context.Tenant.Id, null, countOnly: true, Filter(context, query, command, newPatients));
        static async Task<int> Read(DbDataReader reader, CancellationToken cancellationToken) =>
            await reader.ReadAsync(cancellationToken) ? Convert.ToInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture) : 0;
        if (transaction is null) return await _database.QueryAsync(command, Read, cancellationToken);
        using var direct = await command.ExecuteReaderAsync(cancellationToken);
        return await Read(direct, cancellationToken);
    }

    private const int ScreenedCandidates = 1000;
    private const int ScreenedUndecided = 16;

    private sealed record Screened(List<StoredVersion> Rows, List<string> SortValues, int? Total);

    private sealed record Candidate(long Rid, string? Compartment, string SortValue);

    /// <summary>
    /// A person's search screened in memory: the query's candidates (rid, compartment) without the policy's SQL
    /// filter, each patient decided by the policy — mostly from its remembered allowances — then the page's rows
    /// fetched by id. Exact counts and pages as with the SQL filter, at a fraction of its cost; null (use the SQL
    /// filter) when the principal is not screened this way, the candidates are too many, or too many patients are
    /// undecided.
    /// </summary>
    private async Task<Screened?> ScreenAsync(AccessContext context, SearchQuery query, (string, long)? after, bool needTotal, CancellationToken cancellationToken)
    {
        if (!_policy.ScreensInMemory(context, query.Type)) return null;
        // Most searches are selective: a page and some slack of whole rows holds every candidate, in one round trip.
        var slack = query.Count + 1 + ScreenedUndecided;
        using (var first = _database.NewCommand())
        {
            SearchSql.Build(first, Engine, query, context.Tenant.Id, after, countOnly: false, allowed: null, candidates: slack);
            var (whole, wholeSorts) = await _database.QueryAsync(first, async (reader, ct) =>
            {
                var rows = new List<StoredVersion>();
                var sorts = new List<string>();
                while (await reader.ReadAsync(ct))
                {
                    rows.Add(ResourceRows.ReadRow(reader));
                    sorts.Add(SearchSql.SortValue(query, reader.GetValue(10)));
                }
                return (rows, sorts);
            }, cancellationToken);
            if (whole.Count < slack && (after is null || !needTotal))
            {
                var refusedHere = await RefusedAsync(context, query.Type, whole.Select(r => r.Compartment), cancellationToken);
                if (refusedHere is not null)
                {
                    var keep = Enumerable.Range(0, whole.Count).Where(i => whole[i].Compartment is null || !refusedHere.Contains(whole[i].Compartment!)).ToList();
                    var pageRows = keep.Take(query.Count + 1).ToList();
                    return new Screened(pageRows.Select(i => whole[i]).ToList(), pageRows.Select(i => wholeSorts[i]).ToList(), needTotal ? keep.Count : null);
                }
            }
        }
        var page = await CandidatesAsync(context, query, after, cancellationToken);
        if (page is null) return null;
        var all = !needTotal ? null : after is null ? page : await CandidatesAsync(context, query, null, cancellationToken);
        if (needTotal && all is null) return null;
        var refused = await RefusedAsync(context, query.Type, page.Concat(all ?? []).Select(c => c.Compartment), cancellationToken);
        if (refused is null) return null;
        bool Allowed(Candidate c) => c.Compartment is null || !refused.Contains(c.Compartment);
        var chosen = page.Where(Allowed).Take(query.Count + 1).ToList();
        var rows = new List<StoredVersion>(chosen.Count);
        if (chosen.Count > 0)
        {
            using var command = _database.NewCommand();
            command.CommandText = $"SELECT {SearchSql.Columns} FROM resources r WHERE r.tenant_id = @t AND {command.InList(Engine, "r.rid", "rid", chosen.Select(c => c.Rid).ToList())}";
            command.With("t", context.Tenant.Id);
            var byRid = await _database.QueryAsync(command, async (reader, ct) =>
            {
                var found = new Dictionary<long, StoredVersion>();
                while (await reader.ReadAsync(ct)) { var row = ResourceRows.ReadRow(reader); found[row.Rid] = row; }
                return found;
            }, cancellationToken);
            foreach (var candidate in chosen) rows.Add(byRid[candidate.Rid]);
        }
        return new Screened(rows, chosen.Select(c => c.SortValue).ToList(), all?.Count(Allowed));
    }

    /// <summary>The query's candidates from the cursor on, in order, or null when there are more than the screening limit.</summary>
    private async Task<List<Candidate>?> CandidatesAsync(AccessContext context, SearchQuery query, (string, long)? after, CancellationToken cancellationToken)
    {
        using var command = _database.NewCommand();
        SearchSql.Build(command, Engine, query, context.Tenant.Id, after, countOnly: false, allowed: null, candidates: ScreenedCandidates + 1, narrow: true);
        var candidates = await _database.QueryAsync(command, async (reader, ct) =>
        {
            var list = new List<Candidate>();
            while (await reader.ReadAsync(ct))
            {
                list.Add(new Candidate(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1), SearchSql.SortValue(query, reader.GetValue(2))));
            }
            return list;
        }, cancellationToken);
        return candidates.Count > ScreenedCandidates ? null : candidates;
    }

    /// <summary>The patients among <paramref name="compartments"/> the principal may not open, or null when too many are undecided.</summary>
    private async Task<HashSet<string>?> RefusedAsync(AccessContext context, string type, IEnumerable<string?> compartments, CancellationToken cancellationToken)
    {
        var refused = new HashSet<string>(StringComparer.Ordinal);
        var undecided = new List<string>();
        foreach (var patient in compartments.OfType<string>().Distinct(StringComparer.Ordinal))
        {
            switch (_policy.Remembered(context, patient))
            {
                case true: break;
                case false: refused.Add(patient); break;
                default: undecided.Add(patient); break;
            }
        }
        if (undecided.Count > ScreenedUndecided) return null;
        foreach (var patient in undecided)
        {
            var decision = await _policy.AuthorizeRecordAsync(context, type, patient, null, null, cancellationToken);
            if (decision.Verdict != RecordVerdict.Allow) refused.Add(patient);
        }
        return refused;
    }

    /// <summary>The rows the policy lets the principal open (included and $everything rows; searches filter in SQL).</summary>
    private async Task<List<StoredVersion>> AllowedAsync(AccessContext context, List<StoredVersion> rows, CancellationToken cancellationToken, IReadOnlySet<string>? newPatients = null)
    {
        var allowed = new List<StoredVersion>(rows.Count);
        foreach (var row in rows)
        {
            var decision = await _policy.AuthorizeRecordAsync(context, TypeCodes.NameOf(row.Type), row.Compartment, row.CreatedBy, newPatients, cancellationToken);
            if (decision.Verdict == RecordVerdict.Allow) allowed.Add(row);
        }
        return allowed;
    }

    /// <summary>The resources the page's _include/_revinclude add, the first <see cref="MaxIncluded"/> of them; Cut is true when
    /// there were more.</summary>
    private async Task<(List<StoredVersion> Included, bool Cut)> IncludesAsync(DbConnection connection, DbTransaction? transaction, SearchQuery query, List<StoredVersion> rows, long tenant,
        CancellationToken cancellationToken)
    {
        var included = new List<StoredVersion>();
        var cut = false;
        if (rows.Count == 0) return (included, cut);
        var seen = rows.Select(r => r.Rid).ToHashSet();
        foreach (var include in query.Includes)
        {
            var parameter = include.Parameter.AliasOf is null ? include.Parameter : SearchParameters.For(include.SourceType)[include.Parameter.AliasOf];
            var targetTypes = include.TargetType is { } t ? [t] : (include.Parameter.Targets ?? TypeCodes.Names.ToList());
            List<StoredVersion> found;
            if (!include.Reverse)
            {
                found = await ReferencedAsync(connection, transaction, rows.Select(r => r.Rid).ToList(), parameter.Code, targetTypes, tenant, cancellationToken, MaxIncluded + 1);
            }
            else
            {
                found = [];
                using var command = connection.CreateCommand();
                command.Transaction = transaction;
                var targets = rows.Select(r => query.Type + "/" + r.Id).ToList();
                command.CommandText = $"""
                    SELECT DISTINCT {SearchSql.Columns} FROM idx_ref x JOIN resources r ON r.rid = x.rid
                    WHERE {command.InList(Engine, "x.target", "tg", targets)} AND x.param = @p AND r.tenant_id = @t AND r.type = @ty AND r.deleted = 0
                    ORDER BY r.rid
                    """ + Sql.Limit(MaxIncluded + 1);
                command.With("p", parameter.Code).With("t", tenant).With("ty", TypeCodes.Of(include.SourceType));
                using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken)) found.Add(ResourceRows.ReadRow(reader));
            }
            foreach (var row in found)
            {
                if (!seen.Add(row.Rid)) continue;
                if (included.Count == MaxIncluded)
                {
                    cut = true;
                    break;
                }
                included.Add(row);
            }
        }
        return (included, cut);
    }

    /// <summary>Resources of the given types referenced (through <paramref name="param"/>, or any reference) by the given rows — in the same tenant only.</summary>
    /// <summary>The resources of <paramref name="targetTypes"/> that the current records referring to the patient refer to — only
    /// the records the principal may see, so that a practitioner named only in a hidden record does not reveal it. Reads the
    /// records' keys and policy columns, not their bodies.</summary>
    private async Task<List<StoredVersion>> ReferencedByVisibleRecordsAsync(AccessContext context, DbConnection connection, string patientId,
        IReadOnlyList<string> targetTypes, CancellationToken cancellationToken)
    {
        var referring = new List<(long Rid, string Type, string? Compartment, string? CreatedBy)>();
        using (var command = connection.Command("""
            SELECT DISTINCT r.rid, r.type, r.compartment, r.created_by FROM idx_ref x JOIN resources r ON r.rid = x.rid
            WHERE x.target = @p AND r.tenant_id = @t AND r.deleted = 0
            """).With("p", "Patient/" + patientId).With("t", context.Tenant.Id))
        using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                referring.Add((reader.GetInt64(0), TypeCodes.NameOf(Convert.ToInt32(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture)),
                    reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
            }
        }
        var visible = new List<long>(referring.Count);
        foreach (var (rid, type, compartment, createdBy) in referring)
        {
            if (_policy.Authorize(context, Interaction.Read, type).Allowed
                && (await _policy.AuthorizeRecordAsync(context, type, compartment, createdBy, null, cancellationToken)).Verdict == RecordVerdict.Allow)
            {
                visible.Add(rid);
            }
        }
        // All of them: $everything pages this group by row id, so none is left out.
        return await ReferencedAsync(connection, null, visible, null, targetTypes, context.Tenant.Id, cancellationToken, perType: int.MaxValue);
    }

    /// <param name="perType">Targets read at most of each type (read 500 at a time).</param>
    private async Task<List<StoredVersion>> ReferencedAsync(DbConnection connection, DbTransaction? transaction, List<long> sourceRids, int? param, IReadOnlyList<string> targetTypes, long tenant,
        CancellationToken cancellationToken, int perType = MaxIncluded)
    {
        var targets = new List<string>();
        for (var start = 0; start < sourceRids.Count; start += 500)
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            var chunk = sourceRids.Skip(start).Take(500).ToList();
            command.CommandText = $"SELECT DISTINCT x.target FROM idx_ref x WHERE {command.InList(Engine, "x.rid", "rids", chunk)}" + (param is null ? "" : " AND x.param = @p");
            if (param is not null) command.With("p", param.Value);
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) targets.Add(reader.GetString(0));
        }
        var found = new List<StoredVersion>();
        foreach (var group in targets.Distinct().Select(t => t.Split('/')).Where(p => targetTypes.Contains(p[0])).GroupBy(p => p[0]))
        {
            foreach (var ids in group.Select(p => p[1]).Take(perType).Chunk(500))
            {
                using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = $"SELECT {SearchSql.Columns} FROM resources r WHERE r.tenant_id = @t AND r.type = @ty AND r.deleted = 0 AND {command.InList(Engine, "r.id", "ids", ids)}";
                command.With("t", tenant).With("ty", TypeCodes.Of(group.Key));
                using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken)) found.Add(ResourceRows.ReadRow(reader));
            }
        }
        return found;
    }
}
