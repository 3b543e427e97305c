// The guard's sliding windows, on a clock the test moves: distinct patients counted once within the
// window, forgotten exactly when the window has passed their last touch; amounts summed and expired.
using Vauban.Guard;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public sealed class ReadingWindowTests
{
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 11, 30, 8, 0, 0, TimeSpan.Zero));

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    [Fact]
    public void A_patient_opened_twice_within_the_window_counts_once()
    {
        var window = new DistinctWindow(TimeSpan.FromMinutes(1));
        window.Touch("p1", Now);
        _time.Advance(TimeSpan.FromSeconds(10));
        window.Touch("p1", Now);
        window.Touch("p2", Now);
        Assert.Equal(2, window.Count(Now));
    }

    [Fact]
    public void A_patient_leaves_the_window_a_window_length_after_its_last_touch()
    {
        var window = new DistinctWindow(TimeSpan.FromMinutes(1));
        window.Touch("p1", Now);
        _time.Advance(TimeSpan.FromSeconds(40));
        window.Touch("p1", Now);
        window.Touch("p2", Now);
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(2, window.Count(Now));
        Assert.True(window.Contains("p1", Now));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, window.Count(Now));
        Assert.False(window.Contains("p1", Now));
    }

    [Fact]
    public void CountWith_tells_the_count_the_new_patients_would_make_without_recording_them()
    {
        var window = new DistinctWindow(TimeSpan.FromHours(1));
        window.Touch("p1", Now);
        Assert.Equal(3, window.CountWith(["p1", "p2", "p3"], Now));
        Assert.Equal(1, window.Count(Now));
    }

    [Fact]
    public void Slow_and_low_reading_accumulates_in_the_day_window_but_not_in_the_minute_window()
    {
        var minute = new DistinctWindow(TimeSpan.FromMinutes(1));
        var day = new DistinctWindow(TimeSpan.FromDays(1));
        for (var i = 0; i < 600; i++)
        {
            minute.Touch("p" + i, Now);
            day.Touch("p" + i, Now);
            _time.Advance(TimeSpan.FromSeconds(30));
        }
        // The last touch was 30 s ago; the one before, exactly a minute ago, has just left.
        Assert.Equal(1, minute.Count(Now));
        Assert.Equal(600, day.Count(Now));
        _time.Advance(TimeSpan.FromHours(19));
        Assert.True(day.Count(Now) < 600 && day.Count(Now) > 0);
        _time.Advance(TimeSpan.FromHours(6));
        Assert.Equal(0, day.Count(Now));
    }

    [Fact]
    public void Keys_come_oldest_last_touch_first_and_each_once()
    {
        var window = new DistinctWindow(TimeSpan.FromMinutes(1));
        window.Touch("p1", Now);
        window.Touch("p2", Now);
        window.Touch("p1", Now);
        Assert.Equal(["p1", "p2"], window.Keys(Now));
        _time.Advance(TimeSpan.FromSeconds(1));
        window.Touch("p2", Now);
        _time.Advance(TimeSpan.FromSeconds(1));
        window.Touch("p3", Now);
        _time.Advance(TimeSpan.FromSeconds(1));
        window.Touch("p1", Now);
        Assert.Equal(["p2", "p3", "p1"], window.Keys(Now));
        _time.Advance(TimeSpan.FromSeconds(58));
        Assert.Equal(["p3", "p1"], window.Keys(Now));
        Assert.Equal(2, window.Count(Now));
    }

    [Fact]
    public void A_clock_stepped_back_keeps_a_patient_counted_longer_never_less_and_listed_once()
    {
        var window = new DistinctWindow(TimeSpan.FromMinutes(1));
        var now = Now;
        window.Touch("p1", now);
        window.Touch("p1", now - 30_000);
        window.Touch("p2", now - 30_000);
        window.Touch("p1", now);
        Assert.Equal(["p1", "p2"], window.Keys(now));
        Assert.Equal(2, window.Count(now + 59_999));
        Assert.Equal(0, window.Count(now + 60_000));
    }

    [Fact]
    public void A_patient_read_again_and_again_all_day_holds_one_place_not_one_per_read()
    {
        var window = new DistinctWindow(TimeSpan.FromDays(1));
        for (var i = 0; i < 100_000; i++)
        {
            window.Touch("p1", Now);
            if (i % 10 == 0) window.Touch("p" + (2 + i / 10 % 5), Now);
            _time.Advance(TimeSpan.FromMilliseconds(500));
        }
        Assert.Equal(6, window.Count(Now));
        Assert.True(window.Held <= 2 * 6 + 64, $"{window.Held} touches held for 6 patients");
        Assert.Equal("p1", window.Keys(Now).Last());
        _time.Advance(TimeSpan.FromDays(1));
        Assert.Equal(0, window.Count(Now));
        Assert.Equal(0, window.Held);
    }

    [Fact]
    public void Windows_sharing_their_keys_count_each_patient_in_every_window_its_last_touch_is_within()
    {
        var windows = new DistinctWindows(TimeSpan.FromMinutes(1), TimeSpan.FromHours(1), TimeSpan.FromDays(1));
        windows.Touch("p1", Now);
        _time.Advance(TimeSpan.FromMinutes(2));
        windows.Touch("p2", Now);
        Span<int> counts = stackalloc int[3];
        windows.CountWith(["p1", "p3"], Now, counts);
        // p1 left the minute (p1 asked again would count there), is still in the hour and the day; p3 is new everywhere.
        Assert.Equal([3, 3, 3], counts.ToArray());
        Assert.Equal([1, 2, 2], new[] { windows.Count(0, Now), windows.Count(1, Now), windows.Count(2, Now) });
        windows.Touch("p1", Now);
        Assert.Equal([2, 2, 2], new[] { windows.Count(0, Now), windows.Count(1, Now), windows.Count(2, Now) });
        _time.Advance(TimeSpan.FromHours(2));
        Assert.Equal([0, 0, 2], new[] { windows.Count(0, Now), windows.Count(1, Now), windows.Count(2, Now) });
        Assert.False(windows.Contains(1, "p1", Now));
        Assert.True(windows.Contains(2, "p1", Now));
        Assert.Equal(["p2", "p1"], windows.Keys(2, Now));
        _time.Advance(TimeSpan.FromDays(1));
        Assert.Equal(0, windows.Count(2, Now));
        Assert.Empty(windows.Keys(2, Now));
        Assert.Throws<ArgumentException>(() => new DistinctWindows(TimeSpan.FromHours(1), TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public void Windows_sharing_their_keys_agree_with_counting_every_touch_over_a_long_random_day()
    {
        // A model that keeps every touch: a window's count is the patients whose last touch is within it, the windows ending
        // at the latest time asked about (a clock stepped back brings nothing back). Keys leave and come back, slots are
        // handed out again, and the clock jumps forward and back.
        TimeSpan[] lengths = [TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(5), TimeSpan.FromHours(1)];
        var windows = new DistinctWindows(lengths);
        var last = new Dictionary<string, long>(StringComparer.Ordinal);
        var random = new Random(20261202);
        var now = Now;
        var horizon = now;
        Span<int> counts = stackalloc int[3];
        for (var step = 0; step < 60_000; step++)
        {
            now += random.Next(10) switch { 0 => -random.Next(20_000), < 8 => random.Next(200), 8 => random.Next(120_000), _ => random.Next(3_600_000) };
            horizon = Math.Max(horizon, now);
            int Expected(int w, IEnumerable<string> extra) => last.Count(p => p.Value > horizon - (long)lengths[w].TotalMilliseconds)
                + extra.Distinct().Count(k => !(last.TryGetValue(k, out var at) && at > horizon - (long)lengths[w].TotalMilliseconds));
            var key = "p" + random.Next(random.Next(2) == 0 ? 30 : 3_000);
            if (random.Next(3) == 0)
            {
                var asked = new[] { key, "p" + random.Next(3_000) }.Distinct().ToArray();
                windows.CountWith(asked, now, counts);
                for (var w = 0; w < 3; w++) Assert.Equal(Expected(w, asked), counts[w]);
            }
            else
            {
                windows.Touch(key, now);
                last[key] = horizon;
            }
            if (step % 500 == 0)
            {
                for (var w = 0; w < 3; w++)
                {
                    Assert.Equal(Expected(w, []), windows.Count(w, now));
                    var expectedKeys = last.Where(p => p.Value > horizon - (long)lengths[w].TotalMilliseconds).Select(p => p.Key).Order(StringComparer.Ordinal);
                    Assert.Equal(expectedKeys, windows.Keys(w, now).Order(StringComparer.Ordinal));
                    Assert.True(windows.Held(w) <= 2 * windows.Count(w, now) + 64 + 1);
                }
            }
        }
    }

    [Fact]
    public void Amounts_are_summed_within_the_window_and_expire_after_it()
    {
        var window = new CountWindow(TimeSpan.FromHours(1));
        window.Add(50, Now);
        _time.Advance(TimeSpan.FromMinutes(30));
        window.Add(20, Now);
        window.Add(0, Now);
        Assert.Equal(70, window.Sum(Now));
        _time.Advance(TimeSpan.FromMinutes(30));
        Assert.Equal(20, window.Sum(Now));
        _time.Advance(TimeSpan.FromMinutes(30));
        Assert.Equal(0, window.Sum(Now));
    }

    [Fact]
    public void Thresholds_must_rise_and_the_default_outside_care_bound_is_at_most_25()
    {
        Assert.Throws<VaubanConfigurationException>(() => new GuardOptions { People = new GuardLimits { PatientsPerMinute = new Threshold(Slow: 20, StepUp: 10) } }.Validate());
        Assert.Throws<VaubanConfigurationException>(() => new GuardOptions { People = new GuardLimits { OutsideCarePerDay = new Threshold(Suspend: 100) } }.Validate());
        new GuardOptions().Validate();
        Assert.Equal(25, new GuardOptions().For(new Vauban.Access.Tenant(1, "t"), new Vauban.Access.Principal(Vauban.Access.PrincipalKind.Person, "user:x", "x", Vauban.Access.SmartScopes.None) { Role = Vauban.Access.StaffRole.Physician }).OutsideCarePerDay.Suspend);
    }

    [Fact]
    public void The_security_officer_reading_the_audit_log_has_levels_of_her_own_above_a_clinicians()
    {
        var officer = new GuardOptions().For(new Vauban.Access.Tenant(1, "t"),
            new Vauban.Access.Principal(Vauban.Access.PrincipalKind.Person, "user:o", "o", Vauban.Access.SmartScopes.None) { Role = Vauban.Access.StaffRole.SecurityOfficer });
        Assert.Equal(new Threshold(Suspend: 1_500), officer.PatientsPerMinute);
        Assert.Equal(new Threshold(StepUp: 500, Suspend: 3_000), officer.PatientsPerHour);
        Assert.Equal(new Threshold(StepUp: 1_500, Suspend: 10_000), officer.PatientsPerDay);
        Assert.Equal(new Threshold(StepUp: 10, Suspend: 25), officer.OutsideCarePerDay);
    }

    [Fact]
    public void A_guard_configuration_file_sets_limits_per_role_and_establishment_and_refuses_typos()
    {
        var options = GuardOptions.FromJson("""
            {
              // Night shift physicians of the emergency department read more.
              "roles": { "Physician": { "patientsPerHour": { "slow": 50, "stepUp": 80, "suspend": 120 } } },
              "tenants": { "chu-lyon": { "clients": { "patientsPerDay": { "suspend": 5000 } } } },
              "slowDelay": "00:00:00.100"
            }
            """);
        var physician = new Vauban.Access.Principal(Vauban.Access.PrincipalKind.Person, "user:x", "x", Vauban.Access.SmartScopes.None) { Role = Vauban.Access.StaffRole.Physician };
        var nurse = physician with { Role = Vauban.Access.StaffRole.Nurse };
        var client = new Vauban.Access.Principal(Vauban.Access.PrincipalKind.ApiClient, "c", "c", Vauban.Access.SmartScopes.None);
        Assert.Equal(120, options.For(new Vauban.Access.Tenant(1, "any"), physician).PatientsPerHour.Suspend);
        Assert.Equal(100, options.For(new Vauban.Access.Tenant(1, "any"), nurse).PatientsPerHour.Suspend);
        Assert.Equal(5000, options.For(new Vauban.Access.Tenant(2, "chu-lyon"), client).PatientsPerDay.Suspend);
        Assert.Equal(TimeSpan.FromMilliseconds(100), options.SlowDelay);
        var typo = Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "roles": { "Physician": { "patientsPerHuor": { "suspend": 1 } } } }"""));
        // In the operator's words: the setting and where it is, lines and columns from 1, not a .NET type name.
        Assert.Equal("The guard configuration is not valid: line 1, column 47: unknown setting 'patientsPerHuor' in roles.Physician (the settings are in docs/adr/0008-guard.md)", typo.Message);
        var broken = Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("{bad"));
        Assert.StartsWith("The guard configuration is not valid: line 1, column 2: ", broken.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", broken.Message, StringComparison.Ordinal);
        // A key file named by mistake: where it fails, never what it holds (the parser quotes the word it could not read).
        var key = Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("tcBT+GZMYiNJILrJbGOPk64WRQwdWB+0yaFNWzc5AGs=\n"));
        Assert.StartsWith("The guard configuration is not valid: line 1, column 2: what is written there is an invalid JSON literal", key.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("tcBT", key.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("GZMY", Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("{ \"roles\": GZMYiNJILrJbGOPk }")).Message, StringComparison.Ordinal);
        Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "roles": { "Surgeon": {} } }"""));
        Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "people": { "outsideCarePerDay": { "suspend": 500 } } }"""));
        // A file moves the bounds; it cannot switch the guard off.
        var off = Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "enabled": false }"""));
        Assert.Contains("cannot turn the guard off", off.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Signal_settings_are_validated_and_the_high_risk_bound_is_at_most_25()
    {
        var options = GuardOptions.FromJson("""{ "signals": { "atRiskPatients": { "stepUp": 5, "suspend": 15 }, "learningDays": 7 } }""");
        Assert.Equal(15, options.Signals.AtRiskPatients.Suspend);
        Assert.Equal(7, options.Signals.LearningDays);
        Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "signals": { "atRiskPatients": { "suspend": 100 } } }"""));
        Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "signals": { "highRisk": 0 } }"""));
        Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "signals": { "newDeviceWieght": 1 } }"""));
    }

    [Theory]
    [InlineData("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0", "browser:firefox/windows")]
    [InlineData("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "browser:edge/windows")]
    [InlineData("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "browser:chrome/linux")]
    [InlineData("curl/8.5.0", "tool:curl")]
    [InlineData("python-requests/2.31.0", "library:python")]
    [InlineData("", null)]
    public void A_user_agent_is_reduced_to_a_coarse_device_class(string userAgent, string? expected) => Assert.Equal(expected, DeviceClass.Of(userAgent));

    [Theory]
    [InlineData("10.20.0.15", "10.20.0.0/24")]
    [InlineData("::ffff:10.20.0.99", "10.20.0.0/24")]
    [InlineData("2001:db8:1:2:3:4:5:6", "20010DB800010002::/64")]
    [InlineData("not an address", null)]
    public void A_source_address_is_reduced_to_its_network(string address, string? expected) => Assert.Equal(expected, SourceNetwork.Of(address));
}

public class EnumerationShapeTests
{
    private static (int NameSteps, int DateSteps) Search(Vauban.Guard.EnumerationShapes shapes, string family) =>
        shapes.Search([new KeyValuePair<string, string>("family", family)]);

    [Fact]
    public void Accents_sprinkled_into_a_name_sweep_do_not_hide_it()
    {
        // The index folds accents ("Dùb" finds the Dubs), so the guard must read the same letters: string.Normalize does nothing
        // to non-ASCII text in this process, and "Dùb" read as "db", breaking the sweep's steps.
        var shapes = new Vauban.Guard.EnumerationShapes();
        Search(shapes, "Dua");
        Search(shapes, "Dùb");
        Search(shapes, "Duç");
        Assert.Equal(3, Search(shapes, "Dud").NameSteps);
    }

    [Fact]
    public void An_attempt_abandoned_and_run_again_leaves_a_sweep_as_one_attempt_would()
    {
        // A transaction Bundle of two searches, its first attempt abandoned for a lost connection, its feeds taken back last first.
        var shapes = new Vauban.Guard.EnumerationShapes();
        Search(shapes, "dup");
        var first = (Before: shapes.Save(), After: 0L);
        Search(shapes, "duq");
        first.After = shapes.Changes;
        var second = (Before: shapes.Save(), After: 0L);
        Search(shapes, "dur");
        second.After = shapes.Changes;
        shapes.TakeBack(second.Before, second.After);
        shapes.TakeBack(first.Before, first.After);
        // The second attempt feeds the same two searches: steps of 1, not of 0.
        Search(shapes, "duq");
        Search(shapes, "dur");
        Assert.Equal(3, Search(shapes, "dus").NameSteps);
    }

    [Fact]
    public void An_abandoned_attempt_is_not_put_back_over_another_request_fed_since()
    {
        var shapes = new Vauban.Guard.EnumerationShapes();
        Search(shapes, "dup");
        var before = shapes.Save();
        Search(shapes, "duq");
        var after = shapes.Changes;
        Search(shapes, "dur"); // another request of the principal, meanwhile
        shapes.TakeBack(before, after);
        Assert.Equal(3, Search(shapes, "dus").NameSteps); // dup → duq → dur → dus kept
    }

    [Theory]
    [InlineData("Hélène", "helene")]
    [InlineData("Jean-Baptiste", "jean-baptiste")]
    [InlineData("Saint-Étienne", "saint-etienne")]
    [InlineData("Chloë Œdipe", "chloeoedipe")]
    public void Synthetic_e_mail_addresses_fold_accents_as_the_index_does(string name, string slug) =>
        Assert.Equal(slug, Vauban.Records.Synthetic.FrenchData.Slug(name));
}
