// The PostgreSQL server the integration tests run against: $VAUBAN_TEST_POSTGRES if set, otherwise a
// throwaway cluster started once per test run by tests/postgres.sh and stopped at exit. Each test
// class gets its own database. A missing PostgreSQL fails the tests; it never skips them.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Vauban.Tests.Infrastructure;

public static class PostgresServer
{
    private static readonly Lazy<string> Server = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string AdminConnectionString => Server.Value;

    public static string Directory { get; private set; } = "";

    /// <summary>A database with Vauban's schema migrated once per test run, no master key bound yet (each store binds its own).</summary>
    private static readonly Lazy<Task<string>> Template = new(CreateTemplateAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>An empty database: for the tests of migrations themselves.</summary>
    public static Task<string> CreateDatabaseAsync() => CreateDatabaseAsync(template: null);

    /// <summary>A database whose schema is Vauban's latest, copied from a template migrated once: a test server's start skips
    /// the migration steps (about 150 ms of each of some thousand starts). The store still opens it as any other: it finds
    /// every step applied, binds its master key, and checks the rest.</summary>
    public static async Task<string> CreateMigratedDatabaseAsync() => await CreateDatabaseAsync(await Template.Value);

    private static async Task<string> CreateDatabaseAsync(string? template)
    {
        var name = "vauban_test_" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}" + (template is null ? "" : $" TEMPLATE {template}"), connection);
        await command.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;
    }

    private static async Task<string> CreateTemplateAsync()
    {
        var connectionString = await CreateDatabaseAsync(template: null);
        // Unpooled, and closed before it is copied: PostgreSQL copies no database someone is connected to.
        await using (var database = Vauban.Storage.StoreDatabase.Open(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString))
        {
            await Vauban.Storage.Schema.MigrateAsync(database, CancellationToken.None);
        }
        return new NpgsqlConnectionStringBuilder(connectionString).Database!;
    }

    private static string Start()
    {
        var given = Environment.GetEnvironmentVariable("VAUBAN_TEST_POSTGRES");
        if (!string.IsNullOrWhiteSpace(given))
        {
            Directory = new NpgsqlConnectionStringBuilder(given).Host ?? "";
            return given;
        }
        Directory = Path.Combine(Path.GetTempPath(), "vauban-pg-" + Guid.NewGuid().ToString("N")[..8]);
        var script = Path.Combine(RepositoryRoot(), "tests", "postgres.sh");
        var output = Run(script, $"start {Directory} {FreePort()}");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Run(script, $"stop {Directory}");
        return output.Trim().Split('\n')[^1];
    }

    public static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Vauban.slnx"))) directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Vauban.slnx).");
    }

    private static string Run(string script, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", $"{script} {arguments}") { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"tests/postgres.sh {arguments} failed: {error}");
        return output;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
