// The security console's side of large bulk exports, inside /admin/guard (same filter: a signed-in security
// officer or administrator, this site's Origin on writes):
//   GET  /admin/guard/exports                                   exports awaiting approval, with their stated reasons
//   POST /admin/guard/approve-export | deny-export  {"export": "<job id>"}   both factors proven within 5 minutes;
//        never one's own export (403)
using System.Text.Json;
using Vauban.Records;

namespace Vauban.Web;

internal static class ExportAdminEndpoints
{
    public static void MapExportApprovals(this RouteGroupBuilder admin, VaubanStore store)
    {
        admin.MapGet("/exports", async (HttpContext http) =>
        {
            var user = http.FullPerson()!.User!;
            var pending = await store.ExportApprovals.PendingAsync(user.Tenant.Id, http.RequestAborted);
            await GuardAdminEndpoints.AuditReadAsync(store, http, pending.Count);
            return Results.Json(pending.Select(p => new
            {
                id = p.Job.Id, requestedBy = p.Job.Principal, level = p.Job.Level == ExportLevel.Patient ? "patient" : "system", types = p.Job.Types,
                since = p.Job.Since is { } s ? Vauban.Fhir.FhirInstant.Format(s) : null, patients = p.Job.Patients, resources = p.Job.Resources,
                reason = p.Reason, requestedAt = p.Job.CreatedAt, expiresAt = p.Job.ExpiresAt,
            }));
        });
        admin.MapPost("/approve-export", async (HttpContext http) => { return await DecideAsync(http, store, approve: true); });
        admin.MapPost("/deny-export", async (HttpContext http) => { return await DecideAsync(http, store, approve: false); });
    }

    private static async Task<IResult> DecideAsync(HttpContext http, VaubanStore store, bool approve)
    {
        var (body, error) = await GuardAdminEndpoints.ReadObjectAsync(http);
        if (error is not null) return error;
        if (!body!.Value.TryGetProperty("export", out var e) || e.ValueKind != JsonValueKind.String || !ExportJob.IsValidId(e.GetString()))
            return GuardAdminEndpoints.Problem(400, "The body is {\"export\": \"<job id>\"} (22 letters, digits, '-' or '_').");
        if (GuardAdminEndpoints.NeedsFreshFactors(http, "Deciding on an export") is { } stale) return stale;
        var id = e.GetString()!;
        return await GuardConsole.DecideExportAsync(store, http, id, approve) is { } refused
            ? GuardAdminEndpoints.Problem(refused.Status, refused.Message)
            : Results.Json(new { export = id, decision = approve ? "approved" : "denied" });
    }
}
