// A nurse's round in a real headless Chromium: sign in, open her patient's chart, record vital signs with a decimal comma,
// see them among the results; a value typed in the wrong unit is refused with the form as she typed it.
using System.Globalization;
using Microsoft.Playwright;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public sealed class BrowserVitalsTests : IAsyncLifetime
{
    private const string Establishment = "chu-round";
    private const string Password = "lantern moss beside 7 rivers";
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private VaubanServer _server = null!;
    private Chromium _chromium = null!;
    private string _base = "", _secret = "", _patient = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite, configure: o => o with { Time = _time });
        var tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        var nurse = await _server.CreateAsOperatorAsync(tenant, Samples.Practitioner(family: "Perrin"));
        _patient = await _server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Morel", given: "Anne", nir: Samples.ValidNir("2650544109001")));
        await _server.CreateAsOperatorAsync(tenant, Samples.Encounter(_patient, nurse, _time.GetUtcNow().AddHours(-5).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        _secret = await StaffClient.EnrolledAsync(_server, tenant, "perrin@chu.example", StaffRole.Nurse, nurse, Password, _time);
        _base = $"http://localhost:{_server.BaseAddress.Port}";
        _chromium = await BrowserPages.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        await _chromium.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task A_nurse_records_vital_signs_from_the_chart_and_sees_them_among_the_results()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, "perrin@chu.example", Password, _secret, _time);
        await page.GotoAsync($"{_base}/patients/{_patient}");
        await page.ClickAsync("#record-vitals");
        await BrowserPages.ArriveAsync(page, $"{_base}/patients/{_patient}/vitals");
        Assert.Equal("MOREL Anne", await page.TextContentAsync("#patient-name"));

        // A temperature typed in Fahrenheit: refused, nothing recorded, the form as typed.
        await page.FillAsync("#systolic", "118");
        await page.FillAsync("#diastolic", "76");
        await page.FillAsync("#temperature", "99,1");
        await page.ClickAsync("#record");
        await page.WaitForSelectorAsync("#error");
        Assert.Contains("Temperature is between 30 and 45 °C", await page.TextContentAsync("#error"), StringComparison.Ordinal);
        Assert.Equal("118", await page.InputValueAsync("#systolic"));

        await page.FillAsync("#temperature", "37,2");
        await page.FillAsync("#oxygensaturation", "97");
        await page.ClickAsync("#record");
        await page.WaitForSelectorAsync("#done");
        Assert.Equal($"{_base}/patients/{_patient}", page.Url); // back on the chart by GET: a refresh records nothing again
        Assert.StartsWith("Recorded temperature 37.2 °C, oxygen saturation 97 %, blood pressure 118/76 mmHg", (await page.TextContentAsync("#done"))?.Trim(), StringComparison.Ordinal);
        var results = await page.TextContentAsync("#results");
        Assert.Contains("37.2", results, StringComparison.Ordinal);
        Assert.Contains("118", results, StringComparison.Ordinal);
        Assert.Equal(3, await page.Locator("#results tbody tr").CountAsync());
    }
}
