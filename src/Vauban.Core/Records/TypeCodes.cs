// Stable numbers for the resource types Vauban stores. They are written in every row and bound into
// each record's encryption: never renumber, only append.
using Vauban.Fhir;

namespace Vauban.Records;

internal static class TypeCodes
{
    private static readonly Dictionary<string, int> ByName = new(StringComparer.Ordinal)
    {
        [KnownResourceTypes.Patient] = 1,
        [KnownResourceTypes.Practitioner] = 2,
        [KnownResourceTypes.PractitionerRole] = 3,
        [KnownResourceTypes.Organization] = 4,
        [KnownResourceTypes.Encounter] = 5,
        [KnownResourceTypes.CareTeam] = 6,
        [KnownResourceTypes.Appointment] = 7,
        [KnownResourceTypes.MedicationRequest] = 8,
        [KnownResourceTypes.Observation] = 9,
        [KnownResourceTypes.DiagnosticReport] = 10,
        [KnownResourceTypes.DocumentReference] = 11,
        [KnownResourceTypes.Coverage] = 12,
        [KnownResourceTypes.Invoice] = 13,
    };

    private static readonly Dictionary<int, string> ByCode = ByName.ToDictionary(p => p.Value, p => p.Key);

    static TypeCodes()
    {
        // The stored types and the validated types are one list; a type added to one must be added to both.
        if (!KnownResourceTypes.Supported.SetEquals(ByName.Keys)) throw new InvalidOperationException("TypeCodes and KnownResourceTypes disagree.");
    }

    public static IReadOnlyCollection<string> Names => ByName.Keys;

    public static bool TryGet(string type, out int code) => ByName.TryGetValue(type, out code);

    public static int Of(string type) => ByName.TryGetValue(type, out var code)
        ? code
        : throw new ArgumentException("Unsupported resource type.", nameof(type));

    public static string NameOf(int code) => ByCode[code];
}
