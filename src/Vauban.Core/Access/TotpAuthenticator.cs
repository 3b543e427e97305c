// TOTP (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits, as every authenticator app does) as
// Identity's authenticator token provider, with one addition Identity lacks: a code is accepted once.
// The last accepted time step is stored per account and only a later step is accepted, atomically,
// so a code seen over a shoulder or replayed by a phishing proxy within its validity is refused.
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Identity;

namespace Vauban.Access;

public sealed class TotpAuthenticator : IUserTwoFactorTokenProvider<StaffUser>
{
    public static readonly string ProviderName = TokenOptions.DefaultAuthenticatorProvider;

    /// <summary>The purpose that confirms a new authenticator; any other purpose needs a confirmed one (TwoFactorEnabled).</summary>
    public const string EnrolPurpose = "EnrolAuthenticator";
    private readonly StaffUserStore _store;
    private readonly TimeProvider _time;

    public TotpAuthenticator(StaffUserStore store, TimeProvider time)
    {
        _store = store;
        _time = time;
    }

    public Task<string> GenerateAsync(string purpose, UserManager<StaffUser> manager, StaffUser user) =>
        throw new NotSupportedException("TOTP codes come from the person's authenticator app.");

    public Task<bool> CanGenerateTwoFactorTokenAsync(UserManager<StaffUser> manager, StaffUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return Task.FromResult(user.AuthenticatorKey is not null);
    }

    public async Task<bool> ValidateAsync(string purpose, string token, UserManager<StaffUser> manager, StaffUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.AuthenticatorKey is null || (!user.TwoFactorEnabled && purpose != EnrolPurpose)) return false;
        var code = new string((token ?? "").Where(c => !char.IsWhiteSpace(c) && c != '-').ToArray());
        if (code.Length != 6 || !code.All(char.IsAsciiDigit)) return false;
        var key = Base32.Decode(user.AuthenticatorKey);
        var now = _time.GetUtcNow().ToUnixTimeSeconds() / 30;
        // One step of drift either way (clocks of phones and servers differ by seconds, not minutes).
        for (var step = now - 1; step <= now + 1; step++)
        {
            if (CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(Code(key, step)), System.Text.Encoding.ASCII.GetBytes(code)))
                return await _store.TryAcceptTotpStepAsync(user, step, CancellationToken.None);
        }
        return false;
    }

    /// <summary>The 6-digit code of a time step (RFC 4226 dynamic truncation).</summary>
    public static string Code(byte[] key, long step)
    {
        Span<byte> counter = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(counter, step);
        Span<byte> mac = stackalloc byte[20];
#pragma warning disable CA5350 // RFC 6238 TOTP is HMAC-SHA1 in every authenticator app; SHA-1's collision weakness does not affect HMAC.
        HMACSHA1.HashData(key, counter, mac);
#pragma warning restore CA5350
        var offset = mac[19] & 0x0f;
        var binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
        return (binary % 1_000_000).ToString("D6", CultureInfo.InvariantCulture);
    }

    /// <summary>The otpauth:// URI an authenticator app reads from the QR code.</summary>
    public static string OtpAuthUri(string issuer, string account, string base32Key) =>
        $"otpauth://totp/{Uri.EscapeDataString(issuer)}:{Uri.EscapeDataString(account)}?secret={base32Key}&issuer={Uri.EscapeDataString(issuer)}&digits=6&period=30";
}

/// <summary>RFC 4648 base32, the encoding of authenticator keys.</summary>
public static class Base32
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    public static byte[] Decode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var clean = text.Trim().TrimEnd('=').Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();
        var output = new byte[clean.Length * 5 / 8];
        int buffer = 0, bits = 0, index = 0;
        foreach (var c in clean)
        {
            var value = Alphabet.IndexOf(c, StringComparison.Ordinal);
            if (value < 0) throw new FormatException("Not base32.");
            buffer = (buffer << 5) | value;
            bits += 5;
            if (bits >= 8)
            {
                output[index++] = (byte)(buffer >> (bits - 8));
                bits -= 8;
            }
        }
        return output;
    }

    public static string Encode(ReadOnlySpan<byte> data)
    {
        var builder = new System.Text.StringBuilder();
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                builder.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }
        if (bits > 0) builder.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        return builder.ToString();
    }
}
