// What the audit log costs and how fast it goes (issue 4), in process against the seeded store:
// 1. sustained append: many concurrent callers of AuditTrail.AppendAsync (the group-commit path every read and
//    search takes) on a tenant of their own; entries committed counted from the chain head, the chain verified;
// 2. verification: a tenant's chain filled to --audit-entries real entries (sealed, hashed, checkpoints signed
//    every 4,096 entries, as under sustained load) through the appender's own code, then AuditLog.VerifyAsync timed;
// 3. audited Patient read by id vs the same read with auditing off (AuditTrail.SkipForBenchmark), through the
//    records service and through the FHIR API on Kestrel in this process, at several concurrencies.
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Records.Synthetic;
using Vauban.Storage;
using Vauban.Web;

namespace Vauban.Bench;

internal static class AuditBench
{
    private const int FillFlush = 4096; // = AuditOptions.CheckpointEvery: one signed checkpoint per flush
    private const int FillTransaction = 16 * FillFlush;

    public static async Task<List<string>> RunAsync(string engine, string db, string keyFile, string tenantName, BenchOptions options)
    {
        var report = new List<string> { $"## {engine}: audit log (in process, {options.Seconds} s per phase)", "" };
        var master = MasterKey.Load(keyFile, null);
        var ct = CancellationToken.None;

        bool Runs(string phase) => options.AuditPhases.Contains(phase);

        // 2 (filled first, with nothing else writing): the chain to verify — only when verifying (filling ten million entries
        // takes minutes and ~4 GB of the store).
        var fillTenant = $"audit-{options.AuditEntries}";
        var fill = Runs("verify") ? await FillAsync(db, master, fillTenant, options.AuditEntries) : null;

        // The guard off (its thresholds would rightly contain a principal reading a hundred patients a second): what is
        // compared here is the audit alone, with and without. The guard's own cost is measured by the guard mode.
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, master) { Guard = new GuardOptions { Enabled = false } }, ct);
        var tenant = await store.Tenants.FindAsync(tenantName, ct) ?? throw new BenchSetupException("no seeded store for this engine in --work: seed one first (seed --engine … --patients N --work …), or run all");

        // 1. Sustained append.
        var appendTenant = await store.Tenants.FindAsync("audit-append", ct) ?? await store.Tenants.AddAsync("audit-append", ct);
        // Verification alone needs no reader (nor a store seeded for one).
        var (practitioner, patients) = Runs("append") || Runs("read") || Runs("http")
            ? await PolicyBench.PickPhysicianAsync(store.Records, AccessContext.Operator(tenant, "benchmark set-up"), store.Policy.Options)
            : ("", []);
        var physician = Physician(tenant, practitioner);
        var appendContext = physician with { Tenant = appendTenant };
        if (Runs("append"))
        {
            report.Add("| sustained append (AuditTrail.AppendAsync, group commit) | entries/s committed | p50 ms | p99 ms |");
            report.Add("|---|---:|---:|---:|");
            foreach (var callers in new[] { 64, 256 })
            {
                var r = await AppendAsync(store, db, appendContext, patients, callers, options.Seconds);
                report.Add($"| {callers} concurrent callers | **{r.PerSecond:N0}** | {r.P50:F2} | {r.P99:F2} |");
            }
            var appended = await store.AuditLog.VerifyAsync(appendTenant.Id, null, ct);
            if (!appended.Valid) throw new InvalidOperationException($"the append tenant's chain does not verify: {appended.Problem}");
            report.Add("");
            report.Add($"- counted from the chain head before and after each phase; the append tenant's whole chain then verified: {appended.Entries:N0} entries, {appended.Checkpoints:N0} signed checkpoints, valid");
        }

        // 2. Verification.
        if (fill is not null)
        {
            Console.WriteLine($"  verifying {fill.Entries:N0} entries…");
            var watch = Stopwatch.StartNew();
            var verification = await store.AuditLog.VerifyAsync(fill.TenantId, new ConsoleProgress(), ct);
            var seconds = watch.Elapsed.TotalSeconds;
            if (!verification.Valid) throw new InvalidOperationException($"the filled chain does not verify: {verification.Problem}");
            report.Add($"- filled {fill.Entries:N0} entries ({fill.Added:N0} this run{(fill.Added > 0 ? $", {fill.Added / fill.Seconds:N0}/s in transactions of {FillTransaction:N0}" : ", reused")}); "
                + $"on disk {fill.Bytes / 1048576.0:N0} MiB for the whole store");
            report.Add($"- **verify {verification.Entries:N0} entries in {seconds:F1} s = {verification.Entries / seconds:N0} entries/s** "
                + $"({verification.Checkpoints:N0} signed checkpoints checked, unsigned tail {verification.UnsignedTail})");
            report.Add("");
        }

        // 3. Audited read vs auditing off, in process.
        Func<Random, Task<bool>> read = async r =>
            (await store.Records.ReadAsync(physician with { CorrelationId = r.NextInt64().ToString("x16") }, "Patient", patients[r.Next(patients.Count)], ct)).Status == RecordStatus.Ok;
        if (Runs("read"))
        {
            report.Add($"| Patient read by id, records service (physician Practitioner/{practitioner}, {patients.Count} patients in care) | audited req/s | p50 / p99 ms | auditing off req/s | p50 / p99 ms | ratio |");
            report.Add("|---|---:|---:|---:|---:|---:|");
            foreach (var concurrency in options.AuditConcurrency)
            {
                var (on, off) = await CompareAsync(store, options with { Concurrency = concurrency }, $"read, {concurrency} workers", read);
                report.Add($"| {concurrency} concurrent workers | {on.PerSecond:N0} | {on.P50:F2} / {on.P99:F2} | {off.PerSecond:N0} | {off.P50:F2} / {off.P99:F2} | **{on.PerSecond / off.PerSecond:F2}** |");
            }
            report.Add("");
        }

        // 3b. The same over HTTP (FHIR API on Kestrel in this process, an API client's token, load generator in this process too).
        if (Runs("http")) report.AddRange(await HttpAsync(store, tenant, options));
        return report;
    }

    private static AccessContext Physician(Tenant tenant, string practitioner)
    {
        SmartScopes.TryParse("user/*.cruds", TypeCodes.Names, out var scopes, out _);
        return new AccessContext(new Principal(PrincipalKind.Person, "user:bench-audit-" + Guid.NewGuid().ToString("N")[..8], "Bench physician", scopes)
        {
            Role = StaffRole.Physician, Practitioner = practitioner, AuthenticatedAt = DateTimeOffset.UtcNow, SessionId = "bench-session-0123456789abcdef",
        }, tenant, "TREAT", SourceAddress: "10.20.30.40");
    }

    // ---- 1 ----

    private static async Task<(double PerSecond, double P50, double P99)> AppendAsync(VaubanStore store, string db, AccessContext context, List<string> patients,
        int callers, int seconds)
    {
        Console.WriteLine($"  append, {callers} callers…");
        await using var database = StoreDatabase.Open(db);
        async Task<long> HeadAsync()
        {
            await using var connection = await database.OpenAsync(CancellationToken.None);
            using var command = connection.Command("SELECT seq FROM audit_heads WHERE tenant_id = @t").With("t", context.Tenant.Id);
            return await command.ScalarLongAsync(CancellationToken.None);
        }
        var all = new List<double>[callers];
        var measuring = 0;
        var stop = 0;
        var workers = Enumerable.Range(0, callers).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            var latencies = all[worker] = new List<double>(1 << 16);
            while (Volatile.Read(ref stop) == 0)
            {
                var id = patients[random.Next(patients.Count)];
                var start = Stopwatch.GetTimestamp();
                await store.Audit.AppendAsync(context with { CorrelationId = random.NextInt64().ToString("x16") }, AuditAction.Read, AuditOutcome.Success, "Patient",
                    [new AuditedRecord("Patient", id, id)], CancellationToken.None);
                if (Volatile.Read(ref measuring) == 1) latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        })).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(Math.Min(3, seconds)));
        var before = await HeadAsync();
        var watch = Stopwatch.StartNew();
        Volatile.Write(ref measuring, 1);
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        var after = await HeadAsync();
        var elapsed = watch.Elapsed.TotalSeconds;
        Volatile.Write(ref measuring, 0);
        Volatile.Write(ref stop, 1);
        await Task.WhenAll(workers);
        var sorted = all.SelectMany(l => l).Order().ToList();
        double Percentile(double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];
        return ((after - before) / elapsed, Percentile(0.5), Percentile(0.99));
    }

    // ---- 2 ----

    private sealed record Fill(long TenantId, long Entries, long Added, double Seconds, long Bytes);

    /// <summary>Extends <paramref name="tenantName"/>'s chain to <paramref name="target"/> entries through the appender's own code
    /// (AuditTrail.AppendAsync in a write scope: sealed like any entry; PendingAudit.FlushAsync → AppendInScopeAsync:
    /// chained, inserted, checkpoint signed), several flushes per transaction. Resumes an interrupted fill.</summary>
    private static async Task<Fill> FillAsync(string db, MasterKey master, string tenantName, long target)
    {
        var ct = CancellationToken.None;
        Tenant tenant;
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), ct))
        {
            tenant = await store.Tenants.FindAsync(tenantName, ct) ?? await store.Tenants.AddAsync(tenantName, ct);
        }
        await using var database = StoreDatabase.Open(db);
        using var keys = new KeyRing(database, master, TimeProvider.System);
        await using var trail = new AuditTrail(database, keys, TimeProvider.System, new AuditOptions());
        long head;
        await using (var connection = await database.OpenAsync(ct))
        {
            using var command = connection.Command("SELECT seq FROM audit_heads WHERE tenant_id = @t").With("t", tenant.Id);
            head = await command.ScalarLongAsync(ct);
        }
        var added = 0L;
        var watch = Stopwatch.StartNew();
        if (head < target)
        {
            Console.WriteLine($"  filling {tenantName}: {head:N0} → {target:N0} entries…");
            // A few hundred staff reading across a hundred thousand patients.
            var random = new Random(42);
            var staff = Enumerable.Range(0, 300).Select(i =>
            {
                SmartScopes.TryParse("user/*.cruds", TypeCodes.Names, out var scopes, out _);
                return new AccessContext(new Principal(PrincipalKind.Person, $"user:staff-{i:D4}", $"Staff member {i}", scopes)
                {
                    Role = StaffRole.Physician, Practitioner = $"prac-{i}", SessionId = $"session-{i:D4}-0123456789abcdef",
                }, tenant, "TREAT", SourceAddress: $"10.0.{i / 250}.{i % 250}");
            }).ToArray();
            long prepareTicks = 0, flushTicks = 0, commitTicks = 0;
            while (head < target)
            {
                await using var scope = await database.BeginWriteAsync(ct);
                var inTransaction = (int)Math.Min(FillTransaction, target - head);
                for (var done = 0; done < inTransaction;)
                {
                    var flush = Math.Min(FillFlush, inTransaction - done);
                    var t0 = Stopwatch.GetTimestamp();
                    for (var i = 0; i < flush; i++)
                    {
                        var patient = "pat-" + random.Next(100_000).ToString("D6");
                        var context = staff[random.Next(staff.Length)] with { CorrelationId = random.NextInt64().ToString("x16") };
                        await trail.AppendAsync(scope, context, AuditAction.Read, AuditOutcome.Success, "Patient", [new AuditedRecord("Patient", patient, patient)], ct);
                    }
                    var t1 = Stopwatch.GetTimestamp();
                    await scope.Audit!.FlushAsync(scope, ct);
                    scope.Audit = null;
                    prepareTicks += t1 - t0;
                    flushTicks += Stopwatch.GetTimestamp() - t1;
                    done += flush;
                }
                var t2 = Stopwatch.GetTimestamp();
                await scope.CommitAsync(ct);
                commitTicks += Stopwatch.GetTimestamp() - t2;
                head += inTransaction;
                added += inTransaction;
                if (head % 1_048_576 < FillTransaction || head >= target)
                {
                    Console.WriteLine($"    {head:N0} ({added / watch.Elapsed.TotalSeconds:N0}/s; seal {prepareTicks / (double)Stopwatch.Frequency:F1} s, chain+insert {flushTicks / (double)Stopwatch.Frequency:F1} s, commit {commitTicks / (double)Stopwatch.Frequency:F1} s)");
                }
            }
        }
        var seconds = watch.Elapsed.TotalSeconds;
        return new Fill(tenant.Id, head, added, seconds, await SizeAsync(database, db));
    }

    private static async Task<long> SizeAsync(StoreDatabase database, string db)
    {
        if (database.Engine == StorageEngine.Sqlite) return new[] { db, db + "-wal" }.Where(File.Exists).Sum(f => new FileInfo(f).Length);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        using var command = connection.Command("SELECT pg_database_size(current_database())");
        return await command.ScalarLongAsync(CancellationToken.None);
    }

    private sealed class ConsoleProgress : IProgress<long>
    {
        private long _next = 1_000_000;

        public void Report(long value)
        {
            if (value < _next) return;
            Console.WriteLine($"    {value:N0}");
            _next = value + 1_000_000;
        }
    }

    // ---- 3 ----

    private static async Task<((double PerSecond, double P50, double P99) On, (double PerSecond, double P50, double P99) Off)> CompareAsync(
        VaubanStore store, BenchOptions options, string name, Func<Random, Task<bool>> operation)
    {
        // Alternated twice, best round kept (shared machine; the first phase also warms caches).
        (double PerSecond, double P50, double P99) on = default, off = default;
        for (var round = 0; round < 2; round++)
        {
            store.Audit.SkipForBenchmark = false;
            var a = await PolicyBench.ClosedLoopAsync($"{name}, audited", options, operation);
            store.Audit.SkipForBenchmark = true;
            var b = await PolicyBench.ClosedLoopAsync($"{name}, auditing off", options, operation);
            store.Audit.SkipForBenchmark = false;
            if (a.PerSecond > on.PerSecond) on = a;
            if (b.PerSecond > off.PerSecond) off = b;
        }
        return (on, off);
    }

    private static async Task<List<string>> HttpAsync(VaubanStore store, Tenant tenant, BenchOptions options)
    {
        var ct = CancellationToken.None;
        var port = 19000 + Random.Shared.Next(1000);
        var baseUrl = $"http://127.0.0.1:{port}";
        var client = await store.Clients.AddAsync(tenant, "bench-audit", "system/*.cruds", null, ct);
        await using var app = VaubanHost.Build(store, new ServerOptions(baseUrl), logging => logging.ClearProviders());
        await app.StartAsync(ct);
        var lines = new List<string>
        {
            "| Patient read by id, FHIR API over HTTP (Kestrel and load generator in this process, API client) | audited req/s | p50 / p99 ms | CPU µs/req | auditing off req/s | p50 / p99 ms | CPU µs/req | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        };
        var split = new List<string>();
        try
        {
            var hospital = new SyntheticHospital(1, new DateOnly(2026, 11, 1));
            var ids = Enumerable.Range(0, 5000).Select(_ => hospital.Patient(Random.Shared.Next(options.Patients))[0].Id).ToArray();
            foreach (var concurrency in options.AuditConcurrency)
            {
                using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency * 2, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
                {
                    BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(30),
                };
                using (var token = await http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
                       { ["grant_type"] = "client_credentials", ["client_id"] = client.ClientId, ["client_secret"] = client.ClientSecret! })))
                {
                    var body = JsonDocument.Parse(await token.Content.ReadAsStringAsync()).RootElement;
                    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
                }
                using (var probe = await http.GetAsync($"/fhir/Patient/{ids[0]}"))
                {
                    if (!probe.IsSuccessStatusCode)
                    {
                        throw new InvalidOperationException($"GET /fhir/Patient/{ids[0]} answered {(int)probe.StatusCode} (--patients must not exceed the seeded count): {await probe.Content.ReadAsStringAsync()}");
                    }
                }
                // Throughput audited vs off: closed loop whatever --rate says (paced, both would read at the same rate).
                var at = options with { Concurrency = concurrency, Rate = 0 };
                (string, string?, HttpMethod) Read(Random r) => ($"/fhir/Patient/{ids[r.Next(ids.Length)]}", null, HttpMethod.Get);
                LoadResult on = new("", 0, 0, 0, 0), off = on;
                var rounds = new List<string>();
                var ratios = new List<double>();
                for (var round = 0; round < options.Rounds; round++)
                {
                    store.Audit.SkipForBenchmark = false;
                    var a = await LoadGenerator.RunAsync($"HTTP read, {concurrency} concurrent, audited", at, http, Read);
                    store.Audit.SkipForBenchmark = true;
                    var b = await LoadGenerator.RunAsync($"HTTP read, {concurrency} concurrent, auditing off", at, http, Read);
                    store.Audit.SkipForBenchmark = false;
                    foreach (var line in (a.Timeline ?? []).Concat(b.Timeline ?? [])) Console.WriteLine("      " + line);
                    if (a.Errors + b.Errors > 0) throw new InvalidOperationException($"HTTP reads failed: {a.Errors} audited, {b.Errors} unaudited");
                    ratios.Add(a.PerSecond / b.PerSecond);
                    rounds.Add($"{a.PerSecond:N0} / {b.PerSecond:N0} ({a.PerSecond / b.PerSecond:F2}; stolen {a.StolenPercent:F1} / {b.StolenPercent:F1} %)");
                    Console.WriteLine($"    round {round + 1}: audited {a.PerSecond:N0} req/s, off {b.PerSecond:N0}: {a.PerSecond / b.PerSecond:F2} (cores stolen by the hypervisor {a.StolenPercent:F1} / {b.StolenPercent:F1} %)");
                    if (a.PerSecond > on.PerSecond) on = a;
                    if (b.PerSecond > off.PerSecond) off = b;
                }
                if (on.Allocations is not null) split.Add($"- {concurrency} concurrent, allocated a request by type, audited: {on.Allocations}; off: {off.Allocations}");
                if (options.Interleave > 0) split.Add($"- {concurrency} concurrent, " + await InterleavedAsync(store, options, at, http, Read));
                lines.Add($"| {concurrency} concurrent requests | {on.PerSecond:N0} | {on.P50:F2} / {on.P99:F2} | {on.CpuMicroseconds:F0} | {off.PerSecond:N0} | {off.P50:F2} / {off.P99:F2} | {off.CpuMicroseconds:F0} | **{on.PerSecond / off.PerSecond:F2}** |");
                split.Add($"- {concurrency} concurrent, CPU µs a request by thread in the best round's phases (not the interleaved load), audited / off: {ByThread(on, off)}");
                ratios.Sort();
                var median = ratios.Count % 2 == 1 ? ratios[ratios.Count / 2] : (ratios[ratios.Count / 2 - 1] + ratios[ratios.Count / 2]) / 2;
                split.Add($"- {concurrency} concurrent, the rounds' own ratios: median **{median:F2}**, from {ratios[0]:F2} to {ratios[^1]:F2} ({ratios.Count} rounds; the table keeps each side's best round)");
                split.Add($"- {concurrency} concurrent, each round audited / off req/s: {string.Join("; ", rounds)}; warm-up {on.WarmUp.TotalSeconds:F0} / {off.WarmUp.TotalSeconds:F0} s in the best; allocated {on.AllocatedBytes:N0} / {off.AllocatedBytes:N0} bytes a request (server and load generator)");
            }
            lines.Add("");
            lines.AddRange(split);
        }
        finally
        {
            store.Audit.SkipForBenchmark = false;
            await app.StopAsync(ct);
        }
        lines.Add("");
        return lines;
    }

    /// <summary>Audited and off alternating within one load (<see cref="Interleaving"/>): the ratio this benchmark quotes.</summary>
    private static async Task<string> InterleavedAsync(VaubanStore store, BenchOptions options, BenchOptions at, HttpClient http,
        Func<Random, (string Url, string? Body, HttpMethod Method)> read)
    {
        InterleavedResult result;
        try
        {
            result = await Interleaving.RunAsync($"HTTP read, {at.Concurrency} concurrent, audited and off alternating every {Interleaving.SliceSeconds:F0} s",
                at, http, options.Interleave, read, read, audited => store.Audit.SkipForBenchmark = !audited);
        }
        finally
        {
            store.Audit.SkipForBenchmark = false;
        }
        if (result.Load.Errors > 0) throw new InvalidOperationException($"HTTP reads failed: {result.Load.Errors}");
        Console.WriteLine($"    interleaved: audited {result.First:N0} req/s, off {result.Second:N0}: {result.Ratio:F2}");
        return result.Describe("audited", "off") + $"; CPU µs a request by thread over the counted slices, audited / off: {ByThread(result.FirstByThread, result.SecondByThread)}";
    }

    /// <summary>Each thread name's CPU a request in two phases ("name a / b"), the names that spent at least 0.5 µs in either.</summary>
    private static string ByThread(LoadResult a, LoadResult b) => ByThread(a.ByThread ?? [], b.ByThread ?? []);

    private static string ByThread(IReadOnlyList<(string Name, double PerCount)> a, IReadOnlyList<(string Name, double PerCount)> b)
    {
        var first = a.ToDictionary(t => t.Name, t => t.PerCount);
        var second = b.ToDictionary(t => t.Name, t => t.PerCount);
        var names = first.Keys.Union(second.Keys).Where(n => first.GetValueOrDefault(n) >= 0.5 || second.GetValueOrDefault(n) >= 0.5)
            .OrderByDescending(n => first.GetValueOrDefault(n));
        var parts = names.Select(n => $"{n} {first.GetValueOrDefault(n):F1} / {second.GetValueOrDefault(n):F1}").ToList();
        return parts.Count == 0 ? "not available (no /proc)" : string.Join("; ", parts);
    }
}
