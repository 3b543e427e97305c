// What each staff role may do with each resource type, and how far it reaches: only the patients the
// person has a care relationship with, or every patient of the establishment. The table is the policy's
// role half; care relationships (CareRelationships) are the other half. See docs/adr/0006.
using Vauban.Fhir;

namespace Vauban.Access;

/// <summary>How far a role reaches for a type: patients in a care relationship only, or the whole establishment.</summary>
public enum Reach { None, Related, Tenant }

public readonly record struct RoleGrant(Permission Permissions, Reach Reach);

public static class RolePermissions
{
    private const Permission Rs = Permission.Read | Permission.Search;
    private const Permission Crus = Permission.Create | Permission.Read | Permission.Update | Permission.Search;
    private const Permission Cruds = Crus | Permission.Delete;

    private static readonly string[] Directory = [KnownResourceTypes.Practitioner, KnownResourceTypes.PractitionerRole, KnownResourceTypes.Organization];

    private static readonly Dictionary<StaffRole, Dictionary<string, RoleGrant>> Table = new()
    {
        // Physicians: the whole clinical record of their patients, and "entered in error" deletes.
        [StaffRole.Physician] = Grants(Rs, new()
        {
            [KnownResourceTypes.Patient] = new(Crus, Reach.Related),
            [KnownResourceTypes.Encounter] = new(Cruds, Reach.Related),
            [KnownResourceTypes.CareTeam] = new(Cruds, Reach.Related),
            [KnownResourceTypes.Appointment] = new(Crus, Reach.Related),
            [KnownResourceTypes.MedicationRequest] = new(Cruds, Reach.Related),
            [KnownResourceTypes.Observation] = new(Cruds, Reach.Related),
            [KnownResourceTypes.DiagnosticReport] = new(Cruds, Reach.Related),
            [KnownResourceTypes.DocumentReference] = new(Cruds, Reach.Related),
            [KnownResourceTypes.Coverage] = new(Rs, Reach.Related),
        }),
        // Nurses: read the clinical record of their patients, record observations and nursing notes.
        [StaffRole.Nurse] = Grants(Rs, new()
        {
            [KnownResourceTypes.Patient] = new(Rs, Reach.Related),
            [KnownResourceTypes.Encounter] = new(Rs, Reach.Related),
            [KnownResourceTypes.CareTeam] = new(Rs, Reach.Related),
            [KnownResourceTypes.Appointment] = new(Rs, Reach.Related),
            [KnownResourceTypes.MedicationRequest] = new(Rs, Reach.Related),
            [KnownResourceTypes.Observation] = new(Crus, Reach.Related),
            [KnownResourceTypes.DiagnosticReport] = new(Rs, Reach.Related),
            [KnownResourceTypes.DocumentReference] = new(Crus, Reach.Related),
            [KnownResourceTypes.Coverage] = new(Rs, Reach.Related),
        }),
        // Admissions and scheduling: identity across the establishment (a patient at the desk must be found),
        // scheduling for their service's patients; never clinical content.
        [StaffRole.Secretary] = Grants(Rs, new()
        {
            [KnownResourceTypes.Patient] = new(Crus, Reach.Tenant),
            [KnownResourceTypes.Coverage] = new(Crus, Reach.Tenant),
            [KnownResourceTypes.Appointment] = new(Crus, Reach.Related),
            [KnownResourceTypes.Encounter] = new(Crus, Reach.Related),
        }),
        // The laboratory: identity, lab orders and results of the patients whose results it produces.
        [StaffRole.Biologist] = Grants(Rs, new()
        {
            [KnownResourceTypes.Patient] = new(Rs, Reach.Related),
            [KnownResourceTypes.Observation] = new(Crus, Reach.Related),
            [KnownResourceTypes.DiagnosticReport] = new(Crus, Reach.Related),
        }),
        // Billing: identity, coverage and invoices, establishment-wide; nothing clinical.
        [StaffRole.Billing] = Grants(Rs, new()
        {
            [KnownResourceTypes.Patient] = new(Rs, Reach.Tenant),
            [KnownResourceTypes.Coverage] = new(Crus, Reach.Tenant),
            [KnownResourceTypes.Invoice] = new(Cruds, Reach.Tenant),
        }),
        // The security officer and the administrator never see patient data through the records (the officer
        // reads the audit log); the administrator maintains the directory.
        [StaffRole.SecurityOfficer] = Grants(Rs, []),
        [StaffRole.Administrator] = Grants(Cruds, []),
    };

    private static Dictionary<string, RoleGrant> Grants(Permission directory, Dictionary<string, RoleGrant> patientData)
    {
        foreach (var type in Directory) patientData[type] = new RoleGrant(directory, Reach.Tenant);
        return patientData;
    }

    public static RoleGrant For(StaffRole role, string type) =>
        Table.TryGetValue(role, out var grants) && grants.TryGetValue(type, out var grant) ? grant : new RoleGrant(Permission.None, Reach.None);

    /// <summary>Roles that keep their service's agendas: they book appointments and reach every patient's identity (the front desk).
    /// A search of one practitioner's appointments by such a person, when the practitioner belongs to her service, is not filtered
    /// by the rule of care (ADR 0006, revised 2026-12-07).</summary>
    public static bool KeepsServiceAgendas(StaffRole role) =>
        For(role, KnownResourceTypes.Appointment).Permissions.HasFlag(Permission.Create) && For(role, KnownResourceTypes.Patient).Reach == Reach.Tenant;

    /// <summary>Roles that care for patients may open a record outside their relationships by breaking the glass.</summary>
    public static bool MayBreakTheGlass(StaffRole role) => role is StaffRole.Physician or StaffRole.Nurse or StaffRole.Biologist or StaffRole.Secretary;
}
