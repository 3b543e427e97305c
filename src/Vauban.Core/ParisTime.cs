// French establishments, French readers: what a person reads (a page, an alert, a letter) gives times as the clocks in France
// show them, and says so. The machine's time-zone data names the zone; without it (a container with no tzdata) times stay in
// UTC and are named UTC, never mislabelled.
using System.Globalization;

namespace Vauban;

public static class ParisTime
{
    public static TimeZoneInfo Zone { get; } = TimeZoneInfo.TryFindSystemTimeZoneById("Europe/Paris", out var paris) ? paris : TimeZoneInfo.Utc;

    /// <summary>Whether <see cref="Zone"/> is Paris's (false: the machine has no time-zone data, and times are UTC).</summary>
    public static bool Known => Zone != TimeZoneInfo.Utc;

    /// <summary>"Paris time", or "UTC" when the zone is not known.</summary>
    public static string Name => Known ? "Paris time" : "UTC";

    /// <summary>An instant as Paris's clocks showed it.</summary>
    public static DateTimeOffset Of(DateTimeOffset at) => TimeZoneInfo.ConvertTime(at, Zone);

    /// <summary>The calendar date in Paris at <paramref name="at"/>: "today" for a page's forms and for a search's dates alike,
    /// so that between midnight in Paris and midnight UTC the two do not name different days.</summary>
    public static DateOnly DateOf(DateTimeOffset at) => DateOnly.FromDateTime(Of(at).DateTime);

    /// <summary>"2026-12-06 23:41 Paris time (22:41 UTC)": for a text read both at the console (Paris time) and on the command
    /// line (UTC).</summary>
    public static string WithUtc(DateTimeOffset at) => Known
        ? Of(at).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " Paris time (" + at.UtcDateTime.ToString("HH:mm", CultureInfo.InvariantCulture) + " UTC)"
        : at.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " UTC";
}
