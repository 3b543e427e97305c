// The front desk's agenda over HTTP, on both engines: a secretary of a service chooses a practitioner of her service and sees that
// practitioner's day — every appointment, each patient named, whatever the rule of care says of the patient (ADR 0006, revised
// 2026-12-07) — through the records service, each patient audited as a search's; a practitioner of another service, one whose role
// in her service is inactive, or an id of another establishment is refused, and through the API such a search stays under the
// rule of care. The total is said on every page of a day.
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class AgendaDeskTests(Engine engine) : StaffPageTests(engine, "chu-agenda-desk")
{
    private const string Desk = "cardio.desk@chu.example";
    private const string Doctor = "dr.auber@chu.example";

    private static string Text(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static string Role(string practitioner, string organization, bool active = true) => $$"""
        { "resourceType": "PractitionerRole", "active": {{(active ? "true" : "false")}},
          "practitioner": { "reference": "Practitioner/{{practitioner}}" }, "organization": { "reference": "Organization/{{organization}}" },
          "specialty": [{ "text": "Cardiologie" }] }
        """;

    private static string Appointment(string patient, string practitioner, string start, string? description = null) =>
        Samples.Appointment("Patient/" + patient, "Practitioner/" + practitioner, start)
            .Replace("\"status\": \"booked\"", "\"status\": \"booked\"" + (description is null ? "" : $", \"description\": \"{description}\""), StringComparison.Ordinal);

    protected override async Task SetUpAsync()
    {
        await CreateAsync("cardio", """{"resourceType":"Organization","name":"Cardiologie"}""");
        await CreateAsync("neuro", """{"resourceType":"Organization","name":"Neurologie"}""");
        await CreateAsync("drA", Samples.Practitioner(family: "Auber", rpps: "10001234567"));
        await CreateAsync("drB", Samples.Practitioner(family: "Berthier", rpps: "10001234568"));
        await CreateAsync("drC", Samples.Practitioner(family: "Carnot", rpps: "10001234569"));
        await CreateAsync("roleA", Role(Ids["drA"], Ids["cardio"]));
        await CreateAsync("roleB", Role(Ids["drB"], Ids["neuro"]));
        await CreateAsync("roleC", Role(Ids["drC"], Ids["cardio"], active: false));
        await CreateAsync("rose", Samples.Patient(family: "Rosier", given: "Rose", nir: Samples.ValidNir("2580144109001")));
        await CreateAsync("paul", Samples.Patient(family: "Paulin", given: "Paul", nir: Samples.ValidNir("1800344109002")));
        var today = ParisDay(1);
        // Neither patient has any record naming the cardiology service: under the rule of care the desk sees none of these.
        await CreateAsync("a1", Appointment(Ids["rose"], Ids["drA"], At(today, 9, 0), "Suivi de la kaliémie"));
        await CreateAsync("a2", Appointment(Ids["paul"], Ids["drA"], At(today, 10, 30)));
        await CreateAsync("b1", Appointment(Ids["paul"], Ids["drB"], At(today, 11, 0), "Céphalées"));
        await CreateAsync("c1", Appointment(Ids["rose"], Ids["drC"], At(today, 14, 0)));
        Secrets[Desk] = await StaffClient.EnrolledAsync(Server, Tenant, Desk, StaffRole.Secretary, null, Password, Time, Ids["cardio"]);
        await EnrolAsync(Doctor, StaffRole.Physician, Ids["drA"]);
    }

    private static List<string> Times(string html) => [.. Regex.Matches(html, "<td class=\"when\">([^<]+)</td>").Select(m => m.Groups[1].Value)];

    private static List<string> Options(string html)
    {
        var start = html.IndexOf("id=\"practitioner\"", StringComparison.Ordinal);
        return start < 0 ? [] : [.. Regex.Matches(html[start..html.IndexOf("</select>", start, StringComparison.Ordinal)], "<option value=\"([^\"]*)\"").Select(m => m.Groups[1].Value)];
    }

    [Fact]
    public async Task The_desk_chooses_a_practitioner_of_her_service_and_sees_her_whole_day_each_patient_audited()
    {
        using var desk = await SignedInAsync(Desk);
        var (_, home) = await desk.GetAsync("/");
        Assert.Contains("id=\"nav-agenda\"", home, StringComparison.Ordinal);

        // Without a choice, no one's day: the practitioners of her service are offered (not the neurologist, not the one whose
        // role in the service is inactive).
        var (first, firstHtml) = await desk.GetAsync("/appointments");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("Choose the practitioner whose appointments to show.", StaffClient.ById(firstHtml, "choose-practitioner"));
        Assert.Equal(["", Ids["drA"]], Options(firstHtml));
        Assert.Empty(Times(firstHtml));

        var day = Text(ParisDay(1));
        var (shown, html) = await desk.GetAsync($"/appointments?day={day}&practitioner={Ids["drA"]}");
        Assert.True(shown.StatusCode == HttpStatusCode.OK, shown.StatusCode + StaffClient.ById(html, "error"));
        Assert.Equal("AUBER Claire", StaffClient.ById(html, "shown-practitioner"));
        Assert.Equal(["09:00", "10:30"], Times(html));
        Assert.Contains($"href=\"/patients/{Ids["rose"]}\">ROSIER Rose</a>", html, StringComparison.Ordinal);
        Assert.Contains($"href=\"/patients/{Ids["paul"]}\">PAULIN Paul</a>", html, StringComparison.Ordinal);
        Assert.Contains("Suivi de la kaliémie", html, StringComparison.Ordinal);
        Assert.Equal("2", StaffClient.ById(html, "total"));
        // Her colleague's day is no day of hers to cancel from: no Cancel button.
        Assert.DoesNotContain("Cancel…", html, StringComparison.Ordinal);
        // The next day's link keeps the practitioner.
        Assert.Contains($"id=\"next-day\" href=\"/appointments?day={Text(ParisDay(2))}&amp;practitioner={Ids["drA"]}\"", html, StringComparison.Ordinal);
        var searches = await Server.AuditEntriesOfAsync(Tenant, Desk, AuditAction.Search);
        Assert.Contains(searches, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Appointment" && e.Detail.Patient == Ids["rose"]);
        Assert.Contains(searches, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Appointment" && e.Detail.Patient == Ids["paul"]);

        // The same question through the API is answered the same way: the service's practitioner's schedule.
        using var api = await desk.Http.GetAsync($"/fhir/Appointment?practitioner=Practitioner/{Ids["drA"]}&_total=accurate");
        Assert.Equal(2, (await api.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task A_forged_practitioner_of_another_service_or_establishment_shows_no_day_and_the_API_keeps_the_rule_of_care()
    {
        using var desk = await SignedInAsync(Desk);
        var day = Text(ParisDay(1));
        var before = (await Server.AuditEntriesOfAsync(Tenant, Desk, AuditAction.Search)).Count(e => e.ResourceType == "Appointment");
        var other = await Server.Store.Tenants.AddAsync("chu-ailleurs", CancellationToken.None);
        var elsewhere = await Server.CreateAsOperatorAsync(other, Samples.Practitioner(family: "Ailleurs", rpps: "10001234570"));
        foreach (var forged in new[] { Ids["drB"], Ids["drC"], elsewhere, "no-such-id", "../patients" })
        {
            var (response, html) = await desk.GetAsync($"/appointments?day={day}&practitioner={Uri.EscapeDataString(forged)}");
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, forged + ": " + response.StatusCode);
            Assert.Equal("No practitioner of your service has this id: choose one in the list.", StaffClient.ById(html, "error"));
            Assert.Empty(Times(html));
        }
        // No appointment was searched: none of their patients is on the chain as read by her.
        Assert.Equal(before, (await Server.AuditEntriesOfAsync(Tenant, Desk, AuditAction.Search)).Count(e => e.ResourceType == "Appointment"));

        // Through the API, another service's practitioner is searched under the rule of care: nothing of a patient her service
        // has no relationship with. Nor an inactive member's.
        foreach (var practitioner in new[] { Ids["drB"], Ids["drC"] })
        {
            using var api = await desk.Http.GetAsync($"/fhir/Appointment?practitioner=Practitioner/{practitioner}&_total=accurate");
            Assert.Equal(HttpStatusCode.OK, api.StatusCode);
            Assert.Equal(0, (await api.BodyAsync()).GetProperty("total").GetInt32());
        }
        // Nor two practitioners at once, one of hers: every match must name her service's.
        using (var both = await desk.Http.GetAsync($"/fhir/Appointment?practitioner=Practitioner/{Ids["drA"]},Practitioner/{Ids["drB"]}&_total=accurate"))
            Assert.Equal(0, (await both.BodyAsync()).GetProperty("total").GetInt32());

        // A physician keeps her own agenda: another's, asked by hand, is refused.
        using var doctor = await SignedInAsync(Doctor);
        var (mine, mineHtml) = await doctor.GetAsync($"/appointments?day={day}");
        Assert.Equal(["09:00", "10:30"], Times(mineHtml));
        Assert.DoesNotContain("id=\"practitioner\"", mineHtml, StringComparison.Ordinal);
        var (theirs, theirsHtml) = await doctor.GetAsync($"/appointments?day={day}&practitioner={Ids["drB"]}");
        Assert.Equal(HttpStatusCode.NotFound, theirs.StatusCode);
        Assert.StartsWith("You see your own agenda", StaffClient.ById(theirsHtml, "error"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_total_is_said_on_every_page_of_a_day_and_of_a_day_from_a_time()
    {
        // 23 appointments of the practitioner on one day: three pages, each saying 23; from 11:00, 11, on both its pages.
        var day = ParisDay(2);
        for (var i = 0; i < 23; i++)
        {
            var patient = await Server.CreateAsOperatorAsync(Tenant, Samples.Patient(family: "Affluence" + (char)('a' + i), nir: Samples.ValidNir($"1800344{i + 100:D3}{i + 100:D3}")));
            await Server.CreateAsOperatorAsync(Tenant, Appointment(patient, Ids["drA"], At(day, 8 + (i / 4), i % 4 * 15)));
        }
        using var doctor = await SignedInAsync(Doctor);
        foreach (var (from, total, pages) in new[] { ("", "23", new[] { 10, 10, 3 }), ("&from=11:00", "11", new[] { 10, 1 }) })
        {
            var url = $"/appointments?day={Text(day)}{from}";
            var counts = new List<int>();
            while (url is not null)
            {
                Time.Advance(TimeSpan.FromSeconds(61));
                var (response, html) = await doctor.GetAsync(url);
                Assert.True(response.StatusCode == HttpStatusCode.OK, response.StatusCode + StaffClient.ById(html, "error"));
                Assert.Equal(total, StaffClient.ById(html, "total"));
                // A later page says the span it counts: from the time the listing started.
                if (from.Length > 0) Assert.Contains(" from 11:00", html, StringComparison.Ordinal);
                counts.Add(Times(html).Count);
                url = Regex.Match(html, "id=\"next-page\" href=\"([^\"]+)\"") is { Success: true } next ? WebUtility.HtmlDecode(next.Groups[1].Value) : null;
            }
            Assert.Equal(pages, counts);
        }
    }
}

public sealed class AgendaDeskTests_Sqlite() : AgendaDeskTests(Engine.Sqlite);

public sealed class AgendaDeskTests_Postgres() : AgendaDeskTests(Engine.Postgres);
