// The export_jobs table (migration step 9): requests and their approval, never exported data.
using System.Data.Common;
using Vauban.Records;

namespace Vauban.Storage;

internal sealed class ExportJobRows(StoreDatabase database)
{
    private const string Columns = "id, tenant_id, principal, level, types, since, transaction_time, request_url, patients, resources, status, created_at, expires_at, decided_by, decided_at, reason";

    private static ExportJob Read(DbDataReader reader) => new(
        reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3) == "patient" ? ExportLevel.Patient : ExportLevel.System,
        reader.GetString(4).Split(',', StringSplitOptions.RemoveEmptyEntries), reader.IsDBNull(5) ? null : reader.GetInt64(5), reader.GetInt64(6),
        reader.GetString(7), reader.GetInt32(8), reader.GetInt32(9), ExportJob.ParseStatus(reader.GetString(10)),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(11)), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(12)),
        reader.IsDBNull(13) ? null : reader.GetString(13), reader.IsDBNull(14) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(14)));

    public async Task InsertAsync(ExportJob job, byte[] sealedReason, CancellationToken cancellationToken)
    {
        await using var scope = await database.BeginWriteAsync(cancellationToken);
        // Expired jobs go when new ones come: nothing is kept past its lifetime for long.
        using (var purge = scope.Command("DELETE FROM export_jobs WHERE expires_at < @now").With("now", job.CreatedAt.ToUnixTimeMilliseconds()))
        {
            await purge.ExecuteNonQueryAsync(cancellationToken);
        }
        using (var insert = scope.Command($"""
            INSERT INTO export_jobs ({Columns}) VALUES (@id, @t, @p, @l, @ty, @s, @tt, @u, @pa, @r, @st, @c, @e, NULL, NULL, @re)
            """).With("id", job.Id).With("t", job.TenantId).With("p", job.Principal).With("l", job.Level == ExportLevel.Patient ? "patient" : "system")
            .With("ty", string.Join(',', job.Types)).With("s", job.Since).With("tt", job.TransactionTime).With("u", job.RequestUrl)
            .With("pa", job.Patients).With("r", job.Resources).With("st", ExportJob.StatusName(job.Status))
            .With("c", job.CreatedAt.ToUnixTimeMilliseconds()).With("e", job.ExpiresAt.ToUnixTimeMilliseconds()).With("re", sealedReason))
        {
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>A job of this tenant that has not expired, with its sealed reason; null otherwise.</summary>
    public async Task<(ExportJob Job, byte[] SealedReason)?> FindAsync(long tenant, string id, long now, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        using var command = connection.Command($"SELECT {Columns} FROM export_jobs WHERE id = @id AND tenant_id = @t AND expires_at >= @now")
            .With("id", id).With("t", tenant).With("now", now);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? (Read(reader), (byte[])reader.GetValue(15)) : null;
    }

    public async Task<int> CountActiveAsync(long tenant, string principal, long now, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT count(*) FROM export_jobs WHERE tenant_id = @t AND principal = @p AND expires_at >= @now AND status <> 'denied'")
            .With("t", tenant).With("p", principal).With("now", now);
        return (int)await command.ScalarLongAsync(cancellationToken);
    }

    /// <summary>The tenant's jobs awaiting approval, oldest first, with their sealed reasons.</summary>
    public async Task<List<(ExportJob Job, byte[] SealedReason)>> PendingAsync(long tenant, long now, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        using var command = connection.Command($"SELECT {Columns} FROM export_jobs WHERE tenant_id = @t AND status = 'awaiting-approval' AND expires_at >= @now ORDER BY created_at, id")
            .With("t", tenant).With("now", now);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var list = new List<(ExportJob, byte[])>();
        while (await reader.ReadAsync(cancellationToken)) list.Add((Read(reader), (byte[])reader.GetValue(15)));
        return list;
    }

    /// <summary>Approves or denies a job still awaiting approval; false when it is not (any more).</summary>
    /// <summary>Records a decision on a job awaiting approval; <paramref name="decided"/> runs in the same transaction once the
    /// job has changed (its audit entry and alert), so the decision commits with them or not at all.</summary>
    public async Task<bool> DecideAsync(long tenant, string id, ExportStatus decision, string decidedBy, long now, Func<WriteScope, Task> decided,
        CancellationToken cancellationToken)
    {
        await using var scope = await database.BeginWriteAsync(cancellationToken);
        using var update = scope.Command("""
            UPDATE export_jobs SET status = @s, decided_by = @b, decided_at = @at
            WHERE id = @id AND tenant_id = @t AND status = 'awaiting-approval' AND expires_at >= @at
            """).With("s", ExportJob.StatusName(decision)).With("b", decidedBy).With("at", now).With("id", id).With("t", tenant);
        if (await update.ExecuteNonQueryAsync(cancellationToken) != 1) return false;
        await decided(scope);
        await scope.CommitAsync(cancellationToken);
        return true;
    }

    /// <summary>Deletes a job of this principal (DELETE on the status URL); false when there is none.</summary>
    public async Task<bool> DeleteAsync(long tenant, string principal, string id, CancellationToken cancellationToken)
    {
        await using var scope = await database.BeginWriteAsync(cancellationToken);
        using var delete = scope.Command("DELETE FROM export_jobs WHERE id = @id AND tenant_id = @t AND principal = @p").With("id", id).With("t", tenant).With("p", principal);
        var deleted = await delete.ExecuteNonQueryAsync(cancellationToken) == 1;
        await scope.CommitAsync(cancellationToken);
        return deleted;
    }
}
