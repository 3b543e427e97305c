using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Vauban.Access;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <summary>
/// A patient's chart: identity, then appointments, encounters, prescriptions, results, reports, documents, care teams,
/// insurance and invoices — Patient/$everything through the records service, so each record shown has passed the access
/// policy (the role's types, the care relationship or a break-the-glass grant), the guard and the audit before it reaches
/// the page. A refusal is the service's: 403 with the way to break the glass when the role may, 404 when the patient is not
/// to be revealed or does not exist, 423 for an account the guard has contained.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class ChartModel : StaffPage
{
    [BindProperty(SupportsGet = true)] public string Id { get; set; } = "";

    public PatientChart? Chart { get; private set; }
    public string? Error { get; private set; }
    public bool MayBreakTheGlass { get; private set; }
    public bool Truncated { get; private set; }

    /// <summary>The chart's kinds of record this person's role reads at all (a section it may not is said so, not shown empty);
    /// decided once, with the access context the chart was read under.</summary>
    public IReadOnlySet<string> Readable { get; private set; } = new HashSet<string>();

    public async Task<IActionResult> OnGetAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        var page = await Store.Records.EverythingAsync(access, Id, HttpContext.RequestAborted);
        switch (page.Status)
        {
            case RecordStatus.Ok:
                Chart = PatientChart.From(Id, page.Entries);
                if (Chart is null) return Refuse(RecordStatus.NotFound, "No patient with this id.");
                Readable = PatientChart.Kinds.Select(k => k.Type).Where(type => Store.Policy.Authorize(access, Interaction.Read, type).Allowed).ToHashSet(StringComparer.Ordinal);
                Truncated = page.NextPage is not null;
                return Page();
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl());
            case RecordStatus.Forbidden:
                MayBreakTheGlass = Store.Policy.Authorize(access, Interaction.BreakTheGlass, "Patient").Allowed;
                return Refuse(page.Status, Refusal(access));
            case RecordStatus.NotFound or RecordStatus.Gone:
                return Refuse(RecordStatus.NotFound, "No patient with this id.");
            default:
                return Refuse(page.Status, Message(page));
        }
    }

    private PageResult Refuse(RecordStatus status, string message)
    {
        Response.StatusCode = RecordStatusCodes.Http(status);
        Error = message;
        return Page();
    }

    /// <summary>A refusal in the words of the page, not of the API (the service's names "POST [base]/Patient/…/$break-the-glass"
    /// and the role's interactions, which a clinician has no use for): the role that opens no chart, or the care relationship and
    /// what breaking the glass means.</summary>
    private string Refusal(AccessContext access)
    {
        if (!Store.Policy.Authorize(access, Interaction.Everything, "Patient").Allowed) return "Your role does not open patients' records.";
        return MayBreakTheGlass
            ? "This patient is not in your care relationships. If you need this record for the patient's care, you may break the glass: "
              + "you state the reason and confirm your identity, and the access is reported to the security officer."
            : "This patient is not in your care relationships: the record is not open to you.";
    }

    private static string Message(SearchPage page) =>
        page.Issues is { Count: > 0 } issues ? string.Join(" ", issues.Select(i => i.Diagnostics)) : "The record was refused.";
}
