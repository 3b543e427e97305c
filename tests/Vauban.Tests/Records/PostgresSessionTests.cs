// PostgreSQL connections go back to their pool without a reset, so no connection that serves records may carry a
// session setting. The one setting Vauban needs per session — synchronous_commit=off for the audit appender's lazy
// group commits — lives in a pool of its own, as a startup option: a write acknowledged to a client is never an
// asynchronous commit because an appender once held the same connection.
using Npgsql;
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
            var held = new List<System.Data.Common.DbConnection>();
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

    private static async Task<(string Setting, string Source)> SynchronousCommitAsync(System.Data.Common.DbConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'", (NpgsqlConnection)connection);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetString(0), reader.GetString(1));
    }
}
