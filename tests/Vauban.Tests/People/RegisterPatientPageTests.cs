// Registering a patient from the clinician UI over HTTP, on both engines: the identity typed becomes a FHIR R4 Patient written
// through the records service (its policy, guard and audit); identity vigilance stops a second registration of a person already
// registered (same birth name and birth date: shown, and confirmed as another person first; same NIR: found by the create
// itself); bad input, a NIR that is not this person's included, is refused with a clear page and writes nothing; a role that
// does not register patients sees no form, and its forged post is refused and audited.
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class RegisterPatientPageTests(Engine engine) : StaffPageTests(engine, "chu-admissions")
{
    private const string Form = "/patients/new";

    protected override async Task SetUpAsync()
    {
        await CreateAsync("gp", Samples.Practitioner(family: "Généraliste", rpps: "10001234567"));
        await CreateAsync("known", Samples.Patient(family: "Déjà-Là", given: "Anne", birthDate: "1971-06-02", nir: Samples.ValidNir("2710644109001")));
        await EnrolAsync("desk@chu.example", StaffRole.Secretary, null);
    }

    /// <summary>Signed in as <paramref name="email"/>, enrolled first with <paramref name="role"/> if the set-up did not.</summary>
    private async Task<StaffClient> SignedInAsync(string email, StaffRole role, string? practitioner)
    {
        if (!Secrets.ContainsKey(email)) await EnrolAsync(email, role, practitioner);
        return await SignedInAsync(email);
    }

    private static Dictionary<string, string> Identity(string family = "Lefèvre", string given = "Marie Louise", string sex = "female", string birthDate = "1984-11-23",
        string? nir = null) => new()
    {
        ["Family"] = family, ["UsedFamily"] = "", ["Given"] = given, ["Sex"] = sex, ["BirthDate"] = birthDate, ["Nir"] = nir ?? Samples.ValidNir("2841144109017"),
        ["Phone"] = "06 12 34 56 78", ["Email"] = "marie.lefevre@example.fr", ["Line"] = "3 rue des Lilas", ["PostalCode"] = "44000", ["City"] = "Nantes",
    };

    private async Task<List<JsonElement>> PatientsAsync()
    {
        var page = await Server.Store.Records.SearchAsync(AccessContext.Operator(Tenant, "test"), "Patient", [new("_count", "100")], null, false, CancellationToken.None);
        return [.. page.Entries.Select(e => JsonDocument.Parse(e.Json!).RootElement.Clone())];
    }

    [Fact]
    public async Task The_front_desk_registers_a_patient_who_is_a_FHIR_patient_with_a_chart_and_in_the_audit_trail()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        var (search, searchHtml) = await desk.GetAsync("/patients");
        Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        Assert.Contains("id=\"register-link\"", searchHtml, StringComparison.Ordinal);

        var fields = Identity();
        fields["UsedFamily"] = "Martin";
        var (done, doneHtml) = await desk.SubmitAsync(Form, fields);
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml + Server.AllLogs());
        var location = done.Headers.Location!.ToString();
        Assert.StartsWith("/patients/", location, StringComparison.Ordinal);
        var id = location["/patients/".Length..];
        var (chart, chartHtml) = await desk.GetAsync(location);
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Equal("Registered LEFÈVRE Marie, born 1984-11-23.", StaffClient.ById(chartHtml, "done"));
        Assert.Equal("MARTIN née LEFÈVRE Marie Louise", StaffClient.ById(chartHtml, "patient-name")); // her used name first, as she is called

        // A FHIR R4 Patient: the birth name official with the given names in order, the used name usual, the NIR under INS-NIR's
        // system, contacts and address as typed.
        var patient = Assert.Single(await PatientsAsync(), p => p.GetProperty("id").GetString() == id);
        Assert.Equal("1", patient.GetProperty("meta").GetProperty("versionId").GetString());
        var names = patient.GetProperty("name").EnumerateArray().ToList();
        Assert.Equal(("official", "Lefèvre", "Marie,Louise"), (names[0].GetProperty("use").GetString(), names[0].GetProperty("family").GetString(),
            string.Join(',', names[0].GetProperty("given").EnumerateArray().Select(g => g.GetString()))));
        Assert.Equal(("usual", "Martin"), (names[1].GetProperty("use").GetString(), names[1].GetProperty("family").GetString()));
        var identifier = Assert.Single(patient.GetProperty("identifier").EnumerateArray());
        Assert.Equal((Vauban.Fhir.KnownIdentifierSystems.InsNir, Samples.ValidNir("2841144109017")), (identifier.GetProperty("system").GetString(), identifier.GetProperty("value").GetString()));
        Assert.Equal(("female", "1984-11-23"), (patient.GetProperty("gender").GetString(), patient.GetProperty("birthDate").GetString()));
        Assert.Equal("Nantes", patient.GetProperty("address")[0].GetProperty("city").GetString());
        Assert.False(patient.TryGetProperty("generalPractitioner", out _));

        // Found by the search page as any patient, and its creation is the desk's, in the audit trail.
        var creates = await Server.AuditEntriesOfAsync(Tenant, "desk@chu.example", AuditAction.Create);
        Assert.Contains(creates, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Patient" && e.Detail.Patient == id);
    }

    [Fact]
    public async Task A_person_already_registered_is_shown_before_a_second_registration_by_name_and_birth_date_or_by_NIR()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        var before = (await PatientsAsync()).Count;

        // The same birth name (accents and case aside) and birth date, another NIR: the registered patient is shown, nothing written.
        var namesake = Identity(family: "deja-la", given: "Anne", birthDate: "1971-06-02", nir: Samples.ValidNir("2710644109002"));
        var (held, heldHtml) = await desk.SubmitAsync(Form, namesake);
        Assert.True(held.StatusCode == HttpStatusCode.Conflict, held.StatusCode + heldHtml);
        Assert.Contains("already registered", StaffClient.ById(heldHtml, "error"), StringComparison.Ordinal);
        Assert.Contains($"data-ref=\"Patient/{Ids["known"]}\"", heldHtml, StringComparison.Ordinal);
        Assert.Contains("id=\"another-person\"", heldHtml, StringComparison.Ordinal);
        Assert.Contains("value=\"deja-la\"", heldHtml, StringComparison.Ordinal); // the form kept as typed
        Assert.Equal(before, (await PatientsAsync()).Count);

        // A confirmation holds for the patients it was given against: ticked, then the identity changed to another registered
        // person's (another birth date), it is asked again with that person listed.
        var other = Identity(family: "deja-la", given: "Anne", birthDate: "1971-06-02", nir: Samples.ValidNir("2710644109003"));
        await CreateAsync("known2", Samples.Patient(family: "Déjà-Là", given: "Anne", birthDate: "1971-06-03", nir: Samples.ValidNir("2710644109004")));
        other["AnotherPerson"] = "true";
        other["Shown"] = Ids["known"];
        other["BirthDate"] = "1971-06-03";
        var (again, againHtml) = await desk.SubmitAsync(Form, other);
        Assert.True(again.StatusCode == HttpStatusCode.Conflict, again.StatusCode + againHtml);
        Assert.Contains($"data-ref=\"Patient/{Ids["known2"]}\"", againHtml, StringComparison.Ordinal);
        Assert.Equal(before + 1, (await PatientsAsync()).Count); // known2, created by the test

        // Confirmed as another person against the list shown (namesakes born the same day exist): registered.
        namesake["AnotherPerson"] = "true";
        namesake["Shown"] = Ids["known"];
        var (confirmed, confirmedHtml) = await desk.SubmitAsync(Form, namesake);
        Assert.True(confirmed.StatusCode == HttpStatusCode.Redirect, confirmed.StatusCode + confirmedHtml + Server.AllLogs());
        Assert.Equal(before + 2, (await PatientsAsync()).Count);

        // The NIR of a patient already registered, under another name: the create finds it and writes nothing, and names the record.
        var sameNir = Identity(family: "Autre", given: "Anne", birthDate: "1971-06-02", nir: Samples.ValidNir("2710644109001"));
        sameNir["AnotherPerson"] = "true";
        var (duplicate, duplicateHtml) = await desk.SubmitAsync(Form, sameNir);
        Assert.True(duplicate.StatusCode == HttpStatusCode.Conflict, duplicate.StatusCode + duplicateHtml);
        Assert.Equal("Nothing was registered. A patient is already registered with this NIR: open their record.", StaffClient.ById(duplicateHtml, "error"));
        Assert.Contains($"href=\"/patients/{Ids["known"]}\"", duplicateHtml, StringComparison.Ordinal);
        Assert.Equal(before + 2, (await PatientsAsync()).Count);
    }

    [Fact]
    public async Task A_name_typed_with_combining_accents_is_registered_composed()
    {
        // "Lefèvre" as a Mac or a paste types it: e and a combining grave accent. Stored, and found, as the composed letter.
        using var desk = await SignedInAsync("desk@chu.example");
        var fields = Identity(family: "Lefe\u0300vre", given: "Ame\u0301lie Ve\u030Cra");
        var (done, doneHtml) = await desk.SubmitAsync(Form, fields);
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml);
        var id = done.Headers.Location!.ToString()["/patients/".Length..];
        var patient = Assert.Single(await PatientsAsync(), p => p.GetProperty("id").GetString() == id);
        Assert.Equal("Lef\u00E8vre", patient.GetProperty("name")[0].GetProperty("family").GetString());
        Assert.Equal("Am\u00E9lie", patient.GetProperty("name")[0].GetProperty("given")[0].GetString());
        Assert.Equal("V\u011Bra", patient.GetProperty("name")[0].GetProperty("given")[1].GetString());
    }

    // Each bad input (the field, the value typed, what the page must say). One server and one sign-in for all: none writes anything.
    private static readonly (string Field, string Value, string Said)[] BadInputs =
    [
        ("Family", "", "Give the birth name"),
        ("Family", "Lefèvre3", "letters, spaces, hyphens and apostrophes only"),
        ("Family", "Le\u200Bfèvre", "control or invisible characters"),
        // A Cyrillic А among Latin letters: a name that looks like a registered one and is not found by it (identity vigilance).
        ("Family", "LEF\u0410VRE", "mixes Latin letters with letters of another alphabet"),
        ("Family", "DUP\uFF2FNT", "mixes Latin letters with letters of another alphabet"),
        ("Given", new string('a', 101), "at most 100 characters"),
        ("Sex", "f", "Choose the patient's sex"),
        ("BirthDate", "23/11/1984", "Give the birth date"),
        ("BirthDate", "2999-01-01", "in the future"),
        ("BirthDate", "1884-11-23", "before 1900"),
        ("Nir", "284114410901", "This NIR is not valid"),
        ("Nir", WrongKey(Samples.ValidNir("2841144109017")), "This NIR is not valid"),
        ("Nir", Samples.ValidNir("1841144109017"), "This NIR is a man's"),
        ("Nir", Samples.ValidNir("2851144109017"), "year of birth"),
        ("Nir", Samples.ValidNir("2840344109017"), "month of birth"),
        ("Phone", "06 12 AB", "digits, spaces"),
        ("Phone", "06 12 34 56", "The phone number is neither a French number"),
        ("Phone", "6 12 34 56 78", "The phone number is neither a French number"),
        ("Phone", "00 12 34 56 78", "The phone number is neither a French number"),
        ("Phone", "+33 6 12 34 56", "The phone number is neither a French number"),
        ("Phone", "06 12 + 34 56 78", "digits, spaces"),
        ("Email", "marie.example.fr", "is not one"),
        ("PostalCode", "4400", "five digits"),
        ("City", "", "Give the city"),
    ];

    [Fact]
    public async Task A_phone_number_typed_as_staff_type_it_is_stored_in_one_form_and_found_by_a_search_by_phone()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        (string Typed, string Stored)[] numbers =
        [
            ("06 12 34 56 78", "06 12 34 56 78"), ("06.12.34.56.78", "06 12 34 56 78"), ("+33 6 12 34 56 78", "06 12 34 56 78"),
            ("0033612345678", "06 12 34 56 78"), ("+33 (0)6 12 34 56 78", "06 12 34 56 78"), ("02-40-12-34-56", "02 40 12 34 56"),
            // Overseas and abroad, in international form: E.164.
            ("+262 692 12 34 56", "+262692123456"), ("+32 2 123 45 67", "+3221234567"), ("0041 22 123 45 67", "+41221234567"),
        ];
        var operatorContext = AccessContext.Operator(Tenant, "test");
        for (var i = 0; i < numbers.Length; i++)
        {
            var (typed, stored) = numbers[i];
            var fields = Identity(family: "Numéro" + (char)('a' + i), nir: "");
            fields["Phone"] = typed;
            var (done, html) = await desk.SubmitAsync(Form, fields);
            Assert.True(done.StatusCode == HttpStatusCode.Redirect, $"{typed}: {done.StatusCode} {StaffClient.ById(html, "error")}");
            var id = done.Headers.Location!.ToString()["/patients/".Length..];
            var patient = Assert.Single(await PatientsAsync(), p => p.GetProperty("id").GetString() == id);
            var phone = Assert.Single(patient.GetProperty("telecom").EnumerateArray(), t => t.GetProperty("system").GetString() == "phone");
            Assert.Equal(stored, phone.GetProperty("value").GetString());
            // The search by phone finds her by the number as stored, and a French one by its international form too.
            foreach (var searched in stored.StartsWith('0') ? [stored, "+33" + stored[1..]] : new[] { stored })
            {
                var found = await Server.Store.Records.SearchAsync(operatorContext, "Patient", [new("phone", searched)], null, false, CancellationToken.None);
                Assert.True(found.Entries.Any(e => e.Id == id), $"{typed}: not found by phone={searched}");
            }
        }

        // A number that is none is refused naming the field, the form keeps it as typed, and nothing is written.
        var before = (await PatientsAsync()).Count;
        var wrong = Identity(family: "Numérotée", nir: "");
        wrong["Phone"] = "06 12 34 56";
        var (refused, refusedHtml) = await desk.SubmitAsync(Form, wrong);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.StartsWith("The phone number is neither a French number", StaffClient.ById(refusedHtml, "error"), StringComparison.Ordinal);
        Assert.Contains("value=\"06 12 34 56\"", refusedHtml, StringComparison.Ordinal);
        Assert.Equal(before, (await PatientsAsync()).Count);
    }

    private static string WrongKey(string nir) => nir[..13] + ((int.Parse(nir[13..], System.Globalization.CultureInfo.InvariantCulture) % 97) + 1).ToString("D2", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_registration_with_bad_input_is_refused_with_a_clear_message_and_writes_nothing()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        var before = (await PatientsAsync()).Count;
        foreach (var (field, value, said) in BadInputs)
        {
            var fields = Identity();
            fields[field] = value;
            var (refused, html) = await desk.SubmitAsync(Form, fields);
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{field}={value}: {refused.StatusCode}");
            Assert.Contains(said, StaffClient.ById(html, "error"), StringComparison.Ordinal);
            // A NIR is identifying: a message never repeats it (the form keeps it as typed, in its field only).
            if (field == "Nir" && value.Length >= 13) Assert.DoesNotContain(value, StaffClient.ById(html, "error"), StringComparison.Ordinal);
        }
        Assert.Equal(before, (await PatientsAsync()).Count);
        Assert.DoesNotContain(await Server.AuditEntriesOfAsync(Tenant, "desk@chu.example", AuditAction.Create), e => e.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public async Task A_physician_is_sent_to_admissions_and_a_nurse_registers_no_one_and_their_forged_posts_write_nothing()
    {
        // A physician may create patients through the API, but her searches see only her own patients: the page's checks for a person
        // already registered would be blind, so registering is admissions' (the front desk reaches every patient).
        using var doctor = await SignedInAsync("dr@chu.example", StaffRole.Physician, Ids["gp"]);
        var (_, doctorSearch) = await doctor.GetAsync("/patients");
        Assert.DoesNotContain("register-link", doctorSearch, StringComparison.Ordinal);
        var (doctorPage, doctorHtml) = await doctor.GetAsync(Form);
        Assert.Equal(HttpStatusCode.Forbidden, doctorPage.StatusCode);
        Assert.StartsWith("Patients are registered by admissions", StaffClient.ById(doctorHtml, "error"), StringComparison.Ordinal);
        var before = (await PatientsAsync()).Count;
        // Déjà-Là is registered, and not in her care: a registration by her would not see it.
        var (forgedByDoctor, forgedByDoctorHtml) = await doctor.SubmitAsync("/patients", Identity(family: "Déjà-Là", given: "Anne", birthDate: "1971-06-02", nir: ""), Form);
        Assert.True(forgedByDoctor.StatusCode == HttpStatusCode.Forbidden, forgedByDoctor.StatusCode + forgedByDoctorHtml);
        Assert.StartsWith("Patients are registered by admissions", StaffClient.ById(forgedByDoctorHtml, "error"), StringComparison.Ordinal);
        // The attempt is a refused act on the chain, like any the records service refuses (issue 4: every policy refusal).
        var doctorCreate = Assert.Single(await Server.AuditEntriesOfAsync(Tenant, "dr@chu.example", AuditAction.Create));
        Assert.Equal((AuditOutcome.MinorFailure, "Patient"), (doctorCreate.Outcome, doctorCreate.ResourceType));

        // Nurses do not create patients at all (RolePermissions): no link, no form, and a forged post is the records service's 403, audited.
        using var nurse = await SignedInAsync("nurse@chu.example", StaffRole.Nurse, null);
        var (_, searchHtml) = await nurse.GetAsync("/patients");
        Assert.DoesNotContain("register-link", searchHtml, StringComparison.Ordinal);
        var (page, pageHtml) = await nurse.GetAsync(Form);
        Assert.Equal(HttpStatusCode.Forbidden, page.StatusCode);
        Assert.DoesNotContain("register-form", pageHtml, StringComparison.Ordinal);
        var (forged, forgedHtml) = await nurse.SubmitAsync("/patients", Identity(family: "Forgée", nir: ""), Form);
        Assert.True(forged.StatusCode == HttpStatusCode.Forbidden, forged.StatusCode + forgedHtml);
        Assert.Equal("Nothing was registered. Your role does not register patients.", StaffClient.ById(forgedHtml, "error"));
        Assert.Equal(before, (await PatientsAsync()).Count);
        Assert.Contains(await Server.AuditEntriesOfAsync(Tenant, "nurse@chu.example", AuditAction.Create), e => e.Outcome != AuditOutcome.Success && e.ResourceType == "Patient");
    }

    [Fact]
    public async Task A_NIR_is_stored_compact_as_INSEE_writes_it_and_a_temporary_number_is_not_held_to_the_sex()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        // Typed with spaces and a Corsican department in lower case; a temporary number (7) for a person whose sex is unknown.
        var corsicanNir = "1750" + "22A004001" + Vauban.Records.Nir.ComputeKey("175022A004001");
        var cases = new[]
        {
            (Identity(family: "Santoni", given: "Paul", sex: "male", birthDate: "1975-02-10", nir: "1 75 02 2a 004 001 " + corsicanNir[13..]), corsicanNir),
            (Identity(family: "Inconnu", given: "Sam", sex: "unknown", birthDate: "1990-05-01", nir: Samples.ValidNir("7900599123456")), Samples.ValidNir("7900599123456")),
        };
        foreach (var (fields, stored) in cases)
        {
            var (done, html) = await desk.SubmitAsync(Form, fields);
            Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + html + Server.AllLogs());
            var id = done.Headers.Location!.ToString()["/patients/".Length..];
            var patient = Assert.Single(await PatientsAsync(), p => p.GetProperty("id").GetString() == id);
            Assert.Equal(stored, patient.GetProperty("identifier")[0].GetProperty("value").GetString());
        }
    }
}

public sealed class RegisterPatientPageTests_Sqlite() : RegisterPatientPageTests(Engine.Sqlite);

public sealed class RegisterPatientPageTests_Postgres() : RegisterPatientPageTests(Engine.Postgres);
