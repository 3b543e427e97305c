// What a signed-in person's page costs the database, counted statement by statement (StatementLog): every staff page reads
// the session's row and its account's on each request (ADR 0007: no cache, so that a revocation or a lock acts at once). Whether
// the account has a second factor — for a passkey-only account, its passkeys read and each one's MAC checked (ADR 0014) — is
// asked where the answer is used (sign-in, enrolment, the lists of accounts), not on every page.
using Microsoft.AspNetCore.Identity;
using Vauban.Access;
using Vauban.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Vauban.Tests.People;

public abstract class StaffPageCostTests(Engine engine, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Establishment = "chu-cost";
    private const string Password = "lantern orchard slowly 77";
    private const string TotpEmail = "totp.person@chu.example";
    private const string PasskeyEmail = "passkey.person@chu.example";
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly ManualTime _time = ManualTime.AwayFromParisMidnight();
    private VaubanServer _server = null!;
    private StatementLog _log = null!;
    private Tenant _tenant = null!;
    private readonly byte[] _credential = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(engine, configure: o =>
        {
            _log = StatementLog.Watch(o.Db);
            return o with { Time = _time };
        });
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, None);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _log.Dispose();
    }

    /// <summary>A person enrolled with a password and an authenticator app, signed in with both.</summary>
    private async Task<StaffClient> TotpPersonAsync()
    {
        var secret = await StaffClient.EnrolledAsync(_server, _tenant, TotpEmail, StaffRole.Physician, "pract-1", Password, _time);
        return await StaffClient.SignedInAsync(_server.BaseAddress, Establishment, TotpEmail, Password, secret, _time);
    }

    /// <summary>A person enrolled with a password and a passkey (no authenticator app), in a fully signed-in session: the passkey
    /// enrolled through the Identity store as the enrolment page's ceremony does, the session started as a passkey sign-in starts it.</summary>
    private async Task<StaffClient> PasskeyPersonAsync()
    {
        var link = await _server.Store.Accounts.AddAsync(_tenant, PasskeyEmail, StaffRole.Physician, "pract-1", null, "Passkey Person", None);
        var browser = new StaffClient(_server.BaseAddress);
        var (set, _) = await browser.SubmitAsync("/account/enrol?token=" + Uri.EscapeDataString(link.Token),
            new Dictionary<string, string> { ["Token"] = link.Token, ["Password"] = Password, ["Confirm"] = Password });
        Assert.Equal("/account/enrol/passkey", set.Headers.Location?.ToString());
        var user = (await _server.Store.Accounts.FindAsync(_tenant, PasskeyEmail, None))!;
        await _server.Store.Accounts.Store.AddOrUpdatePasskeyAsync(user, Passkey(_credential), None);
        user = (await _server.Store.Accounts.FindAsync(_tenant, PasskeyEmail, None))!;
        Assert.False(user.TwoFactorEnabled);
        var (token, _) = (await _server.Store.Sessions.StartAsync(browser.SessionCookie, user, SessionStage.Full, "127.0.0.1", null, None))!.Value;
        browser.Cookies["__Host-vauban-session"] = token;
        return browser;
    }

    private static UserPasskeyInfo Passkey(byte[] credentialId) =>
        new(credentialId, System.Security.Cryptography.RandomNumberGenerator.GetBytes(77), DateTimeOffset.UnixEpoch, 0, ["internal"], true, false, false, [1, 2], [3, 4])
        { Name = "laptop" };

    /// <summary>The statements one GET of <paramref name="page"/> runs, the page asked once before (its first showing compiles and
    /// warms what any first request does).</summary>
    private async Task<IReadOnlyList<string>> StatementsOfAsync(StaffClient person, string page)
    {
        var (first, _) = await person.GetAsync(page);
        Assert.Equal(System.Net.HttpStatusCode.OK, first.StatusCode);
        _log.Start();
        var (response, _) = await person.GetAsync(page);
        var statements = _log.Stop();
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        output.WriteLine($"{engine} GET {page}: {statements.Count} statements");
        foreach (var statement in statements) output.WriteLine("  " + statement.ReplaceLineEndings(" "));
        // The log sees this server's statements: the session's row is read on every page.
        Assert.Contains(statements, s => s.Contains("FROM staff_sessions", StringComparison.OrdinalIgnoreCase));
        return statements;
    }

    // For a person with an authenticator app, and for one whose second factor is a passkey.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_page_reads_the_session_and_its_account_in_one_statement_and_no_passkey(bool passkeyOnly)
    {
        using var person = passkeyOnly ? await PasskeyPersonAsync() : await TotpPersonAsync();
        var statements = await StatementsOfAsync(person, "/patients");
        Assert.DoesNotContain(statements, s => s.Contains("staff_passkeys", StringComparison.OrdinalIgnoreCase));
        Assert.Single(statements, s => s.Contains("staff_users", StringComparison.OrdinalIgnoreCase));
    }

    // Where the answer is used, it is still asked: the confirmation page offers a passkey-only person her passkey.
    [Fact]
    public async Task The_confirmation_page_offers_a_passkey_only_person_her_passkey()
    {
        using var person = await PasskeyPersonAsync();
        var (response, html) = await person.GetAsync("/account/reauth?returnUrl=%2Fpatients");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("id=\"passkey-reauth\"", html, StringComparison.Ordinal);
        Assert.Contains("id=\"passkey-only\"", html, StringComparison.Ordinal);
    }

    // The question asked late, of a session's account, is the same question: a passkey written in the database beside a password
    // (the writer's own authenticator on an account with no second factor yet) still counts for nothing, and the account read
    // for a page does not pretend to know.
    [Fact]
    public async Task A_sessions_account_asked_later_counts_a_passkey_written_in_the_database_for_nothing()
    {
        using (await PasskeyPersonAsync()) { }
        var link = await _server.Store.Accounts.AddAsync(_tenant, "halfway@chu.example", StaffRole.Nurse, null, null, "Half Way", None);
        var hex = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var own = Convert.ToHexString(_credential);
        string Bytes(string h) => engine == Engine.Sqlite ? $"X'{h}'" : $"'\\x{h}'::bytea";
        await _server.ExecuteSqlAsync($"""
            INSERT INTO staff_passkeys (credential_id, tenant_id, user_id, data, created_at, mac)
            SELECT {Bytes(hex)}, tenant_id, '{link.User.Id}', data, created_at, mac FROM staff_passkeys WHERE credential_id = {Bytes(own)}
            """);
        var (token, _) = (await _server.Store.Sessions.StartAsync(null, link.User, SessionStage.Enrolment, "127.0.0.1", null, None))!.Value;

        var user = (await _server.Store.Sessions.FindWithAccountAsync(token, None)).User!;
        Assert.Throws<InvalidOperationException>(() => user.HasSecondFactor);
        Assert.False(await _server.Store.Accounts.HasSecondFactorAsync(user, None));
        Assert.False(user.HasSecondFactor);
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None),
            a => a.Kind == KnownAlertKinds.RowIntegrity && a.Detail.Contains(link.User.Id, StringComparison.Ordinal));
    }
}

public sealed class StaffPageCostTests_Sqlite(ITestOutputHelper output) : StaffPageCostTests(Engine.Sqlite, output);

public sealed class StaffPageCostTests_Postgres(ITestOutputHelper output) : StaffPageCostTests(Engine.Postgres, output);
