// FHIR's patch interaction as an integrating developer uses it: PATCH [type]/[id] with a JSON Patch document (RFC 6902), a new
// version written as an update is (indexed, audited), If-Match and test operations guarding it, and every bad document or
// result refused with nothing changed. On SQLite and PostgreSQL.
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class FhirPatchTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    private static HttpRequestMessage Patch(string url, string document, string mediaType = "application/json-patch+json", string? ifMatch = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Patch, url) { Content = new StringContent(document, Encoding.UTF8) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        if (ifMatch is not null) request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        return request;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpRequestMessage request, HttpClient? client = null)
    {
        using (request)
        using (var response = await (client ?? Api).SendAsync(request))
        {
            return (response.StatusCode, await response.BodyAsync());
        }
    }

    private async Task<(string Patient, string Observation)> ObservationAsync()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Patchou"))).GetProperty("id").GetString()!;
        var observation = (await CreateAsync("Observation", Samples.Observation("Patient/" + patient))).GetProperty("id").GetString()!;
        return (patient, observation);
    }

    private async Task<JsonElement> ReadAsync(string url)
    {
        using var response = await Api.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.BodyAsync();
    }

    private static string Diagnostics(JsonElement outcome) =>
        string.Join(" | ", outcome.GetProperty("issue").EnumerateArray().Select(i => i.TryGetProperty("diagnostics", out var d) ? d.GetString() : ""));

    [Fact]
    public async Task A_patch_changes_what_it_names_writes_a_new_version_and_keeps_the_rest()
    {
        var (patient, observation) = await ObservationAsync();
        using var request = Patch($"/fhir/Observation/{observation}", """
            [ { "op": "test", "path": "/status", "value": "final" },
              { "op": "replace", "path": "/status", "value": "amended" },
              { "op": "add", "path": "/note", "value": [ { "text": "Recontrôlé le lendemain." } ] } ]
            """);
        using var response = await Api.SendAsync(request);
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        Assert.Equal("W/\"2\"", response.Headers.ETag!.ToString());
        Assert.Equal("2", body.GetProperty("meta").GetProperty("versionId").GetString());
        Assert.Equal("amended", body.GetProperty("status").GetString());
        Assert.Equal("Recontrôlé le lendemain.", body.GetProperty("note")[0].GetProperty("text").GetString());
        Assert.Equal("2345-7", body.GetProperty("code").GetProperty("coding")[0].GetProperty("code").GetString());
        Assert.Equal("Patient/" + patient, body.GetProperty("subject").GetProperty("reference").GetString());

        // Stored and indexed as an update is: read back, found by its new status and not by its old one, version 1 kept.
        Assert.Equal("amended", (await ReadAsync($"/fhir/Observation/{observation}")).GetProperty("status").GetString());
        Assert.Equal([observation], Ids(await SearchAsync($"Observation?patient={patient}&status=amended")));
        Assert.Empty(Ids(await SearchAsync($"Observation?patient={patient}&status=final")));
        Assert.Equal("final", (await ReadAsync($"/fhir/Observation/{observation}/_history/1")).GetProperty("status").GetString());
        // History says how each version was written: the patch as a PATCH, answered 200.
        var newest = (await ReadAsync($"/fhir/Observation/{observation}/_history")).GetProperty("entry")[0];
        Assert.Equal("PATCH", newest.GetProperty("request").GetProperty("method").GetString());
        Assert.Equal($"Observation/{observation}", newest.GetProperty("request").GetProperty("url").GetString());
        Assert.Equal("200", newest.GetProperty("response").GetProperty("status").GetString());

        // On the patient's access history as an update, saying it was a patch.
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        var entries = await Server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "patch test"),
            new AuditQuery { Patient = patient, Actions = [AuditAction.Update], Count = 20 }, CancellationToken.None) ?? [];
        var entry = Assert.Single(entries);
        Assert.Equal(AuditOutcome.Success, entry.Outcome);
        Assert.Equal("JSON Patch (3 operations)", entry.Detail.Note);
    }

    [Fact]
    public async Task If_Match_holds_a_patch_to_a_version_and_a_failed_test_changes_nothing_and_quotes_nothing()
    {
        var (patient, observation) = await ObservationAsync();
        var replace = """[ { "op": "replace", "path": "/status", "value": "amended" } ]""";
        var (ok, _) = await SendAsync(Patch($"/fhir/Observation/{observation}", replace, ifMatch: "W/\"1\""));
        Assert.Equal(HttpStatusCode.OK, ok);

        // A client that read version 1 patches what it never saw: 412.
        var (stale, staleBody) = await SendAsync(Patch($"/fhir/Observation/{observation}", """[ { "op": "replace", "path": "/status", "value": "cancelled" } ]""", ifMatch: "W/\"1\""));
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale);
        Assert.Equal("OperationOutcome", staleBody.GetProperty("resourceType").GetString());

        // A test that does not hold: 422, naming the operation, not the value the record holds.
        var (failed, failedBody) = await SendAsync(Patch($"/fhir/Observation/{observation}", """
            [ { "op": "replace", "path": "/status", "value": "cancelled" },
              { "op": "test", "path": "/valueQuantity/value", "value": 9.99 } ]
            """));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, failed);
        var said = Diagnostics(failedBody);
        Assert.Contains("Operation 2 (test /valueQuantity/value)", said, StringComparison.Ordinal);
        Assert.DoesNotContain("1.02", said, StringComparison.Ordinal);

        // A path that leads nowhere: 422 too.
        var (nowhere, nowhereBody) = await SendAsync(Patch($"/fhir/Observation/{observation}", """[ { "op": "remove", "path": "/interpretation" } ]"""));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, nowhere);
        Assert.Contains("Operation 1 (remove /interpretation)", Diagnostics(nowhereBody), StringComparison.Ordinal);

        var current = await ReadAsync($"/fhir/Observation/{observation}");
        Assert.Equal("2", current.GetProperty("meta").GetProperty("versionId").GetString());
        Assert.Equal("amended", current.GetProperty("status").GetString());
        Assert.Empty(Ids(await SearchAsync($"Observation?patient={patient}&status=cancelled")));
    }

    [Fact]
    public async Task A_patch_whose_result_is_not_a_valid_resource_is_422_and_changes_nothing()
    {
        var (_, observation) = await ObservationAsync();
        string[] documents =
        [
            """[ { "op": "replace", "path": "/status", "value": "almost-final" } ]""",
            """[ { "op": "remove", "path": "/status" } ]""",
            """[ { "op": "replace", "path": "/id", "value": "another-id" } ]""",
            """[ { "op": "remove", "path": "/id" } ]""",
            """[ { "op": "replace", "path": "/resourceType", "value": "Patient" } ]""",
            """[ { "op": "add", "path": "/valueQuantity/value", "value": "high" } ]""",
            """[ { "op": "add", "path": "/unknownElement", "value": true } ]""",
        ];
        foreach (var document in documents)
        {
            var (status, body) = await SendAsync(Patch($"/fhir/Observation/{observation}", document));
            Assert.True(status == HttpStatusCode.UnprocessableEntity, $"{document}: {(int)status} {body}");
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
        }
        var current = await ReadAsync($"/fhir/Observation/{observation}");
        Assert.Equal("1", current.GetProperty("meta").GetProperty("versionId").GetString());
        Assert.Equal("final", current.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_patch_refused_after_its_test_ran_against_the_record_is_the_record_reached_for_a_breach()
    {
        // A test confirms a value without writing anything: a stolen client probing diagnosis codes this way reaches the patient.
        var (patient, observation) = await ObservationAsync();
        using (var prober = await Server.ClientAsync(TenantName, "system/Observation.ru"))
        {
            var (status, _) = await SendAsync(Patch($"/fhir/Observation/{observation}", """[ { "op": "test", "path": "/code/coding/0/code", "value": "B20" } ]"""), prober);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        }
        await Server.Store.Audit.CatchUpAsync();
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        var investigator = AccessContext.Operator(tenant, "breach notification");
        var probe = Assert.Single(await Server.Store.AuditLog.SearchAsync(investigator,
            new AuditQuery { Patient = patient, Actions = [AuditAction.Update], Count = 20 }, CancellationToken.None) ?? []);
        Assert.Equal(AuditOutcome.MinorFailure, probe.Outcome);
        var log = await Vauban.Breach.BreachInvestigation.CheckLogAsync(Server.Store, tenant, CancellationToken.None);
        var scope = await Vauban.Breach.BreachInvestigation.ScopeAsync(Server.Store, investigator, probe.Detail.Principal, null, null, log, CancellationToken.None);
        Assert.Equal([patient], scope!.Patients.Select(p => p.Id));
    }

    [Fact]
    public async Task A_patch_that_copies_a_member_into_itself_until_it_is_huge_is_stopped_at_the_resource_limit()
    {
        var (_, observation) = await ObservationAsync();
        // Each copy doubles the note: forty of them would be a terabyte from a document of a few kilobytes.
        var operations = new List<string> { $$"""{ "op": "add", "path": "/note", "value": [ { "text": "{{new string('x', 1000)}}" } ] }""" };
        operations.AddRange(Enumerable.Repeat("""{ "op": "copy", "from": "/note", "path": "/note/-" }""", 40));
        var (status, body) = await SendAsync(Patch($"/fhir/Observation/{observation}", "[" + string.Join(",", operations) + "]"));
        Assert.True(status == HttpStatusCode.UnprocessableEntity, $"{(int)status} {body}");
        Assert.Contains("larger than the configured limit", Diagnostics(body), StringComparison.Ordinal);
        Assert.Equal("1", (await ReadAsync($"/fhir/Observation/{observation}")).GetProperty("meta").GetProperty("versionId").GetString());
    }

    [Fact]
    public async Task A_document_that_is_no_JSON_Patch_is_400_another_media_type_415_and_nothing_changes()
    {
        var (_, observation) = await ObservationAsync();
        var url = $"/fhir/Observation/{observation}";
        (string Document, string Said)[] malformed =
        [
            ("""{ "op": "replace", "path": "/status", "value": "amended" }""", "array of operations"),
            ("[]", "no operation"),
            ("""[ { "op": "frobnicate", "path": "/status" } ]""", "'frobnicate' is not"),
            ("""[ { "op": "replace", "path": "/status" } ]""", "needs a \"value\""),
            ("""[ { "op": "replace", "path": "status", "value": "amended" } ]""", "starts with '/'"),
            ("""[ { "op": "replace", "path": "", "value": { "resourceType": "Observation" } } ]""", "update it (PUT)"),
            ("""[ { "op": "copy", "path": "/note" } ]""", "\"from\""),
            ("""[ { "op": "move", "from": "/code", "path": "/code/text" } ]""", "into itself"),
            ("""[ "replace" ]""", "not an object"),
            ("[ { \"op\": \"replace\", ", "JSON"),
            ("[" + string.Join(",", Enumerable.Repeat("""{ "op": "test", "path": "/status", "value": "final" }""", 1001)) + "]", "at most 1,000"),
        ];
        foreach (var (document, said) in malformed)
        {
            var (status, body) = await SendAsync(Patch(url, document));
            Assert.True(status == HttpStatusCode.BadRequest, $"{document}: {(int)status} {body}");
            Assert.Contains(said, Diagnostics(body), StringComparison.Ordinal);
        }
        // A FHIR resource or FHIRPath Patch's Parameters is not a JSON Patch document.
        var (wrongType, wrongBody) = await SendAsync(Patch(url, """{ "resourceType": "Parameters" }""", mediaType: "application/fhir+json"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, wrongType);
        Assert.Contains("application/json-patch+json", Diagnostics(wrongBody), StringComparison.Ordinal);
        var (query, _) = await SendAsync(Patch(url + "?status=final", """[ { "op": "replace", "path": "/status", "value": "amended" } ]"""));
        Assert.Equal(HttpStatusCode.BadRequest, query);
        Assert.Equal("1", (await ReadAsync(url)).GetProperty("meta").GetProperty("versionId").GetString());

        // A patch changes what exists: an unknown id is 404 (no create), a deleted record 410.
        var patch = """[ { "op": "replace", "path": "/status", "value": "amended" } ]""";
        var (unknown, _) = await SendAsync(Patch("/fhir/Observation/no-such-observation", patch));
        Assert.Equal(HttpStatusCode.NotFound, unknown);
        using (var delete = await Api.DeleteAsync(url)) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        var (gone, _) = await SendAsync(Patch(url, patch));
        Assert.Equal(HttpStatusCode.Gone, gone);
    }

    [Fact]
    public async Task A_patch_needs_read_as_well_as_update_and_another_establishments_record_is_not_found()
    {
        var (_, observation) = await ObservationAsync();
        var patch = """[ { "op": "test", "path": "/valueQuantity/value", "value": 1.02 } ]""";
        // Update without read: a test would read the record value by value, and the answer is the whole record.
        using (var writer = await Server.ClientAsync(TenantName, "system/Observation.u"))
        {
            var (status, body) = await SendAsync(Patch($"/fhir/Observation/{observation}", patch), writer);
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Contains("read", Diagnostics(body), StringComparison.Ordinal);
        }
        using (var reader = await Server.ClientAsync(TenantName, "system/Observation.rs"))
        {
            var (status, _) = await SendAsync(Patch($"/fhir/Observation/{observation}", patch), reader);
            Assert.Equal(HttpStatusCode.Forbidden, status);
        }
        using (var stranger = await Server.ClientAsync(TenantName + "-other"))
        {
            var (status, _) = await SendAsync(Patch($"/fhir/Observation/{observation}", patch), stranger);
            Assert.Equal(HttpStatusCode.NotFound, status);
        }
        using (var both = await Server.ClientAsync(TenantName, "system/Observation.ru"))
        {
            var (status, body) = await SendAsync(Patch($"/fhir/Observation/{observation}", patch), both);
            Assert.Equal(HttpStatusCode.OK, status);
            // Tests alone change nothing: the current version is the answer, and no new one is written.
            Assert.Equal("1", body.GetProperty("meta").GetProperty("versionId").GetString());
        }
        Assert.Equal("1", (await ReadAsync($"/fhir/Observation/{observation}")).GetProperty("meta").GetProperty("versionId").GetString());
    }

    [Fact]
    public async Task The_CapabilityStatement_offers_patch_in_its_JSON_form()
    {
        var metadata = await ReadAsync("/fhir/metadata");
        Assert.Equal(["application/json-patch+json"], metadata.GetProperty("patchFormat").EnumerateArray().Select(f => f.GetString()!).ToArray());
        var observation = metadata.GetProperty("rest")[0].GetProperty("resource").EnumerateArray().Single(r => r.GetProperty("type").GetString() == "Observation");
        var patch = observation.GetProperty("interaction").EnumerateArray().Single(i => i.GetProperty("code").GetString() == "patch");
        Assert.Contains("RFC 6902", patch.GetProperty("documentation").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_conditional_patch_patches_its_one_match_and_refuses_none_several_or_no_criteria()
    {
        var (patient, observation) = await ObservationAsync();
        (await CreateAsync("Observation", Samples.Observation("Patient/" + patient, loinc: "718-7"))).GetProperty("id").GetString();
        var patch = """[ { "op": "replace", "path": "/status", "value": "amended" } ]""";

        var (one, body) = await SendAsync(Patch($"/fhir/Observation?patient={patient}&code=2345-7", patch));
        Assert.True(one == HttpStatusCode.OK, body.ToString());
        Assert.Equal(observation, body.GetProperty("id").GetString());
        Assert.Equal("amended", body.GetProperty("status").GetString());
        Assert.Equal("2", body.GetProperty("meta").GetProperty("versionId").GetString());

        var (none, noneBody) = await SendAsync(Patch($"/fhir/Observation?patient={patient}&code=9999-9", patch));
        Assert.Equal(HttpStatusCode.NotFound, none);
        Assert.Contains("does not create", Diagnostics(noneBody), StringComparison.Ordinal);
        var (several, _) = await SendAsync(Patch($"/fhir/Observation?patient={patient}", patch));
        Assert.Equal(HttpStatusCode.PreconditionFailed, several);
        var (bare, bareBody) = await SendAsync(Patch("/fhir/Observation", patch));
        Assert.Equal(HttpStatusCode.BadRequest, bare);
        Assert.Contains("conditional patch", Diagnostics(bareBody), StringComparison.Ordinal);
        var (unknown, _) = await SendAsync(Patch($"/fhir/Observation?colour=blue", patch));
        Assert.Equal(HttpStatusCode.BadRequest, unknown);
        // Whether one matched is told: a client without search on the type is refused before anything is looked up.
        using (var noSearch = await Server.ClientAsync(TenantName, "system/Observation.ru"))
        {
            var (refused, _) = await SendAsync(Patch($"/fhir/Observation?patient={patient}&code=2345-7", """[ { "op": "replace", "path": "/status", "value": "cancelled" } ]"""), noSearch);
            Assert.Equal(HttpStatusCode.Forbidden, refused);
        }
        Assert.Equal("amended", (await ReadAsync($"/fhir/Observation/{observation}")).GetProperty("status").GetString());
        Assert.Empty(Ids(await SearchAsync($"Observation?patient={patient}&status=cancelled")));
    }

    [Fact]
    public async Task A_conditional_patch_without_read_or_without_search_is_refused_once_and_audited_once()
    {
        var (patient, observation) = await ObservationAsync();
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        async Task<List<AuditEntry>> RefusalsAsync()
        {
            await Server.Store.Audit.CatchUpAsync();
            return [.. (await Server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "patch test"),
                new AuditQuery { Actions = [AuditAction.Read, AuditAction.Update, AuditAction.Search], Count = 500 }, CancellationToken.None) ?? [])
                .Where(e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note?.Contains("refused by the access policy", StringComparison.Ordinal) == true)];
        }
        // Without read, refused as a patch by id is: the read it needs, on the chain as that read. Without search, refused as the
        // conditional write it is.
        foreach (var (scopes, needed, action) in new[] { ("system/Observation.us", "read", AuditAction.Read), ("system/Observation.ru", "search", AuditAction.Update) })
        {
            var before = await RefusalsAsync();
            using var client = await Server.ClientAsync(TenantName, scopes);
            var (status, body) = await SendAsync(Patch($"/fhir/Observation?patient={patient}&code=2345-7", """[ { "op": "replace", "path": "/status", "value": "cancelled" } ]"""), client);
            Assert.Equal(HttpStatusCode.Forbidden, status);
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.Contains(needed, Diagnostics(body), StringComparison.Ordinal);
            var added = (await RefusalsAsync()).Where(e => !before.Any(b => b.Sequence == e.Sequence)).ToList();
            var refusal = Assert.Single(added);
            Assert.Equal(action, refusal.Action);
            Assert.Equal("Observation", refusal.ResourceType);
        }
        Assert.Equal("final", (await ReadAsync($"/fhir/Observation/{observation}")).GetProperty("status").GetString());
    }
}

public sealed class FhirPatchTests_Sqlite(FhirServerFixture_Sqlite shared) : FhirPatchTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class FhirPatchTests_Postgres(FhirServerFixture_Postgres shared) : FhirPatchTests(shared), IClassFixture<FhirServerFixture_Postgres>;
