// Sample resources for the tests. Canary values are unusual enough to be searched for in raw bytes.
using Vauban.Records;

namespace Vauban.Tests.Infrastructure;

public static class Samples
{
    public const string InsNir = "urn:oid:1.2.250.1.213.1.4.8";

    /// <summary>A resource to bulk-load (vauban seed, vauban import) from its JSON.</summary>
    public static ImportItem Import(string type, string id, string json) => new(type, id, System.Text.Encoding.UTF8.GetBytes(json));

    /// <summary>A valid NIR for a man born in March 1980 in department 44.</summary>
    public static string ValidNir(string first13 = "1800344109123") => first13 + Nir.ComputeKey(first13);

    public static string Patient(string family = "Dupont", string given = "Jean", string birthDate = "1980-03-12", string? nir = null,
        string phone = "+33 6 12 34 56 78", string email = "jean.dupont@example.fr", string city = "Nantes", string? id = null, string? gp = null) => $$"""
        {
          "resourceType": "Patient",
          {{(id is null ? "" : $"\"id\": \"{id}\",")}}
          "identifier": [{ "system": "{{InsNir}}", "value": "{{nir ?? ValidNir()}}" }],
          "active": true,
          "name": [{ "use": "official", "family": "{{family}}", "given": ["{{given}}"] }],
          "telecom": [{ "system": "phone", "value": "{{phone}}" }, { "system": "email", "value": "{{email}}" }],
          "gender": "male",
          "birthDate": "{{birthDate}}",
          "address": [{ "line": ["12 rue de la Paix"], "city": "{{city}}", "postalCode": "44000", "country": "FR" }]
          {{(gp is null ? "" : $", \"generalPractitioner\": [{{ \"reference\": \"{gp}\" }}]")}}
        }
        """;

    public static string Observation(string patientRef, string loinc = "2345-7", string effective = "2026-03-01T10:00:00+01:00", string category = "laboratory") => $$"""
        {
          "resourceType": "Observation",
          "status": "final",
          "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "{{category}}" }] }],
          "code": { "coding": [{ "system": "http://loinc.org", "code": "{{loinc}}", "display": "Glucose" }] },
          "subject": { "reference": "{{patientRef}}" },
          "effectiveDateTime": "{{effective}}",
          "valueQuantity": { "value": 1.02, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L" }
        }
        """;

    public static string Appointment(string patientRef, string practitionerRef, string start, string status = "booked") => $$"""
        {
          "resourceType": "Appointment",
          "status": "{{status}}",
          "start": "{{start}}",
          "end": "{{start}}",
          "participant": [
            { "actor": { "reference": "{{patientRef}}" }, "status": "accepted" },
            { "actor": { "reference": "{{practitionerRef}}" }, "status": "accepted" }
          ]
        }
        """;

    /// <summary>A finished ambulatory encounter of a patient with a practitioner (optionally in a service): the care
    /// relationship the access policy and the guard recognise. Ids without their type prefix.</summary>
    public static string Encounter(string patientId, string practitionerId, string start, string? serviceId = null) => $$$"""
        {"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
         "subject":{"reference":"Patient/{{{patientId}}}"},
         "participant":[{"individual":{"reference":"Practitioner/{{{practitionerId}}}"}}],
         {{{(serviceId is null ? "" : "\"serviceProvider\":{\"reference\":\"Organization/" + serviceId + "\"},")}}}
         "period":{"start":"{{{start}}}","end":"{{{start}}}"}}
        """;

    public static string Practitioner(string family = "Martin", string rpps = "10001234567") => $$"""
        {
          "resourceType": "Practitioner",
          "identifier": [{ "system": "urn:oid:1.2.250.1.71.4.2.1", "value": "{{rpps}}" }],
          "name": [{ "family": "{{family}}", "given": ["Claire"], "prefix": ["Dr"] }]
        }
        """;
}
