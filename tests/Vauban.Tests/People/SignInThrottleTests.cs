// Failure counters live in the database: a restart of the server does not give an attacker a fresh start.
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class SignInThrottleTests(Engine engine)
{
    [Fact]
    public async Task Throttling_survives_a_restart_and_delays_grow()
    {
        await WithStoreOptionsAsync(new AccountOptions { AccountFailuresBeforeDelay = 3 }, async (options, time) =>
        {
            await using (var store = await VaubanStore.OpenAsync(options, CancellationToken.None))
            {
                for (var i = 0; i < 5; i++) await store.Throttle.RecordFailureAsync("1:42", Src("203.0.113.7"), CancellationToken.None);
                Assert.Equal(TimeSpan.FromSeconds(4), await store.Throttle.WaitAsync("1:42", null, CancellationToken.None));
            }
            await using (var restarted = await VaubanStore.OpenAsync(options, CancellationToken.None))
            {
                // 5 failures, threshold 3: the next attempt waits 2^(5-3) = 4 s.
                Assert.Equal(TimeSpan.FromSeconds(4), await restarted.Throttle.WaitAsync("1:42", Src("198.51.100.1"), CancellationToken.None));
                time.Advance(TimeSpan.FromSeconds(4));
                Assert.Null(await restarted.Throttle.WaitAsync("1:42", Src("198.51.100.1"), CancellationToken.None));
                await restarted.Throttle.RecordFailureAsync("1:42", null, CancellationToken.None);
                Assert.Equal(TimeSpan.FromSeconds(8), await restarted.Throttle.WaitAsync("1:42", null, CancellationToken.None));
                await restarted.Throttle.RecordSuccessAsync("1:42", CancellationToken.None);
                Assert.Null(await restarted.Throttle.WaitAsync("1:42", null, CancellationToken.None));
            }
        });
    }

    [Fact]
    public async Task An_admitted_attempt_counts_at_once_and_a_success_takes_its_count_back()
    {
        await WithStoreOptionsAsync(new AccountOptions { AccountFailuresBeforeDelay = 3, SourceFailuresBeforeDelay = 3 }, async (options, time) =>
        {
            await using var store = await VaubanStore.OpenAsync(options, CancellationToken.None);
            // Three attempts admitted together, none finished yet: the fourth already waits.
            var admitted = new List<ThrottleAdmission>();
            for (var i = 0; i < 3; i++)
            {
                admitted.Add(await store.Throttle.AdmitAsync("1:42", Src("203.0.113.7"), null, CancellationToken.None));
                Assert.Null(admitted[^1].Wait);
            }
            Assert.Equal(TimeSpan.FromSeconds(1), (await store.Throttle.AdmitAsync("1:42", Src("198.51.100.1"), null, CancellationToken.None)).Wait);
            Assert.Equal(TimeSpan.FromSeconds(1), (await store.Throttle.AdmitAsync("1:43", Src("203.0.113.7"), null, CancellationToken.None)).Wait);
            // One of them was a right password: its count is taken back, the others' stay.
            await store.Throttle.TakeBackAsync(admitted[0], CancellationToken.None);
            var fourth = await store.Throttle.AdmitAsync("1:42", Src("203.0.113.7"), null, CancellationToken.None);
            Assert.Null(fourth.Wait);
            Assert.NotNull((await store.Throttle.AdmitAsync("1:42", Src("198.51.100.1"), null, CancellationToken.None)).Wait);

            // The person waits out the delay, then types the right password: taken back, it leaves the counter as it found it,
            // the last failure's time included, so the second factor asked next is not held back by that success.
            time.Advance(TimeSpan.FromSeconds(2));
            var rightPassword = await store.Throttle.AdmitAsync("1:42", Src("203.0.113.8"), null, CancellationToken.None);
            Assert.Null(rightPassword.Wait);
            await store.Throttle.TakeBackAsync(rightPassword, CancellationToken.None);
            Assert.Null((await store.Throttle.AdmitAsync("1:42", Src("203.0.113.8"), null, CancellationToken.None)).Wait);

            // 20 at once on one account: no more than the threshold get through.
            var burst = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => store.Throttle.AdmitAsync("1:44", Src("192.0.2." + i), null, CancellationToken.None)));
            Assert.Equal(3, burst.Count(w => w.Wait is null));
        });
    }

    [Fact]
    public async Task A_source_in_the_establishments_own_networks_never_waits_for_its_own_count_and_alerts_the_officer_past_its_rate()
    {
        var accounts = new AccountOptions
        {
            AccountFailuresBeforeDelay = 3, SourceFailuresBeforeDelay = 3, InternalSourceFailuresBeforeAlert = 5,
            InternalNetworks = NetworkList.Parse("--internal-networks", "10.0.0.0/8,2001:db8:5::/48"),
        };
        await WithStoreOptionsAsync(accounts, async (options, time) =>
        {
            await using var store = await VaubanStore.OpenAsync(options, CancellationToken.None);
            var tenant = await store.Tenants.AddAsync("hospital-a", CancellationToken.None);
            var nat = store.Throttle.SourceOf(System.Net.IPAddress.Parse("10.1.2.3"))!;
            Assert.True(nat.Internal);
            Assert.Equal(nat, store.Throttle.SourceOf(System.Net.IPAddress.Parse("::ffff:10.1.2.3")));
            Assert.True(store.Throttle.SourceOf(System.Net.IPAddress.Parse("2001:db8:5:6::7"))!.Internal);
            Assert.False(store.Throttle.SourceOf(System.Net.IPAddress.Parse("11.1.2.3"))!.Internal);
            async Task<IReadOnlyList<SecurityAlert>> SprayingAlertsAsync() =>
                (await store.Alerts.ListAsync(tenant.Id, all: true, 100, CancellationToken.None)).Where(a => a.Kind == KnownAlertKinds.SignInSpraying).ToList();

            // Twelve failures on twelve accounts from the hospital's NAT, four times the per-source threshold: nobody waits.
            for (var i = 0; i < 12; i++) Assert.Null((await store.Throttle.AdmitAsync("1:a" + i, nat, tenant.Id, CancellationToken.None)).Wait);
            Assert.Null(await store.Throttle.WaitAsync("1:colleague", nat, CancellationToken.None));
            // The officer is told: once five failures had been counted, and again at ten.
            var alerts = await SprayingAlertsAsync();
            Assert.Equal(2, alerts.Count);
            Assert.All(alerts, a => Assert.Contains("5 failed sign-ins within 60 minutes from 10.1.2.3", a.Detail, StringComparison.Ordinal));

            // Each account's own failures still delay it, from inside too.
            for (var i = 0; i < 3; i++) Assert.Null((await store.Throttle.AdmitAsync("1:b", nat, tenant.Id, CancellationToken.None)).Wait);
            Assert.Equal(TimeSpan.FromSeconds(1), (await store.Throttle.AdmitAsync("1:b", nat, tenant.Id, CancellationToken.None)).Wait);

            // Typos slower than the alert's rate (four an hour) raise nothing more, however long they go on.
            for (var hour = 0; hour < 3; hour++)
            {
                time.Advance(TimeSpan.FromMinutes(61));
                for (var i = 0; i < 4; i++) Assert.Null((await store.Throttle.AdmitAsync($"1:c{hour}-{i}", nat, tenant.Id, CancellationToken.None)).Wait);
            }
            Assert.Equal(2, (await SprayingAlertsAsync()).Count);

            // The same count from an address outside those networks holds everyone behind it back, as before.
            var outside = store.Throttle.SourceOf(System.Net.IPAddress.Parse("203.0.113.7"))!;
            for (var i = 0; i < 3; i++) Assert.Null((await store.Throttle.AdmitAsync("1:d" + i, outside, tenant.Id, CancellationToken.None)).Wait);
            Assert.Equal(TimeSpan.FromSeconds(1), (await store.Throttle.AdmitAsync("1:colleague", outside, tenant.Id, CancellationToken.None)).Wait);
            Assert.Equal(2, (await SprayingAlertsAsync()).Count);
        });
    }

    [Fact]
    public async Task A_spray_from_inside_alerts_every_establishments_officer_whichever_one_its_attempts_name()
    {
        // An insider spraying hospital A's accounts, naming hospital B in the attempt that crosses the rate: the alert went to B alone.
        var accounts = new AccountOptions
        {
            AccountFailuresBeforeDelay = 3, SourceFailuresBeforeDelay = 3, InternalSourceFailuresBeforeAlert = 5,
            InternalNetworks = NetworkList.Parse("--internal-networks", "10.0.0.0/8"),
        };
        await WithStoreOptionsAsync(accounts, async (options, _) =>
        {
            await using var store = await VaubanStore.OpenAsync(options, CancellationToken.None);
            var a = await store.Tenants.AddAsync("hospital-a", CancellationToken.None);
            var b = await store.Tenants.AddAsync("hospital-b", CancellationToken.None);
            var nat = store.Throttle.SourceOf(System.Net.IPAddress.Parse("10.1.2.3"))!;
            for (var i = 0; i < 5; i++) await store.Throttle.AdmitAsync($"{a.Id}:a{i}", nat, a.Id, CancellationToken.None);
            await store.Throttle.AdmitAsync($"{b.Id}:b", nat, b.Id, CancellationToken.None);
            foreach (var tenant in new[] { a, b })
            {
                Assert.Single(await store.Alerts.ListAsync(tenant.Id, all: true, 100, CancellationToken.None), alert => alert.Kind == KnownAlertKinds.SignInSpraying);
            }
        });
    }

    /// <summary>A source outside the establishment's own networks.</summary>
    private static SignInSource Src(string address) => new(address, Internal: false);

    /// <summary>A store's options on this engine, with a clock that moves only when told, in a temporary folder removed after.</summary>
    private async Task WithStoreOptionsAsync(AccountOptions accounts, Func<StoreOptions, ManualTime, Task> test)
    {
        var directory = Path.Combine(Path.GetTempPath(), "vauban-throttle-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        try
        {
            var db = engine == Engine.Sqlite ? Path.Combine(directory, "v.db") : await PostgresServer.CreateDatabaseAsync();
            var time = new ManualTime(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero));
            await test(new StoreOptions(db, MasterKey.Generate()) { Time = time, Accounts = accounts }, time);
        }
        finally
        {
            try { Directory.Delete(directory, true); } catch (IOException) { }
        }
    }
}

public sealed class SignInThrottleTests_Sqlite() : SignInThrottleTests(Engine.Sqlite);

public sealed class SignInThrottleTests_Postgres() : SignInThrottleTests(Engine.Postgres);
