// A search's "today" is the day in Paris by the server's clock, as the pages' is: between midnight in Paris and midnight UTC
// (22:00 or 23:00 to 24:00 UTC) UTC's date is still yesterday. At 00:30 on New Year's Day in Paris a child born ten minutes
// ago was past the last year a birth-date search covered, and ap was reckoned a day short.
using Vauban.Tests.Fhir;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public abstract class SearchCalendarTests(Engine engine) : FhirServerTests(engine, new ManualTime(NewYearInParis))
{
    /// <summary>00:30 on 1 January 2027 in Paris, 23:30 on 31 December 2026 in UTC.</summary>
    private static readonly DateTimeOffset NewYearInParis = new(2026, 12, 31, 23, 30, 0, TimeSpan.Zero);

    private async Task<string> IdOfAsync(string type, string json) => (await CreateAsync(type, json)).GetProperty("id").GetString()!;

    private async Task<List<string>> FoundAsync(string query) => Ids(await SearchAsync(query));

    [Fact]
    public async Task A_child_born_after_midnight_in_Paris_is_found_by_a_search_on_today_before_midnight_UTC()
    {
        var newborn = await IdOfAsync("Patient", Samples.Patient("Lefebvre", "Léa", birthDate: "2027-01-01", nir: Samples.ValidNir("2270144109123")));
        var elder = await IdOfAsync("Patient", Samples.Patient("Lefebvre", "Paul", birthDate: "2026-12-30", nir: Samples.ValidNir("1261244109123")));

        Assert.Equal([newborn], await FoundAsync("Patient?birthdate=ge2027-01-01"));
        Assert.Equal([newborn], await FoundAsync("Patient?birthdate=gt2026-12-31"));
        Assert.Contains(newborn, await FoundAsync("Patient?birthdate=ap2027-01-01"));
        Assert.DoesNotContain(elder, await FoundAsync("Patient?birthdate=ge2027-01-01"));
    }

    [Fact]
    public async Task Ap_on_a_date_of_care_widens_by_a_tenth_of_the_days_since_that_date_in_Paris()
    {
        var patient = await IdOfAsync("Patient", Samples.Patient());
        // 2026-12-12 is 20 days before 2027-01-01 (Paris's today): ap widens it by 2 days either side, to 10 to 14 December.
        // Reckoned from UTC's today (19 days) it was 1 day, and the 10th was missed.
        var tenth = await IdOfAsync("Observation", Samples.Observation("Patient/" + patient, effective: "2026-12-10"));
        var seventh = await IdOfAsync("Observation", Samples.Observation("Patient/" + patient, effective: "2026-12-07"));

        var found = await FoundAsync("Observation?date=ap2026-12-12");
        Assert.Contains(tenth, found);
        Assert.DoesNotContain(seventh, found);
    }
}

public sealed class SearchCalendarTests_Sqlite() : SearchCalendarTests(Engine.Sqlite);

public sealed class SearchCalendarTests_Postgres() : SearchCalendarTests(Engine.Postgres);
