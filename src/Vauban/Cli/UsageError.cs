// A usage error — an unknown verb or option, a missing or unreadable argument, a value out of its range — is told in one
// place, whoever finds it (the parser, or a verb checking what the parser cannot: a file's content, $VAUBAN_DB): one
// `error:` line saying what is wrong and one pointing to the verb's help, on stderr, exit code 2. The parser printed its
// errors above the whole help text, where the one line that mattered scrolled out of sight.
using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;

namespace Vauban.Cli;

/// <summary>Thrown by a verb for a usage error the parser could not see (exit code 2, as the parser's own): a malformed witness
/// file, a --db naming a folder. <see cref="VaubanCommands.RunAsync"/> lets it through to <see cref="UsageError.Report"/>.</summary>
internal sealed class UsageException(string message) : Exception(message);

internal static class UsageError
{
    public const int ExitCode = 2;

    /// <summary>Runs a check of what the operator typed, or of a file or setting it names, that refuses with an
    /// <see cref="ArgumentException"/> (NetworkList, ServerCertificate) or a <see cref="VaubanConfigurationException"/> (the
    /// account settings, a guard configuration, a master key): the refusal is a usage error, not a failure of the verb. The one
    /// way a check's refusal becomes one; <paramref name="says"/> puts it in the operator's terms ("--guard-config: file: …")
    /// when its message does not name where the value came from.</summary>
    public static T Checked<T>(Func<T> check, Func<string, string>? says = null)
    {
        ArgumentNullException.ThrowIfNull(check);
        try
        {
            return check();
        }
        catch (Exception e) when (e is ArgumentException or VaubanConfigurationException)
        {
            var message = e is ArgumentException { ParamName: { } name } ? e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;
            throw new UsageException(says is null ? message : says(message));
        }
    }

    /// <summary>"<paramref name="source"/>: <paramref name="problem"/>", a sentence's capital lowered (not an acronym's): "--name: a
    /// client name is 1 to 200 characters.", "$VAUBAN_MASTER_KEY_FILE: the master key file … is readable by other users; …".</summary>
    public static string About(string source, string problem)
    {
        ArgumentException.ThrowIfNullOrEmpty(problem);
        var word = problem.TakeWhile(char.IsLetter).ToArray();
        var sentence = word.Length > 0 && char.IsUpper(word[0]) && word.Skip(1).All(char.IsLower); // "The", "A"; not "PostgreSQL"
        return $"{source}: {(sentence ? char.ToLowerInvariant(problem[0]) + problem[1..] : problem)}";
    }

    /// <summary>The text of a file given to <paramref name="option"/> (--guard-config, --jwks): one that cannot be read is a usage
    /// error naming the option, as one that is not there is (VaubanCommands.SayValues).</summary>
    public static async Task<string> ReadAsync(FileInfo file, string option, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        try
        {
            return await File.ReadAllTextAsync(file.FullName, cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException(CannotRead(file, option, e));
        }
    }

    /// <summary>"--witness: cannot read /path: permission denied", never .NET's wording of a denied access.</summary>
    public static string CannotRead(FileInfo file, string option, Exception error)
    {
        ArgumentNullException.ThrowIfNull(file);
        return $"{option}: cannot read {file.FullName}: {(error is UnauthorizedAccessException ? "permission denied" : error.Message)}";
    }

    /// <summary>Whether the parse itself is a usage error. A word left over is one even beside --help: "vauban breach frob --help"
    /// printed the help of breach and answered 0, as if the word were one of its.</summary>
    public static bool In(ParseResult parse) => parse.Action is ParseErrorAction || parse.UnmatchedTokens.Count > 0;

    /// <summary>Prints what is wrong with <paramref name="parse"/> (or <paramref name="message"/>, a verb's own finding) and where
    /// the verb's help is; returns the exit code.</summary>
    public static int Report(ParseResult parse, string? message = null)
    {
        var verb = Verb(parse.CommandResult);
        Console.Error.WriteLine($"error: {message ?? Problem(parse, verb)}");
        Console.Error.WriteLine($"Try '{verb} --help'.");
        return ExitCode;
    }

    /// <summary>"vauban users add" for the command the parse reached (the root's own name is the executable's, e.g. testhost).</summary>
    private static string Verb(CommandResult command)
    {
        var names = new List<string>();
        for (SymbolResult? result = command; result is CommandResult { Command: not RootCommand } c; result = c.Parent) names.Insert(0, c.Command.Name);
        return string.Join(' ', ["vauban", .. names]);
    }

    private static string Problem(ParseResult parse, string verb)
    {
        var command = parse.CommandResult.Command;
        if (command.Action is null && command.Subcommands.Count > 0)
        {
            // A group of verbs ("vauban users"): the parser said "Required command was not provided." beside the unknown word.
            var verbs = string.Join(", ", command.Subcommands.Where(s => !s.Hidden).Select(s => s.Name));
            return parse.UnmatchedTokens.Count > 0
                ? $"'{parse.UnmatchedTokens[0]}' is not a verb or option of '{verb}' (its verbs: {verbs})."
                : $"'{verb}' needs a verb: {verbs}.";
        }
        // "Required argument missing for command: 'add'." named the verb, not what it misses.
        var errors = parse.Errors.Select(e => e.SymbolResult is ArgumentResult { Tokens.Count: 0 } missing && missing.Argument.Arity.MinimumNumberOfValues > 0
            ? $"the argument <{missing.Argument.Name}> is missing." : e.Message).Distinct(StringComparer.Ordinal).ToList();
        if (errors.Count == 0) errors.AddRange(parse.UnmatchedTokens.Select(t => $"Unrecognized command or argument '{t}'."));
        return string.Join(" ", errors);
    }
}
