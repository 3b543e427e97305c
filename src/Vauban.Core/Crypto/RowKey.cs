// The store's row-authentication key (ADR 0014): 32 random bytes made by the first process that opens the store with its
// master key, kept wrapped under that key in store_keys, and held unwrapped by every process. It authenticates the rows that
// grant access (API clients, their tokens, staff sessions, staff accounts and their passkeys, recovery codes and enrolment
// links): whoever can write the database but does not hold the master key cannot make such a row that Vauban believes.
using System.Security.Cryptography;

namespace Vauban.Crypto;

internal sealed class RowKey : IDisposable
{
    /// <summary>Its purpose in store_keys, and in its wrapping's associated data.</summary>
    public const string Purpose = "row-authentication";

    private readonly byte[] _key;

    public RowKey(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length != 32) throw new ArgumentException("The row-authentication key is 32 bytes.", nameof(key));
        _key = key;
    }

    /// <summary>HMAC-SHA-256 of <paramref name="input"/>, a row's canonical encoding.</summary>
    public byte[] Mac(ReadOnlySpan<byte> input) => HMACSHA256.HashData(_key, input);

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);
}
