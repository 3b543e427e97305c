// The attack benchmark of the guard (issue 5), in process through RecordsService (the one door, as the
// HTTP endpoints call it), against the seeded store: how many distinct patients' data each attack gets
// before it is contained, whether a legitimate day contains anyone, and what the guard costs on reads.
// Scenarios that need hours run on a clock the benchmark moves; the guard's added delays are set to zero
// so that the scenarios run fast (they slow an attacker down, they do not change what it gets).
using System.Diagnostics;
using System.Text.Json;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Guard;
using Vauban.Records;

namespace Vauban.Bench;

internal static class GuardBench
{
    private static readonly CancellationToken None = CancellationToken.None;

    public static async Task<List<string>> RunAsync(string engine, string db, string keyFile, string tenantName, BenchOptions options)
    {
        var master = MasterKey.Load(keyFile, null);
        var clock = new BenchClock(DateTimeOffset.UtcNow);
        var guardOptions = new GuardOptions { SlowDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero };
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, master) { Time = clock, Guard = guardOptions }, None);
        var tenant = await store.Tenants.FindAsync(tenantName, None) ?? throw new InvalidOperationException("seed the bench store first");
        var op = AccessContext.Operator(tenant, "benchmark set-up");
        var canaries = (await store.Guard.CanariesAsync(tenant.Id, None)).Select(c => c.Patient).ToList();
        if (canaries.Count == 0) canaries = [.. await store.Guard.AddCanariesAsync(store.Records, tenant, 5, None)];

        var physicians = await PhysiciansAsync(store.Records, op, store.Policy.Options, want: 12);
        var (practitioner, own) = physicians[0];
        var population = await PatientIdsAsync(store.Records, op, 2_000);
        var rows = new List<(string Scenario, string Result, string Target)>();
        var run = 0;
        string Next() => "bench-" + Guid.NewGuid().ToString("N")[..8] + "-" + run++;

        // 1a. A stolen clinician session reads, by id, every patient it can, as fast as it can.
        {
            var user = "user:" + Next();
            var (beforeStepUp, beforeSuspend, status) = await ReadUntilContainedAsync(store, () => Physician(tenant, user, practitioner, clock, fresh: false), own, clock, phished: () => Physician(tenant, user, practitioner, clock, fresh: true));
            rows.Add(("1a stolen physician session, FHIR read of their own patients (" + own.Count + " in care relationship)",
                $"{beforeStepUp} patients before the step-up (cookie thief stops here); {beforeSuspend} before suspension with phished factors ({status})", "≤ 25"));
        }
        // 1b. The same through search pages of their encounters (each page ~10 patients).
        {
            var user = "user:" + Next();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            string? page = null;
            var status = RecordStatus.Ok;
            var phished = false;
            for (var i = 0; i < 200; i++)
            {
                var context = Physician(tenant, user, practitioner, clock, fresh: phished);
                var result = await store.Records.SearchAsync(context, "Encounter", page is null ? [new("practitioner", "Practitioner/" + practitioner), new("_count", "10")] : [], page, false, None);
                if (result.Status == RecordStatus.ReauthenticationRequired && !phished) { phished = true; rows.Add(("1b stolen physician session, search pages (10 per page)", $"{seen.Count} patients before the step-up", "≤ 25")); continue; }
                status = result.Status;
                if (result.Status != RecordStatus.Ok) break;
                foreach (var entry in result.Entries) seen.Add(PatientOf(entry));
                if (result.NextPage is null) break;
                page = result.NextPage;
            }
            rows.Add(("1b … with phished factors", $"{seen.Count} patients before containment ({status})", "≤ 25"));
        }
        // 1c. Stolen credentials (factors phished, re-proved each time) breaking the glass on strangers, one every 2 minutes.
        {
            var user = "user:" + Next();
            var opened = 0;
            var status = RecordStatus.Ok;
            foreach (var patient in population.Where(p => !own.Contains(p)).Take(200))
            {
                clock.Advance(TimeSpan.FromMinutes(2));
                var context = Physician(tenant, user, practitioner, clock, fresh: true);
                var grant = await store.BreakTheGlass.OpenAsync(context, patient, KnownBreakGlassReasons.Emergency, "benchmark: unconscious patient", None);
                if (grant.Status != BreakGlassStatus.Granted) { status = RecordStatus.Locked; break; }
                var read = await store.Records.ReadAsync(context, "Patient", patient, None);
                status = read.Status;
                if (read.Status != RecordStatus.Ok) break;
                opened++;
            }
            rows.Add(("1c stolen credentials, break-the-glass on strangers every 2 min", $"{opened} patients outside care before containment ({status})", "≤ 25"));
        }
        // 2. Slow and low: one patient every 30 s, then every 5 min, for 24 h of simulated time, as a secretary (reaches every identity).
        foreach (var every in new[] { TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5) })
        {
            var user = "user:" + Next();
            var stepUp = -1;
            var opened = 0;
            var status = RecordStatus.Ok;
            var end = clock.GetUtcNow() + TimeSpan.FromHours(24);
            var i = 0;
            while (clock.GetUtcNow() < end)
            {
                var context = Secretary(tenant, user, clock, fresh: stepUp >= 0);
                var read = await store.Records.ReadAsync(context, "Patient", population[i % population.Count], None);
                if (read.Status == RecordStatus.ReauthenticationRequired && stepUp < 0) { stepUp = opened; continue; }
                status = read.Status;
                if (read.Status != RecordStatus.Ok) break;
                opened++;
                i++;
                clock.Advance(every);
            }
            rows.Add(($"2 slow and low: stolen secretary session, one patient every {Describe(every)} for 24 h",
                $"{(stepUp < 0 ? "no step-up" : stepUp + " patients before the step-up")}; {opened} before {(status == RecordStatus.Ok ? "the end of the day, not contained" : "suspension")}",
                "contained within the role's day bound"));
        }
        // 3. A vendor's API client with system/Patient.rs enumerates identities: by id, and by search pages of 20.
        {
            var client = Client(tenant, Next());
            var (_, opened, status) = await ReadUntilContainedAsync(store, () => client, population, clock, phished: null);
            rows.Add(("3a vendor API client (system/Patient.rs), Patient read by id", $"{opened} patients before suspension ({status})", "≤ 25 beyond normal volume"));
            var pager = Client(tenant, Next());
            var seen = new HashSet<string>(StringComparer.Ordinal);
            string? page = null;
            var pageStatus = RecordStatus.Ok;
            for (var i = 0; i < 100; i++)
            {
                var result = await store.Records.SearchAsync(pager, "Patient", page is null ? [new("_count", "20")] : [], page, false, None);
                pageStatus = result.Status;
                if (result.Status != RecordStatus.Ok) break;
                foreach (var entry in result.Entries) seen.Add(entry.Id);
                if (result.NextPage is null) break;
                page = result.NextPage;
            }
            rows.Add(("3b vendor API client, Patient search pages of 20", $"{seen.Count} patients before suspension ({pageStatus})", "≤ 25 beyond normal volume"));
            var slow = Client(tenant, Next());
            var slowOpened = 0;
            var slowStatus = RecordStatus.Ok;
            for (var i = 0; i < population.Count; i++)
            {
                var read = await store.Records.ReadAsync(slow, "Patient", population[i], None);
                slowStatus = read.Status;
                if (read.Status != RecordStatus.Ok) break;
                slowOpened++;
                clock.Advance(TimeSpan.FromSeconds(10));
            }
            rows.Add(("3c vendor API client, one Patient every 10 s", $"{slowOpened} patients before suspension ({slowStatus})", "hour bound (200)"));
        }
        // 4. Canary: a client reading patients meets a canary.
        {
            var client = Client(tenant, Next());
            var requests = 0;
            var status = RecordStatus.Ok;
            foreach (var patient in population.Take(5).Append(canaries[0]).Concat(population.Skip(5).Take(5)))
            {
                requests++;
                status = (await store.Records.ReadAsync(client, "Patient", patient, None)).Status;
                if (status != RecordStatus.Ok) break;
            }
            rows.Add(("4 canary read (6th request)", $"contained at request {requests} ({status})", "at once"));
        }
        // 5. A legitimate day: 12 physicians opening their own patients for 12 h (rounds every 10 min, a search every hour),
        //    one emergency break-the-glass each at noon.
        {
            var contained = 0;
            var stepUps = 0;
            var users = physicians.Select(p => ("user:" + Next(), p.Practitioner, p.Patients)).ToList();
            var desks = Enumerable.Range(0, 4).Select(_ => "user:" + Next()).ToList();
            int deskContained = 0, deskStepUps = 0;
            var random = new Random(11);
            for (var step = 0; step < 72; step++)
            {
                foreach (var (user, pract, patients) in users)
                {
                    var context = Physician(tenant, user, pract, clock, fresh: false);
                    for (var k = 0; k < 2; k++)
                    {
                        var status = (await store.Records.ReadAsync(context, "Patient", patients[random.Next(Math.Min(40, patients.Count))], None)).Status;
                        if (status == RecordStatus.ReauthenticationRequired) stepUps++;
                        else if (status == RecordStatus.Locked) contained++;
                    }
                    if (step % 6 == 0)
                    {
                        var status = (await store.Records.SearchAsync(context, "Encounter", [new("practitioner", "Practitioner/" + pract), new("_count", "10")], null, false, None)).Status;
                        if (status == RecordStatus.ReauthenticationRequired) stepUps++;
                        else if (status == RecordStatus.Locked) contained++;
                    }
                    // An emergency surge at 14:00: the first physician breaks the glass for 6 unknown patients within 30 minutes.
                    if (step is >= 36 and < 39 && user == users[0].Item1)
                    {
                        for (var k = 0; k < 2; k++)
                        {
                            var fresh = Physician(tenant, user, pract, clock, fresh: true);
                            var stranger = population[random.Next(population.Count)];
                            if ((await store.BreakTheGlass.OpenAsync(fresh, stranger, KnownBreakGlassReasons.Emergency, "benchmark: emergency surge", None)).Status != BreakGlassStatus.Granted) contained++;
                            var status = (await store.Records.ReadAsync(fresh, "Patient", stranger, None)).Status;
                            if (status == RecordStatus.ReauthenticationRequired) stepUps++;
                            else if (status != RecordStatus.Ok) contained++;
                        }
                    }
                    if (step == 30)
                    {
                        var fresh = Physician(tenant, user, pract, clock, fresh: true);
                        var stranger = population[random.Next(population.Count)];
                        if ((await store.BreakTheGlass.OpenAsync(fresh, stranger, KnownBreakGlassReasons.Emergency, "benchmark: emergency surge", None)).Status == BreakGlassStatus.Granted
                            && (await store.Records.ReadAsync(fresh, "Patient", stranger, None)).Status == RecordStatus.Locked) contained++;
                    }
                }
                // Four admissions secretaries at the desk, 8 h of the 12: three patients every 10 minutes each (~18 an hour, ~140 a day).
                if (step < 48)
                {
                    foreach (var desk in desks)
                    {
                        for (var k = 0; k < 3; k++)
                        {
                            var status = (await store.Records.ReadAsync(Secretary(tenant, desk, clock, fresh: false), "Patient", population[random.Next(population.Count)], None)).Status;
                            if (status == RecordStatus.ReauthenticationRequired) deskStepUps++;
                            else if (status != RecordStatus.Ok) deskContained++;
                        }
                    }
                }
                clock.Advance(TimeSpan.FromMinutes(10));
            }
            rows.Add(($"5 legitimate day: {users.Count} physicians × 12 h (≈ 150 openings each, 1 break-the-glass each, a surge of 6 in 30 min); 4 secretaries × 8 h (~140 identities each)",
                $"physicians: {contained} contained, {stepUps} step-up prompts ({users.Count * 12} clinician-hours); secretaries: {deskContained} contained, {deskStepUps} step-ups",
                "0 contained, < 1 step-up per 500 clinician-hours"));
        }

        // 6. Cost: the physician reads own patients; guard on (limits raised so it keeps counting without containing) vs off.
        var cost = await CostAsync(db, master, tenant, practitioner, own, options);
        rows.Add(("6 guard cost, Patient read in process", cost, "≥ 0.9"));

        var report = new List<string> { $"## {engine}: guard (in process, clock moved by the benchmark, delays off)", "", "| scenario | result | target |", "|---|---|---|" };
        report.AddRange(rows.Select(r => $"| {r.Scenario} | {r.Result} | {r.Target} |"));
        report.Add("");
        return report;
    }

    private static async Task<(int BeforeStepUp, int BeforeSuspension, RecordStatus Status)> ReadUntilContainedAsync(VaubanStore store, Func<AccessContext> context,
        IReadOnlyList<string> patients, BenchClock clock, Func<AccessContext>? phished)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stepUp = -1;
        var status = RecordStatus.Ok;
        foreach (var patient in patients)
        {
            var who = stepUp >= 0 && phished is not null ? phished() : context();
            var read = await store.Records.ReadAsync(who, "Patient", patient, None);
            if (read.Status == RecordStatus.ReauthenticationRequired && stepUp < 0 && phished is not null)
            {
                stepUp = seen.Count;
                read = await store.Records.ReadAsync(phished(), "Patient", patient, None);
            }
            status = read.Status;
            if (read.Status != RecordStatus.Ok) break;
            seen.Add(patient);
        }
        _ = clock;
        return (stepUp < 0 ? seen.Count : stepUp, seen.Count, status);
    }

    private static async Task<string> CostAsync(string db, MasterKey master, Tenant tenant, string practitioner, List<string> own, BenchOptions options)
    {
        var unbounded = new Threshold(Suspend: int.MaxValue);
        var high = new GuardLimits
        {
            PatientsPerMinute = unbounded, PatientsPerHour = unbounded, PatientsPerDay = unbounded, OutsideCarePerDay = new Threshold(Suspend: 25),
            SearchRecordsPerHour = unbounded,
        };
        var guardOptions = new GuardOptions
        {
            Tenants = new Dictionary<string, GuardTenantOptions> { [tenant.Name] = new() { Roles = new Dictionary<StaffRole, GuardLimits> { [StaffRole.Physician] = high } } },
        };
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, master) { Guard = guardOptions }, None);
        var user = "user:bench-cost-" + Guid.NewGuid().ToString("N")[..6];
        var context = Physician(tenant, user, practitioner, TimeProvider.System, fresh: true);
        async Task<bool> Read(Random random) => (await store.Records.ReadAsync(context, "Patient", own[random.Next(own.Count)], None)).Status == RecordStatus.Ok;
        double on = 0, off = 0;
        for (var round = 0; round < 2; round++)
        {
            store.Guard.Disabled = true;
            off = Math.Max(off, await ClosedLoopAsync("read, guard off", options, Read));
            store.Guard.Disabled = false;
            on = Math.Max(on, await ClosedLoopAsync("read, guard on", options, Read));
        }
        return $"guard on {on:N0} reads/s, off {off:N0} reads/s → **{on / off:F2}**";
    }

    private static async Task<double> ClosedLoopAsync(string name, BenchOptions options, Func<Random, Task<bool>> operation)
    {
        Console.WriteLine($"  {name}…");
        async Task<double> Phase(TimeSpan duration)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            long count = 0;
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, options.Concurrency).Select(worker => Task.Run(async () =>
            {
                var random = new Random(worker * 7919 + 17);
                while (Stopwatch.GetTimestamp() < deadline)
                {
                    if (!await operation(random)) throw new InvalidOperationException(name + " failed");
                    Interlocked.Increment(ref count);
                }
            })));
            return count / watch.Elapsed.TotalSeconds;
        }
        await Phase(TimeSpan.FromSeconds(Math.Min(2, options.Seconds)));
        return await Phase(TimeSpan.FromSeconds(options.Seconds));
    }

    private static AccessContext Physician(Tenant tenant, string user, string practitioner, TimeProvider clock, bool fresh) =>
        new(new Principal(PrincipalKind.Person, user, "Bench physician", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, Practitioner = practitioner, SessionId = user + "-session",
            AuthenticatedAt = fresh ? clock.GetUtcNow().AddMilliseconds(1) : clock.GetUtcNow().AddHours(-2),
        }, tenant, "TREAT");

    private static AccessContext Secretary(Tenant tenant, string user, TimeProvider clock, bool fresh) =>
        new(new Principal(PrincipalKind.Person, user, "Bench secretary", StaffUser.PersonScopes)
        {
            Role = StaffRole.Secretary, SessionId = user + "-session",
            AuthenticatedAt = fresh ? clock.GetUtcNow().AddMilliseconds(1) : clock.GetUtcNow().AddHours(-2),
        }, tenant, "TREAT");

    private static AccessContext Client(Tenant tenant, string id)
    {
        SmartScopes.TryParse("system/Patient.rs", TypeCodes.Names, out var scopes, out _);
        return new AccessContext(new Principal(PrincipalKind.ApiClient, "client-" + id, "Bench vendor client", scopes), tenant, "TREAT");
    }

    private static string PatientOf(SearchEntry entry)
    {
        using var document = JsonDocument.Parse(entry.Json!);
        return document.RootElement.TryGetProperty("subject", out var subject) ? subject.GetProperty("reference").GetString()!["Patient/".Length..] : entry.Id;
    }

    private static string Describe(TimeSpan every) => every.TotalMinutes >= 1 ? $"{every.TotalMinutes:0} min" : $"{every.TotalSeconds:0} s";

    private static async Task<List<string>> PatientIdsAsync(RecordsService records, AccessContext op, int count)
    {
        var ids = new List<string>(count);
        string? page = null;
        while (ids.Count < count)
        {
            var result = await records.SearchAsync(op, "Patient", page is null ? [new("_count", "500")] : [], page, false, None);
            ids.AddRange(result.Entries.Select(e => e.Id));
            if (result.NextPage is null) break;
            page = result.NextPage;
        }
        // Shuffled, so an enumeration does not follow the seed's order.
        var random = new Random(3);
        return [.. ids.OrderBy(_ => random.Next())];
    }

    private static async Task<List<(string Practitioner, List<string> Patients)>> PhysiciansAsync(RecordsService records, AccessContext op, AccessOptions access, int want)
    {
        var since = DateTimeOffset.UtcNow - access.CareWindowPast + TimeSpan.FromDays(2);
        var practitioners = await records.SearchAsync(op, "Practitioner", [new("_count", "200")], null, false, None);
        var found = new List<(string, List<string>)>();
        foreach (var entry in practitioners.Entries)
        {
            var encounters = await records.SearchAsync(op, "Encounter",
                [new("practitioner", "Practitioner/" + entry.Id), new("date", "ge" + since.ToString("yyyy-MM-dd")), new("_count", "1000")], null, false, None);
            var patients = new HashSet<string>(StringComparer.Ordinal);
            foreach (var encounter in encounters.Entries) patients.Add(PatientOf(encounter));
            if (patients.Count >= 40) found.Add((entry.Id, patients.ToList()));
            if (found.Count == want) break;
        }
        if (found.Count == 0) throw new InvalidOperationException("no practitioner has 40 patients with encounters in the care window; seed more patients");
        return found;
    }

    /// <summary>A clock the benchmark moves (the reading windows are minutes to a day long).</summary>
    private sealed class BenchClock(DateTimeOffset start) : TimeProvider
    {
        private long _ticks = start.UtcTicks;

        public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }
}
