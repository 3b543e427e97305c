// Administrative acts from the command line (accounts, clients, establishments) go on the tenant's audit
// chain like acts on records: who ran the command (the operating-system user), what, on which account or client.
using Vauban.Access;
using Vauban.Audit;

namespace Vauban.Cli;

internal static class AdministrationAudit
{
    public static Task RecordAsync(VaubanStore store, Tenant tenant, string act, string target, CancellationToken cancellationToken) =>
        store.Audit.AppendAsync(AccessContext.Operator(tenant, "administration"), AuditAction.Administration, AuditOutcome.Success, null,
            [new AuditedRecord(target, null, null)], cancellationToken, act);
}
