// Bulk loading (seed, import): the same door — policy per type, validation, the one cipher, the same
// index extraction, audit per batch — but written in large transactions on one connection kept for the
// whole load, with the work of sealing spread over the cores while the database writes.
using System.Data.Common;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Records;

/// <summary>A resource to load: its type, its id (kept) and its FHIR JSON.</summary>
public sealed record ImportItem(string Type, string Id, byte[] Json)
{
    /// <summary>Where the resource was found (a collection's "Bundle.entry[3] (Observation)"), named when it is not loaded:
    /// its id may be one the load assigned, which is in no file. Null: named by type and id.</summary>
    public string? Where { get; init; }
}

/// <param name="Rejected">What was not loaded, and why, naming each entry.</param>
public sealed record ImportSummary(int Created, int Updated, IReadOnlyList<Issue> Rejected)
{
    /// <summary>With <c>holdWaiting</c>: the records whose patient was neither in the store nor in the load, not loaded and not
    /// rejected, for the caller to offer again once the rest of what it imports is in (a folder's later files).</summary>
    public IReadOnlyList<ImportItem> Waiting { get; init; } = [];

    /// <summary>With <c>skipExisting</c>: the resources whose id was in the store already, left as they were.</summary>
    public int Skipped { get; init; }
}

public sealed partial class RecordsService
{
    /// <summary>Resources per transaction. SQLite: each batch rewrites every index page it touches, and the blind-index
    /// rows of a batch land all over their tree, so larger batches share pages (at a million patients, 16,000 a batch
    /// write ~3 pages a resource where 4,000 wrote ~5; bench/README.md). PostgreSQL logs rows, not pages.</summary>
    internal int ImportBatchSize
    {
        get => _importBatchSize ?? (Engine == StorageEngine.Sqlite ? 16_000 : 4_000);
        set => _importBatchSize = value; // a test sets a few, to give a load several batches
    }

    private int? _importBatchSize;

    /// <summary>Tests: told after each batch of a load is committed (a load stopped midway).</summary>
    internal Action? BatchWritten { get; set; }

    /// <summary>Loads of at least this many resources that make up half the store or more rebuild, on PostgreSQL, the indexes
    /// they left half empty (<see cref="StoreDatabase.CompactIndexesAfterLoadAsync"/>); a test lowers it.</summary>
    internal int CompactIndexesAfter { get; set; } = 100_000;

    /// <param name="progress">Resources written, batch by batch.</param>
    /// <param name="stage">What the load does once every batch is written (building the audit lookups, rebuilding indexes),
    /// which can take a minute at a million patients.</param>
    /// <param name="holdWaiting">A record whose patient is neither in the store nor in this load is returned in
    /// <see cref="ImportSummary.Waiting"/> instead of being rejected (its patient may be in a later file of the same import).</param>
    /// <param name="skipExisting">A resource whose id is in the store already is left as it is and counted in
    /// <see cref="ImportSummary.Skipped"/>, not written as its next version: `seed --resume` loads what an interrupted run of the
    /// same seed did not (its ids are the same, each batch was written whole or not at all).</param>
    /// <remarks>A record is loaded only under a patient that exists, as a create is (referential integrity): one met before its
    /// patient is held back and written once every batch is in, so a load may give patients and records in any order. The
    /// patients a batch needs are asked of the store once a batch, for those the batch does not itself hold.</remarks>
    public async Task<ImportSummary> ImportAsync(AccessContext context, IEnumerable<ImportItem> items, IProgress<int>? progress, CancellationToken cancellationToken,
        IProgress<string>? stage = null, bool holdWaiting = false, bool skipExisting = false)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(items);
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        await using var loader = await _database.OpenBulkWriterAsync(cancellationToken);
        var created = 0;
        var updated = 0;
        var skipped = 0;
        var rejected = new List<Issue>();
        var batch = new List<ImportItem>(ImportBatchSize);
        Task<List<PreparedRow>>? preparing = null;
        Task? writing = null;
        var deferred = new List<(PreparedRow Row, string Patient)>();

        async Task FlushAsync(Task<List<PreparedRow>> prepared)
        {
            var rows = await prepared;
            var accepted = rows.Where(r => r.Issue is null).ToList();
            rejected.AddRange(rows.Where(r => r.Issue is not null).Select(r => r.Issue!));
            if (accepted.Count == 0) return;
            await WriteRowsAsync(accepted, deferred);
            progress?.Report(rows.Count);
            BatchWritten?.Invoke();
        }

        async Task WriteRowsAsync(List<PreparedRow> accepted, List<(PreparedRow, string)> waiting)
        {
            var (inserted, existing, missing) = await WriteBatchAsync(context, loader, keys, accepted, cancellationToken);
            waiting.AddRange(missing);
            created += inserted;
            if (skipExisting)
            {
                skipped += existing.Count;
                return;
            }
            // Resources whose id already exists become new versions, through the ordinary update.
            foreach (var row in existing)
            {
                // Its stamped JSON back from its sealed body: rows do not carry the plaintext to the writer (a batch's ~16 MB of
                // it lived long enough to be promoted to the collector's oldest generation, for the rare row that needs it).
                using var document = JsonDocument.Parse(RecordCipher.Open(keys, row.TypeCode, row.Id, 1, row.Sealed));
                await using var scope = await _database.BeginWriteAsync(cancellationToken);
                var result = await UpdateInScopeAsync(context, scope, keys, row.Type, row.Id, document.RootElement, null, null, new WriteBatch(scope), cancellationToken);
                if (result.Status is RecordStatus.Ok or RecordStatus.Created)
                {
                    await scope.CommitAsync(cancellationToken);
                    updated++;
                }
                else rejected.AddRange((result.Issues ?? []).Select(i => i with { Diagnostics = $"{row.Where}: {i.Diagnostics}" }));
            }
        }

        // A batch sealed on the thread pool with the keys as they are now: a load lasts longer than a data-key rotation's wait, and
        // must take its new key as requests do (the writer opens with them too: they hold every version before).
        async Task<Task<List<PreparedRow>>> SealAsync(List<ImportItem> sealing)
        {
            keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
            return PrepareAsync(context, keys, sealing);
        }

        foreach (var item in items)
        {
            batch.Add(item);
            if (batch.Count < ImportBatchSize) continue;
            // Pipeline: seal batch n+1 on the thread pool while batch n is written.
            var next = await SealAsync(batch);
            batch = new List<ImportItem>(ImportBatchSize);
            if (writing is not null) await writing;
            if (preparing is not null) writing = FlushAsync(preparing);
            preparing = next;
        }
        if (batch.Count > 0)
        {
            var next = await SealAsync(batch);
            if (writing is not null) await writing;
            if (preparing is not null) await FlushAsync(preparing);
            preparing = next;
            writing = null;
        }
        if (writing is not null) await writing;
        if (preparing is not null) await FlushAsync(preparing);
        // Records met before their patient, once every patient of the load is in; what still names none is not loaded.
        var waiting = new List<ImportItem>();
        foreach (var chunk in deferred.Select(d => d.Row).Chunk(ImportBatchSize))
        {
            var missing = new List<(PreparedRow Row, string Patient)>();
            await WriteRowsAsync([.. chunk], missing);
            foreach (var (row, patient) in missing)
            {
                if (holdWaiting) waiting.Add(new ImportItem(row.Type, row.Id, RecordCipher.Open(keys, row.TypeCode, row.Id, 1, row.Sealed)) { Where = row.Where });
                else rejected.Add(UnknownPatientIssue(Compartments.PatientElement(row.Type), patient, false, row.Where));
            }
        }
        if (created > 0)
        {
            stage?.Report("audit lookups");
            await _audit.BuildLookupsAsync(loader, context.Tenant.Id, cancellationToken);
        }
        if (created > 10_000)
        {
            stage?.Report("planner statistics");
            await _database.AnalyzeAsync(cancellationToken);
        }
        if (created >= CompactIndexesAfter && Engine == StorageEngine.Postgres)
        {
            stage?.Report("rebuilding indexes");
            await _database.CompactIndexesAfterLoadAsync(created, cancellationToken);
        }
        return new ImportSummary(created, updated, rejected) { Waiting = waiting, Skipped = skipped };
    }

    /// <summary>The resources of a collection Bundle, for <see cref="ImportAsync"/>: each entry's resource with its id (a new
    /// one when it has none), and the urn:uuid: references between entries rewritten to the Type/id they name, as a
    /// transaction does (stored as they were, they pointed nowhere: a patient's observations were in no one's compartment).
    /// What cannot be loaded — an entry without a resource, a fullUrl used twice, a urn:uuid: reference that names no entry, a
    /// resource larger than <paramref name="maxResourceBytes"/> — goes to <paramref name="rejected"/>, naming the entry.</summary>
    /// <param name="maxResourceBytes">The limit on one resource that the API holds a create or update to (its body, 413 above
    /// it), so that an import does not bring in what the API refuses; null: no limit.</param>
    public static List<ImportItem> CollectionItems(JsonElement bundle, List<Issue> rejected, long? maxResourceBytes = null)
    {
        ArgumentNullException.ThrowIfNull(rejected);
        var items = new List<ImportItem>();
        if (EnvelopeIssues(bundle) is { Count: > 0 } envelope)
        {
            rejected.AddRange(envelope);
            return items;
        }
        // The envelope holds an object whose entry, when present, is an array.
        if (!bundle.TryGetProperty("entry", out var entries)) return items;
        var found = new List<(string Where, string Type, string Id, JsonElement Resource)>();
        var references = new Dictionary<string, string>(StringComparer.Ordinal);
        var index = 0;
        foreach (var entry in entries.EnumerateArray())
        {
            var where = $"Bundle.entry[{index++}]";
            if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("resource", out var resource) || resource.ValueKind != JsonValueKind.Object)
            {
                rejected.Add(Issue.Invalid($"{where}: no resource.", where));
                continue;
            }
            if (EntryEnvelopeIssue(entry, index - 1, "collection") is { } envelopeIssue)
            {
                rejected.Add(envelopeIssue);
                continue;
            }
            var type = resource.TryGetProperty("resourceType", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : "";
            if (type.Length == 0)
            {
                rejected.Add(Issue.Invalid($"{where}: the resource has no resourceType.", where + ".resource"));
                continue;
            }
            var given = resource.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : null;
            var id = given ?? IdRules.NewId();
            if (entry.TryGetProperty("fullUrl", out var f) && f.ValueKind == JsonValueKind.String && f.GetString()!.StartsWith("urn:uuid:", StringComparison.OrdinalIgnoreCase)
                && !references.TryAdd(f.GetString()!, $"{type}/{id}"))
            {
                rejected.Add(Issue.Invalid($"{where}: fullUrl is used twice.", where + ".fullUrl"));
                continue;
            }
            found.Add((given is null ? $"{where} ({Shorten(type)})" : $"{where} ({NameOf(type, given)})", type, id, resource));
        }
        foreach (var (where, type, id, resource) in found)
        {
            // Its fullUrl still resolves, to the record it would have been: what refers to it is then judged as it would be.
            if (TooLarge(resource, maxResourceBytes) is { } limit)
            {
                rejected.Add(ResourceTooLarge(where, limit));
                continue;
            }
            if (ResourceStamp.UnresolvedUrnReference(resource, references) is { } unresolved)
            {
                rejected.Add(Issue.Invalid($"{where}: the reference '{Shorten(unresolved)}' names no entry of this Bundle (no entry has it as fullUrl).",
                    where.Split(' ')[0] + ".resource"));
                continue;
            }
            items.Add(new ImportItem(type, id, references.Count == 0 ? JsonSerializer.SerializeToUtf8Bytes(resource) : ResourceStamp.RewriteReferences(resource, references))
                { Where = where });
        }
        return items;
    }

    /// <summary>How a rejection names a record: its type and id, but not an id that is a NIR (refused for that very reason): the
    /// import's lines end up in job logs, which must not hold a social-security number.</summary>
    private static string NameOf(string type, string id) => IdRules.IsIdentifying(id) ? $"{Shorten(type)}, id withheld" : $"{Shorten(type)}/{Shorten(id)}";

    /// <param name="Where">What a rejection names: <see cref="ImportItem.Where"/>, else the type and id.</param>
    internal sealed record PreparedRow(string Type, int TypeCode, string Id, byte[] Sealed, IndexEntries? Index, Issue? Issue, string Where);

    private Task<List<PreparedRow>> PrepareAsync(AccessContext context, TenantKeys keys, List<ImportItem> items)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        return Task.Run(() =>
        {
            var rows = new PreparedRow[items.Count];
            Parallel.For(0, items.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                var item = items[i];
                rows[i] = Prepare(context, keys, item, now);
            });
            return rows.ToList();
        });
    }

    private PreparedRow Prepare(AccessContext context, TenantKeys keys, ImportItem item, long now)
    {
        var where = item.Where ?? NameOf(item.Type, item.Id);
        PreparedRow Reject(string message) => new(item.Type, 0, item.Id, [], null, Issue.Invalid($"{where}: {message}"), where);
        if (!TypeCodes.TryGet(item.Type, out var typeCode)) return Reject("unsupported resource type.");
        if (!_policy.Authorize(context, Interaction.Import, item.Type).Allowed) return Reject("the granted scopes do not allow creating this type.");
        if (!IdRules.IsValid(item.Id)) return Reject("invalid id.");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(item.Json, new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false });
        }
        catch (JsonException)
        {
            return Reject("not valid JSON.");
        }
        using (document)
        {
            var issues = RecordValidation.Validate(item.Type, document.RootElement);
            if (issues.Count > 0) return Reject(issues[0].Diagnostics);
            if (Compartments.UnfollowedPatientReference(item.Type, document.RootElement) is { } unfollowed) return Reject(unfollowed.Diagnostics);
            var json = ResourceStamp.Apply(document.RootElement, item.Type, item.Id, 1, now);
            // Stamping changes only id and meta, which no search parameter reads: index the parsed original.
            var index = IndexEntries.Extract(item.Type, document.RootElement, keys.Index);
            if (index.TooMany(item.Type) is { } tooMany) return Reject(tooMany.Diagnostics);
            if (Compartments.NamesNoPatient(item.Type, document.RootElement, index) is { } noPatient) return Reject(noPatient.Diagnostics);
            return new PreparedRow(item.Type, typeCode, item.Id, RecordCipher.Seal(keys, typeCode, item.Id, 1, json), index, null, where);
        }
    }

    /// <summary>Inserts a batch in one transaction on the loader's connection, with the audit entries of what it inserted
    /// (committed together: a batch is never in the store without its entries); returns the count inserted, the rows
    /// whose id already existed or came earlier in the batch (to be written as new versions), and the rows not written
    /// because a patient they name is neither in the store nor in the batch (with that patient).</summary>
    private async Task<(int Inserted, List<PreparedRow> Existing, List<(PreparedRow Row, string Patient)> Missing)> WriteBatchAsync(AccessContext context,
        DbConnection loader, TenantKeys keys, List<PreparedRow> rows, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var createdBy = CreatorOf(context);
        await using var scope = await _database.BeginWriteOnAsync(loader, cancellationToken);
        var missing = await WithoutPatientAsync(scope, keys, rows, cancellationToken);
        if (missing.Count > 0)
        {
            var held = missing.Select(m => m.Row).ToHashSet();
            rows = rows.Where(r => !held.Contains(r)).ToList();
        }
        var existing = await BulkRows.ExistingAsync(scope, Engine, keys.TenantId, rows.Select(r => (r.TypeCode, r.Id)).ToList(), cancellationToken);
        // A resource given twice in one batch (a collection holding two versions of it): the first is inserted, the later
        // ones become its next versions in their order, like a resource that already existed (they were dropped unsaid).
        var fresh = new List<PreparedRow>(rows.Count);
        var later = new List<PreparedRow>();
        var seen = new HashSet<(int, string)>();
        foreach (var row in rows)
        {
            if (!existing.Contains((row.TypeCode, row.Id)) && seen.Add((row.TypeCode, row.Id))) fresh.Add(row);
            else later.Add(row);
        }
        var rids = await _database.ReserveRowIdsAsync(scope, fresh.Count, cancellationToken);
        var bulk = fresh.Select((r, i) => new BulkRow(rids[i], r.TypeCode, r.Id, now, r.Sealed, r.Index!, Compartments.Of(r.Type, r.Id, r.Index!), createdBy)).ToList();
        await BulkRows.InsertAsync(scope, Engine, keys.TenantId, bulk, cancellationToken);
        if (bulk.Count > 0)
        {
            // One entry per patient for the whole batch, listing that patient's records of every type (one per patient and
            // type was ~6.5 entries a patient for the seed's data, a third of PostgreSQL's bytes per resource).
            var records = bulk.Select(r => new AuditedRecord(TypeCodes.NameOf(r.Type), r.Id, r.Compartment)).ToList();
            var type = bulk.TrueForAll(r => r.Type == bulk[0].Type) ? records[0].Type : null;
            await AuditAsync(context, Interaction.Import, AuditOutcome.Success, type, records, cancellationToken, scope);
        }
        await scope.CommitAsync(cancellationToken);
        return (fresh.Count, later, missing);
    }

    /// <summary>The rows of a batch that name a patient neither in the batch nor, alive, in the store, each with the first such
    /// patient. One lookup a batch, of the patients the batch does not hold itself (a seed gives each patient before its records).</summary>
    private async Task<List<(PreparedRow Row, string Patient)>> WithoutPatientAsync(WriteScope scope, TenantKeys keys, List<PreparedRow> rows, CancellationToken cancellationToken)
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (row.TypeCode == PatientTypeCode) present.Add(row.Id);
        }
        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            if (row.TypeCode == PatientTypeCode) continue;
            foreach (var patient in Compartments.Named(row.Type, row.Id, row.Index!))
            {
                if (!present.Contains(patient)) needed.Add(patient);
            }
        }
        if (needed.Count == 0) return [];
        foreach (var (_, id) in await BulkRows.LiveAsync(scope, Engine, keys.TenantId, needed.Select(p => (PatientTypeCode, p)).ToList(), cancellationToken)) present.Add(id);
        var missing = new List<(PreparedRow, string)>();
        foreach (var row in rows)
        {
            if (row.TypeCode == PatientTypeCode) continue;
            foreach (var patient in Compartments.Named(row.Type, row.Id, row.Index!))
            {
                if (present.Contains(patient)) continue;
                missing.Add((row, patient));
                break;
            }
        }
        return missing;
    }
}
