// Administrative acts from the command line (accounts, clients, establishments, the guard) go on the tenant's audit
// chain like acts on records: who ran the command (the operating-system user), what, on which account or client.
// Acts that create or change rows in one transaction (users add, clients add, tenants add, guard release, export
// decisions) write their entry in that transaction (Context); the others record it first (RecordAsync).
using Vauban.Access;
using Vauban.Audit;

namespace Vauban.Cli;

internal static class AdministrationAudit
{
    /// <summary>The operator at the command line, as the audit entry names them.</summary>
    public static AccessContext Context(Tenant tenant) => AccessContext.Operator(tenant, "administration");

    public static Task RecordAsync(VaubanStore store, Tenant tenant, string act, string target, CancellationToken cancellationToken) =>
        store.Audit.AppendAsync(Context(tenant), AuditAction.Administration, AuditOutcome.Success, null,
            [new AuditedRecord(target, null, null)], cancellationToken, act);
}
