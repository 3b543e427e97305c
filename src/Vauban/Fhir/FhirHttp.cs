// HTTP plumbing shared by the FHIR endpoints: reading a request body within limits, answering with
// FHIR JSON, and mapping record outcomes to status codes. One place decides each status code.
using System.Text.Json;
using Microsoft.Extensions.Primitives;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web;

internal static class FhirHttp
{
    public static string BaseUrl(HttpContext context) => $"{context.Request.Scheme}://{context.Request.Host}{context.Request.PathBase}/fhir";

    public static IResult Outcome(int status, params Issue[] issues) => new FhirResult(status, FhirJson.OperationOutcome(issues));

    private static readonly string[] Methods = [HttpMethods.Get, HttpMethods.Post, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete, HttpMethods.Options];

    /// <summary>
    /// Answers every method <paramref name="pattern"/> does not take (of GET, POST, PUT, PATCH, DELETE, OPTIONS; a HEAD is a GET here)
    /// with 405, an Allow header naming <paramref name="allowed"/> (RFC 9110) and an OperationOutcome saying <paramref name="message"/>.
    /// A fixed path (metadata, _history, $export…) left to routing is matched by the [type] and [type]/[id] routes for the methods it
    /// does not map: DELETE [base]/metadata?x=y was a conditional delete of a type "metadata" (404), and routing's own 405 named the
    /// methods of those routes in its Allow.
    /// </summary>
    public static RouteHandlerBuilder MapOtherMethods(this IEndpointRouteBuilder routes, string pattern, string[] allowed, string message) =>
        routes.MapMethods(pattern, [.. Methods.Except(allowed, StringComparer.Ordinal)], (Func<HttpContext, IResult>)(http => MethodNotAllowed(http, allowed, message)));

    /// <summary>405 for a method the path does not take: Allow names those it does, the OperationOutcome what the path is for.</summary>
    public static IResult MethodNotAllowed(HttpContext context, string[] allowed, string message)
    {
        context.Response.Headers.Allow = string.Join(", ", allowed);
        return Outcome(StatusCodes.Status405MethodNotAllowed, Issue.NotSupported(message));
    }

    public static IResult Resource(RecordResult result, int status, HttpContext context)
    {
        Validators(context, result);
        if (status == StatusCodes.Status201Created)
        {
            context.Response.Headers.Location = $"{BaseUrl(context)}/{result.Type}/{result.Id}/_history/{result.Version}";
        }
        // R4 "Managing Return Content": a create or update answered as the client prefers — no body, or an OperationOutcome
        // instead of the resource (which holds, for a Patient, a whole identity the client did not ask to get back).
        if (!HttpMethods.IsGet(context.Request.Method) && ReturnPreference(context) is { } preference)
        {
            context.Response.Headers["Preference-Applied"] = "return=" + preference;
            if (preference == "minimal") return new FhirResult(status, []);
            if (preference == "OperationOutcome")
                return new FhirResult(status, FhirJson.OperationOutcome([Issue.Information(
                    $"{(status == StatusCodes.Status201Created ? "Created" : "Updated")} {result.Type}/{result.Id}, version {result.Version}.")]));
        }
        return new FhirResult(status, result.Json!);
    }

    /// <summary>R4 conditional read (http.html, "cread"), by RFC 9110's rules: If-None-Match naming the current version (W/"3",
    /// "3", or * — the record exists) answers 304 with the validators and no body; without If-None-Match, If-Modified-Since at or
    /// after the last update does. Null when the read is to be answered with the record. The read itself was authorized, guarded
    /// and audited as any read: the client holds the version it names.</summary>
    public static IResult? NotModified(HttpContext context, RecordResult result)
    {
        var headers = context.Request.Headers;
        bool unchanged;
        if (headers.TryGetValue("If-None-Match", out var tags))
        {
            unchanged = tags.ToString().Split(',', StringSplitOptions.TrimEntries)
                .Any(tag => FhirJson.TryParseIfMatch(tag, out var version) && (version == FhirJson.AnyCurrentVersion || version == result.Version));
        }
        else if (DateTimeOffset.TryParseExact(headers.IfModifiedSince.ToString(), "R", System.Globalization.CultureInfo.InvariantCulture,
                     System.Globalization.DateTimeStyles.AssumeUniversal, out var since))
        {
            // HTTP dates have whole seconds: a record updated within the second named is not newer than it.
            unchanged = result.LastUpdated / 1000 <= since.ToUnixTimeSeconds();
        }
        else return null;
        if (!unchanged) return null;
        Validators(context, result);
        return Results.StatusCode(StatusCodes.Status304NotModified);
    }

    /// <summary>ETag and Last-Modified of the version answered. Kestrel's Date is the second it last refreshed, up to a second
    /// behind: for a version written within the last seconds Date is set to now, since RFC 9110 §8.8.2.1 has no Last-Modified
    /// later than the response's Date (a cache would take it for a clock error).</summary>
    private static void Validators(HttpContext context, RecordResult result)
    {
        context.Response.Headers.ETag = FhirJson.ETag(result.Version);
        context.Response.Headers.LastModified = FhirInstant.Http(result.LastUpdated);
        // The store stamps a version at least a millisecond after the one before, so a burst of writes may stamp one a little
        // ahead of the clock: Date is then the version's own time.
        var now = Now(context).ToUnixTimeMilliseconds();
        if (now - result.LastUpdated < 3000) context.Response.Headers.Date = FhirInstant.Http(Math.Max(now, result.LastUpdated));
    }

    /// <summary>Now by the server's clock (the store's TimeProvider), which stamps the versions and the Bundles a response carries.</summary>
    public static DateTimeOffset Now(HttpContext context) => context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();

    /// <summary>The Prefer header's return= preference (minimal, representation or OperationOutcome), or null.</summary>
    public static string? ReturnPreference(HttpContext context)
    {
        foreach (var header in context.Request.Headers["Prefer"])
        {
            foreach (var part in (header ?? "").Split([',', ';'], StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (part.StartsWith("return=", StringComparison.OrdinalIgnoreCase) && part[7..].Trim('"') is "minimal" or "representation" or "OperationOutcome")
                    return part[7..].Trim('"');
            }
        }
        return null;
    }

    public static IResult Failure(RecordResult result) => Failure(result.Status, result.Issues);

    public static IResult Failure(SearchPage page) => Failure(page.Status, page.Issues);

    /// <summary>The guard's step-up is RFC 9470's: 401 with insufficient_user_authentication; the person proves both factors at /account/reauth.</summary>
    public static FhirResult Failure(RecordStatus status, IReadOnlyList<Issue>? issues) =>
        new FhirResult(RecordStatusCodes.Http(status), FhirJson.OperationOutcome([.. issues ?? []]),
            status == RecordStatus.ReauthenticationRequired ? StepUpChallenge : null);

    /// <summary>A bundle's answer: a transaction that failed with 401 was stopped by the guard's step-up (the one record outcome
    /// answered 401), and carries its challenge as a single read does.</summary>
    public static FhirResult Bundle(int status, byte[] body) =>
        new FhirResult(status, body, status == StatusCodes.Status401Unauthorized ? StepUpChallenge : null);

    private const string StepUpChallenge = "Bearer error=\"insufficient_user_authentication\"";

    /// <summary>Reads and parses a FHIR JSON body: 415 for another media type, 413 above the limit, 400 for what <see cref="FhirJsonInput"/> refuses.</summary>
    /// <param name="jsonPatch">The body is a JSON Patch document (PATCH), whose media type is its own, instead of a FHIR resource.</param>
    public static async Task<(JsonDocument? Document, IResult? Error)> ReadBodyAsync(HttpContext context, long limit, CancellationToken cancellationToken, bool jsonPatch = false)
    {
        var contentType = context.Request.ContentType;
        if (jsonPatch && !MediaTypeOf(contentType).Equals(RecordPatch.MediaType, StringComparison.OrdinalIgnoreCase))
        {
            return (null, Outcome(StatusCodes.Status415UnsupportedMediaType, Issue.Error("not-supported",
                $"A patch is a JSON Patch document (RFC 6902): Content-Type: {RecordPatch.MediaType}. FHIRPath Patch (a Parameters resource) is not supported; to send a whole resource, update it (PUT).")));
        }
        if (!jsonPatch && (contentType is null || !IsJson(contentType)))
        {
            return (null, Outcome(StatusCodes.Status415UnsupportedMediaType,
                Issue.Error("not-supported", "The body must be FHIR JSON: Content-Type: application/fhir+json (or application/json).")));
        }
        if (!jsonPatch && IsOtherFhirVersion(contentType!))
        {
            return (null, Outcome(StatusCodes.Status415UnsupportedMediaType,
                Issue.Error("not-supported", "This server speaks FHIR R4 (fhirVersion=4.0): the body's Content-Type names another version.")));
        }
        if (Charset(contentType!) is { } charset && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
        {
            return (null, Outcome(StatusCodes.Status415UnsupportedMediaType,
                Issue.Error("not-supported", "FHIR JSON is UTF-8: the body must be sent with charset=utf-8 or no charset.")));
        }
        if (context.Request.ContentLength > limit) return (null, TooLarge(limit));
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > limit) return (null, TooLarge(limit));
            buffer.Write(chunk, 0, read);
        }
        if (buffer.Length == 0) return (null, Outcome(StatusCodes.Status400BadRequest, Issue.Invalid("The request body is empty.")));
        var document = FhirJsonInput.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), out var problem);
        return document is null
            ? (null, Outcome(StatusCodes.Status400BadRequest, Issue.Error("structure", "The body is " + problem)))
            : (document, null);
    }

    private static IResult TooLarge(long limit) => Outcome(StatusCodes.Status413PayloadTooLarge,
        Issue.Error("too-costly", $"The request body is larger than the configured limit of {limit / 1024} KiB."));

    /// <summary>The charset parameter of a Content-Type, if any (quotes removed).</summary>
    private static string? Charset(string contentType) => Parameter(contentType, "charset");

    /// <summary>A media type's parameter ("charset", "fhirVersion", "q"), unquoted; null when it has none.</summary>
    private static string? Parameter(string mediaType, string name)
    {
        foreach (var parameter in mediaType.Split(';').Skip(1))
        {
            var pair = parameter.Split('=', 2);
            if (pair.Length == 2 && pair[0].Trim().Equals(name, StringComparison.OrdinalIgnoreCase)) return pair[1].Trim().Trim('"');
        }
        return null;
    }

    /// <summary>R4's fhirVersion media type parameter names another FHIR version than this server's (4.0): R4 content sent or
    /// returned as, say, STU3 would be misread by the other side.</summary>
    private static bool IsOtherFhirVersion(string mediaType) =>
        Parameter(mediaType, "fhirVersion") is { } version && version is not ("4.0" or "4.0.0" or "4.0.1");

    /// <summary>A Content-Type's or an Accept value's media type, without its parameters ("" for none).</summary>
    public static string MediaTypeOf(string? value) => (value ?? "").Split(';')[0].Trim();

    public static bool IsJson(string contentType)
    {
        var media = MediaTypeOf(contentType);
        return media.Equals("application/fhir+json", StringComparison.OrdinalIgnoreCase) || media.Equals("application/json", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Whether <paramref name="parameters"/> (the query, or a POST _search's form) give _pretty other than once as true or false.</summary>
    public static bool PrettyRefusal(IEnumerable<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>> parameters) =>
        parameters.Any(p => p.Key == "_pretty" && p.Value is not ["true"] and not ["false"]);

    public static IResult PrettyRefused() => Outcome(StatusCodes.Status400BadRequest, Issue.Invalid(
        "_pretty is given once, as true (indented JSON) or false (compact JSON, as without it).", "_pretty"));

    /// <summary>Whether the answer is to be indented: _pretty=true in the query, or in a POST _search's form once it was read (a
    /// search's parameters may all be in its body; the form is never read here, only looked at).</summary>
    public static bool Pretty(HttpContext context) =>
        context.Request.Query["_pretty"] == "true"
        || context.Features.Get<Microsoft.AspNetCore.Http.Features.IFormFeature>()?.Form is { } form && form["_pretty"] == "true";

    /// <summary>How the answer is to be written, checked before the interaction runs: _format and Accept, JSON only (XML or another
    /// type is 406); _pretty, true or false (400 for anything else).</summary>
    public static IResult? CheckFormat(HttpContext context)
    {
        if (PrettyRefusal(context.Request.Query)) return PrettyRefused();
        var format = context.Request.Query["_format"].ToString();
        if (format.Length > 0 && !FormatParameters.IsJson(format))
        {
            return Outcome(StatusCodes.Status406NotAcceptable, Issue.NotSupported("Only JSON is supported (_format=json)."));
        }
        // R4: _format overrides the Accept header, for a client that cannot set it (a browser, XSLT).
        if (format.Length > 0) return null;
        StringValues accept = context.Request.Headers.Accept;
        if (accept.Count == 0) return null;
        foreach (var value in accept.ToString().Split(','))
        {
            var media = MediaTypeOf(value);
            // q=0 is "not acceptable" (RFC 9110); fhirVersion another FHIR version's content.
            if (Parameter(value, "q") is { } q && double.TryParse(q, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var weight) && weight == 0) continue;
            if (IsOtherFhirVersion(value)) continue;
            if (media is "*/*" or "application/*" or "application/json" or "application/fhir+json" || media.Length == 0) return null;
        }
        return Outcome(StatusCodes.Status406NotAcceptable, Issue.NotSupported("Only application/fhir+json is supported, in FHIR R4 (fhirVersion=4.0)."));
    }

    /// <summary>A 400 for a query parameter the interaction on one record does not honour (<see cref="InstanceParameters"/>), or null.
    /// <paramref name="subsets"/>: a record's read or vread, which applies _summary and _elements (<see cref="Subset"/>).</summary>
    public static IResult? RefuseQuery(HttpContext context, string interaction, bool subsets = false)
    {
        var read = HttpMethods.IsGet(context.Request.Method);
        var query = context.Request.Query.SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? "")));
        return InstanceParameters.Unhonoured(query, read, subsets) is { } parameter
            ? Outcome(StatusCodes.Status400BadRequest, InstanceParameters.Refusal(parameter, interaction, read, subsets))
            : null;
    }

    /// <summary>The part of a <paramref name="type"/> record a read or vread asks for with _summary or _elements (null: all of it), or
    /// the 400 that says why it cannot be given (<paramref name="refusal"/>), before anything is read.</summary>
    public static ResourceSubset? Subset(HttpContext context, string type, out IResult? refusal)
    {
        var issues = new List<Issue>();
        var subset = ResourceSubset.OfRead(type, context.Request.Query.SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? ""))), issues);
        refusal = issues.Count > 0 ? Outcome(StatusCodes.Status400BadRequest, [.. issues]) : null;
        return subset;
    }

    /// <summary>A write's precondition this server does not evaluate — on an update, a patch or a delete If-None-Match (e.g. * for
    /// "only if it does not exist"), If-Unmodified-Since and If-None-Exist (a create's); on a create (<paramref name="create"/>)
    /// If-Match, If-None-Match and If-Unmodified-Since — refused with 400 rather than ignored (RFC 9110 has a server evaluate
    /// them, and a write that ignored one would overwrite or duplicate what the client meant to keep). If-Match with a version
    /// ETag is an update's condition to give, If-None-Exist a create's. Null without one.</summary>
    public static IResult? RefuseUnevaluatedPrecondition(HttpContext context, bool create = false)
    {
        string[] headers = create ? ["If-Match", "If-None-Match", "If-Unmodified-Since"] : ["If-None-Match", "If-Unmodified-Since", "If-None-Exist"];
        foreach (var header in headers)
        {
            if (!context.Request.Headers.ContainsKey(header)) continue;
            return Outcome(StatusCodes.Status400BadRequest, Issue.NotSupported(create
                ? $"{header} is not evaluated on a create: to create only when no record matches, give If-None-Exist with search parameters (e.g. identifier=urn:oid:1.2.250.1.213.1.4.8|<NIR>)."
                : header == "If-None-Exist"
                    ? "If-None-Exist conditions a create (POST [type]); an update is held to a version by If-Match (W/\"3\"), and one that names its record by criteria is PUT [type]?criteria."
                    : $"{header} is not evaluated on an update or a delete: give If-Match with the version ETag the write depends on (W/\"3\"), or * for a record that must exist."));
        }
        return null;
    }

    /// <summary>If-Match: W/"3" (or "3"), or * (the record must exist, any version: <see cref="FhirJson.AnyCurrentVersion"/>).
    /// Absent, the write is unconditional; present but empty, it is malformed (false): the client meant a condition, and writing
    /// without one would overwrite what it has not seen.</summary>
    public static bool TryParseIfMatch(HttpContext context, out int? version)
    {
        version = null;
        if (!context.Request.Headers.TryGetValue("If-Match", out var values)) return true;
        var header = values.ToString();
        if (!FhirJson.TryParseIfMatch(header, out var v)) return false;
        version = v;
        return true;
    }
}

/// <summary>A FHIR JSON response body with its status code. Every FHIR JSON answer is written here, so that _pretty=true is
/// honoured by each alike: the body, written compact, is indented then — and only then, so that the usual answer is sent as it
/// was written, without a second pass.</summary>
internal sealed class FhirResult(int status, byte[] body, string? challenge = null) : IResult
{
    public int StatusCode => status;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = status;
        if (challenge is not null) httpContext.Response.Headers.WWWAuthenticate = challenge;
        // A _pretty other than true or false was refused before the interaction ran (FhirHttp.CheckFormat; a POST _search's form,
        // once read): what answers before that check, or is that refusal, is compact.
        var written = body.Length > 0 && FhirHttp.Pretty(httpContext) ? FhirJson.Indented(body) : body;
        if (written.Length > 0) httpContext.Response.ContentType = FhirJson.ContentType; // (none for Prefer: return=minimal)
        httpContext.Response.ContentLength = written.Length;
        await httpContext.Response.Body.WriteAsync(written, httpContext.RequestAborted);
    }
}
