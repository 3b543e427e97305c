// The machine's time-zone data for Paris, for the tests that compare Vauban's own rules with it. A machine without it (a slim
// container) skips them, saying why, rather than fail: Vauban itself needs no tzdata (ParisRules), nor do the tests that check
// its rules against known instants.
namespace Vauban.Tests.Infrastructure;

public static class Tzdata
{
    /// <summary>The machine's Europe/Paris, or null when it has no time-zone data.</summary>
    public static TimeZoneInfo? Paris { get; } = TimeZoneInfo.TryFindSystemTimeZoneById("Europe/Paris", out var paris) ? paris : null;

    internal const string Missing = "needs the machine's time-zone data (tzdata) for Europe/Paris, which this machine does not have";
}

/// <summary>A fact that compares with the machine's tzdata: skipped, with the reason, on a machine without it.</summary>
public sealed class TzdataFactAttribute : FactAttribute
{
    public TzdataFactAttribute()
    {
        if (Tzdata.Paris is null) Skip = Tzdata.Missing;
    }
}
