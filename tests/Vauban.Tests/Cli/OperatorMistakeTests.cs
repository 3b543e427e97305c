// The operator's mistakes at the command line, as README's exit codes promise them: what was typed, the variables set and the
// files they name that cannot be used as given exit 2, in one line naming where the value came from (the option, or the
// variable when the option was not typed) and never repeating a secret; what the store or the system answers exits 1.
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Cli;

[Collection("console")]
public sealed class OperatorMistakeTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-mistake-" + Guid.NewGuid().ToString("N")[..8]);

    public OperatorMistakeTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        try { Directory.Delete(_directory, true); } catch (IOException) { }
    }

    private string Db => Path.Combine(_directory, "v.db");

    private string Key => Path.Combine(_directory, "master.key");

    /// <summary>A store with one establishment, "chu", under <see cref="Key"/>, on <paramref name="engine"/>: its --db value.</summary>
    private async Task<string> StoreOnAsync(Engine engine = Engine.Sqlite)
    {
        var db = engine == Engine.Postgres ? await PostgresServer.CreateMigratedDatabaseAsync() : Db;
        Assert.Equal(0, (await CliRunner.RunAsync(["tenants", "add", "chu", "--db", db, "--master-key-file", Key])).Exit);
        return db;
    }

    /// <summary>Runs <paramref name="act"/> with the environment variables set as given (null: unset), and puts them back after.</summary>
    private static async Task<T> WithVariablesAsync<T>(IReadOnlyDictionary<string, string?> variables, Func<Task<T>> act)
    {
        var before = variables.Keys.ToDictionary(name => name, Environment.GetEnvironmentVariable);
        try
        {
            foreach (var (name, value) in variables) Environment.SetEnvironmentVariable(name, value);
            return await act();
        }
        finally
        {
            foreach (var (name, value) in before) Environment.SetEnvironmentVariable(name, value);
        }
    }

    private static readonly string MasterKeyCanary = Convert.ToBase64String(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());

    [Fact]
    public async Task A_master_key_the_operator_gave_that_cannot_be_used_is_a_usage_error_naming_where_it_came_from()
    {
        await StoreOnAsync();
        var open = Path.Combine(_directory, "open.key");
        File.Copy(Key, open);
        File.SetUnixFileMode(open, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var garbled = Path.Combine(_directory, "garbled.key");
        await File.WriteAllTextAsync(garbled, "not a key");
        File.SetUnixFileMode(garbled, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var missing = Path.Combine(_directory, "typo.key");
        foreach (var (file, problem) in new[]
        {
            (open, $"the master key file '{open}' is readable by other users; restrict it with 'chmod 600'."),
            (garbled, $"the master key from {garbled} is not valid base64."),
            (missing, $"no file at {missing}, and the store at {Db} was made with a master key: its keys are wrapped under that key, which is elsewhere; name the key file it was made with"),
        })
        {
            await CliRunner.UsageErrorAsync(["tenants", "list", "--db", Db, "--master-key-file", file], "--master-key-file: " + problem, "vauban tenants list");
            await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_MASTER_KEY_FILE"] = file },
                () => CliRunner.UsageErrorAsync(["tenants", "list", "--db", Db], "$VAUBAN_MASTER_KEY_FILE: " + problem, "vauban tenants list"));
        }
        Assert.False(File.Exists(missing)); // no key made for a store that has one
        // The variable holding the key itself, and a key file typed beside it: neither is echoed.
        var printed = await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_MASTER_KEY"] = MasterKeyCanary[..^4] },
            () => CliRunner.UsageErrorAsync(["tenants", "list", "--db", Db], "The master key from $VAUBAN_MASTER_KEY must decode to 32 bytes", "vauban tenants list"));
        Assert.DoesNotContain(MasterKeyCanary[..^4], printed, StringComparison.Ordinal);
        printed = await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_MASTER_KEY"] = MasterKeyCanary },
            () => CliRunner.UsageErrorAsync(["tenants", "list", "--db", Db, "--master-key-file", Key],
                "--master-key-file is given while $VAUBAN_MASTER_KEY is set, which would be used instead: unset one of them.", "vauban tenants list"));
        Assert.DoesNotContain(MasterKeyCanary, printed, StringComparison.Ordinal);
        // The store's own answer is not a usage error: another store's key is refused by opening it.
        var other = Path.Combine(_directory, "other.key");
        Assert.Equal(0, (await CliRunner.RunAsync(["tenants", "add", "x", "--db", Path.Combine(_directory, "other.db"), "--master-key-file", other])).Exit);
        var (exit, output) = await CliRunner.RunAsync(["tenants", "list", "--db", Db, "--master-key-file", other]);
        Assert.True(exit == 1, output);
        Assert.Contains("another master key", output, StringComparison.Ordinal);
    }

    /// <summary>A mistyped key path for a PostgreSQL store made a new master key file there, which the store then refused as
    /// another store's key (exit 1), leaving the file behind to be taken for the store's key; a SQLite store's was refused
    /// before. On either engine a key is made only for a store no key was given yet: for one bound to a key (made by serve,
    /// no establishment yet) or holding keys wrapped under one, a key file that is not there is a usage error, and nothing is made.</summary>
    [Theory]
    [InlineData(Engine.Sqlite, true)]
    [InlineData(Engine.Postgres, true)]
    [InlineData(Engine.Sqlite, false)]
    [InlineData(Engine.Postgres, false)]
    public async Task A_key_file_that_is_not_there_for_a_store_made_with_a_key_is_a_usage_error_and_no_key_is_made(Engine engine, bool establishments)
    {
        string db;
        if (establishments) db = await StoreOnAsync(engine);
        else
        {
            // Bound to its key when serve made it, before any establishment.
            db = engine == Engine.Postgres ? await PostgresServer.CreateMigratedDatabaseAsync() : Db;
            await (await VaubanStore.OpenAsync(new StoreOptions(db, Vauban.Crypto.MasterKey.Load(Key, null)), CancellationToken.None)).DisposeAsync();
        }
        var typo = Path.Combine(_directory, "typo", "master.kye");
        var store = engine == Engine.Postgres ? "the PostgreSQL store of --db" : $"the store at {Db}";
        var problem = $"no file at {typo}, and {store} was made with a master key: its keys are wrapped under that key, which is elsewhere; name the key file it was made with (a new key would not open this store).";
        foreach (var (verb, typed) in new[] { ("vauban tenants list", new[] { "tenants", "list" }), ("vauban tenants add", ["tenants", "add", "clinique"]), ("vauban serve", ["serve", "--urls", "http://127.0.0.1:0"]) })
        {
            var printed = await CliRunner.UsageErrorAsync([.. typed, "--db", db, "--master-key-file", typo], "--master-key-file: " + problem, verb);
            printed += await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_MASTER_KEY_FILE"] = typo },
                () => CliRunner.UsageErrorAsync([.. typed, "--db", db], "$VAUBAN_MASTER_KEY_FILE: " + problem, verb));
            Assert.DoesNotContain(await File.ReadAllTextAsync(Key), printed, StringComparison.Ordinal);
            if (engine == Engine.Postgres) Assert.DoesNotContain(db, printed, StringComparison.Ordinal); // a connection string may hold a password
        }
        Assert.False(Directory.Exists(Path.GetDirectoryName(typo))); // neither the key nor its folder
        // The store's own key still opens it, and the refused verbs wrote nothing.
        var (exit, output) = await CliRunner.RunAsync(["tenants", "list", "--db", db, "--master-key-file", Key]);
        Assert.True(exit == 0, output);
        Assert.Equal(establishments, output.Contains("chu", StringComparison.Ordinal));
        Assert.DoesNotContain("clinique", output, StringComparison.Ordinal);
        // Past the command line (two starts at once, one making the key the other looked for), the store still names a key
        // made for it that it refuses, so that it is not kept as the store's.
        var refused = await Assert.ThrowsAsync<VaubanConfigurationException>(() => VaubanStore.OpenAsync(new StoreOptions(db, Vauban.Crypto.MasterKey.Load(typo, null)), CancellationToken.None));
        Assert.Contains($"The key file {typo} was made for this start and is not this store's key", refused.Message, StringComparison.Ordinal);
    }

    /// <summary>The other side of the rule: a store no key was given yet — a new SQLite file, a database whose schema is there
    /// but no key bound — is given the new key made at the path named.</summary>
    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_store_no_key_was_given_yet_is_given_a_new_key_at_the_path_named(Engine engine)
    {
        var db = engine == Engine.Postgres ? await PostgresServer.CreateMigratedDatabaseAsync() : Db;
        var (exit, output) = await CliRunner.RunAsync(["tenants", "add", "chu", "--db", db, "--master-key-file", Key]);
        Assert.True(exit == 0, output);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Key));
    }

    [Fact]
    public async Task A_store_path_with_nothing_there_names_the_variable_that_gave_it()
    {
        var nowhere = Path.Combine(_directory, "nowhere", "v.db");
        await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_DB"] = nowhere },
            () => CliRunner.UsageErrorAsync(["audit", "verify", "--master-key-file", Key], $"$VAUBAN_DB: no Vauban store at {nowhere}: there is no file there.", "vauban audit verify"));
        await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_DB"] = _directory },
            () => CliRunner.UsageErrorAsync(["tenants", "list", "--master-key-file", Key], $"$VAUBAN_DB: {_directory} is a folder", "vauban tenants list"));
        // Typed, the option is named even with the variable set.
        await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_DB"] = Db },
            () => CliRunner.UsageErrorAsync(["tenants", "list", "--db", nowhere, "--master-key-file", Key], $"--db: no Vauban store at {nowhere}", "vauban tenants list"));
        // An empty file holds no store: found by opening it, a refusal (exit 1), naming the variable to check.
        await File.WriteAllBytesAsync(Db, []);
        var (exit, output) = await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_DB"] = Db }, () => CliRunner.RunAsync(["tenants", "list", "--master-key-file", Key]));
        Assert.True(exit == 1, output);
        Assert.StartsWith($"error: No Vauban store at {Db}: check $VAUBAN_DB.", output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_directory, "nowhere")));
        Assert.False(File.Exists(Key));
    }

    public static TheoryData<string, string, string[], string> ServeSettings => new()
    {
        { "VAUBAN_PUBLIC_URL", "ftp://ehr.hopital.example", [], "'ftp://ehr.hopital.example' is not the http(s) URL clients reach Vauban by" },
        { "VAUBAN_TLS_KEY", "/etc/ssl/private/vauban.key", [], "give the certificate it belongs to with --tls-certificate or $VAUBAN_TLS_CERTIFICATE." },
        { "VAUBAN_TLS_CERTIFICATE", "/nowhere/vauban.pem", ["--urls", "https://127.0.0.1:0"], "no file at '/nowhere/vauban.pem'." },
        { "VAUBAN_TLS_CERTIFICATE", "/nowhere/vauban.pem", ["--urls", "http://127.0.0.1:0"], "no https:// address in --urls to serve it on" },
    };

    /// <summary>"--public-url: … is not …" sent the operator looking for an option never typed, the value being the variable's.</summary>
    [Theory]
    [MemberData(nameof(ServeSettings))]
    public async Task A_serve_setting_refused_names_the_variable_it_came_from_or_the_option_typed(string variable, string value, string[] more, string problem)
    {
        var option = "--" + variable["VAUBAN_".Length..].ToLowerInvariant().Replace('_', '-');
        await WithVariablesAsync(new Dictionary<string, string?> { [variable] = value },
            () => CliRunner.UsageErrorAsync(["serve", .. more, "--db", Db, "--master-key-file", Key], $"${variable}: {problem}", "vauban serve"));
        await CliRunner.UsageErrorAsync(["serve", .. more, option, value, "--db", Db, "--master-key-file", Key], $"{option}: {problem}", "vauban serve");
        Assert.False(File.Exists(Db)); // refused before a store or its key is made
        Assert.False(File.Exists(Key));
    }

    /// <summary>Checked before the store is opened (here there is none: the refusal is about the value, not "No Vauban store").</summary>
    [Theory]
    [InlineData("--name", "", "--name: a client name is 1 to 200 characters.")]
    [InlineData("--name", "Labo\u202esud", "--name: a client name may not hold control or invisible characters")]
    [InlineData("--scopes", "patient/*.read", "--scopes: 'patient/*.read': only system/ scopes are granted to API clients")]
    [InlineData("--scopes", "user/Patient.rs", "--scopes: 'user/Patient.rs': only system/ scopes are granted to API clients")]
    [InlineData("--scopes", " ", "--scopes: a client needs at least one scope")]
    [InlineData("--patients", ",,", "--patients: a patient limit is a list of 1 to 10,000 Patient ids")]
    [InlineData("--patients", "pat-1,../etc", "--patients: a patient limit is a list of 1 to 10,000 Patient ids")]
    public async Task A_client_that_cannot_be_registered_as_typed_is_a_usage_error_before_the_store_is_opened(string option, string value, string problem)
    {
        Dictionary<string, string> typed = new() { ["--name"] = "lab", ["--scopes"] = "system/Observation.rs", [option] = value };
        await CliRunner.UsageErrorAsync(["clients", "add", "--tenant", "chu", .. typed.SelectMany(t => new[] { t.Key, t.Value }), "--db", Db, "--master-key-file", Key],
            problem, "vauban clients add");
        Assert.False(File.Exists(Key));
    }

    /// <summary>A connection string whose every keyword was misspelt was taken for a SQLite path: printed with its password ("No
    /// Vauban store at …/Hots=db;Pasword=…") and, by tenants add and serve, made into a file named after it. A value with a part
    /// 'word=' is a connection string; this one names none of Npgsql's keywords and is refused without being quoted.</summary>
    [Theory]
    [InlineData("Hots=127.0.0.1;Pasword=S3cret-canary")]
    [InlineData("Pasword=S3cret-canary")]
    [InlineData("Sever = 127.0.0.1; Usernme = vauban; Pwd_ = S3cret-canary")]
    [InlineData("v=S3cret-canary.db")]
    public async Task A_misspelt_connection_string_is_a_usage_error_that_never_repeats_it_nor_makes_a_file(string db)
    {
        const string Problem = "the PostgreSQL connection string is not valid: it is keyword=value but names none of Npgsql's keywords (Host, Port, Database, Username, Password, …)";
        foreach (var (verb, typed) in new[] { ("vauban tenants add", new[] { "tenants", "add", "chu" }), ("vauban serve", ["serve", "--urls", "http://127.0.0.1:0"]), ("vauban tenants list", ["tenants", "list"]) })
        {
            var printed = await CliRunner.UsageErrorAsync([.. typed, "--db", db, "--master-key-file", Key], "--db: " + Problem, verb);
            Assert.DoesNotContain("canary", printed, StringComparison.OrdinalIgnoreCase);
            printed = await WithVariablesAsync(new Dictionary<string, string?> { ["VAUBAN_DB"] = db },
                () => CliRunner.UsageErrorAsync([.. typed, "--master-key-file", Key], "$VAUBAN_DB: " + Problem, verb));
            Assert.DoesNotContain("canary", printed, StringComparison.OrdinalIgnoreCase);
        }
        Assert.False(File.Exists(db)); // in the working directory, where a SQLite path would have been made
        Assert.Empty(Directory.GetFileSystemEntries(_directory));
    }

    /// <summary>A URL that is not quite a postgres:// one (a space or a quote before it, another scheme, a JDBC URL with its
    /// password as a query parameter) was taken for a SQLite path: printed with its password, and made into folders by serve and
    /// tenants add (helper-117). Any value holding "://" is a connection string, refused without being quoted.</summary>
    [Theory]
    [InlineData(" postgres://vauban:S3cret-canary@127.0.0.1/v")]
    [InlineData("'postgres://vauban:S3cret-canary@127.0.0.1/v'")]
    [InlineData("mysql://vauban:S3cret-canary@127.0.0.1/v")]
    [InlineData("jdbc:postgresql://127.0.0.1/v?user=vauban&password=S3cret-canary")]
    public async Task A_URL_that_is_not_a_postgres_one_is_a_usage_error_that_never_repeats_it_nor_makes_a_file(string db)
    {
        foreach (var typed in new[] { new[] { "tenants", "add", "chu" }, ["serve", "--urls", "http://127.0.0.1:0"], ["tenants", "list"] })
        {
            var (exit, output) = await CliRunner.RunAsync([.. typed, "--db", db, "--master-key-file", Key]);
            Assert.True(exit == 2, $"{string.Join(' ', typed)}: exit {exit}: {output}");
            Assert.Contains("PostgreSQL connection string is not valid", output, StringComparison.Ordinal);
            Assert.DoesNotContain("canary", output, StringComparison.OrdinalIgnoreCase);
        }
        Assert.False(Directory.Exists(" postgres:") || Directory.Exists("'postgres:") || Directory.Exists("mysql:") || Directory.Exists("jdbc:postgresql:"));
        Assert.Empty(Directory.GetFileSystemEntries(_directory));
    }

    [Fact]
    public async Task A_SQLite_file_named_like_key_value_is_a_store_when_written_with_its_folder()
    {
        var path = Path.Combine(_directory, "v=1.db");
        var (exit, output) = await CliRunner.RunAsync(["tenants", "add", "chu", "--db", path, "--master-key-file", Key]);
        Assert.True(exit == 0, output);
        Assert.Contains($"in SQLite {path}.", output, StringComparison.Ordinal);
        Assert.Equal(0, (await CliRunner.RunAsync(["tenants", "list", "--db", "./" + Path.GetRelativePath(Environment.CurrentDirectory, path), "--master-key-file", Key])).Exit);
    }

    /// <summary>A password holding ';' written without quotes is cut there by Npgsql, and its end read as settings of their own:
    /// "Password=S3cret;Database=canary" was printed as "Cannot open PostgreSQL 127.0.0.1:1/canary", and a part Npgsql could not
    /// take after it was named by its keyword. What follows an unquoted Password= is never printed: a value given there shows as
    /// '…', the server's own words are replaced by the kind of failure, and a part at fault is named by its position alone.</summary>
    [Theory]
    [InlineData("Host=127.0.0.1;Port=1;Username=vauban;Password=S3cret;Database=canary", "Cannot open PostgreSQL 127.0.0.1:1/…: the server cannot be reached")]
    [InlineData("Host=127.0.0.1;Port=1;Database=vauban;Password=S3cret;Database=canary", "Cannot open PostgreSQL 127.0.0.1:1/…: the server cannot be reached")]
    [InlineData("Host=127.0.0.1;Username=vauban;Password=S3cret;Port=1;Database=canary", "Cannot open PostgreSQL 127.0.0.1:…/…: the server cannot be reached")]
    [InlineData("Host=127.0.0.1;Port=1;Password=S3cret;Host=canary", "Cannot open PostgreSQL …:1/: the server cannot be reached")]
    public async Task Nothing_written_after_an_unquoted_password_is_printed_when_the_store_cannot_be_opened(string db, string error)
    {
        foreach (var typed in new[] { new[] { "tenants", "add", "chu" }, ["serve", "--urls", "http://127.0.0.1:0"], ["tenants", "list"] })
        {
            var (exit, output, errors) = await CliRunner.RunApartAsync([.. typed, "--db", db, "--master-key-file", Key]);
            Assert.True(exit == 1, output + errors); // a server that cannot be reached: a failure, not a usage error
            Assert.StartsWith("error: " + error, errors, StringComparison.Ordinal);
            Assert.Contains("the server's own words are not shown, since they may quote what follows Password= (put Password= last to see them)", errors, StringComparison.Ordinal);
            foreach (var secret in new[] { "canary", "S3cret" }) Assert.DoesNotContain(secret, output + errors, StringComparison.OrdinalIgnoreCase);
        }
        Assert.False(File.Exists(Key));
    }

    [Theory]
    [InlineData("Host=127.0.0.1;Username=vauban;Password=S3cret;Timeout=canary", "its 4th part, after Password=, is not a setting Npgsql can take; if it is a piece of the password")]
    [InlineData("Host=127.0.0.1;Username=vauban;Password=S3cret;Port=99999", "its 4th part, after Password=, is not a setting Npgsql can take")]
    [InlineData("Host=127.0.0.1;Username=vauban;Password=S3cret;canary;Database=vauban", "its 4th part, after Password=, is not a setting Npgsql can take")]
    [InlineData("Host=127.0.0.1;Username=vauban;Pwd=S3cret;Colour=canary", "its 4th part, after Password=, is not a setting Npgsql can take")] // Npgsql's other name for it
    public async Task A_part_after_an_unquoted_password_that_cannot_be_read_is_named_by_its_position_alone(string db, string problem)
    {
        var printed = await CliRunner.UsageErrorAsync(["tenants", "list", "--db", db, "--master-key-file", Key], "--db: the PostgreSQL connection string is not valid: " + problem, "vauban tenants list");
        foreach (var secret in new[] { "canary", "S3cret", "timeout", "99999", "colour" }) Assert.DoesNotContain(secret, printed, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>On a server that answers (the tests' own, which trusts every password): its words about a database or role named
    /// after an unquoted Password= are not shown, its SQL state is; what is written before Password=, or after a quoted one, is.</summary>
    [Fact]
    public async Task The_servers_words_about_what_follows_an_unquoted_password_are_not_shown_and_the_rest_is()
    {
        var server = PostgresServer.AdminConnectionString; // Host=…;Port=…;Username=vauban;Database=postgres
        foreach (var (after, state) in new[] { ("Database=canary", "PostgreSQL SQL state 3D000 (no such database)"), ("Username=canary", "PostgreSQL SQL state 28000 (this user may not connect") })
        {
            var (exit, output) = await CliRunner.RunAsync(["tenants", "add", "chu", "--db", $"{server};Password=S3cret;{after}", "--master-key-file", Key]);
            Assert.True(exit == 1, output);
            Assert.Contains(state, output, StringComparison.Ordinal);
            foreach (var secret in new[] { "canary", "S3cret" }) Assert.DoesNotContain(secret, output, StringComparison.OrdinalIgnoreCase);
        }
        // Before Password=, or after a password in quotes (which ends at its quote), the database is the operator's: named, and the server's words shown.
        foreach (var db in new[] { $"{server};Database=named-db;Password=S3cret", $"{server};Password='S3cret;x';Database=named-db" })
        {
            var (exit, output) = await CliRunner.RunAsync(["tenants", "add", "chu", "--db", db, "--master-key-file", Key]);
            Assert.True(exit == 1, output);
            Assert.Contains("/named-db: 3D000: database \"named-db\" does not exist", output, StringComparison.Ordinal);
            Assert.DoesNotContain("S3cret", output, StringComparison.Ordinal);
        }
        Assert.False(File.Exists(Key));
        // A store that opens: its description and journal folder name no value written after Password=.
        var database = new Npgsql.NpgsqlConnectionStringBuilder(await PostgresServer.CreateMigratedDatabaseAsync()).Database!;
        await using var store = await VaubanStore.OpenAsync(new StoreOptions($"{server};Password=S3cret;Database={database}", Vauban.Crypto.MasterKey.Generate()), CancellationToken.None);
        Assert.EndsWith(":" + new Npgsql.NpgsqlConnectionStringBuilder(server).Port + "/…", store.Description, StringComparison.Ordinal);
        Assert.DoesNotContain(database, store.Description + store.Audit.JournalDirectory, StringComparison.Ordinal);
    }

    /// <summary>A PostgreSQL store's default journal folder was named from its description: two stores whose database is given
    /// after an unquoted Password= both journaled in "host-port-_", a folder that no longer said which store. It is named from
    /// the store's identity — host, port, database, user, never the password —, a value given after the password by a digest.</summary>
    [Fact]
    public async Task Two_PostgreSQL_stores_named_after_an_unquoted_password_never_share_a_journal_folder_and_none_names_what_follows_it()
    {
        var server = PostgresServer.AdminConnectionString; // Host=…;Port=…;Username=vauban;Database=postgres
        var read = new Npgsql.NpgsqlConnectionStringBuilder(server);
        var databases = new List<string>();
        var folders = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var database = new Npgsql.NpgsqlConnectionStringBuilder(await PostgresServer.CreateMigratedDatabaseAsync()).Database!;
            databases.Add(database);
            var db = i < 2 ? $"{server};Password=S3cret;Database={database}" : $"{server};Database={database};Password=S3cret";
            await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, Vauban.Crypto.MasterKey.Generate()), CancellationToken.None);
            folders.Add(store.Audit.JournalDirectory);
        }
        Assert.NotEqual(folders[0], folders[1]);
        foreach (var folder in folders.Take(2))
        {
            Assert.StartsWith(Path.Combine(VaubanStore.DefaultDataDirectory, "audit-journal", Security.AuditTests.FolderName($"{read.Host}-{read.Port}-_-{read.Username}-")), folder, StringComparison.Ordinal);
            foreach (var secret in databases.Append("S3cret")) Assert.DoesNotContain(secret, folder, StringComparison.Ordinal);
        }
        // Written before the password, the identity names the folder as it is.
        Assert.Equal(Path.Combine(VaubanStore.DefaultDataDirectory, "audit-journal", Security.AuditTests.FolderName($"{read.Host}-{read.Port}-{databases[2]}-{read.Username}")), folders[2]);
    }

    /// <summary>What every verb checks of what was typed before it opens the store: a value no act can take, options that cannot
    /// go together, a folder that does not hold what it should. It exited 1, as the store's own refusals do. Here there is no
    /// store at all: the refusal is about the value, not "no Vauban store".</summary>
    public static TheoryData<string[], string, string> TypedMistakes => new()
    {
        { ["tenants", "add", "chu nantes"], "vauban tenants add", "An establishment name is 1 to 100 letters, digits, '-', '_' or '.'." },
        { ["seed", "--tenant", "chu", "--patients", "2", "--canaries", "5"], "vauban seed", "--canaries must be fewer than --patients." },
        { ["keys", "rotate-master", "--new-key-file", " "], "vauban keys rotate-master", "--new-key-file is empty" },
        { ["backup", " "], "vauban backup", "<file> is empty: name the backup file to write" },
        { ["guard", "release", "--tenant", "chu", "not a principal"], "vauban guard release", "<principal>: a principal is a session:…, user:… or client id" },
        { ["guard", "acknowledge", "--tenant", "chu", .. Enumerable.Range(1, 1001).Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture))], "vauban guard acknowledge", "At most 1,000 alerts at a time." },
        { ["audit", "patient", "--tenant", "chu", "../etc"], "vauban audit patient", "<patient-id>: not a Patient id" },
        { ["audit", "patient", "--tenant", "chu", "185057800608491"], "vauban audit patient", "<patient-id>: this looks like a social-security number (NIR), not a record id" },
        { ["users", "add", "--tenant", "chu", "--email", "claire martin@chu.example", "--role", "nurse"], "vauban users add", "--email: not an e-mail address" },
        { ["users", "add", "--tenant", "chu", "--email", "c@chu.example", "--role", "nurse", "--practitioner", "pract/1"], "vauban users add", "--practitioner: Practitioner resource ids are" },
        { ["users", "add", "--tenant", "chu", "--email", "c@chu.example", "--role", "nurse", "--name", "Claire\u001b[2J"], "vauban users add", "--name: a display name may not hold control or invisible characters" },
    };

    [Theory]
    [MemberData(nameof(TypedMistakes))]
    public async Task A_value_no_act_can_take_is_a_usage_error_before_the_store_is_opened(string[] typed, string verb, string problem)
    {
        await CliRunner.UsageErrorAsync([.. typed, "--db", Db, "--master-key-file", Key], problem, verb);
        Assert.False(File.Exists(Db));
        Assert.False(File.Exists(Key));
    }

    /// <summary>A file a verb writes anew, named after one that is there — a backup over yesterday's, a new master key over
    /// another file or the store's own key —, is refused before the store is opened, whatever its engine, and left as it was.
    /// They exited 1: PostgreSQL's backup was answered only with pg_dump's advice, the others by the store once open.</summary>
    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_file_a_verb_would_write_that_exists_is_a_usage_error_on_either_engine_and_stays_as_it_was(Engine engine)
    {
        var db = await StoreOnAsync(engine);
        var kept = Path.Combine(_directory, "yesterday.db");
        await File.WriteAllTextAsync(kept, "a file of the operator's");
        foreach (var (typed, verb, problem) in new[]
        {
            (new[] { "backup", kept }, "vauban backup", $"<file>: {kept} already exists: a backup is written to a new file, never over another."),
            (["keys", "rotate-master", "--new-key-file", kept], "vauban keys rotate-master",
                $"--new-key-file: {kept} exists and will not be overwritten: name a file that does not exist (a new master key is never written over a file)."),
            (["keys", "rotate-master", "--new-key-file", Key], "vauban keys rotate-master", $"--new-key-file: {Key} exists and will not be overwritten"),
        })
        {
            var before = await File.ReadAllTextAsync(typed[^1]);
            await CliRunner.UsageErrorAsync([.. typed, "--db", db, "--master-key-file", Key], problem, verb);
            Assert.Equal(before, await File.ReadAllTextAsync(typed[^1]));
        }
        Assert.Equal([kept], Directory.GetFiles(_directory, "yesterday.db*")); // no partial copy beside it
        // Nothing changed: the store's key still opens it.
        var (exit, output) = await CliRunner.RunAsync(["tenants", "list", "--db", db, "--master-key-file", Key]);
        Assert.True(exit == 0, output);
        Assert.Contains("chu", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_breach_report_into_a_file_or_a_folder_in_use_is_a_usage_error_and_an_import_of_a_folder_without_bundles_too()
    {
        var used = Path.Combine(_directory, "used");
        Directory.CreateDirectory(used);
        await File.WriteAllTextAsync(Path.Combine(used, "notes.txt"), "");
        await CliRunner.UsageErrorAsync(["breach", "--tenant", "chu", "--principal", "user:x", "--out", used, "--db", Db, "--master-key-file", Key], $"--out: {used} is not empty", "vauban breach");
        await CliRunner.UsageErrorAsync(["breach", "--tenant", "chu", "--principal", "user:x", "--out", Path.Combine(used, "notes.txt"), "--db", Db, "--master-key-file", Key],
            $"--out: {Path.Combine(used, "notes.txt")} is a file", "vauban breach");
        await CliRunner.UsageErrorAsync(["import", used, "--tenant", "chu", "--db", Db, "--master-key-file", Key], $"'{used}' holds no .json file", "vauban import");
        Assert.False(File.Exists(Db));
    }
}
