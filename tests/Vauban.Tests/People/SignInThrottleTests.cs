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
        var directory = Path.Combine(Path.GetTempPath(), "vauban-throttle-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        try
        {
            var db = engine == Engine.Sqlite ? Path.Combine(directory, "v.db") : await PostgresServer.CreateDatabaseAsync();
            var time = new ManualTime(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero));
            var options = new StoreOptions(db, MasterKey.Generate()) { Time = time, Accounts = new AccountOptions { AccountFailuresBeforeDelay = 3 } };
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
        }
        finally
        {
            try { Directory.Delete(directory, true); } catch (IOException) { }
        }
    }
}

public sealed class SignInThrottleTests_Sqlite() : SignInThrottleTests(Engine.Sqlite);

public sealed class SignInThrottleTests_Postgres() : SignInThrottleTests(Engine.Postgres);
