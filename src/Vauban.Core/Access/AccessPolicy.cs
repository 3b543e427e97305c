// The one access policy. Today it enforces the principal's SMART scopes per interaction; the care-
// relationship and role rules of the access issue plug in here, and only here.
namespace Vauban.Access;

public enum Interaction { Read, VRead, HistoryInstance, HistoryType, Search, Create, Update, Delete, Everything, Import }

public readonly record struct PolicyDecision(bool Allowed, string? Reason)
{
    public static PolicyDecision Allow => new(true, null);
    public static PolicyDecision Deny(string reason) => new(false, reason);
}

public sealed class AccessPolicy
{
    public PolicyDecision Authorize(AccessContext context, Interaction interaction, string resourceType)
    {
        ArgumentNullException.ThrowIfNull(context);
        var needed = interaction switch
        {
            Interaction.Read or Interaction.VRead or Interaction.HistoryInstance or Interaction.Everything => Permission.Read,
            Interaction.Search or Interaction.HistoryType => Permission.Search,
            Interaction.Create or Interaction.Import => Permission.Create,
            Interaction.Update => Permission.Update,
            Interaction.Delete => Permission.Delete,
            _ => Permission.None,
        };
        if (needed == Permission.None) return PolicyDecision.Deny("unknown interaction");
        return context.Principal.Scopes.Allows(resourceType, needed)
            ? PolicyDecision.Allow
            : PolicyDecision.Deny($"The granted scopes do not allow {interaction.ToString().ToLowerInvariant()} on {resourceType}.");
    }
}
