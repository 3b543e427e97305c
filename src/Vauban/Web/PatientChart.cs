// What the clinician UI shows of a patient: the identity and, by kind, the records Patient/$everything returned (already
// authorized, guarded and audited by the records service), read from their FHIR JSON into rows a person can scan.
using System.Globalization;
using System.Text.Json;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web;

/// <summary>A moment as a record gives it: a time (shown in Paris time, to the minute) or a date alone (shown as given, not
/// turned into a midnight that never was); <see cref="At"/> orders the rows.</summary>
public readonly record struct Moment(DateTimeOffset? At, string Text)
{
    public static readonly Moment None = new(null, "—");
}

/// <summary>One line of a chart section: when, what, the detail that matters (a value, a dose, a practitioner), a status in
/// words (<see cref="StaffWords.Status"/>); <see cref="Version"/> is the version shown, for an act on the row to name (If-Match: a
/// record changed since is not overwritten).</summary>
public sealed record ChartRow(Moment When, string What, string? Detail, string? Status, string Reference, int Version = 0)
{
    /// <summary>The record's FHIR status code ("booked"), for what the page decides by it (whether it can still be cancelled).</summary>
    public string? StatusCode { get; init; }
}

/// <summary>A kind of record on the chart (appointments, prescriptions, lab results…), newest first.</summary>
public sealed record ChartSection(string Type, string Key, string Title, IReadOnlyList<ChartRow> Rows);

/// <summary>The identity part of a chart, or of a search result.</summary>
/// <remarks><see cref="Name"/> is the birth name (the official one); <see cref="FullName"/> is what a page shows.</remarks>
public sealed record PatientIdentity(string Id, string Name, string? BirthDate, string? Gender, bool Deceased, bool Inactive,
    IReadOnlyList<(string Label, string Value)> Identifiers, IReadOnlyList<string> Addresses, IReadOnlyList<string> Telecom, string? GeneralPractitioner)
{
    /// <summary>The family name she uses (nom d'usage: the name of use "usual") when it is not her birth name; else null.</summary>
    public string? UsedFamily { get; init; }

    /// <summary>The name as French practice writes it: the used name first, then the birth name after "née" (or "né"), then the
    /// given names — "MONTMORENCY-LAVAL née DE LA TOUR Marie" —; the birth name alone when it is the one she uses. A patient found
    /// by her used name was listed under her birth name alone, which the person searching had not typed.</summary>
    public string FullName => UsedFamily is null ? Name
        : $"{UsedFamily.ToUpperInvariant()} {Gender switch { "female" => "née", "male" => "né", _ => "né(e)" }} {Name}";

    /// <summary>Her age on <paramref name="today"/> (Paris's day), as a clinician says it: years from 2, months below, days in
    /// the first month; null without a whole birth date, for a patient who has died, or for a birth date after today.</summary>
    public string? AgeOn(DateOnly today)
    {
        if (Deceased || !DateOnly.TryParseExact(BirthDate, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var born) || born > today) return null;
        var months = ((today.Year - born.Year) * 12) + today.Month - born.Month - (today.Day < born.Day ? 1 : 0);
        return months >= 24 ? Counted.En(months / 12, "year", "years")
            : months >= 1 ? Counted.En(months, "month", "months")
            : Counted.En(today.DayNumber - born.DayNumber, "day", "days");
    }
}

public sealed class PatientChart
{
    /// <summary>The sections in the order a clinician reads a chart, with the type each shows.</summary>
    public static readonly IReadOnlyList<(string Type, string Key, string Title)> Kinds =
    [
        ("Appointment", "appointments", "Appointments"),
        ("Encounter", "encounters", "Encounters"),
        ("MedicationRequest", "prescriptions", "Prescriptions"),
        ("Observation", "results", "Results"),
        ("DiagnosticReport", "reports", "Reports"),
        ("DocumentReference", "documents", "Documents"),
        ("CareTeam", "care-teams", "Care teams"),
        ("Coverage", "coverage", "Insurance"),
        ("Invoice", "invoices", "Invoices"),
    ];

    private PatientChart(PatientIdentity identity, IReadOnlyList<ChartSection> sections)
    {
        Identity = identity;
        Sections = sections;
    }

    public PatientIdentity Identity { get; }

    public IReadOnlyList<ChartSection> Sections { get; }

    /// <summary>The chart of <paramref name="patientId"/> from an $everything page's entries; null when the page does not hold
    /// the patient (a deleted patient is not returned). Practitioners and organizations in the page name the references that
    /// carry no display.</summary>
    public static PatientChart? From(string patientId, IReadOnlyList<SearchEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var documents = new List<(SearchEntry Entry, JsonDocument Json)>();
        try
        {
            foreach (var entry in entries)
            {
                if (entry.Json is { } json && !entry.Deleted) documents.Add((entry, JsonDocument.Parse(json)));
            }
            var names = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (entry, json) in documents)
            {
                var name = entry.Type switch
                {
                    "Practitioner" => HumanName(json.RootElement),
                    "Organization" => Text(json.RootElement, "name"),
                    _ => null,
                };
                if (!string.IsNullOrEmpty(name)) names[entry.Type + "/" + entry.Id] = name;
            }
            var patient = documents.FirstOrDefault(d => d.Entry.Type == "Patient" && d.Entry.Id == patientId);
            if (patient.Json is null) return null;
            var sections = new List<ChartSection>();
            foreach (var (type, key, title) in Kinds)
            {
                var rows = documents.Where(d => d.Entry.Type == type && !OfAnotherPatient(d.Json.RootElement, patientId))
                    .Select(d => Row(type, d.Entry.Id, d.Json.RootElement, names) with { Version = d.Entry.Version })
                    .OrderByDescending(r => r.When.At ?? DateTimeOffset.MinValue).ThenBy(r => r.Reference, StringComparer.Ordinal).ToList();
                sections.Add(new ChartSection(type, key, title, rows));
            }
            return new PatientChart(Identify(patientId, patient.Json.RootElement, names), sections);
        }
        finally
        {
            foreach (var (_, json) in documents) json.Dispose();
        }
    }

    /// <summary>The patients a search matched (not those it included, nor deleted ones), each as <see cref="Identify"/> says it,
    /// in the search's order.</summary>
    public static List<PatientIdentity> Matched(IReadOnlyList<SearchEntry> entries) =>
        entries.Where(e => e is { Type: "Patient", Included: false, Deleted: false, Json: not null }).Select(e =>
        {
            using var document = JsonDocument.Parse(e.Json!);
            return Identify(e.Id, document.RootElement);
        }).ToList();

    /// <summary>What a search result and a chart's header say of a patient.</summary>
    public static PatientIdentity Identify(string id, JsonElement patient, IReadOnlyDictionary<string, string>? names = null)
    {
        var identifiers = new List<(string, string)>();
        foreach (var identifier in Array(patient, "identifier"))
        {
            if (Text(identifier, "value") is not { Length: > 0 } value) continue;
            var system = Text(identifier, "system");
            var label = system switch
            {
                KnownIdentifierSystems.InsNir or KnownIdentifierSystems.InsNirTest or KnownIdentifierSystems.InsNirDemo => "INS-NIR",
                KnownIdentifierSystems.InsNia => "INS-NIA",
                _ => Concept(identifier, "type") ?? "Identifier",
            };
            identifiers.Add((label, value));
        }
        var addresses = Array(patient, "address").Select(Address).Where(a => a.Length > 0).ToList();
        var telecom = Array(patient, "telecom").Select(t => Text(t, "value") is { Length: > 0 } v ? (Text(t, "system") is { } s ? $"{v} ({s})" : v) : null)
            .OfType<string>().ToList();
        var gp = Array(patient, "generalPractitioner").Select(r => ReferenceName(r, names)).FirstOrDefault(n => n is not null);
        var deceased = (patient.TryGetProperty("deceasedBoolean", out var d) && d.ValueKind == JsonValueKind.True) || patient.TryGetProperty("deceasedDateTime", out _);
        var inactive = patient.TryGetProperty("active", out var a) && a.ValueKind == JsonValueKind.False;
        return new PatientIdentity(id, HumanName(patient) ?? "(no name)", Text(patient, "birthDate"), Text(patient, "gender"), deceased, inactive, identifiers, addresses, telecom, gp)
        {
            UsedFamily = UsedFamily(patient),
        };
    }

    /// <summary>The family of a name of use "usual" that differs from the official name's (compared without case: "Martin" used
    /// beside "MARTIN" is no other name).</summary>
    private static string? UsedFamily(JsonElement patient)
    {
        var names = Array(patient, "name").Where(n => n.ValueKind == JsonValueKind.Object).ToList();
        var official = names.Select(n => Text(n, "use") == "official" ? Text(n, "family") : null).FirstOrDefault(f => f is not null);
        var used = names.Select(n => Text(n, "use") == "usual" ? Text(n, "family") : null).FirstOrDefault(f => !string.IsNullOrWhiteSpace(f));
        return used is null || official is null
            || string.Compare(used.Trim(), official.Trim(), CultureInfo.InvariantCulture, CompareOptions.IgnoreCase | CompareOptions.IgnoreNonSpace) == 0
            ? null : used.Trim();
    }

    /// <summary>One record as its kind's row on the chart shows it (a practitioner or organization it names without a display
    /// is not looked up), with its version.</summary>
    public static ChartRow RowOf(SearchEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        using var document = JsonDocument.Parse(entry.Json ?? throw new ArgumentException("A row is made of a record's body.", nameof(entry)));
        return Row(entry.Type, entry.Id, document.RootElement, NoNames) with { Version = entry.Version };
    }

    private static readonly IReadOnlyDictionary<string, string> NoNames = new Dictionary<string, string>();

    private static ChartRow Row(string type, string id, JsonElement r, IReadOnlyDictionary<string, string> names)
    {
        var reference = type + "/" + id;
        var code = Text(r, "status");
        var status = StaffWords.Status(code);
        return (type switch
        {
            "Appointment" => new ChartRow(When(r, "start") ?? Moment.None, Text(r, "description") ?? Concepts(r, "serviceType") ?? Concepts(r, "specialty") ?? "Appointment",
                Join(Array(r, "participant").Select(p => p.TryGetProperty("actor", out var actor) && !IsPatient(actor) ? ReferenceName(actor, names) : null)),
                // A cancelled appointment says why beside its status: the desk that calls the patient back needs it.
                code == "cancelled" && Concept(r, "cancelationReason") is { } why ? $"{status} ({why})" : status, reference),
            "Encounter" => new ChartRow(When(r, "period", "start") ?? Moment.None, Concepts(r, "type") ?? Coding(r, "class") ?? "Encounter",
                Join(Array(r, "participant").Select(p => p.TryGetProperty("individual", out var who) ? ReferenceName(who, names) : null)), status, reference),
            "MedicationRequest" => new ChartRow(When(r, "authoredOn") ?? Moment.None, Concept(r, "medicationCodeableConcept") ?? ReferenceName(r, "medicationReference", names) ?? "Prescription",
                Join(Array(r, "dosageInstruction").Select(dose => Text(dose, "text"))), status, reference),
            "Observation" => new ChartRow(When(r, "effectiveDateTime") ?? When(r, "effectivePeriod", "start") ?? When(r, "issued") ?? Moment.None, Concept(r, "code") ?? "Observation",
                ObservationValue(r), ObservationStatus(Concepts(r, "interpretation"), code), reference),
            "DiagnosticReport" => new ChartRow(When(r, "effectiveDateTime") ?? When(r, "effectivePeriod", "start") ?? When(r, "issued") ?? Moment.None, Concept(r, "code") ?? "Report",
                Text(r, "conclusion") ?? (Array(r, "result").Count() is var n and > 0 ? n == 1 ? "1 result" : $"{n} results" : null), status, reference),
            "DocumentReference" => new ChartRow(When(r, "date") ?? Moment.None, Concept(r, "type") ?? Text(r, "description") ?? "Document",
                Text(r, "description"), status, reference),
            "CareTeam" => new ChartRow(When(r, "period", "start") ?? Moment.None, Text(r, "name") ?? "Care team",
                Join(Array(r, "participant").Select(p => p.TryGetProperty("member", out var member) && !IsPatient(member) ? ReferenceName(member, names) : null)), status, reference),
            "Coverage" => new ChartRow(When(r, "period", "start") ?? Moment.None, Join(Array(r, "payor").Select(p => ReferenceName(p, names))) ?? Concept(r, "type") ?? "Coverage",
                Concept(r, "type"), status, reference),
            "Invoice" => new ChartRow(When(r, "date") ?? Moment.None, ReferenceName(r, "issuer", names) is { } issuer ? "Invoice from " + issuer : "Invoice",
                Money(r, "totalGross") ?? Money(r, "totalNet"), status, reference),
            _ => new ChartRow(Moment.None, type, null, status, reference),
        }) with { StatusCode = code };
    }

    private static string? ObservationValue(JsonElement r)
    {
        string? value = null;
        if (r.TryGetProperty("valueQuantity", out var q)) value = Quantity(q);
        else if (r.TryGetProperty("valueCodeableConcept", out _)) value = Concept(r, "valueCodeableConcept");
        else if (Text(r, "valueString") is { } s) value = s;
        else if (r.TryGetProperty("valueBoolean", out var b) && b.ValueKind is JsonValueKind.True or JsonValueKind.False) value = b.GetBoolean() ? "yes" : "no";
        else if (r.TryGetProperty("valueInteger", out var i) && i.ValueKind == JsonValueKind.Number) value = i.GetRawText();
        if (value is null)
        {
            // A blood pressure holds its values in its components (FHIR's vital-signs profile), none in a value of its own.
            return Join(Array(r, "component").Select(c => Concept(c, "code") is { } part && ObservationValue(c) is { } measured ? $"{part}: {measured}" : null));
        }
        if (Array(r, "referenceRange").FirstOrDefault() is { ValueKind: JsonValueKind.Object } range)
        {
            var low = range.TryGetProperty("low", out var l) && l.TryGetProperty("value", out var lv) && lv.ValueKind == JsonValueKind.Number ? lv.GetRawText() : null;
            var high = range.TryGetProperty("high", out var h) && h.TryGetProperty("value", out var hv) && hv.ValueKind == JsonValueKind.Number ? hv.GetRawText() : null;
            if (low is not null || high is not null) value += $" (normal {low ?? "…"}–{high ?? "…"})";
            else if (Text(range, "text") is { } text) value += $" ({text})";
        }
        return value;
    }

    /// <summary>The flag ("High") with the status beside it unless the result is final: a flag alone would hide that the
    /// result is only preliminary, or was entered in error.</summary>
    private static string? ObservationStatus(string? interpretation, string? status) =>
        interpretation is null ? StaffWords.Status(status) : status is null or "final" ? interpretation : $"{interpretation} ({StaffWords.StatusInSentence(status)})";

    /// <summary>The comparator goes first: a result below the laboratory's limit of detection ("&lt;" 0.01) shown as the limit
    /// itself would read as a measured value. The unit as a clinician writes it (<see cref="StaffWords.Unit"/>: mmHg, not mm[Hg]).</summary>
    private static string? Quantity(JsonElement q) =>
        q.ValueKind == JsonValueKind.Object && q.TryGetProperty("value", out var v) && v.ValueKind == JsonValueKind.Number
            ? Text(q, "comparator") + v.GetRawText() + (StaffWords.Unit(Text(q, "unit") ?? Text(q, "code")) is { } unit ? " " + unit : "")
            : null;

    private static string? Money(JsonElement r, string name) =>
        r.TryGetProperty(name, out var m) && m.ValueKind == JsonValueKind.Object && m.TryGetProperty("value", out var v) && v.ValueKind == JsonValueKind.Number
            // FHIR's decimal is any JSON number: one beyond System.Decimal (1e30) is shown as written, not a server error.
            ? (v.TryGetDecimal(out var amount) ? amount.ToString("0.00", CultureInfo.InvariantCulture) : v.GetRawText()) + (Text(m, "currency") is { } currency ? " " + currency : "")
            : null;

    /// <summary>"FAMILY Given", the way a French chart writes a name: the official (else first) name, family in capitals.</summary>
    public static string? HumanName(JsonElement resource)
    {
        var names = Array(resource, "name").Where(n => n.ValueKind == JsonValueKind.Object).ToList();
        if (names.Count == 0) return null;
        var name = names.FirstOrDefault(n => Text(n, "use") == "official");
        if (name.ValueKind != JsonValueKind.Object) name = names[0];
        var family = Text(name, "family");
        var given = string.Join(' ', Array(name, "given").Where(g => g.ValueKind == JsonValueKind.String).Select(g => g.GetString()));
        var text = string.Join(' ', new[] { family?.ToUpperInvariant(), given }.Where(p => !string.IsNullOrEmpty(p)));
        return text.Length > 0 ? text : Text(name, "text");
    }

    private static string Address(JsonElement address)
    {
        if (Text(address, "text") is { Length: > 0 } text) return text;
        var lines = Array(address, "line").Where(l => l.ValueKind == JsonValueKind.String).Select(l => l.GetString());
        var city = string.Join(' ', new[] { Text(address, "postalCode"), Text(address, "city") }.Where(p => !string.IsNullOrEmpty(p)));
        return string.Join(", ", lines.Append(city).Where(p => !string.IsNullOrEmpty(p)));
    }

    /// <summary>Whether a record is another patient's (its subject, patient or beneficiary names someone else): $everything
    /// returns every record that refers to this patient (another patient's observation they performed, say), and a row under
    /// this chart would read as this patient's result.</summary>
    private static bool OfAnotherPatient(JsonElement r, string patientId)
    {
        foreach (var name in (string[])["subject", "patient", "beneficiary"])
        {
            if (r.TryGetProperty(name, out var reference) && Text(reference, "reference") is { } target
                && (target.StartsWith("Patient/", StringComparison.Ordinal) || target.Contains("/Patient/", StringComparison.Ordinal))
                && target != "Patient/" + patientId && !target.EndsWith("/Patient/" + patientId, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    private static bool IsPatient(JsonElement reference) => Text(reference, "reference")?.StartsWith("Patient/", StringComparison.Ordinal) == true;

    private static string? ReferenceName(JsonElement r, string name, IReadOnlyDictionary<string, string> names) =>
        r.TryGetProperty(name, out var reference) ? ReferenceName(reference, names) : null;

    private static string? ReferenceName(JsonElement reference, IReadOnlyDictionary<string, string>? names) =>
        reference.ValueKind != JsonValueKind.Object ? null
            : Text(reference, "display") ?? (Text(reference, "reference") is { } target && names?.TryGetValue(target, out var name) == true ? name : Text(reference, "reference"));

    private static string? Concept(JsonElement r, string name) =>
        r.TryGetProperty(name, out var concept) && concept.ValueKind == JsonValueKind.Object
            ? Text(concept, "text") ?? Array(concept, "coding").Select(c => Text(c, "display") ?? Text(c, "code")).FirstOrDefault(t => t is not null)
            : null;

    private static string? Concepts(JsonElement r, string name) =>
        Join(Array(r, name).Select(c => c.ValueKind != JsonValueKind.Object ? null
            : Text(c, "text") ?? Array(c, "coding").Select(x => Text(x, "display") ?? Text(x, "code")).FirstOrDefault(t => t is not null)));

    private static string? Coding(JsonElement r, string name) =>
        r.TryGetProperty(name, out var coding) && coding.ValueKind == JsonValueKind.Object ? Text(coding, "display") ?? Text(coding, "code") : null;

    private static string? Join(IEnumerable<string?> parts) =>
        string.Join(", ", parts.Where(p => !string.IsNullOrEmpty(p)).Distinct(StringComparer.Ordinal)) is { Length: > 0 } joined ? joined : null;

    private static Moment? When(JsonElement r, string name, string? inner = null)
    {
        if (!r.TryGetProperty(name, out var value)) return null;
        if (inner is not null && (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty(inner, out value))) return null;
        if (value.ValueKind != JsonValueKind.String || value.GetString() is not { Length: > 0 } text) return null;
        if (!FhirDate.TryParseRange(text, out var at, out _)) return null;
        // A date, a month or a year alone (FHIR date precision): ordered as its first day in Paris (as a search reads it), shown as given.
        return new Moment(at, text.Contains('T', StringComparison.Ordinal) ? InParis(at) : text);
    }

    internal static string? Text(JsonElement r, string name) =>
        r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } s ? s : null;

    internal static JsonElement.ArrayEnumerator Array(JsonElement r, string name) =>
        r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : NoElements.EnumerateArray();

    private static readonly JsonElement NoElements = JsonDocument.Parse("[]").RootElement.Clone();

    /// <summary>An instant as the pages show it: Paris wall-clock time, to the minute.</summary>
    public static string InParis(DateTimeOffset at) => ParisTime.Of(at).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);

    /// <summary>The instant a Paris wall-clock date and time name (a form's date and time inputs), with Paris's offset then;
    /// null for a time the clocks skip when they go forward (02:30 on the last Sunday of March), which names no instant. A time the
    /// clocks pass twice when they go back (02:30 on the last Sunday of October) is the first, in summer time (+02:00), as a search's
    /// date without a zone is (<see cref="ParisTime.UnixMillisecondsAt"/>): an agenda from 02:30 leaves out nothing of either pass —
    /// unless <paramref name="notAfter"/> is given (what was just done, measures taken) and the second, in winter time, is not after
    /// it: a nurse recording at 02:40 of the second pass measures taken at 02:30 means ten minutes ago, not an hour and ten.</summary>
    public static DateTimeOffset? FromParis(DateOnly date, TimeOnly time, DateTimeOffset? notAfter = null)
    {
        if (ParisTime.At(date, time) is not { } first) return null;
        return notAfter is { } limit && ParisTime.SecondPassAt(date, time) is { } second && second <= limit ? second : first;
    }

    /// <summary>An instant as a FHIR dateTime with its offset (an Appointment's start in Paris time, say), to the second.</summary>
    public static string FhirDateTime(DateTimeOffset at) => at.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture);

    /// <summary>The time zone <see cref="InParis"/> writes in, for the page to say.</summary>
    public const string ZoneName = ParisTime.Name;
}
