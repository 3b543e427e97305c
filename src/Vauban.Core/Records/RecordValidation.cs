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
        else if (id.ValueKind == JsonValueKind.String && IdRules.IsIdentifying(id.GetString()!))
        {
            issues.Add(Issue.Invalid($"The id is a NIR (social-security number): {IdRules.IdentifyingIdMessage}. Let the server assign the id (POST), or use an opaque one.", $"{expectedType}.id"));
        }
        issues.AddRange(Fhir.Validation.ResourceValidator.Validate(resource).Select(i => Issue.Invalid(i.Message, i.Location)));
        if (issues.Count > 0) return issues;
        if (IsSubsetted(resource))
        {
            // Written back, a record read in part (_summary, _elements) would lose for good what was left out of it: a Patient's
            // contacts, an Observation's reference ranges.
            issues.Add(Issue.Invalid($"This {expectedType} is tagged {ResourceSubset.SubsettedCode}: it was returned in part (_summary or _elements), and storing it would "
                + "drop what was left out. Read the record whole, change that, and send it without the tag.", $"{expectedType}.meta.tag"));
            return issues;
        }
        // Most resources never name the NIR system: one scan of the raw text spares them the walk (validation runs on every write).
        // The system may be written with \u escapes ("1\u002e2…"), which the raw text does not show: those resources are walked too.
        var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(resource);
        if (raw.IndexOf(NirSystemUtf8) >= 0 || raw.IndexOf("\\u"u8) >= 0) CheckNirs(resource, expectedType, issues);
        if (NamesIdentifyingReference(raw)) issues.Add(Issue.Invalid($"A reference names a record by a NIR (social-security number): {IdRules.IdentifyingIdMessage}. Refer to the record by its opaque id.", expectedType));
        return issues;
    }

    private static bool IsSubsetted(JsonElement resource) =>
        resource.TryGetProperty("meta", out var meta) && meta.ValueKind == JsonValueKind.Object
        && meta.TryGetProperty("tag", out var tags) && tags.ValueKind == JsonValueKind.Array
        && tags.EnumerateArray().Any(ResourceSubset.IsSubsetted);

    private static readonly byte[] ReferenceUtf8 = "\"reference\""u8.ToArray();

    /// <summary>Whether a reference's id is a NIR (<see cref="IdRules.IsIdentifying"/>): references are indexed as they are
    /// (ADR 0003), so such an id would be in clear in the store. A scan of the raw text, not a walk of every element (it runs
    /// on every write and every imported resource); a reference written with \u escapes is not looked into.</summary>
    private static bool NamesIdentifyingReference(ReadOnlySpan<byte> raw)
    {
        while (raw.IndexOf(ReferenceUtf8) is var at and >= 0)
        {
            raw = raw[(at + ReferenceUtf8.Length)..];
            var value = raw.TrimStart(" \t\r\n"u8);
            if (value.IsEmpty || value[0] != (byte)':') continue;
            value = value[1..].TrimStart(" \t\r\n"u8);
            if (value.IsEmpty || value[0] != (byte)'"') continue;
            value = value[1..];
            var end = value.IndexOf((byte)'"');
            if (end < 0) return false;
            var reference = value[..end];
            // Type/id, Type/id/_history/n, or an absolute URL ending so: the id is the segment after the type.
            var history = reference.IndexOf("/_history/"u8);
            if (history >= 0) reference = reference[..history];
            var slash = reference.LastIndexOf((byte)'/');
            var last = slash >= 0 ? reference[(slash + 1)..] : reference;
            if (last.Length >= 15 && IdRules.IsIdentifying(System.Text.Encoding.ASCII.GetString(last))) return true;
        }
        return false;
    }

    private static readonly byte[] NirSystemUtf8 = System.Text.Encoding.UTF8.GetBytes(KnownIdentifierSystems.InsNir);

    /// <summary>Every identifier with the INS/NIR system, wherever it is in the resource (a Patient's identifier, a Coverage's,
    /// a reference by identifier), must carry a valid NIR. The value is patient data: the issue says what is wrong, never repeats it.</summary>
    private static void CheckNirs(JsonElement element, string path, List<Issue> issues)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            if (element.TryGetProperty("system", out var system) && system.ValueKind == JsonValueKind.String && system.ValueEquals(KnownIdentifierSystems.InsNir)
                && element.TryGetProperty("value", out var value) && value.ValueKind == JsonValueKind.String && !Nir.TryValidate(value.GetString()!, out var error))
            {
                // Each of Nir's messages is a sentence with its own full stop.
                issues.Add(Issue.Invalid($"Invalid INS/NIR: {error}", path + ".value"));
            }
            foreach (var property in element.EnumerateObject())
            {
                if (property.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array) CheckNirs(property.Value, path + "." + property.Name, issues);
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in element.EnumerateArray()) CheckNirs(item, $"{path}[{i++}]", issues);
        }
    }

    private static string Truncate(string? value) => value is null ? "" : value.Length <= 40 ? value : value[..40] + "…";
}
