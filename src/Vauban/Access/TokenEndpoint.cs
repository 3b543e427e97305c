// POST /oauth/token — OAuth 2.0 client credentials (RFC 6749 §4.4) with client_secret_basic,
// client_secret_post or private_key_jwt (RFC 7523, SMART Backend Services).
using System.Text;
using Vauban.Access;

namespace Vauban.Web;

internal static class TokenEndpoint
{
    public static void MapTokenEndpoint(this IEndpointRouteBuilder app, ApiClients clients)
    {
        app.MapPost("/oauth/token", async (HttpContext http) =>
        {
            http.Response.Headers.CacheControl = "no-store";
            http.Response.Headers.Pragma = "no-cache";
            if (!http.Request.HasFormContentType)
            {
                return Error(new TokenError("invalid_request", "The token request must be application/x-www-form-urlencoded.", 400));
            }
            var (form, refusal) = await http.Request.ReadFormOrRefusalAsync(http.RequestAborted);
            if (form is null)
            {
                return Error(new TokenError("invalid_request", $"The token request's form {refusal}.", 400));
            }
            string? clientId = form["client_id"], clientSecret = form["client_secret"];
            var authorization = http.Request.Headers.Authorization.ToString();
            var basic = authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase);
            if (basic)
            {
                // RFC 6749 section 2.3: one client authentication method a request, not Basic and a body credential besides.
                if (form.ContainsKey("client_secret") || form.ContainsKey("client_assertion"))
                {
                    return Error(new TokenError("invalid_request", "Use one client authentication method: the Basic header, or client_secret or client_assertion in the body, not both.", 400));
                }
                try
                {
                    var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(authorization[6..].Trim())).Split(':', 2);
                    if (decoded.Length == 2)
                    {
                        var basicId = Uri.UnescapeDataString(decoded[0]);
                        // A client_id in the body too must name the same client (RFC 6749 section 2.3.1 lets it be sent), not be ignored.
                        if (clientId is not null && clientId != basicId)
                        {
                            return Error(new TokenError("invalid_request", "The client_id in the body differs from the one in the Basic authorization header.", 400));
                        }
                        clientId = basicId;
                        clientSecret = Uri.UnescapeDataString(decoded[1]);
                    }
                }
                catch (FormatException)
                {
                    return Error(new TokenError("invalid_client", "The Basic authorization header is malformed.", 401), http, basic);
                }
            }
            var request = new TokenRequest(form["grant_type"], form["scope"], clientId, clientSecret, form["client_assertion_type"], form["client_assertion"]);
            var endpoint = Url(http);
            var source = http.Connection.RemoteIpAddress?.ToString();
            var (token, error) = await clients.IssueAsync(request, endpoint, source, http.TraceIdentifier, http.RequestAborted);
            if (error is { UnknownClient: true })
            {
                // No registered client, so no tenant and no audit chain to take it: the operator's log at least sees it.
                // Never the submitted id or secret (a secret is sometimes pasted into the id).
                http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Vauban.SignIn")
                    .LogWarning("Token request for an unknown API client from {Source}", source);
            }
            if (error is not null) return Error(error, http, basic);
            return Results.Json(new { access_token = token!.AccessToken, token_type = "bearer", expires_in = token.ExpiresIn, scope = token.Scope });
        }).DisableAntiforgery();
    }

    /// <summary>
    /// GET /fhir/.well-known/smart-configuration (SMART App Launch 2, as SMART Backend Services requires it): where to get a
    /// token and how to authenticate there, without a token. The token endpoint is the URL an assertion's aud must name.
    /// </summary>
    public static void MapSmartConfiguration(this IEndpointRouteBuilder app) =>
        app.MapGet("/fhir/.well-known/smart-configuration", (HttpContext http) => Results.Json(new Dictionary<string, object>
        {
            ["token_endpoint"] = Url(http),
            ["grant_types_supported"] = new[] { "client_credentials" },
            ["token_endpoint_auth_methods_supported"] = new[] { "private_key_jwt", "client_secret_basic", "client_secret_post" },
            ["token_endpoint_auth_signing_alg_values_supported"] = ApiClients.AssertionAlgorithms,
            // SMART v2 system scopes, any subset of cruds on any type the CapabilityStatement lists (v1 forms are translated).
            ["scopes_supported"] = new[] { "system/*.cruds", "system/*.rs" },
            // No authorization endpoint: API clients are backend services; people sign in to the web UI.
            ["response_types_supported"] = Array.Empty<string>(),
            ["capabilities"] = new[] { "client-confidential-asymmetric", "client-confidential-symmetric", "permission-v1", "permission-v2" },
        }));

    /// <summary>This server's token endpoint as the request reached it: what an assertion's aud must be.</summary>
    private static string Url(HttpContext http) => $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}/oauth/token";

    /// <summary>An OAuth error; a 401 to a client that authenticated with the Basic header names the scheme (RFC 6749 section 5.2).</summary>
    private static IResult Error(TokenError error, HttpContext? http = null, bool basic = false)
    {
        if (http is not null && basic && error.Status == StatusCodes.Status401Unauthorized) http.Response.Headers.WWWAuthenticate = "Basic realm=\"vauban\"";
        if (http is not null && error.RetryAfter is { } wait) http.Response.Headers.RetryAfter = Math.Ceiling(wait.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Json(new { error = error.Error, error_description = error.Description }, statusCode: error.Status);
    }
}
