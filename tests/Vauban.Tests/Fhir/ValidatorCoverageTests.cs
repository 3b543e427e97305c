using System.Text.Json;
using Vauban.Fhir.Validation;
using Vauban.Records.Synthetic;

namespace Vauban.Tests.Fhir;

public class ValidatorCoverageTests
{
    private static IReadOnlyList<ValidationIssue> Validate(string json)
    {
        using var document = JsonDocument.Parse(json);
        return ResourceValidator.Validate(document.RootElement);
    }

    [Fact]
    public void Every_resource_of_the_synthetic_hospital_is_valid()
    {
        var hospital = new SyntheticHospital(7, new DateOnly(2026, 11, 1));
        var resources = hospital.Establishment().Concat(Enumerable.Range(0, 300).SelectMany(hospital.Patient)).ToList();
        Assert.True(resources.Select(r => r.ResourceType).Distinct().Count() >= 10);
        foreach (var resource in resources)
        {
            var issues = Validate(System.Text.Encoding.UTF8.GetString(resource.Json));
            Assert.True(issues.Count == 0, $"{resource.ResourceType}: {string.Join("; ", issues.Select(i => i.Location + " " + i.Message))}");
        }
    }

    [Fact]
    public void CareTeam_and_DocumentReference_with_choice_types_contained_resources_and_primitive_extensions_are_valid()
    {
        Assert.Empty(Validate("""
            { "resourceType": "CareTeam", "status": "active", "name": "Équipe diabète",
              "subject": { "reference": "Patient/p1" }, "period": { "start": "2026-01-01" },
              "participant": [{ "role": [{ "text": "infirmière" }], "member": { "reference": "Practitioner/n1" } }] }
            """));
        Assert.Empty(Validate("""
            { "resourceType": "DocumentReference", "status": "current",
              "contained": [{ "resourceType": "Practitioner", "id": "a1", "name": [{ "family": "Martin" }] }],
              "subject": { "reference": "Patient/p1" }, "author": [{ "reference": "#a1" }],
              "date": "2026-03-01T10:00:00+01:00", "_date": { "extension": [{ "url": "http://example.org/x", "valueString": "saisie" }] },
              "content": [{ "attachment": { "contentType": "application/pdf", "data": "JVBERi0xLjQK", "title": "Compte rendu" } }] }
            """));
        Assert.Empty(Validate("""
            { "resourceType": "Observation", "status": "final", "code": { "text": "TA" }, "effectivePeriod": { "start": "2026-03-01" },
              "component": [{ "code": { "text": "systolique" }, "valueQuantity": { "value": 120, "unit": "mm[Hg]" } }] }
            """));
    }

    [Theory]
    [InlineData("""{ "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": { "reference": "Patient/1" } }""", "MedicationRequest.medication[x]")]
    [InlineData("""{ "resourceType": "Patient", "name": [{ "given": ["Jean"], "famliy": "Dupont" }] }""", "Patient.name[0].famliy")]
    [InlineData("""{ "resourceType": "Patient", "_gender": { "extension": [] } }""", "Patient._gender.extension")]
    [InlineData("""{ "resourceType": "Patient", "_name": { } }""", "Patient._name")]
    [InlineData("""{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "effectiveDateTime": "2026-13-01" }""", "Observation.effectiveDateTime")]
    [InlineData("""{ "resourceType": "Observation", "status": "final ", "code": { "text": "x" } }""", "Observation.status")]
    [InlineData("""{ "resourceType": "Patient", "meta": { "project": "x" } }""", "Patient.meta.project")]
    public void Errors_are_located_by_path(string json, string path)
    {
        var issues = Validate(json);
        Assert.True(issues.Any(i => i.Location == path), string.Join("; ", issues.Select(i => i.Location)));
    }
}
