// A patient's contact details as staff type them — phone, e-mail, home address — read by one set of rules for registering a
// patient and for changing the details later, and written into a FHIR Patient: a new one, or the current version, where only
// the entries the form shows are changed and every other one (a work phone, a former address, extensions) is kept.
using System.Text.Json.Nodes;

namespace Vauban.Web.Pages.Patients;

/// <param name="Lines">The street lines, in order (none when no street was given).</param>
public sealed record PatientContact(string? Phone, string? Email, IReadOnlyList<string> Lines, string? PostalCode, string? City)
{
    public const int MaximumLineLength = 200;
    public const int MaximumLines = 3;
    public const int MaximumPhoneLength = 30;
    public const int MaximumEmailLength = 254;

    /// <summary>The details typed, or the problem to show (nothing is written then). <paramref name="street"/> may hold several
    /// lines, one a row.</summary>
    public static (PatientContact? Contact, string? Problem) Read(string? phone, string? email, string? street, string? postalCode, string? city)
    {
        var (typedPhone, phoneProblem) = TypedText.Read(phone, "phone number", MaximumPhoneLength);
        if (phoneProblem is not null) return (null, phoneProblem);
        if (typedPhone is not null && (typedPhone.Count(char.IsAsciiDigit) < 6 || typedPhone.Any(c => !(char.IsAsciiDigit(c) || c is ' ' or '+' or '.' or '-' or '(' or ')'))))
        {
            return (null, "The phone number holds digits, spaces and + . - ( ) only, at least six digits.");
        }
        var (typedEmail, emailProblem) = TypedText.Read(email, "e-mail address", MaximumEmailLength);
        if (emailProblem is not null) return (null, emailProblem);
        if (typedEmail is not null && (typedEmail.Count(c => c == '@') != 1 || typedEmail.Any(char.IsWhiteSpace) || typedEmail.StartsWith('@')
            || !typedEmail[(typedEmail.IndexOf('@') + 1)..].Contains('.')))
        {
            return (null, "The e-mail address is not one (name@domain.fr).");
        }
        var lines = new List<string>();
        foreach (var row in (street ?? "").ReplaceLineEndings("\n").Split('\n'))
        {
            var (line, lineProblem) = TypedText.Read(row, "address", MaximumLineLength);
            if (lineProblem is not null) return (null, lineProblem);
            if (line is not null) lines.Add(line);
        }
        if (lines.Count > MaximumLines) return (null, $"The street takes at most {MaximumLines} lines.");
        var (typedPostalCode, postalProblem) = TypedText.Read(postalCode, "postal code", 10);
        if (postalProblem is not null) return (null, postalProblem);
        if (typedPostalCode is not null && (typedPostalCode.Length != 5 || !typedPostalCode.All(char.IsAsciiDigit))) return (null, "A French postal code is five digits.");
        var (typedCity, cityProblem) = TypedText.Read(city, "city", MaximumLineLength);
        if (cityProblem is not null) return (null, cityProblem);
        if ((lines.Count > 0 || typedPostalCode is not null) && typedCity is null) return (null, "Give the city of the address.");
        return (new PatientContact(typedPhone, typedEmail, lines, typedPostalCode, typedCity), null);
    }

    /// <summary>The details a Patient holds where the form shows them: its first phone, its first e-mail, its home address (the
    /// first address used as home, or without a use); null where it has none.</summary>
    public static PatientContact Of(JsonObject patient)
    {
        ArgumentNullException.ThrowIfNull(patient);
        var telecom = patient["telecom"] as JsonArray;
        var address = HomeAddress(patient);
        return new PatientContact(
            Text(FirstTelecom(telecom, "phone"), "value"),
            Text(FirstTelecom(telecom, "email"), "value"),
            address?["line"] is JsonArray lines ? [.. lines.Select(l => l?.GetValueKind() == System.Text.Json.JsonValueKind.String ? l.GetValue<string>() : null).OfType<string>()] : [],
            Text(address, "postalCode"),
            Text(address, "city"));
    }

    /// <summary>The street lines as the form's text area shows them, one a row.</summary>
    public string Street => string.Join('\n', Lines);

    /// <summary>Writes these details into <paramref name="patient"/>: its first phone and first e-mail replaced (added when it had
    /// none, removed when the field was emptied), its home address's lines, postal code and city replaced (the address added, or
    /// removed when every field of it was emptied). Every other entry and element is kept as it was.</summary>
    public void WriteInto(JsonObject patient)
    {
        ArgumentNullException.ThrowIfNull(patient);
        var telecom = patient["telecom"] as JsonArray ?? [];
        SetTelecom(telecom, "phone", Phone, Phone is null ? null : IsMobile(Phone) ? "mobile" : "home");
        SetTelecom(telecom, "email", Email, "home");
        if (telecom.Count > 0) patient["telecom"] = telecom;
        else patient.Remove("telecom");

        var addresses = patient["address"] as JsonArray ?? [];
        var address = HomeAddress(patient);
        if (City is null)
        {
            if (address is not null) addresses.Remove(address);
        }
        else
        {
            if (address is null)
            {
                address = new JsonObject { ["use"] = "home" };
                addresses.Add(address);
            }
            if (Lines.Count > 0) address["line"] = new JsonArray([.. Lines.Select(l => JsonValue.Create(l))]);
            else address.Remove("line");
            address["city"] = City;
            if (PostalCode is not null) address["postalCode"] = PostalCode;
            else address.Remove("postalCode");
            if (address["country"] is null) address["country"] = "FR";
            // The text form, when the record had one, said the former address: it goes rather than contradict the parts.
            address.Remove("text");
        }
        if (addresses.Count > 0) patient["address"] = addresses;
        else patient.Remove("address");
    }

    private static void SetTelecom(JsonArray telecom, string system, string? value, string? use)
    {
        var current = FirstTelecom(telecom, system);
        if (value is null)
        {
            if (current is not null) telecom.Remove(current);
            return;
        }
        if (current is null)
        {
            var added = new JsonObject { ["system"] = system, ["value"] = value };
            if (use is not null) added["use"] = use;
            telecom.Add(added);
            return;
        }
        if (Text(current, "value") == value) return;
        current["value"] = value;
        // A phone's use follows the number (a mobile number is mobile); another use the record gave (work, temp) is kept.
        if (system == "phone" && Text(current, "use") is null or "home" or "mobile") current["use"] = use;
    }

    private static JsonObject? FirstTelecom(JsonArray? telecom, string system) =>
        telecom?.OfType<JsonObject>().FirstOrDefault(t => Text(t, "system") == system && Text(t, "value") is not null);

    private static JsonObject? HomeAddress(JsonObject patient) =>
        (patient["address"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(a => Text(a, "use") is null or "home" && (a["period"] as JsonObject)?["end"] is null);

    private static string? Text(JsonObject? node, string name) =>
        node?[name] is JsonValue value && value.GetValueKind() == System.Text.Json.JsonValueKind.String ? value.GetValue<string>() : null;

    /// <summary>A French mobile number: 06 or 07 nationally, +33 6 or +33 7 internationally.</summary>
    public static bool IsMobile(string phone)
    {
        ArgumentNullException.ThrowIfNull(phone);
        var digits = new string(phone.Where(char.IsAsciiDigit).ToArray());
        var national = phone.TrimStart().StartsWith('+') && digits.StartsWith("33", StringComparison.Ordinal) ? "0" + digits[2..] : digits;
        return national.Length == 10 && national[0] == '0' && national[1] is '6' or '7';
    }
}
