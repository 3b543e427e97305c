// A staff member's service, as a patient's access history shows it: the Organization's name, read when the history is
// shown, through the door (each read is audited like any other), so that a renamed service shows its current name.
using System.Text.Json;
using Vauban.Access;
using Vauban.Records;

namespace Vauban.Web;

internal static class ServiceLabels
{
    /// <summary>Each service id among <paramref name="services"/> as "name (Organization/id)", or "Organization/id" when the
    /// Organization is gone, unnamed or not readable by <paramref name="context"/>. Control characters are flattened: one line.</summary>
    public static async Task<Dictionary<string, string>> ReadAsync(VaubanStore store, AccessContext context, IEnumerable<string?> services,
        CancellationToken cancellationToken)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var service in services)
        {
            if (service is null || labels.ContainsKey(service)) continue;
            var label = "Organization/" + service;
            if (IdRules.IsValid(service))
            {
                var organization = await store.Records.ReadAsync(context, "Organization", service, cancellationToken);
                if (organization is { Status: RecordStatus.Ok, Json: { } json })
                {
                    using var document = JsonDocument.Parse(json);
                    if (document.RootElement.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String && name.GetString() is { Length: > 0 } text)
                        label = $"{OneLine(text)} ({label})";
                }
            }
            labels[service] = label;
        }
        return labels;
    }

    /// <summary>A name printed on one line of a report: control characters (a newline typed into a name) become spaces.</summary>
    internal static string OneLine(string value) => string.Concat(value.Select(c => char.IsControl(c) ? ' ' : c));
}
