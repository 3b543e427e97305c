// What the access policy costs (issue 3): a physician's reads and searches through the records service,
// in process (no HTTP, so the policy's share is not diluted by the transport), against the seeded
// store, three ways: the policy with its decision cache (normal), the policy deciding every time from
// SQL (cache off), and the policy forced to allow. Reports throughput, p50/p99 and the ratios.
using System.Diagnostics;
using System.Text.Json;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Records;

namespace Vauban.Bench;

internal static class PolicyBench
{
    public static async Task<List<string>> RunAsync(string engine, string db, string keyFile, string tenantName, BenchOptions options)
    {
        var report = new List<string> { $"## {engine}: access policy cost (in process, {options.Concurrency} workers, {options.Seconds} s per phase)" };
        var master = MasterKey.Load(keyFile, null);
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None);
        await using var cold = await VaubanStore.OpenAsync(new StoreOptions(db, master) { Access = new AccessOptions { DecisionCacheLifetime = TimeSpan.Zero } }, CancellationToken.None);
        var tenant = await store.Tenants.FindAsync(tenantName, CancellationToken.None) ?? throw new BenchSetupException("no seeded store for this engine in --work: seed one first (seed --engine … --patients N --work …), or run all");
        var op = AccessContext.Operator(tenant, "benchmark set-up");

        // A physician with recent encounters, and the patients those encounters relate them to.
        var (practitioner, patients) = await PickPhysicianAsync(store.Records, op, store.Policy.Options);
        var names = new List<(string Family, string BirthDate)>();
        foreach (var id in patients.Take(200))
        {
            var read = await store.Records.ReadAsync(op, "Patient", id, CancellationToken.None);
            using var document = JsonDocument.Parse(read.Json!);
            var family = document.RootElement.GetProperty("name")[0].GetProperty("family").GetString()!;
            names.Add((family[..Math.Min(4, family.Length)], document.RootElement.GetProperty("birthDate").GetString()!));
        }
        // Only the policy differs between the runs compared: the guard (which would rightly contain a physician reading
        // a hundred patients a second) and the audit append (measured by the audit mode) are off on both sides.
        foreach (var each in new[] { store, cold })
        {
            each.Guard.Disabled = true;
            each.Audit.SkipForBenchmark = true;
        }
        SmartScopes.TryParse("user/*.cruds", TypeCodes.Names, out var scopes, out _);
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:bench-physician", "Bench physician", scopes)
        {
            Role = StaffRole.Physician, Practitioner = practitioner, AuthenticatedAt = DateTimeOffset.UtcNow,
        }, tenant, "TREAT");
        foreach (var id in patients)
        {
            var check = await store.Records.ReadAsync(physician, "Patient", id, CancellationToken.None);
            if (check.Status != RecordStatus.Ok) throw new InvalidOperationException($"the policy refused the physician's own patient {id}: {check.Status} {check.Issues?[0].Diagnostics}");
        }
        report.Add($"- physician Practitioner/{practitioner}: {patients.Count} patients in care relationship (encounters in the window)");

        Func<Random, Task<bool>> Read(RecordsService records) => async random =>
            (await records.ReadAsync(physician, "Patient", patients[random.Next(patients.Count)], CancellationToken.None)).Status == RecordStatus.Ok;
        Func<Random, Task<bool>> Search(RecordsService records) => async random =>
        {
            var (family, birthDate) = names[random.Next(names.Count)];
            return (await records.SearchAsync(physician, "Patient", [new("family", family), new("birthdate", birthDate)], null, false, CancellationToken.None)).Status == RecordStatus.Ok;
        };

        foreach (var (kind, make) in new[] { ("read", (Func<RecordsService, Func<Random, Task<bool>>>)Read), ("search", Search) })
        {
            // Alternate the phases and keep each one's best round: the machine is shared, and the first phase
            // of a run also pays for warming caches.
            (double PerSecond, double P50, double P99) withCache = default, everyTime = default, allowed = default;
            for (var round = 0; round < 2; round++)
            {
                store.Policy.ForceAllow = true;
                var a = await ClosedLoopAsync($"{kind}, policy forced to allow", options, make(store.Records));
                store.Policy.ForceAllow = false;
                var w = await ClosedLoopAsync($"{kind}, policy (decision cache)", options, make(store.Records));
                var e = await ClosedLoopAsync($"{kind}, policy (decided in SQL every time)", options, make(cold.Records));
                if (a.PerSecond > allowed.PerSecond) allowed = a;
                if (w.PerSecond > withCache.PerSecond) withCache = w;
                if (e.PerSecond > everyTime.PerSecond) everyTime = e;
            }
            report.Add($"- {kind}: policy {withCache.PerSecond:N0}/s (p50 {withCache.P50:F2} ms, p99 {withCache.P99:F2} ms); "
                + $"without decision cache {everyTime.PerSecond:N0}/s (p99 {everyTime.P99:F2} ms); forced allow {allowed.PerSecond:N0}/s (p99 {allowed.P99:F2} ms) "
                + $"→ **ratio {withCache.PerSecond / allowed.PerSecond:F2}** (uncached {everyTime.PerSecond / allowed.PerSecond:F2})");
        }
        report.Add("");
        return report;
    }

    internal static async Task<(string Practitioner, List<string> Patients)> PickPhysicianAsync(RecordsService records, AccessContext op, AccessOptions access)
    {
        var since = DateTimeOffset.UtcNow - access.CareWindowPast + TimeSpan.FromDays(2); // day-granular search, minute-granular window: stay inside
        var practitioners = await records.SearchAsync(op, "Practitioner", [new("_count", "50")], null, false, CancellationToken.None);
        foreach (var entry in practitioners.Entries)
        {
            var encounters = await records.SearchAsync(op, "Encounter",
                [new("practitioner", "Practitioner/" + entry.Id), new("date", "ge" + since.ToString("yyyy-MM-dd")), new("_count", "1000")], null, false, CancellationToken.None);
            var patients = new HashSet<string>(StringComparer.Ordinal);
            foreach (var encounter in encounters.Entries)
            {
                using var document = JsonDocument.Parse(encounter.Json!);
                if (document.RootElement.TryGetProperty("subject", out var subject)) patients.Add(subject.GetProperty("reference").GetString()!["Patient/".Length..]);
            }
            if (patients.Count >= 50) return (entry.Id, patients.ToList());
        }
        throw new BenchSetupException("no practitioner has 50 patients with encounters in the care window: seed more patients (50,000 suffice)");
    }

    internal static async Task<(double PerSecond, double P50, double P99)> ClosedLoopAsync(string name, BenchOptions options, Func<Random, Task<bool>> operation)
    {
        Console.WriteLine($"  {name}…");
        async Task<(long Count, List<double> Latencies, double Seconds)> Phase(TimeSpan duration)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var all = new List<double>[options.Concurrency];
            long count = 0;
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, options.Concurrency).Select(worker => Task.Run(async () =>
            {
                var random = new Random(worker * 7919 + 17);
                var latencies = all[worker] = new List<double>(100_000);
                while (Stopwatch.GetTimestamp() < deadline)
                {
                    var start = Stopwatch.GetTimestamp();
                    if (!await operation(random)) throw new InvalidOperationException(name + " failed");
                    latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    Interlocked.Increment(ref count);
                }
            })));
            return (count, all.SelectMany(l => l).Order().ToList(), watch.Elapsed.TotalSeconds);
        }
        await Phase(TimeSpan.FromSeconds(Math.Min(3, options.Seconds)));
        var (n, sorted, seconds) = await Phase(TimeSpan.FromSeconds(options.Seconds));
        double Percentile(double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];
        return (n / seconds, Percentile(0.5), Percentile(0.99));
    }
}
