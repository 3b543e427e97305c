// Changing a patient's contact details from the clinician UI over HTTP, on both engines: the phone, e-mail and home address
// typed are written into the record's current version through the records service (policy, care relationship, guard, audit);
// every other element of the Patient is kept; a change made meanwhile by someone else is never overwritten (the form names the
// version it was filled from); bad input writes nothing; a role that may not change patients' records sees no form, and its
// forged post is refused and audited.
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class ContactDetailsPageTests(Engine engine) : StaffPageTests(engine, "chu-contact")
{
    private string Form => $"/patients/{Ids["patient"]}/contact";

    protected override async Task SetUpAsync()
    {
        await CreateAsync("gp", Samples.Practitioner(family: "Généraliste", rpps: "10001234567"));
        await CreateAsync("patient", $$"""
            {
              "resourceType": "Patient",
              "identifier": [{ "system": "{{Samples.InsNir}}", "value": "{{Samples.ValidNir("2710644109001")}}" }],
              "active": true,
              "name": [{ "use": "official", "family": "Moreau", "given": ["Claire"] }],
              "telecom": [
                { "system": "phone", "value": "02 40 00 00 00", "use": "home" },
                { "system": "phone", "value": "02 40 11 11 11", "use": "work" },
                { "system": "email", "value": "claire.moreau@example.fr" }
              ],
              "gender": "female",
              "birthDate": "1971-06-02",
              "address": [
                { "use": "home", "line": ["3 rue des Lilas"], "city": "Nantes", "postalCode": "44000", "country": "FR" },
                { "use": "old", "city": "Rennes", "postalCode": "35000", "country": "FR" }
              ],
              "generalPractitioner": [{ "reference": "Practitioner/{{Ids["gp"]}}" }]
            }
            """);
        await EnrolAsync("desk@chu.example", StaffRole.Secretary, null);
    }

    private static Dictionary<string, string> Details(string phone = "06 98 76 54 32", string email = "c.moreau@example.org", string street = "Bâtiment B\n14 avenue du Port",
        string postalCode = "44600", string city = "Saint-Nazaire", string version = "1") => new()
    {
        ["Phone"] = phone, ["Email"] = email, ["Street"] = street, ["PostalCode"] = postalCode, ["City"] = city, ["Version"] = version,
    };

    private async Task<JsonElement> RecordAsync()
    {
        var read = await Server.Store.Records.ReadAsync(AccessContext.Operator(Tenant, "test"), "Patient", Ids["patient"], CancellationToken.None);
        return JsonDocument.Parse(read.Json!).RootElement.Clone();
    }

    private static string Version(JsonElement patient) => patient.GetProperty("meta").GetProperty("versionId").GetString()!;

    private static List<string> Telecom(JsonElement patient) => patient.TryGetProperty("telecom", out var telecom)
        ? [.. telecom.EnumerateArray().Select(t => $"{t.GetProperty("system").GetString()}|{t.GetProperty("value").GetString()}|{(t.TryGetProperty("use", out var use) ? use.GetString() : "")}")]
        : [];

    private static List<string> Addresses(JsonElement patient) => patient.TryGetProperty("address", out var addresses)
        ? [.. addresses.EnumerateArray().Select(a => string.Join('|', a.GetProperty("use").GetString(),
            a.TryGetProperty("line", out var lines) ? string.Join('/', lines.EnumerateArray().Select(l => l.GetString())) : "",
            a.TryGetProperty("postalCode", out var postal) ? postal.GetString() : "", a.GetProperty("city").GetString()))]
        : [];

    [Fact]
    public async Task The_front_desk_changes_a_patients_phone_e_mail_and_address_and_everything_else_in_the_record_is_kept()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        var (chart, chartHtml) = await desk.GetAsync($"/patients/{Ids["patient"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Contains("id=\"contact-link\"", chartHtml, StringComparison.Ordinal);
        var (page, html) = await desk.GetAsync(Form);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal(("02 40 00 00 00", "claire.moreau@example.fr", "44000", "Nantes", "1"),
            (StaffClient.FieldValue(html, "Phone"), StaffClient.FieldValue(html, "Email"), StaffClient.FieldValue(html, "PostalCode"), StaffClient.FieldValue(html, "City"), StaffClient.FieldValue(html, "Version")));
        Assert.Equal("3 rue des Lilas", StaffClient.ById(html, "street"));

        var (done, doneHtml) = await desk.SubmitAsync(Form, Details());
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml + Server.AllLogs());
        Assert.Equal($"/patients/{Ids["patient"]}", done.Headers.Location!.ToString());
        var (_, afterHtml) = await desk.GetAsync($"/patients/{Ids["patient"]}");
        Assert.Equal("Contact details of MOREAU Claire saved.", StaffClient.ById(afterHtml, "done"));

        var patient = await RecordAsync();
        Assert.Equal("2", Version(patient));
        // The home phone is now the new mobile number, in its place; the work phone stays; the e-mail is the new one.
        Assert.Equal(["phone|06 98 76 54 32|mobile", "phone|02 40 11 11 11|work", "email|c.moreau@example.org|home"], Telecom(patient));
        // The home address is the new one, on two lines; the former address the record kept stays.
        Assert.Equal(["home|Bâtiment B/14 avenue du Port|44600|Saint-Nazaire", "old||35000|Rennes"], Addresses(patient));
        Assert.Equal(("Moreau", "1971-06-02", Samples.ValidNir("2710644109001"), $"Practitioner/{Ids["gp"]}"),
            (patient.GetProperty("name")[0].GetProperty("family").GetString(), patient.GetProperty("birthDate").GetString(),
             patient.GetProperty("identifier")[0].GetProperty("value").GetString(), patient.GetProperty("generalPractitioner")[0].GetProperty("reference").GetString()));
        Assert.Contains(await Server.AuditEntriesOfAsync(Tenant, "desk@chu.example", AuditAction.Update),
            e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Patient" && e.Detail.Patient == Ids["patient"]);

        // The same details saved again write no version.
        var (again, _) = await desk.SubmitAsync(Form, Details(version: "2"));
        Assert.Equal(HttpStatusCode.Redirect, again.StatusCode);
        var (_, sameHtml) = await desk.GetAsync($"/patients/{Ids["patient"]}");
        Assert.Equal("Nothing to save: the contact details are as they were.", StaffClient.ById(sameHtml, "done"));
        Assert.Equal("2", Version(await RecordAsync()));

        // Emptied fields remove what they showed, and only that.
        var (emptied, emptiedHtml) = await desk.SubmitAsync(Form, Details(phone: "", email: "", street: "", postalCode: "", city: "", version: "2"));
        Assert.True(emptied.StatusCode == HttpStatusCode.Redirect, emptied.StatusCode + emptiedHtml);
        patient = await RecordAsync();
        Assert.Equal(["phone|02 40 11 11 11|work"], Telecom(patient));
        Assert.Equal(["old||35000|Rennes"], Addresses(patient));
    }

    [Fact]
    public async Task Details_written_otherwise_through_the_API_are_kept_when_another_part_is_changed()
    {
        // A record an integration wrote: a work phone first, a former home phone (ended), a home address as text only, a billing
        // address abroad, and a narrative generated from them. The form shows no own phone, e-mail or address parts.
        var id = await Server.CreateAsOperatorAsync(Tenant, """
            {
              "resourceType": "Patient",
              "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Paul Girard, 02 99 99 99 99</div>" },
              "name": [{ "use": "official", "family": "Girard", "given": ["Paul"] }],
              "telecom": [
                { "system": "phone", "value": "01 23 45 67 89", "use": "work" },
                { "system": "phone", "value": "02 99 99 99 99", "use": "home", "period": { "end": "2020-01-01" } }
              ],
              "gender": "male",
              "birthDate": "1960-01-01",
              "address": [
                { "use": "home", "text": "Lieu-dit Les Hauts, chemin des Vignes, 12340 Montagne" },
                { "use": "billing", "line": ["Rue du Rhône 1", "Case postale 12", "Bâtiment C", "Étage 4"], "city": "Genève", "postalCode": "CH-1201", "country": "CH" }
              ]
            }
            """);
        using var desk = await SignedInAsync("desk@chu.example");
        var form = $"/patients/{id}/contact";
        var (_, html) = await desk.GetAsync(form);
        Assert.Equal(((string?)null, (string?)null, (string?)null, (string?)null), (StaffClient.FieldValue(html, "Phone"), StaffClient.FieldValue(html, "Email"), StaffClient.FieldValue(html, "PostalCode"), StaffClient.FieldValue(html, "City")));

        var (done, doneHtml) = await desk.SubmitAsync(form, Details(phone: "06 11 11 11 11", email: "", street: "", postalCode: "", city: ""));
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml);
        var read = await Server.Store.Records.ReadAsync(AccessContext.Operator(Tenant, "test"), "Patient", id, CancellationToken.None);
        var patient = JsonDocument.Parse(read.Json!).RootElement;
        Assert.Equal(["phone|01 23 45 67 89|work", "phone|02 99 99 99 99|home", "phone|06 11 11 11 11|mobile"], Telecom(patient));
        var addresses = patient.GetProperty("address");
        Assert.Equal(2, addresses.GetArrayLength());
        Assert.Equal("Lieu-dit Les Hauts, chemin des Vignes, 12340 Montagne", addresses[0].GetProperty("text").GetString());
        Assert.Equal(("CH-1201", 4), (addresses[1].GetProperty("postalCode").GetString(), addresses[1].GetProperty("line").GetArrayLength()));
        // The narrative named the former number: generated from the details, it goes rather than contradict them.
        Assert.False(patient.TryGetProperty("text", out _));
    }

    [Fact]
    public async Task A_part_left_as_the_API_wrote_it_is_not_held_to_the_forms_rules_and_a_period_to_come_is_still_in_use()
    {
        // A home address abroad on four lines, and a home phone whose period ends in years: the patient's own, shown on the form.
        var id = await Server.CreateAsOperatorAsync(Tenant, """
            {
              "resourceType": "Patient",
              "name": [{ "use": "official", "family": "Favre", "given": ["Léa"] }],
              "telecom": [{ "system": "phone", "value": "+41 22 123 45 67", "use": "home", "period": { "start": "2020-01-01", "end": "2099-12-31" } }],
              "gender": "female",
              "birthDate": "1990-05-05",
              "address": [{ "use": "home", "line": ["Rue du Rhône 1", "Case postale 12", "Bâtiment C", "Étage 4"], "city": "Genève", "postalCode": "CH-1201", "country": "CH" }]
            }
            """);
        using var desk = await SignedInAsync("desk@chu.example");
        var form = $"/patients/{id}/contact";
        var (_, html) = await desk.GetAsync(form);
        Assert.Equal(("+41 22 123 45 67", "CH-1201", "Genève"), (StaffClient.FieldValue(html, "Phone"), StaffClient.FieldValue(html, "PostalCode"), StaffClient.FieldValue(html, "City")));
        var street = StaffClient.ById(html, "street")!;

        // Only the city changes: the four lines and the Swiss postal code are kept, though the form would refuse them typed.
        var (done, doneHtml) = await desk.SubmitAsync(form, Details(phone: "+41 22 123 45 67", email: "", street: street, postalCode: "CH-1201", city: "Carouge"));
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + StaffClient.ById(doneHtml, "error"));
        var patient = JsonDocument.Parse((await Server.Store.Records.ReadAsync(AccessContext.Operator(Tenant, "test"), "Patient", id, CancellationToken.None)).Json!).RootElement;
        Assert.Equal(["home|Rue du Rhône 1/Case postale 12/Bâtiment C/Étage 4|CH-1201|Carouge"], Addresses(patient));
        Assert.Equal("CH", patient.GetProperty("address")[0].GetProperty("country").GetString());
        Assert.Equal(["phone|+41 22 123 45 67|home"], Telecom(patient)); // untouched: its period stays
        Assert.Equal("2099-12-31", patient.GetProperty("telecom")[0].GetProperty("period").GetProperty("end").GetString());

        // A French postal code typed makes the address French.
        var (moved, movedHtml) = await desk.SubmitAsync(form, Details(phone: "+41 22 123 45 67", email: "", street: street, postalCode: "74100", city: "Annemasse", version: "2"));
        Assert.True(moved.StatusCode == HttpStatusCode.Redirect, moved.StatusCode + StaffClient.ById(movedHtml, "error"));
        patient = JsonDocument.Parse((await Server.Store.Records.ReadAsync(AccessContext.Operator(Tenant, "test"), "Patient", id, CancellationToken.None)).Json!).RootElement;
        Assert.Equal(("74100", "FR"), (patient.GetProperty("address")[0].GetProperty("postalCode").GetString(), patient.GetProperty("address")[0].GetProperty("country").GetString()));
    }

    [Fact]
    public async Task A_change_made_meanwhile_by_someone_else_is_shown_not_overwritten()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        var (_, html) = await desk.GetAsync(Form);
        Assert.Equal("1", StaffClient.FieldValue(html, "Version"));
        // Another desk, or a FHIR client, changes the phone while this form is open.
        var current = await RecordAsync();
        var changed = JsonSerializer.Serialize(current).Replace("02 40 00 00 00", "02 51 22 22 22", StringComparison.Ordinal);
        using (var document = JsonDocument.Parse(changed))
        {
            var update = await Server.Store.Records.UpdateAsync(AccessContext.Operator(Tenant, "test"), "Patient", Ids["patient"], document.RootElement, null, CancellationToken.None);
            Assert.Equal(Vauban.Records.RecordStatus.Ok, update.Status);
        }

        var (conflict, conflictHtml) = await desk.SubmitAsync(Form, Details(version: "1"));
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.StartsWith("Nothing was changed: this patient's record was changed by someone else", StaffClient.ById(conflictHtml, "error"), StringComparison.Ordinal);
        // The form now holds the record as it is, at its new version; nothing of what was typed was written.
        Assert.Equal(("02 51 22 22 22", "2"), (StaffClient.FieldValue(conflictHtml, "Phone"), StaffClient.FieldValue(conflictHtml, "Version")));
        var patient = await RecordAsync();
        Assert.Equal("2", Version(patient));
        Assert.Contains("phone|02 51 22 22 22|home", Telecom(patient));
        // A forged post without a version is the same refusal.
        var forged = Details();
        forged.Remove("Version");
        var (noVersion, _) = await desk.SubmitAsync(Form, forged);
        Assert.Equal(HttpStatusCode.Conflict, noVersion.StatusCode);
        Assert.Equal("2", Version(await RecordAsync()));
    }

    [Fact]
    public async Task Bad_details_are_refused_with_a_clear_message_and_change_nothing()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        (Dictionary<string, string> Fields, string Said)[] bad =
        [
            (Details(phone: "06 AB 12"), "The phone number holds digits"),
            (Details(phone: "12 34"), "The phone number is neither a French number"),
            (Details(phone: "06 98 76 54"), "The phone number is neither a French number"),
            (Details(phone: "+33 6 98 76 54 32 10"), "The phone number is neither a French number"),
            (Details(email: "c.moreau@example"), "The e-mail address is not one"),
            (Details(email: "c moreau@example.fr"), "The e-mail address is not one"),
            (Details(postalCode: "4460"), "A French postal code is five digits."),
            (Details(city: ""), "Give the city of the address."),
            (Details(street: "1\n2\n3\n4"), "The street takes at most 3 lines."),
            (Details(street: "14 avenue\u202E du Port"), "The address holds control or invisible characters"),
            (Details(street: new string('x', 201)), "The address is at most 200 characters."),
        ];
        foreach (var (fields, said) in bad)
        {
            var (response, html) = await desk.SubmitAsync(Form, fields);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{said}: {response.StatusCode}");
            Assert.Contains(said, StaffClient.ById(html, "error"), StringComparison.Ordinal);
            Assert.StartsWith("Nothing was changed.", StaffClient.ById(html, "error"), StringComparison.Ordinal);
        }
        Assert.Equal("1", Version(await RecordAsync()));
    }

    [Fact]
    public async Task The_billing_office_sees_no_form_and_its_forged_post_is_refused_and_audited_while_the_patients_physician_may_change_them()
    {
        // The billing office reads every patient of the establishment, and changes none.
        await EnrolAsync("billing@chu.example", StaffRole.Billing, null);
        await EnrolAsync("dr@chu.example", StaffRole.Physician, Ids["gp"]);
        using (var billing = await SignedInAsync("billing@chu.example"))
        {
            var (page, html) = await billing.GetAsync(Form);
            Assert.Equal(HttpStatusCode.Forbidden, page.StatusCode);
            Assert.Equal("Your role does not change patients' records.", StaffClient.ById(html, "error"));
            Assert.DoesNotContain("contact-form", html, StringComparison.Ordinal);
            var (forged, forgedHtml) = await billing.SubmitAsync(Form, Details(), withToken: true);
            Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
            Assert.Equal("Nothing was changed. Your role does not change patients' records.", StaffClient.ById(forgedHtml, "error"));
            // The same refusal, on the chain too, whatever else the post holds: the details as they are, no version.
            var unchanged = Details(phone: "02 40 00 00 00", email: "claire.moreau@example.fr", street: "3 rue des Lilas", postalCode: "44000", city: "Nantes");
            unchanged.Remove("Version");
            var (same, _) = await billing.SubmitAsync(Form, unchanged);
            Assert.Equal(HttpStatusCode.Forbidden, same.StatusCode);
            Assert.Equal(2, (await Server.AuditEntriesOfAsync(Tenant, "billing@chu.example", AuditAction.Update)).Count(e => e.Outcome != AuditOutcome.Success));
            Assert.Equal("1", Version(await RecordAsync()));
            Assert.Contains(await Server.AuditEntriesOfAsync(Tenant, "billing@chu.example", AuditAction.Update), e => e.Outcome != AuditOutcome.Success && e.ResourceType == "Patient");
        }
        // The patient's general practitioner may (her care relationship); the records service holds her to it.
        using var doctor = await SignedInAsync("dr@chu.example");
        // Typed in international form, stored in the one form a French number has on the forms (PhoneNumber), and still a mobile.
        var (done, doneHtml) = await doctor.SubmitAsync(Form, Details(phone: "+33 7 11 22 33 44"));
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml);
        Assert.Equal("phone|07 11 22 33 44|mobile", Telecom(await RecordAsync())[0]);
    }
}

public sealed class ContactDetailsPageTests_Sqlite() : ContactDetailsPageTests(Engine.Sqlite);

public sealed class ContactDetailsPageTests_Postgres() : ContactDetailsPageTests(Engine.Postgres);
