// The FHIR R4 REST API at /fhir. Each endpoint reads the request, calls the records service with the
// caller's access context, and writes the outcome. No endpoint touches storage.
using System.Globalization;
using System.Text.Json;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web;

internal static class FhirEndpoints
{
    public static void MapFhir(this IEndpointRouteBuilder app, VaubanStore store, FhirOptions options)
    {
        var records = store.Records;
        // R4 capabilities: mode=full (the default) is the CapabilityStatement; mode=normative and mode=terminology ask for documents
        // this server does not make, which it says rather than answer with the full statement as if it were one.
        app.MapGet("/fhir/metadata", (HttpContext http) =>
            FhirHttp.CheckFormat(http) ?? (http.Request.Query["mode"].ToString() is "" or "full"
                ? new FhirResult(200, CapabilityStatementJson.Build(FhirHttp.BaseUrl(http), Program.Version))
                : FhirHttp.Outcome(400, Issue.NotSupported("metadata's mode may be 'full' (the CapabilityStatement, the default); 'normative' and 'terminology' (TerminologyCapabilities) are not supported."))));
        // Public as its GET is: the 405 tells nothing a GET of it does not.
        app.MapOtherMethods("/fhir/metadata", [HttpMethods.Get],
            "The CapabilityStatement ([base]/metadata) is read with GET; it is not created, changed or deleted.");

        var fhir = app.MapGroup("/fhir").RequireBearer(store.Clients).DisableAntiforgery();
        fhir.AddEndpointFilter(async (invocation, next) => FhirHttp.CheckFormat(invocation.HttpContext) ?? await next(invocation));
        fhir.MapAuditEvents(store);
        app.MapBulkExport(store, fhir);

        // What R4 defines at the server's level and this server does not support, said so rather than read as a type named
        // "_history" or "_search" (404 "not a supported resource type", or 415 for a form posted to _search).
        fhir.MapGet("/_history", () => FhirHttp.Outcome(404, Issue.NotSupported(
            "The history of the whole server (GET [base]/_history) is not supported: ask a type's (GET [base]/[type]/_history) or a record's (GET [base]/[type]/[id]/_history).")));
        fhir.MapMethods("/_search", [HttpMethods.Get, HttpMethods.Post], () => FhirHttp.Outcome(404, Issue.NotSupported(
            "A search across all types ([base]/_search) is not supported: search one type (GET [base]/[type]?… or POST [base]/[type]/_search).")));
        // Their other methods are no interaction at all (they read as a create, update or delete of a type "_history" or "_search").
        fhir.MapOtherMethods("/_history", [HttpMethods.Get],
            "[base]/_history is the history of the whole server, asked with GET (and not supported here: ask a type's or a record's); nothing is written there.");
        fhir.MapOtherMethods("/_search", [HttpMethods.Get, HttpMethods.Post],
            "[base]/_search is a search across all types, asked with GET or POST (and not supported here: search one type); nothing is written there.");
        fhir.MapOtherMethods("/{type}/_history", [HttpMethods.Get],
            "[base]/[type]/_history is the type's history, read with GET; nothing is written there (it was read as a write of a record with the id \"_history\").");

        fhir.MapGet("/{type}/{id}", async (HttpContext http, string type, string id) =>
        {
            // Patient/$everything and other operations at the type level: no id starts with $, so this names an operation (said before
            // its parameters are, which a read would refuse as a read's).
            if (id.StartsWith('$') && id.Length <= 64 && id.Skip(1).All(char.IsAsciiLetterOrDigit))
            {
                return FhirHttp.Outcome(404, Issue.NotSupported($"The operation {id} is not supported on a type ([base]/[type]/{id})"
                    + (id == "$everything" ? ": ask it of one patient, GET [base]/Patient/[id]/$everything." : ".")));
            }
            if (FhirHttp.RefuseQuery(http, "a read", subsets: true) is { } refusal) return refusal;
            var subset = FhirHttp.Subset(http, type, out var badSubset);
            if (badSubset is not null) return badSubset;
            var result = await records.ReadAsync(http.Access(), type, id, http.RequestAborted);
            return result.Status == RecordStatus.Ok ? FhirHttp.NotModified(http, result) ?? FhirHttp.Resource(ResourceSubset.Cut(result, subset), 200, http) : FhirHttp.Failure(result);
        });

        fhir.MapGet("/{type}/{id}/_history/{version}", async (HttpContext http, string type, string id, string version) =>
        {
            if (FhirHttp.RefuseQuery(http, "a vread", subsets: true) is { } refusal) return refusal;
            var subset = FhirHttp.Subset(http, type, out var badSubset);
            if (badSubset is not null) return badSubset;
            if (!IdRules.TryParseVersion(version, out var v))
                return FhirHttp.Outcome(404, Issue.NotFound("A version id is a positive whole number without leading zeros."));
            var result = await records.VReadAsync(http.Access(), type, id, v, http.RequestAborted);
            return result.Status == RecordStatus.Ok ? FhirHttp.Resource(ResourceSubset.Cut(result, subset), 200, http) : FhirHttp.Failure(result);
        });

        fhir.MapPost("/{type}", async (HttpContext http, string type) =>
        {
            if (FhirHttp.RefuseQuery(http, "a create") is { } refusal) return refusal;
            if (FhirHttp.RefuseUnevaluatedPrecondition(http, create: true) is { } precondition) return precondition;
            var (document, error) = await FhirHttp.ReadBodyAsync(http, options.MaxResourceBytes, http.RequestAborted);
            if (error is not null) return error;
            using (document)
            {
                string? ifNoneExist = null;
                if (http.Request.Headers.TryGetValue("If-None-Exist", out var condition))
                {
                    ifNoneExist = condition.ToString();
                    // Present but empty, the client meant a conditional create: creating unconditionally could file a duplicate.
                    if (string.IsNullOrWhiteSpace(ifNoneExist))
                        return FhirHttp.Outcome(400, Issue.Invalid("If-None-Exist must hold search parameters, e.g. identifier=urn:oid:1.2.250.1.213.1.4.8|<NIR>."));
                }
                var result = await records.CreateAsync(http.Access(), type, document!.RootElement, ifNoneExist, http.RequestAborted);
                return result.Status switch
                {
                    RecordStatus.Created => FhirHttp.Resource(result, 201, http),
                    RecordStatus.Ok => FhirHttp.Resource(result, 200, http),
                    _ => FhirHttp.Failure(result),
                };
            }
        });

        fhir.MapPut("/{type}/{id}", (HttpContext http, string type, string id) => FhirHttp.RefuseQuery(http, "an update by id") is { } refusal
            ? Task.FromResult(refusal)
            : UpdateAsync(http, options, (resource, ifMatch) => records.UpdateAsync(http.Access(), type, id, resource, ifMatch, http.RequestAborted)));

        fhir.MapPatch("/{type}/{id}", (HttpContext http, string type, string id) => FhirHttp.RefuseQuery(http, "a patch") is { } refusal
            ? Task.FromResult(refusal)
            : PatchAsync(http, options, (patch, ifMatch) => records.PatchAsync(http.Access(), type, id, patch, ifMatch, options.MaxResourceBytes, http.RequestAborted)));

        fhir.MapPatch("/{type}", (HttpContext http, string type) => Criteria(http) is { } criteria
            ? PatchAsync(http, options, (patch, ifMatch) => records.ConditionalPatchAsync(http.Access(), type, criteria, patch, ifMatch, options.MaxResourceBytes, http.RequestAborted))
            : Task.FromResult(FhirHttp.Outcome(400, Issue.Invalid("PATCH [base]/[type] is a conditional patch: give the search criteria that find the record as the query "
                + "(e.g. ?identifier=system|value), or PATCH [base]/[type]/[id]."))));

        fhir.MapDelete("/{type}/{id}", (HttpContext http, string type, string id) => FhirHttp.RefuseQuery(http, "a delete by id") is { } refusal
            ? Task.FromResult(refusal)
            : DeleteAsync(http, ifMatch => records.DeleteAsync(http.Access(), type, id, ifMatch, http.RequestAborted)));

        // Conditional update and delete (FHIR R4 http.html): the query's search criteria name the record instead of an id.
        fhir.MapPut("/{type}", (HttpContext http, string type) => Criteria(http) is { } criteria
            ? UpdateAsync(http, options, (resource, ifMatch) => records.ConditionalUpdateAsync(http.Access(), type, criteria, resource, ifMatch, http.RequestAborted))
            : Task.FromResult(FhirHttp.Outcome(400, Issue.Invalid("PUT [base]/[type] is a conditional update: give the search criteria that find the record as the query "
                + "(e.g. ?identifier=system|value), or PUT [base]/[type]/[id]."))));

        fhir.MapDelete("/{type}", (HttpContext http, string type) => Criteria(http) is { } criteria
            ? DeleteAsync(http, ifMatch => records.ConditionalDeleteAsync(http.Access(), type, criteria, ifMatch, http.RequestAborted))
            : Task.FromResult(FhirHttp.Outcome(400, Issue.Invalid("DELETE [base]/[type] is a conditional delete: give the search criteria that find the record as the query "
                + "(e.g. ?identifier=system|value), or DELETE [base]/[type]/[id]."))));

        fhir.MapGet("/{type}", (HttpContext http, string type) => SearchAsync(http, records, type, Query(http)));

        // R4 searches by GET [base]/[type]?parameters or POST [base]/[type]/_search: a GET of _search was taken for a read of a
        // record with the id "_search", and its parameters refused as parameters of a read (a PUT or DELETE, for a write of it).
        fhir.MapOtherMethods("/{type}/_search", [HttpMethods.Post],
            "[base]/[type]/_search takes POST with the parameters as a form body (application/x-www-form-urlencoded); to search by GET, send GET [base]/[type]?parameters.");

        fhir.MapPost("/{type}/_search", async (HttpContext http, string type) =>
        {
            if (!http.Request.HasFormContentType)
                return FhirHttp.Outcome(415, Issue.Error("not-supported", "POST _search takes application/x-www-form-urlencoded parameters."));
            var (form, refusal) = await http.Request.ReadFormOrRefusalAsync(http.RequestAborted);
            if (form is null) return FhirHttp.Outcome(400, Issue.Invalid($"The POST _search form body {refusal}."));
            if (FhirHttp.PrettyRefusal(form)) return FhirHttp.PrettyRefused();
            var parameters = Query(http).Concat(form.SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? "")))).ToList();
            return await SearchAsync(http, records, type, parameters);
        });

        fhir.MapGet("/{type}/_history", async (HttpContext http, string type) =>
            await HistoryAsync(http, records, type, null));

        fhir.MapGet("/{type}/{id}/_history", async (HttpContext http, string type, string id) =>
            await HistoryAsync(http, records, type, id));

        fhir.MapGet("/Patient/{id}/$everything", (HttpContext http, string id) => EverythingAsync(http, records, id, Query(http)));

        // R4 operations may be invoked by POST, their parameters in a Parameters resource (or none, with an empty body).
        fhir.MapPost("/Patient/{id}/$everything", async (HttpContext http, string id) =>
        {
            var parameters = Query(http);
            if (http.Request.ContentLength != 0)
            {
                var (document, error) = await FhirHttp.ReadBodyAsync(http, options.MaxResourceBytes, http.RequestAborted);
                if (error is not null) return error;
                using (document)
                {
                    if (OperationParameters(document!.RootElement) is not { } given)
                        return FhirHttp.Outcome(400, Issue.Invalid("The body of POST $everything must be a Parameters resource whose parameters each have a name and "
                            + "one primitive value, e.g. { \"name\": \"_since\", \"valueInstant\": \"2026-01-01T00:00:00Z\" }."));
                    parameters.AddRange(given);
                }
            }
            return await EverythingAsync(http, records, id, parameters);
        });

        async Task<IResult> EverythingAsync(HttpContext http, RecordsService records, string id, List<KeyValuePair<string, string>> parameters)
        {
            var token = parameters.FirstOrDefault(p => p.Key == "_page").Value;
            var page = await records.EverythingAsync(http.Access(), id, parameters, token, Lenient(http), http.RequestAborted);
            if (page.Status != RecordStatus.Ok) return FhirHttp.Failure(page);
            var baseUrl = FhirHttp.BaseUrl(http);
            var path = $"{baseUrl}/Patient/{Uri.EscapeDataString(id)}/$everything";
            return new FhirResult(200, FhirJson.SearchSet(page, baseUrl, FhirJson.PageLink(path, page.ThisPage)!, FhirJson.PageLink(path, page.NextPage), FhirHttp.Now(http)));
        }

        // Break-the-glass over FHIR, for a signed-in person (the clinician UI has the same form):
        // Parameters { reason: code from the list, text: string }. Needs a fresh second-factor proof.
        fhir.MapPost("/Patient/{id}/$break-the-glass", async (HttpContext http, string id) =>
        {
            var (document, error) = await FhirHttp.ReadBodyAsync(http, options.MaxResourceBytes, http.RequestAborted);
            if (error is not null) return error;
            using (document)
            {
                var body = document!.RootElement;
                if (!body.TryGetProperty("resourceType", out var resourceType) || resourceType.ValueKind != System.Text.Json.JsonValueKind.String || resourceType.GetString() != "Parameters")
                {
                    return FhirHttp.Outcome(400, Issue.Invalid("The body must be a Parameters resource with 'reason' (valueCode) and 'text' (valueString)."));
                }
                var reason = ParameterValue(body, "reason", "valueCode");
                var text = ParameterValue(body, "text", "valueString");
                var result = await store.BreakTheGlass.OpenAsync(http.Access(), id, reason, text, http.RequestAborted);
                switch (result.Status)
                {
                    case BreakGlassStatus.Granted:
                        return new FhirResult(200, FhirJson.Write(writer =>
                        {
                            writer.WriteStartObject();
                            writer.WriteString("resourceType", "Parameters");
                            writer.WriteStartArray("parameter");
                            writer.WriteStartObject();
                            writer.WriteString("name", "patient");
                            writer.WriteStartObject("valueReference");
                            writer.WriteString("reference", "Patient/" + result.Grant!.Patient);
                            writer.WriteEndObject();
                            writer.WriteEndObject();
                            writer.WriteStartObject();
                            writer.WriteString("name", "expires");
                            writer.WriteString("valueInstant", FhirInstant.Format(result.Grant.ExpiresAt.ToUnixTimeMilliseconds()));
                            writer.WriteEndObject();
                            writer.WriteEndArray();
                            writer.WriteEndObject();
                        }));
                    case BreakGlassStatus.ReauthenticationRequired:
                        // RFC 9470 step-up: the session is valid but its second-factor proof is too old.
                        http.Response.Headers.WWWAuthenticate = $"Bearer error=\"insufficient_user_authentication\", max_age={(int)store.Policy.Options.ReauthenticationMaxAge.TotalSeconds}";
                        return FhirHttp.Outcome(401, Issue.Error("login", result.Message));
                    case BreakGlassStatus.NotAllowed:
                        return FhirHttp.Outcome(403, Issue.Forbidden(result.Message));
                    case BreakGlassStatus.PatientNotFound:
                        return FhirHttp.Outcome(404, Issue.NotFound(result.Message));
                    default:
                        return FhirHttp.Outcome(400, Issue.Invalid(result.Message));
                }
            }
        });

        fhir.MapPost("/", async (HttpContext http) =>
        {
            if (FhirHttp.RefuseQuery(http, "a batch or transaction") is { } refusal) return refusal;
            var (document, error) = await FhirHttp.ReadBodyAsync(http, options.MaxBundleBytes, http.RequestAborted);
            if (error is not null) return error;
            using (document)
            {
                var preference = FhirHttp.ReturnPreference(http);
                var (status, body) = await records.ProcessBundleAsync(http.Access(), document!.RootElement, FhirHttp.BaseUrl(http), http.RequestAborted,
                    // As the exception handler logs: the type and where it came from, not the message (it may quote data).
                    error => http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Vauban.Errors").LogError(
                        "Unexpected {ExceptionType} at {Site} in a batch entry (correlation {CorrelationId})",
                        error.GetType().Name, error.TargetSite?.DeclaringType?.Name + "." + error.TargetSite?.Name, http.TraceIdentifier),
                    options.MaxResourceBytes, preference);
                if (status == 200 && preference is not null) http.Response.Headers["Preference-Applied"] = "return=" + preference;
                return FhirHttp.Bundle(status, body);
            }
        });
    }

    /// <summary>An operation's Parameters resource as name and value pairs, as the query string gives them (a number written as JSON
    /// writes it); null when the body is not a Parameters resource of named primitive values.</summary>
    private static List<KeyValuePair<string, string>>? OperationParameters(System.Text.Json.JsonElement body)
    {
        if (body.ValueKind != System.Text.Json.JsonValueKind.Object || !body.TryGetProperty("resourceType", out var type) || !type.ValueEquals("Parameters")) return null;
        var pairs = new List<KeyValuePair<string, string>>();
        if (!body.TryGetProperty("parameter", out var list)) return pairs;
        if (list.ValueKind != System.Text.Json.JsonValueKind.Array) return null;
        foreach (var parameter in list.EnumerateArray())
        {
            if (parameter.ValueKind != System.Text.Json.JsonValueKind.Object || !parameter.TryGetProperty("name", out var name) || name.ValueKind != System.Text.Json.JsonValueKind.String)
                return null;
            string? value = null;
            foreach (var property in parameter.EnumerateObject())
            {
                if (property.Name == "name") continue;
                if (value is not null || !property.Name.StartsWith("value", StringComparison.Ordinal)
                    || property.Value.ValueKind is not (System.Text.Json.JsonValueKind.String or System.Text.Json.JsonValueKind.Number)) return null;
                value = property.Value.ValueKind == System.Text.Json.JsonValueKind.String ? property.Value.GetString()! : property.Value.GetRawText();
            }
            if (value is null) return null;
            pairs.Add(new KeyValuePair<string, string>(name.GetString()!, value));
        }
        return pairs;
    }

    private static string? ParameterValue(System.Text.Json.JsonElement parameters, string name, string valueElement)
    {
        if (!parameters.TryGetProperty("parameter", out var list) || list.ValueKind != System.Text.Json.JsonValueKind.Array) return null;
        foreach (var parameter in list.EnumerateArray())
        {
            if (parameter.ValueKind == System.Text.Json.JsonValueKind.Object && parameter.TryGetProperty("name", out var n) && n.ValueKind == System.Text.Json.JsonValueKind.String
                && n.GetString() == name && parameter.TryGetProperty(valueElement, out var value) && value.ValueKind == System.Text.Json.JsonValueKind.String)
            {
                return value.GetString();
            }
        }
        return null;
    }

    private static List<KeyValuePair<string, string>> Query(HttpContext http) =>
        http.Request.Query.SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? ""))).ToList();

    private static readonly Issue IfMatchInvalid = Issue.Invalid("If-Match must be a version ETag such as W/\"3\", or * (the record must exist).");

    /// <summary>An update, by id or by criteria (<paramref name="update"/>): If-Match and the body read, then 201 for a record it
    /// created, 200 for one it changed.</summary>
    private static async Task<IResult> UpdateAsync(HttpContext http, FhirOptions options, Func<JsonElement, int?, Task<RecordResult>> update)
    {
        if (FhirHttp.RefuseUnevaluatedPrecondition(http) is { } precondition) return precondition;
        if (!FhirHttp.TryParseIfMatch(http, out var ifMatch)) return FhirHttp.Outcome(400, IfMatchInvalid);
        var (document, error) = await FhirHttp.ReadBodyAsync(http, options.MaxResourceBytes, http.RequestAborted);
        if (error is not null) return error;
        using (document)
        {
            var result = await update(document!.RootElement, ifMatch);
            return result.Status switch
            {
                RecordStatus.Created => FhirHttp.Resource(result, 201, http),
                RecordStatus.Ok => FhirHttp.Resource(result, 200, http),
                _ => FhirHttp.Failure(result),
            };
        }
    }

    /// <summary>A patch, by id or by criteria (<paramref name="patch"/>): a JSON Patch document, held to a version by If-Match if
    /// given; 200 with the patched resource.</summary>
    private static async Task<IResult> PatchAsync(HttpContext http, FhirOptions options, Func<RecordPatch, int?, Task<RecordResult>> apply)
    {
        if (FhirHttp.RefuseUnevaluatedPrecondition(http) is { } precondition) return precondition;
        if (!FhirHttp.TryParseIfMatch(http, out var ifMatch)) return FhirHttp.Outcome(400, IfMatchInvalid);
        var (document, error) = await FhirHttp.ReadBodyAsync(http, options.MaxResourceBytes, http.RequestAborted, jsonPatch: true);
        if (error is not null) return error;
        using (document)
        {
            if (RecordPatch.Parse(document!.RootElement, out var issues) is not { } patch) return FhirHttp.Outcome(400, [.. issues]);
            var result = await apply(patch, ifMatch);
            return result.Status == RecordStatus.Ok ? FhirHttp.Resource(result, 200, http) : FhirHttp.Failure(result);
        }
    }

    /// <summary>A delete, by id or by criteria (<paramref name="delete"/>): 204, with the deletion's version as ETag when a record was deleted.</summary>
    private static async Task<IResult> DeleteAsync(HttpContext http, Func<int?, Task<RecordResult>> delete)
    {
        if (FhirHttp.RefuseUnevaluatedPrecondition(http) is { } precondition) return precondition;
        if (!FhirHttp.TryParseIfMatch(http, out var ifMatch)) return FhirHttp.Outcome(400, IfMatchInvalid);
        var result = await delete(ifMatch);
        if (result.Status != RecordStatus.NoContent) return FhirHttp.Failure(result);
        if (result.Version > 0) http.Response.Headers.ETag = FhirJson.ETag(result.Version);
        return Results.NoContent();
    }

    /// <summary>A conditional update's or delete's criteria: the request's query as sent (the records service parses it as it
    /// parses If-None-Exist), or null when there is none.</summary>
    private static string? Criteria(HttpContext http) => http.Request.QueryString is { HasValue: true, Value.Length: > 1 } query ? query.Value : null;

    /// <summary>Prefer: handling=lenient — unknown parameters are ignored (and left out of the self link) instead of refused.</summary>
    private static bool Lenient(HttpContext http) => http.Request.Headers["Prefer"].ToString().Contains("handling=lenient", StringComparison.OrdinalIgnoreCase);

    private static async Task<IResult> SearchAsync(HttpContext http, RecordsService records, string type, List<KeyValuePair<string, string>> parameters)
    {
        var page = parameters.FirstOrDefault(p => p.Key == "_page").Value;
        var result = await records.SearchAsync(http.Access(), type, parameters, page, Lenient(http), http.RequestAborted);
        if (result.Status != RecordStatus.Ok) return FhirHttp.Failure(result);
        var baseUrl = FhirHttp.BaseUrl(http);
        // Self and next are sealed tokens (ADR 0003: search values never appear in a URL the server hands out, and a POST
        // _search keeps them out of URLs): self reproduces this page with the parameters the search used, not those a lenient
        // search ignored.
        var path = $"{baseUrl}/{type}";
        return new FhirResult(200, FhirJson.SearchSet(result, baseUrl, FhirJson.PageLink(path, result.ThisPage)!, FhirJson.PageLink(path, result.NextPage), FhirHttp.Now(http)));
    }

    private static async Task<IResult> HistoryAsync(HttpContext http, RecordsService records, string type, string? id)
    {
        foreach (var (key, values) in http.Request.Query)
        {
            if (values.Count > 1 && key is "_since" or "_count" or "_page")
                return FhirHttp.Outcome(400, Issue.Invalid($"{key} is given twice; give it once.", key));
        }
        long? since = null;
        var sinceText = http.Request.Query["_since"].ToString();
        if (sinceText.Length > 0)
        {
            if (!FhirDate.TryParseInstant(sinceText, out var s)) return FhirHttp.Outcome(400, Issue.Invalid($"_since must be {FhirDate.InstantExample}.", "_since"));
            since = s;
        }
        if (PageParameters.Beside(http.Request.Query.Keys) is { } beside) return FhirHttp.Outcome(400, PageParameters.Refusal(beside));
        var count = HistoryCount(http);
        if (count is null) return FhirHttp.Outcome(400, Issue.Invalid("_count must be a non-negative integer.", "_count"));
        foreach (var key in http.Request.Query.Keys)
        {
            if (key is not ("_since" or "_count" or "_page" or "_format" or "_pretty"))
                return FhirHttp.Outcome(400, Issue.Invalid($"Unknown parameter '{key}' for history (supported: _since, _count)."));
        }
        var page = http.Request.Query["_page"].ToString();
        var result = await records.HistoryAsync(http.Access(), type, id, since, count.Value, page.Length == 0 ? null : page, http.RequestAborted);
        if (result.Status != RecordStatus.Ok) return FhirHttp.Failure(result);
        var baseUrl = FhirHttp.BaseUrl(http);
        // As a search's: the tokens carry _count and _since (and next's, the cursor).
        var path = $"{baseUrl}/{type}{(id is null ? "" : "/" + Uri.EscapeDataString(id))}/_history";
        return new FhirResult(200, FhirJson.History(result, baseUrl, FhirJson.PageLink(path, result.ThisPage)!, FhirJson.PageLink(path, result.NextPage), FhirHttp.Now(http)));
    }

    /// <summary>History's page size: 50 unless given; 0 asks for the total alone, as in a search (FHIR R4 search, _count).</summary>
    private static int? HistoryCount(HttpContext http)
    {
        var text = http.Request.Query["_count"].ToString();
        if (text.Length == 0) return 50;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var count) ? count : null;
    }

    internal static string SelfUrl(HttpContext http) => $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}{http.Request.Path}{http.Request.QueryString}";
}

internal sealed record FhirOptions(long MaxResourceBytes, long MaxBundleBytes);
