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
    public void A_time_the_clocks_pass_twice_is_the_first_unless_the_second_is_not_after_the_limit_given()
    {
        // The first, in summer time, as a search's date without a zone reads it: an agenda from 02:30 starts at the first 02:30.
        Assert.Equal(Utc("2026-10-25T00:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(2, 30)));
        Assert.Equal(TimeSpan.FromHours(2), PatientChart.FromParis(Autumn, new TimeOnly(2, 30))!.Value.Offset);
        // What was just done: the second when it is not after the limit, else the first.
        Assert.Equal(Utc("2026-10-25T01:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(2, 30), notAfter: Utc("2026-10-25T01:40:00Z")));
        Assert.Equal(Utc("2026-10-25T00:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(2, 30), notAfter: Utc("2026-10-25T00:40:00Z")));
        // Both after the limit: the first (the caller says it is in the future).
        Assert.Equal(Utc("2026-10-25T00:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(2, 30), notAfter: Utc("2026-10-25T00:10:00Z")));
        // A time that comes once is what it is, whatever the limit; one the clocks skip names no instant.
        Assert.Equal(Utc("2026-10-25T02:30:00Z"), PatientChart.FromParis(Autumn, new TimeOnly(3, 30), notAfter: Utc("2026-10-25T00:00:00Z")));
        Assert.Null(PatientChart.FromParis(new DateOnly(2026, 3, 29), new TimeOnly(2, 30)));
    }

    [Fact]
    public void An_appointment_booked_at_0230_the_night_the_clocks_go_back_is_at_the_first_0230_the_one_a_search_of_that_time_finds()
    {
        var (booking, problem) = AppointmentBooking.Read("2026-10-25", "02:30", "20", null, "Practitioner/p", Utc("2026-10-01T08:00:00Z"));
        Assert.Null(problem);
        Assert.Equal("2026-10-25T02:30:00+02:00", PatientChart.FhirDateTime(booking!.Start));
        (_, problem) = AppointmentBooking.Read("2026-03-29", "02:30", "20", null, "Practitioner/p", Utc("2026-03-01T08:00:00Z"));
        Assert.Equal("2026-03-29 02:30 does not exist in Paris time: the clocks go forward then. Choose another time.", problem);
    }

    [Fact]
    public void The_first_hour_of_year_1_typed_in_a_form_is_refused_by_the_form_not_a_crash()
    {
        // In Paris (+01:00), 0001-01-01 00:05 is before the first instant DateTimeOffset holds (helper-117: it threw, a 500).
        var (_, problem) = AppointmentBooking.Read("0001-01-01", "00:05", "20", null, "Practitioner/p", Utc("2026-10-01T08:00:00Z"));
        Assert.Equal("This date and time are in the past: an appointment is booked ahead.", problem);
        (_, problem) = VitalSigns.Read(new Dictionary<string, string?> { ["HeartRate"] = "72" }, "0001-01-01", "00:05", Utc("2026-10-25T00:31:00Z"));
        Assert.StartsWith("Measures are recorded here up to", problem, StringComparison.Ordinal);
    }
}
