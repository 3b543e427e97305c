// A form whose antiforgery token no longer fits: the session it was opened in ended (sign-out, the 15-minute idle
// time-out, a lock), a sign-in step replaced it, or the server restarted (the token keys live in memory). The request is
// refused as before (400, nothing done), but with a page that says so and a way on, instead of an empty answer; and a
// sign-out whose session has already ended simply arrives at the sign-in page (there is nothing left to end).
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Core.Infrastructure;
using Microsoft.AspNetCore.Mvc.Filters;

namespace Vauban.Web;

internal sealed class ExpiredForms : IAlwaysRunResultFilter
{
    public void OnResultExecuting(ResultExecutingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Result is not IAntiforgeryValidationFailedResult) return;
        var http = context.HttpContext;
        var signOut = http.Request.Path.Equals("/account/signout", StringComparison.OrdinalIgnoreCase);
        if (signOut && http.Person() is null)
        {
            context.Result = new RedirectResult("/account/signin?ended=" + (PersonSessions.EndedParameter(http.EndedSession()) ?? "signout"));
            return;
        }
        var again = signOut ? "/" : (http.Request.PathBase + http.Request.Path + http.Request.QueryString).ToString();
        // A form the reader refused (too many fields, too long a value, a NUL) failed the antiforgery check too, since its token
        // could not be read: that is no expired form, and "open the page again" would not help.
        var unread = http.Request.HasFormContentType && http.Features.Get<Microsoft.AspNetCore.Http.Features.IFormFeature>()?.Form is null;
        var (title, why) = unread
            ? ("This form could not be read", $"Nothing was done. What was sent is more than a form of this server holds ({FormReading.Limits}), or holds a character a form may not carry.")
            : ("This form has expired", $"Nothing was done. The page was opened before your session ended (sign-out, or {SessionNotice.Said(http.RequestServices.GetRequiredService<Access.AccountOptions>().IdleTimeout)} without activity) or changed (another sign-in step), or before the server restarted.");
        context.Result = new ContentResult
        {
            StatusCode = StatusCodes.Status400BadRequest,
            ContentType = "text/html; charset=utf-8",
            Content = $"""
                <!DOCTYPE html>
                <html lang="en">
                <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title} — Vauban</title><link rel="stylesheet" href="/account/site.css"></head>
                <body>
                <header><strong>VAUBAN</strong></header>
                <main>
                  <h1 id="form-expired">{title}</h1>
                  <p>{why}</p>
                  <p><a class="button" id="again" href="{HtmlEncoder.Default.Encode(again)}">Open the page again</a></p>
                </main>
                </body>
                </html>
                """,
        };
    }

    public void OnResultExecuted(ResultExecutedContext context)
    {
    }
}
