// ADR 0014, the grants: whoever can write the database but does not hold the master key (a DBA, a reporting tool's role, an
// injection in another application, a backup tampered with and restored) writes a break-the-glass grant for a person — or stretches,
// moves or hands over a real one — to open a patient's whole record outside the ceremony: no reason stated, no alert to the officer,
// and the reads counted as emergency access. Each attack is run with raw SQL behind the server's back and seen where it would be
// used: a physician's session on /fhir (a read, a search, a count), her own list of grants, the officer's, the guard. On both engines.
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public abstract class GrantTamperTests(Engine engine) : IAsyncLifetime
{
    private const string Password = "tourmaline ferry quietly 42";
    private const string Physician = "claire.martin@chu.example";
    private const string Colleague = "paul.durand@chu.example";
    private const string Explanation = "unconscious, brought in by ambulance";
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private string _outside = "", _other = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(engine, configure: o => o with { Time = _time });
        _tenant = await _server.Store.Tenants.AddAsync("chu-grants", None);
        // Two patients in no one's care: only a grant opens them.
        _outside = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Inconnu"));
        _other = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Autre"));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<StaffClient> SignedInAsync(string email, string practitioner)
    {
        var secret = await StaffClient.EnrolledAsync(_server, _tenant, email, StaffRole.Physician, practitioner, Password, _time);
        return await StaffClient.SignedInAsync(_server.BaseAddress, _tenant.Name, email, Password, secret, _time);
    }

    private async Task<string> PrincipalAsync(string email) => StaffUser.PrincipalPrefix + (await _server.Store.Accounts.FindAsync(_tenant, email, None))!.Id;

    private static AccessContext Person(Tenant tenant, string principal) =>
        new(new Principal(PrincipalKind.Person, principal, "Dr Martin", StaffUser.PersonScopes) { Role = StaffRole.Physician }, tenant, KnownPurposes.Treatment);

    /// <summary>The ceremony, as a physician at the bedside goes through it over FHIR (just signed in: both factors fresh).</summary>
    private async Task<HttpStatusCode> BreakGlassAsync(StaffClient staff, string patient)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/fhir/Patient/{patient}/$break-the-glass")
        {
            Content = FhirContent.Json($$"""{ "resourceType": "Parameters", "parameter": [ { "name": "reason", "valueCode": "emergency" }, { "name": "text", "valueString": "{{Explanation}}" } ] }"""),
        };
        request.Headers.Add("Origin", _server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using var response = await staff.Http.SendAsync(request);
        return response.StatusCode;
    }

    private static async Task<HttpStatusCode> ReadAsync(StaffClient staff, string patient)
    {
        using var response = await staff.Http.GetAsync($"/fhir/Patient/{patient}");
        return response.StatusCode;
    }

    /// <summary>The ids a search of every patient finds, and the count of <c>_summary=count</c> (the policy's SQL filter).</summary>
    private static async Task<(List<string> Ids, int Count)> SearchAsync(StaffClient staff)
    {
        var bundle = await staff.Http.GetFromJsonAsync<JsonElement>("/fhir/Patient?_count=50");
        var ids = bundle.TryGetProperty("entry", out var entries) ? entries.EnumerateArray().Select(e => e.GetProperty("resource").GetProperty("id").GetString()!).ToList() : [];
        var count = (await staff.Http.GetFromJsonAsync<JsonElement>("/fhir/Patient?_summary=count")).GetProperty("total").GetInt32();
        return (ids, count);
    }

    /// <summary>Past what the policy remembers of a decision (an allowance, 60 s) and of a person's grants (5 s).</summary>
    private void PastThePolicysMemory() => _time.Advance(_server.Store.Policy.Options.DecisionCacheLifetime + TimeSpan.FromSeconds(1));

    private async Task<IReadOnlyList<SecurityAlert>> RowAlertsAsync()
    {
        await _server.Store.AccessRows.FlushAsync();
        return [.. (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None)).Where(a => a.Kind == KnownAlertKinds.RowIntegrity)];
    }

    private async Task<long> GrantIdAsync(string patient) => await Storage.StoreOperationsTests.ScalarAsync(_server.Db, $"SELECT id FROM break_glass WHERE patient = '{patient}'");

    [Fact]
    public async Task A_grant_inserted_in_the_database_opens_no_patient_and_is_reported_once_without_the_patient()
    {
        using var staff = await SignedInAsync(Physician, "pract-1");
        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(staff, _outside));
        var principal = await PrincipalAsync(Physician);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await _server.ExecuteSqlAsync("INSERT INTO break_glass (tenant_id, principal, session, patient, reason, granted_at, expires_at) "
            + $"VALUES ({_tenant.Id}, '{principal}', NULL, '{_outside}', 'emergency', {now}, {now + (long)TimeSpan.FromDays(1).TotalMilliseconds})");
        PastThePolicysMemory();

        // Refused as a patient outside her care: read, search and count alike.
        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(staff, _outside));
        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(staff, _outside));
        var (ids, count) = await SearchAsync(staff);
        Assert.DoesNotContain(_outside, ids);
        Assert.Equal(0, count);
        // Not hers on her list; on the officer's as what it is; no emergency access to the guard.
        var context = Person(_tenant, principal);
        Assert.Empty(await _server.Store.BreakTheGlass.ActiveAsync(context, None));
        Assert.Equal(BreakTheGlass.NotAuthenticExplanation, Assert.Single(await _server.Store.BreakTheGlass.ReviewAsync(_tenant, 10, None)).Explanation);
        await _server.Store.Guard.LoadAsync(None);
        Assert.False(_server.Store.Guard.UnderBreakTheGlass(_tenant.Id, context.Principal, _outside));

        // Told once to the establishment's officer and to the log, by the grant's id and holder: never the patient.
        var id = await GrantIdAsync(_outside);
        var alert = Assert.Single(await RowAlertsAsync());
        Assert.Contains($"break-the-glass grant {id} of {principal} in break_glass does not carry the store's authentication", alert.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(_outside, alert.Detail, StringComparison.Ordinal);
        var logs = _server.AllLogs();
        Assert.Single(logs.Split('\n'), l => l.Contains("A row that grants access was refused", StringComparison.Ordinal) && l.Contains("break_glass", StringComparison.Ordinal));
        Assert.DoesNotContain(_outside, logs, StringComparison.Ordinal);
        Assert.Contains((await _server.Store.AccessRows.VerifyAsync(_tenant.Id, None)).Unauthentic, r => r.Table == "break_glass" && r.Id == id.ToString(CultureInfo.InvariantCulture));

        // Nor on another server, in its searches' SQL filter (which tells the officer once more: once per row and process).
        await using var second = await SecondServerAsync();
        Assert.Equal(RecordStatus.Forbidden, (await second.Records.ReadAsync(context, "Patient", _outside, None)).Status);
        Assert.Empty(await SqlFilteredIdsAsync(second, context));
    }

    [Theory]
    [InlineData("expires_at")]
    [InlineData("patient")]
    [InlineData("principal")]
    public async Task A_real_grant_whose_end_patient_or_holder_is_changed_in_the_database_stops_granting(string column)
    {
        using var staff = await SignedInAsync(Physician, "pract-1");
        using var colleague = await SignedInAsync(Colleague, "pract-2");
        Assert.Equal(HttpStatusCode.OK, await BreakGlassAsync(staff, _outside));
        Assert.Equal(HttpStatusCode.OK, await ReadAsync(staff, _outside));
        var id = await GrantIdAsync(_outside);
        var change = column switch
        {
            "expires_at" => "expires_at = expires_at + 2592000000", // a month more
            "patient" => $"patient = '{_other}'",
            _ => $"principal = '{await PrincipalAsync(Colleague)}'",
        };
        await _server.ExecuteSqlAsync($"UPDATE break_glass SET {change} WHERE id = {id}");
        PastThePolicysMemory();

        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(staff, _outside));
        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(staff, _other));
        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(colleague, _outside));
        Assert.Equal(0, (await SearchAsync(staff)).Count);
        Assert.Equal(0, (await SearchAsync(colleague)).Count);
        Assert.Contains($"break-the-glass grant {id} of ", Assert.Single(await RowAlertsAsync()).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_real_grant_opens_its_patient_to_its_holder_alone_here_and_on_another_server_and_is_listed()
    {
        using var staff = await SignedInAsync(Physician, "pract-1");
        using var colleague = await SignedInAsync(Colleague, "pract-2");
        // Refused first, her grants (none) then held by the policy: the grant made here is seen at once all the same.
        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(staff, _outside));
        Assert.Equal(HttpStatusCode.OK, await BreakGlassAsync(staff, _outside));
        Assert.Equal(HttpStatusCode.OK, await ReadAsync(staff, _outside));
        // Read again from the database once the policy's memory has passed: its MAC verifies.
        PastThePolicysMemory();
        Assert.Equal(HttpStatusCode.OK, await ReadAsync(staff, _outside));
        var (ids, count) = await SearchAsync(staff);
        Assert.Equal([_outside], ids);
        Assert.Equal(1, count);
        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(staff, _other));
        Assert.Equal(HttpStatusCode.Forbidden, await ReadAsync(colleague, _outside));

        var context = Person(_tenant, await PrincipalAsync(Physician));
        Assert.Equal(_outside, Assert.Single(await _server.Store.BreakTheGlass.ActiveAsync(context, None)).Patient);
        Assert.Equal(Explanation, Assert.Single(await _server.Store.BreakTheGlass.ReviewAsync(_tenant, 10, None)).Explanation);
        await _server.Store.Guard.LoadAsync(None);
        Assert.True(_server.Store.Guard.UnderBreakTheGlass(_tenant.Id, context.Principal, _outside));
        Assert.Empty(await RowAlertsAsync());
        Assert.Empty((await _server.Store.AccessRows.VerifyAsync(_tenant.Id, None)).Unauthentic);

        // Another server of the same store believes it too (the same key, read from the store), in its searches' SQL filter as well
        // (no decision remembered: nothing screened in memory).
        await using var second = await SecondServerAsync();
        Assert.Equal(RecordStatus.Ok, (await second.Records.ReadAsync(context, "Patient", _outside, None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await second.Records.ReadAsync(context, "Patient", _other, None)).Status);
        Assert.Equal([_outside], await SqlFilteredIdsAsync(second, context));
    }

    /// <summary>Another server of the store, remembering no decision: its searches are filtered by the policy's SQL predicate.</summary>
    private Task<VaubanStore> SecondServerAsync() =>
        VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = _time, Access = new AccessOptions { DecisionCacheLifetime = TimeSpan.Zero } }, None);

    private static async Task<List<string>> SqlFilteredIdsAsync(VaubanStore store, AccessContext context)
    {
        var page = await store.Records.SearchAsync(context, "Patient", [], null, false, None);
        Assert.Equal(RecordStatus.Ok, page.Status);
        return [.. page.Entries.Select(e => e.Id)];
    }

    [Fact]
    public async Task A_store_from_before_step_23_keeps_its_grants_and_vouches_for_no_other_row_at_that_upgrade()
    {
        var db = engine == Engine.Postgres ? await PostgresServer.CreateDatabaseAsync() : Path.Combine(Path.GetTempPath(), "vauban-grants-" + Guid.NewGuid().ToString("N")[..8] + ".db");
        var options = new StoreOptions(db, MasterKey.Generate()) { Time = _time };
        Tenant tenant;
        string patient, other, clientId;
        AccessContext holder;
        await using (var store = await VaubanStore.OpenAsync(options, None))
        {
            tenant = await store.Tenants.AddAsync("chu-ancien", None);
            var op = AccessContext.Operator(tenant, "admission");
            patient = (await store.Records.CreateAsync(op, "Patient", JsonDocument.Parse(Samples.Patient(family: "Ancien")).RootElement, null, None)).Id!;
            other = (await store.Records.CreateAsync(op, "Patient", JsonDocument.Parse(Samples.Patient(family: "Autre")).RootElement, null, None)).Id!;
            clientId = (await store.Clients.AddAsync(tenant, "ancien", "system/Patient.rs", null, None)).ClientId;
            holder = new AccessContext(Person(tenant, "user:ancien").Principal with { SessionId = "s-ancien", AuthenticatedAt = _time.GetUtcNow() }, tenant, KnownPurposes.Treatment);
            Assert.Equal(BreakGlassStatus.Granted, (await store.BreakTheGlass.OpenAsync(holder, patient, KnownBreakGlassReasons.Emergency, Explanation, None)).Status);
        }
        // The store as the Vauban before step 23 left it; and, since step 22, a client widened in the database with its MAC set to NULL.
        await Storage.StoreOperationsTests.ExecuteAsync(db, "DELETE FROM schema_version WHERE version = 23; " + Storage.StoreOperationsTests.UndoStep23
            + $" UPDATE clients SET scopes = 'system/*.cruds', mac = NULL WHERE client_id = '{clientId}';");

        await using (var store = await VaubanStore.OpenAsync(options, None))
        {
            Assert.Equal(0, await Storage.StoreOperationsTests.ScalarAsync(db, "SELECT count(*) FROM break_glass WHERE mac IS NULL"));
            Assert.Equal(RecordStatus.Ok, (await store.Records.ReadAsync(holder, "Patient", patient, None)).Status);
            Assert.Equal(Explanation, Assert.Single(await store.BreakTheGlass.ReviewAsync(tenant, 10, None)).Explanation);
            // Step 23's upgrade vouched for the grants only: the client changed after step 21 is refused still.
            var refused = Assert.Single((await store.AccessRows.VerifyAsync(null, None)).Unauthentic);
            Assert.Equal(("clients", clientId), (refused.Table, refused.Id));
        }

        // After it, a grant written in the database without a MAC is vouched for by no later start.
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await Storage.StoreOperationsTests.ExecuteAsync(db, "INSERT INTO break_glass (tenant_id, principal, session, patient, reason, granted_at, expires_at) "
            + $"VALUES ({tenant.Id}, 'user:ancien', NULL, '{other}', 'emergency', {nowMs}, {nowMs + 3_600_000});");
        for (var start = 0; start < 2; start++)
        {
            await using var store = await VaubanStore.OpenAsync(options, None);
            Assert.Equal(RecordStatus.Forbidden, (await store.Records.ReadAsync(holder, "Patient", other, None)).Status);
            Assert.Equal(RecordStatus.Ok, (await store.Records.ReadAsync(holder, "Patient", patient, None)).Status);
            Assert.Equal(2, (await store.AccessRows.VerifyAsync(null, None)).Unauthentic.Count);
        }
        if (engine == Engine.Sqlite)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var file in Directory.GetFiles(Path.GetDirectoryName(db)!, Path.GetFileName(db) + "*")) File.Delete(file);
        }
    }
}

public sealed class GrantTamperTests_Sqlite() : GrantTamperTests(Engine.Sqlite);

public sealed class GrantTamperTests_Postgres() : GrantTamperTests(Engine.Postgres);
