using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Vauban.Access;
using Vauban.Records;

namespace Vauban.Cli;

internal static class ImportCommand
{
    public static Command Build()
    {
        var import = new Command("import", "Load FHIR R4 Bundles (transaction, batch or collection) from a JSON file or every *.json file of a folder.");
        var path = new Argument<string>("path") { Description = "A bundle .json file, or a folder of them." };
        var tenant = new Option<string?>("--tenant") { Description = "The establishment to load into (may be omitted when the store has exactly one)." };
        import.Arguments.Add(path);
        import.Options.Add(tenant);
        StoreArguments.AddTo(import);
        import.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var target = parse.GetValue(path)!;
            var files = Directory.Exists(target) ? Directory.GetFiles(target, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray()
                : File.Exists(target) ? [target] : throw new ArgumentException($"'{target}' is neither a file nor a folder.");
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var context = AccessContext.Operator(owner, "import FHIR bundles");
            var results = new List<(bool Ok, string Line)>();
            async Task ImportAsync(string file, ProgressTask? bar)
            {
                var (ok, message) = await ImportFileAsync(store, context, file, token, bar);
                results.Add((ok, $"{(ok ? "ok" : "failed")} {Path.GetFileName(file)}: {message}"));
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
                                var bar = progress.AddTask(Markup.Escape($"{i + 1}/{files.Length} {Path.GetFileName(files[i])}"), maxValue: 1);
                                await ImportAsync(files[i], bar);
                                bar.Value = bar.MaxValue;
                            }
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
            }
            return results.TrueForAll(r => r.Ok) ? 0 : 1;
        }, ct));
        return import;
    }

    /// <summary>Loads one bundle file; <paramref name="bar"/>, when given, follows a collection's resources as they are stored.</summary>
    public static async Task<(bool Ok, string Message)> ImportFileAsync(VaubanStore store, AccessContext context, string file, CancellationToken cancellationToken,
        ProgressTask? bar = null)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(await File.ReadAllBytesAsync(file, cancellationToken), new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            return (false, $"not valid JSON (line {e.LineNumber + 1}).");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("resourceType", out var rt) || rt.GetString() != "Bundle")
                return (false, "not a FHIR Bundle.");
            var type = root.TryGetProperty("type", out var t) ? t.GetString() : null;
            if (type is "transaction" or "batch")
            {
                var (status, body) = await store.Records.ProcessBundleAsync(context, root, "urn:vauban:import", cancellationToken);
                return status < 300 ? (true, $"{type} applied.") : (false, $"{type} refused (HTTP {status}): {Diagnostics(body)}");
            }
            if (type != "collection") return (false, $"Bundle.type '{type}' cannot be imported (transaction, batch or collection).");
            var items = new List<ImportItem>();
            if (root.TryGetProperty("entry", out var entries) && entries.ValueKind == JsonValueKind.Array)
            {
                foreach (var entry in entries.EnumerateArray())
                {
                    if (!entry.TryGetProperty("resource", out var resource) || resource.ValueKind != JsonValueKind.Object) continue;
                    var resourceType = resource.TryGetProperty("resourceType", out var r) ? r.GetString() ?? "" : "";
                    var id = resource.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : IdRules.NewId();
                    items.Add(new ImportItem(resourceType, id, JsonSerializer.SerializeToUtf8Bytes(resource)));
                }
            }
            var label = bar?.Description;
            if (bar is not null) bar.MaxValue = Math.Max(1, items.Count);
            var summary = await store.Records.ImportAsync(context, items, bar is null ? null : new Reporter<int>(n => bar.Increment(n)), cancellationToken,
                bar is null ? null : new Reporter<string>(stage => bar.Description = label + " " + Markup.Escape(stage)));
            var message = $"{summary.Created} created, {summary.Updated} updated, {summary.Rejected.Count} rejected.";
            return (summary.Rejected.Count == 0, summary.Rejected.Count == 0 ? message : message + " First: " + summary.Rejected[0].Diagnostics);
        }
    }

    private static string Diagnostics(byte[] outcome)
    {
        using var document = JsonDocument.Parse(outcome);
        return document.RootElement.TryGetProperty("issue", out var issues) && issues.GetArrayLength() > 0 && issues[0].TryGetProperty("diagnostics", out var d)
            ? d.GetString() ?? "" : "";
    }
}
