// Every stamp a reader sees comes from the server's clock (the store's TimeProvider), never the machine's: a Bundle's
// meta.lastUpdated, the Date of a version just written, an establishment's and its keys' creation. The server here runs
// on a clock set years before the machine's, so that a stamp read from the machine's clock shows.
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Storage;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class ServerClockTests : FhirServerTests
{
    private readonly ManualTime _time;

    protected ServerClockTests(Engine engine) : this(engine, new ManualTime(new DateTimeOffset(2021, 6, 15, 8, 0, 0, TimeSpan.Zero))) { }

    private ServerClockTests(Engine engine, ManualTime time) : base(engine, time) => _time = time;

    private async Task<JsonElement> SendAsync(HttpMethod method, string url, string? json = null)
    {
        using var request = new HttpRequestMessage(method, url.Length == 0 ? "/fhir" : "/fhir/" + url) { Content = json is null ? null : FhirContent.Json(json) };
        using var response = await Api.SendAsync(request);
        var body = await response.BodyAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {url}: {(int)response.StatusCode} {body}");
        return body;
    }

    private static DateTimeOffset LastUpdated(JsonElement resource) =>
        DateTimeOffset.Parse(resource.GetProperty("meta").GetProperty("lastUpdated").GetString()!, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Searchset_history_and_everything_Bundles_are_stamped_now_by_the_servers_clock()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient())).GetProperty("id").GetString()!;
        _time.Advance(TimeSpan.FromMinutes(2)); // within the client's token's five minutes
        var now = _time.GetUtcNow();

        foreach (var url in new[] { "Patient?_count=5", "Patient/" + patient + "/_history", "Patient/_history", "Patient/" + patient + "/$everything" })
        {
            var bundle = await SendAsync(HttpMethod.Get, url);
            Assert.Equal("Bundle", bundle.GetProperty("resourceType").GetString());
            Assert.Equal(now, LastUpdated(bundle));
        }
    }

    [Fact]
    public async Task A_batch_response_and_the_searchset_in_it_are_stamped_now_by_the_servers_clock()
    {
        _time.Advance(TimeSpan.FromMinutes(2));
        var response = await SendAsync(HttpMethod.Post, "", """
            { "resourceType": "Bundle", "type": "batch", "entry": [ { "request": { "method": "GET", "url": "Patient?_count=1" } } ] }
            """);
        Assert.Equal("batch-response", response.GetProperty("type").GetString());
        Assert.Equal(_time.GetUtcNow(), LastUpdated(response));
        var searchset = response.GetProperty("entry")[0].GetProperty("resource");
        Assert.Equal("searchset", searchset.GetProperty("type").GetString());
        Assert.Equal(_time.GetUtcNow(), LastUpdated(searchset));
    }

    [Fact]
    public async Task A_version_just_written_is_answered_with_a_Date_by_the_servers_clock()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient())).GetProperty("id").GetString()!;
        using var read = await Api.GetAsync("/fhir/Patient/" + patient);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        // Last-Modified is the version's stamp, and Date is not before it (RFC 9110 §8.8.2.1): both the server's time.
        Assert.Equal(_time.GetUtcNow(), read.Content.Headers.LastModified);
        Assert.Equal(_time.GetUtcNow(), read.Headers.Date);
    }

    [Fact]
    public async Task An_establishment_and_its_keys_are_stamped_with_their_creation_by_the_servers_clock()
    {
        var tenant = await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None);
        var created = _time.GetUtcNow().ToUnixTimeMilliseconds();
        _time.Advance(TimeSpan.FromDays(3));
        await Server.Store.AddDataKeyAsync(AccessContext.Operator(tenant!, "test: rotate the data key"), CancellationToken.None);

        await using var connection = await Server.Store.Database.OpenAsync(CancellationToken.None);
        using (var command = connection.Command("SELECT created_at FROM tenants WHERE id = @t").With("t", tenant!.Id))
        {
            Assert.Equal(created, await command.ScalarLongAsync(CancellationToken.None));
        }
        var keys = new List<(string Purpose, int Version, long CreatedAt)>();
        using (var command = connection.Command("SELECT purpose, key_version, created_at FROM tenant_keys WHERE tenant_id = @t ORDER BY purpose, key_version").With("t", tenant.Id))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) keys.Add((reader.GetString(0), Convert.ToInt32(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture), reader.GetInt64(2)));
        }
        Assert.Equal(4, keys.Count); // data 1 and 2, index 1, audit signing 1
        Assert.All(keys, k => Assert.Equal(k.Version == 2 ? _time.GetUtcNow().ToUnixTimeMilliseconds() : created, k.CreatedAt));
    }
}

public sealed class ServerClockTests_Sqlite() : ServerClockTests(Engine.Sqlite);

public sealed class ServerClockTests_Postgres() : ServerClockTests(Engine.Postgres);
