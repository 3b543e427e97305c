using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Mvc;
using QRCoder;
using Vauban.Access;

namespace Vauban.Web.Pages.Account.Enrol;

/// <summary>
/// Enrols an authenticator app: its key is shown (QR code and text) until its first code confirms it. A confirmed key is
/// never shown again; a signed-in person who proved both factors within 5 minutes (after a lost phone, with a recovery
/// code) may replace it: a new key is shown, carried by the form, and takes the old one's place only when a code from it
/// is typed, so the old app's codes work until then and nothing is lost by leaving half-way.
/// </summary>
[RequireSession(SessionStage.Enrolment)]
public sealed class TotpEnrolModel : StaffPage
{
    [BindProperty] public string? Code { get; set; }
    [BindProperty] public string? NewKey { get; set; }
    public string Secret { get; private set; } = "";
    public string QrDataUri { get; private set; } = "";
    public string? Error { get; private set; }

    /// <summary>A confirmed authenticator exists and no replacement is being enrolled: nothing secret on the page.</summary>
    public bool Enrolled { get; private set; }

    public async Task OnGetAsync()
    {
        if (Person!.User!.TwoFactorEnabled)
        {
            Enrolled = true;
            return;
        }
        await PrepareAsync(null);
    }

    public async Task<IActionResult> OnPostReplaceAsync()
    {
        if (!Person!.User!.TwoFactorEnabled) return Redirect("/account/enrol/totp");
        var key = Base32.Encode(RandomNumberGenerator.GetBytes(20));
        // The form carries the key sealed for this account and session, for an hour: the server enrols only a key it made
        // (a key the browser chose — all zeros, one an attacker knows — was enrolled as given).
        NewKey = KeyProtector().Protect(key, TimeSpan.FromHours(1));
        await PrepareAsync(key);
        return Page();
    }

    private ITimeLimitedDataProtector KeyProtector() =>
        HttpContext.RequestServices.GetRequiredService<IDataProtectionProvider>()
            .CreateProtector("Vauban.TotpReplacement", Person!.User!.Id, Person.Session.Id).ToTimeLimitedDataProtector();

    /// <summary>The key the Replace handler made and sealed into the form, or null (altered, another session's, expired).</summary>
    private string? IssuedKey()
    {
        if (NewKey is not { Length: > 0 and < 1024 }) return null;
        try
        {
            var key = KeyProtector().Unprotect(NewKey);
            return IsKey(key) ? key : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = Person!.User!;
        var replacing = user.TwoFactorEnabled;
        string? issued = null;
        if (replacing)
        {
            issued = IssuedKey();
            if (issued is null)
            {
                Enrolled = true;
                Error = "Start again: choose “Replace it” to get a new key.";
                return Page();
            }
            // Checked against the new key; stored (sealed) only once a code from it is accepted.
            user.AuthenticatorKey = issued;
        }
        if (user.AuthenticatorKey is not null && await People.Users.VerifyUserTokenAsync(user, TotpAuthenticator.ProviderName, TotpAuthenticator.EnrolPurpose, Code ?? ""))
        {
            await People.Users.SetTwoFactorEnabledAsync(user, true);
            // A replaced authenticator (a lost or stolen phone): the sessions opened with the old one end; this one goes on.
            if (replacing) await Store.Sessions.EndOthersAsync(user.Id, Person.Session.Id, HttpContext.RequestAborted);
            if (!await People.StartAsync(HttpContext, user, SessionStage.Full, ceremony: null,
                signedIn: replacing ? "authenticator app replaced (TOTP)" : "enrolment (password + TOTP)"))
            {
                return Redirect("/account/signin"); // the account was reset meanwhile: its new enrolment link starts again
            }
            return Redirect(replacing ? "/" : "/account/recovery-codes");
        }
        Error = "The code is not correct. Check the phone's clock and type the current code.";
        await PrepareAsync(issued);
        return Page();
    }

    private static bool IsKey(string? key) =>
        key is { Length: 32 } && key.All(c => c is >= 'A' and <= 'Z' or >= '2' and <= '7');

    private async Task PrepareAsync(string? replacement)
    {
        var user = Person!.User!;
        if (replacement is null && user.AuthenticatorKey is null) await People.Users.ResetAuthenticatorKeyAsync(user);
        var key = replacement ?? user.AuthenticatorKey!;
        Secret = string.Join(' ', key.Chunk(4).Select(c => new string(c)));
        var uri = TotpAuthenticator.OtpAuthUri("Vauban " + user.Tenant.Name, user.Email, key);
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        var png = new PngByteQRCode(data).GetGraphic(5);
        QrDataUri = "data:image/png;base64," + Convert.ToBase64String(png);
    }
}
