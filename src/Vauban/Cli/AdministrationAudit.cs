// Administrative acts from the command line (accounts, clients, establishments, the guard) go on the tenant's audit
// chain like acts on records: who ran the command (the operating-system user), what, on which account or client.
// Each act writes its entry in the transaction that does it, so an audit log that cannot be written leaves the act
// undone (fail closed) and an act that fails leaves no success entry.
using Vauban.Access;

namespace Vauban.Cli;

internal static class AdministrationAudit
{
    /// <summary>The operator at the command line, as the audit entry names them.</summary>
    public static AccessContext Context(Tenant tenant) => AccessContext.Operator(tenant, "administration");
}
