// The audit append in the one door. Every act on records — and sign-ins, break-the-glass, refusals,
// administration — becomes entries on the tenant's hash chain *before* any data leaves; if the entries
// cannot be written the caller gets an exception and nothing is returned (fail closed).
//
// Two paths, one chain:
// - acts that write records append inside their own transaction, just before it commits, so the write
//   and its audit entries are atomic (WriteScope.Audit);
// - every other act (reads, searches, refusals, sign-ins…) is appended to this process's audit journal — one
//   write() per act, before the data leaves — and queued to one appender thread that copies whatever is waiting
//   onto the chain in one transaction every IngestEvery (group commit, with the journal's progress in the same
//   transaction). A store that opens puts on the chain what the journals of dead processes still hold.
// Both read the chain's head row inside their transaction (locked on PostgreSQL, the single writer on
// SQLite), so two processes on one store extend one chain rather than forking it.
//
// The appender keeps one connection of its own with its statements prepared; a flusher thread makes the journal
// and the appender's commits durable at least every DurableEvery (ADR 0009). If the chain cannot be written, the
// journaled entries wait and are retried, and every act is refused until a copy succeeds (fail closed). Reading
// the log first waits for what is queued. The patient and principal lookups (audit_index) are filled behind the
// chain in large sorted batches, never in the commit path.
using System.Buffers;
using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;
using SQLitePCL;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Records;
using Vauban.Storage;

namespace Vauban.Audit;

public sealed record AuditOptions
{
    /// <summary>Sign a checkpoint after this many entries…</summary>
    public int CheckpointEvery { get; init; } = 4096;

    /// <summary>…or this long after the last one, whichever comes first.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The most entries one group commit writes.</summary>
    public int MaxBatch { get; init; } = 8192;

    /// <summary>Group commits of read-side entries are written before the data leaves but flushed to disk lazily; at least
    /// this often one of them is a durable (fsync'd) commit, which makes every earlier one durable too. Zero: every group
    /// commit is durable. Entries of writes always commit durably with the write.</summary>
    public TimeSpan DurableEvery { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The patient and principal lookups are built behind the chain once this many entries wait for them (or
    /// when the appender is idle); searches read the entries beyond them directly.</summary>
    public int IndexEvery { get; init; } = 16384;

    /// <summary>Read-side entries are appended to the journal before the data leaves and copied onto the chain at most this
    /// long after the previous copy (or as soon as MaxBatch wait, or someone reads the log). Zero: no journal — every
    /// read-side act waits for the group commit that puts its entries on the chain.</summary>
    public TimeSpan IngestEvery { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Past this many journaled entries waiting for the chain, an act waits for its own entries to be on it.</summary>
    public int MaxBacklog { get; init; } = 65536;

    /// <summary>The journal's folder; null: beside the SQLite file, or under the data folder for PostgreSQL.</summary>
    public string? JournalDirectory { get; init; }

    /// <summary>A journal file past this size is retired and a new one started (tests make it small).</summary>
    internal long JournalRotateAt { get; init; } = AuditJournal.DefaultRotateAt;

    public void Validate()
    {
        if (IndexEvery < 1) throw new VaubanConfigurationException("The audit index batch must be at least one entry.");
        if (CheckpointEvery < 1) throw new VaubanConfigurationException("The audit checkpoint interval must be at least one entry.");
        if (CheckpointInterval < TimeSpan.FromMilliseconds(100)) throw new VaubanConfigurationException("The audit checkpoint interval must be at least 100 ms.");
        if (MaxBatch < 1) throw new VaubanConfigurationException("The audit batch size must be at least one entry.");
        if (DurableEvery < TimeSpan.Zero || DurableEvery > TimeSpan.FromSeconds(1)) throw new VaubanConfigurationException("The audit durability interval must be between 0 and 1 second.");
        if (IngestEvery < TimeSpan.Zero || IngestEvery > TimeSpan.FromSeconds(1)) throw new VaubanConfigurationException("The audit journal's copy interval must be between 0 and 1 second.");
        if (MaxBacklog < 1) throw new VaubanConfigurationException("The audit journal's backlog must allow at least one entry.");
    }
}

/// <summary>A journal left by a stopped process whose last <see cref="Dropped"/> bytes, after <see cref="Readable"/> good ones,
/// could not be read and are not on the chain: a record torn by a power loss, or damage.</summary>
internal sealed record DamagedJournal(string Name, long Readable, long Dropped);

/// <summary>An entry sealed and indexed, waiting for its place on the chain.</summary>
internal readonly record struct PreparedEntry(long At, int Action, int Outcome, int Type, long PrincipalIndex, long PatientIndex, byte[] Sealed);

/// <summary>The entries a write transaction appends when it commits.</summary>
internal sealed class PendingAudit(AuditTrail trail, long tenantId)
{
    public long TenantId { get; } = tenantId;
    public List<PreparedEntry> Entries { get; } = [];

    /// <summary>The signing key of a chain created in this very transaction (a new tenant's), not yet readable elsewhere.</summary>
    public AuditSigningKey? Signer { get; init; }

    /// <summary>Digests of the security records the transaction wrote (<see cref="SecurityRecords"/>): one entry carries them all,
    /// after the act's own.</summary>
    public List<SecurityRecordDigest> Digests { get; } = [];

    public async Task FlushAsync(WriteScope scope, CancellationToken cancellationToken)
    {
        if (Entries.Count == 0 && Digests.Count == 0) return;
        try
        {
            IReadOnlyList<PreparedEntry> entries = Digests.Count == 0
                ? Entries
                : [.. Entries, await trail.SecurityRecordsEntryAsync(TenantId, Digests, SecurityRecords.WrittenNote, from: false, cancellationToken)];
            await trail.AppendInScopeAsync(scope, TenantId, entries, cancellationToken, signer: Signer);
        }
        catch (Exception e) when (e is DbException or AuditIntegrityException or IOException or TimeoutException)
        {
            // The write's transaction is rolled back with its entries: nothing changed.
            throw new AuditUnavailableException("The audit log could not be written; nothing was changed.", e);
        }
    }
}

public sealed class AuditTrail : IAsyncDisposable
{
    /// <summary>The note of an act that returned a count and no record (a search's, a history's, $everything's with _count=0, the
    /// audit log's own): no patient's data left by it (a breach's scope leaves it out).</summary>
    internal const string CountOnlyNote = "count only";

    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly TimeProvider _time;
    private readonly AuditOptions _options;
    private readonly Channel<PendingGroup> _queue = Channel.CreateUnbounded<PendingGroup>(new UnboundedChannelOptions { SingleReader = true });
    private readonly AutoResetEvent _wake = new(false); // not SemaphoreSlim: its Wait spins (sched_yield) before it sleeps
    private readonly ConcurrentDictionary<long, bool> _unsigned = new();
    private readonly ConcurrentDictionary<long, bool> _unindexed = new();
    private readonly Lazy<Task> _appender;
    private AppenderSession? _session; // the appender thread's only
    private int _sleeping;                // 1: the appender waits for entries; 2: it waits for the next copy (IngestEvery)
    private int _disposed;

    // The journal (ADR 0009): written under _journalLock, which also orders the queue, so the appender copies entries
    // in the order they were journaled.
    private readonly Lock _journalLock = new();
    private AuditJournal? _journal;                                   // opened with the first journaled act
    private readonly ConcurrentQueue<RetiredJournal> _retired = new(); // rotated files, still locked, deleted once copied
    private readonly Dictionary<string, long> _copied = new(StringComparer.Ordinal); // appender: how far each file is on the chain
    private volatile AuditUnavailableException? _copyFailure;         // set while the chain cannot be written
    private string? _storeId; // names this store's journal files; read when the store opens (RecoverJournalsAsync)
    private int _backlog;                                             // journaled entries not yet taken by the appender
    private int _urgent;                                              // queued groups someone waits for
    private long _journaled;                                          // journal writes so far
    private long _journalFlushedUpTo;                                 // flusher: the value of _journaled its last fsync covered

    /// <summary>What an act refused because its entries could not be recorded is told.</summary>
    private const string NotWritten = "The audit log could not be written; nothing was returned.";

    private bool Journaling => _options.IngestEvery > TimeSpan.Zero;

    /// <summary>The folder of this process's audit journal. Every process of one store must find the same folder after a
    /// restart: what a crashed process journaled is put on the chain by the next one that opens it there.</summary>
    public string JournalDirectory => _journalDirectory ?? _options.JournalDirectory ?? _database.DefaultAuditJournalDirectory;

    private string? _journalDirectory; // chosen when the store opens (RecoverJournalsAsync)

    internal AuditTrail(StoreDatabase database, KeyRing keys, TimeProvider time, AuditOptions options)
    {
        options.Validate();
        _database = database;
        _keys = keys;
        _time = time;
        _options = options;
        _appender = new Lazy<Task>(StartAppender, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The benchmark's "auditing off" run (bench/, in process only; never reachable from configuration).</summary>
    internal bool SkipForBenchmark { get; set; }

    /// <summary>How long a commit lets the newest checkpoint age before signing another (verification holds entries to it).</summary>
    internal TimeSpan CheckpointInterval => _options.CheckpointInterval;

    /// <summary>Appends the entries of one act and returns once they are committed. One entry per patient the act
    /// touched (the records of that patient listed in it), or one entry when it touched no patient's record.</summary>
    public async Task AppendAsync(AccessContext context, AuditAction action, AuditOutcome outcome, string? type, IReadOnlyList<AuditedRecord> records,
        CancellationToken cancellationToken, string? note = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(records);
        if (Volatile.Read(ref _disposed) != 0) throw new AuditUnavailableException("The audit log is closed.");
        if (SkipForBenchmark) return;
        var entries = await PrepareAsync(context, action, outcome, type, records, note, cancellationToken);
        // The caller's cancellation does not withdraw entries already queued: the act was attempted.
        await EnqueueAsync(new PendingGroup(context.Tenant.Id, entries));
    }

    /// <summary>Appends the entries of an act done inside <paramref name="scope"/>: written when it commits. Failures
    /// (refusals) are also kept if the transaction rolls back. <paramref name="created"/>: the keys of a tenant created in
    /// this transaction, whose chain starts with this act.</summary>
    internal async Task AppendAsync(WriteScope scope, AccessContext context, AuditAction action, AuditOutcome outcome, string? type,
        IReadOnlyList<AuditedRecord> records, CancellationToken cancellationToken, string? note = null, CreatedTenantKeys? created = null)
    {
        if (SkipForBenchmark) return;
        var entries = await PrepareAsync(context, action, outcome, type, records, note, cancellationToken, created?.Keys);
        scope.Audit ??= new PendingAudit(this, context.Tenant.Id) { Signer = created?.Signer };
        if (scope.Audit.TenantId != context.Tenant.Id) throw new InvalidOperationException("One transaction writes one tenant's records.");
        scope.Audit.Entries.AddRange(entries);
        if (outcome != AuditOutcome.Success)
        {
            scope.AfterRollback.Add(() => EnqueueAsync(new PendingGroup(context.Tenant.Id, entries)));
        }
    }

    /// <summary>Puts on the tenant's chain, when <paramref name="scope"/> commits, the digests of the rows of <paramref name="table"/>
    /// it wrote, from the values it wrote (<paramref name="written"/>: each row's id and fields, in <see cref="SecurityTable"/>'s
    /// canonical form): of what was made, or of the state a change left them in (<paramref name="state"/>). Each row is read back
    /// in the transaction and must be what was written: one gone or changed as it was written (a trigger or rule in the database)
    /// fails the write (<see cref="AuditIntegrityException"/>), never recording the changed row as the truth. The rows and their
    /// entry commit together, or neither does.</summary>
    internal async Task AttestAsync(WriteScope scope, long tenantId, SecurityTable table, bool state, IReadOnlyList<(long Id, object?[] Fields)> written,
        CancellationToken cancellationToken)
    {
        if (SkipForBenchmark || written.Count == 0 || scope.SecurityRecordsOffChain) return;
        var keys = await _keys.ForTenantAsync(tenantId, cancellationToken);
        var input = new DigestInput();
        var digests = written.Select(w => new SecurityRecordDigest(table.Code, w.Id, state, table.Digest(keys, tenantId, w.Id, state, w.Fields, input))).ToList();
        var stored = (await SecurityRecords.DigestsAsync(scope, _database.Engine, _keys, tenantId, table, state, [.. written.Select(w => w.Id)], cancellationToken))
            .ToDictionary(d => d.Id);
        foreach (var digest in digests)
        {
            if (!stored.TryGetValue(digest.Id, out var read) || !read.Digest.AsSpan().SequenceEqual(digest.Digest))
            {
                throw new AuditIntegrityException(string.Create(CultureInfo.InvariantCulture,
                    $"{table.Noun} {digest.Id} {(read is null ? "was gone" : "was changed")} in {table.Name} as it was written: a trigger or rule in the database? Nothing was written"));
            }
        }
        PendingOf(scope, tenantId).Digests.AddRange(digests);
    }

    /// <summary>The entries <paramref name="scope"/> appends to the tenant's chain: the act's (one tenant's, as a rule), or, for
    /// an act that writes on several chains (an alert to every establishment), one more chain beside it.</summary>
    private PendingAudit PendingOf(WriteScope scope, long tenantId)
    {
        if (scope.Audit is null) return scope.Audit = new PendingAudit(this, tenantId);
        if (scope.Audit.TenantId == tenantId) return scope.Audit;
        var other = scope.OtherChains.Find(c => c.TenantId == tenantId);
        if (other is null) scope.OtherChains.Add(other = new PendingAudit(this, tenantId));
        return other;
    }

    /// <summary>An entry carrying <paramref name="digests"/>, in the server's name (<see cref="SecurityRecords.Writer"/>);
    /// <paramref name="from"/>: the entry from which every security record of the establishment is on the chain.
    /// <paramref name="created"/>: the keys of a tenant created in this transaction (not readable elsewhere yet).</summary>
    internal async Task<PreparedEntry> SecurityRecordsEntryAsync(long tenantId, IReadOnlyList<SecurityRecordDigest> digests, string note, bool from,
        CancellationToken cancellationToken, TenantKeys? created = null)
    {
        var keys = created ?? await _keys.ForTenantAsync(tenantId, cancellationToken);
        var detail = new AuditDetail
        {
            PrincipalKind = "system",
            Principal = SecurityRecords.Writer,
            PrincipalName = "Vauban",
            Purpose = KnownPurposes.SystemAdministration,
            Note = note,
            Records = [.. digests.Select(d => d.Table + "/" + d.Id.ToString(CultureInfo.InvariantCulture)).Distinct(StringComparer.Ordinal)],
            Digests = [.. digests],
            SecurityRecordsFrom = from,
        };
        return Seal(keys, _time.GetUtcNow().ToUnixTimeMilliseconds(), AuditAction.SecurityRecords, AuditOutcome.Success, 0,
            AuditChain.PrincipalIndex(keys, SecurityRecords.Writer), detail);
    }

    /// <summary>Begins the chain of a tenant created in <paramref name="scope"/> without an administrative act (the in-process API
    /// tests and the benchmark create establishments so): its entry 1 marks the point from which every security record of the
    /// establishment is on the chain, as the act of `tenants add` does, so that no entry chaining "existing" records can ever be
    /// valid on it (<see cref="SecurityRecords.Check"/>).</summary>
    internal async Task BeginChainAsync(WriteScope scope, long tenantId, CreatedTenantKeys created, CancellationToken cancellationToken)
    {
        if (SkipForBenchmark) return;
        scope.Audit ??= new PendingAudit(this, tenantId) { Signer = created.Signer };
        scope.Audit.Entries.Add(await SecurityRecordsEntryAsync(tenantId, [], SecurityRecords.CreatedNote, from: true, cancellationToken, created.Keys));
    }

    /// <summary>
    /// Once per store (schema step 20 marks it pending): puts on every establishment's chain the security records that existed
    /// before their writes were chained — every row's digests, a thousand an entry, the first entry marked as the point from which
    /// the chain holds them all, written even when there are none (a second such point is what verification reports if the
    /// store's mark is reset to pass rows added since as existing); a chain that already begins with that point is left alone. In
    /// one transaction with the mark, under its lock: two
    /// processes opening the upgraded store at once chain them once. Done before the journals of stopped processes are
    /// recovered, which may raise alerts: those are chained by their own writes.
    /// </summary>
    internal async Task ChainExistingSecurityRecordsAsync(CancellationToken cancellationToken)
    {
        const string Read = "SELECT value FROM store_settings WHERE name = @n";
        // Read first, outside a write: every start after the upgrade's reads the mark and goes on.
        await using (var connection = await _database.OpenAsync(cancellationToken))
        using (var peek = connection.Command(Read).With("n", SecurityRecords.ChainedSetting))
        {
            // No mark: a mark deleted (the rows then fail verification as added, rather than pass as existing).
            if (await peek.ExecuteScalarAsync(cancellationToken) is not "pending") return;
        }
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using (var mark = scope.Command(Read + (_database.Engine == StorageEngine.Postgres ? " FOR UPDATE" : "")).With("n", SecurityRecords.ChainedSetting))
        {
            // Another process may have chained them while this one waited for the lock.
            if (await mark.ExecuteScalarAsync(cancellationToken) is not "pending") return;
        }
        var tenants = new List<long>();
        using (var list = scope.Command("SELECT id FROM tenants ORDER BY id"))
        using (var reader = await list.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) tenants.Add(reader.GetInt64(0));
        }
        foreach (var tenantId in tenants)
        {
            var keys = await _keys.ForTenantAsync(tenantId, cancellationToken);
            // A chain that begins marked holds every record from its first entry (an establishment created since step 20, or one
            // whose chain was empty at the upgrade): the mark found pending there was reset, and what is not on the chain stays
            // off it, for verification to report as added in the database.
            var begins = await BeginsMarkedAsync(scope, keys, tenantId, cancellationToken);
            if (begins is true) continue;
            // An empty chain is begun as one created here (its creation's entry, no digests): a chain emptied with the mark reset
            // would otherwise chain every row then standing as existing, on an entry 1 signed with the real key. Its rows are
            // reported as added in the database; a whole chain wiped is caught only by the outside witness (--witness).
            var digests = new List<SecurityRecordDigest>();
            foreach (var table in begins is null ? Array.Empty<SecurityTable>() : SecurityTable.All)
            {
                digests.AddRange(await SecurityRecords.DigestsAsync(scope, _database.Engine, _keys, tenantId, table, state: false, null, cancellationToken));
                digests.AddRange(await SecurityRecords.DigestsAsync(scope, _database.Engine, _keys, tenantId, table, state: true, null, cancellationToken));
            }
            var pending = new PendingAudit(this, tenantId);
            List<SecurityRecordDigest[]> chunks = digests.Count == 0 ? [[]] : [.. digests.Chunk(SecurityRecords.DigestsPerEntry)];
            for (var i = 0; i < chunks.Count; i++)
            {
                pending.Entries.Add(await SecurityRecordsEntryAsync(tenantId, chunks[i], begins is null ? SecurityRecords.CreatedNote : SecurityRecords.ExistingNote,
                    from: i == 0, cancellationToken));
            }
            scope.OtherChains.Add(pending);
        }
        using (var done = scope.Command("UPDATE store_settings SET value = 'done' WHERE name = @n").With("n", SecurityRecords.ChainedSetting))
        {
            await done.ExecuteNonQueryAsync(cancellationToken);
        }
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>Whether the tenant's entry 1 marks the point from which every security record of the establishment is on the chain;
    /// null when the chain has no entry 1 (empty). An entry 1 that does not open is taken as unmarked: verification names it.</summary>
    private static async Task<bool?> BeginsMarkedAsync(WriteScope scope, TenantKeys keys, long tenantId, CancellationToken cancellationToken)
    {
        using var command = scope.Command("SELECT seq, at, action, outcome, type, principal_ix, patient_ix, sealed FROM audit_entries WHERE tenant_id = @t AND seq = 1")
            .With("t", tenantId);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        try
        {
            return Open(keys, AuditLog.ReadRow(tenantId, reader)).SecurityRecordsFrom;
        }
        catch (Exception e) when (e is RecordIntegrityException or AuditIntegrityException or JsonException or InvalidCastException)
        {
            return false;
        }
    }

    /// <summary>Appends one act that concerns every establishment in <paramref name="contexts"/> (the master key's rotation) inside
    /// <paramref name="scope"/>: an entry on each establishment's chain, written when the transaction commits, in tenant order.</summary>
    internal async Task AppendOnEveryChainAsync(WriteScope scope, IReadOnlyList<AccessContext> contexts, AuditAction action, IReadOnlyList<AuditedRecord> records,
        string note, CancellationToken cancellationToken)
    {
        if (SkipForBenchmark) return;
        foreach (var context in contexts.OrderBy(c => c.Tenant.Id))
        {
            var pending = new PendingAudit(this, context.Tenant.Id);
            pending.Entries.AddRange(await PrepareAsync(context, action, AuditOutcome.Success, null, records, note, cancellationToken));
            scope.OtherChains.Add(pending);
        }
    }

    /// <summary>Journals the group's entries and queues them for the chain; returns once they are in the journal (or, with
    /// no journal, a backlog past MaxBacklog, or no entries — a reader catching up — once they are on the chain).</summary>
    private async Task EnqueueAsync(PendingGroup group)
    {
        var appender = _appender.Value;
        if (_copyFailure is { } failure)
        {
            if (appender.IsCompleted) throw new AuditUnavailableException(failure.Message, failure.InnerException ?? failure);
            await AwaitNextCopyAsync();
        }
        var wait = true;
        lock (_journalLock)
        {
            if (Journaling && group.Entries.Count > 0)
            {
                if (Volatile.Read(ref _disposed) != 0) throw new AuditUnavailableException("The audit log is closed.");
                try
                {
                    _journal ??= AuditJournal.Create(JournalDirectory, _storeId ?? throw new InvalidOperationException("The audit journals were not opened."), _options.JournalRotateAt);
                    group.Journal = _journal.Name;
                    group.JournalEnd = _journal.Write(group.TenantId, group.Entries);
                    if (_options.DurableEvery == TimeSpan.Zero) _journal.FlushToDisk();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
                {
                    throw new AuditUnavailableException(NotWritten, e);
                }
                Interlocked.Increment(ref _journaled);
                var backlog = Interlocked.Add(ref _backlog, group.Entries.Count);
                wait = backlog > _options.MaxBacklog;
                group.Urgent = wait || backlog >= _options.MaxBatch;
            }
            else
            {
                group.Urgent = true;
            }
            if (wait) group.Await();
            if (group.Urgent) Interlocked.Increment(ref _urgent);
            if (!_queue.Writer.TryWrite(group)) throw new AuditUnavailableException("The audit log is closed.");
            if (group.Journal is not null) RotateJournal();
        }
        if (Interlocked.CompareExchange(ref _sleeping, 0, 1) == 1 || (group.Urgent && Interlocked.CompareExchange(ref _sleeping, 0, 2) == 2)) Wake();
        if (group.Done is { } done) await done.Task.ConfigureAwait(false);
    }

    /// <summary>The chain could not take the journaled entries at the appender's last attempt (the database away or restarting): an
    /// act waits for its next one, a RetryDelay away at most, and is refused only if that one fails too. Refused at once on the
    /// last attempt's failure, the first acts after PostgreSQL came back answered 503 until the appender tried again.</summary>
    private async Task AwaitNextCopyAsync()
    {
        var next = new PendingGroup(0, []) { Urgent = true };
        next.Await();
        lock (_journalLock)
        {
            Interlocked.Increment(ref _urgent);
            if (!_queue.Writer.TryWrite(next))
            {
                Interlocked.Decrement(ref _urgent);
                throw new AuditUnavailableException("The audit log is closed.");
            }
        }
        Wake();
        try
        {
            await next.Done!.Task.ConfigureAwait(false);
        }
        catch (AuditUnavailableException failure)
        {
            throw new AuditUnavailableException(failure.Message, failure.InnerException ?? failure);
        }
    }

    /// <summary>Wakes the appender. An act that queued its entries just before the trail closed may get here after DisposeAsync
    /// has drained the queue and disposed the event: its entries are on the chain (or in the journal), nothing to wake.</summary>
    private void Wake()
    {
        try
        {
            _wake.Set();
        }
        catch (ObjectDisposedException)
        {
            // closed meanwhile
        }
    }

    /// <summary>Starts a new journal file past AuditOptions.JournalRotateAt (under _journalLock). A failure only postpones it.</summary>
    private void RotateJournal()
    {
        try
        {
            if (_journal!.RotateIfLarge() is { } retired) _retired.Enqueue(retired);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Tried again after the next write; the current file goes on growing meanwhile.
        }
    }

    /// <summary>Returns once every entry queued before the call is on the chain: reading the log sees every act before it.</summary>
    internal async Task CatchUpAsync()
    {
        if (!Journaling || !_appender.IsValueCreated || Volatile.Read(ref _disposed) != 0) return;
        await EnqueueAsync(new PendingGroup(0, []));
    }

    private async ValueTask<List<PreparedEntry>> PrepareAsync(AccessContext context, AuditAction action, AuditOutcome outcome, string? type,
        IReadOnlyList<AuditedRecord> records, string? note, CancellationToken cancellationToken, TenantKeys? created = null)
    {
        var keys = created ?? await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var principal = context.Principal;
        // The same principal acts again and again: its blind index is remembered (per tenant key) rather than re-hashed.
        var principalIndex = AuditChain.PrincipalIndex(keys, principal.Id);
        var typeCode = type is not null && TypeCodes.TryGet(type, out var code) ? code : 0;
        AuditDetail Detail(string? patient, IReadOnlyList<string> references) => new()
        {
            PrincipalKind = principal.Kind switch { PrincipalKind.Person => "person", PrincipalKind.ApiClient => "client", _ => "system" },
            Principal = principal.Id,
            PrincipalName = principal.DisplayName,
            Role = principal.Role is { } role ? AccessPolicy.RoleName(role) : null,
            Service = principal.Service,
            Session = principal.SessionId,
            Source = context.SourceAddress,
            Correlation = context.CorrelationId,
            Purpose = context.Purpose,
            Note = context.StatedReason is { } stated ? (note is null ? "reason stated: " + stated : note + "; reason stated: " + stated) : note,
            Patient = patient,
            Records = references,
            // An establishment created by this Vauban chains its security records from its first entry (SecurityRecords).
            SecurityRecordsFrom = created is not null,
        };
        var entries = new List<PreparedEntry>(1);
        if (records.Count == 0)
        {
            entries.Add(Seal(keys, at, action, outcome, typeCode, principalIndex, Detail(null, [])));
            return entries;
        }
        if (records.Count == 1)
        {
            var only = records[0];
            entries.Add(Seal(keys, at, action, outcome, typeCode, principalIndex, Detail(only.Patient, [Reference(only)])));
            return entries;
        }
        foreach (var group in records.GroupBy(r => r.Patient, StringComparer.Ordinal))
        {
            entries.Add(Seal(keys, at, action, outcome, typeCode, principalIndex,
                Detail(group.Key, group.Select(Reference).Distinct(StringComparer.Ordinal).ToList())));
        }
        return entries;
    }

    /// <summary>The audited act of a records-service interaction.</summary>
    internal static AuditAction ActionOf(Interaction interaction) => interaction switch
    {
        Interaction.Read => AuditAction.Read,
        Interaction.VRead => AuditAction.VRead,
        Interaction.HistoryInstance => AuditAction.History,
        Interaction.HistoryType => AuditAction.TypeHistory,
        Interaction.Search => AuditAction.Search,
        Interaction.Create => AuditAction.Create,
        Interaction.Update => AuditAction.Update,
        Interaction.Delete => AuditAction.Delete,
        Interaction.Everything => AuditAction.Everything,
        Interaction.Import => AuditAction.Import,
        Interaction.BreakTheGlass => AuditAction.BreakTheGlass,
        Interaction.Export => AuditAction.Export,
        _ => throw new ArgumentOutOfRangeException(nameof(interaction)),
    };

    private static string Reference(AuditedRecord record) => record.Id is null ? record.Type : record.Type + "/" + record.Id;

    // Each thread's JSON buffer for the sealed part. What was written is zeroed after each use (it held who read what, in
    // clear); a buffer grown past KeptDetailBuffer by a large act (a search listing thousands of records) is dropped rather
    // than kept for the thread's life. Like any buffer the runtime frees, an outgrown array is not zeroed.
    private const int KeptDetailBuffer = 16 * 1024;
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_detailBuffer;
    [ThreadStatic] private static Utf8JsonWriter? t_detailWriter;

    private static PreparedEntry Seal(TenantKeys keys, long at, AuditAction action, AuditOutcome outcome, int typeCode, long principalIndex, AuditDetail detail)
    {
        var patientIndex = detail.Patient is null ? 0 : AuditChain.PatientIndex(keys, detail.Patient);
        var buffer = t_detailBuffer ??= new ArrayBufferWriter<byte>(1024);
        var writer = t_detailWriter ??= new Utf8JsonWriter(buffer);
        try
        {
            writer.Reset(buffer);
            JsonSerializer.Serialize(writer, detail, AuditJsonContext.Default.AuditDetail);
            writer.Flush();
            Span<char> binding = stackalloc char[AuditChain.SealBindingMaxLength];
            var length = AuditChain.WriteSealBinding(binding, at, (int)action, typeCode, principalIndex, patientIndex);
            var sealedPart = RecordCipher.Seal(keys, AuditChain.SealTypeCode, binding[..length], 1, buffer.WrittenSpan, compress: false);
            return new PreparedEntry(at, (int)action, (int)outcome, typeCode, principalIndex, patientIndex, sealedPart);
        }
        finally
        {
            buffer.Clear();
            if (buffer.Capacity > KeptDetailBuffer)
            {
                t_detailWriter?.Dispose();
                t_detailBuffer = null;
                t_detailWriter = null;
            }
        }
    }

    /// <summary>Whether a stored entry's sealed part opens under its clear columns (the associated data): false when a clear
    /// column was rewritten, or the sealed part altered.</summary>
    internal static bool Authentic(TenantKeys keys, in AuditRow row)
    {
        Span<char> binding = stackalloc char[AuditChain.SealBindingMaxLength];
        var length = AuditChain.WriteSealBinding(binding, row.At, row.Action, row.Type, row.PrincipalIndex, row.PatientIndex);
        return RecordCipher.Authentic(keys, AuditChain.SealTypeCode, binding[..length], 1, row.Sealed);
    }

    /// <summary>Opens the sealed part of a stored entry.</summary>
    internal static AuditDetail Open(TenantKeys keys, in AuditRow row) =>
        JsonSerializer.Deserialize(OpenSealedPart(keys, row), AuditJsonContext.Default.AuditDetail) ?? throw new AuditIntegrityException("an audit entry has no content");

    /// <summary>The sealed part's JSON, authenticated against the entry's clear columns (its associated data).</summary>
    private static byte[] OpenSealedPart(TenantKeys keys, in AuditRow row) =>
        RecordCipher.Open(keys, AuditChain.SealTypeCode, AuditChain.SealBinding(row.At, row.Action, row.Type, row.PrincipalIndex, row.PatientIndex), 1, row.Sealed);

    // ---- the chain, extended inside a transaction ----

    /// <summary>The chain's head as left by an append: its size and how far the lookups have been built.</summary>
    internal readonly record struct HeadState(long Size, long Indexed);

    internal async Task<HeadState> AppendInScopeAsync(WriteScope scope, long tenantId, IReadOnlyList<PreparedEntry> entries, CancellationToken cancellationToken,
        bool signNow = false, ChainStatements? kept = null, AuditSigningKey? signer = null)
    {
        var statements = kept ?? new ChainStatements(scope.Connection, _database.Engine);
        try
        {
            statements.Use(scope.Transaction);
            var state = await AppendAsync(statements, tenantId, entries, signNow, signer, cancellationToken);
            if (state.Size > state.Indexed) _unindexed[tenantId] = true;
            return state;
        }
        finally
        {
            if (kept is null) statements.Dispose();
        }
    }

    private async Task<HeadState> AppendAsync(ChainStatements statements, long tenantId, IReadOnlyList<PreparedEntry> entries, bool signNow,
        AuditSigningKey? createdSigner, CancellationToken cancellationToken)
    {
        var head = await statements.ReadHeadAsync(tenantId, cancellationToken);
        var tree = CompactMerkleTree.Restore(head.Sequence, head.Tree);
        var previous = head.Hash;
        var rows = new AuditRow[entries.Count];
        var hashes = new byte[entries.Count][];
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            rows[i] = new AuditRow(tenantId, head.Sequence + 1 + i, e.At, e.Action, e.Outcome, e.Type, e.PrincipalIndex, e.PatientIndex, e.Sealed);
            var hash = new byte[AuditChain.HashSize];
            AuditChain.EntryHash(previous, rows[i], hash);
            tree.Append(hash);
            hashes[i] = hash;
            previous = hash;
        }
        if (rows.Length > 0) await statements.InsertAsync(rows, hashes, cancellationToken);

        var size = head.Sequence + rows.Length;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var checkpointSequence = head.CheckpointSequence;
        var checkpointAt = head.CheckpointAt;
        var due = size > checkpointSequence
            && (signNow || size - checkpointSequence >= _options.CheckpointEvery || now - checkpointAt >= (long)_options.CheckpointInterval.TotalMilliseconds);
        if (due && head.CheckpointAt > 0 && head.Sequence > head.CheckpointSequence && !_tailChecked.ContainsKey(tenantId))
        {
            await CheckUnsignedTailAsync(statements, tenantId, head, cancellationToken);
        }
        if (due)
        {
            var signer = createdSigner ?? await _keys.AuditSignerAsync(tenantId, cancellationToken);
            var root = tree.Root();
            var signature = signer.Sign(AuditChain.CheckpointStatement(tenantId, size, root, previous, now));
            await statements.InsertCheckpointAsync(tenantId, size, now, root, previous, signer.Version, signature, cancellationToken);
            checkpointSequence = size;
            checkpointAt = now;
        }
        if (rows.Length > 0 || due)
        {
            await statements.UpdateHeadAsync(tenantId, size, previous, tree.Serialize(), checkpointSequence, checkpointAt, cancellationToken);
        }
        if (size > checkpointSequence) _unsigned[tenantId] = true;
        else _unsigned.TryRemove(tenantId, out _);
        return new HeadState(size, head.Indexed);
    }

    /// <summary>Tenants whose unsigned tail this process has checked before signing over it (once: after that, it wrote the tail).</summary>
    private readonly ConcurrentDictionary<long, bool> _tailChecked = new();

    /// <summary>
    /// Before this process first signs a checkpoint over entries it did not write (those after the head's newest checkpoint,
    /// left by an earlier start or another process), checks that none is later than that checkpoint plus one interval (and
    /// the clock tolerance of verification). A commit signs whenever the newest checkpoint is older than the interval, so an
    /// honest unsigned tail never is; a later one means checkpoints were deleted and the entries after them rewritten — an
    /// erased entry, the rest renumbered and re-chained — and signing would have made the rewrite pass verification (an
    /// outside probe, 2026-12-04). Refused instead: nothing is signed, every act waiting for the chain is refused, and
    /// `vauban audit verify` names the first late entry. All processes of a store must use one checkpoint interval.
    /// </summary>
    private async Task CheckUnsignedTailAsync(ChainStatements statements, long tenantId, Head head, CancellationToken cancellationToken)
    {
        var latest = await statements.LatestUnsignedAsync(tenantId, head.CheckpointSequence, head.Sequence, cancellationToken);
        var deadline = head.CheckpointAt + (long)_options.CheckpointInterval.TotalMilliseconds + AuditChain.ClockToleranceMilliseconds;
        if (latest > deadline)
        {
            throw new AuditIntegrityException($"the audit chain's unsigned entries {head.CheckpointSequence + 1} to {head.Sequence} hold one made after its last checkpoint "
                + "could have been signed (checkpoints deleted and entries rewritten?): nothing is signed over them; run 'vauban audit verify'.");
        }
        _tailChecked[tenantId] = true;
    }

    /// <summary>Builds the patient and principal lookups of every entry the last build has not covered, in one sorted batch,
    /// in a transaction of its own on <paramref name="connection"/>.</summary>
    private async Task IndexInTransactionAsync(DbConnection connection, ChainStatements statements, long tenantId, CancellationToken cancellationToken)
    {
        if (_database.Engine == StorageEngine.Postgres) await KeepPlannerInformedAsync(connection, tenantId, cancellationToken);
        await using var scope = await _database.BeginWriteOnAsync(connection, cancellationToken);
        statements.Use(scope.Transaction);
        var head = await statements.ReadHeadAsync(tenantId, cancellationToken);
        if (head.Indexed < head.Sequence) await statements.IndexAsync(tenantId, head.Indexed, head.Sequence, cancellationToken);
        await scope.CommitAsync(cancellationToken);
        _unindexed.TryRemove(tenantId, out _);
    }

    /// <summary>PostgreSQL plans the lookups' build and the searches' unindexed tail (a range of seq beyond its statistics,
    /// estimated at one row) on the primary key only while it knows roughly how many entries the tenant has. PostgreSQL
    /// scales its estimates with the table's size but keeps each tenant's share as last analyzed: a tenant analyzed while
    /// it was small (autoanalyze waits for a tenth of the whole table, and a crash loses its counters) looks as cheap
    /// through the (tenant, at) index, and the planner may take it and
    /// filter every entry of the tenant: measured, 2.1 s for a build of 16,384 entries at 2.2 million, and an appender
    /// copying 11,500 entries a second instead of 22,000. Before a build: when the planner's estimate of the tenant's
    /// entries is below half of what the chain holds, refresh the table's statistics (ANALYZE samples a fixed number of
    /// rows: ~2 s at 3.4 million entries, cold), at most once per quarter of growth. Outside the build's transaction,
    /// which holds the chain head's row lock. A failure (a lock not granted within a second, a role that may not ANALYZE)
    /// costs only the plans: the build goes on.</summary>
    private async Task KeepPlannerInformedAsync(DbConnection connection, long tenantId, CancellationToken cancellationToken)
    {
        try
        {
            long size;
            using (var head = connection.Command("SELECT seq FROM audit_heads WHERE tenant_id = @t").With("t", tenantId))
            {
                size = await head.ExecuteScalarAsync(cancellationToken) is long n ? n : 0;
            }
            if (size < MinimumForStatistics || _analyzedAt.TryGetValue(tenantId, out var analyzed) && size < analyzed + analyzed / 4) return;
            double estimate;
            using (var explain = connection.CreateCommand())
            {
                explain.CommandText = string.Create(CultureInfo.InvariantCulture, $"EXPLAIN (FORMAT JSON) SELECT 1 FROM audit_entries WHERE tenant_id = {tenantId}");
                using var plan = JsonDocument.Parse((string)(await explain.ExecuteScalarAsync(cancellationToken))!);
                estimate = plan.RootElement[0].GetProperty("Plan").GetProperty("Plan Rows").GetDouble();
            }
            if (estimate >= size / 2) return;
            _analyzedAt[tenantId] = size; // tried once per quarter of growth, whether it works or not
            // In a transaction of its own, bounded: ANALYZE waits for a lock a manual VACUUM, another server's ANALYZE or an
            // index build may hold, and the appender copies nothing meanwhile.
            await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
            {
                using var analyze = connection.CreateCommand();
                analyze.Transaction = transaction;
                analyze.CommandText = "SET LOCAL lock_timeout = '1s'; SET LOCAL statement_timeout = '2min'; ANALYZE audit_entries";
                analyze.CommandTimeout = 0;
                await analyze.ExecuteNonQueryAsync(cancellationToken);
                await transaction.CommitAsync(cancellationToken);
            }
            Interlocked.Increment(ref _statisticsRefreshed);
        }
        catch (Exception e) when (e is DbException or JsonException or InvalidOperationException or KeyNotFoundException or InvalidCastException
            or IndexOutOfRangeException or TimeoutException)
        {
            // Only the plans suffer: the build goes on, and the refresh is not tried again before the next quarter of growth.
        }
    }

    /// <summary>Below this many entries a tenant's chain is cheap to scan whatever the plan.</summary>
    private const long MinimumForStatistics = 50_000;

    private readonly ConcurrentDictionary<long, long> _analyzedAt = new();
    private long _statisticsRefreshed;

    /// <summary>How many times this trail refreshed PostgreSQL's statistics of the audit entries (tests).</summary>
    internal long StatisticsRefreshed => Interlocked.Read(ref _statisticsRefreshed);

    /// <summary>Builds the lookups of a bulk load's entries on the loader's connection, once it has written them all, so
    /// that the next server to start does not spend its first minutes doing it. False when it could not: the appender
    /// builds them at its next idle moment, and searches read the entries beyond the lookups meanwhile.</summary>
    internal async Task<bool> BuildLookupsAsync(DbConnection connection, long tenantId, CancellationToken cancellationToken)
    {
        try
        {
            using var statements = new ChainStatements(connection, _database.Engine);
            await IndexInTransactionAsync(connection, statements, tenantId, cancellationToken);
            return true;
        }
        catch (Exception e) when (e is DbException or AuditIntegrityException or IOException or TimeoutException)
        {
            _unindexed[tenantId] = true;
            return false;
        }
    }

    /// <summary>A new tenant's empty chain, created with it.</summary>
    internal static async Task CreateHeadAsync(WriteScope scope, long tenantId, CancellationToken cancellationToken)
    {
        using var command = scope.Command("INSERT INTO audit_heads (tenant_id, seq, hash, tree, checkpoint_seq, checkpoint_at) VALUES (@t, 0, @h, @tr, 0, 0)")
            .With("t", tenantId).With("h", AuditChain.Genesis).With("tr", Array.Empty<byte>());
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    internal sealed record Head(long Sequence, byte[] Hash, byte[] Tree, long CheckpointSequence, long CheckpointAt, long Indexed);

    /// <summary>The statements that extend a chain, on one connection; the appender keeps its set (prepared once) across
    /// transactions, a write transaction makes one for its single append.</summary>
    internal sealed class ChainStatements : IDisposable
    {
        private readonly bool _postgres;
        private readonly DbCommand _readHead;
        private readonly NpgsqlCommand? _insert;
        private readonly SqliteEntryInsert? _sqliteInsert;
        private readonly DbCommand _updateHead;
        private readonly DbCommand _checkpoint;
        private readonly DbCommand _index;
        private readonly DbCommand _saveJournal;
        private readonly DbCommand _forgetJournal;
        private readonly DbCommand _latestUnsigned;

        public ChainStatements(DbConnection connection, StorageEngine engine)
        {
            _postgres = engine == StorageEngine.Postgres;
            // On PostgreSQL the row lock orders this tenant's appenders; on SQLite the transaction already has the only write slot.
            _readHead = Make(connection, "SELECT seq, hash, tree, checkpoint_seq, checkpoint_at, indexed_seq FROM audit_heads WHERE tenant_id = @t"
                + (_postgres ? " FOR UPDATE" : ""), "t");
            // One statement per batch: columns as arrays, unnested server-side. SQLite's is prepared last, below: the only
            // native resource here, it is not left to a finalizer if anything before it throws.
            if (_postgres) _insert = MakePostgresInsert((NpgsqlConnection)connection);
            _updateHead = Make(connection, """
                UPDATE audit_heads SET seq = @n, hash = @h, tree = @tr, checkpoint_seq = @cs, checkpoint_at = @ca WHERE tenant_id = @t
                """, "n", "h", "tr", "cs", "ca", "t");
            _checkpoint = Make(connection, """
                INSERT INTO audit_checkpoints (tenant_id, size, at, root, head, key_version, signature) VALUES (@t, @n, @at, @r, @h, @v, @s)
                """, "t", "n", "at", "r", "h", "v", "s");
            // Sorted by bucket first: one batch of recent entries lands in one narrow region of the index.
            var select = $"""
                SELECT tenant_id, seq >> {AuditChain.IndexBucketBits}, 1, patient_ix, seq FROM audit_entries WHERE tenant_id = @t AND seq > @from AND seq <= @to AND patient_ix <> 0
                UNION ALL SELECT tenant_id, seq >> {AuditChain.IndexBucketBits}, 2, principal_ix, seq FROM audit_entries WHERE tenant_id = @t AND seq > @from AND seq <= @to
                ORDER BY 1, 2, 3, 4, 5
                """;
            _index = Make(connection, (_postgres
                ? $"INSERT INTO audit_index (tenant_id, bucket, kind, ix, seq) {select} ON CONFLICT DO NOTHING;"
                : $"INSERT OR IGNORE INTO audit_index (tenant_id, bucket, kind, ix, seq) {select};")
                + " UPDATE audit_heads SET indexed_seq = @to WHERE tenant_id = @t;", "t", "from", "to");
            _saveJournal = Make(connection, "INSERT INTO audit_journals (name, ingested) VALUES (@n, @o) ON CONFLICT (name) DO UPDATE SET ingested = excluded.ingested", "n", "o");
            _forgetJournal = Make(connection, "DELETE FROM audit_journals WHERE name = @n", "n");
            _latestUnsigned = Make(connection, "SELECT max(at) FROM audit_entries WHERE tenant_id = @t AND seq > @a AND seq <= @b", "t", "a", "b");
            if (!_postgres) _sqliteInsert = new SqliteEntryInsert((SqliteConnection)connection);
        }

        private static DbCommand Make(DbConnection connection, string sql, params string[] names)
        {
            var command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var name in names)
            {
                var parameter = command.CreateParameter();
                // Prefixed as in the SQL: the SQLite driver looks a bare name up three times (as is, ":", "@") on every execution.
                parameter.ParameterName = "@" + name;
                command.Parameters.Add(parameter);
            }
            return command;
        }

        private static NpgsqlCommand MakePostgresInsert(NpgsqlConnection connection)
        {
            var command = new NpgsqlCommand("""
                INSERT INTO audit_entries (tenant_id, seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash)
                SELECT @t, unnest(@s), unnest(@at), unnest(@a), unnest(@o), unnest(@ty), unnest(@pr), unnest(@pa), unnest(@se), unnest(@h)
                """, connection);
            command.Parameters.Add(new NpgsqlParameter<long>("t", 0L));
            command.Parameters.Add(new NpgsqlParameter<long[]>("s", []));
            command.Parameters.Add(new NpgsqlParameter<long[]>("at", []));
            command.Parameters.Add(new NpgsqlParameter<short[]>("a", []));
            command.Parameters.Add(new NpgsqlParameter<short[]>("o", []));
            command.Parameters.Add(new NpgsqlParameter<short[]>("ty", []));
            command.Parameters.Add(new NpgsqlParameter<long[]>("pr", []));
            command.Parameters.Add(new NpgsqlParameter<long[]>("pa", []));
            command.Parameters.Add(new NpgsqlParameter("se", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = Array.Empty<byte[]>() });
            command.Parameters.Add(new NpgsqlParameter("h", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = Array.Empty<byte[]>() });
            return command;
        }

        public void Use(DbTransaction transaction)
        {
            _readHead.Transaction = transaction;
            if (_insert is not null) _insert.Transaction = (NpgsqlTransaction)transaction; // SQLite: the connection's transaction
            _updateHead.Transaction = transaction;
            _checkpoint.Transaction = transaction;
            _index.Transaction = transaction;
            _saveJournal.Transaction = transaction;
            _forgetJournal.Transaction = transaction;
            _latestUnsigned.Transaction = transaction;
        }

        public async Task<Head> ReadHeadAsync(long tenantId, CancellationToken cancellationToken)
        {
            _readHead.Parameters[0].Value = tenantId;
            using var reader = await _readHead.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken)) throw new AuditIntegrityException($"tenant {tenantId} has no audit chain head");
            return new Head(reader.GetInt64(0), (byte[])reader.GetValue(1), (byte[])reader.GetValue(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5));
        }

        public async Task InsertAsync(AuditRow[] rows, byte[][] hashes, CancellationToken cancellationToken)
        {
            if (_insert is { } insert)
            {
                var p = insert.Parameters;
                ((NpgsqlParameter<long>)p[0]).TypedValue = rows[0].TenantId;
                ((NpgsqlParameter<long[]>)p[1]).TypedValue = rows.Select(r => r.Sequence).ToArray();
                ((NpgsqlParameter<long[]>)p[2]).TypedValue = rows.Select(r => r.At).ToArray();
                ((NpgsqlParameter<short[]>)p[3]).TypedValue = rows.Select(r => (short)r.Action).ToArray();
                ((NpgsqlParameter<short[]>)p[4]).TypedValue = rows.Select(r => (short)r.Outcome).ToArray();
                ((NpgsqlParameter<short[]>)p[5]).TypedValue = rows.Select(r => (short)r.Type).ToArray();
                ((NpgsqlParameter<long[]>)p[6]).TypedValue = rows.Select(r => r.PrincipalIndex).ToArray();
                ((NpgsqlParameter<long[]>)p[7]).TypedValue = rows.Select(r => r.PatientIndex).ToArray();
                p[8].Value = rows.Select(r => r.Sealed).ToArray();
                p[9].Value = hashes;
                await insert.ExecuteNonQueryAsync(cancellationToken);
                return;
            }
            // SQLite runs a statement synchronously whatever the call.
            cancellationToken.ThrowIfCancellationRequested();
            for (var i = 0; i < rows.Length; i++) _sqliteInsert!.Insert(rows[i], hashes[i]);
        }

        /// <summary>The latest time among entries <paramref name="after"/>+1 to <paramref name="to"/> (0 when none).</summary>
        public async Task<long> LatestUnsignedAsync(long tenantId, long after, long to, CancellationToken cancellationToken)
        {
            _latestUnsigned.Parameters[0].Value = tenantId;
            _latestUnsigned.Parameters[1].Value = after;
            _latestUnsigned.Parameters[2].Value = to;
            return await _latestUnsigned.ExecuteScalarAsync(cancellationToken) is { } value and not DBNull ? Convert.ToInt64(value, CultureInfo.InvariantCulture) : 0;
        }

        public Task UpdateHeadAsync(long tenantId, long size, byte[] hash, byte[] tree, long checkpointSequence, long checkpointAt, CancellationToken cancellationToken) =>
            RunAsync(_updateHead, cancellationToken, size, hash, tree, checkpointSequence, checkpointAt, tenantId);

        public Task InsertCheckpointAsync(long tenantId, long size, long at, byte[] root, byte[] head, int keyVersion, byte[] signature, CancellationToken cancellationToken) =>
            RunAsync(_checkpoint, cancellationToken, tenantId, size, at, root, head, keyVersion, signature);

        public Task IndexAsync(long tenantId, long from, long to, CancellationToken cancellationToken) =>
            RunAsync(_index, cancellationToken, tenantId, from, to);

        public Task SaveJournalAsync(string name, long copied, CancellationToken cancellationToken) =>
            RunAsync(_saveJournal, cancellationToken, name, copied);

        public Task ForgetJournalAsync(string name, CancellationToken cancellationToken) =>
            RunAsync(_forgetJournal, cancellationToken, name);

        /// <summary>How far a journal file is on the chain (0 when it has no row yet).</summary>
        public static async Task<long> JournalCopiedAsync(WriteScope scope, string name, CancellationToken cancellationToken)
        {
            using var command = scope.Command("SELECT ingested FROM audit_journals WHERE name = @n").With("n", name);
            return await command.ExecuteScalarAsync(cancellationToken) is { } value and not DBNull ? Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        }

        /// <summary>Binds <paramref name="values"/> to the command's parameters in the order they were declared, and runs it.</summary>
        private static Task<int> RunAsync(DbCommand command, CancellationToken cancellationToken, params object[] values)
        {
            for (var i = 0; i < values.Length; i++) command.Parameters[i].Value = values[i];
            return command.ExecuteNonQueryAsync(cancellationToken);
        }

        public void Dispose()
        {
            _readHead.Dispose();
            _insert?.Dispose();
            _sqliteInsert?.Dispose();
            _updateHead.Dispose();
            _checkpoint.Dispose();
            _index.Dispose();
            _saveJournal.Dispose();
            _forgetJournal.Dispose();
            _latestUnsigned.Dispose();
        }
    }

    /// <summary>SQLite's entry insert, prepared once on the connection and bound by position through SQLitePCL. Through
    /// Microsoft.Data.Sqlite every row cost a lookup of each of its ten parameters by name, a data reader and a boxed value
    /// per column: ~3 µs of machine an entry (sustained append, bench/README). It runs in whatever transaction the
    /// connection has open, like the commands beside it.</summary>
    internal sealed class SqliteEntryInsert : IDisposable
    {
        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _statement;

        public SqliteEntryInsert(SqliteConnection connection)
        {
            _db = connection.Handle ?? throw new InvalidOperationException("The appender's SQLite connection is not open.");
            var rc = raw.sqlite3_prepare_v2(_db, """
                INSERT INTO audit_entries (tenant_id, seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                """, out _statement);
            SqliteException.ThrowExceptionForRC(rc, _db);
        }

        public void Insert(in AuditRow row, byte[] hash)
        {
            Check(raw.sqlite3_bind_int64(_statement, 1, row.TenantId));
            Check(raw.sqlite3_bind_int64(_statement, 2, row.Sequence));
            Check(raw.sqlite3_bind_int64(_statement, 3, row.At));
            Check(raw.sqlite3_bind_int(_statement, 4, row.Action));
            Check(raw.sqlite3_bind_int(_statement, 5, row.Outcome));
            Check(raw.sqlite3_bind_int(_statement, 6, row.Type));
            Check(raw.sqlite3_bind_int64(_statement, 7, row.PrincipalIndex));
            Check(raw.sqlite3_bind_int64(_statement, 8, row.PatientIndex));
            Check(raw.sqlite3_bind_blob(_statement, 9, row.Sealed));
            Check(raw.sqlite3_bind_blob(_statement, 10, hash));
            // No busy wait as SqliteCommand's: the appender's transaction already holds SQLite's write lock (BEGIN IMMEDIATE).
            var rc = raw.sqlite3_step(_statement);
            raw.sqlite3_reset(_statement); // also carries a failed step's code and message onto the connection
            if (rc == raw.SQLITE_DONE) return;
            SqliteException.ThrowExceptionForRC(rc, _db);
            throw new SqliteException($"the audit entry insert returned {rc}", rc); // SQLITE_ROW: never from an INSERT
        }

        private void Check(int rc)
        {
            if (rc != raw.SQLITE_OK) SqliteException.ThrowExceptionForRC(rc, _db);
        }

        public void Dispose() => _statement.Dispose();
    }

    // ---- journals left by processes that stopped ----

    /// <summary>Puts on the chain what this store's journals that no live process holds still have beyond their copied offset
    /// (a process that crashed, or closed while the chain could not be written), then deletes them. Runs when a store opens,
    /// on this process's journal folder and on every other folder a process of this store recorded (a restart with another
    /// VAUBAN_AUDIT_JOURNAL, or from another working directory, still finds what the last one left). Journals of other stores
    /// sharing a folder are left to them.
    /// A journal whose end could not be read (torn by a power loss, or damaged) beyond what the chain already holds is
    /// handed to <paramref name="reportDamage"/> before the file is deleted: if reporting fails, the file stays for the next
    /// open to report.</summary>
    internal async Task RecoverJournalsAsync(Func<DamagedJournal, CancellationToken, Task> reportDamage, CancellationToken cancellationToken)
    {
        _storeId = await _database.ReadOneAsync("SELECT value FROM store_settings WHERE name = 'store_id'", r => r.GetString(0), cancellationToken)
            ?? throw new InvalidOperationException("The store has no identity (store_settings.store_id).");
        var recorded = await JournalFoldersAsync(cancellationToken);
        var current = _journalDirectory = Path.GetFullPath(_options.JournalDirectory ?? KeptEarlierDefault(recorded) ?? _database.DefaultAuditJournalDirectory);
        foreach (var folder in recorded.Where(f => f != current))
        {
            if (!Directory.Exists(folder))
            {
                await SaveJournalFolderAsync(folder, keep: false, cancellationToken);
                continue;
            }
            try
            {
                await RecoverJournalsAsync(folder, unnamed: false, reportDamage, cancellationToken);
            }
            catch (UnauthorizedAccessException)
            {
                // Another account's folder: its processes copy what they leave there when they open the store.
            }
        }
        await RecoverJournalsAsync(current, unnamed: true, reportDamage, cancellationToken);
        if (!recorded.Contains(current)) await SaveJournalFolderAsync(current, keep: true, cancellationToken);
    }

    private const string JournalFolderSetting = "journal_folder:";

    /// <summary>The folder an earlier Vauban named this store's journal folder by default (PostgreSQL's, named from the store's
    /// description until the name took its identity), when this store recorded it and it is still there: kept, so that its
    /// processes go on journaling where they did and the folder an operator watches and backs up stays the same. A store
    /// that never used it takes today's name. Were it left, its journals would still be copied from it (it is recorded).</summary>
    private string? KeptEarlierDefault(List<string> recorded) =>
        _database.EarlierDefaultAuditJournalDirectory is { } earlier && Path.GetFullPath(earlier) is var full && recorded.Contains(full) && Directory.Exists(full) ? full : null;

    /// <summary>The journal folders processes of this store recorded when they opened it.</summary>
    private async Task<List<string>> JournalFoldersAsync(CancellationToken cancellationToken)
    {
        using var command = _database.NewCommand();
        command.CommandText = "SELECT value FROM store_settings WHERE substr(name, 1, @l) = @p ORDER BY name";
        command.With("l", JournalFolderSetting.Length).With("p", JournalFolderSetting);
        return await _database.QueryAsync(command, async (reader, ct) =>
        {
            var folders = new List<string>();
            while (await reader.ReadAsync(ct)) folders.Add(reader.GetString(0));
            return folders;
        }, cancellationToken);
    }

    /// <summary>Records a journal folder (<paramref name="keep"/>), or forgets one that no longer exists.</summary>
    private async Task SaveJournalFolderAsync(string folder, bool keep, CancellationToken cancellationToken)
    {
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using var command = keep
            ? scope.Command("INSERT INTO store_settings (name, value) VALUES (@n, @v) ON CONFLICT (name) DO NOTHING").With("n", JournalFolderSetting + folder).With("v", folder)
            : scope.Command("DELETE FROM store_settings WHERE name = @n").With("n", JournalFolderSetting + folder);
        await command.ExecuteNonQueryAsync(cancellationToken);
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>Copies and deletes the orphaned journals of this store in <paramref name="directory"/>; <paramref name="unnamed"/>:
    /// also those named before journals carried the store's id.</summary>
    private async Task RecoverJournalsAsync(string directory, bool unnamed, Func<DamagedJournal, CancellationToken, Task> reportDamage, CancellationToken cancellationToken)
    {
        foreach (var (name, handle) in AuditJournal.Orphans(directory, _storeId!, unnamed))
        {
            using (handle)
            {
                var data = new byte[RandomAccess.GetLength(handle)];
                var read = 0;
                while (read < data.Length)
                {
                    var n = RandomAccess.Read(handle, data.AsSpan(read), read);
                    if (n == 0) break;
                    read += n;
                }
                read = AuditJournal.Written(data.AsSpan(0, read)); // a live file is allocated ahead of its records
                var records = AuditJournal.Parse(data.AsSpan(0, read));
                var readable = records.Count == 0 ? 0 : records[^1].End;
                var next = 0;
                long copied;
                while (true)
                {
                    await using var scope = await _database.BeginWriteAsync(cancellationToken);
                    copied = await ChainStatements.JournalCopiedAsync(scope, name, cancellationToken);
                    while (next < records.Count && records[next].End <= copied) next++;
                    if (next == records.Count) break;
                    var chunk = new List<JournalRecord>();
                    var entries = 0;
                    while (next < records.Count && (chunk.Count == 0 || entries + records[next].Entries.Count <= _options.MaxBatch))
                    {
                        chunk.Add(records[next]);
                        entries += records[next].Entries.Count;
                        next++;
                    }
                    using var statements = new ChainStatements(scope.Connection, _database.Engine);
                    // Chain heads locked in ascending tenant id, as every transaction locks several (WriteScope.ChainsInLockOrder).
                    foreach (var tenant in chunk.GroupBy(r => r.TenantId).OrderBy(g => g.Key))
                    {
                        await AppendInScopeAsync(scope, tenant.Key, tenant.SelectMany(r => r.Entries).ToList(), cancellationToken, kept: statements);
                    }
                    await statements.SaveJournalAsync(name, chunk[^1].End, cancellationToken);
                    await scope.CommitAsync(cancellationToken);
                }
                // What the chain holds may reach past a torn end (the journal's fsync and the chain's commit are independent).
                var intact = Math.Max(readable, copied);
                if (intact < read) await reportDamage(new DamagedJournal(name, readable, read - intact), cancellationToken);
                File.Delete(Path.Combine(directory, name));
            }
            await using (var scope = await _database.BeginWriteAsync(cancellationToken))
            {
                using var statements = new ChainStatements(scope.Connection, _database.Engine);
                statements.Use(scope.Transaction);
                await statements.ForgetJournalAsync(name, cancellationToken);
                await scope.CommitAsync(cancellationToken);
            }
        }
    }

    // ---- group commit ----

    private sealed class PendingGroup(long tenantId, List<PreparedEntry> entries)
    {
        public long TenantId { get; } = tenantId;
        public List<PreparedEntry> Entries { get; } = entries;
        /// <summary>Completed once the entries are on the chain; only for an act that waits for that (most do not).</summary>
        public TaskCompletionSource? Done { get; private set; }

        public void Await() => Done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The journal file holding these entries, and the offset just past them; null when not journaled.</summary>
        public string? Journal { get; set; }
        public long JournalEnd { get; set; }

        /// <summary>The appender copies this group without waiting for IngestEvery: someone waits for it, or MaxBatch entries do.</summary>
        public bool Urgent { get; set; }

    }

    /// <summary>The appender's own connection and its prepared statements.</summary>
    private sealed class AppenderSession(DbConnection connection, ChainStatements statements) : IAsyncDisposable
    {
        public DbConnection Connection { get; } = connection;
        public ChainStatements Statements { get; } = statements;

        public async ValueTask DisposeAsync()
        {
            Statements.Dispose();
            await Connection.DisposeAsync();
        }
    }

    /// <summary>The appender runs on a thread of its own: SQLite's calls are synchronous, and on the thread pool of a
    /// two-core server its transactions held one of the few pool threads the waiting requests need to come back and
    /// queue the next entries (measured: batches of ~10 entries instead of the ~64 in flight). A second thread makes its
    /// commits durable (an fsync takes milliseconds the appender does not wait for).</summary>
    private Task StartAppender()
    {
        var appended = RunOnThread("vauban-audit-appender", RunAppender);
        var flushed = RunOnThread("vauban-audit-flusher", RunFlusher);
        return Task.WhenAll(appended, flushed);
    }

    private static Task RunOnThread(string name, Action body)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                body();
                done.SetResult();
            }
#pragma warning disable CA1031 // the thread's failure is handed to whoever awaits the appender
            catch (Exception e)
#pragma warning restore CA1031
            {
                done.SetException(e);
            }
        })
        { IsBackground = true, Name = name };
        thread.Start();
        return done.Task;
    }

    /// <summary>How long the appender waits for entries before it builds lookups and signs what is waiting.</summary>
    private static readonly TimeSpan IdleTick = TimeSpan.FromSeconds(1);

    private bool _checkProgress;  // appender: a new connection since the last group commit; compare the journals' progress rows with _copied
    private long _committed;      // lazy commits so far (appender)
    private long _flushedUpTo;    // the value of _committed the last flush covered (flusher)
    private readonly SemaphoreSlim _flushNow = new(0);
    private volatile bool _stopFlusher;

    /// <summary>How long the appender waits before it tries again to copy entries the chain could not take.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(200);

    private void RunAppender()
    {
        var batch = new List<PendingGroup>();
        var reader = _queue.Reader;
        var lastIdleWork = Environment.TickCount64;
        var lastCopy = 0L;
        var failures = 0;
        var stopped = false;
        try
        {
            while (true)
            {
                if (batch.Count == 0)
                {
                    if (!reader.TryPeek(out _))
                    {
                        if (reader.Completion.IsCompleted) break;
                        Interlocked.Exchange(ref _sleeping, 1);
                        if (!reader.TryPeek(out _) && !reader.Completion.IsCompleted && !_wake.WaitOne(IdleTick))
                        {
                            Interlocked.Exchange(ref _sleeping, 0);
                            Idle();
                            lastIdleWork = Environment.TickCount64;
                            continue;
                        }
                        Interlocked.Exchange(ref _sleeping, 0);
                        continue;
                    }
                    WaitForNextCopy(lastCopy);
                }
                else
                {
                    // Journaled entries the chain could not take: they stay in the journal and are tried again. A closing
                    // trail gives up after a few tries; the next store to open copies them from the journal.
                    if (Volatile.Read(ref _disposed) != 0 && failures >= 3) break;
                    Thread.Sleep(RetryDelay);
                }
                var count = 0;
                foreach (var waiting in batch) count += waiting.Entries.Count;
                // After a failure everything queued joins the batch (acts waiting behind it are answered, not left hanging).
                while ((count < _options.MaxBatch || failures > 0) && reader.TryRead(out var group))
                {
                    batch.Add(group);
                    count += group.Entries.Count;
                    if (group.Urgent) Interlocked.Decrement(ref _urgent);
                    if (group.Journal is not null) Interlocked.Add(ref _backlog, -group.Entries.Count);
                }
                lastCopy = Environment.TickCount64;
                try
                {
                    var toIndex = CommitBatchAsync(batch, retry: failures > 0).GetAwaiter().GetResult();
                    if (_options.DurableEvery == TimeSpan.Zero) FlushToDiskAsync().GetAwaiter().GetResult();
                    _copyFailure = null;
                    failures = 0;
                    foreach (var group in batch) group.Done?.TrySetResult();
                    batch.Clear();
                    ForgetRetiredJournals();
                    foreach (var tenantId in toIndex) RunIndexAsync(tenantId).GetAwaiter().GetResult();
                }
                catch (Exception e) when (e is DbException or InvalidOperationException or AuditIntegrityException or IOException or TimeoutException)
                {
                    var failure = new AuditUnavailableException(NotWritten, e);
                    failures++;
                    foreach (var group in batch)
                    {
                        group.Done?.TrySetException(failure);
                    }
                    // Entries not journaled are lost with the acts that waited for them (they returned nothing); journaled
                    // ones are kept, and until they are on the chain every act is refused.
                    batch.RemoveAll(g => g.Journal is null);
                    if (batch.Count > 0) _copyFailure = failure;
                }
                if (Environment.TickCount64 - lastIdleWork >= (long)_options.CheckpointInterval.TotalMilliseconds)
                {
                    // A continuous stream of entries never lets the appender idle: sign by time all the same.
                    SignPendingAsync().GetAwaiter().GetResult();
                    lastIdleWork = Environment.TickCount64;
                }
            }
            if (batch.Count > 0 || reader.TryPeek(out _))
            {
                // Closing while the chain cannot be written: what is journaled stays for the next store; whoever still waits is answered.
                var closed = new AuditUnavailableException(NotWritten, (Exception?)_copyFailure ?? new IOException("the chain could not be written"));
                foreach (var group in batch) group.Done?.TrySetException(closed);
                while (reader.TryRead(out var group)) group.Done?.TrySetException(closed);
            }
            SignPendingAsync(now: true).GetAwaiter().GetResult();
            CloseJournal(complete: batch.Count == 0);
            stopped = true;
        }
        finally
        {
            // An appender that died of something unforeseen leaves the door closed: nothing is journaled that nobody copies.
            if (!stopped) _copyFailure ??= new AuditUnavailableException(NotWritten, new InvalidOperationException("the audit appender stopped"));
            // Every commit of the appender is behind this point: the flusher makes them durable once more and stops.
            _stopFlusher = true;
            _flushNow.Release();
            DropSessionAsync().GetAwaiter().GetResult();
        }
    }

    /// <summary>With a journal, batches the entries: waits until IngestEvery after the last copy, unless someone waits for
    /// the entries (an act past the backlog, a reader of the log), MaxBatch of them wait, or the trail closes.</summary>
    private void WaitForNextCopy(long lastCopy)
    {
        if (!Journaling) return;
        var wait = (long)_options.IngestEvery.TotalMilliseconds - (Environment.TickCount64 - lastCopy);
        if (wait <= 0) return;
        Interlocked.Exchange(ref _sleeping, 2);
        // Closing: no wait (a wake-up from DisposeAsync may have merged with an act's into the event's one signal).
        if (Volatile.Read(ref _urgent) == 0 && Volatile.Read(ref _disposed) == 0 && !_queue.Reader.Completion.IsCompleted) _wake.WaitOne(TimeSpan.FromMilliseconds(wait));
        Interlocked.Exchange(ref _sleeping, 0);
    }

    /// <summary>Deletes the rotated journal files whose entries are all on the chain, once the database has them on disk.</summary>
    private void ForgetRetiredJournals()
    {
        // Not before a group commit has checked the progress rows after a lost connection (CopyAgainWhatTheDatabaseLostAsync).
        while (!_checkProgress && _retired.TryPeek(out var retired) && _copied.TryGetValue(retired.Name, out var copied) && copied >= retired.End)
        {
            if (!FlushToDiskAsync().GetAwaiter().GetResult() || !ForgetJournalAsync(retired.Name).GetAwaiter().GetResult()) return;
            _retired.TryDequeue(out _);
            _copied.Remove(retired.Name);
            retired.File.Dispose(); // deleted: its lock can go
        }
    }

    /// <summary>At the end: when every journaled entry is on the chain and on disk, deletes the journal; otherwise leaves it for
    /// the next store that opens.</summary>
    private void CloseJournal(bool complete)
    {
        AuditJournal? journal;
        lock (_journalLock)
        {
            journal = _journal;
            _journal = null;
        }
        if (journal is null) return;
        try
        {
            journal.FlushToDisk();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // Written to the page cache all the same: only a power loss now could lose it.
        }
        journal.Dispose();
        // Not after a lost connection that no group commit has checked since: the database may have lost copies (see
        // CopyAgainWhatTheDatabaseLostAsync); the next store to open copies from the progress rows.
        if (complete && !_checkProgress)
        {
            ForgetRetiredJournals();
            if (FlushToDiskAsync().GetAwaiter().GetResult()) ForgetJournalAsync(journal.Name).GetAwaiter().GetResult();
        }
        // Files not deleted stay for the next store that opens; their locks go with this process.
        while (_retired.TryDequeue(out var retired)) retired.File.Dispose();
    }

    /// <summary>Deletes a journal file whose entries are all on the chain, and then its progress row.</summary>
    private async Task<bool> ForgetJournalAsync(string name)
    {
        try
        {
            File.Delete(Path.Combine(JournalDirectory, name));
            var session = await SessionAsync();
            await using var scope = await _database.BeginWriteOnAsync(session.Connection, CancellationToken.None);
            session.Statements.Use(scope.Transaction);
            await session.Statements.ForgetJournalAsync(name, CancellationToken.None);
            await scope.CommitAsync(CancellationToken.None);
            return true;
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or IOException or TimeoutException or UnauthorizedAccessException)
        {
            // A row left behind names a file that no longer exists: harmless.
            await DropSessionAsync();
            return false;
        }
    }

    /// <summary>Makes the appender's commits durable: at most DurableEvery after each one, without holding up the appender.</summary>
    private void RunFlusher()
    {
        while (true)
        {
            _flushNow.Wait(_options.DurableEvery == TimeSpan.Zero ? IdleTick : _options.DurableEvery);
            var stopping = _stopFlusher; // read first: once set, no commit comes after this flush
            var journaled = Interlocked.Read(ref _journaled);
            if (journaled != _journalFlushedUpTo && FlushJournal()) _journalFlushedUpTo = journaled;
            var committed = Interlocked.Read(ref _committed);
            if (committed != _flushedUpTo && FlushToDiskAsync().GetAwaiter().GetResult()) _flushedUpTo = committed;
            // One last attempt only: a store that is gone must not hold up shutdown.
            if (stopping) return;
        }
    }

    /// <summary>Brings the journal to the disk. False when it could not (retried at the next tick).</summary>
    private bool FlushJournal()
    {
        try
        {
            _journal?.FlushToDisk();
            return true;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return false;
        }
    }

    private async Task<AppenderSession> SessionAsync()
    {
        if (_session is { } open) return open;
        var connection = await _database.OpenLazyWriterAsync(CancellationToken.None);
        try
        {
            // On SQLite the entry insert is prepared here: a chain that cannot be written fails now, and the connection
            // must not outlive the failure (the appender retries every RetryDelay).
            _session = new AppenderSession(connection, new ChainStatements(connection, _database.Engine));
            // The last connection was lost: the database may have lost its last lazy commits with it (PostgreSQL restarted).
            _checkProgress = _copied.Count > 0;
            return _session;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>After a failure the appender's connection may be broken: the next batch opens a new one.</summary>
    private async Task DropSessionAsync()
    {
        if (_session is not { } session) return;
        _session = null;
        try
        {
            await session.DisposeAsync();
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or IOException)
        {
            // Already broken: nothing to close.
        }
    }

    /// <summary>Writes one group commit; returns the tenants whose lookups should now be built.</summary>
    private async Task<List<long>> CommitBatchAsync(List<PendingGroup> batch, bool retry)
    {
        for (var attempt = 1; ; attempt++)
        {
            var committing = false;
            try
            {
                return await CommitBatchOnceAsync(batch, retry, () => committing = true);
            }
            catch (Exception e) when (e is DbException or InvalidOperationException or AuditIntegrityException or IOException or TimeoutException)
            {
                await DropSessionAsync();
                // The appender's connection had died before this batch used it (PostgreSQL restarted while it was idle): nothing
                // of the transaction was committed, so it is written once more at once on a new connection, rather than refusing
                // the acts waiting for it. Never once COMMIT was sent: its outcome is unknown (the next batch's retry checks
                // the journals' progress rows for it).
                if (attempt == 1 && !committing && _database.DropConnectionsIfLost(e)) continue;
                throw;
            }
        }
    }

    private async Task<List<long>> CommitBatchOnceAsync(List<PendingGroup> batch, bool retry, Action committing)
    {
        var toIndex = new List<long>();
        if (batch.TrueForAll(g => g.Entries.Count == 0)) return toIndex; // only readers catching up
        var session = await SessionAsync();
        await using (var scope = await _database.BeginWriteOnAsync(session.Connection, CancellationToken.None))
        {
            var lost = _checkProgress ? await CopyAgainWhatTheDatabaseLostAsync(scope, session.Statements) : new Dictionary<long, List<PreparedEntry>>();
            IEnumerable<PendingGroup> groups = batch.Where(g => g.Entries.Count > 0);
            if (retry)
            {
                // A commit that failed may have been applied all the same (the connection lost during COMMIT): what the
                // journal's progress row already covers is on the chain.
                var copied = new Dictionary<string, long>(StringComparer.Ordinal);
                foreach (var name in batch.Select(g => g.Journal).OfType<string>().Distinct())
                {
                    copied[name] = await ChainStatements.JournalCopiedAsync(scope, name, CancellationToken.None);
                }
                groups = groups.Where(g => g.Journal is null || g.JournalEnd > copied[g.Journal]).ToList();
            }
            // Each chain head locked once, in ascending tenant id (WriteScope.ChainsInLockOrder): what the database lost first,
            // then this batch, each in its journal order.
            var byTenant = groups.GroupBy(g => g.TenantId).ToDictionary(t => t.Key, t => t.ToList());
            foreach (var tenantId in byTenant.Keys.Union(lost.Keys).Order())
            {
                var now = byTenant.GetValueOrDefault(tenantId) ?? [];
                IReadOnlyList<PreparedEntry> entries = !lost.TryGetValue(tenantId, out var again) && now.Count == 1
                    ? now[0].Entries
                    : [.. again ?? [], .. now.SelectMany(g => g.Entries)];
                var state = await AppendInScopeAsync(scope, tenantId, entries, CancellationToken.None, kept: session.Statements);
                if (state.Size - state.Indexed >= _options.IndexEvery) toIndex.Add(tenantId);
            }
            // How far each journal is on the chain, in the same transaction: a journal found after a crash is copied from there.
            var progress = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var group in batch)
            {
                if (group.Journal is { } name) progress[name] = group.JournalEnd;
            }
            foreach (var (name, end) in progress) await session.Statements.SaveJournalAsync(name, end, CancellationToken.None);
            committing();
            await scope.CommitAsync(CancellationToken.None);
            _checkProgress = false;
            foreach (var (name, end) in progress) _copied[name] = end;
        }
        Interlocked.Increment(ref _committed);
        return toIndex;
    }

    /// <summary>Reads again, for the caller to put on the chain in <paramref name="scope"/>, what this process copied from its
    /// journals in commits the database no longer has (and records their progress in <paramref name="scope"/>). The appender commits lazily (PostgreSQL: synchronous_commit=off), and the flusher makes those
    /// commits durable up to DurableEvery later: a PostgreSQL server that crashes or stops in immediate mode meanwhile loses
    /// them on restart — entries of acts already answered, whose journal this live process would then delete as copied. The
    /// journal still holds them: each file's progress row says where the database's copy stops. (A Vauban process that dies
    /// leaves its journal to the next store that opens, which copies from that row too; SQLite loses lazy commits only with
    /// the machine, and the process with them.)</summary>
    private async Task<Dictionary<long, List<PreparedEntry>>> CopyAgainWhatTheDatabaseLostAsync(WriteScope scope, ChainStatements statements)
    {
        // Returned by tenant, each in journal order (progress rows hold record ends, so a range starts with a record), for the
        // caller to append with its batch, every chain head locked once and in ascending tenant id.
        var lost = new Dictionary<long, List<PreparedEntry>>();
        foreach (var (name, copied) in _copied.ToList())
        {
            var stored = await ChainStatements.JournalCopiedAsync(scope, name, CancellationToken.None);
            if (stored >= copied || ReadJournal(name, stored, copied) is not { } data) continue;
            foreach (var record in AuditJournal.Parse(data))
            {
                if (!lost.TryGetValue(record.TenantId, out var entries)) lost[record.TenantId] = entries = [];
                entries.AddRange(record.Entries);
            }
            statements.Use(scope.Transaction);
            await statements.SaveJournalAsync(name, copied, CancellationToken.None);
        }
        return lost;
    }

    /// <summary>Bytes <paramref name="from"/> to <paramref name="to"/> of this process's journal file <paramref name="name"/>, the
    /// current one or a retired one (kept open until deleted); null when it is neither.</summary>
    private byte[]? ReadJournal(string name, long from, long to)
    {
        lock (_journalLock)
        {
            if (_journal is { } current && current.Name == name) return current.Read(from, to);
        }
        // Retired files are disposed by this thread only, once deleted.
        foreach (var retired in _retired)
        {
            if (retired.Name == name) return AuditJournal.ReadRange(retired.File.SafeFileHandle, from, to);
        }
        return null;
    }

    private async Task RunIndexAsync(long tenantId)
    {
        try
        {
            var session = await SessionAsync();
            await IndexInTransactionAsync(session.Connection, session.Statements, tenantId, CancellationToken.None);
            Interlocked.Increment(ref _committed);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or AuditIntegrityException or IOException or TimeoutException)
        {
            // Searches read the entries beyond the lookups directly; the next idle moment tries again.
            await DropSessionAsync();
        }
    }

    /// <summary>While no entries come: build the lookups that wait, and sign a checkpoint for tenants whose entries have waited.</summary>
    private void Idle()
    {
        foreach (var tenantId in _unindexed.Keys) RunIndexAsync(tenantId).GetAwaiter().GetResult();
        SignPendingAsync().GetAwaiter().GetResult();
    }

    /// <summary>Makes the lazily committed entries durable. False when it could not (retried at the next tick).</summary>
    private async Task<bool> FlushToDiskAsync()
    {
        try
        {
            await _database.FlushAsync(CancellationToken.None);
            return true;
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or IOException or TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Raised with an establishment's id when this process leaves its entries unsigned because it holds the master key
    /// another process has rotated since (the server logs it): a process with the store's key signs over them at its next commit.</summary>
    public event Action<long>? LeftUnsigned;

    /// <summary>Signs a checkpoint for every tenant whose last entries have waited the checkpoint interval.</summary>
    private async Task SignPendingAsync(bool now = false)
    {
        foreach (var tenantId in _unsigned.Keys)
        {
            try
            {
                var session = await SessionAsync();
                await using var scope = await _database.BeginWriteOnAsync(session.Connection, CancellationToken.None);
                await AppendInScopeAsync(scope, tenantId, [], CancellationToken.None, signNow: now, kept: session.Statements);
                await scope.CommitAsync(CancellationToken.None);
                Interlocked.Increment(ref _committed);
            }
            catch (Exception e) when (e is DbException or InvalidOperationException or AuditIntegrityException or IOException or TimeoutException)
            {
                // Tried again at the next idle interval; verification reports entries past the last checkpoint.
                await DropSessionAsync();
            }
            catch (VaubanConfigurationException e) when (e.MasterKeyRotated)
            {
                // This process holds the master key another has rotated since: it cannot open the signing key, and the next commit
                // of a process with the store's key signs over its entries. Said (the establishment only), not thrown: a key wrap
                // that does not open under the store's own key is not this, and is thrown.
                await DropSessionAsync();
                LeftUnsigned?.Invoke(tenantId);
            }
        }
    }

    /// <summary>Waits for queued entries, signs the last checkpoints, makes everything durable, and stops the appender.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_journalLock) _queue.Writer.TryComplete(); // no act is between its journal write and the queue
        _wake.Set();
        if (_appender.IsValueCreated) await _appender.Value;
        else if (!_unsigned.IsEmpty) await SignPendingAsync(now: true);
        await DropSessionAsync();
        _wake.Dispose();
        _flushNow.Dispose();
    }
}
