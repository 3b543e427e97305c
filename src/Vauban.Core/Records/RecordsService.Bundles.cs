// Batch and transaction Bundles. A transaction is all or nothing: every entry is checked by the
// policy first, then all entries run in one database transaction (DELETE, POST, PUT, then GET, as
// FHIR orders them: its reads and searches see its writes), with urn:uuid: references rewritten to
// the ids the server assigns, and the conditional updates and deletes (PUT or DELETE Type?criteria)
// matched before any entry writes. A batch runs each entry on its own, through the same
// single-interaction methods.
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Records;

public sealed partial class RecordsService
{
    private const int MaxBundleEntries = 10_000;

    /// <summary>The most searches a transaction may hold (<see cref="ExecuteTransactionAsync"/>).</summary>
    internal const int MaxTransactionSearches = 20;

    private sealed record BundleEntry(int Index, string Method, string Url, string Type, string? Id, JsonElement? Resource, string? FullUrl, int? IfMatch, string? IfNoneExist, List<KeyValuePair<string, string>>? Query)
    {
        /// <summary>Why the entry cannot be run, and its status (400, or 404 for an unsupported type): a transaction fails
        /// whole; a batch answers that entry alone (FHIR R4: batch entries are independent).</summary>
        public (int Status, Issue Issue)? Unusable { get; init; }

        /// <summary>A read's request.ifNoneMatch: the versions the client holds (<see cref="FhirJson.AnyCurrentVersion"/> for *);
        /// null when not given. Held to as the If-None-Match header is (<see cref="NotModified"/>).</summary>
        public IReadOnlyList<int>? IfNoneMatch { get; init; }

        /// <summary>A read's request.ifModifiedSince (Unix milliseconds), when given without ifNoneMatch.</summary>
        public long? IfModifiedSince { get; init; }

        /// <summary>The part of the record a read or vread entry asks for (_summary, _elements), or null for all of it.</summary>
        public ResourceSubset? Subset { get; init; }

        /// <summary>A conditional update or delete (PUT or DELETE Type?criteria): the record is named by its criteria.</summary>
        public bool Conditional => Id is null && Method is "PUT" or "DELETE";

        /// <summary>The search criteria of a conditional update or delete (request.url's query), else null.</summary>
        public string? Criteria => Conditional && Url.Split('?', 2) is [_, var criteria] ? criteria : null;
    }

    private sealed record EntryResponse(int Status, string? Location, int Version, long LastUpdated, byte[]? Resource, IReadOnlyList<Issue>? Issues)
    {
        /// <summary>The record's URL when the entry carries it (R4 Bundle.entry.fullUrl: an entry with an identified resource
        /// SHALL have one); null for an outcome, a searchset or no resource.</summary>
        public string? FullUrl { get; init; }
    }

    /// <param name="entryFailed">Told of an unexpected exception in a batch entry, which is answered as that entry's 500
    /// (the entries before it may have committed), for the operator's log.</param>
    /// <param name="maxResourceBytes">The limit on one resource that a single create or update is held to (its body, 413 above it);
    /// an entry's resource over it cannot be run. Null: no limit.</param>
    public async Task<(int Status, byte[] Body)> ProcessBundleAsync(AccessContext context, JsonElement bundle, string baseUrl, CancellationToken cancellationToken,
        Action<Exception>? entryFailed = null, long? maxResourceBytes = null, string? returnPreference = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var issues = new List<Issue>();
        if (bundle.ValueKind != JsonValueKind.Object || !bundle.TryGetProperty("resourceType", out var rt) || rt.ValueKind != JsonValueKind.String || rt.GetString() != "Bundle")
        {
            return (400, FhirJson.OperationOutcome([Issue.Invalid("POST /fhir takes a Bundle of type batch or transaction.", "Bundle")]));
        }
        var bundleType = bundle.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (bundleType is not ("batch" or "transaction"))
        {
            return (400, FhirJson.OperationOutcome([Issue.Invalid("Bundle.type must be batch or transaction.", "Bundle.type")]));
        }
        if (EnvelopeIssues(bundle) is { Count: > 0 } envelope) return (400, FhirJson.OperationOutcome(envelope));
        var entries = ParseEntries(bundle, bundleType, maxResourceBytes, issues);
        if (issues.Count > 0) return (400, FhirJson.OperationOutcome(issues));

        if (bundleType == "batch")
        {
            var responses = new List<EntryResponse>();
            foreach (var entry in entries)
            {
                responses.Add(entry.Unusable is { } unusable
                    ? new EntryResponse(unusable.Status, null, 0, 0, null, [unusable.Issue])
                    : InEntry(entry, await ExecuteBatchEntryAsync(context, entry, baseUrl, entryFailed, cancellationToken)));
            }
            return (200, WriteResponseBundle("batch-response", Preferred(entries, responses, returnPreference), baseUrl));
        }
        var unusableEntries = entries.Where(e => e.Unusable is not null).Select(e => e.Unusable!.Value).ToList();
        if (unusableEntries.Count > 0)
        {
            // 413 when the only thing wrong is size, as for a single create or update; otherwise 400, naming every entry.
            var status = unusableEntries.All(u => u.Status == 413) ? 413 : 400;
            return (status, FhirJson.OperationOutcome(unusableEntries.Select(u => u.Issue)));
        }
        return await ExecuteTransactionAsync(context, entries, baseUrl, returnPreference, cancellationToken);
    }

    /// <summary>R4 "Managing Return Content" in a batch or transaction: the Prefer header's return= applies to each entry that created
    /// or updated a record, as to a create or update alone — no resource (minimal), or an outcome saying what was written instead
    /// (OperationOutcome); reads and searches keep theirs.</summary>
    private static List<EntryResponse> Preferred(List<BundleEntry> entries, List<EntryResponse> responses, string? preference)
    {
        if (preference is not ("minimal" or "OperationOutcome")) return responses;
        return [.. responses.Select((response, i) => entries[i].Method is "POST" or "PUT" && response is { Status: 200 or 201, Resource: not null }
            ? response with
            {
                Resource = null,
                FullUrl = null,
                Issues = preference == "minimal" ? null
                    : [Issue.Information($"{(response.Status == 201 ? "Created" : entries[i].Method == "POST" ? "Matched (not written)" : "Updated")} "
                        + $"{entries[i].Type}/{response.FullUrl?[(response.FullUrl.LastIndexOf('/') + 1)..]}, version {response.Version}.")],
            }
            : response)];
    }

    /// <summary>What is wrong with a Bundle's envelope outside its entries (R4 structure, bdl-1), each issue naming where: a
    /// batch, transaction or collection with any of them is refused whole.</summary>
    public static IReadOnlyList<Issue> EnvelopeIssues(JsonElement bundle) =>
        [.. Fhir.Validation.ResourceValidator.ValidateBundle(bundle).Select(i => Issue.Invalid($"{i.Location}: {i.Message}", i.Location))];

    /// <summary>What is wrong with one entry of a Bundle's envelope (its elements, and a request, response or search its bundle's
    /// type does not have: bdl-2 to bdl-4), as one issue; null when nothing is. The entry's resource is validated on its own.
    /// A transaction fails whole for it, a batch answers that entry, a collection's import rejects it.</summary>
    internal static Issue? EntryEnvelopeIssue(JsonElement entry, int index, string bundleType)
    {
        var found = Fhir.Validation.ResourceValidator.ValidateBundleEntry(entry, index, bundleType);
        return found.Count == 0 ? null : Issue.Invalid(string.Join("; ", found.Select(i => $"{i.Location}: {i.Message}")), found[0].Location);
    }

    /// <summary>The limit <paramref name="resource"/> is over, as written (its bytes in the body, as a single create's body is
    /// measured); null when under it or there is none.</summary>
    private static long? TooLarge(JsonElement resource, long? maxResourceBytes) =>
        maxResourceBytes is { } limit && System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(resource).Length > limit ? limit : null;

    private static Issue ResourceTooLarge(string where, long limit) =>
        Issue.Error("too-costly", $"{where}: the resource is larger than the configured limit of {limit / 1024} KiB for one resource.");

    /// <summary>The bundle's entries; what makes the whole bundle unreadable goes to <paramref name="issues"/>, what makes one
    /// entry unusable to that entry's <see cref="BundleEntry.Unusable"/>.</summary>
    private static List<BundleEntry> ParseEntries(JsonElement bundle, string bundleType, long? maxResourceBytes, List<Issue> issues)
    {
        var entries = ReadEntries(bundle, maxResourceBytes, issues);
        if (issues.Count > 0 || entries.Count == 0) return entries;
        // What the reading found wrong with an entry says more (it names the request); what it did not, the envelope's rules do.
        var index = 0;
        foreach (var element in bundle.GetProperty("entry").EnumerateArray())
        {
            if (entries[index].Unusable is null && EntryEnvelopeIssue(element, index, bundleType) is { } issue)
                entries[index] = entries[index] with { Unusable = (400, issue) };
            index++;
        }
        return entries;
    }

    private static List<BundleEntry> ReadEntries(JsonElement bundle, long? maxResourceBytes, List<Issue> issues)
    {
        var entries = new List<BundleEntry>();
        // The envelope's validation (EnvelopeIssues, before) has refused an entry that is not an array.
        if (!bundle.TryGetProperty("entry", out var array)) return entries;
        if (array.GetArrayLength() > MaxBundleEntries)
        {
            issues.Add(Issue.Error("too-costly", $"A bundle may hold at most {MaxBundleEntries} entries."));
            return entries;
        }
        var index = 0;
        foreach (var entry in array.EnumerateArray())
        {
            var where = $"Bundle.entry[{index}]";
            if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("request", out var request) || request.ValueKind != JsonValueKind.Object
                || !request.TryGetProperty("method", out var methodElement) || methodElement.ValueKind != JsonValueKind.String
                || !request.TryGetProperty("url", out var urlElement) || urlElement.ValueKind != JsonValueKind.String)
            {
                entries.Add(new BundleEntry(index, "", "", "", null, null, null, null, null, null)
                    { Unusable = (400, Issue.Invalid($"{where} needs request.method and request.url.", where + ".request")) });
                index++;
                continue;
            }
            var method = methodElement.GetString()!;
            var url = urlElement.GetString()!;
            var path = url.Split('?', 2);
            var segments = path[0].Trim('/').Split('/');
            var type = segments[0];
            // R4: request.url is relative to the server's base ("Patient", "Patient/123"); an absolute one is said so rather than
            // "'http:' is not a type".
            var absolute = path[0].Contains("://", StringComparison.Ordinal) || path[0].StartsWith("urn:", StringComparison.OrdinalIgnoreCase);
            (int, Issue)? unaddressed = absolute
                ? (400, Issue.Invalid($"{where}: request.url '{Shorten(url)}' is absolute; give it relative to the server's base (Type, Type/id, Type?query).", where + ".request.url"))
                : !TypeCodes.TryGet(type, out _) ? (404, Issue.NotSupported($"{where}: '{Shorten(type)}' is not a supported resource type.")) : null;
            if (unaddressed is not null)
            {
                entries.Add(new BundleEntry(index, method, url, absolute ? "" : type, null, null, null, null, null, null) { Unusable = unaddressed });
                index++;
                continue;
            }
            string? id = segments.Length > 1 ? segments[1] : null;
            JsonElement? resource = entry.TryGetProperty("resource", out var r) ? r : null;
            string? fullUrl = entry.TryGetProperty("fullUrl", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            int? ifMatch = null;
            (int, Issue)? unusable = null;
            // A condition the entry cannot be held to is refused, never dropped: written as a number (ifMatch: 3) or an object
            // it was ignored, and the entry overwrote or duplicated what the client meant to protect.
            if (request.TryGetProperty("ifMatch", out var im))
            {
                if (im.ValueKind == JsonValueKind.String && FhirJson.TryParseIfMatch(im.GetString()!, out var v)) ifMatch = v;
                else unusable = (400, Issue.Invalid($"{where}: ifMatch must be a string: a version ETag such as W/\"3\", or * (the record must exist).", where + ".request.ifMatch"));
            }
            string? ifNoneExist = null;
            if (request.TryGetProperty("ifNoneExist", out var ine))
            {
                if (ine.ValueKind == JsonValueKind.String) ifNoneExist = ine.GetString();
                else unusable ??= (400, Issue.Invalid($"{where}: ifNoneExist must be a search query such as identifier=system|value (a string).", where + ".request.ifNoneExist"));
            }
            // The same for a condition of another interaction: ifNoneExist belongs to a create, ifMatch to an update or delete.
            if (ifNoneExist is not null && method != "POST")
                unusable ??= (400, Issue.Invalid($"{where}: ifNoneExist conditions a create (POST); this entry is a {Shorten(method)}.", where + ".request.ifNoneExist"));
            if (ifMatch is not null && method is not ("PUT" or "DELETE"))
                unusable ??= (400, Issue.Invalid($"{where}: ifMatch conditions an update or a delete (PUT, DELETE); this entry is a {Shorten(method)}.", where + ".request.ifMatch"));
            // A conditional read (R4 Bundle.entry.request.ifNoneMatch, ifModifiedSince) is held to as its headers are on a read
            // alone (304); on any other entry it is refused, as the headers are, never ignored: a PUT "only if none" (*) went ahead
            // and overwrote the record, a DELETE deleted it.
            var read = method == "GET" && segments.Length == 2;
            (int, Issue) NotARead(string condition) => (400, Issue.Invalid($"{where}: {condition} conditions a read (GET Type/id); it is not evaluated on "
                + $"{(method == "GET" ? "a search or a version read" : "a " + Shorten(method))}, so this entry is refused rather than run without it.", where + ".request." + condition));
            IReadOnlyList<int>? ifNoneMatch = null;
            if (request.TryGetProperty("ifNoneMatch", out var inm))
            {
                var tags = inm.ValueKind == JsonValueKind.String ? inm.GetString()!.Split(',', StringSplitOptions.TrimEntries) : [];
                var versions = new List<int>();
                foreach (var tag in tags) if (FhirJson.TryParseIfMatch(tag, out var v)) versions.Add(v);
                if (tags.Length == 0 || versions.Count != tags.Length)
                    unusable ??= (400, Issue.Invalid($"{where}.request.ifNoneMatch must be a string of version ETags such as W/\"3\", or *.", where + ".request.ifNoneMatch"));
                else if (!read)
                    unusable ??= NotARead("ifNoneMatch");
                else ifNoneMatch = versions;
            }
            long? ifModifiedSince = null;
            if (request.TryGetProperty("ifModifiedSince", out var ims))
            {
                if (ims.ValueKind != JsonValueKind.String || !FhirDate.TryParseInstant(ims.GetString()!, out var since))
                    unusable ??= (400, Issue.Invalid($"{where}.request.ifModifiedSince must be an instant such as 2026-12-01T08:00:00Z.", where + ".request.ifModifiedSince"));
                else if (!read)
                    unusable ??= NotARead("ifModifiedSince");
                else ifModifiedSince = since;
            }
            List<KeyValuePair<string, string>>? query = path.Length > 1
                ? QueryHelpers.ParseQuery("?" + path[1]).SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? ""))).ToList()
                : null;
            if (method == "POST" && path.Length > 1 && unusable is null)
            {
                // A query on a POST's url would be ignored and the resource created whatever it matched: a conditional create
                // is request.ifNoneExist.
                unusable = (400, Issue.Invalid($"{where}: a POST's request.url is the type alone; to create only when nothing matches, give the query as request.ifNoneExist.", where + ".request.url"));
            }
            if (method is "PUT" or "DELETE" && segments.Length == 2 && path.Length > 1 && unusable is null)
            {
                // A query on Type/id was ignored, and the record named by id written whatever the query said: a client that meant a
                // conditional write, or an update held to a condition, learns that the URL is not what it thinks.
                unusable = (400, Issue.Invalid($"{where}: request.url '{Shorten(url)}' names an id and has a query; a conditional {(method == "PUT" ? "update" : "delete")}'s "
                    + $"url is {Shorten(type)}?criteria, and {(method == "PUT" ? "an update" : "a delete")} by id ({Shorten(type)}/id) takes no query.", where + ".request.url"));
            }
            // How an entry's answer is written is the posting request's to say: an entry's _pretty, or a _format other than JSON, is
            // refused rather than ignored (a read, a search and a conditional write's criteria each skipped them).
            if (query is not null && unusable is null && FormatParameters.EntryRefusal(query, where) is { } format) unusable = format;
            if (method == "GET" && (segments.Length == 3 || (segments.Length == 2 && segments[1].Length > 0 && segments[1][0] is '_' or '$')) && unusable is null)
            {
                // Type/_history, Type/$everything, Type/id/_history: answered as "not a valid id" (404) or not at all.
                unusable = (400, Issue.NotSupported($"{where}: GET {Shorten(url)} (a history or an operation) is not supported inside a bundle, which reads, version-reads and searches; send it as a request of its own."));
            }
            if (method == "GET" && segments.Length is 2 or 4 && query is not null && unusable is null && InstanceParameters.Unhonoured(query, read: true, subsets: true) is { } ignored)
            {
                var refusal = InstanceParameters.Refusal(ignored, "a read", read: true, subsets: true);
                unusable = (400, refusal with { Diagnostics = $"{where}: {refusal.Diagnostics}", Expression = where + ".request.url" });
            }
            ResourceSubset? subset = null;
            if (method == "GET" && segments.Length is 2 or 4 && query is not null && unusable is null)
            {
                // As a read alone takes them (ResourceSubset); each once.
                var subsetIssues = new List<Issue>();
                subset = ResourceSubset.OfRead(type, query, subsetIssues);
                if (subsetIssues.Count > 0) unusable = (400, subsetIssues[0] with { Diagnostics = $"{where}: {subsetIssues[0].Diagnostics}", Expression = where + ".request.url" });
            }
            var ok = method switch
            {
                "POST" => segments.Length == 1 && resource is not null,
                // Type?criteria: a conditional update or delete.
                "PUT" => (segments.Length == 2 || (segments.Length == 1 && query is not null)) && resource is not null,
                "DELETE" => segments.Length == 2 || (segments.Length == 1 && query is not null),
                "GET" => segments.Length is 1 or 2 || (segments.Length == 4 && segments[2] == "_history"),
                _ => false,
            };
            if (ok && unusable is null && (method is "POST" or "PUT") && resource is { } body && TooLarge(body, maxResourceBytes) is { } limit)
            {
                unusable = (413, ResourceTooLarge(where, limit));
            }
            // As a single read or delete answers an id that cannot be one (the single interactions' 404), before anything is looked
            // up, audited or locked by the caller's text; a PUT's id is checked against its resource's.
            if (ok && unusable is null && method is "GET" or "DELETE" && id is not null && !IdRules.IsValid(id))
            {
                unusable = (404, Issue.NotFound($"{where}: {Shorten(type)}/{Shorten(id)} is not a valid id."));
            }
            if (method == "PATCH" && unusable is null)
            {
                unusable = (400, Issue.NotSupported($"{where}: a patch is not supported inside a bundle; send it alone: PATCH [base]/{Shorten(type)}/[id] with a JSON Patch document (Content-Type: {RecordPatch.MediaType})."));
            }
            if (!ok)
            {
                unusable ??= (400, Issue.Invalid($"{where}: {Shorten(method)} {Shorten(url)} is not a supported bundle request (POST Type, PUT Type/id or Type?criteria, DELETE Type/id or Type?criteria, GET Type/id or Type?query), or its resource is missing.", where + ".request"));
            }
            entries.Add(new BundleEntry(index, method, url, type, id, resource, fullUrl, ifMatch, ifNoneExist, query)
                { Unusable = unusable, IfNoneMatch = ifNoneMatch, IfModifiedSince = ifModifiedSince, Subset = subset });
            index++;
        }
        return entries;
    }

    private async Task<(int, byte[])> ExecuteTransactionAsync(AccessContext context, List<BundleEntry> entries, string baseUrl, string? returnPreference, CancellationToken cancellationToken)
    {
        // FHIR R4 (http.html, transaction rules): the resources a transaction deletes, creates or updates must not overlap.
        var changed = new Dictionary<(string Type, string Id), int>();
        foreach (var entry in entries)
        {
            if (entry.Method is not ("PUT" or "DELETE") || entry.Id is null) continue;
            if (changed.TryGetValue((entry.Type, entry.Id), out var first))
            {
                return (400, FhirJson.OperationOutcome([Issue.Invalid(
                    $"Bundle.entry[{entry.Index}]: {entry.Type}/{Shorten(entry.Id)} is already changed by Bundle.entry[{first}]; a transaction changes each resource once.")]));
            }
            changed.Add((entry.Type, entry.Id), entry.Index);
        }
        // Every conditional write is matched before anything is written: two with the same criteria would both find nothing
        // and both create — a duplicate identity in one transaction —, or both change the one record they match.
        var conditions = new Dictionary<(string Type, string Criteria), int>();
        foreach (var entry in entries)
        {
            var criteria = entry.Method == "POST" ? entry.IfNoneExist : entry.Criteria;
            if (criteria is null) continue;
            if (!conditions.TryAdd((entry.Type, criteria.TrimStart('?')), entry.Index))
            {
                var first = entries[conditions[(entry.Type, criteria.TrimStart('?'))]];
                return (400, FhirJson.OperationOutcome([Issue.Invalid(first.Method == "POST" && entry.Method == "POST"
                    ? $"Bundle.entry[{entry.Index}]: its ifNoneExist repeats Bundle.entry[{first.Index}]'s; both would create a {entry.Type} matching it. Send it once and refer to that entry's fullUrl."
                    : $"Bundle.entry[{entry.Index}]: its search criteria repeat Bundle.entry[{first.Index}]'s; both would write the {entry.Type} they match (a transaction changes each resource once). Send one entry.")]));
            }
        }

        // The policy sees every entry before anything is written.
        foreach (var entry in entries)
        {
            var interaction = entry.Method switch
            {
                "POST" => Interaction.Create, "PUT" => Interaction.Update, "DELETE" => Interaction.Delete,
                _ => entry.Id is null ? Interaction.Search : VersionSegment(entry) is null ? Interaction.Read : Interaction.VRead,
            };
            var decision = _policy.Authorize(context, interaction, entry.Type);
            if (!decision.Allowed)
            {
                await AuditRefusalAsync(context, interaction, entry.Type, entry.Id, decision.Reason!, cancellationToken);
                return (403, FhirJson.OperationOutcome([Issue.Forbidden($"Bundle.entry[{entry.Index}]: {decision.Reason}")]));
            }
            if ((entry.Method == "POST" && entry.IfNoneExist is not null) || entry.Conditional)
            {
                if (await CheckConditionalAsync(context, interaction, entry.Type, cancellationToken) is { } notSearchable)
                    return (403, FhirJson.OperationOutcome(InEntry(notSearchable.Issues!, entry, $"Bundle.entry[{entry.Index}]")));
            }
            if (entry.Resource is { } resource)
            {
                var problems = RecordValidation.Validate(entry.Type, resource);
                if (entry.Method == "PUT" && !entry.Conditional && problems.Count == 0 && (!resource.TryGetProperty("id", out var bodyId) || bodyId.GetString() != entry.Id))
                    problems.Add(Issue.Invalid("The resource id must equal the id in request.url.", $"{entry.Type}.id"));
                if (problems.Count > 0) return (400, FhirJson.OperationOutcome(InEntry(problems, entry, $"Bundle.entry[{entry.Index}]")));
            }
        }
        if (await AdmitAsync(context, Interaction.Update, "Bundle", [], 1, cancellationToken) is { } contained) return (RecordStatusCodes.Http(contained.Status), FhirJson.OperationOutcome(contained.Issues!));

        // Server ids for created resources, and the reference map from each fullUrl to them. A conditional update's is the id it
        // creates under when nothing matches (its resource's, or one assigned), until its match replaces it.
        var newIds = new Dictionary<int, string>();
        var references = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var id = entry.Method == "POST" ? IdRules.NewId()
                : entry is { Method: "PUT", Conditional: true } ? (entry.Resource!.Value.TryGetProperty("id", out var given) ? given.GetString()! : IdRules.NewId())
                : entry.Id;
            if (entry.Method == "POST" || entry is { Method: "PUT", Conditional: true }) newIds[entry.Index] = id!;
            if (entry.FullUrl is not null && id is not null && entry.Method is "POST" or "PUT")
            {
                // A conditional update's fullUrl is held to the record it writes once its criteria are matched (below, in the write scope).
                if (!entry.Conditional && FullUrlDisagreement(entry, id, context.ServerBase) is { } disagreement)
                    return (400, FhirJson.OperationOutcome([Issue.Invalid($"Bundle.entry[{entry.Index}]: fullUrl {disagreement}", $"Bundle.entry[{entry.Index}].fullUrl")]));
                if (!references.TryAdd(entry.FullUrl, $"{entry.Type}/{id}"))
                    return (400, FhirJson.OperationOutcome([Issue.Invalid($"Bundle.entry[{entry.Index}]: fullUrl is used twice.")]));
            }
        }

        // A urn:uuid: reference is local to the bundle: one that names no entry would be stored as is, pointing nowhere.
        // A search's parameters with the entries they name (R4 resolves references in entries' URLs too), read before the writes.
        var searchParameters = new Dictionary<int, List<KeyValuePair<string, string>>>();
        foreach (var entry in entries)
        {
            if (entry.Resource is { } body && ResourceStamp.UnresolvedUrnReference(body, references) is { } unresolved)
            {
                return (400, FhirJson.OperationOutcome([NamesNoEntry(entry.Index, "reference", unresolved, $"Bundle.entry[{entry.Index}].resource")]));
            }
            // So is one in a search's criteria: it would match nothing, silently.
            if (entry is { Method: "GET", Id: null })
            {
                var (resolved, unknown) = ResolveEntryReferences(entry.Type, entry.Query ?? [], references);
                if (unknown is not null) return (400, FhirJson.OperationOutcome([NamesNoEntry(entry.Index, "search value", unknown, $"Bundle.entry[{entry.Index}].request.url")]));
                searchParameters[entry.Index] = resolved ?? entry.Query ?? [];
            }
            // A conditional write's criteria are matched before the entries they could name are written (and a conditional create's
            // record is known only once its own criteria are matched): not resolved, they are refused, as conditional references are,
            // rather than matched against a urn:uuid: no record is indexed under (a conditional update then created a record, a
            // conditional create a duplicate).
            if ((entry.Method == "POST" ? entry.IfNoneExist : entry.Criteria) is { } criteria
                && ResolveEntryReferences(entry.Type, CriteriaParameters(criteria), references) is var (named, unknownNamed)
                && (named is not null || unknownNamed is not null))
            {
                var where = $"Bundle.entry[{entry.Index}].request.{(entry.Method == "POST" ? "ifNoneExist" : "url")}";
                return (400, FhirJson.OperationOutcome([unknownNamed is not null
                    ? NamesNoEntry(entry.Index, "search value", unknownNamed, where)
                    : Issue.NotSupported($"Bundle.entry[{entry.Index}]: its {(entry.Method == "POST" ? "ifNoneExist" : "criteria")} name an entry of this transaction by its fullUrl, which "
                        + "this server does not resolve in a conditional write's criteria (they are matched before the entries are written): give the Type/id, or search in an entry of its own.") with { Expression = where }]));
            }
            if (entry.Resource is { } resource && ResourceStamp.ConditionalReference(resource) is { } conditional)
            {
                // Stored as written it named no record: R4 has a server that does not resolve conditional references fail the transaction.
                return (400, FhirJson.OperationOutcome([Issue.NotSupported(
                    $"Bundle.entry[{entry.Index}]: the conditional reference '{Shorten(conditional)}' is not resolved by this server: give the Type/id it names, or the fullUrl of an entry.")]));
            }
        }

        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        // The grants the policy's SQL filter of the transaction's searches opens, read before its writer is held.
        await _policy.PrepareAsync(context, cancellationToken);
        // The criteria of conditional updates and deletes are read before anything is locked: one that is no search fails the transaction.
        var criteriaQueries = new Dictionary<int, SearchQuery>();
        foreach (var entry in entries.Where(e => e.Conditional))
        {
            var condition = entry.Method == "PUT" ? ConditionalUpdateCriteria(entry.Type) : ConditionalDeleteCriteria(entry.Type);
            if (ParseCriteria(context, keys, entry.Type, entry.Criteria!, condition, out var invalid) is not { } query) return Failed(entry, ToResponse(invalid!, baseUrl));
            criteriaQueries[entry.Index] = query;
        }
        // So are the searches' parameters, as a search alone reads them: one unknown or malformed fails the transaction (400, naming
        // it), an _include of a type the caller may not read too (403, audited), before anything is written.
        var searchQueries = new Dictionary<int, SearchQuery>();
        // They run while the transaction holds the store's writer (every other write of the server waits), and their pages are kept
        // until it commits: a few, for what the transaction wrote; a batch, or searches of their own, for more.
        var searches = entries.Where(e => e is { Method: "GET", Id: null }).ToList();
        if (searches.Count > MaxTransactionSearches)
        {
            var first = searches[MaxTransactionSearches];
            return Failed(first, new EntryResponse(400, null, 0, 0, null, [Issue.Error("too-costly",
                $"A transaction holds at most {MaxTransactionSearches} searches ({searches.Count} here): they run while the store's other writes wait. Send the rest in a batch, or alone.",
                $"Bundle.entry[{first.Index}].request")]));
        }
        foreach (var entry in searches)
        {
            // Paging (decided): a search in a transaction answers its first page, _count honoured, with the links a search alone
            // gives. They are cursors into the committed store, and safe to hand out: the response leaves only once the transaction
            // has committed (a failed one returns no search result at all), so a next link, followed later as a request of its own,
            // continues over what this transaction wrote. A _page token is refused: it continues a search answered before, outside
            // this transaction, and would read past the transaction's own writes as if they were not there; follow it alone.
            if (entry.Query?.Any(p => p.Key == "_page") == true)
            {
                return Failed(entry, new EntryResponse(400, null, 0, 0, null, [Issue.Invalid(
                    "_page continues a search already answered; a search in a transaction starts from its first page (give the search's parameters and _count). "
                    + "Follow a paging link as a request of its own.", $"Bundle.entry[{entry.Index}].request.url")]));
            }
            // Read with the ids the entries it names by fullUrl have now; run with those they have once written (SearchInScopeAsync).
            var (query, refused) = await ParseSearchAsync(context, keys, entry.Type, searchParameters[entry.Index], lenient: false, cancellationToken);
            if (query is null) return Failed(entry, new EntryResponse(RecordStatusCodes.Http(refused!.Status), null, 0, 0, null, refused.Issues));
            searchQueries[entry.Index] = query;
        }
        var order = entries.OrderBy(e => e.Method switch { "DELETE" => 0, "POST" => 1, "PUT" => 2, _ => 3 }).ThenBy(e => e.Index).ToList();
        // The whole transaction runs once more on a new connection when its connection was found lost before its COMMIT was sent
        // (StoreDatabase.WriteAsync): what it changes of the maps built above is changed on copies of them, made at its start.
        var referencesBefore = references;
        var changedBefore = changed;
        return await _database.WriteAsync(async scope =>
        {
            var references = new Dictionary<string, string>(referencesBefore, StringComparer.Ordinal);
            var changed = new Dictionary<(string Type, string Id), int>(changedBefore);
            var responses = new EntryResponse?[entries.Count];
            if (Engine == StorageEngine.Postgres) await LockConditionsAsync(scope, keys, entries, cancellationToken);
            // What each conditional update or delete matches, and so the record it writes (its target), before any entry writes.
            var matches = new Dictionary<int, List<StoredVersion>>();
            var targets = new Dictionary<int, string>();
            // The entries whose one match the guard has admitted below: weighed once, not again when the entry runs.
            var admitted = new HashSet<int>();
            foreach (var entry in entries.Where(e => e.Conditional))
            {
                var found = await ConditionalMatchesAsync(context, scope, keys, criteriaQueries[entry.Index], cancellationToken);
                matches[entry.Index] = found;
                var target = found.Count == 1 ? found[0].Id : found.Count == 0 && entry.Method == "PUT" ? newIds[entry.Index] : null;
                if (target is null) continue;
                var act = entry.Method == "PUT" ? Interaction.Update : Interaction.Delete;
                // What the checks below answer tells of the match (that these criteria resolve to a record another entry names, or the
                // match's id): the guard is asked of it first, as the entry alone would ask it (and, admitted here, the entry does not ask
                // again), and a refusal after the search is audited.
                if (found.Count == 1)
                {
                    if (await AdmitAsync(context, act, entry.Type, found, 1, cancellationToken, scope) is { } held) return Failed(entry, ToResponse(held, baseUrl));
                    admitted.Add(entry.Index);
                }
                List<AuditedRecord> resolved = found.Count == 1 ? [new AuditedRecord(entry.Type, found[0].Id, found[0].Compartment)] : [];
                // R4 (transaction processing): resource identities, those resolved from conditional updates and deletes included, must
                // not overlap. Said without the id, which a conditional delete's principal may not read.
                if (changed.TryGetValue((entry.Type, target), out var other))
                {
                    await AuditAsync(context, act, AuditOutcome.MinorFailure, entry.Type, resolved, cancellationToken, scope,
                        "conditional write in a transaction: its target is changed by another entry");
                    return (400, FhirJson.OperationOutcome([Issue.Invalid(
                        $"Bundle.entry[{entry.Index}]: the {entry.Type} its criteria {(found.Count == 1 ? "match" : "would create")} is changed by Bundle.entry[{other}] too; a transaction changes each resource once.")]));
                }
                changed.Add((entry.Type, target), entry.Index);
                targets[entry.Index] = target;
                if (entry.Method == "PUT" && entry.FullUrl is not null)
                {
                    if (FullUrlDisagreement(entry, target, context.ServerBase) is not null)
                    {
                        await AuditAsync(context, act, AuditOutcome.MinorFailure, entry.Type, resolved, cancellationToken, scope,
                            "conditional update in a transaction: its fullUrl disagrees with the record it writes");
                        // Not the match's id: the answer is an error, not the update that returns it.
                        return (400, FhirJson.OperationOutcome([Issue.Invalid($"Bundle.entry[{entry.Index}]: fullUrl '{Shorten(entry.FullUrl)}' is not the record this conditional "
                            + $"update writes: give it a urn:uuid:, or the URL of the {entry.Type} its criteria {(found.Count == 1 ? "match" : "would create")}.", $"Bundle.entry[{entry.Index}].fullUrl")]));
                    }
                    references[entry.FullUrl] = $"{entry.Type}/{target}";
                }
            }
            if (Engine == StorageEngine.Postgres) await LockTargetsAsync(scope, keys, changed.Keys, cancellationToken);
            var written = new WriteBatch(scope);
            // The conditional creates (ifNoneExist) are matched once the deletes are done and before any other entry is
            // written: an entry that matched creates nothing, and every reference to its fullUrl — from an entry before it
            // in the bundle too — must name the resource it matched (FHIR R4, transaction processing rules).
            var matched = new Dictionary<int, RecordResult>();
            // The criteria of those that matched nothing, which the records they create must meet (WriteBatch.HoldTo).
            var createCriteria = new Dictionary<int, SearchQuery>();
            async Task<RecordResult> CreateEntryAsync(BundleEntry entry)
            {
                var created = await CreateInScopeAsync(context, scope, keys, entry.Type, entry.Resource!.Value, newIds[entry.Index], references, written, VersionMade.Created, cancellationToken);
                return createCriteria.TryGetValue(entry.Index, out var criteria) ? written.HoldTo(created, criteria, IfNoneExistCriteria) : created;
            }
            var conditionalsMatched = false;
            foreach (var entry in order)
            {
                if (entry.Method != "DELETE" && !conditionalsMatched)
                {
                    conditionalsMatched = true;
                    foreach (var conditional in order.Where(e => e.Method == "POST" && e.IfNoneExist is not null))
                    {
                        var existing = await IfNoneExistMatchAsync(context, scope, keys, conditional.Type, conditional.IfNoneExist!, cancellationToken);
                        if (existing.Result is null)
                        {
                            createCriteria[conditional.Index] = existing.Criteria!;
                            continue;
                        }
                        if (existing.Result.Status != RecordStatus.Ok) return Failed(conditional, ToResponse(existing.Result, baseUrl));
                        matched[conditional.Index] = existing.Result;
                        if (conditional.FullUrl is not null) references[conditional.FullUrl] = $"{conditional.Type}/{existing.Result.Id}";
                    }
                }
                var response = entry.Method switch
                {
                    "DELETE" when entry.Conditional => ToResponse(await ConditionalDeleteInScopeAsync(context, scope, keys, entry.Type, matches[entry.Index], entry.IfMatch, written,
                        admitted.Contains(entry.Index), cancellationToken), baseUrl),
                    "DELETE" => ToResponse(await DeleteInScopeAsync(context, scope, keys, entry.Type, entry.Id!, entry.IfMatch, written, cancellationToken), baseUrl),
                    "POST" when matched.TryGetValue(entry.Index, out var existing) => ToResponse(existing, baseUrl),
                    "POST" => ToResponse(await CreateEntryAsync(entry), baseUrl),
                    "PUT" when entry.Conditional => ToResponse(await ConditionalUpdateInScopeAsync(context, scope, keys, entry.Type, criteriaQueries[entry.Index], matches[entry.Index], entry.Resource!.Value, entry.IfMatch,
                        references, written, newIds[entry.Index], admitted.Contains(entry.Index), cancellationToken), baseUrl),
                    "PUT" => ToResponse(await UpdateInScopeAsync(context, scope, keys, entry.Type, entry.Id!, entry.Resource!.Value, entry.IfMatch, references, written, cancellationToken), baseUrl),
                    _ when searchQueries.TryGetValue(entry.Index, out var search) => await SearchInScopeAsync(context, keys, entry, search, references, written, baseUrl, cancellationToken),
                    _ => await ReadInScopeAsync(context, scope, keys, entry, written, baseUrl, cancellationToken),
                };
                // All or nothing: the scope is disposed without commit, rolling every entry back.
                if (response.Status >= 400) return Failed(entry, response);
                responses[entry.Index] = response;
            }
            // A patient it deletes must be named by no record once the whole transaction is in place.
            if (await StillNamedAsync(context, written, cancellationToken) is { } named)
            {
                var deleting = entries.First(e => e.Method == "DELETE" && e.Type == KnownResourceTypes.Patient && (e.Id ?? targets.GetValueOrDefault(e.Index)) == named.Patient);
                return Failed(deleting, new EntryResponse(RecordStatusCodes.Http(named.Refused.Status), null, 0, 0, null, named.Refused.Issues));
            }
            // Everything written must be open to the writer once the whole transaction is in place; a refusal names the entry
            // that wrote the record (its id may be one the server just assigned, which the client has never seen).
            if (await RefusedWriteAsync(context, Interaction.Update, written, cancellationToken) is { } refusal)
            {
                var (refused, record) = refusal;
                var writer = entries.FirstOrDefault(e => e.Type == record.Type
                    && (e.Method == "PUT" ? (e.Id ?? targets.GetValueOrDefault(e.Index)) == record.Id : e.Method == "POST" && newIds.TryGetValue(e.Index, out var assigned) && assigned == record.Id));
                var response = new EntryResponse(RecordStatusCodes.Http(refused.Status), null, 0, 0, null, refused.Issues);
                return writer is null ? (response.Status, FhirJson.OperationOutcome(refused.Issues!)) : Failed(writer, response);
            }
            await NoteGrantWritesAsync(context, written, cancellationToken);
            // Each entry appended its audit entry in this transaction; the commit writes them with the data.
            await scope.CommitAsync(cancellationToken);
            Touch(context, written);
            return (200, WriteResponseBundle("transaction-response", Preferred(entries, [.. responses!.Select(r => r!)], returnPreference), baseUrl));
        }, cancellationToken);

        static (int, byte[]) Failed(BundleEntry entry, EntryResponse response) => (response.Status, FhirJson.OperationOutcome(
            InEntry(response.Issues ?? [], entry, $"Bundle.entry[{entry.Index}] ({entry.Method} {entry.Type})")));
    }

    /// <summary>A batch entry's answer, its issues placed in the Bundle (<see cref="EntryExpression"/>).</summary>
    private static EntryResponse InEntry(BundleEntry entry, EntryResponse response) =>
        response.Issues is { Count: > 0 } issues ? response with { Issues = [.. InEntry(issues, entry)] } : response;

    /// <summary>An entry's issues as the Bundle's: each expression placed in the entry (<see cref="EntryExpression"/>), and, in a
    /// transaction's outcome (which answers for the whole Bundle), each diagnostics led by <paramref name="entryNamed"/>.</summary>
    private static IEnumerable<Issue> InEntry(IEnumerable<Issue> issues, BundleEntry entry, string? entryNamed = null) => issues.Select(i => i with
    {
        Diagnostics = entryNamed is null ? i.Diagnostics : $"{entryNamed}: {i.Diagnostics}",
        Expression = i.Expression is { } expression ? EntryExpression(entry, expression) : null,
    });

    /// <summary>Where in the Bundle an issue of one entry is, so that a client finds the entry: an element of its resource, named
    /// from the resource (Patient.birthDate, resourceType), is one of Bundle.entry[3].resource (Bundle.entry[3].resource.birthDate);
    /// a search parameter (_count) is in the entry's request — its url, or a conditional create's ifNoneExist. An expression
    /// already in the Bundle is kept.</summary>
    private static string EntryExpression(BundleEntry entry, string expression)
    {
        var at = $"Bundle.entry[{entry.Index}]";
        if (expression.StartsWith("Bundle.", StringComparison.Ordinal)) return expression;
        if (expression == "resourceType") return at + ".resource.resourceType";
        if (expression.StartsWith(entry.Type, StringComparison.Ordinal) && (expression.Length == entry.Type.Length || expression[entry.Type.Length] is '.' or '['))
            return at + ".resource" + expression[entry.Type.Length..];
        return at + (entry.Method == "POST" ? ".request.ifNoneExist" : ".request.url");
    }

    /// <summary>
    /// R4 Bundle.entry.fullUrl "SHALL NOT disagree with the id in the resource": one that is not a urn: is a URL ending in the
    /// entry's Type/id, and references to it are rewritten to the record the entry writes. So a PUT's names the id it puts, and a
    /// POST's (whose id the server assigns) may be the URL the record had on the server it comes from, but not a URL of this
    /// server: references to an existing record here, written in full, would be re-pointed to the new one (a result filed
    /// under another patient). Null when it agrees.
    /// </summary>
    private static string? FullUrlDisagreement(BundleEntry entry, string id, string? serverBase)
    {
        var url = entry.FullUrl!;
        if (url.StartsWith("urn:", StringComparison.OrdinalIgnoreCase)) return null;
        var segments = url.Split('?', '#')[0].TrimEnd('/').Split('/');
        if (!url.Contains("://", StringComparison.Ordinal) || segments.Length < 2)
            return $"'{Shorten(url)}' is neither a urn:uuid: nor an absolute URL ending in {entry.Type}/[id].";
        if (segments[^2] == "_history")
            return $"'{Shorten(url)}' names a version; a fullUrl is version-independent ({entry.Type}/[id]).";
        if (segments[^2] != entry.Type)
            return $"'{Shorten(url)}' names a {Shorten(segments[^2])}, but the entry is a {entry.Type}.";
        if (entry.Method == "PUT" && segments[^1] != id)
            return $"'{Shorten(url)}' names {entry.Type}/{Shorten(segments[^1])}, but the entry puts {entry.Type}/{Shorten(id)}.";
        if (entry.Method == "POST" && serverBase is not null && url.StartsWith(serverBase + "/", StringComparison.Ordinal))
            return $"'{Shorten(url)}' is a record of this server, and the entry creates a new one: give it a urn:uuid: fullUrl, or PUT the record it names.";
        return null;
    }

    /// <summary>
    /// PostgreSQL runs transactions side by side: each takes, before it writes anything, every lock its entries will need, in
    /// one order — the conditional writes' locks by type (here), then the resources it deletes or puts by type and id, those its
    /// conditional updates and deletes matched included (<see cref="LockTargetsAsync"/>). Taken entry by entry, in the order FHIR
    /// processes them, two bundles changing the same resources in another order (or one deleting and one conditionally creating)
    /// would each wait for the other until PostgreSQL broke the deadlock with an error (a 500).
    /// </summary>
    private async Task LockConditionsAsync(WriteScope scope, TenantKeys keys, List<BundleEntry> entries, CancellationToken cancellationToken)
    {
        foreach (var type in entries.Where(e => (e.Method == "POST" && e.IfNoneExist is not null) || e.Conditional).Select(e => e.Type).Distinct().Order(StringComparer.Ordinal))
        {
            await _database.LockAsync(scope, ConditionalWriteLock(keys, type), cancellationToken);
        }
    }

    /// <summary>The second half of <see cref="LockConditionsAsync"/>: the rows of the resources the transaction changes, in one order.</summary>
    private async Task LockTargetsAsync(WriteScope scope, TenantKeys keys, IEnumerable<(string Type, string Id)> changed, CancellationToken cancellationToken)
    {
        foreach (var (type, id) in changed.Distinct().OrderBy(t => t.Type, StringComparer.Ordinal).ThenBy(t => t.Id, StringComparer.Ordinal).ToList())
        {
            await CurrentForUpdateAsync(scope, keys, TypeCodes.Of(type), id, cancellationToken);
        }
    }

    /// <summary>
    /// A search (GET Type?query, or GET Type) inside a transaction: the search alone's path (<see cref="RunSearchAsync"/>) on the
    /// transaction's connection, so that it finds what the transaction's earlier entries wrote; the policy asked of the type before
    /// anything was written, of each record in SQL; the guard asked of the page; each patient returned audited in the transaction,
    /// committed with it. Its searchset is the entry's resource, with the links a search alone gives (see the paging note in
    /// <see cref="ExecuteTransactionAsync"/>).
    /// </summary>
    /// <param name="query">The entry's search as read before anything was written.</param>
    /// <param name="references">Each fullUrl of the transaction and the record its entry wrote, or matched.</param>
    private async Task<EntryResponse> SearchInScopeAsync(AccessContext context, TenantKeys keys, BundleEntry entry, SearchQuery query,
        IReadOnlyDictionary<string, string> references, WriteBatch batch, string baseUrl, CancellationToken cancellationToken)
    {
        var parameters = entry.Query ?? [];
        if (ResolveEntryReferences(entry.Type, parameters, references).Resolved is { } resolved)
        {
            // Read again with the ids as they are now: before the writes, a conditional create's or update's fullUrl named the id it
            // would create under, not the record its criteria matched. Read the same way (the same types, other ids), it fails no
            // differently.
            parameters = resolved;
            var (again, refused) = await ParseSearchAsync(context, keys, entry.Type, parameters, lenient: false, cancellationToken);
            if (again is null) return SearchSetResponse(entry.Type, refused!, baseUrl);
            query = again;
        }
        var thisPage = FirstPage(context, entry.Type, query.Canonical.Select(p => new[] { p.Name, p.Value }).ToList());
        var page = await RunSearchAsync(context, keys, query, parameters, null, 1, thisPage, batch, cancellationToken);
        return SearchSetResponse(entry.Type, page, baseUrl);
    }

    /// <summary>
    /// R4 (http.html, resolving references in Bundles): in a transaction, a reference to an entry's fullUrl is replaced by the
    /// record the entry writes, in the entries' URLs too — <c>GET Observation?subject=urn:uuid:…</c> searches the Patient the
    /// transaction creates. The values of reference parameters (each comma-separated alternative, the query already URL-decoded)
    /// that are exactly a fullUrl in <paramref name="references"/> become its Type/id; other parameters are left as they are (a
    /// token may be a urn:uuid: of its own). <c>Resolved</c> is null when no value names an entry; <c>Unresolved</c> the first
    /// urn:uuid: that names none, which would match nothing.
    /// </summary>
    private static (List<KeyValuePair<string, string>>? Resolved, string? Unresolved) ResolveEntryReferences(string type,
        List<KeyValuePair<string, string>> parameters, IReadOnlyDictionary<string, string> references)
    {
        List<KeyValuePair<string, string>>? resolved = null;
        for (var i = 0; i < parameters.Count; i++)
        {
            var (name, value) = parameters[i];
            if (!SearchParameters.TryGet(type, name.Split(':', 2)[0], out var parameter) || parameter.Kind != SearchParamKind.Reference) continue;
            var alternatives = value.Split(',');
            var named = false;
            for (var a = 0; a < alternatives.Length; a++)
            {
                if (references.TryGetValue(alternatives[a], out var target))
                {
                    alternatives[a] = target;
                    named = true;
                }
                else if (alternatives[a].StartsWith("urn:uuid:", StringComparison.OrdinalIgnoreCase))
                {
                    return (null, alternatives[a]);
                }
            }
            if (!named) continue;
            resolved ??= [.. parameters];
            resolved[i] = new(name, string.Join(',', alternatives));
        }
        return (resolved, null);
    }

    /// <summary>A transaction's urn:uuid: (a resource's reference, a search's value) that no POST or PUT entry has as its fullUrl.</summary>
    private static Issue NamesNoEntry(int index, string what, string value, string where) =>
        Issue.Invalid($"Bundle.entry[{index}]: the {what} '{Shorten(value)}' names no entry of this transaction (no POST or PUT entry has it as fullUrl).", where);

    /// <summary>A search entry's response, in a batch or a transaction: the searchset as its resource, or the failure.</summary>
    private EntryResponse SearchSetResponse(string type, SearchPage page, string baseUrl)
    {
        if (page.Status != RecordStatus.Ok) return new EntryResponse(RecordStatusCodes.Http(page.Status), null, 0, 0, null, page.Issues);
        // The self link is a token too: the entry's url carries the search values, which no link the server hands out does.
        var next = FhirJson.PageLink($"{baseUrl}/{type}", page.NextPage);
        var self = FhirJson.PageLink($"{baseUrl}/{type}", page.ThisPage)!;
        return new EntryResponse(200, null, 0, 0, FhirJson.SearchSet(page, baseUrl, self, next, _time.GetUtcNow()), null);
    }

    /// <summary>A read or version read (GET Type/id, Type/id/_history/n) inside a transaction, on its connection.</summary>
    private async Task<EntryResponse> ReadInScopeAsync(AccessContext context, WriteScope scope, TenantKeys keys, BundleEntry entry, WriteBatch batch, string baseUrl,
        CancellationToken cancellationToken)
    {
        // A search (no id) is SearchInScopeAsync's: every GET here names its record.
        if (entry.Id is null) throw new System.Diagnostics.UnreachableException("A transaction's search entry was dispatched as a read.");
        // GET Type/id/_history/n is a vread of that version, audited as one; GET Type/id the current version.
        int? version = null;
        if (VersionSegment(entry) is { } segment)
        {
            if (ParseVersion(segment) is not { } parsed) return new EntryResponse(400, null, 0, 0, null, [VersionIssue(entry, segment)]);
            version = parsed;
        }
        var interaction = version is null ? Interaction.Read : Interaction.VRead;
        var typeCode = TypeCodes.Of(entry.Type);
        var row = version is { } wanted
            ? await _rows.VersionAsync(scope.Connection, keys.TenantId, typeCode, entry.Id, wanted, cancellationToken, scope.Transaction)
            : await _rows.CurrentAsync(scope.Connection, scope.Transaction, keys.TenantId, typeCode, entry.Id, false, cancellationToken);
        if (row is null)
        {
            await AuditAsync(context, interaction, AuditOutcome.MinorFailure, entry.Type, [new AuditedRecord(entry.Type, entry.Id, null)], cancellationToken, scope);
            return new EntryResponse(404, null, 0, 0, null, [Issue.NotFound($"{entry.Type}/{entry.Id} is not known.")]);
        }
        if (await CheckRecordAsync(context, interaction, entry.Type, entry.Id, row.Compartment, row.CreatedBy, batch, cancellationToken) is { } refused)
        {
            return new EntryResponse(RecordStatusCodes.Http(refused.Status), null, 0, 0, null, refused.Issues);
        }
        // A version may name another patient than the record does now (NamedBy): they must be open too.
        if (version is not null && NamedBy(keys, entry.Type, row) is var named && named != row.Compartment)
        {
            if (await CheckRecordAsync(context, interaction, entry.Type, entry.Id, named, row.CreatedBy, batch, cancellationToken) is { } refusedVersion)
            {
                return new EntryResponse(RecordStatusCodes.Http(refusedVersion.Status), null, 0, 0, null, refusedVersion.Issues);
            }
            row = row with { Compartment = named };
        }
        if (row.Deleted)
        {
            // 410, as the same read alone or in a batch answers (it was 404 here, as if the record had never existed).
            await AuditAsync(context, interaction, AuditOutcome.MinorFailure, entry.Type, [new AuditedRecord(entry.Type, entry.Id, row.Compartment)], cancellationToken, scope);
            return new EntryResponse(RecordStatusCodes.Http(RecordStatus.Gone), null, 0, 0, null, [Issue.Error("deleted", $"{entry.Type}/{entry.Id} was deleted (version {row.Version}).")]);
        }
        if (await AdmitAsync(context, interaction, entry.Type, [row], 1, cancellationToken, scope) is { } contained)
        {
            return new EntryResponse(RecordStatusCodes.Http(contained.Status), null, 0, 0, null, contained.Issues);
        }
        var (bodies, damaged) = await OpenAllAsync(context, interaction, entry.Type, keys, [row], scope, cancellationToken);
        if (damaged is not null) return new EntryResponse(RecordStatusCodes.Http(damaged.Status), null, 0, 0, null, damaged.Issues);
        await AuditAsync(context, interaction, AuditOutcome.Success, entry.Type, [new AuditedRecord(entry.Type, entry.Id, row.Compartment)], cancellationToken, scope);
        return NotModified(entry, ToResponse(ResourceSubset.Cut(new RecordResult(RecordStatus.Ok, entry.Type, entry.Id, row.Version, row.LastUpdated, bodies[0]), entry.Subset), baseUrl));
    }

    /// <summary>A read entry's conditions (request.ifNoneMatch, else request.ifModifiedSince) held to as the If-None-Match and
    /// If-Modified-Since headers are on a read alone: the current version named (or *), or no change after the instant given (to
    /// the millisecond), answers 304 with the version and last update and no resource. The read itself was authorized, guarded and
    /// audited as any read: the client holds the version it names.</summary>
    private static EntryResponse NotModified(BundleEntry entry, EntryResponse read)
    {
        if (read.Status != 200) return read;
        var unchanged = entry.IfNoneMatch is { } versions
            ? versions.Any(v => v == FhirJson.AnyCurrentVersion || v == read.Version)
            // To the millisecond, as the entry's lastModified is given (an HTTP date has whole seconds; an instant need not).
            : entry.IfModifiedSince is { } since && read.LastUpdated <= since;
        return unchanged ? new EntryResponse(304, null, read.Version, read.LastUpdated, null, null) : read;
    }

    /// <summary>The n of a GET Type/id/_history/n entry; null for any other entry.</summary>
    private static string? VersionSegment(BundleEntry entry)
    {
        if (entry.Method != "GET" || entry.Id is null) return null;
        var segments = entry.Url.Split('?')[0].Trim('/').Split('/');
        return segments.Length == 4 ? segments[3] : null;
    }

    private static int? ParseVersion(string segment) => IdRules.TryParseVersion(segment, out var version) ? version : null;

    private static Issue VersionIssue(BundleEntry entry, string segment) =>
        Issue.Invalid($"{entry.Type}/{Shorten(entry.Id!)}/_history/{Shorten(segment)}: a version is a positive whole number without leading zeros.");

    /// <summary>
    /// Batch entries are independent (FHIR R4): an unexpected failure of one, whose own transaction rolled back, is
    /// that entry's 500 (503 when the audit log cannot be written) in the batch-response, not a failure of the whole
    /// batch that would hide the entries already committed.
    /// </summary>
    private async Task<EntryResponse> ExecuteBatchEntryAsync(AccessContext context, BundleEntry entry, string baseUrl, Action<Exception>? entryFailed, CancellationToken cancellationToken)
    {
        try
        {
            return await RunBatchEntryAsync(context, entry, baseUrl, cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            entryFailed?.Invoke(exception);
            return exception is AuditUnavailableException
                ? new EntryResponse(503, null, 0, 0, null, [Issue.Error("transient", "The audit log cannot be written at the moment, so this entry returned or changed nothing. Retry shortly.")])
                : new EntryResponse(500, null, 0, 0, null, [Issue.Error("exception", $"An unexpected error occurred in this entry. Quote correlation id {context.CorrelationId} to the operator.")]);
        }
    }

    private async Task<EntryResponse> RunBatchEntryAsync(AccessContext context, BundleEntry entry, string baseUrl, CancellationToken cancellationToken)
    {
        switch (entry.Method)
        {
            case "POST":
                return ToResponse(await CreateAsync(context, entry.Type, entry.Resource!.Value, entry.IfNoneExist, cancellationToken), baseUrl);
            case "PUT" when entry.Conditional:
                return ToResponse(await ConditionalUpdateAsync(context, entry.Type, entry.Criteria!, entry.Resource!.Value, entry.IfMatch, cancellationToken), baseUrl);
            case "DELETE" when entry.Conditional:
                return ToResponse(await ConditionalDeleteAsync(context, entry.Type, entry.Criteria!, entry.IfMatch, cancellationToken), baseUrl);
            case "PUT":
                return ToResponse(await UpdateAsync(context, entry.Type, entry.Id!, entry.Resource!.Value, entry.IfMatch, cancellationToken), baseUrl);
            case "DELETE":
                return ToResponse(await DeleteAsync(context, entry.Type, entry.Id!, entry.IfMatch, cancellationToken), baseUrl);
            default:
                if (entry.Id is not null)
                {
                    if (VersionSegment(entry) is not { } segment) return NotModified(entry, ToResponse(ResourceSubset.Cut(await ReadAsync(context, entry.Type, entry.Id, cancellationToken), entry.Subset), baseUrl));
                    // A version that is not one is refused, rather than answered with the current version.
                    if (ParseVersion(segment) is not { } version) return new EntryResponse(400, null, 0, 0, null, [VersionIssue(entry, segment)]);
                    return ToResponse(ResourceSubset.Cut(await VReadAsync(context, entry.Type, entry.Id, version, cancellationToken), entry.Subset), baseUrl);
                }
                // As GET [base]/Type does: a _page token continues the search it was sealed for, and a page with more after it
                // links to the next (without it a client took the first page for the whole result).
                var token = entry.Query?.FirstOrDefault(p => p.Key == "_page").Value;
                return SearchSetResponse(entry.Type, await SearchAsync(context, entry.Type, entry.Query ?? [], token, false, cancellationToken), baseUrl);
        }
    }

    private static EntryResponse ToResponse(RecordResult result, string baseUrl)
    {
        var status = RecordStatusCodes.Http(result.Status);
        var location = result.Status == RecordStatus.Created ? $"{baseUrl}/{result.Type}/{result.Id}/_history/{result.Version}" : null;
        return new EntryResponse(status, location, result.Version, result.LastUpdated, result.Json, result.Issues)
        {
            FullUrl = result.Json is not null && result.Id is not null ? FhirJson.FullUrl(baseUrl, result.Type, result.Id) : null,
        };
    }

    private byte[] WriteResponseBundle(string type, IReadOnlyList<EntryResponse> responses, string baseUrl) => FhirJson.Write(writer =>
    {
        FhirJson.StartBundle(writer, type, _time.GetUtcNow());
        if (responses.Count > 0) writer.WriteStartArray("entry");
        foreach (var response in responses)
        {
            writer.WriteStartObject();
            if (response.FullUrl is not null) writer.WriteString("fullUrl", response.FullUrl);
            if (response.Resource is not null)
            {
                writer.WritePropertyName("resource");
                writer.WriteRawValue(response.Resource, skipInputValidation: true);
            }
            writer.WriteStartObject("response");
            writer.WriteString("status", response.Status switch { 200 => "200 OK", 201 => "201 Created", 204 => "204 No Content", 304 => "304 Not Modified", _ => response.Status.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            if (response.Location is not null) writer.WriteString("location", response.Location);
            if (response.Version > 0) writer.WriteString("etag", FhirJson.ETag(response.Version));
            if (response.LastUpdated > 0) writer.WriteString("lastModified", FhirInstant.Format(response.LastUpdated));
            if (response.Issues is { Count: > 0 } && (response.Status >= 400 || response.Resource is null))
            {
                writer.WritePropertyName("outcome");
                FhirJson.WriteOperationOutcome(writer, response.Issues);
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        if (responses.Count > 0) writer.WriteEndArray();
        writer.WriteEndObject();
    });
}
