// The "Prescribe" form read into a FHIR R4 MedicationRequest, and an active prescription turned stopped. Only the form's
// rules live here (a medication and its instructions in plain words, a duration and renewals within bounds); whether the
// person may prescribe for this patient, and the write itself, are the records service's (policy, guard, audit).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Vauban.Access;

namespace Vauban.Web.Pages.Patients;

public sealed record Prescription(string Medication, string Dosage, int? Days, int Repeats, bool NotSubstitutable, string? Note, string Prescriber)
{
    public const int MaximumMedicationLength = 200;
    public const int MaximumTextLength = 500;
    public const int MaximumDays = 365;
    public const int MaximumRepeats = 11;

    /// <summary>The prescription the form's fields describe, or the problem to show (nothing is written then).</summary>
    public static (Prescription? Prescription, string? Problem) Read(string? medication, string? dosage, string? days, string? repeats, bool notSubstitutable, string? note,
        string prescriber)
    {
        var what = medication?.Trim();
        if (string.IsNullOrEmpty(what)) return (null, "Give the medication (name, strength and form, e.g. \"Amoxicilline 1 g, comprimé\").");
        if (what.Length > MaximumMedicationLength) return (null, $"The medication is at most {MaximumMedicationLength} characters.");
        if (StatedText.HasHiddenCharacters(what)) return (null, "The medication holds control or invisible characters (zero-width, direction overrides): type it plainly.");
        var how = dosage?.Trim();
        if (string.IsNullOrEmpty(how)) return (null, "Give the instructions: how much, how often, for how long.");
        if (how.Length > MaximumTextLength) return (null, $"The instructions are at most {MaximumTextLength} characters.");
        if (StatedText.HasHiddenCharacters(how, lineBreaks: true)) return (null, "The instructions hold control or invisible characters (zero-width, direction overrides): type them plainly.");
        int? length = null;
        if (!string.IsNullOrWhiteSpace(days))
        {
            if (!int.TryParse(days.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var d) || d is < 1 or > MaximumDays)
            {
                return (null, $"The days each dispensing covers are 1 to {MaximumDays}, or left empty.");
            }
            length = d;
        }
        var renewals = 0;
        if (!string.IsNullOrWhiteSpace(repeats) && (!int.TryParse(repeats.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out renewals) || renewals > MaximumRepeats))
        {
            return (null, $"Renewals are 0 to {MaximumRepeats}.");
        }
        // A prescription covers at most a year in all, renewals included (the French rule for most medicines): 30 days renewed 11 times.
        if (length is { } covered && covered * (renewals + 1) > MaximumDays)
        {
            return (null, $"{covered} days renewed {renewals} time{(renewals == 1 ? "" : "s")} cover {covered * (renewals + 1)} days: a prescription covers at most {MaximumDays} days in all.");
        }
        var said = string.IsNullOrWhiteSpace(note) ? null : note.Trim();
        if (said is { Length: > MaximumTextLength }) return (null, $"The note is at most {MaximumTextLength} characters.");
        if (said is not null && StatedText.HasHiddenCharacters(said, lineBreaks: true)) return (null, "The note holds control or invisible characters (zero-width, direction overrides): type it plainly.");
        return (new Prescription(what, how, length, renewals, notSubstitutable, said, prescriber), null);
    }

    /// <summary>The MedicationRequest to create: an active order for the patient, signed by the prescriber, authored now; the days
    /// each dispensing covers as <c>dispenseRequest.expectedSupplyDuration</c> (R4: the period one dispense is expected to last),
    /// renewals as <c>numberOfRepeatsAllowed</c>.</summary>
    public JsonElement ToFhir(string patientId, DateTimeOffset now)
    {
        var request = new JsonObject
        {
            ["resourceType"] = "MedicationRequest",
            ["status"] = "active",
            ["intent"] = "order",
            ["medicationCodeableConcept"] = new JsonObject { ["text"] = Medication },
            ["subject"] = new JsonObject { ["reference"] = "Patient/" + patientId },
            ["authoredOn"] = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            ["requester"] = new JsonObject { ["reference"] = Prescriber },
            ["dosageInstruction"] = new JsonArray(new JsonObject { ["text"] = Dosage }),
        };
        var dispense = new JsonObject { ["numberOfRepeatsAllowed"] = Repeats };
        if (Days is { } days)
        {
            dispense["expectedSupplyDuration"] = new JsonObject { ["value"] = days, ["unit"] = "days", ["system"] = "http://unitsofmeasure.org", ["code"] = "d" };
        }
        request["dispenseRequest"] = dispense;
        if (NotSubstitutable) request["substitution"] = new JsonObject { ["allowedBoolean"] = false, ["reason"] = new JsonObject { ["text"] = "Non substituable" } };
        if (Note is not null) request["note"] = new JsonArray(new JsonObject { ["text"] = Note });
        return JsonSerializer.SerializeToElement(request);
    }

    /// <summary>Statuses a prescription can still be stopped from (FHIR R4 medicationrequest-status).</summary>
    public static bool IsStoppable(string? status) => status is "active" or "on-hold";

    /// <summary>The stop reason the form's fields describe (a code from <see cref="Fhir.KnownStopReasons"/> and an optional comment,
    /// which "another reason" needs) as MedicationRequest.statusReason, or the problem to show (nothing is written then).</summary>
    public static (JsonObject? Reason, string? Problem) ReadStopReason(string? code, string? comment) =>
        ChosenReason.Read(Fhir.KnownStopReasons.System, Fhir.KnownStopReasons.Find(code?.Trim()), comment, Fhir.KnownStopReasons.Other);

    /// <summary>The prescription as read, with status stopped and <paramref name="reason"/> as its statusReason, when it is
    /// <paramref name="patientId"/>'s (its subject) — a stop posted from one patient's page does not reach another patient's
    /// prescription; else null.</summary>
    /// <returns>Also its status as read, for the page to refuse what is no longer to be stopped.</returns>
    public static (JsonElement? Stopped, string? Status, string? Medication) Stop(byte[] json, string patientId, JsonObject reason)
    {
        if (JsonNode.Parse(json) is not JsonObject request) return (null, null, null);
        var ofPatient = request["subject"]?["reference"] is JsonValue reference && reference.TryGetValue<string>(out var subject) && subject == "Patient/" + patientId;
        if (!ofPatient) return (null, null, null);
        var status = request["status"] is JsonValue s && s.TryGetValue<string>(out var text) ? text : null;
        var medication = request["medicationCodeableConcept"]?["text"] is JsonValue m && m.TryGetValue<string>(out var name) ? name : null;
        request["status"] = "stopped";
        request["statusReason"] = reason.DeepClone();
        return (JsonSerializer.SerializeToElement(request), status, medication);
    }
}
