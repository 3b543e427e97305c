// The security officer's path in a real headless Chromium: sign in with password and authenticator code, open the console
// from the navigation bar, tick the alert a guard containment raised and acknowledge it.
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public sealed class BrowserConsoleTests : IAsyncLifetime
{
    private const string Establishment = "chu-watch";
    private const string Password = "granite kestrel over 3 marshes";
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private Chromium _chromium = null!;
    private string _base = "";
    private readonly Dictionary<string, string> _secrets = [];

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite, configure: o => o with { Time = _time });
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        foreach (var (email, role) in new[] { ("officer@chu.example", StaffRole.SecurityOfficer), ("desk@chu.example", StaffRole.Secretary) })
        {
            var link = await _server.Store.Accounts.AddAsync(_tenant, email, role, null, null, "Staff " + email[..4], CancellationToken.None);
            using var enrol = new StaffClient(_server.BaseAddress);
            (_secrets[email], _) = await enrol.EnrolWithTotpAsync(link.Token, Password, _time);
            _time.Advance(TimeSpan.FromSeconds(30));
        }
        // A desk session reads a canary patient: the guard contains it at once and raises the alert the officer reviews.
        var canary = (await _server.Store.Guard.AddCanariesAsync(_server.Store.Records, _tenant, 1, CancellationToken.None))[0];
        using (var desk = await StaffClient.SignedInAsync(_server.BaseAddress, Establishment, "desk@chu.example", Password, _secrets["desk@chu.example"], _time))
        using (var read = await desk.Http.GetAsync($"/fhir/Patient/{canary}"))
        {
            Assert.Equal((System.Net.HttpStatusCode)423, read.StatusCode);
        }
        _base = $"http://localhost:{_server.BaseAddress.Port}";
        _chromium = await BrowserPages.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        await _chromium.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task The_security_officer_signs_in_opens_the_console_and_acknowledges_an_alert()
    {
        var alert = Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.GuardCanary);
        var page = await (await _chromium.Browser.NewContextAsync()).NewPageAsync();
        await page.GotoAsync(_base + "/account/signin");
        await BrowserPages.SignInWithTotpAsync(page, _base, Establishment, "officer@chu.example", Password, _secrets["officer@chu.example"], _time);

        await page.ClickAsync("#nav-security");
        await BrowserPages.ArriveAsync(page, _base + "/security");
        Assert.Contains("Canary patient read", await page.TextContentAsync($"tr[data-alert=\"{alert.Id}\"]"), StringComparison.Ordinal); // the kind by name, not its code
        await page.CheckAsync($"#alert-{alert.Id}");
        await page.ClickAsync("#acknowledge");
        await page.WaitForSelectorAsync("#done");
        Assert.Equal("1 alert acknowledged.", (await page.TextContentAsync("#done"))?.Trim());
        Assert.Equal(0, await page.Locator($"tr[data-alert=\"{alert.Id}\"]").CountAsync());
        Assert.DoesNotContain(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, CancellationToken.None), a => a.Id == alert.Id);
    }
}
