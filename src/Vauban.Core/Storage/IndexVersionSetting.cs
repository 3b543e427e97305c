// Which index format (IndexEntries.FormatVersion) the store's records were last all indexed with, kept in store_settings.
using System.Globalization;
using Vauban.Records.Search;

namespace Vauban.Storage;

internal static class IndexVersionSetting
{
    private const string Name = "index_version";

    /// <summary>The format every store had before the version was kept.</summary>
    public const int Unrecorded = 1;

    /// <summary>At open: a store that has no version yet gets one. Without records (a new store) it is this Vauban's: nothing was
    /// indexed otherwise. With records, they were written before the version was kept, by an older extraction.</summary>
    public static async Task EnsureAsync(StoreDatabase database, CancellationToken cancellationToken)
    {
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            // Kept already (every open but the first of this Vauban's on the store): nothing to write.
            using var kept = connection.Command("SELECT count(*) FROM store_settings WHERE name = @n").With("n", Name);
            if (await kept.ScalarLongAsync(cancellationToken) > 0) return;
        }
        await using var scope = await database.BeginWriteAsync(cancellationToken);
        // "WHERE true": SQLite reads an ON CONFLICT after a bare SELECT as a join's ON.
        using var insert = scope.Command("""
            INSERT INTO store_settings (name, value)
            SELECT @n, CASE WHEN EXISTS (SELECT 1 FROM resources) THEN @old ELSE @current END WHERE true
            ON CONFLICT (name) DO NOTHING
            """).With("n", Name).With("old", Text(Unrecorded)).With("current", Text(IndexEntries.FormatVersion));
        await insert.ExecuteNonQueryAsync(cancellationToken);
        await scope.CommitAsync(cancellationToken);
    }

    public static async Task<int> ReadAsync(StoreDatabase database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT value FROM store_settings WHERE name = @n").With("n", Name);
        return await command.ExecuteScalarAsync(cancellationToken) is string value && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var version)
            ? version
            : Unrecorded;
    }

    /// <summary>After a complete re-indexing: the store is at <paramref name="version"/>, unless a newer Vauban has recorded a later one.</summary>
    public static async Task RaiseAsync(StoreDatabase database, int version, CancellationToken cancellationToken)
    {
        await using var scope = await database.BeginWriteAsync(cancellationToken);
        using (var insert = scope.Command("INSERT INTO store_settings (name, value) VALUES (@n, @v) ON CONFLICT (name) DO NOTHING").With("n", Name).With("v", Text(Unrecorded)))
        {
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        using (var update = scope.Command("UPDATE store_settings SET value = @v WHERE name = @n AND CAST(value AS integer) < @version")
            .With("n", Name).With("v", Text(version)).With("version", version))
        {
            await update.ExecuteNonQueryAsync(cancellationToken);
        }
        await scope.CommitAsync(cancellationToken);
    }

    private static string Text(int version) => version.ToString(CultureInfo.InvariantCulture);
}
