// The one place that encrypts and decrypts record bodies. A sealed body is
//   [format=1][flags][key version: 4 bytes LE][nonce: 12][ciphertext][tag: 16]
// with the associated data binding tenant, resource type, id and version: a ciphertext copied to
// another row, tenant or version fails authentication instead of decrypting.
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Vauban.Crypto;

internal static class RecordCipher
{
    private const byte FormatVersion = 1;
    private const byte FlagBrotli = 1;
    private const int HeaderSize = 6;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int Overhead = HeaderSize + NonceSize + TagSize;

    public static byte[] Seal(TenantKeys keys, int typeCode, string id, int version, ReadOnlySpan<byte> plaintext, bool compress = true)
    {
        // Only a body to compress needs the buffer (audit entries are sealed uncompressed, one per audited act).
        var rented = compress ? ArrayPool<byte>.Shared.Rent(BrotliEncoder.GetMaxCompressedLength(plaintext.Length)) : null;
        try
        {
            // Compress before encrypting (ciphertext does not compress). Quality 2 is the speed/size sweet spot for 0.5-5 KB JSON.
            byte flags = 0;
            ReadOnlySpan<byte> payload = plaintext;
            if (rented is not null && BrotliEncoder.TryCompress(plaintext, rented, out var compressedLength, quality: 2, window: 16) && compressedLength < plaintext.Length)
            {
                payload = rented.AsSpan(0, compressedLength);
                flags = FlagBrotli;
            }

            var output = new byte[Overhead + payload.Length];
            output[0] = FormatVersion;
            output[1] = flags;
            BinaryPrimitives.WriteInt32LittleEndian(output.AsSpan(2), keys.KeyVersion);
            var nonce = output.AsSpan(HeaderSize, NonceSize);
            RandomNumberGenerator.Fill(nonce);
            Span<byte> aad = stackalloc byte[AssociatedDataLength(id)];
            WriteAssociatedData(aad, keys.TenantId, typeCode, id, version);
            var cipher = keys.RentCipher();
            try
            {
                cipher.Encrypt(nonce, payload, output.AsSpan(HeaderSize + NonceSize, payload.Length), output.AsSpan(output.Length - TagSize), aad);
            }
            finally
            {
                keys.ReturnCipher(cipher);
            }
            return output;
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public static byte[] Open(TenantKeys keys, int typeCode, string id, int version, ReadOnlySpan<byte> sealedBody)
    {
        if (sealedBody.Length < Overhead || sealedBody[0] != FormatVersion)
        {
            throw new RecordIntegrityException("unknown record format");
        }
        var flags = sealedBody[1];
        var payloadLength = sealedBody.Length - Overhead;
        var payload = ArrayPool<byte>.Shared.Rent(Math.Max(payloadLength, 1));
        try
        {
            Span<byte> aad = stackalloc byte[AssociatedDataLength(id)];
            WriteAssociatedData(aad, keys.TenantId, typeCode, id, version);
            var cipher = keys.RentCipher();
            try
            {
                cipher.Decrypt(sealedBody.Slice(HeaderSize, NonceSize), sealedBody.Slice(HeaderSize + NonceSize, payloadLength),
                    sealedBody[^TagSize..], payload.AsSpan(0, payloadLength), aad);
            }
            catch (AuthenticationTagMismatchException)
            {
                throw new RecordIntegrityException("record failed authentication (moved, altered or wrong key)");
            }
            finally
            {
                keys.ReturnCipher(cipher);
            }

            if ((flags & FlagBrotli) == 0)
            {
                return payload.AsSpan(0, payloadLength).ToArray();
            }
            return Decompress(payload.AsSpan(0, payloadLength));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload, clearArray: true);
        }
    }

    private static byte[] Decompress(ReadOnlySpan<byte> compressed)
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
            if (size > 64 * 1024 * 1024) throw new RecordIntegrityException("record does not decompress");
            size *= 4;
        }
    }

    private static int AssociatedDataLength(string id) => 8 + 4 + 4 + Encoding.UTF8.GetByteCount(id);

    private static void WriteAssociatedData(Span<byte> aad, long tenantId, int typeCode, string id, int version)
    {
        BinaryPrimitives.WriteInt64LittleEndian(aad, tenantId);
        BinaryPrimitives.WriteInt32LittleEndian(aad[8..], typeCode);
        BinaryPrimitives.WriteInt32LittleEndian(aad[12..], version);
        Encoding.UTF8.GetBytes(id, aad[16..]);
    }
}

/// <summary>A stored record did not authenticate: tampering, a moved row or a wrong key. Never a client error.</summary>
public sealed class RecordIntegrityException : Exception
{
    public RecordIntegrityException(string message) : base(message) { }
    public RecordIntegrityException() { }
    public RecordIntegrityException(string message, Exception inner) : base(message, inner) { }
}
