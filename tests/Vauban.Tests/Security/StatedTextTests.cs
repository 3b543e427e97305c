// What people type for others to read — names, stated reasons — must read as it is stored: no control characters, no invisible
// format characters, no line separators, whichever plane they come from.
using Vauban.Access;

namespace Vauban.Tests.Security;

public sealed class StatedTextTests
{
    [Theory]
    [InlineData("Bob\u001b[2J")] // an escape sequence rewrites a terminal
    [InlineData("Ligne\nerror: forged")]
    [InlineData("Evil\u202eName")] // direction override
    [InlineData("Zero\u200bWidth")]
    [InlineData("Sép\u2028arée")] // line separator
    [InlineData("Par\u2029agraphe")] // paragraph separator
    [InlineData("Tag\U000E0041\U000E0042")] // tag characters, beyond the BMP
    public void Hidden_or_line_breaking_characters_are_found(string text) => Assert.True(StatedText.HasHiddenCharacters(text));

    [Theory]
    [InlineData("Dr Hélène Lefèvre-Ørsted")]
    [InlineData("Jean-François d'Aubigné")]
    [InlineData("李小龍")]
    [InlineData("Emoji 🩺 ok")] // a character beyond the BMP that shows as itself
    public void Plain_names_in_any_script_pass(string text) => Assert.False(StatedText.HasHiddenCharacters(text));

    [Fact]
    public void Line_breaks_pass_only_where_they_are_allowed_and_separators_never()
    {
        Assert.False(StatedText.HasHiddenCharacters("one\r\ntwo\tthree", lineBreaks: true));
        Assert.True(StatedText.HasHiddenCharacters("one\r\ntwo", lineBreaks: false));
        Assert.True(StatedText.HasHiddenCharacters("one\u2028two", lineBreaks: true));
    }
}
