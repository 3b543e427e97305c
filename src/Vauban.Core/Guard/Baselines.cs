// What the guard learns of each principal's normal: how many distinct patients it opens in its busiest hour
// and day (and how many of their identities it takes), the hours of the day it works (on Paris's clocks), the source networks and
// device classes it uses. Learned from real traffic in memory (a few array and set operations per request,
// under the principal's lock), folded once a day (a day spent contained or at high risk teaches nothing),
// written in one batch every minute and at shutdown (guard_baselines, migration step 8), read back at start.
// Accounts also feed their role's baseline (what a new account is measured against) and their establishment's
// known sources. Source networks and device classes are kept only as blind indexes (HMAC under the
// establishment's index key).
using System.Text.Json;
using System.Text.Json.Serialization;
using Vauban.Storage;

namespace Vauban.Guard;

/// <summary>One principal's (or one role's, or one establishment's) learned normal. Guarded by its own lock.</summary>
internal sealed class Baseline
{
    /// <summary>Days folded into the baseline (account-days for a role).</summary>
    [JsonPropertyName("days")] public int Days { get; set; }

    /// <summary>The day (days since the Unix epoch, on the guard's clock) being observed now.</summary>
    [JsonPropertyName("day")] public long Day { get; set; }

    [JsonPropertyName("first")] public long FirstDay { get; set; }

    /// <summary>Accounts: the role whose baseline their clean days feed.</summary>
    [JsonPropertyName("role")] public string? RoleName { get; set; }

    /// <summary>Learned peaks: distinct patients in the busiest sliding day and hour (decaying slowly).</summary>
    [JsonPropertyName("dayPeak")] public int DayPeak { get; set; }
    [JsonPropertyName("hourPeak")] public int HourPeak { get; set; }

    /// <summary>Today's peaks, folded at the next day.</summary>
    [JsonPropertyName("todayDayPeak")] public int TodayDayPeak { get; set; }
    [JsonPropertyName("todayHourPeak")] public int TodayHourPeak { get; set; }

    /// <summary>The same for identity reads (patients whose Patient resource was returned), learned over their own count of
    /// days: a baseline written before identities were counted has none, and its zero peaks must not be taken for a normal.</summary>
    [JsonPropertyName("identityDays")] public int IdentityDays { get; set; }
    [JsonPropertyName("identityDayPeak")] public int IdentityDayPeak { get; set; }
    [JsonPropertyName("identityHourPeak")] public int IdentityHourPeak { get; set; }
    [JsonPropertyName("todayIdentityDayPeak")] public int TodayIdentityDayPeak { get; set; }
    [JsonPropertyName("todayIdentityHourPeak")] public int TodayIdentityHourPeak { get; set; }

    /// <summary>Learned activity per hour of the day on Paris's clocks (a clinician's night is the same hours in winter and in
    /// summer, which UTC's hours shift by one), and today's.</summary>
    [JsonPropertyName("parisHours")] public double[] Hours { get; set; } = new double[24];
    [JsonPropertyName("todayParisHours")] public int[] TodayHours { get; set; } = new int[24];

    /// <summary>The same by UTC hour, as baselines written before 2026-12-07 hold them: read once, and moved to Paris's hours
    /// (<see cref="Deserialize"/>); never written.</summary>
    [JsonPropertyName("hours"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double[]? UtcHours { get; set; }
    [JsonPropertyName("todayHours"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int[]? TodayUtcHours { get; set; }

    /// <summary>Blind indexes of source networks and device classes → the last day they were seen; today's are pending until the day folds.</summary>
    [JsonPropertyName("sources")] public Dictionary<long, long> Sources { get; set; } = [];
    [JsonPropertyName("devices")] public Dictionary<long, long> Devices { get; set; } = [];
    [JsonPropertyName("todaySources")] public HashSet<long> TodaySources { get; set; } = [];
    [JsonPropertyName("todayDevices")] public HashSet<long> TodayDevices { get; set; } = [];

    /// <summary>Today the principal was contained or at high risk: today teaches nothing.</summary>
    [JsonPropertyName("tainted")] public bool Tainted { get; set; }

    [JsonIgnore] public bool Dirty { get; set; }

    /// <summary>For shared baselines (role, establishment), read without their lock by every request: replaced whole at each fold.</summary>
    [JsonIgnore] public volatile double[]? HoursView;
    [JsonIgnore] public volatile HashSet<long>? SourcesView;

    private const int MaxRemembered = 64;
    private const int ForgetAfterDays = 120;
    private const double Decay = 0.97;

    public bool Mature(int days) => Days >= days;

    public bool Active => TodayDayPeak > 0 || TodaySources.Count > 0 || TodayDevices.Count > 0;

    /// <summary>Moves to <paramref name="day"/>, folding what was observed on the previous day unless it was tainted.
    /// Returns whether a clean day was folded (its figures are then fed to the role and establishment).</summary>
    public bool Roll(long day, GuardSignalOptions options)
    {
        // Never back: a caller that read the clock before this day began (a background flush, a request straddling
        // midnight) would fold a day still under way and set the baseline back a day, learning a partial day twice.
        if (day <= Day) return false;
        var folded = false;
        if (Day != 0 && Active && !Tainted)
        {
            if (FirstDay == 0) FirstDay = Day;
            DayPeak = Fold(DayPeak, TodayDayPeak, Days, options);
            HourPeak = Fold(HourPeak, TodayHourPeak, Days, options);
            IdentityDayPeak = Fold(IdentityDayPeak, TodayIdentityDayPeak, IdentityDays, options);
            IdentityHourPeak = Fold(IdentityHourPeak, TodayIdentityHourPeak, IdentityDays, options);
            IdentityDays++;
            for (var h = 0; h < 24; h++) Hours[h] = Hours[h] * Decay + TodayHours[h];
            Learn(Sources, TodaySources, Day);
            Learn(Devices, TodayDevices, Day);
            Days++;
            folded = true;
        }
        if (Day == 0 && FirstDay == 0) FirstDay = day;
        Day = day;
        TodayDayPeak = TodayHourPeak = TodayIdentityDayPeak = TodayIdentityHourPeak = 0;
        Array.Clear(TodayHours);
        TodaySources.Clear();
        TodayDevices.Clear();
        Tainted = false;
        Dirty = true;
        return folded;

        static int Fold(int learned, int today, int days, GuardSignalOptions o)
        {
            // Until mature the first days are taken as they come; after, a day can raise the peak only so far.
            var capped = days < o.LearningDays ? today : (int)Math.Min(today, learned * o.MaxDailyGrowth + 10);
            return Math.Max((int)(learned * Decay), capped);
        }
    }

    /// <summary>Folds an account's clean day into its role's baseline (a role: the busiest of its accounts, their hours summed).</summary>
    public void FoldFrom(int dayPeak, int hourPeak, int identityDayPeak, int identityHourPeak, int[] hours, long day)
    {
        DayPeak = Math.Max((int)(DayPeak * 0.99), dayPeak);
        HourPeak = Math.Max((int)(HourPeak * 0.99), hourPeak);
        IdentityDayPeak = Math.Max((int)(IdentityDayPeak * 0.99), identityDayPeak);
        IdentityHourPeak = Math.Max((int)(IdentityHourPeak * 0.99), identityHourPeak);
        IdentityDays++;
        var next = (double[])Hours.Clone();
        for (var h = 0; h < 24; h++) next[h] = next[h] * 0.995 + hours[h];
        Hours = next;
        HoursView = next;
        if (FirstDay == 0) FirstDay = day;
        Days++;
        Dirty = true;
    }

    /// <summary>Adds a principal's clean day's sources to its establishment's known sources.</summary>
    public void LearnSources(IEnumerable<long> sources, long day)
    {
        var next = new HashSet<long>(SourcesView ?? [.. Sources.Keys]);
        foreach (var source in sources)
        {
            Sources[source] = day;
            next.Add(source);
        }
        if (FirstDay == 0) FirstDay = day;
        Day = Math.Max(Day, day);
        SourcesView = next;
        Dirty = true;
    }

    /// <summary>The officer vouched for the principal: today's sources and devices become known now.</summary>
    public void Vouch()
    {
        Learn(Sources, TodaySources, Day);
        Learn(Devices, TodayDevices, Day);
        Tainted = false;
        Dirty = true;
    }

    private static void Learn(Dictionary<long, long> known, HashSet<long> today, long day)
    {
        foreach (var value in today) known[value] = day;
        foreach (var (value, last) in known.Where(k => day - k.Value > ForgetAfterDays).ToList()) known.Remove(value);
        while (known.Count > MaxRemembered) known.Remove(known.MinBy(k => k.Value).Key);
    }

    /// <summary>The share of learned activity in hour <paramref name="hour"/> and its neighbours, or null when too little is known.</summary>
    public static double? ShareAround(double[]? hours, int hour)
    {
        if (hours is null) return null;
        var total = hours.Sum();
        if (total < 50) return null;
        return (hours[(hour + 23) % 24] + hours[hour] + hours[(hour + 1) % 24]) / total;
    }

    public string Serialize() => JsonSerializer.Serialize(this);

    /// <summary>A baseline as stored. One stored by UTC hour has its hours moved to Paris's by <paramref name="parisOffsetHours"/>,
    /// Paris's offset when it is read: most of what it learned is recent (it decays by 3 % a day), so of this season, and a learned
    /// hour is judged with its neighbours, which absorb the other season's hour.</summary>
    public static Baseline Deserialize(string json, int parisOffsetHours)
    {
        var baseline = JsonSerializer.Deserialize<Baseline>(json) ?? new Baseline();
        if (baseline.UtcHours is { Length: 24 } utc)
        {
            baseline.Hours = new double[24];
            for (var h = 0; h < 24; h++) baseline.Hours[(h + parisOffsetHours + 24) % 24] = utc[h];
            baseline.Dirty = true;
        }
        if (baseline.TodayUtcHours is { Length: 24 } today)
        {
            baseline.TodayHours = new int[24];
            for (var h = 0; h < 24; h++) baseline.TodayHours[(h + parisOffsetHours + 24) % 24] = today[h];
            baseline.Dirty = true;
        }
        (baseline.UtcHours, baseline.TodayUtcHours) = (null, null);
        if (baseline.Hours.Length != 24) baseline.Hours = new double[24];
        if (baseline.TodayHours.Length != 24) baseline.TodayHours = new int[24];
        baseline.HoursView = baseline.Hours;
        baseline.SourcesView = [.. baseline.Sources.Keys];
        return baseline;
    }
}

public sealed partial class RecordsGuard
{
    /// <summary>The subject of a role's baseline, and of an establishment's (its known sources).</summary>
    internal static string RoleSubject(Vauban.Access.StaffRole role) => "role:" + role;
    internal const string EstablishmentSubject = "establishment";

    private readonly System.Collections.Concurrent.ConcurrentDictionary<(long Tenant, string Subject), Baseline> _baselines = new();
    private long _flushedAt;
    private int _flushing;
    private bool _baselinesLoaded;
    // One write of the baselines at a time: a flush that finds nothing dirty because a background write has taken it
    // returns only once that write is committed (a restart right after a flush loads what it wrote).
    private readonly Lock _baselineWriteOrder = new();
    private Task _baselineWrite = Task.CompletedTask;

    internal Baseline BaselineOf(long tenant, string subject) => _baselines.GetOrAdd((tenant, subject), _ => new Baseline { HoursView = new double[24], SourcesView = [] });

    private async Task LoadBaselinesAsync(System.Data.Common.DbConnection connection, CancellationToken cancellationToken)
    {
        // Baselines stored by UTC hour are moved to Paris's by its offset now.
        var parisOffsetHours = (int)ParisTime.Of(_time.GetUtcNow()).Offset.TotalHours;
        using var command = connection.Command("SELECT tenant_id, subject, profile FROM guard_baselines");
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            Baseline loaded;
            try
            {
                loaded = Baseline.Deserialize(reader.GetString(2), parisOffsetHours);
            }
            catch (JsonException)
            {
                continue; // an unreadable baseline is learned again; the configured limits hold meanwhile
            }
            _baselines[(reader.GetInt64(0), reader.GetString(1))] = loaded;
        }
    }

    /// <summary>Starts a background write of the baselines learned since the last one, when due.</summary>
    private void FlushBaselinesIfDue(long nowMs)
    {
        if (nowMs - Interlocked.Read(ref _flushedAt) < (long)Options.Signals.FlushInterval.TotalMilliseconds) return;
        if (Interlocked.CompareExchange(ref _flushing, 1, 0) != 0) return;
        Interlocked.Exchange(ref _flushedAt, nowMs);
        Defer(async () =>
        {
            try { await FlushBaselinesAsync(CancellationToken.None); }
            catch (System.Data.Common.DbException) { /* marked dirty again: the next flush writes them */ }
            finally { Volatile.Write(ref _flushing, 0); }
        });
    }

    /// <summary>Forgets everything learned for an establishment (the benchmark starts each run from nothing learned).</summary>
    internal async Task ForgetBaselinesAsync(long tenantId, CancellationToken cancellationToken)
    {
        foreach (var key in _baselines.Keys.Where(k => k.Tenant == tenantId).ToList()) _baselines.TryRemove(key, out _);
        foreach (var (key, state) in _states.Where(s => s.Key.Tenant == tenantId).ToList())
        {
            lock (state) state.Baseline = null;
        }
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using var delete = scope.Command("DELETE FROM guard_baselines WHERE tenant_id = @t").With("t", tenantId);
        await delete.ExecuteNonQueryAsync(cancellationToken);
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>Writes every baseline changed since the last write, in one transaction.</summary>
    internal async Task FlushBaselinesAsync(CancellationToken cancellationToken)
    {
        Task mine;
        lock (_baselineWriteOrder) mine = _baselineWrite = AfterAsync(_baselineWrite, cancellationToken);
        await mine;
    }

    private async Task AfterAsync(Task previous, CancellationToken cancellationToken)
    {
        try
        {
            await previous;
        }
        catch (Exception e) when (e is System.Data.Common.DbException or OperationCanceledException)
        {
            // Its own caller has it; this write goes on.
        }
        await WriteBaselinesAsync(cancellationToken);
    }

    private async Task WriteBaselinesAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        RollIdle(now);
        var changed = new List<(long Tenant, string Subject, string Profile)>();
        foreach (var ((tenant, subject), baseline) in _baselines)
        {
            lock (baseline)
            {
                if (!baseline.Dirty) continue;
                baseline.Dirty = false;
                changed.Add((tenant, subject, baseline.Serialize()));
            }
        }
        if (changed.Count == 0) return;
        try
        {
            await using var scope = await _database.BeginWriteAsync(cancellationToken);
            foreach (var (tenant, subject, profile) in changed)
            {
                using var upsert = scope.Command("""
                    INSERT INTO guard_baselines (tenant_id, subject, profile, updated_at) VALUES (@t, @s, @p, @at)
                    ON CONFLICT (tenant_id, subject) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at
                    """).With("t", tenant).With("s", subject).With("p", profile).With("at", now);
                await upsert.ExecuteNonQueryAsync(cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
        }
        catch
        {
            // Not written: marked again, so that the next flush tries them.
            foreach (var (tenant, subject, _) in changed)
            {
                if (_baselines.TryGetValue((tenant, subject), out var baseline)) lock (baseline) baseline.Dirty = true;
            }
            throw;
        }
    }
}
