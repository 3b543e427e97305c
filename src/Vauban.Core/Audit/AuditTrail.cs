// The audit append in the one door. Every act on records — and sign-ins, break-the-glass, refusals,
// administration — becomes entries on the tenant's hash chain *before* any data leaves; if the entries
// cannot be written the caller gets an exception and nothing is returned (fail closed).
//
// Two paths, one chain:
// - acts that write records append inside their own transaction, just before it commits, so the write
//   and its audit entries are atomic (WriteScope.Audit);
// - every other act is queued to one appender task that writes whatever is waiting in one transaction
//   (group commit) and releases the waiting requests when it has committed.
// Both read the chain's head row inside their transaction (locked on PostgreSQL, the single writer on
// SQLite), so two processes on one store extend one chain rather than forking it.
using System.Collections.Concurrent;
using System.Data.Common;
using System.Text.Json;
using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;
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

    public void Validate()
    {
        if (CheckpointEvery < 1) throw new VaubanConfigurationException("The audit checkpoint interval must be at least one entry.");
        if (CheckpointInterval < TimeSpan.FromMilliseconds(100)) throw new VaubanConfigurationException("The audit checkpoint interval must be at least 100 ms.");
        if (MaxBatch < 1) throw new VaubanConfigurationException("The audit batch size must be at least one entry.");
        if (DurableEvery < TimeSpan.Zero || DurableEvery > TimeSpan.FromSeconds(1)) throw new VaubanConfigurationException("The audit durability interval must be between 0 and 1 second.");
    }
}

/// <summary>An entry sealed and indexed, waiting for its place on the chain.</summary>
internal readonly record struct PreparedEntry(long At, int Action, int Outcome, int Type, long PrincipalIndex, long PatientIndex, byte[] Sealed);

/// <summary>The entries a write transaction appends when it commits.</summary>
internal sealed class PendingAudit(AuditTrail trail, long tenantId)
{
    public long TenantId { get; } = tenantId;
    public List<PreparedEntry> Entries { get; } = [];

    public async Task FlushAsync(WriteScope scope, CancellationToken cancellationToken)
    {
        if (Entries.Count == 0) return;
        try
        {
            await trail.AppendInScopeAsync(scope, TenantId, Entries, cancellationToken);
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
    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly TimeProvider _time;
    private readonly AuditOptions _options;
    private readonly Channel<PendingGroup> _queue = Channel.CreateUnbounded<PendingGroup>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<long, bool> _unsigned = new();
    private readonly Lazy<Task> _appender;
    private int _disposed;

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
    /// (refusals) are also kept if the transaction rolls back.</summary>
    internal async Task AppendAsync(WriteScope scope, AccessContext context, AuditAction action, AuditOutcome outcome, string? type,
        IReadOnlyList<AuditedRecord> records, CancellationToken cancellationToken, string? note = null)
    {
        if (SkipForBenchmark) return;
        var entries = await PrepareAsync(context, action, outcome, type, records, note, cancellationToken);
        scope.Audit ??= new PendingAudit(this, context.Tenant.Id);
        if (scope.Audit.TenantId != context.Tenant.Id) throw new InvalidOperationException("One transaction writes one tenant's records.");
        scope.Audit.Entries.AddRange(entries);
        if (outcome != AuditOutcome.Success)
        {
            scope.AfterRollback.Add(() => EnqueueAsync(new PendingGroup(context.Tenant.Id, entries)));
        }
    }

    private async Task EnqueueAsync(PendingGroup group)
    {
        _ = _appender.Value;
        if (!_queue.Writer.TryWrite(group)) throw new AuditUnavailableException("The audit log is closed.");
        await group.Done.Task.ConfigureAwait(false);
    }

    private async ValueTask<List<PreparedEntry>> PrepareAsync(AccessContext context, AuditAction action, AuditOutcome outcome, string? type,
        IReadOnlyList<AuditedRecord> records, string? note, CancellationToken cancellationToken)
    {
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var principal = context.Principal;
        var principalIndex = keys.Index.Hash(AuditChain.PrincipalIndexCode, 'x', principal.Id);
        var typeCode = type is not null && TypeCodes.TryGet(type, out var code) ? code : 0;
        var template = new AuditDetail
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
        };
        var entries = new List<PreparedEntry>(1);
        if (records.Count == 0)
        {
            entries.Add(Seal(keys, at, action, outcome, typeCode, principalIndex, template));
            return entries;
        }
        if (records.Count == 1)
        {
            var only = records[0];
            entries.Add(Seal(keys, at, action, outcome, typeCode, principalIndex, template with { Patient = only.Patient, Records = [Reference(only)] }));
            return entries;
        }
        foreach (var group in records.GroupBy(r => r.Patient, StringComparer.Ordinal))
        {
            entries.Add(Seal(keys, at, action, outcome, typeCode, principalIndex,
                template with { Patient = group.Key, Records = group.Select(Reference).Distinct(StringComparer.Ordinal).ToList() }));
        }
        return entries;
    }

    /// <summary>The audited act of a records-service interaction.</summary>
    internal static AuditAction ActionOf(Interaction interaction) => interaction switch
    {
        Interaction.Read => AuditAction.Read,
        Interaction.VRead => AuditAction.VRead,
        Interaction.HistoryInstance or Interaction.HistoryType => AuditAction.History,
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

    private static PreparedEntry Seal(TenantKeys keys, long at, AuditAction action, AuditOutcome outcome, int typeCode, long principalIndex, AuditDetail detail)
    {
        var patientIndex = detail.Patient is null ? 0 : keys.Index.Hash(AuditChain.PatientIndexCode, 'x', detail.Patient);
        var json = JsonSerializer.SerializeToUtf8Bytes(detail, AuditJsonContext.Default.AuditDetail);
        var binding = AuditChain.SealBinding(at, (int)action, typeCode, principalIndex, patientIndex);
        var sealedPart = RecordCipher.Seal(keys, AuditChain.SealTypeCode, binding, 1, json, compress: false);
        return new PreparedEntry(at, (int)action, (int)outcome, typeCode, principalIndex, patientIndex, sealedPart);
    }

    /// <summary>Opens the sealed part of a stored entry.</summary>
    internal static AuditDetail Open(TenantKeys keys, in AuditRow row)
    {
        var binding = AuditChain.SealBinding(row.At, row.Action, row.Type, row.PrincipalIndex, row.PatientIndex);
        var json = RecordCipher.Open(keys, AuditChain.SealTypeCode, binding, 1, row.Sealed);
        return JsonSerializer.Deserialize(json, AuditJsonContext.Default.AuditDetail) ?? throw new AuditIntegrityException("an audit entry has no content");
    }

    // ---- the chain, extended inside a transaction ----

    internal async Task AppendInScopeAsync(WriteScope scope, long tenantId, IReadOnlyList<PreparedEntry> entries, CancellationToken cancellationToken, bool signNow = false)
    {
        var head = await ReadHeadAsync(scope, tenantId, cancellationToken);
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
        if (rows.Length > 0) await InsertAsync(scope, rows, hashes, cancellationToken);

        var size = head.Sequence + rows.Length;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var checkpointSequence = head.CheckpointSequence;
        var checkpointAt = head.CheckpointAt;
        var due = size > checkpointSequence
            && (signNow || size - checkpointSequence >= _options.CheckpointEvery || now - checkpointAt >= (long)_options.CheckpointInterval.TotalMilliseconds);
        if (due)
        {
            var signer = await _keys.AuditSignerAsync(tenantId, cancellationToken);
            var root = tree.Root();
            var signature = signer.Sign(AuditChain.CheckpointStatement(tenantId, size, root, previous, now));
            using var checkpoint = scope.Command("""
                INSERT INTO audit_checkpoints (tenant_id, size, at, root, head, key_version, signature) VALUES (@t, @n, @at, @r, @h, @v, @s)
                """).With("t", tenantId).With("n", size).With("at", now).With("r", root).With("h", previous).With("v", signer.Version).With("s", signature);
            await checkpoint.ExecuteNonQueryAsync(cancellationToken);
            checkpointSequence = size;
            checkpointAt = now;
        }
        if (rows.Length == 0 && !due) return;
        using (var update = scope.Command("""
            UPDATE audit_heads SET seq = @n, hash = @h, tree = @tr, checkpoint_seq = @cs, checkpoint_at = @ca WHERE tenant_id = @t
            """).With("n", size).With("h", previous).With("tr", tree.Serialize()).With("cs", checkpointSequence).With("ca", checkpointAt).With("t", tenantId))
        {
            await update.ExecuteNonQueryAsync(cancellationToken);
        }
        if (size > checkpointSequence) _unsigned[tenantId] = true;
        else _unsigned.TryRemove(tenantId, out _);
    }

    private sealed record Head(long Sequence, byte[] Hash, byte[] Tree, long CheckpointSequence, long CheckpointAt);

    private async Task<Head> ReadHeadAsync(WriteScope scope, long tenantId, CancellationToken cancellationToken)
    {
        // On PostgreSQL the row lock orders this tenant's appenders; on SQLite the transaction already has the only write slot.
        using var command = scope.Command("SELECT seq, hash, tree, checkpoint_seq, checkpoint_at FROM audit_heads WHERE tenant_id = @t"
            + (_database.Engine == StorageEngine.Postgres ? " FOR UPDATE" : "")).With("t", tenantId);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) throw new AuditIntegrityException($"tenant {tenantId} has no audit chain head");
        return new Head(reader.GetInt64(0), (byte[])reader.GetValue(1), (byte[])reader.GetValue(2), reader.GetInt64(3), reader.GetInt64(4));
    }

    private async Task InsertAsync(WriteScope scope, AuditRow[] rows, byte[][] hashes, CancellationToken cancellationToken)
    {
        if (_database.Engine == StorageEngine.Postgres)
        {
            // One statement per batch: columns as arrays, unnested server-side.
            using var command = (NpgsqlCommand)scope.Command("""
                INSERT INTO audit_entries (tenant_id, seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash)
                SELECT @t, unnest(@s), unnest(@at), unnest(@a), unnest(@o), unnest(@ty), unnest(@pr), unnest(@pa), unnest(@se), unnest(@h)
                """);
            command.Parameters.Add(new NpgsqlParameter<long>("t", rows[0].TenantId));
            command.Parameters.Add(new NpgsqlParameter<long[]>("s", rows.Select(r => r.Sequence).ToArray()));
            command.Parameters.Add(new NpgsqlParameter<long[]>("at", rows.Select(r => r.At).ToArray()));
            command.Parameters.Add(new NpgsqlParameter<short[]>("a", rows.Select(r => (short)r.Action).ToArray()));
            command.Parameters.Add(new NpgsqlParameter<short[]>("o", rows.Select(r => (short)r.Outcome).ToArray()));
            command.Parameters.Add(new NpgsqlParameter<short[]>("ty", rows.Select(r => (short)r.Type).ToArray()));
            command.Parameters.Add(new NpgsqlParameter<long[]>("pr", rows.Select(r => r.PrincipalIndex).ToArray()));
            command.Parameters.Add(new NpgsqlParameter<long[]>("pa", rows.Select(r => r.PatientIndex).ToArray()));
            command.Parameters.Add(new NpgsqlParameter("se", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = rows.Select(r => r.Sealed).ToArray() });
            command.Parameters.Add(new NpgsqlParameter("h", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = hashes });
            await command.ExecuteNonQueryAsync(cancellationToken);
            return;
        }
        using var insert = scope.Command("""
            INSERT INTO audit_entries (tenant_id, seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash)
            VALUES (@t, @s, @at, @a, @o, @ty, @pr, @pa, @se, @h)
            """);
        var parameters = new DbParameter[10];
        string[] names = ["t", "s", "at", "a", "o", "ty", "pr", "pa", "se", "h"];
        for (var i = 0; i < names.Length; i++)
        {
            parameters[i] = insert.CreateParameter();
            parameters[i].ParameterName = "@" + names[i];
            insert.Parameters.Add(parameters[i]);
        }
        insert.Prepare();
        for (var i = 0; i < rows.Length; i++)
        {
            var r = rows[i];
            parameters[0].Value = r.TenantId;
            parameters[1].Value = r.Sequence;
            parameters[2].Value = r.At;
            parameters[3].Value = r.Action;
            parameters[4].Value = r.Outcome;
            parameters[5].Value = r.Type;
            parameters[6].Value = r.PrincipalIndex;
            parameters[7].Value = r.PatientIndex;
            parameters[8].Value = r.Sealed;
            parameters[9].Value = hashes[i];
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary>A new tenant's empty chain, created with it.</summary>
    internal static async Task CreateHeadAsync(WriteScope scope, long tenantId, CancellationToken cancellationToken)
    {
        using var command = scope.Command("INSERT INTO audit_heads (tenant_id, seq, hash, tree, checkpoint_seq, checkpoint_at) VALUES (@t, 0, @h, @tr, 0, 0)")
            .With("t", tenantId).With("h", AuditChain.Genesis).With("tr", Array.Empty<byte>());
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    // ---- group commit ----

    private sealed class PendingGroup(long tenantId, List<PreparedEntry> entries)
    {
        public long TenantId { get; } = tenantId;
        public List<PreparedEntry> Entries { get; } = entries;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The appender runs on a thread of its own: SQLite's calls are synchronous, and on the thread pool of a
    /// two-core server its transactions held one of the few pool threads the waiting requests need to come back and
    /// queue the next entries (measured: batches of ~10 entries instead of the ~64 in flight).</summary>
    private Task StartAppender()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                RunAppender();
                done.SetResult();
            }
#pragma warning disable CA1031 // the thread's failure is handed to whoever awaits the appender
            catch (Exception e)
#pragma warning restore CA1031
            {
                done.SetException(e);
            }
        })
        { IsBackground = true, Name = "vauban-audit-appender" };
        thread.Start();
        return done.Task;
    }

    private void RunAppender()
    {
        var batch = new List<PendingGroup>();
        var reader = _queue.Reader;
        var lastDurable = 0L;
        var lazy = false; // a commit since the last durable one has not reached the disk yet
        while (true)
        {
            bool more;
            if (reader.TryPeek(out _))
            {
                more = true;
            }
            else
            {
                using var idle = new CancellationTokenSource(lazy ? _options.DurableEvery : _options.CheckpointInterval);
                try
                {
                    more = reader.WaitToReadAsync(idle.Token).AsTask().GetAwaiter().GetResult();
                }
                catch (OperationCanceledException)
                {
                    if (lazy)
                    {
                        FlushToDiskAsync().GetAwaiter().GetResult();
                        lastDurable = Environment.TickCount64;
                        lazy = false;
                    }
                    SignPendingAsync().GetAwaiter().GetResult();
                    continue;
                }
            }
            if (!more) break;
            var count = 0;
            while (count < _options.MaxBatch && reader.TryRead(out var group))
            {
                batch.Add(group);
                count += group.Entries.Count;
            }
            var now = Environment.TickCount64;
            var durable = now - lastDurable >= (long)_options.DurableEvery.TotalMilliseconds;
            try
            {
                CommitBatchAsync(batch, durable).GetAwaiter().GetResult();
                if (durable) lastDurable = now;
                lazy = !durable;
                foreach (var group in batch) group.Done.TrySetResult();
            }
            catch (Exception e) when (e is DbException or InvalidOperationException or AuditIntegrityException or IOException or TimeoutException)
            {
                var failure = new AuditUnavailableException("The audit log could not be written; nothing was returned.", e);
                foreach (var group in batch) group.Done.TrySetException(failure);
            }
            batch.Clear();
        }
        if (lazy) FlushToDiskAsync().GetAwaiter().GetResult();
        SignPendingAsync(now: true).GetAwaiter().GetResult();
    }

    private async Task CommitBatchAsync(List<PendingGroup> batch, bool durable)
    {
        await using var scope = await _database.BeginWriteAsync(durable, CancellationToken.None);
        foreach (var tenant in batch.GroupBy(g => g.TenantId))
        {
            var entries = tenant.Count() == 1 ? tenant.First().Entries : tenant.SelectMany(g => g.Entries).ToList();
            await AppendInScopeAsync(scope, tenant.Key, entries, CancellationToken.None);
        }
        await scope.CommitAsync(CancellationToken.None);
    }

    /// <summary>Makes the lazily committed entries durable when no durable commit followed them.</summary>
    private async Task FlushToDiskAsync()
    {
        try
        {
            await _database.FlushAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or IOException or TimeoutException)
        {
            // Retried with the next commit (every durable commit covers the earlier ones).
        }
    }

    /// <summary>Signs a checkpoint for every tenant whose last entries have waited the checkpoint interval.</summary>
    private async Task SignPendingAsync(bool now = false)
    {
        foreach (var tenantId in _unsigned.Keys)
        {
            try
            {
                await using var scope = await _database.BeginWriteAsync(CancellationToken.None);
                await AppendInScopeAsync(scope, tenantId, [], CancellationToken.None, signNow: now);
                await scope.CommitAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is DbException or InvalidOperationException or AuditIntegrityException or IOException or TimeoutException)
            {
                // Tried again at the next idle interval; verification reports entries past the last checkpoint.
            }
        }
    }

    /// <summary>Waits for queued entries, signs the last checkpoints, and stops the appender.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _queue.Writer.TryComplete();
        if (_appender.IsValueCreated) await _appender.Value;
        else if (!_unsigned.IsEmpty) await SignPendingAsync(now: true);
    }
}
