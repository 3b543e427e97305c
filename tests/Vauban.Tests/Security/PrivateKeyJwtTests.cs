// SMART Backend Services: a client registered with a public key authenticates with a signed JWT
// assertion (private_key_jwt); forged, expired, replayed or mis-addressed assertions are refused.
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Vauban.Tests.Infrastructure;
using Vauban.Web;

namespace Vauban.Tests.Security;

public class PrivateKeyJwtTests : IAsyncLifetime
{
    private VaubanServer _server = null!;
    private ECDsa _key = null!;
    private string _clientId = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Sqlite);
        _key = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(_key) { KeyId = "k1" });
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = "k1", alg = "ES384" } } });
        var tenant = await _server.Store.Tenants.AddAsync("lab", CancellationToken.None);
        _clientId = (await _server.Store.Clients.AddAsync(tenant, "lab robot", "system/Observation.crs", jwks, CancellationToken.None)).ClientId;
    }

    public async Task DisposeAsync()
    {
        _key.Dispose();
        await _server.DisposeAsync();
    }

    private string Assertion(ECDsa key, string? audience = null, DateTime? expires = null, string? jti = null) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = _clientId,
        Audience = audience ?? new Uri(_server.BaseAddress, "/oauth/token").ToString(),
        Claims = new Dictionary<string, object> { ["sub"] = _clientId, ["jti"] = jti ?? Guid.NewGuid().ToString() },
        Expires = expires ?? DateTime.UtcNow.AddMinutes(4),
        NotBefore = (expires ?? DateTime.UtcNow.AddMinutes(4)).AddMinutes(-5),
        IssuedAt = (expires ?? DateTime.UtcNow.AddMinutes(4)).AddMinutes(-5),
        SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha384),
    });

    private async Task<HttpStatusCode> RequestAsync(string assertion)
    {
        using var response = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = assertion,
            ["scope"] = "system/Observation.rs",
        }));
        return response.StatusCode;
    }

    [Fact]
    public async Task A_valid_assertion_gets_a_token_once()
    {
        var assertion = Assertion(_key);
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(assertion));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(assertion));
    }

    [Fact]
    public async Task A_key_set_replaced_in_the_database_with_the_insiders_key_authenticates_none_of_their_assertions()
    {
        // ADR 0014: whoever can write the database puts their own public key in the client's row, under the same kid.
        using var insider = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(insider) { KeyId = "k1" });
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = "k1", alg = "ES384" } } });
        await _server.ExecuteSqlAsync($"UPDATE clients SET jwks = '{jwks}' WHERE client_id = '{_clientId}'");
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Assertion(insider)));
        var tenant = (await _server.Store.Tenants.FindAsync("lab", CancellationToken.None))!;
        var alert = Assert.Single(await _server.Store.Alerts.ListAsync(tenant.Id, all: true, 100, CancellationToken.None), a => a.Kind == Vauban.Access.KnownAlertKinds.RowIntegrity);
        Assert.Contains($"client {_clientId} in clients", alert.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Assertions_signed_with_another_key_for_another_audience_or_expired_are_refused()
    {
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Assertion(attacker)));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Assertion(_key, audience: "https://elsewhere.example/token")));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Assertion(_key, expires: DateTime.UtcNow.AddMinutes(-3))));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Assertion(_key, expires: DateTime.UtcNow.AddHours(2))));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync("not.a.jwt"));
    }

    [Fact]
    public async Task An_assertion_is_verified_only_with_the_key_its_kid_names_and_one_without_a_kid_or_naming_no_registered_key_is_refused()
    {
        // Two registered keys (as during a key rotation): "old" and "new". SMART Backend Services: the header's kid names the key.
        using var old = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        using var current = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        static object Jwk(ECDsa key, string? kid)
        {
            var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(key));
            return kid is null ? new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y } : new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid };
        }
        var tenant = (await _server.Store.Tenants.FindAsync("lab", CancellationToken.None))!;
        var clientId = (await _server.Store.Clients.AddAsync(tenant, "rotating robot", "system/Observation.crs",
            JsonSerializer.Serialize(new { keys = new[] { Jwk(old, "old"), Jwk(current, "new") } }), CancellationToken.None)).ClientId;
        string Signed(ECDsa key, string? kid) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = clientId,
            Audience = new Uri(_server.BaseAddress, "/oauth/token").ToString(),
            Claims = new Dictionary<string, object> { ["sub"] = clientId, ["jti"] = Guid.NewGuid().ToString() },
            Expires = DateTime.UtcNow.AddMinutes(4),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key) { KeyId = kid }, SecurityAlgorithms.EcdsaSha384),
        });

        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Signed(old, "new"))); // signed with a registered key, but not the one named
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Signed(current, "k9"))); // names no registered key
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Signed(current, null))); // names none
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(Signed(current, "new")));
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(Signed(old, "old")));

        var entries = await _server.Store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "audit test"),
            new Vauban.Audit.AuditQuery { Agent = clientId, Count = 100 }, CancellationToken.None) ?? [];
        Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.SignInFailure && e.Detail.Note == "assertion refused (bad signature)");
        Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.SignInFailure && e.Detail.Note == "assertion refused (its kid names no registered key)");
        Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.SignInFailure && e.Detail.Note == "assertion refused (no kid in its header)");
        Assert.Equal(2, entries.Count(e => e.Action == Vauban.Audit.AuditAction.SignIn));

        // Registering keys an assertion could not name is refused at once, rather than every assertion later.
        foreach (var keys in new[] { new[] { Jwk(current, null) }, new[] { Jwk(old, "same"), Jwk(current, "same") } })
        {
            var refused = await Assert.ThrowsAsync<ArgumentException>(() => _server.Store.Clients.AddAsync(tenant, "robot", "system/Observation.crs",
                JsonSerializer.Serialize(new { keys }), CancellationToken.None));
            Assert.Contains("kid", refused.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_replayed_or_expired_assertion_is_a_sign_in_failure_on_the_client_chain_and_a_valid_one_a_sign_in()
    {
        var assertion = Assertion(_key);
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(assertion));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(assertion));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Assertion(_key, expires: DateTime.UtcNow.AddMinutes(-3))));
        var tenant = (await _server.Store.Tenants.FindAsync("lab", CancellationToken.None))!;
        var entries = await _server.Store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "audit test"),
            new Vauban.Audit.AuditQuery { Agent = _clientId, Count = 100 }, CancellationToken.None) ?? [];
        Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.SignIn && e.Detail.PrincipalKind == "client" && e.Detail.Source == "127.0.0.1");
        Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.SignInFailure && e.Detail.Note == "assertion refused (replayed)");
        Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.SignInFailure && e.Detail.Note == "assertion refused (expired or lifetime too long)");
    }

    [Fact]
    public async Task Replay_after_a_restart_an_assertion_used_before_the_restart_is_refused()
    {
        // A restart (or a second server of the same store) must not forget which assertions were used: the same port, so the
        // same token endpoint URL, and the same database and master key.
        var before = await VaubanServer.StartAsync(Engine.Postgres);
        var (db, master, authority) = (before.Db, before.MasterKey, before.BaseAddress.Authority);
        var tenant = await before.Store.Tenants.AddAsync("lab", CancellationToken.None);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(_key) { KeyId = "k1" });
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = "k1", alg = "ES384" } } });
        var clientId = (await before.Store.Clients.AddAsync(tenant, "lab robot", "system/Observation.crs", jwks, CancellationToken.None)).ClientId;
        var assertion = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = clientId,
            Audience = new Uri(before.BaseAddress, "/oauth/token").ToString(),
            Claims = new Dictionary<string, object> { ["sub"] = clientId, ["jti"] = Guid.NewGuid().ToString() },
            Expires = DateTime.UtcNow.AddMinutes(4),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(_key) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha384),
        });
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = assertion,
        };
        using (var first = await before.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(form)))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        await before.DisposeAsync();

        await using var after = await VaubanServer.StartAsync(Engine.Postgres, new Vauban.Web.ServerOptions("http://" + authority), _ => new Vauban.StoreOptions(db, master));
        using var replayed = await after.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
        Assert.Equal(HttpStatusCode.Unauthorized, replayed.StatusCode);
        var entries = await after.Store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "audit test"),
            new Vauban.Audit.AuditQuery { Agent = clientId, Count = 100 }, CancellationToken.None) ?? [];
        Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.SignInFailure && e.Detail.Note == "assertion refused (replayed)");
    }

    [Fact]
    public async Task Replay_two_requests_racing_with_one_assertion_get_one_token()
    {
        var assertion = Assertion(_key);
        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => RequestAsync(assertion)));
        Assert.Single(answers, a => a == HttpStatusCode.OK);
        Assert.All(answers.Where(a => a != HttpStatusCode.OK), a => Assert.Equal(HttpStatusCode.Unauthorized, a));
    }

    [Fact]
    public async Task An_assertion_not_valid_yet_or_issued_in_the_future_is_refused()
    {
        // Made now to be played later: exp is within 5 minutes, but nbf (or iat) says it is not valid yet.
        string Made(DateTime? notBefore, DateTime? issuedAt) => new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _clientId,
            Audience = new Uri(_server.BaseAddress, "/oauth/token").ToString(),
            Claims = new Dictionary<string, object> { ["sub"] = _clientId, ["jti"] = Guid.NewGuid().ToString() },
            Expires = DateTime.UtcNow.AddMinutes(4),
            NotBefore = notBefore,
            IssuedAt = issuedAt,
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(_key) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha384),
        });
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Made(DateTime.UtcNow.AddMinutes(3), null)));
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Made(null, DateTime.UtcNow.AddMinutes(3))));
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(Made(null, null)));
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(Made(DateTime.UtcNow.AddSeconds(-5), DateTime.UtcNow.AddSeconds(-5))));
    }

    [Fact]
    public async Task An_assertion_whose_crit_header_names_an_extension_the_server_does_not_understand_is_refused()
    {
        // RFC 7515 section 4.1.11: the signer says "refuse me unless you enforce these header parameters"; the library ignored
        // "crit" and the assertion was taken as if it did not carry the restriction.
        string Critical(string[] crit) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _clientId,
            Audience = new Uri(_server.BaseAddress, "/oauth/token").ToString(),
            Claims = new Dictionary<string, object> { ["sub"] = _clientId, ["jti"] = Guid.NewGuid().ToString() },
            Expires = DateTime.UtcNow.AddMinutes(4),
            AdditionalHeaderClaims = new Dictionary<string, object> { ["crit"] = crit, ["only-at"] = "https://other.example/oauth/token" },
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(_key) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha384),
        });
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(Critical(["only-at"])));
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(Assertion(_key)));

        var tenant = (await _server.Store.Tenants.FindAsync("lab", CancellationToken.None))!;
        var entries = await _server.Store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "audit test"),
            new Vauban.Audit.AuditQuery { Agent = _clientId, Count = 100 }, CancellationToken.None) ?? [];
        Assert.Single(entries, e => e.Action == Vauban.Audit.AuditAction.SignInFailure && e.Detail.Note == "assertion refused (critical header extension not understood)");
    }

    [Theory]
    [InlineData("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d")]
    [InlineData("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.eyJpc3MiOiJ4In0.eyJpc3MiOiJ4In0.eyJpc3MiOiJ4In0.eyJpc3MiOiJ4In0")]
    [InlineData("eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0")]
    [InlineData("eyJhbGciOiJFUzM4NCJ9.bm90IGpzb24.AAAA")]
    [InlineData("a.b.c")]
    [InlineData("....")]
    public async Task A_malformed_or_encrypted_assertion_is_an_oauth_invalid_client_not_a_server_error(string assertion)
    {
        using var response = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ["client_assertion"] = assertion,
        }));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task The_SMART_configuration_is_public_and_names_the_token_endpoint_that_assertions_are_addressed_to()
    {
        using var response = await _server.Http.GetAsync("/fhir/.well-known/smart-configuration");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var configuration = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var tokenEndpoint = configuration.GetProperty("token_endpoint").GetString()!;
        Assert.Equal(new Uri(_server.BaseAddress, "/oauth/token").ToString(), tokenEndpoint);
        Assert.Contains("private_key_jwt", configuration.GetProperty("token_endpoint_auth_methods_supported").EnumerateArray().Select(m => m.GetString()));
        Assert.Contains("ES384", configuration.GetProperty("token_endpoint_auth_signing_alg_values_supported").EnumerateArray().Select(m => m.GetString()));
        Assert.Contains("client_credentials", configuration.GetProperty("grant_types_supported").EnumerateArray().Select(m => m.GetString()));
        Assert.Contains("client-confidential-asymmetric", configuration.GetProperty("capabilities").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(Assertion(_key, audience: tokenEndpoint)));
    }

    [Fact]
    public async Task An_assertion_signed_for_another_server_is_refused_whatever_Host_the_request_names()
    {
        // The audience used to be the URL the request named: "Host: other.example" made an assertion signed for
        // https://other.example/oauth/token (another server the client uses the same key with) valid here.
        var forOther = Assertion(_key, audience: "http://other.example/oauth/token");
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token"))
        {
            request.Headers.Host = "other.example";
            request.Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ["client_assertion"] = forOther,
                ["scope"] = "system/Observation.rs",
            });
            using var response = await _server.Http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, body);
            Assert.Contains("is not known as other.example", body, StringComparison.Ordinal);
            Assert.Contains(new Uri(_server.BaseAddress, "/oauth/token").ToString(), body, StringComparison.Ordinal);
        }
        using (var smart = new HttpRequestMessage(HttpMethod.Get, "/fhir/.well-known/smart-configuration"))
        {
            smart.Headers.Host = "other.example";
            using var response = await _server.Http.SendAsync(smart);
            var configuration = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(new Uri(_server.BaseAddress, "/oauth/token").ToString(), configuration.GetProperty("token_endpoint").GetString());
        }
        // The same assertion sent to the address the server listens on names the wrong audience.
        Assert.Equal(HttpStatusCode.Unauthorized, await RequestAsync(forOther));
        Assert.Equal(HttpStatusCode.OK, await RequestAsync(Assertion(_key)));
    }

    [Fact]
    public async Task With_a_public_URL_every_URL_the_API_hands_out_is_that_URL_s_whatever_the_Host_header_says()
    {
        // A client's Host header was echoed into Location, fullUrl, paging links and the CapabilityStatement's token endpoint:
        // behind a shared cache, a poisoned metadata sent other clients' credentials elsewhere.
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite, new ServerOptions("http://127.0.0.1:0") { PublicUrl = new Uri("https://ehr.hopital.example/") });
        using var api = await server.ClientAsync("hospital");
        using var create = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient(family: "Hote")) };
        create.Headers.Host = "evil.example";
        using (var created = await api.SendAsync(create))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            Assert.StartsWith("https://ehr.hopital.example/fhir/Patient/", created.Headers.Location!.ToString(), StringComparison.Ordinal);
        }
        using var search = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient?_count=1");
        search.Headers.Host = "evil.example";
        using (var page = await api.SendAsync(search))
        {
            var body = await page.Content.ReadAsStringAsync();
            Assert.DoesNotContain("evil.example", body, StringComparison.Ordinal);
            Assert.Contains("https://ehr.hopital.example/fhir/Patient", body, StringComparison.Ordinal);
        }
        using var metadata = new HttpRequestMessage(HttpMethod.Get, "/fhir/metadata");
        metadata.Headers.Host = "evil.example";
        using (var statement = await server.Http.SendAsync(metadata))
        {
            var body = await statement.Content.ReadAsStringAsync();
            Assert.DoesNotContain("evil.example", body, StringComparison.Ordinal);
            Assert.Contains("https://ehr.hopital.example/oauth/token", body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task With_a_public_URL_the_token_endpoint_is_that_URL_s_and_no_other()
    {
        // Behind a proxy, under a name: the operator says the URL clients use, and assertions name it.
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite, new ServerOptions("http://127.0.0.1:0") { PublicUrl = new Uri("https://ehr.hopital.example/") });
        var tenant = await server.Store.Tenants.AddAsync("lab", CancellationToken.None);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(_key) { KeyId = "k1" });
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, kid = "k1", alg = "ES384" } } });
        var clientId = (await server.Store.Clients.AddAsync(tenant, "lab robot", "system/Observation.crs", jwks, CancellationToken.None)).ClientId;
        async Task<HttpStatusCode> WithAudienceAsync(string audience)
        {
            var assertion = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = clientId,
                Audience = audience,
                Claims = new Dictionary<string, object> { ["sub"] = clientId, ["jti"] = Guid.NewGuid().ToString() },
                Expires = DateTime.UtcNow.AddMinutes(4),
                SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(_key) { KeyId = "k1" }, SecurityAlgorithms.EcdsaSha384),
            });
            using var response = await server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials",
                ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ["client_assertion"] = assertion,
            }));
            return response.StatusCode;
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await WithAudienceAsync(new Uri(server.BaseAddress, "/oauth/token").ToString()));
        Assert.Equal(HttpStatusCode.OK, await WithAudienceAsync("https://ehr.hopital.example/oauth/token"));
        using var smart = await server.Http.GetAsync("/fhir/.well-known/smart-configuration");
        Assert.Equal("https://ehr.hopital.example/oauth/token", JsonDocument.Parse(await smart.Content.ReadAsStringAsync()).RootElement.GetProperty("token_endpoint").GetString());
    }

    [Fact]
    public async Task Registering_a_private_key_or_a_key_set_that_is_not_JSON_is_refused_saying_so_in_plain_words()
    {
        var tenant = (await _server.Store.Tenants.FindAsync("lab", CancellationToken.None))!;
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(_key) { KeyId = "k2" });
        var withPrivate = JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, crv = jwk.Crv, x = jwk.X, y = jwk.Y, d = Base64UrlEncoder.Encode(_key.ExportParameters(true).D!), kid = "k2", alg = "ES384" } } });
        var privateKey = await Assert.ThrowsAsync<ArgumentException>(() => _server.Store.Clients.AddAsync(tenant, "leaky", "system/Observation.rs", withPrivate, CancellationToken.None));
        Assert.Contains("holds a private or secret key", privateKey.Message, StringComparison.Ordinal);
        var notJson = await Assert.ThrowsAsync<ArgumentException>(() => _server.Store.Clients.AddAsync(tenant, "garbled", "system/Observation.rs", "not json at all", CancellationToken.None));
        Assert.Contains("is not a JSON Web Key Set", notJson.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("IDX", notJson.Message, StringComparison.Ordinal);
    }
}
