namespace Vauban.Storage;

internal static class Schema
{
    public static int Latest => Migrations.Steps.Max(s => s.Version);

    /// <summary>
    /// Applies the missing migration steps in one transaction, in version order; refuses a store written by a newer Vauban.
    /// "Missing" is every step not recorded in schema_version, not only those above the highest recorded: steps are
    /// developed on parallel branches and may be merged out of order (a store that got step 9 before step 7 existed
    /// still gets step 7).
    /// </summary>
    /// <param name="mayCreate">Whether a database with no Vauban schema may be made a new store. When not (the verbs that use a
    /// store and do not make one), it is refused: a file SQLite had just rolled back to empty (a hot journal) became an empty
    /// store bound to whatever master key was given.</param>
    /// <param name="afterSteps">Told, in the migration's transaction before it commits, the versions of the steps it applied (none:
    /// not called): what a step needs the master key for is done there, with the step or not at all (ADR 0014's upgrade).</param>
    public static async Task MigrateAsync(StoreDatabase database, CancellationToken cancellationToken, bool mayCreate = true,
        Func<WriteScope, IReadOnlySet<int>, Task>? afterSteps = null)
    {
        await using var scope = await database.BeginWriteAsync(cancellationToken);
        if (database.Engine == StorageEngine.Postgres)
        {
            // Two servers starting together must not both migrate. The second waits for the first's migration however long it
            // takes (a step may rewrite a large table): under the default command timeout it gave up after 30 s with
            // "Exception while reading from stream", and a server restarted during an upgrade did not start.
            using var lockCommand = scope.Command("SELECT pg_advisory_xact_lock(727165)");
            lockCommand.CommandTimeout = 0;
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }
        using (var create = scope.Command("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL PRIMARY KEY, description text NOT NULL, applied_at bigint NOT NULL)"))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        var applied = new HashSet<long>();
        using (var read = scope.Command("SELECT version FROM schema_version"))
        using (var reader = await read.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) applied.Add(Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture));
        }
        if (applied.Count == 0)
        {
            // Checked here, in the transaction that would make the store (and under the advisory lock on PostgreSQL): nothing of
            // it is kept when refused, not even the schema_version table just made.
            if (!mayCreate) throw new VaubanConfigurationException($"No Vauban store in {database.Description}: none is made here.");
            if (await HoldsOtherTablesAsync(scope, database.Engine, cancellationToken))
            {
                throw new VaubanConfigurationException(database is SqliteDatabase sqlite ? SqliteDatabase.NotAStore(sqlite.FilePath) : NotAStoreInPostgres);
            }
        }
        var current = applied.Count == 0 ? 0 : applied.Max();
        if (current > Latest)
        {
            throw new VaubanConfigurationException(
                $"{database.Description} has schema version {current}, newer than this Vauban knows ({Latest}). Upgrade Vauban.");
        }
        var appliedNow = new HashSet<int>();
        foreach (var step in Migrations.Steps.Where(s => !applied.Contains(s.Version)).OrderBy(s => s.Version))
        {
            appliedNow.Add(step.Version);
            using (var apply = scope.Command(database.Engine == StorageEngine.Postgres ? step.Postgres : step.Sqlite))
            {
                // A step may rewrite a large table (step 7 indexes every audit entry): no time limit, as for a restore.
                apply.CommandTimeout = 0;
                try
                {
                    await apply.ExecuteNonQueryAsync(cancellationToken);
                }
                catch (System.Data.Common.DbException e)
                {
                    // The database's words alone ("relation … already exists") did not say that an upgrade was under way, which
                    // step failed, nor that the steps before it were undone with it.
                    throw new VaubanConfigurationException(
                        $"Cannot upgrade {database.Description} to schema version {step.Version} ({step.Description}): {database.Quoted(e).TrimEnd('.')}. The store is left as it was, at version {current}.", e);
                }
            }
            using var record = scope.Command("INSERT INTO schema_version (version, description, applied_at) VALUES (@v, @d, @t)")
                .With("v", step.Version).With("d", step.Description).With("t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            await record.ExecuteNonQueryAsync(cancellationToken);
        }
        if (appliedNow.Count > 0 && afterSteps is not null) await afterSteps(scope, appliedNow);
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>Why a PostgreSQL database (schema) that holds another application's tables is not made a store: its Vauban tables
    /// would sit among them. Never the connection string, which may hold a password.</summary>
    public const string NotAStoreInPostgres = "This PostgreSQL database is not a Vauban store: its schema has tables of its own and no Vauban schema "
        + "(another application's?). Nothing was written to it. Check the connection string; a new store is made in an empty database.";

    /// <summary>The names of the tables (plain or partitioned, as pg_tables lists them) of a PostgreSQL database's current schema
    /// that are its own: not those an extension made (a member of it in pg_depend), such as PostGIS's spatial_ref_sys, which
    /// CREATE EXTENSION postgis puts in public. A database with only those holds no other application's data, and is made a
    /// store: counted, an empty database with PostGIS installed was refused as another application's.</summary>
    internal const string PostgresOwnTables = "SELECT c.relname FROM pg_catalog.pg_class c "
        + "WHERE c.relnamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = current_schema()) AND c.relkind IN ('r', 'p') "
        + "AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid "
        + "AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e')";

    /// <summary>Whether the database holds tables other than schema_version (and, on PostgreSQL, an extension's):
    /// another application's, when it has no Vauban schema.</summary>
    internal static async Task<bool> HoldsOtherTablesAsync(WriteScope scope, StorageEngine engine, CancellationToken cancellationToken)
    {
        using var count = scope.Command(engine == StorageEngine.Postgres
            ? $"SELECT count(*) FROM ({PostgresOwnTables}) own WHERE relname <> 'schema_version'"
            : "SELECT count(*) FROM sqlite_schema WHERE name <> 'schema_version' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'");
        return await count.ScalarLongAsync(cancellationToken) > 0;
    }
}
