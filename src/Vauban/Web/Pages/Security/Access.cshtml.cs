using Microsoft.AspNetCore.Mvc;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;

namespace Vauban.Web.Pages.Security;

/// <summary>
/// A patient's access history at the console: the lines of `vauban audit patient` (PatientAccessHistory), read through the
/// audit log's search as the FHIR AuditEvent search is — the security officer's alone, every page of it on the chain, a
/// refusal too. The patient's id is posted, never put in a URL, and an NIR typed instead of an id is refused before
/// anything is looked up, as "Open by id" does on /patients.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class AccessHistoryModel : ConsolePage
{
    /// <summary>Lines a page shows, newest first (the command line's default too).</summary>
    public const int Limit = 200;

    [BindProperty] public string? PatientId { get; set; }

    public AccessHistory? History { get; private set; }

    /// <summary>Why anyone else the console admits (an administrator) is refused: the page, not only its form's answer, is the
    /// officer's, so that nothing offers the administrator a look-up it will refuse.</summary>
    public const string OfficerOnly = "The audit log is open to the security officer only.";

    public async Task<IActionResult> OnGetAsync()
    {
        if (await EnterOfficerAsync("GET /security/access", OfficerOnly) is { } refused) return refused;
        // Back from proving both factors again (the guard asked it of the look-up): the id she had typed is in the form again.
        if (TakeDraft() is { } typed && typed.TryGetValue(nameof(PatientId), out var kept)) PatientId = kept;
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (await EnterOfficerAsync("POST /security/access", OfficerOnly) is { } refused) return refused;
        var id = PatientId?.Trim();
        if (id is not null && IdRules.IsIdentifying(id))
        {
            // Not shown back either: the page would hold it in its form.
            PatientId = null;
            Refuse(400, "This looks like a social-security number (NIR), not a record id: find the patient's record id first (a physician or admissions find it by NIR).");
            return Page();
        }
        if (!IdRules.IsValid(id))
        {
            Refuse(400, "A patient id is 1 to 64 letters, digits, '-' and '.'.");
            return Page();
        }
        var history = await PatientAccessHistory.ReadAsync(Store, GuardConsole.OfficerAccess(HttpContext), id!, Limit, HttpContext.RequestAborted);
        PatientId = id;
        switch (history)
        {
            case null:
                Refuse(403, OfficerOnly);
                break;
            case { Held: { Verdict: GuardVerdict.StepUp } }:
                // The guard weighs the patients the log's entries name (ADR 0008): past the officer's level, both factors again.
                return ReauthenticateKeeping(new Dictionary<string, string?> { [nameof(PatientId)] = id });
            case { Held: { } held }:
                Refuse(RecordStatusCodes.Http(RecordResult.Held(held, "AuditEvent").Status), held.Reason!);
                break;
            default:
                History = history;
                break;
        }
        return Page();
    }
}
