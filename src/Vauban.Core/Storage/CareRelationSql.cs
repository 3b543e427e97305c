// Care relationships, computed in SQL from the references and dates of care that the index already
// stores in clear: nothing is decrypted to decide. A person (acting as a Practitioner, and for a service
// Organization) is related to a patient when
//   - an Encounter, Appointment, CareTeam, Observation or DiagnosticReport of the same tenant names both
//     the patient and the person (or their service), dated within the window (a CareTeam without a
//     period counts as current); or
//   - the patient names the person (or their service) as general practitioner; or
//   - the person holds an unexpired break-the-glass grant for the patient.
// A record whose current version was written under a grant (grant_writes) is no source: the grant is personal and ends.
// The codes are the stable search-parameter codes of SearchParameters (never renumbered).
using System.Data.Common;

namespace Vauban.Storage;

internal static class CareRelationSql
{
    // References to the patient: Encounter.subject, CareTeam.subject, Appointment.participant.actor,
    // Observation.subject, DiagnosticReport.subject.
    private const string PatientParams = "501, 601, 702, 901, 1001";
    // References to the carer: Encounter.participant.individual and .serviceProvider, Appointment.participant.actor,
    // CareTeam.participant.member, Observation.performer, DiagnosticReport.performer.
    private const string CarerParams = "503, 507, 702, 602, 906, 1007";
    // Dates of care: Encounter.period, Appointment.start, CareTeam.period, Observation.effective, DiagnosticReport.effective.
    private const string DateParams = "502, 701, 605, 903, 1003";
    private const int CareTeamType = 6;
    private const int CareTeamDate = 605;
    private const int GeneralPractitioner = 111;
    private const int PatientType = 1;

    /// <summary>
    /// A boolean SQL expression: the patient whose id is <paramref name="patient"/> (an SQL expression) is
    /// related to the actors. Adds its parameters to <paramref name="command"/> under <paramref name="prefix"/>.
    /// </summary>
    public static string Related(DbCommand command, StorageEngine engine, string patient, string prefix, long tenant, IReadOnlyList<string> actors,
        long windowFrom, long windowTo, string principal, long now)
    {
        command.With(prefix + "t", tenant).With(prefix + "wf", windowFrom).With(prefix + "wt", windowTo).With(prefix + "pp", principal).With(prefix + "now", now);
        var carers = command.InList(engine, "b.target", prefix + "a", actors);
        var gps = command.InList(engine, "g.target", prefix + "g", actors);
        var t = "@" + prefix + "t";
        return $"""
            (EXISTS (SELECT 1 FROM idx_ref a JOIN resources s ON s.rid = a.rid
                WHERE a.target = 'Patient/' || {patient} AND a.param IN ({PatientParams}) AND s.tenant_id = {t}
                  AND NOT EXISTS (SELECT 1 FROM grant_writes w WHERE w.rid = a.rid)
                  AND EXISTS (SELECT 1 FROM idx_ref b WHERE {carers} AND b.param IN ({CarerParams}) AND b.rid = a.rid)
                  AND (EXISTS (SELECT 1 FROM idx_date cd WHERE cd.rid = a.rid AND cd.param IN ({DateParams}) AND cd.hi >= @{prefix}wf AND cd.lo <= @{prefix}wt)
                       OR (s.type = {CareTeamType} AND NOT EXISTS (SELECT 1 FROM idx_date ce WHERE ce.rid = a.rid AND ce.param = {CareTeamDate}))))
             OR EXISTS (SELECT 1 FROM resources q WHERE q.tenant_id = {t} AND q.type = {PatientType} AND q.id = {patient} AND q.deleted = 0
                  AND EXISTS (SELECT 1 FROM idx_ref g WHERE {gps} AND g.param = {GeneralPractitioner} AND g.rid = q.rid))
             OR EXISTS (SELECT 1 FROM break_glass k WHERE k.tenant_id = {t} AND k.principal = @{prefix}pp AND k.patient = {patient} AND k.expires_at > @{prefix}now))
            """;
    }

    public static async Task<bool> IsRelatedAsync(StoreDatabase database, long tenant, IReadOnlyList<string> actors, string patient,
        long windowFrom, long windowTo, string principal, long now, CancellationToken cancellationToken)
    {
        using var command = database.NewCommand();
        command.With("pt", patient);
        command.CommandText = "SELECT CASE WHEN " + Related(command, database.Engine, "@pt", "r", tenant, actors, windowFrom, windowTo, principal, now) + " THEN 1 ELSE 0 END";
        return await database.QueryAsync(command, async (reader, ct) => await reader.ReadAsync(ct) && Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture) == 1,
            cancellationToken);
    }
}
