// ADR 0014: whoever can write the database but does not hold the master key (a DBA, a reporting tool's role, an injection in
// another application, a backup tampered with and restored) tries to turn that into reading every patient through Vauban: a
// token row of their own, a client widened or re-enabled, a session made or edited. Each attack is run with raw SQL behind the
// server's back, and seen where the attacker would use it: the token endpoint, /fhir, the staff pages. On both engines.
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

// In the console collection: `audit verify` is run in process, and another class's verb at the same time swapped Console.Out.
[Collection("console")]
public abstract class AccessRowTamperTests(Engine engine) : IAsyncLifetime
{
    private const string Password = "tourmaline ferry quietly 42";
    private const string Physician = "claire.martin@chu.example";
    private const string Administrator = "admin.bernard@chu.example";
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly ManualTime _time = new(ManualTime.RealNow);
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-rows-" + Guid.NewGuid().ToString("N")[..8]);
    private string _keyFile = "";
    private MasterKey _key = null!;
    private VaubanServer _server = null!;
    private Tenant _tenant = null!, _other = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _keyFile = Path.Combine(_directory, "master.key");
        _key = MasterKey.CreateFile(_keyFile);
        _server = await VaubanServer.StartAsync(engine, configure: o => o with { MasterKey = _key, Time = _time });
        _tenant = await _server.Store.Tenants.AddAsync("chu-rows", None);
        _other = await _server.Store.Tenants.AddAsync("chu-other", None);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        try { Directory.Delete(_directory, true); } catch (IOException) { }
    }

    /// <summary>A byte string as a SQL literal of the engine (the insider types it).</summary>
    private string Bytes(byte[] value) => engine == Engine.Postgres ? $"'\\x{Convert.ToHexStringLower(value)}'::bytea" : $"X'{Convert.ToHexString(value)}'";

    private static byte[] Sha256(string value) => SHA256.HashData(Encoding.UTF8.GetBytes(value));

    private async Task<ClientRegistration> ClientAsync(string scopes = "system/Patient.rs", ClientLimits? limits = null, string purpose = KnownPurposes.Treatment) =>
        await _server.Store.Clients.AddAsync(AccessContext.Operator(_tenant, "administration"), "lab interface", scopes, null, limits ?? ClientLimits.None, purpose, None);

    private async Task<(HttpStatusCode Status, string? Token)> TokenRequestAsync(string clientId, string secret)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret };
        using var response = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
        var body = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, response.IsSuccessStatusCode ? System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString() : null);
    }

    private async Task<HttpStatusCode> ReadPatientsAsync(string bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient?_count=1");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        using var response = await _server.Http.SendAsync(request);
        return response.StatusCode;
    }

    private async Task<IReadOnlyList<SecurityAlert>> RowAlertsAsync(Tenant tenant) =>
        [.. (await _server.Store.Alerts.ListAsync(tenant.Id, all: true, 100, None)).Where(a => a.Kind == KnownAlertKinds.RowIntegrity)];

    private async Task<string> EnrolledAsync(string email, StaffRole role) =>
        await StaffClient.EnrolledAsync(_server, _tenant, email, role, role == StaffRole.Physician ? "pract-1" : null, Password, _time,
            role == StaffRole.Physician ? "org-1" : null);

    private async Task<HttpStatusCode> FhirAsSessionAsync(StaffClient staff)
    {
        using var response = await staff.Http.GetAsync("/fhir/Patient?_count=1");
        return response.StatusCode;
    }

    private async Task<string> UserIdAsync(string email) => (await _server.Store.Accounts.FindAsync(_tenant, email, None))!.Id;

    [Fact]
    public async Task A_token_row_inserted_in_the_database_opens_nothing_and_is_reported_once()
    {
        var client = await ClientAsync();
        // The insider's own token, its hash (plain SHA-256) written beside the client's real ones with every scope and a far expiry.
        const string Chosen = "vt_chosen-by-the-insider";
        var far = _time.GetUtcNow().AddYears(1).ToUnixTimeMilliseconds();
        await _server.ExecuteSqlAsync($"INSERT INTO access_tokens (token_hash, client_id, tenant_id, scopes, expires_at) VALUES ({Bytes(Sha256(Chosen))}, '{client.ClientId}', {_tenant.Id}, 'system/*.cruds', {far})");
        Assert.Equal(HttpStatusCode.Unauthorized, await ReadPatientsAsync(Chosen));
        Assert.Equal(HttpStatusCode.Unauthorized, await ReadPatientsAsync(Chosen));

        // Told once to the establishment's officer, and to the log: the table and the token's audit id, never its hash.
        var alert = Assert.Single(await RowAlertsAsync(_tenant));
        var tokenId = ApiClients.TokenId(Sha256(Chosen));
        Assert.Contains($"access token {tokenId} of client {client.ClientId} in access_tokens", alert.Detail, StringComparison.Ordinal);
        Assert.Empty(await RowAlertsAsync(_other));
        var logs = _server.AllLogs();
        Assert.Single(logs.Split('\n'), l => l.Contains("A row that grants access was refused", StringComparison.Ordinal) && l.Contains(tokenId, StringComparison.Ordinal));
        foreach (var secret in new[] { Convert.ToHexString(Sha256(Chosen)), Convert.ToHexStringLower(Sha256(Chosen)), Convert.ToBase64String(Sha256(Chosen)), Chosen })
        {
            Assert.DoesNotContain(secret, logs, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, alert.Detail, StringComparison.Ordinal);
        }

        // A real token's MAC copied onto the forged row does not make it one: the MAC covers the row's values.
        var real = (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!;
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync(real));
        await _server.ExecuteSqlAsync($"UPDATE access_tokens SET mac = (SELECT mac FROM access_tokens WHERE token_hash = {Bytes(Sha256(real))}) WHERE token_hash = {Bytes(Sha256(Chosen))}");
        Assert.Equal(HttpStatusCode.Unauthorized, await ReadPatientsAsync(Chosen));
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync(real));
    }

    [Fact]
    public async Task A_token_row_widened_in_the_database_stops_working_once_the_cache_asks_again()
    {
        var client = await ClientAsync("system/*.rs");
        var token = (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!;
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync(token));
        await _server.ExecuteSqlAsync($"UPDATE access_tokens SET scopes = 'system/*.cruds', expires_at = expires_at + 31536000000 WHERE token_hash = {Bytes(Sha256(token))}");
        _time.Advance(ApiClients.TokenRecheck + TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Unauthorized, await ReadPatientsAsync(token));
        Assert.Single(await RowAlertsAsync(_tenant));
    }

    [Theory]
    [InlineData("scopes = 'system/*.cruds'")]
    [InlineData("patient_limit = NULL")]
    [InlineData("own_only = 0")]
    [InlineData("purpose = 'TREAT'")]
    [InlineData("name = 'Dr House'")]
    public async Task A_client_whose_powers_are_changed_in_the_database_gets_no_token_and_its_cached_token_stops(string change)
    {
        var patient = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: "Limitee"));
        var client = await ClientAsync("system/Patient.rs", new ClientLimits([patient], OwnResourcesOnly: true), KnownPurposes.ForClients.First(p => p != KnownPurposes.Treatment));
        var token = (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!;
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync(token));

        await _server.ExecuteSqlAsync($"UPDATE clients SET {change} WHERE client_id = '{client.ClientId}'");
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Status);
        // The token taken before is in the server's cache: the database is asked again within 30 s, and the client refused.
        _time.Advance(ApiClients.TokenRecheck + TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Unauthorized, await ReadPatientsAsync(token));
        Assert.Contains($"client {client.ClientId} in clients", Assert.Single(await RowAlertsAsync(_tenant)).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_secret_hash_replaced_in_the_database_authenticates_no_one()
    {
        var client = await ClientAsync();
        const string Known = "vs_the-insider-knows-this-one";
        await _server.ExecuteSqlAsync($"UPDATE clients SET secret_hash = {Bytes(Sha256(Known))} WHERE client_id = '{client.ClientId}'");
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenRequestAsync(client.ClientId, Known)).Status);
        Assert.Single(await RowAlertsAsync(_tenant));
    }

    [Fact]
    public async Task A_revoked_client_re_enabled_in_the_database_stays_revoked()
    {
        var client = await ClientAsync();
        Assert.True(await _server.Store.Clients.RevokeAsync(AccessContext.Operator(_tenant, "administration"), client.ClientId, None));
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Status);
        Assert.Empty(await RowAlertsAsync(_tenant)); // a revoked client is refused for what it is, not reported

        await _server.ExecuteSqlAsync($"UPDATE clients SET disabled = 0 WHERE client_id = '{client.ClientId}'");
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Status);
        Assert.Single(await RowAlertsAsync(_tenant));
    }

    [Fact]
    public async Task A_client_moved_to_another_establishment_is_refused_and_that_establishments_officer_told()
    {
        var client = await ClientAsync("system/*.cruds");
        var token = (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!;
        await _server.ExecuteSqlAsync($"UPDATE clients SET tenant_id = {_other.Id} WHERE client_id = '{client.ClientId}'");
        await _server.ExecuteSqlAsync($"UPDATE access_tokens SET tenant_id = {_other.Id} WHERE client_id = '{client.ClientId}'");
        Assert.Equal(HttpStatusCode.Unauthorized, (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Status);
        _time.Advance(ApiClients.TokenRecheck + TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Unauthorized, await ReadPatientsAsync(token));
        // The rows name the other establishment now: its officer is told of both.
        Assert.Equal(2, (await RowAlertsAsync(_other)).Count);
    }

    // A row naming no establishment is told to every establishment's officer. Rows made by the thousand put as many alerts before
    // each officer (up to 10,000 a process, again at every start): one alert per table and process, each row still in the log.
    [Fact]
    public async Task Rows_naming_no_establishment_raise_one_alert_per_table_before_every_officer_and_each_is_logged()
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 1; i <= 3; i++)
        {
            await _server.ExecuteSqlAsync("INSERT INTO staff_sessions (id, token_hash, tenant_id, user_id, stage, created_at, last_seen_at, authenticated_at) "
                + $"VALUES ('nowhere-{i}', {Bytes(Sha256("vsn_nowhere-" + i))}, 999, NULL, 3, {now}, {now}, {now})");
            using var insider = new StaffClient(_server.BaseAddress);
            insider.Cookies["__Host-vauban-session"] = "vsn_nowhere-" + i;
            Assert.Equal(HttpStatusCode.Unauthorized, await FhirAsSessionAsync(insider));
        }
        var client = await ClientAsync();
        var far = _time.GetUtcNow().AddYears(1).ToUnixTimeMilliseconds();
        for (var i = 1; i <= 2; i++)
        {
            await _server.ExecuteSqlAsync($"INSERT INTO access_tokens (token_hash, client_id, tenant_id, scopes, expires_at) VALUES ({Bytes(Sha256("vt_nowhere-" + i))}, '{client.ClientId}', 999, 'system/*.cruds', {far})");
            Assert.Equal(HttpStatusCode.Unauthorized, await ReadPatientsAsync("vt_nowhere-" + i));
        }

        foreach (var officer in new[] { _tenant, _other })
        {
            var alerts = await RowAlertsAsync(officer);
            Assert.Equal(2, alerts.Count);
            Assert.Contains("staff session nowhere-1 in staff_sessions", Assert.Single(alerts, a => a.Detail.Contains("in staff_sessions", StringComparison.Ordinal)).Detail, StringComparison.Ordinal);
            Assert.Contains("names no establishment", Assert.Single(alerts, a => a.Detail.Contains("in access_tokens", StringComparison.Ordinal)).Detail, StringComparison.Ordinal);
        }
        var logs = _server.AllLogs().Split('\n');
        for (var i = 1; i <= 3; i++)
        {
            Assert.Single(logs, l => l.Contains("A row that grants access was refused", StringComparison.Ordinal) && l.Contains($"staff session nowhere-{i} in", StringComparison.Ordinal));
        }
        for (var i = 1; i <= 2; i++)
        {
            var tokenId = ApiClients.TokenId(Sha256("vt_nowhere-" + i));
            Assert.Single(logs, l => l.Contains("A row that grants access was refused", StringComparison.Ordinal) && l.Contains(tokenId, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_session_row_inserted_in_the_database_signs_no_one_in()
    {
        var secret = await EnrolledAsync(Administrator, StaffRole.Administrator);
        var administrator = await UserIdAsync(Administrator);
        const string Cookie = "vsn_chosen-by-the-insider";
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await _server.ExecuteSqlAsync("INSERT INTO staff_sessions (id, token_hash, tenant_id, user_id, stage, created_at, last_seen_at, authenticated_at) "
            + $"VALUES ('forged-session', {Bytes(Sha256(Cookie))}, {_tenant.Id}, '{administrator}', 3, {now}, {now}, {now})");
        using var insider = new StaffClient(_server.BaseAddress);
        insider.Cookies["__Host-vauban-session"] = Cookie;
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirAsSessionAsync(insider));
        var (home, _) = await insider.GetAsync("/");
        Assert.StartsWith("/account/signin", home.Headers.Location?.ToString());
        Assert.Contains($"staff session forged-session of account {administrator} in staff_sessions", Assert.Single(await RowAlertsAsync(_tenant)).Detail, StringComparison.Ordinal);

        // The administrator's own sign-in is not disturbed.
        using var real = await StaffClient.SignedInAsync(_server.BaseAddress, _tenant.Name, Administrator, Password, secret, _time);
        var (page, _) = await real.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
    }

    [Fact]
    public async Task A_session_edited_in_the_database_to_another_account_or_a_later_stage_is_no_session()
    {
        await EnrolledAsync(Administrator, StaffRole.Administrator);
        var secret = await EnrolledAsync(Physician, StaffRole.Physician);
        var (administrator, physician) = (await UserIdAsync(Administrator), await UserIdAsync(Physician));

        // Signed in as themself, the insider makes their session the administrator's.
        using var insider = await StaffClient.SignedInAsync(_server.BaseAddress, _tenant.Name, Physician, Password, secret, _time);
        Assert.Equal(HttpStatusCode.OK, await FhirAsSessionAsync(insider));
        await _server.ExecuteSqlAsync($"UPDATE staff_sessions SET user_id = '{administrator}' WHERE user_id = '{physician}'");
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirAsSessionAsync(insider));

        // Past the password only, the insider marks the second factor done.
        using var halfway = new StaffClient(_server.BaseAddress);
        var (first, _) = await halfway.PasswordAsync(_tenant.Name, Physician, Password);
        Assert.Equal("/account/signin/totp", first.Headers.Location?.ToString());
        await _server.ExecuteSqlAsync($"UPDATE staff_sessions SET stage = 3, authenticated_at = created_at WHERE user_id = '{physician}' AND stage = 1");
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirAsSessionAsync(halfway));
        Assert.Equal(2, (await RowAlertsAsync(_tenant)).Count);
    }

    [Fact]
    public async Task Tokens_clients_and_sessions_made_by_Vauban_still_work_issued_revoked_repurposed_and_stepped_up()
    {
        var administration = AccessContext.Operator(_tenant, "administration");
        var client = await ClientAsync();
        var token = (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!;
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync(token));
        Assert.Equal(KnownPurposes.Treatment, await _server.Store.Clients.SetPurposeAsync(administration, client.ClientId, KnownPurposes.ForClients.First(p => p != KnownPurposes.Treatment), None));
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync(token));
        var again = (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!;
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync(again));
        Assert.True(await _server.Store.Clients.RevokeAsync(administration, client.ClientId, None));
        Assert.Equal(HttpStatusCode.Unauthorized, await ReadPatientsAsync(again));

        // A person signs in, proves both factors again (a new token for the session, with its MAC), and stays signed in.
        var secret = await EnrolledAsync(Physician, StaffRole.Physician);
        using var staff = await StaffClient.SignedInAsync(_server.BaseAddress, _tenant.Name, Physician, Password, secret, _time);
        var before = staff.SessionCookie;
        var (stepped, _) = await staff.SubmitAsync("/account/reauth?returnUrl=%2F", new Dictionary<string, string>
        {
            ["Password"] = Password, ["Code"] = Totp.Code(secret, _time), ["ReturnUrl"] = "/",
        });
        Assert.Equal("/", stepped.Headers.Location?.ToString());
        Assert.NotEqual(before, staff.SessionCookie);
        Assert.Equal(HttpStatusCode.OK, await FhirAsSessionAsync(staff));

        Assert.Empty(await RowAlertsAsync(_tenant));
        var (rows, unauthentic) = await _server.Store.AccessRows.VerifyAsync(null, None);
        Assert.Empty(unauthentic);
        Assert.True(rows >= 3, $"{rows} rows checked");
    }

    [Fact]
    public async Task After_a_master_key_rotation_tokens_and_clients_still_authenticate_in_this_process_and_in_one_opened_with_the_new_key()
    {
        var client = await ClientAsync();
        var token = (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!;
        var next = MasterKey.Generate();
        await _server.Store.RotateMasterKeyAsync(next, t => AccessContext.Operator(t, "keys rotate-master"), None);
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync(token));
        Assert.Equal(HttpStatusCode.OK, await ReadPatientsAsync((await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!));

        // Another process with the new key unwraps the same row-authentication key: the rows written before hold.
        await using var other = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, next) { Time = _time }, None);
        Assert.NotNull(await other.Clients.AuthenticateAsync(token, null, None));
        Assert.Empty((await other.AccessRows.VerifyAsync(null, None)).Unauthentic);
    }

    [Fact]
    public async Task A_store_from_before_step_21_has_its_clients_tokens_and_sessions_authenticated_once_at_its_first_open_and_they_still_work()
    {
        var db = engine == Engine.Postgres ? await PostgresServer.CreateDatabaseAsync() : Path.Combine(_directory, "old.db");
        var key = MasterKey.Generate();
        var options = new StoreOptions(db, key) { Time = _time };
        string clientId, secret, token, cookie;
        await using (var store = await VaubanStore.OpenAsync(options, None))
        {
            var tenant = await store.Tenants.AddAsync("chu-ancien", None);
            var client = await store.Clients.AddAsync(tenant, "ancien", "system/Patient.rs", null, None);
            (clientId, secret) = (client.ClientId, client.ClientSecret!);
            token = (await store.Clients.IssueAsync(new TokenRequest("client_credentials", null, clientId, secret, null, null), "http://localhost/oauth/token", null, null, None))
                .Token!.AccessToken;
            cookie = (await store.Sessions.StartAsync(null, null, SessionStage.Challenge, null, "{\"challenge\":1}", None))!.Value.Token;
        }
        // The store as the Vauban before step 21 left it, an expired token beside the live one.
        await Storage.StoreOperationsTests.ExecuteAsync(db, "DELETE FROM schema_version WHERE version = 21; " + Storage.StoreOperationsTests.UndoStep21
            + $" INSERT INTO access_tokens (token_hash, client_id, tenant_id, scopes, expires_at) VALUES ({Bytes(Sha256("vt_expired"))}, '{clientId}', 1, 'system/Patient.rs', 1);");

        await using (var store = await VaubanStore.OpenAsync(options, None))
        {
            foreach (var table in new[] { "clients", "access_tokens", "staff_sessions" })
            {
                Assert.Equal(0, await Storage.StoreOperationsTests.ScalarAsync(db, $"SELECT count(*) FROM {table} WHERE mac IS NULL"));
            }
            Assert.Equal(1, await Storage.StoreOperationsTests.ScalarAsync(db, "SELECT count(*) FROM access_tokens")); // the expired one deleted
            Assert.NotNull(await store.Clients.AuthenticateAsync(token, null, None));
            Assert.NotNull(await store.Sessions.FindAsync(cookie, None));
            var (issued, error) = await store.Clients.IssueAsync(new TokenRequest("client_credentials", null, clientId, secret, null, null), "http://localhost/oauth/token", null, null, None);
            Assert.True(issued is not null, error?.Description);
            Assert.Empty((await store.AccessRows.VerifyAsync(null, None)).Unauthentic);
        }

        // Vouched for once, by the migration that added the MACs: a row changed since with its MAC set to NULL — and a token
        // forged without one — is vouched for by no later start, whatever store_settings says (an outside review laundered such
        // rows through a mark the first start acted on).
        await Storage.StoreOperationsTests.ExecuteAsync(db, $"UPDATE clients SET scopes = 'system/*.cruds', mac = NULL WHERE client_id = '{clientId}'; "
            + $"INSERT INTO access_tokens (token_hash, client_id, tenant_id, scopes, expires_at) VALUES ({Bytes(Sha256("vt_forged"))}, '{clientId}', 1, 'system/*.cruds', {long.MaxValue / 2}); "
            + "INSERT INTO store_settings (name, value) VALUES ('access_rows_authenticated', 'pending');");
        for (var start = 0; start < 2; start++)
        {
            await using var store = await VaubanStore.OpenAsync(options, None);
            var (issued, _) = await store.Clients.IssueAsync(new TokenRequest("client_credentials", null, clientId, secret, null, null), "http://localhost/oauth/token", null, null, None);
            Assert.Null(issued);
            Assert.Null(await store.Clients.AuthenticateAsync("vt_forged", null, None));
            Assert.Equal(2, (await store.AccessRows.VerifyAsync(null, None)).Unauthentic.Count);
        }
        Assert.Equal(2, await Storage.StoreOperationsTests.ScalarAsync(db, "SELECT count(*) FROM clients WHERE mac IS NULL") + await Storage.StoreOperationsTests.ScalarAsync(db, "SELECT count(*) FROM access_tokens WHERE mac IS NULL"));
        if (engine == Engine.Sqlite) Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }

    [Fact]
    public async Task A_store_whose_row_key_was_deleted_is_refused_at_its_start_rather_than_given_a_new_key_and_an_empty_one_is_given_one()
    {
        var db = engine == Engine.Postgres ? await PostgresServer.CreateDatabaseAsync() : Path.Combine(_directory, "keyless.db");
        var options = new StoreOptions(db, MasterKey.Generate()) { Time = _time };
        await using (var store = await VaubanStore.OpenAsync(options, None))
        {
            await store.Clients.AddAsync(await store.Tenants.AddAsync("chu-sans-cle", None), "client", "system/Patient.rs", null, None);
        }
        var wrapped = await Storage.StoreOperationsTests.ScalarAsync(db, "SELECT count(*) FROM store_keys");
        Assert.Equal(1, wrapped);
        await Storage.StoreOperationsTests.ExecuteAsync(db, "DELETE FROM store_keys;");
        var refused = await Assert.ThrowsAsync<VaubanConfigurationException>(() => VaubanStore.OpenAsync(options, None));
        Assert.Contains("row-authentication key is missing from the table store_keys", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, await Storage.StoreOperationsTests.ScalarAsync(db, "SELECT count(*) FROM store_keys")); // nothing made
        if (engine == Engine.Sqlite) Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        // A store with none of those rows (its schema made without the master key, as the tests' template) is given its key.
        await Storage.StoreOperationsTests.ExecuteAsync(db, "DELETE FROM clients;");
        await using (var store = await VaubanStore.OpenAsync(options, None))
        {
            Assert.Equal(1, await Storage.StoreOperationsTests.ScalarAsync(db, "SELECT count(*) FROM store_keys"));
        }
        if (engine == Engine.Sqlite) Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }

    [Fact]
    public async Task Audit_verify_names_each_row_that_fails_its_MAC_by_table_and_id_and_exits_3()
    {
        var client = await ClientAsync();
        var token = (await TokenRequestAsync(client.ClientId, client.ClientSecret!)).Token!;
        var (exit, output) = await CliRunner.RunAsync(["audit", "verify", "--db", _server.Db, "--master-key-file", _keyFile]);
        Assert.True(exit == 0, output);
        Assert.Contains("Rows that grant access: OK — 2 rows of clients, access tokens, staff sessions, staff accounts and their passkeys, recovery codes and enrolment links, and break-the-glass grants authenticated.", output, StringComparison.Ordinal);

        await _server.ExecuteSqlAsync($"UPDATE clients SET scopes = 'system/*.cruds' WHERE client_id = '{client.ClientId}'");
        await _server.ExecuteSqlAsync($"INSERT INTO access_tokens (token_hash, client_id, tenant_id, scopes, expires_at) VALUES ({Bytes(Sha256("vt_x"))}, '{client.ClientId}', {_other.Id}, 'system/*.cruds', 1)");
        (exit, output) = await CliRunner.RunAsync(["audit", "verify", "--db", _server.Db, "--master-key-file", _keyFile]);
        Assert.Equal(3, exit);
        Assert.Contains($"chu-rows: ROW NOT AUTHENTIC — client {client.ClientId} in clients does not carry the store's authentication", output, StringComparison.Ordinal);
        Assert.Contains($"chu-other: ROW NOT AUTHENTIC — access token {ApiClients.TokenId(Sha256("vt_x"))} of client {client.ClientId} in access_tokens", output, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToHexString(Sha256(token)), output, StringComparison.OrdinalIgnoreCase);
        // One establishment only: its rows.
        (exit, output) = await CliRunner.RunAsync(["audit", "verify", "--tenant", "chu-other", "--db", _server.Db, "--master-key-file", _keyFile]);
        Assert.Equal(3, exit);
        Assert.DoesNotContain("in clients", output, StringComparison.Ordinal);
        Assert.Contains("chu-other: ROW NOT AUTHENTIC — access token", output, StringComparison.Ordinal);
    }
}

public sealed class AccessRowTamperTests_Sqlite() : AccessRowTamperTests(Engine.Sqlite);

public sealed class AccessRowTamperTests_Postgres() : AccessRowTamperTests(Engine.Postgres);
