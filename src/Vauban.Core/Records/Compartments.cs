// The patient a resource concerns (its Patient compartment), read from the references the index
// extracts: a Patient is its own compartment; other types name the patient in subject, patient,
// beneficiary or an appointment's participant. Stored in clear on the resource row for the policy.
using Vauban.Fhir;
using Vauban.Records.Search;

namespace Vauban.Records;

internal static class Compartments
{
    // The stored reference parameters that name the patient (see SearchParameters; the codes never change).
    private static readonly HashSet<int> PatientParams = [501, 601, 702, 801, 901, 1001, 1101, 1201, 1301];

    public static string? Of(string type, string id, IndexEntries index)
    {
        if (type == KnownResourceTypes.Patient) return id;
        foreach (var reference in index.References)
        {
            if (PatientParams.Contains(reference.Param) && reference.Target.StartsWith("Patient/", StringComparison.Ordinal)) return reference.Target[8..];
        }
        return null;
    }

    /// <summary>Every patient the resource names where a patient's record is meant (an appointment may name several): a write
    /// puts the resource into each of their records, and a care relationship may be computed from each.</summary>
    public static IReadOnlyList<string> Named(string type, string id, IndexEntries index)
    {
        if (type == KnownResourceTypes.Patient) return [id];
        List<string>? named = null;
        foreach (var reference in index.References)
        {
            if (PatientParams.Contains(reference.Param) && reference.Target.StartsWith("Patient/", StringComparison.Ordinal))
            {
                var patient = reference.Target[8..];
                named ??= [];
                if (!named.Contains(patient, StringComparer.Ordinal)) named.Add(patient);
            }
        }
        return named ?? [];
    }
}
