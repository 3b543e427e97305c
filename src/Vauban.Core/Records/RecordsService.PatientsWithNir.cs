// The patients a NIR/INS names, for whoever reads the audit log (the security officer at the console, the operator) and is
// asked by a patient, who gives the number and not the record's id, for their access history (GDPR art. 15). The officer's
// role reads no patient record (RolePermissions), so she had to ask a clinician to find the record: one access more, and the
// clinician learned of the inquiry. Here only the ids of the records carrying the number come back — found through the blind
// index as a search by identifier is, no body read or opened, nothing else of the patient —; the look-up is weighed by the
// guard as a reading of the audit log is (it leads to one), and is on the chain naming each patient found, so it is on their
// own access history, or as a refusal.
using Vauban.Access;
using Vauban.Audit;
using Vauban.Fhir;
using Vauban.Guard;
using Vauban.Records.Search;

namespace Vauban.Records;

/// <summary>The records (ids) of the patients with one NIR — several when the patient was registered twice —; or, with
/// none, the guard's refusal.</summary>
public sealed record PatientsWithNir(IReadOnlyList<string> Ids)
{
    public GuardDecision? Held { get; init; }
}

public sealed partial class RecordsService
{
    /// <summary>Records a look-up lists at most: far more than the duplicates of one person.</summary>
    public const int MaxPatientsWithNir = 50;

    /// <summary>The patients whose NIR/INS is <paramref name="nir"/> (a valid NIR, spaces allowed), for a reader of the audit log
    /// (<see cref="AuditLog.MayRead"/>); null, with the refusal on the chain, for anyone else.</summary>
    /// <exception cref="ArgumentException"><paramref name="nir"/> is not a valid NIR (the caller says why first: <see cref="Nir.TryValidate"/>).</exception>
    public async Task<PatientsWithNir?> PatientsWithNirAsync(AccessContext context, string nir, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var compact = Nir.Normalize(nir) ?? throw new ArgumentException("Not a valid NIR.", nameof(nir));
        // Reviewing the system, never care: HSYSADMIN, as the reading of the log it leads to.
        context = context with { Purpose = KnownPurposes.SystemAdministration };
        const string Patient = KnownResourceTypes.Patient;
        if (!AuditLog.MayRead(context))
        {
            await AuditRefusalAsync(context, Interaction.Search, Patient, null, "a patient is looked up by NIR for their access history by the audit log's reader only", cancellationToken);
            return null;
        }
        var keys = await _keys.ForTenantAsync(context.Tenant.Id, cancellationToken);
        var issues = new List<Issue>();
        var query = SearchQuery.Parse(Patient, [new("identifier", compact)], keys, false, issues, Today(), context.ServerBase)
            ?? throw new InvalidOperationException("A NIR's identifier search did not parse: " + string.Join("; ", issues.Select(i => i.Diagnostics)));
        query.Count = MaxPatientsWithNir;
        // No policy filter: the role reads no Patient; what leaves is the ids alone, for the audit log's reading.
        List<string> ids = [.. (await UnfilteredRowsAsync(context, query, cancellationToken)).Select(r => r.Id).Distinct(StringComparer.Ordinal).Take(MaxPatientsWithNir)];
        var decision = await _guard.AdmitAsync(context, new GuardRequest(Interaction.Search, Patient, ids.Count, ids, ids) { OfTheAuditLog = true }, cancellationToken);
        if (decision.Delay > TimeSpan.Zero) await Task.Delay(decision.Delay, cancellationToken);
        var records = ids.Select(id => new AuditedRecord(Patient, id, id)).ToList();
        if (!decision.Admitted)
        {
            await AuditAsync(context, AuditAction.Containment, AuditOutcome.MinorFailure, Patient, records, cancellationToken,
                note: $"{NirLookupNote}: guard {decision.Verdict}");
            return new PatientsWithNir([]) { Held = decision };
        }
        await AuditAsync(context, Interaction.Search, AuditOutcome.Success, Patient, records, cancellationToken,
            note: $"{NirLookupNote}: {ids.Count} record(s) found, ids only");
        return new PatientsWithNir(ids);
    }

    /// <summary>The note of a look-up's entry: what it was for, never the number.</summary>
    public const string NirLookupNote = "patient looked up by NIR for their access history";
}
