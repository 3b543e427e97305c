// ASP.NET Core Identity's stores for staff accounts, over Vauban's own storage (one schema, one
// migration system, no EF Core). Accounts are created by StaffAccounts.AddAsync (with an enrolment
// link), never by UserManager.CreateAsync. Recovery codes are stored as SHA-256 hashes; the
// authenticator key is sealed under the tenant's data key. Passkeys and recovery codes carry a MAC under the store's
// row-authentication key (ADR 0014): one written in the database, not by Vauban, signs no one in.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Vauban.Storage;

namespace Vauban.Access;

public sealed class StaffUserStore :
    IUserPasswordStore<StaffUser>, IUserSecurityStampStore<StaffUser>, IUserEmailStore<StaffUser>, IUserTwoFactorStore<StaffUser>,
    IUserAuthenticatorKeyStore<StaffUser>, IUserTwoFactorRecoveryCodeStore<StaffUser>, IUserLockoutStore<StaffUser>, IUserPasskeyStore<StaffUser>
{
    private readonly StaffAccounts _accounts;
    private readonly StoreDatabase _database;
    private readonly AccessRows _rows;
    private readonly TimeProvider _time;

    internal StaffUserStore(StaffAccounts accounts, StoreDatabase database, AccessRows rows, TimeProvider time)
    {
        _accounts = accounts;
        _database = database;
        _rows = rows;
        _time = time;
    }

    public void Dispose() { }

    // IUserStore
    public Task<string> GetUserIdAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(Required(user).Id);
    public Task<string?> GetUserNameAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult<string?>(Required(user).UserName);
    public Task SetUserNameAsync(StaffUser user, string? userName, CancellationToken cancellationToken) => Task.CompletedTask;
    public Task<string?> GetNormalizedUserNameAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult<string?>(Required(user).UserName.ToUpperInvariant());
    public Task SetNormalizedUserNameAsync(StaffUser user, string? normalizedName, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IdentityResult> CreateAsync(StaffUser user, CancellationToken cancellationToken) =>
        Task.FromResult(IdentityResult.Failed(new IdentityError { Code = "NotSupported", Description = "Accounts are created with 'vauban users add'." }));

    /// <summary>A copy read before its credentials changed (an officer's reset, another enrolment) is a concurrency failure:
    /// its lock and failure count are kept, its credentials are not written.</summary>
    public async Task<IdentityResult> UpdateAsync(StaffUser user, CancellationToken cancellationToken) =>
        await _accounts.UpdateAsync(Required(user), cancellationToken) ? IdentityResult.Success : IdentityResult.Failed(new IdentityErrorDescriber().ConcurrencyFailure());

    public Task<IdentityResult> DeleteAsync(StaffUser user, CancellationToken cancellationToken) =>
        Task.FromResult(IdentityResult.Failed(new IdentityError { Code = "NotSupported", Description = "Accounts are locked, not deleted (the audit names them)." }));

    public Task<StaffUser?> FindByIdAsync(string userId, CancellationToken cancellationToken) => _accounts.FindByIdAsync(userId, cancellationToken);

    /// <summary>Finds "&lt;tenant id&gt;:&lt;e-mail&gt;" (normalized).</summary>
    public async Task<StaffUser?> FindByNameAsync(string normalizedUserName, CancellationToken cancellationToken)
    {
        if (normalizedUserName is null) return null;
        var colon = normalizedUserName.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !long.TryParse(normalizedUserName.AsSpan(0, colon), out var tenantId)) return null;
        var tenant = await _accounts.TenantsAsync(tenantId, cancellationToken);
        return tenant is null ? null : await _accounts.FindAsync(tenant, normalizedUserName[(colon + 1)..], cancellationToken);
    }

    // IUserEmailStore: an address is unique within its establishment only, so there is no global look-up by e-mail.
    public Task SetEmailAsync(StaffUser user, string? email, CancellationToken cancellationToken) => throw new NotSupportedException("E-mail addresses are set by the security officer.");
    public Task<string?> GetEmailAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult<string?>(Required(user).Email);
    public Task<bool> GetEmailConfirmedAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(true);
    public Task SetEmailConfirmedAsync(StaffUser user, bool confirmed, CancellationToken cancellationToken) => Task.CompletedTask;
    public Task<StaffUser?> FindByEmailAsync(string normalizedEmail, CancellationToken cancellationToken) => Task.FromResult<StaffUser?>(null);
    public Task<string?> GetNormalizedEmailAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult<string?>(StaffAccounts.NormalizeEmail(Required(user).Email));
    public Task SetNormalizedEmailAsync(StaffUser user, string? normalizedEmail, CancellationToken cancellationToken) => Task.CompletedTask;

    // IUserPasswordStore, IUserSecurityStampStore
    public Task SetPasswordHashAsync(StaffUser user, string? passwordHash, CancellationToken cancellationToken) { Required(user).PasswordHash = passwordHash; return Task.CompletedTask; }
    public Task<string?> GetPasswordHashAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(Required(user).PasswordHash);
    public Task<bool> HasPasswordAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(Required(user).PasswordHash is not null);
    public Task SetSecurityStampAsync(StaffUser user, string stamp, CancellationToken cancellationToken) { Required(user).SecurityStamp = stamp; return Task.CompletedTask; }
    public Task<string?> GetSecurityStampAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult<string?>(Required(user).SecurityStamp);

    // IUserTwoFactorStore, IUserAuthenticatorKeyStore
    public Task SetTwoFactorEnabledAsync(StaffUser user, bool enabled, CancellationToken cancellationToken) { Required(user).TwoFactorEnabled = enabled; return Task.CompletedTask; }
    public Task<bool> GetTwoFactorEnabledAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(Required(user).TwoFactorEnabled);
    public Task SetAuthenticatorKeyAsync(StaffUser user, string key, CancellationToken cancellationToken) { Required(user).AuthenticatorKey = key; return Task.CompletedTask; }
    public Task<string?> GetAuthenticatorKeyAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(Required(user).AuthenticatorKey);

    /// <summary>Accepts a TOTP time step only if it is later than the last accepted one (no replay), atomically.</summary>
    /// <remarks>A lost connection before the commit: run once more on a new one (the server rolled the first back: the step was not taken).</remarks>
    internal Task<bool> TryAcceptTotpStepAsync(StaffUser user, long step, CancellationToken cancellationToken) =>
        _database.WriteAsync(async scope =>
        {
            using var update = scope.Command("UPDATE staff_users SET totp_last_step = @s WHERE id = @u AND totp_last_step < @s").With("s", step).With("u", user.Id);
            var accepted = await update.ExecuteNonQueryAsync(cancellationToken) == 1;
            await scope.CommitAsync(cancellationToken);
            return accepted;
        }, cancellationToken);

    // IUserTwoFactorRecoveryCodeStore
    public async Task ReplaceCodesAsync(StaffUser user, IEnumerable<string> recoveryCodes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(recoveryCodes);
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using (var delete = scope.Command("DELETE FROM staff_recovery_codes WHERE user_id = @u").With("u", Required(user).Id))
        {
            await delete.ExecuteNonQueryAsync(cancellationToken);
        }
        foreach (var code in recoveryCodes.Distinct(StringComparer.Ordinal))
        {
            var row = AuthenticatedTable.StaffRecoveryCodes.Row(("code_hash", HashCode(code)), ("tenant_id", user.Tenant.Id), ("user_id", user.Id));
            using var insert = scope.Command("");
            insert.CommandText = $"INSERT INTO staff_recovery_codes ({AuthenticatedTable.StaffRecoveryCodes.ColumnList}) VALUES ({_rows.Bind(insert, row)})";
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        await scope.CommitAsync(cancellationToken);
    }

    /// <summary>Uses a recovery code up. One written in the database, not made by Vauban (a code its writer knows, beside a password
    /// they phished), is no code.</summary>
    public async Task<bool> RedeemCodeAsync(StaffUser user, string code, CancellationToken cancellationToken)
    {
        var hash = HashCode(code ?? "");
        Required(user);
        return await _database.WriteAsync(async scope =>
        {
            var row = (await AccessRows.ReadAllAsync(scope, AuthenticatedTable.StaffRecoveryCodes, "WHERE r.user_id = @u AND r.code_hash = @h", cancellationToken,
                ("u", user.Id), ("h", hash))).FirstOrDefault();
            var redeemed = false;
            if (row is not null && await _rows.CheckAsync(scope, row, cancellationToken))
            {
                // Single use: of two sign-ins sending it together, one deletes it.
                using var delete = scope.Command("DELETE FROM staff_recovery_codes WHERE user_id = @u AND code_hash = @h AND mac = @m").With("u", user.Id).With("h", hash).With("m", row.Mac!);
                redeemed = await delete.ExecuteNonQueryAsync(cancellationToken) == 1;
            }
            await scope.CommitAsync(cancellationToken); // with the alert of a code that does not verify, when one was raised
            return redeemed;
        }, cancellationToken);
    }

    public async Task<int> CountCodesAsync(StaffUser user, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var count = connection.Command("SELECT count(*) FROM staff_recovery_codes WHERE user_id = @u").With("u", Required(user).Id);
        return (int)await count.ScalarLongAsync(cancellationToken);
    }

    /// <summary>Recovery codes are compared without case, spaces or dashes, so a code typed from paper still works.</summary>
    private static byte[] HashCode(string code) =>
        SHA256.HashData(Encoding.UTF8.GetBytes(new string(code.Where(char.IsAsciiLetterOrDigit).Select(char.ToUpperInvariant).ToArray())));

    // IUserLockoutStore: lockout is always enabled.
    public Task<DateTimeOffset?> GetLockoutEndDateAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(Required(user).LockoutEnd);
    public Task SetLockoutEndDateAsync(StaffUser user, DateTimeOffset? lockoutEnd, CancellationToken cancellationToken) { Required(user).LockoutEnd = lockoutEnd; return Task.CompletedTask; }
    /// <summary>Atomic in the database: parallel wrong passwords each count (a burst cannot slip under the lockout).</summary>
    public async Task<int> IncrementAccessFailedCountAsync(StaffUser user, CancellationToken cancellationToken)
    {
        Required(user);
        var count = await _database.WriteAsync(async scope =>
        {
            using var update = scope.Command("UPDATE staff_users SET access_failed_count = access_failed_count + 1 WHERE id = @u RETURNING access_failed_count").With("u", user.Id);
            var counted = (int)await update.ScalarLongAsync(cancellationToken);
            await scope.CommitAsync(cancellationToken);
            return counted;
        }, cancellationToken);
        return user.AccessFailedCount = count;
    }
    public Task ResetAccessFailedCountAsync(StaffUser user, CancellationToken cancellationToken) { Required(user).AccessFailedCount = 0; return Task.CompletedTask; }
    public Task<int> GetAccessFailedCountAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(Required(user).AccessFailedCount);
    public Task<bool> GetLockoutEnabledAsync(StaffUser user, CancellationToken cancellationToken) => Task.FromResult(true);
    public Task SetLockoutEnabledAsync(StaffUser user, bool enabled, CancellationToken cancellationToken) => Task.CompletedTask;

    // IUserPasskeyStore
    public async Task AddOrUpdatePasskeyAsync(StaffUser user, UserPasskeyInfo passkey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(passkey);
        var now = _time.GetUtcNow();
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        int replaced;
        using (var delete = scope.Command("DELETE FROM staff_passkeys WHERE credential_id = @c AND user_id = @u").With("c", passkey.CredentialId).With("u", Required(user).Id))
        {
            replaced = await delete.ExecuteNonQueryAsync(cancellationToken);
        }
        // A new passkey's creation is stamped by the store's clock: Identity's handler stamps it by the system's (it takes no
        // TimeProvider). One already stored (a sign-in updating its counter) keeps its own.
        var stored = StoredPasskey.From(passkey);
        var data = JsonSerializer.Serialize(replaced == 0 ? stored with { CreatedAt = now } : stored);
        var row = AuthenticatedTable.StaffPasskeys.Row(("credential_id", passkey.CredentialId), ("tenant_id", user.Tenant.Id), ("user_id", user.Id), ("data", data));
        using var insert = scope.Command("");
        insert.CommandText = $"INSERT INTO staff_passkeys ({AuthenticatedTable.StaffPasskeys.ColumnList}, created_at) VALUES ({_rows.Bind(insert, row)}, @t)";
        insert.With("t", now.ToUnixTimeMilliseconds());
        await insert.ExecuteNonQueryAsync(cancellationToken);
        await scope.CommitAsync(cancellationToken);
        user.HasSecondFactor = true;
    }

    public async Task<IList<UserPasskeyInfo>> GetPasskeysAsync(StaffUser user, CancellationToken cancellationToken) =>
        [.. (await _rows.ReadAuthenticAsync(AuthenticatedTable.StaffPasskeys, "WHERE r.user_id = @u ORDER BY r.created_at", cancellationToken, ("u", Required(user).Id)))
            .Select(Info)];

    /// <summary>The account a passkey signs in. A passkey written in the database (the writer's own authenticator on an
    /// administrator's account, or a colleague's moved onto it) signs no one in (ADR 0014).</summary>
    public async Task<StaffUser?> FindByPasskeyIdAsync(byte[] credentialId, CancellationToken cancellationToken)
    {
        var row = await ReadPasskeyAsync("p.credential_id = @c", cancellationToken, ("c", credentialId));
        return row?.Text("user_id") is { } id ? await _accounts.FindByIdAsync(id, cancellationToken) : null;
    }

    /// <summary>The passkey (its public key and counter) an assertion is checked against; null as above.</summary>
    public async Task<UserPasskeyInfo?> FindPasskeyAsync(StaffUser user, byte[] credentialId, CancellationToken cancellationToken)
    {
        var row = await ReadPasskeyAsync("p.credential_id = @c AND p.user_id = @u", cancellationToken, ("c", credentialId), ("u", Required(user).Id));
        return row is null ? null : Info(row);
    }

    /// <summary>The passkey row found by <paramref name="where"/>, when its MAC holds.</summary>
    private async Task<AuthenticatedRow?> ReadPasskeyAsync(string where, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        var table = AuthenticatedTable.StaffPasskeys;
        var row = await _database.ReadOneAsync($"SELECT {table.Select("p")} FROM staff_passkeys p WHERE {where}", r => table.Read(r, 0), cancellationToken, parameters);
        return row is not null && await _rows.CheckAsync(row, cancellationToken) ? row : null;
    }

    private static UserPasskeyInfo Info(AuthenticatedRow row) => JsonSerializer.Deserialize<StoredPasskey>(row.Text("data")!)!.ToInfo();

    public async Task RemovePasskeyAsync(StaffUser user, byte[] credentialId, CancellationToken cancellationToken)
    {
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using var delete = scope.Command("DELETE FROM staff_passkeys WHERE credential_id = @c AND user_id = @u").With("c", credentialId).With("u", Required(user).Id);
        await delete.ExecuteNonQueryAsync(cancellationToken);
        await scope.CommitAsync(cancellationToken);
    }

    private static StaffUser Required(StaffUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user;
    }

    private sealed record StoredPasskey(byte[] CredentialId, byte[] PublicKey, DateTimeOffset CreatedAt, uint SignCount, string[]? Transports,
        bool IsUserVerified, bool IsBackupEligible, bool IsBackedUp, byte[] AttestationObject, byte[] ClientDataJson, string? Name)
    {
        public static StoredPasskey From(UserPasskeyInfo p) => new(p.CredentialId, p.PublicKey, p.CreatedAt, p.SignCount, p.Transports,
            p.IsUserVerified, p.IsBackupEligible, p.IsBackedUp, p.AttestationObject, p.ClientDataJson, p.Name);

        public UserPasskeyInfo ToInfo() => new(CredentialId, PublicKey, CreatedAt, SignCount, Transports, IsUserVerified, IsBackupEligible, IsBackedUp,
            AttestationObject, ClientDataJson) { Name = Name };
    }
}
