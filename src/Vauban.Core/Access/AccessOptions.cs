// The access part's configuration: how far back and ahead a care relationship counts, how long a
// break-the-glass grant lasts, how recent a re-authentication must be for a sensitive act.
namespace Vauban.Access;

public sealed record AccessOptions
{
    /// <summary>An encounter, appointment, care team or lab result within this many days before now makes a care relationship.</summary>
    public TimeSpan CareWindowPast { get; init; } = TimeSpan.FromDays(180);

    /// <summary>… or within this many days after now (upcoming appointments).</summary>
    public TimeSpan CareWindowAhead { get; init; } = TimeSpan.FromDays(90);

    /// <summary>How long a break-the-glass grant lasts.</summary>
    public TimeSpan BreakGlassDuration { get; init; } = TimeSpan.FromHours(4);

    /// <summary>A sensitive act (break-the-glass) needs both factors proven within this time.</summary>
    public TimeSpan ReauthenticationMaxAge { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long an allowed (principal, patient) decision is remembered.</summary>
    public TimeSpan DecisionCacheLifetime { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a refusal is remembered (a new relationship written through another server shows within this time).</summary>
    public TimeSpan RefusalCacheLifetime { get; init; } = TimeSpan.FromSeconds(5);

    public void Validate()
    {
        if (CareWindowPast < TimeSpan.Zero || CareWindowAhead < TimeSpan.Zero) throw new VaubanConfigurationException("The care-relationship window cannot be negative.");
        if (BreakGlassDuration <= TimeSpan.Zero || BreakGlassDuration > TimeSpan.FromHours(24)) throw new VaubanConfigurationException("A break-the-glass grant lasts between one minute and 24 hours.");
        if (ReauthenticationMaxAge <= TimeSpan.Zero) throw new VaubanConfigurationException("The re-authentication age must be positive.");
        if (DecisionCacheLifetime < TimeSpan.Zero || DecisionCacheLifetime > TimeSpan.FromMinutes(5)) throw new VaubanConfigurationException("The policy decision cache lasts at most 5 minutes.");
        if (RefusalCacheLifetime < TimeSpan.Zero || RefusalCacheLifetime > TimeSpan.FromSeconds(30)) throw new VaubanConfigurationException("Refusals are remembered at most 30 seconds.");
    }
}
