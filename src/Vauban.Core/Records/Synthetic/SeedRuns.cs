// The claim each `vauban seed` of an establishment holds on its seed and date (schema step 24): a row inserted under the
// primary key (establishment, seed, date) before the first record is written, naming the process that holds it, marked
// complete (or interrupted) when the run ends. The same seed and date give the same records, ids included: two runs of them at
// once both passed the check for the establishment's first record, and the second rewrote every record as a second version
// (SQLite) or died on the database's UNIQUE error; a run killed midway could not be finished. With the claim, the second run
// is refused before it writes anything, and a run left unfinished is told from one still running (the process it names is
// gone, on this host) and taken over by `seed --resume`.
using System.Diagnostics;
using System.Globalization;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Storage;

namespace Vauban.Records.Synthetic;

public enum SeedRunState
{
    /// <summary>Claimed by a process that has not said it ended: running, or killed (<see cref="SeedRun.HolderRuns"/>).</summary>
    Running,
    /// <summary>Ended before it finished (an error, a Ctrl-C): its process said so.</summary>
    Interrupted,
    /// <summary>Every record loaded.</summary>
    Complete,
}

/// <summary>A seed run's claim: what it loads (<paramref name="Patients"/>, of which <paramref name="Canaries"/> canaries), how far it
/// went, and the process that holds it (<paramref name="Host"/>, <paramref name="ProcessId"/>, and that process's start, which tells
/// it from a later process given the same id).</summary>
public sealed record SeedRun(int Seed, DateOnly AsOf, int Patients, int Canaries, SeedRunState State, string Host, int ProcessId,
    DateTimeOffset ProcessStarted, DateTimeOffset Started)
{
    /// <summary>Whether the process that holds the claim runs now: known on the host it runs on (true, or false once that process
    /// is gone: killed, or the machine restarted), null on another host, where only the operator can tell.</summary>
    public bool? HolderRuns
    {
        get
        {
            if (!string.Equals(Host, SeedRuns.ThisHost, StringComparison.Ordinal)) return null;
            try
            {
                using var process = Process.GetProcessById(ProcessId);
                // A process id is given again once its process is gone: only the same start is the same process.
                return !process.HasExited && (process.StartTime.ToUniversalTime() - ProcessStarted.UtcDateTime).Duration() < TimeSpan.FromSeconds(2);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                return false;
            }
        }
    }

    /// <summary>"process 4242 on host db-1, begun 2026-12-07 21:46 UTC", for the operator.</summary>
    public string Holder => string.Create(CultureInfo.InvariantCulture, $"process {ProcessId} on host {Host}, begun {Started.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC");
}

public sealed class SeedRuns
{
    private readonly StoreDatabase _database;
    private readonly AuditTrail _audit;
    private readonly TimeProvider _time;

    internal SeedRuns(StoreDatabase database, AuditTrail audit, TimeProvider time)
    {
        _database = database;
        _audit = audit;
        _time = time;
    }

    internal static string ThisHost => Environment.MachineName;

    private static readonly Lazy<long> ThisProcessStarted = new(() =>
    {
        using var process = Process.GetCurrentProcess();
        return new DateTimeOffset(process.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds();
    });

    /// <summary>Claims <paramref name="seed"/> and <paramref name="asOf"/> in the establishment of <paramref name="context"/> for this
    /// process, before anything is loaded: null when claimed (the claim on the establishment's chain); else the claim already there,
    /// untouched. The claim is read first, without writing: a second run is refused at once, even while the first holds the
    /// store's write lock for a batch.</summary>
    public async Task<SeedRun?> ClaimAsync(AccessContext context, int seed, DateOnly asOf, int patients, int canaries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (await FindAsync(context.Tenant.Id, seed, asOf, cancellationToken) is { } held) return held;
        var claimed = await _database.WriteAsync(async scope =>
        {
            using var insert = scope.Command("INSERT INTO seed_runs (tenant_id, seed, as_of, patients, canaries, state, host, process_id, process_started, started_at) "
                + "VALUES (@t, @s, @d, @n, @c, @state, @h, @p, @ps, @at) ON CONFLICT (tenant_id, seed, as_of) DO NOTHING");
            Key(insert, context.Tenant.Id, seed, asOf).With("n", patients).With("c", canaries).With("state", Running);
            Holder(insert).With("at", _time.GetUtcNow().ToUnixTimeMilliseconds());
            if (await insert.ExecuteNonQueryAsync(cancellationToken) != 1) return false;
            await AppendAsync(scope, context, seed, asOf, string.Create(CultureInfo.InvariantCulture, $"begun ({patients} patients, {canaries} canaries)"), cancellationToken);
            await scope.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);
        // Claimed by another run between the reading and the insert.
        return claimed ? null : await FindAsync(context.Tenant.Id, seed, asOf, cancellationToken)
            ?? throw new InvalidOperationException("The seed run's claim changed while it was read: run the command again.");
    }

    /// <summary>Takes over <paramref name="from"/>, a run that did not finish, for this process (`seed --resume`): false when another
    /// process took it, or it changed, since it was read.</summary>
    public async Task<bool> TakeOverAsync(AccessContext context, SeedRun from, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(from);
        return await _database.WriteAsync(async scope =>
        {
            using var update = scope.Command("UPDATE seed_runs SET state = @state, host = @h, process_id = @p, process_started = @ps, started_at = @at, ended_at = NULL "
                + "WHERE tenant_id = @t AND seed = @s AND as_of = @d AND state = @was AND host = @wasHost AND process_id = @wasProcess AND started_at = @wasStarted");
            Key(update, context.Tenant.Id, from.Seed, from.AsOf).With("state", Running).With("at", _time.GetUtcNow().ToUnixTimeMilliseconds());
            Holder(update).With("was", Name(from.State)).With("wasHost", from.Host).With("wasProcess", from.ProcessId)
                .With("wasStarted", from.Started.ToUnixTimeMilliseconds());
            if (await update.ExecuteNonQueryAsync(cancellationToken) != 1) return false;
            await AppendAsync(scope, context, from.Seed, from.AsOf, $"resumed, taken over from {from.Holder}", cancellationToken);
            await scope.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);
    }

    /// <summary>Marks this process's run complete, or interrupted (it ended before every record was loaded).</summary>
    public Task EndAsync(AccessContext context, int seed, DateOnly asOf, bool complete, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return _database.WriteAsync(async scope =>
        {
            using var update = scope.Command("UPDATE seed_runs SET state = @state, ended_at = @at WHERE tenant_id = @t AND seed = @s AND as_of = @d AND state = @running "
                + "AND host = @h AND process_id = @p AND process_started = @ps");
            Key(update, context.Tenant.Id, seed, asOf).With("state", complete ? Complete : Interrupted).With("at", _time.GetUtcNow().ToUnixTimeMilliseconds())
                .With("running", Running);
            Holder(update);
            if (await update.ExecuteNonQueryAsync(cancellationToken) == 1)
            {
                await AppendAsync(scope, context, seed, asOf, complete ? "complete" : "interrupted before every record was loaded", cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);
    }

    /// <summary>Withdraws this process's claim, nothing loaded under it (the records were there from before claims were kept).</summary>
    public Task WithdrawAsync(AccessContext context, int seed, DateOnly asOf, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return _database.WriteAsync(async scope =>
        {
            using var delete = scope.Command("DELETE FROM seed_runs WHERE tenant_id = @t AND seed = @s AND as_of = @d AND state = @running AND host = @h AND process_id = @p AND process_started = @ps");
            Holder(Key(delete, context.Tenant.Id, seed, asOf).With("running", Running));
            if (await delete.ExecuteNonQueryAsync(cancellationToken) == 1)
            {
                await AppendAsync(scope, context, seed, asOf, "withdrawn, nothing loaded (its records were there already)", cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
            return true;
        }, cancellationToken);
    }

    /// <summary>The claim on <paramref name="seed"/> and <paramref name="asOf"/> in the establishment, if any.</summary>
    public async Task<SeedRun?> FindAsync(long tenantId, int seed, DateOnly asOf, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var read = connection.Command("SELECT patients, canaries, state, host, process_id, process_started, started_at FROM seed_runs WHERE tenant_id = @t AND seed = @s AND as_of = @d");
        Key(read, tenantId, seed, asOf);
        using var reader = await read.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        var state = reader.GetString(2) switch
        {
            Complete => SeedRunState.Complete,
            Interrupted => SeedRunState.Interrupted,
            _ => SeedRunState.Running,
        };
        return new SeedRun(seed, asOf, reader.GetInt32(0), reader.GetInt32(1), state, reader.GetString(3), reader.GetInt32(4),
            DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)));
    }

    private const string Running = "running";
    private const string Interrupted = "interrupted";
    private const string Complete = "complete";

    private static string Name(SeedRunState state) => state switch
    {
        SeedRunState.Complete => Complete,
        SeedRunState.Interrupted => Interrupted,
        _ => Running,
    };

    private static System.Data.Common.DbCommand Key(System.Data.Common.DbCommand command, long tenantId, int seed, DateOnly asOf) =>
        command.With("t", tenantId).With("s", seed).With("d", asOf.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));

    private static System.Data.Common.DbCommand Holder(System.Data.Common.DbCommand command) =>
        command.With("h", ThisHost).With("p", Environment.ProcessId).With("ps", ThisProcessStarted.Value);

    /// <summary>The run's claim, taken over, ended or withdrawn, on the establishment's chain, in the transaction that changes it.</summary>
    private Task AppendAsync(WriteScope scope, AccessContext context, int seed, DateOnly asOf, string what, CancellationToken cancellationToken) =>
        _audit.AppendAsync(scope, context, AuditAction.Administration, AuditOutcome.Success, null, [new AuditedRecord("cli:seed", null, null)], cancellationToken,
            string.Create(CultureInfo.InvariantCulture, $"seed --seed {seed} --as-of {asOf:yyyy-MM-dd}: {what}"));
}
