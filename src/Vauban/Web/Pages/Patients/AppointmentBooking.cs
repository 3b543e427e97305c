// The chart's "Book an appointment" form read into a FHIR R4 Appointment, and a booked appointment turned cancelled with
// the reason chosen. Only the forms' rules live here (a time in Paris that is still to come, a bounded duration, a plain short
// reason, a cancellation reason from the list); whether the person may book or cancel for this patient, and the write itself,
// are the records service's (policy, guard, audit).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

public sealed record AppointmentBooking(DateTimeOffset Start, int Minutes, string Practitioner, string? Reason)
{
    public const int DefaultMinutes = 20;
    public const int MinimumMinutes = 5;
    public const int MaximumMinutes = 240;
    public const int MaximumReasonLength = 200;

    /// <summary>How far ahead a booking may be: a year typed 2062 for 2026 is refused rather than booked out of sight.</summary>
    public static readonly TimeSpan Horizon = TimeSpan.FromDays(2 * 366);

    public DateTimeOffset End => Start.AddMinutes(Minutes);

    /// <summary>The booking the form's fields describe, or the problem to show (nothing is written then).
    /// <paramref name="date"/> and <paramref name="time"/> are the HTML inputs' values (yyyy-MM-dd, HH:mm[:ss]), in Paris time.</summary>
    public static (AppointmentBooking? Booking, string? Problem) Read(string? date, string? time, string? minutes, string? reason, string practitioner, DateTimeOffset now)
    {
        if (!DateOnly.TryParseExact(date?.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            return (null, "Give the appointment's date (year-month-day).");
        }
        if (!TimeOnly.TryParseExact(time?.Trim(), ["HH:mm", "HH:mm:ss"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var hour))
        {
            return (null, "Give the appointment's time (hours:minutes).");
        }
        if (PatientChart.FromParis(day, hour) is not { } start)
        {
            return (null, $"{day:yyyy-MM-dd} {hour:HH:mm} does not exist in {PatientChart.ZoneName}: the clocks go forward then. Choose another time.");
        }
        if (start <= now) return (null, "This date and time are in the past: an appointment is booked ahead.");
        if (start > now + Horizon) return (null, "An appointment is booked at most two years ahead: check the year.");
        if (!int.TryParse(string.IsNullOrWhiteSpace(minutes) ? DefaultMinutes.ToString(CultureInfo.InvariantCulture) : minutes.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
            || length is < MinimumMinutes or > MaximumMinutes)
        {
            return (null, $"The duration is {MinimumMinutes} to {MaximumMinutes} minutes.");
        }
        var said = string.IsNullOrWhiteSpace(reason) ? null : reason.Trim();
        if (said is { Length: > MaximumReasonLength }) return (null, $"The reason is at most {MaximumReasonLength} characters.");
        if (said is not null && StatedText.HasHiddenCharacters(said))
        {
            return (null, "The reason holds control or invisible characters (zero-width, direction overrides): type it plainly.");
        }
        return (new AppointmentBooking(start, length, practitioner, said), null);
    }

    /// <summary>The Appointment to create: booked, its start and end as instants with Paris's offset, the patient and the
    /// practitioner both accepted.</summary>
    public JsonElement ToFhir(string patientId, DateTimeOffset now)
    {
        var appointment = new JsonObject
        {
            ["resourceType"] = "Appointment",
            ["status"] = "booked",
            ["start"] = PatientChart.FhirDateTime(Start),
            ["end"] = PatientChart.FhirDateTime(End),
            ["minutesDuration"] = Minutes,
            ["created"] = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            ["participant"] = new JsonArray(Accepted("Patient/" + patientId), Accepted(Practitioner)),
        };
        if (Reason is not null) appointment["description"] = Reason;
        return JsonSerializer.SerializeToElement(appointment);
    }

    /// <summary>How long before the booking's start an appointment it overlaps may begin and still be found: a day (an appointment
    /// booked through the API may last longer than the form's four hours; one longer than a day is not looked for).</summary>
    private static readonly TimeSpan OverlapLookBack = TimeSpan.FromDays(1);

    /// <summary>The search of the appointments that may overlap this booking, of one actor (<c>practitioner</c> or <c>patient</c> and
    /// its reference): those starting from a day before it to its end, with their patients (those the person may read), for
    /// <see cref="Overlapping"/> to keep the ones that overlap it.</summary>
    public List<KeyValuePair<string, string>> OverlapQuery(string actor, string reference) =>
    [
        new(actor, reference),
        new("date", "ge" + PatientChart.FhirDateTime(Start - OverlapLookBack)),
        new("date", "lt" + PatientChart.FhirDateTime(End)),
        new("_sort", "date"),
        new("_count", "50"),
        new("_include", "Appointment:patient"),
    ];

    /// <summary>The appointments of a <see cref="OverlapQuery"/> page that overlap this booking (begin before it ends and end after it
    /// begins; one without an end or duration is its start), not voided (cancelled, missed, entered in error), each named by its
    /// patient only when the search brought the patient (the person may read her), not already in <paramref name="known"/>.</summary>
    public IEnumerable<BookingOverlap> Overlapping(SearchPage page, string patientId, ISet<string> known)
    {
        var names = PatientNames(page.Entries);
        foreach (var entry in page.Entries)
        {
            if (entry.Type != "Appointment" || entry.Included || entry.Json is not { } json || entry.Deleted || known.Contains(entry.Id)) continue;
            using var document = JsonDocument.Parse(json);
            var appointment = document.RootElement;
            if (PatientChart.Text(appointment, "status") is "cancelled" or "noshow" or "entered-in-error" || Instant(appointment, "start") is not { } start) continue;
            var end = Instant(appointment, "end")
                ?? (appointment.TryGetProperty("minutesDuration", out var minutes) && minutes.TryGetInt32(out var length) && length > 0 ? start.AddMinutes(length) : start);
            var overlaps = end > start ? start < End && end > Start : start >= Start && start < End;
            if (!overlaps) continue;
            var actors = PatientChart.Array(appointment, "participant")
                .Select(p => p.TryGetProperty("actor", out var actor) ? PatientChart.Text(actor, "reference") : null).OfType<string>().ToList();
            var patient = actors.FirstOrDefault(r => r.StartsWith("Patient/", StringComparison.Ordinal))?["Patient/".Length..];
            known.Add(entry.Id);
            yield return new BookingOverlap(start, end, actors.Contains(Practitioner), patient == patientId,
                patient is not null && names.TryGetValue(patient, out var name) ? name : null);
        }
    }

    /// <summary>An appointment search's included patients, "FAMILY Given" by id: those the person may read (the others the search
    /// did not bring).</summary>
    public static Dictionary<string, string> PatientNames(IEnumerable<SearchEntry> entries)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (entry.Type != "Patient" || entry.Json is not { } json || entry.Deleted) continue;
            using var document = JsonDocument.Parse(json);
            names[entry.Id] = PatientChart.HumanName(document.RootElement) ?? "(no name)";
        }
        return names;
    }

    /// <summary>An instant element of a resource (an appointment's start or end), when it is one.</summary>
    public static DateTimeOffset? Instant(JsonElement resource, string name) =>
        PatientChart.Text(resource, name) is { } text && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var at) ? at : null;

    private static JsonObject Accepted(string actor) =>
        new() { ["actor"] = new JsonObject { ["reference"] = actor }, ["required"] = "required", ["status"] = "accepted" };


    /// <summary>Statuses an appointment can still be cancelled from (FHIR R4 appointmentstatus).</summary>
    public static bool IsCancellable(string? status) => status is "booked" or "pending" or "proposed";

    public const int MaximumCommentLength = ChosenReason.MaximumCommentLength;

    /// <summary>The cancellation reason the cancel form's fields describe (a code from <see cref="KnownCancellationReasons"/> and
    /// an optional comment) as Appointment.cancelationReason, or the problem to show (nothing is written then).</summary>
    public static (JsonObject? Reason, string? Problem) ReadCancellation(string? code, string? comment) =>
        ChosenReason.Read(KnownCancellationReasons.System, KnownCancellationReasons.Find(code?.Trim()), comment);

    /// <summary>A page's answer (412) to an act on an appointment changed since the page showed it.</summary>
    public const string ChangedMeanwhile = "This appointment was changed by someone else since the page was shown: nothing was changed. Here it is as it is now.";

    /// <summary>The version a cancel form posted: 1 or more (0 would be If-Match *, which holds to no version at all); null when it
    /// is none.</summary>
    public static int? ShownVersion(string? posted) =>
        int.TryParse(posted, NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version >= 1 ? version : null;

    /// <summary>A page's own refusal (409) of cancelling the version shown, when it is no longer booked or has begun; null when it
    /// may be. Another version than the one shown is the update's 412 (changed meanwhile), not asked here: the page holds what it
    /// showed to its rules, not only by the buttons it shows.</summary>
    public static string? NotCancellable(int readVersion, int shownVersion, string? status, DateTimeOffset? start, DateTimeOffset now) =>
        readVersion != shownVersion ? null
        : !IsCancellable(status) ? $"This appointment is {StaffWords.StatusInSentence(status) ?? "without a status"}: there is nothing to cancel."
        : start is { } begins && begins <= now ? "This appointment has begun or is past: it is not cancelled, its record stays as it was."
        : null;

    /// <summary>The appointment as read, with status cancelled and <paramref name="reason"/> as its cancelationReason, when
    /// <paramref name="participant"/> (a reference: <c>Patient/…</c> from a chart, <c>Practitioner/…</c> from an agenda) is one of
    /// its participants — a cancel posted from one chart does not reach another patient's appointment, nor one posted from an
    /// agenda another practitioner's; else null.</summary>
    /// <returns>Also its status and start as read, for the page to refuse what is no longer to be cancelled.</returns>
    public static (JsonElement? Cancelled, string? Status, DateTimeOffset? Start) Cancel(byte[] json, string participant, JsonObject reason)
    {
        if (JsonNode.Parse(json) is not JsonObject appointment) return (null, null, null);
        var named = appointment["participant"] is JsonArray participants
            && participants.Any(p => p?["actor"]?["reference"] is JsonValue reference && reference.TryGetValue<string>(out var target) && target == participant);
        if (!named) return (null, null, null);
        var status = appointment["status"] is JsonValue s && s.TryGetValue<string>(out var text) ? text : null;
        DateTimeOffset? start = appointment["start"] is JsonValue v && v.TryGetValue<string>(out var instant)
            && DateTimeOffset.TryParse(instant, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var at) ? at : null;
        appointment["status"] = "cancelled";
        appointment["cancelationReason"] = reason.DeepClone();
        return (JsonSerializer.SerializeToElement(appointment), status, start);
    }
}

/// <summary>A booked appointment that a booking asked for overlaps: when, whether it is with the same practitioner or of the same
/// patient, and its patient's name when the person may read her (else the page says "another appointment").</summary>
public sealed record BookingOverlap(DateTimeOffset Start, DateTimeOffset End, bool SamePractitioner, bool SamePatient, string? PatientName)
{
    /// <summary>"2026-12-08 10:00–10:20, DUPONT Jean with the same practitioner", as the warning lists it; "another appointment of the
    /// practitioner" for a patient she may not read.</summary>
    public string Text =>
        $"{PatientChart.InParis(Start)}–{PatientChart.InParis(End)[^5..]}, "
        + (SamePatient ? "this patient with " + (SamePractitioner ? "the same practitioner" : "another practitioner")
            : PatientName is { } name ? name + " with the same practitioner" : "another appointment of the practitioner");
}

/// <summary>An appointment's Cancel form (<c>Shared/_CancelAppointment.cshtml</c>): where it posts, the appointment and the version
/// shown, how the row names it to a screen reader (its time, its patient), and, when it is the one just refused, the reason and
/// comment to show again in the form left open.</summary>
/// <remarks><c>Refused</c>: the form is shown unfolded, with what was chosen.</remarks>
public sealed record CancelForm(string Action, string Appointment, int Version, string Label, bool Refused, string? Reason, string? Comment);
