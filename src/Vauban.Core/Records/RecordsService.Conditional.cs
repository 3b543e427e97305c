// Conditional create, update and delete (FHIR R4 http.html): a write that names its record by search criteria
// rather than by id. The criteria are a search of the principal's own (its policy filter applies, so a record it may not
// see is never matched, nor revealed), run inside the write transaction under one lock per establishment and type, so
// that two conditional writes racing cannot both find nothing and both create.
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Records;

public sealed partial class RecordsService
{
    /// <summary>Parameters that shape a page of results, not which records match: in a condition they change nothing, or (_count)
    /// would cut the matches short of the second one that makes them ambiguous.</summary>
    private static readonly HashSet<string> ResultParameters = new(StringComparer.Ordinal)
    {
        "_count", "_sort", "_summary", "_total", "_include", "_revinclude", "_page", "_elements",
    };

    /// <summary>
    /// Conditional update, PUT [base]/[type]?[criteria] (FHIR R4): no match creates the resource (under the id it gives, as an
    /// update as create, else under one the server assigns); one match is updated, If-Match held to its version; several are 412.
    /// Needs search and read on the type as well as update (and create when it creates): it finds a record and returns its id.
    /// </summary>
    public async Task<RecordResult> ConditionalUpdateAsync(AccessContext context, string type, string criteria, JsonElement resource, int? ifMatch,
        CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.Update, type, null, cancellationToken) is { } denied) return denied;
        if (await CheckConditionalAsync(context, Interaction.Update, type, cancellationToken) is { } notSearchable) return notSearchable;
        var issues = RecordValidation.Validate(type, resource);
        if (issues.Count > 0) return RecordResult.Fail(RecordStatus.Invalid, type, [.. issues]);
        if (await AdmitAsync(context, Interaction.Update, type, [], 1, cancellationToken) is { } contained) return contained;
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        if (ParseCriteria(context, keys, type, criteria, ConditionalUpdateCriteria(type), out var invalid) is not { } query) return invalid!;
        return await _database.WriteAsync(async scope =>
        {
            var written = new WriteBatch(scope);
            var matches = await ConditionalMatchesAsync(context, scope, keys, query, cancellationToken);
            var result = await ConditionalUpdateInScopeAsync(context, scope, keys, type, query, matches, resource, ifMatch, null, written, IdRules.NewId(), false, cancellationToken);
            return await CommitUpdateAsync(context, written, result, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>
    /// Conditional delete, DELETE [base]/[type]?[criteria] (FHIR R4, conditionalDelete "single"): one match is deleted as an
    /// ordinary delete is (If-Match held to its version); none is answered as a delete of an id that does not exist (204); several
    /// are 412, one record at a time. Needs search on the type as well as delete: whether one matched is told.
    /// </summary>
    public async Task<RecordResult> ConditionalDeleteAsync(AccessContext context, string type, string criteria, int? ifMatch, CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.Delete, type, null, cancellationToken) is { } denied) return denied;
        if (await CheckConditionalAsync(context, Interaction.Delete, type, cancellationToken) is { } notSearchable) return notSearchable;
        if (await AdmitAsync(context, Interaction.Delete, type, [], 1, cancellationToken) is { } contained) return contained;
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        if (ParseCriteria(context, keys, type, criteria, ConditionalDeleteCriteria(type), out var invalid) is not { } query) return invalid!;
        return await _database.WriteAsync(async scope =>
        {
            var batch = new WriteBatch(scope);
            var matches = await ConditionalMatchesAsync(context, scope, keys, query, cancellationToken);
            var result = await ConditionalDeleteInScopeAsync(context, scope, keys, type, matches, ifMatch, batch, false, cancellationToken);
            if (result.Status is not RecordStatus.NoContent) return result;
            if (await StillNamedAsync(context, batch, cancellationToken) is { } named) return named.Refused;
            await scope.CommitAsync(cancellationToken);
            return result;
        }, cancellationToken);
    }

    private static string ConditionalUpdateCriteria(string type) => $"The criteria of a conditional update (PUT {type}?criteria)";

    private static string ConditionalDeleteCriteria(string type) => $"The criteria of a conditional delete (DELETE {type}?criteria)";

    /// <summary>
    /// The search a condition names, or null with the 400 that says why: it must filter (at least one search parameter: no
    /// criteria would match every record), on parameters the type has (an unknown one is refused, not ignored: ignored, it would
    /// widen the match), and without the parameters that shape a page (<see cref="ResultParameters"/>) — nor, in If-None-Exist,
    /// those that say how the answer is written (_format, _pretty).
    /// </summary>
    /// <param name="condition">What the criteria are, for the messages ("If-None-Exist", "The criteria of a conditional update …").</param>
    private SearchQuery? ParseCriteria(AccessContext context, TenantKeys keys, string type, string criteria, string condition, out RecordResult? invalid)
    {
        // R4 (If-None-Exist, Bundle.entry.request.ifNoneExist): the criteria are the query alone, what follows the '?'. A URL or a
        // Type?query sent instead was parsed as a parameter named after its path, and refused as an unknown parameter or, for a
        // host name with a dot, as a chained search.
        var asked = criteria.StartsWith('?') ? criteria[1..] : criteria;
        var question = asked.IndexOf('?', StringComparison.Ordinal);
        var equals = asked.IndexOf('=', StringComparison.Ordinal);
        if (question >= 0 && (equals < 0 || question < equals))
        {
            invalid = RecordResult.Fail(RecordStatus.Invalid, type, Issue.Invalid(
                $"{condition} must be the search parameters alone, what follows '?' in a search URL (e.g. identifier=system|value), not a URL or {type}?parameters."));
            return null;
        }
        var parameters = CriteriaParameters(criteria);
        var issues = new List<Issue>();
        foreach (var name in parameters.Select(p => p.Key.Split(':')[0]).Distinct(StringComparer.Ordinal))
        {
            if (ResultParameters.Contains(name))
            {
                issues.Add(Issue.Invalid($"{condition}: {name} has no place there; the criteria select the record to write, not a page of results.", name));
            }
            // _format and _pretty say how the answer is written. A conditional update's or delete's criteria are its URL's query, where
            // they are the request's own (FhirHttp.CheckFormat reads them) and no criteria; If-None-Exist (or an entry's ifNoneExist)
            // holds criteria alone, and there they would apply to nothing: refused, as a page's parameters are, rather than skipped.
            else if (condition == IfNoneExistCriteria && name is "_format" or "_pretty")
            {
                issues.Add(Issue.Invalid($"{condition}: {name} is no search criterion; it says how the answer is written, which is the request URL's to say "
                    + $"(POST [base]/[type]?{name}=…, or for a bundle's entry the URL that posts the Bundle), not the criteria's.", name));
            }
        }
        var query = issues.Count > 0 || parameters.Count == 0 ? null : SearchQuery.Parse(type, parameters, keys, lenient: false, issues, Today(), context.ServerBase);
        if (query is null || query.Clauses.Count == 0)
        {
            if (issues.Count == 0) issues.Add(Issue.Invalid($"{condition} must be a search query such as identifier=system|value."));
            invalid = RecordResult.Fail(RecordStatus.Invalid, type, [.. issues]);
            return null;
        }
        // Two are enough to know that the criteria are ambiguous.
        query.Count = 2;
        invalid = null;
        return query;
    }

    /// <summary>A condition's parameters, URL-decoded, as a search's are read (the leading '?' optional).</summary>
    private static List<KeyValuePair<string, string>> CriteriaParameters(string criteria) =>
        Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(criteria.StartsWith('?') ? criteria : "?" + criteria)
            .SelectMany(p => p.Value.Select(v => new KeyValuePair<string, string>(p.Key, v ?? ""))).ToList();

    /// <summary>The lock conditional writes of one type take in one establishment: a search of that type finds only records of
    /// that type, so writes of other types need not wait.</summary>
    private static string ConditionalWriteLock(TenantKeys keys, string type) => $"conditional-write/{keys.TenantId}/{type}";

    /// <summary>
    /// The current records the criteria match that the principal may see (up to three: more than one is an answer already).
    /// Two conditional writes racing would both find nothing and both create (PostgreSQL runs writers side by side): one at a
    /// time per establishment and type, each searching what the one before it committed. Criteria of any parameters may match
    /// the same record, so the lock is not narrowed to them; creates, updates and deletes take the same one. Writes by id (a
    /// create, an update or delete of Type/id) take no such lock: one committed between this search and the row's lock may
    /// change what matches, as it may for a conditional create; conditional writes only are settled among themselves.
    /// </summary>
    private async Task<List<StoredVersion>> ConditionalMatchesAsync(AccessContext context, WriteScope scope, TenantKeys keys, SearchQuery query, CancellationToken cancellationToken)
    {
        await _database.LockAsync(scope, ConditionalWriteLock(keys, query.Type), cancellationToken);
        var (rows, _) = await QueryAsync(context, scope.Connection, scope.Transaction, query, null, cancellationToken);
        return rows;
    }

    /// <summary>If-None-Exist: a create that matches exactly one resource returns it instead of creating; more than one is 412.
    /// With no result (nothing matched: the create goes ahead), the criteria read, for <see cref="UnmetCriteriaAsync"/>.</summary>
    private async Task<(RecordResult? Result, SearchQuery? Criteria)> IfNoneExistMatchAsync(AccessContext context, WriteScope scope, TenantKeys keys, string type, string criteria,
        CancellationToken cancellationToken)
    {
        if (ParseCriteria(context, keys, type, criteria, IfNoneExistCriteria, out var invalid) is not { } query) return (invalid, null);
        var rows = await ConditionalMatchesAsync(context, scope, keys, query, cancellationToken);
        if (rows.Count == 0) return (null, query);
        if (rows.Count > 1)
        {
            return (RecordResult.Fail(RecordStatus.PreconditionFailed, type, Issue.Error("duplicate", "If-None-Exist matches more than one resource; make the criteria more selective.")), null);
        }
        if (await AdmitAsync(context, Interaction.Read, type, rows, 1, cancellationToken, scope) is { } contained) return (contained, null);
        var (bodies, damaged) = await OpenAllAsync(context, Interaction.Read, type, keys, rows, scope, cancellationToken);
        if (damaged is not null) return (damaged, null);
        await AuditAsync(context, Interaction.Read, AuditOutcome.Success, type, [new AuditedRecord(type, rows[0].Id, rows[0].Compartment)], cancellationToken, scope, "conditional create matched");
        return (new RecordResult(RecordStatus.Ok, type, rows[0].Id, rows[0].Version, rows[0].LastUpdated, bodies[0]), null);
    }

    private const string IfNoneExistCriteria = "If-None-Exist";

    /// <summary>
    /// A record a conditional create wrote, or a conditional update that matched nothing, must be one its own criteria find
    /// (<see cref="WriteBatch.HoldTo"/>): otherwise the same request sent again finds nothing again and creates a second record —
    /// for a Patient, a duplicate identity, which a hospital must not make. Refused then (400, audited as a refused create; the
    /// caller rolls the write back), naming each criterion the resource does not meet. Asked of the record as written, inside the
    /// write's transaction, by the search's own SQL over the index rows the write made from the resource (its blind-index hashes,
    /// references and dates), one criterion at a time: the same matching as the search the criteria are, not a second one. Asked
    /// last of the write's checks (<see cref="RefusedWriteAsync"/>), once the policy has judged the patient the record goes into:
    /// a writer that may not write there gets the policy's answer, as for a create without criteria, and a refusal here is on that
    /// patient's access history. Null when every record created meets its criteria. An update of the one match may change what
    /// matches (correcting an identifier is such an update): only a record created is held to them, and the same request sent
    /// again is then refused here rather than creating a duplicate.
    /// </summary>
    private async ValueTask<(RecordResult Refused, WrittenRecord Record)?> UnmetCriteriaAsync(AccessContext context, WriteBatch written, CancellationToken cancellationToken)
    {
        foreach (var (type, id, criteria, condition) in written.HeldToCriteria)
        {
            var unmet = new List<string>();
            foreach (var clause in criteria.Clauses)
            {
                using var command = written.Scope.Command("");
                SearchSql.Build(command, Engine, criteria.OfRecord(clause, id), context.Tenant.Id, null, countOnly: true, allowed: null);
                if (await command.ScalarLongAsync(cancellationToken) == 0 && !unmet.Contains(clause.Parameter)) unmet.Add(clause.Parameter);
            }
            var record = written.Written.Last(r => r.Type == type && r.Id == id);
            // The patient whose record it would have gone into; a Patient created is in no one's record yet (its id is rolled back).
            var patient = type == KnownResourceTypes.Patient && record.Compartment == id ? null : record.Compartment;
            if (unmet.Count == 0)
            {
                // Met; and the only record they find of those the writer may see, the write's own included: criteria matched before a
                // transaction wrote anything found nothing, and another of its entries — a plain create of the same NIR — may have
                // written one since. Two patients of one identity were made that way (found by a black-box review).
                var (found, _) = await QueryAsync(context, written.Scope.Connection, written.Scope.Transaction, criteria, null, cancellationToken, written.NewPatients);
                if (found.Count < 2) continue;
                await AuditAsync(context, Interaction.Create, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, null, patient)], cancellationToken, written.Scope,
                    "conditional write: its criteria also match another record the same write made");
                return (RecordResult.Fail(RecordStatus.PreconditionFailed, type, Issue.Error("duplicate",
                    $"{condition}: nothing matched them before this write, but another {type} it writes matches them too: created, there would be two. "
                    + "Create it once, and refer to that entry's fullUrl.")), record);
            }
            await AuditAsync(context, Interaction.Create, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, null, patient)], cancellationToken, written.Scope,
                "conditional write: nothing matched its criteria, and the resource does not meet them");
            return (RecordResult.Fail(RecordStatus.Invalid, type, [.. unmet.Select(parameter => Issue.Invalid(
                $"{condition}: nothing matches them, and the {type} given does not meet {parameter}: created, it would not be found by the same criteria, and the same "
                + $"request sent again would create a second {type}. Give the {type} the values its criteria search for, or criteria its values meet.",
                parameter))]), record);
        }
        return null;
    }

    /// <summary>
    /// A conditional update once its criteria (<paramref name="criteria"/>) are matched (<paramref name="matches"/>, from
    /// <see cref="ConditionalMatchesAsync"/>). Every outcome is audited as the act it is: the update or create written, or the
    /// update refused. A record it creates is held to the criteria (<see cref="WriteBatch.HoldTo"/>).
    /// </summary>
    /// <param name="newId">The id a create gets when nothing matches and the resource gives none (a transaction assigns it before it
    /// writes, for the references to the entry's fullUrl).</param>
    /// <param name="matchAdmitted">The guard has already admitted the one match (a transaction asks it before its overlap and fullUrl
    /// checks, which tell of the match): it is not asked twice of the same record.</param>
    private async Task<RecordResult> ConditionalUpdateInScopeAsync(AccessContext context, WriteScope scope, TenantKeys keys, string type, SearchQuery criteria, List<StoredVersion> matches,
        JsonElement resource, int? ifMatch, IReadOnlyDictionary<string, string>? references, WriteBatch written, string newId, bool matchAdmitted, CancellationToken cancellationToken)
    {
        // Validated: an id, when present, is a string.
        var givenId = resource.TryGetProperty("id", out var id) ? id.GetString() : null;
        var (one, refused) = await OneMatchAsync(context, scope, type, matches, written, "conditional update", cancellationToken);
        if (refused is not null) return refused;
        if (one is { } match)
        {
            // The match's id leaves with the answer, and a 400 for another id in the body tells that exactly one matched: the guard
            // counts its patient first, as a conditional create's match.
            if (!matchAdmitted && await AdmitAsync(context, Interaction.Update, type, [match], 1, cancellationToken, scope) is { } contained) return contained;
            if (givenId is not null && givenId != match.Id)
            {
                await AuditAsync(context, Interaction.Update, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, match.Id, match.Compartment)], cancellationToken, scope,
                    "conditional update: the resource's id is not the match's");
                return RecordResult.Fail(RecordStatus.Invalid, type, Issue.Invalid(
                    $"The resource's id ({givenId}) is not the id of the {type} the criteria match: leave the id out, or give the matching record's.", $"{type}.id"));
            }
            var (locked, changed) = await LockMatchAsync(context, scope, keys, Interaction.Update, type, match, cancellationToken);
            if (changed is not null) return changed;
            return await UpdateInScopeAsync(context, scope, keys, type, match.Id, resource, ifMatch, references, written, cancellationToken, locked);
        }
        if (ifMatch is not null)
        {
            await AuditAsync(context, Interaction.Update, AuditOutcome.MinorFailure, type, [], cancellationToken, scope, "conditional update: If-Match given, and nothing matches");
            return RecordResult.Fail(RecordStatus.PreconditionFailed, type, Issue.Error("conflict", $"If-Match was given but no {type} matches the criteria."));
        }
        if (givenId is null)
        {
            if (_policy.Authorize(context, Interaction.Create, type) is { Allowed: false } create)
            {
                var reason = $"{create.Reason} No {type} matches the criteria, and a conditional update that would create one needs create on {type} as well as update.";
                await AuditAsync(context, Interaction.Create, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, null, null)], cancellationToken, scope,
                    "refused by the access policy: " + reason);
                return RecordResult.Fail(RecordStatus.Forbidden, type, Issue.Forbidden(reason));
            }
            var created = await CreateInScopeAsync(context, scope, keys, type, resource, newId, references, written, VersionMade.CreatedByUpdate, cancellationToken);
            return written.HoldTo(created, criteria, ConditionalUpdateCriteria(type));
        }
        // The resource gives its id: an update as create of it (R4). An id that is a record the criteria did not match cannot be
        // created, and updating it would change a record the client did not designate: 409, as R5 says it. A record the writer may
        // not see is answered as a PUT of its id answers (UpdateInScopeAsync), a deleted one brought back as that PUT would.
        var current = await CurrentForUpdateAsync(scope, keys, TypeCodes.Of(type), givenId, cancellationToken);
        if (current is { Deleted: false }
            && (await _policy.AuthorizeRecordAsync(context, type, current.Compartment, current.CreatedBy, written.NewPatients, cancellationToken)).Verdict == RecordVerdict.Allow)
        {
            await AuditAsync(context, Interaction.Update, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, givenId, current.Compartment)], cancellationToken, scope,
                "conditional update: nothing matches, and the resource's id names a record that does not match");
            return RecordResult.Fail(RecordStatus.Conflict, type, Issue.Conflict(
                $"No {type} matches the criteria, but the resource's id names {type}/{givenId}, which exists and does not match them: leave the id out to create a new record, or PUT {type}/{givenId} to update that one."));
        }
        var put = await UpdateInScopeAsync(context, scope, keys, type, givenId, resource, null, references, written, cancellationToken);
        return written.HoldTo(put, criteria, ConditionalUpdateCriteria(type));
    }

    /// <summary>
    /// A conditional update's or patch's one match, or none: several are 412 (audited as <paramref name="act"/>'s). The policy
    /// filtered the search; it is asked again of the record, as a write by id asks it, before the guard and any answer. A record
    /// not to be revealed is as if it had not matched (the refusal is on the chain).
    /// </summary>
    private async Task<(StoredVersion? Match, RecordResult? Refused)> OneMatchAsync(AccessContext context, WriteScope scope, string type, List<StoredVersion> matches,
        WriteBatch written, string act, CancellationToken cancellationToken)
    {
        if (matches.Count > 1)
        {
            await AuditAsync(context, Interaction.Update, AuditOutcome.MinorFailure, type, [], cancellationToken, scope, $"{act}: the criteria match more than one record");
            return (null, RecordResult.Fail(RecordStatus.PreconditionFailed, type, Issue.Error("multiple-matches",
                $"The criteria match more than one {type}; make them more selective (an identifier with its system, for instance).")));
        }
        if (matches is not [var match]) return (null, null);
        if (await CheckRecordAsync(context, Interaction.Update, type, match.Id, match.Compartment, match.CreatedBy, written, cancellationToken) is { } refused)
        {
            return refused.Status == RecordStatus.NotFound ? (null, null) : (null, refused);
        }
        return (match, null);
    }

    /// <summary>
    /// The match, its row now locked, must still be the version the search found: a write by id takes no conditional lock, and one
    /// committed between the search and the row's lock (PostgreSQL) may have deleted the record — the update would bring it back —
    /// or changed it so that it no longer matches. Then the conditional write is refused (409, retry), audited. Unchanged, the locked
    /// row is returned for the update or delete to write from, so that it is read once.
    /// </summary>
    private async Task<(StoredVersion? Locked, RecordResult? Changed)> LockMatchAsync(AccessContext context, WriteScope scope, TenantKeys keys, Interaction act, string type,
        StoredVersion match, CancellationToken cancellationToken)
    {
        var locked = await CurrentForUpdateAsync(scope, keys, TypeCodes.Of(type), match.Id, cancellationToken);
        if (locked is { Deleted: false } && locked.Version == match.Version) return (locked, null);
        return (null, await VersionRefusedAsync(context, scope, act, type, match.Id, RecordResult.Fail(RecordStatus.Conflict, type,
            Issue.Conflict($"The {type} the criteria matched was changed or deleted by another request meanwhile; retry.")), cancellationToken));
    }

    /// <summary>A conditional delete once its criteria are matched: audited as a delete, done or refused.</summary>
    /// <param name="matchAdmitted">As for <see cref="ConditionalUpdateInScopeAsync"/>: the guard has already admitted the one match.</param>
    private async Task<RecordResult> ConditionalDeleteInScopeAsync(AccessContext context, WriteScope scope, TenantKeys keys, string type, List<StoredVersion> matches, int? ifMatch,
        WriteBatch batch, bool matchAdmitted, CancellationToken cancellationToken)
    {
        if (matches.Count > 1)
        {
            await AuditAsync(context, Interaction.Delete, AuditOutcome.MinorFailure, type, [], cancellationToken, scope, "conditional delete: the criteria match more than one record");
            return RecordResult.Fail(RecordStatus.PreconditionFailed, type, Issue.Error("multiple-matches",
                $"The criteria match more than one {type}, and this server deletes one record at a time (conditionalDelete: single); make them more selective."));
        }
        if (matches is [var match])
        {
            if (await CheckRecordAsync(context, Interaction.Delete, type, match.Id, match.Compartment, match.CreatedBy, batch, cancellationToken) is { } refused)
            {
                // Not revealed: answered as if nothing matched (the refusal is on the chain).
                if (refused.Status != RecordStatus.NotFound) return refused;
                matches = [];
            }
            else
            {
                if (!matchAdmitted && await AdmitAsync(context, Interaction.Delete, type, [match], 1, cancellationToken, scope) is { } contained) return contained;
                var (locked, changed) = await LockMatchAsync(context, scope, keys, Interaction.Delete, type, match, cancellationToken);
                if (changed is not null) return changed;
                return await DeleteInScopeAsync(context, scope, keys, type, match.Id, ifMatch, batch, cancellationToken, locked);
            }
        }
        // Nothing matches: as a delete of an id that does not exist, 204 (or 412 under If-Match), audited as a failed delete.
        await AuditAsync(context, Interaction.Delete, AuditOutcome.MinorFailure, type, [], cancellationToken, scope,
            ifMatch is null ? "conditional delete: nothing matches" : "conditional delete: If-Match given, and nothing matches");
        return ifMatch is null
            ? new RecordResult(RecordStatus.NoContent, type)
            : RecordResult.Fail(RecordStatus.PreconditionFailed, type, Issue.Error("conflict", $"If-Match was given but no {type} matches the criteria."));
    }

    /// <summary>
    /// A conditional write runs a search and reveals what it found — whether a record matched (all three), and its id or content
    /// (create returns the match, update its id): it needs search, and read where the match is revealed, on the type as well as
    /// the write, or it would be a reader for a write-only client. Refused (and audited as the refused write) before the search runs,
    /// so that nothing about a match is revealed.
    /// </summary>
    /// <param name="what">What the conditional write is and needs, when it is not the act's own (a conditional patch is an update).</param>
    /// <param name="readAsked">The caller has asked read of the type already (a patch needs it for itself): it is not asked twice.</param>
    private async ValueTask<RecordResult?> CheckConditionalAsync(AccessContext context, Interaction act, string type, CancellationToken cancellationToken, string? what = null,
        bool readAsked = false)
    {
        Interaction[] needed = act == Interaction.Delete || readAsked ? [Interaction.Search] : [Interaction.Search, Interaction.Read];
        foreach (var interaction in needed)
        {
            var decision = _policy.Authorize(context, interaction, type);
            if (decision.Allowed) continue;
            var why = what ?? act switch
            {
                Interaction.Create => $"A conditional create (If-None-Exist) searches and returns the match: it needs search and read on {type} as well as create.",
                Interaction.Update => $"A conditional update (PUT {type}?criteria) searches and updates the match, whose id it returns: it needs search and read on {type} as well as update.",
                _ => $"A conditional delete (DELETE {type}?criteria) searches for the record it deletes: it needs search on {type} as well as delete.",
            };
            var reason = $"{decision.Reason} {why}";
            await AuditRefusalAsync(context, act, type, null, reason, cancellationToken);
            return RecordResult.Fail(RecordStatus.Forbidden, type, Issue.Forbidden(reason));
        }
        // The grants the policy's SQL filter of the match opens (built where nothing can be awaited).
        await _policy.PrepareAsync(context, cancellationToken);
        return null;
    }
}
