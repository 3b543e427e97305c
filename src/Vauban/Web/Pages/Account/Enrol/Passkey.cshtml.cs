using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Vauban.Access;

namespace Vauban.Web.Pages.Account.Enrol;

[RequireSession(SessionStage.Enrolment)]
public sealed class PasskeyModel : StaffPage
{
    public void OnGet() { }

    public async Task<IActionResult> OnPostPasskeyOptionsAsync()
    {
        var user = Person!.User!;
        var handler = HttpContext.RequestServices.GetRequiredService<IPasskeyHandler<StaffUser>>();
        var options = await handler.MakeCreationOptionsAsync(new PasskeyUserEntity { Id = user.Id, Name = user.Email, DisplayName = user.DisplayName }, HttpContext);
        await Store.Sessions.SetCeremonyAsync(Person.Session, options.AttestationState, HttpContext.RequestAborted);
        return Content(options.CreationOptionsJson, "application/json");
    }

    public async Task<IActionResult> OnPostPasskeyAsync()
    {
        var person = Person!;
        if (person.Session.Ceremony is not { } state) return Json(new { error = "Start again: the passkey request expired." });
        await Store.Sessions.SetCeremonyAsync(person.Session, null, HttpContext.RequestAborted);
        var handler = HttpContext.RequestServices.GetRequiredService<IPasskeyHandler<StaffUser>>();
        PasskeyAttestationResult result;
        try
        {
            result = await handler.PerformAttestationAsync(new PasskeyAttestationContext { CredentialJson = await ReadBodyAsync(), AttestationState = state, HttpContext = HttpContext });
        }
        catch (Exception e) when (e is PasskeyException or System.Text.Json.JsonException or FormatException or ArgumentException)
        {
            return Json(new { error = "The passkey could not be verified." });
        }
        if (!result.Succeeded || result.Passkey is null || !result.Passkey.IsUserVerified) return Json(new { error = "The passkey could not be verified (it must check your fingerprint, face or PIN)." });
        // The day by the server's clock, in Paris as the pages give dates: the name is what the person will see it listed as.
        result.Passkey.Name = "passkey enrolled " + ParisTime.DateOf(UtcNow).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var added = await People.Users.AddOrUpdatePasskeyAsync(person.User!, result.Passkey);
        if (!added.Succeeded) return Json(new { error = "The passkey could not be saved." });
        if (!await People.StartAsync(HttpContext, person.User, SessionStage.Full, ceremony: null, signedIn: "enrolment (password + passkey)"))
            return Json(new { error = "The account was reset meanwhile: start again from its new enrolment link." });
        return Json(new { redirect = "/account/recovery-codes" });
    }
}
