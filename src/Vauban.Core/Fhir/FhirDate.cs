using Vauban.Records;

namespace Vauban.Fhir;

public static class FhirDate
{
    /// <summary>What the `_since` parameters (history, $everything, $export) take: a FHIR instant.</summary>
    public const string InstantExample = "an instant with its time zone, e.g. 2026-01-01T00:00:00Z or 2026-01-01T01:00:00+01:00";

    /// <summary>Parses a FHIR instant — a date and a time to the second at least, with its time zone — into Unix milliseconds.
    /// Without a zone the moment is not known (Paris is one or two hours from UTC): refused, not guessed.</summary>
    public static bool TryParseInstant(string text, out long unixMilliseconds)
    {
        unixMilliseconds = 0;
        var zone = text.EndsWith('Z') ? 1 : text.Length > 6 && text[^6] is '+' or '-' && text[^3] == ':' ? 6 : 0;
        if (zone == 0 || text.Length - zone < 19 || text[10] != 'T' || text[16] != ':') return false;
        return FhirDateRange.TryParse(text, out unixMilliseconds, out _, out _);
    }

    /// <summary>The time a FHIR date or dateTime covers ("2026-03" is the whole month; without a zone, Paris's): its first millisecond
    /// and the one after its last, within what DateTimeOffset holds (Paris's year 1 starts before it, its 9999 ends after).</summary>
    public static bool TryParseRange(string text, out DateTimeOffset start, out DateTimeOffset end)
    {
        start = end = default;
        if (!FhirDateRange.TryParse(text, out var low, out var high, out _)) return false;
        start = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(low, First, Last));
        end = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(high + 1, First, Last));
        return true;
    }

    private static readonly long First = DateTimeOffset.MinValue.ToUnixTimeMilliseconds(), Last = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();
}
