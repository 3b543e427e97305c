using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using System.Text.Json;
using System.Text.Json.Nodes;
using Vauban.Access;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <summary>
/// Changing a patient's contact details — phone, e-mail, home address — the front desk's daily act when a patient has moved or
/// changed number. The form starts from the record's current version and says which version it was; the update names that
/// version (If-Match), so that a change made meanwhile by someone else (another desk, a FHIR client) is never overwritten
/// unseen: the page shows the record as it is now and asks for the change again. Only the parts changed are written, and held
/// to the form's rules (a part written otherwise through the API, left as it is, stays); every other element is kept. Identity (names, birth date, sex, NIR) is not changed here: that is identity
/// vigilance's, through the API. The read and the update are the records service's: the role's Patient update, the care
/// relationship, the guard and the audit, as for a FHIR client.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class ContactModel : PatientPage
{
    [BindProperty] public string? Phone { get; set; }
    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Street { get; set; }
    [BindProperty] public string? PostalCode { get; set; }
    [BindProperty] public string? City { get; set; }

    /// <summary>The version of the record the form was filled from.</summary>
    [BindProperty] public int? Version { get; set; }

    /// <summary>Whether the person's role may change patients' records (the care relationship is the records service's to check).</summary>
    public bool MayChange { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        if (await OpenPatientAsync(access) is { } refused) return refused;
        MayChange = MayChangeAs(access);
        if (!MayChange) return Refuse(403, RoleRefused);
        ShowCurrent();
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        const string notDone = "Nothing was changed.";
        if (await OpenPatientAsync(access) is { } refused) return refused;
        MayChange = MayChangeAs(access);
        // A forged post of a role that reads patients but changes none: refused by the records service's door before anything else
        // is looked at, and audited there as any refused update.
        if (!MayChange && await Store.Records.AdmitAsync(access, Interaction.Update, "Patient", Id, HttpContext.RequestAborted) is { } refusal)
        {
            var status = RecordStatusCodes.Http(refusal.Status);
            return Refuse(status, ActRefusal(status, notDone, RoleRefused, Said(refusal.Issues)));
        }
        var record = PatientRecord!;
        if (Version != record.Version) return ChangedMeanwhile();
        var patient = JsonNode.Parse(record.Json)!.AsObject();
        var today = ParisTime.DateOf(UtcNow);
        var before = PatientContact.Of(patient, today);
        var (contact, problem) = PatientContact.ReadChanges(before, Phone, Email, Street, PostalCode, City);
        if (contact is null) return Refuse(400, $"{notDone} {problem}");
        if (!contact.DiffersFrom(before)) return Acted("Nothing to save: the contact details are as they were.", "/patients/" + Uri.EscapeDataString(Id));
        contact.WriteInto(patient, today, before);
        var result = await Store.Records.UpdateAsync(access, "Patient", Id, JsonSerializer.SerializeToElement(patient), Version, HttpContext.RequestAborted);
        switch (result.Status)
        {
            case RecordStatus.Ok:
                return Acted($"Contact details of {Patient!.Name} saved.", "/patients/" + Uri.EscapeDataString(Id));
            case RecordStatus.PreconditionFailed:
                // Changed between the read above and the write: the record as it is now, read again.
                if (await OpenPatientAsync(access) is { } gone) return gone;
                return ChangedMeanwhile();
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
            default:
                var status = RecordStatusCodes.Http(result.Status);
                return Refuse(status, ActRefusal(status, notDone, null, Said(result.Issues)));
        }
    }

    private const string RoleRefused = "Your role does not change patients' records.";

    private bool MayChangeAs(AccessContext access) => Store.Policy.Authorize(access, Interaction.Update, "Patient").Allowed;

    private PageResult ChangedMeanwhile()
    {
        ShowCurrent();
        return Refuse(409, "Nothing was changed: this patient's record was changed by someone else since the form was opened. "
            + "The contact details are shown as they are now: make your change again.");
    }

    /// <summary>The form filled from the record as read, and the version it was read at.</summary>
    private void ShowCurrent()
    {
        var current = PatientContact.Of(JsonNode.Parse(PatientRecord!.Json)!.AsObject(), ParisTime.DateOf(UtcNow));
        (Phone, Email, Street, PostalCode, City) = (current.Phone, current.Email, current.Street, current.PostalCode, current.City);
        Version = PatientRecord.Version;
        ModelState.Clear();
    }

}
