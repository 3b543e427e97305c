// Blind indexes: identifying values (names and their prefixes, NIR/INS, phone, e-mail, address,
// birth date) are indexed only as HMAC-SHA-256 under the tenant's index key, truncated to 64 bits.
// The parameter code is part of the MAC input, so the same value under two parameters (a name that is
// also a street) gives unrelated hashes. Truncation is deliberate: collisions are resolved by
// re-checking decrypted candidates, and shorter hashes leak less.
using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Vauban.Crypto;

internal static class BlindIndex
{
    public static long Hash(ReadOnlySpan<byte> indexKey, int paramCode, char kind, ReadOnlySpan<char> value)
    {
        var maxBytes = 5 + Encoding.UTF8.GetMaxByteCount(value.Length);
        byte[]? rented = null;
        Span<byte> input = maxBytes <= 512 ? stackalloc byte[maxBytes] : (rented = ArrayPool<byte>.Shared.Rent(maxBytes));
        try
        {
            BinaryPrimitives.WriteInt32LittleEndian(input, paramCode);
            input[4] = (byte)kind;
            var length = 5 + Encoding.UTF8.GetBytes(value, input[5..]);
            Span<byte> mac = stackalloc byte[32];
            HMACSHA256.HashData(indexKey, input[..length], mac);
            return BinaryPrimitives.ReadInt64LittleEndian(mac);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
