// vauban backup — a consistent copy of the embedded SQLite store, taken beside a running server, audited on every
// establishment's chain. A PostgreSQL store is backed up with PostgreSQL's tools (the verb says which).
using System.CommandLine;
using System.Globalization;

namespace Vauban.Cli;

internal static class BackupCommand
{
    public static Command Build()
    {
        var backup = new Command("backup",
            "Write a consistent copy of the SQLite store to a new file, while `vauban serve` runs on it (writers go on; the copy is the store as it "
            + "was when the copy began, compacted, checked, readable by its owner only). The copy holds sealed records, as the store does: it needs the "
            + "master key, which is not in it — keep that key apart from the backups. The copy is written as <file>.partial-<random> beside it and takes the "
            + "file's name only once whole and checked: a <file>.partial-… file left behind is an interrupted backup, not a backup — delete it (with its "
            + "-journal). Audited on every establishment's chain. For a PostgreSQL store, use pg_dump.");
        var file = new Argument<string>("file") { Description = "The backup file to write; it must not exist (a backup never overwrites another)." };
        backup.Arguments.Add(file);
        StoreArguments.AddTo(backup);
        backup.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            // The file named is checked first, whatever the store's engine: a file there (yesterday's backup) is the same usage
            // error on both (PostgreSQL's said only to use pg_dump, exit 1, and SQLite's came from the store once opened).
            var target = parse.GetValue(file)!;
            if (string.IsNullOrWhiteSpace(target)) throw new UsageException("<file> is empty: name the backup file to write, e.g. vauban backup /var/backups/vauban/vauban-2026-12-05.db");
            if (VaubanStore.BackupTargetProblem(target) is { } problem) throw new UsageException(UsageError.About("<file>", problem));
            // Refused before the store is opened: nothing to copy here, and nothing is written on its chains.
            if (VaubanStore.IsPostgresConnectionString(StoreArguments.DbValue(parse))) throw new InvalidOperationException(VaubanStore.PostgresBackupAdvice);
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var written = await store.BackupAsync(target, AdministrationAudit.Context, token);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Backed up {store.Description} ({Counted.En(written.Establishments, "establishment", "establishments")}) to {written.Path}: {written.Bytes / 1048576.0:N1} MiB in {written.Took.TotalSeconds:N1} s, checked."));
            Console.WriteLine($"It can be read only with the master key {written.MasterKeyFingerprint}: keep that key apart from the backup (another place, another medium), never beside it.");
            Console.WriteLine("To restore: stop the server; move the store's file aside with its -wal and -shm files and its -audit folder; copy the backup in its place; start the server; then run `vauban audit verify` (with --witness to detect a rollback of the audit log).");
            return 0;
        }, ct));
        return backup;
    }
}
