// What a form-handling helper remembers per session (form keys sent, drafts kept) lives in this process's memory, each entry
// until a time; an attack can fill it faster than entries expire. One rule for all of them: before a new entry, a map that is full
// drops what has expired, and when it is still full of live entries (an attack, not work) its oldest half, so memory stays bounded.
using System.Collections.Concurrent;

namespace Vauban.Web;

internal static class BoundedMemory
{
    /// <summary>Makes room in <paramref name="map"/> for one more entry when it holds <paramref name="max"/> or more: expired entries
    /// (until ≤ <paramref name="now"/>, ms) go, then, if it is still full, the half that expires first.</summary>
    public static void MakeRoom<TKey, TValue>(ConcurrentDictionary<TKey, TValue> map, int max, long now, Func<TValue, long> until) where TKey : notnull
    {
        if (map.Count < max) return;
        foreach (var (key, value) in map) if (until(value) <= now) map.TryRemove(key, out _);
        if (map.Count < max) return;
        foreach (var (key, _) in map.OrderBy(e => until(e.Value)).Take(max / 2)) map.TryRemove(key, out _);
    }
}
