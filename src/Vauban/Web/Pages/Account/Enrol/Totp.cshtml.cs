using Microsoft.AspNetCore.Mvc;
using QRCoder;
using Vauban.Access;

namespace Vauban.Web.Pages.Account.Enrol;

[RequireSession(SessionStage.Enrolment)]
public sealed class TotpEnrolModel : StaffPage
{
    [BindProperty] public string? Code { get; set; }
    public string Secret { get; private set; } = "";
    public string QrDataUri { get; private set; } = "";
    public string? Error { get; private set; }

    public async Task OnGetAsync() => await PrepareAsync();

    public async Task<IActionResult> OnPostAsync()
    {
        var user = Person!.User!;
        if (user.AuthenticatorKey is not null && await People.Users.VerifyUserTokenAsync(user, TotpAuthenticator.ProviderName, TotpAuthenticator.EnrolPurpose, Code ?? ""))
        {
            await People.Users.SetTwoFactorEnabledAsync(user, true);
            await People.StartAsync(HttpContext, user, SessionStage.Full, ceremony: null, signedIn: "enrolment (password + TOTP)");
            return Redirect("/account/recovery-codes");
        }
        Error = "The code is not correct. Check the phone's clock and type the current code.";
        await PrepareAsync();
        return Page();
    }

    private async Task PrepareAsync()
    {
        var user = Person!.User!;
        if (user.TwoFactorEnabled) { Error = "An authenticator is already enrolled."; }
        if (user.AuthenticatorKey is null) await People.Users.ResetAuthenticatorKeyAsync(user);
        var key = user.AuthenticatorKey!;
        Secret = string.Join(' ', key.Chunk(4).Select(c => new string(c)));
        var uri = TotpAuthenticator.OtpAuthUri("Vauban " + user.Tenant.Name, user.Email, key);
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        var png = new PngByteQRCode(data).GetGraphic(5);
        QrDataUri = "data:image/png;base64," + Convert.ToBase64String(png);
    }
}
