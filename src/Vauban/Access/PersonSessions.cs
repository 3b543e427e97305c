// The session cookie of people. On every request carrying it, the server-side session row is read
// (revocation takes effect at once) with its account's (a locked account's sessions die at once too).
// Pages state the sign-in stage they need with [RequireSession]; other code asks for a fresh proof of
// both factors with RequireFreshAuthentication (see below).
using System.Security.Claims;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Vauban.Access;

namespace Vauban.Web;

/// <summary>A signed-in (or half signed-in) person on this request.</summary>
public sealed record PersonSession(StaffSession Session, StaffUser? User, string Token);

public static class PersonSessions
{
    /// <summary>__Host-: Secure, Path=/, no Domain, so no sibling host or plain-http page can set or read it.</summary>
    public const string CookieName = "__Host-vauban-session";
    private const string ItemKey = "vauban.person";
    private const string EndedKey = "vauban.session-ended";

    public static PersonSession? Person(this HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        return http.Items.TryGetValue(ItemKey, out var value) ? value as PersonSession : null;
    }

    /// <summary>When this request's session cookie named a session that has ended, how far its look-up saw why; null when it named
    /// a live one or there was none.</summary>
    public static SessionEnded? EndedSession(this HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        return http.Items.TryGetValue(EndedKey, out var value) ? value as SessionEnded? : null;
    }

    /// <summary>The sign-in page's <c>ended</c> parameter that says why the person is there (<see cref="SignInEnded"/>), or null.</summary>
    public static string? EndedParameter(SessionEnded? ended) => ended switch
    {
        SessionEnded.Idle => "idle",
        SessionEnded.Absolute => "absolute",
        SessionEnded.Unknown => "ended",
        _ => null,
    };

    /// <summary>The fully signed-in person (both factors), or null.</summary>
    public static PersonSession? FullPerson(this HttpContext http) =>
        http.Person() is { Session.Stage: SessionStage.Full, User: not null } person ? person : null;

    /// <summary>
    /// Step-up for sensitive acts (break-the-glass, regenerating recovery codes, …): true when the person
    /// proved both factors again within <paramref name="within"/>. When false, send them to
    /// <see cref="ReauthenticationUrl"/>, which comes back to the current page once they have.
    /// <code>
    /// if (!HttpContext.IsFreshlyAuthenticated(TimeSpan.FromMinutes(5))) return Redirect(HttpContext.ReauthenticationUrl());
    /// </code>
    /// </summary>
    public static bool IsFreshlyAuthenticated(this HttpContext http, TimeSpan within)
    {
        var person = http.FullPerson();
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        return person?.Session.AuthenticatedAt is { } at && time.GetUtcNow() - at <= within;
    }

    /// <summary>/account/reauth with a return URL to the current page (or <paramref name="returnUrl"/>).</summary>
    public static string ReauthenticationUrl(this HttpContext http, string? returnUrl = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        return "/account/reauth?returnUrl=" + Uri.EscapeDataString(returnUrl ?? (http.Request.Path + http.Request.QueryString).ToString());
    }

    public static void WriteCookie(this HttpContext http, string token)
    {
        ArgumentNullException.ThrowIfNull(http);
        http.Response.Cookies.Append(CookieName, token, new CookieOptions
        {
            Secure = true, HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", IsEssential = true,
        });
    }

    public static void ClearCookie(this HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        http.Response.Cookies.Delete(CookieName, new CookieOptions { Secure = true, HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/" });
    }

    public static IApplicationBuilder UsePersonSessions(this IApplicationBuilder app, VaubanStore store) => app.Use(async (http, next) =>
    {
        var token = http.Request.Cookies[CookieName];
        if (token is not null && FromAnotherSite(http))
        {
            await RefuseFromAnotherSiteAsync(http);
            return;
        }
        if (token is not null)
        {
            // The session and its account in one statement; whether the account has a second factor is not asked here, where no
            // page uses it (a passkey-only account's passkeys would be read and checked on every request): the pages that need it ask.
            var (session, user, ended) = await store.Sessions.FindWithAccountAsync(token, http.RequestAborted);
            if (session?.UserId is not null && (user is null || user.LockoutEnd > store.Time.GetUtcNow()))
            {
                await store.Sessions.EndAsync(token, http.RequestAborted);
                session = null;
            }
            if (session is null)
            {
                http.ClearCookie();
                http.Items[EndedKey] = ended;
            }
            else
            {
                http.Items[ItemKey] = new PersonSession(session, user, token);
                if (user is not null)
                {
                    // The antiforgery tokens bind to this identity.
                    http.User = new ClaimsPrincipal(new ClaimsIdentity(
                        [new Claim(ClaimTypes.NameIdentifier, user.Id), new Claim(ClaimTypes.Name, user.Id), new Claim("stage", session.Stage.ToString())], "vauban-session"));
                }
            }
        }
        await next(http);
    });

    /// <summary>
    /// Whether the browser says this request was made by another site's page (Fetch Metadata: <c>Sec-Fetch-Site</c> <c>same-site</c>
    /// or <c>cross-site</c>). SameSite=Strict keeps the cookie off requests from other sites, but a page on a sibling host of the same
    /// registrable domain (intranet.chu.example beside vauban.chu.example) is the same site: its <c>&lt;img src="…/fhir/Patient?_count=50"&gt;</c>
    /// went with the session cookie, and every patient it named was read, audited and weighed by the guard in the clinician's name —
    /// two such page visits suspended her session and then locked her account (an outside review, 2026-12-07). A request with no such
    /// header (a browser without Fetch Metadata, a non-browser client) or with <c>same-origin</c> or <c>none</c> (typed, a bookmark) is
    /// not this; writes are held to their Origin as well (<see cref="SameOriginForms"/>).
    /// </summary>
    internal static bool FromAnotherSite(HttpContext http) =>
        http.Request.Headers["Sec-Fetch-Site"].ToString() is var site
        && (site.Equals("same-site", StringComparison.OrdinalIgnoreCase) || site.Equals("cross-site", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// A request another site's page made with the session cookie: nothing runs in the person's name and the session is not looked up
    /// (nor kept alive). A link followed from another site (a navigation, GET) gets a page that shows nothing of the records and offers
    /// to open the address from here — her click on it is this site's own; anything else (an image, a script, a fetch, a form) is
    /// refused: 403, an OperationOutcome under /fhir.
    /// </summary>
    private static async Task RefuseFromAnotherSiteAsync(HttpContext http)
    {
        http.Response.StatusCode = StatusCodes.Status403Forbidden;
        const string Why = "This request was made by another site's page, with your Vauban session: nothing was done. Vauban reads and changes "
            + "records in your name only from its own pages, so that another site cannot make your browser do it.";
        if (http.Request.Path.StartsWithSegments("/fhir"))
        {
            await new FhirResult(StatusCodes.Status403Forbidden, Fhir.FhirJson.OperationOutcome([Fhir.Issue.Forbidden(Why)])).ExecuteAsync(http);
            return;
        }
        http.Response.ContentType = "text/html; charset=utf-8";
        var navigation = (HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method))
            && http.Request.Headers["Sec-Fetch-Mode"].ToString().Equals("navigate", StringComparison.OrdinalIgnoreCase);
        // This site's address, as a path from its root: a target such as "//other.example/x" is read as a path here, never as a host.
        var here = System.Net.WebUtility.HtmlEncode(http.Request.PathBase + "/" + (http.Request.Path.Value ?? "").TrimStart('/', '\\') + http.Request.QueryString);
        var body = navigation
            ? "<h1 id=\"status\">Opened from another site</h1><p>You followed a link from another site's page. Vauban opens its pages only from "
                + $"its own, so that another site cannot make your browser read records in your name.</p><p><a id=\"continue\" href=\"{here}\">Open this page</a> · <a href=\"/\">Home</a></p>"
            : $"<h1 id=\"status\">Sent from another site</h1><p>{Why}</p><p><a href=\"/\">Home</a></p>";
        await http.Response.WriteAsync("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>From another site · Vauban</title></head><body>"
            + body + "</body></html>", http.RequestAborted);
    }
}

/// <summary>The sign-in stage a page needs; anything less is sent to the step it still owes. A person whose session has just
/// ended is told so by the sign-in page (its <c>ended</c> parameter: a fixed sentence, nothing about the account).</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class RequireSessionAttribute(SessionStage stage) : Attribute, IAsyncPageFilter
{
    public SessionStage Stage { get; } = stage;

    public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

    private static string SignInUrl(string? escapedReturnUrl, string? ended)
    {
        var query = new List<string>();
        if (escapedReturnUrl is not null) query.Add("returnUrl=" + escapedReturnUrl);
        if (ended is not null) query.Add("ended=" + ended);
        return "/account/signin" + (query.Count == 0 ? "" : "?" + string.Join('&', query));
    }

    public async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var http = context.HttpContext;
        var person = http.Person();
        var ok = person?.User is not null && (person.Session.Stage == Stage || (Stage == SessionStage.Enrolment && person.Session.Stage == SessionStage.Full));
        if (ok && Stage == SessionStage.Enrolment && person!.Session.Stage == SessionStage.Full && !http.IsFreshlyAuthenticated(TimeSpan.FromMinutes(5)))
        {
            // Adding a second factor to a signed-in account is how a stolen session would make itself permanent: prove both factors again.
            context.Result = new RedirectResult(http.ReauthenticationUrl());
            return;
        }
        if (ok)
        {
            await next();
            return;
        }
        var returnUrl = Uri.EscapeDataString((http.Request.Path + http.Request.QueryString).ToString());
        context.Result = person?.Session.Stage switch
        {
            SessionStage.Enrolment => new RedirectResult("/account/enrol/passkey"),
            SessionStage.SecondFactor => new RedirectResult("/account/signin/totp"),
            SessionStage.Full => new RedirectResult("/"),
            _ => new RedirectResult(SignInUrl(Stage == SessionStage.Full && http.Request.Path != "/" ? returnUrl : null, PersonSessions.EndedParameter(http.EndedSession()))),
        };
    }
}
