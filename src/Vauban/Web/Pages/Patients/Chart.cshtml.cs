using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using System.Text.Json;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <summary>
/// A patient's chart: identity, then appointments, encounters, prescriptions, results, reports, documents, care teams,
/// insurance and invoices — Patient/$everything through the records service, so each record shown has passed the access
/// policy (the role's types, the care relationship or a break-the-glass grant), the guard and the audit before it reaches
/// the page. A refusal is the service's: 403 with the way to break the glass when the role may, 404 when the patient is not
/// to be revealed or does not exist, 423 for an account the guard has contained.
/// The chart's one act so far: booking an appointment for the patient with a practitioner of the establishment (the front desk
/// books for physicians; a practitioner finds themselves chosen), and cancelling one still to come with the reason, by a role the
/// policy lets create (update) appointments — written through the records service like a FHIR create or update, so the same
/// policy, guard and audit decide; an act done answers by a redirect to the chart (Post/Redirect/Get), which says what was done once.
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

    // The booking form's fields, as typed (shown again with the problem when refused).
    [BindProperty] public string? Date { get; set; }
    [BindProperty] public string? Time { get; set; }
    [BindProperty] public string? Minutes { get; set; }
    [BindProperty] public string? Reason { get; set; }
    [BindProperty] public string? Practitioner { get; set; }

    /// <summary>"Book anyway": the person has seen the overlaps the form warned of and books all the same.</summary>
    [BindProperty] public string? Confirm { get; set; }

    /// <summary>The booked appointments the booking asked for overlaps (the practitioner's, the patient's): the form warns and keeps
    /// what was typed; nothing is booked until the person confirms.</summary>
    public IReadOnlyList<BookingOverlap> Overlaps { get; private set; } = [];

    // A cancel: the appointment and the version the chart showed.
    [BindProperty] public string? Appointment { get; set; }
    [BindProperty] public string? Version { get; set; }
    [BindProperty] public string? CancelReason { get; set; }
    [BindProperty] public string? CancelComment { get; set; }

    /// <summary>Why the act asked for (a booking, a cancel) was refused: nothing was written.</summary>
    public string? ActError { get; private set; }

    /// <summary>The role may book (create Appointment): the chart offers the form.</summary>
    public bool MayBook { get; private set; }

    /// <summary>The chart's link to the booking form was followed (<c>?book=1</c>), a name was looked for in the directory, or a
    /// booking refused is shown again: the form is shown, and only then is the directory searched.</summary>
    [BindProperty(SupportsGet = true, Name = "book")] public string? OpenBooking { get; set; }

    /// <summary>The name typed to narrow the booking form's list of practitioners.</summary>
    [BindProperty(SupportsGet = true, Name = "with")] public string? With { get; set; }

    public bool BookingOpen { get; private set; }

    /// <summary>The establishment's practitioners the booking form offers, by name; read through the records service.</summary>
    public PractitionerList Practitioners { get; private set; } = PractitionerList.None;

    /// <summary>Why the list is not what was asked for (a name refused, the directory refused), shown above it.</summary>
    public string? DirectoryProblem { get; private set; }

    /// <summary>The practitioner the form has chosen: the one posted (a refused booking shown again), else the person's own.</summary>
    public string? ChosenPractitioner { get; private set; }

    public bool MayCancel { get; private set; }

    /// <summary>The role may create observations: the chart links to the vital signs form.</summary>
    public bool MayRecordVitals { get; private set; }

    /// <summary>The role may create prescriptions: the chart links to the prescriptions page.</summary>
    public bool MayPrescribe { get; private set; }

    /// <summary>The role may update patients: the chart links to the contact details page (the care relationship is the records
    /// service's to check there, as it is here).</summary>
    public bool MayChangeContact { get; private set; }

    public DateTimeOffset Now { get; private set; }

    /// <summary>Whether a row of the appointments gets a Cancel button: booked, still to come, and the role may update appointments.</summary>
    public bool Cancellable(ChartRow row) =>
        MayCancel && row.Reference.StartsWith("Appointment/", StringComparison.Ordinal) && AppointmentBooking.IsCancellable(row.StatusCode) && row.When.At > Now;

    public Task<IActionResult> OnGetAsync() => ShowAsync(null, null);

    public async Task<IActionResult> OnPostBookAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        BookingOpen = true; // refused, the form is shown again as it was typed
        var now = UtcNow;
        // A post without the field (a form from before the choice) books with the person, as it did; the front desk chooses.
        var practitioner = string.IsNullOrWhiteSpace(Practitioner) ? access.Principal.Practitioner : Practitioner.Trim();
        if (!IdRules.IsValid(practitioner)) return await ShowAsync(400, ChoosePractitioner);
        var (booking, problem) = AppointmentBooking.Read(Date, Time, Minutes, Reason, "Practitioner/" + practitioner, now);
        if (booking is null) return await ShowAsync(400, problem);
        // The page's rule, not only its list: a practitioner of this establishment, not deleted, still active (read through the
        // records service, as the list was, so the establishment is the signed-in person's).
        var chosen = await Store.Records.ReadAsync(access, KnownResourceTypes.Practitioner, practitioner!, HttpContext.RequestAborted);
        var (active, name, _) = chosen.Status == RecordStatus.Ok ? PractitionerDirectory.Described(chosen.Json!) : (false, "", null);
        if (chosen.Status is RecordStatus.NotFound or RecordStatus.Gone || (chosen.Status == RecordStatus.Ok && !active))
        {
            return await ShowAsync(400, ChoosePractitioner);
        }
        if (chosen.Status != RecordStatus.Ok) return await RefusedAsync(chosen, "The appointment was not booked.", Interaction.Create);
        // A double click, or Back and send again: one appointment, not two.
        if (AlreadySubmitted()) return SentTwice(Request.Path);
        // An overlap is warned of, not refused (the FHIR API may double-book, as R4 allows): asked only of a role that may book, once
        // the form's key is claimed (the same form sent twice is answered as such, not warned of the booking it made), and the key
        // released when it warns, so that "Book anyway" may send it again.
        if (Confirm != "1" && Store.Policy.Authorize(access, Interaction.Create, "Appointment").Allowed)
        {
            var known = new HashSet<string>(StringComparer.Ordinal);
            var overlaps = new List<BookingOverlap>();
            foreach (var (actor, reference) in new[] { ("practitioner", "Practitioner/" + practitioner), ("patient", "Patient/" + Id) })
            {
                var found = await Store.Records.SearchAsync(access, "Appointment", booking.OverlapQuery(actor, reference), null, lenient: false, HttpContext.RequestAborted);
                if (found.Status != RecordStatus.Ok)
                {
                    ReleaseSubmission();
                    return await RefusedAsync(RecordResult.Fail(found.Status, "Appointment", [.. found.Issues ?? []]), "The appointment was not booked.", Interaction.Create);
                }
                overlaps.AddRange(booking.Overlapping(found, Id, known));
            }
            if (overlaps.Count > 0)
            {
                ReleaseSubmission();
                Overlaps = [.. overlaps.OrderBy(o => o.Start)];
                return await ShowAsync(409, null);
            }
        }
        // A role the form is not shown to (a forged post) is refused here by the records service, which audits the refusal.
        var result = await Store.Records.CreateAsync(access, "Appointment", booking.ToFhir(Id, now), null, HttpContext.RequestAborted);
        if (result.Status == RecordStatus.Created)
        {
            return Acted($"Booked {PatientChart.InParis(booking.Start)} ({booking.Minutes} minutes) with {name}.");
        }
        ReleaseSubmission();
        if (result.Status == RecordStatus.Forbidden && !Store.Policy.Authorize(access, Interaction.Create, "Appointment").Allowed)
        {
            return await ShowAsync(403, "Your role does not book appointments.");
        }
        return await RefusedAsync(result, "The appointment was not booked.", Interaction.Create);
    }

    public async Task<IActionResult> OnPostCancelAsync()
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        if (Appointment is not { } id || !IdRules.IsValid(id) || AppointmentBooking.ShownVersion(Version) is not { } version)
        {
            return await ShowAsync(400, "Choose the appointment to cancel in the list.");
        }
        var (reason, problem) = AppointmentBooking.ReadCancellation(CancelReason, CancelComment);
        if (reason is null) return await ShowAsync(400, problem);
        var read = await OfPatientAsync(access, "Appointment", id, Id);
        if (read.Status != RecordStatus.Ok) return await RefusedAsync(read, "The appointment was not cancelled.", Interaction.Update);
        var (cancelled, status, start) = AppointmentBooking.Cancel(read.Json!, "Patient/" + Id, reason);
        if (cancelled is not { } body) return await ShowAsync(404, "This patient has no such appointment.");
        if (AppointmentBooking.NotCancellable(read.Version, version, status, start, UtcNow) is { } notNow) return await ShowAsync(409, notNow);
        var result = await Store.Records.UpdateAsync(access, "Appointment", id, body, version, HttpContext.RequestAborted);
        if (result.Status == RecordStatus.Ok) return Acted($"Cancelled the appointment of {Describe(read.Json!)}.");
        return await RefusedAsync(result, "The appointment was not cancelled.", Interaction.Update);
    }

    private const string ChoosePractitioner = "Choose the practitioner the appointment is with in the list.";

    /// <summary>The booking form's practitioners: a directory search through the records service (authorized and audited like any
    /// other), narrowed by the name typed. The person's own practitioner record, chosen by default, is listed even when the list is
    /// cut before it. Returns 400 for a name refused and 401 for a directory search held until both factors are given again;
    /// a search refused otherwise is said (<see cref="DirectoryProblem"/>) on a chart answered as it is.</summary>
    private async Task<int?> LoadPractitionersAsync(AccessContext access)
    {
        var (name, problem) = PractitionerDirectory.ReadName(With);
        var page = await Store.Records.SearchAsync(access, KnownResourceTypes.Practitioner, PractitionerDirectory.Query(name), null, lenient: false, HttpContext.RequestAborted);
        if (page.Status == RecordStatus.ReauthenticationRequired) return 401;
        if (page.Status != RecordStatus.Ok)
        {
            DirectoryProblem = page.Status == RecordStatus.Forbidden
                ? "Your role may not read the establishment's directory of practitioners."
                : "The directory of practitioners could not be searched" + (Said(page.Issues) is { } said ? ": " + said : ".");
            return null;
        }
        Practitioners = PractitionerDirectory.From(page);
        if (name is null && ChosenPractitioner is { } own && IdRules.IsValid(own) && Practitioners.Choices.All(p => p.Id != own))
        {
            var mine = await Store.Records.SearchAsync(access, KnownResourceTypes.Practitioner, PractitionerDirectory.Query(null, own), null, lenient: false, HttpContext.RequestAborted);
            if (mine.Status == RecordStatus.Ok) Practitioners = Practitioners with { Choices = [.. PractitionerDirectory.From(mine).Choices, .. Practitioners.Choices] };
        }
        DirectoryProblem = problem;
        return problem is null ? null : 400;
    }

    private static string Describe(byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.TryGetProperty("start", out var start) && start.ValueKind == JsonValueKind.String && DateTimeOffset.TryParse(start.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var at)
            ? PatientChart.InParis(at) : "(no time)";
    }

    /// <summary>An act the records service refused: the chart again, with its answer's status and words.</summary>
    private async Task<IActionResult> RefusedAsync(RecordResult result, string notDone, Interaction act)
    {
        switch (result.Status)
        {
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
            case RecordStatus.PreconditionFailed:
                return await ShowAsync(412, AppointmentBooking.ChangedMeanwhile);
            case RecordStatus.NotFound or RecordStatus.Gone:
                return await ShowAsync(404, "This patient has no such appointment.");
            default:
                var roleRefused = HttpContext.PersonAccess() is { } access && !Store.Policy.Authorize(access, act, "Appointment").Allowed
                    ? (act == Interaction.Create ? "Your role does not book appointments." : "Your role may not change appointments.") : null;
                return await ShowAsync(RecordStatusCodes.Http(result.Status), ActRefusal(RecordStatusCodes.Http(result.Status), notDone, roleRefused, Said(result.Issues)));
        }
    }

    /// <summary>The chart, as a GET shows it; after an act refused, with <paramref name="status"/> and <paramref name="actError"/>
    /// (a chart the person may not open answers its own refusal instead).</summary>
    private async Task<IActionResult> ShowAsync(int? status, string? actError)
    {
        if (HttpContext.PersonAccess() is not { } access) return Redirect("/account/signin");
        Now = UtcNow;
        var page = await Store.Records.EverythingAsync(access, Id, HttpContext.RequestAborted);
        switch (page.Status)
        {
            case RecordStatus.Ok:
                Chart = PatientChart.From(Id, page.Entries);
                if (Chart is null) return Refuse(RecordStatus.NotFound, "No patient with this id.");
                Readable = PatientChart.Kinds.Select(k => k.Type).Where(type => Store.Policy.Authorize(access, Interaction.Read, type).Allowed).ToHashSet(StringComparer.Ordinal);
                Truncated = page.NextPage is not null;
                var mayCreate = Store.Policy.Authorize(access, Interaction.Create, "Appointment").Allowed;
                MayBook = mayCreate;
                BookingOpen = MayBook && (BookingOpen || OpenBooking is not null || With is not null);
                if (BookingOpen)
                {
                    ChosenPractitioner = string.IsNullOrWhiteSpace(Practitioner) ? access.Principal.Practitioner : Practitioner.Trim();
                    switch (await LoadPractitionersAsync(access))
                    {
                        case 401:
                            return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path + Request.QueryString));
                        case { } refused when status is null:
                            Response.StatusCode = refused;
                            break;
                    }
                }
                MayCancel = Store.Policy.Authorize(access, Interaction.Update, "Appointment").Allowed;
                MayRecordVitals = Store.Policy.Authorize(access, Interaction.Create, "Observation").Allowed;
                MayPrescribe = Store.Policy.Authorize(access, Interaction.Create, "MedicationRequest").Allowed;
                MayChangeContact = Store.Policy.Authorize(access, Interaction.Update, "Patient").Allowed;
                if (status is { } code)
                {
                    Response.StatusCode = code;
                    ActError = actError;
                }
                return Page();
            case RecordStatus.ReauthenticationRequired:
                return Redirect(HttpContext.ReauthenticationUrl());
            case RecordStatus.Forbidden:
                MayBreakTheGlass = Store.Policy.Authorize(access, Interaction.BreakTheGlass, "Patient").Allowed;
                return Refuse(page.Status, Refusal(access));
            case RecordStatus.NotFound or RecordStatus.Gone:
                return Refuse(RecordStatus.NotFound, "No patient with this id.");
            default:
                return Refuse(page.Status, Said(page.Issues) ?? "The record was refused.");
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
}
