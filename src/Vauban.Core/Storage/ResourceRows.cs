// Reading and writing resource rows and their index rows. Bodies arrive here already sealed and
// leave still sealed: this class never sees plaintext.
using System.Data.Common;
using Vauban.Records;
using Vauban.Records.Search;

namespace Vauban.Storage;

/// <summary>A stored version, still sealed. Compartment (the patient it concerns) and creator are the current row's: the policy reads them without decrypting.</summary>
internal sealed record StoredVersion(long Rid, long TenantId, int Type, string Id, int Version, long LastUpdated, bool Deleted, byte[]? Body,
    string? Compartment = null, string? CreatedBy = null)
{
    /// <summary>How this version was written; read by the history queries only (<see cref="VersionMade.Unknown"/> elsewhere).</summary>
    public VersionMade Made { get; init; }
}

internal sealed class ResourceRows
{
    private const string Columns = "r.rid, r.tenant_id, r.type, r.id, r.version, r.last_updated, r.deleted, r.body, r.compartment, r.created_by";

    private readonly StoreDatabase _database;

    public ResourceRows(StoreDatabase database) => _database = database;

    public StorageEngine Engine => _database.Engine;

    public static StoredVersion ReadRow(DbDataReader reader) => new(
        reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2), reader.GetString(3), reader.GetInt32(4), reader.GetInt64(5),
        reader.GetInt32(6) != 0, reader.IsDBNull(7) ? null : (byte[])reader.GetValue(7),
        reader.IsDBNull(8) ? null : reader.GetString(8), reader.IsDBNull(9) ? null : reader.GetString(9));

    /// <summary>The made column at <paramref name="ordinal"/>: NULL for a version written before it was stored.</summary>
    private static VersionMade ReadMade(DbDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? VersionMade.Unknown : (VersionMade)Convert.ToInt32(reader.GetValue(ordinal), System.Globalization.CultureInfo.InvariantCulture);

    /// <param name="forUpdate">On PostgreSQL, locks the row against every other change until the transaction ends.</param>
    /// <param name="againstDelete">On PostgreSQL, a key-share lock: held while a record filed under this patient commits, it
    /// makes the patient's delete (FOR UPDATE) wait for it and then see the record; taken after that delete, it waits for it
    /// and reads the row deleted. SQLite serialises writers: no lock is needed.</param>
    public async Task<StoredVersion?> CurrentAsync(DbConnection connection, DbTransaction? transaction, long tenant, int type, string id, bool forUpdate, CancellationToken cancellationToken,
        bool againstDelete = false)
    {
        var sql = $"SELECT {Columns} FROM resources r WHERE r.tenant_id = @t AND r.type = @ty AND r.id = @id";
        if (_database.Engine == StorageEngine.Postgres) sql += forUpdate ? " FOR UPDATE" : againstDelete ? " FOR KEY SHARE" : "";
        using var command = connection.Command(sql).With("t", tenant).With("ty", type).With("id", id);
        command.Transaction = transaction;
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadRow(reader) : null;
    }

    /// <summary>The current version of one resource: the hottest query of all, on a prepared statement.</summary>
    /// <summary>Those of <paramref name="ids"/> whose current <paramref name="type"/> row in the tenant is not a deletion; bodies
    /// are not read.</summary>
    public async Task<HashSet<string>> LiveIdsAsync(long tenant, int type, IReadOnlyCollection<string> ids, CancellationToken cancellationToken)
    {
        var live = new HashSet<string>(StringComparer.Ordinal);
        await using var connection = await _database.OpenAsync(cancellationToken);
        foreach (var chunk in ids.Distinct(StringComparer.Ordinal).Chunk(500))
        {
            using var command = connection.Command("");
            command.CommandText = $"SELECT id FROM resources WHERE tenant_id = @t AND type = @ty AND {command.InList(_database.Engine, "id", "ids", chunk)} AND deleted = 0";
            command.With("t", tenant).With("ty", type);
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) live.Add(reader.GetString(0));
        }
        return live;
    }

    public Task<StoredVersion?> CurrentAsync(long tenant, int type, string id, CancellationToken cancellationToken) =>
        _database.ReadOneAsync($"SELECT {Columns} FROM resources r WHERE r.tenant_id = @t AND r.type = @ty AND r.id = @id", ReadRow, cancellationToken,
            ("t", tenant), ("ty", type), ("id", id));

    public async Task<StoredVersion?> VersionAsync(DbConnection connection, long tenant, int type, string id, int version, CancellationToken cancellationToken,
        DbTransaction? transaction = null)
    {
        var current = await CurrentAsync(connection, transaction, tenant, type, id, false, cancellationToken);
        if (current is null || current.Version == version) return current;
        using var command = connection.Command("SELECT rid, version, last_updated, deleted, body FROM resource_history WHERE rid = @rid AND version = @v")
            .With("rid", current.Rid).With("v", version);
        command.Transaction = transaction;
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        return current with
        {
            Version = reader.GetInt32(1), LastUpdated = reader.GetInt64(2), Deleted = reader.GetInt32(3) != 0,
            Body = reader.IsDBNull(4) ? null : (byte[])reader.GetValue(4),
        };
    }

    /// <summary>Versions of one resource, newest first, up to <paramref name="limit"/>, strictly older than version <paramref name="before"/> when given.</summary>
    public async Task<List<StoredVersion>> InstanceHistoryAsync(DbConnection connection, StoredVersion current, long? since, int? before, int limit, CancellationToken cancellationToken)
    {
        var versions = new List<StoredVersion>();
        if (before is null && (since is null || current.LastUpdated >= since))
        {
            // The current row as read by the caller, with how it was made (NULL, so derived, if it has changed since).
            using var made = connection.Command("SELECT made FROM resources WHERE rid = @rid AND version = @v").With("rid", current.Rid).With("v", current.Version);
            using var madeReader = await made.ExecuteReaderAsync(cancellationToken);
            versions.Add(current with { Made = await madeReader.ReadAsync(cancellationToken) ? ReadMade(madeReader, 0) : VersionMade.Unknown });
        }
        if (versions.Count >= limit) return versions;
        using var command = connection.Command(
            "SELECT version, last_updated, deleted, body, made FROM resource_history WHERE rid = @rid AND last_updated >= @since AND version < @before ORDER BY version DESC"
            + Sql.Limit(limit - versions.Count))
            .With("rid", current.Rid).With("since", since ?? long.MinValue).With("before", before ?? int.MaxValue);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            versions.Add(current with
            {
                Version = reader.GetInt32(0), LastUpdated = reader.GetInt64(1), Deleted = reader.GetInt32(2) != 0,
                Body = reader.IsDBNull(3) ? null : (byte[])reader.GetValue(3), Made = ReadMade(reader, 4),
            });
        }
        return versions;
    }

    /// <summary>How many versions of one resource changed at or after <paramref name="since"/> (all of them when null).</summary>
    public static async Task<int> InstanceVersionCountAsync(DbConnection connection, StoredVersion current, long? since, CancellationToken cancellationToken)
    {
        using var command = connection.Command("SELECT COUNT(*) FROM resource_history WHERE rid = @rid AND last_updated >= @since")
            .With("rid", current.Rid).With("since", since ?? long.MinValue);
        var older = (int)await command.ScalarLongAsync(cancellationToken);
        return older + (since is null || current.LastUpdated >= since ? 1 : 0);
    }

    /// <summary>How many versions of the type's resources that <paramref name="filter"/> lets through changed at or after <paramref name="since"/>.</summary>
    public async Task<int> TypeVersionCountAsync(DbConnection connection, long tenant, int type, long? since, Func<DbCommand, StorageEngine, string?> filter,
        CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        // The policy's filter is on the current row "r", as in TypeHistoryAsync.
        var allowed = filter(command, _database.Engine) is { } f ? " AND " + f : "";
        command.CommandText = $"""
            SELECT (SELECT count(*) FROM resources r WHERE r.tenant_id = @t AND r.type = @ty AND r.last_updated >= @since{allowed})
                 + (SELECT count(*) FROM resource_history h JOIN resources r ON r.rid = h.rid WHERE r.tenant_id = @t AND r.type = @ty AND h.last_updated >= @since{allowed})
            """;
        command.With("t", tenant).With("ty", type).With("since", since ?? long.MinValue);
        return (int)await command.ScalarLongAsync(cancellationToken);
    }

    /// <summary>Versions of all resources of a type, newest first, strictly before the (lastUpdated, rid, version) cursor.</summary>
    public async Task<List<StoredVersion>> TypeHistoryAsync(DbConnection connection, long tenant, int type, long? since, (long Updated, long Rid, int Version)? before, int limit,
        Func<DbCommand, StorageEngine, string?> filter, CancellationToken cancellationToken)
    {
        var cursor = before ?? (long.MaxValue, long.MaxValue, int.MaxValue);
        using var command = connection.CreateCommand();
        // The policy's filter is on the current row "r" (its compartment and creator), in both halves.
        var allowed = filter(command, _database.Engine) is { } f ? " AND " + f : "";
        command.CommandText = $"""
            SELECT * FROM (
              SELECT {Columns}, r.made FROM resources r WHERE r.tenant_id = @t AND r.type = @ty AND r.last_updated >= @since{allowed}
              UNION ALL
              SELECT r.rid, r.tenant_id, r.type, r.id, h.version, h.last_updated, h.deleted, h.body, r.compartment, r.created_by, h.made
              FROM resource_history h JOIN resources r ON r.rid = h.rid
              WHERE r.tenant_id = @t AND r.type = @ty AND h.last_updated >= @since{allowed}
            ) v
            WHERE (v.last_updated < @cu) OR (v.last_updated = @cu AND (v.rid < @cr OR (v.rid = @cr AND v.version < @cv)))
            ORDER BY v.last_updated DESC, v.rid DESC, v.version DESC
            """ + Sql.Limit(limit);
        command.With("t", tenant).With("ty", type).With("since", since ?? long.MinValue)
            .With("cu", cursor.Updated).With("cr", cursor.Rid).With("cv", cursor.Version);
        var versions = new List<StoredVersion>();
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) versions.Add(ReadRow(reader) with { Made = ReadMade(reader, 10) });
        return versions;
    }

    public static async Task<long> InsertAsync(WriteScope scope, StorageEngine engine, long tenant, int type, string id, int version, long lastUpdated, byte[] body, IndexEntries index,
        string? compartment, string? createdBy, VersionMade made, CancellationToken cancellationToken)
    {
        using var command = scope.Command(
            "INSERT INTO resources (tenant_id, type, id, version, last_updated, deleted, body, compartment, created_by, made, hashes) VALUES (@t, @ty, @id, @v, @u, 0, @b, @c, @cb, @m, @hs) RETURNING rid")
            .With("t", tenant).With("ty", type).With("id", id).With("v", version).With("u", lastUpdated).With("b", body).With("c", compartment).With("cb", createdBy)
            .With("m", (short)made).With("hs", HashColumn.Value(engine, index.Hashes));
        var rid = await command.ScalarLongAsync(cancellationToken);
        await InsertIndexAsync(scope, engine, tenant, rid, index, cancellationToken);
        return rid;
    }

    /// <summary>Moves the current version to history and writes the new one, if the current version is still <paramref name="expectedVersion"/>.
    /// <paramref name="createdBy"/>: who put the record into its patient's record (the creator, or whoever moved it since).</summary>
    public static async Task<bool> ReplaceAsync(WriteScope scope, StorageEngine engine, long tenant, long rid, int expectedVersion, int version, long lastUpdated, byte[]? body,
        string? compartment, string? createdBy, IndexEntries? oldIndex, IndexEntries? newIndex, VersionMade made, CancellationToken cancellationToken)
    {
        using (var archive = scope.Command(
            "INSERT INTO resource_history (rid, version, last_updated, deleted, body, made) SELECT rid, version, last_updated, deleted, body, made FROM resources WHERE rid = @rid AND version = @ev")
            .With("rid", rid).With("ev", expectedVersion))
        {
            if (await archive.ExecuteNonQueryAsync(cancellationToken) != 1) return false;
        }
        // SQLite: the version's hashes as its row lists them, every one, not only those today's extraction makes of it: one an older
        // extraction made went on answering searches for a value the record no longer held, and stayed on a deleted record for good
        // (re-indexing reads current versions only). A deleted version's too, when the record is brought back: its list may hold
        // what a delete before step 16 left (helper-113 M1), and once overwritten nothing would name them. PostgreSQL's column is
        // replaced whole by the update.
        HashSet<long>? storedHashes = null;
        if (engine == StorageEngine.Sqlite)
        {
            using var stored = scope.Command("SELECT hashes FROM resources WHERE rid = @rid").With("rid", rid);
            using var reader = await stored.ExecuteReaderAsync(cancellationToken);
            storedHashes = await reader.ReadAsync(cancellationToken) ? HashColumn.Read(reader, 0) : [];
        }
        using (var update = scope.Command(
            "UPDATE resources SET version = @v, last_updated = @u, deleted = @d, body = @b, compartment = @c, created_by = @cb, made = @m, hashes = @hs WHERE rid = @rid AND version = @ev")
            .With("c", compartment).With("cb", createdBy).With("m", (short)made).With("v", version).With("u", lastUpdated).With("d", body is null ? 1 : 0).With("b", body).With("rid", rid).With("ev", expectedVersion)
            .With("hs", HashColumn.Value(engine, newIndex?.Hashes ?? [])))
        {
            if (await update.ExecuteNonQueryAsync(cancellationToken) != 1) return false;
        }
        List<long>? added = null;
        if (storedHashes is not null)
        {
            // Those the new version makes and the row listed stay, and are not inserted again (a Patient's ~60 B-tree probes an
            // update): every hash a row lists has its idx_hash row (a delete empties the list; re-indexing puts back a lost row).
            if (newIndex is not null)
            {
                added = newIndex.Hashes.Where(h => !storedHashes.Contains(h)).ToList();
                storedHashes.ExceptWith(newIndex.Hashes);
            }
            await DeleteHashesAsync(scope, engine, rid, storedHashes, cancellationToken);
        }
        await DeleteIndexAsync(scope, rid, oldIndex, cancellationToken);
        if (newIndex is not null) await InsertIndexAsync(scope, engine, tenant, rid, newIndex, cancellationToken, added);
        return true;
    }

    /// <param name="hashes">SQLite: the hashes to insert, when not all of <paramref name="index"/>'s (an update's new ones).</param>
    public static async Task InsertIndexAsync(WriteScope scope, StorageEngine engine, long tenant, long rid, IndexEntries index, CancellationToken cancellationToken,
        List<long>? hashes = null)
    {
        if (engine == StorageEngine.Postgres)
        {
            // Hashes travel in the resource row itself (see Migrations).
            if (index.References.Count > 0)
            {
                using var refs = scope.Command("INSERT INTO idx_ref (target, param, rid) SELECT unnest(@ts), unnest(@ps), @rid ON CONFLICT DO NOTHING")
                    .With("ts", index.References.Select(r => r.Target).ToArray()).With("ps", index.References.Select(r => r.Param).ToArray()).With("rid", rid);
                await refs.ExecuteNonQueryAsync(cancellationToken);
            }
            if (index.Dates.Count > 0)
            {
                using var dates = scope.Command("INSERT INTO idx_date (tenant_id, param, lo, hi, rid) SELECT @t, unnest(@ps), unnest(@los), unnest(@his), @rid ON CONFLICT DO NOTHING")
                    .With("t", tenant).With("ps", index.Dates.Select(d => d.Param).ToArray())
                    .With("los", index.Dates.Select(d => d.Low).ToArray()).With("his", index.Dates.Select(d => d.High).ToArray()).With("rid", rid);
                await dates.ExecuteNonQueryAsync(cancellationToken);
            }
            return;
        }
        await ExecuteRowsAsync(scope, "INSERT OR IGNORE INTO idx_hash (h, rid) VALUES ", "(@a{0}, @rid)", hashes ?? index.Hashes, (c, i, h) => c.With("a" + i, h), rid, tenant, cancellationToken);
        await ExecuteRowsAsync(scope, "INSERT OR IGNORE INTO idx_ref (target, param, rid) VALUES ", "(@a{0}, @b{0}, @rid)", index.References,
            (c, i, r) => c.With("a" + i, r.Target).With("b" + i, r.Param), rid, tenant, cancellationToken);
        await ExecuteRowsAsync(scope, "INSERT OR IGNORE INTO idx_date (tenant_id, param, lo, hi, rid) VALUES ", "(@t, @a{0}, @b{0}, @c{0}, @rid)", index.Dates,
            (c, i, d) => c.With("a" + i, d.Param).With("b" + i, d.Low).With("c" + i, d.High), rid, tenant, cancellationToken);
    }

    /// <summary>The old version's references (<paramref name="index"/>: today's extraction of it; none when it was deleted), and every
    /// date of care row <paramref name="rid"/> has, by idx_date_rid: an older extraction's too. Deleted by their values as today's
    /// extraction makes them, the rows of an index format before it stayed (a date alone indexed as UTC's day before format 5 went
    /// on answering for that day after an update moved it, and for good after a delete, which re-indexing does not look at).
    /// The hashes are the row's list's, removed by the caller.</summary>
    private static async Task DeleteIndexAsync(WriteScope scope, long rid, IndexEntries? index, CancellationToken cancellationToken)
    {
        foreach (var reference in index?.References ?? [])
        {
            using var command = scope.Command("DELETE FROM idx_ref WHERE target = @x AND param = @p AND rid = @rid").With("x", reference.Target).With("p", reference.Param).With("rid", rid);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        using var dates = scope.Command("DELETE FROM idx_date WHERE rid = @rid").With("rid", rid);
        await dates.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>SQLite: removes row <paramref name="rid"/>'s idx_hash rows of <paramref name="hashes"/>, a probe of idx_hash's key
    /// each; whether there were any to remove.</summary>
    internal static async Task<bool> DeleteHashesAsync(WriteScope scope, StorageEngine engine, long rid, IEnumerable<long> hashes, CancellationToken cancellationToken)
    {
        var any = false;
        foreach (var chunk in hashes.Chunk(HashesAStatement))
        {
            using var delete = OfRowsHashes(scope, engine, "DELETE", rid, chunk);
            await delete.ExecuteNonQueryAsync(cancellationToken);
            any = true;
        }
        return any;
    }

    /// <summary>SQLite: those of <paramref name="hashes"/> that row <paramref name="rid"/> has idx_hash rows for, a probe of idx_hash's
    /// key each (re-indexing looks in the index itself, not only at the row's list).</summary>
    internal static async Task<HashSet<long>> IndexedHashesAsync(WriteScope scope, StorageEngine engine, long rid, IEnumerable<long> hashes, CancellationToken cancellationToken)
    {
        var present = new HashSet<long>();
        foreach (var chunk in hashes.Chunk(HashesAStatement))
        {
            using var probe = OfRowsHashes(scope, engine, "SELECT h", rid, chunk);
            using var reader = await probe.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) present.Add(reader.GetInt64(0));
        }
        return present;
    }

    private const int HashesAStatement = 500;

    /// <summary>"<paramref name="verb"/> FROM idx_hash" for row <paramref name="rid"/>'s rows of <paramref name="hashes"/>.</summary>
    private static DbCommand OfRowsHashes(WriteScope scope, StorageEngine engine, string verb, long rid, long[] hashes)
    {
        var command = scope.Command("");
        command.CommandText = $"{verb} FROM idx_hash WHERE rid = @rid AND {command.InList(engine, "h", "h", hashes)}";
        return command.With("rid", rid);
    }

    private static async Task ExecuteRowsAsync<T>(WriteScope scope, string head, string rowTemplate, List<T> items, Action<DbCommand, int, T> bind, long rid, long tenant, CancellationToken cancellationToken)
    {
        const int chunk = 200;
        for (var start = 0; start < items.Count; start += chunk)
        {
            var count = Math.Min(chunk, items.Count - start);
            using var command = scope.Command("");
            var rows = new string[count];
            for (var i = 0; i < count; i++)
            {
                rows[i] = string.Format(System.Globalization.CultureInfo.InvariantCulture, rowTemplate, i);
                bind(command, i, items[start + i]);
            }
            command.CommandText = head + string.Join(", ", rows);
            command.With("rid", rid).With("t", tenant);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }
}
