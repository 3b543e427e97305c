// SMART Backend Services: a client registered with a public key authenticates with a signed JWT
// assertion (private_key_jwt); forged, expired, replayed or mis-addressed assertions are refused.
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Vauban.Tests.Infrastructure;

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
}
