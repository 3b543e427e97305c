// No request reaches /fhir data without a valid bearer token: 401 with an OperationOutcome and a
// WWW-Authenticate challenge otherwise. The token resolves to an AccessContext bound to one tenant.
using Vauban.Access;
using Vauban.Fhir;

namespace Vauban.Web;

internal static class BearerAuthentication
{
    private const string ContextKey = "vauban.access";

    public static AccessContext Access(this HttpContext context) => (AccessContext)context.Items[ContextKey]!;

    public static RouteGroupBuilder RequireBearer(this RouteGroupBuilder group, ApiClients clients) => group.AddEndpointFilter(async (invocation, next) =>
    {
        var http = invocation.HttpContext;
        var header = http.Request.Headers.Authorization.ToString();
        AccessContext? access = null;
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && header.Length > 7 && header.Length < 512)
        {
            access = await clients.AuthenticateAsync(header[7..].Trim(), http.Connection.RemoteIpAddress?.ToString(), http.RequestAborted);
        }
        if (access is null)
        {
            http.Response.Headers.WWWAuthenticate = header.Length == 0 ? "Bearer" : "Bearer error=\"invalid_token\"";
            return FhirHttp.Outcome(StatusCodes.Status401Unauthorized,
                Issue.Error("login", header.Length == 0
                    ? "Authentication is required: obtain a token at /oauth/token (client credentials) and send it as 'Authorization: Bearer <token>'."
                    : "The access token is invalid, expired or revoked."));
        }
        http.Items[ContextKey] = access with { CorrelationId = http.TraceIdentifier };
        return await next(invocation);
    });
}
