// Issue 4 for people: each sign-in entry names the session it opens, so that a security officer can tie
// a sign-in to the acts that follow; enrolment (which resets credentials and opens a session) is on the
// chain; throttled attempts and a right password on an account without a second factor are failures on it.
using System.Net;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class SignInAuditTests : IAsyncLifetime
{
    private const string Establishment = "hospital-a";
    private const string Email = "claire.martin@chu.example";
    private const string Password = "tourmaline ferry quietly 42";
    private const string RecoveryCodesIssued = "recovery codes issued (earlier ones stop working)";
    private readonly Engine _engine;
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero));
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private string _principal = "";
    private string _secret = "";

    protected SignInAuditTests(Engine engine) => _engine = engine;

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine, configure: o => o with
        {
            Time = _time,
            Accounts = new AccountOptions { SourceFailuresBeforeDelay = 6, LockoutAfterFailures = 5 },
        });
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        var link = await _server.Store.Accounts.AddAsync(_tenant, Email, StaffRole.Physician, "pract-1", "org-1", "Dr Claire Martin", CancellationToken.None);
        _principal = link.User.PrincipalId;
        using var browser = Staff();
        (_secret, _) = await browser.EnrolWithTotpAsync(link.Token, Password, _time);
        NextStep();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private StaffClient Staff(IPAddress? from = null) => new(_server.BaseAddress, from);

    private void NextStep() => _time.Advance(TimeSpan.FromSeconds(30));

    private async Task<IReadOnlyList<AuditEntry>> EntriesOfAsync(string principal) =>
        await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "audit test"), new AuditQuery { Agent = principal, Count = 200 }, CancellationToken.None) ?? [];

    private async Task<string> SessionOfNextActAsync(StaffClient staff)
    {
        using (var search = await staff.Http.GetAsync("/fhir/Patient?_count=1")) Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        var act = (await EntriesOfAsync(_principal)).First(e => e.Action == AuditAction.Search);
        Assert.NotNull(act.Detail.Session);
        return act.Detail.Session!;
    }

    [Fact]
    public async Task The_sign_in_entry_names_the_session_it_opens_the_one_the_next_acts_carry()
    {
        using var staff = Staff();
        var (password, _) = await staff.PasswordAsync(Establishment, Email, Password);
        Assert.Equal("/account/signin/totp", password.Headers.Location?.ToString());
        var (totp, _) = await staff.TotpAsync(Totp.Code(_secret, _time));
        Assert.Equal("/", totp.Headers.Location?.ToString());

        var session = await SessionOfNextActAsync(staff);
        var signIn = (await EntriesOfAsync(_principal)).First(e => e.Action == AuditAction.SignIn);
        Assert.Equal("password + TOTP", signIn.Detail.Note);
        Assert.Equal(AuditOutcome.Success, signIn.Outcome);
        Assert.Equal(session, signIn.Detail.Session);
    }

    [Fact]
    public async Task The_establishment_is_found_whatever_the_case_it_is_typed_in()
    {
        // Staff type the name as they say it ("Hospital-A", "HOSPITAL-A"); no two establishments may differ by case alone.
        using var staff = Staff();
        var (password, _) = await staff.PasswordAsync("  HOSPITAL-A ", Email, Password);
        Assert.Equal("/account/signin/totp", password.Headers.Location?.ToString());
        var (totp, _) = await staff.TotpAsync(Totp.Code(_secret, _time));
        Assert.Equal("/", totp.Headers.Location?.ToString());
        Assert.Contains(await EntriesOfAsync(_principal), e => e.Action == AuditAction.SignIn && e.Outcome == AuditOutcome.Success);

        // A name that is not alike still finds nothing, as a wrong password would.
        using var other = Staff();
        var (missed, page) = await other.PasswordAsync("hospital-b", Email, Password);
        Assert.Equal(HttpStatusCode.OK, missed.StatusCode);
        Assert.Contains("is not correct", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Enrolment_records_the_credential_reset_and_a_sign_in_naming_the_session_it_opens()
    {
        var link = await _server.Store.Accounts.AddAsync(_tenant, "nurse@chu.example", StaffRole.Physician, "pract-2", "org-1", "Dr Paul Durand", CancellationToken.None);
        using var browser = Staff();
        await browser.EnrolWithTotpAsync(link.Token, Password, _time);
        var entries = await EntriesOfAsync(link.User.PrincipalId);
        var reset = Assert.Single(entries, e => e.Action == AuditAction.Administration && e.Detail.Note != RecoveryCodesIssued);
        Assert.Equal("enrolment link used: credentials reset", reset.Detail.Note);
        Assert.Equal("127.0.0.1", reset.Detail.Source);
        var signIn = Assert.Single(entries, e => e.Action == AuditAction.SignIn);
        Assert.Equal("enrolment (password + TOTP)", signIn.Detail.Note);
        Assert.NotNull(signIn.Detail.Session);
        Assert.NotEqual(reset.Detail.Session, signIn.Detail.Session); // enrolment stage, then a full session

        _principal = link.User.PrincipalId;
        Assert.Equal(signIn.Detail.Session, await SessionOfNextActAsync(browser));
    }

    [Fact]
    public async Task Recovery_codes_issued_at_enrolment_and_made_anew_are_on_the_chain_with_the_session()
    {
        // New codes are a way into the account and end the earlier ones: the officer must see when, from where and in which session.
        using var staff = Staff();
        await staff.PasswordAsync(Establishment, Email, Password);
        var (totp, _) = await staff.TotpAsync(Totp.Code(_secret, _time));
        Assert.Equal("/", totp.Headers.Location?.ToString());
        var (made, html) = await staff.SubmitAsync("/account/recovery-codes", new Dictionary<string, string>());
        Assert.Equal(HttpStatusCode.OK, made.StatusCode);
        Assert.Contains("id=\"recovery-codes\"", html);

        var issued = (await EntriesOfAsync(_principal)).Where(e => e.Detail.Note == RecoveryCodesIssued).ToList();
        Assert.Equal(2, issued.Count); // at enrolment, and now
        Assert.All(issued, e => Assert.Equal(AuditAction.Administration, e.Action));
        Assert.Equal(await SessionOfNextActAsync(staff), issued[0].Detail.Session); // newest first
        Assert.Equal("127.0.0.1", issued[0].Detail.Source);
    }

    [Fact]
    public async Task A_throttled_sign_in_is_a_sign_in_failure_on_the_chain()
    {
        using var stuffer = Staff();
        for (var i = 0; i < 6; i++) await stuffer.PasswordAsync(Establishment, $"someone{i}@chu.example", "Summer2024!");
        var (throttled, _) = await stuffer.PasswordAsync(Establishment, Email, Password);
        Assert.Equal((HttpStatusCode)429, throttled.StatusCode);
        var failure = Assert.Single(await EntriesOfAsync(_principal), e => e.Action == AuditAction.SignInFailure);
        Assert.Equal("throttled", failure.Detail.Note);
        Assert.Equal(AuditOutcome.MinorFailure, failure.Outcome);
        Assert.Equal("127.0.0.1", failure.Detail.Source);
    }

    [Fact]
    public async Task A_right_password_on_an_account_without_a_second_factor_is_a_sign_in_failure_on_the_chain()
    {
        var link = await _server.Store.Accounts.AddAsync(_tenant, "halfway@chu.example", StaffRole.Nurse, null, null, "Half Way", CancellationToken.None);
        using (var browser = Staff())
        {
            // The password is set, the second factor never enrolled.
            var (set, _) = await browser.SubmitAsync("/account/enrol?token=" + Uri.EscapeDataString(link.Token),
                new Dictionary<string, string> { ["Token"] = link.Token, ["Password"] = Password, ["Confirm"] = Password });
            Assert.Equal(HttpStatusCode.Redirect, set.StatusCode);
        }
        using var staff = Staff();
        await staff.PasswordAsync(Establishment, "halfway@chu.example", Password);
        var failure = Assert.Single(await EntriesOfAsync(link.User.PrincipalId), e => e.Action == AuditAction.SignInFailure);
        Assert.Equal("password correct; no second factor enrolled", failure.Detail.Note);
    }
}

public sealed class SignInAuditTests_Sqlite() : SignInAuditTests(Engine.Sqlite);

public sealed class SignInAuditTests_Postgres() : SignInAuditTests(Engine.Postgres);
