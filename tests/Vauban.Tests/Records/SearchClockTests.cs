// A search reckons "ap" from the records service's day, not from the system clock: a search and the rest of its request
// agree on the date, and a server run with another clock (tests, a replay) widens ap from its own today.
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records.Search;

namespace Vauban.Tests.Records;

public sealed class SearchClockTests
{
    private static (long Low, long High) ApRange(string type, string parameter, string date, DateOnly today)
    {
        using var keys = new TenantKeys(1, 1, new byte[32], new byte[32]);
        var issues = new List<Issue>();
        var query = SearchQuery.Parse(type, [new(parameter, "ap" + date)], keys, lenient: false, issues, today);
        Assert.True(query is not null, string.Join("; ", issues.Select(i => i.Diagnostics)));
        var (_, low, high) = Assert.Single(Assert.Single(query.Clauses).Ranges);
        return (low, high);
    }

    private static long Ms(DateOnly day) => new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).ToUnixTimeMilliseconds();

    [Theory]
    [InlineData("Observation", "date")]
    [InlineData("Encounter", "date")]
    [InlineData("Observation", "_lastUpdated")]
    public void Ap_on_a_date_of_care_is_a_tenth_of_its_distance_from_the_given_today_either_side(string type, string parameter)
    {
        var searched = new DateOnly(2020, 6, 1);
        // 1,000 days before the service's today: 100 days either side of the day.
        var (low, high) = ApRange(type, parameter, "2020-06-01", searched.AddDays(1000));
        Assert.Equal(Ms(searched.AddDays(-100)), low);
        Assert.Equal(Ms(searched.AddDays(101)) - 1, high);
        // The same search on a service whose today is 2,000 days later: 200 days.
        (low, high) = ApRange(type, parameter, "2020-06-01", searched.AddDays(2000));
        Assert.Equal(Ms(searched.AddDays(-200)), low);
        Assert.Equal(Ms(searched.AddDays(201)) - 1, high);
    }
}
