// Who is asking, for which establishment, and why. Every call into the records services carries one;
// the policy, guard and audit read it.
namespace Vauban.Access;

public enum PrincipalKind { ApiClient, Person, System }

public sealed record Principal(PrincipalKind Kind, string Id, string DisplayName, SmartScopes Scopes);

public sealed record Tenant(long Id, string Name);

public sealed record AccessContext(Principal Principal, Tenant Tenant, string Purpose, string? SourceAddress = null, string? CorrelationId = null)
{
    /// <summary>The context of an operator's command-line act (seed, import): full scopes on one tenant, purpose stated.</summary>
    public static AccessContext Operator(Tenant tenant, string purpose) =>
        new(new Principal(PrincipalKind.System, "cli:" + Environment.UserName, "command line (" + Environment.UserName + ")", FullScopes), tenant, purpose);

    private static readonly SmartScopes FullScopes =
        SmartScopes.TryParse("system/*.cruds", Records.TypeCodes.Names, out var scopes, out _) ? scopes : SmartScopes.None;
}
