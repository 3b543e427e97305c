// What a person typed into a form whose sending asked her to prove both factors again (break-the-glass sent after the
// re-authentication age had passed while she wrote): the re-authentication page brings her back to the form by GET, and the
// form shows what she had typed instead of an empty form — an explanation of why a record must be opened,
// written under pressure, was otherwise lost and had to be written again. Kept in this process's memory only (never in a
// cookie, a log or the store), for one session and one page, for 15 minutes, and given back once.
using System.Collections.Concurrent;

namespace Vauban.Web;

public sealed class FormDrafts(TimeProvider time)
{
    /// <summary>Longer than a re-authentication takes; shorter than a session's idle timeout.</summary>
    private static readonly TimeSpan Kept = TimeSpan.FromMinutes(15);

    private const int MaxKept = 10_000;

    /// <summary>Drafts one session keeps at most (its newest): one session sending forms for many pages evicts only its own.</summary>
    internal const int MaxPerSession = 4;

    private readonly ConcurrentDictionary<string, (IReadOnlyDictionary<string, string?> Fields, long Until)> _drafts = new(StringComparer.Ordinal);

    /// <summary>Keeps the fields typed into the form of <paramref name="page"/> (a path) by this session, replacing an earlier draft.</summary>
    public void Keep(string session, string page, IReadOnlyDictionary<string, string?> fields)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var own = _drafts.Where(d => d.Key.StartsWith(session + "|", StringComparison.Ordinal)).OrderBy(d => d.Value.Until).ToList();
        foreach (var (key, _) in own.Take(Math.Max(0, own.Count - MaxPerSession + 1))) _drafts.TryRemove(key, out _);
        BoundedMemory.MakeRoom(_drafts, MaxKept, now, d => d.Until);
        _drafts[session + "|" + page] = (new Dictionary<string, string?>(fields, StringComparer.Ordinal), now + (long)Kept.TotalMilliseconds);
    }

    /// <summary>The draft this session kept for <paramref name="page"/>, once: null when there is none or it is older than 15 minutes.</summary>
    public IReadOnlyDictionary<string, string?>? Take(string session, string page) =>
        _drafts.TryRemove(session + "|" + page, out var draft) && draft.Until > time.GetUtcNow().ToUnixTimeMilliseconds() ? draft.Fields : null;
}
