// A record's blind-index hashes as the store holds them, read directly for tests that plant or check them: the resource row's
// own list (PostgreSQL's bigint[] column, SQLite's BLOB since schema step 18) and, on SQLite, the idx_hash rows searched, which
// must be the same.
using System.Data.Common;
using Vauban.Storage;

namespace Vauban.Tests.Infrastructure;

internal static class StoredHashes
{
    public static async Task<HashSet<long>> ReadAsync(DbConnection connection, Engine engine, long rid)
    {
        ArgumentNullException.ThrowIfNull(connection);
        HashSet<long> listed;
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = $"SELECT hashes FROM resources WHERE rid = {rid}";
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            listed = HashColumn.Read(reader, 0);
        }
        if (engine == Engine.Sqlite)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = $"SELECT h FROM idx_hash WHERE rid = {rid}";
            var searched = new HashSet<long>();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) searched.Add(reader.GetInt64(0));
            Assert.True(listed.SetEquals(searched), "the row's hash list and its idx_hash rows differ");
        }
        return listed;
    }
}
