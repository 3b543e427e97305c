// Opens a Vauban store: the database (SQLite file or PostgreSQL), migrated; the key ring under the
// master key; and the services that are the only way in — tenants, API clients, records.
using System.Diagnostics;
using System.Globalization;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Storage;

namespace Vauban;

public sealed record StoreOptions(string Db, MasterKey MasterKey)
{
    public TimeSpan TokenLifetime { get; init; } = TimeSpan.FromMinutes(5);
    public TimeProvider Time { get; init; } = TimeProvider.System;
    public AccessOptions Access { get; init; } = new();
    public AccountOptions Accounts { get; init; } = new();
    public AuditOptions Audit { get; init; } = new();
    public GuardOptions Guard { get; init; } = new();

    /// <summary>Whether a database with no Vauban schema (a new or empty file, an empty PostgreSQL database) is made a new store
    /// when opened; when false it is refused. Another application's database is refused either way.</summary>
    public bool MayCreate { get; init; } = true;
}

public sealed class VaubanStore : IAsyncDisposable
{
    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;

    private VaubanStore(StoreDatabase database, KeyRing keys, StoreOptions options)
    {
        _database = database;
        _keys = keys;
        Audit = new AuditTrail(database, keys, options.Time, options.Audit);
        Tenants = new Tenants(database, keys, Audit, options.Time);
        Alerts = new SecurityAlerts(database, keys, Audit, options.Time);
        AccessRows = new AccessRows(database, keys, Alerts, Audit);
        Accounts = new StaffAccounts(database, keys, Tenants, Audit, AccessRows, options.Time, options.Accounts);
        Sessions = new StaffSessions(database, AccessRows, Accounts, options.Time, options.Accounts);
        Throttle = new SignInThrottle(database, options.Time, options.Accounts, Alerts);
        Time = options.Time;
        Policy = new AccessPolicy(database, keys, AccessRows, options.Access, options.Time);
        Clients = new ApiClients(database, Tenants, Audit, Throttle, AccessRows, options.TokenLifetime, options.Time);
        Guard = new RecordsGuard(database, Alerts, keys, Audit, AccessRows, options.Guard, options.Time);
        AuditLog = new AuditLog(database, keys, Audit, Guard, options.Time);
        Records = new RecordsService(database, keys, Policy, Guard, Audit, options.Time);
        BreakTheGlass = new BreakTheGlass(database, keys, Policy, Guard, Audit, Alerts, AccessRows, options.Time);
        ExportApprovals = new ExportApprovals(database, keys, Alerts, Audit, options.Time);
        SeedRuns = new Records.Synthetic.SeedRuns(database, Audit, options.Time);
    }

    public Tenants Tenants { get; }
    public ApiClients Clients { get; }
    public SecurityAlerts Alerts { get; }

    /// <summary>The rows that grant access (clients, tokens, staff sessions, staff accounts and their second factors and enrolment
    /// links) held to their MACs (ADR 0014): what refuses one that fails, and what `vauban audit verify` lists them with.</summary>
    public AccessRows AccessRows { get; }
    public StaffAccounts Accounts { get; }
    public StaffSessions Sessions { get; }
    public SignInThrottle Throttle { get; }
    public TimeProvider Time { get; }
    internal StoreDatabase Database => _database;
    internal KeyRing Keys => _keys;

    /// <summary>For a server's health check and its log: null while the store takes the master key this process holds; once
    /// another process rotated it (`keys rotate-master`), what this process can no longer do and that it must be restarted with
    /// the new key (fingerprints, never key material). Asks the store until found, then no more (it stays so until restart).</summary>
    public Task<string?> MasterKeyRotatedAwayAsync(CancellationToken cancellationToken) => _keys.CheckRotatedAwayAsync(cancellationToken);

    /// <summary>As <see cref="MasterKeyRotatedAwayAsync"/>, as far as this process has found so far, without asking the store.</summary>
    public string? MasterKeyRotatedAway => _keys.RotatedAway;

    /// <summary>True for the first caller only once the master key was found rotated away: the log tells the operator once.</summary>
    public bool FirstToTellMasterKeyRotatedAway() => _keys.FirstToTellRotatedAway();

    /// <summary>For a health check: null when the store answers a query now, else the cause (<see cref="StoreFailures"/>: by code,
    /// safe to log).</summary>
    public async Task<string?> UnavailableAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await _database.OpenAsync(cancellationToken);
            using var command = connection.Command("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return null;
        }
        catch (Exception e) when (StoreFailures.UnavailableCause(e) is { } cause)
        {
            return cause;
        }
    }
    /// <summary>For a server (<c>vauban serve</c>), until <paramref name="cancellationToken"/> is cancelled: watches the connection
    /// to PostgreSQL, so that when the server restarts or crashes the connections that died with it are dropped at once and the
    /// first requests after it comes back open new ones (<see cref="StoreDatabase.WatchAsync"/>). <paramref name="lost"/> is told
    /// the cause, safe to log (a code, never the server's words); <paramref name="restored"/> how long the server was away. SQLite:
    /// returns at once. Never throws.</summary>
    public Task WatchDatabaseAsync(Action<string> lost, Action<TimeSpan> restored, CancellationToken cancellationToken) =>
        _database.WatchAsync(lost, restored, cancellationToken);

    public RecordsService Records { get; }
    public AccessPolicy Policy { get; }
    public BreakTheGlass BreakTheGlass { get; }
    public RecordsGuard Guard { get; }

    /// <summary>The second person on large bulk exports: pending exports, approval, denial.</summary>
    public ExportApprovals ExportApprovals { get; }

    /// <summary>The claims of `vauban seed` runs on their seed and date: one at a time, and one left unfinished resumed.</summary>
    public Records.Synthetic.SeedRuns SeedRuns { get; }

    /// <summary>The append side of the audit log: every act on records passes through it before data leaves.</summary>
    public AuditTrail Audit { get; }

    /// <summary>The read side of the audit log: verification, the officer's searches, a patient's access history.</summary>
    public AuditLog AuditLog { get; }

    /// <summary>The fingerprint of the master key this store is opened with (safe to print).</summary>
    public string MasterKeyFingerprint => _keys.Master.Fingerprint;

    /// <summary>The fingerprint of the master key the store is bound to, as the database says now (after a rotation that
    /// failed, whether it was committed); null for a store not yet bound.</summary>
    public Task<string?> BoundMasterKeyFingerprintAsync(CancellationToken cancellationToken) => _keys.StoredBindingAsync(cancellationToken);

    /// <summary>
    /// Rotates the master key: every establishment's keys re-wrapped under <paramref name="next"/> and the store bound to it, in
    /// one transaction (<see cref="KeyRing.RotateMasterAsync"/>) that also appends the act, by <paramref name="administrator"/>,
    /// to every establishment's chain: an audit log that cannot be written leaves the key as it was. The establishments are
    /// listed in that transaction, under the lock `tenants add` takes: one added meanwhile has its keys re-wrapped and the act on
    /// its chain too. Records, indexes and the audit log are not rewritten. From then on this store object uses the new key;
    /// every other process must be given it (the old one is refused). A failure once the commit was sent is a
    /// <see cref="MasterKeyRotationUnsettledException"/>: whether the store took the new key is then not known.
    /// </summary>
    public async Task<MasterKeyRotation> RotateMasterKeyAsync(MasterKey next, Func<Tenant, AccessContext> administrator, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(administrator);
        var note = $"keys rotate-master: the establishment's keys re-wrapped from master key {_keys.Master.Fingerprint} to {next.Fingerprint}";
        var establishments = 0;
        var keys = await _keys.RotateMasterAsync(next, async scope =>
        {
            var tenants = await Tenants.ListAsync(scope, cancellationToken);
            // Opened (and kept) under the current key before it changes: the entries are sealed, and the chains' checkpoints may
            // be signed, with them in the transaction.
            foreach (var tenant in tenants)
            {
                await _keys.ForTenantAsync(tenant.Id, cancellationToken);
                await _keys.AuditSignerAsync(tenant.Id, cancellationToken);
            }
            establishments = tenants.Count;
            await Audit.AppendOnEveryChainAsync(scope, [.. tenants.Select(administrator)], AuditAction.Administration,
                [new AuditedRecord("keys:master", null, null)], note, cancellationToken);
        }, cancellationToken);
        return new MasterKeyRotation(keys, establishments);
    }

    /// <summary>
    /// A data-key rotation's first half: the establishment's next data key version, wrapped under the master key, made in one
    /// transaction with the act on its chain (by <paramref name="administrator"/>). This store seals with it at once; every other
    /// process within <see cref="KeyRing.DataKeyRecheck"/>. Nothing is re-sealed yet: <see cref="ResealAsync"/>, once the
    /// other processes have taken it. Returns the new version.
    /// </summary>
    public async Task<int> AddDataKeyAsync(AccessContext administrator, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(administrator);
        int version;
        await using (var scope = await _database.BeginWriteAsync(cancellationToken))
        {
            version = await _keys.AddDataKeyAsync(scope, administrator.Tenant.Id, cancellationToken);
            await Audit.AppendAsync(scope, administrator, AuditAction.Administration, AuditOutcome.Success, null, [new AuditedRecord("keys:data", null, null)],
                cancellationToken, $"keys rotate-data: data key version {version} made");
            await scope.CommitAsync(cancellationToken);
        }
        await _keys.ReloadAsync(administrator.Tenant.Id, cancellationToken);
        return version;
    }

    /// <summary>The establishment's newest data key version, as the store holds it now.</summary>
    public async Task<int> DataKeyVersionAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        return (await _keys.ReloadAsync(tenant.Id, cancellationToken)).KeyVersion;
    }

    /// <summary>How often a running process looks for a newer data key of an establishment whose keys it holds.</summary>
    public static TimeSpan DataKeyRecheck => KeyRing.DataKeyRecheck;

    /// <summary>What <see cref="ResealAsync"/> goes through, for the operator.</summary>
    public static IReadOnlyList<string> ResealedTables => DataKeyRotation.Tables;

    /// <summary>
    /// A data-key rotation's second half (<see cref="DataKeyRotation"/>): every record body, history included, and every staff
    /// account's sealed fields still under an older data key version, sealed again under the newest, in batches, beside a
    /// running server; then the pass on the establishment's chain (<paramref name="administrator"/>), with its counts. Safe
    /// to run again: rows already under the newest version are only counted.
    /// </summary>
    /// <param name="progress">Rows gone through so far.</param>
    public async Task<(int Version, ResealTally Tally)> ResealAsync(AccessContext administrator, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(administrator);
        var version = (await _keys.ReloadAsync(administrator.Tenant.Id, cancellationToken)).KeyVersion;
        AuditedRecord[] dataKeys = [new AuditedRecord("keys:data", null, null)];
        string Counts(ResealTally t) => string.Create(CultureInfo.InvariantCulture,
            $"{t.Resealed} rows re-sealed under data key version {version}, {t.Current} already under it, {t.Changed} changed meanwhile, {t.Unreadable} unreadable");
        // On the chain before the first row is rewritten: a pass that is killed leaves its beginning there, one that fails its end.
        await Audit.AppendAsync(administrator, AuditAction.Administration, AuditOutcome.Success, null, dataKeys, cancellationToken,
            string.Create(CultureInfo.InvariantCulture, $"keys rotate-data: re-sealing under data key version {version} begun"));
        var sofar = new ResealTally(0, 0, 0, 0);
        ResealTally tally;
        try
        {
            tally = await DataKeyRotation.ResealAsync(_database, _keys, administrator.Tenant.Id, ResealBatchSize, progress, t => sofar = t, ResealBetweenReadAndWrite,
                cancellationToken);
        }
        catch (Exception e)
        {
            // The batches committed before the failure stay re-sealed; the chain says how far the pass went, and why it stopped.
            var why = e is OperationCanceledException ? "cancelled" : "failed (" + e.GetType().Name + ")";
            await Audit.AppendAsync(administrator, AuditAction.Administration, AuditOutcome.SeriousFailure, null, dataKeys, CancellationToken.None,
                $"keys rotate-data: {why} after {Counts(sofar)}");
            throw;
        }
        await Audit.AppendAsync(administrator, AuditAction.Administration, tally.Complete ? AuditOutcome.Success : AuditOutcome.MinorFailure, null,
            dataKeys, cancellationToken, "keys rotate-data: " + Counts(tally));
        return (version, tally);
    }

    /// <summary>Why a PostgreSQL store is not copied by <see cref="BackupAsync"/>.</summary>
    public const string PostgresBackupAdvice = "A PostgreSQL store is backed up with PostgreSQL's own tools: pg_dump --format=custom for a copy, "
        + "or base backups with WAL archiving for point-in-time recovery. `vauban backup` copies the embedded SQLite store.";

    /// <summary>Why <paramref name="target"/> cannot take a backup (a folder, a file already there, a folder that does not exist),
    /// or null; whatever the store's engine, so that `vauban backup` says it before anything else.</summary>
    public static string? BackupTargetProblem(string target)
    {
        ArgumentNullException.ThrowIfNull(target);
        var full = Path.GetFullPath(target);
        if (Directory.Exists(full)) return $"{full} is a folder: name the backup file to write, for example {Path.Combine(full, "vauban-backup.db")}.";
        if (File.Exists(full)) return $"{full} already exists: a backup is written to a new file, never over another.";
        if (Path.GetDirectoryName(full) is { } folder && !Directory.Exists(folder)) return $"The folder {folder} does not exist.";
        return null;
    }

    /// <summary>
    /// A consistent copy of the SQLite store written to <paramref name="target"/> (a new file), beside a running server. The act
    /// is on every establishment's chain first, committed before the copy begins, so that the copy holds it; a copy that fails
    /// is recorded as failed. The copy holds sealed records and hashes only, as the store does, and is useless without the
    /// master key (<see cref="MasterKeyFingerprint"/>), which is kept apart from it.
    /// </summary>
    public async Task<StoreBackup> BackupAsync(string target, Func<Tenant, AccessContext> administrator, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(administrator);
        if (_database is not SqliteDatabase sqlite) throw new InvalidOperationException(PostgresBackupAdvice);
        if (BackupTargetProblem(target) is { } problem) throw new ArgumentException(problem, nameof(target));
        var full = Path.GetFullPath(target);
        var tenants = await Tenants.ListAsync(cancellationToken);
        AuditedRecord[] store = [new AuditedRecord("store:backup", null, null)];
        var started = Stopwatch.GetTimestamp();
        await using (var scope = await _database.BeginWriteAsync(cancellationToken))
        {
            await Audit.AppendOnEveryChainAsync(scope, [.. tenants.Select(administrator)], AuditAction.Administration, store,
                $"backup: a copy of the store written to {full}", cancellationToken);
            await scope.CommitAsync(cancellationToken);
        }
        long bytes;
        try
        {
            bytes = await sqlite.CopyToAsync(full, cancellationToken, BackupCopyWritten);
        }
        catch (Exception e)
        {
            var why = e is OperationCanceledException ? "cancelled" : "failed (" + e.GetType().Name + ")";
            foreach (var tenant in tenants)
            {
                await Audit.AppendAsync(administrator(tenant), AuditAction.Administration, AuditOutcome.SeriousFailure, null, store, CancellationToken.None,
                    $"backup: the copy to {full} {why}; no file was left");
            }
            throw;
        }
        return new StoreBackup(full, bytes, tenants.Count, MasterKeyFingerprint, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>Tests: run by <see cref="BackupAsync"/> with the copy's temporary path, once it is written and checked, before it
    /// takes the backup's name.</summary>
    internal Func<string, CancellationToken, Task>? BackupCopyWritten { get; set; }

    /// <summary>Tests: rows per transaction of <see cref="ResealAsync"/>.</summary>
    internal int ResealBatchSize { get; set; } = DataKeyRotation.BatchSize;

    /// <summary>Tests: run by <see cref="ResealAsync"/> after each page is read, before its rows are replaced.</summary>
    internal Func<CancellationToken, Task>? ResealBetweenReadAndWrite { get; set; }

    /// <summary>Tells every establishment's security officer, in one transaction, that a journal's end was lost.</summary>
    private async Task ReportDamagedJournalAsync(DamagedJournal journal, CancellationToken cancellationToken)
    {
        var detail = string.Create(CultureInfo.InvariantCulture,
            $"The audit journal {journal.Name}, left by a process that stopped, ended in {journal.Dropped:N0} bytes that could not be read (after {journal.Readable:N0} good ones): the acts it was recording when it stopped are not on the log. A power loss tears the last write; anything else is damage to the file.");
        var tenants = await Tenants.ListAsync(cancellationToken);
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        foreach (var tenant in tenants) await Alerts.RaiseAsync(scope, tenant.Id, KnownAlertKinds.AuditJournalDamaged, "vauban", detail, cancellationToken);
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>Where the data lives, safe to print (no password).</summary>
    public string Description => _database.Description;

    public bool IsPostgres => _database.Engine == StorageEngine.Postgres;

    /// <summary>What the database's own settings leave of durability that Vauban cannot set back itself (PostgreSQL with
    /// fsync=off), for the operator; empty when nothing is wrong.</summary>
    public IReadOnlyList<string> DurabilityWarnings { get; private init; } = [];

    /// <summary>Whether a --db value names a PostgreSQL store (a connection string or URI) rather than a SQLite file.</summary>
    public static bool IsPostgresConnectionString(string db) => StoreDatabase.LooksLikePostgres(db);

    /// <summary>What an operator should check when <paramref name="error"/> is a SQLite store that cannot be written (read-only
    /// file or folder, another account's file); null otherwise.</summary>
    public static string? WriteAccessHint(Exception? error) => StoreFailures.WriteAccessHint(error);

    private static string WithHint(string message, Exception error) => WriteAccessHint(error) is { } hint ? $"{message} {hint}" : message;

    /// <summary>When <paramref name="error"/> means the store cannot be reached or written at the moment (database down,
    /// restarting or read-only, connection pool exhausted, disk full, file locked), its cause, safe to log; else null.</summary>
    public static string? UnavailableCause(Exception? error) => StoreFailures.UnavailableCause(error);

    /// <summary>When <paramref name="error"/> is any other database error (a store damaged or changed outside Vauban, a database user
    /// without a privilege), what it is, safe to print: SQLite's code and words, PostgreSQL's SQL state (never its words); else null.</summary>
    public static string? DatabaseError(Exception? error) => StoreFailures.Described(error);

    /// <summary>What is wrong with a --db value as written, found without opening anything (so before a master key is made for it):
    /// a folder where a SQLite file is meant, a PostgreSQL connection string that cannot be read; null when nothing is (a server
    /// that cannot be reached, a wrong password, is found by opening the store).</summary>
    public static string? DbProblem(string db)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(db);
        if (!StoreDatabase.LooksLikePostgres(db)) return SqliteDatabase.FolderProblem(Path.GetFullPath(db));
        _ = PostgresDatabase.Read(db, out var problem);
        return problem;
    }

    /// <summary>Whether <paramref name="db"/> already holds a Vauban store, without creating or changing anything: a SQLite
    /// file with Vauban's schema_version table (<see cref="SqliteDatabase.Inspect"/>); a PostgreSQL database with that table.
    /// <see cref="StoreFound.None"/>: no file, an empty one, an empty database — a new store may be made there;
    /// <see cref="StoreFound.Foreign"/>: another application's database (tables, and no Vauban schema), never made a store.
    /// A SQLite file that is an unfinished copy (a new file whose writing was interrupted, its hot journal beside it) is
    /// refused here, for every verb: opened, SQLite rolled it back to empty and a new store was made in it.</summary>
    public static async Task<StoreFound> FindAsync(string db, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(db);
        if (!StoreDatabase.LooksLikePostgres(db))
        {
            var full = Path.GetFullPath(db);
            var content = SqliteDatabase.Inspect(full);
            if (content == SqliteFileContent.UnfinishedCopy) SqliteDatabase.RefuseNotAStore(full);
            return content switch
            {
                SqliteFileContent.Store or SqliteFileContent.Unreadable => StoreFound.Store, // unreadable here: its opening says why
                SqliteFileContent.Foreign => StoreFound.Foreign,
                _ => StoreFound.None,
            };
        }
        return await ReadPostgresAsync(db, async (connection, token) =>
        {
            using var command = connection.Command($"SELECT count(*) FILTER (WHERE relname = 'schema_version'), count(*) FROM ({Schema.PostgresOwnTables}) own");
            using var reader = await command.ExecuteReaderAsync(token);
            await reader.ReadAsync(token);
            return reader.GetInt64(0) > 0 ? StoreFound.Store : reader.GetInt64(1) > 0 ? StoreFound.Foreign : StoreFound.None;
        }, cancellationToken);
    }

    /// <summary>Whether the store at <paramref name="db"/> was made with a master key — bound to one, or holding keys wrapped
    /// under one —, read without creating or changing anything. A new master key is made only for a store that was not (none
    /// yet, a new file or database): for any other, a key file that is not there is a mistyped path, and a key made there would
    /// be refused by the store and left behind. False for a SQLite file that cannot be read as a store (its opening says why).</summary>
    public static async Task<bool> HasMasterKeyAsync(string db, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(db);
        if (StoreDatabase.LooksLikePostgres(db)) return await ReadPostgresAsync(db, KeyRing.HasMasterKeyAsync, cancellationToken);
        var full = Path.GetFullPath(db);
        if (SqliteDatabase.Inspect(full) != SqliteFileContent.Store) return false;
        try
        {
            await using var connection = SqliteDatabase.ReadOnly(full);
            await connection.OpenAsync(cancellationToken);
            return await KeyRing.HasMasterKeyAsync(connection, cancellationToken);
        }
        catch (Microsoft.Data.Sqlite.SqliteException)
        {
            return false;
        }
    }

    /// <summary>One reading of a PostgreSQL database before it is opened as a store; one that cannot be reached is said as the
    /// store's opening says it, in words that never quote what follows an unquoted Password=.</summary>
    private static async Task<T> ReadPostgresAsync<T>(string db, Func<System.Data.Common.DbConnection, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        await using var database = StoreDatabase.Open(db);
        try
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            return await read(connection, cancellationToken);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new VaubanConfigurationException(WithHint($"Cannot open {database.Description}: {database.Quoted(e)}", e), e);
        }
    }

    /// <summary>Why <paramref name="db"/>, another application's database (<see cref="StoreFound.Foreign"/>), is not made a store:
    /// one line naming the file (never a PostgreSQL connection string, which may hold a password).</summary>
    public static string NotAStore(string db) =>
        StoreDatabase.LooksLikePostgres(db) ? Schema.NotAStoreInPostgres : SqliteDatabase.NotAStore(Path.GetFullPath(db));

    public static async Task<VaubanStore> OpenAsync(StoreOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Accounts.Validate();
        options.Audit.Validate();
        options.Guard.Validate();
        StoreDatabase database;
        try
        {
            database = StoreDatabase.Open(options.Db);
        }
        catch (System.Data.Common.DbException e)
        {
            // SQLite reads the file's header here (a file that is not a database, or a damaged one). Never the --db text of a
            // PostgreSQL store: it may hold a password.
            var what = StoreDatabase.LooksLikePostgres(options.Db) ? "the PostgreSQL store" : "SQLite " + Path.GetFullPath(options.Db);
            var words = e is Microsoft.Data.Sqlite.SqliteException sqlite ? StoreFailures.SqliteWords(sqlite) : e.Message;
            throw new VaubanConfigurationException(WithHint($"Cannot open {what}: {words}", e), e);
        }
        var keys = new KeyRing(database, options.MasterKey, options.Time);
        IReadOnlyList<string> warnings;
        try
        {
            // The master key before anything else: a store opened with another key is refused untouched — not migrated (a
            // store of an older Vauban was upgraded, then refused), no abandoned index dropped. Checked again once migrated:
            // a new store may have been given its first establishment, under its key, by a process starting meanwhile.
            await keys.CheckMasterKeyAsync(cancellationToken);
            // A step that adds a MAC to the rows that grant access authenticates those that exist, in its own transaction, with the
            // master key just checked (ADR 0014): with the step, or never.
            await Schema.MigrateAsync(database, cancellationToken, options.MayCreate, async (scope, steps) =>
            {
                if (!steps.Overlaps(AccessRows.UpgradeSteps)) return;
                var rowKey = await keys.MakeRowKeyInAsync(scope, cancellationToken);
                await AccessRows.AuthenticateAtUpgradeAsync(scope, rowKey, steps, options.Time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
            });
            await keys.CheckMasterKeyAsync(cancellationToken);
            await keys.BindMasterKeyAsync(cancellationToken);
            await IndexVersionSetting.EnsureAsync(database, cancellationToken);
            warnings = await database.CheckDurabilityAsync(cancellationToken);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or System.Net.Sockets.SocketException or TimeoutException)
        {
            keys.Dispose();
            await database.DisposeAsync();
            throw new VaubanConfigurationException($"Cannot open {database.Description}: {database.Quoted(e)}", e);
        }
        catch (VaubanConfigurationException e) when (e.OtherMasterKey && options.MasterKey.MadeFile is { } made)
        {
            // A key file made for this start, refused by the store. Not deleted here: another Vauban starting at the same
            // moment with the same key path reads the file this one made and may have bound a new store to it (outside
            // review, stop 38); only the operator can tell. Said, so that it is not kept as this store's key.
            keys.Dispose();
            await database.DisposeAsync();
            throw new VaubanConfigurationException(e.Message + $" The key file {made} was made for this start and is not this store's key: "
                + "delete it unless another store was made with it.", e) { OtherMasterKey = true };
        }
        catch
        {
            // A wrong master key, a store written by a newer Vauban: nothing stays open.
            keys.Dispose();
            await database.DisposeAsync();
            throw;
        }
        try
        {
            await database.DropAbandonedRebuildsAsync(cancellationToken);
        }
        catch (System.Data.Common.DbException)
        {
            // Left for the next start: an invalid index costs writes a little, never a wrong answer.
        }
        catch
        {
            keys.Dispose();
            await database.DisposeAsync();
            throw;
        }
        try
        {
            await keys.EnsureAuditSigningKeysAsync(cancellationToken);
            await keys.EnsureRowKeyAsync(scope => AccessRows.AnyRowAsync(scope, cancellationToken), cancellationToken);
        }
        catch
        {
            keys.Dispose();
            await database.DisposeAsync();
            throw;
        }
        var store = new VaubanStore(database, keys, options) { DurabilityWarnings = warnings };
        try
        {
            // Once per store, at the upgrade that began chaining them: the security records that existed before, on the chain.
            // Before the journals are recovered, whose report of a damaged end raises alerts chained by their own write.
            await store.Audit.ChainExistingSecurityRecordsAsync(cancellationToken);
            // Entries a process journaled but did not live to put on the chain: on it before anyone reads the log.
            await store.Audit.RecoverJournalsAsync(store.ReportDamagedJournalAsync, cancellationToken);
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
        // Containments, canaries and grants from before this start: a restart releases no one.
        await store.Guard.LoadAsync(cancellationToken);
        return store;
    }

    /// <summary>The default SQLite file and master key file when no --db is given.</summary>
    public static string DefaultDataDirectory => Path.Combine(Directory.GetCurrentDirectory(), "data");

    public async ValueTask DisposeAsync()
    {
        await Guard.FlushAsync();
        await AccessRows.FlushAsync();
        await Audit.DisposeAsync();
        _keys.Dispose();
        await _database.DisposeAsync();
    }
}

/// <summary>A backup written by <see cref="VaubanStore.BackupAsync"/>: where, its size, the establishments it holds, the master key it
/// needs (by fingerprint), and how long it took.</summary>
public sealed record StoreBackup(string Path, long Bytes, int Establishments, string MasterKeyFingerprint, TimeSpan Took);

/// <summary>What a --db names (<see cref="VaubanStore.FindAsync"/>).</summary>
public enum StoreFound
{
    /// <summary>Nothing yet: no file, an empty one, an empty database. A new store may be made there.</summary>
    None,
    /// <summary>A Vauban store.</summary>
    Store,
    /// <summary>Another application's database: tables of its own and no Vauban schema. Never made a store.</summary>
    Foreign,
}
