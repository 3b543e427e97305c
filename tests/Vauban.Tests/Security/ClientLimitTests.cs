// Adversarial tests of API client limits (issue 3): a client registered for a list of patients, or for
// the resources it created, reaches nothing else — by id, search, $everything, history or write — and
// is told "not found", as if the rest did not exist.
using System.Net;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public abstract class ClientLimitTests : IAsyncLifetime
{
    private readonly Engine _engine;
    private VaubanServer _server = null!;
    private HttpClient _full = null!;
    private string _mine = "", _other = "", _otherObservation = "";

    protected ClientLimitTests(Engine engine) => _engine = engine;

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine);
        _full = await _server.ClientAsync("clinic");
        _mine = await CreateAsync(_full, "/fhir/Patient", Samples.Patient(family: "Allowed", nir: Samples.ValidNir("2850544109001")));
        _other = await CreateAsync(_full, "/fhir/Patient", Samples.Patient(family: "Elsewhere", nir: Samples.ValidNir("2850544109002")));
        await CreateAsync(_full, "/fhir/Observation", Samples.Observation($"Patient/{_mine}"));
        _otherObservation = await CreateAsync(_full, "/fhir/Observation", Samples.Observation($"Patient/{_other}"));
    }

    public async Task DisposeAsync()
    {
        _full.Dispose();
        await _server.DisposeAsync();
    }

    private static async Task<string> CreateAsync(HttpClient client, string url, string json)
    {
        using var response = await client.PostAsync(url, FhirContent.Json(json));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.BodyAsync()).GetProperty("id").GetString()!;
    }

    private static async Task<int> TotalAsync(HttpClient client, string url)
    {
        using var response = await client.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.BodyAsync()).GetProperty("total").GetInt32();
    }

    [Fact]
    public async Task Everything_names_no_practitioner_whose_only_link_to_the_patient_is_a_record_the_client_cannot_see()
    {
        var seen = await CreateAsync(_full, "/fhir/Practitioner", Samples.Practitioner("Visible"));
        var hidden = await CreateAsync(_full, "/fhir/Practitioner", Samples.Practitioner("Psychiatre"));
        await CreateAsync(_full, "/fhir/Encounter", Samples.Encounter(_mine, seen, "2026-03-01T10:00:00+01:00"));
        // An appointment held in the other patient's compartment that names this patient too, and a practitioner.
        var shared = await CreateAsync(_full, "/fhir/Appointment", $$"""
            { "resourceType": "Appointment", "status": "booked", "start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T10:30:00+01:00",
              "participant": [ { "actor": { "reference": "Patient/{{_other}}" }, "status": "accepted" },
                               { "actor": { "reference": "Patient/{{_mine}}" }, "status": "accepted" },
                               { "actor": { "reference": "Practitioner/{{hidden}}" }, "status": "accepted" } ] }
            """);
        using var limited = await _server.ClientAsync("clinic", "system/*.rs", new ClientLimits([_mine], false));
        using var response = await limited.GetAsync($"/fhir/Patient/{_mine}/$everything");
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var ids = body.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("resource").GetProperty("id").GetString()).ToList();
        Assert.Contains(seen, ids);
        Assert.DoesNotContain(shared, ids);
        Assert.DoesNotContain(hidden, ids);
    }

    [Fact]
    public async Task Type_history_with_count_0_totals_the_versions_the_history_lists_not_those_of_another_patient()
    {
        // An observation filed under the other patient, then moved to this client's (a wrong-patient correction): its first
        // version, about the other patient, is not listed to the client, so it is not counted either.
        var moved = await CreateAsync(_full, "/fhir/Observation", Samples.Observation($"Patient/{_other}"));
        var corrected = System.Text.Json.Nodes.JsonNode.Parse(Samples.Observation($"Patient/{_mine}"))!.AsObject();
        corrected["id"] = moved;
        using (var put = await _full.PutAsync($"/fhir/Observation/{moved}", FhirContent.Json(corrected.ToJsonString()))) Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        using var limited = await _server.ClientAsync("clinic", "system/*.rs", new ClientLimits([_mine], false));
        using var history = await limited.GetAsync("/fhir/Observation/_history?_count=50");
        var entries = (await history.BodyAsync()).GetProperty("entry").GetArrayLength();
        Assert.Equal(2, entries); // this patient's observation, and the moved one's second version
        Assert.Equal(entries, await TotalAsync(limited, "/fhir/Observation/_history?_count=0"));
        // A client that sees every record counts every version, in SQL.
        Assert.Equal(4, await TotalAsync(_full, "/fhir/Observation/_history?_count=0"));
    }

    [Fact]
    public async Task A_client_limited_to_some_patients_cannot_enumerate_the_others()
    {
        using var limited = await _server.ClientAsync("clinic", "system/*.cruds", new ClientLimits([_mine], false));
        using (var ok = await limited.GetAsync($"/fhir/Patient/{_mine}")) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        foreach (var url in new[] { $"/fhir/Patient/{_other}", $"/fhir/Observation/{_otherObservation}", $"/fhir/Patient/{_other}/$everything",
            $"/fhir/Patient/{_other}/_history", $"/fhir/Patient/{_other}/_history/1" })
        {
            using var response = await limited.GetAsync(url);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.DoesNotContain("Elsewhere", await response.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal(1, await TotalAsync(limited, "/fhir/Patient?_total=accurate"));
        Assert.Equal(0, await TotalAsync(limited, "/fhir/Patient?family=elsewhere&_total=accurate"));
        Assert.Equal(1, await TotalAsync(limited, "/fhir/Observation?_total=accurate"));
        using (var history = await limited.GetAsync("/fhir/Patient/_history?_count=50"))
        {
            var entries = (await history.BodyAsync()).GetProperty("entry").EnumerateArray().ToList();
            Assert.All(entries, e => Assert.Equal(_mine, e.GetProperty("resource").GetProperty("id").GetString()));
        }

        // Writing into another patient's record is refused and writes nothing.
        using (var write = await limited.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{_other}"))))
        {
            Assert.Equal(HttpStatusCode.NotFound, write.StatusCode);
            // Not "Observation/<an id the server just made up> is not known".
            Assert.Equal("The Observation was not written: it would go into a patient record that is not known to you.",
                (await write.BodyAsync()).GetProperty("issue")[0].GetProperty("diagnostics").GetString());
        }
        Assert.Equal(1, await TotalAsync(_full, $"/fhir/Observation?subject=Patient/{_other}&_total=accurate"));
    }

    [Fact]
    public async Task A_client_limited_to_some_patients_cannot_write_into_another_through_a_second_participant()
    {
        using var limited = await _server.ClientAsync("clinic", "system/*.cruds", new ClientLimits([_mine], false));
        // Held in the allowed patient's compartment (the first participant), yet part of the other patient's record too.
        using (var write = await limited.PostAsync("/fhir/Appointment", FhirContent.Json($$"""
            { "resourceType": "Appointment", "status": "booked", "start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T10:30:00+01:00",
              "participant": [ { "actor": { "reference": "Patient/{{_mine}}" }, "status": "accepted" },
                               { "actor": { "reference": "Patient/{{_other}}" }, "status": "accepted" } ] }
            """)))
        {
            Assert.Equal(HttpStatusCode.NotFound, write.StatusCode);
        }
        Assert.Equal(0, await TotalAsync(_full, $"/fhir/Appointment?actor=Patient/{_other}&_total=accurate"));
    }

    [Fact]
    public async Task A_transaction_writing_into_a_patient_outside_the_clients_list_fails_naming_the_entry_and_writes_nothing()
    {
        using var limited = await _server.ClientAsync("clinic", "system/*.cruds", new ClientLimits([_mine], false));
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Observation($"Patient/{_mine}")}}, "request": { "method": "POST", "url": "Observation" } },
              { "resource": {{Samples.Observation($"Patient/{_other}")}}, "request": { "method": "POST", "url": "Observation" } } ] }
            """;
        using (var response = await limited.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            var body = await response.BodyAsync();
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            // The refused record's id is one the server assigned and never gave out: the entry is what the client can find.
            var diagnostics = body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!;
            Assert.StartsWith("Bundle.entry[1] (POST Observation): ", diagnostics, StringComparison.Ordinal);
            Assert.DoesNotContain("Elsewhere", body.ToString(), StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal(1, await TotalAsync(_full, $"/fhir/Observation?subject=Patient/{_mine}&_total=accurate"));
        Assert.Equal(1, await TotalAsync(_full, $"/fhir/Observation?subject=Patient/{_other}&_total=accurate"));
    }

    [Fact]
    public async Task A_client_limited_to_its_own_resources_sees_only_what_it_created()
    {
        using var own = await _server.ClientAsync("clinic", "system/*.cruds", new ClientLimits(null, true));
        Assert.Equal(0, await TotalAsync(own, "/fhir/Patient?_total=accurate"));
        using (var response = await own.GetAsync($"/fhir/Patient/{_mine}")) Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var created = await CreateAsync(own, "/fhir/Patient", Samples.Patient(family: "Created", nir: Samples.ValidNir("2850544109003")));
        using (var response = await own.GetAsync($"/fhir/Patient/{created}")) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await TotalAsync(own, "/fhir/Patient?_total=accurate"));
        // Deleting another's resource: answered as for an id that does not exist (an idempotent 204), unchanged.
        using (var delete = await own.DeleteAsync($"/fhir/Patient/{_mine}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using (var still = await _full.GetAsync($"/fhir/Patient/{_mine}")) Assert.Equal(HttpStatusCode.OK, still.StatusCode);
    }

    /// <summary>What a client can tell of an answer: status, the headers that describe a record, the body — with the id asked
    /// for replaced, so that the answers for two ids compare.</summary>
    private static async Task<string> AnswerAsync(HttpResponseMessage response, string id)
    {
        var headers = string.Join(' ', new[] { "ETag", "Last-Modified", "Location", "Content-Location" }
            .Select(h => $"{h}={(response.Headers.TryGetValues(h, out var v) || response.Content.Headers.TryGetValues(h, out v) ? string.Join(',', v) : "")}"));
        var body = await response.Content.ReadAsStringAsync();
        // A response Bundle's own id and time differ from one to the next: its entries are the answer.
        if (body.Contains("\"Bundle\"", StringComparison.Ordinal)) body = System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("entry").ToString();
        return $"{(int)response.StatusCode} {headers} {body.Replace(id, "<id>", StringComparison.Ordinal)}";
    }

    [Fact]
    public async Task Deleting_a_record_the_client_may_not_see_is_answered_as_deleting_an_id_that_does_not_exist_and_deletes_nothing()
    {
        // The attack: a client limited to one patient probes which ids exist by deleting them (404 for those that exist, 204 else).
        using var limited = await _server.ClientAsync("clinic", "system/*.cruds", new ClientLimits([_mine], false));
        const string missing = "no-such-record-1";
        foreach (var (type, hidden) in new[] { ("Patient", _other), ("Observation", _otherObservation) })
        {
            foreach (var ifMatch in new[] { null, "W/\"1\"" })
            {
                async Task<string> DeleteAsync(string id)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Delete, $"/fhir/{type}/{id}");
                    if (ifMatch is not null) request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
                    using var response = await limited.SendAsync(request);
                    return await AnswerAsync(response, id);
                }
                async Task<string> InBundleAsync(string kind, string id)
                {
                    var condition = ifMatch is null ? "" : $$""", "ifMatch": "W/\"1\"" """;
                    using var response = await limited.PostAsync("/fhir", FhirContent.Json($$"""
                        { "resourceType": "Bundle", "type": "{{kind}}", "entry": [ { "request": { "method": "DELETE", "url": "{{type}}/{{id}}"{{condition}} } } ] }
                        """));
                    return await AnswerAsync(response, id);
                }
                var unknown = await DeleteAsync(missing);
                Assert.StartsWith(ifMatch is null ? "204" : "412", unknown, StringComparison.Ordinal);
                Assert.Equal(unknown, await DeleteAsync(hidden));
                foreach (var kind in new[] { "batch", "transaction" })
                {
                    Assert.Equal(await InBundleAsync(kind, missing), await InBundleAsync(kind, hidden));
                }
            }
            // A PUT under If-Match, which would not create: the same 412 as for an id that does not exist.
            using (var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/{type}/{hidden}"))
            using (var putMissing = new HttpRequestMessage(HttpMethod.Put, $"/fhir/{type}/{missing}"))
            {
                var body = type == "Patient" ? Samples.Patient(family: "Overwritten", nir: Samples.ValidNir("2850544109004")) : Samples.Observation($"Patient/{_mine}");
                foreach (var (request, id) in new[] { (put, hidden), (putMissing, missing) })
                {
                    var node = System.Text.Json.Nodes.JsonNode.Parse(body)!.AsObject();
                    node["id"] = id;
                    request.Content = FhirContent.Json(node.ToJsonString());
                    request.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
                }
                using var hiddenAnswer = await limited.SendAsync(put);
                using var missingAnswer = await limited.SendAsync(putMissing);
                Assert.Equal(await AnswerAsync(missingAnswer, missing), await AnswerAsync(hiddenAnswer, hidden));
            }
        }

        // Nothing changed, and every attempt is on the chain as a refusal by the access policy.
        foreach (var url in new[] { $"/fhir/Patient/{_other}", $"/fhir/Observation/{_otherObservation}" })
        {
            using var still = await _full.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, still.StatusCode);
            Assert.Equal("1", (await still.BodyAsync()).GetProperty("meta").GetProperty("versionId").GetString());
        }
        var tenant = (await _server.Store.Tenants.FindAsync("clinic", CancellationToken.None))!;
        var entries = await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Patient = _other, Actions = [Vauban.Audit.AuditAction.Delete, Vauban.Audit.AuditAction.Update], Count = 100 }, CancellationToken.None) ?? [];
        // Per record: two single deletes, two in a batch, two in a transaction, one PUT.
        Assert.Equal(14, entries.Count(e => e.Outcome == Vauban.Audit.AuditOutcome.MinorFailure && e.Detail.Note == "refused by the access policy (not revealed)"));
        Assert.DoesNotContain(entries, e => e.Outcome == Vauban.Audit.AuditOutcome.Success);
    }

    [Fact]
    public async Task A_limited_client_writing_for_a_patient_it_cannot_see_is_answered_alike_whether_that_patient_exists_or_not()
    {
        // A record naming a patient that does not exist is refused (422): a client that may not see a patient must not tell that
        // refusal from the one it gets for a patient that exists, or it would probe which patient ids exist.
        foreach (var limits in new[] { new ClientLimits([_mine], false), new ClientLimits(null, true) })
        {
            using var limited = await _server.ClientAsync("clinic", "system/*.cruds", limits);
            var answers = new List<string>();
            foreach (var patient in new[] { _other, "no-such-patient" })
            {
                using var response = await limited.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{patient}")));
                // The refused record's id is one the server assigned for this request.
                answers.Add(System.Text.RegularExpressions.Regex.Replace(await AnswerAsync(response, patient), "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<new>"));
            }
            Assert.StartsWith("404 ", answers[0], StringComparison.Ordinal);
            Assert.Equal(answers[0], answers[1]);
        }
        Assert.Equal(1, await TotalAsync(_full, $"/fhir/Observation?subject=Patient/{_other}&_total=accurate"));
        Assert.Equal(0, await TotalAsync(_full, "/fhir/Observation?subject=Patient/no-such-patient&_total=accurate"));

        // A client limited to its own resources files records under the patients it created.
        using var own = await _server.ClientAsync("clinic", "system/*.cruds", new ClientLimits(null, true));
        var created = await CreateAsync(own, "/fhir/Patient", Samples.Patient(family: "Siens", nir: Samples.ValidNir("2850544109005")));
        await CreateAsync(own, "/fhir/Observation", Samples.Observation($"Patient/{created}"));
    }

    [Fact]
    public async Task An_api_client_cannot_break_the_glass()
    {
        using var response = await _full.PostAsync($"/fhir/Patient/{_other}/$break-the-glass", FhirContent.Json("""
            {"resourceType":"Parameters","parameter":[{"name":"reason","valueCode":"emergency"},{"name":"text","valueString":"batch job needs it"}]}
            """));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("OperationOutcome", (await response.BodyAsync()).GetProperty("resourceType").GetString());
        using var malformed = await _full.PostAsync($"/fhir/Patient/{_other}/$break-the-glass", FhirContent.Json("""{"resourceType":"Patient"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
    }
}

public sealed class ClientLimitTests_Sqlite() : ClientLimitTests(Engine.Sqlite);

public sealed class ClientLimitTests_Postgres() : ClientLimitTests(Engine.Postgres);
