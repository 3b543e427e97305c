using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;

namespace Vauban.Web.Pages.Security;

/// <summary>
/// The security officer's console: the alerts not yet reviewed, who the guard holds now, the accounts locked, and the bulk exports awaiting a
/// second person — each list read on the chain — with the officer's acts on them (acknowledge, release, approve or deny).
/// Every act is a posted form with its antiforgery token, needs both factors proven within 5 minutes (else the person goes
/// through /account/reauth and back), and is GuardConsole's, the same as the JSON API's (/admin/guard). The administrator
/// uses it too, without the canary patients' ids, and without releasing what a canary caused (the officer's).
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class SecurityConsoleModel : ConsolePage
{
    /// <summary>Unacknowledged alerts a page lists, newest first.</summary>
    public const int Listed = 200;

    public IReadOnlyList<SecurityAlert> Alerts { get; private set; } = [];
    public bool MoreAlerts { get; private set; }
    public IReadOnlyList<Containment> Contained { get; private set; } = [];
    public IReadOnlyList<PendingExport> Exports { get; private set; } = [];

    /// <summary>Accounts locked now, whatever locked them: failed sign-ins and an administrator's lock are no containment of the
    /// guard, and were on no list of the console (only `vauban users list` showed them).</summary>
    public IReadOnlyList<StaffUser> Locked { get; private set; } = [];

    /// <summary>An alert's detail or a containment's reason as this person may read it.</summary>
    public string Shown(string text) => GuardConsole.Shown(HttpContext, text);

    public async Task<IActionResult> OnGetAsync()
    {
        if (await EnterAsync("GET /security") is { } refused) return refused;
        // Back from proving both factors again for an acknowledgement: the alerts she had ticked are ticked again (those still
        // listed), for her to send; nothing is acknowledged by a GET.
        if (TakeDraft() is { } kept && kept.TryGetValue(TickedField, out var ticked) && ticked is not null)
        {
            Ticked = ticked.Split(',').Select(t => long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : 0).Where(id => id > 0).ToHashSet();
        }
        return await ShowAsync();
    }

    private const string TickedField = "alerts";

    /// <summary>The alerts ticked before a re-authentication, ticked again; empty otherwise.</summary>
    public IReadOnlySet<long> Ticked { get; private set; } = new HashSet<long>();

    /// <summary>Whether some of the alerts ticked before the re-authentication are listed, ticked again.</summary>
    public bool TickedAgain => Alerts.Any(a => Ticked.Contains(a.Id));

    /// <summary>What the console calls an alert's kind (<see cref="KnownAlertKinds.Label"/>).</summary>
    public static string KindLabel(string kind) => KnownAlertKinds.Label(kind);

    /// <summary>The console's own way to act on an alert of this kind (a link on the console), or null: what the alert's stored text
    /// says for the command line and the API (GuardConsole.ForConsole leaves it out here).</summary>
    public (string Text, string Href)? ActOn(SecurityAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        return alert.Kind switch
        {
            KnownAlertKinds.BreakTheGlass when IsOfficer => ("Read the explanation they stated", "/security/grants"),
            KnownAlertKinds.ExportApprovalRequested when Exports.Count > 0 => ("Approve or deny it under Exports awaiting approval", "#exports-heading"),
            KnownAlertKinds.AccountLocked when Locked.Count > 0 => ("Unlock it under Locked accounts", "#locked-heading"),
            KnownAlertKinds.GuardSuspended or KnownAlertKinds.GuardLocked or KnownAlertKinds.GuardCanary when Contained.Count > 0 => ("Review it under Held by the guard", "#contained-heading"),
            _ => null,
        };
    }

    /// <summary>An alert's detail as the console shows it: as this person may read it, without the command line's directions.</summary>
    public string Detail(SecurityAlert alert) => GuardConsole.ForConsole(Shown((alert ?? throw new ArgumentNullException(nameof(alert))).Detail));

    public async Task<IActionResult> OnPostAcknowledgeAsync(string[]? alerts)
    {
        if (await EnterAsync("POST /security?handler=acknowledge") is { } refused) return refused;
        var ids = new List<long>();
        foreach (var text in alerts ?? [])
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id)) return await RefusedAsync(400, "An alert is named by its number, as listed.");
            ids.Add(id);
        }
        if (ids.Count == 0) return await RefusedAsync(400, "Tick the alerts you have reviewed, then acknowledge them.");
        if (!GuardConsole.AreAlertIds(ids)) return await RefusedAsync(400, $"Acknowledge between 1 and {RecordsGuard.MaxAcknowledgedPerCall:N0} alerts at a time, by the numbers listed.");
        // The alerts ticked come back ticked after the re-authentication (they were lost, and nothing said so).
        if (!GuardConsole.HasFreshFactors(HttpContext))
            return ReauthenticateKeeping(new Dictionary<string, string?> { [TickedField] = string.Join(',', ids.Select(id => id.ToString(CultureInfo.InvariantCulture))) });
        var (done, left) = await GuardConsole.AcknowledgeAsync(Store, HttpContext, ids);
        if (done.Count == 0) return await RefusedAsync(404, GuardConsole.NoAlertAcknowledged + GuardConsole.CanariesAreTheOfficers(HttpContext));
        var said = done.Count == 1 ? "1 alert acknowledged." : $"{done.Count} alerts acknowledged.";
        if (left.Count > 0) said += $" {left.Count} of those ticked were not acknowledged: no longer unacknowledged alerts of your establishment.{GuardConsole.CanariesAreTheOfficers(HttpContext)}";
        return Acted(said);
    }

    public async Task<IActionResult> OnPostReleaseAsync(string? principal)
    {
        if (await EnterAsync("POST /security?handler=release") is { } refused) return refused;
        if (!RecordsGuard.IsValidPrincipal(principal)) return await RefusedAsync(400, "Release a principal listed under \"Held by the guard\".");
        if (!GuardConsole.HasFreshFactors(HttpContext)) return Redirect(HttpContext.ReauthenticationUrl("/security"));
        var release = await GuardConsole.ReleaseAsync(Store, HttpContext, principal!);
        return release.Status switch
        {
            ReleaseStatus.Released => Acted($"{principal} released ({Counted.En(release.Containments, "containment", "containments")})."),
            ReleaseStatus.CanaryIsTheOfficers => await RefusedAsync(403, GuardConsole.CanaryReleaseRefused(release)),
            ReleaseStatus.OwnContainment => await RefusedAsync(403, GuardConsole.OwnReleaseRefused),
            _ => await RefusedAsync(404, GuardConsole.NotContained),
        };
    }

    /// <summary>Unlocks an account locked after failed sign-ins or by an administrator (as `vauban users unlock` does, by the same
    /// act: StaffAccounts.UnlockAsync, recorded on the chain in its transaction). Not an account the guard holds: that is a release,
    /// reviewed under "Held by the guard" (a canary's the officer's alone), and unlocking it would not let it read anyway.</summary>
    public async Task<IActionResult> OnPostUnlockAsync(string? account)
    {
        if (await EnterAsync("POST /security?handler=unlock") is { } refused) return refused;
        var tenant = Person!.User!.Tenant;
        var cancel = HttpContext.RequestAborted;
        if ((await Store.Accounts.LockedAsync(tenant, cancel)).FirstOrDefault(u => u.PrincipalId == account) is not { } user)
            return await RefusedAsync(404, "This account is not locked in your establishment: unlock an account listed under \"Locked accounts\".");
        if (!GuardConsole.HasFreshFactors(HttpContext)) return Redirect(HttpContext.ReauthenticationUrl("/security"));
        if ((await Store.Guard.ContainmentsAsync(tenant.Id, cancel)).Any(c => HeldAccount(c, user)))
            return await RefusedAsync(409, "The guard holds this account: review it and release it under \"Held by the guard\".");
        if (!await Store.Accounts.UnlockAsync(GuardConsole.OfficerAccess(HttpContext), user.Email, cancel))
            return await RefusedAsync(404, "This account is not locked in your establishment: unlock an account listed under \"Locked accounts\".");
        return Acted($"{user.DisplayName} ({user.Email}) unlocked: the account may sign in again.");
    }

    /// <summary>Whether <paramref name="containment"/> holds <paramref name="user"/>'s account or one of its sessions.</summary>
    public static bool HeldAccount(Containment containment, StaffUser user) =>
        (containment ?? throw new ArgumentNullException(nameof(containment))).Account == user?.PrincipalId || containment.Principal == user?.PrincipalId;

    /// <summary>Whether this person may release <paramref name="held"/>'s principal (else the page says why in place of the button).</summary>
    public bool MayRelease(Containment held) => GuardConsole.MayRelease(HttpContext, held.Principal, Contained);

    public Task<IActionResult> OnPostApproveAsync(string? export) => DecideAsync(export, approve: true);

    public Task<IActionResult> OnPostDenyAsync(string? export) => DecideAsync(export, approve: false);

    private async Task<IActionResult> DecideAsync(string? export, bool approve)
    {
        if (await EnterAsync("POST /security?handler=" + (approve ? "approve" : "deny")) is { } refused) return refused;
        if (!ExportJob.IsValidId(export)) return await RefusedAsync(400, "Decide on an export listed under \"Exports awaiting approval\".");
        if (!GuardConsole.HasFreshFactors(HttpContext)) return Redirect(HttpContext.ReauthenticationUrl("/security"));
        if (await GuardConsole.DecideExportAsync(Store, HttpContext, export!, approve) is { } refusal) return await RefusedAsync(refusal.Status, refusal.Message);
        return Acted($"Export {export} {(approve ? "approved" : "denied")}.");
    }

    private async Task<IActionResult> RefusedAsync(int status, string message)
    {
        Refuse(status, message);
        return await ShowAsync();
    }

    /// <summary>The four lists, each read on the chain before the page leaves.</summary>
    private async Task<IActionResult> ShowAsync()
    {
        var tenant = Person!.User!.Tenant.Id;
        var cancel = HttpContext.RequestAborted;
        await ReadNamesAsync();
        var alerts = await Store.Alerts.ListAsync(tenant, all: false, Listed + 1, cancel);
        MoreAlerts = alerts.Count > Listed;
        Alerts = alerts.Take(Listed).ToList();
        await GuardConsole.AuditReadAsync(Store, HttpContext, Request.Method + " /security (alerts)", Alerts.Count);
        Contained = await Store.Guard.ContainmentsAsync(tenant, cancel);
        await GuardConsole.AuditReadAsync(Store, HttpContext, Request.Method + " /security (contained)", Contained.Count);
        Locked = await Store.Accounts.LockedAsync(Person!.User!.Tenant, cancel);
        await GuardConsole.AuditReadAsync(Store, HttpContext, Request.Method + " /security (locked accounts)", Locked.Count);
        Exports = await Store.ExportApprovals.PendingAsync(tenant, cancel);
        await GuardConsole.AuditReadAsync(Store, HttpContext, Request.Method + " /security (exports)", Exports.Count);
        return Page();
    }
}
