// Text a person states for others to read and judge (a break-the-glass explanation, a bulk read's reason): it must read as it
// is stored. Unicode's invisible format characters (the bidirectional overrides and isolates, zero-width characters) make a
// reason display as other words than it holds — an officer approving an export would read what was not written.
using System.Globalization;

namespace Vauban.Access;

public static class StatedText
{
    /// <summary>Whether the text holds a character that does not show as itself: a control character other than tab and line
    /// breaks (when <paramref name="lineBreaks"/>), or an invisible format character (U+200B–U+200F, U+202A–U+202E,
    /// U+2066–U+2069, U+FEFF…).</summary>
    public static bool HasHiddenCharacters(string text, bool lineBreaks = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var c in text)
        {
            if (lineBreaks && c is '\t' or '\r' or '\n') continue;
            if (char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format) return true;
        }
        return false;
    }
}
