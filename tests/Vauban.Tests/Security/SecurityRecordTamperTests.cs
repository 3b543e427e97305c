// The security records beside the audit chain — the guard's alerts and containments, break-the-glass grants with the explanation
// a clinician typed — attacked by an insider with the database (SQLite file or PostgreSQL login), and with the master key where the
// attack needs it: she deletes the canary alert that caught her, edits her containment's reason, rewrites her justification,
// forges an alert, marks one acknowledged or a containment released behind the officer's back, or resets the store's record of
// the upgrade to pass rows added since as existing. `vauban audit verify` names each and exits 3; untouched, it passes.
using System.Data.Common;
using System.Text;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Storage;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

[Collection("console")]
public abstract class SecurityRecordTamperTests(Engine engine) : IAsyncLifetime
{
    private const string Explanation = "Unconscious on arrival, no relative reachable";
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-records-" + Guid.NewGuid().ToString("N")[..8]);
    private string _db = "", _key = "", _patient = "";
    private Tenant _tenant = null!;
    private long _canaryAlert, _heldContainment, _releasedContainment, _grant;
    private string _canary = "";

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _key = Path.Combine(_directory, "master.key");
        _db = await NewDatabaseAsync("v.db");
        Assert.Equal(0, (await CliRunner.RunAsync(["tenants", "add", "chu-records", "--db", _db, "--master-key-file", _key])).Exit);
        await using var store = await OpenAsync(_db);
        _tenant = (await store.Tenants.FindAsync("chu-records", None))!;
        using (var patient = JsonDocument.Parse(Samples.Patient(family: "Urgence")))
        {
            _patient = (await store.Records.CreateAsync(AccessContext.Operator(_tenant, "fixture"), "Patient", patient.RootElement, null, None)).Id!;
        }
        var canary = _canary = (await store.Guard.AddCanariesAsync(store.Records, _tenant, 1, None))[0];
        // Two clients read the canary: each is suspended at once, with a guard-canary alert; the operator releases the second.
        foreach (var client in new[] { "vc_held", "vc_released" })
        {
            var context = new AccessContext(new Principal(PrincipalKind.ApiClient, client, "reader", StaffUser.PersonScopes), _tenant, KnownPurposes.Treatment);
            Assert.Equal(GuardVerdict.Suspended, (await store.Guard.AdmitAsync(context, new GuardRequest(Interaction.Read, "Patient", 1, [canary], [canary]), None)).Verdict);
        }
        Assert.Equal(1, (await store.Guard.ReleaseAsync(AccessContext.Operator(_tenant, "review"), "vc_released", None)).Released);
        var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:dr-urgence", "Dr Urgence", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, SessionId = "s-urgence", AuthenticatedAt = DateTimeOffset.UtcNow,
        }, _tenant, KnownPurposes.Treatment);
        Assert.Equal(BreakGlassStatus.Granted, (await store.BreakTheGlass.OpenAsync(physician, _patient, KnownBreakGlassReasons.Emergency, Explanation, None)).Status);

        _canaryAlert = await ScalarAsync(_db, "SELECT min(id) FROM security_alerts WHERE kind = 'guard-canary'");
        _heldContainment = await ScalarAsync(_db, "SELECT id FROM guard_containments WHERE principal = 'vc_held'");
        _releasedContainment = await ScalarAsync(_db, "SELECT id FROM guard_containments WHERE principal = 'vc_released'");
        _grant = await ScalarAsync(_db, "SELECT id FROM break_glass");
        // The officer reviews the release's alert: its acknowledgement is on the chain too.
        var released = await ScalarAsync(_db, "SELECT id FROM security_alerts WHERE kind = 'guard-released'");
        Assert.Equal([released], await store.Guard.AcknowledgeAlertsAsync(AccessContext.Operator(_tenant, "review"), [released], None));
    }

    public Task DisposeAsync()
    {
        try { Directory.Delete(_directory, true); } catch (IOException) { }
        return Task.CompletedTask;
    }

    private async Task<string> NewDatabaseAsync(string file) =>
        engine == Engine.Postgres ? await PostgresServer.CreateDatabaseAsync() : Path.Combine(_directory, file);

    private Task<VaubanStore> OpenAsync(string db) => VaubanStore.OpenAsync(new StoreOptions(db, MasterKey.Load(_key, null)), None);

    private Task<(int Exit, string Output)> VerifyAsync(string db) => CliRunner.RunAsync(["audit", "verify", "--db", db, "--master-key-file", _key]);

    /// <summary>One statement on the database behind the server's back, as the insider runs it.</summary>
    private static async Task<long> ScalarAsync(string db, string sql, params (string Name, object Value)[] parameters)
    {
        await using var database = StoreDatabase.Open(db);
        await using var connection = await database.OpenAsync(None);
        using var command = connection.Command(sql);
        foreach (var (name, value) in parameters) command.With(name, value);
        var result = await command.ExecuteScalarAsync(None);
        return result is null or DBNull ? 0 : Convert.ToInt64(result, System.Globalization.CultureInfo.InvariantCulture);
    }


    private async Task<string> BrokenAsync()
    {
        var (exit, output) = await VerifyAsync(_db);
        Assert.True(exit == 3, output);
        Assert.Contains("chu-records: BROKEN — ", output, StringComparison.Ordinal);
        Assert.Contains("the security records beside it did not", output, StringComparison.Ordinal);
        // Named by table and number only: never the explanation's words nor the patient.
        Assert.DoesNotContain(Explanation, output, StringComparison.Ordinal);
        Assert.DoesNotContain(_patient, output, StringComparison.Ordinal);
        return output;
    }

    [Fact]
    public async Task Untouched_the_alerts_containments_and_grant_verify_with_the_chain()
    {
        var (exit, output) = await VerifyAsync(_db);
        Assert.True(exit == 0, output);
        var records = await ScalarAsync(_db, "SELECT (SELECT count(*) FROM security_alerts) + (SELECT count(*) FROM guard_containments) + (SELECT count(*) FROM break_glass)");
        Assert.Equal(7, records); // 4 alerts (two canaries, a release, the grant), 2 containments, 1 grant
        Assert.Contains($"chu-records: OK — ", output, StringComparison.Ordinal);
        Assert.Contains($" and {records} security records verified", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_canary_alert_deleted_is_named()
    {
        await ScalarAsync(_db, "DELETE FROM security_alerts WHERE id = @i", ("i", _canaryAlert));
        Assert.Matches($"BROKEN — alert {_canaryAlert}, put on the chain at entry [0-9]+, is missing from security_alerts \\(deleted\\)", await BrokenAsync());
    }

    [Fact]
    public async Task A_containments_reason_edited_is_named()
    {
        await ScalarAsync(_db, "UPDATE guard_containments SET reason = 'client vc_held: 26 patients in a minute' WHERE id = @i", ("i", _heldContainment));
        Assert.Matches($"BROKEN — containment {_heldContainment} no longer matches what entry [0-9]+ put on the chain \\(altered in guard_containments\\)", await BrokenAsync());
    }

    [Fact]
    public async Task A_break_the_glass_explanation_rewritten_with_the_key_is_named()
    {
        // The strongest insider: she holds the master key too, and seals a justification of her choosing where hers was, bound
        // as the server binds it, so that the officer's console opens it without a complaint.
        await using (var store = await OpenAsync(_db))
        {
            var keys = await store.Keys.ForTenantAsync(_tenant.Id, None);
            var grantedAt = await ScalarAsync(_db, "SELECT granted_at FROM break_glass WHERE id = @i", ("i", _grant));
            var (id, version) = BreakTheGlass.ExplanationBinding("user:dr-urgence", _patient, grantedAt);
            var forged = RecordCipher.Seal(keys, 0, id, version, Encoding.UTF8.GetBytes("Patient asked me to check her results"));
            await ScalarAsync(_db, "UPDATE break_glass SET detail = @d WHERE id = @i", ("d", forged), ("i", _grant));
            Assert.Equal("Patient asked me to check her results", Assert.Single(await store.BreakTheGlass.ReviewAsync(_tenant, 10, None)).Explanation);
        }
        Assert.Matches($"BROKEN — break-the-glass grant {_grant} no longer matches what entry [0-9]+ put on the chain \\(altered in break_glass\\)", await BrokenAsync());
    }

    [Fact]
    public async Task A_trigger_that_deletes_the_canary_alert_or_stretches_a_grant_as_it_is_written_fails_the_write_and_is_named()
    {
        // The insider's trigger acts inside the very statement that writes the row: the chain must never take the changed row for
        // the truth. The write fails, and verify names the trigger; it never answers OK.
        if (engine == Engine.Sqlite)
        {
            await ScalarAsync(_db, "CREATE TRIGGER hide_canary AFTER INSERT ON security_alerts WHEN NEW.kind = 'guard-canary' BEGIN DELETE FROM security_alerts WHERE id = NEW.id; END");
            await ScalarAsync(_db, "CREATE TRIGGER stretch_grant AFTER INSERT ON break_glass BEGIN UPDATE break_glass SET expires_at = expires_at + 2592000000 WHERE id = NEW.id; END");
        }
        else
        {
            await ScalarAsync(_db, "CREATE FUNCTION hide_canary() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM security_alerts WHERE id = NEW.id; RETURN NULL; END $$");
            await ScalarAsync(_db, "CREATE TRIGGER hide_canary AFTER INSERT ON security_alerts FOR EACH ROW WHEN (NEW.kind = 'guard-canary') EXECUTE FUNCTION hide_canary()");
            await ScalarAsync(_db, "CREATE FUNCTION stretch_grant() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE break_glass SET expires_at = expires_at + 2592000000 WHERE id = NEW.id; RETURN NULL; END $$");
            await ScalarAsync(_db, "CREATE TRIGGER stretch_grant AFTER INSERT ON break_glass FOR EACH ROW EXECUTE FUNCTION stretch_grant()");
        }
        var alerts = await ScalarAsync(_db, "SELECT count(*) FROM security_alerts");
        var grants = await ScalarAsync(_db, "SELECT count(*) FROM break_glass");
        await using (var store = await OpenAsync(_db))
        {
            var reader = new AccessContext(new Principal(PrincipalKind.ApiClient, "vc_trigger", "reader", StaffUser.PersonScopes), _tenant, KnownPurposes.Treatment);
            try
            {
                await store.Guard.AdmitAsync(reader, new GuardRequest(Interaction.Read, "Patient", 1, [_canary], [_canary]), None);
            }
            catch (AuditIntegrityException)
            {
                // The containment's write failed with its alert: the principal is still held in this process's memory.
            }
            var physician = new AccessContext(new Principal(PrincipalKind.Person, "user:dr-nuit", "Dr Nuit", StaffUser.PersonScopes)
            {
                Role = StaffRole.Physician, SessionId = "s-nuit", AuthenticatedAt = DateTimeOffset.UtcNow,
            }, _tenant, KnownPurposes.Treatment);
            await Assert.ThrowsAsync<AuditIntegrityException>(() => store.BreakTheGlass.OpenAsync(physician, _patient, KnownBreakGlassReasons.Emergency, Explanation, None));
        }
        // Nothing the triggers changed was committed as the truth.
        Assert.Equal(alerts, await ScalarAsync(_db, "SELECT count(*) FROM security_alerts"));
        Assert.Equal(grants, await ScalarAsync(_db, "SELECT count(*) FROM break_glass"));
        var output = await BrokenAsync();
        Assert.Contains("hide_canary on security_alerts", output, StringComparison.Ordinal);
        Assert.Contains("stretch_grant on break_glass", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_the_chain_unwritable_a_canary_reader_is_still_contained_after_a_restart_and_verify_says_her_containment_is_off_the_chain()
    {
        // Invariant 5 never yields to an audit failure: the containment and its alert are committed without their entry.
        await using (var store = await OpenAsync(_db))
        {
            await ScalarAsync(_db, "ALTER TABLE audit_entries RENAME TO audit_entries_away");
            try
            {
                var reader = new AccessContext(new Principal(PrincipalKind.ApiClient, "vc_unchained", "reader", StaffUser.PersonScopes), _tenant, KnownPurposes.Treatment);
                Assert.Equal(GuardVerdict.Suspended, (await store.Guard.AdmitAsync(reader, new GuardRequest(Interaction.Read, "Patient", 1, [_canary], [_canary]), None)).Verdict);
                await store.Guard.FlushAsync();
            }
            finally
            {
                await ScalarAsync(_db, "ALTER TABLE audit_entries_away RENAME TO audit_entries");
            }
        }
        await using (var restarted = await OpenAsync(_db))
        {
            Assert.Contains(await restarted.Guard.ContainmentsAsync(_tenant.Id, None), c => c.Principal == "vc_unchained");
        }
        // Its alert and its containment, both off the chain.
        Assert.Matches("(alert|containment) [0-9]+ in (security_alerts|guard_containments) is on no entry of the chain \\(added in the database\\) \\(1 more security record problem after it\\)",
            await BrokenAsync());
    }

    [Fact]
    public async Task A_forged_alert_inserted_is_named()
    {
        var forged = await ScalarAsync(_db, "INSERT INTO security_alerts (tenant_id, raised_at, kind, principal, detail) VALUES (@t, @at, 'guard-released', 'unknown', 'vc_held released by the officer') RETURNING id",
            ("t", _tenant.Id), ("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        Assert.Contains($"BROKEN — alert {forged} in security_alerts is on no entry of the chain (added in the database).", await BrokenAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_alert_acknowledged_or_a_containment_released_behind_the_officers_back_is_named()
    {
        // Hiding the canary's alert from the officer's default list, without deleting it.
        await ScalarAsync(_db, "UPDATE security_alerts SET acknowledged_at = @at, acknowledged_by = 'principal-ix:1' WHERE id = @i",
            ("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), ("i", _canaryAlert));
        Assert.Contains($"BROKEN — alert {_canaryAlert}'s acknowledgement in security_alerts is on no entry of the chain (altered)", await BrokenAsync(), StringComparison.Ordinal);
        await ScalarAsync(_db, "UPDATE security_alerts SET acknowledged_at = NULL, acknowledged_by = NULL WHERE id = @i", ("i", _canaryAlert));
        Assert.Equal(0, (await VerifyAsync(_db)).Exit);

        // A containment released in the database alone, and the released one put back in force: both are changes of its release.
        await ScalarAsync(_db, "UPDATE guard_containments SET released_at = @at, released_by = 'principal-ix:1' WHERE id = @i",
            ("at", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), ("i", _heldContainment));
        Assert.Contains($"containment {_heldContainment}'s release in guard_containments is on no entry of the chain (altered)", await BrokenAsync(), StringComparison.Ordinal);
        await ScalarAsync(_db, "UPDATE guard_containments SET released_at = NULL, released_by = NULL");
        Assert.Matches($"containment {_releasedContainment}'s release no longer matches what entry [0-9]+ put on the chain \\(altered in guard_containments\\)", await BrokenAsync());
    }

    [Fact]
    public async Task An_alert_deleted_and_its_number_reused_by_the_next_is_named()
    {
        // SQLite gives a deleted highest row's number to the next row, which hid the deletion behind a row that is on the chain;
        // the chain names the alert that had the number first. (PostgreSQL never gives a number twice: the alert is missing.)
        var last = await ScalarAsync(_db, "SELECT max(id) FROM security_alerts");
        await ScalarAsync(_db, "DELETE FROM security_alerts WHERE id = @i", ("i", last));
        await using (var store = await OpenAsync(_db)) await store.Alerts.RaiseAsync(_tenant.Id, KnownAlertKinds.SessionRevoked, "user:dr-urgence", "sessions ended", None);
        Assert.Matches(engine == Engine.Sqlite
            ? $"BROKEN — alert {last}, put on the chain at entry [0-9]+, was put on it again as another record at entry [0-9]+: the first was deleted and its number reused"
            : $"BROKEN — alert {last}, put on the chain at entry [0-9]+, is missing from security_alerts \\(deleted\\)", await BrokenAsync());
    }

    /// <summary>The insider's laundering: a forged alert, then the mark of step 20 set back to pending, so that the next process to
    /// open chains every row it finds as "existing" — the forged one too. Returns the forged alert's number.</summary>
    private static async Task<long> ForgeAndResetTheMarkAsync(string db, long tenant)
    {
        var forged = await ScalarAsync(db, "INSERT INTO security_alerts (tenant_id, raised_at, kind, principal, detail) VALUES (@t, 1, 'guard-released', 'unknown', 'forged') RETURNING id",
            ("t", tenant));
        await ScalarAsync(db, "UPDATE store_settings SET value = 'pending' WHERE name = 'security_records_chained'");
        return forged;
    }

    [Fact]
    public async Task Resetting_the_stores_record_of_the_upgrade_launders_no_row_onto_a_chain_that_began_with_its_records()
    {
        // `tenants add` began the chain: every record is on it from entry 1, so a start that finds the mark pending again chains
        // nothing as existing, and the forged alert stays what it is, a row on no entry.
        var forged = await ForgeAndResetTheMarkAsync(_db, _tenant.Id);
        Assert.Contains($"BROKEN — alert {forged} in security_alerts is on no entry of the chain (added in the database).", await BrokenAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Emptying_the_chain_and_resetting_the_mark_launders_no_row_every_row_is_named_added()
    {
        // The reviewer's case: the chain wiped (entries, checkpoints, lookups) and its head set back to the genesis, a row forged,
        // the mark reset. The next start must not chain the rows then standing as existing on a new entry 1 signed with the real
        // key: the chain begins as one created then, and every row is named as added in the database.
        foreach (var table in new[] { "audit_entries", "audit_checkpoints", "audit_index" })
        {
            await ScalarAsync(_db, $"DELETE FROM {table} WHERE tenant_id = @t", ("t", _tenant.Id));
        }
        await ScalarAsync(_db, "UPDATE audit_heads SET seq = 0, hash = @h, tree = @tr, checkpoint_seq = 0, checkpoint_at = 0, indexed_seq = 0 WHERE tenant_id = @t",
            ("t", _tenant.Id), ("h", AuditChain.Genesis), ("tr", Array.Empty<byte>()));
        await ForgeAndResetTheMarkAsync(_db, _tenant.Id);
        var output = await BrokenAsync();
        Assert.DoesNotContain("chu-records: OK", output, StringComparison.Ordinal);
        Assert.Matches("chu-records: BROKEN — [a-z -]+ [0-9]+ in [a-z_]+ is on no entry of the chain \\(added in the database\\)", output);
        Assert.Contains("more security record problems after it", output, StringComparison.Ordinal);
        // Every row stays off it: a second start does not launder them either.
        Assert.Equal(3, (await VerifyAsync(_db)).Exit);
    }

    [Fact]
    public async Task An_establishment_created_without_an_administrative_act_begins_its_chain_with_its_records_and_launders_nothing()
    {
        // The reviewer's case: an establishment made through Tenants.AddAsync without an administrator (the API tests and the
        // benchmark make them so) had a first entry that did not mark the point from which its records are on the chain.
        Tenant clinic;
        await using (var store = await OpenAsync(_db))
        {
            clinic = await store.Tenants.AddAsync("clinique-sans-acte", None);
            await store.Alerts.RaiseAsync(clinic.Id, KnownAlertKinds.SessionRevoked, "user:dr-nuit", "sessions ended", None);
        }
        Assert.Equal(0, (await VerifyAsync(_db)).Exit);

        var forged = await ForgeAndResetTheMarkAsync(_db, clinic.Id);
        var (exit, output) = await VerifyAsync(_db);
        Assert.True(exit == 3, output);
        Assert.Contains($"clinique-sans-acte: BROKEN — alert {forged} in security_alerts is on no entry of the chain (added in the database).", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Existing_records_chained_after_records_written_are_named_on_a_chain_that_did_not_begin_with_them()
    {
        // An establishment an earlier Vauban created without an administrative act: its chain does not begin marked, and an alert
        // was written on it. The forged alert is chained as existing by the next start; verification names that entry.
        var clinic = await OlderEstablishmentAsync(_db, "clinique-ancienne", withEntries: false);
        await using (var store = await OpenAsync(_db)) await store.Alerts.RaiseAsync(clinic, KnownAlertKinds.SessionRevoked, "user:dr-nuit", "sessions ended", None);
        Assert.Equal(0, (await VerifyAsync(_db)).Exit);

        await ForgeAndResetTheMarkAsync(_db, clinic);
        var (exit, output) = await VerifyAsync(_db);
        Assert.True(exit == 3, output);
        Assert.Matches("clinique-ancienne: BROKEN — entry 2 chains the establishment's existing security records after entry 1 had put records written on it: the store's record of that step was reset", output);
    }

    /// <summary>An establishment as a Vauban before this one left it: no entry marks the point from which its security records are
    /// on the chain (none was written before step 20; none by an establishment's creation without an administrative act before
    /// this version). <paramref name="withEntries"/>: acts on its chain already (a patient created).</summary>
    private async Task<long> OlderEstablishmentAsync(string db, string name, bool withEntries)
    {
        await using var store = await OpenAsync(db);
        store.Audit.SkipForBenchmark = true;
        var tenant = await store.Tenants.AddAsync(name, None);
        store.Audit.SkipForBenchmark = false;
        if (withEntries)
        {
            using var patient = JsonDocument.Parse(Samples.Patient(family: "Ancien"));
            await store.Records.CreateAsync(AccessContext.Operator(tenant, "fixture"), "Patient", patient.RootElement, null, None);
        }
        return tenant.Id;
    }

    [Fact]
    public async Task Resetting_the_mark_after_an_upgrade_is_named_by_the_second_entry_of_existing_records()
    {
        var old = await NewDatabaseAsync("old.db");
        var tenant = await OlderEstablishmentAsync(old, "ancien", withEntries: true);
        await ScalarAsync(old, "INSERT INTO security_alerts (tenant_id, raised_at, kind, principal, detail) VALUES (@t, 1000, 'guard-suspended', 'vc_old', 'client vc_old: 30 patients in a minute')", ("t", tenant));
        await ScalarAsync(old, "UPDATE store_settings SET value = 'pending' WHERE name = 'security_records_chained'");
        Assert.Equal(0, (await VerifyAsync(old)).Exit); // the upgrade chains the alert, past the chain's first entries

        await ForgeAndResetTheMarkAsync(old, tenant);
        var (exit, output) = await VerifyAsync(old);
        Assert.Equal(3, exit);
        Assert.Matches("ancien: BROKEN — entry [0-9]+ chains the establishment's existing security records again, after entry [0-9]+: the store's record of that step was reset", output);
    }

    [Fact]
    public async Task Records_made_before_their_writes_were_chained_are_chained_once_by_the_upgrade_and_then_held_to_it()
    {
        // A store as an older Vauban left it: an establishment whose chain predates the mark, and an alert (its detail in clear,
        // as the first versions stored it), a released containment and a grant written without entries.
        var old = await NewDatabaseAsync("old.db");
        var tenant = await OlderEstablishmentAsync(old, "ancien", withEntries: true);
        // Older than step 23 too (grants authenticated): its upgrade vouches for the grant as it stands.
        await ScalarAsync(old, "DELETE FROM schema_version WHERE version = 23");
        await ScalarAsync(old, Storage.StoreOperationsTests.UndoStep23);
        var alert = await ScalarAsync(old, "INSERT INTO security_alerts (tenant_id, raised_at, kind, principal, detail) VALUES (@t, 1000, 'guard-suspended', 'vc_old', 'client vc_old: 30 patients in a minute') RETURNING id", ("t", tenant));
        var containment = await ScalarAsync(old, "INSERT INTO guard_containments (tenant_id, principal, level, cause, reason, contained_at, released_at, released_by) VALUES (@t, 'vc_old', 'suspended', 'volume', 'client vc_old: 30 patients in a minute', 1000, 2000, 'cli:root') RETURNING id", ("t", tenant));
        await ScalarAsync(old, "INSERT INTO break_glass (tenant_id, principal, session, patient, reason, granted_at, expires_at) VALUES (@t, 'user:old', 's-old', 'p-old', 'emergency', 1000, 2000)", ("t", tenant));
        await ScalarAsync(old, "UPDATE store_settings SET value = 'pending' WHERE name = 'security_records_chained'");

        var (exit, output) = await VerifyAsync(old);
        Assert.True(exit == 0, output);
        Assert.Contains("ancien: OK — ", output, StringComparison.Ordinal);
        Assert.Contains(" and 3 security records verified", output, StringComparison.Ordinal);
        // Chained once: the next start does not chain them again.
        Assert.Equal(0, (await VerifyAsync(old)).Exit);

        await ScalarAsync(old, "UPDATE security_alerts SET detail = 'client vc_old: 3 patients in a minute' WHERE id = @i", ("i", alert));
        (exit, output) = await VerifyAsync(old);
        Assert.Equal(3, exit);
        Assert.Matches($"ancien: BROKEN — alert {alert} no longer matches what entry [0-9]+ put on the chain", output);
        await ScalarAsync(old, "DELETE FROM security_alerts WHERE id = @i", ("i", alert));
        await ScalarAsync(old, "DELETE FROM guard_containments WHERE id = @i", ("i", containment));
        (exit, output) = await VerifyAsync(old);
        Assert.Equal(3, exit);
        Assert.Matches($"ancien: BROKEN — (alert {alert}|containment {containment}), put on the chain at entry [0-9]+, is missing .* \\(1 more security record problem after it\\)", output);
    }
}

public sealed class SecurityRecordTamperTests_Sqlite() : SecurityRecordTamperTests(Engine.Sqlite);

public sealed class SecurityRecordTamperTests_Postgres() : SecurityRecordTamperTests(Engine.Postgres);
