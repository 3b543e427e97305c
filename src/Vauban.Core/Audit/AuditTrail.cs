// The audit append in the one door: called for every access before data leaves. The tamper-evident
// chain of the audit issue is written here; until then the seam records nothing.
using Vauban.Access;

namespace Vauban.Audit;

public sealed class AuditTrail
{
    public Task AppendAsync(AccessContext context, Interaction interaction, string resourceType, IReadOnlyList<string> resourceIds, bool succeeded, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _ = (interaction, resourceType, resourceIds, succeeded);
        return Task.CompletedTask;
    }
}
