// The front desk's admission in a real headless Chromium: sign in, find no patient, register one — a namesake born the same day is
// shown first and confirmed as another person — land on the new patient's chart, and complete the contact details from it.
using Microsoft.Playwright;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public sealed class BrowserRegisterTests : IAsyncLifetime
{
    private const string Establishment = "chu-accueil";
    private const string Password = "copper kite over 5 hills";
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private VaubanServer _server = null!;
    private Chromium _chromium = null!;
    private string _base = "", _secret = "", _namesake = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite, configure: o => o with { Time = _time });
        var tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        _namesake = await _server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Roux", given: "Louis", birthDate: "1990-04-15", nir: Samples.ValidNir("1900444109001")));
        _secret = await StaffClient.EnrolledAsync(_server, tenant, "accueil@chu.example", StaffRole.Secretary, null, Password, _time);
        _base = $"http://localhost:{_server.BaseAddress.Port}";
        _chromium = await BrowserPages.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        await _chromium.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task The_front_desk_registers_a_patient_after_checking_a_namesake_and_completes_the_contact_details_from_the_new_chart()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, "accueil@chu.example", Password, _secret, _time);
        await page.GotoAsync($"{_base}/patients");
        await page.ClickAsync("#register-link");
        await BrowserPages.ArriveAsync(page, $"{_base}/patients/new");

        await page.FillAsync("#family", "Roux");
        await page.FillAsync("#given", "Louis Marcel");
        await page.SelectOptionAsync("#sex", "male");
        await page.FillAsync("#birth-date", "1990-04-15");
        await page.FillAsync("#nir", Samples.ValidNir("1900444109002"));
        await page.ClickAsync("#register");
        await page.WaitForSelectorAsync("#namesakes");
        Assert.Equal(1, await page.Locator($"#namesakes tr[data-ref='Patient/{_namesake}']").CountAsync());
        Assert.Equal("Louis Marcel", await page.InputValueAsync("#given")); // the form as typed

        await page.CheckAsync("#another-person");
        await page.ClickAsync("#register");
        await page.WaitForSelectorAsync("#done");
        Assert.Equal("Registered ROUX Louis, born 1990-04-15.", (await page.TextContentAsync("#done"))?.Trim());
        Assert.Equal("ROUX Louis Marcel", (await page.TextContentAsync("#patient-name"))?.Trim());
        Assert.DoesNotContain(_namesake, page.Url, StringComparison.Ordinal); // a new record, not the namesake's

        // The patient gives a phone number and an address at the desk: "Contact details…" from the chart, and back to it.
        var chart = page.Url;
        await page.ClickAsync("#contact-link");
        await BrowserPages.ArriveAsync(page, chart + "/contact");
        Assert.Equal("", await page.InputValueAsync("#phone"));
        await page.FillAsync("#phone", "06 70 80 90 10");
        await page.FillAsync("#street", "Résidence Les Pins\n8 allée des Mouettes");
        await page.FillAsync("#postal-code", "44500");
        await page.FillAsync("#city", "La Baule");
        await page.ClickAsync("#save");
        await page.WaitForSelectorAsync("#done");
        Assert.Equal("Contact details of ROUX Louis Marcel saved.", (await page.TextContentAsync("#done"))?.Trim());
        Assert.Equal(chart, page.Url);
    }
}
