// The FHIR R4 structure that ResourceValidator checks resources against: for each supported resource
// type, each complex datatype and each inline backbone element, its JSON properties with their type
// and cardinality. Loaded once from fhir-r4-model.json, which tools/fhir-model/generate.mjs produces
// from the HL7 StructureDefinitions.

using System.Collections.Frozen;
using System.Text.Json;

namespace Vauban.Fhir.Validation;

/// <summary>How a primitive value is checked; <see cref="None"/> marks a complex type or a resource.</summary>
internal enum PrimitiveKind
{
    None,
    Boolean,
    Integer,
    UnsignedInt,
    PositiveInt,
    Decimal,
    String,
    Markdown,
    Code,
    Id,
    Uri,
    Url,
    Canonical,
    Oid,
    Uuid,
    Base64Binary,
    Date,
    DateTime,
    Instant,
    Time,
    Xhtml,
}

/// <summary>One JSON property of a FHIR type: a choice element contributes one per allowed type.</summary>
internal sealed class FhirElement
{
    public required string JsonName { get; init; }

    /// <summary>The property that carries this primitive's id and extensions, "_" + <see cref="JsonName"/>.</summary>
    public required string ExtensionSiblingName { get; init; }

    public required string TypeName { get; init; }

    public required PrimitiveKind Primitive { get; init; }

    /// <summary>True for <c>contained</c>, whose items are whole resources.</summary>
    public required bool IsResource { get; init; }

    public required bool IsRequired { get; init; }

    /// <summary>True when max is "*": JSON carries an array even for one item.</summary>
    public required bool IsArray { get; init; }

    /// <summary>The <c>name[x]</c> this element is one choice of, or null.</summary>
    public required string? ChoiceGroup { get; init; }

    /// <summary>Index shared by the choices of one group, so that at most one of them is accepted.</summary>
    public required int GroupIndex { get; init; }

    /// <summary>Position among the choices of its group (0 for an element that is not a choice).</summary>
    public required int ChoiceOrdinal { get; init; }

    /// <summary>Set once every type is loaded, for complex types and backbone elements.</summary>
    public FhirType? ComplexType { get; internal set; }

    /// <summary>For a code with a required binding whose value set can be listed: the only codes allowed.</summary>
    public RequiredBinding? Binding { get; internal set; }

    /// <summary>For a Reference that may not point to any resource: the resource types it may point to.</summary>
    public FrozenSet<string>? ReferenceTargets { get; internal set; }

    /// <summary>For a code whose required binding is a code system outside FHIR (ISO 4217, BCP 13, BCP 47): its form.</summary>
    public ExternalCode External { get; internal set; }

    /// <summary>Marked isSummary in the base definition, for the elements of a stored resource type and its backbone elements:
    /// what <c>_summary=true</c> keeps (<see cref="Vauban.Fhir.ResourceSubset"/>).</summary>
    public bool IsSummary { get; internal set; }

    /// <summary>Marked isModifier in the base definition (a status, <c>active</c>, <c>modifierExtension</c>): it changes the meaning of
    /// the rest, so a record given in part keeps it whatever is named (<see cref="Vauban.Fhir.ResourceSubset"/>).</summary>
    public bool IsModifier { get; internal set; }
}

/// <summary>Code systems outside FHIR that R4 binds some code elements to (required): their values are checked by form.</summary>
internal enum ExternalCode
{
    None,
    /// <summary>Money.currency: ISO 4217, three capital letters.</summary>
    Currency,
    /// <summary>Attachment.contentType: a BCP 13 (RFC 6838) media type, type/subtype with optional parameters.</summary>
    MediaType,
    /// <summary>Resource.language, Attachment.language: a BCP 47 language tag.</summary>
    Language,
}

/// <summary>A required binding: the value set's canonical URL and its codes.</summary>
internal sealed class RequiredBinding(string valueSet, IReadOnlyList<string> codes)
{
    private readonly FrozenSet<string>.AlternateLookup<ReadOnlySpan<char>> codeSet =
        codes.ToFrozenSet(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();

    public string ValueSet { get; } = valueSet;

    /// <summary>The codes in the value set's order, for messages.</summary>
    public IReadOnlyList<string> Codes { get; } = codes;

    /// <summary>Whether the UTF-8 text of a code is one of the codes (without allocating: validation runs on every write).</summary>
    public bool Allows(ReadOnlySpan<byte> utf8)
    {
        Span<char> code = stackalloc char[64];
        return System.Text.Encoding.UTF8.TryGetChars(utf8, code, out var length) && codeSet.Contains(code[..length]);
    }
}

/// <summary>A resource, complex datatype or backbone element: its properties by JSON name.</summary>
internal sealed class FhirType
{
    private readonly FrozenDictionary<string, FhirElement> elementsByJsonName;
    private readonly FrozenDictionary<string, FhirElement>.AlternateLookup<ReadOnlySpan<char>> elementsBySpan;

    public FhirType(string name, IReadOnlyList<FhirElement> elements)
    {
        Name = name;
        Elements = elements;
        elementsByJsonName = elements.ToFrozenDictionary(element => element.JsonName, StringComparer.Ordinal);
        elementsBySpan = elementsByJsonName.GetAlternateLookup<ReadOnlySpan<char>>();
        GroupCount = elements.Count == 0 ? 0 : elements.Max(element => element.GroupIndex) + 1;
        RequiredGroups = elements
            .Where(element => element.IsRequired)
            .DistinctBy(element => element.GroupIndex)
            .ToArray();
    }

    /// <summary>The type name as in the spec: <c>HumanName</c>, or a path such as <c>Patient.contact</c>.</summary>
    public string Name { get; }

    public IReadOnlyList<FhirElement> Elements { get; }

    public int GroupCount { get; }

    /// <summary>One element per required group (for a choice, any of its choices).</summary>
    public FhirElement[] RequiredGroups { get; }

    public FhirElement? FindElement(ReadOnlySpan<char> jsonName) =>
        elementsBySpan.TryGetValue(jsonName, out var element) ? element : null;
}

internal sealed class FhirModel
{
    private const string ResourceName = "Vauban.Fhir.Validation.fhir-r4-model.json";

    private static readonly Lazy<FhirModel> R4Model = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    private static readonly FrozenDictionary<string, PrimitiveKind> PrimitiveKinds = new Dictionary<string, PrimitiveKind>
    {
        ["boolean"] = PrimitiveKind.Boolean,
        ["integer"] = PrimitiveKind.Integer,
        ["unsignedInt"] = PrimitiveKind.UnsignedInt,
        ["positiveInt"] = PrimitiveKind.PositiveInt,
        ["decimal"] = PrimitiveKind.Decimal,
        ["string"] = PrimitiveKind.String,
        ["markdown"] = PrimitiveKind.Markdown,
        ["code"] = PrimitiveKind.Code,
        ["id"] = PrimitiveKind.Id,
        ["uri"] = PrimitiveKind.Uri,
        ["url"] = PrimitiveKind.Url,
        ["canonical"] = PrimitiveKind.Canonical,
        ["oid"] = PrimitiveKind.Oid,
        ["uuid"] = PrimitiveKind.Uuid,
        ["base64Binary"] = PrimitiveKind.Base64Binary,
        ["date"] = PrimitiveKind.Date,
        ["dateTime"] = PrimitiveKind.DateTime,
        ["instant"] = PrimitiveKind.Instant,
        ["time"] = PrimitiveKind.Time,
        ["xhtml"] = PrimitiveKind.Xhtml,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private readonly FrozenDictionary<string, FhirType> resourceTypes;
    private readonly FrozenDictionary<string, FhirType>.AlternateLookup<ReadOnlySpan<char>> resourceTypesBySpan;

    private readonly FrozenSet<string>.AlternateLookup<ReadOnlySpan<char>> allResourceTypes;

    private readonly FrozenDictionary<string, FhirType>.AlternateLookup<ReadOnlySpan<char>> containedTypesBySpan;

    private FhirModel(FrozenDictionary<string, FhirType> resourceTypes, FhirType primitiveExtensions, FrozenSet<string> allResourceTypes, FhirType bundle,
        FrozenDictionary<string, FhirType> containedTypes)
    {
        this.resourceTypes = resourceTypes;
        containedTypesBySpan = containedTypes.GetAlternateLookup<ReadOnlySpan<char>>();
        ContainedOnlyTypeNames = containedTypes.Keys.Order(StringComparer.Ordinal).ToArray();
        Bundle = bundle;
        resourceTypesBySpan = resourceTypes.GetAlternateLookup<ReadOnlySpan<char>>();
        PrimitiveExtensions = primitiveExtensions;
        this.allResourceTypes = allResourceTypes.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Whether the name is one of FHIR R4's resource types, supported here or not.</summary>
    public bool IsResourceTypeName(ReadOnlySpan<char> name) => allResourceTypes.Contains(name);

    /// <summary>The model, read from the assembly on first use.</summary>
    public static FhirModel R4 => R4Model.Value;

    /// <summary>The shape of a primitive's <c>_name</c> sibling: an id and extensions, nothing else.</summary>
    public FhirType PrimitiveExtensions { get; }

    public IReadOnlyCollection<string> ResourceTypeNames => resourceTypes.Keys;

    /// <summary>The envelope of a batch, transaction or collection: read, never stored, so not among the resource types.</summary>
    public FhirType Bundle { get; }

    public FhirType? FindResourceType(ReadOnlySpan<char> resourceType) =>
        resourceTypesBySpan.TryGetValue(resourceType, out var type) ? type : null;

    /// <summary>The types accepted only inside another resource's <c>contained</c>, in order.</summary>
    public IReadOnlyList<string> ContainedOnlyTypeNames { get; }

    /// <summary>A type accepted only inside another resource's <c>contained</c> (Medication, Specimen).</summary>
    public FhirType? FindContainedOnlyType(ReadOnlySpan<char> resourceType) =>
        containedTypesBySpan.TryGetValue(resourceType, out var type) ? type : null;

    private static FhirModel Load()
    {
        using var stream = typeof(FhirModel).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"Embedded resource {ResourceName} is missing from Vauban.Core.");
        using var document = JsonDocument.Parse(stream);
        var root = document.RootElement;

        var types = new Dictionary<string, FhirType>(StringComparer.Ordinal);
        foreach (var typeProperty in root.GetProperty("types").EnumerateObject())
        {
            types.Add(typeProperty.Name, new FhirType(typeProperty.Name, ReadElements(typeProperty.Value)));
        }

        using var primitiveExtensionRows = JsonDocument.Parse("""[["id","string",0,"1"],["extension","Extension",0,"*"]]""");
        var primitiveExtensions = new FhirType("Element", ReadElements(primitiveExtensionRows.RootElement));
        types.Add(primitiveExtensions.Name, primitiveExtensions);

        foreach (var binding in root.GetProperty("requiredCodes").EnumerateObject())
        {
            // "Type.path.jsonName": the type is everything before the last dot.
            var split = binding.Name.LastIndexOf('.');
            var element = types.TryGetValue(binding.Name[..split], out var owner) ? owner.FindElement(binding.Name.AsSpan(split + 1)) : null;
            if (element is not { Primitive: PrimitiveKind.Code })
            {
                throw new InvalidOperationException($"FHIR model: required codes for {binding.Name}, which is not a code element.");
            }
            element.Binding = new RequiredBinding(binding.Value.GetProperty("valueSet").GetString()!,
                [.. binding.Value.GetProperty("codes").EnumerateArray().Select(code => code.GetString()!)]);
        }

        foreach (var targets in root.GetProperty("referenceTargets").EnumerateObject())
        {
            var split = targets.Name.LastIndexOf('.');
            var element = types.TryGetValue(targets.Name[..split], out var owner) ? owner.FindElement(targets.Name.AsSpan(split + 1)) : null;
            if (element is not { TypeName: "Reference" })
            {
                throw new InvalidOperationException($"FHIR model: reference targets for {targets.Name}, which is not a Reference element.");
            }
            element.ReferenceTargets = targets.Value.EnumerateArray().Select(type => type.GetString()!).ToFrozenSet(StringComparer.Ordinal);
        }

        foreach (var (table, mark) in new (string, Action<FhirElement>)[] { ("summary", e => e.IsSummary = true), ("modifiers", e => e.IsModifier = true) })
        {
            foreach (var marked in root.GetProperty(table).EnumerateObject())
            {
                if (!types.TryGetValue(marked.Name, out var owner))
                    throw new InvalidOperationException($"FHIR model: {table} for {marked.Name}, which is not a type.");
                foreach (var name in marked.Value.EnumerateArray())
                {
                    mark(owner.FindElement(name.GetString()) ?? throw new InvalidOperationException($"FHIR model: {table} element {marked.Name}.{name.GetString()} is not an element."));
                }
            }
        }

        // R4's required bindings to code systems outside FHIR, which the model cannot list: checked by form.
        foreach (var type in types.Values)
        {
            foreach (var element in type.Elements)
            {
                element.External = (type.Name, element.JsonName) switch
                {
                    ("Money", "currency") => ExternalCode.Currency,
                    ("Attachment", "contentType") => ExternalCode.MediaType,
                    ("Attachment", "language") => ExternalCode.Language,
                    (_, "language") when element.Primitive == PrimitiveKind.Code && !type.Name.Contains('.', StringComparison.Ordinal) => ExternalCode.Language,
                    _ => ExternalCode.None,
                };
            }
        }

        foreach (var element in types.Values.SelectMany(type => type.Elements))
        {
            if (element.Primitive != PrimitiveKind.None || element.IsResource)
            {
                continue;
            }

            element.ComplexType = types.TryGetValue(element.TypeName, out var complexType)
                ? complexType
                : throw new InvalidOperationException($"FHIR model: type {element.TypeName} is referenced but not defined.");
        }

        var resourceTypes = root.GetProperty("resourceTypes").EnumerateArray()
            .Select(name => name.GetString()!)
            .ToFrozenDictionary(name => name, name => types[name], StringComparer.Ordinal);

        var allResourceTypes = root.GetProperty("allResourceTypes").EnumerateArray().Select(name => name.GetString()!).ToFrozenSet(StringComparer.Ordinal);
        if (!root.GetProperty("envelopeTypes").EnumerateArray().Any(name => name.GetString() == "Bundle") || !types.TryGetValue("Bundle", out var bundle))
        {
            throw new InvalidOperationException("FHIR model: the Bundle envelope is missing (regenerate it with tools/fhir-model).");
        }

        var containedTypes = root.GetProperty("containedTypes").EnumerateArray()
            .Select(name => name.GetString()!)
            .ToFrozenDictionary(name => name, name => types[name], StringComparer.Ordinal);
        return new FhirModel(resourceTypes, primitiveExtensions, allResourceTypes, bundle, containedTypes);
    }

    private static List<FhirElement> ReadElements(JsonElement rows)
    {
        var elements = new List<FhirElement>();
        var groupIndexByChoice = new Dictionary<string, int>(StringComparer.Ordinal);
        var choiceCountByGroup = new Dictionary<int, int>();
        var nextGroupIndex = 0;
        foreach (var row in rows.EnumerateArray())
        {
            // Each row is [jsonName, type, min, max, choiceGroup?]; see the generator.
            var jsonName = row[0].GetString()!;
            var typeName = row[1].GetString()!;
            var choiceGroup = row.GetArrayLength() > 4 ? row[4].GetString() : null;

            int groupIndex;
            if (choiceGroup is null)
            {
                groupIndex = nextGroupIndex++;
            }
            else if (!groupIndexByChoice.TryGetValue(choiceGroup, out groupIndex))
            {
                groupIndex = nextGroupIndex++;
                groupIndexByChoice.Add(choiceGroup, groupIndex);
            }

            var choiceOrdinal = choiceGroup is null ? 0 : choiceCountByGroup.GetValueOrDefault(groupIndex);
            choiceCountByGroup[groupIndex] = choiceOrdinal + 1;

            elements.Add(new FhirElement
            {
                JsonName = jsonName,
                ExtensionSiblingName = "_" + jsonName,
                TypeName = typeName,
                Primitive = PrimitiveKinds.GetValueOrDefault(typeName, PrimitiveKind.None),
                IsResource = typeName == "Resource",
                IsRequired = row[2].GetInt32() >= 1,
                IsArray = row[3].GetString() == "*",
                ChoiceGroup = choiceGroup,
                GroupIndex = groupIndex,
                ChoiceOrdinal = choiceOrdinal,
            });
        }

        return elements;
    }
}
