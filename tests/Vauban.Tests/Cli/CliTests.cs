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

    private static async Task<(int Exit, string Output)> RunAsync(string arguments)
    {
        var output = new StringWriter();
        var original = Console.Out;
        var originalError = Console.Error;
        Console.SetOut(output);
        Console.SetError(output);
        try
        {
            var exit = await Program.Main(arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            return (exit, output.ToString());
        }
        finally
        {
            Console.SetOut(original);
            Console.SetError(originalError);
        }
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("serve --help")]
    [InlineData("tenants add --help")]
    [InlineData("clients add --help")]
    [InlineData("seed --help")]
    [InlineData("import --help")]
    public async Task Every_verb_has_help(string arguments)
    {
        var (exit, output) = await RunAsync(arguments);
        Assert.Equal(0, exit);
        Assert.Contains("Usage:", output);
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

        var badScope = await RunAsync($"clients add --tenant clinique-test --name x --scopes system/Spaceship.rs {DbArgs}");
        Assert.Equal(1, badScope.Exit);
        Assert.Contains("Spaceship", badScope.Output);

        var limited = await RunAsync($"clients add --tenant clinique-test --name lab-link --scopes system/Observation.rs --patients p-1,p-2 --own-resources-only {DbArgs}");
        Assert.Equal(0, limited.Exit);
        Assert.Contains("2 patient(s)", limited.Output, StringComparison.Ordinal);
        var badLimit = await RunAsync($"clients add --tenant clinique-test --name x --scopes system/*.rs --patients not/an-id {DbArgs}");
        Assert.Equal(1, badLimit.Exit);
        Assert.Contains("patient limit", badLimit.Output, StringComparison.Ordinal);

        var seeded = await RunAsync($"seed --tenant clinique-test --patients 50 {DbArgs}");
        Assert.True(seeded.Exit == 0, seeded.Output);
        Assert.Contains("patients/s", seeded.Output);

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

        // The data is there, through the API, with the client registered above.
        var clientId = output.Split('\n').Single(l => l.StartsWith("client_id:", StringComparison.Ordinal)).Split(':', 2)[1].Trim();
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
            var token = (await tokenResponse.BodyAsync()).GetProperty("access_token").GetString();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var count = await http.GetAsync("/fhir/Patient?_summary=count");
            Assert.Equal(52, (await count.BodyAsync()).GetProperty("total").GetInt32());
            using var importedPatient = await http.GetAsync("/fhir/Patient?family=importe&_revinclude=Observation:patient");
            Assert.Equal(2, (await importedPatient.BodyAsync()).GetProperty("entry").GetArrayLength());
            using var collected = await http.GetAsync("/fhir/Patient/collected-1");
            Assert.Equal(HttpStatusCode.OK, collected.StatusCode);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_wrong_master_key_is_a_clear_error_not_a_crash()
    {
        Assert.Equal(0, (await RunAsync($"tenants add t1 {DbArgs}")).Exit);
        Assert.Equal(0, (await RunAsync($"seed --tenant t1 --patients 1 {DbArgs}")).Exit);
        var other = Path.Combine(_directory, "other.key");
        var (exit, output) = await RunAsync($"seed --tenant t1 --patients 1 --db {Path.Combine(_directory, "v.db")} --master-key-file {other}");
        Assert.Equal(1, exit);
        Assert.Contains("another master key", output);
    }
}

[CollectionDefinition("console", DisableParallelization = true)]
public class ConsoleCollection;
