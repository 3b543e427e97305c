// A record's index rows replaced in place (vauban reindex), for its current version only and only while that version is
// still current. Rows arrive sealed and the new index arrives computed: this class never sees plaintext.
using System.Data.Common;
using Vauban.Records.Search;

namespace Vauban.Storage;

/// <summary>What <see cref="IndexRows.ReplaceAsync"/> did: nothing because the version read is no longer the current one (or,
/// on PostgreSQL, a writer holds the row now: it is tried again later), nothing because the rows were already right, or a change.</summary>
internal enum IndexReplacement { Moved, Unchanged, Changed }

internal static class IndexRows
{
    private const string Columns = "r.rid, r.tenant_id, r.type, r.id, r.version, r.last_updated, r.deleted, r.body, r.compartment, r.created_by";

    /// <summary>The tenant's current versions that are not deletions (of one type when given), in row order after <paramref name="afterRid"/>.</summary>
    public static async Task<List<StoredVersion>> PageAsync(DbConnection connection, long tenant, int? type, long afterRid, int limit, CancellationToken cancellationToken)
    {
        // In row order along the primary key ("+" keeps SQLite from taking an index on tenant and type, which read and sorted every
        // row of the type for each page): the pages of a run read the table once between them.
        using var command = connection.Command(
            $"SELECT {Columns} FROM resources r WHERE r.rid > @after AND +r.tenant_id = @t{(type is null ? "" : " AND +r.type = @ty")} AND r.deleted = 0 ORDER BY r.rid"
            + Sql.Limit(limit))
            .With("t", tenant).With("after", afterRid);
        if (type is { } code) command.With("ty", code);
        return await ReadAllAsync(command, cancellationToken);
    }

    /// <summary>The current versions, not deletions, of the tenant's rows <paramref name="rids"/>: those found changed meanwhile, read again.</summary>
    public static async Task<List<StoredVersion>> CurrentAsync(DbConnection connection, StorageEngine engine, long tenant, IReadOnlyList<long> rids, CancellationToken cancellationToken)
    {
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM resources r WHERE r.tenant_id = @t AND r.deleted = 0 AND {command.InList(engine, "r.rid", "rids", rids)} ORDER BY r.rid";
        command.With("t", tenant);
        return await ReadAllAsync(command, cancellationToken);
    }

    /// <summary>How many rows <see cref="PageAsync"/> will go through (for a progress display).</summary>
    public static async Task<long> CountAsync(DbConnection connection, long tenant, int? type, CancellationToken cancellationToken)
    {
        using var command = connection.Command($"SELECT count(*) FROM resources WHERE tenant_id = @t{(type is null ? "" : " AND type = @ty")} AND deleted = 0").With("t", tenant);
        if (type is { } code) command.With("ty", code);
        return await command.ScalarLongAsync(cancellationToken);
    }

    private static async Task<List<StoredVersion>> ReadAllAsync(DbCommand command, CancellationToken cancellationToken)
    {
        var rows = new List<StoredVersion>();
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) rows.Add(ResourceRows.ReadRow(reader));
        return rows;
    }

    /// <summary>
    /// Makes the index rows of row <paramref name="rid"/> those of <paramref name="index"/> (and its compartment
    /// <paramref name="compartment"/>), if its current version is still <paramref name="version"/> and not a deletion. The check
    /// is made inside the write transaction: SQLite's (BEGIN IMMEDIATE) excludes every other writer, of every process; on
    /// PostgreSQL the row is locked FOR NO KEY UPDATE (no key column changes: a write under the patient, which key-share locks the
    /// patient's row, does not wait for the batch; an update's or a delete's FOR UPDATE still conflicts), SKIP LOCKED so that the re-indexing never waits on a writer (and never closes a
    /// cycle of waits with one): a row being written is reported moved and read again later.
    /// </summary>
    /// <param name="targets">Every local reference target in the version's body: the stored reference rows are looked for among
    /// these (idx_ref is keyed by target; there is no way to a row's references by its row id alone).</param>
    /// <param name="referenceParameters">The codes of the type's reference search parameters: with the targets, the keys looked
    /// for (a row of a parameter the type no longer has is not found, and no search reads it).</param>
    /// <remarks>Hashes are replaced exactly on both engines: the row lists them (PostgreSQL's column, SQLite's since schema step 18;
    /// SQLite's idx_hash rows are the index searched), so a hash an older extraction made and the current one no longer makes is
    /// removed too (searches do not re-check a decrypted record: left, it returned the record for a value it no longer holds).</remarks>
    public static async Task<IndexReplacement> ReplaceAsync(WriteScope scope, StorageEngine engine, long tenant, long rid, int version, IndexEntries index, string? compartment,
        IReadOnlyCollection<string> targets, IReadOnlyCollection<int> referenceParameters, CancellationToken cancellationToken)
    {
        var postgres = engine == StorageEngine.Postgres;
        HashSet<long> storedHashes;
        string? storedCompartment;
        using (var check = scope.Command(postgres
            ? "SELECT version, deleted, compartment, hashes FROM resources WHERE rid = @rid FOR NO KEY UPDATE SKIP LOCKED"
            : "SELECT version, deleted, compartment, hashes FROM resources WHERE rid = @rid").With("rid", rid))
        using (var reader = await check.ExecuteReaderAsync(cancellationToken))
        {
            if (!await reader.ReadAsync(cancellationToken) || reader.GetInt32(0) != version || reader.GetInt32(1) != 0) return IndexReplacement.Moved;
            storedCompartment = reader.IsDBNull(2) ? null : reader.GetString(2);
            storedHashes = HashColumn.Read(reader, 3);
        }
        var changed = false;
        var missing = new IndexEntries();

        // Blind-index hashes: the row's list, and on SQLite the idx_hash rows searched: those the list names and the current
        // extraction no longer makes removed; those it makes looked for in idx_hash itself (a probe of its key each), not taken
        // from the list, and added where missing — re-indexing is what repairs the index (helper-113 L1).
        var hashesDiffer = !storedHashes.SetEquals(index.Hashes);
        if (!postgres)
        {
            var wantedHashes = index.Hashes.ToHashSet();
            if (hashesDiffer) changed |= await ResourceRows.DeleteHashesAsync(scope, engine, rid, storedHashes.Where(h => !wantedHashes.Contains(h)), cancellationToken);
            var present = await ResourceRows.IndexedHashesAsync(scope, engine, rid, wantedHashes, cancellationToken);
            missing.Hashes.AddRange(wantedHashes.Where(h => !present.Contains(h)));
        }
        if (hashesDiffer || !string.Equals(compartment, storedCompartment, StringComparison.Ordinal))
        {
            using var update = scope.Command("UPDATE resources SET hashes = @hs, compartment = @c WHERE rid = @rid AND version = @v")
                .With("c", compartment).With("rid", rid).With("v", version).With("hs", HashColumn.Value(engine, index.Hashes));
            await update.ExecuteNonQueryAsync(cancellationToken);
            changed = true;
        }

        // References, among every target the body names, for each reference parameter of the type: idx_ref's key is (target,
        // param, rid), so naming all three is one probe each. Naming the target alone scanned every row of that target — all
        // the records that name one organization or general practitioner —, ~11 ms a record at 50,000 patients.
        var wanted = index.References.ToHashSet();
        var lookFor = new HashSet<string>(targets, StringComparer.Ordinal);
        lookFor.UnionWith(wanted.Select(r => r.Target));
        var parameterSet = new HashSet<int>(referenceParameters);
        parameterSet.UnionWith(wanted.Select(r => r.Param));
        int[] parameters = [.. parameterSet];
        var storedReferences = new HashSet<ReferenceEntry>();
        // The keys as a table of constants joined to idx_ref: written as IN lists, SQLite's planner (its statistics say ~3 rows a
        // target) used the target alone and still scanned.
        foreach (var chunk in lookFor.SelectMany(t => parameters.Select(p => (Target: t, Param: p))).Chunk(250))
        {
            using var select = scope.Command("");
            var values = string.Join(", ", chunk.Select((_, i) => $"(@x{i}, @p{i})"));
            select.CommandText = $"WITH k (target, param) AS (VALUES {values}) SELECT x.target, x.param FROM k {(postgres ? "JOIN" : "CROSS JOIN")} idx_ref x "
                + "ON x.target = k.target AND x.param = k.param AND x.rid = @rid";
            for (var i = 0; i < chunk.Length; i++) select.With($"x{i}", chunk[i].Target).With($"p{i}", chunk[i].Param);
            select.With("rid", rid);
            using var reader = await select.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) storedReferences.Add(new ReferenceEntry(reader.GetInt32(1), reader.GetString(0)));
        }
        foreach (var stale in storedReferences.Where(r => !wanted.Contains(r)))
        {
            using var delete = scope.Command("DELETE FROM idx_ref WHERE target = @x AND param = @p AND rid = @rid").With("x", stale.Target).With("p", stale.Param).With("rid", rid);
            await delete.ExecuteNonQueryAsync(cancellationToken);
            changed = true;
        }
        missing.References.AddRange(wanted.Where(r => !storedReferences.Contains(r)));

        // Dates of care, found by row id (idx_date_rid).
        var wantedDates = index.Dates.ToHashSet();
        var storedDates = new HashSet<DateEntry>();
        using (var select = scope.Command("SELECT param, lo, hi FROM idx_date WHERE rid = @rid").With("rid", rid))
        using (var reader = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) storedDates.Add(new DateEntry(reader.GetInt32(0), reader.GetInt64(1), reader.GetInt64(2)));
        }
        foreach (var stale in storedDates.Where(d => !wantedDates.Contains(d)))
        {
            using var delete = scope.Command("DELETE FROM idx_date WHERE tenant_id = @t AND param = @p AND lo = @lo AND rid = @rid AND hi = @hi")
                .With("t", tenant).With("p", stale.Param).With("lo", stale.Low).With("rid", rid).With("hi", stale.High);
            await delete.ExecuteNonQueryAsync(cancellationToken);
            changed = true;
        }
        missing.Dates.AddRange(wantedDates.Where(d => !storedDates.Contains(d)));

        if (missing.Count > 0)
        {
            await ResourceRows.InsertIndexAsync(scope, engine, tenant, rid, missing, cancellationToken);
            changed = true;
        }
        return changed ? IndexReplacement.Changed : IndexReplacement.Unchanged;
    }
}
