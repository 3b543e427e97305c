using Microsoft.AspNetCore.Mvc;
using Vauban.Access;

namespace Vauban.Web.Pages.Account.SignIn;

[RequireSession(SessionStage.SecondFactor)]
public sealed class RecoveryModel : StaffPage
{
    [BindProperty] public string? Code { get; set; }
    public string? Error { get; private set; }

    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync()
    {
        var outcome = await People.SecondFactorAsync(HttpContext, Code, recovery: true);
        if (outcome.Result == SignInResult.SignedIn) return Redirect("/account/recovery-codes");
        if (HttpContext.Person() is null) return Redirect("/account/signin");
        Error = outcome.Result == SignInResult.Throttled ? outcome.Message : "The recovery code is not correct or was already used.";
        return Page();
    }
}
