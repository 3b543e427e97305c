// Who is asking, for which establishment, and why. Every call into the records services carries one;
// the policy, guard and audit read it.
namespace Vauban.Access;

public enum PrincipalKind { ApiClient, Person, System }

/// <summary>The staff roles of an establishment. The access policy decides what each may open.</summary>
public enum StaffRole { Physician, Nurse, Secretary, Biologist, Billing, SecurityOfficer, Administrator }

public sealed record Principal(PrincipalKind Kind, string Id, string DisplayName, SmartScopes Scopes)
{
    /// <summary>People only: the role of the account.</summary>
    public StaffRole? Role { get; init; }

    /// <summary>People only: the Practitioner resource id the person acts as (care relationships name it).</summary>
    public string? Practitioner { get; init; }

    /// <summary>People only: the Organization resource id of the person's service (care relationships may name it).</summary>
    public string? Service { get; init; }

    /// <summary>People: the signed-in session, so that revocation and break-the-glass grants bind to it. API clients: the bearer
    /// token (<c>token-…</c>, see ApiClients.TokenId), so that the audit ties each act to the token request that issued it.</summary>
    public string? SessionId { get; init; }

    /// <summary>People only: when the person last proved both factors (re-authentication for sensitive acts).</summary>
    public DateTimeOffset? AuthenticatedAt { get; init; }

    /// <summary>API clients only: when set, the client may touch only these patients' compartments.</summary>
    public IReadOnlyList<string>? PatientLimit { get; init; }

    /// <summary>API clients only: when true, the client may touch only resources it created.</summary>
    public bool OwnResourcesOnly { get; init; }
}

public sealed record Tenant(long Id, string Name);

/// <summary>Purposes of use an entry records, as HL7 v3 ActReason (PurposeOfUse) codes; the AuditEvent view codes them.
/// Other purposes (an operator's stated reason at the command line) are free text.</summary>
public static class KnownPurposes
{
    public const string CodeSystem = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

    /// <summary>Care: what a person does through the records in the ordinary way, and a client registered for care (the default).</summary>
    public const string Treatment = "TREAT";

    /// <summary>Emergency care: what a person does under a break-the-glass grant.</summary>
    public const string EmergencyTreatment = "ETREAT";

    /// <summary>Running the health system: the security officer reviewing the audit log.</summary>
    public const string SystemAdministration = "HSYSADMIN";

    /// <summary>Administrative and contractual work around care: scheduling, bed management, a hospital's other systems.</summary>
    public const string Operations = "HOPERAT";

    /// <summary>Billing and payment for care: an invoicing system, an insurer's link.</summary>
    public const string Payment = "HPAYMT";

    /// <summary>Research: a research warehouse or a study's data extraction.</summary>
    public const string Research = "HRESCH";

    /// <summary>Reporting to public health authorities (notifiable diseases, registries).</summary>
    public const string PublicHealth = "PUBHLTH";

    /// <summary>Quality improvement: indicators, clinical audit.</summary>
    public const string QualityImprovement = "HQUALIMP";

    /// <summary>The purposes a registered API client may act for, set when it is registered; Treatment by default. Not
    /// EmergencyTreatment (a person's act under a break-the-glass grant) nor SystemAdministration (the officer's review of the log):
    /// those say who acted as much as why, and a client stated either would read as one of them.</summary>
    public static IReadOnlyList<string> ForClients { get; } = [Treatment, Payment, Operations, Research, PublicHealth, QualityImprovement];

    /// <summary>The code's display in v3-ActReason, or null for a purpose that is not one of these codes.</summary>
    public static string? Display(string? purpose) => purpose switch
    {
        Treatment => "treatment",
        EmergencyTreatment => "Emergency Treatment",
        SystemAdministration => "health system administration",
        Operations => "healthcare operations",
        Payment => "healthcare payment",
        Research => "healthcare research",
        PublicHealth => "public health",
        QualityImprovement => "health quality improvement",
        _ => null,
    };
}

public sealed record AccessContext(Principal Principal, Tenant Tenant, string Purpose, string? SourceAddress = null, string? CorrelationId = null)
{
    /// <summary>Why the principal needs a bulk read ($everything beyond a few patients, deep search pages), as stated in the request.</summary>
    public string? StatedReason { get; init; }

    /// <summary>The class of the requesting device (browser family and system, or client library; see Guard.DeviceClass), for the guard's new-device signal.</summary>
    public string? Device { get; init; }

    /// <summary>The base URL of the FHIR API as this request reached it (scheme, host, path; the trusted proxy's when there is one):
    /// an absolute reference under it names a record here and is treated as the relative one. Null outside HTTP.</summary>
    public string? ServerBase { get; init; }

    /// <summary>The context of an operator's command-line act (seed, import): full scopes on one tenant, purpose stated.</summary>
    public static AccessContext Operator(Tenant tenant, string purpose) =>
        new(new Principal(PrincipalKind.System, "cli:" + Environment.UserName, "command line (" + Environment.UserName + ")", FullScopes), tenant, purpose);

    private static readonly SmartScopes FullScopes =
        SmartScopes.TryParse("system/*.cruds", Records.TypeCodes.Names, out var scopes, out _) ? scopes : SmartScopes.None;
}
