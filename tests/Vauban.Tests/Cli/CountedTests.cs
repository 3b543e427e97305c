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
