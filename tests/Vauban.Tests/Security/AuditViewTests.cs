// The audit log as the security officer sees it over FHIR (AuditEvent read and search, a patient's access
// history), sign-ins and their failures on the chain, and everyone else refused — on both engines.
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public abstract class AuditViewTests(AuditViewServer shared) : IAsyncLifetime
{
    private const string Password = "tourmaline ferry quietly 42";
    // One server for the class (AuditViewServer), each test in an establishment of its own: what these tests read is the
    // establishment's log, numbered per establishment.
    private string Establishment { get; } = SharedServer.EstablishmentName("hospital-audit");
    private readonly ManualTime _time = shared.Time;
    private readonly VaubanServer _server = shared.Server;
    private HttpClient _client = null!;
    private Tenant _tenant = null!;
    private string _patient = "", _officerSecret = "", _physicianSecret = "", _physicianId = "", _officerId = "";

    public async Task InitializeAsync()
    {
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        _client = await _server.ClientAsync(Establishment);
        using (var created = await _client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Transparence", nir: Samples.ValidNir("2850544109077")))))
        {
            _patient = (await created.BodyAsync()).GetProperty("id").GetString()!;
        }
        for (var i = 0; i < 3; i++) (await _client.GetAsync($"/fhir/Patient/{_patient}")).Dispose();

        var officer = await _server.Store.Accounts.AddAsync(_tenant, "officer@chu.example", StaffRole.SecurityOfficer, null, null, "Sophie Garde", CancellationToken.None);
        var physician = await _server.Store.Accounts.AddAsync(_tenant, "doc@chu.example", StaffRole.Physician, "pract-9", "org-9", "Dr Paul Durand", CancellationToken.None);
        _physicianId = physician.User.PrincipalId;
        _officerId = officer.User.PrincipalId;
        using (var browser = new StaffClient(_server.BaseAddress)) (_officerSecret, _) = await browser.EnrolWithTotpAsync(officer.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
        using (var browser = new StaffClient(_server.BaseAddress)) (_physicianSecret, _) = await browser.EnrolWithTotpAsync(physician.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
    }

    public Task DisposeAsync()
    {
        _client.Dispose();
        return Task.CompletedTask;
    }

    private Task<StaffClient> SignedInAsync(string email, string secret) => StaffClient.SignedInAsync(_server.BaseAddress, Establishment, email, Password, secret, _time);

    private static async Task<JsonElement> OkAsync(HttpClient http, string url)
    {
        using var response = await http.GetAsync(url);
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body;
    }

    [Fact]
    public async Task A_HEAD_is_answered_like_its_GET_without_a_body_and_a_HEAD_of_a_record_is_audited_as_its_read()
    {
        using (var head = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/fhir/Patient/{_patient}")))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal("W/\"1\"", head.Headers.ETag?.ToString());
            Assert.Equal("application/fhir+json", head.Content.Headers.ContentType?.MediaType);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        }
        using (var missing = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/fhir/Patient/no-such-patient")))
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using (var health = await _server.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/healthz")))
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using (var anonymous = await _server.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/fhir/Patient/{_patient}")))
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        var reads = (await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&action=R")).GetProperty("entry").EnumerateArray()
            .Count(e => e.GetProperty("resource").GetProperty("subtype")[0].GetProperty("code").GetString() == "read");
        Assert.Equal(4, reads); // three GETs, then the HEAD
    }

    [Fact]
    public async Task A_refusal_before_the_record_is_read_of_a_patient_named_by_the_request_is_on_that_patients_access_history()
    {
        // A scope refusal (and a guard's containment) is decided before any row is read: its entry named no patient, so the
        // patient's access history missed exactly the attempts of a limited or contained principal.
        using (var limited = await _server.ClientAsync(Establishment, "system/Observation.rs"))
        {
            using (var read = await limited.GetAsync($"/fhir/Patient/{_patient}")) Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
            using (var everything = await limited.GetAsync($"/fhir/Patient/{_patient}/$everything")) Assert.Equal(HttpStatusCode.Forbidden, everything.StatusCode);
        }
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        var refused = (await OkAsync(officer.Http, $"/fhir/AuditEvent?patient=Patient/{_patient}&_count=100")).GetProperty("entry").EnumerateArray()
            .Select(e => e.GetProperty("resource"))
            .Where(e => e.GetProperty("outcome").GetString() != "0")
            .Select(e => e.GetProperty("subtype")[0].GetProperty("code").GetString())
            .ToList();
        Assert.Contains("read", refused);
        Assert.Contains("operation", refused); // $everything
    }

    [Fact]
    public async Task An_AuditEvent_search_given_a_parameter_twice_or_a_list_of_agents_is_400_not_another_answer()
    {
        // The last value was used (patient=X&patient=Y answered for Y), and agent=A,B found nothing: 200 either way.
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        foreach (var query in new[] { $"patient={_patient}&patient=other-patient", $"patient={_patient}&entity=Patient/other-patient", "agent=a&agent=b", "action=R&action=E",
                     $"agent={_physicianId},{_officerId}", "agent=Practitioner/pract-9" })
        {
            using var response = await officer.Http.GetAsync("/fhir/AuditEvent?" + query);
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{query}: {(int)response.StatusCode} {body}");
        }
        // Type history is recorded as such (it was history-instance, as one record's).
        (await _client.GetAsync("/fhir/Patient/_history?_count=1")).Dispose();
        var types = (await OkAsync(officer.Http, "/fhir/AuditEvent?action=history-type")).GetProperty("entry").EnumerateArray().ToList();
        Assert.NotEmpty(types);
    }

    [Fact]
    public async Task The_AuditEvent_view_takes_pretty_as_a_search_does_refuses_a_read_parameter_it_ignored_and_answers_a_write_405()
    {
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        var found = await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&_count=1&_pretty=true");
        var id = found.GetProperty("entry")[0].GetProperty("resource").GetProperty("id").GetString()!;
        await OkAsync(officer.Http, $"/fhir/AuditEvent/{id}?_pretty=true");
        // Indented when asked, as every FHIR answer is; compact otherwise.
        foreach (var url in new[] { $"/fhir/AuditEvent?patient={_patient}&_count=1", $"/fhir/AuditEvent/{id}" })
        {
            var pretty = await officer.Http.GetStringAsync(url + (url.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "_pretty=true");
            Assert.StartsWith("{\n  \"resourceType\": ", pretty.ReplaceLineEndings("\n"), StringComparison.Ordinal);
            Assert.DoesNotContain("\n", await officer.Http.GetStringAsync(url), StringComparison.Ordinal);
        }
        using (var read = await officer.Http.GetAsync($"/fhir/AuditEvent/{id}?_elements=id"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, read.StatusCode);
            Assert.Equal("OperationOutcome", (await read.BodyAsync()).GetProperty("resourceType").GetString());
        }
        // The log is the server's to write: a client's write is 405 (the type is read and searched), with an OperationOutcome.
        foreach (var (method, url) in new[] { ("POST", "/fhir/AuditEvent"), ("PUT", $"/fhir/AuditEvent/{id}"), ("DELETE", $"/fhir/AuditEvent/{id}"), ("DELETE", "/fhir/AuditEvent?patient=x") })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), url);
            if (method != "DELETE") request.Content = FhirContent.Json($$"""{ "resourceType": "AuditEvent", "id": "{{id}}" }""");
            using var response = await _client.SendAsync(request);
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.MethodNotAllowed, $"{method} {url}: {(int)response.StatusCode} {body}");
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
        }
    }

    [Fact]
    public async Task An_AuditEvent_search_given_a_parameter_beside_its_paging_link_is_400_not_the_page_it_carries()
    {
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        var page = await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&_count=1");
        var next = page.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!;
        using var response = await officer.Http.GetAsync(next + "&agent=someone-else");
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        await OkAsync(officer.Http, next + "&_format=json");
    }

    [Fact]
    public async Task The_officer_sees_a_patients_access_history_as_AuditEvents()
    {
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        var bundle = await OkAsync(officer.Http, $"/fhir/AuditEvent?patient=Patient/{_patient}");
        Assert.Equal("Bundle", bundle.GetProperty("resourceType").GetString());
        Assert.Equal("searchset", bundle.GetProperty("type").GetString());
        // Bundle.id and meta.lastUpdated, as the records' searchsets carry them.
        Assert.True(Guid.TryParse(bundle.GetProperty("id").GetString(), out _));
        Assert.True(DateTimeOffset.TryParse(bundle.GetProperty("meta").GetProperty("lastUpdated").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _));
        var events = bundle.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("resource")).ToList();
        Assert.Equal(4, events.Count); // created, then read three times
        Assert.All(events, e =>
        {
            Assert.Equal("AuditEvent", e.GetProperty("resourceType").GetString());
            Assert.Equal("1", e.GetProperty("meta").GetProperty("versionId").GetString());
            Assert.Equal("0", e.GetProperty("outcome").GetString());
            Assert.Equal("test client", e.GetProperty("agent")[0].GetProperty("who").GetProperty("display").GetString());
            Assert.Equal("127.0.0.1", e.GetProperty("agent")[0].GetProperty("network").GetProperty("address").GetString());
            Assert.Equal($"Patient/{_patient}", e.GetProperty("entity")[0].GetProperty("what").GetProperty("reference").GetString());
        });
        Assert.Equal(3, events.Count(e => e.GetProperty("action").GetString() == "R" && e.GetProperty("subtype")[0].GetProperty("code").GetString() == "read"));
        Assert.Single(events, e => e.GetProperty("action").GetString() == "C");

        // Read by id, with an ETag; newest first in the search.
        var id = events[0].GetProperty("id").GetString();
        using var read = await officer.Http.GetAsync($"/fhir/AuditEvent/{id}");
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal("W/\"1\"", read.Headers.ETag?.ToString());

        // Filters: action, date, paging by link.
        Assert.Single((await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&action=C")).GetProperty("entry").EnumerateArray());
        Assert.False((await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&date=lt2020-01-01")).TryGetProperty("entry", out _)); // no empty array
        // (The officer's searches name the patient too, from now on: paging is tested on the three reads.)
        var first = await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&action=read&_count=2");
        Assert.Equal(2, first.GetProperty("entry").GetArrayLength());
        var next = first.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!;
        var second = await OkAsync(officer.Http, next);
        Assert.Single(second.GetProperty("entry").EnumerateArray());

        // The officer's own searches are on the chain too.
        var consulted = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Actions = [AuditAction.AuditRead], Count = 100 }, CancellationToken.None);
        Assert.Contains(consulted!, e => e.Detail.PrincipalName == "Sophie Garde" && e.Detail.Role == "security-officer");
    }

    [Fact]
    public async Task The_officer_finds_who_opened_one_record_of_a_patient_by_entity_across_pages()
    {
        var observations = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            using var created = await _client.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation("Patient/" + _patient)));
            observations.Add((await created.BodyAsync()).GetProperty("id").GetString()!);
        }
        // The first observation read three times, the second once; many entries of the same patient in between.
        for (var i = 0; i < 3; i++) (await _client.GetAsync($"/fhir/Observation/{observations[0]}")).Dispose();
        for (var i = 0; i < 5; i++) (await _client.GetAsync($"/fhir/Patient/{_patient}")).Dispose();
        (await _client.GetAsync($"/fhir/Observation/{observations[1]}")).Dispose();
        (await _client.GetAsync($"/fhir/Observation?patient={_patient}")).Dispose(); // a search that returns both

        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        List<JsonElement> Events(JsonElement bundle) => bundle.TryGetProperty("entry", out var entries) ? entries.EnumerateArray().Select(e => e.GetProperty("resource")).ToList() : [];
        bool Names(JsonElement e, string reference) => e.GetProperty("entity").EnumerateArray().Any(x => x.GetProperty("what").GetProperty("reference").GetString() == reference);

        var all = Events(await OkAsync(officer.Http, $"/fhir/AuditEvent?entity=Observation/{observations[0]}"));
        Assert.Equal(5, all.Count); // created, read three times, returned by the search
        Assert.All(all, e => Assert.True(Names(e, $"Observation/{observations[0]}")));
        Assert.Equal(3, all.Count(e => e.GetProperty("subtype")[0].GetProperty("code").GetString() == "read"));

        // Paged two at a time, the matches keep coming though the patient's other entries lie between them.
        var seen = new List<string>();
        var url = $"/fhir/AuditEvent?entity=Observation/{observations[0]}&_count=2";
        while (true)
        {
            var page = await OkAsync(officer.Http, url);
            seen.AddRange(Events(page).Select(e => e.GetProperty("id").GetString()!));
            var next = page.GetProperty("link").EnumerateArray().FirstOrDefault(l => l.GetProperty("relation").GetString() == "next");
            if (next.ValueKind == JsonValueKind.Undefined) break;
            url = next.GetProperty("url").GetString()!;
        }
        Assert.Equal(all.Select(e => e.GetProperty("id").GetString()!), seen);

        Assert.Equal(3, Events(await OkAsync(officer.Http, $"/fhir/AuditEvent?entity=Observation/{observations[1]}")).Count); // created, read, searched
        // A Patient entity is the patient: the same entries, and the officer's search just before is the newest of them.
        var byPatient = Events(await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&_count=1000")).Select(e => e.GetProperty("id").GetString()).ToList();
        var byEntity = Events(await OkAsync(officer.Http, $"/fhir/AuditEvent?entity=Patient/{_patient}&_count=1000")).Select(e => e.GetProperty("id").GetString()).ToList();
        Assert.Equal(byPatient, byEntity.Skip(1));
        Assert.Empty(Events(await OkAsync(officer.Http, "/fhir/AuditEvent?entity=Observation/no-such-record")));
        foreach (var bad in new[] { "entity=Practitioner/pract-9", "entity=Unknown/1", "entity=Observation/bad%20id", "entity=" })
        {
            using var response = await officer.Http.GetAsync("/fhir/AuditEvent?" + bad);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, bad);
            Assert.Equal("OperationOutcome", (await response.BodyAsync()).GetProperty("resourceType").GetString());
        }
    }

    [Fact]
    public async Task Break_the_glass_shows_as_emergency_treatment_and_the_officers_review_as_system_administration()
    {
        var physician = new AccessContext(new Principal(PrincipalKind.Person, _physicianId, "Dr Paul Durand", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, Practitioner = "pract-9", Service = "org-9", SessionId = "s-durand", AuthenticatedAt = _time.GetUtcNow(),
        }, _tenant, KnownPurposes.Treatment);
        var grant = await _server.Store.BreakTheGlass.OpenAsync(physician, _patient, KnownBreakGlassReasons.Emergency, "Unconscious on arrival, no relative", CancellationToken.None);
        Assert.Equal(BreakGlassStatus.Granted, grant.Status);
        Assert.Equal(Vauban.Records.RecordStatus.Ok, (await _server.Store.Records.ReadAsync(physician, "Patient", _patient, CancellationToken.None)).Status);

        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        static JsonElement Purpose(JsonElement e) => e.GetProperty("purposeOfEvent")[0];
        static IEnumerable<JsonElement> By(JsonElement bundle, string who) => bundle.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("resource"))
            .Where(e => e.GetProperty("agent")[0].GetProperty("who").GetProperty("display").GetString() == who);
        var emergency = By(await OkAsync(officer.Http, $"/fhir/AuditEvent?patient=Patient/{_patient}"), "Dr Paul Durand").ToList();
        Assert.Equal(2, emergency.Count); // the grant, and the read under it
        Assert.All(emergency, e =>
        {
            var coding = Purpose(e).GetProperty("coding")[0];
            Assert.Equal("http://terminology.hl7.org/CodeSystem/v3-ActReason", coding.GetProperty("system").GetString());
            Assert.Equal("ETREAT", coding.GetProperty("code").GetString());
            Assert.StartsWith("break-the-glass: ", Purpose(e).GetProperty("text").GetString(), StringComparison.Ordinal);
        });

        // The grant and its alert on the chain, in the server's name: named in words, never as a FHIR reference (they are not resources).
        var byServer = By(await OkAsync(officer.Http, "/fhir/AuditEvent?action=E&_count=100"), "Vauban").ToList();
        // Only the chain's first entry (the point from which the establishment's security records are on it) names none.
        Assert.Equal("1", Assert.Single(byServer, e => !e.TryGetProperty("entity", out _)).GetProperty("id").GetString());
        var security = byServer.Where(e => e.GetProperty("id").GetString() != "1").SelectMany(e => e.GetProperty("entity").EnumerateArray()).ToList();
        Assert.NotEmpty(security);
        Assert.All(security, x =>
        {
            Assert.False(x.GetProperty("what").TryGetProperty("reference", out _), x.ToString());
            Assert.Matches("^(alert|containment|break-glass)/[0-9]+$", x.GetProperty("what").GetProperty("display").GetString());
        });

        // The officer's search just now names the patient: it is on the next page of the history, as health system administration.
        var review = By(await OkAsync(officer.Http, $"/fhir/AuditEvent?patient=Patient/{_patient}&action=R"), "Sophie Garde").First();
        Assert.Equal("HSYSADMIN", Purpose(review).GetProperty("coding")[0].GetProperty("code").GetString());
        var consulted = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"),
            new AuditQuery { Agent = _officerId, Actions = [AuditAction.AuditRead], Count = 100 }, CancellationToken.None) ?? [];
        Assert.NotEmpty(consulted);
        Assert.All(consulted, e => Assert.Equal(KnownPurposes.SystemAdministration, e.Detail.Purpose));
    }

    [Fact]
    public async Task A_billing_systems_acts_are_recorded_for_healthcare_payment_and_a_default_clients_for_treatment()
    {
        // Registered for billing (HPAYMT): what it does in a record is not care, and the patient's access history must not say so.
        var billing = await _server.Store.Clients.AddAsync(AccessContext.Operator(_tenant, "test"), "billing system", "system/Patient.rs system/Observation.crs",
            null, ClientLimits.None, KnownPurposes.Payment, CancellationToken.None);
        Assert.Equal(KnownPurposes.Payment, billing.Purpose);
        using (var http = new HttpClient { BaseAddress = _server.BaseAddress })
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
                await _server.TokenAsync(billing.ClientId, billing.ClientSecret!));
            using (var read = await http.GetAsync($"/fhir/Patient/{_patient}")) Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            using (var search = await http.GetAsync($"/fhir/Observation?patient={_patient}")) Assert.Equal(HttpStatusCode.OK, search.StatusCode);
            using (var write = await http.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation("Patient/" + _patient))))
                Assert.Equal(HttpStatusCode.Created, write.StatusCode);
            // A refusal (no Encounter scope), $everything and a bulk export are its acts too.
            using (var refused = await http.GetAsync($"/fhir/Encounter?patient={_patient}")) Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            (await http.GetAsync($"/fhir/Patient/{_patient}/$everything")).Dispose();
            using var export = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient/$export");
            export.Headers.Add("Prefer", "respond-async");
            export.Headers.Add(Vauban.Guard.RecordsGuard.ReasonHeader, "Monthly invoicing reconciliation");
            (await http.SendAsync(export)).Dispose();
        }

        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        static JsonElement Purpose(JsonElement e) => e.GetProperty("purposeOfEvent")[0];
        var history = (await OkAsync(officer.Http, $"/fhir/AuditEvent?patient=Patient/{_patient}&_count=100")).GetProperty("entry").EnumerateArray()
            .Select(e => e.GetProperty("resource")).ToList();
        string Who(JsonElement e) => e.GetProperty("agent")[0].GetProperty("who").GetProperty("display").GetString()!;
        var billed = history.Where(e => Who(e) == "billing system").ToList();
        Assert.Contains(billed, e => e.GetProperty("subtype")[0].GetProperty("code").GetString() == "read");
        Assert.Contains(billed, e => e.GetProperty("action").GetString() == "C");
        Assert.All(billed, e =>
        {
            var coding = Purpose(e).GetProperty("coding")[0];
            Assert.Equal(KnownPurposes.CodeSystem, coding.GetProperty("system").GetString());
            Assert.Equal("HPAYMT", coding.GetProperty("code").GetString());
            Assert.Equal("healthcare payment", coding.GetProperty("display").GetString());
            Assert.Equal("healthcare payment (HPAYMT)", Purpose(e).GetProperty("text").GetString());
        });
        // The client registered without a purpose (the set-up's) is still recorded for treatment.
        var cared = history.Where(e => Who(e) == "test client").ToList();
        Assert.NotEmpty(cared);
        Assert.All(cared, e => Assert.Equal("TREAT", Purpose(e).GetProperty("coding")[0].GetProperty("code").GetString()));

        // Every entry of the billing system's acts, whichever patient it names or none ($export's kick-off, the search of
        // another type), records its purpose; only its sign-in keeps what sign-ins record.
        var acts = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Agent = billing.ClientId, Count = 100 },
            CancellationToken.None) ?? [];
        Assert.Contains(acts, e => e.Action == AuditAction.Everything);
        Assert.Contains(acts, e => e.Action == AuditAction.Export);
        Assert.Contains(acts, e => e.Action == AuditAction.Search && e.Outcome != AuditOutcome.Success); // the Encounter search refused
        Assert.All(acts.Where(e => e.Action is not (AuditAction.SignIn or AuditAction.SignInFailure)), e => Assert.Equal(KnownPurposes.Payment, e.Detail.Purpose));
        Assert.Equal("sign-in", Assert.Single(acts, e => e.Action == AuditAction.SignIn).Detail.Purpose);
    }

    [Fact]
    public async Task A_clients_purpose_changed_by_the_administrator_is_recorded_on_its_next_acts_and_the_change_is_audited()
    {
        var client = await _server.Store.Clients.AddAsync(AccessContext.Operator(_tenant, "test"), "billing registered as care", "system/Patient.rs",
            null, ClientLimits.None, KnownPurposes.Treatment, CancellationToken.None);
        using var http = new HttpClient { BaseAddress = _server.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", await _server.TokenAsync(client.ClientId, client.ClientSecret!));
        using (var before = await http.GetAsync($"/fhir/Patient/{_patient}")) Assert.Equal(HttpStatusCode.OK, before.StatusCode);

        Assert.Equal(KnownPurposes.Treatment, await _server.Store.Clients.SetPurposeAsync(AccessContext.Operator(_tenant, "test"), client.ClientId, KnownPurposes.Payment, CancellationToken.None));
        // The token it holds already: its next act is recorded for payment, the one before keeps treatment.
        using (var after = await http.GetAsync($"/fhir/Patient/{_patient}")) Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        var acts = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Agent = client.ClientId, Actions = [AuditAction.Read], Count = 10 },
            CancellationToken.None);
        Assert.Equal([KnownPurposes.Payment, KnownPurposes.Treatment], acts!.Select(e => e.Detail.Purpose)); // newest first
        var changes = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Actions = [AuditAction.Administration], Count = 100 },
            CancellationToken.None);
        Assert.Contains(changes!, e => e.Detail.Note == "clients set-purpose (TREAT to HPAYMT)" && e.Detail.Records.Contains("client:" + client.ClientId));

        // Refused: a code no client can have, a client of no such id; nothing changes.
        await Assert.ThrowsAsync<ArgumentException>(() => _server.Store.Clients.SetPurposeAsync(AccessContext.Operator(_tenant, "test"), client.ClientId, "PATADMIN-NOT", CancellationToken.None));
        Assert.Null(await _server.Store.Clients.SetPurposeAsync(AccessContext.Operator(_tenant, "test"), "vc_nosuchclient", KnownPurposes.Treatment, CancellationToken.None));
        Assert.Equal(KnownPurposes.Payment, (await _server.Store.Clients.ListAsync(_tenant, CancellationToken.None)).Single(c => c.ClientId == client.ClientId).Purpose);
    }

    [Fact]
    public async Task The_access_history_names_the_service_by_its_name_and_a_POST_search_links_to_itself_without_its_values()
    {
        var emergency = await _server.CreateAsOperatorAsync(_tenant, """{ "resourceType": "Organization", "name": "Urgences adultes" }""");
        var nurse = new AccessContext(new Principal(PrincipalKind.Person, "user-nurse-7", "Inès Morel", StaffUser.PersonScopes)
        {
            Role = StaffRole.Nurse, Service = emergency, SessionId = "s-morel",
        }, _tenant, KnownPurposes.Treatment);
        await _server.Store.Audit.AppendAsync(nurse, AuditAction.Read, AuditOutcome.Success, "Patient", [new AuditedRecord("Patient", _patient, _patient)], CancellationToken.None);

        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        using var search = new HttpRequestMessage(HttpMethod.Post, "/fhir/AuditEvent/_search")
        {
            Content = new FormUrlEncodedContent([new("patient", _patient), new("agent", "user-nurse-7")]),
        };
        search.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority)); // a cookie-authenticated POST comes from this site
        using var response = await officer.Http.SendAsync(search);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await response.BodyAsync();
        var read = Assert.Single(bundle.GetProperty("entry").EnumerateArray()).GetProperty("resource");
        Assert.Equal($"Urgences adultes (Organization/{emergency})", read.GetProperty("agent")[0].GetProperty("location").GetProperty("display").GetString());
        // The self link reproduces the search (its parameters sealed in a token), without the patient or agent in the URL.
        var self = bundle.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "self").GetProperty("url").GetString()!;
        Assert.Contains("/fhir/AuditEvent?_page=", self, StringComparison.Ordinal);
        Assert.DoesNotContain(_patient, self, StringComparison.Ordinal);
        Assert.DoesNotContain("user-nurse-7", self, StringComparison.Ordinal);
        var again = await OkAsync(officer.Http, self);
        Assert.Equal(read.GetProperty("id").GetString(), Assert.Single(again.GetProperty("entry").EnumerateArray()).GetProperty("resource").GetProperty("id").GetString());
    }

    [Fact]
    public async Task An_AuditEvent_search_with_count_0_is_the_total_alone_audited_as_a_count_as_a_records_search_with_count_0_is()
    {
        using (var observation = await _client.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{_patient}"))))
        {
            var id = (await observation.BodyAsync()).GetProperty("id").GetString()!;
            (await _client.GetAsync($"/fhir/Observation/{id}")).Dispose();
            using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
            // The patient's entries: a creation and three reads of the patient, the observation's creation and read; the
            // observation's own: its creation and its read.
            foreach (var (query, total) in new[] { ($"patient={_patient}&_count=0", 6), ($"entity=Observation/{id}&_count=0", 2), ($"patient={_patient}&action=C&_count=0", 2) })
            {
                var bundle = await OkAsync(officer.Http, "/fhir/AuditEvent?" + query);
                Assert.True(total == bundle.GetProperty("total").GetInt32(), $"{query}: {bundle}");
                Assert.False(bundle.TryGetProperty("entry", out _), bundle.ToString()); // FHIR JSON has no empty arrays
                Assert.DoesNotContain(bundle.GetProperty("link").EnumerateArray(), l => l.GetProperty("relation").GetString() == "next");
            }
            // The same as the entries the search returns; a count names no entry, so it adds none to the patient's.
            Assert.Equal(6, (await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&_count=100")).GetProperty("entry").GetArrayLength());
        }
        var consulted = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"),
            new AuditQuery { Agent = _officerId, Actions = [AuditAction.AuditRead], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Equal(3, consulted.Count(e => e.Outcome == AuditOutcome.Success && e.Detail.Note == "count only" && e.Detail.Records.Count == 0));
    }

    [Fact]
    public async Task An_AuditEvent_page_audits_only_the_entries_it_returns_not_the_one_read_ahead()
    {
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        static List<string> Ids(JsonElement bundle) => bundle.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("resource").GetProperty("id").GetString()!).ToList();
        // Five entries so far (a creation, three reads, the officer's sign-in): two pages of two, each with a next link.
        var first = await OkAsync(officer.Http, "/fhir/AuditEvent?_count=2");
        var next = first.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!;
        var second = await OkAsync(officer.Http, next);
        var returned = Ids(first).Concat(Ids(second)).ToList();
        Assert.Equal(4, returned.Count);
        Assert.Contains(second.GetProperty("link").EnumerateArray(), l => l.GetProperty("relation").GetString() == "next");
        Assert.Equal(4, returned.Distinct().Count()); // the next page goes on where the first stopped

        // The officer's consultations name exactly the entries returned: none read ahead, on either page.
        var consulted = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"),
            new AuditQuery { Agent = _officerId, Actions = [AuditAction.AuditRead], Count = 100 }, CancellationToken.None) ?? [];
        var audited = consulted.SelectMany(e => e.Detail.Records).Select(r => r["AuditEvent/".Length..]).ToHashSet();
        Assert.Equal(returned.ToHashSet(), audited);
    }

    [Fact]
    public async Task A_client_is_found_by_agent_as_breach_and_the_guard_name_it_and_a_session_is_refused_not_answered_empty()
    {
        // agent=client:vc_… (how `vauban breach --principal` and `guard release` name a client) matched nothing: an empty page, as if
        // the client had done nothing. A session id, which the console shows, matched nothing too.
        (await _client.GetAsync($"/fhir/Patient/{_patient}")).Dispose();
        var clientId = Assert.Single(await _server.Store.Clients.ListAsync(_tenant, CancellationToken.None)).ClientId;
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        var bare = (await OkAsync(officer.Http, $"/fhir/AuditEvent?agent={clientId}&_count=0")).GetProperty("total").GetInt32();
        Assert.True(bare > 0);
        Assert.Equal(bare, (await OkAsync(officer.Http, $"/fhir/AuditEvent?agent=client:{clientId}&_count=0")).GetProperty("total").GetInt32());
        using var session = await officer.Http.GetAsync("/fhir/AuditEvent?agent=session:abc123");
        Assert.Equal(HttpStatusCode.BadRequest, session.StatusCode);
        Assert.Contains("a session's acts are its account's", (await session.BodyAsync()).GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sign_ins_and_failed_sign_ins_are_on_the_chain()
    {
        using (var wrong = new StaffClient(_server.BaseAddress))
        {
            await wrong.PasswordAsync(Establishment, "doc@chu.example", "not the password at all");
            await wrong.PasswordAsync(Establishment, "nobody@chu.example", Password);
        }
        using (var physician = await SignedInAsync("doc@chu.example", _physicianSecret))
        {
            await physician.SubmitAsync("/account/signout", new Dictionary<string, string>());
        }
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        var events = (await OkAsync(officer.Http, $"/fhir/AuditEvent?agent={_physicianId}&action=E")).GetProperty("entry").EnumerateArray()
            .Select(e => e.GetProperty("resource")).ToList();
        Assert.Contains(events, e => e.GetProperty("subtype")[0].GetProperty("code").GetString() == "110122" && e.GetProperty("outcome").GetString() == "4");
        Assert.Contains(events, e => e.GetProperty("subtype")[0].GetProperty("code").GetString() == "110122" && e.GetProperty("outcome").GetString() == "0");
        Assert.Contains(events, e => e.GetProperty("subtype")[0].GetProperty("code").GetString() == "110123");
        Assert.All(events, e => Assert.Equal("Dr Paul Durand", e.GetProperty("agent")[0].GetProperty("who").GetProperty("display").GetString()));
        // What was typed is never recorded.
        Assert.DoesNotContain("not the password", string.Join(' ', events.Select(e => e.ToString())), StringComparison.Ordinal);
        var unknown = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Agent = "unknown", Count = 10 }, CancellationToken.None);
        Assert.Contains(unknown!, e => e.Action == AuditAction.SignInFailure && e.Detail.Note == "unknown account");
        Assert.DoesNotContain(unknown!, e => e.Detail.Records.Any(r => r.Contains("nobody", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task An_entry_is_vread_as_its_one_version_history_is_refused_as_such_and_a_read_of_an_unknown_id_is_audited()
    {
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        var found = await OkAsync(officer.Http, $"/fhir/AuditEvent?patient={_patient}&_count=1");
        var id = found.GetProperty("entry")[0].GetProperty("resource").GetProperty("id").GetString()!;

        // meta.versionId is 1: its vread is the entry; any other version is not known.
        var vread = await OkAsync(officer.Http, $"/fhir/AuditEvent/{id}/_history/1");
        Assert.Equal(id, vread.GetProperty("id").GetString());
        Assert.Equal("1", vread.GetProperty("meta").GetProperty("versionId").GetString());
        foreach (var (url, expected) in new[]
        {
            ($"/fhir/AuditEvent/{id}/_history/2", "has one version, 1"),
            ($"/fhir/AuditEvent/{id}/_history/01", "positive whole number"),
            ("/fhir/AuditEvent/_history", "has no history"),
            ($"/fhir/AuditEvent/{id}/_history", "has no history"),
            ("/fhir/AuditEvent/99999999", "is not known"),
            ("/fhir/AuditEvent/not-a-number", "positive whole numbers"),
        })
        {
            using var response = await officer.Http.GetAsync(url);
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest, $"{url}: {(int)response.StatusCode} {body}");
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.Contains(expected, body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        var metadata = await OkAsync(_server.Http, "/fhir/metadata");
        var auditEvent = metadata.GetProperty("rest")[0].GetProperty("resource").EnumerateArray().Single(r => r.GetProperty("type").GetString() == "AuditEvent");
        Assert.Equal(["read", "vread", "search-type"], auditEvent.GetProperty("interaction").EnumerateArray().Select(i => i.GetProperty("code").GetString()));

        // Probing the log for ids is on the log: each unknown id read is an entry of the officer's, a failure.
        var reads = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Actions = [AuditAction.AuditRead], Agent = _officerId, Count = 100 }, CancellationToken.None);
        Assert.Contains(reads!, e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note is { } note && note.Contains("no entry 99999999", StringComparison.Ordinal));
        Assert.Contains(reads!, e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note is { } note && note.Contains("no entry 0", StringComparison.Ordinal));

        // A role that may not read the log is refused first, whatever the id: 403, not the 404 of an id it is not told about.
        using var physician = await SignedInAsync("doc@chu.example", _physicianSecret);
        using (var read = await physician.Http.GetAsync("/fhir/AuditEvent/not-a-number")) Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
        using (var read = await physician.Http.GetAsync($"/fhir/AuditEvent/{id}/_history/1")) Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
    }

    [Fact]
    public async Task AuditEvent_ids_are_numbered_per_establishment_so_they_tell_nothing_of_another_ones_activity()
    {
        // The first establishment has acted many times (set-up, reads); a second one's entries still start at 1, with no gap.
        for (var i = 0; i < 5; i++) (await _client.GetAsync($"/fhir/Patient/{_patient}")).Dispose();
        var other = await _server.Store.Tenants.AddAsync(Establishment + "-other", CancellationToken.None);
        await _server.CreateAsOperatorAsync(other, Samples.Patient(family: "Ailleurs"));
        var entries = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(other, "test"), new AuditQuery { Count = 100 }, CancellationToken.None);
        Assert.Equal(Enumerable.Range(1, entries!.Count).Select(i => (long)i), entries.Select(e => e.Sequence).Order());
        var mine = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Count = 1 }, CancellationToken.None);
        Assert.True(mine![0].Sequence > entries.Count + 5);
    }

    [Fact]
    public async Task Only_the_security_officer_reads_the_audit_log()
    {
        using var physician = await SignedInAsync("doc@chu.example", _physicianSecret);
        using (var search = await physician.Http.GetAsync($"/fhir/AuditEvent?patient={_patient}"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, search.StatusCode);
            Assert.Equal("OperationOutcome", (await search.BodyAsync()).GetProperty("resourceType").GetString());
        }
        using (var read = await physician.Http.GetAsync("/fhir/AuditEvent/1")) Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
        using (var client = await _client.GetAsync("/fhir/AuditEvent")) Assert.Equal(HttpStatusCode.Forbidden, client.StatusCode);
        using (var anonymous = await _server.Http.GetAsync("/fhir/AuditEvent")) Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        var refusals = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Actions = [AuditAction.AuditRead], Count = 100 }, CancellationToken.None);
        Assert.Contains(refusals!, e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Principal == _physicianId);
    }

    [Theory]
    [InlineData("patient=not/an/id")]
    [InlineData("date=yesterday")]
    [InlineData("date=ap2026-01-01")]
    [InlineData("action=X")]
    [InlineData("_count=-1")]
    [InlineData("_count=1001")]
    [InlineData("_cursor=abc")]
    [InlineData("_page=forged")]
    [InlineData("name=Dupont")]
    public async Task Bad_AuditEvent_searches_get_a_clear_400(string query)
    {
        using var officer = await SignedInAsync("officer@chu.example", _officerSecret);
        using var response = await officer.Http.GetAsync("/fhir/AuditEvent?" + query);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await response.BodyAsync();
        Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()));
    }
}

/// <summary>The server <see cref="AuditViewTests"/> share, its clock at 30 November 2026, 09:00 UTC when it starts.</summary>
public abstract class AuditViewServer(Engine engine) : SharedServer(engine, new ManualTime(new DateTimeOffset(2026, 11, 30, 9, 0, 0, TimeSpan.Zero)));

public sealed class AuditViewServer_Sqlite() : AuditViewServer(Engine.Sqlite);

public sealed class AuditViewServer_Postgres() : AuditViewServer(Engine.Postgres);

public sealed class AuditViewTests_Sqlite(AuditViewServer_Sqlite shared) : AuditViewTests(shared), IClassFixture<AuditViewServer_Sqlite>;

public sealed class AuditViewTests_Postgres(AuditViewServer_Postgres shared) : AuditViewTests(shared), IClassFixture<AuditViewServer_Postgres>;
