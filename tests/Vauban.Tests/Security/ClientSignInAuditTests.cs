// Issue 4 for API clients: every token request that names a registered client is a sign-in or a
// sign-in failure on its establishment's audit chain, with the client as principal and the source
// address, so that brute force against a client secret leaves a trace; no token is issued unless its
// entry is written (fail closed).
using System.Data.Common;
using System.Net;
using Microsoft.Data.Sqlite;
using Npgsql;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public abstract class ClientSignInAuditTests : IAsyncLifetime
{
    private readonly Engine _engine;
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private ClientRegistration _client = null!;

    protected ClientSignInAuditTests(Engine engine) => _engine = engine;

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine);
        _tenant = await _server.Store.Tenants.AddAsync("clinic", CancellationToken.None);
        _client = await _server.Store.Clients.AddAsync(_tenant, "lab robot", "system/Observation.crs", null, CancellationToken.None);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<HttpStatusCode> RequestTokenAsync(string clientId, string secret, string? scope = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret };
        if (scope is not null) form["scope"] = scope;
        using var response = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
        return response.StatusCode;
    }

    private async Task<IReadOnlyList<AuditEntry>> EntriesOfClientAsync() =>
        await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "audit test"),
            new AuditQuery { Agent = _client.ClientId, Actions = [AuditAction.SignIn, AuditAction.SignInFailure], Count = 100 }, CancellationToken.None) ?? [];

    [Fact]
    public async Task A_revoked_client_gets_no_token_and_its_tokens_stop_at_once_here_and_within_30_seconds_in_another_process()
    {
        var time = new ManualTime(ManualTime.RealNow);
        await using var server = await VaubanServer.StartAsync(_engine, configure: o => o with { Time = time });
        var tenant = await server.Store.Tenants.AddAsync("clinic", CancellationToken.None);
        async Task<(string Id, HttpClient Http)> RegisterAsync(string name)
        {
            var registration = await server.Store.Clients.AddAsync(tenant, name, "system/Patient.rs", null, CancellationToken.None);
            var http = new HttpClient { BaseAddress = server.BaseAddress };
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", await server.TokenAsync(registration.ClientId, registration.ClientSecret!));
            return (registration.ClientId, http);
        }
        var (firstId, first) = await RegisterAsync("vendor one");
        var (secondId, second) = await RegisterAsync("vendor two");
        using var disposeFirst = first;
        using var disposeSecond = second;
        using (var ok = await first.GetAsync("/fhir/Patient")) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using (var ok = await second.GetAsync("/fhir/Patient")) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        // Revoked in this process: its token stops at once.
        var administrator = AccessContext.Operator(tenant, "administration");
        Assert.True(await server.Store.Clients.RevokeAsync(administrator, firstId, CancellationToken.None));
        using (var refused = await first.GetAsync("/fhir/Patient")) Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.False(await server.Store.Clients.RevokeAsync(administrator, firstId, CancellationToken.None)); // already revoked
        Assert.False(await server.Store.Clients.RevokeAsync(administrator, "vc_nosuchclient", CancellationToken.None));

        // Revoked by another process on the same store (the command line): the server's cached token stops within 30 s.
        await using (var other = await VaubanStore.OpenAsync(new StoreOptions(server.Db, server.MasterKey) { Time = time }, CancellationToken.None))
        {
            Assert.True(await other.Clients.RevokeAsync(administrator, secondId, CancellationToken.None));
        }
        time.Advance(ApiClients.TokenRecheck + TimeSpan.FromSeconds(1));
        using (var refused = await second.GetAsync("/fhir/Patient")) Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        var listed = await server.Store.Clients.ListAsync(tenant, CancellationToken.None);
        Assert.All(listed, c => Assert.True(c.Revoked));
        var revocations = await server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "audit test"),
            new AuditQuery { Actions = [AuditAction.Administration], Count = 100 }, CancellationToken.None);
        Assert.Equal(2, revocations!.Count(e => e.Detail.Note == "clients revoke"));
    }

    [Fact]
    public async Task Guessing_a_client_secret_leaves_one_failure_per_guess_and_the_good_secret_a_sign_in_naming_the_client_and_its_source()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestTokenAsync(_client.ClientId, "wrongsecret"));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestTokenAsync(_client.ClientId, "wrongsecret2"));
        Assert.Equal(HttpStatusCode.OK, await RequestTokenAsync(_client.ClientId, _client.ClientSecret!));

        var entries = await EntriesOfClientAsync();
        Assert.Equal(3, entries.Count);
        Assert.All(entries, e =>
        {
            Assert.Equal("client", e.Detail.PrincipalKind);
            Assert.Equal(_client.ClientId, e.Detail.Principal);
            Assert.Equal("127.0.0.1", e.Detail.Source);
            Assert.Equal(_tenant.Id, e.TenantId);
        });
        Assert.Equal(2, entries.Count(e => e.Action == AuditAction.SignInFailure && e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note == "client secret refused"));
        Assert.Single(entries, e => e.Action == AuditAction.SignIn && e.Outcome == AuditOutcome.Success);
        Assert.DoesNotContain(entries, e => (e.Detail.Note ?? "").Contains("wrongsecret", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Guessing_a_client_secret_in_a_parallel_burst_evaluates_no_more_guesses_than_the_throttle_allows()
    {
        // Sent together, each guess was checked before any failure was counted: a burst of any size was evaluated whole. The clock
        // stands still, so the delay after the third failure never runs out: exactly three guesses are evaluated (each on the chain).
        var time = new ManualTime(ManualTime.RealNow);
        await using var server = await VaubanServer.StartAsync(_engine, configure: o => o with { Time = time, Accounts = new AccountOptions { SourceFailuresBeforeDelay = 3 } });
        var tenant = await server.Store.Tenants.AddAsync("clinic", CancellationToken.None);
        var client = await server.Store.Clients.AddAsync(tenant, "lab robot", "system/Observation.crs", null, CancellationToken.None);
        async Task<HttpStatusCode> TokenAsync(string secret)
        {
            var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = client.ClientId, ["client_secret"] = secret };
            using var response = await server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
            return response.StatusCode;
        }

        // A right secret is no failure: however many tokens a client asks for, it is never held back by its own successes.
        for (var i = 0; i < 5; i++) Assert.Equal(HttpStatusCode.OK, await TokenAsync(client.ClientSecret!));

        var statuses = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => TokenAsync("vs_guess" + i)));
        Assert.Equal(3, statuses.Count(s => s == HttpStatusCode.Unauthorized));
        Assert.Equal(13, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        var failures = (await server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "audit test"),
            new AuditQuery { Agent = client.ClientId, Actions = [AuditAction.SignInFailure], Count = 100 }, CancellationToken.None))!;
        Assert.Equal(3, failures.Count(e => e.Detail.Note == "client secret refused"));
        // The guesses held back are on the chain too, as people's throttled sign-ins are: a burst is seen whole.
        Assert.Equal(13, failures.Count(e => e.Detail.Note == "client secret throttled"));

        // Held back while the delay runs, the right secret too; once it has run out, the right secret gets its token.
        Assert.Equal(HttpStatusCode.TooManyRequests, await TokenAsync(client.ClientSecret!));
        // An assertion naming the client (its issuer, unverified while held back) is recorded on the client's chain as well.
        static string Part(string json) => Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(json);
        using (var assertion = await server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = Part("{\"alg\":\"ES384\",\"kid\":\"k1\"}") + "." + Part("{\"iss\":\"" + client.ClientId + "\",\"sub\":\"" + client.ClientId + "\"}") + ".AAAA",
        })))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, assertion.StatusCode);
        }
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.OK, await TokenAsync(client.ClientSecret!));
        failures = (await server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "audit test"),
            new AuditQuery { Agent = client.ClientId, Actions = [AuditAction.SignInFailure], Count = 100 }, CancellationToken.None))!;
        Assert.Equal(14, failures.Count(e => e.Detail.Note == "client secret throttled"));
        Assert.Single(failures, e => e.Detail.Note == "private_key_jwt throttled" && e.Detail.Source == "127.0.0.1");
    }

    [Fact]
    public async Task Guessing_a_client_secret_from_many_addresses_of_one_IPv6_network_is_throttled_as_one_source()
    {
        // Whoever has one IPv6 address has a /64 of them: a new address for each guess must not be a new source each time.
        // Behind a proxy (trusted here) the client's address is the one it forwards; the chain keeps the whole address.
        var time = new ManualTime(ManualTime.RealNow);
        await using var server = await VaubanServer.StartAsync(_engine, new Vauban.Web.ServerOptions("http://127.0.0.1:0") { TrustedProxies = [IPNetwork.Parse("127.0.0.1/32")] },
            o => o with { Time = time, Accounts = new AccountOptions { SourceFailuresBeforeDelay = 3 } });
        var tenant = await server.Store.Tenants.AddAsync("clinic", CancellationToken.None);
        var client = await server.Store.Clients.AddAsync(tenant, "lab robot", "system/Observation.crs", null, CancellationToken.None);
        async Task<HttpStatusCode> GuessFromAsync(string address)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = client.ClientId, ["client_secret"] = "vs_guess" }),
            };
            request.Headers.Add("X-Forwarded-For", address);
            using var response = await server.Http.SendAsync(request);
            return response.StatusCode;
        }
        for (var i = 1; i <= 3; i++) Assert.Equal(HttpStatusCode.Unauthorized, await GuessFromAsync($"2001:db8:5:6::{i:x}"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await GuessFromAsync("2001:db8:5:6:ffff:ffff:ffff:fffe"));
        Assert.Equal(HttpStatusCode.Unauthorized, await GuessFromAsync("2001:db8:5:7::1")); // another network is another source
        var failures = (await server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "audit test"),
            new AuditQuery { Agent = client.ClientId, Actions = [AuditAction.SignInFailure], Count = 100 }, CancellationToken.None))!;
        Assert.Contains(failures, e => e.Detail.Source == "2001:db8:5:6::2");
    }

    [Fact]
    public async Task Asking_for_scopes_the_client_was_not_granted_is_a_sign_in_failure()
    {
        Assert.Equal(HttpStatusCode.BadRequest, await RequestTokenAsync(_client.ClientId, _client.ClientSecret!, "system/Patient.rs"));
        Assert.Single(await EntriesOfClientAsync(), e => e.Action == AuditAction.SignInFailure && e.Detail.Note == "requested scopes not granted");
    }

    [Fact]
    public async Task An_unknown_client_id_is_logged_without_the_id_or_secret_it_sent()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestTokenAsync("vc_nosuchclient", "vs_guessedsecret"));
        var logs = _server.AllLogs();
        Assert.Contains("Token request for an unknown API client from 127.0.0.1", logs, StringComparison.Ordinal);
        Assert.DoesNotContain("vc_nosuchclient", logs, StringComparison.Ordinal);
        Assert.DoesNotContain("vs_guessedsecret", logs, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_act_names_the_token_it_was_done_with_as_on_the_sign_in_that_issued_it()
    {
        var patient = await _server.CreateAsOperatorAsync(_tenant, Samples.Patient());
        var first = await _server.TokenAsync(_client.ClientId, _client.ClientSecret!);
        var second = await _server.TokenAsync(_client.ClientId, _client.ClientSecret!);
        string observation;
        using (var create = new HttpRequestMessage(HttpMethod.Post, "/fhir/Observation") { Content = FhirContent.Json(Samples.Observation($"Patient/{patient}")) })
        {
            create.Headers.Authorization = new("Bearer", first);
            using var response = await _server.Http.SendAsync(create);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            observation = (await response.BodyAsync()).GetProperty("id").GetString()!;
        }
        using (var read = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Observation/{observation}"))
        {
            read.Headers.Authorization = new("Bearer", second);
            using var response = await _server.Http.SendAsync(read);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var entries = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "audit test"),
            new AuditQuery { Agent = _client.ClientId, Count = 100 }, CancellationToken.None) ?? [];
        var signIns = entries.Where(e => e.Action == AuditAction.SignIn).Select(e => e.Detail.Session).ToList();
        var created = Assert.Single(entries, e => e.Action == AuditAction.Create).Detail.Session;
        var opened = Assert.Single(entries, e => e.Action == AuditAction.Read).Detail.Session;
        Assert.Equal(2, signIns.Distinct().Count());
        Assert.All(signIns, s => Assert.Matches("^token-[A-Za-z0-9_-]{12}$", s));
        Assert.NotEqual(created, opened);
        Assert.Contains(created, signIns);
        Assert.Contains(opened, signIns);
    }

    [Fact]
    public async Task When_the_audit_log_cannot_be_written_no_token_is_issued()
    {
        await _server.Store.Audit.CatchUpAsync();
        await ExecuteAsync("ALTER TABLE audit_entries RENAME TO audit_entries_away");
        try
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, await RequestTokenAsync(_client.ClientId, _client.ClientSecret!));
            Assert.Equal(0L, await ScalarAsync("SELECT COUNT(*) FROM access_tokens"));
        }
        finally
        {
            await ExecuteAsync("ALTER TABLE audit_entries_away RENAME TO audit_entries");
        }
    }

    private async Task<DbConnection> RawAsync()
    {
        DbConnection connection = _engine == Engine.Sqlite ? new SqliteConnection($"Data Source={_server.Db};Pooling=False") : new NpgsqlConnection(_server.Db);
        await connection.OpenAsync();
        return connection;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await RawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = await RawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

public sealed class ClientSignInAuditTests_Sqlite() : ClientSignInAuditTests(Engine.Sqlite);

public sealed class ClientSignInAuditTests_Postgres() : ClientSignInAuditTests(Engine.Postgres);
