// The setup the FHIR API tests share (FhirApiTests, ConditionalWriteTests, ConcurrentWriteTests): a fresh server for each test, on the
// engine the derived class names (each test class runs on SQLite and PostgreSQL), and an API client of hospital-a allowed
// every interaction on every type.
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class FhirServerTests(Engine engine) : IAsyncLifetime
{
    protected Engine Engine { get; } = engine;

    protected VaubanServer Server { get; private set; } = null!;

    /// <summary>An API client of hospital-a with system/*.cruds.</summary>
    protected HttpClient Api { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await VaubanServer.StartAsync(Engine);
        Api = await Server.ClientAsync("hospital-a");
    }

    public async Task DisposeAsync()
    {
        Api.Dispose();
        await Server.DisposeAsync();
    }
}
