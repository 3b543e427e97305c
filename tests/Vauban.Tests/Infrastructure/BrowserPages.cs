// What the browser tests share: Debian's Chromium launched headless through Playwright (no browser is downloaded), and a
// wait for a page that does not lose navigations that already happened.
using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Vauban.Tests.Infrastructure;

public static class BrowserPages
{
    public static async Task<Chromium> LaunchAsync()
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        return new Chromium(playwright, browser);
    }

    /// <summary>
    /// Waits until the page is at <paramref name="url"/> (a glob: <c>**</c> any characters, <c>*</c> any but '/') and its
    /// document is parsed. Playwright's own waits lost navigations that had happened: the wait for <c>load</c> timed out
    /// twice after the page had loaded (load at 2.7 and 2.9 s), and then <c>WaitForURLAsync</c> with <c>Commit</c> once
    /// after the sign-out's redirect had been navigated and loaded (navigated at 3.7 s, the wait given up at 30 s; stop 23).
    /// So this polls the page's URL, which the frame's navigated events keep, and then asks the document itself.
    /// </summary>
    public static async Task ArriveAsync(IPage page, string url)
    {
        var pattern = new Regex("^" + string.Join(".*", url.Split("**").Select(part => string.Join("[^/]*", part.Split('*').Select(Regex.Escape)))) + "$");
        var waited = Stopwatch.StartNew();
        while (!pattern.IsMatch(page.Url))
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException($"The page stayed at {page.Url}, not {url}, for 30 s.");
            await Task.Delay(25);
        }
        await page.WaitForFunctionAsync("() => document.readyState !== 'loading'");
    }

    /// <summary>A new browser context's page, signed in as <paramref name="email"/> (password and authenticator code) from the
    /// site's root, which sends a visitor to the sign-in page; on the home page when it returns.</summary>
    public static async Task<IPage> SignedInAsync(Chromium chromium, string baseUrl, string establishment, string email, string password, string secret, ManualTime time)
    {
        ArgumentNullException.ThrowIfNull(chromium);
        var page = await (await chromium.Browser.NewContextAsync()).NewPageAsync();
        await page.GotoAsync(baseUrl + "/");
        await ArriveAsync(page, "**/account/signin");
        await SignInWithTotpAsync(page, baseUrl, establishment, email, password, secret, time);
        return page;
    }

    /// <summary>From the sign-in page, signs in with password and authenticator code and waits for the home page; the clock
    /// then moves to the next time step, since a code is accepted once.</summary>
    public static async Task SignInWithTotpAsync(IPage page, string baseUrl, string establishment, string email, string password, string secret, ManualTime time)
    {
        await page.FillAsync("#establishment", establishment);
        await page.FillAsync("#email", email);
        await page.FillAsync("#password", password);
        await page.ClickAsync("#signin");
        await ArriveAsync(page, "**/account/signin/totp");
        await page.FillAsync("#code", Totp.Code(secret, time));
        await page.ClickAsync("#verify");
        await ArriveAsync(page, baseUrl + "/");
        time.Advance(TimeSpan.FromSeconds(30));
    }
}

/// <summary>A launched Chromium and the Playwright driving it, closed together.</summary>
public sealed class Chromium(IPlaywright playwright, IBrowser browser) : IAsyncDisposable
{
    public IBrowser Browser { get; } = browser;

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        playwright.Dispose();
    }
}
