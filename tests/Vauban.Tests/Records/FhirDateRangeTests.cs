using System.Text;
using Vauban.Fhir.Validation;
using Vauban.Records;

namespace Vauban.Tests.Records;

public sealed class FhirDateRangeTests
{
    private static long Ms(string utc) => DateTimeOffset.Parse(utc, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();

    [Theory]
    // Every value the validator lets in must be indexed: a dateTime the index cannot read escapes date search and, on a
    // CareTeam, would count as a care relationship without end.
    [InlineData("2026-02-01T10:00:00.12345678Z", "2026-02-01T10:00:00.123Z", 0)]
    [InlineData("2026-02-01T10:00:00.1Z", "2026-02-01T10:00:00.100Z", 0)]
    [InlineData("2026-02-01T10:00:00Z", "2026-02-01T10:00:00.000Z", 999)]
    [InlineData("2026-02-01T10:00:00+01:00", "2026-02-01T09:00:00.000Z", 999)]
    [InlineData("2026-02-01T10:00:00-14:00", "2026-02-02T00:00:00.000Z", 999)]
    [InlineData("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999Z", 0)]
    [InlineData("2016-12-31T23:59:60.5Z", "2016-12-31T23:59:59.999Z", 0)]
    [InlineData("2026-02-01T10:00Z", "2026-02-01T10:00:00.000Z", 59_999)]
    // Without a zone, Paris's clocks: winter time, summer time.
    [InlineData("2026-02-01T10:00:00", "2026-02-01T09:00:00.000Z", 999)]
    [InlineData("2026-07-14T10:00", "2026-07-14T08:00:00.000Z", 59_999)]
    [InlineData("2026-12-07T00:30:00.250", "2026-12-06T23:30:00.250Z", 0)]
    public void A_time_is_read_to_the_millisecond_it_starts_and_the_span_it_covers(string text, string start, long span)
    {
        Assert.True(FhirDateRange.TryParse(text, out var low, out var high, out var precision));
        Assert.Equal(DatePrecision.Time, precision);
        Assert.Equal(Ms(start), low);
        Assert.Equal(span, high - low);
    }

    [Fact]
    public void Moments_beyond_the_edges_of_DateTime_once_in_UTC_are_counted_not_refused()
    {
        Assert.True(FhirDateRange.TryParse("0001-01-01T00:00:00+01:00", out var low, out _, out _));
        Assert.Equal(Ms("0001-01-01T00:00:00Z") - 3_600_000, low);
        Assert.True(FhirDateRange.TryParse("9999-12-31T23:59:59-01:00", out low, out var high, out _));
        Assert.Equal(Ms("9999-12-31T23:59:59Z") + 3_600_000, low);
        Assert.Equal(low + 999, high);
    }

    [Theory]
    [InlineData("2026-02-01T24:00:00Z")]
    [InlineData("2026-02-01T10:60:00Z")]
    [InlineData("2026-02-01T10:00:61Z")]
    [InlineData("2026-02-01T10:00:00.Z")]
    [InlineData("2026-02-01T10:00:00+15:00")]
    [InlineData("2026-02-01T10:00:00+14:30")]
    [InlineData("2026-02-01T10:00:00+0100")]
    [InlineData("2026-02-01T10:00:00ZZ")]
    [InlineData("2026-02-01T1:00:00Z")]
    [InlineData("2026-02-01T")]
    [InlineData("2026-02-30T10:00:00Z")]
    public void A_malformed_time_is_refused(string text) => Assert.False(FhirDateRange.TryParse(text, out _, out _, out _));

    [Fact]
    public void Every_dateTime_and_instant_the_validator_accepts_is_indexable()
    {
        string[] dates = ["0001-01-01", "1980-02-29", "2026-06-15", "9999-12-31"];
        string[] times = ["00:00:00", "12:34:56", "23:59:59", "23:59:60", "07:30:00.1", "07:30:00.123456789012"];
        string[] zones = ["Z", "+00:00", "-00:00", "+01:00", "-01:00", "+14:00", "-14:00", "+05:45", "-09:30"];
        var checkedValues = 0;
        foreach (var value in dates.SelectMany(d => times.SelectMany(t => zones.Select(z => $"{d}T{t}{z}"))).Concat(["0001", "9999-12", "2024-02-29"]))
        {
            Assert.True(PrimitiveFormats.IsDateTime(Encoding.UTF8.GetBytes(value)), value);
            Assert.True(FhirDateRange.TryParse(value, out var low, out var high, out _), value);
            Assert.True(low <= high, value);
            checkedValues++;
        }

        Assert.Equal((dates.Length * times.Length * zones.Length) + 3, checkedValues);
    }

    [Theory]
    // A date, a month or a year without a zone is Paris's: from its midnight to the next (FHIR R4 search lets a server apply its zone).
    [InlineData("2026-12-07", "2026-12-06T23:00:00Z", "2026-12-07T23:00:00Z")]
    [InlineData("2026-07-14", "2026-07-13T22:00:00Z", "2026-07-14T22:00:00Z")]
    [InlineData("2026-12", "2026-11-30T23:00:00Z", "2026-12-31T23:00:00Z")]
    [InlineData("2027-03", "2027-02-28T23:00:00Z", "2027-03-31T22:00:00Z")]
    [InlineData("2026", "2025-12-31T23:00:00Z", "2026-12-31T23:00:00Z")]
    // The days the clocks change: 23 hours in spring, 25 in autumn.
    [InlineData("2027-03-28", "2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z")]
    [InlineData("2026-10-25", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")]
    // 1976's changes were at 01:00 (summer time until 01:00 on 26 September, 00:00–00:59 then came twice): the day starts at the first midnight.
    [InlineData("1976-09-26", "1976-09-25T22:00:00Z", "1976-09-26T23:00:00Z")]
    // Before 16 September 1945 UTC+1 on every machine, whatever its tzdata says (ParisOffsetTests): Paris's mean time, UTC in the
    // winters of 1911–1940, the war's summer time, the day the clocks were set to UTC+1 (02:00–02:59 came twice, at +02:00 first).
    [InlineData("1905-03-04", "1905-03-03T23:00:00Z", "1905-03-04T23:00:00Z")]
    [InlineData("1930-01-15", "1930-01-14T23:00:00Z", "1930-01-15T23:00:00Z")]
    [InlineData("1942-07-01", "1942-06-30T23:00:00Z", "1942-07-01T23:00:00Z")]
    [InlineData("1945-09-16", "1945-09-15T23:00:00Z", "1945-09-16T23:00:00Z")]
    [InlineData("1900", "1899-12-31T23:00:00Z", "1900-12-31T23:00:00Z")]
    public void A_date_without_a_zone_covers_Paris_day_month_or_year(string text, string start, string next)
    {
        Assert.True(FhirDateRange.TryParse(text, out var low, out var high, out _));
        Assert.Equal(Ms(start), low);
        Assert.Equal(Ms(next) - 1, high);
    }

    [Fact]
    public void The_day_the_clocks_go_forward_is_23_hours_and_the_day_they_go_back_25()
    {
        Assert.True(FhirDateRange.TryParse("2027-03-28", out var low, out var high, out _));
        Assert.Equal(TimeSpan.FromHours(23), TimeSpan.FromMilliseconds(high + 1 - low));
        Assert.True(FhirDateRange.TryParse("2027-10-31", out low, out high, out _));
        Assert.Equal(TimeSpan.FromHours(25), TimeSpan.FromMilliseconds(high + 1 - low));
    }

    [Fact]
    public void A_time_the_clocks_show_twice_is_the_first_in_summer_time()
    {
        // 25 October 2026: 02:00–02:59 summer time (00:00–00:59 UTC), then again in winter time (01:00–01:59 UTC).
        Assert.True(FhirDateRange.TryParse("2026-10-25T02:30", out var low, out var high, out _));
        Assert.Equal(Ms("2026-10-25T00:30:00Z"), low);
        Assert.Equal(59_999, high - low);
        Assert.True(FhirDateRange.TryParse("2026-10-25T02:00:00", out low, out _, out _));
        Assert.Equal(Ms("2026-10-25T00:00:00Z"), low);
        // The hours each side come once.
        Assert.True(FhirDateRange.TryParse("2026-10-25T01:59:59", out low, out _, out _));
        Assert.Equal(Ms("2026-10-24T23:59:59Z"), low);
        Assert.True(FhirDateRange.TryParse("2026-10-25T03:00:00", out low, out _, out _));
        Assert.Equal(Ms("2026-10-25T02:00:00Z"), low);
    }

    [Fact]
    public void A_time_the_clocks_skip_is_the_instant_they_jump_at_and_covers_no_time()
    {
        // 28 March 2027: 01:59:59 winter time (00:59:59 UTC) is followed by 03:00:00 summer time (01:00:00 UTC).
        var jump = Ms("2027-03-28T01:00:00Z");
        foreach (var text in (string[])["2027-03-28T02:00", "2027-03-28T02:30", "2027-03-28T02:59:59.999"])
        {
            Assert.True(FhirDateRange.TryParse(text, out var low, out var high, out _), text);
            Assert.Equal(jump, low);
            Assert.Equal(jump - 1, high); // empty: eq finds nothing, lt/le are before the jump, ge/gt from it
        }
        Assert.True(FhirDateRange.TryParse("2027-03-28T01:59:59", out var before, out _, out _));
        Assert.Equal(Ms("2027-03-28T00:59:59Z"), before);
        Assert.True(FhirDateRange.TryParse("2027-03-28T03:00", out var after, out _, out _));
        Assert.Equal(jump, after);
    }

    [Fact]
    public void Paris_years_at_the_edges_of_the_calendar_are_counted_not_refused()
    {
        Assert.True(FhirDateRange.TryParse("0001", out var low, out var high, out _));
        Assert.True(low < Ms("0001-01-01T00:00:00Z") && high > low);
        Assert.True(FhirDateRange.TryParse("9999-12-31", out low, out high, out _));
        Assert.Equal(Ms("9999-12-30T23:00:00Z"), low);
        Assert.Equal(Ms("9999-12-31T23:00:00Z") - 1, high);
        Assert.True(FhirDateRange.TryParse("9999-12-31T23:59:59", out low, out _, out _));
        Assert.Equal(Ms("9999-12-31T22:59:59Z"), low);
    }

    [Theory]
    [InlineData("1980", "1980-01-01", "1980-12-31")]
    [InlineData("1980-02", "1980-02-01", "1980-02-29")]
    [InlineData("1980-06-15", "1980-06-15", "1980-06-15")]
    [InlineData("9999-12", "9999-12-01", "9999-12-31")]
    public void A_date_read_as_calendar_days_has_no_zone(string text, string first, string last)
    {
        // A birth date is the day written, whatever the zone: its blind index hashes the text, and its ranges tile these days.
        Assert.True(FhirDateRange.TryParseDays(text, out var from, out var to));
        Assert.Equal(DateOnly.Parse(first, System.Globalization.CultureInfo.InvariantCulture), from);
        Assert.Equal(DateOnly.Parse(last, System.Globalization.CultureInfo.InvariantCulture), to);
        Assert.False(FhirDateRange.TryParseDays(text + "T10:00:00Z", out _, out _));
    }
}
