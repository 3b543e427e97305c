// The export_jobs table (migration step 9): requests and their approval, never exported data. Who asked is stored as the
// audit chain's blind index of the principal (matched, never shown), and in clear only sealed with the reason (AttributedText).
using System.Data.Common;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Records;

namespace Vauban.Storage;

internal sealed class ExportJobRows(StoreDatabase database)
{
    private const string Columns = "id, tenant_id, principal, level, types, since, transaction_time, request_url, patients, resources, status, created_at, expires_at, decided_by, decided_at, reason";

    /// <summary>A row's job, its requester in clear, and its reason, opened with the tenant's keys.</summary>
    private static (ExportJob Job, string Reason) Read(DbDataReader reader, TenantKeys keys)
    {
        var job = ReadColumns(reader);
        // An altered reason names no requester: the job then answers no one (OwnJobAsync matches the requester), and the officer sees it as altered.
        var opened = AttributedText.OpenStoredOrAltered(keys, RecordsService.ExportReasonTypeCode, job.Id, job.Principal, (byte[])reader.GetValue(15), "reason");
        return (job with { Principal = opened.Principal }, opened.Text);
    }

    private static ExportJob ReadColumns(DbDataReader reader) => new(
        reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3) == "patient" ? ExportLevel.Patient : ExportLevel.System,
        reader.GetString(4).Split(',', StringSplitOptions.RemoveEmptyEntries), reader.IsDBNull(5) ? null : reader.GetInt64(5), reader.GetInt64(6),
        reader.GetString(7), reader.GetInt32(8), reader.GetInt32(9), ExportJob.ParseStatus(reader.GetString(10)),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(11)), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(12)),
        reader.IsDBNull(13) ? null : reader.GetString(13), reader.IsDBNull(14) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(14)));

    /// <summary>Stores a new job unless its requester already holds <paramref name="maxActive"/> (false then, nothing stored);
    /// <paramref name="reason"/> (the requester's stated reason) is sealed with the requester's id.</summary>
    public async Task<bool> InsertAsync(ExportJob job, TenantKeys keys, string reason, int maxActive, CancellationToken cancellationToken)
    {
        var sealedReason = new AttributedText(job.Principal, reason).Seal(keys, RecordsService.ExportReasonTypeCode, job.Id);
        // A connection lost before the commit: the whole of it once more on a new one (counted and inserted afresh there).
        return await database.WriteAsync(async scope =>
        {
            // Counted and inserted under one lock: parallel kick-offs (or servers) cannot each find room for one more.
            await database.LockAsync(scope, $"export-jobs {keys.TenantId} {job.Principal}", cancellationToken);
            using (var count = scope.Command(ActiveJobsSql).With("t", keys.TenantId).With("p", AuditChain.PrincipalReference(keys, job.Principal))
                .With("clear", job.Principal).With("now", job.CreatedAt.ToUnixTimeMilliseconds()))
            {
                if (await count.ScalarLongAsync(cancellationToken) >= maxActive) return false;
            }
            // Expired jobs go when new ones come: nothing is kept past its lifetime for long.
            using (var purge = scope.Command("DELETE FROM export_jobs WHERE expires_at < @now").With("now", job.CreatedAt.ToUnixTimeMilliseconds()))
            {
                await purge.ExecuteNonQueryAsync(cancellationToken);
            }
            using (var insert = scope.Command($"""
                INSERT INTO export_jobs ({Columns}) VALUES (@id, @t, @p, @l, @ty, @s, @tt, @u, @pa, @r, @st, @c, @e, NULL, NULL, @re)
                """).With("id", job.Id).With("t", job.TenantId).With("p", AuditChain.PrincipalReference(keys, job.Principal)).With("l", job.Level == ExportLevel.Patient ? "patient" : "system")
                .With("ty", string.Join(',', job.Types)).With("s", job.Since).With("tt", job.TransactionTime).With("u", job.RequestUrl)
                .With("pa", job.Patients).With("r", job.Resources).With("st", ExportJob.StatusName(job.Status))
                .With("c", job.CreatedAt.ToUnixTimeMilliseconds()).With("e", job.ExpiresAt.ToUnixTimeMilliseconds()).With("re", sealedReason))
            {
                await insert.ExecuteNonQueryAsync(cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);
    }

    /// <summary>A job of this tenant that has not expired, with its reason; null otherwise.</summary>
    public async Task<(ExportJob Job, string Reason)?> FindAsync(TenantKeys keys, string id, long now, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        using var command = connection.Command($"SELECT {Columns} FROM export_jobs WHERE id = @id AND tenant_id = @t AND expires_at >= @now")
            .With("id", id).With("t", keys.TenantId).With("now", now);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader, keys) : null;
    }

    // A job stored before the requester was sealed holds the id itself.
    private const string ActiveJobsSql =
        "SELECT count(*) FROM export_jobs WHERE tenant_id = @t AND principal IN (@p, @clear) AND expires_at >= @now AND status <> 'denied'";

    public async Task<int> CountActiveAsync(TenantKeys keys, string principal, long now, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        using var command = connection.Command(ActiveJobsSql)
            .With("t", keys.TenantId).With("p", AuditChain.PrincipalReference(keys, principal)).With("clear", principal).With("now", now);
        return (int)await command.ScalarLongAsync(cancellationToken);
    }

    /// <summary>The tenant's jobs awaiting approval, oldest first, with their reasons.</summary>
    public async Task<List<(ExportJob Job, string Reason)>> PendingAsync(TenantKeys keys, long now, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        using var command = connection.Command($"SELECT {Columns} FROM export_jobs WHERE tenant_id = @t AND status = 'awaiting-approval' AND expires_at >= @now ORDER BY created_at, id")
            .With("t", keys.TenantId).With("now", now);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var list = new List<(ExportJob, string)>();
        while (await reader.ReadAsync(cancellationToken)) list.Add(Read(reader, keys));
        return list;
    }

    /// <summary>Approves or denies a job still awaiting approval; false when it is not (any more).</summary>
    /// <summary>Records a decision on a job awaiting approval; <paramref name="decided"/> runs in the same transaction once the
    /// job has changed (its audit entry and alert), so the decision commits with them or not at all.</summary>
    public async Task<bool> DecideAsync(long tenant, string id, ExportStatus decision, string decidedBy, long now, Func<WriteScope, Task> decided,
        CancellationToken cancellationToken)
    {
        // A connection lost before the commit: the whole of it once more on a new one, the job found awaiting again and decided there
        // (the decision's entry and alert made again: the first attempt's were rolled back with it).
        return await database.WriteAsync(async scope =>
        {
            using var update = scope.Command("""
                UPDATE export_jobs SET status = @s, decided_by = @b, decided_at = @at
                WHERE id = @id AND tenant_id = @t AND status = 'awaiting-approval' AND expires_at >= @at
                """).With("s", ExportJob.StatusName(decision)).With("b", decidedBy).With("at", now).With("id", id).With("t", tenant);
            if (await update.ExecuteNonQueryAsync(cancellationToken) != 1) return false;
            await decided(scope);
            await scope.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);
    }

    /// <summary>Deletes a job of this principal (DELETE on the status URL); false when there is none.</summary>
    public async Task<bool> DeleteAsync(TenantKeys keys, string principal, string id, CancellationToken cancellationToken)
    {
        // A connection lost before the commit: once more on a new one (the first deleted nothing, rolled back).
        return await database.WriteAsync(async scope =>
        {
            using var delete = scope.Command("DELETE FROM export_jobs WHERE id = @id AND tenant_id = @t AND principal IN (@p, @clear)")
                .With("id", id).With("t", keys.TenantId).With("p", AuditChain.PrincipalReference(keys, principal)).With("clear", principal);
            var deleted = await delete.ExecuteNonQueryAsync(cancellationToken) == 1;
            await scope.CommitAsync(cancellationToken);
            return deleted;
        }, cancellationToken);
    }
}

