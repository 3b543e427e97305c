// A staff account of one establishment, as ASP.NET Core Identity sees it (TUser). The e-mail address
// and display name are personal data: in the database they exist only sealed under the tenant's data
// key, and the address is found through a blind index. The Identity user name is "<tenant id>:<e-mail>",
// so two establishments never share an account by accident.
namespace Vauban.Access;

public sealed class StaffUser
{
    public required string Id { get; init; }
    public required Tenant Tenant { get; init; }
    public required string Email { get; init; }
    public required string DisplayName { get; init; }
    public required StaffRole Role { get; init; }
    public string? Practitioner { get; init; }
    public string? Service { get; init; }

    public string? PasswordHash { get; set; }
    public string SecurityStamp { get; set; } = "";

    /// <summary>The security stamp the store held when this copy was read (or last written): credentials are written back
    /// only while the store still holds it, so that a copy read before an officer's reset cannot restore what was reset.</summary>
    internal string StoredStamp { get; set; } = "";
    public string? AuthenticatorKey { get; set; }
    public bool TwoFactorEnabled { get; set; }
    public DateTimeOffset? LockoutEnd { get; set; }
    public int AccessFailedCount { get; set; }

    /// <summary>True when a passkey Vauban enrolled or a confirmed TOTP authenticator is (the account may then fully sign in).
    /// Asked when the account is read for a sign-in, an enrolment or a list (<see cref="StaffAccounts.FindAsync"/>,
    /// <see cref="StaffAccounts.FindByIdAsync"/>, <see cref="StaffAccounts.ListAsync"/>); not for a session's request, where no
    /// one uses it and a passkey-only account's passkeys would be read and checked on every page (ADR 0014): there, ask
    /// <see cref="StaffAccounts.HasSecondFactorAsync"/>. Read unasked, it throws rather than guess.</summary>
    public bool HasSecondFactor
    {
        get => _hasSecondFactor ?? throw new InvalidOperationException(
            "Whether this account has a second factor was not asked when it was read (a session's account): ask StaffAccounts.HasSecondFactorAsync.");
        internal set => _hasSecondFactor = value;
    }

    private bool? _hasSecondFactor;

    /// <summary>The answer of <see cref="HasSecondFactor"/> when it was asked, else null.</summary>
    internal bool? KnownSecondFactor => _hasSecondFactor;

    public string UserName => $"{Tenant.Id}:{Email}";

    /// <summary>The principal id the records services, audit and grants see.</summary>
    public string PrincipalId => PrincipalPrefix + Id;

    public const string PrincipalPrefix = "user:";

    /// <summary>The SMART scopes of a signed-in person: everything, for the access policy to narrow by role and care relationship.</summary>
    public static SmartScopes PersonScopes { get; } =
        SmartScopes.TryParse("user/*.cruds", Records.TypeCodes.Names, out var scopes, out _) ? scopes : SmartScopes.None;

    public override string ToString() => PrincipalId;
}

/// <summary>The options of the Access part for people: passwords, throttling, sessions. Validated at start.</summary>
public sealed record AccountOptions
{
    /// <summary>NIST SP 800-63B-4 allows 8 when a second factor is always required, as here.</summary>
    public int PasswordMinLength { get; init; } = 8;
    public int PasswordMaxLength { get; init; } = 256;
    /// <summary>PBKDF2-HMAC-SHA512 iterations (ASP.NET Core Identity V3 format). Older hashes are upgraded at the next sign-in.</summary>
    public int PasswordIterations { get; init; } = 600_000;
    /// <summary>Consecutive failures that lock an account until the security officer unlocks it (NIST allows up to 100).</summary>
    public int LockoutAfterFailures { get; init; } = 10;
    /// <summary>Failures on one account (known or not) before each further attempt must wait, doubling from 1 s.</summary>
    public int AccountFailuresBeforeDelay { get; init; } = 3;
    /// <summary>Failures from one source address before each further attempt must wait, doubling from 1 s (credential stuffing).</summary>
    public int SourceFailuresBeforeDelay { get; init; } = 20;

    /// <summary>The establishment's own networks (its LAN, the address its NAT or proxy shows): a source in one of them is never
    /// delayed for the failures of the source as a whole, since hundreds of colleagues sign in from it and one person's typos
    /// (or an insider's wrong passwords on purpose) must not make all of them wait. Each account's own failures still delay it
    /// and lock it; the source's failures raise an alert instead (<see cref="InternalSourceFailuresBeforeAlert"/>). ADR 0007.</summary>
    public IReadOnlyList<System.Net.IPNetwork> InternalNetworks { get; init; } = [];

    /// <summary>Failed sign-ins from one source in an internal network, within about an hour, that raise a
    /// <see cref="KnownAlertKinds.SignInSpraying"/> alert to the security officer (password spraying from inside), then again
    /// for every further as many.</summary>
    public int InternalSourceFailuresBeforeAlert { get; init; } = 50;
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(15);
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(15);
    public TimeSpan AbsoluteTimeout { get; init; } = TimeSpan.FromHours(12);
    /// <summary>How long a half-done sign-in (password given, second factor pending) or an enrolment session lives.</summary>
    public TimeSpan PendingTimeout { get; init; } = TimeSpan.FromMinutes(10);
    public TimeSpan EnrolmentLinkLifetime { get; init; } = TimeSpan.FromHours(72);

    public void Validate()
    {
        if (PasswordMinLength < 8) throw new VaubanConfigurationException("The minimum password length cannot be below 8 (NIST SP 800-63B-4).");
        if (PasswordMaxLength < 64) throw new VaubanConfigurationException("The maximum password length must be at least 64.");
        // Said of the minimum, the length the operator set (serve --password-min-length 99999 read "the maximum ... at least 64").
        if (PasswordMinLength > PasswordMaxLength) throw new VaubanConfigurationException($"The minimum password length cannot be above the maximum, {PasswordMaxLength}.");
        if (PasswordIterations < 600_000) throw new VaubanConfigurationException("PBKDF2 needs at least 600,000 iterations.");
        if (LockoutAfterFailures is < 3 or > 100) throw new VaubanConfigurationException("Lockout after 3 to 100 failures.");
        if (InternalSourceFailuresBeforeAlert < 1) throw new VaubanConfigurationException("The failures from an internal network's source that alert the security officer must be at least 1.");
        // Wider than any establishment's own addresses: the whole internet (or a good part of it) spared the per-source delays.
        if (NetworkList.WiderThanAnEstablishment(InternalNetworks) is { } wide)
        {
            throw new VaubanConfigurationException($"The internal network {wide} is wider than an establishment's own networks (at most /8 in IPv4, /7 in IPv6): sources in it are not delayed per source address.");
        }
        if (IdleTimeout <= TimeSpan.Zero || AbsoluteTimeout < IdleTimeout) throw new VaubanConfigurationException("Session timeouts must be positive, the absolute one no shorter than the idle one.");
    }
}
