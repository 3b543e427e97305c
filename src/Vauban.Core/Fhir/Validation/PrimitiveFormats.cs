// The lexical rules of FHIR R4 primitive types (https://hl7.org/fhir/R4/datatypes.html), checked on
// the UTF-8 bytes of the JSON string so that validating a resource allocates no strings. Each check
// follows the regex in the spec; dates and times are also checked against the calendar, which the
// regexes do not do (1980-02-30 matches them).

using System.Buffers.Text;
using System.Collections.Frozen;
using System.Text;
using System.Xml;

namespace Vauban.Fhir.Validation;

internal static class PrimitiveFormats
{
    private const int MaxIdLength = 64;

    /// <summary>[A-Za-z0-9\-\.]{1,64}</summary>
    public static bool IsId(ReadOnlySpan<byte> value)
    {
        if (value.Length is 0 or > MaxIdLength)
        {
            return false;
        }

        foreach (var b in value)
        {
            if (!(IsAsciiLetterOrDigit(b) || b == (byte)'-' || b == (byte)'.'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>[^\s]+( [^\s]+)*: no leading, trailing or repeated whitespace, and only spaces inside.</summary>
    public static bool IsCode(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || IsWhitespace(value[0]) || IsWhitespace(value[^1]))
        {
            return false;
        }

        for (var i = 1; i < value.Length - 1; i++)
        {
            if (IsWhitespace(value[i]) && (value[i] != (byte)' ' || IsWhitespace(value[i - 1])))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>\S*, and non-empty as every FHIR primitive is: uri, url and canonical.</summary>
    public static bool IsUri(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty)
        {
            return false;
        }

        foreach (var b in value)
        {
            if (IsWhitespace(b))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>urn:oid:[0-2](\.(0|[1-9][0-9]*))+</summary>
    public static bool IsOid(ReadOnlySpan<byte> value)
    {
        if (!value.StartsWith("urn:oid:"u8))
        {
            return false;
        }

        var arcs = value["urn:oid:".Length..];
        if (arcs.Length < 3 || arcs[0] is < (byte)'0' or > (byte)'2' || arcs[1] != (byte)'.')
        {
            return false;
        }

        var position = 1;
        while (position < arcs.Length)
        {
            if (arcs[position] != (byte)'.')
            {
                return false;
            }

            var start = ++position;
            while (position < arcs.Length && IsDigit(arcs[position]))
            {
                position++;
            }

            var arcLength = position - start;
            if (arcLength == 0 || (arcLength > 1 && arcs[start] == (byte)'0'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}</summary>
    public static bool IsUuid(ReadOnlySpan<byte> value)
    {
        if (!value.StartsWith("urn:uuid:"u8))
        {
            return false;
        }

        var uuid = value["urn:uuid:".Length..];
        if (uuid.Length != 36)
        {
            return false;
        }

        for (var i = 0; i < uuid.Length; i++)
        {
            var isHyphenPosition = i is 8 or 13 or 18 or 23;
            var b = uuid[i];
            var valid = isHyphenPosition ? b == (byte)'-' : IsDigit(b) || b is >= (byte)'a' and <= (byte)'f';
            if (!valid)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>(\s*([0-9a-zA-Z\+/=]){4}\s*)+, with padding only at the end.</summary>
    public static bool IsBase64(ReadOnlySpan<byte> value) => !value.IsEmpty && Base64.IsValid(value);

    /// <summary>YYYY, YYYY-MM or YYYY-MM-DD, naming a real day.</summary>
    public static bool IsDate(ReadOnlySpan<byte> value) =>
        TryReadDate(value, out var consumed, out _) && consumed == value.Length;

    /// <summary>A date, or a full date with a time and a time zone: YYYY-MM-DDThh:mm:ss(.f+)?(Z|(+|-)hh:mm).</summary>
    public static bool IsDateTime(ReadOnlySpan<byte> value)
    {
        if (!TryReadDate(value, out var consumed, out var hasDay))
        {
            return false;
        }

        if (consumed == value.Length)
        {
            return true;
        }

        return hasDay && value[consumed] == (byte)'T' && IsTimeWithZone(value[(consumed + 1)..]);
    }

    /// <summary>An exact moment: YYYY-MM-DDThh:mm:ss(.f+)?(Z|(+|-)hh:mm), all parts required.</summary>
    public static bool IsInstant(ReadOnlySpan<byte> value) =>
        TryReadDate(value, out var consumed, out var hasDay)
        && hasDay
        && consumed < value.Length
        && value[consumed] == (byte)'T'
        && IsTimeWithZone(value[(consumed + 1)..]);

    /// <summary>hh:mm:ss(.f+)?, a time of day without a zone.</summary>
    public static bool IsTime(ReadOnlySpan<byte> value) =>
        TryReadTime(value, out var consumed) && consumed == value.Length;

    /// <summary>Narrative.div must be an XHTML div; its content is <see cref="XhtmlProblem"/>'s.</summary>
    public static bool IsXhtmlDiv(ReadOnlySpan<byte> value) =>
        value.StartsWith("<div"u8) && value.Length > 4 && value[4] is (byte)' ' or (byte)'>' or (byte)'/';

    /// <summary>The form of a code from a code system outside FHIR (<see cref="ExternalCode"/>), on its UTF-8 text.</summary>
    internal static bool IsExternalCode(ExternalCode kind, ReadOnlySpan<byte> value) => kind switch
    {
        ExternalCode.Currency => value.Length == 3 && value.IndexOfAnyExceptInRange((byte)'A', (byte)'Z') < 0,
        ExternalCode.MediaType => IsMediaType(value),
        ExternalCode.Language => IsLanguageTag(value),
        _ => true,
    };

    // RFC 6838 restricted-name characters (letters, digits, !#$&-^_.+), for a media type's type and subtype.
    private static readonly System.Buffers.SearchValues<byte> MediaNameCharacters =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&-^_.+"u8);

    /// <summary>type/subtype (RFC 6838 names), optionally followed by ";" parameters (not checked further).</summary>
    private static bool IsMediaType(ReadOnlySpan<byte> value)
    {
        var semicolon = value.IndexOf((byte)';');
        var essence = semicolon < 0 ? value : value[..semicolon];
        var slash = essence.IndexOf((byte)'/');
        if (slash <= 0 || slash == essence.Length - 1) return false;
        var type = essence[..slash];
        var subtype = essence[(slash + 1)..];
        return type.Length <= 127 && subtype.Length <= 127 && !type.ContainsAnyExcept(MediaNameCharacters) && !subtype.ContainsAnyExcept(MediaNameCharacters);
    }

    /// <summary>A BCP 47 tag's form: a 2–3 letter language (or 4–8), then subtags of 1–8 letters or digits, joined by "-".</summary>
    private static bool IsLanguageTag(ReadOnlySpan<byte> value)
    {
        var first = true;
        foreach (var range in value.Split((byte)'-'))
        {
            var subtag = value[range];
            if (subtag.Length is < 1 or > 8) return false;
            foreach (var b in subtag)
            {
                var letter = b is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z';
                if (!letter && !(b is >= (byte)'0' and <= (byte)'9' && !first)) return false;
            }
            if (first && subtag.Length is < 2 or 4 && !(subtag.Length == 1 && subtag[0] is (byte)'x' or (byte)'i')) return false;
            first = false;
        }
        return !first;
    }

    private const string XhtmlNamespace = "http://www.w3.org/1999/xhtml";

    /// <summary>A narrative that is text alone in an XHTML div, as JSON carries it (<c>&lt;div xmlns=\"…xhtml\"&gt;text&lt;/div&gt;</c>,
    /// no markup, entity or escape inside): valid without parsing it as XML, which costs a reader and its buffers.</summary>
    public static bool IsPlainXhtmlDiv(ReadOnlySpan<byte> escaped)
    {
        ReadOnlySpan<byte> open = "<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">"u8;
        ReadOnlySpan<byte> close = "</div>"u8;
        if (escaped.Length <= open.Length + close.Length || !escaped.StartsWith(open) || !escaped.EndsWith(close)) return false;
        var text = escaped[open.Length..^close.Length];
        return text.IndexOfAny("<&\\"u8) < 0 && text.IndexOfAnyExcept(" \t\r\n"u8) >= 0;
    }

    // R4 narrative.html: "only the basic html formatting elements and attributes described in chapters 7-11 (except section 4 of
    // chapter 9) and 12 of the HTML 4.0 standard, <a> elements (either name or href), images and internally contained style
    // attributes" (txt-1): no script, form, frame, object, link, base, head or body, and no event attributes.
    private static readonly FrozenSet<string> NarrativeElements = new[]
    {
        "a", "abbr", "acronym", "address", "b", "bdo", "big", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
        "del", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre",
        "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt",
        "u", "ul", "var",
    }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> NarrativeAttributes = new[]
    {
        "id", "class", "style", "title", "lang", "dir", "href", "name", "src", "alt", "width", "height", "border", "cellpadding",
        "cellspacing", "summary", "frame", "rules", "colspan", "rowspan", "headers", "abbr", "axis", "scope", "align", "valign",
        "char", "charoff", "span", "start", "type", "value", "cite", "datetime", "compact", "nowrap", "bgcolor", "clear", "size",
        "noshade", "longdesc", "hspace", "vspace", "hreflang", "rel", "rev", "shape", "coords",
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Longest narrative div read (8 Mi characters).</summary>
    public const int MaxNarrativeCharacters = 8 * 1024 * 1024;

    /// <summary>What makes a narrative's div something R4 does not allow, or null: not well-formed XML, a root that is not an
    /// XHTML div, an element or attribute outside txt-1's basic HTML (scripts, forms, frames, objects, event handlers), a link
    /// or image whose URL would run code, or no content at all (txt-2). Names only elements and attributes it knows, never
    /// the text. A document type (and so any entity expansion) is refused.</summary>
    public static string? XhtmlProblem(string div)
    {
        // Said as such: the reader's limit below was told as "not well-formed XML" (an import of a long narrative, a probe).
        if (div.Length > MaxNarrativeCharacters) return "the narrative is longer than " + MaxNarrativeCharacters.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + " characters.";
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, IgnoreComments = true, IgnoreProcessingInstructions = false, MaxCharactersInDocument = MaxNarrativeCharacters };
        try
        {
            using var reader = XmlReader.Create(new StringReader(div), settings);
            var content = false;
            var root = true;
            while (reader.Read())
            {
                switch (reader.NodeType)
                {
                    case XmlNodeType.Element:
                        if (reader.NamespaceURI != XhtmlNamespace)
                            return root ? "the div must be in the XHTML namespace (xmlns=\"http://www.w3.org/1999/xhtml\")." : "every element must be XHTML.";
                        if (root && reader.LocalName != "div") return "the narrative must be one <div> element.";
                        root = false;
                        if (!NarrativeElements.Contains(reader.LocalName))
                            return $"the element {Named(reader.LocalName)} is not allowed in a narrative: only basic HTML formatting, links and images (FHIR R4 invariant txt-1).";
                        if (reader.LocalName == "img") content = true;
                        if (AttributeProblem(reader) is { } problem) return problem;
                        break;
                    case XmlNodeType.Text or XmlNodeType.CDATA:
                        content |= !string.IsNullOrWhiteSpace(reader.Value);
                        break;
                    case XmlNodeType.ProcessingInstruction:
                        return "processing instructions are not allowed in a narrative.";
                }
            }
            return content ? null : "the narrative must have some non-whitespace content (FHIR R4 invariant txt-2).";
        }
        catch (XmlException e)
        {
            return $"not well-formed XML (line {e.LineNumber}, position {e.LinePosition}).";
        }
    }

    private static string? AttributeProblem(XmlReader reader)
    {
        if (!reader.MoveToFirstAttribute()) return null;
        do
        {
            if (reader.Prefix == "xmlns" || (reader.Prefix.Length == 0 && reader.LocalName == "xmlns"))
            {
                if (reader.Value != XhtmlNamespace) return "only the XHTML namespace may be declared in a narrative.";
                continue;
            }
            if (reader.Prefix == "xml" && reader.LocalName == "lang") continue;
            if (reader.Prefix.Length > 0 || !NarrativeAttributes.Contains(reader.LocalName))
                return $"the attribute {Named(reader.LocalName, element: false)} is not allowed in a narrative (FHIR R4 invariant txt-1: no event handlers or scripting).";
            if (reader.LocalName is "href" or "src" or "longdesc" or "cite" && RunsCode(reader.Value))
                return $"the {reader.LocalName} of a narrative's link or image must not run code (javascript:, vbscript:, data: other than an image).";
        }
        while (reader.MoveToNextAttribute());
        reader.MoveToElement();
        return null;
    }

    /// <summary>A URL whose scheme runs code when followed or loaded (javascript:, vbscript:, a data: URL that is not a raster
    /// image); control characters and spaces, which browsers skip in a scheme, are skipped here too.</summary>
    private static bool RunsCode(string url)
    {
        var colon = url.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0) return false;
        var scheme = new StringBuilder(colon);
        foreach (var c in url.AsSpan(0, colon))
        {
            if (c is '/' or '?' or '#') return false; // a relative URL with a colon further on
            if (c > ' ') scheme.Append(char.ToLowerInvariant(c));
        }
        var rest = url.AsSpan(colon + 1).TrimStart();
        return scheme.ToString() switch
        {
            "javascript" or "vbscript" => true,
            "data" => !rest.StartsWith("image/", StringComparison.OrdinalIgnoreCase) || rest.StartsWith("image/svg", StringComparison.OrdinalIgnoreCase),
            _ => false,
        };
    }

    /// <summary>An element or attribute name for a message: what the caller wrote, when it is a short plain name.</summary>
    private static string Named(string name, bool element = true) =>
        name.Length <= 24 && name.All(char.IsAsciiLetterOrDigit) ? (element ? "<" + name + ">" : "'" + name + "'") : "given";

    /// <summary>
    /// Whether a JSON string's escaped text (between its quotes) holds a character below U+0020 other than tab, carriage
    /// return and line feed, which FHIR strings SHALL NOT contain. Such a character can only be written escaped:
    /// \b, \f or \u0000 to \u001F.
    /// </summary>
    public static bool HasControlCharacter(ReadOnlySpan<byte> escaped)
    {
        for (var i = escaped.IndexOf((byte)'\\'); i >= 0 && i + 1 < escaped.Length; i++)
        {
            if (escaped[i] != (byte)'\\')
            {
                continue;
            }

            var escape = escaped[++i];
            if (escape is (byte)'b' or (byte)'f')
            {
                return true;
            }

            if (escape == (byte)'u' && i + 4 < escaped.Length && escaped[i + 1] == (byte)'0' && escaped[i + 2] == (byte)'0'
                && escaped[i + 3] is (byte)'0' or (byte)'1')
            {
                var code = ((escaped[i + 3] - '0') * 16) + HexValue(escaped[i + 4]);
                if (code is >= 0 and not (0x09 or 0x0A or 0x0D))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1000,
    };

    private static bool IsTimeWithZone(ReadOnlySpan<byte> value) =>
        TryReadTime(value, out var consumed) && IsTimeZone(value[consumed..]);

    private static bool TryReadDate(ReadOnlySpan<byte> value, out int consumed, out bool hasDay)
    {
        consumed = 0;
        hasDay = false;
        if (!TryReadNumber(value, 0, 4, out var year) || year == 0)
        {
            return false;
        }

        consumed = 4;
        if (value.Length == 4 || value[4] != (byte)'-')
        {
            return true;
        }

        if (!TryReadNumber(value, 5, 2, out var month) || month is < 1 or > 12)
        {
            return false;
        }

        consumed = 7;
        if (value.Length == 7 || value[7] != (byte)'-')
        {
            return true;
        }

        if (!TryReadNumber(value, 8, 2, out var day) || day < 1 || day > DateTime.DaysInMonth(year, month))
        {
            return false;
        }

        consumed = 10;
        hasDay = true;
        return true;
    }

    private static bool TryReadTime(ReadOnlySpan<byte> value, out int consumed)
    {
        consumed = 0;
        // Seconds may be 60: the spec's regex admits a leap second.
        if (value.Length < 8
            || !TryReadNumber(value, 0, 2, out var hours) || hours > 23 || value[2] != (byte)':'
            || !TryReadNumber(value, 3, 2, out var minutes) || minutes > 59 || value[5] != (byte)':'
            || !TryReadNumber(value, 6, 2, out var seconds) || seconds > 60)
        {
            return false;
        }

        consumed = 8;
        if (value.Length > 8 && value[8] == (byte)'.')
        {
            var fractionStart = 9;
            consumed = fractionStart;
            while (consumed < value.Length && IsDigit(value[consumed]))
            {
                consumed++;
            }

            if (consumed == fractionStart)
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsTimeZone(ReadOnlySpan<byte> zone)
    {
        if (zone.Length == 1)
        {
            return zone[0] == (byte)'Z';
        }

        if (zone.Length != 6 || zone[0] is not ((byte)'+' or (byte)'-') || zone[3] != (byte)':'
            || !TryReadNumber(zone, 1, 2, out var hours) || !TryReadNumber(zone, 4, 2, out var minutes))
        {
            return false;
        }

        return (hours <= 13 && minutes <= 59) || (hours == 14 && minutes == 0);
    }

    private static bool TryReadNumber(ReadOnlySpan<byte> value, int start, int digits, out int number)
    {
        number = 0;
        if (value.Length < start + digits)
        {
            return false;
        }

        for (var i = start; i < start + digits; i++)
        {
            if (!IsDigit(value[i]))
            {
                return false;
            }

            number = (number * 10) + (value[i] - '0');
        }

        return true;
    }

    private static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';

    private static bool IsAsciiLetterOrDigit(byte b) =>
        IsDigit(b) || b is >= (byte)'a' and <= (byte)'z' || b is >= (byte)'A' and <= (byte)'Z';

    // \s in the spec's regexes; non-ASCII whitespace is rare enough in codes and URIs to leave aside.
    private static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f' or (byte)'\v';
}
