// The real `vauban` command as an operator runs it, in a child process: for the tests that need what only a process has (a
// kill at any instant, a TLS listener with its own console, the warnings a start prints).
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Vauban.Tests.Infrastructure;

internal static class ChildVauban
{
    /// <summary>Settings a developer's shell may hold that would change what the child does; a test gives its own.</summary>
    private static readonly string[] Inherited =
        ["VAUBAN_MASTER_KEY", "VAUBAN_DB", "VAUBAN_AUDIT_JOURNAL", "VAUBAN_PUBLIC_URL", "VAUBAN_TLS_CERTIFICATE", "VAUBAN_TLS_KEY", "VAUBAN_TLS_PASSWORD"];

    /// <summary>Starts `vauban <paramref name="arguments"/>` in <paramref name="workingDirectory"/>; every line it prints, on
    /// standard output or error, is added to <paramref name="output"/> as it comes.</summary>
    public static Process Start(IEnumerable<string> arguments, string workingDirectory, ConcurrentQueue<string> output, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "vauban.dll"));
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var variable in Inherited) start.Environment.Remove(variable);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>A port free on 127.0.0.1 when asked (another process may take it before the child binds it).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
