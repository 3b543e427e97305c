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

    /// <summary>Runs the command and asserts a usage error as README's exit codes promise: exit code 2, nothing on standard output,
    /// and on standard error one line "error: " beginning with <paramref name="problem"/>, then "Try '<paramref name="verb"/> --help'.".
    /// Returns everything the command printed, for what else a test looks for in it.</summary>
    public static async Task<string> UsageErrorAsync(string[] arguments, string problem, string verb)
    {
        var (exit, output, error) = await RunApartAsync(arguments);
        Assert.True(exit == 2, $"exit code {exit}: {output}{error}");
        Assert.Equal("", output);
        var lines = error.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
        Assert.True(lines.Count == 2, error);
        Assert.StartsWith("error: " + problem, lines[0], StringComparison.Ordinal);
        Assert.Equal($"Try '{verb} --help'.", lines[1]);
        return output + error;
    }

    /// <summary>The same, into writers of the test's own (one that acts when the command first prints, say).</summary>
    public static async Task<int> RunAsync(string[] arguments, StringWriter output, StringWriter error)
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
