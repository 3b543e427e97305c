// The French NIR (numéro d'inscription au répertoire, the social-security number): 13 characters and a
// 2-digit control key = 97 − (number mod 97). Corsica's departments 2A and 2B count as 19 and 18 in the
// key computation. The INS (national health identifier) of a person born in France is their NIR.
using System.Globalization;
using System.Numerics;

namespace Vauban.Records;

public static class Nir
{
    /// <summary>Removes spaces, dots and dashes; upper-cases the Corsican A/B.</summary>
    public static string Normalize(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new string(value.Where(c => c is not (' ' or '.' or '-')).Select(char.ToUpperInvariant).ToArray());
    }

    public static bool IsValid(string? value) => value is not null && TryValidate(value, out _);

    public static bool TryValidate(string value, out string? error)
    {
        ArgumentNullException.ThrowIfNull(value);
        var nir = Normalize(value);
        error = null;
        if (nir.Length != 15)
        {
            error = "an NIR has 15 characters (13 and a 2-digit key)";
            return false;
        }
        var body = nir[..13];
        var corsica = body[5..7] is "2A" or "2B";
        for (var i = 0; i < 15; i++)
        {
            if (!char.IsAsciiDigit(nir[i]) && !(corsica && i == 6))
            {
                error = "an NIR has only digits (and 2A/2B for Corsica)";
                return false;
            }
        }
        if (nir[0] is not ('1' or '2' or '3' or '4' or '7' or '8'))
        {
            error = "an NIR starts with 1 or 2 (3, 4, 7 or 8 for provisional numbers)";
            return false;
        }
        if (ComputeKey(body) != nir[13..])
        {
            error = "the NIR control key is wrong";
            return false;
        }
        return true;
    }

    /// <summary>The 2-digit key of the first 13 characters.</summary>
    public static string ComputeKey(string first13)
    {
        ArgumentNullException.ThrowIfNull(first13);
        var digits = first13.Replace("2A", "19", StringComparison.OrdinalIgnoreCase).Replace("2B", "18", StringComparison.OrdinalIgnoreCase);
        var number = BigInteger.Parse(digits, CultureInfo.InvariantCulture);
        return (97 - (int)(number % 97)).ToString("00", CultureInfo.InvariantCulture);
    }
}
