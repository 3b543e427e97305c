using System.Security.Cryptography;
using Microsoft.AspNetCore.Mvc;
using Vauban.Access;

namespace Vauban.Web.Pages.Account;

/// <summary>Ten single-use recovery codes of 80 bits each, shown once, stored hashed. New codes need a fresh proof of both factors.</summary>
[RequireSession(SessionStage.Full)]
public sealed class RecoveryCodesModel : StaffPage
{
    /// <summary>The note of the audit entry written when new codes are made.</summary>
    public const string RecoveryCodesIssued = "recovery codes issued (earlier ones stop working)";

    public IReadOnlyList<string>? NewCodes { get; private set; }
    public int Remaining { get; private set; }

    public async Task OnGetAsync()
    {
        var user = Person!.User!;
        Remaining = await People.Users.CountRecoveryCodesAsync(user);
        // Right after enrolment the account has none: make and show them once.
        if (Remaining == 0 && HttpContext.IsFreshlyAuthenticated(TimeSpan.FromMinutes(5))) await GenerateAsync(user);
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!HttpContext.IsFreshlyAuthenticated(TimeSpan.FromMinutes(5))) return Redirect(HttpContext.ReauthenticationUrl("/account/recovery-codes"));
        await GenerateAsync(Person!.User!);
        return Page();
    }

    private async Task GenerateAsync(StaffUser user)
    {
        var codes = Enumerable.Range(0, 10).Select(_ => string.Join('-', Base32.Encode(RandomNumberGenerator.GetBytes(10)).Chunk(4).Select(c => new string(c)))).ToList();
        // New codes are a way in, and they end the earlier ones: on the chain first, naming the session (no entry, no codes).
        await People.AuditAsync(HttpContext, user.Tenant, user, Vauban.Audit.AuditAction.Administration, Vauban.Audit.AuditOutcome.Success, RecoveryCodesIssued);
        await Store.Accounts.Store.ReplaceCodesAsync(user, codes, HttpContext.RequestAborted);
        NewCodes = codes;
    }
}
