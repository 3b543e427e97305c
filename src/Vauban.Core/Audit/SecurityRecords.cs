// The security records kept beside the chain — the guard's alerts, its containments, and break-the-glass grants with the
// explanation the clinician typed — are rows of tables of their own: an insider with the database could delete the canary alert
// that caught her or rewrite her justification, and the chain still verified. Every write of one puts on the establishment's
// chain, in the same transaction, an entry carrying a keyed digest of what it wrote (HMAC-SHA-256 under the index key, sealed in
// the entry as everything an entry says is), and `vauban audit verify` holds every row to the digests: none missing, none altered,
// none without its entry (ADR 0009). A row is digested in two parts: what was written when it was made, once; and what changes
// later (an alert's acknowledgement, a containment's release), at each change — so a change vouches only for what it wrote, never
// for an edit made to the rest of the row before it.
using System.Buffers;
using System.Buffers.Binary;
using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Storage;

namespace Vauban.Audit;

/// <summary>A security record's digest as an entry carries it (sealed): the row (table code and id), which part of it — what was
/// written when it was made, or its state since (<see cref="State"/>) — and the part's HMAC-SHA-256 under the establishment's
/// index key.</summary>
public sealed record SecurityRecordDigest(
    [property: JsonPropertyName("t")] string Table,
    [property: JsonPropertyName("i")] long Id,
    [property: JsonPropertyName("s")] bool State,
    [property: JsonPropertyName("h")] byte[] Digest);

/// <summary>A sealed value that did not open (altered): digested by its stored bytes, which then match nothing that was written.</summary>
internal sealed record UnopenedValue(byte[] Stored);

/// <summary>One table of security records: how its rows are read, named and digested. A row's part is digested from its fields
/// (long, string, the opened bytes of a sealed value, <see cref="UnopenedValue"/>, or null) by <see cref="Digest"/>: the writer
/// from the values it wrote, verification from the row as it reads — one canonical form, so a row changed as it is written (a
/// trigger) matches nothing.</summary>
internal sealed class SecurityTable
{
    private readonly Func<TenantKeys, DbDataReader, bool, object?[]> _made;
    private readonly Func<DbDataReader, object?[]?>? _state;

    private SecurityTable(string code, string name, string noun, string? stateNoun, string columns,
        Func<TenantKeys, DbDataReader, bool, object?[]> made, Func<DbDataReader, object?[]?>? state)
    {
        Code = code;
        Name = name;
        Noun = noun;
        StateNoun = stateNoun;
        Columns = columns;
        _made = made;
        _state = state;
    }

    /// <summary>How an entry names the table (never renamed: entries keep it).</summary>
    public string Code { get; }

    /// <summary>The table in the database.</summary>
    public string Name { get; }

    /// <summary>A row in words ("alert 12").</summary>
    public string Noun { get; }

    /// <summary>What changes in a row after it was made, in words; null when nothing does.</summary>
    public string? StateNoun { get; }

    /// <summary>The columns read, the id first.</summary>
    public string Columns { get; }

    public static readonly SecurityTable Alerts = new("alert", "security_alerts", "alert", "acknowledgement",
        "id, raised_at, kind, principal, detail, acknowledged_at, acknowledged_by",
        (keys, r, retry) =>
        {
            var (raisedAt, kind, principal, stored) = (r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetString(4));
            // The detail as it reads, not as it is sealed: a data-key rotation seals it again, and the digest must still hold.
            if (!stored.StartsWith(SecurityAlerts.SealedPrefix, StringComparison.Ordinal)) return [raisedAt, kind, principal, stored]; // raised before details were sealed
            var sealedText = new byte[stored.Length];
            if (!Convert.TryFromBase64String(stored[SecurityAlerts.SealedPrefix.Length..], sealedText, out var length)) sealedText = [];
            else Array.Resize(ref sealedText, length);
            return [raisedAt, kind, principal,
                DigestInput.Open(keys, SecurityAlerts.SealedDetailCode, SecurityAlerts.Binding(kind, principal, raisedAt), AttributedText.VersionOf(principal), sealedText, retry)];
        },
        r => NullablePair(r, 5, 6));

    public static readonly SecurityTable Containments = new("containment", "guard_containments", "containment", "release",
        "id, principal, account, level, cause, reason, contained_at, released_at, released_by",
        (_, r, _) => [Text(r, 1), Text(r, 2), Text(r, 3), Text(r, 4), Text(r, 5), r.GetInt64(6)],
        r => NullablePair(r, 7, 8));

    public static readonly SecurityTable Grants = new("break-glass", "break_glass", "break-the-glass grant", null,
        "id, principal, session, patient, reason, detail, granted_at, expires_at",
        (keys, r, retry) =>
        {
            var (principal, patient, grantedAt) = (r.GetString(1), r.GetString(3), r.GetInt64(6));
            // The explanation as the clinician typed it (sealed at rest, and sealed again by a data-key rotation).
            object? explanation = null;
            if (!r.IsDBNull(5))
            {
                var (id, version) = BreakTheGlass.ExplanationBinding(principal, patient, grantedAt);
                explanation = DigestInput.Open(keys, 0, id, version, (byte[])r.GetValue(5), retry);
            }
            return [principal, Text(r, 2), patient, Text(r, 4), explanation, grantedAt, r.GetInt64(7)];
        },
        null);

    public static IReadOnlyList<SecurityTable> All { get; } = [Alerts, Containments, Grants];

    public static SecurityTable? Of(string code) => All.FirstOrDefault(t => t.Code == code);

    /// <summary>The digest of one part of a row (what was made, or its state since) from its fields.</summary>
    public byte[] Digest(TenantKeys keys, long tenantId, long id, bool state, IReadOnlyList<object?> fields, DigestInput input)
    {
        input.Start(this, tenantId, id, state);
        foreach (var field in fields) input.Field(field);
        return input.Finish(keys);
    }

    /// <summary>The digests of the row <paramref name="reader"/> is on: of what was made, and of its later state (null while it has
    /// none). A row whose columns cannot be read as written (a value of the wrong kind) has neither: it matches no digest.</summary>
    public (long Id, byte[]? Made, byte[]? State) Digests(TenantKeys keys, long tenantId, DbDataReader reader, DigestInput input, bool retry = false)
    {
        var id = reader.GetInt64(0);
        try
        {
            var fields = _made(keys, reader, retry);
            var made = Digest(keys, tenantId, id, state: false, fields, input);
            foreach (var field in fields) if (field is byte[] opened) Array.Clear(opened); // an explanation's or a detail's words
            var stateFields = _state?.Invoke(reader);
            return (id, made, stateFields is null ? null : Digest(keys, tenantId, id, state: true, stateFields, input));
        }
        catch (Exception e) when (e is InvalidCastException or FormatException or OverflowException or InvalidOperationException)
        {
            return (id, null, null);
        }
    }

    /// <summary>As <see cref="Digests(TenantKeys, long, DbDataReader, DigestInput, bool)"/>, with the establishment's keys as
    /// <paramref name="ring"/> holds them, loaded again for a value sealed under a data key version they lack (a `keys rotate-data`
    /// since they were loaded): never reported altered for that.</summary>
    public async ValueTask<(long Id, byte[]? Made, byte[]? State)> DigestsAsync(KeyRing ring, long tenantId, DbDataReader reader, DigestInput input,
        CancellationToken cancellationToken)
    {
        var keys = await ring.ForTenantAsync(tenantId, cancellationToken);
        try
        {
            return Digests(keys, tenantId, reader, input, retry: true);
        }
        catch (UnknownKeyVersionException e)
        {
            return Digests(await ring.WithDataKeyAsync(tenantId, e.Version, cancellationToken) ?? keys, tenantId, reader, input);
        }
    }

    private static string? Text(DbDataReader reader, int column) => reader.IsDBNull(column) ? null : reader.GetString(column);

    /// <summary>Two columns that stay null until the row's state changes (acknowledged or released: when, and by whom); null while
    /// both are.</summary>
    private static object?[]? NullablePair(DbDataReader reader, int at, int by) =>
        reader.IsDBNull(at) && reader.IsDBNull(by) ? null : [reader.IsDBNull(at) ? null : reader.GetInt64(at), Text(reader, by)];
}

/// <summary>What a digest is computed over: a domain tag, the table, the establishment, the row's id and part, then each field
/// with its kind and length, so that no two rows' fields run together into the same bytes. The MACs of the rows that grant access
/// (Access.AuthenticatedTable) are written in the same form under a domain tag of their own.</summary>
internal sealed class DigestInput
{
    private const byte NullField = 0, LongField = 1, TextField = 2, OpenedField = 3, UnopenedField = 4;
    private static readonly byte[] Domain = "vauban-security-record/1"u8.ToArray();
    private readonly ArrayBufferWriter<byte> _buffer = new(512);

    public void Start(SecurityTable table, long tenantId, long id, bool state)
    {
        Begin(Domain);
        Field(table.Code);
        Field(tenantId);
        Field(id);
        Field(state ? 1L : 0L);
    }

    public byte[] Finish(TenantKeys keys)
    {
        var digest = keys.Index.Digest(_buffer.WrittenSpan);
        _buffer.Clear(); // it held an explanation's or a detail's words
        return digest;
    }

    /// <summary>Begins a digest of another kind, under its own domain tag: the MAC of a row that grants access
    /// (Access.AuthenticatedTable), whose fields are written in the same canonical form.</summary>
    public void Begin(ReadOnlySpan<byte> domain)
    {
        _buffer.ResetWrittenCount();
        _buffer.Write(domain);
    }

    /// <summary>The MAC of what was written since <see cref="Begin"/>, under the store's row-authentication key.</summary>
    public byte[] Finish(RowKey key)
    {
        var mac = key.Mac(_buffer.WrittenSpan);
        _buffer.Clear();
        return mac;
    }

    /// <summary>One field: a long, a string, a sealed value's opened bytes, one that did not open, or null.</summary>
    public void Field(object? value)
    {
        switch (value)
        {
            case null:
                Tag(NullField, 0);
                break;
            case long number:
                Tag(LongField, 8);
                BinaryPrimitives.WriteInt64BigEndian(_buffer.GetSpan(8), number);
                _buffer.Advance(8);
                break;
            case string text:
                var length = Encoding.UTF8.GetByteCount(text);
                Tag(TextField, length);
                _buffer.Advance(Encoding.UTF8.GetBytes(text, _buffer.GetSpan(length)));
                break;
            case byte[] opened:
                Tag(OpenedField, opened.Length);
                _buffer.Write(opened);
                break;
            case UnopenedValue unopened:
                Tag(UnopenedField, unopened.Stored.Length);
                _buffer.Write(unopened.Stored);
                break;
            default:
                throw new ArgumentException("a security record's field is a long, a string, bytes or null", nameof(value));
        }
    }

    /// <summary>A sealed value by what it holds; one that does not open (altered) by its stored bytes. One sealed under a data key
    /// version <paramref name="keys"/> lack throws <see cref="UnknownKeyVersionException"/> when <paramref name="retry"/>: the
    /// caller loads the keys again (a rotation since they were loaded) and digests the row again.</summary>
    public static object Open(TenantKeys keys, int typeCode, string binding, int version, byte[] sealedValue, bool retry)
    {
        try
        {
            return RecordCipher.Open(keys, typeCode, binding, version, sealedValue);
        }
        catch (RecordIntegrityException e) when (!retry || e is not UnknownKeyVersionException)
        {
            return new UnopenedValue(sealedValue);
        }
    }

    private void Tag(byte kind, int length)
    {
        var span = _buffer.GetSpan(5);
        span[0] = kind;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], length);
        _buffer.Advance(5);
    }
}

/// <summary>An establishment's security records as read at one instant: each row's digests, by table.</summary>
internal sealed record StoredSecurityRecords(IReadOnlyDictionary<SecurityTable, List<(long Id, byte[]? Made, byte[]? State)>> Rows)
{
    public long Count => Rows.Values.Sum(r => (long)r.Count);
}

internal static class SecurityRecords
{
    /// <summary>Who an entry of security records names as its principal: the server itself, whatever act wrote them (that act's
    /// own entry names who did it).</summary>
    public const string Writer = "vauban";

    /// <summary>The note of an entry of security records written by an act.</summary>
    public const string WrittenNote = "security records written";

    /// <summary>The note of the entries that chained the records existing when chaining began (schema step 20).</summary>
    public const string ExistingNote = "security records that existed when their chaining began";

    /// <summary>The note of the entry that begins the chain of an establishment created without an administrative act: from it on,
    /// every security record of the establishment is on the chain.</summary>
    public const string CreatedNote = "security records chained from the establishment's creation";

    /// <summary>store_settings: 'pending' until the store has chained its existing security records (schema step 20 sets it),
    /// then 'done'.</summary>
    public const string ChainedSetting = "security_records_chained";

    /// <summary>Digests an entry of the upgrade carries at most.</summary>
    public const int DigestsPerEntry = 1000;

    /// <summary>The digests of the tenant's rows of <paramref name="table"/> read in <paramref name="scope"/> — those of
    /// <paramref name="ids"/>, or all — of what was made, or of their state (rows without one are left out).</summary>
    public static async Task<List<SecurityRecordDigest>> DigestsAsync(WriteScope scope, StorageEngine engine, KeyRing keys, long tenantId,
        SecurityTable table, bool state, IReadOnlyList<long>? ids, CancellationToken cancellationToken)
    {
        using var command = scope.Command("");
        command.With("t", tenantId);
        command.CommandText = $"SELECT {table.Columns} FROM {table.Name} WHERE tenant_id = @t"
            + (ids is null ? "" : " AND " + command.InList(engine, "id", "i", ids)) + " ORDER BY id";
        var digests = new List<SecurityRecordDigest>();
        var input = new DigestInput();
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var (id, made, changed) = await table.DigestsAsync(keys, tenantId, reader, input, cancellationToken);
            if ((state ? changed : made) is { } digest) digests.Add(new SecurityRecordDigest(table.Code, id, state, digest));
        }
        return digests;
    }

    /// <summary>The triggers and rules (PostgreSQL) on the security records' tables and the audit log's, as "name on table": Vauban
    /// defines none, and one could change or delete a row inside the statement that writes it.</summary>
    public static async Task<IReadOnlyList<string>> TriggersAsync(DbConnection connection, DbTransaction transaction, StorageEngine engine,
        CancellationToken cancellationToken)
    {
        string[] tables = [.. SecurityTable.All.Select(t => t.Name), "audit_entries", "audit_heads", "audit_checkpoints", "audit_index", "audit_journals", "store_settings"];
        var list = string.Join(", ", tables.Select(t => "'" + t + "'"));
        using var command = connection.Command(engine == StorageEngine.Postgres
            ? $"""
              SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
              WHERE NOT t.tgisinternal AND c.relname IN ({list}) AND c.relnamespace = current_schema()::regnamespace
              UNION ALL SELECT rulename, tablename FROM pg_rules WHERE schemaname = current_schema() AND tablename IN ({list})
              ORDER BY 2, 1
              """
            : $"SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND lower(tbl_name) IN ({list}) ORDER BY tbl_name, name");
        command.Transaction = transaction;
        var found = new List<string>();
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) found.Add(reader.GetString(0) + " on " + reader.GetString(1));
        return found;
    }

    /// <summary>Every security record of the tenant, read in <paramref name="transaction"/> (the snapshot the chain's extent was
    /// read in: a row and its entry commit together, so the two agree).</summary>
    public static async Task<StoredSecurityRecords> ReadAsync(DbConnection connection, DbTransaction transaction, KeyRing keys, long tenantId,
        CancellationToken cancellationToken)
    {
        var rows = new Dictionary<SecurityTable, List<(long, byte[]?, byte[]?)>>();
        var input = new DigestInput();
        foreach (var table in SecurityTable.All)
        {
            var list = rows[table] = [];
            using var command = connection.Command($"SELECT {table.Columns} FROM {table.Name} WHERE tenant_id = @t ORDER BY id").With("t", tenantId);
            command.Transaction = transaction;
            command.CommandTimeout = 0;
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) list.Add(await table.DigestsAsync(keys, tenantId, reader, input, cancellationToken));
        }
        return new StoredSecurityRecords(rows);
    }

    /// <summary>
    /// Holds the stored rows to the digests the chain's entries carry (in chain order): every row made and every state it is in
    /// must be the one last put on the chain for it, every row put on the chain must still be there, and a row made must be put on
    /// it once. Returns the number of rows checked and the first problem: the one the earliest entry names, or else the first row
    /// no entry names (added in the database); with how many there are in all.
    /// </summary>
    public static (long Checked, long? Entry, string? Problem) Check(StoredSecurityRecords stored, IReadOnlyList<(long Sequence, AuditDetail Detail)> entries)
    {
        var made = new Dictionary<(string, long), (long Sequence, byte[] Digest)>();
        var states = new Dictionary<(string, long), (long Sequence, byte[] Digest)>();
        var problems = new List<(long Sequence, string Problem)>();
        long? from = null, written = null;
        foreach (var (sequence, detail) in entries)
        {
            // The point from which every record is on the chain comes once, before any entry of records written: an establishment's
            // first entry, or, on a chain older than that, the upgrade's first entry, when no record had been chained yet.
            if (detail.SecurityRecordsFrom)
            {
                if ((from ?? written) is { } first)
                {
                    var again = from is null ? "" : "again, ";
                    var put = from is null ? " had put records written on it" : "";
                    problems.Add((sequence, string.Create(CultureInfo.InvariantCulture,
                        $"entry {sequence} chains the establishment's existing security records {again}after entry {first}{put}: the store's record of that step was reset, and rows added since would pass as existing")));
                }
                from ??= sequence;
            }
            else if (detail.Digests is { Count: > 0 })
            {
                written ??= sequence;
            }
            foreach (var digest in detail.Digests ?? [])
            {
                var key = (digest.Table, digest.Id);
                if (digest.State)
                {
                    states[key] = (sequence, digest.Digest);
                }
                else if (made.TryGetValue(key, out var earlier) && !earlier.Digest.AsSpan().SequenceEqual(digest.Digest))
                {
                    // Another row under a number the chain already holds (SQLite gives a deleted highest row's number to the next
                    // one): the earlier record is gone. The row is held to the newer digest from here on; its earlier state is not its.
                    problems.Add((earlier.Sequence, string.Create(CultureInfo.InvariantCulture,
                        $"{Name(digest.Table, digest.Id)}, put on the chain at entry {earlier.Sequence}, was put on it again as another record at entry {sequence}: the first was deleted and its number reused")));
                    made[key] = (sequence, digest.Digest);
                    states.Remove(key);
                }
                else
                {
                    // The same row twice (identical digests) is harmless: the first entry stands.
                    made.TryAdd(key, (sequence, digest.Digest));
                }
            }
        }
        var added = new List<string>();
        foreach (var (table, rows) in stored.Rows)
        {
            foreach (var (id, madeDigest, stateDigest) in rows)
            {
                var key = (table.Code, id);
                if (!made.Remove(key, out var onChain))
                {
                    added.Add(string.Create(CultureInfo.InvariantCulture, $"{table.Noun} {id} in {table.Name} is on no entry of the chain (added in the database)"));
                    continue;
                }
                if (madeDigest is null || !madeDigest.AsSpan().SequenceEqual(onChain.Digest))
                {
                    problems.Add((onChain.Sequence, string.Create(CultureInfo.InvariantCulture,
                        $"{table.Noun} {id} no longer matches what entry {onChain.Sequence} put on the chain (altered in {table.Name})")));
                    continue;
                }
                var stateOnChain = states.TryGetValue(key, out var s) ? s.Digest : null;
                if ((stateDigest is null) != (stateOnChain is null) || (stateDigest is not null && !stateDigest.AsSpan().SequenceEqual(stateOnChain)))
                {
                    var at = stateOnChain is null ? onChain.Sequence : s.Sequence;
                    problems.Add((at, stateOnChain is null
                        ? string.Create(CultureInfo.InvariantCulture, $"{table.Noun} {id}'s {table.StateNoun ?? "change"} in {table.Name} is on no entry of the chain (altered)")
                        : string.Create(CultureInfo.InvariantCulture, $"{table.Noun} {id}'s {table.StateNoun} no longer matches what entry {at} put on the chain (altered in {table.Name})")));
                }
            }
        }
        foreach (var ((code, id), (sequence, _)) in made)
        {
            var table = SecurityTable.Of(code);
            problems.Add((sequence, string.Create(CultureInfo.InvariantCulture,
                $"{Name(code, id)}, put on the chain at entry {sequence}, is missing from {table?.Name ?? "its table"} (deleted)")));
        }
        var count = problems.Count + added.Count;
        if (count == 0) return (stored.Count, null, null);
        var more = count > 1 ? string.Create(CultureInfo.InvariantCulture, $" ({count - 1:N0} more security record problem{(count > 2 ? "s" : "")} after it)") : "";
        if (problems.Count > 0)
        {
            var firstProblem = problems.MinBy(p => p.Sequence);
            return (stored.Count, firstProblem.Sequence, firstProblem.Problem + more);
        }
        return (stored.Count, null, added[0] + more);
    }

    private static string Name(string code, long id) =>
        (SecurityTable.Of(code)?.Noun ?? code) + " " + id.ToString(CultureInfo.InvariantCulture);
}
