// Sliding windows over a principal's reading, exact and O(1) amortised per touch. Not thread-safe: the
// guard holds the principal's lock while it asks and records (one lock per principal, so principals
// never wait for each other).
namespace Vauban.Guard;

/// <summary>
/// How many distinct keys (patients) were touched within each of several windows that end now (a minute, an hour, a day):
/// one map from each key to its last touch, shared by the windows, and each window's touches in order. A key touched
/// again leaves its earlier touch behind in the order, skipped when it reaches the front; a window's count drops when
/// the front passes a key's last touch, and the key is forgotten when it leaves the longest window. Asking and recording
/// a key costs one lookup in the map whatever the number of windows (until 2026-12-02 each window had its own map: five
/// lookups to ask and five to record a Patient read, ~9 % of the read's CPU with 50,000 patients in the windows;
/// bench/README.md). Nothing is allocated per key beyond the key itself: a day of a million patients is a dictionary, an
/// array of slots and a queue a window, not a million objects for the collector to trace (bench/README.md, thirteenth pass).
/// A touch is never recorded earlier than the latest time asked about (a clock stepped back keeps a key a little longer,
/// never less), so the touches stay in time order and a key has one touch a millisecond: keys touched within the same
/// millisecond keep the order of their first touch in it.
/// </summary>
public sealed class DistinctWindows
{
    private readonly Dictionary<string, int> _slots = new(StringComparer.Ordinal);
    private Slot[] _keys = new Slot[16];
    private readonly Stack<int> _free = new();
    private int _used; // slots ever handed out (the free ones among them are in _free)
    private readonly Window[] _windows;
    private long _now = long.MinValue; // the latest time asked about: expiry and touches never go back before it

    private struct Slot
    {
        public string Key;
        public long Last;
    }

    private sealed class Window(long lengthMs)
    {
        public readonly long LengthMs = lengthMs;
        public readonly Queue<(int Slot, long At)> Touches = new();
        public int Count; // keys whose last touch is within this window
    }

    /// <param name="lengths">The windows' lengths, shortest first.</param>
    public DistinctWindows(params TimeSpan[] lengths)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        if (lengths.Length == 0) throw new ArgumentException("At least one window.", nameof(lengths));
        for (var i = 0; i < lengths.Length; i++)
        {
            if (lengths[i] <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(lengths), "A window has a positive length.");
            if (i > 0 && lengths[i] <= lengths[i - 1]) throw new ArgumentException("Windows are given shortest first, each longer than the one before.", nameof(lengths));
        }
        _windows = [.. lengths.Select(l => new Window((long)l.TotalMilliseconds))];
    }

    /// <summary>Touches a window holds, live or left behind: right after a touch, at most twice its keys plus 64.</summary>
    internal int Held(int window) => _windows[window].Touches.Count;

    /// <summary>Distinct keys touched in (now − length, now] of the window.</summary>
    public int Count(int window, long nowMs)
    {
        Expire(nowMs);
        return _windows[window].Count;
    }

    /// <summary>Whether the key is within the window now.</summary>
    public bool Contains(int window, string key, long nowMs)
    {
        Expire(nowMs);
        return _slots.TryGetValue(key, out var slot) && _keys[slot].Last > _now - _windows[window].LengthMs;
    }

    /// <summary>The count each window would have if <paramref name="keys"/> were touched now (nothing is recorded).</summary>
    public void CountWith(IEnumerable<string> keys, long nowMs, Span<int> counts)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (counts.Length != _windows.Length) throw new ArgumentException("One count a window.", nameof(counts));
        Expire(nowMs);
        for (var w = 0; w < _windows.Length; w++) counts[w] = _windows[w].Count;
        foreach (var key in keys)
        {
            var last = _slots.TryGetValue(key, out var slot) ? _keys[slot].Last : long.MinValue;
            for (var w = 0; w < _windows.Length; w++)
            {
                if (last <= _now - _windows[w].LengthMs) counts[w]++;
            }
        }
    }

    public void Touch(string key, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(key);
        Expire(nowMs);
        var at = _now;
        ref var slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_slots, key, out var known);
        long last;
        if (known)
        {
            last = _keys[slot].Last;
            if (last == at) return;
        }
        else
        {
            slot = NewSlot();
            _keys[slot].Key = key;
            last = long.MinValue;
        }
        _keys[slot].Last = at;
        foreach (var window in _windows)
        {
            if (last <= at - window.LengthMs) window.Count++;
            window.Touches.Enqueue((slot, at));
            if (window.Touches.Count > 2 * window.Count + 64) Compact(window);
        }
    }

    /// <summary>The keys within the window now, oldest (last touched longest ago) first.</summary>
    public IEnumerable<string> Keys(int window, long nowMs)
    {
        Expire(nowMs);
        foreach (var (slot, at) in _windows[window].Touches)
        {
            if (_keys[slot].Last == at) yield return _keys[slot].Key;
        }
    }

    public void Clear()
    {
        foreach (var window in _windows)
        {
            window.Touches.Clear();
            window.Touches.TrimExcess();
            window.Count = 0;
        }
        _slots.Clear();
        _slots.TrimExcess();
        _keys = new Slot[16];
        _free.Clear();
        _free.TrimExcess();
        _used = 0;
    }

    private int NewSlot()
    {
        if (_free.TryPop(out var slot)) return slot;
        if (_used == _keys.Length) Array.Resize(ref _keys, _keys.Length * 2);
        return _used++;
    }

    /// <summary>Drops from each window the touches older than it, shortest window first: by the time the longest window
    /// forgets a key (and its slot is handed out again), no shorter window holds a touch of it. A clock stepped back
    /// brings nothing back: the windows end at the latest time asked about.</summary>
    private void Expire(long nowMs)
    {
        _now = Math.Max(_now, nowMs);
        var longest = _windows.Length - 1;
        for (var w = 0; w <= longest; w++)
        {
            var window = _windows[w];
            var cutoff = _now - window.LengthMs;
            var touches = window.Touches;
            while (touches.TryPeek(out var first) && first.At <= cutoff)
            {
                touches.Dequeue();
                if (_keys[first.Slot].Last != first.At) continue; // left behind by a later touch
                window.Count--;
                if (w == longest)
                {
                    _slots.Remove(_keys[first.Slot].Key);
                    _keys[first.Slot] = default;
                    _free.Push(first.Slot);
                }
            }
        }
    }

    /// <summary>Drops the touches left behind by later ones, in order: a key read again and again holds one touch.</summary>
    private void Compact(Window window)
    {
        var touches = window.Touches;
        for (var n = touches.Count; n > 0; n--)
        {
            var touch = touches.Dequeue();
            if (_keys[touch.Slot].Last == touch.At) touches.Enqueue(touch);
        }
    }
}

/// <summary>One window of <see cref="DistinctWindows"/>: distinct keys (patients) touched within the last <see cref="Length"/>.</summary>
public sealed class DistinctWindow(TimeSpan length)
{
    private readonly DistinctWindows _window = new(length);

    public TimeSpan Length { get; } = length;

    /// <summary>Touches held, live or left behind: right after a touch, at most twice the keys plus 64.</summary>
    internal int Held => _window.Held(0);

    /// <summary>Distinct keys touched in (now − length, now].</summary>
    public int Count(long nowMs) => _window.Count(0, nowMs);

    /// <summary>Whether the key is within the window now.</summary>
    public bool Contains(string key, long nowMs) => _window.Contains(0, key, nowMs);

    /// <summary>The count the window would have if <paramref name="keys"/> were touched now (nothing is recorded).</summary>
    public int CountWith(IEnumerable<string> keys, long nowMs)
    {
        Span<int> count = stackalloc int[1];
        _window.CountWith(keys, nowMs, count);
        return count[0];
    }

    public void Touch(string key, long nowMs) => _window.Touch(key, nowMs);

    /// <summary>The keys within the window now, oldest (last touched longest ago) first.</summary>
    public IEnumerable<string> Keys(long nowMs) => _window.Keys(0, nowMs);

    public void Clear() => _window.Clear();
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

    /// <summary>Takes back an amount <see cref="Add"/> added at <paramref name="atMs"/> (an act abandoned and done again, which adds
    /// it anew); nothing when it has left the window already. Rare: the events are copied.</summary>
    public void TakeBack(int amount, long atMs)
    {
        if (amount <= 0) return;
        var events = _events.ToArray();
        var at = Array.LastIndexOf(events, (atMs, amount));
        if (at < 0) return;
        _events.Clear();
        for (var i = 0; i < events.Length; i++)
        {
            if (i != at) _events.Enqueue(events[i]);
        }
        _sum -= amount;
    }

    public void Clear()
    {
        _events.Clear();
        _sum = 0;
    }
}
