// The clinician UI's patient pages over HTTP, on both engines: finding a patient (a posted form, never the names in a URL),
// the chart of a patient in one's care, the refusal and break-the-glass for one who is not, what each role is shown, the
// audit trail of every chart opened, and bad input answered with a clear page.
using System.Globalization;
using System.Net;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class PatientChartPageTests(PatientChartServer shared) : IAsyncLifetime
{
    private const string Password = "harbour violet across 9 bridges";
    // One server for the class (PatientChartServer), each test in an establishment of its own with its own records and staff.
    private string Establishment { get; } = SharedServer.EstablishmentName("chu-chart");
    private readonly ManualTime _time = shared.Time;
    private readonly VaubanServer _server = shared.Server;
    private readonly Action _awayFromParisMidnight = shared.MoveAwayFromParisMidnight;
    private Tenant _tenant = null!;
    private readonly Dictionary<string, string> _ids = [];
    private readonly Dictionary<string, string> _secrets = [];

    private string Day(int offset) => _time.GetUtcNow().AddDays(offset).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public async Task InitializeAsync()
    {
        _awayFromParisMidnight();
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        async Task Create(string name, string json) => _ids[name] = await _server.CreateAsOperatorAsync(_tenant, json);
        await Create("drA", Samples.Practitioner(family: "Auber", rpps: "10001234567"));
        await Create("drB", Samples.Practitioner(family: "Berthier", rpps: "10001234568"));
        await Create("mine", Samples.Patient(family: "Chartier", given: "Louise", birthDate: "1971-06-02", nir: Samples.ValidNir("2710644109001")));
        await Create("other", Samples.Patient(family: "Chartreux", given: "Marc", nir: Samples.ValidNir("1800344109002"), gp: "Practitioner/" + _ids["drB"]));
        await Create("enc", Samples.Encounter(_ids["mine"], _ids["drA"], Day(-10)));
        await Create("obs", $$$"""
            {"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2823-3","display":"Potassium"}]},
             "subject":{"reference":"Patient/{{{_ids["mine"]}}}"},"effectiveDateTime":"{{{Day(-10)}}}",
             "valueQuantity":{"value":5.9,"unit":"mmol/L"},"interpretation":[{"coding":[{"code":"H","display":"High"}]}],
             "referenceRange":[{"low":{"value":3.5},"high":{"value":5.1}}]}
            """);
        await Create("rx", $$$"""
            {"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"Amoxicilline 1 g"},
             "subject":{"reference":"Patient/{{{_ids["mine"]}}}"},"authoredOn":"{{{Day(-10)}}}","dosageInstruction":[{"text":"1 comprimé matin et soir pendant 7 jours"}]}
            """);
        await Create("appt", Samples.Appointment("Patient/" + _ids["mine"], "Practitioner/" + _ids["drA"], Day(20)));
        await Create("inv", $$$"""{"resourceType":"Invoice","status":"issued","subject":{"reference":"Patient/{{{_ids["mine"]}}}"},"date":"{{{Day(-9)}}}","totalGross":{"value":25,"currency":"EUR"}}""");

        await EnrolAsync("dr.auber@chu.example", StaffRole.Physician, _ids["drA"]);
        // Enrolled when a test first signs them in: most tests need only the physician.
        _later["desk@chu.example"] = (StaffRole.Secretary, null);
        _later["officer@chu.example"] = (StaffRole.SecurityOfficer, null);
    }

    private async Task EnrolAsync(string email, StaffRole role, string? practitioner) =>
        _secrets[email] = await StaffClient.EnrolledAsync(_server, _tenant, email, role, practitioner, Password, _time);

    public Task DisposeAsync() => Task.CompletedTask;

    private readonly Dictionary<string, (StaffRole Role, string? Practitioner)> _later = [];

    private async Task<StaffClient> SignedInAsync(string email)
    {
        if (!_secrets.ContainsKey(email) && _later.TryGetValue(email, out var account)) await EnrolAsync(email, account.Role, account.Practitioner);
        return await StaffClient.SignedInAsync(_server.BaseAddress, Establishment, email, Password, _secrets[email], _time);
    }

    private static Task<(HttpResponseMessage Response, string Html)> SearchAsync(StaffClient staff, Dictionary<string, string> fields) =>
        PostedAsync(staff, "/patients", fields);

    /// <summary>The search form posted from <paramref name="formPage"/>, and, as a browser does, its answer's redirect to the results
    /// (Post/Redirect/Get) followed by a GET: the results page.</summary>
    internal static async Task<(HttpResponseMessage Response, string Html)> PostedAsync(StaffClient staff, string formPage, IDictionary<string, string> fields)
    {
        var (posted, html) = await staff.SubmitAsync(formPage, fields);
        if (posted.StatusCode != HttpStatusCode.SeeOther) return (posted, html);
        var results = posted.Headers.Location!.ToString();
        Assert.StartsWith("/patients?results=", results, StringComparison.Ordinal);
        return await staff.GetAsync(results);
    }

    private static Task<(HttpResponseMessage Response, string Html)> OpenByIdAsync(StaffClient staff, string id) =>
        staff.SubmitAsync("/patients", new Dictionary<string, string> { ["id"] = id }, "/patients?handler=open");

    [Fact]
    public async Task An_address_with_no_page_answers_a_page_that_says_so_and_the_API_an_OperationOutcome()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (missing, html) = await doctor.GetAsync("/no-such-page");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("Page not found", StaffClient.ById(html, "status"));
        using var api = await _server.Http.GetAsync("/fhir/Patient/a/b/c/d/e");
        Assert.Equal(HttpStatusCode.NotFound, api.StatusCode);
        Assert.Contains("OperationOutcome", await api.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_physician_opens_the_charts_of_her_patients_one_after_another_and_the_desk_sixty_in_a_day()
    {
        // A chart is the patient's $everything. Before, the fourth chart of an hour was refused for want of a stated reason the
        // pages cannot give, and shown as "not in your care relationships"; the desk's 51st chart of a day suspended it.
        var patients = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            var patient = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Tournee", given: "P" + i));
            await _server.CreateAsOperatorAsync(_tenant, Samples.Encounter(patient, _ids["drA"], Day(-2)));
            patients.Add(patient);
        }
        using (var doctor = await SignedInAsync("dr.auber@chu.example"))
        {
            foreach (var patient in patients)
            {
                _time.Advance(TimeSpan.FromMinutes(2));
                var (chart, html) = await doctor.GetAsync("/patients/" + patient);
                Assert.True(chart.StatusCode == HttpStatusCode.OK, $"chart {patients.IndexOf(patient) + 1}: {(int)chart.StatusCode} {html}");
                Assert.Contains("TOURNEE", html, StringComparison.OrdinalIgnoreCase);
            }
        }
        // The desk reaches every patient: sixty charts through a day, five an hour.
        for (var i = 0; i < 52; i++) patients.Add(await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Accueil", given: "A" + i)));
        for (var i = 0; i < 60; i++)
        {
            // A new session every two hours (the idle timeout is 15 minutes; a desk signs in again through the day).
            if (i % 10 == 0) _time.Advance(TimeSpan.FromMinutes(20));
            using var desk = await SignedInAsync("desk@chu.example");
            _time.Advance(TimeSpan.FromMinutes(12));
            var (chart, html) = await desk.GetAsync("/patients/" + patients[i]);
            Assert.True(chart.StatusCode == HttpStatusCode.OK, $"the desk's chart {i + 1}: {(int)chart.StatusCode} {html}");
        }
    }

    [Fact]
    public async Task A_physician_finds_a_patient_in_their_care_by_a_posted_form_and_reads_the_chart()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (form, formHtml) = await doctor.GetAsync("/patients");
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        Assert.Contains("<form method=\"post\" id=\"search-form\"", formHtml, StringComparison.Ordinal);

        var (found, html) = await SearchAsync(doctor, new() { ["Family"] = "Chart" });
        Assert.True(found.StatusCode == HttpStatusCode.OK, html + _server.AllLogs());
        // "Chartreux" also starts with "Chart", but is Dr Berthier's patient: not listed.
        Assert.Contains($"href=\"/patients/{_ids["mine"]}\"", html, StringComparison.Ordinal);
        Assert.Contains("CHARTIER Louise", html, StringComparison.Ordinal);
        Assert.DoesNotContain(_ids["other"], html, StringComparison.Ordinal);
        Assert.DoesNotContain("CHARTREUX", html, StringComparison.Ordinal);

        // The NIR as read from a carte Vitale, without its key: found by the NIR it begins.
        var (byNir, byNirHtml) = await SearchAsync(doctor, new() { ["Identifier"] = "2 71 06 44 109 001" });
        Assert.True(byNir.StatusCode == HttpStatusCode.OK, byNirHtml);
        Assert.Contains($"href=\"/patients/{_ids["mine"]}\"", byNirHtml, StringComparison.Ordinal);

        var (chart, page) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.True(chart.Headers.CacheControl?.NoStore, "a chart must not be kept in a shared computer's browser cache");
        Assert.Equal("CHARTIER Louise", StaffClient.ById(page, "patient-name"));
        Assert.Equal("1971-06-02", StaffClient.ById(page, "birth-date"));
        Assert.Contains("5.9 mmol/L (normal 3.5–5.1)", page, StringComparison.Ordinal);
        Assert.Contains("High", page, StringComparison.Ordinal);
        Assert.Contains("Amoxicilline 1 g", page, StringComparison.Ordinal);
        Assert.Contains("1 comprimé matin et soir pendant 7 jours", page, StringComparison.Ordinal);
        Assert.Contains($"data-ref=\"Appointment/{_ids["appt"]}\"", page, StringComparison.Ordinal);
        Assert.Contains("AUBER Claire", page, StringComparison.Ordinal); // the encounter's practitioner, named from $everything's Practitioner
        // A section her role reads but the patient has nothing in (no insurance recorded, say) says none, not a refusal.
        Assert.Contains("<p class=\"muted none\">None.</p>", page, StringComparison.Ordinal);
        Assert.DoesNotContain("None open to you", page, StringComparison.Ordinal);

        // The chart went through the records service: the patient's access history holds the physician's $everything.
        var officer = new AccessContext(new Principal(PrincipalKind.Person, "user:officer-test", "Officer", StaffUser.PersonScopes) { Role = StaffRole.SecurityOfficer }, _tenant, "HSYSADMIN");
        var entries = await _server.Store.AuditLog.SearchAsync(officer, new AuditQuery { Patient = _ids["mine"], Count = 100 }, CancellationToken.None);
        Assert.NotNull(entries);
        Assert.Contains(entries!, e => e.Action == AuditAction.Everything && e.Outcome == AuditOutcome.Success && e.Detail.PrincipalName == "Staff dr.a");
    }

    [Fact]
    public async Task A_patient_outside_the_physicians_care_is_refused_with_the_way_to_break_the_glass_and_opens_after_it()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (refused, html) = await doctor.GetAsync($"/patients/{_ids["other"]}");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.DoesNotContain("CHARTREUX", html, StringComparison.Ordinal);
        Assert.Contains($"href=\"/patients/{_ids["other"]}/break-the-glass\"", html, StringComparison.Ordinal);
        // In the page's words: what a clinician does here, not the API's operation.
        Assert.Contains("not in your care relationships", StaffClient.ById(html, "error"), StringComparison.Ordinal);
        Assert.DoesNotContain("[base]", html, StringComparison.Ordinal);

        var (granted, grantHtml) = await doctor.SubmitAsync($"/patients/{_ids["other"]}/break-the-glass",
            new Dictionary<string, string> { ["Reason"] = KnownBreakGlassReasons.Labels.Keys.First(), ["Text"] = "Patient admitted unconscious to the emergency room." });
        Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        Assert.Contains($"href=\"/patients/{_ids["other"]}\"", grantHtml, StringComparison.Ordinal);

        var (chart, page) = await doctor.GetAsync($"/patients/{_ids["other"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Equal("CHARTREUX Marc", StaffClient.ById(page, "patient-name"));
    }

    [Fact]
    public async Task A_physician_who_has_the_NIR_of_a_patient_outside_her_care_is_offered_to_break_the_glass_for_that_patient()
    {
        // Before, the page sent her to "open the record by its id", which no clinician knows.
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var nir = Samples.ValidNir("1800344109002");
        var spaced = $"{nir[..1]} {nir[1..3]} {nir[3..5]} {nir[5..7]} {nir[7..10]} {nir[10..13]} {nir[13..]}";
        var (found, html) = await SearchAsync(doctor, new() { ["Identifier"] = spaced });
        Assert.True(found.StatusCode == HttpStatusCode.OK, html);
        Assert.DoesNotContain("id=\"results\"", html, StringComparison.Ordinal);
        Assert.Contains("outside your care relationships matches", StaffClient.ById(html, "no-results"), StringComparison.Ordinal);
        Assert.Contains("<td>CHARTREUX Marc</td>", html[html.IndexOf("id=\"outside-care\"", StringComparison.Ordinal)..], StringComparison.Ordinal);
        // What a result of her own search shows, and no more: no address, telephone or link into the record itself.
        Assert.DoesNotContain("Nantes", html, StringComparison.Ordinal);
        Assert.DoesNotContain($"href=\"/patients/{_ids["other"]}\"", html, StringComparison.Ordinal);
        var link = $"/patients/{_ids["other"]}/break-the-glass";
        Assert.Contains($"href=\"{link}\"", html, StringComparison.Ordinal);

        var (form, formHtml) = await doctor.GetAsync(link);
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        Assert.Contains("id=\"reason\"", formHtml, StringComparison.Ordinal);
        var (granted, _) = await doctor.SubmitAsync(link,
            new Dictionary<string, string> { ["Reason"] = KnownBreakGlassReasons.Labels.Keys.First(), ["Text"] = "Patient brought in unconscious, carte Vitale in his wallet." });
        Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        var (chart, page) = await doctor.GetAsync($"/patients/{_ids["other"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Equal("CHARTREUX Marc", StaffClient.ById(page, "patient-name"));

        // The lookup is on the patient's access history as the physician's search, marked as such.
        var officer = new AccessContext(new Principal(PrincipalKind.Person, "user:officer-test", "Officer", StaffUser.PersonScopes) { Role = StaffRole.SecurityOfficer }, _tenant, "HSYSADMIN");
        var entries = await _server.Store.AuditLog.SearchAsync(officer, new AuditQuery { Patient = _ids["other"], Count = 100 }, CancellationToken.None);
        Assert.NotNull(entries);
        Assert.Contains(entries!, e => e.Action == AuditAction.Search && e.Outcome == AuditOutcome.Success && e.Detail.PrincipalName == "Staff dr.a"
            && e.Detail.Note == Vauban.Records.RecordsService.OutsideCareLookupNote);
    }

    [Fact]
    public async Task A_prefix_a_name_or_a_NIR_without_its_key_offers_no_patient_outside_her_care()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var nir = Samples.ValidNir("1800344109002");
        foreach (var fields in new Dictionary<string, string>[]
        {
            new() { ["Family"] = "Chartreux" },
            new() { ["Family"] = "Chartreux", ["Given"] = "Marc" },
            new() { ["Identifier"] = nir[..8] },
            new() { ["Identifier"] = nir[..13] },
            new() { ["Identifier"] = nir + "0" },
        })
        {
            var (found, html) = await SearchAsync(doctor, fields);
            Assert.True(found.StatusCode == HttpStatusCode.OK, string.Join(",", fields.Keys) + html);
            Assert.DoesNotContain("outside-care", html, StringComparison.Ordinal);
            Assert.DoesNotContain(_ids["other"], html, StringComparison.Ordinal);
            Assert.DoesNotContain("CHARTREUX", html, StringComparison.Ordinal);
        }
        // The records service refuses the lookup itself for anything but a complete NIR, whoever calls it.
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:physician-test", "Physician", StaffUser.PersonScopes) { Role = StaffRole.Physician }, _tenant, KnownPurposes.Treatment);
        var prefix = await _server.Store.Records.OutsideCareMatchesAsync(physician, [new("family", "Chartreux"), new("given", "Marc")], CancellationToken.None);
        Assert.Equal(Vauban.Records.RecordStatus.Invalid, prefix.Status);
        var list = await _server.Store.Records.OutsideCareMatchesAsync(physician, [new("identifier", nir + "," + Samples.ValidNir("2710644109001"))], CancellationToken.None);
        Assert.Equal(Vauban.Records.RecordStatus.Invalid, list.Status);
    }

    [Fact]
    public async Task A_NIR_with_a_wrong_control_key_is_said_to_be_wrong_and_not_searched()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var nir = Samples.ValidNir("2710644109001");
        var wrong = nir[..13] + ((int.Parse(nir[13..], CultureInfo.InvariantCulture) % 97) + 1).ToString("00", CultureInfo.InvariantCulture);
        var (refused, html) = await SearchAsync(doctor, new() { ["Identifier"] = wrong });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("control key", StaffClient.ById(html, "error"), StringComparison.Ordinal);
        Assert.DoesNotContain("no-results", html, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, StaffClient.ById(html, "error"), StringComparison.Ordinal);
        // The same patient with her right key is found.
        var (found, foundHtml) = await SearchAsync(doctor, new() { ["Identifier"] = nir });
        Assert.Equal(HttpStatusCode.OK, found.StatusCode);
        Assert.Contains($"href=\"/patients/{_ids["mine"]}\"", foundHtml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_role_that_may_not_break_the_glass_is_offered_no_patient_outside_care()
    {
        var nir = Samples.ValidNir("1800344109002");
        foreach (var role in new[] { StaffRole.Billing, StaffRole.Administrator, StaffRole.SecurityOfficer })
        {
            var context = new AccessContext(new Principal(PrincipalKind.Person, "user:" + role, role.ToString(), StaffUser.PersonScopes) { Role = role }, _tenant, "HSYSADMIN");
            var page = await _server.Store.Records.OutsideCareMatchesAsync(context, [new("identifier", nir)], CancellationToken.None);
            Assert.Empty(page.Entries);
        }
        // A secretary may break the glass but finds every patient by her search already: the lookup adds no one.
        var desk = new AccessContext(new Principal(PrincipalKind.Person, "user:desk-test", "Desk", StaffUser.PersonScopes) { Role = StaffRole.Secretary }, _tenant, KnownPurposes.Treatment);
        Assert.Empty((await _server.Store.Records.OutsideCareMatchesAsync(desk, [new("identifier", nir)], CancellationToken.None)).Entries);
        // A physician in the patient's care is not offered to break the glass for her: her search shows her.
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:physician-b", "Physician", StaffUser.PersonScopes) { Role = StaffRole.Physician, Practitioner = _ids["drB"] }, _tenant, KnownPurposes.Treatment);
        Assert.Empty((await _server.Store.Records.OutsideCareMatchesAsync(physician, [new("identifier", nir)], CancellationToken.None)).Entries);
        var outside = new AccessContext(new Principal(PrincipalKind.Person, "user:physician-c", "Physician", StaffUser.PersonScopes) { Role = StaffRole.Physician }, _tenant, KnownPurposes.Treatment);
        var offered = await _server.Store.Records.OutsideCareMatchesAsync(outside, [new("identifier", nir)], CancellationToken.None);
        Assert.Equal(_ids["other"], Assert.Single(offered.Entries).Id);
    }

    [Fact]
    public async Task Each_role_sees_only_what_it_may_and_the_security_officer_no_patient_at_all()
    {
        using (var desk = await SignedInAsync("desk@chu.example"))
        {
            // Admissions find any patient of the establishment and see the identity, not the clinical record; the appointment is
            // with a physician of no service of theirs, so it is not listed either.
            var (found, html) = await SearchAsync(desk, new() { ["Family"] = "Chartreux" });
            Assert.True(found.StatusCode == HttpStatusCode.OK, html + _server.AllLogs());
            Assert.Contains($"href=\"/patients/{_ids["other"]}\"", html, StringComparison.Ordinal);
            var (chart, page) = await desk.GetAsync($"/patients/{_ids["mine"]}");
            Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
            Assert.Equal("CHARTIER Louise", StaffClient.ById(page, "patient-name"));
            Assert.DoesNotContain(_ids["appt"], page, StringComparison.Ordinal);
            Assert.DoesNotContain("Amoxicilline", page, StringComparison.Ordinal);
            Assert.DoesNotContain("mmol/L", page, StringComparison.Ordinal);
            Assert.Contains("Not open to your role.", page, StringComparison.Ordinal);
        }
        using var officer = await SignedInAsync("officer@chu.example");
        var (search, searchHtml) = await officer.GetAsync("/patients");
        Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        Assert.Contains("Your role does not open patients' records.", searchHtml, StringComparison.Ordinal);
        Assert.DoesNotContain("search-form", searchHtml, StringComparison.Ordinal);
        var (chartRefused, chartHtml) = await officer.GetAsync($"/patients/{_ids["mine"]}");
        Assert.True(chartRefused.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.NotFound, chartRefused.StatusCode.ToString());
        Assert.DoesNotContain("CHARTIER", chartHtml, StringComparison.Ordinal);
        Assert.DoesNotContain("break-the-glass", chartHtml, StringComparison.Ordinal);
        if (chartRefused.StatusCode == HttpStatusCode.Forbidden) Assert.Equal("Your role does not open patients' records.", StaffClient.ById(chartHtml, "error"));
    }

    [Fact]
    public async Task The_menu_offers_patients_to_the_roles_that_open_them_and_not_to_the_security_officer()
    {
        using (var doctor = await SignedInAsync("dr.auber@chu.example"))
        {
            var (_, html) = await doctor.GetAsync("/");
            Assert.Contains("id=\"nav-patients\"", html, StringComparison.Ordinal);
        }
        using var officer = await SignedInAsync("officer@chu.example");
        var (_, officerHtml) = await officer.GetAsync("/");
        Assert.DoesNotContain("id=\"nav-patients\"", officerHtml, StringComparison.Ordinal); // /patients would only refuse
        Assert.Contains("id=\"nav-security\"", officerHtml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_input_and_unknown_patients_get_a_clear_page_and_no_one_signed_out_gets_in()
    {
        using (var anonymous = new StaffClient(_server.BaseAddress))
        {
            var (search, _) = await anonymous.GetAsync("/patients");
            Assert.StartsWith("/account/signin", search.Headers.Location?.ToString(), StringComparison.Ordinal);
            var (chart, html) = await anonymous.GetAsync($"/patients/{_ids["mine"]}");
            Assert.StartsWith("/account/signin", chart.Headers.Location?.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("CHARTIER", html, StringComparison.Ordinal);
        }
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (empty, emptyHtml) = await SearchAsync(doctor, []);
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Contains("Give a family name, a given name, a birth date or an identifier.", emptyHtml, StringComparison.Ordinal);
        var (badDate, badDateHtml) = await SearchAsync(doctor, new() { ["BirthDate"] = "1971-13-45" });
        Assert.Equal(HttpStatusCode.BadRequest, badDate.StatusCode);
        Assert.Contains("Give the birth date as a day that exists", badDateHtml, StringComparison.Ordinal);
        var (noSuchDay, _) = await SearchAsync(doctor, new() { ["BirthDate"] = "1980-02-30" });
        Assert.Equal(HttpStatusCode.BadRequest, noSuchDay.StatusCode);
        var (year, _) = await SearchAsync(doctor, new() { ["BirthDate"] = "1971" });
        Assert.Equal(HttpStatusCode.OK, year.StatusCode);
        var (unknown, unknownHtml) = await doctor.GetAsync("/patients/no-such-patient");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("No patient with this id.", unknownHtml, StringComparison.Ordinal);
        var (badId, badIdHtml) = await OpenByIdAsync(doctor, "../etc/passwd");
        Assert.Equal(HttpStatusCode.BadRequest, badId.StatusCode);
        Assert.Contains("A patient id is", badIdHtml, StringComparison.Ordinal);
        var (nir, nirHtml) = await OpenByIdAsync(doctor, Samples.ValidNir("2710644109001"));
        Assert.Equal(HttpStatusCode.BadRequest, nir.StatusCode);
        Assert.Null(nir.Headers.Location);
        Assert.Contains("This looks like a social-security number (NIR)", nirHtml, StringComparison.Ordinal);
        var (open, _) = await OpenByIdAsync(doctor, _ids["mine"]);
        Assert.Equal($"/patients/{_ids["mine"]}", open.Headers.Location?.ToString());
        // Typed into no URL: the form is posted, and a GET of the old form's URL opens nothing.
        var (got, _) = await doctor.GetAsync("/patients?handler=open&id=" + _ids["mine"]);
        Assert.Equal(HttpStatusCode.OK, got.StatusCode);
        Assert.Null(got.Headers.Location);
        // Without the antiforgery token the search is refused and runs nothing.
        var (forged, _) = await doctor.SubmitAsync("/patients", new Dictionary<string, string> { ["Family"] = "Chartier" }, withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
    }

    [Fact]
    public async Task A_search_is_answered_by_a_redirect_to_its_results_whose_URL_holds_no_value_searched_for_and_each_GET_runs_it_again()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var nir = Samples.ValidNir("2710644109001");
        var (posted, _) = await doctor.SubmitAsync("/patients", new Dictionary<string, string> { ["Family"] = "Chartier", ["Given"] = "Lou", ["BirthDate"] = "1971-06-02", ["Identifier"] = nir });
        // Post/Redirect/Get: Back from a chart comes to a GET, which a browser repeats without asking to send a form again.
        Assert.Equal(HttpStatusCode.SeeOther, posted.StatusCode);
        var results = posted.Headers.Location!.ToString();
        Assert.StartsWith("/patients?results=", results, StringComparison.Ordinal);
        foreach (var typed in (string[])["Chartier", "CHARTIER", "Lou", "1971", nir, nir[..13]])
        {
            Assert.DoesNotContain(typed, Uri.UnescapeDataString(results), StringComparison.OrdinalIgnoreCase);
        }
        var searches = (await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Search)).Count;

        var (shown, html) = await doctor.GetAsync(results);
        Assert.Equal(HttpStatusCode.OK, shown.StatusCode);
        Assert.Contains($"href=\"/patients/{_ids["mine"]}\"", html, StringComparison.Ordinal);
        Assert.Equal("Chartier", StaffClient.FieldValue(html, "Family")); // the form shows what was typed
        Assert.Equal(nir, StaffClient.FieldValue(html, "Identifier"));
        // Kept out of every cache, and a chart opened from here is sent no Referer (which would carry the token, no value).
        Assert.True(shown.Headers.CacheControl?.NoStore);
        Assert.Equal("no-referrer", shown.Headers.GetValues("Referrer-Policy").Single());
        // Each GET runs the search again: audited (and guarded) as any search, not shown from a copy.
        var afterOne = (await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Search)).Count;
        Assert.True(afterOne > searches, "the GET ran no search");
        _time.Advance(TimeSpan.FromMinutes(14));
        var (again, againHtml) = await doctor.GetAsync(results);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Contains("CHARTIER Louise", againHtml, StringComparison.Ordinal);
        var afterTwo = (await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Search)).Count;
        Assert.True(afterTwo > afterOne, "the second GET ran no search");

        // Past 15 minutes, in the same live session: the empty form and a plain word, not an error page, and nothing run.
        _time.Advance(TimeSpan.FromMinutes(2));
        var (expired, expiredHtml) = await doctor.GetAsync(results);
        Assert.Equal(HttpStatusCode.OK, expired.StatusCode);
        Assert.StartsWith("These search results are no longer available", StaffClient.ById(expiredHtml, "results-gone"), StringComparison.Ordinal);
        Assert.DoesNotContain("CHARTIER", expiredHtml, StringComparison.Ordinal);
        Assert.True(string.IsNullOrEmpty(StaffClient.FieldValue(expiredHtml, "Family")));
        Assert.Equal(afterTwo, (await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Search)).Count);
    }

    [Fact]
    public async Task A_results_URL_replayed_by_another_person_in_another_session_after_sign_out_or_altered_shows_nothing_of_the_search()
    {
        var nir = Samples.ValidNir("2710644109001");
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (posted, _) = await doctor.SubmitAsync("/patients", new Dictionary<string, string> { ["Family"] = "Chartier", ["Identifier"] = nir });
        var results = posted.Headers.Location!.ToString();
        Assert.Contains("CHARTIER Louise", (await doctor.GetAsync(results)).Html, StringComparison.Ordinal);
        var searches = (await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Search)).Count;
        var token = results["/patients?results=".Length..];
        var altered = token[..^3] + (token[^3] == 'A' ? 'B' : 'A') + token[^2..];

        async Task NothingShown(StaffClient who, string url, string attack)
        {
            var (response, html) = await who.GetAsync(url);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{attack}: {(int)response.StatusCode}");
            Assert.True(StaffClient.ById(html, "results-gone") is not null, $"{attack}: no word that the results are gone");
            Assert.DoesNotContain("CHARTIER", html, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(nir, html, StringComparison.Ordinal);
            Assert.DoesNotContain(_ids["mine"], html, StringComparison.Ordinal);
            Assert.True(string.IsNullOrEmpty(StaffClient.FieldValue(html, "Family")), attack);
            Assert.True(string.IsNullOrEmpty(StaffClient.FieldValue(html, "Identifier")), attack);
        }
        using (var desk = await SignedInAsync("desk@chu.example")) await NothingShown(desk, results, "another person");
        using (var sameDoctor = await SignedInAsync("dr.auber@chu.example")) await NothingShown(sameDoctor, results, "the same person in another session");
        await NothingShown(doctor, "/patients?results=" + altered, "an altered token");
        await NothingShown(doctor, "/patients?results=" + token + "%22%3E%3Cscript%3E", "a token with markup after it");
        // Signed out, the URL leads to the sign-in, and once signed in again (a new session) it shows nothing.
        await doctor.SubmitAsync("/", new Dictionary<string, string>(), action: "/account/signout");
        var (signedOut, signedOutHtml) = await doctor.GetAsync(results);
        Assert.StartsWith("/account/signin", signedOut.Headers.Location?.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("CHARTIER", signedOutHtml, StringComparison.OrdinalIgnoreCase);
        // Nothing of these replays was searched for the doctor.
        Assert.Equal(searches, (await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Search)).Count);
    }

    [Fact]
    public async Task The_chart_says_statuses_and_units_in_peoples_words_and_names_the_patient_without_her_record_id()
    {
        // Written through the API as FHIR and UCUM have them: a code, no unit text, for the temperature.
        await _server.CreateAsOperatorAsync(_tenant, $$$"""
            {"resourceType":"Observation","status":"entered-in-error","code":{"text":"Température"},"subject":{"reference":"Patient/{{{_ids["mine"]}}}"},
             "effectiveDateTime":"{{{Day(-2)}}}","valueQuantity":{"value":38.2,"system":"http://unitsofmeasure.org","code":"Cel"}}
            """);
        await _server.CreateAsOperatorAsync(_tenant, $$$"""
            {"resourceType":"Observation","status":"final","code":{"text":"Pression artérielle"},"subject":{"reference":"Patient/{{{_ids["mine"]}}}"},"effectiveDateTime":"{{{Day(-2)}}}",
             "component":[{"code":{"text":"Systolique"},"valueQuantity":{"value":132,"unit":"mm[Hg]","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},{"code":{"text":"Diastolique"},"valueQuantity":{"value":84,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}
            """);
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (chart, html) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        string? Cells(string reference) =>
            System.Text.RegularExpressions.Regex.Match(html, $"<tr data-ref=\"{reference}\">(.*?)</tr>", System.Text.RegularExpressions.RegexOptions.Singleline) is { Success: true } m
                ? System.Text.RegularExpressions.Regex.Replace(m.Groups[1].Value, "<[^>]+>", "|") : null;
        Assert.Contains("|Booked|", Cells("Appointment/" + _ids["appt"]), StringComparison.Ordinal);
        Assert.Contains("|Active|", Cells("MedicationRequest/" + _ids["rx"]), StringComparison.Ordinal);
        Assert.Contains("38.2 °C", html, StringComparison.Ordinal);
        Assert.Contains("|Entered in error|", html.Replace("<td>", "|", StringComparison.Ordinal).Replace("</td>", "|", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("Systolique: 132 mmHg, Diastolique: 84 mmHg", html, StringComparison.Ordinal);
        foreach (var code in (string[])["<td>booked</td>", "<td>active</td>", "<td>issued</td>", "entered-in-error", "mm[Hg]", " Cel<"])
        {
            Assert.DoesNotContain(code, html, StringComparison.Ordinal);
        }
        // Named, not numbered: her record's id is in no header of the chart or of the pages that act on her record.
        Assert.DoesNotContain("Patient/" + _ids["mine"], html, StringComparison.Ordinal);
        var (_, contact) = await doctor.GetAsync($"/patients/{_ids["mine"]}/vitals");
        Assert.Equal("CHARTIER Louise", StaffClient.ById(contact, "patient-name"));
        Assert.DoesNotContain("Patient/" + _ids["mine"], contact, StringComparison.Ordinal);
    }

    [Fact]
    public async Task What_a_record_holds_is_shown_as_text_never_as_markup()
    {
        var hostile = await _server.CreateAsOperatorAsync(_tenant,
            Samples.Patient(family: "<script>alert(1)</script>", given: "<img src=x onerror=alert(2)>", nir: Samples.ValidNir("1800344109003"), gp: "Practitioner/" + _ids["drA"]));
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (chart, page) = await doctor.GetAsync($"/patients/{hostile}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.DoesNotContain("<script>alert", page, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img src=x", page, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("&lt;SCRIPT&gt;ALERT(1)&lt;/SCRIPT&gt;", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_search_with_more_matches_than_a_page_continues_on_the_next_page_by_its_sealed_token()
    {
        // A page is ten patients: the guard slows a person at ten a minute and asks both factors again at fifteen.
        for (var i = 0; i < 12; i++)
        {
            await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: $"Paginé{i:D2}", nir: Samples.ValidNir($"18003441091{i:D2}"), gp: "Practitioner/" + _ids["drA"]));
        }
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (first, html) = await SearchAsync(doctor, new() { ["Family"] = "Pagin" });
        Assert.True(first.StatusCode == HttpStatusCode.OK, first.Headers.Location + html);
        Assert.Equal(10, html.Split("<tr>").Length - 2);
        var token = StaffClient.FieldValue(html, "Next");
        Assert.NotNull(token);
        Assert.DoesNotContain("Pagin", token, StringComparison.OrdinalIgnoreCase);
        // More than a page: she is told to narrow the search rather than page through (each page counts in the guard's minute).
        Assert.Contains("id=\"narrow\"", html, StringComparison.Ordinal);
        var (second, secondHtml) = await PostedAsync(doctor, "/patients", new Dictionary<string, string> { ["Next"] = token! });
        Assert.True(second.StatusCode == HttpStatusCode.OK, second.Headers.Location + secondHtml);
        Assert.Equal(2, secondHtml.Split("<tr>").Length - 2);
        Assert.Null(StaffClient.FieldValue(secondHtml, "Next"));
        Assert.DoesNotContain("id=\"narrow\"", secondHtml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_next_page_of_a_search_still_shows_what_was_typed_in_the_search_form()
    {
        for (var i = 0; i < 12; i++)
        {
            await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: $"Suite{i:D2}", nir: Samples.ValidNir($"18003441093{i:D2}"), gp: "Practitioner/" + _ids["drA"]));
        }
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (first, html) = await SearchAsync(doctor, new() { ["Family"] = "Suit" });
        Assert.True(first.StatusCode == HttpStatusCode.OK, first.Headers.Location + html);
        // What a browser posts when "Next" is pressed: every field of the form that holds the button.
        var button = html.IndexOf("id=\"next\"", StringComparison.Ordinal);
        var nextForm = html[html.LastIndexOf("<form", button, StringComparison.Ordinal)..button];
        var fields = System.Text.RegularExpressions.Regex.Matches(nextForm, "<input type=\"hidden\" name=\"([^\"]+)\"(?: value=\"([^\"]*)\")?")
            .Where(m => m.Groups[1].Value != "__RequestVerificationToken")
            .ToDictionary(m => m.Groups[1].Value, m => WebUtility.HtmlDecode(m.Groups[2].Value));
        var (second, secondHtml) = await PostedAsync(doctor, "/patients", fields);
        Assert.True(second.StatusCode == HttpStatusCode.OK, second.Headers.Location + secondHtml);
        Assert.Equal(2, secondHtml.Split("<tr>").Length - 2);
        Assert.Equal("Suit", StaffClient.FieldValue(secondHtml, "Family"));
    }

    [Fact]
    public async Task A_page_held_for_both_factors_again_is_shown_once_they_are_given_not_an_empty_form()
    {
        // Sixteen patients: the second page takes the physician past the guard's step-up (15 patients a minute).
        for (var i = 0; i < 16; i++)
        {
            await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: $"Reprise{i:D2}", nir: Samples.ValidNir($"18003441092{i:D2}"), gp: "Practitioner/" + _ids["drA"]));
        }
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (first, html) = await SearchAsync(doctor, new() { ["Family"] = "Repri" });
        Assert.True(first.StatusCode == HttpStatusCode.OK, first.Headers.Location + html);
        var (held, _) = await PostedAsync(doctor, "/patients", new Dictionary<string, string> { ["Next"] = StaffClient.FieldValue(html, "Next")! });
        var reauth = held.Headers.Location?.ToString();
        Assert.StartsWith("/account/reauth?returnUrl=", reauth);
        var back = Uri.UnescapeDataString(reauth!["/account/reauth?returnUrl=".Length..]);
        Assert.StartsWith("/patients?resume=", back);
        Assert.DoesNotContain("Repri", back, StringComparison.OrdinalIgnoreCase); // the value searched for is in no URL

        _time.Advance(TimeSpan.FromSeconds(30)); // a TOTP code is taken once: the next one
        var (confirmed, _) = await doctor.SubmitAsync(reauth!, new Dictionary<string, string>
        {
            ["Password"] = Password, ["Code"] = Totp.Code(_secrets["dr.auber@chu.example"], _time), ["ReturnUrl"] = back,
        });
        Assert.Equal(back, confirmed.Headers.Location?.ToString());
        var resumePage = await doctor.Http.GetStringAsync(back);
        var token = StaffClient.FieldValue(resumePage, "Next");
        Assert.NotNull(token);
        var (shown, shownHtml) = await PostedAsync(doctor, back, new Dictionary<string, string> { ["Next"] = token! });
        Assert.True(shown.StatusCode == HttpStatusCode.OK, shown.Headers.Location + shownHtml);
        Assert.Equal(6, shownHtml.Split("<tr>").Length - 2);
        Assert.DoesNotContain("id=\"resume\"", shownHtml, StringComparison.Ordinal);
        Assert.Equal("Repri", StaffClient.FieldValue(shownHtml, "Family")); // the search it is a page of, not an empty form

        // The token is this person's: another's session gets the form back, not the page.
        using var desk = await SignedInAsync("desk@chu.example");
        var (other, otherHtml) = await PostedAsync(desk, "/patients", new Dictionary<string, string> { ["Next"] = token! });
        Assert.Equal(HttpStatusCode.BadRequest, other.StatusCode);
        Assert.DoesNotContain("Reprise", otherHtml, StringComparison.Ordinal);
        // A resume value that is not a token is not put back in the page.
        var forged = await doctor.Http.GetStringAsync("/patients?resume=%22%3E%3Cscript%3E");
        Assert.Null(StaffClient.FieldValue(forged, "Next"));
    }

    [Fact]
    public async Task The_page_title_does_not_name_the_patient_so_browser_history_keeps_no_name()
    {
        // Names stay out of URLs so that browser history on a shared ward computer does not list who was looked at (ADR 0003);
        // a browser's history keeps each page's title next to its URL, so a title naming the patient defeats that.
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (chart, page) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        var start = page.IndexOf("<title>", StringComparison.Ordinal);
        var title = page[start..page.IndexOf("</title>", start, StringComparison.Ordinal)];
        Assert.DoesNotContain("CHARTIER", title, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Louise", title, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task An_invoice_with_a_total_beyond_a_decimal_is_shown_not_a_server_error()
    {
        // FHIR's decimal is any JSON number, and the validator accepts 1e30; the chart must not answer 500 for it.
        await Create("big", $$$"""{"resourceType":"Invoice","status":"issued","subject":{"reference":"Patient/{{{_ids["mine"]}}}"},"date":"{{{Day(-8)}}}","totalGross":{"value":1e30,"currency":"EUR"}}""");
        await EnrolAsync("billing@chu.example", StaffRole.Billing, null);
        using var billing = await SignedInAsync("billing@chu.example");
        var (chart, page) = await billing.GetAsync($"/patients/{_ids["mine"]}");
        Assert.True(chart.StatusCode == HttpStatusCode.OK, chart.StatusCode + page + _server.AllLogs());
        Assert.Contains($"data-ref=\"Invoice/{_ids["big"]}\"", page, StringComparison.Ordinal);

        async Task Create(string name, string json) => _ids[name] = await _server.CreateAsOperatorAsync(_tenant, json);
    }

    [Fact]
    public async Task Another_patients_result_that_merely_refers_to_this_patient_is_not_shown_as_this_patients_result()
    {
        // $everything returns every record that refers to the patient; an observation of another patient (here one whose
        // focus and performer is this patient: the mother measuring her child's glycaemia) is that other patient's result. Listed under "Results" of this chart, a clinician reads
        // another patient's potassium as this one's.
        var third = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Tiers", given: "Anne", nir: Samples.ValidNir("2800344109004"), gp: "Practitioner/" + _ids["drA"]));
        var foreign = await _server.CreateAsOperatorAsync(_tenant, $$$"""
            {"resourceType":"Observation","status":"final","code":{"text":"Glycémie de Mme Tiers"},
             "subject":{"reference":"Patient/{{{third}}}"},"focus":[{"reference":"Patient/{{{_ids["mine"]}}}"}],
             "performer":[{"reference":"Patient/{{{_ids["mine"]}}}"}],"effectiveDateTime":"{{{Day(-3)}}}",
             "valueQuantity":{"value":2.1,"unit":"g/L"}}
            """);
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (chart, page) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Contains("Potassium", page, StringComparison.Ordinal); // this patient's own result is there
        Assert.DoesNotContain("2.1 g/L", page, StringComparison.Ordinal);
        Assert.DoesNotContain($"Observation/{foreign}", page, StringComparison.Ordinal);
    }

    // ---- Booking and cancelling appointments from the chart ----

    /// <summary>The Paris calendar date <paramref name="days"/> from the test's now, as a date input sends it.</summary>
    private string ParisDate(int days) => ParisTime.Of(_time.GetUtcNow().AddDays(days)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static Dictionary<string, string> Booking(string date, string time = "10:30", string minutes = "30", string reason = "Suivi de la kaliémie") =>
        new() { ["Date"] = date, ["Time"] = time, ["Minutes"] = minutes, ["Reason"] = reason };

    private Task<(HttpResponseMessage Response, string Html)> BookAsync(StaffClient staff, Dictionary<string, string> fields, string? formPage = null) =>
        staff.SubmitAsync(formPage ?? $"/patients/{_ids["mine"]}?book=1", fields, $"/patients/{_ids["mine"]}?handler=book");

    /// <summary>The booking form of <paramref name="patient"/>'s chart as <paramref name="staff"/> is shown it, filled in: the fields
    /// with <paramref name="practitioner"/> chosen and the key of this showing (Submission), and the page (its antiforgery token).</summary>
    private static async Task<(Dictionary<string, string> Fields, string Form)> BookingFormAsync(StaffClient staff, string patient, string practitioner, string date,
        string time = "10:30", string minutes = "30")
    {
        var (_, form) = await staff.GetAsync($"/patients/{patient}?book=1");
        var fields = Booking(date, time, minutes);
        fields["Practitioner"] = practitioner;
        fields["Submission"] = StaffClient.FieldValue(form, "Submission")!;
        return (fields, form);
    }

    /// <summary>The practitioner the booking form has chosen, if any.</summary>
    private static string? SelectedPractitioner(string html)
    {
        var start = html.IndexOf("id=\"practitioner\"", StringComparison.Ordinal);
        if (start < 0) return null;
        var list = html[start..html.IndexOf("</select>", start, StringComparison.Ordinal)];
        return System.Text.RegularExpressions.Regex.Match(list, "<option value=\"([^\"]+)\" selected=\"selected\">") is { Success: true } m ? m.Groups[1].Value : null;
    }

    private static List<string> Appointments(string html) =>
        System.Text.RegularExpressions.Regex.Matches(html, "data-ref=\"Appointment/([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();

    [Fact]
    public async Task The_same_booking_form_sent_twice_books_once()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (fields, _) = await BookingFormAsync(doctor, _ids["mine"], _ids["drA"], ParisDate(4));
        var (first, firstHtml) = await BookAsync(doctor, fields);
        Assert.True(first.StatusCode == HttpStatusCode.Redirect, first.StatusCode + firstHtml);
        var (second, _) = await BookAsync(doctor, fields);
        Assert.Equal(HttpStatusCode.Redirect, second.StatusCode);
        var (_, chart) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.StartsWith("This form had already been sent", StaffClient.ById(chart, "done"), StringComparison.Ordinal);
        Assert.Equal(2, Appointments(chart).Count); // the one of the set-up, and this one once
    }

    [Fact]
    public async Task A_booking_form_sent_as_PUT_or_DELETE_is_not_allowed_and_books_nothing()
    {
        // A page takes GET and POST. Before, another method met the antiforgery check first and was told "This form has expired".
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (fields, form) = await BookingFormAsync(doctor, _ids["mine"], _ids["drA"], ParisDate(5));
        fields["__RequestVerificationToken"] = StaffClient.Token(form);
        foreach (var method in new[] { HttpMethod.Put, HttpMethod.Delete, HttpMethod.Patch })
        {
            using var request = new HttpRequestMessage(method, $"/patients/{_ids["mine"]}?handler=book") { Content = new FormUrlEncodedContent(fields) };
            using var response = await doctor.Http.SendAsync(request);
            var html = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.MethodNotAllowed, $"{method}: {(int)response.StatusCode} {html}");
            Assert.Equal("GET, HEAD, POST", response.Content.Headers.Allow.Count > 0 ? string.Join(", ", response.Content.Headers.Allow) : string.Join(", ", response.Headers.GetValues("Allow")));
            Assert.Equal("Not allowed here", StaffClient.ById(html, "status"));
        }
        var (_, chart) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Single(Appointments(chart)); // the one of the set-up
    }

    [Fact]
    public async Task A_physician_books_an_appointment_from_the_chart_and_it_is_a_FHIR_appointment_in_the_audit_trail()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        // The chart offers the form; the establishment's directory is searched only once it is asked for, not at each chart view.
        var (_, plain) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Contains("id=\"open-booking\"", plain, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"book-form\"", plain, StringComparison.Ordinal);
        Assert.DoesNotContain(await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Search), e => e.ResourceType == "Practitioner");
        var (_, before) = await doctor.GetAsync($"/patients/{_ids["mine"]}?book=1");
        Assert.Contains("id=\"book-form\"", before, StringComparison.Ordinal);
        Assert.Contains(await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Search), e => e.ResourceType == "Practitioner");
        // With her, unless she chooses another practitioner of the establishment.
        Assert.Equal(_ids["drA"], SelectedPractitioner(before));
        Assert.Contains($"<option value=\"{_ids["drB"]}\">BERTHIER Claire · ", before, StringComparison.Ordinal);
        var date = ParisDate(3);
        var (booked, bookedHtml) = await BookAsync(doctor, Booking(date));
        Assert.True(booked.StatusCode == HttpStatusCode.Redirect, booked.StatusCode + bookedHtml + _server.AllLogs());
        Assert.Equal($"/patients/{_ids["mine"]}", booked.Headers.Location?.ToString()); // Post/Redirect/Get: a refresh books nothing again

        var (chart, page) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Equal($"Booked {date} 10:30 (30 minutes) with AUBER Claire.", StaffClient.ById(page, "done"));
        Assert.Contains("Suivi de la kaliémie", page, StringComparison.Ordinal);
        var created = Assert.Single(Appointments(page), id => id != _ids["appt"]);
        var (_, again) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Null(StaffClient.ById(again, "done")); // said once

        // A FHIR R4 Appointment, read back through /fhir: booked, start and end as instants with Paris's offset, both accepted.
        var read = await doctor.Http.GetAsync($"/fhir/Appointment/{created}");
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var json = await read.BodyAsync();
        var start = ParisTime.At(DateOnly.ParseExact(date, "yyyy-MM-dd", CultureInfo.InvariantCulture), new TimeOnly(10, 30))!.Value;
        Assert.Equal("Appointment", json.GetProperty("resourceType").GetString());
        Assert.Equal("booked", json.GetProperty("status").GetString());
        Assert.Equal(start.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture), json.GetProperty("start").GetString());
        Assert.Equal(start.AddMinutes(30), DateTimeOffset.Parse(json.GetProperty("end").GetString()!, CultureInfo.InvariantCulture));
        Assert.Equal(30, json.GetProperty("minutesDuration").GetInt32());
        Assert.Equal("Suivi de la kaliémie", json.GetProperty("description").GetString());
        var participants = json.GetProperty("participant").EnumerateArray().Select(p => (p.GetProperty("actor").GetProperty("reference").GetString(), p.GetProperty("status").GetString())).ToList();
        Assert.Contains(("Patient/" + _ids["mine"], "accepted"), participants);
        Assert.Contains(("Practitioner/" + _ids["drA"], "accepted"), participants);

        var creates = await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Create);
        Assert.Contains(creates, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Appointment" && e.Detail.Patient == _ids["mine"]);
    }

    [Theory]
    [InlineData("past", "10:30", "20", "", "in the past")]
    [InlineData("2026-02-30", "10:30", "20", "", "Give the appointment's date")]
    [InlineData("tomorrow", "25:00", "20", "", "Give the appointment's time")]
    [InlineData("tomorrow", "10:30", "4", "", "The duration is 5 to 240 minutes.")]
    [InlineData("tomorrow", "10:30", "241", "", "The duration is 5 to 240 minutes.")]
    [InlineData("tomorrow", "10:30", "twenty", "", "The duration is 5 to 240 minutes.")]
    [InlineData("tomorrow", "10:30", "20", "Contrôle\u202Eeuqinilc", "invisible characters")]
    [InlineData("tomorrow", "10:30", "20", "long", "at most 200 characters")]
    public async Task A_booking_with_bad_input_is_refused_with_a_clear_message_and_books_nothing(string date, string time, string minutes, string reason, string said)
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        date = date switch { "past" => ParisDate(-1), "tomorrow" => ParisDate(1), _ => date };
        if (reason == "long") reason = new string('a', 201);
        var (refused, html) = await BookAsync(doctor, Booking(date, time, minutes, reason));
        Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, refused.StatusCode + html);
        Assert.Contains(said, StaffClient.ById(html, "act-error"), StringComparison.Ordinal);
        Assert.Equal("CHARTIER Louise", StaffClient.ById(html, "patient-name")); // the chart again, the form as typed
        Assert.Equal(date, StaffClient.FieldValue(html, "Date"));
        var (_, chart) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal([_ids["appt"]], Appointments(chart));
        Assert.DoesNotContain(await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Create), e => e.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public async Task A_physician_cancels_a_booked_appointment_and_a_cancel_of_a_version_changed_since_is_refused()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (_, chart) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Contains($"id=\"cancel-{_ids["appt"]}\"", chart, StringComparison.Ordinal);
        Assert.Equal("1", StaffClient.FieldValue(chart, "Version"));

        // Someone else changes the appointment after the chart was shown: the cancel of the version shown is refused.
        var op = AccessContext.Operator(_tenant, "test");
        var current = await _server.Store.Records.ReadAsync(op, "Appointment", _ids["appt"], CancellationToken.None);
        var moved = System.Text.Json.Nodes.JsonNode.Parse(current.Json!)!;
        moved["description"] = "Moved to room 12";
        using (var body = System.Text.Json.JsonDocument.Parse(moved.ToJsonString()))
        {
            Assert.Equal(Vauban.Records.RecordStatus.Ok, (await _server.Store.Records.UpdateAsync(op, "Appointment", _ids["appt"], body.RootElement, 1, CancellationToken.None)).Status);
        }
        var cancel = $"/patients/{_ids["mine"]}?handler=cancel";
        var (stale, staleHtml) = await doctor.SubmitAsync($"/patients/{_ids["mine"]}", Cancelling("1"), cancel);
        Assert.True(stale.StatusCode == HttpStatusCode.PreconditionFailed, stale.StatusCode + staleHtml);
        Assert.Contains("changed by someone else", StaffClient.ById(staleHtml, "act-error"), StringComparison.Ordinal);
        Assert.Contains("Moved to room 12", staleHtml, StringComparison.Ordinal); // the chart as it is now
        Assert.Equal("booked", await StatusAsync());
        // Version 0 would be If-Match *, held to no version: refused, nothing changed.
        var (any, _) = await doctor.SubmitAsync($"/patients/{_ids["mine"]}", Cancelling("0"), cancel);
        Assert.Equal(HttpStatusCode.BadRequest, any.StatusCode);
        Assert.Equal("booked", await StatusAsync());

        var (done, doneHtml) = await doctor.SubmitAsync($"/patients/{_ids["mine"]}", Cancelling("2"), cancel);
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml);
        Assert.Equal("cancelled", await StatusAsync());
        var (_, after) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        Assert.StartsWith("Cancelled the appointment of ", StaffClient.ById(after, "done"), StringComparison.Ordinal);
        Assert.DoesNotContain($"id=\"cancel-{_ids["appt"]}\"", after, StringComparison.Ordinal); // nothing left to cancel
        var updates = await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Update);
        Assert.Contains(updates, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Appointment");

        Dictionary<string, string> Cancelling(string version) => new() { ["Appointment"] = _ids["appt"], ["Version"] = version, ["CancelReason"] = "prov-pers" };

        async Task<string?> StatusAsync()
        {
            var now = await _server.Store.Records.ReadAsync(op, "Appointment", _ids["appt"], CancellationToken.None);
            using var json = System.Text.Json.JsonDocument.Parse(now.Json!);
            return json.RootElement.GetProperty("status").GetString();
        }
    }

    [Fact]
    public async Task A_nurse_who_reads_the_chart_is_not_offered_booking_and_a_forged_booking_or_cancel_is_refused()
    {
        // Nurses read their patients' appointments but do not create or change them (RolePermissions).
        var nurse = await _server.CreateAsOperatorAsync(_tenant, Samples.Practitioner(family: "Infirmière", rpps: "10001234569"));
        await _server.CreateAsOperatorAsync(_tenant, Samples.Encounter(_ids["mine"], nurse, Day(-5)));
        await EnrolAsync("nurse@chu.example", StaffRole.Nurse, nurse);
        using var staff = await SignedInAsync("nurse@chu.example");
        var (chart, page) = await staff.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Contains($"data-ref=\"Appointment/{_ids["appt"]}\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("book-form", page, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"cancel-", page, StringComparison.Ordinal);

        var (forged, forgedHtml) = await BookAsync(staff, Booking(ParisDate(2)));
        Assert.True(forged.StatusCode == HttpStatusCode.Forbidden, forged.StatusCode + forgedHtml);
        Assert.Equal("Your role does not book appointments.", StaffClient.ById(forgedHtml, "act-error"));
        var (cancel, cancelHtml) = await staff.SubmitAsync($"/patients/{_ids["mine"]}", new Dictionary<string, string> { ["Appointment"] = _ids["appt"], ["Version"] = "1", ["CancelReason"] = "pat" },
            $"/patients/{_ids["mine"]}?handler=cancel");
        Assert.True(cancel.StatusCode == HttpStatusCode.Forbidden, cancel.StatusCode + cancelHtml);
        Assert.Contains("The appointment was not cancelled.", StaffClient.ById(cancelHtml, "act-error"), StringComparison.Ordinal);

        var (_, after) = await staff.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal([_ids["appt"]], Appointments(after));
        // The refusals are the records service's, on the audit chain.
        var refusals = await _server.AuditEntriesOfAsync(_tenant, "nurse@chu.example", AuditAction.Create, AuditAction.Update);
        Assert.Contains(refusals, e => e.Action == AuditAction.Create && e.Outcome != AuditOutcome.Success);
        Assert.Contains(refusals, e => e.Action == AuditAction.Update && e.Outcome != AuditOutcome.Success);
        Assert.DoesNotContain(refusals, e => e.Outcome == AuditOutcome.Success);
    }

    /// <summary>The front desk of a service: a secretary whose account names the service's Organization, and an encounter of that
    /// service with the patient — the care relationship through which the secretary sees the patient's appointments (ADR 0006).</summary>
    private async Task<StaffClient> ServiceDeskAsync()
    {
        var service = await _server.CreateAsOperatorAsync(_tenant, """{"resourceType":"Organization","name":"Cardiologie"}""");
        await _server.CreateAsOperatorAsync(_tenant, Samples.Encounter(_ids["mine"], _ids["drA"], Day(-4), service));
        _secrets["cardio.desk@chu.example"] = await StaffClient.EnrolledAsync(_server, _tenant, "cardio.desk@chu.example", StaffRole.Secretary, null, Password, _time, service);
        return await SignedInAsync("cardio.desk@chu.example");
    }

    [Fact]
    public async Task The_home_page_names_the_persons_practitioner_record_and_service_not_their_ids()
    {
        using (var doctor = await SignedInAsync("dr.auber@chu.example"))
        {
            var (_, home) = await doctor.GetAsync("/");
            Assert.Equal($"AUBER Claire (Practitioner/{_ids["drA"]})", StaffClient.ById(home, "practitioner"));
            Assert.Null(StaffClient.ById(home, "service"));
        }
        using var desk = await ServiceDeskAsync();
        var (_, deskHome) = await desk.GetAsync("/");
        Assert.Null(StaffClient.ById(deskHome, "practitioner"));
        Assert.Matches(@"^Cardiologie \(Organization/[^)]+\)$", StaffClient.ById(deskHome, "service"));
    }

    [Fact]
    public async Task A_secretary_books_an_appointment_with_a_physician_chosen_in_the_list()
    {
        using var desk = await ServiceDeskAsync();
        var (_, before) = await desk.GetAsync($"/patients/{_ids["mine"]}?book=1");
        Assert.Contains("id=\"book-form\"", before, StringComparison.Ordinal);
        Assert.Null(SelectedPractitioner(before)); // the desk acts as no practitioner: it chooses
        Assert.Contains($"<option value=\"{_ids["drA"]}\">AUBER Claire · ", before, StringComparison.Ordinal);
        Assert.Contains($"<option value=\"{_ids["drB"]}\">BERTHIER Claire · ", before, StringComparison.Ordinal);

        // Without a choice, nothing is booked.
        var (unchosen, unchosenHtml) = await BookAsync(desk, Booking(ParisDate(4)));
        Assert.True(unchosen.StatusCode == HttpStatusCode.BadRequest, unchosen.StatusCode + unchosenHtml);
        Assert.Equal("Choose the practitioner the appointment is with in the list.", StaffClient.ById(unchosenHtml, "act-error"));

        var date = ParisDate(4);
        var fields = Booking(date, "14:00", "20", "Consultation de cardiologie");
        fields["Practitioner"] = _ids["drB"];
        var (booked, bookedHtml) = await BookAsync(desk, fields);
        Assert.True(booked.StatusCode == HttpStatusCode.Redirect, booked.StatusCode + bookedHtml + _server.AllLogs());
        var (_, page) = await desk.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal($"Booked {date} 14:00 (20 minutes) with BERTHIER Claire.", StaffClient.ById(page, "done"));
        var created = Assert.Single(Appointments(page), id => id != _ids["appt"]);

        // The appointment is the physician's and the patient's; the secretary who booked it is its author, in the audit trail.
        var op = AccessContext.Operator(_tenant, "test");
        var read = await _server.Store.Records.ReadAsync(op, "Appointment", created, CancellationToken.None);
        using var json = System.Text.Json.JsonDocument.Parse(read.Json!);
        var actors = json.RootElement.GetProperty("participant").EnumerateArray().Select(p => p.GetProperty("actor").GetProperty("reference").GetString()).ToList();
        Assert.Equal(["Patient/" + _ids["mine"], "Practitioner/" + _ids["drB"]], actors);
        var creates = await _server.AuditEntriesOfAsync(_tenant, "cardio.desk@chu.example", AuditAction.Create);
        Assert.Contains(creates, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Appointment" && e.Detail.Patient == _ids["mine"]);
    }

    [Fact]
    public async Task The_desk_sees_and_cancels_what_it_booked_months_ahead_for_a_patient_no_care_relationship_opens_to_it()
    {
        // 150 days ahead, beyond the 90 in which an appointment makes a care relationship, for a patient the desk's service has no
        // relationship with: before, the appointment it had just booked was missing from the chart, and could not be cancelled.
        using var desk = await ServiceDeskAsync();
        var chartPage = $"/patients/{_ids["other"]}";
        var (fields, _) = await BookingFormAsync(desk, _ids["other"], _ids["drB"], ParisDate(150), "14:00", "20");
        var (booked, bookedHtml) = await desk.SubmitAsync(chartPage + "?book=1", fields, chartPage + "?handler=book");
        Assert.True(booked.StatusCode == HttpStatusCode.Redirect, booked.StatusCode + bookedHtml);
        var (_, chart) = await desk.GetAsync(chartPage);
        var created = Assert.Single(Appointments(chart));
        Assert.Contains($"id=\"cancel-{created}\"", chart, StringComparison.Ordinal);
        // A search finds it as the chart shows it: one match, counted.
        using (var search = await desk.Http.GetAsync($"/fhir/Appointment?patient={_ids["other"]}&_total=accurate"))
        {
            var bundle = await search.BodyAsync();
            Assert.Equal(1, bundle.GetProperty("total").GetInt32());
            Assert.Equal(created, bundle.GetProperty("entry")[0].GetProperty("resource").GetProperty("id").GetString());
        }

        // Another desk of the same service did not book it: the rule of care still decides for it.
        var service = (await _server.Store.Accounts.FindAsync(_tenant, "cardio.desk@chu.example", CancellationToken.None))!.Service;
        _secrets["cardio.desk2@chu.example"] = await StaffClient.EnrolledAsync(_server, _tenant, "cardio.desk2@chu.example", StaffRole.Secretary, null, Password, _time, service);
        using (var colleague = await SignedInAsync("cardio.desk2@chu.example"))
        {
            var (_, theirs) = await colleague.GetAsync(chartPage);
            Assert.Empty(Appointments(theirs));
            using var search = await colleague.Http.GetAsync($"/fhir/Appointment?patient={_ids["other"]}&_total=accurate");
            Assert.Equal(0, (await search.BodyAsync()).GetProperty("total").GetInt32());
        }

        var (cancelled, cancelledHtml) = await desk.SubmitAsync(chartPage,
            new Dictionary<string, string> { ["Appointment"] = created, ["Version"] = "1", ["CancelReason"] = "pat" }, chartPage + "?handler=cancel");
        Assert.True(cancelled.StatusCode == HttpStatusCode.Redirect, cancelled.StatusCode + cancelledHtml);
        var op = AccessContext.Operator(_tenant, "test");
        var afterCancel = await _server.Store.Records.ReadAsync(op, "Appointment", created, CancellationToken.None);
        using (var after = System.Text.Json.JsonDocument.Parse(afterCancel.Json!)) Assert.Equal("cancelled", after.RootElement.GetProperty("status").GetString());

        // Someone else moves it into another patient's record, with words of their own: it is theirs from then on. The desk read it
        // there, notes and all, and found it by that patient.
        var third = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Tiers", given: "Paule"));
        var moved = System.Text.Encoding.UTF8.GetString(afterCancel.Json!).Replace("Patient/" + _ids["other"], "Patient/" + third, StringComparison.Ordinal)
            .Replace("\"status\":\"cancelled\"", "\"status\":\"booked\",\"comment\":\"NOTE-OF-ANOTHER\"", StringComparison.Ordinal);
        using (var body = System.Text.Json.JsonDocument.Parse(moved))
        {
            Assert.Equal(Vauban.Records.RecordStatus.Ok, (await _server.Store.Records.UpdateAsync(op, "Appointment", created, body.RootElement, afterCancel.Version, CancellationToken.None)).Status);
        }
        using (var read = await desk.Http.GetAsync("/fhir/Appointment/" + created))
        {
            Assert.NotEqual(HttpStatusCode.OK, read.StatusCode);
            Assert.DoesNotContain("NOTE-OF-ANOTHER", await read.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var found = await desk.Http.GetAsync($"/fhir/Appointment?patient={third}&_total=accurate"))
        {
            Assert.Equal(0, (await found.BodyAsync()).GetProperty("total").GetInt32());
        }
        var (_, thirdChart) = await desk.GetAsync("/patients/" + third);
        Assert.Empty(Appointments(thirdChart));
    }

    [Fact]
    public async Task An_appointment_she_booked_cannot_be_moved_into_the_record_of_a_patient_she_may_not_open()
    {
        // The booker may change her appointment, but what it would then name is asked of that patient: a physician moving her
        // booking to a patient outside her care would otherwise make herself a care relationship with that patient.
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        var (fields, _) = await BookingFormAsync(doctor, _ids["mine"], _ids["drA"], ParisDate(6));
        var (booked, _) = await BookAsync(doctor, fields);
        Assert.Equal(HttpStatusCode.Redirect, booked.StatusCode);
        var (_, chart) = await doctor.GetAsync($"/patients/{_ids["mine"]}");
        var created = Assert.Single(Appointments(chart), id => id != _ids["appt"]);

        var op = AccessContext.Operator(_tenant, "test");
        var current = await _server.Store.Records.ReadAsync(op, "Appointment", created, CancellationToken.None);
        var moved = System.Text.Encoding.UTF8.GetString(current.Json!).Replace("Patient/" + _ids["mine"], "Patient/" + _ids["other"], StringComparison.Ordinal);
        using var request = new HttpRequestMessage(HttpMethod.Put, "/fhir/Appointment/" + created) { Content = FhirContent.Json(moved) };
        request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using var response = await doctor.Http.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.Forbidden, response.StatusCode + await response.Content.ReadAsStringAsync());
        var now = await _server.Store.Records.ReadAsync(op, "Appointment", created, CancellationToken.None);
        Assert.Equal(1, now.Version);
        Assert.Contains("Patient/" + _ids["mine"], System.Text.Encoding.UTF8.GetString(now.Json!), StringComparison.Ordinal);
        using var other = await doctor.Http.GetAsync("/fhir/Patient/" + _ids["other"]);
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
    }

    [Fact]
    public async Task A_physician_whose_care_relationship_has_lapsed_cancels_the_appointment_she_booked_and_still_cannot_read_the_record()
    {
        // ADR 0006: the appointments she booked are hers to change and cancel, whatever the rule of care says of the patient. A
        // cancellation names no one new and opens nothing (a cancelled appointment is no source of care): it is asked of the
        // appointment, not of the patient's record, which stays closed to her.
        var chartPage = $"/patients/{_ids["mine"]}";
        string created;
        using (var doctor = await SignedInAsync("dr.auber@chu.example"))
        {
            var (fields, _) = await BookingFormAsync(doctor, _ids["mine"], _ids["drA"], ParisDate(400));
            var (booked, bookedHtml) = await BookAsync(doctor, fields);
            Assert.True(booked.StatusCode == HttpStatusCode.Redirect, booked.StatusCode + bookedHtml);
            var (_, chart) = await doctor.GetAsync(chartPage);
            created = Assert.Single(Appointments(chart), id => id != _ids["appt"]);
        }
        // Seven and a half months on: her encounter and the other appointment are past the 180 days back, hers still beyond the 90 ahead.
        _time.Advance(TimeSpan.FromDays(230));
        using var lapsed = await SignedInAsync("dr.auber@chu.example");
        var (closed, _) = await lapsed.GetAsync(chartPage);
        Assert.Equal(HttpStatusCode.Forbidden, closed.StatusCode);

        // Anything more than the cancellation is still asked of the patient: cancelled and moved to another day, refused, nothing written.
        var op = AccessContext.Operator(_tenant, "test");
        var current = await _server.Store.Records.ReadAsync(op, "Appointment", created, CancellationToken.None);
        var cancelledAndMoved = System.Text.Json.Nodes.JsonNode.Parse(current.Json!)!;
        cancelledAndMoved["status"] = "cancelled";
        cancelledAndMoved["start"] = Day(2);
        Assert.Equal(HttpStatusCode.Forbidden, await PutAsync(lapsed, created, cancelledAndMoved.ToJsonString()));
        Assert.Equal(("booked", 1), await StateAsync());

        // Her cancellation from the chart's form: done, and on the audit chain as her update of the patient's appointment.
        var (cancelled, cancelledHtml) = await lapsed.SubmitAsync(chartPage,
            new Dictionary<string, string> { ["Appointment"] = created, ["Version"] = "1", ["CancelReason"] = "prov-pers" }, chartPage + "?handler=cancel");
        Assert.True(cancelled.StatusCode == HttpStatusCode.Redirect, cancelled.StatusCode + cancelledHtml);
        Assert.Equal(("cancelled", 2), await StateAsync());
        var updates = await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Update);
        Assert.Contains(updates, e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Appointment" && e.Detail.Patient == _ids["mine"]);

        // The record stays closed to her, through the chart and the API; and her appointment is not booked again by her.
        var (still, _) = await lapsed.GetAsync(chartPage);
        Assert.Equal(HttpStatusCode.Forbidden, still.StatusCode);
        using (var read = await lapsed.Http.GetAsync("/fhir/Patient/" + _ids["mine"])) Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
        var rebooked = System.Text.Json.Nodes.JsonNode.Parse((await _server.Store.Records.ReadAsync(op, "Appointment", created, CancellationToken.None)).Json!)!;
        rebooked["status"] = "booked";
        Assert.Equal(HttpStatusCode.Forbidden, await PutAsync(lapsed, created, rebooked.ToJsonString()));
        Assert.Equal(("cancelled", 2), await StateAsync());

        async Task<(string?, int)> StateAsync()
        {
            var now = await _server.Store.Records.ReadAsync(op, "Appointment", created, CancellationToken.None);
            using var json = System.Text.Json.JsonDocument.Parse(now.Json!);
            return (json.RootElement.GetProperty("status").GetString(), now.Version);
        }
    }

    /// <summary>A PUT of the appointment through the API, in the person's session (as a clinical app in the browser sends it).</summary>
    private async Task<HttpStatusCode> PutAsync(StaffClient staff, string id, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, "/fhir/Appointment/" + id) { Content = FhirContent.Json(json) };
        request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using var response = await staff.Http.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>A practitioner as FR Core writes one: the RPPS number under its own system, the name, and a role in a specialty.</summary>
    private async Task<string> PractitionerInAsync(string family, string given, string rpps, string? specialty)
    {
        var id = await _server.CreateAsOperatorAsync(_tenant, $$"""
            {"resourceType":"Practitioner","identifier":[{"system":"{{Vauban.Fhir.KnownIdentifierSystems.Rpps}}","value":"{{rpps}}"}],
             "name":[{"family":"{{family}}","given":["{{given}}"]}]}
            """);
        if (specialty is not null)
        {
            await _server.CreateAsOperatorAsync(_tenant, $$"""
                {"resourceType":"PractitionerRole","active":true,"practitioner":{"reference":"Practitioner/{{id}}"},
                 "specialty":[{"coding":[{"system":"http://snomed.info/sct","code":"394579002","display":"{{specialty}}"}]}]}
                """);
        }
        return id;
    }

    [Fact]
    public async Task The_booking_list_is_narrowed_by_a_name_and_tells_namesakes_apart_by_specialty_and_RPPS()
    {
        var cardiologist = await PractitionerInAsync("Moreau", "Louise", "10101010101", "Cardiologie");
        var surgeon = await PractitionerInAsync("Moreau", "Louise", "10202020202", "Chirurgie orthopédique");
        using var desk = await ServiceDeskAsync();

        // Namesakes: the same name, told apart by what each practices and by their RPPS number.
        var (found, page) = await desk.GetAsync($"/patients/{_ids["mine"]}?book=1&with=mor");
        Assert.Equal(HttpStatusCode.OK, found.StatusCode);
        Assert.Contains($"<option value=\"{cardiologist}\">MOREAU Louise · Cardiologie · RPPS 10101010101</option>", page, StringComparison.Ordinal);
        Assert.Contains($"<option value=\"{surgeon}\">MOREAU Louise · Chirurgie orthopédique · RPPS 10202020202</option>", page, StringComparison.Ordinal);
        // Only the names that start with what was typed (family or given): not Auber, not Berthier.
        Assert.DoesNotContain($"<option value=\"{_ids["drA"]}\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain($"<option value=\"{_ids["drB"]}\"", page, StringComparison.Ordinal);
        Assert.Contains("value=\"mor\"", page, StringComparison.Ordinal); // the name stays typed in the search box

        // A booking from the narrowed list with the one chosen, then the chart as it was.
        var fields = Booking(ParisDate(6), "11:00", "30", "Avis chirurgical");
        fields["Practitioner"] = surgeon;
        var (booked, bookedHtml) = await BookAsync(desk, fields, $"/patients/{_ids["mine"]}?book=1&with=mor");
        Assert.True(booked.StatusCode == HttpStatusCode.Redirect, booked.StatusCode + bookedHtml + _server.AllLogs());
        var (_, after) = await desk.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal($"Booked {ParisDate(6)} 11:00 (30 minutes) with MOREAU Louise.", StaffClient.ById(after, "done"));
        var created = Assert.Single(Appointments(after), id => id != _ids["appt"]);
        var read = await _server.Store.Records.ReadAsync(AccessContext.Operator(_tenant, "test"), "Appointment", created, CancellationToken.None);
        Assert.Contains($"\"Practitioner/{surgeon}\"", System.Text.Encoding.UTF8.GetString(read.Json!), StringComparison.Ordinal);

        // No name that starts so: said, not an empty list left unexplained.
        var (none, nonePage) = await desk.GetAsync($"/patients/{_ids["mine"]}?book=1&with=Zyx");
        Assert.Equal(HttpStatusCode.OK, none.StatusCode);
        Assert.Equal("No active practitioner's name starts with “Zyx”.", StaffClient.ById(nonePage, "no-practitioner"));

        // A name too long, or with invisible characters: 400, said, and the whole list instead.
        foreach (var typed in new[] { new string('a', 65), "Mor\u200Beau" })
        {
            var (refused, refusedPage) = await desk.GetAsync($"/patients/{_ids["mine"]}?book=1&with={Uri.EscapeDataString(typed)}");
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, refused.StatusCode + refusedPage);
            Assert.Contains("name to look for", StaffClient.ById(refusedPage, "directory-problem"), StringComparison.Ordinal);
            Assert.Contains($"<option value=\"{_ids["drA"]}\"", refusedPage, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_booking_with_a_practitioner_not_in_the_list_is_refused_and_books_nothing()
    {
        var elsewhere = await _server.Store.Tenants.AddAsync(Establishment + "-elsewhere", CancellationToken.None);
        var foreign = await _server.CreateAsOperatorAsync(elsewhere, Samples.Practitioner(family: "Ailleurs", rpps: "10001234570"));
        var gone = await _server.CreateAsOperatorAsync(_tenant, Samples.Practitioner(family: "Parti", rpps: "10001234571"));
        var op = AccessContext.Operator(_tenant, "test");
        Assert.True((await _server.Store.Records.DeleteAsync(op, "Practitioner", gone, null, CancellationToken.None)).Status is Vauban.Records.RecordStatus.Ok or Vauban.Records.RecordStatus.NoContent);
        var retired = await _server.CreateAsOperatorAsync(_tenant, Samples.Practitioner(family: "Retraité", rpps: "10001234572").Replace("\"resourceType\": \"Practitioner\",", "\"resourceType\": \"Practitioner\", \"active\": false,", StringComparison.Ordinal));
        using var desk = await ServiceDeskAsync();
        var (_, chart) = await desk.GetAsync($"/patients/{_ids["mine"]}?book=1");
        Assert.Contains("id=\"book-form\"", chart, StringComparison.Ordinal);
        foreach (var listed in new[] { foreign, gone, retired }) Assert.DoesNotContain($"<option value=\"{listed}\"", chart, StringComparison.Ordinal);

        // Another establishment's practitioner, a deleted one, an inactive one, a patient's id, an id no record has, no id at all.
        foreach (var forged in new[] { foreign, gone, retired, _ids["other"], "no-such-practitioner", "../Patient/" + _ids["mine"] })
        {
            var fields = Booking(ParisDate(5));
            fields["Practitioner"] = forged;
            var (refused, html) = await BookAsync(desk, fields);
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, forged + ": " + refused.StatusCode + html);
            Assert.Equal("Choose the practitioner the appointment is with in the list.", StaffClient.ById(html, "act-error"));
        }
        var (_, after) = await desk.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Equal([_ids["appt"]], Appointments(after));
        Assert.DoesNotContain(await _server.AuditEntriesOfAsync(_tenant, "cardio.desk@chu.example", AuditAction.Create), e => e.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public async Task A_cancel_records_its_reason_in_the_appointment_and_the_chart_shows_it()
    {
        using var desk = await ServiceDeskAsync();
        var (_, chart) = await desk.GetAsync($"/patients/{_ids["mine"]}");
        Assert.Contains($"id=\"cancel-reason-{_ids["appt"]}\"", chart, StringComparison.Ordinal);
        Assert.Matches($"<details class=\"cancel\">\\s*<summary id=\"cancel-open-{_ids["appt"]}\"", chart); // folded until asked for
        var (done, doneHtml) = await desk.SubmitAsync($"/patients/{_ids["mine"]}",
            new Dictionary<string, string> { ["Appointment"] = _ids["appt"], ["Version"] = "1", ["CancelReason"] = "pat-fb", ["CancelComment"] = "Rappelée le 12, va mieux" },
            $"/patients/{_ids["mine"]}?handler=cancel");
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml + _server.AllLogs());

        var op = AccessContext.Operator(_tenant, "test");
        var read = await _server.Store.Records.ReadAsync(op, "Appointment", _ids["appt"], CancellationToken.None);
        Assert.Equal(2, read.Version);
        using var json = System.Text.Json.JsonDocument.Parse(read.Json!);
        Assert.Equal("cancelled", json.RootElement.GetProperty("status").GetString());
        var reason = json.RootElement.GetProperty("cancelationReason");
        var coding = Assert.Single(reason.GetProperty("coding").EnumerateArray());
        Assert.Equal("http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason", coding.GetProperty("system").GetString());
        Assert.Equal("pat-fb", coding.GetProperty("code").GetString());
        Assert.Equal("Patient: Feeling Better", coding.GetProperty("display").GetString());
        Assert.Equal("The patient feels better — Rappelée le 12, va mieux", reason.GetProperty("text").GetString());

        var (_, after) = await desk.GetAsync($"/patients/{_ids["mine"]}");
        var row = System.Text.RegularExpressions.Regex.Match(after, $"<tr data-ref=\"Appointment/{_ids["appt"]}\">(.*?)</tr>", System.Text.RegularExpressions.RegexOptions.Singleline).Groups[1].Value;
        Assert.Contains("<td>Cancelled (The patient feels better — Rappelée le 12, va mieux)</td>", row, StringComparison.Ordinal);
    }

    // Each refused cancel (the reason posted, the comment, what the page must say). One server and one sign-in for all: none changes anything.
    private static readonly (string? Reason, string? Comment, string Said)[] RefusedCancels =
    [
        (null, null, "Choose the reason in the list."),
        ("", "Plus besoin", "Choose the reason in the list."),
        ("pat-swl", null, "Choose the reason in the list."), // a code of the system, not of the list offered
        ("<script>", null, "Choose the reason in the list."),
        ("pat", "long", "The comment is at most 200 characters."),
        ("pat", "Rappel\u202Eeésinnaé", "invisible characters"),
    ];

    [Fact]
    public async Task A_cancel_without_a_reason_from_the_list_is_refused_and_changes_nothing()
    {
        using var doctor = await SignedInAsync("dr.auber@chu.example");
        foreach (var (reason, comment, said) in RefusedCancels)
        {
            var fields = new Dictionary<string, string> { ["Appointment"] = _ids["appt"], ["Version"] = "1" };
            if (reason is not null) fields["CancelReason"] = reason;
            if (comment is not null) fields["CancelComment"] = comment == "long" ? new string('a', 201) : comment;
            var (refused, html) = await doctor.SubmitAsync($"/patients/{_ids["mine"]}", fields, $"/patients/{_ids["mine"]}?handler=cancel");
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{reason}/{comment}: {refused.StatusCode} {html}");
            Assert.True(StaffClient.ById(html, "act-error")?.Contains(said, StringComparison.Ordinal) == true, $"{reason}/{comment}: {StaffClient.ById(html, "act-error")}");
            Assert.Contains($"id=\"cancel-{_ids["appt"]}\"", html, StringComparison.Ordinal); // still there to cancel
            Assert.Matches($"<details class=\"cancel\" open=\"open\">\\s*<summary id=\"cancel-open-{_ids["appt"]}\"", html); // left open, to choose again
        }
        var read = await _server.Store.Records.ReadAsync(AccessContext.Operator(_tenant, "test"), "Appointment", _ids["appt"], CancellationToken.None);
        Assert.Equal(1, read.Version);
        Assert.DoesNotContain(await _server.AuditEntriesOfAsync(_tenant, "dr.auber@chu.example", AuditAction.Update), e => e.Outcome == AuditOutcome.Success);
    }
}

/// <summary>The server <see cref="PatientChartPageTests"/> share, on a clock the tests move.</summary>
public abstract class PatientChartServer(Engine engine) : SharedServer(engine, new ManualTime(ManualTime.RealNow));

public sealed class PatientChartServer_Sqlite() : PatientChartServer(Engine.Sqlite);

public sealed class PatientChartServer_Postgres() : PatientChartServer(Engine.Postgres);

public sealed class PatientChartPageTests_Sqlite(PatientChartServer_Sqlite shared) : PatientChartPageTests(shared), IClassFixture<PatientChartServer_Sqlite>;

public sealed class PatientChartPageTests_Postgres(PatientChartServer_Postgres shared) : PatientChartPageTests(shared), IClassFixture<PatientChartServer_Postgres>;
