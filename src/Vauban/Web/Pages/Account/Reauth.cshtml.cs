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

    /// <summary>Whether the page offers the passkey: the account has a second factor, asked here (a session's account is read
    /// without the question, which for a passkey-only account reads and checks its passkeys).</summary>
    public bool OffersPasskey { get; private set; }

    public Task<IActionResult> OnGetAsync() => ShowAsync();

    private async Task<IActionResult> ShowAsync()
    {
        OffersPasskey = await Store.Accounts.HasSecondFactorAsync(Person!.User!, HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = Person!.User!;
        if (!user.TwoFactorEnabled)
        {
            Error = "Use your passkey to confirm.";
            return await ShowAsync();
        }
        var outcome = await People.ReauthenticateAsync(HttpContext, Password, Code);
        if (outcome.Result == SignInResult.SignedIn) return Redirect(SafeReturnUrl(ReturnUrl));
        if (HttpContext.FullPerson() is null) return Redirect("/account/signin");
        Error = outcome.Result == SignInResult.Throttled ? outcome.Message : "The password or code is not correct.";
        return await ShowAsync();
    }

    public async Task<IActionResult> OnPostPasskeyOptionsAsync() =>
        Content(await People.PasskeyRequestOptionsAsync(HttpContext), "application/json");

    public async Task<IActionResult> OnPostPasskeyAsync()
    {
        var outcome = await People.PasskeyAsync(HttpContext, await ReadBodyAsync(), reauthenticate: true);
        return outcome.Result == SignInResult.SignedIn ? Json(new { redirect = SafeReturnUrl(ReturnUrl) }) : Json(new { error = outcome.Result == SignInResult.Throttled ? outcome.Message : SignInOutcome.PasskeyFailureMessage });
    }
}
