// FHIR's patch interaction in its JSON Patch form (RFC 6902, application/json-patch+json): the document checked as a whole
// before anything is read, then applied to the record's current version by the records service (RecordsService.PatchAsync),
// which validates the result as it validates an update. ASP.NET Core's JsonPatch applies the operations; it accepts documents
// RFC 6902 refuses (an unknown operation is skipped, a missing value read as null, a path without its leading '/'), so those
// are refused here first.
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.JsonPatch.SystemTextJson;
using Microsoft.AspNetCore.JsonPatch.SystemTextJson.Exceptions;
using Vauban.Fhir;

namespace Vauban.Records;

public sealed class RecordPatch
{
    /// <summary>The media type of a JSON Patch document (RFC 6902 §6); FHIRPath Patch (a Parameters resource) is not supported.</summary>
    public const string MediaType = "application/json-patch+json";

    private static readonly string[] Operations = ["add", "remove", "replace", "move", "copy", "test"];

    /// <summary>The most operations a patch may hold: a patch is applied while the store's writer waits for it.</summary>
    public const int MaxOperations = 1000;

    /// <summary>How the audit note of a patch that was applied to the record and refused afterwards begins (a test that failed,
    /// an invalid result): nothing was written, but its answer told what the record holds or not, so `vauban breach` counts it
    /// as the record reached (BreachInvestigation).</summary>
    public const string Evaluated = "JSON Patch evaluated against the record, not applied: ";

    private readonly JsonPatchDocument _document;
    private readonly List<(string Op, string Path)> _steps;

    private RecordPatch(JsonPatchDocument document, List<(string Op, string Path)> steps)
    {
        _document = document;
        _steps = steps;
    }

    /// <summary>How many operations the patch holds.</summary>
    public int Count => _steps.Count;

    /// <summary>Whether the patch only tests (changes nothing): applied, it is a read of the record, and no version is written.</summary>
    public bool OnlyTests => _steps.TrueForAll(s => s.Op == "test");

    /// <summary>The patch in <paramref name="body"/>, or the issues that make it no JSON Patch document (a 400: nothing is read).</summary>
    public static RecordPatch? Parse(JsonElement body, out IReadOnlyList<Issue> issues)
    {
        var found = new List<Issue>();
        issues = found;
        if (body.ValueKind != JsonValueKind.Array)
        {
            found.Add(Issue.Invalid("A JSON Patch document is an array of operations, e.g. [{\"op\": \"replace\", \"path\": \"/status\", \"value\": \"cancelled\"}]."));
            return null;
        }
        if (body.GetArrayLength() == 0)
        {
            found.Add(Issue.Invalid("The JSON Patch document holds no operation."));
            return null;
        }
        if (body.GetArrayLength() > MaxOperations)
        {
            found.Add(Issue.Error("too-costly", $"The JSON Patch document holds {body.GetArrayLength():N0} operations; a patch holds at most {MaxOperations:N0} (send several, or update the whole resource)."));
            return null;
        }
        var steps = new List<(string, string)>();
        var index = 0;
        foreach (var operation in body.EnumerateArray())
        {
            var where = $"operation {index + 1}";
            index++;
            if (operation.ValueKind != JsonValueKind.Object)
            {
                found.Add(Issue.Invalid($"{where} is not an object with \"op\" and \"path\"."));
                continue;
            }
            var op = operation.TryGetProperty("op", out var opValue) && opValue.ValueKind == JsonValueKind.String ? opValue.GetString()! : null;
            if (op is null || !Operations.Contains(op, StringComparer.Ordinal))
            {
                found.Add(Issue.Invalid($"{where}: \"op\" is one of {string.Join(", ", Operations)}{(op is null ? "" : $" ('{Shorten(op)}' is not)")}."));
                continue;
            }
            var path = PointerOf(operation, "path", where, found);
            if (path is null) continue;
            if (op is "add" or "replace" or "test" && !operation.TryGetProperty("value", out _))
            {
                found.Add(Issue.Invalid($"{where}: a '{op}' needs a \"value\" (JSON null is a value; an absent one is not)."));
                continue;
            }
            if (op is "move" or "copy")
            {
                if (PointerOf(operation, "from", where, found) is not { } from) continue;
                if (op == "move" && (path == from || path.StartsWith(from + "/", StringComparison.Ordinal)))
                {
                    found.Add(Issue.Invalid($"{where}: a 'move' cannot move {Shorten(from)} into itself ({Shorten(path)})."));
                    continue;
                }
            }
            steps.Add((op, path));
        }
        if (found.Count > 0) return null;
        JsonPatchDocument? document;
        try
        {
            document = body.Deserialize<JsonPatchDocument>();
        }
        catch (JsonException)
        {
            document = null;
        }
        if (document is null || document.Operations.Count != steps.Count)
        {
            found.Add(Issue.Invalid("The JSON Patch document could not be read as RFC 6902 operations."));
            return null;
        }
        return new RecordPatch(document, steps);
    }

    /// <summary>A JSON Pointer member of an operation ("path", "from"): a string that is empty or starts with '/'; the empty pointer
    /// (the whole resource) is refused, since replacing the whole resource is an update (PUT).</summary>
    private static string? PointerOf(JsonElement operation, string member, string where, List<Issue> found)
    {
        if (!operation.TryGetProperty(member, out var value) || value.ValueKind != JsonValueKind.String)
        {
            found.Add(Issue.Invalid($"{where}: \"{member}\" is a JSON Pointer string, e.g. \"/status\"."));
            return null;
        }
        var pointer = value.GetString()!;
        if (pointer.Length == 0)
        {
            found.Add(Issue.Invalid($"{where}: \"{member}\" is \"\", the whole resource: to replace a whole resource, update it (PUT)."));
            return null;
        }
        if (pointer[0] != '/')
        {
            found.Add(Issue.Invalid($"{where}: \"{member}\" '{Shorten(pointer)}' is not a JSON Pointer: it starts with '/' (\"/{Shorten(pointer)}\")."));
            return null;
        }
        return pointer;
    }

    /// <summary>The patch applied to <paramref name="resource"/> (parsed anew: the bytes are left as they are), or null with the
    /// reason (a 422). The reason names the operation and its path, never the value found there: a failed test would otherwise
    /// quote the record back. The operations are applied one at a time so that each copy is weighed before it is made: a copy
    /// of a member into itself doubles it, and forty of them in a document of a few kilobytes would ask for terabytes. The
    /// result is measured once, at the end.
    /// </summary>
    /// <param name="maxBytes">The largest resource this server stores (the limit of an update's body).</param>
    public JsonNode? Apply(ReadOnlySpan<byte> resource, long maxBytes, out Issue? failure)
    {
        var node = JsonNode.Parse(resource)!;
        // What copies have added, counted by the size of each value copied (measured alone, never the whole resource again):
        // the only operation that makes the resource grow beyond the document's own values.
        long copied = resource.Length;
        for (var at = 0; at < _document.Operations.Count; at++)
        {
            var (op, _) = _steps[at];
            if (op == "copy" && At(node, _document.Operations[at].from) is { } source && (copied += SizeOf(source)) > maxBytes)
            {
                failure = TooLarge(at, maxBytes);
                return null;
            }
            try
            {
                new JsonPatchDocument([_document.Operations[at]], JsonSerializerOptions.Default).ApplyTo(node);
            }
            catch (Exception e) when (e is not (OperationCanceledException or OutOfMemoryException))
            {
                failure = Issue.Error("processing", Failed(at));
                return null;
            }
        }
        if (SizeOf(node) > maxBytes)
        {
            failure = TooLarge(_steps.Count - 1, maxBytes);
            return null;
        }
        failure = null;
        return node;
    }

    private Issue TooLarge(int at, long maxBytes) => Issue.Error("too-costly",
        $"Operation {at + 1} ({_steps[at].Op} {Shorten(_steps[at].Path)}) makes the resource larger than the configured limit of {maxBytes / 1024} KiB for one resource. Nothing was changed.");

    /// <summary>The element a JSON Pointer (RFC 6901) names in <paramref name="node"/>, or null when it names none.</summary>
    private static JsonNode? At(JsonNode node, string? pointer)
    {
        if (string.IsNullOrEmpty(pointer)) return node;
        JsonNode? here = node;
        foreach (var raw in pointer[1..].Split('/'))
        {
            var token = raw.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            here = here switch
            {
                JsonObject o => o.TryGetPropertyValue(token, out var child) ? child : null,
                JsonArray a => int.TryParse(token, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i) && i < a.Count ? a[i] : null,
                _ => null,
            };
            if (here is null) return null;
        }
        return here;
    }

    /// <summary>The size of <paramref name="node"/> as JSON, counted without keeping the text.</summary>
    private static long SizeOf(JsonNode node)
    {
        using var counter = new CountingStream();
        using (var writer = new Utf8JsonWriter(counter)) node.WriteTo(writer);
        return counter.Length;
    }

    /// <summary>A stream that only counts what is written to it.</summary>
    private sealed class CountingStream : Stream
    {
        private long _length;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
    }

    /// <summary>Why operation <paramref name="at"/> failed, by its operation and path alone.</summary>
    private string Failed(int at)
    {
        var (op, path) = _steps[at];
        var what = $"Operation {at + 1} ({op} {Shorten(path)})";
        return op switch
        {
            "test" => $"{what} failed: the current version does not hold that value there. Nothing was changed.",
            "move" or "copy" => $"{what} could not be applied to the current version: its \"from\" names nothing there, or its path leads nowhere it can be written. Nothing was changed.",
            "add" => $"{what} could not be applied to the current version: the path's parent is not there, or its array index is beyond the end. Nothing was changed.",
            _ => $"{what} could not be applied to the current version: nothing is there to {op}. Nothing was changed.",
        };
    }

    private static string Shorten(string text) => RecordsService.Shorten(text, 80);
}
