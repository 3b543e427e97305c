// Words for audit entries, shared by the command-line report and the AuditEvent view.
namespace Vauban.Audit;

public static class AuditDescriptions
{
    public static string Action(AuditAction action) => action switch
    {
        AuditAction.Read => "read",
        AuditAction.VRead => "read a version",
        AuditAction.History => "read the history",
        AuditAction.TypeHistory => "read the history of a type",
        AuditAction.Search => "found in a search",
        AuditAction.Create => "created",
        AuditAction.Update => "updated",
        AuditAction.Delete => "deleted",
        AuditAction.Everything => "opened the whole record",
        AuditAction.Import => "imported",
        AuditAction.Export => "exported",
        AuditAction.SignIn => "signed in",
        AuditAction.SignInFailure => "failed to sign in",
        AuditAction.SignOut => "signed out",
        AuditAction.BreakTheGlass => "broke the glass",
        AuditAction.Administration => "administration",
        AuditAction.Containment => "contained by the guard",
        AuditAction.AuditRead => "consulted the audit log",
        AuditAction.SecurityRecords => "security records put on the chain",
        _ => action.ToString(),
    };

    /// <summary>The purpose an entry records, in words: "Emergency Treatment (ETREAT)" for a coded one, the text otherwise;
    /// break-the-glass (asking for the grant, or acting under it) says so first.</summary>
    public static string Purpose(AuditAction action, string purpose)
    {
        var words = Access.KnownPurposes.Display(purpose) is { } display ? display + " (" + purpose + ")" : purpose;
        return action == AuditAction.BreakTheGlass || purpose == Access.KnownPurposes.EmergencyTreatment ? "break-the-glass: " + words : words;
    }

    public static string Outcome(AuditOutcome outcome) => outcome switch
    {
        AuditOutcome.Success => "done",
        AuditOutcome.MinorFailure => "refused or not found",
        AuditOutcome.SeriousFailure => "failed",
        _ => "failed badly",
    };
}
