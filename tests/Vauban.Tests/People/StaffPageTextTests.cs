// What the staff pages compute from what a person typed or reads: a grant's length, a NIR typed without its key.
namespace Vauban.Tests.People;

/// <summary>The break-the-glass page's "the access lasts …": any length the options allow (1 minute to 24 hours), read right.</summary>
public sealed class BreakGlassDurationTextTests
{
    [Theory]
    [InlineData(240, "4 hours")]
    [InlineData(60, "1 hour")]
    [InlineData(30, "30 minutes")]
    [InlineData(1, "1 minute")]
    [InlineData(90, "1 hour 30 minutes")]
    [InlineData(1440, "24 hours")]
    public void The_grants_length_reads_as_a_person_says_it(int minutes, string expected) =>
        Assert.Equal(expected, Vauban.Web.Pages.Patients.BreakTheGlassModel.Describe(TimeSpan.FromMinutes(minutes)));
}

/// <summary>The patient search form's identifier: the first 13 characters of a NIR are searched with their key too.</summary>
public sealed class PatientSearchIdentifierTests
{
    [Theory]
    [InlineData("2710644109001", "2710644109001,271064410900112")]
    [InlineData("185052a006084", "185052a006084,185052A00608435")] // Corsica: 2A counts as 19 (97 - 1850519006084 mod 97 = 35)
    [InlineData("271064410900112", "271064410900112")] // a whole NIR: as typed
    [InlineData("IPP-000000001", "IPP-000000001")]     // 13 characters that begin no NIR: as typed
    [InlineData(null, null)]
    public void Thirteen_characters_of_a_NIR_are_searched_with_and_without_their_key(string? typed, string? expected) =>
        Assert.Equal(expected, Vauban.Web.Pages.Patients.PatientSearchModel.WithNirKey(typed));
}
