// Stable numbers for the resource types Vauban stores. They are written in every row and bound into
// each record's encryption: never renumber, only append.
namespace Vauban.Records;

internal static class TypeCodes
{
    private static readonly Dictionary<string, int> ByName = new(StringComparer.Ordinal)
    {
        ["Patient"] = 1,
        ["Practitioner"] = 2,
        ["PractitionerRole"] = 3,
        ["Organization"] = 4,
        ["Encounter"] = 5,
        ["CareTeam"] = 6,
        ["Appointment"] = 7,
        ["MedicationRequest"] = 8,
        ["Observation"] = 9,
        ["DiagnosticReport"] = 10,
        ["DocumentReference"] = 11,
        ["Coverage"] = 12,
        ["Invoice"] = 13,
    };

    private static readonly Dictionary<int, string> ByCode = ByName.ToDictionary(p => p.Value, p => p.Key);

    public static IReadOnlyCollection<string> Names => ByName.Keys;

    public static bool TryGet(string type, out int code) => ByName.TryGetValue(type, out code);

    public static int Of(string type) => ByName.TryGetValue(type, out var code)
        ? code
        : throw new ArgumentException("Unsupported resource type.", nameof(type));

    public static string NameOf(int code) => ByCode[code];
}
