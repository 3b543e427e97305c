// Failed sign-ins counted per account and per source address, in the database (a restart does not
// reset them). Past a threshold each further attempt must wait, the wait doubling with each failure up
// to a bound; an attempt made too early is refused without even checking the password. The account
// key is the establishment and the e-mail's blind index, so an address with no account is throttled
// exactly like one with an account: throttling never tells whether an account exists.
// A source in the establishment's own networks (AccountOptions.InternalNetworks) is shared by hundreds of
// colleagues: its failures are counted but never delay anyone; past a rate they alert the security officer
// instead (ADR 0007, revision of 2026-12).
using System.Net;
using System.Net.Sockets;
using Vauban.Storage;

namespace Vauban.Access;

public sealed class SignInThrottle
{
    private const string AccountScope = "account";
    private const string SourceScope = "source";
    /// <summary>An internal source's alert window: its failure count when the window began (failures) and when (last_failure_at).</summary>
    private const string InternalWindowScope = "internal-window";
    private static readonly TimeSpan AlertWindow = TimeSpan.FromHours(1);
    private static readonly TimeSpan Forget = TimeSpan.FromHours(24);
    private const string CounterSql = "SELECT failures, last_failure_at FROM sign_in_failures WHERE scope = @s AND key = @k";
    private readonly StoreDatabase _database;
    private readonly TimeProvider _time;
    private readonly AccountOptions _options;

    private readonly SecurityAlerts _alerts;

    internal SignInThrottle(StoreDatabase database, TimeProvider time, AccountOptions options, SecurityAlerts alerts)
    {
        _database = database;
        _time = time;
        _options = options;
        _alerts = alerts;
    }

    /// <summary>How long a throttled caller waits, as a message says it: "1 second", "30 seconds" (whole seconds, rounded up).</summary>
    public static string WaitText(TimeSpan wait) => Math.Ceiling(wait.TotalSeconds) is var seconds && seconds == 1 ? "1 second" : $"{seconds} seconds";

    /// <summary>The source a sign-in attempt is counted against: an IPv4 address (also when it reaches a dual-stack listener as
    /// ::ffff:a.b.c.d), or an IPv6 address's /64 — one subscriber's network: whoever has one IPv6 address has 2^64 of them, and a
    /// count per address would never reach its threshold.</summary>
    public static string? SourceKey(IPAddress? address)
    {
        if (address is null) return null;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return address.ToString();
        var bytes = address.GetAddressBytes();
        bytes.AsSpan(8).Clear();
        return new IPAddress(bytes) + "/64";
    }

    /// <summary>The source an attempt from <paramref name="address"/> is counted against (<see cref="SourceKey"/>), and whether it is
    /// in one of the establishment's own networks.</summary>
    public SignInSource? SourceOf(IPAddress? address) =>
        SourceKey(address) is { } key ? new SignInSource(key, NetworkList.Contains(_options.InternalNetworks, address!)) : null;

    /// <summary>How long the caller must still wait before this attempt may be evaluated, or null when it may be now.
    /// Without <paramref name="accountKey"/> (a passkey that names no account yet) only the source counts.</summary>
    public async Task<TimeSpan?> WaitAsync(string? accountKey, SignInSource? source, CancellationToken cancellationToken)
    {
        var account = accountKey is null ? null : await WaitAsync(AccountScope, accountKey, _options.AccountFailuresBeforeDelay, cancellationToken);
        var from = source is null ? null : await WaitAsync(SourceScope, source.Key, SourceThreshold(source), cancellationToken);
        return account is null ? from : from is null ? account : (account > from ? account : from);
    }

    /// <summary>
    /// Admits an attempt now (<see cref="ThrottleAdmission.Wait"/> null) or says how long to wait first. An admitted attempt is
    /// counted as a failure at once, under a lock on each key: checked first and counted after its failure, the attempts of a
    /// burst sent together had all been checked before any had failed, and every one was evaluated (hundreds of guesses at one
    /// account before its lockout, or from one address before its delays). An attempt that turns out not to fail takes its
    /// count back (<see cref="TakeBackAsync"/>).
    /// A source in the establishment's own networks is counted but never waits for its own count; when its failures pass
    /// <see cref="AccountOptions.InternalSourceFailuresBeforeAlert"/> within the alert window, every establishment's security
    /// officer is alerted (<paramref name="establishment"/>: the one a person's attempt names; none, an API client's: no alert).
    /// </summary>
    public async Task<ThrottleAdmission> AdmitAsync(string? accountKey, SignInSource? source, long? establishment, CancellationToken cancellationToken)
    {
        var keys = new[] { (Scope: AccountScope, Key: accountKey, Threshold: _options.AccountFailuresBeforeDelay), (Scope: SourceScope, Key: source?.Key, Threshold: SourceThreshold(source)) }
            .Where(k => k.Key is not null).ToList();
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // A lost connection before the commit: the whole of it once more on a new one, read and counted afresh there.
        return await _database.WriteAsync(async scope =>
        {
            TimeSpan? wait = null;
            var counted = new List<ThrottleAdmission.Count>();
            foreach (var (kind, key, threshold) in keys)
            {
                // Account before source, always: two attempts never wait for each other's locks in opposite orders.
                await _database.LockAsync(scope, "sign-in:" + kind + ":" + key, cancellationToken);
                using var command = scope.Command(CounterSql).With("s", kind).With("k", key!);
                using var reader = await command.ExecuteReaderAsync(cancellationToken);
                long previous = 0;
                if (await reader.ReadAsync(cancellationToken))
                {
                    previous = reader.GetInt64(1);
                    var remaining = Remaining(reader.GetInt32(0), DateTimeOffset.FromUnixTimeMilliseconds(previous), threshold);
                    if (remaining is not null && (wait is null || remaining > wait)) wait = remaining;
                }
                counted.Add(new ThrottleAdmission.Count(kind, key!, previous, 0));
            }
            if (wait is not null) return new ThrottleAdmission(wait, []); // nothing written: the scope rolls back
            for (var i = 0; i < counted.Count; i++)
            {
                counted[i] = counted[i] with { FailuresAfter = await CountAsync(scope, counted[i].Scope, counted[i].Key, now, cancellationToken) };
            }
            if (source is { Internal: true } && establishment is not null)
            {
                // The failures before this attempt (finished or still being checked): this one may yet turn out right.
                await AlertOnInternalFailuresAsync(scope, source.Key, counted[^1].FailuresAfter - 1, now, cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
            return new ThrottleAdmission(null, counted);
        }, cancellationToken);
    }

    /// <summary>An admitted attempt that did not fail (a right password, code or passkey) takes back the count
    /// <see cref="AdmitAsync"/> gave it, and the time of the last failure it set when no failure was counted after it: a person who
    /// had waited out the delay and typed the right password is not held back at the second factor by their own success.
    /// Earlier failures stay counted. <paramref name="sourceOnly"/>: the account's count was cleared by the sign-in itself.</summary>
    public async Task TakeBackAsync(ThrottleAdmission admission, CancellationToken cancellationToken, bool sourceOnly = false)
    {
        ArgumentNullException.ThrowIfNull(admission);
        if (admission.Counted.Count == 0) return;
        await _database.WriteAsync(async scope =>
        {
            foreach (var count in admission.Counted)
            {
                if (sourceOnly && count.Scope != SourceScope) continue;
                using var update = scope.Command("""
                    UPDATE sign_in_failures SET failures = failures - 1,
                      last_failure_at = CASE WHEN failures = @mine THEN @previous ELSE last_failure_at END
                    WHERE scope = @s AND key = @k AND failures > 0
                    """).With("s", count.Scope).With("k", count.Key).With("mine", count.FailuresAfter).With("previous", count.PreviousFailureAt);
                await update.ExecuteNonQueryAsync(cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);
    }

    public Task RecordFailureAsync(string? accountKey, SignInSource? source, CancellationToken cancellationToken) =>
        _database.WriteAsync(async scope =>
        {
            foreach (var (kind, key) in new[] { (AccountScope, accountKey), (SourceScope, source?.Key) })
            {
                if (key is not null) await CountAsync(scope, kind, key, _time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);

    /// <summary>Counts one failure; returns the key's count with it, so that a take-back knows whether it was the last counted.</summary>
    private static async Task<long> CountAsync(WriteScope scope, string kind, string key, long now, CancellationToken cancellationToken)
    {
        using var upsert = scope.Command("""
            INSERT INTO sign_in_failures (scope, key, failures, last_failure_at) VALUES (@s, @k, 1, @n)
            ON CONFLICT (scope, key) DO UPDATE SET
              failures = CASE WHEN sign_in_failures.last_failure_at < @forget THEN 1 ELSE sign_in_failures.failures + 1 END, last_failure_at = @n
            RETURNING failures
            """).With("s", kind).With("k", key).With("n", now).With("forget", now - (long)Forget.TotalMilliseconds);
        return await upsert.ScalarLongAsync(cancellationToken);
    }

    /// <summary>A successful sign-in clears the account's counter (not the source's: one good password does not excuse a thousand bad ones).</summary>
    public Task RecordSuccessAsync(string accountKey, CancellationToken cancellationToken) =>
        _database.WriteAsync(async scope =>
        {
            using var delete = scope.Command("DELETE FROM sign_in_failures WHERE scope = @s AND key = @k").With("s", AccountScope).With("k", accountKey);
            await delete.ExecuteNonQueryAsync(cancellationToken);
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);

    /// <summary>An internal source is never delayed for its own count: no count reaches this threshold.</summary>
    private int SourceThreshold(SignInSource? source) => source is { Internal: true } ? int.MaxValue : _options.SourceFailuresBeforeDelay;

    /// <summary>Alerts the officer when an internal source's failures (<paramref name="failures"/>, its count before this attempt)
    /// grew by the alert threshold within one window: the window begins at the source's first attempt after the last one ended,
    /// or at the last alert, so that a spray is reported again for every further as many failures, and the steady typos of
    /// a busy address (whose count, never idle for 24 hours, only grows) are not.</summary>
    /// <remarks>The count is the source's, whatever establishments its attempts named, so the alert goes to every establishment's
    /// officer: sent to the one the crossing attempt named, an insider spraying one hospital's accounts could steer every alert to
    /// another hospital on the same server by naming it in that attempt (an outside review).</remarks>
    private async Task AlertOnInternalFailuresAsync(WriteScope scope, string source, long failures, long now, CancellationToken cancellationToken)
    {
        long? windowFailures = null, windowStart = null;
        using (var read = scope.Command(CounterSql).With("s", InternalWindowScope).With("k", source))
        using (var reader = await read.ExecuteReaderAsync(cancellationToken))
        {
            if (await reader.ReadAsync(cancellationToken)) (windowFailures, windowStart) = (reader.GetInt64(0), reader.GetInt64(1));
        }
        var open = windowStart is { } start && start >= now - (long)AlertWindow.TotalMilliseconds && windowFailures <= failures;
        var grown = open ? failures - windowFailures!.Value : 0;
        if (open && grown < _options.InternalSourceFailuresBeforeAlert) return;
        using (var window = scope.Command("""
            INSERT INTO sign_in_failures (scope, key, failures, last_failure_at) VALUES (@s, @k, @f, @n)
            ON CONFLICT (scope, key) DO UPDATE SET failures = @f, last_failure_at = @n
            """).With("s", InternalWindowScope).With("k", source).With("f", failures).With("n", now))
        {
            await window.ExecuteNonQueryAsync(cancellationToken);
        }
        if (!open) return;
        var establishments = new List<long>();
        using (var list = scope.Command("SELECT id FROM tenants ORDER BY id"))
        using (var reader = await list.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) establishments.Add(reader.GetInt64(0));
        }
        foreach (var tenantId in establishments)
        {
            await _alerts.RaiseAsync(scope, tenantId, KnownAlertKinds.SignInSpraying, "unknown",
                $"{grown} failed sign-ins within {AlertWindow.TotalMinutes:0} minutes from {source}, in the establishments' own networks, on any accounts of any "
                + "establishment of this server: password spraying from inside, or a device with a wrong password? Sources in these networks are not delayed per "
                + "source (each account's own failures still are); every attempt is on the audit chain of the establishment it named, with its source.", cancellationToken);
        }
    }

    private async Task<TimeSpan?> WaitAsync(string kind, string key, int threshold, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command(CounterSql).With("s", kind).With("k", key);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Remaining(reader.GetInt32(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), threshold) : null;
    }

    private TimeSpan? Remaining(int failures, DateTimeOffset last, int threshold)
    {
        var now = _time.GetUtcNow();
        if (failures < threshold || now - last > Forget) return null;
        var delay = TimeSpan.FromSeconds(Math.Min(Math.Pow(2, Math.Min(failures - threshold, 30)), _options.MaxDelay.TotalSeconds));
        var remaining = last + delay - now;
        return remaining > TimeSpan.Zero ? remaining : null;
    }
}

/// <summary>The source a sign-in attempt is counted against: its key (an IPv4 address or an IPv6 /64, <see cref="SignInThrottle.SourceKey"/>)
/// and whether it is in the establishment's own networks, where it is not delayed for the failures of everyone behind it.</summary>
public sealed record SignInSource(string Key, bool Internal);

/// <summary>The answer to a sign-in attempt's admission: how long to wait, or what was counted for it (to take back if it
/// does not fail).</summary>
public sealed class ThrottleAdmission
{
    internal ThrottleAdmission(TimeSpan? wait, IReadOnlyList<Count> counted)
    {
        Wait = wait;
        Counted = counted;
    }

    /// <summary>Null when the attempt may be evaluated now.</summary>
    public TimeSpan? Wait { get; }

    internal IReadOnlyList<Count> Counted { get; }

    /// <summary>One counter the attempt added to: its last failure time before (0: none), and the count once it had added.</summary>
    internal sealed record Count(string Scope, string Key, long PreviousFailureAt, long FailuresAfter);
}
