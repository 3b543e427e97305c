namespace Vauban.Tests.Infrastructure;

/// <summary>Runs the `vauban` command in process, as an operator would type it, and returns its exit code and everything it
/// printed (standard output and error together, or apart). Tests that use it redirect the process's console: they belong to the
/// "console" collection, which xUnit runs one at a time.</summary>
internal static class CliRunner
{
    public static async Task<(int Exit, string Output)> RunAsync(string[] arguments)
    {
        var output = new StringWriter();
        return (await RunAsync(arguments, output, output), output.ToString());
    }

    /// <summary>The same, standard output and error apart.</summary>
    public static async Task<(int Exit, string Output, string Error)> RunApartAsync(string[] arguments)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        return (await RunAsync(arguments, output, error), output.ToString(), error.ToString());
    }

    private static async Task<int> RunAsync(string[] arguments, StringWriter output, StringWriter error)
    {
        var (original, originalError) = (Console.Out, Console.Error);
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            return await Program.Main(arguments);
        }
        finally
        {
            Console.SetOut(original);
            Console.SetError(originalError);
        }
    }
}
