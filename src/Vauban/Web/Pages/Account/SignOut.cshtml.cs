using Microsoft.AspNetCore.Mvc;

namespace Vauban.Web.Pages.Account;

public sealed class SignOutModel : StaffPage
{
    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync()
    {
        if (Person is { } person)
        {
            if (person.User is { } user)
            {
                await HttpContext.RequestServices.GetRequiredService<Vauban.Web.PersonSignIn>()
                    .AuditAsync(HttpContext, user.Tenant, user, Vauban.Audit.AuditAction.SignOut, Vauban.Audit.AuditOutcome.Success, "signed out");
            }
            await Store.Sessions.EndAsync(person.Token, HttpContext.RequestAborted);
        }
        HttpContext.ClearCookie();
        return Redirect("/account/signin?ended=signout");
    }
}
