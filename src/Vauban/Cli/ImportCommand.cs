using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Cli;

internal static class ImportCommand
{
    public static Command Build()
    {
        var import = new Command("import", "Load FHIR R4 Bundles (transaction, batch or collection) from a JSON file or every *.json file of a folder and its subfolders.");
        var path = new Argument<string>("path") { Description = "A bundle .json file, or a folder of them." };
        var tenant = new Option<string?>("--tenant") { Description = "The establishment to load into (may be omitted when the store has exactly one)." };
        // A resource the API would refuse for its size (413) is not brought in by an import either: it was, at any size.
        var maxResource = ServeCommand.MaxResourceKib("Largest resource loaded, in KiB, as serve's --max-resource-kib: a larger one is not loaded (named with the other entries not loaded).");
        // A path that names nothing, or a pipe, socket or device (never opened: FileKind), is a usage error (exit 2), like a
        // missing argument.
        path.Validators.Add(result =>
        {
            var given = result.GetValueOrDefault<string>();
            if (given is not null && !Directory.Exists(given) && !File.Exists(given)) result.AddError($"'{given}' is neither a file nor a folder.");
            else if (given is not null && FileKind.NotRegular(given) is { } kind) result.AddError($"'{given}' is {kind}, not a regular file: name a bundle file or a folder of them.");
        });
        import.Arguments.Add(path);
        import.Options.Add(tenant);
        import.Options.Add(maxResource);
        StoreArguments.AddTo(import);
        import.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var target = parse.GetValue(path)!;
            var files = Directory.Exists(target) ? BundleFiles(target)
                : File.Exists(target) ? [target] : throw new ArgumentException($"'{target}' is neither a file nor a folder.");
            // A folder of NDJSON (a bulk export's files) or of nothing: loading nothing and exiting 0 would say it was done.
            if (files.Length == 0) throw new UsageException($"'{target}' holds no .json file: vauban import reads FHIR Bundles in JSON files (not NDJSON).");
            await using var store = await StoreArguments.OpenAsync(parse, token);
            await StoreArguments.RefuseNewerIndexAsync(store, "import", token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var context = AccessContext.Operator(owner, "import FHIR bundles");
            var maxResourceBytes = parse.GetValue(maxResource) * 1024L;
            var results = new List<(bool Ok, string Line)>();
            // A folder is one import: a record of a collection whose patient is in a later file waits for the last file.
            var waiting = files.Length > 1 ? new List<ImportItem>() : null;
            // A file by its path under the folder: two b.json in two subfolders are told apart.
            string Named(string file) => Directory.Exists(target) ? Path.GetRelativePath(target, file) : Path.GetFileName(file);
            async Task ImportAsync(string file, ProgressTask? bar)
            {
                var (ok, message) = await ImportFileAsync(store, context, file, Named(file), maxResourceBytes, token, bar, waiting);
                results.Add((ok, $"{(ok ? "ok" : "failed")} {Named(file)}: {message}"));
            }
            async Task ImportWaitingAsync()
            {
                if (waiting is not { Count: > 0 }) return;
                var summary = await store.Records.ImportAsync(context, waiting, null, token);
                var ok = summary.Rejected.Count == 0;
                results.Add((ok, $"{(ok ? "ok" : "failed")} records loaded after the patients of later files: {summary.Created} created, {summary.Updated} updated, "
                    + $"{summary.Rejected.Count} rejected.{Listed(summary.Rejected.Select(r => r.Diagnostics).ToList())}"));
            }
            if (!Console.IsOutputRedirected)
            {
                // On a terminal, one bar per file (resources of a collection as they are stored); the results follow, also
                // those of the files done when a later one fails.
                try
                {
                    await AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                        .StartAsync(async progress =>
                        {
                            for (var i = 0; i < files.Length; i++)
                            {
                                var bar = progress.AddTask(Markup.Escape($"{i + 1}/{files.Length} {Named(files[i])}"), maxValue: 1);
                                await ImportAsync(files[i], bar);
                                bar.Value = bar.MaxValue;
                            }
                            await ImportWaitingAsync();
                        });
                }
                finally
                {
                    foreach (var (_, line) in results) Console.WriteLine(line);
                }
            }
            else
            {
                foreach (var file in files)
                {
                    await ImportAsync(file, null);
                    Console.WriteLine(results[^1].Line);
                }
                var count = results.Count;
                await ImportWaitingAsync();
                if (results.Count > count) Console.WriteLine(results[^1].Line);
            }
            return results.TrueForAll(r => r.Ok) ? 0 : 1;
        }, ct));
        return import;
    }

    /// <summary>
    /// The .json files of a folder and its subfolders, in path order — not through a symbolic link to a folder: a link to a parent
    /// folder (sub/loop → ..) made the walk go round, loading the same bundles again at each turn (41 times, until the path grew
    /// too long). A symbolic link to a file is read as the file.
    /// </summary>
    internal static string[] BundleFiles(string folder)
    {
        var folders = new EnumerationOptions { MatchType = MatchType.Win32, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = false };
        var files = new EnumerationOptions { MatchType = MatchType.Win32, AttributesToSkip = 0, IgnoreInaccessible = false };
        var found = new List<string>();
        var pending = new Stack<string>();
        pending.Push(folder);
        while (pending.TryPop(out var current))
        {
            found.AddRange(Directory.EnumerateFiles(current, "*.json", files));
            foreach (var sub in Directory.EnumerateDirectories(current, "*", folders)) pending.Push(sub);
        }
        return [.. found.Order(StringComparer.Ordinal)];
    }

    /// <summary>The largest bundle file read: a file is read whole, and parsed, before anything of it is loaded (a 50 MB bundle
    /// took ~580 MB of memory), and a file still growing may not end (a device is not opened at all: FileKind).</summary>
    internal const long MaxFileBytes = 256L * 1024 * 1024;

    /// <summary>What a file's result lists of the entries that were not loaded, each on its own line, at most.</summary>
    private const int ListedRejections = 20;

    /// <summary>The entry a refusal names ("Bundle.entry[12] (Observation): …" → 12); those naming none last.</summary>
    private static int EntryIndex(string diagnostics) =>
        diagnostics.StartsWith("Bundle.entry[", StringComparison.Ordinal) && diagnostics.IndexOf(']', StringComparison.Ordinal) is > 13 and var end
            && int.TryParse(diagnostics.AsSpan(13, end - 13), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index)
            ? index : int.MaxValue;

    /// <summary>Loads one bundle file; <paramref name="bar"/>, when given, follows a collection's resources as they are stored.
    /// The message says what was loaded and, one line each, which entries were not (and why). With <paramref name="waiting"/>
    /// (a folder), a collection's records whose patient is neither in the store nor in the file are added to it, named by file
    /// and entry, to be loaded once every file is (their patient may be in a later one), instead of being rejected.</summary>
    /// <param name="name">How the file is named in the lines printed (its path under the folder imported).</param>
    /// <param name="maxResourceBytes">The largest resource loaded (the API's limit for one resource, 413 above it).</param>
    public static async Task<(bool Ok, string Message)> ImportFileAsync(VaubanStore store, AccessContext context, string file, string name, long maxResourceBytes,
        CancellationToken cancellationToken, ProgressTask? bar = null, List<ImportItem>? waiting = null)
    {
        // A folder's pipe, socket or device is that file's failure, told without opening it: opening a pipe waited for ever.
        if (FileKind.NotRegular(file) is { } kind) return (false, $"is {kind}, not a regular file: not read, nothing of it loaded.");
        byte[] bytes;
        try
        {
            bytes = await ReadAtMostAsync(file, MaxFileBytes, cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // One unreadable file of a folder is that file's failure: the others are still loaded.
            return (false, $"cannot be read ({e.Message}).");
        }
        if (bytes.Length > MaxFileBytes) return (false, $"is larger than {MaxFileBytes / (1024 * 1024)} MiB: split it into smaller bundles (nothing of it was loaded).");
        // The API's rules for a body: what it refuses, a file cannot bring in (nor stop the whole import with an exception).
        using var document = FhirJsonInput.Parse(bytes, out var problem);
        if (document is null) return (false, problem!);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("resourceType", out var rt) || rt.ValueKind != JsonValueKind.String || rt.GetString() != "Bundle")
            return (false, "not a FHIR Bundle.");
        var type = root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type is "transaction" or "batch")
        {
            var (status, body) = await store.Records.ProcessBundleAsync(context, root, "urn:vauban:import", cancellationToken, maxResourceBytes: maxResourceBytes);
            // Every entry the refusal names, as for a collection (one on the file's line, several one line each): quoting the
            // first only, an operator fixing it met the next at the next run.
            if (status >= 300)
            {
                var refused = AllDiagnostics(body);
                return (false, $"{type} refused (HTTP {status}), nothing loaded:" + (refused.Count == 1 ? " " + refused[0] : Listed(refused)));
            }
            return type == "transaction" ? (true, "transaction applied.") : BatchResult(body);
        }
        if (type is null) return (false, "Bundle.type is missing or not a string (transaction, batch or collection).");
        if (type != "collection") return (false, $"Bundle.type '{type}' cannot be imported (transaction, batch or collection).");
        var rejected = new List<Vauban.Fhir.Issue>();
        var items = RecordsService.CollectionItems(root, rejected, maxResourceBytes);
        var label = bar?.Description;
        if (bar is not null) bar.MaxValue = Math.Max(1, items.Count);
        var summary = await store.Records.ImportAsync(context, items, bar is null ? null : new Reporter<int>(n => bar.Increment(n)), cancellationToken,
            bar is null ? null : new Reporter<string>(stage => bar.Description = label + " " + Markup.Escape(stage)), holdWaiting: waiting is not null);
        rejected.AddRange(summary.Rejected);
        waiting?.AddRange(summary.Waiting.Select(i => i with { Where = $"{name} {i.Where}" }));
        var message = $"{summary.Created} created, {summary.Updated} updated, {rejected.Count} rejected"
            + (summary.Waiting.Count > 0 ? $", {summary.Waiting.Count} waiting for their patient in a later file." : ".");
        // In entry order: what the collection's reading refused comes first otherwise, then each batch's.
        return (rejected.Count == 0, message + Listed(rejected.Select(r => r.Diagnostics).OrderBy(EntryIndex).ToList()));
    }

    /// <summary>A batch's entries succeed or fail one by one: the result counts them and names each that failed.</summary>
    private static (bool Ok, string Message) BatchResult(byte[] response)
    {
        using var document = JsonDocument.Parse(response);
        var failures = new List<string>();
        var count = 0;
        if (document.RootElement.TryGetProperty("entry", out var entries))
        {
            foreach (var entry in entries.EnumerateArray())
            {
                var status = entry.GetProperty("response").GetProperty("status").GetString() ?? "";
                if (!status.StartsWith('2'))
                {
                    var why = entry.GetProperty("response").TryGetProperty("outcome", out var outcome) ? WithoutEntry(Diagnostics(outcome), count) : "";
                    failures.Add($"Bundle.entry[{count}] ({status}){(why.Length > 0 ? ": " + why : "")}");
                }
                count++;
            }
        }
        return failures.Count == 0
            ? (true, $"batch applied ({Counted.En(count, "entry", "entries")}).")
            : (false, $"batch: {count - failures.Count} of {Counted.En(count, "entry", "entries")} applied, {failures.Count} failed." + Listed(failures));
    }

    /// <summary>The entries not loaded, one indented line each, the first <see cref="ListedRejections"/> of them.</summary>
    private static string Listed(List<string> lines) =>
        string.Concat(lines.Take(ListedRejections).Select(l => "\n  " + l))
        + (lines.Count > ListedRejections ? $"\n  … and {lines.Count - ListedRejections} more." : "");

    private static List<string> AllDiagnostics(byte[] outcome)
    {
        using var document = JsonDocument.Parse(outcome);
        return document.RootElement.TryGetProperty("issue", out var issues)
            ? issues.EnumerateArray().Select(i => i.TryGetProperty("diagnostics", out var d) ? d.GetString() ?? "" : "").Where(d => d.Length > 0).ToList()
            : [];
    }

    /// <summary>An entry's diagnostics without the entry's position where they begin with it, as those of a request the server could
    /// not run do ("Bundle.entry[2]: …", "Bundle.entry[2].request.url …"): the line names the entry once, at its start.</summary>
    private static string WithoutEntry(string diagnostics, int index)
    {
        var entry = $"Bundle.entry[{index.ToString(System.Globalization.CultureInfo.InvariantCulture)}]";
        if (!diagnostics.StartsWith(entry, StringComparison.Ordinal)) return diagnostics;
        var rest = diagnostics[entry.Length..];
        return rest.StartsWith(": ", StringComparison.Ordinal) ? rest[2..] : rest.TrimStart('.', ' ');
    }

    private static string Diagnostics(JsonElement outcome) =>
        outcome.TryGetProperty("issue", out var issues) && issues.GetArrayLength() > 0 && issues[0].TryGetProperty("diagnostics", out var d)
            ? d.GetString() ?? "" : "";

    /// <summary>The file's bytes, or its first <paramref name="limit"/> + 1 when it is longer (the caller refuses it): read as a
    /// stream, so that a device or a file still growing does not fill memory first.</summary>
    private static async Task<byte[]> ReadAtMostAsync(string file, long limit, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        using var buffer = new MemoryStream(stream.CanSeek ? (int)Math.Min(stream.Length, limit + 1) : 1 << 16);
        var chunk = new byte[1 << 16];
        int read;
        while (buffer.Length <= limit && (read = await stream.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, limit + 1 - buffer.Length)), cancellationToken)) > 0)
            buffer.Write(chunk, 0, read);
        return buffer.ToArray();
    }
}
