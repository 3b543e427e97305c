// A staff member's service, as a patient's access history shows it: the Organization's name, read when the history is
// shown, through the door (each read is audited like any other), so that a renamed service shows its current name. The same
// for any directory record a page names (the home page's practitioner).
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
            labels[service] = await LabelAsync(store, context, "Organization", service, OrganizationName, cancellationToken);
        }
        return labels;
    }

    /// <summary>A directory record as "name (Type/id)", its name read through the door by <paramref name="name"/>; "Type/id" when
    /// the record is gone, unnamed or not readable by <paramref name="context"/>. One line.</summary>
    public static async Task<string> LabelAsync(VaubanStore store, AccessContext context, string type, string id, Func<JsonElement, string?> name,
        CancellationToken cancellationToken)
    {
        var reference = type + "/" + id;
        if (!IdRules.IsValid(id) || await store.Records.ReadAsync(context, type, id, cancellationToken) is not { Status: RecordStatus.Ok, Json: { } json }) return reference;
        using var document = JsonDocument.Parse(json);
        return name(document.RootElement) is { Length: > 0 } text ? $"{OneLine(text)} ({reference})" : reference;
    }

    private static string? OrganizationName(JsonElement organization) =>
        organization.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString() : null;

    /// <summary>A name printed on one line of a report: control characters (a newline typed into a name) become spaces.</summary>
    internal static string OneLine(string value) => string.Concat(value.Select(c => char.IsControl(c) ? ' ' : c));
}
