// French establishments, French readers: what a person reads (a page, an alert, a letter) gives times as the clocks in France
// show them, and says so; and a date or a time written without a zone (a FHIR date, a search value, a form's field) is read on
// those clocks. Paris's offset at any instant comes from one place (OffsetMilliseconds), so that a store's search index, which
// holds the instants each date covers, does not depend on the machine that wrote it: since 16 September 1945 the machine's
// time-zone data, or, on a machine without it (a container with no tzdata), Vauban's own copy of the rules (ParisRules), the two
// checked alike hour by hour; before, UTC+1 on every machine (ADR 0013: tzdata's local mean time and war-time offsets differ
// between machines and releases, and an EPR's dates of then are calendar days).
using System.Globalization;

namespace Vauban;

public static class ParisTime
{
    /// <summary>The machine's Paris rules (tzdata), or Vauban's copy of them when it has none.</summary>
    private static readonly TimeZoneInfo Machine = TimeZoneInfo.TryFindSystemTimeZoneById("Europe/Paris", out var paris) ? paris : ParisRules.Zone;

    /// <summary>How the pages and letters name the time they give.</summary>
    public const string Name = "Paris time";

    /// <summary>An instant as Paris's clocks showed it.</summary>
    public static DateTimeOffset Of(DateTimeOffset at) => TimeZoneInfo.ConvertTime(at, ZoneAt(at.ToUnixTimeMilliseconds(), Machine));

    /// <summary>The calendar date in Paris at <paramref name="at"/>: "today" for a page's forms and for a search's dates alike,
    /// so that between midnight in Paris and midnight UTC the two do not name different days.</summary>
    public static DateOnly DateOf(DateTimeOffset at) => DateOnly.FromDateTime(Of(at).DateTime);

    /// <summary>The calendar date in Paris at an instant (Unix milliseconds); beyond what DateTimeOffset holds, its first or last day.</summary>
    internal static DateOnly DateOf(long unixMilliseconds) =>
        DateOf(DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(unixMilliseconds, MinUnixMilliseconds, MaxUnixMilliseconds)));

    /// <summary>"2026-12-06 23:41 Paris time (22:41 UTC)": for a text read both at the console (Paris time) and on the command
    /// line (UTC).</summary>
    public static string WithUtc(DateTimeOffset at) =>
        Of(at).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " Paris time (" + at.UtcDateTime.ToString("HH:mm", CultureInfo.InvariantCulture) + " UTC)";

    /// <summary>The instant Paris's clocks show <paramref name="date"/> at <paramref name="time"/>, with Paris's offset then (the
    /// first, in summer time, when the clocks show it twice: <see cref="UnixMillisecondsAt"/>); null when they skip it (02:30 on
    /// the last Sunday of March), which a form refuses rather than write a time that never was. The first hour of year 1 in Paris
    /// is before what DateTimeOffset holds: it is that earliest instant (a form's own bounds then refuse it; it threw, a 500).</summary>
    public static DateTimeOffset? At(DateOnly date, TimeOnly time)
    {
        var at = Read(WallClock(date.DayNumber, time.Ticks / TimeSpan.TicksPerMillisecond), out var skipped, out _);
        return skipped ? null : OfUnixMilliseconds(at);
    }

    /// <summary>The second instant Paris's clocks show <paramref name="date"/> at <paramref name="time"/>, in winter time, when they
    /// show it twice (02:00–02:59 the night they go back); null for any other reading.</summary>
    public static DateTimeOffset? SecondPassAt(DateOnly date, TimeOnly time)
    {
        var first = Read(WallClock(date.DayNumber, time.Ticks / TimeSpan.TicksPerMillisecond), out _, out var last);
        return last != first ? OfUnixMilliseconds(last) : null;
    }

    private static DateTimeOffset OfUnixMilliseconds(long at) =>
        Of(DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(at, MinUnixMilliseconds, MaxUnixMilliseconds)));

    /// <summary>A wall-clock reading as milliseconds from 1970-01-01 00:00 on the same clock (no zone): the day (DateOnly.DayNumber,
    /// which may be one past 9999-12-31, the end of that day) and the milliseconds into it.</summary>
    internal static long WallClock(int dayNumber, long millisecondOfDay) => ((dayNumber - UnixEpochDay) * MillisecondsPerDay) + millisecondOfDay;

    /// <summary>The instant (Unix milliseconds) a day (DateOnly.DayNumber; one past 9999-12-31 is the end of that day) begins on
    /// Paris's clocks: when they first show its midnight.</summary>
    internal static long StartOf(int dayNumber) => UnixMillisecondsAt(WallClock(dayNumber, 0), out _);

    /// <summary>What Paris's clocks read at an instant (Unix milliseconds), as <see cref="WallClock"/> counts it.</summary>
    internal static long WallClockOf(long unixMilliseconds) => unixMilliseconds + OffsetMilliseconds(unixMilliseconds);

    /// <summary>
    /// The instant (Unix milliseconds) at which Paris's clocks read <paramref name="wallClock"/> (<see cref="WallClock"/>).
    /// A reading they show twice, when they go back an hour (02:00–02:59 on the last Sunday of October), is the first, in summer
    /// time: a day, a search's "from" or an agenda's starts when the clocks first show it, and nothing of the hour is left out.
    /// A reading they skip, when they go forward (02:00–02:59 on the last Sunday of March), is the instant they jump at (03:00
    /// summer time), with <paramref name="skipped"/>: the first instant whose reading is later, so that readings before and after
    /// the gap keep their order (ge02:30 is from the jump, lt02:30 before it).
    /// </summary>
    public static long UnixMillisecondsAt(long wallClock, out bool skipped) => Read(wallClock, out skipped, out _);

    /// <summary><see cref="UnixMillisecondsAt"/>, and the last instant the clocks read <paramref name="wallClock"/> at: the second
    /// pass's when they show it twice, else the same.</summary>
    private static long Read(long wallClock, out bool skipped, out long last)
    {
        skipped = false;
        // Paris's offset a day either side: one change at most lies between (they are months apart), and only one within two
        // hours of the reading can make it ambiguous or skipped. Most readings are neither: two look-ups.
        var before = OffsetMilliseconds(wallClock - MillisecondsPerDay);
        var after = OffsetMilliseconds(wallClock + MillisecondsPerDay);
        if (before == after) return last = wallClock - before;
        var readBefore = wallClock - before;
        var readAfter = wallClock - after;
        var beforeHolds = OffsetMilliseconds(readBefore) == before;
        var afterHolds = OffsetMilliseconds(readAfter) == after;
        if (beforeHolds && afterHolds)
        {
            last = Math.Max(readBefore, readAfter);
            return Math.Min(readBefore, readAfter);
        }
        if (beforeHolds) return last = readBefore;
        if (afterHolds) return last = readAfter;
        // Skipped: the change lies between the two readings, the offset before it at the earlier one. The first instant after it.
        skipped = true;
        var (low, high) = (Math.Min(readBefore, readAfter), Math.Max(readBefore, readAfter));
        while (high - low > 1)
        {
            var middle = low + ((high - low) / 2);
            if (OffsetMilliseconds(middle) == before) low = middle;
            else high = middle;
        }
        return last = high;
    }

    private static long OffsetMilliseconds(long unixMilliseconds) => OffsetMilliseconds(unixMilliseconds, Machine);

    /// <summary>Paris's offset at an instant (Unix milliseconds) on a machine whose Paris rules are <paramref name="machine"/>
    /// (tzdata, or ParisRules without it): the same on every machine (<see cref="ZoneAt"/>).</summary>
    internal static long OffsetMilliseconds(long unixMilliseconds, TimeZoneInfo machine)
    {
        // Beyond what DateTime holds (a day either side of year 1 or 9999), the offset at its edge.
        var ticks = Math.Clamp(unixMilliseconds, MinUnixMilliseconds, MaxUnixMilliseconds) * TimeSpan.TicksPerMillisecond + DateTime.UnixEpoch.Ticks;
        return ZoneAt(unixMilliseconds, machine).GetUtcOffset(new DateTime(ticks, DateTimeKind.Utc)).Ticks / TimeSpan.TicksPerMillisecond;
    }

    /// <summary>Whose rules give Paris's offset at an instant: the machine's from <see cref="ParisRules.Since"/>, where tzdata and
    /// ParisRules agree, and ParisRules' UTC+1 before it, whatever the machine holds. tzdata has Paris's mean time until 1911
    /// (+00:09:21, which .NET rounds to +00:10), then UTC with summer times set year by year, then the war's offsets: history,
    /// which tzdata itself calls unreliable before 1970 and which releases and distributions revise; copied into ParisRules it
    /// would be forty years of rules to keep for nothing a clinician reads. An EPR's dates of then are calendar days (a birth,
    /// an illness of childhood, an old operation), written without a time: what matters is that a date written is the day found,
    /// shown and compared alike on every server, which one offset gives. The first instant of the machine's rules is continuous
    /// with it (+01:00 either side).</summary>
    private static TimeZoneInfo ZoneAt(long unixMilliseconds, TimeZoneInfo machine) =>
        unixMilliseconds < ParisRules.SinceUnixMilliseconds ? ParisRules.Zone : machine;

    private const long MillisecondsPerDay = 86_400_000;
    private static readonly int UnixEpochDay = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;
    private static readonly long MinUnixMilliseconds = DateTimeOffset.MinValue.ToUnixTimeMilliseconds();
    private static readonly long MaxUnixMilliseconds = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();
}

/// <summary>
/// Paris's rules since its clocks were last set to Central European Time (16 September 1945), for a machine without time-zone data:
/// UTC+1, and summer time (UTC+2) since 1976 — on the dates France chose from 1976 to 1980, then from the last Sunday of March to
/// the last Sunday of September until 1995, to the last Sunday of October since 1996 (the EU's rule); the clocks go forward at 02:00
/// and back at 03:00 (01:00 UTC both times; 1976's at 01:00 both ways). Before 1945 these are not Paris's (its mean time until 1911,
/// then UTC with its own summer times, then the war's): tzdata has them, these rules read such times as UTC+1, and so does
/// ParisTime on every machine (ParisTime.ZoneAt).
/// </summary>
internal static class ParisRules
{
    /// <summary>When Paris's clocks were last set to UTC+1, from the war's summer time (03:00 on 16 September 1945 went back to
    /// 02:00): from this instant these rules are Paris's, as tzdata has them.</summary>
    public static readonly DateTimeOffset Since = new(1945, 9, 16, 1, 0, 0, TimeSpan.Zero);

    public static readonly long SinceUnixMilliseconds = Since.ToUnixTimeMilliseconds();

    public static TimeZoneInfo Zone { get; } = TimeZoneInfo.CreateCustomTimeZone("Europe/Paris", TimeSpan.FromHours(1), "Paris", "CET", "CEST",
    [
        Year(1976, (3, 28), (9, 26), forwardAt: 1, backAt: 1),
        Year(1977, (4, 3), (9, 25)),
        Year(1978, (4, 2), (10, 1)),
        Year(1979, (4, 1), (9, 30)),
        Year(1980, (4, 6), (9, 28)),
        LastSundays(1981, 1995, backIn: 9),
        LastSundays(1996, 9999, backIn: 10),
    ]);

    private static TimeZoneInfo.AdjustmentRule Year(int year, (int Month, int Day) forward, (int Month, int Day) back, int forwardAt = 2, int backAt = 3) =>
        TimeZoneInfo.AdjustmentRule.CreateAdjustmentRule(new DateTime(year, 1, 1), new DateTime(year, 12, 31), TimeSpan.FromHours(1),
            TimeZoneInfo.TransitionTime.CreateFixedDateRule(new DateTime(1, 1, 1, forwardAt, 0, 0), forward.Month, forward.Day),
            TimeZoneInfo.TransitionTime.CreateFixedDateRule(new DateTime(1, 1, 1, backAt, 0, 0), back.Month, back.Day));

    // Week 5: the last Sunday of the month. The change back is given in summer time (03:00), as .NET reads it.
    private static TimeZoneInfo.AdjustmentRule LastSundays(int from, int to, int backIn) =>
        TimeZoneInfo.AdjustmentRule.CreateAdjustmentRule(new DateTime(from, 1, 1), new DateTime(to, 12, 31), TimeSpan.FromHours(1),
            TimeZoneInfo.TransitionTime.CreateFloatingDateRule(new DateTime(1, 1, 1, 2, 0, 0), 3, 5, DayOfWeek.Sunday),
            TimeZoneInfo.TransitionTime.CreateFloatingDateRule(new DateTime(1, 1, 1, 3, 0, 0), backIn, 5, DayOfWeek.Sunday));
}
