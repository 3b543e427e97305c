// What ASP.NET Core may write to the log, whatever the logging configuration says. Its request lines carry query strings
// (search values: names, phone numbers, NIRs), Kestrel quotes a malformed request line once its Information level is on, a
// minimal API quotes the value of a parameter it could not bind at Debug, and the exception handler logs the exception's
// message, which may quote data. Filter rules alone do not hold: a rule that names a provider outranks every rule that does
// not, so an operator's Logging__Console__LogLevel__Default=Debug (or Trace) turned them all back on. The limits are applied
// by the logger factory itself, after whatever the rules decided.
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Vauban.Web;

internal sealed class FrameworkLogLimits(ILoggerFactory inner) : ILoggerFactory
{
    // Most specific first. None: never logged.
    private static readonly (string Category, LogLevel Minimum)[] Limits =
    [
        ("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None),
        // WriteUnexpectedErrorAsync logs each unexpected exception by type, site and correlation id instead.
        ("Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware", LogLevel.None),
        ("Microsoft.AspNetCore", LogLevel.Warning),
        // A start that fails (a port already taken) is logged here with its stack trace, then reaches `vauban serve`, which
        // says it in one line; Vauban runs no hosted service of its own whose failure this would be the only trace of.
        ("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical),
    ];

    /// <summary>Replaces the host's logger factory with one that holds the framework's categories to <see cref="Limits"/>.</summary>
    public static void AddTo(IServiceCollection services) =>
        services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(provider => new FrameworkLogLimits(new LoggerFactory(
            provider.GetServices<ILoggerProvider>(), provider.GetRequiredService<IOptionsMonitor<LoggerFilterOptions>>(),
            provider.GetService<IOptions<LoggerFactoryOptions>>(), provider.GetService<IExternalScopeProvider>()))));

    public static LogLevel MinimumFor(string category)
    {
        foreach (var (limited, minimum) in Limits)
        {
            if (category.StartsWith(limited, StringComparison.Ordinal) && (category.Length == limited.Length || category[limited.Length] == '.')) return minimum;
        }
        return LogLevel.Trace;
    }

    public ILogger CreateLogger(string categoryName) => MinimumFor(categoryName) switch
    {
        LogLevel.Trace => inner.CreateLogger(categoryName),
        LogLevel.None => NullLogger.Instance,
        var minimum => new Limited(inner.CreateLogger(categoryName), minimum),
    };

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose() => inner.Dispose();

    private sealed class Limited(ILogger inner, LogLevel minimum) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= minimum) inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
