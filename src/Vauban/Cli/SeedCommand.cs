using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;
using Vauban.Access;
using Vauban.Records;
using Vauban.Records.Synthetic;

namespace Vauban.Cli;

internal static class SeedCommand
{
    public static Command Build()
    {
        var seed = new Command("seed", "Load realistic synthetic French data (patients with valid NIR/INS, practitioners with RPPS, encounters, appointments, prescriptions, lab results, invoices).");
        var tenant = new Option<string>("--tenant") { Description = "The establishment to seed (created if missing).", Required = true };
        var patients = new Option<int>("--patients") { Description = "How many patients.", DefaultValueFactory = _ => 1000 }.Within(1, 50_000_000);
        var randomSeed = new Option<int>("--seed") { Description = "Random seed (same seed and --as-of, same data, ids included: a seed and date already loaded into the establishment, or being loaded, are refused).", DefaultValueFactory = _ => 1 };
        var asOf = new Option<DateOnly?>("--as-of") { Description = "The date the synthetic records are generated as of, yyyy-MM-dd (clinical dates fall in the two years before). Default: today." }
            .Within(new DateOnly(1900, 1, 1), new DateOnly(2999, 12, 31)); // appointments are booked up to three months after it: 9999-12-31 failed half-way with "an un-representable DateTime"
        var canaries = new Option<int?>("--canaries") { Description = "How many of the patients are canaries for the guard (identity only, at random places in the population); default about one per 1,000, at least 3 (none below 20 patients); 0 for none." }.Within(0, Guard.RecordsGuard.MaxCanariesPerCall);
        var resume = new Option<bool>("--resume") { Description = "Finish a run of the same --seed and --as-of that was stopped before it finished (killed, Ctrl-C, an error): load only the records it did not, with the same --patients and --canaries." };
        seed.Options.Add(tenant);
        seed.Options.Add(patients);
        seed.Options.Add(canaries);
        seed.Options.Add(randomSeed);
        seed.Options.Add(asOf);
        seed.Options.Add(resume);
        StoreArguments.AddTo(seed);
        seed.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var count = parse.GetValue(patients);
            var canaryCount = parse.GetValue(canaries) ?? (count >= 20 ? GuardCommands.CanariesFor(count) : 0);
            // Options that cannot go together, and a name no establishment can have, are usage errors (exit 2), refused before the
            // store is opened (or made, with its master key).
            if (canaryCount >= count) throw new UsageException("--canaries must be fewer than --patients.");
            var name = parse.GetValue(tenant)!;
            TenantCommands.RefuseImpossible(name);
            await using var store = await StoreArguments.OpenAsync(parse, token, create: true);
            await StoreArguments.RefuseNewerIndexAsync(store, "seed", token);
            var owner = await store.Tenants.FindAsync(name, token);
            if (owner is null)
            {
                // A tenant seed creates is an administrative act like `tenants add`: the first entry of its chain, or no tenant. A
                // name like an existing one ('HOP1' beside 'hop1') is refused there; a new one is said, so that a typo shows.
                owner = await AddAsync(store, name, token);
            }
            var resuming = parse.GetValue(resume);
            var result = await SeedAsync(store, owner, count, parse.GetValue(randomSeed), parse.GetValue(asOf), showProgress: true, token, canaryCount, resuming);
            if (result.Updated > 0 || result.Rejected > 0)
            {
                // Only what was added is said to be: a record already there (another seed of the same generator meanwhile)
                // became a new version, and one not loaded is named above.
                Console.Error.WriteLine($"error: {result.Resources:N0} of the {result.Generated:N0} generated resources were added to {owner.Name}; "
                    + $"{result.Updated:N0} were already there and became new versions, {result.Rejected:N0} were not loaded.");
                return 1;
            }
            if (canaryCount > 0) Console.WriteLine($"{canaryCount} of them {(canaryCount == 1 ? "is a canary patient" : "are canary patients")} (vauban guard canaries list --tenant {owner.Name}).");
            if (resuming)
            {
                Console.WriteLine($"Resumed the seed of {Counted.En(count, "patient", "patients")} into {owner.Name}: {result.Skipped:N0} of its {result.Generated:N0} resources were "
                    + $"there already, {Counted.En(result.Resources, "resource was", "resources were")} added in {result.Elapsed.TotalSeconds:F1} s.");
                return 0;
            }
            Console.WriteLine(
                $"Seeded {Counted.En(count, "patient", "patients")} ({Counted.En(result.Resources, "resource", "resources")}) into {owner.Name} in {result.Elapsed.TotalSeconds:F1} s: {count / result.Elapsed.TotalSeconds:N0} patients/s, {result.Resources / result.Elapsed.TotalSeconds:N0} resources/s.");
            return 0;
        }, ct));
        return seed;
    }

    /// <summary>Creates the establishment a seed names, saying so. Two seeds of a new establishment started together both find none:
    /// the second to add it finds it made by the first, and seeds it (its claim on the seed and date then decides).</summary>
    private static async Task<Tenant> AddAsync(VaubanStore store, string name, CancellationToken cancellationToken)
    {
        Tenant owner;
        try
        {
            owner = await store.Tenants.AddAsync(name, AdministrationAudit.Context, cancellationToken);
        }
        catch (InvalidOperationException)
        {
            if (await store.Tenants.FindAsync(name, cancellationToken) is { } made && made.Name == name) return made;
            throw;
        }
        Console.WriteLine($"Created the establishment '{owner.Name}' (id {owner.Id}) in {store.Description}.");
        return owner;
    }

    /// <param name="Resources">Resources added.</param>
    /// <param name="Updated">Resources that were already in the store and became new versions.</param>
    /// <param name="Generated">Resources the generator gave.</param>
    /// <param name="Skipped">With resume: resources an interrupted run had loaded, left as they were.</param>
    public sealed record SeedResult(long Resources, int Updated, int Rejected, long Generated, TimeSpan Elapsed, int Skipped = 0);

    /// <param name="canaries">How many of the <paramref name="patients"/> are canaries: at random positions in the population, with
    /// the same kind of ids, only their identity (no records, no general practitioner), listed for the guard.</param>
    /// <param name="resume">Finish the run of the same seed and date that did not (<see cref="SeedRuns"/>): its claim taken over,
    /// only the records it did not load loaded.</param>
    public static async Task<SeedResult> SeedAsync(VaubanStore store, Tenant tenant, int patients, int randomSeed, DateOnly? asOf, bool showProgress, CancellationToken cancellationToken,
        int canaries = 0, bool resume = false)
    {
        var day = asOf ?? ParisTime.DateOf(store.Time.GetUtcNow());
        var hospital = new SyntheticHospital(randomSeed, day);
        var context = AccessContext.Operator(tenant, "seed synthetic data");
        var what = $"--seed {randomSeed} as of {day:yyyy-MM-dd}";
        // The generator's ids follow from the seed and the date alone: a second run of it would rewrite every record it made as a
        // new version (and stop on the canaries it registered). Its claim (SeedRuns), taken before anything is written, refuses a
        // second run while the first loads and once it has; one that was stopped is finished with --resume.
        if (await store.SeedRuns.ClaimAsync(context, randomSeed, day, patients, canaries, cancellationToken) is { } held)
        {
            if (held.State == SeedRunState.Complete) throw AlreadyHolds(tenant, randomSeed, day, "");
            var runs = held.State == SeedRunState.Running ? held.HolderRuns : false;
            if (runs == true)
            {
                throw new InvalidOperationException($"{tenant.Name} is being seeded with {what} now, by {held.Holder}: wait for it to finish (the same seed and date "
                    + "give the same records, ids included). Nothing was changed.");
            }
            var stopped = runs == false
                ? $"A run of {what} into {tenant.Name}, by {held.Holder}, did not finish{(held.State == SeedRunState.Running ? " (that process no longer runs)" : "")}"
                : $"A run of {what} into {tenant.Name}, by {held.Holder}, has not finished; it may still be running there: if it is, wait for it";
            var same = $"--patients {held.Patients} --canaries {held.Canaries}";
            if (!resume) throw new InvalidOperationException($"{stopped}. To finish it, give --resume (with {same}): the records it did not load are loaded. Nothing was changed.");
            if (held.Patients != patients || held.Canaries != canaries)
            {
                throw new InvalidOperationException($"{stopped}. It was to load {same}: resume it with those, which give the records it was to load. Nothing was changed.");
            }
            if (!await store.SeedRuns.TakeOverAsync(context, held, cancellationToken))
            {
                throw new InvalidOperationException($"Another process took over the run of {what} into {tenant.Name} just now. Nothing was changed.");
            }
        }
        else if (!resume)
        {
            // Claimed: records of this seed and date from before runs were claimed (a store of an older Vauban) are still refused.
            // Its first record, the establishment's Organization, is in the load's first transaction: if any of its records are
            // there, that one is. Records of other seeds, dates or sources have other ids, and do not stand in the way.
            var first = hospital.Establishment()[0];
            if ((await store.Records.UnknownAsync(context, first.ResourceType, [first.Id], "seed", cancellationToken)).Count == 0)
            {
                await store.SeedRuns.WithdrawAsync(context, randomSeed, day, cancellationToken);
                throw AlreadyHolds(tenant, randomSeed, day, " If the run that loaded them was stopped before it finished, --resume loads the rest.");
            }
        }
        try
        {
            var result = await LoadAsync(store, tenant, context, hospital, patients, randomSeed, canaries, resume, showProgress, cancellationToken);
            await store.SeedRuns.EndAsync(context, randomSeed, day, complete: true, cancellationToken);
            return result;
        }
        catch
        {
            // Said on the claim when the process lives to say it (an error, Ctrl-C); a process killed leaves it running, and the
            // next run finds its process gone.
            try
            {
                await store.SeedRuns.EndAsync(context, randomSeed, day, complete: false, CancellationToken.None);
            }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or IOException or Audit.AuditUnavailableException)
            {
            }
            throw;
        }
    }

    private static InvalidOperationException AlreadyHolds(Tenant tenant, int randomSeed, DateOnly day, string more) =>
        new($"{tenant.Name} already holds the synthetic records of --seed {randomSeed} as of {day:yyyy-MM-dd} "
            + $"(the same seed and date give the same ids, and loading them again would rewrite each as a new version): choose another --seed, or another establishment. Nothing was changed.{more}");

    private static async Task<SeedResult> LoadAsync(VaubanStore store, Tenant tenant, AccessContext context, SyntheticHospital hospital, int patients, int randomSeed,
        int canaries, bool resume, bool showProgress, CancellationToken cancellationToken)
    {
        var canaryIndices = SyntheticHospital.CanaryPositions(randomSeed, patients, canaries);
        var canaryIds = new List<string>();
        var generated = 0L;
        IEnumerable<ImportItem> Items()
        {
            foreach (var r in hospital.Establishment())
            {
                generated++;
                yield return new ImportItem(r.ResourceType, r.Id, r.Json);
            }
            for (var i = 0; i < patients; i++)
            {
                var record = hospital.Patient(i);
                if (canaryIndices.Contains(i))
                {
                    canaryIds.Add(record[0].Id);
                    generated++;
                    yield return new ImportItem(record[0].ResourceType, record[0].Id, Guard.RecordsGuard.CanaryIdentity(record[0].Json));
                    continue;
                }
                foreach (var r in record)
                {
                    generated++;
                    yield return new ImportItem(r.ResourceType, r.Id, r.Json);
                }
            }
        }
        var watch = Stopwatch.StartNew();
        ImportSummary summary;
        if (showProgress && !Console.IsOutputRedirected)
        {
            summary = null!;
            await AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async progress =>
                {
                    var bar = progress.AddTask("resources", maxValue: patients * 9.0);
                    summary = await store.Records.ImportAsync(context, Items(), new Reporter<int>(n => bar.Increment(n)), cancellationToken,
                        new Reporter<string>(stage => { bar.Value = bar.MaxValue; bar.Description = stage; }), skipExisting: resume);
                    bar.Value = bar.MaxValue;
                });
        }
        else
        {
            summary = await store.Records.ImportAsync(context, Items(), null, cancellationToken, skipExisting: resume);
        }
        if (resume)
        {
            // The run resumed may have registered its canaries before it stopped.
            var registered = (await store.Guard.CanariesAsync(tenant.Id, cancellationToken)).Select(c => c.Patient).ToHashSet(StringComparer.Ordinal);
            canaryIds.RemoveAll(registered.Contains);
        }
        if (canaryIds.Count > 0) await store.Guard.RegisterCanariesAsync(tenant, canaryIds, cancellationToken);
        watch.Stop();
        foreach (var issue in summary.Rejected.Take(10)) Console.Error.WriteLine($"rejected: {issue.Diagnostics}");
        return new SeedResult(summary.Created, summary.Updated, summary.Rejected.Count, generated, watch.Elapsed, summary.Skipped);
    }
}
