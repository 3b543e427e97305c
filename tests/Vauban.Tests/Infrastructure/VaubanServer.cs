// A real Vauban server for integration tests: Kestrel on 127.0.0.1 (a free port), over a real SQLite
// file or a real PostgreSQL database, with every log line captured so tests can assert what the logs
// never contain.
using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Web;

namespace Vauban.Tests.Infrastructure;

public enum Engine { Sqlite, Postgres }

/// <summary>How a test server hashes staff passwords.</summary>
public enum PasswordHashing
{
    /// <summary>PBKDF2 of <see cref="VaubanServer.TestPasswordIterations"/> iterations: an enrolment or a sign-in costs ~0.2 ms
    /// of CPU instead of ~130. The suite enrols and signs in thousands of times; at production's 600,000 iterations that was
    /// more than half of the heavy page and sign-in classes' time (bench/README.md, "The test suite's time"). What a test of
    /// pages or sessions asserts does not depend on the work factor; the sign-in tests that do (timing, upgrade, the parallel
    /// bursts whose attempts overlap for as long as a hash takes) are PasswordHashingTests', on production's.</summary>
    Fast,

    /// <summary>As the product hashes (600,000 iterations): for the tests of the work factor itself and of what it hides (an
    /// unknown account's answer as slow as a known one's, an old hash upgraded at sign-in, bursts of attempts sent together).</summary>
    Production,
}

public sealed class VaubanServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string? _directory;

    private VaubanServer(WebApplication app, VaubanStore store, string db, string? directory, ConcurrentQueue<string> logs, MasterKey master)
    {
        _app = app;
        Store = store;
        Db = db;
        _directory = directory;
        Logs = logs;
        MasterKey = master;
        BaseAddress = new Uri(app.Urls.First());
        Http = new HttpClient { BaseAddress = BaseAddress };
    }

    public VaubanStore Store { get; }
    public string Db { get; }
    public Uri BaseAddress { get; }
    public HttpClient Http { get; }
    public ConcurrentQueue<string> Logs { get; }
    public MasterKey MasterKey { get; }
    public IServiceProvider Services => _app.Services;

    /// <summary>The PBKDF2 iterations of <see cref="PasswordHashing.Fast"/>.</summary>
    public const int TestPasswordIterations = 1_000;

    /// <param name="extend">Maps extra endpoints on the host before it starts (a test's own failing endpoint, for instance).</param>
    public static async Task<VaubanServer> StartAsync(Engine engine, ServerOptions? options = null, Func<StoreOptions, StoreOptions>? configure = null,
        Action<WebApplication>? extend = null, PasswordHashing hashing = PasswordHashing.Fast)
    {
        string db;
        string? directory = null;
        if (engine == Engine.Sqlite)
        {
            directory = Path.Combine(Path.GetTempPath(), "vauban-test-" + Guid.NewGuid().ToString("N")[..10]);
            Directory.CreateDirectory(directory);
            db = Path.Combine(directory, "vauban.db");
        }
        else
        {
            db = await PostgresServer.CreateMigratedDatabaseAsync();
        }
        var master = MasterKey.Generate();
        var storeOptions = new StoreOptions(db, master);
        if (configure is not null) storeOptions = configure(storeOptions);
        var store = await VaubanStore.OpenAsync(storeOptions, CancellationToken.None);
        var logs = new ConcurrentQueue<string>();
        var app = VaubanHost.Build(store, options ?? new ServerOptions("http://127.0.0.1:0"), logging =>
        {
            // The production log filters stay in force: the tests check what an operator's log would hold, with every level on
            // for this provider, as an operator's Logging__Console__LogLevel__Default=Trace turns it on for the console (a rule
            // naming a provider outranks those that name none).
            // Captured only: the console logger writes from its own thread to whatever Console.Out is at that instant, and the
            // CLI tests swap Console.Out to read what a verb printed (a server's "Now listening on" landed in a verb's output).
            logging.ClearProviders();
            logging.SetMinimumLevel(LogLevel.Trace);
            logging.AddFilter<CapturingLoggerProvider>(null, LogLevel.Trace);
            logging.AddProvider(new CapturingLoggerProvider(logs));
        }, services =>
        {
            if (hashing == PasswordHashing.Fast)
                services.PostConfigure<Microsoft.AspNetCore.Identity.PasswordHasherOptions>(hasher => hasher.IterationCount = TestPasswordIterations);
        });
        extend?.Invoke(app);
        await app.StartAsync();
        return new VaubanServer(app, store, db, directory, logs, master);
    }

    /// <summary>Registers an API client in the tenant (created if missing) and returns an HttpClient carrying its token.</summary>
    public Task<HttpClient> ClientAsync(string tenant, string scopes = "system/*.cruds") => ClientAsync(tenant, scopes, Vauban.Access.ClientLimits.None);

    public async Task<HttpClient> ClientAsync(string tenant, string scopes, Vauban.Access.ClientLimits limits)
    {
        var owner = await Store.Tenants.FindAsync(tenant, CancellationToken.None) ?? await Store.Tenants.AddAsync(tenant, CancellationToken.None);
        var registration = await Store.Clients.AddAsync(owner, "test client", scopes, null, limits, CancellationToken.None);
        var token = await TokenAsync(registration.ClientId, registration.ClientSecret!);
        var client = new HttpClient { BaseAddress = BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>Creates a resource as the establishment's operator, in process through the records service (fixtures);
    /// fails the test unless it is created, and returns its id.</summary>
    public async Task<string> CreateAsOperatorAsync(Tenant tenant, string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var result = await Store.Records.CreateAsync(AccessContext.Operator(tenant, "test fixture"), root.GetProperty("resourceType").GetString()!, root, null, CancellationToken.None);
        Xunit.Assert.Equal(Vauban.Records.RecordStatus.Created, result.Status);
        return result.Id!;
    }

    /// <summary>The entries a staff member's acts put on the audit chain, newest first (at most 100), of the actions given (all
    /// when none), read as the establishment's operator. The journaled sign-in entries wait for the chain to take them again
    /// before the log can be read: this waits for them (10 s at most).</summary>
    public async Task<IReadOnlyList<Vauban.Audit.AuditEntry>> AuditEntriesOfAsync(Tenant tenant, string email, params Vauban.Audit.AuditAction[] actions)
    {
        var principal = (await Store.Accounts.FindAsync(tenant, email, CancellationToken.None))!.PrincipalId;
        for (var deadline = DateTime.UtcNow.AddSeconds(10); ; await Task.Delay(100))
        {
            try
            {
                return (await Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "audit test"),
                    new Vauban.Audit.AuditQuery { Agent = principal, Actions = actions.Length == 0 ? null : actions, Count = 100 }, CancellationToken.None))!;
            }
            catch (Vauban.Audit.AuditUnavailableException) when (DateTime.UtcNow < deadline)
            {
            }
        }
    }

    /// <summary>Runs one SQL statement on the server's database behind its back (what an attacker with the database, or a
    /// state no API reaches, would do).</summary>
    public async Task ExecuteSqlAsync(string sql)
    {
        await using System.Data.Common.DbConnection connection = _directory is not null
            ? new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Db};Pooling=False")
            : new Npgsql.NpgsqlConnection(Db);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    public async Task<string> TokenAsync(string clientId, string secret, string? scope = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret };
        if (scope is not null) form["scope"] = scope;
        using var response = await Http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException("token request failed: " + body);
        return body.GetProperty("access_token").GetString()!;
    }

    public string AllLogs() => string.Join('\n', Logs);

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await Store.DisposeAsync();
        if (_directory is not null)
        {
            try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Captures every log line of a host into <paramref name="logs"/> (<see cref="CapturingLogger"/>).</summary>
    internal sealed class CapturingLoggerProvider(ConcurrentQueue<string> logs) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new CapturingLogger(categoryName, logs);
        public void Dispose() { }
    }

    /// <summary>Each line logged, as "Level category: message", into <paramref name="logs"/>.</summary>
    internal sealed class CapturingLogger(string category, ConcurrentQueue<string> logs) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = new StringBuilder().Append(logLevel).Append(' ').Append(category).Append(": ").Append(formatter(state, exception));
            if (exception is not null) line.Append(' ').Append(exception);
            logs.Enqueue(line.ToString());
        }
    }
}

/// <summary>Helpers for FHIR JSON requests in tests.</summary>
public static class FhirContent
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/fhir+json");

    public static StringContent Json(object value) => Json(JsonSerializer.Serialize(value));

    public static async Task<JsonElement> BodyAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
