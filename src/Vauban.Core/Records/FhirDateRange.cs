// FHIR dates, dateTimes and instants as the range of time they cover (a date of "2024-03" covers the
// whole month), in Unix milliseconds, inclusive at both ends. Date search compares such ranges.
// A value without a zone is read on Paris's clocks (ParisTime; FHIR R4 search, date: a server may apply its own zone to
// values without one): a year, a month or a day covers Paris's, from its midnight to the next — 23 hours the day the clocks
// go forward, 25 the day they go back —, and a search's time without a zone is Paris's. A stored dateTime with a time always
// has its zone (the validator refuses one without), so only stored dates and months and years, and search values, are read so.
using System.Globalization;

namespace Vauban.Records;

internal static class FhirDateRange
{
    public const long Min = long.MinValue / 2;
    public const long Max = long.MaxValue / 2;

    public static bool TryParse(string text, out long low, out long high, out DatePrecision precision) =>
        TryRead(text, paris: true, out low, out high, out precision, out _);

    /// <summary>
    /// Whether <paramref name="start"/> is surely after <paramref name="end"/>, as FHIR R4's per-1 (<c>start &lt;= end</c> under
    /// FHIRPath) fails only when it is: values given to different precisions compare as the times they cover ("2024-03-11" may
    /// end at "2024-03-11T10:00:00Z"), and a value without a zone is on whatever clock its writer meant — the same as the other's
    /// when neither has one (two dates compare as the calendar does), any zone the grammar admits (−14:00 to +14:00) when only
    /// one has: "2024-03-01T21:00:00-04:00" may start on the day that ends "2024-03-01", which Paris's clocks had left. Paris's
    /// reading, which search and the index need, is not the writer's. False when either is not a FHIR date or dateTime.
    /// </summary>
    public static bool IsSurelyAfter(string start, string end)
    {
        if (!TryRead(start, paris: false, out var startsAt, out _, out _, out var startZoned)
            || !TryRead(end, paris: false, out _, out var endsBy, out _, out var endZoned)) return false;
        return startsAt - endsBy > (startZoned == endZoned ? 0 : MaxOffsetMilliseconds);
    }

    // ±14:00: the widest offset a FHIR dateTime may have (TryReadTime), by which a value without a zone may be earlier or later.
    private const long MaxOffsetMilliseconds = 14 * 3_600_000L;

    /// <summary>A value's range; one without a zone read on Paris's clocks (<paramref name="paris"/>), or on a clock with none (UTC's
    /// readings), the way two values without one compare with each other. <paramref name="zoned"/>: the value has Z or an offset.</summary>
    private static bool TryRead(string text, bool paris, out long low, out long high, out DatePrecision precision, out bool zoned)
    {
        low = high = 0;
        zoned = false;
        precision = DatePrecision.Year;
        if (string.IsNullOrEmpty(text) || text.Length < 4) return false;
        if (!int.TryParse(text.AsSpan(0, 4), NumberStyles.None, CultureInfo.InvariantCulture, out var year) || year < 1) return false;
        if (text.Length == 4)
        {
            var first = new DateOnly(year, 1, 1).DayNumber;
            return Days(first, first + (DateTime.IsLeapYear(year) ? 366 : 365), paris, out low, out high);
        }
        if (text.Length < 7 || text[4] != '-' || !int.TryParse(text.AsSpan(5, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var month) || month is < 1 or > 12) return false;
        if (text.Length == 7)
        {
            precision = DatePrecision.Month;
            var first = new DateOnly(year, month, 1).DayNumber;
            return Days(first, first + DateTime.DaysInMonth(year, month), paris, out low, out high);
        }
        if (text.Length < 10 || text[7] != '-' || !int.TryParse(text.AsSpan(8, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var day)
            || day < 1 || day > DateTime.DaysInMonth(year, month)) return false;
        var date = new DateOnly(year, month, day).DayNumber;
        if (text.Length == 10)
        {
            precision = DatePrecision.Day;
            return Days(date, date + 1, paris, out low, out high);
        }
        if (text[10] != 'T') return false;
        precision = DatePrecision.Time;
        if (!TryReadTime(text.AsSpan(11), out var millisecondOfDay, out var span, out var offsetMinutes)) return false;
        if (offsetMinutes is not { } offset)
        {
            // A time the clocks skip covers no time: the instant they jump at, and nothing (eq finds nothing there; the prefixes
            // compare as the clocks read: lt02:30 is before the jump, gt02:30 from it).
            var skipped = false;
            low = paris ? ParisTime.UnixMillisecondsAt(ParisTime.WallClock(date, millisecondOfDay), out skipped) : ParisTime.WallClock(date, millisecondOfDay);
            high = skipped ? low - 1 : low + span;
            return true;
        }
        zoned = true;
        // Counted in whole milliseconds rather than through DateTimeOffset: a moment written near year 1 or 9999 in another
        // zone ("0001-01-01T00:00:00+01:00") falls outside what DateTime holds once in UTC, yet it is a valid FHIR dateTime.
        low = ParisTime.WallClock(date, millisecondOfDay) - (offset * 60_000L);
        high = low + span;
        return true;
    }

    /// <summary>The first and last day a date without a time names on the calendar (a year its 1 January to its 31 December), for
    /// what is kept as a calendar date rather than as instants (a birth date's blind index); false for any other value.</summary>
    public static bool TryParseDays(string text, out DateOnly first, out DateOnly last)
    {
        first = last = default;
        if (text.Length is not (4 or 7 or 10) || !TryRead(text, paris: false, out _, out _, out var precision, out _)) return false;
        var year = int.Parse(text.AsSpan(0, 4), NumberStyles.None, CultureInfo.InvariantCulture);
        var month = precision == DatePrecision.Year ? 1 : int.Parse(text.AsSpan(5, 2), NumberStyles.None, CultureInfo.InvariantCulture);
        first = new DateOnly(year, month, precision == DatePrecision.Day ? int.Parse(text.AsSpan(8, 2), NumberStyles.None, CultureInfo.InvariantCulture) : 1);
        last = precision switch
        {
            DatePrecision.Year => new DateOnly(year, 12, 31),
            DatePrecision.Month => new DateOnly(year, month, DateTime.DaysInMonth(year, month)),
            _ => first,
        };
        return true;
    }

    /// <summary>hh:mm, hh:mm:ss or hh:mm:ss.f+, then Z, ±hh:mm or nothing (<paramref name="offsetMinutes"/> null: Paris's clocks).
    /// Fractions beyond the millisecond are cut off. A leap second (23:59:60, which the FHIR grammar admits) is the last
    /// millisecond of the minute before it: Unix time has no second for it.</summary>
    /// <param name="span">How many milliseconds past the first the value covers: 59,999 to the minute, 999 to the second, 0 with a fraction.</param>
    private static bool TryReadTime(ReadOnlySpan<char> time, out long millisecondOfDay, out long span, out int? offsetMinutes)
    {
        millisecondOfDay = span = 0;
        offsetMinutes = null;
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

    /// <summary>Paris's days from <paramref name="first"/> up to <paramref name="next"/> (DateOnly.DayNumber; one past 9999-12-31 is
    /// the end of that day): from the instant its clocks first show the first day's midnight to the last before they show the next's;
    /// or, not <paramref name="paris"/>, the days on a clock with no zone.</summary>
    private static bool Days(int first, int next, bool paris, out long low, out long high)
    {
        low = paris ? ParisTime.StartOf(first) : ParisTime.WallClock(first, 0);
        high = (paris ? ParisTime.StartOf(next) : ParisTime.WallClock(next, 0)) - 1;
        return true;
    }
}

internal enum DatePrecision { Year, Month, Day, Time }
