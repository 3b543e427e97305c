// What the pages that act on one patient share (recording vital signs, prescribing, changing contact details): the patient's id from the route, and the
// patient read through the records service — named on the page, so that nothing is recorded on the wrong record, or refused
// in the chart's words.
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using System.Text.Json;
using Vauban.Access;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

public abstract class PatientPage : StaffPage
{
    [BindProperty(SupportsGet = true)] public string Id { get; set; } = "";

    /// <summary>The patient as the records service read it; null when it refused.</summary>
    public PatientIdentity? Patient { get; private set; }

    /// <summary>The patient's record as read (its current version and body); null when the read was refused.</summary>
    protected RecordResult? PatientRecord { get; private set; }

    /// <summary>Why the page or its act was refused: nothing was written.</summary>
    public string? Error { get; protected set; }

    /// <summary>Reads the patient (an audited read): null once <see cref="Patient"/> is set, else the answer to give — a
    /// redirect to prove both factors again, or this page saying why it is refused.</summary>
    protected async Task<IActionResult?> OpenPatientAsync(AccessContext access)
    {
        ArgumentNullException.ThrowIfNull(access);
        if (!IdRules.IsValid(Id)) return Refuse(404, "No patient with this id.");
        var read = await Store.Records.ReadAsync(access, "Patient", Id, HttpContext.RequestAborted);
        switch (read.Status)
        {
            case RecordStatus.Ok:
                using (var document = JsonDocument.Parse(read.Json!)) Patient = PatientChart.Identify(Id, document.RootElement);
                PatientRecord = read;
                return null;
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
            case RecordStatus.Forbidden:
                return Refuse(403, Store.Policy.Authorize(access, Interaction.Read, "Patient").Allowed
                    ? "This patient is not in your care relationships: the record is not open to you."
                    : "Your role does not open patients' records.");
            case RecordStatus.NotFound or RecordStatus.Gone:
                return Refuse(404, "No patient with this id.");
            default:
                return Refuse(RecordStatusCodes.Http(read.Status), Said(read.Issues) ?? "The record was refused.");
        }
    }

    /// <summary>This page with <paramref name="status"/> and <paramref name="message"/> as its refusal.</summary>
    protected PageResult Refuse(int status, string message)
    {
        Response.StatusCode = status;
        Error = message;
        return Page();
    }
}
