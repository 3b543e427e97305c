// Extracts, from one resource version, the values its search parameters index: blind hashes for
// strings, tokens and birth dates; references and care dates as they are.
using System.Text.Json;
using Vauban.Crypto;

namespace Vauban.Records.Search;

internal readonly record struct ReferenceEntry(int Param, string Target);

internal readonly record struct DateEntry(int Param, long Low, long High);

internal sealed class IndexEntries
{
    /// <summary>String prefixes of up to this many folded characters are indexed; longer search values match on their first 12.</summary>
    public const int MaxPrefix = 12;

    /// <summary>Index values one resource version may have. A patient has a few dozen (names and their prefixes, identifiers,
    /// contacts); a Patient of 45,000 given names, under the 1 MiB body limit, made 585,000 index rows and held the store's write
    /// lock for half a minute.</summary>
    public const int MaxEntries = 5_000;

    public List<long> Hashes { get; } = [];
    private List<JsonElement>? _values;
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

    private void AddReference(SearchParameter parameter, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("reference", out var reference)
            && reference.ValueKind == JsonValueKind.String && ReferenceTarget.TryParseLocal(reference.GetString()!, out var target, out var targetType)
            && (parameter.Targets is null || parameter.Targets.Contains(targetType)))
        {
            References.Add(new ReferenceEntry(parameter.Code, target));
        }
    }

    private void Collect(SearchParameter parameter, JsonElement resource, string path, BlindIndex index)
    {
        var values = _values ??= [];
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
    }

    public void AddString(int param, string raw, BlindIndex index)
    {
        var folded = TextNormalizer.Fold(raw);
        for (var length = 1; length <= Math.Min(folded.Length, MaxPrefix); length++)
        {
            Hashes.Add(index.Hash(param, 'p', folded.AsSpan(0, length)));
        }
        Hashes.Add(index.Hash(param, 'e', raw));
    }

    private void AddToken(SearchParameter parameter, string? system, string code, BlindIndex index)
    {
        var normalized = NormalizeToken(parameter.Normalization, code);
        if (normalized.Length == 0) return;
        Hashes.Add(index.Hash(parameter.Code, 'c', normalized));
        if (IsContactToken(parameter.Normalization)) return; // a phone or e-mail has no namespace to search by
        Hashes.Add(system is null
            ? index.Hash(parameter.Code, 'n', normalized)
            : index.Hash(parameter.Code, 's', system + "|" + normalized));
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
        if (References.Count > 1)
        {
            var distinct = References.Distinct().ToList();
            References.Clear();
            References.AddRange(distinct);
        }
        if (Dates.Count > 1)
        {
            var distinct = Dates.Distinct().ToList();
            Dates.Clear();
            Dates.AddRange(distinct);
        }
    }
}

/// <summary>The tiny path language of <see cref="SearchParameter.Paths"/>: "name.given", "participant.actor", "telecom[system=phone]".</summary>
internal static class ElementPath
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> Segments = new(StringComparer.Ordinal);

    public static void Select(JsonElement root, string path, List<JsonElement> results) =>
        Walk(root, Segments.GetOrAdd(path, static p => p.Split('.')), 0, results);

    private static void Walk(JsonElement element, string[] segments, int index, List<JsonElement> results)
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
        string? filterName = null, filterValue = null;
        var bracket = segment.IndexOf('[', StringComparison.Ordinal);
        if (bracket > 0)
        {
            var filter = segment[(bracket + 1)..^1].Split('=', 2);
            filterName = filter[0];
            filterValue = filter[1];
            segment = segment[..bracket];
        }
        if (!element.TryGetProperty(segment, out var child)) return;
        if (filterName is null)
        {
            Walk(child, segments, index + 1, results);
            return;
        }
        IEnumerable<JsonElement> candidates = child.ValueKind == JsonValueKind.Array ? child.EnumerateArray() : [child];
        foreach (var candidate in candidates)
        {
            if (candidate.ValueKind == JsonValueKind.Object && candidate.TryGetProperty(filterName, out var v)
                && v.ValueKind == JsonValueKind.String && v.GetString() == filterValue)
            {
                Walk(candidate, segments, index + 1, results);
            }
        }
    }
}
