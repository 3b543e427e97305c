// Registered API clients and their OAuth 2.0 client-credentials tokens (SMART Backend Services).
// Client secrets and access tokens are high-entropy random values, so they are stored as SHA-256
// hashes: a copied database yields no usable credential. Tokens are short-lived, opaque, bound to one
// tenant and revocable at once (deleting the row and the cache entry).
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Vauban.Audit;
using Vauban.Records;
using Vauban.Storage;

namespace Vauban.Access;

public sealed record ClientRegistration(string ClientId, string? ClientSecret, Tenant Tenant, string Name, SmartScopes Scopes)
{
    public ClientLimits Limits { get; init; } = ClientLimits.None;

    /// <summary>What the client's acts are for (a v3-ActReason code of <see cref="KnownPurposes.ForClients"/>), recorded on each of their audit entries.</summary>
    public string Purpose { get; init; } = KnownPurposes.Treatment;
}

/// <summary>Narrower than scopes: only these patients' compartments, and/or only resources the client created.</summary>
public sealed record ClientLimits(IReadOnlyList<string>? Patients, bool OwnResourcesOnly)
{
    public static ClientLimits None { get; } = new(null, false);

    /// <summary>Why these limits cannot be registered, or null.</summary>
    public string? Problem => Patients is { } patients && (patients.Count == 0 || patients.Count > 10_000 || patients.Any(p => !IdRules.IsValid(p)))
        ? "A patient limit is a list of 1 to 10,000 Patient ids (each 1 to 64 letters, digits, '-' or '.')." : null;
}

/// <summary>A registered client as the operator sees it (never its secret or key).</summary>
public sealed record ClientSummary(string ClientId, string Name, string Scopes, DateTimeOffset CreatedAt, bool Revoked, bool PrivateKeyJwt,
    int? PatientLimit, bool OwnResourcesOnly, string Purpose);

public sealed record IssuedToken(string AccessToken, int ExpiresIn, string Scope);

/// <summary>An OAuth error as RFC 6749 §5.2 names it; <see cref="Status"/> is 400, or 401 for invalid_client.</summary>
public sealed record TokenError(string Error, string Description, int Status)
{
    /// <summary>The request named no registered client: no tenant, so no audit chain took the failure (the host logs it).</summary>
    public bool UnknownClient { get; init; }

    /// <summary>When the source may try again (429: too many failed client authentications from it).</summary>
    public TimeSpan? RetryAfter { get; init; }
}

public sealed record TokenRequest(string? GrantType, string? Scope, string? ClientId, string? ClientSecret, string? ClientAssertionType, string? ClientAssertion);

public sealed class ApiClients
{
    public const string JwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

    /// <summary>The signature algorithms a private_key_jwt assertion may use (SMART Backend Services: RS384 and ES384, and these).</summary>
    public static IReadOnlyList<string> AssertionAlgorithms { get; } = ["RS384", "ES384", "RS256", "ES256", "PS384"];

    private readonly StoreDatabase _database;
    private readonly Tenants _tenants;
    private readonly AuditTrail _audit;
    private readonly SignInThrottle _throttle;
    private readonly AccessRows _rows;
    private readonly TimeSpan _tokenLifetime;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (AccessContext Context, long ExpiresAt)> _tokenCache = new(StringComparer.Ordinal);

    /// <summary>How long a token stays in a process's cache before the database is asked again: a client revoked by another
    /// process (the command line) loses its tokens here within this time.</summary>
    internal static readonly TimeSpan TokenRecheck = TimeSpan.FromSeconds(30);

    /// <summary>How far a client's clock may be from ours when its assertion's exp, nbf and iat are checked.</summary>
    private const int AssertionClockSkewSeconds = 60;

    internal ApiClients(StoreDatabase database, Tenants tenants, AuditTrail audit, SignInThrottle throttle, AccessRows rows, TimeSpan tokenLifetime, TimeProvider time)
    {
        _database = database;
        _tenants = tenants;
        _audit = audit;
        _throttle = throttle;
        _rows = rows;
        _tokenLifetime = tokenLifetime;
        _time = time;
    }

    public Task<ClientRegistration> AddAsync(Tenant tenant, string name, string scopes, string? jwks, CancellationToken cancellationToken) =>
        AddAsync(tenant, name, scopes, jwks, ClientLimits.None, cancellationToken);

    public Task<ClientRegistration> AddAsync(Tenant tenant, string name, string scopes, string? jwks, ClientLimits limits, CancellationToken cancellationToken) =>
        AddAsync(tenant, null, name, scopes, jwks, limits, KnownPurposes.Treatment, cancellationToken);

    /// <summary>Registers the client as an administrative act of <paramref name="administrator"/>: its audit entry is written in
    /// the transaction that registers the client, so an audit log that cannot be written leaves no client (fail closed).</summary>
    public Task<ClientRegistration> AddAsync(AccessContext administrator, string name, string scopes, string? jwks, ClientLimits limits, CancellationToken cancellationToken) =>
        AddAsync(administrator, name, scopes, jwks, limits, KnownPurposes.Treatment, cancellationToken);

    /// <summary>As above, for a client whose acts are for <paramref name="purpose"/> (one of <see cref="KnownPurposes.ForClients"/>):
    /// every audit entry of its acts records it, where the purpose was TREAT for every client.</summary>
    public Task<ClientRegistration> AddAsync(AccessContext administrator, string name, string scopes, string? jwks, ClientLimits limits, string purpose,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(administrator);
        return AddAsync(administrator.Tenant, administrator, name, scopes, jwks, limits, purpose, cancellationToken);
    }

    /// <summary>Why <paramref name="purpose"/> cannot be a client's purpose of use, naming those it can be; null when it can.</summary>
    public static string? PurposeProblem(string? purpose) => purpose is not null && KnownPurposes.ForClients.Contains(purpose, StringComparer.Ordinal) ? null
        : $"'{purpose}' is not a purpose of use a client can be registered for; use one of the v3-ActReason codes "
          + string.Join(", ", KnownPurposes.ForClients.Select(p => $"{p} ({KnownPurposes.Display(p)})")) + ".";

    /// <summary>Why <paramref name="name"/> cannot be a client's name, or null: checked by the command line before a store is
    /// opened, and by the registration itself.</summary>
    public static string? NameProblem(string? name) =>
        string.IsNullOrWhiteSpace(name) || name.Length > 200 ? "A client name is 1 to 200 characters."
        : StatedText.HasHiddenCharacters(name) ? "A client name may not hold control or invisible characters (escape sequences, line breaks, zero-width, direction overrides): type it plainly."
        : null;

    /// <summary>Why <paramref name="scopes"/> cannot be granted to a client (not SMART system scopes of this server's types, or
    /// none), or null.</summary>
    public static string? ScopesProblem(string? scopes) => ParseScopes(scopes, out _);

    private static string? ParseScopes(string? scopes, out SmartScopes parsed) =>
        !SmartScopes.TryParseForClient(scopes, TypeCodes.Names, out parsed, out var error) ? error ?? "Not SMART scopes (expected e.g. system/Patient.rs)."
        : parsed.Granted.Count == 0 ? "A client needs at least one scope, e.g. \"system/Patient.rs\"."
        : null;

    /// <summary>Why <paramref name="jwks"/> cannot be a client's JSON Web Key Set, in the operator's words; null when it can.</summary>
    public static string? JwksProblem(string jwks)
    {
        try
        {
            var set = new JsonWebKeySet(jwks);
            // A private key (EC or RSA "d", a symmetric "k") has no business in the store: it signs, the store only verifies.
            if (set.Keys.Any(k => !string.IsNullOrEmpty(k.D) || !string.IsNullOrEmpty(k.K)))
                return "The JWK set holds a private or secret key (a \"d\" or \"k\" member): register the public key only, and treat that key as exposed.";
            if (set.GetSigningKeys().Count == 0) return "The JWK set has no usable signing key.";
            // SMART Backend Services: each key has a kid, unique within the client's JWK set; an assertion names its key by it
            // and is verified with that key only.
            if (set.Keys.Any(k => string.IsNullOrEmpty(k.Kid)) || set.Keys.Select(k => k.Kid).Distinct(StringComparer.Ordinal).Count() != set.Keys.Count)
                return "Each key of the JWK set needs its own \"kid\": an assertion's header names the key it is signed with.";
            return null;
        }
        catch (ArgumentException)
        {
            // The library's message is its own diagnostics (IDX… codes, "[PII is hidden]"): said plainly instead.
            return "The JWK set is not a JSON Web Key Set (RFC 7517: a JSON object {\"keys\": [ … ]} of public keys).";
        }
    }

    private async Task<ClientRegistration> AddAsync(Tenant tenant, AccessContext? administrator, string name, string scopes, string? jwks, ClientLimits limits,
        string purpose, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(limits);
        if (limits.Problem is { } problem) throw new ArgumentException(problem, nameof(limits));
        if (PurposeProblem(purpose) is { } wrongPurpose) throw new ArgumentException(wrongPurpose, nameof(purpose));
        if (NameProblem(name) is { } wrongName) throw new ArgumentException(wrongName, nameof(name));
        if (ParseScopes(scopes, out var parsed) is { } wrongScopes) throw new ArgumentException(wrongScopes, nameof(scopes));
        if (jwks is not null && JwksProblem(jwks) is { } wrongKeys) throw new ArgumentException(wrongKeys, nameof(jwks));

        var clientId = "vc_" + Base64Url(RandomNumberGenerator.GetBytes(12));
        var secret = jwks is null ? "vs_" + Base64Url(RandomNumberGenerator.GetBytes(32)) : null;
        var row = AuthenticatedTable.Clients.Row(("client_id", clientId), ("tenant_id", tenant.Id), ("name", name), ("secret_hash", secret is null ? null : Hash(secret)),
            ("jwks", jwks), ("scopes", parsed.ToString()), ("disabled", 0),
            ("patient_limit", limits.Patients is { } list ? string.Join(' ', list.Distinct(StringComparer.Ordinal)) : null), ("own_only", limits.OwnResourcesOnly ? 1 : 0),
            ("purpose", purpose));
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        using var command = scope.Command("");
        command.CommandText = $"INSERT INTO clients ({AuthenticatedTable.Clients.ColumnList}, created_at) VALUES ({_rows.Bind(command, row)}, @c)";
        command.With("c", _time.GetUtcNow().ToUnixTimeMilliseconds());
        await command.ExecuteNonQueryAsync(cancellationToken);
        if (administrator is not null)
        {
            await _audit.AppendAsync(scope, administrator, AuditAction.Administration, AuditOutcome.Success, null,
                [new AuditedRecord("client:" + clientId, null, null)], cancellationToken, "clients add (" + parsed + "; purpose " + purpose + ")");
        }
        await scope.CommitAsync(cancellationToken);
        return new ClientRegistration(clientId, secret, tenant, name, parsed) { Limits = limits, Purpose = purpose };
    }

    /// <summary>The token endpoint's logic: authenticate the client (secret or private_key_jwt), grant the requested scopes it is registered for.
    /// Every attempt that names a registered client is a sign-in or a sign-in failure on its tenant's audit chain, with the
    /// source address (issue 4); a token is issued only once its entry is written (fail closed: AuditUnavailableException).</summary>
    public async Task<(IssuedToken? Token, TokenError? Error)> IssueAsync(TokenRequest request, string tokenEndpoint, string? sourceAddress, string? correlationId,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.GrantType != "client_credentials")
        {
            return (null, new TokenError(request.GrantType is null ? "invalid_request" : "unsupported_grant_type",
                "Only grant_type=client_credentials is supported.", 400));
        }
        // Failed client authentications are throttled per source address, with failed person sign-ins (one budget a source):
        // past the threshold each attempt waits, doubling. Not per client: a secret is 256 random bits and an assertion is
        // signed, so there is nothing to guess slowly, and a per-client counter would let anyone lock a client out.
        // The attempt is counted as a failure when it is admitted, before its secret or assertion is checked: checked first and
        // counted after, a burst of guesses sent together had all been checked before any had failed. One that does not fail to
        // authenticate takes its count back.
        var admission = await _throttle.AdmitAsync(null, ThrottleSource(sourceAddress), establishment: null, cancellationToken);
        if (admission.Wait is { } wait)
        {
            // A throttled attempt is a failed sign-in too, as for people: brute force shows on the chain of the client it names
            // while it is held back. The name is not verified (nothing is checked while held back); the source is recorded with it.
            await AuditThrottledAsync(request, sourceAddress, correlationId, cancellationToken);
            return (null, new TokenError("temporarily_unavailable",
                // Said as it is counted: an attempt counts as failed until it is checked, so many correct ones sent together from one
                // address are held back too (a probe's 64 at once: about half 429), and "too many failed" misled their sender.
                $"Too many client authentications from this address that failed or were still being checked (each counts as failed until it is). "
                + $"Wait {SignInThrottle.WaitText(wait)} and try again; a client sending many requests at once should share one token until it expires.", 429) { RetryAfter = wait });
        }
        var (token, error, authenticationFailed) = await IssueAdmittedAsync(request, tokenEndpoint, sourceAddress, correlationId, cancellationToken);
        if (!authenticationFailed) await _throttle.TakeBackAsync(admission, cancellationToken);
        return (token, error);
    }

    /// <summary>Records a throttled token request on the chain of the registered client it names, by client_id or by its
    /// assertion's issuer; one naming no registered client has no chain to go on.</summary>
    private async Task AuditThrottledAsync(TokenRequest request, string? sourceAddress, string? correlationId, CancellationToken cancellationToken)
    {
        var named = request.ClientId ?? AssertionHeader(request.ClientAssertion)?.Issuer;
        if (string.IsNullOrEmpty(named) || await FindClientAsync(named, cancellationToken) is not { } client
            || await _tenants.FindAsync(client.TenantId, cancellationToken) is not { } tenant) return;
        var method = request.ClientAssertion is not null || request.ClientAssertionType is not null ? "private_key_jwt" : "client secret";
        var context = new AccessContext(new Principal(PrincipalKind.ApiClient, client.ClientId, client.Name, SmartScopes.None), tenant, "sign-in", sourceAddress, correlationId);
        await _audit.AppendAsync(context, AuditAction.SignInFailure, AuditOutcome.MinorFailure, null, [], cancellationToken, method + " throttled");
    }

    /// <summary>What the throttle counts a source as: an IPv6 address's /64 (whoever has one address has 2^64 of them), an IPv4
    /// address also when it reaches a dual-stack listener as ::ffff:a.b.c.d — as for people's sign-ins (<see cref="SignInThrottle.SourceOf"/>),
    /// and in the establishment's own networks not delayed for the failures of everyone behind it.</summary>
    private SignInSource? ThrottleSource(string? sourceAddress) =>
        System.Net.IPAddress.TryParse(sourceAddress, out var address) ? _throttle.SourceOf(address) : sourceAddress is null ? null : new SignInSource(sourceAddress, Internal: false);

    private async Task<(IssuedToken? Token, TokenError? Error, bool AuthenticationFailed)> IssueAdmittedAsync(TokenRequest request, string tokenEndpoint,
        string? sourceAddress, string? correlationId, CancellationToken cancellationToken)
    {
        Client? client;
        string? refused;
        string method;
        if (request.ClientAssertion is not null || request.ClientAssertionType is not null)
        {
            // RFC 6749 section 2.3: one client authentication method a request; not an assertion with a secret besides.
            if (request.ClientSecret is not null)
            {
                return (null, new TokenError("invalid_request",
                    "Use one client authentication method: client_assertion (private_key_jwt), or a client secret, not both.", 400), false);
            }
            if (request.ClientAssertionType != JwtBearerAssertionType)
                return (null, new TokenError("invalid_request", $"client_assertion_type must be {JwtBearerAssertionType}.", 400), false);
            method = "private_key_jwt";
            (client, refused) = await AuthenticateAssertionAsync(request.ClientAssertion, request.ClientId, tokenEndpoint, cancellationToken);
        }
        else if (request.ClientId is not null && request.ClientSecret is not null)
        {
            method = "client secret";
            client = await FindClientAsync(request.ClientId, cancellationToken);
            refused = client is null ? null
                : client.SecretHash is null ? "client secret refused (the client authenticates with private_key_jwt)"
                : !CryptographicOperations.FixedTimeEquals(client.SecretHash, Hash(request.ClientSecret)) ? "client secret refused"
                : null;
        }
        else
        {
            return (null, new TokenError("invalid_client", "Client authentication is required (client_secret_basic, client_secret_post or private_key_jwt).", 401), false);
        }
        var failed = new TokenError("invalid_client", "Client authentication failed.", 401);
        var tenant = client is null ? null : await _tenants.FindAsync(client.TenantId, cancellationToken);
        if (client is null || tenant is null) return (null, failed with { UnknownClient = true }, true);
        var context = new AccessContext(new Principal(PrincipalKind.ApiClient, client.ClientId, client.Name, SmartScopes.None), tenant, "sign-in", sourceAddress, correlationId);
        refused ??= client.Disabled ? "client disabled" : null;
        if (refused is not null)
        {
            await _audit.AppendAsync(context, AuditAction.SignInFailure, AuditOutcome.MinorFailure, null, [], cancellationToken, refused);
            return (null, failed, true);
        }

        SmartScopes.TryParse(client.Scopes, TypeCodes.Names, out var registered, out _);
        var granted = registered;
        if (!string.IsNullOrWhiteSpace(request.Scope))
        {
            TokenError? scopeRefusal = null;
            if (!SmartScopes.TryParseForClient(request.Scope, TypeCodes.Names, out var requested, out var scopeError))
            {
                scopeRefusal = new TokenError("invalid_scope", scopeError!, 400);
            }
            else
            {
                granted = SmartScopes.Intersect(requested, registered, TypeCodes.Names);
                if (granted.Granted.Count == 0) scopeRefusal = new TokenError("invalid_scope", "None of the requested scopes is granted to this client.", 400);
            }
            if (scopeRefusal is not null)
            {
                await _audit.AppendAsync(context, AuditAction.SignInFailure, AuditOutcome.MinorFailure, null, [], cancellationToken, "requested scopes not granted");
                return (null, scopeRefusal, false);
            }
        }

        var token = "vt_" + Base64Url(RandomNumberGenerator.GetBytes(32));
        var tokenHash = Hash(token);
        context = context with { Principal = context.Principal with { SessionId = TokenId(tokenHash) } };
        var expiresAt = _time.GetUtcNow().Add(_tokenLifetime).ToUnixTimeMilliseconds();
        // A lost connection before the commit: the whole of it once more on a new one (the same token, and its one entry).
        await _database.WriteAsync(async scope =>
        {
            using (var purge = scope.Command("DELETE FROM access_tokens WHERE expires_at < @now").With("now", _time.GetUtcNow().ToUnixTimeMilliseconds()))
            {
                await purge.ExecuteNonQueryAsync(cancellationToken);
            }
            var row = AuthenticatedTable.AccessTokens.Row(("token_hash", tokenHash), ("client_id", client.ClientId), ("tenant_id", client.TenantId),
                ("scopes", granted.ToString()), ("expires_at", expiresAt));
            using var insert = scope.Command("");
            insert.CommandText = $"INSERT INTO access_tokens ({AuthenticatedTable.AccessTokens.ColumnList}) VALUES ({_rows.Bind(insert, row)})";
            await insert.ExecuteNonQueryAsync(cancellationToken);
            // The sign-in entry commits with the token: no token without its entry.
            await _audit.AppendAsync(scope, context, AuditAction.SignIn, AuditOutcome.Success, null, [], cancellationToken, method + "; scopes " + granted);
            await scope.CommitAsync(cancellationToken);
        }, cancellationToken);
        return (new IssuedToken(token, (int)_tokenLifetime.TotalSeconds, granted.ToString()), null, false);
    }

    /// <summary>The establishment's clients, oldest first.</summary>
    public async Task<IReadOnlyList<ClientSummary>> ListAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        await using var connection = await _database.OpenAsync(cancellationToken);
        using var command = connection.Command("""
            SELECT client_id, name, scopes, created_at, disabled, jwks IS NOT NULL, patient_limit, own_only, purpose FROM clients WHERE tenant_id = @t ORDER BY created_at, client_id
            """).With("t", tenant.Id);
        using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var list = new List<ClientSummary>();
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(new ClientSummary(reader.GetString(0), reader.GetString(1), reader.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
                reader.GetInt32(4) != 0, Convert.ToInt32(reader.GetValue(5), System.Globalization.CultureInfo.InvariantCulture) != 0,
                reader.IsDBNull(6) ? null : reader.GetString(6).Split(' ', StringSplitOptions.RemoveEmptyEntries).Length, reader.GetInt32(7) != 0, reader.GetString(8)));
        }
        return list;
    }

    /// <summary>
    /// Revokes a client of the administrator's establishment for good: no new token, and its tokens stop working — at once
    /// in this process, within <see cref="TokenRecheck"/> in the others (their caches ask the database again). An administrative
    /// act, audited in its own transaction (an audit log that cannot be written revokes nothing). False when the establishment
    /// has no such client, or it is already revoked.
    /// </summary>
    public async Task<bool> RevokeAsync(AccessContext administrator, string clientId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(administrator);
        ArgumentNullException.ThrowIfNull(clientId);
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        var current = await AccessRows.ReadAsync(scope, AuthenticatedTable.Clients, clientId, cancellationToken);
        if (current is null || current.TenantId != administrator.Tenant.Id || current.Number("disabled") != 0) return false;
        // A row altered in the database is revoked too (it is refused already): it keeps the MAC that matches nothing.
        await _rows.CheckAsync(scope, current, cancellationToken);
        if (!await _rows.RewriteAsync(scope, current, current.With("disabled", 1), cancellationToken)) return false;
        using (var tokens = scope.Command("DELETE FROM access_tokens WHERE client_id = @c").With("c", clientId))
        {
            await tokens.ExecuteNonQueryAsync(cancellationToken);
        }
        await _audit.AppendAsync(scope, administrator, AuditAction.Administration, AuditOutcome.Success, null,
            [new AuditedRecord("client:" + clientId, null, null)], cancellationToken, "clients revoke");
        await scope.CommitAsync(cancellationToken);
        ForgetTokensOf(clientId);
        return true;
    }

    /// <summary>
    /// Changes what an active client's acts are for (a billing system registered for treatment, say): from now on every audit
    /// entry of its acts records <paramref name="purpose"/> — at once in this process, within <see cref="TokenRecheck"/> in the
    /// others (their caches ask the database again). Entries already written keep the purpose they were written with. An
    /// administrative act naming both purposes, in the change's transaction (an audit log that cannot be written changes
    /// nothing). The purpose it had, or null when the establishment has no such active client.
    /// </summary>
    public async Task<string?> SetPurposeAsync(AccessContext administrator, string clientId, string purpose, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(administrator);
        ArgumentNullException.ThrowIfNull(clientId);
        if (PurposeProblem(purpose) is { } wrongPurpose) throw new ArgumentException(wrongPurpose, nameof(purpose));
        await using var scope = await _database.BeginWriteAsync(cancellationToken);
        var current = await AccessRows.ReadAsync(scope, AuthenticatedTable.Clients, clientId, cancellationToken);
        if (current is null || current.TenantId != administrator.Tenant.Id || current.Number("disabled") != 0) return null;
        // A row altered in the database is no client: its purpose is not changed (that would authenticate the alteration).
        if (!await _rows.CheckAsync(scope, current, cancellationToken))
        {
            await scope.CommitAsync(cancellationToken); // its report
            return null;
        }
        var previous = current.Text("purpose");
        if (previous is null) return null;
        if (previous == purpose) return previous;
        if (!await _rows.RewriteAsync(scope, current, current.With("purpose", purpose), cancellationToken)) return null;
        await _audit.AppendAsync(scope, administrator, AuditAction.Administration, AuditOutcome.Success, null,
            [new AuditedRecord("client:" + clientId, null, null)], cancellationToken, $"clients set-purpose ({previous} to {purpose})");
        await scope.CommitAsync(cancellationToken);
        ForgetTokensOf(clientId);
        return previous;
    }

    /// <summary>Drops the client's tokens from this process's cache: its next request is checked against the database (a
    /// revocation, a new purpose of use), as other processes do within <see cref="TokenRecheck"/>.</summary>
    private void ForgetTokensOf(string clientId)
    {
        foreach (var (key, cached) in _tokenCache)
        {
            if (cached.Context.Principal.Id == clientId) _tokenCache.TryRemove(key, out _);
        }
    }

    /// <summary>The access context of a bearer token, or null when it is unknown, expired, revoked or its client disabled.</summary>
    public async ValueTask<AccessContext?> AuthenticateAsync(string bearerToken, string? sourceAddress, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var hash = Hash(bearerToken);
        var key = Convert.ToHexString(hash);
        if (_tokenCache.TryGetValue(key, out var cached))
        {
            if (cached.ExpiresAt > now) return cached.Context with { SourceAddress = sourceAddress };
            // Expired, or due to be checked again (a revocation by another process): the database answers.
            _tokenCache.TryRemove(key, out _);
        }
        AuthenticatedRow token, client;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            var (tokens, clients) = (AuthenticatedTable.AccessTokens, AuthenticatedTable.Clients);
            using var command = connection.Command($"SELECT {tokens.Select("t")}, {clients.Select("c")} FROM access_tokens t JOIN clients c ON c.client_id = t.client_id WHERE t.token_hash = @h")
                .With("h", hash);
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken)) return null;
            token = tokens.Read(reader, 0);
            client = clients.Read(reader, tokens.Columns.Count + 1);
        }
        // Both rows as Vauban wrote them (ADR 0014): a token inserted, or a client widened, in the database is no token. Only a
        // token whose rows are authentic enters the cache.
        var genuine = await _rows.CheckAsync(token, cancellationToken);
        if (!await _rows.CheckAsync(client, cancellationToken) || !genuine || token.TenantId != client.TenantId) return null;
        var expiresAt = token.Number("expires_at") ?? 0;
        if (expiresAt <= now || client.Number("disabled") != 0) return null;
        var tenant = await _tenants.FindAsync(client.TenantId ?? 0, cancellationToken);
        if (tenant is null) return null;
        SmartScopes.TryParse(token.Text("scopes"), TypeCodes.Names, out var scopes, out _);
        var context = new AccessContext(new Principal(PrincipalKind.ApiClient, client.Text("client_id")!, client.Text("name")!, scopes)
        {
            SessionId = TokenId(hash),
            PatientLimit = client.Text("patient_limit")?.Split(' ', StringSplitOptions.RemoveEmptyEntries),
            OwnResourcesOnly = client.Number("own_only") != 0,
        }, tenant, client.Text("purpose")!); // the client's registered purpose of use: every entry of its acts records it
        if (_tokenCache.Count > 100_000) _tokenCache.Clear();
        _tokenCache[key] = (context, Math.Min(expiresAt, now + (long)TokenRecheck.TotalMilliseconds));
        return context with { SourceAddress = sourceAddress };
    }

    private sealed record Client(string ClientId, long TenantId, string Name, byte[]? SecretHash, string? Jwks, string Scopes, bool Disabled);

    /// <summary>The client named <paramref name="clientId"/>, as the token endpoint authenticates it; null when there is none, or its row
    /// is not as Vauban wrote it (ADR 0014: a secret hash replaced, scopes widened, a revoked client re-enabled in the database).</summary>
    private async Task<Client?> FindClientAsync(string clientId, CancellationToken cancellationToken)
    {
        AuthenticatedRow row;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            using var command = connection.Command($"SELECT {AuthenticatedTable.Clients.Select("c")} FROM clients c WHERE c.client_id = @c").With("c", clientId);
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken)) return null;
            row = AuthenticatedTable.Clients.Read(reader, 0);
        }
        if (!await _rows.CheckAsync(row, cancellationToken)) return null;
        return new Client(row.Text("client_id")!, row.TenantId ?? 0, row.Text("name")!, row.Bytes("secret_hash"), row.Text("jwks"), row.Text("scopes")!,
            row.Number("disabled") != 0);
    }

    /// <summary>The issuer and key id an assertion claims, read without verifying it; null when it is no signed JWT.</summary>
    private static (string? Issuer, string? KeyId)? AssertionHeader(string? assertion)
    {
        // A signed JWT (JWS compact form: three parts); an encrypted one (JWE, five parts) is no client assertion.
        if (string.IsNullOrEmpty(assertion) || assertion.Length > 16_384 || assertion.Count(c => c == '.') != 2) return null;
        try
        {
            var read = new JsonWebTokenHandler().ReadJsonWebToken(assertion);
            return (read.Issuer, read.Kid);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or SecurityTokenException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>private_key_jwt (RFC 7523, SMART Backend Services): a short-lived JWT signed with the client's registered key, used once.
    /// The client its issuer names (null when none is registered) and, when the assertion is refused, why.</summary>
    private async Task<(Client? Client, string? Refused)> AuthenticateAssertionAsync(string? assertion, string? clientIdHint, string tokenEndpoint, CancellationToken cancellationToken)
    {
        if (AssertionHeader(assertion) is not ({ } issuer, var keyId) || issuer.Length == 0) return (null, null);
        var client = await FindClientAsync(issuer, cancellationToken);
        if (client is null) return (null, null);
        if (clientIdHint is not null && clientIdHint != issuer) return (client, "assertion refused (client_id differs from its issuer)");
        if (client.Jwks is null) return (client, "assertion refused (the client has no registered key)");
        // SMART Backend Services: the header's kid names the key in the client's JWK set; the assertion is verified with that key
        // only, never with each registered key in turn.
        if (string.IsNullOrEmpty(keyId)) return (client, "assertion refused (no kid in its header)");
        var signingKeys = new JsonWebKeySet(client.Jwks).GetSigningKeys().Where(k => string.Equals(k.KeyId, keyId, StringComparison.Ordinal)).ToList();
        if (signingKeys.Count == 0) return (client, "assertion refused (its kid names no registered key)");

        var now = _time.GetUtcNow().UtcDateTime;
        var handler = new JsonWebTokenHandler();
        var result = await handler.ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            ValidIssuer = client.ClientId,
            ValidAudience = tokenEndpoint,
            IssuerSigningKeys = signingKeys,
            TryAllIssuerSigningKeys = false,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = TimeSpan.FromSeconds(AssertionClockSkewSeconds),
            // Replaces the library's lifetime check, nbf included: nbf and iat are checked below.
            LifetimeValidator = (_, expires, _, _) => expires is { } e && e > now.AddSeconds(-AssertionClockSkewSeconds)
                && e <= now.AddMinutes(5).AddSeconds(AssertionClockSkewSeconds),
            ValidAlgorithms = AssertionAlgorithms,
        });
        if (!result.IsValid) return (client, "assertion refused (" + AssertionFailure(result.Exception) + ")");
        var jwt = (JsonWebToken)result.SecurityToken;
        if (jwt.Subject != client.ClientId || string.IsNullOrEmpty(jwt.Id)) return (client, "assertion refused (subject or jti)");
        // RFC 7515 section 4.1.11: a JWS whose "crit" header names extensions the recipient does not understand MUST be refused.
        // This server understands none, and the library ignores the header: a signer's "use me only where X is enforced" was
        // accepted as if it were not there.
        if (jwt.TryGetHeaderValue<object>("crit", out _)) return (client, "assertion refused (critical header extension not understood)");
        // An assertion not valid yet, or issued in the future, is refused (RFC 7523 section 3: nbf; iat): one made now for later use
        // would otherwise be good until its exp, whenever it is played. Absent, each reads as DateTime.MinValue.
        if (jwt.ValidFrom > now.AddSeconds(AssertionClockSkewSeconds) || jwt.IssuedAt > now.AddSeconds(AssertionClockSkewSeconds))
        {
            return (client, "assertion refused (not yet valid: nbf or iat in the future)");
        }

        if (!await UseAssertionOnceAsync(client.ClientId, jwt.Id, jwt.ValidTo, cancellationToken)) return (client, "assertion refused (replayed)");
        return (client, null);
    }

    /// <summary>Replay: each assertion id is accepted once while it could still be valid — recorded in the database, so that a
    /// restarted server or another server of the same store refuses it too; of two requests racing with one assertion, the
    /// primary key lets one through. False when it was used already.</summary>
    private async Task<bool> UseAssertionOnceAsync(string clientId, string jti, DateTime validTo, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // Past its exp (and the clock skew allowed), the assertion is refused as expired: its id need not be kept longer.
        var until = new DateTimeOffset(DateTime.SpecifyKind(validTo, DateTimeKind.Utc)).AddSeconds(AssertionClockSkewSeconds + 60).ToUnixTimeMilliseconds();
        // A lost connection before the commit: once more on a new one (the server rolled the first back: the id was not recorded).
        return await _database.WriteAsync(async scope =>
        {
            using (var purge = scope.Command("DELETE FROM client_assertions WHERE expires_at < @now").With("now", now))
            {
                await purge.ExecuteNonQueryAsync(cancellationToken);
            }
            using var insert = scope.Command("INSERT INTO client_assertions (client_id, jti_hash, expires_at) VALUES (@c, @j, @e) ON CONFLICT DO NOTHING")
                .With("c", clientId).With("j", Hash(jti)).With("e", Math.Max(until, now));
            var fresh = await insert.ExecuteNonQueryAsync(cancellationToken) == 1;
            await scope.CommitAsync(cancellationToken);
            return fresh;
        }, cancellationToken);
    }

    /// <summary>Why an assertion did not validate, in words for the audit entry (never the assertion itself).</summary>
    private static string AssertionFailure(Exception? exception) => exception switch
    {
        SecurityTokenExpiredException or SecurityTokenInvalidLifetimeException or SecurityTokenNoExpirationException => "expired or lifetime too long",
        SecurityTokenInvalidAudienceException => "wrong audience",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "bad signature",
        SecurityTokenInvalidAlgorithmException => "algorithm not allowed",
        _ => "invalid",
    };

    internal static byte[] Hash(string value) => SHA256.HashData(Encoding.UTF8.GetBytes(value));

    /// <summary>What the audit names as an API client's session: its token, by the first 72 bits of the token's stored hash — the
    /// same on the sign-in entry that issued the token and on every act done with it, and nothing the token can be rebuilt from.</summary>
    internal static string TokenId(byte[] tokenHash) => "token-" + Base64Url(tokenHash.AsSpan(0, 9).ToArray());

    private static string Base64Url(byte[] bytes) => Base64UrlEncoder.Encode(bytes);
}
