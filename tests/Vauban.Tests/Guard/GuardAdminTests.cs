// The security officer's guard API (/admin/guard) on both engines: a signed-in officer lists and releases;
// everyone else, and every malformed or cross-site request, is refused with a 4xx and changes nothing.
using System.Net;
using System.Text;
using System.Text.Json;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public abstract class GuardAdminTests(GuardAdminServer shared) : IAsyncLifetime
{
    private const string Password = "tourmaline ferry quietly 42";
    // One server for the class (GuardAdminServer), each test in an establishment of its own: containments, alerts, grants and
    // baselines are an establishment's.
    private string Establishment { get; } = SharedServer.EstablishmentName("hopital-console");
    private readonly ManualTime _time = shared.Time;
    private readonly VaubanServer _server = shared.Server;
    private Tenant _tenant = null!;
    private readonly Dictionary<string, string> _secrets = [];
    private string _stranger = "", _canary = "";
    private readonly List<string> _desk = [];
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        foreach (var (email, role) in new[] { ("officer@chu.example", StaffRole.SecurityOfficer), ("doctor@chu.example", StaffRole.Physician), ("desk@chu.example", StaffRole.Secretary), ("admin@chu.example", StaffRole.Administrator) })
        {
            var link = await _server.Store.Accounts.AddAsync(_tenant, email, role, null, null, email, CancellationToken.None);
            using var browser = new StaffClient(_server.BaseAddress);
            (_secrets[email], _) = await browser.EnrolWithTotpAsync(link.Token, Password, _time);
            _time.Advance(TimeSpan.FromSeconds(30));
        }
        _client = await _server.ClientAsync(Establishment, "system/Patient.rs");
        using var writer = await _server.ClientAsync(Establishment);
        using (var created = await writer.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Stranger"))))
        {
            _stranger = (await created.BodyAsync()).GetProperty("id").GetString()!;
        }
        for (var i = 0; i < 30; i++)
        {
            using var created = await writer.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Desk", given: "D" + i)));
            _desk.Add((await created.BodyAsync()).GetProperty("id").GetString()!);
        }
        _canary = (await _server.Store.Guard.AddCanariesAsync(_server.Store.Records, _tenant, 1, CancellationToken.None))[0];
        using var hit = await _client.GetAsync($"/fhir/Patient/{_canary}");
        Assert.Equal((HttpStatusCode)423, hit.StatusCode);
    }

    public Task DisposeAsync()
    {
        _client.Dispose();
        return Task.CompletedTask;
    }

    private Task<StaffClient> SignedInAsync(string email) => StaffClient.SignedInAsync(_server.BaseAddress, Establishment, email, Password, _secrets[email], _time);

    private HttpRequestMessage Release(string body, string? contentType = "application/json", bool origin = true)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/admin/guard/release") { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = contentType is null ? null : new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        if (origin) request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
        return request;
    }

    private async Task<string> ContainedClientAsync()
    {
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None), c => !c.Principal.StartsWith("session:", StringComparison.Ordinal));
        return contained.Principal;
    }

    [Fact]
    public async Task An_alert_altered_in_the_database_is_listed_as_such_and_the_others_still_are()
    {
        var kept = await _server.Store.Alerts.RaiseAsync(_tenant.Id, KnownAlertKinds.BreakTheGlass, "user:kept", "kept detail", CancellationToken.None);
        var damaged = await _server.Store.Alerts.RaiseAsync(_tenant.Id, KnownAlertKinds.BreakTheGlass, "user:damaged", "damaged detail", CancellationToken.None);
        await using (var database = Vauban.Storage.StoreDatabase.Open(_server.Db))
        await using (var connection = await database.OpenAsync(CancellationToken.None))
        {
            // The sealed detail of one alert moved onto the other: it no longer authenticates there.
            using var write = connection.CreateCommand();
            write.CommandText = $"UPDATE security_alerts SET detail = (SELECT detail FROM security_alerts WHERE id = {kept}) WHERE id = {damaged}";
            Assert.Equal(1, await write.ExecuteNonQueryAsync());
        }
        var alerts = await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, CancellationToken.None);
        Assert.Equal("kept detail", Assert.Single(alerts, a => a.Id == kept).Detail);
        var shown = Assert.Single(alerts, a => a.Id == damaged);
        Assert.Equal(SecurityAlerts.Altered, shown.Principal);
        Assert.Contains("altered", shown.Detail, StringComparison.Ordinal);
        using var officer = await SignedInAsync("officer@chu.example");
        using var listed = await officer.Http.GetAsync("/admin/guard/alerts?all=true");
        Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
    }

    [Fact]
    public async Task The_security_officer_reads_the_explanation_a_break_the_glass_holder_stated_and_no_one_else_does()
    {
        // The explanation was required and sealed, and no view ever opened it: the alert said "Other (explain below)" and nothing followed.
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:dr-glass", "Dr Verre", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, SessionId = "s-glass", AuthenticatedAt = _time.GetUtcNow(),
        }, _tenant, "TREAT");
        Assert.Equal(BreakGlassStatus.Granted, (await _server.Store.BreakTheGlass.OpenAsync(physician, _stranger, KnownBreakGlassReasons.Other,
            "Appel du SAMU, patient inconscient au déchocage", CancellationToken.None)).Status);
        using (var officer = await SignedInAsync("officer@chu.example"))
        {
            using var grants = await officer.Http.GetAsync("/admin/guard/grants");
            var body = await grants.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, grants.StatusCode);
            using var list = JsonDocument.Parse(body);
            var grant = Assert.Single(list.RootElement.EnumerateArray());
            Assert.Equal("user:dr-glass", grant.GetProperty("principal").GetString());
            Assert.Equal(_stranger, grant.GetProperty("patient").GetString());
            Assert.Equal("other", grant.GetProperty("reason").GetString());
            Assert.Equal("Appel du SAMU, patient inconscient au déchocage", grant.GetProperty("explanation").GetString());
            // On the patient's access history: the emergency stated about them was read, and by whom.
            var reading = Assert.Single(await OfficersAdministrativeEntriesAsync(), e => e.Detail.Patient == _stranger);
            Assert.Equal("guard console read (1 listed)", reading.Detail.Note);
            Assert.Equal(["BreakTheGlass/" + grant.GetProperty("id").GetInt64()], reading.Detail.Records);
            // And in the scope of a breach of the officer's account: the emergency stated about the patient left with it.
            var log = await Vauban.Breach.BreachInvestigation.CheckLogAsync(_server.Store, _tenant, CancellationToken.None);
            var scope = await Vauban.Breach.BreachInvestigation.ScopeAsync(_server.Store, AccessContext.Operator(_tenant, "breach notification"),
                reading.Detail.Principal, null, null, log, CancellationToken.None);
            var reached = Assert.Single(scope!.Patients);
            Assert.Equal(_stranger, reached.Id);
            Assert.Equal([Vauban.Breach.BreachCategory.AccessHistory], reached.Categories);

            // An explanation altered in the database is said to be so, and the other grants are still listed (not a 500).
            await using (var database = Vauban.Storage.StoreDatabase.Open(_server.Db))
            await using (var connection = await database.OpenAsync(CancellationToken.None))
            {
                using var read = connection.CreateCommand();
                read.CommandText = $"SELECT detail FROM break_glass WHERE tenant_id = {_tenant.Id}";
                var detail = (byte[])(await read.ExecuteScalarAsync())!;
                detail[^1] ^= 1;
                using var write = connection.CreateCommand();
                write.CommandText = $"UPDATE break_glass SET detail = @d WHERE tenant_id = {_tenant.Id}";
                var parameter = write.CreateParameter();
                parameter.ParameterName = "@d";
                parameter.Value = detail;
                write.Parameters.Add(parameter);
                Assert.Equal(1, await write.ExecuteNonQueryAsync());
            }
            using var altered = await officer.Http.GetAsync("/admin/guard/grants");
            var alteredBody = await altered.Content.ReadAsStringAsync();
            Assert.True(altered.StatusCode == HttpStatusCode.OK, alteredBody);
            using var alteredList = JsonDocument.Parse(alteredBody);
            Assert.Equal("(cannot be opened: the stored explanation was altered)", Assert.Single(alteredList.RootElement.EnumerateArray()).GetProperty("explanation").GetString());
        }
        var alert = Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.BreakTheGlass);
        Assert.Contains("/admin/guard/grants", alert.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("SAMU", alert.Detail, StringComparison.Ordinal);
        foreach (var email in new[] { "admin@chu.example", "doctor@chu.example" })
        {
            using var other = await SignedInAsync(email);
            using var refused = await other.Http.GetAsync("/admin/guard/grants");
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.DoesNotContain("SAMU", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        // An explanation that would display as other words than it holds is refused.
        var disguised = await _server.Store.BreakTheGlass.OpenAsync(physician, _stranger, KnownBreakGlassReasons.Other, "Urgence \u202Eeérutnavuos\u202C vitale", CancellationToken.None);
        Assert.Equal(BreakGlassStatus.Invalid, disguised.Status);
    }

    [Fact]
    public async Task The_security_officer_sees_the_containment_and_releases_the_client()
    {
        using var officer = await SignedInAsync("officer@chu.example");
        using (var contained = await officer.Http.GetAsync("/admin/guard/contained"))
        {
            Assert.Equal(HttpStatusCode.OK, contained.StatusCode);
            Assert.Contains(await ContainedClientAsync(), await contained.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var alerts = await officer.Http.GetAsync("/admin/guard/alerts"))
        {
            Assert.Equal(HttpStatusCode.OK, alerts.StatusCode);
            Assert.Contains("guard-canary", await alerts.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var canaries = await officer.Http.GetAsync("/admin/guard/canaries"))
        {
            Assert.Contains(_canary, await canaries.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using var release = Release($$"""{"principal":"{{await ContainedClientAsync()}}"}""");
        using (var released = await officer.Http.SendAsync(release)) Assert.Equal(HttpStatusCode.OK, released.StatusCode);
        Assert.Empty(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None));
        using var read = await _client.GetAsync($"/fhir/Patient/{_stranger}");
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
    }

    [Fact]
    public async Task An_insider_administrator_cannot_release_a_client_a_canary_suspended_and_it_stays_suspended_until_the_officer_releases_it()
    {
        // The canary's alert is the officer's to acknowledge; its containment was the administrator's to release, so an insider (or a
        // stolen administrator's account) could free an accomplice before the officer had looked (a black-box probe).
        var principal = await ContainedClientAsync();
        var body = $$"""{"principal":"{{principal}}"}""";
        using (var administrator = await SignedInAsync("admin@chu.example"))
        {
            using (var listed = await administrator.Http.GetAsync("/admin/guard/contained"))
            {
                Assert.Contains("\"cause\":\"canary\"", await listed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            using var refused = await administrator.Http.SendAsync(Release(body));
            var problem = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.Forbidden, refused.StatusCode + problem);
            Assert.StartsWith("application/problem+json", refused.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
            Assert.Contains("A canary's containment is the security officer's to release", problem, StringComparison.Ordinal);
            // The attempt is told to the officer (the insider's move), and is hers to review: the administrator cannot acknowledge it.
            var tried = Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.GuardReleaseRefused);
            Assert.Contains($"tried to release {principal}, whom a canary contained", tried.Detail, StringComparison.Ordinal);
            Assert.StartsWith("user:", tried.Principal, StringComparison.Ordinal);
            using (var hidden = await administrator.Http.SendAsync(SameSite(HttpMethod.Post, "/admin/guard/alerts/acknowledge",
                new StringContent($$"""{"alerts":[{{tried.Id}}]}""", Encoding.UTF8, "application/json"))))
            {
                Assert.Equal(HttpStatusCode.NotFound, hidden.StatusCode);
            }
            Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Id == tried.Id);
        }
        // Nothing changed: still held, still refused, no release told to the officer; the attempt is on the chain as a refusal.
        Assert.Equal(Vauban.Guard.ContainmentCauses.Canary, Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None)).Cause);
        using (var read = await _client.GetAsync($"/fhir/Patient/{_stranger}")) Assert.Equal((HttpStatusCode)423, read.StatusCode);
        Assert.DoesNotContain(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.GuardReleased);
        var attempt = Assert.Single(await AdministrativeEntriesAsync("admin@chu.example"), e => e.Detail.Records.Contains("principal:" + principal));
        Assert.Equal(Vauban.Audit.AuditOutcome.MinorFailure, attempt.Outcome);
        Assert.Equal("guard release refused: a canary's containment is the security officer's to release (1 of 1)", attempt.Detail.Note);

        using var officer = await SignedInAsync("officer@chu.example");
        using (var released = await officer.Http.SendAsync(Release(body))) Assert.Equal(HttpStatusCode.OK, released.StatusCode);
        Assert.Empty(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None));
        using var after = await _client.GetAsync($"/fhir/Patient/{_stranger}");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task An_administrator_retrying_a_refused_release_is_told_to_the_officer_once_an_hour_and_every_attempt_is_on_the_chain()
    {
        // Each refused attempt raised an alert: an administrator retrying at will flooded the officer's list (a review).
        var principal = await ContainedClientAsync();
        var body = $$"""{"principal":"{{principal}}"}""";
        async Task<int> ToldAsync() => (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, CancellationToken.None)).Count(a => a.Kind == KnownAlertKinds.GuardReleaseRefused);
        using (var administrator = await SignedInAsync("admin@chu.example"))
        {
            for (var i = 0; i < 4; i++)
            {
                using var refused = await administrator.Http.SendAsync(Release(body));
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            }
        }
        Assert.Equal(1, await ToldAsync());
        Assert.Contains("Its further attempts on it within the hour are on the audit log, not told again.",
            Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.GuardReleaseRefused).Detail, StringComparison.Ordinal);
        Assert.Equal(4, (await AdministrativeEntriesAsync("admin@chu.example")).Count(e => e.Detail.Note is { } n && n.StartsWith("guard release refused", StringComparison.Ordinal)));
        // An attempt on another principal is told at once: a decoy's alert does not hide whom she meant to free.
        using var second = await _server.ClientAsync(Establishment, "system/Patient.rs");
        using (var hit = await second.GetAsync($"/fhir/Patient/{_canary}")) Assert.Equal((HttpStatusCode)423, hit.StatusCode);
        var accomplice = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None), c => c.Principal != principal).Principal;
        using (var administrator = await SignedInAsync("admin@chu.example"))
        using (var refused = await administrator.Http.SendAsync(Release($$"""{"principal":"{{accomplice}}"}""")))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }
        Assert.Equal(2, await ToldAsync());
        // An hour on, the next attempt is told again.
        _time.Advance(TimeSpan.FromMinutes(61));
        using (var administrator = await SignedInAsync("admin@chu.example"))
        using (var refused = await administrator.Http.SendAsync(Release(body)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }
        Assert.Equal(3, await ToldAsync());
    }

    [Fact]
    public async Task An_administrator_still_releases_a_client_the_guard_suspended_for_its_volume()
    {
        var canaryHeld = await ContainedClientAsync();
        using var sweeper = await _server.ClientAsync(Establishment, "system/Patient.rs");
        var read = 0;
        HttpStatusCode status;
        while ((status = await StatusAsync(sweeper, $"/fhir/Patient/{_desk[read]}")) == HttpStatusCode.OK) read++;
        Assert.Equal((HttpStatusCode)423, status);
        var suspended = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None), c => c.Principal != canaryHeld);
        Assert.Equal(Vauban.Guard.ContainmentCauses.Volume, suspended.Cause);

        using (var administrator = await SignedInAsync("admin@chu.example"))
        using (var released = await administrator.Http.SendAsync(Release($$"""{"principal":"{{suspended.Principal}}"}""")))
        {
            Assert.Equal(HttpStatusCode.OK, released.StatusCode);
        }
        Assert.DoesNotContain(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None), c => c.Principal == suspended.Principal);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(sweeper, $"/fhir/Patient/{_desk[0]}"));
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient client, string url)
    {
        using var response = await client.GetAsync(url);
        return response.StatusCode;
    }

    [Fact]
    public async Task The_security_officer_acknowledges_reviewed_alerts_which_leave_the_default_list_and_the_act_is_audited()
    {
        using var officer = await SignedInAsync("officer@chu.example");
        var alert = (await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None)).First(a => a.Kind == Vauban.Access.KnownAlertKinds.GuardCanary);
        HttpRequestMessage Acknowledge(string body)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/admin/guard/alerts/acknowledge") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
            return request;
        }
        foreach (var bad in new[] { "{}", "{\"alerts\":[]}", "{\"alerts\":[\"1\"]}", "{\"alerts\":[-1]}", "{\"alerts\":1}" })
        {
            using var request = Acknowledge(bad);
            using var response = await officer.Http.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, bad);
        }
        using (var request = Acknowledge("{\"alerts\":[999999]}"))
        using (var unknown = await officer.Http.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Id == alert.Id); // nothing changed

        using (var request = Acknowledge($$"""{"alerts":[{{alert.Id}}, 999999]}"""))
        using (var done = await officer.Http.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
            var body = await done.Content.ReadAsStringAsync();
            Assert.Contains($"\"acknowledged\":[{alert.Id}]", body, StringComparison.Ordinal);
            Assert.Contains("\"notFound\":[999999]", body, StringComparison.Ordinal);
        }
        using (var list = await officer.Http.GetAsync("/admin/guard/alerts"))
        {
            Assert.DoesNotContain($"\"id\":{alert.Id},", await list.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var list = await officer.Http.GetAsync("/admin/guard/alerts?all=true"))
        {
            Assert.Contains($"\"id\":{alert.Id},", await list.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        var acknowledged = (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, CancellationToken.None)).Single(a => a.Id == alert.Id);
        Assert.NotNull(acknowledged.AcknowledgedAt);
        Assert.StartsWith("principal-ix:", acknowledged.AcknowledgedBy, StringComparison.Ordinal);
        // Acknowledging again changes nothing.
        using (var request = Acknowledge($$"""{"alerts":[{{alert.Id}}]}"""))
        using (var again = await officer.Http.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }
        var entry = Assert.Single(await OfficersAdministrativeEntriesAsync(), e => e.Detail.Note is { } note && note.StartsWith("guard alerts acknowledged", StringComparison.Ordinal));
        Assert.Equal("guard alerts acknowledged (1)", entry.Detail.Note);
        Assert.Contains("alerts:" + alert.Id, entry.Detail.Records);
        Assert.Equal(KnownPurposes.SystemAdministration, entry.Detail.Purpose);
    }

    [Fact]
    public async Task Acknowledging_alerts_needs_both_factors_proven_within_five_minutes_as_a_release_does()
    {
        // A stolen console session acknowledging the alerts its own reading raised would take them off the officer's list.
        using var officer = await SignedInAsync("officer@chu.example");
        var alert = (await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None)).First(a => a.Kind == KnownAlertKinds.GuardCanary);
        _time.Advance(TimeSpan.FromMinutes(6));
        using (var stale = await officer.Http.SendAsync(SameSite(HttpMethod.Post, "/admin/guard/alerts/acknowledge",
            new StringContent($$"""{"alerts":[{{alert.Id}}]}""", Encoding.UTF8, "application/json"))))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, stale.StatusCode);
            Assert.Contains("insufficient_user_authentication", stale.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            Assert.Contains("/account/reauth", await stale.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Id == alert.Id); // still to review

        var (reauth, _) = await officer.SubmitAsync("/account/reauth?returnUrl=%2F",
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secrets["officer@chu.example"], _time), ["ReturnUrl"] = "/" });
        Assert.Equal("/", reauth.Headers.Location?.ToString());
        using (var done = await officer.Http.SendAsync(SameSite(HttpMethod.Post, "/admin/guard/alerts/acknowledge",
            new StringContent($$"""{"alerts":[{{alert.Id}}]}""", Encoding.UTF8, "application/json"))))
        {
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        }
        Assert.DoesNotContain(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Id == alert.Id);
    }

    [Fact]
    public async Task A_contained_officer_cannot_use_the_console_nor_release_itself()
    {
        using var officer = await SignedInAsync("officer@chu.example");
        var officerId = (await _server.Store.Accounts.FindAsync(_tenant, "officer@chu.example", CancellationToken.None))!.PrincipalId;
        // The guard locked the officer's account (as after a stolen session read beyond its bounds twice); the running
        // server learns it at its next re-read of the containments.
        await ExecuteAsync($"INSERT INTO guard_containments (tenant_id, principal, account, level, reason, contained_at) VALUES ({_tenant.Id}, '{officerId}', '{officerId}', 'locked', 'test', {_time.GetUtcNow().ToUnixTimeMilliseconds()})");
        _time.Advance(TimeSpan.FromSeconds(3));
        using (var alerts = await officer.Http.GetAsync("/admin/guard/alerts")) Assert.Equal((HttpStatusCode)423, alerts.StatusCode);
        using (var release = Release($$"""{"principal":"{{officerId}}"}"""))
        using (var refused = await officer.Http.SendAsync(release))
        {
            Assert.Equal((HttpStatusCode)423, refused.StatusCode);
        }
        Assert.Contains(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None), c => c.Principal == officerId); // still contained
    }

    [Fact]
    public async Task A_release_the_audit_log_cannot_record_is_refused_and_releases_nothing_then_is_recorded_as_the_officers()
    {
        using var officer = await SignedInAsync("officer@chu.example");
        var principal = await ContainedClientAsync();
        var body = $$"""{"principal":"{{principal}}"}""";
        await ExecuteAsync("ALTER TABLE audit_entries RENAME TO audit_entries_away");
        try
        {
            using var refused = await officer.Http.SendAsync(Release(body));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        }
        finally
        {
            await ExecuteAsync("ALTER TABLE audit_entries_away RENAME TO audit_entries");
        }
        Assert.Equal(principal, await ContainedClientAsync());
        Assert.DoesNotContain(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.GuardReleased);

        using (var released = await officer.Http.SendAsync(Release(body))) Assert.Equal(HttpStatusCode.OK, released.StatusCode);
        // One entry for the one release: the refused attempt left none.
        var release = Assert.Single(await OfficersAdministrativeEntriesAsync(), e => e.Detail.Records.Contains("principal:" + principal));
        Assert.Equal("guard release", release.Detail.Note);
        Assert.Equal(Vauban.Audit.AuditOutcome.Success, release.Outcome);
        Assert.Equal(KnownPurposes.SystemAdministration, release.Detail.Purpose); // the officer administers, no care is given
    }

    [Fact]
    public async Task A_physician_trying_the_officers_acts_at_the_console_is_refused_and_each_attempt_is_on_the_audit_chain()
    {
        var principal = await ContainedClientAsync();
        using (var doctor = await SignedInAsync("doctor@chu.example"))
        {
            using (var release = Release($$"""{"principal":"{{principal}}"}"""))
            using (var refused = await doctor.Http.SendAsync(release))
            {
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            }
            using var alerts = await doctor.Http.GetAsync("/admin/guard/alerts");
            Assert.Equal(HttpStatusCode.Forbidden, alerts.StatusCode);
        }
        Assert.Equal(principal, await ContainedClientAsync()); // still contained
        var attempts = (await AdministrativeEntriesAsync("doctor@chu.example")).Where(e => e.Detail.Note is { } n && n.StartsWith("guard console refused", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, attempts.Count);
        Assert.All(attempts, e => Assert.Equal(Vauban.Audit.AuditOutcome.MinorFailure, e.Outcome));
        Assert.Contains(attempts, e => e.Detail.Records.Contains("console:POST /admin/guard/release"));
        Assert.Contains(attempts, e => e.Detail.Records.Contains("console:GET /admin/guard/alerts"));
    }

    /// <summary>The officer's administrative entries on the chain.</summary>
    private Task<IReadOnlyList<Vauban.Audit.AuditEntry>> OfficersAdministrativeEntriesAsync() => AdministrativeEntriesAsync("officer@chu.example");

    /// <summary>A staff member's administrative entries on the chain.</summary>
    private Task<IReadOnlyList<Vauban.Audit.AuditEntry>> AdministrativeEntriesAsync(string email) =>
        _server.AuditEntriesOfAsync(_tenant, email, Vauban.Audit.AuditAction.Administration);

    private Task ExecuteAsync(string sql) => _server.ExecuteSqlAsync(sql);

    [Fact]
    public async Task An_insider_administrator_cannot_learn_the_canary_patients_at_the_console_while_the_officer_can()
    {
        // The canary was read in the fixture: its alert and its containment name it, to the officer.
        using (var administrator = await SignedInAsync("admin@chu.example"))
        {
            using (var list = await administrator.Http.GetAsync("/admin/guard/canaries"))
            {
                Assert.Equal(HttpStatusCode.Forbidden, list.StatusCode);
                Assert.DoesNotContain(_canary, await list.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            using (var add = SameSite(HttpMethod.Post, "/admin/guard/canaries", new StringContent("{\"count\":1}", Encoding.UTF8, "application/json")))
            using (var added = await administrator.Http.SendAsync(add))
            {
                Assert.Equal(HttpStatusCode.Forbidden, added.StatusCode);
            }
            foreach (var url in new[] { "/admin/guard/alerts?all=true", "/admin/guard/contained" })
            {
                using var response = await administrator.Http.GetAsync(url);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var body = await response.Content.ReadAsStringAsync();
                Assert.Contains("canary patient", body, StringComparison.Ordinal);
                Assert.DoesNotContain(_canary, body, StringComparison.Ordinal);
            }
        }
        Assert.Single(await _server.Store.Guard.CanariesAsync(_tenant.Id, CancellationToken.None)); // none added
        var refusals = (await AdministrativeEntriesAsync("admin@chu.example")).Where(e => e.Detail.Note is { } n && n.StartsWith("guard console refused", StringComparison.Ordinal)).ToList();
        Assert.Contains(refusals, e => e.Detail.Records.Contains("console:GET /admin/guard/canaries"));
        Assert.Contains(refusals, e => e.Detail.Records.Contains("console:POST /admin/guard/canaries"));

        using var officer = await SignedInAsync("officer@chu.example");
        foreach (var url in new[] { "/admin/guard/canaries", "/admin/guard/alerts?all=true", "/admin/guard/contained" })
        {
            using var response = await officer.Http.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains(_canary, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Every_list_read_at_the_console_is_on_the_chain_as_an_administrative_act_of_its_reader()
    {
        var lists = new[] { "/admin/guard/alerts", "/admin/guard/contained", "/admin/guard/canaries", "/admin/guard/exports" };
        using (var officer = await SignedInAsync("officer@chu.example"))
        {
            foreach (var url in lists)
            {
                using var response = await officer.Http.GetAsync(url);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }
        using (var administrator = await SignedInAsync("admin@chu.example"))
        using (var response = await administrator.Http.GetAsync("/admin/guard/contained"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        var reads = (await OfficersAdministrativeEntriesAsync()).Where(e => e.Detail.Note is { } n && n.StartsWith("guard console read", StringComparison.Ordinal)).ToList();
        Assert.Equal(lists.Length, reads.Count);
        foreach (var url in lists) Assert.Single(reads, e => e.Detail.Records.Contains("console:GET " + url));
        Assert.All(reads, e =>
        {
            Assert.Equal(Vauban.Audit.AuditOutcome.Success, e.Outcome);
            Assert.Equal(KnownPurposes.SystemAdministration, e.Detail.Purpose);
            Assert.Equal("security-officer", e.Detail.Role);
            Assert.Equal("127.0.0.1", e.Detail.Source);
        });
        Assert.Contains(reads, e => e.Detail.Note == "guard console read (1 listed)"); // the one canary
        Assert.Single(await AdministrativeEntriesAsync("admin@chu.example"), e => e.Detail.Records.Contains("console:GET /admin/guard/contained"));
    }

    [Fact]
    public async Task When_the_audit_log_cannot_be_written_the_console_lists_nothing()
    {
        using var officer = await SignedInAsync("officer@chu.example");
        await _server.Store.Audit.CatchUpAsync();
        await ExecuteAsync("ALTER TABLE audit_entries RENAME TO audit_entries_away");
        try
        {
            // A read's entry is in the journal before its answer leaves; the first copy onto the chain that fails closes the door.
            var refused = false;
            for (var deadline = DateTime.UtcNow.AddSeconds(10); !refused && DateTime.UtcNow < deadline; await Task.Delay(50))
            {
                using var response = await officer.Http.GetAsync("/admin/guard/alerts");
                if (response.StatusCode == HttpStatusCode.OK) continue;
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.DoesNotContain("guard-canary", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                refused = true;
            }
            Assert.True(refused, "the console still listed alerts 10 s after the chain became unwritable");
            using var contained = await officer.Http.GetAsync("/admin/guard/contained");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, contained.StatusCode);
        }
        finally
        {
            await ExecuteAsync("ALTER TABLE audit_entries_away RENAME TO audit_entries");
        }
    }

    [Fact]
    public async Task Canaries_added_at_the_console_are_attributed_to_the_officer_with_their_session_and_address()
    {
        using var officer = await SignedInAsync("officer@chu.example");
        using (var add = new HttpRequestMessage(HttpMethod.Post, "/admin/guard/canaries") { Content = new StringContent("{\"count\":1}", Encoding.UTF8, "application/json") })
        {
            add.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
            using var response = await officer.Http.SendAsync(add);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }
        var officerId = (await _server.Store.Accounts.FindAsync(_tenant, "officer@chu.example", CancellationToken.None))!.PrincipalId;
        var entries = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "audit test"),
            new Vauban.Audit.AuditQuery { Agent = officerId, Count = 100 }, CancellationToken.None) ?? [];
        var signIn = entries.First(e => e.Action == Vauban.Audit.AuditAction.SignIn);
        var created = Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.Create);
        Assert.Equal(Vauban.Audit.AuditOutcome.Success, created.Outcome);
        Assert.Equal("Patient", created.ResourceType);
        Assert.Equal(signIn.Detail.Session, created.Detail.Session);
        Assert.NotNull(created.Detail.Session);
        Assert.Equal("127.0.0.1", created.Detail.Source);
        Assert.Equal("security-officer", created.Detail.Role);
        Assert.Equal(2, (await _server.Store.Guard.CanariesAsync(_tenant.Id, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task Stolen_desk_session_sweeping_identities_gets_a_step_up_401_then_after_reauthentication_a_423_by_the_26th_patient()
    {
        using var desk = await SignedInAsync("desk@chu.example");
        var opened = 0;
        HttpResponseMessage response;
        while (true)
        {
            response = await desk.Http.GetAsync($"/fhir/Patient/{_desk[opened]}");
            if (response.StatusCode != HttpStatusCode.OK) break;
            response.Dispose();
            opened++;
        }
        Assert.Equal(14, opened);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("insufficient_user_authentication", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal("login", (await response.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        response.Dispose();

        // The person (or a thief holding both factors) proves them again and goes on — until the bound.
        var (reauth, _) = await desk.SubmitAsync("/account/reauth?returnUrl=%2F",
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secrets["desk@chu.example"], _time), ["ReturnUrl"] = "/" });
        Assert.Equal("/", reauth.Headers.Location?.ToString());
        while (true)
        {
            response = await desk.Http.GetAsync($"/fhir/Patient/{_desk[opened]}");
            if (response.StatusCode != HttpStatusCode.OK) break;
            response.Dispose();
            opened++;
        }
        Assert.Equal(25, opened);
        Assert.Equal((HttpStatusCode)423, response.StatusCode);
        Assert.Equal("security", (await response.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        response.Dispose();
        var contained = await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None);
        Assert.Contains(contained, c => c.Principal.StartsWith("session:", StringComparison.Ordinal) && c.Account!.StartsWith("user:", StringComparison.Ordinal));
    }

    private HttpRequestMessage SameSite(HttpMethod method, string url, HttpContent content)
    {
        var request = new HttpRequestMessage(method, url) { Content = content };
        request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
        return request;
    }

    private async Task<IReadOnlyList<SecurityAlert>> AlertsOfAsync(string kind, string email, int expected)
    {
        var principal = (await _server.Store.Accounts.FindAsync(_tenant, email, CancellationToken.None))!.PrincipalId;
        for (var deadline = DateTime.UtcNow.AddSeconds(10); ; await Task.Delay(50))
        {
            var alerts = (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 1000, CancellationToken.None)).Where(a => a.Kind == kind && a.Principal == principal).ToList();
            if (alerts.Count >= expected || DateTime.UtcNow > deadline) return alerts;
        }
    }

    [Fact]
    public async Task Stolen_desk_session_reading_identities_through_a_transaction_Bundle_gets_the_step_up_and_the_server_keeps_writing()
    {
        // The step-up's alert used to be written while the transaction held SQLite's only writer slot: it waited for it for
        // ever, and every write of the server (sign-ins, audit, records) behind it.
        using var writer = await _server.ClientAsync(Establishment);
        using var desk = await SignedInAsync("desk@chu.example");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var entries = string.Join(",", _desk.Take(20).Select(p => $$"""{"request":{"method":"GET","url":"Patient/{{p}}"} }"""));
        using (var request = SameSite(HttpMethod.Post, "/fhir", FhirContent.Json($$"""{"resourceType":"Bundle","type":"transaction","entry":[{{entries}}]}""")))
        using (var response = await desk.Http.SendAsync(request, timeout.Token))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            var body = await response.Content.ReadAsStringAsync(timeout.Token);
            Assert.Contains("\"login\"", body, StringComparison.Ordinal);
            Assert.DoesNotContain("Desk", body, StringComparison.Ordinal);
        }
        using (var created = await writer.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "After")), timeout.Token))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        Assert.Single(await AlertsOfAsync(KnownAlertKinds.GuardStepUp, "desk@chu.example", 1));
    }

    [Fact]
    public async Task Stolen_factors_breaking_the_glass_again_and_again_without_reading_are_contained_at_the_26th_grant()
    {
        // Grants used to be counted only at the next read: without reading, a thief holding both factors was granted, and the
        // officer alerted, for as many patients as it named, flooding the console. Each grant's patient counts outside care
        // relationships from the grant on (since 2026-12-07): at the 10th the thief proves both factors again, as it would have at
        // the 10th read.
        using var doctor = await SignedInAsync("doctor@chu.example");
        var patients = _desk.Append(_stranger).ToList();
        var statuses = new List<HttpStatusCode>();
        var proved = 0;
        foreach (var patient in patients)
        {
            async Task<HttpStatusCode> GrantAsync()
            {
                var parameters = """{"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"emergency"},{"name":"text","valueString":"Patient brought in unconscious"}]}""";
                using var request = SameSite(HttpMethod.Post, $"/fhir/Patient/{patient}/$break-the-glass", FhirContent.Json(parameters));
                using var response = await doctor.Http.SendAsync(request);
                return response.StatusCode;
            }
            var status = await GrantAsync();
            if (status == HttpStatusCode.Unauthorized)
            {
                Assert.Equal(10, statuses.Count + 1);
                var (reauth, _) = await doctor.SubmitAsync("/account/reauth?returnUrl=%2F",
                    new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secrets["doctor@chu.example"], _time), ["ReturnUrl"] = "/" });
                Assert.Equal("/", reauth.Headers.Location?.ToString());
                _time.Advance(TimeSpan.FromSeconds(30));
                proved++;
                status = await GrantAsync();
            }
            statuses.Add(status);
        }
        Assert.Equal(1, proved);
        Assert.Equal(25, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.All(statuses.Skip(25), s => Assert.Equal(HttpStatusCode.Forbidden, s));
        Assert.Equal(25, (await AlertsOfAsync(KnownAlertKinds.BreakTheGlass, "doctor@chu.example", 25)).Count);
        // The session is contained: nothing opens, and the officer was told once.
        using (var read = await doctor.Http.GetAsync($"/fhir/Patient/{patients[0]}")) Assert.Equal((HttpStatusCode)423, read.StatusCode);
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None), c => c.Principal.StartsWith("session:", StringComparison.Ordinal));
        Assert.Contains("distinct patients outside care relationships in a day: 26 > 25", contained.Reason, StringComparison.Ordinal);
        Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 1000, CancellationToken.None), a => a.Kind == KnownAlertKinds.GuardSuspended);
    }

    [Fact]
    public async Task Bad_or_forged_requests_to_the_guard_console_are_refused_and_change_nothing()
    {
        var principal = await ContainedClientAsync();
        var good = $$"""{"principal":"{{principal}}"}""";
        using (var anonymous = await _server.Http.SendAsync(Release(good))) Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using (var doctor = await SignedInAsync("doctor@chu.example"))
        {
            using var response = await doctor.Http.SendAsync(Release(good));
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            using var list = await doctor.Http.GetAsync("/admin/guard/alerts");
            Assert.Equal(HttpStatusCode.Forbidden, list.StatusCode);
        }
        using var officer = await SignedInAsync("officer@chu.example");
        var cases = new (HttpRequestMessage Request, HttpStatusCode Expected)[]
        {
            (Release(good, origin: false), HttpStatusCode.Forbidden),
            (Release("principal=" + principal, "application/x-www-form-urlencoded"), HttpStatusCode.UnsupportedMediaType),
            (Release("{\"principal\":", "application/json"), HttpStatusCode.BadRequest),
            (Release("[1,2]"), HttpStatusCode.BadRequest),
            (Release("{\"principal\":42}"), HttpStatusCode.BadRequest),
            (Release("{\"principal\":\"client' OR 1=1 --\"}"), HttpStatusCode.BadRequest),
            (Release("{\"principal\":\"" + new string('a', 5000) + "\"}"), HttpStatusCode.RequestEntityTooLarge),
            (Release("{\"principal\":\"user:nobody\"}"), HttpStatusCode.NotFound),
        };
        foreach (var (request, expected) in cases)
        {
            using (request)
            using (var response = await officer.Http.SendAsync(request))
            {
                Assert.Equal(expected, response.StatusCode);
                Assert.StartsWith("application/problem+json", response.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
            }
        }
        using (var badCount = new HttpRequestMessage(HttpMethod.Post, "/admin/guard/canaries") { Content = new StringContent("{\"count\":100000}", Encoding.UTF8, "application/json") })
        {
            badCount.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
            using var response = await officer.Http.SendAsync(badCount);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        using (var badLimit = await officer.Http.GetAsync("/admin/guard/alerts?limit=-1")) Assert.Equal(HttpStatusCode.BadRequest, badLimit.StatusCode);
        // Five minutes after the sign-in, releasing needs both factors again.
        _time.Advance(TimeSpan.FromMinutes(6));
        using (var stale = await officer.Http.SendAsync(Release(good)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, stale.StatusCode);
            Assert.Contains("insufficient_user_authentication", stale.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        }
        // Nothing changed: still contained, still one canary.
        Assert.Equal(principal, await ContainedClientAsync());
        Assert.Single(await _server.Store.Guard.CanariesAsync(_tenant.Id, CancellationToken.None));
    }
}

/// <summary>The server <see cref="GuardAdminTests"/> share, on a clock the tests move.</summary>
public abstract class GuardAdminServer(Engine engine) : SharedServer(engine, new ManualTime(ManualTime.RealNow));

public sealed class GuardAdminServer_Sqlite() : GuardAdminServer(Engine.Sqlite);

public sealed class GuardAdminServer_Postgres() : GuardAdminServer(Engine.Postgres);

public sealed class GuardAdminTests_Sqlite(GuardAdminServer_Sqlite shared) : GuardAdminTests(shared), IClassFixture<GuardAdminServer_Sqlite>;

public sealed class GuardAdminTests_Postgres(GuardAdminServer_Postgres shared) : GuardAdminTests(shared), IClassFixture<GuardAdminServer_Postgres>;
