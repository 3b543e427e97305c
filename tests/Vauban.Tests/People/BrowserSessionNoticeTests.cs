// The session notice in a real headless Chromium (as BrowserSignInTests): the page's script, served under the site's CSP, shows
// "Your session ends in …" when the idle end is near, "Stay signed in" keeps the session past the end the page was given, and the
// notice says when the session has ended — then the sign-in page says why. The idle time-out is 40 seconds here (15 minutes by
// default) so that the notice's 2 minutes shrink to 20 seconds of the test's real time; the server's clock is the test's.
using Microsoft.Playwright;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public sealed class BrowserSessionNoticeTests : IAsyncLifetime
{
    private const string Establishment = "chu-notice";
    private const string Email = "paul.notice@chu.example";
    private const string Password = "granite lantern over 7 rivers";
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(40);
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero));
    private VaubanServer _server = null!;
    private Chromium _chromium = null!;
    private string _base = "";
    private string _secret = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite, configure: o => o with { Time = _time, Accounts = new AccountOptions { IdleTimeout = Idle } });
        var tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        _secret = await StaffClient.EnrolledAsync(_server, tenant, Email, StaffRole.Physician, null, Password, _time);
        _base = $"http://localhost:{_server.BaseAddress.Port}";
        _chromium = await BrowserPages.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        await _chromium.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task The_notice_warns_before_the_idle_end_stay_signed_in_keeps_the_session_and_an_ended_session_is_said()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, Email, Password, _secret, _time);
        var refused = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Text.Contains("Content Security Policy", StringComparison.Ordinal) || message.Text.Contains("Uncaught", StringComparison.Ordinal)) refused.Add(message.Text);
        };
        page.PageError += (_, error) => refused.Add(error);
        // A page opened now is told the whole idle time (the sign-in helper moved the clock 30 s: this load is activity).
        _time.Advance(TimeSpan.FromSeconds(1));
        await page.GotoAsync(_base + "/");
        Assert.False(await page.IsVisibleAsync("#session-notice"));

        // Half of 40 s before the end (2 minutes by default), in the browser's own time: the warning and its button.
        await page.WaitForSelectorAsync("#session-notice", new PageWaitForSelectorOptions { State = WaitForSelectorState.Visible, Timeout = 30_000 });
        Assert.Matches("^Your session ends in \\d+ seconds? without activity\\.$", await page.TextContentAsync("#session-notice-text"));
        Assert.True(await page.IsVisibleAsync("#stay-signed-in"));

        // By the server's clock, 35 of the 40 seconds pass; she stays signed in: the notice goes, and 35 seconds more (past the end the
        // page was given) the session is still hers.
        _time.Advance(TimeSpan.FromSeconds(35));
        await page.ClickAsync("#stay-signed-in");
        await page.WaitForSelectorAsync("#session-notice", new PageWaitForSelectorOptions { State = WaitForSelectorState.Hidden, Timeout = 10_000 });
        _time.Advance(TimeSpan.FromSeconds(35));
        await page.GotoAsync(_base + "/");
        Assert.Equal(_base + "/", page.Url);
        Assert.True(await page.IsVisibleAsync("#who"));

        // 29 seconds after that page (the server writes activity at most every 30 s), a page is told 11 seconds are left: the
        // notice shows at once, then says the session has ended, and the button goes.
        _time.Advance(TimeSpan.FromSeconds(29));
        await page.GotoAsync(_base + "/");
        await page.WaitForSelectorAsync("#session-notice.ended", new PageWaitForSelectorOptions { State = WaitForSelectorState.Visible, Timeout = 30_000 });
        var said = await page.TextContentAsync("#session-notice-text");
        Assert.StartsWith("Your session has ended after 40 seconds without activity.", said, StringComparison.Ordinal);
        Assert.False(await page.IsVisibleAsync("#stay-signed-in"));

        // And it has, on the server: the next page is the sign-in page, which says why.
        _time.Advance(TimeSpan.FromSeconds(12));
        await page.GotoAsync(_base + "/patients");
        await BrowserPages.ArriveAsync(page, "**/account/signin?returnUrl=*");
        Assert.Equal("Your session ended after 40 seconds without activity.", await page.TextContentAsync("#ended"));
        Assert.Empty(refused); // no script refused by the Content-Security-Policy, no script error
    }
}
