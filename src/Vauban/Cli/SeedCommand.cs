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
        var patients = new Option<int>("--patients") { Description = "How many patients.", DefaultValueFactory = _ => 1000 };
        var randomSeed = new Option<int>("--seed") { Description = "Random seed (same seed and --as-of, same data).", DefaultValueFactory = _ => 1 };
        var asOf = new Option<DateOnly?>("--as-of") { Description = "The date the synthetic records are generated as of (clinical dates fall in the two years before). Default: today." };
        var canaries = new Option<int?>("--canaries") { Description = "How many of the patients are canaries for the guard (identity only, at random places in the population); default about one per 1,000, at least 3 (none below 20 patients); 0 for none." };
        seed.Options.Add(tenant);
        seed.Options.Add(patients);
        seed.Options.Add(canaries);
        seed.Options.Add(randomSeed);
        seed.Options.Add(asOf);
        StoreArguments.AddTo(seed);
        seed.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var count = parse.GetValue(patients);
            if (count is < 1 or > 50_000_000) throw new ArgumentException("--patients must be between 1 and 50,000,000.");
            var canaryCount = parse.GetValue(canaries) ?? (count >= 20 ? GuardCommands.CanariesFor(count) : 0);
            if (canaryCount is < 0 or > Guard.RecordsGuard.MaxCanariesPerCall) throw new ArgumentException($"--canaries must be between 0 and {Guard.RecordsGuard.MaxCanariesPerCall}.");
            if (canaryCount >= count) throw new ArgumentException("--canaries must be fewer than --patients.");
            await using var store = await StoreArguments.OpenAsync(parse, token, create: true);
            var name = parse.GetValue(tenant)!;
            var owner = await store.Tenants.FindAsync(name, token);
            if (owner is null)
            {
                // A tenant seed creates is an administrative act like `tenants add`: the first entry of its chain, or no tenant. A
                // name like an existing one ('HOP1' beside 'hop1') is refused there; a new one is said, so that a typo shows.
                owner = await store.Tenants.AddAsync(name, AdministrationAudit.Context, token);
                Console.WriteLine($"Created the establishment '{owner.Name}' (id {owner.Id}) in {store.Description}.");
            }
            var result = await SeedAsync(store, owner, count, parse.GetValue(randomSeed), parse.GetValue(asOf), showProgress: true, token, canaryCount);
            if (canaryCount > 0) Console.WriteLine($"{canaryCount} of them are canary patients (vauban guard canaries list --tenant {owner.Name}).");
            Console.WriteLine(
                $"Seeded {count:N0} patients ({result.Resources:N0} resources) into {owner.Name} in {result.Elapsed.TotalSeconds:F1} s: {count / result.Elapsed.TotalSeconds:N0} patients/s, {result.Resources / result.Elapsed.TotalSeconds:N0} resources/s.");
            return result.Rejected == 0 ? 0 : 1;
        }, ct));
        return seed;
    }

    public sealed record SeedResult(long Resources, int Rejected, TimeSpan Elapsed);

    /// <param name="canaries">How many of the <paramref name="patients"/> are canaries: at random positions in the population, with
    /// the same kind of ids, only their identity (no records, no general practitioner), listed for the guard.</param>
    public static async Task<SeedResult> SeedAsync(VaubanStore store, Tenant tenant, int patients, int randomSeed, DateOnly? asOf, bool showProgress, CancellationToken cancellationToken,
        int canaries = 0)
    {
        var hospital = new SyntheticHospital(randomSeed, asOf);
        var context = AccessContext.Operator(tenant, "seed synthetic data");
        var canaryIndices = SyntheticHospital.CanaryPositions(randomSeed, patients, canaries);
        var canaryIds = new List<string>();
        IEnumerable<ImportItem> Items()
        {
            foreach (var r in hospital.Establishment()) yield return new ImportItem(r.ResourceType, r.Id, r.Json);
            for (var i = 0; i < patients; i++)
            {
                var record = hospital.Patient(i);
                if (canaryIndices.Contains(i))
                {
                    canaryIds.Add(record[0].Id);
                    yield return new ImportItem(record[0].ResourceType, record[0].Id, Guard.RecordsGuard.CanaryIdentity(record[0].Json));
                    continue;
                }
                foreach (var r in record) yield return new ImportItem(r.ResourceType, r.Id, r.Json);
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
                        new Reporter<string>(stage => { bar.Value = bar.MaxValue; bar.Description = stage; }));
                    bar.Value = bar.MaxValue;
                });
        }
        else
        {
            summary = await store.Records.ImportAsync(context, Items(), null, cancellationToken);
        }
        if (canaryIds.Count > 0) await store.Guard.RegisterCanariesAsync(tenant, canaryIds, cancellationToken);
        watch.Stop();
        foreach (var issue in summary.Rejected.Take(10)) Console.Error.WriteLine($"rejected: {issue.Diagnostics}");
        return new SeedResult(summary.Created + summary.Updated, summary.Rejected.Count, watch.Elapsed);
    }
}
