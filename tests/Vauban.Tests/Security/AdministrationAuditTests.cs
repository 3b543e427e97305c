// Administrative acts on both engines (issue 4): each appends one entry, committed with the act itself. With the chain
// unwritable the act fails and leaves nothing behind — no account, client, establishment, release or export decision — and
// no success entry; once the chain is back, each act is one entry on its establishment's chain.
using System.Data.Common;
using System.Net;
using Microsoft.Data.Sqlite;
using Npgsql;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public abstract class AdministrationAuditTests : IAsyncLifetime
{
    private const string Establishment = "hopital-admin";
    private const string NewEstablishment = "clinique-nouvelle";
    private const string NurseEmail = "new.nurse@chu.example";
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly Engine _engine;
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private string _contained = "", _export = "";

    protected AdministrationAuditTests(Engine engine) => _engine = engine;

    private AccessContext Administrator => AccessContext.Operator(_tenant, "administration");

    public async Task InitializeAsync()
    {
        var guard = new GuardOptions
        {
            Tenants = new Dictionary<string, GuardTenantOptions> { [Establishment] = new() { Export = new ExportLimits { ApprovalAboveResources = 0 } } },
        };
        _server = await VaubanServer.StartAsync(_engine, configure: o => o with { Guard = guard });
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, None);
        await _server.CreateAsOperatorAsync(_tenant, Samples.Practitioner());
        // A client contained by the guard (it read a canary), and an export awaiting approval.
        var canary = (await _server.Store.Guard.AddCanariesAsync(_server.Store.Records, _tenant, 1, None))[0];
        using (var client = await _server.ClientAsync(Establishment, "system/Patient.rs"))
        using (var hit = await client.GetAsync($"/fhir/Patient/{canary}"))
        {
            Assert.Equal((HttpStatusCode)423, hit.StatusCode);
        }
        _contained = Assert.Single(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None)).Principal;
        var requester = new AccessContext(new Principal(PrincipalKind.ApiClient, "registry-link", "registry link", StaffUser.PersonScopes), _tenant, "TREAT")
        {
            StatedReason = "Quarterly directory sync",
        };
        var started = await _server.Store.Records.ExportAsync(requester, ExportLevel.System, ["Practitioner"], null, "http://localhost/fhir/$export", None);
        Assert.Equal(ExportStatus.AwaitingApproval, started.Job!.Status);
        _export = started.Job.Id;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task With_the_chain_unwritable_no_account_client_establishment_release_or_export_decision_is_made_and_no_success_is_recorded()
    {
        var entries = await CountEntriesAsync();
        var clients = await CountClientsAsync();
        var alerts = (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 1000, None)).Count;
        await ExecuteAsync("ALTER TABLE audit_entries RENAME TO audit_entries_away");
        try
        {
            await Assert.ThrowsAsync<AuditUnavailableException>(() =>
                _server.Store.Accounts.AddAsync(Administrator, NurseEmail, StaffRole.Nurse, null, null, null, None));
            await Assert.ThrowsAsync<AuditUnavailableException>(() =>
                _server.Store.Clients.AddAsync(Administrator, "lab robot", "system/Observation.rs", null, ClientLimits.None, None));
            await Assert.ThrowsAsync<AuditUnavailableException>(() =>
                _server.Store.Tenants.AddAsync(NewEstablishment, t => AccessContext.Operator(t, "administration"), None));
            await Assert.ThrowsAsync<AuditUnavailableException>(() => _server.Store.Guard.ReleaseAsync(Administrator, _contained, None));
            await Assert.ThrowsAsync<AuditUnavailableException>(() => _server.Store.ExportApprovals.DecideAsync(Administrator, _export, approve: true, None));
        }
        finally
        {
            await ExecuteAsync("ALTER TABLE audit_entries_away RENAME TO audit_entries");
        }

        Assert.Null(await _server.Store.Accounts.FindAsync(_tenant, NurseEmail, None));
        Assert.Equal(clients, await CountClientsAsync());
        Assert.Null(await _server.Store.Tenants.FindAsync(NewEstablishment, None));
        Assert.Contains(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == _contained);
        Assert.Contains(await _server.Store.ExportApprovals.PendingAsync(_tenant.Id, None), p => p.Job.Id == _export);
        Assert.Equal(alerts, (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 1000, None)).Count);
        Assert.Equal(entries, await CountEntriesAsync());
    }

    [Fact]
    public async Task Each_administrative_act_is_one_success_entry_on_its_establishments_chain()
    {
        var link = await _server.Store.Accounts.AddAsync(Administrator, NurseEmail, StaffRole.Nurse, null, null, null, None);
        var client = await _server.Store.Clients.AddAsync(Administrator, "lab robot", "system/Observation.rs", null, ClientLimits.None, None);
        Assert.Equal(1, (await _server.Store.Guard.ReleaseAsync(Administrator, _contained, None)).Released);
        Assert.Equal(ExportDecision.Done, await _server.Store.ExportApprovals.DecideAsync(Administrator, _export, approve: true, None));
        var created = await _server.Store.Tenants.AddAsync(NewEstablishment, t => AccessContext.Operator(t, "administration"), None);

        var acts = (await AdministrationEntriesAsync(_tenant)).ToDictionary(e => e.Detail.Records.Single(), e => e);
        Assert.Equal("users add (Nurse)", acts["account:" + link.User.PrincipalId].Detail.Note);
        Assert.StartsWith("clients add (", acts["client:" + client.ClientId].Detail.Note, StringComparison.Ordinal);
        Assert.Equal("guard release", acts["principal:" + _contained].Detail.Note);
        Assert.StartsWith("bulk export approved", acts["export:" + _export].Detail.Note, StringComparison.Ordinal);
        Assert.Equal(4, acts.Count);
        Assert.All(acts.Values, e => Assert.Equal(AuditOutcome.Success, e.Outcome));
        Assert.All(acts.Values, e => Assert.Equal(Administrator.Principal.Id, e.Detail.Principal));

        // An establishment's creation is the first entry of its own chain, signed with the keys created with it.
        var first = Assert.Single(await AdministrationEntriesAsync(created));
        Assert.Equal(1, first.Sequence);
        Assert.Equal("tenants add", first.Detail.Note);
        Assert.Equal("tenant:" + NewEstablishment, Assert.Single(first.Detail.Records));
        Assert.True((await _server.Store.AuditLog.VerifyAsync(created.Id, null, None)).Valid);
        Assert.True((await _server.Store.AuditLog.VerifyAsync(_tenant.Id, null, None)).Valid);
    }

    private async Task<IReadOnlyList<AuditEntry>> AdministrationEntriesAsync(Tenant tenant) =>
        await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "audit test"),
            new AuditQuery { Actions = [AuditAction.Administration], Count = 100 }, None) ?? [];

    private async Task<long> CountEntriesAsync() => await ScalarAsync("SELECT count(*) FROM audit_entries");

    private async Task<long> CountClientsAsync() => await ScalarAsync("SELECT count(*) FROM clients");

    private async Task<long> ScalarAsync(string sql)
    {
        await _server.Store.Audit.CatchUpAsync();
        await using var connection = await RawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await RawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<DbConnection> RawAsync()
    {
        DbConnection connection = _engine == Engine.Sqlite ? new SqliteConnection($"Data Source={_server.Db};Pooling=False") : new NpgsqlConnection(_server.Db);
        await connection.OpenAsync();
        return connection;
    }
}

public sealed class AdministrationAuditTests_Sqlite() : AdministrationAuditTests(Engine.Sqlite);

public sealed class AdministrationAuditTests_Postgres() : AdministrationAuditTests(Engine.Postgres);
