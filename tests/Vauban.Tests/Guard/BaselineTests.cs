// A principal's learned baseline, rolled from one day to the next.
using System.Text.Json;
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

    [Theory]
    [InlineData(1, 8)]
    [InlineData(2, 9)]
    public void A_baseline_stored_by_UTC_hour_is_read_by_Paris_hour_moved_by_Paris_offset_then(int parisOffsetHours, int parisHour)
    {
        var utcHours = new double[24];
        utcHours[7] = 40;
        utcHours[23] = 2;
        var todayUtcHours = new int[24];
        todayUtcHours[7] = 3;
        var stored = JsonSerializer.Serialize(new { days = 5, hours = utcHours, todayHours = todayUtcHours });

        var baseline = Baseline.Deserialize(stored, parisOffsetHours);

        Assert.Equal(40, baseline.Hours[parisHour]);
        Assert.Equal(2, baseline.Hours[(23 + parisOffsetHours) % 24]);
        Assert.Equal(3, baseline.TodayHours[parisHour]);
        Assert.Equal(42, baseline.Hours.Sum());
        Assert.True(baseline.Dirty); // written back by Paris hour at the next flush
        var written = baseline.Serialize();
        Assert.DoesNotContain("\"hours\"", written, StringComparison.Ordinal);
        // Read again, it is by Paris hour already: not moved a second time.
        Assert.Equal(baseline.Hours, Baseline.Deserialize(written, parisOffsetHours).Hours);
        Assert.Equal(baseline.Hours, Baseline.Deserialize(written, 3 - parisOffsetHours).Hours);
    }
}
