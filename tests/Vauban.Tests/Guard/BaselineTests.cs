// A principal's learned baseline, rolled from one day to the next.
using Vauban.Guard;

namespace Vauban.Tests.Guard;

public sealed class BaselineTests
{
    private static readonly GuardSignalOptions Options = new();

    private static Baseline OneDayLearned()
    {
        var baseline = new Baseline();
        baseline.Roll(100, Options);
        baseline.TodayDayPeak = 20;
        baseline.TodayHourPeak = 8;
        baseline.TodayHours[9] = 8;
        baseline.Roll(101, Options); // day 100 folded
        baseline.TodayDayPeak = 5;    // day 101 under way
        baseline.TodayHourPeak = 3;
        baseline.TodayHours[9] = 3;
        return baseline;
    }

    [Fact]
    public void A_day_under_way_is_not_folded_by_a_caller_that_read_the_clock_before_it_began()
    {
        var baseline = OneDayLearned();
        var (days, dayPeak, hourPeak) = (baseline.Days, baseline.DayPeak, baseline.HourPeak);

        // A background flush that read the clock on day 100 runs after a request has begun day 101.
        Assert.False(baseline.Roll(100, Options));

        Assert.Equal(101, baseline.Day);
        Assert.Equal((days, dayPeak, hourPeak), (baseline.Days, baseline.DayPeak, baseline.HourPeak));
        Assert.Equal((5, 3, 3), (baseline.TodayDayPeak, baseline.TodayHourPeak, baseline.TodayHours[9]));
    }

    [Fact]
    public void The_next_day_folds_the_day_under_way_once()
    {
        var baseline = OneDayLearned();
        var days = baseline.Days;

        Assert.True(baseline.Roll(102, Options));
        Assert.False(baseline.Roll(102, Options));

        Assert.Equal(102, baseline.Day);
        Assert.Equal(days + 1, baseline.Days);
        Assert.Equal(0, baseline.TodayDayPeak);
    }
}
