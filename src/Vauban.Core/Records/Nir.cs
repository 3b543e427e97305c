namespace Vauban.Records;

// The NIR (numéro d'inscription au répertoire, "numéro de sécurité sociale") as INSEE assigns it:
//
//   S  YY  MM  LL  CCC  OOO  KK
//   |  |   |   |   |    |    +- control key: 97 - (first 13 digits mod 97)
//   |  |   |   |   |    +------ order number in the birth register of the month (001-999)
//   |  |   |   |   +----------- commune of birth (INSEE code), or country code when LL = 99
//   |  |   |   +--------------- department of birth: 01-95, 2A/2B (Corsica since 1976; 20 before),
//   |  |   |                    97x/98x overseas (the 3rd digit then belongs to the department), 99 abroad
//   |  |   +------------------- month of birth: 01-12; 20-42 and 50-99 for numbers assigned on an
//   |  |                        incomplete civil-status record (sources differ on the exact sub-ranges:
//   |  |                        "20 to 30", "20 and 30-42"; we accept their union)
//   |  +----------------------- last two digits of the year of birth
//   +-------------------------- 1 man, 2 woman; 3/4 and 7/8 temporary numbers (foreign-born, NIA)
//
// Corsica: for the key, 2A counts as 19 and 2B as 18 (the number minus 1,000,000 or 2,000,000).
// Validation is tolerant of every documented special value and rejects what no rule allows.
// Error messages never echo the value: a NIR is identifying data.
public static class Nir
{
    private const int Length = 15;

    public static bool IsValid(string? value) => value is not null && TryValidate(value, out _);

    /// <summary>
    /// Returns the NIR in its compact form (15 characters, no spaces, "2A"/"2B" upper-case),
    /// or <see langword="null"/> when <paramref name="value"/> is not a valid NIR.
    /// </summary>
    public static string? Normalize(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return TryNormalize(value, out var compact, out _) ? compact : null;
    }

    /// <summary>Whether <paramref name="value"/> is a NIR but for its control key: 15 characters (spaces aside) whose first 13 are
    /// a valid NIR's and whose last two are not their key. A typing error to say as such, not a number to search for.</summary>
    public static bool HasWrongKey(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Span<char> buffer = stackalloc char[Length];
        if (!TryCompact(value, buffer, out var written) || written != Length || !HasValidCharacters(buffer)) return false;
        var first13 = new string(buffer[..13]);
        return IsValid(first13 + FormatKey(Key(buffer[..13]))) && !IsValid(new string(buffer));
    }

    /// <summary>Whether <paramref name="value"/> is written as a NIR is — 13 or 15 characters once spaces, '-' and '.' are left out,
    /// digits but for Corsica's 2A/2B —, its key missing or wrong too: typed where a record id is asked, it is answered as a NIR.</summary>
    public static bool LooksLike(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Span<char> buffer = stackalloc char[Length];
        var written = 0;
        foreach (var c in value)
        {
            if (char.IsWhiteSpace(c) || c is '-' or '.') continue;
            if (written == Length) return false;
            buffer[written++] = char.ToUpperInvariant(c);
        }
        return written is 13 or Length && HasValidCharacters(buffer[..written]);
    }

    /// <summary>Validates a NIR; on failure, <paramref name="error"/> says why in a short English sentence.</summary>
    public static bool TryValidate(string value, out string? error)
    {
        ArgumentNullException.ThrowIfNull(value);
        return TryNormalize(value, out _, out error);
    }

    /// <summary>
    /// Computes the 2-digit control key of the first 13 characters of a NIR (spaces allowed,
    /// Corsica 2A/2B handled).
    /// </summary>
    /// <exception cref="ArgumentException">The value is not 13 digits (with 2A/2B as the department).</exception>
    public static string ComputeKey(string first13) =>
        TryComputeKey(first13, out var key) ? key
            : throw new ArgumentException("Expected the first 13 characters of a NIR: digits, with 2A or 2B as the department.", nameof(first13));

    /// <summary>As <see cref="ComputeKey"/>, false for what is not the first 13 characters of a NIR (a person's typing).</summary>
    public static bool TryComputeKey(string first13, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? key)
    {
        ArgumentNullException.ThrowIfNull(first13);
        key = null;
        Span<char> compact = stackalloc char[13];
        if (!TryCompact(first13, compact, out var written) || written != 13 || !HasValidCharacters(compact)) return false;
        key = FormatKey(Key(compact));
        return true;
    }

    internal static int Key(ReadOnlySpan<char> first13)
    {
        // 13 decimal digits fit in a long; Corsica letters are replaced per the official rule.
        long number = 0;
        for (var i = 0; i < 13; i++)
        {
            var c = first13[i];
            if (i == 6 && c is ('A' or 'B'))
            {
                // 2A counts as 19 and 2B as 18: the '2' already added becomes a '1'.
                number = ((number - 1) * 10) + (c == 'A' ? 9 : 8);
                continue;
            }

            number = (number * 10) + (c - '0');
        }

        return 97 - (int)(number % 97);
    }

    internal static string FormatKey(int key) => key.ToString("00", System.Globalization.CultureInfo.InvariantCulture);

    private static bool TryNormalize(string value, out string? compact, out string? error)
    {
        compact = null;
        Span<char> buffer = stackalloc char[Length];
        if (!TryCompact(value, buffer, out var written) || written != Length)
        {
            error = "A NIR has 15 characters: 13 digits and a 2-digit control key.";
            return false;
        }

        if (!HasValidCharacters(buffer))
        {
            error = "A NIR contains only digits, except 2A or 2B as the department of birth.";
            return false;
        }

        var sex = buffer[0];
        if (sex is not ('1' or '2' or '3' or '4' or '7' or '8'))
        {
            error = "The first digit of a NIR (sex) must be 1, 2, 3, 4, 7 or 8.";
            return false;
        }

        var month = TwoDigits(buffer[3..5]);
        if (month is 0 or (> 12 and < 20) or (> 42 and < 50))
        {
            error = "The month of birth in a NIR must be 01-12, 20-42 or 50-99.";
            return false;
        }

        if (buffer[5] == '0' && buffer[6] == '0')
        {
            error = "The department of birth in a NIR cannot be 00.";
            return false;
        }

        if (buffer[10] == '0' && buffer[11] == '0' && buffer[12] == '0')
        {
            error = "The order number in a NIR cannot be 000.";
            return false;
        }

        var key = TwoDigits(buffer[13..15]);
        if (key < 1 || key > 97 || key != Key(buffer[..13]))
        {
            error = "The control key of the NIR does not match.";
            return false;
        }

        compact = new string(buffer);
        error = null;
        return true;
    }

    // Removes white space (people type and paste NIRs as "1 85 05 78 006 084 36", sometimes with
    // non-breaking spaces) and upper-cases the Corsica letters. Fails when more than
    // destination.Length significant characters remain.
    private static bool TryCompact(string value, Span<char> destination, out int written)
    {
        written = 0;
        foreach (var c in value)
        {
            if (char.IsWhiteSpace(c))
            {
                continue;
            }

            if (written == destination.Length)
            {
                return false;
            }

            destination[written++] = c is 'a' or 'b' ? char.ToUpperInvariant(c) : c;
        }

        return true;
    }

    private static bool HasValidCharacters(ReadOnlySpan<char> nir)
    {
        for (var i = 0; i < nir.Length; i++)
        {
            var c = nir[i];
            if (char.IsAsciiDigit(c))
            {
                continue;
            }

            // Only the second character of the department may be a letter, and only after a 2.
            if (i == 6 && (c is 'A' or 'B') && nir[5] == '2')
            {
                continue;
            }

            return false;
        }

        return true;
    }

    private static int TwoDigits(ReadOnlySpan<char> digits) => ((digits[0] - '0') * 10) + (digits[1] - '0');
}
