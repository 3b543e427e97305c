// Wraps tenant keys under the master key (AES-256-GCM), binding each wrapped key to its tenant,
// purpose and version so that a wrapped key cannot be swapped between tenants in the database.
using System.Security.Cryptography;
using System.Text;

namespace Vauban.Crypto;

internal static class KeyWrap
{
    private const int NonceSize = 12;
    private const int TagSize = 16;

    public static byte[] Wrap(MasterKey master, long tenantId, string purpose, int version, ReadOnlySpan<byte> key)
    {
        var output = new byte[NonceSize + key.Length + TagSize];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(master.Bytes, TagSize);
        aes.Encrypt(nonce, key, output.AsSpan(NonceSize, key.Length), output.AsSpan(NonceSize + key.Length), Context(tenantId, purpose, version));
        return output;
    }

    public static byte[] Unwrap(MasterKey master, long tenantId, string purpose, int version, ReadOnlySpan<byte> wrapped)
    {
        if (wrapped.Length < NonceSize + TagSize)
        {
            throw new VaubanConfigurationException($"The stored {purpose} key of tenant {tenantId} is damaged.");
        }
        var key = new byte[wrapped.Length - NonceSize - TagSize];
        using var aes = new AesGcm(master.Bytes, TagSize);
        try
        {
            aes.Decrypt(wrapped[..NonceSize], wrapped.Slice(NonceSize, key.Length), wrapped[(NonceSize + key.Length)..], key, Context(tenantId, purpose, version));
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new VaubanConfigurationException(
                $"The {purpose} key of tenant {tenantId} cannot be unwrapped: this store was created with another master key than the one given ({master.Source}, fingerprint {master.Fingerprint}).", e)
            {
                OtherMasterKey = true,
            };
        }
        return key;
    }

    private static byte[] Context(long tenantId, string purpose, int version) =>
        Encoding.UTF8.GetBytes($"vauban/tenant-key/{tenantId}/{purpose}/{version}");
}
