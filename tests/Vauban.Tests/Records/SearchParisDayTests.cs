// Dates and times without a zone are Paris's, stored or searched, over HTTP on both engines: Appointment?date=2026-12-07 is that day
// in Paris (2026-12-06T23:00Z to 2026-12-07T23:00Z), 23 hours the day the clocks go forward and 25 the day they go back; every prefix
// keeps its meaning at the day's edges; a time the clocks show twice is the first, one they skip the instant they jump at; a stored
// date without a time covers Paris's day; _lastUpdated reads its values so too; birth dates, calendar dates, are as they were.
// Before, such values were UTC's: an appointment at 00:30 on the 7th in Paris was found by the 6th.
using Vauban.Tests.Fhir;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public abstract class SearchParisDayTests(Engine engine) : FhirServerTests(engine, new ManualTime(HalfPastMidnightInParis))
{
    /// <summary>00:30 on 7 December 2026 in Paris, 23:30 on the 6th in UTC: the server's clock (_lastUpdated; today for ap).</summary>
    private static readonly DateTimeOffset HalfPastMidnightInParis = new(2026, 12, 6, 23, 30, 0, TimeSpan.Zero);

    private readonly Dictionary<string, string> _labels = new(StringComparer.Ordinal);

    private string? _patient;
    private string? _practitioner;

    /// <summary>Appointments of a patient with a practitioner, each at its start (to the second), labelled.</summary>
    private async Task AppointmentsAsync(params (string Label, string Start)[] appointments)
    {
        _patient ??= (await CreateAsync("Patient", Samples.Patient())).GetProperty("id").GetString()!;
        _practitioner ??= (await CreateAsync("Practitioner", Samples.Practitioner())).GetProperty("id").GetString()!;
        foreach (var (label, start) in appointments)
        {
            var created = await CreateAsync("Appointment", Samples.Appointment("Patient/" + _patient, "Practitioner/" + _practitioner, start));
            _labels[created.GetProperty("id").GetString()!] = label;
        }
    }

    /// <summary>The labels of what the search finds, in order.</summary>
    private async Task<string> FoundAsync(string query) =>
        string.Join(" ", Ids(await SearchAsync(query + (query.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "_count=100")).Select(id => _labels[id]).Order(StringComparer.Ordinal));

    [Fact]
    public async Task An_appointment_at_0030_in_Paris_on_the_7th_is_found_by_the_7th_and_not_by_the_6th()
    {
        await AppointmentsAsync(
            ("seventh", "2026-12-07T00:30:00+01:00"),
            ("sixth", "2026-12-06T23:30:00+01:00"));
        Assert.Equal("seventh", await FoundAsync("Appointment?date=2026-12-07"));
        Assert.Equal("sixth", await FoundAsync("Appointment?date=2026-12-06"));
        // The same written in UTC, and an observation's date: the instant decides, not how it was written.
        await AppointmentsAsync(("seventh-utc", "2026-12-06T23:45:00Z"));
        Assert.Equal("seventh seventh-utc", await FoundAsync("Appointment?date=2026-12-07"));
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Nuit"))).GetProperty("id").GetString()!;
        var observation = (await CreateAsync("Observation", Samples.Observation("Patient/" + patient, effective: "2026-12-07T00:30:00+01:00"))).GetProperty("id").GetString()!;
        Assert.Equal([observation], Ids(await SearchAsync("Observation?date=2026-12-07")));
        Assert.Empty(Ids(await SearchAsync("Observation?date=2026-12-06")));
    }

    [Fact]
    public async Task The_day_the_clocks_go_forward_covers_23_hours_and_the_day_they_go_back_25()
    {
        // 28 March 2027: from 00:00 winter time (23:00 UTC the day before) to 23:59:59 summer time (21:59:59 UTC).
        await AppointmentsAsync(
            ("spring-0", "2027-03-27T22:59:59Z"),
            ("spring-1", "2027-03-27T23:00:00Z"),
            ("spring-2", "2027-03-28T21:59:59Z"),
            ("spring-3", "2027-03-28T22:00:00Z"));
        Assert.Equal("spring-1 spring-2", await FoundAsync("Appointment?date=2027-03-28"));
        Assert.Equal("spring-0", await FoundAsync("Appointment?date=2027-03-27"));
        Assert.Equal("spring-3", await FoundAsync("Appointment?date=2027-03-29"));
        // 25 October 2026: from 00:00 summer time (22:00 UTC the day before) to 23:59:59 winter time (22:59:59 UTC).
        await AppointmentsAsync(
            ("autumn-0", "2026-10-24T21:59:59Z"),
            ("autumn-1", "2026-10-24T22:00:00Z"),
            ("autumn-2", "2026-10-25T22:59:59Z"),
            ("autumn-3", "2026-10-25T23:00:00Z"));
        Assert.Equal("autumn-1 autumn-2", await FoundAsync("Appointment?date=2026-10-25"));
        Assert.Equal("autumn-0", await FoundAsync("Appointment?date=2026-10-24"));
        Assert.Equal("autumn-3", await FoundAsync("Appointment?date=2026-10-26"));
        // A month and a year without a zone are Paris's too: October from 22:00 UTC on 30 September (summer time) to 23:00 UTC on
        // the 31st (winter time); 2026 to 23:00 UTC on 31 December.
        await AppointmentsAsync(
            ("september-end", "2026-09-30T21:59:59Z"),
            ("october-start", "2026-09-30T22:00:00Z"),
            ("october-end", "2026-10-31T22:59:59Z"),
            ("november-start", "2026-10-31T23:00:00Z"),
            ("2027-start", "2026-12-31T23:00:00Z"));
        Assert.Equal("autumn-0 autumn-1 autumn-2 autumn-3 october-end october-start", await FoundAsync("Appointment?date=2026-10"));
        Assert.Equal("november-start october-end", await FoundAsync("Appointment?date=ge2026-10-31&date=lt2026-12"));
        Assert.Equal("2027-start", await FoundAsync("Appointment?date=2027&date=lt2027-01-01T00:00:00Z"));
        Assert.Equal("", await FoundAsync("Appointment?date=2026&date=ge2026-12-31T23:00:00Z"));
    }

    [Fact]
    public async Task Every_prefix_keeps_its_meaning_at_the_edges_of_a_Paris_day()
    {
        // The last second of each Paris day from the 5th to the 8th of December, and the first of the next.
        await AppointmentsAsync(
            ("5-end", "2026-12-05T22:59:59Z"),
            ("6-start", "2026-12-05T23:00:00Z"),
            ("6-end", "2026-12-06T22:59:59Z"),
            ("7-start", "2026-12-06T23:00:00Z"),
            ("7-end", "2026-12-07T22:59:59Z"),
            ("8-start", "2026-12-07T23:00:00Z"),
            ("8-end", "2026-12-08T22:59:59Z"),
            ("9-start", "2026-12-08T23:00:00Z"));

        Assert.Equal("7-end 7-start", await FoundAsync("Appointment?date=eq2026-12-07"));
        Assert.Equal("5-end 6-end 6-start 8-end 8-start 9-start", await FoundAsync("Appointment?date=ne2026-12-07"));
        Assert.Equal("7-end 7-start 8-end 8-start 9-start", await FoundAsync("Appointment?date=ge2026-12-07"));
        Assert.Equal("8-end 8-start 9-start", await FoundAsync("Appointment?date=gt2026-12-07"));
        Assert.Equal("5-end 6-end 6-start", await FoundAsync("Appointment?date=lt2026-12-07"));
        Assert.Equal("5-end 6-end 6-start 7-end 7-start", await FoundAsync("Appointment?date=le2026-12-07"));
        Assert.Equal("8-end 8-start 9-start", await FoundAsync("Appointment?date=sa2026-12-07"));
        Assert.Equal("5-end 6-end 6-start", await FoundAsync("Appointment?date=eb2026-12-07"));
        // ap: today (the 7th in Paris) is 0 days away, so a day either side: the 6th to the 8th in Paris.
        Assert.Equal("6-end 6-start 7-end 7-start 8-end 8-start", await FoundAsync("Appointment?date=ap2026-12-07"));
        // A time without a zone is Paris's: 00:00 on the 7th is 23:00 UTC on the 6th.
        Assert.Equal("7-end 7-start 8-end 8-start 9-start", await FoundAsync("Appointment?date=ge2026-12-07T00:00"));
        Assert.Equal("5-end 6-end 6-start", await FoundAsync("Appointment?date=lt2026-12-07T00:00:00"));
        Assert.Equal("7-start", await FoundAsync("Appointment?date=2026-12-07T00:00"));
        // With a zone, as written.
        Assert.Equal("8-end 8-start 9-start", await FoundAsync("Appointment?date=ge2026-12-07T23:00:00Z"));
        Assert.Equal("7-end 7-start 8-end 8-start 9-start", await FoundAsync("Appointment?date=ge2026-12-07T00:00:00%2B01:00"));
    }

    [Fact]
    public async Task A_time_the_clocks_show_twice_is_the_first_and_one_they_skip_is_the_instant_they_jump_at()
    {
        // 25 October 2026: 02:10 and 02:30 in summer time, then 02:10 and 02:30 again in winter time.
        await AppointmentsAsync(
            ("summer-0210", "2026-10-25T00:10:00Z"),
            ("summer-0230", "2026-10-25T00:30:00Z"),
            ("winter-0210", "2026-10-25T01:10:00Z"),
            ("winter-0230", "2026-10-25T01:30:00Z"));
        Assert.Equal("summer-0230", await FoundAsync("Appointment?date=2026-10-25T02:30"));
        // From the first 02:30: nothing of the hour that comes again is left out.
        Assert.Equal("summer-0230 winter-0210 winter-0230", await FoundAsync("Appointment?date=ge2026-10-25T02:30&date=lt2026-10-26"));
        Assert.Equal("summer-0210", await FoundAsync("Appointment?date=lt2026-10-25T02:30&date=ge2026-10-25"));

        // 28 March 2027: 01:59 winter time, then 03:00 summer time; 02:30 is no time in Paris.
        await AppointmentsAsync(
            ("spring-0159", "2027-03-28T00:59:00Z"),
            ("spring-0300", "2027-03-28T01:00:00Z"));
        Assert.Equal("", await FoundAsync("Appointment?date=2027-03-28T02:30"));
        Assert.Equal("spring-0300", await FoundAsync("Appointment?date=ge2027-03-28T02:30&date=lt2027-03-29"));
        Assert.Equal("spring-0300", await FoundAsync("Appointment?date=gt2027-03-28T02:30&date=lt2027-03-29"));
        Assert.Equal("spring-0159", await FoundAsync("Appointment?date=lt2027-03-28T02:30&date=ge2027-03-28"));
        Assert.Equal("spring-0159", await FoundAsync("Appointment?date=le2027-03-28T02:30&date=ge2027-03-28"));
    }

    [Fact]
    public async Task A_stored_date_without_a_time_covers_the_Paris_day()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient())).GetProperty("id").GetString()!;
        var observation = (await CreateAsync("Observation", Samples.Observation("Patient/" + patient, effective: "2026-12-07"))).GetProperty("id").GetString()!;
        // From 23:00 UTC on the 6th to 22:59:59.999 UTC on the 7th: it began before 23:30 UTC on the 6th, and was over by 23:30 UTC on the 7th.
        Assert.Equal([observation], Ids(await SearchAsync("Observation?date=lt2026-12-06T23:30:00Z")));
        Assert.Empty(Ids(await SearchAsync("Observation?date=gt2026-12-07T23:30:00Z")));
        Assert.Equal([observation], Ids(await SearchAsync("Observation?date=2026-12-07")));
        Assert.Equal([observation], Ids(await SearchAsync("Observation?date=ge2026-12-07T23:30:00%2B01:00")));
    }

    [Fact]
    public async Task LastUpdated_without_a_zone_is_Paris_time()
    {
        // Written at 23:30 UTC on the 6th: 00:30 on the 7th in Paris.
        var patient = (await CreateAsync("Patient", Samples.Patient())).GetProperty("id").GetString()!;
        Assert.Equal([patient], Ids(await SearchAsync("Patient?_lastUpdated=2026-12-07")));
        Assert.Empty(Ids(await SearchAsync("Patient?_lastUpdated=2026-12-06")));
        Assert.Equal([patient], Ids(await SearchAsync("Patient?_lastUpdated=ge2026-12-07T00:00")));
        Assert.Empty(Ids(await SearchAsync("Patient?_lastUpdated=lt2026-12-07T00:30")));
        Assert.Equal([patient], Ids(await SearchAsync("Patient?_lastUpdated=le2026-12-07T00:30")));
    }

    [Fact]
    public async Task Birth_dates_are_calendar_dates_as_they_were()
    {
        // Hashed as the text written (blind index), tiled by calendar days: the 14th is not in "from the 15th", in any zone.
        var fourteenth = (await CreateAsync("Patient", Samples.Patient(family: "Quatorze", birthDate: "1980-06-14", nir: Samples.ValidNir("1800644109001")))).GetProperty("id").GetString()!;
        var fifteenth = (await CreateAsync("Patient", Samples.Patient(family: "Quinze", birthDate: "1980-06-15", nir: Samples.ValidNir("1800644109002")))).GetProperty("id").GetString()!;
        Assert.Equal([fifteenth], Ids(await SearchAsync("Patient?birthdate=1980-06-15")));
        Assert.Equal([fifteenth], Ids(await SearchAsync("Patient?birthdate=ge1980-06-15")));
        Assert.Equal([fifteenth], Ids(await SearchAsync("Patient?birthdate=sa1980-06-14")));
        Assert.Equal([fourteenth], Ids(await SearchAsync("Patient?birthdate=lt1980-06-15")));
        Assert.Equal([fourteenth], Ids(await SearchAsync("Patient?birthdate=le1980-06-14")));
        Assert.Equal([fourteenth], Ids(await SearchAsync("Patient?birthdate=eb1980-06-15")));
    }

    [Fact]
    public async Task A_birth_and_a_record_before_1911_are_found_by_the_same_searches_whatever_the_machine_holds()
    {
        // Paris is UTC+1 before 16 September 1945 on every machine (tzdata's +00:09:21 of Paris's mean time is not taken): the
        // record's 4 March 1905 is from 23:00 UTC on the 3rd to 22:59:59.999 UTC on the 4th on any server.
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Centenaire", birthDate: "1905-03-04", nir: Samples.ValidNir("2050375123301")))).GetProperty("id").GetString()!;
        var record = (await CreateAsync("Observation", Samples.Observation("Patient/" + patient, effective: "1905-03-04"))).GetProperty("id").GetString()!;
        Assert.Equal([patient], Ids(await SearchAsync("Patient?birthdate=1905-03-04")));
        Assert.Equal([patient], Ids(await SearchAsync("Patient?birthdate=1905")));
        Assert.Equal([patient], Ids(await SearchAsync("Patient?birthdate=lt1905-03-05")));
        Assert.Empty(Ids(await SearchAsync("Patient?birthdate=gt1905-03-04")));
        Assert.Equal([record], Ids(await SearchAsync("Observation?date=1905-03-04")));
        Assert.Equal([record], Ids(await SearchAsync("Observation?date=lt1905-03-03T23:30:00Z")));
        Assert.Empty(Ids(await SearchAsync("Observation?date=gt1905-03-04T23:30:00Z")));
        Assert.Empty(Ids(await SearchAsync("Observation?date=lt1905-03-03T23:00:00Z")));
    }
}

public sealed class SearchParisDayTests_Sqlite() : SearchParisDayTests(Engine.Sqlite);

public sealed class SearchParisDayTests_Postgres() : SearchParisDayTests(Engine.Postgres);
