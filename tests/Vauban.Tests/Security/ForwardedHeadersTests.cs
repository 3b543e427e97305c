// Behind a TLS-terminating reverse proxy: the proxies named at start are believed about the client's address and the
// public scheme and host (audit entries, throttling per source, links, cookies); nobody else is, whatever headers they send.
using System.Net;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;
using Vauban.Web;

namespace Vauban.Tests.Security;

public class ForwardedHeadersTests
{
    private static HttpRequestMessage Forwarded(string url)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        // A client that lies about the start of the chain; the proxy appends the address it saw.
        request.Headers.Add("X-Forwarded-For", "198.51.100.9, 203.0.113.7");
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-Host", "ehr.hopital.example");
        return request;
    }

    private static async Task<(string Self, string? Source)> ReadThroughProxyAsync(VaubanServer server)
    {
        using var api = await server.ClientAsync("hospital");
        var tenant = (await server.Store.Tenants.FindAsync("hospital", CancellationToken.None))!;
        var id = await server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Proxy"));
        using var response = await api.SendAsync(Forwarded($"/fhir/Patient?_id={id}"));
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var self = body.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "self").GetProperty("url").GetString()!;
        var entries = await server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "audit test"),
            new AuditQuery { Patient = id, Actions = [AuditAction.Search], Count = 10 }, CancellationToken.None) ?? [];
        return (self, Assert.Single(entries).Detail.Source);
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_the_client_address_and_public_address_are_the_ones_it_forwards()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite,
            new ServerOptions("http://127.0.0.1:0") { TrustedProxies = [IPNetwork.Parse("127.0.0.1/32")] });
        var (self, source) = await ReadThroughProxyAsync(server);
        Assert.StartsWith("https://ehr.hopital.example/fhir/Patient?", self, StringComparison.Ordinal);
        Assert.Equal("203.0.113.7", source); // the proxy's word, not the client's claim before it

        // A staff page reached over the proxy's HTTPS: its antiforgery cookie is Secure.
        using var page = await server.Http.SendAsync(Forwarded("/account/signin"));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains(page.Headers.GetValues("Set-Cookie"), c => c.Contains("; secure", StringComparison.OrdinalIgnoreCase));
        // ...and tells the browser to come back over HTTPS only (HSTS): a first plain visit on the ward's network cannot be stripped.
        Assert.Equal("max-age=31536000", page.Headers.GetValues("Strict-Transport-Security").Single());
        using var plain = await server.Http.GetAsync("/account/signin");
        Assert.False(plain.Headers.Contains("Strict-Transport-Security")); // meaningless over plain HTTP
    }

    [Fact]
    public async Task Without_trusted_proxies_forwarded_headers_are_ignored()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite);
        var (self, source) = await ReadThroughProxyAsync(server);
        Assert.StartsWith("http://127.0.0.1:", self, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1", source);
    }
}
