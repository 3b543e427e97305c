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

    public static async Task<string> CreateDatabaseAsync()
    {
        var name = "vauban_test_" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;
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
