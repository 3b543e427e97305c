// The forms of acts that write (a prescription, vital signs, a booking) carry a key made when the page
// was shown; the first post of a key is done, a second is not. Post/Redirect/Get keeps a refresh from repeating an act, but not a
// double click (two posts before the first answer) nor Back and "send again", which wrote the same prescription twice.
using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Vauban.Web;

public sealed class SubmittedForms(TimeProvider time)
{
    /// <summary>How long a key is remembered: longer than a page stays open before its form is sent (a session's idle timeout is
    /// 15 minutes; its antiforgery token lasts as long as the session).</summary>
    private static readonly TimeSpan Remembered = TimeSpan.FromHours(12);

    private const int MaxRemembered = 200_000;

    private readonly ConcurrentDictionary<string, long> _claimed = new(StringComparer.Ordinal);

    /// <summary>A new key for a form shown: 128 random bits, hex.</summary>
    public static string NewKey() => Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    /// <summary>Whether <paramref name="key"/> is a form's key as <see cref="NewKey"/> makes them.</summary>
    public static bool IsKey(string? key) => key is { Length: 32 } && key.All(char.IsAsciiHexDigit);

    /// <summary>True for the first post of this session's form key (the act goes on), false for any after it.</summary>
    public bool Claim(string session, string key)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        BoundedMemory.MakeRoom(_claimed, MaxRemembered, now, until => until);
        return _claimed.TryAdd(session + "|" + key, now + (long)Remembered.TotalMilliseconds);
    }

    /// <summary>The act of a claimed key was not done (refused, or it failed): the same form may be sent again.</summary>
    public void Release(string session, string key) => _claimed.TryRemove(session + "|" + key, out _);
}
