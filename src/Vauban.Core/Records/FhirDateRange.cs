// FHIR dates, dateTimes and instants as the range of time they cover (a date of "2024-03" covers the
// whole month), in Unix milliseconds, inclusive at both ends. Date search compares such ranges.
using System.Globalization;

namespace Vauban.Records;

internal static class FhirDateRange
{
    public const long Min = long.MinValue / 2;
    public const long Max = long.MaxValue / 2;

    public static bool TryParse(string text, out long low, out long high, out DatePrecision precision)
    {
        low = high = 0;
        precision = DatePrecision.Year;
        if (string.IsNullOrEmpty(text) || text.Length < 4) return false;
        if (!int.TryParse(text.AsSpan(0, 4), NumberStyles.None, CultureInfo.InvariantCulture, out var year) || year < 1) return false;
        if (text.Length == 4)
        {
            var start = new DateTime(year, 1, 1, 0, 0, 0, DateTimeKind.Utc);
            return Range(start, year == MaxYear ? null : start.AddYears(1), out low, out high);
        }
        if (text.Length < 7 || text[4] != '-' || !int.TryParse(text.AsSpan(5, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var month) || month is < 1 or > 12) return false;
        if (text.Length == 7)
        {
            precision = DatePrecision.Month;
            var start = new DateTime(year, month, 1, 0, 0, 0, DateTimeKind.Utc);
            return Range(start, year == MaxYear && month == 12 ? null : start.AddMonths(1), out low, out high);
        }
        if (text.Length < 10 || text[7] != '-' || !int.TryParse(text.AsSpan(8, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var day)
            || day < 1 || day > DateTime.DaysInMonth(year, month)) return false;
        if (text.Length == 10)
        {
            precision = DatePrecision.Day;
            var start = new DateTime(year, month, day, 0, 0, 0, DateTimeKind.Utc);
            return Range(start, start == DateTime.MaxValue.Date ? null : start.AddDays(1), out low, out high);
        }
        if (text[10] != 'T') return false;
        precision = DatePrecision.Time;
        // A dateTime with a time: seconds precision (or as given), zone required by FHIR but tolerated as UTC in search values.
        var hasZone = text.EndsWith('Z') || (text.Length > 16 && (text[^6] == '+' || text[^6] == '-'));
        var styles = DateTimeStyles.AdjustToUniversal | (hasZone ? DateTimeStyles.None : DateTimeStyles.AssumeUniversal);
        string[] formats = ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", "yyyy-MM-dd'T'HH:mmK", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", "yyyy-MM-dd'T'HH:mm"];
        if (!DateTimeOffset.TryParseExact(text, formats, CultureInfo.InvariantCulture, styles, out var instant)) return false;
        var withSeconds = text.Length > 16 && text[16] == ':';
        var withFraction = withSeconds && text.Length > 19 && text[19] == '.';
        low = instant.ToUnixTimeMilliseconds();
        high = low + (withFraction ? 0 : withSeconds ? 999 : 59_999);
        return true;
    }

    private const int MaxYear = 9999;

    /// <param name="endExclusive">The start of the next year, month or day; null when there is none (9999-12-31 is a
    /// valid FHIR date), and the range then ends at the last millisecond DateTime can hold.</param>
    private static bool Range(DateTime start, DateTime? endExclusive, out long low, out long high)
    {
        low = new DateTimeOffset(start).ToUnixTimeMilliseconds();
        high = endExclusive is { } end
            ? new DateTimeOffset(end).ToUnixTimeMilliseconds() - 1
            : new DateTimeOffset(DateTime.SpecifyKind(DateTime.MaxValue, DateTimeKind.Utc)).ToUnixTimeMilliseconds();
        return true;
    }
}

internal enum DatePrecision { Year, Month, Day, Time }
