// CPU time of a process's threads by name, from /proc/<pid>/task (Linux): where a phase's CPU went — request threads,
// the audit appender and flusher, socket threads, the collector — without a profiler (bench/README.md, ninth pass).
using System.Globalization;

namespace Vauban.Bench;

internal static class ThreadCpu
{
    private const double MicrosecondsPerTick = 1_000_000.0 / 100; // USER_HZ: 100 on Linux

    /// <summary>CPU µs so far of each live thread of this process, or of process <paramref name="pid"/>: (thread id) →
    /// (name, µs). Empty where /proc is not there.</summary>
    public static Dictionary<int, (string Name, double Microseconds)> Snapshot(int? pid = null)
    {
        var threads = new Dictionary<int, (string, double)>();
        var tasks = $"/proc/{(pid is { } id ? id.ToString(CultureInfo.InvariantCulture) : "self")}/task";
        if (!Directory.Exists(tasks)) return threads;
        foreach (var task in Directory.EnumerateDirectories(tasks))
        {
            try
            {
                // stat: "tid (comm) state ppid … utime stime …"; the name may hold spaces and parentheses: fields follow the last ')'.
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var close = stat.LastIndexOf(')');
                var name = stat[(stat.IndexOf('(') + 1)..close];
                var fields = stat[(close + 2)..].Split(' ');
                var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                threads[int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture)] = (name, ticks * MicrosecondsPerTick);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The thread (or process) ended meanwhile.
            }
        }
        return threads;
    }

    /// <summary>CPU µs per <paramref name="count"/> spent between two snapshots, by thread name (threads started meanwhile
    /// count from zero; threads that ended meanwhile are lost), largest first.</summary>
    public static List<(string Name, double PerCount)> Between(Dictionary<int, (string Name, double Microseconds)> before,
        Dictionary<int, (string Name, double Microseconds)> after, long count) =>
        after.Select(t => (t.Value.Name, Spent: t.Value.Microseconds - (before.TryGetValue(t.Key, out var b) && b.Name == t.Value.Name ? b.Microseconds : 0)))
            .GroupBy(t => t.Name)
            .Select(g => (g.Key, g.Sum(t => t.Spent) / Math.Max(1, count)))
            .OrderByDescending(t => t.Item2)
            .ToList();

    /// <summary>The machine's (all cores) stolen and total time so far, in µs, from /proc/stat's first line: steal is time the
    /// hypervisor ran someone else while this guest wanted the core (a noisy neighbour), which no change here explains.
    /// Zeros where /proc is not there.</summary>
    public static (double Stolen, double Total) Machine()
    {
        try
        {
            var line = File.ReadLines("/proc/stat").First();
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
            // user nice system idle iowait irq softirq steal …
            var steal = fields.Length > 7 ? fields[7] : 0;
            return (steal * MicrosecondsPerTick, fields.Take(8).Sum() * MicrosecondsPerTick);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or InvalidOperationException)
        {
            return (0, 0);
        }
    }
}
