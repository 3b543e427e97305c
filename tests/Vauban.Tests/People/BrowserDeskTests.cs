// The front desk in a real headless Chromium: a secretary of the cardiology service opens the agenda, chooses a physician of her
// service and reads that physician's day; she books a patient with that physician at a time already taken, is warned of the
// overlap with what she typed kept, and books anyway.
using System.Globalization;
using Microsoft.Playwright;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public sealed class BrowserDeskTests : IAsyncLifetime
{
    private const string Establishment = "chu-desk";
    private const string Password = "meadow copper under 5 lanterns";
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private VaubanServer _server = null!;
    private Chromium _chromium = null!;
    private string _base = "", _secret = "", _doctor = "", _patient = "", _day = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite, configure: o => o with { Time = _time });
        var tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        var cardio = await _server.CreateAsOperatorAsync(tenant, """{"resourceType":"Organization","name":"Cardiologie"}""");
        _doctor = await _server.CreateAsOperatorAsync(tenant, Samples.Practitioner(family: "Lemaire"));
        await _server.CreateAsOperatorAsync(tenant, Samples.Practitioner(family: "Roussel", rpps: "10001234568"));
        await _server.CreateAsOperatorAsync(tenant, $$$"""
            {"resourceType":"PractitionerRole","active":true,"practitioner":{"reference":"Practitioner/{{{_doctor}}}"},
             "organization":{"reference":"Organization/{{{cardio}}}"},"specialty":[{"text":"Cardiologie"}]}
            """);
        var booked = await _server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Garnier", given: "Sylvie", nir: Samples.ValidNir("2650544109001")));
        _patient = await _server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Garnaud", nir: Samples.ValidNir("1800344109002")));
        var day = ParisTime.DateOf(_time.GetUtcNow().AddDays(2));
        _day = day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var start = ParisTime.At(day, new TimeOnly(10, 0))!.Value;
        await _server.CreateAsOperatorAsync(tenant, Samples.Appointment("Patient/" + booked, "Practitioner/" + _doctor, start.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))
            .Replace("\"end\": \"" + start.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) + "\"",
                "\"end\": \"" + start.AddMinutes(30).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) + "\"", StringComparison.Ordinal));
        var link = await _server.Store.Accounts.AddAsync(tenant, "cardio.desk@chu.example", StaffRole.Secretary, null, cardio, "Accueil cardiologie", CancellationToken.None);
        using (var enrol = new StaffClient(_server.BaseAddress)) (_secret, _) = await enrol.EnrolWithTotpAsync(link.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
        _base = $"http://localhost:{_server.BaseAddress.Port}";
        _chromium = await BrowserPages.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        await _chromium.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task The_desk_chooses_a_physician_of_her_service_and_reads_her_day()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, "cardio.desk@chu.example", Password, _secret, _time);
        await page.ClickAsync("#nav-agenda");
        await BrowserPages.ArriveAsync(page, _base + "/appointments");
        Assert.Contains("Choose the practitioner", await page.TextContentAsync("#choose-practitioner"), StringComparison.Ordinal);
        // Her service's physician only: not Dr Roussel, who is of no service of hers.
        Assert.Equal(1, await page.Locator("#practitioner option[value]:not([value=''])").CountAsync());
        await page.SelectOptionAsync("#practitioner", new SelectOptionValue { Value = _doctor });
        await page.FillAsync("#day", _day);
        await page.ClickAsync("#show");
        await page.WaitForSelectorAsync("#agenda");
        Assert.Equal("LEMAIRE Claire", (await page.TextContentAsync("#shown-practitioner"))?.Trim());
        var row = page.Locator("#agenda tbody tr", new() { HasText = "GARNIER Sylvie" });
        Assert.Contains("10:00", await row.TextContentAsync(), StringComparison.Ordinal);
        Assert.Equal("1", (await page.TextContentAsync("#total"))?.Trim());
        // The next day keeps the physician chosen.
        await page.ClickAsync("#next-day");
        await page.WaitForSelectorAsync("#no-appointments");
        Assert.Equal("LEMAIRE Claire", (await page.TextContentAsync("#shown-practitioner"))?.Trim());
    }

    [Fact]
    public async Task The_desk_is_warned_of_an_overlap_and_books_anyway()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, "cardio.desk@chu.example", Password, _secret, _time);
        await page.GotoAsync($"{_base}/patients/{_patient}?book=1");
        await page.WaitForSelectorAsync("#book-form");
        await page.FillAsync("#date", _day);
        await page.FillAsync("#time", "10:15");
        await page.FillAsync("#reason", "Bilan");
        await page.SelectOptionAsync("#practitioner", new SelectOptionValue { Value = _doctor });
        await page.ClickAsync("#book");
        await page.WaitForSelectorAsync("#overlap");
        Assert.Contains($"{_day} 10:00–10:30, GARNIER Sylvie with the same practitioner", await page.TextContentAsync("#overlap"), StringComparison.Ordinal);
        Assert.Equal(0, await page.Locator("#appointments tbody tr").CountAsync());
        // What she typed is still in the form.
        Assert.Equal("10:15", await page.InputValueAsync("#time"));
        Assert.Equal("Bilan", await page.InputValueAsync("#reason"));
        Assert.Equal(_doctor, await page.InputValueAsync("#practitioner"));
        await page.ClickAsync("#book-anyway");
        await page.WaitForSelectorAsync("#done");
        Assert.Equal($"Booked {_day} 10:15 (20 minutes) with LEMAIRE Claire.", (await page.TextContentAsync("#done"))?.Trim());
        Assert.Equal(1, await page.Locator("#appointments tbody tr").CountAsync());
    }
}
