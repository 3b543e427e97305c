// What a phase allocates, by type: the runtime reports an allocation tick about every 100 KB allocated, naming the type
// of the object that crossed the mark, so the counts are a sample proportional to the bytes each type takes. In
// process only (the audit benchmark hosts the server in this process); --allocations turns it on.
using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Vauban.Bench;

internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private const int AllocationTickEvent = 10;
    private readonly ConcurrentDictionary<string, long> _bytes = new(StringComparer.Ordinal);
    private volatile bool _recording;

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (!_recording || eventData.EventId != AllocationTickEvent || eventData.Payload is null || eventData.PayloadNames is null) return;
        var type = eventData.PayloadNames.IndexOf("TypeName") is var t and >= 0 ? eventData.Payload[t] as string : null;
        var amount = eventData.PayloadNames.IndexOf("AllocationAmount64") is var a and >= 0 ? Convert.ToInt64(eventData.Payload[a], System.Globalization.CultureInfo.InvariantCulture) : 0;
        _bytes.AddOrUpdate(type ?? "?", amount, (_, total) => total + amount);
    }

    public void Start()
    {
        _bytes.Clear();
        _recording = true;
    }

    /// <summary>The types that took the most of the sampled bytes, as "type share %", per request of <paramref name="count"/>.</summary>
    public string Stop(long count, int top = 12)
    {
        _recording = false;
        var total = _bytes.Values.Sum();
        if (total == 0) return "no allocation sampled";
        return string.Join("; ", _bytes.OrderByDescending(p => p.Value).Take(top)
            .Select(p => $"{p.Key} {100.0 * p.Value / total:F1} % (~{(double)p.Value / Math.Max(1, count):F0} B)"));
    }
}
