// The read side of the audit log: verification of the chain and its signed checkpoints, the security
// officer's searches (by patient, agent, date, action) and a patient's access history. Searches use the
// clear columns and blind indexes; only the entries returned are opened.
using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Records.Search;
using Vauban.Storage;

namespace Vauban.Audit;

/// <summary>What verification of one tenant's chain found. <see cref="FirstBroken"/> is the first entry that fails, if any.</summary>
public sealed record AuditVerification(long TenantId, long Entries, int Checkpoints, long? FirstBroken, string? Problem, long UnsignedTail)
{
    public bool Valid => Problem is null;

    /// <summary>The security records beside the chain (alerts, containments, break-the-glass grants) held to their digests on it.</summary>
    public long SecurityRecords { get; init; }

    /// <summary>The problem is with a security record beside the chain, whose entries all verified; <see cref="FirstBroken"/> is then
    /// the entry that put the record on the chain (null for a row no entry names: added in the database).</summary>
    public bool InSecurityRecords { get; init; }
}

/// <summary>What the check of the patient and principal lookups found: the first entry a lookup misses, if any.</summary>
public sealed record AuditLookupCheck(long TenantId, long Indexed, long? FirstMissing)
{
    public bool Complete => FirstMissing is null;
}

/// <summary>A signed tree head, as exported for an outside witness.</summary>
public sealed record AuditCheckpoint(long TenantId, long Size, DateTimeOffset At, byte[] Root, byte[] Head, int KeyVersion, byte[] Signature);

public sealed record AuditQuery
{
    public string? Patient { get; init; }

    /// <summary>A record (type and id) in a patient's record: the entries that name it.</summary>
    public (string Type, string Id)? Entity { get; init; }

    public string? Agent { get; init; }
    public DateTimeOffset? From { get; init; }
    public DateTimeOffset? To { get; init; }
    public IReadOnlyList<AuditAction>? Actions { get; init; }
    public int Count { get; init; } = 50;

    /// <summary>Paging: only entries before this one on the chain.</summary>
    public long? BeforeSequence { get; init; }
}

/// <summary>One page of an audit search: the entries returned, and whether more lie beyond them.</summary>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Entries, bool More)
{
    /// <summary>For a count (<see cref="AuditQuery.Count"/> 0): how many entries match; null otherwise.</summary>
    public int? Total { get; init; }

    /// <summary>The guard's refusal (step-up, suspension, lock): no entry left, and the withheld ones are on the chain as such; null
    /// when the page was given.</summary>
    public GuardDecision? Held { get; init; }

    internal static AuditPage HeldBy(GuardDecision decision) => new([], false) { Held = decision };
}

/// <summary>One entry read by id: the entry (null when no entry has that id), or the guard's refusal.</summary>
public sealed record AuditRead(AuditEntry? Entry, GuardDecision? Held = null);

/// <summary>The guard held a reading of the audit log whose result has no room for its refusal (<see cref="AuditLog.SearchAsync"/>'s
/// list, a breach's scope): thrown rather than an empty or partial result, which would read as "nothing found". The withheld
/// entries are on the chain as such.</summary>
public sealed class AuditLogHeldException : Exception
{
    public AuditLogHeldException() { }

    public AuditLogHeldException(string message) : base(message) { }

    public AuditLogHeldException(string message, Exception inner) : base(message, inner) { }

    public AuditLogHeldException(string message, GuardDecision decision) : base(message) => Decision = decision;

    /// <summary>The guard's refusal (step-up, suspension, lock).</summary>
    public GuardDecision? Decision { get; }
}

public sealed class AuditLog
{
    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly AuditTrail _trail;
    private readonly PageTokens _pages;
    private readonly TimeProvider _time;
    private readonly RecordsGuard _guard;

    internal AuditLog(StoreDatabase database, KeyRing keys, AuditTrail trail, RecordsGuard guard, TimeProvider time)
    {
        _database = database;
        _keys = keys;
        _trail = trail;
        _guard = guard;
        _pages = new PageTokens(keys.Master);
        _time = time;
    }

    /// <summary>What a paging token of the officer's search is sealed for (no records search has this scope).</summary>
    private const string PageScope = "AuditEvent/_search";

    /// <summary>A link token for a page of the officer's search: its parameters (the paging cursor among them) sealed for this
    /// principal and tenant, expiring in an hour as a records search's do, so that no patient or agent id is in a URL.</summary>
    public string SealPage(AccessContext context, IReadOnlyList<(string Name, string Value)> parameters)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(parameters);
        return _pages.Seal(new PageState(context.Tenant.Id, context.Principal.Id, PageScope, parameters.Select(p => new[] { p.Name, p.Value }).ToList(), "", 0,
            _time.GetUtcNow().AddHours(1).ToUnixTimeMilliseconds(), 1));
    }

    /// <summary>The parameters a page token was sealed with, if this server sealed it for this principal and tenant and it has not
    /// expired; else null.</summary>
    public IReadOnlyList<(string Name, string Value)>? OpenPage(AccessContext context, string token)
    {
        ArgumentNullException.ThrowIfNull(context);
        return _pages.Open(token) is { } state && state.Tenant == context.Tenant.Id && state.Principal == context.Principal.Id && state.Type == PageScope
            && state.Expires >= _time.GetUtcNow().ToUnixTimeMilliseconds() && state.Query.All(p => p.Length == 2)
            ? state.Query.Select(p => (p[0], p[1])).ToList()
            : null;
    }

    /// <summary>Entries per chunk of the parallel chain check.</summary>
    private const int VerifyChunk = 1 << 16;

    /// <summary>Re-computes every entry's hash, the chain, the Merkle tree heads and their signatures, and the head row.
    /// Each entry's hash is checked against the stored hash of the entry before it, so chunks of the chain are checked on
    /// several connections and cores at once: the first entry where stored and re-computed hashes part is the same entry a
    /// single pass from the start would find (before it they are equal, so "the previous stored hash" is "the previous
    /// re-computed hash"). The Merkle tree and the signed checkpoints take the checked hashes in order, on a stage of their own.</summary>
    /// <param name="witnessed">Tree heads exported earlier (<c>vauban audit checkpoints</c>) and kept outside the store: the chain
    /// must still reproduce each of them, which catches a rewrite or truncation of the newest entries that took their
    /// checkpoints with it. Each must carry a valid signature of this tenant's key (<see cref="ArgumentException"/> otherwise).</param>
    public async Task<AuditVerification> VerifyAsync(long tenantId, IProgress<long>? progress, CancellationToken cancellationToken,
        IReadOnlyList<AuditCheckpoint>? witnessed = null)
    {
        await _trail.CatchUpAsync();
        // Each entry's sealed part is authenticated against its clear columns (its associated data): a clear column rewritten —
        // a time moved so that re-chained entries look signed in time — no longer opens, although the chain was recomputed.
        // With a data key made since they were loaded (`keys rotate-data` by another process), loaded again: entries and security
        // records sealed under it would otherwise read as altered. A rotation while verifying is met row by row (SecurityRecords).
        // Asked on a connection of the store's pool, as the rest of verification reads, and the keys read only when there is one;
        // so is the signing key, when this process has not signed for the establishment yet (one created here signed with the key
        // it made): the look-up pool's idle connections are dead after PostgreSQL restarted.
        TenantKeys keys;
        AuditSigningKey signer;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            signer = await _keys.AuditSignerAsync(tenantId, cancellationToken, connection);
            keys = await _keys.NewestAsync(tenantId, connection, cancellationToken);
        }
        var checkpoints = await CheckpointsAsync(tenantId, cancellationToken);
        var witnessedHeads = WitnessedHeads(tenantId, witnessed, signer); // refused before any chunk is read
        long maxSequence, minSequence, headSequence, headCheckpoint, headCheckpointAt;
        byte[]? headHash, headTree;
        StoredSecurityRecords securityRecords;
        IReadOnlyList<string> triggers;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        // The chain's extent, its head and the security records beside it as of one instant: a record and its entry commit together,
        // so that a server writing meanwhile never shows a record whose entry lies beyond the extent read.
        await using (var snapshot = await _database.BeginSnapshotAsync(connection, cancellationToken))
        {
            using (var range = connection.Command("SELECT coalesce(max(seq), 0), coalesce(min(seq), 1) FROM audit_entries WHERE tenant_id = @t").With("t", tenantId))
            {
                range.Transaction = snapshot;
                using var reader = await range.ExecuteReaderAsync(cancellationToken);
                await reader.ReadAsync(cancellationToken);
                (maxSequence, minSequence) = (Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture));
            }
            using (var head = connection.Command("SELECT seq, hash, checkpoint_seq, tree, checkpoint_at FROM audit_heads WHERE tenant_id = @t").With("t", tenantId))
            {
                head.Transaction = snapshot;
                using var reader = await head.ExecuteReaderAsync(cancellationToken);
                (headSequence, headHash, headCheckpoint, headTree, headCheckpointAt) = await reader.ReadAsync(cancellationToken)
                    ? (reader.GetInt64(0), (byte[])reader.GetValue(1), reader.GetInt64(2), (byte[])reader.GetValue(3), reader.GetInt64(4))
                    : (-1L, null, 0L, null, 0L);
            }
            securityRecords = await SecurityRecords.ReadAsync(connection, snapshot, _keys, tenantId, cancellationToken);
            triggers = await SecurityRecords.TriggersAsync(connection, snapshot, _database.Engine, cancellationToken);
            await snapshot.CommitAsync(cancellationToken);
        }
        // The chain is numbered from 1: a row below that is outside it, and no chunk would ever read it (searches would).
        if (minSequence < 1) return new(tenantId, 0, 0, minSequence, $"entry {minSequence} is outside the chain, which starts at entry 1 (inserted)", 0);

        // Chunk k holds entries k·VerifyChunk + 1 … (k + 1)·VerifyChunk; readers take the next chunk in turn and hand results
        // over in chunk order through one bounded slot per chunk.
        var chunks = maxSequence <= 0 ? 0 : (int)((maxSequence - 1) / VerifyChunk) + 1;
        var readers = Math.Clamp(Environment.ProcessorCount, 1, 4);
        var results = new TaskCompletionSource<ChunkResult>[chunks];
        for (var i = 0; i < chunks; i++) results[i] = new TaskCompletionSource<ChunkResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var ahead = new SemaphoreSlim(readers * 2); // chunks read but not yet folded into the tree
        var next = -1;
        async Task ReadChunksAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                await ahead.WaitAsync(stop.Token);
                var chunk = Interlocked.Increment(ref next);
                if (chunk >= chunks) return;
                try
                {
                    results[chunk].TrySetResult(await CheckChunkAsync(tenantId, keys, chunk, Math.Min(maxSequence, (long)(chunk + 1) * VerifyChunk), stop.Token));
                }
                catch (Exception e)
                {
                    results[chunk].TrySetException(e);
                    throw;
                }
            }
        }
        var readerTasks = Enumerable.Range(0, readers).Select(_ => Task.Run(ReadChunksAsync, stop.Token)).ToArray();

        var tree = new TreeStage(checkpoints, signer);
        var witness = new WitnessStage(witnessedHeads, tree);
        var signing = new SigningDeadline(checkpoints, (long)_trail.CheckpointInterval.TotalMilliseconds);
        var last = 0L;
        byte[] previous = AuditChain.Genesis;
        (long Sequence, string Problem)? chainBreak = null;
        var recordEntries = new List<(long Sequence, AuditDetail Detail)>();
        try
        {
            for (var chunk = 0; chunk < chunks; chunk++)
            {
                var result = await results[chunk].Task.WaitAsync(cancellationToken);
                ahead.Release();
                // The chunk's first entry is checked against the stored hash that ends the chunk before it.
                if (result.Checked > 0 && result.FirstPrevious is { } expectedPrevious && !expectedPrevious.AsSpan().SequenceEqual(previous))
                {
                    chainBreak = (result.First, $"entry {result.First} does not match its chain hash (altered, inserted or moved)");
                    break;
                }
                for (var i = 0; i < result.Checked; i++)
                {
                    var hash = result.Hashes.AsSpan(i * AuditChain.HashSize, AuditChain.HashSize);
                    if (!tree.Fold(result.First + i, hash)) break;
                    if (witness.Check(result.First + i, hash) is { } unwitnessed)
                    {
                        chainBreak = (result.First + i, unwitnessed);
                        break;
                    }
                    if (signing.Late(result.First + i, result.Times[i]) is { } late)
                    {
                        chainBreak = (result.First + i, late);
                        break;
                    }
                }
                if (tree.Failed || chainBreak is not null) break;
                recordEntries.AddRange(result.SecurityRecords);
                last = result.First + result.Checked - 1;
                if (result.Checked > 0) previous = result.Hashes.AsSpan((result.Checked - 1) * AuditChain.HashSize, AuditChain.HashSize).ToArray();
                if (result.Problem is { } problem)
                {
                    chainBreak = problem;
                    break;
                }
                progress?.Report(last);
            }
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await Task.WhenAll(readerTasks);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Readers stopped early because a break was found.
            }
        }
        if (tree.Problem is { } treeProblem) return new(tenantId, treeProblem.Entries, tree.Verified, treeProblem.Sequence, treeProblem.Problem, 0);
        if (chainBreak is { } broken) return new(tenantId, Math.Max(0, broken.Sequence - 1), tree.Verified, broken.Sequence, broken.Problem, 0);
        // Entries: those before the first that fails, as for a break found while reading. A break found after reading every entry (the
        // head, a deleted checkpoint) may lie before the last one read: "1,200 entries before it verified" beside "BROKEN at entry 1142".
        AuditVerification Broken(long seq, string problem) => new(tenantId, Math.Min(last, seq - 1), tree.Verified, seq, problem, 0);
        if (witness.Beyond(last) is { } gone) return Broken(last + 1, gone);
        if (tree.Next < checkpoints.Count)
        {
            return Broken(last + 1, $"entries {last + 1} to {checkpoints[^1].Size} are missing (deleted after a checkpoint signed them)");
        }
        if (headHash is null) return Broken(last + 1, "the chain head is missing");
        if (headSequence != last || !headHash.AsSpan().SequenceEqual(previous))
        {
            return Broken(Math.Min(headSequence, last) + 1, headSequence > last
                ? $"entries {last + 1} to {headSequence} are missing (the chain head counts {headSequence})"
                : $"the chain head does not match entry {last}");
        }
        var signedUpTo = checkpoints.Count == 0 ? 0 : checkpoints[^1].Size;
        if (headCheckpoint > signedUpTo)
        {
            return Broken(signedUpTo + 1, $"the chain head records a checkpoint signed at entry {headCheckpoint}, which is missing (deleted)");
        }
        // The head is what the next commit extends and signs: its Merkle range must be the entries', and the checkpoint it records
        // the newest (the next signature is over that range; a range set to anything else is signed as history).
        if (headTree is null || !headTree.AsSpan().SequenceEqual(tree.Range()))
        {
            return Broken(last + 1, "the chain head's Merkle range does not match the entries (altered): the next checkpoint would sign it");
        }
        if (checkpoints.Count > 0 && (headCheckpoint != signedUpTo || headCheckpointAt != checkpoints[^1].At.ToUnixTimeMilliseconds()))
        {
            return Broken(signedUpTo + 1, $"the chain head records the checkpoint at entry {headCheckpoint}, not the newest, signed at entry {signedUpTo} (altered)");
        }
        // The chain holds: now the rows beside it that it vouches for.
        var (records, recordEntry, recordProblem) = SecurityRecords.Check(securityRecords, recordEntries);
        // A trigger or rule on these tables can change a row as it is written, or delete it: none of Vauban's own, so one is reported.
        if (triggers.Count > 0)
        {
            var named = "a trigger or rule on the audit log's or the security records' tables (" + string.Join(", ", triggers)
                + "): none is Vauban's; one can change or delete a row as it is written";
            recordProblem = recordProblem is null ? named : recordProblem + "; and " + named;
        }
        progress?.Report(last);
        return new AuditVerification(tenantId, last, tree.Verified, recordEntry, recordProblem, last - signedUpTo)
        {
            SecurityRecords = records,
            InSecurityRecords = recordProblem is not null,
        };
    }

    /// <summary>One chunk's entries, each checked against the stored hash before it: <see cref="Checked"/> consecutive entries from
    /// <see cref="First"/> with their stored (= re-computed) hashes, then the chunk's first problem, if any.</summary>
    private sealed record ChunkResult(long First, int Checked, byte[] Hashes, long[] Times, byte[]? FirstPrevious, (long Sequence, string Problem)? Problem)
    {
        /// <summary>The checked entries that carry digests of security records, or mark the point from which the chain holds them all.</summary>
        public List<(long Sequence, AuditDetail Detail)> SecurityRecords { get; } = [];
    }

    private async Task<ChunkResult> CheckChunkAsync(long tenantId, Crypto.TenantKeys keys, int chunk, long to, CancellationToken cancellationToken)
    {
        var first = (long)chunk * VerifyChunk + 1;
        var hashes = new byte[(int)(to - first + 1) * AuditChain.HashSize];
        var times = new long[(int)(to - first + 1)];
        var computed = new byte[AuditChain.HashSize];
        byte[]? firstPrevious = null;
        var previous = AuditChain.Genesis;
        var expected = first;
        var count = 0;
        var securityRecords = new List<(long, AuditDetail)>();
        ChunkResult Result((long, string)? problem = null)
        {
            var result = new ChunkResult(first, count, hashes, times, firstPrevious, problem);
            result.SecurityRecords.AddRange(securityRecords);
            return result;
        }

        await using var connection = await _database.OpenAsync(cancellationToken);
        // From the entry before the chunk: its stored hash is what the chunk's first entry chains to. The first chunk chains
        // to the genesis value, never to a stored row (a row numbered 0 is not part of the chain).
        using var command = connection.Command("""
            SELECT seq, at, action, outcome, type, principal_ix, patient_ix, sealed, hash FROM audit_entries
            WHERE tenant_id = @t AND seq >= @from AND seq <= @to ORDER BY seq
            """).With("t", tenantId).With("from", Math.Max(1, first - 1)).With("to", to);
        command.CommandTimeout = 0;
        using var reader = await command.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            AuditRow row;
            byte[] stored;
            try
            {
                row = ReadRow(tenantId, reader);
                stored = (byte[])reader.GetValue(8);
            }
            catch (Exception e) when (e is InvalidCastException or FormatException or OverflowException)
            {
                return Result((expected, $"entry {expected} has a column of the wrong kind (altered)"));
            }
            if (row.Sequence == first - 1)
            {
                previous = firstPrevious = stored;
                continue;
            }
            if (row.Sequence != expected)
            {
                return Result((expected, row.Sequence > expected
                    ? $"entries {expected} to {row.Sequence - 1} are missing (deleted)"
                    : $"entry {row.Sequence} is out of place"));
            }
            AuditChain.EntryHash(previous, row, computed);
            if (!computed.AsSpan().SequenceEqual(stored))
            {
                return Result((row.Sequence, $"entry {row.Sequence} does not match its chain hash (altered, inserted or moved)"));
            }
            if (!AuditTrail.Authentic(keys, row))
            {
                return Result((row.Sequence, $"entry {row.Sequence}'s time, action, type, principal or patient does not match its sealed part (altered and re-chained)"));
            }
            // Entries of security records are rare, and opened; so is an establishment's first entry, which may mark the point from
            // which its security records are all on the chain.
            if (row.Action == (int)AuditAction.SecurityRecords || row.Sequence == 1)
            {
                var detail = AuditTrail.Open(keys, row);
                if (row.Action == (int)AuditAction.SecurityRecords || detail.SecurityRecordsFrom) securityRecords.Add((row.Sequence, detail));
            }
            stored.CopyTo(hashes, count * AuditChain.HashSize);
            times[count] = row.At;
            previous = stored;
            count++;
            expected++;
        }
        if (first > 1 && firstPrevious is null && count > 0) firstPrevious = []; // the entry before the chunk is gone: caught below
        if (expected <= to) return Result((expected, $"entries {expected} to {to} are missing (deleted)"));
        return Result();
    }

    /// <summary>
    /// Whether each entry was signed in time. The appender signs a checkpoint in the very commit that finds the last one older
    /// than the checkpoint interval, and the first commit of a chain always signs; so after any commit the newest checkpoint is
    /// at most one interval older than the commit, and an entry (made before its commit) is never later than the checkpoint
    /// before it plus one interval, or than the checkpoint that first covers it. An entry later than both was once covered by
    /// checkpoints that are gone: someone deleted them — typically with the entries they signed, re-chaining the rest with
    /// recomputed hashes, which the tree alone cannot see once no signed head covers the rewritten part. (An interval
    /// lowered since the entries were written makes older stretches look late; raising it is harmless.)
    /// </summary>
    private sealed class SigningDeadline(IReadOnlyList<AuditCheckpoint> checkpoints, long intervalMilliseconds)
    {
        private int _next;

        /// <summary>The problem with entry <paramref name="sequence"/> made at <paramref name="at"/> (Unix ms), if it is late.</summary>
        public string? Late(long sequence, long at)
        {
            while (_next < checkpoints.Count && checkpoints[_next].Size < sequence) _next++;
            long? before = _next > 0 ? checkpoints[_next - 1].At.ToUnixTimeMilliseconds() + intervalMilliseconds : null;
            long? covering = _next < checkpoints.Count ? checkpoints[_next].At.ToUnixTimeMilliseconds() : null;
            var deadline = Math.Max(before ?? long.MinValue, covering ?? long.MinValue);
            if (before is null && covering is null)
            {
                return $"entry {sequence} is covered by no signed checkpoint, though the first commit of a chain signs one (checkpoints deleted)";
            }
            if (at <= deadline + AuditChain.ClockToleranceMilliseconds) return null;
            return $"entry {sequence} was made {TimeSpan.FromMilliseconds(at - deadline):c} after its checkpoint was due and no signed checkpoint covers it in time "
                + "(checkpoints deleted, the entries after them rewritten)";
        }
    }

    /// <summary>The witnessed tree heads of this tenant in size order, each checked against its signature.</summary>
    private static List<AuditCheckpoint> WitnessedHeads(long tenantId, IReadOnlyList<AuditCheckpoint>? witnessed, AuditSigningKey signer)
    {
        var heads = new List<AuditCheckpoint>();
        foreach (var head in (witnessed ?? []).OrderBy(c => c.Size))
        {
            var statement = AuditChain.CheckpointStatement(head.TenantId, head.Size, head.Root, head.Head, head.At.ToUnixTimeMilliseconds());
            if (head.TenantId != tenantId || head.Size < 1 || head.KeyVersion != signer.Version || !signer.Verify(statement, head.Signature))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"The witnessed tree head at entry {head.Size} is not signed by this establishment's audit key: it is not an export of this log."));
            }
            heads.Add(head);
        }
        return heads;
    }

    /// <summary>The witnessed tree heads, compared in entry order with the root of the tree the stored checkpoints are
    /// checked against (verification stops at the first stored checkpoint that fails, so that tree is always current).</summary>
    private sealed class WitnessStage(List<AuditCheckpoint> heads, TreeStage tree)
    {
        private int _next;

        /// <summary>Called once <paramref name="sequence"/>'s hash is folded into the tree: the problem if a witnessed head at it no longer holds.</summary>
        public string? Check(long sequence, ReadOnlySpan<byte> hash)
        {
            for (; _next < heads.Count && heads[_next].Size == sequence; _next++)
            {
                var head = heads[_next];
                if (!CryptographicOperations.FixedTimeEquals(tree.Root(), head.Root) || !CryptographicOperations.FixedTimeEquals(hash, head.Head))
                {
                    return $"the entries up to {sequence} no longer give the tree head witnessed for them (signed {head.At.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC): history rewritten";
                }
            }
            return null;
        }

        /// <summary>The problem if a witnessed head covers entries past <paramref name="last"/>, the chain's last verified entry.</summary>
        public string? Beyond(long last) =>
            heads.Count > 0 && heads[^1].Size > last
                ? $"entries {last + 1} to {heads[^1].Size} were witnessed (tree head signed {heads[^1].At.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC) and are gone: the log was truncated"
                : null;
    }

    /// <summary>The Merkle tree and the signed checkpoints, checked in entry order.</summary>
    private sealed class TreeStage(IReadOnlyList<AuditCheckpoint> checkpoints, AuditSigningKey signer)
    {
        private readonly CompactMerkleTree _tree = new();

        public int Next { get; private set; }
        public int Verified { get; private set; }
        public (long Entries, long Sequence, string Problem)? Problem { get; private set; }
        public bool Failed => Problem is not null;

        /// <summary>The Merkle tree hash of the entries folded in so far.</summary>
        public byte[] Root() => _tree.Root();

        /// <summary>The compact range of the entries folded in so far, as the chain head stores it.</summary>
        public byte[] Range() => _tree.Serialize();

        /// <summary>Folds entry <paramref name="sequence"/>'s hash in; false once a checkpoint fails.</summary>
        public bool Fold(long sequence, ReadOnlySpan<byte> hash)
        {
            _tree.Append(hash);
            while (Next < checkpoints.Count && checkpoints[Next].Size == sequence)
            {
                var checkpoint = checkpoints[Next];
                if (!CheckpointHolds(checkpoint, _tree, hash, signer))
                {
                    Problem = (sequence - 1, sequence, $"the checkpoint signed at entry {checkpoint.Size} does not match the entries up to it (rewritten history)");
                    return false;
                }
                Verified++;
                Next++;
            }
            if (Next < checkpoints.Count && checkpoints[Next].Size < sequence)
            {
                Problem = (sequence - 1, checkpoints[Next].Size, $"the checkpoint at entry {checkpoints[Next].Size} is out of order");
                return false;
            }
            return true;
        }
    }

    /// <summary>Checks that every entry the lookups claim to cover (up to indexed_seq) can be found by its patient and by its
    /// principal. The lookups are not on the chain: deleting rows from them would hide entries from the officer's searches
    /// without breaking the chain, and this is the check that finds it. A lookup row that points elsewhere is harmless
    /// (searches re-check the entry's own chained columns).</summary>
    public async Task<AuditLookupCheck> VerifyLookupsAsync(long tenantId, CancellationToken cancellationToken)
    {
        await _trail.CatchUpAsync();
        await using var connection = await _database.OpenAsync(cancellationToken);
        long indexed;
        using (var head = connection.Command("SELECT indexed_seq FROM audit_heads WHERE tenant_id = @t").With("t", tenantId))
        {
            indexed = await head.ScalarLongAsync(cancellationToken);
        }
        using var command = connection.Command($"""
            SELECT min(e.seq) FROM audit_entries e WHERE e.tenant_id = @t AND e.seq <= @indexed AND (
                (e.patient_ix <> 0 AND NOT EXISTS (SELECT 1 FROM audit_index i WHERE i.tenant_id = @t AND i.bucket = e.seq >> {AuditChain.IndexBucketBits}
                    AND i.kind = {AuditChain.PatientLookup} AND i.ix = e.patient_ix AND i.seq = e.seq))
                OR NOT EXISTS (SELECT 1 FROM audit_index i WHERE i.tenant_id = @t AND i.bucket = e.seq >> {AuditChain.IndexBucketBits}
                    AND i.kind = {AuditChain.PrincipalLookup} AND i.ix = e.principal_ix AND i.seq = e.seq))
            """).With("t", tenantId).With("indexed", indexed);
        command.CommandTimeout = 0;
        var first = await command.ExecuteScalarAsync(cancellationToken);
        return new AuditLookupCheck(tenantId, indexed, first is null or DBNull ? null : Convert.ToInt64(first, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static bool CheckpointHolds(AuditCheckpoint checkpoint, CompactMerkleTree tree, ReadOnlySpan<byte> head, AuditSigningKey signer)
    {
        if (checkpoint.KeyVersion != signer.Version) return false;
        var root = tree.Root();
        if (!CryptographicOperations.FixedTimeEquals(root, checkpoint.Root) || !CryptographicOperations.FixedTimeEquals(head, checkpoint.Head)) return false;
        var statement = AuditChain.CheckpointStatement(checkpoint.TenantId, checkpoint.Size, checkpoint.Root, checkpoint.Head, checkpoint.At.ToUnixTimeMilliseconds());
        return signer.Verify(statement, checkpoint.Signature);
    }

    public async Task<IReadOnlyList<AuditCheckpoint>> CheckpointsAsync(long tenantId, CancellationToken cancellationToken)
    {
        await _trail.CatchUpAsync();
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command(
            "SELECT size, at, root, head, key_version, signature FROM audit_checkpoints WHERE tenant_id = @t ORDER BY size").With("t", tenantId);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var list = new List<AuditCheckpoint>();
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(new AuditCheckpoint(tenantId, reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                (byte[])reader.GetValue(2), (byte[])reader.GetValue(3), reader.GetInt32(4), (byte[])reader.GetValue(5)));
        }
        return list;
    }

    /// <summary>The tenant's checkpoint verification key (PEM), for an outside witness.</summary>
    public async Task<string> PublicKeyPemAsync(long tenantId, CancellationToken cancellationToken) =>
        (await _keys.AuditSignerAsync(tenantId, cancellationToken)).PublicKeyPem();

    /// <summary>Who may read the audit log: the security officer, and the operator at the command line. Everyone else is refused
    /// (and the refusal is itself an entry).</summary>
    public static bool MayRead(AccessContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Principal.Kind == PrincipalKind.System
            || (context.Principal.Kind == PrincipalKind.Person && context.Principal.Role == StaffRole.SecurityOfficer);
    }

    /// <summary>Reading the audit log is reviewing the system, never care: its entries record HSYSADMIN, whatever purpose the
    /// reader's context carries (a signed-in officer's is TREAT, like every person's).</summary>
    private static AccessContext Review(AccessContext context) => context with { Purpose = KnownPurposes.SystemAdministration };

    /// <summary>An operator's own stated purpose ("patient access history report") is kept, as the entry's note.</summary>
    private static string? Stated(AccessContext context, string? note) =>
        KnownPurposes.Display(context.Purpose) is not null ? note : note is null ? "stated purpose: " + context.Purpose : note + "; stated purpose: " + context.Purpose;

    /// <summary>The officer's search, newest first; null when the principal may not read the audit log. The search itself is
    /// audited (reading the audit log reveals who saw whom). Held by the guard, it throws <see cref="AuditLogHeldException"/>:
    /// an empty list would read as "nothing found" (<see cref="SearchPageAsync(AccessContext, AuditQuery, CancellationToken)"/>
    /// returns the refusal instead).</summary>
    public async Task<IReadOnlyList<AuditEntry>?> SearchAsync(AccessContext context, AuditQuery query, CancellationToken cancellationToken)
    {
        var page = await SearchPageAsync(context, query, lookAhead: false, MaxPage, cancellationToken);
        if (page?.Held is { } held) throw new AuditLogHeldException($"The guard held this search of the audit log ({held.Verdict}). {held.Reason}", held);
        return page?.Entries;
    }

    /// <summary>Most entries a page of the officer's search gives (<see cref="AuditQuery.Count"/> is held to it).</summary>
    public const int MaxPage = 1000;

    /// <summary>Most entries one long reading of the log gives (<see cref="SearchAllAsync"/>).</summary>
    public const int MaxRead = 1_000_000;

    /// <summary>One page of the officer's search: its entries, and whether more lie beyond them — known from one more entry
    /// read, which is neither returned nor audited (the officer's entries list what was seen, not what was looked ahead at).</summary>
    public Task<AuditPage?> SearchPageAsync(AccessContext context, AuditQuery query, CancellationToken cancellationToken) =>
        SearchPageAsync(context, query, lookAhead: true, MaxPage, cancellationToken);

    /// <summary>
    /// Up to <see cref="AuditQuery.Count"/> entries of the officer's search (at most <see cref="MaxRead"/>), newest first, and
    /// whether more lie beyond them: read from the store a page at a time, but one reading of the log — weighed by the guard once,
    /// over every entry it is about to show, and on the chain once admitted. Held, nothing is returned and every entry is on the
    /// chain as withheld. (A patient's access history read page by page instead, a page held after the first left the earlier
    /// ones on the chain as read, though the reader, refused, was shown none of them.)
    /// </summary>
    public Task<AuditPage?> SearchAllAsync(AccessContext context, AuditQuery query, CancellationToken cancellationToken) =>
        SearchPageAsync(context, query, lookAhead: true, MaxRead, cancellationToken);

    private async Task<AuditPage?> SearchPageAsync(AccessContext context, AuditQuery query, bool lookAhead, int most, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(query);
        if (!MayRead(context))
        {
            await _trail.AppendAsync(Review(context), AuditAction.AuditRead, AuditOutcome.MinorFailure, null, [], cancellationToken, Stated(context, "refused: only the security officer reads the audit log"));
            return null;
        }
        await _trail.CatchUpAsync(); // every act before this search is on the chain
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        if (query.Count == 0)
        {
            // A contained reader counts nothing either (no entry leaves: nothing to weigh).
            if (await AdmitAsync(context, Interaction.Search, [], cancellationToken) is { } contained) return AuditPage.HeldBy(contained);
            // The total alone (FHIR R4 search, _count=0): no entry is returned, and the act is audited as a count.
            var total = await CountAsync(context.Tenant.Id, keys, query, cancellationToken);
            await _trail.AppendAsync(Review(context), AuditAction.AuditRead, AuditOutcome.Success, null, [], cancellationToken, Stated(context, AuditTrail.CountOnlyNote));
            return new AuditPage([], false) { Total = total };
        }
        var limit = Math.Clamp(query.Count, 1, most);
        var wanted = lookAhead ? limit + 1 : limit;
        // A record's entries are among its patients' (a record in no patient's record is refused by the caller, and has none here:
        // with no patient the statement would read every entry): those that name it, read a page at a time, newest first. Any other
        // search reads its page (and the entry read ahead) in one statement, a longer reading (SearchAllAsync) a page at a time.
        string? reference = null;
        List<string> patients;
        if (query.Entity is { } entity)
        {
            patients = await EntityPatientsAsync(context.Tenant.Id, entity, cancellationToken);
            reference = entity.Type + "/" + entity.Id;
        }
        else
        {
            patients = query.Patient is null ? [] : [query.Patient];
        }
        var entries = new List<AuditEntry>();
        var before = query.BeforeSequence;
        while ((reference is null || patients.Count > 0) && entries.Count < wanted)
        {
            var take = reference is null && wanted - entries.Count <= MaxPage + 1 ? wanted - entries.Count : MaxPage;
            var command = await SearchCommandAsync(context.Tenant.Id, keys, query with { BeforeSequence = before }, patients, take, cancellationToken);
            var rows = await QueryRowsAsync(command, context.Tenant.Id, cancellationToken);
            var opened = rows.Select(r => Open(keys, r));
            entries.AddRange((reference is null ? opened : opened.Where(e => e.Detail.Records.Contains(reference, StringComparer.Ordinal))).Take(wanted - entries.Count));
            if (rows.Count < take) break;
            before = rows[^1].Sequence;
        }
        var more = entries.Count > limit;
        if (more) entries.RemoveAt(entries.Count - 1);
        if (await AdmitAsync(context, Interaction.Search, entries, cancellationToken) is { } held) return AuditPage.HeldBy(held);
        await AppendReadAsync(context, AuditAction.AuditRead, AuditOutcome.Success, entries, Stated(context, null), cancellationToken);
        return new AuditPage(entries, more);
    }

    /// <summary>How many entries the query matches: counted in SQL, or for a record (<see cref="AuditQuery.Entity"/>) among its
    /// patients' entries, opened a chunk at a time as its search does.</summary>
    private async Task<int> CountAsync(long tenantId, TenantKeys keys, AuditQuery query, CancellationToken cancellationToken)
    {
        if (query.Entity is not { } entity)
        {
            var patients = query.Patient is null ? [] : new List<string> { query.Patient };
            using var command = await SearchCommandAsync(tenantId, keys, query, patients, 0, cancellationToken, countOnly: true);
            return await _database.QueryAsync(command, async (reader, ct) => await reader.ReadAsync(ct) ? Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture) : 0,
                cancellationToken);
        }
        var entityPatients = await EntityPatientsAsync(tenantId, entity, cancellationToken);
        var reference = entity.Type + "/" + entity.Id;
        var count = 0;
        var before = query.BeforeSequence;
        while (entityPatients.Count > 0)
        {
            const int Chunk = 1000;
            var command = await SearchCommandAsync(tenantId, keys, query with { BeforeSequence = before }, entityPatients, Chunk, cancellationToken);
            var rows = await QueryRowsAsync(command, tenantId, cancellationToken);
            count += rows.Count(r => Open(keys, r).Detail.Records.Contains(reference, StringComparer.Ordinal));
            if (rows.Count < Chunk) break;
            before = rows[^1].Sequence;
        }
        return count;
    }

    /// <summary>One entry by its AuditEvent id ("{sequence}"), audited like a search: the entry, no entry (an unknown id), or the
    /// guard's refusal; null when the principal may not read the audit log.</summary>
    public async Task<AuditRead?> ReadAsync(AccessContext context, long sequence, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!MayRead(context))
        {
            await _trail.AppendAsync(Review(context), AuditAction.AuditRead, AuditOutcome.MinorFailure, null, [], cancellationToken, Stated(context, "refused: only the security officer reads the audit log"));
            return null;
        }
        await _trail.CatchUpAsync(); // every act before this search is on the chain
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        List<AuditRow> rows = [];
        if (sequence >= 1)
        {
            var command = _database.NewCommand();
            command.CommandText = "SELECT seq, at, action, outcome, type, principal_ix, patient_ix, sealed FROM audit_entries WHERE tenant_id = @t AND seq = @s";
            command.With("t", context.Tenant.Id).With("s", sequence);
            rows = await QueryRowsAsync(command, context.Tenant.Id, cancellationToken);
        }
        if (rows.Count == 0)
        {
            // A contained reader is told so, not that the id names nothing.
            if (await AdmitAsync(context, Interaction.Read, [], cancellationToken) is { } contained) return new AuditRead(null, contained);
            // An id that names no entry: the officer's probe of the log is on it too (what was asked for, as the note).
            await _trail.AppendAsync(Review(context), AuditAction.AuditRead, AuditOutcome.MinorFailure, null, [], cancellationToken,
                Stated(context, string.Create(CultureInfo.InvariantCulture, $"not found: no entry {Math.Max(sequence, 0)} on the chain")));
            return new AuditRead(null);
        }
        var entry = Open(keys, rows[0]);
        if (await AdmitAsync(context, Interaction.Read, [entry], cancellationToken) is { } held) return new AuditRead(null, held);
        await _trail.AppendAsync(Review(context), AuditAction.AuditRead, AuditOutcome.Success, null, [new AuditedRecord(AuditEventType, AuditEventId(entry), entry.Detail.Patient)],
            cancellationToken, Stated(context, null));
        return new AuditRead(entry);
    }

    /// <summary>
    /// The guard's question (ADR 0008), asked of what a page of the log, or an entry, is about to show: the distinct patients the
    /// entries name, weighed in the reader's windows by her role's levels (the security officer's are her own: an investigation
    /// reads hundreds of patients' entries; a stolen officer session must not walk the whole log — who opened which patient, in
    /// which service). A contained reader reads nothing. A canary named by an entry is the incident the officer looks into, not a
    /// walk of the records: it contains no one. The operator at the command line is not weighed (the guard admits the system).
    /// Refused: the withheld entries are on the chain as such, and the refusal is returned; null when admitted.
    /// </summary>
    private async Task<GuardDecision?> AdmitAsync(AccessContext context, Interaction interaction, IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken)
    {
        var patients = new HashSet<string>(StringComparer.Ordinal);
        var naming = 0;
        foreach (var entry in entries)
        {
            if (entry.Detail.Patient is not { } patient) continue;
            patients.Add(patient);
            naming++;
        }
        var decision = await _guard.AdmitAsync(context, new GuardRequest(interaction, AuditEventType, naming, patients, patients) { OfTheAuditLog = true }, cancellationToken);
        if (decision.Delay > TimeSpan.Zero) await Task.Delay(decision.Delay, cancellationToken);
        if (decision.Admitted) return null;
        await AppendReadAsync(context, AuditAction.Containment, AuditOutcome.MinorFailure, entries,
            Stated(context, "guard: " + decision.Verdict + " (" + AuditDescriptions.Action(AuditAction.AuditRead) + ")"), cancellationToken);
        return decision;
    }

    /// <summary>A reading of the log on the chain, shown or withheld: the entries it concerns listed a page's worth
    /// (<see cref="MaxPage"/>) per act appended, so that a long read is several acts, each of a page's size.</summary>
    private async Task AppendReadAsync(AccessContext context, AuditAction action, AuditOutcome outcome, IReadOnlyList<AuditEntry> entries, string? note,
        CancellationToken cancellationToken)
    {
        if (entries.Count == 0)
        {
            await _trail.AppendAsync(Review(context), action, outcome, null, [], cancellationToken, note);
            return;
        }
        foreach (var chunk in entries.Chunk(MaxPage))
        {
            await _trail.AppendAsync(Review(context), action, outcome, null,
                chunk.Select(e => new AuditedRecord(AuditEventType, AuditEventId(e), e.Detail.Patient)).ToList(), cancellationToken, note);
        }
    }

    private const string AuditEventType = "AuditEvent";

    /// <summary>PostgreSQL takes a date window newest first with a limit by walking the primary key back from the chain's
    /// newest entry, as if entries of any date were spread evenly along the chain. They are in time order: for a window that
    /// ends in the past it first walks every entry appended since (measured: 70.8 s for 100 entries of a window ending
    /// 106 s before the newest of 10 million). When at least <see cref="WalkBack"/> entries are dated after the window
    /// (counted on the date index, at most that many), the search reads the window from the date index and sorts it: the
    /// same rows in the same order, at a cost that grows with the window instead: a 10 s window of ~440,000 entries 0.37 s
    /// against 6.0 s, a 100 s window of ~4.9 million 12.4 s against 70.8; the count itself 7 ms.</summary>
    private async Task<bool> ManyEntriesSinceAsync(long tenantId, long since, CancellationToken cancellationToken)
    {
        var command = _database.NewCommand();
        command.CommandText = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"SELECT count(*) FROM (SELECT 1 FROM audit_entries WHERE tenant_id = @t AND at >= @since LIMIT {WalkBack}) a");
        command.With("t", tenantId).With("since", since);
        using (command)
        {
            return await _database.QueryAsync(command, async (reader, ct) => await reader.ReadAsync(ct) && reader.GetInt64(0) >= WalkBack, cancellationToken);
        }
    }

    /// <summary>Entries the primary key's walk back may pass over before a date window's search reads the date index instead.</summary>
    internal const int WalkBack = 10_000;

    /// <summary>How far the patient and principal lookups have been built (schema step 7).</summary>
    private async Task<long> IndexedUpToAsync(long tenantId, CancellationToken cancellationToken)
    {
        var command = _database.NewCommand();
        command.CommandText = "SELECT indexed_seq FROM audit_heads WHERE tenant_id = @t";
        command.With("t", tenantId);
        using (command)
        {
            return await _database.QueryAsync(command, async (reader, ct) => await reader.ReadAsync(ct) ? reader.GetInt64(0) : 0L, cancellationToken);
        }
    }

    /// <summary>The statement of an officer's search: entries of <paramref name="patients"/> (any of them; none: every patient)
    /// and the query's other criteria, newest first, at most <paramref name="take"/>.</summary>
    /// <param name="countOnly">The number of such entries instead (<paramref name="take"/> is then ignored).</param>
    private async Task<DbCommand> SearchCommandAsync(long tenantId, TenantKeys keys, AuditQuery query, List<string> patients, int take,
        CancellationToken cancellationToken, bool countOnly = false)
    {
        var columns = countOnly ? "count(*)" : "e.seq, e.at, e.action, e.outcome, e.type, e.principal_ix, e.patient_ix, e.sealed";
        var command = _database.NewCommand();
        command.With("t", tenantId);
        var patientIndexes = patients.Select(p => AuditChain.PatientIndex(keys, p)).ToList();
        long? patient = patientIndexes.Count == 0 ? null : patientIndexes[0];
        var agent = query.Agent is null ? (long?)null : AuditChain.PrincipalIndex(keys, query.Agent);
        // One value (nearly always) is compared with '=', the form the plans of these searches were measured with.
        string Matches(string column, string prefix, List<long> values)
        {
            if (values.Count != 1) return command.InList(_database.Engine, column, prefix, values);
            command.With(prefix, values[0]);
            return $"{column} = @{prefix}";
        }
        var sql = new System.Text.StringBuilder();
        if ((patient ?? agent) is { } lookup)
        {
            // Candidates: the lookups built so far (one probe per bucket), and the entries beyond them read directly. The
            // entries' own chained columns are checked again below, so a lookup row pointing elsewhere finds nothing.
            var (kind, column) = patient is not null ? (AuditChain.PatientLookup, "patient_ix") : (AuditChain.PrincipalLookup, "principal_ix");
            var lookups = patient is not null ? patientIndexes : [lookup];
            var indexed = await IndexedUpToAsync(tenantId, cancellationToken);
            var buckets = string.Join(", ", Enumerable.Range(0, (int)(indexed >> AuditChain.IndexBucketBits) + 1)
                .Select(b => b.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            sql.Append(System.Globalization.CultureInfo.InvariantCulture, $"""
                WITH c(seq) AS (
                    SELECT seq FROM audit_index WHERE tenant_id = @t AND bucket IN ({buckets}) AND kind = {kind} AND {Matches("ix", "ix", lookups)} AND seq <= @indexed
                    UNION ALL SELECT seq FROM audit_entries WHERE tenant_id = @t AND seq > @indexed AND {Matches(column, "ixe", lookups)})
                SELECT {columns}
                FROM c CROSS JOIN audit_entries e WHERE e.tenant_id = @t AND e.seq = c.seq
                """);
            command.With("indexed", indexed);
        }
        else
        {
            sql.Append(CultureInfo.InvariantCulture, $"SELECT {columns} FROM audit_entries e WHERE e.tenant_id = @t");
        }
        if (patient is not null) sql.Append(" AND ").Append(Matches("e.patient_ix", "pa", patientIndexes));
        if (agent is { } pr)
        {
            sql.Append(" AND e.principal_ix = @pr");
            command.With("pr", pr);
        }
        if (query.From is { } from)
        {
            sql.Append(" AND e.at >= @from");
            command.With("from", from.ToUnixTimeMilliseconds());
        }
        if (query.To is { } to)
        {
            sql.Append(" AND e.at < @to");
            command.With("to", to.ToUnixTimeMilliseconds());
        }
        if (query.Actions is { Count: > 0 } actions)
        {
            sql.Append(" AND e.action IN (").Append(string.Join(", ", actions.Select(a => ((int)a).ToString(System.Globalization.CultureInfo.InvariantCulture)))).Append(')');
        }
        if (query.BeforeSequence is { } before)
        {
            sql.Append(" AND e.seq < @bs");
            command.With("bs", before);
        }
        if (countOnly)
        {
            command.CommandText = sql.ToString();
            return command;
        }
        var fromDateIndex = (patient ?? agent) is null && query.To is { } end && _database.Engine == StorageEngine.Postgres
            && await ManyEntriesSinceAsync(tenantId, end.ToUnixTimeMilliseconds(), cancellationToken);
        // "+ 0": the same order, which the primary key cannot give, so that PostgreSQL reads the window from the date index.
        sql.Append(fromDateIndex ? " ORDER BY e.seq + 0 DESC" : " ORDER BY e.seq DESC").Append(Sql.Limit(take));
        command.CommandText = sql.ToString();
        return command;
    }

    /// <summary>The patients whose records a record has been part of, over its versions (usually one; none for a record in no
    /// patient's record, or an unknown one).</summary>
    private async Task<List<string>> EntityPatientsAsync(long tenantId, (string Type, string Id) entity, CancellationToken cancellationToken)
    {
        var command = _database.NewCommand();
        command.CommandText = "SELECT DISTINCT compartment FROM resources WHERE tenant_id = @t AND type = @ty AND id = @id AND compartment IS NOT NULL";
        command.With("t", tenantId).With("ty", TypeCodes.Of(entity.Type)).With("id", entity.Id);
        using (command)
        {
            return await _database.QueryAsync(command, async (reader, ct) =>
            {
                var list = new List<string>();
                while (await reader.ReadAsync(ct)) list.Add(reader.GetString(0));
                return list;
            }, cancellationToken);
        }
    }

    public static string AuditEventId(AuditEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return entry.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<List<AuditRow>> QueryRowsAsync(DbCommand command, long tenantId, CancellationToken cancellationToken)
    {
        using (command)
        {
            return await _database.QueryAsync(command, async (reader, ct) =>
            {
                var list = new List<AuditRow>();
                while (await reader.ReadAsync(ct)) list.Add(ReadRow(tenantId, reader));
                return list;
            }, cancellationToken);
        }
    }

    /// <summary>An entry from a row whose first columns are seq, at, action, outcome, type, principal_ix, patient_ix, sealed.</summary>
    internal static AuditRow ReadRow(long tenantId, DbDataReader reader) =>
        new(tenantId, reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetInt32(4),
            reader.GetInt64(5), reader.GetInt64(6), (byte[])reader.GetValue(7));

    private static AuditEntry Open(TenantKeys keys, AuditRow row) =>
        new(row.TenantId, row.Sequence, DateTimeOffset.FromUnixTimeMilliseconds(row.At), (AuditAction)row.Action, (AuditOutcome)row.Outcome,
            row.Type == 0 ? "" : TypeCodes.NameOf(row.Type), AuditTrail.Open(keys, row));
}
