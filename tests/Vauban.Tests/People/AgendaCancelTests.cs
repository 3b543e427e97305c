// Cancelling from the agenda, over HTTP, on both engines: a practitioner cancels an appointment of her day from her agenda with
// a reason, through the records service (its policy, guard and audit) — including the one she booked for a patient whose care
// relationship has lapsed since, whose chart is closed to her (ADR 0006: the booking is hers to cancel, and the agenda was the one
// page that still listed it). What is past, already cancelled or another practitioner's is not cancelled from her page.
using System.Globalization;
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class AgendaCancelTests(Engine engine) : StaffPageTests(engine, "chu-agenda-cancel")
{
    private const string Doctor = "dr.auber@chu.example";

    private static string Text(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    protected override async Task SetUpAsync()
    {
        await CreateAsync("drA", Samples.Practitioner(family: "Auber", rpps: "10001234567"));
        await CreateAsync("drB", Samples.Practitioner(family: "Berthier", rpps: "10001234568"));
        await CreateAsync("rose", Samples.Patient(family: "Rosier", given: "Rose", nir: Samples.ValidNir("2580144109001")));
        await CreateAsync("paul", Samples.Patient(family: "Paulin", given: "Paul", nir: Samples.ValidNir("1800344109002")));
        await EnrolAsync(Doctor, StaffRole.Physician, Ids["drA"]);
    }

    private static string Agenda(DateOnly day) => "/appointments?day=" + Text(day);

    private static string CancelAction(DateOnly day) => $"/appointments?handler=cancel&day={Text(day)}";

    private async Task<(string? Status, int Version, string? Reason)> StateAsync(string id)
    {
        var read = await Server.Store.Records.ReadAsync(AccessContext.Operator(Tenant, "test"), "Appointment", id, CancellationToken.None);
        using var json = JsonDocument.Parse(read.Json!);
        var reason = json.RootElement.TryGetProperty("cancelationReason", out var r) ? r.GetProperty("coding")[0].GetProperty("code").GetString() : null;
        return (json.RootElement.GetProperty("status").GetString(), read.Version, reason);
    }

    /// <summary>The ids of the appointments the agenda offers a Cancel button for.</summary>
    private static List<string> Offered(string html) =>
        [.. System.Text.RegularExpressions.Regex.Matches(html, "id=\"cancel-([^\"]+)\"[^>]*>Cancel</button>").Select(m => m.Groups[1].Value)];

    [Fact]
    public async Task She_cancels_an_appointment_still_to_come_from_her_agenda_with_a_reason_and_the_day_says_so()
    {
        var day = ParisDay(1);
        await CreateAsync("morning", Samples.Appointment("Patient/" + Ids["rose"], "Practitioner/" + Ids["drA"], At(day, 9)));
        await CreateAsync("cancelled", Samples.Appointment("Patient/" + Ids["paul"], "Practitioner/" + Ids["drA"], At(day, 11), "cancelled"));
        var today = ParisDay(0);
        await CreateAsync("past", Samples.Appointment("Patient/" + Ids["paul"], "Practitioner/" + Ids["drA"], Time.GetUtcNow().AddHours(-1).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        using var doctor = await SignedInAsync(Doctor);

        // Only what can still be cancelled is offered: not the cancelled one, not the one that has begun.
        var (_, html) = await doctor.GetAsync(Agenda(day));
        Assert.Equal([Ids["morning"]], Offered(html));
        var (_, todayHtml) = await doctor.GetAsync(Agenda(today));
        Assert.Empty(Offered(todayHtml));

        // A reason is asked for: none chosen, nothing written.
        var (noReason, noReasonHtml) = await doctor.SubmitAsync(Agenda(day),
            new Dictionary<string, string> { ["Appointment"] = Ids["morning"], ["Version"] = "1", ["CancelReason"] = "" }, CancelAction(day));
        Assert.Equal(HttpStatusCode.BadRequest, noReason.StatusCode);
        Assert.NotNull(StaffClient.ById(noReasonHtml, "act-error"));
        Assert.Equal(("booked", 1, null), await StateAsync(Ids["morning"]));

        var (cancelled, cancelledHtml) = await doctor.SubmitAsync(Agenda(day),
            new Dictionary<string, string> { ["Appointment"] = Ids["morning"], ["Version"] = "1", ["CancelReason"] = "prov-pers", ["CancelComment"] = "Congrès" },
            CancelAction(day));
        Assert.True(cancelled.StatusCode == HttpStatusCode.Redirect, cancelled.StatusCode + StaffClient.ById(cancelledHtml, "act-error"));
        Assert.Equal(Agenda(day), cancelled.Headers.Location!.OriginalString);
        var (_, after) = await doctor.GetAsync(Agenda(day));
        Assert.StartsWith("Cancelled the appointment of " + Text(day) + " 09:00", StaffClient.ById(after, "done"), StringComparison.Ordinal);
        Assert.Empty(Offered(after));
        Assert.Equal(("cancelled", 2, "prov-pers"), await StateAsync(Ids["morning"]));
        var updates = await Server.AuditEntriesOfAsync(Tenant, Doctor, AuditAction.Update);
        Assert.Contains(updates, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Appointment" && e.Detail.Patient == Ids["rose"]);

        // The same form sent again (Back, then send): the version it holds is no longer the appointment's — refused, nothing written.
        var (again, againHtml) = await doctor.SubmitAsync(Agenda(day),
            new Dictionary<string, string> { ["Appointment"] = Ids["morning"], ["Version"] = "1", ["CancelReason"] = "prov-pers" }, CancelAction(day));
        Assert.Equal(HttpStatusCode.PreconditionFailed, again.StatusCode);
        Assert.StartsWith("This appointment was changed by someone else", StaffClient.ById(againHtml, "act-error"), StringComparison.Ordinal);
        // And what has begun is not cancelled, even posted by hand.
        var (past, pastHtml) = await doctor.SubmitAsync(Agenda(today),
            new Dictionary<string, string> { ["Appointment"] = Ids["past"], ["Version"] = "1", ["CancelReason"] = "prov-pers" }, CancelAction(today));
        Assert.Equal(HttpStatusCode.Conflict, past.StatusCode);
        Assert.StartsWith("This appointment has begun or is past", StaffClient.ById(pastHtml, "act-error"), StringComparison.Ordinal);
        Assert.Equal(("booked", 1, null), await StateAsync(Ids["past"]));
    }

    [Fact]
    public async Task A_colleagues_appointment_posted_to_her_agenda_is_not_found_read_or_cancelled()
    {
        // Her agenda's cancel looks the id up among her own appointments: a colleague's, its id posted by hand, is not read (neither
        // its patient counted nor audited as read by her) and not changed — though its patient is hers too (an encounter last week),
        // so that a read by the id alone would have found it.
        await CreateAsync("enc", Samples.Encounter(Ids["paul"], Ids["drA"], Time.GetUtcNow().AddDays(-7).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        var day = ParisDay(1);
        await CreateAsync("colleague", Samples.Appointment("Patient/" + Ids["paul"], "Practitioner/" + Ids["drB"], At(day, 10)));
        using var doctor = await SignedInAsync(Doctor);
        var (response, html) = await doctor.SubmitAsync(Agenda(day),
            new Dictionary<string, string> { ["Appointment"] = Ids["colleague"], ["Version"] = "1", ["CancelReason"] = "prov-pers" }, CancelAction(day));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("You have no such appointment on your agenda.", StaffClient.ById(html, "act-error"));
        Assert.Equal(("booked", 1, null), await StateAsync(Ids["colleague"]));
        var reads = await Server.AuditEntriesOfAsync(Tenant, Doctor, AuditAction.Read, AuditAction.Search, AuditAction.Update);
        Assert.DoesNotContain(reads, e => e.Detail.Patient == Ids["paul"]);

        // Nor without the form's antiforgery token (a page of another site posting in her name).
        var (forged, _) = await doctor.SubmitAsync(Agenda(day),
            new Dictionary<string, string> { ["Appointment"] = Ids["colleague"], ["Version"] = "1", ["CancelReason"] = "prov-pers" }, CancelAction(day), withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(("booked", 1, null), await StateAsync(Ids["colleague"]));
    }

    [Fact]
    public async Task After_her_care_relationship_has_lapsed_she_cancels_her_booking_from_the_agenda_and_the_record_stays_closed()
    {
        // She booked Rose 400 days ahead while Rose was her patient (an encounter ten days before). Seven and a half months on, the
        // encounter is past the 180 days back and the appointment still beyond the 90 ahead: Rose's chart is closed to her, so its
        // Cancel button is out of reach. Her agenda of that day lists the booking (her own, "not open to you") and cancels it.
        await CreateAsync("enc", Samples.Encounter(Ids["rose"], Ids["drA"], Time.GetUtcNow().AddDays(-10).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        var day = ParisDay(400);
        string booked;
        using (var doctor = await SignedInAsync(Doctor))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Appointment")
            {
                Content = FhirContent.Json(Samples.Appointment("Patient/" + Ids["rose"], "Practitioner/" + Ids["drA"], At(day, 14))),
            };
            request.Headers.Add("Origin", Server.BaseAddress.GetLeftPart(UriPartial.Authority));
            using var created = await doctor.Http.SendAsync(request);
            Assert.True(created.StatusCode == HttpStatusCode.Created, created.StatusCode + await created.Content.ReadAsStringAsync());
            booked = created.Headers.Location!.OriginalString.Split('/')[^3];
        }
        // Another appointment of that day, booked by the desk (the operator here) for Paul, who was never her patient: listed, and
        // offered, but a cancellation is asked of it as of any record she did not write — refused, in words, nothing written.
        await CreateAsync("desk", Samples.Appointment("Patient/" + Ids["paul"], "Practitioner/" + Ids["drA"], At(day, 16)));
        Time.Advance(TimeSpan.FromDays(230));
        using var lapsed = await SignedInAsync(Doctor);
        var (closed, _) = await lapsed.GetAsync("/patients/" + Ids["rose"]);
        Assert.Equal(HttpStatusCode.Forbidden, closed.StatusCode);

        var (_, html) = await lapsed.GetAsync(Agenda(day));
        Assert.Contains("(not open to you)", html, StringComparison.Ordinal);
        Assert.Contains(booked, Offered(html));
        var (cancelled, cancelledHtml) = await lapsed.SubmitAsync(Agenda(day),
            new Dictionary<string, string> { ["Appointment"] = booked, ["Version"] = "1", ["CancelReason"] = "pat" }, CancelAction(day));
        Assert.True(cancelled.StatusCode == HttpStatusCode.Redirect, cancelled.StatusCode + StaffClient.ById(cancelledHtml, "act-error"));
        Assert.Equal(("cancelled", 2, "pat"), await StateAsync(booked));

        var (refused, refusedHtml) = await lapsed.SubmitAsync(Agenda(day),
            new Dictionary<string, string> { ["Appointment"] = Ids["desk"], ["Version"] = "1", ["CancelReason"] = "pat" }, CancelAction(day));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.StartsWith("The appointment was not cancelled.", StaffClient.ById(refusedHtml, "act-error"), StringComparison.Ordinal);
        Assert.Equal(("booked", 1, null), await StateAsync(Ids["desk"]));

        // The record stays closed to her.
        var (still, _) = await lapsed.GetAsync("/patients/" + Ids["rose"]);
        Assert.Equal(HttpStatusCode.Forbidden, still.StatusCode);
        using var read = await lapsed.Http.GetAsync("/fhir/Patient/" + Ids["rose"]);
        Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
    }
}

public sealed class AgendaCancelTests_Sqlite() : AgendaCancelTests(Engine.Sqlite);

public sealed class AgendaCancelTests_Postgres() : AgendaCancelTests(Engine.Postgres);
