// The "Record vital signs" form read into FHIR R4 Observations, one a measure, as R4's vital signs profiles shape them
// (category vital-signs, the LOINC code of each profile, a UCUM quantity; blood pressure one Observation with its systolic and
// diastolic components). Only the form's rules live here — a number in a range no living patient falls outside, a time
// already past; whether the person may record them for this patient, and the write itself (one transaction: all or none),
// are the records service's.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Vauban.Web.Pages.Patients;

/// <summary>One measure of the form: its field, the words shown, its LOINC code, its UCUM unit, and the values accepted.</summary>
public sealed record VitalSign(string Field, string Label, string Loinc, string Display, string Ucum, string UnitText, decimal Minimum, decimal Maximum, int Decimals);

/// <summary>The measures the form reads, and the transaction that records them.</summary>
public sealed record VitalSigns(DateTimeOffset Measured, IReadOnlyList<(VitalSign Sign, decimal Value)> Values, (decimal Systolic, decimal Diastolic)? BloodPressure)
{
    public static readonly VitalSign Systolic = new("Systolic", "Systolic", "8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg", 40, 300, 0);
    public static readonly VitalSign Diastolic = new("Diastolic", "Diastolic", "8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg", 20, 200, 0);

    /// <summary>The measures other than blood pressure, in the form's order.</summary>
    public static readonly IReadOnlyList<VitalSign> Signs =
    [
        new("HeartRate", "Heart rate", "8867-4", "Heart rate", "/min", "beats/min", 20, 300, 0),
        new("RespiratoryRate", "Respiratory rate", "9279-1", "Respiratory rate", "/min", "breaths/min", 4, 80, 0),
        new("Temperature", "Temperature", "8310-5", "Body temperature", "Cel", "°C", 30, 45, 1),
        new("OxygenSaturation", "Oxygen saturation", "2708-6", "Oxygen saturation in Arterial blood", "%", "%", 50, 100, 0),
        new("Weight", "Weight", "29463-7", "Body weight", "kg", "kg", 0.3m, 500, 3),
        new("Height", "Height", "8302-2", "Body height", "cm", "cm", 20, 250, 1),
    ];

    /// <summary>How far back a measure may be recorded: a measure noted on paper during a night is recorded the next day, not weeks later.</summary>
    public static readonly TimeSpan LongestDelay = TimeSpan.FromDays(7);

    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(2);

    public int Count => Values.Count + (BloodPressure is null ? 0 : 1);

    /// <summary>The measures the form's fields give, or the problem to show (nothing is written then). <paramref name="fields"/>
    /// holds each field's text as typed (a decimal comma or point); <paramref name="date"/> and <paramref name="time"/>, when
    /// given, the HTML inputs' values in Paris time (else now).</summary>
    public static (VitalSigns? Signs, string? Problem) Read(IReadOnlyDictionary<string, string?> fields, string? date, string? time, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var measured = now;
        if (!string.IsNullOrWhiteSpace(date) || !string.IsNullOrWhiteSpace(time))
        {
            if (!DateOnly.TryParseExact(date?.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
                || !TimeOnly.TryParseExact(time?.Trim(), ["HH:mm", "HH:mm:ss"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var hour))
            {
                return (null, "Give when the measures were taken as a date (year-month-day) and a time (hours:minutes), or leave both empty for now.");
            }
            if (PatientChart.FromParis(day, hour, notAfter: now + ClockSkew) is not { } at)
            {
                return (null, $"{day:yyyy-MM-dd} {hour:HH:mm} does not exist in {PatientChart.ZoneName}: the clocks go forward then.");
            }
            if (at > now + ClockSkew) return (null, "The measures' time is in the future: give the time they were taken.");
            if (at < now - LongestDelay) return (null, $"Measures are recorded here up to {LongestDelay.Days} days after they were taken.");
            measured = at;
        }

        var values = new List<(VitalSign, decimal)>();
        foreach (var sign in Signs)
        {
            var (value, problem) = Number(fields, sign);
            if (problem is not null) return (null, problem);
            if (value is { } v) values.Add((sign, v));
        }
        var (systolic, systolicProblem) = Number(fields, Systolic);
        if (systolicProblem is not null) return (null, systolicProblem);
        var (diastolic, diastolicProblem) = Number(fields, Diastolic);
        if (diastolicProblem is not null) return (null, diastolicProblem);
        (decimal, decimal)? pressure = null;
        if (systolic is { } high && diastolic is { } low)
        {
            if (low >= high) return (null, "The diastolic pressure must be lower than the systolic: check the two values.");
            pressure = (high, low);
        }
        else if (systolic is not null || diastolic is not null)
        {
            return (null, "Give the blood pressure's two values, systolic and diastolic, or neither.");
        }
        if (values.Count == 0 && pressure is null) return (null, "Give at least one measure.");
        return (new VitalSigns(measured, values, pressure), null);
    }

    private static (decimal? Value, string? Problem) Number(IReadOnlyDictionary<string, string?> fields, VitalSign sign)
    {
        if (!fields.TryGetValue(sign.Field, out var typed) || string.IsNullOrWhiteSpace(typed)) return (null, null);
        var text = typed.Trim().Replace(',', '.');
        if (text.Length > 12 || !decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
        {
            return (null, $"{sign.Label}: \"{Shorten(typed.Trim())}\" is not a number.");
        }
        value /= 1.000000000000000000000000000000000m; // "37.50" is 37.5: trailing zeros are no precision asked for
        if (value.Scale > sign.Decimals)
        {
            return (null, sign.Decimals == 0
                ? $"{sign.Label} is a whole number of {sign.UnitText}."
                : $"{sign.Label} is given to at most {sign.Decimals} decimal{(sign.Decimals == 1 ? "" : "s")} ({sign.UnitText}).");
        }
        if (value < sign.Minimum || value > sign.Maximum)
        {
            return (null, string.Create(CultureInfo.InvariantCulture, $"{sign.Label} is between {sign.Minimum} and {sign.Maximum} {sign.UnitText}: check the value and its unit."));
        }
        return (value, null);
    }

    private static string Shorten(string text) => text.Length <= 20 ? text : text[..20] + "…";

    /// <summary>The transaction Bundle that creates every measure for the patient: all recorded, or none.</summary>
    /// <param name="performer">The practitioner the person acts as, named as the measures' performer; null: none named.</param>
    public JsonElement ToTransaction(string patientId, string? performer)
    {
        var entries = new JsonArray();
        foreach (var (sign, value) in Values)
        {
            var observation = Observation(sign, patientId, performer);
            observation["valueQuantity"] = Quantity(sign, value);
            entries.Add(Entry(observation));
        }
        if (BloodPressure is var (systolic, diastolic))
        {
            var pressure = Observation(new VitalSign("", "Blood pressure", "85354-9", "Blood pressure panel with all children optional", "", "", 0, 0, 0), patientId, performer);
            pressure["component"] = new JsonArray(Component(Systolic, systolic), Component(Diastolic, diastolic));
            entries.Add(Entry(pressure));
        }
        return JsonSerializer.SerializeToElement(new JsonObject { ["resourceType"] = "Bundle", ["type"] = "transaction", ["entry"] = entries });
    }

    private JsonObject Observation(VitalSign sign, string patientId, string? performer)
    {
        var observation = new JsonObject
        {
            ["resourceType"] = "Observation",
            ["status"] = "final",
            ["category"] = new JsonArray(new JsonObject
            {
                ["coding"] = new JsonArray(new JsonObject
                {
                    ["system"] = "http://terminology.hl7.org/CodeSystem/observation-category",
                    ["code"] = "vital-signs",
                    ["display"] = "Vital Signs",
                }),
                ["text"] = "Vital Signs",
            }),
            ["code"] = Code(sign),
            ["subject"] = new JsonObject { ["reference"] = "Patient/" + patientId },
            ["effectiveDateTime"] = PatientChart.FhirDateTime(Measured),
        };
        if (performer is not null) observation["performer"] = new JsonArray(new JsonObject { ["reference"] = performer });
        return observation;
    }

    private static JsonObject Code(VitalSign sign)
    {
        var coding = new JsonArray(new JsonObject { ["system"] = "http://loinc.org", ["code"] = sign.Loinc, ["display"] = sign.Display });
        // Measured at the bedside by a pulse oximeter: its own code beside the profile's.
        if (sign.Loinc == "2708-6") coding.Add(new JsonObject { ["system"] = "http://loinc.org", ["code"] = "59408-5", ["display"] = "Oxygen saturation in Arterial blood by Pulse oximetry" });
        return new JsonObject { ["coding"] = coding, ["text"] = sign.Label };
    }

    private static JsonObject Quantity(VitalSign sign, decimal value) => new()
    {
        ["value"] = value,
        ["unit"] = sign.UnitText,
        ["system"] = "http://unitsofmeasure.org",
        ["code"] = sign.Ucum,
    };

    private static JsonObject Component(VitalSign sign, decimal value) => new() { ["code"] = Code(sign), ["valueQuantity"] = Quantity(sign, value) };

    private static JsonObject Entry(JsonObject resource) => new()
    {
        ["fullUrl"] = "urn:uuid:" + Guid.NewGuid().ToString("D"),
        ["resource"] = resource,
        ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Observation" },
    };

    /// <summary>What was recorded, in the page's words ("Recorded heart rate 72 beats/min, blood pressure 120/80 mmHg.").</summary>
    public string Summary()
    {
        var parts = Values.Select(v => string.Create(CultureInfo.InvariantCulture, $"{v.Sign.Label.ToLowerInvariant()} {v.Value} {v.Sign.UnitText}")).ToList();
        if (BloodPressure is var (systolic, diastolic)) parts.Add(string.Create(CultureInfo.InvariantCulture, $"blood pressure {systolic}/{diastolic} mmHg"));
        return $"Recorded {string.Join(", ", parts)} ({PatientChart.InParis(Measured)}).";
    }
}
