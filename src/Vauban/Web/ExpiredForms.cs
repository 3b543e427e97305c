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
            context.Result = new RedirectResult("/account/signin");
            return;
        }
        var again = signOut ? "/" : (http.Request.PathBase + http.Request.Path + http.Request.QueryString).ToString();
        context.Result = new ContentResult
        {
            StatusCode = StatusCodes.Status400BadRequest,
            ContentType = "text/html; charset=utf-8",
            Content = $"""
                <!DOCTYPE html>
                <html lang="en">
                <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Form expired — Vauban</title><link rel="stylesheet" href="/account/site.css"></head>
                <body>
                <header><strong>VAUBAN</strong></header>
                <main>
                  <h1 id="form-expired">This form has expired</h1>
                  <p>Nothing was done. The page was opened before your session ended (sign-out, or 15 minutes without activity) or changed (another sign-in step), or before the server restarted.</p>
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
