// POST /oauth/token — OAuth 2.0 client credentials (RFC 6749 §4.4) with client_secret_basic,
// client_secret_post or private_key_jwt (RFC 7523, SMART Backend Services).
using System.Text;
using Vauban.Access;

namespace Vauban.Web;

internal static class TokenEndpoint
{
    /// <summary>The parameters of a token request, each of which RFC 6749 (section 3.2) allows once.</summary>
    private static readonly string[] Parameters = ["grant_type", "scope", "client_id", "client_secret", "client_assertion_type", "client_assertion"];

    public static void MapTokenEndpoint(this IEndpointRouteBuilder app, ApiClients clients, TokenEndpointUrl url)
    {
        app.MapPost("/oauth/token", async (HttpContext http) =>
        {
            http.Response.Headers.CacheControl = "no-store";
            http.Response.Headers.Pragma = "no-cache";
            // RFC 6749 section 4.4.2: application/x-www-form-urlencoded (multipart/form-data is a form too, and was accepted).
            if (!http.Request.HasFormContentType
                || !Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var media)
                || !media.MediaType.Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
            {
                return Error(new TokenError("invalid_request", "The token request must be application/x-www-form-urlencoded.", 400));
            }
            var (form, refusal) = await http.Request.ReadFormOrRefusalAsync(http.RequestAborted);
            if (form is null)
            {
                return Error(new TokenError("invalid_request", $"The token request's form {refusal}.", 400));
            }
            if (Parameters.FirstOrDefault(p => form[p].Count > 1) is { } repeated)
            {
                return Error(new TokenError("invalid_request", $"The token request gives {repeated} more than once (RFC 6749: each parameter at most once).", 400));
            }
            if (!form.ContainsKey("grant_type"))
            {
                return Error(new TokenError("invalid_request", "The token request has no grant_type: send grant_type=client_credentials.", 400));
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
            var endpoint = url.Of(http);
            if (endpoint is null && form.ContainsKey("client_assertion"))
            {
                // The assertion's audience would be whatever Host the request names: one signed for another server would pass.
                return Error(new TokenError("invalid_client",
                    $"This server is not known as {http.Request.Host}, so a client assertion's audience cannot be checked here: send the request to {url.Known()}, "
                    + "or its operator sets --public-url to the URL clients use.", 401));
            }
            var source = http.Connection.RemoteIpAddress?.ToString();
            var (token, error) = await clients.IssueAsync(request, endpoint ?? "", source, http.TraceIdentifier, http.RequestAborted);
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
        // Any other method: 405 with Allow: POST and an OAuth error saying how to ask (routing's own 405 had no body at all: an
        // integrator who tried a GET was told nothing).
        app.MapMethods("/oauth/token", [HttpMethods.Get, HttpMethods.Head, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete, HttpMethods.Options], (HttpContext http) =>
        {
            http.Response.Headers.Allow = HttpMethods.Post;
            http.Response.Headers.CacheControl = "no-store";
            return Error(new TokenError("invalid_request",
                $"The token endpoint takes POST, not {http.Request.Method}: a form (application/x-www-form-urlencoded) with grant_type=client_credentials and the client's credentials.", 405));
        }).DisableAntiforgery();
    }

    /// <summary>
    /// GET /fhir/.well-known/smart-configuration (SMART App Launch 2, as SMART Backend Services requires it): where to get a
    /// token and how to authenticate there, without a token. The token endpoint is the URL an assertion's aud must name.
    /// </summary>
    public static void MapSmartConfiguration(this IEndpointRouteBuilder app, TokenEndpointUrl url) =>
        app.MapGet("/fhir/.well-known/smart-configuration", (HttpContext http) => Results.Json(new Dictionary<string, object>
        {
            ["token_endpoint"] = url.Of(http) ?? url.Known(),
            ["grant_types_supported"] = new[] { "client_credentials" },
            ["token_endpoint_auth_methods_supported"] = new[] { "private_key_jwt", "client_secret_basic", "client_secret_post" },
            ["token_endpoint_auth_signing_alg_values_supported"] = ApiClients.AssertionAlgorithms,
            // SMART v2 system scopes, any subset of cruds on any type the CapabilityStatement lists (v1 forms are translated).
            ["scopes_supported"] = new[] { "system/*.cruds", "system/*.rs" },
            // No authorization endpoint: API clients are backend services; people sign in to the web UI.
            ["response_types_supported"] = Array.Empty<string>(),
            ["capabilities"] = new[] { "client-confidential-asymmetric", "client-confidential-symmetric", "permission-v1", "permission-v2" },
        }));


    /// <summary>An OAuth error; a 401 to a client that authenticated with the Basic header names the scheme (RFC 6749 section 5.2).</summary>
    private static IResult Error(TokenError error, HttpContext? http = null, bool basic = false)
    {
        if (http is not null && basic && error.Status == StatusCodes.Status401Unauthorized) http.Response.Headers.WWWAuthenticate = "Basic realm=\"vauban\"";
        if (http is not null && error.RetryAfter is { } wait) http.Response.Headers.RetryAfter = Math.Ceiling(wait.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Json(new { error = error.Error, error_description = error.Description }, statusCode: error.Status);
    }
}

/// <summary>
/// This server's token endpoint: what a private_key_jwt assertion's aud must name (RFC 7523 section 3: the authorization server as
/// its intended audience). With a public URL, that URL's; otherwise the URL the request reached, but only when it reached the
/// server at an address it listens on (a wildcard address counts as localhost): the Host header is written by the sender,
/// so an assertion a client signed for another server (aud https://other.example/oauth/token) was accepted here with
/// "Host: other.example" (found by a black-box probe).
/// </summary>
internal sealed class TokenEndpointUrl(Uri? publicUrl, Microsoft.AspNetCore.Hosting.Server.IServer server)
{
    private readonly string? _public = publicUrl is null ? null : publicUrl.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/oauth/token";

    /// <summary>The token endpoint's URL as this request names it, or null when the request names the server by a host it
    /// does not listen on (and no public URL is set).</summary>
    public string? Of(HttpContext http)
    {
        if (_public is not null) return _public;
        var request = http.Request;
        var port = request.Host.Port ?? (request.IsHttps ? 443 : 80);
        var host = request.Host.Host;
        foreach (var (bound, wildcard) in Listening())
        {
            if (!bound.Scheme.Equals(request.Scheme, StringComparison.OrdinalIgnoreCase) || bound.Port != port) continue;
            if (wildcard ? host is "localhost" or "127.0.0.1" or "[::1]" : host.Equals(bound.Host, StringComparison.OrdinalIgnoreCase))
            {
                return $"{request.Scheme}://{request.Host}{request.PathBase}/oauth/token";
            }
        }
        return null;
    }

    /// <summary>Where the token endpoint is known, for a message or the SMART configuration of a request that named another host.</summary>
    public string Known() => _public ?? Listening().Select(l => (l.Wildcard ? new UriBuilder(l.Address) { Host = "localhost" }.Uri : l.Address).GetLeftPart(UriPartial.Authority) + "/oauth/token")
        .FirstOrDefault() ?? "/oauth/token";

    /// <summary>The addresses the server listens on; a wildcard one ("+", "*", 0.0.0.0, [::]) flagged.</summary>
    private IEnumerable<(Uri Address, bool Wildcard)> Listening()
    {
        foreach (var address in Addresses())
        {
            if (Uri.TryCreate(address.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var bound))
            {
                yield return (bound, bound.Host is "0.0.0.0" or "[::]");
            }
        }
    }

    private ICollection<string> Addresses() =>
        server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses ?? [];
}
