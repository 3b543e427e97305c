// Invariant 2 (issue 4): no patient data leaves without an audit entry written first; the chain verifies
// end to end and any edit, deletion, insertion or reordering of its rows — in the real SQLite file or
// PostgreSQL database — is detected. Each attack on the log is a test. What each act puts on the chain
// (AuditTests) is read on one server for the class, each test in an establishment of its own; the attacks
// on the rows, the journals, the restarts and the outage (AuditLogAttackTests) each have a server of their
// own: they leave a broken chain, dispose the store, rename a table or work in the server's journal folder.
using System.Data.Common;
using System.Net;
using Microsoft.Data.Sqlite;
using Npgsql;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

/// <summary>The set-up both classes share: an API client of an establishment with a patient, an observation, reads and a search of them on
/// the chain, and the helpers that read and alter the rows as an attacker with the database would.</summary>
public abstract class AuditTestSetUp : IAsyncLifetime
{
    private readonly AuditServer? _shared;

    /// <summary>A server of the test's own.</summary>
    protected AuditTestSetUp(Engine engine) => Engine = engine;

    /// <summary>The class's server, the test in an establishment of its own.</summary>
    protected AuditTestSetUp(AuditServer shared)
    {
        ArgumentNullException.ThrowIfNull(shared);
        _shared = shared;
        Engine = shared.Engine;
    }

    /// <summary>Checkpoints every 8 entries, so that the tests' histories have several signed tree heads; lookups built every 4,
    /// so that searches read both built lookups and entries beyond them.</summary>
    internal static StoreOptions Configure(StoreOptions options) => options with { Audit = new AuditOptions { CheckpointEvery = 8, IndexEvery = 4 } };

    protected Engine Engine { get; }

    protected VaubanServer Server { get; private set; } = null!;

    protected HttpClient Client { get; private set; } = null!;

    protected Tenant Tenant { get; private set; } = null!;

    /// <summary>hospital on a server of the test's own, a name of the test's own on the shared one.</summary>
    protected string Establishment { get; private set; } = "hospital";

    protected string PatientId { get; private set; } = "";

    protected string ObservationId { get; private set; } = "";

    public async Task InitializeAsync()
    {
        if (_shared is null) Server = await VaubanServer.StartAsync(Engine, configure: Configure);
        else
        {
            Server = _shared.Server;
            Establishment = SharedServer.EstablishmentName("hospital");
        }
        Client = await Server.ClientAsync(Establishment);
        Tenant = (await Server.Store.Tenants.FindAsync(Establishment, CancellationToken.None))!;
        PatientId = await CreateAsync("/fhir/Patient", Samples.Patient(family: "Audité", nir: Samples.ValidNir("1850375123001")));
        ObservationId = await CreateAsync("/fhir/Observation", Samples.Observation($"Patient/{PatientId}"));
        for (var i = 0; i < 5; i++)
        {
            using var read = await Client.GetAsync($"/fhir/Patient/{PatientId}");
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }
        using (var search = await Client.GetAsync($"/fhir/Observation?subject=Patient/{PatientId}&_include=Observation:subject"))
        {
            Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        }
        for (var i = 0; i < 3; i++) await CreateAsync("/fhir/Patient", Samples.Patient(family: "Autre" + i, nir: Samples.ValidNir("1850375123" + (100 + i))));
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        if (_shared is null) await Server.DisposeAsync();
    }

    protected async Task<string> CreateAsync(string url, string json)
    {
        using var response = await Client.PostAsync(url, FhirContent.Json(json));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.BodyAsync()).GetProperty("id").GetString()!;
    }

    protected static string WithId(string json, string id)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        node["id"] = id;
        return node.ToJsonString();
    }

    protected AccessContext Officer => AccessContext.Operator(Tenant, "audit test");

    protected Task<AuditVerification> VerifyAsync() => Server.Store.AuditLog.VerifyAsync(Tenant.Id, null, CancellationToken.None);

    private protected sealed class ShiftedTime(TimeSpan shift) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + shift;
    }

    /// <summary>Points the head's checkpoint at the one signed at entry <paramref name="size"/>, as an attacker who deleted the later ones would.</summary>
    protected Task PointHeadAtAsync(long size) =>
        ExecuteAsync("UPDATE audit_heads SET checkpoint_seq = @s, checkpoint_at = (SELECT at FROM audit_checkpoints WHERE tenant_id = @t AND size = @s) WHERE tenant_id = @t", ("s", size));

    /// <summary>Sets the head's Merkle range to the stored entries' (what an attacker who rewrote them can compute).</summary>
    protected async Task SetHeadRangeAsync()
    {
        var tree = new CompactMerkleTree();
        foreach (var hash in await StoredHashesAsync()) tree.Append(hash);
        await ExecuteAsync("UPDATE audit_heads SET tree = @r WHERE tenant_id = @t", ("r", tree.Serialize()));
    }

    /// <summary>Replaces the tenant's entries by <paramref name="rows"/>, renumbered from 1 and re-chained with recomputed hashes,
    /// and points the head at them — what an attacker with the database but not the master key can do. Returns the count.</summary>
    private protected async Task<long> RewriteChainAsync(IEnumerable<AuditRow> rows)
    {
        var forged = rows.Select((r, i) => r with { Sequence = i + 1 }).ToList();
        var previous = AuditChain.Genesis;
        var hashes = new List<byte[]>();
        foreach (var row in forged)
        {
            var hash = new byte[AuditChain.HashSize];
            AuditChain.EntryHash(previous, row, hash);
            hashes.Add(hash);
            previous = hash;
        }
        await ExecuteAsync("DELETE FROM audit_entries WHERE tenant_id = @t");
        for (var i = 0; i < forged.Count; i++)
        {
            var r = forged[i];
            await ExecuteAsync("""
                INSERT INTO audit_entries (tenant_id, seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash)
                VALUES (@t, @s, @at, @a, @o, @ty, @pr, @pa, @se, @h)
                """, ("s", r.Sequence), ("at", r.At), ("a", (short)r.Action), ("o", (short)r.Outcome), ("ty", (short)r.Type), ("pr", r.PrincipalIndex),
                ("pa", r.PatientIndex), ("se", r.Sealed), ("h", hashes[i]));
        }
        await ExecuteAsync("UPDATE audit_heads SET seq = @s, hash = @h WHERE tenant_id = @t", ("s", (long)forged.Count), ("h", previous));
        await SetHeadRangeAsync();
        return forged.Count;
    }

    /// <summary>A second process reads the patient while the chain cannot be written, and stops before it can copy its
    /// entry: its journal is left in <paramref name="journals"/>. Returns the file.</summary>
    protected async Task<string> LeaveAJournalAsync(StoreOptions options, string journals)
    {
        await ExecuteAsync("ALTER TABLE audit_entries RENAME TO audit_entries_away");
        try
        {
            await using var stopped = await VaubanStore.OpenAsync(options, CancellationToken.None);
            Assert.NotNull(await stopped.Records.ReadAsync(AccessContext.Operator(Tenant, "read, then stopped"), "Patient", PatientId, CancellationToken.None));
        }
        finally
        {
            await ExecuteAsync("ALTER TABLE audit_entries_away RENAME TO audit_entries", catchUp: false);
        }
        var left = Assert.Single(Directory.GetFiles(journals, "*.journal"));
        Assert.True(new FileInfo(left).Length > 0);
        return left;
    }

    /// <summary>A folder name as Vauban writes one from a store's host, port, database and user: any character but a letter, a
    /// digit, '-', '.' or '_' is '_'.</summary>
    internal static string FolderName(string text) => string.Concat(text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' ? c : '_'));

    /// <summary>How many read entries the patient's access history holds.</summary>
    /// <summary>How many read entries name the patient: the search's count (_count=0), which no page size caps (a page holds
    /// at most 1,000 entries, and a fast machine serves more reads than that before an outage closes the door).</summary>
    protected async Task<int> ReadEntriesOfPatientAsync()
    {
        var found = await Server.Store.AuditLog.SearchPageAsync(Officer, new AuditQuery { Patient = PatientId, Actions = [AuditAction.Read], Count = 0 }, CancellationToken.None);
        return found!.Total!.Value;
    }

    // ---- raw access to the real database, as an attacker with the file or a database login would have ----

    /// <summary>Connections open to the store: this process's file descriptors on the SQLite file, or PostgreSQL's backends
    /// for the database (the probe's own included).</summary>
    protected async Task<int> OpenConnectionsAsync()
    {
        if (Engine == Engine.Sqlite)
        {
            var file = Path.GetFullPath(Server.Db);
            return new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos().Count(fd =>
            {
                try { return fd.LinkTarget == file; }
                catch (IOException) { return false; } // closed meanwhile
            });
        }
        await using var connection = new NpgsqlConnection(Server.Db);
        await connection.OpenAsync();
        using var command = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'", connection);
        return Convert.ToInt32(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    protected async Task<DbConnection> RawAsync(bool catchUp = true)
    {
        // What the server has journaled is on the chain first: the attacker works on the rows as they stand.
        if (catchUp) await Server.Store.Audit.CatchUpAsync();
        DbConnection connection = Engine == Engine.Sqlite ? new SqliteConnection($"Data Source={Server.Db};Pooling=False") : new NpgsqlConnection(Server.Db);
        await connection.OpenAsync();
        return connection;
    }

    protected async Task<(long Head, long Indexed)> HeadAsync(bool catchUp = true)
    {
        await using var connection = await RawAsync(catchUp);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, indexed_seq FROM audit_heads WHERE tenant_id = @t";
        AddParameter(command, "t", Tenant.Id);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    protected Task ExecuteAsync(string sql, params (string Name, object Value)[] parameters) => ExecuteAsync(sql, catchUp: true, parameters);

    protected async Task ExecuteAsync(string sql, bool catchUp, params (string Name, object Value)[] parameters)
    {
        await using var connection = await RawAsync(catchUp);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        AddParameter(command, "t", Tenant.Id);
        foreach (var (name, value) in parameters) AddParameter(command, name, value);
        await command.ExecuteNonQueryAsync();
    }

    protected static void AddParameter(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    private protected async Task<List<AuditRow>> ReadRowsAsync()
    {
        await using var connection = await RawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, at, action, outcome, type, principal_ix, patient_ix, sealed FROM audit_entries WHERE tenant_id = @t ORDER BY seq";
        AddParameter(command, "t", Tenant.Id);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<AuditRow>();
        while (await reader.ReadAsync())
        {
            rows.Add(new AuditRow(Tenant.Id, reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetInt32(4),
                reader.GetInt64(5), reader.GetInt64(6), (byte[])reader.GetValue(7)));
        }
        return rows;
    }

    protected async Task<List<byte[]>> StoredHashesAsync()
    {
        await using var connection = await RawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT hash FROM audit_entries WHERE tenant_id = @t ORDER BY seq";
        AddParameter(command, "t", Tenant.Id);
        await using var reader = await command.ExecuteReaderAsync();
        var hashes = new List<byte[]>();
        while (await reader.ReadAsync()) hashes.Add((byte[])reader.GetValue(0));
        return hashes;
    }

    protected async Task<string> DumpAuditTablesAsync()
    {
        await using var connection = await RawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT sealed FROM audit_entries";
        await using var reader = await command.ExecuteReaderAsync();
        var text = new System.Text.StringBuilder();
        while (await reader.ReadAsync()) text.Append(System.Text.Encoding.Latin1.GetString((byte[])reader.GetValue(0)));
        return text.ToString();
    }
}

/// <summary>What each act puts on the chain, read on the class's server (<see cref="AuditServer"/>), each test in an establishment of its own.</summary>
public abstract class AuditTests(AuditServer shared) : AuditTestSetUp(shared)
{
    [Fact]
    public async Task Every_read_search_and_write_is_on_the_chain_naming_the_patient_and_the_client()
    {
        using (var update = await Client.PutAsync($"/fhir/Observation/{ObservationId}",
            FhirContent.Json(WithId(Samples.Observation($"Patient/{PatientId}"), ObservationId))))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }
        using (var delete = await Client.DeleteAsync($"/fhir/Observation/{ObservationId}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using (var history = await Client.GetAsync($"/fhir/Patient/{PatientId}/_history")) Assert.Equal(HttpStatusCode.OK, history.StatusCode);
        using (var everything = await Client.GetAsync($"/fhir/Patient/{PatientId}/$everything")) Assert.Equal(HttpStatusCode.OK, everything.StatusCode);

        var entries = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Count = 100 }, CancellationToken.None) ?? [];
        var actions = entries.Select(e => e.Action).ToHashSet();
        foreach (var expected in new[] { AuditAction.Create, AuditAction.Read, AuditAction.Search, AuditAction.Update, AuditAction.Delete, AuditAction.History, AuditAction.Everything })
        {
            Assert.Contains(expected, actions);
        }
        Assert.Equal(5, entries.Count(e => e.Action == AuditAction.Read && e.Detail.Records.SequenceEqual([$"Patient/{PatientId}"])));
        Assert.All(entries, e =>
        {
            Assert.Equal(PatientId, e.Detail.Patient);
            Assert.Equal("client", e.Detail.PrincipalKind);
            Assert.Equal("127.0.0.1", e.Detail.Source);
        });
        // The search page returned the observation and, included, the patient: one entry for this patient lists both.
        Assert.Contains(entries, e => e.Action == AuditAction.Search && e.Detail.Records.Contains($"Observation/{ObservationId}") && e.Detail.Records.Contains($"Patient/{PatientId}"));
        // Other patients' entries are not in this patient's history.
        Assert.DoesNotContain(entries, e => e.Detail.Records.Any(r => r.StartsWith("Patient/", StringComparison.Ordinal) && r != $"Patient/{PatientId}"));
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task A_bulk_load_gives_each_patient_one_entry_listing_all_its_records_with_its_lookups_built()
    {
        var patient = "importe-audit";
        var items = new List<Vauban.Records.ImportItem>
        {
            Samples.Import("Patient", patient, Samples.Patient(family: "Importé", nir: Samples.ValidNir("1850375123777"))),
            Samples.Import("Observation", "importe-obs-1", Samples.Observation($"Patient/{patient}")),
            Samples.Import("Observation", "importe-obs-2", Samples.Observation($"Patient/{patient}")),
            Samples.Import("Encounter", "importe-enc", Samples.Encounter(patient, "pr-import", "2026-03-01T10:00:00+01:00")),
        };
        // What the set-up's reads journaled is on the chain first: otherwise it may land after the load, beyond its lookups.
        await Server.Store.Audit.CatchUpAsync();
        await Server.Store.Records.ImportAsync(Officer, items, null, CancellationToken.None);
        // The load builds its entries' lookups before it returns, rather than leaving them to the next server's idle moments.
        var lookups = await Server.Store.AuditLog.VerifyLookupsAsync(Tenant.Id, CancellationToken.None);
        Assert.True(lookups.Complete);
        Assert.Equal((await VerifyAsync()).Entries, lookups.Indexed);

        var entries = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = patient, Count = 100 }, CancellationToken.None) ?? [];
        var import = Assert.Single(entries);
        Assert.Equal(AuditAction.Import, import.Action);
        Assert.Equal(patient, import.Detail.Patient);
        Assert.Equal(["Encounter/importe-enc", "Observation/importe-obs-1", "Observation/importe-obs-2", $"Patient/{patient}"], import.Detail.Records.Order(StringComparer.Ordinal));
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task A_refused_read_is_audited_as_a_failure()
    {
        using var limited = await Server.ClientAsync(Establishment, "system/*.rs", new ClientLimits(["someone-else"], false));
        using (var refused = await limited.GetAsync($"/fhir/Patient/{PatientId}")) Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        var entries = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Count = 100 }, CancellationToken.None) ?? [];
        Assert.Contains(entries, e => e.Action == AuditAction.Read && e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note!.Contains("refused", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Acts_refused_by_the_granted_scopes_are_each_audited_as_a_failure_naming_the_client()
    {
        var registration = await Server.Store.Clients.AddAsync(Tenant, "patients only", "system/Patient.rs", null, ClientLimits.None, CancellationToken.None);
        using var limited = new HttpClient { BaseAddress = Server.BaseAddress };
        limited.DefaultRequestHeaders.Authorization = new("Bearer", await Server.TokenAsync(registration.ClientId, registration.ClientSecret!));
        using (var search = await limited.GetAsync("/fhir/Observation?_count=1")) Assert.Equal(HttpStatusCode.Forbidden, search.StatusCode);
        using (var read = await limited.GetAsync($"/fhir/Observation/{ObservationId}")) Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
        using (var delete = await limited.DeleteAsync($"/fhir/Patient/{PatientId}")) Assert.Equal(HttpStatusCode.Forbidden, delete.StatusCode);
        using (var include = await limited.GetAsync("/fhir/Patient?_revinclude=Observation:subject")) Assert.Equal(HttpStatusCode.Forbidden, include.StatusCode);
        var bundle = $$$"""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Observation/{{{ObservationId}}}"}}]}""";
        using (var transaction = await limited.PostAsync("/fhir", FhirContent.Json(bundle))) Assert.Equal(HttpStatusCode.Forbidden, transaction.StatusCode);
        using (var kickOff = new HttpRequestMessage(HttpMethod.Get, "/fhir/$export?_type=Observation"))
        {
            kickOff.Headers.Add("Prefer", "respond-async");
            using var export = await limited.SendAsync(kickOff);
            Assert.Equal(HttpStatusCode.Forbidden, export.StatusCode);
        }

        var all = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Agent = registration.ClientId, Count = 100 }, CancellationToken.None) ?? [];
        // Besides the refusals, the client's token request (its sign-in).
        var signIn = Assert.Single(all, e => e.Action == AuditAction.SignIn);
        Assert.Equal(AuditOutcome.Success, signIn.Outcome);
        var entries = all.Where(e => e.Action != AuditAction.SignIn).ToList();
        Assert.Equal(6, entries.Count);
        Assert.All(entries, e =>
        {
            Assert.Equal(AuditOutcome.MinorFailure, e.Outcome);
            // Refused before any record was looked at: the patient is the one the request names (Patient/<id>), else none.
            Assert.Equal(e.ResourceType == "Patient" && e.Detail.Records.SequenceEqual([$"Patient/{PatientId}"]) ? PatientId : null, e.Detail.Patient);
            Assert.StartsWith("refused by the access policy", e.Detail.Note, StringComparison.Ordinal);
        });
        Assert.Contains(entries, e => e.Action == AuditAction.Search && e.ResourceType == "Observation" && e.Detail.Records.SequenceEqual(["Observation"]));
        Assert.Contains(entries, e => e.Action == AuditAction.Read && e.Detail.Records.SequenceEqual([$"Observation/{ObservationId}"]));
        Assert.Contains(entries, e => e.Action == AuditAction.Delete && e.Detail.Records.SequenceEqual([$"Patient/{PatientId}"]));
        Assert.Contains(entries, e => e.Action == AuditAction.Search && e.ResourceType == "Patient" && e.Detail.Note!.Contains("_revinclude", StringComparison.Ordinal));
        Assert.Contains(entries, e => e.Action == AuditAction.Delete && e.Detail.Records.SequenceEqual([$"Observation/{ObservationId}"]));
        Assert.Contains(entries, e => e.Action == AuditAction.Export && e.Detail.Records.SequenceEqual(["Observation"]));
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task Everything_audits_a_record_another_patient_shares_under_that_patient_too()
    {
        var other = await CreateAsync("/fhir/Patient", Samples.Patient(family: "Partagé", nir: Samples.ValidNir("1850375123555")));
        // Held in the other patient's compartment (its first participant), and naming this patient as well.
        var appointment = await CreateAsync("/fhir/Appointment", $$$"""
            {"resourceType":"Appointment","status":"booked","start":"2026-03-01T10:00:00+01:00","end":"2026-03-01T10:30:00+01:00",
             "participant":[{"actor":{"reference":"Patient/{{{other}}}"},"status":"accepted"},{"actor":{"reference":"Patient/{{{PatientId}}}"},"status":"accepted"}]}
            """);
        using (var everything = await Client.GetAsync($"/fhir/Patient/{PatientId}/$everything"))
        {
            Assert.Equal(HttpStatusCode.OK, everything.StatusCode);
            Assert.Contains((await everything.BodyAsync()).GetProperty("entry").EnumerateArray(),
                e => e.GetProperty("resource").GetProperty("id").GetString() == appointment);
        }

        // The other patient's access history shows that their appointment was read.
        var ofOther = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = other, Actions = [AuditAction.Everything], Count = 100 }, CancellationToken.None) ?? [];
        var entry = Assert.Single(ofOther);
        Assert.Equal(other, entry.Detail.Patient);
        Assert.Equal([$"Appointment/{appointment}"], entry.Detail.Records);
        // This patient's entry lists it too: it was returned as part of their record.
        var ofPatient = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Actions = [AuditAction.Everything], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Contains($"Appointment/{appointment}", Assert.Single(ofPatient).Detail.Records);
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task A_paged_everything_audits_each_page_with_the_records_it_returned_each_under_its_patient()
    {
        var other = await CreateAsync("/fhir/Patient", Samples.Patient(family: "Partagé", nir: Samples.ValidNir("1850375123556")));
        var appointment = await CreateAsync("/fhir/Appointment", $$$"""
            {"resourceType":"Appointment","status":"booked","start":"2026-03-01T10:00:00+01:00","end":"2026-03-01T10:30:00+01:00",
             "participant":[{"actor":{"reference":"Patient/{{{other}}}"},"status":"accepted"},{"actor":{"reference":"Patient/{{{PatientId}}}"},"status":"accepted"}]}
            """);
        await CreateAsync("/fhir/Observation", Samples.Observation($"Patient/{PatientId}", loinc: "718-7"));
        // One resource a page, more pages than $everything calls allowed an hour without a stated reason: one patient's
        // record read in pages counts once.
        var pages = new List<List<string>>();
        for (string? next = $"/fhir/Patient/{PatientId}/$everything?_count=1"; next is not null;)
        {
            using var response = await Client.GetAsync(next);
            var page = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, page.ToString());
            pages.Add(page.GetProperty("entry").EnumerateArray()
                .Select(e => e.GetProperty("resource")).Select(r => $"{r.GetProperty("resourceType").GetString()}/{r.GetProperty("id").GetString()}").ToList());
            next = page.GetProperty("link").EnumerateArray().Where(l => l.GetProperty("relation").GetString() == "next")
                .Select(l => l.GetProperty("url").GetString()).FirstOrDefault();
        }
        Assert.Equal(4, pages.Count);
        Assert.All(pages, p => Assert.Single(p));

        // One entry a page under this patient, listing exactly what that page returned.
        var ofPatient = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Actions = [AuditAction.Everything], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Equal(pages.Select(p => p[0]).Order(StringComparer.Ordinal), ofPatient.Select(e => Assert.Single(e.Detail.Records)).Order(StringComparer.Ordinal));
        // The appointment the other patient holds is under that patient too, once: only the page that returned it.
        var ofOther = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = other, Actions = [AuditAction.Everything], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Equal([$"Appointment/{appointment}"], Assert.Single(ofOther).Detail.Records);
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task Deleting_an_unknown_or_already_deleted_record_answers_204_and_is_audited_as_a_failed_delete()
    {
        using (var unknown = await Client.DeleteAsync("/fhir/Observation/does-not-exist-123")) Assert.Equal(HttpStatusCode.NoContent, unknown.StatusCode);
        using (var first = await Client.DeleteAsync($"/fhir/Observation/{ObservationId}")) Assert.Equal(HttpStatusCode.NoContent, first.StatusCode);
        using (var again = await Client.DeleteAsync($"/fhir/Observation/{ObservationId}")) Assert.Equal(HttpStatusCode.NoContent, again.StatusCode);

        var deletes = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Actions = [AuditAction.Delete], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Equal(3, deletes.Count);
        var unknownEntry = Assert.Single(deletes, e => e.Detail.Records.SequenceEqual(["Observation/does-not-exist-123"]));
        Assert.Equal(AuditOutcome.MinorFailure, unknownEntry.Outcome);
        Assert.Null(unknownEntry.Detail.Patient);
        Assert.Single(deletes, e => e.Outcome == AuditOutcome.Success && e.Detail.Records.SequenceEqual([$"Observation/{ObservationId}"]) && e.Detail.Patient == PatientId);
        Assert.Single(deletes, e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Records.SequenceEqual([$"Observation/{ObservationId}"]) && e.Detail.Patient == PatientId);
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task A_transaction_entry_refused_by_its_If_Match_is_audited_as_a_failed_write_as_a_single_request_is()
    {
        foreach (var (method, entry) in new[]
        {
            ("PUT", $$"""{ "resource": {{WithId(Samples.Observation($"Patient/{PatientId}"), ObservationId)}}, "request": { "method": "PUT", "url": "Observation/{{ObservationId}}", "ifMatch": "W/\"7\"" } }"""),
            ("DELETE", $$"""{ "request": { "method": "DELETE", "url": "Observation/{{ObservationId}}", "ifMatch": "W/\"7\"" } }"""),
        })
        {
            using var response = await Client.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{entry}} ] }"""));
            Assert.True(response.StatusCode == HttpStatusCode.PreconditionFailed, $"{method}: {(int)response.StatusCode}");
        }
        var refused = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Actions = [AuditAction.Update, AuditAction.Delete], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Single(refused, e => e.Action == AuditAction.Update && e.Outcome == AuditOutcome.MinorFailure && e.Detail.Records.SequenceEqual([$"Observation/{ObservationId}"]));
        Assert.Single(refused, e => e.Action == AuditAction.Delete && e.Outcome == AuditOutcome.MinorFailure && e.Detail.Records.SequenceEqual([$"Observation/{ObservationId}"]));
        Assert.DoesNotContain(refused, e => e.Outcome == AuditOutcome.Success);
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task A_history_GET_in_a_transaction_is_a_vread_of_that_version_audited_as_one()
    {
        using (var update = await Client.PutAsync($"/fhir/Observation/{ObservationId}",
            FhirContent.Json(WithId(Samples.Observation($"Patient/{PatientId}"), ObservationId))))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }
        foreach (var kind in new[] { "transaction", "batch" })
        {
            var bundle = $$$"""{"resourceType":"Bundle","type":"{{{kind}}}","entry":[{"request":{"method":"GET","url":"Observation/{{{ObservationId}}}/_history/1"}}]}""";
            using var response = await Client.PostAsync("/fhir", FhirContent.Json(bundle));
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
            var entry = body.GetProperty("entry")[0];
            Assert.Equal("1", entry.GetProperty("resource").GetProperty("meta").GetProperty("versionId").GetString());
            Assert.Equal("W/\"1\"", entry.GetProperty("response").GetProperty("etag").GetString());
        }
        var vreads = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Actions = [AuditAction.VRead], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Equal(2, vreads.Count(e => e.Outcome == AuditOutcome.Success && e.Detail.Records.SequenceEqual([$"Observation/{ObservationId}"])));

        // A version that is not a number is refused, not answered with the current version.
        var invalid = $$$"""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Observation/{{{ObservationId}}}/_history/latest"}}]}""";
        using (var refused = await Client.PostAsync("/fhir", FhirContent.Json(invalid))) Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
    }

    [Fact]
    public async Task A_reason_stated_with_a_request_is_kept_with_its_entry()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{PatientId}/$everything");
        request.Headers.Add("X-Vauban-Reason", "transfer to the cardiology ward, full record needed");
        using (var response = await Client.SendAsync(request)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var entries = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Actions = [AuditAction.Everything] }, CancellationToken.None) ?? [];
        Assert.Contains(entries, e => e.Detail.Note == "reason stated: transfer to the cardiology ward, full record needed");
    }

    [Fact]
    public async Task The_untouched_chain_verifies_with_signed_checkpoints()
    {
        var result = await VerifyAsync();
        Assert.True(result.Valid, result.Problem);
        Assert.True(result.Entries >= 10, $"{result.Entries} entries");
        Assert.True(result.Checkpoints >= 1, $"{result.Checkpoints} checkpoints");
    }

    [Fact]
    public async Task The_untouched_log_gives_every_witnessed_tree_head()
    {
        var witnessed = await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None);
        using (var read = await Client.GetAsync($"/fhir/Patient/{PatientId}"))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }
        var result = await Server.Store.AuditLog.VerifyAsync(Tenant.Id, null, CancellationToken.None, witnessed);
        Assert.True(result.Valid, result.Problem);
    }

    [Fact]
    public async Task Two_servers_on_one_store_extend_one_chain()
    {
        var second = await VaubanStore.OpenAsync(new StoreOptions(Server.Db, Server.MasterKey), CancellationToken.None);
        await using (second)
        {
            var context = AccessContext.Operator(Tenant, "second process");
            await Task.WhenAll(Enumerable.Range(0, 40).Select(i => i % 2 == 0
                ? second.Records.ReadAsync(context, "Patient", PatientId, CancellationToken.None)
                : Server.Store.Records.ReadAsync(context, "Patient", PatientId, CancellationToken.None)));
        }
        var result = await VerifyAsync();
        Assert.True(result.Valid, result.Problem);
    }

    [Fact]
    public async Task A_patient_search_finds_every_entry_before_and_beyond_the_built_lookups_newest_first()
    {
        for (var i = 0; i < 6; i++) (await Client.GetAsync($"/fhir/Patient/{PatientId}")).Dispose();
        var (head, indexed) = await HeadAsync();
        // Lookups are built behind the copies (once IndexEvery entries wait, or when the appender idles a second): wait for one.
        for (var deadline = DateTime.UtcNow.AddSeconds(5); indexed == 0 && DateTime.UtcNow < deadline; (head, indexed) = await HeadAsync(catchUp: false)) await Task.Delay(100);
        if (indexed == head)
        {
            (await Client.GetAsync($"/fhir/Patient/{PatientId}")).Dispose();
            (head, indexed) = await HeadAsync();
        }
        Assert.True(indexed > 0 && indexed < head, $"lookups built up to {indexed} of {head}: the search must read both");

        var found = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Count = 1000 }, CancellationToken.None);
        var everything = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Count = 1000 }, CancellationToken.None);
        var expected = everything!.Where(e => e.Sequence <= head && e.Detail.Patient == PatientId).Select(e => e.Sequence).ToList();
        Assert.True(expected.Count >= 13, $"{expected.Count} entries name the patient");
        Assert.Contains(expected, s => s <= indexed);
        Assert.Contains(expected, s => s > indexed);
        Assert.Equal(expected, found!.Select(e => e.Sequence).ToList());

        // Paging walks the same entries, newest first.
        var paged = new List<long>();
        long? before = null;
        while (true)
        {
            var page = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Count = 5, BeforeSequence = before }, CancellationToken.None);
            paged.AddRange(page!.Select(e => e.Sequence).Where(s => s <= head));
            if (page!.Count < 5) break;
            before = page[^1].Sequence;
        }
        Assert.Equal(expected, paged);
    }
}

/// <summary>The attacks on the chain's rows, the journals, the restarts and the outage: each test on a server of its own.</summary>
public abstract class AuditLogAttackTests(Engine engine) : AuditTestSetUp(engine)
{
    [Fact]
    public async Task Audit_entries_hold_no_identifying_value_in_clear()
    {
        await Server.Store.DisposeAsync();
        var dump = await DumpAuditTablesAsync();
        Assert.DoesNotContain(PatientId, dump, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1", dump, StringComparison.Ordinal);
        Assert.DoesNotContain("test client", dump, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Editing_an_entry_is_detected_at_that_entry()
    {
        await ExecuteAsync("UPDATE audit_entries SET at = at + 1000 WHERE tenant_id = @t AND seq = 5");
        var result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Equal(5, result.FirstBroken);
    }

    [Fact]
    public async Task Editing_the_sealed_part_is_detected()
    {
        await ExecuteAsync(Engine == Engine.Sqlite
            ? "UPDATE audit_entries SET sealed = CAST(X'00' || substr(sealed, 2) AS BLOB) WHERE tenant_id = @t AND seq = 3"
            : "UPDATE audit_entries SET sealed = '\\x00'::bytea || substring(sealed from 2) WHERE tenant_id = @t AND seq = 3");
        var result = await VerifyAsync();
        Assert.Equal(3, result.FirstBroken);
    }

    [Fact]
    public async Task Deleting_an_entry_is_detected()
    {
        await ExecuteAsync("DELETE FROM audit_entries WHERE tenant_id = @t AND seq = 4");
        var result = await VerifyAsync();
        Assert.Equal(4, result.FirstBroken);
        Assert.Contains("missing", result.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deleting_the_latest_entries_is_detected()
    {
        await ExecuteAsync("DELETE FROM audit_entries WHERE tenant_id = @t AND seq > 9");
        Assert.Equal(10, (await VerifyAsync()).FirstBroken);
    }

    [Fact]
    public async Task Inserting_an_entry_is_detected()
    {
        // Make room at 6 by moving every later entry up one, then copy entry 2's content into the gap.
        await ExecuteAsync("UPDATE audit_entries SET seq = -seq - 1 WHERE tenant_id = @t AND seq >= 6");
        await ExecuteAsync("UPDATE audit_entries SET seq = -seq WHERE tenant_id = @t AND seq < 0");
        await ExecuteAsync("""
            INSERT INTO audit_entries (tenant_id, seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash)
            SELECT tenant_id, 6, at, action, outcome, type, principal_ix, patient_ix, sealed, hash FROM audit_entries WHERE tenant_id = @t AND seq = 2
            """);
        Assert.Equal(6, (await VerifyAsync()).FirstBroken);
    }

    [Fact]
    public async Task Reordering_two_entries_is_detected()
    {
        await ExecuteAsync("UPDATE audit_entries SET seq = -1 WHERE tenant_id = @t AND seq = 7");
        await ExecuteAsync("UPDATE audit_entries SET seq = 7 WHERE tenant_id = @t AND seq = 8");
        await ExecuteAsync("UPDATE audit_entries SET seq = 8 WHERE tenant_id = @t AND seq = -1");
        Assert.Equal(7, (await VerifyAsync()).FirstBroken);
    }

    [Fact]
    public async Task Rewriting_history_with_recomputed_hashes_is_caught_by_the_signed_checkpoints()
    {
        // An attacker with the database but not the master key deletes entry 3 and recomputes every later
        // sequence number and hash, and the head row, so that the chain itself is consistent again.
        var rows = await ReadRowsAsync();
        var forged = await RewriteChainAsync(rows.Where(r => r.Sequence != 3));
        var result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Contains("checkpoint", result.Problem, StringComparison.Ordinal);
        Assert.InRange(result.FirstBroken!.Value, 3, forged + 1);
    }

    [Fact]
    public async Task Deleting_recent_entries_with_the_checkpoints_that_signed_them_is_detected()
    {
        // The attack the signed heads alone miss: delete an act after the first checkpoint, re-chain what follows with
        // recomputed hashes, and delete every checkpoint that signed the old tail (and the head's note of them), so that no
        // signed head covers the rewritten part. The acts of this test all happen within a second; the tail is moved an hour
        // later to stand for a tail written over an hour, which the appender would have signed every interval.
        var first = (await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None))[0].Size;
        var rows = await ReadRowsAsync();
        Assert.True(rows.Count > first + 2, $"{rows.Count} entries, first checkpoint at {first}");
        var hour = (long)TimeSpan.FromHours(1).TotalMilliseconds;
        var forged = await RewriteChainAsync(rows.Where(r => r.Sequence != first + 2).Select(r => r.Sequence > first ? r with { At = r.At + hour } : r));
        await ExecuteAsync("DELETE FROM audit_checkpoints WHERE tenant_id = @t AND size > @s", ("s", first));
        await ExecuteAsync("UPDATE audit_heads SET checkpoint_seq = @s WHERE tenant_id = @t", ("s", first));
        await PointHeadAtAsync(first);
        var result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Equal(first + 1, result.FirstBroken);
        // The times moved to look signed in time no longer open the sealed parts they are bound to.
        Assert.Contains("does not match its sealed part", result.Problem, StringComparison.Ordinal);
        Assert.Equal(rows.Count - 1, forged);
    }

    [Fact]
    public async Task Deleting_an_entry_and_moving_the_later_times_to_look_signed_in_time_is_detected_by_the_sealed_parts()
    {
        // Delete an act, re-chain what follows, and move every later entry's time to just after the last checkpoint kept, so that
        // all of it lies within one interval of a signed head: the chain, the tree and the deadlines all agree. The time is bound
        // to the sealed part (its associated data), which verification now opens with the establishment's key.
        var first = (await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None))[0];
        var rows = await ReadRowsAsync();
        var inTime = first.At.ToUnixTimeMilliseconds() + 1;
        await RewriteChainAsync(rows.Where(r => r.Sequence != first.Size + 1).Select(r => r.Sequence > first.Size + 1 ? r with { At = inTime } : r));
        await ExecuteAsync("DELETE FROM audit_checkpoints WHERE tenant_id = @t AND size > @s", ("s", first.Size));
        await PointHeadAtAsync(first.Size);
        var result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Equal(first.Size + 1, result.FirstBroken);
        Assert.Contains("does not match its sealed part", result.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_chain_head_whose_Merkle_range_or_checkpoint_was_altered_is_detected()
    {
        // The next checkpoint signs the head's range as it finds it: a range set to anything else was signed as history, and
        // verification then blamed the genuine entry after it.
        var newest = (await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None))[^1];
        await ExecuteAsync(Engine == Engine.Sqlite ? "UPDATE audit_heads SET tree = zeroblob(64) WHERE tenant_id = @t" : "UPDATE audit_heads SET tree = decode(repeat('00', 64), 'hex') WHERE tenant_id = @t");
        var result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Contains("Merkle range", result.Problem, StringComparison.Ordinal);
        await SetHeadRangeAsync();
        Assert.True((await VerifyAsync()).Valid);
        await ExecuteAsync("UPDATE audit_heads SET checkpoint_at = checkpoint_at + 100000 WHERE tenant_id = @t");
        result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Contains($"not the newest, signed at entry {newest.Size}", result.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_store_does_not_sign_over_an_unsigned_tail_that_checkpoints_deleted_left_late()
    {
        // An hour later, another start appends (and signs its own checkpoint, as it must).
        await using (var later = await VaubanStore.OpenAsync(new StoreOptions(Server.Db, Server.MasterKey) { Time = new ShiftedTime(TimeSpan.FromHours(1)) }, CancellationToken.None))
        {
            var context = AccessContext.Operator(Tenant, "later start");
            for (var i = 0; i < 3; i++) Assert.Equal(Vauban.Records.RecordStatus.Ok, (await later.Records.ReadAsync(context, "Patient", PatientId, CancellationToken.None)).Status);
            await later.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None);
        }
        // The attack: erase an entry before that hour, renumber and re-chain the rest (their times, bound to their sealed parts,
        // unchanged), delete the checkpoints after it and point the head at the last one kept. Verification finds the late tail...
        var checkpoints = await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None);
        var kept = checkpoints.Last(c => c.At < DateTimeOffset.UtcNow.AddMinutes(30));
        var rows = await ReadRowsAsync();
        await RewriteChainAsync(rows.Where(r => r.Sequence != kept.Size + 1));
        await ExecuteAsync("DELETE FROM audit_checkpoints WHERE tenant_id = @t AND size > @s", ("s", kept.Size));
        await PointHeadAtAsync(kept.Size);
        var before = await VerifyAsync();
        Assert.False(before.Valid);
        Assert.Contains("checkpoints deleted", before.Problem, StringComparison.Ordinal);

        // ...and a store opening on it does not sign a checkpoint over it, which made the rewrite pass verification.
        await using (var next = await VaubanStore.OpenAsync(new StoreOptions(Server.Db, Server.MasterKey) { Time = new ShiftedTime(TimeSpan.FromHours(2)) }, CancellationToken.None))
        {
            var context = AccessContext.Operator(Tenant, "next start");
            try
            {
                await next.Records.ReadAsync(context, "Patient", PatientId, CancellationToken.None);
                await next.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None);
            }
            catch (AuditUnavailableException)
            {
                // the chain refuses to be signed: every act waiting for it is refused
            }
        }
        Assert.DoesNotContain(await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None), c => c.Size > kept.Size);
        var after = await VerifyAsync();
        Assert.False(after.Valid);
        Assert.Equal(before.FirstBroken, after.FirstBroken);
    }

    [Fact]
    public async Task Deleting_every_checkpoint_is_detected()
    {
        await ExecuteAsync("DELETE FROM audit_checkpoints WHERE tenant_id = @t");
        await ExecuteAsync("UPDATE audit_heads SET checkpoint_seq = 0, checkpoint_at = 0 WHERE tenant_id = @t");
        var result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Equal(1, result.FirstBroken);
        Assert.Contains("no signed checkpoint", result.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deleting_the_newest_checkpoints_is_detected_by_the_head()
    {
        var checkpoints = await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None);
        Assert.True(checkpoints.Count >= 2, $"{checkpoints.Count} checkpoints");
        await ExecuteAsync("DELETE FROM audit_checkpoints WHERE tenant_id = @t AND size > @s", ("s", checkpoints[0].Size));
        var result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Contains("missing", result.Problem, StringComparison.Ordinal);
        // Broken at the first entry the deleted checkpoints signed, and what verified is what lies before it: the CLI said
        // "BROKEN at entry 1142" and "1,200 entries before it verified", counting every entry read.
        Assert.Equal(checkpoints[0].Size + 1, result.FirstBroken);
        Assert.Equal(checkpoints[0].Size, result.Entries);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-7L)]
    public async Task An_entry_numbered_outside_the_chain_is_detected(long sequence)
    {
        // A copy of a real entry (its sealed part opens) slipped in before the chain's first entry, with the hash that the
        // chain's start is compared with: an access that never happened, shown in the patient's history.
        await ExecuteAsync(Engine == Engine.Sqlite
            ? """
              INSERT INTO audit_entries (tenant_id, seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash)
              SELECT tenant_id, @s, at, action, outcome, type, principal_ix, patient_ix, sealed, zeroblob(32) FROM audit_entries WHERE tenant_id = @t AND seq = 3
              """
            : """
              INSERT INTO audit_entries (tenant_id, seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash)
              SELECT tenant_id, @s, at, action, outcome, type, principal_ix, patient_ix, sealed, decode(repeat('00', 32), 'hex') FROM audit_entries WHERE tenant_id = @t AND seq = 3
              """, ("s", sequence));
        var result = await VerifyAsync();
        Assert.False(result.Valid);
        Assert.Equal(sequence, result.FirstBroken);
        Assert.Contains("outside the chain", result.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_outside_witness_catches_the_newest_entries_removed_with_their_checkpoints()
    {
        // The witness kept every tree head exported so far. Then someone truncates the log back to the first checkpoint,
        // deletes the later checkpoints and points the head at what is left: within one checkpoint interval, nothing in
        // the database can tell (the case ADR 0009 leaves to the witness) — the witness's heads can.
        var witnessed = await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None);
        var first = witnessed[0].Size;
        Assert.True(witnessed[^1].Size > first, $"tree heads at {string.Join(", ", witnessed.Select(c => c.Size))}");
        await ExecuteAsync("DELETE FROM audit_entries WHERE tenant_id = @t AND seq > @s", ("s", first));
        await ExecuteAsync("DELETE FROM audit_checkpoints WHERE tenant_id = @t AND size > @s", ("s", first));
        await ExecuteAsync("UPDATE audit_heads SET seq = @s, checkpoint_seq = @s, hash = (SELECT hash FROM audit_entries WHERE tenant_id = @t AND seq = @s) WHERE tenant_id = @t",
            ("s", first));
        await PointHeadAtAsync(first);
        await SetHeadRangeAsync();
        Assert.True((await VerifyAsync()).Valid);

        var result = await Server.Store.AuditLog.VerifyAsync(Tenant.Id, null, CancellationToken.None, witnessed);
        Assert.False(result.Valid);
        Assert.Equal(first + 1, result.FirstBroken);
        Assert.Contains("truncated", result.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_outside_witness_catches_a_rewritten_tail_whose_checkpoints_were_deleted()
    {
        // Enough reads for a witnessed head that covers the deleted entry and still lies inside the shortened chain.
        // (Three groups of reads, each put on the chain before the next: the appender signs at the end of a commit.)
        for (var group = 0; group < 3; group++)
        {
            for (var i = 0; i < 9; i++)
            {
                using var read = await Client.GetAsync($"/fhir/Patient/{PatientId}");
                Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            }
            await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None);
        }
        var witnessed = await Server.Store.AuditLog.CheckpointsAsync(Tenant.Id, CancellationToken.None);
        var first = witnessed[0].Size;
        var rows = await ReadRowsAsync();
        var covering = witnessed.First(c => c.Size >= first + 2 && c.Size < rows.Count).Size;
        await RewriteChainAsync(rows.Where(r => r.Sequence != first + 2));
        await ExecuteAsync("DELETE FROM audit_checkpoints WHERE tenant_id = @t AND size > @s", ("s", first));
        await PointHeadAtAsync(first);
        Assert.True((await VerifyAsync()).Valid);

        var result = await Server.Store.AuditLog.VerifyAsync(Tenant.Id, null, CancellationToken.None, witnessed);
        Assert.False(result.Valid);
        Assert.Equal(covering, result.FirstBroken);
        Assert.Contains("rewritten", result.Problem, StringComparison.Ordinal);

        // The untouched log gives every witnessed head; a head whose signature is not this key's is refused as a witness.
        var forged = witnessed.Select(c => c.Size == first ? c with { Root = new byte[32] } : c).ToList();
        await Assert.ThrowsAsync<ArgumentException>(() => Server.Store.AuditLog.VerifyAsync(Tenant.Id, null, CancellationToken.None, forged));
    }

    [Fact]
    public async Task When_the_chain_cannot_be_written_every_act_is_refused_and_no_journaled_entry_is_lost()
    {
        var readsBefore = await ReadEntriesOfPatientAsync();
        await ExecuteAsync("ALTER TABLE audit_entries RENAME TO audit_entries_away");
        var servedDuringOutage = 0;
        try
        {
            // A read's entry is in the journal before its data leaves; the first copy onto the chain that fails closes the door.
            var refused = false;
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!refused && DateTime.UtcNow < deadline)
            {
                using var read = await Client.GetAsync($"/fhir/Patient/{PatientId}");
                if (read.StatusCode == HttpStatusCode.OK)
                {
                    servedDuringOutage++;
                    continue;
                }
                Assert.True(read.StatusCode == HttpStatusCode.ServiceUnavailable, Server.AllLogs());
                var body = await read.Content.ReadAsStringAsync();
                Assert.Contains("OperationOutcome", body, StringComparison.Ordinal);
                Assert.DoesNotContain("Audit", body.Replace("audit log", "", StringComparison.Ordinal), StringComparison.Ordinal);
                refused = true;
            }
            Assert.True(refused, "reads were still served 10 s after the chain became unwritable");
            // The appender retries every 200 ms throughout the outage without accumulating connections.
            if (OperatingSystem.IsLinux() || Engine == Engine.Postgres)
            {
                var connections = await OpenConnectionsAsync();
                await Task.Delay(1500);
                Assert.InRange(await OpenConnectionsAsync(), 0, connections + 2);
            }
            using (var search = await Client.GetAsync("/fhir/Patient?family=audit"))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, search.StatusCode);
            }
            using (var create = await Client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Jamais", nir: Samples.ValidNir("1850375123999")))))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, create.StatusCode);
            }
            // A bulk load (vauban import, seed) commits each batch with its entries: no batch lands unaudited.
            var items = Enumerable.Range(0, 3).Select(i => Samples.Import("Patient", $"jamais-importe-{i}",
                Samples.Patient(family: "Jamais", nir: Samples.ValidNir("1850375123" + (900 + i))))).ToList();
            await Assert.ThrowsAsync<AuditUnavailableException>(() => Server.Store.Records.ImportAsync(Officer, items, null, CancellationToken.None));
        }
        finally
        {
            await ExecuteAsync("ALTER TABLE audit_entries_away RENAME TO audit_entries", catchUp: false);
        }
        // The journaled entries are copied as soon as the chain takes them again, and the door reopens.
        var reopened = DateTime.UtcNow.AddSeconds(10);
        HttpStatusCode status;
        do
        {
            using var read = await Client.GetAsync($"/fhir/Patient/{PatientId}");
            status = read.StatusCode;
            if (status != HttpStatusCode.OK) await Task.Delay(50);
        }
        while (status != HttpStatusCode.OK && DateTime.UtcNow < reopened);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(readsBefore + servedDuringOutage + 1, await ReadEntriesOfPatientAsync());
        using (var count = await Client.GetAsync("/fhir/Patient?family=jamais&_summary=count"))
        {
            Assert.Equal(0, (await count.BodyAsync()).GetProperty("total").GetInt32());
        }
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task A_record_altered_in_the_database_is_not_shown_its_read_is_audited_as_a_serious_failure_and_the_officer_is_alerted()
    {
        var victim = await CreateAsync("/fhir/Patient", Samples.Patient(family: "Victime", nir: Samples.ValidNir("2850375123009")));
        // Someone with write access to the database puts another patient's sealed body in the victim's row.
        await ExecuteAsync("UPDATE resources SET body = (SELECT body FROM resources WHERE tenant_id = @t AND id = @a) WHERE tenant_id = @t AND id = @v",
            ("a", PatientId), ("v", victim));

        foreach (var url in new[] { $"/fhir/Patient/{victim}", $"/fhir/Patient/{victim}/_history/1", $"/fhir/Patient?_id={victim}", $"/fhir/Patient/{victim}/_history" })
        {
            using var response = await Client.GetAsync(url);
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            var text = await response.Content.ReadAsStringAsync();
            Assert.Contains("OperationOutcome", text, StringComparison.Ordinal);
            Assert.Contains($"Patient/{victim} cannot be shown: its stored copy failed the integrity check", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Audité", text, StringComparison.Ordinal);
            Assert.Equal("no-store", response.Headers.CacheControl?.NoStore == true ? "no-store" : "");
        }
        // Every attempt is on the chain as a serious failure naming the victim; none as a read that succeeded.
        var entries = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = victim, Count = 100 }, CancellationToken.None) ?? [];
        var attempts = entries.Where(e => e.Action is AuditAction.Read or AuditAction.VRead or AuditAction.Search or AuditAction.History).ToList();
        Assert.Equal(4, attempts.Count);
        Assert.All(attempts, e => Assert.Equal(AuditOutcome.SeriousFailure, e.Outcome));
        var alerts = (await Server.Store.Alerts.ListAsync(Tenant.Id, all: true, 100, CancellationToken.None)).Where(a => a.Kind == KnownAlertKinds.RecordIntegrity).ToList();
        Assert.Equal(4, alerts.Count);
        Assert.All(alerts, a => Assert.Contains($"Patient/{victim} version 1 failed its integrity check", a.Detail, StringComparison.Ordinal));
        // The record whose body was copied is intact.
        using (var intact = await Client.GetAsync($"/fhir/Patient/{PatientId}")) Assert.Equal(HttpStatusCode.OK, intact.StatusCode);
        Assert.True((await VerifyAsync()).Valid);
    }

    [Fact]
    public async Task Entries_journaled_by_a_process_that_stopped_before_they_reached_the_chain_are_put_on_it_by_the_next()
    {
        var journals = Path.Combine(Path.GetTempPath(), "vauban-journal-" + Guid.NewGuid().ToString("N"));
        try
        {
            var readsBefore = await ReadEntriesOfPatientAsync();
            var options = new StoreOptions(Server.Db, Server.MasterKey) { Audit = new AuditOptions { JournalDirectory = journals } };
            var left = await LeaveAJournalAsync(options, journals);
            // A power loss tore the record it was writing (its last byte is not zero: zeros after a journal's records are
            // the space allocated ahead of them, not counted as lost).
            await File.AppendAllBytesAsync(left, [0x56, 0x41, 0x4A, 0x31, 0xFF, 0x00, 0x01]);

            var goodLength = new FileInfo(left).Length - 7;
            var alertsBefore = (await Server.Store.Alerts.ListAsync(Tenant.Id, all: true, 100, CancellationToken.None))
                .Count(a => a.Kind == KnownAlertKinds.AuditJournalDamaged);
            // A journal holds every establishment's acts: the officer of one it may not concern is told too.
            var clinic = await Server.Store.Tenants.AddAsync("clinique-journal", CancellationToken.None);

            // The next process to open the store puts the entry on the chain, once, and deletes the journal; the security
            // officer is told that the journal's end could not be read.
            await using (var next = await VaubanStore.OpenAsync(options, CancellationToken.None))
            {
                Assert.Empty(Directory.GetFiles(journals, "*.journal"));
            }
            await using (var again = await VaubanStore.OpenAsync(options, CancellationToken.None)) { }
            var damaged = (await Server.Store.Alerts.ListAsync(Tenant.Id, all: true, 100, CancellationToken.None))
                .Where(a => a.Kind == KnownAlertKinds.AuditJournalDamaged).ToList();
            Assert.Equal(alertsBefore + 1, damaged.Count); // once: the second open found no journal
            Assert.Contains(Path.GetFileName(left), damaged[0].Detail, StringComparison.Ordinal);
            Assert.Contains("ended in 7 bytes", damaged[0].Detail, StringComparison.Ordinal);
            Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"after {goodLength:N0} good ones"), damaged[0].Detail, StringComparison.Ordinal);
            var atClinic = Assert.Single(await Server.Store.Alerts.ListAsync(clinic.Id, all: true, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.AuditJournalDamaged);
            Assert.Equal(damaged[0].Detail, atClinic.Detail);
            Assert.Equal(readsBefore + 1, await ReadEntriesOfPatientAsync());
            var result = await VerifyAsync();
            Assert.True(result.Valid, result.Problem);
        }
        finally
        {
            if (Directory.Exists(journals)) Directory.Delete(journals, recursive: true);
        }
    }

    [Fact]
    public async Task A_torn_journal_end_the_chain_already_holds_raises_no_alert()
    {
        var journals = Path.Combine(Path.GetTempPath(), "vauban-journal-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new StoreOptions(Server.Db, Server.MasterKey) { Audit = new AuditOptions { JournalDirectory = journals } };
            var left = await LeaveAJournalAsync(options, journals);
            var length = new FileInfo(left).Length;
            // The journal's last record reached the chain, but not the disk in the file: a power loss tore it there.
            await ExecuteAsync("INSERT INTO audit_journals (name, ingested) VALUES (@n, @o)", catchUp: true, ("n", Path.GetFileName(left)), ("o", length));
            await using (var file = new FileStream(left, FileMode.Open)) file.SetLength(length - 3);
            var alertsBefore = (await Server.Store.Alerts.ListAsync(Tenant.Id, all: true, 100, CancellationToken.None)).Count;

            await using (var next = await VaubanStore.OpenAsync(options, CancellationToken.None))
            {
                Assert.Empty(Directory.GetFiles(journals, "*.journal"));
            }
            Assert.Equal(alertsBefore, (await Server.Store.Alerts.ListAsync(Tenant.Id, all: true, 100, CancellationToken.None)).Count);
        }
        finally
        {
            if (Directory.Exists(journals)) Directory.Delete(journals, recursive: true);
        }
    }

    [Fact]
    public async Task A_store_that_opens_beside_a_live_one_leaves_its_rotated_journals_alone()
    {
        var journals = Path.Combine(Path.GetTempPath(), "vauban-journal-" + Guid.NewGuid().ToString("N"));
        try
        {
            var readsBefore = await ReadEntriesOfPatientAsync();
            // Files of ~4 KiB: twenty reads rotate several, and the copy waits up to a second, so the second store opens while
            // rotated files still hold entries that are not on the chain.
            var audit = new AuditOptions { JournalDirectory = journals, JournalRotateAt = 4096, IngestEvery = TimeSpan.FromSeconds(1) };
            var options = new StoreOptions(Server.Db, Server.MasterKey) { Audit = audit };
            await using (var live = await VaubanStore.OpenAsync(options, CancellationToken.None))
            {
                for (var i = 0; i < 20; i++)
                {
                    Assert.NotNull(await live.Records.ReadAsync(AccessContext.Operator(Tenant, $"read {i} with a note long enough to fill the journal quickly"),
                        "Patient", PatientId, CancellationToken.None));
                }
                Assert.True(Directory.GetFiles(journals, "*.journal").Length > 1, "the journal was rotated");
                await using (var beside = await VaubanStore.OpenAsync(options, CancellationToken.None)) { }
            }
            Assert.Empty(Directory.GetFiles(journals, "*.journal"));
            Assert.Equal(readsBefore + 20, await ReadEntriesOfPatientAsync()); // each read once: none copied by both stores
            var result = await VerifyAsync();
            Assert.True(result.Valid, result.Problem);
        }
        finally
        {
            if (Directory.Exists(journals)) Directory.Delete(journals, recursive: true);
        }
    }

    [Fact]
    public async Task A_store_sharing_a_journal_folder_leaves_another_stores_journal_to_that_store()
    {
        var journals = Path.Combine(Path.GetTempPath(), "vauban-journal-" + Guid.NewGuid().ToString("N"));
        var otherFolder = Path.Combine(Path.GetTempPath(), "vauban-other-" + Guid.NewGuid().ToString("N"));
        try
        {
            var readsBefore = await ReadEntriesOfPatientAsync();
            var options = new StoreOptions(Server.Db, Server.MasterKey) { Audit = new AuditOptions { JournalDirectory = journals } };
            var left = await LeaveAJournalAsync(options, journals);

            // Another store (its own database and master key) set to the same journal folder opens: the journal is not its own.
            Directory.CreateDirectory(otherFolder);
            var other = new StoreOptions(Path.Combine(otherFolder, "other.db"), MasterKey.Generate()) { Audit = new AuditOptions { JournalDirectory = journals } };
            await using (var beside = await VaubanStore.OpenAsync(other, CancellationToken.None))
            {
                var clinic = await beside.Tenants.AddAsync("autre-clinique", CancellationToken.None);
                var verification = await beside.AuditLog.VerifyAsync(clinic.Id, null, CancellationToken.None);
                Assert.True(verification.Valid, verification.Problem);
                Assert.Empty(await beside.Alerts.ListAsync(clinic.Id, all: true, 100, CancellationToken.None));
            }
            Assert.True(File.Exists(left), "the other store took the journal");
            Assert.Equal(readsBefore, await ReadEntriesOfPatientAsync());

            // Its own store copies it.
            await using (var next = await VaubanStore.OpenAsync(options, CancellationToken.None)) { }
            Assert.False(File.Exists(left));
            Assert.Equal(readsBefore + 1, await ReadEntriesOfPatientAsync());
            Assert.True((await VerifyAsync()).Valid);
        }
        finally
        {
            if (Directory.Exists(journals)) Directory.Delete(journals, recursive: true);
            if (Directory.Exists(otherFolder)) Directory.Delete(otherFolder, recursive: true);
        }
    }

    [Fact]
    public async Task A_journal_left_in_the_folder_of_an_earlier_start_is_copied_by_a_start_with_another_folder()
    {
        var first = Path.Combine(Path.GetTempPath(), "vauban-journal-" + Guid.NewGuid().ToString("N"));
        var second = Path.Combine(Path.GetTempPath(), "vauban-journal-" + Guid.NewGuid().ToString("N"));
        try
        {
            var readsBefore = await ReadEntriesOfPatientAsync();
            var left = await LeaveAJournalAsync(new StoreOptions(Server.Db, Server.MasterKey) { Audit = new AuditOptions { JournalDirectory = first } }, first);

            // The next start has another journal folder (another VAUBAN_AUDIT_JOURNAL, or PostgreSQL's default from another
            // working directory): it still finds what the first left.
            await using (var next = await VaubanStore.OpenAsync(new StoreOptions(Server.Db, Server.MasterKey) { Audit = new AuditOptions { JournalDirectory = second } }, CancellationToken.None)) { }
            Assert.False(File.Exists(left));
            Assert.Equal(readsBefore + 1, await ReadEntriesOfPatientAsync());
            Assert.True((await VerifyAsync()).Valid);
        }
        finally
        {
            foreach (var folder in new[] { first, second }) if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_journal_named_before_journals_carried_their_stores_id_is_still_copied_from_the_stores_folder()
    {
        var journals = Path.Combine(Path.GetTempPath(), "vauban-journal-" + Guid.NewGuid().ToString("N"));
        try
        {
            var readsBefore = await ReadEntriesOfPatientAsync();
            var options = new StoreOptions(Server.Db, Server.MasterKey) { Audit = new AuditOptions { JournalDirectory = journals } };
            var left = await LeaveAJournalAsync(options, journals);
            Assert.Matches("^[0-9a-f]{32}-[0-9a-f]{32}\\.journal$", Path.GetFileName(left));
            var unnamed = Path.Combine(journals, Guid.NewGuid().ToString("N") + ".journal"); // a journal of a Vauban before step 11
            File.Move(left, unnamed);

            await using (var next = await VaubanStore.OpenAsync(options, CancellationToken.None)) { }
            Assert.False(File.Exists(unnamed));
            Assert.Equal(readsBefore + 1, await ReadEntriesOfPatientAsync());
        }
        finally
        {
            if (Directory.Exists(journals)) Directory.Delete(journals, recursive: true);
        }
    }

    /// <summary>A PostgreSQL store's default journal folder was named from its description (host-port-database); it is now named
    /// from its identity (host-port-database-user). A store an earlier Vauban journaled for in the folder named so — recorded
    /// by the store, still there — keeps it: its processes go on where they were, and what a stopped one left reaches the chain.
    /// A SQLite store's is beside its file, as it always was.</summary>
    [Fact]
    public async Task A_journal_folder_an_earlier_Vauban_named_for_the_store_is_kept_and_what_was_left_in_it_reaches_the_chain()
    {
        if (Engine == Engine.Sqlite)
        {
            Assert.Equal(Path.GetFullPath(Server.Db) + "-audit", Server.Store.Audit.JournalDirectory);
            return;
        }
        var read = new NpgsqlConnectionStringBuilder(Server.Db);
        var journals = Path.Combine(Directory.GetCurrentDirectory(), "data", "audit-journal");
        var earlier = Path.Combine(journals, FolderName($"{read.Host}-{read.Port}-{read.Database}"));
        try
        {
            // Opened first by this Vauban, the store takes the name from its identity.
            Assert.Equal(Path.Combine(journals, FolderName($"{read.Host}-{read.Port}-{read.Database}-{read.Username}")), Server.Store.Audit.JournalDirectory);
            var readsBefore = await ReadEntriesOfPatientAsync();
            // A process of an earlier Vauban journaled in the folder it named so, and stopped with an entry there not yet on the chain.
            var left = await LeaveAJournalAsync(new StoreOptions(Server.Db, Server.MasterKey) { Audit = new AuditOptions { JournalDirectory = earlier } }, earlier);
            await using (var upgraded = await VaubanStore.OpenAsync(new StoreOptions(Server.Db, Server.MasterKey), CancellationToken.None))
            {
                Assert.Equal(earlier, upgraded.Audit.JournalDirectory);
                Assert.False(File.Exists(left));
            }
            Assert.Equal(readsBefore + 1, await ReadEntriesOfPatientAsync());
            Assert.True((await VerifyAsync()).Valid);
        }
        finally
        {
            if (Directory.Exists(earlier)) Directory.Delete(earlier, recursive: true);
        }
    }

    [Fact]
    public async Task The_chain_survives_a_restart_and_keeps_growing()
    {
        var before = await VerifyAsync();
        await Server.Store.DisposeAsync();
        await using var reopened = await VaubanStore.OpenAsync(new StoreOptions(Server.Db, Server.MasterKey), CancellationToken.None);
        await reopened.Records.ReadAsync(AccessContext.Operator(Tenant, "after restart"), "Patient", PatientId, CancellationToken.None);
        var after = await reopened.AuditLog.VerifyAsync(Tenant.Id, null, CancellationToken.None);
        Assert.True(after.Valid, after.Problem);
        Assert.Equal(before.Entries + 1, after.Entries);
    }

    [Fact]
    public async Task Removing_lookup_rows_hides_nothing_from_the_lookup_check()
    {
        // The appender builds lookups once IndexEvery entries wait for them, or when it has been idle a second.
        var (_, indexed) = await HeadAsync();
        for (var deadline = DateTime.UtcNow.AddSeconds(5); indexed < 8 && DateTime.UtcNow < deadline; (_, indexed) = await HeadAsync(catchUp: false)) await Task.Delay(100);
        Assert.True(indexed >= 8, $"lookups built up to {indexed}");
        var clean = await Server.Store.AuditLog.VerifyLookupsAsync(Tenant.Id, CancellationToken.None);
        Assert.True(clean.Complete, $"first missing {clean.FirstMissing}");

        // An insider deletes the lookup row that would show one read on the patient's history.
        long hidden;
        await using (var connection = await RawAsync())
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = $"SELECT max(seq) FROM audit_index WHERE tenant_id = @t AND kind = {AuditChain.PatientLookup}";
            AddParameter(command, "t", Tenant.Id);
            hidden = Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }
        await ExecuteAsync($"DELETE FROM audit_index WHERE tenant_id = @t AND seq = @s AND kind = {AuditChain.PatientLookup}", ("s", hidden));
        var found = await Server.Store.AuditLog.SearchAsync(Officer, new AuditQuery { Patient = PatientId, Count = 1000 }, CancellationToken.None);
        Assert.DoesNotContain(found!, e => e.Sequence == hidden); // what the deletion does to searches…
        var check = await Server.Store.AuditLog.VerifyLookupsAsync(Tenant.Id, CancellationToken.None);
        Assert.False(check.Complete); // …and the check that finds it
        Assert.Equal(hidden, check.FirstMissing);
        Assert.True((await VerifyAsync()).Valid); // the chain itself is untouched
    }
}

/// <summary>The server <see cref="AuditTests"/> share.</summary>
public abstract class AuditServer(Engine engine) : SharedServer(engine, AuditTestSetUp.Configure);

public sealed class AuditServer_Sqlite() : AuditServer(Engine.Sqlite);

public sealed class AuditServer_Postgres() : AuditServer(Engine.Postgres);

public sealed class AuditTests_Sqlite(AuditServer_Sqlite shared) : AuditTests(shared), IClassFixture<AuditServer_Sqlite>;

public sealed class AuditTests_Postgres(AuditServer_Postgres shared) : AuditTests(shared), IClassFixture<AuditServer_Postgres>;

public sealed class AuditLogAttackTests_Sqlite() : AuditLogAttackTests(Engine.Sqlite);

public sealed class AuditLogAttackTests_Postgres() : AuditLogAttackTests(Engine.Postgres);
