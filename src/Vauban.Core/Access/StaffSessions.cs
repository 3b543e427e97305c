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

/// <summary>When a session ends if nothing more is done in it, and whether activity can still move that end (false when it is the
/// absolute end, or a sign-in not finished).</summary>
public sealed record SessionEnd(DateTimeOffset At, bool Renewable);

/// <summary>Why a session token opened no session, as far as its look-up saw.</summary>
public enum SessionEnded
{
    /// <summary>It is live.</summary>
    No,
    /// <summary>Found past its idle time-out (no activity for that long).</summary>
    Idle,
    /// <summary>Found past its absolute end (12 hours after the sign-in by default).</summary>
    Absolute,
    /// <summary>Gone already (signed out, revoked, purged after it ended), refused, or never one.</summary>
    Unknown,
}

public sealed class StaffSessions
{
    private static readonly TimeSpan TouchInterval = TimeSpan.FromSeconds(30);

    /// <summary>How often a session start also deletes the sessions that have ended. Not at every start: anyone may start a passkey
    /// ceremony (a pending row each), and a delete that scans every row at each start would let a flood of them make each start
    /// slower than the last. Ended sessions are refused when read whether or not their rows are gone yet.</summary>
    private static readonly TimeSpan PurgeInterval = TimeSpan.FromSeconds(30);

    private long _nextPurgeAt;
    private readonly StoreDatabase _database;
    private readonly AccessRows _rows;
    private readonly TimeProvider _time;
    private readonly AccountOptions _options;
    private readonly StaffAccounts _accounts;

    internal StaffSessions(StoreDatabase database, AccessRows rows, StaffAccounts accounts, TimeProvider time, AccountOptions options)
    {
        _database = database;
        _rows = rows;
        _accounts = accounts;
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
            var row = AuthenticatedTable.StaffSessions.Row(("id", session.Id), ("token_hash", StaffAccounts.Hash(token)), ("tenant_id", session.TenantId),
                ("user_id", session.UserId), ("stage", (int)stage), ("created_at", now.ToUnixTimeMilliseconds()), ("authenticated_at", session.AuthenticatedAt?.ToUnixTimeMilliseconds()),
                ("ceremony", ceremony), ("security_stamp", user?.StoredStamp));
            using var insert = scope.Command("");
            insert.CommandText = $"INSERT INTO staff_sessions ({AuthenticatedTable.StaffSessions.ColumnList}, last_seen_at, source) SELECT {_rows.Bind(insert, row)}, @c, @src"
                + (user is null ? "" : " WHERE EXISTS (SELECT 1 FROM staff_users WHERE id = @u AND security_stamp = @stamp)");
            insert.With("c", now.ToUnixTimeMilliseconds()).With("src", source).With("u", session.UserId).With("stamp", user?.StoredStamp ?? "");
            if (await insert.ExecuteNonQueryAsync(cancellationToken) == 0) return null; // rolled back with the scope: the previous session stays as it was
            await scope.CommitAsync(cancellationToken);
            return (token, session);
        }, cancellationToken);
    }

    /// <summary>The live session of a cookie token, or null when unknown, revoked, idle too long or past its absolute end.</summary>
    public async Task<StaffSession?> FindAsync(string? token, CancellationToken cancellationToken) =>
        (await LookUpAsync(token, withAccount: false, cancellationToken)).Session;

    /// <summary>As <see cref="FindAsync"/>, and when there is no live session, whether this look-up found it ended by the idle or the
    /// absolute time-out (for the sign-in page to say so); <see cref="SessionEnded.Unknown"/> when the row was gone already or refused
    /// for another reason.</summary>
    public async Task<(StaffSession? Session, SessionEnded Ended)> LookUpAsync(string? token, CancellationToken cancellationToken)
    {
        var (session, _, ended) = await LookUpAsync(token, withAccount: false, cancellationToken);
        return (session, ended);
    }

    /// <summary>The live session of a cookie token (null, and how it ended, as <see cref="LookUpAsync(string?, CancellationToken)"/>)
    /// and its person's account, read in the same statement — every request's look-up (ADR 0007): the account's row is read once, not
    /// once for the session's stamp and again for the account. The account is null when the session names none, or one that does not
    /// verify or whose establishment is gone; its second factor is not asked (<see cref="StaffAccounts.HasSecondFactorAsync"/>).</summary>
    public async Task<(StaffSession? Session, StaffUser? User, SessionEnded Ended)> FindWithAccountAsync(string? token, CancellationToken cancellationToken)
    {
        var (session, account, ended) = await LookUpAsync(token, withAccount: true, cancellationToken);
        if (session is null) return (null, null, ended);
        return (session, account is { } stored ? await _accounts.AccountOfAsync(stored, cancellationToken) : null, SessionEnded.No);
    }

    private async Task<(StaffSession? Session, StaffAccounts.StoredAccount? Account, SessionEnded Ended)> LookUpAsync(string? token, bool withAccount,
        CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100) return (null, null, SessionEnded.Unknown);
        var hash = StaffAccounts.Hash(token);
        var table = AuthenticatedTable.StaffSessions;
        var next = table.Columns.Count + 1; // past the session's authenticated columns and its MAC
        var read = await _database.ReadOneAsync(
            $"SELECT {table.Select("s")}, s.last_seen_at, u.security_stamp{(withAccount ? ", " + StaffAccounts.AccountColumns("u") : "")} "
            + "FROM staff_sessions s LEFT JOIN staff_users u ON u.id = s.user_id WHERE s.token_hash = @h",
            r => new StoredSession(table.Read(r, 0), r.GetInt64(next), r.GetValue(next + 1) as string, withAccount ? StaffAccounts.StoredAccount.Read(r, next + 2) : null),
            cancellationToken, ("h", hash));
        // A session inserted, or one's account, establishment or stage changed, in the database is no session (ADR 0014).
        if (read is null || !await _rows.CheckAsync(read.Row, cancellationToken)) return (null, null, SessionEnded.Unknown);
        // Nor is one opened before the account's stamp last changed (a reset, a lock, a revocation), its row with its MAC put back
        // after them: a person's session holds the stamp it opened with; one with no person, none (null on both sides).
        if (!string.Equals(read.Row.Text("security_stamp"), read.AccountStamp, StringComparison.Ordinal)) return (null, null, SessionEnded.Unknown);
        var session = Session(read.Row, read.LastSeenAt);
        var now = _time.GetUtcNow();
        var expired = session.Stage == SessionStage.Full
            ? now - session.LastSeenAt > _options.IdleTimeout || now - session.CreatedAt > _options.AbsoluteTimeout
            : now - session.CreatedAt > _options.PendingTimeout;
        if (expired)
        {
            await ExecuteAsync("DELETE FROM staff_sessions WHERE id = @id", cancellationToken, ("id", session.Id));
            return (null, null, session.Stage != SessionStage.Full ? SessionEnded.Unknown
                : now - session.CreatedAt > _options.AbsoluteTimeout ? SessionEnded.Absolute : SessionEnded.Idle);
        }
        if (now - session.LastSeenAt > TouchInterval)
        {
            // Sliding idle timeout, written at most twice a minute per session.
            await ExecuteAsync("UPDATE staff_sessions SET last_seen_at = @n WHERE id = @id", cancellationToken, ("n", now.ToUnixTimeMilliseconds()), ("id", session.Id));
            return (session with { LastSeenAt = now }, read.Account, SessionEnded.No);
        }
        return (session, read.Account, SessionEnded.No);
    }

    /// <summary>When a live session ends if nothing more is done in it: its idle end, or its absolute end when that comes first
    /// (<see cref="SessionEnd.Renewable"/> false: activity no longer moves it).</summary>
    public SessionEnd EndOf(StaffSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (session.Stage != SessionStage.Full) return new SessionEnd(session.CreatedAt + _options.PendingTimeout, false);
        var idle = session.LastSeenAt + _options.IdleTimeout;
        var absolute = session.CreatedAt + _options.AbsoluteTimeout;
        return idle < absolute ? new SessionEnd(idle, true) : new SessionEnd(absolute, false);
    }

    /// <summary>Counts as activity in a live, fully signed-in session (the person pressed "Stay signed in" while typing): its idle end
    /// moves to now plus the idle time-out, never past its absolute end. A session that has ended (idle, absolute, signed out, not
    /// fully signed in) is not revived: null, and nothing is written.</summary>
    public async Task<SessionEnd?> KeepAsync(StaffSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (session.Stage != SessionStage.Full) return null;
        var now = _time.GetUtcNow();
        var kept = await _database.WriteAsync(async scope =>
        {
            // The row's own times decide, under the write: a session that ended since the request was admitted stays ended.
            using var update = scope.Command("UPDATE staff_sessions SET last_seen_at = @n WHERE id = @id AND stage = 3 AND last_seen_at >= @idle AND created_at >= @absolute")
                .With("n", now.ToUnixTimeMilliseconds()).With("id", session.Id)
                .With("idle", (now - _options.IdleTimeout).ToUnixTimeMilliseconds()).With("absolute", (now - _options.AbsoluteTimeout).ToUnixTimeMilliseconds());
            var changed = await update.ExecuteNonQueryAsync(cancellationToken);
            await scope.CommitAsync(cancellationToken);
            return changed == 1;
        }, cancellationToken);
        return kept ? EndOf(session with { LastSeenAt = now }) : null;
    }

    /// <summary>A session's row as read: what its MAC covers, when it was last seen (which it does not cover), its account's
    /// current security stamp (null when it names none, or none that exists), and, when asked, its account's row.</summary>
    private sealed record StoredSession(AuthenticatedRow Row, long LastSeenAt, string? AccountStamp, StaffAccounts.StoredAccount? Account);

    private static StaffSession Session(AuthenticatedRow row, long lastSeenAt) =>
        new(row.Text("id")!, row.TenantId, row.Text("user_id"), (SessionStage)(row.Number("stage") ?? 0), DateTimeOffset.FromUnixTimeMilliseconds(row.Number("created_at") ?? 0),
            DateTimeOffset.FromUnixTimeMilliseconds(lastSeenAt), row.Number("authenticated_at") is { } at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : null, row.Text("ceremony"));

    /// <summary>Keeps a WebAuthn ceremony's state (challenge) on the server side of the session.</summary>
    public Task SetCeremonyAsync(StaffSession session, string? ceremony, CancellationToken cancellationToken) =>
        ChangeAsync(Required(session).Id, row => row.With("ceremony", ceremony), cancellationToken);

    /// <summary>Records a fresh proof of both factors (step-up for sensitive acts) and gives the session a new token, returned
    /// for the cookie: a copy of the old token, taken before, does not become fresh with it (OWASP ASVS V7.2.4). The session
    /// keeps its id, so what the guard holds against it (a suspension) stays.</summary>
    public async Task<string> MarkAuthenticatedAsync(StaffSession session, CancellationToken cancellationToken)
    {
        var token = NewToken();
        var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
        await ChangeAsync(Required(session).Id, row => row.With("authenticated_at", at).With("token_hash", StaffAccounts.Hash(token)), cancellationToken);
        return token;
    }

    /// <summary>Changes the session's row with its MAC, in one transaction; a row not as Vauban wrote it is left as it is (it is no
    /// session), and one gone meanwhile (signed out, ended) stays gone. A lost connection before the commit: the whole of it once
    /// more on a new one, the row read again there (a ceremony or a step-up on a connection the server had closed answered 503).</summary>
    private Task ChangeAsync(string id, Func<AuthenticatedRow, AuthenticatedRow> change, CancellationToken cancellationToken) =>
        _database.WriteAsync(async scope =>
        {
            var current = await AccessRows.ReadAsync(scope, AuthenticatedTable.StaffSessions, id, cancellationToken);
            if (current is null) return;
            if (await _rows.CheckAsync(scope, current, cancellationToken)) await _rows.RewriteAsync(scope, current, change(current), cancellationToken);
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);

    /// <summary>The account's sessions opened under the stamp <paramref name="from"/> take <paramref name="to"/>, with their MACs, in
    /// <paramref name="scope"/>: the person's own change of credentials (an authenticator key made or confirmed, a password set, a
    /// passkey added: Identity renews the stamp) goes on in the session that made it. Only the rows there now: a copy taken before
    /// and put back later keeps <paramref name="from"/>, which the officer's acts (reset, lock, revocation) never carry on.</summary>
    internal static async Task FollowStampAsync(AccessRows rows, WriteScope scope, string userId, string from, string to, CancellationToken cancellationToken)
    {
        var sessions = await AccessRows.ReadAllAsync(scope, AuthenticatedTable.StaffSessions, "WHERE r.user_id = @u AND r.security_stamp = @s", cancellationToken,
            ("u", userId), ("s", from));
        // One that does not verify is left as it is (refused, and reported, when read).
        foreach (var session in sessions.Where(rows.Authentic)) await rows.RewriteAsync(scope, session, session.With("security_stamp", to), cancellationToken);
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
