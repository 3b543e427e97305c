using System.Text.Json;
using Vauban.Fhir;
using Vauban.Records;
using Vauban.Records.Synthetic;

namespace Vauban.Tests.Records;

public class SyntheticHospitalTests
{
    private static readonly DateOnly AsOf = new(2026, 3, 15);
    private const int PatientCount = 400;

    private static List<SyntheticResource> Generate(int seed, int patients)
    {
        var hospital = new SyntheticHospital(seed, AsOf);
        var all = new List<SyntheticResource>(hospital.Establishment());
        all.AddRange(hospital.Patients(0, patients));
        return all;
    }

    [Fact]
    public void The_same_seed_gives_byte_identical_resources()
    {
        var first = Generate(7, 50);
        var second = Generate(7, 50);
        Assert.Equal(first.Count, second.Count);
        for (var i = 0; i < first.Count; i++)
        {
            Assert.Equal(first[i].ResourceType, second[i].ResourceType);
            Assert.Equal(first[i].Id, second[i].Id);
            Assert.Equal(first[i].Json, second[i].Json);
        }
    }

    [Fact]
    public void Another_seed_gives_other_data()
    {
        var a = new SyntheticHospital(1, AsOf).Patient(0);
        var b = new SyntheticHospital(2, AsOf).Patient(0);
        Assert.NotEqual(a[0].Id, b[0].Id);
        Assert.NotEqual(a[0].Json, b[0].Json);
    }

    [Fact]
    public void A_patient_depends_only_on_the_seed_and_its_index()
    {
        var inOrder = new SyntheticHospital(3, AsOf);
        for (var i = 0; i < 10; i++)
        {
            _ = inOrder.Patient(i);
        }

        var directly = new SyntheticHospital(3, AsOf).Patient(9);
        Assert.Equal(directly.Select(r => r.Json), inOrder.Patient(9).Select(r => r.Json));
    }

    [Fact]
    public void Patients_generated_on_several_threads_match_those_generated_on_one()
    {
        var hospital = new SyntheticHospital(11, AsOf);
        var sequential = Enumerable.Range(0, 200).Select(i => hospital.Patient(i)).ToArray();
        var parallel = new IReadOnlyList<SyntheticResource>[200];
        Parallel.For(0, 200, i => parallel[i] = hospital.Patient(i));
        for (var i = 0; i < 200; i++)
        {
            Assert.Equal(sequential[i].Select(r => r.Json), parallel[i].Select(r => r.Json));
        }
    }

    [Fact]
    public void Every_resource_is_FHIR_JSON_with_its_type_and_a_lowercase_v7_id_and_no_meta()
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var resource in Generate(5, PatientCount))
        {
            using var json = JsonDocument.Parse(resource.Json);
            var root = json.RootElement;
            Assert.Equal(resource.ResourceType, root.GetProperty("resourceType").GetString());
            Assert.Equal(resource.Id, root.GetProperty("id").GetString());
            Assert.False(root.TryGetProperty("meta", out _), $"{resource.ResourceType} has meta");
            Assert.True(Guid.TryParseExact(resource.Id, "D", out var guid));
            Assert.Equal(7, guid.Version);
            Assert.Equal(resource.Id.ToLowerInvariant(), resource.Id);
            Assert.True(ids.Add(resource.Id), "duplicate id");
        }
    }

    [Fact]
    public void Every_reference_points_at_a_resource_generated_in_the_same_run()
    {
        var resources = Generate(5, PatientCount);
        var known = resources.Select(r => $"{r.ResourceType}/{r.Id}").ToHashSet(StringComparer.Ordinal);
        var seen = 0;
        var positions = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < resources.Count; i++)
        {
            positions[$"{resources[i].ResourceType}/{resources[i].Id}"] = i;
        }

        for (var i = 0; i < resources.Count; i++)
        {
            using var json = JsonDocument.Parse(resources[i].Json);
            foreach (var reference in References(json.RootElement))
            {
                seen++;
                Assert.Contains(reference, known);
                Assert.True(positions[reference] < i, $"{resources[i].ResourceType} refers to a later resource");
            }
        }

        Assert.True(seen > PatientCount * 10);
    }

    [Fact]
    public void Every_patient_has_a_valid_INS_NIR_consistent_with_gender_and_birth_date()
    {
        var patients = Generate(9, PatientCount).Where(r => r.ResourceType == "Patient").ToList();
        Assert.Equal(PatientCount, patients.Count);
        foreach (var patient in patients)
        {
            using var json = JsonDocument.Parse(patient.Json);
            var root = json.RootElement;
            var nir = root.GetProperty("identifier").EnumerateArray()
                .Single(i => i.GetProperty("system").GetString() == KnownIdentifierSystems.InsNir)
                .GetProperty("value").GetString()!;
            Assert.True(Nir.IsValid(nir));
            Assert.Equal(nir, Nir.Normalize(nir));

            var gender = root.GetProperty("gender").GetString();
            Assert.Equal(gender == "female" ? '2' : '1', nir[0]);

            var birthDate = DateOnly.ParseExact(root.GetProperty("birthDate").GetString()!, "yyyy-MM-dd");
            Assert.Equal((birthDate.Year % 100).ToString("00"), nir[1..3]);
            Assert.Equal(birthDate.Month.ToString("00"), nir[3..5]);
            Assert.True(birthDate < AsOf);
        }
    }

    [Fact]
    public void Patients_carry_a_French_identity_and_contact_details()
    {
        var patient = new SyntheticHospital(21, AsOf).Patient(0)[0];
        using var json = JsonDocument.Parse(patient.Json);
        var root = json.RootElement;
        var name = root.GetProperty("name")[0];
        Assert.Equal("official", name.GetProperty("use").GetString());
        Assert.False(string.IsNullOrEmpty(name.GetProperty("family").GetString()));
        var address = root.GetProperty("address")[0];
        Assert.Equal("FR", address.GetProperty("country").GetString());
        Assert.Matches("^[0-9]{5}$", address.GetProperty("postalCode").GetString()!);
        var phone = root.GetProperty("telecom").EnumerateArray().First(t => t.GetProperty("system").GetString() == "phone");
        Assert.Matches(@"^\+33 [1-7]( [0-9]{2}){4}$", phone.GetProperty("value").GetString()!);
        Assert.StartsWith("Practitioner/", root.GetProperty("generalPractitioner")[0].GetProperty("reference").GetString());
    }

    [Fact]
    public void Practitioners_have_an_RPPS_number_with_a_valid_Luhn_key()
    {
        var practitioners = new SyntheticHospital(4, AsOf).Establishment().Where(r => r.ResourceType == "Practitioner").ToList();
        Assert.NotEmpty(practitioners);
        foreach (var practitioner in practitioners)
        {
            using var json = JsonDocument.Parse(practitioner.Json);
            var identifiers = json.RootElement.GetProperty("identifier").EnumerateArray().ToList();
            var rpps = identifiers.Single(i => i.GetProperty("system").GetString() == KnownIdentifierSystems.Rpps).GetProperty("value").GetString()!;
            var idNatPs = identifiers.Single(i => i.GetProperty("system").GetString() == KnownIdentifierSystems.IdNatPs).GetProperty("value").GetString()!;
            Assert.Matches("^[0-9]{11}$", rpps);
            Assert.Equal("8" + rpps, idNatPs);
            Assert.True(LuhnValid(rpps));
        }
    }

    [Fact]
    public void Clinical_dates_fall_in_the_two_years_before_the_as_of_date()
    {
        var earliest = new DateTimeOffset(AsOf.AddYears(-2).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddDays(-1);
        var latest = new DateTimeOffset(AsOf.ToDateTime(TimeOnly.MaxValue), TimeSpan.Zero);
        foreach (var resource in Generate(8, PatientCount))
        {
            using var json = JsonDocument.Parse(resource.Json);
            var root = json.RootElement;
            DateTimeOffset? when = resource.ResourceType switch
            {
                "Encounter" => root.GetProperty("period").GetProperty("start").GetDateTimeOffset(),
                "Observation" or "DiagnosticReport" => root.GetProperty("effectiveDateTime").GetDateTimeOffset(),
                "MedicationRequest" => root.GetProperty("authoredOn").GetDateTimeOffset(),
                "Invoice" => root.GetProperty("date").GetDateTimeOffset(),
                "Appointment" => root.GetProperty("created").GetDateTimeOffset(),
                _ => null,
            };
            if (when is { } instant)
            {
                Assert.InRange(instant, earliest, latest);
            }
        }
    }

    [Fact]
    public void Every_time_is_written_as_Paris_clocks_showed_it_with_Paris_offset_then_in_winter_and_in_summer()
    {
        var offsets = new HashSet<TimeSpan>();
        foreach (var resource in Generate(9, PatientCount))
        {
            using var json = JsonDocument.Parse(resource.Json);
            foreach (var text in Strings(json.RootElement).Where(t => t.Length == 25 && t[10] == 'T'))
            {
                var written = DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(ParisTime.Of(written).Offset, written.Offset);
                offsets.Add(written.Offset);
            }
        }
        Assert.Equal([TimeSpan.FromHours(1), TimeSpan.FromHours(2)], offsets.Order());

        static IEnumerable<string> Strings(JsonElement element) => element.ValueKind switch
        {
            JsonValueKind.String => [element.GetString()!],
            JsonValueKind.Object => element.EnumerateObject().SelectMany(p => Strings(p.Value)),
            JsonValueKind.Array => element.EnumerateArray().SelectMany(Strings),
            _ => [],
        };
    }

    [Fact]
    public void A_patient_averages_seven_to_ten_resources_with_every_clinical_type_present()
    {
        var hospital = new SyntheticHospital(13, AsOf);
        var resources = hospital.Patients(0, PatientCount).ToList();
        var average = resources.Count / (double)PatientCount;
        Assert.InRange(average, 7, 10);
        var types = resources.Select(r => r.ResourceType).ToHashSet();
        foreach (var type in new[] { "Patient", "Coverage", "Encounter", "Appointment", "MedicationRequest", "Observation", "DiagnosticReport", "Invoice" })
        {
            Assert.Contains(type, types);
        }
    }

    private static IEnumerable<string> References(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.NameEquals("reference") && property.Value.ValueKind == JsonValueKind.String)
                    {
                        yield return property.Value.GetString()!;
                    }
                    else
                    {
                        foreach (var nested in References(property.Value))
                        {
                            yield return nested;
                        }
                    }
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    foreach (var nested in References(item))
                    {
                        yield return nested;
                    }
                }

                break;
        }
    }

    private static bool LuhnValid(string digits)
    {
        var sum = 0;
        for (var i = 0; i < digits.Length; i++)
        {
            var d = digits[digits.Length - 1 - i] - '0';
            if (i % 2 == 1)
            {
                d = d * 2 > 9 ? (d * 2) - 9 : d * 2;
            }

            sum += d;
        }

        return sum % 10 == 0;
    }
}
