namespace Vauban.Fhir;

/// <summary>
/// MedicationRequest.statusReason codes (FHIR R4, example binding): why a prescription is stopped, from the code system
/// http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason, with its official displays and the words the page
/// shows. "Another reason" carries no code, only the prescriber's words.
/// </summary>
public static class KnownStopReasons
{
    public const string System = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason";

    /// <summary>The code a choice without one goes by on the page (never written as a coding).</summary>
    public const string Other = "other";

    /// <summary>The choices, in the order the page lists them.</summary>
    public static IReadOnlyList<KnownCancellationReasons.Reason> Reasons { get; } =
    [
        new("salg", "Allergy", "Allergic reaction"),
        new("sintol", "Suspected intolerance", "Not tolerated"),
        new("sddi", "Drug interacts with another drug", "Interacts with another medicine"),
        new("sdupther", "Duplicate therapy", "Duplicates another prescription"),
        new("altchoice", "Try another treatment first", "Another treatment chosen"),
        new("drughigh", "Drug level too high", "Drug level too high"),
        new("hospadm", "Admission to hospital", "Admitted to hospital"),
        new("surg", "Patient scheduled for surgery.", "Surgery planned"),
        new("preg", "Parent is pregnant/breast feeding", "Pregnancy or breastfeeding"),
        new(Other, "", "Another reason (say which in the comment)"),
    ];

    /// <summary>The choice with this code, or null for a code not in the list.</summary>
    public static KnownCancellationReasons.Reason? Find(string? code) =>
        code is null ? null : Reasons.FirstOrDefault(r => string.Equals(r.Code, code, StringComparison.Ordinal));
}
