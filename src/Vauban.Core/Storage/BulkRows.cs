// Bulk inserts for seed and import: prepared statements reused across a batch on SQLite, binary COPY on
// PostgreSQL. Rows arrive sealed; row ids are reserved by the caller inside the same transaction.
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;
using Vauban.Records.Search;

namespace Vauban.Storage;

internal sealed record BulkRow(long Rid, int Type, string Id, long LastUpdated, byte[] Body, IndexEntries Index, string? Compartment, string? CreatedBy);

internal static class BulkRows
{
    public static async Task<HashSet<(int, string)>> ExistingAsync(WriteScope scope, StorageEngine engine, long tenant, List<(int Type, string Id)> keys, CancellationToken cancellationToken)
    {
        var found = new HashSet<(int, string)>();
        foreach (var group in keys.GroupBy(k => k.Type))
        {
            foreach (var chunk in group.Select(k => k.Id).Chunk(500))
            {
                using var command = scope.Command("");
                command.CommandText = $"SELECT type, id FROM resources WHERE tenant_id = @t AND type = @ty AND {command.InList(engine, "id", "ids", chunk)}";
                command.With("t", tenant).With("ty", group.Key);
                using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken)) found.Add((reader.GetInt32(0), reader.GetString(1)));
            }
        }
        return found;
    }

    public static Task InsertAsync(WriteScope scope, StorageEngine engine, long tenant, List<BulkRow> rows, CancellationToken cancellationToken) =>
        engine == StorageEngine.Postgres ? CopyAsync(scope, tenant, rows, cancellationToken) : SqliteAsync(scope, tenant, rows, cancellationToken);

    private static Task SqliteAsync(WriteScope scope, long tenant, List<BulkRow> rows, CancellationToken cancellationToken)
    {
        // Synchronous on purpose: Microsoft.Data.Sqlite's async methods run synchronously anyway and only
        // add a task per row. The scope is on the loader's own connection (StoreDatabase.OpenBulkWriterAsync).
        var connection = (SqliteConnection)scope.Connection;
        var transaction = (SqliteTransaction)scope.Transaction;
        SqliteCommand Command(string sql, params string[] parameters)
        {
            var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql;
            foreach (var name in parameters) command.Parameters.Add(new SqliteParameter { ParameterName = name });
            command.Prepare();
            return command;
        }
        using (var insert = Command("INSERT INTO resources (rid, tenant_id, type, id, version, last_updated, deleted, body, compartment, created_by) VALUES ($rid, $t, $ty, $id, 1, $u, 0, $b, $c, $cb)",
            "$rid", "$t", "$ty", "$id", "$u", "$b", "$c", "$cb"))
        {
            foreach (var row in rows)
            {
                cancellationToken.ThrowIfCancellationRequested();
                insert.Parameters[0].Value = row.Rid;
                insert.Parameters[1].Value = tenant;
                insert.Parameters[2].Value = row.Type;
                insert.Parameters[3].Value = row.Id;
                insert.Parameters[4].Value = row.LastUpdated;
                insert.Parameters[5].Value = row.Body;
                insert.Parameters[6].Value = (object?)row.Compartment ?? DBNull.Value;
                insert.Parameters[7].Value = (object?)row.CreatedBy ?? DBNull.Value;
                insert.ExecuteNonQuery();
            }
        }
        using (var insert = Command("INSERT OR IGNORE INTO idx_ref (target, param, rid) VALUES ($x, $p, $rid)", "$x", "$p", "$rid"))
        {
            // Index rows in key order: each B-tree page is visited once per batch instead of once per row.
            foreach (var (target, param, rid) in rows.SelectMany(r => r.Index.References.Select(x => (x.Target, x.Param, r.Rid))).OrderBy(x => x.Target, StringComparer.Ordinal))
            {
                insert.Parameters[0].Value = target;
                insert.Parameters[1].Value = param;
                insert.Parameters[2].Value = rid;
                insert.ExecuteNonQuery();
            }
        }
        // Integer-only rows go in as multi-row literals: binding hundreds of named parameters costs more
        // (the driver looks each name up) than SQLite parsing numbers. Only formatted integers are inlined.
        InsertIntegers(connection, transaction, "INSERT OR IGNORE INTO idx_hash (h, rid) VALUES ",
            rows.SelectMany(r => r.Index.Hashes.Select(h => (h, r.Rid))).Order().Select(x => new[] { x.h, x.Rid }));
        InsertIntegers(connection, transaction, "INSERT OR IGNORE INTO idx_date (tenant_id, param, lo, hi, rid) VALUES ",
            rows.SelectMany(r => r.Index.Dates.Select(d => new[] { tenant, d.Param, d.Low, d.High, r.Rid })));
        return Task.CompletedTask;
    }

    private static void InsertIntegers(SqliteConnection connection, SqliteTransaction transaction, string head, IEnumerable<long[]> rows)
    {
        const int RowsPerStatement = 500;
        var sql = new System.Text.StringBuilder(head.Length + RowsPerStatement * 48);
        var count = 0;
        void Flush()
        {
            if (count == 0) return;
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = sql.ToString();
            command.ExecuteNonQuery();
            sql.Clear();
            count = 0;
        }
        foreach (var row in rows)
        {
            sql.Append(count == 0 ? head : ", ").Append('(');
            for (var i = 0; i < row.Length; i++)
            {
                if (i > 0) sql.Append(',');
                sql.Append(row[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            sql.Append(')');
            if (++count == RowsPerStatement) Flush();
        }
        Flush();
    }

    private static async Task CopyAsync(WriteScope scope, long tenant, List<BulkRow> rows, CancellationToken cancellationToken)
    {
        var connection = (NpgsqlConnection)scope.Connection;
        await using (var writer = await connection.BeginBinaryImportAsync("COPY resources (rid, tenant_id, type, id, version, last_updated, deleted, body, compartment, created_by, hashes) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var row in rows)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(row.Rid, NpgsqlDbType.Bigint, cancellationToken);
                await writer.WriteAsync(tenant, NpgsqlDbType.Bigint, cancellationToken);
                await writer.WriteAsync(row.Type, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(row.Id, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(1, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(row.LastUpdated, NpgsqlDbType.Bigint, cancellationToken);
                await writer.WriteAsync(0, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(row.Body, NpgsqlDbType.Bytea, cancellationToken);
                if (row.Compartment is null) await writer.WriteNullAsync(cancellationToken); else await writer.WriteAsync(row.Compartment, NpgsqlDbType.Text, cancellationToken);
                if (row.CreatedBy is null) await writer.WriteNullAsync(cancellationToken); else await writer.WriteAsync(row.CreatedBy, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(row.Index.Hashes.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint, cancellationToken);
            }
            await writer.CompleteAsync(cancellationToken);
        }
        await using (var writer = await connection.BeginBinaryImportAsync("COPY idx_ref (target, param, rid) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var row in rows)
            {
                foreach (var r in row.Index.References)
                {
                    await writer.StartRowAsync(cancellationToken);
                    await writer.WriteAsync(r.Target, NpgsqlDbType.Text, cancellationToken);
                    await writer.WriteAsync(r.Param, NpgsqlDbType.Integer, cancellationToken);
                    await writer.WriteAsync(row.Rid, NpgsqlDbType.Bigint, cancellationToken);
                }
            }
            await writer.CompleteAsync(cancellationToken);
        }
        await using (var writer = await connection.BeginBinaryImportAsync("COPY idx_date (tenant_id, param, lo, hi, rid) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var row in rows)
            {
                foreach (var d in row.Index.Dates)
                {
                    await writer.StartRowAsync(cancellationToken);
                    await writer.WriteAsync(tenant, NpgsqlDbType.Bigint, cancellationToken);
                    await writer.WriteAsync(d.Param, NpgsqlDbType.Integer, cancellationToken);
                    await writer.WriteAsync(d.Low, NpgsqlDbType.Bigint, cancellationToken);
                    await writer.WriteAsync(d.High, NpgsqlDbType.Bigint, cancellationToken);
                    await writer.WriteAsync(row.Rid, NpgsqlDbType.Bigint, cancellationToken);
                }
            }
            await writer.CompleteAsync(cancellationToken);
        }
    }
}
