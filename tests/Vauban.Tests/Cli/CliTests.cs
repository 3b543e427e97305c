// The vauban command as an operator uses it: help on every verb, clear errors, and the verbs that
// set up an establishment, register a client, seed and import.
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Cli;

[Collection("console")]
public class CliTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-cli-" + Guid.NewGuid().ToString("N")[..8]);

    public CliTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        try { Directory.Delete(_directory, true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }

    private string DbArgs => $"--db {Path.Combine(_directory, "v.db")} --master-key-file {Path.Combine(_directory, "master.key")}";

    private static Task<(int Exit, string Output)> RunAsync(string arguments) => RunAsync(arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    private static Task<(int Exit, string Output)> RunAsync(string[] arguments) => CliRunner.RunAsync(arguments);

    /// <summary>Imports one Bundle file, named <paramref name="fileName"/>, into a new establishment <paramref name="tenant"/>.</summary>
    private async Task<(int Exit, string Output)> ImportIntoNewTenantAsync(string tenant, string fileName, string bundle)
    {
        Assert.Equal(0, (await RunAsync($"tenants add {tenant} {DbArgs}")).Exit);
        var file = Path.Combine(_directory, fileName);
        await File.WriteAllTextAsync(file, bundle);
        return await RunAsync($"import {file} --tenant {tenant} {DbArgs}");
    }

    /// <summary>The root and every verb and sub-verb under it, each with what is typed to reach it ("" for the root): a verb added
    /// later is covered without being listed here.</summary>
    private static IEnumerable<(string Typed, System.CommandLine.Command Command)> CommandTree()
    {
        var pending = new Stack<(string, System.CommandLine.Command)>([("", Vauban.Cli.VaubanCommands.Build())]);
        while (pending.Count > 0)
        {
            var (typed, command) = pending.Pop();
            yield return (typed, command);
            foreach (var sub in command.Subcommands) pending.Push(((typed + " " + sub.Name).Trim(), sub));
        }
    }

    public static TheoryData<string> EveryVerb() => [.. CommandTree().Select(c => (c.Typed + " --help").Trim())];

    [Fact]
    public void Every_verb_option_and_argument_says_what_it_is_for()
    {
        var missing = new List<string>();
        foreach (var (typed, command) in CommandTree())
        {
            var path = ("vauban " + typed).Trim();
            if (string.IsNullOrWhiteSpace(command.Description)) missing.Add(path);
            missing.AddRange(command.Options.Where(o => string.IsNullOrWhiteSpace(o.Description)).Select(o => $"{path} {o.Name}"));
            missing.AddRange(command.Arguments.Where(a => string.IsNullOrWhiteSpace(a.Description)).Select(a => $"{path} <{a.Name}>"));
        }
        Assert.Empty(missing);
    }

    /// <summary>Every verb that does something has worked examples in its help, and each example is a line the parser takes for that
    /// verb: no unknown option or word, no required option missing (files the examples name are not there: only that is let pass).</summary>
    [Fact]
    public void Every_verb_has_examples_that_parse_as_that_verb()
    {
        var problems = new List<string>();
        var tree = CommandTree().ToList();
        foreach (var (typed, command) in tree.Where(c => c.Command.Subcommands.Count == 0))
        {
            var examples = Vauban.Cli.CommandExamples.Of(command);
            if (examples.Count == 0) problems.Add($"vauban {typed}: no examples");
            foreach (var example in examples)
            {
                Assert.StartsWith("vauban " + typed + " ", example.Line + " ", StringComparison.Ordinal);
                var parse = Vauban.Cli.VaubanCommands.Build().Parse(example.Line["vauban ".Length..]);
                var errors = parse.Errors.Select(e => e.Message).Where(m => !m.Contains("no file at", StringComparison.Ordinal) && !m.Contains("neither a file nor a folder", StringComparison.Ordinal));
                problems.AddRange(errors.Select(e => $"{example.Line}: {e}"));
                if (parse.CommandResult.Command.Name != command.Name) problems.Add($"{example.Line}: parsed as {parse.CommandResult.Command.Name}");
            }
        }
        // Every verb the table names is in the tree.
        problems.AddRange(Vauban.Cli.CommandExamples.ByVerb.Keys.Where(k => !tree.Any(c => c.Typed == k)).Select(k => $"no verb '{k}'"));
        Assert.Empty(problems);
    }

    [Fact]
    public async Task Help_ends_with_the_verbs_examples()
    {
        var (exit, output) = await RunAsync("keys rotate-data --help");
        Assert.Equal(0, exit);
        var examples = output.IndexOf("Examples:", StringComparison.Ordinal);
        Assert.True(examples > output.IndexOf("Options:", StringComparison.Ordinal), output);
        Assert.Contains("    vauban keys rotate-data --tenant chu-nantes --resume", output[examples..], StringComparison.Ordinal);
        Assert.DoesNotContain("Examples:", (await RunAsync("keys --help")).Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(EveryVerb))]
    public async Task Every_verb_has_help(string arguments)
    {
        var (exit, output) = await RunAsync(arguments);
        Assert.Equal(0, exit);
        Assert.Contains("Usage:", output);
    }

    /// <summary>One line saying what is wrong and one pointing to the verb's help, on stderr: the whole help text was printed,
    /// the line that mattered scrolled out of sight above it.</summary>
    [Theory]
    [InlineData("frobnicate", "'frobnicate' is not a verb or option of 'vauban' (its verbs: serve, tenants,", "vauban")]
    [InlineData("", "'vauban' needs a verb: serve, tenants, clients,", "vauban")]
    [InlineData("users", "'vauban users' needs a verb: add, list, lock, unlock, revoke-sessions, enrol-link.", "vauban users")]
    [InlineData("tenants frobnicate --help", "'frobnicate' is not a verb or option of 'vauban tenants' (its verbs: add, list).", "vauban tenants")]
    [InlineData("breach frob --help", "Unrecognized command or argument 'frob'.", "vauban breach")]
    [InlineData("guard acknowledge --tenant t notanumber", "'notanumber' is not an alert id", "vauban guard acknowledge")]
    [InlineData("tenants add", "the argument <name> is missing.", "vauban tenants add")]
    [InlineData("users list", "Option '--tenant' is required.", "vauban users list")]
    [InlineData("seed --tenant t --patients many", "--patients: 'many' is not a whole number.", "vauban seed")]
    [InlineData("audit verify --no-such-option", "Unrecognized command or argument '--no-such-option'.", "vauban audit verify")]
    [InlineData("reindex --type Spaceship", "--type: 'Spaceship' is not a resource type Vauban stores", "vauban reindex")]
    [InlineData("audit verify --witness /nonexistent/witness.txt", "--witness: no file at /nonexistent/witness.txt.", "vauban audit verify")] // a missing file, as --jwks's and import's
    public Task A_usage_error_exits_2_with_one_line_saying_what_is_wrong_and_one_pointing_to_the_verbs_help(string arguments, string problem, string verb) =>
        CliRunner.UsageErrorAsync(arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries), problem, verb);

    [Theory]
    [InlineData("seed --tenant t --patients many", "--patients: 'many' is not a whole number.")]
    [InlineData("seed --tenant t --patients 99999999999", "--patients: 99999999999 is too large.")]
    [InlineData("seed --tenant t --patients 0", "--patients must be between 1 and 50,000,000.")]
    [InlineData("seed --tenant t --patients 100 --canaries -1", "--canaries must be between 0 and ")]
    [InlineData("serve --max-resource-kib 0", "--max-resource-kib must be between 1 and 65,536.")]
    [InlineData("serve --max-bundle-kib 2000000", "--max-bundle-kib must be between 1 and 1,048,576.")]
    [InlineData("serve --max-resource-kib 1k", "--max-resource-kib: '1k' is not a whole number.")]
    public async Task A_word_or_a_number_out_of_range_is_a_usage_error_in_the_operators_terms(string arguments, string expected)
    {
        var (exit, output) = await RunAsync(arguments);
        Assert.Equal(2, exit);
        Assert.Contains(expected, output, StringComparison.Ordinal);
        Assert.DoesNotContain("System.Int32", output, StringComparison.Ordinal);
    }

    // Arguments separated by '|', so that an empty one can be typed.
    [Theory]
    [InlineData("audit|verify|--witness|", "--witness: the path is empty; name the file.")]
    [InlineData("clients|add|--tenant|t|--name|x|--scopes|system/*.rs|--jwks|", "--jwks: the path is empty; name the file.")]
    [InlineData("clients|add|--tenant|t|--name|x|--scopes|system/*.rs|--jwks|/", "--jwks: / is a folder; name the file.")]
    [InlineData("serve|--guard-config|", "--guard-config: the path is empty; name the file.")]
    [InlineData("breach|--tenant|t|--principal|user:1|--out|", "--out: the path is empty; name the folder.")]
    [InlineData("seed|--tenant|t|--as-of|", "--as-of: '' is not a date (yyyy-MM-dd")]
    // Read as the 12th of May by the invariant culture; a French operator means the 5th of December.
    [InlineData("seed|--tenant|t|--as-of|05/12/2026", "--as-of: '05/12/2026' is not a date (yyyy-MM-dd")]
    public async Task An_empty_path_or_a_date_not_written_yyyy_MM_dd_is_a_usage_error_in_the_operators_terms(string arguments, string expected)
    {
        var (exit, output) = await RunAsync(arguments.Split('|'));
        Assert.True(exit == 2, output);
        Assert.Contains(expected, output, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_date_at_the_end_of_the_calendar_is_refused_or_taken_without_a_DateTime_failure()
    {
        var seeded = await RunAsync($"seed --tenant t --patients 1 --as-of 9999-12-31 {DbArgs}");
        Assert.Equal(2, seeded.Exit);
        Assert.Contains("--as-of must be between 1900-01-01 and 2999-12-31.", seeded.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory, "v.db")));
        // The end of that day in Paris (23:00 UTC), within what DateTimeOffset holds.
        Assert.Equal(new DateTimeOffset(9999, 12, 31, 23, 0, 0, TimeSpan.Zero), Vauban.Cli.BreachCommand.Instant("9999-12-31", endOfDay: true));
        var later = await RunAsync($"breach --tenant t --principal user:1 --out {Path.Combine(_directory, "out")} --detected-at 2999-01-01 {DbArgs}");
        Assert.True(later.Exit == 2, later.Output);
        Assert.Contains("--detected-at: '2999-01-01' is in the future", later.Output, StringComparison.Ordinal);
    }

    [Theory]
    // The officer reads the console in Paris time: a date is Paris's day, a time without a zone Paris's; with one, as written.
    [InlineData("2026-12-04", false, "2026-12-03T23:00:00Z")]
    [InlineData("2026-12-04", true, "2026-12-04T23:00:00Z")]
    [InlineData("2026-07-14", true, "2026-07-14T22:00:00Z")]
    [InlineData("2026-12-04T08:00:00", false, "2026-12-04T07:00:00Z")]
    [InlineData("2026-12-04T08:00:00Z", true, "2026-12-04T08:00:00Z")]
    [InlineData("2026-12-04T08:00:00+02:00", false, "2026-12-04T06:00:00Z")]
    public void A_breach_window_date_or_time_without_a_zone_is_Paris(string text, bool endOfDay, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), Vauban.Cli.BreachCommand.Instant(text, endOfDay));

    [Fact]
    public async Task A_value_beginning_with_dash_h_after_a_verb_is_taken_as_the_value_not_as_the_help()
    {
        // FHIR ids may begin with '-': a patient imported as "-hpat", whose access history the officer asks for.
        Assert.Equal(0, (await ImportIntoNewTenantAsync("chu-tirets", "tiret.json", $$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              { "resource": {{Samples.Patient(family: "Tiret", id: "-hpat")}}, "request": { "method": "PUT", "url": "Patient/-hpat" } } ] }
            """)).Exit);
        var history = await RunAsync($"audit patient -hpat --tenant chu-tirets {DbArgs}");
        Assert.True(history.Exit == 0, history.Output);
        Assert.Contains("Access history of Patient/-hpat in chu-tirets", history.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Usage:", history.Output, StringComparison.Ordinal);
        var added = await RunAsync($"tenants add -hx {DbArgs}");
        Assert.True(added.Exit == 0, added.Output);
        Assert.Contains("Created the establishment '-hx'", added.Output, StringComparison.Ordinal);
        // -h alone is still the help.
        var help = await RunAsync($"audit patient -h {DbArgs}");
        Assert.Equal(0, help.Exit);
        Assert.Contains("Usage:", help.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_db_or_master_key_file_is_a_usage_error_not_the_default_store_or_key()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu {DbArgs}")).Exit);
        var emptyDb = await RunAsync(["tenants", "list", "--db", "", "--master-key-file", Path.Combine(_directory, "master.key")]);
        Assert.True(emptyDb.Exit == 2, emptyDb.Output);
        Assert.Contains("--db is empty", emptyDb.Output, StringComparison.Ordinal);
        var emptyKey = await RunAsync(["tenants", "add", "autre", "--db", Path.Combine(_directory, "v.db"), "--master-key-file", ""]);
        Assert.True(emptyKey.Exit == 2, emptyKey.Output);
        Assert.Contains("--master-key-file is empty", emptyKey.Output, StringComparison.Ordinal);
        Assert.Equal("chu", (await RunAsync($"tenants list {DbArgs}")).Output.Trim().Split('\t')[1]);
    }

    [Fact]
    public async Task A_name_no_establishment_can_have_is_refused_before_a_store_or_key_is_made()
    {
        foreach (var (verb, typed, said) in new[] { ("tenants add", "tenants add nom!", "An establishment"), ("seed", "seed --patients 1 --tenant nom!", "--tenant: an establishment") })
        {
            await CliRunner.UsageErrorAsync($"{typed} {DbArgs}".Split(' '), $"{said} name is 1 to 100 letters, digits, '-', '_' or '.'.", "vauban " + verb);
            Assert.False(File.Exists(Path.Combine(_directory, "v.db")), verb);
            Assert.False(File.Exists(Path.Combine(_directory, "master.key")), verb);
        }
    }

    [Fact]
    public async Task Keys_rotate_master_with_an_empty_new_key_file_names_the_option()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu {DbArgs}")).Exit);
        await CliRunner.UsageErrorAsync(["keys", "rotate-master", "--new-key-file", "", .. DbArgs.Split(' ')],
            "--new-key-file is empty: name the file to write the new master key to.", "vauban keys rotate-master");
    }

    [Fact]
    public async Task Tenant_client_seed_and_import_work_together_and_the_secret_is_printed_once()
    {
        Assert.Equal(0, (await RunAsync($"tenants add clinique-test {DbArgs}")).Exit);
        var duplicate = await RunAsync($"tenants add clinique-test {DbArgs}");
        Assert.Equal(1, duplicate.Exit);
        Assert.Contains("already exists", duplicate.Output);

        var (exit, output) = await RunAsync($"clients add --tenant clinique-test --name integration --scopes system/*.rs {DbArgs}");
        Assert.Equal(0, exit);
        var secret = output.Split('\n').Single(l => l.StartsWith("client_secret:", StringComparison.Ordinal)).Split(':', 2)[1].Trim();
        Assert.StartsWith("vs_", secret);
        Assert.False(File.ReadAllBytes(Path.Combine(_directory, "v.db")).AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)) >= 0);

        var noKeys = await RunAsync($"clients add --tenant clinique-test --name x --scopes system/*.rs --jwks {Path.Combine(_directory, "nowhere.jwks.json")} {DbArgs}");
        Assert.True(noKeys.Exit == 2, noKeys.Output);
        Assert.Contains("--jwks: no file at", noKeys.Output, StringComparison.Ordinal);
        // A value that cannot be registered as given is a usage error (OperatorMistakeTests has the others).
        await CliRunner.UsageErrorAsync(["clients", "add", "--tenant", "clinique-test", "--name", "x", "--scopes", "system/Spaceship.rs", .. DbArgs.Split(' ')],
            "--scopes: 'system/Spaceship.rs': Spaceship is not a resource type", "vauban clients add");
        await CliRunner.UsageErrorAsync(["clients", "add", "--tenant", "clinique-test", "--name", "Labo\u200b\u001b[2J", "--scopes", "system/*.rs", .. DbArgs.Split(' ')],
            "--name: a client name may not hold control or invisible characters", "vauban clients add");
        await CliRunner.UsageErrorAsync(["clients", "add", "--tenant", "clinique-test", "--name", "x", "--scopes", "system/*.rs", "--patients", "not/an-id", .. DbArgs.Split(' ')],
            "--patients: a patient limit is a list of", "vauban clients add");

        var seeded = await RunAsync($"seed --tenant clinique-test --patients 50 {DbArgs}");
        Assert.True(seeded.Exit == 0, seeded.Output);
        Assert.Contains("patients/s", seeded.Output);
        var seededCanaries = await RunAsync($"guard canaries list --tenant clinique-test {DbArgs}");
        Assert.Equal(3, seededCanaries.Output.Split('\n').Count(l => l.StartsWith("Patient/", StringComparison.Ordinal)));

        var bundle = Path.Combine(_directory, "bundle.json");
        await File.WriteAllTextAsync(bundle, $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "urn:uuid:3f2d0d4e-6a43-4d0e-9b55-53b4b1a9a001", "resource": {{Samples.Patient(family: "Importé")}}, "request": { "method": "POST", "url": "Patient" } },
              { "resource": {{Samples.Observation("urn:uuid:3f2d0d4e-6a43-4d0e-9b55-53b4b1a9a001")}}, "request": { "method": "POST", "url": "Observation" } } ] }
            """);
        var imported = await RunAsync($"import {bundle} --tenant clinique-test {DbArgs}");
        Assert.True(imported.Exit == 0, imported.Output);

        var collection = Path.Combine(_directory, "collection.json");
        await File.WriteAllTextAsync(collection, $$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Collecté", id: "collected-1")}} } ] }""");
        Assert.Equal(0, (await RunAsync($"import {collection} --tenant clinique-test {DbArgs}")).Exit);

        // A client limited to patients: each must be one of the establishment's, or no client is registered.
        long clients;
        await using (var connection = await SqliteAsync()) clients = await ScalarAsync(connection, "SELECT count(*) FROM clients");
        var typo = await RunAsync($"clients add --tenant clinique-test --name lab-link --scopes system/Observation.rs --patients collected-1,colected-2 {DbArgs}");
        Assert.True(typo.Exit == 1, typo.Output);
        Assert.Contains("--patients: clinique-test has no patient 'colected-2'; no client was registered.", typo.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("'collected-1'", typo.Output, StringComparison.Ordinal);
        await using (var connection = await SqliteAsync()) Assert.Equal(clients, await ScalarAsync(connection, "SELECT count(*) FROM clients"));
        var limited = await RunAsync($"clients add --tenant clinique-test --name lab-link --scopes system/Observation.rs --patients collected-1 --own-resources-only {DbArgs}");
        Assert.True(limited.Exit == 0, limited.Output);
        Assert.Contains("limited to:    1 patient\n", limited.Output.Replace("\r", "", StringComparison.Ordinal), StringComparison.Ordinal);
        // The check is an audited search: the patient's history shows who asked.
        Assert.Contains("clients add --patients", (await RunAsync($"audit patient collected-1 --tenant clinique-test {DbArgs}")).Output, StringComparison.Ordinal);

        // The data is there, through the API, with the client registered above.
        var clientId = output.Split('\n').Single(l => l.StartsWith("client_id:", StringComparison.Ordinal)).Split(':', 2)[1].Trim();
        await ThroughApiAsync(clientId, secret, async http =>
        {
            using var count = await http.GetAsync("/fhir/Patient?_summary=count");
            // 50 seeded (3 of them canaries, which look like any patient), 1 imported in a transaction, 1 in a collection.
            Assert.Equal(52, (await count.BodyAsync()).GetProperty("total").GetInt32());
            using var importedPatient = await http.GetAsync("/fhir/Patient?family=importe&_revinclude=Observation:patient");
            Assert.Equal(2, (await importedPatient.BodyAsync()).GetProperty("entry").GetArrayLength());
            using var collected = await http.GetAsync("/fhir/Patient/collected-1");
            Assert.Equal(HttpStatusCode.OK, collected.StatusCode);
        });
    }

    /// <summary>Serves the store the commands wrote (this test's file and key) on a free port, and runs <paramref name="act"/>
    /// with a client that holds a client-credentials token of <paramref name="clientId"/>.</summary>
    private async Task ThroughApiAsync(string clientId, string secret, Func<HttpClient, Task> act)
    {
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var app = Web.VaubanHost.Build(store, new Web.ServerOptions("http://127.0.0.1:0"));
        await app.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
            using var tokenResponse = await http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret,
            }));
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await tokenResponse.BodyAsync()).GetProperty("access_token").GetString());
            await act(http);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_establishment_name_like_an_existing_one_is_refused_by_tenants_add_and_by_seed_and_a_near_miss_is_named()
    {
        string[] db = DbArgs.Split(' ');
        Assert.Equal(0, (await RunAsync($"tenants add hop1 {DbArgs}")).Exit);
        foreach (var alike in new[] { "HOP1", "Hop1", "ｈｏｐ１", "ℌop1" })
        {
            var added = await RunAsync(["tenants", "add", alike, .. db]);
            Assert.True(added.Exit == 1, alike + " → " + added.Output);
            Assert.Contains("too like the establishment 'hop1'", added.Output, StringComparison.Ordinal);
            // seed creates the establishment it is given when there is none of that name: not one that reads like another.
            var seeded = await RunAsync(["seed", "--tenant", alike, "--patients", "1", .. db]);
            Assert.True(seeded.Exit == 1, alike + " → " + seeded.Output);
            Assert.Contains("too like the establishment 'hop1'", seeded.Output, StringComparison.Ordinal);
        }
        // A name no establishment can have is a usage error, the store not asked; one a store made earlier may hold ("...",
        // full-width letters) is refused by the store, after it is compared with those there.
        foreach (var (bad, why) in new[] { ("...", "only punctuation"), ("hop\u200B2", "invisible"), ("hop\u202E2", "invisible"), ("ｃｌｉｎｉｑｕｅ", "write it as 'clinique'") })
        {
            var exit = Vauban.Access.Tenants.IsValidName(bad) ? 1 : 2;
            var added = await RunAsync(["tenants", "add", bad, .. db]);
            Assert.True(added.Exit == exit, added.Output);
            Assert.Contains(why, added.Output, StringComparison.Ordinal);
            Assert.Equal(exit, (await RunAsync(["seed", "--tenant", bad, "--patients", "1", .. db])).Exit);
        }
        Assert.Equal("hop1", (await RunAsync($"tenants list {DbArgs}")).Output.Trim().Split('\t')[1]);

        // Every verb looks an establishment up by its exact name, and names the one a near miss reads like.
        foreach (var verb in new[] { "users list --tenant HOP1", "clients add --tenant HOP1 --name x --scopes system/*.rs", "guard alerts --tenant HOP1" })
        {
            var (exit, output) = await RunAsync($"{verb} {DbArgs}");
            Assert.True(exit == 1, verb + " → " + output);
            Assert.Contains("No establishment 'HOP1' — did you mean 'hop1'?", output, StringComparison.Ordinal);
        }

        // seed says when it creates the establishment, so that a typo shows; not when it exists.
        var created = await RunAsync($"seed --tenant clinique-2 --patients 1 --canaries 0 {DbArgs}");
        Assert.True(created.Exit == 0, created.Output);
        Assert.Contains("Created the establishment 'clinique-2'", created.Output, StringComparison.Ordinal);
        Assert.Contains("Seeded 1 patient (", created.Output, StringComparison.Ordinal);
        var existing = await RunAsync($"seed --tenant hop1 --patients 1 --canaries 0 {DbArgs}");
        Assert.True(existing.Exit == 0, existing.Output);
        Assert.DoesNotContain("Created the establishment", existing.Output, StringComparison.Ordinal);

        // A store made before such names were refused may hold two that read alike: both are still found, exactly.
        await using (var connection = await SqliteAsync()) await ExecuteAsync(connection, "UPDATE tenants SET name = 'HOP1' WHERE name = 'clinique-2'");
        Assert.Equal(0, (await RunAsync($"users list --tenant HOP1 {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"users list --tenant hop1 {DbArgs}")).Exit);
        Assert.Contains("did you mean 'HOP1' or 'hop1'?", (await RunAsync($"users list --tenant Hop1 {DbArgs}")).Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(25)] // with canaries: the second run stopped half-way on the database's error, the store already changed
    [InlineData(5)] // without: it said "Seeded 5 patients" and had rewritten them as second versions
    public async Task Seeding_the_same_seed_twice_into_an_establishment_is_refused_before_anything_changes_and_another_seed_adds_patients(int patients)
    {
        var first = await RunAsync($"seed --tenant chu-seed --patients {patients} --seed 7 --as-of 2026-01-15 {DbArgs}");
        Assert.True(first.Exit == 0, first.Output);
        Assert.Contains($"Seeded {patients} patients", first.Output, StringComparison.Ordinal);
        const string Versions = "SELECT count(*) * 1000000 + max(version) FROM resources";
        long before;
        await using (var connection = await SqliteAsync()) before = await ScalarAsync(connection, Versions);

        var again = await RunAsync($"seed --tenant chu-seed --patients {patients} --seed 7 --as-of 2026-01-15 {DbArgs}");
        Assert.True(again.Exit == 1, again.Output);
        Assert.StartsWith("error: chu-seed already holds the synthetic records of --seed 7 as of 2026-01-15", again.Output, StringComparison.Ordinal);
        Assert.Contains("choose another --seed", again.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Seeded", again.Output, StringComparison.Ordinal);
        await using (var connection = await SqliteAsync()) Assert.Equal(before, await ScalarAsync(connection, Versions));

        // Another seed gives other ids: its patients are added beside the first ones, each a first version.
        var other = await RunAsync($"seed --tenant chu-seed --patients {patients} --seed 8 --as-of 2026-01-15 {DbArgs}");
        Assert.True(other.Exit == 0, other.Output);
        Assert.Contains($"Seeded {patients} patients", other.Output, StringComparison.Ordinal);
        await using (var connection = await SqliteAsync())
        {
            Assert.Equal(2 * patients, await ScalarAsync(connection, $"SELECT count(*) FROM resources WHERE type = {Vauban.Records.TypeCodes.Of("Patient")}"));
            Assert.Equal(1, await ScalarAsync(connection, "SELECT max(version) FROM resources"));
        }
        Assert.True((await RunAsync($"audit verify {DbArgs}")).Exit == 0);
    }

    [Fact]
    public async Task The_security_officer_adds_and_lists_canaries_and_gets_one_line_errors_for_bad_guard_input()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-guard {DbArgs}")).Exit);
        var added = await RunAsync($"guard canaries add --tenant chu-guard --count 2 {DbArgs}");
        Assert.True(added.Exit == 0, added.Output);
        var ids = added.Output.Split('\n').Where(l => l.StartsWith("Patient/", StringComparison.Ordinal)).Select(l => l.Trim()).ToList();
        Assert.Equal(2, ids.Count);
        var listed = await RunAsync($"guard canaries list --tenant chu-guard {DbArgs}");
        Assert.Equal(0, listed.Exit);
        Assert.All(ids, id => Assert.Contains(id, listed.Output, StringComparison.Ordinal));
        Assert.Equal(0, (await RunAsync($"guard alerts --tenant chu-guard {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"guard contained --tenant chu-guard {DbArgs}")).Exit);

        // A principal no one can be is a usage error (OperatorMistakeTests); one the establishment does not hold, a refusal.
        foreach (var bad in new[]
        {
            $"guard release --tenant chu-guard user:nobody {DbArgs}",
            $"guard release --tenant no-such-tenant user:nobody {DbArgs}",
        })
        {
            var (exit, output) = await RunAsync(bad);
            Assert.True(exit == 1, bad + " → " + output);
            Assert.StartsWith("error: ", output);
            Assert.Single(output.Trim().Split('\n'));
        }
        // A number out of its range is a usage error, as a word is (exit 2), said with the range.
        foreach (var (bad, expected) in new[]
        {
            ($"guard canaries add --tenant chu-guard --count 0 {DbArgs}", "--count must be between 1 and "),
            ($"guard canaries add --tenant chu-guard --count 1000 {DbArgs}", "--count must be between 1 and "),
            ($"guard alerts --tenant chu-guard --limit 0 {DbArgs}", "--limit must be between 1 and 10,000."),
        })
        {
            var (exit, output) = await RunAsync(bad);
            Assert.True(exit == 2, bad + " → " + output);
            Assert.Contains(expected, output, StringComparison.Ordinal);
        }
        // Nothing was added by the refused commands.
        Assert.Equal(2, (await RunAsync($"guard canaries list --tenant chu-guard {DbArgs}")).Output.Split('\n').Count(l => l.StartsWith("Patient/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task The_operator_lists_and_revokes_an_api_client_which_then_gets_no_token()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-clients {DbArgs}")).Exit);
        var added = await RunAsync($"clients add --tenant chu-clients --name Labo-Sud --scopes system/Observation.rs {DbArgs}");
        Assert.True(added.Exit == 0, added.Output);
        var clientId = added.Output.Split('\n').Single(l => l.StartsWith("client_id:", StringComparison.Ordinal))["client_id:".Length..].Trim();
        var secret = added.Output.Split('\n').Single(l => l.StartsWith("client_secret:", StringComparison.Ordinal))["client_secret:".Length..].Trim();

        var listed = await RunAsync($"clients list --tenant chu-clients {DbArgs}");
        Assert.Equal(0, listed.Exit);
        var line = Assert.Single(listed.Output.Split('\n'), l => l.StartsWith(clientId, StringComparison.Ordinal));
        Assert.Contains("Labo-Sud", line, StringComparison.Ordinal);
        Assert.EndsWith("active", line.Trim(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, listed.Output, StringComparison.Ordinal);

        var revoked = await RunAsync($"clients revoke --tenant chu-clients {clientId} {DbArgs}");
        Assert.True(revoked.Exit == 0, revoked.Output);
        Assert.EndsWith("revoked", (await RunAsync($"clients list --tenant chu-clients {DbArgs}")).Output.Split('\n').Single(l => l.StartsWith(clientId, StringComparison.Ordinal)).Trim(),
            StringComparison.Ordinal);
        foreach (var bad in new[] { $"clients revoke --tenant chu-clients {clientId} {DbArgs}", $"clients revoke --tenant chu-clients vc_nosuchclient {DbArgs}" })
        {
            var (exit, output) = await RunAsync(bad);
            Assert.True(exit == 1, bad + " → " + output);
            Assert.StartsWith("error: ", output, StringComparison.Ordinal);
        }

        // Its purpose of use changes, audited; an unknown code is a usage error (2) and an unknown client an error (1).
        var purposeChanged = await RunAsync($"clients set-purpose --tenant chu-clients {clientId} --purpose HPAYMT {DbArgs}");
        Assert.True(purposeChanged.Exit == 1, purposeChanged.Output); // revoked just before: no active client of that id
        Assert.Equal(2, (await RunAsync($"clients set-purpose --tenant chu-clients {clientId} --purpose NOPE {DbArgs}")).Exit);
        var other = await RunAsync($"clients add --tenant chu-clients --name Facturation --scopes system/Patient.rs {DbArgs}");
        var otherId = other.Output.Split('\n').Single(l => l.StartsWith("client_id:", StringComparison.Ordinal))["client_id:".Length..].Trim();
        var set = await RunAsync($"clients set-purpose --tenant chu-clients {otherId} --purpose HPAYMT {DbArgs}");
        Assert.True(set.Exit == 0, set.Output);
        Assert.Contains("now recorded for HPAYMT (healthcare payment), no longer TREAT", set.Output, StringComparison.Ordinal);
        Assert.Contains("\tHPAYMT\t", (await RunAsync($"clients list --tenant chu-clients {DbArgs}")).Output.Split('\n').Single(l => l.StartsWith(otherId, StringComparison.Ordinal)),
            StringComparison.Ordinal);

        // The revoked client gets no token.
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)),
            CancellationToken.None);
        var (issued, error) = await store.Clients.IssueAsync(new Vauban.Access.TokenRequest("client_credentials", null, clientId, secret, null, null), "http://localhost/oauth/token",
            null, null, CancellationToken.None);
        Assert.Null(issued);
        Assert.Equal("invalid_client", error!.Error);
    }

    [Fact]
    public async Task A_client_registered_for_billing_has_its_reads_in_the_access_history_as_healthcare_payment_and_an_unknown_purpose_registers_nothing()
    {
        Assert.Equal(0, (await ImportIntoNewTenantAsync("chu-billing", "billed.json",
            $$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Facturé", id: "billed-1")}} } ] }""")).Exit);

        // A purpose that is no client's (marketing; ETREAT, a person's under break-the-glass; a lower-case code) is a usage error,
        // naming the accepted codes, and no client is registered.
        foreach (var wrong in new[] { "HMARKT", "ETREAT", "hpaymt" })
        {
            var refused = await RunAsync($"clients add --tenant chu-billing --name billing --scopes system/Patient.rs --purpose {wrong} {DbArgs}");
            Assert.True(refused.Exit == 2, refused.Output);
            Assert.Contains($"--purpose: '{wrong}' is not a purpose of use a client can be registered for", refused.Output, StringComparison.Ordinal);
            Assert.Contains("TREAT (treatment), HPAYMT (healthcare payment), HOPERAT (healthcare operations), HRESCH (healthcare research), "
                + "PUBHLTH (public health), HQUALIMP (health quality improvement)", refused.Output, StringComparison.Ordinal);
        }
        await using (var connection = await SqliteAsync()) Assert.Equal(0, await ScalarAsync(connection, "SELECT count(*) FROM clients"));

        var billing = await RunAsync($"clients add --tenant chu-billing --name billing --scopes system/Patient.rs --purpose HPAYMT {DbArgs}");
        Assert.True(billing.Exit == 0, billing.Output);
        Assert.Contains("purpose:       HPAYMT (healthcare payment)", billing.Output, StringComparison.Ordinal);
        var care = await RunAsync($"clients add --tenant chu-billing --name ward-monitor --scopes system/Patient.rs {DbArgs}");
        Assert.True(care.Exit == 0, care.Output);
        Assert.Contains("purpose:       TREAT (treatment)", care.Output, StringComparison.Ordinal);
        static string Field(string output, string name) => output.Split('\n').Single(l => l.StartsWith(name + ":", StringComparison.Ordinal)).Split(':', 2)[1].Trim();
        var (billingId, billingSecret) = (Field(billing.Output, "client_id"), Field(billing.Output, "client_secret"));

        var listed = (await RunAsync($"clients list --tenant chu-billing {DbArgs}")).Output.Split('\n');
        Assert.Equal("purpose", listed.First(l => l.StartsWith("client_id", StringComparison.Ordinal)).Split('\t')[3]);
        Assert.Equal("HPAYMT", listed.Single(l => l.StartsWith(billingId, StringComparison.Ordinal)).Split('\t')[3]);
        Assert.Equal("TREAT", listed.Single(l => l.StartsWith(Field(care.Output, "client_id"), StringComparison.Ordinal)).Split('\t')[3]);

        // The billing system reads the patient through the API...
        await ThroughApiAsync(billingId, billingSecret, async http =>
        {
            using var read = await http.GetAsync("/fhir/Patient/billed-1");
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        });

        // ...and the patient's access history says why: for healthcare payment, not treatment.
        var history = await RunAsync($"audit patient billed-1 --tenant chu-billing {DbArgs}");
        Assert.True(history.Exit == 0, history.Output);
        var readLine = Assert.Single(history.Output.Split('\n'), l => l.Contains("\tbilling\t", StringComparison.Ordinal) && l.Contains("\tread\t", StringComparison.Ordinal));
        Assert.Equal("healthcare payment (HPAYMT)", readLine.Split('\t')[6]);
    }

    [Fact]
    public async Task The_security_officer_acknowledges_reviewed_alerts_at_the_command_line()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-alerts {DbArgs}")).Exit);
        var ids = new List<long>();
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)),
            CancellationToken.None))
        {
            var tenant = (await store.Tenants.FindAsync("chu-alerts", CancellationToken.None))!;
            for (var i = 0; i < 3; i++) ids.Add(await store.Alerts.RaiseAsync(tenant.Id, Vauban.Access.KnownAlertKinds.GuardSignal, "client-" + i, "unusual hour " + i, CancellationToken.None));
        }
        var acknowledged = await RunAsync($"guard ack --tenant chu-alerts {ids[0]} {ids[1]} {DbArgs}");
        Assert.True(acknowledged.Exit == 0, acknowledged.Output);
        Assert.Contains("Acknowledged 2 alerts", acknowledged.Output, StringComparison.Ordinal);
        var open = await RunAsync($"guard alerts --tenant chu-alerts {DbArgs}");
        Assert.Equal([ids[2].ToString(System.Globalization.CultureInfo.InvariantCulture)], AlertIds(open.Output));
        var all = await RunAsync($"guard alerts --tenant chu-alerts --all {DbArgs}");
        Assert.Equal(3, AlertIds(all.Output).Count);
        Assert.Contains("acknowledged (UTC)", all.Output, StringComparison.Ordinal);
        Assert.Contains("client-0", all.Output, StringComparison.Ordinal); // the principal, read back from its sealed copy

        foreach (var bad in new[]
        {
            $"guard ack --tenant chu-alerts {ids[0]} {DbArgs}", // already acknowledged
            $"guard ack --tenant chu-alerts 999999 {DbArgs}",
            $"guard ack --tenant no-such-tenant {ids[2]} {DbArgs}",
        })
        {
            var (exit, output) = await RunAsync(bad);
            Assert.True(exit == 1, bad + " → " + output);
            Assert.Contains("error: ", output, StringComparison.Ordinal);
        }
        foreach (var unparsed in new[] { $"guard ack --tenant chu-alerts not-a-number {DbArgs}", $"guard ack --tenant chu-alerts {DbArgs}" })
        {
            Assert.Equal(2, (await RunAsync(unparsed)).Exit); // a usage error
        }
        Assert.Single(AlertIds((await RunAsync($"guard alerts --tenant chu-alerts {DbArgs}")).Output)); // the refused commands changed nothing

        static List<string> AlertIds(string output) => output.Split('\n').Skip(1).Where(l => l.Contains('\t', StringComparison.Ordinal)).Select(l => l.Split('\t')[0]).ToList();
    }

    [Fact]
    public async Task The_operator_rotates_an_establishments_data_key_and_its_records_are_resealed()
    {
        Assert.Equal(0, (await RunAsync($"seed --tenant chu-datakey --patients 3 --canaries 0 {DbArgs}")).Exit);
        var (exit, output) = await RunAsync($"keys rotate-data --tenant chu-datakey --no-wait {DbArgs}");
        Assert.True(exit == 0, output);
        Assert.Contains("Made data key version 2 for chu-datakey", output, StringComparison.Ordinal);
        var resealed = System.Text.RegularExpressions.Regex.Match(output, @"Re-sealed ([\d,]+) rows of chu-datakey under data key version 2");
        Assert.True(resealed.Success, output);
        Assert.True(int.Parse(resealed.Groups[1].Value, System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture) > 3, output);
        (exit, output) = await RunAsync($"keys rotate-data --tenant chu-datakey --resume {DbArgs}");
        Assert.True(exit == 0, output);
        Assert.Contains("Re-sealed 0 rows of chu-datakey under data key version 2", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Made data key", output, StringComparison.Ordinal);
        // The audit log, never re-sealed, still verifies (its entries open with version 1).
        Assert.Equal(0, (await RunAsync($"audit verify --tenant chu-datakey {DbArgs}")).Exit);
        (exit, output) = await RunAsync($"keys rotate-data --tenant chu-nowhere --no-wait {DbArgs}");
        Assert.Equal(1, exit);
        Assert.StartsWith("error: No establishment 'chu-nowhere'", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_operator_lists_approves_and_denies_exports_awaiting_approval()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-export {DbArgs}")).Exit);
        var jobs = new List<string>();
        // Two exports above a zero threshold, asked for by an API client through the records service.
        var options = new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null))
        {
            Guard = new Vauban.Guard.GuardOptions { Export = new Vauban.Guard.ExportLimits { ApprovalAboveResources = 0 } },
        };
        await using (var store = await VaubanStore.OpenAsync(options, CancellationToken.None))
        {
            var tenant = (await store.Tenants.FindAsync("chu-export", CancellationToken.None))!;
            using (var practitioner = System.Text.Json.JsonDocument.Parse(Samples.Practitioner()))
            {
                await store.Records.CreateAsync(Vauban.Access.AccessContext.Operator(tenant, "test"), "Practitioner", practitioner.RootElement, null, CancellationToken.None);
            }
            var client = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.ApiClient, "registry-link", "registry link",
                Vauban.Access.StaffUser.PersonScopes), tenant, "TREAT") { StatedReason = "Quarterly directory sync" };
            for (var i = 0; i < 2; i++)
            {
                var started = await store.Records.ExportAsync(client, Vauban.Records.ExportLevel.System, ["Practitioner"], null, "http://localhost/fhir/$export", CancellationToken.None);
                Assert.Equal(Vauban.Records.ExportStatus.AwaitingApproval, started.Job!.Status);
                jobs.Add(started.Job.Id);
            }
        }
        var listed = await RunAsync($"guard exports --tenant chu-export {DbArgs}");
        Assert.Equal(0, listed.Exit);
        Assert.All(jobs, id => Assert.Contains(id, listed.Output, StringComparison.Ordinal));
        Assert.Contains("Quarterly directory sync", listed.Output, StringComparison.Ordinal);
        // With the audit chain unwritable, the approval fails and the export still awaits it.
        await using (var connection = await SqliteAsync()) await ExecuteAsync(connection, "ALTER TABLE audit_entries RENAME TO audit_entries_away");
        try
        {
            var refused = await RunAsync($"guard approve-export --tenant chu-export {jobs[0]} {DbArgs}");
            Assert.True(refused.Exit == 1, refused.Output);
        }
        finally
        {
            await using var connection = await SqliteAsync();
            await ExecuteAsync(connection, "ALTER TABLE audit_entries_away RENAME TO audit_entries");
        }
        Assert.Contains(jobs[0], (await RunAsync($"guard exports --tenant chu-export {DbArgs}")).Output, StringComparison.Ordinal);
        Assert.DoesNotContain("export-approved", (await RunAsync($"guard alerts --tenant chu-export {DbArgs}")).Output, StringComparison.Ordinal);
        var approved = await RunAsync($"guard approve-export --tenant chu-export {jobs[0]} {DbArgs}");
        Assert.True(approved.Exit == 0, approved.Output);
        var denied = await RunAsync($"guard deny-export --tenant chu-export {jobs[1]} {DbArgs}");
        Assert.True(denied.Exit == 0, denied.Output);
        foreach (var bad in new[]
        {
            $"guard approve-export --tenant chu-export {jobs[0]} {DbArgs}",
            $"guard deny-export --tenant no-such-tenant {jobs[1]} {DbArgs}",
        })
        {
            var (exit, output) = await RunAsync(bad);
            Assert.True(exit == 1, bad + " → " + output);
            Assert.StartsWith("error: ", output);
        }
        // An id that cannot be one is a usage error (exit 2), as a number out of its range is; it was exit 1, as a refusal.
        var malformed = await RunAsync($"guard approve-export --tenant chu-export not-a-job {DbArgs}");
        Assert.True(malformed.Exit == 2, malformed.Output);
        Assert.StartsWith("error: 'not-a-job' is not an export job id: one is 22 letters, digits, '-' or '_', as 'vauban guard exports' lists them.", malformed.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(jobs[0], (await RunAsync($"guard exports --tenant chu-export {DbArgs}")).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_security_officer_adds_lists_locks_unlocks_and_revokes_staff_accounts()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-cli {DbArgs}")).Exit);
        // The practitioner and the service an account names must be the establishment's: a typo is refused, no account made.
        foreach (var (typo, said) in new[] { ("--practitioner pract-1 --service org-1", "--practitioner: chu-cli has no Practitioner 'pract-1'"), ("--service org-1", "--service: chu-cli has no Organization 'org-1'") })
        {
            var refused = await RunAsync($"users add --tenant chu-cli --email claire.martin@chu.example --role physician {typo} {DbArgs}");
            Assert.True(refused.Exit == 1, refused.Output);
            Assert.Contains(said + "; no account was created.", refused.Output, StringComparison.Ordinal);
        }
        Assert.DoesNotContain("claire.martin", (await RunAsync($"users list --tenant chu-cli {DbArgs}")).Output, StringComparison.Ordinal);
        var directory = Path.Combine(_directory, "directory.json");
        await File.WriteAllTextAsync(directory, """
            { "resourceType": "Bundle", "type": "collection", "entry": [
              { "resource": { "resourceType": "Practitioner", "id": "pract-1", "name": [{ "family": "Martin", "given": ["Claire"] }] } },
              { "resource": { "resourceType": "Organization", "id": "org-1", "name": "Cardiologie" } } ] }
            """);
        Assert.Equal(0, (await RunAsync($"import {directory} --tenant chu-cli {DbArgs}")).Exit);
        var (exit, output) = await RunAsync($"users add --tenant chu-cli --email claire.martin@chu.example --role physician --practitioner pract-1 --service org-1 --name Dr_Martin --url https://vauban.chu.example {DbArgs}");
        Assert.True(exit == 0, output);
        var link = output.Split('\n').Single(l => l.StartsWith("https://vauban.chu.example/account/enrol?token=", StringComparison.Ordinal)).Trim();
        var token = Uri.UnescapeDataString(link[(link.IndexOf("token=", StringComparison.Ordinal) + 6)..]);
        Assert.False(File.ReadAllBytes(Path.Combine(_directory, "v.db")).AsSpan().IndexOf(Encoding.UTF8.GetBytes(token)) >= 0);
        Assert.False(File.ReadAllBytes(Path.Combine(_directory, "v.db")).AsSpan().IndexOf(Encoding.UTF8.GetBytes("claire.martin@chu.example")) >= 0);

        var duplicate = await RunAsync($"users add --tenant chu-cli --email CLAIRE.MARTIN@chu.example --role nurse {DbArgs}");
        Assert.Equal(1, duplicate.Exit);
        Assert.StartsWith("error: ", duplicate.Output);
        // A role that is none is a usage error (exit 2), as an unknown --purpose is; it was exit 1, as a refusal.
        var badRole = await RunAsync($"users add --tenant chu-cli --email x@chu.example --role surgeon-general {DbArgs}");
        Assert.Equal(2, badRole.Exit);
        Assert.StartsWith("error: --role: 'surgeon-general' is not a role (one of: Physician, Nurse, Secretary, Biologist, Billing, SecurityOfficer, Administrator).", badRole.Output, StringComparison.Ordinal);
        Assert.Equal(2, (await RunAsync($"users add --tenant chu-cli --email x@chu.example --role 2 {DbArgs}")).Exit); // a number Enum.TryParse takes
        // An address or a name no account can take is a usage error, told before the store is opened.
        await CliRunner.UsageErrorAsync($"users add --tenant chu-cli --email not-an-address --role nurse {DbArgs}".Split(' '), "--email: not an e-mail address", "vauban users add");
        var escaped = await CliRunner.UsageErrorAsync(["users", "add", "--tenant", "chu-cli", "--email", "x\u001b[2J@chu.example", "--role", "nurse", .. DbArgs.Split(' ')],
            "--email: not an e-mail address (one '@', no spaces, no control or invisible characters).", "vauban users add");
        Assert.DoesNotContain("\u001b", escaped, StringComparison.Ordinal);
        Assert.Equal(1, (await RunAsync($"users add --tenant nowhere --email a@b.fr --role nurse {DbArgs}")).Exit);
        // The enrolment link is opened by a person: a javascript: base URL is a usage error, and no account is made.
        var script = await RunAsync($"users add --tenant chu-cli --email y@chu.example --role nurse --url javascript:alert(1) {DbArgs}");
        Assert.True(script.Exit == 2, script.Output);
        Assert.Contains("is not the server's http(s) base URL", script.Output, StringComparison.Ordinal);

        // A name with an escape sequence, a line break or a direction override rewrote the operator's terminal and forged lines of
        // the lists that print it (and of access histories): refused in one line, no account made.
        foreach (var forged in new[] { "Bob\u001b[2J\u001b[31mRED", "Line1\nerror: forged line", "Evil\u202eName", "Zero\u200bWidth" })
        {
            await CliRunner.UsageErrorAsync(["users", "add", "--tenant", "chu-cli", "--email", "forged@chu.example", "--role", "nurse", "--name", forged, .. DbArgs.Split(' ')],
                "--name: a display name may not hold control or invisible characters (escape sequences, line breaks, zero-width, direction overrides): type it plainly.", "vauban users add");
        }

        var list = await RunAsync($"users list --tenant chu-cli {DbArgs}");
        Assert.Equal(0, list.Exit);
        Assert.DoesNotContain("forged@chu.example", list.Output, StringComparison.Ordinal);
        Assert.Contains("claire.martin@chu.example\tDr_Martin\tPhysician\tpract-1\torg-1\tno\tno\t0", list.Output);
        // With the principal the audit log, `breach --principal` and `guard release` name the account by.
        Assert.Matches(@"claire\.martin@chu\.example\t[^\n]*\t0\tuser:[A-Za-z0-9_-]+\r?\n", list.Output);
        Assert.DoesNotContain("y@chu.example", list.Output, StringComparison.Ordinal);

        Assert.Equal(0, (await RunAsync($"users lock --tenant chu-cli --email claire.martin@chu.example {DbArgs}")).Exit);
        Assert.Contains("\tyes\t0", (await RunAsync($"users list --tenant chu-cli {DbArgs}")).Output);
        Assert.Equal(0, (await RunAsync($"users unlock --tenant chu-cli --email claire.martin@chu.example {DbArgs}")).Exit);
        var revoked = await RunAsync($"users revoke-sessions --tenant chu-cli --email claire.martin@chu.example {DbArgs}");
        Assert.Equal(0, revoked.Exit);
        Assert.Contains("0 sessions ended", revoked.Output, StringComparison.Ordinal);
        var unknown = await RunAsync($"users lock --tenant chu-cli --email nobody@chu.example {DbArgs}");
        Assert.Equal(1, unknown.Exit);
        Assert.StartsWith("error: No account", unknown.Output);

        var relink = await RunAsync($"users enrol-link --tenant chu-cli --email claire.martin@chu.example {DbArgs}");
        Assert.Equal(0, relink.Exit);
        Assert.Contains("http://localhost:8080/account/enrol?token=", relink.Output);
        // On a server in service the new link names that server, as `users add --url` does.
        var served = await RunAsync($"users enrol-link --tenant chu-cli --email claire.martin@chu.example --url https://vauban.chu.example/ {DbArgs}");
        Assert.True(served.Exit == 0, served.Output);
        Assert.Contains("\nhttps://vauban.chu.example/account/enrol?token=", served.Output);
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        Assert.Null(await store.Accounts.PeekEnrolmentAsync(token, CancellationToken.None)); // the first link stopped working
    }

    [Fact]
    public async Task With_the_audit_chain_unwritable_users_clients_tenants_add_and_guard_release_fail_and_leave_nothing()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-admin {DbArgs}")).Exit);
        var enrol = await RunAsync($"users add --tenant chu-admin --email claire@chu.example --role physician {DbArgs}");
        Assert.Equal(0, enrol.Exit);
        var firstLink = enrol.Output.Split("token=")[1].Split(new[] { ' ', '\n', '\r' }, StringSplitOptions.RemoveEmptyEntries)[0];
        // A client the guard suspended (it read a canary): its containment, and the alert, are on the chain, as the guard writes them.
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None))
        {
            var owner = (await store.Tenants.FindAsync("chu-admin", CancellationToken.None))!;
            var canary = (await store.Guard.AddCanariesAsync(store.Records, owner, 1, CancellationToken.None))[0];
            var client = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.ApiClient, "vc_contained", "reader", Vauban.Access.StaffUser.PersonScopes),
                owner, Vauban.Access.KnownPurposes.Treatment);
            Assert.Equal(Vauban.Guard.GuardVerdict.Suspended, (await store.Guard.AdmitAsync(client,
                new Vauban.Guard.GuardRequest(Vauban.Access.Interaction.Read, "Patient", 1, [canary], [canary]), CancellationToken.None)).Verdict);
        }
        long tenantId;
        await using (var connection = await SqliteAsync())
        {
            tenantId = await ScalarAsync(connection, "SELECT id FROM tenants WHERE name = 'chu-admin'");
            await ExecuteAsync(connection, "ALTER TABLE audit_entries RENAME TO audit_entries_away");
        }
        try
        {
            foreach (var act in new[]
            {
                $"users add --tenant chu-admin --email nurse@chu.example --role nurse {DbArgs}",
                $"clients add --tenant chu-admin --name lab --scopes system/Observation.rs {DbArgs}",
                $"tenants add clinique-jamais {DbArgs}",
                $"guard release --tenant chu-admin vc_contained {DbArgs}",
                $"users lock --tenant chu-admin --email claire@chu.example {DbArgs}",
                $"users revoke-sessions --tenant chu-admin --email claire@chu.example {DbArgs}",
                $"users unlock --tenant chu-admin --email claire@chu.example {DbArgs}",
                $"users enrol-link --tenant chu-admin --email claire@chu.example {DbArgs}",
                $"keys rotate-master --new-key-file {Path.Combine(_directory, "never.key")} {DbArgs}",
            })
            {
                var (exit, output) = await RunAsync(act);
                Assert.True(exit == 1, act + " → " + output);
                Assert.StartsWith("error: The audit log could not be written", output, StringComparison.Ordinal);
            }
        }
        finally
        {
            await using var connection = await SqliteAsync();
            await ExecuteAsync(connection, "ALTER TABLE audit_entries_away RENAME TO audit_entries");
        }
        Assert.DoesNotContain("nurse@chu.example", (await RunAsync($"users list --tenant chu-admin {DbArgs}")).Output, StringComparison.Ordinal);
        Assert.DoesNotContain("clinique-jamais", (await RunAsync($"tenants list {DbArgs}")).Output, StringComparison.Ordinal);
        Assert.Contains("vc_contained", (await RunAsync($"guard contained --tenant chu-admin {DbArgs}")).Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory, "never.key"))); // the store kept its key (it opens with it, below)
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None))
        {
            Assert.NotNull(await store.Accounts.PeekEnrolmentAsync(firstLink, CancellationToken.None)); // the refused enrol-link replaced nothing
        }
        await using (var connection = await SqliteAsync())
        {
            Assert.Equal(0, await ScalarAsync(connection, "SELECT count(*) FROM clients"));
            Assert.Equal(0, await ScalarAsync(connection, "SELECT count(*) FROM staff_users WHERE lockout_end IS NOT NULL"));
            // No success entry of a failed act: the chain holds only the establishment's creation and Claire's account, and the two
            // reads above (users list, guard contained), administrative acts of their own.
            Assert.Equal(4, await ScalarAsync(connection, $"SELECT count(*) FROM audit_entries WHERE tenant_id = {tenantId} AND action = 15"));
        }

        // Once the chain can be written again, each act is done with its one entry.
        Assert.Equal(0, (await RunAsync($"users add --tenant chu-admin --email nurse@chu.example --role nurse {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"clients add --tenant chu-admin --name lab --scopes system/Observation.rs {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"tenants add clinique-jamais {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"guard release --tenant chu-admin vc_contained {DbArgs}")).Exit);
        await using (var connection = await SqliteAsync())
        {
            Assert.Equal(7, await ScalarAsync(connection, $"SELECT count(*) FROM audit_entries WHERE tenant_id = {tenantId} AND action = 15")); // 4 + users add, clients add, release
            Assert.Equal(1, await ScalarAsync(connection, "SELECT count(*) FROM audit_entries e JOIN tenants t ON t.id = e.tenant_id WHERE t.name = 'clinique-jamais' AND e.seq = 1 AND e.action = 15"));
        }
        var verified = await RunAsync($"audit verify {DbArgs}");
        Assert.True(verified.Exit == 0, verified.Output);
    }

    [Fact]
    public async Task Reindex_restores_index_rows_an_older_Vauban_did_not_write_warns_until_then_and_refuses_a_typo_untouched()
    {
        Assert.Equal(0, (await RunAsync($"seed --tenant chu-reindex --patients 20 --canaries 0 {DbArgs}")).Exit);
        long dates;
        long entries;
        await using (var connection = await SqliteAsync())
        {
            // What a store written before effectiveTiming was indexed looks like, for every observation's date of care; and its format.
            dates = await ScalarAsync(connection, "SELECT count(*) FROM idx_date WHERE param = 903");
            Assert.True(dates > 0);
            await ExecuteAsync(connection, "DELETE FROM idx_date WHERE param = 903");
            await ExecuteAsync(connection, "UPDATE store_settings SET value = '1' WHERE name = 'index_version'");
            entries = await ScalarAsync(connection, "SELECT count(*) FROM audit_entries");
        }

        // A mistyped type is a usage error, a mistyped establishment a refusal; nothing is done.
        var badType = await RunAsync($"reindex --type Observations {DbArgs}");
        Assert.True(badType.Exit == 2, badType.Output);
        Assert.Contains("--type: 'Observations' is not a resource type", badType.Output, StringComparison.Ordinal);
        // An unknown establishment exits 1, as with every other verb's --tenant.
        var badTenant = await RunAsync($"reindex --tenant chu-nulle-part {DbArgs}");
        Assert.True(badTenant.Exit == 1, badTenant.Output);
        Assert.StartsWith("error: No establishment 'chu-nulle-part'.", badTenant.Output, StringComparison.Ordinal);
        var nearMiss = await RunAsync($"reindex --tenant CHU-Reindex {DbArgs}");
        Assert.True(nearMiss.Exit == 1, nearMiss.Output);
        Assert.Contains("did you mean 'chu-reindex'?", nearMiss.Output, StringComparison.Ordinal);
        await using (var connection = await SqliteAsync())
        {
            Assert.Equal(0, await ScalarAsync(connection, "SELECT count(*) FROM idx_date WHERE param = 903"));
            Assert.Equal("1", (string)(await new Microsoft.Data.Sqlite.SqliteCommand("SELECT value FROM store_settings WHERE name = 'index_version'", connection).ExecuteScalarAsync())!);
            Assert.Equal(entries, await ScalarAsync(connection, "SELECT count(*) FROM audit_entries"));
        }

        // A partial run re-indexes its part and leaves the store's format as it was.
        var partial = await RunAsync($"reindex --type Patient {DbArgs}");
        Assert.True(partial.Exit == 0, partial.Output);
        Assert.Contains("Warning: the store's search index has format 1", partial.Output, StringComparison.Ordinal);
        Assert.Contains("its index format stays 1", partial.Output, StringComparison.Ordinal);

        var (exit, output) = await RunAsync($"reindex {DbArgs}");
        Assert.True(exit == 0, output);
        Assert.Contains($"Warning: the store's search index has format 1, older than this Vauban's ({Vauban.Records.Search.IndexEntries.FormatVersion})", output, StringComparison.Ordinal);
        Assert.Contains("run `vauban reindex`", output, StringComparison.OrdinalIgnoreCase);
        Assert.Matches(@"chu-reindex: [\d,]+ records re-indexed, [1-9][\d,]* with changed index rows\.", output);
        Assert.Contains($"The store's search index now has format {Vauban.Records.Search.IndexEntries.FormatVersion}.", output, StringComparison.Ordinal);
        await using (var connection = await SqliteAsync())
        {
            Assert.Equal(dates, await ScalarAsync(connection, "SELECT count(*) FROM idx_date WHERE param = 903"));
        }

        // Again: nothing to change, no warning.
        var again = await RunAsync($"reindex --tenant chu-reindex {DbArgs}");
        Assert.True(again.Exit == 0, again.Output);
        Assert.DoesNotContain("Warning", again.Output, StringComparison.Ordinal);
        Assert.Contains(" 0 with changed index rows.", again.Output, StringComparison.Ordinal);
        var verified = await RunAsync($"audit verify {DbArgs}");
        Assert.True(verified.Exit == 0, verified.Output);
    }

    private async Task<Microsoft.Data.Sqlite.SqliteConnection> SqliteAsync()
    {
        var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_directory, "v.db")};Pooling=False");
        await connection.OpenAsync();
        return connection;
    }

    private static async Task ExecuteAsync(System.Data.Common.DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(System.Data.Common.DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A number out of its range is a usage error (README's exit codes): these were refused by the store's opening, exit 1,
    /// after a new store's master key was made. A password minimum above the maximum said "The maximum password length must be at
    /// least 64", of an option the operator had not typed.</summary>
    [Theory]
    [InlineData("--password-min-length 6", "--password-min-length must be between 8 and 256.")]
    [InlineData("--password-min-length 99999", "--password-min-length must be between 8 and 256.")]
    [InlineData("--lockout-after 2", "--lockout-after must be between 3 and 100.")]
    [InlineData("--internal-alert-after 0", "The failures from an internal network's source that alert the security officer must be at least 1.")]
    [InlineData("--internal-networks 0.0.0.0/0", "The internal network 0.0.0.0/0 is wider than an establishment's own networks")]
    public async Task Serve_refuses_a_sign_in_setting_out_of_its_range_as_a_usage_error_before_a_key_or_store_is_made(string bad, string said)
    {
        await CliRunner.UsageErrorAsync($"serve {bad} --urls http://127.0.0.1:0 {DbArgs}".Split(' '), said, "vauban serve");
        Assert.False(File.Exists(Path.Combine(_directory, "master.key")));
        Assert.False(File.Exists(Path.Combine(_directory, "v.db")));
    }

    [Theory]
    [InlineData("--urls garbage")]
    [InlineData("--urls http://127.0.0.1:8080;ftp//nowhere")]
    // Kestrel listens on every interface for a host that is not an IP address or localhost: not what these ask for.
    [InlineData("--urls http://999.1.1.1:8080")]
    [InlineData("--urls http://vauban.hopital.example:8080")]
    [InlineData("--urls http://127.0.0.1:0 --trusted-proxies 10.0.0.1,proxy.example")]
    [InlineData("--urls http://127.0.0.1:0 --internal-networks 10.0.0.0/8,192.168.1.7/24")]
    [InlineData("--urls http://127.0.0.1:99999")]
    // No address at all (--urls "" or ";"): Kestrel listened on its own default, http://localhost:5000.
    [InlineData("--urls ;")]
    // Believing every client's X-Forwarded-For: any client writes its own address into the audit log.
    [InlineData("--urls http://127.0.0.1:0 --trusted-proxies 0.0.0.0/0")]
    [InlineData("--urls http://127.0.0.1:0 --trusted-proxies 10.0.0.2,::/0")]
    [InlineData("--urls http://127.0.0.1:0 --public-url ftp://ehr.hopital.example")]
    [InlineData("--urls http://127.0.0.1:0 --public-url https://ehr.hopital.example/?tenant=1")]
    public async Task Serve_refuses_a_bad_option_as_a_usage_error_in_one_line_before_it_opens_or_creates_the_store(string bad)
    {
        // The operator's mistake, as a mistyped option is: exit 2 (it was 1, as a failure of the server), then the verb's help.
        await CliRunner.UsageErrorAsync($"serve {bad} {DbArgs}".Split(' '), bad.Split(' ')[^2] + ": ", "vauban serve");
        Assert.False(File.Exists(Path.Combine(_directory, "v.db")));
    }

    /// <summary>A guard configuration that does not hold the guard's settings was an error of the server (exit 1), "The guard
    /// configuration is not valid" without the option or the file: it is the operator's mistake, named with both.</summary>
    [Theory]
    [InlineData("""{ "roles": { "Physician": { "patientsPerHuor": 30 } } }""", "The guard configuration is not valid: line 1, column ")]
    [InlineData("""{ "enabled": false }""", "The guard configuration cannot turn the guard off")]
    [InlineData("not json", "The guard configuration is not valid: line 1, column ")]
    public async Task Serve_refuses_a_guard_config_file_that_is_not_valid_as_a_usage_error_naming_the_option_and_the_file(string json, string said)
    {
        var file = Path.Combine(_directory, "guard.json");
        await File.WriteAllTextAsync(file, json);
        await CliRunner.UsageErrorAsync(["serve", "--guard-config", file, "--urls", "http://127.0.0.1:0", .. DbArgs.Split(' ')], $"--guard-config: {file}: {said}", "vauban serve");
        Assert.False(File.Exists(Path.Combine(_directory, "v.db")));
    }

    /// <summary>A --jwks file that is not a usable public key set was refused once the store was open (exit 1): it is the operator's
    /// mistake, told before anything is opened, naming the option and the file.</summary>
    [Theory]
    [InlineData("{ not json", "The JWK set is not a JSON Web Key Set")]
    [InlineData("""{ "keys": [ { "kty": "oct", "kid": "k1", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0" } ] }""", "The JWK set holds a private or secret key")]
    public async Task Clients_add_refuses_a_jwks_file_that_is_not_a_public_key_set_as_a_usage_error_before_the_store_opens(string jwks, string said)
    {
        var file = Path.Combine(_directory, "client.jwks.json");
        await File.WriteAllTextAsync(file, jwks);
        var printed = await CliRunner.UsageErrorAsync(["clients", "add", "--tenant", "chu", "--name", "robot", "--scopes", "system/*.rs", "--jwks", file, .. DbArgs.Split(' ')],
            $"--jwks: {file}: {said}", "vauban clients add");
        Assert.DoesNotContain("c2VjcmV0", printed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_on_a_port_already_taken_says_so_in_one_line()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var (exit, output) = await RunAsync($"serve --urls http://127.0.0.1:{port} {DbArgs}");
        Assert.Equal(1, exit);
        var error = Assert.Single(output.Split('\n'), line => line.Contains("error", StringComparison.OrdinalIgnoreCase) || line.Contains("fail", StringComparison.OrdinalIgnoreCase));
        Assert.Contains($"127.0.0.1:{port}", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public async Task Keys_rotate_master_writes_a_new_key_file_the_store_then_takes_alone_and_never_writes_over_a_file()
    {
        Assert.Equal(0, (await RunAsync($"tenants add t1 {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"seed --tenant t1 --patients 3 {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"tenants add t2 {DbArgs}")).Exit);
        var db = Path.Combine(_directory, "v.db");
        var rotated = Path.Combine(_directory, "rotated", "master.key");

        var (exit, output) = await RunAsync($"keys rotate-master --new-key-file {rotated} {DbArgs}");
        Assert.True(exit == 0, output);
        Assert.Contains("6 keys of 2 establishments are now wrapped under the key in " + rotated, output, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(rotated));
        Assert.DoesNotContain(File.ReadAllText(rotated).Trim(), output, StringComparison.Ordinal);

        (exit, output) = await RunAsync($"tenants list {DbArgs}");
        Assert.Equal(1, exit);
        Assert.Contains("another master key", output, StringComparison.Ordinal);
        var withRotated = $"--db {db} --master-key-file {rotated}";
        // The records, their index and the audit chain (its checkpoints signed by the re-wrapped key, the rotation's entries on it).
        Assert.Equal(0, (await RunAsync($"seed --tenant t1 --patients 2 --seed 7 {withRotated}")).Exit);
        (exit, output) = await RunAsync($"audit verify {withRotated}");
        Assert.True(exit == 0, output);

        // A file there already (the old key, the new one) is never written over, and nothing changes.
        var existing = Path.Combine(_directory, "master.key");
        var before = File.ReadAllText(existing);
        await CliRunner.UsageErrorAsync($"keys rotate-master --new-key-file {existing} {withRotated}".Split(' '),
            $"--new-key-file: {existing} exists and will not be overwritten: name a file that does not exist", "vauban keys rotate-master");
        Assert.Equal(before, File.ReadAllText(existing));
        Assert.Equal(0, (await RunAsync($"tenants list {withRotated}")).Exit);
        (exit, _) = await RunAsync($"keys rotate-master {withRotated}");
        Assert.Equal(2, exit);
    }

    /// <summary>A store for a command line test on <paramref name="engine"/>: its --db value and the key file beside it.</summary>
    private async Task<(string Db, string Key)> StoreOnAsync(Engine engine) =>
        (engine == Engine.Postgres ? await PostgresServer.CreateDatabaseAsync() : Path.Combine(_directory, "v.db"), Path.Combine(_directory, "master.key"));

    private static async Task ExecuteOnAsync(string db, string sql)
    {
        await using var database = Vauban.Storage.StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        await ExecuteAsync(connection, sql);
    }

    /// <summary>Makes the database refuse, at COMMIT (a deferred check), any transaction that binds the store to a master key:
    /// a rotation that fails once its commit was sent, as when the connection is lost under an in-flight commit. The
    /// transaction is rolled back: a read afterwards sees the previous binding, as a read may before an in-flight commit lands.</summary>
    internal static string RefuseCommitOfTheBinding(Engine engine) => engine == Engine.Postgres
        ? """
          CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'connection lost during commit (test)'; END $f$;
          CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT OR UPDATE ON store_settings DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN (NEW.name = 'master_key_fingerprint') EXECUTE FUNCTION refuse_commit();
          """
        : """
          CREATE TABLE refuse_commit_parent (id INTEGER PRIMARY KEY);
          CREATE TABLE refuse_commit (parent INTEGER REFERENCES refuse_commit_parent (id) DEFERRABLE INITIALLY DEFERRED);
          CREATE TRIGGER refuse_commit AFTER UPDATE ON store_settings WHEN NEW.name = 'master_key_fingerprint'
            BEGIN INSERT INTO refuse_commit VALUES (1); END;
          """;

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task Keys_rotate_master_that_fails_once_its_commit_was_sent_keeps_the_new_key_file_and_says_the_outcome_is_unknown(Engine engine)
    {
        var (db, key) = await StoreOnAsync(engine);
        Assert.Equal(0, (await RunAsync(["tenants", "add", "t1", "--db", db, "--master-key-file", key])).Exit);
        await ExecuteOnAsync(db, RefuseCommitOfTheBinding(engine));
        var rotated = Path.Combine(_directory, "rotated.key");

        var (exit, output) = await RunAsync(["keys", "rotate-master", "--new-key-file", rotated, "--db", db, "--master-key-file", key]);
        Assert.Equal(1, exit);
        Assert.StartsWith("error: The rotation failed once its commit had been sent", output, StringComparison.Ordinal);
        Assert.Contains("is not known", output, StringComparison.Ordinal);
        Assert.Contains($"Both key files are kept: the new one, {rotated}", output, StringComparison.Ordinal);
        Assert.Contains($"vauban tenants list --db … --master-key-file {rotated}", output, StringComparison.Ordinal);
        Assert.DoesNotContain(db, output, StringComparison.Ordinal); // a connection string may hold a password
        // A read after the failure sees the old binding, as one may before an in-flight commit lands: the file is kept all the same.
        Assert.True(File.Exists(rotated));
        Assert.DoesNotContain(File.ReadAllText(rotated).Trim(), output, StringComparison.Ordinal);
        // Here the commit was in fact refused: the store kept its key.
        Assert.Equal(0, (await RunAsync(["tenants", "list", "--db", db, "--master-key-file", key])).Exit);
        Assert.Equal(1, (await RunAsync(["tenants", "list", "--db", db, "--master-key-file", rotated])).Exit);
    }

    [Fact]
    public async Task Of_two_rotations_at_once_the_second_is_refused_in_plain_words_and_deletes_its_key_file()
    {
        var (db, key) = await StoreOnAsync(Engine.Postgres);
        Assert.Equal(0, (await RunAsync(["tenants", "add", "t1", "--db", db, "--master-key-file", key])).Exit);
        var firstKey = Vauban.Crypto.MasterKey.Generate();
        await using var first = await VaubanStore.OpenAsync(new StoreOptions(db, Vauban.Crypto.MasterKey.Load(key, null)), CancellationToken.None);
        await using var blocker = new Npgsql.NpgsqlConnection(db);
        await blocker.OpenAsync();
        await using var held = await blocker.BeginTransactionAsync();
        // A lock on the establishment's chain head holds the first rotation inside its transaction, under the "tenants add" lock.
        await using (var head = new Npgsql.NpgsqlCommand("SELECT seq FROM audit_heads FOR UPDATE", blocker, held)) await head.ExecuteScalarAsync();
        var firstRotation = first.RotateMasterKeyAsync(firstKey, t => Vauban.Access.AccessContext.Operator(t, "administration"), CancellationToken.None);
        await Vauban.Tests.Storage.StoreOperationsTests.WaitForLockWaitersAsync(db, 1);
        var secondKey = Path.Combine(_directory, "second.key");
        var second = RunAsync(["keys", "rotate-master", "--new-key-file", secondKey, "--db", db, "--master-key-file", key]);
        await Vauban.Tests.Storage.StoreOperationsTests.WaitForLockWaitersAsync(db, 2); // the second waits for the lock
        await held.RollbackAsync();
        await firstRotation;

        var (exit, output) = await second;
        Assert.Equal(1, exit);
        Assert.StartsWith($"error: The store's master key was rotated meanwhile: the store now takes the key with fingerprint {firstKey.Fingerprint}", output, StringComparison.Ordinal);
        Assert.Contains("This rotation did not happen: nothing was changed.", output, StringComparison.Ordinal);
        Assert.Single(output.Trim().Split('\n'));
        Assert.False(File.Exists(secondKey)); // its transaction never sent COMMIT: the store never took it
        await using var reopened = await VaubanStore.OpenAsync(new StoreOptions(db, firstKey), CancellationToken.None);
        Assert.Single(await reopened.Tenants.ListAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_master_key_file_given_beside_the_master_key_variable_is_refused_not_ignored()
    {
        var before = Environment.GetEnvironmentVariable("VAUBAN_MASTER_KEY");
        Environment.SetEnvironmentVariable("VAUBAN_MASTER_KEY", Convert.ToBase64String(new byte[32]));
        try
        {
            await CliRunner.UsageErrorAsync(["tenants", "add", "chu", .. DbArgs.Split(' ')],
                "--master-key-file is given while $VAUBAN_MASTER_KEY is set, which would be used instead: unset one of them.", "vauban tenants add");
            Assert.False(File.Exists(Path.Combine(_directory, "v.db")));
        }
        finally
        {
            Environment.SetEnvironmentVariable("VAUBAN_MASTER_KEY", before);
        }
    }

    [Fact]
    public async Task A_new_store_is_bound_to_its_master_key_before_its_first_establishment()
    {
        // serve made a store and its key; a `tenants add` with a stray other key used to succeed, and the store's own key was
        // refused from then on as "another master key".
        await using (await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None))
        {
        }
        var other = Path.Combine(_directory, "other.key");
        Vauban.Crypto.MasterKey.Load(other, null); // a key of another store, made beforehand
        var (exit, output) = await RunAsync($"tenants add late --db {Path.Combine(_directory, "v.db")} --master-key-file {other}");
        Assert.Equal(1, exit);
        Assert.Contains("This store was made with another master key (fingerprint ", output, StringComparison.Ordinal);
        Assert.Contains($"than the one given (the file {other}, fingerprint ", output, StringComparison.Ordinal);
        Assert.Equal(0, (await RunAsync($"tenants add late {DbArgs}")).Exit); // its own key still opens it
    }

    [Fact]
    public async Task A_wrong_master_key_is_a_clear_error_not_a_crash()
    {
        Assert.Equal(0, (await RunAsync($"tenants add t1 {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"seed --tenant t1 --patients 1 {DbArgs}")).Exit);
        var other = Path.Combine(_directory, "other.key");
        // Another store's key: made by that store.
        Assert.Equal(0, (await RunAsync($"tenants add tx --db {Path.Combine(_directory, "other.db")} --master-key-file {other}")).Exit);
        var (exit, output) = await RunAsync($"seed --tenant t1 --patients 1 --db {Path.Combine(_directory, "v.db")} --master-key-file {other}");
        Assert.Equal(1, exit);
        Assert.Contains("another master key", output);
        // A key file that is not there, for a store that is: a mistyped path, refused without making a key (or its folder).
        var missing = Path.Combine(_directory, "typo", "master.key");
        await CliRunner.UsageErrorAsync(["tenants", "list", "--db", Path.Combine(_directory, "v.db"), "--master-key-file", missing],
            $"--master-key-file: no file at {missing}, and the store at {Path.Combine(_directory, "v.db")} was made with a master key", "vauban tenants list");
        Assert.False(File.Exists(missing));
        Assert.False(Directory.Exists(Path.GetDirectoryName(missing)));
    }

    [Fact]
    public async Task A_store_opened_with_another_master_key_is_refused_before_anything_is_written()
    {
        Assert.Equal(0, (await RunAsync($"tenants add t1 {DbArgs}")).Exit);
        long keysBefore;
        await using (var connection = await SqliteAsync()) keysBefore = await ScalarAsync(connection, "SELECT count(*) FROM tenant_keys");
        // Another store's key file: the store must not take a single key wrapped under it.
        Assert.Equal(0, (await RunAsync($"tenants add tx --db {Path.Combine(_directory, "other.db")} --master-key-file {Path.Combine(_directory, "other.key")}")).Exit);
        var otherKey = $"--db {Path.Combine(_directory, "v.db")} --master-key-file {Path.Combine(_directory, "other.key")}";
        foreach (var act in new[] { $"tenants add t2 {otherKey}", $"tenants list {otherKey}", $"users list --tenant t1 {otherKey}" })
        {
            var (exit, output) = await RunAsync(act);
            Assert.True(exit == 1, act + " → " + output);
            Assert.StartsWith("error: ", output, StringComparison.Ordinal);
            Assert.Contains("another master key", output, StringComparison.Ordinal);
            Assert.Single(output.Trim().Split('\n'));
        }
        await using (var connection = await SqliteAsync())
        {
            Assert.Equal(1, await ScalarAsync(connection, "SELECT count(*) FROM tenants"));
            Assert.Equal(keysBefore, await ScalarAsync(connection, "SELECT count(*) FROM tenant_keys"));
        }
        var verified = await RunAsync($"audit verify {DbArgs}");
        Assert.True(verified.Exit == 0, verified.Output);
    }

    [Theory]
    [InlineData("audit verify")]
    [InlineData("tenants list")]
    [InlineData("users list --tenant chu")]
    [InlineData("guard contained --tenant chu")]
    public async Task A_db_path_with_no_store_is_refused_and_nothing_is_made_there(string verb)
    {
        // A path with nothing there is a usage error, as a missing file given to any option is.
        var typo = Path.Combine(_directory, "vaubn", "v.db");
        await CliRunner.UsageErrorAsync([.. verb.Split(' '), "--db", typo, "--master-key-file", Path.Combine(_directory, "vaubn", "master.key")],
            $"--db: no Vauban store at {typo}: there is no file there.", "vauban " + string.Join(' ', verb.Split(' ').TakeWhile(w => !w.StartsWith("--", StringComparison.Ordinal))));
        Assert.False(Directory.Exists(Path.Combine(_directory, "vaubn")));
    }

    [Theory]
    [InlineData("audit verify", "empty")]
    [InlineData("tenants list", "empty")]
    [InlineData("audit verify", "foreign")]
    [InlineData("tenants list", "foreign")]
    public async Task An_empty_file_or_another_applications_SQLite_database_is_no_store_and_is_left_as_it_was(string verb, string kind)
    {
        // A truncated backup, a mistyped `touch`, another program's database: it was given Vauban's whole schema, and `audit
        // verify` said "nothing to verify" with exit 0.
        var path = Path.Combine(_directory, kind + ".db");
        if (kind == "empty") await File.WriteAllBytesAsync(path, []);
        else
        {
            await using var other = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False");
            await other.OpenAsync();
            using var create = other.CreateCommand();
            create.CommandText = "CREATE TABLE invoices (n INTEGER)";
            await create.ExecuteNonQueryAsync();
        }
        var before = await File.ReadAllBytesAsync(path);
        var (exit, output) = await RunAsync($"{verb} --db {path} --master-key-file {Path.Combine(_directory, "master.key")}");
        Assert.Equal(1, exit);
        Assert.StartsWith($"error: No Vauban store at {path}", output, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(path));
        Assert.False(File.Exists(Path.Combine(_directory, "master.key")));
    }

    /// <summary>A new SQLite file as a copy killed midway leaves it (VACUUM INTO into a new file, as `vauban backup` wrote under the
    /// backup's own name): pages written, and the hot journal that says the file was empty when the writing began. Made by
    /// copying a new database and its journal in the middle of its first transaction.</summary>
    private async Task<string> UnfinishedCopyAsync(string name)
    {
        var source = Path.Combine(_directory, "being-written", name);
        Directory.CreateDirectory(Path.GetDirectoryName(source)!);
        var path = Path.Combine(_directory, name);
        await using (var writing = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={source};Pooling=False"))
        {
            await writing.OpenAsync();
            using var write = writing.CreateCommand();
            // A small page cache: pages reach the file before the commit, as they do in a large copy.
            write.CommandText = "PRAGMA journal_mode=DELETE; PRAGMA cache_size=5; BEGIN; "
                + "CREATE TABLE schema_version (version integer NOT NULL PRIMARY KEY, description text NOT NULL, applied_at bigint NOT NULL); "
                + "INSERT INTO schema_version VALUES (1, 'first', 0); CREATE TABLE resources (data BLOB); "
                + "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) INSERT INTO resources SELECT randomblob(4000) FROM n;";
            await write.ExecuteNonQueryAsync();
            File.Copy(source, path);
            File.Copy(source + "-journal", path + "-journal");
        }
        Assert.True(new FileInfo(path).Length > 100_000);
        return path;
    }

    [Theory]
    [InlineData("audit verify")]
    [InlineData("tenants list")]
    [InlineData("tenants add chu")]
    public async Task An_unfinished_copy_with_its_hot_journal_is_refused_by_every_verb_and_left_as_it_was(string verb)
    {
        // Opened, SQLite rolled the file back to empty and the store's opening made a new store in it: `audit verify` said "No
        // establishment …: nothing to verify" and exited 0, `tenants list` listed nothing.
        var path = await UnfinishedCopyAsync("k.db");
        var (before, journal) = (await File.ReadAllBytesAsync(path), await File.ReadAllBytesAsync(path + "-journal"));
        var key = Path.Combine(_directory, "master.key");
        var (exit, output) = await RunAsync([.. verb.Split(' '), "--db", path, "--master-key-file", key]);
        Assert.Equal(1, exit);
        Assert.StartsWith($"error: {path} is not a store but an unfinished copy", output, StringComparison.Ordinal);
        Assert.Single(output.Trim().Split('\n'));
        Assert.Equal(before, await File.ReadAllBytesAsync(path));
        Assert.Equal(journal, await File.ReadAllBytesAsync(path + "-journal"));
        Assert.False(File.Exists(key));
    }

    [Fact]
    public async Task An_unfinished_copy_is_refused_by_the_stores_opening_too()
    {
        // serve opens the store itself; the check is in the store's opening, not only in the verbs.
        var path = await UnfinishedCopyAsync("k.db");
        var before = await File.ReadAllBytesAsync(path);
        var refused = await Assert.ThrowsAsync<VaubanConfigurationException>(() =>
            VaubanStore.OpenAsync(new StoreOptions(path, Vauban.Crypto.MasterKey.Generate()) { MayCreate = false }, CancellationToken.None));
        Assert.StartsWith($"{path} is not a store but an unfinished copy", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(path));
        Assert.True(File.Exists(path + "-journal"));
    }

    [Theory]
    [InlineData("tenants add chu")]
    [InlineData("seed --tenant chu --patients 1")]
    public async Task Another_applications_SQLite_database_is_not_made_a_store_by_the_verbs_that_make_one(string verb)
    {
        // `tenants add x --db other.db` said "Created the establishment 'x'" and wrote Vauban's whole schema beside other.db's tables.
        var path = Path.Combine(_directory, "other.db");
        await using (var other = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await other.OpenAsync();
            using var create = other.CreateCommand();
            create.CommandText = "CREATE TABLE t (x); INSERT INTO t VALUES (1);";
            await create.ExecuteNonQueryAsync();
        }
        var before = await File.ReadAllBytesAsync(path);
        var key = Path.Combine(_directory, "master.key");
        var (exit, output) = await RunAsync([.. verb.Split(' '), "--db", path, "--master-key-file", key]);
        Assert.Equal(1, exit);
        Assert.StartsWith($"error: {path} is not a Vauban store", output, StringComparison.Ordinal);
        Assert.Single(output.Trim().Split('\n'));
        Assert.Equal(before, await File.ReadAllBytesAsync(path));
        Assert.False(File.Exists(key));

        // The store's own opening (serve's) refuses it too, before writing anything (not even SQLite's WAL mode).
        var refused = await Assert.ThrowsAsync<VaubanConfigurationException>(() =>
            VaubanStore.OpenAsync(new StoreOptions(path, Vauban.Crypto.MasterKey.Generate()), CancellationToken.None));
        Assert.StartsWith($"{path} is not a Vauban store", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(path));

        // An empty file is still made a new store.
        var empty = Path.Combine(_directory, "empty.db");
        await File.WriteAllBytesAsync(empty, []);
        var made = await RunAsync($"tenants add chu --db {empty} --master-key-file {key}");
        Assert.True(made.Exit == 0, made.Output);
    }

    [Fact]
    public async Task Another_applications_PostgreSQL_database_is_not_made_a_store()
    {
        var db = await PostgresServer.CreateDatabaseAsync();
        await using (var connection = new Npgsql.NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            await using var create = new Npgsql.NpgsqlCommand("CREATE TABLE invoices (n integer); INSERT INTO invoices VALUES (1);", connection);
            await create.ExecuteNonQueryAsync();
        }
        await AssertRefusedAsAnotherApplicationsAsync(db);
        Assert.Equal("invoices", await TablesAsync(db));
    }

    /// <summary>The tables of a PostgreSQL database's current schema, by name.</summary>
    private static async Task<string?> TablesAsync(string db)
    {
        await using var connection = new Npgsql.NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var tables = new Npgsql.NpgsqlCommand("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = current_schema()", connection);
        return await tables.ExecuteScalarAsync() as string;
    }

    /// <summary>`tenants add` refuses <paramref name="db"/> as another application's database, making no master key for it, and
    /// the store's own opening (serve's) refuses it too, in the transaction that would have made the schema.</summary>
    private async Task AssertRefusedAsAnotherApplicationsAsync(string db)
    {
        var key = Path.Combine(_directory, "pg-refused.key");
        var (exit, output) = await RunAsync(["tenants", "add", "chu", "--db", db, "--master-key-file", key]);
        Assert.Equal(1, exit);
        Assert.StartsWith("error: This PostgreSQL database is not a Vauban store", output, StringComparison.Ordinal);
        Assert.False(File.Exists(key));
        await Assert.ThrowsAsync<VaubanConfigurationException>(() =>
            VaubanStore.OpenAsync(new StoreOptions(db, Vauban.Crypto.MasterKey.Generate()), CancellationToken.None));
    }

    [Fact]
    public async Task A_PostgreSQL_database_whose_only_tables_are_an_extensions_is_made_a_store_and_one_with_a_table_of_its_own_beside_them_is_not()
    {
        // PostGIS puts its table spatial_ref_sys in public when installed: an operator's empty database with PostGIS was refused as
        // another application's. PostGIS is not part of PostgreSQL, and no extension of its contrib makes a table: a table made a
        // member of one (ALTER EXTENSION … ADD TABLE, as CREATE EXTENSION postgis makes spatial_ref_sys postgis's) stands for it.
        static async Task<string> WithExtensionTableAsync(string also)
        {
            var db = await PostgresServer.CreateDatabaseAsync();
            await using var connection = new Npgsql.NpgsqlConnection(db);
            await connection.OpenAsync();
            await using var create = new Npgsql.NpgsqlCommand("CREATE EXTENSION isn; CREATE TABLE spatial_ref_sys (srid integer PRIMARY KEY, auth_name text); "
                + "INSERT INTO spatial_ref_sys VALUES (4326, 'EPSG'); ALTER EXTENSION isn ADD TABLE spatial_ref_sys; " + also, connection);
            await create.ExecuteNonQueryAsync();
            return db;
        }

        var empty = await WithExtensionTableAsync("");
        var made = await RunAsync(["tenants", "add", "chu", "--db", empty, "--master-key-file", Path.Combine(_directory, "pg-master.key")]);
        Assert.True(made.Exit == 0, made.Output);
        var tables = (await TablesAsync(empty))!.Split(',');
        Assert.Contains("schema_version", tables);
        Assert.Contains("spatial_ref_sys", tables);
        var listed = await RunAsync(["tenants", "list", "--db", empty, "--master-key-file", Path.Combine(_directory, "pg-master.key")]);
        Assert.True(listed.Exit == 0, listed.Output);
        Assert.Contains("chu", listed.Output, StringComparison.Ordinal);

        // An ordinary table beside the extension's is another application's: refused, untouched, no master key made for it.
        var foreign = await WithExtensionTableAsync("CREATE TABLE invoices (n integer); INSERT INTO invoices VALUES (1);");
        await AssertRefusedAsAnotherApplicationsAsync(foreign);
        Assert.Equal("invoices,spatial_ref_sys", await TablesAsync(foreign));
    }

    [Theory]
    [InlineData("tenants add chu")]
    [InlineData("tenants list")]
    [InlineData("serve")]
    public async Task A_folder_given_as_the_store_is_a_usage_error_naming_it_as_a_folder(string verb)
    {
        var (exit, output) = await RunAsync($"{verb} --db {_directory} --master-key-file {Path.Combine(_directory, "master.key")}");
        Assert.Equal(2, exit);
        Assert.StartsWith($"error: --db: {_directory} is a folder: the store is a SQLite file, for example {Path.Combine(_directory, "vauban.db")}", output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory, "master.key"))); // no key made for a store that cannot be
    }

    [Theory]
    [InlineData("audit verify")]
    [InlineData("tenants list")]
    [InlineData("users list --tenant chu")]
    public async Task A_PostgreSQL_database_with_no_store_is_refused_and_left_without_a_table_or_a_master_key(string verb)
    {
        // A typo in Database= names another database of the server (or its own `postgres` database): nothing is made there.
        var db = await PostgresServer.CreateDatabaseAsync();
        var key = Path.Combine(_directory, "pg-master.key");
        var (exit, output) = await RunAsync([.. verb.Split(' '), "--db", db, "--master-key-file", key]);
        Assert.Equal(1, exit);
        Assert.StartsWith("error: No Vauban store in this PostgreSQL database", output, StringComparison.Ordinal);
        Assert.False(File.Exists(key));
        await using var connection = new Npgsql.NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var tables = new Npgsql.NpgsqlCommand("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()", connection);
        Assert.Equal(0L, await tables.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Audit_verify_of_a_store_with_no_establishment_says_there_was_nothing_to_verify()
    {
        await (await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None)).DisposeAsync();
        var (exit, output) = await RunAsync($"audit verify {DbArgs}");
        Assert.Equal(0, exit);
        Assert.Contains("No establishment in SQLite", output, StringComparison.Ordinal);
        Assert.Contains("nothing to verify", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_db_file_that_is_not_a_database_is_a_one_line_error_not_a_stack_trace()
    {
        var notes = Path.Combine(_directory, "notes.db");
        await File.WriteAllTextAsync(notes, "Liste des gardes de décembre : ce fichier n'est pas une base de données.\n");
        var (exit, output) = await RunAsync($"tenants list --db {notes} --master-key-file {Path.Combine(_directory, "master.key")}");
        Assert.Equal(1, exit);
        Assert.StartsWith($"error: Cannot open SQLite {notes}: ", output, StringComparison.Ordinal);
        Assert.Single(output.Trim().Split('\n'));
    }

    [Fact]
    public async Task Importing_a_folder_loads_every_good_file_and_names_each_entry_it_did_not_load()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-folder {DbArgs}")).Exit);
        var folder = Path.Combine(_directory, "bundles");
        Directory.CreateDirectory(folder);
        // A batch whose second entry is refused: the first is loaded, and the result must say the second was not.
        await File.WriteAllTextAsync(Path.Combine(folder, "a-batch.json"), $$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              { "resource": {{Samples.Patient(family: "Lot", id: "batch-1")}}, "request": { "method": "PUT", "url": "Patient/batch-1" } },
              { "resource": { "resourceType": "Patient", "gender": "banane" }, "request": { "method": "POST", "url": "Patient" } } ] }
            """);
        // Not a Bundle the way its fields are typed: that file fails, the ones after it are still loaded.
        await File.WriteAllTextAsync(Path.Combine(folder, "b-typed.json"), """{ "resourceType": "Bundle", "type": 5 }""");
        // A collection with two versions of one patient and an entry with no resource: both versions kept, the empty entry named.
        await File.WriteAllTextAsync(Path.Combine(folder, "c-collection.json"), $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [
              { "resource": {{Samples.Patient(family: "Premier", id: "twice-1")}} },
              { "resource": {{Samples.Patient(family: "Second", id: "twice-1")}} },
              { "fullUrl": "urn:uuid:0b7e1d9c-4f7a-4c4e-8d4e-1b2f3a4c5d6e" } ] }
            """);
        await File.WriteAllTextAsync(Path.Combine(folder, "d-after.json"), $$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Après", id: "after-1")}} } ] }""");

        var (exit, output) = await RunAsync($"import {folder} --tenant chu-folder {DbArgs}");
        Assert.True(exit == 1, output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains("failed a-batch.json: batch: 1 of 2 entries applied, 1 failed.", lines);
        Assert.Contains(lines, l => l.StartsWith("  Bundle.entry[1] (400): ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("failed b-typed.json: ", StringComparison.Ordinal));
        Assert.Contains("failed c-collection.json: 1 created, 1 updated, 1 rejected.", lines);
        Assert.Contains("  Bundle.entry[2]: no resource.", lines);
        Assert.Contains("ok d-after.json: 1 created, 0 updated, 0 rejected.", lines);

        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var context = Vauban.Access.AccessContext.Operator((await store.Tenants.FindAsync("chu-folder", CancellationToken.None))!, "test");
        Assert.Equal(Vauban.Records.RecordStatus.Ok, (await store.Records.ReadAsync(context, "Patient", "batch-1", CancellationToken.None)).Status);
        Assert.Equal(Vauban.Records.RecordStatus.Ok, (await store.Records.ReadAsync(context, "Patient", "after-1", CancellationToken.None)).Status);
        var twice = await store.Records.ReadAsync(context, "Patient", "twice-1", CancellationToken.None);
        Assert.Equal(2, twice.Version);
        Assert.Contains("Second", Encoding.UTF8.GetString(twice.Json!), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Importing_a_folder_does_not_go_round_a_link_to_a_parent_folder_and_refuses_a_file_without_end()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-liens {DbArgs}")).Exit);
        var folder = Path.Combine(_directory, "linked");
        Directory.CreateDirectory(Path.Combine(folder, "sub"));
        await File.WriteAllTextAsync(Path.Combine(folder, "a.json"),
            $$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Boucle", id: "loop-1")}} } ] }""");
        // sub/loop → .. : walked through, it led back to a.json at every turn (41 loads, one version each).
        File.CreateSymbolicLink(Path.Combine(folder, "sub", "loop"), "..");
        // A link to a bundle file elsewhere is read as that file, once.
        var elsewhere = Path.Combine(_directory, "elsewhere.json");
        await File.WriteAllTextAsync(elsewhere,
            $$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Ailleurs", id: "linked-1")}} } ] }""");
        File.CreateSymbolicLink(Path.Combine(folder, "sub", "b.json"), elsewhere);

        var (exit, output) = await RunAsync($"import {folder} --tenant chu-liens {DbArgs}");
        Assert.True(exit == 0, output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
        Assert.Equal(["ok a.json: 1 created, 0 updated, 0 rejected.", $"ok {Path.Combine("sub", "b.json")}: 1 created, 0 updated, 0 rejected."], lines);
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None))
        {
            var context = Vauban.Access.AccessContext.Operator((await store.Tenants.FindAsync("chu-liens", CancellationToken.None))!, "test");
            Assert.Equal(1, (await store.Records.ReadAsync(context, "Patient", "loop-1", CancellationToken.None)).Version);
        }

        // A file larger than a bundle may be (or still growing) is refused past that size, nothing loaded, the process still standing.
        var large = Path.Combine(_directory, "large.json");
        await using (var sparse = File.Create(large)) sparse.SetLength(Vauban.Cli.ImportCommand.MaxFileBytes + 1);
        var (largeExit, refused) = await RunAsync($"import {large} --tenant chu-liens {DbArgs}");
        Assert.Equal(1, largeExit);
        Assert.Contains("failed large.json: is larger than 256 MiB: split it into smaller bundles (nothing of it was loaded).", refused, StringComparison.Ordinal);
    }

    /// <summary>Opening a named pipe for reading waits for a writer: `import` given one, or a folder holding one, hung for ever; a
    /// device never ends. Each is refused, named, without being opened: the path typed as a usage error, a folder's as that file's
    /// failure beside the others loaded.</summary>
    [Fact]
    public async Task Importing_a_named_pipe_a_socket_or_a_device_refuses_it_by_name_without_opening_it()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.Equal(0, (await RunAsync($"tenants add chu-tubes {DbArgs}")).Exit);
        var folder = Path.Combine(_directory, "tubes");
        Directory.CreateDirectory(Path.Combine(folder, "sub"));
        await File.WriteAllTextAsync(Path.Combine(folder, "a.json"),
            $$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Tube", id: "tube-1")}} } ] }""");
        var pipe = Path.Combine(folder, "sub", "x.json");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", pipe)) await mkfifo.WaitForExitAsync();
        File.CreateSymbolicLink(Path.Combine(folder, "zero.json"), "/dev/zero");
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(folder, "s.json")));
        try
        {
            // On another thread, and bounded: a reader blocked in open() would hold this one for ever.
            var (exit, output) = await Task.Run(() => RunAsync($"import {folder} --tenant chu-tubes {DbArgs}")).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(exit == 1, output);
            var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
            Assert.Equal([
                "ok a.json: 1 created, 0 updated, 0 rejected.",
                "failed s.json: is a socket, not a regular file: not read, nothing of it loaded.",
                $"failed {Path.Combine("sub", "x.json")}: is a named pipe (FIFO), not a regular file: not read, nothing of it loaded.",
                "failed zero.json: is a character device, not a regular file: not read, nothing of it loaded.",
            ], lines);

            var named = await Task.Run(() => RunAsync($"import {pipe} --tenant chu-tubes {DbArgs}")).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(2, named.Exit);
            Assert.StartsWith($"error: '{pipe}' is a named pipe (FIFO), not a regular file: name a bundle file or a folder of them.", named.Output, StringComparison.Ordinal);
            var device = await RunAsync($"import /dev/zero --tenant chu-tubes {DbArgs}");
            Assert.Equal(2, device.Exit);
            Assert.StartsWith("error: '/dev/zero' is a character device, not a regular file: name a bundle file or a folder of them.", device.Output, StringComparison.Ordinal);
            // So is a file an option names (a witness read whole would wait as long).
            var witness = await Task.Run(() => RunAsync($"audit verify --witness {pipe} {DbArgs}")).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(2, witness.Exit);
            Assert.StartsWith($"error: --witness: {pipe} is a named pipe (FIFO), not a regular file.", witness.Output, StringComparison.Ordinal);
        }
        finally
        {
            // Whatever still waits on the pipe (this test failing) is given a writer, and an end; opened read-write, the pipe
            // does not wait for a reader.
            using (new FileStream(pipe, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite)) { }
        }
    }

    /// <summary>Reading a named pipe waits for a writer, and a device never ends: a master key file given as one hung the verb
    /// before it said anything. Refused without being opened, a usage error naming where the path came from.</summary>
    [Fact]
    public async Task A_master_key_file_that_is_a_named_pipe_or_a_device_is_a_usage_error_not_a_wait()
    {
        if (!OperatingSystem.IsLinux()) return;
        var pipe = Path.Combine(_directory, "master.pipe");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", pipe)) await mkfifo.WaitForExitAsync();
        File.SetUnixFileMode(pipe, UnixFileMode.UserRead | UnixFileMode.UserWrite); // as a key file is kept: else refused as readable by others
        var before = Environment.GetEnvironmentVariable("VAUBAN_MASTER_KEY_FILE");
        try
        {
            foreach (var (typed, key, named) in new[] { (new[] { "--master-key-file", pipe }, pipe, "--master-key-file"), (["--master-key-file", "/dev/zero"], "/dev/zero", "--master-key-file"), ([], pipe, "$VAUBAN_MASTER_KEY_FILE") })
            {
                Environment.SetEnvironmentVariable("VAUBAN_MASTER_KEY_FILE", typed.Length == 0 ? key : null);
                foreach (var (verb, arguments) in new[] { ("vauban tenants add", new[] { "tenants", "add", "chu" }), ("vauban serve", ["serve", "--urls", "http://127.0.0.1:0"]) })
                {
                    // On another thread, and bounded: a reader blocked in open() would hold this one for ever.
                    await Task.Run(() => CliRunner.UsageErrorAsync([.. arguments, "--db", Path.Combine(_directory, "v.db"), .. typed],
                        $"{named}: {key} is {(key == pipe ? "a named pipe (FIFO)" : "a character device")}, not a regular file.", verb)).WaitAsync(TimeSpan.FromSeconds(60));
                }
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("VAUBAN_MASTER_KEY_FILE", before);
            // Whatever still waits on the pipe (this test failing) is given a writer, and an end.
            using (new FileStream(pipe, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite)) { }
        }
        Assert.False(File.Exists(Path.Combine(_directory, "v.db")));
    }

    /// <summary>POST /fhir/Patient refuses a body over --max-resource-kib (413); an import loaded the same resource at any size.
    /// Now a resource over that limit — 1024 KiB, or the import's own --max-resource-kib as serve's — is not loaded, named with
    /// the other entries not loaded, in a collection, a batch (that entry) and a transaction (all of it, as the API refuses it).</summary>
    [Fact]
    public async Task Importing_does_not_load_a_resource_larger_than_the_API_accepts_for_one_resource()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-lourd {DbArgs}")).Exit);
        // 2 MB of extensions, which nothing indexes: only its size is against it.
        var notes = string.Join(", ", Enumerable.Repeat($$"""{ "url": "http://example.org/fhir/StructureDefinition/note", "valueString": "{{new string('x', 1000)}}" }""", 2100));
        var big = Samples.Patient(family: "Lourd", id: "big-1").TrimStart().Insert(1, $"\"extension\": [{notes}],");
        var small = Samples.Patient(family: "Leger", id: "small-1");
        string Bundle(string type) => type == "collection"
            ? $$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{big}} }, { "resource": {{small}} } ] }"""
            : $$"""
              { "resourceType": "Bundle", "type": "{{type}}", "entry": [
                { "resource": {{big}}, "request": { "method": "PUT", "url": "Patient/big-1" } },
                { "resource": {{small}}, "request": { "method": "PUT", "url": "Patient/small-1" } } ] }
              """;
        static string TooLarge(string where) => $"{where}: the resource is larger than the configured limit of 1024 KiB for one resource.";
        foreach (var (type, said) in new[]
        {
            ("collection", "failed collection.json: 1 created, 0 updated, 1 rejected.\n  " + TooLarge("Bundle.entry[0] (Patient/big-1)")),
            ("batch", "failed batch.json: batch: 1 of 2 entries applied, 1 failed.\n  Bundle.entry[0] (413): the resource is larger than the configured limit of 1024 KiB for one resource."),
            ("transaction", "failed transaction.json: transaction refused (HTTP 413), nothing loaded: " + TooLarge("Bundle.entry[0]")),
        })
        {
            var file = Path.Combine(_directory, type + ".json");
            await File.WriteAllTextAsync(file, Bundle(type));
            var (exit, output) = await RunAsync($"import {file} --tenant chu-lourd {DbArgs}");
            Assert.True(exit == 1, output);
            Assert.Equal(said, output.Trim().ReplaceLineEndings("\n"));
        }
        // Within a larger limit, as a server started with it would take it.
        var within = await RunAsync($"import {Path.Combine(_directory, "collection.json")} --tenant chu-lourd --max-resource-kib 4096 {DbArgs}");
        Assert.True(within.Exit == 0, within.Output);
        Assert.Equal("ok collection.json: 1 created, 1 updated, 0 rejected.", within.Output.Trim());
    }

    /// <summary>A batch's failed entry is listed on a line of its own that names it once: an entry the server could not run says
    /// where it is itself ("Bundle.entry[2]: …"), and was listed as "Bundle.entry[2] (400): Bundle.entry[2]: …".</summary>
    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task Importing_a_batch_names_each_entry_it_did_not_load_once_on_its_line(Engine engine)
    {
        var (db, key) = await StoreOnAsync(engine);
        Assert.Equal(0, (await RunAsync(["tenants", "add", "chu-lignes", "--db", db, "--master-key-file", key])).Exit);
        var file = Path.Combine(_directory, "lignes.json");
        await File.WriteAllTextAsync(file, $$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              { "resource": {{Samples.Patient(family: "Ligne", id: "ligne-1")}}, "request": { "method": "PUT", "url": "Patient/ligne-1" } },
              { "request": { "method": "GET", "url": "Patient/ligne-1?_summary=maybe" } },
              { "resource": { "resourceType": "Patient" }, "request": { "method": "POST", "url": "Patient" }, "search": { "mode": "match" } },
              { "request": { "method": "GET", "url": "Nothing/1" } },
              { "resource": { "resourceType": "Patient", "birthDate": "1980-13-45" }, "request": { "method": "POST", "url": "Patient" } } ] }
            """);
        var (exit, output) = await RunAsync(["import", file, "--tenant", "chu-lignes", "--db", db, "--master-key-file", key]);
        Assert.True(exit == 1, output);
        var lines = output.ReplaceLineEndings("\n").Split('\n').Where(l => l.StartsWith("  Bundle.entry[", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, lines.Count);
        foreach (var (line, said) in lines.Zip(new[]
        {
            "  Bundle.entry[1] (400): _summary must be true, text, data or false",
            "  Bundle.entry[2] (400): search: A batch Bundle's entries have no search",
            "  Bundle.entry[3] (404): 'Nothing' is not a supported resource type.",
            "  Bundle.entry[4] (400): Invalid date",
        }))
        {
            Assert.StartsWith(said, line, StringComparison.Ordinal);
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(line, @"Bundle\.entry\["));
        }
    }

    [Fact]
    public async Task Importing_lists_the_entries_it_refused_in_entry_order()
    {
        // Refused at three stages (the load, reading the collection, preparing a record): listed as the file has them.
        var (exit, output) = await ImportIntoNewTenantAsync("chu-ordre", "ordre.json", $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [
              { "resource": {{Samples.Observation("Patient/ordre-nulle-part")}} },
              { "fullUrl": "urn:uuid:0b7e1d9c-4f7a-4c4e-8d4e-1b2f3a4c5d6f" },
              { "resource": { "resourceType": "Banane", "id": "b-1" } } ] }
            """);
        Assert.True(exit == 1, output);
        var refused = output.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith("  Bundle.entry[", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, refused.Count);
        Assert.StartsWith("  Bundle.entry[0]", refused[0], StringComparison.Ordinal);
        Assert.StartsWith("  Bundle.entry[1]", refused[1], StringComparison.Ordinal);
        Assert.StartsWith("  Bundle.entry[2]", refused[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Importing_a_record_whose_id_is_a_NIR_refuses_it_without_printing_the_NIR()
    {
        // The import's lines end up in job logs: a NIR given as an id is refused (ids are stored in clear) and not echoed.
        var nir = Samples.ValidNir("2690323523804");
        var (exit, output) = await ImportIntoNewTenantAsync("chu-nir-id", "nir-id.json", $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Nirid", id: nir)}} } ] }
            """);
        Assert.True(exit == 1, output);
        Assert.Contains("Bundle.entry[0] (Patient, id withheld): The id is a NIR", output, StringComparison.Ordinal);
        Assert.DoesNotContain(nir, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Importing_a_folder_loads_records_before_their_patients_file_and_names_the_file_and_entry_of_one_whose_patient_is_nowhere()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-order {DbArgs}")).Exit);
        var folder = Path.Combine(_directory, "ordered");
        Directory.CreateDirectory(folder);
        // Files are read in name order: the records come before their patients' file; one names a patient in neither.
        await File.WriteAllTextAsync(Path.Combine(folder, "a-observations.json"), $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [
              { "resource": {{Samples.Observation("Patient/order-late")}} },
              { "resource": {{Samples.Observation("Patient/order-nowhere")}} } ] }
            """);
        await File.WriteAllTextAsync(Path.Combine(folder, "b-patients.json"), $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Tardive", id: "order-late")}} } ] }
            """);
        var (exit, output) = await RunAsync($"import {folder} --tenant chu-order {DbArgs}");
        Assert.True(exit == 1, output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains("ok a-observations.json: 0 created, 0 updated, 0 rejected, 2 waiting for their patient in a later file.", lines);
        Assert.Contains("ok b-patients.json: 1 created, 0 updated, 0 rejected.", lines);
        Assert.Contains("failed records loaded after the patients of later files: 1 created, 0 updated, 1 rejected.", lines);
        Assert.Contains("  a-observations.json Bundle.entry[1] (Observation): Observation.subject names Patient/order-nowhere, which is neither in the store nor loaded by this import (if the import holds it, it was rejected: see its line).", lines);

        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var context = Vauban.Access.AccessContext.Operator((await store.Tenants.FindAsync("chu-order", CancellationToken.None))!, "test");
        var found = await store.Records.SearchAsync(context, "Observation", [new("subject", "Patient/order-late")], null, false, CancellationToken.None);
        Assert.Single(found.Entries);
        var orphans = await store.Records.SearchAsync(context, "Observation", [new("subject", "Patient/order-nowhere")], null, false, CancellationToken.None);
        Assert.Empty(orphans.Entries);
    }

    [Fact]
    public async Task A_transaction_file_that_fails_loads_nothing_and_names_every_entry_refused()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-tx {DbArgs}")).Exit);
        var folder = Path.Combine(_directory, "transactions");
        Directory.CreateDirectory(folder);
        // Two entries that cannot be run: both must be named, not only the first.
        await File.WriteAllTextAsync(Path.Combine(folder, "a-two-bad.json"), $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Moitie", id: "tx-first")}}, "request": { "method": "PUT", "url": "Patient/tx-first" } },
              { "request": { "method": "PATCH", "url": "Patient/tx-first" } },
              { "request": { "method": "GET", "url": "Banane/1" } } ] }
            """);
        // Only the last entry fails, once the others are written: nothing of the file stays.
        await File.WriteAllTextAsync(Path.Combine(folder, "b-last-bad.json"), $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Moitie", id: "tx-second")}}, "request": { "method": "PUT", "url": "Patient/tx-second" } },
              { "resource": {{Samples.Patient(family: "Moitie", id: "tx-third")}}, "request": { "method": "PUT", "url": "Patient/tx-third", "ifMatch": "W/\"3\"" } } ] }
            """);
        await File.WriteAllTextAsync(Path.Combine(folder, "c-good.json"), $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Entier", id: "tx-good")}}, "request": { "method": "PUT", "url": "Patient/tx-good" } } ] }
            """);
        var (exit, output) = await RunAsync($"import {folder} --tenant chu-tx {DbArgs}");
        Assert.True(exit == 1, output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains("failed a-two-bad.json: transaction refused (HTTP 400), nothing loaded:", lines);
        Assert.Contains(lines, l => l.StartsWith("  Bundle.entry[1]: ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("  Bundle.entry[2]: ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("failed b-last-bad.json: transaction refused (HTTP 412), nothing loaded: Bundle.entry[1] (PUT Patient): ", StringComparison.Ordinal));
        Assert.Contains("ok c-good.json: transaction applied.", lines);

        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var context = Vauban.Access.AccessContext.Operator((await store.Tenants.FindAsync("chu-tx", CancellationToken.None))!, "test");
        foreach (var id in new[] { "tx-first", "tx-second", "tx-third" })
            Assert.Equal(Vauban.Records.RecordStatus.NotFound, (await store.Records.ReadAsync(context, "Patient", id, CancellationToken.None)).Status);
        Assert.Equal(Vauban.Records.RecordStatus.Ok, (await store.Records.ReadAsync(context, "Patient", "tx-good", CancellationToken.None)).Status);
    }

    [Fact]
    public async Task A_collection_entry_not_loaded_is_named_by_its_place_in_the_file_not_by_an_id_the_import_assigned()
    {
        // Entries without an id get one at import: an operator cannot find that id in the file, only the entry.
        var (exit, output) = await ImportIntoNewTenantAsync("chu-where", "where.json", $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [
              { "resource": {{Samples.Patient(family: "Charge")}} },
              { "resource": { "resourceType": "Patient", "gender": "banane" } },
              { "resource": { "resourceType": "Banane" } },
              { "resource": { "resourceType": "Patient", "id": "given-1", "gender": "banane" } },
              { "resource": { "gender": "female" } } ] }
            """);
        Assert.True(exit == 1, output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains("failed where.json: 1 created, 0 updated, 4 rejected.", lines);
        Assert.Contains(lines, l => l.StartsWith("  Bundle.entry[1] (Patient): ", StringComparison.Ordinal));
        Assert.Contains("  Bundle.entry[2] (Banane): unsupported resource type.", lines);
        Assert.Contains(lines, l => l.StartsWith("  Bundle.entry[3] (Patient/given-1): ", StringComparison.Ordinal));
        Assert.Contains("  Bundle.entry[4]: the resource has no resourceType.", lines);
    }

    [Fact]
    public async Task A_collection_entry_R4_does_not_allow_is_rejected_and_a_collection_envelope_it_does_not_allow_loads_nothing()
    {
        // A collection's entries carry no request (R4 bdl-3): one that does was loaded as if the request were not there.
        var (exit, output) = await ImportIntoNewTenantAsync("chu-envelope", "entries.json", $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [
              { "resource": {{Samples.Patient(family: "Charge")}} },
              { "resource": {{Samples.Patient(family: "Requete")}}, "request": { "method": "DELETE", "url": "Patient/x" } },
              { "resource": {{Samples.Patient(family: "Faute")}}, "fullUrl": "urn:uuid:0f0e0d0c-0000-4000-8000-00000000000a", "ful": "x" } ] }
            """);
        Assert.True(exit == 1, output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains("failed entries.json: 1 created, 0 updated, 2 rejected.", lines);
        Assert.Contains(lines, l => l.StartsWith("  Bundle.entry[1].request: A collection Bundle's entries have no request", StringComparison.Ordinal));
        Assert.Contains("  Bundle.entry[2].ful: Unknown element 'ful' in Bundle.entry.", lines);

        (exit, output) = await ImportIntoNewTenantAsync("chu-envelope-2", "total.json", $$"""
            { "resourceType": "Bundle", "type": "collection", "total": 1, "entry": [ { "resource": {{Samples.Patient(family: "Charge")}} } ] }
            """);
        Assert.True(exit == 1, output);
        lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains("failed total.json: 0 created, 0 updated, 1 rejected.", lines);
        Assert.Contains("  Bundle.total: A collection Bundle has no total: only a searchset or a history has one (FHIR R4 invariant bdl-1).", lines);
    }

    [Fact]
    public async Task Administrative_reads_at_the_command_line_are_on_the_chain_as_the_consoles_are()
    {
        // The console's reads were audited; their command-line twins (the canaries, the staff's e-mails, the export reasons) were not.
        Assert.Equal(0, (await RunAsync($"tenants add chu-reads {DbArgs}")).Exit);
        var commands = new[] { "guard canaries list", "guard alerts", "guard contained", "guard exports", "guard grants", "users list", "clients list", "audit checkpoints" };
        foreach (var command in commands) Assert.Equal(0, (await RunAsync($"{command} --tenant chu-reads {DbArgs}")).Exit);
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var tenant = (await store.Tenants.FindAsync("chu-reads", CancellationToken.None))!;
        var entries = await store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Actions = [Vauban.Audit.AuditAction.Administration], Count = 100 }, CancellationToken.None) ?? [];
        foreach (var command in commands) Assert.Contains(entries, e => e.Detail.Records.SequenceEqual(["cli:" + command]));
    }

    [Fact]
    public async Task Import_refuses_the_bytes_the_API_refuses_file_by_file_and_reads_a_file_with_a_byte_order_mark()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-bytes {DbArgs}")).Exit);
        var folder = Path.Combine(_directory, "bytes");
        Directory.CreateDirectory(folder);
        static byte[] Collection(string id, string family) =>
            Encoding.UTF8.GetBytes($$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: family, id: id)}} } ] }""");
        // Half a surrogate pair, escaped: it stopped the whole import with an exception, the files after it not loaded.
        await File.WriteAllBytesAsync(Path.Combine(folder, "a-surrogate.json"), Collection("surrogate-1", "Demi\\ud800"));
        // Bytes that are not UTF-8 (0xC3 0x28): they were stored as U+FFFD, where the API refuses them.
        var latin = Collection("latin-1", "Zz__x");
        var at = latin.AsSpan().IndexOf("__"u8);
        latin[at] = 0xC3;
        latin[at + 1] = 0x28;
        await File.WriteAllBytesAsync(Path.Combine(folder, "b-not-utf8.json"), latin);
        // A byte order mark, as editors on Windows write: read as the JSON after it.
        await File.WriteAllBytesAsync(Path.Combine(folder, "c-bom.json"), [0xEF, 0xBB, 0xBF, .. Collection("bom-1", "Marque")]);
        await File.WriteAllBytesAsync(Path.Combine(folder, "d-after.json"), Collection("after-2", "Ensuite"));

        var (exit, output) = await RunAsync($"import {folder} --tenant chu-bytes {DbArgs}");
        Assert.True(exit == 1, output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains(lines, l => l.StartsWith("failed a-surrogate.json: not valid JSON at line ", StringComparison.Ordinal) && l.EndsWith(": a \\u escape encodes half of a UTF-16 surrogate pair, which is no character.", StringComparison.Ordinal));
        Assert.Contains("failed b-not-utf8.json: not valid UTF-8 text, which FHIR JSON must be.", lines);
        Assert.Contains("ok c-bom.json: 1 created, 0 updated, 0 rejected.", lines);
        Assert.Contains("ok d-after.json: 1 created, 0 updated, 0 rejected.", lines);

        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var context = Vauban.Access.AccessContext.Operator((await store.Tenants.FindAsync("chu-bytes", CancellationToken.None))!, "test");
        Assert.Equal(Vauban.Records.RecordStatus.NotFound, (await store.Records.ReadAsync(context, "Patient", "surrogate-1", CancellationToken.None)).Status);
        Assert.Equal(Vauban.Records.RecordStatus.NotFound, (await store.Records.ReadAsync(context, "Patient", "latin-1", CancellationToken.None)).Status);
        Assert.Equal(Vauban.Records.RecordStatus.Ok, (await store.Records.ReadAsync(context, "Patient", "bom-1", CancellationToken.None)).Status);
        Assert.Equal(Vauban.Records.RecordStatus.Ok, (await store.Records.ReadAsync(context, "Patient", "after-2", CancellationToken.None)).Status);
    }

    [Fact]
    public async Task Importing_a_folder_with_no_json_file_fails_instead_of_reporting_nothing_done_as_success()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-empty {DbArgs}")).Exit);
        var folder = Path.Combine(_directory, "export");
        Directory.CreateDirectory(folder);
        await File.WriteAllTextAsync(Path.Combine(folder, "Patient.ndjson"), Samples.Patient(id: "ndjson-1").ReplaceLineEndings(" ") + "\n");
        await CliRunner.UsageErrorAsync($"import {folder} --tenant chu-empty {DbArgs}".Split(' '), $"'{folder}' holds no .json file", "vauban import");
    }

    [Fact]
    public async Task Importing_a_path_that_names_nothing_is_a_usage_error_and_a_folders_files_are_named_by_their_path_under_it()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-paths {DbArgs}")).Exit);
        var (missingExit, missing) = await RunAsync($"import {Path.Combine(_directory, "nowhere.json")} --tenant chu-paths {DbArgs}");
        Assert.True(missingExit == 2, missing);
        Assert.Contains("is neither a file nor a folder", missing, StringComparison.Ordinal);
        // Two b.json in two subfolders: each line says which.
        var folder = Path.Combine(_directory, "nested");
        foreach (var (sub, id) in new[] { ("un", "nested-1"), ("deux", "nested-2") })
        {
            Directory.CreateDirectory(Path.Combine(folder, sub));
            await File.WriteAllTextAsync(Path.Combine(folder, sub, "b.json"), $$"""
                { "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: "Imbrique", id: id)}} } ] }
                """);
        }
        var (exit, output) = await RunAsync($"import {folder} --tenant chu-paths {DbArgs}");
        Assert.True(exit == 0, output);
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains($"ok {Path.Combine("deux", "b.json")}: 1 created, 0 updated, 0 rejected.", lines);
        Assert.Contains($"ok {Path.Combine("un", "b.json")}: 1 created, 0 updated, 0 rejected.", lines);
    }

    [Fact]
    public async Task A_collections_urn_uuid_references_are_rewritten_to_the_entries_they_name_and_a_dangling_one_is_refused()
    {
        var (exit, output) = await ImportIntoNewTenantAsync("chu-urn", "urn.json", $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [
              { "fullUrl": "urn:uuid:5e0c8a52-0d55-4d8a-9a43-6f1b8a3c9e01", "resource": {{Samples.Patient(family: "Référencé", id: "urn-patient-1")}} },
              { "resource": { "resourceType": "Observation", "id": "urn-obs-1", "status": "final", "code": { "text": "glycémie" },
                              "subject": { "reference": "urn:uuid:5e0c8a52-0d55-4d8a-9a43-6f1b8a3c9e01" } } },
              { "resource": { "resourceType": "Observation", "id": "urn-obs-2", "status": "final", "code": { "text": "glycémie" },
                              "subject": { "reference": "urn:uuid:00000000-0000-4000-8000-000000000000" } } } ] }
            """);
        Assert.True(exit == 1, output);
        Assert.Contains("2 created, 0 updated, 1 rejected.", output, StringComparison.Ordinal);
        Assert.Contains("Bundle.entry[2] (Observation/urn-obs-2): the reference 'urn:uuid:00000000-0000-4000-8000-000000000000' names no entry", output, StringComparison.Ordinal);

        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var context = Vauban.Access.AccessContext.Operator((await store.Tenants.FindAsync("chu-urn", CancellationToken.None))!, "test");
        var observation = await store.Records.ReadAsync(context, "Observation", "urn-obs-1", CancellationToken.None);
        Assert.Equal(Vauban.Records.RecordStatus.Ok, observation.Status);
        var json = Encoding.UTF8.GetString(observation.Json!);
        Assert.Contains("\"reference\":\"Patient/urn-patient-1\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("urn:uuid", json, StringComparison.Ordinal);
        Assert.Equal(Vauban.Records.RecordStatus.NotFound, (await store.Records.ReadAsync(context, "Observation", "urn-obs-2", CancellationToken.None)).Status);
    }

    [Theory]
    [InlineData("postgres://vauban:S3cret-pw@127.0.0.1:notaport/vauban", "not a postgres://user:password@host:port/database URI (Invalid URI: Invalid port specified.).")]
    [InlineData("Host=127.0.0.1;Port=abc;Username=vauban;Password=S3cret-pw", "its 2nd part: the port must be a whole number from 1 to 65535.")]
    [InlineData("Host=127.0.0.1;Username=vauban;Colour=blue;Password=S3cret-pw", "its 3rd part does not begin with one of Npgsql's keywords (Host, Port, Database, Username, Password, …)")]
    [InlineData("Host=127.0.0.1;Username=vauban;S3cret-pw", "its 3rd part is not keyword=value; a value holding ';' must be quoted")]
    [InlineData("Host=127.0.0.1;Username=vauban;TIMEOUT=soon;Password=S3cret-pw", "its 3rd part gives TIMEOUT a value it cannot take.")] // as typed, not Npgsql's 'timeout'
    // A port Npgsql takes and no server can listen on failed only when connecting, exit 1, as a server that cannot be reached.
    [InlineData("Host=127.0.0.1;Port=99999;Username=vauban;Password=S3cret-pw", "the port must be a whole number from 1 to 65535.")]
    [InlineData("Host=127.0.0.1;Port=65536;Username=vauban;Password=S3cret-pw", "the port must be a whole number from 1 to 65535.")]
    [InlineData("Host=127.0.0.1;Port=0;Username=vauban;Password=S3cret-pw", "its 2nd part: the port must be a whole number from 1 to 65535.")]
    [InlineData("Host=127.0.0.1;Port=-5;Username=vauban;Password=S3cret-pw", "its 2nd part: the port must be a whole number from 1 to 65535.")]
    [InlineData("postgres://vauban:S3cret-pw@127.0.0.1:0/vauban", "the port must be a whole number from 1 to 65535.")] // was taken as 5432
    [InlineData("postgres://vauban:S3cret-pw@127.0.0.1/vauban?Colour=blue", "the 1st parameter after '?' is not one of Npgsql's keywords")]
    public async Task A_malformed_PostgreSQL_connection_string_is_a_usage_error_that_does_not_repeat_its_password(string db, string problem)
    {
        var printed = await CliRunner.UsageErrorAsync(["tenants", "list", "--db", db, "--master-key-file", Path.Combine(_directory, "master.key")],
            $"--db: the PostgreSQL connection string is not valid: {problem}", "vauban tenants list");
        Assert.DoesNotContain("S3cret-pw", printed, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory, "master.key")));
    }

    /// <summary>A password holding an unquoted ';' is cut there, and the rest read as a part of its own: "'cd;username' is not a
    /// keyword" printed the password's end. The part at fault is named by its position, and no piece of the password is printed.</summary>
    [Theory]
    [InlineData("Host=127.0.0.1;Password=S3cret;pw-tail;Username=vauban", "its 3rd part, after Password=, is not a setting Npgsql can take; if it is a piece of the password (which holds ';'), write the password in quotes (Password='…', a quote inside it doubled).")]
    [InlineData("Host=127.0.0.1;Password=S3cret;pw-tail=x;Username=vauban", "its 3rd part, after Password=, is not a setting Npgsql can take")]
    [InlineData("Host=127.0.0.1;Password=S3cret;;pw-tail;Username=vauban", "its 4th part, after Password=, is not a setting Npgsql can take")]
    [InlineData("Host=127.0.0.1;Password=\"S3cret;pw-tail;Username=vauban", "its 2nd part is not keyword=value")] // a quote left open
    [InlineData("Host=127.0.0.1;Password='S3cret;pw-tail''';Port=99999", "the port must be a whole number from 1 to 65535.")] // quoted: read whole
    // An unencoded '?' or '#' in a URI's password: the rest was read as the query (its key printed) or dropped as a fragment.
    [InlineData("postgres://vauban:S3cret?pw-tail@127.0.0.1/vauban", "not a postgres://user:password@host:port/database URI (Invalid URI: Invalid port specified.)")]
    [InlineData("postgres://vauban:1234?pw-tail@127.0.0.1/vauban", "a '/', '@', '?' or '#' in the user name or password must be percent-encoded")]
    [InlineData("postgres://vauban:1234#pw-tail@127.0.0.1/vauban", "a '/', '@', '?' or '#' in the user name or password must be percent-encoded")]
    public async Task A_password_holding_an_unquoted_separator_is_refused_by_the_position_of_the_part_at_fault_never_by_its_text(string db, string problem)
    {
        string[] secrets = ["S3cret", "pw-tail", "1234"];
        foreach (var (verb, typed) in new[] { ("vauban tenants add", new[] { "tenants", "add", "chu" }), ("vauban serve", ["serve", "--urls", "http://127.0.0.1:0"]) })
        {
            var printed = await CliRunner.UsageErrorAsync([.. typed, "--db", db, "--master-key-file", Path.Combine(_directory, "master.key")],
                $"--db: the PostgreSQL connection string is not valid: {problem}", verb);
            foreach (var secret in secrets) Assert.DoesNotContain(secret, printed, StringComparison.OrdinalIgnoreCase);
        }
        // The store's own opening reads it with the same words.
        var refused = await Assert.ThrowsAsync<VaubanConfigurationException>(() => VaubanStore.OpenAsync(new StoreOptions(db, Vauban.Crypto.MasterKey.Generate()), CancellationToken.None));
        foreach (var secret in secrets) Assert.DoesNotContain(secret, refused.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(File.Exists(Path.Combine(_directory, "master.key")));
    }

    [Theory]
    // A server that cannot be reached is a failure of the verb (1); a string that cannot be read, a usage error (2).
    [InlineData("Server=127.0.0.1;Port=1;Database=vauban;Username=vauban;Password=S3cret-pw", 1, "Cannot open PostgreSQL 127.0.0.1:1/vauban")]
    [InlineData("host=127.0.0.1;port=1;database=vauban;user id=vauban;password=S3cret-pw", 1, "Cannot open PostgreSQL 127.0.0.1:1/vauban")]
    [InlineData("Host = 127.0.0.1; Port = 1; Database = vauban; Password = S3cret-pw", 1, "Cannot open PostgreSQL 127.0.0.1:1/vauban")]
    [InlineData("Database=vauban;Username=vauban;Password=S3cret-pw", 2, "--db: the PostgreSQL connection string is not valid: it names no host")]
    [InlineData("postgres://vauban:12/S3cret-pw@127.0.0.1:1/vauban", 2, "--db: the PostgreSQL connection string is not valid")]
    public async Task A_PostgreSQL_connection_string_in_any_spelling_is_never_taken_for_a_SQLite_path_nor_printed_with_its_password(string db, int code, string error)
    {
        // tenants add may make a new SQLite store: a connection string taken for a path became a file named after it, password included.
        var (exit, output) = await RunAsync(["tenants", "add", "chu", "--db", db, "--master-key-file", Path.Combine(_directory, "master.key")]);
        Assert.Equal(code, exit);
        Assert.StartsWith("error: " + error, output, StringComparison.Ordinal);
        Assert.Equal(code == 1 ? 1 : 2, output.Trim().Split('\n').Length); // a usage error's second line names the verb's help
        Assert.DoesNotContain("S3cret-pw", output, StringComparison.Ordinal);
        Assert.False(File.Exists(db));
    }

    [Theory]
    [InlineData("data/vauban.db", false)]
    [InlineData("/srv/vauban/host=a/v.db", false)]
    [InlineData("/srv/vauban;hospital/v=1.db", false)]
    [InlineData("Host=db.example;Database=vauban", true)]
    [InlineData("SERVER=db.example;Database=vauban", true)]
    [InlineData("Database=vauban;Pwd=x", true)]
    [InlineData("postgresql://vauban@db.example/vauban", true)]
    [InlineData("User Id = vauban; Server = db.example", true)]
    [InlineData("Hots=db.example;Pasword=x", true)] // every keyword misspelt: refused as a connection string, never a file made
    [InlineData("v=1.db", true)]
    [InlineData("./v=1.db", false)] // a SQLite file named like key=value, written with its folder
    [InlineData("/srv/vauban/v=1.db", false)]
    [InlineData("backup-2026=old.db", false)]
    public void What_db_names_a_PostgreSQL_store_and_what_a_SQLite_file(string db, bool postgres) =>
        Assert.Equal(postgres, VaubanStore.IsPostgresConnectionString(db));

    /// <summary>A new establishment with one patient, loaded by `vauban import` (a collection Bundle).</summary>
    private async Task AddTenantWithOnePatientAsync(string tenant, string family, string id)
    {
        Assert.Equal(0, (await RunAsync($"tenants add {tenant} {DbArgs}")).Exit);
        var collection = Path.Combine(_directory, id + ".json");
        await File.WriteAllTextAsync(collection, $$"""{ "resourceType": "Bundle", "type": "collection", "entry": [ { "resource": {{Samples.Patient(family: family, id: id)}} } ] }""");
        Assert.Equal(0, (await RunAsync($"import {collection} --tenant {tenant} {DbArgs}")).Exit);
    }

    [Fact]
    public async Task VAUBAN_AUDIT_JOURNAL_puts_the_audit_journal_where_the_operator_says_and_nowhere_else()
    {
        var journals = Path.Combine(_directory, "journals-elsewhere");
        var before = Environment.GetEnvironmentVariable("VAUBAN_AUDIT_JOURNAL");
        Environment.SetEnvironmentVariable("VAUBAN_AUDIT_JOURNAL", journals);
        try
        {
            await AddTenantWithOnePatientAsync("chu-journal", "Journal", "journaled-1");
            // Reading a patient's access history is itself a read-side act: journaled, then copied onto the chain.
            var history = await RunAsync($"audit patient journaled-1 --tenant chu-journal {DbArgs}");
            Assert.True(history.Exit == 0, history.Output);
        }
        finally
        {
            Environment.SetEnvironmentVariable("VAUBAN_AUDIT_JOURNAL", before);
        }
        Assert.True(Directory.Exists(journals));
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(journals));
        Assert.Empty(Directory.GetFiles(journals)); // everything journaled is on the chain: the file is gone
        Assert.False(Directory.Exists(Path.Combine(_directory, "v.db") + "-audit"));
        // The entry the history read journaled is on the chain: the next history lists it.
        var next = await RunAsync($"audit patient journaled-1 --tenant chu-journal {DbArgs}");
        Assert.Contains("(2 entries", next.Output, StringComparison.Ordinal);
        Assert.Contains("consulted the audit log", next.Output, StringComparison.Ordinal);
        // Reviewing the log is system administration, not care; the operator's own words are kept beside it.
        var review = Assert.Single(next.Output.Split('\n'), l => l.Contains("consulted the audit log", StringComparison.Ordinal));
        Assert.Contains("health system administration (HSYSADMIN) — stated purpose: patient access history report", review, StringComparison.Ordinal);
        Assert.DoesNotContain("TREAT", review, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_demo_sets_up_its_establishment_staff_and_client_as_administrative_acts_on_its_audit_chain()
    {
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var original = Console.Out;
        Console.SetOut(TextWriter.Null);
        try
        {
            await Vauban.Cli.Demo.EnsureAsync(store, "http://127.0.0.1:8080", null, CancellationToken.None);
            await Vauban.Cli.Demo.EnsureAsync(store, "http://127.0.0.1:8080", null, CancellationToken.None); // a restart: a new client only
        }
        finally
        {
            Console.SetOut(original);
        }
        var tenant = (await store.Tenants.FindAsync(Vauban.Cli.Demo.TenantName, CancellationToken.None))!;
        var acts = (await store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Actions = [Vauban.Audit.AuditAction.Administration], Count = 100 }, CancellationToken.None))!
            .Select(e => e.Detail.Note ?? "").ToList();
        Assert.Single(acts, n => n.StartsWith("tenants add", StringComparison.Ordinal));
        Assert.Equal(7, acts.Count(n => n.StartsWith("users add", StringComparison.Ordinal)));
        Assert.Equal(2, acts.Count(n => n.StartsWith("clients add", StringComparison.Ordinal)));
        // The restart's client replaced the first one: one live full-access demo secret at a time.
        Assert.Single(acts, n => n.StartsWith("clients revoke", StringComparison.Ordinal));
        var clients = await store.Clients.ListAsync(tenant, CancellationToken.None);
        Assert.Equal(2, clients.Count);
        Assert.All(clients, c => Assert.Equal(Vauban.Access.KnownPurposes.Treatment, c.Purpose)); // the demo's client is a care client
        Assert.Single(clients, c => !c.Revoked);
        Assert.True(clients[0].Revoked);
        Assert.True((await store.AuditLog.VerifyAsync(tenant.Id, null, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task The_demo_is_refused_in_a_store_that_holds_real_establishments_and_adds_nothing()
    {
        // A --demo left in a service file put 500 synthetic patients and a full-access client into the store in use.
        Assert.Equal(0, (await RunAsync($"tenants add chu-reel {DbArgs}")).Exit);
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => Vauban.Cli.Demo.EnsureAsync(store, "http://127.0.0.1:8080", null, CancellationToken.None));
        Assert.Contains("--demo: this store already holds the establishment 'chu-reel'", refused.Message, StringComparison.Ordinal);
        Assert.Equal(["chu-reel"], (await store.Tenants.ListAsync(CancellationToken.None)).Select(t => t.Name));
    }

    [Fact]
    public async Task The_demo_is_refused_once_a_real_establishment_is_added_to_its_store()
    {
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var original = Console.Out;
        Console.SetOut(TextWriter.Null);
        try
        {
            await Vauban.Cli.Demo.EnsureAsync(store, "http://127.0.0.1:8080", null, CancellationToken.None);
        }
        finally
        {
            Console.SetOut(original);
        }
        await store.Tenants.AddAsync("chu-reel", CancellationToken.None);
        var demo = (await store.Tenants.FindAsync(Vauban.Cli.Demo.TenantName, CancellationToken.None))!;
        var clients = (await store.Clients.ListAsync(demo, CancellationToken.None)).Count;
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => Vauban.Cli.Demo.EnsureAsync(store, "http://127.0.0.1:8080", null, CancellationToken.None));
        Assert.Contains("'chu-reel'", refused.Message, StringComparison.Ordinal);
        Assert.Equal(clients, (await store.Clients.ListAsync(demo, CancellationToken.None)).Count); // no new full-access client
    }

    [Fact]
    public async Task An_establishment_that_seed_creates_begins_its_chain_with_that_administrative_act()
    {
        var seeded = await RunAsync($"seed --tenant chu-seeded --patients 2 {DbArgs}");
        Assert.True(seeded.Exit == 0, seeded.Output);
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None);
        var tenant = (await store.Tenants.FindAsync("chu-seeded", CancellationToken.None))!;
        var acts = (await store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Actions = [Vauban.Audit.AuditAction.Administration], Count = 100 }, CancellationToken.None))!;
        var created = Assert.Single(acts, e => (e.Detail.Note ?? "").StartsWith("tenants add", StringComparison.Ordinal));
        Assert.Equal(1, created.Sequence);
    }

    [Fact]
    public async Task A_damaged_record_met_by_a_command_is_one_error_line_not_a_stack_trace()
    {
        await AddTenantWithOnePatientAsync("chu-damaged", "Abîmé", "damaged-1");
        await using (var connection = await SqliteAsync()) await ExecuteAsync(connection, "UPDATE resources SET body = substr(body, 1, 20) WHERE id = 'damaged-1'");
        var bundle = Path.Combine(_directory, "read.json");
        await File.WriteAllTextAsync(bundle, """{ "resourceType": "Bundle", "type": "transaction", "entry": [ { "request": { "method": "GET", "url": "Patient/damaged-1" } } ] }""");
        var (exit, output) = await RunAsync($"import {bundle} --tenant chu-damaged {DbArgs}");
        Assert.Equal(1, exit);
        // The transaction's read is refused like any failed entry, saying why.
        Assert.Contains("Patient/damaged-1 cannot be shown: its stored copy failed the integrity check", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.Single(output.Trim().Split('\n'));
    }

    [Fact]
    public async Task A_patients_access_history_names_the_service_of_whoever_opened_the_record()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-service {DbArgs}")).Exit);
        var collection = Path.Combine(_directory, "service.json");
        await File.WriteAllTextAsync(collection, $$"""
            { "resourceType": "Bundle", "type": "collection", "entry": [
              { "resource": { "resourceType": "Organization", "id": "cardio", "name": "Cardiologie\tB" } },
              { "resource": {{Samples.Patient(family: "Suivi", id: "followed-1")}} } ] }
            """);
        Assert.Equal(0, (await RunAsync($"import {collection} --tenant chu-service {DbArgs}")).Exit);
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None))
        {
            var tenant = (await store.Tenants.FindAsync("chu-service", CancellationToken.None))!;
            foreach (var service in new[] { "cardio", "gone-1" })
            {
                var person = new Vauban.Access.Principal(Vauban.Access.PrincipalKind.Person, "user-" + service, "Dr Claire Martin", Vauban.Access.SmartScopes.None)
                    { Role = Vauban.Access.StaffRole.Physician, Service = service };
                await store.Audit.AppendAsync(new Vauban.Access.AccessContext(person, tenant, "TREAT", "10.0.0.7"), Vauban.Audit.AuditAction.Read, Vauban.Audit.AuditOutcome.Success,
                    "Patient", [new Vauban.Audit.AuditedRecord("Patient", "followed-1", "followed-1")], CancellationToken.None);
            }
        }

        var history = await RunAsync($"audit patient followed-1 --tenant chu-service {DbArgs}");
        Assert.True(history.Exit == 0, history.Output);
        var lines = history.Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("Dr Claire Martin\tphysician\tCardiologie B (Organization/cardio)\t", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Dr Claire Martin\tphysician\tOrganization/gone-1\t", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_patients_access_history_goes_past_a_thousand_entries_and_says_when_it_stops_at_the_limit()
    {
        await AddTenantWithOnePatientAsync("chu-long", "Long", "long-1");
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(Path.Combine(_directory, "v.db"), Vauban.Crypto.MasterKey.Load(Path.Combine(_directory, "master.key"), null)), CancellationToken.None))
        {
            var tenant = (await store.Tenants.FindAsync("chu-long", CancellationToken.None))!;
            var client = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.ApiClient, "c-1", "lab robot", Vauban.Access.SmartScopes.None), tenant, "TREAT");
            await Task.WhenAll(Enumerable.Range(0, 1_205).Select(_ => store.Audit.AppendAsync(client, Vauban.Audit.AuditAction.Read, Vauban.Audit.AuditOutcome.Success,
                "Patient", [new Vauban.Audit.AuditedRecord("Patient", "long-1", "long-1")], CancellationToken.None)));
        }
        static string[] Rows(string output) => output.Split('\n').Where(l => l.Length > 0 && char.IsAsciiDigit(l[0])).ToArray();

        var cut = await RunAsync($"audit patient long-1 --tenant chu-long --limit 1100 {DbArgs}");
        Assert.True(cut.Exit == 0, cut.Output);
        Assert.Equal(1_100, Rows(cut.Output).Length);
        Assert.Contains("(1,100 entries, newest first)", cut.Output, StringComparison.Ordinal);
        Assert.Contains("older entries not shown: --limit 1,100 reached", cut.Output, StringComparison.Ordinal);

        var all = await RunAsync($"audit patient long-1 --tenant chu-long --limit 1000000 {DbArgs}");
        var rows = Rows(all.Output);
        Assert.Equal(1_205, rows.Count(r => r.Contains("\tlab robot\t", StringComparison.Ordinal)));
        Assert.Contains("imported", rows[^1], StringComparison.Ordinal); // the oldest: the import that created the patient
        Assert.DoesNotContain("older entries not shown", all.Output, StringComparison.Ordinal);
        var over = await RunAsync($"audit patient long-1 --tenant chu-long --limit 1000001 {DbArgs}");
        Assert.Equal(2, over.Exit);
        Assert.Contains("--limit must be between 1 and 1,000,000.", over.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_officer_verifies_the_audit_log_reads_a_patients_access_history_and_exports_checkpoints()
    {
        await AddTenantWithOnePatientAsync("chu-audit", "Suivi", "audited-1");

        var verified = await RunAsync($"audit verify --tenant chu-audit {DbArgs}");
        Assert.True(verified.Exit == 0, verified.Output);
        Assert.Contains("chu-audit: OK", verified.Output, StringComparison.Ordinal);
        // The lookups are built behind the chain: however far they reach, the report says so without a range "1 to 0".
        var lookups = await RunAsync($"audit verify --lookups --tenant chu-audit {DbArgs}");
        Assert.True(lookups.Exit == 0, lookups.Output);
        Assert.Matches("chu-audit: lookups (OK — entries 1 to [1-9]|not built yet for any of the [1-9])", lookups.Output);

        var history = await RunAsync($"audit patient audited-1 --tenant chu-audit {DbArgs}");
        Assert.True(history.Exit == 0, history.Output);
        Assert.Contains("imported", history.Output, StringComparison.Ordinal);
        Assert.Contains("Patient/audited-1", history.Output, StringComparison.Ordinal);
        Assert.Contains("command line", history.Output, StringComparison.Ordinal);
        Assert.Equal(2, (await RunAsync($"audit patient not/an-id --tenant chu-audit {DbArgs}")).Exit); // no Patient id: a usage error

        var exported = await RunAsync($"audit checkpoints --tenant chu-audit {DbArgs}");
        Assert.Equal(0, exported.Exit);
        Assert.Contains("BEGIN PUBLIC KEY", exported.Output, StringComparison.Ordinal);
        Assert.Contains("\"signature\"", exported.Output, StringComparison.Ordinal);

        // An outside witness keeps the export; verifying against it reproduces its tree heads.
        var witness = Path.Combine(_directory, "witness.json");
        await File.WriteAllTextAsync(witness, exported.Output);
        var witnessed = await RunAsync($"audit verify --witness {witness} {DbArgs}");
        Assert.True(witnessed.Exit == 0, witnessed.Output);
        Assert.Contains("witnessed tree heads reproduced", witnessed.Output, StringComparison.Ordinal);
        await File.WriteAllTextAsync(witness, "{\"tenant\": \"chu-audit\"}");
        // A witness that cannot be read as one is a usage error (exit 2), as a missing one is: nothing was verified.
        var unreadable = await RunAsync($"audit verify --witness {witness} {DbArgs}");
        Assert.Equal(2, unreadable.Exit);
        Assert.Contains("is not a checkpoint export", unreadable.Output, StringComparison.Ordinal);
        // An export holding no tree head witnesses nothing: it passed as "0 witnessed tree heads reproduced".
        await File.WriteAllTextAsync(witness, "{\"tenant\": \"chu-audit\", \"checkpoints\": []}");
        var empty = await RunAsync($"audit verify --witness {witness} {DbArgs}");
        Assert.Equal(2, empty.Exit);
        Assert.Contains("holds no tree head", empty.Output, StringComparison.Ordinal);

        // Someone with the file deletes the first entry: verify says where, and exits 3.
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_directory, "v.db")};Pooling=False"))
        {
            await connection.OpenAsync();
            await using var delete = connection.CreateCommand();
            delete.CommandText = "DELETE FROM audit_entries WHERE seq = 1";
            Assert.Equal(1, await delete.ExecuteNonQueryAsync());
        }
        var broken = await RunAsync($"audit verify {DbArgs}");
        Assert.Equal(3, broken.Exit);
        Assert.Contains("chu-audit: BROKEN at entry 1", broken.Output, StringComparison.Ordinal);
    }

    /// <summary>A verb holding the master key that another process rotates while it runs cannot sign its last audit entries: it
    /// says so on standard error, as `serve` says it in its log — the establishment's number, and what to do — never a key or
    /// its fingerprint. Before, only the server said it: a command line left them unsigned without a word.</summary>
    [Fact]
    public async Task A_verb_whose_master_key_another_process_rotates_meanwhile_warns_that_it_left_audit_entries_unsigned()
    {
        Assert.Equal(0, (await RunAsync($"tenants add chu-unsigned {DbArgs}")).Exit);
        var (db, keyFile) = (Path.Combine(_directory, "v.db"), Path.Combine(_directory, "master.key"));
        var previous = Vauban.Crypto.MasterKey.Load(keyFile, null);
        var next = Vauban.Crypto.MasterKey.Generate();
        long tenantId = 0;
        VaubanStore? rotating = null;
        // `users add` has written the account and its entry when it prints the link: the other process rotates the key then. It
        // stays open until the verb has ended (closing, it would sign over the verb's entries with the new key before the verb tried).
        using var output = new FirstWriteWriter(() => Task.Run(async () =>
        {
            rotating = await VaubanStore.OpenAsync(new StoreOptions(db, previous), CancellationToken.None);
            tenantId = (await rotating.Tenants.FindAsync("chu-unsigned", CancellationToken.None))!.Id;
            await rotating.RotateMasterKeyAsync(next, t => Vauban.Access.AccessContext.Operator(t, "administration"), CancellationToken.None);
        }).GetAwaiter().GetResult());
        using var error = new StringWriter();
        int exit;
        try
        {
            exit = await CliRunner.RunAsync(["users", "add", "--tenant", "chu-unsigned", "--email", "admin@chu.example", "--role", "Administrator", .. DbArgs.Split(' ')],
                output, error);
        }
        finally
        {
            if (rotating is not null) await rotating.DisposeAsync();
        }

        Assert.True(exit == 0, output + error.ToString());
        Assert.Contains("Account created", output.ToString(), StringComparison.Ordinal);
        var warnings = error.ToString().Split('\n').Where(line => line.StartsWith("warning: ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(warnings);
        Assert.All(warnings, warning => Assert.StartsWith(
            $"warning: Audit entries of establishment {tenantId} are left unsigned: the store's master key was rotated by another process", warning, StringComparison.Ordinal));
        foreach (var key in new[] { previous, next }) Assert.DoesNotContain(key.Fingerprint, error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>Standard output that runs <paramref name="first"/> once, before the command's first words are written.</summary>
    private sealed class FirstWriteWriter(Action first) : StringWriter(System.Globalization.CultureInfo.InvariantCulture)
    {
        private Action? _first = first;

        private void Once() => Interlocked.Exchange(ref _first, null)?.Invoke();

        public override void Write(char value)
        {
            Once();
            base.Write(value);
        }

        public override void Write(string? value)
        {
            Once();
            base.Write(value);
        }

        public override void Write(char[] buffer, int index, int count)
        {
            Once();
            base.Write(buffer, index, count);
        }

        public override void WriteLine(string? value)
        {
            Once();
            base.WriteLine(value);
        }
    }
}
