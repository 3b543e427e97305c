// Wraps keys under the master key (AES-256-GCM), binding each wrapped key to what it is for — a tenant's key to its tenant,
// purpose and version, the store's own keys to their purpose and version — so that a wrapped key cannot be swapped for
// another in the database.
using System.Security.Cryptography;
using System.Text;

namespace Vauban.Crypto;

internal static class KeyWrap
{
    private const int NonceSize = 12;
    private const int TagSize = 16;

    public static byte[] Wrap(MasterKey master, long tenantId, string purpose, int version, ReadOnlySpan<byte> key) =>
        Wrap(master, Context(tenantId, purpose, version), key);

    public static byte[] Unwrap(MasterKey master, long tenantId, string purpose, int version, ReadOnlySpan<byte> wrapped) =>
        Unwrap(master, Context(tenantId, purpose, version), $"{purpose} key of tenant {tenantId}", wrapped);

    /// <summary>A key of the store itself, not of a tenant (the row-authentication key, ADR 0014).</summary>
    public static byte[] WrapStoreKey(MasterKey master, string purpose, int version, ReadOnlySpan<byte> key) =>
        Wrap(master, StoreContext(purpose, version), key);

    public static byte[] UnwrapStoreKey(MasterKey master, string purpose, int version, ReadOnlySpan<byte> wrapped) =>
        Unwrap(master, StoreContext(purpose, version), $"store's {purpose} key", wrapped);

    private static byte[] Wrap(MasterKey master, byte[] context, ReadOnlySpan<byte> key)
    {
        var output = new byte[NonceSize + key.Length + TagSize];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(master.Bytes, TagSize);
        aes.Encrypt(nonce, key, output.AsSpan(NonceSize, key.Length), output.AsSpan(NonceSize + key.Length), context);
        return output;
    }

    private static byte[] Unwrap(MasterKey master, byte[] context, string what, ReadOnlySpan<byte> wrapped)
    {
        if (wrapped.Length < NonceSize + TagSize)
        {
            throw new VaubanConfigurationException($"The stored {what} is damaged.");
        }
        var key = new byte[wrapped.Length - NonceSize - TagSize];
        using var aes = new AesGcm(master.Bytes, TagSize);
        try
        {
            aes.Decrypt(wrapped[..NonceSize], wrapped.Slice(NonceSize, key.Length), wrapped[(NonceSize + key.Length)..], key, context);
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new VaubanConfigurationException(
                $"The {what} cannot be unwrapped: this store was created with another master key than the one given ({master.Source}, fingerprint {master.Fingerprint}).", e)
            {
                OtherMasterKey = true,
            };
        }
        return key;
    }

    private static byte[] Context(long tenantId, string purpose, int version) =>
        Encoding.UTF8.GetBytes($"vauban/tenant-key/{tenantId}/{purpose}/{version}");

    private static byte[] StoreContext(string purpose, int version) =>
        Encoding.UTF8.GetBytes($"vauban/store-key/{purpose}/{version}");
}
