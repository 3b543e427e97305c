// The chart's booking form warns of an overlap, over HTTP, on both engines: a time that overlaps another booked appointment of the
// same practitioner or of the same patient is not booked at once; the form answers with the overlaps (the time, the patient only when
// the person may read her, else "another appointment"), keeps what was typed, and books when she confirms ("Book anyway"). A
// cancelled appointment is no overlap. A forged confirmation by a role that may not book is refused (403) and audited. The FHIR
// API is not changed: it may double-book, as R4 allows.
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class BookingOverlapPageTests(Engine engine) : StaffPageTests(engine, "chu-overlap")
{
    private const string Desk = "cardio.desk@chu.example";
    private const string Doctor = "dr.auber@chu.example";
    private const string Nurse = "nurse@chu.example";

    private static string Text(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static string Appointment(string patient, string practitioner, string start, int minutes, string status = "booked") =>
        Samples.Appointment("Patient/" + patient, "Practitioner/" + practitioner, start, status)
            .Replace($"\"end\": \"{start}\"", $"\"end\": \"{DateTimeOffset.Parse(start, CultureInfo.InvariantCulture).AddMinutes(minutes).ToUniversalTime():yyyy-MM-dd'T'HH:mm:ss'Z'}\"", StringComparison.Ordinal);

    protected override async Task SetUpAsync()
    {
        await CreateAsync("cardio", """{"resourceType":"Organization","name":"Cardiologie"}""");
        await CreateAsync("drA", Samples.Practitioner(family: "Auber", rpps: "10001234567"));
        await CreateAsync("drB", Samples.Practitioner(family: "Berthier", rpps: "10001234568"));
        await CreateAsync("drN", Samples.Practitioner(family: "Infirmière", rpps: "10001234569"));
        await CreateAsync("roleA", $$$"""{"resourceType":"PractitionerRole","practitioner":{"reference":"Practitioner/{{{Ids["drA"]}}}"},"organization":{"reference":"Organization/{{{Ids["cardio"]}}}"}}""");
        await CreateAsync("rose", Samples.Patient(family: "Rosier", given: "Rose", nir: Samples.ValidNir("2580144109001")));
        await CreateAsync("paul", Samples.Patient(family: "Paulin", given: "Paul", nir: Samples.ValidNir("1800344109002")));
        await CreateAsync("luc", Samples.Patient(family: "Lointain", given: "Luc", nir: Samples.ValidNir("1800344109003")));
        var past = Time.GetUtcNow().AddDays(-3).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        await CreateAsync("encRose", Samples.Encounter(Ids["rose"], Ids["drA"], past));
        await CreateAsync("encPaul", Samples.Encounter(Ids["paul"], Ids["drA"], past));
        await CreateAsync("encNurse", Samples.Encounter(Ids["rose"], Ids["drN"], past));
        // Rose's appointment with Dr Auber tomorrow at 10:00 for 20 minutes; a cancelled one at 15:00.
        await CreateAsync("roseA", Appointment(Ids["rose"], Ids["drA"], At(ParisDay(1), 10, 0), 20));
        await CreateAsync("cancelled", Appointment(Ids["rose"], Ids["drA"], At(ParisDay(1), 15, 0), 30, "cancelled"));
        Secrets[Desk] = await StaffClient.EnrolledAsync(Server, Tenant, Desk, StaffRole.Secretary, null, Password, Time, Ids["cardio"]);
        await EnrolAsync(Doctor, StaffRole.Physician, Ids["drA"]);
        await EnrolAsync(Nurse, StaffRole.Nurse, Ids["drN"]);
    }

    /// <summary>The booking form of a patient's chart as the person is shown it, filled in, with the key of this showing.</summary>
    private static async Task<Dictionary<string, string>> FormAsync(StaffClient staff, string patient, string practitioner, DateOnly day, string time, string minutes = "20",
        string reason = "Contrôle")
    {
        var (_, form) = await staff.GetAsync($"/patients/{patient}?book=1");
        return new()
        {
            ["Date"] = Text(day), ["Time"] = time, ["Minutes"] = minutes, ["Reason"] = reason, ["Practitioner"] = practitioner,
            ["Submission"] = StaffClient.FieldValue(form, "Submission")!,
        };
    }

    private static Task<(HttpResponseMessage Response, string Html)> BookAsync(StaffClient staff, string patient, Dictionary<string, string> fields) =>
        staff.SubmitAsync($"/patients/{patient}?book=1", fields, $"/patients/{patient}?handler=book");

    private async Task<List<string>> AppointmentsOfAsync(string patient)
    {
        var page = await Server.Store.Records.SearchAsync(AccessContext.Operator(Tenant, "test"), "Appointment", [new("patient", "Patient/" + patient)], null, false, CancellationToken.None);
        return [.. page.Entries.Where(e => !e.Included).Select(e => e.Id)];
    }

    private static List<string> Overlaps(string html) =>
        [.. Regex.Matches(html, "<li class=\"overlap\">([^<]+)</li>").Select(m => WebUtility.HtmlDecode(m.Groups[1].Value))];

    [Fact]
    public async Task The_desk_is_warned_of_the_practitioners_overlap_keeps_what_she_typed_and_books_only_when_she_confirms()
    {
        using var desk = await SignedInAsync(Desk);
        var day = ParisDay(1);
        var fields = await FormAsync(desk, Ids["paul"], Ids["drA"], day, "10:10", reason: "Bilan annuel");
        var (warned, html) = await BookAsync(desk, Ids["paul"], fields);
        Assert.True(warned.StatusCode == HttpStatusCode.Conflict, warned.StatusCode + StaffClient.ById(html, "act-error"));
        // Named: Dr Auber is of her service, whose schedule is open to the desk, and the desk reads every patient's identity.
        Assert.Equal([$"{Text(day)} 10:00–10:20, ROSIER Rose with the same practitioner"], Overlaps(html));
        Assert.Contains("id=\"book-anyway\"", html, StringComparison.Ordinal);
        // What she typed is kept; nothing is booked.
        Assert.Equal(Text(day), StaffClient.FieldValue(html, "Date"));
        Assert.Equal("10:10", StaffClient.FieldValue(html, "Time"));
        Assert.Equal("Bilan annuel", StaffClient.FieldValue(html, "Reason"));
        Assert.Contains($"<option value=\"{Ids["drA"]}\" selected=\"selected\">", html, StringComparison.Ordinal);
        Assert.Empty(await AppointmentsOfAsync(Ids["paul"]));

        // Book anyway: the form as shown, confirmed.
        fields["Submission"] = StaffClient.FieldValue(html, "Submission")!;
        fields["Confirm"] = "1";
        var (booked, bookedHtml) = await BookAsync(desk, Ids["paul"], fields);
        Assert.True(booked.StatusCode == HttpStatusCode.Redirect, booked.StatusCode + StaffClient.ById(bookedHtml, "act-error"));
        Assert.Single(await AppointmentsOfAsync(Ids["paul"]));

        // Right after it ends, or over a cancelled appointment, is no overlap: booked at once.
        var (after, _) = await BookAsync(desk, Ids["luc"], await FormAsync(desk, Ids["luc"], Ids["drA"], day, "10:30"));
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        var (overCancelled, _) = await BookAsync(desk, Ids["luc"], await FormAsync(desk, Ids["luc"], Ids["drA"], day, "15:00"));
        Assert.Equal(HttpStatusCode.Redirect, overCancelled.StatusCode);
        Assert.Equal(2, (await AppointmentsOfAsync(Ids["luc"])).Count);
    }

    [Fact]
    public async Task A_physician_is_warned_of_her_patients_other_appointment_and_of_one_whose_patient_she_may_not_read_without_the_name()
    {
        using var doctor = await SignedInAsync(Doctor);
        var day = ParisDay(1);
        // Rose already sees Dr Auber at 10:00: booking Rose with Dr Berthier at 10:10 overlaps the patient's.
        var (warned, html) = await BookAsync(doctor, Ids["rose"], await FormAsync(doctor, Ids["rose"], Ids["drB"], day, "10:10"));
        Assert.Equal(HttpStatusCode.Conflict, warned.StatusCode);
        Assert.Equal([$"{Text(day)} 10:00–10:20, this patient with another practitioner"], Overlaps(html));

        // 150 days ahead, Luc (not in her care: the appointment is beyond the window in which it makes one) sees her at 09:00. Paul
        // booked with her at 09:15 overlaps it: she is told of another appointment, not whose.
        var far = ParisDay(150);
        await Server.CreateAsOperatorAsync(Tenant, Appointment(Ids["luc"], Ids["drA"], At(far, 9, 0), 30));
        var (hidden, hiddenHtml) = await BookAsync(doctor, Ids["paul"], await FormAsync(doctor, Ids["paul"], Ids["drA"], far, "09:15"));
        Assert.Equal(HttpStatusCode.Conflict, hidden.StatusCode);
        Assert.Equal([$"{Text(far)} 09:00–09:30, another appointment of the practitioner"], Overlaps(hiddenHtml));
        Assert.DoesNotContain("LOINTAIN", hiddenHtml, StringComparison.Ordinal);
        Assert.Empty(await AppointmentsOfAsync(Ids["paul"]));
    }

    [Fact]
    public async Task A_forged_confirmation_of_an_overlapping_booking_by_a_nurse_is_refused_and_audited()
    {
        using var nurse = await SignedInAsync(Nurse);
        var fields = new Dictionary<string, string>
        {
            ["Date"] = Text(ParisDay(1)), ["Time"] = "10:10", ["Minutes"] = "20", ["Practitioner"] = Ids["drA"], ["Confirm"] = "1",
        };
        var (forged, html) = await nurse.SubmitAsync($"/patients/{Ids["rose"]}", fields, $"/patients/{Ids["rose"]}?handler=book");
        Assert.True(forged.StatusCode == HttpStatusCode.Forbidden, forged.StatusCode + StaffClient.ById(html, "act-error"));
        Assert.Equal("Your role does not book appointments.", StaffClient.ById(html, "act-error"));
        // Unconfirmed, the same: a role that may not book is not warned (her post searches no one's appointments), it is refused.
        fields.Remove("Confirm");
        var (unconfirmed, unconfirmedHtml) = await nurse.SubmitAsync($"/patients/{Ids["rose"]}", fields, $"/patients/{Ids["rose"]}?handler=book");
        Assert.True(unconfirmed.StatusCode == HttpStatusCode.Forbidden, unconfirmed.StatusCode + StaffClient.ById(unconfirmedHtml, "act-error"));
        Assert.Equal(2, (await AppointmentsOfAsync(Ids["rose"])).Count);
        var refusals = await Server.AuditEntriesOfAsync(Tenant, Nurse, AuditAction.Create);
        Assert.Contains(refusals, e => e.ResourceType == "Appointment" && e.Outcome != AuditOutcome.Success);
        // Nor did the nurse's post search anyone's appointments for overlaps.
        Assert.DoesNotContain(await Server.AuditEntriesOfAsync(Tenant, Nurse, AuditAction.Search), e => e.ResourceType == "Appointment");
    }

    [Fact]
    public async Task The_FHIR_API_still_double_books()
    {
        using var doctor = await SignedInAsync(Doctor);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Appointment")
        {
            Content = FhirContent.Json(Appointment(Ids["paul"], Ids["drA"], At(ParisDay(1), 10, 5), 20)),
        };
        request.Headers.Add("Origin", Server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using var created = await doctor.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        _ = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
    }
}

public sealed class BookingOverlapPageTests_Sqlite() : BookingOverlapPageTests(Engine.Sqlite);

public sealed class BookingOverlapPageTests_Postgres() : BookingOverlapPageTests(Engine.Postgres);
