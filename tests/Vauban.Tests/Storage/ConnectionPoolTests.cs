// Requests that fill the database's connection pool must not wait on one another through the store's own look-ups. Each
// write transaction holds a connection; the key ring's recheck of the establishment's keys (every 30 s, one caller looks and
// the others wait for what it finds) and the guard's refresh used to take a second one from the same pool. A black-box probe
// sent 40 large transactions at once to a PostgreSQL server: the 32 holding the pool waited for the recheck, the recheck
// waited for a connection, and after the pool's 15-second timeout all 40 failed with 503, and so did a plain read beside them.
using System.Net;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Storage;

public abstract class ConnectionPoolTests(Engine engine) : IAsyncLifetime
{
    private const int Transactions = 10;
    private const int ObservationsEach = 60;
    private VaubanServer _server = null!;

    public async Task InitializeAsync() =>
        // A pool of 4 with a 5-second wait: what 40 transactions did to the default pool of 32, with fewer of them. No remembered
        // decisions: every write of a person asks the policy whether she may open the patient.
        _server = await VaubanServer.StartAsync(engine, configure: o => (engine == Engine.Postgres ? o with { Db = o.Db + ";Maximum Pool Size=4;Timeout=5" } : o) with
        {
            Access = new Vauban.Access.AccessOptions { DecisionCacheLifetime = TimeSpan.Zero, RefusalCacheLifetime = TimeSpan.Zero },
        });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static string Transaction(int n)
    {
        var patient = "urn:uuid:" + Guid.NewGuid();
        var observations = Enumerable.Range(0, ObservationsEach).Select(_ =>
            $$"""{ "fullUrl": "urn:uuid:{{Guid.NewGuid()}}", "resource": {{Samples.Observation(patient)}}, "request": { "method": "POST", "url": "Observation" } }""");
        return $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "{{patient}}", "resource": {{Samples.Patient(family: "Piscine" + (char)('a' + n))}}, "request": { "method": "POST", "url": "Patient" } },
              {{string.Join(",\n", observations)}} ] }
            """;
    }

    [Fact]
    public async Task Transactions_that_fill_the_connection_pool_all_commit_while_the_keys_are_rechecked()
    {
        using var api = await _server.ClientAsync("chu-piscine");
        // Every request looks again at the establishment's keys: some look while the transactions hold every connection.
        _server.Store.Keys.Recheck = TimeSpan.Zero;
        var bundles = Enumerable.Range(0, Transactions).Select(Transaction).ToList();
        using var start = new SemaphoreSlim(0);
        var sent = bundles.Select(async bundle =>
        {
            await start.WaitAsync();
            using var response = await api.PostAsync("/fhir", FhirContent.Json(bundle));
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        }).ToList();
        start.Release(Transactions);
        var results = await Task.WhenAll(sent);
        Assert.All(results, r => Assert.True(r.StatusCode == HttpStatusCode.OK, $"{(int)r.StatusCode} {r.Body[..Math.Min(r.Body.Length, 400)]}"));
        using var count = await api.GetAsync("/fhir/Observation?_summary=count");
        Assert.Equal(Transactions * ObservationsEach, (await count.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task A_persons_writes_that_fill_the_connection_pool_all_commit_while_the_policy_asks_of_her_patients()
    {
        // Each write of a person asks, of committed data, whether she may open the patient: a second connection while her
        // transaction holds one. On a pool of 4, 7 of 10 such writes at once failed (a review's probe).
        var tenant = await _server.Store.Tenants.AddAsync("chu-piscine-2", CancellationToken.None);
        var practitioner = await _server.CreateAsOperatorAsync(tenant, Samples.Practitioner("Nageur", "10000000009"));
        var patients = new List<string>();
        for (var i = 0; i < Transactions; i++)
        {
            var patient = await _server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Bassin" + (char)('a' + i)));
            await _server.CreateAsOperatorAsync(tenant, Samples.Encounter(patient, practitioner, DateTimeOffset.UtcNow.AddDays(-1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)));
            patients.Add(patient);
        }
        Vauban.Access.SmartScopes.TryParse("user/*.cruds", Vauban.Records.TypeCodes.Names, out var scopes, out _);
        var physician = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.Person, "user:nageur", "Dr Nageur", scopes)
        {
            Role = Vauban.Access.StaffRole.Physician, Practitioner = practitioner, SessionId = "s-nageur", AuthenticatedAt = DateTimeOffset.UtcNow.AddMinutes(-1),
        }, tenant, "TREAT");
        using var start = new SemaphoreSlim(0);
        var writes = patients.Select(async patient =>
        {
            await start.WaitAsync();
            using var body = System.Text.Json.JsonDocument.Parse(Samples.Observation("Patient/" + patient));
            return await _server.Store.Records.CreateAsync(physician, "Observation", body.RootElement, null, CancellationToken.None);
        }).ToList();
        start.Release(Transactions);
        var results = await Task.WhenAll(writes);
        Assert.All(results, r => Assert.True(r.Status == Vauban.Records.RecordStatus.Created, $"{r.Status} {string.Join(" ", r.Issues?.Select(i => i.Diagnostics) ?? [])}"));
    }
}

public sealed class ConnectionPoolTests_Sqlite() : ConnectionPoolTests(Engine.Sqlite);

public sealed class ConnectionPoolTests_Postgres() : ConnectionPoolTests(Engine.Postgres);
