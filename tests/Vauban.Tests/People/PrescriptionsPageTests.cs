// Prescribing from the clinician UI over HTTP, on both engines: a new prescription is a FHIR R4 MedicationRequest signed by the
// physician's practitioner record, written through the records service (its policy, guard and audit); an active one is
// stopped with If-Match on the version shown; bad input is refused with a clear page and writes nothing; a role that does not
// prescribe sees no form, and its forged posts are refused by the records service.
using System.Globalization;
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class PrescriptionsPageTests(Engine engine) : StaffPageTests(engine, "chu-rx")
{

    private string Day(int offset) => Time.GetUtcNow().AddDays(offset).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private AccessContext Operator => AccessContext.Operator(Tenant, "test");

    protected override async Task SetUpAsync()
    {
        await CreateAsync("drA", Samples.Practitioner(family: "Auber", rpps: "10001234567"));
        await CreateAsync("nurse", Samples.Practitioner(family: "Soin", rpps: "10001234568"));
        await CreateAsync("mine", Samples.Patient(family: "Remede", given: "Claire", birthDate: "1966-04-11", nir: Samples.ValidNir("2660444109001")));
        await CreateAsync("other", Samples.Patient(family: "Autre", given: "Luc", nir: Samples.ValidNir("1800344109002")));
        await CreateAsync("enc", Samples.Encounter(Ids["mine"], Ids["drA"], Day(-3)));
        await CreateAsync("encNurse", Samples.Encounter(Ids["mine"], Ids["nurse"], Day(-2)));
        await CreateAsync("encOther", Samples.Encounter(Ids["other"], Ids["drA"], Day(-3)));
        await CreateAsync("rx", Rx("mine", "Amoxicilline 1 g, comprimé"));
        await CreateAsync("rxOther", Rx("other", "Paracétamol 500 mg"));
        await EnrolAsync("dr.auber@chu.example", StaffRole.Physician, Ids["drA"]);
    }

    private string Rx(string patient, string medication) => $$$"""
        {"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"{{{medication}}}"},
         "subject":{"reference":"Patient/{{{Ids[patient]}}}"},"authoredOn":"{{{Day(-3)}}}","dosageInstruction":[{"text":"1 matin et soir pendant 7 jours"}]}
        """;

    private string Page => $"/patients/{Ids["mine"]}/prescriptions";

    private static List<string> Listed(string html) =>
        System.Text.RegularExpressions.Regex.Matches(html, "data-ref=\"MedicationRequest/([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();

    private async Task<List<JsonElement>> PrescriptionsOfAsync(string patient)
    {
        var page = await Server.Store.Records.SearchAsync(Operator, "MedicationRequest", [new("patient", Ids[patient])], null, false, CancellationToken.None);
        return [.. page.Entries.Select(e => JsonDocument.Parse(e.Json!).RootElement.Clone())];
    }

    private async Task<string?> StatusAsync(string id)
    {
        var now = await Server.Store.Records.ReadAsync(Operator, "MedicationRequest", id, CancellationToken.None);
        using var json = JsonDocument.Parse(now.Json!);
        return json.RootElement.GetProperty("status").GetString();
    }

    private static Dictionary<string, string> Form(string medication = "Ibuprofène 400 mg, comprimé", string dosage = "1 comprimé 3 fois par jour au cours des repas",
        string days = "5", string repeats = "1", string note = "") =>
        new() { ["Medication"] = medication, ["Dosage"] = dosage, ["Days"] = days, ["Repeats"] = repeats, ["Note"] = note };

    private Task<(HttpResponseMessage Response, string Html)> PrescribeAsync(StaffClient staff, Dictionary<string, string> fields) =>
        staff.SubmitAsync(Page, fields, Page + "?handler=prescribe");

    [Fact]
    public async Task The_same_prescription_form_sent_twice_prescribes_once()
    {
        // A double click, or Back and "send again": the form's key is the showing's, and its second post does nothing.
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (_, page) = await doctor.GetAsync(Page);
        var fields = Form();
        fields["Submission"] = StaffClient.FieldValue(page, "Submission")!;
        Assert.Matches("^[0-9A-F]{32}$", fields["Submission"]);
        var (first, firstHtml) = await PrescribeAsync(doctor, fields);
        Assert.True(first.StatusCode == HttpStatusCode.Redirect, first.StatusCode + firstHtml);
        var (second, _) = await PrescribeAsync(doctor, fields);
        Assert.Equal(HttpStatusCode.Redirect, second.StatusCode);
        var (_, after) = await doctor.GetAsync(Page);
        Assert.StartsWith("This form had already been sent", StaffClient.ById(after, "done"), StringComparison.Ordinal);
        Assert.Equal(2, (await PrescriptionsOfAsync("mine")).Count); // the one before, and this one once
        // A new showing of the page is a new form: the same medication prescribed again on purpose is written.
        var (_, again) = await doctor.GetAsync(Page);
        fields["Submission"] = StaffClient.FieldValue(again, "Submission")!;
        var (third, _) = await PrescribeAsync(doctor, fields);
        Assert.Equal(HttpStatusCode.Redirect, third.StatusCode);
        Assert.Equal(3, (await PrescriptionsOfAsync("mine")).Count);
    }

    [Fact]
    public async Task A_physician_prescribes_and_it_is_a_signed_FHIR_medication_request_in_the_audit_trail()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (_, chart) = await doctor.GetAsync($"/patients/{Ids["mine"]}");
        Assert.Contains("id=\"prescribe-link\"", chart, StringComparison.Ordinal);
        var (_, before) = await doctor.GetAsync(Page);
        Assert.Equal("REMEDE Claire", StaffClient.ById(before, "patient-name"));
        Assert.Equal([Ids["rx"]], Listed(before));

        var fields = Form(note: "Arrêter en cas de douleurs gastriques");
        fields["NotSubstitutable"] = "true";
        var (done, html) = await PrescribeAsync(doctor, fields);
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + html + Server.AllLogs());
        Assert.Equal(Page, done.Headers.Location?.ToString()); // Post/Redirect/Get: a refresh prescribes nothing again
        var (_, after) = await doctor.GetAsync(Page);
        Assert.Equal("Prescribed Ibuprofène 400 mg, comprimé.", StaffClient.ById(after, "done"));
        var created = Assert.Single(Listed(after), id => id != Ids["rx"]);

        var read = await Server.Store.Records.ReadAsync(Operator, "MedicationRequest", created, CancellationToken.None);
        using var json = JsonDocument.Parse(read.Json!);
        var r = json.RootElement;
        Assert.Equal(("active", "order"), (r.GetProperty("status").GetString(), r.GetProperty("intent").GetString()));
        Assert.Equal("Ibuprofène 400 mg, comprimé", r.GetProperty("medicationCodeableConcept").GetProperty("text").GetString());
        Assert.Equal("Patient/" + Ids["mine"], r.GetProperty("subject").GetProperty("reference").GetString());
        Assert.Equal("Practitioner/" + Ids["drA"], r.GetProperty("requester").GetProperty("reference").GetString());
        Assert.Equal("1 comprimé 3 fois par jour au cours des repas", r.GetProperty("dosageInstruction")[0].GetProperty("text").GetString());
        var dispense = r.GetProperty("dispenseRequest");
        Assert.Equal(1, dispense.GetProperty("numberOfRepeatsAllowed").GetInt32());
        Assert.Equal((5, "d"), (dispense.GetProperty("expectedSupplyDuration").GetProperty("value").GetInt32(), dispense.GetProperty("expectedSupplyDuration").GetProperty("code").GetString()));
        Assert.False(r.GetProperty("substitution").GetProperty("allowedBoolean").GetBoolean());
        Assert.Equal("Arrêter en cas de douleurs gastriques", r.GetProperty("note")[0].GetProperty("text").GetString());
        var creates = await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Create);
        Assert.Contains(creates, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "MedicationRequest" && e.Detail.Patient == Ids["mine"]);
    }

    // Each bad input (the field, the value typed, what the page must say). One server and one sign-in for all: none writes anything.
    private static readonly (string Field, string Value, string Said)[] BadInputs =
    [
        ("Medication", "", "Give the medication"),
        ("Medication", "Doliprane\u200B 1 g", "invisible characters"),
        ("Dosage", " ", "Give the instructions"),
        ("Days", "0", "The days each dispensing covers are 1 to 365"),
        ("Days", "400", "The days each dispensing covers are 1 to 365"),
        ("Days", "une semaine", "The days each dispensing covers are 1 to 365"),
        ("Days", "90", "90 days renewed 11 times cover 1080 days: a prescription covers at most 365 days in all."),
        ("Repeats", "12", "Renewals are 0 to 11."),
        ("Repeats", "-1", "Renewals are 0 to 11."),
    ];

    [Fact]
    public async Task Bad_input_is_refused_with_a_clear_message_and_prescribes_nothing()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        foreach (var (field, value, said) in BadInputs)
        {
            var fields = Form();
            fields[field] = value;
            if (value == "90") fields["Repeats"] = "11";
            var (refused, html) = await PrescribeAsync(doctor, fields);
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{field}={value}: {refused.StatusCode} {html}");
            Assert.True(StaffClient.ById(html, "error")?.Contains(said, StringComparison.Ordinal) == true, $"{field}={value}: {StaffClient.ById(html, "error")}");
            Assert.Equal("REMEDE Claire", StaffClient.ById(html, "patient-name")); // the page again
        }
        Assert.Single(await PrescriptionsOfAsync("mine"));
        Assert.DoesNotContain(await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Create), e => e.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public async Task A_physician_stops_an_active_prescription_and_a_stop_of_a_version_changed_since_or_of_another_patients_is_refused()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (_, page) = await doctor.GetAsync(Page);
        Assert.Contains($"id=\"stop-{Ids["rx"]}\"", page, StringComparison.Ordinal);
        var stop = Page + "?handler=stop";
        Dictionary<string, string> Stop(string id, string version, string reason = "sintol", string comment = "Nausées") =>
            new() { ["Order"] = id, ["Version"] = version, ["StopReason"] = reason, ["StopComment"] = comment };

        // Without a reason from the list, or "another reason" without saying which: refused, nothing changed.
        foreach (var (reason, comment, said) in new[] { ("", "", "Choose the reason in the list."), ("pat", "", "Choose the reason in the list."), ("other", " ", "Say the reason in the comment.") })
        {
            var (unexplained, unexplainedHtml) = await doctor.SubmitAsync(Page, Stop(Ids["rx"], "1", reason, comment), stop);
            Assert.True(unexplained.StatusCode == HttpStatusCode.BadRequest, $"{reason}: {unexplained.StatusCode} {unexplainedHtml}");
            Assert.Equal(said, StaffClient.ById(unexplainedHtml, "error"));
        }
        Assert.Equal("active", await StatusAsync(Ids["rx"]));

        // Another patient's prescription, posted from this patient's page: not reached.
        var (foreign, foreignHtml) = await doctor.SubmitAsync(Page, Stop(Ids["rxOther"], "1"), stop);
        Assert.True(foreign.StatusCode == HttpStatusCode.NotFound, foreign.StatusCode + foreignHtml);
        Assert.Equal("active", await StatusAsync(Ids["rxOther"]));
        // Found by a search of this patient's records, not read by its id: nothing of the other patient was opened.
        Assert.DoesNotContain(await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Read, AuditAction.Search), e => e.Detail.Patient == Ids["other"]);
        // Version 0 would be If-Match *: refused.
        var (any, _) = await doctor.SubmitAsync(Page, Stop(Ids["rx"], "0"), stop);
        Assert.Equal(HttpStatusCode.BadRequest, any.StatusCode);

        // Someone changes it after the page was shown: the stop of the version shown is refused, nothing changed.
        var current = await Server.Store.Records.ReadAsync(Operator, "MedicationRequest", Ids["rx"], CancellationToken.None);
        var changed = System.Text.Json.Nodes.JsonNode.Parse(current.Json!)!;
        changed["dosageInstruction"]![0]!["text"] = "1 matin, midi et soir pendant 7 jours";
        using (var body = JsonDocument.Parse(changed.ToJsonString()))
        {
            Assert.Equal(RecordStatus.Ok, (await Server.Store.Records.UpdateAsync(Operator, "MedicationRequest", Ids["rx"], body.RootElement, 1, CancellationToken.None)).Status);
        }
        var (stale, staleHtml) = await doctor.SubmitAsync(Page, Stop(Ids["rx"], "1"), stop);
        Assert.True(stale.StatusCode == HttpStatusCode.PreconditionFailed, stale.StatusCode + staleHtml);
        Assert.Contains("changed by someone else", StaffClient.ById(staleHtml, "error"), StringComparison.Ordinal);
        Assert.Contains("1 matin, midi et soir", staleHtml, StringComparison.Ordinal); // as it is now
        Assert.Equal("active", await StatusAsync(Ids["rx"]));

        var (done, doneHtml) = await doctor.SubmitAsync(Page, Stop(Ids["rx"], "2"), stop);
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml);
        Assert.Equal("stopped", await StatusAsync(Ids["rx"]));
        using (var stoppedJson = JsonDocument.Parse((await Server.Store.Records.ReadAsync(Operator, "MedicationRequest", Ids["rx"], CancellationToken.None)).Json!))
        {
            var why = stoppedJson.RootElement.GetProperty("statusReason");
            Assert.Equal(("http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason", "sintol"),
                (why.GetProperty("coding")[0].GetProperty("system").GetString(), why.GetProperty("coding")[0].GetProperty("code").GetString()));
            Assert.Equal("Not tolerated — Nausées", why.GetProperty("text").GetString());
        }
        var (_, after) = await doctor.GetAsync(Page);
        Assert.Equal("Stopped Amoxicilline 1 g, comprimé.", StaffClient.ById(after, "done"));
        Assert.Empty(Listed(after)); // no longer active
        // Nothing is active any more: said as none, not as if some were hidden from her.
        Assert.Equal("None.", StaffClient.ById(after, "none-active"));
        Assert.DoesNotContain("None open to you", after, StringComparison.Ordinal);
        // Stopped already: a second stop of its new version is refused as nothing to stop.
        var (again, _) = await doctor.SubmitAsync(Page, Stop(Ids["rx"], "3"), stop);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        var updates = await Server.AuditEntriesOfAsync(Tenant, "dr.auber@chu.example", AuditAction.Update);
        Assert.Contains(updates, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "MedicationRequest");
    }

    [Fact]
    public async Task A_physician_account_without_a_practitioner_record_is_told_why_it_cannot_prescribe_and_a_post_writes_nothing()
    {
        // A locum's account names the ward (its care relationships come through the ward's encounters), not a practitioner record.
        var ward = await Server.CreateAsOperatorAsync(Tenant, """{"resourceType":"Organization","name":"Médecine interne"}""");
        await Server.CreateAsOperatorAsync(Tenant, Samples.Encounter(Ids["mine"], Ids["drA"], Day(-1), ward));
        Secrets["locum@chu.example"] = await StaffClient.EnrolledAsync(Server, Tenant, "locum@chu.example", StaffRole.Physician, null, Password, Time, ward);
        using var locum = await SignedInAsync("locum@chu.example");
        var (page, html) = await locum.GetAsync(Page);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal([Ids["rx"]], Listed(html));
        Assert.Contains("acts as no practitioner", StaffClient.ById(html, "prescribe-unavailable"), StringComparison.Ordinal);
        Assert.DoesNotContain("prescribe-form", html, StringComparison.Ordinal);

        var (post, postHtml) = await PrescribeAsync(locum, Form());
        Assert.True(post.StatusCode == HttpStatusCode.BadRequest, post.StatusCode + postHtml);
        Assert.Equal("Your account acts as no practitioner: a prescription is signed by one.", StaffClient.ById(postHtml, "error"));
        Assert.Single(await PrescriptionsOfAsync("mine"));
    }

    [Fact]
    public async Task A_nurse_reads_the_active_prescriptions_but_is_offered_no_form_and_her_forged_posts_are_refused()
    {
        await EnrolAsync("nurse@chu.example", StaffRole.Nurse, Ids["nurse"]);
        using var nurse = await SignedInAsync("nurse@chu.example");
        var (_, chart) = await nurse.GetAsync($"/patients/{Ids["mine"]}");
        Assert.DoesNotContain("id=\"prescribe-link\"", chart, StringComparison.Ordinal);
        var (page, html) = await nurse.GetAsync(Page);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal([Ids["rx"]], Listed(html));
        Assert.DoesNotContain("prescribe-form", html, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"stop-", html, StringComparison.Ordinal);

        var (forged, forgedHtml) = await PrescribeAsync(nurse, Form());
        Assert.True(forged.StatusCode == HttpStatusCode.Forbidden, forged.StatusCode + forgedHtml);
        Assert.Equal("Nothing was prescribed. Your role does not prescribe.", StaffClient.ById(forgedHtml, "error"));
        var (stop, stopHtml) = await nurse.SubmitAsync(Page, new Dictionary<string, string> { ["Order"] = Ids["rx"], ["Version"] = "1", ["StopReason"] = "salg" }, Page + "?handler=stop");
        Assert.True(stop.StatusCode == HttpStatusCode.Forbidden, stop.StatusCode + stopHtml);
        Assert.Equal("The prescription was not stopped. Your role does not prescribe.", StaffClient.ById(stopHtml, "error"));
        Assert.Single(await PrescriptionsOfAsync("mine"));
        Assert.Equal("active", await StatusAsync(Ids["rx"]));
        var refusals = await Server.AuditEntriesOfAsync(Tenant, "nurse@chu.example", AuditAction.Create, AuditAction.Update);
        Assert.Contains(refusals, e => e.Action == AuditAction.Create && e.Outcome != AuditOutcome.Success);
        Assert.Contains(refusals, e => e.Action == AuditAction.Update && e.Outcome != AuditOutcome.Success);
        Assert.DoesNotContain(refusals, e => e.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public async Task A_forged_prescription_by_a_desk_without_a_practitioner_record_is_the_doors_refusal_and_audited()
    {
        // Before, the page answered "your account acts as no practitioner" (400) before asking the door: no trace of the attempt.
        await EnrolAsync("desk@chu.example", StaffRole.Secretary, null);
        using var desk = await SignedInAsync("desk@chu.example");
        var (forged, forgedHtml) = await PrescribeAsync(desk, Form());
        Assert.True(forged.StatusCode == HttpStatusCode.Forbidden, forged.StatusCode + forgedHtml);
        Assert.Equal("Nothing was prescribed. Your role does not prescribe.", StaffClient.ById(forgedHtml, "error"));
        Assert.Single(await PrescriptionsOfAsync("mine"));
        var refusals = await Server.AuditEntriesOfAsync(Tenant, "desk@chu.example", AuditAction.Create);
        Assert.Contains(refusals, e => e.Action == AuditAction.Create && e.Outcome != AuditOutcome.Success && e.Detail.Patient == Ids["mine"]);
    }
}

public sealed class PrescriptionsPageTests_Sqlite() : PrescriptionsPageTests(Engine.Sqlite);

public sealed class PrescriptionsPageTests_Postgres() : PrescriptionsPageTests(Engine.Postgres);
