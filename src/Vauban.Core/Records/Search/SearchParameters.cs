// The search parameters Vauban supports, per resource type, with the element paths their values come
// from (a simplified form of the FHIRPath expressions in the R4 specification). Codes are stable
// numbers: they are bound into blind-index hashes and stored in index rows — never renumber.
using Vauban.Fhir;
using Vauban.Fhir.Validation;

namespace Vauban.Records.Search;

internal enum SearchParamKind { String, Token, Reference, Date }

internal enum TokenNormalization { None, Phone, Email, Identifier }

internal sealed record SearchParameter(string ResourceType, string Name, SearchParamKind Kind, int Code, string[] Paths)
{
    /// <summary>Dates that identify a person (birth date) are stored only as blind year/month/day hashes.</summary>
    public bool BlindDate { get; init; }

    /// <summary>For references: the target types this parameter matches (null: any).</summary>
    public IReadOnlyList<string>? Targets { get; init; }

    /// <summary>Whether a reference this parameter matches may point at a record of <paramref name="type"/>.</summary>
    public bool MayReferTo(string type) => Targets is null || Targets.Contains(type);

    /// <summary>Values are stored under this other parameter of the same type (e.g. patient = subject restricted to Patient).</summary>
    public string? AliasOf { get; init; }

    /// <summary>This parameter searches the union of these parameters (e.g. name = family | given).</summary>
    public IReadOnlyList<string>? UnionOf { get; init; }

    public TokenNormalization Normalization { get; init; }

    /// <summary>For a token over a <c>code</c> element: the code system of its required binding. Such values are stored without a
    /// system, which is implicit: <c>system|code</c> matches them under this system only.</summary>
    public string? CodeSystem { get; init; }

    /// <summary>Stored only to serve a union (e.g. the lines of "address"); not searchable by its own name.</summary>
    public bool Hidden { get; init; }

    public string Description { get; init; } = "";

    /// <summary>What a date of care (stored as it is, compared as a range) takes, as the CapabilityStatement says it.</summary>
    internal const string DateOfCare = "The date as recorded, compared as a range (eq, ne, gt, lt, ge, le, sa, eb; ap: within a tenth of the time between the date and today on each side, at least a day). "
        + WithoutZone;

    /// <summary>What a date or a time without a zone means, stored or searched (FhirDateRange), as the CapabilityStatement says it.</summary>
    internal const string WithoutZone = "A date, month or year without a zone is Paris's (Europe/Paris: 2026-12-07 is that day in Paris, 23 or 25 hours the days "
        + "the clocks change), and so is a time without one; 02:30 the night the clocks go back is the first, in summer time, and one they skip "
        + "is the instant they jump at and covers no time";

    public bool IsStored => AliasOf is null && UnionOf is null;
}

internal static class SearchParameters
{
    private static readonly Dictionary<string, Dictionary<string, SearchParameter>> ByType = Build();

    public static IReadOnlyDictionary<string, SearchParameter> For(string type) =>
        ByType.TryGetValue(type, out var parameters) ? parameters : new Dictionary<string, SearchParameter>();

    public static bool TryGet(string type, string name, out SearchParameter parameter)
    {
        parameter = null!;
        return ByType.TryGetValue(type, out var parameters) && parameters.TryGetValue(name, out parameter!);
    }

    /// <summary>The parameters whose values are extracted and stored for a type.</summary>
    public static IReadOnlyList<SearchParameter> Stored(string type) => StoredByType.TryGetValue(type, out var stored) ? stored : [];

    private static readonly Dictionary<string, SearchParameter[]> StoredByType =
        ByType.ToDictionary(p => p.Key, p => p.Value.Values.Where(v => v.IsStored).ToArray(), StringComparer.Ordinal);

    private static Dictionary<string, Dictionary<string, SearchParameter>> Build()
    {
        var all = new List<SearchParameter>();
        void Add(SearchParameter p) => all.Add(p);
        SearchParameter S(string type, string name, int code, params string[] paths) => new(type, name, SearchParamKind.String, code, paths);
        SearchParameter T(string type, string name, int code, params string[] paths) => new(type, name, SearchParamKind.Token, code, paths);
        SearchParameter R(string type, string name, int code, params string[] paths) => new(type, name, SearchParamKind.Reference, code, paths);
        SearchParameter D(string type, string name, int code, params string[] paths) => new(type, name, SearchParamKind.Date, code, paths) { Description = SearchParameter.DateOfCare };
        SearchParameter Alias(string type, string name, SearchParamKind kind, string of, params string[] targets) =>
            new(type, name, kind, 0, []) { AliasOf = of, Targets = targets.Length == 0 ? null : targets };
        SearchParameter Union(string type, string name, SearchParamKind kind, params string[] of) =>
            new(type, name, kind, 0, []) { UnionOf = of };

        // Patient (codes 1xx)
        Add(S("Patient", "family", 101, "name.family") with { Description = "A portion of the family name (starts-with, accent- and case-insensitive)" });
        Add(S("Patient", "given", 102, "name.given") with { Description = "A portion of a given name" });
        Add(Union("Patient", "name", SearchParamKind.String, "family", "given") with { Description = "A portion of the family or a given name" });
        Add(D("Patient", "birthdate", 103, "birthDate") with { BlindDate = true, Description = "The patient's date of birth (eq and ne of any date, ranges by year/month/day from 1880 to this year; ap: within a tenth of the time between the date and today on each side, at least a day). A calendar date, the same in every zone; no time" });
        Add(T("Patient", "identifier", 104, "identifier") with { Normalization = TokenNormalization.Identifier, Description = "A patient identifier (INS/NIR, IPP): system|value or value" });
        Add(T("Patient", "gender", 105, "gender") with { CodeSystem = "http://hl7.org/fhir/administrative-gender" });
        Add(T("Patient", "phone", 106, "telecom[system=phone]") with { Normalization = TokenNormalization.Phone, Description = "A phone number (French numbers normalized: +33 6… = 06…)" });
        Add(T("Patient", "email", 107, "telecom[system=email]") with { Normalization = TokenNormalization.Email, Description = "An e-mail address (case-insensitive)" });
        Add(Union("Patient", "address", SearchParamKind.String, "address-line", "address-city", "address-postalcode", "address-country") with { Description = "A portion of any part of the address" });
        Add(S("Patient", "address-line", 114, "address.line") with { Hidden = true });
        Add(S("Patient", "address-city", 109, "address.city"));
        Add(S("Patient", "address-postalcode", 110, "address.postalCode"));
        Add(S("Patient", "address-country", 115, "address.country"));
        Add(R("Patient", "general-practitioner", 111, "generalPractitioner") with { Targets = ["Practitioner", "Organization", "PractitionerRole"] });
        Add(R("Patient", "organization", 112, "managingOrganization") with { Targets = ["Organization"] });
        Add(T("Patient", "active", 113, "active"));
        // Another patient record of the same person (replaced-by, seealso…): indexed so that a linked patient is not deleted
        // from under the link, and must exist when linked.
        Add(R("Patient", "link", 116, "link.other") with { Targets = ["Patient"], Description = "Another patient record of the same person" });

        // Practitioner (2xx)
        Add(S("Practitioner", "family", 201, "name.family"));
        Add(S("Practitioner", "given", 202, "name.given"));
        Add(Union("Practitioner", "name", SearchParamKind.String, "family", "given"));
        Add(T("Practitioner", "identifier", 203, "identifier") with { Normalization = TokenNormalization.Identifier, Description = "An identifier (RPPS, ADELI)" });
        Add(T("Practitioner", "active", 204, "active"));
        Add(T("Practitioner", "phone", 205, "telecom[system=phone]") with { Normalization = TokenNormalization.Phone });
        Add(T("Practitioner", "email", 206, "telecom[system=email]") with { Normalization = TokenNormalization.Email });
        Add(S("Practitioner", "address-city", 207, "address.city"));

        // PractitionerRole (3xx)
        Add(R("PractitionerRole", "practitioner", 301, "practitioner") with { Targets = ["Practitioner"] });
        Add(R("PractitionerRole", "organization", 302, "organization") with { Targets = ["Organization"] });
        Add(T("PractitionerRole", "role", 303, "code"));
        Add(T("PractitionerRole", "specialty", 304, "specialty"));
        Add(T("PractitionerRole", "identifier", 305, "identifier") with { Normalization = TokenNormalization.Identifier });
        Add(T("PractitionerRole", "active", 306, "active"));

        // Organization (4xx)
        Add(S("Organization", "name", 401, "name", "alias"));
        Add(T("Organization", "identifier", 402, "identifier") with { Normalization = TokenNormalization.Identifier, Description = "An identifier (FINESS, SIRET)" });
        Add(T("Organization", "type", 403, "type"));
        Add(T("Organization", "active", 404, "active"));
        Add(S("Organization", "address-city", 405, "address.city"));
        Add(R("Organization", "partof", 406, "partOf") with { Targets = ["Organization"] });

        // Encounter (5xx)
        Add(R("Encounter", "subject", 501, "subject"));
        Add(Alias("Encounter", "patient", SearchParamKind.Reference, "subject", "Patient"));
        Add(D("Encounter", "date", 502, "period"));
        Add(R("Encounter", "participant", 503, "participant.individual"));
        Add(Alias("Encounter", "practitioner", SearchParamKind.Reference, "participant", "Practitioner"));
        Add(T("Encounter", "status", 504, "status") with { CodeSystem = "http://hl7.org/fhir/encounter-status" });
        Add(T("Encounter", "class", 505, "class"));
        Add(T("Encounter", "type", 506, "type"));
        Add(R("Encounter", "service-provider", 507, "serviceProvider") with { Targets = ["Organization"] });
        Add(T("Encounter", "identifier", 508, "identifier") with { Normalization = TokenNormalization.Identifier });

        // CareTeam (6xx)
        Add(R("CareTeam", "subject", 601, "subject"));
        Add(Alias("CareTeam", "patient", SearchParamKind.Reference, "subject", "Patient"));
        Add(R("CareTeam", "participant", 602, "participant.member"));
        Add(T("CareTeam", "status", 603, "status") with { CodeSystem = "http://hl7.org/fhir/care-team-status" });
        Add(T("CareTeam", "category", 604, "category"));
        Add(D("CareTeam", "date", 605, "period"));
        Add(R("CareTeam", "encounter", 606, "encounter") with { Targets = ["Encounter"] });

        // Appointment (7xx)
        Add(D("Appointment", "date", 701, "start"));
        Add(R("Appointment", "actor", 702, "participant.actor"));
        Add(Alias("Appointment", "patient", SearchParamKind.Reference, "actor", "Patient"));
        Add(Alias("Appointment", "practitioner", SearchParamKind.Reference, "actor", "Practitioner"));
        Add(T("Appointment", "status", 703, "status") with { CodeSystem = "http://hl7.org/fhir/appointmentstatus" });
        Add(T("Appointment", "service-type", 704, "serviceType"));
        Add(T("Appointment", "appointment-type", 705, "appointmentType"));
        Add(T("Appointment", "identifier", 706, "identifier") with { Normalization = TokenNormalization.Identifier });

        // MedicationRequest (8xx)
        Add(R("MedicationRequest", "subject", 801, "subject"));
        Add(Alias("MedicationRequest", "patient", SearchParamKind.Reference, "subject", "Patient"));
        Add(D("MedicationRequest", "authoredon", 802, "authoredOn"));
        Add(T("MedicationRequest", "status", 803, "status") with { CodeSystem = "http://hl7.org/fhir/CodeSystem/medicationrequest-status" });
        Add(T("MedicationRequest", "intent", 804, "intent") with { CodeSystem = "http://hl7.org/fhir/CodeSystem/medicationrequest-intent" });
        Add(T("MedicationRequest", "code", 805, "medicationCodeableConcept"));
        Add(R("MedicationRequest", "requester", 806, "requester"));
        Add(R("MedicationRequest", "encounter", 807, "encounter") with { Targets = ["Encounter"] });
        Add(T("MedicationRequest", "identifier", 808, "identifier") with { Normalization = TokenNormalization.Identifier });
        Add(T("MedicationRequest", "category", 809, "category"));

        // Observation (9xx)
        Add(R("Observation", "subject", 901, "subject"));
        Add(Alias("Observation", "patient", SearchParamKind.Reference, "subject", "Patient"));
        Add(T("Observation", "code", 902, "code"));
        Add(D("Observation", "date", 903, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "effectiveTiming"));
        Add(T("Observation", "category", 904, "category"));
        Add(T("Observation", "status", 905, "status") with { CodeSystem = "http://hl7.org/fhir/observation-status" });
        Add(R("Observation", "performer", 906, "performer"));
        Add(R("Observation", "encounter", 907, "encounter") with { Targets = ["Encounter"] });
        Add(T("Observation", "identifier", 908, "identifier") with { Normalization = TokenNormalization.Identifier });

        // DiagnosticReport (10xx)
        Add(R("DiagnosticReport", "subject", 1001, "subject"));
        Add(Alias("DiagnosticReport", "patient", SearchParamKind.Reference, "subject", "Patient"));
        Add(T("DiagnosticReport", "code", 1002, "code"));
        Add(D("DiagnosticReport", "date", 1003, "effectiveDateTime", "effectivePeriod"));
        Add(T("DiagnosticReport", "category", 1004, "category"));
        Add(T("DiagnosticReport", "status", 1005, "status") with { CodeSystem = "http://hl7.org/fhir/diagnostic-report-status" });
        Add(R("DiagnosticReport", "result", 1006, "result") with { Targets = ["Observation"] });
        Add(R("DiagnosticReport", "performer", 1007, "performer"));
        Add(R("DiagnosticReport", "encounter", 1008, "encounter") with { Targets = ["Encounter"] });
        Add(T("DiagnosticReport", "identifier", 1009, "identifier") with { Normalization = TokenNormalization.Identifier });

        // DocumentReference (11xx)
        Add(R("DocumentReference", "subject", 1101, "subject"));
        Add(Alias("DocumentReference", "patient", SearchParamKind.Reference, "subject", "Patient"));
        Add(T("DocumentReference", "type", 1102, "type"));
        Add(T("DocumentReference", "category", 1103, "category"));
        Add(D("DocumentReference", "date", 1104, "date"));
        Add(T("DocumentReference", "status", 1105, "status") with { CodeSystem = "http://hl7.org/fhir/document-reference-status" });
        Add(R("DocumentReference", "author", 1106, "author"));
        Add(R("DocumentReference", "encounter", 1107, "context.encounter") with { Targets = ["Encounter"] });
        Add(T("DocumentReference", "identifier", 1108, "identifier", "masterIdentifier") with { Normalization = TokenNormalization.Identifier });

        // Coverage (12xx)
        Add(R("Coverage", "beneficiary", 1201, "beneficiary") with { Targets = ["Patient"] });
        Add(Alias("Coverage", "patient", SearchParamKind.Reference, "beneficiary", "Patient"));
        Add(R("Coverage", "payor", 1202, "payor"));
        Add(T("Coverage", "status", 1203, "status") with { CodeSystem = "http://hl7.org/fhir/fm-status" });
        Add(T("Coverage", "type", 1204, "type"));
        Add(R("Coverage", "subscriber", 1205, "subscriber"));
        Add(T("Coverage", "identifier", 1206, "identifier") with { Normalization = TokenNormalization.Identifier });

        // Invoice (13xx)
        Add(R("Invoice", "subject", 1301, "subject"));
        Add(Alias("Invoice", "patient", SearchParamKind.Reference, "subject", "Patient"));
        Add(T("Invoice", "status", 1302, "status") with { CodeSystem = "http://hl7.org/fhir/invoice-status" });
        Add(D("Invoice", "date", 1303, "date"));
        Add(R("Invoice", "issuer", 1304, "issuer") with { Targets = ["Organization"] });
        Add(T("Invoice", "type", 1305, "type"));
        Add(T("Invoice", "identifier", 1306, "identifier") with { Normalization = TokenNormalization.Identifier });
        Add(R("Invoice", "participant", 1307, "participant.actor"));

        // A reference parameter matches the types its elements may point to (Observation.subject: Patient, Group, Device or Location)
        // that this server keeps: Observation?subject=123 looks for Patient/123 only, and the CapabilityStatement offers
        // _revinclude=Observation:subject on Patient alone.
        all = all.Select(p => p is { Kind: SearchParamKind.Reference, IsStored: true, Targets: null } ? p with { Targets = KeptTargets(p) } : p).ToList();
        var byType = all.GroupBy(p => p.ResourceType).ToDictionary(g => g.Key, g => g.ToDictionary(p => p.Name, StringComparer.Ordinal), StringComparer.Ordinal);
        // Self-checks at type load: a broken table must fail loudly in the first test, not silently at search time.
        var codes = new HashSet<int>();
        foreach (var p in all.Where(p => p.IsStored))
        {
            if (!codes.Add(p.Code)) throw new InvalidOperationException($"Duplicate search parameter code {p.Code}.");
        }
        foreach (var p in all.Where(p => !p.IsStored))
        {
            foreach (var target in p.AliasOf is null ? p.UnionOf! : [p.AliasOf])
            {
                if (!byType[p.ResourceType].TryGetValue(target, out var stored) || !stored.IsStored)
                    throw new InvalidOperationException($"{p.ResourceType}.{p.Name} refers to unknown stored parameter {target}.");
            }
        }
        return byType;
    }

    /// <summary>The resource types kept here that the elements of a reference parameter may point to, read from the R4 model;
    /// null when one of them may point to any type.</summary>
    private static IReadOnlyList<string>? KeptTargets(SearchParameter parameter)
    {
        var targets = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var path in parameter.Paths)
        {
            var type = FhirModel.R4.FindResourceType(parameter.ResourceType);
            FhirElement? element = null;
            foreach (var segment in path.Split('.'))
            {
                element = type?.FindElement(segment)
                    ?? throw new InvalidOperationException($"{parameter.ResourceType}.{parameter.Name}: {path} is not an element of the R4 model.");
                type = element.ComplexType;
            }
            if (element!.ReferenceTargets is not { } allowed) return null;
            targets.UnionWith(allowed.Where(KnownResourceTypes.Supported.Contains));
        }
        return [.. targets];
    }
}
