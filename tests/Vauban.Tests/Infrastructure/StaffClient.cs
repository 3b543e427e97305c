// A staff member's browser without the browser: an HttpClient that keeps cookies (including Secure
// ones over http://127.0.0.1, which CookieContainer would not send), reads antiforgery tokens from
// forms and walks the sign-in and enrolment pages. Also a settable clock and RFC 6238 codes.
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Vauban.Access;

namespace Vauban.Tests.Infrastructure;

public sealed partial class StaffClient : IDisposable
{
    private readonly CookieJar _jar;

    public StaffClient(Uri baseAddress, IPAddress? from = null)
    {
        var sockets = new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false };
        if (from is not null)
        {
            // Another source address on the loopback network (all of 127/8 is local on Linux).
            sockets.ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(from, 0));
                await socket.ConnectAsync(context.DnsEndPoint.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            };
        }
        _jar = new CookieJar { InnerHandler = sockets };
        Http = new HttpClient(_jar) { BaseAddress = baseAddress };
    }

    public HttpClient Http { get; }

    public IDictionary<string, string> Cookies => _jar.Cookies;

    public string? SessionCookie => _jar.Cookies.TryGetValue("__Host-vauban-session", out var v) ? v : null;

    public List<string> SetCookieHeaders => _jar.SetCookieHeaders;

    public void Dispose() => Http.Dispose();

    public async Task<(HttpResponseMessage Response, string Html)> GetAsync(string url)
    {
        var response = await Http.GetAsync(url);
        return (response, await response.Content.ReadAsStringAsync());
    }

    /// <summary>GETs <paramref name="formPage"/>, then POSTs the fields to <paramref name="action"/> (default: the same page) with its antiforgery token.</summary>
    public async Task<(HttpResponseMessage Response, string Html)> SubmitAsync(string formPage, IDictionary<string, string> fields, string? action = null, bool withToken = true)
    {
        var (_, html) = await GetAsync(formPage);
        var form = new Dictionary<string, string>(fields);
        if (withToken) form["__RequestVerificationToken"] = Token(html);
        var response = await Http.PostAsync(action ?? formPage, new FormUrlEncodedContent(form));
        return (response, await response.Content.ReadAsStringAsync());
    }

    public static string Token(string html) =>
        TokenPattern().Match(html) is { Success: true } m ? WebUtility.HtmlDecode(m.Groups[1].Value) : throw new InvalidOperationException("no antiforgery token on the page");

    /// <summary>The value of the form field named <paramref name="name"/> (a hidden input), or null.</summary>
    public static string? FieldValue(string html, string name) =>
        new Regex($"name=\"{Regex.Escape(name)}\" value=\"([^\"]*)\"").Match(html) is { Success: true } m ? WebUtility.HtmlDecode(m.Groups[1].Value) : null;

    public static string? ById(string html, string id) =>
        new Regex($"id=\"{id}\"[^>]*>(.*?)</", RegexOptions.Singleline).Match(html) is { Success: true } m ? WebUtility.HtmlDecode(m.Groups[1].Value).Trim() : null;

    public Task<(HttpResponseMessage Response, string Html)> PasswordAsync(string establishment, string email, string password) =>
        SubmitAsync("/account/signin", new Dictionary<string, string> { ["Establishment"] = establishment, ["Email"] = email, ["Password"] = password });

    public Task<(HttpResponseMessage Response, string Html)> TotpAsync(string code) =>
        SubmitAsync("/account/signin/totp", new Dictionary<string, string> { ["Code"] = code });

    /// <summary>Follows an enrolment link: sets the password, enrols TOTP, returns the authenticator key and the recovery codes.</summary>
    public async Task<(string Secret, IReadOnlyList<string> RecoveryCodes)> EnrolWithTotpAsync(string token, string password, TimeProvider time)
    {
        var (set, _) = await SubmitAsync("/account/enrol?token=" + Uri.EscapeDataString(token),
            new Dictionary<string, string> { ["Token"] = token, ["Password"] = password, ["Confirm"] = password });
        if (set.StatusCode != HttpStatusCode.Redirect) throw new InvalidOperationException("password not accepted: " + (int)set.StatusCode);
        var (_, page) = await GetAsync("/account/enrol/totp");
        var secret = ById(page, "secret")!.Replace(" ", "", StringComparison.Ordinal);
        var (enrolled, _) = await SubmitAsync("/account/enrol/totp", new Dictionary<string, string> { ["Code"] = Totp.Code(secret, time) });
        if (enrolled.Headers.Location?.ToString() != "/account/recovery-codes") throw new InvalidOperationException("TOTP not enrolled");
        var (_, codesPage) = await GetAsync("/account/recovery-codes");
        var codes = CodePattern().Matches(codesPage).Select(m => m.Groups[1].Value).ToList();
        return (secret, codes);
    }

    /// <summary>A new staff account of <paramref name="tenant"/>, enrolled through its link with <paramref name="password"/> and an
    /// authenticator; returns the authenticator's key. The clock moves 30 s on, so that the next code asked is a new one.</summary>
    public static async Task<string> EnrolledAsync(VaubanServer server, Tenant tenant, string email, StaffRole role, string? practitioner, string password,
        ManualTime time, string? service = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(time);
        var link = await server.Store.Accounts.AddAsync(tenant, email, role, practitioner, service, "Staff " + email[..4], CancellationToken.None);
        using var browser = new StaffClient(server.BaseAddress);
        var (secret, _) = await browser.EnrolWithTotpAsync(link.Token, password, time);
        time.Advance(TimeSpan.FromSeconds(30));
        return secret;
    }

    /// <summary>A person enrolled with TOTP, signed in with password and code (both steps must redirect as a sign-in does); the
    /// clock then moves to the next time step, since a code is accepted once. From <paramref name="from"/>, else 127.0.0.1.</summary>
    public static async Task<StaffClient> SignedInAsync(Uri baseAddress, string establishment, string email, string password, string secret, ManualTime time,
        IPAddress? from = null)
    {
        var staff = new StaffClient(baseAddress, from);
        var (first, _) = await staff.PasswordAsync(establishment, email, password);
        Xunit.Assert.Equal("/account/signin/totp", first.Headers.Location?.ToString());
        var (second, _) = await staff.TotpAsync(Totp.Code(secret, time));
        Xunit.Assert.Equal("/", second.Headers.Location?.ToString());
        time.Advance(TimeSpan.FromSeconds(30));
        return staff;
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex TokenPattern();

    [GeneratedRegex("<li>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</li>")]
    private static partial Regex CodePattern();

    private sealed class CookieJar : DelegatingHandler
    {
        public Dictionary<string, string> Cookies { get; } = new(StringComparer.Ordinal);
        public List<string> SetCookieHeaders { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Cookies.Count > 0 && !request.Headers.Contains("Cookie"))
                request.Headers.TryAddWithoutValidation("Cookie", string.Join("; ", Cookies.Select(c => c.Key + "=" + c.Value)));
            var response = await base.SendAsync(request, cancellationToken);
            if (response.Headers.TryGetValues("Set-Cookie", out var values))
            {
                foreach (var header in values)
                {
                    SetCookieHeaders.Add(header);
                    var pair = header.Split(';')[0].Split('=', 2);
                    var expired = header.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase);
                    if (expired || pair[1].Length == 0) Cookies.Remove(pair[0]);
                    else Cookies[pair[0]] = pair[1];
                }
            }
            return response;
        }
    }
}

/// <summary>A clock the test moves.</summary>
public sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;

    /// <summary>Where a test's clock starts when it starts "now": the real clock's now, or the instant VAUBAN_TEST_NOW names (ISO 8601,
    /// UTC unless it says otherwise) when it is set, to run a test as CI would at that instant: in the minute before midnight in
    /// Paris or in UTC, inside the autumn change of time, at the end of a year. For instance
    /// VAUBAN_TEST_NOW=2026-12-06T22:59:00Z bash tests/run.sh --filter "FullyQualifiedName~AgendaPageTests" (23:59 in Paris).</summary>
    public static DateTimeOffset RealNow =>
        Environment.GetEnvironmentVariable("VAUBAN_TEST_NOW") is { Length: > 0 } forced
            ? DateTimeOffset.Parse(forced, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal)
            : DateTimeOffset.UtcNow;

    /// <summary>Now, or, in the last hour before midnight in Paris, 90 minutes later: the pages' "today" is Paris's, and a test whose
    /// set-up booked today's appointments just before midnight, then moved the clock past it, found another day's agenda (the
    /// agenda test failed at 22:59 UTC, 23:59 in Paris, once its clock had moved past midnight).</summary>
    public static ManualTime AwayFromParisMidnight()
    {
        var now = RealNow;
        return new ManualTime(ParisTime.Of(now).Hour == 23 ? now.AddMinutes(90) : now);
    }
}

/// <summary>RFC 6238 codes as an authenticator app computes them (written apart from the server's, to check it).</summary>
public static class Totp
{
    public static string Code(string base32Secret, TimeProvider time, int stepOffset = 0) =>
        Code(Base32.Decode(base32Secret), time.GetUtcNow().ToUnixTimeSeconds() / 30 + stepOffset, 6);

    public static string Code(byte[] key, long step, int digits)
    {
        var counter = BitConverter.GetBytes(step);
        if (BitConverter.IsLittleEndian) Array.Reverse(counter);
#pragma warning disable CA5350
        var mac = System.Security.Cryptography.HMACSHA1.HashData(key, counter);
#pragma warning restore CA5350
        var offset = mac[^1] & 0xf;
        var value = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
        return (value % (int)Math.Pow(10, digits)).ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(digits, '0');
    }
}
