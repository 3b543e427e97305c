// Adversarial tests of the guard (issue 5), on both engines, each named after the attack it tries: a
// stolen session or stolen credentials reading many patients, an API client enumerating identities,
// canary patients, bulk reads without a reason; and the other side: containment survives a restart,
// the officer's release works, a clinician opening their own patients all day is never contained.
using System.Globalization;
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public abstract class GuardTests(GuardServer shared) : IAsyncLifetime
{
    private const int Strangers = 40;
    private const int OwnPatients = 35;
    // One server for the class (GuardServer), each test in an establishment of its own: the guard's reading windows, containments,
    // grants, canaries and the canary sightings it remembers are kept per establishment, as are alerts. The test whose guard
    // options differ starts its own server.
    private string Establishment { get; } = SharedServer.EstablishmentName("hopital-guard");
    private readonly Engine _engine = shared.Engine;
    private readonly ManualTime _time = shared.Time;
    private readonly VaubanServer _server = shared.Server;
    private Tenant _tenant = null!;
    private string _drA = "", _cardiology = "";
    private readonly List<string> _strangers = [];
    private readonly List<string> _own = [];
    private IReadOnlyList<string> _canaries = [];
    private static readonly CancellationToken None = CancellationToken.None;

    private RecordsService Records => _server.Store.Records;

    private string Day(int offset) => _time.GetUtcNow().AddDays(offset).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public async Task InitializeAsync()
    {
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, None);
        Task<string> Create(string json) => _server.CreateAsOperatorAsync(_tenant, json);
        _cardiology = await Create("""{"resourceType":"Organization","name":"Cardiologie"}""");
        _drA = await Create(Samples.Practitioner("Alpha", "10000000001"));
        for (var i = 0; i < Strangers; i++) _strangers.Add(await Create(Samples.Patient(family: "Stranger", given: "G" + i)));
        for (var i = 0; i < OwnPatients; i++)
        {
            var patient = await Create(Samples.Patient(family: "Mine", given: "M" + i));
            _own.Add(patient);
            await Create(Samples.Encounter(patient, _drA, Day(-3)));
        }
        _canaries = await _server.Store.Guard.AddCanariesAsync(Records, _tenant, 2, None);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private AccessContext DrA(DateTimeOffset? authenticatedAt = null, string session = "s-1") =>
        new(new Principal(PrincipalKind.Person, "user:drA", "Dr Alpha", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician,
            Practitioner = _drA,
            Service = _cardiology,
            SessionId = session,
            AuthenticatedAt = authenticatedAt ?? _time.GetUtcNow().AddHours(-1),
        }, _tenant, "TREAT");

    private async Task<HttpClient> PatientReaderAsync(string scopes = "system/Patient.rs") => await _server.ClientAsync(Establishment, scopes);

    [Fact]
    public async Task Stolen_session_reading_its_clinicians_patients_as_fast_as_it_can_is_stopped_by_step_up_then_suspended_by_25()
    {
        var opened = new HashSet<string>();
        RecordStatus last = RecordStatus.Ok;
        foreach (var patient in _own)
        {
            var result = await Records.ReadAsync(DrA(), "Patient", patient, None);
            last = result.Status;
            if (result.Status != RecordStatus.Ok) break;
            opened.Add(patient);
        }
        // The thief holds the cookie, not the factors: the step-up stops it.
        Assert.Equal(RecordStatus.ReauthenticationRequired, last);
        Assert.Equal(14, opened.Count);

        // With the factors too (phished), it goes on — and is suspended before the 26th patient.
        foreach (var patient in _own.Skip(opened.Count))
        {
            var result = await Records.ReadAsync(DrA(authenticatedAt: _time.GetUtcNow().AddSeconds(1)), "Patient", patient, None);
            last = result.Status;
            if (result.Status != RecordStatus.Ok) break;
            opened.Add(patient);
        }
        Assert.Equal(RecordStatus.Locked, last);
        Assert.Equal(25, opened.Count);
        var alerts = await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 10, None);
        Assert.Single(alerts, a => a.Kind == KnownAlertKinds.GuardStepUp && a.Principal == "user:drA");
        var alert = Assert.Single(alerts, a => a.Kind == KnownAlertKinds.GuardSuspended);
        Assert.Equal("session:s-1", alert.Principal);
        Assert.DoesNotContain("Mine", alert.Detail, StringComparison.Ordinal);
        // Suspended: even one of its own patients, already opened, stays closed.
        Assert.Equal(RecordStatus.Locked, (await Records.ReadAsync(DrA(), "Patient", _own[0], None)).Status);
    }

    [Fact]
    public async Task A_physician_who_proved_both_factors_again_is_not_asked_again_after_writing_a_note()
    {
        var started = _time.GetUtcNow();
        for (var i = 0; i < 14; i++) Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA(), "Patient", _own[i], None)).Status);
        Assert.Equal(RecordStatus.ReauthenticationRequired, (await Records.ReadAsync(DrA(), "Patient", _own[14], None)).Status);
        _time.Advance(TimeSpan.FromSeconds(5));
        var proven = _time.GetUtcNow();
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA(authenticatedAt: proven), "Patient", _own[14], None)).Status);
        // A note written, and a search that finds nothing: no patient weighed, the episode goes on.
        _time.Advance(TimeSpan.FromSeconds(5));
        using (var note = JsonDocument.Parse(Samples.Observation("Patient/" + _own[14])))
            Assert.Equal(RecordStatus.Created, (await Records.CreateAsync(DrA(authenticatedAt: proven), "Observation", note.RootElement, null, None)).Status);
        Assert.Equal(RecordStatus.Ok, (await Records.SearchAsync(DrA(authenticatedAt: proven), "Patient", [new("family", "nobody-by-that-name")], null, false, None)).Status);
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(_time.GetUtcNow() - started < TimeSpan.FromMinutes(1));
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA(authenticatedAt: proven), "Patient", _own[15], None)).Status);
        Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 20, None), a => a.Kind == KnownAlertKinds.GuardStepUp);
    }

    [Fact]
    public async Task Stolen_credentials_breaking_the_glass_again_and_again_are_contained_at_25_patients_outside_care()
    {
        var opened = 0;
        BreakGlassResult? refusedGrant = null;
        foreach (var patient in _strangers)
        {
            // Slowly enough to stay under the minute and hour bounds, re-proving both factors every time.
            _time.Advance(TimeSpan.FromMinutes(2));
            var fresh = DrA(authenticatedAt: _time.GetUtcNow());
            var grant = await _server.Store.BreakTheGlass.OpenAsync(fresh, patient, KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None);
            if (grant.Status != BreakGlassStatus.Granted) { refusedGrant = grant; break; }
            if ((await Records.ReadAsync(fresh, "Patient", patient, None)).Status != RecordStatus.Ok) break;
            opened++;
        }
        Assert.Equal(25, opened);
        // The 26th grant would cross the day's bound of grants (25, like the bound outside care): refused, and the session
        // contained at once.
        Assert.Equal(BreakGlassStatus.NotAllowed, refusedGrant?.Status);
        Assert.Equal(RecordStatus.Locked, (await Records.ReadAsync(DrA(authenticatedAt: _time.GetUtcNow()), "Patient", _strangers[0], None)).Status);
        // Contained: no more break-the-glass either.
        var again = await _server.Store.BreakTheGlass.OpenAsync(DrA(authenticatedAt: _time.GetUtcNow()), _strangers[^1], KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None);
        Assert.Equal(BreakGlassStatus.NotAllowed, again.Status);
    }

    [Fact]
    public async Task API_client_enumerating_Patient_identities_is_suspended_after_25_with_423_and_an_OperationOutcome()
    {
        using var client = await PatientReaderAsync();
        var opened = 0;
        HttpResponseMessage? refused = null;
        foreach (var patient in _strangers)
        {
            var response = await client.GetAsync($"/fhir/Patient/{patient}");
            if (response.StatusCode != HttpStatusCode.OK) { refused = response; break; }
            response.Dispose();
            opened++;
        }
        Assert.Equal(25, opened);
        Assert.NotNull(refused);
        Assert.Equal((HttpStatusCode)423, refused.StatusCode);
        var outcome = await refused.BodyAsync();
        Assert.Equal("OperationOutcome", outcome.GetProperty("resourceType").GetString());
        Assert.Equal("security", outcome.GetProperty("issue")[0].GetProperty("code").GetString());
        Assert.Contains("security officer", outcome.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        refused.Dispose();
        // Suspended for everything, searches included.
        using var search = await client.GetAsync("/fhir/Patient?_count=1");
        Assert.Equal((HttpStatusCode)423, search.StatusCode);
    }

    [Fact]
    public async Task API_client_reading_identities_through_a_batch_Bundle_is_contained_like_single_reads()
    {
        using var client = await PatientReaderAsync();
        var entries = string.Join(",\n", _strangers.Select(p => $$"""{ "request": { "method": "GET", "url": "Patient/{{p}}" } }"""));
        using var response = await client.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ {{entries}} ] }"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var statuses = (await response.BodyAsync()).GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("response").GetProperty("status").GetString()!).ToList();
        Assert.Equal(25, statuses.Count(s => s.StartsWith("200", StringComparison.Ordinal)));
        Assert.All(statuses.Skip(25), s => Assert.StartsWith("423", s, StringComparison.Ordinal));
    }

    [Fact]
    public async Task API_client_asking_for_a_page_of_50_patients_is_suspended_before_the_page_leaves()
    {
        using var client = await PatientReaderAsync();
        using var page = await client.GetAsync("/fhir/Patient?_count=50");
        Assert.Equal((HttpStatusCode)423, page.StatusCode);
        Assert.DoesNotContain("Stranger", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_suspended_client_gets_nothing_through_any_door_read_vread_history_search_everything_bundles_or_writes()
    {
        using var client = await PatientReaderAsync("system/*.cruds");
        using (var canary = await client.GetAsync($"/fhir/Patient/{_canaries[0]}")) Assert.Equal((HttpStatusCode)423, canary.StatusCode);
        var p = _strangers[0];
        foreach (var url in new[] { $"/fhir/Patient/{p}", $"/fhir/Patient/{p}/_history/1", $"/fhir/Patient/{p}/_history", "/fhir/Patient/_history",
            "/fhir/Patient?family=stranger", "/fhir/Encounter?_include=Encounter:patient", $"/fhir/Patient/{p}/$everything" })
        {
            using var response = await client.GetAsync(url);
            Assert.True(response.StatusCode == (HttpStatusCode)423, url + " → " + (int)response.StatusCode);
            Assert.DoesNotContain("Stranger", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var search = await client.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent(new Dictionary<string, string> { ["family"] = "stranger" })))
            Assert.Equal((HttpStatusCode)423, search.StatusCode);
        using (var create = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "New")))) Assert.Equal((HttpStatusCode)423, create.StatusCode);
        using (var conditional = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient(family: "New")) })
        {
            conditional.Headers.Add("If-None-Exist", "family=stranger");
            using var response = await client.SendAsync(conditional);
            Assert.Equal((HttpStatusCode)423, response.StatusCode);
        }
        // Conditional updates and deletes are refused before their search runs: whether one matched is not told.
        using (var update = await client.PutAsync($"/fhir/Patient?_id={p}", FhirContent.Json(Samples.Patient(family: "New")))) Assert.Equal((HttpStatusCode)423, update.StatusCode);
        using (var delete = await client.DeleteAsync($"/fhir/Patient?_id={p}")) Assert.Equal((HttpStatusCode)423, delete.StatusCode);
        using (var missing = await client.DeleteAsync("/fhir/Patient?_id=no-such-patient")) Assert.Equal((HttpStatusCode)423, missing.StatusCode);
        foreach (var type in new[] { "batch", "transaction" })
        {
            using var bundle = await client.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "{{type}}", "entry": [ { "request": { "method": "GET", "url": "Patient/{{p}}" } } ] }"""));
            var text = await bundle.Content.ReadAsStringAsync();
            Assert.DoesNotContain("Stranger", text, StringComparison.Ordinal);
            Assert.True(bundle.StatusCode == (HttpStatusCode)423 || text.Contains("\"423", StringComparison.Ordinal), type + " → " + (int)bundle.StatusCode + " " + text);
        }
    }

    [Fact]
    public async Task Reading_a_canary_patient_suspends_the_client_at_once()
    {
        using var client = await PatientReaderAsync();
        using (var ok = await client.GetAsync($"/fhir/Patient/{_strangers[0]}")) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using (var canary = await client.GetAsync($"/fhir/Patient/{_canaries[0]}")) Assert.Equal((HttpStatusCode)423, canary.StatusCode);
        using (var after = await client.GetAsync($"/fhir/Patient/{_strangers[1]}")) Assert.Equal((HttpStatusCode)423, after.StatusCode);
        var alerts = await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 10, None);
        var alert = Assert.Single(alerts, a => a.Kind == KnownAlertKinds.GuardCanary && a.Detail.Contains(_canaries[0], StringComparison.Ordinal));
        // Whoever watches the server's log (operations, a SIEM) hears of it too: the alert's id, kind and whom it is about, never its
        // detail — not the canary's id, which would tell an insider reading the log which patients to avoid.
        var told = _server.Logs.Where(l => l.Contains("Security alert", StringComparison.Ordinal)).ToList();
        Assert.Contains(told, l => l.Contains($"Security alert {alert.Id} (guard-canary) in establishment {_tenant.Id}, about {alert.Principal}", StringComparison.Ordinal));
        Assert.StartsWith("vc_", alert.Principal, StringComparison.Ordinal);
        Assert.DoesNotContain(_canaries[0], _server.AllLogs(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_conditional_update_or_delete_whose_criteria_match_a_canary_suspends_the_client_at_once_and_changes_nothing()
    {
        // The match's id leaves with a conditional update's answer, and a delete tells that one matched: the guard is asked of it.
        foreach (var (method, canary) in new[] { ("PUT", _canaries[0]), ("DELETE", _canaries[1]) })
        {
            using var client = await PatientReaderAsync("system/Patient.cruds");
            using var request = new HttpRequestMessage(new HttpMethod(method), $"/fhir/Patient?_id={canary}");
            if (method == "PUT") request.Content = FhirContent.Json(Samples.Patient(family: "Overwritten"));
            using (var response = await client.SendAsync(request))
            {
                Assert.Equal((HttpStatusCode)423, response.StatusCode);
                Assert.DoesNotContain(canary, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            using (var after = await client.GetAsync($"/fhir/Patient/{_strangers[0]}")) Assert.Equal((HttpStatusCode)423, after.StatusCode);
            var stored = await Records.ReadAsync(AccessContext.Operator(_tenant, "test"), "Patient", canary, None);
            Assert.Equal((RecordStatus.Ok, 1), (stored.Status, stored.Version));
        }
        // Contained inside a write transaction, the guard writes the containment and its alert once the transaction has ended, beside
        // the answer: waited for here (the alert was read before it was written, now and then, on PostgreSQL).
        await _server.Store.Guard.FlushAsync();
        var alerts = await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 10, None);
        var alert = Assert.Single(alerts, a => a.Kind == KnownAlertKinds.GuardCanary && a.Detail.Contains(_canaries[0], StringComparison.Ordinal));
        // Whoever watches the server's log (operations, a SIEM) hears of it too: the alert's id, kind and whom it is about, never its
        // detail — not the canary's id, which would tell an insider reading the log which patients to avoid.
        var told = _server.Logs.Where(l => l.Contains("Security alert", StringComparison.Ordinal)).ToList();
        Assert.Contains(told, l => l.Contains($"Security alert {alert.Id} (guard-canary) in establishment {_tenant.Id}, about {alert.Principal}", StringComparison.Ordinal));
        Assert.StartsWith("vc_", alert.Principal, StringComparison.Ordinal);
        Assert.DoesNotContain(_canaries[0], _server.AllLogs(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_patch_of_a_canary_suspends_the_client_at_once_and_changes_nothing()
    {
        // A patch answers the whole record: a test that always holds makes it a read of whatever id the client names.
        using var client = await PatientReaderAsync("system/Patient.ru");
        HttpRequestMessage Patch(string patient)
        {
            var request = new HttpRequestMessage(HttpMethod.Patch, $"/fhir/Patient/{patient}")
            {
                Content = new StringContent("""[ { "op": "test", "path": "/resourceType", "value": "Patient" } ]""", System.Text.Encoding.UTF8),
            };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json-patch+json");
            return request;
        }
        using (var request = Patch(_strangers[0]))
        using (var ok = await client.SendAsync(request)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using (var request = Patch(_canaries[0]))
        using (var canary = await client.SendAsync(request))
        {
            Assert.Equal((HttpStatusCode)423, canary.StatusCode);
            Assert.DoesNotContain("\"name\"", await canary.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var after = await client.GetAsync($"/fhir/Patient/{_strangers[1]}")) Assert.Equal((HttpStatusCode)423, after.StatusCode);
        var stored = await Records.ReadAsync(AccessContext.Operator(_tenant, "test"), "Patient", _canaries[0], None);
        Assert.Equal((RecordStatus.Ok, 1), (stored.Status, stored.Version));
        // The containment holds at once; its alert is written just after the patch's transaction ends (the guard's own writes do
        // not wait for the writer slot that transaction holds).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        IReadOnlyList<SecurityAlert> alerts;
        while (!(alerts = await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 10, None)).Any(a => a.Kind == KnownAlertKinds.GuardCanary) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        Assert.Contains(alerts, a => a.Kind == KnownAlertKinds.GuardCanary && a.Detail.Contains(_canaries[0], StringComparison.Ordinal));
    }

    /// <summary>Search criteria that match the canary without naming its id: its first identifier, else its family name and birth date.</summary>
    private async Task<string> CanaryCriteriaAsync(string canary)
    {
        var stored = await Records.ReadAsync(AccessContext.Operator(_tenant, "test"), "Patient", canary, None);
        var json = JsonDocument.Parse(stored.Json!).RootElement;
        if (json.TryGetProperty("identifier", out var identifiers) && identifiers.GetArrayLength() > 0)
            return "identifier=" + Uri.EscapeDataString(identifiers[0].GetProperty("system").GetString() + "|" + identifiers[0].GetProperty("value").GetString());
        return "family=" + Uri.EscapeDataString(json.GetProperty("name")[0].GetProperty("family").GetString()!) + "&birthdate=" + json.GetProperty("birthDate").GetString();
    }

    [Fact]
    public async Task Review_a_transaction_conditional_update_whose_criteria_match_a_canary_trips_the_guard_and_does_not_tell_its_id_through_the_fullUrl_check()
    {
        // The fullUrl of a conditional PUT is compared with the id its criteria matched, before the guard is asked of the match:
        // the 400 named the match's id (here a canary's), with no audit entry and no guard.
        using var client = await PatientReaderAsync("system/Patient.cruds");
        var criteria = await CanaryCriteriaAsync(_canaries[0]);
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "https://elsewhere.example/fhir/Patient/guess", "resource": {{Samples.Patient(family: "Probe")}}, "request": { "method": "PUT", "url": "Patient?{{criteria}}" } } ] }
            """;
        using var response = await client.PostAsync("/fhir", FhirContent.Json(bundle));
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(_canaries[0], text, StringComparison.Ordinal);
        Assert.True(response.StatusCode == (HttpStatusCode)423, text);
    }

    [Fact]
    public async Task Review_a_transaction_whose_conditional_entry_matches_a_canary_another_entry_names_trips_the_guard()
    {
        // Criteria matched to the record another entry changes by id: the 400 says so (that the canary answers these criteria)
        // before the guard is asked of the match.
        using var client = await PatientReaderAsync("system/Patient.cruds");
        var criteria = await CanaryCriteriaAsync(_canaries[0]);
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "request": { "method": "DELETE", "url": "Patient/{{_canaries[0]}}" } },
              { "request": { "method": "DELETE", "url": "Patient?{{criteria}}" } } ] }
            """;
        using var response = await client.PostAsync("/fhir", FhirContent.Json(bundle));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == (HttpStatusCode)423, text);
    }

    [Fact]
    public async Task Review_a_conditional_update_matching_a_canary_with_another_id_in_its_body_trips_the_guard()
    {
        // One match and another id in the body: 400 "not the id of the Patient the criteria match" — it matched, and was not weighed.
        using var client = await PatientReaderAsync("system/Patient.cruds");
        var criteria = await CanaryCriteriaAsync(_canaries[0]);
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient?{criteria}") { Content = FhirContent.Json(Samples.Patient(family: "Probe", id: "probe-id")) };
        request.Headers.TryAddWithoutValidation("If-Match", "W/\"999\"");
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == (HttpStatusCode)423, text);
    }

    [Fact]
    public async Task A_canary_in_a_search_page_suspends_the_client_at_once()
    {
        using var client = await PatientReaderAsync();
        var ids = string.Join(',', _strangers.Take(4).Append(_canaries[1]));
        using (var page = await client.GetAsync($"/fhir/Patient?_id={ids}")) Assert.Equal((HttpStatusCode)423, page.StatusCode);
        using (var after = await client.GetAsync($"/fhir/Patient/{_strangers[5]}")) Assert.Equal((HttpStatusCode)423, after.StatusCode);
    }

    private AccessContext Desk(string id) =>
        new(new Principal(PrincipalKind.Person, id, "Accueil", StaffUser.PersonScopes) { Role = StaffRole.Secretary, SessionId = "s-" + id, AuthenticatedAt = _time.GetUtcNow().AddHours(-1) },
            _tenant, "TREAT");

    [Fact]
    public async Task A_canary_met_in_a_persons_narrow_search_is_told_to_the_officer_once_a_day_per_principal_and_canary_not_at_every_search()
    {
        async Task SearchAsync(AccessContext who, string canary) =>
            // narrow: told, not contained
            Assert.Equal(RecordStatus.Ok, (await Records.SearchAsync(who, "Patient", [new("_id", $"{_strangers[0]},{canary}")], null, false, None)).Status);
        async Task<int> SeenAsync(string canary) => (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None))
            .Count(a => a.Kind == KnownAlertKinds.GuardCanarySeen && a.Detail.Contains(canary, StringComparison.Ordinal));
        var desk = Desk("user:desk-1");
        for (var i = 0; i < 3; i++) await SearchAsync(desk, _canaries[0]);
        Assert.Equal(1, await SeenAsync(_canaries[0]));
        await SearchAsync(desk, _canaries[1]);
        Assert.Equal(1, await SeenAsync(_canaries[1]));
        await SearchAsync(Desk("user:desk-2"), _canaries[0]);
        Assert.Equal(2, await SeenAsync(_canaries[0]));
    }

    [Fact]
    public async Task An_API_client_has_no_narrow_search_a_page_of_ids_with_a_canary_suspends_it()
    {
        // The page returned the canary's whole identity with a once-a-day alert: an enumerator asking for ids three by three passed.
        using var client = await PatientReaderAsync();
        using (var page = await client.GetAsync($"/fhir/Patient?_id={_strangers[0]},{_canaries[0]}")) Assert.Equal((HttpStatusCode)423, page.StatusCode);
        using (var after = await client.GetAsync($"/fhir/Patient/{_strangers[1]}")) Assert.Equal((HttpStatusCode)423, after.StatusCode);
    }

    private AccessContext Administrator() => new(new Principal(PrincipalKind.Person, "user:adm", "Adam Admin", StaffUser.PersonScopes)
        { Role = StaffRole.Administrator, SessionId = "s-adm", AuthenticatedAt = _time.GetUtcNow() }, _tenant, KnownPurposes.SystemAdministration);

    private async Task<List<SecurityAlert>> CanaryAlertsAsync()
    {
        await _server.Store.Guard.FlushAsync();
        return [.. (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None)).Where(a => a.Kind == KnownAlertKinds.GuardCanary)];
    }

    [Fact]
    public async Task A_client_suspended_for_its_volume_that_walks_on_into_a_canary_is_held_for_the_canary_which_the_officer_alone_releases()
    {
        // helper-105 M1: a volume suspension landing first (two requests crossing together, or one before the other) kept the canary's
        // cause and alert from being written, and the client was an administrator's to release.
        using var client = await PatientReaderAsync();
        var opened = 0;
        while (opened < _strangers.Count)
        {
            using var read = await client.GetAsync($"/fhir/Patient/{_strangers[opened]}");
            if (read.StatusCode != HttpStatusCode.OK) { Assert.Equal((HttpStatusCode)423, read.StatusCode); break; }
            opened++;
        }
        Assert.Equal(25, opened);
        var suspended = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        Assert.Equal(ContainmentCauses.Volume, suspended.Cause);
        Assert.Empty(await CanaryAlertsAsync());

        using (var canary = await client.GetAsync($"/fhir/Patient/{_canaries[0]}")) Assert.Equal((HttpStatusCode)423, canary.StatusCode);
        var alert = Assert.Single(await CanaryAlertsAsync());
        Assert.Contains($"canary Patient/{_canaries[0]} reached by read on Patient; refused, nothing of it was returned (already suspended for its volume).", alert.Detail, StringComparison.Ordinal);
        Assert.Contains(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == suspended.Principal && c.Cause == ContainmentCauses.Canary);
        // Held for the canary now: the next canary it reads is not told again, and an administrator's release frees nothing.
        using (var again = await client.GetAsync($"/fhir/Patient/{_canaries[1]}")) Assert.Equal((HttpStatusCode)423, again.StatusCode);
        Assert.Single(await CanaryAlertsAsync());
        Assert.Equal(ReleaseStatus.CanaryIsTheOfficers, (await _server.Store.Guard.ReleaseAsync(Administrator(), suspended.Principal, None)).Status);
        using (var still = await client.GetAsync($"/fhir/Patient/{_strangers[0]}")) Assert.Equal((HttpStatusCode)423, still.StatusCode);
        Assert.Equal(2, (await _server.Store.Guard.ReleaseAsync(AccessContext.Operator(_tenant, "guard review"), suspended.Principal, None)).Released);
        using (var freed = await client.GetAsync($"/fhir/Patient/{_strangers[0]}")) Assert.Equal(HttpStatusCode.OK, freed.StatusCode);
    }

    [Fact]
    public async Task A_held_principals_canary_containment_is_written_before_it_is_answered()
    {
        // helper-109: written after the answer, a crash in between lost the canary's cause at the next start (the volume row
        // remained, an administrator's to release). Read back by a second store on the same database, without waiting for the guard.
        Assert.Equal(BreakGlassStatus.Granted, (await _server.Store.BreakTheGlass.OpenAsync(DrA(authenticatedAt: _time.GetUtcNow()), _canaries[0],
            KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None)).Status);
        Assert.Equal(25, await ReadOwnPatientsUntilRefusedAsync(DrA, 0));
        await _server.Store.Guard.FlushAsync();
        var deferrals = _server.Store.Guard.Deferrals;
        Assert.Equal(RecordStatus.Locked, (await Records.ReadAsync(DrA(_time.GetUtcNow(), "s-1"), "Patient", _canaries[0], None)).Status);
        Assert.Equal(deferrals, _server.Store.Guard.Deferrals);
        await using var other = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = _time }, None);
        Assert.Contains(await other.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == "user:drA" && c.Cause == ContainmentCauses.Canary);
        Assert.Equal(ReleaseStatus.CanaryIsTheOfficers, (await other.Guard.ReleaseAsync(Administrator(), "user:drA", None)).Status);
    }

    [Fact]
    public async Task A_canary_in_a_request_that_passed_the_door_before_its_client_was_suspended_still_makes_the_containment_the_canarys()
    {
        // Two requests of one client crossing together: the volume suspension lands between the other's door (not yet held) and the
        // guard's weighing of its page, which carries a canary. Asked of the guard directly, as that second request does.
        using var client = await PatientReaderAsync();
        var opened = 0;
        while (true)
        {
            using var read = await client.GetAsync($"/fhir/Patient/{_strangers[opened]}");
            if (read.StatusCode != HttpStatusCode.OK) break;
            opened++;
        }
        var suspended = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        var context = new AccessContext(new Principal(PrincipalKind.ApiClient, suspended.Principal, "reader", StaffUser.PersonScopes), _tenant, "TREAT");
        var decision = await _server.Store.Guard.AdmitAsync(context, new GuardRequest(Interaction.Search, "Patient", 2, [_strangers[39], _canaries[0]], [_strangers[39], _canaries[0]]), None);
        Assert.Equal(GuardVerdict.Suspended, decision.Verdict);
        Assert.Contains("(page 1, 2 patients); refused, nothing of it was returned (already suspended for its volume).", Assert.Single(await CanaryAlertsAsync()).Detail, StringComparison.Ordinal);
        Assert.Contains(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == suspended.Principal && c.Cause == ContainmentCauses.Canary);
        // Asked again (the third request of the crossing): held for the canary, told once.
        Assert.Equal(GuardVerdict.Suspended, (await _server.Store.Guard.AdmitAsync(context, new GuardRequest(Interaction.Read, "Patient", 1, [_canaries[1]], [_canaries[1]]), None)).Verdict);
        Assert.Single(await CanaryAlertsAsync());
    }

    [Fact]
    public async Task A_suspended_session_reading_a_canary_under_its_grant_is_told_what_it_was_told_for_any_id_and_the_account_is_locked_for_the_canary()
    {
        // The 423 must not tell a held principal which id is a canary: the suspended session got "locked" for the canary alone.
        Assert.Equal(BreakGlassStatus.Granted, (await _server.Store.BreakTheGlass.OpenAsync(DrA(authenticatedAt: _time.GetUtcNow()), _canaries[0],
            KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None)).Status);
        Assert.Equal(25, await ReadOwnPatientsUntilRefusedAsync(DrA, 0));
        var ordinary = await Records.ReadAsync(DrA(_time.GetUtcNow(), "s-1"), "Patient", _own[30], None);
        var canary = await Records.ReadAsync(DrA(_time.GetUtcNow(), "s-1"), "Patient", _canaries[0], None);
        Assert.Equal(ordinary.Status, canary.Status);
        Assert.Equal(Assert.Single(ordinary.Issues!).Diagnostics, Assert.Single(canary.Issues!).Diagnostics);
        Assert.Contains("(already suspended for its volume).", Assert.Single(await CanaryAlertsAsync()).Detail, StringComparison.Ordinal);
        Assert.Contains(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == "user:drA" && c.Level == ContainmentLevels.Locked && c.Cause == ContainmentCauses.Canary);
    }

    [Fact]
    public async Task An_account_locked_for_its_volume_that_then_opens_a_canary_under_its_grant_is_the_canarys_across_a_restart()
    {
        // Stolen factors: a grant taken on a canary, then two sessions' sweeps lock the account for its volume, then the canary is
        // opened. The lock becomes the canary's; read back after a restart, of the account's two locks the canary's holds (the first
        // read had been kept: the volume's).
        Assert.Equal(BreakGlassStatus.Granted, (await _server.Store.BreakTheGlass.OpenAsync(DrA(authenticatedAt: _time.GetUtcNow()), _canaries[0],
            KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None)).Status);
        Assert.Equal(25, await ReadOwnPatientsUntilRefusedAsync(DrA, 0));
        foreach (var patient in _own.Skip(25))
        {
            if ((await Records.ReadAsync(DrA(_time.GetUtcNow().AddSeconds(1), "s-2"), "Patient", patient, None)).Status != RecordStatus.Ok) break;
        }
        Assert.Contains(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == "user:drA" && c.Level == ContainmentLevels.Locked && c.Cause == ContainmentCauses.Volume);
        Assert.Empty(await CanaryAlertsAsync());

        Assert.Equal(RecordStatus.Locked, (await Records.ReadAsync(DrA(_time.GetUtcNow(), "s-3"), "Patient", _canaries[0], None)).Status);
        Assert.Contains("(already locked for its volume).", Assert.Single(await CanaryAlertsAsync()).Detail, StringComparison.Ordinal);
        Assert.Contains(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == "user:drA" && c.Cause == ContainmentCauses.Canary);
        await using (var restarted = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey)
            { Time = _time, Guard = new GuardOptions { SlowDelay = TimeSpan.Zero } }, None))
        {
            Assert.Equal(RecordStatus.Locked, (await restarted.Records.ReadAsync(DrA(_time.GetUtcNow(), "s-4"), "Patient", _canaries[0], None)).Status);
            await restarted.Guard.FlushAsync();
            Assert.Single(await CanaryAlertsAsync());
            Assert.Equal(ReleaseStatus.CanaryIsTheOfficers, (await restarted.Guard.ReleaseAsync(Administrator(), "user:drA", None)).Status);
        }
        // A patient the policy hides from the held principal is no canary reached: its 423 contains no one further.
        Assert.Equal(RecordStatus.Locked, (await Records.ReadAsync(DrA(_time.GetUtcNow(), "s-5"), "Patient", _canaries[1], None)).Status);
        Assert.Single(await CanaryAlertsAsync());
    }

    [Fact]
    public void The_canary_sightings_remembered_stay_bounded_under_a_flood_of_principals_within_one_day()
    {
        // Each new (principal, canary) pair past the bound scanned every pair again and removed none of one day: the map grew
        // without end, each new pair a scan of all. Now the newest half is kept; what was just seen is still not told twice.
        var guard = _server.Store.Guard;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 0; i < RecordsGuard.MaxCanarySeen * 3; i++)
        {
            Assert.True(guard.FirstSightingToday(_tenant.Id, "client:flood-" + i, _canaries[0], now + i));
            Assert.InRange(guard.CanarySightingsHeld, 1, RecordsGuard.MaxCanarySeen + 1);
        }
        var newest = "client:flood-" + (RecordsGuard.MaxCanarySeen * 3 - 1);
        Assert.False(guard.FirstSightingToday(_tenant.Id, newest, _canaries[0], now + RecordsGuard.MaxCanarySeen * 3));
    }

    [Fact]
    public async Task Canary_patients_look_like_any_other_patient()
    {
        var canary = await Records.ReadAsync(AccessContext.Operator(_tenant, "test"), "Patient", _canaries[0], None);
        var json = System.Text.Encoding.UTF8.GetString(canary.Json!);
        Assert.DoesNotContain("canary", json, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("\"tag\"", json, StringComparison.Ordinal);
        Assert.Contains("\"name\"", json, StringComparison.Ordinal);
        Assert.Contains("\"birthDate\"", json, StringComparison.Ordinal);
        Assert.Equal(2, (await _server.Store.Guard.CanariesAsync(_tenant.Id, None)).Count);
    }

    [Fact]
    public async Task A_physician_opening_a_canary_through_break_the_glass_gets_the_account_locked()
    {
        var fresh = DrA(authenticatedAt: _time.GetUtcNow());
        Assert.Equal(BreakGlassStatus.Granted, (await _server.Store.BreakTheGlass.OpenAsync(fresh, _canaries[0], KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None)).Status);
        Assert.Equal(RecordStatus.Locked, (await Records.ReadAsync(fresh, "Patient", _canaries[0], None)).Status);
        // Another session of the same account is held too.
        Assert.Equal(RecordStatus.Locked, (await Records.ReadAsync(DrA(session: "s-2"), "Patient", _own[0], None)).Status);
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        Assert.Equal(ContainmentLevels.Locked, contained.Level);
        Assert.Equal("user:drA", contained.Principal);
    }

    [Fact]
    public async Task Containment_survives_a_restart_and_release_lets_the_principal_read_again()
    {
        Assert.Equal(RecordStatus.Locked, (await ReadCanaryWithGrantAsync()).Status);
        await using (var restarted = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = _time }, None))
        {
            Assert.Equal(RecordStatus.Locked, (await restarted.Records.ReadAsync(DrA(), "Patient", _own[0], None)).Status);
            Assert.Equal(1, (await restarted.Guard.ReleaseAsync(AccessContext.Operator(_tenant, "guard review"), "user:drA", None)).Released);
            Assert.Equal(RecordStatus.Ok, (await restarted.Records.ReadAsync(DrA(), "Patient", _own[0], None)).Status);
            Assert.Equal(0, (await restarted.Guard.ReleaseAsync(AccessContext.Operator(_tenant, "guard review"), "user:drA", None)).Released);
        }
        // The running server learns of a release made elsewhere within its refresh interval.
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA(), "Patient", _own[0], None)).Status);
        Assert.Contains((await _server.Store.Alerts.ListAsync(_tenant.Id, false, 10, None)), a => a.Kind == KnownAlertKinds.GuardReleased);
    }

    private async Task<RecordResult> ReadCanaryWithGrantAsync()
    {
        var fresh = DrA(authenticatedAt: _time.GetUtcNow());
        await _server.Store.BreakTheGlass.OpenAsync(fresh, _canaries[1], KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None);
        return await Records.ReadAsync(fresh, "Patient", _canaries[1], None);
    }

    [Fact]
    public async Task A_suspended_API_client_is_released_by_the_officer_and_reads_again()
    {
        using var client = await PatientReaderAsync();
        using (var canary = await client.GetAsync($"/fhir/Patient/{_canaries[0]}")) Assert.Equal((HttpStatusCode)423, canary.StatusCode);
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        Assert.Equal(1, (await _server.Store.Guard.ReleaseAsync(AccessContext.Operator(_tenant, "guard review"), contained.Principal, None)).Released);
        using (var ok = await client.GetAsync($"/fhir/Patient/{_strangers[0]}")) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    /// <summary>drA's (or <paramref name="practitioner"/>'s) appointments, <paramref name="perDay"/> a day from <paramref name="fromDay"/>
    /// days after the day after tomorrow (UTC) on: the patients given, in order. Returns the day after tomorrow.</summary>
    private async Task<DateOnly> ScheduleAsync(List<string> patients, int perDay, int fromDay = 0, string? practitioner = null)
    {
        var day = DateOnly.FromDateTime(_time.GetUtcNow().UtcDateTime).AddDays(2);
        var first = day.AddDays(fromDay);
        for (var i = 0; i < patients.Count; i++)
        {
            var start = first.AddDays(i / perDay).ToDateTime(new TimeOnly(8, 0)).AddMinutes(i % perDay * 10);
            await _server.CreateAsOperatorAsync(_tenant, Samples.Appointment("Patient/" + patients[i], "Practitioner/" + (practitioner ?? _drA),
                start.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        }
        return day;
    }

    /// <summary>drA's (or <paramref name="practitioner"/>'s) appointments from <paramref name="from"/> for <paramref name="days"/> days,
    /// each with its patient, asked by drA at once.</summary>
    private Task<SearchPage> AgendaAsync(DateOnly from, int days, string? practitioner = null) => Records.SearchAsync(DrA(), "Appointment",
        [
            new("practitioner", "Practitioner/" + (practitioner ?? _drA)), new("date", "ge" + from.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            new("date", "lt" + from.AddDays(days).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), new("_count", "100"), new("_include", "Appointment:patient"),
        ], null, false, None);

    [Fact]
    public async Task A_physician_listing_her_own_busy_day_at_once_is_not_a_burst_but_a_week_of_it_is()
    {
        // 30 patients on one day of her agenda, listed at once: 30 distinct patients in a minute, beyond the 25 that suspend.
        var day = await ScheduleAsync(_own.Take(30).ToList(), perDay: 30);
        var listed = await AgendaAsync(day, 1);
        Assert.Equal(RecordStatus.Ok, listed.Status);
        Assert.Equal(60, listed.Entries.Count);
        // Nor is opening them, in the same minute: the day's list is her work.
        foreach (var patient in _own.Take(20)) Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA(), "Patient", patient, None)).Status);

        // A week of her appointments is no day's list: 40 more patients in the minute suspend her (the day's 30 are left out).
        await ScheduleAsync(_strangers, perDay: 6, fromDay: 1);
        var week = await AgendaAsync(day, 8);
        Assert.Equal(RecordStatus.Locked, week.Status);
        Assert.Contains("distinct patients in a minute", (await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None)).Single().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_colleagues_day_is_not_her_own_schedule_its_patients_count_in_the_minute()
    {
        // Her own patients, booked with a colleague: the colleague's day of 30 is 30 distinct patients in her minute.
        var drB = await _server.CreateAsOperatorAsync(_tenant, Samples.Practitioner("Beta", "10000000002"));
        var day = await ScheduleAsync(_own.Take(30).ToList(), perDay: 30, practitioner: drB);
        Assert.Equal(RecordStatus.Locked, (await AgendaAsync(day, 1, practitioner: drB)).Status);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(-6)]
    public async Task A_day_of_her_schedule_far_from_today_is_no_work_list_its_patients_count_in_the_minute(int fromDay)
    {
        // Her own busy day, but twelve days ahead or four days ago (the exemption holds from yesterday to a week ahead): 30 patients
        // at once suspend.
        var day = await ScheduleAsync(_own.Take(30).ToList(), perDay: 30, fromDay: fromDay);
        Assert.Equal(RecordStatus.Locked, (await AgendaAsync(day.AddDays(fromDay), 1)).Status);
        Assert.Contains("distinct patients in a minute", (await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None)).Single().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_API_client_asking_for_a_physicians_day_is_not_listing_its_own_schedule()
    {
        // The agenda's very question, through the API by a client: its 30 patients count in the client's minute (suspension beyond 25).
        var day = await ScheduleAsync(_own.Take(30).ToList(), perDay: 30);
        using var client = await PatientReaderAsync("system/Appointment.rs system/Patient.rs");
        static string Date(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        using var response = await client.GetAsync($"/fhir/Appointment?practitioner=Practitioner/{_drA}&date=ge{Date(day)}&date=lt{Date(day.AddDays(1))}&_count=100");
        Assert.Equal((HttpStatusCode)423, response.StatusCode);
        Assert.Contains("distinct patients in a minute", (await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None)).Single().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_persons_result_volume_counts_patients_records_not_the_directory_of_practitioners()
    {
        // A volume bound of 30 search results an hour for physicians. The booking form lists the practitioners (~400 records a
        // showing in a hospital): before, a desk booking a dozen appointments an hour was suspended by the directory alone.
        var options = new GuardOptions { SlowDelay = TimeSpan.Zero, Roles = new Dictionary<StaffRole, GuardLimits> { [StaffRole.Physician] = new() { SearchRecordsPerHour = new(Suspend: 30) } } };
        await using var server = await VaubanServer.StartAsync(_engine, configure: o => o with { Time = _time, Guard = options });
        var tenant = await server.Store.Tenants.AddAsync("hopital-volume", None);
        var drA = await server.CreateAsOperatorAsync(tenant, Samples.Practitioner("Alpha", "10000000001"));
        for (var i = 0; i < 40; i++) await server.CreateAsOperatorAsync(tenant, Samples.Practitioner("Annuaire" + i, (10000000100L + i).ToString(CultureInfo.InvariantCulture)));
        var patient = await server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Suivie"));
        await server.CreateAsOperatorAsync(tenant, Samples.Encounter(patient, drA, Day(-3)));
        for (var i = 0; i < 40; i++) await server.CreateAsOperatorAsync(tenant, Samples.Observation("Patient/" + patient, effective: Day(-i - 1)));
        AccessContext Dr() => DrA() with { Tenant = tenant, Principal = DrA().Principal with { Practitioner = drA } };
        for (var k = 0; k < 3; k++)
        {
            var directory = await server.Store.Records.SearchAsync(Dr(), "Practitioner", [new("_count", "100")], null, false, None);
            Assert.Equal(RecordStatus.Ok, directory.Status);
            Assert.Equal(41, directory.Entries.Count);
        }
        // Forty of one patient's results at once are beyond the volume bound: suspended, the reason naming it.
        var results = await server.Store.Records.SearchAsync(Dr(), "Observation", [new("patient", "Patient/" + patient), new("_count", "100")], null, false, None);
        Assert.Equal(RecordStatus.Locked, results.Status);
        Assert.Contains("search results in an hour", (await server.Store.Guard.ContainmentsAsync(tenant.Id, None)).Single().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stolen_session_listing_its_physicians_agenda_day_after_day_meets_the_hour_bound()
    {
        // A day's list is left out of the minute only: listing day after day, the thief meets the hour's level (60 for a
        // physician) and is asked for both factors it does not hold at the third day of ten patients after a day of thirty.
        var first = await ScheduleAsync(_own.Take(30).ToList(), perDay: 30);
        await ScheduleAsync(_strangers, perDay: 10, fromDay: 1);
        var statuses = new List<RecordStatus> { (await AgendaAsync(first, 1)).Status };
        for (var d = 1; d <= 4; d++) statuses.Add((await AgendaAsync(first.AddDays(d), 1)).Status);
        Assert.Equal([RecordStatus.Ok, RecordStatus.Ok, RecordStatus.Ok, RecordStatus.ReauthenticationRequired, RecordStatus.ReauthenticationRequired], statuses);
    }

    [Fact]
    public async Task A_clinician_opening_their_own_patients_through_a_long_day_is_never_contained()
    {
        // 12 hours: every 10 minutes a few of their patients (ward rounds, results, notes), a search of their list every hour.
        var random = new Random(5);
        for (var step = 0; step < 72; step++)
        {
            var context = DrA();
            for (var k = 0; k < 2; k++)
            {
                var result = await Records.ReadAsync(context, "Patient", _own[random.Next(12)], None);
                Assert.Equal(RecordStatus.Ok, result.Status);
            }
            if (step % 6 == 0)
            {
                var page = await Records.SearchAsync(context, "Encounter", [new("_count", "10")], null, false, None);
                Assert.Equal(RecordStatus.Ok, page.Status);
            }
            _time.Advance(TimeSpan.FromMinutes(10));
        }
        Assert.Empty(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
    }

    [Fact]
    public async Task Everything_beyond_three_patients_an_hour_without_a_stated_reason_is_refused_and_a_reason_lets_it_through()
    {
        using var client = await PatientReaderAsync("system/*.rs");
        for (var i = 0; i < 3; i++)
        {
            using var ok = await client.GetAsync($"/fhir/Patient/{_strangers[i]}/$everything");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        // The same three patients again (a record reopened) are not more patients.
        for (var i = 0; i < 3; i++)
        {
            using var again = await client.GetAsync($"/fhir/Patient/{_strangers[i]}/$everything");
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }
        using (var refused = await client.GetAsync($"/fhir/Patient/{_strangers[3]}/$everything"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            var issue = (await refused.BodyAsync()).GetProperty("issue")[0];
            Assert.Equal("business-rule", issue.GetProperty("code").GetString());
            Assert.Contains(RecordsGuard.ReasonHeader, issue.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        using (var tooShort = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{_strangers[3]}/$everything"))
        {
            tooShort.Headers.Add(RecordsGuard.ReasonHeader, "because");
            using var response = await client.SendAsync(tooShort);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        // A reason that displays as other words than it holds (a right-to-left override) is refused: the officer reads it.
        using (var utf8 = new HttpClient(new SocketsHttpHandler { RequestHeaderEncodingSelector = (_, _) => System.Text.Encoding.UTF8 }) { BaseAddress = client.BaseAddress })
        using (var disguised = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{_strangers[3]}/$everything"))
        {
            utf8.DefaultRequestHeaders.Authorization = client.DefaultRequestHeaders.Authorization;
            disguised.Headers.TryAddWithoutValidation(RecordsGuard.ReasonHeader, "Transfert \u202Eoyl UHC\u202C ticket 4411");
            using var response = await utf8.SendAsync(disguised);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
            Assert.Contains("invisible characters", body, StringComparison.Ordinal);
        }
        using var stated = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{_strangers[3]}/$everything");
        stated.Headers.Add(RecordsGuard.ReasonHeader, "Transfer to CHU Lyon, ticket 4411");
        using var allowed = await client.SendAsync(stated);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task Paging_deeper_than_ten_pages_without_a_stated_reason_is_refused()
    {
        using var client = await PatientReaderAsync();
        var next = "/fhir/Patient?_count=1";
        for (var page = 1; page <= 10; page++)
        {
            using var response = await client.GetAsync(next);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.BodyAsync();
            next = body.GetProperty("link").EnumerateArray().First(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!;
        }
        using var eleventh = await client.GetAsync(next);
        Assert.Equal(HttpStatusCode.Forbidden, eleventh.StatusCode);
        Assert.Equal("business-rule", (await eleventh.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        using var stated = new HttpRequestMessage(HttpMethod.Get, next);
        stated.Headers.Add(RecordsGuard.ReasonHeader, "Annual identity reconciliation, ticket 77");
        using var allowed = await client.SendAsync(stated);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task A_suspended_client_gets_no_count_either_summary_count_or_count_zero()
    {
        using var client = await PatientReaderAsync();
        using (var canary = await client.GetAsync($"/fhir/Patient/{_canaries[0]}")) Assert.Equal((HttpStatusCode)423, canary.StatusCode);
        // A count says whether a person with this name and birth date is a patient here: it is data too.
        foreach (var url in new[] { "/fhir/Patient?family=stranger&_summary=count", "/fhir/Patient?family=stranger&_count=0" })
        {
            using var response = await client.GetAsync(url);
            Assert.True(response.StatusCode == (HttpStatusCode)423, url + " → " + (int)response.StatusCode);
            Assert.DoesNotContain("\"total\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_suspended_client_cannot_tell_a_known_record_from_an_unknown_or_deleted_one()
    {
        using var client = await PatientReaderAsync("system/*.cruds");
        using (var created = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Gone"))))
        {
            var id = (await created.BodyAsync()).GetProperty("id").GetString()!;
            using var deleted = await client.DeleteAsync($"/fhir/Patient/{id}");
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
            using (var canary = await client.GetAsync($"/fhir/Patient/{_canaries[0]}")) Assert.Equal((HttpStatusCode)423, canary.StatusCode);
            foreach (var url in new[] { $"/fhir/Patient/{_strangers[0]}", "/fhir/Patient/no-such-patient", $"/fhir/Patient/{id}", "/fhir/Patient/no-such-patient/_history/1",
                "/fhir/Patient/no-such-patient/_history", "/fhir/Patient/no-such-patient/$everything" })
            {
                using var response = await client.GetAsync(url);
                Assert.True(response.StatusCode == (HttpStatusCode)423, url + " → " + (int)response.StatusCode);
            }
        }
    }

    [Fact]
    public async Task A_client_released_from_the_command_line_reads_again_on_the_running_server_and_is_not_suspended_again_at_once()
    {
        using var client = await PatientReaderAsync();
        foreach (var patient in _strangers.Take(25))
        {
            using var ok = await client.GetAsync($"/fhir/Patient/{patient}");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using (var refused = await client.GetAsync($"/fhir/Patient/{_strangers[25]}")) Assert.Equal((HttpStatusCode)423, refused.StatusCode);
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        // vauban guard release: another process, on the same database.
        await using (var cli = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = _time }, None))
        {
            Assert.Equal(1, (await cli.Guard.ReleaseAsync(AccessContext.Operator(_tenant, "guard review"), contained.Principal, None)).Released);
        }
        _time.Advance(TimeSpan.FromSeconds(3));
        // "Its reading windows start afresh": the running server forgets the 25 patients too, or the next read suspends it again.
        using (var again = await client.GetAsync($"/fhir/Patient/{_strangers[26]}")) Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Empty(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
    }

    [Fact]
    public async Task A_session_released_from_the_command_line_does_not_get_its_account_locked_at_its_next_read()
    {
        var opened = await ReadOwnPatientsUntilRefusedAsync(DrA, 0);
        Assert.Equal(25, opened);
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        Assert.Equal("session:s-1", contained.Principal);
        await using (var cli = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = _time }, None))
        {
            Assert.Equal(1, (await cli.Guard.ReleaseAsync(AccessContext.Operator(_tenant, "guard review"), "session:s-1", None)).Released);
        }
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA(authenticatedAt: _time.GetUtcNow()), "Patient", _own[25], None)).Status);
        Assert.Empty(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
    }

    [Fact]
    public async Task A_second_suspension_of_the_account_after_a_server_restart_still_locks_it()
    {
        Assert.Equal(25, await ReadOwnPatientsUntilRefusedAsync(DrA, 0));
        // The server restarts (its reading windows are forgotten); the thief signs in again with the stolen factors.
        await using var restarted = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey)
            { Time = _time, Guard = new GuardOptions { SlowDelay = TimeSpan.Zero } }, None);
        AccessContext SecondSession(DateTimeOffset? authenticatedAt) => DrA(authenticatedAt, session: "s-2");
        var opened = 0;
        RecordStatus last = RecordStatus.Ok;
        foreach (var patient in _own)
        {
            last = (await restarted.Records.ReadAsync(SecondSession(_time.GetUtcNow().AddSeconds(1)), "Patient", patient, None)).Status;
            if (last != RecordStatus.Ok) break;
            opened++;
        }
        Assert.Equal(RecordStatus.Locked, last);
        Assert.Contains(await restarted.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == "user:drA" && c.Level == ContainmentLevels.Locked);
        Assert.Contains(await restarted.Alerts.ListAsync(_tenant.Id, all: false, 20, None), a => a.Kind == KnownAlertKinds.GuardLocked);
    }

    [Fact]
    public async Task Parallel_reads_crossing_the_bound_together_let_at_most_25_patients_leave_and_suspend_the_session_without_locking_the_account()
    {
        for (var i = 0; i < 24; i++) Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA(authenticatedAt: _time.GetUtcNow().AddSeconds(1)), "Patient", _own[i], None)).Status);
        var results = await Task.WhenAll(_own.Skip(24).Select(patient => Task.Run(() => Records.ReadAsync(DrA(authenticatedAt: _time.GetUtcNow().AddSeconds(1)), "Patient", patient, None))));
        Assert.Equal(1, results.Count(r => r.Status == RecordStatus.Ok));
        Assert.All(results.Where(r => r.Status != RecordStatus.Ok), r => Assert.Equal(RecordStatus.Locked, r.Status));
        // One crossing, however many requests carried it: the session is suspended, the account is not locked.
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        Assert.Equal("session:s-1", contained.Principal);
        Assert.Equal(ContainmentLevels.Suspended, contained.Level);
        Assert.DoesNotContain(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 20, None), a => a.Kind == KnownAlertKinds.GuardLocked);
    }

    [Fact]
    public async Task Sixteen_parallel_reads_by_a_client_let_at_most_25_distinct_patients_leave()
    {
        using var client = await PatientReaderAsync();
        for (var i = 0; i < 20; i++)
        {
            using var ok = await client.GetAsync($"/fhir/Patient/{_strangers[i]}");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        var statuses = await Task.WhenAll(_strangers.Skip(20).Take(16).Select(async patient =>
        {
            using var response = await client.GetAsync($"/fhir/Patient/{patient}");
            return response.StatusCode;
        }));
        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(11, statuses.Count(s => s == (HttpStatusCode)423));
        Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
    }

    /// <summary>Reads Dr Alpha's own patients from <paramref name="from"/>, re-proving both factors (a phished session), until refused; how many were opened.</summary>
    private async Task<int> ReadOwnPatientsUntilRefusedAsync(Func<DateTimeOffset?, string, AccessContext> context, int from)
    {
        var opened = 0;
        foreach (var patient in _own.Skip(from))
        {
            var result = await Records.ReadAsync(context(_time.GetUtcNow().AddSeconds(1), "s-1"), "Patient", patient, None);
            if (result.Status != RecordStatus.Ok)
            {
                Assert.Equal(RecordStatus.Locked, result.Status);
                break;
            }
            opened++;
        }
        return opened;
    }

    [Fact]
    public async Task Reading_beyond_the_slow_level_is_admitted_with_a_delay()
    {
        // The fixture's guard adds no delay; a store on the same database with the default delay shows it.
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey), None);
        var context = DrA();
        var decisions = new List<GuardDecision>();
        for (var i = 0; i < 11; i++)
        {
            decisions.Add(await store.Guard.AdmitAsync(context, new GuardRequest(Interaction.Read, "Patient", 1, [_own[i]], [_own[i]]), None));
        }
        Assert.All(decisions, d => Assert.Equal(GuardVerdict.Admit, d.Verdict));
        Assert.All(decisions.Take(9), d => Assert.Equal(TimeSpan.Zero, d.Delay));
        Assert.True(decisions[9].Delay > TimeSpan.Zero && decisions[10].Delay > decisions[9].Delay);
    }
}

/// <summary>The server <see cref="GuardTests"/> share, on a clock that starts at the real time; its guard adds no delays (the slow
/// level is checked on the guard's decision itself).</summary>
public abstract class GuardServer(Engine engine) : SharedServer(engine, new ManualTime(ManualTime.RealNow), o => o with { Guard = new GuardOptions { SlowDelay = TimeSpan.Zero } });

public sealed class GuardServer_Sqlite() : GuardServer(Engine.Sqlite);

public sealed class GuardServer_Postgres() : GuardServer(Engine.Postgres);

public sealed class GuardTests_Sqlite(GuardServer_Sqlite shared) : GuardTests(shared), IClassFixture<GuardServer_Sqlite>;

public sealed class GuardTests_Postgres(GuardServer_Postgres shared) : GuardTests(shared), IClassFixture<GuardServer_Postgres>;
