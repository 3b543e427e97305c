// The bound outside care relationships (DESIGN.md invariant 5: 25 distinct patients a day by default) counted in the store,
// so that it holds across every server of it: with the count in each server's memory, a stolen account read 25 patients
// through each server behind the balancer. Each patient a principal reads outside its care relationships (or breaks the
// glass on, from the grant asked for) is a row of guard_outside_care (the principal and the patient as the audit chain's own
// blind indexes, principal_ix and patient_ix, never an id or a name; the time of its last read), written and counted in one
// transaction under a lock on the principal.
// Only requests that carry such patients come here: a read within care relationships never touches the store for this.
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Storage;

namespace Vauban.Guard;

internal static class OutsideCareReads
{
    /// <summary>The window of the bound (<see cref="GuardLimits.OutsideCarePerDay"/>): a sliding day.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromDays(1);

    /// <summary>
    /// Records that <paramref name="principal"/> reads <paramref name="patients"/> now (a patient already read in the window
    /// counts once: its row's time moves forward), then counts its distinct patients outside care relationships in the window,
    /// these included. Insert first, then count, in one transaction that holds the principal's lock (PostgreSQL: an advisory
    /// lock; SQLite: the writer, which BEGIN IMMEDIATE holds across processes): two requests of one principal on two servers
    /// are counted one after the other, and the second sees the first's patients — under read committed without the lock, each
    /// counted the rows committed before it plus its own, and both slipped under the bound. In <paramref name="enclosing"/>, a
    /// write transaction the request already holds (a transaction Bundle's read), when given; committed before returning
    /// otherwise. Patients of a request then refused (contained, or asked to prove both factors again) stay counted: they were
    /// asked for, and the retry of one admitted later counts it once. A store that cannot be reached throws: nothing leaves
    /// uncounted (fail closed, as an audit entry that cannot be written).
    /// </summary>
    public static async Task<int> RecordAndCountAsync(StoreDatabase database, WriteScope? enclosing, TenantKeys keys, long tenant, string principal,
        IReadOnlyCollection<string> patients, long nowMs, CancellationToken cancellationToken)
    {
        var who = AuditChain.PrincipalIndex(keys, principal);
        async Task<int> RecordAndCount(WriteScope scope)
        {
            await database.LockAsync(scope, LockKey(tenant, who), cancellationToken);
            using (var upsert = scope.Command(""))
            {
                upsert.With("t", tenant).With("p", who).With("at", nowMs);
                var rows = new List<string>(patients.Count);
                var i = 0;
                foreach (var patient in patients)
                {
                    var name = "x" + i++.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    upsert.With(name, AuditChain.PatientIndex(keys, patient));
                    rows.Add($"(@t, @p, @{name}, @at)");
                }
                upsert.CommandText = "INSERT INTO guard_outside_care (tenant_id, principal_ix, patient_ix, read_at) VALUES " + string.Join(", ", rows)
                    + " ON CONFLICT (tenant_id, principal_ix, patient_ix) DO UPDATE SET read_at = excluded.read_at WHERE excluded.read_at > guard_outside_care.read_at";
                await upsert.ExecuteNonQueryAsync(cancellationToken);
            }
            int count;
            using (var counted = scope.Command("SELECT count(*) FROM guard_outside_care WHERE tenant_id = @t AND principal_ix = @p AND read_at > @since")
                .With("t", tenant).With("p", who).With("since", nowMs - (long)Window.TotalMilliseconds))
            {
                count = (int)await counted.ScalarLongAsync(cancellationToken);
            }
            if (scope != enclosing) await scope.CommitAsync(cancellationToken);
            return count;
        }
        // Alone, run once more from its start on a new connection when its connection was found lost before it committed (the
        // upsert and the count are the same again).
        return enclosing is not null ? await RecordAndCount(enclosing) : await database.WriteAsync(scope => RecordAndCount(scope), cancellationToken);
    }

    /// <summary>Forgets what <paramref name="owner"/> (an account or a client) read outside its care relationships, in the release's
    /// transaction: the officer reviewed the access, and its reading starts afresh on every server.</summary>
    public static async Task ForgetAsync(StoreDatabase database, WriteScope scope, TenantKeys keys, long tenant, string owner, CancellationToken cancellationToken)
    {
        var who = AuditChain.PrincipalIndex(keys, owner);
        await database.LockAsync(scope, LockKey(tenant, who), cancellationToken);
        using var delete = scope.Command("DELETE FROM guard_outside_care WHERE tenant_id = @t AND principal_ix = @p").With("t", tenant).With("p", who);
        await delete.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Removes the rows older than the window, of every principal (those still reading and those that stopped). On PostgreSQL
    /// the rows a principal's count holds at that moment are skipped, not waited for (the next prune takes them): a prune waiting on a
    /// count that waits on it was a deadlock PostgreSQL breaks by failing one.</summary>
    public static async Task PruneAsync(StoreDatabase database, long nowMs, CancellationToken cancellationToken)
    {
        await using var scope = await database.BeginWriteAsync(cancellationToken);
        using var delete = scope.Command(database.Engine == StorageEngine.Postgres
            ? """
              DELETE FROM guard_outside_care WHERE (tenant_id, principal_ix, patient_ix) IN
                (SELECT tenant_id, principal_ix, patient_ix FROM guard_outside_care WHERE read_at <= @since FOR UPDATE SKIP LOCKED)
              """
            : "DELETE FROM guard_outside_care WHERE read_at <= @since").With("since", nowMs - (long)Window.TotalMilliseconds);
        await delete.ExecuteNonQueryAsync(cancellationToken);
        await scope.CommitAsync(cancellationToken);
    }

    private static string LockKey(long tenant, long principal) =>
        FormattableString.Invariant($"guard-outside-care:{tenant}:{principal}");
}
