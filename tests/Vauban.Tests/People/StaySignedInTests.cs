// A person typing in a page sends nothing to the server: the session notice warns before the idle time-out and "Stay signed in"
// (POST /account/session with the page's antiforgery token) counts as activity. On both engines: it keeps a live session only —
// it never revives one that has ended, never moves the absolute end, and does nothing without a session or from another site.
// And what the account pages say of sessions: why the sign-in page is shown, the home page's last proof in Paris time, why a
// re-authentication is asked, and "Use my passkey" only to an account that has one.
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class StaySignedInTests(Engine engine) : IAsyncLifetime
{
    private const string Establishment = "hospital-a";
    private const string Email = "claire.martin@chu.example";
    private const string Password = "tourmaline ferry quietly 42";
    private static readonly TimeSpan Idle = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan Absolute = TimeSpan.FromHours(1); // short here (12 h by default): fewer steps a test
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero));
    private VaubanServer _server = null!;
    private string _secret = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(engine, configure: o => o with { Time = _time, Accounts = new AccountOptions { AbsoluteTimeout = Absolute } });
        var tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        var link = await _server.Store.Accounts.AddAsync(tenant, Email, StaffRole.Physician, "pract-1", "org-1", "Dr Claire Martin", CancellationToken.None);
        using var browser = new StaffClient(_server.BaseAddress);
        (_secret, _) = await browser.EnrolWithTotpAsync(link.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<StaffClient> SignedInAsync() => StaffClient.SignedInAsync(_server.BaseAddress, Establishment, Email, Password, _secret, _time);

    private async Task<HttpStatusCode> FhirStatusAsync(StaffClient staff)
    {
        using var response = await staff.Http.GetAsync("/fhir/Patient?_count=1");
        return response.StatusCode;
    }

    /// <summary>"Stay signed in" as the page's script sends it: POST, the antiforgery token of a page in a header.</summary>
    private static async Task<(HttpStatusCode Status, string Body)> StayAsync(StaffClient staff, string pageHtml, string? origin = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/account/session");
        request.Headers.Add("RequestVerificationToken", StaffClient.Token(pageHtml));
        if (origin is not null) request.Headers.Add("Origin", origin);
        using var response = await staff.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static string Attribute(string html, string name) =>
        Regex.Match(html, $"id=\"session-notice\"[^>]* {name}=\"([^\"]*)\"") is { Success: true } m ? m.Groups[1].Value : throw new InvalidOperationException("no " + name);

    [Fact]
    public async Task The_page_is_told_when_its_session_ends_by_the_server_and_stay_signed_in_keeps_it_past_its_idle_end()
    {
        using var staff = await SignedInAsync();
        var (_, home) = await staff.GetAsync("/");
        // From the server's options and clock: the idle end, 2 minutes of warning, the script served from the site (CSP 'self').
        var endsIn = long.Parse(Attribute(home, "data-ends-in"), CultureInfo.InvariantCulture);
        Assert.InRange(endsIn, (long)Idle.TotalSeconds - 31, (long)Idle.TotalSeconds);
        Assert.Equal("120", Attribute(home, "data-warn-before"));
        Assert.Equal("15 minutes", Attribute(home, "data-idle"));
        Assert.Equal("true", Attribute(home, "data-renewable"));
        Assert.Contains("<script src=\"/account/session.js\"></script>", home, StringComparison.Ordinal);
        using (var script = await staff.Http.GetAsync("/account/session.js"))
        {
            Assert.Equal(HttpStatusCode.OK, script.StatusCode);
            Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        }

        // She types for 14 minutes, presses "Stay signed in", types 14 more: her session is still there, 28 minutes after the page.
        _time.Advance(TimeSpan.FromMinutes(14));
        var (kept, body) = await StayAsync(staff, home);
        Assert.Equal(HttpStatusCode.OK, kept);
        using (var answer = JsonDocument.Parse(body))
        {
            Assert.Equal((long)Idle.TotalSeconds, answer.RootElement.GetProperty("endsIn").GetInt64());
            Assert.True(answer.RootElement.GetProperty("renewable").GetBoolean());
        }
        _time.Advance(TimeSpan.FromMinutes(14));
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
    }

    [Fact]
    public async Task Keeping_a_session_never_revives_one_that_ended_idle()
    {
        using var staff = await SignedInAsync();
        var session = (await _server.Store.Sessions.FindAsync(staff.SessionCookie, CancellationToken.None))!;
        _time.Advance(Idle + TimeSpan.FromMinutes(1));
        // The copy in hand says live; the row, past its idle end, decides: not kept, not revived.
        Assert.Null(await _server.Store.Sessions.KeepAsync(session, CancellationToken.None));
        Assert.Null(await _server.Store.Sessions.FindAsync(staff.SessionCookie, CancellationToken.None));
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(staff));
    }

    [Fact]
    public async Task Keeping_a_session_never_moves_its_absolute_end()
    {
        using var staff = await SignedInAsync();
        var session = (await _server.Store.Sessions.FindAsync(staff.SessionCookie, CancellationToken.None))!;
        var absoluteEnd = session.CreatedAt + Absolute;
        while (_time.GetUtcNow() + TimeSpan.FromMinutes(10) < absoluteEnd)
        {
            _time.Advance(TimeSpan.FromMinutes(10));
            var end = await _server.Store.Sessions.KeepAsync(session, CancellationToken.None);
            Assert.NotNull(end);
            Assert.True(end.At <= absoluteEnd, "kept past the absolute end");
            Assert.Equal(end.At < absoluteEnd, end.Renewable);
        }
        // Within its last idle stretch the page is told activity no longer helps.
        var (_, home) = await staff.GetAsync("/");
        Assert.Equal("false", Attribute(home, "data-renewable"));
        _time.Advance(absoluteEnd - _time.GetUtcNow() + TimeSpan.FromSeconds(1));
        Assert.Null(await _server.Store.Sessions.KeepAsync(session, CancellationToken.None));
        var (status, _) = await StayAsync(staff, home);
        Assert.NotEqual(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(staff));
    }

    [Fact]
    public async Task Stay_signed_in_does_nothing_without_a_live_session_nor_from_another_site()
    {
        // Without a session (a page's token for no one): 401, nothing kept.
        using var stranger = new StaffClient(_server.BaseAddress);
        var (_, signIn) = await stranger.GetAsync("/account/signin");
        Assert.Equal(HttpStatusCode.Unauthorized, (await StayAsync(stranger, signIn)).Status);

        // Half signed in (password given, code not): not a session to keep.
        using var half = new StaffClient(_server.BaseAddress);
        await half.PasswordAsync(Establishment, Email, Password);
        var (_, totpPage) = await half.GetAsync("/account/signin/totp");
        Assert.Equal(HttpStatusCode.Unauthorized, (await StayAsync(half, totpPage)).Status);

        // Without the page's token, or from another site's page: refused, and the idle end does not move.
        using var staff = await SignedInAsync();
        var (_, home) = await staff.GetAsync("/");
        _time.Advance(TimeSpan.FromMinutes(10));
        using (var bare = await staff.Http.PostAsync("/account/session", null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bare.StatusCode);
        }
        Assert.Equal(HttpStatusCode.Forbidden, (await StayAsync(staff, home, "https://evil.example")).Status);

        // Ended while the page was open: its token no longer fits; refused, and the session stays ended.
        _time.Advance(Idle + TimeSpan.FromMinutes(1));
        Assert.NotEqual(HttpStatusCode.OK, (await StayAsync(staff, home)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(staff));

        // Not a page to open.
        using var other = await SignedInAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync("/account/session")).Response.StatusCode);
    }

    [Fact]
    public async Task The_sign_in_page_says_why_she_is_there_after_a_sign_out_and_after_an_idle_end()
    {
        using var staff = await SignedInAsync();
        var (signedOut, _) = await staff.SubmitAsync("/", new Dictionary<string, string>(), action: "/account/signout");
        Assert.Equal("/account/signin?ended=signout", signedOut.Headers.Location?.ToString());
        var (_, page) = await staff.GetAsync(signedOut.Headers.Location!.ToString());
        Assert.Equal("You are signed out.", StaffClient.ById(page, "ended"));

        using var idle = await SignedInAsync();
        _time.Advance(Idle + TimeSpan.FromMinutes(1));
        var (sent, _) = await idle.GetAsync("/patients");
        Assert.Equal("/account/signin?returnUrl=%2Fpatients&ended=idle", sent.Headers.Location?.ToString());
        var (_, told) = await idle.GetAsync(sent.Headers.Location!.ToString());
        Assert.Equal("Your session ended after 15 minutes without activity.", StaffClient.ById(told, "ended"));
        Assert.DoesNotContain(Email, told, StringComparison.OrdinalIgnoreCase);

        // A first visit says nothing; a made-up reason neither.
        using var fresh = new StaffClient(_server.BaseAddress);
        Assert.Null(StaffClient.ById((await fresh.GetAsync("/account/signin")).Html, "ended"));
        Assert.Null(StaffClient.ById((await fresh.GetAsync("/account/signin?ended=%3Cb%3E")).Html, "ended"));
    }

    [Fact]
    public async Task The_home_page_gives_the_last_proof_of_both_factors_in_Paris_time()
    {
        using var staff = await SignedInAsync();
        var session = (await _server.Store.Sessions.FindAsync(staff.SessionCookie, CancellationToken.None))!;
        var (_, home) = await staff.GetAsync("/");
        var expected = ParisTime.Of(session.AuthenticatedAt!.Value).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " Paris time";
        Assert.Equal(expected, StaffClient.ById(home, "last-proof"));
        Assert.DoesNotContain("UTC", StaffClient.ById(home, "last-proof"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reauthentication_says_what_it_is_for_and_offers_no_passkey_to_an_account_without_one()
    {
        using var staff = await SignedInAsync();
        var (_, page) = await staff.GetAsync("/account/reauth?returnUrl=%2Faccount%2Frecovery-codes");
        Assert.Contains("making new recovery codes", StaffClient.ById(page, "reauth-why"), StringComparison.Ordinal);
        Assert.Contains("a few minutes", StaffClient.ById(page, "reauth-rule"), StringComparison.Ordinal);
        Assert.DoesNotContain("passkey-reauth", page, StringComparison.Ordinal);
        Assert.Contains("id=\"password\"", page, StringComparison.Ordinal);

        var (_, guarded) = await staff.GetAsync("/account/reauth?returnUrl=%2Fpatients");
        Assert.Contains("the guard asks", StaffClient.ById(guarded, "reauth-why"), StringComparison.Ordinal);
        var (_, glass) = await staff.GetAsync("/account/reauth?returnUrl=%2Fpatients%2Fabc%2Fbreak-the-glass");
        Assert.Contains("break-the-glass", StaffClient.ById(glass, "reauth-why"), StringComparison.Ordinal);

        // A wrong code: the page shown again offers no passkey either.
        var (_, wrong) = await staff.SubmitAsync("/account/reauth?returnUrl=%2F", new Dictionary<string, string> { ["Password"] = Password, ["Code"] = "000000", ["ReturnUrl"] = "/" });
        Assert.DoesNotContain("passkey-reauth", wrong, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_account_list_counts_each_accounts_signed_in_sessions_under_its_stamp_now()
    {
        var tenant = (await _server.Store.Tenants.FindAsync(Establishment, CancellationToken.None))!;
        const string other = "paul.durand@chu.example";
        await _server.Store.Accounts.AddAsync(tenant, other, StaffRole.Nurse, null, "org-1", "Paul Durand", CancellationToken.None);
        async Task<int> SessionsAsync(string email) =>
            (await _server.Store.Accounts.ListAsync(tenant, CancellationToken.None)).Single(a => a.Email == email).Sessions;
        var enrolled = await SessionsAsync(Email); // the enrolment's own, never signed out
        using var first = await SignedInAsync();
        using var second = await SignedInAsync();
        // Halfway (password only): not a session the list counts.
        using var halfway = new StaffClient(_server.BaseAddress);
        await halfway.PasswordAsync(Establishment, Email, Password);
        Assert.Equal(enrolled + 2, await SessionsAsync(Email));
        Assert.Equal(0, await SessionsAsync(other));
        // A lock changes the stamp and ends the sessions: none is counted, nor after the unlock.
        Assert.True(await _server.Store.Accounts.LockAsync(tenant, Email, CancellationToken.None));
        Assert.Equal(0, await SessionsAsync(Email));
        Assert.True(await _server.Store.Accounts.UnlockAsync(tenant, Email, CancellationToken.None));
        Assert.Equal(0, await SessionsAsync(Email));
        using var again = await SignedInAsync();
        Assert.Equal(1, await SessionsAsync(Email));
    }
}

public sealed class StaySignedInTests_Sqlite() : StaySignedInTests(Engine.Sqlite);

public sealed class StaySignedInTests_Postgres() : StaySignedInTests(Engine.Postgres);
