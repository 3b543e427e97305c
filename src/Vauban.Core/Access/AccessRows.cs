// Holds the rows that grant access to their MACs (ADR 0014): every read that decides access checks a row's MAC before it is
// believed, and a row whose MAC does not match is treated as if it did not exist and reported once per row and process (a
// row-integrity alert to the establishment's officer, and the server's log). Every write of such a row writes its MAC with it;
// an upgraded store's rows are authenticated once; `vauban audit verify` lists those that fail.
using System.Collections.Concurrent;
using System.Data.Common;
using System.Security.Cryptography;
using Vauban.Crypto;
using Vauban.Storage;

namespace Vauban.Access;

/// <summary>A row that grants access whose MAC does not match: its table, the row in words (its non-secret id: never a token or
/// secret hash), and the establishment it names (null when none).</summary>
public sealed record UnauthenticRow(string Table, string Row, long? TenantId);

public sealed class AccessRows
{
    /// <summary>Rows reported at most by one process: past it, rows are still refused, no longer reported one by one.</summary>
    private const int ReportedAtMost = 10_000;

    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly SecurityAlerts _alerts;
    private readonly ConcurrentDictionary<string, byte> _reported = new(StringComparer.Ordinal);

    internal AccessRows(StoreDatabase database, KeyRing keys, SecurityAlerts alerts)
    {
        _database = database;
        _keys = keys;
        _alerts = alerts;
    }

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
    /// that exists (a row moved to, or made for, an establishment that is not there) —, in <paramref name="scope"/>; the server's log
    /// is told once it commits.</summary>
    private async Task ReportAsync(WriteScope scope, AuthenticatedRow row, CancellationToken cancellationToken)
    {
        var refused = new UnauthenticRow(row.Table.Name, row.Table.Describe(row), row.TenantId);
        var detail = $"{refused.Row} in {refused.Table} does not carry the store's authentication: it was written or changed in the database, "
            + "not by Vauban (someone with write access to the database, or a copy restored). It is refused as if it did not exist; "
            + "`vauban audit verify` lists every such row.";
        var tenants = new List<long>();
        using (var list = scope.Command("SELECT id FROM tenants ORDER BY id"))
        using (var reader = await list.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) tenants.Add(reader.GetInt64(0));
        }
        foreach (var tenant in refused.TenantId is { } named && tenants.Contains(named) ? [named] : tenants)
        {
            await _alerts.RaiseAsync(scope, tenant, KnownAlertKinds.RowIntegrity, "vauban", detail, cancellationToken);
        }
        scope.AfterCommit.Add(() => Refused?.Invoke(refused));
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
    internal static async Task<AuthenticatedRow?> ReadAsync(WriteScope scope, AuthenticatedTable table, object key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        using var command = scope.Command($"SELECT {table.Select("r")} FROM {table.Name} r WHERE r.{table.Key} = @k").With("k", key);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? table.Read(reader, 0) : null;
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
    internal static readonly IReadOnlySet<int> UpgradeSteps = new HashSet<int> { 21, 22 };

    /// <summary>
    /// At the upgrade that began authenticating them, in the migration's own transaction (<paramref name="scope"/>, which applied a
    /// step of <see cref="UpgradeSteps"/>): every row that grants access and carries no MAC yet is authenticated as it stands —
    /// vouched for as the store holds it then (ADR 0014) —, expired tokens deleted rather than authenticated. Nothing else ever
    /// vouches for a row: a row written or changed in the database afterwards, its MAC set to NULL or not, stays refused, whatever
    /// a setting of the store says and however often a process starts (revised 2026-12-07: a mark in store_settings, which the
    /// first process to start acted on, could be set back to pending to have forged rows vouched for — an outside review).
    /// </summary>
    internal static async Task AuthenticateAtUpgradeAsync(WriteScope scope, RowKey key, long nowMs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(key);
        using (var expired = scope.Command("DELETE FROM access_tokens WHERE expires_at < @now").With("now", nowMs))
        {
            await expired.ExecuteNonQueryAsync(cancellationToken);
        }
        foreach (var table in AuthenticatedTable.All)
        {
            var rows = new List<AuthenticatedRow>();
            using (var select = scope.Command($"SELECT {table.Select("r")} FROM {table.Name} r WHERE r.mac IS NULL"))
            using (var reader = await select.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken)) rows.Add(table.Read(reader, 0));
            }
            foreach (var row in rows)
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
                if (!Authentic(row)) found.Add(new UnauthenticRow(table.Name, table.Describe(row), row.TenantId));
            }
        }
        return (count, found);
    }
}
