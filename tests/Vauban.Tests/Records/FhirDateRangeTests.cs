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
    [InlineData("2026-02-01T10:00:00", "2026-02-01T10:00:00.000Z", 999)]
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
}
