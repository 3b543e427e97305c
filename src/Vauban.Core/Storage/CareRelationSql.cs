// Care relationships, computed in SQL from the references and dates of care that the index already
// stores in clear: nothing is decrypted to decide. A person (acting as a Practitioner, and for a service
// Organization) is related to a patient when
//   - an Encounter, Appointment, CareTeam, Observation or DiagnosticReport of the same tenant names both
//     the patient and the person (or their service), dated within the window (a CareTeam without a
//     period counts as current); or
//   - the patient names the person (or their service) as general practitioner; or
//   - the person holds an unexpired break-the-glass grant for the patient: the caller gives the patients of those grants whose rows
//     verify (ADR 0014), read and checked in the process (Access.AccessPolicy.GrantsAsync) — never a join of break_glass here, which
//     would believe a row written in the database outside the ceremony.
// A record whose current version was written under a grant (grant_writes) is no source: the grant is personal and ends.
// Nor is a record voided by its status — an appointment cancelled, missed or booked in error, an encounter cancelled, a record
// entered in error: one booking made by the front desk with the wrong practitioner, cancelled at once, would otherwise open the
// patient's whole record to that practitioner for the whole window. Statuses are tokens, indexed only as the establishment's
// blind-index hashes: the caller gives the hashes of those statuses (VoidedStatuses), compared like any token search.
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

    /// <summary>The statuses that void a record as a source of care, by type (R4's value sets).</summary>
    private static readonly (string Type, string[] Statuses)[] Voiding =
    [
        ("Appointment", ["cancelled", "noshow", "entered-in-error"]),
        ("Encounter", ["cancelled", "entered-in-error"]),
        ("CareTeam", ["entered-in-error"]),
        ("Observation", ["cancelled", "entered-in-error"]),
        ("DiagnosticReport", ["cancelled", "entered-in-error"]),
    ];

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Crypto.BlindIndex, long[]> VoidedByIndex = [];

    /// <summary>The establishment's hashes of the statuses that void a record as a source of care: the hash a token search of
    /// the status code alone looks for (any system).</summary>
    public static IReadOnlyList<long> VoidedStatuses(Crypto.BlindIndex index) => VoidedByIndex.GetValue(index, static index =>
    [
        .. Voiding.SelectMany(v => v.Statuses.Select(status =>
            Records.Search.SearchParameters.TryGet(v.Type, "status", out var parameter)
                ? Records.Search.IndexEntries.CodeHash(index, parameter, status)
                : throw new InvalidOperationException($"{v.Type} has no status search parameter."))),
    ]);

    /// <summary>
    /// A boolean SQL expression: the patient whose id is <paramref name="patient"/> (an SQL expression) is
    /// related to the actors. Adds its parameters to <paramref name="command"/> under <paramref name="prefix"/>.
    /// </summary>
    /// <param name="voided">The establishment's <see cref="VoidedStatuses"/>.</param>
    /// <param name="granted">The patients of the actors' unexpired break-the-glass grants whose rows verify (none: the empty list).</param>
    public static string Related(DbCommand command, StorageEngine engine, string patient, string prefix, long tenant, IReadOnlyList<string> actors,
        long windowFrom, long windowTo, IReadOnlyList<long> voided, IReadOnlyList<string> granted)
    {
        command.With(prefix + "t", tenant).With(prefix + "wf", windowFrom).With(prefix + "wt", windowTo);
        var carers = command.InList(engine, "b.target", prefix + "a", actors);
        var gps = command.InList(engine, "g.target", prefix + "g", actors);
        var t = "@" + prefix + "t";
        // PostgreSQL holds a record's hashes on its row; SQLite in idx_hash, by hash then record.
        string notVoided;
        if (engine == StorageEngine.Postgres)
        {
            command.With(prefix + "v", voided.ToArray());
            notVoided = $"NOT (s.hashes && @{prefix}v)";
        }
        else
        {
            notVoided = $"NOT EXISTS (SELECT 1 FROM idx_hash v WHERE v.rid = a.rid AND {command.InList(engine, "v.h", prefix + "v", voided)})";
        }
        return $"""
            (EXISTS (SELECT 1 FROM idx_ref a JOIN resources s ON s.rid = a.rid
                WHERE a.target = 'Patient/' || {patient} AND a.param IN ({PatientParams}) AND s.tenant_id = {t}
                  AND NOT EXISTS (SELECT 1 FROM grant_writes w WHERE w.rid = a.rid)
                  AND {notVoided}
                  AND EXISTS (SELECT 1 FROM idx_ref b WHERE {carers} AND b.param IN ({CarerParams}) AND b.rid = a.rid)
                  AND (EXISTS (SELECT 1 FROM idx_date cd WHERE cd.rid = a.rid AND cd.param IN ({DateParams}) AND cd.hi >= @{prefix}wf AND cd.lo <= @{prefix}wt)
                       OR (s.type = {CareTeamType} AND NOT EXISTS (SELECT 1 FROM idx_date ce WHERE ce.rid = a.rid AND ce.param = {CareTeamDate}))))
             OR EXISTS (SELECT 1 FROM resources q WHERE q.tenant_id = {t} AND q.type = {PatientType} AND q.id = {patient} AND q.deleted = 0
                  AND EXISTS (SELECT 1 FROM idx_ref g WHERE {gps} AND g.param = {GeneralPractitioner} AND g.rid = q.rid))
             {(granted.Count == 0 ? "" : "OR " + command.InList(engine, patient, prefix + "k", granted))})
            """;
    }

    /// <summary>Whether the patient is related to the actors by a record of care or as their general practitioner (a grant, the caller
    /// has already asked of the grants it holds).</summary>
    public static async Task<bool> IsRelatedAsync(StoreDatabase database, long tenant, IReadOnlyList<string> actors, string patient,
        long windowFrom, long windowTo, IReadOnlyList<long> voided, CancellationToken cancellationToken)
    {
        using var command = database.NewCommand();
        command.With("pt", patient);
        command.CommandText = "SELECT CASE WHEN " + Related(command, database.Engine, "@pt", "r", tenant, actors, windowFrom, windowTo, voided, []) + " THEN 1 ELSE 0 END";
        // Asked during a person's write too (of committed data, so not on the transaction's connection): a look-up (QueryLookupAsync).
        return await database.QueryLookupAsync(command, async (reader, ct) => await reader.ReadAsync(ct) && Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture) == 1,
            cancellationToken);
    }
}
