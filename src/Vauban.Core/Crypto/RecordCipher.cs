// The one place that encrypts and decrypts record bodies. A sealed body is
//   [format][flags][key version: 4 bytes LE][nonce: 12][ciphertext][tag: 16]
// with the associated data binding tenant, resource type, id and version: a ciphertext copied to
// another row, tenant or version fails authentication instead of decrypting. The key version names the establishment's data
// key that sealed it: a body opens with that version, so that bodies sealed before a data-key rotation still open after it.
// Format 2 (sealed since 2026-12-01) also binds the six header bytes, so that a changed compression flag fails
// authentication instead of handing out undecoded bytes, and compresses with Zstandard (RFC 8878): flag 3 with the
// record dictionary records-1.zdict (since 2026-12-01, second stop), flag 2 without a dictionary (before it).
// Format 1 (Brotli, flag 1) is still opened as it is: stored bodies are not migrated.
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Vauban.Crypto;

internal static class RecordCipher
{
    private const byte FormatVersion = 2;
    private const byte LegacyFormat = 1;
    private const byte FlagBrotli = 1;
    private const byte FlagZstd = 2;
    private const byte FlagZstdDictionary = 3;
    // Zstandard's default level. On this project's synthetic records (~965 B of JSON as stored) it keeps 55.5 % of the
    // bytes alone and 16.6 % with the dictionary, which also halves the time to decompress (bench/README.md, twelfth pass).
    private const int ZstdLevel = 3;

    // A small JSON record compressed alone spends most of its frame on the entropy tables that describe it, and most of
    // its decoding on building them; the dictionary carries tables and the strings every record repeats (element names,
    // code systems, displays). Trained on the synthetic hospital's records by `bench -- dictionary`; its bytes are
    // fixed for good (RecordCipherTests pins them): every body sealed with flag 3 needs exactly them to open.
    private static readonly byte[] Dictionary = LoadDictionary();
    private const int MaxPlaintext = 64 * 1024 * 1024;
    private const int HeaderSize = 6;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int Overhead = HeaderSize + NonceSize + TagSize;

    // Nonces: 96 random bits each, as before, drawn from the system's CSPRNG 256 at a time into a per-thread buffer. One call
    // into OpenSSL's generator cost ~1.3 µs here whatever the length asked (OpenSSL 3.0), as much as the encryption of a
    // record; a nonce is public (it is stored in the body), so holding the next ones in memory discloses nothing; each is
    // handed out once.
    private const int NoncesPerFill = 256;
    [ThreadStatic] private static byte[]? t_nonces;
    [ThreadStatic] private static int t_nonceOffset;

    // Zstandard contexts are reused (their tables are allocated once) but not thread-safe: one of each per thread,
    // ~0.2 MB of unmanaged memory each (more after a large record), living as long as the thread. Their buffers hold
    // pieces of the last record a thread handled, as the process's other memory holds the records it serves.
    // The dictionary is loaded into each thread's contexts once.
    [ThreadStatic] private static ZstdSharp.Compressor? t_compressor;
    [ThreadStatic] private static ZstdSharp.Decompressor? t_decompressor;
    [ThreadStatic] private static ZstdSharp.Decompressor? t_plainDecompressor; // flag 2: bodies sealed before the dictionary

    public static byte[] Seal(TenantKeys keys, int typeCode, string id, int version, ReadOnlySpan<byte> plaintext, bool compress = true)
    {
        ArgumentNullException.ThrowIfNull(id);
        return Seal(keys, typeCode, id.AsSpan(), version, plaintext, compress);
    }

    /// <summary>As above, the id given as characters (an audit entry's binding, formatted on the stack): the same bytes.</summary>
    public static byte[] Seal(TenantKeys keys, int typeCode, ReadOnlySpan<char> id, int version, ReadOnlySpan<byte> plaintext, bool compress = true)
    {
        // Only a body to compress needs the buffer (audit entries are sealed uncompressed, one per audited act).
        var compressor = compress ? t_compressor ??= NewCompressor() : null;
        var rented = compressor is null ? null : ArrayPool<byte>.Shared.Rent(ZstdSharp.Compressor.GetCompressBound(plaintext.Length));
        try
        {
            // Compress before encrypting (ciphertext does not compress); kept only when it is smaller.
            byte flags = 0;
            ReadOnlySpan<byte> payload = plaintext;
            if (compressor is not null && compressor.TryWrap(plaintext, rented, out var compressedLength) && compressedLength < plaintext.Length)
            {
                payload = rented.AsSpan(0, compressedLength);
                flags = FlagZstdDictionary;
            }

            var output = new byte[Overhead + payload.Length];
            output[0] = FormatVersion;
            output[1] = flags;
            BinaryPrimitives.WriteInt32LittleEndian(output.AsSpan(2), keys.KeyVersion);
            var nonce = output.AsSpan(HeaderSize, NonceSize);
            NextNonce(nonce);
            Span<byte> aad = stackalloc byte[AssociatedDataLength(id) + HeaderSize];
            WriteAssociatedData(aad, keys.TenantId, typeCode, id, version, output.AsSpan(0, HeaderSize));
            var cipher = keys.RentCipher(keys.KeyVersion);
            try
            {
                cipher.Encrypt(nonce, payload, output.AsSpan(HeaderSize + NonceSize, payload.Length), output.AsSpan(output.Length - TagSize), aad);
            }
            finally
            {
                keys.ReturnCipher(keys.KeyVersion, cipher);
            }
            return output;
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented, clearArray: true);
        }
    }

    private static void NextNonce(Span<byte> nonce)
    {
        var buffer = t_nonces ??= new byte[NonceSize * NoncesPerFill];
        if (t_nonceOffset == 0) RandomNumberGenerator.Fill(buffer);
        buffer.AsSpan(t_nonceOffset, NonceSize).CopyTo(nonce);
        t_nonceOffset = (t_nonceOffset + NonceSize) % buffer.Length;
    }

    public static byte[] Open(TenantKeys keys, int typeCode, string id, int version, ReadOnlySpan<byte> sealedBody)
    {
        var payloadLength = PayloadLength(sealedBody);
        var payload = ArrayPool<byte>.Shared.Rent(Math.Max(payloadLength, 1));
        try
        {
            Decrypt(keys, typeCode, id, version, sealedBody, payload.AsSpan(0, payloadLength));
            // Each format has its one codec: format 1's flag is not authenticated, so it never selects Zstandard.
            return (sealedBody[0], sealedBody[1]) switch
            {
                (_, 0) => payload.AsSpan(0, payloadLength).ToArray(),
                (FormatVersion, FlagZstdDictionary) => DecompressZstd(t_decompressor ??= NewDecompressor(), payload.AsSpan(0, payloadLength)),
                (FormatVersion, FlagZstd) => DecompressZstd(t_plainDecompressor ??= new ZstdSharp.Decompressor(), payload.AsSpan(0, payloadLength)),
                (LegacyFormat, FlagBrotli) => DecompressBrotli(payload.AsSpan(0, payloadLength)),
                _ => throw new RecordIntegrityException("unknown record compression"),
            };
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload, clearArray: true);
        }
    }

    /// <summary>Whether a sealed body authenticates under this binding — what <see cref="Open"/> checks first — without
    /// decompressing it or handing out its plaintext (audit verification opens every entry of a chain only for this).</summary>
    public static bool Authentic(TenantKeys keys, int typeCode, ReadOnlySpan<char> id, int version, ReadOnlySpan<byte> sealedBody)
    {
        int payloadLength;
        try
        {
            payloadLength = PayloadLength(sealedBody);
        }
        catch (RecordIntegrityException)
        {
            return false;
        }
        var payload = ArrayPool<byte>.Shared.Rent(Math.Max(payloadLength, 1));
        try
        {
            Decrypt(keys, typeCode, id, version, sealedBody, payload.AsSpan(0, payloadLength));
            return true;
        }
        catch (RecordIntegrityException)
        {
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload, clearArray: true);
        }
    }

    private static int PayloadLength(ReadOnlySpan<byte> sealedBody) =>
        sealedBody.Length < Overhead || sealedBody[0] is not (FormatVersion or LegacyFormat)
            ? throw new RecordIntegrityException("unknown record format")
            : sealedBody.Length - Overhead;

    /// <summary>Authenticates and decrypts the payload (still compressed) into <paramref name="payload"/>.</summary>
    private static void Decrypt(TenantKeys keys, int typeCode, ReadOnlySpan<char> id, int version, ReadOnlySpan<byte> sealedBody, Span<byte> payload)
    {
        var header = sealedBody[0] == FormatVersion ? sealedBody[..HeaderSize] : [];
        Span<byte> aad = stackalloc byte[AssociatedDataLength(id) + header.Length];
        WriteAssociatedData(aad, keys.TenantId, typeCode, id, version, header);
        // The data key the body was sealed with (a rotation leaves older bodies under older versions until it re-seals them).
        var keyVersion = BinaryPrimitives.ReadInt32LittleEndian(sealedBody[2..]);
        var cipher = keys.RentCipher(keyVersion);
        try
        {
            cipher.Decrypt(sealedBody.Slice(HeaderSize, NonceSize), sealedBody.Slice(HeaderSize + NonceSize, payload.Length),
                sealedBody[^TagSize..], payload, aad);
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new RecordIntegrityException("record failed authentication (moved, altered or wrong key)");
        }
        finally
        {
            keys.ReturnCipher(keyVersion, cipher);
        }
    }

    /// <summary>The data key version a sealed body names (its header), or null when it is too short to be one.</summary>
    public static int? KeyVersionOf(ReadOnlySpan<byte> sealedBody) =>
        sealedBody.Length < Overhead ? null : BinaryPrimitives.ReadInt32LittleEndian(sealedBody[2..]);

    private static byte[] LoadDictionary()
    {
        using var stream = typeof(RecordCipher).Assembly.GetManifestResourceStream("Vauban.Crypto.records-1.zdict")
            ?? throw new InvalidOperationException("The record dictionary is missing from the build.");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static ZstdSharp.Compressor NewCompressor()
    {
        var compressor = new ZstdSharp.Compressor(ZstdLevel);
        compressor.LoadDictionary(Dictionary);
        return compressor;
    }

    private static ZstdSharp.Decompressor NewDecompressor()
    {
        var decompressor = new ZstdSharp.Decompressor();
        decompressor.LoadDictionary(Dictionary);
        return decompressor;
    }

    private static byte[] DecompressZstd(ZstdSharp.Decompressor decompressor, ReadOnlySpan<byte> compressed)
    {
        // The frame states its content size (written by the one-shot compression above): the plaintext is decoded
        // straight into an array of that size. A frame compressed with another dictionary names it, and fails here.
        // Only an authenticated payload gets here; a damaged one is still an integrity failure, never a ZstdException.
        try
        {
            var size = ZstdSharp.Decompressor.GetDecompressedSize(compressed);
            if (size > MaxPlaintext) throw new RecordIntegrityException("record does not decompress");
            var plaintext = new byte[size];
            if (!decompressor.TryUnwrap(compressed, plaintext, out var written) || written != plaintext.Length)
            {
                throw new RecordIntegrityException("record does not decompress");
            }
            return plaintext;
        }
        catch (ZstdSharp.ZstdException)
        {
            throw new RecordIntegrityException("record does not decompress");
        }
    }

    private static byte[] DecompressBrotli(ReadOnlySpan<byte> compressed)
    {
        var size = Math.Max(compressed.Length * 4, 1024);
        while (true)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            try
            {
                if (BrotliDecoder.TryDecompress(compressed, buffer, out var written) && written < buffer.Length)
                {
                    return buffer.AsSpan(0, written).ToArray();
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
            }
            if (size > MaxPlaintext / 4) throw new RecordIntegrityException("record does not decompress");
            size *= 4;
        }
    }

    private static int AssociatedDataLength(ReadOnlySpan<char> id) => 8 + 4 + 4 + Encoding.UTF8.GetByteCount(id);

    // Format 1: tenant, type, version, id. Format 2 adds the body's header after them.
    private static void WriteAssociatedData(Span<byte> aad, long tenantId, int typeCode, ReadOnlySpan<char> id, int version, ReadOnlySpan<byte> header)
    {
        BinaryPrimitives.WriteInt64LittleEndian(aad, tenantId);
        BinaryPrimitives.WriteInt32LittleEndian(aad[8..], typeCode);
        BinaryPrimitives.WriteInt32LittleEndian(aad[12..], version);
        var written = Encoding.UTF8.GetBytes(id, aad[16..]);
        header.CopyTo(aad[(16 + written)..]);
    }
}

/// <summary>A stored record did not authenticate: tampering, a moved row or a wrong key. Never a client error.</summary>
public class RecordIntegrityException : Exception
{
    public RecordIntegrityException(string message) : base(message) { }
    public RecordIntegrityException() { }
    public RecordIntegrityException(string message, Exception inner) : base(message, inner) { }
}
