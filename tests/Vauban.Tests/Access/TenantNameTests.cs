// An establishment's name is what an operator types after --tenant: a new one must read as what it holds and must not read
// like one that exists, or a slip of the case (`seed --tenant HOP1`) makes a second establishment beside 'hop1'.
using Vauban.Access;

namespace Vauban.Tests.Access;

public class TenantNameTests
{
    [Theory]
    [InlineData("HOP1")]
    [InlineData("Hop1")]
    [InlineData("ｈｏｐ１")] // full-width
    [InlineData("ℌop1")] // black-letter capital H
    [InlineData("ＨＯＰ1")]
    [InlineData("\u041D\u041E\u04201")] // Cyrillic capitals En, O, Er: НОР1
    [InlineData("h\u043Ep1")] // a Cyrillic о among Latin letters
    [InlineData("\u0397\u039F\u03A11")] // Greek capitals Eta, Omicron, Rho: ΗΟΡ1
    public void Names_that_differ_only_by_case_or_compatibility_characters_read_alike(string alike) =>
        Assert.Equal(Tenants.Likeness("hop1"), Tenants.Likeness(alike));

    [Theory]
    [InlineData("hop2")]
    [InlineData("hop-1")]
    [InlineData("chu-nantes")]
    public void Distinct_names_do_not(string other) => Assert.NotEqual(Tenants.Likeness("hop1"), Tenants.Likeness(other));

    [Theory]
    [InlineData("chu-nantes")]
    [InlineData("h\u00F4pital-saint-\u00E9loi")]
    [InlineData("clinique_2")]
    [InlineData("lab.paris")]
    [InlineData("\u0431\u043E\u043B\u044C\u043D\u0438\u0446\u0430")] // больница: one alphabet, Cyrillic
    public void A_plain_name_is_accepted(string name) => Assert.Null(Tenants.NameProblem(name));

    [Theory]
    [InlineData("...", "only punctuation")]
    [InlineData("-_.", "only punctuation")]
    [InlineData("", "needs a name")]
    [InlineData("hop\u200B2", "invisible")] // zero-width space
    [InlineData("hop\u202E2", "invisible")] // right-to-left override
    [InlineData("hop\u00072", "control")]
    [InlineData("ｃｌｉｎｉｑｕｅ", "write it as 'clinique'")]
    [InlineData("ho\u0302pital", "letters, digits")] // the accent as a combining mark
    [InlineData("\uFB01nances", "write it as 'finances'")] // a ligature
    [InlineData("chu nantes", "letters, digits")]
    [InlineData("h\u043Epital", "mixes alphabets (Latin and Cyrillic)")] // a Cyrillic о
    [InlineData("clinique-\u03B1", "mixes alphabets (Latin and Greek)")]
    public void A_name_that_does_not_read_as_it_holds_is_refused_and_says_why(string name, string why) =>
        Assert.Contains(why, Tenants.NameProblem(name) ?? "(accepted)", StringComparison.Ordinal);

    [Fact]
    public void A_name_with_invisible_characters_is_not_quoted_back() =>
        Assert.DoesNotContain("\u202E", Tenants.NameProblem("hop\u202E2")!, StringComparison.Ordinal);
}
