// Bulk $export (FHIR Bulk Data Access v2, issue 5) as an integrating developer and an attacker meet it, on
// both engines, over HTTP: the kick-off / poll / download round trip with NDJSON checked line by line; _type
// and _since; a stated reason required; bad parameters; scopes; another client, another establishment or no
// token cannot see a job or its files; a contained client gets nothing; every exported patient on the audit
// chain; an export above the threshold waits for a second person, who is never the requester; denial;
// cancellation and expiry.
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class BulkExportTests(BulkExportServer shared) : IAsyncLifetime
{
    private const string Reason = "Monthly extract for the regional cancer registry";
    private const string Password = "tourmaline ferry quietly 42";
    private static readonly CancellationToken None = CancellationToken.None;
    // One server for the class (BulkExportServer), each test in an establishment of its own: jobs, approvals, alerts, containments and
    // audit entries are the establishment's, and the jobs a client may hold are its own.
    private string Establishment { get; } = SharedServer.EstablishmentName("hopital-export");
    private readonly BulkExportServer _shared = shared;
    private readonly Engine _engine = shared.Engine;
    private readonly ManualTime _time = shared.Time;
    private readonly VaubanServer _server = shared.Server;
    private Tenant _tenant = null!;
    private HttpClient _client = null!;
    private readonly List<string> _patients = [];
    private readonly List<string> _observations = [];
    private string _practitioner = "";

    private RecordsService Records => _server.Store.Records;

    private AccessContext Operator => AccessContext.Operator(_tenant, "test fixture");

    public async Task InitializeAsync()
    {
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, None);
        _practitioner = await CreateAsync(Samples.Practitioner("Alpha", "10000000001"));
        for (var i = 0; i < 3; i++)
        {
            var patient = await CreateAsync(Samples.Patient(family: "Export", given: "P" + i));
            _patients.Add(patient);
            _observations.Add(await CreateAsync(Samples.Observation($"Patient/{patient}")));
        }
        _client = await _server.ClientAsync(Establishment, "system/*.rs");
    }

    public Task DisposeAsync()
    {
        _client.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Watches the next download from inside the server (<see cref="BulkExportServer"/>): what happens while a file streams.</summary>
    private void WatchNextDownload(DownloadProbe probe) => _shared.WrapNextDownload(body => new ProbeStream(body, probe));

    private Task<string> CreateAsync(string json) => _server.CreateAsOperatorAsync(_tenant, json);

    private static HttpRequestMessage KickOff(string url, string? reason = Reason, bool respondAsync = true)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/fhir+json"));
        if (respondAsync) request.Headers.Add("Prefer", "respond-async");
        if (reason is not null) request.Headers.Add(RecordsGuard.ReasonHeader, reason);
        return request;
    }

    /// <summary>Kicks off and returns the status URL.</summary>
    private static async Task<string> KickOffAsync(HttpClient client, string url = "/fhir/$export")
    {
        using var request = KickOff(url);
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"kick-off {url}: {(int)response.StatusCode} {body}");
        var location = response.Content.Headers.ContentLocation?.ToString() ?? response.Headers.GetValues("Content-Location").Single();
        Assert.Contains("/fhir/$export-status/", location, StringComparison.Ordinal);
        return location;
    }

    private static async Task<JsonElement> ManifestAsync(HttpClient client, string status)
    {
        using var response = await client.GetAsync(status);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"status: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static Dictionary<string, (string Url, int Count)> Outputs(JsonElement manifest) =>
        manifest.GetProperty("output").EnumerateArray().ToDictionary(o => o.GetProperty("type").GetString()!, o => (o.GetProperty("url").GetString()!, o.GetProperty("count").GetInt32()));

    private static async Task<List<JsonElement>> DownloadAsync(HttpClient client, string url)
    {
        using var response = await client.GetAsync(url);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"download: {(int)response.StatusCode} {text}");
        Assert.Equal("application/fhir+ndjson", response.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        // NDJSON: each line one whole resource, nothing else.
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement.Clone()).ToList();
    }

    private static string Instant(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private async Task AddPatientsAsync(int count)
    {
        for (var i = 0; i < count; i++) _patients.Add(await CreateAsync(Samples.Patient(family: "Extra", given: "E" + i)));
    }

    private static string JobId(string status) => status[(status.LastIndexOf('/') + 1)..];

    [Fact]
    public async Task Kick_off_poll_and_download_give_every_resource_as_NDJSON_with_a_Bulk_Data_manifest()
    {
        var status = await KickOffAsync(_client);
        var manifest = await ManifestAsync(_client, status);
        Assert.True(DateTimeOffset.TryParse(manifest.GetProperty("transactionTime").GetString(), CultureInfo.InvariantCulture, out _));
        Assert.EndsWith("/fhir/$export", manifest.GetProperty("request").GetString(), StringComparison.Ordinal);
        Assert.True(manifest.GetProperty("requiresAccessToken").GetBoolean());
        Assert.Equal(0, manifest.GetProperty("error").GetArrayLength());
        var outputs = Outputs(manifest);
        Assert.Equal(["Observation", "Patient", "Practitioner"], outputs.Keys.Order(StringComparer.Ordinal));
        var expected = new Dictionary<string, List<string>> { ["Patient"] = _patients, ["Observation"] = _observations, ["Practitioner"] = [_practitioner] };
        foreach (var (type, (url, count)) in outputs)
        {
            var lines = await DownloadAsync(_client, url);
            Assert.Equal(count, lines.Count);
            Assert.All(lines, r => Assert.Equal(type, r.GetProperty("resourceType").GetString()));
            Assert.Equal(expected[type].Order(StringComparer.Ordinal), lines.Select(r => r.GetProperty("id").GetString()!).Order(StringComparer.Ordinal));
        }
        // The patient's own data, decrypted, as stored.
        var patients = await DownloadAsync(_client, outputs["Patient"].Url);
        Assert.All(patients, p => Assert.Equal("Export", p.GetProperty("name")[0].GetProperty("family").GetString()));

        // Patient level: the Patient compartment only.
        var patientLevel = Outputs(await ManifestAsync(_client, await KickOffAsync(_client, "/fhir/Patient/$export")));
        Assert.Equal(["Observation", "Patient"], patientLevel.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_complete_status_is_a_manifest_served_as_application_json()
    {
        // Bulk Data Access, complete status: 200 with Content-Type application/json (the manifest is not a FHIR resource).
        var status = await KickOffAsync(_client);
        using var response = await _client.GetAsync(status);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.TryGetProperty("transactionTime", out _));
    }

    [Fact]
    public async Task Type_and_since_select_what_is_exported()
    {
        _time.Advance(TimeSpan.FromSeconds(30));
        var since = _time.GetUtcNow();
        _time.Advance(TimeSpan.FromSeconds(30));
        var recent = await CreateAsync(Samples.Observation($"Patient/{_patients[0]}"));

        // _pretty is taken by the kick-off as by every interaction (it was refused as an unknown $export parameter).
        var onlyObservations = Outputs(await ManifestAsync(_client, await KickOffAsync(_client, "/fhir/$export?_type=Observation&_pretty=true")));
        Assert.Equal(["Observation"], onlyObservations.Keys);
        Assert.Equal(4, onlyObservations["Observation"].Count);

        var sinceUrl = $"/fhir/$export?_type=Observation,Patient&_since={Uri.EscapeDataString(Instant(since))}&_outputFormat={Uri.EscapeDataString("application/fhir+ndjson")}";
        var changed = Outputs(await ManifestAsync(_client, await KickOffAsync(_client, sinceUrl)));
        Assert.Equal(["Observation"], changed.Keys);
        var lines = await DownloadAsync(_client, changed["Observation"].Url);
        Assert.Equal(recent, Assert.Single(lines).GetProperty("id").GetString());
    }

    [Fact]
    public async Task An_export_without_a_stated_reason_is_refused_and_says_so()
    {
        using (var request = KickOff("/fhir/$export", reason: null))
        using (var response = await _client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            var issue = (await response.BodyAsync()).GetProperty("issue")[0];
            Assert.Equal("business-rule", issue.GetProperty("code").GetString());
            Assert.Contains(RecordsGuard.ReasonHeader, issue.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        using (var request = KickOff("/fhir/$export", reason: "too short"))
        using (var response = await _client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        var entries = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Actions = [AuditAction.Export], Count = 100 }, None) ?? [];
        Assert.Contains(entries, e => e.Outcome == AuditOutcome.MinorFailure);
        Assert.DoesNotContain(entries, e => e.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public async Task Bad_parameters_get_400_OperationOutcome_and_create_no_job()
    {
        var cases = new (string Url, bool RespondAsync)[]
        {
            ("/fhir/$export", false),
            ("/fhir/$export?_outputFormat=text/csv", true),
            ("/fhir/$export?_type=Spaceship", true),
            ("/fhir/$export?_type=Patient,,Observation", true),
            ("/fhir/$export?_since=yesterday", true),
            ("/fhir/$export?_since=2026-01-01", true),
            ("/fhir/$export?_since=2026-01-01T00:00:00", true), // no time zone: which moment is it?
            ("/fhir/$export?_since=2026-01-01T00:00Z", true),
            ("/fhir/$export?_typeFilter=Patient%3Factive%3Dtrue", true),
            ("/fhir/$export?patient=Patient/1", true),
            ("/fhir/$export?_type=Patient'%20OR%201=1--", true),
            ("/fhir/Patient/$export?_type=Practitioner", true),
        };
        foreach (var (url, respondAsync) in cases)
        {
            using var request = KickOff(url, respondAsync: respondAsync);
            using var response = await _client.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{url}: {(int)response.StatusCode}");
            Assert.Equal("OperationOutcome", (await response.BodyAsync()).GetProperty("resourceType").GetString());
        }
        using (var status = await _client.GetAsync("/fhir/$export-status/not-a-job")) Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
        using (var file = await _client.GetAsync("/fhir/$export-file/AAAAAAAAAAAAAAAAAAAAAA/Patient.ndjson")) Assert.Equal(HttpStatusCode.NotFound, file.StatusCode);
        var entries = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Actions = [AuditAction.Export], Count = 100 }, None) ?? [];
        Assert.Empty(entries);
    }

    [Fact]
    public async Task Group_export_and_a_POST_kick_off_are_refused_as_not_supported_and_an_unescaped_output_format_is_understood()
    {
        using (var request = KickOff("/fhir/Group/cohort-1/$export"))
        using (var response = await _client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("not-supported", (await response.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        }
        foreach (var url in new[] { "/fhir/$export", "/fhir/Patient/$export" })
        {
            using var request = KickOff(url);
            request.Method = HttpMethod.Post;
            request.Content = new StringContent("""{"resourceType":"Parameters"}""", Encoding.UTF8, "application/fhir+json");
            using var response = await _client.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.MethodNotAllowed, $"POST {url}: {(int)response.StatusCode}");
            var issue = (await response.BodyAsync()).GetProperty("issue")[0];
            Assert.Equal("not-supported", issue.GetProperty("code").GetString());
            Assert.Contains("GET", issue.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        // "application/fhir+ndjson" written as is in a URL: the '+' arrives as a space.
        var outputs = Outputs(await ManifestAsync(_client, await KickOffAsync(_client, "/fhir/$export?_type=Patient&_outputFormat=application/fhir+ndjson")));
        Assert.Equal(3, outputs["Patient"].Count);
    }

    [Fact]
    public async Task A_client_may_export_only_the_types_its_scopes_let_it_read_and_search()
    {
        using var patientsOnly = await _server.ClientAsync(Establishment, "system/Patient.rs");
        using (var request = KickOff("/fhir/$export?_type=Patient,Observation"))
        using (var response = await patientsOnly.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("forbidden", (await response.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        }
        Assert.Equal(["Patient"], Outputs(await ManifestAsync(patientsOnly, await KickOffAsync(patientsOnly))).Keys);
        // Read alone is not enough to export (enumerating is searching).
        using var readOnly = await _server.ClientAsync(Establishment, "system/Patient.r");
        using (var request = KickOff("/fhir/$export?_type=Patient"))
        using (var response = await readOnly.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        }
    }

    [Fact]
    public async Task Another_client_another_establishment_or_no_token_cannot_poll_cancel_or_download_a_job()
    {
        var status = await KickOffAsync(_client);
        var file = Outputs(await ManifestAsync(_client, status))["Patient"].Url;
        using var sameTenant = await _server.ClientAsync(Establishment, "system/*.rs");
        using var otherTenant = await _server.ClientAsync(Establishment + "-autre", "system/*.rs");
        foreach (var other in new[] { sameTenant, otherTenant })
        {
            using (var poll = await other.GetAsync(status)) Assert.Equal(HttpStatusCode.NotFound, poll.StatusCode);
            using (var download = await other.GetAsync(file))
            {
                Assert.Equal(HttpStatusCode.NotFound, download.StatusCode);
                Assert.DoesNotContain("Export", await download.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            using (var cancel = await other.DeleteAsync(status)) Assert.Equal(HttpStatusCode.NotFound, cancel.StatusCode);
        }
        using (var anonymous = await _server.Http.GetAsync(file)) Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using (var anonymous = await _server.Http.GetAsync(status)) Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        // The owner still has it all.
        Assert.Equal(3, (await DownloadAsync(_client, file)).Count);
    }

    [Fact]
    public async Task A_contained_client_gets_nothing_from_export()
    {
        var status = await KickOffAsync(_client);
        var file = Outputs(await ManifestAsync(_client, status))["Patient"].Url;
        _time.Advance(TimeSpan.FromSeconds(1));
        var canary = (await _server.Store.Guard.AddCanariesAsync(Records, _tenant, 1, None))[0];
        using (var trip = await _client.GetAsync($"/fhir/Patient/{canary}")) Assert.Equal((HttpStatusCode)423, trip.StatusCode);

        using (var request = KickOff("/fhir/$export"))
        using (var kickOff = await _client.SendAsync(request)) Assert.Equal((HttpStatusCode)423, kickOff.StatusCode);
        using (var poll = await _client.GetAsync(status)) Assert.Equal((HttpStatusCode)423, poll.StatusCode);
        using (var download = await _client.GetAsync(file))
        {
            Assert.Equal((HttpStatusCode)423, download.StatusCode);
            Assert.Equal("security", (await download.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        }
        // The refused poll and download are on the chain, naming the job (only the refused kick-off was).
        var job = status[(status.LastIndexOf('/') + 1)..];
        var refusals = (await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"),
            new Vauban.Audit.AuditQuery { Actions = [Vauban.Audit.AuditAction.Containment], Count = 100 }, None))!;
        Assert.Equal(2, refusals.Count(e => e.Detail.Records.SequenceEqual(["export:" + job]) && e.Detail.Note!.Contains("status or file", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task An_unapproved_export_carrying_a_canary_contains_its_client()
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        await _server.Store.Guard.AddCanariesAsync(Records, _tenant, 1, None);
        _time.Advance(TimeSpan.FromSeconds(1));
        var file = Outputs(await ManifestAsync(_client, await KickOffAsync(_client, "/fhir/$export?_type=Patient")))["Patient"].Url;
        using (var download = await _client.GetAsync(file)) Assert.Equal((HttpStatusCode)423, download.StatusCode);
        Assert.Contains(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Level == ContainmentLevels.Suspended);
    }

    [Fact]
    public async Task Every_exported_patient_is_on_the_audit_chain_with_the_export_action_and_the_stated_reason()
    {
        var outputs = Outputs(await ManifestAsync(_client, await KickOffAsync(_client)));
        foreach (var (_, (url, _)) in outputs) await DownloadAsync(_client, url);
        foreach (var (patient, observation) in _patients.Zip(_observations))
        {
            var entries = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Patient = patient, Actions = [AuditAction.Export], Count = 100 }, None) ?? [];
            Assert.Contains(entries, e => e.Outcome == AuditOutcome.Success && e.Detail.Records.Contains($"Patient/{patient}"));
            Assert.Contains(entries, e => e.Detail.Records.Contains($"Observation/{observation}"));
            Assert.All(entries, e => Assert.Contains(Reason, e.Detail.Note, StringComparison.Ordinal));
        }
        var verification = await _server.Store.AuditLog.VerifyAsync(_tenant.Id, null, None);
        Assert.True(verification.Valid, verification.Problem);
    }

    [Fact]
    public async Task An_export_above_the_threshold_waits_until_a_second_person_approves_it()
    {
        await AddPatientsAsync(4);
        var status = await KickOffAsync(_client, "/fhir/$export?_type=Patient");
        var job = JobId(status);
        using (var poll = await _client.GetAsync(status))
        {
            Assert.Equal(HttpStatusCode.Accepted, poll.StatusCode);
            Assert.Contains("approval", poll.Headers.GetValues("X-Progress").Single(), StringComparison.Ordinal);
            Assert.NotNull(poll.Headers.RetryAfter);
        }
        // Nothing to download before the approval, whatever the URL.
        using (var early = await _client.GetAsync($"/fhir/$export-file/{job}/Patient.ndjson")) Assert.Equal(HttpStatusCode.NotFound, early.StatusCode);

        var pending = Assert.Single(await _server.Store.ExportApprovals.PendingAsync(_tenant.Id, None));
        Assert.Equal(job, pending.Job.Id);
        Assert.Equal(7, pending.Job.Patients);
        Assert.Equal(Reason, pending.Reason);
        var alerts = await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 20, None);
        Assert.Contains(alerts, a => a.Kind == KnownAlertKinds.ExportApprovalRequested && a.Detail.Contains(job, StringComparison.Ordinal));

        Assert.Equal(ExportDecision.Done, await _server.Store.ExportApprovals.DecideAsync(AccessContext.Operator(_tenant, "export approval"), job, approve: true, None));
        var outputs = Outputs(await ManifestAsync(_client, status));
        Assert.Equal(7, (await DownloadAsync(_client, outputs["Patient"].Url)).Count);
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 20, None), a => a.Kind == KnownAlertKinds.ExportApproved);
        Assert.Empty(await _server.Store.ExportApprovals.PendingAsync(_tenant.Id, None));
    }

    [Fact]
    public async Task An_export_whose_stored_reason_was_altered_is_listed_as_such_and_answers_no_one()
    {
        await AddPatientsAsync(4);
        var kept = JobId(await KickOffAsync(_client, "/fhir/$export?_type=Patient"));
        var damagedStatus = await KickOffAsync(_client, "/fhir/$export?_type=Practitioner,Patient");
        var damaged = JobId(damagedStatus);
        await using (var database = Vauban.Storage.StoreDatabase.Open(_server.Db))
        await using (var connection = await database.OpenAsync(None))
        {
            // One job's sealed reason moved onto the other: bound to its own job, it no longer authenticates there.
            using var write = connection.CreateCommand();
            write.CommandText = $"UPDATE export_jobs SET reason = (SELECT reason FROM export_jobs WHERE id = '{kept}') WHERE id = '{damaged}'";
            Assert.Equal(1, await write.ExecuteNonQueryAsync());
        }
        var pending = await _server.Store.ExportApprovals.PendingAsync(_tenant.Id, None);
        Assert.Equal(Reason, Assert.Single(pending, p => p.Job.Id == kept).Reason);
        var altered = Assert.Single(pending, p => p.Job.Id == damaged);
        Assert.Contains("altered", altered.Reason, StringComparison.Ordinal);
        Assert.Equal(Vauban.Crypto.AttributedText.AlteredPrincipal, altered.Job.Principal);
        // Its requester can no longer be told apart: the job answers no one.
        using var poll = await _client.GetAsync(damagedStatus);
        Assert.Equal(HttpStatusCode.NotFound, poll.StatusCode);
    }

    [Fact]
    public async Task Kick_offs_beyond_the_jobs_a_client_may_hold_get_429_even_sent_together_and_each_refusal_is_on_the_audit_chain()
    {
        // The limit holds for kick-offs sent together, each of which would find room for one more if it only counted first.
        var max = new ExportLimits().MaxJobsPerPrincipal;
        var answers = await Task.WhenAll(Enumerable.Range(0, max + 3).Select(async _ =>
        {
            using var request = KickOff("/fhir/$export?_type=Practitioner");
            using var response = await _client.SendAsync(request);
            return (response.StatusCode, response.Headers.RetryAfter, Code: response.StatusCode == HttpStatusCode.Accepted ? null
                : (await response.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        }));
        Assert.Equal(max, answers.Count(a => a.StatusCode == HttpStatusCode.Accepted));
        // Bulk Data: a server that will not start another export before one in progress ends answers 429 with Retry-After.
        Assert.All(answers.Where(a => a.StatusCode != HttpStatusCode.Accepted), a =>
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, a.StatusCode);
            Assert.NotNull(a.RetryAfter);
            Assert.Equal("too-costly", a.Code);
        });
        var entries = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Actions = [AuditAction.Export], Count = 100 }, None) ?? [];
        Assert.Equal(3, entries.Count(e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note!.Contains("export jobs already", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_denied_export_answers_403_and_never_yields_a_file()
    {
        await AddPatientsAsync(4);
        var status = await KickOffAsync(_client, "/fhir/$export?_type=Patient");
        var job = JobId(status);
        Assert.Equal(ExportDecision.Done, await _server.Store.ExportApprovals.DecideAsync(AccessContext.Operator(_tenant, "export review"), job, approve: false, None));
        using (var poll = await _client.GetAsync(status))
        {
            Assert.Equal(HttpStatusCode.Forbidden, poll.StatusCode);
            Assert.Equal("business-rule", (await poll.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        }
        using (var file = await _client.GetAsync($"/fhir/$export-file/{job}/Patient.ndjson")) Assert.Equal(HttpStatusCode.NotFound, file.StatusCode);
        // Decided once: it cannot be approved afterwards.
        Assert.Equal(ExportDecision.NotFound, await _server.Store.ExportApprovals.DecideAsync(AccessContext.Operator(_tenant, "export review"), job, approve: true, None));
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 20, None), a => a.Kind == KnownAlertKinds.ExportDenied);
        // Deciding again, or on an id that names no export, is refused on the chain too.
        Assert.Equal(ExportDecision.NotFound, await _server.Store.ExportApprovals.DecideAsync(AccessContext.Operator(_tenant, "export review"), "no-such-export", approve: true, None));
        var refused = (await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Actions = [AuditAction.Administration], Count = 100 }, None) ?? [])
            .Where(e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note!.Contains("no export awaiting approval has this id", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, refused.Count);
        Assert.Contains(refused, e => e.Detail.Note!.StartsWith("bulk export approve refused", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancelling_forgets_the_job_and_jobs_expire_after_their_lifetime()
    {
        var status = await KickOffAsync(_client);
        using (var cancel = await _client.DeleteAsync(status)) Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        using (var poll = await _client.GetAsync(status)) Assert.Equal(HttpStatusCode.NotFound, poll.StatusCode);

        // Expiry, at the door itself (a bearer token would not outlive the day either).
        var client = new AccessContext(new Principal(PrincipalKind.ApiClient, "registry-link", "registry link", StaffUser.PersonScopes), _tenant, "TREAT")
        {
            StatedReason = Reason,
        };
        var started = await Records.ExportAsync(client, ExportLevel.System, ["Patient"], null, "http://localhost/fhir/$export", None);
        Assert.Equal(RecordStatus.Ok, started.Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ExportStatusAsync(client, started.Job!.Id, None)).Status);
        _time.Advance(TimeSpan.FromHours(25));
        Assert.Equal(RecordStatus.NotFound, (await Records.ExportStatusAsync(client, started.Job.Id, None)).Status);
        Assert.Equal(RecordStatus.NotFound, (await Records.ExportFileAsync(client, started.Job.Id, "Patient", None)).Status);
    }

    [Fact]
    public async Task A_signed_in_officer_cannot_approve_their_own_export_and_another_administrator_can()
    {
        var secrets = new Dictionary<string, string>();
        foreach (var (email, role) in new[] { ("officer@chu.example", StaffRole.SecurityOfficer), ("admin@chu.example", StaffRole.Administrator) })
        {
            var link = await _server.Store.Accounts.AddAsync(_tenant, email, role, null, null, email, None);
            using var browser = new StaffClient(_server.BaseAddress);
            (secrets[email], _) = await browser.EnrolWithTotpAsync(link.Token, Password, _time);
            _time.Advance(TimeSpan.FromSeconds(30));
        }
        Task<StaffClient> SignedInAsync(string email) => StaffClient.SignedInAsync(_server.BaseAddress, Establishment, email, Password, secrets[email], _time);
        HttpRequestMessage Decide(string verb, string job)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/admin/guard/" + verb) { Content = new StringContent($$"""{"export":"{{job}}"}""", Encoding.UTF8, "application/json") };
            request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
            return request;
        }
        for (var i = 0; i < 12; i++) await CreateAsync(Samples.Practitioner("Annuaire" + i, "1000000010" + (i % 10)));

        // The officer reads the directory (no patient data) and asks for all of it: 13 resources, above 10.
        using var officer = await SignedInAsync("officer@chu.example");
        var status = await KickOffAsync(officer.Http, "/fhir/$export?_type=Practitioner");
        var job = JobId(status);
        using (var poll = await officer.Http.GetAsync(status)) Assert.Equal(HttpStatusCode.Accepted, poll.StatusCode);
        using (var list = await officer.Http.GetAsync("/admin/guard/exports"))
        {
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);
            var text = await list.Content.ReadAsStringAsync();
            Assert.Contains(job, text, StringComparison.Ordinal);
            Assert.Contains(Reason, text, StringComparison.Ordinal);
        }
        using (var request = Decide("approve-export", job))
        using (var own = await officer.Http.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.Forbidden, own.StatusCode);
        }
        using (var poll = await officer.Http.GetAsync(status)) Assert.Equal(HttpStatusCode.Accepted, poll.StatusCode);
        // A physician is not a second person for exports.
        using (var anonymous = Decide("approve-export", job))
        using (var response = await _server.Http.SendAsync(anonymous))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        using var admin = await SignedInAsync("admin@chu.example");
        using (var request = Decide("approve-export", job))
        using (var approved = await admin.Http.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        }
        var outputs = Outputs(await ManifestAsync(officer.Http, status));
        var lines = await DownloadAsync(officer.Http, outputs["Practitioner"].Url);
        Assert.Equal(13, lines.Count);
        // The admin approved; the admin cannot download the officer's export.
        using (var theirs = await admin.Http.GetAsync(outputs["Practitioner"].Url)) Assert.Equal(HttpStatusCode.NotFound, theirs.StatusCode);
        var decisions = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Actions = [AuditAction.Administration], Count = 100 }, None) ?? [];
        Assert.Contains(decisions, e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note!.Contains("cannot decide their own", StringComparison.Ordinal));
        Assert.Contains(decisions, e => e.Outcome == AuditOutcome.Success && e.Detail.Note!.Contains("bulk export approved", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_physician_exports_only_the_patients_in_their_care_as_the_policy_decides_for_search()
    {
        var cardiology = await CreateAsync("""{"resourceType":"Organization","name":"Cardiologie"}""");
        var day = _time.GetUtcNow().AddDays(-3).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        // Only the first patient has an encounter with Dr Alpha.
        await CreateAsync(Samples.Encounter(_patients[0], _practitioner, day));
        _time.Advance(TimeSpan.FromSeconds(1));
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:dr-alpha", "Dr Alpha", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, Practitioner = _practitioner, Service = cardiology, SessionId = "s-1", AuthenticatedAt = _time.GetUtcNow(),
        }, _tenant, "TREAT") { StatedReason = Reason };
        var started = await Records.ExportAsync(physician, ExportLevel.Patient, ["Patient", "Observation"], null, "http://localhost/fhir/Patient/$export", None);
        Assert.Equal(RecordStatus.Ok, started.Status);
        Assert.Equal(1, started.Job!.Patients);
        foreach (var (type, expected) in new[] { ("Patient", _patients[0]), ("Observation", _observations[0]) })
        {
            var download = await Records.ExportFileAsync(physician, started.Job.Id, type, None);
            Assert.Equal(RecordStatus.Ok, download.Status);
            using var buffer = new MemoryStream();
            await download.WriteAsync!(buffer, None);
            var lines = Encoding.UTF8.GetString(buffer.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(expected, JsonDocument.Parse(Assert.Single(lines)).RootElement.GetProperty("id").GetString());
        }
        // Invoices are not the physician's to read: asked for, refused.
        var invoices = await Records.ExportAsync(physician, ExportLevel.Patient, ["Invoice"], null, "http://localhost/fhir/Patient/$export", None);
        Assert.Equal(RecordStatus.Forbidden, invoices.Status);
    }

    [Fact]
    public async Task An_approved_export_that_has_grown_since_its_approval_yields_no_file()
    {
        await AddPatientsAsync(4);
        var day = _time.GetUtcNow().AddDays(-3).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        // Dr Alpha cares for six of the seven patients: above the threshold of 5, so a second person sizes and approves it.
        foreach (var patient in _patients.Take(6)) await CreateAsync(Samples.Encounter(patient, _practitioner, day));
        _time.Advance(TimeSpan.FromSeconds(1));
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:dr-alpha", "Dr Alpha", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, Practitioner = _practitioner, SessionId = "s-1", AuthenticatedAt = _time.GetUtcNow(),
        }, _tenant, "TREAT") { StatedReason = Reason };
        var started = await Records.ExportAsync(physician, ExportLevel.Patient, ["Patient"], null, "http://localhost/fhir/Patient/$export", None);
        Assert.Equal(ExportStatus.AwaitingApproval, started.Job!.Status);
        Assert.Equal(6, started.Job.Patients);
        Assert.Equal(ExportDecision.Done, await _server.Store.ExportApprovals.DecideAsync(AccessContext.Operator(_tenant, "export approval"), started.Job.Id, approve: true, None));

        // Then the physician's relationships widen: the seventh patient's record (older than the job) would join the file.
        await CreateAsync(Samples.Encounter(_patients[6], _practitioner, day));
        _time.Advance(TimeSpan.FromSeconds(1));
        var download = await Records.ExportFileAsync(physician, started.Job.Id, "Patient", None);
        Assert.Equal(RecordStatus.Forbidden, download.Status);
        Assert.Null(download.WriteAsync);
        Assert.Equal("business-rule", download.Issues![0].Code);
        var refusals = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Agent = "user:dr-alpha", Actions = [AuditAction.Export], Count = 100 }, None) ?? [];
        Assert.Contains(refusals, e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note!.Contains(started.Job.Id, StringComparison.Ordinal));
        Assert.DoesNotContain(refusals, e => e.Detail.Records.Contains($"Patient/{_patients[6]}"));
    }

    [Fact]
    public async Task A_client_contained_while_its_file_streams_gets_an_aborted_answer_not_a_file_that_looks_whole()
    {
        // More than one part (500 resources) of the directory: above 10 resources, approved by a second person, so not weighed again.
        for (var i = 0; i < 500; i++) await CreateAsync(Samples.Practitioner("Annuaire" + i, "1000000010" + (i % 10)));
        var canary = (await _server.Store.Guard.AddCanariesAsync(Records, _tenant, 1, None))[0];
        _time.Advance(TimeSpan.FromSeconds(1));
        var status = await KickOffAsync(_client, "/fhir/$export?_type=Practitioner");
        Assert.Equal(ExportDecision.Done, await _server.Store.ExportApprovals.DecideAsync(AccessContext.Operator(_tenant, "export approval"), JobId(status), approve: true, None));
        var file = Outputs(await ManifestAsync(_client, status))["Practitioner"];
        Assert.Equal(501, file.Count);

        // While the first part leaves, the same client reads a canary: it is suspended, and the file stops.
        var probe = new DownloadProbe
        {
            BeforeFirstWrite = async () =>
            {
                using var trip = await _client.GetAsync($"/fhir/Patient/{canary}");
                Assert.Equal((HttpStatusCode)423, trip.StatusCode);
            },
        };
        WatchNextDownload(probe);
        using var response = await _client.GetAsync(file.Url, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var failure = await Record.ExceptionAsync(() => response.Content.ReadAsStringAsync());
        Assert.True(failure is HttpRequestException or IOException, $"the truncated file ended like a whole one ({failure?.GetType().Name ?? "no error"})");
        Assert.True(probe.Writes > 0, "the probe did not see the download");
        var entries = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Actions = [AuditAction.Containment], Count = 100 }, None) ?? [];
        Assert.Contains(entries, e => e.Detail.Note!.Contains("stopped before its end", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_record_altered_in_the_database_stops_the_file_and_alerts_the_officer_without_being_audited_as_exported()
    {
        var file = Outputs(await ManifestAsync(_client, await KickOffAsync(_client, "/fhir/$export?_type=Patient")))["Patient"];
        // Someone with write access to the database puts one patient's sealed body in another's row.
        await using (System.Data.Common.DbConnection connection = _engine == Engine.Sqlite
            ? new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_server.Db};Pooling=False") : new Npgsql.NpgsqlConnection(_server.Db))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = $"UPDATE resources SET body = (SELECT body FROM resources WHERE id = '{_patients[0]}') WHERE id = '{_patients[1]}'";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }
        var failure = await Record.ExceptionAsync(async () =>
        {
            using var response = await _client.GetAsync(file.Url, HttpCompletionOption.ResponseHeadersRead);
            await response.Content.ReadAsStringAsync();
        });
        Assert.True(failure is HttpRequestException or IOException, $"a file with a damaged record ended like a whole one ({failure?.GetType().Name ?? "no error"})");
        var alert = Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None), a => a.Kind == KnownAlertKinds.RecordIntegrity);
        Assert.Contains($"Patient/{_patients[1]} version 1 failed its integrity check", alert.Detail, StringComparison.Ordinal);
        var exported = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Actions = [AuditAction.Export], Count = 100 }, None) ?? [];
        Assert.Contains(exported, e => e.Outcome == AuditOutcome.SeriousFailure && e.Detail.Records.Contains($"Patient/{_patients[1]}"));
        Assert.DoesNotContain(exported, e => e.Outcome == AuditOutcome.Success && e.Detail.Records.Contains($"Patient/{_patients[1]}"));
    }

    [Fact]
    public async Task A_file_is_written_to_the_connection_in_parts_not_a_write_and_a_flush_per_line()
    {
        var file = Outputs(await ManifestAsync(_client, await KickOffAsync(_client, "/fhir/$export?_type=Patient")))["Patient"];
        var probe = new DownloadProbe();
        WatchNextDownload(probe);
        Assert.Equal(3, (await DownloadAsync(_client, file.Url)).Count);
        // Each write to the response is a flush and an HTTP chunk: three small resources are one write, not six.
        Assert.Equal(1, probe.Writes);
    }

    private sealed class DownloadProbe
    {
        public Func<Task>? BeforeFirstWrite { get; init; }
        public int Writes;
    }

    /// <summary>A response body that counts the writes of a download and runs the probe's action before the first goes through.</summary>
    private sealed class ProbeStream(Stream inner, DownloadProbe probe) : Stream
    {
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Increment(ref probe.Writes) == 1 && probe.BeforeFirstWrite is { } action) await action();
            await inner.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task The_CapabilityStatement_lists_the_export_operations()
    {
        using var response = await _server.Http.GetAsync("/fhir/metadata");
        var rest = (await response.BodyAsync()).GetProperty("rest")[0];
        Assert.Contains(rest.GetProperty("operation").EnumerateArray(), o => o.GetProperty("name").GetString() == "export");
        var patient = rest.GetProperty("resource").EnumerateArray().Single(r => r.GetProperty("type").GetString() == "Patient");
        Assert.Contains(patient.GetProperty("operation").EnumerateArray(), o => o.GetProperty("name").GetString() == "export");
    }
}

/// <summary>The server <see cref="BulkExportTests"/> share, on a clock that starts at the real time. Above 5 patients or 10 resources an
/// export waits for a second person: set for every establishment of this server, the tests' names not being known when it starts
/// (AdministrationAuditTests sets an establishment's own limits).</summary>
public abstract class BulkExportServer(Engine engine) : SharedServer(engine, new ManualTime(ManualTime.RealNow), o => o with
{
    Guard = new GuardOptions { SlowDelay = TimeSpan.Zero, Export = new ExportLimits { ApprovalAbovePatients = 5, ApprovalAboveResources = 10 } },
})
{
    private Func<Stream, Stream>? _nextDownload;

    /// <summary>Wraps the response body of the next export file download in <paramref name="wrap"/>'s stream, once (a test's probe).</summary>
    internal void WrapNextDownload(Func<Stream, Stream> wrap) => Volatile.Write(ref _nextDownload, wrap);

    protected override void Extend(WebApplication app) => app.Use(async (http, next) =>
    {
        if (http.Request.Path.Value!.Contains("/$export-file/", StringComparison.Ordinal) && Interlocked.Exchange(ref _nextDownload, null) is { } wrap)
        {
            http.Response.Body = wrap(http.Response.Body);
        }
        await next(http);
    });
}

public sealed class BulkExportServer_Sqlite() : BulkExportServer(Engine.Sqlite);

public sealed class BulkExportServer_Postgres() : BulkExportServer(Engine.Postgres);

public sealed class BulkExportTests_Sqlite(BulkExportServer_Sqlite shared) : BulkExportTests(shared), IClassFixture<BulkExportServer_Sqlite>;

public sealed class BulkExportTests_Postgres(BulkExportServer_Postgres shared) : BulkExportTests(shared), IClassFixture<BulkExportServer_Postgres>;
