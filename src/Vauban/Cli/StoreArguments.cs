// The options every store-touching verb shares: --db (or VAUBAN_DB) and the master key file
// (--master-key-file, VAUBAN_MASTER_KEY_FILE, default data/master.key; or VAUBAN_MASTER_KEY itself), and the audit
// journal's folder (VAUBAN_AUDIT_JOURNAL).
using System.CommandLine;
using Vauban.Crypto;

namespace Vauban.Cli;

internal static class StoreArguments
{
    public static readonly Option<string?> Db = new("--db")
    {
        Description = "The store: a SQLite file path, or a PostgreSQL connection string (Host=…;Database=…;Username=… or postgres://…). Default: $VAUBAN_DB, else ./data/vauban.db",
    };

    public static readonly Option<string?> MasterKeyFile = new("--master-key-file")
    {
        Description = "The master key file (created with mode 0600 if missing). Default: $VAUBAN_MASTER_KEY_FILE, else ./data/master.key. $VAUBAN_MASTER_KEY (base64) takes precedence.",
    };

    public static void AddTo(Command command)
    {
        command.Options.Add(Db);
        command.Options.Add(MasterKeyFile);
    }

    public static StoreOptions Resolve(ParseResult parse)
    {
        var db = parse.GetValue(Db) ?? Environment.GetEnvironmentVariable("VAUBAN_DB");
        if (string.IsNullOrWhiteSpace(db)) db = Path.Combine(VaubanStore.DefaultDataDirectory, "vauban.db");
        var keyFile = parse.GetValue(MasterKeyFile) ?? Environment.GetEnvironmentVariable("VAUBAN_MASTER_KEY_FILE");
        if (string.IsNullOrWhiteSpace(keyFile)) keyFile = Path.Combine(VaubanStore.DefaultDataDirectory, "master.key");
        var options = new StoreOptions(db, MasterKey.Load(keyFile, Environment.GetEnvironmentVariable(MasterKey.EnvironmentVariable)));
        // Where this process journals audit entries on their way to the chain (ADR 0009); every process of one store
        // should use the same folder, so that one recovers what another left after a crash.
        var journal = Environment.GetEnvironmentVariable("VAUBAN_AUDIT_JOURNAL");
        return string.IsNullOrWhiteSpace(journal) ? options : options with { Audit = options.Audit with { JournalDirectory = Path.GetFullPath(journal) } };
    }

    public static async Task<VaubanStore> OpenAsync(ParseResult parse, CancellationToken cancellationToken) =>
        await VaubanStore.OpenAsync(Resolve(parse), cancellationToken);
}
