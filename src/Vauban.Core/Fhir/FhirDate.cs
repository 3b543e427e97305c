using Vauban.Records;

namespace Vauban.Fhir;

public static class FhirDate
{
    /// <summary>Parses a FHIR date or dateTime into the Unix milliseconds of its start.</summary>
    public static bool TryParseInstant(string text, out long unixMilliseconds)
    {
        var ok = FhirDateRange.TryParse(text, out unixMilliseconds, out _, out _);
        return ok;
    }

    /// <summary>The time a FHIR date or dateTime covers ("2026-03" is the whole month): its first millisecond and the one after its last.</summary>
    public static bool TryParseRange(string text, out DateTimeOffset start, out DateTimeOffset end)
    {
        start = end = default;
        if (!FhirDateRange.TryParse(text, out var low, out var high, out _) || low < -62135596800000 || high >= 253402300799999) return false;
        start = DateTimeOffset.FromUnixTimeMilliseconds(low);
        end = DateTimeOffset.FromUnixTimeMilliseconds(high + 1);
        return true;
    }
}
