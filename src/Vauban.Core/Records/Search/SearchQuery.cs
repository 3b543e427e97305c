// A FHIR search request parsed and checked against the type's parameters, turned into index
// clauses. Identifying values are hashed with the tenant's index key here, so the SQL below never
// carries a name, number or birth date in clear. Anything unsupported is an error, never ignored.
using System.Globalization;
using Vauban.Crypto;
using Vauban.Fhir;

namespace Vauban.Records.Search;

internal enum ClauseKind { Hash, Reference, Date, Id, LastUpdated }

/// <summary>A hash that matches only where none of <paramref name="Without"/> is indexed too: a birth date given as a year alone
/// (its year's hash, none of its months') or as a month alone (its month's hash, none of its days').</summary>
internal sealed record HashAlone(long Hash, List<long> Without);

internal sealed record Clause(ClauseKind Kind, bool Negated, int Selectivity)
{
    /// <summary>The search parameter the clause was read from, as given (with its modifier: name:exact), for a message that names it.</summary>
    public string Parameter { get; init; } = "";
    public List<long> Hashes { get; init; } = [];
    /// <summary>For a hash clause: further alternatives, each a hash without others (<see cref="HashAlone"/>). Such a clause never drives.</summary>
    public List<HashAlone> Alone { get; init; } = [];
    /// <summary>For a negated hash clause: the resource must have one of these too, i.e. a value for the parameter (FHIR R4 search:
    /// a parameter matches only resources that have a value for it, ne included).</summary>
    public List<long> Present { get; init; } = [];
    public List<string> Targets { get; init; } = [];
    public List<int> Params { get; init; } = [];
    public List<(string Prefix, long Low, long High)> Ranges { get; init; } = [];
    public List<string> Ids { get; init; } = [];
}

internal sealed record IncludeSpec(string SourceType, SearchParameter Parameter, string? TargetType, bool Reverse);

internal sealed class SearchQuery
{
    public const int DefaultCount = 20;
    public const int MaxCount = 500;

    /// <summary>
    /// Values (comma-separated alternatives, repeated parameters) one search may carry: each becomes SQL parameters,
    /// and tens of thousands exceed SQLite's limit of variables and cost seconds of CPU. A search needing more is a
    /// bulk export.
    /// </summary>
    public const int MaxValues = 1_000;

    /// <summary>Index values one search may expand to (a birth-date range becomes the year, month and day hashes that tile it).</summary>
    public const int MaxIndexValues = 10_000;

    private static readonly HashSet<string> UnsupportedNames = new(StringComparer.Ordinal)
    {
        "_contained", "_containedType", "_has", "_list", "_text", "_content", "_query", "_filter", "_tag", "_profile", "_security", "_source", "_type",
    };

    private static readonly string[] Prefixes = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];

    public required string Type { get; init; }
    public List<Clause> Clauses { get; } = [];

    /// <summary>The day <c>ap</c> and a birth date's <c>ne</c> are reckoned from (Parse's <c>today</c>).</summary>
    private DateOnly Today { get; init; }
    public int Count { get; set; } = DefaultCount;
    public bool SummaryCount { get; set; }

    /// <summary>The part of each record the page returns (_summary=true, text or data; _elements), or null for whole records.</summary>
    public ResourceSubset? Subset { get; private set; }
    public bool TotalAccurate { get; set; }
    public string SortKey { get; set; } = "";
    public bool SortDescending { get; set; }
    public SearchParameter? SortParameter { get; set; }
    public List<IncludeSpec> Includes { get; } = [];
    public List<(string Name, string Value)> Canonical { get; } = [];

    /// <summary>Prefer: handling=lenient — unknown and unsupported parameters and modifiers are ignored, not refused (FHIR R4 search).</summary>
    private bool Lenient { get; init; }

    /// <summary>This server's FHIR base URL (<see cref="Vauban.Access.AccessContext.ServerBase"/>): a reference searched by an absolute URL under it
    /// names a record here.</summary>
    private string? ServerBase { get; init; }

    /// <param name="today">The date <c>ap</c> widens around and the last year a birth date's <c>ne</c>, <c>gt</c>, <c>ge</c> and <c>ap</c> cover:
    /// the date in Paris (<see cref="ParisTime.DateOf"/>) by the records service's clock (its TimeProvider), so that a search, the
    /// pages and the rest of the request agree on the day. Required: no search reads the system clock.</param>
    public static SearchQuery? Parse(string type, IEnumerable<KeyValuePair<string, string>> parameters, TenantKeys keys, bool lenient, List<Issue> issues,
        DateOnly today, string? serverBase = null)
    {
        var query = new SearchQuery { Type = type, Lenient = lenient, ServerBase = serverBase, Today = today };
        var values = 0;
        var controls = new HashSet<string>(StringComparer.Ordinal);
        string? summary = null;
        string? elements = null;
        foreach (var (rawName, value) in parameters)
        {
            if (rawName is "_format" or "_pretty" or "_page") continue;
            // One page size, one sort, one summary: given twice, which one counts would be a guess (the last one silently did).
            if (rawName is "_count" or "_sort" or "_summary" or "_total" or "_elements" && !controls.Add(rawName))
            {
                issues.Add(Issue.Invalid($"{rawName} is given twice; give it once{(rawName == "_sort" ? " (searches sort on one key)" : "")}.", rawName));
                continue;
            }
            // Counted before anything is parsed, so that an oversized search costs no more than reading it.
            values += 1 + value.Count(c => c == ',');
            if (values > MaxValues)
            {
                issues.Add(Issue.Error("too-costly", $"A search may carry at most {MaxValues} values in all (comma-separated alternatives and repeated parameters count one each); split it, or use $export."));
                return null;
            }
            var colon = rawName.IndexOf(':', StringComparison.Ordinal);
            var name = colon < 0 ? rawName : rawName[..colon];
            var modifier = colon < 0 ? null : rawName[(colon + 1)..];
            if (rawName.Contains('.', StringComparison.Ordinal) && !rawName.StartsWith('_'))
            {
                Unfiltered(issues, $"Chained search ('{rawName}') is not supported.");
                continue;
            }
            query.Canonical.Add((rawName, value));
            switch (name)
            {
                case "_count":
                    if (value.Length > 0 && value.All(char.IsAsciiDigit) && !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                        query.Count = MaxCount; // more than any page holds: a full page (it was "must be a non-negative integer", which it is)
                    else if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count < 0)
                        issues.Add(Issue.Invalid("_count must be a non-negative integer.", "_count"));
                    else query.Count = Math.Min(count, MaxCount);
                    continue;
                case "_summary":
                    if (value == "count") query.SummaryCount = true;
                    else summary = value;
                    continue;
                case "_elements":
                    elements = value;
                    continue;
                case "_total":
                    if (value == "accurate") query.TotalAccurate = true;
                    else if (value is not ("none" or "estimate")) issues.Add(Issue.Invalid("_total must be none, estimate or accurate.", "_total"));
                    continue;
                case "_sort":
                    query.ParseSort(value, issues);
                    continue;
                case "_include":
                case "_revinclude":
                    query.ParseInclude(name == "_revinclude", modifier, value, issues);
                    continue;
                case "_id":
                    if (modifier is not null) { Unfiltered(issues, $"Modifier ':{modifier}' is not supported on _id."); continue; }
                    var ids = value.Split(',').Select(v => v.Trim()).ToList();
                    if (ids.Any(i => !IdRules.IsValid(i))) { issues.Add(Issue.Invalid("_id values must be valid FHIR ids.", "_id")); continue; }
                    query.Clauses.Add(new Clause(ClauseKind.Id, false, 0) { Ids = ids, Parameter = rawName });
                    continue;
                case "_lastUpdated":
                    if (modifier is not null) { Unfiltered(issues, $"Modifier ':{modifier}' is not supported on _lastUpdated."); continue; }
                    if (ParseDates(value, "_lastUpdated", issues) is { } updated) query.Clauses.Add(new Clause(ClauseKind.LastUpdated, false, 5) { Ranges = Approximated(updated, query.Today), Parameter = rawName });
                    continue;
            }
            if (UnsupportedNames.Contains(name) || name.StartsWith('_'))
            {
                query.Unsupported(issues, $"The search parameter '{name}' is not supported.");
                continue;
            }
            if (!SearchParameters.TryGet(type, name, out var parameter) || parameter.Hidden)
            {
                if (lenient)
                {
                    query.Canonical.RemoveAt(query.Canonical.Count - 1);
                    query.Ignored.Add($"Unknown search parameter '{name}' for {type}: ignored (Prefer: handling=lenient).");
                    continue;
                }
                var known = string.Join(", ", SearchParameters.For(type).Values.Where(p => !p.Hidden).Select(p => p.Name).Order(StringComparer.Ordinal));
                issues.Add(Issue.Invalid($"Unknown search parameter '{name}' for {type}. Supported: _id, _lastUpdated, {known}."));
                continue;
            }
            if (query.ParseValue(parameter, modifier, value, keys, issues) is { } clause) query.Clauses.Add(clause with { Parameter = rawName });
        }
        // A count returns no record to cut.
        if (!query.SummaryCount) query.Subset = ResourceSubset.Parse(type, summary, elements, issues);
        if (query.Clauses.Sum(c => c.Hashes.Count + c.Alone.Sum(a => 1 + a.Without.Count) + c.Present.Count + c.Targets.Count + c.Ranges.Count + c.Ids.Count) > MaxIndexValues)
        {
            issues.Add(Issue.Error("too-costly", $"This search expands to more than {MaxIndexValues} index values (date ranges on identifying dates expand to many); narrow it."));
        }
        return issues.Count == 0 ? query : null;
    }

    /// <summary>One clause of this query, asked of the one record <paramref name="id"/> (<c>_id</c> beside it): whether that record
    /// is among what the clause finds, by the same SQL over the same index rows as the search.</summary>
    public SearchQuery OfRecord(Clause clause, string id)
    {
        var query = new SearchQuery { Type = Type, Today = Today, ServerBase = ServerBase };
        query.Clauses.Add(new Clause(ClauseKind.Id, false, 0) { Ids = [id], Parameter = "_id" });
        query.Clauses.Add(clause);
        return query;
    }

    private Clause? ParseValue(SearchParameter parameter, string? modifier, string value, TenantKeys keys, List<Issue> issues)
    {
        // A token's "\|" is a '|' in the code, not the system separator (R4 search, escaping): kept apart until the split.
        var values = SplitValues(value, parameter.Kind == SearchParamKind.Token ? EscapedBar : '|');
        if (values.Count == 0 || values.Any(v => v.Length == 0))
        {
            issues.Add(Issue.Invalid($"The search parameter '{parameter.Name}' has an empty value.", parameter.Name));
            return null;
        }
        var stored = parameter.AliasOf is null ? parameter : SearchParameters.For(Type)[parameter.AliasOf];
        var members = parameter.UnionOf?.Select(n => SearchParameters.For(Type)[n]).ToList() ?? [stored];
        switch (parameter.Kind)
        {
            case SearchParamKind.String:
            {
                if (modifier is not (null or "exact"))
                {
                    Unfiltered(issues, $"Modifier ':{modifier}' is not supported on string parameter '{parameter.Name}' (supported: default starts-with, :exact). Values are stored encrypted, so :contains is not available.");
                    return null;
                }
                var clause = new Clause(ClauseKind.Hash, false, 2);
                var shortest = int.MaxValue;
                foreach (var v in values)
                {
                    var folded = TextNormalizer.Fold(v);
                    if (modifier is null && folded.Length == 0)
                    {
                        issues.Add(Issue.Invalid($"The value of '{parameter.Name}' must contain letters or digits.", parameter.Name));
                        return null;
                    }
                    shortest = Math.Min(shortest, folded.Length);
                    foreach (var member in members)
                    {
                        clause.Hashes.Add(modifier == "exact"
                            ? keys.Index.Hash(member.Code, 'e', v)
                            : keys.Index.Hash(member.Code, 'p', folded.AsSpan(0, Math.Min(folded.Length, IndexEntries.MaxPrefix))));
                    }
                }
                // Selectivity ranks drivers (lower drives): a 3-letter name prefix matches ~2 % of a hospital's patients,
                // a birth day ~0.003 %; identifiers and contacts single people.
                return clause with { Selectivity = modifier == "exact" || shortest >= 6 ? 1 : shortest >= 4 ? 2 : shortest >= 2 ? 3 : 6 };
            }
            case SearchParamKind.Token:
            {
                if (modifier is not (null or "not"))
                {
                    Unfiltered(issues, $"Modifier ':{modifier}' is not supported on token parameter '{parameter.Name}' (supported: :not).");
                    return null;
                }
                var clause = new Clause(ClauseKind.Hash, modifier == "not", parameter.Normalization == TokenNormalization.None ? 6 : 0);
                foreach (var escaped in values)
                {
                    var bar = escaped.IndexOf('|', StringComparison.Ordinal);
                    var v = escaped.Replace(EscapedBar, '|');
                    if (bar == v.Length - 1)
                    {
                        issues.Add(Issue.NotSupported($"Searching '{parameter.Name}' by system alone ('{v[..bar]}|') is not supported; give system|code."));
                        return null;
                    }
                    var typed = bar < 0 ? v : v[(bar + 1)..];
                    var code = IndexEntries.NormalizeToken(parameter.Normalization, typed);
                    clause.Hashes.Add(TokenHash(code));
                    // An identifier indexed before format 4 (typed with no-break spaces, or a NIR with Corsica's 2a) is found by its
                    // former form too until `vauban reindex` has re-extracted it: an upgrade does not make a registered patient
                    // unfindable, and registered twice by a conditional create, meanwhile.
                    if (parameter.Normalization == TokenNormalization.Identifier && TextNormalizer.IdentifierBeforeFormat4(typed) is var former && former != code)
                    {
                        clause.Hashes.Add(TokenHash(former));
                    }

                    // A code element's values are stored without a system (theirs is implicit): system|code is its code under that
                    // one system, and under any other matches nothing (no stored value has the 's' hash of another system). |code asks
                    // for a code with no system (FHIR R4 search, token); a code element bound to one code system has that system, so
                    // gender=|male matches nothing, as gender=<another system>|male does: its hash is of a kind ('x') no value has.
                    long TokenHash(string normalized) => bar < 0 || IndexEntries.IsContactToken(parameter.Normalization) ? keys.Index.Hash(stored.Code, 'c', normalized)
                        : bar == 0 && stored.CodeSystem is not null ? keys.Index.Hash(stored.Code, 'x', normalized)
                        : bar == 0 ? keys.Index.Hash(stored.Code, 'n', normalized)
                        : stored.CodeSystem is not null && v.AsSpan(0, bar).SequenceEqual(stored.CodeSystem) ? keys.Index.Hash(stored.Code, 'c', normalized)
                        : keys.Index.Hash(stored.Code, 's', v[..bar] + "|" + normalized);
                }
                return clause;
            }
            case SearchParamKind.Reference:
            {
                if (modifier is not null && !(TypeCodes.TryGet(modifier, out _) && (parameter.Targets ?? stored.Targets)?.Contains(modifier) != false))
                {
                    Unfiltered(issues, $"Modifier ':{modifier}' is not supported on reference parameter '{parameter.Name}'.");
                    return null;
                }
                var targetTypes = modifier is not null ? [modifier] : (parameter.Targets ?? stored.Targets ?? TypeCodes.Names.ToList());
                var clause = new Clause(ClauseKind.Reference, false, 1) { Params = [stored.Code] };
                foreach (var v in values)
                {
                    var reference = v;
                    if (v.Contains("://", StringComparison.Ordinal))
                    {
                        if (ServerBase is null || !v.StartsWith(ServerBase + "/", StringComparison.OrdinalIgnoreCase))
                        {
                            // A record on another server: only references to records here are indexed (ADR 0003), so none matches.
                            clause.Targets.Add(v);
                            continue;
                        }
                        reference = v[(ServerBase.Length + 1)..];
                    }
                    if (reference.Contains("/_history/", StringComparison.Ordinal))
                    {
                        // R4 search defines [id], [type]/[id] and [url] as reference values, not a version: the index keeps which record
                        // a reference names, never the version it named, so no answer would be right (ADR 0003).
                        issues.Add(Issue.NotSupported($"'{parameter.Name}' cannot be searched by a version-specific reference (Type/id/_history/version): "
                            + "references are indexed by the record they name, not its version. Search by Type/id."));
                        return null;
                    }
                    if (reference.Contains('/', StringComparison.Ordinal))
                    {
                        if (!ReferenceTarget.TryParseLocal(reference, out var target, out var targetType) || !targetTypes.Contains(targetType))
                        {
                            var named = reference[..reference.IndexOf('/', StringComparison.Ordinal)];
                            // R4 lets an Observation's subject be a Device, say: a type this server does not hold is written as given
                            // and indexed nowhere (ADR 0003), which the client is told rather than that the value is malformed.
                            issues.Add(Fhir.Validation.FhirModel.R4.IsResourceTypeName(named) && !TypeCodes.TryGet(named, out _)
                                ? Issue.NotSupported($"'{parameter.Name}' names a {named}, a type this server does not hold: references to it are kept as written "
                                    + $"but not indexed, so they cannot be searched. Search by another parameter (a date, a code), or by a reference to {string.Join(" or ", targetTypes)}.")
                                : Issue.Invalid($"'{parameter.Name}' expects a reference to {string.Join(" or ", targetTypes)} (Type/id or id).", parameter.Name));
                            return null;
                        }
                        clause.Targets.Add(target);
                    }
                    else if (IdRules.IsValid(reference))
                    {
                        clause.Targets.AddRange(targetTypes.Select(t => t + "/" + reference));
                    }
                    else
                    {
                        issues.Add(Issue.Invalid($"'{parameter.Name}' expects a reference (Type/id or id).", parameter.Name));
                        return null;
                    }
                }
                return clause;
            }
            default:
            {
                if (modifier is not null)
                {
                    Unfiltered(issues, $"Modifier ':{modifier}' is not supported on date parameter '{parameter.Name}'.");
                    return null;
                }
                var ranges = ParseDates(value, parameter.Name, issues);
                if (ranges is null) return null;
                if (!stored.BlindDate) return new Clause(ClauseKind.Date, false, 5) { Params = [stored.Code], Ranges = Approximated(ranges, Today) };
                return BlindDateClause(stored, values, ranges, keys, issues, Today);
            }
        }
    }

    /// <summary>Birth dates are blind-indexed by year, month and day, as precise as they were given: "1980" has a year hash only,
    /// "1980-06" a year and a month hash. A range becomes the set of year/month/day hashes that tile it; where a prefix matches
    /// the dates that intersect the range (gt, ge, lt, le, ap: FHIR R4 search, "prefix"), also the year-only and month-only dates of
    /// the year and month it covers only partly, each found by its hash with none of the finer hashes under it. ap is the range
    /// widened on each side by a tenth of the time between the date and today (the spec's suggestion), at least a day. ne is the
    /// negated hash of the searched precision, among the patients that have a birth date (its presence hash, whatever the year).</summary>
    private static Clause? BlindDateClause(SearchParameter parameter, List<string> values, List<(string Prefix, long Low, long High)> ranges, TenantKeys keys, List<Issue> issues,
        DateOnly today)
    {
        var negated = ranges.Any(r => r.Prefix == "ne");
        if (negated && ranges.Any(r => r.Prefix != "ne"))
        {
            issues.Add(Issue.NotSupported($"'{parameter.Name}' cannot mix ne with other prefixes in one parameter."));
            return null;
        }
        if (negated && ranges.Count > 1)
        {
            // Values of one parameter are alternatives (OR): ne1980,ne1990 is every birth date, not those in neither year.
            issues.Add(Issue.NotSupported($"'{parameter.Name}' takes one ne value: several are alternatives, which every birth date meets. Repeat the parameter for 'neither' (birthdate=ne1980&birthdate=ne1990)."));
            return null;
        }
        if (values.Any(v => v.Contains('T', StringComparison.Ordinal)))
        {
            // Stored by year, month and day (a birth date has no time): a time was cut to its day, and gt/eq answered for the day.
            issues.Add(Issue.Invalid($"'{parameter.Name}' is a date: search it by year, month or day, without a time.", parameter.Name));
            return null;
        }
        var clause = new Clause(ClauseKind.Hash, negated, 0);
        var earliest = new DateOnly(1880, 1, 1);
        var latest = new DateOnly(today.Year, 12, 31);
        var partly = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < ranges.Count; i++)
        {
            var prefix = ranges[i].Prefix;
            var text = values[i].Length > 2 && Prefixes.Contains(values[i][..2]) ? values[i][2..] : values[i];
            // Days of the calendar, as the birth dates are kept (text hashed), not Paris's instants: 1980-06-15 is that day wherever.
            if (!FhirDateRange.TryParseDays(text, out var from, out var to)) throw new InvalidOperationException("A date without a time was read as one and not as days.");
            // Selectivity ranks drivers: the least selective alternative counts.
            int selectivity;
            switch (prefix)
            {
                case "eq" or "ne":
                    var precision = text.Length >= 10 ? 'D' : text.Length >= 7 ? 'M' : 'Y';
                    clause.Hashes.Add(keys.Index.Hash(parameter.Code, precision, text.AsSpan(0, precision == 'D' ? 10 : precision == 'M' ? 7 : 4)));
                    selectivity = precision == 'D' ? 1 : precision == 'M' ? 4 : 6;
                    break;
                // Tiled within [earliest, latest] only: a bound of 0001-01-01 or 9999-12-31 has no day beyond it.
                case "gt": if (to < latest) Intersecting(to.AddDays(1), latest); selectivity = 6; break;
                case "sa": if (to < latest) Tile(to.AddDays(1), latest); selectivity = 6; break;
                case "ge": Intersecting(from, latest); selectivity = 6; break;
                case "ap":
                    var margin = ApproximateMargin(from, today);
                    Intersecting(from.DayNumber - margin < earliest.DayNumber ? earliest : from.AddDays(-margin),
                        to.DayNumber + margin > latest.DayNumber ? latest : to.AddDays(margin));
                    selectivity = 6;
                    break;
                case "lt": if (from > earliest) Intersecting(earliest, from.AddDays(-1)); selectivity = 6; break;
                case "eb": if (from > earliest) Tile(earliest, from.AddDays(-1)); selectivity = 6; break;
                default: Intersecting(earliest, to); selectivity = 6; break; // le
            }
            clause = clause with { Selectivity = Math.Max(clause.Selectivity, selectivity) };
        }
        if (negated)
        {
            // NOT (the searched hash) alone also matched the patients with no birth date: held to those with one, by the presence
            // hash every birth date has (index format 3), whatever its year. The year hashes from 1880 keep finding the records
            // of a store not yet reindexed (format 2 had no presence hash; a birth date before 1880 was missed then).
            clause.Present.Add(keys.Index.Hash(parameter.Code, 'P', IndexEntries.BlindDatePresent));
            for (var year = earliest; year <= latest; year = year.AddYears(1)) clause.Present.Add(DateHash('Y', year));
        }
        return clause;

        // A date's year ('Y'), month ('M') or day ('D') hash, as IndexEntries.AddBlindDate stores it.
        long DateHash(char kind, DateOnly date) =>
            keys.Index.Hash(parameter.Code, kind, date.ToString(kind == 'Y' ? "yyyy" : kind == 'M' ? "yyyy-MM" : "yyyy-MM-dd", CultureInfo.InvariantCulture));

        // The dates that lie wholly within [start, end].
        void Tile(DateOnly start, DateOnly end)
        {
            if (end > latest) end = latest;
            var day = start < earliest ? earliest : start;
            while (day <= end)
            {
                if (day.Day == 1 && day.Month == 1 && day.AddYears(1).AddDays(-1) <= end)
                {
                    clause.Hashes.Add(DateHash('Y', day));
                    day = day.AddYears(1);
                }
                else if (day.Day == 1 && day.AddMonths(1).AddDays(-1) <= end)
                {
                    clause.Hashes.Add(DateHash('M', day));
                    day = day.AddMonths(1);
                }
                else
                {
                    clause.Hashes.Add(DateHash('D', day));
                    day = day.AddDays(1);
                }
            }
        }

        // The dates that intersect [start, end]: those within it, and the year-only and month-only dates of a year or month
        // it covers in part (at most its first and last; the others it covers whole, and their hashes are in the tiling).
        void Intersecting(DateOnly start, DateOnly end)
        {
            if (start < earliest) start = earliest;
            if (end > latest) end = latest;
            if (start > end) return;
            Tile(start, end);
            foreach (var day in (ReadOnlySpan<DateOnly>)[start, end])
            {
                var month = new DateOnly(day.Year, day.Month, 1);
                if ((month < start || month.AddMonths(1).AddDays(-1) > end) && partly.Add(month.ToString("yyyy-MM", CultureInfo.InvariantCulture)))
                {
                    var days = new List<long>(31);
                    for (var d = month; d.Month == month.Month; d = d.AddDays(1)) days.Add(DateHash('D', d));
                    clause.Alone.Add(new HashAlone(DateHash('M', month), days));
                }
                var year = new DateOnly(day.Year, 1, 1);
                if ((year < start || year.AddYears(1).AddDays(-1) > end) && partly.Add(year.ToString("yyyy", CultureInfo.InvariantCulture)))
                {
                    var months = new List<long>(12);
                    for (var m = year; m.Year == year.Year; m = m.AddMonths(1)) months.Add(DateHash('M', m));
                    clause.Alone.Add(new HashAlone(DateHash('Y', year), months));
                }
            }
        }
    }

    /// <summary>Days each side of a date (a birth date, a date of care, _lastUpdated) that <c>ap</c> adds: a tenth of the days between <paramref name="from"/> and
    /// <paramref name="today"/> (FHIR R4 search, "ap": 10 % of the gap between now and the date), at least one.</summary>
    internal static int ApproximateMargin(DateOnly from, DateOnly today) => Math.Max(1, Math.Abs(today.DayNumber - from.DayNumber) / 10);

    private const long DayMilliseconds = 86_400_000;

    /// <summary>The time every match's date of care under <paramref name="parameter"/> falls in, as the query's date clauses
    /// bound it together (a clause of alternatives bounds nothing, nor does <c>ne</c> or <c>ap</c>): null unless bounded on
    /// both sides. A match's date is a range that meets the bounds (<c>ge</c> takes a date ending at or after the value).</summary>
    public (long From, long To)? DateBounds(SearchParameter parameter)
    {
        var (from, to) = (FhirDateRange.Min, FhirDateRange.Max);
        foreach (var clause in Clauses)
        {
            if (clause is not { Kind: ClauseKind.Date, Negated: false, Ranges: [var (prefix, low, high)] } || clause.Params[0] != parameter.Code) continue;
            if (prefix is "ge" or "eq") from = Math.Max(from, low);
            if (prefix is "gt" or "sa") from = Math.Max(from, high);
            if (prefix is "le" or "eq") to = Math.Min(to, high);
            if (prefix is "lt" or "eb") to = Math.Min(to, low);
        }
        return from > FhirDateRange.Min && to < FhirDateRange.Max ? (from, to) : null;
    }

    /// <summary>Whether the query asks for records referring to <paramref name="target"/> (Type/id) and to no other, under
    /// <paramref name="parameter"/> (a stored one): every match refers to it.</summary>
    public bool RefersOnlyTo(SearchParameter parameter, string target) =>
        Clauses.Any(c => c.Kind == ClauseKind.Reference && c.Params[0] == parameter.Code && c.Targets is [var only] && only == target);

    /// <summary>The id of the one record of <paramref name="type"/> that the query asks every match to refer to under
    /// <paramref name="parameter"/> (a stored one), as <see cref="RefersOnlyTo"/> tells it; null when it names none, or several.</summary>
    public string? OnlyTarget(SearchParameter parameter, string type)
    {
        var named = Clauses.Where(c => c.Kind == ClauseKind.Reference && c.Params[0] == parameter.Code && c.Targets is [var only] && only.StartsWith(type + "/", StringComparison.Ordinal))
            .Select(c => c.Targets[0][(type.Length + 1)..]).Distinct(StringComparer.Ordinal).ToList();
        return named is [var id] ? id : null;
    }

    /// <summary>Set by the records service once the query is read: its matches are the appointments of one practitioner whose
    /// schedule is open to the person whatever the rule of care says of their patients (her own; for the front desk, a practitioner
    /// of her service: ADR 0006). The policy's SQL filter and the in-memory screening are then not applied to the matches.</summary>
    public bool OpenSchedule { get; set; }

    /// <summary>The one patient whose records the query asks for — its type's <c>patient</c> or <c>subject</c> naming one Patient
    /// and nothing else (every match is that patient's) — or null.</summary>
    public string? OnlyPatient()
    {
        foreach (var name in (string[])["patient", "subject"])
        {
            if (!SearchParameters.TryGet(Type, name, out var parameter)) continue;
            var stored = parameter.AliasOf is null ? parameter : SearchParameters.For(Type)[parameter.AliasOf];
            foreach (var clause in Clauses)
            {
                if (clause.Kind == ClauseKind.Reference && !clause.Negated && clause.Params[0] == stored.Code && clause.Targets is [var only]
                    && only.StartsWith(KnownResourceTypes.Patient + "/", StringComparison.Ordinal))
                {
                    return only[(KnownResourceTypes.Patient.Length + 1)..];
                }
            }
        }
        return null;
    }

    /// <summary>Dates of care and _lastUpdated (stored as they are, compared as ranges): an <c>ap</c> value becomes its range widened
    /// on each side by <see cref="ApproximateMargin"/> days, as a birth date's is; the SQL then takes what intersects it.</summary>
    private static List<(string Prefix, long Low, long High)> Approximated(List<(string Prefix, long Low, long High)> ranges, DateOnly today)
    {
        return ranges.Select(r =>
        {
            if (r.Prefix != "ap") return r;
            // Whole days of Paris's calendar (23 or 25 hours the days the clocks change): ap2026-12-07 a day either side is from
            // midnight on the 6th to midnight on the 9th in Paris, whatever the clocks did meanwhile.
            var from = ParisTime.DateOf(r.Low);
            var margin = ApproximateMargin(from, today) * DayMilliseconds;
            var low = ParisTime.UnixMillisecondsAt(ParisTime.WallClockOf(r.Low) - margin, out _);
            var high = ParisTime.UnixMillisecondsAt(ParisTime.WallClockOf(r.High + 1) + margin, out _) - 1;
            return (r.Prefix, Math.Max(FhirDateRange.Min, low), Math.Min(FhirDateRange.Max, high));
        }).ToList();
    }

    private static List<(string Prefix, long Low, long High)>? ParseDates(string value, string name, List<Issue> issues)
    {
        var ranges = new List<(string, long, long)>();
        foreach (var raw in SplitValues(value))
        {
            var prefix = raw.Length > 2 && Prefixes.Contains(raw[..2]) ? raw[..2] : "eq";
            var text = raw.Length > 2 && Prefixes.Contains(raw[..2]) ? raw[2..] : raw;
            if (!FhirDateRange.TryParse(text, out var low, out var high, out _))
            {
                issues.Add(Issue.Invalid($"'{name}' expects a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime; Paris time without a zone), optionally prefixed by eq, ne, gt, lt, ge, le, sa, eb or ap.", name));
                return null;
            }
            ranges.Add((prefix, low, high));
        }
        return ranges;
    }

    private void ParseSort(string value, List<Issue> issues)
    {
        var keys = value.Split(',', StringSplitOptions.RemoveEmptyEntries);
        if (keys.Length != 1)
        {
            Unsupported(issues, "_sort takes one key (e.g. _sort=-_lastUpdated).");
            return;
        }
        var key = keys[0];
        SortDescending = key.StartsWith('-');
        if (SortDescending) key = key[1..];
        if (key.StartsWith('-'))
        {
            // "--date" was read as "-date": one '-' is the spec's prefix for descending order, more is a mistake to say.
            SortDescending = false;
            issues.Add(Issue.Invalid($"_sort={value}: one '-' before the key sorts in descending order (e.g. _sort=-date).", "_sort"));
            return;
        }
        if (key is "_lastUpdated" or "_id")
        {
            SortKey = key;
            return;
        }
        if (SearchParameters.TryGet(Type, key, out var parameter) && parameter.Kind == SearchParamKind.Date && !parameter.BlindDate && parameter.IsStored)
        {
            SortKey = key;
            SortParameter = parameter;
            return;
        }
        SortDescending = false;
        Unsupported(issues, $"_sort={key} is not supported for {Type}: sort by _lastUpdated, _id or a date of care (identifying values are encrypted and cannot be ordered by the database).");
    }

    private void ParseInclude(bool reverse, string? modifier, string value, List<Issue> issues)
    {
        if (modifier is not null)
        {
            Unsupported(issues, $"_{(reverse ? "rev" : "")}include:{modifier} is not supported.");
            return;
        }
        var name = $"_{(reverse ? "rev" : "")}include";
        if (value.Contains(',', StringComparison.Ordinal))
        {
            issues.Add(Issue.Invalid($"{name} takes one Type:parameter a value: repeat {name} for each (e.g. {name}=PractitionerRole:practitioner&{name}=PractitionerRole:organization)."));
            return;
        }
        var parts = value.Split(':');
        if (value == "*" || (parts.Length == 2 && parts[1] == "*"))
        {
            Unsupported(issues, $"{name}={value} (every reference) is not supported: name the parameter (Type:parameter).");
            return;
        }
        if (parts.Length is < 2 or > 3 || !TypeCodes.TryGet(parts[0], out _))
        {
            issues.Add(Issue.Invalid($"_{(reverse ? "rev" : "")}include expects Type:parameter[:targetType], e.g. Observation:patient."));
            return;
        }
        if (!reverse && parts[0] != Type)
        {
            issues.Add(Issue.Invalid($"_include must start with the searched type ({Type})."));
            return;
        }
        if (!SearchParameters.TryGet(parts[0], parts[1], out var parameter) || parameter.Kind != SearchParamKind.Reference)
        {
            issues.Add(Issue.Invalid($"{parts[0]}:{parts[1]} is not a reference search parameter."));
            return;
        }
        var target = parts.Length == 3 ? parts[2] : null;
        if (target is not null && !TypeCodes.TryGet(target, out _))
        {
            issues.Add(Issue.Invalid($"{target} is not a supported resource type."));
            return;
        }
        if (reverse && target is not null && target != Type)
        {
            issues.Add(Issue.Invalid($"_revinclude target type must be {Type}."));
            return;
        }
        // An include that can never match was answered with nothing, silently, as if no record were linked: the
        // CapabilityStatement offers only those that can (searchInclude, searchRevInclude), and these are refused as such.
        var pointsAt = reverse ? Type : target;
        if (pointsAt is not null && !parameter.MayReferTo(pointsAt))
        {
            issues.Add(Issue.Invalid($"{parts[0]}:{parts[1]} refers to {string.Join(" or ", parameter.Targets!)}, never to {pointsAt}: {name}={value} can include nothing."));
            return;
        }
        Includes.Add(new IncludeSpec(parts[0], parameter, target, reverse));
    }

    /// <summary>A parameter or modifier Vauban does not support: refused, or under lenient handling left out of the search and
    /// of its self link (the current parameter is the last one added to <see cref="Canonical"/>).</summary>
    private void Unsupported(List<Issue> issues, string diagnostics)
    {
        if (Lenient)
        {
            Canonical.RemoveAt(Canonical.Count - 1);
            Ignored.Add(diagnostics + " Ignored (Prefer: handling=lenient).");
        }
        else issues.Add(Issue.NotSupported(diagnostics));
    }

    /// <summary>What lenient handling left out of the search, told to the client in the Bundle's OperationOutcome entry: the
    /// self link is opaque, so it cannot show which parameters were used (R4: the server SHALL say so).</summary>
    public List<string> Ignored { get; } = [];

    /// <summary>A modifier this server does not apply to a parameter it does filter on, or a chained parameter: refused even
    /// under lenient handling, which would drop the filter and return more than was asked (every result of the patient, for
    /// a code:text that meant one) to a client that believes it filtered.</summary>
    private static void Unfiltered(List<Issue> issues, string diagnostics) => issues.Add(Issue.NotSupported(diagnostics));

    /// <summary>Stands for an escaped "\|" in a token's values until its system|code split (a private-use character).</summary>
    private const char EscapedBar = '\uE000';

    /// <summary>Comma separates alternatives; "\," is a literal comma, "\|" a literal bar written as <paramref name="bar"/>.</summary>
    private static List<string> SplitValues(string value, char bar = '|')
    {
        var values = new List<string>();
        var current = new System.Text.StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length && value[i + 1] is ',' or '|' or '$' or '\\')
            {
                current.Append(value[++i] == '|' ? bar : value[i]);
            }
            else if (value[i] == ',')
            {
                values.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(value[i]);
            }
        }
        values.Add(current.ToString());
        return values;
    }
}
