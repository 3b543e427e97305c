// The key ring: tenant keys are created with the tenant, stored wrapped by the master key, and
// unwrapped once into memory when first used.
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Vauban.Storage;

namespace Vauban.Crypto;

internal sealed class KeyRing : IDisposable
{
    private const string DataPurpose = "data";
    private const string IndexPurpose = "index";

    private readonly StoreDatabase _database;
    private readonly MasterKey _master;
    private readonly ConcurrentDictionary<long, TenantKeys> _cache = new();

    public KeyRing(StoreDatabase database, MasterKey master)
    {
        _database = database;
        _master = master;
    }

    public MasterKey Master => _master;

    /// <summary>Creates the first key version of a new tenant inside the caller's transaction.</summary>
    public async Task CreateTenantKeysAsync(WriteScope scope, long tenantId, CancellationToken cancellationToken)
    {
        foreach (var purpose in new[] { DataPurpose, IndexPurpose })
        {
            var key = RandomNumberGenerator.GetBytes(32);
            var wrapped = KeyWrap.Wrap(_master, tenantId, purpose, 1, key);
            CryptographicOperations.ZeroMemory(key);
            using var command = scope.Command("INSERT INTO tenant_keys (tenant_id, purpose, key_version, wrapped, created_at) VALUES (@t, @p, 1, @w, @c)")
                .With("t", tenantId).With("p", purpose).With("w", wrapped).With("c", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    public async ValueTask<TenantKeys> ForTenantAsync(long tenantId, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(tenantId, out var keys)) return keys;
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command(
            "SELECT purpose, key_version, wrapped FROM tenant_keys WHERE tenant_id = @t ORDER BY key_version DESC").With("t", tenantId);
        byte[]? data = null, index = null;
        var version = 0;
        using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var purpose = reader.GetString(0);
                var keyVersion = reader.GetInt32(1);
                var wrapped = (byte[])reader.GetValue(2);
                if (purpose == DataPurpose && data is null) { data = KeyWrap.Unwrap(_master, tenantId, purpose, keyVersion, wrapped); version = keyVersion; }
                if (purpose == IndexPurpose && index is null) index = KeyWrap.Unwrap(_master, tenantId, purpose, keyVersion, wrapped);
            }
        }
        if (data is null || index is null) throw new InvalidOperationException($"Tenant {tenantId} has no keys.");
        var created = new TenantKeys(tenantId, version, data, index);
        if (_cache.TryAdd(tenantId, created)) return created;
        created.Dispose();
        return _cache[tenantId];
    }

    public void Dispose()
    {
        foreach (var keys in _cache.Values) keys.Dispose();
        _cache.Clear();
    }
}
