// Writes a resource as stored: resourceType, the server's id and meta (versionId, lastUpdated, and the
// client's other meta elements kept), then the rest of the resource in the client's order.
// Optionally rewrites references (transaction bundles replace urn:uuid: references with server ids).
using System.Buffers;
using System.Text.Json;

namespace Vauban.Fhir;

internal static class ResourceStamp
{
    public static byte[] Apply(JsonElement resource, string type, string id, int version, long lastUpdated,
        IReadOnlyDictionary<string, string>? referenceMap = null)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("resourceType", type);
            writer.WriteString("id", id);
            writer.WriteStartObject("meta");
            writer.WriteString("versionId", version.ToString(System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteString("lastUpdated", FhirInstant.Format(lastUpdated));
            if (resource.TryGetProperty("meta", out var meta) && meta.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in meta.EnumerateObject())
                {
                    if (property.NameEquals("versionId") || property.NameEquals("lastUpdated")) continue;
                    property.WriteTo(writer);
                }
            }
            writer.WriteEndObject();
            foreach (var property in resource.EnumerateObject())
            {
                if (property.NameEquals("resourceType") || property.NameEquals("id") || property.NameEquals("meta")) continue;
                if (referenceMap is null || referenceMap.Count == 0)
                {
                    property.WriteTo(writer);
                }
                else
                {
                    writer.WritePropertyName(property.Name);
                    WriteRewritten(writer, property.Value, referenceMap);
                }
            }
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary><paramref name="resource"/> as it is, but for the references <paramref name="map"/> rewrites (a collection
    /// Bundle's urn:uuid: references to its entries, on import).</summary>
    public static byte[] RewriteReferences(JsonElement resource, IReadOnlyDictionary<string, string> map)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            WriteRewritten(writer, resource, map);
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The first urn:uuid: reference in <paramref name="element"/> that <paramref name="map"/> does not resolve, or null.</summary>
    public static string? UnresolvedUrnReference(JsonElement element, IReadOnlyDictionary<string, string> map)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.NameEquals("reference") && property.Value.ValueKind == JsonValueKind.String)
                    {
                        var reference = property.Value.GetString()!;
                        if (reference.StartsWith("urn:uuid:", StringComparison.OrdinalIgnoreCase) && !map.ContainsKey(reference)) return reference;
                    }
                    else if (UnresolvedUrnReference(property.Value, map) is { } inner)
                    {
                        return inner;
                    }
                }
                return null;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    if (UnresolvedUrnReference(item, map) is { } inner) return inner;
                }
                return null;
            default:
                return null;
        }
    }

    private static void WriteRewritten(Utf8JsonWriter writer, JsonElement element, IReadOnlyDictionary<string, string> map)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject())
                {
                    writer.WritePropertyName(property.Name);
                    if (property.NameEquals("reference") && property.Value.ValueKind == JsonValueKind.String
                        && map.TryGetValue(property.Value.GetString()!, out var replacement))
                    {
                        writer.WriteStringValue(replacement);
                    }
                    else
                    {
                        WriteRewritten(writer, property.Value, map);
                    }
                }
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray()) WriteRewritten(writer, item, map);
                writer.WriteEndArray();
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }
}
