// serve --demo: on first start, a demo establishment with synthetic patients; on every start, a fresh
// demo API client whose secret is printed (secrets are stored hashed and cannot be shown twice).
using Spectre.Console;

namespace Vauban.Cli;

internal static class Demo
{
    public const string TenantName = "demo";
    private const int Patients = 500;

    public static async Task EnsureAsync(VaubanStore store, string urls, CancellationToken cancellationToken)
    {
        var tenant = await store.Tenants.FindAsync(TenantName, cancellationToken);
        if (tenant is null)
        {
            tenant = await store.Tenants.AddAsync(TenantName, cancellationToken);
            var seeded = await SeedCommand.SeedAsync(store, tenant, Patients, randomSeed: 2026, asOf: null, showProgress: false, cancellationToken);
            AnsiConsole.MarkupLineInterpolated($"Demo establishment '{TenantName}' created with {Patients} synthetic patients ({seeded.Resources:N0} resources).");
        }
        var client = await store.Clients.AddAsync(tenant, $"demo client {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss}", "system/*.cruds", null, cancellationToken);
        var baseUrl = urls.Split(';')[0].TrimEnd('/');
        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine("[bold]Demo API credentials[/] (a new client each start; all data is synthetic):");
        Console.WriteLine($"  client_id:     {client.ClientId}");
        Console.WriteLine($"  client_secret: {client.ClientSecret}");
        Console.WriteLine("  Try:");
        Console.WriteLine($"  TOKEN=$(curl -s -u {client.ClientId}:{client.ClientSecret} -d grant_type=client_credentials {baseUrl}/oauth/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')");
        Console.WriteLine($"  curl -H \"Authorization: Bearer $TOKEN\" '{baseUrl}/fhir/Patient?_count=5'");
        AnsiConsole.WriteLine();
    }
}
