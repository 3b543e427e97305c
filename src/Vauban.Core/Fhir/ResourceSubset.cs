// What _summary (true, text, data) and _elements ask of the records a read, a version read or a search returns (R4 search.html,
// "Summary" and "Elements"): part of each record, marked SUBSETTED in its meta.tag so that nobody takes it for the whole record
// (and writes it back as such). The parts are R4's own: the elements its base definitions mark isSummary, a type's mandatory
// elements (fhir-r4-model.json, generated from the StructureDefinitions).
using System.Collections.Frozen;
using System.Text.Json;
using Vauban.Fhir.Validation;
using Vauban.Records;

namespace Vauban.Fhir;

public sealed class ResourceSubset
{
    /// <summary>The tag R4 has a server put on a record it returns in part (search.html: "servers SHOULD mark the resources with the
    /// tag SUBSETTED").</summary>
    public const string SubsettedSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

    public const string SubsettedCode = "SUBSETTED";

    private enum Part
    {
        /// <summary>_summary=true: the elements marked isSummary, and in a backbone element kept, its own summary elements.</summary>
        Summary,
        /// <summary>_summary=text: the narrative, id, meta, the mandatory and the modifier elements.</summary>
        Text,
        /// <summary>_summary=data: everything but the narrative.</summary>
        Data,
        /// <summary>_elements: the elements named, with id, meta, the mandatory and the modifier elements.</summary>
        Elements,
    }

    private readonly Part _part;
    private readonly FrozenSet<string> _elements;

    private ResourceSubset(Part part, FrozenSet<string>? elements = null)
    {
        _part = part;
        _elements = elements ?? FrozenSet<string>.Empty;
    }

    /// <summary>Whether the records a search includes (_include, _revinclude) are cut too: <c>_summary</c> names a part every type
    /// has; <c>_elements</c> names elements of the type searched, and an included record of another type is returned whole.</summary>
    public bool AppliesToIncluded => _part != Part.Elements;

    /// <summary>The subset <paramref name="summary"/> (true, text, data; false and absent: the whole record) and <paramref name="elements"/>
    /// (comma-separated top-level element names of <paramref name="type"/>) ask for, or null for the whole record. What cannot be
    /// honoured is added to <paramref name="issues"/> (and null returned). <c>_summary=count</c> is a search's, decided by the caller.
    /// An unknown <paramref name="type"/> is left to the interaction to refuse: nothing is checked against it.</summary>
    public static ResourceSubset? Parse(string type, string? summary, string? elements, List<Issue> issues)
    {
        ArgumentNullException.ThrowIfNull(issues);
        var before = issues.Count;
        Part? part = summary switch
        {
            null or "false" => null,
            "true" => Part.Summary,
            "text" => Part.Text,
            "data" => Part.Data,
            _ => Invalid(Issue.Invalid($"_summary must be true, text, data or false{(summary == "count" ? " here: count is a search's (the number of matches, no record)" : $", not '{RecordsService.Shorten(summary)}'")}.", "_summary")),
        };
        if (issues.Count > before) return null;
        if (elements is null) return part is { } p ? new ResourceSubset(p) : null;
        if (part is not null)
        {
            issues.Add(Issue.Invalid("_summary and _elements cannot be combined: give _summary=true, text or data for R4's parts of a record, or _elements for the elements you name.", "_elements"));
            return null;
        }
        if (FhirModel.R4.FindResourceType(type) is not { } model) return null;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in elements.Split(','))
        {
            var name = raw.Trim();
            var matched = name.Length == 0 ? [] : model.Elements.Where(e => e.JsonName == name || e.ChoiceGroup == name || e.ChoiceGroup == name + "[x]").ToList();
            if (matched.Count == 0 && name != "resourceType")
            {
                var known = string.Join(", ", model.Elements.Select(e => e.ChoiceGroup ?? e.JsonName).Distinct(StringComparer.Ordinal));
                issues.Add(Issue.Invalid(name.Length == 0
                    ? "_elements is a comma-separated list of element names, without empty ones."
                    : $"_elements: {type} has no element '{RecordsService.Shorten(name)}'. Its elements: {known}.", "_elements"));
                // The first is said: one issue a name, each listing the type's elements, made a URL of 4,000 names a 2 MB answer
                // (helper-117).
                break;
            }
            foreach (var element in matched) names.Add(element.JsonName);
        }
        return issues.Count > before ? null : new ResourceSubset(Part.Elements, names.ToFrozenSet(StringComparer.Ordinal));

        Part? Invalid(Issue issue)
        {
            issues.Add(issue);
            return null;
        }
    }

    /// <summary>The subset a read's or vread's query asks for (<see cref="Parse"/> of its _summary and _elements, each given once),
    /// alone or in a bundle's entry.</summary>
    public static ResourceSubset? OfRead(string type, IEnumerable<KeyValuePair<string, string>> query, List<Issue> issues)
    {
        ArgumentNullException.ThrowIfNull(issues);
        var given = query.Where(p => p.Key is "_summary" or "_elements").ToList();
        if (given.GroupBy(p => p.Key).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            issues.Add(Issue.Invalid($"{twice.Key} is given twice; give it once."));
            return null;
        }
        return Parse(type, given.FirstOrDefault(p => p.Key == "_summary").Value, given.FirstOrDefault(p => p.Key == "_elements").Value, issues);
    }

    /// <summary><paramref name="json"/>, a whole <paramref name="type"/> record as stored, cut to this subset and tagged SUBSETTED.</summary>
    public byte[] Apply(string type, byte[] json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var model = FhirModel.R4.FindResourceType(type) ?? throw new ArgumentException($"{type} is not a stored resource type.", nameof(type));
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = FhirJsonInput.MaxDepth });
        return FhirJson.Write(writer =>
        {
            writer.WriteStartObject();
            var tagged = false;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.NameEquals("resourceType"))
                {
                    property.WriteTo(writer);
                    continue;
                }
                if (property.NameEquals("meta"))
                {
                    WriteTaggedMeta(writer, property.Value);
                    tagged = true;
                    continue;
                }
                var name = property.Name.StartsWith('_') ? property.Name[1..] : property.Name; // a primitive's id and extensions go with it
                var element = model.FindElement(name);
                var kept = _part switch
                {
                    Part.Summary => element is { IsSummary: true },
                    // A modifier (a status, active, modifierExtension) comes with any part: without it, an entered-in-error or
                    // inactive record would read as a valid one.
                    Part.Text => name is "id" or "text" || element is { IsRequired: true } or { IsModifier: true },
                    Part.Data => name != "text",
                    _ => name == "id" || _elements.Contains(name) || element is { IsRequired: true } or { IsModifier: true },
                };
                if (!kept) continue;
                if (_part == Part.Summary && element?.ComplexType is { } backbone && backbone.Name.Contains('.', StringComparison.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    WriteSummaryOf(writer, property.Value, backbone);
                }
                else property.WriteTo(writer);
            }
            if (!tagged)
            {
                writer.WriteStartObject("meta");
                writer.WriteStartArray("tag");
                WriteSubsettedTag(writer);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        });
    }

    /// <summary>A read's record as <paramref name="subset"/> asks for it (all of it when null, or when the read found none).</summary>
    public static RecordResult Cut(RecordResult result, ResourceSubset? subset)
    {
        ArgumentNullException.ThrowIfNull(result);
        return subset is null || result.Json is null ? result : result with { Json = subset.Apply(result.Type, result.Json) };
    }

    /// <summary>A backbone element (or an array of them) with only its own summary elements, and theirs in turn.</summary>
    private static void WriteSummaryOf(Utf8JsonWriter writer, JsonElement value, FhirType backbone)
    {
        if (value.ValueKind == JsonValueKind.Array)
        {
            writer.WriteStartArray();
            foreach (var item in value.EnumerateArray()) WriteSummaryOf(writer, item, backbone);
            writer.WriteEndArray();
            return;
        }
        if (value.ValueKind != JsonValueKind.Object)
        {
            value.WriteTo(writer);
            return;
        }
        writer.WriteStartObject();
        foreach (var property in value.EnumerateObject())
        {
            var element = backbone.FindElement(property.Name.StartsWith('_') ? property.Name.AsSpan(1) : property.Name);
            if (element is not { IsSummary: true }) continue;
            writer.WritePropertyName(property.Name);
            if (element.ComplexType is { } inner && inner.Name.Contains('.', StringComparison.Ordinal)) WriteSummaryOf(writer, property.Value, inner);
            else property.Value.WriteTo(writer);
        }
        writer.WriteEndObject();
    }

    private static void WriteTaggedMeta(Utf8JsonWriter writer, JsonElement meta)
    {
        writer.WriteStartObject("meta");
        var tagged = false;
        foreach (var property in meta.EnumerateObject())
        {
            if (!property.NameEquals("tag") || property.Value.ValueKind != JsonValueKind.Array)
            {
                property.WriteTo(writer);
                continue;
            }
            writer.WriteStartArray("tag");
            foreach (var tag in property.Value.EnumerateArray())
            {
                tag.WriteTo(writer);
                tagged |= IsSubsetted(tag);
            }
            if (!tagged) WriteSubsettedTag(writer);
            writer.WriteEndArray();
            tagged = true;
        }
        if (!tagged)
        {
            writer.WriteStartArray("tag");
            WriteSubsettedTag(writer);
            writer.WriteEndArray();
        }
        writer.WriteEndObject();
    }

    /// <summary>Whether a meta.tag item is the SUBSETTED tag.</summary>
    public static bool IsSubsetted(JsonElement tag) => tag.ValueKind == JsonValueKind.Object
        && tag.TryGetProperty("system", out var system) && system.ValueEquals(SubsettedSystem)
        && tag.TryGetProperty("code", out var code) && code.ValueEquals(SubsettedCode);

    private static void WriteSubsettedTag(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("system", SubsettedSystem);
        writer.WriteString("code", SubsettedCode);
        writer.WriteString("display", "Resource encoded in summary mode");
        writer.WriteEndObject();
    }
}
