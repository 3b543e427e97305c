// Establishments (hospital, clinic, laboratory, practice). Each is a tenant with its own keys; no
// record, index or token crosses from one to another.
using System.Collections.Concurrent;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Storage;

namespace Vauban.Access;

public sealed class Tenants
{
    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly AuditTrail _audit;
    private readonly ConcurrentDictionary<long, Tenant> _byId = new();

    internal Tenants(StoreDatabase database, KeyRing keys, AuditTrail audit)
    {
        _database = database;
        _keys = keys;
        _audit = audit;
    }

    public static bool IsValidName(string? name) =>
        !string.IsNullOrWhiteSpace(name) && name.Length <= 100 && name.All(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.');

    public Task<Tenant> AddAsync(string name, CancellationToken cancellationToken) => AddAsync(name, null, cancellationToken);

    /// <summary>Creates the establishment as an administrative act of <paramref name="administrator"/> (given the new tenant):
    /// the act is the first entry of the tenant's own chain, written in the transaction that creates the tenant, its keys and
    /// its chain. If the entry cannot be written, there is no tenant (fail closed); no other chain could hold it, since
    /// an entry's principal and patient are indexed and sealed under the tenant's keys.</summary>
    public async Task<Tenant> AddAsync(string name, Func<Tenant, AccessContext>? administrator, CancellationToken cancellationToken)
    {
        if (!IsValidName(name))
        {
            throw new ArgumentException("A tenant name is 1 to 100 letters, digits, '-', '_' or '.'.", nameof(name));
        }
        if (await FindAsync(name, cancellationToken) is not null)
        {
            throw new InvalidOperationException($"The tenant '{name}' already exists.");
        }
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using var insert = scope.Command("INSERT INTO tenants (name, created_at) VALUES (@n, @c) RETURNING id")
            .With("n", name).With("c", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var id = await insert.ScalarLongAsync(cancellationToken);
        using var keys = await _keys.CreateTenantKeysAsync(scope, id, cancellationToken);
        await AuditTrail.CreateHeadAsync(scope, id, cancellationToken);
        var tenant = new Tenant(id, name);
        if (administrator is not null)
        {
            await _audit.AppendAsync(scope, administrator(tenant), AuditAction.Administration, AuditOutcome.Success, null,
                [new AuditedRecord("tenant:" + name, null, null)], cancellationToken, "tenants add", keys);
        }
        await scope.CommitAsync(cancellationToken);
        return _byId[id] = tenant;
    }

    public async Task<Tenant?> FindAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT id, name FROM tenants WHERE name = @n").With("n", name);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new Tenant(reader.GetInt64(0), reader.GetString(1)) : null;
    }

    public async ValueTask<Tenant?> FindAsync(long id, CancellationToken cancellationToken)
    {
        if (_byId.TryGetValue(id, out var cached)) return cached;
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT id, name FROM tenants WHERE id = @i").With("i", id);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        return _byId[id] = new Tenant(reader.GetInt64(0), reader.GetString(1));
    }

    public async Task<IReadOnlyList<Tenant>> ListAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT id, name FROM tenants ORDER BY name");
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var tenants = new List<Tenant>();
        while (await reader.ReadAsync(cancellationToken)) tenants.Add(new Tenant(reader.GetInt64(0), reader.GetString(1)));
        return tenants;
    }
}
