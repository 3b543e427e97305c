// FHIR Bulk Data Access (v2) over the records service:
//   GET    /fhir/$export, /fhir/Patient/$export   kick-off (Prefer: respond-async; _type, _since, _outputFormat) → 202 + Content-Location
//   GET    /fhir/$export-status/{job}             202 (X-Progress, Retry-After) while awaiting approval; 200 + manifest when ready
//   DELETE /fhir/$export-status/{job}             cancels (forgets) the job
//   GET    /fhir/$export-file/{job}/{Type}.ndjson one file, generated now through the records service (same token, same principal)
//   GET    /fhir/Group/{id}/$export               400 (not built);  any other method on these paths: 405, with Allow
// A job, its status and its files are its principal's only: anyone else gets 404. A bulk export needs
// X-Vauban-Reason; above the establishment's size threshold it waits for a second person (ExportApprovals).
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web;

internal static class BulkExportEndpoints
{
    private static readonly string[] OutputFormats = ["application/fhir+ndjson", "application/ndjson", "ndjson"];
    private static readonly string[] Parameters = ["_outputFormat", "_type", "_since", "_format", "_pretty"];

    public static void MapBulkExport(this IEndpointRouteBuilder app, VaubanStore store, RouteGroupBuilder fhir)
    {
        var records = store.Records;
        // Statement lambdas: an expression-bodied one taking only HttpContext would bind as a RequestDelegate and drop the result.
        fhir.MapGet("/$export", async (HttpContext http) => { return await KickOffAsync(http, records, ExportLevel.System); });
        fhir.MapGet("/Patient/$export", async (HttpContext http) => { return await KickOffAsync(http, records, ExportLevel.Patient); });
        // What is not built is said so, rather than answered as a create of type "$export" or an unknown endpoint.
        fhir.MapGet("/Group/{id}/$export", () => FhirHttp.Outcome(400, Issue.NotSupported(
            "Group-level export is not supported: export at system level ([base]/$export) or Patient level ([base]/Patient/$export).")));
        foreach (var kickOff in new[] { "/$export", "/Patient/$export" })
        {
            fhir.MapOtherMethods(kickOff, [HttpMethods.Get],
                "A bulk export is kicked off with GET, its parameters in the query string (POST with a Parameters body is not supported); it is followed at the Content-Location the kick-off answers.");
        }

        fhir.MapGet("/$export-status/{job}", async (HttpContext http, string job) =>
        {
            var outcome = await records.ExportStatusAsync(http.Access(), job, http.RequestAborted);
            if (outcome.Status != RecordStatus.Ok) return FhirHttp.Failure(outcome.Status, outcome.Issues);
            var found = outcome.Job!;
            switch (found.Status)
            {
                case ExportStatus.AwaitingApproval:
                    http.Response.Headers["X-Progress"] = "awaiting approval by the security officer";
                    http.Response.Headers.RetryAfter = "60";
                    return new FhirResult(202, FhirJson.OperationOutcome([Issue.Information(
                        $"This export ({Counted.En(found.Patients, "patient", "patients")}, {Counted.En(found.Resources, "resource", "resources")}) is above the establishment's threshold and waits for the security officer's approval.")]));
                case ExportStatus.Denied:
                    return FhirHttp.Outcome(403, Issue.Error("business-rule", "The security officer denied this export. Nothing was exported."));
                default:
                    http.Response.Headers.Expires = found.ExpiresAt.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
                    // Bulk Data Access: the complete status is a JSON object, not a FHIR resource, served as application/json.
                    return Results.Bytes(Manifest(found, outcome.Files!, FhirHttp.BaseUrl(http)), "application/json");
            }
        });

        fhir.MapOtherMethods("/$export-status/{job}", [HttpMethods.Get, HttpMethods.Delete],
            "An export's status is read with GET, and the export cancelled with DELETE.");

        fhir.MapDelete("/$export-status/{job}", async (HttpContext http, string job) =>
        {
            var outcome = await records.CancelExportAsync(http.Access(), job, http.RequestAborted);
            return outcome.Status == RecordStatus.NoContent
                ? new FhirResult(202, FhirJson.OperationOutcome([Issue.Information("The export job was cancelled and forgotten.")]))
                : FhirHttp.Failure(outcome.Status, outcome.Issues);
        });

        // Files are NDJSON, not FHIR JSON: outside the group's format check, behind the same authentication.
        var files = app.MapGroup("/fhir").RequireBearer(store.Clients).DisableAntiforgery();
        files.MapGet("/$export-file/{job}/{file}", async (HttpContext http, string job, string file) =>
        {
            const string suffix = ".ndjson";
            if (!file.EndsWith(suffix, StringComparison.Ordinal)) return FhirHttp.Outcome(404, Issue.NotFound("No such export file."));
            var download = await records.ExportFileAsync(http.Access(), job, file[..^suffix.Length], http.RequestAborted);
            if (download.Status != RecordStatus.Ok) return FhirHttp.Failure(download.Status, download.Issues);
            return new NdjsonResult(download.WriteAsync!);
        });
    }

    private static async Task<IResult> KickOffAsync(HttpContext http, RecordsService records, ExportLevel level)
    {
        var prefer = http.Request.Headers["Prefer"].ToString();
        if (!prefer.Split(',', ';').Any(p => p.Trim().Equals("respond-async", StringComparison.OrdinalIgnoreCase)))
            return FhirHttp.Outcome(400, Issue.Invalid("A bulk export is asynchronous: send 'Prefer: respond-async'."));
        foreach (var key in http.Request.Query.Keys)
        {
            if (!Parameters.Contains(key, StringComparer.Ordinal))
                return FhirHttp.Outcome(400, Issue.NotSupported($"The $export parameter '{Shorten(key)}' is not supported (supported: _type, _since, _outputFormat)."));
        }
        foreach (var format in http.Request.Query["_outputFormat"])
        {
            // An unescaped '+' in the query string arrives as a space: "application/fhir ndjson" is the same request.
            if (!OutputFormats.Contains(format?.Replace(' ', '+'), StringComparer.Ordinal))
                return FhirHttp.Outcome(400, Issue.Invalid("_outputFormat: only application/fhir+ndjson is produced.", "_outputFormat"));
        }
        List<string>? types = null;
        if (http.Request.Query.TryGetValue("_type", out var typeValues))
        {
            types = [];
            foreach (var part in typeValues.SelectMany(v => (v ?? "").Split(',')))
            {
                var type = part.Trim();
                if (type.Length == 0) return FhirHttp.Outcome(400, Issue.Invalid("_type is a comma-separated list of resource types, none empty.", "_type"));
                types.Add(type);
            }
        }
        long? since = null;
        if (http.Request.Query.TryGetValue("_since", out var sinceValues))
        {
            if (sinceValues.Count != 1 || !FhirDate.TryParseInstant(sinceValues.ToString(), out var s))
                return FhirHttp.Outcome(400, Issue.Invalid($"_since is one instant: {FhirDate.InstantExample}.", "_since"));
            since = s;
        }
        var outcome = await records.ExportAsync(http.Access(), level, types, since, FhirEndpoints.SelfUrl(http), http.RequestAborted);
        // Bulk Data: a server that will not start another export before one in progress ends answers 429 with Retry-After.
        if (outcome.Status == RecordStatus.TooManyRequests) http.Response.Headers.RetryAfter = "60";
        if (outcome.Status != RecordStatus.Ok) return FhirHttp.Failure(outcome.Status, outcome.Issues);
        var job = outcome.Job!;
        http.Response.Headers.ContentLocation = $"{FhirHttp.BaseUrl(http)}/$export-status/{job.Id}";
        return new FhirResult(202, FhirJson.OperationOutcome([Issue.Information(job.Status == ExportStatus.AwaitingApproval
            ? $"Accepted: {Counted.En(job.Patients, "patient", "patients")}, {Counted.En(job.Resources, "resource", "resources")}. Above the establishment's threshold: the export waits for the security officer's approval. Poll the Content-Location."
            : $"Accepted: {Counted.En(job.Patients, "patient", "patients")}, {Counted.En(job.Resources, "resource", "resources")}. Poll the Content-Location for the manifest.")]));
    }

    private static byte[] Manifest(ExportJob job, IReadOnlyList<ExportFile> files, string baseUrl) => FhirJson.Write(writer =>
    {
        writer.WriteStartObject();
        writer.WriteString("transactionTime", FhirInstant.Format(job.TransactionTime));
        writer.WriteString("request", job.RequestUrl);
        writer.WriteBoolean("requiresAccessToken", true);
        writer.WriteStartArray("output");
        foreach (var file in files)
        {
            writer.WriteStartObject();
            writer.WriteString("type", file.Type);
            writer.WriteString("url", $"{baseUrl}/$export-file/{job.Id}/{file.Type}.ndjson");
            writer.WriteNumber("count", file.Count);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteStartArray("error");
        writer.WriteEndArray();
        writer.WriteEndObject();
    });

    private static string Shorten(string value) => value.Length <= 64 ? value : value[..64] + "…";

    /// <summary>An NDJSON body written as it is generated (each part audited before it is written). A file stopped before its
    /// end aborts the answer: a chunked body that ended cleanly would pass for the whole file.</summary>
    private sealed class NdjsonResult(Func<Stream, CancellationToken, Task<bool>> write) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = 200;
            httpContext.Response.ContentType = "application/fhir+ndjson";
            if (!await write(httpContext.Response.Body, httpContext.RequestAborted)) httpContext.Abort();
        }
    }
}
