// The guard's questions for bulk $export. At kick-off: a contained principal gets nothing, and an export needs a
// stated reason. At download, for the patients a file carries: an export no second person approved is weighed like
// any read (reading windows, canaries); an approved one was sized by the officer, so it is not weighed again, but
// containment still holds, a canary in it is reported, and its patients go into the principal's windows (what it
// reads next is weighed on top of them).
using Vauban.Access;

namespace Vauban.Guard;

public sealed partial class RecordsGuard
{
    /// <summary>Before a job is created: contained principals and exports without a stated reason are refused.</summary>
    internal async ValueTask<GuardDecision> AdmitExportRequestAsync(AccessContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var principal = context.Principal;
        if (Disabled || !Options.Enabled || principal.Kind == PrincipalKind.System) return GuardDecision.Admit;
        await RefreshIfStaleAsync(cancellationToken);
        if (ContainmentOf(context.Tenant.Id, principal) is { } containment) return Refusal(principal, containment);
        if (string.IsNullOrWhiteSpace(context.StatedReason))
        {
            return new GuardDecision(GuardVerdict.ReasonRequired, TimeSpan.Zero,
                $"A bulk export needs a stated reason: send it in the {ReasonHeader} header ({MinimumReasonLength}–{MaximumReasonLength} characters). "
                + "It is kept with the audit record, and shown to the security officer when the export needs approval.");
        }
        return GuardDecision.Admit;
    }

    /// <summary>The refusal for a contained principal (polling or downloading an export job), or null.</summary>
    /// <summary>Why the principal is contained (a suspended session or client, a locked account), or null: for the doors that
    /// carry no records but must not serve a contained principal either (the security officer's console).</summary>
    public async ValueTask<string?> ContainedBecauseAsync(AccessContext context, CancellationToken cancellationToken) =>
        (await ContainmentRefusalAsync(context, cancellationToken))?.Reason;

    internal async ValueTask<GuardDecision?> ContainmentRefusalAsync(AccessContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Disabled || !Options.Enabled || context.Principal.Kind == PrincipalKind.System) return null;
        await RefreshIfStaleAsync(cancellationToken);
        return ContainmentOf(context.Tenant.Id, context.Principal) is { } containment ? Refusal(context.Principal, containment) : null;
    }

    /// <summary>An alert for the security officer from the records service (an export's approval requested, a damaged record).</summary>
    internal Task RaiseAsync(long tenant, string kind, string principal, string detail, CancellationToken cancellationToken) =>
        _alerts.RaiseAsync(tenant, kind, principal, detail, cancellationToken);

    /// <summary>The same, from inside a write transaction: written once that transaction has ended, whatever its end.</summary>
    internal void RaiseAfterWrite(long tenant, string kind, string principal, string detail) =>
        Defer(() => _alerts.RaiseAsync(tenant, kind, principal, detail, CancellationToken.None));

    /// <summary>Before one export file leaves (see the file header).</summary>
    internal async ValueTask<GuardDecision> AdmitExportAsync(AccessContext context, GuardRequest request, bool approved, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (!approved) return await AdmitAsync(context, request, cancellationToken);
        var principal = context.Principal;
        if (Disabled || !Options.Enabled || principal.Kind == PrincipalKind.System) return GuardDecision.Admit;
        await RefreshIfStaleAsync(cancellationToken);
        var tenant = context.Tenant.Id;
        if (ContainmentOf(tenant, principal) is { } containment) return Refusal(principal, containment);
        if (_canaries.TryGetValue(tenant, out var canaries))
        {
            var carried = request.Patients.Count(canaries.Contains);
            if (carried > 0)
            {
                await _alerts.RaiseAsync(tenant, KnownAlertKinds.GuardCanarySeen, principal.Id,
                    $"{Who(principal)}: an approved bulk export of {request.ResourceType} carries {carried} canary patient(s) ({request.Patients.Count} patients); not contained.",
                    CancellationToken.None);
            }
        }
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var state = _states.GetOrAdd((tenant, principal.Id), _ => new ReadingState());
        lock (state)
        {
            state.LastSeenMs = nowMs;
            state.Admit(request, nowMs);
        }
        return GuardDecision.Admit;
    }
}
