// Structural validation of incoming FHIR R4 JSON: element names, JSON kinds, cardinality and primitive
// formats, against the model generated from the HL7 StructureDefinitions. Terminology bindings and
// FHIRPath invariants are out of scope.
//
// The walk reads the JsonElement tree in place: property names and string values are looked at as
// UTF-8 bytes and the current path is kept as a stack of model names, so a valid resource costs no
// allocation beyond the walker itself; strings are built only to describe an issue. Messages name
// elements and expected formats but never echo a submitted value, which may be patient data.

using System.Runtime.InteropServices;
using System.Collections.Frozen;
using System.Text;
using System.Text.Json;

using Vauban.Records;

namespace Vauban.Fhir.Validation;

/// <summary>One structural problem: where (a FHIRPath-like path such as <c>Patient.name[0].given[1]</c>) and what.</summary>
public sealed record ValidationIssue(string Location, string Message);

public static class ResourceValidator
{
    /// <summary>Validation stops after this many issues: enough to fix a request, bounded work for a hostile one.</summary>
    public const int MaxIssues = 20;

    /// <summary>Checks the structure of one FHIR R4 resource; an empty list means it is valid.</summary>
    public static IReadOnlyList<ValidationIssue> Validate(JsonElement resource)
    {
        var walk = new Walk(FhirModel.R4);
        walk.ValidateResource(resource, isContained: false);
        if (walk.Issues is null && walk.Invariants is { } invariants)
        {
            return invariants;
        }
        if (walk.Issues is null && walk.Modifier is { } modifier)
        {
            // R4 (extensibility, resource): a modifier extension or implicitRules the processor does not understand changes what the
            // element means ("not performed", "refuted"); it SHALL refuse the resource rather than index and relate it as if absent.
            // This server understands none. Told only of an otherwise valid resource, so that structural faults come first.
            return [new ValidationIssue(modifier, modifier.EndsWith(".implicitRules", StringComparison.Ordinal)
                ? "implicitRules is not supported: the resource would be read without the rules it says it must be read under."
                : "modifierExtension is not supported: this server understands no modifier extension, and one it does not understand changes what the element means.")];
        }
        return walk.Issues ?? (IReadOnlyList<ValidationIssue>)[];
    }

    /// <summary>Checks the envelope of a Bundle a client sends (a batch, a transaction, a collection to import) against R4, its
    /// entries aside (<see cref="ValidateBundleEntry"/>): its elements, their JSON kinds, cardinality and codes, and that only a
    /// searchset or history has a total (bdl-1).</summary>
    public static IReadOnlyList<ValidationIssue> ValidateBundle(JsonElement bundle)
    {
        var walk = new Walk(FhirModel.R4) { Envelope = true };
        walk.ValidateEnvelope(bundle);
        return walk.Issues ?? (IReadOnlyList<ValidationIssue>)[];
    }

    /// <summary>Checks one entry of a Bundle's envelope: its elements and those of its request, response and search, and the
    /// invariants that tie them to the bundle's <paramref name="bundleType"/> (bdl-2 to bdl-4). The entry's resource is not
    /// walked: it is validated as a resource of its own. A request's url is not checked as a uri either: it is read as the
    /// request it stands for, and answered as that request would be.</summary>
    public static IReadOnlyList<ValidationIssue> ValidateBundleEntry(JsonElement entry, int index, string bundleType)
    {
        var walk = new Walk(FhirModel.R4) { Envelope = true };
        walk.ValidateEntry(entry, index, bundleType);
        return walk.Issues ?? (IReadOnlyList<ValidationIssue>)[];
    }

    private sealed class Walk(FhirModel model)
    {
        /// <summary>Walking a Bundle's envelope: its Resource elements (an entry's resource, a response's outcome) are not walked.</summary>
        public bool Envelope { get; init; }

        private const string RootLocation = "Resource";
        private const int MaxNameLengthInMessage = 64;
        private const int MaxStackNameLength = 128;

        private PathSegment[] path = new PathSegment[16];

        /// <summary>The resource being validated (a contained one's container): where "#id" references look for their target.</summary>
        private JsonElement root;
        private int depth;

        public List<ValidationIssue>? Issues { get; private set; }

        /// <summary>Broken R4 invariants, told only of a resource whose structure is valid (structural faults come first).</summary>
        public List<ValidationIssue>? Invariants { get; private set; }

        private void ReportInvariant(string location, string message)
        {
            Invariants ??= [];
            if (Invariants.Count < MaxIssues) Invariants.Add(new ValidationIssue(location, message));
        }

        /// <summary>Where the first modifierExtension or implicitRules was met (not walked by a Bundle's envelope).</summary>
        public string? Modifier { get; private set; }

        private bool IsFull => Issues is { Count: >= MaxIssues };

        public void ValidateResource(JsonElement resource, bool isContained)
        {
            if (resource.ValueKind != JsonValueKind.Object)
            {
                Report(depth == 0 ? RootLocation : CurrentLocation(), "A resource must be a JSON object.");
                return;
            }

            if (!resource.TryGetProperty("resourceType"u8, out var resourceTypeProperty) || resourceTypeProperty.ValueKind != JsonValueKind.String)
            {
                Report(depth == 0 ? RootLocation : CurrentLocation(), "A resource must have a string 'resourceType'.");
                return;
            }

            var type = FindResourceType(resourceTypeProperty) ?? (isContained ? model.FindContainedOnlyType(resourceTypeProperty.GetString()) : null);
            if (type is null)
            {
                Report(
                    depth == 0 ? RootLocation + ".resourceType" : CurrentLocation() + ".resourceType",
                    $"Unsupported resourceType. Supported types: {string.Join(", ", KnownResourceTypes.Supported.Order(StringComparer.Ordinal))}"
                    + (isContained ? $"; contained, also {string.Join(" and ", model.ContainedOnlyTypeNames)}." : "."));
                return;
            }

            // The root segment names the resource; a contained resource continues its container's path.
            if (depth == 0)
            {
                Push(type.Name);
                root = resource;
            }

            ValidateObject(resource, type, isResource: true, isContained);
        }

        public void ValidateEnvelope(JsonElement bundle)
        {
            if (bundle.ValueKind != JsonValueKind.Object)
            {
                Report("Bundle", "A Bundle must be a JSON object.");
                return;
            }

            Push("Bundle");
            ValidateObject(bundle, model.Bundle, isResource: true);
            if (bundle.TryGetProperty("total"u8, out _) && bundle.TryGetProperty("type"u8, out var type) && type.ValueKind == JsonValueKind.String
                && type.GetString() is { } name && IsBundleType(name) && name is not ("searchset" or "history"))
            {
                Report("Bundle.total", $"A {name} Bundle has no total: only a searchset or a history has one (FHIR R4 invariant bdl-1).");
            }

            Pop();
        }

        public void ValidateEntry(JsonElement entry, int index, string bundleType)
        {
            Push("Bundle");
            Push("entry");
            SetIndex(index);
            if (entry.ValueKind != JsonValueKind.Object)
            {
                Report(CurrentLocation(), "An entry must be a JSON object.");
                return;
            }

            ValidateObject(entry, model.Bundle.FindElement("entry")!.ComplexType!);
            if (!IsBundleType(bundleType))
            {
                return;
            }

            if (entry.TryGetProperty("search"u8, out _) && bundleType != "searchset")
            {
                Report(CurrentLocation() + ".search", $"A {bundleType} Bundle's entries have no search: only a searchset's do (FHIR R4 invariant bdl-2).");
            }

            if (entry.TryGetProperty("request"u8, out _) && bundleType is not ("batch" or "transaction" or "history"))
            {
                Report(CurrentLocation() + ".request", $"A {bundleType} Bundle's entries have no request: only a batch's, a transaction's or a history's do (FHIR R4 invariant bdl-3).");
            }

            if (entry.TryGetProperty("response"u8, out _) && bundleType is not ("batch-response" or "transaction-response" or "history"))
            {
                Report(CurrentLocation() + ".response", $"A {bundleType} Bundle's entries have no response: only a batch-response's, a transaction-response's or a history's do (FHIR R4 invariant bdl-4).");
            }
        }

        private static bool IsBundleType(string name) =>
            name is "document" or "message" or "transaction" or "transaction-response" or "batch" or "batch-response" or "history" or "searchset" or "collection";

        private void ValidateObject(JsonElement json, FhirType type, bool isResource = false, bool isContained = false)
        {
            // Per element group, which choice (ordinal + 1) has been seen as a value and as a "_name" sibling.
            Span<byte> seenValues = stackalloc byte[type.GroupCount];
            Span<byte> seenExtensions = stackalloc byte[type.GroupCount];
            seenValues.Clear();
            seenExtensions.Clear();
            Span<char> nameBuffer = stackalloc char[MaxStackNameLength];
            var hasContent = false;

            foreach (var property in json.EnumerateObject())
            {
                if (IsFull)
                {
                    return;
                }

                var name = PropertyName(property, nameBuffer);
                if (isResource && name is "resourceType")
                {
                    continue;
                }

                hasContent = true;
                var element = type.FindElement(name);
                if (element is not null)
                {
                    if (!MarkSeen(element, seenValues, seenExtensions, property))
                    {
                        continue;
                    }

                    // A Bundle's entries are checked one by one (ValidateBundleEntry), a request's url as the request it stands for.
                    if (Envelope && ((type == model.Bundle && element.JsonName == "entry") || (element.JsonName == "url" && type.Name == "Bundle.entry.request")))
                    {
                        if (element.IsArray && property.Value.ValueKind != JsonValueKind.Array)
                        {
                            Report(CurrentLocation() + "." + element.JsonName, $"'{element.JsonName}' can repeat: its value must be a JSON array.");
                        }
                        else if (!element.IsArray && property.Value.ValueKind != JsonValueKind.String)
                        {
                            Report(CurrentLocation() + "." + element.JsonName, "Expected a JSON string (uri).");
                        }

                        continue;
                    }

                    if (Modifier is null && element.JsonName is "modifierExtension" or "implicitRules" && !Envelope)
                    {
                        Modifier = CurrentLocation() + "." + element.JsonName;
                    }

                    if (element.IsResource && isContained)
                    {
                        Report(CurrentLocation() + "." + element.JsonName, "A contained resource cannot itself contain resources.");
                        continue;
                    }

                    Push(element.JsonName);
                    ValidateValue(property.Value, element, json);
                    Pop();
                    continue;
                }

                var extendedPrimitive = name.Length > 1 && name[0] == '_' ? type.FindElement(name[1..]) : null;
                if (extendedPrimitive is { Primitive: not PrimitiveKind.None })
                {
                    if (MarkSeen(extendedPrimitive, seenExtensions, seenValues, property))
                    {
                        Push(extendedPrimitive.ExtensionSiblingName);
                        ValidatePrimitiveExtensions(property.Value, extendedPrimitive, json);
                        Pop();
                    }

                    continue;
                }

                Report(
                    CurrentLocation() + "." + Truncate(property.Name),
                    $"Unknown element '{Truncate(property.Name)}' in {type.Name}.");
            }

            if (!hasContent && !isResource)
            {
                Report(CurrentLocation(), "An element must not be an empty object.");
                return;
            }

            foreach (var required in type.RequiredGroups)
            {
                // A primitive given only through its "_name" extensions is present.
                if (seenValues[required.GroupIndex] == 0 && seenExtensions[required.GroupIndex] == 0)
                {
                    var requiredName = required.ChoiceGroup ?? required.JsonName;
                    Report(CurrentLocation() + "." + requiredName, $"Missing required element '{requiredName}' in {type.Name}.");
                }
            }

            if (type.Name is "Period" or KnownResourceTypes.Appointment)
            {
                ValidateStartBeforeEnd(json, type.Name);
            }

            if (!IsFull)
            {
                ValidateInvariants(json, type.Name, isResource, isContained);
            }
        }

        /// <summary>R4 invariants of the supported types that structure alone does not catch, where breaking them stores a record
        /// that means something else than it seems: an extension with a value and nested extensions (ext-1), a quantity's unit
        /// code without its system (qty-3), a result with both a value and a reason it has none (obs-6), a reference range with no
        /// bound or text (obs-3), a booked appointment without its time (app-2, app-3) or a participant who is no one (app-1), a
        /// contained resource no element refers to (dom-3) or carrying a version or security labels of its own (dom-4, dom-5).</summary>
        private void ValidateInvariants(JsonElement json, string typeName, bool isResource, bool isContained)
        {
            if (typeName is not ("Extension" or "Quantity" or "Age" or "Count" or "Distance" or "Duration" or KnownResourceTypes.Observation
                or "Observation.referenceRange" or "Appointment.participant" or KnownResourceTypes.Appointment) && !isResource)
            {
                return;
            }

            // value[x] given under any of its names ("valueQuantity"), read as UTF-8 without a string per property.
            static bool HasChoice(JsonElement json, ReadOnlySpan<byte> stem)
            {
                foreach (var property in json.EnumerateObject())
                {
                    var name = JsonMarshal.GetRawUtf8PropertyName(property);
                    if (name.Length > stem.Length && name.StartsWith(stem) && name[stem.Length] is >= (byte)'A' and <= (byte)'Z') return true;
                }

                return false;
            }

            switch (typeName)
            {
                case "Extension":
                    if (json.TryGetProperty("extension", out _) == HasChoice(json, "value"u8))
                        ReportInvariant(CurrentLocation(), "An extension has either a value[x] or nested extensions, not both and not neither (FHIR R4 invariant ext-1).");
                    break;
                case "Quantity" or "Age" or "Count" or "Distance" or "Duration":
                    if (json.TryGetProperty("code", out _) && !json.TryGetProperty("system", out _))
                        ReportInvariant(CurrentLocation() + ".system", "A quantity with a unit code must say the code's system (FHIR R4 invariant qty-3), e.g. http://unitsofmeasure.org.");
                    break;
                case KnownResourceTypes.Observation:
                    if (json.TryGetProperty("dataAbsentReason", out _) && HasChoice(json, "value"u8))
                        ReportInvariant(CurrentLocation() + ".dataAbsentReason", "A result with a value has no dataAbsentReason (FHIR R4 invariant obs-6).");
                    break;
                case "Observation.referenceRange":
                    if (!json.TryGetProperty("low", out _) && !json.TryGetProperty("high", out _) && !json.TryGetProperty("text", out _))
                        ReportInvariant(CurrentLocation(), "A reference range has a low or a high bound, or a text (FHIR R4 invariant obs-3).");
                    break;
                case "Appointment.participant":
                    if (!json.TryGetProperty("type", out _) && !json.TryGetProperty("actor", out _))
                        ReportInvariant(CurrentLocation(), "An appointment's participant has a type or an actor (FHIR R4 invariant app-1).");
                    break;
                case KnownResourceTypes.Appointment:
                    if (json.TryGetProperty("start", out _) != json.TryGetProperty("end", out _))
                        ReportInvariant(CurrentLocation() + (json.TryGetProperty("start", out _) ? ".end" : ".start"), "An appointment has both start and end, or neither (FHIR R4 invariant app-2).");
                    else if (!json.TryGetProperty("start", out _) && json.TryGetProperty("status", out var status) && status.ValueKind == JsonValueKind.String
                        && status.GetString() is not ("proposed" or "cancelled" or "waitlist"))
                        ReportInvariant(CurrentLocation() + ".start", "Only a proposed, cancelled or waitlisted appointment may be without start and end (FHIR R4 invariant app-3).");
                    break;
            }

            if (isResource && isContained && json.TryGetProperty("meta", out var meta) && meta.ValueKind == JsonValueKind.Object)
            {
                if (meta.TryGetProperty("versionId", out _) || meta.TryGetProperty("lastUpdated", out _))
                    ReportInvariant(CurrentLocation() + ".meta", "A contained resource has no version or last update of its own (FHIR R4 invariant dom-4).");
                if (meta.TryGetProperty("security", out _))
                    ReportInvariant(CurrentLocation() + ".meta.security", "A contained resource has no security labels of its own (FHIR R4 invariant dom-5).");
            }

            if (isResource && !isContained && json.TryGetProperty("contained", out var contained) && contained.ValueKind == JsonValueKind.Array)
            {
                ValidateContainedReferenced(json, contained);
            }
        }

        /// <summary>dom-3: every contained resource is referred to ("#id") from somewhere in the resource, or itself refers to its
        /// container ("#").</summary>
        private void ValidateContainedReferenced(JsonElement resource, JsonElement contained)
        {
            static void Collect(JsonElement value, HashSet<string> references)
            {
                switch (value.ValueKind)
                {
                    case JsonValueKind.Object:
                        foreach (var property in value.EnumerateObject())
                        {
                            if (property.NameEquals("reference"u8) && property.Value.ValueKind == JsonValueKind.String && property.Value.GetString() is ['#', ..] text)
                                references.Add(text);
                            else Collect(property.Value, references);
                        }

                        break;
                    case JsonValueKind.Array:
                        foreach (var item in value.EnumerateArray()) Collect(item, references);
                        break;
                }
            }

            var all = new HashSet<string>(StringComparer.Ordinal);
            Collect(resource, all);
            var index = 0;
            foreach (var item in contained.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String && !all.Contains("#" + id.GetString()))
                {
                    var own = new HashSet<string>(StringComparer.Ordinal);
                    Collect(item, own);
                    if (!own.Contains("#"))
                        ReportInvariant($"{CurrentLocation()}.contained[{index}]", "A contained resource must be referred to from the resource that contains it (FHIR R4 invariant dom-3).");
                }

                index++;
            }
        }

        /// <summary>A Period's end is not before its start (R4 invariant per-1), nor an Appointment's: refused only when the start is
        /// surely after the end (<see cref="FhirDateRange.IsSurelyAfter"/>), as per-1 fails under FHIRPath. Values given to different
        /// precisions are compared as the times they cover ("2024-03-11" may end at "2024-03-11T10:00:00Z"), and a value without a
        /// zone is not read as Paris's against one with a zone: "2024-03-01" may end after "2024-03-01T21:00:00-04:00".</summary>
        private void ValidateStartBeforeEnd(JsonElement json, string typeName)
        {
            if (json.TryGetProperty("start"u8, out var start) && start.ValueKind == JsonValueKind.String
                && json.TryGetProperty("end"u8, out var end) && end.ValueKind == JsonValueKind.String
                && FhirDateRange.IsSurelyAfter(start.GetString()!, end.GetString()!))
            {
                Report(CurrentLocation() + ".end", typeName == "Period"
                    ? "A period's end must not be before its start (FHIR R4 invariant per-1)."
                    : "An appointment's end must not be before its start.");
            }
        }

        /// <summary>
        /// Records a property of an element group in <paramref name="seen"/>; false, with an issue, when
        /// the property repeats or another choice of the same <c>name[x]</c> is already there.
        /// <paramref name="seenSiblings"/> holds the group's value when marking "_name", and the reverse.
        /// </summary>
        private bool MarkSeen(FhirElement element, Span<byte> seen, Span<byte> seenSiblings, JsonProperty property)
        {
            var marker = (byte)(element.ChoiceOrdinal + 1);
            ref var slot = ref seen[element.GroupIndex];
            var sibling = seenSiblings[element.GroupIndex];
            if (slot == 0 && (sibling == 0 || sibling == marker))
            {
                slot = marker;
                return true;
            }

            var location = CurrentLocation() + "." + Truncate(property.Name);
            Report(location, slot == marker
                ? $"Element '{Truncate(property.Name)}' appears more than once."
                : $"Only one type of '{element.ChoiceGroup}' may be present.");
            return false;
        }

        private void ValidateValue(JsonElement value, FhirElement element, JsonElement parent)
        {
            if (element.IsArray)
            {
                if (value.ValueKind != JsonValueKind.Array)
                {
                    Report(CurrentLocation(), $"'{element.JsonName}' can repeat: its value must be a JSON array.");
                    return;
                }

                var length = value.GetArrayLength();
                if (length == 0)
                {
                    Report(CurrentLocation(), "An array must not be empty.");
                    return;
                }

                var index = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (IsFull)
                    {
                        return;
                    }

                    SetIndex(index);
                    if (item.ValueKind == JsonValueKind.Null)
                    {
                        // A null keeps positions aligned with a "_name" array that extends this item instead.
                        if (element.Primitive == PrimitiveKind.None || !HasExtensionAt(parent, element, index))
                        {
                            Report(CurrentLocation(), "null is not allowed here.");
                        }
                    }
                    else
                    {
                        ValidateSingle(item, element);
                    }

                    index++;
                }

                SetIndex(-1);
                return;
            }

            if (value.ValueKind == JsonValueKind.Array)
            {
                Report(CurrentLocation(), $"'{element.JsonName}' occurs at most once: its value must not be an array.");
                return;
            }

            ValidateSingle(value, element);
        }

        private void ValidateSingle(JsonElement value, FhirElement element)
        {
            if (value.ValueKind == JsonValueKind.Null)
            {
                Report(CurrentLocation(), "null is not allowed here.");
            }
            else if (element.Primitive != PrimitiveKind.None)
            {
                ValidatePrimitive(value, element);
            }
            else if (element.IsResource)
            {
                if (!Envelope)
                {
                    ValidateResource(value, isContained: true);
                }
            }
            else if (value.ValueKind != JsonValueKind.Object)
            {
                Report(CurrentLocation(), $"Expected a JSON object ({element.TypeName}).");
            }
            else
            {
                ValidateObject(value, element.ComplexType!);
                if (element.ReferenceTargets is { } targets)
                {
                    ValidateReferenceTarget(value, targets);
                }
            }
        }

        /// <summary>
        /// A Reference whose element may point only to some resource types (Observation.subject: Patient, Group, Device or
        /// Location) must not name another ("Practitioner/1"), by its literal reference or its <c>type</c>. A reference that
        /// does not say its type (contained, urn:, an absolute URL not in the [type]/[id] form) is left to the rest.
        /// </summary>
        private void ValidateReferenceTarget(JsonElement reference, FrozenSet<string> targets)
        {
            Span<char> buffer = stackalloc char[MaxStackNameLength * 2];
            if (reference.TryGetProperty("reference", out var literal) && literal.ValueKind == JsonValueKind.String)
            {
                var text = TryWidenAscii(JsonMarshal.GetRawUtf8Value(literal)[1..^1], buffer, out var ascii) ? ascii : literal.GetString().AsSpan();
                if (text.Length > 1 && text[0] == '#')
                {
                    ValidateContainedTarget(reference, text[1..], targets);
                    return;
                }

                if (RelativeProblem(text) is { } problem)
                {
                    Report(CurrentLocation() + ".reference", problem);
                    return;
                }

                var namesType = TryNamedType(text, out var named);
                if (namesType && !targets.GetAlternateLookup<ReadOnlySpan<char>>().Contains(named))
                {
                    Report(CurrentLocation() + ".reference", $"A reference of type {named} is not allowed here: this element refers to {Choices(targets)}.");
                }
                else if (namesType && reference.TryGetProperty("type", out var stated) && stated.ValueKind == JsonValueKind.String)
                {
                    // R4 Reference.type: "the type of the target", so it must agree with the type the literal reference names.
                    var statedText = stated.GetString().AsSpan();
                    var statedType = statedText[(statedText.LastIndexOf('/') + 1)..];
                    if (!statedType.SequenceEqual(named))
                    {
                        Report(CurrentLocation() + ".type", $"The reference names a {named} but its type says {Truncate(statedText.ToString())}.");
                    }
                }

                return;
            }

            if (reference.TryGetProperty("type", out var declared) && declared.ValueKind == JsonValueKind.String)
            {
                // "Patient", or the type's canonical URL "http://hl7.org/fhir/StructureDefinition/Patient".
                var text = TryWidenAscii(JsonMarshal.GetRawUtf8Value(declared)[1..^1], buffer, out var ascii) ? ascii : declared.GetString().AsSpan();
                var type = text[(text.LastIndexOf('/') + 1)..];
                if (model.IsResourceTypeName(type) && !targets.GetAlternateLookup<ReadOnlySpan<char>>().Contains(type))
                {
                    Report(CurrentLocation() + ".type", $"A reference of type {type} is not allowed here: this element refers to {Choices(targets)}.");
                }
            }
        }

        /// <summary>The resource type a literal reference names: "Type/id", "Type/id/_history/v", "Type?criteria", or an
        /// absolute URL ending so. False when it names none (contained "#id", "urn:…", a URL in another form).</summary>
        private bool TryNamedType(ReadOnlySpan<char> reference, out ReadOnlySpan<char> type)
        {
            type = default;
            if (reference.StartsWith('#') || reference.StartsWith("urn:", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }

            var query = reference.IndexOf('?');
            if (query >= 0)
            {
                type = reference[..query];
                return model.IsResourceTypeName(type);
            }

            var path = reference;
            var history = path.LastIndexOf("/_history/", StringComparison.Ordinal);
            if (history >= 0 && path[(history + 10)..].IndexOf('/') < 0)
            {
                path = path[..history];
            }

            var last = path.LastIndexOf('/');
            if (last <= 0)
            {
                return false;
            }

            var before = path[..last];
            type = before[(before.LastIndexOf('/') + 1)..];
            return model.IsResourceTypeName(type);
        }

        /// <summary>What is wrong with a relative literal reference ("Type/id", "Type/id/_history/v"): a type R4 does not have
        /// ("Patients/1", "practitioner/1"), or an id that cannot be one. Null for a well-formed one and for every other form
        /// (absolute URL, urn:, conditional "Type?…", "#id").</summary>
        private string? RelativeProblem(ReadOnlySpan<char> reference)
        {
            if (reference.IndexOfAny(':', '?', '#') >= 0 || reference.IndexOf('/') < 0)
            {
                return null;
            }

            var slash = reference.IndexOf('/');
            var type = reference[..slash];
            var rest = reference[(slash + 1)..];
            if (!model.IsResourceTypeName(type))
            {
                return $"A reference 'Type/id' must name a FHIR resource type; '{Truncate(type.ToString())}' is none (types are case-sensitive: Patient, Practitioner…).";
            }

            var history = rest.IndexOf("/_history/", StringComparison.Ordinal);
            var id = history >= 0 ? rest[..history] : rest;
            var version = history >= 0 ? rest[(history + 10)..] : "1";
            return IdRules.IsValid(id) && IdRules.IsValid(version)
                ? null
                : $"A reference '{type}/id' must end in a valid id (1 to 64 letters, digits, '-' or '.'), optionally followed by /_history/ and a version.";
        }

        /// <summary>A reference "#id" names a resource contained in this one (R4 ref-1): it must be there, once, and of a type the
        /// element may point to (an Observation's performer is no contained Encounter, its subject no contained Practitioner).</summary>
        private void ValidateContainedTarget(JsonElement reference, ReadOnlySpan<char> id, FrozenSet<string> targets)
        {
            string? found = null;
            var count = 0;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("contained"u8, out var contained) && contained.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in contained.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("id"u8, out var itemId) && itemId.ValueKind == JsonValueKind.String
                        && itemId.ValueEquals(id) && item.TryGetProperty("resourceType"u8, out var itemType) && itemType.ValueKind == JsonValueKind.String)
                    {
                        found = itemType.GetString();
                        count++;
                    }
                }
            }

            if (count == 0)
            {
                Report(CurrentLocation() + ".reference", "A reference '#id' must name a resource contained in this one (FHIR R4 invariant ref-1); none has that id.");
            }
            else if (count > 1)
            {
                Report(CurrentLocation() + ".reference", "A reference '#id' names two contained resources: contained ids must be unique.");
            }
            else if (!targets.Contains(found!))
            {
                Report(CurrentLocation() + ".reference", $"A reference to a contained {Truncate(found!)} is not allowed here: this element refers to {Choices(targets)}.");
            }
            else if (reference.TryGetProperty("type"u8, out var stated) && stated.ValueKind == JsonValueKind.String
                && stated.GetString() is { } statedType && statedType[(statedType.LastIndexOf('/') + 1)..] != found)
            {
                Report(CurrentLocation() + ".type", $"The reference names a contained {Truncate(found!)} but its type says {Truncate(statedType)}.");
            }
        }

        private static string Choices(FrozenSet<string> targets)
        {
            var names = targets.Order(StringComparer.Ordinal).ToList();
            return names.Count == 1 ? names[0] : string.Join(", ", names[..^1]) + " or " + names[^1];
        }

        private void ValidatePrimitiveExtensions(JsonElement value, FhirElement element, JsonElement parent)
        {
            if (!element.IsArray)
            {
                if (value.ValueKind != JsonValueKind.Object)
                {
                    Report(CurrentLocation(), "Expected a JSON object with 'id' and/or 'extension'.");
                    return;
                }

                ValidateObject(value, model.PrimitiveExtensions);
                return;
            }

            if (value.ValueKind != JsonValueKind.Array)
            {
                Report(CurrentLocation(), $"'{element.JsonName}' can repeat: '{element.ExtensionSiblingName}' must be a JSON array.");
                return;
            }

            var hasValues = parent.TryGetProperty(element.JsonName, out var values) && values.ValueKind == JsonValueKind.Array;
            if (hasValues && values.GetArrayLength() != value.GetArrayLength())
            {
                Report(CurrentLocation(), $"'{element.ExtensionSiblingName}' must have as many items as '{element.JsonName}'.");
                return;
            }

            var index = 0;
            foreach (var item in value.EnumerateArray())
            {
                if (IsFull)
                {
                    return;
                }

                SetIndex(index);
                if (item.ValueKind == JsonValueKind.Null)
                {
                    if (!hasValues || values[index].ValueKind == JsonValueKind.Null)
                    {
                        Report(CurrentLocation(), $"Item {index} has neither a value nor extensions.");
                    }
                }
                else if (item.ValueKind != JsonValueKind.Object)
                {
                    Report(CurrentLocation(), "Expected a JSON object with 'id' and/or 'extension', or null.");
                }
                else
                {
                    ValidateObject(item, model.PrimitiveExtensions);
                }

                index++;
            }

            SetIndex(-1);
        }

        private static bool HasExtensionAt(JsonElement parent, FhirElement element, int index) =>
            parent.TryGetProperty(element.ExtensionSiblingName, out var extensions)
            && extensions.ValueKind == JsonValueKind.Array
            && index < extensions.GetArrayLength()
            && extensions[index].ValueKind == JsonValueKind.Object;

        private void ValidatePrimitive(JsonElement value, FhirElement element)
        {
            var kind = element.Primitive;
            switch (kind)
            {
                case PrimitiveKind.Boolean:
                    if (value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    {
                        Report(CurrentLocation(), "Expected a JSON boolean (true or false).");
                    }

                    return;
                case PrimitiveKind.Integer or PrimitiveKind.UnsignedInt or PrimitiveKind.PositiveInt:
                    ValidateInteger(value, kind);
                    return;
                case PrimitiveKind.Decimal:
                    if (value.ValueKind != JsonValueKind.Number)
                    {
                        Report(CurrentLocation(), "Expected a JSON number (decimal).");
                    }

                    return;
            }

            if (value.ValueKind != JsonValueKind.String)
            {
                Report(CurrentLocation(), $"Expected a JSON string ({element.TypeName}).");
                return;
            }

            var raw = JsonMarshal.GetRawUtf8Value(value);
            // The raw value keeps its quotes; an escape sequence means the text differs from the bytes.
            var text = raw[1..^1];
            if (text.IsEmpty)
            {
                Report(CurrentLocation(), "A string must not be empty.");
                return;
            }

            // JSON carries a control character only escaped, so text without a backslash has none.
            if (text.Contains((byte)'\\') && PrimitiveFormats.HasControlCharacter(text))
            {
                Report(CurrentLocation(), "A string must not hold control characters (U+0000 to U+001F) other than tab, carriage return and line feed.");
                return;
            }

            if (kind is PrimitiveKind.String or PrimitiveKind.Markdown)
            {
                return;
            }

            // Only the opening "<div" of a narrative is checked: the escaped quotes of its attributes need no decoding.
            var checkedText = kind == PrimitiveKind.Xhtml ? text[..Math.Min(text.Length, 5)] : text;
            if (checkedText.Contains((byte)'\\'))
            {
                text = Encoding.UTF8.GetBytes(value.GetString()!);
            }

            var isValid = kind switch
            {
                PrimitiveKind.Code => PrimitiveFormats.IsCode(text),
                PrimitiveKind.Id => PrimitiveFormats.IsId(text),
                PrimitiveKind.Uri or PrimitiveKind.Url or PrimitiveKind.Canonical => PrimitiveFormats.IsUri(text),
                PrimitiveKind.Oid => PrimitiveFormats.IsOid(text),
                PrimitiveKind.Uuid => PrimitiveFormats.IsUuid(text),
                PrimitiveKind.Base64Binary => PrimitiveFormats.IsBase64(text),
                PrimitiveKind.Date => PrimitiveFormats.IsDate(text),
                PrimitiveKind.DateTime => PrimitiveFormats.IsDateTime(text),
                PrimitiveKind.Instant => PrimitiveFormats.IsInstant(text),
                PrimitiveKind.Time => PrimitiveFormats.IsTime(text),
                PrimitiveKind.Xhtml => PrimitiveFormats.IsXhtmlDiv(text),
                _ => true,
            };

            if (!isValid)
            {
                Report(CurrentLocation(), $"Invalid {element.TypeName}: expected {ExpectedFormat(kind)}.");
            }
            else if (kind == PrimitiveKind.Xhtml && !PrimitiveFormats.IsPlainXhtmlDiv(JsonMarshal.GetRawUtf8Value(value)[1..^1])
                && PrimitiveFormats.XhtmlProblem(value.GetString()!) is { } problem)
            {
                Report(CurrentLocation(), "Invalid xhtml: " + problem);
            }
            else if (element.External != ExternalCode.None && !PrimitiveFormats.IsExternalCode(element.External, text))
            {
                Report(CurrentLocation(), element.External switch
                {
                    ExternalCode.Currency => "Unknown currency: an ISO 4217 code, three capital letters (EUR).",
                    ExternalCode.MediaType => "Unknown media type: a MIME type such as application/pdf or text/plain; charset=utf-8 (BCP 13).",
                    _ => "Unknown language: a BCP 47 language tag such as fr or fr-FR.",
                });
            }
            else if (element.Binding is { } binding && !binding.Allows(text))
            {
                Report(CurrentLocation(), $"Unknown code: this element takes one of {string.Join(", ", binding.Codes)} (required binding {binding.ValueSet}).");
            }
        }

        private static string ExpectedFormat(PrimitiveKind kind) => kind switch
        {
            PrimitiveKind.Code => "a code: no leading, trailing or repeated whitespace",
            PrimitiveKind.Id => "an id: 1 to 64 letters, digits, '-' or '.'",
            PrimitiveKind.Uri or PrimitiveKind.Url or PrimitiveKind.Canonical => "no whitespace",
            PrimitiveKind.Oid => "urn:oid: followed by dotted numbers",
            PrimitiveKind.Uuid => "urn:uuid: followed by a lower-case UUID",
            PrimitiveKind.Base64Binary => "base64-encoded data",
            PrimitiveKind.Date => "YYYY, YYYY-MM or YYYY-MM-DD, naming a real day",
            PrimitiveKind.DateTime => "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss(.sss) with a time zone (Z or +hh:mm), naming a real moment",
            PrimitiveKind.Instant => "YYYY-MM-DDThh:mm:ss(.sss) with a time zone (Z or +hh:mm)",
            PrimitiveKind.Time => "hh:mm:ss(.sss)",
            PrimitiveKind.Xhtml => "XHTML starting with a <div> element",
            _ => "a valid value",
        };

        private void ValidateInteger(JsonElement value, PrimitiveKind kind)
        {
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var number))
            {
                Report(CurrentLocation(), "Expected a JSON number that is a 32-bit integer.");
            }
            else if (kind == PrimitiveKind.UnsignedInt && number < 0)
            {
                Report(CurrentLocation(), "Expected an unsignedInt: an integer of 0 or more.");
            }
            else if (kind == PrimitiveKind.PositiveInt && number < 1)
            {
                Report(CurrentLocation(), "Expected a positiveInt: an integer of 1 or more.");
            }
        }

        private FhirType? FindResourceType(JsonElement resourceType)
        {
            var raw = JsonMarshal.GetRawUtf8Value(resourceType)[1..^1];
            Span<char> buffer = stackalloc char[MaxStackNameLength];
            return TryWidenAscii(raw, buffer, out var name)
                ? model.FindResourceType(name)
                : model.FindResourceType(resourceType.GetString());
        }

        /// <summary>The property name without allocating when it is plain ASCII, as every FHIR name is.</summary>
        private static ReadOnlySpan<char> PropertyName(JsonProperty property, Span<char> buffer) =>
            TryWidenAscii(JsonMarshal.GetRawUtf8PropertyName(property), buffer, out var name) ? name : property.Name;

        private static bool TryWidenAscii(ReadOnlySpan<byte> utf8, Span<char> buffer, out ReadOnlySpan<char> text)
        {
            text = default;
            if (utf8.Length > buffer.Length)
            {
                return false;
            }

            for (var i = 0; i < utf8.Length; i++)
            {
                var b = utf8[i];
                if (b is >= 0x80 or (byte)'\\')
                {
                    return false;
                }

                buffer[i] = (char)b;
            }

            text = buffer[..utf8.Length];
            return true;
        }

        private void Report(string location, string message)
        {
            Issues ??= [];
            if (Issues.Count < MaxIssues)
            {
                Issues.Add(new ValidationIssue(location, message));
            }
        }

        private static string Truncate(string name) =>
            name.Length <= MaxNameLengthInMessage ? name : string.Concat(name.AsSpan(0, MaxNameLengthInMessage), "…");

        private void Push(string name)
        {
            if (depth == path.Length)
            {
                Array.Resize(ref path, depth * 2);
            }

            path[depth++] = new PathSegment(name, -1);
        }

        private void Pop() => depth--;

        private void SetIndex(int index) => path[depth - 1] = path[depth - 1] with { Index = index };

        private string CurrentLocation()
        {
            var builder = new StringBuilder();
            for (var i = 0; i < depth; i++)
            {
                if (i > 0)
                {
                    builder.Append('.');
                }

                builder.Append(path[i].Name);
                if (path[i].Index >= 0)
                {
                    builder.Append('[').Append(path[i].Index).Append(']');
                }
            }

            return builder.ToString();
        }

        private readonly record struct PathSegment(string Name, int Index);
    }
}
