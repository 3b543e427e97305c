// The database behind the records: SQLite (one file, WAL) or PostgreSQL, chosen by the --db value.
// Every query is written once against ADO.NET; the engines differ only in the few places below.
using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Vauban.Storage;

internal enum StorageEngine { Sqlite, Postgres }

internal abstract class StoreDatabase : IAsyncDisposable
{
    public abstract StorageEngine Engine { get; }

    /// <summary>A description safe to print: the file path, or the PostgreSQL host and database, never a password.</summary>
    public abstract string Description { get; }

    /// <summary>An error met opening or using the database, as an operator may be shown it (a PostgreSQL connection string's
    /// password must not show through the server's words).</summary>
    public virtual string Quoted(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error.Message;
    }

    /// <summary>Where this process keeps its audit journal when none is configured (ADR 0009): beside the SQLite file; for
    /// PostgreSQL, under the data folder, one folder per server and database.</summary>
    public abstract string DefaultAuditJournalDirectory { get; }

    /// <summary>The folder an earlier Vauban took by default for this store's journal, when it was named otherwise than
    /// <see cref="DefaultAuditJournalDirectory"/> (PostgreSQL's, from the description); null when it was the same. The audit
    /// trail keeps it for a store that recorded it (<see cref="Audit.AuditTrail.RecoverJournalsAsync"/>).</summary>
    public virtual string? EarlierDefaultAuditJournalDirectory => null;

    public abstract Task<DbConnection> OpenAsync(CancellationToken cancellationToken);

    /// <summary>Runs one hot single-row read with a statement prepared once per connection (SQLite re-parses
    /// every new command otherwise; PostgreSQL's driver auto-prepares, so there it is a plain query).</summary>
    public abstract Task<T?> ReadOneAsync<T>(string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object Value)[] parameters) where T : class;

    /// <summary>A command not yet bound to a connection, to be filled (text and parameters) and run by <see cref="QueryAsync"/>.</summary>
    public abstract DbCommand NewCommand();

    /// <summary>Runs a read-only query built in <paramref name="built"/> on a pooled read connection. On SQLite the
    /// statement is prepared once per connection and kept, keyed by its text (searches with the policy's filter
    /// cost more to parse than to run); on PostgreSQL the driver auto-prepares.</summary>
    public abstract Task<T> QueryAsync<T>(DbCommand built, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken cancellationToken);

    /// <summary>Starts a write transaction whose commit is durable: on disk before it returns (SQLite synchronous=FULL;
    /// PostgreSQL a synchronous commit, whatever the server's default, see <see cref="CheckDurabilityAsync"/>). On SQLite
    /// writers are serialized in-process (one writer at a time is all SQLite allows; queueing here avoids its sleep-and-retry
    /// busy loop). PostgreSQL: the transaction's opening (BEGIN, and SET LOCAL where the server's default needs it) is sent at
    /// once, and once more on a new connection when the one taken had died, so that the caller's first statement runs on a
    /// connection known alive; a unit of work that can run again from its start takes <see cref="WriteAsync{T}"/> instead.</summary>
    public abstract Task<WriteScope> BeginWriteAsync(CancellationToken cancellationToken);

    /// <summary>The write transaction <see cref="WriteAsync{T}"/> runs a unit of work in: <see cref="BeginWriteAsync"/>'s, whose
    /// opening need not be sent ahead on PostgreSQL (the whole unit runs again when its connection had died).</summary>
    private protected virtual Task<WriteScope> BeginUnitAsync(CancellationToken cancellationToken) => BeginWriteAsync(cancellationToken);

    /// <summary>Runs <paramref name="unit"/> — a write transaction's whole work, from its first statement to its commit, or to
    /// its return without one (rolled back) — in a new write transaction; and once more from its start, in another on a new
    /// connection, when its connection was found lost before COMMIT was sent (<see cref="DropConnectionsIfLost"/>, the pools'
    /// dead connections dropped first): the server then rolled the whole transaction back, so nothing of the first attempt was
    /// applied. Never after COMMIT was sent (its outcome is unknown), never on a timeout or a cancellation, never on SQLite.
    /// <paramref name="unit"/> must build every state it changes after it starts (what it reads before is only read), and must
    /// not dispose the scope. What the abandoned attempt kept for after its rollback (refusals' entries, the guard's hold) is
    /// dropped: the second attempt does the act again and keeps its own. Before, after connections closed one by one unseen
    /// (pg_terminate_backend, an idle-session timeout), a write that took one answered 503: Npgsql sends BEGIN together with a
    /// transaction's first statement, and nothing tried that round trip again.</summary>
    internal async Task<T> WriteAsync<T>(Func<WriteScope, Task<T>> unit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(unit);
        for (var again = false; ; again = true)
        {
            var scope = await BeginUnitAsync(cancellationToken);
            try
            {
                return await unit(scope);
            }
            catch (Exception e) when (!again && !scope.CommitSent && LostUnder(e))
            {
                scope.Abandon();
            }
            finally
            {
                await scope.DisposeAsync();
            }
        }
    }

    /// <summary><see cref="WriteAsync{T}"/> for a unit that answers nothing but its success.</summary>
    internal Task WriteAsync(Func<WriteScope, Task> unit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(unit);
        return WriteAsync(async scope =>
        {
            await unit(scope);
            return true;
        }, cancellationToken);
    }

    /// <summary><see cref="DropConnectionsIfLost"/> for <paramref name="error"/> or an error it wraps (the audit append's
    /// <see cref="Audit.AuditUnavailableException"/> wraps the database's).</summary>
    private bool LostUnder(Exception error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (DropConnectionsIfLost(e)) return true;
        }
        return false;
    }

    /// <summary>At open: what the engine's own settings do to durability. PostgreSQL: a server, database or role whose
    /// <c>synchronous_commit</c> is <c>off</c> acknowledges commits it can still lose if PostgreSQL crashes, so every durable
    /// transaction then sets it back on for itself; <c>fsync=off</c> cannot be undone from a session and is returned as a
    /// warning for the operator. SQLite sets its own (synchronous=FULL on every pooled connection).</summary>
    public virtual Task<IReadOnlyList<string>> CheckDurabilityAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);

    /// <summary>Brings every commit made on a <see cref="OpenLazyWriterAsync"/> connection to the disk. SQLite: an fsync of the WAL file, which holds every commit not yet checkpointed (no SQLite lock taken, so it never
    /// waits for the writer or the readers), then a passive checkpoint to keep the WAL short. PostgreSQL: a transaction that
    /// takes a transaction id commits synchronously, which flushes the WAL up to its commit record, past every asynchronous
    /// commit before it.</summary>
    public abstract Task FlushAsync(CancellationToken cancellationToken);

    /// <summary>A write connection the caller keeps open (the audit appender's), whose commits are written and visible at
    /// once but reach the disk with the next <see cref="FlushAsync"/>; the caller flushes on a schedule of its own. Its
    /// transactions begin with <see cref="BeginWriteOnAsync"/>.</summary>
    internal abstract Task<DbConnection> OpenLazyWriterAsync(CancellationToken cancellationToken);

    /// <summary>A write transaction on a connection from <see cref="OpenLazyWriterAsync"/> or <see cref="OpenBulkWriterAsync"/>
    /// (serialized with the other writers like <see cref="BeginWriteAsync"/>); disposing the scope
    /// leaves the connection open.</summary>
    internal abstract Task<WriteScope> BeginWriteOnAsync(DbConnection connection, CancellationToken cancellationToken);

    /// <summary>A connection for a short look-up that a request may make while it holds a write transaction — the key ring's
    /// recheck and load of the establishment's keys and its audit signing key, the guard's refresh of containments, the access
    /// policy's question whether a person may open a patient (asked of committed data, so not on the transaction's connection).
    /// PostgreSQL: a pool of its own, whose connections are each held for one look-up and wait for nothing else, so that such a
    /// look-up never waits behind requests that hold the main pool while they wait for it. Before, 33 transactions at once
    /// filled the pool and every one failed with 503 after the pool's 15-second timeout (black-box probe, F1); a person's 10
    /// writes at once on a pool of 4, 7 of them (review, H1).</summary>
    internal virtual Task<DbConnection> OpenLookupAsync(CancellationToken cancellationToken) => OpenAsync(cancellationToken);

    /// <summary>True when <paramref name="error"/> says that a connection to the server had died or was closed by it — the server
    /// restarted or crashed, an idle timeout or a firewall ended the session. The idle connections the pools hold died with it,
    /// so they are dropped: the next one opened is new. An operation that sent nothing on the dead connection, only a
    /// read-only statement outside a transaction, or a write transaction's whole unit of work before its COMMIT was sent
    /// (<see cref="WriteAsync{T}"/>), may then be tried once more; never a COMMIT whose outcome is unknown. SQLite: never.</summary>
    internal virtual bool DropConnectionsIfLost(Exception error) => false;

    /// <summary>Until <paramref name="cancellationToken"/> is cancelled, holds one connection that waits on the server without
    /// sending anything, so that the server closing it (a restart, a crash) is known at once, not by the next requests that
    /// take the pools' dead idle connections: the pools are then dropped, <paramref name="lost"/> is told the cause (by code,
    /// <see cref="StoreFailures"/>), and <paramref name="restored"/> how long the server was away once it answers again.
    /// Never throws. SQLite: returns at once (no server to lose).</summary>
    internal virtual Task WatchAsync(Action<string> lost, Action<TimeSpan> restored, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>A look-up that changes nothing (<paramref name="read"/> on a connection of <see cref="OpenLookupAsync"/>), run once
    /// more on a new connection when the one taken had died (<see cref="AgainIfLostAsync"/>): <paramref name="read"/> must keep
    /// what it read to itself until it returns.</summary>
    internal Task<T> LookUpAsync<T>(Func<DbConnection, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(read);
        return AgainIfLostAsync(async () =>
        {
            await using var connection = await OpenLookupAsync(cancellationToken);
            return await read(connection, cancellationToken);
        });
    }

    /// <summary>Runs <paramref name="attempt"/>, and once more when it failed because its connection had died before it was used
    /// (<see cref="DropConnectionsIfLost"/>: the pools' idle connections, dead with it, are dropped first, so the second attempt
    /// opens a new one). Only for what is safe to run twice: a read-only statement outside a transaction, or the opening of a
    /// write transaction before anything was written in it. After a PostgreSQL restart each pool's idle connections had died,
    /// and each request that took one answered 503 until all had been met once.</summary>
    private protected async Task<T> AgainIfLostAsync<T>(Func<Task<T>> attempt)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        try
        {
            return await attempt();
        }
        catch (Exception e) when (DropConnectionsIfLost(e))
        {
            return await attempt();
        }
    }

    /// <summary><see cref="QueryAsync"/> on a look-up's connection (<see cref="OpenLookupAsync"/>). SQLite: a read like any other
    /// (its readers never wait for a writer's connection).</summary>
    public virtual Task<T> QueryLookupAsync<T>(DbCommand built, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken cancellationToken) =>
        QueryAsync(built, read, cancellationToken);

    /// <summary>A write connection a bulk load (seed, import) keeps for all its batches; its commits are durable like
    /// <see cref="BeginWriteAsync"/>'s. PostgreSQL: a pooled connection.</summary>
    internal virtual Task<DbConnection> OpenBulkWriterAsync(CancellationToken cancellationToken) => OpenAsync(cancellationToken);

    /// <summary>Holds a lock on <paramref name="key"/> until the write scope commits or rolls back, for a decision that reads
    /// before it writes and that no row lock can cover (what is looked for may not exist yet). SQLite: nothing to do, writers
    /// are serialized. PostgreSQL: a transaction-level advisory lock on the key's 64-bit hash; read committed gives every
    /// statement after it a snapshot that holds what the previous holder committed.</summary>
    public async Task LockAsync(WriteScope scope, string key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scope);
        if (Engine != StorageEngine.Postgres) return;
        using var command = scope.Command("SELECT pg_advisory_xact_lock(hashtextextended(@k, 0))").With("k", key);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Reserves <paramref name="count"/> row ids for a bulk insert inside the write scope (distinct, ascending; not
    /// consecutive on PostgreSQL when other connections insert meanwhile).</summary>
    public abstract Task<long[]> ReserveRowIdsAsync(WriteScope scope, int count, CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();

    /// <summary>A read-only transaction on <paramref name="connection"/> whose statements all see the database as of one instant
    /// (SQLite: a deferred transaction, which takes no write lock; PostgreSQL: repeatable read), for a check that compares
    /// tables written together (audit verification: the chain's extent and the security records beside it).</summary>
    public async Task<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken cancellationToken) =>
        connection is Microsoft.Data.Sqlite.SqliteConnection sqlite
            ? sqlite.BeginTransaction(deferred: true)
            : await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);

    /// <summary>After a bulk load: refresh the planner's statistics so searches keep using the selective indexes.</summary>
    public async Task AnalyzeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        using var command = connection.CreateCommand();
        command.CommandText = Engine == StorageEngine.Postgres
            // A GIN pending list left long after a bulk load makes every search scan it: merge it now.
            ? "ANALYZE resources; ANALYZE idx_ref; ANALYZE idx_date; SELECT gin_clean_pending_list('resources_hashes');"
            : "PRAGMA analysis_limit=1000; PRAGMA optimize=0x10002;";
        command.CommandTimeout = 600;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The PostgreSQL indexes a bulk load leaves about half empty. Each batch appends at the end of many key ranges
    /// at once (the new patients' references, the new encounters' references, each type's new ids), and PostgreSQL splits a
    /// full page that is not the index's last one in two halves that the following inserts never fill: at a million
    /// patients these three were 5.6 GB, 3.2 GB once rebuilt (bench/README.md). SQLite's B-tree rebalances siblings.</summary>
    private static readonly string[] BulkLoadedIndexes = ["idx_ref_pkey", "resources_key", "idx_date_pkey"];

    /// <summary>After a bulk load that makes up at least half the store's resources, on PostgreSQL: rebuild the indexes it
    /// left half empty, concurrently (reads and writes go on meanwhile). False when nothing was rebuilt.</summary>
    public async Task<bool> CompactIndexesAfterLoadAsync(long loaded, CancellationToken cancellationToken)
    {
        if (Engine != StorageEngine.Postgres) return false;
        await using var connection = await OpenAsync(cancellationToken);
        using (var count = connection.Command("SELECT count(*) FROM resources"))
        {
            count.CommandTimeout = 0;
            if (loaded * 2 < await count.ScalarLongAsync(cancellationToken)) return false;
        }
        foreach (var index in BulkLoadedIndexes)
        {
            try
            {
                using var reindex = connection.Command($"REINDEX INDEX CONCURRENTLY {index}");
                reindex.CommandTimeout = 0;
                await reindex.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (NpgsqlException)
            {
                // A concurrent rebuild that fails leaves its new copy behind, invalid and unused: remove it if the
                // connection still works. The index in use is untouched, only larger than it could be; the load is done.
                try
                {
                    using var drop = connection.Command($"DROP INDEX CONCURRENTLY IF EXISTS {index}_ccnew");
                    await drop.ExecuteNonQueryAsync(cancellationToken);
                }
                catch (NpgsqlException)
                {
                    // Left for the operator: an invalid index is never used for queries.
                }
                return false;
            }
        }
        return true;
    }

    /// <summary>Drops what an interrupted concurrent rebuild left (PostgreSQL: an invalid <c>*_ccnew</c> index, never used by
    /// queries but kept up to date by every write), unless a build on its table is running now — or any build in this
    /// database whose table PostgreSQL hides (run by another role, seen without pg_read_all_stats): left for the next
    /// start rather than waited for. At open: a rebuild stopped by Ctrl-C or a lost connection leaves its copy behind.</summary>
    internal async Task DropAbandonedRebuildsAsync(CancellationToken cancellationToken)
    {
        if (Engine != StorageEngine.Postgres) return;
        var names = new List<string>();
        await using var connection = await OpenAsync(cancellationToken);
        using (var find = connection.Command("""
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i
              JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT i.indisvalid AND c.relname ~ '_ccnew[0-9]*$' AND n.nspname = current_schema()
              AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                              WHERE p.relid = i.indrelid OR (p.relid IS NULL AND p.datname = current_database()))
            """))
        await using (var reader = await find.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) names.Add(reader.GetString(0));
        }
        foreach (var name in names)
        {
            // A concurrent drop waits for every transaction using the table (a long export, pg_dump): bounded, so that a
            // start is never held up for it; the next start tries again.
            using var drop = connection.Command($"DROP INDEX CONCURRENTLY IF EXISTS {name}");
            drop.CommandTimeout = 15;
            await drop.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    public static StoreDatabase Open(string db)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(db);
        return LooksLikePostgres(db) ? new PostgresDatabase(db) : new SqliteDatabase(db);
    }

    /// <summary>Whether a --db value is a PostgreSQL connection string rather than a SQLite file path. The rule: a value holding
    /// "://" (a postgres:// or postgresql:// URI, or one typed wrong), or a value one of whose parts between ';' begins with a word and '=' (Host=…, "User Id = …", and a
    /// misspelt Hots=… alike: a keyword is letters, digits, spaces and '_'). Anything else is a SQLite path; one whose name has
    /// that shape is written with its folder (./v=1.db). Only "Host=" was recognised at first, then Npgsql's keywords only: a
    /// string whose every keyword was misspelt ("Hots=db;Pasword=…") was taken for a file path, printed with its password
    /// ("No Vauban store at …", "Store: SQLite …") and, by serve, made into a SQLite file named after it. Now it is read as
    /// a connection string, and refused as one that names no keyword of Npgsql's, never quoted.</summary>
    public static bool LooksLikePostgres(string db)
    {
        ArgumentNullException.ThrowIfNull(db);
        // Any URL (a space or a quote before postgres://, mysql://, jdbc:postgresql://…?password=…): its user and password
        // would otherwise be printed as a file path, and made into folders by serve (helper-117). Refused as a connection string
        // that cannot be read, never quoted; a SQLite path is a path.
        if (db.Contains("://", StringComparison.Ordinal)) return true;
        foreach (var part in db.Split(';'))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0 && IsKeywordShaped(part.AsSpan(0, equals).Trim())) return true;
        }
        return false;
    }

    /// <summary>A word as a connection string's keywords are: a letter, then letters, digits, spaces or '_' ("Host", "User Id",
    /// "Trust Server Certificate"); never a path's '/', '.', '\' or '-'.</summary>
    private static bool IsKeywordShaped(ReadOnlySpan<char> key)
    {
        if (key.IsEmpty || !char.IsAsciiLetter(key[0])) return false;
        foreach (var c in key)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not (' ' or '_')) return false;
        }
        return true;
    }
}

internal sealed class WriteScope : IAsyncDisposable
{
    private readonly SemaphoreSlim? _gate;
    private bool _completed;

    private readonly bool _ownsConnection;

    public WriteScope(DbConnection connection, DbTransaction transaction, SemaphoreSlim? gate, bool ownsConnection = true)
    {
        Connection = connection;
        Transaction = transaction;
        _gate = gate;
        _ownsConnection = ownsConnection;
    }

    public DbConnection Connection { get; }
    public DbTransaction Transaction { get; }

    public DbCommand Command(string sql)
    {
        var command = Connection.CreateCommand();
        command.Transaction = Transaction;
        command.CommandText = sql;
        return command;
    }

    /// <summary>Audit entries of this transaction's acts, appended to the chain just before it commits (atomic with
    /// the write, and after every row lock the write takes, so appenders never wait on each other in a cycle).</summary>
    public Audit.PendingAudit? Audit { get; set; }

    /// <summary>The security records this transaction writes are not put on the chain (the guard's containment when the chain cannot
    /// be written: kept rather than lost; verification then reports them as added, which is the truth).</summary>
    public bool SecurityRecordsOffChain { get; set; }

    /// <summary>Entries on other establishments' chains, for the one act that concerns them all (the master key's rotation),
    /// appended with <see cref="Audit"/>, in ascending tenant id (<see cref="ChainsInLockOrder"/>), whatever the order they were added in.</summary>
    public List<Audit.PendingAudit> OtherChains { get; } = [];

    /// <summary>Entries that must be kept even when the transaction rolls back (refusals, failures): appended once
    /// the transaction has ended and the writer slot is free, before the caller's result goes out.</summary>
    public List<Func<Task>> AfterRollback { get; } = [];

    /// <summary>How long the guard holds back the principal whose act this transaction does (its slow level): waited once the
    /// transaction has ended and the writer slot is free, before the caller's result goes out — never while every other write
    /// of the server waits behind this one.</summary>
    public TimeSpan HeldBack { get; set; }

    /// <summary>What is told once the transaction has committed (an alert written to the server's log): never for a rolled-back one.</summary>
    public List<Action> AfterCommit { get; } = [];

    /// <summary>What this transaction's acts counted in the server's memory that the same acts done again would count a second time
    /// (the guard's sums: search results, hours of activity), each the way to take its count back: run when the transaction is
    /// abandoned (<see cref="Abandon"/>), never once it ends otherwise.</summary>
    public List<Action> TakenBackIfAbandoned { get; } = [];

    /// <summary>This transaction's connection was lost before its commit and its unit of work runs again in another
    /// (<see cref="StoreDatabase.WriteAsync{T}"/>): what it kept for after its rollback is dropped, since the next attempt, doing
    /// the act again, keeps its own (a refusal then goes on the chain once, and the guard holds the principal back once); what it
    /// counted in memory is taken back, since the next attempt counts it again (a transaction Bundle's search results once, not
    /// twice, towards the guard's level).</summary>
    internal void Abandon()
    {
        AfterRollback.Clear();
        HeldBack = TimeSpan.Zero;
        for (var i = TakenBackIfAbandoned.Count - 1; i >= 0; i--) TakenBackIfAbandoned[i]();
        TakenBackIfAbandoned.Clear();
        _abandoned = true;
    }

    private bool _abandoned;

    public async Task CommitAsync(CancellationToken cancellationToken)
    {
        foreach (var chain in ChainsInLockOrder()) await chain.FlushAsync(this, cancellationToken);
        CommitSent = true;
        await Transaction.CommitAsync(cancellationToken);
        _completed = true;
        foreach (var told in AfterCommit)
        {
            // Committed: a listener's failure (the log) must not make the caller take the commit for a failure.
            try { told(); }
            catch (Exception) { }
        }
    }

    /// <summary>The chains this transaction appends to, in the one order every transaction locks chain heads in: ascending tenant
    /// id. Two transactions that each lock several heads (a rotation's entries on every chain, the appender's group commit of
    /// several establishments) then never wait for each other in a cycle: PostgreSQL would break that deadlock by failing one.</summary>
    internal IEnumerable<Audit.PendingAudit> ChainsInLockOrder() =>
        (Audit is { } audit ? OtherChains.Append(audit) : OtherChains).OrderBy(chain => chain.TenantId);

    /// <summary>Set just before COMMIT is sent. A failure from then on (the connection lost or a timeout while the commit is in
    /// flight, a cancellation) leaves the outcome unknown: the database may apply the commit after a read on another connection
    /// has seen the state before it. Only a failure while this is false proves the transaction changed nothing.</summary>
    public bool CommitSent { get; private set; }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_completed)
            {
                try { await Transaction.RollbackAsync(); }
                catch (InvalidOperationException) { /* already rolled back by a failed statement */ }
                catch (Exception) when (CommitSent || _abandoned)
                {
                    // A commit whose outcome is the server's (the connection lost under it): nothing to roll back from here, and
                    // the commit's own failure, not this one, is what the caller must see. A transaction whose connection was
                    // lost before its commit: the server rolled it back, and its unit runs again.
                }
            }
            await Transaction.DisposeAsync();
            if (_ownsConnection) await Connection.DisposeAsync();
        }
        finally
        {
            _gate?.Release();
        }
        if (!_completed)
        {
            foreach (var append in AfterRollback) await append();
        }
        if (HeldBack > TimeSpan.Zero) await Task.Delay(HeldBack);
    }
}

internal sealed class SqliteDatabase : StoreDatabase
{
    /// <summary>SQLite's code and its own words (<see cref="StoreFailures.SqliteWords"/>): "SQLite error 5 (database locked by another
    /// process)", as the command line names every database error.</summary>
    public override string Quoted(Exception error) =>
        error is Microsoft.Data.Sqlite.SqliteException sqlite ? StoreFailures.SqliteWords(sqlite) : base.Quoted(error);

    private readonly string _connectionString;
    private readonly string _path;
    private readonly SemaphoreSlim _writeGate = new(1, 1);

    public SqliteDatabase(string path)
    {
        NativeHeap.KeepFreedMemory();
        var full = _path = Path.GetFullPath(path);
        RefuseFolder(full);
        var directory = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        // Before anything opens it for writing: the first read-write open rolls back a hot journal, and the WAL switch below
        // writes the file's header.
        RefuseNotAStore(full);
        CreateOwnerOnly(full);
        Description = $"SQLite {full}";
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();

        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        // WAL: readers never block the writer; the setting is stored in the file.
        command.CommandText = "PRAGMA journal_mode=WAL;";
        command.ExecuteNonQuery();
    }

    /// <summary>A folder given as the store ("The file '…' already exists", from creating the file, said nothing useful).</summary>
    internal static void RefuseFolder(string full)
    {
        if (FolderProblem(full) is { } problem) throw new VaubanConfigurationException(problem);
    }

    internal static string? FolderProblem(string full) =>
        Directory.Exists(full) ? $"{full} is a folder: the store is a SQLite file, for example {Path.Combine(full, "vauban.db")}." : null;

    /// <summary>Whether the file at <paramref name="path"/> is a Vauban store, read without changing it: a SQLite database holding
    /// Vauban's schema_version table. An empty file (a mistyped `touch`, a truncated copy) or another application's SQLite
    /// database is not one — opened, it was given the whole schema, and `audit verify` on a truncated backup said "nothing to
    /// verify". A file that is not a SQLite database at all counts, so that opening it says what is wrong with it.</summary>
    public static bool HoldsStore(string path) => Inspect(path) is SqliteFileContent.Store or SqliteFileContent.Unreadable;

    /// <summary>What the file at <paramref name="path"/> holds, read without changing it (a read-only connection, which never
    /// rolls back a hot journal).</summary>
    public static SqliteFileContent Inspect(string path)
    {
        var full = Path.GetFullPath(path);
        RefuseFolder(full);
        var file = new FileInfo(full);
        try
        {
            if (IsUnfinishedNewFile(full)) return SqliteFileContent.UnfinishedCopy;
            if (!file.Exists || file.Length == 0) return SqliteFileContent.Nothing;
            if (!IsSqliteFile(file)) return SqliteFileContent.Unreadable;
            using var connection = ReadOnly(full);
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT count(*), coalesce(sum(type = 'table' AND name = 'schema_version'), 0) FROM sqlite_schema";
            using var reader = command.ExecuteReader();
            reader.Read();
            return reader.GetInt64(1) > 0 ? SqliteFileContent.Store : reader.GetInt64(0) > 0 ? SqliteFileContent.Foreign : SqliteFileContent.Nothing;
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            return SqliteFileContent.Unreadable; // unreadable here (a hot journal over an older content, no access): the opening says why
        }
    }

    /// <summary>A connection (not yet open) that reads the file at <paramref name="full"/> without changing it: read-only, which
    /// never rolls back a hot journal, and outside the pool.</summary>
    internal static SqliteConnection ReadOnly(string full) =>
        new(new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());

    /// <summary>Refuses, untouched, a file that must not be opened as a store by any verb: another application's database, or a
    /// new file whose writing was interrupted.</summary>
    internal static void RefuseNotAStore(string full)
    {
        switch (Inspect(full))
        {
            case SqliteFileContent.Foreign: throw new VaubanConfigurationException(NotAStore(full));
            case SqliteFileContent.UnfinishedCopy: throw new VaubanConfigurationException(UnfinishedCopy(full));
        }
    }

    internal static string NotAStore(string full) =>
        $"{full} is not a Vauban store: it is a SQLite database with tables of its own and no Vauban schema (another application's?). "
        + "Nothing was written to it. Check the store's path; a new store is made in a new or empty file.";

    private static string UnfinishedCopy(string full) =>
        $"{full} is not a store but an unfinished copy: its hot journal {full}-journal shows that it was being written as a new file, and the "
        + "writing was interrupted (a `vauban backup` of an earlier version killed while copying leaves this). Opening it would empty it: it was "
        + "not opened. Delete it and its -journal.";

    private static ReadOnlySpan<byte> JournalMagic => [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

    /// <summary>Whether <paramref name="full"/> has a rollback journal beside it whose header says the database was empty when the
    /// interrupted write began (the database's size in pages before it, at offset 16 of SQLite's journal header, is 0): opened
    /// for writing, SQLite would roll it back to an empty file, and the store's opening would make a new store in it. A copy
    /// made by VACUUM INTO into a new file and killed leaves this. A Vauban store, in WAL mode, has no rollback journal.</summary>
    private static bool IsUnfinishedNewFile(string full)
    {
        var journal = new FileInfo(full + "-journal");
        if (!journal.Exists || journal.Length < 28) return false;
        using var stream = journal.OpenRead();
        Span<byte> header = stackalloc byte[28];
        return stream.ReadAtLeast(header, 28, throwOnEndOfStream: false) == 28 && header[..8].SequenceEqual(JournalMagic)
            && System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(header[16..20]) == 0;
    }

    /// <summary>Whether <paramref name="file"/> begins with SQLite's 16-byte header. Throws when it cannot be read.</summary>
    public static bool IsSqliteFile(FileInfo file)
    {
        using var stream = file.OpenRead();
        Span<byte> header = stackalloc byte[16];
        return stream.ReadAtLeast(header, 16, throwOnEndOfStream: false) == 16 && header.SequenceEqual("SQLite format 3\0"u8);
    }

    /// <summary>A new store file is readable by its owner only, like the master key file and the audit journal (SQLite gives
    /// its -wal and -shm files the mode of the database file). Besides sealed records it holds what is stored in clear —
    /// references between records, dates of care, the staff's password hashes, open to offline guessing —, and SQLite would
    /// create it readable by every local account (0644 under the usual umask). An existing file keeps its mode.</summary>
    /// <param name="mustBeNew">A backup's file: an existing one is refused (IOException), never taken over.</param>
    private static void CreateOwnerOnly(string path, bool mustBeNew = false)
    {
        if (!mustBeNew && (OperatingSystem.IsWindows() || File.Exists(path))) return;
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var created = new FileStream(path, create);
        }
        catch (IOException) when (!mustBeNew && File.Exists(path))
        {
            // Another process starting on the same new store made it first, with the same mode.
        }
    }

    /// <summary>
    /// A consistent copy of the store written to <paramref name="target"/>, a new file (refused if it exists), readable by its
    /// owner only as the store is: SQLite's <c>VACUUM INTO</c> from a read transaction, so writers go on meanwhile and the copy
    /// is the store as it was when the copy began, compacted. The copy is written under a temporary name beside the target
    /// (<see cref="PartialSuffix"/>), flushed to disk, checked (<c>quick_check</c>, and that it holds a store), and only then
    /// renamed to the target: the target's name never holds a partial copy. Written under its own name, a copy killed midway
    /// (VACUUM INTO leaves a file and its hot journal) was opened later as the backup: SQLite rolled it back to an empty file
    /// and Vauban made a new store in it, on which `audit verify` said "nothing to verify". A copy that fails is removed.
    /// Returns its size in bytes.
    /// </summary>
    /// <param name="written">Tests: run with the temporary file's path once it is written and checked, before it is renamed.</param>
    internal async Task<long> CopyToAsync(string target, CancellationToken cancellationToken, Func<string, CancellationToken, Task>? written = null)
    {
        var full = Path.GetFullPath(target);
        if (File.Exists(full)) throw new IOException($"{full} already exists: a backup is written to a new file, never over another.");
        var partial = full + PartialSuffix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        // Created empty first, owner-only (VACUUM INTO writes into an empty file and keeps its mode).
        CreateOwnerOnly(partial, mustBeNew: true);
        try
        {
            await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 30 }.ToString()))
            {
                await connection.OpenAsync(cancellationToken);
                await using var vacuum = connection.CreateCommand();
                vacuum.CommandText = "VACUUM INTO $target";
                vacuum.Parameters.AddWithValue("$target", partial);
                vacuum.CommandTimeout = 0;
                await vacuum.ExecuteNonQueryAsync(cancellationToken);
            }
            // VACUUM INTO does not sync what it wrote: a backup that a power loss can leave half-written is no backup.
            using (var copied = new FileStream(partial, FileMode.Open, FileAccess.ReadWrite)) copied.Flush(flushToDisk: true);
            await using (var copy = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = partial, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString()))
            {
                await copy.OpenAsync(cancellationToken);
                await using var check = copy.CreateCommand();
                check.CommandText = "PRAGMA quick_check";
                check.CommandTimeout = 0;
                var verdict = Convert.ToString(await check.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
                if (!string.Equals(verdict, "ok", StringComparison.Ordinal)) throw new IOException($"The copy written to {partial} failed SQLite's check ({verdict}).");
            }
            if (!HoldsStore(partial)) throw new IOException($"The copy written to {partial} holds no Vauban store.");
            if (written is not null) await written(partial, cancellationToken);
            // Not over a file that appeared meanwhile (a backup never overwrites another): File.Move refuses an existing target.
            File.Move(partial, full, overwrite: false);
        }
        catch
        {
            File.Delete(partial);
            File.Delete(partial + "-journal");
            throw;
        }
        // The folder, whose entries name the copy: without it a power loss just after "checked" can lose the rename.
        DirectorySync.Sync(Path.GetDirectoryName(full)!);
        return new FileInfo(full).Length;
    }

    /// <summary>What follows a backup's name in the name of the file it is written to before it is whole and checked, then a
    /// random part (copy.db.partial-3f09a1c2). Such a file left behind is a backup that was interrupted (the process killed,
    /// the machine stopped): never a backup, to be deleted.</summary>
    public const string PartialSuffix = ".partial-";

    /// <summary>The store's file, in full.</summary>
    public string FilePath => _path;

    public override StorageEngine Engine => StorageEngine.Sqlite;
    public override string Description { get; }
    public override string DefaultAuditJournalDirectory => _path + "-audit";

    public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        // Pooled connections keep their settings: configure each underlying SQLite handle once, not per request.
        if (connection.Handle is { } handle && !_configured.TryGetValue(handle, out _))
        {
            using var command = connection.CreateCommand();
            // synchronous=FULL: an acknowledged commit survives power loss, not only a process crash (invariant 8).
            // A small page cache (2 MiB): any commit by another connection (the audit appender's, about every
            // millisecond under load) empties it at this connection's next transaction, and SQLite empties it by
            // walking every hash slot it ever grew; with 32 MiB that walk alone cost ~3 µs a read and the audited
            // read was 5-10 % slower (bench/README.md). The operating system's page cache holds the file either way.
            command.CommandText = "PRAGMA synchronous=FULL; PRAGMA cache_size=-2048; PRAGMA mmap_size=0; PRAGMA temp_store=MEMORY;";
            await command.ExecuteNonQueryAsync(cancellationToken);
            _configured.AddOrUpdate(handle, Configured);
        }
        return connection;
    }

    private readonly System.Collections.Concurrent.ConcurrentBag<ReadSession> _readSessions = [];

    /// <summary>An open read connection with its prepared statements, kept for reuse.</summary>
    private sealed class ReadSession(SqliteConnection connection) : IDisposable
    {
        public SqliteConnection Connection { get; } = connection;
        public Dictionary<string, SqliteCommand> Commands { get; } = new(StringComparer.Ordinal);

        public void Dispose()
        {
            foreach (var command in Commands.Values) command.Dispose();
            Connection.Dispose();
        }
    }

    /// <summary>The idle read connections, whose statements stay prepared between reads (tests inspect them, with no
    /// request running: a request may take one of these connections back meanwhile).</summary>
    internal IReadOnlyList<SqliteConnection> IdleReadConnections() => [.. _readSessions.Select(s => s.Connection)];

    /// <summary>At most this many reads run at once. A WAL reader pins one of SQLite's few read marks (WAL_NREADER - 1 = 4 for
    /// readers of recent commits); with more readers than marks while commits keep arriving (the audit appender's, every
    /// millisecond or so), a reader that finds none free retries and then sleeps inside sqlite3 — on a thread-pool thread,
    /// which the pool answers by adding threads. Measured before this gate: 64 in-process readers beside the appender grew
    /// the pool to 34 threads and each read waited tens of milliseconds. Two cores are busy with four readers anyway.</summary>
    private const int ReadConcurrency = 4;
    private readonly SemaphoreSlim _readGate = new(ReadConcurrency, ReadConcurrency);

    public override async Task<T?> ReadOneAsync<T>(string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object Value)[] parameters) where T : class
    {
        await _readGate.WaitAsync(cancellationToken);
        try
        {
            return await ReadOneCoreAsync(sql, read, parameters, cancellationToken);
        }
        finally
        {
            _readGate.Release();
        }
    }

    private async Task<T?> ReadOneCoreAsync<T>(string sql, Func<DbDataReader, T> read, (string Name, object Value)[] parameters, CancellationToken cancellationToken) where T : class
    {
        if (!_readSessions.TryTake(out var session))
        {
            session = new ReadSession((SqliteConnection)await OpenAsync(cancellationToken));
        }
        var healthy = false;
        try
        {
            if (!session.Commands.TryGetValue(sql, out var command))
            {
                command = session.Connection.CreateCommand();
                command.CommandText = sql;
                foreach (var (name, _) in parameters) command.Parameters.Add(new SqliteParameter { ParameterName = "@" + name });
                command.Prepare();
                session.Commands[sql] = command;
            }
            for (var i = 0; i < parameters.Length; i++) command.Parameters[i].Value = parameters[i].Value;
            T? result;
            using (var reader = command.ExecuteReader())
            {
                result = reader.Read() ? read(reader) : null;
            }
            healthy = true;
            return result;
        }
        finally
        {
            if (healthy && _readSessions.Count < 64) _readSessions.Add(session);
            else session.Dispose();
        }
    }

    public override DbCommand NewCommand() => new SqliteCommand();

    public override async Task<T> QueryAsync<T>(DbCommand built, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        await _readGate.WaitAsync(cancellationToken);
        try
        {
            return await QueryCoreAsync(built, read, cancellationToken);
        }
        finally
        {
            _readGate.Release();
        }
    }

    private async Task<T> QueryCoreAsync<T>(DbCommand built, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        if (!_readSessions.TryTake(out var session))
        {
            session = new ReadSession((SqliteConnection)await OpenAsync(cancellationToken));
        }
        var healthy = false;
        try
        {
            if (!session.Commands.TryGetValue(built.CommandText, out var command))
            {
                if (session.Commands.Count >= 256)
                {
                    foreach (var old in session.Commands.Values) old.Dispose();
                    session.Commands.Clear();
                }
                command = session.Connection.CreateCommand();
                command.CommandText = built.CommandText;
                foreach (DbParameter parameter in built.Parameters) command.Parameters.Add(new SqliteParameter(parameter.ParameterName, parameter.Value));
                command.Prepare();
                session.Commands[built.CommandText] = command;
            }
            else
            {
                // The same text was built by the same code: the same parameters, by name.
                foreach (DbParameter parameter in built.Parameters) command.Parameters[parameter.ParameterName].Value = parameter.Value;
            }
            T result;
            using (var reader = command.ExecuteReader())
            {
                result = await read(reader, cancellationToken);
            }
            healthy = true;
            return result;
        }
        finally
        {
            if (healthy && _readSessions.Count < 64) _readSessions.Add(session);
            else session.Dispose();
        }
    }

    private static readonly object Configured = new();
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> _configured = new();

    public override async Task<WriteScope> BeginWriteAsync(CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            var connection = await OpenAsync(cancellationToken);
            var transaction = ((SqliteConnection)connection).BeginTransaction(deferred: false);
            return new WriteScope(connection, transaction, _writeGate);
        }
        catch
        {
            _writeGate.Release();
            throw;
        }
    }

    // Not pooled: its settings never reach another writer. No automatic checkpoint: a commit never stops to copy the WAL
    // into the database; the owner's FlushAsync (a WAL fsync and a passive checkpoint) does, off its commit path.
    internal override Task<DbConnection> OpenLazyWriterAsync(CancellationToken cancellationToken) =>
        OpenOwnAsync("PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;", cancellationToken);

    // Not pooled: a pooled connection would hand its large cache to every later reader, so it had to be grown and
    // given back with every batch (allocation, page faults and zeroing were ~10 % of a seed). A batch of a bulk load
    // touches index pages all over the trees (blind indexes are random by design), and the WAL is copied into the
    // database once per GiB instead of after every commit, so a page changed by several batches is copied once, not
    // once per batch (bench/README.md). The WAL file is cut back to 64 MiB when it starts again.
    internal override Task<DbConnection> OpenBulkWriterAsync(CancellationToken cancellationToken) =>
        OpenOwnAsync("PRAGMA synchronous=FULL; PRAGMA cache_size=-524288; PRAGMA wal_autocheckpoint=262144; PRAGMA journal_size_limit=67108864; PRAGMA temp_store=MEMORY;", cancellationToken);

    /// <summary>A connection outside the pool, set up by <paramref name="pragmas"/>, for a caller that keeps it.</summary>
    private async Task<DbConnection> OpenOwnAsync(string pragmas, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder(_connectionString) { Pooling = false }.ToString());
        await connection.OpenAsync(cancellationToken);
        try
        {
            using var command = connection.CreateCommand();
            command.CommandText = pragmas;
            await command.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        // A passive checkpoint alone is not enough: it syncs the WAL only when it can copy frames, and readers pinning
        // older frames can stop it from copying any.
        try
        {
            using var wal = File.OpenHandle(_path + "-wal", FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            RandomAccess.FlushToDisk(wal);
        }
        catch (FileNotFoundException)
        {
            // No WAL: every commit is already in the database file.
        }
        await using var connection = await OpenAsync(cancellationToken);
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    internal override async Task<WriteScope> BeginWriteOnAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            var transaction = ((SqliteConnection)connection).BeginTransaction(deferred: false);
            return new WriteScope(connection, transaction, _writeGate, ownsConnection: false);
        }
        catch
        {
            _writeGate.Release();
            throw;
        }
    }

    public override async Task<long[]> ReserveRowIdsAsync(WriteScope scope, int count, CancellationToken cancellationToken)
    {
        // Inside BEGIN IMMEDIATE no other writer can run, so max(rid)+1 and the ids after it are ours.
        using var command = scope.Command("SELECT coalesce(max(rid), 0) + 1 FROM resources");
        var first = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        var ids = new long[count];
        for (var i = 0; i < count; i++) ids[i] = first + i;
        return ids;
    }

    public override ValueTask DisposeAsync()
    {
        while (_readSessions.TryTake(out var session)) session.Dispose();
        SqliteConnection.ClearAllPools();
        _writeGate.Dispose();
        return ValueTask.CompletedTask;
    }
}

internal sealed class PostgresDatabase : StoreDatabase
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlDataSource _lazyDataSource; // the audit appender's: sessions with synchronous_commit=off

    public PostgresDatabase(string connectionString)
    {
        var builder = Read(connectionString, out var problem) ?? throw new VaubanConfigurationException(problem!);
        builder.IncludeErrorDetail = false; // error details may quote row values
        if (builder.MaxPoolSize == 100) builder.MaxPoolSize = 32;
        // The same few statements run all day: let Npgsql prepare them server-side after first use.
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 64;
        var (host, port, database, user, partsAfterPassword) = Shown(connectionString, builder);
        Description = $"PostgreSQL {host}:{port}/{database}";
        _partsAfterPassword = partsAfterPassword;
        var journals = Path.Combine(VaubanStore.DefaultDataDirectory, "audit-journal");
        DefaultAuditJournalDirectory = Path.Combine(journals, JournalFolder(builder, $"{host}-{port}-{database}-{user}"));
        EarlierDefaultAuditJournalDirectory = Path.Combine(journals, FolderName($"{host}-{port}-{database}"));
        // Nothing sets session state on a pooled connection (transactions use SET LOCAL; the lazy writers' setting is a
        // startup option of a pool of their own), so a connection going back to the pool is not reset: that reset
        // (RESET ALL, DISCARD …) was sent with the next statement of every read, and cost the server a parse and ~0.07 ms each time.
        builder.NoResetOnClose = true;
        _dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        var lazy = new NpgsqlConnectionStringBuilder(builder.ConnectionString)
        {
            Options = string.IsNullOrWhiteSpace(builder.Options) ? "-c synchronous_commit=off" : builder.Options + " -c synchronous_commit=off",
            MinPoolSize = 0,
            MaxPoolSize = 4,
        };
        _lazyDataSource = NpgsqlDataSource.Create(lazy.ConnectionString);
        _lookupDataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(builder.ConnectionString) { MinPoolSize = 0, MaxPoolSize = LookupPoolSize }.ConnectionString);
        _watchDataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(builder.ConnectionString)
        {
            Pooling = false,
            // Named in pg_stat_activity: the one session of a serving Vauban that stays idle on purpose.
            ApplicationName = string.IsNullOrEmpty(builder.ApplicationName) ? "Vauban connection watch" : builder.ApplicationName + " (connection watch)",
            // A server gone without closing the session (its machine down, a network cut) is found by a keepalive query.
            KeepAlive = WatchKeepAliveSeconds,
        }.ConnectionString);
    }

    private const int WatchKeepAliveSeconds = 10;

    /// <summary>How long the watch waits before it tries again to reach a server that is away.</summary>
    private static readonly TimeSpan WatchRetryDelay = TimeSpan.FromMilliseconds(250);

    private readonly NpgsqlDataSource _watchDataSource;

    internal override async Task WatchAsync(Action<string> lost, Action<TimeSpan> restored, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lost);
        ArgumentNullException.ThrowIfNull(restored);
        System.Diagnostics.Stopwatch? away = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _watchDataSource.OpenConnectionAsync(cancellationToken);
                if (away is not null)
                {
                    restored(away.Elapsed);
                    away = null;
                }
                // Nothing is sent (keepalives aside) and no notification is listened for: the wait ends when the server closes the
                // session — a fast or immediate stop, a crash — or the socket fails.
                while (true) await connection.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return; // the store closed
            }
            catch (Exception e) when (e is DbException or IOException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException)
            {
                if (away is null)
                {
                    // Every idle connection of the pools died with this one: dropped now, before the server is back, so that
                    // the first requests after it open new ones.
                    DropConnections();
                    away = System.Diagnostics.Stopwatch.StartNew();
                    lost(StoreFailures.UnavailableCause(e) ?? "the connection failed (" + e.GetType().Name + ")");
                }
            }
            try
            {
                await Task.Delay(WatchRetryDelay, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private readonly bool _partsAfterPassword;

    /// <summary>The default journal folder's name: the store's identity as Npgsql connects to it — host(s), port, database and
    /// user, never the password —, as <paramref name="shown"/> states it. A value given only after an unquoted Password= (the
    /// password's end, perhaps) is '…' there, '_' in the name, and the name then ends with a digest of the identity as read:
    /// named from the description alone, two stores written so shared "host-5432-_", a name that no longer said which store.</summary>
    private static string JournalFolder(NpgsqlConnectionStringBuilder builder, string shown)
    {
        if (!shown.Contains('…', StringComparison.Ordinal)) return FolderName(shown);
        var identity = string.Join('\n', builder.Host, builder.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), builder.Database, builder.Username);
        return FolderName(shown) + "-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(identity)))[..16];
    }

    private static string FolderName(string text) => string.Concat(text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' ? c : '_'));

    /// <summary>What Npgsql or the server said, unless the connection string has parts after its password: their words may then
    /// quote one of them (database "…" does not exist, role "…", unrecognized configuration parameter "…"), which may be the
    /// password's end. Then only the SQL state or the kind of failure is said.</summary>
    public override string Quoted(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (!_partsAfterPassword) return error.Message;
        string? cause = null;
        for (var e = error; e is not null && cause is null; e = e.InnerException)
        {
            cause = e switch
            {
                PostgresException postgres => $"PostgreSQL SQL state {postgres.SqlState}{(StoreFailures.PostgresStates.TryGetValue(postgres.SqlState, out var name) ? $" ({name})" : "")}",
                System.Net.Sockets.SocketException socket => $"the server cannot be reached ({socket.SocketErrorCode})",
                TimeoutException => "the server did not answer in time",
                _ => null,
            };
        }
        return $"{cause ?? error.GetType().Name}; the server's own words are not shown, since they may quote what follows Password= (put Password= last to see them)";
    }

    /// <summary>The look-ups' pool (<see cref="OpenLookupAsync"/>): each is one indexed query, so a few connections serve many requests.</summary>
    private const int LookupPoolSize = 8;

    private readonly NpgsqlDataSource _lookupDataSource;

    internal override async Task<DbConnection> OpenLookupAsync(CancellationToken cancellationToken) =>
        await _lookupDataSource.OpenConnectionAsync(cancellationToken);

    public override Task<T> QueryLookupAsync<T>(DbCommand built, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken cancellationToken) =>
        QueryOnAsync(_lookupDataSource, built, read, cancellationToken);

    /// <summary>A read-only query on a connection of <paramref name="pool"/>, run once more on a new connection when the one taken
    /// had died before it answered (<see cref="AgainIfLostAsync"/>); the rows are read once, after it answered.</summary>
    private async Task<T> QueryOnAsync<T>(NpgsqlDataSource pool, DbCommand built, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        var (connection, reader) = await AgainIfLostAsync(async () =>
        {
            var connection = await pool.OpenConnectionAsync(cancellationToken);
            try
            {
                built.Connection = connection;
                return (connection, await built.ExecuteReaderAsync(cancellationToken));
            }
            catch
            {
                await connection.DisposeAsync();
                throw;
            }
        });
        await using (connection)
        await using (reader)
        {
            return await read(reader, cancellationToken);
        }
    }

    /// <summary>The server closed the session (shut down, crashed, an idle session timed out), or the socket failed under Npgsql;
    /// not a timeout (the server may be busy, and a second attempt would double the wait).</summary>
    private static bool IsLost(Exception error) => error switch
    {
        // 57P01 admin_shutdown (a fast or immediate stop, pg_terminate_backend), 57P02 crash_shutdown, 57P05 idle_session_timeout.
        PostgresException postgres => postgres.SqlState is "57P01" or "57P02" or "57P05",
        NpgsqlException { InnerException: IOException or System.Net.Sockets.SocketException } => true,
        _ => false,
    };

    /// <summary>Npgsql drops a pool's idle connections itself only on some failures, and only that pool's (the main, the look-ups'
    /// and the audit appender's are three); a connection in use is closed when it is given back.</summary>
    private void DropConnections()
    {
        _dataSource.Clear();
        _lookupDataSource.Clear();
        _lazyDataSource.Clear();
    }

    internal override bool DropConnectionsIfLost(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (!IsLost(error)) return false;
        DropConnections();
        return true;
    }

    public override StorageEngine Engine => StorageEngine.Postgres;
    public override string Description { get; }
    public override string DefaultAuditJournalDirectory { get; }
    public override string EarlierDefaultAuditJournalDirectory { get; }

    public override async Task<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        await _dataSource.OpenConnectionAsync(cancellationToken);

    public override async Task<T?> ReadOneAsync<T>(string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object Value)[] parameters) where T : class
    {
        await using var command = _dataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters) command.Parameters.Add(new NpgsqlParameter(name, value));
        await using var reader = await AgainIfLostAsync(() => command.ExecuteReaderAsync(cancellationToken));
        return await reader.ReadAsync(cancellationToken) ? read(reader) : null;
    }

    public override DbCommand NewCommand() => new NpgsqlCommand();

    public override Task<T> QueryAsync<T>(DbCommand built, Func<DbDataReader, CancellationToken, Task<T>> read, CancellationToken cancellationToken) =>
        QueryOnAsync(_dataSource, built, read, cancellationToken);

    // Npgsql sends BEGIN with the transaction's first statement: that round trip is sent here, so that a dead connection is met
    // (and replaced) before the caller writes anything; a unit of work (WriteAsync) leaves it to its first statement, and runs
    // whole once more instead.
    public override Task<WriteScope> BeginWriteAsync(CancellationToken cancellationToken) => AgainIfLostAsync(() => BeginWriteOnceAsync(opened: true, cancellationToken));

    // Here BEGIN goes out only when its commit must be made durable (SET LOCAL).
    private protected override Task<WriteScope> BeginUnitAsync(CancellationToken cancellationToken) => AgainIfLostAsync(() => BeginWriteOnceAsync(opened: false, cancellationToken));

    private async Task<WriteScope> BeginWriteOnceAsync(bool opened, CancellationToken cancellationToken)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
            if (!await MakeDurableAsync(connection, transaction, cancellationToken) && opened)
            {
                await using var begin = new NpgsqlCommand("SELECT 1", connection, transaction);
                await begin.ExecuteNonQueryAsync(cancellationToken);
            }
            return new WriteScope(connection, transaction, gate: null);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    // synchronous_commit=off is the session's startup setting in this pool only: no other connection ever has it.
    internal override async Task<DbConnection> OpenLazyWriterAsync(CancellationToken cancellationToken)
    {
        var connection = await _lazyDataSource.OpenConnectionAsync(cancellationToken);
        _lazyWriters.AddOrUpdate(connection, Lazy);
        return connection;
    }

    private static readonly object Lazy = new();
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<DbConnection, object> _lazyWriters = new();

    // Set at open when the server, database or role defaults to synchronous_commit=off (CheckDurabilityAsync).
    private volatile bool _forceSynchronousCommit;

    public override async Task<IReadOnlyList<string>> CheckDurabilityAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT current_setting('synchronous_commit'), current_setting('fsync')", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var synchronousCommit = reader.GetString(0);
        var fsync = reader.GetString(1);
        // local, remote_write, on and remote_apply all flush the commit record to this server's disk before answering.
        _forceSynchronousCommit = synchronousCommit == "off";
        return fsync == "off"
            ? ["PostgreSQL runs with fsync=off: an operating-system crash or a power loss can lose or corrupt committed records and audit entries. Turn it on in postgresql.conf for any store that holds real patients."]
            : [];
    }

    /// <summary>A durable transaction on a server whose default is synchronous_commit=off sets it on for itself (SET LOCAL:
    /// nothing stays on the pooled connection), so that its commit is flushed before it is acknowledged.</summary>
    /// <returns>Whether it did, sending the transaction's BEGIN with it.</returns>
    private async Task<bool> MakeDurableAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        if (!_forceSynchronousCommit) return false;
        await using var command = new NpgsqlCommand("SET LOCAL synchronous_commit TO on", connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return true;
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand("BEGIN; SET LOCAL synchronous_commit TO on; SELECT pg_current_xact_id(); COMMIT;", connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    internal override async Task<WriteScope> BeginWriteOnAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var npgsql = (NpgsqlConnection)connection;
        var transaction = await npgsql.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
        try
        {
            // A bulk load's connection commits durably; the audit appender's (a lazy writer) is flushed by its owner.
            if (!_lazyWriters.TryGetValue(connection, out _)) await MakeDurableAsync(npgsql, transaction, cancellationToken);
        }
        catch
        {
            await transaction.DisposeAsync();
            throw;
        }
        return new WriteScope(connection, transaction, gate: null, ownsConnection: false);
    }

    public override async Task<long[]> ReserveRowIdsAsync(WriteScope scope, int count, CancellationToken cancellationToken)
    {
        // One nextval per row, in one statement. Not a block taken by setval(nextval + n - 1): a create on another connection
        // could take an id inside that block between the two calls, and one of the two inserts then failed on the key.
        using var command = scope.Command("SELECT array_agg(nextval(pg_get_serial_sequence('resources', 'rid'))) FROM generate_series(1, @n)");
        command.Parameters.Add(new NpgsqlParameter("n", count));
        return count == 0 ? [] : (long[])(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    public override async ValueTask DisposeAsync()
    {
        await _watchDataSource.DisposeAsync();
        await _lazyDataSource.DisposeAsync();
        await _lookupDataSource.DisposeAsync();
        await _dataSource.DisposeAsync();
    }

    /// <summary>The connection string read, without connecting; null with the <paramref name="problem"/> told in the operator's
    /// terms when it cannot be ("Couldn't set bogus (Parameter 'bogus')" was Npgsql's), never quoting any of its text: a value may
    /// be the password, and so may a part that does not read as keyword=value — a password holding an unquoted ';' is cut there,
    /// its end read as a keyword ("'cd;username' is not a keyword" printed it). A part at fault is named by its position; a
    /// part after Password= by its position alone, not even by its keyword, since it may be the password's end.</summary>
    public static NpgsqlConnectionStringBuilder? Read(string connectionString, out string? problem)
    {
        const string Invalid = "The PostgreSQL connection string is not valid: ";
        problem = null;
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(ToKeyValue(connectionString));
        }
        catch (ArgumentException e)
        {
            problem = Invalid + (e.ParamName == "db" ? e.Message.Replace(" (Parameter 'db')", ".", StringComparison.Ordinal) : PartProblem(connectionString));
            return null;
        }
        if (string.IsNullOrWhiteSpace(builder.Host))
        {
            problem = Invalid + "it names no host (Host=…, or postgres://user:password@host/database).";
            return null;
        }
        // Npgsql refuses a port below 1 only; one above 65535 failed later, when connecting, as a host that cannot be reached.
        if (builder.Port is < 1 or > MaxPort)
        {
            var (parts, password) = Split(connectionString);
            var at = parts.FindLastIndex(part => Alone(part).Port is < 1 or > MaxPort);
            problem = Invalid + (password >= 0 && at > password ? AfterPassword(at) : PortRange + ".");
            return null;
        }
        return builder;
    }

    private const int MaxPort = 65535;
    private const string PortRange = "the port must be a whole number from 1 to 65535";
    private const string QuoteHint = "; a value holding ';' must be quoted (Password='…', a quote inside it doubled)";

    private static bool IsUri(string db) => db.StartsWith("postgres", StringComparison.OrdinalIgnoreCase) && db.Contains("://", StringComparison.Ordinal);

    /// <summary>One part of a key=value connection string read alone (one that Npgsql read within the whole string).</summary>
    private static NpgsqlConnectionStringBuilder Alone(string part) => new(part);

    /// <summary>The position of the first part giving the password unquoted (Password=…, or a synonym Npgsql takes for it), or -1:
    /// what follows it may be the password's end, cut at a ';' it holds. A quoted password ends at its closing quote.</summary>
    private static int PasswordPart(List<string> parts) => parts.FindIndex(part =>
    {
        var equals = part.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0 || part.AsSpan(equals + 1).TrimStart() is [ '\'' or '"', ..]) return false;
        var probe = new NpgsqlConnectionStringBuilder();
        try
        {
            probe[part[..equals].Trim()] = "p";
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException)
        {
            return false; // not a keyword, or one whose value is no text
        }
        return probe.Password == "p";
    });

    /// <summary>A part after Password= that cannot be read is named by its position only: it may be a piece of the password.</summary>
    private static string AfterPassword(int index) =>
        $"its {Nth(index + 1)} part, after Password=, is not a setting Npgsql can take; if it is a piece of the password (which holds ';'), write the password in quotes (Password='…', a quote inside it doubled).";

    /// <summary>Why Npgsql could not read a key=value connection string, by the position of the first part (between ';') it cannot
    /// read alone, never by its text; a keyword Npgsql knows is named as the operator wrote it, for a value it cannot take,
    /// only before Password=.</summary>
    private static string PartProblem(string connectionString)
    {
        var parts = Parts(connectionString);
        var keywords = new NpgsqlConnectionStringBuilder();
        if (!parts.Any(part => part.IndexOf('=', StringComparison.Ordinal) is > 0 and var equals && keywords.ContainsKey(part[..equals].Trim())))
        {
            // Every keyword misspelt (Hots=db;Pasword=…), or a SQLite file named like a connection string.
            return "it is keyword=value but names none of Npgsql's keywords (Host, Port, Database, Username, Password, …): check their spelling. "
                + "A SQLite file whose name holds '=' is written with its folder (./name=1.db).";
        }
        var password = PasswordPart(parts);
        for (var i = 0; i < parts.Count; i++)
        {
            try
            {
                _ = Alone(parts[i]);
            }
            catch (ArgumentException e)
            {
                if (password >= 0 && i > password) return AfterPassword(i);
                var part = $"its {Nth(i + 1)} part";
                return e switch
                {
                    { InnerException: KeyNotFoundException } => $"{part} does not begin with one of Npgsql's keywords (Host, Port, Database, Username, Password, …){QuoteHint}.",
                    { InnerException: not null, ParamName: { } keyword } when keyword.Equals("port", StringComparison.OrdinalIgnoreCase) => $"{part}: {PortRange}.",
                    { InnerException: not null, ParamName: { } keyword } when keywords.ContainsKey(keyword) => $"{part} gives {parts[i][..parts[i].IndexOf('=', StringComparison.Ordinal)].Trim()} a value it cannot take.",
                    _ => $"{part} is not keyword=value{QuoteHint}.",
                };
            }
        }
        return "it is not Keyword=value pairs separated by ';' (Host=…;Database=…;Username=…) or a postgres://user:password@host/database URI.";
    }

    /// <summary>The host, port, database and user as the string states them before its unquoted Password part; one that only a part
    /// after it gives (or changes) is "…". "Password=ab;Database=cd" is the password "ab;Database=cd" to an operator who forgot
    /// the quotes and the database "cd" to Npgsql: "Cannot open PostgreSQL host:5432/cd" printed the password's end. What
    /// follows an unquoted Password= is never printed; <c>PartsAfterPassword</c> says whether anything does (a blank part
    /// aside), when the server's words about the connection may quote it. A URI's password ends at its '@'.</summary>
    private static (string Host, string Port, string Database, string User, bool PartsAfterPassword) Shown(string connectionString, NpgsqlConnectionStringBuilder builder)
    {
        static string Port(NpgsqlConnectionStringBuilder read) => read.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (parts, password) = Split(connectionString);
        if (password < 0) return (builder.Host ?? "", Port(builder), builder.Database ?? "", builder.Username ?? "", false);
        var stated = new NpgsqlConnectionStringBuilder(string.Join(';', parts.Take(password)));
        static string Said(string? before, string? read) => before == read ? read ?? "" : "…";
        return (Said(stated.Host, builder.Host), Said(Port(stated), Port(builder)), Said(stated.Database, builder.Database), Said(stated.Username, builder.Username),
            parts.Skip(password + 1).Any(part => !string.IsNullOrWhiteSpace(part)));
    }

    /// <summary>The parts of a key=value connection string (none for a URI) and the position of its unquoted password, or -1.</summary>
    private static (List<string> Parts, int Password) Split(string connectionString)
    {
        var parts = IsUri(connectionString) ? [] : Parts(connectionString);
        return (parts, PasswordPart(parts));
    }

    /// <summary>The parts of a key=value connection string between its ';', a quoted value's ';' kept inside it ('…' or "…", a
    /// quote doubled inside), as ADO.NET reads them.</summary>
    private static List<string> Parts(string text)
    {
        var parts = new List<string>();
        for (int i = 0, start = 0; ; i++)
        {
            if (i >= text.Length || text[i] == ';')
            {
                parts.Add(text[start..i]);
                if (i >= text.Length) return parts;
                start = i + 1;
            }
            else if (text[i] == '=' && !text.AsSpan(start, i - start).Contains('='))
            {
                // The value begins after the part's first '=' and any blanks; quoted, it runs to its closing quote.
                var value = i + 1;
                while (value < text.Length && char.IsWhiteSpace(text[value])) value++;
                if (value >= text.Length || text[value] is not ('\'' or '"')) continue;
                var quote = text[value];
                i = value + 1;
                while (i < text.Length && !(text[i] == quote && (i + 1 == text.Length || text[i + 1] != quote))) i += text[i] == quote ? 2 : 1;
                i = Math.Min(i, text.Length - 1); // at the closing quote; at the end when there is none
            }
        }
    }

    /// <summary>1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, … 21st.</summary>
    private static string Nth(int n) => n + ((n % 100) is 11 or 12 or 13 ? "th" : (n % 10) switch { 1 => "st", 2 => "nd", 3 => "rd", _ => "th" });

    /// <summary>Accepts both key=value connection strings and postgres:// URIs.</summary>
    private static string ToKeyValue(string db)
    {
        if (!IsUri(db)) return db;
        Uri uri;
        try
        {
            uri = new Uri(db);
        }
        catch (UriFormatException e)
        {
            // Its message names no part of the URI (which holds the password); the caller says the string is not valid.
            throw new ArgumentException($"not a postgres://user:password@host:port/database URI ({e.Message})", nameof(db), e);
        }
        // An '@' or '/' left unencoded in the password ends the authority early: the rest of the password then reads as the
        // host or the database, which the store's description and errors print.
        // A '?' or '#' likewise, the rest then read as the query or the fragment (a port of digits before it: the password's
        // beginning printed as the port).
        if (uri.AbsolutePath.Contains('@', StringComparison.Ordinal) || uri.AbsolutePath.TrimStart('/').Contains('/', StringComparison.Ordinal)
            || uri.Query.Contains('@', StringComparison.Ordinal) || uri.Fragment.Length > 0)
        {
            throw new ArgumentException("a '/', '@', '?' or '#' in the user name or password must be percent-encoded (%2F, %40, %3F, %23)", nameof(db));
        }
        if (uri.Port == 0) throw new ArgumentException(PortRange, nameof(db));
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.Port < 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length > 1) builder.Password = Uri.UnescapeDataString(parts[1]);
        }
        var pairs = uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < pairs.Length; i++)
        {
            var kv = pairs[i].Split('=', 2);
            try
            {
                builder[Uri.UnescapeDataString(kv[0])] = kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "";
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"the {Nth(i + 1)} parameter after '?' is not one of Npgsql's keywords with a value it takes", nameof(db), e);
            }
        }
        return builder.ConnectionString;
    }
}

/// <summary>What a SQLite file holds (<see cref="SqliteDatabase.Inspect"/>).</summary>
internal enum SqliteFileContent
{
    /// <summary>No file, an empty one, or a SQLite database with nothing in it: a new store may be made there.</summary>
    Nothing,
    /// <summary>A Vauban store (its schema_version table).</summary>
    Store,
    /// <summary>A SQLite database with tables (or other objects) of its own and no Vauban schema: another application's.</summary>
    Foreign,
    /// <summary>A new file whose writing was interrupted, with the hot journal that would empty it.</summary>
    UnfinishedCopy,
    /// <summary>Not readable as a SQLite database here: the store's opening says why.</summary>
    Unreadable,
}
