using System.Text.Json;
using Vauban.Fhir;
using Vauban.Fhir.Validation;

namespace Vauban.Tests.Fhir;

public class ResourceValidatorTests
{
    [Theory]
    [MemberData(nameof(FhirExamples.All), MemberType = typeof(FhirExamples))]
    public void A_rich_valid_resource_of_each_supported_type_passes(string description, string json)
    {
        var issues = Validate(json);

        Assert.True(issues.Count == 0, $"{description}: {Describe(issues)}");
    }

    [Fact]
    public void Every_supported_resource_type_has_a_valid_example() =>
        Assert.Equal(
            KnownResourceTypes.Supported.Order(StringComparer.Ordinal),
            FhirExamples.All.Select(row => (string)row[0]).Select(name => name.Split(' ')[0]).Distinct().Order(StringComparer.Ordinal));

    [Fact]
    public void The_model_covers_exactly_the_known_resource_types() =>
        Assert.Equal(
            KnownResourceTypes.Supported.Order(StringComparer.Ordinal),
            FhirModel.R4.ResourceTypeNames.Order(StringComparer.Ordinal));

    [Theory]
    [InlineData("Observation", """ "valueQuantity": { "value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L" } """)]
    [InlineData("Observation", """ "valueCodeableConcept": { "coding": [{ "system": "http://snomed.info/sct", "code": "260385009" }] } """)]
    [InlineData("Observation", """ "valueString": "Présence de cristaux" """)]
    [InlineData("Observation", """ "valueBoolean": false """)]
    [InlineData("Observation", """ "valueInteger": 3 """)]
    [InlineData("Observation", """ "valueRange": { "low": { "value": 1 }, "high": { "value": 3 } } """)]
    [InlineData("Observation", """ "valueRatio": { "numerator": { "value": 1 }, "denominator": { "value": 128 } } """)]
    [InlineData("Observation", """ "valueSampledData": { "origin": { "value": 0 }, "period": 10, "dimensions": 1, "data": "1 2 3 E" } """)]
    [InlineData("Observation", """ "valueTime": "07:45:00" """)]
    [InlineData("Observation", """ "valueDateTime": "2024-03-11T07:30:00Z" """)]
    [InlineData("Observation", """ "valuePeriod": { "start": "2024-03-01", "end": "2024-03-11" } """)]
    [InlineData("Observation", """ "effectiveDateTime": "2024-03-11" """)]
    [InlineData("Observation", """ "effectivePeriod": { "start": "2024-03-11T07:30:00+01:00" } """)]
    [InlineData("Observation", """ "effectiveInstant": "2024-03-11T07:30:00.000+01:00" """)]
    [InlineData("Observation", """ "effectiveTiming": { "event": ["2024-03-11T07:30:00+01:00", "2024-03-12T07:30:00+01:00"] } """)]
    [InlineData("DiagnosticReport", """ "effectiveDateTime": "2024-03" """)]
    [InlineData("MedicationRequest", """ "reportedBoolean": true """)]
    [InlineData("MedicationRequest", """ "reportedReference": { "reference": "Practitioner/pra-0042" } """)]
    [InlineData("Patient", """ "deceasedDateTime": "2023-12-24T23:10:00+01:00" """)]
    [InlineData("Patient", """ "multipleBirthBoolean": true """)]
    public void The_official_shapes_of_choice_elements_are_accepted(string resourceType, string choiceProperty)
    {
        var required = resourceType switch
        {
            "Observation" => """ "status": "final", "code": { "text": "Test" }, """,
            "DiagnosticReport" => """ "status": "final", "code": { "text": "Test" }, """,
            "MedicationRequest" => """ "status": "active", "intent": "order", "subject": { "reference": "Patient/p" }, "medicationReference": { "reference": "Medication/m" }, """,
            _ => "",
        };

        var issues = Validate($$"""{ "resourceType": "{{resourceType}}", {{required}} {{choiceProperty}} }""");

        Assert.True(issues.Count == 0, Describe(issues));
    }

    [Fact]
    public void Choice_shapes_inside_datatypes_are_accepted()
    {
        var issues = Validate("""
            {
              "resourceType": "MedicationRequest", "status": "active", "intent": "plan",
              "medicationCodeableConcept": { "text": "Amoxicilline 1 g" }, "subject": { "reference": "Patient/p" },
              "dosageInstruction": [{
                "timing": { "repeat": { "boundsPeriod": { "start": "2024-03-12" }, "count": 3, "when": ["MORN", "EVE"] } },
                "asNeededCodeableConcept": { "text": "si fièvre" },
                "doseAndRate": [{ "doseRange": { "low": { "value": 1 }, "high": { "value": 2 } }, "rateRatio": { "numerator": { "value": 1 }, "denominator": { "value": 24 } } }]
              }],
              "substitution": { "allowedCodeableConcept": { "text": "non substituable" } }
            }
            """);

        Assert.True(issues.Count == 0, Describe(issues));
    }

    [Fact]
    public void A_root_that_is_not_an_object_is_rejected() =>
        AssertSingleIssue("""["Patient"]""", "Resource", "JSON object");

    [Fact]
    public void A_resource_without_resourceType_is_rejected() =>
        AssertSingleIssue("""{ "id": "pat-1" }""", "Resource", "resourceType");

    [Fact]
    public void An_unsupported_resourceType_is_rejected_naming_the_supported_types()
    {
        var issue = AssertSingleIssue("""{ "resourceType": "Bundle", "type": "batch" }""", "Resource.resourceType", "Unsupported");

        Assert.Contains("Patient", issue.Message);
        Assert.Contains("Invoice", issue.Message);
    }

    [Fact]
    public void A_resource_with_only_a_resourceType_is_structurally_valid() =>
        Assert.Empty(Validate("""{ "resourceType": "Patient" }"""));

    [Fact]
    public void Unknown_top_level_element_is_reported_with_its_name() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "nom": "Dupont" }""", "Patient.nom", "Unknown element 'nom' in Patient");

    [Fact]
    public void Unknown_element_in_a_name_is_reported_with_its_path() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "name": [{ "family": "Dupont" }, { "family": "Martin", "givne": ["Marie"] }] }""",
            "Patient.name[1].givne",
            "Unknown element 'givne' in HumanName");

    [Fact]
    public void Unknown_element_in_a_backbone_element_is_reported_with_its_path() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "contact": [{ "name": { "family": "Dupont" }, "lien": "époux" }] }""",
            "Patient.contact[0].lien",
            "in Patient.contact");

    [Fact]
    public void Unknown_element_deep_inside_datatypes_is_reported_with_its_path() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "identifier": [{ "system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1", "assigner": { "identifier": { "value": "x", "checksum": "7" } } }] }""",
            "Patient.identifier[0].assigner.identifier.checksum",
            "in Identifier");

    [Fact]
    public void A_choice_element_with_a_type_it_does_not_allow_is_unknown() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "deceasedString": "oui" }""",
            "Patient.deceasedString",
            "Unknown element 'deceasedString'");

    [Fact]
    public void A_choice_element_written_with_its_bare_name_is_unknown() =>
        AssertSingleIssue(
            """{ "resourceType": "Observation", "status": "final", "code": { "text": "Hb" }, "value": 13 }""",
            "Observation.value",
            "Unknown element 'value'");

    [Fact]
    public void Two_types_of_one_choice_element_are_rejected() =>
        AssertSingleIssue(
            """{ "resourceType": "Observation", "status": "final", "code": { "text": "Hb" }, "effectiveDateTime": "2024-03-11", "effectivePeriod": { "start": "2024-03-11" } }""",
            "Observation.effectivePeriod",
            "Only one type of 'effective[x]'");

    [Fact]
    public void A_property_given_twice_is_rejected() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "gender": "female", "gender": "male" }""",
            "Patient.gender",
            "more than once");

    [Fact]
    public void A_primitive_extension_sibling_is_accepted_for_a_primitive_element() =>
        Assert.Empty(Validate("""
            { "resourceType": "Patient", "_gender": { "id": "g1", "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "asked-declined" }] } }
            """));

    [Fact]
    public void A_primitive_extension_sibling_is_not_accepted_for_a_complex_element() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "_name": [{ "extension": [{ "url": "http://example.fr/x", "valueString": "y" }] }] }""",
            "Patient._name",
            "Unknown element '_name'");

    [Fact]
    public void Unknown_properties_inside_a_primitive_extension_sibling_are_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "_birthDate": { "value": "1980-02-14" } }""",
            "Patient._birthDate.value",
            "Unknown element 'value' in Element");

    [Fact]
    public void A_repeating_primitive_may_hold_null_where_its_extension_sibling_has_an_item() =>
        Assert.Empty(Validate("""
            { "resourceType": "Patient", "name": [{ "given": ["Marie", null], "_given": [null, { "extension": [{ "url": "http://example.fr/prenom-usuel", "valueBoolean": true }] }] }] }
            """));

    [Fact]
    public void A_null_in_a_repeating_primitive_without_an_extension_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "name": [{ "given": ["Marie", null] }] }""",
            "Patient.name[0].given[1]",
            "null");

    [Fact]
    public void An_extension_sibling_array_of_another_length_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "name": [{ "given": ["Marie", "Claire"], "_given": [null] }] }""",
            "Patient.name[0]._given",
            "as many items");

    [Fact]
    public void An_extension_without_url_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "extension": [{ "valueString": "x" }] }""",
            "Patient.extension[0].url",
            "Missing required element 'url' in Extension");

    [Fact]
    public void Unknown_elements_inside_an_extension_are_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "name": [{ "family": "Dupont", "extension": [{ "url": "http://example.fr/x", "valeurString": "x" }] }] }""",
            "Patient.name[0].extension[0].valeurString",
            "in Extension");

    [Fact]
    public void A_modifier_extension_without_url_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "contact": [{ "gender": "male", "modifierExtension": [{ "valueBoolean": true }] }] }""",
            "Patient.contact[0].modifierExtension[0].url",
            "Missing required element 'url'");

    [Fact]
    public void An_array_where_a_single_value_is_expected_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "gender": ["female"] }""", "Patient.gender", "must not be an array");

    [Fact]
    public void A_single_value_where_an_array_is_expected_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "name": { "family": "Dupont" } }""", "Patient.name", "must be a JSON array");

    [Fact]
    public void A_single_primitive_where_an_array_of_primitives_is_expected_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "name": [{ "given": "Marie" }] }""", "Patient.name[0].given", "must be a JSON array");

    [Fact]
    public void A_string_where_a_complex_type_is_expected_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "maritalStatus": "M" }""", "Patient.maritalStatus", "JSON object (CodeableConcept)");

    [Fact]
    public void An_object_where_a_primitive_is_expected_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "birthDate": { "value": "1980-02-14" } }""", "Patient.birthDate", "JSON string (date)");

    [Fact]
    public void An_empty_object_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "maritalStatus": {} }""", "Patient.maritalStatus", "empty object");

    [Fact]
    public void An_empty_array_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "name": [] }""", "Patient.name", "must not be empty");

    [Fact]
    public void An_empty_string_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "name": [{ "family": "" }] }""", "Patient.name[0].family", "must not be empty");

    [Fact]
    public void A_null_value_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "gender": null }""", "Patient.gender", "null");

    [Fact]
    public void A_null_item_in_an_array_of_complex_values_is_reported() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "name": [{ "family": "Dupont" }, null] }""", "Patient.name[1]", "null");

    [Fact]
    public void A_number_in_an_array_of_strings_is_reported_with_its_index() =>
        AssertSingleIssue("""{ "resourceType": "Patient", "name": [{ "given": ["Marie", 3] }] }""", "Patient.name[0].given[1]", "JSON string (string)");

    [Theory]
    [InlineData("""{ "resourceType": "Patient", "active": "true" }""", "Patient.active", "boolean")]
    [InlineData("""{ "resourceType": "Patient", "multipleBirthInteger": 1.5 }""", "Patient.multipleBirthInteger", "32-bit integer")]
    [InlineData("""{ "resourceType": "Patient", "multipleBirthInteger": 3000000000 }""", "Patient.multipleBirthInteger", "32-bit integer")]
    [InlineData("""{ "resourceType": "Patient", "multipleBirthInteger": "2" }""", "Patient.multipleBirthInteger", "32-bit integer")]
    [InlineData("""{ "resourceType": "Appointment", "status": "booked", "participant": [{ "status": "accepted" }], "minutesDuration": 0 }""", "Appointment.minutesDuration", "positiveInt")]
    [InlineData("""{ "resourceType": "MedicationRequest", "status": "active", "intent": "order", "medicationReference": { "reference": "Medication/m" }, "subject": { "reference": "Patient/p" }, "dispenseRequest": { "numberOfRepeatsAllowed": -1 } }""", "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed", "unsignedInt")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "Hb" }, "valueQuantity": { "value": "13.2" } }""", "Observation.valueQuantity.value", "decimal")]
    [InlineData("""{ "resourceType": "Patient", "gender": "fe  male" }""", "Patient.gender", "Invalid code")]
    [InlineData("""{ "resourceType": "Patient", "gender": " female" }""", "Patient.gender", "Invalid code")]
    [InlineData("""{ "resourceType": "Patient", "id": "pat_0001!" }""", "Patient.id", "Invalid id")]
    [InlineData("""{ "resourceType": "Patient", "id": "a123456789012345678901234567890123456789012345678901234567890123456789" }""", "Patient.id", "Invalid id")]
    [InlineData("""{ "resourceType": "Patient", "implicitRules": "http://example.fr/règles locales" }""", "Patient.implicitRules", "Invalid uri")]
    [InlineData("""{ "resourceType": "Patient", "meta": { "profile": ["https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient", "fr core"] } }""", "Patient.meta.profile[1]", "Invalid canonical")]
    [InlineData("""{ "resourceType": "Patient", "extension": [{ "url": "http://example.fr/oid", "valueOid": "urn:oid:1.2.250.01" }] }""", "Patient.extension[0].valueOid", "Invalid oid")]
    [InlineData("""{ "resourceType": "Patient", "extension": [{ "url": "http://example.fr/oid", "valueOid": "1.2.250.1" }] }""", "Patient.extension[0].valueOid", "Invalid oid")]
    [InlineData("""{ "resourceType": "Patient", "extension": [{ "url": "http://example.fr/uuid", "valueUuid": "urn:uuid:0F3C1A52-7D7E-4A1E-9D7B-5B2B8F6C1E21" }] }""", "Patient.extension[0].valueUuid", "Invalid uuid")]
    [InlineData("""{ "resourceType": "Patient", "photo": [{ "contentType": "image/png", "data": "pas du base64 !" }] }""", "Patient.photo[0].data", "Invalid base64Binary")]
    [InlineData("""{ "resourceType": "Patient", "birthDate": "1980-02-30" }""", "Patient.birthDate", "Invalid date")]
    [InlineData("""{ "resourceType": "Patient", "birthDate": "2023-02-29" }""", "Patient.birthDate", "Invalid date")]
    [InlineData("""{ "resourceType": "Patient", "birthDate": "1980-13" }""", "Patient.birthDate", "Invalid date")]
    [InlineData("""{ "resourceType": "Patient", "birthDate": "14/02/1980" }""", "Patient.birthDate", "Invalid date")]
    [InlineData("""{ "resourceType": "Patient", "birthDate": "0000" }""", "Patient.birthDate", "Invalid date")]
    [InlineData("""{ "resourceType": "Patient", "birthDate": "1980-02-14T06:25:00Z" }""", "Patient.birthDate", "Invalid date")]
    [InlineData("""{ "resourceType": "Patient", "deceasedDateTime": "2024-03-11T07:30:00" }""", "Patient.deceasedDateTime", "Invalid dateTime")]
    [InlineData("""{ "resourceType": "Patient", "deceasedDateTime": "2024-03-11T24:00:00Z" }""", "Patient.deceasedDateTime", "Invalid dateTime")]
    [InlineData("""{ "resourceType": "Patient", "deceasedDateTime": "2024-03-11T07:30Z" }""", "Patient.deceasedDateTime", "Invalid dateTime")]
    [InlineData("""{ "resourceType": "Patient", "deceasedDateTime": "2024-03T07:30:00Z" }""", "Patient.deceasedDateTime", "Invalid dateTime")]
    [InlineData("""{ "resourceType": "Patient", "deceasedDateTime": "2024-03-11T07:30:00+15:00" }""", "Patient.deceasedDateTime", "Invalid dateTime")]
    [InlineData("""{ "resourceType": "Patient", "deceasedDateTime": "2024-04-31" }""", "Patient.deceasedDateTime", "Invalid dateTime")]
    [InlineData("""{ "resourceType": "Patient", "meta": { "lastUpdated": "2024-03-11" } }""", "Patient.meta.lastUpdated", "Invalid instant")]
    [InlineData("""{ "resourceType": "Patient", "meta": { "lastUpdated": "2024-03-11T07:30:00." } }""", "Patient.meta.lastUpdated", "Invalid instant")]
    [InlineData("""{ "resourceType": "PractitionerRole", "availableTime": [{ "availableStartTime": "8:30" }] }""", "PractitionerRole.availableTime[0].availableStartTime", "Invalid time")]
    [InlineData("""{ "resourceType": "Patient", "text": { "status": "generated", "div": "Marie Dupont" } }""", "Patient.text.div", "Invalid xhtml")]
    public void A_malformed_primitive_is_reported_with_its_location(string json, string location, string messagePart) =>
        AssertSingleIssue(json, location, messagePart);

    [Theory]
    [InlineData("2024")]
    [InlineData("2024-02")]
    [InlineData("2024-02-29")]
    [InlineData("2024-03-11T07:30:00Z")]
    [InlineData("2024-03-11T07:30:00.123456+01:00")]
    [InlineData("2024-03-11T23:59:60-14:00")]
    [InlineData("2024-03-11T00:00:00+14:00")]
    public void Well_formed_dateTimes_are_accepted(string dateTime) =>
        Assert.Empty(Validate($$"""{ "resourceType": "Patient", "deceasedDateTime": "{{dateTime}}" }"""));

    [Theory]
    [InlineData("""{ "resourceType": "Patient", "name": [{ "family": "A\u0000B" }] }""", "Patient.name[0].family")]
    [InlineData("""{ "resourceType": "Patient", "name": [{ "family": "A\u001fB" }] }""", "Patient.name[0].family")]
    [InlineData("""{ "resourceType": "Patient", "name": [{ "family": "A\u001FB" }] }""", "Patient.name[0].family")]
    [InlineData("""{ "resourceType": "Patient", "name": [{ "family": "A\bB" }] }""", "Patient.name[0].family")]
    [InlineData("""{ "resourceType": "Patient", "name": [{ "family": "A\fB" }] }""", "Patient.name[0].family")]
    [InlineData("""{ "resourceType": "Patient", "gender": "male\u0007" }""", "Patient.gender")]
    [InlineData("""{ "resourceType": "Patient", "text": { "status": "generated", "div": "<div>\u0000</div>" } }""", "Patient.text.div")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "Hb" }, "note": [{ "text": "\\\u0001" }] }""", "Observation.note[0].text")]
    public void A_control_character_in_a_string_is_reported_with_its_location(string json, string location) =>
        AssertSingleIssue(json, location, "control characters");

    [Fact]
    public void Tabs_line_breaks_and_escaped_backslashes_are_not_control_characters() =>
        Assert.Empty(Validate("""{ "resourceType": "Observation", "status": "final", "code": { "text": "Hb" }, "note": [{ "text": "ligne 1\r\nligne 2\tfin \\u0000 \u0020 \u007f \u00e9" }] }"""));

    [Theory]
    [InlineData("""{ "resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" }, "period": { "start": "2024-03-11T10:00:00+01:00", "end": "2024-03-11T08:59:59Z" } }""", "Encounter.period.end", "per-1")]
    // Two values without a zone are on one clock, whichever: compared as the calendar.
    [InlineData("""{ "resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" }, "period": { "start": "2024-03-12", "end": "2024-03-11" } }""", "Encounter.period.end", "per-1")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "Hb" }, "effectivePeriod": { "start": "2024", "end": "2023-12" } }""", "Observation.effectivePeriod.end", "per-1")]
    // One without a zone against one with: surely after only if it is in every zone (-14:00 to +14:00). The 12th begins at the
    // earliest at 10:00 UTC on the 11th (+14:00); the 1st ends at the latest at 14:00 UTC on the 2nd (-14:00).
    [InlineData("""{ "resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" }, "period": { "start": "2024-03-12", "end": "2024-03-11T09:59:59Z" } }""", "Encounter.period.end", "per-1")]
    [InlineData("""{ "resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" }, "period": { "start": "2024-03-02T14:00:00Z", "end": "2024-03-01" } }""", "Encounter.period.end", "per-1")]
    [InlineData("""{ "resourceType": "Appointment", "status": "booked", "start": "2026-03-02T10:30:00+01:00", "end": "2026-03-02T10:00:00+01:00", "participant": [{ "status": "accepted" }] }""", "Appointment.end", "appointment's end")]
    public void An_end_before_its_start_is_reported(string json, string location, string messagePart) =>
        AssertSingleIssue(json, location, messagePart);

    [Theory]
    [InlineData("""{ "start": "2024-03-11T10:00:00+01:00", "end": "2024-03-11T09:00:00Z" }""")]
    [InlineData("""{ "start": "2024-03-11", "end": "2024-03-11T10:00:00Z" }""")]
    [InlineData("""{ "start": "2024-03-12", "end": "2024-03-11T23:30:00Z" }""")]
    // A value without a zone is its writer's, not Paris's, against one with a zone: refused only when surely after (per-1 under
    // FHIRPath does not fail where it cannot decide). Paris's 12th starts at 23:00 UTC on the 11th, and its 1st ends at 23:00 UTC.
    [InlineData("""{ "start": "2024-03-12", "end": "2024-03-11T22:59:59Z" }""")]
    [InlineData("""{ "start": "2024-03-12", "end": "2024-03-11T10:00:00Z" }""")]
    [InlineData("""{ "start": "2024-03-12T00:30:00+01:00", "end": "2024-03-11" }""")]
    [InlineData("""{ "start": "2024-03-01T21:00:00-04:00", "end": "2024-03-01" }""")]
    [InlineData("""{ "start": "2024-03-02T13:59:59Z", "end": "2024-03-01" }""")]
    [InlineData("""{ "start": "2024-03-11T10:00:00Z", "end": "2024-03-11" }""")]
    [InlineData("""{ "start": "2024-03", "end": "2024-03-01" }""")]
    [InlineData("""{ "start": "2024-03-11" }""")]
    [InlineData("""{ "end": "2024-03-11" }""")]
    public void A_period_whose_end_is_not_before_its_start_is_accepted(string period) =>
        Assert.Empty(Validate($$"""{ "resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" }, "period": {{period}} }"""));

    [Fact]
    public void A_reference_whose_type_disagrees_with_the_type_it_names_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Observation", "status": "final", "code": { "text": "Hb" }, "subject": { "reference": "Patient/p", "type": "Device" } }""",
            "Observation.subject.type",
            "names a Patient but its type says Device");

    [Theory]
    [InlineData("""{ "reference": "Patient/p", "type": "Patient" }""")]
    [InlineData("""{ "reference": "https://hopital.example/fhir/Patient/p", "type": "http://hl7.org/fhir/StructureDefinition/Patient" }""")]
    [InlineData("""{ "reference": "urn:uuid:5e0c8a52-0d55-4d8a-9a43-6f1b8a3c9e01", "type": "Patient" }""")]
    public void A_reference_whose_type_agrees_with_what_it_names_is_accepted(string subject) =>
        Assert.Empty(Validate($$"""{ "resourceType": "Observation", "status": "final", "code": { "text": "Hb" }, "subject": {{subject}} }"""));

    [Fact]
    public void A_string_written_with_json_escapes_is_checked_on_its_text() =>
        Assert.Empty(Validate("""{ "resourceType": "Patient", "birthDate": "1980\u002D02\u002D14", "name": [{ "family": "D\u00e9sir\u00e9" }] }"""));

    [Fact]
    public void Missing_required_top_level_elements_are_each_reported()
    {
        var issues = Validate("""{ "resourceType": "Observation", "valueString": "positif" }""");

        Assert.Equal(
            ["Observation.code", "Observation.status"],
            issues.Select(issue => issue.Location).Order(StringComparer.Ordinal));
        Assert.All(issues, issue => Assert.Contains("Missing required element", issue.Message));
    }

    [Fact]
    public void A_missing_required_choice_element_is_reported_by_its_choice_name() =>
        AssertSingleIssue(
            """{ "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": { "reference": "Patient/p" } }""",
            "MedicationRequest.medication[x]",
            "Missing required element 'medication[x]'");

    [Fact]
    public void A_missing_required_element_in_a_backbone_element_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "link": [{ "type": "seealso" }] }""",
            "Patient.link[0].other",
            "Missing required element 'other' in Patient.link");

    [Fact]
    public void A_missing_required_element_in_a_datatype_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "text": { "status": "generated" } }""",
            "Patient.text.div",
            "Missing required element 'div' in Narrative");

    [Fact]
    public void A_required_primitive_given_only_by_its_extensions_counts_as_present() =>
        Assert.Empty(Validate("""
            { "resourceType": "Observation", "code": { "text": "Hb" }, "_status": { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown" }] } }
            """));

    [Fact]
    public void A_contained_resource_is_validated_with_its_path() =>
        AssertSingleIssue(
            """{ "resourceType": "MedicationRequest", "status": "active", "intent": "order", "medicationCodeableConcept": { "text": "paracétamol" }, "subject": { "reference": "Patient/p" }, "contained": [{ "resourceType": "Organization", "id": "org", "nom": "Pharmacie" }] }""",
            "MedicationRequest.contained[0].nom",
            "Unknown element 'nom' in Organization");

    [Fact]
    public void A_contained_resource_of_an_unsupported_type_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "contained": [{ "resourceType": "Questionnaire", "id": "q" }] }""",
            "Patient.contained[0].resourceType",
            "Unsupported resourceType");

    [Fact]
    public void A_contained_resource_without_resourceType_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "contained": [{ "id": "org", "name": "Pharmacie" }] }""",
            "Patient.contained[0]",
            "resourceType");

    [Fact]
    public void A_contained_resource_that_contains_resources_is_reported() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "contained": [{ "resourceType": "Organization", "id": "a", "contained": [{ "resourceType": "Organization", "id": "b" }] }] }""",
            "Patient.contained[0].contained",
            "cannot itself contain");

    [Fact]
    public void The_root_id_is_optional_but_checked_when_present()
    {
        Assert.Empty(Validate("""{ "resourceType": "Patient", "gender": "other" }"""));
        Assert.Empty(Validate("""{ "resourceType": "Patient", "id": "A-1.b" }"""));
        AssertSingleIssue("""{ "resourceType": "Patient", "id": "" }""", "Patient.id", "empty");
    }

    [Fact]
    public void Meta_is_validated_as_Meta() =>
        AssertSingleIssue(
            """{ "resourceType": "Patient", "meta": { "versionId": "1", "auteur": "x" } }""",
            "Patient.meta.auteur",
            "Unknown element 'auteur' in Meta");

    [Fact]
    public void Validation_stops_after_the_maximum_number_of_issues()
    {
        var properties = string.Join(", ", Enumerable.Range(0, 100).Select(i => $"\"inconnu{i}\": {i}"));

        var issues = Validate($$"""{ "resourceType": "Patient", {{properties}} }""");

        Assert.Equal(ResourceValidator.MaxIssues, issues.Count);
    }

    [Fact]
    public void A_very_long_unknown_element_name_is_truncated_in_the_message()
    {
        var name = new string('x', 10_000);

        var issue = Assert.Single(Validate($$"""{ "resourceType": "Patient", "{{name}}": 1 }"""));

        Assert.True(issue.Message.Length < 200, issue.Message);
    }

    [Fact]
    public void Issue_messages_never_echo_submitted_values()
    {
        var issues = Validate("""{ "resourceType": "Patient", "birthDate": "1980-02-30", "gender": " Dupont ", "id": "280026912345678!" }""");

        Assert.Equal(3, issues.Count);
        Assert.All(issues, issue => Assert.DoesNotContain("1980", issue.Message));
        Assert.All(issues, issue => Assert.DoesNotContain("Dupont", issue.Message));
        Assert.All(issues, issue => Assert.DoesNotContain("280026912345678", issue.Message));
    }

    [Fact]
    public void Validating_a_valid_patient_allocates_almost_nothing()
    {
        using var document = JsonDocument.Parse(FhirExamples.Patient);
        ResourceValidator.Validate(document.RootElement);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            ResourceValidator.Validate(document.RootElement);
        }

        var perValidation = (GC.GetAllocatedBytesForCurrentThread() - before) / 100;

        // The walker and its path stack only; a string per property would cost kilobytes.
        Assert.True(perValidation < 512, $"{perValidation} bytes per validation");
    }

    [Theory]
    [InlineData("""{ "resourceType": "Patient", "gender": "robot" }""", "Patient.gender", "male, female, other, unknown")]
    [InlineData("""{ "resourceType": "Observation", "status": "bogus", "code": { "text": "x" } }""", "Observation.status", "observation-status")]
    [InlineData("""{ "resourceType": "Appointment", "status": "whatever", "participant": [{ "status": "accepted" }] }""", "Appointment.status", "appointmentstatus")]
    [InlineData("""{ "resourceType": "Appointment", "status": "booked", "participant": [{ "status": "maybe" }] }""", "Appointment.participant[0].status", "participationstatus")]
    [InlineData("""{ "resourceType": "Patient", "telecom": [{ "system": "pigeon", "value": "x" }] }""", "Patient.telecom[0].system", "contact-point-system")]
    [InlineData("""{ "resourceType": "Patient", "gender": "Male" }""", "Patient.gender", "male")]
    public void A_code_outside_its_required_binding_is_refused_naming_the_allowed_codes(string json, string location, string messagePart) =>
        AssertSingleIssue(json, location, messagePart);

    [Fact]
    public void Codes_of_bindings_that_cannot_be_listed_stay_free_and_listed_ones_are_accepted()
    {
        // Attachment.contentType is bound (required) to BCP-13 mime types, which no value set here lists: not checked.
        Assert.Empty(Validate("""
            { "resourceType": "DocumentReference", "status": "current", "content": [{ "attachment": { "contentType": "application/x-vauban-test" } }] }
            """));
        Assert.Empty(Validate("""{ "resourceType": "Patient", "gender": "unknown", "telecom": [{ "system": "sms", "use": "mobile", "value": "x" }] }"""));
    }

    [Theory]
    [InlineData("""{ "reference": "Practitioner/pra-1" }""", "Observation.subject.reference", "A reference of type Practitioner is not allowed here: this element refers to Device, Group, Location or Patient.")]
    [InlineData("""{ "reference": "Practitioner/pra-1/_history/2" }""", "Observation.subject.reference", "type Practitioner")]
    [InlineData("""{ "reference": "https://other.example/fhir/Organization/o-1" }""", "Observation.subject.reference", "type Organization")]
    [InlineData("""{ "reference": "Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1|10003" }""", "Observation.subject.reference", "type Practitioner")]
    [InlineData("""{ "type": "Practitioner", "identifier": { "system": "urn:oid:1.2.250.1.71.4.2.1", "value": "10003" } }""", "Observation.subject.type", "type Practitioner")]
    [InlineData("""{ "type": "http://hl7.org/fhir/StructureDefinition/Organization", "display": "CHU" }""", "Observation.subject.type", "type Organization")]
    public void A_reference_to_a_type_its_element_does_not_allow_is_refused(string subject, string location, string messagePart) =>
        AssertSingleIssue($$"""{ "resourceType": "Observation", "status": "final", "code": { "text": "HIV" }, "subject": {{subject}} }""", location, messagePart.Replace("a Organization", "type Organization"));

    [Theory]
    [InlineData("""{ "reference": "Patient/p-1" }""")]
    [InlineData("""{ "reference": "Group/g-1" }""")]
    [InlineData("""{ "reference": "Patient/p-1/_history/3" }""")]
    [InlineData("""{ "reference": "https://other.example/fhir/Device/d-1" }""")]
    [InlineData("""{ "reference": "urn:uuid:0b8c2f4e-6b1a-4a55-9c1e-2f4c1a8e7d21" }""")]
    [InlineData("""{ "reference": "https://other.example/records/42" }""")]
    [InlineData("""{ "reference": "Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|280026912345678" }""")]
    [InlineData("""{ "type": "Patient", "identifier": { "system": "urn:oid:1.2.250.1.213.1.4.8", "value": "280026912345678" } }""")]
    [InlineData("""{ "type": "https://other.example/SomeLocalType", "display": "x" }""")]
    public void A_reference_to_an_allowed_type_or_one_that_does_not_say_its_type_passes_this_check(string subject) =>
        Assert.Empty(Validate($$"""{ "resourceType": "Observation", "status": "final", "code": { "text": "HIV" }, "subject": {{subject}} }"""));

    [Fact]
    public void Reference_targets_are_checked_in_backbone_elements_datatypes_and_choices()
    {
        AssertSingleIssue("""{ "resourceType": "Patient", "generalPractitioner": [{ "reference": "Patient/p-2" }] }""",
            "Patient.generalPractitioner[0].reference", "Organization, Practitioner or PractitionerRole");
        AssertSingleIssue("""{ "resourceType": "Appointment", "status": "booked", "participant": [{ "actor": { "reference": "Organization/o-1" }, "status": "accepted" }] }""",
            "Appointment.participant[0].actor.reference", "type Organization");
        AssertSingleIssue("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "note": [{ "authorReference": { "reference": "Device/d-1" }, "text": "x" }] }""",
            "Observation.note[0].authorReference.reference", "type Device");
        AssertSingleIssue("""{ "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": { "reference": "Patient/p" }, "medicationReference": { "reference": "Observation/o-1" } }""",
            "MedicationRequest.medicationReference.reference", "this element refers to Medication.");
        // An extension's Reference may point to any resource.
        Assert.Empty(Validate("""{ "resourceType": "Patient", "extension": [{ "url": "https://vauban.example/x", "valueReference": { "reference": "Device/d-1" } }] }"""));
    }

    private static List<ValidationIssue> Validate(string json)
    {
        using var document = JsonDocument.Parse(json);
        return [.. ResourceValidator.Validate(document.RootElement)];
    }

    private static ValidationIssue AssertSingleIssue(string json, string location, string messagePart)
    {
        var issues = Validate(json);
        Assert.True(issues.Count == 1, $"Expected one issue at {location}, got: {Describe(issues)}");
        var issue = issues[0];
        Assert.Equal(location, issue.Location);
        Assert.Contains(messagePart, issue.Message);
        return issue;
    }

    private static string Describe(List<ValidationIssue> issues) =>
        issues.Count == 0 ? "no issues" : string.Join("; ", issues.Select(issue => $"{issue.Location}: {issue.Message}"));

    [Theory]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>", "<script> is not allowed")]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=\"x\" onerror=\"alert(1)\"/></div>", "'onerror' is not allowed")]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=x onerror=alert(1)/></div>", "not well-formed XML")]
    [InlineData("<div>no namespace</div>", "XHTML namespace")]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\" JavaScript:alert(1)\">x</a></div>", "must not run code")]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=\"data:image/svg+xml;base64,PHN2Zz4=\"/></div>", "must not run code")]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\"><iframe src=\"https://x.example\"></iframe></div>", "<iframe> is not allowed")]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\"><svg xmlns=\"http://www.w3.org/2000/svg\"/>x</div>", "every element must be XHTML")]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\">  </div>", "txt-2")]
    [InlineData("<!DOCTYPE div [<!ENTITY a \"aaaa\">]><div xmlns=\"http://www.w3.org/1999/xhtml\">&a;</div>", "XHTML starting with a <div> element")]
    [InlineData("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div><p>y</p>", "not well-formed XML")]
    public void A_narrative_with_active_content_or_that_is_not_XHTML_is_refused(string div, string message)
    {
        // Only "starts with <div" was checked: scripts and event handlers were stored and served to every narrative viewer.
        var issues = Validate(Narrative(div));
        Assert.Contains(issues, i => i.Location == "Patient.text.div" && i.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void A_narrative_longer_than_the_reader_takes_is_refused_as_too_long_not_as_ill_formed()
    {
        var div = "<div xmlns=\"http://www.w3.org/1999/xhtml\">" + new string('x', 8 * 1024 * 1024) + "</div>";
        var issue = Assert.Single(Validate(Narrative(div)), i => i.Location == "Patient.text.div");
        Assert.Contains("the narrative is longer than 8,388,608 characters.", issue.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_narrative_of_basic_formatting_links_images_and_styles_is_valid()
    {
        const string Div = "<div xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"fr\"><p style=\"color: red\">Marie <b>DUPONT</b></p>"
            + "<table class=\"grid\"><tr><th colspan=\"2\">Bilan</th></tr><tr><td>Hb</td><td>13,2 g/dL</td></tr></table>"
            + "<a href=\"https://example.org/doc#x\">lien</a><img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"logo\"/><br/><![CDATA[ 1 < 2 ]]></div>";
        Assert.Empty(Validate(Narrative(Div)));
    }

    private static string Narrative(string div) =>
        $$"""{ "resourceType": "Patient", "text": { "status": "generated", "div": {{JsonSerializer.Serialize(div)}} } }""";

    [Theory]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "performer": [ { "reference": "practitioner/p1" } ] }""", "Observation.performer[0].reference", "must name a FHIR resource type")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "subject": { "reference": "Patients/p1" } }""", "Observation.subject.reference", "must name a FHIR resource type")]
    [InlineData("""{ "resourceType": "Patient", "generalPractitioner": [ { "reference": "Bogus/1" } ] }""", "Patient.generalPractitioner[0].reference", "must name a FHIR resource type")]
    // A patient named askew (a record filed under no patient, once) is malformed before it is unfollowed.
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "subject": { "reference": " Patient/p1" } }""", "Observation.subject.reference", "must name a FHIR resource type")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "subject": { "reference": "patient/p1" } }""", "Observation.subject.reference", "must name a FHIR resource type")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "subject": { "reference": "Patient/p1/" } }""", "Observation.subject.reference", "valid id")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "performer": [ { "reference": "Practitioner/a b" } ] }""", "Observation.performer[0].reference", "valid id")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "performer": [ { "reference": "Practitioner/" } ] }""", "Observation.performer[0].reference", "valid id")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "performer": [ { "reference": "#nothere" } ] }""", "Observation.performer[0].reference", "ref-1")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "contained": [ { "resourceType": "Encounter", "id": "e1", "status": "finished", "class": { "code": "AMB" } } ], "performer": [ { "reference": "#e1" } ] }""", "Observation.performer[0].reference", "contained Encounter is not allowed")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "contained": [ { "resourceType": "Organization", "id": "o1", "name": "B" } ], "performer": [ { "reference": "#o1", "type": "Practitioner" } ] }""", "Observation.performer[0].type", "contained Organization but its type says Practitioner")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "contained": [ { "resourceType": "Practitioner", "id": "p1" }, { "resourceType": "Organization", "id": "p1", "name": "B" } ], "performer": [ { "reference": "#p1" } ] }""", "Observation.performer[0].reference", "two contained resources")]
    public void A_reference_that_names_no_resource_type_no_valid_id_or_no_contained_resource_of_an_allowed_type_is_refused(string json, string location, string message)
    {
        // Each was stored: a typo in the type filed a result under no patient, a contained Encounter became a performer.
        var issues = Validate(json);
        Assert.Contains(issues, i => i.Location == location && i.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void References_to_a_version_an_absolute_URL_a_urn_and_a_contained_practitioner_are_valid()
    {
        Assert.Empty(Validate("""
            { "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "subject": { "reference": "Patient/p-1.2/_history/3" },
              "contained": [ { "resourceType": "Practitioner", "id": "pr" } ],
              "performer": [ { "reference": "#pr", "type": "Practitioner" }, { "reference": "https://other.example/fhir/Practitioner/9" }, { "reference": "urn:uuid:5e0c8a52-0d55-4d8a-9a43-6f1b8a3c9e01" } ] }
            """));
    }

    [Theory]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "modifierExtension": [ { "url": "http://example.org/not-performed", "valueBoolean": true } ] }""", "Observation.modifierExtension", "modifierExtension is not supported")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "component": [ { "code": { "text": "y" }, "modifierExtension": [ { "url": "http://example.org/refuted", "valueBoolean": true } ] } ] }""", "Observation.component[0].modifierExtension", "modifierExtension is not supported")]
    [InlineData("""{ "resourceType": "Practitioner", "implicitRules": "http://example.org/rules" }""", "Practitioner.implicitRules", "implicitRules is not supported")]
    public void A_modifier_extension_or_implicit_rules_the_server_does_not_understand_is_refused(string json, string location, string message) =>
        // They were stored and indexed as if absent: a result its sender marked "not performed" counted as a result, and as care.
        AssertSingleIssue(json, location, message);

    [Theory]
    [InlineData("""{ "resourceType": "Practitioner", "extension": [ { "url": "http://x.example/e", "extension": [ { "url": "a", "valueString": "b" } ], "valueString": "c" } ] }""", "Practitioner.extension[0]", "ext-1")]
    [InlineData("""{ "resourceType": "Practitioner", "extension": [ { "url": "http://x.example/e" } ] }""", "Practitioner.extension[0]", "ext-1")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "valueQuantity": { "value": 1, "code": "mg" } }""", "Observation.valueQuantity.system", "qty-3")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "valueString": "a", "dataAbsentReason": { "text": "x" } }""", "Observation.dataAbsentReason", "obs-6")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "referenceRange": [ { "type": { "text": "x" } } ] }""", "Observation.referenceRange[0]", "obs-3")]
    [InlineData("""{ "resourceType": "Appointment", "status": "booked", "start": "2025-01-01T10:00:00Z", "participant": [ { "actor": { "reference": "Patient/p" }, "status": "accepted" } ] }""", "Appointment.end", "app-2")]
    [InlineData("""{ "resourceType": "Appointment", "status": "booked", "participant": [ { "actor": { "reference": "Patient/p" }, "status": "accepted" } ] }""", "Appointment.start", "app-3")]
    [InlineData("""{ "resourceType": "Appointment", "status": "proposed", "participant": [ { "status": "accepted" } ] }""", "Appointment.participant[0]", "app-1")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "contained": [ { "resourceType": "Practitioner", "id": "p1" } ] }""", "Observation.contained[0]", "dom-3")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "contained": [ { "resourceType": "Practitioner", "id": "p1", "meta": { "versionId": "1" } } ], "performer": [ { "reference": "#p1" } ] }""", "Observation.contained[0].meta", "dom-4")]
    public void A_resource_breaking_an_R4_invariant_is_refused_naming_it(string json, string location, string invariant) =>
        // Each was stored: a booked appointment without its time (found by no date search), a value with the reason it has none.
        AssertSingleIssue(json, location, "FHIR R4 invariant " + invariant);

    [Fact]
    public void A_proposed_appointment_without_time_and_a_contained_resource_referred_to_are_valid()
    {
        Assert.Empty(Validate("""{ "resourceType": "Appointment", "status": "proposed", "participant": [ { "actor": { "reference": "Patient/p" }, "status": "needs-action" } ] }"""));
        Assert.Empty(Validate("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "contained": [ { "resourceType": "Practitioner", "id": "p1" } ], "performer": [ { "reference": "#p1" } ], "valueQuantity": { "value": 1, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" } }"""));
    }

    [Theory]
    [InlineData("""{ "resourceType": "Invoice", "status": "issued", "totalNet": { "value": 10, "currency": "EURO" } }""", "Invoice.totalNet.currency", "ISO 4217")]
    [InlineData("""{ "resourceType": "Invoice", "status": "issued", "totalNet": { "value": 10, "currency": "eur" } }""", "Invoice.totalNet.currency", "ISO 4217")]
    [InlineData("""{ "resourceType": "DocumentReference", "status": "current", "content": [ { "attachment": { "contentType": "not a mime" } } ] }""", "DocumentReference.content[0].attachment.contentType", "media type")]
    [InlineData("""{ "resourceType": "DocumentReference", "status": "current", "content": [ { "attachment": { "contentType": "application/pdf", "language": "français" } } ] }""", "DocumentReference.content[0].attachment.language", "BCP 47")]
    [InlineData("""{ "resourceType": "Practitioner", "language": "bogus lang" }""", "Practitioner.language", "BCP 47")]
    public void A_code_outside_the_external_system_its_required_binding_names_is_refused(string json, string location, string message)
    {
        // Required bindings to ISO 4217, BCP 13 and BCP 47 were not checked: a bill in "EURO" was stored.
        var issues = Validate(json);
        Assert.Contains(issues, i => i.Location == location && i.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Currencies_media_types_and_language_tags_of_the_right_form_are_valid() =>
        Assert.Empty(Validate("""
            { "resourceType": "DocumentReference", "status": "current", "language": "fr-FR",
              "content": [ { "attachment": { "contentType": "text/plain; charset=utf-8", "language": "fr" } }, { "attachment": { "contentType": "application/fhir+json", "language": "x-klingon" } } ] }
            """));

    [Fact]
    public void A_prescription_with_its_medication_contained_is_valid_and_the_medication_is_validated()
    {
        // The usual R4 shape when the sender has no Medication endpoint was refused ("Unsupported resourceType").
        const string Prescription = """
            { "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": { "reference": "Patient/p" },
              "contained": [ { "resourceType": "Medication", "id": "med1", "code": { "text": "Paracétamol 500 mg" }, "form": { "text": "comprimé" } } ],
              "medicationReference": { "reference": "#med1" } }
            """;
        Assert.Empty(Validate(Prescription));
        AssertSingleIssue(Prescription.Replace("\"form\"", "\"forme\"", StringComparison.Ordinal), "MedicationRequest.contained[0].forme", "Unknown element 'forme' in Medication");
        // Not a resource of its own here.
        Assert.Contains(Validate("""{ "resourceType": "Medication", "code": { "text": "x" } }"""), i => i.Message.StartsWith("Unsupported resourceType", StringComparison.Ordinal));
    }
}
