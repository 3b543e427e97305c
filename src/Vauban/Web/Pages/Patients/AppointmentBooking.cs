// The chart's "Book an appointment" form read into a FHIR R4 Appointment, and a booked appointment turned cancelled with
// the reason chosen. Only the forms' rules live here (a time in Paris that is still to come, a bounded duration, a plain short
// reason, a cancellation reason from the list); whether the person may book or cancel for this patient, and the write itself,
// are the records service's (policy, guard, audit).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Vauban.Access;
using Vauban.Fhir;

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

/// <summary>An appointment's Cancel form (<c>Shared/_CancelAppointment.cshtml</c>): where it posts, the appointment and the version
/// shown, how the row names it to a screen reader (its time, its patient), and, when it is the one just refused, the reason and
/// comment to show again in the form left open.</summary>
/// <remarks><c>Refused</c>: the form is shown unfolded, with what was chosen.</remarks>
public sealed record CancelForm(string Action, string Appointment, int Version, string Label, bool Refused, string? Reason, string? Comment);
