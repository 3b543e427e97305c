// Text a person states for others to read and judge (a break-the-glass explanation, a bulk read's reason): it must read as it
// is stored. Unicode's invisible format characters (the bidirectional overrides and isolates, zero-width characters) make a
// reason display as other words than it holds — an officer approving an export would read what was not written.
using System.Globalization;
using System.Text;

namespace Vauban.Access;

public static class StatedText
{
    /// <summary>Whether the text holds a character that does not show as itself: a control character other than tab and line
    /// breaks (when <paramref name="lineBreaks"/>), a line or paragraph separator (U+2028, U+2029), or an invisible format character
    /// (U+200B–U+200F, U+202A–U+202E, U+2066–U+2069, U+FEFF, the tags U+E0000–U+E007F…).</summary>
    public static bool HasHiddenCharacters(string text, bool lineBreaks = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        // By code point, not UTF-16 unit: the tag characters (U+E0000–U+E007F) are invisible format characters beyond the BMP.
        foreach (var rune in text.EnumerateRunes())
        {
            if (lineBreaks && rune.Value is '\t' or '\r' or '\n') continue;
            if (Rune.IsControl(rune)) return true;
            // Line and paragraph separators (U+2028, U+2029) break a line as \n does.
            if (Rune.GetUnicodeCategory(rune) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator) return true;
        }
        return false;
    }
}
