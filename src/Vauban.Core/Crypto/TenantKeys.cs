// One establishment's keys: its data keys (AES-256-GCM over records), every version, and its index key (HMAC blind indexes).
// Each lives in the database only wrapped by the master key. The newest data key seals; a sealed body names the version it
// was sealed with (RecordCipher's header), which opens it: bodies sealed before a data-key rotation, and the audit entries,
// which are never rewritten, still open after it.
using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Vauban.Crypto;

internal sealed class TenantKeys : IDisposable
{
    private readonly DataKey _current;
    // The older versions, by version: only a rotation's leftovers and the audit log's older entries need them.
    private readonly Dictionary<int, DataKey> _older;
    private readonly byte[] _indexKey;

    /// <summary>One data key version.</summary>
    public TenantKeys(long tenantId, int keyVersion, byte[] dataKey, byte[] indexKey)
        : this(tenantId, [(keyVersion, dataKey)], indexKey)
    {
    }

    /// <summary>Every data key version the establishment has (any order); the newest seals.</summary>
    public TenantKeys(long tenantId, IReadOnlyCollection<(int Version, byte[] Key)> dataKeys, byte[] indexKey)
    {
        ArgumentNullException.ThrowIfNull(dataKeys);
        if (dataKeys.Count == 0) throw new ArgumentException("An establishment has at least one data key.", nameof(dataKeys));
        TenantId = tenantId;
        var newest = dataKeys.MaxBy(k => k.Version);
        _current = new DataKey(newest.Key);
        KeyVersion = newest.Version;
        _older = dataKeys.Where(k => k.Version != newest.Version).ToDictionary(k => k.Version, k => new DataKey(k.Key));
        _indexKey = indexKey;
        Index = new BlindIndex(indexKey);
    }

    public long TenantId { get; }

    /// <summary>The version of the data key that seals (the newest).</summary>
    public int KeyVersion { get; }

    /// <summary>Every data key version held, oldest first.</summary>
    public IEnumerable<int> KeyVersions => _older.Keys.Append(KeyVersion).Order();

    public BlindIndex Index { get; }

    /// <summary>A cipher under data key <paramref name="version"/>; given back with <see cref="ReturnCipher"/>, same version.</summary>
    /// <exception cref="UnknownKeyVersionException">The establishment has no such version (or this process has not loaded it yet).</exception>
    public AesGcm RentCipher(int version) => Key(version).Rent();

    public void ReturnCipher(int version, AesGcm cipher) => Key(version).Return(cipher);

    private DataKey Key(int version) =>
        version == KeyVersion ? _current
        : _older.TryGetValue(version, out var older) ? older
        : throw new UnknownKeyVersionException(TenantId, version);

    public void Dispose()
    {
        _current.Dispose();
        foreach (var older in _older.Values) older.Dispose();
        Index.Dispose();
        CryptographicOperations.ZeroMemory(_indexKey);
    }

    /// <summary>A data key and its ciphers: AesGcm instances are not thread-safe, and a small pool avoids re-expanding the key
    /// per call.</summary>
    private sealed class DataKey(byte[] key) : IDisposable
    {
        private readonly ConcurrentBag<AesGcm> _ciphers = [];

        public AesGcm Rent() => _ciphers.TryTake(out var cipher) ? cipher : new AesGcm(key, AesGcm.TagByteSizes.MaxSize);

        public void Return(AesGcm cipher)
        {
            if (_ciphers.Count < 16) _ciphers.Add(cipher);
            else cipher.Dispose();
        }

        public void Dispose()
        {
            while (_ciphers.TryTake(out var cipher)) cipher.Dispose();
            CryptographicOperations.ZeroMemory(key);
        }
    }
}

/// <summary>A body sealed under a data key version its establishment's keys, as this process holds them, do not include: a
/// version made by a rotation after they were loaded (the key ring loads them again and retries), or a damaged header.</summary>
internal sealed class UnknownKeyVersionException(long tenantId, int version)
    : RecordIntegrityException($"sealed under data key version {version}, which establishment {tenantId}'s keys do not include")
{
    public long TenantId { get; } = tenantId;
    public int Version { get; } = version;
}
