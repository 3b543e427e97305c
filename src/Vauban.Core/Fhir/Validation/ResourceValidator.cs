// Structural validation of FHIR R4 JSON against the model: unknown elements, arrays where one value is
// expected (and the reverse), wrong JSON kinds, malformed primitives (dates that do not exist, codes with
// spaces, ids too long), missing required elements, contained resources. Terminology bindings and
// FHIRPath invariants are not checked. Messages name the element, never its value.
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vauban.Records;

namespace Vauban.Fhir.Validation;

public static partial class ResourceValidator
{
    private const int MaxIssues = 20;

    public static IReadOnlyList<Issue> Validate(JsonElement resource)
    {
        var issues = new List<Issue>();
        ValidateResource(resource, "", issues);
        return issues;
    }

    private static void ValidateResource(JsonElement resource, string prefix, List<Issue> issues)
    {
        if (resource.ValueKind != JsonValueKind.Object)
        {
            Add(issues, prefix.Length == 0 ? "Resource" : prefix, "A resource must be a JSON object.");
            return;
        }
        if (!resource.TryGetProperty("resourceType", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
        {
            Add(issues, prefix.Length == 0 ? "Resource" : prefix, "The resource has no resourceType.");
            return;
        }
        var type = typeElement.GetString()!;
        if (!TypeCodes.TryGet(type, out _) || !FhirModel.TryGet(type, out var model))
        {
            Add(issues, prefix.Length == 0 ? "resourceType" : prefix + ".resourceType", $"The resource type is not one this server supports ({string.Join(", ", TypeCodes.Names)}).");
            return;
        }
        ValidateObject(resource, model, prefix.Length == 0 ? type : prefix, issues);
    }

    private static void ValidateObject(JsonElement value, TypeModel model, string path, List<Issue> issues)
    {
        var count = 0;
        foreach (var property in value.EnumerateObject())
        {
            count++;
            if (issues.Count >= MaxIssues) return;
            var name = property.Name;
            if (model.IsResource && name == "resourceType") continue;
            if (name.Length > 1 && name[0] == '_')
            {
                // The extension/id sibling of a primitive element ("_birthDate": { "extension": [...] }).
                var baseName = name[1..];
                if (!model.Elements.TryGetValue(baseName, out var primitive) || !IsPrimitive(primitive.Type))
                {
                    Add(issues, $"{path}.{name}", $"Unknown element '{name}': '_' marks the extensions of a primitive element, and {model.Name} has no primitive '{baseName}'.");
                    continue;
                }
                ValidateValues(property.Value, new ElementModel("Element", primitive.Many, false, null), $"{path}.{name}", issues, allowNulls: true);
                continue;
            }
            if (!model.Elements.TryGetValue(name, out var element))
            {
                Add(issues, $"{path}.{name}", $"Unknown element '{name}' in {model.Name}.");
                continue;
            }
            ValidateValues(property.Value, element, $"{path}.{name}", issues, allowNulls: false);
        }
        if (count == 0)
        {
            Add(issues, path, "An object must not be empty.");
            return;
        }
        foreach (var (required, isChoice) in model.RequiredElements)
        {
            if (isChoice ? !HasChoice(value, required) : !value.TryGetProperty(required, out _) && !value.TryGetProperty("_" + required, out _))
            {
                Add(issues, $"{path}.{required}{(isChoice ? "[x]" : "")}", $"The required element '{required}{(isChoice ? "[x]" : "")}' is missing.");
            }
        }
    }

    private static bool HasChoice(JsonElement value, string group)
    {
        foreach (var property in value.EnumerateObject())
        {
            if (property.Name.StartsWith(group, StringComparison.Ordinal) && property.Name.Length > group.Length && char.IsUpper(property.Name[group.Length])) return true;
        }
        return false;
    }

    private static void ValidateValues(JsonElement value, ElementModel element, string path, List<Issue> issues, bool allowNulls)
    {
        if (element.Many)
        {
            if (value.ValueKind != JsonValueKind.Array)
            {
                Add(issues, path, "Expected an array (this element repeats).");
                return;
            }
            if (value.GetArrayLength() == 0)
            {
                Add(issues, path, "An array must not be empty.");
                return;
            }
            var index = 0;
            foreach (var item in value.EnumerateArray())
            {
                if (!(allowNulls && item.ValueKind == JsonValueKind.Null)) ValidateValue(item, element.Type, $"{path}[{index}]", issues);
                index++;
            }
            return;
        }
        if (value.ValueKind == JsonValueKind.Array)
        {
            Add(issues, path, "Expected a single value, not an array.");
            return;
        }
        ValidateValue(value, element.Type, path, issues);
    }

    private static void ValidateValue(JsonElement value, string type, string path, List<Issue> issues)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            Add(issues, path, "null is not allowed: omit the element instead.");
            return;
        }
        if (IsPrimitive(type))
        {
            if (CheckPrimitive(value, type) is { } problem) Add(issues, path, problem);
            return;
        }
        if (type == "Resource")
        {
            ValidateResource(value, path, issues);
            return;
        }
        if (value.ValueKind != JsonValueKind.Object)
        {
            Add(issues, path, $"Expected a {Display(type)} object.");
            return;
        }
        if (type == "Element")
        {
            foreach (var property in value.EnumerateObject())
            {
                if (property.Name is not ("id" or "extension")) Add(issues, $"{path}.{property.Name}", $"Unknown element '{property.Name}' (only id and extension are allowed here).");
            }
            if (value.TryGetProperty("extension", out var extensions)) ValidateValues(extensions, new ElementModel("Extension", true, false, null), path + ".extension", issues, false);
            return;
        }
        if (!FhirModel.TryGet(type, out var model))
        {
            return; // A datatype outside the stored types' closure cannot occur: the model is generated from them.
        }
        ValidateObject(value, model, path, issues);
    }

    private static string Display(string type) => type.Contains('.', StringComparison.Ordinal) ? "backbone element" : type;

    private static bool IsPrimitive(string type) => type is "boolean" or "integer" or "string" or "decimal" or "uri" or "url" or "canonical" or "base64Binary"
        or "instant" or "date" or "dateTime" or "time" or "code" or "oid" or "id" or "markdown" or "unsignedInt" or "positiveInt" or "uuid" or "xhtml";

    /// <summary>The problem with a primitive value, or null when it is well-formed.</summary>
    private static string? CheckPrimitive(JsonElement value, string type)
    {
        switch (type)
        {
            case "boolean":
                return value.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : "Expected a boolean (true or false, not a string).";
            case "integer" or "unsignedInt" or "positiveInt":
                if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var integer)) return $"Expected an {type} (a JSON number without fraction, 32-bit).";
                return type == "unsignedInt" && integer < 0 ? "Expected a non-negative integer." : type == "positiveInt" && integer < 1 ? "Expected a positive integer." : null;
            case "decimal":
                return value.ValueKind == JsonValueKind.Number ? null : "Expected a decimal (a JSON number, not a string).";
        }
        if (value.ValueKind != JsonValueKind.String) return $"Expected a {type} as a JSON string.";
        var text = value.GetString()!;
        if (text.Length == 0) return "Empty strings are not allowed: omit the element instead.";
        return type switch
        {
            "string" or "markdown" or "xhtml" => text.Trim().Length == 0 ? "A string must contain more than whitespace." : null,
            "code" => CodePattern().IsMatch(text) ? null : "A code has no leading, trailing or repeated whitespace.",
            "id" => IdRules.IsValid(text) ? null : "An id is 1 to 64 letters, digits, '-' or '.'.",
            "uri" or "url" or "canonical" => text.Any(char.IsWhiteSpace) ? "A URI contains no whitespace." : null,
            "oid" => OidPattern().IsMatch(text) ? null : "An oid is urn:oid: followed by dotted digits.",
            "uuid" => UuidPattern().IsMatch(text) ? null : "A uuid is urn:uuid: followed by a lower-case UUID.",
            "base64Binary" => IsBase64(text) ? null : "Not valid base64.",
            "date" => DatePattern().IsMatch(text) && FhirDateRange.TryParse(text, out _, out _, out _) ? null : "Not a valid date (YYYY, YYYY-MM or YYYY-MM-DD, a day that exists).",
            "dateTime" => DateTimePattern().IsMatch(text) && FhirDateRange.TryParse(text, out _, out _, out _) ? null
                : "Not a valid dateTime (a date, or YYYY-MM-DDThh:mm:ss with a time zone, a day and time that exist).",
            "instant" => InstantPattern().IsMatch(text) && FhirDateRange.TryParse(text, out _, out _, out _) ? null : "Not a valid instant (YYYY-MM-DDThh:mm:ss[.fff] with a time zone).",
            "time" => TimePattern().IsMatch(text) ? null : "Not a valid time (hh:mm:ss).",
            _ => null,
        };
    }

    private static bool IsBase64(string text)
    {
        var buffer = new byte[text.Length];
        return Convert.TryFromBase64String(text, buffer, out _);
    }

    private static void Add(List<Issue> issues, string path, string message)
    {
        if (issues.Count < MaxIssues) issues.Add(Issue.Invalid(message, path));
    }

    [GeneratedRegex(@"^[^\s]+( [^\s]+)*$")]
    private static partial Regex CodePattern();

    [GeneratedRegex(@"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$")]
    private static partial Regex OidPattern();

    [GeneratedRegex(@"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    private static partial Regex UuidPattern();

    [GeneratedRegex(@"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$")]
    private static partial Regex DatePattern();

    [GeneratedRegex(@"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$")]
    private static partial Regex DateTimePattern();

    [GeneratedRegex(@"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$")]
    private static partial Regex InstantPattern();

    [GeneratedRegex(@"^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?$")]
    private static partial Regex TimePattern();
}
