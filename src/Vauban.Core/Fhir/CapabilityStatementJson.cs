// GET /fhir/metadata: generated from the same tables the server runs on (types, search parameters),
// so it lists exactly what is supported.
using System.Text.Json;
using Vauban.Records;
using Vauban.Records.Search;

namespace Vauban.Fhir;

public static class CapabilityStatementJson
{
    public static byte[] Build(string baseUrl, string version) => FhirJson.Write(writer =>
    {
        writer.WriteStartObject();
        writer.WriteString("resourceType", "CapabilityStatement");
        writer.WriteString("status", "active");
        writer.WriteString("date", "2026-11-22");
        writer.WriteString("publisher", "Vauban");
        writer.WriteString("kind", "instance");
        writer.WriteStartObject("software");
        writer.WriteString("name", "Vauban");
        writer.WriteString("version", version);
        writer.WriteEndObject();
        writer.WriteStartObject("implementation");
        writer.WriteString("description", "Vauban electronic patient record — FHIR R4 API");
        writer.WriteString("url", baseUrl);
        writer.WriteEndObject();
        WriteStrings(writer, "instantiates", ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]);
        writer.WriteString("fhirVersion", "4.0.1");
        WriteStrings(writer, "format", ["application/fhir+json", "json"]);
        WriteStrings(writer, "patchFormat", [Records.RecordPatch.MediaType]);
        writer.WriteStartArray("rest");
        writer.WriteStartObject();
        writer.WriteString("mode", "server");
        writer.WriteString("documentation", "Search limits: identifying values are stored as keyed blind indexes, not in clear. A string parameter matches "
            + "by starts-with on the first " + Records.Search.IndexEntries.MaxPrefix + " letters or digits of the value (accent- and case-insensitive; a longer value "
            + "matches on those), or with :exact; :contains is not available. _sort takes _lastUpdated, _id or a date of care, not identifying values. "
            + "Dates and times without a zone, stored or searched, are Paris's (Europe/Paris), as R4 search lets a server read them; birth dates are calendar dates. "
            + "Paging and self links are opaque tokens for the same client or person, for an hour. Prefer: handling=lenient ignores unknown or unsupported "
            + "parameters and names them in the page's OperationOutcome entry; an unsupported modifier on a filter is refused even then. " + ConditionalDocumentation);
        writer.WriteStartObject("security");
        writer.WriteBoolean("cors", false);
        writer.WriteStartArray("service");
        writer.WriteStartObject();
        writer.WriteStartArray("coding");
        writer.WriteStartObject();
        writer.WriteString("system", "http://terminology.hl7.org/CodeSystem/restful-security-service");
        writer.WriteString("code", "SMART-on-FHIR");
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteStartArray("extension");
        writer.WriteStartObject();
        writer.WriteString("url", "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
        writer.WriteStartArray("extension");
        writer.WriteStartObject();
        writer.WriteString("url", "token");
        writer.WriteString("valueUri", baseUrl.EndsWith("/fhir", StringComparison.Ordinal) ? baseUrl[..^5] + "/oauth/token" : baseUrl + "/oauth/token");
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteString("description", "OAuth 2.0 client credentials (client secret or private_key_jwt, SMART Backend Services); SMART v2 system scopes.");
        writer.WriteEndObject();
        writer.WriteStartArray("resource");
        // The audit log, rendered from its hash chain: read and search, for the security officer only.
        writer.WriteStartObject();
        writer.WriteString("type", "AuditEvent");
        writer.WriteString("documentation", "The tamper-evident audit log (IHE BALP shapes), for the security officer; a patient's access history is the search by patient. Never written through the API.");
        writer.WriteStartArray("interaction");
        foreach (var code in new[] { "read", "vread", "search-type" })
        {
            writer.WriteStartObject();
            writer.WriteString("code", code);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteStartArray("searchParam");
        WriteParam(writer, "patient", "reference", "The patient whose record was touched (Patient/123 or 123)");
        WriteParam(writer, "entity", "reference", "A record in a patient's record (Observation/123; a Patient is the patient): the entries that name it");
        WriteParam(writer, "agent", "token", "The principal: an account or client id");
        WriteParam(writer, "date", "date", "When the act was recorded (eq, ge, gt, le, lt). " + SearchParameter.WithoutZone);
        WriteParam(writer, "action", "token", "C, R, U, D or E, or a FHIR interaction code (read, search-type, create, …)");
        writer.WriteEndArray();
        writer.WriteEndObject();
        foreach (var type in TypeCodes.Names.Order(StringComparer.Ordinal))
        {
            writer.WriteStartObject();
            writer.WriteString("type", type);
            writer.WriteStartArray("interaction");
            foreach (var code in new[] { "read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type" })
            {
                writer.WriteStartObject();
                writer.WriteString("code", code);
                if (code == "patch") writer.WriteString("documentation", PatchDocumentation);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteString("versioning", "versioned-update");
            writer.WriteBoolean("readHistory", true);
            writer.WriteBoolean("updateCreate", true);
            writer.WriteString("conditionalRead", "full-support");
            // Every type: each has its search parameters, which the conditions are (ConditionalDocumentation).
            writer.WriteBoolean("conditionalCreate", true);
            writer.WriteBoolean("conditionalUpdate", true);
            writer.WriteString("conditionalDelete", "single");
            var references = SearchParameters.For(type).Values.Where(p => p.Kind == SearchParamKind.Reference).ToList();
            WriteStrings(writer, "searchInclude", references.Select(p => $"{type}:{p.Name}"));
            WriteStrings(writer, "searchRevInclude", TypeCodes.Names.SelectMany(source => SearchParameters.For(source).Values
                .Where(p => p.Kind == SearchParamKind.Reference && p.MayReferTo(type))
                .Select(p => $"{source}:{p.Name}")).Order(StringComparer.Ordinal));
            writer.WriteStartArray("searchParam");
            WriteParam(writer, "_id", "token", "Logical id");
            WriteParam(writer, "_lastUpdated", "date", "When the resource last changed (ap: within a tenth of the time between the date and today on each side, at least a day). "
                + SearchParameter.WithoutZone);
            foreach (var parameter in SearchParameters.For(type).Values.Where(p => !p.Hidden).OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                WriteParam(writer, parameter.Name, parameter.Kind.ToString().ToLowerInvariant(), parameter.Description);
            }
            writer.WriteEndArray();
            if (type == "Patient")
            {
                writer.WriteStartArray("operation");
                writer.WriteStartObject();
                writer.WriteString("name", "everything");
                writer.WriteString("definition", "http://hl7.org/fhir/OperationDefinition/Patient-everything");
                writer.WriteString("documentation", "Parameters _type (types this server holds), _since (an instant) and _count (pages with a next link; "
                    + "without it, pages of up to 10,000 resources; a total only when the record fits one page; 0: the total alone); start and end are not supported; other parameters are refused, or ignored with Prefer: handling=lenient.");
                writer.WriteEndObject();
                writer.WriteStartObject();
                writer.WriteString("name", "break-the-glass");
                writer.WriteString("definition", "urn:vauban:OperationDefinition:Patient-break-the-glass");
                writer.WriteString("documentation", "A signed-in person opens a record outside their care relationships: Parameters with 'reason' (valueCode: "
                    + string.Join(", ", Access.KnownBreakGlassReasons.Labels.Keys) + ") and 'text' (valueString); needs a second-factor proof from the last minutes; the security officer is told.");
                writer.WriteEndObject();
                writer.WriteStartObject();
                writer.WriteString("name", "export");
                writer.WriteString("definition", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export");
                writer.WriteString("documentation", ExportDocumentation);
                writer.WriteEndObject();
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteStartArray("operation");
        writer.WriteStartObject();
        writer.WriteString("name", "export");
        writer.WriteString("definition", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export");
        writer.WriteString("documentation", ExportDocumentation);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteStartArray("interaction");
        foreach (var (code, documentation) in new[] { ("transaction", TransactionDocumentation), ("batch", BatchDocumentation) })
        {
            writer.WriteStartObject();
            writer.WriteString("code", code);
            writer.WriteString("documentation", documentation);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
    });

    // What an integrator cannot guess from the code alone: the order entries run in, that reads and searches see the transaction's
    // writes, and what paging means inside a transaction.
    private const string TransactionDocumentation = "All or nothing: creates, updates and deletes (also conditional ones), reads by id or version "
        + "(GET [type]/[id], [type]/[id]/_history/[vid]) and searches (GET [type]?…, GET [type]), in one database transaction, in the order R4 gives "
        + "(DELETE, POST, PUT, then GET): a read or search sees the transaction's own writes. A search's result is a searchset Bundle, the entry's "
        + "resource; it is the first page (_count honoured) with the paging links a search alone gives, followed once the transaction is committed "
        + "as requests of their own (_page inside a transaction is refused with 400); at most 20 searches a transaction (a batch takes more). "
        + "Searches are authorized, guarded and audited as alone. Any "
        + "entry's failure (a search's unknown parameter included: 400) rolls every entry back, and no search result is returned. " + EntryFormatDocumentation;

    private const string BatchDocumentation = "Each entry on its own, in order, as if sent alone (searches included): one entry's failure is its "
        + "response's status and changes nothing of the others. " + EntryFormatDocumentation;

    private const string EntryFormatDocumentation = "The response Bundle is written whole as the request posting it asks (_format, _pretty): an "
        + "entry's request.url taking _pretty is refused (400), and _format but JSON (406); a search entry's _summary=count is its count alone, as alone.";

    private const string PatchDocumentation = "PATCH [base]/[type]/[id] with a JSON Patch document (RFC 6902, Content-Type: "
        + Records.RecordPatch.MediaType + "), or PATCH [base]/[type]?criteria, a conditional patch (one match patched, none 404, several 412; needs search "
        + "too); FHIRPath Patch is not supported, nor a patch inside a batch or transaction. "
        + "Needs read as well as update on the type (system/[type].ru): the answer is the whole patched resource. If-Match holds it to a version "
        + "(412); a failed test or a path that leads nowhere is 422, as is a result that is not a valid resource; a patch does not create (404, 410 when deleted).";

    private const string ConditionalDocumentation = "Conditional create (If-None-Exist, or a bundle entry's ifNoneExist), update (PUT [type]?criteria) and "
        + "delete (DELETE [type]?criteria), alone or in a batch or transaction: the criteria are search parameters of the type, at least one, none "
        + "unknown and none that shapes a page (_count, _sort, _summary, _total, _include, _revinclude, _elements), and match only the records the "
        + "caller may see. Update: no match creates (under the resource's id if it gives one and that id is not another record, else 409), one match "
        + "is updated (a resource id other than the match's is 400), several are 412. Delete: one match is deleted, none is 204 as for an unknown id, "
        + "several are 412 (one record at a time). If-Match applies to the match. A record a conditional create or update creates must be found by its "
        + "own criteria, as the same search would find it once written: else 400 naming each criterion it does not meet, and nothing is written (an "
        + "update of the one match may change what the criteria match: an identifier corrected). Conditional create and update need search and read on the type, "
        + "conditional delete search, as well as the write. In a transaction the matches are resolved before anything is written, and two entries "
        + "with the same criteria, or whose matches are one record, fail it.";

    private const string ExportDocumentation = "FHIR Bulk Data Access v2: GET with 'Prefer: respond-async' and 'X-Vauban-Reason' (a stated reason, required); "
        + "_type, _since, _outputFormat=application/fhir+ndjson. Needs read and search on each type (system/*.rs). Files are generated on download, "
        + "with the same token, for the same client or person only. Above the establishment's size threshold the export waits for a second person's approval.";

    private static void WriteParam(Utf8JsonWriter writer, string name, string type, string description)
    {
        writer.WriteStartObject();
        writer.WriteString("name", name);
        writer.WriteString("type", type);
        if (type == "string") description = (description.Length > 0 ? description.TrimEnd('.') + ". " : "")
            + "Starts-with on the first " + Records.Search.IndexEntries.MaxPrefix + " letters or digits (accent- and case-insensitive), or :exact; no :contains (stored encrypted).";
        if (description.Length > 0) writer.WriteString("documentation", description);
        writer.WriteEndObject();
    }

    /// <summary>An array of strings, left out when there are none: FHIR JSON has no empty arrays.</summary>
    private static void WriteStrings(Utf8JsonWriter writer, string name, IEnumerable<string> values)
    {
        var list = values.ToList();
        if (list.Count == 0) return;
        writer.WriteStartArray(name);
        foreach (var value in list) writer.WriteStringValue(value);
        writer.WriteEndArray();
    }
}
