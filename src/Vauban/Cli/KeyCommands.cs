// vauban keys rotate-master — a new master key for the store: every establishment's keys re-wrapped under it, in one
// transaction, audited on every establishment's chain. For a key file that was copied, seen or kept where it should not
// have been, and on the security officer's schedule.
// vauban keys rotate-data — a new data key for one establishment, and its records re-sealed under it beside a running server.
using System.CommandLine;
using System.Globalization;
using Vauban.Crypto;

namespace Vauban.Cli;

internal static class KeyCommands
{
    public static Command Build()
    {
        var keys = new Command("keys", "The store's keys: the master key wraps every establishment's data, index and audit-signing keys.");
        var rotate = new Command("rotate-master",
            "Make a new master key in a new file and re-wrap every establishment's keys under it, in one transaction (records, indexes and the audit log "
            + "are not rewritten: seconds, whatever the store's size). Audited on every establishment's chain. Then give every Vauban process the new key and "
            + "restart running servers; the old key no longer opens the store.");
        var newKeyFile = new Option<string>("--new-key-file")
        {
            Description = "Where to write the new master key (mode 0600). It must not exist: a key is never written over a file.",
            Required = true,
        };
        rotate.Options.Add(newKeyFile);
        StoreArguments.AddTo(rotate);
        rotate.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            // Path.GetFullPath("") said only "The value cannot be an empty string."
            var given = parse.GetValue(newKeyFile)!;
            if (string.IsNullOrWhiteSpace(given)) throw new UsageException("--new-key-file is empty: name the file to write the new master key to.");
            var path = Path.GetFullPath(given);
            // A usage error, before the store is opened (it was the key's refusal once the store was open, exit 1): nothing changes.
            if (MasterKey.NewFileProblem(path) is { } problem) throw new UsageException(UsageError.About("--new-key-file", problem));
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var previous = store.MasterKeyFingerprint;
            // Made and synced before the store takes it: a store bound to a key that a power loss then took away would be lost.
            var next = MasterKey.CreateFile(path);
            MasterKeyRotation rotation;
            try
            {
                rotation = await store.RotateMasterKeyAsync(next, AdministrationAudit.Context, token);
            }
            catch (MasterKeyRotationUnsettledException unsettled)
            {
                // Never deleted here: the commit may still land after any read that shows the old binding, and then the new
                // file is the store's only key. Only a read that shows the new binding settles it.
                string? bound = null;
                try
                {
                    bound = await store.BoundMasterKeyFingerprintAsync(CancellationToken.None);
                }
                catch (Exception e) when (e is System.Data.Common.DbException or IOException or TimeoutException or System.Net.Sockets.SocketException or InvalidOperationException)
                {
                    // unknown: said below
                }
                if (bound == next.Fingerprint)
                {
                    throw new InvalidOperationException($"The store now takes the new master key in {path} (fingerprint {next.Fingerprint}; keep that file), "
                        + $"but the rotation reported a failure as it committed: {unsettled.InnerException?.Message}", unsettled);
                }
                throw new InvalidOperationException($"{unsettled.Message} Both key files are kept: the new one, {path} (fingerprint {next.Fingerprint}), and the "
                    + $"old one ({previous}); either may now be the store's only key, so destroy neither. To find out which the store takes, once it answers: "
                    + $"`vauban tenants list --db … --master-key-file {path}` succeeds only if it took the new key, and with the old key only if it kept it.", unsettled);
            }
            catch
            {
                // The rotation failed before its commit was sent: the store keeps its key, and a stray key file would only be
                // taken for the store's.
                File.Delete(path);
                throw;
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Rotated the master key of {store.Description}: {Counted.En(rotation.Keys, "key", "keys")} of {Counted.En(rotation.Establishments, "establishment", "establishments")} {(rotation.Keys == 1 ? "is" : "are")} now wrapped under the key in {path} (fingerprint {next.Fingerprint}; it was {previous})."));
            Console.WriteLine("Next:");
            Console.WriteLine($"  1. Give every Vauban process of this store the new key: --master-key-file {path}, or $VAUBAN_MASTER_KEY_FILE (or its contents in $VAUBAN_MASTER_KEY).");
            Console.WriteLine("  2. Restart running servers now: they go on with the keys they have opened, but cannot open an establishment's keys they have not, nor add an establishment, and the old key is refused at their next start.");
            Console.WriteLine("  3. Destroy the old key file and its copies. Backups of the store taken before now still need the old key: keep it with them, or take new backups and destroy both.");
            return 0;
        }, ct));
        keys.Subcommands.Add(rotate);
        keys.Subcommands.Add(RotateData());
        return keys;
    }

    private static Command RotateData()
    {
        var rotate = new Command("rotate-data",
            "Make a new data key for one establishment and re-seal its records under it: every record body (history included), every staff account's "
            + "sealed fields, alert detail, break-the-glass explanation and export reason still under an older data key is decrypted and encrypted again, "
            + "a batch of 2,000 rows per transaction, while the server runs. "
            + "For a data key that may have been exposed (a copy of the store with its master key, once that is rotated; after a memory dump of a Vauban process, "
            + "which holds the master key too, run `vauban keys rotate-master` first): "
            + "copies of the store taken from then on no longer open with it. The audit log keeps the key that sealed it (it is never rewritten). Audited. Exit code 3 when rows were "
            + "left under an older key (changed meanwhile): run it again with --resume.");
        var tenant = TenantCommands.Option();
        var resume = new Option<bool>("--resume")
        {
            Description = "Make no new key: re-seal what is still under an older one (after a run that ended with exit code 3, or was interrupted).",
        };
        var noWait = new Option<bool>("--no-wait")
        {
            Description = $"Re-seal at once instead of waiting {Settle.TotalSeconds:N0} s for running servers to take the new key: for a store no server runs on "
                + "(a server that has not taken it goes on sealing under the old key, and what it writes after the pass went by stays so until --resume).",
        };
        rotate.Options.Add(tenant);
        rotate.Options.Add(resume);
        rotate.Options.Add(noWait);
        StoreArguments.AddTo(rotate);
        rotate.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var establishment = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var administrator = AdministrationAudit.Context(establishment);
            if (!parse.GetValue(resume))
            {
                var made = await store.AddDataKeyAsync(administrator, token);
                Console.WriteLine($"Made data key version {made} for {establishment.Name}: new records are sealed with it from now on.");
                if (!parse.GetValue(noWait))
                {
                    // A server seals with the key it holds until it looks again: re-sealing before then would leave what it writes meanwhile behind.
                    Console.WriteLine($"Waiting {Settle.TotalSeconds:N0} s for running servers to take it (they look every {VaubanStore.DataKeyRecheck.TotalSeconds:N0} s)…");
                    await Task.Delay(Settle, token);
                }
            }
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var shown = 0L;
            var (version, tally) = await store.ResealAsync(administrator, new Reporter<long>(seen =>
            {
                if (seen - shown < 100_000) return;
                shown = seen;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {seen:N0} rows gone through…"));
            }), token);
            var seconds = Math.Max(watch.Elapsed.TotalSeconds, 0.001);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Re-sealed {Counted.En(tally.Resealed, "row", "rows")} of {establishment.Name} under data key version {version} in {seconds:N1} s ({(tally.Resealed + tally.Current) / seconds:N0} rows/s); "
                + $"{tally.Current:N0} were under it already ({string.Join(", ", VaubanStore.ResealedTables)})."));
            if (tally.Complete) return 0;
            if (tally.Changed > 0) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Counted.En(tally.Changed, "row", "rows")} changed while {(tally.Changed == 1 ? "it was" : "they were")} re-sealed: run `vauban keys rotate-data --tenant {establishment.Name} --resume`."));
            if (tally.Unreadable > 0) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Counted.En(tally.Unreadable, "row", "rows")} failed {(tally.Unreadable == 1 ? "its" : "their")} integrity check and {(tally.Unreadable == 1 ? "was" : "were")} left as {(tally.Unreadable == 1 ? "it is" : "they are")}: see `vauban guard alerts` and `vauban audit verify`."));
            return 3;
        }, ct));
        return rotate;
    }

    /// <summary>How long rotate-data waits, after making the key, for running servers to take it: their interval, and a margin.</summary>
    private static TimeSpan Settle => VaubanStore.DataKeyRecheck + TimeSpan.FromSeconds(5);
}
