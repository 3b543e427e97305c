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
    private const string AuditSigningPurpose = "audit-signing";

    private readonly StoreDatabase _database;
    // Replaced once by a rotation (RotateMasterAsync): this process goes on with the key the store now takes.
    private volatile MasterKey _master;
    private readonly ConcurrentDictionary<long, Held> _cache = new();
    private readonly ConcurrentDictionary<long, AuditSigningKey> _signers = new();
    // Stamps a key's created_at: the store's clock, as every other stamp of the store.
    private readonly TimeProvider _time;

    public KeyRing(StoreDatabase database, MasterKey master, TimeProvider time)
    {
        _database = database;
        _master = master;
        _time = time;
    }

    public MasterKey Master => _master;

    /// <summary>Creates the first key version of a new tenant inside the caller's transaction. The keys are returned, not
    /// cached: until the transaction commits nobody else may use them (a rolled-back tenant's id may be given again), but the
    /// tenant's first audit entry, in that transaction, is sealed and signed with them. The caller disposes them.</summary>
    public async Task<CreatedTenantKeys> CreateTenantKeysAsync(WriteScope scope, long tenantId, CancellationToken cancellationToken)
    {
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var purpose in new[] { DataPurpose, IndexPurpose })
        {
            var key = RandomNumberGenerator.GetBytes(32);
            keys[purpose] = key;
            var wrapped = KeyWrap.Wrap(_master, tenantId, purpose, 1, key);
            using var command = scope.Command("INSERT INTO tenant_keys (tenant_id, purpose, key_version, wrapped, created_at) VALUES (@t, @p, 1, @w, @c)")
                .With("t", tenantId).With("p", purpose).With("w", wrapped).With("c", _time.GetUtcNow().ToUnixTimeMilliseconds());
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        var signer = await CreateAuditSigningKeyAsync(scope, tenantId, cancellationToken);
        return new CreatedTenantKeys(new TenantKeys(tenantId, 1, keys[DataPurpose], keys[IndexPurpose]), new AuditSigningKey(1, signer));
    }

    /// <summary>Refuses a master key that is not the store's (at start, before anything is written): one wrapped key is
    /// unwrapped. Without this check a store opened with another key file — a typo, a default path — took new
    /// establishments and signing keys wrapped under that key, beside the old ones, and only failed at the first read.
    /// Runs before the store is migrated too (a store older than this Vauban is not upgraded under a key that is not its own):
    /// then the table may not exist yet (a new store).</summary>
    public async Task CheckMasterKeyAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        if (!await TableExistsAsync(connection, "tenant_keys", null, cancellationToken)) return;
        if (await BoundFingerprintAsync(connection, cancellationToken) is { } bound && bound != _master.Fingerprint) throw OtherKey(bound);
        using var command = connection.Command("SELECT tenant_id, purpose, key_version, wrapped FROM tenant_keys ORDER BY tenant_id, purpose, key_version LIMIT 1");
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return; // a new store: this key becomes its key
        CryptographicOperations.ZeroMemory(KeyWrap.Unwrap(_master, reader.GetInt64(0), reader.GetString(1), reader.GetInt32(2), (byte[])reader.GetValue(3)));
    }

    private const string BindingSetting = "master_key_fingerprint";

    /// <summary>
    /// Binds the store to the master key it was opened with, once <see cref="CheckMasterKeyAsync"/> has accepted it (after the
    /// schema is in place): its fingerprint in store_settings, written by the first open. A new store was bound only by its
    /// first establishment's keys, so a store `serve` had made with the key beside it took another key at its first `tenants
    /// add` (a stray $VAUBAN_MASTER_KEY_FILE), and from then on its own key was refused as "another master key".
    /// </summary>
    public async Task BindMasterKeyAsync(CancellationToken cancellationToken)
    {
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            // Bound already (every open but a new store's first): nothing to write.
            if (await BoundFingerprintAsync(connection, cancellationToken) is { } already)
            {
                if (already != _master.Fingerprint) throw OtherKey(already);
                return;
            }
        }
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using (var insert = scope.Command("INSERT INTO store_settings (name, value) VALUES (@n, @v) ON CONFLICT (name) DO NOTHING")
            .With("n", BindingSetting).With("v", _master.Fingerprint))
        {
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        // Two processes opening a new store at once with different keys: the first to commit binds it, the other is refused.
        if (await BoundFingerprintAsync(scope.Connection, cancellationToken, scope.Transaction) is { } bound && bound != _master.Fingerprint) throw OtherKey(bound);
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Re-wraps every tenant key of the store (data, index and audit signing keys, every version) under <paramref name="next"/>,
    /// and binds the store to it, in one transaction: the store takes either key, never a mixture. The tenant keys themselves,
    /// and so every record, index and audit entry, stay as they are. Under the lock `tenants add` takes, so that no
    /// establishment is created meanwhile with keys wrapped under the previous master key. Returns how many keys were re-wrapped.
    /// A failure once the commit was sent is a <see cref="MasterKeyRotationUnsettledException"/>: only another failure proves
    /// that the store kept its key.
    /// </summary>
    /// <param name="audit">Appends the act's audit entries in the transaction, under the lock (the establishments it lists are
    /// exactly those re-wrapped), before the keys change (their keys and signing keys are opened under the current master key).</param>
    public async Task<int> RotateMasterAsync(MasterKey next, Func<WriteScope, Task> audit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(audit);
        var current = _master;
        if (next.Fingerprint == current.Fingerprint) throw new ArgumentException("The new master key is the store's current one.", nameof(next));
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        await _database.LockAsync(scope, "tenants add", cancellationToken);
        // Another rotation (another process, or this one's twice at once) committed while this one waited for the lock.
        if (await BoundFingerprintAsync(scope.Connection, cancellationToken, scope.Transaction) is { } bound && bound != current.Fingerprint)
        {
            throw Rotated(bound, "This rotation did not happen: nothing was changed. Open the store with its new key to rotate it again.");
        }
        // The act on the chains, with it: an audit log that cannot be written leaves the key as it was.
        await audit(scope);
        var rewrapped = new List<(long Tenant, string Purpose, int Version, byte[] Wrapped)>();
        using (var select = scope.Command("SELECT tenant_id, purpose, key_version, wrapped FROM tenant_keys"))
        using (var reader = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var (tenant, purpose, version) = (reader.GetInt64(0), reader.GetString(1), reader.GetInt32(2));
                var key = KeyWrap.Unwrap(current, tenant, purpose, version, (byte[])reader.GetValue(3));
                try
                {
                    rewrapped.Add((tenant, purpose, version, KeyWrap.Wrap(next, tenant, purpose, version, key)));
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(key);
                }
            }
        }
        foreach (var (tenant, purpose, version, wrapped) in rewrapped)
        {
            using var update = scope.Command("UPDATE tenant_keys SET wrapped = @w WHERE tenant_id = @t AND purpose = @p AND key_version = @v")
                .With("w", wrapped).With("t", tenant).With("p", purpose).With("v", version);
            await update.ExecuteNonQueryAsync(cancellationToken);
        }
        // The store's own keys too (the row-authentication key): the rows they authenticate stay valid across the rotation.
        await RewrapStoreKeysAsync(scope, current, next, cancellationToken);
        using (var bind = scope.Command("INSERT INTO store_settings (name, value) VALUES (@n, @v) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .With("n", BindingSetting).With("v", next.Fingerprint))
        {
            await bind.ExecuteNonQueryAsync(cancellationToken);
        }
        _rotatingTo = next;
        try
        {
            await scope.CommitAsync(cancellationToken);
        }
        catch (Exception) when (!scope.CommitSent)
        {
            _rotatingTo = null; // provably not committed (an audit chain that could not be written)
            throw;
        }
        catch (Exception e)
        {
            throw new MasterKeyRotationUnsettledException(
                $"The rotation failed once its commit had been sent ({e.Message}): whether the store now takes the new master key (fingerprint {next.Fingerprint}) "
                + $"or still its previous one ({current.Fingerprint}) is not known.", e);
        }
        _master = next;
        return rewrapped.Count;
    }

    private static async Task RewrapStoreKeysAsync(WriteScope scope, MasterKey current, MasterKey next, CancellationToken cancellationToken)
    {
        var rewrapped = new List<(string Purpose, int Version, byte[] Wrapped)>();
        using (var select = scope.Command("SELECT purpose, key_version, wrapped FROM store_keys"))
        using (var reader = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var (purpose, version) = (reader.GetString(0), reader.GetInt32(1));
                var key = KeyWrap.UnwrapStoreKey(current, purpose, version, (byte[])reader.GetValue(2));
                try
                {
                    rewrapped.Add((purpose, version, KeyWrap.WrapStoreKey(next, purpose, version, key)));
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(key);
                }
            }
        }
        foreach (var (purpose, version, wrapped) in rewrapped)
        {
            using var update = scope.Command("UPDATE store_keys SET wrapped = @w WHERE purpose = @p AND key_version = @v")
                .With("w", wrapped).With("p", purpose).With("v", version);
            await update.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary>The store's row-authentication key (ADR 0014), loaded by <see cref="EnsureRowKeyAsync"/> when the store opens.</summary>
    public RowKey Rows => _rows ?? throw new InvalidOperationException("The row-authentication key is loaded when the store opens.");

    private RowKey? _rows;

    /// <summary>
    /// Loads the store's row-authentication key (ADR 0014). The key is made by the migration that adds it, in its transaction
    /// (<see cref="MakeRowKeyInAsync"/>); a store without one is made one here only while it holds no row the key authenticates
    /// (<paramref name="holdsRows"/>: a store whose schema was made without the master key, as the tests' template). A store that
    /// holds such rows and no key had its key's row deleted: it is refused, rather than given a new key (every row then refused,
    /// staff accounts with them, and nothing to repair them through) — the key is restored from a backup.
    /// </summary>
    public async Task EnsureRowKeyAsync(Func<WriteScope, Task<bool>> holdsRows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(holdsRows);
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            if (await StoredRowKeyAsync(connection, null, cancellationToken) is { } wrapped)
            {
                Hold(wrapped);
                return;
            }
        }
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        if (await holdsRows(scope))
        {
            throw new VaubanConfigurationException("The store's row-authentication key is missing from the table store_keys, while the store holds "
                + "clients, tokens, sessions or staff accounts it authenticated: its row was deleted in the database. Vauban does not make a new key "
                + "(it would refuse every one of those rows). Restore the store_keys row from a backup of this store.");
        }
        await MakeRowKeyInAsync(scope, cancellationToken);
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Makes the store's row-authentication key in <paramref name="scope"/> unless it has one, and holds it: 32 random bytes
    /// wrapped under the master key, inserted under the lock a master-key rotation takes (a key wrapped under the previous master
    /// key beside a rotation would stay so) and never over one another process made meanwhile.
    /// </summary>
    public async Task<RowKey> MakeRowKeyInAsync(WriteScope scope, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        await _database.LockAsync(scope, "tenants add", cancellationToken);
        await RefuseIfRotatedAsync(scope, cancellationToken);
        if (await StoredRowKeyAsync(scope.Connection, scope.Transaction, cancellationToken) is not { } wrapped)
        {
            var key = RandomNumberGenerator.GetBytes(32);
            try
            {
                using var insert = scope.Command("INSERT INTO store_keys (purpose, key_version, wrapped, created_at) VALUES (@p, 1, @w, @c) ON CONFLICT DO NOTHING")
                    .With("p", RowKey.Purpose).With("w", KeyWrap.WrapStoreKey(_master, RowKey.Purpose, 1, key)).With("c", _time.GetUtcNow().ToUnixTimeMilliseconds());
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(key);
            }
            wrapped = await StoredRowKeyAsync(scope.Connection, scope.Transaction, cancellationToken)
                ?? throw new InvalidOperationException("The row-authentication key was not stored.");
        }
        return Hold(wrapped);
    }

    private RowKey Hold(byte[] wrapped)
    {
        var key = new RowKey(KeyWrap.UnwrapStoreKey(_master, RowKey.Purpose, 1, wrapped));
        _rows?.Dispose();
        _rows = key;
        return key;
    }

    private static async Task<byte[]?> StoredRowKeyAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction? transaction,
        CancellationToken cancellationToken)
    {
        using var command = connection.Command("SELECT wrapped FROM store_keys WHERE purpose = @p AND key_version = 1").With("p", RowKey.Purpose);
        command.Transaction = transaction;
        return await command.ExecuteScalarAsync(cancellationToken) as byte[];
    }

    /// <summary>
    /// Refuses to write anything wrapped under this process's master key once another process has rotated the store's (read in
    /// <paramref name="scope"/>, whose caller holds the "tenants add" lock that a rotation takes too, so the binding cannot change
    /// until it commits). Without it a server or `tenants add` still running with the previous key wrapped a new establishment's
    /// keys under it, beside keys wrapped under the new one: an establishment the store's key could not open.
    /// </summary>
    public async Task RefuseIfRotatedAsync(WriteScope scope, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var bound = await BoundFingerprintAsync(scope.Connection, cancellationToken, scope.Transaction);
        if (bound is null || bound == _master.Fingerprint) return;
        // This process's own rotation, whose commit was acknowledged to the database but not yet taken here.
        if (_rotatingTo is { } next && next.Fingerprint == bound)
        {
            _master = next;
            return;
        }
        throw Rotated(bound, "Nothing was written. Restart this process with the store's new master key (--master-key-file, $VAUBAN_MASTER_KEY_FILE or $VAUBAN_MASTER_KEY).");
    }

    // The key a rotation of this process is committing (RefuseIfRotatedAsync).
    private volatile MasterKey? _rotatingTo;

    private VaubanConfigurationException Rotated(string bound, string consequence)
    {
        Interlocked.CompareExchange(ref _rotatedAwayTo, bound, null);
        return new($"The store's master key was rotated meanwhile: the store now takes the key with fingerprint {bound}, and this process holds the previous one "
            + $"({_master.Source}, fingerprint {_master.Fingerprint}). {consequence}")
        {
            OtherMasterKey = true,
            MasterKeyRotated = true,
        };
    }

    // The fingerprint of the key the store was rotated to while this process holds the previous one: set once, when first found,
    // and for good (a rotation always makes a new key: the store never takes this process's key again).
    private string? _rotatedAwayTo;
    private int _rotationTold;

    /// <summary>What this process can no longer do since the store's master key was rotated by another process (it names
    /// fingerprints, never key material), or null while the store takes the key it holds.</summary>
    public string? RotatedAway => Volatile.Read(ref _rotatedAwayTo) is { } bound
        ? $"The store's master key was rotated: the store now takes the key with fingerprint {bound}, and this process holds the previous one "
            + $"({_master.Source}, fingerprint {_master.Fingerprint}). What needs a key wrapped under the new one (an establishment's newer data key, "
            + "an establishment this process had not opened) cannot be opened; what the keys it holds open is still served. Restart this process with "
            + "the store's new master key (--master-key-file, $VAUBAN_MASTER_KEY_FILE or $VAUBAN_MASTER_KEY)."
        : null;

    /// <summary>Whether the store's master key was rotated away from this process's, read afresh from the store (once found, not
    /// asked again): a server's health check, which finds it before any request needs a key the process cannot open.</summary>
    public async Task<string?> CheckRotatedAwayAsync(CancellationToken cancellationToken)
    {
        if (RotatedAway is { } known) return known;
        var bound = await _database.LookUpAsync((connection, ct) => BoundFingerprintAsync(connection, ct), cancellationToken);
        if (bound is null || bound == _master.Fingerprint || _rotatingTo?.Fingerprint == bound) return null;
        Interlocked.CompareExchange(ref _rotatedAwayTo, bound, null);
        return RotatedAway;
    }

    /// <summary>True for the first caller only once the rotation is found: whoever tells the operator does so once.</summary>
    public bool FirstToTellRotatedAway() => RotatedAway is not null && Interlocked.Exchange(ref _rotationTold, 1) == 0;

    private VaubanConfigurationException RotatedAwayFor(long tenantId, string bound) =>
        Rotated(bound, $"It cannot open the keys of establishment {tenantId}, wrapped under the new key. Restart this process with the store's new master key "
            + "(--master-key-file, $VAUBAN_MASTER_KEY_FILE or $VAUBAN_MASTER_KEY).");

    private VaubanConfigurationException OtherKey(string bound) => new(
        $"This store was made with another master key (fingerprint {bound}) than the one given ({_master.Source}, fingerprint {_master.Fingerprint}). "
        + "Give the store's own key (--master-key-file, $VAUBAN_MASTER_KEY_FILE or $VAUBAN_MASTER_KEY, which takes precedence).")
    {
        OtherMasterKey = true,
    };

    /// <summary>The fingerprint of the master key the store is bound to now, read afresh from the database (after a rotation
    /// that failed, whether it was committed).</summary>
    public async Task<string?> StoredBindingAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        return await BoundFingerprintAsync(connection, cancellationToken);
    }

    /// <summary>Whether the store on <paramref name="connection"/> was made with a master key: bound to one, or holding a key
    /// wrapped under one (a store from before the binding); read only. False for a store no key was given yet (none, or not yet
    /// migrated that far): only such a store may be given a new master key.</summary>
    public static async Task<bool> HasMasterKeyAsync(System.Data.Common.DbConnection connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (await BoundFingerprintAsync(connection, cancellationToken) is not null) return true;
        if (!await TableExistsAsync(connection, "tenant_keys", null, cancellationToken)) return false;
        using var command = connection.Command("SELECT count(*) FROM (SELECT 1 FROM tenant_keys LIMIT 1) k");
        return await command.ScalarLongAsync(cancellationToken) > 0;
    }

    /// <summary>Whether the store has the table yet (these checks also run before it is migrated, on a store that may be new).</summary>
    private static async Task<bool> TableExistsAsync(System.Data.Common.DbConnection connection, string table, System.Data.Common.DbTransaction? transaction, CancellationToken cancellationToken)
    {
        using var exists = connection.Command(connection is Npgsql.NpgsqlConnection
            ? "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = @t"
            : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = @t").With("t", table);
        exists.Transaction = transaction;
        return await exists.ScalarLongAsync(cancellationToken) > 0;
    }

    // A tenant key this process opens for the first time: one that its master key cannot unwrap because another process
    // rotated the store's since this one started is said to be that (restart with the new key), not "another store's key".
    private async Task<byte[]> UnwrapAsync(System.Data.Common.DbConnection connection, long tenantId, string purpose, int version, byte[] wrapped,
        CancellationToken cancellationToken)
    {
        try
        {
            return KeyWrap.Unwrap(_master, tenantId, purpose, version, wrapped);
        }
        catch (VaubanConfigurationException e) when (e.OtherMasterKey)
        {
            var bound = await BoundFingerprintAsync(connection, cancellationToken);
            if (bound is null || bound == _master.Fingerprint) throw;
            // This process's own rotation, committed but not yet taken here.
            if (_rotatingTo is { } next && next.Fingerprint == bound) return KeyWrap.Unwrap(next, tenantId, purpose, version, wrapped);
            throw RotatedAwayFor(tenantId, bound);
        }
    }

    /// <summary>The fingerprint the store is bound to, or null (a store from before the binding, or not yet migrated).</summary>
    private static async Task<string?> BoundFingerprintAsync(System.Data.Common.DbConnection connection, CancellationToken cancellationToken, System.Data.Common.DbTransaction? transaction = null)
    {
        if (!await TableExistsAsync(connection, "store_settings", transaction, cancellationToken)) return null;
        using var command = connection.Command("SELECT value FROM store_settings WHERE name = @n").With("n", BindingSetting);
        command.Transaction = transaction;
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <summary>Gives every tenant created before the audit log its checkpoint signing key (at start; idempotent, also
    /// when two processes start at once).</summary>
    public async Task EnsureAuditSigningKeysAsync(CancellationToken cancellationToken)
    {
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        var missing = new List<long>();
        using (var command = scope.Command($"SELECT id FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM tenant_keys k WHERE k.tenant_id = t.id AND k.purpose = '{AuditSigningPurpose}')"))
        using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) missing.Add(reader.GetInt64(0));
        }
        if (missing.Count == 0) return;
        // Under the lock a rotation takes (only when there is something to write: not every start waits for it), and not under a
        // master key the store no longer takes. A key another process gave meanwhile stays (ON CONFLICT DO NOTHING).
        await _database.LockAsync(scope, "tenants add", cancellationToken);
        await RefuseIfRotatedAsync(scope, cancellationToken);
        foreach (var tenantId in missing) (await CreateAuditSigningKeyAsync(scope, tenantId, cancellationToken)).Dispose();
        await scope.CommitAsync(cancellationToken);
    }

    private async Task<ECDsa> CreateAuditSigningKeyAsync(WriteScope scope, long tenantId, CancellationToken cancellationToken)
    {
        var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            var privateKey = ecdsa.ExportPkcs8PrivateKey();
            var wrapped = KeyWrap.Wrap(_master, tenantId, AuditSigningPurpose, 1, privateKey);
            CryptographicOperations.ZeroMemory(privateKey);
            using var command = scope.Command(
                "INSERT INTO tenant_keys (tenant_id, purpose, key_version, wrapped, created_at) VALUES (@t, @p, 1, @w, @c) ON CONFLICT DO NOTHING")
                .With("t", tenantId).With("p", AuditSigningPurpose).With("w", wrapped).With("c", _time.GetUtcNow().ToUnixTimeMilliseconds());
            await command.ExecuteNonQueryAsync(cancellationToken);
            return ecdsa;
        }
        catch
        {
            ecdsa.Dispose();
            throw;
        }
    }

    /// <summary>The tenant's audit checkpoint signing key (ECDSA P-256), unwrapped once; read on <paramref name="on"/> when given
    /// (`audit verify`'s connection of the store's pool, as it reads the rest).</summary>
    public async ValueTask<AuditSigningKey> AuditSignerAsync(long tenantId, CancellationToken cancellationToken, System.Data.Common.DbConnection? on = null)
    {
        if (_signers.TryGetValue(tenantId, out var signer)) return signer;
        // Asked by a transaction's audit append (its first checkpoint in this process): a look-up's connection (OpenLookupAsync).
        if (on is not null) return await AuditSignerOnAsync(on, tenantId, cancellationToken);
        return await _database.LookUpAsync((connection, ct) => AuditSignerOnAsync(connection, tenantId, ct), cancellationToken);
    }

    private async Task<AuditSigningKey> AuditSignerOnAsync(System.Data.Common.DbConnection connection, long tenantId, CancellationToken cancellationToken)
    {
        using var command = connection.Command(
            "SELECT key_version, wrapped FROM tenant_keys WHERE tenant_id = @t AND purpose = @p ORDER BY key_version DESC LIMIT 1")
            .With("t", tenantId).With("p", AuditSigningPurpose);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) throw new InvalidOperationException($"Tenant {tenantId} has no audit signing key.");
        var version = reader.GetInt32(0);
        var wrapped = (byte[])reader.GetValue(1);
        await reader.DisposeAsync();
        var privateKey = await UnwrapAsync(connection, tenantId, AuditSigningPurpose, version, wrapped, cancellationToken);
        var ecdsa = ECDsa.Create();
        ecdsa.ImportPkcs8PrivateKey(privateKey, out _);
        CryptographicOperations.ZeroMemory(privateKey);
        var created = new AuditSigningKey(version, ecdsa);
        if (_signers.TryAdd(tenantId, created)) return created;
        created.Dispose();
        return _signers[tenantId];
    }

    /// <summary>How often a process looks whether another has made a newer data key for an establishment whose keys it holds
    /// (`vauban keys rotate-data`, which waits longer than this before it re-seals anything under the new one).</summary>
    public static readonly TimeSpan DataKeyRecheck = TimeSpan.FromSeconds(30);

    /// <summary>Tests: <see cref="DataKeyRecheck"/> for this key ring.</summary>
    internal TimeSpan Recheck { get; set; } = DataKeyRecheck;

    /// <summary>An establishment's keys as loaded, and when this process last looked for a newer data key.</summary>
    private sealed class Held(TenantKeys keys)
    {
        public TenantKeys Keys { get; } = keys;
        public long CheckedAt = Environment.TickCount64;

        /// <summary>The look in flight, which callers meanwhile wait for rather than take the keys it may replace: a record
        /// re-sealed by another process's rotation would not open with them, and an alert would read as altered.</summary>
        public Task<TenantKeys>? Rechecking;
    }

    /// <summary>The establishment's index key as held, or null when its keys were never loaded in this process (an establishment's
    /// index key is never replaced: what it hashes stays comparable with what the index holds).</summary>
    internal BlindIndex? HeldIndex(long tenantId) => _cache.TryGetValue(tenantId, out var held) ? held.Keys.Index : null;

    /// <summary>The establishment's keys: every data key version (the newest seals) and its index key, unwrapped once and held.
    /// Every <see cref="Recheck"/>, one caller looks whether a newer data key was made meanwhile (one indexed query) and loads it.</summary>
    public ValueTask<TenantKeys> ForTenantAsync(long tenantId, CancellationToken cancellationToken)
    {
        if (!_cache.TryGetValue(tenantId, out var held)) return new ValueTask<TenantKeys>(LoadAsync(tenantId, replace: false, cancellationToken));
        var now = Environment.TickCount64;
        var checkedAt = Volatile.Read(ref held.CheckedAt);
        // Within the interval, or another caller is looking right now: the keys held, or what that look finds.
        if (now - checkedAt < (long)Recheck.TotalMilliseconds || Interlocked.CompareExchange(ref held.CheckedAt, now, checkedAt) != checkedAt)
        {
            return Volatile.Read(ref held.Rechecking) is { IsCompleted: false } pending ? new ValueTask<TenantKeys>(pending) : ValueTask.FromResult(held.Keys);
        }
        var looking = RecheckAsync(tenantId, held, checkedAt, now, cancellationToken);
        Volatile.Write(ref held.Rechecking, looking);
        return new ValueTask<TenantKeys>(looking);
    }

    /// <summary>The establishment's keys with data key <paramref name="version"/>: those held when they have it, else loaded
    /// again (a rotation by another process since they were loaded). Null when the store has no such version.</summary>
    public async ValueTask<TenantKeys?> WithDataKeyAsync(long tenantId, int version, CancellationToken cancellationToken)
    {
        var keys = await ForTenantAsync(tenantId, cancellationToken);
        if (keys.KeyVersions.Contains(version)) return keys;
        // Every version up to the newest is loaded together: an older one missing is a damaged header, not a rotation (and must
        // not make each read of it load the keys again).
        if (version < keys.KeyVersion) return null;
        // A newer version this process cannot unwrap: said at once, without reading and failing to unwrap every version per request.
        if (Volatile.Read(ref _rotatedAwayTo) is { } bound) throw RotatedAwayFor(tenantId, bound);
        keys = await LoadAsync(tenantId, replace: true, cancellationToken);
        return keys.KeyVersions.Contains(version) ? keys : null;
    }

    /// <summary>The establishment's keys, loaded again when the store has a newer data key than those held (`keys rotate-data` by
    /// another process): for a reader that must open all that is sealed so far (`audit verify`). The store is asked on
    /// <paramref name="connection"/>, the caller's.</summary>
    public async Task<TenantKeys> NewestAsync(long tenantId, System.Data.Common.DbConnection connection, CancellationToken cancellationToken)
    {
        var keys = await ForTenantAsync(tenantId, cancellationToken);
        return await NewestDataKeyAsync(connection, tenantId, cancellationToken) <= keys.KeyVersion ? keys : await LoadAsync(tenantId, replace: true, cancellationToken);
    }

    /// <summary>The newest data key version the store holds for the establishment (0 when none).</summary>
    private static async Task<int> NewestDataKeyAsync(System.Data.Common.DbConnection connection, long tenantId, CancellationToken cancellationToken)
    {
        using var command = connection.Command("SELECT max(key_version) FROM tenant_keys WHERE tenant_id = @t AND purpose = @p")
            .With("t", tenantId).With("p", DataPurpose);
        var newest = await command.ExecuteScalarAsync(cancellationToken);
        return newest is null or DBNull ? 0 : Convert.ToInt32(newest, System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<TenantKeys> RecheckAsync(long tenantId, Held held, long checkedAt, long now, CancellationToken cancellationToken)
    {
        try
        {
            // Rotated away: a newer data key would not unwrap; the keys held go on opening and sealing what they did.
            if (Volatile.Read(ref _rotatedAwayTo) is not null) return held.Keys;
            if (await _database.LookUpAsync((connection, ct) => NewestDataKeyAsync(connection, tenantId, ct), cancellationToken) <= held.Keys.KeyVersion) return held.Keys;
            return await LoadAsync(tenantId, replace: true, cancellationToken);
        }
        catch (VaubanConfigurationException e) when (e.MasterKeyRotated)
        {
            // The newer data key is wrapped under a master key this process does not hold (rotate-master, then rotate-data). Failing
            // here failed every request of the establishment, each loading and failing again: the keys held still open every body
            // sealed before, and seal (a row sealed so is left by the re-sealing pass for its --resume, as any stale writer's).
            return held.Keys;
        }
        catch
        {
            // Not looked: the next caller looks again, rather than every request sealing with a key that may be retired for
            // another interval.
            Interlocked.CompareExchange(ref held.CheckedAt, checkedAt, now);
            throw;
        }
    }

    /// <summary>Reads and unwraps the establishment's keys. <paramref name="replace"/>: they take the place of those held (which
    /// are not disposed: requests may be using them; the collector frees them).</summary>
    private Task<TenantKeys> LoadAsync(long tenantId, bool replace, CancellationToken cancellationToken) =>
        Volatile.Read(ref _rotatedAwayTo) is { } bound
            ? Task.FromException<TenantKeys>(RotatedAwayFor(tenantId, bound))
            : _database.LookUpAsync((connection, ct) => LoadOnAsync(connection, tenantId, replace, ct), cancellationToken);

    private async Task<TenantKeys> LoadOnAsync(System.Data.Common.DbConnection connection, long tenantId, bool replace, CancellationToken cancellationToken)
    {
        using var command = connection.Command(
            "SELECT purpose, key_version, wrapped FROM tenant_keys WHERE tenant_id = @t AND purpose IN (@d, @i) ORDER BY key_version DESC")
            .With("t", tenantId).With("d", DataPurpose).With("i", IndexPurpose);
        var dataRows = new List<(int Version, byte[] Wrapped)>();
        (int Version, byte[] Wrapped)? indexRow = null;
        using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                if (reader.GetString(0) == DataPurpose) dataRows.Add((reader.GetInt32(1), (byte[])reader.GetValue(2)));
                else indexRow ??= (reader.GetInt32(1), (byte[])reader.GetValue(2));
            }
        }
        if (dataRows.Count == 0 || indexRow is not { } i) throw new InvalidOperationException($"Tenant {tenantId} has no keys.");
        var data = new List<(int Version, byte[] Key)>(dataRows.Count);
        foreach (var (version, wrapped) in dataRows) data.Add((version, await UnwrapAsync(connection, tenantId, DataPurpose, version, wrapped, cancellationToken)));
        var index = await UnwrapAsync(connection, tenantId, IndexPurpose, i.Version, i.Wrapped, cancellationToken);
        var created = new TenantKeys(tenantId, data, index);
        if (replace)
        {
            // Two loads racing (two rotations close together): the one holding the newer version stays.
            return _cache.AddOrUpdate(tenantId, _ => new Held(created), (_, old) => old.Keys.KeyVersion > created.KeyVersion ? old : new Held(created)).Keys;
        }
        if (_cache.TryAdd(tenantId, new Held(created))) return created;
        created.Dispose();
        return _cache[tenantId].Keys;
    }

    /// <summary>
    /// Makes the establishment's next data key version, wrapped under the master key, in the caller's transaction, under the
    /// lock `tenants add` and a master-key rotation take (a rotation re-wraps every key it reads: one inserted beside it would
    /// stay under the previous master key). From its commit, this process seals with it (<see cref="LoadAsync"/>); others
    /// within <see cref="DataKeyRecheck"/>. Returns the new version.
    /// </summary>
    public async Task<int> AddDataKeyAsync(WriteScope scope, long tenantId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        await _database.LockAsync(scope, "tenants add", cancellationToken);
        await RefuseIfRotatedAsync(scope, cancellationToken);
        int version;
        using (var newest = scope.Command("SELECT max(key_version) FROM tenant_keys WHERE tenant_id = @t AND purpose = @p").With("t", tenantId).With("p", DataPurpose))
        {
            version = Convert.ToInt32(await newest.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) + 1;
        }
        var key = RandomNumberGenerator.GetBytes(32);
        try
        {
            using var insert = scope.Command("INSERT INTO tenant_keys (tenant_id, purpose, key_version, wrapped, created_at) VALUES (@t, @p, @v, @w, @c)")
                .With("t", tenantId).With("p", DataPurpose).With("v", version).With("w", KeyWrap.Wrap(_master, tenantId, DataPurpose, version, key))
                .With("c", _time.GetUtcNow().ToUnixTimeMilliseconds());
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
        return version;
    }

    /// <summary>After <see cref="AddDataKeyAsync"/> committed: this process takes the new version at once.</summary>
    public Task<TenantKeys> ReloadAsync(long tenantId, CancellationToken cancellationToken) => LoadAsync(tenantId, replace: true, cancellationToken);

    public void Dispose()
    {
        foreach (var held in _cache.Values) held.Keys.Dispose();
        _cache.Clear();
        foreach (var signer in _signers.Values) signer.Dispose();
        _signers.Clear();
        _rows?.Dispose();
    }
}

/// <summary>The keys of a tenant being created, for its first audit entry (KeyRing.CreateTenantKeysAsync).</summary>
internal sealed record CreatedTenantKeys(TenantKeys Keys, AuditSigningKey Signer) : IDisposable
{
    public void Dispose()
    {
        Keys.Dispose();
        Signer.Dispose();
    }
}

/// <summary>A tenant's checkpoint signing key. ECDsa signing is thread-safe on .NET's OpenSSL backend; the appender
/// signs from one task anyway.</summary>
internal sealed class AuditSigningKey(int version, ECDsa key) : IDisposable
{
    public int Version { get; } = version;

    public byte[] Sign(byte[] statement) => key.SignData(statement, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public bool Verify(byte[] statement, byte[] signature) =>
        key.VerifyData(statement, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    /// <summary>The public key (SubjectPublicKeyInfo, PEM) for an outside witness.</summary>
    public string PublicKeyPem() => key.ExportSubjectPublicKeyInfoPem();

    public void Dispose() => key.Dispose();
}
