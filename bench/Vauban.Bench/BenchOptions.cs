using System.Globalization;

namespace Vauban.Bench;

internal sealed record BenchOptions(string Mode, string[] Engines, int Patients, int Seconds, int Concurrency, string WorkDirectory, bool Reuse,
    long AuditEntries, int[] AuditConcurrency, string[] AuditPhases, string[] HttpPhases, string PgSharedBuffers, bool PgPrewarm,
    int Rate, bool Timeline, string? Server, bool Allocations, int Rounds, int Interleave)
{
    private static readonly string[] Modes = ["seed", "http", "policy", "audit", "guard", "all"];
    private static readonly string[] Flags = ["--reuse", "--pg-prewarm", "--timeline", "--allocations"];
    private static readonly string[] Valued =
    [
        "--engine", "--patients", "--seconds", "--concurrency", "--work", "--audit-entries", "--audit-concurrency", "--audit-phases",
        "--http-phases", "--pg-shared-buffers", "--rate", "--server", "--rounds", "--interleave",
    ];

    /// <summary>The options, or null and <paramref name="error"/> saying which argument is wrong (null too when none was given).</summary>
    public static BenchOptions? Parse(string[] args, out string? error)
    {
        error = null;
        if (args.Length == 0) return null;
        if (!Modes.Contains(args[0]))
        {
            error = $"unknown mode '{args[0]}' (one of {string.Join(", ", Modes)}, or dictionary)";
            return null;
        }
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 1; i < args.Length; i++)
        {
            if (Flags.Contains(args[i])) flags.Add(args[i]);
            else if (Valued.Contains(args[i]) && i + 1 < args.Length) values[args[i]] = args[++i];
            else
            {
                error = Valued.Contains(args[i]) ? $"{args[i]} needs a value" : $"unknown option '{args[i]}'";
                return null;
            }
        }
        try
        {
            string Text(string name, string fallback) => values.GetValueOrDefault(name, fallback);
            long Number(string name, long fallback, long min)
            {
                if (!values.TryGetValue(name, out var text)) return fallback;
                if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > int.MaxValue && name != "--audit-entries")
                {
                    throw new FormatException($"{name} takes a whole number of at least {min}, not '{text}'");
                }
                return value;
            }
            string[] Among(string name, string fallback, string[] allowed)
            {
                var chosen = Text(name, fallback).Split(',');
                var unknown = chosen.Where(c => !allowed.Contains(c)).ToList();
                if (unknown.Count > 0) throw new FormatException($"{name}: unknown '{string.Join(", ", unknown)}' (one of {string.Join(", ", allowed)})");
                return chosen;
            }
            var engine = Among("--engine", "both", ["sqlite", "postgres", "both"]);
            if (engine.Length != 1) throw new FormatException("--engine takes one of sqlite, postgres, both");
            var server = Text("--server", "");
            if (server.Length > 0 && !File.Exists(server)) throw new FormatException($"--server: no file '{server}'");
            var concurrencies = Text("--audit-concurrency", "4,16,64,256").Split(',')
                .Select(c => int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n
                    : throw new FormatException($"--audit-concurrency takes positive whole numbers separated by commas, not '{c}'")).ToArray();
            return new BenchOptions(args[0], engine[0] == "both" ? ["sqlite", "postgres"] : engine, (int)Number("--patients", 100_000, 1),
                (int)Number("--seconds", 15, 1), (int)Number("--concurrency", 16, 1), Path.GetFullPath(Text("--work", Path.Combine("bench", "data"))),
                flags.Contains("--reuse"), Number("--audit-entries", 10_000_000, 0), concurrencies,
                Among("--audit-phases", "append,verify,read,http", ["append", "verify", "read", "http"]),
                Among("--http-phases", "empty,read,search,create,update", ["empty", "read", "search", "create", "update"]),
                Text("--pg-shared-buffers", "2GB"), flags.Contains("--pg-prewarm"), (int)Number("--rate", 0, 0), flags.Contains("--timeline"),
                server.Length > 0 ? Path.GetFullPath(server) : null, flags.Contains("--allocations"), (int)Number("--rounds", 2, 1),
                (int)Number("--interleave", 15, 0));
        }
        catch (FormatException e)
        {
            error = e.Message;
            return null;
        }
    }
}
