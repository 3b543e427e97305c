// The setup the FHIR API tests share (FhirApiTests, ConditionalWriteTests, ConcurrentWriteTests): on the engine the derived class
// names (each test class runs on SQLite and PostgreSQL), an API client allowed every interaction on every type. Either a fresh
// server for each test (on the system's clock or a test's), or (a class given a FhirServerFixture) one server for the class's tests, each test then a client of an
// establishment of its own (TenantName): a server's start and stop cost more than most of these tests.
using System.Net;
using System.Text.Json;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class FhirServerTests : IAsyncLifetime
{
    private readonly FhirServerFixture? _shared;
    private readonly TimeProvider? _time;

    protected FhirServerTests(Engine engine) => Engine = engine;

    /// <summary>A server of the test's own, on <paramref name="time"/> (a test's clock) rather than the system's.</summary>
    protected FhirServerTests(Engine engine, TimeProvider time) : this(engine) => _time = time;

    protected FhirServerTests(FhirServerFixture shared)
    {
        ArgumentNullException.ThrowIfNull(shared);
        _shared = shared;
        Engine = shared.Engine;
    }

    protected Engine Engine { get; }

    protected VaubanServer Server { get; private set; } = null!;

    /// <summary>The establishment <see cref="Api"/> belongs to: hospital-a on a server of the test's own, a name of the test's own on
    /// a shared one.</summary>
    protected string TenantName { get; private set; } = "hospital-a";

    /// <summary>An API client of <see cref="TenantName"/> with system/*.cruds.</summary>
    protected HttpClient Api { get; private set; } = null!;

    protected async Task<JsonElement> CreateAsync(string type, string json)
    {
        using var response = await Api.PostAsync($"/fhir/{type}", FhirContent.Json(json));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create {type}: {(int)response.StatusCode} {body}");
        return body;
    }

    protected async Task<JsonElement> SearchAsync(string query, HttpClient? client = null)
    {
        using var response = await (client ?? Api).GetAsync("/fhir/" + query);
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"search {query}: {(int)response.StatusCode} {body}");
        Assert.Equal("Bundle", body.GetProperty("resourceType").GetString());
        Assert.Equal("searchset", body.GetProperty("type").GetString());
        return body;
    }

    protected static List<string> Ids(JsonElement bundle, string? type = null) => bundle.TryGetProperty("entry", out var entries)
        ? entries.EnumerateArray()
            .Where(e => !(e.TryGetProperty("search", out var search) && search.GetProperty("mode").GetString() == "outcome"))
            .Select(e => e.GetProperty("resource"))
            .Where(r => type is null || r.GetProperty("resourceType").GetString() == type)
            .Select(r => r.GetProperty("id").GetString()!).ToList()
        : [];

    public async Task InitializeAsync()
    {
        if (_shared is null) Server = await VaubanServer.StartAsync(Engine, configure: _time is null ? null : o => o with { Time = _time });
        else
        {
            Server = _shared.Server;
            TenantName = "hospital-a-" + Guid.NewGuid().ToString("N")[..10];
        }
        Api = await Server.ClientAsync(TenantName);
    }

    public async Task DisposeAsync()
    {
        Api.Dispose();
        if (_shared is null) await Server.DisposeAsync();
    }
}

/// <summary>One server for a test class's tests (see <see cref="FhirServerTests"/>), started with <paramref name="options"/>
/// (the default ones when null).</summary>
public abstract class FhirServerFixture(Engine engine, Web.ServerOptions? options = null) : IAsyncLifetime
{
    public Engine Engine { get; } = engine;

    public VaubanServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await VaubanServer.StartAsync(Engine, options);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

public sealed class FhirServerFixture_Sqlite() : FhirServerFixture(Engine.Sqlite);

public sealed class FhirServerFixture_Postgres() : FhirServerFixture(Engine.Postgres);
