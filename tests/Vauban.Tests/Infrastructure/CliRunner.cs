namespace Vauban.Tests.Infrastructure;

/// <summary>Runs the `vauban` command in process, as an operator would type it, and returns its exit code and everything it
/// printed (standard output and error together). Tests that use it redirect the process's console: they belong to the
/// "console" collection, which xUnit runs one at a time.</summary>
internal static class CliRunner
{
    public static async Task<(int Exit, string Output)> RunAsync(string[] arguments)
    {
        var output = new StringWriter();
        var (original, originalError) = (Console.Out, Console.Error);
        Console.SetOut(output);
        Console.SetError(output);
        try
        {
            var exit = await Program.Main(arguments);
            return (exit, output.ToString());
        }
        finally
        {
            Console.SetOut(original);
            Console.SetError(originalError);
        }
    }
}
