// How the chart reads records into rows (no server): which name, which value, which time, in which order, and what it does
// with what a record leaves out.
using System.Text;
using Vauban.Records;
using Vauban.Web;

namespace Vauban.Tests.People;

public sealed class PatientChartTests
{
    private static SearchEntry Entry(string type, string id, string json, bool deleted = false) =>
        new(type, id, 1, 0, Encoding.UTF8.GetBytes(json), Included: false, Deleted: deleted);

    private const string Patient = """
        {"resourceType":"Patient","id":"p1","active":false,"deceasedBoolean":true,
         "name":[{"use":"usual","family":"Martin","given":["Lou"]},{"use":"official","family":"de la Tour","given":["Louise","Anne"]}],
         "identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.8","value":"271064410900173"},{"system":"http://hospital.example/ipp","value":"IPP-1","type":{"text":"IPP"}}],
         "address":[{"line":["3 place du Marché"],"postalCode":"44000","city":"Nantes"}],"telecom":[{"system":"phone","value":"02 40 00 00 00"}],
         "generalPractitioner":[{"reference":"Practitioner/gp"}],"birthDate":"1971-06-02","gender":"female"}
        """;

    [Fact]
    public void The_identity_takes_the_official_name_with_the_family_in_capitals_and_labels_the_INS()
    {
        var chart = PatientChart.From("p1", [Entry("Patient", "p1", Patient), Entry("Practitioner", "gp", """{"resourceType":"Practitioner","name":[{"family":"Roux","given":["Paul"]}]}""")])!;
        var who = chart.Identity;
        Assert.Equal("DE LA TOUR Louise Anne", who.Name);
        Assert.Equal([("INS-NIR", "271064410900173"), ("IPP", "IPP-1")], who.Identifiers);
        Assert.Equal(["3 place du Marché, 44000 Nantes"], who.Addresses);
        Assert.Equal(["02 40 00 00 00 (phone)"], who.Telecom);
        Assert.Equal("ROUX Paul", who.GeneralPractitioner); // named from the included Practitioner: the reference had no display
        Assert.True(who.Deceased);
        Assert.True(who.Inactive);
    }

    [Fact]
    public void A_patient_known_by_her_used_name_is_shown_by_it_before_her_birth_name_and_with_her_age()
    {
        // Found by "Martin", she was listed as "DE LA TOUR Louise Anne" alone: not the name typed.
        var who = PatientChart.Matched([Entry("Patient", "p1", Patient.Replace("\"deceasedBoolean\":true,", "", StringComparison.Ordinal))])[0];
        Assert.Equal("Martin", who.UsedFamily); // as written; the pages put it in capitals
        Assert.Equal("MARTIN née DE LA TOUR Louise Anne", who.FullName);
        Assert.Equal("DE LA TOUR Louise Anne", who.Name);
        Assert.Equal("55 years", who.AgeOn(new DateOnly(2026, 12, 7)));
        Assert.Equal("54 years", who.AgeOn(new DateOnly(2026, 6, 1)));
        Assert.Equal("55 years", who.AgeOn(new DateOnly(2026, 6, 2)));
        var man = who with { Gender = "male", BirthDate = "2026-10-20" };
        Assert.Equal("MARTIN né DE LA TOUR Louise Anne", man.FullName);
        Assert.Equal("1 month", man.AgeOn(new DateOnly(2026, 12, 7)));
        Assert.Equal("5 days", man.AgeOn(new DateOnly(2026, 10, 25)));
        Assert.Null(man.AgeOn(new DateOnly(2026, 10, 19)));
        Assert.Null((who with { BirthDate = "1971" }).AgeOn(new DateOnly(2026, 12, 7)));
        // The same family in other capitals is no other name; a patient who has died is given no age.
        var same = PatientChart.Matched([Entry("Patient", "p2", """{"resourceType":"Patient","name":[{"use":"usual","family":"Dupre"},{"use":"official","family":"DUPRE","given":["Ana"]}]}""")])[0];
        Assert.Null(same.UsedFamily);
        Assert.Equal("DUPRE Ana", same.FullName);
        Assert.Null((who with { Deceased = true }).AgeOn(new DateOnly(2026, 12, 7)));
    }

    [Fact]
    public void Without_the_patient_there_is_no_chart()
    {
        Assert.Null(PatientChart.From("p1", [Entry("Observation", "o1", """{"resourceType":"Observation","status":"final"}""")]));
        Assert.Null(PatientChart.From("p1", [Entry("Patient", "p1", Patient, deleted: true)]));
        Assert.Null(PatientChart.From("p1", [Entry("Patient", "p2", Patient)]));
    }

    [Fact]
    public void Rows_are_newest_first_a_time_in_Paris_time_and_a_date_alone_as_given()
    {
        var chart = PatientChart.From("p1",
        [
            Entry("Patient", "p1", Patient),
            Entry("Observation", "old", """{"resourceType":"Observation","status":"final","code":{"text":"Sodium"},"effectiveDateTime":"2025-01-15T08:30:00Z","valueQuantity":{"value":140,"unit":"mmol/L"}}"""),
            Entry("Observation", "new", """{"resourceType":"Observation","status":"final","code":{"coding":[{"code":"2823-3","display":"Potassium"}]},"effectiveDateTime":"2026-07-01T06:05:00Z","valueQuantity":{"value":5.9,"unit":"mmol/L"},"interpretation":[{"coding":[{"code":"H","display":"High"}]}],"referenceRange":[{"low":{"value":3.5},"high":{"value":5.1}}]}"""),
            Entry("Observation", "day", """{"resourceType":"Observation","status":"final","code":{"text":"Blood group"},"effectiveDateTime":"2026-03","valueCodeableConcept":{"coding":[{"display":"A Rh+"}]}}"""),
            Entry("Observation", "none", """{"resourceType":"Observation","status":"registered","code":{"text":"Pending"}}"""),
        ])!;
        var rows = chart.Sections.Single(s => s.Type == "Observation").Rows;
        Assert.Equal(["Observation/new", "Observation/day", "Observation/old", "Observation/none"], rows.Select(r => r.Reference));
        Assert.Equal("2026-07-01 08:05", rows[0].When.Text); // summer: UTC+2
        Assert.Equal("2025-01-15 09:30", rows[2].When.Text); // winter: UTC+1
        Assert.Equal("2026-03", rows[1].When.Text);
        Assert.Equal("—", rows[3].When.Text);
        Assert.Equal(("Potassium", "5.9 mmol/L (normal 3.5–5.1)", "High"), (rows[0].What, rows[0].Detail, rows[0].Status));
        Assert.Equal("A Rh+", rows[1].Detail);
        Assert.Null(rows[3].Detail);
        Assert.Equal("Registered", rows[3].Status);
    }

    [Fact]
    public void A_date_alone_is_ordered_as_its_midnight_in_Paris_before_a_time_of_that_day()
    {
        // 00:30 on the 7th in Paris is 23:30 UTC on the 6th: the 7th alone begins at 23:00 UTC on the 6th, before it (as a search of
        // the 7th finds both). Ordered by midnight UTC, the date alone came after, as if later that night.
        var chart = PatientChart.From("p1",
        [
            Entry("Patient", "p1", Patient),
            Entry("Observation", "timed", """{"resourceType":"Observation","status":"final","code":{"text":"Lactate"},"effectiveDateTime":"2026-12-06T23:30:00Z"}"""),
            Entry("Observation", "day", """{"resourceType":"Observation","status":"final","code":{"text":"Bilan"},"effectiveDateTime":"2026-12-07"}"""),
        ])!;
        var rows = chart.Sections.Single(s => s.Type == "Observation").Rows;
        Assert.Equal(["Observation/timed", "Observation/day"], rows.Select(r => r.Reference));
        Assert.Equal(["2026-12-07 00:30", "2026-12-07"], rows.Select(r => r.When.Text));
    }

    [Fact]
    public void A_time_before_Paris_took_Greenwich_time_in_1911_is_shown_at_UTC_plus_1_not_a_server_error()
    {
        var chart = PatientChart.From("p1",
        [
            Entry("Patient", "p1", Patient),
            Entry("Observation", "old", """{"resourceType":"Observation","status":"final","code":{"text":"Archive"},"effectiveDateTime":"1905-03-01T12:00:00Z"}"""),
        ])!;
        // Paris's mean time then (tzdata: UTC+0:09:21) is not taken: before 16 September 1945 Paris is UTC+1 on every machine
        // (ADR 0013), as the search index reads such dates.
        Assert.Equal("1905-03-01 13:00", Assert.Single(chart.Sections.Single(s => s.Type == "Observation").Rows).When.Text);
    }

    [Fact]
    public void Each_kind_shows_what_matters_of_it()
    {
        var chart = PatientChart.From("p1",
        [
            Entry("Patient", "p1", Patient),
            Entry("Practitioner", "dr", """{"resourceType":"Practitioner","name":[{"family":"Auber","given":["Claire"]}]}"""),
            Entry("Organization", "chu", """{"resourceType":"Organization","name":"CHU de Nantes"}"""),
            Entry("Appointment", "a", """{"resourceType":"Appointment","status":"booked","start":"2026-12-10T09:00:00Z","description":"Consultation - Cardiologie","participant":[{"actor":{"reference":"Patient/p1"}},{"actor":{"reference":"Practitioner/dr"}}]}"""),
            Entry("MedicationRequest", "m", """{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"coding":[{"code":"J01CA04"}]},"authoredOn":"2026-11-02","dosageInstruction":[{"text":"1 g x 2 / jour"},{"text":"7 jours"}]}"""),
            Entry("Invoice", "i", """{"resourceType":"Invoice","status":"issued","date":"2026-11-03T10:00:00Z","issuer":{"reference":"Organization/chu"},"totalGross":{"value":1234.5,"currency":"EUR"}}"""),
            Entry("Encounter", "e", """{"resourceType":"Encounter","status":"finished","class":{"code":"AMB","display":"ambulatory"},"participant":[{"individual":{"reference":"Practitioner/dr"}}],"period":{"start":"2026-11-02T08:00:00Z"}}"""),
        ])!;
        ChartRow Only(string type) => Assert.Single(chart.Sections.Single(s => s.Type == type).Rows);
        Assert.Equal(("Consultation - Cardiologie", "AUBER Claire", "Booked"), (Only("Appointment").What, Only("Appointment").Detail, Only("Appointment").Status));
        Assert.Equal("booked", Only("Appointment").StatusCode); // the code, for what the page decides by it
        Assert.Equal(("J01CA04", "1 g x 2 / jour, 7 jours", "2026-11-02"), (Only("MedicationRequest").What, Only("MedicationRequest").Detail, Only("MedicationRequest").When.Text));
        Assert.Equal(("Invoice from CHU de Nantes", "1234.50 EUR"), (Only("Invoice").What, Only("Invoice").Detail));
        Assert.Equal(("ambulatory", "AUBER Claire"), (Only("Encounter").What, Only("Encounter").Detail));
        Assert.Empty(chart.Sections.Single(s => s.Type == "DocumentReference").Rows);
        Assert.Equal(PatientChart.Kinds.Select(k => k.Type), chart.Sections.Select(s => s.Type));
    }

    [Fact]
    public void A_result_below_or_above_what_the_laboratory_measures_keeps_its_comparator()
    {
        // "< 0.01 µg/L" (troponin below the limit of detection) shown as "0.01 µg/L" reads as a measured, positive value.
        var chart = PatientChart.From("p1",
        [
            Entry("Patient", "p1", Patient),
            Entry("Observation", "o", """{"resourceType":"Observation","status":"final","code":{"text":"Troponine"},"effectiveDateTime":"2026-11-02T08:00:00Z","valueQuantity":{"value":0.01,"comparator":"<","unit":"µg/L"}}"""),
        ])!;
        Assert.Equal("<0.01 µg/L", Assert.Single(chart.Sections.Single(s => s.Type == "Observation").Rows).Detail);
    }

    [Fact]
    public void A_flagged_result_that_is_not_final_says_so_beside_its_flag()
    {
        // The interpretation ("High") took the status's place: a result entered in error, or only preliminary, read as final.
        var chart = PatientChart.From("p1",
        [
            Entry("Patient", "p1", Patient),
            Entry("Observation", "wrong", """{"resourceType":"Observation","status":"entered-in-error","code":{"text":"Potassium"},"effectiveDateTime":"2026-11-02T08:00:00Z","valueQuantity":{"value":7.9,"unit":"mmol/L"},"interpretation":[{"text":"High"}]}"""),
            Entry("Observation", "final", """{"resourceType":"Observation","status":"final","code":{"text":"Sodium"},"effectiveDateTime":"2026-11-01T08:00:00Z","valueQuantity":{"value":150,"unit":"mmol/L"},"interpretation":[{"text":"High"}]}"""),
        ])!;
        var rows = chart.Sections.Single(s => s.Type == "Observation").Rows;
        Assert.Equal("High (entered in error)", rows.Single(r => r.Reference == "Observation/wrong").Status);
        Assert.Equal("High", rows.Single(r => r.Reference == "Observation/final").Status);
    }

    [Fact]
    public void A_result_measured_in_parts_shows_each_part_not_an_empty_value()
    {
        // A blood pressure has no value of its own: its systolic and diastolic values are components.
        var chart = PatientChart.From("p1",
        [
            Entry("Patient", "p1", Patient),
            Entry("Observation", "bp", """{"resourceType":"Observation","status":"final","code":{"text":"Pression artérielle"},"effectiveDateTime":"2026-11-02T08:00:00Z","component":[{"code":{"text":"Systolique"},"valueQuantity":{"value":182,"unit":"mm[Hg]"}},{"code":{"text":"Diastolique"},"valueQuantity":{"value":95,"unit":"mm[Hg]"}}]}"""),
        ])!;
        Assert.Equal("Systolique: 182 mmHg, Diastolique: 95 mmHg", Assert.Single(chart.Sections.Single(s => s.Type == "Observation").Rows).Detail);
    }

    [Theory]
    [InlineData("booked", "Booked")]
    [InlineData("entered-in-error", "Entered in error")]
    [InlineData("active", "Active")]
    [InlineData("in-progress", "In progress")]
    [InlineData("on-hold", "On hold")]
    [InlineData("noshow", "Did not attend")]
    [InlineData("fulfilled", "Attended")]
    [InlineData("balanced", "Paid")]
    public void A_FHIR_status_is_shown_in_words(string code, string words) => Assert.Equal(words, StaffWords.Status(code));

    [Theory]
    [InlineData("mm[Hg]", "mmHg")]
    [InlineData("/min", "/min")]
    [InlineData("{beats}/min", "/min")]
    [InlineData("Cel", "°C")]
    [InlineData("kg", "kg")]
    [InlineData("cm", "cm")]
    [InlineData("%", "%")]
    [InlineData("kg/m2", "kg/m²")]
    [InlineData("10*9/L", "×10⁹/L")]
    [InlineData("{cells}/uL", "/uL")]
    [InlineData("beats/min", "beats/min")]
    [InlineData("mmol/L", "mmol/L")]
    public void A_UCUM_unit_is_shown_as_clinicians_write_it(string ucum, string written) => Assert.Equal(written, StaffWords.Unit(ucum));

    [Fact]
    public void Vital_signs_recorded_through_the_API_in_UCUM_read_as_a_clinician_writes_them()
    {
        var chart = PatientChart.From("p1",
        [
            Entry("Patient", "p1", Patient),
            Entry("Observation", "t", """{"resourceType":"Observation","status":"final","code":{"text":"Température"},"effectiveDateTime":"2026-11-02T08:00:00Z","valueQuantity":{"value":38.2,"system":"http://unitsofmeasure.org","code":"Cel"}}"""),
            Entry("Observation", "hr", """{"resourceType":"Observation","status":"preliminary","code":{"text":"Pouls"},"effectiveDateTime":"2026-11-02T08:01:00Z","valueQuantity":{"value":88,"unit":"/min","code":"/min"}}"""),
        ])!;
        var rows = chart.Sections.Single(s => s.Type == "Observation").Rows;
        Assert.Equal(("38.2 °C", "Final"), (rows.Single(r => r.Reference == "Observation/t").Detail, rows.Single(r => r.Reference == "Observation/t").Status));
        Assert.Equal(("88 /min", "Preliminary"), (rows.Single(r => r.Reference == "Observation/hr").Detail, rows.Single(r => r.Reference == "Observation/hr").Status));
    }

    [Fact]
    public void The_officers_access_history_names_each_record_by_its_kind_in_words_and_its_id()
    {
        Assert.Equal("Result o1, Patient record p1, Prescription m2, Care team c3", StaffWords.Records("Observation/o1 Patient/p1 MedicationRequest/m2 CareTeam/c3"));
        Assert.Equal("", StaffWords.Records(""));
    }
}
