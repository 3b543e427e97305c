// An HTTP load generator: C workers each send a request, wait for the answer, repeat, for a fixed time after a
// warm-up; latency of every request is recorded. Closed loop by default (as fast as the server answers: its
// throughput, and latencies that are mostly queueing on two saturated cores); with --rate R, requests are due at
// R a second, and a request sent late because the server was slow to answer the previous one counts its latency
// from when it was due (no coordinated omission): the latency a given load sees.
using System.Diagnostics;
using System.Text;

namespace Vauban.Bench;

/// <summary>A load phase's figures; <see cref="CpuMicroseconds"/> is this process's CPU time (server and load generator when
/// both run here) per request, in µs of one core;
/// <see cref="ByThread"/> splits it by thread name, and <see cref="ServerByThread"/> that of a server in another process (Linux);
/// <see cref="AllocatedBytes"/> is what this process allocated per request (managed heap).</summary>
internal sealed record LoadResult(string Name, double PerSecond, double P50, double P99, long Errors, double CpuMicroseconds = 0,
    IReadOnlyList<(string Name, double PerCount)>? ByThread = null, IReadOnlyList<(string Name, double PerCount)>? ServerByThread = null,
    IReadOnlyList<string>? Timeline = null, TimeSpan WarmUp = default, double AllocatedBytes = 0, string? Allocations = null,
    double StolenPercent = 0);

internal static class LoadGenerator
{
    /// <summary>One phase; <paramref name="serverPid"/>: the server's process, when it is not this one, for its CPU by thread.</summary>
    public static async Task<LoadResult> RunAsync(string name, BenchOptions options, HttpClient http, Func<Random, (string Url, string? Body, HttpMethod Method)> next,
        int? serverPid = null)
    {
        Console.WriteLine($"  {name}… ({DateTime.UtcNow:HH:mm:ss.fff} UTC)");
        // Warm-up: long enough for the tiered JIT to finish the phase's paths on two busy cores (3 s was not: a read phase
        // right after the server started still spent 31.6 µs a request compiling; bench/README.md, ninth pass).
        var warmUp = TimeSpan.FromSeconds(Math.Min(8, options.Seconds));
        await PhaseAsync(warmUp, options.Concurrency, options.Rate, http, next, record: false);
        // …and until the server's tiered compiler has gone quiet: paced at 1,000 searches a second, it was still
        // recompiling hot methods 25 s into the load (up to 70 % of a core), and its bursts made the first seconds' tail
        // (bench/README.md, thirteenth pass). The figures are those of a server that has settled; at most 60 s more. The
        // server is another process, or this one (the audit benchmark).
        var pid = serverPid ?? Environment.ProcessId;
        for (var extra = 0; extra < 30; extra++)
        {
            var before = Compiling(ThreadCpu.Snapshot(pid));
            await PhaseAsync(TimeSpan.FromSeconds(2), options.Concurrency, options.Rate, http, next, record: false);
            warmUp += TimeSpan.FromSeconds(2);
            var perSecond = (Compiling(ThreadCpu.Snapshot(pid)) - before) / 2 / 1000;
            if (perSecond <= 20) break;
            Console.WriteLine($"    the server's JIT still compiling ({perSecond:F0} ms a second): warming up 2 s more");
        }
        using var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var threadsBefore = ThreadCpu.Snapshot();
        var serverBefore = serverPid is null ? null : ThreadCpu.Snapshot(serverPid);
        using var sampler = options.Allocations && serverPid is null ? new AllocationSampler() : null;
        sampler?.Start();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var machineBefore = ThreadCpu.Machine();
        var measuredFrom = DateTime.UtcNow;
        Console.WriteLine($"    measuring from {measuredFrom:HH:mm:ss.fff} UTC");
        var (count, errors, latencies, elapsed) = await PhaseAsync(TimeSpan.FromSeconds(options.Seconds), options.Concurrency, options.Rate, http, next, record: true);
        var allocated = (double)(GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / Math.Max(1, count);
        var allocations = sampler?.Stop(count);
        var machineAfter = ThreadCpu.Machine();
        var stolen = machineAfter.Total > machineBefore.Total ? 100 * (machineAfter.Stolen - machineBefore.Stolen) / (machineAfter.Total - machineBefore.Total) : 0;
        var byThread = ThreadCpu.Between(threadsBefore, ThreadCpu.Snapshot(), count);
        var serverByThread = serverBefore is null ? null : ThreadCpu.Between(serverBefore, ThreadCpu.Snapshot(serverPid), count);
        process.Refresh();
        var cpu = (process.TotalProcessorTime - cpuBefore).TotalMicroseconds / Math.Max(1, count);
        var timeline = options.Timeline ? Timeline(latencies, measuredFrom) : null;
        var sorted = latencies.Select(l => l.Milliseconds).Order().ToList();
        return new LoadResult(name, count / elapsed.TotalSeconds, Percentile(sorted, 0.50), Percentile(sorted, 0.99), errors, cpu, byThread, serverByThread, timeline, warmUp, allocated, allocations, stolen);
    }

    /// <summary>CPU µs so far of the runtime's tiered-compilation thread (its name as /proc truncates it).</summary>
    private static double Compiling(Dictionary<int, (string Name, double Microseconds)> threads) =>
        threads.Values.Where(t => t.Name.StartsWith(".NET Tiered Com", StringComparison.Ordinal)).Sum(t => t.Microseconds);

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    /// <summary>The phase second by second (by when each request was sent or due): whether its slow requests come together
    /// (a stall: a collection, a checkpoint, a lock) or are spread through it (two shared cores).</summary>
    private static List<string> Timeline(List<(double At, double Milliseconds)> latencies, DateTime from)
    {
        var lines = new List<string> { $"Second 0 began at {from:HH:mm:ss.fff} UTC.", "", "| second | requests | p50 ms | p99 ms | max ms | over 20 ms |", "|---:|---:|---:|---:|---:|---:|" };
        foreach (var second in latencies.GroupBy(l => (int)(l.At / 1000)).OrderBy(g => g.Key))
        {
            var sorted = second.Select(l => l.Milliseconds).Order().ToList();
            lines.Add($"| {second.Key} | {sorted.Count:N0} | {Percentile(sorted, 0.5):F2} | {Percentile(sorted, 0.99):F2} | {sorted[^1]:F1} | {sorted.Count(l => l > 20)} |");
        }
        return lines;
    }

    private static async Task<(long Count, long Errors, List<(double At, double Milliseconds)> Latencies, TimeSpan Elapsed)> PhaseAsync(TimeSpan duration, int concurrency, int rate, HttpClient http,
        Func<Random, (string Url, string? Body, HttpMethod Method)> next, bool record)
    {
        var origin = Stopwatch.GetTimestamp();
        var deadline = origin + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        long count = 0, errors = 0, issued = 0;
        var all = new List<(double At, double Milliseconds)>[concurrency];
        var started = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker * 7919 + Environment.TickCount);
            var latencies = all[worker] = new List<(double, double)>(100_000);
            while (Stopwatch.GetTimestamp() < deadline)
            {
                var (url, body, method) = next(random);
                using var request = new HttpRequestMessage(method, url);
                if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/fhir+json");
                var start = Stopwatch.GetTimestamp();
                if (rate > 0)
                {
                    // The next request due. A worker that is late (its previous answer came after this one was due) sends at
                    // once and the latency counts from when the request was due; one that is early sleeps, and the latency
                    // counts from when it sends, but from at most 1 ms after it was due: the timer's own lateness up to 1 ms
                    // is the load generator's, anything beyond is charged to the server (both share the two cores).
                    var due = origin + (Interlocked.Increment(ref issued) - 1) * Stopwatch.Frequency / rate;
                    if (due >= deadline) break;
                    var early = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                    if (early > TimeSpan.Zero)
                    {
                        await Task.Delay(early);
                        start = Math.Min(Stopwatch.GetTimestamp(), due + Stopwatch.Frequency / 1000);
                    }
                    else
                    {
                        start = due;
                    }
                }
                try
                {
                    using var response = await http.SendAsync(request);
                    await response.Content.LoadIntoBufferAsync();
                    if (!response.IsSuccessStatusCode && Interlocked.Increment(ref errors) == 1)
                    {
                        var answer = await response.Content.ReadAsStringAsync();
                        Console.Error.WriteLine($"    first error: {method} {url} → {(int)response.StatusCode} {answer[..Math.Min(300, answer.Length)]}");
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }
                if (record) latencies.Add((Stopwatch.GetElapsedTime(origin, start).TotalMilliseconds, Stopwatch.GetElapsedTime(start).TotalMilliseconds));
                Interlocked.Increment(ref count);
            }
        })));
        return (count, errors, all.SelectMany(l => l).ToList(), started.Elapsed);
    }
}
