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
        var tenant = await store.Tenants.FindAsync(tenantName, None) ?? throw new BenchSetupException("no seeded store for this engine in --work: seed one first (seed --engine … --patients N --work …), or run all");
        var op = AccessContext.Operator(tenant, "benchmark set-up");
        // Each run starts from nothing learned (baselines of earlier runs belong to their own simulated days).
        await store.Guard.ForgetBaselinesAsync(tenant.Id, None);
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
            var (stepUp, opened, status) = await SlowReadAsync(store, fresh => Secretary(tenant, user, clock, fresh), population, clock, every, TimeSpan.FromHours(24), first: 0);
            rows.Add(($"2a slow and low, cold start (no baseline, no source address): stolen secretary session, one patient every {Describe(every)} for 24 h",
                $"{(stepUp is null ? "no step-up" : stepUp + " patients before the step-up")}; {opened} before {(status == RecordStatus.Ok ? "the end of the day, not contained" : "suspension")}",
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
            rows.Add(("3c vendor API client, cold start (no baseline yet), one Patient every 10 s", $"{slowOpened} patients before suspension ({slowStatus})", "configured hour bound (200)"));
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
        // 5. Legitimate work, five days, and the guard learning it: 9 physicians by day (08:00–20:00) and 3 by night
        //    (20:00–08:00) opening their own patients from their ward's workstations (rounds every 10 min, a search an hour,
        //    one break-the-glass each a day, a surge of 6 break-the-glass in 30 min at 14:00), 4 admissions secretaries
        //    08:00–16:00 (~140 identities a day each), a laboratory vendor's client (3 patients an hour, 08:00–18:00).
        //    Days 0–2 are the cold start (configured limits); from day 3 baselines and signals are live.
        var legit = await LegitimateWeekAsync(store, tenant, clock, physicians, population, Next);
        rows.Add(($"5 legitimate work, 5 days: {legit.Physicians} physicians (9 by day, 3 by night, {legit.ClinicianHours} clinician-hours, 1 break-the-glass each a day, a surge of 6 in 30 min), "
            + $"{legit.Desks} secretaries ({legit.DeskHours} desk-hours, ~140 identities a day each), a vendor client (30 a day); baselines learned from it",
            $"physicians: **{legit.Contained} contained, {legit.StepUps} step-up prompts**; secretaries: {legit.DeskContained} contained, {legit.DeskStepUps} step-ups; "
            + $"client: {legit.ClientRefused} refused; risk signals on legitimate principals: {legit.Signals}; policy refusals (not the guard's): {legit.PolicyRefusals}",
            "0 contained, < 1 step-up per 500 clinician-hours"));

        // 2b. Slow and low against learned principals, day 5: a secretary's stolen session (cookie, phished factors re-proved at
        //     each step-up) read from a network the establishment never saw, one patient every 5 s, then every 5 min.
        foreach (var (every, desk, address) in new[] { (TimeSpan.FromSeconds(5), legit.DeskIds[0], "203.0.113.7"), (TimeSpan.FromMinutes(5), legit.DeskIds[1], "203.0.113.8") })
        {
            clock.AdvanceTo(legit.Day5.AddHours(9));
            var (stepUp, opened, status) = await SlowReadAsync(store, fresh => Secretary(tenant, desk, clock, fresh, address, legit.DeskDevice), population, clock, every, TimeSpan.FromHours(24));
            rows.Add(($"2b slow and low, learned secretary's stolen session from a new network, one patient every {Describe(every)}",
                $"**{stepUp ?? opened}** before the step-up; **{opened}** before {(status == RecordStatus.Ok ? "the end of the day, not contained" : "suspension")} (signal {KnownGuardSignals.NewSourceForEstablishment})", "≤ 25"));
        }
        // 2c. The same session replayed from the secretary's own workstation and browser (an insider at the desk): only volume is left.
        {
            clock.AdvanceTo(legit.Day5.AddHours(9));
            var (stepUp, opened, status) = await SlowReadAsync(store, fresh => Secretary(tenant, legit.DeskIds[2], clock, fresh, legit.DeskSources[2], legit.DeskDevice), population, clock,
                TimeSpan.FromSeconds(30), TimeSpan.FromHours(24));
            rows.Add(("2c the same from the secretary's own workstation and browser, one patient every 30 s",
                $"{stepUp ?? opened} before the step-up; {opened} before {(status == RecordStatus.Ok ? "the end of the day, not contained" : "suspension")} (learned day peak {legit.DeskDayPeak}: the bounds follow it)", "—"));
        }
        // 2d. Shape without volume: a stolen desk session sweeping family-name prefixes, then birth dates (pages of 10).
        foreach (var (label, parameters) in new (string, Func<int, List<KeyValuePair<string, string>>>)[]
        {
            ("family-name prefixes (ma, mb, mc, …)", i => [new("family", "m" + (char)('a' + i % 26)), new("_count", "10")]),
            ("birth dates (1950-01-01, -02, …)", i => [new("birthdate", new DateOnly(1950, 1, 1).AddDays(i).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)), new("_count", "10")]),
        })
        {
            clock.AdvanceTo(legit.Day5.AddHours(10));
            var desk = label.StartsWith("family", StringComparison.Ordinal) ? legit.DeskIds[3] : "user:" + Next();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var status = RecordStatus.Ok;
            var searches = 0;
            for (var i = 0; i < 26; i++)
            {
                var page = await store.Records.SearchAsync(Secretary(tenant, desk, clock, fresh: true, legit.DeskSources[3], legit.DeskDevice), "Patient", parameters(i), null, false, None);
                status = page.Status;
                if (status != RecordStatus.Ok) break;
                searches++;
                foreach (var entry in page.Entries) seen.Add(entry.Id);
                clock.Advance(TimeSpan.FromMinutes(1));
            }
            rows.Add(($"2d stolen desk session sweeping {label}, one search a minute", $"{seen.Count} patients in {searches} searches before {(status == RecordStatus.Ok ? "the end, not contained" : "suspension")}", "≤ 25 once the shape is seen"));
        }
        // 3d. The laboratory vendor's client, learned, reads one Patient every 10 s from its own host.
        {
            clock.AdvanceTo(legit.Day5.AddHours(9));
            var baseline = store.Guard.BaselineOf(tenant.Id, legit.Vendor.Principal.Id);
            int hourPeak, dayPeak;
            lock (baseline) (hourPeak, dayPeak) = (baseline.HourPeak, baseline.DayPeak);
            var (_, opened, status) = await SlowReadAsync(store, _ => legit.Vendor, population, clock, TimeSpan.FromSeconds(10), TimeSpan.FromHours(24));
            rows.Add(("3d vendor API client with a learned normal volume, one Patient every 10 s", $"**{opened}** patients before {(status == RecordStatus.Ok ? "the end, not contained" : "suspension")} (learned peak {hourPeak} an hour, {dayPeak} a day)",
                "≤ 25 beyond normal volume"));
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

    private sealed record LegitimateWeek(int Physicians, int ClinicianHours, int Contained, int StepUps, int Desks, int DeskHours, int DeskContained, int DeskStepUps,
        int ClientRefused, int PolicyRefusals, string Signals, List<string> DeskIds, List<string> DeskSources, string DeskDevice, int DeskDayPeak, AccessContext Vendor, DateTimeOffset Day5);

    /// <summary>Five days of legitimate work (scenario 5), from which the guard learns each principal's normal; returns the counts and the learned principals.</summary>
    private static async Task<LegitimateWeek> LegitimateWeekAsync(VaubanStore store, Tenant tenant, BenchClock clock, List<(string Practitioner, List<string> Patients)> physicians,
        List<string> population, Func<string> next)
    {
        var start = new DateTimeOffset(clock.GetUtcNow().UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
        var users = physicians.Select((p, i) => (Id: "user:" + next(), p.Practitioner, p.Patients, Night: i >= physicians.Count - 3,
            Source: $"10.20.{1 + i % 3}.{10 + i}", Device: i % 2 == 0 ? "browser:chrome/windows" : "browser:firefox/windows")).ToList();
        var deskIds = Enumerable.Range(0, 4).Select(_ => "user:" + next()).ToList();
        var deskSources = Enumerable.Range(0, 4).Select(i => $"10.20.0.{20 + i}").ToList();
        const string deskDevice = "browser:firefox/windows";
        SmartScopes.TryParse("system/Patient.rs", TypeCodes.Names, out var scopes, out _);
        var vendor = new AccessContext(new Principal(PrincipalKind.ApiClient, "client-lab-" + next(), "Bench laboratory interface", scopes), tenant, "TREAT", "192.0.2.10") { Device = "library:java" };
        int contained = 0, stepUps = 0, deskContained = 0, deskStepUps = 0, clientRefused = 0, other = 0;
        var random = new Random(11);
        void Count(RecordStatus status, bool desk)
        {
            // The guard's answers only (a policy refusal, e.g. a care relationship that lapsed, is counted apart).
            if (status == RecordStatus.ReauthenticationRequired) { if (desk) deskStepUps++; else stepUps++; }
            else if (status == RecordStatus.Locked) { if (desk) deskContained++; else contained++; }
            else if (status != RecordStatus.Ok) other++;
        }
        for (var day = 0; day < 5; day++)
        {
            // Day shift, 08:00–20:00, and the secretaries and the vendor's client.
            clock.AdvanceTo(start.AddDays(day).AddHours(8));
            for (var step = 0; step < 72; step++)
            {
                foreach (var user in users.Where(u => !u.Night))
                {
                    var context = Physician(tenant, user.Id, user.Practitioner, clock, fresh: false, user.Source, user.Device);
                    for (var k = 0; k < 2; k++) Count((await store.Records.ReadAsync(context, "Patient", user.Patients[random.Next(Math.Min(40, user.Patients.Count))], None)).Status, false);
                    if (step % 6 == 0) Count((await store.Records.SearchAsync(context, "Encounter", [new("practitioner", "Practitioner/" + user.Practitioner), new("_count", "10")], null, false, None)).Status, false);
                    // One emergency break-the-glass each a day; at 14:00 the first physician breaks the glass for 6 unknown patients in 30 minutes.
                    var glass = step == 30 ? 1 : step is >= 36 and < 39 && user.Id == users[0].Id ? 2 : 0;
                    for (var k = 0; k < glass; k++)
                    {
                        var fresh = Physician(tenant, user.Id, user.Practitioner, clock, fresh: true, user.Source, user.Device);
                        var stranger = population[random.Next(population.Count)];
                        var grant = (await store.BreakTheGlass.OpenAsync(fresh, stranger, KnownBreakGlassReasons.Emergency, "benchmark: emergency", None)).Status;
                        if (grant == BreakGlassStatus.Granted) Count((await store.Records.ReadAsync(fresh, "Patient", stranger, None)).Status, false);
                        else if (grant == BreakGlassStatus.NotAllowed) contained++;
                        else other++;
                    }
                }
                if (step < 48)
                {
                    for (var d = 0; d < deskIds.Count; d++)
                    {
                        for (var k = 0; k < 3; k++)
                            Count((await store.Records.ReadAsync(Secretary(tenant, deskIds[d], clock, fresh: false, deskSources[d], deskDevice), "Patient", population[random.Next(population.Count)], None)).Status, true);
                    }
                }
                if (step < 60 && step % 2 == 0 && (await store.Records.ReadAsync(vendor, "Patient", population[random.Next(population.Count)], None)).Status != RecordStatus.Ok) clientRefused++;
                clock.Advance(TimeSpan.FromMinutes(10));
            }
            // Night shift, 20:00–08:00: fewer patients, the same rounds.
            for (var step = 0; step < 72; step++)
            {
                foreach (var user in users.Where(u => u.Night))
                {
                    var context = Physician(tenant, user.Id, user.Practitioner, clock, fresh: false, user.Source, user.Device);
                    if (step % 2 == 0) Count((await store.Records.ReadAsync(context, "Patient", user.Patients[random.Next(Math.Min(40, user.Patients.Count))], None)).Status, false);
                    if (step % 12 == 0) Count((await store.Records.SearchAsync(context, "Encounter", [new("practitioner", "Practitioner/" + user.Practitioner), new("_count", "10")], null, false, None)).Status, false);
                }
                clock.Advance(TimeSpan.FromMinutes(10));
            }
        }
        var legitimate = users.Select(u => u.Id).Concat(deskIds).Append(vendor.Principal.Id).ToHashSet(StringComparer.Ordinal);
        var signals = (await store.Alerts.ListAsync(tenant.Id, all: true, 10_000, None))
            .Where(a => a.Kind == KnownAlertKinds.GuardSignal && legitimate.Contains(a.Principal)).Select(a => a.Detail.Split(':')[0]).ToList();
        var deskBaseline = store.Guard.BaselineOf(tenant.Id, deskIds[2]);
        int deskDayPeak;
        lock (deskBaseline) deskDayPeak = deskBaseline.DayPeak;
        return new LegitimateWeek(users.Count, users.Count * 12 * 5, contained, stepUps, deskIds.Count, deskIds.Count * 8 * 5, deskContained, deskStepUps, clientRefused, other,
            signals.Count == 0 ? "none" : string.Join(", ", signals.GroupBy(s => s).Select(g => $"{g.Count()} {g.Key}")),
            deskIds, deskSources, deskDevice, deskDayPeak, vendor, start.AddDays(5));
    }

    /// <summary>Reads one patient after another every <paramref name="every"/> for at most <paramref name="during"/>, re-proving both factors at the
    /// first step-up (phished); returns the patients opened before the step-up (null: none asked) and before containment. Patients are taken
    /// in turn from <paramref name="first"/> on.</summary>
    private static async Task<(int? BeforeStepUp, int Opened, RecordStatus Status)> SlowReadAsync(VaubanStore store, Func<bool, AccessContext> who, List<string> population,
        BenchClock clock, TimeSpan every, TimeSpan during, int first = 997)
    {
        var end = clock.GetUtcNow() + during;
        var stepUp = -1;
        var opened = 0;
        var status = RecordStatus.Ok;
        var i = 0;
        while (clock.GetUtcNow() < end)
        {
            var read = await store.Records.ReadAsync(who(stepUp >= 0), "Patient", population[(i + first) % population.Count], None);
            if (read.Status == RecordStatus.ReauthenticationRequired && stepUp < 0) { stepUp = opened; continue; }
            status = read.Status;
            if (read.Status != RecordStatus.Ok) break;
            opened++;
            i++;
            clock.Advance(every);
        }
        return (stepUp < 0 ? null : stepUp, opened, status);
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
            // The role's learned bounds would contain this reader: it keeps learning and weighing signals, never bounded.
            Signals = new GuardSignalOptions { RoleLearningDays = 1_000_000 },
        };
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, master) { Guard = guardOptions }, None);
        var user = "user:bench-cost-" + Guid.NewGuid().ToString("N")[..6];
        var context = Physician(tenant, user, practitioner, TimeProvider.System, fresh: true, "10.20.1.77", "browser:chrome/windows");
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

    private static AccessContext Physician(Tenant tenant, string user, string practitioner, TimeProvider clock, bool fresh, string? source = null, string? device = null) =>
        new(new Principal(PrincipalKind.Person, user, "Bench physician", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, Practitioner = practitioner, SessionId = user + "-session",
            AuthenticatedAt = fresh ? clock.GetUtcNow().AddMilliseconds(1) : clock.GetUtcNow().AddHours(-2),
        }, tenant, "TREAT", source) { Device = device };

    private static AccessContext Secretary(Tenant tenant, string user, TimeProvider clock, bool fresh, string? source = null, string? device = null) =>
        new(new Principal(PrincipalKind.Person, user, "Bench secretary", StaffUser.PersonScopes)
        {
            Role = StaffRole.Secretary, SessionId = user + "-session",
            AuthenticatedAt = fresh ? clock.GetUtcNow().AddMilliseconds(1) : clock.GetUtcNow().AddHours(-2),
        }, tenant, "TREAT", source) { Device = device };

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
        // The benchmark's clock runs about ten days ahead: the care relationships chosen must still hold then.
        var since = DateTimeOffset.UtcNow - access.CareWindowPast + TimeSpan.FromDays(14);
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
        if (found.Count == 0) throw new BenchSetupException("no practitioner has 40 patients with encounters in the care window: seed more patients (50,000 suffice)");
        return found;
    }

    /// <summary>A clock the benchmark moves (the reading windows are minutes to a day long).</summary>
    private sealed class BenchClock(DateTimeOffset start) : TimeProvider
    {
        private long _ticks = start.UtcTicks;

        public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);

        /// <summary>Moves to <paramref name="at"/> if it is later (time never runs back).</summary>
        public void AdvanceTo(DateTimeOffset at)
        {
            var by = at - GetUtcNow();
            if (by > TimeSpan.Zero) Advance(by);
        }
    }
}
