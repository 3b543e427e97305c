using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Vauban.Access;
using Vauban.Guard;

namespace Vauban.Web.Pages.Security;

/// <summary>
/// Canary patients at the console: the synthetic identities the guard watches (whoever reads one is contained at once, and
/// the officer told which one), and the form that adds more, as GET and POST /admin/guard/canaries do for a script. The
/// security officer's alone: an administrator who knew the canaries could avoid them. Listing them is an administrative
/// entry of the officer; adding them is the records' creation in the officer's name (RecordsGuard.AddCanariesAsync).
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class CanariesModel : ConsolePage
{
    [BindProperty] public string? Count { get; set; }

    public IReadOnlyList<Canary> Canaries { get; private set; } = [];

    /// <summary>Whether the person may see this page's lists (the officer; anyone else is refused on the chain).</summary>
    public bool Shown { get; private set; }

    public async Task<IActionResult> OnGetAsync() => await EnterOfficerAsync("GET /security/canaries") ?? await ShowAsync("GET /security/canaries");

    public async Task<IActionResult> OnPostAsync()
    {
        const string Act = "POST /security/canaries";
        if (await EnterOfficerAsync(Act) is { } refused) return refused;
        if (!int.TryParse(Count?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count is < 1 or > RecordsGuard.MaxCanariesPerCall)
        {
            Refuse(StatusCodes.Status400BadRequest, $"Add between 1 and {RecordsGuard.MaxCanariesPerCall} canary patients at a time.");
            return await ShowAsync(Act);
        }
        var added = await Store.Guard.AddCanariesAsync(Store.Records, HttpContext.PersonAccess()!, count, HttpContext.RequestAborted);
        return Acted(added.Count == 1 ? "1 canary patient added." : $"{added.Count} canary patients added.");
    }

    private Task<IActionResult?> EnterOfficerAsync(string act) =>
        EnterOfficerAsync(act, "Only the security officer knows the canary patients: anyone who knew them could avoid them.");

    private async Task<IActionResult> ShowAsync(string act)
    {
        Canaries = await Store.Guard.CanariesAsync(Person!.User!.Tenant.Id, HttpContext.RequestAborted);
        await GuardConsole.AuditReadAsync(Store, HttpContext, act, Canaries.Count);
        Shown = true;
        return Page();
    }
}
