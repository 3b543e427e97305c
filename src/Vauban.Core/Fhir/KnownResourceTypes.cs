using System.Collections.Frozen;

namespace Vauban.Fhir;

/// <summary>The FHIR R4 resource types Vauban stores and serves.</summary>
public static class KnownResourceTypes
{
    public const string Patient = "Patient";
    public const string Practitioner = "Practitioner";
    public const string PractitionerRole = "PractitionerRole";
    public const string Organization = "Organization";
    public const string Encounter = "Encounter";
    public const string CareTeam = "CareTeam";
    public const string Appointment = "Appointment";
    public const string MedicationRequest = "MedicationRequest";
    public const string Observation = "Observation";
    public const string DiagnosticReport = "DiagnosticReport";
    public const string DocumentReference = "DocumentReference";
    public const string Coverage = "Coverage";
    public const string Invoice = "Invoice";

    // Kept in step with tools/fhir-model/generate.mjs, which emits the structure of exactly these types;
    // a test fails when the two disagree.
    public static IReadOnlySet<string> Supported { get; } = new[]
    {
        Patient, Practitioner, PractitionerRole, Organization, Encounter, CareTeam, Appointment,
        MedicationRequest, Observation, DiagnosticReport, DocumentReference, Coverage, Invoice,
    }.ToFrozenSet(StringComparer.Ordinal);
}
