// Vauban benchmark harness, run by hand (see bench/README.md). It drives the real `vauban` binary
// (Release build) as a separate process, measures through HTTP with a C# load generator, and measures
// the ceilings (a bare primary-key SELECT through the driver, an empty Kestrel endpoint) in the same run.
using System.Globalization;
using Vauban.Bench;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
if (args is ["dictionary", .. var rest]) return RecordDictionary.Run(rest);
if (args is ["stages", .. var stageArgs]) return SeedStages.Run(stageArgs);
var options = BenchOptions.Parse(args, out var error);
if (options is null)
{
    if (error is not null) Console.Error.WriteLine($"error: {error}");
    Console.WriteLine("""
        usage: dotnet run -c Release --project bench/Vauban.Bench -- <seed|http|policy|audit|guard|all> [options]
               dotnet run -c Release --project bench/Vauban.Bench -- dictionary [--out FILE]   (trains the record dictionary)
               dotnet run -c Release --project bench/Vauban.Bench -- stages [--patients N]    (a seed's preparation, stage by stage, one thread)
          --engine sqlite|postgres|both   store engine(s) (default both)
          --patients N                    patients to seed (default 100000)
          --seconds S                     duration of each HTTP phase (default 15)
          --concurrency C                 concurrent HTTP requests (default 16)
          --work DIR                      working folder (default bench/data)
          --reuse                         reuse an already seeded store in DIR (and an audit chain filled before)
          --audit-entries N               audit: entries in the chain to verify (default 10000000)
          --audit-concurrency C1,C2,…     audit: concurrent readers compared audited / auditing off (default 4,16,64,256)
          --audit-phases P1,P2,…          audit: which of append,verify,read,http to run (default all)
          --http-phases P1,P2,…           http: which of empty,read,search,create,update to run (default all)
          --rate R                        http: pace each phase at R requests/s, at most C outstanding (default 0: as fast as answered)
          --timeline                      http: each phase second by second as well (requests, p50, p99, max, over 20 ms)
          --server PATH                   http: serve this vauban.dll (a published build) instead of building src/Vauban
          --rounds N                      audit: HTTP rounds, each audited then off (default 2); the median of their ratios is reported
          --interleave N                  audit, http: then N pairs of 2 s slices alternating in one load — audited and off; read and the
                                          empty endpoint (default 15; 0: none)
          --allocations                   audit: what each HTTP phase allocates a request, by type (sampled)
          --pg-shared-buffers SIZE        PostgreSQL: shared_buffers of a reused cluster (default 2GB)
          --pg-prewarm                    PostgreSQL: load the read's and the search's relations into the buffers first
        """);
    return 2;
}
try
{
    return await BenchRunner.RunAsync(options);
}
catch (BenchSetupException e)
{
    // A store not seeded, a step of the set-up that failed: said plainly, without a stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
