// PostgreSQL-only behaviour of the store. Connections go back to their pool without a reset, so no connection that serves records may carry a
// session setting. The one setting Vauban needs per session — synchronous_commit=off for the audit appender's lazy
// group commits — lives in a pool of its own, as a startup option: a write acknowledged to a client is never an
// asynchronous commit because an appender once held the same connection. And a concurrent index rebuild interrupted
// (Ctrl-C during a large import) leaves an invalid copy that every write keeps up to date: the next start drops it.
using System.Data.Common;
using System.Diagnostics;
using Npgsql;
using Vauban.Crypto;
using Vauban.Storage;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public sealed class PostgresSessionTests
{
    [Fact]
    public async Task Only_the_audit_appenders_connections_commit_asynchronously_and_nothing_leaks_into_the_shared_pool()
    {
        var db = await PostgresServer.CreateDatabaseAsync();
        await using var database = StoreDatabase.Open(db);
        var ct = CancellationToken.None;

        await using (var lazy = await database.OpenLazyWriterAsync(ct))
        {
            Assert.Equal(("off", "client"), await SynchronousCommitAsync(lazy));
        }

        // The pool hands back the connections just returned; none may have picked the setting up. (The test cluster runs
        // with synchronous_commit=off server-wide for speed, so the setting's source is what tells them apart.)
        for (var round = 0; round < 3; round++)
        {
            var held = new List<DbConnection>();
            try
            {
                for (var i = 0; i < 4; i++) held.Add(await database.OpenAsync(ct));
                foreach (var connection in held)
                {
                    var (_, source) = await SynchronousCommitAsync(connection);
                    Assert.NotEqual("client", source);
                    Assert.NotEqual("session", source);
                }
            }
            finally
            {
                foreach (var connection in held) await connection.DisposeAsync();
            }
            await using var lazy = await database.OpenLazyWriterAsync(ct);
            Assert.Equal(("off", "client"), await SynchronousCommitAsync(lazy));
        }
    }

    [Fact]
    public async Task An_index_copy_left_by_an_interrupted_rebuild_is_dropped_at_the_next_start_and_the_index_in_use_is_kept()
    {
        var (db, master) = await StoreWithEstablishmentsAsync("chu-rebuild", "clinique-rebuild");
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            // What REINDEX CONCURRENTLY leaves when stopped half-way: an invalid index beside the one in use. A unique build
            // over duplicate keys fails the same way, leaving its copy invalid.
            await using (var fail = new NpgsqlCommand("CREATE UNIQUE INDEX CONCURRENTLY resources_key_ccnew ON tenants ((1))", connection))
            {
                await Assert.ThrowsAsync<PostgresException>(() => fail.ExecuteNonQueryAsync());
            }
            Assert.Equal(["resources_key", "resources_key_ccnew"], await IndexesAsync(connection, "resources_key%"));
        }

        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            Assert.NotNull(await store.Tenants.FindAsync("chu-rebuild", CancellationToken.None));
        }
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            Assert.Equal(["resources_key"], await IndexesAsync(connection, "resources_key%"));
        }
    }

    [Fact]
    public async Task An_index_copy_another_process_is_still_building_is_left_to_it_and_does_not_hold_up_the_start()
    {
        var (db, master) = await StoreWithEstablishmentsAsync("chu-building");
        var opening = await OpenBesideARunningBuildAsync(db, new StoreOptions(db, master), "chu-building");
        Assert.True(opening < TimeSpan.FromSeconds(10), $"the store took {opening} to open beside a running build");
    }

    [Fact]
    public async Task A_build_by_another_role_whose_table_postgres_hides_is_left_to_it_too()
    {
        // Vauban runs as a role of its own, without pg_read_all_stats; an administrator rebuilds as another role. PostgreSQL
        // then shows Vauban that build without its table (relid NULL): any such build in the database holds the cleanup.
        var role = "vauban_app_" + Guid.NewGuid().ToString("N")[..8];
        var name = "vauban_test_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new NpgsqlConnection(PostgresServer.AdminConnectionString))
        {
            await admin.OpenAsync();
            foreach (var statement in new[] { $"CREATE ROLE {role} LOGIN", $"CREATE DATABASE {name} OWNER {role}" })
            {
                await using var create = new NpgsqlCommand(statement, admin);
                await create.ExecuteNonQueryAsync();
            }
        }
        var asAdministrator = new NpgsqlConnectionStringBuilder(PostgresServer.AdminConnectionString) { Database = name }.ConnectionString;
        var asVauban = new NpgsqlConnectionStringBuilder(asAdministrator) { Username = role }.ConnectionString;
        var options = new StoreOptions(asVauban, MasterKey.Generate());
        await using (var store = await VaubanStore.OpenAsync(options, CancellationToken.None))
        {
            await store.Tenants.AddAsync("chu-hidden", CancellationToken.None);
        }

        var opening = await OpenBesideARunningBuildAsync(asAdministrator, options, "chu-hidden", async () =>
        {
            // The premise: Vauban's role sees the build, not its table.
            await using var seenByVauban = new NpgsqlConnection(asVauban);
            await seenByVauban.OpenAsync();
            await using var hidden = new NpgsqlCommand("SELECT count(*) FROM pg_stat_progress_create_index WHERE relid IS NULL AND datname = current_database()", seenByVauban);
            Assert.Equal(1L, await hidden.ExecuteScalarAsync());
        });
        Assert.True(opening < TimeSpan.FromSeconds(10), $"the store took {opening} to open beside another role's build");
    }

    /// <summary>Holds a concurrent build of resources_key_ccnew, as <paramref name="administrator"/>, in its first wait (a
    /// transaction that has written to the table holds it there: the copy exists, invalid, and the build shows in
    /// pg_stat_progress_create_index, as during another process's REINDEX CONCURRENTLY); checks <paramref name="premise"/>;
    /// opens the store and finds <paramref name="establishment"/>; then lets the build finish and requires its index valid.
    /// Returns how long the store took to open (dropping the copy would wait for the build's lock until the 15 s bound).</summary>
    private static async Task<TimeSpan> OpenBesideARunningBuildAsync(string administrator, StoreOptions options, string establishment, Func<Task>? premise = null)
    {
        await using var writer = new NpgsqlConnection(administrator);
        await writer.OpenAsync();
        await using var builder = new NpgsqlConnection(administrator);
        await builder.OpenAsync();
        await using var look = new NpgsqlConnection(administrator);
        await look.OpenAsync();

        await using var open = await writer.BeginTransactionAsync();
        await using (var touch = new NpgsqlCommand("UPDATE tenants SET name = name WHERE false", writer, open)) await touch.ExecuteNonQueryAsync();
        await using var build = new NpgsqlCommand("CREATE INDEX CONCURRENTLY resources_key_ccnew ON tenants (name)", builder) { CommandTimeout = 120 };
        var building = build.ExecuteNonQueryAsync();
        TimeSpan opening;
        try
        {
            var until = DateTime.UtcNow.AddSeconds(30);
            while (!await BuildShowsAsync(look) && DateTime.UtcNow < until) await Task.Delay(50);
            Assert.True(await BuildShowsAsync(look), "the concurrent build is running");
            Assert.Equal(["resources_key", "resources_key_ccnew"], await IndexesAsync(look, "resources_key%"));
            if (premise is not null) await premise();

            var clock = Stopwatch.StartNew();
            await using (var store = await VaubanStore.OpenAsync(options, CancellationToken.None))
            {
                Assert.NotNull(await store.Tenants.FindAsync(establishment, CancellationToken.None));
            }
            opening = clock.Elapsed;
        }
        finally
        {
            // Whatever happened, the build is let go and finishes before its connection is closed.
            await open.CommitAsync();
            await building;
        }
        Assert.Equal(["resources_key", "resources_key_ccnew"], await IndexesAsync(look, "resources_key%"));
        await using var valid = new NpgsqlCommand("SELECT indisvalid FROM pg_index WHERE indexrelid = 'resources_key_ccnew'::regclass", look);
        Assert.Equal(true, await valid.ExecuteScalarAsync());
        return opening;
    }

    /// <summary>A new database holding a store with these establishments, closed again: its connection string and master key.</summary>
    private static async Task<(string Db, MasterKey Master)> StoreWithEstablishmentsAsync(params string[] names)
    {
        var db = await PostgresServer.CreateDatabaseAsync();
        var master = MasterKey.Generate();
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None);
        foreach (var name in names) await store.Tenants.AddAsync(name, CancellationToken.None);
        return (db, master);
    }

    /// <summary>Whether the build waits for the writer (its index is in the catalog by then; at "initializing" it may not be yet).</summary>
    private static async Task<bool> BuildShowsAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 'tenants'::regclass AND phase = 'waiting for writers before build'", connection);
        return (long)(await command.ExecuteScalarAsync())! > 0;
    }

    private static async Task<List<string>> IndexesAsync(NpgsqlConnection connection, string pattern)
    {
        await using var command = new NpgsqlCommand("SELECT relname FROM pg_class WHERE relkind = 'i' AND relname LIKE @p ORDER BY relname", connection);
        command.Parameters.AddWithValue("p", pattern);
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) names.Add(reader.GetString(0));
        return names;
    }

    private static async Task<(string Setting, string Source)> SynchronousCommitAsync(System.Data.Common.DbConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'", (NpgsqlConnection)connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetString(0), reader.GetString(1));
    }
}
