// What the command line says of a store that answers with an error, of a master key it makes, and of a store a newer Vauban
// indexed (outside review, L6, L2, L7): one `error:` line naming the cause by code, never a stack trace or the server's words;
// a key made beside the store said once; a store in a newer index format not written in the older one.
using Vauban.Tests.Infrastructure;
using static Vauban.Tests.Storage.StoreOperationsTests;

namespace Vauban.Tests.Cli;

[Collection("console")]
public sealed class StoreErrorTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-storeerror-" + Guid.NewGuid().ToString("N")[..8]);

    public StoreErrorTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        try { Directory.Delete(_directory, true); } catch (IOException) { }
    }

    private string Key => Path.Combine(_directory, "master.key");

    private async Task<string[]> StoreAsync(Engine engine)
    {
        var db = engine == Engine.Postgres ? await PostgresServer.CreateMigratedDatabaseAsync() : Path.Combine(_directory, "v.db");
        Assert.Equal(0, (await CliRunner.RunAsync(["tenants", "add", "chu", "--db", db, "--master-key-file", Key])).Exit);
        return ["--db", db, "--master-key-file", Key];
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_database_error_is_one_line_naming_its_code_never_a_stack_trace_nor_PostgreSQLs_words(Engine engine)
    {
        var store = await StoreAsync(engine);
        await ExecuteAsync(store[1], "DROP TABLE guard_canaries;");
        var (exit, output) = await CliRunner.RunAsync(["guard", "canaries", "list", "--tenant", "chu", .. store]);
        Assert.True(exit == 1, output);
        Assert.StartsWith("error: the store refused this command: " + (engine == Engine.Sqlite
            ? "SQLite error 1 (no such table: guard_canaries: the store is damaged, or its schema was changed outside Vauban)."
            : "PostgreSQL SQL state 42P01 (a table is missing: the store is damaged, or its schema was changed outside Vauban)."), output, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
        Assert.DoesNotContain("relation", output, StringComparison.Ordinal); // PostgreSQL's words: relation "guard_canaries" does not exist
        Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task A_file_that_is_not_a_database_is_named_by_SQLites_code_and_words()
    {
        var bad = Path.Combine(_directory, "bad.db");
        await File.WriteAllTextAsync(bad, new string('x', 4096));
        var (exit, output) = await CliRunner.RunAsync(["tenants", "list", "--db", bad, "--master-key-file", Key]);
        Assert.True(exit == 1, output);
        Assert.StartsWith($"error: Cannot open SQLite {bad}: SQLite error 26 (file is not a database: not a SQLite database: another kind of file, or an encrypted one)", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_master_key_made_for_a_new_store_is_said_once_and_one_beside_the_store_is_said_to_protect_nothing_there()
    {
        var db = Path.Combine(_directory, "v.db");
        var (exit, _, error) = await CliRunner.RunApartAsync(["tenants", "add", "chu", "--db", db, "--master-key-file", Key]);
        Assert.Equal(0, exit);
        Assert.StartsWith($"note: a new master key was made for this store, in {Key} (mode 0600, this account only). Kept beside the store, it protects nothing against a copy of the folder",
            error, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Key));
        // The key there: nothing said.
        (exit, _, error) = await CliRunner.RunApartAsync(["tenants", "add", "clinique", "--db", db, "--master-key-file", Key]);
        Assert.Equal(0, exit);
        Assert.Equal("", error);

        // Made elsewhere than beside the store: said, without the warning.
        var apart = Path.Combine(_directory, "keys", "other.key");
        (exit, _, error) = await CliRunner.RunApartAsync(["tenants", "add", "chu", "--db", Path.Combine(_directory, "other.db"), "--master-key-file", apart]);
        Assert.Equal(0, exit);
        Assert.Equal($"note: a new master key was made for this store, in {apart} (mode 0600, this account only).", error.Trim());
    }

    [Fact]
    public async Task An_establishment_name_no_one_can_have_is_a_usage_error_in_every_verb_as_in_tenants_add()
    {
        var store = await StoreAsync(Engine.Sqlite);
        const string Invisible = "chu\u200B2";
        const string Problem = "--tenant: an establishment name may not hold control or invisible characters";
        await CliRunner.UsageErrorAsync(["tenants", "add", Invisible, .. store], "An establishment name may not hold control or invisible characters", "vauban tenants add");
        foreach (var verb in new[] { "users list", "guard alerts", "reindex", "seed" })
        {
            await CliRunner.UsageErrorAsync([.. verb.Split(' '), "--tenant", Invisible, .. store], Problem, "vauban " + verb);
        }
        // One a store made earlier may hold is still looked up (exit 1 when there is none).
        var (exit, output) = await CliRunner.RunAsync(["users", "list", "--tenant", "...", .. store]);
        Assert.True(exit == 1, output);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_store_a_newer_Vauban_indexed_is_refused_by_the_verbs_that_write_index_rows_in_bulk_and_nothing_changes(Engine engine)
    {
        var store = await StoreAsync(engine);
        Assert.Equal(0, (await CliRunner.RunAsync(["seed", "--tenant", "chu", "--patients", "2", .. store])).Exit);
        var newer = Vauban.Records.Search.IndexEntries.FormatVersion + 1;
        await ExecuteAsync(store[1], $"UPDATE store_settings SET value = '{newer}' WHERE name = 'index_version';");
        var before = await ScalarAsync(store[1], "SELECT count(*) FROM resources");
        var bundle = Path.Combine(_directory, "bundle.json");
        await File.WriteAllTextAsync(bundle, """{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Organization","id":"org-1","name":"Labo"}}]}""");
        foreach (var (verb, typed) in new (string, string[])[]
        {
            ("seed", ["seed", "--tenant", "nouvelle", "--patients", "2", "--seed", "9"]),
            ("import", ["import", bundle, "--tenant", "chu"]),
            ("reindex", ["reindex"]),
        })
        {
            var (exit, output) = await CliRunner.RunAsync([.. typed, .. store]);
            Assert.True(exit == 1, verb + " → " + output);
            Assert.StartsWith($"error: {verb} refused: the store's search index has format {newer}, newer than this Vauban's ({newer - 1}): a newer Vauban indexed it.", output, StringComparison.Ordinal);
            Assert.Contains("Nothing was changed.", output, StringComparison.Ordinal);
        }
        Assert.Equal(before, await ScalarAsync(store[1], "SELECT count(*) FROM resources"));
        Assert.Equal(0, await ScalarAsync(store[1], "SELECT count(*) FROM tenants WHERE name = 'nouvelle'"));
        Assert.Equal(newer, await ScalarAsync(store[1], "SELECT CAST(value AS integer) FROM store_settings WHERE name = 'index_version'"));
        // Reading is not refused.
        Assert.Equal(0, (await CliRunner.RunAsync(["tenants", "list", .. store])).Exit);
    }
}
