// vauban keys rotate-master — a new master key for the store: every establishment's keys re-wrapped under it, in one
// transaction, audited on every establishment's chain. For a key file that was copied, seen or kept where it should not
// have been, and on the security officer's schedule.
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
            var path = Path.GetFullPath(parse.GetValue(newKeyFile)!);
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
                $"Rotated the master key of {store.Description}: {rotation.Keys:N0} keys of {rotation.Establishments:N0} establishment(s) are now wrapped under the key in {path} (fingerprint {next.Fingerprint}; it was {previous})."));
            Console.WriteLine("Next:");
            Console.WriteLine($"  1. Give every Vauban process of this store the new key: --master-key-file {path}, or $VAUBAN_MASTER_KEY_FILE (or its contents in $VAUBAN_MASTER_KEY).");
            Console.WriteLine("  2. Restart running servers now: they go on with the keys they have opened, but cannot open an establishment's keys they have not, nor add an establishment, and the old key is refused at their next start.");
            Console.WriteLine("  3. Destroy the old key file and its copies. Backups of the store taken before now still need the old key: keep it with them, or take new backups and destroy both.");
            return 0;
        }, ct));
        keys.Subcommands.Add(rotate);
        return keys;
    }
}
