// Sliding windows over a principal's reading, exact and O(1) amortised per touch. Not thread-safe: the
// guard holds the principal's lock while it asks and records (one lock per principal, so principals
// never wait for each other).
namespace Vauban.Guard;

/// <summary>
/// How many distinct keys (patients) were touched within the last <see cref="Length"/>: each key's last touch, and
/// the touches in order. A key touched again leaves its earlier touch behind in the order, skipped when it reaches
/// the front; keys whose last touch is older than the window fall off the front. Nothing is allocated per key beyond
/// the key itself: a day window of a million patients is a dictionary and a queue (two arrays each), not a million
/// list nodes for the collector to trace (until 2026-12-01 it was a linked list; bench/README.md, thirteenth pass).
/// A touch is never recorded earlier than the latest one (a clock stepped back keeps a key a little longer, never
/// less), so the touches stay in time order and a key has one touch a millisecond: keys touched within the same
/// millisecond keep the order of their first touch in it.
/// </summary>
public sealed class DistinctWindow
{
    private readonly Dictionary<string, long> _last = new(StringComparer.Ordinal);
    private readonly Queue<(string Key, long At)> _touches = new();
    private readonly long _lengthMs;
    private long _latest = long.MinValue;

    public DistinctWindow(TimeSpan length)
    {
        if (length <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(length), "A window has a positive length.");
        Length = length;
        _lengthMs = (long)length.TotalMilliseconds;
    }

    public TimeSpan Length { get; }

    /// <summary>Touches held, live or left behind: right after a touch, at most twice the keys plus 64.</summary>
    internal int Held => _touches.Count;

    /// <summary>Distinct keys touched in (now − length, now].</summary>
    public int Count(long nowMs)
    {
        Expire(nowMs);
        return _last.Count;
    }

    /// <summary>Whether the key is within the window now.</summary>
    public bool Contains(string key, long nowMs)
    {
        Expire(nowMs);
        return _last.ContainsKey(key);
    }

    /// <summary>The count the window would have if <paramref name="keys"/> were touched now (nothing is recorded).</summary>
    public int CountWith(IEnumerable<string> keys, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var count = Count(nowMs);
        foreach (var key in keys)
        {
            if (!_last.ContainsKey(key)) count++;
        }
        return count;
    }

    public void Touch(string key, long nowMs)
    {
        Expire(nowMs);
        var at = _latest = Math.Max(_latest, nowMs);
        ref var last = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_last, key, out var known);
        if (known && last == at) return;
        last = at;
        _touches.Enqueue((key, at));
        if (_touches.Count > 2 * _last.Count + 64) Compact();
    }

    /// <summary>The keys within the window now, oldest (last touched longest ago) first.</summary>
    public IEnumerable<string> Keys(long nowMs)
    {
        Expire(nowMs);
        foreach (var (key, at) in _touches)
        {
            if (IsLast(key, at)) yield return key;
        }
    }

    public void Clear()
    {
        _touches.Clear();
        _last.Clear();
        _touches.TrimExcess();
        _last.TrimExcess();
    }

    private bool IsLast(string key, long at) => _last.TryGetValue(key, out var last) && last == at;

    private void Expire(long nowMs)
    {
        var cutoff = nowMs - _lengthMs;
        while (_touches.TryPeek(out var first) && first.At <= cutoff)
        {
            _touches.Dequeue();
            if (IsLast(first.Key, first.At)) _last.Remove(first.Key);
        }
    }

    /// <summary>Drops the touches left behind by later ones, in order: a key read again and again holds one touch.</summary>
    private void Compact()
    {
        for (var n = _touches.Count; n > 0; n--)
        {
            var touch = _touches.Dequeue();
            if (IsLast(touch.Key, touch.At)) _touches.Enqueue(touch);
        }
    }
}

/// <summary>A running sum of amounts (records, operations) added within the last <see cref="Length"/>.</summary>
public sealed class CountWindow
{
    private readonly Queue<(long At, int Amount)> _events = new();
    private readonly long _lengthMs;
    private long _sum;

    public CountWindow(TimeSpan length)
    {
        if (length <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(length), "A window has a positive length.");
        Length = length;
        _lengthMs = (long)length.TotalMilliseconds;
    }

    public TimeSpan Length { get; }

    public long Sum(long nowMs)
    {
        var cutoff = nowMs - _lengthMs;
        while (_events.TryPeek(out var first) && first.At <= cutoff)
        {
            _sum -= first.Amount;
            _events.Dequeue();
        }
        return _sum;
    }

    public void Add(int amount, long nowMs)
    {
        if (amount <= 0) return;
        Sum(nowMs);
        _events.Enqueue((nowMs, amount));
        _sum += amount;
    }

    public void Clear()
    {
        _events.Clear();
        _sum = 0;
    }
}
