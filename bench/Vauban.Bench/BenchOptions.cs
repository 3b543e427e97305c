namespace Vauban.Bench;

internal sealed record BenchOptions(string Mode, string[] Engines, int Patients, int Seconds, int Concurrency, string WorkDirectory, bool Reuse,
    long AuditEntries, int[] AuditConcurrency, string[] AuditPhases, string[] HttpPhases, string PgSharedBuffers, bool PgPrewarm,
    int Rate, bool Timeline, string? Server, bool Allocations, int Rounds, int Interleave)
{
    public static BenchOptions? Parse(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("seed" or "http" or "policy" or "audit" or "guard" or "all")) return null;
        string Value(string name, string fallback)
        {
            var index = Array.IndexOf(args, name);
            return index >= 0 && index + 1 < args.Length ? args[index + 1] : fallback;
        }
        var engine = Value("--engine", "both");
        var rate = int.Parse(Value("--rate", "0"));
        if (rate < 0) return null;
        var server = Value("--server", "");
        if (server.Length > 0 && !File.Exists(server)) return null;
        var rounds = int.Parse(Value("--rounds", "2"));
        if (rounds < 1) return null;
        var interleave = int.Parse(Value("--interleave", "15"));
        if (interleave < 0) return null;
        return new BenchOptions(args[0], engine == "both" ? ["sqlite", "postgres"] : [engine], int.Parse(Value("--patients", "100000")),
            int.Parse(Value("--seconds", "15")), int.Parse(Value("--concurrency", "16")), Path.GetFullPath(Value("--work", Path.Combine("bench", "data"))),
            args.Contains("--reuse"), long.Parse(Value("--audit-entries", "10000000")),
            Value("--audit-concurrency", "4,16,64,256").Split(',').Select(int.Parse).ToArray(), Value("--audit-phases", "append,verify,read,http").Split(','),
            Value("--http-phases", "empty,read,search,create,update").Split(','), Value("--pg-shared-buffers", "2GB"), args.Contains("--pg-prewarm"),
            rate, args.Contains("--timeline"), server.Length > 0 ? Path.GetFullPath(server) : null, args.Contains("--allocations"), rounds, interleave);
    }
}
