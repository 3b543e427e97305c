// Blind indexes: identifying values (names and their prefixes, NIR/INS, phone, e-mail, address,
// birth date) are indexed only as HMAC-SHA-256 under the tenant's index key, truncated to 64 bits.
// The parameter code is part of the MAC input, so the same value under two parameters (a name that is
// also a street) gives unrelated hashes. Truncation is deliberate: 64 bits keep collisions negligible
// at a tenant's scale while storing and leaking less than a full MAC.
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Vauban.Crypto;

internal sealed class BlindIndex : IDisposable
{
    private readonly byte[] _key;
    // One keyed HMAC state per thread: re-keying HMAC for every value costs twice the hashing itself.
    private readonly ThreadLocal<IncrementalHash> _hmac;
    // The same HMAC from OpenSSL's SHA-256 directly, where it can be called (null elsewhere: the HMAC state above is used).
    private readonly Sha256Hmac? _native;
    private readonly ConcurrentDictionary<(int Code, char Kind, string Value), long> _repeated = new();
    private const int RepeatedCapacity = 4096;

    public BlindIndex(byte[] key)
    {
        _key = key;
        _hmac = new ThreadLocal<IncrementalHash>(() => IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key), trackAllValues: true);
        _native = Sha256Hmac.Create(key);
    }

    public long Hash(int paramCode, char kind, ReadOnlySpan<char> value)
    {
        var maxBytes = 5 + Encoding.UTF8.GetMaxByteCount(value.Length);
        byte[]? rented = null;
        Span<byte> input = maxBytes <= 512 ? stackalloc byte[maxBytes] : (rented = ArrayPool<byte>.Shared.Rent(maxBytes));
        try
        {
            var length = Write(input, paramCode, kind, value);
            Span<byte> mac = stackalloc byte[32];
            if (_native is { } native)
            {
                native.Mac(input[..length], mac);
            }
            else
            {
                var hmac = _hmac.Value!;
                hmac.AppendData(input[..length]);
                hmac.GetHashAndReset(mac);
            }
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

    /// <summary>The whole HMAC-SHA-256 of <paramref name="content"/> under this key, not truncated: a digest that vouches for a
    /// row's content (Audit.SecurityRecords), where a blind index only finds a value. Rare; not on any hot path.</summary>
    public byte[] Digest(ReadOnlySpan<byte> content) => HMACSHA256.HashData(_key, content);

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
        _native?.Dispose();
    }

    /// <summary>
    /// HMAC-SHA-256 (RFC 2104) over OpenSSL's SHA-256 functions, from the two hash states the key leads to (after its inner
    /// and outer padded block), kept once: a value's MAC is then two SHA-256 blocks and four calls. Through IncrementalHash
    /// each value cost ~0.85 µs here (the HMAC context reset and finished through .NET's OpenSSL shim, with its error-queue
    /// clearing on every call) against ~0.13 µs this way, and a bulk load hashes ~11 values a resource. The states are as
    /// secret as the key beside them. OpenSSL's SHA-256 context holds no pointer, so it is copied as it is, as opaque bytes
    /// (room for more than its 112 bytes). Where libcrypto 3 or these functions are missing (another system, an OpenSSL
    /// built without its deprecated interfaces), or where the result differs from .NET's HMAC on a known input under this
    /// key, <see cref="Create"/> returns null and the IncrementalHash path is used.
    /// </summary>
    private sealed class Sha256Hmac : IDisposable
    {
        private const int BlockSize = 64;
        private Sha256State _inner;
        private Sha256State _outer;

        private Sha256Hmac(ReadOnlySpan<byte> key)
        {
            Span<byte> block = stackalloc byte[BlockSize];
            block.Clear();
            if (key.Length > BlockSize) SHA256.HashData(key, block);
            else key.CopyTo(block);
            _inner = Start(block, 0x36);
            _outer = Start(block, 0x5c);
            CryptographicOperations.ZeroMemory(block);
        }

        public static Sha256Hmac? Create(byte[] key)
        {
            if (!OperatingSystem.IsLinux()) return null;
            try
            {
                var hmac = new Sha256Hmac(key);
                // Known answer under this very key, against .NET's HMAC, over one and several blocks.
                Span<byte> expected = stackalloc byte[32];
                Span<byte> actual = stackalloc byte[32];
                foreach (var length in (ReadOnlySpan<int>)[0, 5, 55, 56, 64, 200])
                {
                    var probe = new byte[length];
                    for (var i = 0; i < length; i++) probe[i] = (byte)(i * 7 + 1);
                    HMACSHA256.HashData(key, probe, expected);
                    hmac.Mac(probe, actual);
                    if (!actual.SequenceEqual(expected))
                    {
                        hmac.Dispose();
                        return null;
                    }
                }
                return hmac;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
            {
                return null;
            }
        }

        public void Mac(ReadOnlySpan<byte> input, Span<byte> mac)
        {
            var state = _inner;
            Span<byte> inner = stackalloc byte[32];
            Update(ref state, input);
            Check(NativeMethods.SHA256_Final(ref MemoryMarshal.GetReference(inner), ref state));
            state = _outer;
            Update(ref state, inner);
            Check(NativeMethods.SHA256_Final(ref MemoryMarshal.GetReference(mac[..32]), ref state));
        }

        private static Sha256State Start(ReadOnlySpan<byte> key, byte pad)
        {
            Span<byte> padded = stackalloc byte[BlockSize];
            for (var i = 0; i < BlockSize; i++) padded[i] = (byte)(key[i] ^ pad);
            var state = default(Sha256State);
            Check(NativeMethods.SHA256_Init(ref state));
            Update(ref state, padded);
            CryptographicOperations.ZeroMemory(padded);
            return state;
        }

        private static void Update(ref Sha256State state, ReadOnlySpan<byte> data)
        {
            if (data.IsEmpty) return;
            Check(NativeMethods.SHA256_Update(ref state, ref MemoryMarshal.GetReference(data), (nuint)data.Length));
        }

        private static void Check(int result)
        {
            if (result != 1) throw new CryptographicException("OpenSSL's SHA-256 failed.");
        }

        public void Dispose()
        {
            _inner = default;
            _outer = default;
        }

        /// <summary>OpenSSL's SHA256_CTX (112 bytes), with room to spare.</summary>
        [InlineArray(32)]
        private struct Sha256State
        {
            private ulong _element;
        }

        private static class NativeMethods
        {
#pragma warning disable SYSLIB1054, CA5392 // blittable arguments; the library is the one .NET's own cryptography loads on Linux
            [DllImport("libcrypto.so.3")]
            internal static extern int SHA256_Init(ref Sha256State state);

            [DllImport("libcrypto.so.3")]
            internal static extern int SHA256_Update(ref Sha256State state, ref byte data, nuint length);

            [DllImport("libcrypto.so.3")]
            internal static extern int SHA256_Final(ref byte digest, ref Sha256State state);
#pragma warning restore SYSLIB1054, CA5392
        }
    }
}
