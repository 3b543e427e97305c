// A patient's phone number as staff type it on the registration and contact forms, read into the one form it is stored in.
// French numbers are written nationally, by pairs ("06 12 34 56 78"), however they were typed: the blind index normalizes a
// phone to that national form (TextNormalizer.Phone, ADR 0003), so a search by phone finds the patient whichever way either
// was typed, and it is how staff read and dial them. Overseas and foreign numbers are accepted in international form (with
// + or 00 and the country code) and stored as E.164 ("+262692123456"), the form their index takes. The FHIR API's rules are
// not these: a record written through it keeps its numbers as written.
using System.Text;

namespace Vauban.Web.Pages.Patients;

public static class PhoneNumber
{
    /// <summary>What the form says of a number with a letter or another sign in it.</summary>
    public const string WrongCharacters = "The phone number holds digits, spaces and . - ( ) only, with + only before a country code.";

    /// <summary>What the form says of a number of the wrong length or shape.</summary>
    public const string NotANumber = "The phone number is neither a French number (10 digits from 0: 06 12 34 56 78, or +33 6 12 34 56 78) "
        + "nor another country's in international form (+ and the country code: +32 2 123 45 67, +262 692 12 34 56): check it.";

    /// <summary>The separators people type between groups of digits: spaces (the no-break and thin ones French typography puts
    /// there too), points, hyphens, slashes and brackets.</summary>
    private static bool IsSeparator(char c) => c is ' ' or '\u00A0' or '\u202F' or '\u2009' or '.' or '-' or '/' or '(' or ')';

    /// <summary><paramref name="typed"/> (trimmed, not empty) in its stored form, or the problem to show (nothing is written then):
    /// "06.12.34.56.78", "+33 6 12 34 56 78", "+33 (0)6 12 34 56 78" and "0033612345678" are all "06 12 34 56 78".</summary>
    public static (string? Number, string? Problem) Read(string typed)
    {
        ArgumentNullException.ThrowIfNull(typed);
        var digits = new StringBuilder(typed.Length);
        var plus = false;
        foreach (var c in typed)
        {
            if (char.IsAsciiDigit(c)) digits.Append(c);
            else if (c == '+' && digits.Length == 0 && !plus) plus = true;
            else if (!IsSeparator(c)) return (null, WrongCharacters);
        }
        var all = digits.ToString();
        // 00 is the international prefix dialled from France; ten digits or fewer from 00 are a French number mistyped, not a call abroad.
        var international = plus ? all : all.StartsWith("00", StringComparison.Ordinal) && all.Length > 10 ? all[2..] : null;
        if (international is null) return all.Length == 10 && all[0] == '0' && all[1] != '0' ? (National(all[1..]), null) : (null, NotANumber);
        if (international.StartsWith("33", StringComparison.Ordinal))
        {
            var significant = international[2..];
            // "+33 (0)6 …": the national 0 written in brackets after the country code.
            if (significant.Length == 10 && significant[0] == '0') significant = significant[1..];
            return significant.Length == 9 && significant[0] != '0' ? (National(significant), null) : (null, NotANumber);
        }
        // E.164: a country code (never starting with 0) and at most 15 digits in all; the shortest numbers in use have 7.
        return international.Length is >= 7 and <= 15 && international[0] != '0' ? ("+" + international, null) : (null, NotANumber);
    }

    /// <summary>A French number's 9 significant digits written nationally: "0" and five pairs.</summary>
    private static string National(string significant) =>
        string.Join(' ', ("0" + significant).Chunk(2).Select(pair => new string(pair)));
}
