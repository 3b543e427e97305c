// To whom each letter goes: the patient's name and postal address, which are patient data like any other, so they are read
// through the records service with the operator's access context — authorized, audited with the purpose "breach
// notification" — never from storage around it. A patient deleted since is said, and gets no letter.
using System.Text.Json;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Breach;

/// <summary>Whether a patient in scope can be written to: on record (with a name and address), deleted since, not readable.</summary>
public enum BreachAddresseeState { OnRecord, Deleted, Unreadable }

/// <summary>A letter's addressee: the name to write to and the postal address lines (empty when the record holds none).</summary>
public sealed record BreachAddressee(BreachAddresseeState State, string Name, IReadOnlyList<string> Address)
{
    public static BreachAddressee Deleted { get; } = new(BreachAddresseeState.Deleted, "", []);
    public static BreachAddressee Unreadable { get; } = new(BreachAddresseeState.Unreadable, "", []);
}

public static class BreachAddressees
{
    /// <summary>The purpose the reads of the letters' addressees record on the audit log.</summary>
    public const string Purpose = "breach notification";

    /// <summary>The addressee of each patient in <paramref name="patients"/>, read through the records service.</summary>
    /// <param name="investigator">The operator's context; its purpose is replaced by <see cref="Purpose"/>.</param>
    public static async Task<IReadOnlyDictionary<string, BreachAddressee>> ReadAsync(RecordsService records, AccessContext investigator,
        IEnumerable<string> patients, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(investigator);
        ArgumentNullException.ThrowIfNull(patients);
        var context = investigator with { Purpose = Purpose };
        var found = new Dictionary<string, BreachAddressee>(StringComparer.Ordinal);
        foreach (var patient in patients)
        {
            var result = await records.ReadAsync(context, KnownResourceTypes.Patient, patient, cancellationToken);
            found[patient] = result.Status switch
            {
                RecordStatus.Ok when result.Json is { } json => Parse(json),
                RecordStatus.Gone or RecordStatus.NotFound => BreachAddressee.Deleted,
                _ => BreachAddressee.Unreadable,
            };
        }
        return found;
    }

    /// <summary>The official (else the first) name and the home (else the first) address of a FHIR Patient.</summary>
    private static BreachAddressee Parse(byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var name = Preferred(root, "name", "official") is { } n ? NameOf(n) : "";
        var address = Preferred(root, "address", "home") is { } a ? AddressOf(a) : [];
        return new BreachAddressee(BreachAddresseeState.OnRecord, name, address);
    }

    private static JsonElement? Preferred(JsonElement root, string property, string use)
    {
        if (!root.TryGetProperty(property, out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0) return null;
        foreach (var item in list.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("use", out var u) && u.ValueKind == JsonValueKind.String && u.GetString() == use) return item;
        }
        return list[0].ValueKind == JsonValueKind.Object ? list[0] : null;
    }

    private static string NameOf(JsonElement name)
    {
        var parts = new List<string>();
        if (name.TryGetProperty("given", out var given) && given.ValueKind == JsonValueKind.Array)
        {
            parts.AddRange(given.EnumerateArray().Where(g => g.ValueKind == JsonValueKind.String).Select(g => g.GetString()!));
        }
        if (name.TryGetProperty("family", out var family) && family.ValueKind == JsonValueKind.String) parts.Add(family.GetString()!);
        if (parts.Count == 0 && name.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String) parts.Add(text.GetString()!);
        return string.Join(' ', parts.Where(p => p.Length > 0));
    }

    private static List<string> AddressOf(JsonElement address)
    {
        var lines = new List<string>();
        if (address.TryGetProperty("line", out var line) && line.ValueKind == JsonValueKind.Array)
        {
            lines.AddRange(line.EnumerateArray().Where(l => l.ValueKind == JsonValueKind.String).Select(l => l.GetString()!));
        }
        var city = string.Join(' ', new[] { Text(address, "postalCode"), Text(address, "city") }.Where(s => s.Length > 0));
        if (city.Length > 0) lines.Add(city);
        if (Text(address, "country") is { Length: > 0 } country) lines.Add(country);
        if (lines.Count == 0 && Text(address, "text") is { Length: > 0 } whole) lines.Add(whole);
        return lines;
    }

    private static string Text(JsonElement element, string property) =>
        element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";
}
