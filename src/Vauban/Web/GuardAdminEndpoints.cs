// The security officer's guard API, for scripts: the same acts as `vauban guard` and the console's pages (/security), decided
// once in GuardConsole, for a signed-in security officer or administrator of the establishment (person session, both factors).
//   GET  /admin/guard/alerts[?all=true&limit=n]   GET /admin/guard/contained   GET /admin/guard/canaries (the officer only)
//   GET  /admin/guard/grants[?limit=n]   (the officer only: break-the-glass grants with the explanations stated)
//   POST /admin/guard/alerts/acknowledge   {"alerts": [id, …]}   (reviewed: they leave the default list; both factors proven within 5 minutes)
//   POST /admin/guard/release   {"principal": "session:…|user:…|<client id>"}   (both factors proven within 5 minutes; a containment
//        a canary caused is the officer's to release: an administrator gets 403 and nothing is released)
//   POST /admin/guard/canaries  {"count": n}   (the officer only: an administrator who knew the canaries could avoid them)
//   GET  /admin/guard/exports   POST /admin/guard/approve-export|deny-export {"export": "<job id>"}   (ExportAdminEndpoints)
// The session cookie is sent by the browser on its own, so writes must carry this site's Origin (as on /fhir)
// and a JSON body (a cross-site form cannot send one without a preflight). Errors are ProblemDetails, 4xx, and change nothing.
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Guard;

namespace Vauban.Web;

internal static class GuardAdminEndpoints
{
    public static void MapGuardAdmin(this IEndpointRouteBuilder app, VaubanStore store)
    {
        var admin = app.MapGroup("/admin/guard").DisableAntiforgery();
        admin.AddEndpointFilter(async (invocation, next) =>
        {
            var http = invocation.HttpContext;
            if (await GuardConsole.AdmitAsync(store, http, ConsoleAct(http)) is { IsAdmitted: false } refused) return Problem(refused.Status, refused.Message!);
            if (!HttpMethods.IsGet(http.Request.Method) && !SameOrigin.Is(http))
                return Problem(403, "A request that changes data with a session cookie must come from this site (Origin header).");
            return await next(invocation);
        });

        admin.MapGet("/alerts", async (HttpContext http) =>
        {
            var user = http.FullPerson()!.User!;
            var all = http.Request.Query["all"].ToString();
            if (all.Length > 0 && all is not ("true" or "false")) return Problem(400, "all is true or false.");
            if (Limit(http) is not { } limit) return Problem(400, "limit is a number between 1 and 10,000.");
            var alerts = await store.Alerts.ListAsync(user.Tenant.Id, all == "true", limit, http.RequestAborted);
            await AuditReadAsync(store, http, alerts.Count);
            return Results.Json(alerts.Select(a => new
            {
                id = a.Id, raisedAt = a.RaisedAt, kind = a.Kind, principal = a.Principal, detail = GuardConsole.Shown(http, a.Detail), acknowledgedAt = a.AcknowledgedAt,
            }));
        });

        // The break-the-glass grants with the explanations their holders stated (sealed at rest, opened here): what the officer
        // judges a stated emergency by. The officer's alone: the text may hold clinical words an administrator has no need of.
        admin.MapGet("/grants", async (HttpContext http) =>
        {
            var user = http.FullPerson()!.User!;
            if (user.Role != StaffRole.SecurityOfficer)
            {
                await GuardConsole.AuditRefusalAsync(store, http, ConsoleAct(http), "only the security officer");
                return Problem(403, "Only the security officer reviews break-the-glass explanations.");
            }
            if (Limit(http) is not { } limit) return Problem(400, "limit is a number between 1 and 10,000.");
            var grants = await store.BreakTheGlass.ReviewAsync(user.Tenant, limit, http.RequestAborted);
            await AuditReadAsync(store, http, grants.Count, ReviewedGrant.Audited(grants));
            return Results.Json(grants.Select(g => new
            {
                id = g.Id, principal = g.Principal, patient = g.Patient, reason = g.Reason, explanation = g.Explanation, grantedAt = g.GrantedAt, expiresAt = g.ExpiresAt,
            }));
        });

        admin.MapPost("/alerts/acknowledge", async (HttpContext http) =>
        {
            var (body, error) = await ReadObjectAsync(http);
            if (error is not null) return error;
            var usage = $"The body is {{\"alerts\": [id, …]}}: between 1 and {RecordsGuard.MaxAcknowledgedPerCall:N0} alert ids, as listed by GET /admin/guard/alerts.";
            if (!body!.Value.TryGetProperty("alerts", out var list) || list.ValueKind != JsonValueKind.Array
                || list.GetArrayLength() is 0 or > RecordsGuard.MaxAcknowledgedPerCall)
                return Problem(400, usage);
            var ids = new List<long>();
            foreach (var item in list.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var id)) return Problem(400, usage);
                ids.Add(id);
            }
            if (!GuardConsole.AreAlertIds(ids)) return Problem(400, usage);
            if (NeedsFreshFactors(http, "Acknowledging alerts") is { } stale) return stale;
            var (done, left) = await GuardConsole.AcknowledgeAsync(store, http, ids);
            return done.Count == 0
                ? Problem(404, GuardConsole.NoAlertAcknowledged + GuardConsole.CanariesAreTheOfficers(http))
                : Results.Json(new { acknowledged = done, notFound = left });
        });

        admin.MapGet("/contained", async (HttpContext http) =>
        {
            var user = http.FullPerson()!.User!;
            var list = await store.Guard.ContainmentsAsync(user.Tenant.Id, http.RequestAborted);
            await AuditReadAsync(store, http, list.Count);
            return Results.Json(list.Select(c => new
            {
                principal = c.Principal, account = c.Account, level = c.Level, cause = c.Cause, containedAt = c.ContainedAt, reason = GuardConsole.Shown(http, c.Reason),
            }));
        });

        admin.MapGet("/canaries", async (HttpContext http) =>
        {
            var user = http.FullPerson()!.User!;
            if (await OfficerOnlyAsync(store, http) is { } refused) return refused;
            var list = await store.Guard.CanariesAsync(user.Tenant.Id, http.RequestAborted);
            await AuditReadAsync(store, http, list.Count);
            return Results.Json(list.Select(c => new { patient = "Patient/" + c.Patient, createdAt = c.CreatedAt }));
        });

        admin.MapPost("/release", async (HttpContext http) =>
        {
            var (body, error) = await ReadObjectAsync(http);
            if (error is not null) return error;
            if (!body!.Value.TryGetProperty("principal", out var p) || p.ValueKind != JsonValueKind.String || !RecordsGuard.IsValidPrincipal(p.GetString()))
                return Problem(400, "The body is {\"principal\": \"session:…\" | \"user:…\" | \"<client id>\"} (letters, digits, ':', '-', '_', '.'; at most 200).");
            if (NeedsFreshFactors(http, "Releasing a containment") is { } stale) return stale;
            var release = await GuardConsole.ReleaseAsync(store, http, p.GetString()!);
            return release.Status switch
            {
                ReleaseStatus.Released => Results.Json(new { released = p.GetString(), containments = release.Containments }),
                ReleaseStatus.CanaryIsTheOfficers => Problem(403, GuardConsole.CanaryReleaseRefused(release)),
                ReleaseStatus.OwnContainment => Problem(403, GuardConsole.OwnReleaseRefused),
                _ => Problem(404, GuardConsole.NotContained),
            };
        });

        admin.MapPost("/canaries", async (HttpContext http) =>
        {
            if (await OfficerOnlyAsync(store, http) is { } refused) return refused;
            var (body, error) = await ReadObjectAsync(http);
            if (error is not null) return error;
            if (!body!.Value.TryGetProperty("count", out var c) || c.ValueKind != JsonValueKind.Number || !c.TryGetInt32(out var count) || count is < 1 or > RecordsGuard.MaxCanariesPerCall)
                return Problem(400, $"The body is {{\"count\": n}} with n between 1 and {RecordsGuard.MaxCanariesPerCall}.");
            // The officer's own context: the entries name who asked, from which session and address.
            var ids = await store.Guard.AddCanariesAsync(store.Records, http.PersonAccess()!, count, http.RequestAborted);
            return Results.Json(new { added = ids.Select(id => "Patient/" + id) }, statusCode: 201);
        });

        admin.MapExportApprovals(store);
    }

    /// <summary>The officer's sensitive acts (a release, an acknowledgement, an export decision) need both factors proven within
    /// <see cref="GuardConsole.ActReauthentication"/>: null when they were, else a 401 insufficient_user_authentication (RFC 9470)
    /// naming where to prove them.</summary>
    internal static IResult? NeedsFreshFactors(HttpContext http, string act)
    {
        if (GuardConsole.HasFreshFactors(http)) return null;
        http.Response.Headers.WWWAuthenticate = "Bearer error=\"insufficient_user_authentication\", max_age=" + (int)GuardConsole.ActReauthentication.TotalSeconds;
        return Problem(401, act + " needs a fresh proof of both factors: " + http.ReauthenticationUrl("/"), http.ReauthenticationUrl("/"));
    }

    /// <summary>Canary patients are the security officer's tripwires: an insider who knows them can avoid them. Only the officer
    /// (and the operator at the command line) lists or adds them; an administrator is refused, on the chain.</summary>
    private static async Task<IResult?> OfficerOnlyAsync(VaubanStore store, HttpContext http)
    {
        if (http.FullPerson()!.User!.Role == StaffRole.SecurityOfficer) return null;
        await GuardConsole.AuditRefusalAsync(store, http, ConsoleAct(http), "only the security officer knows the canary patients");
        return Problem(403, "Only the security officer lists or adds canary patients.");
    }

    /// <summary>A list read at the console, on the chain as an administrative act of its reader (<see cref="GuardConsole.AuditReadAsync"/>).</summary>
    internal static Task AuditReadAsync(VaubanStore store, HttpContext http, int listed, IReadOnlyList<AuditedRecord>? concerning = null) =>
        GuardConsole.AuditReadAsync(store, http, ConsoleAct(http), listed, concerning);

    /// <summary>The console's act a request is, by its route: "GET /admin/guard/alerts".</summary>
    private static string ConsoleAct(HttpContext http) =>
        http.Request.Method + " " + ((http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "/admin/guard");

    private const int MaxBody = 4096;

    /// <summary>A small JSON object body with Content-Type application/json, or a 4xx problem.</summary>
    internal static async Task<(JsonElement? Body, IResult? Error)> ReadObjectAsync(HttpContext http)
    {
        var media = FhirHttp.MediaTypeOf(http.Request.ContentType);
        if (!media.Equals("application/json", StringComparison.OrdinalIgnoreCase)) return (null, Problem(415, "The body must be JSON (Content-Type: application/json)."));
        if (http.Request.ContentLength > MaxBody) return (null, Problem(413, $"The body is at most {MaxBody} bytes."));
        using var buffer = new MemoryStream();
        var chunk = new byte[1024];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + read > MaxBody) return (null, Problem(413, $"The body is at most {MaxBody} bytes."));
            buffer.Write(chunk, 0, read);
        }
        try
        {
            using var document = JsonDocument.Parse(buffer.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
            if (document.RootElement.ValueKind != JsonValueKind.Object) return (null, Problem(400, "The body must be a JSON object."));
            return (document.RootElement.Clone(), null);
        }
        catch (JsonException)
        {
            return (null, Problem(400, "The body is not valid JSON."));
        }
    }

    /// <summary>A listing's ?limit= (1 to 10,000; 100 when absent), or null when it is not one.</summary>
    private static int? Limit(HttpContext http)
    {
        var text = http.Request.Query["limit"].ToString();
        if (text.Length == 0) return 100;
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var limit) && limit is >= 1 and <= 10_000 ? limit : null;
    }

    internal static IResult Problem(int status, string detail, string? instance = null) =>
        Results.Problem(detail: detail, statusCode: status, instance: instance);
}
