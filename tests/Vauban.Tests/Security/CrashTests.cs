// Invariant 8: a crash at any instant loses no acknowledged write and leaves the audit chain valid. The real `vauban serve`
// runs as a child process on 127.0.0.1 and takes concurrent FHIR creates, updates, transaction bundles and reads through an
// API client's token; it is killed with SIGKILL at varied instants (in the middle of a burst of writes, and while it starts,
// recovering the journal the previous kill left), and started again on the same store with nothing repaired by hand.
// A SIGKILL loses what the process held in memory, never what it had handed to the kernel: it does not test a power loss
// (the page cache lost too), which rests on the fsyncs described in ADR 0004 and 0009 and is not simulated here.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Records;
using Microsoft.Extensions.Logging;
using Vauban.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Vauban.Tests.Security;

public abstract class CrashTests(Engine engine, ITestOutputHelper output) : IAsyncLifetime
{
    private const string TenantName = "crash-clinic";
    private const string MarkerSystem = "urn:vauban:crash-test";
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-crash-" + Guid.NewGuid().ToString("N")[..10]);
    private string _db = "";
    private readonly List<string> _patients = [];
    private string _clientId = "", _clientSecret = "";
    private readonly ConcurrentQueue<string> _output = new();

    private string KeyFile => Path.Combine(_directory, "master.key");
    private string JournalFolder => Path.Combine(_directory, "journal");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _db = engine == Engine.Sqlite ? Path.Combine(_directory, "vauban.db") : await PostgresServer.CreateDatabaseAsync();
        await using var store = await OpenInProcessAsync();
        var tenant = await store.Tenants.AddAsync(TenantName, CancellationToken.None);
        var registration = await store.Clients.AddAsync(tenant, "crash test", "system/*.cruds", null, ClientLimits.None, CancellationToken.None);
        (_clientId, _clientSecret) = (registration.ClientId, registration.ClientSecret!);
        var context = AccessContext.Operator(tenant, "crash test set-up");
        for (var i = 0; i < 6; i++)
        {
            using var patient = JsonDocument.Parse(Samples.Patient(family: "Crash" + i, nir: Samples.ValidNir("18503751230" + (10 + i))));
            var created = await store.Records.CreateAsync(context, "Patient", patient.RootElement, null, CancellationToken.None);
            Assert.Equal(RecordStatus.Created, created.Status);
            _patients.Add(created.Id!);
        }
    }

    public Task DisposeAsync()
    {
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }

    private Task<VaubanStore> OpenInProcessAsync() => VaubanStore.OpenAsync(
        new StoreOptions(_db, MasterKey.Load(KeyFile, null)) { Audit = new AuditOptions { JournalDirectory = JournalFolder } }, CancellationToken.None);

    [Fact]
    public async Task A_server_killed_at_any_instant_keeps_every_acknowledged_write_and_audited_read_and_restarts_with_a_valid_chain()
    {
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var ledger = new Ledger();
        // Kills in the middle of the work at varied instants once writes and transactions flow (from at once to 1.5 s later), and
        // one 0.1 to 1.5 s after launch, while the server starts and copies onto the chain what the journal of the last kill holds.
        var kills = new List<int?> { random.Next(300), null, random.Next(1000), 400 + random.Next(1100) };
        foreach (var killAfter in kills)
        {
            if (killAfter is { } ms) await RunAndKillAsync(ledger, random, TimeSpan.FromMilliseconds(ms));
            else await KillWhileStartingAsync(TimeSpan.FromMilliseconds(100 + random.Next(1400)));
        }
        // The last start must come up too; a few reads, killed at once: their entries may still be only in the journal.
        await using (var server = await StartServerAsync())
        {
            using var api = await server.ClientAsync(_clientId, _clientSecret);
            foreach (var patient in _patients)
            {
                using var read = await api.GetAsync($"/fhir/Patient/{patient}");
                Assert.Equal(HttpStatusCode.OK, read.StatusCode);
                ledger.Reads.AddOrUpdate(patient, 1, (_, n) => n + 1);
            }
            server.Kill();
        }

        var context = $"(seed {seed}; {ledger.Written.Count} writes and {ledger.Transactions.Count(t => t.Acknowledged)} transactions acknowledged, "
            + $"{ledger.Unanswered} requests unanswered; rounds: {string.Join(", ", ledger.Rounds)})";
        output.WriteLine(context);
        Assert.True(ledger.Unexpected.IsEmpty, "answers that are neither success nor a dead server: " + string.Join("; ", ledger.Unexpected.Take(5)) + " " + context);
        Assert.True(ledger.Written.Count >= 18 && ledger.Transactions.Count(t => t.Acknowledged) >= 3, "too little work to mean anything " + context);
        Assert.True(ledger.Unanswered > 0, "no request was cut off by a kill " + context);

        // The operator's verification, as a process of its own on the same store (it copies the last journal onto the chain).
        var (exit, verified) = await RunVaubanAsync(["audit", "verify", "--db", _db, "--master-key-file", KeyFile]);
        Assert.True(exit == 0 && verified.Contains($"{TenantName}: OK", StringComparison.Ordinal), $"audit verify exited {exit}: {verified} {context}");

        await using (var store = await OpenInProcessAsync())
        {
            await CheckAsync(store, ledger, context);
        }
        // Every journal was copied onto the chain and deleted.
        Assert.Empty(Directory.Exists(JournalFolder) ? Directory.GetFiles(JournalFolder, "*.journal") : []);
    }

    private async Task CheckAsync(VaubanStore store, Ledger ledger, string context)
    {
        var tenant = (await store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        var check = AccessContext.Operator(tenant, "crash test check");

        // Every acknowledged create and update is there, with the version it was given.
        foreach (var write in ledger.Written)
        {
            var version = await store.Records.VReadAsync(check, "Observation", write.Id, write.Version, CancellationToken.None);
            Assert.True(version.Status == RecordStatus.Ok, $"acknowledged Observation/{write.Id} version {write.Version} is {version.Status} {context}");
            Assert.Contains(write.Marker, Encoding.UTF8.GetString(version.Json!), StringComparison.Ordinal);
        }
        // A transaction is all or nothing, answered or not; an answered one is all there with the versions it was given.
        foreach (var transaction in ledger.Transactions)
        {
            var present = new List<RecordResult>();
            foreach (var id in transaction.Created)
            {
                var read = await store.Records.ReadAsync(check, "Observation", id, CancellationToken.None);
                if (read.Status == RecordStatus.Ok) present.Add(read);
                else Assert.Equal(RecordStatus.NotFound, read.Status);
            }
            var history = await store.Records.HistoryAsync(check, "Observation", transaction.Updated.Id, null, 1000, null, CancellationToken.None);
            var updates = history.Entries.Where(e => e.Json is { } json && Encoding.UTF8.GetString(json).Contains(transaction.Marker, StringComparison.Ordinal)).ToList();
            var applied = present.Count == transaction.Created.Count;
            Assert.True(applied || present.Count == 0, $"transaction {transaction.Marker} is half applied: {present.Count} of {transaction.Created.Count} creates {context}");
            Assert.True(updates.Count == (applied ? 1 : 0), $"transaction {transaction.Marker}: {present.Count} creates, {updates.Count} versions of its update {context}");
            if (!transaction.Acknowledged) continue;
            Assert.True(applied, $"acknowledged transaction {transaction.Marker} is missing {context}");
            if (transaction.Versions is not { } versions) continue;
            // The records it created may have been updated since: each answered version holds the transaction's content.
            for (var i = 0; i < transaction.Created.Count; i++)
            {
                var version = await store.Records.VReadAsync(check, "Observation", transaction.Created[i], versions[i], CancellationToken.None);
                Assert.True(version.Status == RecordStatus.Ok && Encoding.UTF8.GetString(version.Json!).Contains(transaction.Marker, StringComparison.Ordinal),
                    $"acknowledged transaction {transaction.Marker}: Observation/{transaction.Created[i]} version {versions[i]} is {version.Status} {context}");
            }
            Assert.Equal(versions[^1], updates[0].Version);
        }

        // Every read answered 200 has its entry on the chain, and so has every acknowledged write.
        var reads = new Dictionary<string, int>(StringComparer.Ordinal);
        var writes = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var patient in _patients)
        {
            foreach (var entry in await ClientEntriesAsync(store, check, patient))
            {
                if (entry.Outcome != AuditOutcome.Success) continue;
                var counts = entry.Action == AuditAction.Read ? reads : entry.Action is AuditAction.Create or AuditAction.Update ? writes : null;
                if (counts is null) continue;
                foreach (var record in entry.Detail.Records) counts[record] = counts.GetValueOrDefault(record) + 1;
            }
        }
        foreach (var (patient, answered) in ledger.Reads)
        {
            Assert.True(reads.GetValueOrDefault("Patient/" + patient) >= answered,
                $"Patient/{patient}: {answered} reads answered, {reads.GetValueOrDefault("Patient/" + patient)} on the chain {context}");
        }
        foreach (var (id, answered) in ledger.Written.GroupBy(w => w.Id).Select(g => (g.Key, g.Count())))
        {
            Assert.True(writes.GetValueOrDefault("Observation/" + id) >= answered, $"Observation/{id}: {answered} writes answered, fewer on the chain {context}");
        }

        var verification = await store.AuditLog.VerifyAsync(tenant.Id, null, CancellationToken.None);
        Assert.True(verification.Valid, verification.Problem + " " + context);
    }

    /// <summary>The client's entries about one patient, every page.</summary>
    private async Task<List<AuditEntry>> ClientEntriesAsync(VaubanStore store, AccessContext context, string patient)
    {
        var all = new List<AuditEntry>();
        long? before = null;
        while (true)
        {
            var page = await store.AuditLog.SearchPageAsync(context, new AuditQuery { Patient = patient, Agent = _clientId, Count = 1000, BeforeSequence = before },
                CancellationToken.None);
            Assert.NotNull(page);
            all.AddRange(page.Entries);
            if (!page.More || page.Entries.Count == 0) return all;
            before = page.Entries[^1].Sequence;
        }
    }

    // ---- the work, and what was acknowledged ----

    private sealed record Write(string Id, int Version, string Marker);

    private sealed class Transaction(string marker, List<string> created, (string Id, string Patient) updated)
    {
        public string Marker { get; } = marker;
        public List<string> Created { get; } = created;
        public (string Id, string Patient) Updated { get; } = updated;
        public bool Acknowledged { get; set; }
        /// <summary>The versions answered: the created ones in order, then the update's.</summary>
        public int[]? Versions { get; set; }
    }

    private sealed class Ledger
    {
        public ConcurrentBag<Write> Written { get; } = [];
        public ConcurrentBag<Transaction> Transactions { get; } = [];
        public ConcurrentDictionary<string, int> Reads { get; } = new(StringComparer.Ordinal);
        public ConcurrentQueue<string> Unexpected { get; } = new();
        public ConcurrentQueue<string> Rounds { get; } = new();
        private int _unanswered;
        public int Unanswered => Volatile.Read(ref _unanswered);
        public void NoAnswer() => Interlocked.Increment(ref _unanswered);
    }

    private async Task RunAndKillAsync(Ledger ledger, Random random, TimeSpan killAfter)
    {
        await using var server = await StartServerAsync();
        using var api = await server.ClientAsync(_clientId, _clientSecret);
        using var stop = new CancellationTokenSource();
        var workers = new List<Task>();
        for (var i = 0; i < 6; i++) workers.Add(WriteUntilStoppedAsync(api, ledger, new Random(random.Next()), stop.Token));
        for (var i = 0; i < 2; i++) workers.Add(ReadUntilStoppedAsync(api, ledger, new Random(random.Next()), stop.Token));
        // The kill comes once writes are flowing (the first requests of a new process wait for its code to compile).
        var before = ledger.Written.Count;
        var transactionsBefore = ledger.Transactions.Count(t => t.Acknowledged);
        var flowing = Stopwatch.StartNew();
        while ((ledger.Written.Count < before + 6 || ledger.Transactions.Count(t => t.Acknowledged) == transactionsBefore)
            && flowing.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(10);
        }
        await Task.Delay(killAfter);
        server.Kill(wait: false);
        await stop.CancelAsync(); // requests in flight stay unanswered; no new ones hammer the closed port meanwhile
        server.Kill();
        ledger.Rounds.Enqueue($"{ledger.Written.Count - before} writes in {flowing.ElapsedMilliseconds} ms");
        await Task.WhenAll(workers);
    }

    private async Task WriteUntilStoppedAsync(HttpClient api, Ledger ledger, Random random, CancellationToken stop)
    {
        var owned = new List<(string Id, string Patient)>();
        while (!stop.IsCancellationRequested)
        {
            var marker = "m" + Guid.NewGuid().ToString("N");
            var roll = random.Next(10);
            if (roll < 4 || owned.Count == 0)
            {
                var patient = _patients[random.Next(_patients.Count)];
                await SendAsync(ledger, () => api.PostAsync("/fhir/Observation", FhirContent.Json(Observation(patient, marker))), HttpStatusCode.Created, async response =>
                {
                    var location = response.Headers.Location!.ToString().Split('/');
                    ledger.Written.Add(new Write(location[^3], int.Parse(location[^1]), marker));
                    owned.Add((location[^3], patient));
                    await Task.CompletedTask;
                });
            }
            else if (roll < 7)
            {
                var (id, patient) = owned[random.Next(owned.Count)];
                await SendAsync(ledger, () => api.PutAsync($"/fhir/Observation/{id}", FhirContent.Json(Observation(patient, marker, id))), HttpStatusCode.OK, response =>
                {
                    ledger.Written.Add(new Write(id, Version(response.Headers.ETag!.Tag), marker));
                    return Task.CompletedTask;
                });
            }
            else
            {
                // New records and an update of an existing one, all or nothing.
                var patient = _patients[random.Next(_patients.Count)];
                var created = Enumerable.Range(0, 3).Select(i => $"tx-{marker[1..13]}-{i}").ToList();
                var updated = owned[random.Next(owned.Count)];
                var entries = created.Select(id => (Id: id, Patient: patient)).Append(updated)
                    .Select(e => $$"""{ "resource": {{Observation(e.Patient, marker, e.Id)}}, "request": { "method": "PUT", "url": "Observation/{{e.Id}}" } }""");
                var bundle = $$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{string.Join(",", entries)}} ] }""";
                var transaction = new Transaction(marker, created, updated);
                ledger.Transactions.Add(transaction);
                await SendAsync(ledger, () => api.PostAsync("/fhir", FhirContent.Json(bundle)), HttpStatusCode.OK, async response =>
                {
                    // The status came after the commit: acknowledged, whatever happens to the body now.
                    transaction.Acknowledged = true;
                    var body = await response.BodyAsync();
                    transaction.Versions = [.. body.GetProperty("entry").EnumerateArray().Select(e => Version(e.GetProperty("response").GetProperty("etag").GetString()!))];
                    owned.AddRange(created.Select(id => (id, patient)));
                });
            }
        }
    }

    private async Task ReadUntilStoppedAsync(HttpClient api, Ledger ledger, Random random, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var patient = _patients[random.Next(_patients.Count)];
            await SendAsync(ledger, () => api.GetAsync($"/fhir/Patient/{patient}", HttpCompletionOption.ResponseHeadersRead), HttpStatusCode.OK, _ =>
            {
                // The status line is out: the data has left, so its entry must be on the journal already.
                ledger.Reads.AddOrUpdate(patient, 1, (_, n) => n + 1);
                return Task.CompletedTask;
            });
        }
    }

    /// <summary>Sends one request; <paramref name="acknowledged"/> runs when the expected status came back. A request the dead
    /// server never answered counts as unanswered; any other answer is unexpected.</summary>
    private static async Task SendAsync(Ledger ledger, Func<Task<HttpResponseMessage>> send, HttpStatusCode expected, Func<HttpResponseMessage, Task> acknowledged)
    {
        HttpResponseMessage response;
        try
        {
            response = await send();
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
        {
            ledger.NoAnswer();
            return;
        }
        using (response)
        {
            if (response.StatusCode != expected)
            {
                string body;
                try { body = await response.Content.ReadAsStringAsync(); }
                catch (Exception e) when (e is HttpRequestException or IOException) { body = "(cut off)"; }
                ledger.Unexpected.Enqueue($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath}: {(int)response.StatusCode} {body}");
                return;
            }
            try
            {
                await acknowledged(response);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                // The body was cut off by the kill; what was acknowledged is recorded already.
            }
        }
    }

    private static int Version(string etag) => int.Parse(etag.Replace("W/", "", StringComparison.Ordinal).Trim('"'));

    private static string Observation(string patient, string marker, string? id = null) => $$$"""
        {"resourceType":"Observation",{{{(id is null ? "" : $"\"id\":\"{id}\",")}}}"status":"final",
         "identifier":[{"system":"{{{MarkerSystem}}}","value":"{{{marker}}}"}],
         "code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose"}]},
         "subject":{"reference":"Patient/{{{patient}}}"},"effectiveDateTime":"2026-03-01T10:00:00+01:00",
         "valueQuantity":{"value":1.02,"unit":"g/L","system":"http://unitsofmeasure.org","code":"g/L"}}
        """;

    // ---- the child process ----

    private Process Launch(IEnumerable<string> arguments) =>
        ChildVauban.Start(arguments, _directory, _output, new Dictionary<string, string> { ["VAUBAN_AUDIT_JOURNAL"] = JournalFolder });

    private string Output() => string.Join('\n', _output.TakeLast(40));

    private async Task<(int Exit, string Output)> RunVaubanAsync(string[] arguments)
    {
        _output.Clear();
        using var process = Launch(arguments);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        process.WaitForExit(); // the output handlers are done
        return (process.ExitCode, Output());
    }

    private async Task KillWhileStartingAsync(TimeSpan after)
    {
        _output.Clear();
        using var process = Launch(ServeArguments(FreePort()));
        await Task.Delay(after);
        Assert.False(process.HasExited, "the server stopped on its own while starting: " + Output());
        process.Kill();
        await process.WaitForExitAsync();
    }

    private string[] ServeArguments(int port) => ["serve", "--urls", $"http://127.0.0.1:{port}", "--db", _db, "--master-key-file", KeyFile];

    /// <summary>Starts `vauban serve` on the store and waits until it answers /healthz (a store that needs repair fails here) and
    /// has said it listens on its port: the port was free when chosen, but a server of another test binding port 0 meanwhile can
    /// take it, answer /healthz, and not know this test's client (a token refused as invalid_client, once in a full run).</summary>
    private async Task<ChildServer> StartServerAsync()
    {
        _output.Clear();
        var port = FreePort();
        var process = Launch(ServeArguments(port));
        var server = new ChildServer(process, new Uri($"http://127.0.0.1:{port}"));
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await server.DisposeAsync();
                Assert.Fail($"vauban serve exited with {process.ExitCode} on restart: {Output()}");
            }
            try
            {
                using var health = await server.Http.GetAsync("/healthz");
                if (health.StatusCode == HttpStatusCode.OK && _output.Any(line => line.Contains($"Now listening on: http://127.0.0.1:{port}", StringComparison.Ordinal))) return server;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            if (deadline.Elapsed > TimeSpan.FromSeconds(90))
            {
                await server.DisposeAsync();
                Assert.Fail("vauban serve did not answer /healthz within 90 s: " + Output());
            }
            await Task.Delay(50);
        }
    }

    private static int FreePort() => ChildVauban.FreePort();

    private sealed class ChildServer(Process process, Uri address) : IAsyncDisposable
    {
        public HttpClient Http { get; } = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };

        public async Task<HttpClient> ClientAsync(string clientId, string secret)
        {
            using var response = await Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret,
            }));
            var body = await response.BodyAsync();
            Assert.True(response.IsSuccessStatusCode, "token: " + body);
            var api = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5), MaxConnectionsPerServer = 16 })
            {
                BaseAddress = address, Timeout = TimeSpan.FromSeconds(60),
            };
            api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
            return api;
        }

        /// <summary>SIGKILL: no shutdown code runs.</summary>
        public void Kill(bool wait = true)
        {
            if (!process.HasExited) process.Kill();
            if (wait) process.WaitForExit();
        }

        public ValueTask DisposeAsync()
        {
            Http.Dispose();
            Kill();
            process.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

public sealed class CrashTests_Sqlite(ITestOutputHelper output) : CrashTests(Engine.Sqlite, output);

public sealed class CrashTests_Postgres(ITestOutputHelper output) : CrashTests(Engine.Postgres, output);

/// <summary>PostgreSQL crashing under a live server (an immediate stop, which is what an out-of-memory kill of one backend does to
/// every session too) loses its asynchronous commits not yet flushed: the audit appender's group commits are asynchronous, made
/// durable by the flusher up to DurableEvery later. The entries they held were journaled before the reads were answered.</summary>
public sealed class PostgresCrashTests : IAsyncLifetime
{
    private readonly string _cluster = Path.Combine(Path.GetTempPath(), "vauban-pgcrash-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly string _journal = Path.Combine(Path.GetTempPath(), "vauban-pgcrash-journal-" + Guid.NewGuid().ToString("N")[..8]);
    private string _admin = "";

    public Task InitializeAsync()
    {
        _admin = Script($"start {_cluster} {FreePort()}").Trim().Split('\n')[^1];
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        Script($"stop {_cluster}");
        foreach (var folder in new[] { _cluster, _journal })
        {
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
        }
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Reads_answered_just_before_PostgreSQL_crashed_under_a_live_server_keep_their_audit_entries()
    {
        var db = await CreateDatabaseAsync("vauban_crash");
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, MasterKey.Generate()) { Audit = new AuditOptions { JournalDirectory = _journal } },
            CancellationToken.None);
        var tenant = await store.Tenants.AddAsync("clinic", CancellationToken.None);
        var registration = await store.Clients.AddAsync(tenant, "reader", "system/*.rs", null, ClientLimits.None, CancellationToken.None);
        using var json = JsonDocument.Parse(Samples.Patient(family: "Crash"));
        var patient = (await store.Records.CreateAsync(AccessContext.Operator(tenant, "set-up"), "Patient", json.RootElement, null, CancellationToken.None)).Id!;
        var app = Web.VaubanHost.Build(store, new Web.ServerOptions("http://127.0.0.1:0"), logging => logging.ClearProviders()); // the refusals while it is down are expected
        await app.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(30) };
            using (var token = await http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = registration.ClientId, ["client_secret"] = registration.ClientSecret!,
            })))
            {
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await token.BodyAsync()).GetProperty("access_token").GetString());
            }
            var (attempted, answered) = (0, 0);
            using var stop = new CancellationTokenSource();
            var readers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Interlocked.Increment(ref attempted);
                    try
                    {
                        using var read = await http.GetAsync($"/fhir/Patient/{patient}", HttpCompletionOption.ResponseHeadersRead);
                        if (read.StatusCode == HttpStatusCode.OK) Interlocked.Increment(ref answered);
                    }
                    catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
                    {
                        // not answered
                    }
                }
            })).ToList();
            var random = new Random();
            for (var crash = 0; crash < 5; crash++)
            {
                // Reads flow again after each restart before the next crash.
                var before = Volatile.Read(ref answered);
                var waited = Stopwatch.StartNew();
                while (Volatile.Read(ref answered) < before + 50 && waited.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(20);
                await Task.Delay(random.Next(300));
                CrashAndRestart();
            }
            var after = Volatile.Read(ref answered);
            var again = Stopwatch.StartNew();
            while (Volatile.Read(ref answered) < after + 50 && again.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(20);
            await stop.CancelAsync();
            await Task.WhenAll(readers);

            // Every answered read is on the chain, once (an attempt not answered may be there too).
            var context = AccessContext.Operator(tenant, "crash test check");
            var entries = new List<AuditEntry>();
            long? beforeSequence = null;
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                AuditPage? page;
                try
                {
                    page = await store.AuditLog.SearchPageAsync(context, new AuditQuery
                    {
                        Patient = patient, Agent = registration.ClientId, Actions = [AuditAction.Read], Count = 1000, BeforeSequence = beforeSequence,
                    }, CancellationToken.None);
                }
                catch (AuditUnavailableException) when (deadline.Elapsed < TimeSpan.FromSeconds(30))
                {
                    await Task.Delay(200); // the appender is still retrying after the last restart
                    continue;
                }
                entries.AddRange(page!.Entries);
                if (!page.More) break;
                beforeSequence = page.Entries[^1].Sequence;
            }
            Assert.InRange(entries.Count(e => e.Outcome == AuditOutcome.Success), answered, attempted);
            var verification = await store.AuditLog.VerifyAsync(tenant.Id, null, CancellationToken.None);
            Assert.True(verification.Valid, verification.Problem);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>The throwaway cluster runs with synchronous_commit=off and fsync=off, as an operator's careless configuration
    /// might: PostgreSQL then acknowledges a commit before its WAL leaves its shared memory, and an immediate stop loses it. A
    /// write Vauban acknowledged must survive PostgreSQL crashing all the same (fsync=off only matters to the operating system
    /// crashing, which this does not simulate), and the operator is warned of fsync=off.</summary>
    [Fact]
    public async Task Writes_acknowledged_just_before_PostgreSQL_crashed_survive_it_even_when_its_default_is_synchronous_commit_off()
    {
        var db = await CreateDatabaseAsync("vauban_writes");
        await using (var admin = new Npgsql.NpgsqlConnection(_admin)) // not db's pool: the check below must not take a connection the crash broke
        {
            await admin.OpenAsync();
            await using var show = new Npgsql.NpgsqlCommand("SHOW synchronous_commit", admin);
            Assert.Equal("off", (string?)await show.ExecuteScalarAsync());
        }
        var acknowledged = new List<string>();
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, MasterKey.Generate()) { Audit = new AuditOptions { JournalDirectory = _journal } },
            CancellationToken.None))
        {
            Assert.Contains(store.DurabilityWarnings, w => w.Contains("fsync=off", StringComparison.Ordinal));
            var tenant = await store.Tenants.AddAsync("clinic", CancellationToken.None);
            var context = AccessContext.Operator(tenant, "set-up");
            using var json = JsonDocument.Parse(Samples.Patient(family: "Durable"));
            // Creates for half a second, then PostgreSQL crashes right after the last one is acknowledged.
            var writing = Stopwatch.StartNew();
            while (writing.Elapsed < TimeSpan.FromMilliseconds(500))
            {
                acknowledged.Add((await store.Records.CreateAsync(context, "Patient", json.RootElement, null, CancellationToken.None)).Id!);
            }
            CrashAndRestart();
        }
        await using var check = new Npgsql.NpgsqlConnection(db);
        await check.OpenAsync();
        await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM resources WHERE id = ANY(@ids)", check);
        count.Parameters.AddWithValue("ids", acknowledged.ToArray());
        Assert.Equal(acknowledged.Count, (long)(await count.ExecuteScalarAsync())!);
    }

    /// <summary>PostgreSQL restarted under a live server — crashed (immediate) or stopped for maintenance (fast) — takes with it
    /// every idle connection of the server's pools: the reads', the look-ups', the audit appender's. The first requests after it
    /// is back must be answered: before, each that took a connection dead since the restart answered 503, until every one had
    /// been met once — the load balancer's health check first, which would have taken the server out of service. Each is on
    /// the audit chain, which verifies; the log says the connection was lost and re-established, never with the password.</summary>
    /// <remarks>Busy: a client reads on while PostgreSQL restarts (its requests then may fail, in flight), so the audit appender
    /// meets the restart with entries to copy and fails; the first requests after it wait for its next attempt rather than
    /// being refused by that failure.</remarks>
    [Theory]
    [InlineData("immediate", false)]
    [InlineData("fast", false)]
    [InlineData("immediate", true)]
    public async Task The_first_requests_after_PostgreSQL_restarts_under_a_live_server_are_all_answered_and_audited(string mode, bool busy)
    {
        await using var served = await ServeAsync("vauban_restart_" + mode + (busy ? "_busy" : ""));
        using var stop = new CancellationTokenSource();
        var reading = busy ? Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var read = await served.Http.GetAsync($"/fhir/Patient/{served.Patients[0]}");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // not answered while PostgreSQL is away
                }
            }
        }) : Task.CompletedTask;
        if (busy) await Task.Delay(300);
        Restart(mode);
        await stop.CancelAsync();
        await reading;
        var restarted = DateTimeOffset.UtcNow;

        // First the load balancer's check, alone: it takes a connection of the records' pool as it comes, no second try.
        using (var health = await served.Http.GetAsync("/healthz"))
        {
            Assert.True(health.StatusCode == HttpStatusCode.OK, $"/healthz after the restart: {health.StatusCode}; the log:\n{served.Log}");
        }
        var answers = await BurstAsync(served.Http, served.Patients, "After");
        await served.AssertAnsweredAndAuditedAsync(answers, restarted);

        // The operator's log: lost, then re-established; the store named by host and database, never by its password.
        for (var waited = Stopwatch.StartNew(); !served.Log.Contains("re-established", StringComparison.Ordinal) && waited.Elapsed < TimeSpan.FromSeconds(10);)
        {
            await Task.Delay(50);
        }
        var log = served.Log;
        Assert.Matches(@"connection to PostgreSQL \S+/vauban_restart_\w+ was lost \(PostgreSQL", log);
        Assert.Matches(@"connection to PostgreSQL \S+/vauban_restart_\w+ is re-established", log);
        Assert.True(log.IndexOf("was lost", StringComparison.Ordinal) < log.IndexOf("re-established", StringComparison.Ordinal), log);
        Assert.DoesNotContain(ServedStore.Password, log, StringComparison.Ordinal);
        Assert.DoesNotContain("Restart0", log, StringComparison.Ordinal);
    }

    /// <summary>The server closed the idle connections of a live server's pools without restarting — an idle-session timeout, an
    /// administrator's pg_terminate_backend —, its one watching connection spared, so nothing warned the server: the first read
    /// that takes one is run again on a new connection, every pool's dead connections dropped with it, and the reads and
    /// searches after it are answered and audited all the same.</summary>
    [Fact]
    public async Task Reads_that_take_connections_the_server_closed_meanwhile_are_answered_on_new_ones()
    {
        const string Name = "vauban_terminated";
        await using var served = await ServeAsync(Name);
        Assert.True(await TerminateAsync(Name) >= 3);
        var closed = DateTimeOffset.UtcNow;

        using (var first = await served.Http.GetAsync($"/fhir/Patient/{served.Patients[0]}"))
        {
            Assert.True(first.StatusCode == HttpStatusCode.OK, $"the first read: {first.StatusCode}; the log:\n{served.Log}");
        }
        var answers = await BurstAsync(served.Http, served.Patients, family: null);
        await served.AssertAnsweredAndAuditedAsync(answers, closed);
        Assert.DoesNotContain("was lost", served.Log, StringComparison.Ordinal); // the server itself never went away
    }

    /// <summary>The server closed the idle connections of a live server's pools, as in the test above, before each write: a create,
    /// an update and a transaction Bundle (a create and an update) — quiet, or while a client reads on. A write transaction whose
    /// connection is found lost before its COMMIT was sent is run again whole on a new connection: each is answered (201, 200,
    /// 200), each record is written once (one version more per update, one resource more per create, nothing under another id),
    /// and the audit chain verifies. Before, Npgsql sent BEGIN together with the transaction's first statement on the dead
    /// connection, nothing tried it again, and the write answered 503.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Writes_that_take_connections_the_server_closed_meanwhile_are_run_again_whole_and_written_once(bool reading)
    {
        var name = "vauban_terminated_writes" + (reading ? "_reading" : "");
        // The guard's refresh, a look-up that would meet a dead connection first (and drop them all), waits past the test.
        await using var served = await ServeAsync(name, guard: new Vauban.Guard.GuardOptions { RefreshInterval = TimeSpan.FromMinutes(10) });
        using var stop = new CancellationTokenSource();
        var reads = 0;
        var reader = reading ? Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var read = await served.Http.GetAsync($"/fhir/Patient/{served.Patients[3]}");
                    if (read.StatusCode == HttpStatusCode.OK) Interlocked.Increment(ref reads);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // a read the server could not answer: the writes are what this test holds to account
                }
            }
        }) : Task.CompletedTask;
        var (resources, archived) = (await CountAsync(name, "SELECT count(*) FROM resources"), await CountAsync(name, "SELECT count(*) FROM resource_history"));

        Assert.True(await TerminateAsync(name) >= 1);
        string created;
        using (var create = await served.Http.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Terminated"))))
        {
            Assert.True(create.StatusCode == HttpStatusCode.Created, $"the create: {create.StatusCode}; the log:\n{served.Log}");
            created = create.Headers.Location!.AbsolutePath.Split('/')[3];
        }
        Assert.True(await TerminateAsync(name) >= 1);
        var updated = served.Patients[0];
        using (var update = await served.Http.PutAsync($"/fhir/Patient/{updated}", FhirContent.Json(Samples.Patient(family: "Updated", id: updated))))
        {
            Assert.True(update.StatusCode == HttpStatusCode.OK, $"the update: {update.StatusCode}; the log:\n{served.Log}");
        }
        Assert.True(await TerminateAsync(name) >= 1);
        var inBundle = served.Patients[1];
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "urn:uuid:6d0f8a52-0e0e-4c55-9f43-3c0a7c1b2d11", "resource": {{Samples.Observation($"Patient/{inBundle}")}},
                "request": { "method": "POST", "url": "Observation" } },
              { "resource": {{Samples.Patient(family: "Bundled", id: inBundle)}}, "request": { "method": "PUT", "url": "Patient/{{inBundle}}" } } ] }
            """;
        using (var transaction = await served.Http.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            Assert.True(transaction.StatusCode == HttpStatusCode.OK, $"the transaction: {transaction.StatusCode}; the log:\n{served.Log}");
        }
        await stop.CancelAsync();
        await reader;
        if (reading) Assert.True(reads > 0, "the reader read while the writes ran");

        // Written once: one resource more for each create (the Patient, the Bundle's Observation), one version more for each update.
        Assert.Equal(resources + 2, await CountAsync(name, "SELECT count(*) FROM resources"));
        Assert.Equal(archived + 2, await CountAsync(name, "SELECT count(*) FROM resource_history"));
        Assert.Equal(1, await CountAsync(name, $"SELECT count(*) FROM resources WHERE id = '{created}' AND version = 1"));
        foreach (var patient in new[] { updated, inBundle })
        {
            Assert.Equal(1, await CountAsync(name, $"SELECT count(*) FROM resources WHERE id = '{patient}' AND version = 2"));
        }
        var verification = await served.Store.AuditLog.VerifyAsync(served.Tenant.Id, null, CancellationToken.None);
        Assert.True(verification.Valid, verification.Problem);
    }

    /// <summary>A staff member's sign-in and step-up whose write transactions lose their connection after their opening, at a later
    /// statement (the server closed it while the statement waited for a row): the password step (the sign-in throttle's count) and
    /// the step-up (the session's new token and time of proof) each run again whole on a new connection and are answered — before,
    /// those transactions tried only their opening again, and the lost statement answered 503.</summary>
    [Fact]
    public async Task A_sign_in_and_a_step_up_whose_connection_is_lost_mid_transaction_are_run_again_and_answered()
    {
        const string Name = "vauban_lost_sign_in", Email = "dr.martin@clinic.example", Password = "tourmaline ferry quietly 42";
        var time = ManualTime.AwayFromParisMidnight();
        await using var served = await ServeAsync(Name, time, new Vauban.Guard.GuardOptions { RefreshInterval = TimeSpan.FromMinutes(10) });
        var link = await served.Store.Accounts.AddAsync(served.Tenant, Email, StaffRole.Physician, "pract-1", null, "Dr Claire Martin", CancellationToken.None);
        string secret;
        using (var enrol = new StaffClient(served.Http.BaseAddress!)) (secret, _) = await enrol.EnrolWithTotpAsync(link.Token, Password, time);
        time.Advance(TimeSpan.FromSeconds(30));

        using var staff = new StaffClient(served.Http.BaseAddress!);
        // A first wrong password: the account's and the source's failure counters exist, for the test to hold them.
        var (wrong, _) = await staff.PasswordAsync(served.Tenant.Name, Email, "not the password at all");
        Assert.NotEqual("/account/signin/totp", wrong.Headers.Location?.ToString());
        var ((password, passwordPage), lostCount) = await LoseMidTransactionAsync(Name, "SELECT 1 FROM sign_in_failures FOR UPDATE", "%sign_in_failures%",
            () => staff.PasswordAsync(served.Tenant.Name, Email, Password));
        Assert.True(lostCount, "the throttle's count lost its connection");
        Assert.True(password.Headers.Location?.ToString() == "/account/signin/totp", $"the password: {password.StatusCode} {passwordPage}; the log:\n{served.Log}");
        var (code, codePage) = await staff.TotpAsync(Totp.Code(secret, time));
        Assert.True(code.Headers.Location?.ToString() == "/", $"the code: {code.StatusCode} {codePage}; the log:\n{served.Log}");

        // The step-up: a new time step for its code, not past the session's touch interval (the touch would wait on the row first).
        time.Advance(TimeSpan.FromSeconds(30));
        var before = staff.SessionCookie;
        var (form, formPage) = await staff.GetAsync("/account/reauth?returnUrl=%2F");
        Assert.True(form.StatusCode == HttpStatusCode.OK, $"the step-up page: {form.StatusCode}; the log:\n{served.Log}");
        var (stepped, lostStepUp) = await LoseMidTransactionAsync(Name, "SELECT 1 FROM staff_sessions FOR UPDATE", "%UPDATE staff_sessions SET token_hash%",
            () => staff.Http.PostAsync("/account/reauth?returnUrl=%2F", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Password"] = Password, ["Code"] = Totp.Code(secret, time), ["ReturnUrl"] = "/", ["__RequestVerificationToken"] = StaffClient.Token(formPage),
            })));
        using (stepped)
        {
            Assert.True(lostStepUp, "the step-up lost its connection");
            Assert.True(stepped.Headers.Location?.ToString() == "/", $"the step-up: {stepped.StatusCode}; the log:\n{served.Log}");
        }
        Assert.NotEqual(before, staff.SessionCookie);
        var (home, html) = await staff.GetAsync("/");
        Assert.True(home.StatusCode == HttpStatusCode.OK, $"the home page: {home.StatusCode}; the log:\n{served.Log}");
        Assert.Equal("Dr Claire Martin", StaffClient.ById(html, "who"));
    }

    /// <summary>An API client's token issuance and a transaction Bundle whose write transactions lose their connection after their
    /// opening: each runs again whole and is answered; and the guard counts the retried Bundle's search results once, as it counts an
    /// unretried one's — its level of search results an hour (12 here) is reached at exactly 12: before, the abandoned attempt's 4
    /// results stayed counted with the second's, and the client was suspended 4 results early.</summary>
    [Fact]
    public async Task A_token_and_a_transaction_Bundle_whose_connection_is_lost_mid_transaction_are_run_again_and_counted_once()
    {
        const string Name = "vauban_lost_client";
        var time = ManualTime.AwayFromParisMidnight();
        var guard = new Vauban.Guard.GuardOptions { RefreshInterval = TimeSpan.FromMinutes(10) };
        guard = guard with { Clients = guard.Clients with { SearchRecordsPerHour = new Vauban.Guard.Threshold(Suspend: 12) } };
        await using var served = await ServeAsync(Name, time, guard);
        // Past the hour: the set-up's searches leave the window, and its token (5 minutes) has expired.
        time.Advance(TimeSpan.FromMinutes(61));
        var registration = await served.Store.Clients.AddAsync(served.Tenant, "lost", "system/*.cruds", null, ClientLimits.None, CancellationToken.None);

        // The token's transaction first deletes the expired tokens: the test holds them, and the server closes the waiting connection.
        var (issued, lostToken) = await LoseMidTransactionAsync(Name, "SELECT 1 FROM access_tokens FOR UPDATE", "%DELETE FROM access_tokens%",
            () => served.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = registration.ClientId, ["client_secret"] = registration.ClientSecret!,
            })));
        using (issued)
        {
            Assert.True(lostToken, "the token's transaction lost its connection");
            Assert.True(issued.StatusCode == HttpStatusCode.OK, $"the token: {issued.StatusCode}; the log:\n{served.Log}");
            served.Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await issued.BodyAsync()).GetProperty("access_token").GetString());
        }

        // A transaction Bundle (a create, and a search of the four patients) whose audit entries wait for the chain's head.
        var ids = string.Join(',', served.Patients);
        var resources = await CountAsync(Name, "SELECT count(*) FROM resources");
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "urn:uuid:0b6c1d2e-3f40-4a51-8b62-7c83d94e0f15", "resource": {{Samples.Observation($"Patient/{served.Patients[0]}")}},
                "request": { "method": "POST", "url": "Observation" } },
              { "request": { "method": "GET", "url": "Patient?_id={{ids}}" } } ] }
            """;
        var (transaction, lostBundle) = await LoseMidTransactionAsync(Name, "SELECT 1 FROM audit_heads FOR UPDATE", "%FROM audit_heads%",
            () => served.Http.PostAsync("/fhir", FhirContent.Json(bundle)));
        using (transaction)
        {
            Assert.True(lostBundle, "the Bundle's transaction lost its connection");
            Assert.True(transaction.StatusCode == HttpStatusCode.OK, $"the transaction: {transaction.StatusCode}; the log:\n{served.Log}");
        }
        Assert.Equal(resources + 1, await CountAsync(Name, "SELECT count(*) FROM resources")); // the Observation, once

        // 4 results (the Bundle's, counted once), then 4 and 4: 12, at the level and not beyond it; one more is beyond.
        for (var search = 1; search <= 2; search++)
        {
            using var page = await served.Http.GetAsync($"/fhir/Patient?_id={ids}");
            Assert.True(page.StatusCode == HttpStatusCode.OK, $"search {search} after the Bundle: {page.StatusCode} (the Bundle's results counted twice?)");
        }
        using (var beyond = await served.Http.GetAsync($"/fhir/Patient?_id={served.Patients[0]}"))
        {
            Assert.Equal((HttpStatusCode)423, beyond.StatusCode);
        }
        var verification = await served.Store.AuditLog.VerifyAsync(served.Tenant.Id, null, CancellationToken.None);
        Assert.True(verification.Valid, verification.Problem);
    }

    /// <summary>An API client sweeping family names one letter at a time (dup, duq, dur, dus), the third search an entry of a transaction
    /// Bundle whose connection is lost mid-transaction: the guard sees the sweep at the fourth search, as it does without the loss.
    /// Before, the Bundle's abandoned attempt and its second each fed "dur" to the guard's shapes: the second was a step of 0, which
    /// broke the run, and the sweep went unseen.</summary>
    [Fact]
    public async Task A_name_sweep_one_of_whose_searches_is_run_again_after_a_lost_connection_is_caught_at_the_same_search()
    {
        const string Name = "vauban_lost_sweep";
        var time = ManualTime.AwayFromParisMidnight();
        await using var served = await ServeAsync(Name, time, new Vauban.Guard.GuardOptions { RefreshInterval = TimeSpan.FromMinutes(10) });
        async Task<IReadOnlyList<SecurityAlert>> SweepsAsync() =>
            [.. (await served.Store.Alerts.ListAsync(served.Tenant.Id, all: true, 100, CancellationToken.None))
                .Where(a => a.Kind == KnownAlertKinds.GuardSignal && a.Detail.StartsWith(Vauban.Guard.KnownGuardSignals.NameSweep, StringComparison.Ordinal))];
        async Task SearchAsync(string family)
        {
            time.Advance(TimeSpan.FromSeconds(20));
            using var page = await served.Http.GetAsync($"/fhir/Patient?family={family}");
            Assert.True(page.StatusCode == HttpStatusCode.OK, $"the search of {family}: {page.StatusCode}");
        }
        await SearchAsync("dup");
        await SearchAsync("duq");
        time.Advance(TimeSpan.FromSeconds(20));
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "urn:uuid:1c7d2e3f-4051-4b62-9c73-8d94ea0f1026", "resource": {{Samples.Observation($"Patient/{served.Patients[0]}")}},
                "request": { "method": "POST", "url": "Observation" } },
              { "request": { "method": "GET", "url": "Patient?family=dur" } } ] }
            """;
        await Task.Delay(500); // the searches' entries on the chain: the appender idle
        var (transaction, lost) = await LoseMidTransactionAsync(Name, "SELECT 1 FROM audit_heads FOR UPDATE", "%FROM audit_heads%",
            () => served.Http.PostAsync("/fhir", FhirContent.Json(bundle)));
        using (transaction)
        {
            Assert.True(lost, "the Bundle's transaction lost its connection");
            Assert.True(transaction.StatusCode == HttpStatusCode.OK, $"the transaction: {transaction.StatusCode}; the log:\n{served.Log}");
        }
        Assert.Empty(await SweepsAsync()); // three searches: not yet a sweep
        await SearchAsync("dus");
        Assert.Single(await SweepsAsync());
    }

    /// <summary>The guard's containment written while its connection is lost mid-transaction (the test holds the chain's head its commit
    /// waits for): the containment runs again whole on a new connection; the request crossing the level is answered 423, and the
    /// containment and its alert are in the store once, on the audit chain. Before, the containment's transaction was not run again:
    /// it was written off the chain on another connection (verification then reports it as added in the database).</summary>
    [Fact]
    public async Task A_containment_whose_connection_is_lost_mid_transaction_is_written_once_on_the_chain_and_the_request_answered_423()
    {
        const string Name = "vauban_lost_containment";
        var time = ManualTime.AwayFromParisMidnight();
        var guard = new Vauban.Guard.GuardOptions { RefreshInterval = TimeSpan.FromMinutes(10) };
        guard = guard with { Clients = guard.Clients with { SearchRecordsPerHour = new Vauban.Guard.Threshold(Suspend: 4) } };
        await using var served = await ServeAsync(Name, time, guard);
        // Past the hour: the set-up's searches leave the window, and its token (5 minutes) has expired.
        time.Advance(TimeSpan.FromMinutes(61));
        var registration = await served.Store.Clients.AddAsync(served.Tenant, "crossing", "system/*.rs", null, ClientLimits.None, CancellationToken.None);
        using (var issued = await served.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = registration.ClientId, ["client_secret"] = registration.ClientSecret!,
        })))
        {
            Assert.True(issued.StatusCode == HttpStatusCode.OK, $"the token: {issued.StatusCode}");
            served.Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await issued.BodyAsync()).GetProperty("access_token").GetString());
        }
        using (var four = await served.Http.GetAsync($"/fhir/Patient?_id={string.Join(',', served.Patients)}"))
        {
            Assert.True(four.StatusCode == HttpStatusCode.OK, $"4 results, at the level: {four.StatusCode}");
        }
        await Task.Delay(500); // the search's entry on the chain: the appender idle
        var (beyond, lost) = await LoseMidTransactionAsync(Name, "SELECT 1 FROM audit_heads FOR UPDATE", "%FROM audit_heads%",
            () => served.Http.GetAsync($"/fhir/Patient?_id={served.Patients[0]}"));
        using (beyond)
        {
            Assert.True(lost, "the containment's transaction lost its connection");
            Assert.True(beyond.StatusCode == (HttpStatusCode)423, $"the search beyond the level: {beyond.StatusCode}; the log:\n{served.Log}");
        }
        Assert.Equal(1, await CountAsync(Name, $"SELECT count(*) FROM guard_containments WHERE principal = '{registration.ClientId}'"));
        Assert.Single(await served.Store.Alerts.ListAsync(served.Tenant.Id, all: true, 100, CancellationToken.None),
            a => a.Kind == KnownAlertKinds.GuardSuspended);
        var verification = await served.Store.AuditLog.VerifyAsync(served.Tenant.Id, null, CancellationToken.None);
        Assert.True(verification.Valid, verification.Problem);
    }

    /// <summary>A physician breaking the glass for a patient outside her care while the grant's connection is lost mid-transaction (the
    /// test holds the chain's head its commit waits for): the grant runs again whole on a new connection and is granted — once: one
    /// grant, one alert to the officer, the patient counted once outside care — and she opens the record. Before, the grant answered 503
    /// and she had to ask again.</summary>
    [Fact]
    public async Task Breaking_the_glass_whose_connection_is_lost_mid_transaction_is_granted_once()
    {
        const string Name = "vauban_lost_grant";
        var time = ManualTime.AwayFromParisMidnight();
        await using var served = await ServeAsync(Name, time, new Vauban.Guard.GuardOptions { RefreshInterval = TimeSpan.FromMinutes(10) });
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:drA", "Dr Alpha", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician,
            SessionId = "s-1",
            AuthenticatedAt = time.GetUtcNow(),
        }, served.Tenant, "TREAT");
        var patient = served.Patients[2];
        Assert.NotEqual(RecordStatus.Ok, (await served.Store.Records.ReadAsync(physician, "Patient", patient, CancellationToken.None)).Status);
        await Task.Delay(500); // the refusal's entry on the chain: the appender idle
        var (grant, lost) = await LoseMidTransactionAsync(Name, "SELECT 1 FROM audit_heads FOR UPDATE", "%FROM audit_heads%",
            () => served.Store.BreakTheGlass.OpenAsync(physician, patient, KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", CancellationToken.None));
        Assert.True(lost, "the grant's transaction lost its connection");
        Assert.True(grant.Status == BreakGlassStatus.Granted, $"the grant: {grant.Status} {grant.Message}; the log:\n{served.Log}");
        Assert.Equal(1, await CountAsync(Name, "SELECT count(*) FROM break_glass"));
        Assert.Equal(1, await CountAsync(Name, "SELECT count(*) FROM guard_outside_care"));
        Assert.Single(await served.Store.Alerts.ListAsync(served.Tenant.Id, all: true, 100, CancellationToken.None),
            a => a.Kind == KnownAlertKinds.BreakTheGlass);
        Assert.Equal(RecordStatus.Ok, (await served.Store.Records.ReadAsync(physician, "Patient", patient, CancellationToken.None)).Status);
        var verification = await served.Store.AuditLog.VerifyAsync(served.Tenant.Id, null, CancellationToken.None);
        Assert.True(verification.Valid, verification.Problem);
    }

    /// <summary>Runs <paramref name="act"/> while a transaction of the test's own holds the rows <paramref name="hold"/> locks on
    /// database <paramref name="name"/>: the server's statement that waits for them (its text like <paramref name="statement"/>) has
    /// its connection closed (pg_terminate_backend) — a connection lost after its transaction's opening —, and the rows are let go
    /// once another statement waits for them (the transaction run again) or <paramref name="act"/> has answered. The answer, and
    /// whether a connection was closed.</summary>
    private async Task<(T Result, bool Lost)> LoseMidTransactionAsync<T>(string name, string hold, string statement, Func<Task<T>> act)
    {
        await using var holder = new Npgsql.NpgsqlConnection(new Npgsql.NpgsqlConnectionStringBuilder(_admin) { Database = name, Pooling = false }.ConnectionString);
        await holder.OpenAsync();
        await using var held = await holder.BeginTransactionAsync();
        await using (var take = new Npgsql.NpgsqlCommand(hold, holder, held)) await take.ExecuteNonQueryAsync();
        var acting = Task.Run(act);
        await using var admin = new Npgsql.NpgsqlConnection(_admin);
        await admin.OpenAsync();
        // Every statement like it that waits (the audit appender's may wait for the chain's head beside the request's): the appender
        // runs its batch again as the request does.
        async Task<long> WaitingAsync(bool terminate)
        {
            await using var find = new Npgsql.NpgsqlCommand($"""
                SELECT count({(terminate ? "pg_terminate_backend(pid, 5000)" : "*")}) FROM pg_stat_activity
                WHERE datname = @name AND wait_event_type = 'Lock' AND query ILIKE @statement AND pid <> pg_backend_pid()
                """, admin);
            find.Parameters.AddWithValue("name", name);
            find.Parameters.AddWithValue("statement", statement);
            return (long)(await find.ExecuteScalarAsync())!;
        }
        var lost = false;
        for (var waited = Stopwatch.StartNew(); !lost && !acting.IsCompleted && waited.Elapsed < TimeSpan.FromSeconds(30); await Task.Delay(20))
        {
            lost = await WaitingAsync(terminate: true) > 0;
        }
        // The second attempt waits for the rows in turn (or the act has failed): then they are let go.
        for (var waited = Stopwatch.StartNew(); !acting.IsCompleted && waited.Elapsed < TimeSpan.FromSeconds(10) && await WaitingAsync(terminate: false) == 0;) await Task.Delay(20);
        await held.RollbackAsync();
        return (await acting, lost);
    }

    /// <summary>PostgreSQL restarted under a live server — crashed, or stopped for maintenance — between a staff member's enrolment
    /// and their sign-in: the sign-in (password, then the authenticator's code, each a page over HTTP) and the first page the
    /// session opens are all answered, none with 503.</summary>
    [Theory]
    [InlineData("immediate")]
    [InlineData("fast")]
    public async Task A_staff_member_signs_in_after_PostgreSQL_restarts_under_a_live_server_and_opens_a_page(string mode)
    {
        const string Email = "dr.martin@clinic.example", Password = "tourmaline ferry quietly 42";
        var time = ManualTime.AwayFromParisMidnight();
        await using var served = await ServeAsync("vauban_restart_sign_in_" + mode, time);
        var link = await served.Store.Accounts.AddAsync(served.Tenant, Email, StaffRole.Physician, "pract-1", null, "Dr Claire Martin", CancellationToken.None);
        string secret;
        using (var enrol = new StaffClient(served.Http.BaseAddress!)) (secret, _) = await enrol.EnrolWithTotpAsync(link.Token, Password, time);
        time.Advance(TimeSpan.FromSeconds(30));
        await Task.Delay(500); // the appender idle again, as ServeAsync leaves it

        Restart(mode);

        using var staff = new StaffClient(served.Http.BaseAddress!);
        var (form, _) = await staff.GetAsync("/account/signin");
        Assert.True(form.StatusCode == HttpStatusCode.OK, $"the sign-in page: {form.StatusCode}; the log:\n{served.Log}");
        var (password, passwordPage) = await staff.PasswordAsync(served.Tenant.Name, Email, Password);
        Assert.True(password.Headers.Location?.ToString() == "/account/signin/totp", $"the password: {password.StatusCode} {passwordPage}; the log:\n{served.Log}");
        var (code, codePage) = await staff.TotpAsync(Totp.Code(secret, time));
        Assert.True(code.Headers.Location?.ToString() == "/", $"the code: {code.StatusCode} {codePage}; the log:\n{served.Log}");
        var (home, html) = await staff.GetAsync("/");
        Assert.True(home.StatusCode == HttpStatusCode.OK, $"the home page: {home.StatusCode}; the log:\n{served.Log}");
        Assert.Equal("Dr Claire Martin", StaffClient.ById(html, "who"));
    }

    /// <summary>A live server on a new database <paramref name="name"/> of the cluster, four patients, an API client's token, and
    /// every pool holding idle connections: concurrent reads and searches, creates (their writes and the appender's commits).</summary>
    private async Task<ServedStore> ServeAsync(string name, TimeProvider? time = null, Vauban.Guard.GuardOptions? guard = null)
    {
        var db = new Npgsql.NpgsqlConnectionStringBuilder(await CreateDatabaseAsync(name)) { Password = ServedStore.Password }.ConnectionString;
        // PostgreSQL's default, which the throwaway cluster turns off: the store's write transactions then send nothing before their
        // first statement (off, each would begin with SET LOCAL synchronous_commit, a round trip tried again on a dead connection).
        await using (var admin = new Npgsql.NpgsqlConnection(_admin))
        {
            await admin.OpenAsync();
            await using var on = new Npgsql.NpgsqlCommand($"ALTER DATABASE {name} SET synchronous_commit TO on", admin);
            await on.ExecuteNonQueryAsync();
        }
        var store = await VaubanStore.OpenAsync(new StoreOptions(db, MasterKey.Generate())
        {
            Audit = new AuditOptions { JournalDirectory = _journal },
            Time = time ?? TimeProvider.System,
            Guard = guard ?? new Vauban.Guard.GuardOptions(),
        }, CancellationToken.None);
        var tenant = await store.Tenants.AddAsync("clinic", CancellationToken.None);
        var registration = await store.Clients.AddAsync(tenant, "restart", "system/*.cruds", null, ClientLimits.None, CancellationToken.None);
        var patients = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            using var json = JsonDocument.Parse(Samples.Patient(family: "Restart" + i));
            patients.Add((await store.Records.CreateAsync(AccessContext.Operator(tenant, "set-up"), "Patient", json.RootElement, null, CancellationToken.None)).Id!);
        }
        var logs = new ConcurrentQueue<string>();
        var app = Web.VaubanHost.Build(store, new Web.ServerOptions("http://127.0.0.1:0"), logging =>
        {
            logging.ClearProviders();
            logging.AddProvider(new VaubanServer.CapturingLoggerProvider(logs));
        });
        await app.StartAsync();
        var served = new ServedStore(store, app, tenant, registration.ClientId, patients, logs);
        using (var token = await served.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = registration.ClientId, ["client_secret"] = registration.ClientSecret!,
        })))
        {
            served.Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await token.BodyAsync()).GetProperty("access_token").GetString());
        }
        foreach (var (what, status, _) in await BurstAsync(served.Http, patients, "Warm"))
        {
            Assert.True(status is HttpStatusCode.OK or HttpStatusCode.Created, $"{what} before: {status}");
        }
        Assert.True(await SessionsAsync(name) >= 3, "the server's pools hold idle connections");
        // The appender idle too, the entries on the chain (that search's own a moment later): the server is quiet, and the watch
        // alone sees PostgreSQL go (the appender meeting it with a batch to write would drop the pools' connections as well).
        await served.Store.AuditLog.SearchPageAsync(AccessContext.Operator(tenant, "restart test"), new AuditQuery { Count = 1 }, CancellationToken.None);
        await Task.Delay(500);
        return served;
    }

    private sealed class ServedStore(VaubanStore store, Microsoft.AspNetCore.Builder.WebApplication app, Tenant tenant, string clientId, List<string> patients, ConcurrentQueue<string> logs)
        : IAsyncDisposable
    {
        /// <summary>In the connection string only: the cluster trusts local connections, so it is never asked for, and must never be logged.</summary>
        public const string Password = "restart-password-5c1e";

        public VaubanStore Store { get; } = store;
        public Tenant Tenant { get; } = tenant;
        public HttpClient Http { get; } = new() { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(30) };
        public List<string> Patients { get; } = patients;
        public string Log => string.Join('\n', logs);

        /// <summary>Every request answered, and its entry on the audit chain since <paramref name="since"/>; the chain verifies.</summary>
        public async Task AssertAnsweredAndAuditedAsync((string What, HttpStatusCode Status, string? Id)[] answers, DateTimeOffset since)
        {
            foreach (var (what, status, _) in answers)
            {
                Assert.True(status is HttpStatusCode.OK or HttpStatusCode.Created, $"{what}: {status}; the log:\n{Log}");
            }
            var after = await EntriesAsync(new AuditQuery { Agent = clientId, From = since.AddSeconds(-1), Count = 1000 });
            foreach (var patient in Patients)
            {
                Assert.Contains(after, e => e.Action == AuditAction.Read && e.Outcome == AuditOutcome.Success && e.Detail.Patient == patient);
            }
            Assert.True(after.Count(e => e.Action == AuditAction.Search && e.Outcome == AuditOutcome.Success) >= 4, "every search is on the chain");
            foreach (var created in answers.Where(a => a.Status == HttpStatusCode.Created))
            {
                Assert.Contains(after, e => e.Action == AuditAction.Create && e.Outcome == AuditOutcome.Success && e.Detail.Patient == created.Id);
            }
            var verification = await Store.AuditLog.VerifyAsync(Tenant.Id, null, CancellationToken.None);
            Assert.True(verification.Valid, verification.Problem);
        }

        /// <summary>All the entries <paramref name="query"/> finds, once the appender has taken what was journaled.</summary>
        private async Task<List<AuditEntry>> EntriesAsync(AuditQuery query)
        {
            var context = AccessContext.Operator(Tenant, "restart test check");
            var entries = new List<AuditEntry>();
            for (var deadline = Stopwatch.StartNew(); ;)
            {
                try
                {
                    var page = await Store.AuditLog.SearchPageAsync(context, query, CancellationToken.None);
                    entries.AddRange(page!.Entries);
                    if (!page.More) return entries;
                    query = query with { BeforeSequence = page.Entries[^1].Sequence };
                }
                catch (AuditUnavailableException) when (deadline.Elapsed < TimeSpan.FromSeconds(30))
                {
                    await Task.Delay(200);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await app.StopAsync();
            await app.DisposeAsync();
            await Store.DisposeAsync();
        }
    }

    /// <summary>Reads of each patient, searches and (given a <paramref name="family"/>) creates, all at once; each request's name,
    /// status and (a create) new id.</summary>
    private static async Task<(string What, HttpStatusCode Status, string? Id)[]> BurstAsync(HttpClient http, IReadOnlyList<string> patients, string? family)
    {
        async Task<(string, HttpStatusCode, string?)> Send(string what, Func<Task<HttpResponseMessage>> request)
        {
            using var response = await request();
            return (what, response.StatusCode, response.Headers.Location?.AbsolutePath.Split('/')[3]);
        }
        var requests = new List<Task<(string, HttpStatusCode, string?)>>();
        foreach (var patient in patients) requests.Add(Task.Run(() => Send("read " + patient, () => http.GetAsync($"/fhir/Patient/{patient}"))));
        for (var i = 0; i < 4; i++)
        {
            var query = "/fhir/Patient?family=Restart" + i;
            requests.Add(Task.Run(() => Send("search " + query, () => http.GetAsync(query))));
        }
        for (var i = 0; family is not null && i < 3; i++)
        {
            requests.Add(Task.Run(() => Send("create", () => http.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: family))))));
        }
        return await Task.WhenAll(requests);
    }

    /// <summary>Closes every session of the server's pools on database <paramref name="name"/> (pg_terminate_backend, waiting for
    /// each to end), its one watching connection spared, so that nothing warns the server; how many it closed.</summary>
    private async Task<long> TerminateAsync(string name)
    {
        await using var admin = new Npgsql.NpgsqlConnection(_admin);
        await admin.OpenAsync();
        await using var terminate = new Npgsql.NpgsqlCommand("""
            SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity
            WHERE datname = @name AND application_name NOT LIKE '%connection watch%' AND pid <> pg_backend_pid()
            """, admin);
        terminate.Parameters.AddWithValue("name", name);
        return (long)(await terminate.ExecuteScalarAsync())!;
    }

    /// <summary>A count <paramref name="sql"/> reads in database <paramref name="name"/>, on a connection of its own (not pooled:
    /// <see cref="TerminateAsync"/> closes every session on the database, a pooled one of the test's too).</summary>
    private async Task<long> CountAsync(string name, string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(new Npgsql.NpgsqlConnectionStringBuilder(_admin) { Database = name, Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var count = new Npgsql.NpgsqlCommand(sql, connection);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>The sessions open on database <paramref name="name"/>, seen from the administrator's connection.</summary>
    private async Task<long> SessionsAsync(string name)
    {
        await using var admin = new Npgsql.NpgsqlConnection(_admin);
        await admin.OpenAsync();
        await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = @name", admin);
        count.Parameters.AddWithValue("name", name);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>A new database in the throwaway cluster; its connection string.</summary>
    private async Task<string> CreateDatabaseAsync(string name)
    {
        await using (var admin = new Npgsql.NpgsqlConnection(_admin))
        {
            await admin.OpenAsync();
            await using var create = new Npgsql.NpgsqlCommand($"CREATE DATABASE {name}", admin);
            await create.ExecuteNonQueryAsync();
        }
        return new Npgsql.NpgsqlConnectionStringBuilder(_admin) { Database = name }.ConnectionString;
    }

    /// <summary>pg_ctl restart in immediate mode: every backend quits at once, unflushed WAL is lost, the server recovers.</summary>
    private void CrashAndRestart() => Restart("immediate");

    /// <summary>pg_ctl restart in <paramref name="mode"/> (immediate: a crash; fast: the planned restart, each session told
    /// 57P01), returning once the server accepts connections again.</summary>
    private void Restart(string mode)
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").OrderBy(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0).Last();
        var pgCtl = $"{bin}/bin/pg_ctl -D {_cluster}/data -l {_cluster}/server.log restart -m {mode} -w -t 60";
        Run(Environment.UserName == "root" ? "runuser" : "bash", Environment.UserName == "root" ? $"-u postgres -- {pgCtl}" : $"-c \"{pgCtl}\"");
    }

    private static string Script(string arguments) => Run("bash", $"{Path.Combine(PostgresServer.RepositoryRoot(), "tests", "postgres.sh")} {arguments}");

    private static string Run(string file, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments} failed: {error}");
        return output.Result;
    }

    private static int FreePort() => ChildVauban.FreePort();
}
