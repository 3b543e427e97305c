// Vauban's own copy of Paris's rules (ParisRules), used on a machine without time-zone data: a store's index holds the instants
// each date without a zone covers, so two servers, one with tzdata and one without, must read them alike. The changes are checked
// at their minute everywhere; the comparison with the machine's tzdata, hour by hour, where the machine has it (skipped, saying
// so, where it has not). Unit tests: no server.
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public sealed class ParisRulesTests
{
    [TzdataFact]
    public void Vauban_rules_give_Paris_offset_of_tzdata_every_hour_from_September_1945_to_2100()
    {
        var tzdata = Tzdata.Paris!;
        var differences = new List<DateTime>();
        for (var at = new DateTime(1945, 9, 16, 1, 0, 0, DateTimeKind.Utc); at < new DateTime(2100, 1, 1, 0, 0, 0, DateTimeKind.Utc); at = at.AddHours(1))
        {
            if (ParisRules.Zone.GetUtcOffset(at) != tzdata.GetUtcOffset(at)) differences.Add(at);
        }
        Assert.Empty(differences);
    }

    [Theory]
    // The first instant of summer time and the first of winter time, and the instants just before them (as tzdata has them: the
    // hourly comparison above checks every other hour where the machine has tzdata).
    [InlineData("1976-03-28T00:00:00Z", 2)]
    [InlineData("1976-09-25T23:00:00Z", 1)]
    [InlineData("1978-10-01T01:00:00Z", 1)]
    [InlineData("1995-09-24T01:00:00Z", 1)]
    [InlineData("1996-10-27T01:00:00Z", 1)]
    [InlineData("2027-03-28T01:00:00Z", 2)]
    [InlineData("2027-10-31T01:00:00Z", 1)]
    public void Each_change_is_at_its_minute(string change, int hoursAfter)
    {
        var at = DateTimeOffset.Parse(change, System.Globalization.CultureInfo.InvariantCulture).UtcDateTime;
        Assert.Equal(TimeSpan.FromHours(hoursAfter), ParisRules.Zone.GetUtcOffset(at));
        Assert.Equal(TimeSpan.FromHours(3 - hoursAfter), ParisRules.Zone.GetUtcOffset(at.AddMinutes(-1)));
    }
}
