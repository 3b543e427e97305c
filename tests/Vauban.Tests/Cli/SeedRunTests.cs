// `vauban seed` run twice at once, and killed midway (outside review, M1): the same seed and date give the same records, ids
// included, so a second run while the first loads is refused before it writes anything, and a run killed with kill -9 is
// finished by `seed --resume`, which leaves the establishment holding exactly what an uninterrupted run holds.
using System.Collections.Concurrent;
using Vauban.Tests.Infrastructure;
using static Vauban.Tests.Storage.StoreOperationsTests;

namespace Vauban.Tests.Cli;

[Collection("console")]
public sealed class SeedRunTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-seedrun-" + Guid.NewGuid().ToString("N")[..8]);

    public SeedRunTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        try { Directory.Delete(_directory, true); } catch (IOException) { }
    }

    private string Key => Path.Combine(_directory, "master.key");

    private async Task<string> StoreAsync(Engine engine)
    {
        var db = engine == Engine.Postgres ? await PostgresServer.CreateMigratedDatabaseAsync() : Path.Combine(_directory, "v.db");
        Assert.Equal(0, (await CliRunner.RunAsync(["tenants", "add", "chu", "--db", db, "--master-key-file", Key])).Exit);
        Assert.Equal(0, (await CliRunner.RunAsync(["tenants", "add", "chu-temoin", "--db", db, "--master-key-file", Key])).Exit);
        return db;
    }

    private static async Task<long> TenantAsync(string db, string name) => await ScalarAsync(db, $"SELECT id FROM tenants WHERE name = '{name}'");

    /// <summary>Every record of the establishment, by type and id, with its version; and its canaries.</summary>
    private static async Task<(List<string> Records, List<string> Canaries)> HoldingsAsync(string db, long tenant)
    {
        var records = new List<string>();
        var canaries = new List<string>();
        await using var connection = await OpenAsync(db);
        using (var command = connection.CreateCommand())
        {
            command.CommandText = $"SELECT type, id, version FROM resources WHERE tenant_id = {tenant} ORDER BY type, id";
            using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) records.Add($"{reader.GetValue(0)}/{reader.GetString(1)}/{reader.GetValue(2)}");
        }
        using (var command = connection.CreateCommand())
        {
            command.CommandText = $"SELECT patient FROM guard_canaries WHERE tenant_id = {tenant} ORDER BY patient";
            using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) canaries.Add(reader.GetString(0));
        }
        return (records, canaries);
    }

    private static async Task<System.Data.Common.DbConnection> OpenAsync(string db)
    {
        System.Data.Common.DbConnection connection = Vauban.VaubanStore.IsPostgresConnectionString(db)
            ? new Npgsql.NpgsqlConnection(db)
            : new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        return connection;
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_second_run_of_a_seed_being_loaded_is_refused_and_one_killed_midway_is_finished_by_resume_as_an_uninterrupted_run_would_be(Engine engine)
    {
        var db = await StoreAsync(engine);
        var chu = await TenantAsync(db, "chu");
        string[] store = ["--db", db, "--master-key-file", Key];
        string[] seed = ["seed", "--tenant", "chu", "--patients", "6000", "--seed", "3", "--as-of", "2026-01-15", .. store];
        var output = new ConcurrentQueue<string>();
        using var child = ChildVauban.Start(seed, _directory, output);
        var holder = child.Id;
        try
        {
            // Its first batch committed: the run is midway.
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (!child.HasExited && await ScalarAsync(db, $"SELECT count(*) FROM resources WHERE tenant_id = {chu}") == 0)
            {
                Assert.True(waited.Elapsed < TimeSpan.FromMinutes(3), "the child's seed wrote nothing: " + string.Join('\n', output));
                await Task.Delay(20);
            }
            Assert.False(child.HasExited, "the child's seed ended before it could be met midway: " + string.Join('\n', output));
            if (engine == Engine.Postgres)
            {
                // The same seed and date while it runs: refused at once, naming the run, nothing written.
                await SecondRunIsRefusedAsync(seed, holder);
                Assert.False(child.HasExited, "the child's seed ended before the second run was refused: " + string.Join('\n', output));
            }
        }
        finally
        {
            child.Kill(); // SIGKILL: nothing of the child's own runs after it
            await child.WaitForExitAsync();
        }
        if (engine == Engine.Sqlite)
        {
            // SQLite: a second process opening the store waits for the write lock, which the loader holds for nearly the whole run, so
            // a test cannot be sure to meet the run midway (the second run then found it complete). The claim is made to name a process
            // that runs, as a running seed's does.
            using var running = System.Diagnostics.Process.Start("sleep", "120");
            holder = running.Id;
            var started = new DateTimeOffset(running.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds();
            await ExecuteAsync(db, $"UPDATE seed_runs SET process_id = {holder}, process_started = {started} WHERE tenant_id = {chu}");
            try
            {
                await SecondRunIsRefusedAsync(seed, holder);
            }
            finally
            {
                running.Kill();
                await running.WaitForExitAsync();
            }
        }
        Assert.Equal(1, await ScalarAsync(db, $"SELECT max(version) FROM resources WHERE tenant_id = {chu}"));
        var loadedWhenKilled = await ScalarAsync(db, $"SELECT count(*) FROM resources WHERE tenant_id = {chu}");

        // Met again: the run did not finish, its process is gone; --resume is named, with what it takes.
        var again = await CliRunner.RunAsync(seed);
        Assert.True(again.Exit == 1, again.Output);
        Assert.StartsWith($"error: A run of --seed 3 as of 2026-01-15 into chu, by process {holder} on host {Environment.MachineName}", again.Output, StringComparison.Ordinal);
        Assert.Contains("did not finish (that process no longer runs). To finish it, give --resume (with --patients 6000 --canaries 6)", again.Output, StringComparison.Ordinal);
        var otherCount = await CliRunner.RunAsync(["seed", "--tenant", "chu", "--patients", "5000", "--seed", "3", "--as-of", "2026-01-15", "--resume", .. store]);
        Assert.True(otherCount.Exit == 1, otherCount.Output);
        Assert.Contains("It was to load --patients 6000 --canaries 6: resume it with those", otherCount.Output, StringComparison.Ordinal);
        Assert.Equal(loadedWhenKilled, await ScalarAsync(db, $"SELECT count(*) FROM resources WHERE tenant_id = {chu}"));

        var resumed = await CliRunner.RunAsync([.. seed, "--resume"]);
        Assert.True(resumed.Exit == 0, resumed.Output);
        Assert.Contains($"Resumed the seed of 6,000 patients into chu: {loadedWhenKilled:N0} of its ", resumed.Output, StringComparison.Ordinal);

        // Exactly what an uninterrupted run of the same seed and date holds (another establishment: the same ids, its own keys).
        Assert.Equal(0, (await CliRunner.RunAsync(["seed", "--tenant", "chu-temoin", "--patients", "6000", "--seed", "3", "--as-of", "2026-01-15", .. store])).Exit);
        var (records, canaries) = await HoldingsAsync(db, chu);
        var (expectedRecords, expectedCanaries) = await HoldingsAsync(db, await TenantAsync(db, "chu-temoin"));
        Assert.Equal(expectedRecords.Count, records.Count);
        Assert.Equal(expectedRecords, records);
        Assert.Equal(6, canaries.Count);
        Assert.Equal(expectedCanaries, canaries);

        // Finished: the same seed is refused as loaded, resumed or not.
        foreach (var typed in new[] { seed, [.. seed, "--resume"] })
        {
            var done = await CliRunner.RunAsync(typed);
            Assert.True(done.Exit == 1, done.Output);
            Assert.StartsWith("error: chu already holds the synthetic records of --seed 3 as of 2026-01-15", done.Output, StringComparison.Ordinal);
        }
        var verified = await CliRunner.RunAsync(["audit", "verify", .. store]);
        Assert.True(verified.Exit == 0, verified.Output);
    }

    private static async Task SecondRunIsRefusedAsync(string[] seed, int holder)
    {
        var second = await CliRunner.RunAsync(seed);
        Assert.True(second.Exit == 1, second.Output);
        Assert.StartsWith($"error: chu is being seeded with --seed 3 as of 2026-01-15 now, by process {holder} on host {Environment.MachineName}", second.Output, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed.", second.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_seed_cancelled_midway_says_so_on_its_claim_and_resume_finishes_it(Engine engine)
    {
        var db = await StoreAsync(engine);
        string[] store = ["--db", db, "--master-key-file", Key];
        string[] seed = ["seed", "--tenant", "chu", "--patients", "40", "--seed", "5", "--as-of", "2026-03-01", .. store];
        await using (var opened = await Vauban.VaubanStore.OpenAsync(new Vauban.StoreOptions(db, Vauban.Crypto.MasterKey.Load(Key, null)), CancellationToken.None))
        {
            opened.Records.ImportBatchSize = 50;
            var tenant = (await opened.Tenants.FindAsync("chu", CancellationToken.None))!;
            using var cancel = new CancellationTokenSource();
            var batches = 0;
            opened.Records.BatchWritten = () => { if (++batches == 2) cancel.Cancel(); };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                Vauban.Cli.SeedCommand.SeedAsync(opened, tenant, 40, 5, new DateOnly(2026, 3, 1), showProgress: false, cancel.Token, canaries: 3));
        }
        var chu = await TenantAsync(db, "chu");
        Assert.Equal("interrupted", await TextAsync(db, $"SELECT state FROM seed_runs WHERE tenant_id = {chu}"));
        var again = await CliRunner.RunAsync(seed);
        Assert.True(again.Exit == 1, again.Output);
        Assert.Contains("did not finish. To finish it, give --resume (with --patients 40 --canaries 3)", again.Output, StringComparison.Ordinal);
        Assert.True((await CliRunner.RunAsync([.. seed, "--canaries", "3", "--resume"])).Exit == 0);
        Assert.Equal(0, (await CliRunner.RunAsync(["seed", "--tenant", "chu-temoin", "--patients", "40", "--canaries", "3", "--seed", "5", "--as-of", "2026-03-01", .. store])).Exit);
        Assert.Equal(await HoldingsAsync(db, await TenantAsync(db, "chu-temoin")), await HoldingsAsync(db, chu), HoldingsComparer.Instance);
        Assert.Equal("complete", await TextAsync(db, $"SELECT state FROM seed_runs WHERE tenant_id = {chu}"));
    }

    private static async Task<string> TextAsync(string db, string sql)
    {
        await using var connection = await OpenAsync(db);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private sealed class HoldingsComparer : IEqualityComparer<(List<string> Records, List<string> Canaries)>
    {
        public static readonly HoldingsComparer Instance = new();

        public bool Equals((List<string> Records, List<string> Canaries) x, (List<string> Records, List<string> Canaries) y) =>
            x.Records.SequenceEqual(y.Records) && x.Canaries.SequenceEqual(y.Canaries);

        public int GetHashCode((List<string> Records, List<string> Canaries) obj) => obj.Records.Count;
    }
}
