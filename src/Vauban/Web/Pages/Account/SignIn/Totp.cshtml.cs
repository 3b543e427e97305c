using Microsoft.AspNetCore.Mvc;
using Vauban.Access;

namespace Vauban.Web.Pages.Account.SignIn;

[RequireSession(SessionStage.SecondFactor)]
public sealed class TotpModel : StaffPage
{
    [BindProperty] public string? Code { get; set; }
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }
    public string? Error { get; private set; }

    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync()
    {
        var outcome = await People.SecondFactorAsync(HttpContext, Code, recovery: false);
        if (outcome.Result == SignInResult.SignedIn) return Redirect(SafeReturnUrl(ReturnUrl));
        if (HttpContext.Person() is null) return Redirect("/account/signin");
        Error = outcome.Result == SignInResult.Throttled ? outcome.Message : "The code is not correct or was already used. Wait for the next code.";
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
