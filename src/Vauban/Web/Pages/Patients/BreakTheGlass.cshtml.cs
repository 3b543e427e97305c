using Microsoft.AspNetCore.Mvc;
using Vauban.Access;

namespace Vauban.Web.Pages.Patients;

/// <summary>
/// Break-the-glass from the clinician UI: a reason from the list and the person's own words, after a fresh
/// proof of both factors (the step-up page brings the person back here). The grant itself, its time limit,
/// the alert and the audit entry are BreakTheGlass's, in Vauban.Core — the same as the FHIR operation's.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class BreakTheGlassModel : StaffPage
{
    [BindProperty(SupportsGet = true)] public string Id { get; set; } = "";
    [BindProperty] public string? Reason { get; set; }
    [BindProperty] public string? Text { get; set; }
    public string? Error { get; private set; }
    public BreakGlassGrant? Grant { get; private set; }

    public IReadOnlyDictionary<string, string> Reasons => KnownBreakGlassReasons.Labels;

    public TimeSpan Duration => Store.Policy.Options.BreakGlassDuration;

    /// <summary>The grant's length as a person reads it: "4 hours", "1 hour", "1 hour 30 minutes", "30 minutes" (whole hours alone
    /// read "0 hours" for a 30-minute grant, which the options allow).</summary>
    public string DurationText => Describe(Duration);

    public static string Describe(TimeSpan duration)
    {
        var hours = (long)duration.TotalHours;
        var minutes = duration.Minutes;
        return hours == 0 ? Counted.En(minutes, "minute", "minutes")
            : minutes == 0 ? Counted.En(hours, "hour", "hours")
            : $"{Counted.En(hours, "hour", "hours")} {Counted.En(minutes, "minute", "minutes")}";
    }

    public IActionResult OnGet()
    {
        if (!HttpContext.IsFreshlyAuthenticated(Store.Policy.Options.ReauthenticationMaxAge)) return Redirect(HttpContext.ReauthenticationUrl());
        // Back from the re-authentication a sending of this form asked for: the reason and the words as she had given them.
        if (TakeDraft() is { } typed)
        {
            Reason = typed.GetValueOrDefault(nameof(Reason));
            Text = typed.GetValueOrDefault(nameof(Text));
        }
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        var result = await Store.BreakTheGlass.OpenAsync(access, Id, Reason, Text, HttpContext.RequestAborted);
        switch (result.Status)
        {
            case BreakGlassStatus.Granted:
                Grant = result.Grant;
                return Page();
            case BreakGlassStatus.ReauthenticationRequired:
                return ReauthenticateKeeping(new Dictionary<string, string?> { [nameof(Reason)] = Reason, [nameof(Text)] = Text });
            case BreakGlassStatus.PatientNotFound:
                Response.StatusCode = 404;
                Error = result.Message;
                return Page();
            case BreakGlassStatus.NotAllowed:
                Response.StatusCode = 403;
                Error = result.Message;
                return Page();
            default:
                Response.StatusCode = 400;
                // The records service names the reasons by their codes, for API clients; the form shows their labels.
                Error = Reason is null || !Reasons.ContainsKey(Reason) ? "Choose the reason in the list." : result.Message;
                return Page();
        }
    }
}
