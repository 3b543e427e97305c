// What the password hash's work factor does, on a server that hashes as the product does (PBKDF2-HMAC-SHA512,
// 600,000 iterations; the other test servers hash with 1,000): an unknown account answers as slowly as a
// known one, and an older, cheaper hash is replaced at the next sign-in. And the parallel bursts: their attempts
// overlap for as long as a real hash takes, which is what a throttle that counted failures only after them let
// slip through. Both engines.
using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Vauban.Access;
using Vauban.Web;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class PasswordHashingTests(Engine engine) : IAsyncLifetime
{
    private const string Establishment = "hospital-a";
    private const string Email = "claire.martin@chu.example";
    private const string Password = "tourmaline ferry quietly 42";
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero));
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private string _secret = "";

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(engine, configure: o => o with { Time = _time }, hashing: PasswordHashing.Production);
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        _secret = await StaffClient.EnrolledAsync(_server, _tenant, Email, StaffRole.Physician, "pract-1", Password, _time);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task AccountEnumeration_SameMessageAndSimilarTimingForUnknownAccount()
    {
        async Task<(string? Message, HttpStatusCode Status, double Ms)> TryAsync(string establishment, string email)
        {
            using var staff = new StaffClient(_server.BaseAddress);
            _time.Advance(TimeSpan.FromMinutes(5)); // out of the growing delays: this test is about what an evaluated attempt reveals
            var watch = Stopwatch.StartNew();
            var (response, html) = await staff.PasswordAsync(establishment, email, "not the password at all");
            watch.Stop();
            return (StaffClient.ById(html, "error"), response.StatusCode, watch.Elapsed.TotalMilliseconds);
        }
        var known = new List<double>();
        var unknown = new List<double>();
        string? message = null;
        for (var i = 0; i < 3; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            foreach (var (establishment, email, timings) in new[] { (Establishment, Email, known), (Establishment, $"nobody{i}@chu.example", unknown), ("no-such-hospital", Email, unknown) })
            {
                var (m, status, ms) = await TryAsync(establishment, email);
                Assert.Equal(HttpStatusCode.OK, status);
                message ??= m;
                Assert.Equal(message, m);
                timings.Add(ms);
            }
        }
        // Without the dummy hash an unknown account would answer ~50 times faster; the bounds leave room for a busy machine.
        var ratio = Median(unknown) / Median(known);
        Assert.InRange(ratio, 0.33, 3.0);
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    [Fact]
    public async Task The_dummy_hash_an_unknown_account_is_checked_against_costs_what_a_real_one_does()
    {
        // Not by timing alone: the hash itself is of the server's 600,000 iterations, as a real account's is.
        var dummy = _server.Services.GetRequiredService<DummyPasswordHash>().Hash;
        Assert.Equal(600_000, Iterations(dummy));
        Assert.Equal(Iterations((await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!.PasswordHash!), Iterations(dummy));
    }

    [Fact]
    public async Task PasswordRules_old_hash_of_100000_iterations_is_upgraded_at_next_sign_in()
    {
        var user = (await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!;
        Assert.Equal(600_000, Iterations(user.PasswordHash!));
        var legacy = new PasswordHasher<StaffUser>(Microsoft.Extensions.Options.Options.Create(new PasswordHasherOptions { IterationCount = 100_000 }));
        user.PasswordHash = legacy.HashPassword(user, Password);
        await _server.Store.Accounts.Store.UpdateAsync(user, CancellationToken.None);
        Assert.Equal(100_000, Iterations((await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!.PasswordHash!));

        using var staff = await StaffClient.SignedInAsync(_server.BaseAddress, Establishment, Email, Password, _secret, _time);
        var upgraded = (await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!.PasswordHash!;
        Assert.Equal(600_000, Iterations(upgraded));
        Assert.Equal(2, Convert.FromBase64String(upgraded)[4]); // KeyDerivationPrf.HMACSHA512 (big-endian uint 2)
    }

    [Fact]
    public async Task BruteForce_InAParallelBurst_OnlyTheAttemptsBeforeTheDelayAreEvaluated()
    {
        // Sent together, each attempt was checked before any had failed: however many, all were evaluated (an 8-guess burst at
        // an account with a lockout after 5 evaluated all 8). The clock stands still here, so the delay after the third failure
        // never runs out: exactly three are evaluated, the others are held back unevaluated, and every evaluated one counts.
        var attempts = Enumerable.Range(0, 12).Select(async i =>
        {
            using var attacker = new StaffClient(_server.BaseAddress, IPAddress.Parse($"127.0.1.{i + 1}"));
            var (response, _) = await attacker.PasswordAsync(Establishment, Email, "burst guess " + i);
            return response.StatusCode;
        });
        var statuses = await Task.WhenAll(attempts);
        Assert.All(statuses, s => Assert.True(s is HttpStatusCode.OK or (HttpStatusCode)429, s.ToString()));
        var threshold = new AccountOptions().AccountFailuresBeforeDelay;
        Assert.Equal(threshold, statuses.Count(s => s == HttpStatusCode.OK));
        var user = (await _server.Store.Accounts.FindAsync(_tenant, Email, CancellationToken.None))!;
        Assert.Equal(threshold, user.AccessFailedCount);
        Assert.False(user.LockoutEnd > _time.GetUtcNow());
    }

    [Fact]
    public async Task CredentialStuffing_InAParallelBurst_FromOneAddress_IsHeldBackAfterItsThreshold()
    {
        // Many accounts at once from one address (20 before the delay by default): the burst does not slip past it.
        var threshold = new AccountOptions().SourceFailuresBeforeDelay;
        var attempts = Enumerable.Range(0, threshold + 8).Select(async i =>
        {
            using var client = new StaffClient(_server.BaseAddress, IPAddress.Parse("127.0.2.1"));
            var (response, _) = await client.PasswordAsync(Establishment, $"someone{i}@chu.example", "Summer2024!");
            return response.StatusCode;
        });
        var statuses = await Task.WhenAll(attempts);
        Assert.Equal(threshold, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(8, statuses.Count(s => s == (HttpStatusCode)429));
    }

    /// <summary>Identity V3 format: 0x01, PRF (uint32 BE), iteration count (uint32 BE), salt length, salt, subkey.</summary>
    private static int Iterations(string hash)
    {
        var bytes = Convert.FromBase64String(hash);
        Assert.Equal(1, bytes[0]);
        return (bytes[5] << 24) | (bytes[6] << 16) | (bytes[7] << 8) | bytes[8];
    }
}

public sealed class PasswordHashingTests_Sqlite() : PasswordHashingTests(Engine.Sqlite);

public sealed class PasswordHashingTests_Postgres() : PasswordHashingTests(Engine.Postgres);
