using Microsoft.AspNetCore.Mvc;
using Vauban.Access;

namespace Vauban.Web.Pages.Account.Enrol;

/// <summary>The one-time enrolment link: set a password, then enrol a second factor (nothing else opens before).</summary>
public sealed class EnrolModel : StaffPage
{
    [BindProperty(SupportsGet = true)] public string? Token { get; set; }
    [BindProperty] public string? Password { get; set; }
    [BindProperty] public string? Confirm { get; set; }
    public StaffUser? Account { get; private set; }
    public string? Error { get; private set; }

    public async Task OnGetAsync() => Account = await Store.Accounts.PeekEnrolmentAsync(Token ?? "", HttpContext.RequestAborted);

    public async Task<IActionResult> OnPostAsync()
    {
        var ct = HttpContext.RequestAborted;
        Account = await Store.Accounts.PeekEnrolmentAsync(Token ?? "", ct);
        if (Account is null) return Page();
        if (!string.Equals(Password, Confirm, StringComparison.Ordinal))
        {
            Error = "The two passwords differ.";
            return Page();
        }
        var rules = HttpContext.RequestServices.GetRequiredService<Microsoft.AspNetCore.Identity.IPasswordValidator<StaffUser>>();
        var check = await rules.ValidateAsync(People.Users, Account, Password);
        if (!check.Succeeded)
        {
            Error = check.Errors.First().Description;
            return Page();
        }
        // Single use: whoever consumes the link first wins; a replayed form finds it gone.
        var user = await Store.Accounts.ConsumeEnrolmentAsync(Token!, ct);
        if (user is null)
        {
            Account = null;
            return Page();
        }
        // A new link resets the account's credentials (lost device, forgotten password): old factors and sessions go.
        // Recorded first, naming the enrolment session it opens (fail closed: no entry, no reset).
        var session = StaffSessions.NewSessionId();
        await People.AuditAsync(HttpContext, user.Tenant, user, Vauban.Audit.AuditAction.Administration, Vauban.Audit.AuditOutcome.Success,
            "enrolment link used: credentials reset", session);
        await Store.Accounts.ResetCredentialsAsync(user, ct);
        user = (await Store.Accounts.FindByIdAsync(user.Id, ct))!;
        var added = await People.Users.AddPasswordAsync(user, Password!);
        if (!added.Succeeded)
        {
            Error = added.Errors.First().Description;
            return Page();
        }
        if (!await People.StartAsync(HttpContext, user, SessionStage.Enrolment, ceremony: null, session, signedIn: null))
        {
            Error = "The account was reset again meanwhile: use its newest enrolment link.";
            return Page();
        }
        return Redirect("/account/enrol/passkey");
    }
}
