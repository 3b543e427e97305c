// A practitioner's day over HTTP, on both engines: the appointments of her practitioner record on one Paris day, in order, each
// with its patient, through the records service (its policy, guard and audit); another practitioner's, another day's, are not
// listed; a day that is no date is refused; an account without a practitioner record is told why it has no agenda.
using System.Globalization;
using System.Net;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class AgendaPageTests(Engine engine) : StaffPageTests(engine, "chu-agenda")
{
    private static string Appointment(string patient, string practitioner, string start, int minutes, string status = "booked", string? description = null) =>
        Samples.Appointment("Patient/" + patient, "Practitioner/" + practitioner, start, status)
            .Replace($"\"end\": \"{start}\"", $"\"end\": \"{DateTimeOffset.Parse(start, CultureInfo.InvariantCulture).AddMinutes(minutes).ToUniversalTime():yyyy-MM-dd'T'HH:mm:ss'Z'}\""
                + (description is null ? "" : $", \"description\": \"{description}\""), StringComparison.Ordinal);

    protected override async Task SetUpAsync()
    {
        await CreateAsync("drA", Samples.Practitioner(family: "Auber", rpps: "10001234567"));
        await CreateAsync("drB", Samples.Practitioner(family: "Berthier", rpps: "10001234568"));
        await CreateAsync("rose", Samples.Patient(family: "Rosier", given: "Rose", nir: Samples.ValidNir("2580144109001")));
        await CreateAsync("paul", Samples.Patient(family: "Paulin", given: "Paul", nir: Samples.ValidNir("1800344109002")));
        var today = ParisDay(0);
        // Created out of order: the page orders them by start.
        await CreateAsync("late", Appointment(Ids["paul"], Ids["drA"], At(today, 16, 30), 20, description: "Contrôle tensionnel"));
        await CreateAsync("early", Appointment(Ids["rose"], Ids["drA"], At(today, 8, 15), 30, description: "Suivi de la kaliémie"));
        await CreateAsync("cancelled", Appointment(Ids["paul"], Ids["drA"], At(today, 11, 0), 15, status: "cancelled"));
        await CreateAsync("colleague", Appointment(Ids["rose"], Ids["drB"], At(today, 9, 0), 20));
        await CreateAsync("tomorrow", Appointment(Ids["rose"], Ids["drA"], At(ParisDay(1), 10, 0), 20));
        await EnrolAsync("dr.auber@chu.example", StaffRole.Physician, Ids["drA"]);
    }

    [Fact]
    public async Task A_busy_day_is_listed_ten_at_a_time_and_paged_through_at_once_without_tripping_the_guard()
    {
        // 32 patients in one day: listed whole, they were 32 distinct patients in a minute, beyond the guard's 25 — the physician
        // who opened her agenda was contained. Paged ten at a time, she was still asked to prove both factors again at the second
        // page and contained at the third when she paged within a minute: her own day's list is her work, not a burst (ADR 0008).
        var day = ParisDay(2);
        var text = day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var listed = new List<string>();
        for (var i = 0; i < 32; i++)
        {
            var patient = await Server.CreateAsOperatorAsync(Tenant, Samples.Patient(family: "Affluence" + (char)('a' + (i % 26)), nir: Samples.ValidNir($"1800344{i + 100:D3}{i + 100:D3}")));
            listed.Add(patient);
            await Server.CreateAsOperatorAsync(Tenant, Appointment(patient, Ids["drA"], At(day, 8 + (i / 4), i % 4 * 15), 15));
        }
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var times = new List<string>();
        var url = "/appointments?day=" + text;
        for (var page = 1; url is not null; page++)
        {
            var (response, html) = await doctor.GetAsync(url);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"page {page}: {response.StatusCode} {response.Headers.Location} {StaffClient.ById(html, "error")}");
            var rows = System.Text.RegularExpressions.Regex.Matches(html, "<td class=\"when\">([^<]+)</td>").Select(m => m.Groups[1].Value).ToList();
            Assert.Equal(page < 4 ? 10 : 2, rows.Count);
            times.AddRange(rows);
            url = System.Text.RegularExpressions.Regex.Match(html, "id=\"next-page\" href=\"([^\"]+)\"") is { Success: true } next ? WebUtility.HtmlDecode(next.Groups[1].Value) : null;
        }
        Assert.Equal(Enumerable.Range(0, 32).Select(i => $"{8 + (i / 4):D2}:{i % 4 * 15:D2}"), times);
        // Nor does opening the day's patients, in the same minute.
        foreach (var patient in listed.Take(12))
        {
            using var chart = await doctor.Http.GetAsync("/fhir/Patient/" + patient);
            Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        }
        Time.Advance(TimeSpan.FromSeconds(61));

        // From a time of the day; a time that is none is refused.
        var (_, fromHtml) = await doctor.GetAsync($"/appointments?day={text}&from=14:00");
        Assert.Equal("14:00", System.Text.RegularExpressions.Regex.Match(fromHtml, "<td class=\"when\">([^<]+)</td>").Groups[1].Value);
        Assert.Contains("id=\"start-of-day\"", fromHtml, StringComparison.Ordinal);
        var (bad, badHtml) = await doctor.GetAsync($"/appointments?day={text}&from=25:00");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("Give the time as hours:minutes.", StaffClient.ById(badHtml, "error"));
        // 02:30 on the night the clocks go forward is no time in Paris.
        var (gap, gapHtml) = await doctor.GetAsync("/appointments?day=2027-03-28&from=02:30");
        Assert.Equal(HttpStatusCode.BadRequest, gap.StatusCode);
        Assert.StartsWith("This time does not exist on this day", StaffClient.ById(gapHtml, "error"), StringComparison.Ordinal);

        // A page's link shown under another day would pass its rows for that day's: refused.
        Time.Advance(TimeSpan.FromSeconds(61));
        var (first, firstHtml) = await doctor.GetAsync("/appointments?day=" + text);
        Assert.True(first.StatusCode == HttpStatusCode.OK && firstHtml.Contains("id=\"next-page\"", StringComparison.Ordinal), $"{first.StatusCode} {first.Headers.Location} [{firstHtml.Length}]");
        var link = WebUtility.HtmlDecode(System.Text.RegularExpressions.Regex.Match(firstHtml, "id=\"next-page\" href=\"([^\"]+)\"").Groups[1].Value);
        Time.Advance(TimeSpan.FromSeconds(61));
        var searches = (await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Search)).Count;
        var (other, otherHtml) = await doctor.GetAsync(link.Replace("day=" + text, "day=" + ParisDay(3).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.BadRequest, other.StatusCode);
        Assert.Equal("This page's link is not one of this day's agenda: open the day again.", StaffClient.ById(otherHtml, "error"));
        // Refused before it is followed: its ten patients are not written on the chain as read by her, who was shown none of them.
        Assert.Equal(searches, (await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Search)).Count);
        // Nor is a link that is none.
        var (forged, forgedHtml) = await doctor.GetAsync("/appointments?day=" + text + "&next=not-a-link");
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal("This page's link has expired (a link lasts an hour): open the day again.", StaffClient.ById(forgedHtml, "error"));
        // Nor her own search of that day through the API, as the agenda's but eleven a page: its pages are not the agenda's.
        Time.Advance(TimeSpan.FromSeconds(61));
        string InParis(DateOnly date) => ParisTime.At(date, TimeOnly.MinValue)!.Value.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture);
        using var api = await doctor.Http.GetAsync($"/fhir/Appointment?practitioner=Practitioner/{Ids["drA"]}&date=ge{Uri.EscapeDataString(InParis(day))}"
            + $"&date=lt{Uri.EscapeDataString(InParis(day.AddDays(1)))}&_sort=date&_count=11&_include=Appointment:patient");
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);
        var apiNext = new Uri((await api.BodyAsync()).GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!);
        var token = System.Web.HttpUtility.ParseQueryString(apiNext.Query)["_page"]!;
        Time.Advance(TimeSpan.FromSeconds(61));
        var (theirs, theirsHtml) = await doctor.GetAsync($"/appointments?day={text}&next={Uri.EscapeDataString(token)}");
        Assert.Equal(HttpStatusCode.BadRequest, theirs.StatusCode);
        Assert.Equal("This page's link is not one of this day's agenda: open the day again.", StaffClient.ById(theirsHtml, "error"));

        // Contained (her session suspended: 30 distinct patients in a minute through the API, a week of her appointments — no day's
        // list, and the day's list of over an hour ago), she follows a link that is none: the door's answer (423), not "expired", and
        // the refusal is on the chain.
        for (var i = 0; i < 7; i++)
        {
            Time.Advance(TimeSpan.FromMinutes(9));
            var (idle, _) = await doctor.GetAsync("/appointments?day=2030-01-07"); // a day with nothing: the session is kept, no patient read
            Assert.Equal(HttpStatusCode.OK, idle.StatusCode);
        }
        using (var sweep = await doctor.Http.GetAsync($"/fhir/Appointment?practitioner=Practitioner/{Ids["drA"]}&date=ge{Uri.EscapeDataString(InParis(day))}"
            + $"&date=lt{Uri.EscapeDataString(InParis(day.AddDays(7)))}&_count=30"))
            Assert.Equal((HttpStatusCode)423, sweep.StatusCode);
        var refusals = (await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Containment)).Count;
        var (held, heldHtml) = await doctor.GetAsync("/appointments?day=" + text + "&next=not-a-link");
        Assert.Equal((HttpStatusCode)423, held.StatusCode);
        Assert.DoesNotContain("expired", StaffClient.ById(heldHtml, "error") ?? "", StringComparison.Ordinal);
        Assert.True((await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Containment)).Count > refusals);
    }

    [Fact]
    public async Task From_0230_the_night_the_clocks_go_back_lists_the_hour_from_its_first_0230_and_its_second_pass_whole()
    {
        // 31 October 2027: 02:00–02:59 summer time (00:00–00:59 UTC), then again in winter time (01:00–01:59 UTC). From 02:30 is from
        // the first, as a search's time without a zone is. Taken as the second (01:30 UTC), the list began at 02:30 of the second pass
        // and left out both the first pass's 02:40 and the second pass's 02:10.
        await Server.CreateAsOperatorAsync(Tenant, Appointment(Ids["rose"], Ids["drA"], "2027-10-31T00:10:00Z", 10, description: "Premier passage 02h10"));
        await Server.CreateAsOperatorAsync(Tenant, Appointment(Ids["rose"], Ids["drA"], "2027-10-31T00:40:00Z", 10, description: "Premier passage 02h40"));
        await Server.CreateAsOperatorAsync(Tenant, Appointment(Ids["rose"], Ids["drA"], "2027-10-31T01:10:00Z", 10, description: "Second passage 02h10"));
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (page, html) = await doctor.GetAsync("/appointments?day=2027-10-31&from=02:30");
        Assert.True(page.StatusCode == HttpStatusCode.OK, page.StatusCode + html);
        var listed = System.Text.RegularExpressions.Regex.Matches(html, "<td class=\"when\">([^<]+)</td>").Select(m => m.Groups[1].Value);
        Assert.Equal(["02:40", "02:10"], listed);
        Assert.Contains("Premier passage 02h40", html, StringComparison.Ordinal);
        Assert.Contains("Second passage 02h10", html, StringComparison.Ordinal);
        Assert.DoesNotContain("Premier passage 02h10", html, StringComparison.Ordinal);
        // The whole day: 25 hours, from 00:00 summer time to 23:59 winter time.
        var (_, dayHtml) = await doctor.GetAsync("/appointments?day=2027-10-31");
        Assert.Equal(["02:10", "02:40", "02:10"], System.Text.RegularExpressions.Regex.Matches(dayHtml, "<td class=\"when\">([^<]+)</td>").Select(m => m.Groups[1].Value));
    }

    [Fact]
    public async Task An_appointment_booked_months_ahead_is_on_her_agenda_though_its_patient_is_not_yet_open_to_her()
    {
        // 150 days ahead, beyond the care window's 90: the appointment does not yet open the patient's record to her, but it is
        // hers (it names her). Before, the day showed "no appointment", and the slot looked free.
        var day = ParisDay(150);
        var far = await Server.CreateAsOperatorAsync(Tenant, Samples.Patient(family: "Lointain", given: "Luc"));
        await Server.CreateAsOperatorAsync(Tenant, Appointment(far, Ids["drA"], At(day, 9, 30), 20, description: "Première consultation"));
        await Server.CreateAsOperatorAsync(Tenant, Appointment(far, Ids["drB"], At(day, 10, 0), 20));
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (page, html) = await doctor.GetAsync("/appointments?day=" + day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        Assert.True(page.StatusCode == HttpStatusCode.OK, page.StatusCode + html);
        Assert.Contains($"<a href=\"/patients/{far}\">(not open to you)</a>", html, StringComparison.Ordinal);
        Assert.Contains("Première consultation", html, StringComparison.Ordinal);
        Assert.DoesNotContain("LOINTAIN", html, StringComparison.Ordinal);
        // Her colleague's appointment that day is not hers, and the patient's record stays closed to her.
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(html, "<td class=\"when\">"));
        var (chart, _) = await doctor.GetAsync("/patients/" + far);
        Assert.Equal(HttpStatusCode.Forbidden, chart.StatusCode);
    }

    [Fact]
    public async Task A_physician_sees_her_day_in_order_with_each_patient_and_not_a_colleagues_nor_another_days()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (home, homeHtml) = await doctor.GetAsync("/");
        Assert.Contains("id=\"nav-agenda\"", homeHtml, StringComparison.Ordinal);

        var (today, html) = await doctor.GetAsync("/appointments");
        Assert.True(today.StatusCode == HttpStatusCode.OK, today.StatusCode + html);
        Assert.Equal(ParisDay(0).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), StaffClient.ById(html, "shown-day"));
        var rows = System.Text.RegularExpressions.Regex.Matches(html, "<td class=\"when\">([^<]+)</td><td>([^<]+)</td>\\s*<td>\\s*<a href=\"/patients/([^\"]+)\">([^<]+)</a>\\s*</td>\\s*<td>([^<]*)</td><td>([^<]+)</td>")
            .Select(m => (m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value, m.Groups[4].Value, m.Groups[5].Value, m.Groups[6].Value)).ToList();
        Assert.Equal(
        [
            ("08:15", "30", Ids["rose"], "ROSIER Rose", "Suivi de la kaliémie", "Booked"),
            ("11:00", "15", Ids["paul"], "PAULIN Paul", "", "Cancelled"),
            ("16:30", "20", Ids["paul"], "PAULIN Paul", "Contrôle tensionnel", "Booked"),
        ], rows);

        // Another day by its date; the patients listed are in the audit trail as any search's.
        var (_, tomorrowHtml) = await doctor.GetAsync("/appointments?day=" + ParisDay(1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        Assert.Contains($"href=\"/patients/{Ids["rose"]}\">ROSIER Rose</a>", tomorrowHtml, StringComparison.Ordinal);
        Assert.DoesNotContain("PAULIN", tomorrowHtml, StringComparison.Ordinal);
        var (_, emptyHtml) = await doctor.GetAsync("/appointments?day=" + ParisDay(5).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        Assert.Equal("No appointment on this day.", StaffClient.ById(emptyHtml, "no-appointments"));
        var searches = await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Search);
        Assert.Contains(searches, e => e.Outcome == AuditOutcome.Success && e.Detail.Patient == Ids["paul"]);

        // A day that is no date: 400, said.
        foreach (var day in new[] { "06/12/2026", "demain" })
        {
            var (bad, badHtml) = await doctor.GetAsync("/appointments?day=" + Uri.EscapeDataString(day));
            Assert.True(bad.StatusCode == HttpStatusCode.BadRequest, day + ": " + bad.StatusCode);
            Assert.Equal("Give the day as year-month-day.", StaffClient.ById(badHtml, "error"));
        }
        // Written as asked, and no day: said so.
        foreach (var day in new[] { "2026-13-01", "2026-02-30", "0001-01-01" })
        {
            var (bad, badHtml) = await doctor.GetAsync("/appointments?day=" + day);
            Assert.True(bad.StatusCode == HttpStatusCode.BadRequest, day + ": " + bad.StatusCode);
            Assert.StartsWith("There is no such day", StaffClient.ById(badHtml, "error"), StringComparison.Ordinal);
        }

        // An account without a practitioner record (the front desk) has no agenda, and is told why.
        await EnrolAsync("desk@chu.example", StaffRole.Secretary, null);
        using var desk = await SignedInAsync("desk@chu.example");
        var (_, deskHome) = await desk.GetAsync("/");
        Assert.DoesNotContain("nav-agenda", deskHome, StringComparison.Ordinal);
        var (_, deskHtml) = await desk.GetAsync("/appointments");
        Assert.StartsWith("Your account is not linked to a practitioner record", StaffClient.ById(deskHtml, "error"), StringComparison.Ordinal);
    }
}

public sealed class AgendaPageTests_Sqlite() : AgendaPageTests(Engine.Sqlite);

public sealed class AgendaPageTests_Postgres() : AgendaPageTests(Engine.Postgres);
