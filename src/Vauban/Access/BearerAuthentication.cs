// No request reaches /fhir data without a valid bearer token or a fully signed-in person's session
// (both factors): 401 with an OperationOutcome and a WWW-Authenticate challenge otherwise. Either
// resolves to an AccessContext bound to one tenant; what that principal may then see is the access
// policy's decision. A session cookie is sent by the browser on its own, so state-changing requests
// authenticated by it must come from this site: the Origin header must be present and name this
// server (SameSite=Strict already keeps the cookie off cross-site requests; this is the second lock).
using Vauban.Access;
using Vauban.Fhir;

namespace Vauban.Web;

internal static class BearerAuthentication
{
    private const string ContextKey = "vauban.access";

    public static AccessContext Access(this HttpContext context) => (AccessContext)context.Items[ContextKey]!;

    /// <summary>The access context of a fully signed-in person: purpose TREAT, scopes user/*.cruds (the policy narrows them by role and care relationship).</summary>
    public static AccessContext? PersonAccess(this HttpContext http)
    {
        if (http.FullPerson() is not { User: { } user } person) return null;
        var principal = new Principal(PrincipalKind.Person, user.PrincipalId, user.DisplayName, StaffUser.PersonScopes)
        {
            Role = user.Role,
            Practitioner = user.Practitioner,
            Service = user.Service,
            SessionId = person.Session.Id,
            AuthenticatedAt = person.Session.AuthenticatedAt,
        };
        return new AccessContext(principal, user.Tenant, KnownPurposes.Treatment, http.Connection.RemoteIpAddress?.ToString(), http.TraceIdentifier)
        {
            Device = Guard.DeviceClass.Of(http.Request.Headers.UserAgent.ToString()),
        };
    }

    public static RouteGroupBuilder RequireBearer(this RouteGroupBuilder group, ApiClients clients) => group.AddEndpointFilter(async (invocation, next) =>
    {
        var http = invocation.HttpContext;
        var header = http.Request.Headers.Authorization.ToString();
        AccessContext? access = null;
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7 && header.Length < 512)
        {
            access = await clients.AuthenticateAsync(header[7..].Trim(), http.Connection.RemoteIpAddress?.ToString(), http.RequestAborted);
        }
        else if (header.Length == 0 && http.PersonAccess() is { } person)
        {
            if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method) && !SameOrigin.Is(http))
            {
                return FhirHttp.Outcome(StatusCodes.Status403Forbidden,
                    Issue.Error("security", "A request that changes data with a session cookie must come from this site (Origin header)."));
            }
            access = person;
        }
        if (access is null)
        {
            http.Response.Headers.WWWAuthenticate = header.Length == 0 ? "Bearer" : "Bearer error=\"invalid_token\"";
            return FhirHttp.Outcome(StatusCodes.Status401Unauthorized,
                Issue.Error("login", header.Length == 0
                    ? "Authentication is required: obtain a token at /oauth/token (client credentials) and send it as 'Authorization: Bearer <token>', or sign in at /account/signin."
                    : !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                        ? "/fhir takes 'Authorization: Bearer <token>', not client credentials: exchange those for a token at /oauth/token."
                        : "The access token is invalid, expired or revoked."));
        }
        // A stated reason for a bulk read (Guard): kept short and on one line, or refused.
        string? reason = null;
        if (http.Request.Headers.TryGetValue(Guard.RecordsGuard.ReasonHeader, out var stated))
        {
            reason = stated.ToString().Trim();
            if (stated.Count != 1 || reason.Length < Guard.RecordsGuard.MinimumReasonLength || reason.Length > Guard.RecordsGuard.MaximumReasonLength || StatedText.HasHiddenCharacters(reason))
            {
                return FhirHttp.Outcome(StatusCodes.Status400BadRequest, Issue.Invalid(
                    $"{Guard.RecordsGuard.ReasonHeader} states why a bulk read is needed, once, on one line, in {Guard.RecordsGuard.MinimumReasonLength}–{Guard.RecordsGuard.MaximumReasonLength} characters, without invisible characters (direction overrides, zero-width)."));
            }
        }
        // The device class (from the User-Agent) is one of the guard's signals: a script where a browser used to be.
        http.Items[ContextKey] = access with
        {
            CorrelationId = http.TraceIdentifier, StatedReason = reason, Device = Guard.DeviceClass.Of(http.Request.Headers.UserAgent.ToString()),
            ServerBase = FhirHttp.BaseUrl(http),
        };
        return await next(invocation);
    });
}
