// The store as an operator runs it: the database down, restarting or out of connections during serve (fail closed, with an
// answer worth retrying and a log line that names the database; recovered once it is back), servers starting together on
// one database, and a wrong master key at open.
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Npgsql;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Storage;

public sealed class StoreOperationsTests
{
    [Fact]
    public async Task With_every_PostgreSQL_connection_in_use_a_request_gets_503_to_retry_and_the_log_names_the_database_then_it_recovers()
    {
        // A small pool that gives up quickly, as a busy production pool does after its Timeout. Its start is tried again when opening
        // the store itself took over that second (the suite starts dozens of servers at once on two cores: it failed so once, 2026-12-07).
        VaubanServer? started = null;
        for (var attempt = 1; started is null; attempt++)
        {
            try
            {
                started = await VaubanServer.StartAsync(Engine.Postgres, configure: o => o with { Db = o.Db + ";Maximum Pool Size=4;Timeout=1" });
            }
            catch (VaubanConfigurationException e) when (attempt < 3 && e.InnerException is Npgsql.NpgsqlException { InnerException: TimeoutException })
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
        await using var server = started;
        using var client = await server.ClientAsync("chu-pool");
        var patient = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Pool")));
        Assert.Equal(HttpStatusCode.Created, patient.StatusCode);
        var location = patient.Headers.Location!.ToString();
        var tenant = (await server.Store.Tenants.FindAsync("chu-pool", CancellationToken.None))!;
        var registration = await server.Store.Clients.AddAsync(tenant, "second client", "system/*.rs", null, Vauban.Access.ClientLimits.None, CancellationToken.None);
        var tokenRequest = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = registration.ClientId, ["client_secret"] = registration.ClientSecret! };

        var held = new List<System.Data.Common.DbConnection>();
        try
        {
            for (var i = 0; i < 4; i++) held.Add(await server.Store.Database.OpenAsync(CancellationToken.None));
            using var refused = await client.GetAsync(location);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.NotNull(refused.Headers.RetryAfter);
            var issue = (await refused.BodyAsync()).GetProperty("issue")[0];
            Assert.Equal("transient", issue.GetProperty("code").GetString());
            Assert.Contains("store cannot be reached", issue.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
            Assert.DoesNotContain("Pool", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

            using var noToken = await server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(tokenRequest));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, noToken.StatusCode);
            Assert.NotNull(noToken.Headers.RetryAfter);
            Assert.Equal("temporarily_unavailable", (await noToken.BodyAsync()).GetProperty("error").GetString());

            // A load balancer's health check says so too (it answered "ok" whatever the store). It needs no credentials, so
            // a flood of it shares one check of the store: one connection asked of the pool and one log line, not one each.
            var checks = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
            {
                using var health = await server.Http.GetAsync("/healthz");
                return (health.StatusCode, Text: await health.Content.ReadAsStringAsync(), health.Headers.RetryAfter);
            }));
            Assert.All(checks, check =>
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, check.StatusCode);
                Assert.Equal("store unavailable", check.Text);
                Assert.NotNull(check.RetryAfter);
            });
            Assert.InRange(Regex.Count(server.AllLogs(), "Health check: the store cannot be reached"), 1, 2);
        }
        finally
        {
            foreach (var connection in held) await connection.DisposeAsync();
        }
        var logs = server.AllLogs();
        Assert.Contains("The store could not be reached or written: PostgreSQL did not answer in time, or every connection of the pool was in use", logs, StringComparison.Ordinal);
        Assert.DoesNotContain("Unexpected NpgsqlException", logs, StringComparison.Ordinal);

        using var recovered = await client.GetAsync(location);
        Assert.Equal(HttpStatusCode.OK, recovered.StatusCode);
        // The health check's answer is kept a second.
        var healthy = "";
        for (var attempt = 0; attempt < 50 && healthy != "ok"; attempt++)
        {
            if (attempt > 0) await Task.Delay(100);
            using var health = await server.Http.GetAsync("/healthz");
            healthy = await health.Content.ReadAsStringAsync();
        }
        Assert.Equal("ok", healthy);
        Assert.False(string.IsNullOrEmpty(await server.TokenAsync(registration.ClientId, registration.ClientSecret!)));
    }

    [Fact]
    public async Task A_SQLite_store_that_cannot_be_written_gets_503_to_retry_and_a_log_line_naming_the_cause()
    {
        // Disk full, a read-only file or folder, a file locked by another process: SQLite's error, as the records service meets it.
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite, extend: app => app.MapGet("/fhir/test-store-gone", () =>
        {
            using var connection = new SqliteConnection($"Data Source={Path.Combine(Path.GetTempPath(), "vauban-no-such-folder-" + Guid.NewGuid().ToString("N"), "v.db")};Mode=ReadWrite");
            connection.Open();
            return Results.Ok();
        }));
        using var refused = await server.Http.GetAsync("/fhir/test-store-gone");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Equal("transient", (await refused.BodyAsync()).GetProperty("issue")[0].GetProperty("code").GetString());
        Assert.Contains("The store could not be reached or written: SQLite error 14 (cannot open the file)", server.AllLogs(), StringComparison.Ordinal);
        Assert.DoesNotContain("vauban-no-such-folder", server.AllLogs(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_starting_while_another_migrates_a_PostgreSQL_store_waits_for_it_however_long_it_takes()
    {
        // A command timeout shorter than the migration (the default is 30 s; a step over a large audit log takes minutes).
        var db = await PostgresServer.CreateDatabaseAsync() + ";Command Timeout=2";
        var master = Vauban.Crypto.MasterKey.Generate();
        await using (var migrating = new NpgsqlConnection(db))
        {
            await migrating.OpenAsync();
            // What a first server holds while it migrates: the migration lock, in its transaction.
            await using var transaction = await migrating.BeginTransactionAsync();
            await using (var take = new NpgsqlCommand("SELECT pg_advisory_xact_lock(727165)", migrating, transaction)) await take.ExecuteNonQueryAsync();
            var opening = VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None);
            await Task.Delay(TimeSpan.FromSeconds(4));
            Assert.False(opening.IsCompleted, "the second server did not wait for the migration: " + opening.Exception?.InnerException?.Message);
            await transaction.CommitAsync();
            await using var store = await opening;
            await store.Tenants.AddAsync("chu-after-migration", CancellationToken.None);
        }
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task The_guards_wait_for_an_act_inside_a_write_transaction_comes_after_it_and_holds_no_other_writer(Engine engine)
    {
        // A slowed principal's patch or transaction: the guard's delay is taken once the writer slot is free, not while every
        // other write of the server waits behind it.
        await using var server = await VaubanServer.StartAsync(engine);
        var database = server.Store.Database;
        var slowed = await database.BeginWriteAsync(CancellationToken.None);
        slowed.HeldBack = TimeSpan.FromSeconds(3);
        var ending = slowed.DisposeAsync().AsTask();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await using (var other = await database.BeginWriteAsync(CancellationToken.None)) await other.CommitAsync(CancellationToken.None);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"another writer waited {watch.Elapsed.TotalSeconds:F1} s");
        Assert.False(ending.IsCompleted); // the slowed act's answer still waits
        await ending;
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(2.5));
    }

    /// <summary>A new store on the engine (a SQLite file in a folder of its own) holding one establishment, and its master key.</summary>
    /// <summary>The folder a SQLite store of <see cref="StoreWithOneEstablishmentAsync"/> was made in (a PostgreSQL database is the
    /// throwaway cluster's).</summary>
    private static void RemoveSqliteFolder(Engine engine, string db)
    {
        if (engine != Engine.Sqlite) return;
        try { Directory.Delete(Path.GetDirectoryName(db)!, recursive: true); } catch (IOException) { }
    }

    private static async Task<(string Db, Vauban.Crypto.MasterKey Master)> StoreWithOneEstablishmentAsync(Engine engine, string establishment)
    {
        var db = engine == Engine.Postgres
            ? await PostgresServer.CreateDatabaseAsync()
            : Path.Combine(Path.GetTempPath(), "vauban-test-" + Guid.NewGuid().ToString("N")[..10], "vauban.db");
        var master = Vauban.Crypto.MasterKey.Generate();
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            await store.Tenants.AddAsync(establishment, CancellationToken.None);
        }
        return (db, master);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_rotated_master_key_opens_the_records_and_the_audit_chain_the_old_one_is_refused_and_the_running_server_goes_on(Engine engine)
    {
        await using var server = await VaubanServer.StartAsync(engine);
        using var client = await server.ClientAsync("chu-rotation");
        using var created = await client.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Rotation")));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var location = created.Headers.Location!.ToString();
        var tenant = (await server.Store.Tenants.FindAsync("chu-rotation", CancellationToken.None))!;
        var old = server.MasterKey;
        var next = Vauban.Crypto.MasterKey.Generate();
        var entriesBefore = await ScalarAsync(server.Db, "SELECT count(*) FROM audit_entries");

        var same = await Assert.ThrowsAsync<ArgumentException>(() => server.Store.RotateMasterKeyAsync(old, t => Vauban.Access.AccessContext.Operator(t, "administration"), CancellationToken.None));
        Assert.Contains("current one", same.Message, StringComparison.Ordinal);
        // data, index and audit-signing keys of the one establishment
        Assert.Equal(new Vauban.Crypto.MasterKeyRotation(3, 1), await server.Store.RotateMasterKeyAsync(next, t => Vauban.Access.AccessContext.Operator(t, "administration"), CancellationToken.None));
        Assert.Equal(next.Fingerprint, await server.Store.BoundMasterKeyFingerprintAsync(CancellationToken.None));
        // The act on the establishment's chain, in the rotation's own transaction.
        Assert.True(await ScalarAsync(server.Db, "SELECT count(*) FROM audit_entries") >= entriesBefore + 1);

        // The running server goes on, and writes (a new audit entry, signed checkpoints) under the keys as they are.
        using (var read = await client.GetAsync(location)) Assert.Equal(HttpStatusCode.OK, read.StatusCode);

        var refused = await Assert.ThrowsAsync<VaubanConfigurationException>(() => VaubanStore.OpenAsync(new StoreOptions(server.Db, old), CancellationToken.None));
        Assert.Contains("another master key", refused.Message, StringComparison.Ordinal);
        await using var reopened = await VaubanStore.OpenAsync(new StoreOptions(server.Db, next), CancellationToken.None);
        var context = Vauban.Access.AccessContext.Operator(tenant, Vauban.Access.KnownPurposes.SystemAdministration);
        var found = await reopened.Records.SearchAsync(context, "Patient", [new("family", "Rotation")], null, lenient: false, CancellationToken.None);
        Assert.Equal(Vauban.Records.RecordStatus.Ok, found.Status);
        Assert.Contains("Rotation", System.Text.Encoding.UTF8.GetString(Assert.Single(found.Entries).Json!), StringComparison.Ordinal);
        var verified = await reopened.AuditLog.VerifyAsync(tenant.Id, null, CancellationToken.None);
        Assert.True(verified.Valid);
    }

    private static Func<Vauban.Access.Tenant, Vauban.Access.AccessContext> Administrator => t => Vauban.Access.AccessContext.Operator(t, "administration");

    private static async Task AddPatientAsync(VaubanStore store, string establishment, string family)
    {
        var tenant = (await store.Tenants.FindAsync(establishment, CancellationToken.None))!;
        using var json = System.Text.Json.JsonDocument.Parse(Samples.Patient(family: family));
        var created = await store.Records.CreateAsync(Vauban.Access.AccessContext.Operator(tenant, "set-up"), "Patient", json.RootElement, null, CancellationToken.None);
        Assert.Equal(Vauban.Records.RecordStatus.Created, created.Status);
    }

    /// <summary>Every establishment's patient <paramref name="family"/> is found and decrypted by <paramref name="store"/>.</summary>
    private static async Task AssertEveryEstablishmentReadsAsync(VaubanStore store, string family)
    {
        foreach (var tenant in await store.Tenants.ListAsync(CancellationToken.None))
        {
            var context = Vauban.Access.AccessContext.Operator(tenant, Vauban.Access.KnownPurposes.SystemAdministration);
            var found = await store.Records.SearchAsync(context, "Patient", [new("family", family)], null, lenient: false, CancellationToken.None);
            Assert.Equal(Vauban.Records.RecordStatus.Ok, found.Status);
            Assert.Contains(family, System.Text.Encoding.UTF8.GetString(Assert.Single(found.Entries).Json!), StringComparison.Ordinal);
        }
    }

    /// <summary>The establishment's chain holds two entries: the one it begins with (action 19, at entry 1), and one act.</summary>
    private static async Task AssertChainBeganAndHasOneActAsync(string db, long tenantId)
    {
        Assert.Equal(2, await ScalarAsync(db, $"SELECT count(*) FROM audit_entries WHERE tenant_id = {tenantId}"));
        Assert.Equal(1, await ScalarAsync(db, $"SELECT count(*) FROM audit_entries WHERE tenant_id = {tenantId} AND seq = 1 AND action = {(int)Vauban.Audit.AuditAction.SecurityRecords}"));
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_process_still_holding_the_previous_master_key_writes_no_key_under_it_once_another_has_rotated(Engine engine)
    {
        var (db, old) = await StoreWithOneEstablishmentAsync(engine, "chu-a");
        var next = Vauban.Crypto.MasterKey.Generate();
        await using (var rotating = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None))
        await using (var stale = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None))
        {
            await stale.Tenants.AddAsync("chu-c", CancellationToken.None);
            await AddPatientAsync(stale, "chu-a", "Stale");
            await AddPatientAsync(stale, "chu-c", "Stale");
            await rotating.RotateMasterKeyAsync(next, Administrator, CancellationToken.None);
            var tenants = await ScalarAsync(db, "SELECT count(*) FROM tenants");

            // `tenants add` (or a server) started before the rotation, still holding the old key.
            var refused = await Assert.ThrowsAsync<VaubanConfigurationException>(() => stale.Tenants.AddAsync("chu-b", CancellationToken.None));
            Assert.Contains("The store's master key was rotated meanwhile", refused.Message, StringComparison.Ordinal);
            Assert.Contains(next.Fingerprint, refused.Message, StringComparison.Ordinal);
            Assert.Contains("Restart this process with the store's new master key", refused.Message, StringComparison.Ordinal);
            Assert.Equal(tenants, await ScalarAsync(db, "SELECT count(*) FROM tenants"));

            // Its start-up step that gives an establishment from before the audit log its signing key: refused too.
            await ExecuteAsync(db, "DELETE FROM tenant_keys WHERE purpose = 'audit-signing' AND tenant_id = (SELECT id FROM tenants WHERE name = 'chu-c')");
            var keys = await ScalarAsync(db, "SELECT count(*) FROM tenant_keys");
            refused = await Assert.ThrowsAsync<VaubanConfigurationException>(() => stale.Keys.EnsureAuditSigningKeysAsync(CancellationToken.None));
            Assert.Contains("The store's master key was rotated meanwhile", refused.Message, StringComparison.Ordinal);
            Assert.Equal(keys, await ScalarAsync(db, "SELECT count(*) FROM tenant_keys"));
        }
        // The store still opens with its key (which gives the signing key back), and every establishment's records read.
        await using (var reopened = await VaubanStore.OpenAsync(new StoreOptions(db, next), CancellationToken.None))
        {
            Assert.Equal(["chu-a", "chu-c"], (await reopened.Tenants.ListAsync(CancellationToken.None)).Select(t => t.Name));
            await AssertEveryEstablishmentReadsAsync(reopened, "Stale");
        }
        // The stale process could not sign its last entries on chu-a (it left them, as it leaves a database failure): the process
        // with the store's key signed over them, and the chain verifies, signed to its end. (chu-c's signing key was deleted above.)
        await using (var verifying = await VaubanStore.OpenAsync(new StoreOptions(db, next), CancellationToken.None))
        {
            var verification = await verifying.AuditLog.VerifyAsync((await verifying.Tenants.FindAsync("chu-a", CancellationToken.None))!.Id, null, CancellationToken.None);
            Assert.True(verification.Valid, verification.Problem);
            Assert.Equal(0, verification.UnsignedTail);
        }
        RemoveSqliteFolder(engine, db);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_process_still_holding_the_previous_master_key_is_told_of_the_rotation_when_it_opens_an_establishment_for_the_first_time(Engine engine)
    {
        var (db, old) = await StoreWithOneEstablishmentAsync(engine, "chu-a");
        await using (var before = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None))
        {
            await before.Tenants.AddAsync("chu-b", CancellationToken.None);
            await AddPatientAsync(before, "chu-a", "Unopened");
            await AddPatientAsync(before, "chu-b", "Unopened");
        }
        var next = Vauban.Crypto.MasterKey.Generate();
        await using (var stale = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None))
        {
            await using (var rotating = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None))
            {
                await rotating.RotateMasterKeyAsync(next, Administrator, CancellationToken.None);
            }
            // The stale process had not opened chu-b's keys: it is told the store's key was rotated, not that the store was
            // made with another key.
            var tenant = await stale.Tenants.FindAsync("chu-b", CancellationToken.None);
            var context = Vauban.Access.AccessContext.Operator(tenant!, Vauban.Access.KnownPurposes.SystemAdministration);
            var refused = await Assert.ThrowsAsync<VaubanConfigurationException>(
                () => stale.Records.SearchAsync(context, "Patient", [new("family", "Unopened")], null, lenient: false, CancellationToken.None));
            Assert.Contains("The store's master key was rotated meanwhile", refused.Message, StringComparison.Ordinal);
            Assert.Contains(next.Fingerprint, refused.Message, StringComparison.Ordinal);
            Assert.Contains("Restart this process with the store's new master key", refused.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("created with another master key", refused.Message, StringComparison.Ordinal);
        }
        await using (var reopened = await VaubanStore.OpenAsync(new StoreOptions(db, next), CancellationToken.None))
        {
            await AssertEveryEstablishmentReadsAsync(reopened, "Unopened");
        }
        RemoveSqliteFolder(engine, db);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_rotation_that_fails_once_its_commit_was_sent_is_reported_as_unsettled_not_as_failed(Engine engine)
    {
        var (db, old) = await StoreWithOneEstablishmentAsync(engine, "chu-commit");
        await ExecuteAsync(db, Vauban.Tests.Cli.CliTests.RefuseCommitOfTheBinding(engine));
        var next = Vauban.Crypto.MasterKey.Generate();
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None))
        {
            var unsettled = await Assert.ThrowsAsync<Vauban.Crypto.MasterKeyRotationUnsettledException>(() => store.RotateMasterKeyAsync(next, Administrator, CancellationToken.None));
            Assert.Contains("is not known", unsettled.Message, StringComparison.Ordinal);
            Assert.Contains(next.Fingerprint, unsettled.Message, StringComparison.Ordinal);
            Assert.Contains(old.Fingerprint, unsettled.Message, StringComparison.Ordinal);
            Assert.Equal(old.Fingerprint, store.MasterKeyFingerprint);
        }
        // The database refused this commit: the store kept its key.
        await using (var reopened = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None))
        {
            Assert.NotNull(await reopened.Tenants.FindAsync("chu-commit", CancellationToken.None));
        }
        RemoveSqliteFolder(engine, db);
    }

    /// <summary>Returns once <paramref name="count"/> sessions of <paramref name="db"/> wait for a lock (a row, an advisory lock):
    /// a step of a concurrent test reached, without sleeping on a guess.</summary>
    internal static async Task WaitForLockWaitersAsync(string db, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await ScalarAsync(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") < count)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{count} session(s) never waited for a lock.");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task An_establishment_added_while_a_rotation_waits_for_the_lock_gets_the_rotation_on_its_chain()
    {
        var (db, old) = await StoreWithOneEstablishmentAsync(Engine.Postgres, "chu-a");
        var next = Vauban.Crypto.MasterKey.Generate();
        await using var rotating = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None);
        await using var adding = await VaubanStore.OpenAsync(new StoreOptions(db, old), CancellationToken.None);
        await using var blocker = new NpgsqlConnection(db);
        await blocker.OpenAsync();
        await using var held = await blocker.BeginTransactionAsync();
        // An uncommitted row of the same name holds `tenants add` inside its transaction, under the "tenants add" lock.
        await using (var row = new NpgsqlCommand("INSERT INTO tenants (name, created_at) VALUES ('chu-late', 0)", blocker, held)) await row.ExecuteNonQueryAsync();
        var add = adding.Tenants.AddAsync("chu-late", CancellationToken.None);
        await WaitForLockWaitersAsync(db, 1);
        var rotation = rotating.RotateMasterKeyAsync(next, Administrator, CancellationToken.None);
        await WaitForLockWaitersAsync(db, 2); // the rotation waits for the lock
        await held.RollbackAsync();
        var late = await add;

        // The establishment committed while the rotation waited is re-wrapped, counted, and told on its own chain.
        Assert.Equal(new Vauban.Crypto.MasterKeyRotation(6, 2), await rotation);
        await AssertChainBeganAndHasOneActAsync(db, late.Id);
        await using var reopened = await VaubanStore.OpenAsync(new StoreOptions(db, next), CancellationToken.None);
        Assert.True((await reopened.AuditLog.VerifyAsync(late.Id, null, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task A_transaction_that_appends_to_several_chains_locks_their_heads_in_ascending_tenant_id_whatever_order_it_added_them()
    {
        var (db, master) = await StoreWithOneEstablishmentAsync(Engine.Postgres, "chu-1");
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None);
        var low = (await store.Tenants.FindAsync("chu-1", CancellationToken.None))!;
        var high = await store.Tenants.AddAsync("chu-2", CancellationToken.None);
        Assert.True(low.Id < high.Id);
        await using var blocker = new NpgsqlConnection(db);
        await blocker.OpenAsync();
        await using var held = await blocker.BeginTransactionAsync();
        await using (var head = new NpgsqlCommand($"SELECT seq FROM audit_heads WHERE tenant_id = {low.Id} FOR UPDATE", blocker, held)) await head.ExecuteScalarAsync();

        // The higher establishment's entry added first (a write's own chain), the lower one's after (an act on other chains).
        var scope = await store.Database.BeginWriteAsync(CancellationToken.None);
        await store.Audit.AppendAsync(scope, Vauban.Access.AccessContext.Operator(high, "administration"), Vauban.Audit.AuditAction.Administration,
            Vauban.Audit.AuditOutcome.Success, null, [new Vauban.Audit.AuditedRecord("test:order", null, null)], CancellationToken.None);
        await store.Audit.AppendOnEveryChainAsync(scope, [Vauban.Access.AccessContext.Operator(low, "administration")], Vauban.Audit.AuditAction.Administration,
            [new Vauban.Audit.AuditedRecord("test:order", null, null)], "order", CancellationToken.None);
        var commit = scope.CommitAsync(CancellationToken.None);
        await WaitForLockWaitersAsync(db, 1); // waits for the lower head

        // It holds no lock on the higher head while it waits for the lower one: another transaction locking both in the same
        // order cannot be waiting for it in a cycle.
        await using (var head = new NpgsqlCommand($"SELECT seq FROM audit_heads WHERE tenant_id = {high.Id} FOR UPDATE NOWAIT", blocker, held)) await head.ExecuteScalarAsync();
        await held.RollbackAsync();
        await commit;
        await scope.DisposeAsync();
        await AssertChainBeganAndHasOneActAsync(db, low.Id);
        await AssertChainBeganAndHasOneActAsync(db, high.Id);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_store_of_an_older_Vauban_opened_with_another_master_key_is_refused_before_it_is_migrated(Engine engine)
    {
        var (db, master) = await StoreWithOneEstablishmentAsync(engine, "chu-old");
        // The store as the Vauban before the last schema step left it.
        var last = Vauban.Storage.Schema.Latest;
        await ExecuteAsync(db, $"DELETE FROM schema_version WHERE version = {last}; {UndoStep24}");

        var wrong = await Assert.ThrowsAsync<VaubanConfigurationException>(() => VaubanStore.OpenAsync(new StoreOptions(db, Vauban.Crypto.MasterKey.Generate()), CancellationToken.None));
        Assert.Contains("another master key", wrong.Message, StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync(db, $"SELECT count(*) FROM schema_version WHERE version = {last}"));

        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            Assert.NotNull(await store.Tenants.FindAsync("chu-old", CancellationToken.None));
        }
        Assert.Equal(1, await ScalarAsync(db, $"SELECT count(*) FROM schema_version WHERE version = {last}"));
        RemoveSqliteFolder(engine, db);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task An_upgrade_that_fails_half_way_names_the_step_and_leaves_the_store_as_it_was(Engine engine)
    {
        var (db, master) = await StoreWithOneEstablishmentAsync(engine, "chu-upgrade");
        // A store fourteen steps behind, in which the second cannot run (a table of that name is already there). Dropping store_settings
        // undoes step 20 too.
        await ExecuteAsync(db, $"DELETE FROM schema_version WHERE version IN (11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24); {UndoStep24} {UndoStep23} {UndoStep22} {UndoStep21} DROP TABLE store_settings; {UndoStep19} {UndoStep18(engine)} {UndoStep13} {UndoStep14} {UndoStep15} {UndoStep16} {UndoStep17}");

        var failed = await Assert.ThrowsAsync<VaubanConfigurationException>(() => VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None));
        Assert.Contains("to schema version 12 (client assertions already used", failed.Message, StringComparison.Ordinal);
        Assert.Contains("client_assertions", failed.Message, StringComparison.Ordinal);
        Assert.Contains("left as it was, at version 10", failed.Message, StringComparison.Ordinal);
        // Step 11, applied before 12 failed, was undone with it.
        Assert.Equal(10, await ScalarAsync(db, "SELECT max(version) FROM schema_version"));
        Assert.Equal(0, await ScalarAsync(db, engine == Engine.Postgres
            ? "SELECT count(*) FROM pg_tables WHERE tablename = 'store_settings'"
            : "SELECT count(*) FROM sqlite_master WHERE name = 'store_settings'"));

        // Once the operator has removed what was in the way, the upgrade runs.
        await ExecuteAsync(db, "DROP TABLE client_assertions;");
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            Assert.NotNull(await store.Tenants.FindAsync("chu-upgrade", CancellationToken.None));
        }
        Assert.Equal(Vauban.Storage.Schema.Latest, await ScalarAsync(db, "SELECT max(version) FROM schema_version"));
        RemoveSqliteFolder(engine, db);
    }

    /// <summary>What schema step 13 added, removed.</summary>
    private const string UndoStep13 = "ALTER TABLE resources DROP COLUMN made; ALTER TABLE resource_history DROP COLUMN made;";

    /// <summary>What schema step 14 added, removed.</summary>
    private const string UndoStep14 = "DROP TABLE grant_writes;";

    /// <summary>What schema step 15 added, removed.</summary>
    private const string UndoStep15 = "ALTER TABLE clients DROP COLUMN purpose;";

    /// <summary>What schema step 16 added, removed (PostgreSQL's step adds nothing).</summary>
    private const string UndoStep16 = "DROP INDEX IF EXISTS idx_hash_rid;";

    /// <summary>What schema step 21 added, removed: the store's row-authentication key and the rows' MACs.</summary>
    internal const string UndoStep21 = "DROP TABLE store_keys; ALTER TABLE clients DROP COLUMN mac; ALTER TABLE access_tokens DROP COLUMN mac; "
        + "ALTER TABLE staff_sessions DROP COLUMN mac;";

    /// <summary>What the last schema step (24) added, removed: the seed runs' claims.</summary>
    internal const string UndoStep24 = "DROP TABLE seed_runs;";

    /// <summary>What schema step 23 added, removed: the break-the-glass grants' MACs.</summary>
    internal const string UndoStep23 = "ALTER TABLE break_glass DROP COLUMN mac;";

    /// <summary>What schema step 22 added, removed: the staff rows' MACs and establishments, the links' and sessions'
    /// security stamps.</summary>
    internal const string UndoStep22 = "ALTER TABLE staff_users DROP COLUMN mac; ALTER TABLE staff_passkeys DROP COLUMN mac; ALTER TABLE staff_passkeys DROP COLUMN tenant_id; "
        + "ALTER TABLE staff_recovery_codes DROP COLUMN mac; ALTER TABLE staff_recovery_codes DROP COLUMN tenant_id; "
        + "ALTER TABLE enrolment_tokens DROP COLUMN mac; ALTER TABLE enrolment_tokens DROP COLUMN tenant_id; "
        + "ALTER TABLE enrolment_tokens DROP COLUMN security_stamp; ALTER TABLE staff_sessions DROP COLUMN security_stamp;";

    /// <summary>What schema step 17 added, removed.</summary>
    private const string UndoStep17 = "ALTER TABLE guard_containments DROP COLUMN cause;";

    /// <summary>What schema step 19 added, removed.</summary>
    private const string UndoStep19 = "DROP TABLE guard_outside_care;";

    /// <summary>What schema step 18 added, removed: the store as the Vauban before it left it (SQLite's hash lists back to
    /// the index of idx_hash by record; PostgreSQL's step adds nothing, its column is step 1's). Undone before 16: it put back what
    /// step 16 made.</summary>
    private static string UndoStep18(Engine engine) => engine == Engine.Sqlite ? "ALTER TABLE resources DROP COLUMN hashes; CREATE INDEX idx_hash_rid ON idx_hash (rid);" : "";

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_client_registered_before_clients_had_a_purpose_of_use_keeps_TREAT_after_the_upgrade(Engine engine)
    {
        var (db, master) = await StoreWithOneEstablishmentAsync(engine, "chu-before-purpose");
        string clientId, secret;
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            var tenant = (await store.Tenants.FindAsync("chu-before-purpose", CancellationToken.None))!;
            var registration = await store.Clients.AddAsync(tenant, "lab interface", "system/Patient.rs", null, Vauban.Access.ClientLimits.None, CancellationToken.None);
            (clientId, secret) = (registration.ClientId, registration.ClientSecret!);
        }
        // The store as the Vauban before step 15 left it: the client's row without a purpose.
        await ExecuteAsync(db, $"DELETE FROM schema_version WHERE version IN (15, 16, 17, 18); {UndoStep18(engine)} {UndoStep15} {UndoStep16} {UndoStep17}");

        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            var tenant = (await store.Tenants.FindAsync("chu-before-purpose", CancellationToken.None))!;
            Assert.Equal(Vauban.Access.KnownPurposes.Treatment, Assert.Single(await store.Clients.ListAsync(tenant, CancellationToken.None)).Purpose);
            // Its acts are recorded as they were before the upgrade: treatment.
            var (issued, error) = await store.Clients.IssueAsync(new Vauban.Access.TokenRequest("client_credentials", null, clientId, secret, null, null),
                "http://localhost/oauth/token", null, null, CancellationToken.None);
            Assert.True(issued is not null, error?.Description);
            var context = await store.Clients.AuthenticateAsync(issued.AccessToken, null, CancellationToken.None);
            Assert.Equal(Vauban.Access.KnownPurposes.Treatment, context?.Purpose);
        }
        Assert.Equal(1, await ScalarAsync(db, "SELECT count(*) FROM schema_version WHERE version = 15"));
        RemoveSqliteFolder(engine, db);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task A_stale_blind_index_hash_left_by_a_Vauban_before_step_16_is_removed_by_reindex_after_the_upgrade(Engine engine)
    {
        var (db, master) = await StoreWithOneEstablishmentAsync(engine, "chu-before-hash-rows");
        long rid;
        HashSet<long> current;
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            var tenant = (await store.Tenants.FindAsync("chu-before-hash-rows", CancellationToken.None))!;
            using var json = System.Text.Json.JsonDocument.Parse(Samples.Patient(family: "Actuelle"));
            var id = (await store.Records.CreateAsync(Vauban.Access.AccessContext.Operator(tenant, "set-up"), "Patient", json.RootElement, null, CancellationToken.None)).Id!;
            rid = await ScalarAsync(db, $"SELECT rid FROM resources WHERE id = '{id}'");
            current = await HashesAsync(db, engine, rid);
            Assert.NotEmpty(current);
        }
        // The store as the Vauban before step 16 left it, with a hash an older extraction made of the record and the current one
        // does not (its value is arbitrary: no extraction makes it).
        // Two of them, one negative: SQLite's step 18 writes each as 8 bytes from its 64-bit two's complement.
        long[] stale = [0x5EA1_0000_0000_0016, -0x5EA1_0000_0000_0018];
        await ExecuteAsync(db, $"DELETE FROM schema_version WHERE version IN (16, 17, 18); {UndoStep18(engine)} {UndoStep16} {UndoStep17} "
            + (engine == Engine.Sqlite ? $"INSERT INTO idx_hash (h, rid) VALUES ({stale[0]}, {rid}), ({stale[1]}, {rid});"
                : $"UPDATE resources SET hashes = hashes || ARRAY[{stale[0]}, {stale[1]}]::bigint[] WHERE rid = {rid};"));

        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            // Upgraded, the row lists what idx_hash held for it, the stale hashes included (HashesAsync checks the two agree).
            Assert.True(current.Union(stale).ToHashSet().SetEquals(await HashesAsync(db, engine, rid)));
            var tenant = (await store.Tenants.FindAsync("chu-before-hash-rows", CancellationToken.None))!;
            var summary = await store.Records.ReindexAsync(Vauban.Access.AccessContext.Operator(tenant, Vauban.Access.KnownPurposes.SystemAdministration), null, null, CancellationToken.None);
            Assert.Equal((1, true), (summary.Changed, summary.Complete));
        }
        Assert.True(current.SetEquals(await HashesAsync(db, engine, rid)));
        Assert.Equal(1, await ScalarAsync(db, "SELECT count(*) FROM schema_version WHERE version = 16"));
        // Step 18 took the index of idx_hash by record away again: the row's list finds a record's hashes.
        Assert.Equal(0, await ScalarAsync(db, engine == Engine.Postgres ? "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_hash_rid'"
            : "SELECT count(*) FROM sqlite_master WHERE name = 'idx_hash_rid'"));
        RemoveSqliteFolder(engine, db);
    }

    [Theory]
    [InlineData(Engine.Sqlite)]
    [InlineData(Engine.Postgres)]
    public async Task Containments_made_before_step_17_are_a_canarys_after_the_upgrade_when_their_reason_names_a_canary_and_a_volumes_otherwise(Engine engine)
    {
        var (db, master) = await StoreWithOneEstablishmentAsync(engine, "chu-before-causes");
        var tenant = await ScalarAsync(db, "SELECT id FROM tenants WHERE name = 'chu-before-causes'");
        // The store as the Vauban before step 17 left it, holding what its guard wrote: an account a canary locked (the reason as
        // written since 2026-12-02, and before), a client suspended for its volume, a session suspended outside care.
        var at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await ExecuteAsync(db, $"DELETE FROM schema_version WHERE version IN (17, 18); {UndoStep18(engine)} {UndoStep17} "
            + "INSERT INTO guard_containments (tenant_id, principal, account, level, reason, contained_at) VALUES "
            + $"({tenant}, 'user:desk', 'user:desk', 'locked', 'user:desk (secretary, session s-1): canary Patient/0193a1b2-c3d4 reached by read on Patient; refused, nothing of it was returned.', {at}), "
            + $"({tenant}, 'vc_old', NULL, 'suspended', 'client vc_old: canary Patient/pat-77 returned by search on Patient (page 1, 20 patients).', {at}), "
            + $"({tenant}, 'vc_busy', NULL, 'suspended', 'client vc_busy: distinct patients in a minute: 26 > 25 (limit for API clients) on read of Patient.', {at}), "
            + $"({tenant}, 'session:s-2', 'user:doc', 'suspended', 'user:doc (physician, session s-2): distinct patients outside care relationships in a day: 26 > 25 (limit for physicians) on read of Patient.', {at});");

        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(db, master), CancellationToken.None))
        {
            var causes = (await store.Guard.ContainmentsAsync(tenant, CancellationToken.None)).ToDictionary(c => c.Principal, c => c.Cause);
            Assert.Equal(Vauban.Guard.ContainmentCauses.Canary, causes["user:desk"]);
            Assert.Equal(Vauban.Guard.ContainmentCauses.Canary, causes["vc_old"]);
            Assert.Equal(Vauban.Guard.ContainmentCauses.Volume, causes["vc_busy"]);
            Assert.Equal(Vauban.Guard.ContainmentCauses.Volume, causes["session:s-2"]);
            // And they are held as such: the canary's lock is not an administrator's to release, the volume's suspension is.
            var establishment = (await store.Tenants.FindAsync("chu-before-causes", CancellationToken.None))!;
            var administrator = new Vauban.Access.AccessContext(new Vauban.Access.Principal(Vauban.Access.PrincipalKind.Person, "user:adm", "Adam Admin",
                Vauban.Access.StaffUser.PersonScopes) { Role = Vauban.Access.StaffRole.Administrator, SessionId = "s-adm" }, establishment, Vauban.Access.KnownPurposes.SystemAdministration);
            Assert.Equal(Vauban.Guard.ReleaseStatus.CanaryIsTheOfficers, (await store.Guard.ReleaseAsync(administrator, "user:desk", CancellationToken.None)).Status);
            Assert.Equal(1, (await store.Guard.ReleaseAsync(administrator, "vc_busy", CancellationToken.None)).Released);
        }
        Assert.Equal(1, await ScalarAsync(db, "SELECT count(*) FROM schema_version WHERE version = 17"));
        RemoveSqliteFolder(engine, db);
    }

    /// <summary>The blind-index hashes stored for row <paramref name="rid"/> (<see cref="StoredHashes"/>).</summary>
    private static async Task<HashSet<long>> HashesAsync(string db, Engine engine, long rid)
    {
        await using var database = Vauban.Storage.StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        return await StoredHashes.ReadAsync(connection, engine, rid);
    }

    /// <summary>SQLite's query plan for a statement, its details joined.</summary>
    private static async Task<string> PlanAsync(string db, string sql)
    {
        await using var database = Vauban.Storage.StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        var plan = new System.Text.StringBuilder();
        using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) plan.Append(reader.GetString(3)).Append('\n');
        return plan.ToString();
    }

    internal static async Task ExecuteAsync(string db, string sql)
    {
        await using var database = Vauban.Storage.StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    internal static async Task<long> ScalarAsync(string db, string sql)
    {
        await using var database = Vauban.Storage.StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(CancellationToken.None);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
