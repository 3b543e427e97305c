// Paging links are opaque: the search (with its identifying values), the cursor, the tenant and the
// principal are sealed with AES-GCM under a key derived from the master key. A link cannot be read,
// forged, or replayed by another principal or tenant, and expires.
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Vauban.Records.Search;

/// <summary>A paging link's content; <see cref="Depth"/> is the page number it leads to (the guard asks for a reason beyond a configured depth).
/// <see cref="Session"/> binds a token to one sign-in as well as to its principal (a web page's search form, kept for its
/// Post/Redirect/Get); paging links carry none, and do not write it.</summary>
internal sealed record PageState(long Tenant, string Principal, string Type, List<string[]> Query, string SortValue, long Rid, long Expires, int Depth = 2,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Session = null);

internal sealed class PageTokens
{
    private readonly byte[] _key;

    // Every search page now seals a token (its self link) and a next page another: a new AesGcm each time set OpenSSL's key
    // schedule up and tore it down again, as dear on this VM as the sealing itself. Kept and reused, as TenantKeys does.
    private readonly ConcurrentBag<AesGcm> _ciphers = [];

    private AesGcm Rent() => _ciphers.TryTake(out var cipher) ? cipher : new AesGcm(_key, 16);

    private void Return(AesGcm cipher)
    {
        if (_ciphers.Count < 16) _ciphers.Add(cipher);
        else cipher.Dispose();
    }

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
        var aes = Rent();
        try
        {
            aes.Encrypt(output.AsSpan(0, 12), plaintext, output.AsSpan(12, plaintext.Length), output.AsSpan(12 + plaintext.Length));
        }
        finally
        {
            Return(aes);
        }
        return Base64UrlEncoder.Encode(output);
    }

    public PageState? Open(string token)
    {
        try
        {
            var bytes = Base64UrlEncoder.DecodeBytes(token);
            if (bytes.Length < 29) return null;
            var plaintext = new byte[bytes.Length - 28];
            var aes = Rent();
            try
            {
                aes.Decrypt(bytes.AsSpan(0, 12), bytes.AsSpan(12, plaintext.Length), bytes.AsSpan(12 + plaintext.Length), plaintext);
            }
            finally
            {
                Return(aes);
            }
            return JsonSerializer.Deserialize<PageState>(plaintext);
        }
        catch (Exception e) when (e is FormatException or CryptographicException or JsonException or ArgumentException)
        {
            return null;
        }
    }
}
