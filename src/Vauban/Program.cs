// vauban — the one executable: the server (FHIR API, later the web UI) and the operator's commands.
using System.CommandLine;
using Vauban.Cli;

namespace Vauban;

public static class Program
{
    public static string Version => typeof(Program).Assembly.GetName().Version?.ToString(3) ?? "0.1.0";

    public static async Task<int> Main(string[] args)
    {
        // No POSIX bundling: no option has a one-letter name but the help's, and a value typed after a verb that begins with
        // "-h" (a Patient id "-hpat", an establishment "-hx") was read as -h bundled with other letters: the verb's help, exit 0.
        var parse = VaubanCommands.Build().Parse(args, new ParserConfiguration { EnablePosixBundling = false });
        // A usage error exits 2, a failure of the act 1 (VaubanCommands.RunAsync): a script can tell a typo from a refusal.
        if (UsageError.In(parse)) return UsageError.Report(parse);
        try
        {
            // Every verb's action turns its own failures into one line (VaubanCommands.RunAsync) and lets a usage error through.
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            return UsageError.Report(parse, e.Message);
        }
    }
}
