// The second person on a large bulk export: an export whose estimate is above the establishment's threshold
// (ExportLimits) waits until the security officer or an administrator — never the person who asked —
// approves or denies it. The same methods serve `vauban guard exports|approve-export|deny-export` and the
// security console's API (/admin/guard/exports…). Every decision is an audit entry and an alert.
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Records;
using Vauban.Storage;

namespace Vauban.Guard;

/// <summary>An export waiting for approval, with the reason its requester stated.</summary>
public sealed record PendingExport(ExportJob Job, string Reason);

public enum ExportDecision { Done, NotFound, OwnExport, NotAllowed }

public sealed class ExportApprovals
{
    private readonly ExportJobRows _jobs;
    private readonly KeyRing _keys;
    private readonly SecurityAlerts _alerts;
    private readonly AuditTrail _audit;
    private readonly TimeProvider _time;

    internal ExportApprovals(StoreDatabase database, KeyRing keys, SecurityAlerts alerts, AuditTrail audit, TimeProvider time)
    {
        _jobs = new ExportJobRows(database);
        _keys = keys;
        _alerts = alerts;
        _audit = audit;
        _time = time;
    }

    /// <summary>Who may decide: the security officer or an administrator (a signed-in person), or the operator at the command line.</summary>
    public static bool MayDecide(AccessContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Principal.Kind == PrincipalKind.System
            || (context.Principal.Kind == PrincipalKind.Person && context.Principal.Role is StaffRole.SecurityOfficer or StaffRole.Administrator);
    }

    /// <summary>The establishment's exports awaiting approval, oldest first.</summary>
    public async Task<IReadOnlyList<PendingExport>> PendingAsync(long tenantId, CancellationToken cancellationToken)
    {
        var keys = await _keys.ForTenantAsync(tenantId, cancellationToken);
        var pending = await _jobs.PendingAsync(keys, _time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
        return pending.Select(p => new PendingExport(p.Job, p.Reason)).ToList();
    }

    /// <summary>Approves (<paramref name="approve"/>) or denies a pending export. The requester can never decide their own.</summary>
    public async Task<ExportDecision> DecideAsync(AccessContext decider, string jobId, bool approve, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(decider);
        var verb = approve ? "approve" : "deny";
        if (!MayDecide(decider))
        {
            await AuditAsync(decider, jobId, AuditOutcome.MinorFailure, $"bulk export {verb} refused: only the security officer or an administrator decides", cancellationToken);
            return ExportDecision.NotAllowed;
        }
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var keys = await _keys.ForTenantAsync(decider.Tenant.Id, cancellationToken);
        var found = ExportJob.IsValidId(jobId) ? await _jobs.FindAsync(keys, jobId, now, cancellationToken) : null;
        if (found is not { Job: { Status: ExportStatus.AwaitingApproval } job }) return await NotFoundAsync(decider, jobId, verb, cancellationToken);
        if (string.Equals(job.Principal, decider.Principal.Id, StringComparison.Ordinal))
        {
            await AuditAsync(decider, jobId, AuditOutcome.MinorFailure, $"bulk export {verb} refused: the requester cannot decide their own export", cancellationToken);
            return ExportDecision.OwnExport;
        }
        var done = approve ? "approved" : "denied";
        // The entry and the alert commit with the decision: an audit log that cannot be written leaves the export undecided.
        // Who decided, as the chain's blind index: the decider may be "cli:<operating-system user>", a person's name.
        var decidedBy = AuditChain.PrincipalReference(keys, decider.Principal.Id);
        if (!await _jobs.DecideAsync(decider.Tenant.Id, jobId, approve ? ExportStatus.Ready : ExportStatus.Denied, decidedBy, now, async scope =>
            {
                await _audit.AppendAsync(scope, decider, AuditAction.Administration, AuditOutcome.Success, null, [Target(jobId)], cancellationToken,
                    $"bulk export {done} ({job.Patients} patient(s), {job.Resources} resource(s), requested by {job.Principal})");
                await _alerts.RaiseAsync(scope, decider.Tenant.Id, approve ? KnownAlertKinds.ExportApproved : KnownAlertKinds.ExportDenied, job.Principal,
                    $"Bulk export {jobId} of {job.Principal} ({job.Patients} patient(s), {job.Resources} resource(s), {string.Join(",", job.Types)}) {done} by {decider.Principal.Id}.",
                    cancellationToken);
            }, cancellationToken))
        {
            return await NotFoundAsync(decider, jobId, verb, cancellationToken); // decided or gone meanwhile
        }
        return ExportDecision.Done;
    }

    /// <summary>A decision on no export awaiting one (an unknown or mistyped id, one already decided, expired or cancelled) is an
    /// administrative act refused, on the chain like the others.</summary>
    private async Task<ExportDecision> NotFoundAsync(AccessContext decider, string jobId, string verb, CancellationToken cancellationToken)
    {
        await AuditAsync(decider, jobId, AuditOutcome.MinorFailure, $"bulk export {verb} refused: no export awaiting approval has this id", cancellationToken);
        return ExportDecision.NotFound;
    }

    private Task AuditAsync(AccessContext decider, string jobId, AuditOutcome outcome, string note, CancellationToken cancellationToken) =>
        _audit.AppendAsync(decider, AuditAction.Administration, outcome, null, [Target(jobId)], cancellationToken, note);

    private static AuditedRecord Target(string jobId) => new("export:" + (ExportJob.IsValidId(jobId) ? jobId : "?"), null, null);
}
