// vauban — the one executable: the server (FHIR API, later the web UI) and the operator's commands.
using Vauban.Cli;

namespace Vauban;

public static class Program
{
    public static string Version => typeof(Program).Assembly.GetName().Version?.ToString(3) ?? "0.1.0";

    public static Task<int> Main(string[] args) => VaubanCommands.Build().Parse(args).InvokeAsync();
}
