// One server for a test class's tests (an xUnit class fixture), each test then in an establishment of its own: a server's start,
// stop and first requests cost more than most tests (bench/README.md, "The test suite's time"). For the classes whose tests
// depend on nothing a server holds for all its establishments; the tests that rely on a fresh server — the guard's options, the
// log lines of the whole server and what it tells once a minute, a clock set for one test — keep one of their own. The sign-in and
// client authentication throttles count per source address, in the server's database (DoorTests failed on a shared server, every
// request from 127.0.0.1): a test that signs in on a shared server does so from loopback addresses of its own
// (<see cref="SourceAddresses"/>).
using System.Net;
using Microsoft.AspNetCore.Builder;
using Vauban.Crypto;

namespace Vauban.Tests.Infrastructure;

public abstract class SharedServer : IAsyncLifetime
{
    private readonly ManualTime? _time;
    private readonly Func<StoreOptions, StoreOptions>? _configure;

    /// <summary>A server on the system's clock.</summary>
    protected SharedServer(Engine engine, Func<StoreOptions, StoreOptions>? configure = null)
    {
        Engine = engine;
        _configure = configure;
    }

    /// <summary>A server on <paramref name="time"/>, which the class's tests move.</summary>
    protected SharedServer(Engine engine, ManualTime time, Func<StoreOptions, StoreOptions>? configure = null) : this(engine, configure) => _time = time;

    public Engine Engine { get; }

    /// <summary>The server's clock, shared by the class's tests: each moves it on, none back.</summary>
    public ManualTime Time => _time ?? throw new InvalidOperationException("This server runs on the system's clock.");

    public VaubanServer Server { get; private set; } = null!;

    private int _sources;

    /// <summary><paramref name="count"/> loopback addresses (127.10.0.0/16; all of 127/8 is local on Linux) that this server has
    /// handed out to no other test: what the sign-in throttle counted against one test's sources is not another's.</summary>
    public IPAddress[] SourceAddresses(int count)
    {
        var first = Interlocked.Add(ref _sources, count) - count;
        return [.. Enumerable.Range(first, count).Select(n => new IPAddress([127, 10, (byte)(n / 250), (byte)(1 + n % 250)]))];
    }

    /// <summary>A name for an establishment of a test's own, <paramref name="prefix"/> and ten random hexadecimal digits.</summary>
    public static string EstablishmentName(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>Moves the clock out of the last hour before midnight in Paris, as <see cref="ManualTime.AwayFromParisMidnight"/> starts
    /// a test's own clock: a test finds the clock where the class's earlier tests left it, at any hour of the day.</summary>
    public void MoveAwayFromParisMidnight()
    {
        if (ParisTime.Of(Time.GetUtcNow()).Hour == 23) Time.Advance(TimeSpan.FromMinutes(90));
    }

    /// <summary>Adds to the server's pipeline (as <see cref="VaubanServer.StartAsync"/>'s extend does) before it starts.</summary>
    protected virtual void Extend(WebApplication app)
    {
    }

    public async Task InitializeAsync() => Server = await VaubanServer.StartAsync(Engine, configure: options =>
    {
        if (_time is not null) options = options with { Time = _time };
        return _configure is null ? options : _configure(options);
    }, extend: Extend);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
