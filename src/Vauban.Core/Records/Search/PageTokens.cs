// Paging links are opaque: the search (with its identifying values), the cursor, the tenant and the
// principal are sealed with AES-GCM under a key derived from the master key. A link cannot be read,
// forged, or replayed by another principal or tenant, and expires.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Vauban.Records.Search;

/// <summary>A paging link's content; <see cref="Depth"/> is the page number it leads to (the guard asks for a reason beyond a configured depth).</summary>
internal sealed record PageState(long Tenant, string Principal, string Type, List<string[]> Query, string SortValue, long Rid, long Expires, int Depth = 2);

internal sealed class PageTokens
{
    private readonly byte[] _key;

    public PageTokens(Crypto.MasterKey master)
    {
        ArgumentNullException.ThrowIfNull(master);
        _key = HKDF.DeriveKey(HashAlgorithmName.SHA256, master.Bytes.ToArray(), 32, info: Encoding.UTF8.GetBytes("vauban/page-links/v1"));
    }

    public string Seal(PageState state)
    {
        var plaintext = JsonSerializer.SerializeToUtf8Bytes(state);
        var output = new byte[12 + plaintext.Length + 16];
        RandomNumberGenerator.Fill(output.AsSpan(0, 12));
        using var aes = new AesGcm(_key, 16);
        aes.Encrypt(output.AsSpan(0, 12), plaintext, output.AsSpan(12, plaintext.Length), output.AsSpan(12 + plaintext.Length));
        return Base64UrlEncoder.Encode(output);
    }

    public PageState? Open(string token)
    {
        try
        {
            var bytes = Base64UrlEncoder.DecodeBytes(token);
            if (bytes.Length < 29) return null;
            var plaintext = new byte[bytes.Length - 28];
            using var aes = new AesGcm(_key, 16);
            aes.Decrypt(bytes.AsSpan(0, 12), bytes.AsSpan(12, plaintext.Length), bytes.AsSpan(12 + plaintext.Length), plaintext);
            return JsonSerializer.Deserialize<PageState>(plaintext);
        }
        catch (Exception e) when (e is FormatException or CryptographicException or JsonException or ArgumentException)
        {
            return null;
        }
    }
}
