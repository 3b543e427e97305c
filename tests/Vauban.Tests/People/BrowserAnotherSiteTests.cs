// A page of a sibling host (evil.app.localhost beside vauban.app.localhost: one site, app.localhost) in a real headless Chromium:
// its images of /fhir searches go with the session cookie (SameSite=Strict lets a same-site request carry it) and Chromium says
// where they came from (Sec-Fetch-Site: same-site); Vauban runs none of them in the signed-in person's name. A link followed
// from that page opens a page that shows no record, whose own link opens the chart.
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Playwright;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public sealed class BrowserAnotherSiteTests : IAsyncLifetime
{
    private const string Establishment = "chu-sibling";
    private const string Password = "orchard slate beyond 4 towers";
    private const string Email = "facturation@chu.example";
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private Chromium _chromium = null!;
    private string _base = "", _secret = "", _patient = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite, configure: o => o with { Time = _time });
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        _patient = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Premier", given: "Anne", nir: Samples.ValidNir("2800344109001")));
        for (var i = 1; i < 30; i++)
        {
            await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Suivant" + (char)('a' + i % 26), given: "Paul", nir: Samples.ValidNir($"1800344{100000 + i}")));
        }
        _secret = await StaffClient.EnrolledAsync(_server, _tenant, Email, StaffRole.Billing, null, Password, _time);
        // *.localhost is the loopback in Chromium, and a secure context: the __Host- cookie is set over plain http there.
        _base = $"http://vauban.app.localhost:{_server.BaseAddress.Port}";
        _chromium = await BrowserPages.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        await _chromium.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_sibling_hosts_page_reads_nothing_in_her_name_and_its_link_opens_the_chart_only_from_here()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, Email, Password, _secret, _time);
        var entries = await EntriesAsync();

        // The other host's page, from a web server of its own on the loopback, as an intranet's would be.
        var html = $"""
            <!DOCTYPE html><html><body>
            <img src="{_base}/fhir/Patient?_count=50"><img src="{_base}/fhir/Patient?_count=50&amp;_offset=50">
            <a id="go" href="{_base}/patients/{_patient}">the chart</a>
            </body></html>
            """;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var intranet = builder.Build();
        intranet.MapGet("/index.html", () => Microsoft.AspNetCore.Http.Results.Content(html, "text/html; charset=utf-8"));
        await intranet.StartAsync();
        var sibling = $"http://evil.app.localhost:{new Uri(intranet.Urls.First()).Port}";
        // The browser sends both (ORB then keeps whatever answers from the page: they end as failed requests, with no response).
        var sent = new System.Collections.Concurrent.ConcurrentQueue<string>();
        page.Context.Request += (_, request) =>
        {
            if (request.Url.StartsWith(_base + "/fhir/", StringComparison.Ordinal)) sent.Enqueue(request.Url);
        };
        await page.GotoAsync(sibling + "/index.html");
        await page.WaitForFunctionAsync("() => [...document.images].every(i => i.complete)");
        Assert.Equal(2, sent.Count);
        Assert.Equal(entries, await EntriesAsync()); // nothing audited in her name: nothing was read (without the check, 50 patients each)

        await page.ClickAsync("#go");
        await BrowserPages.ArriveAsync(page, $"{_base}/patients/{_patient}");
        Assert.Equal("Opened from another site", (await page.TextContentAsync("#status"))?.Trim());
        Assert.DoesNotContain("PREMIER", await page.ContentAsync(), StringComparison.Ordinal);
        await page.ClickAsync("#continue");
        await page.WaitForSelectorAsync("#patient-name");
        Assert.StartsWith("PREMIER Anne", (await page.TextContentAsync("#patient-name"))?.Trim(), StringComparison.Ordinal);

        // Her own search from here: neither stepped up nor suspended (the guard weighed none of the sibling's 60 patients).
        var own = await page.GotoAsync($"{_base}/fhir/Patient?_count=10");
        Assert.Equal(200, own!.Status);
    }

    private async Task<long> EntriesAsync() => (await _server.Store.AuditLog.VerifyAsync(_tenant.Id, null, CancellationToken.None)).Entries;
}
