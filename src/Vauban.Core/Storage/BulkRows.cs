// Bulk inserts for seed and import: prepared statements reused across a batch on SQLite, binary COPY on
// PostgreSQL. Rows arrive sealed; row ids are reserved by the caller inside the same transaction.
using System.Buffers;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;
using SQLitePCL;
using Vauban.Records;
using Vauban.Records.Search;

namespace Vauban.Storage;

internal sealed record BulkRow(long Rid, int Type, string Id, long LastUpdated, byte[] Body, IndexEntries Index, string? Compartment, string? CreatedBy);

internal static class BulkRows
{
    /// <summary>How history shows a loaded version: a load keeps the ids it is given, as a PUT that creates does (201); a client
    /// replaying history as POSTs would give the records new ids.</summary>
    private const VersionMade Loaded = VersionMade.CreatedByUpdate;

    public static Task<HashSet<(int, string)>> ExistingAsync(WriteScope scope, StorageEngine engine, long tenant, List<(int Type, string Id)> keys, CancellationToken cancellationToken) =>
        FindAsync(scope, engine, tenant, keys, "", cancellationToken);

    /// <summary>Those of <paramref name="keys"/> whose current version is not a deletion (a load's records need their patient so).
    /// On PostgreSQL each row found is key-share locked until the load's transaction ends, as a single write's patient is
    /// (ResourceRows.CurrentAsync, againstDelete): a patient's delete waits for the load and then sees its records, or the
    /// load waits for the delete and finds the patient gone.</summary>
    public static Task<HashSet<(int, string)>> LiveAsync(WriteScope scope, StorageEngine engine, long tenant, List<(int Type, string Id)> keys, CancellationToken cancellationToken) =>
        FindAsync(scope, engine, tenant, keys, engine == StorageEngine.Postgres ? " AND deleted = 0 FOR KEY SHARE" : " AND deleted = 0", cancellationToken);

    private static async Task<HashSet<(int, string)>> FindAsync(WriteScope scope, StorageEngine engine, long tenant, List<(int Type, string Id)> keys, string condition,
        CancellationToken cancellationToken)
    {
        var found = new HashSet<(int, string)>();
        if (engine == StorageEngine.Sqlite)
        {
            // One lookup of the unique key a resource, prepared once and bound by position: statements of 500 named
            // parameters each cost ~4 µs a resource of the writer's time, ~1 µs this way.
            var db = ((SqliteConnection)scope.Connection).Handle ?? throw new InvalidOperationException("The loader's SQLite connection is not open.");
            using var lookup = new PreparedStatement(db, "SELECT 1 FROM resources WHERE tenant_id = ?1 AND type = ?2 AND id = ?3" + condition);
            foreach (var (type, id) in keys)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (lookup.Bind(1, tenant).Bind(2, type).Bind(3, id).Step()) found.Add((type, id));
            }
            return found;
        }
        foreach (var group in keys.GroupBy(k => k.Type))
        {
            foreach (var chunk in group.Select(k => k.Id).Chunk(500))
            {
                using var command = scope.Command("");
                command.CommandText = $"SELECT type, id FROM resources WHERE tenant_id = @t AND type = @ty AND {command.InList(engine, "id", "ids", chunk)}{condition}";
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
        // Synchronous on purpose: Microsoft.Data.Sqlite's async methods run synchronously anyway. The scope is on the loader's
        // own connection (StoreDatabase.OpenBulkWriterAsync), in its open transaction. Statements are prepared once a batch and
        // bound by position through SQLitePCL, as the audit appender's insert: through SqliteCommand every row cost a lookup of
        // each parameter by name, a data reader and a boxed value per column, more than SQLite's own work on the row.
        var db = ((SqliteConnection)scope.Connection).Handle ?? throw new InvalidOperationException("The loader's SQLite connection is not open.");
        using (var insert = new PreparedStatement(db, "INSERT INTO resources (rid, tenant_id, type, id, version, last_updated, deleted, body, compartment, created_by, made, hashes) VALUES (?1, ?2, ?3, ?4, 1, ?5, 0, ?6, ?7, ?8, ?9, ?10)"))
        {
            foreach (var row in rows)
            {
                cancellationToken.ThrowIfCancellationRequested();
                insert.Bind(1, row.Rid).Bind(2, tenant).Bind(3, row.Type).Bind(4, row.Id).Bind(5, row.LastUpdated).Bind(6, row.Body)
                    .Bind(7, row.Compartment).Bind(8, row.CreatedBy).Bind(9, (long)Loaded).Bind(10, HashColumn.Pack(row.Index.Hashes)).Step();
            }
        }
        // Index rows in key order: each B-tree page is visited once per batch instead of once per row. Rows are in ascending
        // rid order, so (key, row position) sorts as (key, rid) does. The two arrays (~4.5 MB a batch of 16,000) are rented:
        // allocated each batch they went to the large object heap, whose budget started most of the load's full collections.
        var referenceCount = 0;
        var hashCount = 0;
        foreach (var row in rows)
        {
            referenceCount += row.Index.References.Count;
            hashCount += row.Index.Hashes.Count;
        }
        var references = ArrayPool<(string Target, int Param, int Row)>.Shared.Rent(referenceCount);
        // Hashes and their rows as two arrays sorted together, in half the time of an array of (hash, row) pairs (12 against 25 ms
        // for a batch's ~180,000). The sort is not stable: the rows of one hash (a gender, a status) are in no particular order
        // among themselves, all at the end of that hash's range of idx_hash, on the same few pages.
        var hashes = ArrayPool<long>.Shared.Rent(hashCount);
        var hashRows = ArrayPool<int>.Shared.Rent(hashCount);
        try
        {
            var r = 0;
            var h = 0;
            for (var i = 0; i < rows.Count; i++)
            {
                foreach (var reference in rows[i].Index.References) references[r++] = (reference.Target, reference.Param, i);
                foreach (var hash in rows[i].Index.Hashes)
                {
                    hashes[h] = hash;
                    hashRows[h++] = i;
                }
            }
            Array.Sort(references, 0, referenceCount, ReferenceOrder.Instance);
            Array.Sort(hashes, hashRows, 0, hashCount);
            using (var insert = new PreparedStatement(db, "INSERT OR IGNORE INTO idx_ref (target, param, rid) VALUES (?1, ?2, ?3)"))
            {
                foreach (var (target, param, row) in references.AsSpan(0, referenceCount)) insert.Bind(1, target).Bind(2, param).Bind(3, rows[row].Rid).Step();
            }
            cancellationToken.ThrowIfCancellationRequested();
            using (var insert = new PreparedStatement(db, "INSERT OR IGNORE INTO idx_hash (h, rid) VALUES (?1, ?2)"))
            {
                for (var i = 0; i < hashCount; i++) insert.Bind(1, hashes[i]).Bind(2, rows[hashRows[i]].Rid).Step();
            }
        }
        finally
        {
            ArrayPool<(string Target, int Param, int Row)>.Shared.Return(references, clearArray: true);
            ArrayPool<long>.Shared.Return(hashes);
            ArrayPool<int>.Shared.Return(hashRows);
        }
        using (var insert = new PreparedStatement(db, "INSERT OR IGNORE INTO idx_date (tenant_id, param, lo, hi, rid) VALUES (?1, ?2, ?3, ?4, ?5)"))
        {
            foreach (var row in rows)
            {
                foreach (var date in row.Index.Dates) insert.Bind(1, tenant).Bind(2, date.Param).Bind(3, date.Low).Bind(4, date.High).Bind(5, row.Rid).Step();
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>idx_ref's key order: target, parameter, then row (rid).</summary>
    private sealed class ReferenceOrder : IComparer<(string Target, int Param, int Row)>
    {
        public static readonly ReferenceOrder Instance = new();

        public int Compare((string Target, int Param, int Row) a, (string Target, int Param, int Row) b) =>
            string.CompareOrdinal(a.Target, b.Target) is var byTarget and not 0 ? byTarget
                : a.Param != b.Param ? a.Param.CompareTo(b.Param) : a.Row.CompareTo(b.Row);
    }

    /// <summary>A statement prepared on the loader's connection, bound by position and stepped once per row, in the transaction
    /// the connection has open (no busy wait as SqliteCommand's: that transaction already holds SQLite's write lock).</summary>
    private sealed class PreparedStatement : IDisposable
    {
        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _statement;

        public PreparedStatement(sqlite3 db, string sql)
        {
            _db = db;
            Check(raw.sqlite3_prepare_v2(db, sql, out _statement));
        }

        public PreparedStatement Bind(int index, long value)
        {
            Check(raw.sqlite3_bind_int64(_statement, index, value));
            return this;
        }

        public PreparedStatement Bind(int index, string? value)
        {
            Check(value is null ? raw.sqlite3_bind_null(_statement, index) : raw.sqlite3_bind_text(_statement, index, value));
            return this;
        }

        public PreparedStatement Bind(int index, byte[] value)
        {
            Check(raw.sqlite3_bind_blob(_statement, index, value));
            return this;
        }

        /// <summary>Runs the statement once; true when it gave a row (the statement is reset either way).</summary>
        public bool Step()
        {
            var rc = raw.sqlite3_step(_statement);
            raw.sqlite3_reset(_statement); // also carries a failed step's code and message onto the connection
            if (rc is raw.SQLITE_DONE or raw.SQLITE_ROW) return rc == raw.SQLITE_ROW;
            SqliteException.ThrowExceptionForRC(rc, _db);
            throw new SqliteException($"a bulk statement returned {rc}", rc);
        }

        private void Check(int rc)
        {
            if (rc != raw.SQLITE_OK) SqliteException.ThrowExceptionForRC(rc, _db);
        }

        public void Dispose() => _statement.Dispose();
    }

    private static async Task CopyAsync(WriteScope scope, long tenant, List<BulkRow> rows, CancellationToken cancellationToken)
    {
        var connection = (NpgsqlConnection)scope.Connection;
        await using (var writer = await connection.BeginBinaryImportAsync("COPY resources (rid, tenant_id, type, id, version, last_updated, deleted, body, compartment, created_by, made, hashes) FROM STDIN (FORMAT BINARY)", cancellationToken))
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
                await writer.WriteAsync((short)Loaded, NpgsqlDbType.Smallint, cancellationToken);
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
