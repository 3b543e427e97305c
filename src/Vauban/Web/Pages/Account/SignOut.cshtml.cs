using Microsoft.AspNetCore.Mvc;

namespace Vauban.Web.Pages.Account;

public sealed class SignOutModel : StaffPage
{
    public void OnGet() { }

    public async Task<IActionResult> OnPostAsync()
    {
        if (Person is { } person) await Store.Sessions.EndAsync(person.Token, HttpContext.RequestAborted);
        HttpContext.ClearCookie();
        return Redirect("/account/signin");
    }
}
