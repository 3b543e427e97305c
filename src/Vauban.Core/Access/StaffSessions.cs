// Server-side sessions of people. The browser holds only a random token; the database holds its
// SHA-256 hash, the stage the sign-in has reached, and the times that bound it. Every request reads
// the row (no cache), so a sign-out, a lock or `users revoke-sessions` takes effect on the next request.
// Every change of stage issues a new token and deletes the old row (no session fixation).
using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;
using Vauban.Storage;

namespace Vauban.Access;

/// <summary>How far a sign-in has gone. Only <see cref="Full"/> opens anything beyond the account pages.</summary>
public enum SessionStage
{
    /// <summary>No one yet: a passkey sign-in ceremony in progress.</summary>
    Challenge = 0,
    /// <summary>Password accepted; the second factor is still due.</summary>
    SecondFactor = 1,
    /// <summary>Enrolment link used and password set; a second factor must be enrolled before anything else.</summary>
    Enrolment = 2,
    /// <summary>Both factors proven.</summary>
    Full = 3,
}

public sealed record StaffSession(string Id, long? TenantId, string? UserId, SessionStage Stage, DateTimeOffset CreatedAt, DateTimeOffset LastSeenAt,
    DateTimeOffset? AuthenticatedAt, string? Ceremony);

public sealed class StaffSessions
{
    private static readonly TimeSpan TouchInterval = TimeSpan.FromSeconds(30);

    /// <summary>How often a session start also deletes the sessions that have ended. Not at every start: anyone may start a passkey
    /// ceremony (a pending row each), and a delete that scans every row at each start would let a flood of them make each start
    /// slower than the last. Ended sessions are refused when read whether or not their rows are gone yet.</summary>
    private static readonly TimeSpan PurgeInterval = TimeSpan.FromSeconds(30);

    private long _nextPurgeAt;
    private readonly StoreDatabase _database;
    private readonly TimeProvider _time;
    private readonly AccountOptions _options;

    internal StaffSessions(StoreDatabase database, TimeProvider time, AccountOptions options)
    {
        _database = database;
        _time = time;
        _options = options;
    }

    /// <summary>Starts a session at <paramref name="stage"/>, ending <paramref name="previousToken"/>'s session if any. Returns the new cookie token,
    /// or null when <paramref name="user"/>'s credentials changed since it was read (an officer's reset during the sign-in): no session opens.</summary>
    public Task<(string Token, StaffSession Session)?> StartAsync(string? previousToken, StaffUser? user, SessionStage stage, string? source,
        string? ceremony, CancellationToken cancellationToken) =>
        StartAsync(NewSessionId(), previousToken, user, stage, source, ceremony, cancellationToken);

    /// <summary>A fresh session id, for a caller that must name the session (its sign-in audit entry) before it starts.</summary>
    public static string NewSessionId() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(12));

    /// <summary>A session token (the cookie's value; stored only hashed).</summary>
    private static string NewToken() => "vsn_" + Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));

    /// <summary>Starts a session with the id <paramref name="sessionId"/> (from <see cref="NewSessionId"/>); null as above.</summary>
    public async Task<(string Token, StaffSession Session)?> StartAsync(string sessionId, string? previousToken, StaffUser? user, SessionStage stage, string? source,
        string? ceremony, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        var token = NewToken();
        var now = _time.GetUtcNow();
        var session = new StaffSession(sessionId, user?.Tenant.Id, user?.Id, stage, now, now,
            stage == SessionStage.Full ? now : null, ceremony);
        // A lost connection before the commit: the whole of it once more on a new one (the token and the session as made above).
        return await _database.WriteAsync<(string Token, StaffSession Session)?>(async scope =>
        {
            if (previousToken is not null)
            {
                using var delete = scope.Command("DELETE FROM staff_sessions WHERE token_hash = @h").With("h", StaffAccounts.Hash(previousToken));
                await delete.ExecuteNonQueryAsync(cancellationToken);
            }
            var nextPurgeAt = Interlocked.Read(ref _nextPurgeAt);
            if (now.ToUnixTimeMilliseconds() >= nextPurgeAt
                && Interlocked.CompareExchange(ref _nextPurgeAt, (now + PurgeInterval).ToUnixTimeMilliseconds(), nextPurgeAt) == nextPurgeAt)
            {
                using var purge = scope.Command("DELETE FROM staff_sessions WHERE (stage = 3 AND (last_seen_at < @idle OR created_at < @absolute)) OR (stage <> 3 AND created_at < @pending)")
                    .With("idle", (now - _options.IdleTimeout).ToUnixTimeMilliseconds()).With("absolute", (now - _options.AbsoluteTimeout).ToUnixTimeMilliseconds())
                    .With("pending", (now - _options.PendingTimeout).ToUnixTimeMilliseconds());
                await purge.ExecuteNonQueryAsync(cancellationToken);
            }
            // A person's session opens only while the account holds the credentials the sign-in checked: a reset meanwhile (which
            // ended the account's sessions) is not outlived by a session opened just after it from a copy read before it.
            using var insert = scope.Command("""
                INSERT INTO staff_sessions (id, token_hash, tenant_id, user_id, stage, created_at, last_seen_at, authenticated_at, ceremony, source)
                SELECT @id, @h, @t, @u, @s, @c, @c, @a, @cer, @src
                """ + (user is null ? "" : " WHERE EXISTS (SELECT 1 FROM staff_users WHERE id = @u AND security_stamp = @stamp)")).With("id", session.Id).With("h", StaffAccounts.Hash(token)).With("t", session.TenantId).With("u", session.UserId).With("s", (int)stage)
                .With("c", now.ToUnixTimeMilliseconds()).With("a", session.AuthenticatedAt?.ToUnixTimeMilliseconds()).With("cer", ceremony).With("src", source)
                .With("stamp", user?.StoredStamp ?? "");
            if (await insert.ExecuteNonQueryAsync(cancellationToken) == 0) return null; // rolled back with the scope: the previous session stays as it was
            await scope.CommitAsync(cancellationToken);
            return (token, session);
        }, cancellationToken);
    }

    /// <summary>The live session of a cookie token, or null when unknown, revoked, idle too long or past its absolute end.</summary>
    public async Task<StaffSession?> FindAsync(string? token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100) return null;
        var hash = StaffAccounts.Hash(token);
        var session = await _database.ReadOneAsync(
            "SELECT id, tenant_id, user_id, stage, created_at, last_seen_at, authenticated_at, ceremony FROM staff_sessions WHERE token_hash = @h",
            r => new StaffSession(r.GetString(0), r.IsDBNull(1) ? null : r.GetInt64(1), r.IsDBNull(2) ? null : r.GetString(2), (SessionStage)r.GetInt32(3),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4)), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)),
                r.IsDBNull(6) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)), r.IsDBNull(7) ? null : r.GetString(7)),
            cancellationToken, ("h", hash));
        if (session is null) return null;
        var now = _time.GetUtcNow();
        var expired = session.Stage == SessionStage.Full
            ? now - session.LastSeenAt > _options.IdleTimeout || now - session.CreatedAt > _options.AbsoluteTimeout
            : now - session.CreatedAt > _options.PendingTimeout;
        if (expired)
        {
            await ExecuteAsync("DELETE FROM staff_sessions WHERE id = @id", cancellationToken, ("id", session.Id));
            return null;
        }
        if (now - session.LastSeenAt > TouchInterval)
        {
            // Sliding idle timeout, written at most twice a minute per session.
            await ExecuteAsync("UPDATE staff_sessions SET last_seen_at = @n WHERE id = @id", cancellationToken, ("n", now.ToUnixTimeMilliseconds()), ("id", session.Id));
        }
        return session;
    }

    /// <summary>Keeps a WebAuthn ceremony's state (challenge) on the server side of the session.</summary>
    public Task SetCeremonyAsync(StaffSession session, string? ceremony, CancellationToken cancellationToken) =>
        ExecuteAsync("UPDATE staff_sessions SET ceremony = @c WHERE id = @id", cancellationToken, ("c", (object?)ceremony ?? DBNull.Value), ("id", Required(session).Id));

    /// <summary>Records a fresh proof of both factors (step-up for sensitive acts) and gives the session a new token, returned
    /// for the cookie: a copy of the old token, taken before, does not become fresh with it (OWASP ASVS V7.2.4). The session
    /// keeps its id, so what the guard holds against it (a suspension) stays.</summary>
    public async Task<string> MarkAuthenticatedAsync(StaffSession session, CancellationToken cancellationToken)
    {
        var token = NewToken();
        await ExecuteAsync("UPDATE staff_sessions SET authenticated_at = @a, token_hash = @h WHERE id = @id", cancellationToken,
            ("a", _time.GetUtcNow().ToUnixTimeMilliseconds()), ("h", StaffAccounts.Hash(token)), ("id", Required(session).Id));
        return token;
    }

    /// <summary>Ends every session of the account but <paramref name="keep"/>: after a factor is replaced, the sessions the old
    /// one opened (a thief's with them, if that is why it was replaced) go (OWASP ASVS V7.4.3).</summary>
    public Task EndOthersAsync(string userId, string keep, CancellationToken cancellationToken) =>
        ExecuteAsync("DELETE FROM staff_sessions WHERE user_id = @u AND id <> @k", cancellationToken, ("u", userId), ("k", keep));

    public Task EndAsync(string token, CancellationToken cancellationToken) =>
        ExecuteAsync("DELETE FROM staff_sessions WHERE token_hash = @h", cancellationToken, ("h", StaffAccounts.Hash(token)));

    private static StaffSession Required(StaffSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        return session;
    }

    /// <summary>One statement in a write transaction of its own: run again whole on a new connection when its connection was found
    /// lost before the commit (each statement here gives the same rows when run twice).</summary>
    private Task ExecuteAsync(string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters) =>
        _database.WriteAsync(async scope =>
        {
            using var command = scope.Command(sql);
            foreach (var (name, value) in parameters) command.With(name, value);
            await command.ExecuteNonQueryAsync(cancellationToken);
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);
}
