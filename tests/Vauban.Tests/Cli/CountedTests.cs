// What the command line and the breach's documents say of a count: the noun agrees with it, in English and in French.
namespace Vauban.Tests.Cli;

public sealed class CountedTests
{
    [Theory]
    [InlineData(0, "0 patients")]
    [InlineData(1, "1 patient")]
    [InlineData(2, "2 patients")]
    [InlineData(1100, "1,100 patients")]
    public void English_takes_the_singular_for_one_alone(long count, string expected) =>
        Assert.Equal(expected, Counted.En(count, "patient", "patients"));

    [Theory]
    [InlineData(0, "0 patient")]
    [InlineData(1, "1 patient")]
    [InlineData(2, "2 patients")]
    [InlineData(1100, "1\u202F100 patients")]
    public void French_takes_the_singular_for_zero_and_one_and_groups_thousands_with_a_narrow_space(long count, string expected) =>
        Assert.Equal(expected, Counted.Fr(count, "patient", "patients"));
}

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
