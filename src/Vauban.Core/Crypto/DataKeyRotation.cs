// A data-key rotation's second half: every record body (current versions and history) and every staff account's sealed
// fields still under an older data key version are opened with it and sealed again under the newest, a batch per
// transaction, beside a running server. A row is replaced only if it is still what was read (compare-and-set): one that a
// writer changed meanwhile was sealed anew by that writer, under the newest key if its process had taken it, and is counted
// "changed" for the next pass otherwise (the row is read again in the same transaction to tell; one deleted meanwhile, or
// left with nothing sealed, is not counted). Alerts' details, break-the-glass explanations and export reasons are re-sealed too,
// each with the binding its owner seals it with. What stays under the version that sealed it: the audit log (never
// rewritten: each entry's sealed part is covered by the chain).
using System.Data.Common;
using Vauban.Storage;

namespace Vauban.Crypto;

/// <param name="Resealed">Rows sealed again under the newest version by this pass.</param>
/// <param name="Current">Rows found already under it (written since the key was made, by an earlier pass, or by a writer
/// between this pass's read and its write).</param>
/// <param name="Changed">Rows a writer sealed again under an older version between their read and their write: left for the
/// next pass.</param>
/// <param name="Unreadable">Rows that failed their integrity check: left as they are (the reads that meet them alert).</param>
public sealed record ResealTally(long Resealed, long Current, long Changed, long Unreadable)
{
    /// <summary>Whether every row the pass went through is now under the newest version.</summary>
    public bool Complete => Changed == 0 && Unreadable == 0;

    public static ResealTally operator +(ResealTally a, ResealTally b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return new(a.Resealed + b.Resealed, a.Current + b.Current, a.Changed + b.Changed, a.Unreadable + b.Unreadable);
    }

    public static ResealTally Add(ResealTally a, ResealTally b) => a + b;
}

internal static class DataKeyRotation
{
    /// <summary>Rows a transaction re-seals: SQLite's one writer is held a fraction of a second.</summary>
    public const int BatchSize = 2_000;

    /// <summary>One row's sealed value as read: where it is (its key columns), what it is bound to, its bytes, and the value as
    /// stored (the bytes, or their text form), which the replacement compares.</summary>
    private sealed record Sealed(object[] Key, int TypeCode, string Id, int Version, byte[] Body, object Stored);

    /// <summary>A table's column of sealed values: how a page of a tenant's rows is read after a cursor (the key columns first),
    /// what each row's value is bound to (<see cref="Bind"/>, from the columns after the key; null: nothing sealed in this row),
    /// how a value is stored, how one is replaced (@new where its key is @k0… and its value is still @old), how the value now
    /// stored under a key is read (when the replacement found it changed), and the cursor's start, below every key (rids and
    /// versions are positive; '' sorts before any id).</summary>
    private sealed record Column(string Name, string Page, string Replace, string Now, object[] Start, Func<DbDataReader, int, Sealed?> Bind)
    {
        public int KeyColumns => Start.Length;

        /// <summary>How a re-sealed value is written (alerts keep their details as text).</summary>
        public Func<byte[], object> Store { get; init; } = body => body;

        /// <summary>The sealed bytes of a value as stored; null when nothing is sealed in it.</summary>
        public Func<object, byte[]?> Sealed { get; init; } = stored => stored as byte[];
    }

    // The binding read from the columns after the key: type code, id, version, sealed bytes (the value as stored).
    private static Sealed? Plain(DbDataReader reader, int k)
    {
        var body = (byte[])reader.GetValue(k + 3);
        return new Sealed([], reader.GetInt32(k), reader.GetString(k + 1), reader.GetInt32(k + 2), body, body);
    }

    // Every page is read in its key's order, from the cursor: "+tenant_id" keeps SQLite from taking an index by tenant and
    // sorting the whole establishment's rows for each page (449,951 rows re-sealed at 4,080 a second instead of tens of thousands).
    private static readonly Column[] Columns =
    [
        new("resources",
            "SELECT rid, type, id, version, body FROM resources WHERE +tenant_id = @t AND rid > @k0 AND body IS NOT NULL ORDER BY rid LIMIT @n",
            "UPDATE resources SET body = @new WHERE rid = @k0 AND body = @old", "SELECT body FROM resources WHERE rid = @k0", [0L], Plain),
        new("resource history",
            """
            SELECT h.rid, h.version, r.type, r.id, h.version, h.body FROM resource_history h JOIN resources r ON r.rid = h.rid
            WHERE +r.tenant_id = @t AND (h.rid, h.version) > (@k0, @k1) AND h.body IS NOT NULL ORDER BY h.rid, h.version LIMIT @n
            """,
            "UPDATE resource_history SET body = @new WHERE rid = @k0 AND version = @k1 AND body = @old",
            "SELECT body FROM resource_history WHERE rid = @k0 AND version = @k1", [0L, 0L], Plain),
        new("staff accounts",
            $"SELECT id, {Access.StaffAccounts.SealedAccountCode}, id, 0, sealed FROM staff_users WHERE +tenant_id = @t AND id > @k0 ORDER BY id LIMIT @n",
            "UPDATE staff_users SET sealed = @new WHERE id = @k0 AND sealed = @old", "SELECT sealed FROM staff_users WHERE id = @k0", [""], Plain),
        new("staff authenticator keys",
            $"SELECT id, {Access.StaffAccounts.SealedAuthenticatorCode}, id, 0, authenticator_key FROM staff_users WHERE +tenant_id = @t AND id > @k0 AND authenticator_key IS NOT NULL ORDER BY id LIMIT @n",
            "UPDATE staff_users SET authenticator_key = @new WHERE id = @k0 AND authenticator_key = @old",
            "SELECT authenticator_key FROM staff_users WHERE id = @k0", [""], Plain),
        new("security alerts",
            "SELECT id, kind, principal, raised_at, detail FROM security_alerts WHERE +tenant_id = @t AND id > @k0 ORDER BY id LIMIT @n",
            "UPDATE security_alerts SET detail = @new WHERE id = @k0 AND detail = @old", "SELECT detail FROM security_alerts WHERE id = @k0", [0L], (reader, k) =>
            {
                var (kind, principal, raisedAt, stored) = (reader.GetString(k), reader.GetString(k + 1), reader.GetInt64(k + 2), reader.GetString(k + 3));
                // An alert raised before details were sealed holds its detail in clear: nothing to re-seal.
                if (SealedDetail(stored) is not { } body) return null;
                return new Sealed([], Access.SecurityAlerts.SealedDetailCode, Access.SecurityAlerts.Binding(kind, principal, raisedAt),
                    AttributedText.VersionOf(principal), body, stored);
            })
        {
            Store = body => Access.SecurityAlerts.SealedPrefix + Convert.ToBase64String(body),
            Sealed = stored => stored is string text ? SealedDetail(text) : null,
        },
        new("break-the-glass explanations",
            "SELECT id, principal, patient, granted_at, detail FROM break_glass WHERE +tenant_id = @t AND id > @k0 AND detail IS NOT NULL ORDER BY id LIMIT @n",
            "UPDATE break_glass SET detail = @new WHERE id = @k0 AND detail = @old", "SELECT detail FROM break_glass WHERE id = @k0", [0L], (reader, k) =>
            {
                var (id, version) = Access.BreakTheGlass.ExplanationBinding(reader.GetString(k), reader.GetString(k + 1), reader.GetInt64(k + 2));
                var body = (byte[])reader.GetValue(k + 3);
                return new Sealed([], 0, id, version, body, body);
            }),
        new("export reasons",
            "SELECT id, principal, reason FROM export_jobs WHERE +tenant_id = @t AND id > @k0 ORDER BY id LIMIT @n",
            "UPDATE export_jobs SET reason = @new WHERE id = @k0 AND reason = @old", "SELECT reason FROM export_jobs WHERE id = @k0", [""], (reader, k) =>
            {
                var body = (byte[])reader.GetValue(k + 1);
                return new Sealed([], Records.RecordsService.ExportReasonTypeCode, reader.GetString(0), AttributedText.VersionOf(reader.GetString(k)), body, body);
            }),
    ];

    // An alert's detail as stored: the sealed bytes after the prefix (empty when they are not base64, which fails their check);
    // null for a detail kept in clear.
    private static byte[]? SealedDetail(string stored)
    {
        if (!stored.StartsWith(Access.SecurityAlerts.SealedPrefix, StringComparison.Ordinal)) return null;
        var body = new byte[stored.Length];
        if (!Convert.TryFromBase64String(stored[Access.SecurityAlerts.SealedPrefix.Length..], body, out var length)) return [];
        Array.Resize(ref body, length);
        return body;
    }

    /// <summary>The tables a pass goes through, for the operator.</summary>
    public static IReadOnlyList<string> Tables => [.. Columns.Select(c => c.Name)];

    /// <summary>Re-seals the tenant's rows under its newest data key, table by table.</summary>
    /// <param name="progress">Rows gone through so far, batch by batch.</param>
    /// <param name="betweenReadAndWrite">Tests: run after each page is read, before its rows are replaced (a writer's change there
    /// is what the compare-and-set is for).</param>
    /// <param name="tallied">The running tally, after each page's transaction has committed.</param>
    public static async Task<ResealTally> ResealAsync(StoreDatabase database, KeyRing ring, long tenantId, int batchSize, IProgress<long>? progress,
        Action<ResealTally>? tallied, Func<CancellationToken, Task>? betweenReadAndWrite, CancellationToken cancellationToken)
    {
        var total = new ResealTally(0, 0, 0, 0);
        long seen = 0;
        foreach (var column in Columns)
        {
            var after = column.Start;
            while (true)
            {
                var page = await PageAsync(database, column, tenantId, after, batchSize, cancellationToken);
                if (page.Count == 0) break;
                after = page[^1].Key;
                if (betweenReadAndWrite is not null) await betweenReadAndWrite(cancellationToken);
                total += await ResealPageAsync(database, ring, column, tenantId, page, cancellationToken);
                tallied?.Invoke(total);
                seen += page.Count;
                progress?.Report(seen);
            }
        }
        return total;
    }

    private static async Task<List<Sealed>> PageAsync(StoreDatabase database, Column column, long tenantId, object[] after, int batchSize, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        using var command = connection.Command(column.Page).With("t", tenantId).With("n", batchSize);
        for (var i = 0; i < after.Length; i++) command.With("k" + i, after[i]);
        var page = new List<Sealed>(batchSize);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var k = column.KeyColumns;
            var key = new object[k];
            for (var i = 0; i < k; i++) key[i] = Read(reader, i);
            // A row with nothing sealed still moves the cursor.
            page.Add((column.Bind(reader, k) ?? new Sealed([], 0, "", 0, [], DBNull.Value)) with { Key = key });
        }
        return page;
    }

    // Keys as the engine gives them, normalized so that they go back as the same parameter types (SQLite gives every integer as long).
    private static object Read(DbDataReader reader, int ordinal) => reader.GetValue(ordinal) switch
    {
        int small => (long)small,
        var value => value,
    };

    private static async Task<ResealTally> ResealPageAsync(StoreDatabase database, KeyRing ring, Column column, long tenantId, List<Sealed> page,
        CancellationToken cancellationToken)
    {
        var keys = await ring.ForTenantAsync(tenantId, cancellationToken);
        long current = 0, unreadable = 0;
        var replacements = new List<(Sealed Row, byte[] New)>(page.Count);
        foreach (var row in page)
        {
            if (row.Stored is DBNull) continue; // nothing sealed in this row (an alert from before details were sealed)
            var version = RecordCipher.KeyVersionOf(row.Body);
            if (version == keys.KeyVersion)
            {
                current++;
                continue;
            }
            try
            {
                if (version is { } v && !keys.KeyVersions.Contains(v)) keys = await ring.WithDataKeyAsync(tenantId, v, cancellationToken) ?? keys;
                var plaintext = RecordCipher.Open(keys, row.TypeCode, row.Id, row.Version, row.Body);
                try
                {
                    // Compressed again if it was (the header's flags; a value sealed uncompressed, as texts beside the audit log are, stays so).
                    replacements.Add((row, RecordCipher.Seal(keys, row.TypeCode, row.Id, row.Version, plaintext, compress: row.Body[1] != 0)));
                }
                finally
                {
                    System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
                }
            }
            catch (RecordIntegrityException)
            {
                unreadable++;
            }
        }
        if (replacements.Count > 0)
        {
            long changed = 0;
            await using var scope = await database.BeginWriteAsync(cancellationToken);
            var missed = scope.Connection.CanCreateBatch
                ? await ReplaceInOneTripAsync(scope, column, replacements, cancellationToken)
                : await ReplaceOneByOneAsync(scope, column, replacements, cancellationToken);
            // A row the compare-and-set missed was written meanwhile (or deleted): what it holds now, read under the same write
            // lock, tells whether the next pass has anything to do with it.
            foreach (var row in missed)
            {
                using var now = scope.Command(column.Now);
                foreach (var (name, value) in KeyArguments(row)) now.With(name, value);
                if (await now.ExecuteScalarAsync(cancellationToken) is not { } stored || stored is DBNull || column.Sealed(stored) is not { } body) continue;
                if (RecordCipher.KeyVersionOf(body) == keys.KeyVersion) current++;
                else changed++;
            }
            await scope.CommitAsync(cancellationToken);
            return new ResealTally(replacements.Count - missed.Count, current, changed, unreadable);
        }
        return new ResealTally(0, current, 0, unreadable);
    }

    // SQLite, in process: a statement costs no round trip. Returns the rows the compare-and-set did not replace.
    private static async Task<List<Sealed>> ReplaceOneByOneAsync(WriteScope scope, Column column, List<(Sealed Row, byte[] New)> replacements, CancellationToken cancellationToken)
    {
        var missed = new List<Sealed>();
        foreach (var (row, sealedAgain) in replacements)
        {
            using var update = scope.Command(column.Replace);
            foreach (var (name, value) in Arguments(column, row, sealedAgain)) update.With(name, value);
            if (await update.ExecuteNonQueryAsync(cancellationToken) == 0) missed.Add(row);
        }
        return missed;
    }

    // PostgreSQL: the page's statements sent together, one round trip instead of one each (449,951 rows re-sealed in 60.7 s one
    // by one, 7,412 a second). Returns the rows the compare-and-set did not replace, as one by one.
    private static async Task<List<Sealed>> ReplaceInOneTripAsync(WriteScope scope, Column column, List<(Sealed Row, byte[] New)> replacements, CancellationToken cancellationToken)
    {
        using var batch = scope.Connection.CreateBatch();
        batch.Transaction = scope.Transaction;
        foreach (var (row, sealedAgain) in replacements)
        {
            var update = batch.CreateBatchCommand();
            update.CommandText = column.Replace;
            foreach (var (name, value) in Arguments(column, row, sealedAgain)) Bind(update, name, value);
            batch.BatchCommands.Add(update);
        }
        await batch.ExecuteNonQueryAsync(cancellationToken);
        return [.. replacements.Where((_, i) => batch.BatchCommands[i].RecordsAffected == 0).Select(r => r.Row)];
    }

    /// <summary>What <see cref="Column.Replace"/> is given for one row: the value re-sealed (@new), the value as read (@old), its key.</summary>
    private static IEnumerable<(string Name, object Value)> Arguments(Column column, Sealed row, byte[] sealedAgain)
    {
        yield return ("new", column.Store(sealedAgain));
        yield return ("old", row.Stored);
        foreach (var key in KeyArguments(row)) yield return key;
    }

    /// <summary>A row's key, as <see cref="Column.Replace"/> and <see cref="Column.Now"/> are given it: @k0, @k1…</summary>
    private static IEnumerable<(string Name, object Value)> KeyArguments(Sealed row)
    {
        for (var i = 0; i < row.Key.Length; i++) yield return ("k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), row.Key[i]);
    }

    private static void Bind(DbBatchCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@" + name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}
