// Writers for the FHIR resources the server itself produces: OperationOutcome, Bundle (searchset,
// history, batch-response, transaction-response). Stored resources are copied in as raw JSON,
// never re-serialized.
using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Vauban.Records;

namespace Vauban.Fhir;

public static class FhirJson
{
    public const string ContentType = "application/fhir+json; charset=utf-8";

    public static byte[] OperationOutcome(IEnumerable<Issue> issues, string? correlationId = null)
    {
        ArgumentNullException.ThrowIfNull(issues);
        return Write(writer => WriteOperationOutcome(writer, issues, correlationId));
    }

    public static void WriteOperationOutcome(Utf8JsonWriter writer, IEnumerable<Issue> issues, string? correlationId = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(issues);
        writer.WriteStartObject();
        writer.WriteString("resourceType", "OperationOutcome");
        if (correlationId is not null) writer.WriteString("id", correlationId);
        writer.WriteStartArray("issue");
        foreach (var issue in issues)
        {
            writer.WriteStartObject();
            writer.WriteString("severity", issue.Severity);
            writer.WriteString("code", issue.Code);
            writer.WriteString("diagnostics", issue.Diagnostics);
            if (issue.Expression is not null)
            {
                writer.WriteStartArray("expression");
                writer.WriteStringValue(issue.Expression);
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <param name="assembledAt">The Bundle's meta.lastUpdated: when it was put together, by the server's clock (its TimeProvider).</param>
    public static byte[] SearchSet(SearchPage page, string baseUrl, string selfUrl, string? nextUrl, DateTimeOffset assembledAt) => Write(writer =>
    {
        ArgumentNullException.ThrowIfNull(page);
        StartBundle(writer, "searchset", assembledAt);
        if (page.Total is { } total) writer.WriteNumber("total", total);
        WriteLinks(writer, selfUrl, nextUrl);
        var outcome = page.Outcome is { Count: > 0 };
        if (page.Entries.Count > 0 || outcome) writer.WriteStartArray("entry"); // FHIR JSON has no empty arrays
        if (outcome)
        {
            writer.WriteStartObject();
            writer.WritePropertyName("resource");
            WriteOperationOutcome(writer, page.Outcome!);
            writer.WriteStartObject("search");
            writer.WriteString("mode", "outcome");
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        foreach (var entry in page.Entries)
        {
            writer.WriteStartObject();
            writer.WriteString("fullUrl", FullUrl(baseUrl, entry.Type, entry.Id));
            writer.WritePropertyName("resource");
            writer.WriteRawValue(entry.Json!, skipInputValidation: true);
            writer.WriteStartObject("search");
            writer.WriteString("mode", entry.Included ? "include" : "match");
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        if (page.Entries.Count > 0 || outcome) writer.WriteEndArray();
        writer.WriteEndObject();
    });

    /// <summary>A record's Bundle.entry.fullUrl: its version-independent absolute URL on this server (R4: an entry that carries an
    /// identified resource SHALL have one), in a searchset, a history and a batch or transaction response alike.</summary>
    public static string FullUrl(string baseUrl, string type, string id) => $"{baseUrl}/{type}/{id}";

    /// <param name="assembledAt">As <see cref="SearchSet"/>'s.</param>
    public static byte[] History(SearchPage page, string baseUrl, string selfUrl, string? nextUrl, DateTimeOffset assembledAt) => Write(writer =>
    {
        ArgumentNullException.ThrowIfNull(page);
        StartBundle(writer, "history", assembledAt);
        if (page.Total is { } total) writer.WriteNumber("total", total);
        WriteLinks(writer, selfUrl, nextUrl);
        if (page.Entries.Count > 0) writer.WriteStartArray("entry");
        foreach (var entry in page.Entries)
        {
            writer.WriteStartObject();
            writer.WriteString("fullUrl", FullUrl(baseUrl, entry.Type, entry.Id));
            if (entry.Json is not null)
            {
                writer.WritePropertyName("resource");
                writer.WriteRawValue(entry.Json, skipInputValidation: true);
            }
            // As the version was written; a version stored before that was recorded is shown as history always showed it.
            var made = entry.Made != VersionMade.Unknown ? entry.Made
                : entry.Deleted ? VersionMade.Deleted : entry.Version == 1 ? VersionMade.Created : VersionMade.Updated;
            writer.WriteStartObject("request");
            writer.WriteString("method", made switch { VersionMade.Created => "POST", VersionMade.Deleted => "DELETE", VersionMade.Patched => "PATCH", _ => "PUT" });
            writer.WriteString("url", made == VersionMade.Created ? entry.Type : $"{entry.Type}/{entry.Id}");
            writer.WriteEndObject();
            writer.WriteStartObject("response");
            writer.WriteString("status", made switch { VersionMade.Updated or VersionMade.Patched => "200", VersionMade.Deleted => "204", _ => "201" });
            writer.WriteString("etag", ETag(entry.Version));
            writer.WriteString("lastModified", FhirInstant.Format(entry.LastUpdated));
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        if (page.Entries.Count > 0) writer.WriteEndArray();
        writer.WriteEndObject();
    });

    public static string ETag(int version) => "W/\"" + version.ToString(CultureInfo.InvariantCulture) + "\"";

    /// <summary>The version an If-Match names: W/"3" (weak, as the server sends it) or "3"; a bare 3 is taken too. Anything
    /// else — another tag, several, *, a version below 1 — is not a version of this server's and is refused by the caller
    /// (an If-Match of * is read by <see cref="TryParseIfMatch"/>).</summary>
    public static bool TryParseETag(string text, out int version)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tag = text.Trim();
        if (tag.StartsWith("W/", StringComparison.Ordinal)) tag = tag[2..];
        if (tag.Length >= 2 && tag[0] == '"' && tag[^1] == '"') tag = tag[1..^1];
        return int.TryParse(tag, NumberStyles.None, CultureInfo.InvariantCulture, out version) && version > 0;
    }

    /// <summary>The version an If-Match stands for when it is <c>*</c> (RFC 9110 §13.1.1: "only if a current representation
    /// exists"): any current version of a record that exists and is not deleted. No version is 0, so it cannot be confused with one.</summary>
    public const int AnyCurrentVersion = 0;

    /// <summary>An If-Match (header or a bundle entry's request.ifMatch): a version ETag as <see cref="TryParseETag"/> reads it, or
    /// <c>*</c>, read as <see cref="AnyCurrentVersion"/>. Anything else — another tag, several, a version below 1 — is refused.</summary>
    public static bool TryParseIfMatch(string text, out int version)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Trim() == "*")
        {
            version = AnyCurrentVersion;
            return true;
        }
        return TryParseETag(text, out version);
    }

    /// <summary>The link to the page a search, history or $everything token leads to (the next page, or this one for the self
    /// link): <paramref name="path"/> with the opaque token as its only parameter; null when there is no such page.</summary>
    public static string? PageLink(string path, string? pageToken) => pageToken is null ? null : $"{path}?_page={Uri.EscapeDataString(pageToken)}";

    /// <param name="assembledAt">meta.lastUpdated, by the server's clock: never the system's, which a server run on another clock
    /// (a test's, a replay's) would contradict beside the versions it stamped.</param>
    public static void StartBundle(Utf8JsonWriter writer, string type, DateTimeOffset assembledAt)
    {
        writer.WriteStartObject();
        writer.WriteString("resourceType", "Bundle");
        writer.WriteString("id", Guid.NewGuid().ToString("D"));
        writer.WriteStartObject("meta");
        writer.WriteString("lastUpdated", FhirInstant.Format(assembledAt.ToUnixTimeMilliseconds()));
        writer.WriteEndObject();
        writer.WriteString("type", type);
    }

    private static void WriteLinks(Utf8JsonWriter writer, string selfUrl, string? nextUrl)
    {
        writer.WriteStartArray("link");
        writer.WriteStartObject();
        writer.WriteString("relation", "self");
        writer.WriteString("url", selfUrl);
        writer.WriteEndObject();
        if (nextUrl is not null)
        {
            writer.WriteStartObject();
            writer.WriteString("relation", "next");
            writer.WriteString("url", nextUrl);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    public static byte[] Write(Action<Utf8JsonWriter> write) => Write(write, indented: false);

    /// <summary>FHIR JSON as <c>_pretty=true</c> asks for it (R4 http.html, "human-readable"): <paramref name="json"/>, which this
    /// class or a stored resource wrote compact, indented. The same JSON otherwise: numbers keep their digits as written (a decimal's
    /// precision is its value's), strings their characters. Only a pretty answer pays for this second pass.</summary>
    public static byte[] Indented(ReadOnlyMemory<byte> json)
    {
        using var document = JsonDocument.Parse(json, IndentedInput);
        return Write(document.WriteTo, indented: true);
    }

    /// <summary>A resource is accepted up to <see cref="FhirJsonInput.MaxDepth"/> levels deep, and an answer nests it further (a
    /// searchset inside a transaction-response).</summary>
    private static readonly JsonDocumentOptions IndentedInput = new() { MaxDepth = FhirJsonInput.MaxDepth * 2 };

    private static byte[] Write(Action<Utf8JsonWriter> write, bool indented)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions
        {
            SkipValidation = true, Indented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            write(writer);
        }
        return buffer.WrittenSpan.ToArray();
    }
}
