// The store check behind /healthz: at most one at a time and one a second, whoever asks.
// The endpoint needs no credentials: a database connection per request would let anyone take the pool's connections
// from clinicians (and, while the store is down, write a log line per request).
namespace Vauban.Web;

internal sealed class StoreHealth(VaubanStore store, ILogger logger)
{
    private const long FreshForMilliseconds = 1000;
    private readonly Lock _gate = new();
    private Task<string?>? _check;
    private long _answeredAt;

    /// <summary>What <see cref="UnavailableAsync"/> answers once another process rotated the store's master key: this process holds
    /// the previous one, and only a restart with the new key brings back what needs it.</summary>
    public const string MasterKeyRotated = "master key rotated";

    /// <summary>Null while the store can be reached and takes this process's master key; <see cref="MasterKeyRotated"/> once it no
    /// longer does; otherwise the cause, for the log only.</summary>
    public Task<string?> UnavailableAsync()
    {
        lock (_gate)
        {
            var stale = _check is null || (_check.IsCompleted && Environment.TickCount64 - _answeredAt >= FreshForMilliseconds);
            if (stale) _check = CheckAsync();
            return _check!;
        }
    }

    private async Task<string?> CheckAsync()
    {
        await Task.Yield(); // outside the lock
        // Not the asking request's cancellation: the answer is shared with every request asking meanwhile.
        var cause = await store.UnavailableAsync(CancellationToken.None);
        if (cause is not null) logger.LogWarning("Health check: the store cannot be reached: {Cause}", cause);
        else if (await RotatedAwayAsync() is not null)
        {
            VaubanHost.TellMasterKeyRotated(store, logger, correlation: null);
            cause = MasterKeyRotated;
        }
        lock (_gate) _answeredAt = Environment.TickCount64;
        return cause;
    }

    private async Task<string?> RotatedAwayAsync()
    {
        try
        {
            return await store.MasterKeyRotatedAwayAsync(CancellationToken.None);
        }
        catch (Exception e) when (VaubanStore.UnavailableCause(e) is not null)
        {
            return null; // the store went away between the two queries: the next check says so
        }
    }
}
