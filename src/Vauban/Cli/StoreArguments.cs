// The options every store-touching verb shares: --db (or VAUBAN_DB) and the master key file
// (--master-key-file, VAUBAN_MASTER_KEY_FILE, default data/master.key; or VAUBAN_MASTER_KEY itself), and the audit
// journal's folder (VAUBAN_AUDIT_JOURNAL).
using System.CommandLine;
using Vauban.Crypto;

namespace Vauban.Cli;

internal static class StoreArguments
{
    public static readonly Option<string?> Db = NotEmpty(new("--db")
    {
        Description = "The store: a SQLite file path, or a PostgreSQL connection string (Host=…;Database=…;Username=… or postgres://…; a value holding ';' in quotes: Password='ab;cd'). "
            + "Anything with a part 'word=' is read as a connection string: a SQLite file named so is written with its folder, ./v=1.db. Default: $VAUBAN_DB, else ./data/vauban.db",
    }, "the store's file or connection string");

    public static readonly Option<string?> MasterKeyFile = NotEmpty(new("--master-key-file")
    {
        Description = "The master key file (created with mode 0600 along with a new store; for a store that exists it must be there). Default: $VAUBAN_MASTER_KEY_FILE, else ./data/master.key. Or $VAUBAN_MASTER_KEY (base64), which takes precedence over $VAUBAN_MASTER_KEY_FILE; with this option, refused. A store is bound to its key when it is made.",
    }, "the key file");

    /// <summary>An empty value typed for the option (--db "$VAUBAN_DB" with the variable unset) is a usage error: it was taken as
    /// the default, ./data/vauban.db or ./data/master.key, passing over $VAUBAN_MASTER_KEY_FILE, and `tenants add` made a
    /// store or a new master key there.</summary>
    private static Option<string?> NotEmpty(Option<string?> option, string what)
    {
        option.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && string.IsNullOrWhiteSpace(result.Tokens[^1].Value))
                result.AddError($"{option.Name} is empty: give {what}, or leave {option.Name} out for the default.");
        });
        return option;
    }

    public static void AddTo(Command command)
    {
        command.Options.Add(Db);
        command.Options.Add(MasterKeyFile);
    }

    /// <summary>The store named, refused as a usage error (exit 2) when it cannot name one as written — a folder, a PostgreSQL
    /// connection string that cannot be read —, before anything is opened or made for it; a server that cannot be reached, a
    /// wrong password, is a failure of the verb (exit 1).</summary>
    internal static string DbValue(ParseResult parse)
    {
        var given = DbGiven(parse);
        var db = given.Value ?? Path.Combine(VaubanStore.DefaultDataDirectory, "vauban.db");
        if (VaubanStore.DbProblem(db) is { } problem) throw new UsageException(given.Says(problem));
        return db;
    }

    private static Given DbGiven(ParseResult parse) => Given.From(parse, Db, "VAUBAN_DB", "the default store");

    /// <summary>What the operator should look at for a store that is not where it was named: the option or variable that named it,
    /// or the two that could have.</summary>
    private static string Check(Given db) => db.Value is null ? "give it with --db or $VAUBAN_DB" : $"check {db.Source}";

    public static async Task<StoreOptions> ResolveAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var db = DbValue(parse);
        var variable = Environment.GetEnvironmentVariable(MasterKey.EnvironmentVariable);
        var fromVariable = !string.IsNullOrWhiteSpace(variable);
        if (fromVariable && parse.GetValue(MasterKeyFile) is not null)
        {
            // The variable takes precedence: a --master-key-file typed beside a leftover $VAUBAN_MASTER_KEY was silently ignored.
            throw new UsageException($"--master-key-file is given while ${MasterKey.EnvironmentVariable} is set, which would be used instead: unset one of them.");
        }
        var keyGiven = Given.From(parse, MasterKeyFile, "VAUBAN_MASTER_KEY_FILE", "the default master key file");
        var keyFile = keyGiven.Value ?? Path.Combine(VaubanStore.DefaultDataDirectory, "master.key");
        // Reading a named pipe waits for a writer, and a device never ends: the verb hung before saying anything.
        if (!fromVariable && FileKind.NotRegular(keyFile) is { } kind)
        {
            throw new UsageException(keyGiven.Says($"{Path.GetFullPath(keyFile)} is {kind}, not a regular file."));
        }
        // A key is made only for a store no key was given yet, on either engine: for one bound to a key, or holding keys wrapped
        // under one, a missing key file is a mistyped path, and a new key (and its folder) would be left behind before "this
        // store was made with another master key" (on PostgreSQL it was, exit 1).
        if (!fromVariable && !File.Exists(keyFile) && !Directory.Exists(keyFile) && await VaubanStore.HasMasterKeyAsync(db, cancellationToken))
        {
            var store = VaubanStore.IsPostgresConnectionString(db) ? $"the PostgreSQL store of {DbGiven(parse).Source}" : $"the store at {Path.GetFullPath(db)}";
            throw new UsageException(keyGiven.Says($"no file at {Path.GetFullPath(keyFile)}, and {store} was made with a master key: its keys are wrapped under that key, "
                + "which is elsewhere; " + (keyGiven.Value is null ? "give it with --master-key-file or $VAUBAN_MASTER_KEY_FILE" : "name the key file it was made with")
                + " (a new key would not open this store)."));
        }
        MasterKey key;
        try
        {
            // A key the operator named that cannot be used as given (readable by others, not a key, a folder) is a usage error,
            // as a TLS key is; one the store refuses as another store's is found by opening it (exit 1).
            key = UsageError.Checked(() => MasterKey.Load(keyFile, variable), fromVariable ? null : keyGiven.Says);
        }
        catch (UnauthorizedAccessException e) when (!fromVariable && File.Exists(keyFile))
        {
            throw new UsageException(UsageError.CannotRead(new FileInfo(keyFile), keyGiven.Source, e));
        }
        var options = new StoreOptions(db, key);
        // Where this process journals audit entries on their way to the chain (ADR 0009); every process of one store
        // should use the same folder, so that one recovers what another left after a crash.
        var journal = Environment.GetEnvironmentVariable("VAUBAN_AUDIT_JOURNAL");
        return string.IsNullOrWhiteSpace(journal) ? options : options with { Audit = options.Audit with { JournalDirectory = Path.GetFullPath(journal) } };
    }

    /// <summary>Refuses, before anything is written, a verb that writes index rows in bulk (seed, import, reindex) on a store a newer
    /// Vauban indexed: its rows would be in this Vauban's older format beside the newer one's (it was served and written silently).</summary>
    public static async Task RefuseNewerIndexAsync(VaubanStore store, string verb, CancellationToken cancellationToken)
    {
        if (await store.Records.IndexStatusAsync(cancellationToken) is { Newer: true } index)
        {
            throw new InvalidOperationException($"{verb} refused: {index.NewerWarning} Nothing was changed.");
        }
    }

    /// <summary>Said once, on standard error, when a verb made the master key file for a new store: it was made silently beside the
    /// store, where a copy of the folder (a backup, a stolen disk image) takes the key with the records it protects.
    /// Said once the store is open with it: a store that cannot be opened (a file that is not one) says only why.</summary>
    internal static void SayMadeKey(StoreOptions options)
    {
        if (options.MasterKey.MadeFile is not { } made) return;
        var byDefault = string.Equals(made, Path.GetFullPath(Path.Combine(VaubanStore.DefaultDataDirectory, "master.key")), StringComparison.Ordinal);
        var beside = byDefault || (!VaubanStore.IsPostgresConnectionString(options.Db)
            && string.Equals(Path.GetDirectoryName(Path.GetFullPath(options.Db)), Path.GetDirectoryName(made), StringComparison.Ordinal));
        Console.Error.WriteLine($"note: a new master key was made for this store, in {made} (mode 0600, this account only)."
            + (beside ? " Kept beside the store, it protects nothing against a copy of the folder, which takes the key with the records: move it "
                + "elsewhere and name it with --master-key-file or $VAUBAN_MASTER_KEY_FILE, or give it in $VAUBAN_MASTER_KEY (README, Configuration)." : ""));
    }

    /// <param name="create">Whether the verb may make a new store (tenants add, seed; serve opens its own). The others refuse a
    /// --db where there is none, before a master key is made for it: a typo in the path made an empty store on which `audit
    /// verify` printed nothing and exited 0, and `tenants list` listed nothing. On PostgreSQL likewise a database without
    /// Vauban's schema (a typo in Database=, the server's own `postgres` database) was given the whole schema. A path with no
    /// file is a usage error, as a missing file given to any option is; a file or database without a store is found by
    /// opening it (exit 1).</param>
    public static async Task<VaubanStore> OpenAsync(ParseResult parse, CancellationToken cancellationToken, bool create = false)
    {
        var db = DbValue(parse);
        var found = await RefuseForeignAsync(db, cancellationToken, create);
        if (!create && found != StoreFound.Store)
        {
            var given = DbGiven(parse);
            const string Made = "A new store is made by 'vauban tenants add' or 'vauban serve'.";
            if (VaubanStore.IsPostgresConnectionString(db)) throw new ArgumentException($"No Vauban store in this PostgreSQL database (it has no Vauban schema): {Check(given)}. {Made}");
            var full = Path.GetFullPath(db);
            if (!File.Exists(full)) throw new UsageException(given.Says($"no Vauban store at {full}: there is no file there. {Made}"));
            throw new ArgumentException($"No Vauban store at {full}: {Check(given)}. {Made}");
        }
        var options = await ResolveAsync(parse, cancellationToken);
        var store = await VaubanStore.OpenAsync(options with { MayCreate = create }, cancellationToken);
        SayMadeKey(options);
        // Raised on the appender's thread, or as the store closes at the verb's end: said on standard error, as serve logs it.
        store.Audit.LeftUnsigned += tenantId => Console.Error.WriteLine("warning: " + LeftUnsignedWarning.Replace("{TenantId}",
            tenantId.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        return store;
    }

    /// <summary>What a process says when it leaves an establishment's audit entries unsigned because it holds the master key
    /// another process has rotated since it opened the store (<see cref="Audit.AuditTrail.LeftUnsigned"/>): the establishment's
    /// number only, no key, no fingerprint, no patient data. `serve` logs it (a template: Vauban.Audit, a warning); every other
    /// verb that opens a store prints it on standard error.</summary>
    internal const string LeftUnsignedWarning = "Audit entries of establishment {TenantId} are left unsigned: the store's master key was rotated by another "
        + "process and this one holds the previous key. Run Vauban with the store's new key (restart a server still holding the previous one); "
        + "the next commit of a process holding it signs over them.";

    /// <summary>Refuses another application's database before a master key is made for it (the store's opening refuses it too,
    /// before writing anything): `tenants add` wrote Vauban's whole schema beside its tables. For the verbs that do not make a
    /// store, it is "No Vauban store at …", as a path with nothing there.</summary>
    public static async Task<StoreFound> RefuseForeignAsync(string db, CancellationToken cancellationToken, bool create = true)
    {
        var found = await VaubanStore.FindAsync(db, cancellationToken);
        if (create && found == StoreFound.Foreign) throw new ArgumentException(VaubanStore.NotAStore(db));
        return found;
    }
}
