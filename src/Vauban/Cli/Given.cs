// A value the operator gives by an option or, when the option is not typed, by an environment variable: a refusal names
// where it came from, so that the operator knows what to fix. "--public-url: … is not …" sent them looking for an option
// they had not typed while the value was $VAUBAN_PUBLIC_URL's.
using System.CommandLine;

namespace Vauban.Cli;

/// <param name="Value">The option's value as typed; else the variable's, when set and not blank; else null.</param>
/// <param name="Source">"--db", "$VAUBAN_DB", or the fallback's name ("the default store") when neither gave one.</param>
internal readonly record struct Given(string? Value, string Source)
{
    public static Given From(ParseResult parse, Option<string?> option, string variable, string fallback)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(option);
        if (parse.GetValue(option) is { } typed) return new(typed, option.Name);
        return Environment.GetEnvironmentVariable(variable) is { } set && !string.IsNullOrWhiteSpace(set) ? new(set, "$" + variable) : new(null, fallback);
    }

    /// <summary>"<see cref="Source"/>: <paramref name="problem"/>" (<see cref="UsageError.About"/>).</summary>
    public string Says(string problem) => UsageError.About(Source, problem);
}
