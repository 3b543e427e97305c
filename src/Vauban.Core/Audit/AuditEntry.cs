// What one audit entry says: who (principal, role, session, source), when, which action on which
// records of which patient, why (purpose), and how it ended. Stored as a few clear columns that the chain
// and searches need (tenant, sequence, time, action, outcome, type, blind indexes of principal and
// patient) and a sealed part with everything that identifies someone.
using System.Text.Json.Serialization;

namespace Vauban.Audit;

/// <summary>The audited acts. Stored as numbers: never renumber.</summary>
public enum AuditAction
{
    Read = 1, VRead = 2, History = 3, Search = 4, Create = 5, Update = 6, Delete = 7, Everything = 8, Import = 9, Export = 10,
    SignIn = 11, SignInFailure = 12, SignOut = 13, BreakTheGlass = 14, Administration = 15, Containment = 16, AuditRead = 17,
    /// <summary>A type's history ([type]/_history), since 2026-12-04: before, recorded as <see cref="History"/>.</summary>
    TypeHistory = 18,
    /// <summary>Security records written beside the chain (an alert raised or acknowledged, a containment made or released, a
    /// break-the-glass grant with its explanation): the entry carries their digests (<see cref="AuditDetail.Digests"/>), which
    /// verification holds the rows to (<see cref="SecurityRecords"/>).</summary>
    SecurityRecords = 19,
}

/// <summary>FHIR AuditEvent.outcome codes.</summary>
public enum AuditOutcome { Success = 0, MinorFailure = 4, SeriousFailure = 8, MajorFailure = 12 }

/// <summary>A record an act touched: its type and id, and the patient whose compartment holds it (if any).</summary>
public readonly record struct AuditedRecord(string Type, string? Id, string? Patient);

/// <summary>The sealed part of an entry, as JSON inside the ciphertext.</summary>
public sealed record AuditDetail
{
    [JsonPropertyName("k")] public string PrincipalKind { get; init; } = "";
    [JsonPropertyName("p")] public string Principal { get; init; } = "";
    [JsonPropertyName("n")] public string? PrincipalName { get; init; }
    [JsonPropertyName("r")] public string? Role { get; init; }
    [JsonPropertyName("sv")] public string? Service { get; init; }
    [JsonPropertyName("s")] public string? Session { get; init; }
    [JsonPropertyName("a")] public string? Source { get; init; }
    [JsonPropertyName("c")] public string? Correlation { get; init; }
    [JsonPropertyName("u")] public string Purpose { get; init; } = "";
    [JsonPropertyName("pt")] public string? Patient { get; init; }
    [JsonPropertyName("x")] public IReadOnlyList<string> Records { get; init; } = [];
    [JsonPropertyName("d")] public string? Note { get; init; }

    /// <summary>Digests of the security records the act wrote (<see cref="AuditAction.SecurityRecords"/> entries only); absent
    /// elsewhere, so that no other entry grows.</summary>
    [JsonPropertyName("v"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<SecurityRecordDigest>? Digests { get; init; }

    /// <summary>From this entry on, every security record of the establishment is on the chain: set on an establishment's first
    /// entry (its creation), or on the entry that chained the records existing when this began (schema step 20). Once a chain,
    /// before any entry of records written: another means the store's record of that upgrade was reset to launder rows through it.</summary>
    [JsonPropertyName("vf"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool SecurityRecordsFrom { get; init; }
}

[JsonSerializable(typeof(AuditDetail))]
internal sealed partial class AuditJsonContext : JsonSerializerContext;

/// <summary>One entry as read back and opened.</summary>
public sealed record AuditEntry(long TenantId, long Sequence, DateTimeOffset At, AuditAction Action, AuditOutcome Outcome, string ResourceType, AuditDetail Detail);
