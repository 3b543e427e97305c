// The clinician's daily path in a real headless Chromium: sign in with password and authenticator code, find a patient
// from the home page, open the chart and read a result, an appointment and a prescription; then a patient outside her
// care, refused with the way to break the glass, opened after it; an appointment booked from the chart, cancelled with its reason;
// and one cancelled from her agenda.
using System.Globalization;
using Microsoft.Playwright;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public sealed class BrowserChartTests : IAsyncLifetime
{
    private const string Establishment = "chu-ward";
    private const string Password = "meadow copper under 5 lanterns";
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private VaubanServer _server = null!;
    private Chromium _chromium = null!;
    private string _base = "", _secret = "", _mine = "", _other = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite, configure: o => o with { Time = _time });
        var tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        var day = _time.GetUtcNow().AddDays(-3).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var doctor = await _server.CreateAsOperatorAsync(tenant, Samples.Practitioner(family: "Lemaire"));
        var colleague = await _server.CreateAsOperatorAsync(tenant, Samples.Practitioner(family: "Roussel", rpps: "10001234568"));
        _mine = await _server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Garnier", given: "Sylvie", nir: Samples.ValidNir("2650544109001")).Replace("\"gender\": \"male\"", "\"gender\": \"female\"", StringComparison.Ordinal));
        _other = await _server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Garnaud", nir: Samples.ValidNir("1800344109002"), gp: "Practitioner/" + colleague));
        await _server.CreateAsOperatorAsync(tenant, Samples.Encounter(_mine, doctor, day));
        await _server.CreateAsOperatorAsync(tenant, Samples.Observation("Patient/" + _mine, effective: day));
        await _server.CreateAsOperatorAsync(tenant, Samples.Appointment("Patient/" + _mine, "Practitioner/" + doctor, _time.GetUtcNow().AddDays(7).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        var link = await _server.Store.Accounts.AddAsync(tenant, "dr.lemaire@chu.example", StaffRole.Physician, doctor, null, "Dr Lemaire", CancellationToken.None);
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
    public async Task A_physician_signs_in_finds_her_patient_reads_the_chart_and_breaks_the_glass_for_another()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, "dr.lemaire@chu.example", Password, _secret, _time);

        await page.ClickAsync("#find-patient");
        await BrowserPages.ArriveAsync(page, _base + "/patients");
        await page.FillAsync("#family", "Garn");
        await page.ClickAsync("#search");
        await page.WaitForSelectorAsync("#results");
        // Her patient is listed; Dr Roussel's is not. The names she typed are nowhere in the address bar.
        Assert.Equal(1, await page.Locator("#results tbody tr").CountAsync());
        Assert.Equal("GARNIER Sylvie", (await page.Locator("#results tbody tr td a").First.TextContentAsync())?.Trim());
        Assert.DoesNotContain("Garn", page.Url, StringComparison.OrdinalIgnoreCase);

        await page.Locator("#results tbody tr td a").First.ClickAsync();
        await BrowserPages.ArriveAsync(page, $"{_base}/patients/{_mine}");
        Assert.Equal("GARNIER Sylvie", await page.TextContentAsync("#patient-name"));
        Assert.Contains("1.02 g/L", await page.TextContentAsync("#results"), StringComparison.Ordinal);
        Assert.Equal(1, await page.Locator("#appointments tbody tr").CountAsync());
        Assert.Equal(1, await page.Locator("#encounters tbody tr").CountAsync());
        Assert.Contains("LEMAIRE Claire", await page.TextContentAsync("#encounters"), StringComparison.Ordinal);

        // Another physician's patient, opened by id: refused, with the way to break the glass; opened once she has said why.
        await page.ClickAsync("#nav-patients");
        await BrowserPages.ArriveAsync(page, _base + "/patients");
        await page.FillAsync("#open-id", _other);
        await page.ClickAsync("#open");
        await BrowserPages.ArriveAsync(page, $"{_base}/patients/{_other}");
        Assert.Equal(0, await page.Locator("#patient-name").CountAsync());
        await page.ClickAsync("#break-the-glass");
        await BrowserPages.ArriveAsync(page, $"{_base}/patients/{_other}/break-the-glass");
        await page.SelectOptionAsync("#reason", new SelectOptionValue { Index = 1 });
        await page.FillAsync("#text", "Patient brought to the emergency room unconscious.");
        await page.ClickAsync("#open");
        await page.WaitForSelectorAsync("#granted");
        await page.ClickAsync("#continue");
        await BrowserPages.ArriveAsync(page, $"{_base}/patients/{_other}");
        Assert.Equal("GARNAUD Jean", await page.TextContentAsync("#patient-name"));
    }

    [Fact]
    public async Task Back_from_a_chart_opened_from_the_results_shows_the_results_again_without_asking_to_send_the_form_again()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, "dr.lemaire@chu.example", Password, _secret, _time);
        var sent = new List<IRequest>();
        page.Request += (_, request) => sent.Add(request);
        await page.GotoAsync(_base + "/patients");
        await page.FillAsync("#family", "Garn");
        await page.FillAsync("#identifier", "2 65 05 44 109 001");
        await page.ClickAsync("#search");
        await page.WaitForSelectorAsync("#results");
        // The POST was answered by a redirect: the results are a GET of a URL that holds a sealed token, no value typed.
        var results = page.Url;
        Assert.StartsWith(_base + "/patients?results=", results, StringComparison.Ordinal);
        Assert.DoesNotContain("Garn", results, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("44109", results, StringComparison.Ordinal);

        await page.Locator("#results tbody tr td a").First.ClickAsync();
        await BrowserPages.ArriveAsync(page, $"{_base}/patients/{_mine}");
        // The chart's request names no page it came from: no Referer, so neither the token nor any value goes with it.
        var chartRequest = sent.Last(r => r.Url == $"{_base}/patients/{_mine}");
        var headers = await chartRequest.AllHeadersAsync();
        Assert.False(headers.TryGetValue("referer", out var referer), "Referer: " + referer);

        // Back: the results again, by GET — no "Confirm form resubmission" page, no POST sent again.
        var posts = sent.Count(r => r.Method == "POST");
        var back = await page.GoBackAsync();
        Assert.NotNull(back);
        Assert.Equal("GET", back!.Request.Method);
        Assert.True(back.Ok, $"Back answered {back.Status}");
        Assert.Equal(results, page.Url);
        Assert.Equal("GARNIER Sylvie", (await page.Locator("#results tbody tr td a").First.TextContentAsync())?.Trim());
        Assert.Equal("Garn", await page.InputValueAsync("#family"));
        Assert.Equal(posts, sent.Count(r => r.Method == "POST"));
    }

    [Fact]
    public async Task A_physician_books_an_appointment_from_the_chart_and_cancels_it_saying_why()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, "dr.lemaire@chu.example", Password, _secret, _time);
        await page.GotoAsync($"{_base}/patients/{_mine}");
        Assert.Equal(1, await page.Locator("#appointments tbody tr").CountAsync());

        var date = ParisTime.Of(_time.GetUtcNow().AddDays(2)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        // The form is asked for: the chart alone does not search the establishment's directory.
        Assert.Equal(0, await page.Locator("#book-form").CountAsync());
        await page.ClickAsync("#open-booking");
        await page.WaitForSelectorAsync("#book-form");
        await page.FillAsync("#date", date);
        await page.FillAsync("#time", "09:15");
        await page.FillAsync("#minutes", "45");
        await page.FillAsync("#reason", "Consultation de contrôle");
        // With her, as her practitioner record, unless she chooses a colleague in the list.
        Assert.StartsWith("LEMAIRE Claire · ", (await page.Locator("#practitioner option:checked").TextContentAsync())?.Trim(), StringComparison.Ordinal);
        Assert.Equal(2, await page.Locator("#practitioner option[value]:not([value=''])").CountAsync());
        await page.ClickAsync("#book");
        await page.WaitForSelectorAsync("#done");
        Assert.Equal($"Booked {date} 09:15 (45 minutes) with LEMAIRE Claire.", (await page.TextContentAsync("#done"))?.Trim());
        Assert.Equal($"{_base}/patients/{_mine}", page.Url); // back on the chart by GET: a refresh books nothing again
        var row = page.Locator("#appointments tbody tr", new() { HasText = "Consultation de contrôle" });
        Assert.Contains($"{date} 09:15", await row.TextContentAsync(), StringComparison.Ordinal);

        // Folded under "Cancel…"; the reason is asked for: the browser does not send the cancel without it.
        Assert.False(await row.Locator("select").IsVisibleAsync());
        await row.Locator("summary", new() { HasText = "Cancel…" }).ClickAsync();
        await row.Locator("button", new() { HasText = "Cancel" }).ClickAsync();
        Assert.False(await row.Locator("select").EvaluateAsync<bool>("s => s.checkValidity()"));
        Assert.StartsWith("Booked", (await page.TextContentAsync("#done"))?.Trim(), StringComparison.Ordinal); // still the page as it was
        await row.Locator("select").SelectOptionAsync(new SelectOptionValue { Label = "The practitioner is at a meeting or training" });
        await row.Locator("input[name=CancelComment]").FillAsync("Congrès à Lyon");
        await row.Locator("button", new() { HasText = "Cancel" }).ClickAsync();
        await page.WaitForSelectorAsync("#done >> text=Cancelled");
        var cancelled = page.Locator("#appointments tbody tr", new() { HasText = "Consultation de contrôle" });
        Assert.Contains("Cancelled (The practitioner is at a meeting or training — Congrès à Lyon)", await cancelled.TextContentAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await cancelled.Locator("button").CountAsync());
    }

    [Fact]
    public async Task A_physician_cancels_an_appointment_from_her_agenda_saying_why()
    {
        var page = await BrowserPages.SignedInAsync(_chromium, _base, Establishment, "dr.lemaire@chu.example", Password, _secret, _time);
        var day = ParisTime.Of(_time.GetUtcNow().AddDays(7)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        await page.GotoAsync($"{_base}/appointments?day={day}");
        var row = page.Locator("#agenda tbody tr", new() { HasText = "GARNIER Sylvie" });
        Assert.Contains("Booked", await row.TextContentAsync(), StringComparison.Ordinal);

        // Folded under "Cancel…"; the reason is asked for: the browser does not send the cancel without it.
        Assert.False(await row.Locator("select").IsVisibleAsync());
        await row.Locator("summary", new() { HasText = "Cancel…" }).ClickAsync();
        await row.Locator("button", new() { HasText = "Cancel" }).ClickAsync();
        Assert.False(await row.Locator("select").EvaluateAsync<bool>("s => s.checkValidity()"));
        Assert.Equal(0, await page.Locator("#done").CountAsync());
        await row.Locator("select").SelectOptionAsync(new SelectOptionValue { Label = "The practitioner is away (personal reasons)" });
        await row.Locator("button", new() { HasText = "Cancel" }).ClickAsync();
        await page.WaitForSelectorAsync("#done >> text=Cancelled");
        Assert.StartsWith($"Cancelled the appointment of {day} ", (await page.TextContentAsync("#done"))?.Trim(), StringComparison.Ordinal);
        Assert.Equal($"{_base}/appointments?day={day}", page.Url); // back on the day by GET: a refresh cancels nothing again
        var cancelled = page.Locator("#agenda tbody tr", new() { HasText = "GARNIER Sylvie" });
        Assert.Contains("Cancelled", await cancelled.TextContentAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await cancelled.Locator("button").CountAsync());
    }
}
