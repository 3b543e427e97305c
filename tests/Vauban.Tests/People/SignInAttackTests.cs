// Adversarial tests of people's sign-in and sessions, each named after the attack it tries, on both
// engines: stolen password, TOTP replay, brute force, credential stuffing, account enumeration, session
// fixation, CSRF, revoked sessions, timeouts. Passwords are hashed fast here; what the work factor itself
// does (timing, upgrade), and the parallel bursts whose attempts must overlap as long as a real hash
// takes, are PasswordHashingTests'.
using System.Net;
using Microsoft.AspNetCore.Identity;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class SignInAttackTests(SignInAttackServer shared) : IAsyncLifetime
{
    private const string Email = "claire.martin@chu.example";
    private const string Password = "tourmaline ferry quietly 42";
    private const int LockoutAfter = 5; // configured (default 10): fewer attempts a test
    /// <summary>The accounts' options of the class's servers.</summary>
    internal static AccountOptions Accounts => new() { SourceFailuresBeforeDelay = 6, LockoutAfterFailures = LockoutAfter };
    // One server for the class (SignInAttackServer), each test in an establishment of its own (the account, its lockout, alerts and
    // audit entries are the establishment's) and signing in from loopback addresses of its own: the throttle counts per source, in
    // the server's database. A test that needs what the whole server holds starts its own.
    private string Establishment { get; } = SharedServer.EstablishmentName("hospital-a");
    private readonly Engine _engine = shared.Engine;
    private readonly ManualTime _time = shared.Time;
    private readonly VaubanServer _server = shared.Server;
    private readonly IPAddress[] _sources = shared.SourceAddresses(3);
    private Tenant _tenant = null!;
    private string _secret = "";
    private IReadOnlyList<string> _recoveryCodes = [];

    public async Task InitializeAsync() => (_tenant, _secret, _recoveryCodes) = await EnrolAsync(_server, Establishment);

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>Claire Martin, physician, enrolled with TOTP in a new <paramref name="establishment"/> of <paramref name="server"/>.</summary>
    private async Task<(Tenant Tenant, string Secret, IReadOnlyList<string> RecoveryCodes)> EnrolAsync(VaubanServer server, string establishment)
    {
        var tenant = await server.Store.Tenants.AddAsync(establishment, CancellationToken.None);
        var link = await server.Store.Accounts.AddAsync(tenant, Email, StaffRole.Physician, "pract-1", "org-1", "Dr Claire Martin", CancellationToken.None);
        using var browser = new StaffClient(server.BaseAddress, _sources[0]);
        var (secret, codes) = await browser.EnrolWithTotpAsync(link.Token, Password, _time);
        NextStep();
        return (tenant, secret, codes);
    }

    /// <summary>A browser at this test's address, or at <paramref name="from"/>.</summary>
    private StaffClient Staff(IPAddress? from = null) => new(_server.BaseAddress, from ?? _sources[0]);

    /// <summary>Moves to the next TOTP time step (each step's code is accepted once).</summary>
    private void NextStep() => _time.Advance(TimeSpan.FromSeconds(30));

    private Task<StaffClient> SignedInAsync() => StaffClient.SignedInAsync(_server.BaseAddress, Establishment, Email, Password, _secret, _time, _sources[0]);

    private static async Task<HttpStatusCode> FhirStatusAsync(StaffClient staff)
    {
        using var response = await staff.Http.GetAsync("/fhir/Patient?_count=1");
        return response.StatusCode;
    }

    [Fact]
    public async Task Enrolled_person_signs_in_with_password_and_TOTP_and_reaches_home_and_fhir()
    {
        using var staff = await SignedInAsync();
        var (home, html) = await staff.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, home.StatusCode);
        Assert.Equal("Dr Claire Martin", StaffClient.ById(html, "who"));
        Assert.Equal("Physician", StaffClient.ById(html, "role"));
        Assert.Equal(Establishment, StaffClient.ById(html, "establishment"));
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        var cookie = staff.SetCookieHeaders.Last(h => h.StartsWith("__Host-vauban-session=", StringComparison.Ordinal)).ToLowerInvariant();
        Assert.Contains("secure", cookie);
        Assert.Contains("httponly", cookie);
        Assert.Contains("samesite=strict", cookie);
        Assert.Contains("path=/", cookie);
        Assert.DoesNotContain("domain=", cookie);
    }

    [Fact]
    public async Task SameEmailInAnotherEstablishment_IsAnotherAccount_AndTheirPasswordsDoNotCross()
    {
        var other = await _server.Store.Tenants.AddAsync(Establishment + "-b", CancellationToken.None);
        var link = await _server.Store.Accounts.AddAsync(other, Email, StaffRole.Nurse, null, null, "Claire Martin (B)", CancellationToken.None);
        Assert.NotEqual((await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!.Id, link.User.Id);
        using var staff = Staff();
        var (response, html) = await staff.PasswordAsync(Establishment + "-b", Email, Password);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(SignInOutcomeMessage, StaffClient.ById(html, "error"));
        Assert.Null(staff.SessionCookie);
    }

    private static string SignInOutcomeMessage => Vauban.Web.SignInOutcome.FailureMessage;

    [Fact]
    public async Task StolenPassword_WithoutSecondFactor_OpensNothing()
    {
        using var thief = Staff();
        var (password, _) = await thief.PasswordAsync(Establishment, Email, Password);
        Assert.Equal("/account/signin/totp", password.Headers.Location?.ToString());
        Assert.NotNull(thief.SessionCookie);
        foreach (var page in new[] { "/", "/account/recovery-codes", "/account/reauth", "/account/enrol/totp", "/account/enrol/passkey" })
        {
            var (response, _) = await thief.GetAsync(page);
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            Assert.StartsWith("/account/signin", response.Headers.Location?.ToString());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(thief));
        using var write = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient()) };
        write.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using (var response = await thief.Http.SendAsync(write)) Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        // Nor can the thief enrol a second factor of their own with the password alone.
        var (enrol, _) = await thief.SubmitAsync("/account/signin/totp", new Dictionary<string, string> { ["Code"] = "000000" }, action: "/account/enrol/totp");
        Assert.NotEqual(HttpStatusCode.OK, enrol.StatusCode);
    }

    [Fact]
    public async Task TotpReplay_IsRefused()
    {
        using var first = Staff();
        await first.PasswordAsync(Establishment, Email, Password);
        var code = Totp.Code(_secret, _time);
        var (accepted, _) = await first.TotpAsync(code);
        Assert.Equal("/", accepted.Headers.Location?.ToString());

        // The same code, seconds later, in another session (a shoulder-surfer or a phishing proxy).
        _time.Advance(TimeSpan.FromSeconds(5));
        using var replay = Staff();
        await replay.PasswordAsync(Establishment, Email, Password);
        var (refused, html) = await replay.TotpAsync(code);
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        Assert.Contains("already used", StaffClient.ById(html, "error"));
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(replay));
        // An earlier step's code is refused too; the next step's code works.
        Assert.Equal(HttpStatusCode.OK, (await replay.TotpAsync(Totp.Code(_secret, _time, -1))).Response.StatusCode);
        NextStep();
        Assert.Equal("/", (await replay.TotpAsync(Totp.Code(_secret, _time))).Response.Headers.Location?.ToString());
    }

    [Fact]
    public async Task BruteForce_LocksAccountAfterN_AndTellsTheOfficer()
    {
        using var attacker = Staff();
        string? firstMessage = null;
        for (var i = 0; i < LockoutAfter; i++)
        {
            var (response, html) = await attacker.PasswordAsync(Establishment, Email, "wrong password " + i);
            if (response.StatusCode == (HttpStatusCode)429)
            {
                // Growing delays: the attempt was not even evaluated. Wait it out and retry.
                _time.Advance(TimeSpan.FromMinutes(16));
                (response, html) = await attacker.PasswordAsync(Establishment, Email, "wrong password " + i);
            }
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            firstMessage ??= StaffClient.ById(html, "error");
            Assert.Equal(firstMessage, StaffClient.ById(html, "error"));
        }
        _time.Advance(TimeSpan.FromMinutes(16));
        // Locked: even the right password is refused, with the same words.
        var (locked, lockedHtml) = await attacker.PasswordAsync(Establishment, Email, Password);
        Assert.Equal(HttpStatusCode.OK, locked.StatusCode);
        Assert.Equal(firstMessage, StaffClient.ById(lockedHtml, "error"));
        var alerts = await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 10, CancellationToken.None);
        var alert = Assert.Single(alerts, a => a.Kind == KnownAlertKinds.AccountLocked);
        Assert.StartsWith("user:", alert.Principal);
        Assert.DoesNotContain(Email, alert.Detail);
        // The lock is on the account's chain, once, beside the attempt that caused it (that attempt read as one more refused password).
        var failures = await _server.AuditEntriesOfAsync(_tenant, Email, Vauban.Audit.AuditAction.SignInFailure);
        Assert.Single(failures, e => e.Detail.Note == $"account locked after {LockoutAfter} failed sign-in attempts; its sessions ended");
        // The officer unlocks; the person signs in again.
        Assert.True(await _server.Store.Accounts.UnlockAsync(_tenant, Email, CancellationToken.None));
        _time.Advance(TimeSpan.FromMinutes(16));
        using var person = await SignedInAsync();
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(person));
    }

    [Fact]
    public async Task StolenPassword_GuessingCodes_AndSigningInAgainBeforeEachLockout_StillLocksTheAccount()
    {
        // Whoever holds the password gets a new second-factor step at each sign-in. The password step cleared the failure
        // count, so guessing codes a few at a time, signing in again in between, never reached the lockout.
        using var thief = Staff();
        for (var i = 0; i < LockoutAfter; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(16)); // past the growing delays: this is about the count, not the delays
            var valid = new[] { -1, 0, 1 }.Select(offset => Totp.Code(_secret, _time, offset)).ToHashSet();
            var guess = Enumerable.Range(0, 10).Select(n => $"{n}{n}{n}{n}{n}{n}").First(c => !valid.Contains(c));
            var (password, _) = await thief.PasswordAsync(Establishment, Email, Password);
            Assert.Equal("/account/signin/totp", password.Headers.Location?.ToString());
            var (refused, _) = await thief.TotpAsync(guess);
            Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        }
        var user = (await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!;
        Assert.True(user.LockoutEnd > _time.GetUtcNow(), $"not locked after {LockoutAfter} wrong codes; {user.AccessFailedCount} counted");
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 10, CancellationToken.None), a => a.Kind == KnownAlertKinds.AccountLocked);
        _time.Advance(TimeSpan.FromMinutes(16));
        var (locked, html) = await thief.PasswordAsync(Establishment, Email, Password);
        Assert.Equal(HttpStatusCode.OK, locked.StatusCode);
        Assert.Equal(SignInOutcomeMessage, StaffClient.ById(html, "error"));
    }

    [Fact]
    public async Task A_person_who_mistyped_a_code_then_signs_in_starts_again_from_no_failures()
    {
        using (var clumsy = Staff())
        {
            await clumsy.PasswordAsync(Establishment, Email, Password);
            Assert.Equal(HttpStatusCode.OK, (await clumsy.TotpAsync(Totp.Code(_secret, _time, -5))).Response.StatusCode);
            var (signedIn, _) = await clumsy.TotpAsync(Totp.Code(_secret, _time));
            Assert.Equal("/", signedIn.Headers.Location?.ToString());
        }
        NextStep();
        Assert.Equal(0, (await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!.AccessFailedCount);
    }

    [Fact]
    public async Task A_sign_in_in_flight_does_not_undo_the_officers_lock()
    {
        var stale = (await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!;
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, Email, CancellationToken.None));
        stale.AccessFailedCount = 0;
        await _server.Store.Accounts.Store.UpdateAsync(stale, CancellationToken.None); // e.g. a success resetting the counter
        Assert.True((await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!.LockoutEnd > _time.GetUtcNow());
    }

    [Fact]
    public async Task A_sign_in_in_flight_neither_writes_back_the_credentials_the_officer_reset_nor_opens_a_session()
    {
        var accounts = _server.Store.Accounts;
        var stale = (await accounts.FindAsync(_tenant, Email, CancellationToken.None))!;
        Assert.NotNull(stale.PasswordHash);
        await accounts.ResetCredentialsAsync((await accounts.FindAsync(_tenant, Email, CancellationToken.None))!, CancellationToken.None);
        // A sign-in that read the account before the reset records a failure on its copy, which still holds the old credentials.
        stale.AccessFailedCount = 2;
        var written = await accounts.Store.UpdateAsync(stale, CancellationToken.None);
        Assert.False(written.Succeeded);
        Assert.Equal(new IdentityErrorDescriber().ConcurrencyFailure().Code, Assert.Single(written.Errors).Code);
        var now = (await accounts.FindAsync(_tenant, Email, CancellationToken.None))!;
        Assert.Null(now.PasswordHash);
        Assert.Null(now.AuthenticatorKey);
        Assert.False(now.TwoFactorEnabled);
        Assert.NotEqual(stale.SecurityStamp, now.SecurityStamp);
        Assert.Equal(2, now.AccessFailedCount); // the failure counts all the same
        // Nor does the sign-in open a session after the reset ended the account's sessions.
        Assert.Null(await _server.Store.Sessions.StartAsync(null, stale, SessionStage.Full, "192.0.2.7", null, CancellationToken.None));
        Assert.NotNull(await _server.Store.Sessions.StartAsync(null, now, SessionStage.Enrolment, "192.0.2.7", null, CancellationToken.None));
        // A copy read after the reset is written as before.
        now.AccessFailedCount = 0;
        Assert.True((await accounts.Store.UpdateAsync(now, CancellationToken.None)).Succeeded);
        Assert.Equal(0, (await accounts.FindAsync(_tenant, Email, CancellationToken.None))!.AccessFailedCount);
        now.AccessFailedCount = 1; // the same copy, written again
        Assert.True((await accounts.Store.UpdateAsync(now, CancellationToken.None)).Succeeded);
    }

    [Fact]
    public async Task CredentialStuffing_ThrottledPerSourceAddress()
    {
        using var stuffer = Staff();
        // Many accounts, one wrong password each, from one address: no account reaches its own threshold.
        for (var i = 0; i < 6; i++)
        {
            var (response, _) = await stuffer.PasswordAsync(Establishment, $"someone{i}@chu.example", "Summer2024!");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        // The source is now throttled: even a right password is not evaluated from it.
        var (throttled, html) = await stuffer.PasswordAsync(Establishment, Email, Password);
        Assert.Equal((HttpStatusCode)429, throttled.StatusCode);
        Assert.Contains("Too many attempts", StaffClient.ById(html, "error"));
        // The real person, from another address, is not affected.
        using var elsewhere = Staff(_sources[1]);
        var (ok, _) = await elsewhere.PasswordAsync(Establishment, Email, Password);
        Assert.Equal("/account/signin/totp", ok.Headers.Location?.ToString());
    }

    [Fact]
    public async Task PasswordSpraying_FromTheEstablishmentsOwnNetwork_DoesNotHoldBackColleagues_AndAlertsTheOfficer()
    {
        // Hundreds of staff sign in from the hospital's NAT (here 127.0.0.1, declared as its own network). Failures from it on
        // many accounts — a morning's typos, or an insider sending wrong passwords on purpose — made every colleague behind it wait.
        await using var server = await VaubanServer.StartAsync(_engine, configure: o => o with
        {
            Time = _time,
            Accounts = new AccountOptions
            {
                SourceFailuresBeforeDelay = 6, LockoutAfterFailures = LockoutAfter, InternalSourceFailuresBeforeAlert = 8,
                InternalNetworks = NetworkList.Parse("--internal-networks", "127.0.0.1/32"),
            },
        });
        var tenant = await server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        var link = await server.Store.Accounts.AddAsync(tenant, Email, StaffRole.Physician, "pract-1", "org-1", "Dr Claire Martin", CancellationToken.None);
        string secret;
        using (var enrolment = new StaffClient(server.BaseAddress)) (secret, _) = await enrolment.EnrolWithTotpAsync(link.Token, Password, _time);
        NextStep();

        using var insider = new StaffClient(server.BaseAddress);
        for (var i = 0; i < 10; i++)
        {
            var (response, html) = await insider.PasswordAsync(Establishment, $"someone{i}@chu.example", "Summer2024!");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(SignInOutcomeMessage, StaffClient.ById(html, "error"));
        }

        // A colleague at the next workstation, same address, own right credentials: signed in at once, both factors.
        using var colleague = new StaffClient(server.BaseAddress);
        var (password, _) = await colleague.PasswordAsync(Establishment, Email, Password);
        Assert.Equal("/account/signin/totp", password.Headers.Location?.ToString());
        var (totp, _) = await colleague.TotpAsync(Totp.Code(secret, _time));
        Assert.Equal("/", totp.Headers.Location?.ToString());

        // The spraying is not slowed per source from inside, so the officer is told, and every refusal is on the chain.
        var alert = Assert.Single(await server.Store.Alerts.ListAsync(tenant.Id, all: true, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.SignInSpraying);
        Assert.Contains("from 127.0.0.1", alert.Detail, StringComparison.Ordinal);
        var failures = await server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "audit test"),
            new Vauban.Audit.AuditQuery { Actions = [Vauban.Audit.AuditAction.SignInFailure], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Equal(10, failures.Count(e => e.Detail.Note == "unknown account" && e.Detail.Source == "127.0.0.1"));

        // From an address outside the establishment's networks the same spraying holds the source back, as before.
        using var outsider = new StaffClient(server.BaseAddress, IPAddress.Parse("127.0.0.2"));
        for (var i = 0; i < 6; i++) Assert.Equal(HttpStatusCode.OK, (await outsider.PasswordAsync(Establishment, $"other{i}@chu.example", "Summer2024!")).Response.StatusCode);
        Assert.Equal((HttpStatusCode)429, (await outsider.PasswordAsync(Establishment, Email, Password)).Response.StatusCode);
    }

    [Fact]
    public async Task CredentialStuffing_FromManyAddressesOfOneIpv6Network_IsThrottledAsOneSource()
    {
        // Whoever has one IPv6 address has a /64 of them: a new address for each attempt must not be a new source each time.
        // Behind a proxy (trusted here) the client's address is the one it forwards.
        await using var server = await VaubanServer.StartAsync(_engine, new Vauban.Web.ServerOptions("http://127.0.0.1:0") { TrustedProxies = [IPNetwork.Parse("127.0.0.1/32")] },
            o => o with { Time = _time, Accounts = new AccountOptions { SourceFailuresBeforeDelay = 6 } });
        await server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        var attempt = 0;
        async Task<HttpStatusCode> FromAsync(string address)
        {
            using var staff = new StaffClient(server.BaseAddress);
            staff.Http.DefaultRequestHeaders.Add("X-Forwarded-For", address);
            var (response, _) = await staff.PasswordAsync(Establishment, $"someone{attempt++}@chu.example", "Summer2024!");
            return response.StatusCode;
        }
        for (var i = 1; i <= 6; i++) Assert.Equal(HttpStatusCode.OK, await FromAsync($"2001:db8:5:6::{i:x}"));
        Assert.Equal((HttpStatusCode)429, await FromAsync("2001:db8:5:6:ffff:ffff:ffff:fffe"));
        Assert.Equal(HttpStatusCode.OK, await FromAsync("2001:db8:5:7::1")); // another network is another source

        // An IPv4 client that reaches a dual-stack listener as ::ffff:a.b.c.d is the same source as a.b.c.d.
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, await FromAsync("203.0.113.7"));
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, await FromAsync("::ffff:203.0.113.7"));
        Assert.Equal((HttpStatusCode)429, await FromAsync("203.0.113.7"));
        Assert.Equal(HttpStatusCode.OK, await FromAsync("203.0.113.8"));
    }

    [Fact]
    public async Task SessionFixation_NewSessionIdAtSignIn()
    {
        using var victim = Staff();
        // The attacker obtains a pre-sign-in session (a passkey challenge) and plants its cookie in the victim's browser.
        var (_, signinPage) = await victim.GetAsync("/account/signin");
        using (var options = new HttpRequestMessage(HttpMethod.Post, "/account/signin?handler=PasskeyOptions") { Content = new StringContent("{}") })
        {
            options.Headers.Add("RequestVerificationToken", StaffClient.Token(signinPage));
            using var response = await victim.Http.SendAsync(options);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        var planted = victim.SessionCookie!;
        await victim.PasswordAsync(Establishment, Email, Password);
        var afterPassword = victim.SessionCookie!;
        await victim.TotpAsync(Totp.Code(_secret, _time));
        var afterTotp = victim.SessionCookie!;
        Assert.Equal(3, new[] { planted, afterPassword, afterTotp }.Distinct().Count());
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(victim));
        // The attacker's copies of the earlier cookies open nothing.
        foreach (var old in new[] { planted, afterPassword })
        {
            using var attacker = Staff();
            attacker.Cookies["__Host-vauban-session"] = old;
            Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(attacker));
            Assert.Equal(HttpStatusCode.Redirect, (await attacker.GetAsync("/")).Response.StatusCode);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"id\":\"AAAA\",\"rawId\":\"AAAA\",\"type\":\"public-key\",\"response\":{\"clientDataJSON\":\"!!\",\"authenticatorData\":\"\",\"signature\":\"\"}}")]
    [InlineData("[1,2,3]")]
    public async Task ForgedPasskeyAssertion_IsRefusedCleanly(string credential)
    {
        using var attacker = Staff();
        var (_, page) = await attacker.GetAsync("/account/signin");
        var token = StaffClient.Token(page);
        foreach (var handler in new[] { "PasskeyOptions", "Passkey" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/account/signin?handler=" + handler) { Content = new StringContent(handler == "Passkey" ? credential : "{}") };
            request.Headers.Add("RequestVerificationToken", token);
            using var response = await attacker.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            if (handler == "Passkey") Assert.Contains("error", await response.Content.ReadAsStringAsync());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(attacker));
        Assert.DoesNotContain("Unexpected", _server.AllLogs());
    }

    [Fact]
    public async Task Failed_passkey_attempts_from_one_address_do_not_hold_back_everybody_elses_passkey_sign_in()
    {
        // Forged assertions cost nothing and need no account: they must slow their own source down, not every passkey of the server.
        static async Task<string> ForgedPasskeyAsync(StaffClient who)
        {
            var (_, page) = await who.GetAsync("/account/signin");
            var token = StaffClient.Token(page);
            var answer = "";
            foreach (var handler in new[] { "PasskeyOptions", "Passkey" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/account/signin?handler=" + handler) { Content = new StringContent(handler == "Passkey" ? "{\"id\":\"AAAA\"}" : "{}") };
                request.Headers.Add("RequestVerificationToken", token);
                using var response = await who.Http.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                answer = await response.Content.ReadAsStringAsync();
            }
            return answer;
        }
        using var attacker = Staff(_sources[1]);
        for (var i = 0; i < 6; i++) Assert.DoesNotContain("Too many attempts", await ForgedPasskeyAsync(attacker));
        Assert.Contains("Too many attempts", await ForgedPasskeyAsync(attacker)); // its own address is held back
        using var colleague = Staff(_sources[2]);
        var answer = await ForgedPasskeyAsync(colleague);
        Assert.Contains("The passkey was not accepted", answer);
        Assert.DoesNotContain("Too many attempts", answer);
    }

    [Fact]
    public async Task Csrf_FormWithoutAntiforgeryToken_IsRefused()
    {
        using var anonymous = Staff();
        var (signin, _) = await anonymous.SubmitAsync("/account/signin",
            new Dictionary<string, string> { ["Establishment"] = Establishment, ["Email"] = Email, ["Password"] = Password }, withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, signin.StatusCode);
        Assert.Null(anonymous.SessionCookie);

        using var staff = await SignedInAsync();
        var (signout, _) = await staff.SubmitAsync("/", new Dictionary<string, string>(), action: "/account/signout", withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, signout.StatusCode);
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        // A token from another person's page does not fit this session either.
        using var other = Staff();
        var (_, otherPage) = await other.GetAsync("/account/signin");
        using var forged = await staff.Http.PostAsync("/account/signout", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = StaffClient.Token(otherPage) }));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
    }

    [Fact]
    public async Task A_form_left_open_past_its_session_says_so_and_a_late_sign_out_just_signs_out()
    {
        // Sign out after the idle time-out: the session is gone already; the person arrives at the sign-in page, not at an empty 400.
        using var staff = await SignedInAsync();
        var (_, home) = await staff.GetAsync("/");
        _time.Advance(TimeSpan.FromMinutes(16));
        using (var signout = await staff.Http.PostAsync("/account/signout",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = StaffClient.Token(home) })))
        {
            Assert.Equal(HttpStatusCode.Redirect, signout.StatusCode);
            // And is told why she is there: the session had ended by itself.
            Assert.Equal("/account/signin?ended=idle", signout.Headers.Location?.ToString());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(staff));

        // The code typed after the second-factor step has timed out: refused (nothing done), with a page that says so.
        using var late = Staff();
        await late.PasswordAsync(Establishment, Email, Password);
        var (_, totpPage) = await late.GetAsync("/account/signin/totp");
        _time.Advance(TimeSpan.FromMinutes(11));
        using var response = await late.Http.PostAsync("/account/signin/totp", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(_secret, _time), ["__RequestVerificationToken"] = StaffClient.Token(totpPage),
        }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Equal("This form has expired", StaffClient.ById(html, "form-expired"));
        Assert.Contains("href=\"/account/signin/totp\"", html);
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(late));
    }

    [Fact]
    public async Task A_form_over_the_readers_limits_is_refused_as_such_not_as_an_expired_form()
    {
        using var staff = Staff();
        var (_, page) = await staff.GetAsync("/account/signin");
        // 2,000 fields: more than the form reader takes, so the token in it cannot be read either.
        var fields = Enumerable.Range(0, 2000).Select(i => new KeyValuePair<string, string>("f" + i, "x")).ToList();
        fields.Add(new("__RequestVerificationToken", StaffClient.Token(page)));
        using var response = await staff.Http.PostAsync("/account/signin", new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Equal("This form could not be read", StaffClient.ById(html, "form-expired"));
        Assert.Contains("1,024 fields", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Csrf_FhirWriteWithSessionCookie_NeedsThisSitesOrigin()
    {
        using var staff = await SignedInAsync();
        async Task<HttpStatusCode> PostAsync(string? origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient()) };
            if (origin is not null) request.Headers.Add("Origin", origin);
            using var response = await staff.Http.SendAsync(request);
            return response.StatusCode;
        }
        Assert.Equal(HttpStatusCode.Forbidden, await PostAsync(null));
        Assert.Equal(HttpStatusCode.Forbidden, await PostAsync("https://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, await PostAsync("null"));
        Assert.Equal(HttpStatusCode.Created, await PostAsync(_server.BaseAddress.GetLeftPart(UriPartial.Authority)));
    }

    [Fact]
    public async Task Csrf_PageFormFromAnotherSite_IsRefusedAsSuch_EvenWithAValidToken()
    {
        // On a server of its own: what a server tells its operator once a minute, and its log, are the whole server's.
        await using var server = await VaubanServer.StartAsync(_engine, configure: o => o with { Time = _time, Accounts = Accounts });
        var (_, secret, _) = await EnrolAsync(server, Establishment);
        using var staff = await StaffClient.SignedInAsync(server.BaseAddress, Establishment, Email, Password, secret, _time, _sources[0]);
        var (_, home) = await staff.GetAsync("/");
        async Task<(HttpStatusCode Status, string Html)> SignOutAsync(string? origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/account/signout")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = StaffClient.Token(home) }),
            };
            if (origin is not null) request.Headers.Add("Origin", origin);
            using var response = await staff.Http.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        // Another site's page: refused and said so, before the token is looked at; the session stays. ("null", which Chromium sends
        // with this site's own forms under Referrer-Policy: no-referrer, is left to the antiforgery check.)
        foreach (var origin in new[] { "https://evil.example", "http://evil.example", server.BaseAddress.GetLeftPart(UriPartial.Authority).Replace("127.0.0.1", "localhost", StringComparison.Ordinal) })
        {
            var (status, html) = await SignOutAsync(origin);
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Equal("Sent from another site", StaffClient.ById(html, "status"));
            Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        }
        // The operator is told once a minute which origin was refused and which this server took itself to be (behind a TLS proxy
        // it was not told of, every form is refused so, and the log said nothing of why).
        var site = server.BaseAddress.GetLeftPart(UriPartial.Authority);
        List<string> Told() => [.. server.Logs.Where(l => l.Contains("A write was refused as sent from another site", StringComparison.Ordinal))];
        Assert.Contains($"its Origin is https://evil.example, and this server is {site}. If this site's own forms are refused, Vauban is behind a proxy it was not told of: set --public-url",
            Assert.Single(Told()), StringComparison.Ordinal);
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(HttpStatusCode.Forbidden, (await SignOutAsync("https://evil.example/\u001b[2J")).Status);
        Assert.Equal(2, Told().Count);
        Assert.Contains("its Origin is https://evil.example/?[2J,", Told()[1], StringComparison.Ordinal);
        // This site's own page signs out.
        var (signedOut, _) = await SignOutAsync(server.BaseAddress.GetLeftPart(UriPartial.Authority));
        Assert.Equal(HttpStatusCode.Redirect, signedOut);
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(staff));
    }

    [Fact]
    public async Task RevokedSession_IsRefusedAtOnce()
    {
        using var staff = await SignedInAsync();
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        Assert.True(await _server.Store.Accounts.RevokeSessionsAsync(_tenant, Email, CancellationToken.None) >= 1);
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(staff));
        Assert.Equal(HttpStatusCode.Redirect, (await staff.GetAsync("/")).Response.StatusCode);

        using var again = await SignedInAsync();
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, Email, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(again));

        // Sign-out ends the session on the server, not only in the browser.
        Assert.True(await _server.Store.Accounts.UnlockAsync(_tenant, Email, CancellationToken.None));
        using var third = await SignedInAsync();
        var cookie = third.SessionCookie!;
        var (signout, _) = await third.SubmitAsync("/", new Dictionary<string, string>(), action: "/account/signout");
        Assert.Equal(HttpStatusCode.Redirect, signout.StatusCode);
        using var copy = Staff();
        copy.Cookies["__Host-vauban-session"] = cookie;
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(copy));
    }

    [Fact]
    public async Task An_enrolment_link_issued_before_the_officers_lock_does_not_reopen_the_account()
    {
        // The link went to the wrong mailbox, or the person left: the officer locks the account. Used afterwards, the link reset
        // the credentials and lifted the lock with them, and whoever held it enrolled a second factor of their own.
        var link = await _server.Store.Accounts.AddAsync(_tenant, "departed@chu.example", StaffRole.Nurse, null, null, "Departed Nurse", CancellationToken.None);
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, "departed@chu.example", CancellationToken.None));
        using var holder = Staff();
        var (opened, page) = await holder.GetAsync("/account/enrol?token=" + Uri.EscapeDataString(link.Token));
        Assert.Equal(HttpStatusCode.OK, opened.StatusCode);
        Assert.Contains("Enrolment link not valid", page);
        // Nor does the form, posted with the link (a page opened before the lock).
        var (_, signin) = await holder.GetAsync("/account/signin");
        using (var used = await holder.Http.PostAsync("/account/enrol", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Token"] = link.Token, ["Password"] = Password, ["Confirm"] = Password, ["__RequestVerificationToken"] = StaffClient.Token(signin),
        })))
        {
            Assert.Equal(HttpStatusCode.OK, used.StatusCode);
            Assert.Contains("Enrolment link not valid", await used.Content.ReadAsStringAsync());
        }
        Assert.Null(holder.SessionCookie);
        var account = (await _server.Store.Accounts.FindAsync(_tenant, "departed@chu.example", CancellationToken.None))!;
        Assert.True(account.LockoutEnd > _time.GetUtcNow());
        Assert.Null(account.PasswordHash);

        // After review the officer issues a new link: that one works (and lifts the lock, as a re-enrolment does).
        var again = await _server.Store.Accounts.ReissueEnrolmentLinkAsync(account, CancellationToken.None);
        using var person = Staff();
        var (set, _) = await person.SubmitAsync("/account/enrol?token=" + Uri.EscapeDataString(again.Token),
            new Dictionary<string, string> { ["Token"] = again.Token, ["Password"] = Password, ["Confirm"] = Password });
        Assert.Equal("/account/enrol/passkey", set.Headers.Location?.ToString());
    }

    [Fact]
    public async Task IdleAndAbsoluteTimeouts()
    {
        using var idle = await SignedInAsync();
        _time.Advance(TimeSpan.FromMinutes(14));
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(idle)); // activity slides the idle timeout
        _time.Advance(TimeSpan.FromMinutes(14));
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(idle));
        _time.Advance(TimeSpan.FromMinutes(16));
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(idle));

        using var busy = await SignedInAsync();
        for (var elapsed = TimeSpan.Zero; elapsed < TimeSpan.FromHours(11.8); elapsed += TimeSpan.FromMinutes(10))
        {
            _time.Advance(TimeSpan.FromMinutes(10));
            if (elapsed.TotalMinutes % 120 == 0) Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(busy));
            else await _server.Store.Sessions.FindAsync(busy.SessionCookie, CancellationToken.None);
        }
        _time.Advance(TimeSpan.FromMinutes(15));
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(busy));
    }

    [Fact]
    public async Task StolenSession_CannotAddItsOwnSecondFactor_WithoutProvingBothFactorsAgain()
    {
        using var staff = await SignedInAsync();
        _time.Advance(TimeSpan.FromMinutes(10));
        foreach (var page in new[] { "/account/enrol/totp", "/account/enrol/passkey" })
        {
            var (response, _) = await staff.GetAsync(page);
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            Assert.StartsWith("/account/reauth?returnUrl=", response.Headers.Location?.ToString());
        }
    }

    [Fact]
    public async Task An_authenticator_key_shown_but_never_confirmed_is_not_a_second_factor()
    {
        var link = await _server.Store.Accounts.AddAsync(_tenant, "half.enrolled@chu.example", StaffRole.Nurse, null, null, "Half Enrolled", CancellationToken.None);
        using var staff = Staff();
        await staff.SubmitAsync("/account/enrol?token=" + Uri.EscapeDataString(link.Token),
            new Dictionary<string, string> { ["Token"] = link.Token, ["Password"] = Password, ["Confirm"] = Password });
        var (_, page) = await staff.GetAsync("/account/enrol/totp");
        var secret = StaffClient.ById(page, "secret")!.Replace(" ", "", StringComparison.Ordinal);
        // The person leaves without confirming; the key must not open a sign-in (not even with its right code).
        using var later = Staff();
        var (password, html) = await later.PasswordAsync(Establishment, "half.enrolled@chu.example", Password);
        Assert.Null(password.Headers.Location);
        Assert.Contains("no second factor", StaffClient.ById(html, "error"));
        Assert.Null(later.SessionCookie);
        var user = (await _server.Store.Accounts.FindAsync(_tenant, "half.enrolled@chu.example", CancellationToken.None))!;
        using var scope = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.CreateScope(_server.Services);
        var manager = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<UserManager<StaffUser>>(scope.ServiceProvider);
        Assert.False(await manager.VerifyTwoFactorTokenAsync(user, TotpAuthenticator.ProviderName, Totp.Code(secret, _time)));
    }

    [Fact]
    public async Task Recovery_code_signs_in_once()
    {
        Assert.Equal(10, _recoveryCodes.Count);
        using var staff = Staff();
        await staff.PasswordAsync(Establishment, Email, Password);
        var (used, _) = await staff.SubmitAsync("/account/signin/recovery", new Dictionary<string, string> { ["Code"] = _recoveryCodes[3].ToLowerInvariant() });
        Assert.Equal("/account/recovery-codes", used.Headers.Location?.ToString());
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        using var again = Staff();
        await again.PasswordAsync(Establishment, Email, Password);
        var (refused, _) = await again.SubmitAsync("/account/signin/recovery", new Dictionary<string, string> { ["Code"] = _recoveryCodes[3] });
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(again));
    }

    [Fact]
    public async Task A_lost_phone_is_replaced_after_a_recovery_code_and_a_confirmed_authenticator_key_is_never_shown_again()
    {
        // A session the lost phone opened (its thief's, say) before the replacement.
        using var earlier = await SignedInAsync();
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(earlier));
        using var staff = Staff();
        await staff.PasswordAsync(Establishment, Email, Password);
        var (used, _) = await staff.SubmitAsync("/account/signin/recovery", new Dictionary<string, string> { ["Code"] = _recoveryCodes[5] });
        Assert.Equal("/account/recovery-codes", used.Headers.Location?.ToString());
        // Whoever holds the password and a recovery code (or a freshly proven session) must not read the enrolled key off the page.
        var (page, html) = await staff.GetAsync("/account/enrol/totp");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.NotNull(StaffClient.ById(html, "enrolled"));
        Assert.Null(StaffClient.ById(html, "secret"));
        Assert.DoesNotContain(_secret, html.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);

        // Replacing it shows a new key, which takes the old one's place once a code from it is typed.
        var (replace, replaceHtml) = await staff.SubmitAsync("/account/enrol/totp", new Dictionary<string, string>(), action: "/account/enrol/totp?handler=Replace");
        Assert.Equal(HttpStatusCode.OK, replace.StatusCode);
        var newSecret = StaffClient.ById(replaceHtml, "secret")!.Replace(" ", "", StringComparison.Ordinal);
        Assert.NotEqual(_secret, newSecret);
        // A browser submits the code where the form says: the page, not the Replace handler (which made another key, for ever).
        Assert.Contains("action=\"/account/enrol/totp\"", replaceHtml, StringComparison.Ordinal);
        // The form carries the new key sealed by the server: a key the browser chooses (all zeros, say) is not enrolled.
        var sealedKey = StaffClient.FieldValue(replaceHtml, "NewKey")!;
        Assert.DoesNotContain(newSecret, sealedKey, StringComparison.Ordinal);
        const string Chosen = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        using (var forged = await staff.Http.PostAsync("/account/enrol/totp", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(Chosen, _time), ["NewKey"] = Chosen, ["__RequestVerificationToken"] = StaffClient.Token(replaceHtml),
        })))
        {
            Assert.Equal(HttpStatusCode.OK, forged.StatusCode);
            Assert.Contains("Start again", await forged.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var confirm = await staff.Http.PostAsync("/account/enrol/totp", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Code"] = Totp.Code(newSecret, _time), ["NewKey"] = sealedKey, ["__RequestVerificationToken"] = StaffClient.Token(replaceHtml),
        })))
        {
            Assert.Equal("/", confirm.Headers.Location?.ToString());
        }
        NextStep();
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        // The sessions the old authenticator opened end with it (OWASP ASVS V7.4.3).
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(earlier));

        // The lost phone's codes open nothing any more; the new app's do.
        using var thief = Staff();
        await thief.PasswordAsync(Establishment, Email, Password);
        var (refused, _) = await thief.TotpAsync(Totp.Code(_secret, _time));
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(thief));
        NextStep();
        using var owner = Staff();
        await owner.PasswordAsync(Establishment, Email, Password);
        var (accepted, _) = await owner.TotpAsync(Totp.Code(newSecret, _time));
        Assert.Equal("/", accepted.Headers.Location?.ToString());
    }

    [Fact]
    public async Task Reauthentication_refreshes_the_proof_time_for_sensitive_acts()
    {
        using var staff = await SignedInAsync();
        _time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        // Making new recovery codes is sensitive: after 10 minutes it asks for both factors again.
        var (regenerate, _) = await staff.SubmitAsync("/account/recovery-codes", new Dictionary<string, string>());
        Assert.StartsWith("/account/reauth?returnUrl=", regenerate.Headers.Location?.ToString());
        var before = staff.SessionCookie!;
        var (wrong, _) = await staff.SubmitAsync("/account/reauth?returnUrl=%2Faccount%2Frecovery-codes",
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = "000000", ["ReturnUrl"] = "/account/recovery-codes" });
        Assert.Equal(HttpStatusCode.OK, wrong.StatusCode);
        var (ok, _) = await staff.SubmitAsync("/account/reauth?returnUrl=%2Faccount%2Frecovery-codes",
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secret, _time), ["ReturnUrl"] = "/account/recovery-codes" });
        Assert.Equal("/account/recovery-codes", ok.Headers.Location?.ToString());
        // Re-authenticated, the session has a new token: a copy of the old one (taken before) opens nothing, fresh or not.
        Assert.NotEqual(before, staff.SessionCookie);
        using (var copy = Staff())
        {
            copy.Cookies["__Host-vauban-session"] = before;
            Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(copy));
        }
        var (codes, html) = await staff.SubmitAsync("/account/recovery-codes", new Dictionary<string, string>());
        Assert.Equal(HttpStatusCode.OK, codes.StatusCode);
        Assert.Contains("recovery-codes", html);
        // An open redirect is not possible through returnUrl.
        NextStep();
        var (evil, _) = await staff.SubmitAsync("/account/reauth",
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secret, _time), ["ReturnUrl"] = "//evil.example/" });
        Assert.Equal("/", evil.Headers.Location?.ToString());
    }

    [Theory]
    [InlineData("/\t/evil.example/")]
    [InlineData("/\n/evil.example/")]
    [InlineData("/\r\n/evil.example/")]
    [InlineData("//evil.example/")]
    [InlineData("/\\evil.example/")]
    [InlineData("https://evil.example/")]
    [InlineData("/dossier/h\u00e9pital")]
    public async Task OpenRedirect_AfterSignIn_ReturnUrlThatABrowserReadsAsAnotherSite_GoesHome(string returnUrl)
    {
        // A browser removes tabs and newlines from a URL before reading it: "/<TAB>/evil.example/" is "//evil.example/",
        // another site. A phishing link to /account/signin?returnUrl=… must not send the person there once signed in.
        // (A newline or a non-ASCII letter, which Kestrel refuses in a Location header, must not make the sign-in a 500 either.)
        using var staff = Staff();
        var (password, _) = await staff.SubmitAsync("/account/signin?returnUrl=" + Uri.EscapeDataString(returnUrl),
            new Dictionary<string, string> { ["Establishment"] = Establishment, ["Email"] = Email, ["Password"] = Password, ["ReturnUrl"] = returnUrl });
        var next = password.Headers.Location?.ToString();
        Assert.StartsWith("/account/signin/totp", next);
        var (totp, _) = await staff.SubmitAsync(next!, new Dictionary<string, string> { ["Code"] = Totp.Code(_secret, _time), ["ReturnUrl"] = returnUrl });
        NextStep();
        Assert.Equal("/", totp.Headers.Location?.ToString());
    }

    [Fact]
    public async Task A_transaction_stopped_by_the_guards_step_up_tells_the_browser_to_reauthenticate_as_a_read_does()
    {
        using var api = await _server.ClientAsync(Establishment);
        var patients = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            using var created = await api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Suivi", given: "P" + i, gp: "Practitioner/pract-1")));
            patients.Add((await created.BodyAsync()).GetProperty("id").GetString()!);
        }
        using var staff = await SignedInAsync();
        // The physician's own patients (she is their general practitioner), read in one transaction: more than the step-up level.
        var entries = string.Join(", ", patients.Select(p => $$"""{ "request": { "method": "GET", "url": "Patient/{{p}}" } }"""));
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir")
        {
            Content = FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{entries}} ] }"""),
        };
        request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using var response = await staff.Http.SendAsync(request);
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{(int)response.StatusCode} {body}");
        Assert.Equal("login", body.GetProperty("issue")[0].GetProperty("code").GetString());
        // RFC 6750 / RFC 9470: a 401 carries its challenge; without it a client cannot tell a step-up from a lost session.
        Assert.Contains("insufficient_user_authentication", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signed_in_physician_breaks_the_glass_only_after_proving_both_factors_again()
    {
        var patient = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Inconnu"));
        using var staff = await SignedInAsync();
        using (var before = await staff.Http.GetAsync($"/fhir/Patient/{patient}")) Assert.NotEqual(HttpStatusCode.OK, before.StatusCode);

        _time.Advance(TimeSpan.FromMinutes(10));
        var origin = _server.BaseAddress.GetLeftPart(UriPartial.Authority);
        async Task<HttpResponseMessage> BreakGlassAsync()
        {
            var request = new HttpRequestMessage(HttpMethod.Post, $"/fhir/Patient/{patient}/$break-the-glass")
            {
                Content = FhirContent.Json("""{ "resourceType": "Parameters", "parameter": [ { "name": "reason", "valueCode": "emergency" }, { "name": "text", "valueString": "unconscious, brought in by ambulance" } ] }"""),
            };
            request.Headers.Add("Origin", origin);
            return await staff.Http.SendAsync(request);
        }
        using (var stale = await BreakGlassAsync())
        {
            Assert.Equal(HttpStatusCode.Unauthorized, stale.StatusCode);
            Assert.Contains("insufficient_user_authentication", stale.Headers.WwwAuthenticate.ToString());
        }
        var (reauth, _) = await staff.SubmitAsync("/account/reauth?returnUrl=%2F",
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secret, _time), ["ReturnUrl"] = "/" });
        Assert.Equal("/", reauth.Headers.Location?.ToString());
        using (var granted = await BreakGlassAsync()) Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        using (var after = await staff.Http.GetAsync($"/fhir/Patient/{patient}")) Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task Break_the_glass_page_without_fresh_proof_or_reason_opens_nothing()
    {
        var patient = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Urgence"));
        using var staff = await SignedInAsync();
        var page = $"/patients/{patient}/break-the-glass";

        // A stale proof of both factors sends the person to the step-up page first.
        _time.Advance(TimeSpan.FromMinutes(10));
        var (stale, _) = await staff.GetAsync(page);
        Assert.Equal(HttpStatusCode.Redirect, stale.StatusCode);
        Assert.StartsWith("/account/reauth?returnUrl=", stale.Headers.Location?.ToString());
        var (reauth, _) = await staff.SubmitAsync("/account/reauth?returnUrl=" + Uri.EscapeDataString(page),
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secret, _time), ["ReturnUrl"] = page });
        Assert.Equal(page, reauth.Headers.Location?.ToString());

        // No reason, or no words of one's own: refused, and the record stays closed.
        var (noReason, html) = await staff.SubmitAsync(page, new Dictionary<string, string> { ["Reason"] = "", ["Text"] = "patient unconscious" });
        Assert.Equal(HttpStatusCode.BadRequest, noReason.StatusCode);
        // Said in the form's terms (its list shows labels), not by the API's reason codes.
        Assert.Equal("Choose the reason in the list.", StaffClient.ById(html, "error"));
        var (noText, _) = await staff.SubmitAsync(page, new Dictionary<string, string> { ["Reason"] = "emergency", ["Text"] = "" });
        Assert.Equal(HttpStatusCode.BadRequest, noText.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, await FhirReadStatusAsync(staff, patient));
        // Without the anti-forgery token the form is refused outright.
        var (forged, _) = await staff.SubmitAsync(page, new Dictionary<string, string> { ["Reason"] = "emergency", ["Text"] = "patient unconscious in ER" }, withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, await FhirReadStatusAsync(staff, patient));

        var (granted, grantedHtml) = await staff.SubmitAsync(page, new Dictionary<string, string> { ["Reason"] = "emergency", ["Text"] = "patient unconscious in ER" });
        Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        Assert.NotNull(StaffClient.ById(grantedHtml, "granted"));
        Assert.Equal(HttpStatusCode.OK, await FhirReadStatusAsync(staff, patient));
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.BreakTheGlass);
    }

    [Fact]
    public async Task Break_the_glass_words_typed_while_the_proof_aged_are_shown_again_after_proving_both_factors()
    {
        var patient = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Brouillon"));
        using var staff = await SignedInAsync();
        var page = $"/patients/{patient}/break-the-glass";
        var (_, form) = await staff.GetAsync(page);
        // The person takes her time over the explanation: the proof of both factors ages meanwhile.
        _time.Advance(TimeSpan.FromMinutes(10));
        const string words = "Patiente inconsciente aux urgences, allergies à vérifier";
        var fields = new Dictionary<string, string> { ["Reason"] = "emergency", ["Text"] = words, ["__RequestVerificationToken"] = StaffClient.Token(form) };
        using (var sent = await staff.Http.PostAsync(page, new FormUrlEncodedContent(fields)))
        {
            Assert.Equal(HttpStatusCode.Redirect, sent.StatusCode);
            Assert.Equal("/account/reauth?returnUrl=" + Uri.EscapeDataString(page), sent.Headers.Location?.ToString());
        }
        Assert.NotEqual(HttpStatusCode.OK, await FhirReadStatusAsync(staff, patient));
        // Another session of the same person does not get them.
        NextStep();
        using (var other = await SignedInAsync())
        {
            var (_, otherHtml) = await other.GetAsync(page);
            Assert.Equal("", StaffClient.ById(otherHtml, "text"));
        }
        // Still stale: the form is not shown, the words are kept.
        var (stale, _) = await staff.GetAsync(page);
        Assert.Equal(HttpStatusCode.Redirect, stale.StatusCode);
        var (reauth, _) = await staff.SubmitAsync("/account/reauth?returnUrl=" + Uri.EscapeDataString(page),
            new Dictionary<string, string> { ["Password"] = Password, ["Code"] = Totp.Code(_secret, _time), ["ReturnUrl"] = page });
        Assert.Equal(page, reauth.Headers.Location?.ToString());
        var (back, html) = await staff.GetAsync(page);
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        Assert.Equal(words, StaffClient.ById(html, "text"));
        Assert.Contains("<option value=\"emergency\" selected=\"selected\">", html, StringComparison.Ordinal);
        Assert.NotEqual(HttpStatusCode.OK, await FhirReadStatusAsync(staff, patient)); // shown again, not sent
        // Given back once: the page shown again starts empty.
        var (again, againHtml) = await staff.GetAsync(page);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("", StaffClient.ById(againHtml, "text"));
    }

    private static async Task<HttpStatusCode> FhirReadStatusAsync(StaffClient staff, string patient)
    {
        using var response = await staff.Http.GetAsync($"/fhir/Patient/{patient}");
        return response.StatusCode;
    }

    [Fact]
    public async Task PasskeyCeremonyFlood_PendingSessionsOpenNothingOnceExpiredAndTheirRowsArePurged()
    {
        // Anyone may start a passkey ceremony: each leaves a pending session row for ten minutes. (A start deleted ended
        // sessions by scanning every row; with 200,000 pending rows that made each start take 30 ms under the write lock,
        // against 0.6 ms now that the purge runs at most every 30 s.)
        var tokens = new List<string>();
        for (var i = 0; i < 40; i++)
            tokens.Add((await _server.Store.Sessions.StartAsync(null, null, SessionStage.Challenge, "192.0.2.7", "ceremony", CancellationToken.None))!.Value.Token);
        Assert.True(await PendingRowsAsync() >= 40);
        Assert.NotNull(await _server.Store.Sessions.FindAsync(tokens[^1], CancellationToken.None));

        _time.Advance(TimeSpan.FromMinutes(11));
        Assert.Null(await _server.Store.Sessions.FindAsync(tokens[^1], CancellationToken.None));
        await _server.Store.Sessions.StartAsync(null, null, SessionStage.Challenge, "192.0.2.7", "ceremony", CancellationToken.None);
        Assert.Equal(1, await PendingRowsAsync());
    }

    private async Task<long> PendingRowsAsync()
    {
        await using System.Data.Common.DbConnection connection = _engine == Engine.Sqlite
            ? new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_server.Db};Pooling=False")
            : new Npgsql.NpgsqlConnection(_server.Db);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM staff_sessions WHERE stage = 0";
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Staff_email_and_name_are_not_stored_in_clear_and_not_logged()
    {
        using var staff = await SignedInAsync();
        var (_, html) = await staff.GetAsync("/");
        Assert.Contains("Claire Martin", html);
        Assert.DoesNotContain(Email, _server.AllLogs(), StringComparison.OrdinalIgnoreCase);
        if (_engine == Engine.Sqlite)
        {
            var bytes = await File.ReadAllBytesAsync(_server.Db);
            var wal = File.Exists(_server.Db + "-wal") ? await File.ReadAllBytesAsync(_server.Db + "-wal") : [];
            foreach (var needle in new[] { Email, "Claire Martin", Password })
            {
                var pattern = System.Text.Encoding.UTF8.GetBytes(needle);
                Assert.Equal(-1, bytes.AsSpan().IndexOf(pattern));
                Assert.Equal(-1, wal.AsSpan().IndexOf(pattern));
            }
        }
    }
}

/// <summary>The server <see cref="SignInAttackTests"/> share, its clock at 22 November 2026, 10:00 UTC when it starts.</summary>
public abstract class SignInAttackServer(Engine engine) : SharedServer(engine, new ManualTime(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero)),
    o => o with { Accounts = SignInAttackTests.Accounts });

public sealed class SignInAttackServer_Sqlite() : SignInAttackServer(Engine.Sqlite);

public sealed class SignInAttackServer_Postgres() : SignInAttackServer(Engine.Postgres);

public sealed class SignInAttackTests_Sqlite(SignInAttackServer_Sqlite shared) : SignInAttackTests(shared), IClassFixture<SignInAttackServer_Sqlite>;

public sealed class SignInAttackTests_Postgres(SignInAttackServer_Postgres shared) : SignInAttackTests(shared), IClassFixture<SignInAttackServer_Postgres>;
