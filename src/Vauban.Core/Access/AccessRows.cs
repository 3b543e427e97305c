// Holds the rows that grant access to their MACs (ADR 0014): every read that decides access checks a row's MAC before it is
// believed, and a row whose MAC does not match is treated as if it did not exist and reported once per row and process (a
// row-integrity alert to the establishment's officer, and the server's log). Every write of such a row writes its MAC with it;
// an upgraded store's rows are authenticated once; `vauban audit verify` lists those that fail.
using System.Collections.Concurrent;
using System.Data.Common;
using System.Security.Cryptography;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Storage;

namespace Vauban.Access;

/// <summary>A row that grants access whose MAC does not match: its table, the row in words (its non-secret id: never a token or
/// secret hash), the establishment it names (null when none), and the id it is removed by (`vauban audit remove-row --id`).</summary>
public sealed record UnauthenticRow(string Table, string Row, long? TenantId, string Id);

/// <summary>What `vauban audit remove-row` did: the rows it removed, in words.</summary>
public sealed record RowRemoval(IReadOnlyList<string> Removed);

public sealed class AccessRows
{
    /// <summary>Rows reported at most by one process: past it, rows are still refused, no longer reported one by one.</summary>
    private const int ReportedAtMost = 10_000;

    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly SecurityAlerts _alerts;
    private readonly AuditTrail _audit;
    private readonly ConcurrentDictionary<string, byte> _reported = new(StringComparer.Ordinal);

    /// <summary>The tables of which a row naming no establishment has been alerted in this process (to every establishment).</summary>
    private readonly ConcurrentDictionary<string, byte> _toldOfNoEstablishment = new(StringComparer.Ordinal);

    internal AccessRows(StoreDatabase database, KeyRing keys, SecurityAlerts alerts, AuditTrail audit)
    {
        _database = database;
        _keys = keys;
        _alerts = alerts;
        _audit = audit;
    }

    /// <summary>The tables whose rows are authenticated, by name (`vauban audit remove-row --table`).</summary>
    public static IReadOnlyList<string> Tables { get; } = [.. AuthenticatedTable.All.Select(t => t.Name)];

    /// <summary>Told of each row refused for its MAC, once per row in this process, when its alert is committed (the server logs it).</summary>
    public event Action<UnauthenticRow>? Refused;

    internal byte[] Mac(AuthenticatedRow row) => row.Table.Mac(_keys.Rows, row);

    /// <summary>Whether the row carries the MAC of its values (compared in constant time).</summary>
    internal bool Authentic(AuthenticatedRow row) => row.Mac is { } mac && CryptographicOperations.FixedTimeEquals(Mac(row), mac);

    /// <summary>Whether the row may be believed, read outside any write. One whose MAC does not match is reported (once per row in
    /// this process): the caller treats it as if it did not exist.</summary>
    internal async ValueTask<bool> CheckAsync(AuthenticatedRow row, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(row);
        if (Authentic(row)) return true;
        var key = ReportKey(row);
        if (_reported.Count >= ReportedAtMost || !_reported.TryAdd(key, 0)) return false;
        try
        {
            await _database.WriteAsync(async scope =>
            {
                await ReportAsync(scope, row, cancellationToken);
                await scope.CommitAsync(cancellationToken);
            }, cancellationToken);
        }
        catch
        {
            _reported.TryRemove(key, out _); // told at the next attempt, when the alert can be written
            throw;
        }
        return false;
    }

    /// <summary>Whether the row may be believed, read where its report cannot be written at once: a break-the-glass grant, which the
    /// access policy reads during a person's write too (on SQLite a report written there would wait for the writer that write holds).
    /// One whose MAC does not match is reported as <see cref="CheckAsync(AuthenticatedRow, CancellationToken)"/> reports it — once per
    /// row in this process —, in the background (waited for by <see cref="FlushAsync"/>); the caller treats it as if it did not exist.</summary>
    internal bool Believe(AuthenticatedRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        if (Authentic(row)) return true;
        if (_reported.Count >= ReportedAtMost || _reported.ContainsKey(ReportKey(row))) return false;
        var task = Task.Run(async () =>
        {
            try
            {
                await CheckAsync(row, CancellationToken.None);
            }
            catch (Exception e) when (e is DbException or AuditUnavailableException or AuditIntegrityException or ObjectDisposedException)
            {
                // Not told now: the row is still refused, and told at its next reading.
            }
        });
        _reporting[task] = true;
        _ = task.ContinueWith(t => _reporting.TryRemove(t, out _), TaskScheduler.Default);
        return false;
    }

    private readonly ConcurrentDictionary<Task, bool> _reporting = new();

    /// <summary>Waits for the reports <see cref="Believe"/> left to the background (at the store's disposal; a test's, before it looks).</summary>
    public async Task FlushAsync()
    {
        foreach (var task in _reporting.Keys) await task;
    }

    /// <summary>As <see cref="CheckAsync(AuthenticatedRow, CancellationToken)"/>, for a row read in the caller's write: its report is
    /// raised in <paramref name="scope"/> (one writer at a time: another write would wait for this one) and told once the caller commits.</summary>
    internal async ValueTask<bool> CheckAsync(WriteScope scope, AuthenticatedRow row, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(row);
        if (Authentic(row)) return true;
        var key = ReportKey(row);
        if (_reported.Count >= ReportedAtMost || _reported.ContainsKey(key)) return false;
        await ReportAsync(scope, row, cancellationToken);
        scope.AfterCommit.Add(() => _reported.TryAdd(key, 0));
        return false;
    }

    /// <summary>Once per row: by table and key (a token's by its hash, kept in memory only, never shown).</summary>
    private static string ReportKey(AuthenticatedRow row) =>
        row.Table.Name + "/" + (row.KeyValue is byte[] bytes ? Convert.ToHexString(bytes) : Convert.ToString(row.KeyValue, System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>A row-integrity alert to the officer of the establishment the row names — to every establishment's when it names none
    /// that exists (a row moved to, or made for, an establishment that is not there), for the first such row of its table in this
    /// process —, in <paramref name="scope"/>; the server's log is told of every row once it commits.</summary>
    private async Task ReportAsync(WriteScope scope, AuthenticatedRow row, CancellationToken cancellationToken)
    {
        var refused = new UnauthenticRow(row.Table.Name, row.Table.Describe(row), row.TenantId, row.Table.Id(row));
        var detail = $"{refused.Row} in {refused.Table} does not carry the store's authentication: it was written or changed in the database, "
            + "not by Vauban (someone with write access to the database, or a copy restored). It is refused as if it did not exist; "
            + "`vauban audit verify` lists every such row.";
        var tenants = new List<long>();
        using (var list = scope.Command("SELECT id FROM tenants ORDER BY id"))
        using (var reader = await list.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) tenants.Add(reader.GetInt64(0));
        }
        scope.AfterCommit.Add(() => Refused?.Invoke(refused)); // the server's log, for every row
        if (refused.TenantId is { } named && tenants.Contains(named))
        {
            await _alerts.RaiseAsync(scope, named, KnownAlertKinds.RowIntegrity, "vauban", detail, cancellationToken);
            return;
        }
        // A row naming no establishment is everyone's concern, so every establishment's officer is told — once per table in this
        // process: rows made by the thousand would otherwise put thousands of alerts before every officer (revised 2026-12-07, L3).
        var table = row.Table.Name;
        if (_toldOfNoEstablishment.ContainsKey(table)) return;
        scope.AfterCommit.Add(() => _toldOfNoEstablishment.TryAdd(table, 0)); // not told if it rolls back: the next such row tells
        detail += $" It names no establishment that exists: this process tells no more of the rows of {table} that do (the server's log names each).";
        foreach (var tenant in tenants) await _alerts.RaiseAsync(scope, tenant, KnownAlertKinds.RowIntegrity, "vauban", detail, cancellationToken);
    }

    /// <summary>Adds the row's values and MAC to <paramref name="command"/> as parameters, and returns them as an INSERT's values, in
    /// the order of <see cref="AuthenticatedTable.ColumnList"/>: what is written is what the MAC covers.</summary>
    internal string Bind(DbCommand command, AuthenticatedRow row)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(row);
        var names = new List<string>(row.Values.Count + 1);
        for (var i = 0; i < row.Values.Count; i++)
        {
            command.With("row" + i, row.Values[i]);
            names.Add("@row" + i);
        }
        command.With("rowmac", Mac(row));
        names.Add("@rowmac");
        return string.Join(", ", names);
    }

    /// <summary>The row of <paramref name="table"/> whose key is <paramref name="key"/>, read in <paramref name="scope"/>; null when none.</summary>
    internal static async Task<AuthenticatedRow?> ReadAsync(WriteScope scope, AuthenticatedTable table, object key, CancellationToken cancellationToken) =>
        (await ReadAllAsync(scope, table, $"WHERE r.{table.Key} = @k", cancellationToken, ("k", key))).FirstOrDefault();

    /// <summary>Every row of <paramref name="table"/>, named <c>r</c>, that <paramref name="filter"/> selects (what follows
    /// <c>FROM table r</c>: a WHERE, an ORDER BY), read in <paramref name="scope"/>. Not checked: the caller holds each to its MAC
    /// before believing it.</summary>
    internal static Task<List<AuthenticatedRow>> ReadAllAsync(WriteScope scope, AuthenticatedTable table, string filter, CancellationToken cancellationToken,
        params (string Name, object Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(scope);
        return ReadAllAsync(scope.Command(""), table, "", filter, static (row, _, _) => row, cancellationToken, parameters);
    }

    /// <summary>The rows of <paramref name="table"/> that <paramref name="filter"/> selects (as <c>ReadAllAsync</c> selects them in a write),
    /// read on a connection of their own outside any write, that verify: each that does not is refused and reported
    /// (<see cref="CheckAsync(AuthenticatedRow, CancellationToken)"/>), every one of them.</summary>
    internal async Task<List<AuthenticatedRow>> ReadAuthenticAsync(AuthenticatedTable table, string filter, CancellationToken cancellationToken,
        params (string Name, object Value)[] parameters)
    {
        List<AuthenticatedRow> rows;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            rows = await ReadAllAsync(connection.Command(""), table, "", filter, static (row, _, _) => row, cancellationToken, parameters);
        }
        var authentic = new List<AuthenticatedRow>(rows.Count);
        foreach (var row in rows)
        {
            if (await CheckAsync(row, cancellationToken)) authentic.Add(row);
        }
        return authentic;
    }

    /// <summary>The one query of the rows of <paramref name="table"/> that <paramref name="filter"/> selects, on <paramref name="command"/>
    /// (an empty command of the caller's connection or scope, disposed here): each row, and <paramref name="extra"/> columns after it
    /// (a select list over <c>r</c>, or empty) that <paramref name="read"/> takes from the reader, the first at the index it is given.</summary>
    internal static async Task<List<T>> ReadAllAsync<T>(DbCommand command, AuthenticatedTable table, string extra, string filter,
        Func<AuthenticatedRow, DbDataReader, int, T> read, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(read);
        using (command)
        {
            command.CommandText = $"SELECT {table.Select("r")}{(extra.Length == 0 ? "" : ", " + extra)} FROM {table.Name} r {filter}";
            foreach (var (name, value) in parameters) command.With(name, value);
            var rows = new List<T>();
            var next = table.Columns.Count + 1; // past the authenticated columns and the MAC
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) rows.Add(read(table.Read(reader, 0), reader, next));
            return rows;
        }
    }

    /// <summary>
    /// Writes the columns of <paramref name="next"/> that differ from <paramref name="current"/> (the row as read in
    /// <paramref name="scope"/>), with the MAC of <paramref name="next"/> — only when <paramref name="current"/> was authentic: a
    /// change never makes an altered row authentic (it keeps the MAC it had, which still matches nothing). False when the row is no
    /// longer as it was read (gone, or changed by another process meanwhile).
    /// </summary>
    internal async Task<bool> RewriteAsync(WriteScope scope, AuthenticatedRow current, AuthenticatedRow next, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        var table = current.Table;
        if (next.Table != table || !Same(current.KeyValue, next.KeyValue)) throw new ArgumentException("A row is rewritten under its own key.", nameof(next));
        using var command = scope.Command("");
        var sets = new List<string>();
        for (var i = 0; i < table.Columns.Count; i++)
        {
            if (Same(current.Values[i], next.Values[i])) continue;
            sets.Add($"{table.Columns[i]} = @v{i}");
            command.With("v" + i, next.Values[i]);
        }
        sets.Add("mac = @mac");
        command.With("mac", Authentic(current) ? Mac(next) : current.Mac).With("k", current.KeyValue);
        if (current.Mac is { } old) command.With("old", old);
        command.CommandText = $"UPDATE {table.Name} SET {string.Join(", ", sets)} WHERE {table.Key} = @k AND mac " + (current.Mac is null ? "IS NULL" : "= @old");
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    private static bool Same(object? a, object? b) => a is byte[] x && b is byte[] y ? x.AsSpan().SequenceEqual(y) : Equals(a, b);

    /// <summary>The schema steps that add a table's MAC (ADR 0014): a migration that applies one authenticates the rows that exist.</summary>
    internal static readonly IReadOnlySet<int> UpgradeSteps = AuthenticatedTable.All.Select(t => t.Step).ToHashSet();

    /// <summary>
    /// At the upgrade that began authenticating them, in the migration's own transaction (<paramref name="scope"/>, which applied the
    /// steps <paramref name="steps"/>, some of <see cref="UpgradeSteps"/>): every row of a table those steps gave its MAC that carries
    /// none yet is authenticated as it stands — vouched for as the store holds it then (ADR 0014) —, expired tokens deleted rather than
    /// authenticated. Nothing else ever vouches for a row: a row written or changed in the database afterwards, its MAC set to NULL or
    /// not, stays refused, whatever a setting of the store says and however often a process starts (revised 2026-12-07: a mark in
    /// store_settings, which the first process to start acted on, could be set back to pending to have forged rows vouched for — an
    /// outside review) — and a later step's upgrade (23's, the grants') vouches for no row of the tables an earlier step authenticated.
    /// </summary>
    internal static async Task AuthenticateAtUpgradeAsync(WriteScope scope, RowKey key, IReadOnlySet<int> steps, long nowMs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Contains(AuthenticatedTable.AccessTokens.Step))
        {
            using var expired = scope.Command("DELETE FROM access_tokens WHERE expires_at < @now").With("now", nowMs);
            await expired.ExecuteNonQueryAsync(cancellationToken);
        }
        foreach (var table in AuthenticatedTable.All.Where(t => steps.Contains(t.Step)))
        {
            foreach (var row in await ReadAllAsync(scope, table, "WHERE r.mac IS NULL", cancellationToken))
            {
                using var update = scope.Command($"UPDATE {table.Name} SET mac = @m WHERE {table.Key} = @k AND mac IS NULL").With("m", table.Mac(key, row)).With("k", row.KeyValue);
                await update.ExecuteNonQueryAsync(cancellationToken);
            }
        }
    }

    /// <summary>Whether the store holds any row the row-authentication key authenticates (read in <paramref name="scope"/>).</summary>
    internal static async Task<bool> AnyRowAsync(WriteScope scope, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        foreach (var table in AuthenticatedTable.All)
        {
            using var any = scope.Command($"SELECT 1 FROM {table.Name} LIMIT 1");
            if (await any.ExecuteScalarAsync(cancellationToken) is not null) return true;
        }
        return false;
    }

    /// <summary>Holds every row that grants access to its MAC: of the establishment <paramref name="tenantId"/>, or of the whole store
    /// when null (rows naming no establishment included). Returns how many were checked, and those whose MAC does not match (or that
    /// have none), by table then key. Reports nothing: the caller says them (`vauban audit verify`).</summary>
    public async Task<(long Checked, IReadOnlyList<UnauthenticRow> Unauthentic)> VerifyAsync(long? tenantId, CancellationToken cancellationToken)
    {
        var found = new List<UnauthenticRow>();
        long count = 0;
        await using var connection = await _database.OpenAsync(cancellationToken);
        foreach (var table in AuthenticatedTable.All)
        {
            using var command = connection.Command($"SELECT {table.Select("r")} FROM {table.Name} r" + (tenantId is null ? "" : " WHERE r.tenant_id = @t") + $" ORDER BY r.{table.Key}");
            if (tenantId is { } t) command.With("t", t);
            command.CommandTimeout = 0;
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var row = table.Read(reader, 0);
                count++;
                if (!Authentic(row)) found.Add(new UnauthenticRow(table.Name, table.Describe(row), row.TenantId, table.Id(row)));
            }
        }
        return (count, found);
    }

    /// <summary>
    /// Removes the rows of <paramref name="tableName"/> that fail their check and that `vauban audit verify` names by <paramref name="id"/>
    /// (<see cref="UnauthenticRow.Id"/>) — of <paramref name="administrator"/>'s establishment, or naming none that exists —, as that
    /// administrator's act, recorded on the establishment's chain in the same transaction (no entry, nothing removed). The only way
    /// to remove such a row short of SQL: while it is there, an account's e-mail address cannot be given to a new account. A row that
    /// verifies is never removed here (Vauban wrote it: the verbs that act on it revoke, lock or reset it), and nothing is removed
    /// then; nor when no row has that id.
    /// </summary>
    public async Task<RowRemoval> RemoveUnauthenticAsync(AccessContext administrator, string tableName, string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(administrator);
        ArgumentNullException.ThrowIfNull(id);
        var table = AuthenticatedTable.All.FirstOrDefault(t => t.Name == tableName)
            ?? throw new ArgumentException($"--table: '{tableName}' is not a table of rows that grant access (one of: {string.Join(", ", Tables)}).", nameof(tableName));
        var tenant = administrator.Tenant;
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        // Every row of the establishment (or of none), matched here by the id a report shows: a token's is computed from its hash,
        // and an id no Vauban writes is shown, and matched, as "(unreadable)".
        var named = (await ReadAllAsync(scope, table, "WHERE r.tenant_id = @t OR r.tenant_id IS NULL OR r.tenant_id NOT IN (SELECT id FROM tenants)", cancellationToken,
            ("t", tenant.Id))).Where(row => table.Id(row) == id).ToList();
        if (named.Count == 0) throw new ArgumentException($"No row of {table.Name} in {tenant.Name} is named '{id}' (the id `vauban audit verify` names it by).", nameof(id));
        var forged = named.Where(row => !Authentic(row)).ToList();
        if (forged.Count == 0)
        {
            throw new InvalidOperationException($"{table.Describe(named[0])} in {table.Name} carries the store's authentication (Vauban wrote it): it is not removed here. "
                + "Only a row that fails its check, as `vauban audit verify` lists it, is; nothing was removed.");
        }
        var removed = new List<string>();
        foreach (var row in forged)
        {
            using var delete = scope.Command($"DELETE FROM {table.Name} WHERE {table.Key} = @k AND mac " + (row.Mac is null ? "IS NULL" : "= @m")).With("k", row.KeyValue);
            if (row.Mac is { } mac) delete.With("m", mac);
            if (await delete.ExecuteNonQueryAsync(cancellationToken) != 1) throw new InvalidOperationException($"{table.Describe(row)} in {table.Name} changed meanwhile: nothing was removed; run the command again.");
            removed.Add(table.Describe(row));
            var key = ReportKey(row);
            scope.AfterCommit.Add(() => _reported.TryRemove(key, out _)); // a row written there again is told again
        }
        await _audit.AppendAsync(scope, administrator, AuditAction.Administration, AuditOutcome.Success, null,
            [new AuditedRecord($"row:{table.Name}/{id}", null, null)], cancellationToken,
            $"audit remove-row: {string.Join("; ", removed)} in {table.Name}, failing its check, removed");
        await scope.CommitAsync(cancellationToken);
        return new RowRemoval(removed);
    }
}
