// The guard sits between the policy and the audit in the one door. This seam admits everything for now;
// the guard issue fills in per-principal reading patterns, canaries and containment.
using Vauban.Access;

namespace Vauban.Guard;

public readonly record struct GuardDecision(bool Admitted, string? Reason)
{
    public static GuardDecision Admit => new(true, null);
}

public sealed class RecordsGuard
{
    public GuardDecision Admit(AccessContext context, Interaction interaction, string resourceType, int recordCount)
    {
        ArgumentNullException.ThrowIfNull(context);
        _ = (interaction, resourceType, recordCount);
        return GuardDecision.Admit;
    }
}
