// A bulk load (vauban seed, vauban import) that makes up most of a PostgreSQL store rebuilds the indexes its inserts
// left half empty, concurrently; the store then answers as before, and keeps refusing a second resource with the
// same id. On SQLite there is nothing to rebuild.
using System.Net;
using Npgsql;
using Vauban.Access;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public abstract class BulkLoadTests : IAsyncLifetime
{
    private readonly Engine _engine;
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;

    protected BulkLoadTests(Engine engine) => _engine = engine;

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine);
        _tenant = await _server.Store.Tenants.AddAsync("chu-bulk", CancellationToken.None);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    /// <summary>The object ids of the indexes a bulk load may rebuild (PostgreSQL; empty on SQLite).</summary>
    private async Task<Dictionary<string, uint>> IndexOidsAsync()
    {
        var oids = new Dictionary<string, uint>();
        if (_engine != Engine.Postgres) return oids;
        await using var connection = new NpgsqlConnection(_server.Db);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT relname, oid FROM pg_class WHERE relname IN ('idx_ref_pkey', 'resources_key', 'idx_date_pkey')", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) oids[reader.GetString(0)] = reader.GetFieldValue<uint>(1);
        Assert.Equal(3, oids.Count);
        return oids;
    }

    [Fact]
    public async Task A_load_that_makes_up_the_store_leaves_it_compact_and_whole()
    {
        var records = _server.Store.Records;
        records.CompactIndexesAfter = 10;
        var items = new List<ImportItem> { Samples.Import("Practitioner", "pr-bulk", Samples.Practitioner()) };
        for (var i = 0; i < 20; i++)
        {
            var patient = $"pat-bulk-{i}";
            items.Add(Samples.Import("Patient", patient, Samples.Patient(family: "Chargé" + i, nir: Samples.ValidNir("1850375123" + (100 + i)))));
            items.Add(Samples.Import("Observation", $"obs-bulk-{i}", Samples.Observation($"Patient/{patient}")));
            items.Add(Samples.Import("Encounter", $"enc-bulk-{i}", Samples.Encounter(patient, "pr-bulk", "2026-03-01T10:00:00+01:00")));
        }
        var operatorContext = AccessContext.Operator(_tenant, "bulk load test");
        var before = await IndexOidsAsync();
        var summary = await records.ImportAsync(operatorContext, items, null, CancellationToken.None);
        Assert.Equal(61, summary.Created);
        Assert.Empty(summary.Rejected);

        if (_engine == Engine.Postgres)
        {
            // Rebuilt (a concurrent rebuild makes a new index and drops the old one)…
            var rebuilt = await IndexOidsAsync();
            Assert.All(rebuilt, pair => Assert.NotEqual(before[pair.Key], pair.Value));
            // …but not after a load that is a small part of the store.
            var small = await records.ImportAsync(operatorContext, [Samples.Import("Patient", "pat-bulk-late", Samples.Patient(family: "Tardif", nir: Samples.ValidNir("1850375123199")))],
                null, CancellationToken.None);
            Assert.Equal(1, small.Created);
            Assert.Equal(rebuilt, await IndexOidsAsync());

            await using var connection = new NpgsqlConnection(_server.Db);
            await connection.OpenAsync();
            // Every index valid and in use, no copy left behind by the concurrent rebuild.
            await using (var indexes = new NpgsqlCommand("""
                SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relname IN ('idx_ref_pkey', 'resources_key', 'idx_date_pkey') OR c.relname LIKE '%ccnew%'
                """, connection))
            await using (var reader = await indexes.ExecuteReaderAsync())
            {
                var found = new Dictionary<string, bool>();
                while (await reader.ReadAsync()) found[reader.GetString(0)] = reader.GetBoolean(1);
                Assert.Equal(new Dictionary<string, bool> { ["idx_ref_pkey"] = true, ["resources_key"] = true, ["idx_date_pkey"] = true }, found);
            }
            // Still unique: a second row with an existing resource's tenant, type and id is refused.
            await using var duplicate = new NpgsqlCommand("""
                INSERT INTO resources (tenant_id, type, id, version, last_updated, deleted, body)
                SELECT tenant_id, type, id, 1, 0, 0, body FROM resources WHERE id = 'pat-bulk-0'
                """, connection);
            var refused = await Assert.ThrowsAsync<PostgresException>(() => duplicate.ExecuteNonQueryAsync());
            Assert.Equal(PostgresErrorCodes.UniqueViolation, refused.SqlState);
        }

        // Searches through the rebuilt indexes: by reference (with what points back), by date, by id.
        using var http = await _server.ClientAsync("chu-bulk");
        using (var withRecords = await http.GetAsync("/fhir/Patient?_id=pat-bulk-7&_revinclude=Observation:patient&_revinclude=Encounter:patient"))
        {
            Assert.Equal(HttpStatusCode.OK, withRecords.StatusCode);
            Assert.Equal(3, (await withRecords.BodyAsync()).GetProperty("entry").GetArrayLength());
        }
        using (var byPractitioner = await http.GetAsync("/fhir/Encounter?practitioner=Practitioner/pr-bulk&date=ge2026-03-01&_summary=count"))
        {
            Assert.Equal(20, (await byPractitioner.BodyAsync()).GetProperty("total").GetInt32());
        }
    }

    [Fact]
    public async Task A_load_files_records_only_under_patients_that_exist_in_whatever_order_it_gives_them()
    {
        var records = _server.Store.Records;
        records.ImportBatchSize = 2;
        var operatorContext = AccessContext.Operator(_tenant, "bulk load test");
        // Records before their patient, in earlier batches; one record whose patient is nowhere.
        var items = new List<ImportItem>
        {
            Samples.Import("Observation", "obs-early-1", Samples.Observation("Patient/pat-late")),
            Samples.Import("Observation", "obs-early-2", Samples.Observation("Patient/pat-late")),
            Samples.Import("Observation", "obs-orphan", Samples.Observation("Patient/pat-nowhere")) with { Where = "Bundle.entry[2] (Observation/obs-orphan)" },
            Samples.Import("Encounter", "enc-ok", Samples.Encounter("pat-first", "pr-any", "2026-03-01T10:00:00+01:00")),
            Samples.Import("Patient", "pat-first", Samples.Patient(family: "Premier", nir: Samples.ValidNir("1850375123201"))),
            Samples.Import("Practitioner", "pr-any", Samples.Practitioner()),
            Samples.Import("Patient", "pat-late", Samples.Patient(family: "Tardif", nir: Samples.ValidNir("1850375123202"))),
        };
        var summary = await records.ImportAsync(operatorContext, items, null, CancellationToken.None);
        Assert.Equal(6, summary.Created);
        var rejected = Assert.Single(summary.Rejected);
        Assert.Equal("Bundle.entry[2] (Observation/obs-orphan): Observation.subject names Patient/pat-nowhere, which is neither in the store nor loaded by this import (if the import holds it, it was rejected: see its line).", rejected.Diagnostics);
        Assert.Equal(RecordStatus.NotFound, (await records.ReadAsync(operatorContext, "Observation", "obs-orphan", CancellationToken.None)).Status);
        Assert.Equal(RecordStatus.Ok, (await records.ReadAsync(operatorContext, "Observation", "obs-early-1", CancellationToken.None)).Status);

        // Held for the caller (a folder's later file), not rejected; loaded once its patient is.
        var held = await records.ImportAsync(operatorContext, [Samples.Import("Observation", "obs-held", Samples.Observation("Patient/pat-next-file"))], null,
            CancellationToken.None, holdWaiting: true);
        Assert.Equal(0, held.Created);
        Assert.Empty(held.Rejected);
        Assert.Equal("obs-held", Assert.Single(held.Waiting).Id);
        await records.ImportAsync(operatorContext, [Samples.Import("Patient", "pat-next-file", Samples.Patient(family: "Suivant", nir: Samples.ValidNir("1850375123203")))],
            null, CancellationToken.None);
        var again = await records.ImportAsync(operatorContext, held.Waiting, null, CancellationToken.None);
        Assert.Equal(1, again.Created);
        Assert.Empty(again.Rejected);
    }
}

public sealed class BulkLoadTests_Sqlite() : BulkLoadTests(Engine.Sqlite);

public sealed class BulkLoadTests_Postgres() : BulkLoadTests(Engine.Postgres);
