// The staff web pages (Razor Pages under Web/Pages) and what they rely on: ASP.NET Core Identity over
// Vauban's own stores (no EF Core, no Identity cookies: the session is Vauban's server-side session),
// PBKDF2-HMAC-SHA512 at the configured iterations, the password rules, TOTP without replay, passkeys,
// antiforgery on every form, and strict security headers.
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Vauban.Access;

namespace Vauban.Web;

internal static class StaffPages
{
    public static void AddStaffPages(this WebApplicationBuilder builder, VaubanStore store)
    {
        var options = store.Accounts.Options;
        var services = builder.Services;
        services.AddSingleton(store);
        services.AddSingleton(options);
        services.AddSingleton(store.Time);
        services.AddSingleton(store.Accounts.Store);
        services.AddSingleton<IUserStore<StaffUser>>(store.Accounts.Store);
        services.AddIdentityCore<StaffUser>(identity =>
            {
                identity.Lockout.MaxFailedAccessAttempts = options.LockoutAfterFailures;
                // Locked until the security officer unlocks it (vauban users unlock).
                identity.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromDays(36_500);
                identity.Lockout.AllowedForNewUsers = true;
                identity.User.AllowedUserNameCharacters = "";
                identity.Tokens.AuthenticatorTokenProvider = TokenOptions.DefaultAuthenticatorProvider;
            })
            .AddTokenProvider<TotpAuthenticator>(TokenOptions.DefaultAuthenticatorProvider);
        services.Configure<PasswordHasherOptions>(hasher =>
        {
            hasher.CompatibilityMode = PasswordHasherCompatibilityMode.IdentityV3;
            hasher.IterationCount = options.PasswordIterations;
        });
        // Our rules replace Identity's composition rules; accounts are validated when created, not by Identity's user validator.
        services.RemoveAll<IPasswordValidator<StaffUser>>();
        services.AddSingleton<IPasswordValidator<StaffUser>>(new PasswordRules(options));
        services.RemoveAll<IUserValidator<StaffUser>>();
        services.Configure<IdentityPasskeyOptions>(passkeys =>
        {
            passkeys.UserVerificationRequirement = "required";
            passkeys.ResidentKeyRequirement = "required";
            passkeys.ValidateOrigin = context => ValueTask.FromResult(!context.CrossOrigin &&
                string.Equals(context.Origin, $"{context.HttpContext.Request.Scheme}://{context.HttpContext.Request.Host}", StringComparison.Ordinal));
        });
        services.TryAddScoped<IPasskeyHandler<StaffUser>, PasskeyHandler<StaffUser>>();
        services.AddSingleton<DummyPasswordHash>();
        services.AddSingleton<SubmittedForms>();
        services.AddSingleton<FormDrafts>();
        services.AddSingleton<ForeignOrigins>();
        services.AddScoped<PersonSignIn>();

        // Antiforgery tokens bind to the signed-in identity. Their keys live in memory: a restart only asks
        // for a form to be re-submitted (sessions themselves are in the database).
        services.AddDataProtection().UseEphemeralDataProtectionProvider();
        // The ephemeral provider replaces the protector, but Data Protection's start-up service still loads its key ring, and on
        // a machine without one wrote a new key, unencrypted, under the user profile (~/.aspnet/DataProtection-Keys) — a key
        // nothing uses, beside a warning that keys are stored in clear. That ring is kept in memory too.
        services.Configure<KeyManagementOptions>(keys =>
        {
            keys.XmlRepository = new InMemoryKeyRing();
            keys.XmlEncryptor = new NullXmlEncryptor();
        });
        services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = "vauban-af";
            antiforgery.Cookie.SameSite = SameSiteMode.Strict;
            antiforgery.Cookie.HttpOnly = true;
            antiforgery.Cookie.SecurePolicy = Microsoft.AspNetCore.Http.CookieSecurePolicy.SameAsRequest;
            antiforgery.HeaderName = "RequestVerificationToken";
        });
        // What an act of the security console did, carried to the page its answer redirects to (ConsolePage.Acted): a cookie
        // protected like the antiforgery one, read once.
        services.Configure<Microsoft.AspNetCore.Mvc.CookieTempDataProviderOptions>(tempData =>
        {
            tempData.Cookie.Name = "vauban-done";
            tempData.Cookie.SameSite = SameSiteMode.Strict;
            tempData.Cookie.HttpOnly = true;
            tempData.Cookie.SecurePolicy = Microsoft.AspNetCore.Http.CookieSecurePolicy.SameAsRequest;
            tempData.Cookie.IsEssential = true;
        });
        services.AddRazorPages(pages =>
        {
            pages.RootDirectory = "/Web/Pages";
            pages.Conventions.ConfigureFilter(new PageMethods());
            pages.Conventions.ConfigureFilter(new SameOriginForms());
            pages.Conventions.ConfigureFilter(new ExpiredForms());
        }).AddApplicationPart(typeof(StaffPages).Assembly);
        // French names and results written as letters, not as character references (é, not &#xE9;): the markup characters
        // (<, >, &, quotes) are encoded all the same.
        services.Configure<Microsoft.Extensions.WebEncoders.WebEncoderOptions>(encoders =>
            encoders.TextEncoderSettings = new System.Text.Encodings.Web.TextEncoderSettings(System.Text.Unicode.UnicodeRanges.All));
    }

    /// <summary>No framing, no inline script, no third-party anything; nothing cached anywhere: a page about people, and FHIR
    /// JSON, which a browser reads with the session cookie too (a read carries Last-Modified, so a browser would otherwise keep
    /// patients' records in its disk cache on a shared ward computer). "no-cache, no-store" and Pragma as antiforgery sets
    /// them on form pages, so that it does not log a warning for every form it overrides.</summary>
    public static void UseSecurityHeaders(this WebApplication app) => app.Use(async (http, next) =>
    {
        SetSecurityHeaders(http);
        await next(http);
    });

    /// <summary>The headers above, on one answer. The exception handler clears an answer's headers before it writes its
    /// error, so it sets them again.</summary>
    public static void SetSecurityHeaders(HttpContext http)
    {
        var headers = http.Response.Headers;
        headers.CacheControl = "no-cache, no-store";
        headers.Pragma = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        // On an answer over HTTPS (or one a trusted proxy forwarded from HTTPS): a staff browser's next visit to http://… goes
        // to https:// itself, so that a first request on the hospital's network cannot be stripped to plain HTTP and the
        // password read (RFC 6797; OWASP ASVS V3.4.1). A year; not over plain HTTP, where the header means nothing.
        if (http.Request.IsHttps) headers.StrictTransportSecurity = "max-age=31536000";
        if (!http.Request.Path.StartsWithSegments("/fhir") && !http.Request.Path.StartsWithSegments("/oauth"))
        {
            headers.ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
        }
    }

    public static void MapStaffPages(this WebApplication app)
    {
        app.MapRazorPages();
        app.MapGet("/account/site.css", () => Results.Text(Assets.Css, "text/css; charset=utf-8"));
        app.MapGet("/account/session.js", () => Results.Text(Assets.SessionScript, "text/javascript; charset=utf-8"));
        app.MapGet("/account/passkey.js", () => Results.Text(Assets.PasskeyScript, "text/javascript; charset=utf-8"));
    }
}

/// <summary>Data Protection's key ring, in memory only (see AddStaffPages).</summary>
internal sealed class InMemoryKeyRing : IXmlRepository
{
    private readonly List<XElement> _elements = [];

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        lock (_elements) return _elements.Select(e => new XElement(e)).ToList();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        lock (_elements) _elements.Add(new XElement(element));
    }
}
