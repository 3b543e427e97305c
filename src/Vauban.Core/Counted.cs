// A count and its noun, agreed: "1 patient", "2 patients". What the command line and the breach's documents say to a person.
using System.Globalization;

namespace Vauban;

public static class Counted
{
    /// <summary>English: the singular for exactly one, the plural otherwise ("0 entries", "1 entry"); thousands grouped with
    /// commas, as the rest of the command line's figures.</summary>
    public static string En(long count, string one, string many) =>
        string.Create(CultureInfo.InvariantCulture, $"{count:N0} {Noun(count, french: false, one, many)}");

    /// <summary>French: the singular for zero and one ("0 patient", "1 patient", "2 patients"); thousands grouped with a
    /// narrow no-break space, as French typography has it.</summary>
    public static string Fr(long count, string one, string many) =>
        $"{count.ToString("N0", French)} {Noun(count, french: true, one, many)}";

    /// <summary>The noun alone, for a figure written apart from it (in bold): singular for 1 in English, for 0 and 1 in French.</summary>
    public static string Noun(long count, bool french, string one, string many) => (french ? count is 0 or 1 : count == 1) ? one : many;

    private static readonly NumberFormatInfo French = new() { NumberGroupSeparator = "\u202F", NumberDecimalDigits = 0 };
}
