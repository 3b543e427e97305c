// A data-key rotation beside a running server, on both engines: the operator's process makes the new key and re-seals the
// records; the server, which loaded the establishment's keys before, reads what was re-sealed, takes the new key for what it
// writes, and the audit log (never rewritten) still verifies. A row altered in the database is not laundered by re-sealing.
using System.Buffers.Binary;
using System.Net;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Crypto;

public sealed class DataKeyRotationTests
{
    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task Records_history_and_accounts_are_resealed_under_the_new_key_while_the_server_runs_and_everything_still_reads(Engine engine)
    {
        await using var server = await VaubanServer.StartAsync(engine);
        using var client = await server.ClientAsync("chu-datakey");
        var tenant = (await server.Store.Tenants.FindAsync("chu-datakey", CancellationToken.None))!;
        var locations = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            using var created = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Cle" + i)));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            locations.Add(created.Headers.Location!.ToString());
        }
        // A second version: the first goes to the history.
        var updatedId = locations[0].Split('/')[^3];
        using (var updated = await client.PutAsync("/fhir/Patient/" + updatedId, FhirContent.Json(Samples.Patient(family: "Cle0bis", id: updatedId))))
        {
            Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        }
        await server.Store.Accounts.AddAsync(tenant, "secretaire@chu.example", StaffRole.Secretary, null, null, "Sandrine Accueil", CancellationToken.None);
        // A break-the-glass grant: its explanation sealed, and the alert it raises (a sealed detail).
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:dr-cle", "Dr Cle", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, SessionId = "s-cle", AuthenticatedAt = server.Store.Time.GetUtcNow(),
        }, tenant, "TREAT");
        Assert.Equal(BreakGlassStatus.Granted, (await server.Store.BreakTheGlass.OpenAsync(physician, locations[1].Split('/')[^3], KnownBreakGlassReasons.Other,
            "Patient inconscient, famille absente", CancellationToken.None)).Status);
        // A bulk export's job: its stated reason sealed.
        string exportStatus;
        using (var kickOff = new HttpRequestMessage(HttpMethod.Get, "/fhir/$export?_type=Patient"))
        {
            kickOff.Headers.Add("Prefer", "respond-async");
            kickOff.Headers.Add(Vauban.Guard.RecordsGuard.ReasonHeader, "Transfert vers l'entrepot regional");
            using var accepted = await client.SendAsync(kickOff);
            Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
            exportStatus = accepted.Content.Headers.ContentLocation?.ToString() ?? accepted.Headers.GetValues("Content-Location").Single();
        }
        var before = await BodyVersionsAsync(server.Db);
        Assert.All(before, v => Assert.Equal(1, v.Version));
        Assert.Contains(before, v => v.Where == "resource_history");
        Assert.Contains(before, v => v.Where == "staff_users");
        Assert.Contains(before, v => v.Where == "break_glass");
        Assert.Contains(before, v => v.Where == "export_jobs");
        Assert.Contains(before, v => v.Where == "security_alerts");

        // The operator's process (as `vauban keys rotate-data`), on the same store, with small batches.
        await using (var operatorStore = await VaubanStore.OpenAsync(new StoreOptions(server.Db, server.MasterKey), CancellationToken.None))
        {
            operatorStore.ResealBatchSize = 3;
            var administrator = AccessContext.Operator(tenant, "administration");
            Assert.Equal(2, await operatorStore.AddDataKeyAsync(administrator, CancellationToken.None));
            var (version, tally) = await operatorStore.ResealAsync(administrator, null, CancellationToken.None);
            Assert.Equal(2, version);
            Assert.True(tally.Complete, tally.ToString());
            // 7 current versions, 1 in the history, 1 account's sealed fields, 1 explanation, 1 alert, 1 export reason.
            Assert.Equal(12, tally.Resealed);
            var again = (await operatorStore.ResealAsync(administrator, null, CancellationToken.None)).Tally;
            Assert.Equal(new Vauban.Crypto.ResealTally(0, 12, 0, 0), again);
        }
        Assert.All(await BodyVersionsAsync(server.Db), v => Assert.True(v.Version == 2, v.Where));

        // Verified by this process, whose keys predate the rotation: the explanation and the alert re-sealed under version 2 are
        // opened with it (loaded when met), never reported altered.
        var early = await server.Store.AuditLog.VerifyAsync(tenant.Id, null, CancellationToken.None);
        Assert.True(early.Valid, early.Problem);

        // The server loaded version 1 only: it reads what was re-sealed (loading version 2 when it meets it), history included.
        foreach (var location in locations.Skip(1))
        {
            using var read = await client.GetAsync(location[..location.IndexOf("/_history", StringComparison.Ordinal)]);
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }
        using (var first = await client.GetAsync(locations[0]))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Contains("Cle0\"", await first.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.NotNull(await server.Store.Accounts.FindAsync(tenant, "secretaire@chu.example", CancellationToken.None));
        Assert.Equal("Patient inconscient, famille absente", Assert.Single(await server.Store.BreakTheGlass.ReviewAsync(tenant, 10, CancellationToken.None)).Explanation);
        var alert = Assert.Single(await server.Store.Alerts.ListAsync(tenant.Id, all: true, 10, CancellationToken.None), a => a.Kind == KnownAlertKinds.BreakTheGlass);
        Assert.Equal("user:dr-cle", alert.Principal);
        // The job answers its requester: its reason, sealed with the requester's id, opens under the new key.
        using (var poll = await client.GetAsync(exportStatus)) Assert.True(poll.StatusCode is HttpStatusCode.OK or HttpStatusCode.Accepted, poll.StatusCode.ToString());
        // And seals what it writes with it.
        using (var after = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Apres"))))
        {
            Assert.Equal(HttpStatusCode.Created, after.StatusCode);
        }
        Assert.All(await BodyVersionsAsync(server.Db), v => Assert.True(v.Version == 2, v.Where));

        // The audit log is not rewritten: entries sealed under version 1 still verify, and both acts are on it.
        var verified = await server.Store.AuditLog.VerifyAsync(tenant.Id, null, CancellationToken.None);
        Assert.True(verified.Valid, verified.Problem);
        // The explanation and the alert, sealed again, still match their digests on the chain: their words are digested, not
        // their ciphertext.
        Assert.True(verified.SecurityRecords >= 2, verified.SecurityRecords.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var acts = await OperatorActsAsync(server, tenant);
        Assert.Contains(acts, e => e.Detail.Note == "keys rotate-data: data key version 2 made");
        Assert.Contains(acts, e => e.Detail.Note == "keys rotate-data: 12 rows re-sealed under data key version 2, 0 already under it, 0 changed meanwhile, 0 unreadable");
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_record_altered_in_the_database_is_left_as_it_is_not_made_authentic_by_resealing(Engine engine)
    {
        await using var server = await VaubanServer.StartAsync(engine);
        var tenant = await TenantWithPatientsAsync(server, "chu-altered", "Altere", 3);
        // One ciphertext byte flipped, as an intruder with the database would.
        await FlipAByteOfTheFirstRecordAsync(server.Db);
        var administrator = AccessContext.Operator(tenant, "administration");
        await server.Store.AddDataKeyAsync(administrator, CancellationToken.None);
        var (_, tally) = await server.Store.ResealAsync(administrator, null, CancellationToken.None);
        Assert.False(tally.Complete);
        Assert.Equal(1, tally.Unreadable);
        Assert.Equal(2, tally.Resealed);
        var versions = await BodyVersionsAsync(server.Db);
        Assert.Single(versions, v => v.Version == 1);
        var acts = await OperatorActsAsync(server, tenant);
        Assert.Contains(acts, e => e.Outcome == Vauban.Audit.AuditOutcome.MinorFailure && e.Detail.Note!.EndsWith("1 unreadable", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_record_updated_between_the_passes_read_and_its_write_keeps_the_update_and_counts_as_done_when_the_writer_used_the_new_key(Engine engine)
    {
        await using var server = await VaubanServer.StartAsync(engine);
        var established = await PatientsAsync(server, "chu-race", "Course", 3);
        using var client = established.Client;
        var (tenant, ids) = (established.Tenant, established.Ids);
        var administrator = AccessContext.Operator(tenant, "administration");
        await server.Store.AddDataKeyAsync(administrator, CancellationToken.None);
        // A clinician's update lands after the pass has read the page and before it writes it back.
        var updated = false;
        server.Store.ResealBetweenReadAndWrite = async cancellationToken =>
        {
            if (updated) return;
            updated = true;
            using var put = await client.PutAsync("/fhir/Patient/" + ids[1], FhirContent.Json(Samples.Patient(family: "CourseModifiee", id: ids[1])), cancellationToken);
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        };
        var (_, tally) = await server.Store.ResealAsync(administrator, null, CancellationToken.None);
        server.Store.ResealBetweenReadAndWrite = null;

        // Not overwritten with what the pass had read: the update stays. The server had taken the new key, so the update is
        // under it: the pass counts the row as done, not as left for a next pass (which would have nothing to do).
        Assert.Equal(new Vauban.Crypto.ResealTally(3, 1, 0, 0), tally); // the two others, the version the update moved to the history; the update
        Assert.True(tally.Complete);
        using (var read = await client.GetAsync("/fhir/Patient/" + ids[1]))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Contains("CourseModifiee", await read.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.All(await BodyVersionsAsync(server.Db), v => Assert.True(v.Version == 2, v.Where));
        var next = (await server.Store.ResealAsync(administrator, null, CancellationToken.None)).Tally;
        Assert.Equal(new Vauban.Crypto.ResealTally(0, 4, 0, 0), next);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_record_deleted_between_the_passes_read_and_its_write_leaves_nothing_for_a_next_pass(Engine engine)
    {
        await using var server = await VaubanServer.StartAsync(engine);
        var established = await PatientsAsync(server, "chu-delete", "Efface", 3);
        using var client = established.Client;
        var (tenant, ids) = (established.Tenant, established.Ids);
        var administrator = AccessContext.Operator(tenant, "administration");
        await server.Store.AddDataKeyAsync(administrator, CancellationToken.None);
        var deleted = false;
        server.Store.ResealBetweenReadAndWrite = async cancellationToken =>
        {
            if (deleted) return;
            deleted = true;
            using var delete = await client.DeleteAsync("/fhir/Patient/" + ids[2], cancellationToken);
            Assert.True(delete.IsSuccessStatusCode, delete.StatusCode.ToString());
        };
        var (_, tally) = await server.Store.ResealAsync(administrator, null, CancellationToken.None);
        server.Store.ResealBetweenReadAndWrite = null;

        // The deleted record's current row holds nothing sealed any more; its last version went to the history and was re-sealed there.
        Assert.Equal(0, tally.Changed);
        Assert.True(tally.Complete);
        Assert.All(await BodyVersionsAsync(server.Db), v => Assert.True(v.Version == 2, v.Where));
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_record_changed_between_the_passes_read_and_its_write_and_still_under_the_old_key_is_left_for_the_next_pass(Engine engine)
    {
        await using var server = await VaubanServer.StartAsync(engine);
        var tenant = await TenantWithPatientsAsync(server, "chu-retard", "Retard", 3);
        var administrator = AccessContext.Operator(tenant, "administration");
        await server.Store.AddDataKeyAsync(administrator, CancellationToken.None);
        // Another process that has not taken the new key yet writes the first record again, under the old one (its bytes
        // differ from what the pass read; the header still names version 1).
        var written = false;
        server.Store.ResealBetweenReadAndWrite = async _ =>
        {
            if (written) return;
            written = true;
            await FlipAByteOfTheFirstRecordAsync(server.Db);
        };
        var (_, tally) = await server.Store.ResealAsync(administrator, null, CancellationToken.None);
        server.Store.ResealBetweenReadAndWrite = null;

        Assert.Equal(1, tally.Changed);
        Assert.False(tally.Complete);
        Assert.Single(await BodyVersionsAsync(server.Db), v => v.Version == 1);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_pass_that_fails_midway_leaves_its_beginning_and_how_far_it_went_on_the_chain(Engine engine)
    {
        await using var server = await VaubanServer.StartAsync(engine);
        var tenant = await TenantWithPatientsAsync(server, "chu-panne", "Panne", 5);
        var administrator = AccessContext.Operator(tenant, "administration");
        await server.Store.AddDataKeyAsync(administrator, CancellationToken.None);
        server.Store.ResealBatchSize = 2;
        var pages = 0;
        // The database goes away after the first page was written.
        server.Store.ResealBetweenReadAndWrite = _ => ++pages == 2 ? throw new InvalidOperationException("the database went away") : Task.CompletedTask;
        await Assert.ThrowsAsync<InvalidOperationException>(() => server.Store.ResealAsync(administrator, null, CancellationToken.None));
        server.Store.ResealBetweenReadAndWrite = null;

        var acts = await OperatorActsAsync(server, tenant);
        Assert.Contains(acts, e => e.Detail.Note == "keys rotate-data: re-sealing under data key version 2 begun");
        Assert.Contains(acts, e => e.Outcome == Vauban.Audit.AuditOutcome.SeriousFailure
            && e.Detail.Note == "keys rotate-data: failed (InvalidOperationException) after 2 rows re-sealed under data key version 2, 0 already under it, 0 changed meanwhile, 0 unreadable");
        // What the first page re-sealed stays so; the next pass does the rest.
        var (_, tally) = await server.Store.ResealAsync(administrator, null, CancellationToken.None);
        Assert.Equal(new Vauban.Crypto.ResealTally(3, 2, 0, 0), tally);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_load_running_across_a_rotation_seals_its_later_batches_with_the_new_key(Engine engine)
    {
        // A load lasts hours; a rotation waits half a minute for running processes to take its key before re-sealing. A load
        // that kept the keys it began with would go on writing under the old key behind the pass.
        await using var server = await VaubanServer.StartAsync(engine);
        var tenant = await TenantWithPatientsAsync(server, "chu-import", "Charge", 0);
        server.Store.Records.ImportBatchSize = 2;
        server.Store.Keys.Recheck = TimeSpan.Zero;
        IEnumerable<Vauban.Records.ImportItem> Items()
        {
            for (var i = 0; i < 8; i++)
            {
                if (i == 4)
                {
                    // Another process (the operator's) makes the new key while the load runs.
                    Task.Run(async () =>
                    {
                        await using var rotating = await VaubanStore.OpenAsync(new StoreOptions(server.Db, server.MasterKey), CancellationToken.None);
                        await rotating.AddDataKeyAsync(AccessContext.Operator(tenant, "administration"), CancellationToken.None);
                    }).GetAwaiter().GetResult();
                }
                var id = "charge-" + i;
                yield return new Vauban.Records.ImportItem("Patient", id, System.Text.Encoding.UTF8.GetBytes(Samples.Patient(family: "Charge" + i, id: id)));
            }
        }
        var summary = await server.Store.Records.ImportAsync(AccessContext.Operator(tenant, "import"), Items(), null, CancellationToken.None);
        Assert.Equal(8, summary.Created);

        // The batches sealed after the key was made are under it; those before, under the old one until the pass.
        var versions = await ResourceVersionsAsync(server.Db);
        Assert.All(Enumerable.Range(4, 4), i => Assert.Equal(2, versions["charge-" + i]));
        Assert.All(Enumerable.Range(0, 4), i => Assert.Equal(1, versions["charge-" + i]));
    }

    private static async Task<Dictionary<string, int>> ResourceVersionsAsync(string db)
    {
        await using var database = Vauban.Storage.StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        using var read = connection.CreateCommand();
        read.CommandText = "SELECT id, body FROM resources WHERE body IS NOT NULL";
        using var reader = await read.ExecuteReaderAsync();
        var versions = new Dictionary<string, int>(StringComparer.Ordinal);
        while (await reader.ReadAsync()) versions[reader.GetString(0)] = Vauban.Crypto.RecordCipher.KeyVersionOf((byte[])reader.GetValue(1)) ?? 0;
        return versions;
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_server_that_meets_no_resealed_record_takes_the_new_key_at_its_next_look(Engine engine)
    {
        await using var server = await VaubanServer.StartAsync(engine);
        using var client = await server.ClientAsync("chu-recheck");
        var tenant = (await server.Store.Tenants.FindAsync("chu-recheck", CancellationToken.None))!;
        async Task<int> CreatedVersionAsync(string family)
        {
            using var created = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: family)));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            return (await BodyVersionsAsync(server.Db)).Max(v => v.Version);
        }
        Assert.Equal(1, await CreatedVersionAsync("Avant"));
        await using (var operatorStore = await VaubanStore.OpenAsync(new StoreOptions(server.Db, server.MasterKey), CancellationToken.None))
        {
            Assert.Equal(2, await operatorStore.AddDataKeyAsync(AccessContext.Operator(tenant, "administration"), CancellationToken.None));
        }
        // Within its interval the server seals with the key it holds (what `rotate-data` waits out before re-sealing)…
        Assert.Equal(1, await CreatedVersionAsync("Pendant"));
        // …and at its next look, with the new one.
        server.Store.Keys.Recheck = TimeSpan.Zero;
        Assert.Equal(2, await CreatedVersionAsync("Apres"));
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_reindex_running_across_a_rotation_opens_what_was_resealed_meanwhile_and_reports_nothing_altered(Engine engine)
    {
        // `vauban reindex` loads the establishment's keys once; `keys rotate-data` re-seals while it runs (its 35 s wait is for
        // servers, and a reindex of a large store runs longer). Every record re-sealed meanwhile was reported altered, one alert
        // and one failed audit entry each, and kept its old index rows.
        await using var server = await VaubanServer.StartAsync(engine);
        var tenant = await TenantWithPatientsAsync(server, "chu-reindex", "Reindexe", 7);
        var administrator = AccessContext.Operator(tenant, "administration");
        server.Store.Records.ReindexBatchSize = 2;
        await using var operatorStore = await VaubanStore.OpenAsync(new StoreOptions(server.Db, server.MasterKey), CancellationToken.None);
        var rotated = false;
        var progress = new Synchronous(_ =>
        {
            if (rotated) return;
            rotated = true; // after the first batch: the later ones read records sealed under a key the reindex does not hold
            Assert.Equal(2, operatorStore.AddDataKeyAsync(administrator, CancellationToken.None).GetAwaiter().GetResult());
            Assert.True(operatorStore.ResealAsync(administrator, null, CancellationToken.None).GetAwaiter().GetResult().Tally.Complete);
        });

        var summary = await server.Store.Records.ReindexAsync(administrator, null, progress, CancellationToken.None);

        Assert.True(rotated);
        Assert.Equal(0, summary.Unreadable);
        Assert.Equal(7, summary.Records);
        Assert.DoesNotContain(await server.Store.Alerts.ListAsync(tenant.Id, all: true, 100, CancellationToken.None), a => a.Kind == KnownAlertKinds.RecordIntegrity);
        Assert.DoesNotContain(await OperatorActsAsync(server, tenant), e => e.Outcome == Vauban.Audit.AuditOutcome.SeriousFailure);
    }

    /// <summary>Reports on the caller's thread, at once (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class Synchronous(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_server_left_holding_a_rotated_away_master_key_serves_what_its_keys_open_answers_503_for_the_rest_and_tells_the_operator_once(Engine engine)
    {
        // The operator's sequence of the review (2026-12-07): `keys rotate-master` while the server runs, then `keys rotate-data
        // --tenant` with the new key, the server not yet restarted. It answered 500 to every record request, /healthz said ok, and
        // its log said only "Unexpected VaubanConfigurationException".
        await using var server = await VaubanServer.StartAsync(engine);
        var (client, tenant, ids) = await PatientsAsync(server, "chu-garde", "Garde", 3);
        using var _ = client;
        var oldKey = Convert.ToBase64String(server.MasterKey.Bytes);
        var newBytes = System.Security.Cryptography.RandomNumberGenerator.GetBytes(Vauban.Crypto.MasterKey.Length);
        var next = Vauban.Crypto.MasterKey.FromBytes(newBytes);
        ClientRegistration other;
        await using (var operatorStore = await VaubanStore.OpenAsync(new StoreOptions(server.Db, server.MasterKey), CancellationToken.None))
        {
            // An establishment this server has not opened (made by `tenants add` and `clients add` beside it).
            var unopened = await operatorStore.Tenants.AddAsync("chu-voisin", CancellationToken.None);
            other = await operatorStore.Clients.AddAsync(unopened, "voisin", "system/*.cruds", null, ClientLimits.None, CancellationToken.None);
            await operatorStore.RotateMasterKeyAsync(next, t => AccessContext.Operator(t, "keys rotate-master"), CancellationToken.None);
        }
        // What rotate-master alone changes for this server: nothing it holds; /healthz already says it must be restarted.
        using (var before = await client.GetAsync("/fhir/Patient/" + ids[0])) Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        await using (var operatorStore = await VaubanStore.OpenAsync(new StoreOptions(server.Db, next), CancellationToken.None))
        {
            var administrator = AccessContext.Operator(tenant, "keys rotate-data");
            Assert.Equal(2, await operatorStore.AddDataKeyAsync(administrator, CancellationToken.None));
            Assert.True((await operatorStore.ResealAsync(administrator, null, CancellationToken.None)).Tally.Complete);
        }
        server.Store.Keys.Recheck = TimeSpan.Zero; // its next look for a newer data key: now

        // A record re-sealed under the data key it cannot unwrap: 503, an operator's matter, never a 500. Searches meet them too.
        foreach (var path in new[] { "/fhir/Patient/" + ids[1], "/fhir/Patient?family=Garde1" })
        {
            using var refused = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            using var outcome = System.Text.Json.JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
            Assert.Equal("OperationOutcome", outcome.RootElement.GetProperty("resourceType").GetString());
            var issue = outcome.RootElement.GetProperty("issue")[0];
            Assert.Equal("transient", issue.GetProperty("code").GetString());
            Assert.Contains("restart it with the store's new master key", issue.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        // What its keys open is still served: a record it writes now (sealed under the data key it holds, left to `rotate-data
        // --resume` once it is restarted) reads back.
        string written;
        using (var created = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Pendant"))))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            written = created.Headers.Location!.ToString().Split('/')[^3];
        }
        using (var read = await client.GetAsync("/fhir/Patient/" + written)) Assert.Equal(HttpStatusCode.OK, read.StatusCode);

        // A token for the establishment it had not opened: temporarily_unavailable, not server_error.
        using (var token = await server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = other.ClientId, ["client_secret"] = other.ClientSecret!,
        })))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, token.StatusCode);
            Assert.Contains("\"temporarily_unavailable\"", await token.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // An orchestrator sees it: /healthz answers 503 with the reason (no fingerprint, no secret).
        using (var health = await server.Http.GetAsync("/healthz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Equal("master key rotated: restart this server with the store's new master key", await health.Content.ReadAsStringAsync());
        }

        // The operator's log says so once, at Critical, in Vauban's own words (fingerprints, never a key), and no request was an
        // "unexpected" error.
        var logs = server.Logs.ToArray();
        var told = Assert.Single(logs, l => l.Contains("master key was rotated", StringComparison.Ordinal));
        Assert.StartsWith("Critical ", told, StringComparison.Ordinal);
        Assert.Contains(next.Fingerprint, told, StringComparison.Ordinal);
        Assert.Contains(server.MasterKey.Fingerprint, told, StringComparison.Ordinal);
        Assert.Contains("Restart this process with the store's new master key", told, StringComparison.Ordinal);
        Assert.DoesNotContain(logs, l => l.Contains("Unexpected", StringComparison.Ordinal));
        Assert.DoesNotContain(logs, l => l.Contains(oldKey, StringComparison.Ordinal) || l.Contains(Convert.ToBase64String(newBytes), StringComparison.Ordinal)
            || l.Contains(Convert.ToHexString(newBytes), StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The command-line operator's administrative acts on the establishment's chain.</summary>
    private static async Task<IReadOnlyList<Vauban.Audit.AuditEntry>> OperatorActsAsync(VaubanServer server, Tenant tenant)
    {
        var context = AccessContext.Operator(tenant, "audit test");
        return (await server.Store.AuditLog.SearchAsync(context,
            new Vauban.Audit.AuditQuery { Agent = context.Principal.Id, Actions = [Vauban.Audit.AuditAction.Administration], Count = 100 }, CancellationToken.None))!;
    }

    /// <summary>The data key version each sealed record body and account field names in its header, read from the database.</summary>
    /// <summary>An establishment with an API client and <paramref name="count"/> patients it created (families prefix0, prefix1, …),
    /// the patients' ids in order.</summary>
    private static async Task<(HttpClient Client, Tenant Tenant, List<string> Ids)> PatientsAsync(VaubanServer server, string establishment, string prefix, int count)
    {
        var client = await server.ClientAsync(establishment);
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            using var created = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: prefix + i)));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            ids.Add(created.Headers.Location!.ToString().Split('/')[^3]);
        }
        return (client, (await server.Store.Tenants.FindAsync(establishment, CancellationToken.None))!, ids);
    }

    /// <summary>As <see cref="PatientsAsync"/>, for a test that needs only the establishment.</summary>
    private static async Task<Tenant> TenantWithPatientsAsync(VaubanServer server, string establishment, string prefix, int count)
    {
        var (client, tenant, _) = await PatientsAsync(server, establishment, prefix, count);
        client.Dispose();
        return tenant;
    }

    private static async Task<List<(string Where, int Version)>> BodyVersionsAsync(string db)
    {
        await using var database = Vauban.Storage.StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        var found = new List<(string, int)>();
        foreach (var (what, sql) in new[]
        {
            ("resources", "SELECT body FROM resources WHERE body IS NOT NULL"),
            ("resource_history", "SELECT body FROM resource_history WHERE body IS NOT NULL"),
            ("staff_users", "SELECT sealed FROM staff_users"),
            ("break_glass", "SELECT detail FROM break_glass"),
            ("export_jobs", "SELECT reason FROM export_jobs"),
            ("security_alerts", "SELECT detail FROM security_alerts WHERE detail LIKE 'sealed:%'"),
        })
        {
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var body = reader.GetValue(0) is string text ? Convert.FromBase64String(text["sealed:".Length..]) : (byte[])reader.GetValue(0);
                found.Add((what, BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(2))));
            }
        }
        return found;
    }

    private static async Task FlipAByteOfTheFirstRecordAsync(string db)
    {
        await using var database = Vauban.Storage.StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        using var read = connection.CreateCommand();
        read.CommandText = "SELECT rid, body FROM resources ORDER BY rid LIMIT 1";
        long rid;
        byte[] body;
        using (var reader = await read.ExecuteReaderAsync())
        {
            Assert.True(await reader.ReadAsync());
            (rid, body) = (reader.GetInt64(0), (byte[])reader.GetValue(1));
        }
        body[30] ^= 1;
        using var write = connection.CreateCommand();
        write.CommandText = "UPDATE resources SET body = @b WHERE rid = @r";
        foreach (var (name, value) in new (string, object)[] { ("@b", body), ("@r", rid) })
        {
            var parameter = write.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value;
            write.Parameters.Add(parameter);
        }
        Assert.Equal(1, await write.ExecuteNonQueryAsync());
    }
}
