// Realistic, deterministic synthetic French data as FHIR R4 JSON, for seeding, demos, tests and
// benchmarks. Bogus' French data sets are read once into arrays; each patient is then generated from
// its own seeded Random, so patient i is the same whatever else is generated, and generation is cheap.
using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Vauban.Fhir;

namespace Vauban.Records.Synthetic;

public sealed record SyntheticResource(string ResourceType, string Id, byte[] Json);

public sealed class SyntheticHospital
{
    private static readonly (string Code, string Display)[] LabTests =
    [
        ("2345-7", "Glucose [Mass/volume] in Serum or Plasma"), ("718-7", "Hemoglobin [Mass/volume] in Blood"),
        ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"), ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"),
        ("6690-2", "Leukocytes [#/volume] in Blood"), ("777-3", "Platelets [#/volume] in Blood"), ("2823-3", "Potassium [Moles/volume] in Serum or Plasma"),
    ];
    private static readonly string[] LabUnits = ["g/L", "g/dL", "umol/L", "g/L", "10*9/L", "10*9/L", "mmol/L"];
    private static readonly (double Low, double High)[] LabRanges = [(0.7, 1.3), (11, 17), (50, 120), (1.4, 2.6), (4, 11), (150, 400), (3.4, 5.2)];
    private static readonly (string Atc, string Name, string Dosage)[] Drugs =
    [
        ("N02BE01", "Doliprane 1000 mg, comprimé", "1 comprimé jusqu'à 3 fois par jour"), ("C10AA05", "Atorvastatine 20 mg, comprimé", "1 comprimé le soir"),
        ("A10BA02", "Metformine 850 mg, comprimé", "1 comprimé matin et soir au repas"), ("C09AA05", "Ramipril 5 mg, gélule", "1 gélule le matin"),
        ("J01CA04", "Amoxicilline 1 g, comprimé", "1 comprimé matin et soir pendant 6 jours"), ("B01AC06", "Kardégic 75 mg, poudre", "1 sachet par jour"),
        ("A02BC01", "Oméprazole 20 mg, gélule", "1 gélule le matin à jeun"), ("N06AB06", "Sertraline 50 mg, gélule", "1 gélule le matin"),
    ];
    private static readonly (string Code, string Display)[] Specialties =
    [
        ("SM54", "Médecine générale"), ("SM04", "Cardiologie"), ("SM26", "Qualifié en médecine générale"), ("SM32", "Neurologie"),
        ("SM15", "Endocrinologie et métabolisme"), ("SM40", "Pédiatrie"), ("SM02", "Anesthésie-réanimation"), ("SM14", "Gynécologie obstétrique"),
    ];
    private static readonly string[] EncounterClasses = ["AMB", "AMB", "AMB", "IMP", "EMER"];
    private static readonly string[] BloodGroups = ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"];
    private static readonly string[] Insurers = ["CPAM de Loire-Atlantique", "CPAM de Paris", "MGEN", "Harmonie Mutuelle", "MSA"];

    private readonly string[] _maleNames;
    private readonly string[] _femaleNames;
    private readonly string[] _lastNames;
    private readonly string[] _streets;
    private readonly (string City, string PostalCode)[] _cities;
    private readonly int _seed;
    private readonly List<SyntheticResource> _establishment = [];
    private readonly string[] _practitionerIds;
    private readonly string[] _insurerIds;
    private readonly string _organizationId;
    private readonly DateTime _today = new(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc);

    public SyntheticHospital(int seed)
    {
        _seed = seed;
        var randomizer = new Bogus.Randomizer(seed);
        var names = new Bogus.DataSets.Name("fr") { Random = randomizer };
        var address = new Bogus.DataSets.Address("fr") { Random = randomizer };
        _maleNames = Enumerable.Range(0, 400).Select(_ => names.FirstName(Bogus.DataSets.Name.Gender.Male)).Distinct().ToArray();
        _femaleNames = Enumerable.Range(0, 400).Select(_ => names.FirstName(Bogus.DataSets.Name.Gender.Female)).Distinct().ToArray();
        _lastNames = Enumerable.Range(0, 3000).Select(_ => names.LastName()).Distinct().ToArray();
        _streets = Enumerable.Range(0, 2000).Select(_ => address.StreetAddress()).Distinct().ToArray();
        _cities = Enumerable.Range(0, 1000).Select(_ => (address.City(), address.ZipCode("#####"))).Distinct().ToArray();

        var random = new Random(seed);
        _organizationId = Id(random);
        _establishment.Add(Resource("Organization", _organizationId, w =>
        {
            Identifiers(w, (KnownIdentifierSystems.Finess, Digits(random, 9)));
            w.WriteBoolean("active", true);
            w.WriteString("name", "Centre hospitalier " + Pick(random, _cities).City);
            Telecom(w, Phone(random), null);
        }));
        _insurerIds = Insurers.Select(name =>
        {
            var id = Id(random);
            _establishment.Add(Resource("Organization", id, w =>
            {
                w.WriteBoolean("active", true);
                CodeableConcepts(w, "type", "http://terminology.hl7.org/CodeSystem/organization-type", "ins", "Insurance Company");
                w.WriteString("name", name);
            }));
            return id;
        }).ToArray();
        _practitionerIds = new string[200];
        for (var i = 0; i < _practitionerIds.Length; i++)
        {
            var id = _practitionerIds[i] = Id(random);
            var female = random.Next(2) == 0;
            var given = Pick(random, female ? _femaleNames : _maleNames);
            var family = Pick(random, _lastNames);
            _establishment.Add(Resource("Practitioner", id, w =>
            {
                Identifiers(w, (KnownIdentifierSystems.Rpps, "10" + Digits(random, 9)));
                w.WriteBoolean("active", true);
                Name(w, family, given, "Dr");
                Telecom(w, Phone(random), Email(given, family, "chu.example.fr"));
                w.WriteString("gender", female ? "female" : "male");
            }));
            var specialty = Pick(random, Specialties);
            _establishment.Add(Resource("PractitionerRole", Id(random), w =>
            {
                w.WriteBoolean("active", true);
                Reference(w, "practitioner", "Practitioner/" + id);
                Reference(w, "organization", "Organization/" + _organizationId);
                CodeableConcepts(w, "specialty", "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale", specialty.Code, specialty.Display);
            }));
        }
    }

    /// <summary>The establishment, its insurers, practitioners and their roles: load these first.</summary>
    public IReadOnlyList<SyntheticResource> Establishment() => _establishment;

    /// <summary>Patient <paramref name="index"/> and their records, in dependency order (the patient first).</summary>
    public IEnumerable<SyntheticResource> Patient(int index)
    {
        var random = new Random(HashCode.Combine(_seed, index));
        var patientId = Id(random);
        var patientRef = "Patient/" + patientId;
        var female = random.Next(2) == 0;
        var given = Pick(random, female ? _femaleNames : _maleNames);
        var secondGiven = random.Next(3) == 0 ? Pick(random, female ? _femaleNames : _maleNames) : null;
        var family = Pick(random, _lastNames);
        var birth = _today.AddDays(-random.Next(365, 365 * 95));
        var (city, postalCode) = Pick(random, _cities);
        var gp = _practitionerIds[random.Next(_practitionerIds.Length)];
        var department = random.Next(20) == 0 ? (random.Next(2) == 0 ? "2A" : "2B") : random.Next(1, 96).ToString("00", CultureInfo.InvariantCulture);
        if (department == "20") department = "21";
        var nir13 = (female ? "2" : "1") + birth.ToString("yyMM", CultureInfo.InvariantCulture) + department + Digits(random, 3) + Digits(random, 3);
        var nir = nir13 + Nir.ComputeKey(nir13);

        yield return Resource("Patient", patientId, w =>
        {
            Identifiers(w, (KnownIdentifierSystems.InsNir, nir), ("urn:oid:1.2.250.1.71.4.2.7", "IPP" + Digits(random, 8)));
            w.WriteBoolean("active", true);
            Name(w, family, secondGiven is null ? given : given + " " + secondGiven, null, official: true);
            Telecom(w, Phone(random), Email(given, family, random.Next(2) == 0 ? "orange.fr" : "gmail.com"));
            w.WriteString("gender", female ? "female" : "male");
            w.WriteString("birthDate", birth.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            w.WriteStartArray("address");
            w.WriteStartObject();
            w.WriteString("use", "home");
            w.WriteStartArray("line");
            w.WriteStringValue(Pick(random, _streets));
            w.WriteEndArray();
            w.WriteString("city", city);
            w.WriteString("postalCode", postalCode);
            w.WriteString("country", "FR");
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteStartArray("generalPractitioner");
            w.WriteStartObject();
            w.WriteString("reference", "Practitioner/" + gp);
            w.WriteEndObject();
            w.WriteEndArray();
            Reference(w, "managingOrganization", "Organization/" + _organizationId);
        });

        yield return Resource("Coverage", Id(random), w =>
        {
            w.WriteString("status", "active");
            Reference(w, "beneficiary", patientRef);
            w.WriteString("subscriberId", nir[..13]);
            w.WriteStartArray("payor");
            w.WriteStartObject();
            w.WriteString("reference", "Organization/" + Pick(random, _insurerIds));
            w.WriteEndObject();
            w.WriteEndArray();
        });

        var blood = Pick(random, BloodGroups);
        yield return Resource("Observation", Id(random), w =>
        {
            w.WriteString("status", "final");
            Category(w, "laboratory");
            Code(w, "http://loinc.org", "882-1", "ABO and Rh group [Type] in Blood");
            Reference(w, "subject", patientRef);
            w.WriteString("effectiveDateTime", Instant(_today.AddDays(-random.Next(30, 3000))));
            w.WriteStartObject("valueCodeableConcept");
            w.WriteString("text", blood);
            w.WriteEndObject();
        });

        var practitioner = "Practitioner/" + _practitionerIds[random.Next(_practitionerIds.Length)];
        var encounterId = Id(random);
        var encounterStart = _today.AddMinutes(-random.Next(60, 60 * 24 * 700));
        var encounterClass = Pick(random, EncounterClasses);
        yield return Resource("Encounter", encounterId, w =>
        {
            w.WriteString("status", "finished");
            w.WriteStartObject("class");
            w.WriteString("system", "http://terminology.hl7.org/CodeSystem/v3-ActCode");
            w.WriteString("code", encounterClass);
            w.WriteEndObject();
            Reference(w, "subject", patientRef);
            w.WriteStartArray("participant");
            w.WriteStartObject();
            Reference(w, "individual", practitioner);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteStartObject("period");
            w.WriteString("start", Instant(encounterStart));
            w.WriteString("end", Instant(encounterStart.AddMinutes(encounterClass == "IMP" ? random.Next(1440, 14400) : random.Next(15, 180))));
            w.WriteEndObject();
            Reference(w, "serviceProvider", "Organization/" + _organizationId);
        });

        var appointmentStart = _today.AddDays(random.Next(-200, 90)).AddHours(8 + random.Next(10)).AddMinutes(15 * random.Next(4));
        yield return Resource("Appointment", Id(random), w =>
        {
            w.WriteString("status", appointmentStart < _today ? (random.Next(8) == 0 ? "cancelled" : "fulfilled") : "booked");
            w.WriteString("description", "Consultation de suivi");
            w.WriteString("start", Instant(appointmentStart));
            w.WriteString("end", Instant(appointmentStart.AddMinutes(20)));
            w.WriteStartArray("participant");
            foreach (var actor in new[] { patientRef, practitioner })
            {
                w.WriteStartObject();
                Reference(w, "actor", actor);
                w.WriteString("status", "accepted");
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });

        var drug = Pick(random, Drugs);
        yield return Resource("MedicationRequest", Id(random), w =>
        {
            w.WriteString("status", random.Next(3) == 0 ? "completed" : "active");
            w.WriteString("intent", "order");
            w.WriteStartObject("medicationCodeableConcept");
            w.WriteStartArray("coding");
            w.WriteStartObject();
            w.WriteString("system", "http://www.whocc.no/atc");
            w.WriteString("code", drug.Atc);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteString("text", drug.Name);
            w.WriteEndObject();
            Reference(w, "subject", patientRef);
            Reference(w, "encounter", "Encounter/" + encounterId);
            w.WriteString("authoredOn", Instant(encounterStart.AddMinutes(10)));
            Reference(w, "requester", practitioner);
            w.WriteStartArray("dosageInstruction");
            w.WriteStartObject();
            w.WriteString("text", drug.Dosage);
            w.WriteEndObject();
            w.WriteEndArray();
        });

        var resultIds = new List<string>();
        var tests = 1 + random.Next(2);
        for (var t = 0; t < tests; t++)
        {
            var test = random.Next(LabTests.Length);
            var id = Id(random);
            resultIds.Add(id);
            var (low, high) = LabRanges[test];
            var value = Math.Round(low + (high - low) * (random.NextDouble() * 1.3 - 0.1), 2);
            yield return Resource("Observation", id, w =>
            {
                w.WriteString("status", "final");
                Category(w, "laboratory");
                Code(w, "http://loinc.org", LabTests[test].Code, LabTests[test].Display);
                Reference(w, "subject", patientRef);
                Reference(w, "encounter", "Encounter/" + encounterId);
                w.WriteString("effectiveDateTime", Instant(encounterStart.AddHours(1)));
                w.WriteStartArray("performer");
                w.WriteStartObject();
                w.WriteString("reference", practitioner);
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteStartObject("valueQuantity");
                w.WriteNumber("value", value);
                w.WriteString("unit", LabUnits[test]);
                w.WriteString("system", "http://unitsofmeasure.org");
                w.WriteString("code", LabUnits[test]);
                w.WriteEndObject();
            });
        }
        if (random.Next(2) == 0)
        {
            yield return Resource("DiagnosticReport", Id(random), w =>
            {
                w.WriteString("status", "final");
                Category(w, "LAB", "http://terminology.hl7.org/CodeSystem/v2-0074");
                Code(w, "http://loinc.org", "11502-2", "Laboratory report");
                Reference(w, "subject", patientRef);
                Reference(w, "encounter", "Encounter/" + encounterId);
                w.WriteString("effectiveDateTime", Instant(encounterStart.AddHours(1)));
                w.WriteStartArray("result");
                foreach (var id in resultIds)
                {
                    w.WriteStartObject();
                    w.WriteString("reference", "Observation/" + id);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
        }
        if (random.Next(3) == 0)
        {
            yield return Resource("Invoice", Id(random), w =>
            {
                w.WriteString("status", "issued");
                Reference(w, "subject", patientRef);
                Reference(w, "issuer", "Organization/" + _organizationId);
                w.WriteString("date", Instant(encounterStart.AddDays(1)));
                w.WriteStartObject("totalGross");
                w.WriteNumber("value", 25 + random.Next(40) * 5);
                w.WriteString("currency", "EUR");
                w.WriteEndObject();
            });
        }
    }

    private static SyntheticResource Resource(string type, string id, Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("resourceType", type);
            writer.WriteString("id", id);
            body(writer);
            writer.WriteEndObject();
        }
        return new SyntheticResource(type, id, buffer.WrittenSpan.ToArray());
    }

    private static string Id(Random random)
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x40);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes).ToString("D");
    }

    private static T Pick<T>(Random random, T[] values) => values[random.Next(values.Length)];

    private static string Digits(Random random, int count)
    {
        Span<char> chars = stackalloc char[count];
        for (var i = 0; i < count; i++) chars[i] = (char)('0' + random.Next(10));
        return new string(chars);
    }

    private static string Phone(Random random) => "+33 " + (random.Next(2) == 0 ? "6" : random.Next(1, 6).ToString(CultureInfo.InvariantCulture)) + " " +
        string.Join(' ', Enumerable.Range(0, 4).Select(_ => random.Next(100).ToString("00", CultureInfo.InvariantCulture)));

    private static string Email(string given, string family, string domain) =>
        $"{Records.Search.TextNormalizer.Fold(given)}.{Records.Search.TextNormalizer.Fold(family)}@{domain}";

    private static string Instant(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss'+00:00'", CultureInfo.InvariantCulture);

    private static void Identifiers(Utf8JsonWriter w, params (string System, string Value)[] identifiers)
    {
        w.WriteStartArray("identifier");
        foreach (var (system, value) in identifiers)
        {
            w.WriteStartObject();
            w.WriteString("system", system);
            w.WriteString("value", value);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void Name(Utf8JsonWriter w, string family, string given, string? prefix, bool official = false)
    {
        w.WriteStartArray("name");
        w.WriteStartObject();
        if (official) w.WriteString("use", "official");
        w.WriteString("family", family);
        w.WriteStartArray("given");
        foreach (var part in given.Split(' ')) w.WriteStringValue(part);
        w.WriteEndArray();
        if (prefix is not null)
        {
            w.WriteStartArray("prefix");
            w.WriteStringValue(prefix);
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteEndArray();
    }

    private static void Telecom(Utf8JsonWriter w, string phone, string? email)
    {
        w.WriteStartArray("telecom");
        w.WriteStartObject();
        w.WriteString("system", "phone");
        w.WriteString("value", phone);
        w.WriteEndObject();
        if (email is not null)
        {
            w.WriteStartObject();
            w.WriteString("system", "email");
            w.WriteString("value", email);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void Reference(Utf8JsonWriter w, string name, string reference)
    {
        w.WriteStartObject(name);
        w.WriteString("reference", reference);
        w.WriteEndObject();
    }

    private static void Code(Utf8JsonWriter w, string system, string code, string display)
    {
        w.WriteStartObject("code");
        w.WriteStartArray("coding");
        w.WriteStartObject();
        w.WriteString("system", system);
        w.WriteString("code", code);
        w.WriteString("display", display);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Category(Utf8JsonWriter w, string code, string system = "http://terminology.hl7.org/CodeSystem/observation-category") =>
        CodeableConcepts(w, "category", system, code, null);

    private static void CodeableConcepts(Utf8JsonWriter w, string name, string system, string code, string? display)
    {
        w.WriteStartArray(name);
        w.WriteStartObject();
        w.WriteStartArray("coding");
        w.WriteStartObject();
        w.WriteString("system", system);
        w.WriteString("code", code);
        if (display is not null) w.WriteString("display", display);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndArray();
    }
}
