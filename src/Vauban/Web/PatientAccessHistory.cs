// A patient's access history as people read it, the same for `vauban audit patient` and the security console's
// /security/access: every audit entry that names the patient, newest first, each as one line — when, who (name, role,
// service by name), what, which records, why, outcome, from where. Read through the audit log's search, which authorizes
// the reader (the security officer, or the operator at the command line), has the guard weigh the whole history at once
// and puts it on the chain, shown or withheld.
using Vauban.Access;
using Vauban.Audit;
using Vauban.Guard;

namespace Vauban.Web;

/// <summary>One line of a patient's access history.</summary>
public sealed record AccessHistoryLine(DateTimeOffset At, string Who, string Role, string Service, string What, string Records, string Why, string Outcome, string From);

/// <summary>The lines shown, newest first, and whether older ones were left out; or, with no line, the guard's refusal.</summary>
public sealed record AccessHistory(IReadOnlyList<AccessHistoryLine> Lines, bool More)
{
    /// <summary>The guard held the history (the reader must prove both factors again, or is contained): nothing is shown, and
    /// every entry withheld is on the chain as such.</summary>
    public GuardDecision? Held { get; init; }
}

internal static class PatientAccessHistory
{
    /// <summary>Up to <paramref name="limit"/> lines (1 to <see cref="AuditLog.MaxRead"/>) of <paramref name="patient"/>'s history,
    /// read by <paramref name="reader"/> (whose services' names are read too, through the door); null when the reader may not read
    /// the audit log (the refusal is on the chain); no line and the refusal when the guard held the history.</summary>
    public static async Task<AccessHistory?> ReadAsync(VaubanStore store, AccessContext reader, string patient, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, AuditLog.MaxRead);
        // One reading of the log, however many pages the store reads it in: a page held after the first must not leave the
        // earlier ones on the chain as read when the reader is shown none of them.
        var page = await store.AuditLog.SearchAllAsync(reader, new AuditQuery { Patient = patient, Count = limit }, cancellationToken);
        if (page is null) return null;
        if (page.Held is { } held) return new AccessHistory([], false) { Held = held };
        var entries = page.Entries;
        var services = await ServiceLabels.ReadAsync(store, reader, entries.Select(e => e.Detail.Service), cancellationToken);
        var lines = entries.Select(e =>
        {
            var d = e.Detail;
            var why = AuditDescriptions.Purpose(e.Action, d.Purpose);
            return new AccessHistoryLine(e.At, d.PrincipalName ?? d.Principal, d.Role ?? d.PrincipalKind, d.Service is null ? "-" : services[d.Service],
                AuditDescriptions.Action(e.Action), string.Join(' ', d.Records), d.Note is null ? why : why + " — " + d.Note, AuditDescriptions.Outcome(e.Outcome), d.Source ?? "-");
        }).ToList();
        return new AccessHistory(lines, page.More);
    }
}
