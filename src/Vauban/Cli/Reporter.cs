namespace Vauban.Cli;

/// <summary>Progress reported at once, on the reporting thread: a terminal's bar follows the loader in order.
/// (<see cref="Progress{T}"/> posts each report to the thread pool, where they run late and out of order, concurrently.)</summary>
internal sealed class Reporter<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
