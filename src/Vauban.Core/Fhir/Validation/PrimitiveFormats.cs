// The lexical rules of FHIR R4 primitive types (https://hl7.org/fhir/R4/datatypes.html), checked on
// the UTF-8 bytes of the JSON string so that validating a resource allocates no strings. Each check
// follows the regex in the spec; dates and times are also checked against the calendar, which the
// regexes do not do (1980-02-30 matches them).

using System.Buffers.Text;

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

    /// <summary>Narrative.div must be an XHTML div; its content is not checked here.</summary>
    public static bool IsXhtmlDiv(ReadOnlySpan<byte> value) =>
        value.StartsWith("<div"u8) && value.Length > 4 && value[4] is (byte)' ' or (byte)'>' or (byte)'/';

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
