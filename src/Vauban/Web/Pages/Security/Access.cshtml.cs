using Microsoft.AspNetCore.Mvc;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;

namespace Vauban.Web.Pages.Security;

/// <summary>
/// A patient's access history at the console: the lines of `vauban audit patient` (PatientAccessHistory), read through the
/// audit log's search as the FHIR AuditEvent search is — the security officer's alone, every page of it on the chain, a
/// refusal too. The patient's id is posted, never put in a URL. The patient's NIR may be typed instead (a patient asking
/// for their history gives it, not the record's id): a complete one, its key checked before anything is looked up, is resolved
/// to the patient's record through the records service (RecordsService.PatientsWithNirAsync: ids only, weighed and audited),
/// then shown as for an id; several records with it (a duplicate) are listed to choose from.
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
        var typed = PatientId?.Trim();
        if (typed is not null && Nir.LooksLike(typed))
        {
            // Not shown back: the page would hold it in its form.
            PatientId = null;
            return await ShowByNirAsync(typed);
        }
        if (!IdRules.IsValid(typed))
        {
            Refuse(400, "A patient id is 1 to 64 letters, digits, '-' and '.'; or type the patient's NIR (15 characters, its key included).");
            return Page();
        }
        return await ShowAsync(typed!);
    }

    /// <summary>The records carrying the NIR typed, when it names several (a patient registered twice): the officer chooses.</summary>
    public IReadOnlyList<string>? Candidates { get; private set; }

    /// <summary>Whether the history shown was found by the NIR typed (the form then shows the record's id, never the number).</summary>
    public bool FoundByNir { get; private set; }

    private async Task<IActionResult> ShowByNirAsync(string typed)
    {
        var compact = new string([.. typed.Where(c => c is not ('-' or '.'))]);
        if (!Nir.TryValidate(compact, out var wrong))
        {
            Refuse(400, compact.Count(c => !char.IsWhiteSpace(c)) == 13
                ? "This NIR has no control key: type all 15 characters, the 2-digit key included. Nothing was looked up."
                : wrong + " Check each digit: nothing was looked up.");
            return Page();
        }
        switch (await Store.Records.PatientsWithNirAsync(GuardConsole.OfficerAccess(HttpContext), compact, HttpContext.RequestAborted))
        {
            case null:
                Refuse(403, OfficerOnly);
                return Page();
            case { Held: { Verdict: GuardVerdict.StepUp } }:
                // Kept in this process's memory for her session only (FormDrafts), and given back once, in the form.
                return ReauthenticateKeeping(new Dictionary<string, string?> { [nameof(PatientId)] = typed });
            case { Held: { } held }:
                Refuse(RecordStatusCodes.Http(RecordResult.Held(held, "Patient").Status), held.Reason!);
                return Page();
            case { Ids: [] }:
                Refuse(404, "No patient of your establishment has this NIR.");
                return Page();
            case { Ids: [var only] }:
                FoundByNir = true;
                return await ShowAsync(only);
            case { Ids: var several }:
                Candidates = several;
                return Page();
        }
    }

    private async Task<IActionResult> ShowAsync(string id)
    {
        var history = await PatientAccessHistory.ReadAsync(Store, GuardConsole.OfficerAccess(HttpContext), id, Limit, HttpContext.RequestAborted);
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
