// The security officer's console, decided once for both of its faces: the JSON API (/admin/guard: GuardAdminEndpoints,
// ExportAdminEndpoints) and the server-rendered pages (/security). Who may enter and how a refusal is audited, how a list
// read is audited, which acts need both factors proven again, the context the officer's acts are written under, and what
// an administrator is not shown — so that the pages and the API cannot drift apart, and neither has a second path to the
// Core services that acknowledge, release and decide.
using Vauban.Access;
using Vauban.Audit;
using Vauban.Guard;

namespace Vauban.Web;

/// <summary>Whether a request may use the console: <see cref="Message"/> says why not.</summary>
internal sealed record ConsoleAdmission(int Status, string? Message)
{
    public static readonly ConsoleAdmission Admitted = new(StatusCodes.Status200OK, null);

    public bool IsAdmitted => Message is null;
}

internal static partial class GuardConsole
{
    /// <summary>The officer's sensitive acts (a release, an acknowledgement, an export decision) need both factors proven within this.</summary>
    public static readonly TimeSpan ActReauthentication = TimeSpan.FromMinutes(5);

    public const string NoAlertAcknowledged = "None of these is an unacknowledged alert of your establishment.";

    /// <summary>What an administrator is told of the alerts left: a canary's is the security officer's to acknowledge.</summary>
    public static string CanariesAreTheOfficers(HttpContext http) =>
        RecordsGuard.MayActOnCanaries(OfficerAccess(http).Principal) ? "" : " A canary's alert is the security officer's to acknowledge, and stays on her console.";
    public const string NotContained = "This principal is not contained in your establishment.";

    /// <summary>Why an administrator's release was refused (nothing was released).</summary>
    public static string CanaryReleaseRefused(GuardRelease refused)
    {
        ArgumentNullException.ThrowIfNull(refused);
        if (refused.ByAuditLog == refused.ByCanary) return AuditLogReleaseRefused;
        return refused.Containments == 1
            ? "A canary's containment is the security officer's to release: this one was caused by a canary patient, and stays in force until she has reviewed it."
            : $"A canary's containment is the security officer's to release: {refused.ByCanary} of the {refused.Containments} containments this release covers "
              + "were caused by a canary patient, so none was released; they stay in force until she has reviewed them.";
    }

    /// <summary>What an administrator is shown in place of the Release button of a containment a canary caused.</summary>
    public const string CanaryHeldForOfficer = "Caused by a canary: the security officer's to release.";

    /// <summary>Why an administrator's release of a security officer contained for reading the audit log was refused.</summary>
    public const string AuditLogReleaseRefused = "A security officer contained for reading the audit log is released by another security officer, or by the "
        + "operator at the server (vauban guard release), not by an administrator: nothing was released.";

    /// <summary>What an administrator is shown in place of the Release button of a security officer held for reading the audit log.</summary>
    public const string AuditLogHeldForOfficer = "Read the audit log beyond the officer's levels: another security officer's to release.";

    /// <summary>What this person is shown in place of the Release button of <paramref name="held"/>.</summary>
    public static string HeldFor(HttpContext http, Containment held) =>
        RecordsGuard.IsOwn(OfficerAccess(http).Principal, held) ? OwnHeld
        : held.Cause == ContainmentCauses.AuditLog ? AuditLogHeldForOfficer : CanaryHeldForOfficer;

    /// <summary>Whether this person's release of <paramref name="principal"/> would go through: not when it covers a containment a
    /// canary caused and the person is not the security officer (<see cref="RecordsGuard.MayActOnCanaries"/>, which decides).</summary>
    public static bool MayRelease(HttpContext http, string principal, IEnumerable<Containment> active)
    {
        var actor = OfficerAccess(http).Principal;
        var covered = active.Where(c => RecordsGuard.Covers(principal, c)).ToList();
        return !covered.Any(c => RecordsGuard.IsOwn(actor, c)) && (RecordsGuard.MayActOnCanaries(actor) || !covered.Any(c => c.OfficersToRelease));
    }

    /// <summary>Shown in place of the Release button for a containment of the person herself.</summary>
    public const string OwnHeld = "Yours: another security officer, or the operator at the server, releases it.";

    /// <summary>Why a release of one's own containment was refused.</summary>
    public const string OwnReleaseRefused = "No one releases their own containment: another security officer reviews it and releases it at the security console, "
        + "or the operator at the server (vauban guard release). Nothing was released.";

    /// <summary>
    /// The console's door, for the act named (as it goes on the chain: "GET /admin/guard/alerts", "POST /security?handler=release"):
    /// a fully signed-in security officer or administrator whom the guard does not hold. Anyone else signed in is turned away
    /// on the chain (403), as is a contained officer (423: a stolen session the guard suspended cannot release itself).
    /// </summary>
    public static async Task<ConsoleAdmission> AdmitAsync(VaubanStore store, HttpContext http, string act)
    {
        if (http.FullPerson() is not { User: { } user })
            return new(StatusCodes.Status401Unauthorized, "Sign in first (/account/signin) as the establishment's security officer or administrator.");
        if (!IsConsoleRole(user.Role))
        {
            await AuditRefusalAsync(store, http, act, "only the security officer or an administrator");
            return new(StatusCodes.Status403Forbidden, "Only the security officer or an administrator may use the guard's console.");
        }
        if (await store.Guard.ContainedBecauseAsync(http.PersonAccess()!, http.RequestAborted) is { } contained)
        {
            await AuditRefusalAsync(store, http, act, "contained by the guard");
            return new(StatusCodes.Status423Locked, contained);
        }
        return ConsoleAdmission.Admitted;
    }

    /// <summary>The roles the console opens to: the security officer, and the administrator (without the officer's secrets).</summary>
    public static bool IsConsoleRole(StaffRole? role) => role is StaffRole.SecurityOfficer or StaffRole.Administrator;

    public static bool IsOfficer(HttpContext http) => http.FullPerson()?.User?.Role == StaffRole.SecurityOfficer;

    /// <summary>Whether both factors were proven recently enough for a sensitive act (<see cref="ActReauthentication"/>).</summary>
    public static bool HasFreshFactors(HttpContext http) => http.IsFreshlyAuthenticated(ActReauthentication);

    /// <summary>The officer's acts administer the system, never give care: their entries record HSYSADMIN.</summary>
    public static AccessContext OfficerAccess(HttpContext http) => http.PersonAccess()! with { Purpose = KnownPurposes.SystemAdministration };

    /// <summary>An alert's detail or a containment's reason as this person may see it (<see cref="WithoutCanaries"/> but for the officer).</summary>
    public static string Shown(HttpContext http, string text) => IsOfficer(http) ? text : WithoutCanaries(text);

    /// <summary>An alert's detail or a containment's reason as an administrator sees it: a canary is named there by its patient id
    /// (the guard tells the officer which one was read), which only the officer may know.</summary>
    public static string WithoutCanaries(string text) =>
        CanaryReference().Replace(text, "canary patient (named to the security officer)");

    [System.Text.RegularExpressions.GeneratedRegex(@"canary Patient/[A-Za-z0-9\-\.]{1,64}", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex CanaryReference();

    /// <summary>An alert's detail on the console's page: without the last sentence that tells the command line's and the API's way
    /// to act on it (stored for `vauban guard alerts` and GET /admin/guard/alerts, and read there as it was written) — the page
    /// shows its own link or button instead. Alerts raised before this wording ("The explanation they stated: …") too.</summary>
    public static string ForConsole(string detail) => OperatorDirections().Replace(detail, "");

    [System.Text.RegularExpressions.GeneratedRegex(@"\s*(?:Their explanation is kept with the grant|The explanation they stated|Approve or deny): [^\n]*$",
        System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex OperatorDirections();

    /// <summary>Alert ids an acknowledgement may name: between 1 and <see cref="RecordsGuard.MaxAcknowledgedPerCall"/>, each positive.</summary>
    public static bool AreAlertIds(IReadOnlyCollection<long> ids) =>
        ids.Count is > 0 and <= RecordsGuard.MaxAcknowledgedPerCall && ids.All(id => id >= 1);

    /// <summary>Marks reviewed alerts (they leave the list the officer reviews: a stolen console session could hide its own
    /// tracks, hence the fresh factors the caller checks first). The officer's entry commits with the acknowledgement (fail
    /// closed). Returns the ids acknowledged and those that were not an unacknowledged alert of the establishment.</summary>
    public static async Task<(IReadOnlyList<long> Done, IReadOnlyList<long> NotFound)> AcknowledgeAsync(VaubanStore store, HttpContext http, IReadOnlyCollection<long> ids)
    {
        var done = await store.Guard.AcknowledgeAlertsAsync(OfficerAccess(http), ids, http.RequestAborted);
        return (done, ids.Distinct().Except(done).ToList());
    }

    /// <summary>Releases a contained principal: released, not contained, or refused because a canary caused a containment the
    /// release covers and this person is not the security officer (the refusal on the chain). The officer's entry commits with
    /// the release (fail closed: an audit log that cannot be written releases nothing).</summary>
    public static Task<GuardRelease> ReleaseAsync(VaubanStore store, HttpContext http, string principal) =>
        store.Guard.ReleaseAsync(OfficerAccess(http), principal, http.RequestAborted);

    /// <summary>Approves or denies an export awaiting a second person; the refusal's status and words, or null when decided.</summary>
    public static async Task<(int Status, string Message)?> DecideExportAsync(VaubanStore store, HttpContext http, string export, bool approve) =>
        await store.ExportApprovals.DecideAsync(OfficerAccess(http), export, approve, http.RequestAborted) switch
        {
            ExportDecision.Done => null,
            ExportDecision.OwnExport => (StatusCodes.Status403Forbidden, "You asked for this export: another security officer or administrator must decide on it."),
            ExportDecision.NotAllowed => (StatusCodes.Status403Forbidden, "Only the security officer or an administrator decides on exports."),
            _ => (StatusCodes.Status404NotFound, "No export of your establishment awaits approval under this id."),
        };

    /// <summary>A signed-in person turned away from the console is an entry on the chain, as a refusal at the records is: who
    /// tried which of the officer's acts (a release, an approval, the alerts), and why it was refused.</summary>
    public static Task AuditRefusalAsync(VaubanStore store, HttpContext http, string act, string why) =>
        store.Audit.AppendAsync(OfficerAccess(http), AuditAction.Administration, AuditOutcome.MinorFailure,
            null, [new AuditedRecord("console:" + act, null, null)], http.RequestAborted, "guard console refused: " + why);

    /// <summary>Every access is on the chain (DESIGN.md): a list read at the console — alerts, containments, canaries, exports awaiting
    /// approval — is an administrative act of its reader, reviewing the system as a read of the audit log is, appended before the
    /// answer leaves; an audit log that cannot be written answers 503 instead (fail closed, like the records' reads).</summary>
    /// <param name="concerning">What was listed that concerns a patient, under that patient (their access history shows it).</param>
    public static Task AuditReadAsync(VaubanStore store, HttpContext http, string act, int listed, IReadOnlyList<AuditedRecord>? concerning = null) =>
        store.Audit.AppendAsync(OfficerAccess(http), AuditAction.Administration, AuditOutcome.Success,
            null, [new AuditedRecord("console:" + act, null, null), .. concerning ?? []], http.RequestAborted, $"guard console read ({listed} listed)");
}
