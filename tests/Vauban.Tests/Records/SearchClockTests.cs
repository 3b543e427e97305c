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

    /// <summary>Midnight in Paris at the start of <paramref name="day"/>.</summary>
    private static long Ms(DateOnly day) => ParisTime.At(day, TimeOnly.MinValue)!.Value.ToUnixTimeMilliseconds();

    [Theory]
    [InlineData("Observation", "date")]
    [InlineData("Encounter", "date")]
    [InlineData("Observation", "_lastUpdated")]
    public void Ap_on_a_date_of_care_is_a_tenth_of_its_distance_from_the_given_today_either_side(string type, string parameter)
    {
        var searched = new DateOnly(2020, 6, 1);
        // 1,000 days before the service's today: 100 days either side of the day, Paris's days (from 22 February in winter time
        // to 9 September in summer time).
        var (low, high) = ApRange(type, parameter, "2020-06-01", searched.AddDays(1000));
        Assert.Equal(Ms(searched.AddDays(-100)), low);
        Assert.Equal(Ms(searched.AddDays(101)) - 1, high);
        // The same search on a service whose today is 2,000 days later: 200 days.
        (low, high) = ApRange(type, parameter, "2020-06-01", searched.AddDays(2000));
        Assert.Equal(Ms(searched.AddDays(-200)), low);
        Assert.Equal(Ms(searched.AddDays(201)) - 1, high);
    }

    [Fact]
    public void Ap_widens_by_days_of_Paris_calendar_across_a_change_of_time()
    {
        // A day either side of 29 March 2027: from midnight on the 28th, a day of 23 hours (24 hours before the 29th was 23:00 on
        // the 27th), to midnight on the 31st.
        var (low, high) = ApRange("Observation", "date", "2027-03-29", new DateOnly(2027, 3, 30));
        Assert.Equal(Ms(new DateOnly(2027, 3, 28)), low);
        Assert.Equal(Ms(new DateOnly(2027, 3, 31)) - 1, high);
        Assert.Equal(TimeSpan.FromHours(71), TimeSpan.FromMilliseconds(high + 1 - low));
    }

    [Fact]
    public void Ap_reckons_its_margin_from_the_day_of_the_date_in_Paris()
    {
        // 13 December is 19 days before New Year's Day: a day either side. Reckoned from the UTC date of its first instant (23:00 UTC
        // on the 12th), 20 days made it two.
        var (low, high) = ApRange("Observation", "date", "2026-12-13", new DateOnly(2027, 1, 1));
        Assert.Equal(Ms(new DateOnly(2026, 12, 12)), low);
        Assert.Equal(Ms(new DateOnly(2026, 12, 15)) - 1, high);
    }
}
