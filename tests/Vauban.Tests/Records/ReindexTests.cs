// Re-indexing (vauban reindex): records whose index rows an older extraction wrote — simulated by removing or altering
// rows in the database — are missing from searches until re-indexed, and found after; a record changed between the
// re-indexing's read and its write keeps the rows of its newer version; a blind-index hash the current extraction no longer
// makes is removed (on both engines), by a reindex or by the record's next update or delete; the store's index format is recorded.
using System.Data.Common;
using System.Net;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Records;
using Vauban.Records.Search;
using Vauban.Storage;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public abstract class ReindexTests : IAsyncLifetime
{
    private readonly Engine _engine;
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private HttpClient _http = null!;

    protected ReindexTests(Engine engine) => _engine = engine;

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine);
        _http = await _server.ClientAsync("chu-reindex");
        _tenant = (await _server.Store.Tenants.FindAsync("chu-reindex", CancellationToken.None))!;
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    private AccessContext Operator => AccessContext.Operator(_tenant, KnownPurposes.SystemAdministration);

    private DbConnection Connect() => _engine == Engine.Sqlite ? new SqliteConnection($"Data Source={_server.Db};Pooling=False") : new NpgsqlConnection(_server.Db);

    private async Task<long> ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = Connect();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value;
            command.Parameters.Add(parameter);
        }
        return Convert.ToInt64(await command.ExecuteScalarAsync() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }

    private Task<long> RidAsync(string id) => ExecuteAsync("SELECT rid FROM resources WHERE id = @id", ("id", id));

    private async Task<string> CreateAsync(string json)
    {
        using var response = await _http.PostAsync($"/fhir/{JsonDocument.Parse(json).RootElement.GetProperty("resourceType").GetString()}", FhirContent.Json(json));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.BodyAsync()).GetProperty("id").GetString()!;
    }

    private async Task<int> FoundAsync(string query)
    {
        using var response = await _http.GetAsync("/fhir/" + query + "&_summary=count");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.BodyAsync()).GetProperty("total").GetInt32();
    }

    private static string LinkedPatient(string other) => Samples.Patient(family: "Doublon", nir: Samples.ValidNir("1850375123301"))
        .TrimEnd().TrimEnd('}') + $", \"link\": [{{ \"other\": {{ \"reference\": \"Patient/{other}\" }}, \"type\": \"seealso\" }}] }}";

    [Fact]
    public async Task Records_indexed_by_an_older_extraction_are_missed_by_search_until_reindexed_and_the_index_format_is_recorded()
    {
        var first = await CreateAsync(Samples.Patient(family: "Ancienne", nir: Samples.ValidNir("1850375123302")));
        var linked = await CreateAsync(LinkedPatient(first));
        var observation = await CreateAsync(Samples.Observation($"Patient/{first}", effective: "2026-03-01T10:00:00+01:00"));
        Assert.Equal(1, await FoundAsync($"Patient?link=Patient/{first}"));
        Assert.Equal(1, await FoundAsync("Patient?family=Ancienne"));
        Assert.Equal(1, await FoundAsync($"Observation?subject=Patient/{first}&date=2026-03-01"));

        // What an older Vauban left: no link reference (param 116), no blind-index hashes for one patient, no date of care for the
        // observation; and a reference and a date that today's extraction does not make. The store says format 1.
        var linkedRid = await RidAsync(linked);
        var firstRid = await RidAsync(first);
        var observationRid = await RidAsync(observation);
        await ExecuteAsync("DELETE FROM idx_ref WHERE rid = @r AND param = 116", ("r", linkedRid));
        await StoreHashesAsync(firstRid, []);
        await ExecuteAsync("DELETE FROM idx_date WHERE rid = @r", ("r", observationRid));
        // A reference row under the observation's performer parameter (906), which today's extraction does not make of it.
        await ExecuteAsync("INSERT INTO idx_ref (target, param, rid) VALUES (@x, 906, @r)", ("x", $"Patient/{first}"), ("r", observationRid));
        await ExecuteAsync("INSERT INTO idx_date (tenant_id, param, lo, hi, rid) VALUES (@t, 903, 0, 1, @r)", ("t", _tenant.Id), ("r", observationRid));
        await ExecuteAsync("UPDATE store_settings SET value = '1' WHERE name = 'index_version'");
        Assert.Equal(0, await FoundAsync($"Patient?link=Patient/{first}"));
        Assert.Equal(0, await FoundAsync("Patient?family=Ancienne"));
        Assert.Equal(0, await FoundAsync($"Observation?subject=Patient/{first}&date=2026-03-01"));
        var before = await _server.Store.Records.IndexStatusAsync(CancellationToken.None);
        Assert.True(before.Outdated);
        Assert.Contains("vauban reindex", before.Warning, StringComparison.Ordinal);

        var summary = await _server.Store.Records.ReindexAsync(Operator, null, null, CancellationToken.None);
        Assert.Equal(3, summary.Records);
        Assert.Equal(3, summary.Changed);
        Assert.True(summary.Complete);
        await _server.Store.Records.RecordIndexCurrentAsync(CancellationToken.None);
        Assert.False((await _server.Store.Records.IndexStatusAsync(CancellationToken.None)).Outdated);

        Assert.Equal(1, await FoundAsync($"Patient?link=Patient/{first}"));
        Assert.Equal(1, await FoundAsync("Patient?family=Ancienne"));
        Assert.Equal(1, await FoundAsync($"Observation?subject=Patient/{first}&date=2026-03-01"));
        Assert.Equal(0, await ExecuteAsync("SELECT count(*) FROM idx_ref WHERE rid = @r AND param = 906", ("r", observationRid)));
        Assert.Equal(0, await ExecuteAsync("SELECT count(*) FROM idx_date WHERE rid = @r AND lo = 0", ("r", observationRid)));
        // The link protects the linked patient again: it cannot be deleted while another record names it.
        using (var delete = await _http.DeleteAsync($"/fhir/Patient/{first}"))
        {
            Assert.Equal(HttpStatusCode.Conflict, delete.StatusCode);
        }

        // Idempotent: a second run finds nothing to change.
        var again = await _server.Store.Records.ReindexAsync(Operator, null, null, CancellationToken.None);
        Assert.Equal((3, 0), (again.Records, again.Changed));

        // Audited as an administrative act, once a batch, naming no patient or record.
        var entries = await _server.Store.AuditLog.SearchAsync(Operator, new AuditQuery { Actions = [AuditAction.Administration], Count = 50 }, CancellationToken.None) ?? [];
        var reindexed = entries.Where(e => e.Detail.Note?.StartsWith("reindex", StringComparison.Ordinal) == true).ToList();
        Assert.Equal(2, reindexed.Count);
        Assert.Contains(reindexed, e => e.Detail.Note == "reindex: 3 record(s) re-extracted, 3 with changed index rows");
        Assert.All(reindexed, e => Assert.DoesNotContain(e.Detail.Records, r => r.Contains(first, StringComparison.Ordinal) || r.Contains(linked, StringComparison.Ordinal)));
        Assert.True((await _server.Store.AuditLog.VerifyAsync(_tenant.Id, null, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task A_date_of_care_indexed_as_UTC_day_by_format_4_covers_Paris_day_once_reindexed()
    {
        // What format 4 made of "2026-12-07": UTC's day, an hour later than Paris's.
        var (patient, rid) = await ObservationAsFormatLeftItAsync("1850375123309", "2026-12-07", "Z", format: 4);
        // Under the old rows, a search's "began before 23:30 UTC on the 6th" missed it, and "still going at 23:30 UTC on the 7th" found it.
        Assert.Equal(0, await FoundAsync($"Observation?subject=Patient/{patient}&date=lt2026-12-06T23:30:00Z"));
        Assert.Equal(1, await FoundAsync($"Observation?subject=Patient/{patient}&date=gt2026-12-07T23:30:00Z"));

        await ReindexedToAsync(rid, "2026-12-06T23:00:00Z", "2026-12-07T23:00:00Z");
        Assert.Equal(1, await FoundAsync($"Observation?subject=Patient/{patient}&date=lt2026-12-06T23:30:00Z"));
        Assert.Equal(0, await FoundAsync($"Observation?subject=Patient/{patient}&date=gt2026-12-07T23:30:00Z"));
        Assert.Equal(1, await FoundAsync($"Observation?subject=Patient/{patient}&date=2026-12-07"));
    }

    [Fact]
    public async Task A_date_of_care_before_1911_indexed_on_tzdata_mean_time_by_format_5_is_UTC_plus_1_once_reindexed()
    {
        // What format 5 made of "1905-03-04" on a machine with tzdata: Paris's mean time then, 50 minutes later than UTC+1.
        var (patient, rid) = await ObservationAsFormatLeftItAsync("1850375123311", "1905-03-04", "+00:10", format: 5);
        Assert.Equal(0, await FoundAsync($"Observation?subject=Patient/{patient}&date=lt1905-03-03T23:30:00Z"));

        await ReindexedToAsync(rid, "1905-03-03T23:00:00Z", "1905-03-04T23:00:00Z");
        Assert.Equal(1, await FoundAsync($"Observation?subject=Patient/{patient}&date=lt1905-03-03T23:30:00Z"));
        Assert.Equal(1, await FoundAsync($"Observation?subject=Patient/{patient}&date=1905-03-04"));
    }

    /// <summary>A patient and its observation of <paramref name="day"/> (its row), whose date row is what index format
    /// <paramref name="format"/> made of it (<see cref="PlantDayAsync"/>), in a store recorded at that format, which is outdated.</summary>
    private async Task<(string Patient, long Rid)> ObservationAsFormatLeftItAsync(string nir, string day, string offset, int format)
    {
        var patient = await CreateAsync(Samples.Patient(family: "Format", nir: Samples.ValidNir(nir)));
        var rid = await RidAsync(await CreateAsync(Samples.Observation($"Patient/{patient}", effective: day)));
        await PlantDayAsync(rid, day, offset);
        await ExecuteAsync("UPDATE store_settings SET value = @v WHERE name = 'index_version'", ("v", format.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var status = await _server.Store.Records.IndexStatusAsync(CancellationToken.None);
        Assert.Equal((format, IndexEntries.FormatVersion, true), (status.Stored, status.Current, status.Outdated));
        Assert.Contains("vauban reindex", status.Warning, StringComparison.Ordinal);
        return (patient, rid);
    }

    /// <summary>Reindexes the store (a patient and its observation, row <paramref name="rid"/>, whose date row changes), records its
    /// format, and checks that row is now from <paramref name="from"/> to the millisecond before <paramref name="next"/>.</summary>
    private async Task ReindexedToAsync(long rid, string from, string next)
    {
        var summary = await _server.Store.Records.ReindexAsync(Operator, null, null, CancellationToken.None);
        Assert.Equal((2, 1, true), (summary.Records, summary.Changed, summary.Complete));
        await _server.Store.Records.RecordIndexCurrentAsync(CancellationToken.None);
        Assert.False((await _server.Store.Records.IndexStatusAsync(CancellationToken.None)).Outdated);
        Assert.Equal(Ms(from), await ExecuteAsync("SELECT lo FROM idx_date WHERE rid = @r", ("r", rid)));
        Assert.Equal(Ms(next) - 1, await ExecuteAsync("SELECT hi FROM idx_date WHERE rid = @r", ("r", rid)));
    }

    [Fact]
    public async Task An_update_or_a_delete_before_reindexing_removes_the_date_rows_an_older_format_made()
    {
        var patient = await CreateAsync(Samples.Patient(family: "Avance", nir: Samples.ValidNir("1850375123310")));
        var observation = await CreateAsync(Samples.Observation($"Patient/{patient}", effective: "2026-12-07"));
        var rid = await RidAsync(observation);
        // What format 4 made of "2026-12-07" (UTC's day), before any reindex.
        await PlantDayAsync(rid, "2026-12-07", "Z");
        await ExecuteAsync("UPDATE store_settings SET value = '4' WHERE name = 'index_version'");

        // Corrected to the 20th: the 7th's old row goes with the old version, though today's extraction of it is another range.
        using (var update = await _http.PutAsync($"/fhir/Observation/{observation}",
            FhirContent.Json(Samples.Observation($"Patient/{patient}", effective: "2026-12-20").Replace("\"resourceType\": \"Observation\",", $"\"resourceType\": \"Observation\", \"id\": \"{observation}\",", StringComparison.Ordinal))))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }
        Assert.Equal(1, await ExecuteAsync("SELECT COUNT(*) FROM idx_date WHERE rid = @r", ("r", rid)));
        Assert.Equal(0, await FoundAsync($"Observation?subject=Patient/{patient}&date=lt2026-12-08"));
        Assert.Equal(1, await FoundAsync($"Observation?subject=Patient/{patient}&date=2026-12-20"));

        // Planted again, then deleted: no row of it stays (re-indexing does not look at deleted records).
        await PlantDayAsync(rid, "2026-12-20", "Z");
        using (var delete = await _http.DeleteAsync($"/fhir/Observation/{observation}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        Assert.Equal(0, await ExecuteAsync("SELECT COUNT(*) FROM idx_date WHERE rid = @r", ("r", rid)));
    }

    private static long Ms(string at) => DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();

    /// <summary>Sets row <paramref name="rid"/>'s date row to what an older index format made of <paramref name="day"/>, a date
    /// without a zone: the day at <paramref name="offset"/> (format 4: UTC's, "Z"; format 5 on a machine with tzdata, before 1911:
    /// Paris's mean time, "+00:10" as .NET rounds it).</summary>
    private Task<long> PlantDayAsync(long rid, string day, string offset) => ExecuteAsync("UPDATE idx_date SET lo = @lo, hi = @hi WHERE rid = @r",
        ("lo", Ms(day + "T00:00:00" + offset)), ("hi", Ms(day + "T23:59:59.999" + offset)), ("r", rid));

    /// <summary>The blind-index hashes stored for row <paramref name="rid"/> (<see cref="StoredHashes"/>).</summary>
    private async Task<HashSet<long>> StoredHashesAsync(long rid)
    {
        await using var connection = Connect();
        await connection.OpenAsync();
        return await StoredHashes.ReadAsync(connection, _engine, rid);
    }

    /// <summary>Stores <paramref name="hashes"/> as row <paramref name="rid"/>'s blind-index hashes, as an older extraction would have
    /// left them: the row's list, and on SQLite the idx_hash rows.</summary>
    private async Task StoreHashesAsync(long rid, IEnumerable<long> hashes)
    {
        var list = hashes.Distinct().ToList();
        if (_engine == Engine.Sqlite)
        {
            await ExecuteAsync("DELETE FROM idx_hash WHERE rid = @r", ("r", rid));
            foreach (var hash in list) await ExecuteAsync("INSERT INTO idx_hash (h, rid) VALUES (@h, @r)", ("h", hash), ("r", rid));
        }
        await ExecuteAsync("UPDATE resources SET hashes = @hs WHERE rid = @r", ("hs", HashColumn.Value(_engine == Engine.Sqlite ? StorageEngine.Sqlite : StorageEngine.Postgres, list)), ("r", rid));
    }

    [Fact]
    public async Task A_blind_index_hash_that_an_older_extraction_made_and_todays_no_longer_makes_is_removed_and_the_record_no_longer_found_by_it()
    {
        var patient = await CreateAsync(Samples.Patient(family: "Actuelle", nir: Samples.ValidNir("1850375123305")));
        var rid = await RidAsync(patient);
        var current = await StoredHashesAsync(rid);
        Assert.NotEmpty(current);

        // What an older extraction left: hashes of a family name the record does not hold (as an older Vauban that hashed a name
        // part today's rules no longer index would have), beside today's.
        var keys = await _server.Store.Keys.ForTenantAsync(_tenant.Id, CancellationToken.None);
        using var older = JsonDocument.Parse(Samples.Patient(family: "Ancienne", nir: Samples.ValidNir("1850375123305")));
        long[] stale = [.. IndexEntries.Extract("Patient", older.RootElement, keys.Index).Hashes.Where(h => !current.Contains(h)).Distinct()];
        Assert.NotEmpty(stale);
        await StoreHashesAsync(rid, (await StoredHashesAsync(rid)).Concat(stale));
        Assert.Equal(1, await FoundAsync("Patient?family=Ancienne"));

        var summary = await _server.Store.Records.ReindexAsync(Operator, "Patient", null, CancellationToken.None);
        Assert.Equal((1, 1), (summary.Records, summary.Changed));
        Assert.True(summary.Complete);

        // Exactly the rows today's extraction makes of the current version: the old name's are gone, the current name's kept.
        Assert.Equal(0, await FoundAsync("Patient?family=Ancienne"));
        Assert.Equal(1, await FoundAsync("Patient?family=Actuelle"));
        Assert.True(current.SetEquals(await StoredHashesAsync(rid)));

        var again = await _server.Store.Records.ReindexAsync(Operator, "Patient", null, CancellationToken.None);
        Assert.Equal((1, 0), (again.Records, again.Changed));
    }

    [Fact]
    public async Task A_NIR_indexed_as_typed_before_format_4_is_found_as_typed_until_the_reindex_and_in_its_compact_form_after_it()
    {
        // Corsica's 2a, typed with no-break spaces: format 3 indexed it so, format 4 in INSEE's compact form.
        var compact = Samples.ValidNir("284052A004123");
        var typed = string.Join('\u00A0', compact[..5], compact[5..7].ToLowerInvariant(), compact[7..]);
        var patient = await CreateAsync(Samples.Patient(family: "Casanova", nir: typed));
        var rid = await RidAsync(patient);
        var keys = await _server.Store.Keys.ForTenantAsync(_tenant.Id, CancellationToken.None);
        const int identifier = 104; // Patient.identifier
        long[] Hashes(string value) => [keys.Index.Hash(identifier, 'c', value), keys.Index.Hash(identifier, 's', Samples.InsNir + "|" + value)];
        var (format4, format3) = (Hashes(compact), Hashes(TextNormalizer.IdentifierBeforeFormat4(typed)));
        Assert.Subset(await StoredHashesAsync(rid), format4.ToHashSet());
        // The store as a Vauban before format 4 left it.
        await StoreHashesAsync(rid, (await StoredHashesAsync(rid)).Except(format4).Concat(format3));
        var asTyped = $"Patient?identifier={Uri.EscapeDataString(Samples.InsNir + "|" + typed)}";
        var asCompact = $"Patient?identifier={Uri.EscapeDataString(Samples.InsNir + "|" + compact)}";
        // Until the reindex: the value typed as it was stored is found (an upgrade makes no patient unfindable, nor registered
        // twice by a conditional create); the compact form is not, yet.
        Assert.Equal((1, 0), (await FoundAsync(asTyped), await FoundAsync(asCompact)));

        var summary = await _server.Store.Records.ReindexAsync(Operator, "Patient", null, CancellationToken.None);
        Assert.Equal(1, summary.Changed);
        Assert.Equal((1, 1), (await FoundAsync(asTyped), await FoundAsync(asCompact)));
        Assert.Equal(1, await FoundAsync($"Patient?identifier={compact}"));
    }

    [Fact]
    public async Task A_deleted_record_brought_back_leaves_none_of_the_hashes_its_deleted_version_listed()
    {
        // helper-113 M1: a delete before step 16 could leave an older extraction's hashes on a deleted record, which step 18 listed
        // on its row; brought back by a PUT, the list was overwritten without them, and nothing could remove them after (not even
        // a reindex): the record was found by a name it never held again.
        var patient = await CreateAsync(Samples.Patient(family: "Actuelle", nir: Samples.ValidNir("1850375123307")));
        var rid = await RidAsync(patient);
        using (var delete = await _http.DeleteAsync($"/fhir/Patient/{patient}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        var keys = await _server.Store.Keys.ForTenantAsync(_tenant.Id, CancellationToken.None);
        using var older = JsonDocument.Parse(Samples.Patient(family: "Ancienne", nir: Samples.ValidNir("1850375123307")));
        await StoreHashesAsync(rid, IndexEntries.Extract("Patient", older.RootElement, keys.Index).Hashes);
        Assert.Equal(0, await FoundAsync("Patient?family=Ancienne"));

        using (var back = await _http.PutAsync($"/fhir/Patient/{patient}",
            FhirContent.Json(Samples.Patient(family: "Nouvelle", nir: Samples.ValidNir("1850375123307"), id: patient))))
        {
            Assert.Equal(HttpStatusCode.Created, back.StatusCode);
        }
        Assert.Equal((0, 1), (await FoundAsync("Patient?family=Ancienne"), await FoundAsync("Patient?family=Nouvelle")));
        using var current = JsonDocument.Parse(Samples.Patient(family: "Nouvelle", nir: Samples.ValidNir("1850375123307"), id: patient));
        Assert.True(IndexEntries.Extract("Patient", current.RootElement, keys.Index).Hashes.ToHashSet().SetEquals(await StoredHashesAsync(rid)));
    }

    [Fact]
    public async Task Reindexing_puts_back_a_blind_index_row_lost_from_the_index_that_the_record_still_lists()
    {
        // helper-113 L1: re-indexing is what repairs the index, so it looks in idx_hash itself, not only at the row's list. SQLite
        // alone keeps rows apart from the list; PostgreSQL's GIN index is of the list itself.
        if (_engine != Engine.Sqlite) return;
        var patient = await CreateAsync(Samples.Patient(family: "Perdue", nir: Samples.ValidNir("1850375123308")));
        var rid = await RidAsync(patient);
        await ExecuteAsync("DELETE FROM idx_hash WHERE rid = @r", ("r", rid));
        Assert.Equal(0, await FoundAsync("Patient?family=Perdue"));

        var summary = await _server.Store.Records.ReindexAsync(Operator, "Patient", null, CancellationToken.None);
        Assert.Equal((1, 1), (summary.Records, summary.Changed));
        Assert.Equal(1, await FoundAsync("Patient?family=Perdue"));
        Assert.NotEmpty(await StoredHashesAsync(rid));
    }

    [Fact]
    public async Task An_update_or_a_delete_removes_the_blind_index_hashes_an_older_extraction_made_without_waiting_for_a_reindex()
    {
        var patient = await CreateAsync(Samples.Patient(family: "Actuelle", nir: Samples.ValidNir("1850375123306")));
        var rid = await RidAsync(patient);
        var current = await StoredHashesAsync(rid);
        var keys = await _server.Store.Keys.ForTenantAsync(_tenant.Id, CancellationToken.None);
        using var older = JsonDocument.Parse(Samples.Patient(family: "Ancienne", nir: Samples.ValidNir("1850375123306")));
        long[] stale = [.. IndexEntries.Extract("Patient", older.RootElement, keys.Index).Hashes.Where(h => !current.Contains(h)).Distinct()];
        await StoreHashesAsync(rid, (await StoredHashesAsync(rid)).Concat(stale));
        Assert.Equal(1, await FoundAsync("Patient?family=Ancienne"));

        using (var update = await _http.PutAsync($"/fhir/Patient/{patient}",
            FhirContent.Json(Samples.Patient(family: "Nouvelle", nir: Samples.ValidNir("1850375123306"), id: patient))))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }
        Assert.Equal(0, await FoundAsync("Patient?family=Ancienne"));
        Assert.Equal(0, await FoundAsync("Patient?family=Actuelle"));
        Assert.Equal(1, await FoundAsync("Patient?family=Nouvelle"));
        Assert.Empty((await StoredHashesAsync(rid)).Intersect(stale));

        // A hash an older extraction made, left on a record that is then deleted, would stay for good: re-indexing reads current
        // versions only.
        await StoreHashesAsync(rid, (await StoredHashesAsync(rid)).Concat(stale));
        using (var delete = await _http.DeleteAsync($"/fhir/Patient/{patient}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        Assert.Empty(await StoredHashesAsync(rid));
    }

    [Fact]
    public async Task A_record_updated_between_the_read_and_the_write_keeps_the_rows_of_its_newer_version()
    {
        var patient = await CreateAsync(Samples.Patient(family: "Avant", nir: Samples.ValidNir("1850375123303"), id: null));
        var records = _server.Store.Records;
        var updated = false;
        records.BeforeReindexWrite = async token =>
        {
            if (updated) return;
            updated = true;
            // Another writer (the server) changes the record after the batch read version 1.
            using var document = JsonDocument.Parse(Samples.Patient(family: "Apres", nir: Samples.ValidNir("1850375123303"), id: patient));
            var result = await records.UpdateAsync(AccessContext.Operator(_tenant, "test fixture"), "Patient", patient, document.RootElement, null, token);
            Assert.Equal(RecordStatus.Ok, result.Status);
        };
        try
        {
            var summary = await records.ReindexAsync(Operator, "Patient", null, CancellationToken.None);
            Assert.True(updated);
            Assert.Equal(1, summary.Redone);
            Assert.Equal(0, summary.Changed);
            Assert.True(summary.Complete);
        }
        finally
        {
            records.BeforeReindexWrite = null;
        }
        // The rows are version 2's: version 1's name was not written back.
        Assert.Equal(1, await FoundAsync("Patient?family=Apres"));
        Assert.Equal(0, await FoundAsync("Patient?family=Avant"));
    }

    [Fact]
    public async Task A_record_a_writer_holds_on_PostgreSQL_is_skipped_not_waited_for_and_done_by_the_next_run()
    {
        // SQLite serialises writers (a reindex batch waits its turn like any writer); PostgreSQL's batches SKIP LOCKED rows.
        if (_engine != Engine.Postgres) return;
        var held = await CreateAsync(Samples.Patient(family: "Tenu", nir: Samples.ValidNir("1850375123305")));
        var free = await CreateAsync(Samples.Patient(family: "Libre", nir: Samples.ValidNir("1850375123306")));
        await using (var writer = new NpgsqlConnection(_server.Db))
        {
            await writer.OpenAsync();
            await using var transaction = await writer.BeginTransactionAsync();
            await using (var hold = new NpgsqlCommand("SELECT rid FROM resources WHERE id = @id FOR UPDATE", writer, transaction))
            {
                hold.Parameters.AddWithValue("id", held);
                Assert.NotNull(await hold.ExecuteScalarAsync());
            }
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var summary = await _server.Store.Records.ReindexAsync(Operator, "Patient", null, CancellationToken.None);
            // Five attempts with pauses of 0.1 to 0.8 s, then reported busy: not a wait on the writer's transaction.
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), clock.Elapsed.ToString());
            Assert.Equal((1, 1, false), (summary.Records, summary.Busy, summary.Complete));
            await transaction.RollbackAsync();
        }
        Assert.Equal(1, await FoundAsync("Patient?family=Libre"));
        var again = await _server.Store.Records.ReindexAsync(Operator, "Patient", null, CancellationToken.None);
        Assert.Equal((2, 0, true), (again.Records, again.Busy, again.Complete));
        Assert.Equal(1, await FoundAsync("Patient?family=Tenu"));
    }

    [Fact]
    public async Task A_version_that_is_no_longer_current_is_not_written()
    {
        var patient = await CreateAsync(Samples.Patient(family: "Figee", nir: Samples.ValidNir("1850375123304")));
        var rid = await RidAsync(patient);
        var keys = await _server.Store.Keys.ForTenantAsync(_tenant.Id, CancellationToken.None);
        using var document = JsonDocument.Parse(Samples.Patient(family: "Perimee", nir: Samples.ValidNir("1850375123304")));
        var stale = IndexEntries.Extract("Patient", document.RootElement, keys.Index);
        await using (var scope = await _server.Store.Database.BeginWriteAsync(CancellationToken.None))
        {
            // Version 2 does not exist: the record is at version 1.
            var outcome = await Vauban.Storage.IndexRows.ReplaceAsync(scope, _server.Store.Database.Engine, _tenant.Id, rid, 2, stale, patient, new HashSet<string>(), [], CancellationToken.None);
            Assert.Equal(Vauban.Storage.IndexReplacement.Moved, outcome);
            await scope.CommitAsync(CancellationToken.None);
        }
        Assert.Equal(0, await FoundAsync("Patient?family=Perimee"));
        Assert.Equal(1, await FoundAsync("Patient?family=Figee"));
    }

    [Fact]
    public async Task Only_the_operator_reindexes_and_only_a_stored_type()
    {
        var person = new AccessContext(new Principal(PrincipalKind.Person, "someone", "A person", Vauban.Access.SmartScopes.None), _tenant, KnownPurposes.Treatment);
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => _server.Store.Records.ReindexAsync(person, null, null, CancellationToken.None));
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => _server.Store.Records.ReindexAsync(Operator, "Spaceship", null, CancellationToken.None));
        Assert.Contains("Spaceship", unknown.Message, StringComparison.Ordinal);
    }
}

public sealed class ReindexTests_Sqlite() : ReindexTests(Engine.Sqlite);

public sealed class ReindexTests_Postgres() : ReindexTests(Engine.Postgres);
