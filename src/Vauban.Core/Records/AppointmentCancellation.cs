// An appointment's cancellation told apart from any other change of it: the same appointment, now cancelled (with the reason), and
// nothing else changed. The records service asks such a write of the appointment itself, as its update was asked, rather than of
// its patient's identity record (ADR 0006, revision 2026-12-07): it names no one new, puts nothing into the record but the voiding
// of the appointment, and a cancelled appointment is no source of care, so it opens nothing to its writer.
using System.Text.Json.Nodes;
using Vauban.Fhir;

namespace Vauban.Records;

internal static class AppointmentCancellation
{
    /// <summary>Whether <paramref name="after"/> is <paramref name="before"/> cancelled and nothing else: its status cancelled, its
    /// cancelationReason any, and every other element as it was (meta's version and date are the server's to change).</summary>
    public static bool IsCancellation(string type, byte[] before, byte[] after)
    {
        if (type != KnownResourceTypes.Appointment) return false;
        if (JsonNode.Parse(after) is not JsonObject now || now["status"]?.GetValueKind() != System.Text.Json.JsonValueKind.String
            || now["status"]!.GetValue<string>() != "cancelled")
        {
            return false;
        }
        return JsonNode.Parse(before) is JsonObject was && JsonNode.DeepEquals(Unchanged(was), Unchanged(now));
    }

    /// <summary>What a cancellation leaves as it was: all but the status, the reason and meta's version and date.</summary>
    private static JsonObject Unchanged(JsonObject appointment)
    {
        appointment.Remove("status");
        appointment.Remove("cancelationReason");
        if (appointment["meta"] is JsonObject meta)
        {
            meta.Remove("versionId");
            meta.Remove("lastUpdated");
            if (meta.Count == 0) appointment.Remove("meta");
        }
        return appointment;
    }
}
