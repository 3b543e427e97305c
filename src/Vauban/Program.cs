// vauban — the one executable: the server (FHIR API, later the web UI) and the operator's commands.
using Vauban.Cli;

namespace Vauban;

public static class Program
{
    public static string Version => typeof(Program).Assembly.GetName().Version?.ToString(3) ?? "0.1.0";

    public static async Task<int> Main(string[] args)
    {
        var parse = VaubanCommands.Build().Parse(args);
        var exit = await parse.InvokeAsync();
        // A usage error (unknown verb or option, missing or unreadable argument) exits 2, a failure of the act 1: a script
        // can tell a typo from a refusal. The parser alone answers 1 for both.
        return parse.Errors.Count > 0 && exit == 1 ? 2 : exit;
    }
}
