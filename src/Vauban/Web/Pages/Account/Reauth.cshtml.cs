using Microsoft.AspNetCore.Mvc;
using Vauban.Access;

namespace Vauban.Web.Pages.Account;

/// <summary>
/// Step-up: a signed-in person proves both factors again (password and TOTP code, or a passkey with user
/// verification); the session's AuthenticatedAt is refreshed and the person goes back to returnUrl.
/// Pages for sensitive acts check <see cref="PersonSessions.IsFreshlyAuthenticated"/> and redirect here
/// with <see cref="PersonSessions.ReauthenticationUrl"/>. A password alone never refreshes it when the
/// account has a TOTP authenticator; an account with only a passkey must use the passkey.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class ReauthModel : StaffPage
{
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }
    [BindProperty] public string? Password { get; set; }
    [BindProperty] public string? Code { get; set; }
    public string? Error { get; private set; }

    /// <summary>Whether the account has a passkey to confirm with (its stored passkeys, as the sign-in reads them): "Use my passkey"
    /// is not offered to an account that has none, where it could only fail.</summary>
    public bool HasPasskey { get; private set; }

    /// <summary>What the person was doing that asked for this, in her words, from the page she goes back to.</summary>
    public string Why => WhyFor(SafeReturnUrl(ReturnUrl));

    public async Task OnGetAsync() => HasPasskey = await HasPasskeyAsync();

    private async Task<bool> HasPasskeyAsync() =>
        Person?.User is { } user && (await Store.Accounts.Store.GetPasskeysAsync(user, HttpContext.RequestAborted)).Count > 0;

    /// <summary>The act behind a return URL: the sensitive acts that always ask once the last proof is a few minutes old, and the
    /// patient pages, where it is the guard that asks.</summary>
    internal static string WhyFor(string returnUrl)
    {
        var path = returnUrl.Split('?', 2)[0];
        static bool Under(string path, string prefix) => path.Equals(prefix, StringComparison.OrdinalIgnoreCase) || path.StartsWith(prefix + "/", StringComparison.OrdinalIgnoreCase);
        if (path.EndsWith("/break-the-glass", StringComparison.OrdinalIgnoreCase))
            return "You are opening a patient's record outside your care relationships (break-the-glass): confirm it is you first.";
        if (Under(path, "/account/recovery-codes")) return "You are making new recovery codes: confirm it is you first.";
        if (Under(path, "/account/enrol")) return "You are adding a way to sign in to your account (a passkey or an authenticator app): confirm it is you first.";
        if (Under(path, "/security")) return "You are acting in the security console: confirm it is you first.";
        if (Under(path, "/patients") || Under(path, "/appointments"))
            return "You were opening or changing patients' records, and the guard asks you to confirm it is you before you go on.";
        return "What you were doing needs you to confirm it is you first.";
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = Person!.User!;
        HasPasskey = await HasPasskeyAsync();
        if (!user.TwoFactorEnabled)
        {
            Error = "Use your passkey to confirm.";
            return Page();
        }
        var outcome = await People.ReauthenticateAsync(HttpContext, Password, Code);
        if (outcome.Result == SignInResult.SignedIn) return Redirect(SafeReturnUrl(ReturnUrl));
        if (HttpContext.FullPerson() is null) return Redirect("/account/signin");
        Error = outcome.Result == SignInResult.Throttled ? outcome.Message : "The password or code is not correct.";
        return Page();
    }

    public async Task<IActionResult> OnPostPasskeyOptionsAsync() =>
        Content(await People.PasskeyRequestOptionsAsync(HttpContext), "application/json");

    public async Task<IActionResult> OnPostPasskeyAsync()
    {
        var outcome = await People.PasskeyAsync(HttpContext, await ReadBodyAsync(), reauthenticate: true);
        return outcome.Result == SignInResult.SignedIn ? Json(new { redirect = SafeReturnUrl(ReturnUrl) }) : Json(new { error = outcome.Result == SignInResult.Throttled ? outcome.Message : SignInOutcome.PasskeyFailureMessage });
    }
}
