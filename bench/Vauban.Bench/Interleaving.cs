// Two kinds of load compared within one load: 2 s slices alternate between them, so that this VM's drift — the same
// load's throughput moves by a fifth from one ten-second phase to the next with nothing changed — falls on both alike
// (bench/README.md, fourteenth pass). Requests count by when they were sent; each slice counts after its first
// SettleSeconds only: what the slice before left behind (requests still in flight, the audit appender's copy of what
// it journaled) is not charged to it.
using System.Diagnostics;

namespace Vauban.Bench;

/// <summary>The two kinds' throughput over their counted slices, and each (first, second) pair's own ratio, sorted.</summary>
internal sealed record InterleavedResult(double First, double Second, List<double> PairRatios, int Slices, LoadResult Load,
    List<(string Name, double PerCount)> FirstByThread, List<(string Name, double PerCount)> SecondByThread)
{
    public double Ratio => First / Second;

    public string Describe(string first, string second) => PairRatios.Count == 0
        ? "interleaved: too short to measure (raise --interleave)"
        : $"interleaved ({Slices} slices of {Interleaving.SliceSeconds:F0} s, each counted after its first {Interleaving.SettleSeconds:F1} s): {first} **{First:N0}** req/s, "
          + $"{second} **{Second:N0}**, ratio **{Ratio:F2}**; the {PairRatios.Count} pairs' own ratios: median {PairRatios[PairRatios.Count / 2]:F2}, "
          + $"quartiles {PairRatios[PairRatios.Count / 4]:F2}–{PairRatios[3 * PairRatios.Count / 4]:F2}, from {PairRatios[0]:F2} to {PairRatios[^1]:F2}";
}

internal static class Interleaving
{
    public const double SliceSeconds = 2;
    public const double SettleSeconds = 0.5;

    /// <summary>One load of <paramref name="pairs"/> pairs of slices after LoadGenerator's warm-up (which alternates too).
    /// <paramref name="onSlice"/> is told at each slice's start whether it is the first kind's (the audit benchmark turns
    /// auditing on and off there); <paramref name="first"/> and <paramref name="second"/> make each kind's requests.</summary>
    public static async Task<InterleavedResult> RunAsync(string name, BenchOptions options, HttpClient http, int pairs,
        Func<Random, (string Url, string? Body, HttpMethod Method)> first, Func<Random, (string Url, string? Body, HttpMethod Method)> second,
        Action<bool>? onSlice = null, int? serverPid = null)
    {
        long issued = 0;
        var firstActive = true;
        var slices = new List<(bool First, long Count, double Seconds, double From, List<(string Name, double PerCount)> Cpu)>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var toggler = Task.Run(async () =>
        {
            var isFirst = true;
            while (!stop.IsCancellationRequested)
            {
                onSlice?.Invoke(isFirst);
                Volatile.Write(ref firstActive, isFirst);
                var sliceStart = clock.Elapsed.TotalSeconds;
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(SettleSeconds), stop.Token);
                    var from = clock.Elapsed.TotalSeconds;
                    var before = Interlocked.Read(ref issued);
                    var cpuBefore = ThreadCpu.Snapshot(serverPid);
                    await Task.Delay(TimeSpan.FromSeconds(Math.Max(0, sliceStart + SliceSeconds - from)), stop.Token);
                    var count = Interlocked.Read(ref issued) - before;
                    var seconds = clock.Elapsed.TotalSeconds - from;
                    // CPU µs by thread name over the counted part of the slice (whole µs, not per request: summed per kind below).
                    var cpu = ThreadCpu.Between(cpuBefore, ThreadCpu.Snapshot(serverPid), 1);
                    lock (slices) slices.Add((isFirst, count, seconds, from, cpu));
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                isFirst = !isFirst;
            }
        });
        LoadResult load;
        try
        {
            load = await LoadGenerator.RunAsync(name, options with { Seconds = (int)(2 * SliceSeconds * pairs) }, http, random =>
            {
                Interlocked.Increment(ref issued);
                return Volatile.Read(ref firstActive) ? first(random) : second(random);
            }, serverPid);
        }
        finally
        {
            await stop.CancelAsync();
            await toggler;
        }
        // The measured part only: the slices that began after the warm-up.
        List<(bool First, long Count, double Seconds, double From, List<(string Name, double PerCount)> Cpu)> measured;
        lock (slices) measured = slices.Where(s => s.From >= load.WarmUp.TotalSeconds).ToList();
        double Rate(bool isFirst) =>
            measured.Where(s => s.First == isFirst).Sum(s => s.Count) / Math.Max(1e-9, measured.Where(s => s.First == isFirst).Sum(s => s.Seconds));
        var ratios = new List<double>();
        for (var i = 0; i + 1 < measured.Count; i++)
        {
            if (measured[i].First && !measured[i + 1].First) ratios.Add(measured[i].Count / measured[i].Seconds / (measured[i + 1].Count / measured[i + 1].Seconds));
        }
        ratios.Sort();
        // CPU a request by thread name over each kind's counted slices: its threads' µs summed, over its requests summed.
        List<(string Name, double PerCount)> ByThread(bool isFirst)
        {
            var kind = measured.Where(s => s.First == isFirst).ToList();
            var requests = Math.Max(1, kind.Sum(s => s.Count));
            return kind.SelectMany(s => s.Cpu).GroupBy(t => t.Name).Select(g => (g.Key, g.Sum(t => t.PerCount) / requests))
                .OrderByDescending(t => t.Item2).ToList();
        }
        return new InterleavedResult(Rate(true), Rate(false), ratios, measured.Count, load, ByThread(true), ByThread(false));
    }
}
