// A session cookie goes with every request the browser sends to this site, whichever site's page sent it. What changes data on
// the strength of that cookie must come from this site's own pages: the browser's Origin header names where the request was
// made. SameSite=Strict keeps the cookie off cross-site requests and each form carries an antiforgery token; this is the third
// lock, and the one that says what happened.
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;

namespace Vauban.Web;

internal static class SameOrigin
{
    /// <summary>Whether the request's Origin names this site (scheme, host and port as the request reached it, after
    /// <c>--public-url</c> and trusted proxies have set them). One that names another is noted in the log (<see cref="ForeignOrigins"/>).</summary>
    public static bool Is(HttpContext http)
    {
        if (http.Request.Headers.Origin.ToString() is not { Length: > 0 } origin) return false;
        var site = This(http);
        if (string.Equals(origin, site, StringComparison.OrdinalIgnoreCase)) return true;
        if (origin != "null") http.RequestServices.GetService<ForeignOrigins>()?.Note(origin, site);
        return false;
    }

    private static string This(HttpContext http) => $"{http.Request.Scheme}://{http.Request.Host}";
}

/// <summary>
/// Tells the operator, in the server's log, that a write was refused for coming from another site, and which origin this server
/// took itself to be: behind a TLS proxy it was not told of (no <c>--public-url</c>, no <c>--trusted-proxies</c>), every page's form
/// is refused as "Sent from another site", and the log said nothing of why. At most once a minute (another site's page can send
/// as many as it likes); the origin is shown as a printable, shortened text, never more of the request.
/// </summary>
internal sealed class ForeignOrigins(ILogger<ForeignOrigins> logger, TimeProvider time)
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMinutes(1);
    private long _toldAt = long.MinValue;

    public void Note(string origin, string site)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var told = Interlocked.Read(ref _toldAt);
        if (told != long.MinValue && now - told < (long)Quiet.TotalMilliseconds) return;
        if (Interlocked.CompareExchange(ref _toldAt, now, told) != told) return;
        logger.LogWarning("A write was refused as sent from another site: its Origin is {Origin}, and this server is {Site}. If this site's own "
            + "forms are refused, Vauban is behind a proxy it was not told of: set --public-url to the address users reach it by, and "
            + "--trusted-proxies to the proxy's address. Told at most once a minute.", Printable(origin), site);
    }

    private static string Printable(string text)
    {
        var shown = text.Length > 100 ? text[..100] + "…" : text;
        return string.Create(shown.Length, shown, (span, source) =>
        {
            for (var i = 0; i < source.Length; i++) span[i] = source[i] is >= '!' and <= '~' or '…' ? source[i] : '?';
        });
    }
}

/// <summary>
/// A page's form sent from another site's page (an Origin header that names another site) is refused with 403 before anything
/// else looks at it — before the antiforgery check, which would call it an expired form. An Origin of "null" is left to the
/// antiforgery check, as a request without one is: the pages are served with <c>Referrer-Policy: no-referrer</c>, under which
/// Chromium sends "null" with this site's own form posts (as it does from a sandboxed frame or a page with the same policy).
/// </summary>
internal sealed class SameOriginForms : IAuthorizationFilter, IOrderedFilter
{
    public int Order => int.MinValue;

    public void OnAuthorization(AuthorizationFilterContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var http = context.HttpContext;
        if (!HttpMethods.IsPost(http.Request.Method) || http.Request.Headers.Origin.ToString() is "" or "null" || SameOrigin.Is(http)) return;
        context.Result = new ContentResult
        {
            StatusCode = StatusCodes.Status403Forbidden,
            ContentType = "text/html; charset=utf-8",
            Content = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sent from another site · Vauban</title></head>"
                + "<body><h1 id=\"status\">Sent from another site</h1><p>This form was sent by another site's page, not by Vauban's: nothing was done. "
                + "If you did not mean to send it, tell your security officer which site you were on.</p><p><a href=\"/\">Home</a></p></body></html>",
        };
    }
}
