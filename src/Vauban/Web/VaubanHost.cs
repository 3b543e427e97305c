// The web host: FHIR API, token endpoint and the staff pages (sign-in, enrolment) on Kestrel.
// Program-like table of contents; tests and benchmarks start the same host on 127.0.0.1.
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.HttpOverrides;
using Vauban.Fhir;

namespace Vauban.Web;

public sealed record ServerOptions(string Urls)
{
    /// <summary>The default limit on one resource's body, which `vauban import` holds a bundle's resources to as well.</summary>
    public const int DefaultMaxResourceKib = 1024;

    public long MaxResourceBytes { get; init; } = DefaultMaxResourceKib * 1024L;
    public long MaxBundleBytes { get; init; } = 32 * 1024 * 1024;

    /// <summary>The reverse proxies (addresses or networks) whose X-Forwarded-For, -Proto and -Host are believed: behind a
    /// TLS-terminating proxy, the client's own address (audit entries, throttling per source) and the public scheme and
    /// host (cookie origin checks, links, the token endpoint's audience). Empty: the headers are ignored, whoever sends them.</summary>
    public IReadOnlyList<System.Net.IPNetwork> TrustedProxies { get; init; } = [];

    /// <summary>The URL clients reach Vauban by (scheme, host, port, path base: https://ehr.hopital.example), when it is not
    /// an address the server listens on (behind a proxy, under a name). It makes the token endpoint's URL, which a
    /// private_key_jwt assertion must name as its audience. Null: the token endpoint is known only at the addresses the server
    /// listens on (a wildcard one as localhost); a request's Host header, which its sender writes, never makes it.</summary>
    public Uri? PublicUrl { get; init; }

    /// <summary>Where <see cref="PublicUrl"/> came from, as a warning about it names it: "--public-url", or "$VAUBAN_PUBLIC_URL"
    /// when the variable gave it.</summary>
    public string PublicUrlSource { get; init; } = "--public-url";

    /// <summary>The certificate the https:// addresses of <see cref="Urls"/> are served with (TLS 1.2 and 1.3). Set: plain
    /// HTTP answers /healthz alone. Null: no https:// address may be given (TLS is then a reverse proxy's).</summary>
    public ServerCertificate? Tls { get; init; }
}

public static class VaubanHost
{
    /// <param name="services">Runs last on the host's services, before it is built: in-process hosts (tests, benchmarks) replace
    /// a service there, as the tests' faster password hashing does. The command line never passes one.</param>
    public static WebApplication Build(VaubanStore store, ServerOptions options, Action<ILoggingBuilder>? logging = null,
        Action<IServiceCollection>? services = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        // ApplicationName: the compiled Razor pages live in this assembly, whichever process hosts it (tests, benchmarks).
        // Content root: the program's own folder, not the working directory, and no watching it for configuration changes.
        // The host's default watches the content root and everything under it; the data folder (./data: the SQLite file, its
        // WAL, the audit journal) is under the working directory by default, so every write to the store woke the watcher
        // (`.NET File Watch`: 17-18 µs of CPU a read on PostgreSQL at a million patients, bench/README.md, tenth pass).
        // Vauban is configured by its command line and environment, not by an appsettings.json found where it was started.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ApplicationName = typeof(VaubanHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.UseUrls(options.Urls);
        // Kestrel's HTTPS, which the slim builder leaves out, for the https:// addresses: with Vauban's certificate as their
        // default, so that no development certificate is ever looked for.
        if (options.Tls is not null) builder.WebHost.UseKestrelHttpsConfiguration();
        var renewal = options.Tls is { } served
            ? new ServerCertificateRenewal(served, options.PublicUrl is { Scheme: "https" } clientsUrl ? new ServerCertificate.PublicHost(clientsUrl.IdnHost, options.PublicUrlSource) : null)
            : null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (options.Tls is { } tls && renewal is not null)
            {
                kestrel.ConfigureHttpsDefaults(https =>
                {
                    // The certificate of the start makes Kestrel take the addresses as HTTPS ones; each handshake then presents
                    // the one in use, renewed since perhaps (HTTP/3, whose QUIC handshake this does not reach, is not enabled).
                    https.ServerCertificate = tls.Certificate;
                    https.ServerCertificateChain = tls.Chain;
                    https.OnAuthenticate = (_, handshake) =>
                    {
                        handshake.ServerCertificate = null;
                        handshake.ServerCertificateContext = renewal.Context;
                    };
                    https.SslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13;
                });
            }
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = Math.Max(options.MaxBundleBytes, options.MaxResourceBytes) + 1;
            // Twice the target Vauban accepts, so that a target somewhat over it reaches RefuseLongTargets and gets an answer
            // a client can read; Kestrel answers a longer line itself, with a bare 414.
            kestrel.Limits.MaxRequestLineSize = 2 * MaxRequestTargetBytes;
            // The same for headers: Kestrel rejects headers over its limits while parsing, before any middleware runs, with a
            // bare 431 whose body cannot be set (no hook in ASP.NET Core 10). Headers somewhat over Vauban's limits reach
            // RefuseLargeHeaders, which says which limit in an OperationOutcome; Kestrel still answers far larger ones itself.
            kestrel.Limits.MaxRequestHeadersTotalSize = 2 * MaxRequestHeadersBytes;
            kestrel.Limits.MaxRequestHeaderCount = 2 * MaxRequestHeaderCount;
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(console => console.SingleLine = true);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        // Request lines carry query strings (search values) and must never reach the log, whatever the configured levels.
        FrameworkLogLimits.AddTo(builder.Services);
        logging?.Invoke(builder.Logging);
        builder.AddStaffPages(store);
        services?.Invoke(builder.Services);

        var app = builder.Build();
        // Hashed before the first request, not at the first attempt on an unknown account (which then took two hashes' time).
        _ = app.Services.GetService<DummyPasswordHash>();
        LogSecurityAlerts(store, app);
        WatchDatabase(store, app);
        if (renewal is not null)
        {
            app.Lifetime.ApplicationStarted.Register(() => renewal.Start(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ServerCertificate).FullName!)));
            app.Lifetime.ApplicationStopping.Register(renewal.Dispose);
        }
        if (options.TrustedProxies.Count > 0)
        {
            // First, so that everything after sees the client's address and the public scheme and host. The chain of
            // X-Forwarded-For is followed back through trusted proxies only; the defaults (loopback trusted) are not kept.
            var forwarded = new ForwardedHeadersOptions
            {
                ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost,
                ForwardLimit = null,
            };
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var network in options.TrustedProxies) forwarded.KnownIPNetworks.Add(network);
            app.UseForwardedHeaders(forwarded);
        }
        // After the forwarded headers (a trusted proxy's X-Forwarded-Proto: https is HTTPS), before --public-url names the scheme.
        if (options.Tls is not null) app.Use(RefusePlainHttp);
        if (options.PublicUrl is { } publicUrl)
        {
            // The URL clients reach the server by names it in everything it hands out (Location, fullUrl, paging links, the
            // CapabilityStatement's and SMART configuration's endpoints) and is the only origin a session's state-changing request
            // may come from: a request's Host header (or a proxy's X-Forwarded-Host) is the client's word, and was echoed into them.
            var scheme = publicUrl.Scheme;
            var host = new HostString(publicUrl.Authority);
            var pathBase = new PathString(publicUrl.AbsolutePath.TrimEnd('/'));
            app.Use((http, next) =>
            {
                http.Request.Scheme = scheme;
                http.Request.Host = host;
                if (pathBase.HasValue) http.Request.PathBase = pathBase;
                return next(http);
            });
        }
        // The correlation id is Kestrel's request id ("connection:request"); an OperationOutcome carries it as its id, and a
        // FHIR id has no ':' ([A-Za-z0-9-.]{1,64}). Set first, so that logs, audit entries and answers all quote the same one.
        app.Use((http, next) =>
        {
            http.TraceIdentifier = http.TraceIdentifier.Replace(':', '.');
            return next(http);
        });
        app.Use(RefuseLongTargets);
        app.Use(RefuseLargeHeaders);
        app.Use(AnswerHeadAsGet);
        // Routing here rather than first (WebApplication's default), so that a HEAD is matched as the GET it became.
        app.UseRouting();
        app.UseExceptionHandler(handler => handler.Run(WriteUnexpectedErrorAsync));
        app.Use(AbortStartedAnswerOnErrorAsync);
        app.UseSecurityHeaders();
        app.UsePersonSessions(store);
        app.UseStatusCodePages(async status =>
        {
            var http = status.HttpContext;
            if (http.Request.Path.StartsWithSegments("/fhir") && !http.Response.HasStarted && http.Response.ContentLength is null)
            {
                var code = http.Response.StatusCode;
                var message = code switch
                {
                    404 => "No such FHIR endpoint.",
                    405 => "This method is not supported on this FHIR endpoint.",
                    413 => "The request body is too large.",
                    _ => $"HTTP {code}.",
                };
                await new FhirResult(code, FhirJson.OperationOutcome([code == 404 ? Issue.NotFound(message) : Issue.Error(code == 405 ? "not-supported" : "processing", message)])).ExecuteAsync(http);
            }
            else if (http.Response.StatusCode is 404 or 405 && !http.Request.Path.StartsWithSegments("/oauth") && !http.Response.HasStarted
                && http.Response.ContentLength is null && !HttpMethods.IsHead(http.Request.Method))
            {
                // A page that does not exist, or a method a page does not take: said in a page, not an empty answer.
                var (title, text) = http.Response.StatusCode == 404
                    ? ("Page not found", "There is no page at this address.")
                    : ("Not allowed here", "This page is not used this way (the browser sent a method it does not take).");
                http.Response.ContentType = "text/html; charset=utf-8";
                await http.Response.WriteAsync($"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Vauban</title></head>"
                    + $"<body><h1 id=\"status\">{title}</h1><p>{text}</p><p><a href=\"/\">Home</a></p></body></html>", http.RequestAborted);
            }
        });
        app.MapStaffPages();
        // For a load balancer: 503 while the store cannot be reached (every request would meet the same), the cause in the log only.
        var health = new StoreHealth(store, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Vauban.Health"));
        app.MapGet("/healthz", async (HttpContext http) =>
        {
            var problem = await health.UnavailableAsync().WaitAsync(http.RequestAborted);
            if (problem is null) return Results.Text("ok");
            if (problem == StoreHealth.MasterKeyRotated)
            {
                // Not transient: this process must be restarted with the new key (an orchestrator restarts it, or flags it).
                return Results.Text("master key rotated: restart this server with the store's new master key", statusCode: StatusCodes.Status503ServiceUnavailable);
            }
            http.Response.Headers.RetryAfter = "5";
            return Results.Text("store unavailable", statusCode: StatusCodes.Status503ServiceUnavailable);
        });
        var tokenEndpoint = new TokenEndpointUrl(options.PublicUrl, app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>());
        app.MapTokenEndpoint(store.Clients, tokenEndpoint);
        app.MapSmartConfiguration(tokenEndpoint);
        app.MapFhir(store, new FhirOptions(options.MaxResourceBytes, options.MaxBundleBytes));
        app.MapGuardAdmin(store);
        return app;
    }

    /// <summary>Each alert this server raises goes to its log as well as the console (a containment, a canary, a locked account,
    /// a break-the-glass), so that whoever watches the log — the operations team, a SIEM — hears of it when the officer does: its
    /// id, kind, establishment and whom it is about, never its detail (the console's, sealed). Alerts another process raises (the
    /// command line, another server) are in that process's log. So are audit entries this server leaves unsigned because it holds
    /// a master key rotated since (the establishment's number only), and rows that grant access refused for their MAC (table and
    /// non-secret id).</summary>
    private static void LogSecurityAlerts(VaubanStore store, WebApplication app)
    {
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Vauban.Security");
        void Told(Vauban.Access.RaisedAlert alert) =>
            log.LogWarning("Security alert {AlertId} ({Kind}) in establishment {TenantId}, about {Principal}: see the security console (/security) or `vauban guard alerts`",
                alert.Id, alert.Kind, alert.TenantId, alert.Principal ?? "(not shown)");
        store.Alerts.Raised += Told;
        app.Lifetime.ApplicationStopped.Register(() => store.Alerts.Raised -= Told);
        // A server still running with the master key another process rotated cannot sign its checkpoints: said, with the
        // establishment's number only, so that the operator restarts it with the store's new key.
        var audit = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Vauban.Audit");
        void Unsigned(long tenantId) => audit.LogWarning(Cli.StoreArguments.LeftUnsignedWarning, tenantId);
        store.Audit.LeftUnsigned += Unsigned;
        app.Lifetime.ApplicationStopped.Register(() => store.Audit.LeftUnsigned -= Unsigned);
        // A row that grants access refused for its MAC (ADR 0014): the table and the row's non-secret id, once per row.
        void Refused(Vauban.Access.UnauthenticRow row) =>
            log.LogWarning("A row that grants access was refused: {Row} in {Table} (establishment {TenantId}) does not carry the store's authentication; "
                + "it was written or changed in the database, not by Vauban. `vauban audit verify` lists every such row", row.Row, row.Table, row.TenantId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none");
        store.AccessRows.Refused += Refused;
        app.Lifetime.ApplicationStopped.Register(() => store.AccessRows.Refused -= Refused);
    }

    /// <summary>While the host runs, a PostgreSQL restart or crash is met by the store's watch rather than by the first requests
    /// after it (<see cref="VaubanStore.WatchDatabaseAsync"/>), and the operator's log says when the connection was lost and when
    /// it was re-established: the store's description (host, port, database, never the password) and a cause by code.</summary>
    private static void WatchDatabase(VaubanStore store, WebApplication app)
    {
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Vauban.Storage");
        var stop = new CancellationTokenSource();
        Task? watching = null;
        app.Lifetime.ApplicationStarted.Register(() => watching = store.WatchDatabaseAsync(
            cause => log.LogWarning("The connection to {Store} was lost ({Cause}): its pooled connections are dropped; requests answer 503 until it is back", store.Description, cause),
            away => log.LogInformation("The connection to {Store} is re-established, after {Seconds:0.0} s away", store.Description, away.TotalSeconds),
            stop.Token));
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            stop.Cancel();
            watching?.Wait(TimeSpan.FromSeconds(5)); // it never throws; its connection is closed before the store is
            stop.Dispose();
        });
    }

    /// <summary>HEAD is answered as the GET it stands for (HTTP: every general-purpose server supports both), with the same
    /// status and headers (ETag, Last-Modified, Content-Type) and no body: Kestrel sends none for a HEAD. It is the same
    /// interaction, so a HEAD of a record is authorized, guarded and audited as its read: it tells whether the record exists.</summary>
    private static Task AnswerHeadAsGet(HttpContext http, RequestDelegate next)
    {
        if (HttpMethods.IsHead(http.Request.Method)) http.Request.Method = HttpMethods.Get;
        return next(http);
    }

    /// <summary>A server with a certificate answers over HTTPS only, but for /healthz (a load balancer's or a local check,
    /// which carries nothing): over plain HTTP a staff password, a bearer token or a patient's record would cross the network
    /// in clear, and the staff session cookie (Secure) is not even sent. Refused rather than redirected: a redirect would
    /// already have carried the request, and its credentials, in clear; a browser that once reached the https:// address
    /// goes there itself (Strict-Transport-Security).</summary>
    private static Task RefusePlainHttp(HttpContext http, RequestDelegate next)
    {
        if (http.Request.IsHttps || http.Request.Path.Equals("/healthz", StringComparison.Ordinal)) return next(http);
        const string message = "This server answers over HTTPS only (plain HTTP serves /healthz alone): use its https:// address.";
        if (http.Request.Path.StartsWithSegments("/fhir"))
            return new FhirResult(StatusCodes.Status403Forbidden, FhirJson.OperationOutcome([Issue.Error("security", message)], http.TraceIdentifier.Replace(':', '.'))).ExecuteAsync(http);
        http.Response.StatusCode = StatusCodes.Status403Forbidden;
        http.Response.ContentType = "text/plain; charset=utf-8";
        return http.Response.WriteAsync(message, http.RequestAborted);
    }

    /// <summary>The longest request target (path and query string, as sent) Vauban accepts: Kestrel's default request line.</summary>
    internal const int MaxRequestTargetBytes = 8 * 1024;

    /// <summary>A target over <see cref="MaxRequestTargetBytes"/> is a 414 that says what to do instead: a search whose
    /// parameters do not fit a URL fits the form body of POST _search. The FHIR API answers with an OperationOutcome.</summary>
    private static Task RefuseLongTargets(HttpContext http, RequestDelegate next)
    {
        var target = http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget;
        if (target is null || target.Length <= MaxRequestTargetBytes) return next(http);
        var message = $"The request's URL is {target.Length:N0} characters long; the limit is {MaxRequestTargetBytes:N0}. "
            + "Send a search's parameters in the form body of POST [type]/_search instead.";
        if (http.Request.Path.StartsWithSegments("/fhir"))
            return new FhirResult(StatusCodes.Status414UriTooLong, FhirJson.OperationOutcome([Issue.Error("too-long", message)], http.TraceIdentifier)).ExecuteAsync(http);
        http.Response.StatusCode = StatusCodes.Status414UriTooLong;
        return http.Response.WriteAsync(message, http.RequestAborted);
    }

    /// <summary>The largest request headers Vauban accepts, counted as Kestrel counts them (each line's name, ": ", value and
    /// line end): Kestrel's default.</summary>
    internal const int MaxRequestHeadersBytes = 32 * 1024;

    /// <summary>The most request header lines Vauban accepts: Kestrel's default.</summary>
    internal const int MaxRequestHeaderCount = 100;

    /// <summary>Headers over <see cref="MaxRequestHeadersBytes"/> or <see cref="MaxRequestHeaderCount"/> are a 431 (RFC 6585) that
    /// says which limit; the FHIR API answers with an OperationOutcome.</summary>
    private static Task RefuseLargeHeaders(HttpContext http, RequestDelegate next)
    {
        long bytes = 0;
        var count = 0;
        foreach (var (name, values) in http.Request.Headers)
        {
            foreach (var value in values)
            {
                count++;
                bytes += name.Length + (value?.Length ?? 0) + 4;
            }
        }
        if (bytes <= MaxRequestHeadersBytes && count <= MaxRequestHeaderCount) return next(http);
        var message = count > MaxRequestHeaderCount
            ? $"The request has {count:N0} header lines; the limit is {MaxRequestHeaderCount:N0}."
            : $"The request's headers are {bytes:N0} bytes long; the limit is {MaxRequestHeadersBytes:N0} (a cookie or token that has grown too large?).";
        if (http.Request.Path.StartsWithSegments("/fhir"))
            return new FhirResult(StatusCodes.Status431RequestHeaderFieldsTooLarge, FhirJson.OperationOutcome([Issue.Error("too-long", message)], http.TraceIdentifier)).ExecuteAsync(http);
        http.Response.StatusCode = StatusCodes.Status431RequestHeaderFieldsTooLarge;
        return http.Response.WriteAsync(message, http.RequestAborted);
    }

    /// <summary>The same policy at the token endpoint, whose clients read OAuth errors (RFC 6749 section 5.2), not OperationOutcome.</summary>
    private static async Task WriteUnexpectedTokenErrorAsync(HttpContext http, Exception? error, ILogger logger, string correlation)
    {
        http.Response.Headers.CacheControl = "no-store";
        var (status, code, description) = error switch
        {
            _ when MasterKeyRotatedIn(error) => (503, "temporarily_unavailable", MasterKeyRotatedAnswer),
            BadHttpRequestException { StatusCode: 413 } => (413, "invalid_request", "The token request's body is larger than this server reads; a token request is a few hundred bytes of form fields."),
            BadHttpRequestException bad => (bad.StatusCode, "invalid_request", $"The request could not be read ({bad.StatusCode})."),
            Audit.AuditUnavailableException => (503, "temporarily_unavailable", "The audit log cannot be written at the moment, so no token was issued. Retry shortly."),
            _ when VaubanStore.UnavailableCause(error) is not null => (503, "temporarily_unavailable", "The store cannot be reached or written at the moment, so no token was issued. Retry shortly."),
            _ => (500, "server_error", $"An unexpected error occurred. Quote correlation id {correlation} to the operator."),
        };
        if (MasterKeyRotatedIn(error))
        {
            TellMasterKeyRotated(http.RequestServices.GetRequiredService<VaubanStore>(), logger, correlation);
        }
        else if (error is Audit.AuditUnavailableException)
        {
            logger.LogError("The audit log could not be written (correlation {CorrelationId}); the token request was refused", correlation);
            http.Response.Headers.RetryAfter = "5";
        }
        else if (VaubanStore.UnavailableCause(error) is { } cause)
        {
            LogUnavailableStore(logger, cause, error, correlation);
            http.Response.Headers.RetryAfter = "5";
        }
        else if (error is not BadHttpRequestException)
        {
            logger.LogError("Unexpected {ExceptionType} at {Site} (correlation {CorrelationId})", error?.GetType().Name, Site(error), correlation);
        }
        http.Response.StatusCode = status;
        await http.Response.WriteAsJsonAsync(new Dictionary<string, string> { ["error"] = code, ["error_description"] = description });
    }

    private static void LogUnavailableStore(ILogger logger, string cause, Exception? error, string correlation) =>
        logger.LogError("The store could not be reached or written: {Cause} ({ExceptionType} at {Site}, correlation {CorrelationId}); the request was refused",
            cause, error?.GetType().Name, Site(error), correlation);

    /// <summary>What a client is told when its request needs a key this server cannot open since the store's master key was rotated.</summary>
    internal const string MasterKeyRotatedAnswer = "This server cannot open what was asked: the store's master key was rotated and this server still holds "
        + "the previous one. Its operator must restart it with the store's new master key; nothing was returned or changed.";

    /// <summary>Whether <paramref name="error"/> is, or wraps (an audit append that could not seal its entry), a key this process
    /// cannot open since the store's master key was rotated by another.</summary>
    private static bool MasterKeyRotatedIn(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is VaubanConfigurationException { MasterKeyRotated: true }) return true;
        }
        return false;
    }

    /// <summary>Tells the operator, once per process at Critical, that the store's master key was rotated away from this server's
    /// (Vauban's own message: fingerprints, never key material); each request refused for it after that is one line at Warning.</summary>
    internal static void TellMasterKeyRotated(VaubanStore store, ILogger logger, string? correlation)
    {
        if (store.FirstToTellMasterKeyRotatedAway() && store.MasterKeyRotatedAway is { } problem) logger.LogCritical("{Problem}", problem);
        else if (correlation is not null) logger.LogWarning("Refused (correlation {CorrelationId}): it needs a key wrapped under the store's new master key; restart this server with it", correlation);
    }

    /// <summary>Where an exception was thrown ("Type.Method"): what the log says of an unexpected error instead of its message.</summary>
    private static string Site(Exception? error) => error?.TargetSite?.DeclaringType?.Name + "." + error?.TargetSite?.Name;

    /// <summary>An exception once the answer has started (a streamed export file): the exception handler can no longer answer,
    /// and Kestrel would log the exception with its message, which may quote data. Logged here as every unexpected error is
    /// (type, site, correlation id), and the connection is cut, so that the client sees a truncated answer fail rather than
    /// take it for a whole one. A client that went away is not an error.</summary>
    private static async Task AbortStartedAnswerOnErrorAsync(HttpContext http, RequestDelegate next)
    {
        try
        {
            await next(http);
        }
        catch (Exception error) when (http.Response.HasStarted)
        {
            if (!http.RequestAborted.IsCancellationRequested)
            {
                http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Vauban.Errors").LogError(
                    "Unexpected {ExceptionType} at {Site} after the answer had started (correlation {CorrelationId}); the connection was cut",
                    error.GetType().Name, Site(error), http.TraceIdentifier);
            }
            http.Abort();
        }
    }

    /// <summary>One exception policy: a correlation id for the operator's log, a generic message to the caller, no internals.</summary>
    private static async Task WriteUnexpectedErrorAsync(HttpContext http)
    {
        var error = http.Features.Get<IExceptionHandlerFeature>()?.Error;
        var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Vauban.Errors");
        var correlation = http.TraceIdentifier;
        StaffPages.SetSecurityHeaders(http);
        if (http.Request.Path.StartsWithSegments("/oauth"))
        {
            await WriteUnexpectedTokenErrorAsync(http, error, logger, correlation);
            return;
        }
        if (error is BadHttpRequestException bad)
        {
            http.Response.StatusCode = bad.StatusCode;
            var said = bad.StatusCode == 413
                ? Issue.Error("too-costly", "The request body is larger than this server accepts.")
                : Issue.Invalid("The request could not be read (" + bad.StatusCode + ").");
            await new FhirResult(bad.StatusCode, FhirJson.OperationOutcome([said], correlation)).ExecuteAsync(http);
            return;
        }
        if (MasterKeyRotatedIn(error))
        {
            // What this server was asked needs a key wrapped under a master key it does not hold: an operator's matter (restart it
            // with the new key), not the client's, and no retry will do until then.
            TellMasterKeyRotated(http.RequestServices.GetRequiredService<VaubanStore>(), logger, correlation);
            await new FhirResult(503, FhirJson.OperationOutcome([Issue.Error("transient", MasterKeyRotatedAnswer)], correlation)).ExecuteAsync(http);
            return;
        }
        if (error is Audit.AuditUnavailableException)
        {
            // Fail closed: nothing leaves without its audit entry. The operator sees which part failed; the caller may retry.
            logger.LogError("The audit log could not be written (correlation {CorrelationId}); the request was refused", correlation);
            http.Response.Headers.RetryAfter = "5";
            await new FhirResult(503, FhirJson.OperationOutcome([Issue.Error("transient", "The audit log cannot be written at the moment, so nothing was returned or changed. Retry shortly.")], correlation)).ExecuteAsync(http);
            return;
        }
        if (VaubanStore.UnavailableCause(error) is { } cause)
        {
            // Fail closed, as any request does when its read or write fails; but this one is worth retrying, and the operator's log
            // says the database is the problem (it said "Unexpected NpgsqlException at <ConnectAsync>d__221.MoveNext").
            LogUnavailableStore(logger, cause, error, correlation);
            http.Response.Headers.RetryAfter = "5";
            await new FhirResult(503, FhirJson.OperationOutcome([Issue.Error("transient", "The store cannot be reached or written at the moment. Retry shortly.")], correlation)).ExecuteAsync(http);
            return;
        }
        // Log the exception type and where it came from; exception messages may quote data, so not the message.
        logger.LogError("Unexpected {ExceptionType} at {Site} (correlation {CorrelationId})", error?.GetType().Name, Site(error), correlation);
        var body = FhirJson.OperationOutcome([Issue.Error("exception", $"An unexpected error occurred. Quote correlation id {correlation} to the operator.")], correlation);
        await new FhirResult(500, body).ExecuteAsync(http);
    }
}
