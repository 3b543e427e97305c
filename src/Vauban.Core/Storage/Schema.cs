namespace Vauban.Storage;

internal static class Schema
{
    public static int Latest => Migrations.Steps[^1].Version;

    /// <summary>Applies the missing migration steps in one transaction; refuses a store written by a newer Vauban.</summary>
    public static async Task MigrateAsync(StoreDatabase database, CancellationToken cancellationToken)
    {
        await using var scope = await database.BeginWriteAsync(cancellationToken);
        if (database.Engine == StorageEngine.Postgres)
        {
            // Two servers starting together must not both migrate.
            using var lockCommand = scope.Command("SELECT pg_advisory_xact_lock(727165)");
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }
        using (var create = scope.Command("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL PRIMARY KEY, description text NOT NULL, applied_at bigint NOT NULL)"))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        long current;
        using (var read = scope.Command("SELECT coalesce(max(version), 0) FROM schema_version"))
        {
            current = await read.ScalarLongAsync(cancellationToken);
        }
        if (current > Latest)
        {
            throw new VaubanConfigurationException(
                $"{database.Description} has schema version {current}, newer than this Vauban knows ({Latest}). Upgrade Vauban.");
        }
        foreach (var step in Migrations.Steps.Where(s => s.Version > current))
        {
            using (var apply = scope.Command(database.Engine == StorageEngine.Postgres ? step.Postgres : step.Sqlite))
            {
                await apply.ExecuteNonQueryAsync(cancellationToken);
            }
            using var record = scope.Command("INSERT INTO schema_version (version, description, applied_at) VALUES (@v, @d, @t)")
                .With("v", step.Version).With("d", step.Description).With("t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            await record.ExecuteNonQueryAsync(cancellationToken);
        }
        await scope.CommitAsync(cancellationToken);
    }
}
