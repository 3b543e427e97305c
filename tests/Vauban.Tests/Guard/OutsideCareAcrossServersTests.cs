// DESIGN.md invariant 5 with several servers on one store (production: PostgreSQL behind a load balancer; SQLite: the server and
// the command line): the bound of 25 distinct patients outside care relationships a day holds across every server, synchronously.
// Two VaubanStores on the same database are two servers. The attack: stolen credentials (factors phished) breaking the glass on
// strangers through each server in turn — counted in each server's memory, they read 25 through each before anything held them.
using System.Data.Common;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public abstract class OutsideCareAcrossServersTests : IAsyncLifetime
{
    private const int Strangers = 40;
    private readonly Engine _engine;
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private static readonly GuardOptions NoDelay = new() { SlowDelay = TimeSpan.Zero };
    private VaubanServer _server = null!;
    private VaubanStore _other = null!;
    private Tenant _tenant = null!;
    private string _drA = "", _cardiology = "", _mine = "";
    private readonly List<string> _strangers = [];
    private static readonly CancellationToken None = CancellationToken.None;

    protected OutsideCareAcrossServersTests(Engine engine) => _engine = engine;

    private VaubanStore First => _server.Store;

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine, configure: o => o with { Time = _time, Guard = NoDelay });
        _tenant = await First.Tenants.AddAsync("hopital-deux-serveurs", None);
        Task<string> Create(string json) => _server.CreateAsOperatorAsync(_tenant, json);
        _cardiology = await Create("""{"resourceType":"Organization","name":"Cardiologie"}""");
        _drA = await Create(Samples.Practitioner("Alpha", "10000000001"));
        for (var i = 0; i < Strangers; i++) _strangers.Add(await Create(Samples.Patient(family: "Stranger", given: "G" + i)));
        _mine = await Create(Samples.Patient(family: "Mine", given: "M"));
        await Create(Samples.Encounter(_mine, _drA, ManualTime.RealNow.AddDays(-3).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)));
        _other = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = _time, Guard = NoDelay }, None);
    }

    public async Task DisposeAsync()
    {
        await _other.DisposeAsync();
        await _server.DisposeAsync();
    }

    /// <summary>Dr Alpha with both factors just proven (the thief phished them), so that the step-up at 10 does not stop her.</summary>
    private AccessContext DrA(string session = "s-1") =>
        new(new Principal(PrincipalKind.Person, "user:drA", "Dr Alpha", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician,
            Practitioner = _drA,
            Service = _cardiology,
            SessionId = session,
            AuthenticatedAt = _time.GetUtcNow(),
        }, _tenant, "TREAT");

    /// <summary>Two minutes later (under the minute's and the hour's levels), breaks the glass on the patient through
    /// <paramref name="store"/> and reads the patient there; Locked when the grant is refused as the guard contains her.</summary>
    private Task<RecordStatus> BreakGlassAndReadAsync(VaubanStore store, string patient) => BreakGlassAndReadAsync(store, store, patient);

    /// <summary>Breaks the glass through <paramref name="granter"/> and reads the patient at once through <paramref name="reader"/>,
    /// which re-read the store (containments, grants) just before the grant: it does not know of the grant yet.</summary>
    private async Task<RecordStatus> BreakGlassAndReadAsync(VaubanStore granter, VaubanStore reader, string patient)
    {
        _time.Advance(TimeSpan.FromMinutes(2));
        await reader.Guard.AdmitAsync(DrA(), GuardRequest.Write(Interaction.Create, "Observation"), None);
        var grant = await granter.BreakTheGlass.OpenAsync(DrA(), patient, KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None);
        if (grant.Status == BreakGlassStatus.NotAllowed) return RecordStatus.Locked;
        Assert.Equal(BreakGlassStatus.Granted, grant.Status);
        return (await reader.Records.ReadAsync(DrA(), "Patient", patient, None)).Status;
    }

    private async Task<List<(object Tenant, object Principal, object Patient, object ReadAt)>> RowsAsync()
    {
        await using DbConnection connection = _engine == Engine.Sqlite ? new SqliteConnection($"Data Source={_server.Db};Pooling=False") : new NpgsqlConnection(_server.Db);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT tenant_id, principal_ix, patient_ix, read_at FROM guard_outside_care";
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(object, object, object, object)>();
        while (await reader.ReadAsync()) rows.Add((reader.GetValue(0), reader.GetValue(1), reader.GetValue(2), reader.GetValue(3)));
        return rows;
    }

    [Fact]
    public async Task Stolen_credentials_breaking_the_glass_through_two_servers_in_turn_are_contained_at_the_26th_patient_across_both()
    {
        for (var i = 0; i < 25; i++)
        {
            Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(i % 2 == 0 ? First : _other, _strangers[i]));
        }
        // 13 through the first server, 12 through the other: the 26th, through either, is refused and contains the session.
        Assert.Equal(RecordStatus.Locked, await BreakGlassAndReadAsync(_other, _strangers[25]));
        var containment = Assert.Single(await _other.Guard.ContainmentsAsync(_tenant.Id, None));
        Assert.Equal("session:s-1", containment.Principal);
        Assert.Contains("distinct patients outside care relationships in a day: 26 > 25", containment.Reason, StringComparison.Ordinal);
        // The first server holds it too (it re-reads containments), for the patients it granted before.
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(RecordStatus.Locked, (await First.Records.ReadAsync(DrA(), "Patient", _strangers[0], None)).Status);
    }

    [Fact]
    public async Task Stolen_credentials_breaking_the_glass_on_one_server_and_reading_at_once_on_the_other_are_contained_at_the_26th_patient()
    {
        // The reading server learns of each grant only at its next re-read of the store: its reads meanwhile are admitted from the
        // stored grant. The grant itself counted the patient, on every server.
        for (var i = 0; i < 25; i++)
        {
            var (granter, reader) = i % 2 == 0 ? (First, _other) : (_other, First);
            Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(granter, reader, _strangers[i]));
        }
        Assert.Equal(RecordStatus.Locked, await BreakGlassAndReadAsync(_other, First, _strangers[25]));
        Assert.Contains("distinct patients outside care relationships in a day: 26 > 25", Assert.Single(await First.Guard.ContainmentsAsync(_tenant.Id, None)).Reason,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_patient_read_outside_care_on_both_servers_counts_once_and_25_distinct_across_both_are_admitted()
    {
        Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(First, _strangers[0]));
        // The other server learns the grant when it next re-reads the store (within seconds) and counts the patient as outside care.
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(RecordStatus.Ok, (await _other.Records.ReadAsync(DrA(), "Patient", _strangers[0], None)).Status);
        Assert.Single(await RowsAsync());
        for (var i = 1; i < 25; i++)
        {
            Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(i % 2 == 0 ? First : _other, _strangers[i]));
        }
        Assert.Equal(25, (await RowsAsync()).Count);
        Assert.Empty(await First.Guard.ContainmentsAsync(_tenant.Id, None));
        Assert.Equal(RecordStatus.Locked, await BreakGlassAndReadAsync(First, _strangers[25]));
    }

    [Fact]
    public async Task The_store_holds_no_patient_or_principal_id_for_what_was_read_outside_care()
    {
        Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(First, _strangers[0]));
        Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(_other, _strangers[1]));
        var rows = await RowsAsync();
        Assert.Equal(2, rows.Count);
        foreach (var (_, principal, patient, _) in rows)
        {
            // Blind indexes (64-bit keyed hashes), not ids: nothing in the row names Dr Alpha's account or either patient.
            Assert.IsType<long>(principal);
            Assert.IsType<long>(patient);
            Assert.NotEqual(0L, (long)patient);
        }
        Assert.NotEqual(rows[0].Patient, rows[1].Patient);
        Assert.Equal(rows[0].Principal, rows[1].Principal);
        foreach (var value in rows.SelectMany(r => new[] { r.Tenant, r.Principal, r.Patient, r.ReadAt }).Select(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)!))
        {
            Assert.DoesNotContain("drA", value, StringComparison.Ordinal);
            Assert.DoesNotContain(_strangers[0], value, StringComparison.Ordinal);
            Assert.DoesNotContain(_strangers[1], value, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Two_servers_breaking_the_glass_at_the_same_instant_do_not_both_slip_under_the_bound()
    {
        for (var i = 0; i < 24; i++)
        {
            Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(i % 2 == 0 ? First : _other, _strangers[i]));
        }
        // Six more grants asked at once, three through each server: one is the 25th patient outside care, the others are refused.
        _time.Advance(TimeSpan.FromMinutes(2));
        var grants = await Task.WhenAll(Enumerable.Range(24, 6).Select(i => Task.Run(async () =>
            (await (i % 2 == 0 ? First : _other).BreakTheGlass.OpenAsync(DrA(), _strangers[i], KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None)).Status)));
        Assert.Equal(1, grants.Count(s => s == BreakGlassStatus.Granted));
        Assert.All(grants.Where(s => s != BreakGlassStatus.Granted), s => Assert.Equal(BreakGlassStatus.NotAllowed, s));
    }

    [Fact]
    public async Task Two_servers_reading_outside_care_at_the_same_instant_do_not_both_slip_under_the_bound()
    {
        // The race between reads: each guard is told of its grants directly (what a grant made through it tells it), without the
        // grant's own count, so that the reads are the first to count these six patients; they are asked of both guards at once.
        for (var i = 0; i < 24; i++) Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(i % 2 == 0 ? First : _other, _strangers[i]));
        _time.Advance(TimeSpan.FromSeconds(3));
        var reads = Enumerable.Range(24, 6).Select(i => (Store: i % 2 == 0 ? First : _other, Patient: _strangers[i])).ToList();
        var decisions = await Task.WhenAll(reads.Select(r => Task.Run(async () =>
        {
            r.Store.Guard.NoteGrant(DrA(), r.Patient, _time.GetUtcNow().AddHours(1));
            return (await r.Store.Guard.AdmitAsync(DrA(), new GuardRequest(Interaction.Read, "Patient", 1, [r.Patient], [r.Patient]), None)).Verdict;
        })));
        Assert.Equal(1, decisions.Count(v => v == GuardVerdict.Admit));
    }

    [Fact]
    public async Task A_read_outside_care_is_refused_when_the_store_cannot_count_it_while_reads_within_care_never_ask_it()
    {
        Assert.Equal(BreakGlassStatus.Granted, (await First.BreakTheGlass.OpenAsync(DrA(), _strangers[0], KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None)).Status);
        await _server.ExecuteSqlAsync("ALTER TABLE guard_outside_care RENAME TO guard_outside_care_away");
        try
        {
            // Fail closed: the patient outside care does not leave uncounted (the host answers 503 or 500, as for an audit it cannot write).
            await Assert.ThrowsAnyAsync<DbException>(() => First.Records.ReadAsync(DrA(), "Patient", _strangers[0], None));
            // The clinician's own patient: no round trip to the count at all.
            Assert.Equal(RecordStatus.Ok, (await First.Records.ReadAsync(DrA(), "Patient", _mine, None)).Status);
        }
        finally
        {
            await _server.ExecuteSqlAsync("ALTER TABLE guard_outside_care_away RENAME TO guard_outside_care");
        }
        Assert.Equal(RecordStatus.Ok, (await First.Records.ReadAsync(DrA(), "Patient", _strangers[0], None)).Status);
    }

    [Fact]
    public async Task A_read_outside_care_in_a_transaction_Bundle_is_counted_in_its_transaction()
    {
        Assert.Equal(BreakGlassStatus.Granted, (await First.BreakTheGlass.OpenAsync(DrA(), _strangers[0], KnownBreakGlassReasons.Emergency, "Patient arrived unconscious", None)).Status);
        _time.Advance(TimeSpan.FromMinutes(1));
        using var bundle = JsonDocument.Parse($$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [ { "request": { "method": "GET", "url": "Patient/{{_strangers[0]}}" } } ] }
            """);
        var (status, _) = await First.Records.ProcessBundleAsync(DrA(), bundle.RootElement, "http://localhost/fhir", None);
        Assert.Equal(200, status);
        // Its time moved forward to the read's: the transaction that read it committed the count.
        Assert.Equal(_time.GetUtcNow().ToUnixTimeMilliseconds(), Convert.ToInt64(Assert.Single(await RowsAsync()).ReadAt, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task The_officers_release_starts_the_count_afresh_on_every_server_and_a_day_later_the_rows_are_gone()
    {
        for (var i = 0; i < 25; i++) Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(i % 2 == 0 ? First : _other, _strangers[i]));
        Assert.Equal(RecordStatus.Locked, await BreakGlassAndReadAsync(First, _strangers[25]));
        Assert.Equal(ReleaseStatus.Released, (await _other.Guard.ReleaseAsync(AccessContext.Operator(_tenant, "guard review"), "user:drA", None)).Status);
        Assert.Empty(await RowsAsync());
        // Released: both servers let her read outside care again (the first once it has re-read the containments).
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(First, _strangers[26]));
        Assert.Equal(RecordStatus.Ok, await BreakGlassAndReadAsync(_other, _strangers[27]));
        Assert.Equal(2, (await RowsAsync()).Count);

        // A day later the rows are out of the window: the server's sweep (at its next re-read of the store, here asked by a write) removes them.
        _time.Advance(TimeSpan.FromDays(1));
        Assert.True((await First.Guard.AdmitAsync(DrA(), GuardRequest.Write(Interaction.Create, "Observation"), None)).Admitted);
        await First.Guard.FlushAsync();
        Assert.Empty(await RowsAsync());
    }
}

public sealed class OutsideCareAcrossServersTests_Sqlite() : OutsideCareAcrossServersTests(Engine.Sqlite);

public sealed class OutsideCareAcrossServersTests_Postgres() : OutsideCareAcrossServersTests(Engine.Postgres);
