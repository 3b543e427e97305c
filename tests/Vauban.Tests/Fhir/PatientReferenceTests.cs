// A record names its patient in the one form the server follows, "Patient/<id>": that reference is what puts the
// record in the patient's record (its compartment), which the access policy, the guard, $everything and a breach's
// scope all read. Any other form (an absolute URL, a contained Patient, a urn: or conditional reference, an
// identifier or display alone) left the record in no patient's record — open to every reader of its type, clients
// limited to other patients included — and is refused, by create, update, transaction and import alike.
using System.Net;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

/// <remarks>One server for the class (<see cref="FhirServerFixture"/>), each test in an establishment of its own.</remarks>
public abstract class PatientReferenceTests(FhirServerFixture shared) : IAsyncLifetime
{
    private readonly VaubanServer _server = shared.Server;
    private readonly string _establishment = "hospital-" + Guid.NewGuid().ToString("N")[..10];
    private HttpClient _api = null!;
    private string _patient = "", _other = "";

    public async Task InitializeAsync()
    {
        _api = await _server.ClientAsync(_establishment);
        _patient = await CreateAsync("/fhir/Patient", Samples.Patient(family: "Suivi", nir: Samples.ValidNir("2850544109011")));
        _other = await CreateAsync("/fhir/Patient", Samples.Patient(family: "Autre", nir: Samples.ValidNir("2850544109012")));
    }

    public Task DisposeAsync()
    {
        _api.Dispose();
        return Task.CompletedTask;
    }

    private async Task<string> CreateAsync(string url, string json)
    {
        using var response = await _api.PostAsync(url, FhirContent.Json(json));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body.ToString());
        return body.GetProperty("id").GetString()!;
    }

    /// <summary>A result about the patient, with its subject written as <paramref name="subject"/> (a JSON object).</summary>
    private static string Result(string subject, string contained = "") => $$"""
        { "resourceType": "Observation", "status": "final", "code": { "text": "sérologie VIH" }, "subject": {{subject}},
          {{contained}} "valueString": "positif" }
        """;

    public static TheoryData<string, string> Unfollowed => new()
    {
        { """{ "reference": "http://127.0.0.1/fhir/Patient/{id}" }""", "" },
        { """{ "reference": "Patient?identifier=urn:oid:1.2.250.1.71.4.2.7|IPP-1" }""", "" },
        { """{ "reference": "urn:uuid:5e0c8a52-0d55-4d8a-9a43-6f1b8a3c9e01" }""", "" },
        { """{ "reference": "#p" }""", """ "contained": [{ "resourceType": "Patient", "id": "p", "name": [{ "family": "Contenu" }] }], """ },
        { """{ "identifier": { "system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP-1" } }""", "" },
        { """{ "display": "Jean Dupont" }""", "" },
        { """{ "type": "Patient", "reference": "https://elsewhere.example/Subject/{id}" }""", "" },
    };

    [Theory]
    [MemberData(nameof(Unfollowed))]
    public async Task A_record_naming_its_patient_in_a_form_the_server_does_not_follow_is_422_and_nothing_is_stored(string subject, string contained)
    {
        var json = Result(subject.Replace("{id}", _patient, StringComparison.Ordinal), contained);
        using (var create = await _api.PostAsync("/fhir/Observation", FhirContent.Json(json)))
        {
            await AssertRefusedAsync(create);
        }
        using (var update = await _api.PutAsync("/fhir/Observation/obs-put", FhirContent.Json(json.Replace("{ \"resourceType\": \"Observation\",", "{ \"resourceType\": \"Observation\", \"id\": \"obs-put\",", StringComparison.Ordinal))))
        {
            await AssertRefusedAsync(update);
        }
        var bundle = $$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ { "resource": {{json}}, "request": { "method": "POST", "url": "Observation" } } ] }""";
        using (var transaction = await _api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            // (A urn:uuid: naming no entry, and a conditional reference, which this server does not resolve, are refused before, for
            // that reason, as a transaction it cannot process: 400.)
            var body = await transaction.BodyAsync();
            var expected = subject.Contains("urn:uuid:", StringComparison.Ordinal) || subject.Contains("Patient?", StringComparison.Ordinal)
                ? HttpStatusCode.BadRequest : HttpStatusCode.UnprocessableEntity;
            Assert.True(transaction.StatusCode == expected, $"{(int)transaction.StatusCode}: {body}");
            Assert.Contains("Bundle.entry[0]", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, StringComparison.Ordinal);
        }
        using var count = await _api.GetAsync("/fhir/Observation?_summary=count");
        Assert.Equal(0, (await count.BodyAsync()).GetProperty("total").GetInt32());
    }

    public static TheoryData<string, string> NamingNoPatient => new()
    {
        { "Observation", """{ "resourceType": "Observation", "status": "final", "code": { "text": "sérologie VIH" }, "valueString": "positif, Jean Dupont" }""" },
        { "Observation", """{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "subject": { "reference": "Group/g1" } }""" },
        { "Observation", """{ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "focus": [ { "reference": "Patient/p1" } ] }""" },
        { "Encounter", """{ "resourceType": "Encounter", "status": "finished", "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" } }""" },
        { "DiagnosticReport", """{ "resourceType": "DiagnosticReport", "status": "final", "code": { "text": "bilan" }, "conclusion": "Jean Dupont" }""" },
        { "DocumentReference", """{ "resourceType": "DocumentReference", "status": "current", "content": [ { "attachment": { "title": "compte rendu" } } ] }""" },
        { "Appointment", """
            { "resourceType": "Appointment", "status": "booked", "start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T10:30:00+01:00",
              "participant": [ { "actor": { "display": "Jean Dupont, né le 01/02/1960" }, "status": "accepted" },
                               { "actor": { "reference": "Practitioner/dr-x" }, "status": "accepted" } ] }
            """ },
        { "Appointment", """
            { "resourceType": "Appointment", "status": "booked", "start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T10:30:00+01:00",
              "participant": [ { "type": [ { "text": "patient" } ], "status": "accepted" } ] }
            """ },
    };

    [Theory]
    [MemberData(nameof(NamingNoPatient))]
    public async Task A_record_that_names_no_patient_at_all_is_422_and_nothing_is_stored(string type, string json)
    {
        // R4 lets these elements be absent: the record was stored in no patient's record, open to everyone who may read its type.
        using (var create = await _api.PostAsync($"/fhir/{type}", FhirContent.Json(json)))
        {
            var body = await create.BodyAsync();
            Assert.True(create.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)create.StatusCode}: {body}");
            Assert.Contains($"{type} must name its patient", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, StringComparison.Ordinal);
        }
        var bundle = $$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ { "resource": {{json}}, "request": { "method": "POST", "url": "{{type}}" } } ] }""";
        using (var transaction = await _api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, transaction.StatusCode);
        }
        using var count = await _api.GetAsync($"/fhir/{type}?_summary=count");
        Assert.Equal(0, (await count.BodyAsync()).GetProperty("total").GetInt32());
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response)
    {
        var body = await response.BodyAsync();
        // A well-formed resource refused by a rule of this server (FHIR R4 http.html: 422), as one naming a patient that does not exist.
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)response.StatusCode}: {body}");
        Assert.Contains("Observation.subject must name the patient as a reference 'Patient/<id>'", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_limited_to_one_patient_reads_no_result_of_another_whatever_the_form_of_its_subject()
    {
        // The leak closed: the result stored in no one's record was read by a client limited to another patient. An absolute URL
        // under this server's own base is the local reference (stored as such, in the patient's record); another server's is refused.
        using (var absolute = await _api.PostAsync("/fhir/Observation", FhirContent.Json(Result($$"""{ "reference": "{{_server.BaseAddress}}fhir/Patient/{{_patient}}" }"""))))
        {
            Assert.Equal(HttpStatusCode.Created, absolute.StatusCode);
            Assert.Equal($"Patient/{_patient}", (await absolute.BodyAsync()).GetProperty("subject").GetProperty("reference").GetString());
        }
        using (var elsewhere = await _api.PostAsync("/fhir/Observation", FhirContent.Json(Result($$"""{ "reference": "https://autre-hopital.example/fhir/Patient/{{_patient}}" }"""))))
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, elsewhere.StatusCode);
        }
        await CreateAsync("/fhir/Observation", Result($$"""{ "reference": "Patient/{{_patient}}" }"""));
        using var limited = await _server.ClientAsync(_establishment, "system/*.rs", new ClientLimits([_other], false));
        using var search = await limited.GetAsync("/fhir/Observation?_summary=count");
        Assert.Equal(0, (await search.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Local_references_a_transactions_urn_uuid_and_participants_that_are_not_the_patient_are_accepted()
    {
        await CreateAsync("/fhir/Observation", Result($$"""{ "reference": "Patient/{{_patient}}/_history/1" }"""));
        // A result about a device, named by an absolute URL: no patient is named, none is missed.
        await CreateAsync("/fhir/Observation", Result("""{ "reference": "https://devices.example/fhir/Device/pump-7" }"""));
        await CreateAsync("/fhir/Observation", Result("""{ "type": "Device", "identifier": { "system": "urn:oid:1.2.3", "value": "pump-7" } }"""));
        // An appointment's other participants (a room, a practitioner by name) may be named any way.
        await CreateAsync("/fhir/Appointment", $$"""
            { "resourceType": "Appointment", "status": "booked", "start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T10:30:00+01:00",
              "participant": [ { "actor": { "reference": "Patient/{{_patient}}" }, "status": "accepted" },
                               { "actor": { "display": "Dr Martin" }, "status": "accepted" },
                               { "actor": { "reference": "https://rooms.example/Location/b12" }, "status": "accepted" } ] }
            """);
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "urn:uuid:5e0c8a52-0d55-4d8a-9a43-6f1b8a3c9e01", "resource": {{Samples.Patient(family: "Nouveau", nir: Samples.ValidNir("2850544109013"))}},
                "request": { "method": "POST", "url": "Patient" } },
              { "resource": {{Result("""{ "reference": "urn:uuid:5e0c8a52-0d55-4d8a-9a43-6f1b8a3c9e01" }""")}}, "request": { "method": "POST", "url": "Observation" } } ] }
            """;
        using var transaction = await _api.PostAsync("/fhir", FhirContent.Json(bundle));
        Assert.Equal(HttpStatusCode.OK, transaction.StatusCode);
        using var mine = await _api.GetAsync($"/fhir/Observation?patient={_patient}&_summary=count");
        Assert.Equal(1, (await mine.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Import_rejects_the_entry_naming_its_patient_by_an_absolute_URL_and_loads_the_others()
    {
        var tenant = (await _server.Store.Tenants.FindAsync(_establishment, CancellationToken.None))!;
        var items = new List<Vauban.Records.ImportItem>
        {
            Samples.Import("Observation", "imported-local", Result($$"""{ "reference": "Patient/{{_patient}}" }""")),
            Samples.Import("Observation", "imported-absolute", Result($$"""{ "reference": "https://hospital.example/fhir/Patient/{{_patient}}" }""")),
        };
        var summary = await _server.Store.Records.ImportAsync(AccessContext.Operator(tenant, "test"), items, null, CancellationToken.None);
        Assert.Equal(1, summary.Created);
        var rejected = Assert.Single(summary.Rejected);
        Assert.Contains("Observation/imported-absolute: Observation.subject must name the patient", rejected.Diagnostics, StringComparison.Ordinal);
    }
}

public sealed class PatientReferenceTests_Sqlite(FhirServerFixture_Sqlite shared) : PatientReferenceTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class PatientReferenceTests_Postgres(FhirServerFixture_Postgres shared) : PatientReferenceTests(shared), IClassFixture<FhirServerFixture_Postgres>;
