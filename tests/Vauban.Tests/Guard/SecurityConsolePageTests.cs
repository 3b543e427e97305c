// The security officer's console pages (/security, /security/access) over HTTP, on both engines: the alert a guard
// containment raised, acknowledged and the contained account released through posted forms (the same Core acts and audit
// as the JSON API); other roles turned away on the chain; a forged or stale form changing nothing; and a patient's access
// history, itself audited, asked for by record id or by NIR (a wrong key refused, a duplicate listed to choose), and a hostile
// staff name shown as text.
using System.Net;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public abstract class SecurityConsolePageTests(SecurityConsoleServer shared) : IAsyncLifetime
{
    // One server for the class (SecurityConsoleServer), each test in an establishment of its own: alerts, containments and
    // accounts are an establishment's.
    private string Establishment { get; } = SharedServer.EstablishmentName("chu-console");
    private const string Password = "lantern orchard beneath 7 tides";
    private const string Officer = "officer@chu.example", Desk = "desk@chu.example", Doctor = "dr.auber@chu.example", Admin = "admin@chu.example";
    private readonly ManualTime _time = shared.Time;
    private readonly VaubanServer _server = shared.Server;
    private Tenant _tenant = null!;
    private readonly Dictionary<string, string> _secrets = [];
    private string _doctor = "", _mine = "", _canary = "";

    public async Task InitializeAsync()
    {
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        _doctor = await _server.CreateAsOperatorAsync(_tenant, Samples.Practitioner(family: "Auber"));
        _mine = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Chartier", given: "Louise", nir: Samples.ValidNir("2710644109001"), gp: "Practitioner/" + _doctor));
        _canary = (await _server.Store.Guard.AddCanariesAsync(_server.Store.Records, _tenant, 1, CancellationToken.None))[0];
        await EnrolAsync(Officer, StaffRole.SecurityOfficer, null, "Odile Sécurité");
        await EnrolAsync(Desk, StaffRole.Secretary, null, "Denise Accueil");
        await EnrolAsync(Doctor, StaffRole.Physician, _doctor, "Dr Claire Auber");
        await EnrolAsync(Admin, StaffRole.Administrator, null, "Adam Admin");
    }

    private async Task EnrolAsync(string email, StaffRole role, string? practitioner, string name)
    {
        var link = await _server.Store.Accounts.AddAsync(_tenant, email, role, practitioner, null, name, CancellationToken.None);
        using var browser = new StaffClient(_server.BaseAddress);
        (_secrets[email], _) = await browser.EnrolWithTotpAsync(link.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private Task<StaffClient> SignedInAsync(string email) => StaffClient.SignedInAsync(_server.BaseAddress, Establishment, email, Password, _secrets[email], _time);

    /// <summary>A desk session reads the canary patient: the guard contains it at once and tells the officer.</summary>
    private async Task<SecurityAlert> CanaryReadByTheDeskAsync()
    {
        using (var desk = await SignedInAsync(Desk))
        using (var read = await desk.Http.GetAsync($"/fhir/Patient/{_canary}"))
        {
            Assert.Equal((HttpStatusCode)423, read.StatusCode);
        }
        return Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.GuardCanary);
    }

    private async Task<string> DeskPrincipalAsync() => (await _server.Store.Accounts.FindAsync(_tenant, Desk, CancellationToken.None))!.PrincipalId;

    private Task<IReadOnlyList<SecurityAlert>> UnacknowledgedAsync() => _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None);

    private Task<IReadOnlyList<Vauban.Guard.Containment>> ContainedAsync() => _server.Store.Guard.ContainmentsAsync(_tenant.Id, CancellationToken.None);

    private static string Number(SecurityAlert alert) => alert.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Posts one of the console's acts ("acknowledge", "release", "approve", "deny") with one field, with the
    /// antiforgery token of a page this person may open (the sign-out form of any page has one) unless told not to.</summary>
    private static Task<(HttpResponseMessage Response, string Html)> ActAsync(StaffClient who, string handler, string field, string value, bool withToken = true) =>
        who.SubmitAsync("/", new Dictionary<string, string> { [field] = value }, action: "/security?handler=" + handler, withToken: withToken);

    /// <summary>An act done answers with a redirect to <paramref name="page"/> (Post/Redirect/Get): the page then says what was
    /// done, once; shown again (a refresh), it says nothing and nothing is done again. Returns the page as first shown.</summary>
    private static async Task<string> DoneAsync(StaffClient who, HttpResponseMessage acted, string actedHtml, string page)
    {
        Assert.True(acted.StatusCode == HttpStatusCode.Redirect, actedHtml);
        Assert.Equal(page, acted.Headers.Location?.ToString());
        var (shown, html) = await who.GetAsync(page);
        Assert.True(shown.StatusCode == HttpStatusCode.OK, html);
        var (again, againHtml) = await who.GetAsync(page);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Null(StaffClient.ById(againHtml, "done"));
        return html;
    }

    /// <summary><paramref name="email"/> opens the chart of the patient the access history is read of.</summary>
    private async Task ChartOpenedByAsync(string email)
    {
        using var who = await SignedInAsync(email);
        var (chart, _) = await who.GetAsync($"/patients/{_mine}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
    }

    /// <summary>Posts the access history's form for <paramref name="patientId"/>.</summary>
    private static Task<(HttpResponseMessage Response, string Html)> AccessHistoryAsync(StaffClient who, string patientId) =>
        who.SubmitAsync("/", new Dictionary<string, string> { ["PatientId"] = patientId }, action: "/security/access");

    [Fact]
    public async Task An_administrator_cannot_take_a_canarys_alert_off_the_officers_console()
    {
        // The canaries are the officer's: an administrator who acknowledged a canary's alert (and released the account it locked)
        // left nothing of the incident on her console (a black-box probe).
        var alert = await CanaryReadByTheDeskAsync();
        using (var admin = await SignedInAsync(Admin))
        {
            var (refused, html) = await ActAsync(admin, "acknowledge", "alerts", Number(alert));
            Assert.True(refused.StatusCode == HttpStatusCode.NotFound, refused.StatusCode + html);
            Assert.Contains("A canary's alert is the security officer's to acknowledge", WebUtility.HtmlDecode(html), StringComparison.Ordinal);
        }
        Assert.Contains(await UnacknowledgedAsync(), a => a.Id == alert.Id);
        using var officer = await SignedInAsync(Officer);
        var (acknowledged, _) = await ActAsync(officer, "acknowledge", "alerts", Number(alert));
        Assert.Equal(HttpStatusCode.Redirect, acknowledged.StatusCode);
        Assert.DoesNotContain(await UnacknowledgedAsync(), a => a.Id == alert.Id);
    }

    [Fact]
    public async Task An_insider_administrator_cannot_release_the_account_a_canary_locked_at_the_console_and_is_told_why_while_the_officer_can()
    {
        // The account a canary locked was the administrator's to release, so an insider (or a stolen administrator's account) could
        // free an accomplice before the officer had looked (a black-box probe). With it, one of the desk's sessions the guard had
        // suspended for its volume: released alone it is the administrator's, but a release of the account covers both.
        await CanaryReadByTheDeskAsync();
        var desk = await DeskPrincipalAsync();
        await _server.ExecuteSqlAsync("INSERT INTO guard_containments (tenant_id, principal, account, level, cause, reason, contained_at) VALUES "
            + $"({_tenant.Id}, 'session:s-desk-earlier', '{desk}', 'suspended', 'volume', 'distinct patients in a minute', {_time.GetUtcNow().ToUnixTimeMilliseconds()})");
        using (var admin = await SignedInAsync(Admin))
        {
            var (_, html) = await admin.GetAsync("/security");
            Assert.Contains("<td data-cause=\"canary\">canary</td>", html, StringComparison.Ordinal);
            Assert.Contains("<td data-cause=\"volume\">volume</td>", html, StringComparison.Ordinal);
            // No button where it would be refused; the page says whose it is. The session's is there.
            Assert.DoesNotContain($"name=\"principal\" value=\"{desk}\"", html, StringComparison.Ordinal);
            Assert.Contains($"data-held-for-officer=\"{desk}\">Caused by a canary: the security officer's to release.", WebUtility.HtmlDecode(html), StringComparison.Ordinal);
            Assert.Contains("name=\"principal\" value=\"session:s-desk-earlier\"", html, StringComparison.Ordinal);

            // The form posted all the same: refused whole, and said why.
            var (refused, refusedHtml) = await ActAsync(admin, "release", "principal", desk);
            Assert.True(refused.StatusCode == HttpStatusCode.Forbidden, refused.StatusCode + refusedHtml);
            Assert.Equal("A canary's containment is the security officer's to release: 1 of the 2 containments this release covers were caused by a canary "
                + "patient, so none was released; they stay in force until she has reviewed them. (Nothing was changed.)", StaffClient.ById(refusedHtml, "error"));
        }
        // Nothing changed: both held, the account locked, its sign-in refused; the attempt is on the chain as a refusal.
        Assert.Equal(2, (await ContainedAsync()).Count(c => c.Account == desk));
        Assert.Contains(await _server.Store.Accounts.LockedAsync(_tenant, CancellationToken.None), u => u.PrincipalId == desk);
        using (var thief = new StaffClient(_server.BaseAddress))
        {
            var (signIn, _) = await thief.PasswordAsync(Establishment, Desk, Password);
            Assert.NotEqual("/account/signin/totp", signIn.Headers.Location?.ToString());
        }
        var attempt = Assert.Single(await _server.AuditEntriesOfAsync(_tenant, Admin, AuditAction.Administration), e => e.Detail.Records.Contains("principal:" + desk));
        Assert.Equal(AuditOutcome.MinorFailure, attempt.Outcome);
        Assert.Equal("guard release refused: a canary's containment is the security officer's to release (1 of 2)", attempt.Detail.Note);

        using var officer = await SignedInAsync(Officer);
        var (_, officerHtml) = await officer.GetAsync("/security");
        Assert.Contains($"name=\"principal\" value=\"{desk}\"", officerHtml, StringComparison.Ordinal);
        Assert.DoesNotContain("data-held-for-officer", officerHtml, StringComparison.Ordinal);
        var (released, releasePosted) = await ActAsync(officer, "release", "principal", desk);
        Assert.Equal($"{desk} released (2 containments).", StaffClient.ById(await DoneAsync(officer, released, releasePosted, "/security"), "done"));
        Assert.DoesNotContain(await ContainedAsync(), c => c.Account == desk);
        using (await SignedInAsync(Desk)) { } // unlocked
    }

    [Fact]
    public async Task The_console_lists_the_locked_accounts_whatever_locked_them_and_says_how_each_is_unlocked()
    {
        // Failed sign-ins and an administrator's lock are no containment of the guard: such accounts were on no list of the
        // console (a probe locked two; `vauban users list` alone showed them).
        await CanaryReadByTheDeskAsync(); // the guard locks the desk
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, Doctor, CancellationToken.None));
        using var officer = await SignedInAsync(Officer);
        var (_, html) = await officer.GetAsync("/security");
        var locked = html[html.IndexOf("id=\"locked\"", StringComparison.Ordinal)..html.IndexOf("id=\"exports-heading\"", StringComparison.Ordinal)];
        var rows = locked.Split("<tr>").Skip(2).ToList();
        Assert.Equal(2, rows.Count);
        var doctorRow = Assert.Single(rows, r => r.Contains(Doctor, StringComparison.Ordinal));
        Assert.Contains("Dr Claire Auber (physician)", doctorRow, StringComparison.Ordinal);
        var doctorId = (await _server.Store.Accounts.FindAsync(_tenant, Doctor, CancellationToken.None))!.PrincipalId;
        Assert.Contains($"name=\"account\" value=\"{doctorId}\"", doctorRow, StringComparison.Ordinal); // an Unlock button, not a command line
        Assert.DoesNotContain("vauban users unlock", doctorRow, StringComparison.Ordinal);
        var deskRow = Assert.Single(rows, r => r.Contains(Desk, StringComparison.Ordinal));
        Assert.Contains("Locked by the guard: release it above.", deskRow, StringComparison.Ordinal);
        Assert.DoesNotContain("name=\"account\"", deskRow, StringComparison.Ordinal);
        // The list, read, is on the chain as the console's other lists are.
        var officerId = (await _server.Store.Accounts.FindAsync(_tenant, Officer, CancellationToken.None))!.PrincipalId;
        var reads = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "test"), new Vauban.Audit.AuditQuery { Agent = officerId, Count = 100 }, CancellationToken.None);
        Assert.Contains(reads!, e => e.Detail.Records.Contains("console:GET /security (locked accounts)") && e.Detail.Note == "guard console read (2 listed)");
    }

    [Fact]
    public async Task The_officer_unlocks_an_account_at_the_console_with_fresh_factors_on_the_chain_but_not_one_the_guard_holds()
    {
        await CanaryReadByTheDeskAsync(); // the guard locks the desk: a release, not an unlock
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, Doctor, CancellationToken.None));
        var doctorId = (await _server.Store.Accounts.FindAsync(_tenant, Doctor, CancellationToken.None))!.PrincipalId;
        var desk = await DeskPrincipalAsync();
        using var officer = await SignedInAsync(Officer);

        // Both factors proven more than 5 minutes ago: through the re-authentication first, nothing unlocked.
        _time.Advance(TimeSpan.FromMinutes(6));
        var (stale, _) = await ActAsync(officer, "unlock", "account", doctorId);
        Assert.Equal("/account/reauth?returnUrl=%2Fsecurity", stale.Headers.Location?.ToString());
        Assert.Contains(await _server.Store.Accounts.LockedAsync(_tenant, CancellationToken.None), u => u.PrincipalId == doctorId);
        var (reauth, _) = await officer.SubmitAsync("/account/reauth?returnUrl=%2Fsecurity",
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secrets[Officer], _time), ["ReturnUrl"] = "/security" });
        Assert.Equal("/security", reauth.Headers.Location?.ToString());

        // An account the guard holds is not unlocked behind the guard's back; an account not locked is refused too.
        var (held, heldHtml) = await ActAsync(officer, "unlock", "account", desk);
        Assert.True(held.StatusCode == HttpStatusCode.Conflict, held.StatusCode + heldHtml);
        Assert.Contains("Held by the guard", StaffClient.ById(heldHtml, "error"), StringComparison.Ordinal);
        var (notLocked, _) = await ActAsync(officer, "unlock", "account", (await _server.Store.Accounts.FindAsync(_tenant, Admin, CancellationToken.None))!.PrincipalId);
        Assert.Equal(HttpStatusCode.NotFound, notLocked.StatusCode);

        var (unlocked, posted) = await ActAsync(officer, "unlock", "account", doctorId);
        Assert.StartsWith("Dr Claire Auber (dr.auber@chu.example) unlocked", StaffClient.ById(await DoneAsync(officer, unlocked, posted, "/security"), "done"), StringComparison.Ordinal);
        Assert.DoesNotContain(await _server.Store.Accounts.LockedAsync(_tenant, CancellationToken.None), u => u.PrincipalId == doctorId);
        Assert.Contains(await _server.Store.Accounts.LockedAsync(_tenant, CancellationToken.None), u => u.PrincipalId == desk);
        using (await SignedInAsync(Doctor)) { } // signs in again
        var act = Assert.Single(await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.Administration), e => e.Detail.Note == "users unlock");
        Assert.Contains("account:" + doctorId, act.Detail.Records);
    }

    [Fact]
    public async Task The_officer_sees_the_alert_a_containment_raised_acknowledges_it_and_releases_the_contained_account()
    {
        var alert = await CanaryReadByTheDeskAsync();
        var desk = await DeskPrincipalAsync();
        using var officer = await SignedInAsync(Officer);
        var (_, homeHtml) = await officer.GetAsync("/");
        Assert.Contains("href=\"/security\" id=\"nav-security\"", homeHtml, StringComparison.Ordinal);
        Assert.Contains("id=\"security-console\"", homeHtml, StringComparison.Ordinal);

        var (console, html) = await officer.GetAsync("/security");
        Assert.True(console.StatusCode == HttpStatusCode.OK, html + _server.AllLogs());
        Assert.Contains($"name=\"alerts\" value=\"{alert.Id}\"", html, StringComparison.Ordinal);
        Assert.Contains("<td data-kind=\"guard-canary\">Canary patient read</td>", html, StringComparison.Ordinal);
        Assert.Contains("canary Patient/" + _canary, html, StringComparison.Ordinal); // the officer is told which canary
        Assert.Contains("; refused, nothing of it was returned.", html, StringComparison.Ordinal); // and that it was contained before anything left
        Assert.Contains($"name=\"principal\" value=\"{desk}\"", html, StringComparison.Ordinal);
        // Principals are named, not only listed by id: the alert's and the containment's, the desk's account.
        Assert.Equal(2, html.Split("Denise Accueil (secretary)<br> <code>user:").Length - 1);

        var (acknowledged, ackPosted) = await ActAsync(officer, "acknowledge", "alerts", Number(alert));
        var ackHtml = await DoneAsync(officer, acknowledged, ackPosted, "/security");
        Assert.Equal("1 alert acknowledged.", StaffClient.ById(ackHtml, "done"));
        Assert.DoesNotContain($"name=\"alerts\" value=\"{alert.Id}\"", ackHtml, StringComparison.Ordinal);
        Assert.DoesNotContain(await UnacknowledgedAsync(), a => a.Id == alert.Id);

        var (released, releasePosted) = await ActAsync(officer, "release", "principal", desk);
        var releaseHtml = await DoneAsync(officer, released, releasePosted, "/security");
        Assert.StartsWith($"{desk} released", StaffClient.ById(releaseHtml, "done"), StringComparison.Ordinal);
        Assert.DoesNotContain(await ContainedAsync(), c => c.Principal == desk || c.Account == desk);
        using (await SignedInAsync(Desk)) { } // the account is unlocked: the desk signs in again

        // Both acts are the officer's on the chain, as through the JSON API; so are the lists the pages showed.
        var entries = await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.Administration);
        var acknowledgement = Assert.Single(entries, e => e.Detail.Note == "guard alerts acknowledged (1)");
        Assert.Contains("alerts:" + alert.Id, acknowledgement.Detail.Records);
        Assert.Equal(KnownPurposes.SystemAdministration, acknowledgement.Detail.Purpose);
        Assert.Single(entries, e => e.Detail.Note == "guard release" && e.Detail.Records.Contains("principal:" + desk));
        Assert.Contains(entries, e => e.Detail.Records.Contains("console:GET /security (alerts)") && e.Detail.Note == "guard console read (1 listed)");
        Assert.Contains(entries, e => e.Detail.Records.Contains("console:GET /security (contained)"));
        Assert.Contains(entries, e => e.Detail.Records.Contains("console:GET /security (exports)"));
    }

    [Fact]
    public async Task The_officer_reads_break_the_glass_explanations_on_a_page_and_the_administrator_is_refused_on_the_chain()
    {
        var stranger = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Inconnu", nir: Samples.ValidNir("1850344109003")));
        var doctor = (await _server.Store.Accounts.FindAsync(_tenant, Doctor, CancellationToken.None))!;
        var physician = new AccessContext(new Principal(PrincipalKind.Person, doctor.PrincipalId, "Dr Claire Auber", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, SessionId = "s-glass", AuthenticatedAt = _time.GetUtcNow(),
        }, _tenant, "TREAT");
        Assert.Equal(BreakGlassStatus.Granted, (await _server.Store.BreakTheGlass.OpenAsync(physician, stranger, KnownBreakGlassReasons.Other,
            "Appel du SAMU, patient <b>inconscient</b> au déchocage", CancellationToken.None)).Status);

        using (var officer = await SignedInAsync(Officer))
        {
            var (_, consoleHtml) = await officer.GetAsync("/security");
            Assert.Contains("href=\"/security/grants\"", consoleHtml, StringComparison.Ordinal);
            // The alert in the officer's words: its kind by name, the explanation one link away, no command line or API as its text.
            var alertRow = consoleHtml.Split("<tr data-alert=").Single(r => r.Contains("broke the glass", StringComparison.Ordinal));
            Assert.Contains(">Break-the-glass access</td>", alertRow, StringComparison.Ordinal);
            Assert.Contains("<a href=\"/security/grants\" class=\"act\">Read the explanation they stated</a>", alertRow, StringComparison.Ordinal);
            Assert.DoesNotContain("vauban guard", alertRow, StringComparison.Ordinal);
            Assert.DoesNotContain("/admin/guard", alertRow, StringComparison.Ordinal);
            // The stored alert still tells the command line and the API where the explanation is (`vauban guard alerts` shows it).
            var stored = Assert.Single(await UnacknowledgedAsync(), a => a.Kind == KnownAlertKinds.BreakTheGlass);
            Assert.EndsWith(BreakTheGlass.GrantExplanationWhere, stored.Detail, StringComparison.Ordinal);
            var (page, html) = await officer.GetAsync("/security/grants");
            Assert.True(page.StatusCode == HttpStatusCode.OK, html);
            Assert.Contains("Dr Claire Auber (physician)<br> <code>" + doctor.PrincipalId, html, StringComparison.Ordinal);
            Assert.Contains("<code>Patient/" + stranger + "</code>", html, StringComparison.Ordinal);
            Assert.Contains(KnownBreakGlassReasons.Labels[KnownBreakGlassReasons.Other], html, StringComparison.Ordinal);
            // The explanation is text, never markup.
            Assert.Contains("Appel du SAMU, patient &lt;b&gt;inconscient&lt;/b&gt; au déchocage", html, StringComparison.Ordinal);
            Assert.Contains("(active)", html, StringComparison.Ordinal);
        }
        var entries = await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.Administration);
        Assert.Contains(entries, e => e.Detail.Records.Contains("console:GET /security/grants") && e.Detail.Note == "guard console read (1 listed)");

        using var admin = await SignedInAsync(Admin);
        var (refused, refusedHtml) = await admin.GetAsync("/security/grants");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.DoesNotContain("SAMU", refusedHtml, StringComparison.Ordinal);
        var adminEntries = await _server.AuditEntriesOfAsync(_tenant, Admin, AuditAction.Administration);
        Assert.Contains(adminEntries, e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Records.Contains("console:GET /security/grants"));
        using var desk = await SignedInAsync(Desk);
        var (deskRefused, _) = await desk.GetAsync("/security/grants");
        Assert.Equal(HttpStatusCode.Forbidden, deskRefused.StatusCode);
    }

    [Fact]
    public async Task The_officer_lists_and_adds_canary_patients_on_a_page_and_no_one_else_learns_them()
    {
        using (var officer = await SignedInAsync(Officer))
        {
            var (page, html) = await officer.GetAsync("/security/canaries");
            Assert.True(page.StatusCode == HttpStatusCode.OK, html);
            Assert.Contains("<code>Patient/" + _canary + "</code>", html, StringComparison.Ordinal);

            foreach (var bad in new[] { "0", "101", "two", "" })
            {
                var (refused, refusedHtml) = await officer.SubmitAsync("/security/canaries", new Dictionary<string, string> { ["Count"] = bad });
                Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
                Assert.Contains("between 1 and 100", StaffClient.ById(refusedHtml, "error"), StringComparison.Ordinal);
            }
            Assert.Single(await _server.Store.Guard.CanariesAsync(_tenant.Id, CancellationToken.None));

            var (added, addedPosted) = await officer.SubmitAsync("/security/canaries", new Dictionary<string, string> { ["Count"] = "2" });
            var addedHtml = await DoneAsync(officer, added, addedPosted, "/security/canaries");
            Assert.Equal("2 canary patients added.", StaffClient.ById(addedHtml, "done"));
            var canaries = await _server.Store.Guard.CanariesAsync(_tenant.Id, CancellationToken.None);
            Assert.Equal(3, canaries.Count);
            Assert.All(canaries, c => Assert.Contains("<code>Patient/" + c.Patient + "</code>", addedHtml, StringComparison.Ordinal));
        }
        var entries = await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.Administration);
        Assert.Contains(entries, e => e.Detail.Records.Contains("console:GET /security/canaries") && e.Detail.Note == "guard console read (1 listed)");

        // An administrator who knew the canaries could avoid them: refused, on the chain, and shown none.
        using var admin = await SignedInAsync(Admin);
        var (adminPage, adminHtml) = await admin.GetAsync("/security/canaries");
        Assert.Equal(HttpStatusCode.Forbidden, adminPage.StatusCode);
        Assert.DoesNotContain(_canary, adminHtml, StringComparison.Ordinal);
        var (adminAdd, _) = await admin.SubmitAsync("/", new Dictionary<string, string> { ["Count"] = "1" }, action: "/security/canaries");
        Assert.Equal(HttpStatusCode.Forbidden, adminAdd.StatusCode);
        Assert.Equal(3, (await _server.Store.Guard.CanariesAsync(_tenant.Id, CancellationToken.None)).Count);
        var adminEntries = await _server.AuditEntriesOfAsync(_tenant, Admin, AuditAction.Administration);
        Assert.Contains(adminEntries, e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Records.Contains("console:POST /security/canaries"));
    }

    [Fact]
    public async Task Opening_the_canary_list_refused_says_why_without_speaking_of_a_change_no_one_asked_for()
    {
        using var admin = await SignedInAsync(Admin);
        var (page, html) = await admin.GetAsync("/security/canaries");
        Assert.Equal(HttpStatusCode.Forbidden, page.StatusCode);
        Assert.Equal("Only the security officer knows the canary patients: anyone who knew them could avoid them.", StaffClient.ById(html, "error"));
        var (add, addHtml) = await admin.SubmitAsync("/", new Dictionary<string, string> { ["Count"] = "1" }, action: "/security/canaries");
        Assert.Equal(HttpStatusCode.Forbidden, add.StatusCode);
        Assert.EndsWith("(Nothing was changed.)", StaffClient.ById(addHtml, "error"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_act_says_why_and_changes_nothing()
    {
        var alert = await CanaryReadByTheDeskAsync();
        using var officer = await SignedInAsync(Officer);
        var (unknown, html) = await ActAsync(officer, "acknowledge", "alerts", "999999");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("None of these is an unacknowledged alert of your establishment.", StaffClient.ById(html, "error"), StringComparison.Ordinal);
        var (notContained, notContainedHtml) = await ActAsync(officer, "release", "principal", "user:nobody");
        Assert.Equal(HttpStatusCode.NotFound, notContained.StatusCode);
        Assert.Contains("This principal is not contained in your establishment.", StaffClient.ById(notContainedHtml, "error"), StringComparison.Ordinal);
        var (bad, badHtml) = await ActAsync(officer, "acknowledge", "alerts", "1; DROP TABLE security_alerts");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.NotNull(StaffClient.ById(badHtml, "error"));
        var (export, exportHtml) = await ActAsync(officer, "approve", "export", "abcdefghijklmnopqrstuv");
        Assert.Equal(HttpStatusCode.NotFound, export.StatusCode);
        Assert.Contains("No export of your establishment awaits approval", exportHtml, StringComparison.Ordinal);
        Assert.Contains(await UnacknowledgedAsync(), a => a.Id == alert.Id);
        var desk = await DeskPrincipalAsync();
        Assert.Contains(await ContainedAsync(), c => c.Account == desk);
    }

    [Fact]
    public async Task Other_roles_are_refused_the_console_with_403_and_each_attempt_is_on_the_audit_chain()
    {
        await CanaryReadByTheDeskAsync();
        var desk = await DeskPrincipalAsync();
        using (var doctor = await SignedInAsync(Doctor))
        {
            var (_, homeHtml) = await doctor.GetAsync("/");
            Assert.DoesNotContain("nav-security", homeHtml, StringComparison.Ordinal);
            var (refused, html) = await doctor.GetAsync("/security");
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("Only the security officer or an administrator may use the guard's console.", StaffClient.ById(html, "refusal"));
            Assert.DoesNotContain("guard-canary", html, StringComparison.Ordinal);
            // A forged release: the form's token is valid (the page's sign-out form has one), the role is not.
            var (release, _) = await ActAsync(doctor, "release", "principal", desk);
            Assert.Equal(HttpStatusCode.Forbidden, release.StatusCode);
            var (history, _) = await AccessHistoryAsync(doctor, _mine);
            Assert.Equal(HttpStatusCode.Forbidden, history.StatusCode);
        }
        Assert.Contains(await ContainedAsync(), c => c.Account == desk); // still contained
        var attempts = (await _server.AuditEntriesOfAsync(_tenant, Doctor, AuditAction.Administration))
            .Where(e => e.Detail.Note == "guard console refused: only the security officer or an administrator").ToList();
        Assert.All(attempts, e => Assert.Equal(AuditOutcome.MinorFailure, e.Outcome));
        Assert.Contains(attempts, e => e.Detail.Records.Contains("console:GET /security"));
        Assert.Contains(attempts, e => e.Detail.Records.Contains("console:POST /security?handler=release"));
        Assert.Contains(attempts, e => e.Detail.Records.Contains("console:POST /security/access"));
    }

    [Fact]
    public async Task An_administrator_uses_the_console_without_learning_which_patient_is_a_canary()
    {
        await CanaryReadByTheDeskAsync();
        using var administrator = await SignedInAsync(Admin);
        var (console, html) = await administrator.GetAsync("/security");
        Assert.Equal(HttpStatusCode.OK, console.StatusCode);
        Assert.Contains("guard-canary", html, StringComparison.Ordinal);
        Assert.Contains("canary patient (named to the security officer)", html, StringComparison.Ordinal);
        Assert.DoesNotContain(_canary, html, StringComparison.Ordinal);
        Assert.DoesNotContain("href=\"/security/access\"", html, StringComparison.Ordinal); // the audit log is the officer's
    }

    [Fact]
    public async Task A_contained_officer_gets_423_and_cannot_release_itself()
    {
        using var officer = await SignedInAsync(Officer);
        var officerId = (await _server.Store.Accounts.FindAsync(_tenant, Officer, CancellationToken.None))!.PrincipalId;
        // The guard locked the officer's account (as after a stolen session read beyond its bounds twice); the running server
        // learns it at its next re-read of the containments.
        await _server.ExecuteSqlAsync($"INSERT INTO guard_containments (tenant_id, principal, account, level, reason, contained_at) VALUES ({_tenant.Id}, '{officerId}', '{officerId}', 'locked', 'test', {_time.GetUtcNow().ToUnixTimeMilliseconds()})");
        _time.Advance(TimeSpan.FromSeconds(3));
        var (console, html) = await officer.GetAsync("/security");
        Assert.Equal((HttpStatusCode)423, console.StatusCode);
        Assert.NotNull(StaffClient.ById(html, "refusal"));
        var (release, _) = await ActAsync(officer, "release", "principal", officerId);
        Assert.Equal((HttpStatusCode)423, release.StatusCode);
        Assert.Contains(await ContainedAsync(), c => c.Principal == officerId); // still contained
        Assert.Contains(await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.Administration),
            e => e.Detail.Note == "guard console refused: contained by the guard" && e.Detail.Records.Contains("console:POST /security?handler=release"));
    }

    [Fact]
    public async Task Without_the_antiforgery_token_an_act_is_refused_and_changes_nothing()
    {
        var alert = await CanaryReadByTheDeskAsync();
        using var officer = await SignedInAsync(Officer);
        var (forged, _) = await ActAsync(officer, "acknowledge", "alerts", Number(alert), withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        var (forgedRelease, _) = await ActAsync(officer, "release", "principal", await DeskPrincipalAsync(), withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, forgedRelease.StatusCode);
        Assert.Contains(await UnacknowledgedAsync(), a => a.Id == alert.Id);
        Assert.NotEmpty(await ContainedAsync());
    }

    [Fact]
    public async Task With_both_factors_proven_more_than_five_minutes_ago_an_act_goes_through_reauthentication_first()
    {
        var alert = await CanaryReadByTheDeskAsync();
        using var officer = await SignedInAsync(Officer);
        var id = Number(alert);
        _time.Advance(TimeSpan.FromMinutes(6));
        var (stale, _) = await ActAsync(officer, "acknowledge", "alerts", id);
        Assert.Equal(HttpStatusCode.Redirect, stale.StatusCode);
        Assert.Equal("/account/reauth?returnUrl=%2Fsecurity", stale.Headers.Location?.ToString());
        var (staleRelease, _) = await ActAsync(officer, "release", "principal", await DeskPrincipalAsync());
        Assert.Equal("/account/reauth?returnUrl=%2Fsecurity", staleRelease.Headers.Location?.ToString());
        Assert.Contains(await UnacknowledgedAsync(), a => a.Id == alert.Id);
        Assert.NotEmpty(await ContainedAsync());

        var (reauth, _) = await officer.SubmitAsync("/account/reauth?returnUrl=%2Fsecurity",
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secrets[Officer], _time), ["ReturnUrl"] = "/security" });
        Assert.Equal("/security", reauth.Headers.Location?.ToString());
        // Back on the console, the alert she had ticked is ticked again, and the page says so (it came back unticked, unsaid).
        var (back, backHtml) = await officer.GetAsync("/security");
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        Assert.Contains($"value=\"{id}\" id=\"alert-{id}\" checked=\"checked\"", backHtml, StringComparison.Ordinal);
        Assert.NotNull(StaffClient.ById(backHtml, "ticked-again"));
        Assert.Contains(await UnacknowledgedAsync(), a => a.Id == alert.Id); // a GET acknowledges nothing
        var (_, againHtml) = await officer.GetAsync("/security");
        Assert.DoesNotContain("checked=\"checked\"", againHtml, StringComparison.Ordinal); // given back once
        var (done, posted) = await ActAsync(officer, "acknowledge", "alerts", id);
        Assert.Equal("1 alert acknowledged.", StaffClient.ById(await DoneAsync(officer, done, posted, "/security"), "done"));
        Assert.DoesNotContain(await UnacknowledgedAsync(), a => a.Id == alert.Id);
    }

    [Fact]
    public async Task The_access_history_shows_a_physicians_chart_opening_and_the_viewing_is_itself_audited()
    {
        await ChartOpenedByAsync(Doctor);
        using var officer = await SignedInAsync(Officer);
        var (form, formHtml) = await officer.GetAsync("/security/access");
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        Assert.Contains("<label for=\"patient-id\">", formHtml, StringComparison.Ordinal);
        var (shown, html) = await AccessHistoryAsync(officer, _mine);
        Assert.True(shown.StatusCode == HttpStatusCode.OK, html + _server.AllLogs());
        var row = html.Split("<tr>").First(r => r.Contains("opened the whole record", StringComparison.Ordinal));
        Assert.Contains("<td>Dr Claire Auber</td><td>physician</td>", row, StringComparison.Ordinal);
        Assert.Contains("<td>treatment (TREAT)</td>", row, StringComparison.Ordinal);
        Assert.Contains("<td>done</td><td>127.0.0.1</td>", row, StringComparison.Ordinal);
        Assert.Contains("Odile Sécurité", html, StringComparison.Ordinal); // French letters as letters, not character references
        var title = html[html.IndexOf("<title>", StringComparison.Ordinal)..html.IndexOf("</title>", StringComparison.Ordinal)];
        Assert.DoesNotContain(_mine, title, StringComparison.Ordinal);

        // The officer's viewing is on the chain, as a FHIR AuditEvent search or `vauban audit patient` would be.
        var reads = await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.AuditRead);
        var viewing = Assert.Single(reads, e => e.Outcome == AuditOutcome.Success);
        Assert.Contains(viewing.Detail.Records, r => r.StartsWith("AuditEvent/", StringComparison.Ordinal));
        Assert.Equal(KnownPurposes.SystemAdministration, viewing.Detail.Purpose);

        // The administrator uses the console, but the audit log is the officer's: refused, and the refusal is on the chain.
        using var administrator = await SignedInAsync(Admin);
        var (console, _) = await administrator.GetAsync("/security");
        Assert.Equal(HttpStatusCode.OK, console.StatusCode);
        var (refused, refusedHtml) = await AccessHistoryAsync(administrator, _mine);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("The audit log is open to the security officer only.", StaffClient.ById(refusedHtml, "error"));
        Assert.DoesNotContain("Dr Claire Auber", refusedHtml, StringComparison.Ordinal);
        // Opening the page by its address is refused too: no form offers a look-up that would only be refused.
        var (page, pageHtml) = await administrator.GetAsync("/security/access");
        Assert.Equal(HttpStatusCode.Forbidden, page.StatusCode);
        Assert.DoesNotContain("access-form", pageHtml, StringComparison.Ordinal);
        var refusals = (await _server.AuditEntriesOfAsync(_tenant, Admin, AuditAction.Administration))
            .Where(e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note == "guard console refused: only the security officer").ToList();
        Assert.Contains(refusals, e => e.Detail.Records.Contains("console:GET /security/access"));
        Assert.Contains(refusals, e => e.Detail.Records.Contains("console:POST /security/access"));
    }

    private static readonly string MineNir = Samples.ValidNir("2710644109001");

    /// <summary>The officer's look-ups by NIR on the chain (the records service's search entries, in her name).</summary>
    private async Task<List<AuditEntry>> NirLookupsAsync() =>
        [.. (await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.Search)).Where(e => e.Detail.Note?.StartsWith(Vauban.Records.RecordsService.NirLookupNote, StringComparison.Ordinal) == true)];

    [Fact]
    public async Task The_officer_types_the_patients_NIR_and_sees_their_history_and_the_look_up_is_on_the_chain_and_on_the_patients_history()
    {
        // A patient asking for their access history gives their NIR, not the record's id: the officer no longer needs a clinician
        // to open the record to find it.
        await ChartOpenedByAsync(Doctor);
        using var officer = await SignedInAsync(Officer);
        var typed = string.Join(' ', MineNir[..1], MineNir[1..3], MineNir[3..5], MineNir[5..7], MineNir[7..10], MineNir[10..13], MineNir[13..]);
        var (shown, html) = await AccessHistoryAsync(officer, typed);
        Assert.True(shown.StatusCode == HttpStatusCode.OK, html);
        Assert.Equal($"Patient record {_mine}: ", StaffClient.ById(html, "history-heading")![..(_mine.Length + 17)]);
        // Each record touched by its kind in words and its id (the officer follows it by its id; her role reads no record).
        Assert.Contains($"<td>Patient record {_mine}", html, StringComparison.Ordinal);
        Assert.DoesNotContain($"Patient/{_mine}", html, StringComparison.Ordinal);
        Assert.NotNull(StaffClient.ById(html, "found-by-nir"));
        Assert.Contains("<td>Dr Claire Auber</td><td>physician</td>", html, StringComparison.Ordinal);
        Assert.DoesNotContain(MineNir, html, StringComparison.Ordinal);
        Assert.DoesNotContain("2 71 06", html, StringComparison.Ordinal);

        // The look-up is on the chain, naming the patient (so it is on their own history), under HSYSADMIN, the number nowhere.
        var lookup = Assert.Single(await NirLookupsAsync());
        Assert.Equal(AuditOutcome.Success, lookup.Outcome);
        Assert.Equal(["Patient/" + _mine], lookup.Detail.Records);
        Assert.Equal(_mine, lookup.Detail.Patient);
        Assert.Equal(KnownPurposes.SystemAdministration, lookup.Detail.Purpose);
        Assert.DoesNotContain(MineNir, lookup.Detail.Note!, StringComparison.Ordinal);
        // And the history read after it, as for an id.
        Assert.Contains(await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.AuditRead), e => e.Outcome == AuditOutcome.Success);

        // The role reads no more than before: the patient's record itself stays closed to her.
        var (record, _) = await officer.GetAsync($"/patients/{_mine}");
        Assert.NotEqual(HttpStatusCode.OK, record.StatusCode);
        using var fhir = await officer.Http.GetAsync($"/fhir/Patient?identifier={MineNir}");
        Assert.NotEqual(HttpStatusCode.OK, fhir.StatusCode);
    }

    [Fact]
    public async Task A_NIR_with_a_wrong_key_or_without_its_key_is_refused_as_such_and_nothing_is_looked_up()
    {
        using var officer = await SignedInAsync(Officer);
        var wrongKey = MineNir[..13] + (MineNir[13..] == "01" ? "02" : "01");
        var (refused, html) = await AccessHistoryAsync(officer, wrongKey);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("The control key of the NIR does not match. Check each digit: nothing was looked up.", StaffClient.ById(html, "error"));
        Assert.DoesNotContain(wrongKey, html, StringComparison.Ordinal);
        var (keyless, keylessHtml) = await AccessHistoryAsync(officer, MineNir[..13]);
        Assert.Equal(HttpStatusCode.BadRequest, keyless.StatusCode);
        Assert.StartsWith("This NIR has no control key", StaffClient.ById(keylessHtml, "error"), StringComparison.Ordinal);
        Assert.Empty(await NirLookupsAsync());
        Assert.DoesNotContain(await _server.AuditEntriesOfAsync(_tenant, Officer, AuditAction.AuditRead), e => e.Outcome == AuditOutcome.Success);
        var (bad, badHtml) = await AccessHistoryAsync(officer, "../etc/passwd");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("A patient id is", badHtml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_NIR_no_patient_has_says_so_and_one_two_patients_have_lists_both_to_choose()
    {
        using var officer = await SignedInAsync(Officer);
        var (unknown, unknownHtml) = await AccessHistoryAsync(officer, Samples.ValidNir("1850578006084"));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("No patient of your establishment has this NIR.", StaffClient.ById(unknownHtml, "error"));
        Assert.Null(StaffClient.ById(unknownHtml, "history-heading"));

        // The same person registered twice: both records are listed, and each opens its own history.
        var twin = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Chartier", given: "Louise", nir: MineNir));
        var (both, bothHtml) = await AccessHistoryAsync(officer, MineNir);
        Assert.Equal(HttpStatusCode.OK, both.StatusCode);
        Assert.Equal("2 patient records have this NIR", StaffClient.ById(bothHtml, "candidates-heading"));
        Assert.Contains($"value=\"{_mine}\"", bothHtml, StringComparison.Ordinal);
        Assert.Contains($"value=\"{twin}\"", bothHtml, StringComparison.Ordinal);
        Assert.Null(StaffClient.ById(bothHtml, "history-heading"));
        Assert.DoesNotContain(MineNir, bothHtml, StringComparison.Ordinal);
        // One entry per patient the look-up named (as for every act), each on that patient's history.
        var named = (await NirLookupsAsync()).Where(e => e.Detail.Note!.EndsWith(": 2 record(s) found, ids only", StringComparison.Ordinal)).ToList();
        Assert.Equal(new[] { _mine, twin }.Order(), named.Select(e => e.Detail.Patient).Order());
        var (chosen, chosenHtml) = await AccessHistoryAsync(officer, twin);
        Assert.Equal(HttpStatusCode.OK, chosen.StatusCode);
        Assert.StartsWith($"Patient record {twin}:", StaffClient.ById(chosenHtml, "history-heading"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_one_but_the_audit_logs_reader_resolves_a_NIR_through_the_records_service_and_the_attempt_is_on_the_chain()
    {
        // The look-up answers which records carry a number, which a clinician's role must not learn outside its search: a
        // physician's context asking it directly is refused, on the chain.
        var doctor = (await _server.Store.Accounts.FindAsync(_tenant, Doctor, CancellationToken.None))!;
        var context = new AccessContext(new Principal(PrincipalKind.Person, doctor.PrincipalId, "Dr Claire Auber", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, Practitioner = _doctor, SessionId = "s-doctor", AuthenticatedAt = _time.GetUtcNow(),
        }, _tenant, KnownPurposes.Treatment);
        Assert.Null(await _server.Store.Records.PatientsWithNirAsync(context, MineNir, CancellationToken.None));
        var refusal = Assert.Single(await _server.AuditEntriesOfAsync(_tenant, Doctor, AuditAction.Search), e => e.Outcome == AuditOutcome.MinorFailure);
        Assert.Contains("by the audit log's reader only", refusal.Detail.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_staff_name_with_markup_is_shown_as_text_in_the_access_history()
    {
        await EnrolAsync("hostile@chu.example", StaffRole.Physician, _doctor, "<script>alert(1)</script><img src=x onerror=alert(2)>");
        await ChartOpenedByAsync("hostile@chu.example");
        using var officer = await SignedInAsync(Officer);
        var (shown, html) = await AccessHistoryAsync(officer, _mine);
        Assert.Equal(HttpStatusCode.OK, shown.StatusCode);
        Assert.DoesNotContain("<script>alert", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img src=x", html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html, StringComparison.Ordinal);
    }
}

/// <summary>The server <see cref="SecurityConsolePageTests"/> share, on a clock the tests move.</summary>
public abstract class SecurityConsoleServer(Engine engine) : SharedServer(engine, new ManualTime(ManualTime.RealNow));

public sealed class SecurityConsoleServer_Sqlite() : SecurityConsoleServer(Engine.Sqlite);

public sealed class SecurityConsoleServer_Postgres() : SecurityConsoleServer(Engine.Postgres);

public sealed class SecurityConsolePageTests_Sqlite(SecurityConsoleServer_Sqlite shared) : SecurityConsolePageTests(shared), IClassFixture<SecurityConsoleServer_Sqlite>;

public sealed class SecurityConsolePageTests_Postgres(SecurityConsoleServer_Postgres shared) : SecurityConsolePageTests(shared), IClassFixture<SecurityConsoleServer_Postgres>;
