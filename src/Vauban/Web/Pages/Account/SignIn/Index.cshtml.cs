using Microsoft.AspNetCore.Mvc;

namespace Vauban.Web.Pages.Account.SignIn;

public sealed class SignInModel : StaffPage
{
    [BindProperty(SupportsGet = true)] public string? Establishment { get; set; }
    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Password { get; set; }
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }
    public string? Error { get; private set; }

    /// <summary>?establishment=… pre-fills the field (a bookmark per hospital); a server with one establishment fills it itself.</summary>
    public async Task OnGetAsync()
    {
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
