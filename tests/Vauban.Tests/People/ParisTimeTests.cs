// The pages' Paris wall-clock times around the autumn change of time, when 02:00–02:59 comes twice (the last Sunday of
// October: 00:00–00:59 UTC in summer time, then 01:00–01:59 UTC in winter time). Unit tests: no server.
using System.Globalization;
using Vauban.Web;
using Vauban.Web.Pages.Patients;

namespace Vauban.Tests.People;

public sealed class ParisTimeTests
{
    private static DateTimeOffset Utc(string at) => DateTimeOffset.Parse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    private static readonly DateOnly Autumn = new(2026, 10, 25);

    [Fact]
    public void Measures_typed_at_0230_in_the_first_pass_of_the_autumn_change_are_taken_then_not_refused_as_an_hour_ahead()
    {
        // 02:30 summer time is 00:30 UTC; read as winter time (01:30 UTC), "now" was an hour in the future and the nurse was refused.
        var (signs, problem) = VitalSigns.Read(new Dictionary<string, string?> { ["HeartRate"] = "72" }, "2026-10-25", "02:30", Utc("2026-10-25T00:31:00Z"));
        Assert.Null(problem);
        Assert.Equal(Utc("2026-10-25T00:30:00Z"), signs!.Measured);
        // In the second pass, the same words are winter time.
        (signs, problem) = VitalSigns.Read(new Dictionary<string, string?> { ["HeartRate"] = "72" }, "2026-10-25", "02:30", Utc("2026-10-25T01:31:00Z"));
        Assert.Null(problem);
        Assert.Equal(Utc("2026-10-25T01:30:00Z"), signs!.Measured);
    }

    [Fact]
    public void A_time_the_clocks_pass_twice_is_the_second_unless_that_is_after_the_limit_given()
    {
        Assert.Equal(Utc("2026-10-25T01:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(2, 30)));
        Assert.Equal(Utc("2026-10-25T00:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(2, 30), notAfter: Utc("2026-10-25T00:40:00Z")));
        // Both after the limit: still the second (the caller says it is in the future).
        Assert.Equal(Utc("2026-10-25T01:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(2, 30), notAfter: Utc("2026-10-25T00:10:00Z")));
        // A time that comes once is what it is, whatever the limit; one the clocks skip names no instant.
        Assert.Equal(Utc("2026-10-25T02:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(3, 30), notAfter: Utc("2026-10-25T00:00:00Z")));
        Assert.Null(PatientChart.FromParis(new DateOnly(2026, 3, 29), new TimeOnly(2, 30)));
    }
}
