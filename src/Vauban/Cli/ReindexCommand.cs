// vauban reindex — after an upgrade that changed what is indexed, brings the search index of the records written before it
// up to date, through the records service (each batch one transaction with its audit entry), beside a running server.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Cli;

internal static class ReindexCommand
{
    public static Command Build()
    {
        var reindex = new Command("reindex",
            "Re-extract the search index of every record (its current version, from its decrypted body) after an upgrade that changed what is indexed: "
            + "records written before it are otherwise missing from searches. Safe while `vauban serve` runs on the same store, and to run again; audited.");
        var tenant = new Option<string?>("--tenant") { Description = "Only this establishment (default: every establishment in the store)." };
        var type = new Option<string?>("--type") { Description = "Only this resource type, e.g. Observation (default: every type). A partial run leaves the store's index version as it was." };
        // An unknown type is a usage error (exit 2), found before the store is opened.
        type.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } given && !KnownResourceTypes.Supported.Contains(given))
            {
                result.AddError($"--type: '{given}' is not a resource type Vauban stores ({string.Join(", ", KnownResourceTypes.Supported.Order(StringComparer.Ordinal))}).");
            }
        });
        reindex.Options.Add(tenant);
        reindex.Options.Add(type);
        StoreArguments.AddTo(reindex);
        reindex.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            await StoreArguments.RefuseNewerIndexAsync(store, "reindex", token);
            var onlyType = parse.GetValue(type);
            IReadOnlyList<Tenant> tenants;
            var all = await store.Tenants.ListAsync(token);
            if (parse.GetValue(tenant) is { } name)
            {
                TenantCommands.RefuseImpossible(name);
                // An unknown one exits 1 and touches nothing, as every verb's --tenant does (it alone answered 2).
                tenants = [all.FirstOrDefault(t => t.Name == name) // the list in hand: no second query
                    ?? throw new ArgumentException(await TenantCommands.NotFoundAsync(store, name, token))];
            }
            else tenants = all;
            var status = await store.Records.IndexStatusAsync(token);
            Console.WriteLine(status.Outdated
                ? $"Warning: {status.Warning}"
                : $"The store's search index has format {status.Stored}, this Vauban's is {status.Current}: re-indexing checks every record anyway.");
            if (tenants.Count == 0)
            {
                Console.WriteLine($"No establishment in {store.Description}: nothing to re-index.");
                return 0;
            }
            var watch = Stopwatch.StartNew();
            var summaries = new List<(Tenant Tenant, ReindexSummary Summary)>();
            async Task RunAsync(Func<Tenant, IProgress<int>?> progressFor)
            {
                foreach (var t in tenants)
                {
                    var context = AccessContext.Operator(t, KnownPurposes.SystemAdministration);
                    summaries.Add((t, await store.Records.ReindexAsync(context, onlyType, progressFor(t), token)));
                }
            }
            if (!Console.IsOutputRedirected)
            {
                await AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .StartAsync(async progress =>
                    {
                        var bars = new Dictionary<long, ProgressTask>();
                        foreach (var t in tenants)
                        {
                            var count = await store.Records.ReindexCountAsync(AccessContext.Operator(t, KnownPurposes.SystemAdministration), onlyType, token);
                            bars[t.Id] = progress.AddTask(Markup.Escape(t.Name), maxValue: Math.Max(1, count));
                        }
                        await RunAsync(t => new Reporter<int>(n => bars[t.Id].Increment(n)));
                        foreach (var bar in bars.Values) bar.Value = bar.MaxValue;
                    });
            }
            else
            {
                await RunAsync(_ => null);
            }
            watch.Stop();
            foreach (var (t, s) in summaries)
            {
                var line = string.Create(CultureInfo.InvariantCulture, $"{t.Name}: {Counted.En(s.Records, "record", "records")} re-indexed, {s.Changed:N0} with changed index rows");
                if (s.Redone > 0) line += string.Create(CultureInfo.InvariantCulture, $", {s.Redone:N0} read again after a concurrent change");
                if (s.Unreadable > 0) line += string.Create(CultureInfo.InvariantCulture, $"; {s.Unreadable:N0} failed their integrity check and were left as they were (the security officer is alerted)");
                if (s.Busy > 0) line += string.Create(CultureInfo.InvariantCulture, $"; {s.Busy:N0} kept changing and were not done (run again)");
                Console.WriteLine(line + ".");
            }
            var records = summaries.Sum(s => s.Summary.Records);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Re-indexed {Counted.En(records, "record", "records")} ({summaries.Sum(s => s.Summary.Changed):N0} changed) in {watch.Elapsed.TotalSeconds:F1} s."));
            var complete = summaries.TrueForAll(s => s.Summary.Complete);
            if (complete && onlyType is null && tenants.Count == all.Count)
            {
                await store.Records.RecordIndexCurrentAsync(token);
                var now = await store.Records.IndexStatusAsync(token);
                Console.WriteLine($"The store's search index now has format {now.Stored}.");
            }
            else if (complete && status.Outdated)
            {
                Console.WriteLine($"Part of the store was re-indexed (--tenant or --type): its index format stays {status.Stored} until `vauban reindex` runs over all of it.");
            }
            return complete ? 0 : 1;
        }, ct));
        return reindex;
    }
}
