// What the security console's pages share: the console's door (GuardConsole.AdmitAsync, the same as the JSON API's), a
// refusal shown as a page with its status, and an act's refusal shown beside the lists it left unchanged.
using Microsoft.AspNetCore.Mvc;

namespace Vauban.Web.Pages.Security;

public abstract class ConsolePage : StaffPage
{
    /// <summary>Why this person may not use the console at all (403, 423): the page shows only this.</summary>
    public string? Refusal { get; private set; }

    /// <summary>Why the act asked for was refused (nothing changed), or null.</summary>
    public string? Error { get; private set; }

    public bool IsOfficer => GuardConsole.IsOfficer(HttpContext);

    /// <summary>Null when the person may use the console for <paramref name="act"/> (as it goes on the chain: "GET /security"),
    /// else the page that says why, with its status; the refusal is audited.</summary>
    protected async Task<IActionResult?> EnterAsync(string act)
    {
        var admission = await GuardConsole.AdmitAsync(Store, HttpContext, act);
        if (admission.IsAdmitted) return null;
        if (admission.Status == StatusCodes.Status401Unauthorized) return Redirect("/account/signin");
        Response.StatusCode = admission.Status;
        Refusal = admission.Message;
        return Page();
    }

    /// <summary>An act refused with <paramref name="status"/>: the message is shown and nothing was changed.</summary>
    protected void Refuse(int status, string message)
    {
        Response.StatusCode = status;
        Error = message;
    }
}
