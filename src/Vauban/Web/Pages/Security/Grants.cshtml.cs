using Microsoft.AspNetCore.Mvc;
using Vauban.Access;

namespace Vauban.Web.Pages.Security;

/// <summary>
/// Break-the-glass grants at the console, with the explanations their holders stated (sealed at rest, opened here): what
/// the security officer judges a stated emergency by, as GET /admin/guard/grants gives a script. The officer's alone (the
/// text may hold clinical words an administrator has no need of): an administrator is refused, on the chain; every viewing
/// is an administrative entry of its reader, appended before the page leaves.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class GrantsModel : ConsolePage
{
    /// <summary>Grants a page lists, newest first.</summary>
    public const int Listed = 200;

    public IReadOnlyList<ReviewedGrant> Grants { get; private set; } = [];
    public bool More { get; private set; }
    public DateTimeOffset Now { get; private set; }

    public static string ReasonLabel(string reason) => KnownBreakGlassReasons.Labels.TryGetValue(reason, out var label) ? label : reason;

    public async Task<IActionResult> OnGetAsync()
    {
        const string Act = "GET /security/grants";
        if (await EnterOfficerAsync(Act, "Only the security officer reviews break-the-glass explanations.") is { } refused) return refused;
        var grants = await Store.BreakTheGlass.ReviewAsync(Person!.User!.Tenant, Listed + 1, HttpContext.RequestAborted);
        More = grants.Count > Listed;
        Grants = grants.Take(Listed).ToList();
        await ReadNamesAsync();
        await GuardConsole.AuditReadAsync(Store, HttpContext, Act, Grants.Count, ReviewedGrant.Audited(Grants));
        Now = UtcNow;
        return Page();
    }
}
