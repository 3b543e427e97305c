// Writes a resource as stored: resourceType, the server's id and meta (versionId, lastUpdated, and the
// client's other meta elements kept), then the rest of the resource in the client's order.
// Optionally rewrites references (transaction bundles replace urn:uuid: references with server ids; an absolute URL
// under this server's own base becomes the relative reference, so that it is indexed and names its patient).
using System.Buffers;
using System.Text.Json;

namespace Vauban.Fhir;

internal static class ResourceStamp
{
    public static byte[] Apply(JsonElement resource, string type, string id, int version, long lastUpdated,
        IReadOnlyDictionary<string, string>? referenceMap = null, string? serverBase = null)
    {
        // Most resources never name this server by URL: one scan of the raw text spares them the rewriting walk.
        var local = serverBase is not null
            && System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(resource).IndexOf(System.Text.Encoding.UTF8.GetBytes(serverBase + "/")) >= 0
            ? serverBase + "/"
            : null;
        referenceMap ??= Empty;
        // One buffer and writer per thread, reset for each resource: a new 1 KiB buffer grown to 2 KiB, and a writer, were
        // three quarters of the bytes a bulk load allocated to stamp a resource (~4 KB for ~1 KB of JSON).
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, StampOptions);
        writer.Reset(buffer);
        try
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
            var definition = referenceMap.Count == 0 && local is null ? null : Validation.FhirModel.R4.FindResourceType(type);
            foreach (var property in resource.EnumerateObject())
            {
                if (property.NameEquals("resourceType") || property.NameEquals("id") || property.NameEquals("meta")) continue;
                if (referenceMap.Count == 0 && local is null)
                {
                    property.WriteTo(writer);
                }
                else
                {
                    writer.WritePropertyName(property.Name);
                    WriteRewritten(writer, property.Value, referenceMap, local, definition?.FindElement(property.Name));
                }
            }
            writer.WriteEndObject();
            writer.Flush();
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            // A buffer grown by a large resource is not kept for the thread's lifetime, nor are its bytes.
            if (buffer.Capacity > MaxKeptBuffer) (t_buffer, t_writer) = (null, null);
            else buffer.Clear();
        }
    }

    private const int MaxKeptBuffer = 64 * 1024;
    private static readonly JsonWriterOptions StampOptions = new() { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary><paramref name="resource"/> as it is, but for the references <paramref name="map"/> rewrites (a collection
    /// Bundle's urn:uuid: references to its entries, on import).</summary>
    public static byte[] RewriteReferences(JsonElement resource, IReadOnlyDictionary<string, string> map)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            WriteRewritten(writer, resource, map, null, null);
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static readonly Dictionary<string, string> Empty = [];

    /// <summary>The first urn:uuid: reference in <paramref name="element"/> that <paramref name="map"/> does not resolve, or null.</summary>
    public static string? UnresolvedUrnReference(JsonElement element, IReadOnlyDictionary<string, string> map) =>
        FirstReference(element, reference => reference.StartsWith("urn:uuid:", StringComparison.OrdinalIgnoreCase) && !map.ContainsKey(reference));

    /// <summary>The first conditional reference ("Practitioner?identifier=…") in the resource, or null. R4 lets a transaction
    /// carry them for servers that resolve them, and says a server that does not fails the transaction.</summary>
    public static string? ConditionalReference(JsonElement element) =>
        FirstReference(element, reference => reference.IndexOf('?') is > 0 and var query && reference.AsSpan(0, query).IndexOfAny('/', ':') < 0);

    /// <summary>Whether the resource has a reference that <paramref name="map"/> rewrites (a transaction entry naming another by its
    /// fullUrl).</summary>
    public static bool ReferencesAny(JsonElement element, IReadOnlyDictionary<string, string> map) =>
        map.Count > 0 && FirstReference(element, map.ContainsKey) is not null;

    /// <summary>The first Reference.reference string in <paramref name="element"/> that <paramref name="matches"/>, or null.</summary>
    private static string? FirstReference(JsonElement element, Func<string, bool> matches)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.NameEquals("reference") && property.Value.ValueKind == JsonValueKind.String)
                    {
                        var reference = property.Value.GetString()!;
                        if (matches(reference)) return reference;
                    }
                    else if (FirstReference(property.Value, matches) is { } inner)
                    {
                        return inner;
                    }
                }
                return null;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    if (FirstReference(item, matches) is { } inner) return inner;
                }
                return null;
            default:
                return null;
        }
    }

    /// <summary>Writes <paramref name="element"/> with its references rewritten: every Reference.reference, and where the element's
    /// FHIR type is known (<paramref name="definition"/>, else the resource's own from its resourceType), R4's other links too
    /// (http.html, transaction processing: "elements of type uri, url, oid, uuid, and &lt;a href&gt; &amp; &lt;img src&gt; in the
    /// narrative"): a uri, url or canonical value that is a fullUrl of the bundle, and the narrative's href and src naming one. An
    /// oid or uuid element keeps its value: what replaces it (Type/id) is neither, and would make the resource invalid.</summary>
    /// <param name="local">This server's base URL and a slash, when the resource names it: references under it become relative.</param>
    private static void WriteRewritten(Utf8JsonWriter writer, JsonElement element, IReadOnlyDictionary<string, string> map, string? local,
        Validation.FhirElement? definition)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                // A resource (a contained one, say) is read by its own type; a complex element by its definition's.
                var type = definition is { IsResource: true } || definition is null
                    ? element.TryGetProperty("resourceType", out var named) && named.ValueKind == JsonValueKind.String
                        ? Validation.FhirModel.R4.FindResourceType(named.GetString()) ?? Validation.FhirModel.R4.FindContainedOnlyType(named.GetString())
                        : null
                    : definition.ComplexType;
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject())
                {
                    writer.WritePropertyName(property.Name);
                    if (property.NameEquals("reference") && property.Value.ValueKind == JsonValueKind.String
                        && Rewritten(property.Value.GetString()!, map, local) is { } replacement)
                    {
                        writer.WriteStringValue(replacement);
                    }
                    else
                    {
                        WriteRewritten(writer, property.Value, map, local, type?.FindElement(property.Name));
                    }
                }
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray()) WriteRewritten(writer, item, map, local, definition);
                writer.WriteEndArray();
                break;
            case JsonValueKind.String when definition?.Primitive is Validation.PrimitiveKind.Uri or Validation.PrimitiveKind.Url or Validation.PrimitiveKind.Canonical
                && map.TryGetValue(element.GetString()!, out var linked):
                writer.WriteStringValue(linked);
                break;
            case JsonValueKind.String when definition?.Primitive is Validation.PrimitiveKind.Xhtml && map.Count > 0:
                writer.WriteStringValue(RewrittenNarrative(element.GetString()!, map));
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }

    /// <summary>A narrative's <c>href</c> and <c>src</c> attributes that name a fullUrl of the bundle, rewritten to its record
    /// (XHTML allows spaces around the attribute's <c>=</c>).</summary>
    internal static string RewrittenNarrative(string div, IReadOnlyDictionary<string, string> map)
    {
        System.Text.StringBuilder? rewritten = null;
        var copied = 0;
        var at = 0;
        while (at < div.Length)
        {
            var href = div.IndexOf("href", at, StringComparison.OrdinalIgnoreCase);
            var src = div.IndexOf("src", at, StringComparison.OrdinalIgnoreCase);
            if (href < 0 && src < 0) break;
            var name = href < 0 || (src >= 0 && src < href) ? src : href;
            at = name + (name == src ? 3 : 4);
            // An attribute's name, after a space (not the end of data-src or of a word in the text), then =, then a quote.
            if (name == 0 || !char.IsWhiteSpace(div[name - 1])) continue;
            var value = at;
            while (value < div.Length && char.IsWhiteSpace(div[value])) value++;
            if (value >= div.Length || div[value] != '=') continue;
            value++;
            while (value < div.Length && char.IsWhiteSpace(div[value])) value++;
            if (value >= div.Length || div[value] is not ('"' or '\'')) continue;
            var end = div.IndexOf(div[value], value + 1);
            if (end < 0) break;
            at = end + 1;
            if (!map.TryGetValue(div[(value + 1)..end], out var target)) continue;
            rewritten ??= new System.Text.StringBuilder(div.Length + 32);
            rewritten.Append(div, copied, value + 1 - copied).Append(System.Security.SecurityElement.Escape(target));
            copied = end;
        }
        return rewritten is null ? div : rewritten.Append(div, copied, div.Length - copied).ToString();
    }

    private static string? Rewritten(string reference, IReadOnlyDictionary<string, string> map, string? local)
    {
        if (map.TryGetValue(reference, out var mapped)) return mapped;
        if (local is not null && reference.StartsWith(local, StringComparison.Ordinal)
            && Records.ReferenceTarget.TryParseLocal(reference[local.Length..], out _, out _))
        {
            return reference[local.Length..];
        }
        return null;
    }
}
