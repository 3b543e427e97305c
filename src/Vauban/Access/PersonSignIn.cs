// Sign-in of people, step by step: password (throttled per account and per source, dummy hash for
// unknown accounts, lockout with an alert to the security officer), then TOTP, a recovery code or a
// passkey; or a passkey alone (user verification makes it multi-factor). Each step that succeeds
// starts a new session (new token, old row deleted). Every failure answers the same words whether or
// not the account exists.
using System.Security.Cryptography;
using Microsoft.AspNetCore.Identity;
using Vauban.Access;
using Vauban.Audit;

namespace Vauban.Web;

public enum SignInResult { Failed, Throttled, SecondFactorNeeded, NotEnrolled, SignedIn }

public sealed record SignInOutcome(SignInResult Result, TimeSpan? Wait = null)
{
    /// <summary>One message for every failure: unknown establishment, unknown account, wrong password, locked account.</summary>
    public const string FailureMessage = "Sign-in failed: the establishment, e-mail address or password is not correct, or the account is locked. After repeated failures ask your security officer.";

    /// <summary>A refused passkey: no establishment, e-mail address or password was typed, so the words above would mislead.</summary>
    public const string PasskeyFailureMessage = "The passkey was not accepted (not a passkey of this account, a request that expired, or a locked account). Try again; after repeated failures ask your security officer.";

    public string Message => Result switch
    {
        SignInResult.Throttled => $"Too many attempts. Wait {SignInThrottle.WaitText(Wait ?? TimeSpan.FromSeconds(1))} and try again.",
        SignInResult.NotEnrolled => "This account has no second factor yet. Ask your security officer for a new enrolment link.",
        _ => FailureMessage,
    };
}

public sealed class PersonSignIn
{
    private readonly VaubanStore _store;
    private readonly UserManager<StaffUser> _users;
    private readonly IPasskeyHandler<StaffUser> _passkeys;
    private readonly DummyPasswordHash _dummy;
    private readonly ILogger _log;

    /// <summary>Sign-in events are logged with the principal id and source address, never the e-mail address.</summary>
    public PersonSignIn(VaubanStore store, UserManager<StaffUser> users, IPasskeyHandler<StaffUser> passkeys, DummyPasswordHash dummy, ILoggerFactory logs)
    {
        ArgumentNullException.ThrowIfNull(logs);
        _log = logs.CreateLogger("Vauban.SignIn");
        _store = store;
        _users = users;
        _passkeys = passkeys;
        _dummy = dummy;
    }

    public UserManager<StaffUser> Users => _users;

    private static string? Source(HttpContext http) => http.Connection.RemoteIpAddress?.ToString();

    /// <summary>The source address as the throttle counts it (an IPv6 address by its /64; in the establishment's own networks or not).</summary>
    private SignInSource? ThrottleSource(HttpContext http) => _store.Throttle.SourceOf(http.Connection.RemoteIpAddress);

    public async Task<SignInOutcome> PasswordAsync(HttpContext http, string? establishment, string? email, string? password)
    {
        ArgumentNullException.ThrowIfNull(http);
        var ct = http.RequestAborted;
        email = (email ?? "").Trim();
        password ??= "";
        var tenant = Tenants.IsValidName(establishment) ? await _store.Tenants.FindTypedAsync(establishment!, ct) : null;
        var accountKey = tenant is null
            ? "none:" + Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes((establishment ?? "") + "\n" + StaffAccounts.NormalizeEmail(email))))[..16]
            : await _store.Accounts.AccountKeyAsync(tenant, email, ct);
        var user = tenant is null || !StaffAccounts.IsValidEmail(email) ? null : await _store.Accounts.FindAsync(tenant, email, ct);
        var admission = await _store.Throttle.AdmitAsync(accountKey, ThrottleSource(http), tenant?.Id, ct);
        if (admission.Wait is { } wait)
        {
            // A throttled attempt is a failed sign-in too: brute force shows on the chain while it is held back.
            if (tenant is not null) await AuditAsync(http, tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure, user is null ? "unknown account; throttled" : "throttled");
            return new SignInOutcome(SignInResult.Throttled, wait);
        }

        var locked = user is not null && await _users.IsLockedOutAsync(user);
        if (user?.PasswordHash is null || locked)
        {
            // Same work as a real check, so the answer's timing does not tell whether the account exists.
            _users.PasswordHasher.VerifyHashedPassword(user ?? DummyPasswordHash.User, _dummy.Hash, password);
            if (tenant is not null)
            {
                // What was typed is not recorded (a password is sometimes typed into the e-mail field).
                await AuditAsync(http, tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure,
                    user is null ? "unknown account" : locked ? "account locked" : "account not enrolled");
            }
            return new SignInOutcome(SignInResult.Failed);
        }
        if (!await _users.CheckPasswordAsync(user, password))
        {
            await FailAsync(http, user, "password");
            return new SignInOutcome(SignInResult.Failed);
        }
        await _store.Throttle.TakeBackAsync(admission, ct);
        if (!user.HasSecondFactor)
        {
            await AuditAsync(http, user.Tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure, "password correct; no second factor enrolled");
            return new SignInOutcome(SignInResult.NotEnrolled);
        }
        // The failure count and the account's delays stay until the second factor is proven too: cleared here, they let whoever
        // holds the password guess codes without end, signing in with the password again before each lockout.
        if (!await StartAsync(http, user, SessionStage.SecondFactor, ceremony: null)) return new SignInOutcome(SignInResult.Failed);
        return new SignInOutcome(SignInResult.SecondFactorNeeded);
    }

    /// <summary>A TOTP code (once per time step) or, with <paramref name="recovery"/>, a single-use recovery code.</summary>
    public async Task<SignInOutcome> SecondFactorAsync(HttpContext http, string? code, bool recovery)
    {
        ArgumentNullException.ThrowIfNull(http);
        var person = http.Person();
        if (person is not { Session.Stage: SessionStage.SecondFactor, User: { } user }) return new SignInOutcome(SignInResult.Failed);
        var accountKey = await _store.Accounts.AccountKeyAsync(user.Tenant, user.Email, http.RequestAborted);
        var admission = await _store.Throttle.AdmitAsync(accountKey, ThrottleSource(http), user.Tenant.Id, http.RequestAborted);
        if (admission.Wait is { } wait)
        {
            await AuditAsync(http, user.Tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure, (recovery ? "recovery code" : "authenticator code") + " throttled");
            return new SignInOutcome(SignInResult.Throttled, wait);
        }
        var ok = recovery
            ? (await _users.RedeemTwoFactorRecoveryCodeAsync(user, (code ?? "").Trim())).Succeeded
            : await _users.VerifyTwoFactorTokenAsync(user, TotpAuthenticator.ProviderName, code ?? "");
        if (!ok)
        {
            await FailAsync(http, user, recovery ? "recovery code" : "authenticator code");
            return new SignInOutcome(SignInResult.Failed);
        }
        await ClearFailuresAsync(http, user, accountKey, admission);
        if (!await StartAsync(http, user, SessionStage.Full, ceremony: null, signedIn: recovery ? "password + recovery code" : "password + TOTP")) return new SignInOutcome(SignInResult.Failed);
        _log.LogInformation("Sign-in of {Principal} from {Source} ({Factor})", user.PrincipalId, Source(http), recovery ? "recovery code" : "TOTP");
        return new SignInOutcome(SignInResult.SignedIn);
    }

    /// <summary>WebAuthn request options for a passkey assertion: for anyone (discoverable credential) or, once signed in, for the session's person.</summary>
    public async Task<string> PasskeyRequestOptionsAsync(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var person = http.Person();
        var user = person?.Session.Stage is SessionStage.SecondFactor or SessionStage.Full ? person.User : null;
        var options = await _passkeys.MakeRequestOptionsAsync(user, http);
        if (person is not null && person.Session.Stage != SessionStage.Challenge)
            await _store.Sessions.SetCeremonyAsync(person.Session, options.AssertionState, http.RequestAborted);
        else
            await StartAsync(http, null, SessionStage.Challenge, options.AssertionState);
        return options.RequestOptionsJson;
    }

    /// <summary>Verifies a passkey assertion; on success the person is fully signed in (or, when <paramref name="reauthenticate"/>, the session's proof is refreshed).</summary>
    public async Task<SignInOutcome> PasskeyAsync(HttpContext http, string credentialJson, bool reauthenticate)
    {
        ArgumentNullException.ThrowIfNull(http);
        var person = http.Person();
        if (person?.Session.Ceremony is not { } state) return new SignInOutcome(SignInResult.Failed);
        await _store.Sessions.SetCeremonyAsync(person.Session, null, http.RequestAborted); // one try per challenge
        var source = ThrottleSource(http);
        // Per source address, and per account when the session already names one (second factor, re-authentication). Not one
        // counter for everybody: three forged assertions from anywhere held back every passkey sign-in of the server.
        var accountKey = person.User is { } expected ? await _store.Accounts.AccountKeyAsync(expected.Tenant, expected.Email, http.RequestAborted) : null;
        var admission = await _store.Throttle.AdmitAsync(accountKey, source, person.User?.Tenant.Id, http.RequestAborted);
        if (admission.Wait is { } wait) return new SignInOutcome(SignInResult.Throttled, wait);
        PasskeyAssertionResult<StaffUser> result;
        try
        {
            result = await _passkeys.PerformAssertionAsync(new PasskeyAssertionContext { CredentialJson = credentialJson, AssertionState = state, HttpContext = http });
        }
        catch (Exception e) when (e is PasskeyException or System.Text.Json.JsonException or FormatException or ArgumentException)
        {
            result = PasskeyAssertionResult.Fail<StaffUser>(new PasskeyException("invalid"));
        }
        var user = result.Succeeded ? result.User : null;
        if (user is null || await _users.IsLockedOutAsync(user) || (person.User is not null && person.User.Id != user.Id))
        {
            // Counted against the source when admitted; against the account too when the credential named one the session did not.
            if (accountKey is null && user is not null)
                await _store.Throttle.RecordFailureAsync(await _store.Accounts.AccountKeyAsync(user.Tenant, user.Email, http.RequestAborted), null, http.RequestAborted);
            // An unknown credential names no establishment; a known one is recorded against its account.
            if (user is not null) await AuditAsync(http, user.Tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure, "passkey refused");
            return new SignInOutcome(SignInResult.Failed);
        }
        await _users.AddOrUpdatePasskeyAsync(user, result.Passkey!); // sign count
        if (reauthenticate && person.Session.Stage == SessionStage.Full)
        {
            await _store.Throttle.TakeBackAsync(admission, http.RequestAborted);
            await AuditAsync(http, user.Tenant, user, AuditAction.SignIn, AuditOutcome.Success, "re-authentication (passkey)");
            http.WriteCookie(await _store.Sessions.MarkAuthenticatedAsync(person.Session, http.RequestAborted));
            return new SignInOutcome(SignInResult.SignedIn);
        }
        await ClearFailuresAsync(http, user, accountKey ?? await _store.Accounts.AccountKeyAsync(user.Tenant, user.Email, http.RequestAborted), admission);
        if (!await StartAsync(http, user, SessionStage.Full, ceremony: null, signedIn: "passkey")) return new SignInOutcome(SignInResult.Failed);
        _log.LogInformation("Passkey sign-in of {Principal} from {Source}", user.PrincipalId, Source(http));
        return new SignInOutcome(SignInResult.SignedIn);
    }

    /// <summary>Re-authentication with password and (when enrolled) a TOTP code: refreshes the session's proof time.</summary>
    public async Task<SignInOutcome> ReauthenticateAsync(HttpContext http, string? password, string? code)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (http.FullPerson() is not { User: { } user } person) return new SignInOutcome(SignInResult.Failed);
        var accountKey = await _store.Accounts.AccountKeyAsync(user.Tenant, user.Email, http.RequestAborted);
        var admission = await _store.Throttle.AdmitAsync(accountKey, ThrottleSource(http), user.Tenant.Id, http.RequestAborted);
        if (admission.Wait is { } wait)
        {
            await AuditAsync(http, user.Tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure, "re-authentication throttled");
            return new SignInOutcome(SignInResult.Throttled, wait);
        }
        // Both factors: the password and a TOTP code. An account whose second factor is a passkey re-authenticates with the
        // passkey (PasskeyAsync); its password alone is one factor and never refreshes the proof.
        var ok = user.TwoFactorEnabled
            && await _users.CheckPasswordAsync(user, password ?? "")
            && await _users.VerifyTwoFactorTokenAsync(user, TotpAuthenticator.ProviderName, code ?? "");
        if (!ok)
        {
            await FailAsync(http, user, "re-authentication");
            return new SignInOutcome(SignInResult.Failed);
        }
        await _store.Throttle.TakeBackAsync(admission, http.RequestAborted);
        await AuditAsync(http, user.Tenant, user, AuditAction.SignIn, AuditOutcome.Success, "re-authentication (password + TOTP)");
        http.WriteCookie(await _store.Sessions.MarkAuthenticatedAsync(person.Session, http.RequestAborted));
        return new SignInOutcome(SignInResult.SignedIn);
    }

    /// <summary>Both factors proven: the account's failure count and delays start again from nothing. Failed sign-ins of the
    /// account before this success (password or second factor) are one of the guard's signals: past its threshold the
    /// account's reading is held to tighter bounds for the session's lifetime.</summary>
    private async Task ClearFailuresAsync(HttpContext http, StaffUser user, string accountKey, ThrottleAdmission admission)
    {
        if (user.AccessFailedCount > 0)
        {
            await _store.Guard.NoteSignInAsync(
                new AccessContext(new Principal(PrincipalKind.Person, user.PrincipalId, user.DisplayName, SmartScopes.None) { Role = user.Role, Service = user.Service },
                    user.Tenant, "sign-in", Source(http), http.TraceIdentifier), user.AccessFailedCount, http.RequestAborted);
        }
        await _users.ResetAccessFailedCountAsync(user);
        await _store.Throttle.RecordSuccessAsync(accountKey, http.RequestAborted);
        await _store.Throttle.TakeBackAsync(admission, http.RequestAborted, sourceOnly: true);
    }

    /// <summary>Sign-ins, failures and sign-outs go on the tenant's audit chain like any act on records (issue 4):
    /// the account (or "unknown account"), its role, the source address and session, never what was typed.</summary>
    public Task AuditAsync(HttpContext http, Tenant tenant, StaffUser? user, AuditAction action, AuditOutcome outcome, string note) =>
        AuditAsync(http, tenant, user, action, outcome, note, http?.Person()?.Session.Id);

    /// <summary>As above, naming <paramref name="sessionId"/>: the session an act opens rather than the request's.</summary>
    public Task AuditAsync(HttpContext http, Tenant tenant, StaffUser? user, AuditAction action, AuditOutcome outcome, string note, string? sessionId)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(tenant);
        var principal = user is null
            ? new Principal(PrincipalKind.Person, "unknown", "unknown account", SmartScopes.None)
            : new Principal(PrincipalKind.Person, user.PrincipalId, user.DisplayName, SmartScopes.None) { Role = user.Role, Service = user.Service, SessionId = sessionId };
        return _store.Audit.AppendAsync(new AccessContext(principal, tenant, "sign-in", Source(http), http.TraceIdentifier), action, outcome, null, [], http.RequestAborted, note);
    }

    /// <summary>Moves the request's person to a new session at <paramref name="stage"/> (new token, old row deleted) and sets the cookie.
    /// With <paramref name="signedIn"/> (how the person proved who they are), the sign-in entry naming the new session is appended
    /// first: if it cannot be written, no session opens (fail closed). False, and no session, when the account's credentials
    /// changed since <paramref name="user"/> was read (an officer's reset during the sign-in), recorded as a failed sign-in.</summary>
    public Task<bool> StartAsync(HttpContext http, StaffUser? user, SessionStage stage, string? ceremony, string? signedIn = null) =>
        StartAsync(http, user, stage, ceremony, StaffSessions.NewSessionId(), signedIn);

    /// <summary>As above with a session id chosen beforehand (<see cref="StaffSessions.NewSessionId"/>), so that entries of the
    /// acts that lead to the session can name it.</summary>
    public async Task<bool> StartAsync(HttpContext http, StaffUser? user, SessionStage stage, string? ceremony, string sessionId, string? signedIn)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (signedIn is not null)
        {
            ArgumentNullException.ThrowIfNull(user);
            await AuditAsync(http, user.Tenant, user, AuditAction.SignIn, AuditOutcome.Success, signedIn, sessionId);
        }
        if (await _store.Sessions.StartAsync(sessionId, http.Person()?.Token, user, stage, Source(http), ceremony, http.RequestAborted) is not { } started)
        {
            await AuditAsync(http, user!.Tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure, "credentials changed during the sign-in; no session opened", sessionId);
            return false;
        }
        http.WriteCookie(started.Token);
        return true;
    }

    private async Task FailAsync(HttpContext http, StaffUser user, string what)
    {
        await AuditAsync(http, user.Tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure, what + " refused");
        await _users.AccessFailedAsync(user);
        if (await _users.IsLockedOutAsync(user))
        {
            _log.LogWarning("{Principal} locked after repeated failed sign-ins (last from {Source})", user.PrincipalId, Source(http));
            // Not the request's cancellation: a guesser who drops the connection after the locking attempt must not keep the
            // account's sessions open or the officer uninformed.
            await _store.Accounts.RevokeSessionsAsync(user.Tenant, user.Email, CancellationToken.None);
            await _store.Alerts.RaiseAsync(user.Tenant.Id, KnownAlertKinds.AccountLocked, user.PrincipalId,
                $"Account locked after {_store.Accounts.Options.LockoutAfterFailures} failed sign-in attempts (last: {what}, from {Source(http)}).", CancellationToken.None);
            // The lock on the account's chain too, not only the attempt that caused it (which read as one more refused password).
            await AuditAsync(http, user.Tenant, user, AuditAction.SignInFailure, AuditOutcome.MinorFailure,
                $"account locked after {_store.Accounts.Options.LockoutAfterFailures} failed sign-in attempts; its sessions ended");
        }
    }

}

/// <summary>A hash of a random password, made once by the host's own hasher: what a sign-in checks the typed password against when
/// the account is unknown, locked or not enrolled, so that the answer takes as long as a real check. One a host (a singleton), not
/// one a process: a process hosting two servers of different work factors (the tests do) gave the second the first one's hash,
/// and its unknown accounts answered thirty times faster than its known ones. Made when the host is built (<c>VaubanHost.Build</c>
/// asks for it before serving): made at the first attempt on an unknown account, that attempt took two hashes' time and told the
/// account unknown.</summary>
public sealed class DummyPasswordHash(Microsoft.Extensions.Options.IOptions<PasswordHasherOptions> options)
{
    /// <summary>The account no one holds, whose hash this is (and whom an unknown account's attempt is checked as).</summary>
    public static StaffUser User { get; } = new()
    {
        Id = "dummy", Tenant = new Tenant(0, "none"), Email = "none@invalid", DisplayName = "none", Role = StaffRole.Nurse,
    };

    /// <summary>The hash, by the host's hasher options (its work factor): the same as the accounts' hasher uses.</summary>
    public string Hash { get; } = new PasswordHasher<StaffUser>(options).HashPassword(User, Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)));
}
