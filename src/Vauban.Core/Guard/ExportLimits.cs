// How large a bulk $export may be before a second person must approve it, per establishment
// (guard configuration: {"export": {"approvalAbovePatients": 20, "approvalAboveResources": 2000},
// "tenants": {"chu-lyon": {"export": {…}}}}), and how long a job lives.
using Vauban.Access;

namespace Vauban.Guard;

public sealed record ExportLimits
{
    /// <summary>An export whose estimate reaches more distinct patients than this waits for approval. The default stays
    /// under the guard's per-minute suspension bound, so an export no one approved is never larger than what a person may read.</summary>
    public int ApprovalAbovePatients { get; init; } = 20;

    /// <summary>…or more resources than this (directory exports concern no patient but can still be large).</summary>
    public int ApprovalAboveResources { get; init; } = 2_000;

    /// <summary>A job (and its file links) is forgotten this long after its kick-off.</summary>
    public TimeSpan JobLifetime { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Jobs a principal may have at once (awaiting approval or ready), so that kick-offs cannot fill the table.</summary>
    public int MaxJobsPerPrincipal { get; init; } = 10;

    internal void Validate(string name)
    {
        if (ApprovalAbovePatients < 0 || ApprovalAboveResources < 0) throw new VaubanConfigurationException($"Guard {name}: approval thresholds cannot be negative.");
        if (JobLifetime < TimeSpan.FromMinutes(1) || JobLifetime > TimeSpan.FromDays(7)) throw new VaubanConfigurationException($"Guard {name}: the job lifetime is between 1 minute and 7 days.");
        if (MaxJobsPerPrincipal < 1) throw new VaubanConfigurationException($"Guard {name}: at least one job per principal.");
    }
}

public static class ExportLimitsExtensions
{
    /// <summary>The export limits of one establishment: its own, or the defaults.</summary>
    public static ExportLimits ExportFor(this GuardOptions options, Tenant tenant)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(tenant);
        return options.Tenants.TryGetValue(tenant.Name, out var overrides) && overrides.Export is { } mine ? mine : options.Export;
    }
}
