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
                for (var i = 0; i < 5; i++) await store.Throttle.RecordFailureAsync("1:42", "203.0.113.7", CancellationToken.None);
                Assert.Equal(TimeSpan.FromSeconds(4), await store.Throttle.WaitAsync("1:42", null, CancellationToken.None));
            }
            await using (var restarted = await VaubanStore.OpenAsync(options, CancellationToken.None))
            {
                // 5 failures, threshold 3: the next attempt waits 2^(5-3) = 4 s.
                Assert.Equal(TimeSpan.FromSeconds(4), await restarted.Throttle.WaitAsync("1:42", "198.51.100.1", CancellationToken.None));
                time.Advance(TimeSpan.FromSeconds(4));
                Assert.Null(await restarted.Throttle.WaitAsync("1:42", "198.51.100.1", CancellationToken.None));
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
                admitted.Add(await store.Throttle.AdmitAsync("1:42", "203.0.113.7", CancellationToken.None));
                Assert.Null(admitted[^1].Wait);
            }
            Assert.Equal(TimeSpan.FromSeconds(1), (await store.Throttle.AdmitAsync("1:42", "198.51.100.1", CancellationToken.None)).Wait);
            Assert.Equal(TimeSpan.FromSeconds(1), (await store.Throttle.AdmitAsync("1:43", "203.0.113.7", CancellationToken.None)).Wait);
            // One of them was a right password: its count is taken back, the others' stay.
            await store.Throttle.TakeBackAsync(admitted[0], CancellationToken.None);
            var fourth = await store.Throttle.AdmitAsync("1:42", "203.0.113.7", CancellationToken.None);
            Assert.Null(fourth.Wait);
            Assert.NotNull((await store.Throttle.AdmitAsync("1:42", "198.51.100.1", CancellationToken.None)).Wait);

            // The person waits out the delay, then types the right password: taken back, it leaves the counter as it found it,
            // the last failure's time included, so the second factor asked next is not held back by that success.
            time.Advance(TimeSpan.FromSeconds(2));
            var rightPassword = await store.Throttle.AdmitAsync("1:42", "203.0.113.8", CancellationToken.None);
            Assert.Null(rightPassword.Wait);
            await store.Throttle.TakeBackAsync(rightPassword, CancellationToken.None);
            Assert.Null((await store.Throttle.AdmitAsync("1:42", "203.0.113.8", CancellationToken.None)).Wait);

            // 20 at once on one account: no more than the threshold get through.
            var burst = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => store.Throttle.AdmitAsync("1:44", "192.0.2." + i, CancellationToken.None)));
            Assert.Equal(3, burst.Count(w => w.Wait is null));
        });
    }

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
