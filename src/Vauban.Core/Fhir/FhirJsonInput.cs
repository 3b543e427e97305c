// Parsing FHIR JSON that arrives from outside — a request body, a file given to `vauban import` — under one set of
// rules, so that both doors refuse the same bytes with the same words: UTF-8 only (an invalid sequence would be
// decoded as U+FFFD and stored in place of what was sent), at most 64 levels deep, no property twice, and no \u
// escape that encodes half a surrogate pair (it parses, then fails wherever the string is decoded). A UTF-8 byte
// order mark is skipped (RFC 8259 section 8.1 lets a parser ignore it; editors on Windows write one).
// Messages give a position, never the content.
using System.Text.Json;

namespace Vauban.Fhir;

public static class FhirJsonInput
{
    /// <summary>Levels of objects and arrays accepted; FHIR resources need far fewer.</summary>
    public const int MaxDepth = 64;

    private static readonly JsonDocumentOptions Options = new() { MaxDepth = MaxDepth, AllowDuplicateProperties = false };

    /// <summary>Parses <paramref name="json"/>; null when it is not acceptable FHIR JSON, with <paramref name="problem"/>
    /// saying why ("not valid JSON at line 3, position 7."), for the caller to say of what ("The body is …").</summary>
    public static JsonDocument? Parse(ReadOnlyMemory<byte> json, out string? problem)
    {
        if (json.Span.StartsWith("\uFEFF"u8)) json = json[3..];
        if (!System.Text.Unicode.Utf8.IsValid(json.Span))
        {
            problem = "not valid UTF-8 text, which FHIR JSON must be.";
            return null;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, Options);
        }
        catch (JsonException e)
        {
            if (NestedTooDeeply(json.Span))
            {
                problem = $"nested too deeply: at most {MaxDepth} levels of objects and arrays are accepted.";
                return null;
            }
            if (e.LineNumber is null && DuplicateProperty(json.Span) is { } duplicate)
            {
                // Said without a position by the parser. An element name is no one's data; one longer than an element name is not echoed.
                problem = $"not valid JSON at line {duplicate.Line}: an object gives "
                    + (duplicate.Name.Length <= 64 && duplicate.Name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? $"the property '{duplicate.Name}'" : "a property") + " twice.";
                return null;
            }
            // The parser's message names the property or the content: only the position is given.
            problem = "not valid JSON" + (e.LineNumber is { } line ? $" at line {line + 1}, position {e.BytePositionInLine + 1}" : "") + ".";
            return null;
        }
        catch (InvalidOperationException) when (UndecodableEscape(json.Span) is { } line)
        {
            // The parser decodes property names to find duplicates: an undecodable one throws there.
            problem = Undecodable(line);
            return null;
        }
        if (UndecodableEscape(json.Span) is { } at)
        {
            document.Dispose();
            problem = Undecodable(at);
            return null;
        }
        problem = null;
        return document;
    }

    private static string Undecodable(long line) =>
        $"not valid JSON at line {line}: a \\u escape encodes half of a UTF-16 surrogate pair, which is no character.";

    /// <summary>The line of the first string or property name whose \u escapes do not decode to text, or null.</summary>
    private static long? UndecodableEscape(ReadOnlySpan<byte> json)
    {
        // Only a \u escape can encode a lone surrogate: most texts have none and skip the second read.
        if (json.IndexOf("\\u"u8) < 0) return null;
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            try
            {
                reader.GetString();
            }
            catch (InvalidOperationException)
            {
                return LineAt(json, reader.TokenStartIndex);
            }
        }
        return null;
    }

    /// <summary>The line (from 1) of the byte at <paramref name="index"/>.</summary>
    private static long LineAt(ReadOnlySpan<byte> json, long index) => json[..(int)index].Count((byte)'\n') + 1L;

    /// <summary>The first property an object gives twice, and its line, in JSON that is otherwise well formed; null if none.</summary>
    private static (string Name, long Line)? DuplicateProperty(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth });
        var objects = new Stack<HashSet<string>>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        objects.Push(new HashSet<string>(StringComparer.Ordinal));
                        break;
                    case JsonTokenType.EndObject:
                        objects.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var name = reader.GetString()!;
                        if (!objects.Peek().Add(name)) return (name, LineAt(json, reader.TokenStartIndex));
                        break;
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Malformed in another way.
        }
        return null;
    }

    /// <summary>
    /// Whether JSON the parser refused goes deeper than <see cref="MaxDepth"/> before anything else is wrong with it: read
    /// again, without that limit, by a reader that keeps no tree (so the depth costs nothing), and stopped at the first
    /// level too deep or the first error.
    /// </summary>
    private static bool NestedTooDeeply(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = int.MaxValue });
        try
        {
            while (reader.Read())
            {
                if ((reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) && reader.CurrentDepth >= MaxDepth) return true;
            }
        }
        catch (JsonException)
        {
            // Malformed before it was too deep.
        }
        return false;
    }
}
