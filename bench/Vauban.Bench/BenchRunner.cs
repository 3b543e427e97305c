// Seeds each engine, serves it from a separate `vauban serve` process, and loads it over HTTP.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using Vauban.Records.Synthetic;

namespace Vauban.Bench;

internal static class BenchRunner
{
    private const string Tenant = "bench";
    private const int Seed = 1;
    private static readonly DateOnly AsOf = new(2026, 11, 1);

    public static async Task<int> RunAsync(BenchOptions options)
    {
        Directory.CreateDirectory(options.WorkDirectory);
        var root = FindRoot();
        string vauban;
        if (options.Server is { } server)
        {
            // A build made elsewhere (a published one, ReadyToRun…), served as it is.
            vauban = server;
            Console.WriteLine($"Serving {vauban} (not built here)");
        }
        else
        {
            Console.WriteLine("Building vauban (Release)…");
            Run("dotnet", $"build -c Release {Path.Combine(root, "src", "Vauban")} -v q -nologo", root);
            vauban = Path.Combine(root, "src", "Vauban", "bin", "Release", "net10.0", "vauban.dll");
        }
        var report = new List<string> { $"# Vauban benchmark — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, {options.Patients:N0} patients", "" };

        foreach (var engine in options.Engines)
        {
            var engineStart = report.Count;
            await using var database = await BenchDatabase.CreateAsync(engine, options);
            var keyFile = Path.Combine(options.WorkDirectory, $"{engine}.master.key");
            var seeding = options.Mode is "seed" or "audit" or "all" && !options.Reuse;
            if (!seeding && engine == "sqlite" && !File.Exists(database.Db)) throw NotSeeded(engine, options);
            if (seeding)
            {
                await database.ResetAsync();
                if (File.Exists(keyFile)) File.Delete(keyFile);
                Console.WriteLine($"[{engine}] seeding {options.Patients:N0} patients…");
                var output = Run("dotnet", $"{vauban} seed --tenant {Tenant} --patients {options.Patients} --seed {Seed} --as-of {AsOf:yyyy-MM-dd} --db \"{database.Db}\" --master-key-file {keyFile}", root);
                var line = output.Split('\n').Last(l => l.StartsWith("Seeded", StringComparison.Ordinal));
                Console.WriteLine($"[{engine}] {line}");
                var resources = long.Parse(Between(line, "(", " resources"), NumberStyles.AllowThousands);
                var seconds = double.Parse(Between(line, " in ", " s:"));
                var bytes = await database.SizeAsync();
                report.Add($"## {engine}: seed");
                report.Add($"- {options.Patients:N0} patients, {resources:N0} resources in {seconds:F1} s: **{options.Patients / seconds:N0} patients/s, {resources / seconds:N0} resources/s**");
                report.Add($"- on disk: {bytes / 1048576.0:N0} MiB = **{(double)bytes / resources:N0} bytes per resource** (data, indexes, history; after checkpoint)");
                report.Add("");
            }
            if (options.Mode is "http" or "all")
            {
                report.AddRange(await HttpAsync(engine, database, vauban, keyFile, options, root));
            }
            if (options.Mode is "policy" or "all")
            {
                report.AddRange(await PolicyBench.RunAsync(engine, database.Db, keyFile, Tenant, options));
            }
            if (options.Mode is "audit" or "all")
            {
                report.AddRange(await AuditBench.RunAsync(engine, database.Db, keyFile, Tenant, options));
            }
            if (options.Mode is "guard" or "all")
            {
                report.AddRange(await GuardBench.RunAsync(engine, database.Db, keyFile, Tenant, options));
            }
            // Each engine's figures as soon as they are measured: a later engine's failure does not lose them.
            Console.WriteLine(string.Join('\n', report.Skip(engineStart)));
        }
        var text = string.Join('\n', report);
        Console.WriteLine();
        Console.WriteLine(text);
        var resultFile = Path.Combine(options.WorkDirectory, $"results-{DateTime.UtcNow:yyyyMMdd-HHmmss}.md");
        await File.WriteAllTextAsync(resultFile, text);
        Console.WriteLine($"\n(written to {resultFile})");
        return 0;
    }

    private static BenchSetupException NotSeeded(string engine, BenchOptions options) =>
        new($"no seeded {engine} store in {options.WorkDirectory}: seed one first (seed --engine {engine} --patients N --work {options.WorkDirectory}), or run all");

    private static async Task<List<string>> HttpAsync(string engine, BenchDatabase database, string vauban, string keyFile, BenchOptions options, string root)
    {
        var port = 18000 + Random.Shared.Next(1000);
        var baseUrl = $"http://127.0.0.1:{port}";
        var warmed = Stopwatch.StartNew();
        Console.WriteLine($"  warming the page cache: {database.Warm() / 1e9:F1} GB of store read in {warmed.Elapsed.TotalSeconds:F0} s");
        if (await database.PrewarmAsync(options) is { } blocks) Console.WriteLine($"  pg_prewarm: {blocks * 8192 / 1e9:F1} GB into shared_buffers ({options.PgSharedBuffers}) in {warmed.Elapsed.TotalSeconds:F0} s");
        string client;
        try
        {
            client = Run("dotnet", $"{vauban} clients add --tenant {Tenant} --name bench --scopes system/*.cruds --db \"{database.Db}\" --master-key-file {keyFile}", root);
        }
        catch (InvalidOperationException e) when (e.Message.Contains($"No tenant named '{Tenant}'", StringComparison.Ordinal))
        {
            throw NotSeeded(engine, options);
        }
        string Field(string name) => client.Split('\n').Single(l => l.StartsWith(name + ":", StringComparison.Ordinal)).Split(':', 2)[1].Trim();
        var (clientId, secret) = (Field("client_id"), Field("client_secret"));

        // The load generator is one API client reading tens of thousands of distinct patients a minute: the guard would
        // suspend it after 25 (that is its job, measured by the guard benchmark). Here the client's volume bounds are
        // lifted so that every request is served; the guard still runs its checks on each.
        var guardConfig = Path.Combine(options.WorkDirectory, "bench-guard.json");
        await File.WriteAllTextAsync(guardConfig, """
            { "clients": { "patientsPerMinute": {}, "patientsPerHour": {}, "patientsPerDay": {}, "searchRecordsPerHour": {} } }
            """);
        using var server = Process.Start(new ProcessStartInfo("dotnet", $"{vauban} serve --urls {baseUrl} --db \"{database.Db}\" --master-key-file {keyFile} --guard-config {guardConfig}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root,
            Environment = { ["DOTNET_gcServer"] = "1", ["DOTNET_TieredPGO"] = "1" },
        })!;
        _ = server.StandardOutput.ReadToEndAsync();
        _ = server.StandardError.ReadToEndAsync();
        var lines = new List<string>();
        try
        {
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency * 2, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
            {
                BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(30),
            };
            for (var i = 0; i < 300 && !await Up(http); i++) await Task.Delay(100);
            using (var token = await http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
                   { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret })))
            {
                var body = JsonDocument.Parse(await token.Content.ReadAsStringAsync()).RootElement;
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
            }
            var hospital = new SyntheticHospital(Seed, AsOf);
            var patients = options.Patients;
            // The seed made some patients canaries; no real workload opens one, and the first read would suspend the client.
            var canaries = Run("dotnet", $"{vauban} guard canaries list --tenant {Tenant} --db \"{database.Db}\" --master-key-file {keyFile}", root)
                .Split('\n').Where(l => l.StartsWith("Patient/", StringComparison.Ordinal)).Select(l => l.Split('\t')[0]["Patient/".Length..]).ToHashSet(StringComparer.Ordinal);
            static (string Family, string BirthDate) SearchedBy(byte[] json)
            {
                using var document = JsonDocument.Parse(json);
                var r = document.RootElement;
                var family = r.GetProperty("name")[0].GetProperty("family").GetString()!;
                return (family[..Math.Min(3, family.Length)], r.GetProperty("birthDate").GetString()!);
            }
            // A search for another patient can return a canary too: same birth date, and a family prefix that matches any of the
            // canary's names (its usual name as well as its birth name, with the server's case and accent folding). No search on
            // a canary's birth date is sent (a few dozen days of ~36,500): until 2026-12-01 only the first name's prefix was
            // compared, and a search that matched a canary's usual name suspended the load client in the middle of a phase.
            var canaryPatients = SyntheticHospital.CanaryPositions(Seed, patients, canaries.Count).Select(i => hospital.Patient(i)[0]).ToList();
            if (canaryPatients.Any(p => !canaries.Contains(p.Id)))
            {
                throw new InvalidOperationException("The store's canaries are not the ones this benchmark seeds: seed the store again (without --reuse).");
            }
            var canaryBirthDates = canaryPatients.Select(p => SearchedBy(p.Json).BirthDate).ToHashSet(StringComparer.Ordinal);
            // Every patient's id and search terms, built before any phase: generating a synthetic patient for each request,
            // as this benchmark did until 2026-12-01, cost the load generator ~30 µs of the two cores it shares with the
            // server and held the read at ~0.28 of the empty endpoint (bench/README.md, tenth pass). All patients, not a
            // subset, so that reads still land anywhere in the store.
            var built = Stopwatch.StartNew();
            var table = new (string Id, string Family, string BirthDate)[patients];
            Parallel.For(0, patients, i =>
            {
                var resource = hospital.Patient(i)[0];
                var (family, birthDate) = SearchedBy(resource.Json);
                table[i] = (resource.Id, string.Intern(family), string.Intern(birthDate));
            });
            var readable = Enumerable.Range(0, patients).Where(i => !canaries.Contains(table[i].Id)).ToArray();
            var searchable = readable.Where(i => !canaryBirthDates.Contains(table[i].BirthDate)).ToArray();
            Console.WriteLine($"  {patients:N0} patients' ids and search terms generated in {built.Elapsed.TotalSeconds:F1} s");
            (int Index, string Id, string Family, string BirthDate) Sample(Random random, bool searched = false)
            {
                var i = searched ? searchable[random.Next(searchable.Length)] : readable[random.Next(readable.Length)];
                return (i, table[i].Id, table[i].Family, table[i].BirthDate);
            }

            var runs = new (string Key, string Name, Func<Random, (string Url, string? Body, HttpMethod Method)> Next)[]
            {
                ("empty", "empty Kestrel endpoint (GET /healthz)", _ => ("/healthz", null, HttpMethod.Get)),
                ("read", "Patient read by id", random => ($"/fhir/Patient/{Sample(random).Id}", null, HttpMethod.Get)),
                ("search", "Patient search family prefix + birthdate", random =>
                {
                    var p = Sample(random, searched: true);
                    return ($"/fhir/Patient?family={Uri.EscapeDataString(p.Family)}&birthdate={p.BirthDate}", null, HttpMethod.Get);
                }),
                ("create", "Patient create", random => ("/fhir/Patient", Encoding.UTF8.GetString(hospital.Patient(Sample(random).Index)[0].Json), HttpMethod.Post)),
                ("update", "Patient update", random =>
                {
                    var p = Sample(random);
                    return ($"/fhir/Patient/{p.Id}", Encoding.UTF8.GetString(hospital.Patient(p.Index)[0].Json), HttpMethod.Put);
                }),
            };
            var phases = new List<LoadResult>();
            foreach (var run in runs.Where(r => options.HttpPhases.Contains(r.Key))) phases.Add(await LoadGenerator.RunAsync(run.Name, options, http, run.Next, server.Id));
            var ceiling = await database.BarePrimaryKeyReadsAsync(options, () => Sample(Random.Shared).Id);

            lines.Add($"## {engine}: HTTP ({(options.Rate > 0 ? $"paced at {options.Rate:N0} requests/s, at most {options.Concurrency} outstanding, latency from when each request was sent, or was due if the server kept it waiting" : $"{options.Concurrency} concurrent requests")}, {options.Seconds} s per phase, load generator on the same 2 cores)");
            lines.Add("");
            lines.Add("| request | req/s | p50 ms | p99 ms | errors |");
            lines.Add("|---|---:|---:|---:|---:|");
            foreach (var phase in phases) lines.Add($"| {phase.Name} | {phase.PerSecond:N0} | {phase.P50:F2} | {phase.P99:F2} | {phase.Errors} |");
            lines.Add($"| bare primary-key SELECT through the driver ({ceiling.Threads} threads) | {ceiling.PerSecond:N0} | | | |");
            lines.Add("");
            // Paced: a phase that answered fewer requests than were due fell behind, and the requests it never sent (the
            // latest, so the slowest) are missing from its percentiles.
            foreach (var phase in phases.Where(p => options.Rate > 0 && p.PerSecond < 0.98 * options.Rate))
            {
                lines.Add($"- **{phase.Name}: {phase.PerSecond:N0} answered a second of the {options.Rate:N0} due — the server fell behind; its p99 understates the latency.**");
            }
            if (phases.Any(p => p.Errors > 0))
            {
                lines.Add($"- **Errors: {string.Join(", ", phases.Where(p => p.Errors > 0).Select(p => $"{p.Name} {p.Errors:N0}"))} — the figures of those phases are not valid.**");
                Console.Error.WriteLine("Some requests failed: see the errors column.");
            }
            var read = phases.FirstOrDefault(p => p.Name == runs[1].Name)?.PerSecond;
            var empty = phases.FirstOrDefault(p => p.Name == runs[0].Name)?.PerSecond;
            if (read is { } r && empty is { } e)
                lines.Add($"- read / empty endpoint = **{r / e:F2}**; read / bare SELECT = **{r / ceiling.PerSecond:F2}**; read / smaller ceiling = **{r / Math.Min(e, ceiling.PerSecond):F2}**");
            if (options.Interleave > 0 && options.Rate == 0 && options.HttpPhases.Contains("read") && options.HttpPhases.Contains("empty"))
            {
                // The same ratio with the two kinds of request alternating in one load: the machine's drift between phases
                // falls on both alike.
                var both = await Interleaving.RunAsync($"Patient read and the empty endpoint alternating every {Interleaving.SliceSeconds:F0} s", options, http,
                    options.Interleave, runs[1].Next, runs[0].Next, serverPid: server.Id);
                if (both.Load.Errors > 0) lines.Add($"- **Errors in the interleaved load: {both.Load.Errors:N0} — its figures are not valid.**");
                lines.Add($"- read / empty endpoint, {both.Describe("read", "empty endpoint")}");
            }
            foreach (var phase in phases.Where(p => p.ServerByThread is { Count: > 0 }))
            {
                // Where each request's CPU went: the server's threads (from /proc), and the load generator beside it.
                var busy = phase.ServerByThread!.Where(t => t.PerCount >= 0.5).Select(t => $"{t.Name} {t.PerCount:F1}");
                lines.Add($"- {phase.Name}: server CPU µs a request **{phase.ServerByThread!.Sum(t => t.PerCount):F0}** ({string.Join("; ", busy)}); load generator {phase.CpuMicroseconds:F0}; after {phase.WarmUp.TotalSeconds:F0} s of warm-up; cores stolen by the hypervisor {phase.StolenPercent:F1} %");
            }
            foreach (var phase in phases.Where(p => p.Timeline is not null))
            {
                lines.Add("");
                lines.Add($"{phase.Name}, second by second:");
                lines.Add("");
                lines.AddRange(phase.Timeline!);
            }
            lines.Add("");
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
        return lines;
    }

    private static async Task<bool> Up(HttpClient http)
    {
        try
        {
            using var response = await http.GetAsync("/healthz");
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    public static string Run(string file, string arguments, string workingDirectory)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments} failed ({process.ExitCode}): {error.Result}{output.Result}");
        return output.Result;
    }

    private static string Between(string text, string start, string end)
    {
        var from = text.IndexOf(start, StringComparison.Ordinal) + start.Length;
        return text[from..text.IndexOf(end, from, StringComparison.Ordinal)];
    }

    public static string FindRoot()
    {
        var directory = new DirectoryInfo(Directory.GetCurrentDirectory());
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Vauban.slnx"))) directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("Run from inside the Vauban repository.");
    }
}

/// <summary>The benchmark cannot run as asked (a store not seeded): its message is for the person at the terminal.</summary>
internal sealed class BenchSetupException(string message) : Exception(message);
