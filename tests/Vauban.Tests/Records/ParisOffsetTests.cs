// Paris's offset before 16 September 1945 is UTC+1 on every machine: tzdata's history (Paris's mean time until 1911, UTC and its
// summer times, the war's offsets) differs from Vauban's own rules (ParisRules, used without tzdata), and a store's index, which
// holds the instants a date without a zone covers, must not depend on which the machine has (ADR 0013). The values below (and
// FhirDateRangeTests' dates before 1945) are what a machine without tzdata gives; a machine with it gives the same. Unit tests:
// no server.
using System.Globalization;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public sealed class ParisOffsetTests
{
    [Fact]
    public void A_page_shows_an_instant_before_September_1945_at_UTC_plus_1_whatever_the_machine_holds()
    {
        // Paris's mean time (tzdata: +00:09:21), UTC in a winter of 1911–1940, the war's summer time: each +01:00, the date's
        // midnight at the instant its range starts (FhirDateRangeTests).
        Assert.Equal("1905-03-04T00:00:00+01:00", Shown("1905-03-03T23:00:00Z"));
        Assert.Equal("1930-01-15T00:00:00+01:00", Shown("1930-01-14T23:00:00Z"));
        Assert.Equal("1942-07-01T00:00:00+01:00", Shown("1942-06-30T23:00:00Z"));

        static string Shown(string utc) =>
            ParisTime.Of(DateTimeOffset.Parse(utc, CultureInfo.InvariantCulture)).ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture);
    }

    [TzdataFact]
    public void Paris_offset_is_the_same_with_the_machine_tzdata_and_without_it_every_hour_from_1850_to_2100()
    {
        var differences = new List<DateTime>();
        for (var at = new DateTime(1850, 1, 1, 0, 0, 0, DateTimeKind.Utc); at < new DateTime(2100, 1, 1, 0, 0, 0, DateTimeKind.Utc); at = at.AddHours(1))
        {
            var ms = new DateTimeOffset(at).ToUnixTimeMilliseconds();
            if (ParisTime.OffsetMilliseconds(ms, Tzdata.Paris!) != ParisTime.OffsetMilliseconds(ms, ParisRules.Zone)) differences.Add(at);
        }
        Assert.Empty(differences);
    }
}
