// The one door to patient data. Every interaction takes an AccessContext and goes, in this order,
// through the access policy, the guard, the audit append (before any data leaves) and only then to
// storage, decrypting or encrypting in RecordCipher. Storage types are internal to this assembly:
// nothing outside Vauban.Core can reach a row without passing here.
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Guard;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Records;

public sealed partial class RecordsService
{
    private readonly StoreDatabase _database;
    private readonly ResourceRows _rows;
    private readonly KeyRing _keys;
    private readonly AccessPolicy _policy;
    private readonly RecordsGuard _guard;
    private readonly AuditTrail _audit;
    private readonly PageTokens _pages;
    private readonly TimeProvider _time;

    internal RecordsService(StoreDatabase database, KeyRing keys, AccessPolicy policy, RecordsGuard guard, AuditTrail audit, TimeProvider time)
    {
        _database = database;
        _rows = new ResourceRows(database);
        _keys = keys;
        _policy = policy;
        _guard = guard;
        _audit = audit;
        _pages = new PageTokens(keys.Master);
        _time = time;
    }

    private StorageEngine Engine => _database.Engine;

    public async Task<RecordResult> ReadAsync(AccessContext context, string type, string id, CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.Read, type, id, cancellationToken) is { } denied) return denied;
        if (!IdRules.IsValid(id)) return RecordResult.Fail(RecordStatus.NotFound, type, Issue.NotFound($"{type}/{Shorten(id)} is not a valid id."));
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var row = await _rows.CurrentAsync(context.Tenant.Id, TypeCodes.Of(type), id, cancellationToken);
        return await DeliverAsync(context, Interaction.Read, type, id, row, keys, cancellationToken);
    }

    public async Task<RecordResult> VReadAsync(AccessContext context, string type, string id, int version, CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.VRead, type, id, cancellationToken) is { } denied) return denied;
        if (!IdRules.IsValid(id)) return RecordResult.Fail(RecordStatus.NotFound, type, Issue.NotFound($"{type}/{Shorten(id)} is not a valid id."));
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        StoredVersion? row;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            row = await _rows.VersionAsync(connection, context.Tenant.Id, TypeCodes.Of(type), id, version, cancellationToken);
        }
        return await DeliverAsync(context, Interaction.VRead, type, id, row, keys, cancellationToken, versionOnly: true, version: version);
    }

    /// <param name="versionOnly">A version read: the version may name another patient than the record does now (see <see cref="NamedBy"/>),
    /// who must be open to the principal too.</param>
    private async Task<RecordResult> DeliverAsync(AccessContext context, Interaction interaction, string type, string id, StoredVersion? row, TenantKeys keys, CancellationToken cancellationToken,
        bool versionOnly = false, int? version = null)
    {
        if (row is null)
        {
            await AuditAsync(context, interaction, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, PatientNamed(type, id))], cancellationToken);
            // A version read names the version: "Patient/x is not known" read as if the record were missing. Said alike whether
            // the record exists or not.
            return RecordResult.Fail(RecordStatus.NotFound, type, Issue.NotFound(version is { } v ? $"Version {v} of {type}/{id} is not known." : $"{type}/{id} is not known."));
        }
        // The policy decides before even a deletion is revealed.
        if (await CheckRecordAsync(context, interaction, type, id, row.Compartment, row.CreatedBy, null, cancellationToken) is { } refused) return refused;
        if (versionOnly && NamedBy(keys, type, row) is var named && named != row.Compartment)
        {
            if (await CheckRecordAsync(context, interaction, type, id, named, row.CreatedBy, null, cancellationToken) is { } refusedVersion) return refusedVersion;
            row = row with { Compartment = named };
        }
        if (row.Deleted)
        {
            await AuditAsync(context, interaction, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, row.Compartment)], cancellationToken);
            return new RecordResult(RecordStatus.Gone, type, id, row.Version, row.LastUpdated, Issues: [Issue.Error("deleted", $"{type}/{id} was deleted (version {row.Version}).")]);
        }
        if (await AdmitAsync(context, interaction, type, [row], 1, cancellationToken) is { } contained) return contained;
        var (bodies, damaged) = await OpenAllAsync(context, interaction, type, keys, [row], null, cancellationToken);
        if (damaged is not null) return damaged;
        await AuditAsync(context, interaction, AuditOutcome.Success, type, [new AuditedRecord(type, id, row.Compartment)], cancellationToken);
        return new RecordResult(RecordStatus.Ok, type, id, row.Version, row.LastUpdated, bodies[0]);
    }

    public async Task<RecordResult> CreateAsync(AccessContext context, string type, JsonElement resource, string? ifNoneExist, CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.Create, type, null, cancellationToken) is { } denied) return denied;
        if (ifNoneExist is not null && await CheckConditionalAsync(context, Interaction.Create, type, cancellationToken) is { } notSearchable) return notSearchable;
        var issues = RecordValidation.Validate(type, resource);
        if (issues.Count > 0) return RecordResult.Fail(RecordStatus.Invalid, type, [.. issues]);
        if (await AdmitAsync(context, Interaction.Create, type, [], 1, cancellationToken) is { } contained) return contained;
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        return await _database.WriteAsync(async scope =>
        {
            SearchQuery? criteria = null;
            if (ifNoneExist is not null)
            {
                var existing = await IfNoneExistMatchAsync(context, scope, keys, type, ifNoneExist, cancellationToken);
                if (existing.Result is not null)
                {
                    // Nothing written; the commit appends the audit entry of the match returned.
                    await scope.CommitAsync(cancellationToken);
                    return existing.Result;
                }
                criteria = existing.Criteria;
            }
            var written = new WriteBatch(scope);
            var result = await CreateInScopeAsync(context, scope, keys, type, resource, IdRules.NewId(), null, written, VersionMade.Created, cancellationToken);
            if (result.Status != RecordStatus.Created) return result;
            if (criteria is not null) written.HoldTo(result, criteria, IfNoneExistCriteria);
            if (await CheckWrittenAsync(context, Interaction.Create, written, cancellationToken) is { } refused) return refused;
            await NoteGrantWritesAsync(context, written, cancellationToken);
            await scope.CommitAsync(cancellationToken);
            Touch(context, written);
            return result;
        }, cancellationToken);
    }

    public async Task<RecordResult> UpdateAsync(AccessContext context, string type, string id, JsonElement resource, int? ifMatch, CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.Update, type, id, cancellationToken) is { } denied) return denied;
        var issues = RecordValidation.Validate(type, resource);
        if (issues.Count == 0 && (!resource.TryGetProperty("id", out var bodyId) || bodyId.GetString() != id))
        {
            issues.Add(Issue.Invalid($"The resource id must be present and equal to the id in the URL ({Shorten(id)}).", $"{type}.id"));
        }
        if (issues.Count > 0) return RecordResult.Fail(RecordStatus.Invalid, type, [.. issues]);
        if (await AdmitAsync(context, Interaction.Update, type, [], 1, cancellationToken) is { } contained) return contained;
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        return await _database.WriteAsync(async scope =>
        {
            var written = new WriteBatch(scope);
            var result = await UpdateInScopeAsync(context, scope, keys, type, id, resource, ifMatch, null, written, cancellationToken);
            return await CommitUpdateAsync(context, written, result, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>An update's (or conditional update's) write, once in place: checked as a whole and committed when it succeeded; the
    /// scope rolls back otherwise.</summary>
    private async Task<RecordResult> CommitUpdateAsync(AccessContext context, WriteBatch written, RecordResult result, CancellationToken cancellationToken)
    {
        if (result.Status is not (RecordStatus.Ok or RecordStatus.Created)) return result;
        if (await CheckWrittenAsync(context, Interaction.Update, written, cancellationToken) is { } refused) return refused;
        await NoteGrantWritesAsync(context, written, cancellationToken);
        await written.Scope.CommitAsync(cancellationToken);
        Touch(context, written);
        return result;
    }

    public Task<RecordResult> DeleteAsync(AccessContext context, string type, string id, CancellationToken cancellationToken) =>
        DeleteAsync(context, type, id, null, cancellationToken);

    /// <param name="ifMatch">If-Match: delete only if this is the current version (else 412, as for an update).</param>
    public async Task<RecordResult> DeleteAsync(AccessContext context, string type, string id, int? ifMatch, CancellationToken cancellationToken)
    {
        if (await CheckAsync(context, Interaction.Delete, type, id, cancellationToken) is { } denied) return denied;
        if (!IdRules.IsValid(id)) return RecordResult.Fail(RecordStatus.NotFound, type, Issue.NotFound($"{type}/{Shorten(id)} is not a valid id."));
        if (await AdmitAsync(context, Interaction.Delete, type, [], 1, cancellationToken) is { } contained) return contained;
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        return await _database.WriteAsync(async scope =>
        {
            var batch = new WriteBatch(scope);
            var result = await DeleteInScopeAsync(context, scope, keys, type, id, ifMatch, batch, cancellationToken);
            if (result.Status is not RecordStatus.NoContent) return result;
            if (await StillNamedAsync(context, batch, cancellationToken) is { } named) return named.Refused;
            await scope.CommitAsync(cancellationToken);
            return result;
        }, cancellationToken);
    }

    /// <summary>
    /// Instance or type history, newest first, <paramref name="count"/> versions a page. <paramref name="page"/> is the opaque
    /// token of a next link; when given, it carries the first page's <paramref name="since"/> and <paramref name="count"/>,
    /// which replace those passed, as a search's token carries its query. A <paramref name="count"/> of 0 is the total alone,
    /// no entries and no next link, as _count=0 is in a search (FHIR R4 search, "_count").
    /// </summary>
    public async Task<SearchPage> HistoryAsync(AccessContext context, string type, string? id, long? since, int count, string? page, CancellationToken cancellationToken)
    {
        var interaction = id is null ? Interaction.HistoryType : Interaction.HistoryInstance;
        if (await CheckAsync(context, interaction, type, id, cancellationToken) is { } denied) return SearchPage.Fail(denied.Status, [.. denied.Issues!]);
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var typeCode = TypeCodes.Of(type);
        var scope = "_history/" + type + (id is null ? "" : "/" + id);
        List<StoredVersion> versions;
        (long, long, int)? before = null;
        var depth = 1;
        int? sealedTotal = null;
        if (page is not null)
        {
            if (OpenPage(context, page, scope) is not { } state)
            {
                return SearchPage.Fail(RecordStatus.Invalid, Issue.Invalid("The paging link is invalid or has expired; run the query again."));
            }
            depth = state.Depth;
            if (state.Depth > 1)
            {
                var parts = state.SortValue.Split(' ');
                before = (long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), state.Rid, int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
            }
            since = null;
            foreach (var pair in state.Query)
            {
                if (pair[0] == "_count") count = int.Parse(pair[1], System.Globalization.CultureInfo.InvariantCulture);
                else if (pair[0] == "_since") since = long.Parse(pair[1], System.Globalization.CultureInfo.InvariantCulture);
                else if (pair[0] == "_total") sealedTotal = int.Parse(pair[1], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        // The token carries _count and _since, as a next link's does.
        List<string[]> Kept(int pageSize)
        {
            List<string[]> kept = [["_count", pageSize.ToString(System.Globalization.CultureInfo.InvariantCulture)]];
            if (since is { } s) kept.Add(["_since", s.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            return kept;
        }
        var thisPage = page ?? FirstPage(context, scope, Kept(count));
        var countOnly = count == 0;
        count = Math.Clamp(count, 1, SearchQuery.MaxCount);
        int? total = null;
        // An instance history whose versions may name another patient than the record's (VersionsOpenAsync) counts the versions
        // its pages show: from the page itself when it holds them all, else once, carried in the next links.
        var filtered = id is not null && type != KnownResourceTypes.Patient && AccessPolicy.HasCompartment(type);
        var totalOfPage = false;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            if (id is not null)
            {
                if (!IdRules.IsValid(id)) return SearchPage.Fail(RecordStatus.NotFound, Issue.NotFound($"{type}/{Shorten(id)} is not a valid id."));
                var current = await _rows.CurrentAsync(connection, null, context.Tenant.Id, typeCode, id, false, cancellationToken);
                if (current is null)
                {
                    await AuditAsync(context, interaction, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, PatientNamed(type, id))], cancellationToken);
                    return SearchPage.Fail(RecordStatus.NotFound, Issue.NotFound($"{type}/{id} is not known."));
                }
                if (await CheckRecordAsync(context, interaction, type, id, current.Compartment, current.CreatedBy, null, cancellationToken) is { } refused)
                {
                    return SearchPage.Fail(refused.Status, [.. refused.Issues!]);
                }
                if (!filtered) total = await ResourceRows.InstanceVersionCountAsync(connection, current, since, cancellationToken);
                else if (countOnly) total = await OpenVersionCountAsync(context, connection, keys, type, current, since, cancellationToken);
                if (countOnly) return await CountOnlyAsync([new AuditedRecord(type, id, current.Compartment)]);
                versions = await _rows.InstanceHistoryAsync(connection, current, since, before?.Item3, count + 1, cancellationToken);
                if (filtered)
                {
                    totalOfPage = before is null && versions.Count <= count;
                    if (!totalOfPage) total = sealedTotal ?? await OpenVersionCountAsync(context, connection, keys, type, current, since, cancellationToken);
                }
            }
            else if (countOnly)
            {
                total = await OpenTypeVersionCountAsync(context, connection, keys, type, typeCode, since, cancellationToken);
                return await CountOnlyAsync([]);
            }
            else
            {
                versions = await _rows.TypeHistoryAsync(connection, context.Tenant.Id, typeCode, since, before, count + 1,
                    (command, engine) => _policy.FilterFor(context, type, command, engine), cancellationToken);
            }
        }
        string? next = null;
        if (versions.Count > count)
        {
            versions.RemoveAt(versions.Count - 1);
            var last = versions[^1];
            var kept = Kept(count);
            if (filtered && total is { } counted) kept.Add(["_total", counted.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            next = _pages.Seal(new PageState(context.Tenant.Id, context.Principal.Id, scope, kept,
                $"{last.LastUpdated} {last.Version}", last.Rid, _time.GetUtcNow().AddHours(1).ToUnixTimeMilliseconds(), depth + 1));
        }
        // Each version is judged by the patient it named when written, as well as by the record's current one (checked above, or
        // by the SQL filter): an older version of a record since moved from another patient is left out unless that patient is open.
        versions = await VersionsOpenAsync(context, keys, type, versions, cancellationToken);
        if (totalOfPage) total = versions.Count;
        if (await AdmitAsync(context, interaction, type, versions, depth, cancellationToken) is { } contained) return SearchPage.Fail(contained.Status, [.. contained.Issues!]);
        var (bodies, damaged) = await OpenAllAsync(context, interaction, type, keys, versions, null, cancellationToken);
        if (damaged is not null) return SearchPage.Fail(damaged.Status, [.. damaged.Issues!]);
        await AuditAsync(context, interaction, AuditOutcome.Success, type,
            versions.Select(v => new AuditedRecord(type, v.Id, v.Compartment)).Distinct().ToList(), cancellationToken);
        var entries = versions.Select((v, i) => new SearchEntry(type, v.Id, v.Version, v.LastUpdated, bodies[i], false, v.Deleted, v.Made)).ToList();
        return new SearchPage(RecordStatus.Ok, entries, total, next) { ThisPage = thisPage };

        // A count carries no version, as a search's count: the guard is asked with none, and the act is audited as a count.
        async Task<SearchPage> CountOnlyAsync(List<AuditedRecord> counted)
        {
            if (await AdmitAsync(context, interaction, type, [], depth, cancellationToken) is { } held) return SearchPage.Fail(held.Status, [.. held.Issues!]);
            await AuditAsync(context, interaction, AuditOutcome.Success, type, counted, cancellationToken, note: AuditTrail.CountOnlyNote);
            return new SearchPage(RecordStatus.Ok, [], total, null) { ThisPage = thisPage };
        }
    }

    /// <summary>How many versions of one record (changed at or after <paramref name="since"/>) its history shows the principal:
    /// those <see cref="VersionsOpenAsync"/> keeps, read a chunk at a time.</summary>
    private async Task<int> OpenVersionCountAsync(AccessContext context, System.Data.Common.DbConnection connection, TenantKeys keys, string type, StoredVersion current, long? since,
        CancellationToken cancellationToken)
    {
        const int Chunk = 256;
        var open = 0;
        int? before = null;
        while (true)
        {
            var chunk = await _rows.InstanceHistoryAsync(connection, current, since, before, Chunk, cancellationToken);
            open += (await VersionsOpenAsync(context, keys, type, chunk, cancellationToken)).Count;
            if (chunk.Count < Chunk) return open;
            before = chunk[^1].Version;
        }
    }

    /// <summary>How many versions of a type's records (changed at or after <paramref name="since"/>) its history lists for the
    /// principal: those the SQL filter lets through and, of a type filed under patients, those <see cref="VersionsOpenAsync"/> keeps
    /// (an older version of a record moved from a patient the principal may not open is not listed, so not counted). Counted in
    /// SQL when nothing can be left out: a type not filed under patients, a Patient, or a principal who sees every record.</summary>
    private async Task<int> OpenTypeVersionCountAsync(AccessContext context, System.Data.Common.DbConnection connection, TenantKeys keys, string type, int typeCode,
        long? since, CancellationToken cancellationToken)
    {
        string? Filter(System.Data.Common.DbCommand command, StorageEngine engine) => _policy.FilterFor(context, type, command, engine);
        bool restricted;
        using (var probe = connection.CreateCommand()) restricted = Filter(probe, Engine) is not null;
        if (!restricted || type == KnownResourceTypes.Patient || !AccessPolicy.HasCompartment(type))
            return await _rows.TypeVersionCountAsync(connection, context.Tenant.Id, typeCode, since, Filter, cancellationToken);
        const int Chunk = 256;
        var open = 0;
        (long, long, int)? before = null;
        while (true)
        {
            var chunk = await _rows.TypeHistoryAsync(connection, context.Tenant.Id, typeCode, since, before, Chunk, Filter, cancellationToken);
            open += (await VersionsOpenAsync(context, keys, type, chunk, cancellationToken)).Count;
            if (chunk.Count < Chunk) return open;
            before = (chunk[^1].LastUpdated, chunk[^1].Rid, chunk[^1].Version);
        }
    }

    /// <summary>The patient a stored version named when it was written. The row carries the record's current compartment; an
    /// older version of a record since moved to another patient (a wrong-patient correction) still holds what it said about
    /// the first one. A Patient is always its own compartment; a deletion marker names no one new.</summary>
    private static string? NamedBy(TenantKeys keys, string type, StoredVersion version)
    {
        if (version.Deleted || version.Body is null || type == KnownResourceTypes.Patient || !AccessPolicy.HasCompartment(type)) return version.Compartment;
        byte[] json;
        try
        {
            json = Open(keys, version);
        }
        catch (RecordIntegrityException)
        {
            return version.Compartment; // not shown either: opening it for delivery fails too (OpenAllAsync)
        }
        using var document = JsonDocument.Parse(json);
        return Compartments.Of(type, version.Id, IndexEntries.ExtractReferences(type, document.RootElement));
    }

    /// <summary>The versions whose own patient (<see cref="NamedBy"/>) the principal may open, each carrying that patient as its
    /// compartment for the guard and the audit.</summary>
    private async Task<List<StoredVersion>> VersionsOpenAsync(AccessContext context, TenantKeys keys, string type, List<StoredVersion> versions, CancellationToken cancellationToken)
    {
        var open = new List<StoredVersion>(versions.Count);
        foreach (var version in versions)
        {
            var named = NamedBy(keys, type, version);
            if (named == version.Compartment)
            {
                open.Add(version);
            }
            else if ((await _policy.AuthorizeRecordAsync(context, type, named, version.CreatedBy, null, cancellationToken)).Verdict == RecordVerdict.Allow)
            {
                open.Add(version with { Compartment = named });
            }
        }
        return open;
    }

    // ---- writes inside a transaction (shared by single interactions and transaction bundles) ----

    /// <param name="made">How history will show the version: <see cref="VersionMade.Created"/> (POST) or <see cref="VersionMade.CreatedByUpdate"/> (PUT).</param>
    private async Task<RecordResult> CreateInScopeAsync(AccessContext context, WriteScope scope, TenantKeys keys, string type, JsonElement resource, string id,
        IReadOnlyDictionary<string, string>? references, WriteBatch written, VersionMade made, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var typeCode = TypeCodes.Of(type);
        var json = ResourceStamp.Apply(resource, type, id, 1, now, references, context.ServerBase);
        if (ExtractWritten(type, json, keys, NamesAnEntry(resource, references), out var refused) is not { } index) return refused!;
        var compartment = Compartments.Of(type, id, index);
        var sealedBody = RecordCipher.Seal(keys, typeCode, id, 1, json);
        await ResourceRows.InsertAsync(scope, Engine, keys.TenantId, typeCode, id, 1, now, sealedBody, index, compartment, CreatorOf(context), made, cancellationToken);
        written.Created(type, id, compartment, CreatorOf(context), Compartments.Named(type, id, index));
        await AuditAsync(context, Interaction.Create, AuditOutcome.Success, type, [new AuditedRecord(type, id, compartment)], cancellationToken, scope);
        return new RecordResult(RecordStatus.Created, type, id, 1, now, json);
    }

    /// <param name="locked">The record's current row when the caller has already read it under lock (a conditional update's match,
    /// <see cref="LockMatchAsync"/>); null to read it here.</param>
    private async Task<RecordResult> UpdateInScopeAsync(AccessContext context, WriteScope scope, TenantKeys keys, string type, string id, JsonElement resource, int? ifMatch,
        IReadOnlyDictionary<string, string>? references, WriteBatch written, CancellationToken cancellationToken, StoredVersion? locked = null, string? note = null,
        VersionMade made = VersionMade.Updated)
    {
        var typeCode = TypeCodes.Of(type);
        var current = locked ?? await CurrentForUpdateAsync(scope, keys, typeCode, id, cancellationToken);
        if (current is null)
        {
            if (ifMatch is not null)
            {
                return await VersionRefusedAsync(context, scope, Interaction.Update, type, id, RecordResult.Fail(RecordStatus.PreconditionFailed, type, NotExisting(type, id)), cancellationToken);
            }
            // An update of what does not exist creates it (FHIR update as create): that is a create, and needs the create
            // permission (SMART 'c', the role's create) as well as update, or an update-only client would create records.
            if (CreateRefusal(context, type, id) is { } reason)
            {
                await AuditAsync(context, Interaction.Create, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, IdRules.IsValid(id) ? id : null, null)], cancellationToken, scope,
                    "refused by the access policy: " + reason);
                return RecordResult.Fail(RecordStatus.Forbidden, type, Issue.Forbidden(reason));
            }
            return await CreateInScopeAsync(context, scope, keys, type, resource, id, references, written, VersionMade.CreatedByUpdate, cancellationToken);
        }
        // What is replaced must be open to the writer, before any version number is revealed.
        if (await CheckRecordAsync(context, Interaction.Update, type, id, current.Compartment, current.CreatedBy, written, cancellationToken) is { } refused)
        {
            // A record whose existence must not be revealed (ADR 0006) is answered as far as possible as an id that does not exist:
            // under If-Match the same 412, without create the same 403. Otherwise that id would be created (201), which cannot be
            // done: the 404 of a read of it. The refusal is on the chain (CheckRecordAsync); nothing is written.
            if (refused.Status != RecordStatus.NotFound) return refused;
            if (ifMatch is not null) return RecordResult.Fail(RecordStatus.PreconditionFailed, type, NotExisting(type, id));
            if (CreateRefusal(context, type, id) is { } reason) return RecordResult.Fail(RecordStatus.Forbidden, type, Issue.Forbidden(reason));
            return refused;
        }
        // If-Match asks for a current representation (RFC 9110): a deleted record has none, and is not brought back — under *, or
        // under the version its deletion made, which names no representation either.
        if (ifMatch is not null && current.Deleted)
        {
            return await VersionRefusedAsync(context, scope, Interaction.Update, type, id, RecordResult.Fail(RecordStatus.PreconditionFailed, type, NotExisting(type, id)), cancellationToken);
        }
        if (ifMatch is { } expected && expected != FhirJson.AnyCurrentVersion && expected != current.Version)
        {
            return await VersionRefusedAsync(context, scope, Interaction.Update, type, id, RecordResult.Fail(RecordStatus.PreconditionFailed, type,
                Issue.Error("conflict", $"Version conflict: If-Match asked for version {expected}, the current version is {current.Version}.")), cancellationToken);
        }
        // An update of a deleted record brings it back (a new version after the deletion, 201 as for any update that creates):
        // that too is a create, and needs create as well as update.
        if (current.Deleted && _policy.Authorize(context, Interaction.Create, type) is { Allowed: false } recreate)
        {
            var reason = $"{recreate.Reason} {type}/{id} is deleted, and an update that would bring it back needs create on {type} as well as update.";
            await AuditAsync(context, Interaction.Create, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, current.Compartment)], cancellationToken, scope,
                "refused by the access policy: " + reason);
            return RecordResult.Fail(RecordStatus.Forbidden, type, Issue.Forbidden(reason));
        }
        var now = Math.Max(_time.GetUtcNow().ToUnixTimeMilliseconds(), current.LastUpdated);
        var version = current.Version + 1;
        var json = ResourceStamp.Apply(resource, type, id, version, now, references, context.ServerBase);
        if (ExtractWritten(type, json, keys, NamesAnEntry(resource, references), out var refusedIndex) is not { } newIndex) return refusedIndex!;
        var before = current.Deleted ? null : Open(keys, current);
        var oldIndex = before is null ? null : ExtractIndex(type, before, keys);
        var compartment = Compartments.Of(type, id, newIndex);
        // A record moved into another patient's record, or brought back after its deletion, is from then on the writer's: its
        // creator is who put it where it is. The booker of an appointment (AccessPolicy.BookedBy) or a client limited to its own
        // records would otherwise keep reading it in the record of a patient it never wrote into, with what others wrote there.
        var createdBy = current.Deleted || !string.Equals(compartment, current.Compartment, StringComparison.Ordinal) ? CreatorOf(context) : current.CreatedBy;
        var sealedBody = RecordCipher.Seal(keys, typeCode, id, version, json);
        if (!await ResourceRows.ReplaceAsync(scope, Engine, keys.TenantId, current.Rid, current.Version, version, now, sealedBody, compartment, createdBy, oldIndex, newIndex,
            current.Deleted ? VersionMade.CreatedByUpdate : made, cancellationToken))
        {
            return await VersionRefusedAsync(context, scope, Interaction.Update, type, id,
                RecordResult.Fail(RecordStatus.Conflict, type, Issue.Conflict($"{type}/{id} was changed concurrently; retry.")), cancellationToken);
        }
        written.Updated(type, id, compartment, createdBy, Compartments.Named(type, id, newIndex),
            cancellation: before is not null && compartment == current.Compartment && AppointmentCancellation.IsCancellation(type, before, json));
        await AuditAsync(context, Interaction.Update, AuditOutcome.Success, type, [new AuditedRecord(type, id, compartment)], cancellationToken, scope,
            current.Deleted ? "brought back after its deletion" : note);
        return new RecordResult(current.Deleted ? RecordStatus.Created : RecordStatus.Ok, type, id, version, now, json);
    }

    /// <summary>Why an update of an id that does not exist may not create it (null when it may).</summary>
    private string? CreateRefusal(AccessContext context, string type, string id) =>
        _policy.Authorize(context, Interaction.Create, type) is { Allowed: false } create
            ? $"{create.Reason} {type}/{Shorten(id)} does not exist, and an update that would create it needs create on {type} as well as update."
            : null;

    /// <summary>The 412 of an If-Match on a record that does not exist, or that the writer may not see (answered alike).</summary>
    private static Issue NotExisting(string type, string id) => Issue.Error("conflict", $"If-Match was given but {type}/{id} does not exist (or is deleted).");

    /// <summary>A write refused by its version condition (If-Match) or lost to a concurrent one: audited as a failed attempt, kept
    /// when the transaction rolls back — alone or as a transaction's entry (that entry was not audited at all).</summary>
    private async Task<RecordResult> VersionRefusedAsync(AccessContext context, WriteScope scope, Interaction interaction, string type, string id, RecordResult refused,
        CancellationToken cancellationToken)
    {
        await AuditAsync(context, interaction, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, PatientNamed(type, id))], cancellationToken, scope);
        return refused;
    }

    /// <summary>
    /// The current row of a record about to be changed, locked until the scope ends. On PostgreSQL, when there is none, the
    /// id's lock is held instead: two PUTs creating the same id would both insert, and one fail on the unique key (a 500);
    /// the second waits here for the first to commit, then finds its row and updates it.
    /// </summary>
    private async Task<StoredVersion?> CurrentForUpdateAsync(WriteScope scope, TenantKeys keys, int typeCode, string id, CancellationToken cancellationToken)
    {
        var current = await _rows.CurrentAsync(scope.Connection, scope.Transaction, keys.TenantId, typeCode, id, forUpdate: true, cancellationToken);
        if (current is not null || Engine != StorageEngine.Postgres) return current;
        await _database.LockAsync(scope, $"put-create/{keys.TenantId}/{typeCode}/{id}", cancellationToken);
        return await _rows.CurrentAsync(scope.Connection, scope.Transaction, keys.TenantId, typeCode, id, forUpdate: true, cancellationToken);
    }

    /// <param name="locked">The record's current row when the caller has already read it under lock (a conditional delete's match,
    /// <see cref="LockMatchAsync"/>); null to read it here.</param>
    private async Task<RecordResult> DeleteInScopeAsync(AccessContext context, WriteScope scope, TenantKeys keys, string type, string id, int? ifMatch, WriteBatch batch,
        CancellationToken cancellationToken, StoredVersion? locked = null)
    {
        var typeCode = TypeCodes.Of(type);
        var current = locked ?? await _rows.CurrentAsync(scope.Connection, scope.Transaction, keys.TenantId, typeCode, id, forUpdate: true, cancellationToken);
        if (current is not null && await CheckRecordAsync(context, Interaction.Delete, type, id, current.Compartment, current.CreatedBy, batch, cancellationToken) is { } refused)
        {
            // A record whose existence must not be revealed (ADR 0006) is answered as an id that does not exist: 204, or 412 under
            // If-Match, with no version. Its 404 told a limited client which ids exist. The refusal is on the chain (CheckRecordAsync);
            // nothing is deleted. A 403 (break-the-glass possible) stays: a read of the record answers it too.
            if (refused.Status != RecordStatus.NotFound) return refused;
            return ifMatch is null
                ? new RecordResult(RecordStatus.NoContent, type, id)
                : RecordResult.Fail(RecordStatus.PreconditionFailed, type, NotExisting(type, id));
        }
        // If-Match guards a delete as it guards an update: a client that read version n must not delete the n+1 it never saw.
        if (ifMatch is { } expected && (current is null || current.Deleted || (expected != FhirJson.AnyCurrentVersion && current.Version != expected)))
        {
            return await VersionRefusedAsync(context, scope, Interaction.Delete, type, id, RecordResult.Fail(RecordStatus.PreconditionFailed, type,
                current is null || current.Deleted
                    ? NotExisting(type, id)
                    : Issue.Error("conflict", $"Version conflict: If-Match asked for version {expected}, the current version is {current.Version}.")), cancellationToken);
        }
        if (current is null || current.Deleted)
        {
            // Answered 204 (an idempotent delete), yet nothing was deleted: audited as a failed delete, like a read of nothing.
            await AuditAsync(context, Interaction.Delete, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, current?.Compartment)], cancellationToken, scope,
                current is null ? "not found" : "already deleted");
            return new RecordResult(RecordStatus.NoContent, type, id, current?.Version ?? 0, current?.LastUpdated ?? 0);
        }
        var now = Math.Max(_time.GetUtcNow().ToUnixTimeMilliseconds(), current.LastUpdated);
        var oldIndex = ExtractIndex(type, Open(keys, current), keys);
        if (!await ResourceRows.ReplaceAsync(scope, Engine, keys.TenantId, current.Rid, current.Version, current.Version + 1, now, null, current.Compartment, current.CreatedBy, oldIndex, null,
                VersionMade.Deleted, cancellationToken))
        {
            // Audited like the update's: every delete asked for is on the chain, the refused ones too (kept on rollback).
            return await VersionRefusedAsync(context, scope, Interaction.Delete, type, id,
                RecordResult.Fail(RecordStatus.Conflict, type, Issue.Conflict($"{type}/{id} was changed concurrently; retry.")), cancellationToken);
        }
        await AuditAsync(context, Interaction.Delete, AuditOutcome.Success, type, [new AuditedRecord(type, id, current.Compartment)], cancellationToken, scope);
        if (type == KnownResourceTypes.Patient) batch.DeletedPatients.Add((id, current.Rid));
        return new RecordResult(RecordStatus.NoContent, type, id, current.Version + 1, now);
    }

    // ---- the door's checks ----

    /// <summary>The door's first question, asked before a request is read (a staff page's form that the role may not post): null when
    /// the role and scopes allow the act and the principal is not contained; otherwise the refusal, audited as the act's own would be.</summary>
    public ValueTask<RecordResult?> AdmitAsync(AccessContext context, Interaction interaction, string type, string? id, CancellationToken cancellationToken) =>
        CheckAsync(context, interaction, type, id, cancellationToken);

    /// <summary><see cref="AdmitAsync(AccessContext, Interaction, string, string?, CancellationToken)"/> for an act on
    /// <paramref name="patient"/>'s record that the page names (a form of that patient's chart): a refusal is audited as concerning
    /// them, so that it is on their access history (who tried to write into their record) — the page's patient, as the request said.</summary>
    public ValueTask<RecordResult?> AdmitForPatientAsync(AccessContext context, Interaction interaction, string type, string patient, CancellationToken cancellationToken) =>
        CheckAsync(context, interaction, type, null, cancellationToken, IdRules.IsValid(patient) ? patient : null);

    /// <summary>The policy's question of the principal's role and scopes for a type; a refusal is audited (one entry,
    /// no patient: none is known yet) and answered 403. An unsupported type is no refusal: it names nothing to audit.</summary>
    private async ValueTask<RecordResult?> CheckAsync(AccessContext context, Interaction interaction, string type, string? id, CancellationToken cancellationToken,
        string? patient = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!TypeCodes.TryGet(type, out _))
        {
            return RecordResult.Fail(RecordStatus.NotFound, type, Issue.NotSupported($"The resource type '{Shorten(type)}' is not supported. Supported: {string.Join(", ", TypeCodes.Names)}."));
        }
        var decision = _policy.Authorize(context, interaction, type);
        if (!decision.Allowed)
        {
            await AuditRefusalAsync(context, interaction, type, id, decision.Reason!, cancellationToken, patient);
            return RecordResult.Fail(RecordStatus.Forbidden, type, Issue.Forbidden(decision.Reason!));
        }
        // What the policy's SQL filter of a search or a type's history opens by a grant: the person's grants whose rows verify, read
        // here, where it can be awaited (the filter is built where it cannot; an export's, a transaction's and a conditional write's
        // are read where they run).
        if (interaction is Interaction.Search or Interaction.HistoryType) await _policy.PrepareAsync(context, cancellationToken);
        // A contained principal is refused before any record is looked at: a 404 for an unknown id and a 423 for a known one
        // (or a 410 for a deleted one) would still tell it which records exist.
        if (await _guard.ContainmentRefusalAsync(context, cancellationToken) is { } contained)
        {
            // A canary it reads is still the officer's incident, when the policy would have let the principal reach it (not hidden
            // from it, in its care or under its grant): the walker is going on through the refusals. The answer stays the one of
            // the containment it was under (a suspended session told "locked" would learn the id is a canary).
            var named = patient ?? PatientNamed(type, id);
            if (interaction is Interaction.Read or Interaction.VRead or Interaction.HistoryInstance or Interaction.Everything && named is not null)
            {
                await _guard.CanaryNamedWhileHeldAsync(context, interaction, type, named,
                    async () => (await _policy.AuthorizeRecordAsync(context, KnownResourceTypes.Patient, named, null, null, cancellationToken)).Verdict == RecordVerdict.Allow,
                    cancellationToken);
            }
            await AuditAsync(context, AuditAction.Containment, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id is not null && IdRules.IsValid(id) ? id : null, named)],
                cancellationToken, note: "guard: " + contained.Verdict + " (" + AuditDescriptions.Action(AuditTrail.ActionOf(interaction)) + ")");
            return RecordResult.Fail(RecordStatus.Locked, type, Issue.Error("security", contained.Reason!));
        }
        return null;
    }

    /// <summary>The audit entry of an act refused by role or scopes, before any record was looked at: the type, and the id
    /// when the request named a valid one (an invalid id is the caller's text, not a record).</summary>
    private Task AuditRefusalAsync(AccessContext context, Interaction interaction, string type, string? id, string reason, CancellationToken cancellationToken,
        string? patient = null) =>
        AuditAsync(context, interaction, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id is not null && IdRules.IsValid(id) ? id : null, patient ?? PatientNamed(type, id))],
            cancellationToken, note: "refused by the access policy: " + reason);

    /// <summary>The patient an act refused before its record was looked at concerns, when the request says it: a Patient's own
    /// id (or its $everything). On that patient's access history, as the refusals of the policy that read the record are: who
    /// tried to open a record, a contained or limited principal above all, is what the patient and the officer ask.</summary>
    private static string? PatientNamed(string type, string? id) => type == KnownResourceTypes.Patient && id is not null && IdRules.IsValid(id) ? id : null;

    /// <summary>The policy's record-level question; a refusal is audited and answered 403 (break-the-glass possible) or 404 (not revealed).</summary>
    private async ValueTask<RecordResult?> CheckRecordAsync(AccessContext context, Interaction interaction, string type, string id, string? compartment, string? createdBy,
        WriteBatch? batch, CancellationToken cancellationToken)
    {
        var decision = await _policy.AuthorizeRecordAsync(context, type, compartment, createdBy, batch?.NewPatients, cancellationToken);
        if (decision.Verdict == RecordVerdict.Allow) return null;
        await AuditAsync(context, interaction, AuditOutcome.MinorFailure, type, [new AuditedRecord(type, id, compartment)],
            cancellationToken, batch?.Scope, decision.Verdict == RecordVerdict.Forbidden ? "refused by the access policy" : "refused by the access policy (not revealed)");
        return decision.Verdict == RecordVerdict.Forbidden
            ? RecordResult.Fail(RecordStatus.Forbidden, type, Issue.Forbidden(decision.Reason!))
            : RecordResult.Fail(RecordStatus.NotFound, type, Issue.NotFound($"{type}/{Shorten(id)} is not known."));
    }

    /// <summary>
    /// What a write puts into a patient's record must go to a patient the writer could open before the write
    /// (decided on committed data, so that a transaction cannot grant itself a care relationship), or to a
    /// patient created by the same transaction. For people the question is asked of the patient's identity
    /// record: admissions staff schedule for any patient they can find.
    /// </summary>
    private async ValueTask<RecordResult?> CheckWrittenAsync(AccessContext context, Interaction interaction, WriteBatch written, CancellationToken cancellationToken) =>
        (await RefusedWriteAsync(context, interaction, written, cancellationToken))?.Refused;

    /// <summary>
    /// Notes which records a person wrote while holding a break-the-glass grant for a patient they name (ADR 0006, revised
    /// 2026-12-04): such a record is no source of care relationships (CareRelationSql), or a CareTeam without period naming the
    /// writer's service, written under a personal four-hour grant, opened the patient to the whole service for good. A record
    /// written again without a grant is a source again. The grant itself still opens the record to its holder while it lasts.
    /// </summary>
    private async Task NoteGrantWritesAsync(AccessContext context, WriteBatch written, CancellationToken cancellationToken)
    {
        var principal = context.Principal;
        var holds = _guard.HoldsGrants(context.Tenant.Id, principal);
        foreach (var record in written.Written)
        {
            var underGrant = holds && record.Patients.Any(p => _guard.UnderBreakTheGlass(context.Tenant.Id, principal, p));
            if (!underGrant && record.New) continue;
            using var command = written.Scope.Command(underGrant
                ? (Engine == StorageEngine.Postgres
                    ? "INSERT INTO grant_writes (rid, tenant_id, principal, written_at) SELECT rid, tenant_id, @p, @at FROM resources WHERE tenant_id = @t AND type = @ty AND id = @id ON CONFLICT (rid) DO UPDATE SET principal = excluded.principal, written_at = excluded.written_at"
                    : "INSERT OR REPLACE INTO grant_writes (rid, tenant_id, principal, written_at) SELECT rid, tenant_id, @p, @at FROM resources WHERE tenant_id = @t AND type = @ty AND id = @id")
                : "DELETE FROM grant_writes WHERE rid = (SELECT rid FROM resources WHERE tenant_id = @t AND type = @ty AND id = @id)");
            command.With("t", context.Tenant.Id).With("ty", TypeCodes.Of(record.Type)).With("id", record.Id);
            if (underGrant) command.With("p", principal.Id).With("at", _time.GetUtcNow().ToUnixTimeMilliseconds());
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary><see cref="CheckWrittenAsync"/>, telling which record was refused (a transaction names its entry). In this order: the
    /// policy, of each patient a record goes into; then whether those patients exist (<see cref="UnknownPatientAsync"/>); last, whether
    /// each record a conditional write created meets its criteria (<see cref="UnmetCriteriaAsync"/>) — a writer the policy refuses is
    /// answered as for any write, whatever its criteria.</summary>
    private async ValueTask<(RecordResult Refused, WrittenRecord Record)?> RefusedWriteAsync(AccessContext context, Interaction interaction, WriteBatch written,
        CancellationToken cancellationToken)
    {
        foreach (var record in written.Written)
        {
            // A record the write creates (a transaction's POST, an update as create) is refused as a create, as its success is recorded.
            var act = record.New ? Interaction.Create : interaction;
            // A cancellation of an appointment, and nothing else, is asked of the appointment, as its update was: it names no one new
            // and opens nothing (a cancelled appointment is no source of care). Asked of the patient, it was refused to the booker
            // whose relationship with the patient had lapsed, though the appointment is hers to change (AccessPolicy.BookedBy).
            var asType = context.Principal.Kind == PrincipalKind.Person && record.Compartment is not null && !record.Cancellation ? KnownResourceTypes.Patient : record.Type;
            if (await CheckRecordAsync(context, act, asType, record.Type == asType ? record.Id : record.Compartment!, record.Compartment, record.CreatedBy, written, cancellationToken) is { } refused)
            {
                return (Unnamed(refused, record), record);
            }
            // Every other patient the record names (an appointment's participants) too: it enters their record as well, and
            // names its author beside them, which would make a care relationship with a patient the writer could not open. A
            // cancellation names the patients it named, and makes no relationship.
            foreach (var patient in record.Patients)
            {
                if (patient == record.Compartment || record.Cancellation) continue;
                var patientType = context.Principal.Kind == PrincipalKind.Person ? KnownResourceTypes.Patient : record.Type;
                if (await CheckRecordAsync(context, act, patientType, patientType == record.Type ? record.Id : patient, patient, record.CreatedBy, written, cancellationToken) is { } other)
                {
                    return (Unnamed(other, record), record);
                }
            }
        }
        return await UnknownPatientAsync(context, interaction, written, cancellationToken) ?? await UnmetCriteriaAsync(context, written, cancellationToken);
    }

    /// <summary>A refusal "not revealed" (404) of a record this write creates named it by the id the server had just assigned, as if
    /// the client had asked for a record that does not exist: it says instead that the record would go into a patient record not
    /// known to the writer (alike whether that patient exists or is only closed to it).</summary>
    private static RecordResult Unnamed(RecordResult refused, WrittenRecord record) =>
        refused.Status == RecordStatus.NotFound && record.New
            ? RecordResult.Fail(RecordStatus.NotFound, record.Type, Issue.NotFound($"The {record.Type} was not written: it would go into a patient record that is not known to you."))
            : refused;

    /// <summary>
    /// Every patient a written record names must exist here, not deleted (FHIR referential integrity, as HAPI enforces by
    /// default): a record filed under an id no patient has would be adopted by whoever later creates that patient (an update
    /// as create) and read as theirs. A patient the same transaction creates exists by now (read inside its scope). Asked
    /// once the policy has allowed every record, so that the answer tells only a writer allowed into that patient's record
    /// whether the patient exists; a client limited to its own resources is allowed into none it did not create, and is
    /// answered for a patient it cannot see as for one that does not exist: refused, not revealed (ADR 0006).
    /// </summary>
    private async ValueTask<(RecordResult Refused, WrittenRecord Record)?> UnknownPatientAsync(AccessContext context, Interaction interaction, WriteBatch written,
        CancellationToken cancellationToken)
    {
        var scope = written.Scope;
        var open = new Dictionary<string, (bool Exists, bool Deleted, bool Own)>(StringComparer.Ordinal);
        foreach (var record in written.Written)
        {
            var act = record.New ? Interaction.Create : interaction;
            foreach (var patient in record.Patients)
            {
                if (record.Type == KnownResourceTypes.Patient && patient == record.Id) continue; // a patient names itself (and those it links to)
                if (!open.TryGetValue(patient, out var found))
                {
                    var row = await _rows.CurrentAsync(scope.Connection, scope.Transaction, context.Tenant.Id, PatientTypeCode, patient, false, cancellationToken, againstDelete: true);
                    found = (row is not null, row is { Deleted: true }, row is not null && string.Equals(row.CreatedBy, CreatorOf(context), StringComparison.Ordinal));
                    open[patient] = found;
                }
                if (context.Principal is { Kind: PrincipalKind.ApiClient, OwnResourcesOnly: true } && !found.Own)
                {
                    await AuditAsync(context, act, AuditOutcome.MinorFailure, record.Type, [new AuditedRecord(record.Type, record.Id, patient)], cancellationToken, scope,
                        "refused by the access policy (not revealed)");
                    return (Unnamed(RecordResult.Fail(RecordStatus.NotFound, record.Type, Issue.NotFound($"{record.Type}/{Shorten(record.Id)} is not known.")), record), record);
                }
                if (found.Exists && !found.Deleted) continue;
                var element = record.Type == KnownResourceTypes.Patient ? "Patient.link.other" : Compartments.PatientElement(record.Type);
                await AuditAsync(context, act, AuditOutcome.MinorFailure, record.Type, [new AuditedRecord(record.Type, record.Id, patient)], cancellationToken, scope,
                    found.Deleted ? "names a deleted patient" : "names a patient that does not exist");
                return (RecordResult.Fail(RecordStatus.Unprocessable, record.Type, UnknownPatientIssue(element, patient, found.Deleted)), record);
            }
        }
        return null;
    }

    /// <summary>The refusal of a record whose <paramref name="element"/> names a patient that is not (or no longer) here; for a load,
    /// <paramref name="where"/> names the entry.</summary>
    private static Issue UnknownPatientIssue(string element, string patient, bool deleted, string? where = null) =>
        Issue.Error("not-found", where is null
            ? $"{element} names Patient/{Shorten(patient)}, which {(deleted ? "was deleted" : "does not exist on this server")}: a record is filed under an existing "
                + "patient. Create the patient first, or in the same transaction."
            : $"{where}: {element} names Patient/{Shorten(patient)}, which is neither in the store nor loaded by this import{(deleted ? " (it was deleted)" : " (if the import holds it, it was rejected: see its line)")}.", element);

    /// <summary>
    /// A patient is deleted only once no record that is not deleted names them (as its subject, patient, participant or any
    /// other reference): a record left without its patient could no longer be opened through them ($everything, the care
    /// relationships), and would be adopted by whoever later re-creates that id. FHIR lets a server refuse such a delete with
    /// 409 (HAPI does by default). Asked once the whole request or transaction is in place, so that a transaction deleting a
    /// patient with their records, or re-filing them under another patient, passes. The refusal is audited (kept when the
    /// transaction rolls back); a client limited to its own resources is not told how many records it cannot see.
    /// Engines: SQLite serialises writers, so a record filed while a patient is deleted is seen by one check or the other. On
    /// PostgreSQL the record's check holds a key-share lock on the patient row until its transaction ends (UnknownPatientAsync),
    /// which the delete's FOR UPDATE waits for: then this count sees the record; a record checked after the delete has
    /// locked the row waits for it and finds the patient deleted.
    /// </summary>
    private async ValueTask<(RecordResult Refused, string Patient)?> StillNamedAsync(AccessContext context, WriteBatch batch, CancellationToken cancellationToken)
    {
        var scope = batch.Scope;
        foreach (var (patient, rid) in batch.DeletedPatients)
        {
            using var command = scope.Command("""
                SELECT count(DISTINCT r.rid) FROM idx_ref x JOIN resources r ON r.rid = x.rid
                WHERE x.target = @target AND r.tenant_id = @t AND r.deleted = 0 AND r.rid <> @self
                """).With("target", "Patient/" + patient).With("t", context.Tenant.Id).With("self", rid);
            var named = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
            if (named == 0) continue;
            await AuditAsync(context, Interaction.Delete, AuditOutcome.MinorFailure, KnownResourceTypes.Patient, [new AuditedRecord(KnownResourceTypes.Patient, patient, patient)],
                cancellationToken, scope, $"refused: still named by {named} record(s) not deleted");
            var how = context.Principal is { Kind: PrincipalKind.ApiClient, OwnResourcesOnly: true }
                ? "records that are not deleted"
                : named == 1 ? "1 record that is not deleted" : $"{named:N0} records that are not deleted";
            return (RecordResult.Fail(RecordStatus.Conflict, KnownResourceTypes.Patient, Issue.Conflict(
                $"Patient/{Shorten(patient)} is still named by {how} (Patient/{Shorten(patient)}/$everything lists them): delete them or file them "
                + "under another patient first, or in the same transaction. To retire an identity that keeps its record, set Patient.active to false.")), patient);
        }
        return null;
    }

    /// <summary>After a commit: relationships of the patients written may have changed; the policy forgets its refusals for them.</summary>
    private void Touch(AccessContext context, WriteBatch written)
    {
        foreach (var record in written.Written)
        {
            if (record.Compartment is not null) _policy.Touch(context.Tenant.Id, record.Compartment);
            foreach (var patient in record.Patients)
            {
                if (patient != record.Compartment) _policy.Touch(context.Tenant.Id, patient);
            }
        }
    }

    /// <summary>What a record's created_by column holds, in clear, for the own-resources policy of API clients: the client's or
    /// account's id; for the command line "system" — not "cli:" and the operator's OS account name, which may be a person's name
    /// (the act's audit entry names the operator, sealed).</summary>
    internal static string CreatorOf(AccessContext context) => context.Principal.Kind == PrincipalKind.System ? "system" : context.Principal.Id;

    /// <param name="Patients">Every patient the record names as its patient (<see cref="Compartments.Named"/>), the compartment among them.</param>
    /// <param name="New">Created by this write: its id is one the server may just have assigned, which the writer has never seen.</param>
    /// <param name="Cancellation">An appointment cancelled and nothing else changed (<see cref="AppointmentCancellation"/>).</param>
    private sealed record WrittenRecord(string Type, string Id, string? Compartment, string? CreatedBy, IReadOnlyList<string> Patients, bool New = false,
        bool Cancellation = false);

    /// <summary>The records one request or transaction writes, checked together once all are in place.</summary>
    private sealed class WriteBatch(WriteScope scope)
    {
        public WriteScope Scope { get; } = scope;
        public List<WrittenRecord> Written { get; } = [];
        public HashSet<string> NewPatients { get; } = new(StringComparer.Ordinal);
        /// <summary>Patients deleted, with their row: no record may still name them once the batch is in place.</summary>
        public List<(string Id, long Rid)> DeletedPatients { get; } = [];

        public void Created(string type, string id, string? compartment, string? createdBy, IReadOnlyList<string> patients)
        {
            if (type == KnownResourceTypes.Patient) NewPatients.Add(id);
            Written.Add(new WrittenRecord(type, id, compartment, createdBy, patients, New: true));
        }

        public void Updated(string type, string id, string? compartment, string? createdBy, IReadOnlyList<string> patients, bool cancellation = false) =>
            Written.Add(new WrittenRecord(type, id, compartment, createdBy, patients, Cancellation: cancellation));

        /// <summary>Records conditional writes created, each with the criteria that must find it (<see cref="UnmetCriteriaAsync"/>).</summary>
        public List<(string Type, string Id, SearchQuery Criteria, string Condition)> HeldToCriteria { get; } = [];

        /// <summary>Holds the record a conditional write created (<paramref name="written"/>, when it created one) to the criteria it was
        /// written under: asked once the whole write is in place and the policy has judged it.</summary>
        /// <param name="condition">What the criteria are, for the message (If-None-Exist, the criteria of a conditional update).</param>
        public RecordResult HoldTo(RecordResult written, SearchQuery criteria, string condition)
        {
            if (written.Status == RecordStatus.Created) HeldToCriteria.Add((written.Type, written.Id!, criteria, condition));
            return written;
        }
    }

    /// <summary>The audit append of one act: inside <paramref name="scope"/> when the act is part of a write transaction
    /// (committed with it; refusals kept on rollback), otherwise group-committed before this returns.</summary>
    private Task AuditAsync(AccessContext context, Interaction interaction, AuditOutcome outcome, string? type, IReadOnlyList<AuditedRecord> records,
        CancellationToken cancellationToken, WriteScope? scope = null, string? note = null) =>
        AuditAsync(context, AuditTrail.ActionOf(interaction), outcome, type, records, cancellationToken, scope, note);

    /// <summary>What a person does in the record of a patient they hold a break-the-glass grant for is recorded with the
    /// emergency purpose (ETREAT), the rest of the act with the context's own.</summary>
    private Task AuditAsync(AccessContext context, AuditAction action, AuditOutcome outcome, string? type, IReadOnlyList<AuditedRecord> records,
        CancellationToken cancellationToken, WriteScope? scope = null, string? note = null) =>
        records.Count > 0 && _guard.HoldsGrants(context.Tenant.Id, context.Principal)
            ? AuditUnderGrantsAsync(context, action, outcome, type, records, scope, note, cancellationToken)
            : AppendAsync(context, action, outcome, type, records, scope, note, cancellationToken);

    private async Task AuditUnderGrantsAsync(AccessContext context, AuditAction action, AuditOutcome outcome, string? type, IReadOnlyList<AuditedRecord> records,
        WriteScope? scope, string? note, CancellationToken cancellationToken)
    {
        var emergency = new List<AuditedRecord>();
        var ordinary = new List<AuditedRecord>(records.Count);
        foreach (var record in records)
        {
            (record.Patient is { } patient && _guard.UnderBreakTheGlass(context.Tenant.Id, context.Principal, patient) ? emergency : ordinary).Add(record);
        }
        if (ordinary.Count > 0) await AppendAsync(context, action, outcome, type, ordinary, scope, note, cancellationToken);
        if (emergency.Count > 0)
        {
            await AppendAsync(context with { Purpose = KnownPurposes.EmergencyTreatment }, action, outcome, type, emergency, scope, note, cancellationToken);
        }
    }

    private Task AppendAsync(AccessContext context, AuditAction action, AuditOutcome outcome, string? type, IReadOnlyList<AuditedRecord> records,
        WriteScope? scope, string? note, CancellationToken cancellationToken) =>
        scope is null
            ? _audit.AppendAsync(context, action, outcome, type, records, cancellationToken, note)
            : _audit.AppendAsync(scope, context, action, outcome, type, records, cancellationToken, note);

    /// <summary>
    /// The guard's question for the records about to leave (none for a write: a contained principal writes nothing).
    /// Answered after the policy and before the audit append; a slowed principal waits here.
    /// </summary>
    private async ValueTask<RecordResult?> AdmitAsync(AccessContext context, Interaction interaction, string type, List<StoredVersion> rows, int depth, CancellationToken cancellationToken,
        WriteScope? scope = null, IReadOnlyList<KeyValuePair<string, string>>? searched = null, string? subject = null, IReadOnlySet<string>? scheduled = null)
    {
        var patients = new HashSet<string>(StringComparer.Ordinal);
        var counted = new HashSet<string>(StringComparer.Ordinal);
        var identities = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (row.Compartment is not { } patient) continue;
            patients.Add(patient);
            // What the principal wrote itself reveals nothing it did not have.
            if (string.Equals(row.CreatedBy, context.Principal.Id, StringComparison.Ordinal)) continue;
            counted.Add(patient);
            // A Patient row is the identity itself (a deleted version in a history carries no body).
            if (row.Type == PatientTypeCode && !row.Deleted) identities.Add(patient);
        }
        // A person's result volume is of patients' kinds of records: the directory of practitioners, their roles and the establishment's
        // services, which her booking form lists each time it is shown (~400 records), is not what the volume guards against, and
        // suspended a front desk booking a dozen appointments an hour. An API client's counts every record. By type, not by row: a
        // patient's kind of record always names its patient (Compartments.NamesNoPatient refuses one that does not).
        var volume = context.Principal.Kind == PrincipalKind.Person ? rows.Count(r => AccessPolicy.HasCompartment(TypeCodes.NameOf(r.Type))) : rows.Count;
        var decision = await _guard.AdmitAsync(context, new GuardRequest(interaction, type, volume, patients, counted, depth)
            {
                Identities = identities,
                Scheduled = scheduled is null ? [] : counted.Where(scheduled.Contains).ToList(),
                InsideWriteTransaction = scope is not null,
                Scope = scope,
                SearchParameters = searched,
                Subject = subject,
            },
            cancellationToken);
        if (decision.Delay > TimeSpan.Zero)
        {
            // Inside a write transaction the wait comes after it (WriteScope.HeldBack): slept here, it held the store's writer.
            if (scope is not null) scope.HeldBack += decision.Delay;
            else await Task.Delay(decision.Delay, cancellationToken);
        }
        if (decision.Verdict != GuardVerdict.Admit)
        {
            // The records withheld, and why, on the chain (refusals survive a rolled-back transaction).
            var withheld = rows.Select(r => new AuditedRecord(TypeCodes.NameOf(r.Type), r.Id, r.Compartment)).ToList();
            var note = "guard: " + decision.Verdict + " (" + AuditDescriptions.Action(AuditTrail.ActionOf(interaction)) + ")";
            await AuditAsync(context, AuditAction.Containment, AuditOutcome.MinorFailure, type, withheld, cancellationToken, scope, note);
        }
        return decision.Admitted ? null : RecordResult.Held(decision, type);
    }

    private static readonly int PatientTypeCode = TypeCodes.Of(KnownResourceTypes.Patient);

    private static byte[] Open(TenantKeys keys, StoredVersion row) => RecordCipher.Open(keys, row.Type, row.Id, row.Version, row.Body!);

    /// <summary>
    /// The bodies of versions about to leave (null for a deletion), opened before their success is audited. A version that fails
    /// its integrity check (altered or moved in the database, or a wrong key) is not shown and nothing else of the interaction
    /// leaves: it is audited as a serious failure, the security officer is alerted, and the caller gets a 500 that says so.
    /// </summary>
    private async ValueTask<(byte[]?[] Bodies, RecordResult? Damaged)> OpenAllAsync(AccessContext context, Interaction interaction, string type, TenantKeys keys,
        List<StoredVersion> rows, WriteScope? scope, CancellationToken cancellationToken)
    {
        var bodies = new byte[]?[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            if (row.Deleted || row.Body is null) continue;
            try
            {
                int? newer = null;
                try
                {
                    bodies[i] = Open(keys, row);
                }
                catch (UnknownKeyVersionException unknown)
                {
                    newer = unknown.Version;
                }
                // Re-sealed under a data key another process made after this one loaded the establishment's keys: loaded, then
                // opened (a version the store does not have either is damage, below).
                if (newer is { } version)
                {
                    keys = await _keys.WithDataKeyAsync(context.Tenant.Id, version, cancellationToken) ?? throw new UnknownKeyVersionException(context.Tenant.Id, version);
                    bodies[i] = Open(keys, row);
                }
            }
            catch (RecordIntegrityException)
            {
                var name = TypeCodes.NameOf(row.Type);
                await AuditAsync(context, interaction, AuditOutcome.SeriousFailure, type, [new AuditedRecord(name, row.Id, row.Compartment)], cancellationToken, scope,
                    "stored record failed its integrity check");
                var detail = $"{name}/{row.Id} version {row.Version} failed its integrity check when read: it was altered or moved in the database, or read with the wrong key. It was not shown.";
                if (scope is null) await _guard.RaiseAsync(context.Tenant.Id, KnownAlertKinds.RecordIntegrity, context.Principal.Id, detail, cancellationToken);
                else _guard.RaiseAfterWrite(context.Tenant.Id, KnownAlertKinds.RecordIntegrity, context.Principal.Id, detail);
                return (bodies, RecordResult.Fail(RecordStatus.Damaged, name, Issue.Error("exception",
                    $"{name}/{row.Id} cannot be shown: its stored copy failed the integrity check (altered or moved in the database, or read with the wrong key). The security officer has been alerted.")));
            }
        }
        return (bodies, null);
    }

    /// <summary>The index of a version about to be written, or null (with the refusal) when it names its patient in a form the index
    /// does not follow (422, as a patient that does not exist here), or has more index values than one resource may (400). Checked
    /// on what is stored, once a transaction's urn:uuid: references are rewritten to the ids they name.</summary>
    /// <param name="revalidate">The resource named other entries of its transaction by their fullUrls, now rewritten to the records
    /// they became: a urn:uuid: said no type when the entries were validated, so the resource is validated again as rewritten (an
    /// Observation whose subject is the urn:uuid: of a Practitioner entry names a Practitioner now, which Observation.subject may not).</param>
    private static IndexEntries? ExtractWritten(string type, byte[] json, TenantKeys keys, bool revalidate, out RecordResult? refused)
    {
        using var document = JsonDocument.Parse(json);
        if (revalidate && RecordValidation.Validate(type, document.RootElement) is { Count: > 0 } issues)
        {
            refused = RecordResult.Fail(RecordStatus.Invalid, type, [.. issues]);
            return null;
        }
        if (Compartments.UnfollowedPatientReference(type, document.RootElement) is { } unfollowed)
        {
            refused = RecordResult.Fail(RecordStatus.Unprocessable, type, unfollowed);
            return null;
        }
        var index = IndexEntries.Extract(type, document.RootElement, keys.Index);
        refused = index.TooMany(type) is { } tooMany ? RecordResult.Fail(RecordStatus.Invalid, type, tooMany)
            : Compartments.NamesNoPatient(type, document.RootElement, index) is { } noPatient ? RecordResult.Fail(RecordStatus.Unprocessable, type, noPatient)
            : null;
        return refused is null ? index : null;
    }

    /// <summary>Whether <paramref name="resource"/> names an entry of its transaction by a fullUrl in <paramref name="references"/>.</summary>
    private static bool NamesAnEntry(JsonElement resource, IReadOnlyDictionary<string, string>? references) =>
        references is not null && ResourceStamp.ReferencesAny(resource, references);

    private static IndexEntries ExtractIndex(string type, byte[] json, TenantKeys keys)
    {
        using var document = JsonDocument.Parse(json);
        return IndexEntries.Extract(type, document.RootElement, keys.Index);
    }

    /// <summary>A caller's text quoted back in a message, cut to <paramref name="max"/> characters.</summary>
    internal static string Shorten(string value, int max = 64) => value.Length <= max ? value : value[..max] + "…";
}
