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
    /// <c>--public-url</c> and trusted proxies have set them).</summary>
    public static bool Is(HttpContext http) =>
        http.Request.Headers.Origin.ToString() is { Length: > 0 } origin
        && string.Equals(origin, $"{http.Request.Scheme}://{http.Request.Host}", StringComparison.OrdinalIgnoreCase);
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
