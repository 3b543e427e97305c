// Checks a resource before it is stored: its type and id, and the French identifiers it carries.
using System.Text.Json;
using Vauban.Fhir;

namespace Vauban.Records;

internal static class RecordValidation
{
    public static List<Issue> Validate(string expectedType, JsonElement resource)
    {
        var issues = new List<Issue>();
        if (resource.ValueKind != JsonValueKind.Object)
        {
            issues.Add(Issue.Invalid("A resource must be a JSON object."));
            return issues;
        }
        if (!resource.TryGetProperty("resourceType", out var type) || type.ValueKind != JsonValueKind.String)
        {
            issues.Add(Issue.Invalid("The resource has no resourceType.", "resourceType"));
            return issues;
        }
        if (type.GetString() != expectedType)
        {
            issues.Add(Issue.Invalid($"The resourceType '{Truncate(type.GetString())}' does not match the URL ({expectedType}).", "resourceType"));
            return issues;
        }
        if (resource.TryGetProperty("id", out var id) && (id.ValueKind != JsonValueKind.String || !IdRules.IsValid(id.GetString())))
        {
            issues.Add(Issue.Invalid("id must be 1 to 64 letters, digits, '-' or '.'.", $"{expectedType}.id"));
        }
        issues.AddRange(Fhir.Validation.ResourceValidator.Validate(resource).Select(i => Issue.Invalid(i.Message, i.Location)));
        if (issues.Count > 0) return issues;
        if (expectedType == "Patient" && resource.TryGetProperty("identifier", out var identifiers) && identifiers.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var identifier in identifiers.EnumerateArray())
            {
                if (identifier.ValueKind == JsonValueKind.Object && identifier.TryGetProperty("system", out var system) && system.ValueKind == JsonValueKind.String
                    && system.GetString() == KnownIdentifierSystems.InsNir && identifier.TryGetProperty("value", out var value) && value.ValueKind == JsonValueKind.String
                    && !Nir.TryValidate(value.GetString()!, out var error))
                {
                    // The value is patient data: say what is wrong, never repeat it.
                    issues.Add(Issue.Invalid($"Invalid INS/NIR: {error}.", $"Patient.identifier[{i}].value"));
                }
                i++;
            }
        }
        return issues;
    }

    private static string Truncate(string? value) => value is null ? "" : value.Length <= 40 ? value : value[..40] + "…";
}
