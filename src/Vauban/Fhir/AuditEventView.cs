// The audit log seen as FHIR R4 AuditEvent resources (IHE Basic Audit Log Patterns shapes), for the
// security officer: read by id and search by patient, agent, date and action. A patient's access history
// is the search by patient. Entries are not stored FHIR resources: each is rendered from the chain on
// request, with the entry's sequence number as its id; it never changes, so its version is always 1.
using System.Globalization;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web;

internal static class AuditEventView
{
    private const string RefusedText = "The audit log is open to the security officer only.";

    public static void MapAuditEvents(this RouteGroupBuilder fhir, VaubanStore store)
    {
        fhir.MapGet("/AuditEvent/{id}", (HttpContext http, string id) => ReadAsync(http, store, id, "a read", null));

        // An entry never changes: its one version is 1, and a vread of it is its read (meta.versionId says 1, so a client that
        // vreads what it was given finds it). Any other version is not known, as for a record.
        fhir.MapGet("/AuditEvent/{id}/_history/{version}", (HttpContext http, string id, string version) => ReadAsync(http, store, id, "a vread", version));

        // No history: each entry is written once and never changes, and the log's order is the search's (newest first, by
        // date). Said as such, not the read's "ids are positive integers" for _history, nor the records' "type not supported".
        IResult NoHistory(HttpContext http) => FhirHttp.Outcome(StatusCodes.Status400BadRequest, Issue.NotSupported(
            "AuditEvent has no history: each entry is written once on the hash chain and never changes (its one version is 1). "
            + "Read an entry by id, or search the log (GET AuditEvent?date=ge…, newest first)."));
        fhir.MapGet("/AuditEvent/_history", NoHistory);
        fhir.MapGet("/AuditEvent/{id}/_history", (HttpContext http, string id) => NoHistory(http));

        // The log is written by the server alone, on its hash chain: no client creates, changes or deletes an entry (405, as R4
        // answers an interaction a type does not support), rather than the records' "type not supported", which it is for reading.
        foreach (var path in new[] { "/AuditEvent", "/AuditEvent/{id}" })
        {
            fhir.MapOtherMethods(path, [HttpMethods.Get],
                "The audit log is append-only and written by the server: AuditEvent is read and searched (GET, or POST [base]/AuditEvent/_search), never created, changed or deleted.");
        }

        // _search is the log's search by POST (as every type's is): its other methods are neither a read of an entry "_search" nor a
        // write of one, whose 405 named GET alone in its Allow.
        fhir.MapOtherMethods("/AuditEvent/_search", [HttpMethods.Post],
            "[base]/AuditEvent/_search takes POST with the parameters as a form body (application/x-www-form-urlencoded); to search by GET, "
            + "send GET [base]/AuditEvent?parameters. The audit log itself is written by the server alone.");

        fhir.MapGet("/AuditEvent", (Func<HttpContext, Task<IResult>>)(http => SearchAsync(http, store, http.Request.Query.SelectMany(p => p.Value.Select(v => (p.Key, v ?? ""))).ToList())));
        fhir.MapPost("/AuditEvent/_search", async (HttpContext http) =>
        {
            if (!http.Request.HasFormContentType) return FhirHttp.Outcome(415, Issue.Invalid("POST _search takes application/x-www-form-urlencoded parameters."));
            var (form, refusal) = await http.Request.ReadFormOrRefusalAsync(http.RequestAborted);
            if (form is null) return FhirHttp.Outcome(400, Issue.Invalid($"The POST _search form body {refusal}."));
            if (FhirHttp.PrettyRefusal(form)) return FhirHttp.PrettyRefused();
            return await SearchAsync(http, store, form.SelectMany(p => p.Value.Select(v => (p.Key, v ?? ""))).ToList());
        });
    }

    /// <summary>Reads one entry (a vread names its version, which is 1 or not known). Every attempt is audited by the log's
    /// read, a refused one and an id that names no entry included: probing the log for its ids is itself on the log.</summary>
    private static async Task<IResult> ReadAsync(HttpContext http, VaubanStore store, string id, string interaction, string? version)
    {
        if (FhirHttp.RefuseQuery(http, interaction) is { } refusal) return refusal;
        var access = http.Access();
        // Not an entry's id (they are the chain's positive sequence numbers): read as 0, which names none, so that the attempt
        // is audited and answered like any unknown id — after the role's refusal, which comes first for every id.
        var sequence = long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed >= 1 ? parsed : 0;
        var read = await store.AuditLog.ReadAsync(access, sequence, http.RequestAborted);
        if (read is null) return FhirHttp.Outcome(403, Issue.Forbidden(RefusedText));
        if (read.Held is { } held) return FhirHttp.Failure(RecordResult.Held(held, "AuditEvent"));
        if (read.Entry is not { } entry)
        {
            return FhirHttp.Outcome(404, Issue.NotFound(sequence == 0
                ? "AuditEvent ids are positive whole numbers (the entry's place on the chain)."
                : $"AuditEvent/{sequence} is not known."));
        }
        if (version is not null && version != "1")
        {
            return FhirHttp.Outcome(404, Issue.NotFound(IdRules.TryParseVersion(version, out _)
                ? $"AuditEvent/{sequence} has one version, 1: an audit entry never changes."
                : "A version id is a positive whole number without leading zeros."));
        }
        http.Response.Headers.ETag = FhirJson.ETag(1);
        var services = await ServiceLabels.ReadAsync(store, access with { Purpose = KnownPurposes.SystemAdministration }, [entry.Detail.Service], http.RequestAborted);
        return new FhirResult(200, FhirJson.Write(writer => Write(writer, entry, services)));
    }

    private static async Task<IResult> SearchAsync(HttpContext http, VaubanStore store, List<(string Name, string Value)> parameters)
    {
        var access = http.Access();
        // A paging link's token holds the search it continues (another parameter beside it is refused), as a records search's does.
        if (parameters.Where(p => p.Name == "_page").Select(p => p.Value).FirstOrDefault() is { } token)
        {
            if (PageParameters.Beside(parameters.Select(p => p.Name)) is { } beside) return FhirHttp.Outcome(400, PageParameters.Refusal(beside));
            if (store.AuditLog.OpenPage(access, token) is not { } sealedParameters)
                return FhirHttp.Outcome(400, Issue.Invalid("The paging link is invalid or has expired; run the search again."));
            parameters = [.. sealedParameters];
        }
        var (query, problem) = Parse(parameters);
        if (query is null) return FhirHttp.Outcome(400, Issue.Invalid(problem!));
        // Only the page's entries are audited as consulted, not the one read ahead to know whether there is a next page.
        var found = await store.AuditLog.SearchPageAsync(access, query, http.RequestAborted);
        if (found is null) return FhirHttp.Outcome(403, Issue.Forbidden(RefusedText));
        if (found.Held is { } held) return FhirHttp.Failure(RecordResult.Held(held, "AuditEvent"));
        var page = found.Entries;
        var path = FhirHttp.BaseUrl(http) + "/AuditEvent";
        // Self and next are sealed tokens holding the parameters used (for GET and POST _search alike) and next's cursor: a
        // patient or agent id searched for is in no URL the server hands out (ADR 0003), as for a records search.
        var used = parameters.Where(p => p.Name is not ("_format" or "_pretty" or "_page")).ToList();
        string? next = null;
        if (found.More && page.Count > 0)
        {
            var cursor = ("_cursor", page[^1].Sequence.ToString(CultureInfo.InvariantCulture));
            next = FhirJson.PageLink(path, store.AuditLog.SealPage(access, [.. used.Where(p => p.Name is not "_cursor"), cursor]));
        }
        var self = FhirJson.PageLink(path, store.AuditLog.SealPage(access, used))!;
        var services = await ServiceLabels.ReadAsync(store, access with { Purpose = KnownPurposes.SystemAdministration }, page.Select(e => e.Detail.Service), http.RequestAborted);
        var body = FhirJson.Write(writer =>
        {
            // As every searchset: an id and meta.lastUpdated by the server's clock (it had neither).
            FhirJson.StartBundle(writer, "searchset", FhirHttp.Now(http));
            if (found.Total is { } total) writer.WriteNumber("total", total);
            else if (next is null && query.BeforeSequence is null) writer.WriteNumber("total", page.Count);
            writer.WriteStartArray("link");
            WriteLink(writer, "self", self);
            if (next is not null) WriteLink(writer, "next", next);
            writer.WriteEndArray();
            // FHIR JSON has no empty arrays: a page without entries (a count, a search that found nothing) has no "entry".
            if (page.Count > 0) writer.WriteStartArray("entry");
            foreach (var entry in page)
            {
                writer.WriteStartObject();
                writer.WriteString("fullUrl", $"{FhirHttp.BaseUrl(http)}/AuditEvent/{AuditLog.AuditEventId(entry)}");
                writer.WritePropertyName("resource");
                Write(writer, entry, services);
                writer.WriteStartObject("search");
                writer.WriteString("mode", "match");
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            if (page.Count > 0) writer.WriteEndArray();
            writer.WriteEndObject();
        });
        return new FhirResult(200, body);
    }

    private static void WriteLink(Utf8JsonWriter writer, string relation, string url)
    {
        writer.WriteStartObject();
        writer.WriteString("relation", relation);
        writer.WriteString("url", url);
        writer.WriteEndObject();
    }

    /// <summary>The search parameters: patient, agent, date (with prefixes, repeatable), action (C R U D E, or an
    /// interaction code), _count, and the server's own paging cursor.</summary>
    internal static (AuditQuery? Query, string? Problem) Parse(IReadOnlyList<(string Name, string Value)> parameters)
    {
        var query = new AuditQuery { Count = 50 };
        var actions = new List<AuditAction>();
        var given = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, value) in parameters)
        {
            // An entry names one patient, one record, one agent and one action: the same parameter twice (FHIR: both) would find
            // nothing, and the last one was used instead, silently — the officer got another answer than asked.
            var key = name == "entity" && value.StartsWith("Patient/", StringComparison.Ordinal) ? "patient" : name;
            if (key is "patient" or "entity" or "agent" or "action" or "_count" or "_cursor" && !given.Add(key))
                return (null, $"'{key}' is given twice: an audit entry has one, so both together would find nothing; search for each separately.");
            switch (name)
            {
                case "patient":
                    var patient = value.StartsWith("Patient/", StringComparison.Ordinal) ? value[8..] : value;
                    if (!IdRules.IsValid(patient)) return (null, "'patient' must be a Patient id or reference (Patient/123).");
                    query = query with { Patient = patient };
                    break;
                case "entity":
                    // A record in a patient's record: the entries that name it (among that patient's). A Patient is the patient.
                    var slash = value.IndexOf('/', StringComparison.Ordinal);
                    var (entityType, entityId) = slash > 0 ? (value[..slash], value[(slash + 1)..]) : ("", value);
                    if (!KnownResourceTypes.Supported.Contains(entityType) || !IdRules.IsValid(entityId))
                        return (null, "'entity' must be a reference to a record of this server (Observation/123, Patient/456).");
                    if (!PatientRecordTypes.Contains(entityType))
                        return (null, $"'entity' finds the entries of records in a patient's record; a {entityType} is in none (search by agent, date or action instead).");
                    query = entityType == KnownResourceTypes.Patient ? query with { Patient = entityId } : query with { Entity = (entityType, entityId) };
                    break;
                case "agent":
                    if (value.Length is 0 or > 128) return (null, "'agent' must be a principal id (an account or client id).");
                    if (value.Contains(',', StringComparison.Ordinal)) return (null, "'agent' takes one principal id: search for each separately.");
                    if (value.Contains('/', StringComparison.Ordinal))
                        return (null, "'agent' is the id of an account (user:…) or an API client (vc_…), as entries name who acted, not a Practitioner reference.");
                    // A client as `vauban breach --principal` and the guard's release name it (client:vc_…) is the client vc_…: before, that
                    // form matched nothing and answered an empty page, as if the client had done nothing. A session acts as its account.
                    if (value.StartsWith("session:", StringComparison.Ordinal))
                        return (null, "'agent' is an account (user:…) or an API client (vc_…): a session's acts are its account's. Search by the account; each entry names its session (agent.altId).");
                    query = query with { Agent = value.StartsWith("client:", StringComparison.Ordinal) ? value["client:".Length..] : value };
                    break;
                case "date":
                    var prefix = value.Length > 2 && char.IsLetter(value[0]) ? value[..2] : "eq";
                    var text = value.Length > 2 && char.IsLetter(value[0]) ? value[2..] : value;
                    if (!FhirDate.TryParseRange(text, out var from, out var to))
                        return (null, $"'date' must be a FHIR date or dateTime with an optional prefix (ge2026-01-01); '{Shorten(value)}' is not.");
                    switch (prefix)
                    {
                        case "eq": query = query with { From = Later(query.From, from), To = Earlier(query.To, to) }; break;
                        case "ge": query = query with { From = Later(query.From, from) }; break;
                        case "gt": query = query with { From = Later(query.From, to) }; break;
                        case "le": query = query with { To = Earlier(query.To, to) }; break;
                        case "lt": query = query with { To = Earlier(query.To, from) }; break;
                        default: return (null, $"The date prefix '{prefix}' is not supported on AuditEvent (eq, ge, gt, le, lt).");
                    }
                    break;
                case "action":
                    var matched = ActionCodes(value);
                    if (matched is null) return (null, $"'action' must be C, R, U, D or E, or one of: {string.Join(", ", Subtypes.Values.Distinct())}.");
                    actions.AddRange(matched);
                    break;
                case "_count":
                    // 0: the total alone, no entries (FHIR R4 search, _count), as a records search answers it.
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count > 1000)
                        return (null, "'_count' must be a whole number from 0 (the total alone) to 1000.");
                    query = query with { Count = count };
                    break;
                case "_cursor":
                    if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seq) || seq < 1)
                        return (null, "The paging link is not valid; run the search again.");
                    query = query with { BeforeSequence = seq };
                    break;
                case "_format" or "_pretty":
                    break;
                default:
                    return (null, $"Unknown search parameter '{Shorten(name)}' for AuditEvent. Supported: patient, entity, agent, date, action, _count.");
            }
        }
        if (actions.Count > 0) query = query with { Actions = actions.Distinct().ToList() };
        return (query, null);
    }

    /// <summary>The types whose records belong to a patient's record (those of no patient: practitioners, their roles, organizations).</summary>
    private static readonly HashSet<string> PatientRecordTypes =
        [.. KnownResourceTypes.Supported.Where(t => t is not (KnownResourceTypes.Practitioner or KnownResourceTypes.PractitionerRole or KnownResourceTypes.Organization))];

    private static DateTimeOffset Later(DateTimeOffset? a, DateTimeOffset b) => a is { } x && x > b ? x : b;
    private static DateTimeOffset Earlier(DateTimeOffset? a, DateTimeOffset b) => a is { } x && x < b ? x : b;
    private static string Shorten(string value) => value.Length <= 40 ? value : value[..40] + "…";

    private static readonly Dictionary<AuditAction, string> Subtypes = new()
    {
        [AuditAction.Read] = "read", [AuditAction.VRead] = "vread", [AuditAction.History] = "history-instance", [AuditAction.TypeHistory] = "history-type", [AuditAction.Search] = "search-type",
        [AuditAction.Create] = "create", [AuditAction.Update] = "update", [AuditAction.Delete] = "delete", [AuditAction.Everything] = "operation",
        [AuditAction.Import] = "batch", [AuditAction.Export] = "operation", [AuditAction.AuditRead] = "search-type",
    };

    private static List<AuditAction>? ActionCodes(string value) => value switch
    {
        "C" => [AuditAction.Create, AuditAction.Import],
        "R" => [AuditAction.Read, AuditAction.VRead, AuditAction.History, AuditAction.TypeHistory, AuditAction.Search, AuditAction.Everything, AuditAction.AuditRead],
        "U" => [AuditAction.Update],
        "D" => [AuditAction.Delete],
        "E" => [AuditAction.Export, AuditAction.SignIn, AuditAction.SignInFailure, AuditAction.SignOut, AuditAction.BreakTheGlass, AuditAction.Administration, AuditAction.Containment,
            AuditAction.SecurityRecords],
        _ => Subtypes.Where(p => p.Value == value).Select(p => p.Key).ToList() is { Count: > 0 } list ? list : null,
    };

    private static string ActionCode(AuditAction action) => action switch
    {
        AuditAction.Create or AuditAction.Import => "C",
        AuditAction.Update => "U",
        AuditAction.Delete => "D",
        AuditAction.Read or AuditAction.VRead or AuditAction.History or AuditAction.TypeHistory or AuditAction.Search or AuditAction.Everything or AuditAction.AuditRead => "R",
        _ => "E",
    };

    /// <summary>One entry as an R4 AuditEvent: REST events as BALP's audit-event-type "rest" with the FHIR interaction as
    /// subtype; sign-in events as DICOM "User Authentication" (110114) with Login/Logout; others as DICOM "Security Alert".</summary>
    internal static void Write(Utf8JsonWriter writer, AuditEntry entry, IReadOnlyDictionary<string, string> services)
    {
        var d = entry.Detail;
        var recorded = entry.At.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
        writer.WriteStartObject();
        writer.WriteString("resourceType", "AuditEvent");
        writer.WriteString("id", AuditLog.AuditEventId(entry));
        writer.WriteStartObject("meta");
        writer.WriteString("versionId", "1");
        writer.WriteString("lastUpdated", recorded);
        writer.WriteEndObject();

        writer.WriteStartObject("type");
        if (Subtypes.TryGetValue(entry.Action, out var subtype))
        {
            Coding(writer, "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation");
            writer.WriteEndObject();
            writer.WriteStartArray("subtype");
            writer.WriteStartObject();
            Coding(writer, "http://hl7.org/fhir/restful-interaction", subtype, null);
            writer.WriteEndObject();
            writer.WriteEndArray();
        }
        else if (entry.Action is AuditAction.SignIn or AuditAction.SignInFailure or AuditAction.SignOut)
        {
            Coding(writer, "http://dicom.nema.org/resources/ontology/DCM", "110114", "User Authentication");
            writer.WriteEndObject();
            writer.WriteStartArray("subtype");
            writer.WriteStartObject();
            if (entry.Action == AuditAction.SignOut) Coding(writer, "http://dicom.nema.org/resources/ontology/DCM", "110123", "Logout");
            else Coding(writer, "http://dicom.nema.org/resources/ontology/DCM", "110122", "Login");
            writer.WriteEndObject();
            writer.WriteEndArray();
        }
        else
        {
            Coding(writer, "http://dicom.nema.org/resources/ontology/DCM", "110113", "Security Alert");
            writer.WriteEndObject();
        }
        writer.WriteString("action", ActionCode(entry.Action));
        writer.WriteString("recorded", recorded);
        writer.WriteString("outcome", ((int)entry.Outcome).ToString(CultureInfo.InvariantCulture));
        writer.WriteString("outcomeDesc", d.Note is null ? AuditDescriptions.Action(entry.Action) + ", " + AuditDescriptions.Outcome(entry.Outcome)
            : AuditDescriptions.Action(entry.Action) + ", " + AuditDescriptions.Outcome(entry.Outcome) + ": " + d.Note);
        writer.WriteStartArray("purposeOfEvent");
        writer.WriteStartObject();
        // BALP: the purpose of use as a v3-ActReason (PurposeOfUse) coding — TREAT for care, ETREAT for emergency access under
        // break-the-glass, HSYSADMIN for the officer's review of the log, an API client's registered purpose (HPAYMT for billing…);
        // an operator's free-text purpose as text only.
        var display = KnownPurposes.Display(d.Purpose);
        if (display is not null)
        {
            writer.WriteStartArray("coding");
            writer.WriteStartObject();
            writer.WriteString("system", KnownPurposes.CodeSystem);
            writer.WriteString("code", d.Purpose);
            writer.WriteString("display", display);
            writer.WriteEndObject();
            writer.WriteEndArray();
        }
        writer.WriteString("text", AuditDescriptions.Purpose(entry.Action, d.Purpose));
        writer.WriteEndObject();
        writer.WriteEndArray();

        writer.WriteStartArray("agent");
        writer.WriteStartObject();
        writer.WriteStartObject("type");
        writer.WriteStartArray("coding");
        writer.WriteStartObject();
        writer.WriteString("system", "http://terminology.hl7.org/CodeSystem/extra-security-role-type");
        writer.WriteString("code", d.PrincipalKind == "person" ? "humanuser" : "dataprocessor");
        writer.WriteString("display", d.PrincipalKind == "person" ? "human user" : "data processor");
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        if (d.Role is not null)
        {
            writer.WriteStartArray("role");
            writer.WriteStartObject();
            writer.WriteString("text", d.Role);
            writer.WriteEndObject();
            writer.WriteEndArray();
        }
        writer.WriteStartObject("who");
        writer.WriteStartObject("identifier");
        writer.WriteString("system", d.PrincipalKind == "client" ? "urn:vauban:client" : d.PrincipalKind == "person" ? "urn:vauban:account" : "urn:vauban:operator");
        writer.WriteString("value", d.Principal);
        writer.WriteEndObject();
        if (d.PrincipalName is not null) writer.WriteString("display", d.PrincipalName);
        writer.WriteEndObject();
        if (d.Session is not null) writer.WriteString("altId", d.Session);
        writer.WriteBoolean("requestor", true);
        if (d.Service is not null)
        {
            writer.WriteStartObject("location");
            writer.WriteString("display", services.TryGetValue(d.Service, out var service) ? service : "Organization/" + d.Service);
            writer.WriteEndObject();
        }
        if (d.Source is not null)
        {
            writer.WriteStartObject("network");
            writer.WriteString("address", d.Source);
            writer.WriteString("type", "2");
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        writer.WriteEndArray();

        writer.WriteStartObject("source");
        writer.WriteString("site", "Vauban");
        writer.WriteStartObject("observer");
        writer.WriteString("display", "Vauban EPR server");
        writer.WriteEndObject();
        writer.WriteStartArray("type");
        writer.WriteStartObject();
        writer.WriteString("system", "http://terminology.hl7.org/CodeSystem/security-source-type");
        writer.WriteString("code", "4");
        writer.WriteString("display", "Application Server");
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();

        var entities = new List<(string Reference, bool IsPatient)>();
        if (d.Patient is not null) entities.Add(("Patient/" + d.Patient, true));
        foreach (var record in d.Records)
        {
            if (record != "Patient/" + d.Patient) entities.Add((record, false));
        }
        if (entities.Count > 0)
        {
            writer.WriteStartArray("entity");
            foreach (var (reference, isPatient) in entities)
            {
                writer.WriteStartObject();
                writer.WriteStartObject("what");
                // A reference only to a FHIR resource (its type is capitalised): a security record the chain names ("alert/12",
                // "containment/3", "break-glass/7"), an account or a principal is named in words, never as a reference no FHIR client resolves.
                var slash = reference.IndexOf('/', StringComparison.Ordinal);
                if (slash > 0 && char.IsAsciiLetterUpper(reference[0])) writer.WriteString("reference", reference);
                else writer.WriteString("display", reference);
                writer.WriteEndObject();
                writer.WriteStartObject("type");
                Coding(writer, "http://terminology.hl7.org/CodeSystem/audit-entity-type", isPatient ? "1" : "2", isPatient ? "Person" : "System Object");
                writer.WriteEndObject();
                writer.WriteStartObject("role");
                Coding(writer, "http://terminology.hl7.org/CodeSystem/object-role", isPatient ? "1" : "4", isPatient ? "Patient" : "Domain Resource");
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        writer.WriteEndObject();
    }

    private static void Coding(Utf8JsonWriter writer, string system, string code, string? display)
    {
        writer.WriteString("system", system);
        writer.WriteString("code", code);
        if (display is not null) writer.WriteString("display", display);
    }
}
