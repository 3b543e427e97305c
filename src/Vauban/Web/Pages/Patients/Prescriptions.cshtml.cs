using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using System.Text.Json;
using Vauban.Access;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <summary>
/// A patient's prescriptions for the prescriber: the active ones, each of which can be stopped, and a new one written as a FHIR
/// R4 MedicationRequest signed by the person's practitioner record — read and written through the records service like a FHIR
/// client's search, create and update, so the same policy (the role's MedicationRequest permissions, the care relationship),
/// guard and audit decide. The page names the patient so that a prescription is not written on the wrong record; an act done
/// answers by a redirect to the page (Post/Redirect/Get), which says what was done once.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class PrescriptionsModel : PatientPage
{
    // The form's fields, as typed (shown again with the problem when refused).
    [BindProperty] public string? Medication { get; set; }
    [BindProperty] public string? Dosage { get; set; }
    [BindProperty] public string? Days { get; set; }
    [BindProperty] public string? Repeats { get; set; }
    [BindProperty] public bool NotSubstitutable { get; set; }
    [BindProperty] public string? Note { get; set; }

    // A stop: the prescription and the version the page showed.
    [BindProperty] public string? Order { get; set; }
    [BindProperty] public string? Version { get; set; }
    [BindProperty] public string? StopReason { get; set; }
    [BindProperty] public string? StopComment { get; set; }

    /// <summary>The patient's active (or on hold) prescriptions open to the person, as the chart's rows show them (when written,
    /// medication, instructions, status, version).</summary>
    public IReadOnlyList<ChartRow> Active { get; private set; } = [];

    /// <summary>Whether the active prescriptions were searched (her role may list them) and the search answered: an empty
    /// <see cref="Active"/> then means there are none.</summary>
    public bool Listed { get; private set; }

    /// <summary>Why the list may not be whole: more than one page of them, or the search refused (then the list says so rather
    /// than "none": a prescriber who believes there is none may prescribe twice).</summary>
    public string? ListProblem { get; private set; }

    /// <summary>The role may prescribe and the account acts as a practitioner to sign with: the form is shown.</summary>
    public bool MayPrescribe { get; private set; }

    /// <summary>The role may prescribe, but the account acts as no practitioner (the page says so).</summary>
    public bool MayPrescribeWithoutPractitioner { get; private set; }

    /// <summary>Active prescriptions listed at most: a page of the search.</summary>
    public const int ListSize = 200;

    public bool MayStop { get; private set; }

    public Task<IActionResult> OnGetAsync() => ShowAsync(null, null);

    public async Task<IActionResult> OnPostPrescribeAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        if (!IdRules.IsValid(Id)) return await ShowAsync(404, null);
        // The door's own check first: a role that may not prescribe (a nurse, the desk) posting the form is the records service's
        // refusal, audited, not the page's "no practitioner" (which left no trace of the attempt).
        if (await Store.Records.AdmitForPatientAsync(access, Interaction.Create, "MedicationRequest", Id, HttpContext.RequestAborted) is { } refused)
        {
            return await RefusedAsync(refused, "Nothing was prescribed.", Interaction.Create);
        }
        if (access.Principal.Practitioner is not { } practitioner) return await ShowAsync(400, "Your account acts as no practitioner: a prescription is signed by one.");
        var (prescription, problem) = Prescription.Read(Medication, Dosage, Days, Repeats, NotSubstitutable, Note, "Practitioner/" + practitioner);
        if (prescription is null) return await ShowAsync(400, problem);
        // A double click, or Back and send again: one prescription, not two.
        if (AlreadySubmitted()) return SentTwice(Request.Path);
        // A role the form is not shown to (a forged post) is refused here by the records service, which audits the refusal.
        var result = await Store.Records.CreateAsync(access, "MedicationRequest", prescription.ToFhir(Id, UtcNow), null, HttpContext.RequestAborted);
        if (result.Status == RecordStatus.Created) return Acted($"Prescribed {prescription.Medication}.");
        ReleaseSubmission();
        return await RefusedAsync(result, "Nothing was prescribed.", Interaction.Create);
    }

    public async Task<IActionResult> OnPostStopAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        // A version the page showed: 1 or more (0 would be If-Match *, which holds to no version at all).
        if (Order is not { } id || !IdRules.IsValid(id) || !int.TryParse(Version, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version)
            || version < 1)
        {
            return await ShowAsync(400, "Choose the prescription to stop in the list.");
        }
        if (!IdRules.IsValid(Id)) return await ShowAsync(404, null);
        var (reason, problem) = Prescription.ReadStopReason(StopReason, StopComment);
        if (reason is null) return await ShowAsync(400, problem);
        var read = await OfPatientAsync(access, "MedicationRequest", id, Id);
        if (read.Status != RecordStatus.Ok) return await RefusedAsync(read, "The prescription was not stopped.", Interaction.Update);
        var (stopped, status, medication) = Prescription.Stop(read.Json!, Id, reason);
        if (stopped is not { } body) return await ShowAsync(404, "This patient has no such prescription.");
        // Another version than the one shown is the update's 412 (changed meanwhile); the one shown is held to the page's rule here.
        if (read.Version == version && !Prescription.IsStoppable(status))
        {
            return await ShowAsync(409, $"This prescription is {status ?? "without a status"}: there is nothing to stop.");
        }
        var result = await Store.Records.UpdateAsync(access, "MedicationRequest", id, body, version, HttpContext.RequestAborted);
        if (result.Status == RecordStatus.Ok) return Acted($"Stopped {medication ?? "the prescription"}.");
        return await RefusedAsync(result, "The prescription was not stopped.", Interaction.Update);
    }

    /// <summary>An act the records service refused: the page again, with its answer's status and words.</summary>
    private async Task<IActionResult> RefusedAsync(RecordResult result, string notDone, Interaction act)
    {
        switch (result.Status)
        {
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
            case RecordStatus.PreconditionFailed:
                return await ShowAsync(412, "This prescription was changed by someone else since the page was shown: nothing was changed. Here it is as it is now.");
            case RecordStatus.NotFound or RecordStatus.Gone:
                return await ShowAsync(404, "This patient has no such prescription.");
            default:
                var roleRefused = HttpContext.PersonAccess() is { } access && !Store.Policy.Authorize(access, act, "MedicationRequest").Allowed
                    ? "Your role does not prescribe." : null;
                return await ShowAsync(RecordStatusCodes.Http(result.Status), ActRefusal(RecordStatusCodes.Http(result.Status), notDone, roleRefused, Said(result.Issues)));
        }
    }

    /// <summary>The page, as a GET shows it; after an act refused, with <paramref name="status"/> and <paramref name="error"/>. A
    /// patient the person may not read answers its own refusal instead.</summary>
    private async Task<IActionResult> ShowAsync(int? status, string? error)
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        if (await OpenPatientAsync(access) is { } refused) return refused;
        var mayCreate = Store.Policy.Authorize(access, Interaction.Create, "MedicationRequest").Allowed;
        MayPrescribe = mayCreate && access.Principal.Practitioner is not null;
        MayPrescribeWithoutPractitioner = mayCreate && access.Principal.Practitioner is null;
        MayStop = Store.Policy.Authorize(access, Interaction.Update, "MedicationRequest").Allowed;
        if (Store.Policy.Authorize(access, Interaction.Search, "MedicationRequest").Allowed)
        {
            var page = await Store.Records.SearchAsync(access, "MedicationRequest",
                [new("patient", Id), new("status", "active,on-hold"), new("_sort", "-authoredon"), new("_count", ListSize.ToString(System.Globalization.CultureInfo.InvariantCulture))],
                null, false, HttpContext.RequestAborted);
            switch (page.Status)
            {
                case RecordStatus.Ok:
                    Active = [.. page.Entries.Where(e => !e.Included && e.Json is not null).Select(PatientChart.RowOf)];
                    Listed = true;
                    if (page.NextPage is not null) ListProblem = $"This patient has more than {ListSize} active prescriptions: only the {ListSize} most recent are listed.";
                    break;
                case RecordStatus.ReauthenticationRequired:
                    return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
                default:
                    ListProblem = "The active prescriptions could not be listed just now"
                        + (page.Status == RecordStatus.TooManyRequests ? " (too many records opened in a short time: wait a moment)" : "")
                        + ": this is not a list of none. Open the page again before prescribing.";
                    break;
            }
        }
        if (status is { } code) Refuse(code, error ?? "No patient with this id.");
        return Page();
    }
}
