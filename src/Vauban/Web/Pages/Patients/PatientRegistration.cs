// The "Register a patient" form read into a FHIR R4 Patient. Only the form's rules live here — the names as typed, a birth
// date that is past, a NIR whose key is right and that agrees with the sex and birth date given (identity vigilance: a NIR
// typed for the wrong person is the commonest identity error), and the contact details' rules (PatientContact); whether the person may register a
// patient, the duplicate checks and the write itself are the records service's (policy, guard, audit).
using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Vauban.Access;
using Vauban.Fhir;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <summary>The fields of the registration form, as typed.</summary>
public sealed record RegistrationForm(string? Family, string? UsedFamily, string? Given, string? Sex, string? BirthDate, string? Nir,
    string? Phone, string? Email, string? Line, string? PostalCode, string? City);

/// <param name="Given">The given names in their order (the first is the one used).</param>
/// <param name="Nir">Compact (15 characters), or null when none was given.</param>
public sealed record PatientRegistration(string Family, string? UsedFamily, IReadOnlyList<string> Given, string Sex, DateOnly BirthDate, string? Nir,
    PatientContact Contact)
{
    public const int MaximumNameLength = 100;

    /// <summary>The oldest birth date the form takes: a typing error before it (1862 for 1962) is said, not registered.</summary>
    public static readonly DateOnly Earliest = new(1900, 1, 1);

    /// <summary>FHIR administrative genders, with the form's labels.</summary>
    public static readonly IReadOnlyList<(string Code, string Label)> Sexes = [("female", "Female"), ("male", "Male"), ("other", "Other"), ("unknown", "Unknown")];

    /// <summary>The patient the form describes, or the problem to show (nothing is written then). <paramref name="today"/> is the
    /// date in Paris.</summary>
    public static (PatientRegistration? Registration, string? Problem) Read(RegistrationForm form, DateOnly today)
    {
        ArgumentNullException.ThrowIfNull(form);
        var (family, problem) = Name(form.Family, "birth name (family name at birth)", required: true);
        if (problem is not null) return (null, problem);
        var (used, usedProblem) = Name(form.UsedFamily, "used name", required: false);
        if (usedProblem is not null) return (null, usedProblem);
        var (givenText, givenProblem) = Name(form.Given, "given names", required: true);
        if (givenProblem is not null) return (null, givenProblem);
        var given = givenText!.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (Sexes.All(s => s.Code != form.Sex)) return (null, "Choose the patient's sex in the list.");
        if (!DateOnly.TryParseExact(form.BirthDate?.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var born))
        {
            return (null, "Give the birth date (year-month-day).");
        }
        if (born > today) return (null, "The birth date is in the future: check it.");
        if (born < Earliest) return (null, $"The birth date is before {Earliest.Year}: check the year.");
        string? nir = null;
        if (!string.IsNullOrWhiteSpace(form.Nir))
        {
            // The typed value is never echoed in a message: a NIR is identifying.
            if (Records.Nir.Normalize(form.Nir) is not { } compact) return (null, "This NIR is not valid (15 characters with its key): check each digit.");
            if (NirDisagreement(compact, form.Sex!, born) is { } disagreement) return (null, disagreement);
            nir = compact;
        }
        var (contact, contactProblem) = PatientContact.Read(form.Phone, form.Email, form.Line, form.PostalCode, form.City);
        if (contact is null) return (null, contactProblem);
        return (new PatientRegistration(family!, used, given, form.Sex!, born, nir, contact), null);
    }

    /// <summary>Why a valid NIR cannot be this person's: its first digit says a man (1) or a woman (2) and its next four the
    /// year and month of birth (a month of 20 or more: the civil-status record was incomplete, any month). Temporary numbers
    /// (3, 4, 7, 8) are not checked.</summary>
    private static string? NirDisagreement(string nir, string sex, DateOnly born)
    {
        var sexDigit = nir[0];
        if ((sexDigit == '1' && sex == "female") || (sexDigit == '2' && sex == "male"))
        {
            return $"This NIR is a {(sexDigit == '1' ? "man's" : "woman's")} (it starts with {sexDigit}), and the sex chosen is {sex}: check both.";
        }
        if (sexDigit is not ('1' or '2')) return null;
        if (int.Parse(nir.AsSpan(1, 2), CultureInfo.InvariantCulture) != born.Year % 100)
        {
            return "This NIR's year of birth (its 2nd and 3rd digits) is not the birth date's: check both.";
        }
        var month = int.Parse(nir.AsSpan(3, 2), CultureInfo.InvariantCulture);
        if (month is >= 1 and <= 12 && month != born.Month)
        {
            return "This NIR's month of birth (its 4th and 5th digits) is not the birth date's: check both.";
        }
        return null;
    }

    /// <summary>Accents typed as combining marks (a Mac's keyboard, a paste) composed with their letter: "Lefe\u0300vre" is "Lefèvre".
    /// By a table of the Latin letters with the accents names carry, since the server runs with invariant globalization, where
    /// <see cref="string.Normalize()"/> composes nothing (it was called here, and a decomposed name was refused as not letters).
    /// A mark no letter here composes with stays, and the name is refused as holding something else than letters.</summary>
    internal static string Composed(string typed)
    {
        if (!typed.Any(c => c is >= '\u0300' and <= '\u036F')) return typed;
        var composed = new System.Text.StringBuilder(typed.Length);
        foreach (var c in typed)
        {
            if (composed.Length > 0 && Accented.TryGetValue((composed[^1], c), out var letter)) composed[^1] = letter;
            else composed.Append(c);
        }
        return composed.ToString();
    }

    private static readonly FrozenDictionary<(char Letter, char Mark), char> Accented = new (char Mark, string Letters, string Composed)[]
    {
        ('\u0300', "AEIOUaeiouNnWwYy", "ÀÈÌÒÙàèìòùǸǹẀẁỲỳ"),
        ('\u0301', "AEIOUYaeiouyCcLlNnRrSsZzGgKkMmPpWw", "ÁÉÍÓÚÝáéíóúýĆćĹĺŃńŔŕŚśŹźǴǵḰḱḾḿṔṕẂẃ"),
        ('\u0302', "AEIOUaeiouCcGgHhJjSsWwYyZz", "ÂÊÎÔÛâêîôûĈĉĜĝĤĥĴĵŜŝŴŵŶŷẐẑ"),
        ('\u0303', "ANOanoIiUuVvEeYy", "ÃÑÕãñõĨĩŨũṼṽẼẽỸỹ"),
        ('\u0304', "AaEeIiOoUuYyGg", "ĀāĒēĪīŌōŪūȲȳḠḡ"),
        ('\u0306', "AaEeGgIiOoUu", "ĂăĔĕĞğĬĭŎŏŬŭ"),
        ('\u0307', "CcEeGgIZzAaOoBbDdFfHhMmNnPpRrSsTtWwXxYy", "ĊċĖėĠġİŻżȦȧȮȯḂḃḊḋḞḟḢḣṀṁṄṅṖṗṘṙṠṡṪṫẆẇẊẋẎẏ"),
        ('\u0308', "AEIOUaeiouyYHhWwXxt", "ÄËÏÖÜäëïöüÿŸḦḧẄẅẌẍẗ"),
        ('\u030A', "AaUuwy", "ÅåŮůẘẙ"),
        ('\u030B', "OoUu", "ŐőŰű"),
        ('\u030C', "CcDdEeLlNnRrSsTtZzAaIiOoUuGgKkjHh", "ČčĎďĚěĽľŇňŘřŠšŤťŽžǍǎǏǐǑǒǓǔǦǧǨǩǰȞȟ"),
        ('\u0327', "CcGgKkLlNnRrSsTtEeDdHh", "ÇçĢģĶķĻļŅņŖŗŞşŢţȨȩḐḑḨḩ"),
        ('\u0328', "AaEeIiUuOo", "ĄąĘęĮįŲųǪǫ"),
    }.SelectMany(m => m.Letters.Select((letter, i) => KeyValuePair.Create((letter, m.Mark), m.Composed[i]))).ToFrozenDictionary();

    private static bool IsLatin(char c) => c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '\u00C0' and <= '\u024F' or >= '\u1E00' and <= '\u1EFF';

    private static (string? Value, string? Problem) Name(string? typed, string what, bool required)
    {
        // Composed (an accent pasted as a combining mark is one letter with it), and the typographic apostrophe as the plain one, so
        // that "O’Neill" is stored, and found, as "O'Neill" is.
        var composed = string.IsNullOrWhiteSpace(typed) ? null : Composed(typed).Replace('’', '\'');
        var value = composed is null ? null : string.Join(' ', composed.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (value is null) return required ? (null, $"Give the {what}.") : (null, null);
        // "The given names hold…", "the used name holds…".
        var (are, hold, mix, it) = what.EndsWith('s') ? ("are", "hold", "mix", "them") : ("is", "holds", "mixes", "it");
        if (value.Length > MaximumNameLength) return (null, $"The {what} {are} at most {MaximumNameLength} characters.");
        if (StatedText.HasHiddenCharacters(value)) return (null, $"The {what} {hold} control or invisible characters: type {it} plainly.");
        // Letters, with the separators French names use (Jean-Pierre, O'Neill, Saint Just).
        if (!value.Any(char.IsLetter) || value.Any(c => !(char.IsLetter(c) || c is ' ' or '-' or '\'' or '.')))
        {
            return (null, $"The {what} {hold} letters, spaces, hyphens and apostrophes only.");
        }
        // A letter of another alphabet that looks like a Latin one (Cyrillic А, Greek Ο, a fullwidth Ｏ, an IPA ɑ) among Latin
        // letters: a name that reads as a registered patient's and is not found by it, so identity vigilance never sees the namesake.
        if (value.Any(IsLatin) && value.Any(c => char.IsLetter(c) && !IsLatin(c)))
        {
            return (null, $"The {what} {mix} Latin letters with letters of another alphabet that look alike (Cyrillic, Greek, fullwidth): type {it} in one alphabet.");
        }
        return (value, null);
    }

    /// <summary>The search for a patient already registered under this identity (identity vigilance): the same birth name, as a
    /// FHIR string search (starts with, accents and case folded), and the same birth date.</summary>
    public List<KeyValuePair<string, string>> NamesakeQuery() =>
        [new("family", Family), new("birthdate", BirthDate.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), new("_count", "20")];

    /// <summary>The If-None-Exist criteria that make the create find the patient already registered with this NIR, in the same
    /// write (two desks registering one person at once make one record).</summary>
    public string? NirCriteria => Nir is null ? null : "identifier=" + Uri.EscapeDataString(KnownIdentifierSystems.InsNir + "|" + Nir);

    /// <summary>The FHIR Patient: active, the birth name official (the used name usual), the NIR under INS-NIR's system, and the
    /// contact details (<see cref="PatientContact.WriteInto"/>: a French mobile number, 06 or 07, as mobile, another as home).</summary>
    public JsonElement ToFhir()
    {
        var names = new JsonArray(new JsonObject { ["use"] = "official", ["family"] = Family, ["given"] = new JsonArray([.. Given.Select(g => JsonValue.Create(g))]) });
        if (UsedFamily is not null) names.Add(new JsonObject { ["use"] = "usual", ["family"] = UsedFamily, ["given"] = new JsonArray(JsonValue.Create(Given[0])) });
        var patient = new JsonObject { ["resourceType"] = "Patient" };
        if (Nir is not null) patient["identifier"] = new JsonArray(new JsonObject { ["system"] = KnownIdentifierSystems.InsNir, ["value"] = Nir });
        patient["active"] = true;
        patient["name"] = names;
        patient["gender"] = Sex;
        patient["birthDate"] = BirthDate.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        Contact.WriteInto(patient, today: DateOnly.MinValue); // a new Patient: no former entry to tell its own from
        return JsonSerializer.SerializeToElement(patient);
    }
}

/// <summary>A free-text field of a staff form, as typed.</summary>
public static class TypedText
{
    /// <summary>The field trimmed (null when empty), or the problem to show: longer than <paramref name="maximum"/>, or holding
    /// control or invisible characters (zero-width, direction overrides) that would make it read otherwise than it is.</summary>
    public static (string? Value, string? Problem) Read(string? typed, string what, int maximum)
    {
        var value = string.IsNullOrWhiteSpace(typed) ? null : typed.Trim();
        if (value is null) return (null, null);
        if (value.Length > maximum) return (null, $"The {what} is at most {maximum} characters.");
        if (StatedText.HasHiddenCharacters(value)) return (null, $"The {what} holds control or invisible characters: type it plainly.");
        return (value, null);
    }
}
