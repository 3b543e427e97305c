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
        if (!TryReadTime(text.AsSpan(11), out var millisecondOfDay, out var span, out var offsetMinutes)) return false;
        // Counted in whole milliseconds rather than through DateTimeOffset: a moment written near year 1 or 9999 in another
        // zone ("0001-01-01T00:00:00+01:00") falls outside what DateTime holds once in UTC, yet it is a valid FHIR dateTime.
        var midnight = new DateTimeOffset(year, month, day, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        low = midnight + millisecondOfDay - (offsetMinutes * 60_000L);
        high = low + span;
        return true;
    }

    /// <summary>hh:mm, hh:mm:ss or hh:mm:ss.f+, then Z, ±hh:mm or nothing (search values without a zone are taken as UTC).
    /// Fractions beyond the millisecond are cut off. A leap second (23:59:60, which the FHIR grammar admits) is the last
    /// millisecond of the minute before it: Unix time has no second for it.</summary>
    /// <param name="span">How many milliseconds past the first the value covers: 59,999 to the minute, 999 to the second, 0 with a fraction.</param>
    private static bool TryReadTime(ReadOnlySpan<char> time, out long millisecondOfDay, out long span, out int offsetMinutes)
    {
        millisecondOfDay = span = offsetMinutes = 0;
        if (!TryTwoDigits(time, 0, out var hours) || hours > 23 || time.Length < 5 || time[2] != ':'
            || !TryTwoDigits(time, 3, out var minutes) || minutes > 59) return false;
        var position = 5;
        var seconds = 0;
        var milliseconds = 0;
        span = 59_999;
        if (position < time.Length && time[position] == ':')
        {
            if (!TryTwoDigits(time, position + 1, out seconds) || seconds > 60) return false;
            position += 3;
            span = 999;
            if (position < time.Length && time[position] == '.')
            {
                var digits = 0;
                for (position++; position < time.Length && char.IsAsciiDigit(time[position]); position++, digits++)
                {
                    if (digits < 3) milliseconds = (milliseconds * 10) + (time[position] - '0');
                }
                if (digits == 0) return false;
                for (; digits < 3; digits++) milliseconds *= 10;
                span = 0;
            }
            if (seconds == 60)
            {
                seconds = 59;
                milliseconds = 999;
                span = 0;
            }
        }
        var zone = time[position..];
        if (zone is "Z")
        {
            offsetMinutes = 0;
        }
        else if (!zone.IsEmpty)
        {
            if (zone.Length != 6 || zone[0] is not ('+' or '-') || zone[3] != ':'
                || !TryTwoDigits(zone, 1, out var zoneHours) || !TryTwoDigits(zone, 4, out var zoneMinutes)
                || zoneHours > 14 || zoneMinutes > 59 || (zoneHours == 14 && zoneMinutes > 0)) return false;
            offsetMinutes = (zone[0] == '-' ? -1 : 1) * ((zoneHours * 60) + zoneMinutes);
        }
        millisecondOfDay = (((((hours * 60L) + minutes) * 60) + seconds) * 1000) + milliseconds;
        return true;
    }

    private static bool TryTwoDigits(ReadOnlySpan<char> text, int start, out int value)
    {
        value = 0;
        if (text.Length < start + 2 || !char.IsAsciiDigit(text[start]) || !char.IsAsciiDigit(text[start + 1])) return false;
        value = ((text[start] - '0') * 10) + (text[start + 1] - '0');
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
