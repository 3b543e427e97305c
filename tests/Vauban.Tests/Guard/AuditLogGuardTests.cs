// The guard weighs the security officer's reading of the audit log (ADR 0008), on both engines: its entries name patients (who
// opened them, which service, why), so a stolen officer session must not walk the whole log. Past her hour's step-up level she
// proves both factors again — over FHIR (401, RFC 9470) and at the console (to /account/reauth and back, the patient id kept) —
// and beyond its suspension level her session is suspended, the withheld entries on the chain as such. A canary named by an entry
// is the incident she looks into: it contains no one. A reading the guard holds is never given as empty or partial: a patient's
// history longer than a page is weighed whole, and a search or a breach scope with no room for the refusal throws it.
using System.Net;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Guard;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public abstract class AuditLogGuardTests : IAsyncLifetime
{
    private const string Establishment = "hopital-journal";
    private const string Password = "tourmaline ferry quietly 42";
    private const string OfficerEmail = "officer@journal.example";

    /// <summary>This establishment's officer proves both factors again at 5 patients' entries in an hour, and is suspended beyond 8.</summary>
    private const int StepUp = 5, Suspend = 8;

    /// <summary>… and proves them again at this many entries returned by her searches in an hour: a little more than a page.</summary>
    private const int SearchRecordsStepUp = AuditLog.MaxPage + 5;

    private readonly Engine _engine;
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 11, 30, 9, 0, 0, TimeSpan.Zero));
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private string _secret = "", _canary = "", _adminSecret = "", _secondSecret = "";
    private readonly List<string> _patients = [];
    private static readonly CancellationToken None = CancellationToken.None;

    protected AuditLogGuardTests(Engine engine) => _engine = engine;

    private static GuardOptions Options => new()
    {
        SlowDelay = TimeSpan.Zero,
        MaxDelay = TimeSpan.Zero,
        Tenants = new Dictionary<string, GuardTenantOptions>(StringComparer.Ordinal)
        {
            [Establishment] = new()
            {
                Roles = new Dictionary<StaffRole, GuardLimits>
                {
                    [StaffRole.SecurityOfficer] = new()
                    {
                        PatientsPerHour = new(StepUp: StepUp, Suspend: Suspend),
                        PatientsPerDay = new(StepUp: 50, Suspend: 100),
                        SearchRecordsPerHour = new(StepUp: SearchRecordsStepUp, Suspend: 10_000),
                    },
                },
            },
        },
    };

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine, configure: o => o with { Time = _time, Guard = Options });
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, None);
        // Each patient's creation is an entry that names it.
        for (var i = 0; i < 10; i++) _patients.Add(await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Journal", given: "J" + i)));
        _canary = (await _server.Store.Guard.AddCanariesAsync(_server.Store.Records, _tenant, 1, None))[0];
        var officer = await _server.Store.Accounts.AddAsync(_tenant, OfficerEmail, StaffRole.SecurityOfficer, null, null, "Sophie Garde", None);
        using (var browser = new StaffClient(_server.BaseAddress)) (_secret, _) = await browser.EnrolWithTotpAsync(officer.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
        var admin = await _server.Store.Accounts.AddAsync(_tenant, "admin@journal.example", StaffRole.Administrator, null, null, "Alain Admin", None);
        using (var browser = new StaffClient(_server.BaseAddress)) (_adminSecret, _) = await browser.EnrolWithTotpAsync(admin.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
        var second = await _server.Store.Accounts.AddAsync(_tenant, "officer2@journal.example", StaffRole.SecurityOfficer, null, null, "Odile Seconde", None);
        using (var browser = new StaffClient(_server.BaseAddress)) (_secondSecret, _) = await browser.EnrolWithTotpAsync(second.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
    }

    private async Task<(HttpStatusCode Status, string Body)> ReleaseAsync(StaffClient person, string principal)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/guard/release")
        {
            Content = new StringContent($$"""{"principal":"{{principal}}"}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using var response = await person.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>The officer as a host calling the audit log outside a request would name her: weighed by the guard as herself.</summary>
    private async Task<AccessContext> OfficerContextAsync()
    {
        var officer = (await _server.Store.Accounts.FindAsync(_tenant, OfficerEmail, None))!;
        return new AccessContext(new Principal(PrincipalKind.Person, officer.PrincipalId, "Sophie Garde", StaffUser.PersonScopes) { Role = StaffRole.SecurityOfficer },
            _tenant, KnownPurposes.Treatment);
    }

    private Task<StaffClient> OfficerAsync() => StaffClient.SignedInAsync(_server.BaseAddress, Establishment, OfficerEmail, Password, _secret, _time);

    private async Task ReauthenticateAsync(StaffClient officer, string returnUrl)
    {
        var (proved, _) = await officer.SubmitAsync("/account/reauth?returnUrl=" + Uri.EscapeDataString(returnUrl),
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secret, _time), ["ReturnUrl"] = returnUrl });
        Assert.Equal(returnUrl, proved.Headers.Location?.ToString());
        _time.Advance(TimeSpan.FromSeconds(30));
    }

    private static async Task<(HttpStatusCode Status, System.Text.Json.JsonElement Body, HttpResponseMessage Response)> GetAsync(StaffClient officer, string url)
    {
        var response = await officer.Http.GetAsync(url);
        return (response.StatusCode, await response.BodyAsync(), response);
    }

    [Fact]
    public async Task The_officers_reading_of_the_log_is_weighed_by_the_patients_its_entries_name_and_a_canary_among_them_contains_no_one()
    {
        using var officer = await OfficerAsync();
        // The canary's entries: the incident she looks into. Admitted, and she is not contained for it.
        var (canaryStatus, canaryPage, _) = await GetAsync(officer, $"/fhir/AuditEvent?patient={_canary}");
        Assert.Equal(HttpStatusCode.OK, canaryStatus);
        Assert.True(canaryPage.GetProperty("entry").GetArrayLength() >= 1);
        var canaryEntry = canaryPage.GetProperty("entry")[0].GetProperty("resource").GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(officer, $"/fhir/AuditEvent/{canaryEntry}")).Status);
        for (var i = 0; i < StepUp - 2; i++) Assert.Equal(HttpStatusCode.OK, (await GetAsync(officer, $"/fhir/AuditEvent?patient={_patients[i]}")).Status);

        // The 5th patient of the hour: both factors again (RFC 9470), and nothing of that page left.
        var (stepUp, outcome, stepUpResponse) = await GetAsync(officer, $"/fhir/AuditEvent?patient={_patients[StepUp - 2]}");
        Assert.Equal(HttpStatusCode.Unauthorized, stepUp);
        Assert.Contains("insufficient_user_authentication", stepUpResponse.Headers.WwwAuthenticate.ToString());
        Assert.Equal("OperationOutcome", outcome.GetProperty("resourceType").GetString());
        Assert.Equal("login", outcome.GetProperty("issue")[0].GetProperty("code").GetString());
        await ReauthenticateAsync(officer, "/");
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(officer, $"/fhir/AuditEvent?patient={_patients[StepUp - 2]}")).Status);
        for (var i = StepUp - 1; i < Suspend - 1; i++) Assert.Equal(HttpStatusCode.OK, (await GetAsync(officer, $"/fhir/AuditEvent?patient={_patients[i]}")).Status);

        // Beyond 8 patients in the hour: suspended, by search, and then by read and by count too.
        var (suspended, refusal, _) = await GetAsync(officer, $"/fhir/AuditEvent?patient={_patients[Suspend - 1]}");
        Assert.Equal(HttpStatusCode.Locked, suspended);
        Assert.Equal("security", refusal.GetProperty("issue")[0].GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.Locked, (await GetAsync(officer, "/fhir/AuditEvent/1")).Status);
        Assert.Equal(HttpStatusCode.Locked, (await GetAsync(officer, "/fhir/AuditEvent?_count=0")).Status);
        Assert.Equal(HttpStatusCode.Locked, (await GetAsync(officer, "/fhir/AuditEvent/999999")).Status);

        await _server.Store.Guard.FlushAsync();
        var alerts = await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None);
        Assert.DoesNotContain(alerts, a => a.Kind is KnownAlertKinds.GuardCanary or KnownAlertKinds.GuardCanarySeen);
        Assert.Contains(alerts, a => a.Kind == KnownAlertKinds.GuardSuspended && a.Detail.Contains("distinct patients in an hour", StringComparison.Ordinal));
        Assert.Contains(alerts, a => a.Kind == KnownAlertKinds.GuardStepUp);
        // The withheld entries are on the chain as the officer's refused reading, naming the patient they concern.
        var held = await _server.AuditEntriesOfAsync(_tenant, OfficerEmail, AuditAction.Containment);
        Assert.Contains(held, e => e.Detail.Patient == _patients[StepUp - 2] && e.Outcome == AuditOutcome.MinorFailure);
        Assert.Contains(held, e => e.Detail.Patient == _patients[Suspend - 1] && e.Detail.Note!.Contains("Suspended", StringComparison.Ordinal));
        Assert.DoesNotContain(held, e => e.Detail.Patient == _canary);

        // A suspension holds the session: signed in again, she is not held, but may not release her own session (which would also
        // start her reading windows afresh, and the levels would hold no one who has her factors). Another officer, or the operator.
        var contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        Assert.Equal(ContainmentCauses.AuditLog, contained.Cause);
        var suspendedSession = contained.Principal;
        using var again = await OfficerAsync();
        var (own, ownProblem) = await ReleaseAsync(again, suspendedSession);
        Assert.True(own == HttpStatusCode.Forbidden, own + ownProblem);
        Assert.Contains("No one releases their own containment", ownProblem, StringComparison.Ordinal);
        Assert.Equal(suspendedSession, Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None)).Principal);
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, None),
            a => a.Kind == KnownAlertKinds.GuardReleaseRefused && a.Detail.Contains($"tried to release {suspendedSession}, a containment of its own", StringComparison.Ordinal));

        // Nor does an administrator (the insider pair the canary rule closes): another officer, or the operator, does.
        using (var admin = await StaffClient.SignedInAsync(_server.BaseAddress, Establishment, "admin@journal.example", Password, _adminSecret, _time))
        {
            var (refused, problem) = await ReleaseAsync(admin, suspendedSession);
            Assert.True(refused == HttpStatusCode.Forbidden, refused + problem);
            Assert.Contains("released by another security officer, or by the operator at the server", problem, StringComparison.Ordinal);
        }
        Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
        using (var second = await StaffClient.SignedInAsync(_server.BaseAddress, Establishment, "officer2@journal.example", Password, _secondSecret, _time))
        {
            var (released, body) = await ReleaseAsync(second, suspendedSession);
            Assert.True(released == HttpStatusCode.OK, released + body);
        }
        Assert.Empty(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
    }

    [Fact]
    public async Task At_the_console_the_access_history_asks_for_both_factors_at_the_officers_level_and_keeps_the_patient_id_typed()
    {
        using var officer = await OfficerAsync();
        for (var i = 0; i < StepUp - 1; i++)
        {
            var (shown, html) = await officer.SubmitAsync("/security/access", new Dictionary<string, string> { ["PatientId"] = _patients[i] });
            Assert.Equal(HttpStatusCode.OK, shown.StatusCode);
            Assert.NotNull(StaffClient.ById(html, "history"));
        }
        var (asked, _) = await officer.SubmitAsync("/security/access", new Dictionary<string, string> { ["PatientId"] = _patients[StepUp - 1] });
        Assert.Equal(HttpStatusCode.Redirect, asked.StatusCode);
        Assert.Equal("/account/reauth?returnUrl=%2Fsecurity%2Faccess", asked.Headers.Location?.ToString());
        await ReauthenticateAsync(officer, "/security/access");
        var (back, form) = await officer.GetAsync("/security/access");
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        Assert.Equal(_patients[StepUp - 1], StaffClient.FieldValue(form, "PatientId"));
        var (answered, history) = await officer.SubmitAsync("/security/access", new Dictionary<string, string> { ["PatientId"] = _patients[StepUp - 1] });
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.NotNull(StaffClient.ById(history, "history"));
    }

    [Fact]
    public async Task A_patients_access_history_longer_than_a_page_is_weighed_whole_and_held_none_of_it_is_on_the_chain_as_read()
    {
        // A history of more than a page (1,000 entries), past the officer's step-up level for search results only once its second
        // page is counted: read page by page, its first page was admitted and put on the chain as read, its second held.
        var patient = _patients[0];
        await Task.WhenAll(Enumerable.Range(0, AuditLog.MaxPage + 10).Select(_ => _server.Store.Audit.AppendAsync(AccessContext.Operator(_tenant, "test"),
            AuditAction.Read, AuditOutcome.Success, "Patient", [new AuditedRecord("Patient", patient, patient)], None)));
        var total = (await _server.Store.AuditLog.SearchPageAsync(AccessContext.Operator(_tenant, "test"), new AuditQuery { Patient = patient, Count = 0 }, None))!.Total;
        Assert.True(total > SearchRecordsStepUp, $"{total} entries");

        var history = await Vauban.Web.PatientAccessHistory.ReadAsync(_server.Store, await OfficerContextAsync(), patient, 2 * AuditLog.MaxPage, None);

        // The refusal, and not a line: the console sends her to prove both factors again, the whole history asked again after.
        Assert.Equal(GuardVerdict.StepUp, history!.Held?.Verdict);
        Assert.Empty(history.Lines);
        // On the chain: none of it as read by her, every entry of it as withheld.
        Assert.Empty(await _server.AuditEntriesOfAsync(_tenant, OfficerEmail, AuditAction.AuditRead));
        var withheld = await _server.AuditEntriesOfAsync(_tenant, OfficerEmail, AuditAction.Containment);
        Assert.All(withheld, e => Assert.Equal(patient, e.Detail.Patient));
        Assert.Equal(total, withheld.SelectMany(e => e.Detail.Records).Distinct().Count());
    }

    [Fact]
    public async Task A_search_of_the_log_the_guard_holds_throws_its_refusal_instead_of_saying_nothing_was_found()
    {
        // Every entry so far: the creations of 10 patients, beyond her suspension level of 8 in an hour.
        var officer = await OfficerContextAsync();
        var held = await Assert.ThrowsAsync<AuditLogHeldException>(() => _server.Store.AuditLog.SearchAsync(officer, new AuditQuery { Count = 100 }, None));
        Assert.Equal(GuardVerdict.Suspended, held.Decision?.Verdict);
        Assert.StartsWith("The guard held this search of the audit log (Suspended).", held.Message, StringComparison.Ordinal);
        // What it withheld is on the chain as such, as for a page or an entry held.
        var withheld = await _server.AuditEntriesOfAsync(_tenant, OfficerEmail, AuditAction.Containment);
        Assert.All(_patients, p => Assert.Contains(withheld, e => e.Detail.Patient == p));
    }

    [Fact]
    public async Task A_breach_scope_the_guard_holds_from_an_officer_fails_saying_so_rather_than_reporting_no_one()
    {
        // The operator's acts (the creations of 10 patients), investigated by the officer rather than at the server: a page of
        // them is beyond her suspension level. Ignored, the held page was an empty one — "no such principal", or no patient.
        var log = await Vauban.Breach.BreachInvestigation.CheckLogAsync(_server.Store, _tenant, None);
        var officer = await OfficerContextAsync();
        var held = await Assert.ThrowsAsync<AuditLogHeldException>(() =>
            Vauban.Breach.BreachInvestigation.ScopeAsync(_server.Store, officer, "cli:" + Environment.UserName, null, null, log, None));
        Assert.Equal(GuardVerdict.Suspended, held.Decision?.Verdict);
        Assert.Equal("The breach scope was withheld by the guard (Suspended): no partial scope is given. `vauban breach` computes it at the server.", held.Message);
    }
}

public sealed class AuditLogGuardTests_Sqlite() : AuditLogGuardTests(Engine.Sqlite);

public sealed class AuditLogGuardTests_Postgres() : AuditLogGuardTests(Engine.Postgres);
