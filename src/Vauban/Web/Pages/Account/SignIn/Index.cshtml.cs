using Microsoft.AspNetCore.Mvc;

namespace Vauban.Web.Pages.Account.SignIn;

public sealed class SignInModel : StaffPage
{
    [BindProperty(SupportsGet = true)] public string? Establishment { get; set; }
    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Password { get; set; }
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }
    public string? Error { get; private set; }

    /// <summary>Why the person is at the sign-in page, from ?ended=… (set by the sign-out, and by a page whose session had ended),
    /// on the page as opened (not after a failed attempt). Only fixed sentences, none naming the account: the parameter is anyone's
    /// to write.</summary>
    public string? EndedSaid { get; private set; }

    private string? SaidOfEnd(string? ended) => ended switch
    {
        "signout" => "You are signed out.",
        "idle" => $"Your session ended after {SessionNotice.Said(Store.Accounts.Options.IdleTimeout)} without activity.",
        "absolute" => $"Your session ended: a session lasts at most {SessionNotice.Said(Store.Accounts.Options.AbsoluteTimeout)}.",
        "ended" => "Your session has ended.",
        _ => null,
    };

    /// <summary>?establishment=… pre-fills the field (a bookmark per hospital); a server with one establishment fills it itself.</summary>
    public async Task OnGetAsync()
    {
        EndedSaid = SaidOfEnd(Request.Query["ended"].ToString());
        if (string.IsNullOrEmpty(Establishment) && await Store.Tenants.ListAsync(HttpContext.RequestAborted) is [var only]) Establishment = only.Name;
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var outcome = await People.PasswordAsync(HttpContext, Establishment?.Trim(), Email, Password);
        if (outcome.Result == SignInResult.SecondFactorNeeded)
            return Redirect("/account/signin/totp" + (ReturnUrl is null ? "" : "?returnUrl=" + Uri.EscapeDataString(SafeReturnUrl(ReturnUrl))));
        Error = outcome.Message;
        Response.StatusCode = outcome.Result == SignInResult.Throttled ? 429 : 200;
        return Page();
    }

    public async Task<IActionResult> OnPostPasskeyOptionsAsync() =>
        Content(await People.PasskeyRequestOptionsAsync(HttpContext), "application/json");

    public async Task<IActionResult> OnPostPasskeyAsync()
    {
        var outcome = await People.PasskeyAsync(HttpContext, await ReadBodyAsync(), reauthenticate: false);
        return outcome.Result == SignInResult.SignedIn ? Json(new { redirect = SafeReturnUrl(ReturnUrl) }) : Json(new { error = outcome.Result == SignInResult.Throttled ? outcome.Message : SignInOutcome.PasskeyFailureMessage });
    }
}
