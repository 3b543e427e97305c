// Blind indexes: identifying values (names and their prefixes, NIR/INS, phone, e-mail, address,
// birth date) are indexed only as HMAC-SHA-256 under the tenant's index key, truncated to 64 bits.
// The parameter code is part of the MAC input, so the same value under two parameters (a name that is
// also a street) gives unrelated hashes. Truncation is deliberate: 64 bits keep collisions negligible
// at a tenant's scale while storing and leaking less than a full MAC.
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Vauban.Crypto;

internal sealed class BlindIndex : IDisposable
{
    private readonly byte[] _key;
    // One keyed HMAC state per thread: re-keying HMAC for every value costs twice the hashing itself.
    private readonly ThreadLocal<IncrementalHash> _hmac;
    private readonly ConcurrentDictionary<(int Code, char Kind, string Value), long> _repeated = new();
    private const int RepeatedCapacity = 4096;

    public BlindIndex(byte[] key)
    {
        _key = key;
        _hmac = new ThreadLocal<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key), trackAllValues: true);
    }

    public long Hash(int paramCode, char kind, ReadOnlySpan<char> value)
    {
        var maxBytes = 5 + Encoding.UTF8.GetMaxByteCount(value.Length);
        byte[]? rented = null;
        Span<byte> input = maxBytes <= 512 ? stackalloc byte[maxBytes] : (rented = ArrayPool<byte>.Shared.Rent(maxBytes));
        try
        {
            var length = Write(input, paramCode, kind, value);
            var hmac = _hmac.Value!;
            hmac.AppendData(input[..length]);
            Span<byte> mac = stackalloc byte[32];
            hmac.GetHashAndReset(mac);
            return BinaryPrimitives.ReadInt64LittleEndian(mac);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary><see cref="Hash"/> of a value asked for on every act (the principal of each audit entry): computed once and
    /// kept while this key lives, at most <see cref="RepeatedCapacity"/> values (then forgotten all at once and computed
    /// again). Holds only what a call would return; the key itself is already in this object.</summary>
    public long HashRepeated(int paramCode, char kind, string value)
    {
        if (_repeated.TryGetValue((paramCode, kind, value), out var known)) return known;
        var hash = Hash(paramCode, kind, value);
        if (_repeated.Count >= RepeatedCapacity) _repeated.Clear();
        _repeated[(paramCode, kind, value)] = hash;
        return hash;
    }

    /// <summary>The same hash, computed from the key directly (reference implementation, used by tests).</summary>
    public static long Compute(ReadOnlySpan<byte> key, int paramCode, char kind, ReadOnlySpan<char> value)
    {
        var input = new byte[5 + Encoding.UTF8.GetMaxByteCount(value.Length)];
        var length = Write(input, paramCode, kind, value);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(key, input.AsSpan(0, length), mac);
        return BinaryPrimitives.ReadInt64LittleEndian(mac);
    }

    private static int Write(Span<byte> input, int paramCode, char kind, ReadOnlySpan<char> value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(input, paramCode);
        input[4] = (byte)kind;
        return 5 + Encoding.UTF8.GetBytes(value, input[5..]);
    }

    public void Dispose()
    {
        foreach (var hmac in _hmac.Values) hmac.Dispose();
        _hmac.Dispose();
    }
}
