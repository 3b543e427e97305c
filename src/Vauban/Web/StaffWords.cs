// What the staff pages say for FHIR's codes — a record's status, a UCUM unit, a kind of record — in the words people use
// ("Entered in error", "mmHg", "°C", "Result"), one mapping each, used by every page; the records keep the codes.
using System.Text;

namespace Vauban.Web;

public static class StaffWords
{
    /// <summary>Statuses whose words are not the code's own (FHIR R4 value sets of the records a chart, an agenda or a list
    /// shows); any other code reads as itself, its hyphens as spaces ("in-progress" → "In progress").</summary>
    private static readonly Dictionary<string, string> Statuses = new(StringComparer.Ordinal)
    {
        ["noshow"] = "Did not attend",
        ["fulfilled"] = "Attended",
        ["waitlist"] = "On the waiting list",
        ["onleave"] = "On leave",
        ["entered-in-error"] = "Entered in error",
        ["balanced"] = "Paid",
        ["current"] = "Current",
        ["unknown"] = "Status unknown",
    };

    /// <summary>A FHIR status code in words, capitalized as a table cell shows it ("booked" → "Booked"); null for none.</summary>
    public static string? Status(string? code)
    {
        if (string.IsNullOrWhiteSpace(code)) return null;
        if (Statuses.TryGetValue(code, out var words)) return words;
        var spaced = code.Replace('-', ' ').Replace('_', ' ');
        return char.ToUpperInvariant(spaced[0]) + spaced[1..];
    }

    /// <summary>A status in words within a sentence ("This appointment is cancelled").</summary>
    public static string? StatusInSentence(string? code) => Status(code)?.ToLowerInvariant();

    /// <summary>UCUM codes as clinicians write the unit; a unit already in words ("beats/min", "mmol/L") is shown as it is.</summary>
    private static readonly Dictionary<string, string> Units = new(StringComparer.Ordinal)
    {
        ["mm[Hg]"] = "mmHg",
        ["Cel"] = "°C",
        ["[degF]"] = "°F",
        ["{beats}/min"] = "/min",
        ["{breaths}/min"] = "/min",
        ["/min"] = "/min",
        ["kg/m2"] = "kg/m²",
        ["m2"] = "m²",
        ["umol/L"] = "µmol/L",
        ["ug/L"] = "µg/L",
        ["ug/mL"] = "µg/mL",
        ["uL"] = "µL",
        ["10*9/L"] = "×10⁹/L",
        ["10*12/L"] = "×10¹²/L",
        ["10*3/uL"] = "×10³/µL",
        ["[iU]/L"] = "IU/L",
        ["[IU]/L"] = "IU/L",
        ["mL/min/{1.73_m2}"] = "mL/min/1.73 m²",
        ["min"] = "min",
        ["h"] = "h",
        ["d"] = "days",
        ["wk"] = "weeks",
        ["mo"] = "months",
        ["a"] = "years",
    };

    /// <summary>A quantity's unit as a clinician writes it: "mm[Hg]" → "mmHg", "Cel" → "°C", "/min" stays; a unit not in the
    /// table loses UCUM's curly-brace annotations ("{cells}/uL" → "/uL") and is otherwise shown as written.</summary>
    public static string? Unit(string? unit)
    {
        if (string.IsNullOrWhiteSpace(unit)) return null;
        if (Units.TryGetValue(unit, out var words)) return words;
        if (!unit.Contains('{', StringComparison.Ordinal)) return unit;
        var plain = new StringBuilder(unit.Length);
        var depth = 0;
        foreach (var c in unit)
        {
            if (c == '{') depth++;
            else if (c == '}' && depth > 0) depth--;
            else if (depth == 0) plain.Append(c);
        }
        return plain.Length > 0 ? plain.ToString() : null;
    }

    /// <summary>The kinds of record in the words of a chart's sections, one record ("Observation" → "Result").</summary>
    private static readonly Dictionary<string, string> Kinds = new(StringComparer.Ordinal)
    {
        ["Patient"] = "Patient record",
        ["MedicationRequest"] = "Prescription",
        ["Observation"] = "Result",
        ["DiagnosticReport"] = "Report",
        ["DocumentReference"] = "Document",
        ["Coverage"] = "Insurance",
        ["AuditEvent"] = "Audit entry",
    };

    /// <summary>A FHIR resource type as people name one such record; one not in the table in words ("CareTeam" → "Care team").</summary>
    public static string Kind(string type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (Kinds.TryGetValue(type, out var words)) return words;
        var spaced = new StringBuilder(type.Length + 4);
        foreach (var c in type)
        {
            if (char.IsUpper(c) && spaced.Length > 0) spaced.Append(' ').Append(char.ToLowerInvariant(c));
            else spaced.Append(c);
        }
        return spaced.ToString();
    }

    /// <summary>Records named by their references ("Observation/abc Patient/p1", as the audit trail keeps them) as the officer's
    /// access history shows them: each its kind in words and its id ("Result abc, Patient record p1"). The id stays: the officer
    /// follows a record by it (breach scope, <c>vauban audit</c>), and her role reads no record that could give its date instead.</summary>
    public static string Records(string references)
    {
        ArgumentNullException.ThrowIfNull(references);
        return string.Join(", ", references.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(reference =>
            reference.IndexOf('/', StringComparison.Ordinal) is var slash and > 0 && slash < reference.Length - 1
                ? Kind(reference[..slash]) + " " + reference[(slash + 1)..] : reference));
    }
}
