// Staff accounts of each establishment: creation with a one-time enrolment link, listing, lock and
// unlock, session revocation, and the persistence the Identity stores (StaffUserStore) build on.
// Enrolment links and recovery codes are high-entropy secrets stored only as SHA-256 hashes. An account's row, and each of its
// passkeys, recovery codes and enrolment links, carries a MAC under the store's row-authentication key (ADR 0014): one written or
// changed in the database, not by Vauban, is as if it did not exist.
using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Storage;

namespace Vauban.Access;

public sealed record EnrolmentLink(StaffUser User, string Token, DateTimeOffset ExpiresAt);

public sealed record StaffAccountSummary(string Id, string Email, string DisplayName, StaffRole Role, string? Practitioner, string? Service,
    bool Enrolled, bool Locked, int Sessions);

public sealed class StaffAccounts
{
    // Type codes for the associated data of sealed account fields: never equal to a resource type code.
    internal const int SealedAccountCode = 9001;
    internal const int SealedAuthenticatorCode = 9002;
    private const int EmailIndexCode = 9001;

    private readonly StoreDatabase _database;
    private readonly KeyRing _keys;
    private readonly Tenants _tenants;
    private readonly AuditTrail _audit;
    private readonly AccessRows _rows;
    private readonly TimeProvider _time;

    internal StaffAccounts(StoreDatabase database, KeyRing keys, Tenants tenants, AuditTrail audit, AccessRows rows, TimeProvider time, AccountOptions options)
    {
        _database = database;
        _keys = keys;
        _tenants = tenants;
        _audit = audit;
        _rows = rows;
        _time = time;
        Options = options;
        Store = new StaffUserStore(this, database, rows, time);
    }

    public AccountOptions Options { get; }

    /// <summary>The Identity store over this database (UserManager's IUserStore and its companions).</summary>
    public StaffUserStore Store { get; }

    public static string NormalizeEmail(string email) => (email ?? "").Trim().ToUpperInvariant();

    public static bool IsValidEmail(string? email) =>
        email is { Length: >= 3 and <= 254 } && email.IndexOf('@', StringComparison.Ordinal) is > 0 and var at && at < email.Length - 1
        && !email.Any(char.IsWhiteSpace) && email.Count(c => c == '@') == 1
        // Printed by `users list` and the console: an escape sequence in it rewrote the operator's terminal, as one in a name did.
        && !StatedText.HasHiddenCharacters(email);

    /// <summary>Why <paramref name="displayName"/> (trimmed) cannot be an account's name, or null: checked by the command line
    /// before a store is opened, and by the account's creation itself.</summary>
    public static string? DisplayNameProblem(string displayName)
    {
        ArgumentNullException.ThrowIfNull(displayName);
        // The name is who an access history, the console, a breach's letters and the command line's lists say acted: an escape
        // sequence or a line break in it rewrote the operator's terminal and forged lines of its output, and a direction override
        // made it read as another name.
        return displayName.Length > 200 ? "A display name is at most 200 characters."
            : StatedText.HasHiddenCharacters(displayName) ? "A display name may not hold control or invisible characters (escape sequences, line breaks, zero-width, direction overrides): type it plainly."
            : null;
    }

    private static bool IsValidResourceId(string? id) =>
        id is null || (id.Length is >= 1 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.'));

    public Task<EnrolmentLink> AddAsync(Tenant tenant, string email, StaffRole role, string? practitioner, string? service, string? displayName,
        CancellationToken cancellationToken) => AddAsync(tenant, null, email, role, practitioner, service, displayName, cancellationToken);

    /// <summary>Creates the account as an administrative act of <paramref name="administrator"/>: its audit entry is written in
    /// the transaction that creates the account, so an audit log that cannot be written leaves no account (fail closed).</summary>
    public Task<EnrolmentLink> AddAsync(AccessContext administrator, string email, StaffRole role, string? practitioner, string? service, string? displayName,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(administrator);
        return AddAsync(administrator.Tenant, administrator, email, role, practitioner, service, displayName, cancellationToken);
    }

    private async Task<EnrolmentLink> AddAsync(Tenant tenant, AccessContext? administrator, string email, StaffRole role, string? practitioner, string? service,
        string? displayName, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        email = (email ?? "").Trim();
        if (!IsValidEmail(email)) throw new ArgumentException("The e-mail address is not valid.", nameof(email));
        if (!IsValidResourceId(practitioner)) throw new ArgumentException("--practitioner must be a Practitioner resource id (letters, digits, '-', '.').", nameof(practitioner));
        if (!IsValidResourceId(service)) throw new ArgumentException("--service must be an Organization resource id (letters, digits, '-', '.').", nameof(service));
        var name = string.IsNullOrWhiteSpace(displayName) ? email[..email.IndexOf('@', StringComparison.Ordinal)] : displayName.Trim();
        if (DisplayNameProblem(name) is { } wrongName) throw new ArgumentException(wrongName, nameof(displayName));
        if (await FindAsync(tenant, email, cancellationToken) is not null)
            throw new InvalidOperationException($"An account with this e-mail address already exists in {tenant.Name}.");

        var keys = await _keys.ForTenantAsync(tenant.Id, cancellationToken);
        var user = new StaffUser
        {
            Id = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(9)),
            Tenant = tenant, Email = email, DisplayName = name, Role = role, Practitioner = practitioner, Service = service,
            SecurityStamp = NewStamp(),
        };
        user.StoredStamp = user.SecurityStamp;
        var sealedFields = RecordCipher.Seal(keys, SealedAccountCode, user.Id, 0, JsonSerializer.SerializeToUtf8Bytes(new SealedFields(email, name)));
        var row = AuthenticatedTable.StaffUsers.Row(("id", user.Id), ("tenant_id", tenant.Id), ("email_index", EmailIndex(keys, email)), ("role", role.ToString()),
            ("practitioner", practitioner), ("service", service), ("password_hash", null), ("security_stamp", user.SecurityStamp), ("two_factor_enabled", 0),
            ("lockout_end", null));
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        // Not found above, yet a row holds the address: one that fails its check (refused, and told, by the look-up), or one made
        // meanwhile. Said in words, not as the unique index's violation; nothing is written.
        var taken = (await AccessRows.ReadAllAsync(scope, AuthenticatedTable.StaffUsers, "WHERE r.tenant_id = @t AND r.email_index = @e", cancellationToken,
            ("t", tenant.Id), ("e", row["email_index"]!))).FirstOrDefault();
        if (taken is not null && _rows.Authentic(taken)) throw new InvalidOperationException($"An account with this e-mail address already exists in {tenant.Name}.");
        if (taken is not null)
        {
            var id = AuthenticatedTable.StaffUsers.Id(taken);
            throw new InvalidOperationException($"The account of this e-mail address in {tenant.Name} ({AuthenticatedTable.StaffUsers.Describe(taken)}) fails its integrity check: "
                + "its row was written or changed in the database, not by Vauban, and is refused (`vauban audit verify` lists it). No account was created. After review, "
                + $"remove it with: vauban audit remove-row --tenant {tenant.Name} --table staff_users --id {id}");
        }
        using (var insert = scope.Command(""))
        {
            insert.CommandText = $"INSERT INTO staff_users ({AuthenticatedTable.StaffUsers.ColumnList}, sealed, created_at) VALUES ({_rows.Bind(insert, row)}, @s, @c)";
            insert.With("s", sealedFields).With("c", _time.GetUtcNow().ToUnixTimeMilliseconds());
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        var link = await IssueEnrolmentLinkAsync(scope, user, cancellationToken);
        await RecordAsync(scope, administrator, "users add (" + role + ")", user, cancellationToken);
        await scope.CommitAsync(cancellationToken);
        return link;
    }

    /// <summary>A new one-time enrolment link for an existing account (e.g. a lost link); earlier links stop working.</summary>
    public Task<EnrolmentLink> ReissueEnrolmentLinkAsync(StaffUser user, CancellationToken cancellationToken) => ReissueEnrolmentLinkAsync(null, user, cancellationToken);

    /// <summary>A new enrolment link; as an administrative act of <paramref name="administrator"/> (when given), recorded in the
    /// transaction that issues it: no entry, no link.</summary>
    public async Task<EnrolmentLink> ReissueEnrolmentLinkAsync(AccessContext? administrator, StaffUser user, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        var link = await IssueEnrolmentLinkAsync(scope, user, cancellationToken);
        await RecordAsync(scope, administrator, "users enrol-link", user, cancellationToken);
        await scope.CommitAsync(cancellationToken);
        return link;
    }

    /// <summary>An administrative act on an account, appended in the act's own transaction (nothing when no administrator is named).</summary>
    private async Task RecordAsync(WriteScope scope, AccessContext? administrator, string act, StaffUser user, CancellationToken cancellationToken)
    {
        if (administrator is null) return;
        await _audit.AppendAsync(scope, administrator, AuditAction.Administration, AuditOutcome.Success, null,
            [new AuditedRecord("account:" + user.PrincipalId, null, null)], cancellationToken, act);
    }

    private async Task<EnrolmentLink> IssueEnrolmentLinkAsync(WriteScope scope, StaffUser user, CancellationToken cancellationToken)
    {
        using (var purge = scope.Command("DELETE FROM enrolment_tokens WHERE user_id = @u OR expires_at < @now")
            .With("u", user.Id).With("now", _time.GetUtcNow().ToUnixTimeMilliseconds()))
        {
            await purge.ExecuteNonQueryAsync(cancellationToken);
        }
        // The account's stamp as the store holds it now (the caller's copy may be from before a lock): the link works while it stays.
        string? stamp;
        using (var read = scope.Command("SELECT security_stamp FROM staff_users WHERE id = @u").With("u", user.Id))
        {
            stamp = await read.ExecuteScalarAsync(cancellationToken) as string;
        }
        var token = "ve_" + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var expires = _time.GetUtcNow().Add(Options.EnrolmentLinkLifetime);
        var row = AuthenticatedTable.EnrolmentTokens.Row(("token_hash", Hash(token)), ("tenant_id", user.Tenant.Id), ("user_id", user.Id),
            ("expires_at", expires.ToUnixTimeMilliseconds()), ("security_stamp", stamp));
        using var insert = scope.Command("");
        insert.CommandText = $"INSERT INTO enrolment_tokens ({AuthenticatedTable.EnrolmentTokens.ColumnList}) VALUES ({_rows.Bind(insert, row)})";
        await insert.ExecuteNonQueryAsync(cancellationToken);
        return new EnrolmentLink(user, token, expires);
    }

    /// <summary>The account an unexpired enrolment link is for, without using it up. A link written in the database rather than
    /// issued by Vauban (one for an administrator's account, whose use would reset its credentials to the writer's) is no link.</summary>
    public async Task<StaffUser?> PeekEnrolmentAsync(string token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 200) return null;
        var table = AuthenticatedTable.EnrolmentTokens;
        var read = await _database.ReadOneAsync(
            $"SELECT {table.Select("e")}, u.security_stamp FROM enrolment_tokens e LEFT JOIN staff_users u ON u.id = e.user_id WHERE e.token_hash = @h AND e.expires_at > @now",
            r => Tuple.Create(table.Read(r, 0), r.GetValue(table.Columns.Count + 1) as string), cancellationToken,
            ("h", Hash(token)), ("now", _time.GetUtcNow().ToUnixTimeMilliseconds()));
        // Nor is one issued before the account's stamp last changed (its use, a lock), put back with its MAC after them.
        return read is ({ } row, var accountStamp) && await _rows.CheckAsync(row, cancellationToken) && row.Text("security_stamp") is { } stamp
            && string.Equals(stamp, accountStamp, StringComparison.Ordinal) && row.Text("user_id") is { } id ? await FindByIdAsync(id, cancellationToken) : null;
    }

    /// <summary>Uses an enrolment link up (single use): the account, or null when unknown, expired, already used or not issued by Vauban.</summary>
    public async Task<StaffUser?> ConsumeEnrolmentAsync(string token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 200) return null;
        string? id = null;
        await using (var scope = await _database.BeginWriteAsync(cancellationToken))
        {
            var row = await AccessRows.ReadAsync(scope, AuthenticatedTable.EnrolmentTokens, Hash(token), cancellationToken);
            if (row is not null && row.Number("expires_at") > _time.GetUtcNow().ToUnixTimeMilliseconds() && await _rows.CheckAsync(scope, row, cancellationToken))
            {
                // Whoever deletes it first uses it: a replayed form finds it gone. Only while the account holds the stamp it was issued
                // under: a link used (its use resets the stamp) or cancelled by a lock (which changes it), put back with its MAC, is none.
                using var delete = scope.Command("""
                    DELETE FROM enrolment_tokens WHERE token_hash = @h AND mac = @m
                        AND EXISTS (SELECT 1 FROM staff_users WHERE id = @u AND security_stamp = @s)
                    """).With("h", Hash(token)).With("m", row.Mac!).With("u", row.Text("user_id")).With("s", row.Text("security_stamp"));
                if (await delete.ExecuteNonQueryAsync(cancellationToken) == 1) id = row.Text("user_id");
            }
            await scope.CommitAsync(cancellationToken); // with the alert of a link that does not verify, when one was raised
        }
        return id is null ? null : await FindByIdAsync(id, cancellationToken);
    }

    public async Task<StaffUser?> FindAsync(Tenant tenant, string email, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var keys = await _keys.ForTenantAsync(tenant.Id, cancellationToken);
        return await LoadAsync("r.tenant_id = @t AND r.email_index = @e", cancellationToken, ("t", tenant.Id), ("e", EmailIndex(keys, email)));
    }

    /// <summary>The per-account throttling key: the same for an existing and a non-existing address, so throttling reveals nothing.</summary>
    public async Task<string> AccountKeyAsync(Tenant tenant, string email, CancellationToken cancellationToken)
    {
        var keys = await _keys.ForTenantAsync(tenant.Id, cancellationToken);
        return tenant.Id + ":" + EmailIndex(keys, email);
    }

    internal ValueTask<Tenant?> TenantsAsync(long id, CancellationToken cancellationToken) => _tenants.FindAsync(id, cancellationToken);

    public Task<StaffUser?> FindByIdAsync(string id, CancellationToken cancellationToken) =>
        LoadAsync("r.id = @id", cancellationToken, ("id", id));

    public async Task<IReadOnlyList<StaffAccountSummary>> ListAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var users = await LoadManyAsync("r.tenant_id = @t", secondFactor: true, cancellationToken, ("t", tenant.Id));
        var now = _time.GetUtcNow();
        // The establishment's signed-in sessions counted in one statement, by account and the stamp each was opened under: only
        // those under the account's stamp now are open (a lock or a new password changed it). One query, not one an account.
        var open = new Dictionary<(string User, string Stamp), long>();
        await using (var connection = await _database.OpenAsync(cancellationToken))
        using (var count = connection.Command("SELECT user_id, security_stamp, count(*) FROM staff_sessions WHERE tenant_id = @t AND stage = @s "
            + "AND user_id IS NOT NULL AND security_stamp IS NOT NULL GROUP BY user_id, security_stamp").With("t", tenant.Id).With("s", (int)SessionStage.Full))
        using (var reader = await count.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) open[(reader.GetString(0), reader.GetString(1))] = reader.GetInt64(2);
        }
        return [.. users.OrderBy(u => u.Email, StringComparer.OrdinalIgnoreCase).Select(user => new StaffAccountSummary(user.Id, user.Email, user.DisplayName,
            user.Role, user.Practitioner, user.Service, user.HasSecondFactor, user.LockoutEnd > now, (int)open.GetValueOrDefault((user.Id, user.StoredStamp))))];
    }

    /// <summary>The establishment's accounts locked now — by failed sign-ins, an administrator or the guard; each until unlocked — by e-mail.</summary>
    public async Task<IReadOnlyList<StaffUser>> LockedAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var now = _time.GetUtcNow();
        var users = await LoadManyAsync("r.tenant_id = @t", secondFactor: false, cancellationToken, ("t", tenant.Id));
        return users.Where(u => u.LockoutEnd > now).OrderBy(u => u.Email, StringComparer.OrdinalIgnoreCase).ToList();
    }

    /// <summary>Who each account of the establishment is, by principal id ("user:…"): its name and role, as the security
    /// console names the principals it lists (an id alone says nothing to the officer reviewing it).</summary>
    public async Task<IReadOnlyDictionary<string, string>> NamesAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var users = await LoadManyAsync("r.tenant_id = @t", secondFactor: false, cancellationToken, ("t", tenant.Id));
        return users.ToDictionary(u => u.PrincipalId, u => $"{u.DisplayName} ({AccessPolicy.RoleName(u.Role)})", StringComparer.Ordinal);
    }

    /// <summary>Locks the account until unlocked, ends its sessions at once and cancels its unused enrolment link.</summary>
    public Task<bool> LockAsync(Tenant tenant, string email, CancellationToken cancellationToken) => LockAsync(tenant, null, email, cancellationToken);

    /// <summary>Locks the account as an administrative act of <paramref name="administrator"/>, recorded in the same transaction.</summary>
    public Task<bool> LockAsync(AccessContext administrator, string email, CancellationToken cancellationToken) =>
        LockAsync(administrator.Tenant, administrator, email, cancellationToken);

    private async Task<bool> LockAsync(Tenant tenant, AccessContext? administrator, string email, CancellationToken cancellationToken)
    {
        var user = await FindAsync(tenant, email, cancellationToken);
        if (user is null) return false;
        // A connection lost before the commit: the whole of it once more on a new one (the first changed nothing, rolled back).
        await _database.WriteAsync(async scope =>
        {
            // A new stamp with the lock: a copy of a session or link row taken before it and put back after the unlock is none.
            await ChangeAsync(_rows, scope, user.Id, null, row => row.With("lockout_end", LockedForGood).With("security_stamp", NewStamp()), cancellationToken);
            await DeleteSessionsAsync(scope, user.Id, cancellationToken);
            // A link issued before the lock would reset the credentials and lift the lock with them (ResetCredentialsAsync): whoever
            // holds it — a link sent to the wrong mailbox, the reason for the lock — would have a working account again.
            using (var links = scope.Command("DELETE FROM enrolment_tokens WHERE user_id = @u").With("u", user.Id))
            {
                await links.ExecuteNonQueryAsync(cancellationToken);
            }
            await RecordAsync(scope, administrator, "users lock", user, cancellationToken);
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);
        return true;
    }

    public Task<bool> UnlockAsync(Tenant tenant, string email, CancellationToken cancellationToken) => UnlockAsync(tenant, null, email, cancellationToken);

    /// <summary>Unlocks the account as an administrative act of <paramref name="administrator"/>, recorded in the same transaction.</summary>
    public Task<bool> UnlockAsync(AccessContext administrator, string email, CancellationToken cancellationToken) =>
        UnlockAsync(administrator.Tenant, administrator, email, cancellationToken);

    private async Task<bool> UnlockAsync(Tenant tenant, AccessContext? administrator, string email, CancellationToken cancellationToken)
    {
        var user = await FindAsync(tenant, email, cancellationToken);
        if (user is null) return false;
        var accountKey = await AccountKeyAsync(tenant, user.Email, cancellationToken);
        // A connection lost before the commit: the whole of it once more on a new one (the first changed nothing, rolled back).
        await _database.WriteAsync(async scope =>
        {
            await ChangeAsync(_rows, scope, user.Id, null, row => row.With("lockout_end", null), cancellationToken);
            using (var update = scope.Command("UPDATE staff_users SET access_failed_count = 0 WHERE id = @u").With("u", user.Id))
            {
                await update.ExecuteNonQueryAsync(cancellationToken);
            }
            using (var reset = scope.Command("DELETE FROM sign_in_failures WHERE scope = 'account' AND key = @k").With("k", accountKey))
            {
                await reset.ExecuteNonQueryAsync(cancellationToken);
            }
            await RecordAsync(scope, administrator, "users unlock", user, cancellationToken);
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);
        return true;
    }

    /// <summary>Ends every session of the account at once (the server checks the session row on each request). Null for an unknown account.</summary>
    public Task<int?> RevokeSessionsAsync(Tenant tenant, string email, CancellationToken cancellationToken) => RevokeSessionsAsync(tenant, null, email, cancellationToken);

    /// <summary>Ends the account's sessions as an administrative act of <paramref name="administrator"/>, recorded in the same transaction.</summary>
    public Task<int?> RevokeSessionsAsync(AccessContext administrator, string email, CancellationToken cancellationToken) =>
        RevokeSessionsAsync(administrator.Tenant, administrator, email, cancellationToken);

    private async Task<int?> RevokeSessionsAsync(Tenant tenant, AccessContext? administrator, string email, CancellationToken cancellationToken)
    {
        var user = await FindAsync(tenant, email, cancellationToken);
        if (user is null) return null;
        // A connection lost before the commit: the whole of it once more on a new one (the first ended no session, rolled back).
        return await _database.WriteAsync(async scope =>
        {
            // A new stamp: a copy of a session row put back after the revocation is none (an unused enrolment link ends with it too).
            await ChangeAsync(_rows, scope, user.Id, null, row => row.With("security_stamp", NewStamp()), cancellationToken);
            var count = await DeleteSessionsAsync(scope, user.Id, cancellationToken);
            await RecordAsync(scope, administrator, "users revoke-sessions", user, cancellationToken);
            await scope.CommitAsync(cancellationToken);
            return (int?)count;
        }, cancellationToken);
    }

    /// <summary>Before a re-enrolment: password, authenticator, passkeys, recovery codes, sessions and lockout all go.</summary>
    public async Task ResetCredentialsAsync(StaffUser user, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        var stamp = NewStamp();
        await ChangeAsync(_rows, scope, user.Id, null,
            row => row.With("password_hash", null).With("two_factor_enabled", 0).With("lockout_end", null).With("security_stamp", stamp), cancellationToken);
        foreach (var sql in new[]
        {
            "UPDATE staff_users SET authenticator_key = NULL, access_failed_count = 0 WHERE id = @u",
            "DELETE FROM staff_passkeys WHERE user_id = @u",
            "DELETE FROM staff_recovery_codes WHERE user_id = @u",
            "DELETE FROM staff_sessions WHERE user_id = @u",
        })
        {
            using var command = scope.Command(sql).With("u", user.Id);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>A new security stamp: the sessions and enrolment links made under the previous one are none from then (ADR 0014).</summary>
    internal static string NewStamp() => Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    /// <summary>A lock until the officer unlocks (lockout_end's value for it).</summary>
    internal static long LockedForGood => DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    /// <summary>
    /// Changes the account's authenticated columns (ADR 0014) in <paramref name="scope"/>, with its MAC: the one way every writer of
    /// staff_users (the officer, Identity through <see cref="UpdateAsync"/>, the guard) changes them. An account whose row does not
    /// verify keeps the MAC it had, so a change never makes an altered row believed (a lock still applies to it). False when there is
    /// no such account (in the establishment <paramref name="tenantId"/>, when given).
    /// </summary>
    internal static async Task<bool> ChangeAsync(AccessRows rows, WriteScope scope, string userId, long? tenantId, Func<AuthenticatedRow, AuthenticatedRow> change,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(change);
        // Read and written in one transaction; on PostgreSQL another server's write may come between the two: read it again then.
        for (var attempt = 1; ; attempt++)
        {
            var current = await AccessRows.ReadAsync(scope, AuthenticatedTable.StaffUsers, userId, cancellationToken);
            if (current is null || (tenantId is { } tenant && current.TenantId != tenant)) return false;
            if (await rows.RewriteAsync(scope, current, change(current), cancellationToken)) return true;
            if (attempt == 5) throw new InvalidOperationException("The account kept changing while it was written: try again.");
        }
    }

    internal static async Task<int> DeleteSessionsAsync(WriteScope scope, string userId, CancellationToken cancellationToken)
    {
        using var delete = scope.Command("DELETE FROM staff_sessions WHERE user_id = @u").With("u", userId);
        return await delete.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Writes what Identity changed. A lock is never shortened here and a failure count never lowered except
    /// to 0 (success or lock): a sign-in working on a stale copy must not undo the officer's lock or a parallel
    /// failure. Unlocking is <see cref="UnlockAsync"/>'s alone. The credentials (password, authenticator, security stamp)
    /// are written only while the store holds the stamp the copy was read with: a sign-in that read the account before
    /// an officer's reset (<see cref="ResetCredentialsAsync"/>) or another change of credentials cannot write the old ones
    /// back. Returns false when the copy was stale (its lock and failure count were written all the same).
    /// </summary>
    internal async Task<bool> UpdateAsync(StaffUser user, CancellationToken cancellationToken)
    {
        byte[]? sealedKey = null;
        if (user.AuthenticatorKey is not null)
        {
            var keys = await _keys.ForTenantAsync(user.Tenant.Id, cancellationToken);
            sealedKey = RecordCipher.Seal(keys, SealedAuthenticatorCode, user.Id, 0, Encoding.UTF8.GetBytes(user.AuthenticatorKey));
        }
        var lockout = user.LockoutEnd?.ToUnixTimeMilliseconds();
        string? stored = null;
        // A lost connection before the commit: the whole of it once more on a new one, the row read again there.
        await _database.WriteAsync(async scope =>
        {
            stored = null;
            string? previous = null;
            var credentials = false;
            await ChangeAsync(_rows, scope, user.Id, null, row =>
            {
                var locked = row.Number("lockout_end");
                var next = row.With("lockout_end", locked is null ? lockout : (lockout ?? 0) > locked ? lockout : locked);
                previous = row.Text("security_stamp");
                credentials = string.Equals(previous, user.StoredStamp, StringComparison.Ordinal);
                stored = credentials ? user.SecurityStamp : row.Text("security_stamp");
                return credentials
                    ? next.With("password_hash", user.PasswordHash).With("two_factor_enabled", user.TwoFactorEnabled ? 1 : 0).With("security_stamp", user.SecurityStamp)
                    : next;
            }, cancellationToken);
            if (credentials && previous is not null && previous != user.SecurityStamp)
                await StaffSessions.FollowStampAsync(_rows, scope, user.Id, previous, user.SecurityStamp, cancellationToken);
            // The sealed authenticator key goes with the credentials; the failure count (which the MAC does not cover) never lowers but to 0.
            using (var update = scope.Command("""
                UPDATE staff_users SET
                    authenticator_key = CASE WHEN @cr = 1 THEN @k ELSE authenticator_key END,
                    access_failed_count = CASE WHEN @f = 0 OR @f > access_failed_count THEN @f ELSE access_failed_count END
                WHERE id = @id
                """).With("cr", credentials ? 1 : 0).With("k", sealedKey).With("f", user.AccessFailedCount).With("id", user.Id))
            {
                await update.ExecuteNonQueryAsync(cancellationToken);
            }
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);
        if (stored != user.SecurityStamp) return false;
        user.StoredStamp = stored;
        return true;
    }

    /// <summary>An account's columns, on the table named <paramref name="alias"/> (read back by <see cref="StoredAccount.Read"/>):
    /// the authenticated ones and their MAC, then its sealed fields, its sealed authenticator key and its failure count.</summary>
    internal static string AccountColumns(string alias) => $"{AuthenticatedTable.StaffUsers.Select(alias)}, {AccountExtra(alias)}";

    private static string AccountExtra(string alias) => $"{alias}.sealed, {alias}.authenticator_key, {alias}.access_failed_count";

    /// <summary>An account's row as read, before it is checked and opened: what its MAC covers, its sealed fields and key, its failures.</summary>
    internal sealed record StoredAccount(AuthenticatedRow Row, byte[] Sealed, byte[]? Key, int Failures)
    {
        /// <summary>The account whose <see cref="AccountColumns"/> begin at <paramref name="first"/>; null when they are NULL (a join
        /// that found no account).</summary>
        public static StoredAccount? Read(DbDataReader reader, int first) =>
            reader.IsDBNull(first) ? null
            : Of(AuthenticatedTable.StaffUsers.Read(reader, first), reader, first + AuthenticatedTable.StaffUsers.Columns.Count + 1);

        /// <summary>The account of <paramref name="row"/>, its other columns from <paramref name="next"/> on.</summary>
        public static StoredAccount Of(AuthenticatedRow row, DbDataReader reader, int next) =>
            new(row, (byte[])reader.GetValue(next), reader.IsDBNull(next + 1) ? null : (byte[])reader.GetValue(next + 1), reader.GetInt32(next + 2));
    }

    private async Task<StaffUser?> LoadAsync(string where, CancellationToken cancellationToken, params (string Name, object Value)[] parameters) =>
        (await LoadManyAsync(where, secondFactor: true, cancellationToken, parameters)).FirstOrDefault();

    /// <summary>The accounts <paramref name="where"/> selects that verify; with <paramref name="secondFactor"/>, each one's
    /// <see cref="StaffUser.HasSecondFactor"/> asked (a passkey-only account's passkeys read and checked).</summary>
    private async Task<List<StaffUser>> LoadManyAsync(string where, bool secondFactor, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        List<(StoredAccount Account, long Passkeys)> rows;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            // The passkeys counted in the same statement: only an account that has some has them read and checked.
            rows = await AccessRows.ReadAllAsync(connection.Command(""), AuthenticatedTable.StaffUsers,
                AccountExtra("r") + (secondFactor ? ", (SELECT count(*) FROM staff_passkeys p WHERE p.user_id = r.id)" : ""), "WHERE " + where,
                (row, reader, next) => (StoredAccount.Of(row, reader, next), secondFactor ? reader.GetInt64(next + 3) : 0), cancellationToken, parameters);
        }
        var users = new List<StaffUser>(rows.Count);
        foreach (var (account, passkeys) in rows)
        {
            if (await AccountOfAsync(account, cancellationToken) is not { } user) continue;
            if (secondFactor) user.HasSecondFactor = user.TwoFactorEnabled || (passkeys > 0 && await HasAuthenticPasskeyAsync(user.Id, cancellationToken));
            users.Add(user);
        }
        return users;
    }

    /// <summary>The account of a row read (here, or with a session's), when it verifies and its establishment exists; its
    /// second factor not asked.</summary>
    internal async Task<StaffUser?> AccountOfAsync(StoredAccount account, CancellationToken cancellationToken)
    {
        var row = account.Row;
        // An account inserted, or its role, practitioner, password, second factor or lock changed, in the database is no account (ADR 0014).
        if (!await _rows.CheckAsync(row, cancellationToken)) return null;
        var (id, tenantId) = (row.Text("id")!, row.TenantId!.Value);
        var tenant = await _tenants.FindAsync(tenantId, cancellationToken);
        if (tenant is null) return null;
        var keys = await _keys.ForTenantAsync(tenantId, cancellationToken);
        var fields = JsonSerializer.Deserialize<SealedFields>(RecordCipher.Open(keys, SealedAccountCode, id, 0, account.Sealed))!;
        return new StaffUser
        {
            Id = id, Tenant = tenant, Email = fields.Email, DisplayName = fields.Name, Role = Enum.Parse<StaffRole>(row.Text("role")!),
            Practitioner = row.Text("practitioner"), Service = row.Text("service"), PasswordHash = row.Text("password_hash"),
            SecurityStamp = row.Text("security_stamp")!, StoredStamp = row.Text("security_stamp")!,
            AuthenticatorKey = account.Key is null ? null : Encoding.UTF8.GetString(RecordCipher.Open(keys, SealedAuthenticatorCode, id, 0, account.Key)),
            TwoFactorEnabled = row.Number("two_factor_enabled") is not (null or 0),
            LockoutEnd = row.Number("lockout_end") is { } l ? (l >= LockedForGood ? DateTimeOffset.MaxValue : DateTimeOffset.FromUnixTimeMilliseconds(l)) : null,
            AccessFailedCount = account.Failures,
        };
    }

    /// <summary>Whether <paramref name="user"/> has a second factor (<see cref="StaffUser.HasSecondFactor"/>), asked now when it was
    /// not when the account was read (a session's account), and kept on it.</summary>
    public async Task<bool> HasSecondFactorAsync(StaffUser user, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.KnownSecondFactor is { } known) return known;
        var has = user.TwoFactorEnabled || await HasAuthenticPasskeyAsync(user.Id, cancellationToken);
        user.HasSecondFactor = has;
        return has;
    }

    /// <summary>Whether the account holds a passkey Vauban enrolled. One written in the database (the writer's own authenticator
    /// beside a password they know) is no second factor: it is reported, and the account is one without (ADR 0014).</summary>
    private async Task<bool> HasAuthenticPasskeyAsync(string userId, CancellationToken cancellationToken) =>
        (await _rows.ReadAuthenticAsync(AuthenticatedTable.StaffPasskeys, "WHERE r.user_id = @u", cancellationToken, ("u", userId))).Count > 0;

    private static long EmailIndex(TenantKeys keys, string email) => keys.Index.Hash(EmailIndexCode, 'e', NormalizeEmail(email));

    internal static byte[] Hash(string value) => SHA256.HashData(Encoding.UTF8.GetBytes(value));

    private sealed record SealedFields(string Email, string Name);
}
