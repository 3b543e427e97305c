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

    /// <summary>Null while the store can be reached; otherwise the cause, for the log only.</summary>
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
        lock (_gate) _answeredAt = Environment.TickCount64;
        return cause;
    }
}
