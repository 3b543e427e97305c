// The parameters of Patient/$everything (FHIR R4 OperationDefinition Patient-everything): _type, _since and _count.
// start and end (the care period) are refused as not supported; any other parameter is refused, or ignored under
// Prefer: handling=lenient, as a search does.
using System.Globalization;
using Vauban.Fhir;
using Vauban.Records.Search;

namespace Vauban.Records;

internal sealed class EverythingRequest
{
    /// <summary>The resource types asked for; null for all.</summary>
    public HashSet<string>? Types { get; private set; }

    /// <summary>Only resources changed at or after this instant (Unix milliseconds); null for all.</summary>
    public long? Since { get; private set; }

    /// <summary>Resources a page; null for one page holding everything; 0 for the total alone (FHIR R4 search, _count).</summary>
    public int? Count { get; private set; }

    /// <summary>The parameters used, in the order given, for the self link and the next page's token.</summary>
    public List<KeyValuePair<string, string>> Used { get; } = [];

    public static EverythingRequest? Parse(IEnumerable<KeyValuePair<string, string>> parameters, bool lenient, out List<Issue> issues)
    {
        issues = [];
        var request = new EverythingRequest();
        foreach (var (name, value) in parameters)
        {
            switch (name)
            {
                case "_format" or "_pretty" or "_page":
                    continue;
                case "_type":
                    var types = value.Split(',').Select(t => t.Trim()).ToList();
                    var unknown = types.Where(t => !TypeCodes.TryGet(t, out _)).ToList();
                    if (unknown.Count > 0)
                    {
                        issues.Add(Issue.NotSupported($"_type names {(unknown.Count == 1 ? "a resource type" : "resource types")} this server does not hold "
                            + $"({string.Join(", ", unknown.Select(t => t.Length == 0 ? "(empty)" : RecordsService.Shorten(t)))}). Supported: {string.Join(", ", TypeCodes.Names)}."));
                        continue;
                    }
                    request.Types ??= new HashSet<string>(StringComparer.Ordinal);
                    request.Types.UnionWith(types);
                    break;
                case "_since":
                    if (!FhirDate.TryParseInstant(value, out var since))
                    {
                        issues.Add(Issue.Invalid($"_since must be {FhirDate.InstantExample}.", "_since"));
                        continue;
                    }
                    request.Since = Math.Max(request.Since ?? long.MinValue, since);
                    break;
                case "_count" when request.Count is not null:
                    issues.Add(Issue.Invalid("_count is given twice; give it once.", "_count"));
                    continue;
                case "_count":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
                    {
                        issues.Add(Issue.Invalid("_count must be a non-negative integer (0: the total alone).", "_count"));
                        continue;
                    }
                    request.Count = Math.Min(count, SearchQuery.MaxCount);
                    break;
                case "start" or "end":
                    issues.Add(Issue.NotSupported($"The $everything parameter '{name}' (care period) is not supported; _type, _since and _count are."));
                    continue;
                default:
                    if (lenient) continue;
                    issues.Add(Issue.Invalid($"Unknown parameter '{RecordsService.Shorten(name)}' for $everything (supported: _type, _since, _count)."));
                    continue;
            }
            request.Used.Add(new KeyValuePair<string, string>(name, value));
        }
        return issues.Count == 0 ? request : null;
    }
}
