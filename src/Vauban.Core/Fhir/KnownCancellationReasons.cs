namespace Vauban.Fhir;

/// <summary>
/// Appointment.cancelationReason codes (FHIR R4, preferred binding): a short choice from the code system
/// http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason, with its official displays, grouped as a desk
/// asks it (the patient, the practitioner, something else). The code system has 32 codes, many of them US-specific
/// (automated reminder system, CMS therapy cap); these are the ones a French hospital's staff say.
/// </summary>
public static class KnownCancellationReasons
{
    public const string System = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";

    /// <summary>One choice: the code, its official display (written into the record), and the words the page shows.</summary>
    public sealed record Reason(string Code, string Display, string Label);

    /// <summary>The choices, by group, in the order the page lists them.</summary>
    public static IReadOnlyList<(string Group, IReadOnlyList<Reason> Reasons)> Groups { get; } =
    [
        ("The patient", [
            new("pat", "Patient", "The patient cancelled"),
            new("pat-fb", "Patient: Feeling Better", "The patient feels better"),
            new("pat-lt", "Patient: Lack of Transportation", "The patient has no transport"),
            new("pat-mv", "Patient: Moved", "The patient has moved"),
            new("pat-dec", "Patient: Deceased", "The patient has died"),
        ]),
        ("The practitioner", [
            new("prov", "Provider", "The practitioner cancelled"),
            new("prov-pers", "Provider: Personal", "The practitioner is away (personal reasons)"),
            new("prov-edu", "Provider: Edu/Meeting", "The practitioner is at a meeting or training"),
            new("prov-hosp", "Provider: Hospitalized", "The practitioner is in hospital"),
        ]),
        ("Other", [
            new("oth-oerr", "Other: Schedule Order Error", "Booked in error"),
            new("oth-room", "Other: Room/Resource Maintenance", "Room or equipment unavailable"),
            new("other", "Other", "Another reason (say which in the comment)"),
        ]),
    ];

    /// <summary>The choice with this code, or null for a code not in the list.</summary>
    public static Reason? Find(string? code) =>
        code is null ? null : Groups.SelectMany(g => g.Reasons).FirstOrDefault(r => string.Equals(r.Code, code, StringComparison.Ordinal));
}
