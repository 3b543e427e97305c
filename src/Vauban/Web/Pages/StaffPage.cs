// What every staff page shares: the request's person, the sign-in service, safe return URLs, the clock, and an act done
// answered by a redirect to the page (Post/Redirect/Get), which says what it did once.
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Vauban.Web.Pages;

public abstract class StaffPage : PageModel
{
    public PersonSession? Person => HttpContext.Person();

    protected PersonSignIn People => HttpContext.RequestServices.GetRequiredService<PersonSignIn>();

    protected VaubanStore Store => HttpContext.RequestServices.GetRequiredService<VaubanStore>();

    /// <summary>Now, by the server's clock (the one the records services and sessions keep time by).</summary>
    protected DateTimeOffset UtcNow => HttpContext.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();

    /// <summary>What the act just done did: set by the act, shown once by the page its answer redirects to.</summary>
    [TempData] public string? Done { get; set; }

    /// <summary>An act done: the answer sends the browser back to the page by GET (Post/Redirect/Get), which says
    /// <paramref name="done"/> once, so that a refresh or Back repeats nothing (another booking, another release).</summary>
    protected RedirectResult Acted(string done)
    {
        Done = done;
        return Redirect(Request.PathBase + Request.Path);
    }

    /// <summary>Only local paths: an open redirect after sign-in would make a fine phishing tool. Printable ASCII only: a
    /// browser drops tabs and newlines from a URL, so "/&lt;TAB&gt;/evil.example" would take it to //evil.example, and a
    /// newline or a non-ASCII letter in a Location header is a 500 (our own return URLs come escaped).</summary>
    protected static string SafeReturnUrl(string? returnUrl) =>
        returnUrl is { Length: > 0 and < 2000 } && returnUrl[0] == '/' && (returnUrl.Length == 1 || (returnUrl[1] != '/' && returnUrl[1] != '\\'))
            && returnUrl.All(c => c is > ' ' and <= '~')
            ? returnUrl : "/";

    protected async Task<string> ReadBodyAsync()
    {
        using var reader = new StreamReader(Request.Body);
        var buffer = new char[64 * 1024];
        var read = await reader.ReadBlockAsync(buffer, HttpContext.RequestAborted);
        return new string(buffer, 0, read);
    }

    protected static JsonResult Json(object value) => new(value);
}
