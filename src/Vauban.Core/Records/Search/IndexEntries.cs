// Extracts, from one resource version, the values its search parameters index: blind hashes for
// strings, tokens and birth dates; references and care dates as they are.
using System.Text.Json;
using Vauban.Crypto;

namespace Vauban.Records.Search;

internal readonly record struct ReferenceEntry(int Param, string Target);

internal readonly record struct DateEntry(int Param, long Low, long High);

internal sealed class IndexEntries
{
    /// <summary>The version of what <see cref="Extract"/> makes of a resource. Bump it with every change to the extraction (a
    /// parameter newly indexed, a path added, a normalization changed): a store remembers the version it was last fully indexed
    /// with (store_settings index_version), and <c>vauban serve</c> asks for <c>vauban reindex</c> while it is older.
    /// 1: every store before the version was kept. 2: Patient.link.other indexed (parameter 116, which also keeps a linked
    /// patient from deletion) and Observation's date covering effectiveTiming. 3: a blind-indexed date's presence hash
    /// (<see cref="BlindDatePresent"/>), which birthdate=ne needs to find a birth date of any year (before, only 1880 to this year).
    /// 4: identifiers without any of the spaces typed into them (no-break and thin ones too, not the space alone), and a NIR in
    /// its compact form with Corsica's 2A/2B upper-case (<see cref="TextNormalizer.Identifier"/>). 5: a date of care without a time
    /// (a day, a month, a year) covers Paris's day, month or year (<see cref="FhirDateRange"/>), no longer UTC's: "2026-12-07" from
    /// 2026-12-06T23:00Z to 2026-12-07T22:59:59.999Z. Birth dates, hashed as the text written, are as they were. 6: before
    /// 16 September 1945 Paris is UTC+1 on every machine (<see cref="ParisTime"/>), where format 5 took the machine's tzdata, if it
    /// had any (Paris's mean time until 1911, UTC and the war's offsets after): "1905-03-04" from 1905-03-03T23:00Z on every server.</summary>
    public const int FormatVersion = 6;

    /// <summary>The text of the hash every blind-indexed date (a birth date) has whatever its value ('P' kind): "has a birth date",
    /// which a search with ne is held to (a parameter matches only resources with a value for it).</summary>
    public const string BlindDatePresent = "present";

    /// <summary>String prefixes of up to this many folded characters are indexed; longer search values match on their first 12.</summary>
    public const int MaxPrefix = 12;

    /// <summary>Index values one resource version may have. A patient has a few dozen (names and their prefixes, identifiers,
    /// contacts); a Patient of 45,000 given names, under the 1 MiB body limit, made 585,000 index rows and held the store's write
    /// lock for half a minute.</summary>
    public const int MaxEntries = 5_000;

    // Sized for a resource's usual dozen: growing from four went through three arrays.
    public List<long> Hashes { get; } = new(16);
    // The elements one path selects, reused by the thread for every path of every resource it indexes.
    [ThreadStatic] private static List<JsonElement>? t_values;
    public List<ReferenceEntry> References { get; } = [];
    public List<DateEntry> Dates { get; } = [];

    public int Count => Hashes.Count + References.Count + Dates.Count;

    /// <summary>Why a version with this index is not stored (too many values), or null.</summary>
    public Fhir.Issue? TooMany(string type) => Count <= MaxEntries ? null : Fhir.Issue.Error("too-costly",
        $"This {type} has more searchable values ({Count.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)}: names and their prefixes, "
        + $"identifiers, references, dates) than the server indexes for one resource (at most {MaxEntries.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)}).");

    public static IndexEntries Extract(string type, JsonElement resource, BlindIndex index)
    {
        var entries = new IndexEntries();
        foreach (var parameter in SearchParameters.Stored(type))
        {
            foreach (var path in parameter.Paths)
            {
                entries.Collect(parameter, resource, path, index);
            }
        }
        entries.Deduplicate();
        return entries;
    }

    /// <summary>Only the references of a resource version (no keys needed): enough to know the patient it names.</summary>
    public static IndexEntries ExtractReferences(string type, JsonElement resource)
    {
        var entries = new IndexEntries();
        var values = new List<JsonElement>();
        foreach (var parameter in SearchParameters.Stored(type))
        {
            if (parameter.Kind != SearchParamKind.Reference) continue;
            foreach (var path in parameter.Paths)
            {
                values.Clear();
                ElementPath.Select(resource, path, values);
                foreach (var value in values) entries.AddReference(parameter, value);
            }
        }
        return entries;
    }

    /// <summary>Every local reference target anywhere in a resource (each <c>reference</c> string, as the index stores it), whatever
    /// the parameters: a superset of the targets any extraction, past or present, can have indexed for it.</summary>
    public static HashSet<string> AllLocalTargets(JsonElement resource)
    {
        var targets = new HashSet<string>(StringComparer.Ordinal);
        Walk(resource);
        return targets;

        void Walk(JsonElement element)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        if (property.NameEquals("reference") && property.Value.ValueKind == JsonValueKind.String
                            && ReferenceTarget.TryParseLocal(property.Value.GetString()!, out var target, out _))
                        {
                            targets.Add(target);
                        }
                        else Walk(property.Value);
                    }
                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray()) Walk(item);
                    break;
            }
        }
    }

    private void AddReference(SearchParameter parameter, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("reference", out var reference)
            && reference.ValueKind == JsonValueKind.String && ReferenceTarget.TryParseLocal(reference.GetString()!, out var target, out var targetType)
            && parameter.MayReferTo(targetType))
        {
            References.Add(new ReferenceEntry(parameter.Code, target));
        }
    }

    private void Collect(SearchParameter parameter, JsonElement resource, string path, BlindIndex index)
    {
        var values = t_values ??= [];
        values.Clear();
        ElementPath.Select(resource, path, values);
        foreach (var value in values)
        {
            switch (parameter.Kind)
            {
                case SearchParamKind.String when value.ValueKind == JsonValueKind.String:
                    AddString(parameter.Code, value.GetString()!, index);
                    break;
                case SearchParamKind.Token:
                    foreach (var (system, code) in Tokens(value))
                    {
                        AddToken(parameter, system, code, index);
                    }
                    break;
                case SearchParamKind.Reference:
                    AddReference(parameter, value);
                    break;
                case SearchParamKind.Date:
                    AddDate(parameter, value, index);
                    break;
            }
        }
        values.Clear(); // holds no element (nor its document) past this resource
    }

    public void AddString(int param, string raw, BlindIndex index)
    {
        // Only the first MaxPrefix folded characters are hashed: folded on the stack, no string.
        Span<char> folded = stackalloc char[MaxPrefix + TextNormalizer.MaxFoldedPerChar];
        var count = TextNormalizer.Fold(raw, folded, MaxPrefix);
        for (var length = 1; length <= count; length++)
        {
            Hashes.Add(index.Hash(param, 'p', folded[..length]));
        }
        Hashes.Add(index.Hash(param, 'e', raw));
    }

    /// <summary>The hash a token is found by whatever its system (a search of the code alone), as the index holds it.</summary>
    public static long CodeHash(BlindIndex index, SearchParameter parameter, string code) =>
        NormalizedCodeHash(index, parameter, NormalizeToken(parameter.Normalization, code));

    private static long NormalizedCodeHash(BlindIndex index, SearchParameter parameter, string normalized) => index.Hash(parameter.Code, 'c', normalized);

    private void AddToken(SearchParameter parameter, string? system, string code, BlindIndex index)
    {
        var normalized = NormalizeToken(parameter.Normalization, code);
        if (normalized.Length == 0) return;
        Hashes.Add(NormalizedCodeHash(index, parameter, normalized));
        if (IsContactToken(parameter.Normalization)) return; // a phone or e-mail has no namespace to search by
        if (system is null)
        {
            Hashes.Add(index.Hash(parameter.Code, 'n', normalized));
            return;
        }
        // "system|code", assembled on the stack when it is short (it always is for codes), hashed as the same characters.
        var length = system.Length + 1 + normalized.Length;
        var qualified = length <= 256 ? stackalloc char[length] : new char[length];
        system.CopyTo(qualified);
        qualified[system.Length] = '|';
        normalized.CopyTo(qualified[(system.Length + 1)..]);
        Hashes.Add(index.Hash(parameter.Code, 's', qualified));
    }

    public static bool IsContactToken(TokenNormalization normalization) => normalization is TokenNormalization.Phone or TokenNormalization.Email;

    public static string NormalizeToken(TokenNormalization normalization, string code) => normalization switch
    {
        TokenNormalization.Phone => TextNormalizer.Phone(code),
        TokenNormalization.Email => TextNormalizer.Email(code),
        TokenNormalization.Identifier => TextNormalizer.Identifier(code),
        _ => code,
    };

    private void AddDate(SearchParameter parameter, JsonElement value, BlindIndex index)
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            var text = value.GetString()!;
            if (!FhirDateRange.TryParse(text, out var low, out var high, out var precision)) return;
            if (parameter.BlindDate)
            {
                AddBlindDate(parameter.Code, text, precision, index);
                return;
            }
            Dates.Add(new DateEntry(parameter.Code, low, high));
        }
        else if (value.ValueKind == JsonValueKind.Object && !parameter.BlindDate && (value.TryGetProperty("event", out _) || value.TryGetProperty("repeat", out _)))
        {
            // A Timing: "the specified scheduling details are ignored and only the outer limits matter" (R4 search, date):
            // from its first event (or the start of its bounds) to its last (or their end).
            var low = long.MaxValue;
            var high = long.MinValue;
            void Cover(string? text, bool start, bool end)
            {
                if (text is null || !FhirDateRange.TryParse(text, out var l, out var h, out _)) return;
                if (start) low = Math.Min(low, l);
                if (end) high = Math.Max(high, h);
            }
            if (value.TryGetProperty("event", out var events) && events.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in events.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String) Cover(item.GetString(), true, true);
                }
            }
            if (value.TryGetProperty("repeat", out var repeat) && repeat.ValueKind == JsonValueKind.Object
                && repeat.TryGetProperty("boundsPeriod", out var bounds) && bounds.ValueKind == JsonValueKind.Object)
            {
                Cover(bounds.TryGetProperty("start", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null, true, false);
                Cover(bounds.TryGetProperty("end", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null, false, true);
                if (!bounds.TryGetProperty("end", out _) && low != long.MaxValue) high = FhirDateRange.Max;
                if (!bounds.TryGetProperty("start", out _) && high != long.MinValue) low = FhirDateRange.Min;
            }
            if (low == long.MaxValue && high != long.MinValue) low = FhirDateRange.Min;
            if (high == long.MinValue && low != long.MaxValue) high = FhirDateRange.Max;
            if (low != long.MaxValue) Dates.Add(new DateEntry(parameter.Code, low, high));
        }
        else if (value.ValueKind == JsonValueKind.Object && !parameter.BlindDate)
        {
            // A Period: open ends extend to the edges of time.
            var low = FhirDateRange.Min;
            var high = FhirDateRange.Max;
            var any = false;
            if (value.TryGetProperty("start", out var start) && start.ValueKind == JsonValueKind.String
                && FhirDateRange.TryParse(start.GetString()!, out var startLow, out _, out _))
            {
                low = startLow;
                any = true;
            }
            if (value.TryGetProperty("end", out var end) && end.ValueKind == JsonValueKind.String
                && FhirDateRange.TryParse(end.GetString()!, out _, out var endHigh, out _))
            {
                high = endHigh;
                any = true;
            }
            if (any) Dates.Add(new DateEntry(parameter.Code, low, high));
        }
    }

    private void AddBlindDate(int param, string text, DatePrecision precision, BlindIndex index)
    {
        Hashes.Add(index.Hash(param, 'P', BlindDatePresent));
        Hashes.Add(index.Hash(param, 'Y', text.AsSpan(0, 4)));
        if (precision >= DatePrecision.Month) Hashes.Add(index.Hash(param, 'M', text.AsSpan(0, 7)));
        if (precision >= DatePrecision.Day) Hashes.Add(index.Hash(param, 'D', text.AsSpan(0, 10)));
    }

    /// <summary>The (system, code) pairs of a token element: code, boolean, Coding, CodeableConcept, Identifier or ContactPoint.</summary>
    private static IEnumerable<(string? System, string Code)> Tokens(JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                yield return (null, value.GetString()!);
                break;
            case JsonValueKind.True:
                yield return (null, "true");
                break;
            case JsonValueKind.False:
                yield return (null, "false");
                break;
            case JsonValueKind.Object:
                if (value.TryGetProperty("coding", out var codings) && codings.ValueKind == JsonValueKind.Array)
                {
                    foreach (var coding in codings.EnumerateArray())
                    {
                        if (Pair(coding, "code") is { } pair) yield return pair;
                    }
                }
                else if (Pair(value, "code") is { } coding)
                {
                    yield return coding;
                }
                else if (Pair(value, "value") is { } identifier)
                {
                    // ContactPoint.system is "phone"/"email", not a namespace: only its value is searched.
                    yield return IsContactSystem(identifier.System) ? (null, identifier.Code) : identifier;
                }
                break;
        }
    }

    private static bool IsContactSystem(string? system) => system is "phone" or "email" or "fax" or "pager" or "url" or "sms" or "other";

    private static (string? System, string Code)? Pair(JsonElement element, string codeProperty)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(codeProperty, out var code) || code.ValueKind != JsonValueKind.String) return null;
        string? system = element.TryGetProperty("system", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        return (system, code.GetString()!);
    }

    private void Deduplicate()
    {
        if (Hashes.Count > 1)
        {
            Hashes.Sort();
            var write = 1;
            for (var read = 1; read < Hashes.Count; read++)
            {
                if (Hashes[read] != Hashes[write - 1]) Hashes[write++] = Hashes[read];
            }
            Hashes.RemoveRange(write, Hashes.Count - write);
        }
        DistinctInPlace(References);
        DistinctInPlace(Dates);
    }

    /// <summary>Keeps the first of equal entries, in their order (as Distinct did), without a set: a resource has a handful.</summary>
    private static void DistinctInPlace<T>(List<T> entries) where T : IEquatable<T>
    {
        if (entries.Count < 2) return;
        var write = 0;
        for (var read = 0; read < entries.Count; read++)
        {
            var entry = entries[read];
            var seen = false;
            for (var i = 0; i < write && !seen; i++) seen = entries[i].Equals(entry);
            if (!seen) entries[write++] = entry;
        }
        entries.RemoveRange(write, entries.Count - write);
    }
}

/// <summary>The tiny path language of <see cref="SearchParameter.Paths"/>: "name.given", "participant.actor", "telecom[system=phone]".</summary>
internal static class ElementPath
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Segment[]> Segments = new(StringComparer.Ordinal);

    /// <summary>One step of a path: an element name, and for "name[filter=value]" the filter, parsed once per path.</summary>
    private sealed record Segment(string Name, string? FilterName, string? FilterValue);

    public static void Select(JsonElement root, string path, List<JsonElement> results) =>
        Walk(root, Segments.GetOrAdd(path, static p => [.. p.Split('.').Select(Parse)]), 0, results);

    private static Segment Parse(string segment)
    {
        var bracket = segment.IndexOf('[', StringComparison.Ordinal);
        if (bracket <= 0) return new Segment(segment, null, null);
        var filter = segment[(bracket + 1)..^1].Split('=', 2);
        return new Segment(segment[..bracket], filter[0], filter[1]);
    }

    private static void Walk(JsonElement element, Segment[] segments, int index, List<JsonElement> results)
    {
        if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray()) Walk(item, segments, index, results);
            return;
        }
        if (index == segments.Length)
        {
            results.Add(element);
            return;
        }
        if (element.ValueKind != JsonValueKind.Object) return;
        var segment = segments[index];
        if (!element.TryGetProperty(segment.Name, out var child)) return;
        if (segment.FilterName is null)
        {
            Walk(child, segments, index + 1, results);
            return;
        }
        if (child.ValueKind == JsonValueKind.Array)
        {
            foreach (var candidate in child.EnumerateArray()) WalkIfMatches(candidate, segments, index, results);
        }
        else
        {
            WalkIfMatches(child, segments, index, results);
        }
    }

    private static void WalkIfMatches(JsonElement candidate, Segment[] segments, int index, List<JsonElement> results)
    {
        var segment = segments[index];
        if (candidate.ValueKind == JsonValueKind.Object && candidate.TryGetProperty(segment.FilterName!, out var v)
            && v.ValueKind == JsonValueKind.String && v.ValueEquals(segment.FilterValue))
        {
            Walk(candidate, segments, index + 1, results);
        }
    }
}
