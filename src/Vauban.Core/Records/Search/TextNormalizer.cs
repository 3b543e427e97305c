// FHIR string search is case- and accent-insensitive; blind indexes need one canonical form.
// Folding is done with an explicit table (not Unicode normalization) so the canonical form, which is
// bound into stored hashes, can never change with the runtime's Unicode data.
using System.Buffers;
using System.Text;

namespace Vauban.Records.Search;

internal static class TextNormalizer
{
    /// <summary>Lower-case letters and digits only, accents folded: "Le Goff-Hélias" → "legoffhelias".</summary>
    public static string Fold(string value)
    {
        var length = value.Length * MaxFoldedPerChar;
        char[]? rented = null;
        var buffer = length <= 512 ? stackalloc char[length] : (rented = ArrayPool<char>.Shared.Rent(length));
        try
        {
            return new string(buffer[..Fold(value, buffer)]);
        }
        finally
        {
            // A name is identifying: it does not stay behind in the shared pool.
            if (rented is not null) ArrayPool<char>.Shared.Return(rented, clearArray: true);
        }
    }

    /// <summary>Folding can make at most this many characters of one (œ → oe).</summary>
    public const int MaxFoldedPerChar = 2;

    /// <summary><see cref="Fold(string)"/> written into <paramref name="destination"/> (at least <see cref="MaxFoldedPerChar"/>
    /// characters for each of <paramref name="value"/>'s), stopping once <paramref name="limit"/> characters are written; the
    /// count written. The same characters as <see cref="Fold(string)"/>'s first <paramref name="limit"/>, without a string.</summary>
    public static int Fold(ReadOnlySpan<char> value, Span<char> destination, int limit = int.MaxValue)
    {
        var written = 0;
        foreach (var c in value)
        {
            if (written >= limit) break;
            if (c < 128)
            {
                if (char.IsAsciiLetterOrDigit(c)) destination[written++] = char.ToLowerInvariant(c);
                continue;
            }
            var folded = FoldLatin(c);
            if (folded is not null)
            {
                folded.CopyTo(destination[written..]);
                written += folded.Length;
            }
            else if (char.IsLetterOrDigit(c)) destination[written++] = char.ToLowerInvariant(c);
        }
        return Math.Min(written, limit);
    }

    private static string? FoldLatin(char c) => c switch
    {
        'à' or 'á' or 'â' or 'ã' or 'ä' or 'å' or 'À' or 'Á' or 'Â' or 'Ã' or 'Ä' or 'Å' => "a",
        'ç' or 'Ç' => "c",
        'è' or 'é' or 'ê' or 'ë' or 'È' or 'É' or 'Ê' or 'Ë' => "e",
        'ì' or 'í' or 'î' or 'ï' or 'Ì' or 'Í' or 'Î' or 'Ï' => "i",
        'ñ' or 'Ñ' => "n",
        'ò' or 'ó' or 'ô' or 'õ' or 'ö' or 'ø' or 'Ò' or 'Ó' or 'Ô' or 'Õ' or 'Ö' or 'Ø' => "o",
        'ù' or 'ú' or 'û' or 'ü' or 'Ù' or 'Ú' or 'Û' or 'Ü' => "u",
        'ý' or 'ÿ' or 'Ý' or 'Ÿ' => "y",
        'œ' or 'Œ' => "oe",
        'æ' or 'Æ' => "ae",
        'ß' => "ss",
        _ => null,
    };

    /// <summary>French phone numbers in one form: "+33 6 12 34 56 78", "0033612345678" and "06.12.34.56.78" → "0612345678".</summary>
    public static string Phone(string value)
    {
        var digits = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (char.IsAsciiDigit(c)) digits.Append(c);
        }
        var text = digits.ToString();
        var international = value.TrimStart().StartsWith('+');
        if (text.StartsWith("0033", StringComparison.Ordinal)) return "0" + text[4..];
        if (international && text.StartsWith("33", StringComparison.Ordinal)) return "0" + text[2..];
        return international ? "+" + text : text;
    }

    public static string Email(string value) => value.Trim().ToLowerInvariant();

    /// <summary>An identifier as it is matched: without the spaces people type and paste into numbers (the space, tab,
    /// no-break and thin spaces of French typography), and a NIR in INSEE's compact form (Corsica's 2A/2B upper-case), so that
    /// "2 84 05 2a 004 123 59" and "284052A00412359" are one patient's number. Other identifiers keep their case (an IPP's
    /// letters may be significant). An explicit set of spaces rather than Unicode's: this form is bound into stored hashes.</summary>
    public static string Identifier(string value)
    {
        // A NIR first, as its validation reads it (any white space, wherever): a value the API accepted as a NIR is indexed as one.
        if (Nir.Normalize(value) is { } nir) return nir;
        return (value.AsSpan().IndexOfAny(IdentifierSpaces) < 0 ? value : string.Concat(value.Split(IdentifierSpaceList))).Trim();
    }

    /// <summary>An identifier as index formats 1 to 3 made it (the plain space removed, the case kept): a search also looks for
    /// it, so that records indexed before format 4 are found until <c>vauban reindex</c> has re-extracted them.</summary>
    public static string IdentifierBeforeFormat4(string value) => value.Replace(" ", "", StringComparison.Ordinal).Trim();

    private static readonly char[] IdentifierSpaceList = [' ', '\t', '\u00A0', '\u2007', '\u2009', '\u202F'];
    private static readonly SearchValues<char> IdentifierSpaces = SearchValues.Create(IdentifierSpaceList);
}
