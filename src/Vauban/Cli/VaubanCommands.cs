// The command tree. Each verb has --help; errors the operator can fix are printed as one clear line
// with exit code 1 (2 for usage errors: UsageError), never a stack trace.
using System.CommandLine;

namespace Vauban.Cli;

internal static class VaubanCommands
{
    public static RootCommand Build()
    {
        var root = new RootCommand("Vauban — an electronic patient record server (FHIR R4) built against the French health-data breaches.");
        root.Subcommands.Add(ServeCommand.Build());
        root.Subcommands.Add(TenantCommands.Build());
        root.Subcommands.Add(ClientCommands.Build());
        root.Subcommands.Add(UserCommands.Build());
        root.Subcommands.Add(GuardCommands.Build());
        root.Subcommands.Add(SeedCommand.Build());
        root.Subcommands.Add(ImportCommand.Build());
        root.Subcommands.Add(ReindexCommand.Build());
        root.Subcommands.Add(AuditCommands.Build());
        root.Subcommands.Add(KeyCommands.Build());
        root.Subcommands.Add(BackupCommand.Build());
        root.Subcommands.Add(BreachCommand.Build());
        SayValues(root);
        CommandExamples.ShowInHelp(root);
        return root;
    }

    /// <summary>Every whole-number, file, folder and date option refuses what it cannot take in the operator's terms. The parser's own
    /// message was "Cannot parse argument 'abc' for option '--patients' as expected type 'System.Int32'" (also for a number too
    /// large for it), likewise 'System.IO.FileInfo' for an empty --jwks, where a validator asking for the value then threw and
    /// printed a stack trace; and a date was read in any format the invariant culture knows, 05/12/2026 as the 12th of May.</summary>
    private static void SayValues(Command command)
    {
        foreach (var option in command.Options)
        {
            switch (option)
            {
                case Option<int> number:
                    number.CustomParser = result => WholeNumber(result, option.Name) ?? default;
                    break;
                case Option<int?> optional:
                    optional.CustomParser = result => WholeNumber(result, option.Name);
                    break;
                case Option<FileInfo> file:
                    file.CustomParser = result => ExistingFile(result, option.Name);
                    break;
                case Option<DirectoryInfo> folder:
                    folder.CustomParser = result => Folder(result, option.Name);
                    break;
                case Option<DateOnly?> date:
                    date.CustomParser = result => Date(result, option.Name);
                    break;
            }
        }
        foreach (var sub in command.Subcommands) SayValues(sub);
    }

    /// <summary>Refuses a whole number given outside <paramref name="min"/>–<paramref name="max"/> as a usage error (exit 2), as an
    /// unparsable one is: "--limit must be between 1 and 10,000." (it was an error of the verb, exit 1, once the store was open).</summary>
    public static T Within<T>(this T option, int min, int max) where T : Option =>
        Within(option, min, max, TryWholeNumber, n => n.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The same for a date, yyyy-MM-dd, given outside <paramref name="min"/>–<paramref name="max"/>.</summary>
    public static Option<DateOnly?> Within(this Option<DateOnly?> option, DateOnly min, DateOnly max) =>
        Within(option, min, max, TryDate, d => d.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));

    private delegate bool TryRead<TValue>(string text, out TValue value);

    private static TOption Within<TOption, TValue>(TOption option, TValue min, TValue max, TryRead<TValue> read, Func<TValue, string> say)
        where TOption : Option where TValue : IComparable<TValue>
    {
        ArgumentNullException.ThrowIfNull(option);
        option.Validators.Add(result =>
        {
            // Only a value given, and read (one that cannot be read already has its error, from the option's parser).
            if (result.Implicit || result.Tokens.Count == 0 || !read(result.Tokens[^1].Value, out var value)) return;
            if (value.CompareTo(min) < 0 || value.CompareTo(max) > 0) result.AddError($"{option.Name} must be between {say(min)} and {say(max)}.");
        });
        return option;
    }

    private static bool TryWholeNumber(string text, out int value) =>
        int.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out value);

    private static bool TryDate(string text, out DateOnly day) =>
        DateOnly.TryParseExact(text, "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out day);

    private static string Given(System.CommandLine.Parsing.ArgumentResult result) => result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";

    private static int? WholeNumber(System.CommandLine.Parsing.ArgumentResult result, string option)
    {
        var text = Given(result);
        if (TryWholeNumber(text, out var value)) return value;
        result.AddError(long.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _)
            ? $"{option}: {text} is too large."
            : $"{option}: '{text}' is not a whole number.");
        return null;
    }

    /// <summary>A file the verb reads (--jwks, --witness, --guard-config): one that is not there is a usage error (exit 2), as a
    /// missing argument is, and so is a pipe, a socket or a device, which reading would wait on or never end (FileKind).</summary>
    private static FileInfo? ExistingFile(System.CommandLine.Parsing.ArgumentResult result, string option)
    {
        var text = Given(result);
        if (string.IsNullOrWhiteSpace(text)) result.AddError($"{option}: the path is empty; name the file.");
        else if (Directory.Exists(text)) result.AddError($"{option}: {Path.GetFullPath(text)} is a folder; name the file.");
        else if (!File.Exists(text)) result.AddError($"{option}: no file at {Path.GetFullPath(text)}.");
        else if (FileKind.NotRegular(text) is { } kind) result.AddError($"{option}: {Path.GetFullPath(text)} is {kind}, not a regular file.");
        else return new FileInfo(text);
        return null;
    }

    private static DirectoryInfo? Folder(System.CommandLine.Parsing.ArgumentResult result, string option)
    {
        var text = Given(result);
        if (!string.IsNullOrWhiteSpace(text)) return new DirectoryInfo(text);
        result.AddError($"{option}: the path is empty; name the folder.");
        return null;
    }

    private static DateOnly? Date(System.CommandLine.Parsing.ArgumentResult result, string option)
    {
        var text = Given(result);
        if (TryDate(text, out var day)) return day;
        result.AddError($"{option}: '{text}' is not a date (yyyy-MM-dd, e.g. 2026-12-05).");
        return null;
    }

    /// <summary>Whether <paramref name="text"/> is a server's base URL as a person or a client is handed it: absolute http or https,
    /// without a query, fragment or credentials (--public-url, users' --url).</summary>
    public static bool IsBaseUrl(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Uri? url) =>
        Uri.TryCreate(text, UriKind.Absolute, out url) && url.Scheme is "http" or "https" && url.Query.Length == 0 && url.Fragment.Length == 0 && url.UserInfo.Length == 0;

    /// <summary>Runs a verb, turning the operator's mistakes into one readable line; a <see cref="UsageException"/> goes on to
    /// <see cref="UsageError.Report"/>, which names the verb's help.</summary>
    public static async Task<int> RunAsync(Func<CancellationToken, Task<int>> action, CancellationToken cancellationToken)
    {
        try
        {
            return await action(cancellationToken);
        }
        catch (UsageException)
        {
            throw;
        }
        catch (Exception e) when (e is VaubanConfigurationException or ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException
            or Audit.AuditUnavailableException)
        {
            // An ArgumentException's message ends in " (Parameter 'x')", naming a .NET parameter, not an option.
            var message = e is ArgumentException { ParamName: { } name } argument ? argument.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;
            Console.Error.WriteLine($"error: {message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled");
            return 130;
        }
        catch (Exception e) when (VaubanStore.UnavailableCause(e) is { } cause)
        {
            // The store could not be reached or written (named by its code, never by the database's message, which may quote a row).
            Console.Error.WriteLine($"error: the store cannot be used now: {cause}.{(VaubanStore.WriteAccessHint(e) is { } hint ? " " + hint : "")}");
            return 1;
        }
        catch (Exception e) when (VaubanStore.DatabaseError(e) is { } error)
        {
            // Any other database error (a store damaged or changed outside Vauban, a database user without a privilege): named as
            // the store's opening names it, by SQLite's code and words or PostgreSQL's SQL state; it was "SQLite Error 1: 'no such
            // table: guard_canaries'. (SqliteException)", and PostgreSQL's words may quote a row's values.
            Console.Error.WriteLine($"error: the store refused this command: {error}. What the failed transaction held was not written.");
            return 1;
        }
        catch (Exception e)
        {
            // Anything else (a damaged record, a broken store): still one line, never a stack trace. Vauban's own exception
            // messages carry no patient data or secret (CONVENTIONS 10); the type tells a developer where to look.
            Console.Error.WriteLine($"error: {e.Message} ({e.GetType().Name})");
            return 1;
        }
    }

    /// <summary>An administrative read at the command line, on the establishment's chain before what it lists is shown, as the
    /// console's reads are: <paramref name="what"/> names the command ("guard canaries list").</summary>
    /// <param name="concerning">What was listed that concerns a patient, under that patient (their access history shows it).</param>
    public static Task AuditReadAsync(VaubanStore store, Vauban.Access.Tenant owner, string what, int listed, CancellationToken cancellationToken,
        IReadOnlyList<Vauban.Audit.AuditedRecord>? concerning = null) =>
        store.Audit.AppendAsync(Vauban.Access.AccessContext.Operator(owner, Vauban.Access.KnownPurposes.SystemAdministration), Vauban.Audit.AuditAction.Administration,
            Vauban.Audit.AuditOutcome.Success, null, [new Vauban.Audit.AuditedRecord("cli:" + what, null, null), .. concerning ?? []], cancellationToken,
            $"{what} read ({listed} listed)");
}
