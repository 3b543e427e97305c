using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using System.Globalization;
using System.Text.Json;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;
using Vauban.Web.Pages.Patients;

namespace Vauban.Web.Pages.Appointments;

/// <summary>
/// A practitioner's day: the appointments of the signed-in person's practitioner record on one day (Paris time), in order,
/// each with its patient — an Appointment search with its patients included, through the records service: the same policy,
/// guard and audit as any search (each patient listed is in the audit trail). The day is in the URL (a date is no patient data);
/// no name is. Ten appointments a page, from the start of the day or from a time given, the next ten by the search's own
/// paging link (held to this day's agenda): every patient listed counts in the guard's hour and day windows. Her own day's
/// list is left out of the minute's (ADR 0008: before, paging a busy day within a minute asked both factors again at the second
/// page and contained her at the third); a day of 30 appointments listed whole on one page would still be 30 identities at once.
/// The front desk (a role that keeps its service's agendas, <see cref="RolePermissions.KeepsServiceAgendas"/>) chooses the
/// practitioner of its service whose day it shows (<c>?practitioner=</c>, among the practitioners an active PractitionerRole names
/// with her service): the records service lists that practitioner's appointments whatever the rule of care says of their patients
/// (ADR 0006), each patient audited and counted by the guard as any search's (a colleague's day counts in the minute).
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class AgendaModel : StaffPage
{
    /// <summary>Appointments a page lists: the patient search's page.</summary>
    public const int PageSize = 10;

    [BindProperty(SupportsGet = true, Name = "day")] public string? Day { get; set; }

    /// <summary>The practitioner whose day the front desk asked for (an id); her own practitioner record when not given.</summary>
    [BindProperty(SupportsGet = true, Name = "practitioner")] public string? Of { get; set; }

    /// <summary>The person chooses the practitioner whose day is shown: her role keeps her service's agendas and she has a service.</summary>
    public bool Chooses { get; private set; }

    /// <summary>The practitioners of her service the page offers (<see cref="Chooses"/>), by name.</summary>
    public PractitionerList ServicePractitioners { get; private set; } = PractitionerList.None;

    /// <summary>Why the list of her service's practitioners could not be read, shown above the form.</summary>
    public string? DirectoryProblem { get; private set; }

    /// <summary>The practitioner whose day is shown; null when none is (the desk has not chosen yet).</summary>
    public string? Shown { get; private set; }

    /// <summary>The person has a practitioner record, so an agenda of her own.</summary>
    public bool HasOwnAgenda { get; private set; }

    /// <summary>The day shown is the person's own (her practitioner record), not a colleague's.</summary>
    public bool Own { get; private set; }

    /// <summary>"FAMILY Given" of the practitioner whose day is shown, when it is not her own.</summary>
    public string? ShownName { get; private set; }

    /// <summary>The agenda's query string for this practitioner (none: her own), after the day.</summary>
    public string PractitionerQuery => Own || Shown is null ? "" : "&practitioner=" + Uri.EscapeDataString(Shown);

    /// <summary>The time (Paris, HH:mm) the page starts at; the start of the day when not given.</summary>
    [BindProperty(SupportsGet = true, Name = "from")] public string? From { get; set; }

    /// <summary>The search's paging link to the next page (sealed: it names no patient and holds the query).</summary>
    [BindProperty(SupportsGet = true, Name = "next")] public string? Next { get; set; }

    public DateOnly Date { get; private set; }

    /// <summary>The time the first page of this listing starts at (00:00 for the whole day).</summary>
    public TimeOnly Since { get; private set; }

    public IReadOnlyList<AgendaRow> Rows { get; private set; } = [];

    /// <summary>The link token to the next ten, when there are more.</summary>
    public string? NextPage { get; private set; }

    /// <summary>Whether this page is one reached by "Next" (not the first of the listing).</summary>
    public bool Continued { get; private set; }

    /// <summary>The appointments of the listing (from <see cref="Since"/> to the end of the day), when the search counted them.</summary>
    public int? Total { get; private set; }

    public string? Error { get; private set; }

    // A cancel: the appointment and the version the agenda showed, the reason chosen and a comment.
    [BindProperty] public string? Appointment { get; set; }
    [BindProperty] public string? Version { get; set; }
    [BindProperty] public string? CancelReason { get; set; }
    [BindProperty] public string? CancelComment { get; set; }

    /// <summary>Why the cancel asked for was refused: nothing was written.</summary>
    public string? ActError { get; private set; }

    /// <summary>The role may change appointments: the rows still to come get a Cancel button.</summary>
    public bool MayCancel { get; private set; }

    /// <summary>The page's now, by the server's clock: what has begun is not offered to cancel.</summary>
    public DateTimeOffset Now { get; private set; }

    /// <summary>Whether a row gets a Cancel button: booked (or pending, proposed), still to come, and the role may change appointments.
    /// Its patient need not be open to her: a booking of hers stays hers to cancel after the care relationship has lapsed (ADR 0006).</summary>
    public bool Cancellable(AgendaRow row) => MayCancel && Own && AppointmentBooking.IsCancellable(row.Status) && row.Start is { } start && start > Now;

    /// <summary>The form of a row's Cancel button, posted to this day's agenda.</summary>
    public CancelForm CancelFormOf(AgendaRow row) => new(
        "/appointments?handler=cancel&day=" + Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), row.Id, row.Version,
        row.PatientName is { } name ? $"{row.Time}, {name}" : row.Time,
        Appointment == row.Id, Appointment == row.Id ? CancelReason : null, Appointment == row.Id ? CancelComment : null);

    public Task<IActionResult> OnGetAsync() => ShowAsync(null, null);

    /// <summary>Cancels an appointment of her agenda, with the reason chosen: found by a search of her own appointments (<c>_id</c> and
    /// <c>practitioner</c>, ADR 0006: each is hers whatever the rule of care says of its patient), so that an id posted here never
    /// reads another practitioner's appointment; then updated with the version shown, through the records service (policy, guard,
    /// audit), which asks a cancellation of the appointment itself. The day is shown again, saying what was done or why not.</summary>
    public async Task<IActionResult> OnPostCancelAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        if (access.Principal.Practitioner is not { } practitioner) return await ShowAsync(null, null);
        if (Appointment is not { } id || !IdRules.IsValid(id) || AppointmentBooking.ShownVersion(Version) is not { } version)
        {
            return await ShowAsync(400, "Choose the appointment to cancel in the list.");
        }
        var (reason, problem) = AppointmentBooking.ReadCancellation(CancelReason, CancelComment);
        if (reason is null) return await ShowAsync(400, problem);
        var found = await Store.Records.SearchAsync(access, "Appointment",
            [new("_id", id), new("practitioner", "Practitioner/" + practitioner)], null, lenient: false, HttpContext.RequestAborted);
        if (found.Status != RecordStatus.Ok) return await RefusedAsync(found.Status, found.Issues);
        if (found.Entries.FirstOrDefault(e => !e.Included && e.Type == "Appointment" && e.Id == id && e.Json is not null && !e.Deleted) is not { } read)
        {
            return await ShowAsync(404, NotOnAgenda);
        }
        var (cancelled, status, start) = AppointmentBooking.Cancel(read.Json!, "Practitioner/" + practitioner, reason);
        if (cancelled is not { } body) return await ShowAsync(404, NotOnAgenda);
        if (AppointmentBooking.NotCancellable(read.Version, version, status, start, UtcNow) is { } notNow) return await ShowAsync(409, notNow);
        var result = await Store.Records.UpdateAsync(access, "Appointment", id, body, version, HttpContext.RequestAborted);
        if (result.Status != RecordStatus.Ok) return await RefusedAsync(result.Status, result.Issues);
        Done = "Cancelled the appointment of " + (start is { } at ? PatientChart.InParis(at) : "(no time)") + ".";
        return Redirect(Request.PathBase + "/appointments" + DayQuery);
    }

    /// <summary>The day asked for, as the agenda's query string (none: today).</summary>
    private string DayQuery => string.IsNullOrWhiteSpace(Day) ? "" : "?day=" + Uri.EscapeDataString(Day.Trim());

    private const string NotOnAgenda = "You have no such appointment on your agenda.";

    /// <summary>A cancel the records service refused: the day again, with its answer's status and words.</summary>
    private async Task<IActionResult> RefusedAsync(RecordStatus refusal, IReadOnlyList<Fhir.Issue>? issues)
    {
        const string notDone = "The appointment was not cancelled.";
        switch (refusal)
        {
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + "/appointments" + DayQuery));
            case RecordStatus.PreconditionFailed:
                return await ShowAsync(412, AppointmentBooking.ChangedMeanwhile);
            case RecordStatus.NotFound or RecordStatus.Gone:
                return await ShowAsync(404, NotOnAgenda);
            default:
                var status = RecordStatusCodes.Http(refusal);
                var roleRefused = HttpContext.PersonAccess() is { } access && !Store.Policy.Authorize(access, Interaction.Update, "Appointment").Allowed
                    ? "Your role may not change appointments." : null;
                return await ShowAsync(status, ActRefusal(status, notDone, roleRefused, Said(issues)));
        }
    }

    /// <summary>The day, as a GET shows it; after a cancel refused, with <paramref name="status"/> and <paramref name="actError"/>
    /// (a day the page cannot show answers its own refusal instead).</summary>
    private async Task<IActionResult> ShowAsync(int? status, string? actError)
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        Now = UtcNow;
        MayCancel = Store.Policy.Authorize(access, Interaction.Update, "Appointment").Allowed;
        Date = ParisTime.DateOf(UtcNow);
        var own = access.Principal.Practitioner;
        HasOwnAgenda = own is not null;
        Chooses = access.Principal.Role is { } role && RolePermissions.KeepsServiceAgendas(role) && !string.IsNullOrEmpty(access.Principal.Service);
        if (Chooses && await LoadServiceAsync(access) is { } directoryRefused) return directoryRefused;
        var asked = string.IsNullOrWhiteSpace(Of) ? null : Of.Trim();
        if (asked is not null && asked != own)
        {
            // The page's rule before the search's: a practitioner of her service, from the list she was offered. The records service
            // holds to it too: another practitioner's appointments are searched under the rule of care (ADR 0006).
            if (!Chooses) return Refuse(404, "You see your own agenda: your role does not keep other practitioners' agendas.");
            if (ServicePractitioners.Choices.FirstOrDefault(c => c.Id == asked) is not { } chosen)
            {
                return Refuse(404, "No practitioner of your service has this id: choose one in the list.");
            }
            ShownName = chosen.Name;
        }
        if ((asked ?? own) is not { } practitioner)
        {
            if (Chooses) return Page(); // the desk chooses whose day to show
            Error = "Your account is not linked to a practitioner record: the agenda lists a practitioner's appointments.";
            return Page();
        }
        Shown = practitioner;
        Own = practitioner == own;
        if (!string.IsNullOrWhiteSpace(Day))
        {
            if (!DateOnly.TryParseExact(Day.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day) || day.Year < 1900 || day.Year > 9998)
            {
                // 2026-02-30 is written as asked, and is no day: said so, rather than asked for the form it has.
                return Refuse(400, System.Text.RegularExpressions.Regex.IsMatch(Day.Trim(), @"^\d{4}-\d{2}-\d{2}$")
                    ? "There is no such day: give a day that exists, from 1900 to 9998 (year-month-day)."
                    : "Give the day as year-month-day.");
            }
            Date = day;
        }
        Continued = !string.IsNullOrEmpty(Next);
        // A next page follows its own query (the token's): the time it started from is the token's, not a from= beside it.
        if (!Continued && !string.IsNullOrWhiteSpace(From))
        {
            if (!TimeOnly.TryParseExact(From.Trim(), "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var from)) return Refuse(400, "Give the time as hours:minutes.");
            Since = from;
        }
        // From the time given (the start of the day: midnight in Paris, where the clocks never change at midnight) to midnight.
        if (PatientChart.FromParis(Date, Since) is not { } start) return Refuse(400, "This time does not exist on this day (the clocks go forward an hour): give a later one.");
        var end = PatientChart.FromParis(Date.AddDays(1), TimeOnly.MinValue)!.Value;
        if (Continued)
        {
            // The door's own check first (a role that does not read appointments, a contained person: refused and audited as the
            // search would be), then what the link searches, asked before it is followed: a link of another search (another day, a
            // colleague's agenda she may read, an API search) would have its rows shown as this day's — and, run, its patients
            // counted by the guard and written on the audit chain as read by her, though she is shown none of them.
            if (await Store.Records.AdmitAsync(access, Interaction.Search, "Appointment", null, HttpContext.RequestAborted) is { } refused)
            {
                return Refused(access, refused.Status, refused.Issues);
            }
            if (Store.Records.PagedQuery(access, "Appointment", Next!) is not { } linked) return Expired();
            if (AgendaStartOf(linked, practitioner, start, end) is not { } since) return Refuse(400, "This page's link is not one of this day's agenda: open the day again.");
            // The time the listing started from (its "from"), as its first page said it: the page says the same total of the same span.
            Since = TimeOnly.FromDateTime(ParisTime.Of(since).DateTime);
        }
        var page = Continued
            ? await Store.Records.SearchAsync(access, "Appointment", [], Next, lenient: false, HttpContext.RequestAborted)
            : await Store.Records.SearchAsync(access, "Appointment", AgendaQuery(practitioner, start, end), null, lenient: false, HttpContext.RequestAborted);
        switch (page.Status)
        {
            case RecordStatus.Ok:
                Rows = AgendaRow.From(page.Entries);
                NextPage = page.NextPage;
                Total = page.Total;
                if (status is { } code)
                {
                    Response.StatusCode = code;
                    ActError = actError;
                }
                return Page();
            case RecordStatus.Invalid when Continued:
                return Expired(); // between the question above and the search
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path + Request.QueryString));
            default:
                return Refused(access, page.Status, page.Issues);
        }
    }

    /// <summary>The practitioners of her service, for the desk's choice: the PractitionerRoles naming her service's Organization, then
    /// those practitioners (active ones, labelled as the booking form labels them), both directory searches through the records
    /// service. A search held for both factors again answers by the re-authentication; another refusal is said above the form.</summary>
    private async Task<IActionResult?> LoadServiceAsync(AccessContext access)
    {
        var roles = await Store.Records.SearchAsync(access, KnownResourceTypes.PractitionerRole, PractitionerDirectory.ServiceQuery(access.Principal.Service!), null,
            lenient: false, HttpContext.RequestAborted);
        var page = roles.Status == RecordStatus.Ok && PractitionerDirectory.Members(roles) is { Count: > 0 } members
            ? await Store.Records.SearchAsync(access, KnownResourceTypes.Practitioner, PractitionerDirectory.QueryOf(members), null, lenient: false, HttpContext.RequestAborted)
            : roles;
        if (page.Status == RecordStatus.ReauthenticationRequired) return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path + Request.QueryString));
        if (page.Status != RecordStatus.Ok)
        {
            DirectoryProblem = "The practitioners of your service could not be listed" + (Said(page.Issues) is { } said ? ": " + said : ".");
            return null;
        }
        if (page != roles) ServicePractitioners = PractitionerDirectory.From(page);
        return null;
    }

    /// <summary>The records service's refusal of the agenda's search, in the page's words.</summary>
    private PageResult Refused(AccessContext access, RecordStatus refusal, IReadOnlyList<Fhir.Issue>? issues)
    {
        if (refusal == RecordStatus.Forbidden && !Store.Policy.Authorize(access, Interaction.Search, "Appointment").Allowed)
        {
            return Refuse(403, "Your role does not read appointments.");
        }
        var status = RecordStatusCodes.Http(refusal);
        return Refuse(status, ActRefusal(status, "The agenda could not be shown.", null, Said(issues)));
    }

    /// <summary>The agenda's search: the practitioner's appointments from <paramref name="start"/> to <paramref name="end"/>, by
    /// date, <see cref="PageSize"/> a page, each with its patient.</summary>
    private static List<KeyValuePair<string, string>> AgendaQuery(string practitioner, DateTimeOffset start, DateTimeOffset end) =>
    [
        new("practitioner", "Practitioner/" + practitioner),
        new("date", "ge" + PatientChart.FhirDateTime(start)),
        new("date", "lt" + PatientChart.FhirDateTime(end)),
        new("_sort", "date"),
        new("_count", PageSize.ToString(CultureInfo.InvariantCulture)),
        new("_include", "Appointment:patient"),
        // Counted on every page, not only when the first holds them all: a later page said no total, or none right.
        new("_total", "accurate"),
    ];

    /// <summary>Where a paging link's listing starts, if its query is this page's own and nothing more: <see cref="AgendaQuery"/> from a time of the shown
    /// day (its start, or a from=) to its end. Another search of hers — through the API, say, from a month earlier, or of a thousand a
    /// page, or with more patients included — is not shown as this day.</summary>
    /// <returns>The instant the link's listing starts from, when it is this page's; else null.</returns>
    private static DateTimeOffset? AgendaStartOf(IReadOnlyList<KeyValuePair<string, string>> searched, string practitioner, DateTimeOffset dayStart, DateTimeOffset end)
    {
        var from = searched.Where(p => p.Key == "date" && p.Value.StartsWith("ge", StringComparison.Ordinal)).Select(p => p.Value[2..]).ToList();
        if (from is not [var since]
            || !DateTimeOffset.TryParseExact(since, "yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture, DateTimeStyles.None, out var at)
            || at < dayStart || at >= end)
        {
            return null;
        }
        var agenda = AgendaQuery(practitioner, at, end);
        return searched.Count == agenda.Count && agenda.All(searched.Contains) ? at : null;
    }

    private PageResult Expired() => Refuse(400, "This page's link has expired (a link lasts an hour): open the day again.");

    private PageResult Refuse(int status, string message)
    {
        Response.StatusCode = status;
        Error = message;
        return Page();
    }
}

/// <param name="Id">The appointment's id; <paramref name="Version"/> the version listed (a cancel holds to it).</param>
/// <param name="Start">When it begins, when it says.</param>
/// <param name="Patient">The patient's id, or null when the appointment names none.</param>
/// <param name="PatientName">"FAMILY Given", or null when the patient is not open to the person (not included).</param>
public sealed record AgendaRow(string Id, int Version, DateTimeOffset? Start, string Time, int? Minutes, string? Patient, string? PatientName, string? Reason, string Status)
{
    /// <summary>The day's appointments in the order the search gave (by start), each with its patient from the included ones.</summary>
    public static IReadOnlyList<AgendaRow> From(IReadOnlyList<SearchEntry> entries)
    {
        var names = AppointmentBooking.PatientNames(entries);
        var rows = new List<AgendaRow>();
        foreach (var entry in entries)
        {
            if (entry.Type != "Appointment" || entry.Included || entry.Json is not { } json || entry.Deleted) continue;
            using var document = JsonDocument.Parse(json);
            var appointment = document.RootElement;
            var start = AppointmentBooking.Instant(appointment, "start");
            var end = AppointmentBooking.Instant(appointment, "end");
            var patient = PatientChart.Array(appointment, "participant")
                .Select(p => p.TryGetProperty("actor", out var actor) ? PatientChart.Text(actor, "reference") : null)
                .FirstOrDefault(r => r?.StartsWith("Patient/", StringComparison.Ordinal) == true)?["Patient/".Length..];
            rows.Add(new AgendaRow(
                entry.Id,
                entry.Version,
                start,
                start is { } at ? PatientChart.InParis(at)[^5..] : "—",
                start is { } s && end is { } e && e > s ? (int)(e - s).TotalMinutes : null,
                patient,
                patient is not null && names.TryGetValue(patient, out var name) ? name : null,
                PatientChart.Text(appointment, "description"),
                PatientChart.Text(appointment, "status") ?? "—"));
        }
        return rows;
    }
}
