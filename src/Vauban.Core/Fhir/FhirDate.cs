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
}
