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
public sealed class VitalsModel : StaffPage
{
    [BindProperty(SupportsGet = true)] public string Id { get; set; } = "";

    [BindProperty] public string? Systolic { get; set; }
    [BindProperty] public string? Diastolic { get; set; }
    [BindProperty] public string? HeartRate { get; set; }
    [BindProperty] public string? RespiratoryRate { get; set; }
    [BindProperty] public string? Temperature { get; set; }
    [BindProperty] public string? OxygenSaturation { get; set; }
    [BindProperty] public string? Weight { get; set; }
    [BindProperty] public string? Height { get; set; }
    [BindProperty] public string? Date { get; set; }
    [BindProperty] public string? Time { get; set; }

    /// <summary>The patient the measures are for, as the records service read it; null when it refused.</summary>
    public PatientIdentity? Patient { get; private set; }

    /// <summary>Why the page or the recording was refused: nothing was written.</summary>
    public string? Error { get; private set; }

    /// <summary>The field's value as typed, to show the form again after a refusal.</summary>
    public string? Typed(VitalSign sign) => Fields().GetValueOrDefault(sign.Field);

    public Task<IActionResult> OnGetAsync() => ShowAsync(null, null);

    public async Task<IActionResult> OnPostAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        if (!IdRules.IsValid(Id)) return await ShowAsync(404, null);
        var (signs, problem) = VitalSigns.Read(Fields(), Date, Time, UtcNow);
        if (signs is null) return await ShowAsync(400, problem);
        var performer = access.Principal.Practitioner is { } practitioner ? "Practitioner/" + practitioner : null;
        var (status, body) = await Store.Records.ProcessBundleAsync(access, signs.ToTransaction(Id, performer), FhirHttp.BaseUrl(HttpContext), HttpContext.RequestAborted);
        if (status == 200)
        {
            Done = signs.Summary();
            return Redirect(Request.PathBase + "/patients/" + Uri.EscapeDataString(Id));
        }
        if (status == 401) return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
        var notDone = "Nothing was recorded.";
        return status switch
        {
            403 when !Store.Policy.Authorize(access, Interaction.Create, "Observation").Allowed => await ShowAsync(403, "Your role does not record vital signs. " + notDone),
            403 => await ShowAsync(403, "This patient is not in your care relationships now (a break-the-glass access may have ended). " + notDone),
            404 or 410 => await ShowAsync(404, null),
            _ => await ShowAsync(status, notDone + " " + Diagnostics(body)),
        };
    }

    private Dictionary<string, string?> Fields() => new(StringComparer.Ordinal)
    {
        [VitalSigns.Systolic.Field] = Systolic,
        [VitalSigns.Diastolic.Field] = Diastolic,
        ["HeartRate"] = HeartRate,
        ["RespiratoryRate"] = RespiratoryRate,
        ["Temperature"] = Temperature,
        ["OxygenSaturation"] = OxygenSaturation,
        ["Weight"] = Weight,
        ["Height"] = Height,
    };

    // An OperationOutcome's diagnostics, joined; the status alone when the body says nothing readable.
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

    /// <summary>The form for the patient; after a refusal, with <paramref name="status"/> and <paramref name="error"/>. A patient the
    /// person may not read is refused in the chart's words.</summary>
    private async Task<IActionResult> ShowAsync(int? status, string? error)
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        if (!IdRules.IsValid(Id))
        {
            Response.StatusCode = 404;
            Error = "No patient with this id.";
            return Page();
        }
        var read = await Store.Records.ReadAsync(access, "Patient", Id, HttpContext.RequestAborted);
        switch (read.Status)
        {
            case RecordStatus.Ok:
                using (var document = JsonDocument.Parse(read.Json!)) Patient = PatientChart.Identify(Id, document.RootElement);
                Response.StatusCode = status ?? 200;
                Error = error;
                return Page();
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
            case RecordStatus.Forbidden:
                Response.StatusCode = 403;
                Error = Store.Policy.Authorize(access, Interaction.Read, "Patient").Allowed
                    ? "This patient is not in your care relationships: the record is not open to you."
                    : "Your role does not open patients' records.";
                return Page();
            case RecordStatus.NotFound or RecordStatus.Gone:
                Response.StatusCode = 404;
                Error = "No patient with this id.";
                return Page();
            default:
                Response.StatusCode = RecordStatusCodes.Http(read.Status);
                Error = read.Issues is { Count: > 0 } issues ? string.Join(" ", issues.Select(i => i.Diagnostics)) : "The record was refused.";
                return Page();
        }
    }
}
