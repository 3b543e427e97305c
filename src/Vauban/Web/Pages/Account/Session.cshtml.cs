// "Stay signed in": the session notice (SessionNotice, session.js) posts here, with the page's antiforgery token, when the person
// wants her session kept while she types (a prescription, a note: typing sends nothing to the server, so 15 minutes of it
// looked like 15 minutes away). It counts as activity for a live session only: it never revives one that has ended, never
// moves the absolute end, and answers 401 without a session (an antiforgery token that no longer fits is refused before, 400).
using Microsoft.AspNetCore.Mvc;

namespace Vauban.Web.Pages.Account;

public sealed class SessionModel : StaffPage
{
    public IActionResult OnGet() => NotFound();

    public async Task<IActionResult> OnPostAsync()
    {
        if (HttpContext.FullPerson() is not { } person) return Ended();
        var end = await Store.Sessions.KeepAsync(person.Session, HttpContext.RequestAborted);
        return end is null ? Ended() : Json(SessionNotice.Answer(end, UtcNow));
    }

    private JsonResult Ended() => new(new { ended = true }) { StatusCode = StatusCodes.Status401Unauthorized };
}
