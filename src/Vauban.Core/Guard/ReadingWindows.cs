// Sliding windows over a principal's reading, exact and O(1) amortised per touch. Not thread-safe: the
// guard holds the principal's lock while it asks and records (one lock per principal, so principals
// never wait for each other).
namespace Vauban.Guard;

/// <summary>
/// How many distinct keys (patients) were touched within the last <see cref="Length"/>: a recency list —
/// a touch moves the key to the back, keys older than the window fall off the front.
/// </summary>
public sealed class DistinctWindow
{
    private readonly LinkedList<(string Key, long At)> _order = new();
    private readonly Dictionary<string, LinkedListNode<(string Key, long At)>> _nodes = new(StringComparer.Ordinal);
    private readonly long _lengthMs;

    public DistinctWindow(TimeSpan length)
    {
        if (length <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(length), "A window has a positive length.");
        Length = length;
        _lengthMs = (long)length.TotalMilliseconds;
    }

    public TimeSpan Length { get; }

    /// <summary>Distinct keys touched in (now − length, now].</summary>
    public int Count(long nowMs)
    {
        Expire(nowMs);
        return _order.Count;
    }

    /// <summary>Whether the key is within the window now.</summary>
    public bool Contains(string key, long nowMs)
    {
        Expire(nowMs);
        return _nodes.ContainsKey(key);
    }

    /// <summary>The count the window would have if <paramref name="keys"/> were touched now (nothing is recorded).</summary>
    public int CountWith(IEnumerable<string> keys, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var count = Count(nowMs);
        foreach (var key in keys)
        {
            if (!_nodes.ContainsKey(key)) count++;
        }
        return count;
    }

    public void Touch(string key, long nowMs)
    {
        Expire(nowMs);
        if (_nodes.TryGetValue(key, out var node))
        {
            _order.Remove(node);
            node.Value = (key, nowMs);
            _order.AddLast(node);
        }
        else
        {
            _nodes[key] = _order.AddLast((key, nowMs));
        }
    }

    /// <summary>The keys within the window now, oldest first.</summary>
    public IEnumerable<string> Keys(long nowMs)
    {
        Expire(nowMs);
        foreach (var (key, _) in _order) yield return key;
    }

    public void Clear()
    {
        _order.Clear();
        _nodes.Clear();
    }

    private void Expire(long nowMs)
    {
        var cutoff = nowMs - _lengthMs;
        while (_order.First is { } first && first.Value.At <= cutoff)
        {
            _nodes.Remove(first.Value.Key);
            _order.RemoveFirst();
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
