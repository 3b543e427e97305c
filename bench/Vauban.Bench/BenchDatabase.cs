// The store under test: a SQLite file, or a database on a PostgreSQL cluster started for the benchmark
// with its default durability (fsync on), on a private port and socket directory.
using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Vauban.Bench;

internal sealed record CeilingResult(double PerSecond, int Threads);

internal sealed class BenchDatabase : IAsyncDisposable
{
    private readonly string _engine;
    private readonly string _work;
    private readonly string? _pgDirectory;

    private BenchDatabase(string engine, string work, string db, string? pgDirectory)
    {
        _engine = engine;
        _work = work;
        Db = db;
        _pgDirectory = pgDirectory;
    }

    public string Db { get; }

    /// <summary>Reads the store's files once, so that a measurement on a reused store starts from the page cache as
    /// a serving machine would have it, not from whatever other files were read since (at a million patients the
    /// SQLite file is 15 GB: half of it evicted made searches four times slower). On PostgreSQL only the relations
    /// (`base/`): reading its WAL too (8 GB after a million-patient seed) pushed them out again. Returns the bytes read.</summary>
    public long Warm()
    {
        var folder = _pgDirectory is not null ? Path.Combine(_pgDirectory, "data", "base") : Path.GetDirectoryName(Db)!;
        var buffer = new byte[1 << 20];
        long total = 0;
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            try
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
                int read;
                while ((read = stream.Read(buffer)) > 0) total += read;
            }
            catch (IOException)
            {
                // A file PostgreSQL removed meanwhile.
            }
            catch (UnauthorizedAccessException)
            {
                // postmaster.pid and the like.
            }
        }
        return total;
    }

    /// <summary>PostgreSQL with --pg-prewarm: loads the records' relations into shared_buffers (pg_prewarm), as a server up
    /// for a while would hold them; without it a 15 s phase measures buffers filling. Returns the blocks loaded, or null.</summary>
    public async Task<long?> PrewarmAsync(BenchOptions options)
    {
        if (_pgDirectory is null || !options.PgPrewarm) return null;
        await using var connection = new NpgsqlConnection(Db);
        await connection.OpenAsync();
        await using (var extension = new NpgsqlCommand("CREATE EXTENSION IF NOT EXISTS pg_prewarm", connection)) await extension.ExecuteNonQueryAsync();
        // The relations the read and the search use — the records, their two keys, and the blind-index GIN index that
        // every Patient search goes through (8.9 GB at a million patients) — one after the other, the table first: if the
        // buffers cannot hold them all, the later ones evict the table's pages, not the indexes'. Until 2026-12-01 the GIN
        // index was left out: a search after drop_caches read ~12 of its pages from disk, and those searches made the
        // p99 (bench/README.md, eleventh pass).
        long blocks = 0;
        foreach (var relation in (string[])["resources", "resources_pkey", "resources_key", "resources_hashes"])
        {
            await using var warm = new NpgsqlCommand("SELECT pg_prewarm(@r::regclass)", connection) { CommandTimeout = 3600 };
            warm.Parameters.AddWithValue("r", relation);
            blocks += Convert.ToInt64(await warm.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }
        return blocks;
    }

    public static async Task<BenchDatabase> CreateAsync(string engine, BenchOptions options)
    {
        if (engine == "sqlite") return new BenchDatabase(engine, options.WorkDirectory, Path.Combine(options.WorkDirectory, "sqlite", "vauban.db"), null);
        var directory = Path.Combine(options.WorkDirectory, "pg");
        var root = BenchRunner.FindRoot();
        var port = 45000 + Random.Shared.Next(1000);
        if (!options.Reuse && Directory.Exists(directory))
        {
            BenchRunner.Run("bash", $"tests/postgres.sh stop {directory}", root);
            Directory.Delete(directory, true);
        }
        string admin;
        if (Directory.Exists(Path.Combine(directory, "data")))
        {
            var bin = Directory.GetDirectories("/usr/lib/postgresql").Order().Last() + "/bin";
            BenchRunner.Run("runuser", $"-u postgres -- {bin}/pg_ctl -D {directory}/data -l {directory}/server.log -w -o \"-p {port} -k {directory} -c listen_addresses='' -c shared_buffers={options.PgSharedBuffers} -c huge_pages=try -c max_wal_size=8GB -c checkpoint_timeout=30min -c max_connections=300\" start", root);
            admin = $"Host={directory};Port={port};Username=vauban;Database=postgres";
        }
        else
        {
            admin = BenchRunner.Run("bash", $"tests/postgres.sh start {directory} {port} durable", root).Trim();
        }
        var db = new NpgsqlConnectionStringBuilder(admin) { Database = "vauban_bench" }.ConnectionString;
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = 'vauban_bench'", connection);
            if (await exists.ExecuteScalarAsync() is null)
            {
                await using var create = new NpgsqlCommand("CREATE DATABASE vauban_bench", connection);
                await create.ExecuteNonQueryAsync();
            }
        }
        return new BenchDatabase(engine, options.WorkDirectory, db, directory);
    }

    public async Task ResetAsync()
    {
        if (_engine == "sqlite")
        {
            var directory = Path.GetDirectoryName(Db)!;
            if (Directory.Exists(directory)) Directory.Delete(directory, true);
            Directory.CreateDirectory(directory);
            return;
        }
        var admin = new NpgsqlConnectionStringBuilder(Db) { Database = "postgres" }.ConnectionString;
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        foreach (var sql in new[] { "DROP DATABASE IF EXISTS vauban_bench WITH (FORCE)", "CREATE DATABASE vauban_bench" })
        {
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    public async Task<long> SizeAsync()
    {
        if (_engine == "sqlite")
        {
            await using (var connection = new SqliteConnection($"Data Source={Db}"))
            {
                await connection.OpenAsync();
                await using var checkpoint = connection.CreateCommand();
                checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
                await checkpoint.ExecuteNonQueryAsync();
            }
            SqliteConnection.ClearAllPools();
            return new[] { Db, Db + "-wal" }.Where(File.Exists).Sum(f => new FileInfo(f).Length);
        }
        await using var pg = new NpgsqlConnection(Db);
        await pg.OpenAsync();
        await using (var checkpoint = new NpgsqlCommand("CHECKPOINT", pg)) await checkpoint.ExecuteNonQueryAsync();
        await using var size = new NpgsqlCommand("SELECT pg_database_size(current_database())", pg);
        return (long)(await size.ExecuteScalarAsync())!;
    }

    /// <summary>The ceiling: the same read as a bare primary-key SELECT of the encrypted body, no decryption, no HTTP.</summary>
    public async Task<CeilingResult> BarePrimaryKeyReadsAsync(BenchOptions options, Func<string> nextId)
    {
        Console.WriteLine("  bare primary-key SELECT…");
        var threads = Environment.ProcessorCount;
        long count = 0;
        var duration = TimeSpan.FromSeconds(options.Seconds);
        var ids = Enumerable.Range(0, 20_000).Select(_ => nextId()).ToArray();
        var watch = Stopwatch.StartNew();
        var deadline = DateTime.UtcNow + duration;
        await Task.WhenAll(Enumerable.Range(0, _engine == "sqlite" ? threads : options.Concurrency).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            if (_engine == "sqlite")
            {
                using var connection = new SqliteConnection($"Data Source={Db};Mode=ReadOnly");
                connection.Open();
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT body, version FROM resources WHERE tenant_id = (SELECT id FROM tenants WHERE name = 'bench') AND type = 1 AND id = $id";
                var parameter = command.Parameters.Add("$id", SqliteType.Text);
                command.Prepare();
                while (DateTime.UtcNow < deadline)
                {
                    parameter.Value = ids[random.Next(ids.Length)];
                    using var reader = command.ExecuteReader();
                    reader.Read();
                    _ = (byte[])reader[0];
                    Interlocked.Increment(ref count);
                }
            }
            else
            {
                await using var connection = new NpgsqlConnection(Db);
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand("SELECT body, version FROM resources WHERE tenant_id = (SELECT id FROM tenants WHERE name = 'bench') AND type = 1 AND id = @id", connection);
                var parameter = command.Parameters.Add("id", NpgsqlTypes.NpgsqlDbType.Text);
                await command.PrepareAsync();
                while (DateTime.UtcNow < deadline)
                {
                    parameter.Value = ids[random.Next(ids.Length)];
                    await using var reader = await command.ExecuteReaderAsync();
                    await reader.ReadAsync();
                    _ = (byte[])reader[0];
                    Interlocked.Increment(ref count);
                }
            }
        })));
        return new CeilingResult(count / watch.Elapsed.TotalSeconds, _engine == "sqlite" ? threads : options.Concurrency);
    }

    public ValueTask DisposeAsync()
    {
        if (_pgDirectory is not null)
        {
            // postgres.sh stops in immediate mode: checkpoint first, or the next --reuse start replays gigabytes of WAL.
            try
            {
                using var connection = new NpgsqlConnection(Db);
                connection.Open();
                using var checkpoint = new NpgsqlCommand("CHECKPOINT", connection) { CommandTimeout = 600 };
                checkpoint.ExecuteNonQuery();
            }
            catch (NpgsqlException) { }
            try { BenchRunner.Run("bash", $"tests/postgres.sh stop {_pgDirectory}", BenchRunner.FindRoot()); } catch (InvalidOperationException) { }
        }
        _ = _work;
        return ValueTask.CompletedTask;
    }
}
