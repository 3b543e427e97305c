// Staff accounts' rows attacked by someone who can write the database but holds no master key (a DBA, a reporting tool's
// login, an injection in a neighbouring application, a doctored backup restored): each edit or insert below would have
// widened someone's access through Vauban itself. Each row carries a MAC under the store's row-authentication key (ADR
// 0014): a row that does not verify is as if absent, and the establishment's officer is told. The legitimate writes
// (enrolment, sign-ins, recovery codes, passkeys, locks) keep their rows verifying.
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Identity;
using Vauban.Access;
using Vauban.Crypto;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

// In the console collection: `audit verify` is run in process, and another class's verb at the same time swapped Console.Out.
[Collection("console")]
public abstract class StaffRowIntegrityTests(Engine engine) : IAsyncLifetime
{
    private const string Establishment = "chu-rows";
    private const string Email = "claire.martin@chu.example";
    private const string AdminEmail = "admin@chu.example";
    private const string Password = "tourmaline ferry quietly 42";
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly ManualTime _time = new(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero));
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-staff-rows-" + Guid.NewGuid().ToString("N")[..8]);
    private string _keyFile = "";
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private string _secret = "";
    private IReadOnlyList<string> _recoveryCodes = [];
    private StaffUser _physician = null!;
    private StaffUser _administrator = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _keyFile = Path.Combine(_directory, "master.key");
        var key = MasterKey.CreateFile(_keyFile);
        _server = await VaubanServer.StartAsync(engine, configure: o => o with { MasterKey = key, Time = _time });
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, None);
        var link = await _server.Store.Accounts.AddAsync(_tenant, Email, StaffRole.Physician, "pract-1", "org-1", "Dr Claire Martin", None);
        using (var browser = new StaffClient(_server.BaseAddress)) (_secret, _recoveryCodes) = await browser.EnrolWithTotpAsync(link.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
        await _server.Store.Accounts.AddAsync(_tenant, AdminEmail, StaffRole.Administrator, null, null, "Admin", None);
        _physician = (await _server.Store.Accounts.FindAsync(_tenant, Email, None))!;
        _administrator = (await _server.Store.Accounts.FindAsync(_tenant, AdminEmail, None))!;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        try { Directory.Delete(_directory, true); } catch (IOException) { }
    }

    private Task<StaffClient> SignedInAsync() => StaffClient.SignedInAsync(_server.BaseAddress, Establishment, Email, Password, _secret, _time);

    private static async Task<HttpStatusCode> FhirStatusAsync(StaffClient staff)
    {
        using var response = await staff.Http.GetAsync("/fhir/Patient?_count=1");
        return response.StatusCode;
    }

    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes);

    /// <summary>A byte string as a literal of the engine's SQL.</summary>
    private string Bytes(byte[] bytes) => engine == Engine.Sqlite ? $"X'{Hex(bytes)}'" : $"'\\x{Hex(bytes)}'::bytea";

    private static byte[] Sha256(string value) => SHA256.HashData(Encoding.UTF8.GetBytes(value));

    private async Task<IReadOnlyList<SecurityAlert>> RowAlertsAsync() =>
        [.. (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None)).Where(a => a.Kind == KnownAlertKinds.RowIntegrity)];

    private async Task AssertToldAsync(string table, string id)
    {
        var alert = Assert.Single(await RowAlertsAsync());
        Assert.Contains(table, alert.Detail, StringComparison.Ordinal);
        Assert.Contains(id, alert.Detail, StringComparison.Ordinal);
        Assert.Contains(_server.Logs, line => line.Contains(table, StringComparison.Ordinal) && line.Contains(id, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("role = 'Administrator'")]
    [InlineData("practitioner = 'pract-2'")]
    [InlineData("service = 'org-2'")]
    [InlineData("two_factor_enabled = 0")]
    public async Task An_own_account_widened_in_the_database_ends_its_session_and_signs_in_no_more(string edit)
    {
        using var staff = await SignedInAsync();
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        await _server.ExecuteSqlAsync($"UPDATE staff_users SET {edit} WHERE id = '{_physician.Id}'");

        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(staff));
        using var again = new StaffClient(_server.BaseAddress);
        var (refused, html) = await again.PasswordAsync(Establishment, Email, Password);
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        Assert.Equal(Vauban.Web.SignInOutcome.FailureMessage, StaffClient.ById(html, "error"));
        await AssertToldAsync("staff_users", _physician.Id);
    }

    [Fact]
    public async Task A_password_hash_replaced_by_one_of_a_known_password_signs_nobody_in()
    {
        var hasher = new PasswordHasher<StaffUser>(Microsoft.Extensions.Options.Options.Create(
            new PasswordHasherOptions { IterationCount = VaubanServer.TestPasswordIterations }));
        var known = hasher.HashPassword(_administrator, "the attacker's own password");
        await _server.ExecuteSqlAsync($"UPDATE staff_users SET password_hash = '{known}', two_factor_enabled = 1 WHERE id = '{_administrator.Id}'");

        using var attacker = new StaffClient(_server.BaseAddress);
        var (refused, html) = await attacker.PasswordAsync(Establishment, AdminEmail, "the attacker's own password");
        Assert.Equal(Vauban.Web.SignInOutcome.FailureMessage, StaffClient.ById(html, "error"));
        Assert.Null(attacker.SessionCookie);
        await AssertToldAsync("staff_users", _administrator.Id);
    }

    [Fact]
    public async Task A_locked_account_unlocked_in_the_database_stays_shut()
    {
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, Email, None));
        await _server.ExecuteSqlAsync($"UPDATE staff_users SET lockout_end = NULL WHERE id = '{_physician.Id}'");
        using var staff = new StaffClient(_server.BaseAddress);
        var (refused, html) = await staff.PasswordAsync(Establishment, Email, Password);
        Assert.Equal(Vauban.Web.SignInOutcome.FailureMessage, StaffClient.ById(html, "error"));
        await AssertToldAsync("staff_users", _physician.Id);
    }

    [Fact]
    public async Task The_officers_lock_and_unlock_leave_the_account_signing_in()
    {
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, Email, None));
        Assert.True(await _server.Store.Accounts.UnlockAsync(_tenant, Email, None));
        using var staff = await SignedInAsync();
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        Assert.Empty(await RowAlertsAsync());
    }

    [Fact]
    public async Task A_recovery_code_inserted_in_the_database_is_refused_and_a_real_one_signs_in()
    {
        const string Forged = "AAAA-BBBB-CCCC-DDDD";
        var hash = Sha256("AAAABBBBCCCCDDDD");
        await _server.ExecuteSqlAsync($"INSERT INTO staff_recovery_codes (code_hash, tenant_id, user_id) VALUES ({Bytes(hash)}, {_tenant.Id}, '{_physician.Id}')");

        using var thief = new StaffClient(_server.BaseAddress);
        await thief.PasswordAsync(Establishment, Email, Password);
        var (refused, _) = await thief.SubmitAsync("/account/signin/recovery", new Dictionary<string, string> { ["Code"] = Forged });
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(thief));
        await AssertToldAsync("staff_recovery_codes", _physician.Id);

        using var owner = new StaffClient(_server.BaseAddress);
        await owner.PasswordAsync(Establishment, Email, Password);
        var (used, _) = await owner.SubmitAsync("/account/signin/recovery", new Dictionary<string, string> { ["Code"] = _recoveryCodes[0] });
        Assert.Equal("/account/recovery-codes", used.Headers.Location?.ToString());
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(owner));
    }

    [Fact]
    public async Task An_enrolment_link_inserted_for_the_administrator_opens_nothing()
    {
        const string Token = "ve_forged-enrolment-token-of-the-attacker";
        var hash = Sha256(Token);
        var far = _time.GetUtcNow().AddDays(30).ToUnixTimeMilliseconds();
        // Beside the administrator's real link (unused: the account is not enrolled), the attacker's, with the real one's MAC copied.
        await _server.ExecuteSqlAsync($"INSERT INTO enrolment_tokens (token_hash, tenant_id, user_id, expires_at, mac) VALUES ({Bytes(hash)}, {_tenant.Id}, '{_administrator.Id}', {far}, (SELECT mac FROM enrolment_tokens WHERE user_id = '{_administrator.Id}'))");

        using var attacker = new StaffClient(_server.BaseAddress);
        var (_, page) = await attacker.GetAsync("/account/enrol?token=" + Token);
        Assert.Contains("Enrolment link not valid", page, StringComparison.Ordinal);
        // The form posted anyway (its token comes from any page that has one).
        var (_, signIn) = await attacker.GetAsync("/account/signin");
        var form = new Dictionary<string, string>
        {
            ["Token"] = Token, ["Password"] = "the attacker's own password", ["Confirm"] = "the attacker's own password",
            ["__RequestVerificationToken"] = StaffClient.Token(signIn),
        };
        using var posted = await attacker.Http.PostAsync("/account/enrol?token=" + Token, new FormUrlEncodedContent(form));
        Assert.Contains("Enrolment link not valid", await posted.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Null((await _server.Store.Accounts.FindByIdAsync(_administrator.Id, None))!.PasswordHash);
        await AssertToldAsync("enrolment_tokens", _administrator.Id);
        // Used directly (the page asks first): no account, and the row stays for the officer to see.
        Assert.Null(await _server.Store.Accounts.ConsumeEnrolmentAsync(Token, None));
        Assert.Single(await RowAlertsAsync());
    }

    [Fact]
    public async Task An_enrolment_link_issued_by_the_officer_still_enrols()
    {
        var link = await _server.Store.Accounts.ReissueEnrolmentLinkAsync(_administrator, None);
        using var browser = new StaffClient(_server.BaseAddress);
        var (secret, codes) = await browser.EnrolWithTotpAsync(link.Token, Password, _time);
        Assert.Equal(10, codes.Count);
        _time.Advance(TimeSpan.FromSeconds(30));
        using var admin = await StaffClient.SignedInAsync(_server.BaseAddress, Establishment, AdminEmail, Password, secret, _time);
        Assert.Empty(await RowAlertsAsync());
    }

    /// <summary>Copies the rows <paramref name="where"/> of <paramref name="table"/>, MAC and all, aside; <see cref="PutBackAsync"/> restores them.</summary>
    private Task CopyAsync(string table, string where) => _server.ExecuteSqlAsync($"CREATE TABLE copied_{table} AS SELECT * FROM {table} WHERE {where}");

    private Task PutBackAsync(string table) => _server.ExecuteSqlAsync($"INSERT INTO {table} SELECT * FROM copied_{table}");

    // The replay the session's MAC alone does not stop: the session's own row, MAC and all, copied before the officer's act and put
    // back after it. The account's stamp changed with the act; the row holds the old one (ADR 0014).
    [Theory]
    [InlineData("reset")]
    [InlineData("lock")]
    [InlineData("revoke-sessions")]
    public async Task A_session_row_copied_and_put_back_after_a_reset_a_lock_or_a_revocation_is_no_session(string act)
    {
        using var staff = await SignedInAsync();
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(staff));
        var cookie = staff.SessionCookie!;
        await CopyAsync("staff_sessions", $"user_id = '{_physician.Id}'");
        switch (act)
        {
            case "reset":
                await _server.Store.Accounts.ResetCredentialsAsync(_physician, None);
                break;
            case "lock":
                Assert.True(await _server.Store.Accounts.LockAsync(_tenant, Email, None));
                Assert.True(await _server.Store.Accounts.UnlockAsync(_tenant, Email, None));
                break;
            default:
                Assert.True(await _server.Store.Accounts.RevokeSessionsAsync(_tenant, Email, None) > 0);
                break;
        }
        Assert.Null(await _server.Store.Sessions.FindAsync(cookie, None)); // not asked through the client, which would drop its cookie
        await PutBackAsync("staff_sessions");

        Assert.Equal(HttpStatusCode.Unauthorized, await FhirStatusAsync(staff));
        Assert.Null(await _server.Store.Sessions.FindAsync(cookie, None));
        Assert.Empty(await RowAlertsAsync()); // a row as Vauban wrote it: a replay, not an edit
        if (act == "reset") return;
        // The person signs in again as before.
        _time.Advance(TimeSpan.FromSeconds(30));
        using var again = await SignedInAsync();
        Assert.Equal(HttpStatusCode.OK, await FhirStatusAsync(again));
    }

    [Fact]
    public async Task An_enrolment_link_copied_and_put_back_after_its_use_is_no_link()
    {
        var link = await _server.Store.Accounts.ReissueEnrolmentLinkAsync(_administrator, None);
        await CopyAsync("enrolment_tokens", $"user_id = '{_administrator.Id}'");
        using (var browser = new StaffClient(_server.BaseAddress)) await browser.EnrolWithTotpAsync(link.Token, Password, _time);
        var enrolled = (await _server.Store.Accounts.FindByIdAsync(_administrator.Id, None))!;
        Assert.NotNull(enrolled.PasswordHash);
        await PutBackAsync("enrolment_tokens");

        // Followed again, it would reset the password and second factor to the follower's: the account's.
        using var attacker = new StaffClient(_server.BaseAddress);
        var (_, page) = await attacker.GetAsync("/account/enrol?token=" + link.Token);
        Assert.Contains("Enrolment link not valid", page, StringComparison.Ordinal);
        Assert.Null(await _server.Store.Accounts.ConsumeEnrolmentAsync(link.Token, None));
        Assert.Equal(enrolled.PasswordHash, (await _server.Store.Accounts.FindByIdAsync(_administrator.Id, None))!.PasswordHash);
        Assert.Empty(await RowAlertsAsync());
    }

    [Fact]
    public async Task An_enrolment_link_cancelled_by_a_lock_and_put_back_after_the_unlock_is_no_link()
    {
        var link = await _server.Store.Accounts.ReissueEnrolmentLinkAsync(_administrator, None);
        await CopyAsync("enrolment_tokens", $"user_id = '{_administrator.Id}'");
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, AdminEmail, None));
        Assert.True(await _server.Store.Accounts.UnlockAsync(_tenant, AdminEmail, None));
        await PutBackAsync("enrolment_tokens");

        Assert.Null(await _server.Store.Accounts.PeekEnrolmentAsync(link.Token, None));
        Assert.Null(await _server.Store.Accounts.ConsumeEnrolmentAsync(link.Token, None));
        Assert.Empty(await RowAlertsAsync());
        // A link the officer issues after the review enrols.
        var fresh = await _server.Store.Accounts.ReissueEnrolmentLinkAsync(_administrator, None);
        Assert.Equal(_administrator.Id, (await _server.Store.Accounts.PeekEnrolmentAsync(fresh.Token, None))?.Id);
    }

    private static UserPasskeyInfo Passkey(byte[] credentialId) =>
        new(credentialId, RandomNumberGenerator.GetBytes(77), DateTimeOffset.UnixEpoch, 0, ["internal"], true, false, false, [1, 2], [3, 4]) { Name = "test" };

    [Fact]
    public async Task A_passkey_inserted_for_the_administrator_is_not_found_and_an_enrolled_one_is()
    {
        var store = _server.Store.Accounts.Store;
        var own = RandomNumberGenerator.GetBytes(16);
        await store.AddOrUpdatePasskeyAsync(_physician, Passkey(own), None);
        Assert.Equal(_physician.Id, (await store.FindByPasskeyIdAsync(own, None))?.Id);
        Assert.NotNull(await store.FindPasskeyAsync(_physician, own, None));

        // The attacker's authenticator on the administrator: a row of the same form, its data and MAC copied from a real one.
        var forged = RandomNumberGenerator.GetBytes(16);
        await _server.ExecuteSqlAsync($"""
            INSERT INTO staff_passkeys (credential_id, tenant_id, user_id, data, created_at, mac)
            SELECT {Bytes(forged)}, tenant_id, '{_administrator.Id}', data, created_at, mac FROM staff_passkeys WHERE credential_id = {Bytes(own)}
            """);
        Assert.Null(await store.FindByPasskeyIdAsync(forged, None));
        Assert.Null(await store.FindPasskeyAsync(_administrator, forged, None));
        Assert.Empty(await store.GetPasskeysAsync(_administrator, None));
        await AssertToldAsync("staff_passkeys", _administrator.Id);

        // The physician's own passkey moved onto the administrator.
        await _server.ExecuteSqlAsync($"UPDATE staff_passkeys SET user_id = '{_administrator.Id}' WHERE credential_id = {Bytes(own)}");
        Assert.Null(await store.FindByPasskeyIdAsync(own, None));
    }

    // The password phished, the second factor never enrolled: the attacker's authenticator written beside it in the database would
    // have passed the password step as an account "with a second factor" (refused at the second step only). It counts for nothing.
    [Fact]
    public async Task A_passkey_inserted_on_an_account_without_a_second_factor_counts_for_nothing_and_is_told()
    {
        const string HalfwayEmail = "halfway@chu.example";
        var link = await _server.Store.Accounts.AddAsync(_tenant, HalfwayEmail, StaffRole.Nurse, null, null, "Half Way", None);
        using (var browser = new StaffClient(_server.BaseAddress))
        {
            var (set, _) = await browser.SubmitAsync("/account/enrol?token=" + Uri.EscapeDataString(link.Token),
                new Dictionary<string, string> { ["Token"] = link.Token, ["Password"] = Password, ["Confirm"] = Password });
            Assert.Equal(HttpStatusCode.Redirect, set.StatusCode);
        }
        var own = RandomNumberGenerator.GetBytes(16);
        await _server.Store.Accounts.Store.AddOrUpdatePasskeyAsync(_physician, Passkey(own), None);
        await _server.ExecuteSqlAsync($"""
            INSERT INTO staff_passkeys (credential_id, tenant_id, user_id, data, created_at, mac)
            SELECT {Bytes(RandomNumberGenerator.GetBytes(16))}, tenant_id, '{link.User.Id}', data, created_at, mac FROM staff_passkeys WHERE credential_id = {Bytes(own)}
            """);

        using var attacker = new StaffClient(_server.BaseAddress);
        var (response, html) = await attacker.PasswordAsync(Establishment, HalfwayEmail, Password);
        Assert.Null(response.Headers.Location); // not on to the second factor's page
        Assert.Equal(new Vauban.Web.SignInOutcome(Vauban.Web.SignInResult.NotEnrolled).Message, StaffClient.ById(html, "error"));
        Assert.False(Assert.Single(await _server.Store.Accounts.ListAsync(_tenant, None), a => a.Email == HalfwayEmail).Enrolled);
        await AssertToldAsync("staff_passkeys", link.User.Id);
        // A passkey Vauban enrols on it counts.
        var account = (await _server.Store.Accounts.FindByIdAsync(link.User.Id, None))!;
        Assert.False(account.HasSecondFactor);
        await _server.Store.Accounts.Store.AddOrUpdatePasskeyAsync(account, Passkey(RandomNumberGenerator.GetBytes(16)), None);
        Assert.True((await _server.Store.Accounts.FindByIdAsync(link.User.Id, None))!.HasSecondFactor);
    }

    [Fact]
    public async Task Audit_verify_names_each_staff_row_that_fails_its_MAC_and_exits_3()
    {
        var (exit, output) = await CliRunner.RunAsync(["audit", "verify", "--db", _server.Db, "--master-key-file", _keyFile]);
        Assert.True(exit == 0, output);

        await _server.ExecuteSqlAsync($"UPDATE staff_users SET role = 'SecurityOfficer' WHERE id = '{_physician.Id}'");
        await _server.ExecuteSqlAsync($"INSERT INTO staff_recovery_codes (code_hash, tenant_id, user_id) VALUES ({Bytes(Sha256("X"))}, {_tenant.Id}, '{_administrator.Id}')");
        (exit, output) = await CliRunner.RunAsync(["audit", "verify", "--db", _server.Db, "--master-key-file", _keyFile]);
        Assert.Equal(3, exit);
        Assert.Contains($"{Establishment}: ROW NOT AUTHENTIC — staff account {_physician.Id} in staff_users", output, StringComparison.Ordinal);
        Assert.Contains($"{Establishment}: ROW NOT AUTHENTIC — recovery code of account {_administrator.Id} in staff_recovery_codes", output, StringComparison.Ordinal);
        Assert.DoesNotContain(Hex(Sha256("X")), output, StringComparison.OrdinalIgnoreCase);
    }

    private Task<(int Exit, string Output)> CliAsync(params string[] arguments) =>
        CliRunner.RunAsync([.. arguments, "--db", _server.Db, "--master-key-file", _keyFile]);

    private Task<(int Exit, string Output)> RemoveRowAsync(string table, string id) =>
        CliAsync("audit", "remove-row", "--tenant", Establishment, "--table", table, "--id", id);

    // An account's row changed in the database is refused — and kept its e-mail address from any new account, behind the unique
    // index's raw violation, with no verb to take the row away.
    [Fact]
    public async Task Users_add_names_the_account_that_fails_its_check_and_audit_remove_row_takes_it_away_on_the_chain()
    {
        await _server.ExecuteSqlAsync($"UPDATE staff_users SET role = 'Administrator' WHERE id = '{_physician.Id}'");
        var before = await _server.Store.AccessRows.VerifyAsync(null, None);

        var (exit, output) = await CliAsync("users", "add", "--tenant", Establishment, "--email", Email, "--role", "Physician");
        Assert.True(exit == 1, output);
        Assert.Contains($"The account of this e-mail address in {Establishment} (staff account {_physician.Id}) fails its integrity check", output, StringComparison.Ordinal);
        Assert.Contains($"vauban audit remove-row --tenant {Establishment} --table staff_users --id {_physician.Id}", output, StringComparison.Ordinal);
        Assert.DoesNotContain("UNIQUE", output, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("23505", output, StringComparison.Ordinal);
        var after = await _server.Store.AccessRows.VerifyAsync(null, None);
        Assert.Equal(before.Checked, after.Checked); // no account, no enrolment link
        (exit, output) = await CliAsync("audit", "verify");
        Assert.Equal(3, exit);
        Assert.Contains($"After review: vauban audit remove-row --tenant {Establishment} --table staff_users --id {_physician.Id}", output, StringComparison.Ordinal);

        (exit, output) = await RemoveRowAsync("staff_users", _physician.Id);
        Assert.True(exit == 0, output);
        Assert.Contains($"Removed: staff account {_physician.Id} in staff_users", output, StringComparison.Ordinal);
        var entry = Assert.Single(await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "audit test"),
            new Vauban.Audit.AuditQuery { Actions = [Vauban.Audit.AuditAction.Administration], Count = 100 }, None) ?? [],
            e => e.Detail.Note?.StartsWith("audit remove-row", StringComparison.Ordinal) == true);
        Assert.Equal($"row:staff_users/{_physician.Id}", Assert.Single(entry.Detail.Records));
        (exit, output) = await CliAsync("audit", "verify");
        Assert.True(exit == 0, output);
        Assert.DoesNotContain("ROW NOT AUTHENTIC", output, StringComparison.Ordinal);

        (exit, output) = await CliAsync("users", "add", "--tenant", Establishment, "--email", Email, "--role", "Physician");
        Assert.True(exit == 0, output);
        Assert.NotEqual(_physician.Id, (await _server.Store.Accounts.FindAsync(_tenant, Email, None))?.Id);
    }

    [Fact]
    public async Task Audit_remove_row_refuses_a_row_that_verifies_and_leaves_an_accounts_real_passkey_beside_a_forged_one()
    {
        var store = _server.Store.Accounts.Store;
        var real = RandomNumberGenerator.GetBytes(16);
        await store.AddOrUpdatePasskeyAsync(_administrator, Passkey(real), None);
        await _server.ExecuteSqlAsync($"""
            INSERT INTO staff_passkeys (credential_id, tenant_id, user_id, data, created_at, mac)
            SELECT {Bytes(RandomNumberGenerator.GetBytes(16))}, tenant_id, user_id, data, created_at, mac FROM staff_passkeys WHERE credential_id = {Bytes(real)}
            """);
        var checkedBefore = (await _server.Store.AccessRows.VerifyAsync(null, None)).Checked;

        var (exit, output) = await RemoveRowAsync("staff_users", _administrator.Id);
        Assert.True(exit == 1, output);
        Assert.Contains($"staff account {_administrator.Id} in staff_users carries the store's authentication", output, StringComparison.Ordinal);
        Assert.NotNull(await _server.Store.Accounts.FindByIdAsync(_administrator.Id, None));
        (exit, output) = await RemoveRowAsync("staff_users", "nobody-has-this-id");
        Assert.True(exit == 1, output);
        Assert.Contains("No row of staff_users in " + Establishment + " is named 'nobody-has-this-id'", output, StringComparison.Ordinal);
        Assert.Equal(checkedBefore, (await _server.Store.AccessRows.VerifyAsync(null, None)).Checked);

        (exit, output) = await RemoveRowAsync("staff_passkeys", _administrator.Id);
        Assert.True(exit == 0, output);
        Assert.Contains($"Removed: passkey of account {_administrator.Id} in staff_passkeys", output, StringComparison.Ordinal);
        var (rows, unauthentic) = await _server.Store.AccessRows.VerifyAsync(null, None);
        Assert.Empty(unauthentic);
        Assert.Equal(checkedBefore - 1, rows);
        Assert.Equal(real, Assert.Single(await store.GetPasskeysAsync(_administrator, None)).CredentialId);
    }

    [Fact]
    public async Task Audit_remove_row_has_help_and_names_the_tables_it_takes()
    {
        var (exit, output) = await CliRunner.RunAsync(["audit", "remove-row", "--help"]);
        Assert.True(exit == 0, output);
        Assert.Contains("ROW NOT AUTHENTIC", output, StringComparison.Ordinal);
        Assert.Contains("staff_recovery_codes", output, StringComparison.Ordinal);
        (exit, output) = await RemoveRowAsync("patients", "x");
        Assert.True(exit == 2, output);
    }

    [Fact]
    public async Task A_store_from_before_step_22_has_its_accounts_passkeys_codes_and_links_authenticated_once_and_they_still_work()
    {
        var db = engine == Engine.Postgres ? await PostgresServer.CreateDatabaseAsync() : Path.Combine(_directory, "old.db");
        var options = new StoreOptions(db, MasterKey.Generate()) { Time = _time };
        var credential = RandomNumberGenerator.GetBytes(16);
        string token;
        await using (var store = await VaubanStore.OpenAsync(options, None))
        {
            var tenant = await store.Tenants.AddAsync("chu-ancien", None);
            var user = (await store.Accounts.AddAsync(tenant, Email, StaffRole.Physician, "pract-1", null, "Dr Ancien", None)).User;
            await store.Accounts.Store.ReplaceCodesAsync(user, ["AAAA-BBBB-CCCC-DDDD"], None);
            await store.Accounts.Store.AddOrUpdatePasskeyAsync(user, Passkey(credential), None);
            Assert.True(await store.Accounts.LockAsync(tenant, Email, None)); // which cancels the link: a new one, after review
            token = (await store.Accounts.ReissueEnrolmentLinkAsync(user, None)).Token;
        }
        // The store as the Vauban before steps 21 and 22 left it.
        await Storage.StoreOperationsTests.ExecuteAsync(db, "DELETE FROM schema_version WHERE version IN (21, 22); "
            + Storage.StoreOperationsTests.UndoStep22 + " " + Storage.StoreOperationsTests.UndoStep21);

        await using (var store = await VaubanStore.OpenAsync(options, None))
        {
            foreach (var table in new[] { "staff_users", "staff_passkeys", "staff_recovery_codes", "enrolment_tokens" })
            {
                Assert.Equal(0, await Storage.StoreOperationsTests.ScalarAsync(db, $"SELECT count(*) FROM {table} WHERE mac IS NULL OR tenant_id IS NULL"));
            }
            var tenant = (await store.Tenants.FindAsync("chu-ancien", None))!;
            var user = await store.Accounts.FindAsync(tenant, Email, None);
            Assert.NotNull(user);
            Assert.Equal(DateTimeOffset.MaxValue, user.LockoutEnd); // its lock as it was
            Assert.True(await store.Accounts.UnlockAsync(tenant, Email, None));
            Assert.Equal(user.Id, (await store.Accounts.Store.FindByPasskeyIdAsync(credential, None))?.Id);
            Assert.Equal(user.Id, (await store.Accounts.PeekEnrolmentAsync(token, None))?.Id);
            Assert.True(await store.Accounts.Store.RedeemCodeAsync(user, "aaaa bbbb cccc dddd", None));
            Assert.Empty((await store.AccessRows.VerifyAsync(null, None)).Unauthentic);
            Assert.DoesNotContain(await store.Alerts.ListAsync(tenant.Id, all: true, 100, None), a => a.Kind == KnownAlertKinds.RowIntegrity);
        }
        if (engine == Engine.Sqlite) Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }
}

public sealed class StaffRowIntegrityTests_Sqlite() : StaffRowIntegrityTests(Engine.Sqlite);

public sealed class StaffRowIntegrityTests_Postgres() : StaffRowIntegrityTests(Engine.Postgres);
