// Failed sign-ins counted per account and per source address, in the database (a restart does not
// reset them). Past a threshold each further attempt must wait, the wait doubling with each failure up
// to a bound; an attempt made too early is refused without even checking the password. The account
// key is the establishment and the e-mail's blind index, so an address with no account is throttled
// exactly like one with an account: throttling never tells whether an account exists.
using System.Net;
using System.Net.Sockets;
using Vauban.Storage;

namespace Vauban.Access;

public sealed class SignInThrottle
{
    private const string AccountScope = "account";
    private const string SourceScope = "source";
    private static readonly TimeSpan Forget = TimeSpan.FromHours(24);
    private readonly StoreDatabase _database;
    private readonly TimeProvider _time;
    private readonly AccountOptions _options;

    internal SignInThrottle(StoreDatabase database, TimeProvider time, AccountOptions options)
    {
        _database = database;
        _time = time;
        _options = options;
    }

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

    /// <summary>How long the caller must still wait before this attempt may be evaluated, or null when it may be now.
    /// Without <paramref name="accountKey"/> (a passkey that names no account yet) only the source counts.</summary>
    public async Task<TimeSpan?> WaitAsync(string? accountKey, string? source, CancellationToken cancellationToken)
    {
        var account = accountKey is null ? null : await WaitAsync(AccountScope, accountKey, _options.AccountFailuresBeforeDelay, cancellationToken);
        var from = source is null ? null : await WaitAsync(SourceScope, source, _options.SourceFailuresBeforeDelay, cancellationToken);
        return account is null ? from : from is null ? account : (account > from ? account : from);
    }

    public async Task RecordFailureAsync(string? accountKey, string? source, CancellationToken cancellationToken)
    {
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        foreach (var (kind, key) in new[] { (AccountScope, accountKey), (SourceScope, source) })
        {
            if (key is null) continue;
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            using var upsert = scope.Command("""
                INSERT INTO sign_in_failures (scope, key, failures, last_failure_at) VALUES (@s, @k, 1, @n)
                ON CONFLICT (scope, key) DO UPDATE SET
                  failures = CASE WHEN sign_in_failures.last_failure_at < @forget THEN 1 ELSE sign_in_failures.failures + 1 END, last_failure_at = @n
                """).With("s", kind).With("k", key).With("n", now).With("forget", now - (long)Forget.TotalMilliseconds);
            await upsert.ExecuteNonQueryAsync(cancellationToken);
        }
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>A successful sign-in clears the account's counter (not the source's: one good password does not excuse a thousand bad ones).</summary>
    public async Task RecordSuccessAsync(string accountKey, CancellationToken cancellationToken)
    {
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using var delete = scope.Command("DELETE FROM sign_in_failures WHERE scope = @s AND key = @k").With("s", AccountScope).With("k", accountKey);
        await delete.ExecuteNonQueryAsync(cancellationToken);
        await scope.CommitAsync(cancellationToken);
    }

    private async Task<TimeSpan?> WaitAsync(string kind, string key, int threshold, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("SELECT failures, last_failure_at FROM sign_in_failures WHERE scope = @s AND key = @k").With("s", kind).With("k", key);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        var failures = reader.GetInt32(0);
        var last = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1));
        var now = _time.GetUtcNow();
        if (failures < threshold || now - last > Forget) return null;
        var delay = TimeSpan.FromSeconds(Math.Min(Math.Pow(2, Math.Min(failures - threshold, 30)), _options.MaxDelay.TotalSeconds));
        var remaining = last + delay - now;
        return remaining > TimeSpan.Zero ? remaining : null;
    }
}
