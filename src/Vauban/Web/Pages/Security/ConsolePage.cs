// What the security console's pages share: the console's door (GuardConsole.AdmitAsync, the same as the JSON API's), a
// refusal shown as a page with its status, and an act's refusal shown beside the lists it left unchanged (an act done is
// answered as on every staff page: StaffPage.Acted).
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

    /// <summary>The console's door, then the security officer's alone: anyone else the console admits (an administrator) is
    /// refused with 403 and <paramref name="refusal"/>, on the chain. Null when the officer may go on.</summary>
    protected async Task<IActionResult?> EnterOfficerAsync(string act, string refusal)
    {
        if (await EnterAsync(act) is { } refused) return refused;
        if (IsOfficer) return null;
        await GuardConsole.AuditRefusalAsync(Store, HttpContext, act, "only the security officer");
        Refuse(StatusCodes.Status403Forbidden, refusal);
        return Page();
    }

    /// <summary>Accounts ("user:…": name and role) and API clients (client id: name) of the establishment, to name the principals listed.</summary>
    private Dictionary<string, string> _names = [];

    /// <summary>Who a listed principal is, by name, or null when it names no account or client of the establishment (a
    /// command-line operator, a deleted account): a session is named by its account.</summary>
    public string? Named(string principal, string? account = null) =>
        _names.TryGetValue(principal, out var name) || (account is not null && _names.TryGetValue(account, out name)) ? name : null;

    /// <summary>Reads the names <see cref="Named"/> gives, once a page (an id alone says nothing to the officer reviewing it).</summary>
    protected async Task ReadNamesAsync()
    {
        var tenant = Person!.User!.Tenant;
        var names = new Dictionary<string, string>(await Store.Accounts.NamesAsync(tenant, HttpContext.RequestAborted), StringComparer.Ordinal);
        foreach (var client in await Store.Clients.ListAsync(tenant, HttpContext.RequestAborted)) names[client.ClientId] = client.Name + " (API client)";
        _names = names;
    }

    /// <summary>An act refused with <paramref name="status"/>: the message is shown and nothing was changed.</summary>
    protected void Refuse(int status, string message)
    {
        Response.StatusCode = status;
        Error = message;
    }
}
