// The structural model of the FHIR R4 types Vauban stores: for each type (and backbone element, named
// by its path) the JSON names of its elements with their type, cardinality and choice group. Generated
// from the R4 StructureDefinitions by tools/fhir-model/generate.py into an embedded resource.
using System.Collections.Frozen;
using System.Text.Json;

namespace Vauban.Fhir.Validation;

internal sealed record ElementModel(string Type, bool Many, bool Required, string? ChoiceGroup);

internal sealed class TypeModel(string name, bool isResource, FrozenDictionary<string, ElementModel> elements)
{
    public string Name { get; } = name;
    public bool IsResource { get; } = isResource;
    public FrozenDictionary<string, ElementModel> Elements { get; } = elements;

    /// <summary>Required elements: plain names, and choice groups ("medication") of which one form must be present.</summary>
    public IReadOnlyList<(string Name, bool IsChoice)> RequiredElements { get; } =
        elements.Where(e => e.Value.Required).Select(e => (e.Value.ChoiceGroup ?? e.Key, e.Value.ChoiceGroup is not null)).Distinct().ToList();
}

internal static class FhirModel
{
    private static readonly Lazy<FrozenDictionary<string, TypeModel>> Model = new(Load);

    public static bool TryGet(string type, out TypeModel model) => Model.Value.TryGetValue(type, out model!);

    private static FrozenDictionary<string, TypeModel> Load()
    {
        using var stream = typeof(FhirModel).Assembly.GetManifestResourceStream("Vauban.Fhir.Validation.fhir-r4-model.json")
            ?? throw new InvalidOperationException("The FHIR model resource is missing from the build.");
        using var document = JsonDocument.Parse(stream);
        var types = new Dictionary<string, TypeModel>(StringComparer.Ordinal);
        foreach (var type in document.RootElement.EnumerateObject())
        {
            var elements = new Dictionary<string, ElementModel>(StringComparer.Ordinal);
            foreach (var element in type.Value.GetProperty("elements").EnumerateObject())
            {
                var e = element.Value;
                elements[element.Name] = new ElementModel(e[0].GetString()!, e[1].GetInt32() < 0, e[2].GetInt32() > 0,
                    e[3].ValueKind == JsonValueKind.String ? e[3].GetString() : null);
            }
            types[type.Name] = new TypeModel(type.Name, type.Value.GetProperty("kind").GetString() == "resource", elements.ToFrozenDictionary(StringComparer.Ordinal));
        }
        return types.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
