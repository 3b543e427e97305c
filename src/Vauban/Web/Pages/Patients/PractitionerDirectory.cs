// The booking form's choice of practitioner: the establishment's directory (Practitioner, with the PractitionerRoles that name
// them) searched through the records service, narrowed by a name as typed, and each practitioner told apart from a namesake by
// their specialties and RPPS number. Only the reading of the page's input and of the search's answer lives here: the search
// itself is the records service's (policy, guard, audit).
using System.Text.Json;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <param name="Label">"FAMILY Given · specialties · RPPS n", as the list shows it: namesakes told apart.</param>
public sealed record PractitionerChoice(string Id, string Name, string Label);

/// <param name="Cut">The directory holds more matches than the list: the page says to type a name.</param>
public sealed record PractitionerList(IReadOnlyList<PractitionerChoice> Choices, bool Cut)
{
    public static readonly PractitionerList None = new([], false);
}

public static class PractitionerDirectory
{
    /// <summary>Practitioners listed when no name narrows the list (a practice's or a service's whole directory).</summary>
    public const int ListSize = 200;

    /// <summary>Practitioners listed for a name typed: enough for the namesakes of a large hospital, few enough to read.</summary>
    public const int FoundSize = 50;

    public const int MaximumNameLength = 64;

    /// <summary>The name typed to narrow the list, trimmed (null: none), or the problem to show.</summary>
    public static (string? Name, string? Problem) ReadName(string? typed) => TypedText.Read(typed, "practitioner's name to look for", MaximumNameLength);

    /// <summary>The directory search: the practitioners whose family or given name starts with <paramref name="name"/> (FHIR's
    /// string search), or the first <see cref="ListSize"/>, or the one whose id is <paramref name="id"/>; with the PractitionerRoles
    /// naming them, for their specialties.</summary>
    public static List<KeyValuePair<string, string>> Query(string? name, string? id = null)
    {
        var query = new List<KeyValuePair<string, string>>
        {
            new("_count", (name is null ? ListSize : FoundSize).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("_revinclude", "PractitionerRole:practitioner"),
        };
        if (name is not null) query.Add(new("name", name));
        if (id is not null) query.Add(new("_id", id));
        return query;
    }

    /// <summary>The directory search of a service's members: the PractitionerRoles that name its Organization (the front desk's
    /// choice of agenda).</summary>
    public static List<KeyValuePair<string, string>> ServiceQuery(string service) =>
    [
        new("organization", KnownResourceTypes.Organization + "/" + service),
        new("_count", ListSize.ToString(System.Globalization.CultureInfo.InvariantCulture)),
    ];

    /// <summary>The practitioners that the active PractitionerRoles of a <see cref="ServiceQuery"/> page name, each once, in order.</summary>
    public static IReadOnlyList<string> Members(SearchPage page)
    {
        var members = new List<string>();
        foreach (var entry in page.Entries)
        {
            if (entry.Type != KnownResourceTypes.PractitionerRole || entry.Included || entry.Json is not { } json || entry.Deleted) continue;
            using var document = JsonDocument.Parse(json);
            var role = document.RootElement;
            if (IsActive(role) && role.TryGetProperty("practitioner", out var who) && PatientChart.Text(who, "reference") is { } reference
                && reference.StartsWith("Practitioner/", StringComparison.Ordinal) && !members.Contains(reference["Practitioner/".Length..]))
            {
                members.Add(reference["Practitioner/".Length..]);
            }
        }
        return members;
    }

    /// <summary>The directory search of these practitioners by id (at most <see cref="ListSize"/>), with the PractitionerRoles naming
    /// them, for <see cref="From"/>.</summary>
    public static List<KeyValuePair<string, string>> QueryOf(IReadOnlyList<string> ids) =>
    [
        new("_id", string.Join(',', ids.Take(ListSize))),
        new("_count", ListSize.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        new("_revinclude", "PractitionerRole:practitioner"),
    ];

    /// <summary>The active practitioners of a directory page, by name (then id), each labelled with the specialties of their
    /// active roles and their RPPS number. A practitioner marked inactive, or deleted, is not offered.</summary>
    public static PractitionerList From(SearchPage page)
    {
        var specialties = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var entry in page.Entries)
        {
            if (entry.Type != KnownResourceTypes.PractitionerRole || entry.Json is not { } json || entry.Deleted) continue;
            using var document = JsonDocument.Parse(json);
            var role = document.RootElement;
            if (!IsActive(role)) continue;
            if (!role.TryGetProperty("practitioner", out var who) || PatientChart.Text(who, "reference") is not { } reference
                || !reference.StartsWith("Practitioner/", StringComparison.Ordinal)) continue;
            var id = reference["Practitioner/".Length..];
            foreach (var specialty in PatientChart.Array(role, "specialty"))
            {
                if (ConceptText(specialty) is not { } said) continue;
                if (!specialties.TryGetValue(id, out var set)) specialties[id] = set = new SortedSet<string>(StringComparer.InvariantCulture);
                set.Add(said);
            }
        }
        var choices = new List<PractitionerChoice>();
        foreach (var entry in page.Entries)
        {
            if (entry.Type != KnownResourceTypes.Practitioner || entry.Included || entry.Json is not { } json || entry.Deleted) continue;
            var (active, name, number) = Described(json);
            if (!active) continue;
            var parts = new List<string> { name };
            if (specialties.TryGetValue(entry.Id, out var of)) parts.Add(string.Join(", ", of));
            if (number is not null) parts.Add(number);
            choices.Add(new PractitionerChoice(entry.Id, name, string.Join(" · ", parts)));
        }
        choices.Sort((a, b) => StringComparer.InvariantCultureIgnoreCase.Compare(a.Name, b.Name) is var byName and not 0 ? byName : string.CompareOrdinal(a.Id, b.Id));
        return new PractitionerList(choices, page.NextPage is not null);
    }

    /// <summary>A Practitioner: whether it is not marked inactive (FHIR: active absent means active), its name as the chart writes it
    /// ("FAMILY Given") and its national professional number as a person reads it ("RPPS 10001234567", "ADELI …"), if it has one.</summary>
    public static (bool Active, string Name, string? Number) Described(byte[] practitioner)
    {
        using var document = JsonDocument.Parse(practitioner);
        var root = document.RootElement;
        string? rpps = null, national = null;
        foreach (var identifier in PatientChart.Array(root, "identifier"))
        {
            if (PatientChart.Text(identifier, "value") is not { } value) continue;
            switch (PatientChart.Text(identifier, "system"))
            {
                case KnownIdentifierSystems.Rpps:
                    rpps ??= value;
                    break;
                case KnownIdentifierSystems.IdNatPs:
                    // IdNatPs: "8" + the RPPS number, or "0" + the ADELI number.
                    national ??= value switch
                    {
                        { Length: 12 } when value[0] == '8' => "RPPS " + value[1..],
                        { Length: > 1 } when value[0] == '0' => "ADELI " + value[1..],
                        _ => "IdNatPs " + value,
                    };
                    break;
            }
        }
        return (IsActive(root), PatientChart.HumanName(root) ?? "(no name)", rpps is not null ? "RPPS " + rpps : national);
    }

    /// <summary>A CodeableConcept as a person reads it: its text, else its first coding's display, else that code.</summary>
    private static string? ConceptText(JsonElement concept) =>
        PatientChart.Text(concept, "text")
        ?? PatientChart.Array(concept, "coding").Select(c => PatientChart.Text(c, "display") ?? PatientChart.Text(c, "code")).FirstOrDefault(t => t is not null);

    private static bool IsActive(JsonElement resource) => !(resource.TryGetProperty("active", out var active) && active.ValueKind == JsonValueKind.False);
}
