using System.Text.Json;

namespace Vauban.Records.Synthetic;

/// <summary>
/// A deterministic generator of a realistic French establishment and its patients, as FHIR R4 JSON:
/// the same seed and <c>asOf</c> date give byte-identical resources, ids included.
/// </summary>
/// <remarks>
/// <see cref="Establishment"/> (the hospital, its insurers and practitioners) is built once, in the
/// constructor. <see cref="Patient"/> depends only on the seed and the index, so patients can be
/// generated in any order and concurrently from several threads (the instance is immutable;
/// each thread writes JSON into its own reused buffer). Ids are UUID version 7 whose timestamp is
/// <c>asOf</c> (UTC midnight) plus the patient index in milliseconds, and whose random bits come from
/// the seeded stream: they sort in generation order like server-made v7 ids.
/// </remarks>
public sealed partial class SyntheticHospital
{
    private static readonly JsonEncodedText OrganizationType = JsonEncodedText.Encode("Organization");
    private static readonly JsonEncodedText PractitionerType = JsonEncodedText.Encode("Practitioner");
    private static readonly JsonEncodedText PractitionerRoleType = JsonEncodedText.Encode("PractitionerRole");
    private static readonly JsonEncodedText PatientType = JsonEncodedText.Encode("Patient");
    private static readonly JsonEncodedText CoverageType = JsonEncodedText.Encode("Coverage");
    private static readonly JsonEncodedText EncounterType = JsonEncodedText.Encode("Encounter");
    private static readonly JsonEncodedText AppointmentType = JsonEncodedText.Encode("Appointment");
    private static readonly JsonEncodedText MedicationRequestType = JsonEncodedText.Encode("MedicationRequest");
    private static readonly JsonEncodedText ObservationType = JsonEncodedText.Encode("Observation");
    private static readonly JsonEncodedText DiagnosticReportType = JsonEncodedText.Encode("DiagnosticReport");
    private static readonly JsonEncodedText InvoiceType = JsonEncodedText.Encode("Invoice");

    private static readonly (string Code, string Display)[] MaritalStatuses =
    [
        ("M", "Married"), ("S", "Never Married"), ("D", "Divorced"), ("W", "Widowed"), ("T", "Domestic partner"),
    ];

    private readonly int _seed;
    private readonly DateTime _now;
    private readonly DateTime _clinicalWindowStart;
    private readonly long _idEpochMs;
    private readonly FrenchData _data = FrenchData.Instance;
    private readonly FrenchData.City _hospitalCity;
    private readonly Entity _hospital;
    private readonly Entity[] _practitioners;
    private readonly int[] _practitionerSpecialty;
    private readonly Entity[] _generalPractitioners;
    private readonly Entity[] _cityInsurer;
    private readonly Entity[] _mutuelles;
    private readonly SyntheticResource[] _establishment;

    /// <summary>Which of the first <paramref name="patients"/> patients of the seed <paramref name="seed"/> are made canaries
    /// (at random places in the population, the same for the same arguments).</summary>
    public static HashSet<int> CanaryPositions(int seed, int patients, int canaries)
    {
        var positions = new Random(seed ^ 0x6ca7a2);
        var chosen = new HashSet<int>();
        while (chosen.Count < Math.Min(canaries, patients)) chosen.Add(positions.Next(patients));
        return chosen;
    }

    /// <param name="seed">Any integer; the same seed gives the same data.</param>
    /// <param name="asOf">The day the data is "as of": clinical dates fall in the two years before it
    /// (booked appointments in the three months after). No default: a caller's "today" is its own clock's, in Paris
    /// (<see cref="ParisTime.DateOf"/>), never this machine's.</param>
    /// <param name="practitionerCount">Size of the practitioner pool (a quarter are general practitioners).</param>
    public SyntheticHospital(int seed, DateOnly asOf, int practitionerCount = 200)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(practitionerCount, 4);
        _seed = seed;
        var day = asOf;
        _now = day.ToDateTime(new TimeOnly(17, 0), DateTimeKind.Utc);
        _clinicalWindowStart = _now.AddDays(-730);
        _idEpochMs = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc)).ToUnixTimeMilliseconds();

        var rng = FastRandom.ForStream(seed, -1);
        var resources = new List<SyntheticResource>(16 + (2 * practitionerCount));

        // The establishment sits in a metropolitan city with a numeric department (simple FINESS).
        var candidates = FrenchData.Cities.Where(c => !c.IsOverseas && !c.IsCorsica).ToArray();
        _hospitalCity = rng.Pick(candidates);
        _hospital = WriteHospital(rng, resources);

        var insurers = new Dictionary<string, Entity>(StringComparer.Ordinal);
        foreach (var city in FrenchData.Cities)
        {
            if (!insurers.ContainsKey(city.Insurer))
            {
                insurers[city.Insurer] = WriteInsurer(rng, resources, city.Insurer, city);
            }
        }

        _cityInsurer = [.. FrenchData.Cities.Select(c => insurers[c.Insurer])];
        _mutuelles = [.. FrenchData.Mutuelles.Select(m => WriteInsurer(rng, resources, m, city: null))];

        _practitioners = new Entity[practitionerCount];
        _practitionerSpecialty = new int[practitionerCount];
        var generalPractitioners = new List<Entity>();
        for (var i = 0; i < practitionerCount; i++)
        {
            var specialty = i % 4 == 0 ? FrenchData.GeneralPracticeSpecialty : rng.Next(1, FrenchData.Specialties.Length);
            _practitionerSpecialty[i] = specialty;
            _practitioners[i] = WritePractitioner(rng, resources, specialty);
            if (specialty == FrenchData.GeneralPracticeSpecialty)
            {
                generalPractitioners.Add(_practitioners[i]);
            }
        }

        _generalPractitioners = [.. generalPractitioners];
        _establishment = [.. resources];
    }

    /// <summary>The establishment (Organization with FINESS), insurers, Practitioners (RPPS) and their PractitionerRoles.</summary>
    public IReadOnlyList<SyntheticResource> Establishment() => _establishment;

    /// <summary>
    /// Patient number <paramref name="index"/> and their records, in dependency order: Patient,
    /// Coverage, Encounter, Appointment, MedicationRequest, Observation, DiagnosticReport, Invoice.
    /// References point at this patient's resources or at <see cref="Establishment"/>.
    /// </summary>
    public IReadOnlyList<SyntheticResource> Patient(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var rng = FastRandom.ForStream(_seed, index);
        return new PatientRecord(this, rng, _idEpochMs + index + 1).Generate();
    }

    /// <summary>Patients <paramref name="start"/> to <paramref name="start"/> + <paramref name="count"/> - 1, streamed.</summary>
    public IEnumerable<SyntheticResource> Patients(int start, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, int.MaxValue - start);
        return Stream(start, count);

        IEnumerable<SyntheticResource> Stream(int first, int n)
        {
            for (var i = first; i < first + n; i++)
            {
                foreach (var resource in Patient(i))
                {
                    yield return resource;
                }
            }
        }
    }

    // A UUID v7 from a fixed timestamp and the seeded stream, formatted lower-case "D".
    private static string NewId(FastRandom rng, long unixMs)
    {
        Span<byte> bytes = stackalloc byte[16];
        var a = rng.NextUInt64();
        var b = rng.NextUInt64();
        for (var i = 0; i < 6; i++)
        {
            bytes[i] = (byte)(unixMs >> (8 * (5 - i)));
        }

        bytes[6] = (byte)(0x70 | (int)(a & 0x0F));
        bytes[7] = (byte)(a >> 8);
        bytes[8] = (byte)(0x80 | (int)((b >> 56) & 0x3F));
        for (var i = 9; i < 16; i++)
        {
            bytes[i] = (byte)(b >> (8 * (i - 9)));
        }

        return new Guid(bytes, bigEndian: true).ToString("D");
    }

    private static string Digits(FastRandom rng, int count)
    {
        Span<char> digits = stackalloc char[count];
        for (var i = 0; i < count; i++)
        {
            digits[i] = (char)('0' + rng.Next(10));
        }

        return new string(digits);
    }

    // Luhn check digit, as used by RPPS and FINESS numbers.
    internal static char LuhnKey(ReadOnlySpan<char> digits)
    {
        var sum = 0;
        var doubleIt = true;
        for (var i = digits.Length - 1; i >= 0; i--)
        {
            var d = digits[i] - '0';
            if (doubleIt)
            {
                d *= 2;
                if (d > 9)
                {
                    d -= 9;
                }
            }

            sum += d;
            doubleIt = !doubleIt;
        }

        return (char)('0' + ((10 - (sum % 10)) % 10));
    }

    private static string PhoneNumber(FastRandom rng, char zone)
    {
        // +33 6 12 34 56 78
        Span<char> phone = stackalloc char[17];
        "+33 ".CopyTo(phone);
        phone[4] = zone;
        for (var pair = 0; pair < 4; pair++)
        {
            phone[5 + (3 * pair)] = ' ';
            phone[6 + (3 * pair)] = (char)('0' + rng.Next(10));
            phone[7 + (3 * pair)] = (char)('0' + rng.Next(10));
        }

        return new string(phone);
    }

    private static string PostalCode(FrenchData.City city, int district) =>
        (city.PostalCode + district).ToString("00000", System.Globalization.CultureInfo.InvariantCulture);

    private static string Insee(FrenchData.City city, int district) =>
        district == 0 ? city.Insee : city.Insee[..2] + (int.Parse(city.Insee.AsSpan(2), System.Globalization.CultureInfo.InvariantCulture) + district).ToString("000", System.Globalization.CultureInfo.InvariantCulture);

    private static string CitySlug(string city) => FrenchData.Slug(city);

    private static void WriteAddress(Utf8JsonWriter w, string line, string postalCode, string city, JsonEncodedText use)
    {
        w.WriteStartArray(Prop.Address);
        w.WriteStartObject();
        w.WriteString(Prop.Use, use);
        w.WriteStartArray(Prop.Line);
        w.WriteStringValue(line);
        w.WriteEndArray();
        w.WriteString(Prop.City, city);
        w.WriteString(Prop.PostalCode, postalCode);
        w.WriteString(Prop.Country, Sys.Fr);
        w.WriteEndObject();
        w.WriteEndArray();
    }

    private Entity WriteHospital(FastRandom rng, List<SyntheticResource> resources)
    {
        var id = NewId(rng, _idEpochMs);
        var city = _hospitalCity;
        var university = Array.IndexOf(FrenchData.Cities, city) < 36;
        var name = (university ? "Centre hospitalier universitaire de " : "Centre hospitalier de ") + city.Name;
        Span<char> finess = stackalloc char[9];
        city.Department.CopyTo(finess);
        finess[2] = '0';
        for (var i = 3; i < 8; i++)
        {
            finess[i] = (char)('0' + rng.Next(10));
        }

        finess[8] = LuhnKey(finess[..8]);
        var finessNumber = new string(finess);

        var w = SyntheticJson.Begin(OrganizationType, id);
        w.WriteStartArray(Prop.Identifier);
        SyntheticJson.Identifier(w, Sys.Official, JsonEncodedText.Encode("IDNST"), Sys.IdNatStruct, "1" + finessNumber);
        SyntheticJson.Identifier(w, Sys.Official, JsonEncodedText.Encode("FINEG"), Sys.Finess, finessNumber);
        w.WriteEndArray();
        w.WriteBoolean(Prop.Active, true);
        w.WriteStartArray(Prop.Type);
        SyntheticJson.ConceptItem(w, Sys.OrganizationType, "prov", "Healthcare Provider");
        w.WriteEndArray();
        w.WriteString(Prop.Name, name);
        w.WriteStartArray(Prop.Telecom);
        SyntheticJson.ContactPoint(w, Sys.Phone, PhoneNumber(rng, city.PhoneZone), Sys.Work);
        w.WriteEndArray();
        WriteAddress(w, $"{rng.Next(1, 120)} {rng.Pick(_data.Streets)}", PostalCode(city, 0), city.Name, Sys.Work);
        resources.Add(SyntheticJson.End(w, "Organization", id));
        return new Entity(id, "Organization/" + id, name);
    }

    private Entity WriteInsurer(FastRandom rng, List<SyntheticResource> resources, string name, FrenchData.City? city)
    {
        var id = NewId(rng, _idEpochMs);
        var w = SyntheticJson.Begin(OrganizationType, id);
        w.WriteBoolean(Prop.Active, true);
        w.WriteStartArray(Prop.Type);
        SyntheticJson.ConceptItem(w, Sys.OrganizationType, "ins", "Insurance Company");
        w.WriteEndArray();
        w.WriteString(Prop.Name, name);
        if (city is not null)
        {
            WriteAddress(w, $"{rng.Next(1, 120)} {rng.Pick(_data.Streets)}", PostalCode(city, 0), city.Name, Sys.Work);
        }

        resources.Add(SyntheticJson.End(w, "Organization", id));
        return new Entity(id, "Organization/" + id, name);
    }

    private Entity WritePractitioner(FastRandom rng, List<SyntheticResource> resources, int specialty)
    {
        var id = NewId(rng, _idEpochMs);
        var female = rng.Chance(0.5);
        var given = rng.Pick(female ? _data.FemaleFirstNames : _data.MaleFirstNames);
        var family = rng.Pick(_data.LastNames);

        // RPPS: 11 digits, starting with 10, Luhn check digit last.
        Span<char> rpps = stackalloc char[11];
        rpps[0] = '1';
        rpps[1] = '0';
        for (var i = 2; i < 10; i++)
        {
            rpps[i] = (char)('0' + rng.Next(10));
        }

        rpps[10] = LuhnKey(rpps[..10]);
        var rppsNumber = new string(rpps);
        var display = $"Dr {given.Value} {family.Value}";

        var w = SyntheticJson.Begin(PractitionerType, id);
        w.WriteStartArray(Prop.Identifier);
        SyntheticJson.Identifier(w, Sys.Official, JsonEncodedText.Encode("IDNPS"), Sys.IdNatPs, "8" + rppsNumber);
        SyntheticJson.Identifier(w, Sys.Official, JsonEncodedText.Encode("RPPS"), Sys.Rpps, rppsNumber);
        w.WriteEndArray();
        w.WriteBoolean(Prop.Active, true);
        w.WriteStartArray(Prop.Name);
        w.WriteStartObject();
        w.WriteString(Prop.Use, Sys.Official);
        w.WriteString(Prop.Family, family.Json);
        w.WriteStartArray(Prop.Given);
        w.WriteStringValue(given.Json);
        w.WriteEndArray();
        w.WriteStartArray(Prop.Prefix);
        w.WriteStringValue("Dr");
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteStartArray(Prop.Telecom);
        SyntheticJson.ContactPoint(w, Sys.Phone, PhoneNumber(rng, _hospitalCity.PhoneZone), Sys.Work);
        SyntheticJson.ContactPoint(w, Sys.Email, $"{given.Slug}.{family.Slug}@chu-{CitySlug(_hospitalCity.Name)}.fr", Sys.Work);
        w.WriteEndArray();
        w.WriteString(Prop.Gender, female ? Sys.Female : Sys.Male);
        resources.Add(SyntheticJson.End(w, "Practitioner", id));
        var practitioner = new Entity(id, "Practitioner/" + id, display);

        var roleId = NewId(rng, _idEpochMs);
        var (code, specialtyDisplay) = FrenchData.Specialties[specialty];
        w = SyntheticJson.Begin(PractitionerRoleType, roleId);
        w.WriteBoolean(Prop.Active, true);
        SyntheticJson.Reference(w, Prop.Practitioner, practitioner.Reference, display);
        SyntheticJson.Reference(w, Prop.Organization, _hospital.Reference, _hospital.Display);
        w.WriteStartArray(Prop.Code);
        SyntheticJson.ConceptItem(w, Sys.PractitionerRole, "doctor", "Doctor");
        w.WriteEndArray();
        SyntheticJson.ConceptArray(w, Prop.Specialty, Sys.Snomed, code, specialtyDisplay);
        resources.Add(SyntheticJson.End(w, "PractitionerRole", roleId));
        return practitioner;
    }

    private sealed record Entity(string Id, string Reference, string Display);
}
