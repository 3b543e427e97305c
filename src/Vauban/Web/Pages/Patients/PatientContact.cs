// A patient's contact details as staff type them — phone, e-mail, home address — read by one set of rules for registering a
// patient and for changing the details later, and written into a FHIR Patient: a new one, or the current version, where only
// the parts that changed are written and every other entry and element (a work phone, a former address, extensions) is kept.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Vauban.Web.Pages.Patients;

/// <param name="Phone">The patient's own phone: the first one used as home or mobile (or without a use), not ended.</param>
/// <param name="Email">The patient's own e-mail: the first one used as home (or without a use), not ended.</param>
/// <param name="Lines">The home address's street lines, in order (none when it has none).</param>
public sealed record PatientContact(string? Phone, string? Email, IReadOnlyList<string> Lines, string? PostalCode, string? City)
{
    public const int MaximumLineLength = 200;
    public const int MaximumLines = 3;
    public const int MaximumPhoneLength = 30;
    public const int MaximumEmailLength = 254;

    /// <summary>The details typed, every field held to the rules, or the problem to show (nothing is written then).
    /// <paramref name="street"/> may hold several lines, one a row.</summary>
    public static (PatientContact? Contact, string? Problem) Read(string? phone, string? email, string? street, string? postalCode, string? city) =>
        ReadChanges(null, phone, email, street, postalCode, city);

    /// <summary>The details typed over <paramref name="before"/> (the record's): a part typed as the record holds it is kept as
    /// stored without being held to the form's rules (a foreign postal code, an address of four lines written through the API
    /// stay, and do not stop a change of the phone); a part that changed is held to them.</summary>
    public static (PatientContact? Contact, string? Problem) ReadChanges(PatientContact? before, string? phone, string? email, string? street,
        string? postalCode, string? city)
    {
        string? newPhone = before?.Phone, newEmail = before?.Email;
        if (before is null || !SameText(phone, before.Phone))
        {
            var (typed, problem) = TypedText.Read(phone, "phone number", MaximumPhoneLength);
            if (problem is not null) return (null, problem);
            if (typed is not null)
            {
                // In one form (PhoneNumber): the one the blind index searches by, whichever way it was typed.
                var (number, wrong) = PhoneNumber.Read(typed);
                if (wrong is not null) return (null, wrong);
                typed = number;
            }
            newPhone = typed;
        }
        if (before is null || !SameText(email, before.Email))
        {
            var (typed, problem) = TypedText.Read(email, "e-mail address", MaximumEmailLength);
            if (problem is not null) return (null, problem);
            if (typed is not null && (typed.Count(c => c == '@') != 1 || typed.Any(char.IsWhiteSpace) || typed.StartsWith('@')
                || !typed[(typed.IndexOf('@') + 1)..].Contains('.')))
            {
                return (null, "The e-mail address is not one (name@domain.fr).");
            }
            newEmail = typed;
        }
        var rows = (street ?? "").ReplaceLineEndings("\n").Split('\n').Select(r => r.Trim()).Where(r => r.Length > 0).ToList();
        // Each part of the address is held to the rules only when it changed: a foreign postal code or four street lines written
        // through the API do not stop a change of the city.
        IReadOnlyList<string> lines = before?.Lines ?? [];
        if (before is null || !rows.SequenceEqual(before.Lines.Select(l => l.Trim()).Where(l => l.Length > 0)))
        {
            var typedLines = new List<string>();
            foreach (var row in rows)
            {
                var (line, lineProblem) = TypedText.Read(row, "address", MaximumLineLength);
                if (lineProblem is not null) return (null, lineProblem);
                typedLines.Add(line!);
            }
            if (typedLines.Count > MaximumLines) return (null, $"The street takes at most {MaximumLines} lines.");
            lines = typedLines;
        }
        var newPostalCode = before?.PostalCode;
        if (before is null || !SameText(postalCode, before.PostalCode))
        {
            var (typed, problem) = TypedText.Read(postalCode, "postal code", 10);
            if (problem is not null) return (null, problem);
            if (typed is not null && (typed.Length != 5 || !typed.All(char.IsAsciiDigit))) return (null, "A French postal code is five digits.");
            newPostalCode = typed;
        }
        var newCity = before?.City;
        if (before is null || !SameText(city, before.City))
        {
            var (typed, problem) = TypedText.Read(city, "city", MaximumLineLength);
            if (problem is not null) return (null, problem);
            newCity = typed;
        }
        if ((lines.Count > 0 || newPostalCode is not null) && newCity is null) return (null, "Give the city of the address.");
        return (new PatientContact(newPhone, newEmail, lines, newPostalCode, newCity), null);
    }

    private static bool SameText(string? typed, string? stored) =>
        string.Equals(string.IsNullOrWhiteSpace(typed) ? null : typed.Trim(), string.IsNullOrWhiteSpace(stored) ? null : stored.Trim(), StringComparison.Ordinal);

    /// <summary>The details a Patient holds where the form shows them (see the parameters; a period ended before
    /// <paramref name="today"/> is a former one); null or none where it has none.</summary>
    public static PatientContact Of(JsonObject patient, DateOnly today)
    {
        ArgumentNullException.ThrowIfNull(patient);
        var address = HomeAddress(patient, today);
        return new PatientContact(
            Text(OwnTelecom(patient, "phone", today), "value"),
            Text(OwnTelecom(patient, "email", today), "value"),
            address?["line"] is JsonArray lines ? [.. lines.OfType<JsonValue>().Where(l => l.GetValueKind() == JsonValueKind.String).Select(l => l.GetValue<string>())] : [],
            Text(address, "postalCode"),
            Text(address, "city"));
    }

    /// <summary>The street lines as the form's text area shows them, one a row.</summary>
    public string Street => string.Join('\n', Lines);

    /// <summary>Whether these details differ from <paramref name="before"/> in any part.</summary>
    public bool DiffersFrom(PatientContact before)
    {
        ArgumentNullException.ThrowIfNull(before);
        return Phone != before.Phone || Email != before.Email || !SameAddress(before);
    }

    private bool SameAddress(PatientContact before) => PostalCode == before.PostalCode && City == before.City && Lines.SequenceEqual(before.Lines);

    /// <summary>Writes the parts of these details that differ from <paramref name="before"/> (all of them for a new Patient, when
    /// null) into <paramref name="patient"/>. A changed phone or e-mail is a new entry in the place of the former (its period, rank
    /// and extensions were the former number's), added when there was none, removed when the field was emptied; a changed home
    /// address likewise keeps only its use, type and country. Every other entry and element is kept; a narrative the server
    /// generated from the former details is dropped rather than left to contradict them.</summary>
    public void WriteInto(JsonObject patient, DateOnly today, PatientContact? before = null)
    {
        ArgumentNullException.ThrowIfNull(patient);
        var changed = false;
        if (before is null || Phone != before.Phone)
        {
            SetTelecom(patient, "phone", Phone, Phone is null ? null : IsMobile(Phone) ? "mobile" : "home", today);
            changed = true;
        }
        if (before is null || Email != before.Email)
        {
            SetTelecom(patient, "email", Email, "home", today);
            changed = true;
        }
        if (before is null || !SameAddress(before))
        {
            SetHomeAddress(patient, today, before);
            changed = true;
        }
        if (changed && before is not null && patient["text"] is JsonObject narrative && Text(narrative, "status") == "generated") patient.Remove("text");
    }

    private static void SetTelecom(JsonObject patient, string system, string? value, string? use, DateOnly today)
    {
        var telecom = patient["telecom"] as JsonArray ?? [];
        var current = OwnTelecom(patient, system, today);
        JsonObject? entry = null;
        if (value is not null)
        {
            entry = new JsonObject { ["system"] = system, ["value"] = value };
            if (use is not null) entry["use"] = use;
        }
        Replace(telecom, current, entry);
        if (telecom.Count > 0) patient["telecom"] = telecom;
        else patient.Remove("telecom");
    }

    private void SetHomeAddress(JsonObject patient, DateOnly today, PatientContact? before)
    {
        var addresses = patient["address"] as JsonArray ?? [];
        var current = HomeAddress(patient, today);
        JsonObject? entry = null;
        if (City is not null)
        {
            entry = new JsonObject { ["use"] = Text(current, "use") ?? "home" };
            if (Text(current, "type") is { } type) entry["type"] = type;
            if (Lines.Count > 0) entry["line"] = new JsonArray([.. Lines.Select(l => JsonValue.Create(l))]);
            entry["city"] = City;
            if (PostalCode is not null) entry["postalCode"] = PostalCode;
            // The form takes French postal codes: one typed makes the address French; one kept keeps the address's country.
            entry["country"] = before is not null && PostalCode == before.PostalCode ? Text(current, "country") ?? "FR" : "FR";
        }
        Replace(addresses, current, entry);
        if (addresses.Count > 0) patient["address"] = addresses;
        else patient.Remove("address");
    }

    /// <summary>Puts <paramref name="entry"/> where <paramref name="current"/> was (appended when there was none; current removed
    /// when entry is null).</summary>
    private static void Replace(JsonArray array, JsonObject? current, JsonObject? entry)
    {
        var at = current is null ? -1 : array.IndexOf(current);
        if (at >= 0)
        {
            array.RemoveAt(at);
            if (entry is not null) array.Insert(at, entry);
        }
        else if (entry is not null)
        {
            array.Add(entry);
        }
    }

    private static JsonObject? OwnTelecom(JsonObject patient, string system, DateOnly today) =>
        (patient["telecom"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(t => Text(t, "system") == system && Text(t, "value") is not null
            && (system == "phone" ? Text(t, "use") is null or "home" or "mobile" : Text(t, "use") is null or "home") && !Ended(t, today));

    private static JsonObject? HomeAddress(JsonObject patient, DateOnly today) =>
        (patient["address"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(a => Text(a, "use") is null or "home" && !Ended(a, today));

    /// <summary>Whether the element's period ended before <paramref name="today"/> (an end to come, or today, is still in use). FHIR
    /// dates and date-times start with the year, month and day, so that their first ten characters order as the dates do.</summary>
    private static bool Ended(JsonObject element, DateOnly today) =>
        element["period"] is JsonObject period && Text(period, "end") is { Length: > 0 } end
        && string.CompareOrdinal(end.Length > 10 ? end[..10] : end, today.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)) < 0;

    private static string? Text(JsonObject? node, string name) =>
        node?[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    /// <summary>A French mobile number: 06 or 07 nationally, +33 6 or +33 7 internationally.</summary>
    public static bool IsMobile(string phone)
    {
        ArgumentNullException.ThrowIfNull(phone);
        var digits = new string(phone.Where(char.IsAsciiDigit).ToArray());
        var national = phone.TrimStart().StartsWith('+') && digits.StartsWith("33", StringComparison.Ordinal) ? "0" + digits[2..] : digits;
        return national.Length == 10 && national[0] == '0' && national[1] is '6' or '7';
    }
}
