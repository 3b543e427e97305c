// vauban — the one executable: the server (FHIR API, later the web UI) and the operator's commands.
using Vauban.Cli;

namespace Vauban;

public static class Program
{
    public static string Version => typeof(Program).Assembly.GetName().Version?.ToString(3) ?? "0.1.0";

    public static async Task<int> Main(string[] args)
    {
        // No POSIX bundling: no option has a one-letter name but the help's, and a value typed after a verb that begins with
        // "-h" (a Patient id "-hpat", an establishment "-hx") was read as -h bundled with other letters: the verb's help, exit 0.
        var parse = VaubanCommands.Build().Parse(args, new System.CommandLine.ParserConfiguration { EnablePosixBundling = false });
        var exit = await parse.InvokeAsync();
        if (exit == 0 && parse.UnmatchedTokens.Count > 0)
        {
            // "vauban breach --help": the parser prints the help of the verb above the unknown word, reports no error and answers
            // 0, as if the verb existed.
            foreach (var token in parse.UnmatchedTokens) Console.Error.WriteLine($"Unrecognized command or argument '{token}'.");
            return 2;
        }
        // A usage error (unknown verb or option, missing or unreadable argument) exits 2, a failure of the act 1: a script
        // can tell a typo from a refusal. The parser alone answers 1 for both.
        return parse.Errors.Count > 0 && exit == 1 ? 2 : exit;
    }
}
