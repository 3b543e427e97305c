// Re-extraction of the search index (vauban reindex): when what IndexEntries.Extract makes of a resource changes, the
// records written before keep their old index rows, and searches miss them. Each current version is opened, its index
// extracted again by today's code, and its rows replaced in batches, each batch one transaction with its audit entry.
// Safe beside a running server: a row is replaced only while the version read is still the current one (IndexRows).
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Records;

/// <param name="Records">Current versions whose index rows were checked (and replaced where they differed).</param>
/// <param name="Changed">Of those, the ones whose rows were not what today's extraction makes.</param>
/// <param name="Redone">Versions changed by another writer between their read and their write, read again and done.</param>
/// <param name="Unreadable">Versions that failed their integrity check: not re-indexed (the security officer is alerted).</param>
/// <param name="Busy">Versions still changing after several attempts: not re-indexed by this run.</param>
public sealed record ReindexSummary(int Records, int Changed, int Redone, int Unreadable, int Busy)
{
    /// <summary>Whether every current version the run went through now has today's index rows.</summary>
    public bool Complete => Unreadable == 0 && Busy == 0;
}

/// <summary>The index format the store was last fully indexed with, and this Vauban's.</summary>
public sealed record IndexStatus(int Stored, int Current)
{
    public bool Outdated => Stored < Current;

    /// <summary>Whether a newer Vauban indexed the store, in a format this one does not write.</summary>
    public bool Newer => Stored > Current;

    /// <summary>What the operator is told of a store a newer Vauban indexed: `serve` warns; the verbs that write index rows in bulk
    /// (seed, import, reindex) refuse, as their rows would be in this Vauban's older format beside the newer one's.</summary>
    public string NewerWarning => $"the store's search index has format {Stored}, newer than this Vauban's ({Current}): a newer Vauban indexed it. Records this "
        + "one writes are indexed in its older format, which that Vauban's searches may miss until it re-indexes them: run the newer Vauban.";

    /// <summary>What the operator is told while the store is behind.</summary>
    public string Warning => $"the store's search index has format {Stored}, older than this Vauban's ({Current}): records written before the upgrade may be "
        + "missing from searches and from the checks that read the index (a patient another links to is not protected from deletion). "
        + "Run `vauban reindex` (safe while the server runs).";
}

public sealed partial class RecordsService
{
    /// <summary>Records per transaction: a few thousand, so that a batch holds SQLite's writer for a fraction of a second.</summary>
    internal int ReindexBatchSize { get; set; } = 2_000;

    /// <summary>Rounds of reading again the versions a concurrent writer changed under a batch, before they count as busy.</summary>
    private const int ReindexAttempts = 5;

    /// <summary>Tests: runs between a batch's read (and extraction) and its write, to change a record meanwhile.</summary>
    internal Func<CancellationToken, Task>? BeforeReindexWrite { get; set; }

    public async Task<IndexStatus> IndexStatusAsync(CancellationToken cancellationToken) =>
        new(await IndexVersionSetting.ReadAsync(_database, cancellationToken), IndexEntries.FormatVersion);

    /// <summary>How many records <see cref="ReindexAsync"/> will go through in the context's establishment.</summary>
    public async Task<long> ReindexCountAsync(AccessContext context, string? type, CancellationToken cancellationToken)
    {
        var typeCode = ReindexTarget(context, type);
        await using var connection = await _database.OpenAsync(cancellationToken);
        return await IndexRows.CountAsync(connection, context.Tenant.Id, typeCode, cancellationToken);
    }

    /// <summary>Re-extracts the index rows of the current version of every record of the context's establishment (of
    /// <paramref name="type"/> only, when given) and replaces those that differ. An operator's act (the command line), audited
    /// on the establishment's chain once a batch, in the batch's transaction, naming no patient.</summary>
    /// <param name="progress">Records done, batch by batch.</param>
    public async Task<ReindexSummary> ReindexAsync(AccessContext context, string? type, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        var typeCode = ReindexTarget(context, type);
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var total = new ReindexSummary(0, 0, 0, 0, 0);
        var after = 0L;
        while (true)
        {
            List<StoredVersion> page;
            await using (var connection = await _database.OpenAsync(cancellationToken))
            {
                page = await IndexRows.PageAsync(connection, context.Tenant.Id, typeCode, after, ReindexBatchSize, cancellationToken);
            }
            if (page.Count == 0) break;
            after = page[^1].Rid;
            var rows = page;
            for (var attempt = 0; ; attempt++)
            {
                var (done, moved, held) = await ReindexBatchAsync(context, keys, type, rows, attempt > 0, cancellationToken);
                keys = held;
                total = total with
                {
                    Records = total.Records + done.Records, Changed = total.Changed + done.Changed, Unreadable = total.Unreadable + done.Unreadable,
                    Redone = total.Redone + (attempt > 0 ? done.Records : 0),
                };
                if (moved.Count == 0) break;
                if (attempt + 1 == ReindexAttempts)
                {
                    total = total with { Busy = total.Busy + moved.Count };
                    break;
                }
                // Changed (or, on PostgreSQL, being changed) by another writer since read: their current versions, read again, after
                // a pause that lets a writer holding one finish (the five attempts came back to back).
                await Task.Delay(TimeSpan.FromMilliseconds(100 << attempt), cancellationToken);
                await using var connection = await _database.OpenAsync(cancellationToken);
                rows = await IndexRows.CurrentAsync(connection, Engine, context.Tenant.Id, moved, cancellationToken);
                if (rows.Count == 0) break; // deleted meanwhile: a deletion has no index rows
            }
            progress?.Report(page.Count);
        }
        return total;
    }

    /// <summary>After a run over every establishment and type that left nothing out (<see cref="ReindexSummary.Complete"/>):
    /// the store is at this Vauban's index format.</summary>
    public Task RecordIndexCurrentAsync(CancellationToken cancellationToken) =>
        IndexVersionSetting.RaiseAsync(_database, IndexEntries.FormatVersion, cancellationToken);

    /// <summary>The type code to re-index (null: all), once the context is known to be an operator's.</summary>
    private static int? ReindexTarget(AccessContext context, string? type)
    {
        ArgumentNullException.ThrowIfNull(context);
        // Not a care interaction: no person or API client re-indexes a store, only the operator at the command line.
        if (context.Principal.Kind != PrincipalKind.System) throw new UnauthorizedAccessException("Only the operator at the command line re-indexes a store.");
        if (type is null) return null;
        return TypeCodes.TryGet(type, out var code)
            ? code
            : throw new ArgumentException($"'{type}' is not a resource type Vauban stores ({string.Join(", ", TypeCodes.Names.Order(StringComparer.Ordinal))}).");
    }

    /// <summary>The codes of a type's stored reference search parameters (its idx_ref rows' params).</summary>
    private static int[] ReferenceParameters(int typeCode) =>
        [.. SearchParameters.Stored(TypeCodes.NameOf(typeCode)).Where(p => p.Kind == SearchParamKind.Reference).Select(p => p.Code).Distinct()];

    private sealed record Reextracted(StoredVersion Row, IndexEntries? Index, string? Compartment, HashSet<string>? Targets);

    /// <summary>One batch: the bodies opened and their index extracted outside the transaction (on every core), then every row
    /// replaced in one transaction that checks each version is still current. Returns what was done, the rows found changed, and
    /// the establishment's keys as held now (with a data key made since the run began, when the batch met records sealed under it).</summary>
    private async Task<(ReindexSummary Done, List<long> Moved, TenantKeys Keys)> ReindexBatchAsync(AccessContext context, TenantKeys keys, string? type,
        List<StoredVersion> rows, bool retry, CancellationToken cancellationToken)
    {
        var extracted = new Reextracted[rows.Count];
        var newer = new int?[rows.Count];
        void Extract(TenantKeys held, int i)
        {
            var row = rows[i];
            var name = TypeCodes.NameOf(row.Type);
            try
            {
                using var document = JsonDocument.Parse(Open(held, row));
                var index = IndexEntries.Extract(name, document.RootElement, held.Index);
                extracted[i] = new Reextracted(row, index, Compartments.Of(name, row.Id, index), IndexEntries.AllLocalTargets(document.RootElement));
                newer[i] = null;
            }
            catch (UnknownKeyVersionException unknown)
            {
                newer[i] = unknown.Version;
                extracted[i] = new Reextracted(row, null, null, null);
            }
            catch (RecordIntegrityException)
            {
                extracted[i] = new Reextracted(row, null, null, null);
            }
        }
        Parallel.For(0, rows.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancellationToken }, i => Extract(keys, i));
        // Re-sealed under a data key made after this run loaded the establishment's keys (`keys rotate-data` beside a long reindex):
        // that key loaded, those records opened again, as a read does (OpenAllAsync). Only a version the store does not have
        // either is damage: counted as such, every re-sealed record was reported altered, with an alert each.
        if (newer.Max() is { } version)
        {
            if (await _keys.WithDataKeyAsync(context.Tenant.Id, version, cancellationToken) is { } reloaded)
            {
                keys = reloaded;
                for (var i = 0; i < rows.Count; i++)
                {
                    if (newer[i] is not null) Extract(keys, i);
                }
            }
        }
        foreach (var damaged in extracted.Where(e => e.Index is null))
        {
            var name = TypeCodes.NameOf(damaged.Row.Type);
            await AuditAsync(context, AuditAction.Administration, AuditOutcome.SeriousFailure, name, [new AuditedRecord(name, damaged.Row.Id, damaged.Row.Compartment)], cancellationToken,
                note: "reindex: stored record failed its integrity check");
            await _guard.RaiseAsync(context.Tenant.Id, KnownAlertKinds.RecordIntegrity, context.Principal.Id,
                $"{name}/{damaged.Row.Id} version {damaged.Row.Version} failed its integrity check when re-indexed: it was altered or moved in the database, or read with the wrong key. Its index was left as it was.",
                cancellationToken);
        }
        if (BeforeReindexWrite is { } pause) await pause(cancellationToken);
        var moved = new List<long>();
        var done = 0;
        var changed = 0;
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        foreach (var item in extracted)
        {
            if (item.Index is null) continue;
            var outcome = await IndexRows.ReplaceAsync(scope, Engine, keys.TenantId, item.Row.Rid, item.Row.Version, item.Index, item.Compartment, item.Targets!,
                ReferenceParameters(item.Row.Type), cancellationToken);
            if (outcome == IndexReplacement.Moved)
            {
                moved.Add(item.Row.Rid);
                continue;
            }
            done++;
            if (outcome == IndexReplacement.Changed) changed++;
        }
        if (done > 0)
        {
            // One entry a batch, naming the type and the counts only: no record is shown to anyone, and the chain does not need
            // the thousands of patients a batch goes through (the bulk loader's entries list what it creates, which is new).
            await AuditAsync(context, AuditAction.Administration, AuditOutcome.Success, type, [new AuditedRecord("index:" + (type ?? "all types"), null, null)], cancellationToken, scope,
                $"reindex{(retry ? " (records changed meanwhile, read again)" : "")}: {done} record(s) re-extracted, {changed} with changed index rows");
        }
        await scope.CommitAsync(cancellationToken);
        return (new ReindexSummary(done, changed, 0, extracted.Count(e => e.Index is null), 0), moved, keys);
    }
}
