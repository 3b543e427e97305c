// One establishment's keys: the data key (AES-256-GCM over records) and the index key (HMAC blind
// indexes). Each lives in the database only wrapped by the master key.
using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Vauban.Crypto;

internal sealed class TenantKeys : IDisposable
{
    private readonly byte[] _dataKey;
    private readonly byte[] _indexKey;
    private readonly ConcurrentBag<AesGcm> _ciphers = [];

    public TenantKeys(long tenantId, int keyVersion, byte[] dataKey, byte[] indexKey)
    {
        TenantId = tenantId;
        KeyVersion = keyVersion;
        _dataKey = dataKey;
        _indexKey = indexKey;
        Index = new BlindIndex(indexKey);
    }

    public long TenantId { get; }
    public int KeyVersion { get; }
    public BlindIndex Index { get; }

    /// <summary>AesGcm instances are not thread-safe; a small pool avoids re-expanding the key per call.</summary>
    public AesGcm RentCipher() => _ciphers.TryTake(out var cipher) ? cipher : new AesGcm(_dataKey, AesGcm.TagByteSizes.MaxSize);

    public void ReturnCipher(AesGcm cipher)
    {
        if (_ciphers.Count < 16) _ciphers.Add(cipher);
        else cipher.Dispose();
    }

    public void Dispose()
    {
        while (_ciphers.TryTake(out var cipher)) cipher.Dispose();
        Index.Dispose();
        CryptographicOperations.ZeroMemory(_dataKey);
        CryptographicOperations.ZeroMemory(_indexKey);
    }
}
