// FHIR's patch interaction (PATCH [type]/[id] with a JSON Patch document): the current version read under lock, the patch
// applied to it, and the result written as an update is — validated, indexed, sealed, audited — in one transaction.
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Storage;

namespace Vauban.Records;

public sealed partial class RecordsService
{
    /// <summary>
    /// Applies <paramref name="patch"/> to the current version of <paramref name="type"/>/<paramref name="id"/>. A patch reads the
    /// record as well as writes it (the answer is the whole patched resource, and a failed test tells what the record does not
    /// hold), so it needs read and update (SMART 'r' and 'u'; the role's both). A patch does not create: a record that does not
    /// exist is 404, a deleted one 410. <paramref name="ifMatch"/> holds it to a version (412 otherwise); without it the patch
    /// applies to whatever is current when the lock is taken, as RFC 6902's operations are meant to (a test guards a value).
    /// </summary>
    /// <param name="maxBytes">The largest resource the server stores (its limit of an update's body): a patch may not make a larger one.</param>
    public async Task<RecordResult> PatchAsync(AccessContext context, string type, string id, RecordPatch patch, int? ifMatch, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(patch);
        if (await CheckAsync(context, Interaction.Update, type, id, cancellationToken) is { } denied) return denied;
        if (await CheckAsync(context, Interaction.Read, type, id, cancellationToken) is { } unreadable) return unreadable;
        if (!IdRules.IsValid(id)) return RecordResult.Fail(RecordStatus.NotFound, type, Issue.NotFound($"{type}/{Shorten(id)} is not a valid id."));
        if (await AdmitAsync(context, Interaction.Update, type, [], 1, cancellationToken) is { } contained) return contained;
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        return await _database.WriteAsync(async scope =>
        {
            var written = new WriteBatch(scope);
            var current = await _rows.CurrentAsync(scope.Connection, scope.Transaction, keys.TenantId, TypeCodes.Of(type), id, forUpdate: true, cancellationToken);
            if (current is null)
            {
                return await VersionRefusedAsync(context, scope, Interaction.Update, type, id, RecordResult.Fail(RecordStatus.NotFound, type,
                    Issue.NotFound($"{type}/{id} is not known: a patch changes a record that exists (to create one, POST it or PUT it).")), cancellationToken);
            }
            if (await CheckRecordAsync(context, Interaction.Update, type, id, current.Compartment, current.CreatedBy, written, cancellationToken) is { } refused) return refused;
            var result = await PatchInScopeAsync(context, scope, keys, type, current, patch, ifMatch, maxBytes, written, cancellationToken);
            return await CommitUpdateAsync(context, written, result, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>
    /// Conditional patch, PATCH [base]/[type]?[criteria] (FHIR R4 http.html#patch): the criteria name the record, as a conditional
    /// update's do — one match is patched as a patch by id is (If-Match held to its version), none is 404 (a patch does not
    /// create), several are 412. Needs search on the type as well as read and update: whether one matched is told.
    /// </summary>
    public async Task<RecordResult> ConditionalPatchAsync(AccessContext context, string type, string criteria, RecordPatch patch, int? ifMatch, long maxBytes,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(patch);
        if (await CheckAsync(context, Interaction.Update, type, null, cancellationToken) is { } denied) return denied;
        if (await CheckAsync(context, Interaction.Read, type, null, cancellationToken) is { } unreadable) return unreadable;
        // Read is asked once, above, as a patch by id asks it (refused and audited as the read it needs); of the conditional
        // write's needs, search is left.
        if (await CheckConditionalAsync(context, Interaction.Update, type, cancellationToken,
            $"A conditional patch (PATCH {type}?criteria) searches and patches the match, which it returns: it needs search and read on {type} as well as update.",
            readAsked: true) is { } notSearchable)
            return notSearchable;
        if (await AdmitAsync(context, Interaction.Update, type, [], 1, cancellationToken) is { } contained) return contained;
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        if (ParseCriteria(context, keys, type, criteria, $"The criteria of a conditional patch (PATCH {type}?criteria)", out var invalid) is not { } query) return invalid!;
        return await _database.WriteAsync(async scope =>
        {
            var written = new WriteBatch(scope);
            var matches = await ConditionalMatchesAsync(context, scope, keys, query, cancellationToken);
            var (one, refused) = await OneMatchAsync(context, scope, type, matches, written, "conditional patch", cancellationToken);
            if (refused is not null) return refused;
            if (one is not { } match)
            {
                await AuditAsync(context, Interaction.Update, AuditOutcome.MinorFailure, type, [], cancellationToken, scope, "conditional patch: nothing matches");
                return RecordResult.Fail(RecordStatus.NotFound, type, Issue.NotFound($"No {type} matches the criteria: a patch changes a record that exists, and does not create one."));
            }
            var (locked, changed) = await LockMatchAsync(context, scope, keys, Interaction.Update, type, match, cancellationToken);
            if (changed is not null) return changed;
            var result = await PatchInScopeAsync(context, scope, keys, type, locked!, patch, ifMatch, maxBytes, written, cancellationToken);
            return await CommitUpdateAsync(context, written, result, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>A patch once its record is found, locked and open to the writer (<paramref name="current"/>): the version condition,
    /// the guard (the answer is the record: a read of it), the patch applied and checked, and the result written as an update.</summary>
    private async Task<RecordResult> PatchInScopeAsync(AccessContext context, WriteScope scope, TenantKeys keys, string type, StoredVersion current, RecordPatch patch,
        int? ifMatch, long maxBytes, WriteBatch written, CancellationToken cancellationToken)
    {
        var id = current.Id;
        // What the patch answers is the record, patched — and its refusals below tell of it too (a version, a deletion, a failed
        // test): a read of it for the guard first (a canary patched is a canary read; a client patching one patient after another,
        // or naming them by criteria, reads them as surely as one reading them), as a transaction's read is.
        if (await AdmitAsync(context, Interaction.Read, type, [current], 1, cancellationToken, scope) is { } held) return held;
        if (current.Deleted)
        {
            await AuditAsync(context, Interaction.Update, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, current.Compartment)], cancellationToken, scope, "JSON Patch: deleted");
            return new RecordResult(RecordStatus.Gone, type, id, current.Version, current.LastUpdated,
                Issues: [Issue.Error("deleted", $"{type}/{id} was deleted (version {current.Version}): there is nothing to patch; an update (PUT) brings it back.")]);
        }
        // A patch refused once the record is found is on the chain under the record's patient.
        async Task<RecordResult> RefusedAsync(RecordResult refusal, string note)
        {
            await AuditAsync(context, Interaction.Update, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, current.Compartment)], cancellationToken, scope, note);
            return refusal;
        }
        if (ifMatch is { } expected && expected != FhirJson.AnyCurrentVersion && expected != current.Version)
        {
            return await RefusedAsync(RecordResult.Fail(RecordStatus.PreconditionFailed, type,
                Issue.Error("conflict", $"Version conflict: If-Match asked for version {expected}, the current version is {current.Version}.")), "JSON Patch: version conflict");
        }
        var (bodies, damaged) = await OpenAllAsync(context, Interaction.Update, type, keys, [current], scope, cancellationToken);
        if (damaged is not null) return damaged;
        if (patch.Apply(bodies[0], maxBytes, out var failure) is not { } patched)
        {
            // Evaluated against the record: a failed test told its author what the record does not hold (RecordPatch.Evaluated).
            return await RefusedAsync(RecordResult.Fail(RecordStatus.Unprocessable, type, failure!), RecordPatch.Evaluated + "a test failed or a path led nowhere");
        }
        if (patch.OnlyTests)
        {
            // Every test held and nothing changes: the answer is the current version, read; a new identical version would only
            // grow the history (each one sealed and kept for good).
            await AuditAsync(context, Interaction.Read, AuditOutcome.Success, type, [new AuditedRecord(type, id, current.Compartment)], cancellationToken, scope,
                $"JSON Patch of tests only ({Counted.En(patch.Count, "test", "tests")} held): nothing written");
            return new RecordResult(RecordStatus.Ok, type, id, current.Version, current.LastUpdated, bodies[0]);
        }
        using var result = JsonSerializer.SerializeToDocument(patched);
        var resource = result.RootElement;
        var issues = RecordValidation.Validate(type, resource);
        if (issues.Count == 0 && (!resource.TryGetProperty("id", out var bodyId) || bodyId.ValueKind != JsonValueKind.String || bodyId.GetString() != id))
        {
            issues.Add(Issue.Invalid($"A patch may not remove or change the resource's id ({Shorten(id)}).", $"{type}.id"));
        }
        if (issues.Count > 0)
        {
            // The patched resource is not a valid one: 422, as FHIR answers a patch whose result violates the resource's rules.
            return await RefusedAsync(RecordResult.Fail(RecordStatus.Unprocessable, type,
                [Issue.Invalid("The patched resource would not be valid; nothing was changed."), .. issues]), RecordPatch.Evaluated + "the result is not a valid resource");
        }
        return await UpdateInScopeAsync(context, scope, keys, type, id, resource, current.Version, null, written, cancellationToken, locked: current,
            note: $"JSON Patch ({Counted.En(patch.Count, "operation", "operations")})", made: VersionMade.Patched);
    }
}
