using Microsoft.AspNetCore.Mvc;
using System.Text.Json;
using Vauban.Access;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <summary>
/// Recording a patient's vital signs — blood pressure, heart and respiratory rates, temperature, oxygen saturation, weight,
/// height — as FHIR Observations shaped by R4's vital signs profiles, in one transaction through the records service: the
/// same policy (the role's Observation create, the care relationship), guard and audit as a FHIR client's, and all the
/// measures recorded or none. The page names the patient (read through the records service too) so that measures are not
/// recorded on the wrong chart; done, it answers by a redirect to the chart, which lists them with the results.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class VitalsModel : PatientPage
{
    /// <summary>Each measure's field as typed, by <see cref="VitalSign.Field"/> (Systolic, HeartRate, …).</summary>
    [BindProperty] public Dictionary<string, string?> Measures { get; set; } = new(StringComparer.Ordinal);
    [BindProperty] public string? Date { get; set; }
    [BindProperty] public string? Time { get; set; }

    /// <summary>The field's value as typed, to show the form again after a refusal.</summary>
    public string? Typed(VitalSign sign) => Measures.GetValueOrDefault(sign.Field);

    public async Task<IActionResult> OnGetAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        return await OpenPatientAsync(access) ?? Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        if (!IdRules.IsValid(Id)) return await ShowAsync(access, 404, null);
        // The door's own check first: a role that may not record them (the desk) posting the form is refused and audited as
        // concerning this patient, on their access history (the transaction's refusal named no patient).
        if (await Store.Records.AdmitForPatientAsync(access, Interaction.Create, "Observation", Id, HttpContext.RequestAborted) is { } refused)
        {
            var code = RecordStatusCodes.Http(refused.Status);
            return await ShowAsync(access, code, ActRefusal(code, "Nothing was recorded.", refused.Status == RecordStatus.Forbidden ? "Your role does not record vital signs." : null, Said(refused.Issues)));
        }
        var (signs, problem) = VitalSigns.Read(Measures, Date, Time, UtcNow);
        if (signs is null) return await ShowAsync(access, 400, problem);
        if (AlreadySubmitted()) return SentTwice("/patients/" + Uri.EscapeDataString(Id));
        var performer = access.Principal.Practitioner is { } practitioner ? "Practitioner/" + practitioner : null;
        var (status, body) = await Store.Records.ProcessBundleAsync(access, signs.ToTransaction(Id, performer), FhirHttp.BaseUrl(HttpContext), HttpContext.RequestAborted);
        if (status == 200)
        {
            Done = signs.Summary();
            return Redirect(Request.PathBase + "/patients/" + Uri.EscapeDataString(Id));
        }
        ReleaseSubmission();
        if (status == 401) return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
        const string notDone = "Nothing was recorded.";
        if (status is 404 or 410) return await ShowAsync(access, 404, null);
        var roleRefused = Store.Policy.Authorize(access, Interaction.Create, "Observation").Allowed ? null : "Your role does not record vital signs.";
        return await ShowAsync(access, status, ActRefusal(status, notDone, roleRefused, Diagnostics(body)));
    }

    // An OperationOutcome's diagnostics, joined; a plain sentence when the body says nothing readable.
    private static string Diagnostics(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.TryGetProperty("issue", out var issues) && issues.ValueKind == JsonValueKind.Array)
            {
                var said = issues.EnumerateArray()
                    .Select(i => i.TryGetProperty("diagnostics", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null)
                    .OfType<string>().ToList();
                if (said.Count > 0) return string.Join(" ", said);
            }
        }
        catch (JsonException)
        {
        }
        return "The records service refused the measures.";
    }

    /// <summary>The form for the patient again, with <paramref name="status"/> and <paramref name="error"/> (a patient the
    /// person may not read answers its own refusal instead).</summary>
    private async Task<IActionResult> ShowAsync(AccessContext access, int status, string? error)
    {
        if (await OpenPatientAsync(access) is { } refused) return refused;
        return Refuse(status, error ?? "No patient with this id.");
    }
}
