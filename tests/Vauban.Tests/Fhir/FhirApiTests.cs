// The FHIR REST API as an integrating developer relies on it. The same tests run against SQLite and
// PostgreSQL (the two derived classes at the end).
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class FhirApiTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    [Fact]
    public async Task Create_returns_201_with_Location_ETag_and_server_assigned_id_and_meta()
    {
        using var response = await Api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(id: "client-chosen")));
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.StartsWith("application/fhir+json", response.Content.Headers.ContentType!.ToString());
        var id = body.GetProperty("id").GetString()!;
        Assert.NotEqual("client-chosen", id);
        Assert.Equal("1", body.GetProperty("meta").GetProperty("versionId").GetString());
        Assert.True(DateTimeOffset.TryParse(body.GetProperty("meta").GetProperty("lastUpdated").GetString(), out _));
        Assert.Equal("W/\"1\"", response.Headers.ETag!.ToString());
        Assert.EndsWith($"/fhir/Patient/{id}/_history/1", response.Headers.Location!.ToString());
        Assert.Equal("Dupont", body.GetProperty("name")[0].GetProperty("family").GetString());
    }

    [Fact]
    public async Task Read_vread_update_with_If_Match_delete_and_history_keep_every_version()
    {
        var created = await CreateAsync("Patient", Samples.Patient());
        var id = created.GetProperty("id").GetString()!;

        using (var read = await Api.GetAsync($"/fhir/Patient/{id}"))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("W/\"1\"", read.Headers.ETag!.ToString());
        }

        var updated = Samples.Patient(family: "Durand", id: id);
        var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{id}") { Content = FhirContent.Json(updated) };
        put.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        using (var response = await Api.SendAsync(put))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("2", (await response.BodyAsync()).GetProperty("meta").GetProperty("versionId").GetString());
        }

        // A second writer still holding version 1 is refused and changes nothing.
        var stale = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{id}") { Content = FhirContent.Json(Samples.Patient(family: "Lost", id: id)) };
        stale.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        using (var response = await Api.SendAsync(stale))
        {
            Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
            Assert.Equal("OperationOutcome", (await response.BodyAsync()).GetProperty("resourceType").GetString());
        }

        using (var v1 = await Api.GetAsync($"/fhir/Patient/{id}/_history/1"))
        {
            Assert.Equal("Dupont", (await v1.BodyAsync()).GetProperty("name")[0].GetProperty("family").GetString());
        }
        using (var v9 = await Api.GetAsync($"/fhir/Patient/{id}/_history/9"))
        {
            Assert.Equal(HttpStatusCode.NotFound, v9.StatusCode);
            Assert.Equal($"Version 9 of Patient/{id} is not known.", (await v9.BodyAsync()).GetProperty("issue")[0].GetProperty("diagnostics").GetString());
        }
        using (var current = await Api.GetAsync($"/fhir/Patient/{id}"))
        {
            Assert.Equal("Durand", (await current.BodyAsync()).GetProperty("name")[0].GetProperty("family").GetString());
        }

        using (var delete = await Api.DeleteAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using (var gone = await Api.GetAsync($"/fhir/Patient/{id}"))
        {
            Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
            Assert.Equal("OperationOutcome", (await gone.BodyAsync()).GetProperty("resourceType").GetString());
        }
        using (var history = await Api.GetAsync($"/fhir/Patient/{id}/_history"))
        {
            var bundle = await history.BodyAsync();
            Assert.Equal("history", bundle.GetProperty("type").GetString());
            var entries = bundle.GetProperty("entry").EnumerateArray().ToList();
            Assert.Equal(3, entries.Count);
            Assert.Equal("DELETE", entries[0].GetProperty("request").GetProperty("method").GetString());
            Assert.Equal("2", entries[1].GetProperty("resource").GetProperty("meta").GetProperty("versionId").GetString());
        }
        // Deleted resources leave search results.
        Assert.DoesNotContain(id, Ids(await SearchAsync("Patient?family=durand")));

        // An update brings a deleted record back: a new version after the deletion, 201 Created like any update that creates.
        using (var back = await Api.PutAsync($"/fhir/Patient/{id}", FhirContent.Json(Samples.Patient(family: "Durand", id: id))))
        {
            Assert.Equal(HttpStatusCode.Created, back.StatusCode);
            Assert.Equal("W/\"4\"", back.Headers.ETag!.ToString());
            Assert.EndsWith($"/fhir/Patient/{id}/_history/4", back.Headers.Location!.ToString(), StringComparison.Ordinal);
        }
        using (var again = await Api.PutAsync($"/fhir/Patient/{id}", FhirContent.Json(Samples.Patient(family: "Durand", id: id))))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }
        Assert.Contains(id, Ids(await SearchAsync("Patient?family=durand")));
    }

    [Fact]
    public async Task Update_of_an_unknown_id_creates_it_and_a_mismatched_body_id_is_refused()
    {
        using (var response = await Api.PutAsync("/fhir/Practitioner/rpps-10001234567", FhirContent.Json(Samples.Practitioner().Replace("\"resourceType\": \"Practitioner\",", "\"resourceType\": \"Practitioner\", \"id\": \"rpps-10001234567\","))))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }
        using (var response = await Api.PutAsync("/fhir/Practitioner/other", FhirContent.Json(Samples.Practitioner().Replace("\"resourceType\": \"Practitioner\",", "\"resourceType\": \"Practitioner\", \"id\": \"not-other\","))))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        using var missing = await Api.GetAsync("/fhir/Practitioner/other");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Delete_with_If_Match_deletes_only_the_version_the_client_read_alone_or_in_a_bundle()
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Versionne"))).GetProperty("id").GetString()!;
        using (var update = await Api.PutAsync($"/fhir/Patient/{id}", FhirContent.Json(Samples.Patient(family: "Versionne", id: id))))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }

        var stale = new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{id}");
        stale.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        using (var response = await Api.SendAsync(stale)) Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "request": { "method": "DELETE", "url": "Patient/{{id}}", "ifMatch": "W/\"1\"" } } ] }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle))) Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        using (var batch = await Api.PostAsync("/fhir", FhirContent.Json(bundle.Replace("\"transaction\"", "\"batch\"", StringComparison.Ordinal))))
        {
            Assert.Equal("412", (await batch.BodyAsync()).GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString());
        }
        using (var read = await Api.GetAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.OK, read.StatusCode);

        var current = new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{id}");
        current.Headers.TryAddWithoutValidation("If-Match", "W/\"2\"");
        using (var response = await Api.SendAsync(current)) Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        using (var read = await Api.GetAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.Gone, read.StatusCode);
    }

    [Fact]
    public async Task If_Match_star_updates_a_record_that_exists_and_is_412_for_one_missing_or_deleted_alone_or_in_a_bundle()
    {
        // RFC 9110: If-Match: * is "only if a current representation exists", whatever its version.
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Etoile"))).GetProperty("id").GetString()!;
        async Task<HttpResponseMessage> PutAsync(string target, string family)
        {
            var request = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{target}") { Content = FhirContent.Json(Samples.Patient(family: family, id: target)) };
            request.Headers.TryAddWithoutValidation("If-Match", "*");
            return await Api.SendAsync(request);
        }
        using (var response = await PutAsync(id, "Etoilee"))
        {
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {body}");
            Assert.Equal("2", body.GetProperty("meta").GetProperty("versionId").GetString());
        }
        // An id that does not exist is not created.
        using (var response = await PutAsync("etoile-absente", "Absente"))
        {
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.PreconditionFailed, $"{(int)response.StatusCode} {body}");
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.Contains("does not exist", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        using (var read = await Api.GetAsync("/fhir/Patient/etoile-absente")) Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);

        // In a bundle, request.ifMatch "*" is held to the same: the existing record is updated, the missing one is 412.
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              { "resource": {{Samples.Patient(family: "Lot", id: id)}}, "request": { "method": "PUT", "url": "Patient/{{id}}", "ifMatch": "*" } },
              { "resource": {{Samples.Patient(family: "Lot", id: "etoile-absente")}}, "request": { "method": "PUT", "url": "Patient/etoile-absente", "ifMatch": "*" } } ] }
            """;
        using (var batch = await Api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            var body = await batch.BodyAsync();
            Assert.True(batch.StatusCode == HttpStatusCode.OK, $"{(int)batch.StatusCode} {body}");
            Assert.StartsWith("200", body.GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
            Assert.StartsWith("412", body.GetProperty("entry")[1].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        }
        var transaction = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Transaction", id: id)}}, "request": { "method": "PUT", "url": "Patient/{{id}}", "ifMatch": "*" } } ] }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(transaction)))
        {
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {body}");
            Assert.StartsWith("200", body.GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        }
        var missing = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Transaction", id: "etoile-absente")}}, "request": { "method": "PUT", "url": "Patient/etoile-absente", "ifMatch": "*" } } ] }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(missing)))
        {
            Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
            Assert.Equal("OperationOutcome", (await response.BodyAsync()).GetProperty("resourceType").GetString());
        }

        // A deleted record has no current representation: * does not bring it back, nor delete it again.
        var delete = new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{id}");
        delete.Headers.TryAddWithoutValidation("If-Match", "*");
        using (var response = await Api.SendAsync(delete)) Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        using (var response = await PutAsync(id, "Revenue"))
        {
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.PreconditionFailed, $"{(int)response.StatusCode} {body}");
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
        }
        var again = new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{id}");
        again.Headers.TryAddWithoutValidation("If-Match", "*");
        using (var response = await Api.SendAsync(again)) Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        using (var read = await Api.GetAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.Gone, read.StatusCode);
    }

    [Fact]
    public async Task A_bundle_read_entry_holds_to_ifNoneMatch_and_ifModifiedSince_as_the_headers_do()
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Conditionnel"))).GetProperty("id").GetString()!;
        string lastModified;
        using (var update = await Api.PutAsync($"/fhir/Patient/{id}", FhirContent.Json(Samples.Patient(family: "Conditionnel", id: id))))
        {
            lastModified = (await update.BodyAsync()).GetProperty("meta").GetProperty("lastUpdated").GetString()!;
        }
        var later = DateTimeOffset.Parse(lastModified, System.Globalization.CultureInfo.InvariantCulture).AddSeconds(1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var before = DateTimeOffset.Parse(lastModified, System.Globalization.CultureInfo.InvariantCulture).AddMilliseconds(-1).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        (string Condition, string Status)[] cases =
        [
            ("\"ifNoneMatch\": \"W/\\\"2\\\"\"", "304 Not Modified"), ("\"ifNoneMatch\": \"*\"", "304 Not Modified"),
            ("\"ifNoneMatch\": \"W/\\\"1\\\", \\\"2\\\"\"", "304 Not Modified"), ("\"ifNoneMatch\": \"W/\\\"1\\\"\"", "200 OK"),
            ($"\"ifModifiedSince\": \"{later}\"", "304 Not Modified"), ("\"ifModifiedSince\": \"2000-01-01T00:00:00Z\"", "200 OK"),
            // To the millisecond: the version's own instant is not after itself, a millisecond before it is.
            ($"\"ifModifiedSince\": \"{lastModified}\"", "304 Not Modified"), ($"\"ifModifiedSince\": \"{before}\"", "200 OK"),
        ];
        foreach (var type in new[] { "batch", "transaction" })
        {
            var entries = string.Join(",", cases.Select(c => $$"""{ "request": { "method": "GET", "url": "Patient/{{id}}", {{c.Condition}} } }"""));
            using var response = await Api.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "{{type}}", "entry": [ {{entries}} ] }"""));
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
            for (var i = 0; i < cases.Length; i++)
            {
                var entry = body.GetProperty("entry")[i];
                Assert.True(cases[i].Status == entry.GetProperty("response").GetProperty("status").GetString(), $"{type} {cases[i].Condition}: {entry}");
                Assert.Equal("W/\"2\"", entry.GetProperty("response").GetProperty("etag").GetString());
                // 304: the client holds the version; nothing of the record is sent again.
                Assert.Equal(cases[i].Status == "200 OK", entry.TryGetProperty("resource", out _));
            }
        }
    }

    [Fact]
    public async Task A_bundle_entrys_condition_that_is_not_a_string_ETag_or_query_is_refused_not_ignored()
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Condition"))).GetProperty("id").GetString()!;
        using (var update = await Api.PutAsync($"/fhir/Patient/{id}", FhirContent.Json(Samples.Patient(family: "Condition", id: id))))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }
        var nir = Samples.ValidNir("2850575123499");
        await CreateAsync("Patient", Samples.Patient(family: "Condition", nir: nir));
        var replacement = Samples.Patient(family: "Ecrase", id: id);
        // The client read version 1 and means "only if it is still version 1"; a conditional create means "only if none matches".
        string[] entries =
        [
            $$"""{ "resource": {{replacement}}, "request": { "method": "PUT", "url": "Patient/{{id}}", "ifMatch": 1 } }""",
            $$"""{ "resource": {{replacement}}, "request": { "method": "PUT", "url": "Patient/{{id}}", "ifMatch": "W/\"0\"" } }""",
            $$"""{ "request": { "method": "DELETE", "url": "Patient/{{id}}", "ifMatch": { "version": 1 } } }""",
            $$"""{ "resource": {{Samples.Patient(family: "Condition", nir: nir)}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": ["identifier={{Samples.InsNir}}|{{nir}}"] } }""",
            // A read's conditions on a write: "only if none" (*) overwrote the record and deleted it; refused as the headers are.
            $$"""{ "resource": {{replacement}}, "request": { "method": "PUT", "url": "Patient/{{id}}", "ifNoneMatch": "*" } }""",
            $$"""{ "request": { "method": "DELETE", "url": "Patient/{{id}}", "ifNoneMatch": "W/\"2\"" } }""",
            $$"""{ "resource": {{replacement}}, "request": { "method": "PUT", "url": "Patient/{{id}}", "ifModifiedSince": "2000-01-01T00:00:00Z" } }""",
            $$"""{ "request": { "method": "GET", "url": "Patient?family=Condition", "ifNoneMatch": "W/\"2\"" } }""",
            $$"""{ "request": { "method": "GET", "url": "Patient/{{id}}", "ifNoneMatch": 2 } }""",
            $$"""{ "request": { "method": "GET", "url": "Patient/{{id}}", "ifModifiedSince": "yesterday" } }""",
        ];
        foreach (var entry in entries)
        {
            foreach (var type in new[] { "transaction", "batch" })
            {
                using var response = await Api.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "{{type}}", "entry": [ {{entry}} ] }"""));
                var body = await response.BodyAsync();
                var (status, outcome) = type == "transaction"
                    ? (((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture), body)
                    : (body.GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString()!, body.GetProperty("entry")[0].GetProperty("response").GetProperty("outcome"));
                Assert.True(status.StartsWith("400", StringComparison.Ordinal), $"{type} {entry}: {status} {body}");
                Assert.Contains("Bundle.entry[0]", outcome.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
            }
        }
        using (var read = await Api.GetAsync($"/fhir/Patient/{id}"))
        {
            var current = await read.BodyAsync();
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("2", current.GetProperty("meta").GetProperty("versionId").GetString());
            Assert.Equal("Condition", current.GetProperty("name")[0].GetProperty("family").GetString());
        }
        Assert.Single(Ids(await SearchAsync($"Patient?identifier={nir}")));
        // The HTTP header is held to the same forms.
        foreach (var header in new[] { "W/\"0\"", "\"2", "W/*", "*, W/\"2\"" })
        {
            var request = new HttpRequestMessage(HttpMethod.Delete, $"/fhir/Patient/{id}");
            request.Headers.TryAddWithoutValidation("If-Match", header);
            using var response = await Api.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"If-Match: {header}: {(int)response.StatusCode}");
        }
        // Weak, strong and bare forms all name the version: the first update wins, the two after it name a version gone.
        foreach (var (header, expected) in new[] { ("W/\"2\"", HttpStatusCode.OK), ("\"2\"", HttpStatusCode.PreconditionFailed), ("2", HttpStatusCode.PreconditionFailed) })
        {
            var request = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{id}") { Content = FhirContent.Json(Samples.Patient(family: "Condition", id: id)) };
            request.Headers.TryAddWithoutValidation("If-Match", header);
            using var response = await Api.SendAsync(request);
            Assert.True(response.StatusCode == expected, $"If-Match: {header}: {(int)response.StatusCode}");
        }
    }

    [Fact]
    public async Task Conditional_create_returns_the_existing_match_instead_of_a_duplicate()
    {
        var nir = Samples.ValidNir("2850575123456");
        var first = await CreateAsync("Patient", Samples.Patient(nir: nir));
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient(nir: nir)) };
        request.Headers.TryAddWithoutValidation("If-None-Exist", $"identifier={Samples.InsNir}|{nir}");
        using var response = await Api.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(first.GetProperty("id").GetString(), (await response.BodyAsync()).GetProperty("id").GetString());
        Assert.Single(Ids(await SearchAsync($"Patient?identifier={nir}")));
    }

    [Fact]
    public async Task A_NIR_written_with_spaces_or_Corsica_in_lower_case_is_found_and_not_registered_twice()
    {
        // INSEE writes 2A; people type "2a", with spaces, or paste it with no-break spaces. All are one patient's number.
        var compact = Samples.ValidNir("269052A004123");
        var typed = string.Join('\u00A0', compact[..1], compact[1..3], compact[3..5], compact[5..7].ToLowerInvariant(), compact[7..10], compact[10..13], compact[13..]);
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Santoni", nir: typed))).GetProperty("id").GetString()!;

        Assert.Equal([id], Ids(await SearchAsync($"Patient?identifier={Samples.InsNir}|{compact}")));
        Assert.Equal([id], Ids(await SearchAsync($"Patient?identifier={compact}")));
        Assert.Equal([id], Ids(await SearchAsync($"Patient?identifier={Samples.InsNir}|{Uri.EscapeDataString(compact[..6] + "a " + compact[7..])}")));
        // The front desk's compact number finds the record the API wrote: no second patient.
        var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient(family: "Santoni", nir: compact)) };
        request.Headers.TryAddWithoutValidation("If-None-Exist", $"identifier={Samples.InsNir}|{compact}");
        using var response = await Api.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(id, (await response.BodyAsync()).GetProperty("id").GetString());
        Assert.Equal([id], Ids(await SearchAsync("Patient?family:exact=Santoni")));
    }

    [Fact]
    public async Task Patient_search_by_name_prefix_accents_birthdate_identifier_phone_email_and_city()
    {
        var nir = Samples.ValidNir("2750299123456");
        var target = (await CreateAsync("Patient", Samples.Patient(family: "Lefèvre-Hélias", given: "Anaïs", birthDate: "1975-02-14", nir: nir,
            phone: "06 11 22 33 44", email: "Anais.Lefevre@Example.FR", city: "Saint-Étienne"))).GetProperty("id").GetString()!;
        await CreateAsync("Patient", Samples.Patient(family: "Lefort", given: "Paul", birthDate: "1975-02-15"));
        await CreateAsync("Patient", Samples.Patient(family: "Martin", given: "Anaïs", birthDate: "1990-07-01"));

        Assert.Equal([target], Ids(await SearchAsync("Patient?family=lefevre")));
        Assert.Equal([target], Ids(await SearchAsync("Patient?family=LEFÈVRE&birthdate=1975-02-14")));
        Assert.Equal(2, Ids(await SearchAsync("Patient?family=lef")).Count);
        Assert.Equal(2, Ids(await SearchAsync("Patient?name=anais")).Count);
        Assert.Equal([target], Ids(await SearchAsync("Patient?family:exact=Lefèvre-Hélias")));
        Assert.Empty(Ids(await SearchAsync("Patient?family:exact=lefèvre-hélias")));
        Assert.Equal([target], Ids(await SearchAsync($"Patient?identifier={Samples.InsNir}|{nir}")));
        Assert.Equal([target], Ids(await SearchAsync("Patient?phone=%2B33611223344")));
        Assert.Equal([target], Ids(await SearchAsync("Patient?email=anais.lefevre@example.fr")));
        Assert.Equal([target], Ids(await SearchAsync("Patient?address-city=saint-etienne")));
        Assert.Equal(2, Ids(await SearchAsync("Patient?birthdate=1975-02")).Count);
        Assert.Equal(2, Ids(await SearchAsync("Patient?birthdate=lt1980-01-01")).Count);
        Assert.Single(Ids(await SearchAsync("Patient?birthdate=ge1975-02-15&family=le")));
        Assert.Single(Ids(await SearchAsync("Patient?birthdate=ge1980")));
        Assert.Equal(2, Ids(await SearchAsync("Patient?family=lefort,martin")).Count);
    }

    [Fact]
    public async Task Clinical_searches_by_patient_code_date_category_status_and_include()
    {
        var practitioner = (await CreateAsync("Practitioner", Samples.Practitioner())).GetProperty("id").GetString()!;
        var patient = (await CreateAsync("Patient", Samples.Patient(gp: $"Practitioner/{practitioner}"))).GetProperty("id").GetString()!;
        var other = (await CreateAsync("Patient", Samples.Patient(family: "Autre"))).GetProperty("id").GetString()!;
        var glucose = (await CreateAsync("Observation", Samples.Observation($"Patient/{patient}", "2345-7", "2026-03-01T10:00:00+01:00"))).GetProperty("id").GetString()!;
        await CreateAsync("Observation", Samples.Observation($"Patient/{patient}", "718-7", "2025-01-10T08:00:00+01:00"));
        await CreateAsync("Observation", Samples.Observation($"Patient/{other}", "2345-7", "2026-03-02T10:00:00+01:00"));
        await CreateAsync("Appointment", Samples.Appointment($"Patient/{patient}", $"Practitioner/{practitioner}", "2026-12-01T09:00:00+01:00"));
        await CreateAsync("Appointment", Samples.Appointment($"Patient/{other}", $"Practitioner/{practitioner}", "2026-06-01T09:00:00+01:00", "fulfilled"));

        Assert.Equal(2, Ids(await SearchAsync($"Observation?patient={patient}")).Count);
        Assert.Equal(2, Ids(await SearchAsync($"Observation?subject=Patient/{patient}")).Count);
        Assert.Equal([glucose], Ids(await SearchAsync($"Observation?patient=Patient/{patient}&code=http://loinc.org|2345-7")));
        Assert.Equal([glucose], Ids(await SearchAsync($"Observation?patient={patient}&date=ge2026-01-01")));
        Assert.Equal(2, Ids(await SearchAsync("Observation?code=2345-7&date=2026-03")).Count);
        Assert.Equal(3, Ids(await SearchAsync("Observation?category=laboratory")).Count);
        Assert.Single(Ids(await SearchAsync($"Observation?patient={patient}&date=lt2026-01-01")));
        Assert.Equal(2, Ids(await SearchAsync($"Appointment?practitioner={practitioner}")).Count);
        Assert.Single(Ids(await SearchAsync($"Appointment?practitioner={practitioner}&status=booked")));
        Assert.Single(Ids(await SearchAsync($"Appointment?practitioner={practitioner}&status:not=booked")));
        Assert.Equal(2, Ids(await SearchAsync("Appointment?status=booked,fulfilled")).Count);
        Assert.Single(Ids(await SearchAsync("Appointment?date=ge2026-11-01")));
        Assert.Single(Ids(await SearchAsync($"Patient?general-practitioner={practitioner}")));

        var included = await SearchAsync($"Observation?patient={patient}&_include=Observation:patient");
        Assert.Equal([patient], Ids(included, "Patient"));
        Assert.Contains(included.GetProperty("entry").EnumerateArray(), e => e.GetProperty("search").GetProperty("mode").GetString() == "include");
        var revincluded = await SearchAsync($"Patient?_id={patient}&_revinclude=Observation:patient&_revinclude=Appointment:patient");
        Assert.Equal(2, Ids(revincluded, "Observation").Count);
        Assert.Single(Ids(revincluded, "Appointment"));
    }

    [Fact]
    public async Task Includes_past_the_servers_limit_are_cut_with_a_warning_in_the_bundle_not_silently()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Inclus"))).GetProperty("id").GetString()!;
        var observations = string.Join(",", Enumerable.Range(0, 1_001).Select(_ =>
            $$"""{ "resource": {{Samples.Observation("Patient/" + patient)}}, "request": { "method": "POST", "url": "Observation" } }"""));
        using (var load = await Api.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [{{observations}}] }""")))
        {
            Assert.Equal(HttpStatusCode.OK, load.StatusCode);
        }

        var cut = await SearchAsync($"Patient?_id={patient}&_revinclude=Observation:patient");
        Assert.Equal([patient], Ids(cut, "Patient"));
        Assert.Equal(1_000, Ids(cut, "Observation").Count);
        var outcome = Assert.Single(cut.GetProperty("entry").EnumerateArray(), e => e.GetProperty("search").GetProperty("mode").GetString() == "outcome");
        var issue = outcome.GetProperty("resource").GetProperty("issue")[0];
        Assert.Equal("OperationOutcome", outcome.GetProperty("resource").GetProperty("resourceType").GetString());
        Assert.Equal("warning", issue.GetProperty("severity").GetString());
        Assert.Equal("incomplete", issue.GetProperty("code").GetString());
        Assert.Contains("1,000", issue.GetProperty("diagnostics").GetString());

        // Within the limit, no warning.
        var whole = await SearchAsync($"Patient?_id={patient}&_revinclude=Appointment:patient");
        Assert.DoesNotContain(whole.GetProperty("entry").EnumerateArray(), e => e.GetProperty("search").GetProperty("mode").GetString() == "outcome");
    }

    [Fact]
    public async Task Everything_returns_every_practitioner_the_patients_records_name_even_past_a_thousand()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Multisuivi"))).GetProperty("id").GetString()!;
        var entries = string.Join(",", Enumerable.Range(0, 1_001).Select(i =>
            $$"""
            { "fullUrl": "urn:uuid:00000000-0000-4000-8000-{{i:D12}}", "resource": {{Samples.Practitioner("Praticien" + i, (10_000_000_000L + i).ToString(System.Globalization.CultureInfo.InvariantCulture))}},
              "request": { "method": "POST", "url": "Practitioner" } },
            { "resource": {{Samples.Appointment("Patient/" + patient, $"urn:uuid:00000000-0000-4000-8000-{i:D12}", "2026-11-01T09:00:00+01:00")}},
              "request": { "method": "POST", "url": "Appointment" } }
            """));
        using (var load = await Api.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [{{entries}}] }""")))
        {
            Assert.Equal(HttpStatusCode.OK, load.StatusCode);
        }
        using var response = await Api.GetAsync($"/fhir/Patient/{patient}/$everything");
        var everything = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1_001, Ids(everything, "Appointment").Count);
        Assert.Equal(1_001, Ids(everything, "Practitioner").Distinct().Count()); // it stopped at 1,000, silently
    }

    [Fact]
    public async Task Paging_follows_opaque_next_links_without_repeats_and_counts_are_exact()
    {
        for (var i = 0; i < 7; i++) await CreateAsync("Patient", Samples.Patient(family: "Paginéqwz", given: "N" + i));
        var seen = new List<string>();
        var page = await SearchAsync("Patient?family=pagineqwz&_count=3");
        while (true)
        {
            seen.AddRange(Ids(page));
            var next = page.GetProperty("link").EnumerateArray().FirstOrDefault(l => l.GetProperty("relation").GetString() == "next");
            if (next.ValueKind == JsonValueKind.Undefined) break;
            var url = next.GetProperty("url").GetString()!;
            Assert.DoesNotContain("pagineqwz", url, StringComparison.OrdinalIgnoreCase); // long enough that no random token spells it
            page = await SearchAsync(url[(url.IndexOf("/fhir/", StringComparison.Ordinal) + 6)..]);
        }
        Assert.Equal(7, seen.Count);
        Assert.Equal(7, seen.Distinct().Count());

        var count = await SearchAsync("Patient?family=pagine&_summary=count");
        Assert.Equal(7, count.GetProperty("total").GetInt32());
        Assert.False(count.TryGetProperty("entry", out _));
        Assert.Equal(7, (await SearchAsync("Patient?family=pagine&_count=0")).GetProperty("total").GetInt32());
        var accurate = await SearchAsync("Patient?family=pagine&_count=2&_total=accurate");
        Assert.Equal(7, accurate.GetProperty("total").GetInt32());

        var sorted = Ids(await SearchAsync("Patient?family=pagine&_sort=-_lastUpdated&_count=100"));
        Assert.Equal(seen.AsEnumerable().Reverse(), sorted);
    }

    [Fact]
    public async Task POST_search_takes_form_parameters_and_lastUpdated_filters_by_change_time()
    {
        var before = DateTimeOffset.UtcNow.AddSeconds(-1).ToString("yyyy-MM-ddTHH:mm:ssZ");
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Formulaire"))).GetProperty("id").GetString()!;
        using var response = await Api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent(new Dictionary<string, string> { ["family"] = "formulaire" }));
        var bundle = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([id], Ids(bundle));
        // The self link of a POST search reproduces it without putting the values the client kept out of URLs into one (ADR 0003).
        var self = bundle.GetProperty("link")[0].GetProperty("url").GetString()!;
        Assert.Contains("/fhir/Patient?_page=", self, StringComparison.Ordinal);
        Assert.DoesNotContain("formulaire", self, StringComparison.OrdinalIgnoreCase);
        Assert.Equal([id], Ids(await SearchAsync(self[(self.IndexOf("/fhir/", StringComparison.Ordinal) + 6)..])));
        Assert.Equal([id], Ids(await SearchAsync($"Patient?family=formulaire&_lastUpdated=ge{Uri.EscapeDataString(before)}")));
        Assert.Empty(Ids(await SearchAsync($"Patient?family=formulaire&_lastUpdated=lt{Uri.EscapeDataString(before)}")));
    }

    [Fact]
    public async Task The_self_link_reproduces_the_search_with_the_parameters_used_for_GET_and_POST_search_and_not_those_a_lenient_search_ignored()
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Lienzyxwq"))).GetProperty("id").GetString()!;
        static string Self(JsonElement bundle) => bundle.GetProperty("link").EnumerateArray()
            .Single(l => l.GetProperty("relation").GetString() == "self").GetProperty("url").GetString()!;
        // Followed without Prefer: handling=lenient, a self link that kept the ignored parameter would be refused (400).
        async Task<List<string>> FollowedAsync(string self)
        {
            Assert.Contains("/fhir/Patient?_page=", self, StringComparison.Ordinal);
            // (A value long enough that the sealed token's random characters cannot spell it: "lien" did, once in a few thousand.)
            Assert.DoesNotContain("lienzyxwq", self, StringComparison.OrdinalIgnoreCase);
            return Ids(await SearchAsync(self[(self.IndexOf("/fhir/", StringComparison.Ordinal) + 6)..]));
        }

        var get = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient?family=lienzyxwq&colour=blue&_count=5");
        get.Headers.TryAddWithoutValidation("Prefer", "handling=lenient");
        using (var response = await Api.SendAsync(get))
        {
            var bundle = await response.BodyAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal([id], Ids(bundle));
            Assert.Equal([id], await FollowedAsync(Self(bundle)));
        }

        var post = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient/_search")
        {
            Content = new FormUrlEncodedContent([new("family", "lienzyxwq"), new("colour", "blue"), new("birthdate", "ge1980-01-01")]),
        };
        post.Headers.TryAddWithoutValidation("Prefer", "handling=lenient");
        using (var response = await Api.SendAsync(post))
        {
            var bundle = await response.BodyAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal([id], Ids(bundle));
            Assert.Equal([id], await FollowedAsync(Self(bundle)));
        }

        // A strict search with the same unknown parameter is still refused.
        using var strict = await Api.GetAsync("/fhir/Patient?family=lienzyxwq&colour=blue");
        Assert.Equal(HttpStatusCode.BadRequest, strict.StatusCode);
    }

    [Fact]
    public async Task A_lenient_search_ignores_unknown_and_unsupported_parameters_says_which_and_refuses_a_filter_it_would_drop()
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Souple"))).GetProperty("id").GetString()!;
        const string unsupported = "_contained=true&_list=favoris&_sort=family&_include:iterate=Patient:organization&colour=blue";
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient?family=souple&{unsupported}");
        request.Headers.TryAddWithoutValidation("Prefer", "handling=lenient");
        using (var response = await Api.SendAsync(request))
        {
            var bundle = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {bundle}");
            Assert.Equal([id], Ids(bundle));
            var self = bundle.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "self").GetProperty("url").GetString()!;
            Assert.DoesNotContain("souple", self, StringComparison.OrdinalIgnoreCase);
            // Followed strictly: the unsupported parameters the lenient search ignored are not in it.
            Assert.Equal([id], Ids(await SearchAsync(self[(self.IndexOf("/fhir/", StringComparison.Ordinal) + 6)..])));
            // The self link is opaque: what was left out is said in the Bundle's OperationOutcome entry (R4 search, handling errors).
            var outcome = bundle.GetProperty("entry").EnumerateArray().Single(e => e.GetProperty("search").GetProperty("mode").GetString() == "outcome");
            var said = string.Join(" ", outcome.GetProperty("resource").GetProperty("issue").EnumerateArray().Select(i => i.GetProperty("diagnostics").GetString()));
            foreach (var name in new[] { "_contained", "_list", "_sort", "_include:iterate", "'colour'" }) Assert.Contains(name, said, StringComparison.Ordinal);
        }

        // Strict (the default): each of them is refused, as not supported (the unknown one as invalid).
        foreach (var parameter in unsupported.Split('&').SkipLast(1))
        {
            using var strict = await Api.GetAsync($"/fhir/Patient?family=souple&{parameter}");
            var outcome = await strict.BodyAsync();
            Assert.True(strict.StatusCode == HttpStatusCode.BadRequest, $"{parameter}: {(int)strict.StatusCode} {outcome}");
            Assert.Equal("not-supported", outcome.GetProperty("issue")[0].GetProperty("code").GetString());
        }

        // A modifier this server does not apply to a filter, or a chain, is refused even under lenient handling: dropped, the
        // filter would widen the search (gender:text=f returned every patient) for a client that believes it filtered.
        foreach (var filter in new[] { "gender:text=f", "given:contains=ea", "general-practitioner.name=x", "_id:above=x", "birthdate:missing=true" })
        {
            var lenient = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient?family=souple&{filter}");
            lenient.Headers.TryAddWithoutValidation("Prefer", "handling=lenient");
            using var refused = await Api.SendAsync(lenient);
            var outcome = await refused.BodyAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{filter}: {(int)refused.StatusCode} {outcome}");
            Assert.Equal("not-supported", outcome.GetProperty("issue")[0].GetProperty("code").GetString());
        }
    }

    [Fact]
    public async Task An_observation_timed_by_a_Timing_is_found_by_date_over_its_outer_limits()
    {
        // effectiveTiming was not indexed: such a result was never found by date and sorted with the undated.
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Cadence"))).GetProperty("id").GetString()!;
        var id = (await CreateAsync("Observation", $$"""
            { "resourceType": "Observation", "status": "final", "code": { "text": "glycémie capillaire" }, "subject": { "reference": "Patient/{{patient}}" },
              "effectiveTiming": { "event": [ "2023-05-05T10:00:00Z", "2023-05-07T10:00:00Z" ] } }
            """)).GetProperty("id").GetString()!;
        foreach (var date in new[] { "eq2023-05", "eq2023", "ge2023-05-06", "le2023-05-05T12:00:00Z", "gt2023-05-07T09:00:00Z" })
            Assert.True(Ids(await SearchAsync($"Observation?subject=Patient/{patient}&date={date}")).SequenceEqual([id]), date);
        foreach (var date in new[] { "lt2023-05-01", "gt2023-05-08", "eq2023-05-06" })
            Assert.True(Ids(await SearchAsync($"Observation?subject=Patient/{patient}&date={date}")).Count == 0, date);
    }

    [Fact]
    public async Task An_escaped_bar_in_a_token_is_part_of_the_code_not_the_system_separator()
    {
        // identifier=a\|b is the value "a|b" in any system (R4 search, escaping); it was read as system "a", code "b".
        var id = (await CreateAsync("Practitioner", """{ "resourceType": "Practitioner", "identifier": [ { "system": "urn:zq", "value": "a|b" } ] }""")).GetProperty("id").GetString()!;
        Assert.Equal([id], Ids(await SearchAsync("Practitioner?identifier=a%5C%7Cb")));
        Assert.Equal([id], Ids(await SearchAsync("Practitioner?identifier=urn:zq%7Ca%5C%7Cb")));
        Assert.Empty(Ids(await SearchAsync("Practitioner?identifier=a%7Cb")));
    }

    [Fact]
    public async Task Create_and_update_honour_Prefer_return_minimal_and_OperationOutcome()
    {
        // The header was ignored: the whole resource (a Patient's identity) came back to a client that asked for nothing.
        using var create = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient(family: "Minimal")) };
        create.Headers.TryAddWithoutValidation("Prefer", "return=minimal");
        string id;
        using (var created = await Api.SendAsync(create))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            Assert.Empty(await created.Content.ReadAsByteArrayAsync());
            Assert.Equal("W/\"1\"", created.Headers.ETag?.ToString());
            Assert.Equal("return=minimal", created.Headers.GetValues("Preference-Applied").Single());
            id = created.Headers.Location!.ToString().Split("/Patient/")[1].Split('/')[0];
        }
        using var update = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{id}") { Content = FhirContent.Json(Samples.Patient(family: "Minimal", id: id)) };
        update.Headers.TryAddWithoutValidation("Prefer", "return=OperationOutcome");
        using (var updated = await Api.SendAsync(update))
        {
            var body = await updated.BodyAsync();
            Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.Contains($"Updated Patient/{id}, version 2", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
            Assert.DoesNotContain("Minimal", body.ToString(), StringComparison.Ordinal);
        }
        var read = await CreateAsync("Patient", Samples.Patient(family: "Representation"));
        Assert.Equal("Patient", read.GetProperty("resourceType").GetString()); // without the header, the resource
    }

    [Fact]
    public async Task A_patient_another_links_to_must_exist_and_is_not_deleted_from_under_the_link()
    {
        // Patient.link was not indexed: a linked patient was deleted (204) and a link to no patient accepted, so whoever was later
        // created under that id became the "replaced" or "same" person.
        var target = (await CreateAsync("Patient", Samples.Patient(family: "Cible"))).GetProperty("id").GetString()!;
        var linker = (await CreateAsync("Patient", Samples.Patient(family: "Lien").Replace("\"resourceType\": \"Patient\",",
            $$"""
            "resourceType": "Patient", "link": [ { "other": { "reference": "Patient/{{target}}" }, "type": "seealso" } ],
            """, StringComparison.Ordinal))).GetProperty("id").GetString()!;
        using (var delete = await Api.DeleteAsync($"/fhir/Patient/{target}"))
        {
            var body = await delete.Content.ReadAsStringAsync();
            Assert.True(delete.StatusCode == HttpStatusCode.Conflict, $"{(int)delete.StatusCode} {body}");
        }
        Assert.Equal([linker], Ids(await SearchAsync($"Patient?link=Patient/{target}")));
        using var dangling = await Api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Lien").Replace("\"resourceType\": \"Patient\",",
            """
            "resourceType": "Patient", "link": [ { "other": { "reference": "Patient/no-such-patient" }, "type": "seealso" } ],
            """, StringComparison.Ordinal)));
        var refused = await dangling.BodyAsync();
        Assert.True(dangling.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)dangling.StatusCode} {refused}");
        Assert.Contains("Patient.link.other", refused.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_version_written_with_leading_zeros_names_no_version_and_a_count_past_any_page_gets_a_full_page()
    {
        // "01" read as version 1 (a versionId is a string: "01" is not "1"); _count=99999999999 was "must be a non-negative integer".
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Zero"))).GetProperty("id").GetString()!;
        using (var vread = await Api.GetAsync($"/fhir/Patient/{id}/_history/01")) Assert.Equal(HttpStatusCode.NotFound, vread.StatusCode);
        using (var vread = await Api.GetAsync($"/fhir/Patient/{id}/_history/1")) Assert.Equal(HttpStatusCode.OK, vread.StatusCode);
        Assert.Equal([id], Ids(await SearchAsync("Patient?family=zero&_count=99999999999")));
    }

    [Fact]
    public async Task A_prescription_with_its_medication_contained_is_stored_and_read_back()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Ordonnance"))).GetProperty("id").GetString()!;
        var created = await CreateAsync("MedicationRequest", $$"""
            { "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": { "reference": "Patient/{{patient}}" },
              "contained": [ { "resourceType": "Medication", "id": "med1", "code": { "text": "Paracétamol 500 mg" } } ],
              "medicationReference": { "reference": "#med1" } }
            """);
        using var read = await Api.GetAsync($"/fhir/MedicationRequest/{created.GetProperty("id").GetString()}");
        var body = await read.BodyAsync();
        Assert.Equal("Medication", body.GetProperty("contained")[0].GetProperty("resourceType").GetString());
        Assert.Equal([created.GetProperty("id").GetString()!], Ids(await SearchAsync($"MedicationRequest?patient=Patient/{patient}")));
    }

    [Fact]
    public async Task A_transaction_rewrites_its_fullUrls_in_uri_elements_and_narrative_links_but_not_in_identifier_values()
    {
        // R4 http.html (transaction processing): matching links are replaced in references, elements of type uri and url, and
        // the narrative's <a href> and <img src>. An identifier's value is a string: it keeps what the client wrote.
        const string Urn = "urn:uuid:5b1f0c1e-33a4-4e55-9a7e-2d1c3b4a5f60";
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "fullUrl": "{{Urn}}", "resource": {{Samples.Patient(family: "Lien")}}, "request": { "method": "POST", "url": "Patient" } },
                { "resource": {
                    "resourceType": "DocumentReference", "status": "current",
                    "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">See <a href=\"{{Urn}}\">the patient</a>, <a href='{{Urn}}'>again</a>, <a href = \"{{Urn}}\">spaced</a>, <a href=\"urn:uuid:00000000-0000-4000-8000-000000000000\">elsewhere</a></div>" },
                    "extension": [{ "url": "http://example.org/fhir/StructureDefinition/about", "valueUri": "{{Urn}}" }],
                    "identifier": [{ "system": "urn:ietf:rfc:3986", "value": "{{Urn}}" }],
                    "subject": { "reference": "{{Urn}}" },
                    "content": [{ "attachment": { "contentType": "text/plain", "url": "{{Urn}}" } }] },
                  "request": { "method": "POST", "url": "DocumentReference" } }
              ]
            }
            """;
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        var patient = "Patient/" + body.GetProperty("entry")[0].GetProperty("resource").GetProperty("id").GetString();
        var location = body.GetProperty("entry")[1].GetProperty("response").GetProperty("location").GetString()!;
        using var read = await Api.GetAsync("/fhir/" + location[location.IndexOf("DocumentReference/", StringComparison.Ordinal)..location.IndexOf("/_history", StringComparison.Ordinal)]);
        var stored = await read.BodyAsync();
        Assert.Equal(patient, stored.GetProperty("subject").GetProperty("reference").GetString());
        Assert.Equal(patient, stored.GetProperty("extension")[0].GetProperty("valueUri").GetString());
        Assert.Equal(patient, stored.GetProperty("content")[0].GetProperty("attachment").GetProperty("url").GetString());
        var div = stored.GetProperty("text").GetProperty("div").GetString()!;
        Assert.Contains($"<a href=\"{patient}\">the patient</a>", div, StringComparison.Ordinal);
        Assert.Contains($"<a href='{patient}'>again</a>", div, StringComparison.Ordinal);
        Assert.Contains($"<a href = \"{patient}\">spaced</a>", div, StringComparison.Ordinal);
        Assert.Contains("urn:uuid:00000000-0000-4000-8000-000000000000", div, StringComparison.Ordinal);
        Assert.DoesNotContain(Urn, div, StringComparison.Ordinal);
        Assert.Equal(Urn, stored.GetProperty("identifier")[0].GetProperty("value").GetString());
    }

    [Fact]
    public async Task What_R4_defines_at_the_servers_or_a_types_level_and_is_not_supported_is_said_so()
    {
        (HttpMethod Method, string Path, string Said)[] requests =
        [
            (HttpMethod.Get, "/fhir/_history", "history of the whole server"),
            (HttpMethod.Get, "/fhir/_search?name=x", "search across all types"),
            (HttpMethod.Post, "/fhir/_search", "search across all types"),
            (HttpMethod.Get, "/fhir/Patient/$everything", "ask it of one patient"),
            (HttpMethod.Get, "/fhir/Patient/$everything?_count=5", "ask it of one patient"),
            (HttpMethod.Get, "/fhir/Observation/$lastn", "operation $lastn is not supported"),
        ];
        foreach (var (method, path, said) in requests)
        {
            using var request = new HttpRequestMessage(method, path);
            if (method == HttpMethod.Post) request.Content = new FormUrlEncodedContent([new("name", "x")]);
            using var response = await Api.SendAsync(request);
            var outcome = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode} {outcome}");
            Assert.Equal("not-supported", outcome.GetProperty("issue")[0].GetProperty("code").GetString());
            Assert.Contains(said, outcome.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task A_method_a_fixed_path_does_not_take_is_405_naming_those_it_does_not_a_write_of_a_type_or_id_named_after_the_path()
    {
        // DELETE [base]/metadata?x=y was a conditional delete of a type "metadata" (404), PUT [base]/Patient/_history an update of a
        // record with the id "_history"; routing's own 405 named the methods of the [type] routes in its Allow.
        using var anonymous = new HttpClient { BaseAddress = Server.BaseAddress };
        string[] writes = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        (HttpClient Client, string Path, string[] Methods, string[] Allowed)[] paths =
        [
            (anonymous, "/fhir/metadata", writes, ["GET"]),
            (anonymous, "/fhir/metadata?x=y", writes, ["GET"]),
            (Api, "/fhir/metadata?x=y", writes, ["GET"]),
            (Api, "/fhir/_history", writes, ["GET"]),
            (Api, "/fhir/_history?x=y", writes, ["GET"]),
            (Api, "/fhir/_search?x=y", ["PUT", "PATCH", "DELETE", "OPTIONS"], ["GET", "POST"]),
            (Api, "/fhir/Patient/_history", writes, ["GET"]),
            (Api, "/fhir/Patient/_search", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"], ["POST"]),
            (Api, "/fhir/$export?x=y", writes, ["GET"]),
            (Api, "/fhir/Patient/$export", writes, ["GET"]),
            (Api, "/fhir/$export-status/no-such-job", ["POST", "PUT", "PATCH", "OPTIONS"], ["GET", "DELETE"]),
            (Api, "/fhir/AuditEvent", writes, ["GET"]),
            (Api, "/fhir/AuditEvent/_search", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"], ["POST"]),
            (Api, "/fhir?x=y", ["GET", "PUT", "PATCH", "DELETE"], ["POST"]),
        ];
        foreach (var (client, path, methods, allowed) in paths)
        {
            foreach (var method in methods)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (method is "POST" or "PUT" or "PATCH") request.Content = FhirContent.Json(Samples.Patient(family: "Methode"));
                using var response = await client.SendAsync(request);
                var text = await response.Content.ReadAsStringAsync();
                var said = $"{method} {path}{(client == anonymous ? " (no token)" : "")}: {(int)response.StatusCode} {text}";
                Assert.True(response.StatusCode == HttpStatusCode.MethodNotAllowed, said);
                Assert.True(allowed.Order(StringComparer.Ordinal).SequenceEqual(response.Content.Headers.Allow.Order(StringComparer.Ordinal)), $"Allow: {string.Join(",", response.Content.Headers.Allow)}; {said}");
                var outcome = JsonDocument.Parse(text).RootElement;
                Assert.Equal(("OperationOutcome", "not-supported"), (outcome.GetProperty("resourceType").GetString(), outcome.GetProperty("issue")[0].GetProperty("code").GetString()));
            }
        }
        // What they do take is answered as before: the CapabilityStatement to anyone, the rest to a client only.
        using (var metadata = await anonymous.GetAsync("/fhir/metadata")) Assert.Equal(HttpStatusCode.OK, metadata.StatusCode);
        using (var history = await anonymous.GetAsync("/fhir/_history")) Assert.Equal(HttpStatusCode.Unauthorized, history.StatusCode);
        using (var history = await Api.GetAsync("/fhir/Patient/_history?_count=1")) Assert.Equal(HttpStatusCode.OK, history.StatusCode);
        using (var found = await Api.GetAsync("/fhir/Patient?family=methode")) Assert.Equal(0, (await found.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task An_observation_of_a_device_is_kept_and_a_search_by_the_device_says_why_it_cannot_be_searched()
    {
        // R4 lets an Observation's subject be a Device (an analyser's quality control); this server holds no Device records.
        var created = await CreateAsync("Observation", Samples.Observation("Device/analyseur-1"));
        Assert.Equal("Device/analyseur-1", created.GetProperty("subject").GetProperty("reference").GetString());
        using var search = await Api.GetAsync("/fhir/Observation?subject=Device/analyseur-1");
        var outcome = await search.BodyAsync();
        Assert.Equal(HttpStatusCode.BadRequest, search.StatusCode);
        Assert.Equal("not-supported", outcome.GetProperty("issue")[0].GetProperty("code").GetString());
        Assert.Contains("a type this server does not hold", outcome.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        // A malformed reference is still said to be one.
        using var malformed = await Api.GetAsync("/fhir/Observation?subject=Nothing/1");
        Assert.Contains("expects a reference to", (await malformed.BodyAsync()).GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metadata_is_the_full_CapabilityStatement_and_a_mode_it_does_not_make_is_refused()
    {
        foreach (var path in new[] { "/fhir/metadata", "/fhir/metadata?mode=full" })
        {
            using var full = await Server.Http.GetAsync(path);
            Assert.Equal("CapabilityStatement", (await full.BodyAsync()).GetProperty("resourceType").GetString());
        }
        foreach (var mode in new[] { "terminology", "normative", "bogus" })
        {
            using var refused = await Server.Http.GetAsync("/fhir/metadata?mode=" + mode);
            var outcome = await refused.BodyAsync();
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("OperationOutcome", outcome.GetProperty("resourceType").GetString());
        }
    }

    [Theory]
    [InlineData("batch")]
    [InlineData("transaction")]
    public async Task A_bundles_writes_are_answered_as_Prefer_return_asks_and_its_reads_keep_their_resource(string type)
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Prefere"))).GetProperty("id").GetString()!;
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "{{type}}", "entry": [
              { "resource": {{Samples.Patient(family: "Prefere")}}, "request": { "method": "POST", "url": "Patient" } },
              { "resource": {{Samples.Patient(family: "Prefere", id: id)}}, "request": { "method": "PUT", "url": "Patient/{{id}}" } },
              { "request": { "method": "GET", "url": "Patient/{{id}}" } } ] }
            """;
        foreach (var preference in new[] { "minimal", "OperationOutcome", "representation" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = FhirContent.Json(bundle) };
            request.Headers.TryAddWithoutValidation("Prefer", "return=" + preference);
            using var response = await Api.SendAsync(request);
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.Equal("return=" + preference, response.Headers.GetValues("Preference-Applied").Single());
            var entries = body.GetProperty("entry");
            Assert.StartsWith("201", entries[0].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
            for (var i = 0; i < 2; i++)
            {
                Assert.Equal(preference == "representation", entries[i].TryGetProperty("resource", out _));
                Assert.Equal(preference == "OperationOutcome", entries[i].GetProperty("response").TryGetProperty("outcome", out _));
                Assert.True(entries[i].GetProperty("response").TryGetProperty("etag", out _));
            }
            Assert.Equal("Prefere", entries[2].GetProperty("resource").GetProperty("name")[0].GetProperty("family").GetString());
        }
    }

    [Fact]
    public async Task Everything_of_a_deleted_patient_answers_410_as_its_read_does()
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Efface"))).GetProperty("id").GetString()!;
        using (var delete = await Api.DeleteAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using (var read = await Api.GetAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.Gone, read.StatusCode);
        using var everything = await Api.GetAsync($"/fhir/Patient/{id}/$everything");
        var outcome = await everything.BodyAsync();
        Assert.Equal(HttpStatusCode.Gone, everything.StatusCode);
        Assert.Contains("deleted", outcome.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        using var unknown = await Api.GetAsync("/fhir/Patient/never-was/$everything");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        // A client limited to another patient learns nothing of it: 404, as for any record it may not see, deleted or not.
        var other = (await CreateAsync("Patient", Samples.Patient(family: "Autre"))).GetProperty("id").GetString()!;
        using var limited = await Server.ClientAsync(TenantName, "system/*.rs", new Vauban.Access.ClientLimits([other], false));
        using var hidden = await limited.GetAsync($"/fhir/Patient/{id}/$everything");
        Assert.Equal(HttpStatusCode.NotFound, hidden.StatusCode);
        Assert.DoesNotContain("deleted", await hidden.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Transaction_is_atomic_and_resolves_urn_uuid_references()
    {
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": {{Samples.Patient(family: "Transac")}},
                  "request": { "method": "POST", "url": "Patient" } },
                { "fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
                  "resource": {{Samples.Observation("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a")}},
                  "request": { "method": "POST", "url": "Observation" } }
              ]
            }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.Equal("transaction-response", body.GetProperty("type").GetString());
            var entries = body.GetProperty("entry").EnumerateArray().ToList();
            Assert.All(entries, e => Assert.StartsWith("201", e.GetProperty("response").GetProperty("status").GetString()));
            var patientId = entries[0].GetProperty("resource").GetProperty("id").GetString()!;
            Assert.Equal($"Patient/{patientId}", entries[1].GetProperty("resource").GetProperty("subject").GetProperty("reference").GetString());
            Assert.Single(Ids(await SearchAsync($"Observation?patient={patientId}")));
        }

        // The second entry is invalid (wrong NIR key): nothing of the transaction is written.
        var broken = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "resource": {{Samples.Patient(family: "Atomique")}}, "request": { "method": "POST", "url": "Patient" } },
                { "resource": {{Samples.Patient(family: "Atomique", nir: "180034410912300")}}, "request": { "method": "POST", "url": "Patient" } }
              ]
            }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(broken)))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("OperationOutcome", (await response.BodyAsync()).GetProperty("resourceType").GetString());
        }
        Assert.Empty(Ids(await SearchAsync("Patient?family=atomique")));

        // A failure discovered while writing (If-Match on a missing resource) also rolls back the earlier entries.
        var late = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "resource": {{Samples.Patient(family: "Tardif")}}, "request": { "method": "POST", "url": "Patient" } },
                { "resource": {{Samples.Patient(family: "Tardif", id: "does-not-exist")}}, "request": { "method": "PUT", "url": "Patient/does-not-exist", "ifMatch": "W/\"4\"" } }
              ]
            }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(late)))
        {
            Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        }
        Assert.Empty(Ids(await SearchAsync("Patient?family=tardif")));
    }

    [Fact]
    public async Task A_deleted_record_read_in_a_transaction_is_410_as_it_is_alone_or_in_a_batch()
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Efface"))).GetProperty("id").GetString()!;
        using (var delete = await Api.DeleteAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using (var read = await Api.GetAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.Gone, read.StatusCode);
        var bundle = $$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ { "request": { "method": "GET", "url": "Patient/{{id}}" } } ] }""";
        using (var batch = await Api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            Assert.StartsWith("410", (await batch.BodyAsync()).GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        }
        using var transaction = await Api.PostAsync("/fhir", FhirContent.Json(bundle.Replace("\"batch\"", "\"transaction\"", StringComparison.Ordinal)));
        var outcome = await transaction.BodyAsync();
        Assert.True(transaction.StatusCode == HttpStatusCode.Gone, $"{(int)transaction.StatusCode} {outcome}");
        Assert.StartsWith("Bundle.entry[0] (GET Patient): ", outcome.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Transaction_that_changes_one_resource_twice_is_400_and_writes_nothing()
    {
        var first = Samples.Patient(family: "Deuxfois");
        var node = System.Text.Json.Nodes.JsonNode.Parse(first)!.AsObject();
        node["id"] = "deux-fois";
        var patient = node.ToJsonString();
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "resource": {{patient}}, "request": { "method": "PUT", "url": "Patient/deux-fois" } },
                { "request": { "method": "DELETE", "url": "Patient/deux-fois" } }
              ]
            }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
            Assert.Contains("Bundle.entry[1]", body, StringComparison.Ordinal);
            Assert.Contains("once", body, StringComparison.Ordinal);
        }
        using var read = await Api.GetAsync("/fhir/Patient/deux-fois");
        Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
    }

    [Fact]
    public async Task Transaction_with_a_urn_uuid_reference_to_no_entry_is_400_naming_it_and_writes_nothing()
    {
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": {{Samples.Patient(family: "Orphelin")}},
                  "request": { "method": "POST", "url": "Patient" } },
                { "resource": {{Samples.Observation("urn:uuid:0badc0de-0000-4000-8000-000000000000")}},
                  "request": { "method": "POST", "url": "Observation" } }
              ]
            }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            var body = await response.BodyAsync();
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.Contains("urn:uuid:0badc0de-0000-4000-8000-000000000000", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString());
        }
        Assert.Empty(Ids(await SearchAsync("Patient?family=orphelin")));
        Assert.Empty(Ids(await SearchAsync("Observation?code=2345-7")));
    }

    [Fact]
    public async Task Transaction_urn_uuid_reference_to_an_entry_of_a_type_the_element_does_not_allow_is_400_and_writes_nothing()
    {
        // The validator sees "urn:uuid:…" without a type; once rewritten it names a Practitioner, which Observation.subject may
        // not: a record filed under no patient, open to whoever may read Observation. Refused as the literal reference is.
        var practitionerUrn = "urn:uuid:cccccccc-1111-4111-8111-111111111111";
        foreach (var (method, url) in new[] { ("POST", "Observation"), ("PUT", "Observation/obs-urn-type") })
        {
            var observation = Samples.Observation(practitionerUrn, loinc: "8867-4");
            if (method == "PUT") observation = observation.Replace("\"resourceType\": \"Observation\"", "\"resourceType\": \"Observation\", \"id\": \"obs-urn-type\"");
            var bundle = $$"""
                {
                  "resourceType": "Bundle", "type": "transaction",
                  "entry": [
                    { "fullUrl": "{{practitionerUrn}}", "resource": {{Samples.Practitioner("Mauvaiscible")}},
                      "request": { "method": "POST", "url": "Practitioner" } },
                    { "resource": {{observation}}, "request": { "method": "{{method}}", "url": "{{url}}" } }
                  ]
                }
                """;
            using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
            var body = await response.BodyAsync();
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            var diagnostics = body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!;
            Assert.Contains("Bundle.entry[1]", diagnostics);
            Assert.Contains("A reference of type Practitioner is not allowed here", diagnostics);
        }
        Assert.Empty(Ids(await SearchAsync("Practitioner?family=mauvaiscible")));
        Assert.Empty(Ids(await SearchAsync("Observation?code=8867-4")));
        // The same urn:uuid: naming a Patient entry is what a transaction is for.
        var good = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "fullUrl": "urn:uuid:dddddddd-1111-4111-8111-111111111111", "resource": {{Samples.Patient(family: "Bonnecible")}},
                  "request": { "method": "POST", "url": "Patient" } },
                { "resource": {{Samples.Observation("urn:uuid:dddddddd-1111-4111-8111-111111111111", loinc: "8867-4")}},
                  "request": { "method": "POST", "url": "Observation" } }
              ]
            }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(good))) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single(Ids(await SearchAsync("Observation?code=8867-4")));
    }

    [Fact]
    public async Task Transaction_with_a_conditional_reference_is_400_since_the_server_does_not_resolve_them_and_writes_nothing()
    {
        // Stored as written, "Practitioner?identifier=…" named no record (R4: a server that does not resolve them fails the transaction).
        var observation = Samples.Observation("urn:uuid:eeeeeeee-1111-4111-8111-111111111111", loinc: "2093-3")
            .Replace("\"status\": \"final\",", "\"status\": \"final\", \"performer\": [{ \"reference\": \"Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1|810001234567\" }],", StringComparison.Ordinal);
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "fullUrl": "urn:uuid:eeeeeeee-1111-4111-8111-111111111111", "resource": {{Samples.Patient(family: "Conditionnel")}},
                  "request": { "method": "POST", "url": "Patient" } },
                { "resource": {{observation}}, "request": { "method": "POST", "url": "Observation" } }
              ]
            }
            """;
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body.ToString());
        Assert.Contains("Bundle.entry[1]: the conditional reference 'Practitioner?identifier=", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, StringComparison.Ordinal);
        Assert.Empty(Ids(await SearchAsync("Patient?family=conditionnel")));
        Assert.Empty(Ids(await SearchAsync("Observation?code=2093-3")));
    }

    [Fact]
    public async Task Transaction_fullUrl_that_disagrees_with_its_entry_is_400_and_a_reference_to_an_existing_record_is_never_re_pointed()
    {
        // References to an entry's fullUrl are rewritten to the record it writes: a fullUrl naming another record made a result
        // meant for one patient land under another (R4: the fullUrl SHALL NOT disagree with the id in the resource).
        var existing = (await CreateAsync("Patient", Samples.Patient(family: "Titulaire"))).GetProperty("id").GetString()!;
        var existingUrl = new Uri(Api.BaseAddress!, $"/fhir/Patient/{existing}").ToString();
        string Bundle(string fullUrl, string method, string url, string patient) => $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "fullUrl": "{{fullUrl}}", "resource": {{patient}}, "request": { "method": "{{method}}", "url": "{{url}}" } },
                { "resource": {{Samples.Observation(existingUrl, loinc: "1558-6")}}, "request": { "method": "POST", "url": "Observation" } }
              ]
            }
            """;
        foreach (var (bundle, mentions) in new[]
        {
            (Bundle(existingUrl, "PUT", "Patient/autre-1", Samples.Patient(family: "Autre", id: "autre-1")), "but the entry puts Patient/autre-1"),
            (Bundle(existingUrl, "POST", "Patient", Samples.Patient(family: "Autre")), "is a record of this server"),
            (Bundle("http://localhost/fhir/Practitioner/autre-1", "PUT", "Patient/autre-1", Samples.Patient(family: "Autre", id: "autre-1")), "names a Practitioner"),
            (Bundle($"{existingUrl}/_history/1", "PUT", "Patient/autre-1", Samples.Patient(family: "Autre", id: "autre-1")), "names a version"),
            (Bundle("autre-1", "PUT", "Patient/autre-1", Samples.Patient(family: "Autre", id: "autre-1")), "neither a urn:uuid: nor an absolute URL"),
        })
        {
            using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body.ToString());
            Assert.Contains(mentions, body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, StringComparison.Ordinal);
        }
        Assert.Empty(Ids(await SearchAsync("Patient?family=autre")));
        Assert.Empty(Ids(await SearchAsync("Observation?code=1558-6")));
        // The URL a record had on the server it comes from is what a fullUrl is for: references to it name the new record.
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(Bundle("https://ancien.example.org/fhir/Patient/77", "POST", "Patient", Samples.Patient(family: "Migre"))
            .Replace(existingUrl, "https://ancien.example.org/fhir/Patient/77", StringComparison.Ordinal))))
        {
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
            var entries = body.GetProperty("entry").EnumerateArray().ToList();
            Assert.Equal($"Patient/{entries[0].GetProperty("resource").GetProperty("id").GetString()}",
                entries[1].GetProperty("resource").GetProperty("subject").GetProperty("reference").GetString());
        }
    }

    [Fact]
    public async Task Transaction_reference_to_a_conditional_create_that_matched_names_the_existing_resource_even_from_an_earlier_entry()
    {
        var nir = Samples.ValidNir("1850375123411");
        var existing = (await CreateAsync("Patient", Samples.Patient(family: "Existant", nir: nir))).GetProperty("id").GetString()!;
        const string patientUrn = "urn:uuid:3f0e1d5c-8a59-4d7e-9c1b-2b7a4f6d8e01";
        // The Observation comes first in the bundle and is created before the conditional create is processed.
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "resource": {{Samples.Observation(patientUrn)}}, "request": { "method": "POST", "url": "Observation" } },
                { "fullUrl": "{{patientUrn}}", "resource": {{Samples.Patient(family: "Doublon", nir: nir)}},
                  "request": { "method": "POST", "url": "Patient", "ifNoneExist": "identifier={{Vauban.Fhir.KnownIdentifierSystems.InsNir}}|{{nir}}" } },
                { "resource": {{Samples.Observation(patientUrn, loinc: "718-7")}}, "request": { "method": "POST", "url": "Observation" } }
              ]
            }
            """;
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        var entries = body.GetProperty("entry").EnumerateArray().ToList();
        Assert.StartsWith("200", entries[1].GetProperty("response").GetProperty("status").GetString());
        Assert.Equal(existing, entries[1].GetProperty("resource").GetProperty("id").GetString());
        // As the direct POST with If-None-Exist answers a match: the version it found, and when it was written.
        Assert.Equal("W/\"1\"", entries[1].GetProperty("response").GetProperty("etag").GetString());
        Assert.Equal(entries[1].GetProperty("resource").GetProperty("meta").GetProperty("lastUpdated").GetString(),
            entries[1].GetProperty("response").GetProperty("lastModified").GetString());
        foreach (var observation in new[] { entries[0], entries[2] })
        {
            Assert.StartsWith("201", observation.GetProperty("response").GetProperty("status").GetString());
            Assert.Equal($"Patient/{existing}", observation.GetProperty("resource").GetProperty("subject").GetProperty("reference").GetString());
        }
        Assert.Equal(2, Ids(await SearchAsync($"Observation?subject=Patient/{existing}")).Count);
        Assert.Empty(Ids(await SearchAsync("Patient?family=doublon")));
    }

    [Fact]
    public async Task A_transaction_with_two_conditional_creates_of_the_same_criteria_is_refused_instead_of_creating_the_patient_twice()
    {
        var nir = Samples.ValidNir("1850375123422");
        var criteria = $"identifier={Vauban.Fhir.KnownIdentifierSystems.InsNir}|{nir}";
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "resource": {{Samples.Patient(family: "Jumeau", nir: nir)}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": "{{criteria}}" } },
                { "resource": {{Samples.Patient(family: "Jumeau", nir: nir)}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": "?{{criteria}}" } }
              ]
            }
            """;
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            var body = await response.BodyAsync();
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("Bundle.entry[1]: its ifNoneExist repeats Bundle.entry[0]'s", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        Assert.Empty(Ids(await SearchAsync("Patient?family=jumeau")));
        // The same two as a batch run one after the other: the second finds the first.
        using (var batch = await Api.PostAsync("/fhir", FhirContent.Json(bundle.Replace("\"transaction\"", "\"batch\"", StringComparison.Ordinal))))
        {
            var statuses = (await batch.BodyAsync()).GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("response").GetProperty("status").GetString()!).ToList();
            Assert.StartsWith("201", statuses[0]);
            Assert.StartsWith("200", statuses[1]);
        }
        Assert.Single(Ids(await SearchAsync("Patient?family=jumeau")));
    }

    [Fact]
    public async Task A_transaction_whose_plain_create_makes_the_identity_a_conditional_create_asks_for_is_refused_whole()
    {
        // The conditional create's criteria are matched before the transaction writes anything: they found nothing, and the plain
        // create beside it (same NIR, no ifNoneExist) made the patient they name — two patients of one identity. Either order.
        var nir = Samples.ValidNir("1850375123423");
        var criteria = $"identifier={Vauban.Fhir.KnownIdentifierSystems.InsNir}|{nir}";
        var plain = $$"""{ "resource": {{Samples.Patient(family: "Gemeau", nir: nir)}}, "request": { "method": "POST", "url": "Patient" } }""";
        var conditional = $$"""{ "resource": {{Samples.Patient(family: "Gemeau", nir: nir)}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": "{{criteria}}" } }""";
        foreach (var (first, second) in new[] { (plain, conditional), (conditional, plain) })
        {
            using var response = await Api.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{first}}, {{second}} ] }"""));
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.PreconditionFailed, response.StatusCode + body.ToString());
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.Contains("another Patient it writes matches them too", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
            Assert.Empty(Ids(await SearchAsync("Patient?family=gemeau")));
        }
        // Alone, the conditional create makes the one patient, and sent again finds it.
        for (var i = 0; i < 2; i++)
        {
            using var response = await Api.PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{conditional}} ] }"""));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Single(Ids(await SearchAsync("Patient?family=gemeau")));
    }

    [Fact]
    public async Task An_absolute_reference_to_this_server_names_the_record_here_and_one_to_another_server_matches_nothing()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Absolu"))).GetProperty("id").GetString()!;
        var serverBase = new Uri(Api.BaseAddress!, "/fhir").ToString().TrimEnd('/');
        // Written with this server's base URL: stored as the relative reference, so that it is indexed and the record is the patient's.
        var observation = await CreateAsync("Observation", Samples.Observation($"{serverBase}/Patient/{patient}"));
        Assert.Equal($"Patient/{patient}", observation.GetProperty("subject").GetProperty("reference").GetString());
        var id = observation.GetProperty("id").GetString()!;
        Assert.Equal([id], Ids(await SearchAsync($"Observation?subject=Patient/{patient}")));
        Assert.Equal([id], Ids(await SearchAsync($"Observation?subject={Uri.EscapeDataString($"{serverBase}/Patient/{patient}")}")));
        Assert.Contains(id, Ids(await SearchAsync($"Patient/{patient}/$everything")));
        // The same id on another server is another patient.
        Assert.Empty(Ids(await SearchAsync($"Observation?subject={Uri.EscapeDataString($"http://autre-hopital.example/fhir/Patient/{patient}")}")));
        Assert.Empty(Ids(await SearchAsync($"Observation?patient={Uri.EscapeDataString($"https://autre-hopital.example/fhir/Patient/{patient}")}")));
    }

    [Fact]
    public async Task A_versioned_reference_as_a_search_value_is_refused_with_400_not_searched_as_the_current_record()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Versionne"))).GetProperty("id").GetString()!;
        await CreateAsync("Observation", Samples.Observation($"Patient/{patient}"));
        var serverBase = new Uri(Api.BaseAddress!, "/fhir").ToString().TrimEnd('/');
        // R4 search defines [id], [type]/[id] and [url] as reference values; the index keeps no version, so a search for one cannot be answered.
        foreach (var query in new[] { $"Observation?subject=Patient/{patient}/_history/2", $"Observation?patient=Patient/{patient}/_history/1",
                     $"Observation?subject={Uri.EscapeDataString($"{serverBase}/Patient/{patient}/_history/1")}" })
        {
            using var response = await Api.GetAsync("/fhir/" + query);
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{query}: {(int)response.StatusCode} {body}");
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.Contains("version", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        Assert.Single(Ids(await SearchAsync($"Observation?subject=Patient/{patient}")));
    }

    [Fact]
    public async Task A_code_element_is_searched_by_its_own_code_system_and_code_and_found_by_no_other_system()
    {
        var practitioner = (await CreateAsync("Practitioner", Samples.Practitioner())).GetProperty("id").GetString()!;
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Systeme"))).GetProperty("id").GetString()!;
        var encounter = (await CreateAsync("Encounter", Samples.Encounter(patient, practitioner, "2026-03-01T10:00:00+01:00"))).GetProperty("id").GetString()!;
        var observation = (await CreateAsync("Observation", Samples.Observation($"Patient/{patient}"))).GetProperty("id").GetString()!;
        var appointment = (await CreateAsync("Appointment", Samples.Appointment($"Patient/{patient}", $"Practitioner/{practitioner}", "2026-12-01T09:00:00+01:00"))).GetProperty("id").GetString()!;

        Assert.Equal([encounter], Ids(await SearchAsync($"Encounter?patient={patient}&status=http://hl7.org/fhir/encounter-status|finished")));
        Assert.Equal([encounter], Ids(await SearchAsync($"Encounter?patient={patient}&status=finished")));
        Assert.Empty(Ids(await SearchAsync($"Encounter?patient={patient}&status=http://hl7.org/fhir/observation-status|finished")));
        Assert.Empty(Ids(await SearchAsync($"Encounter?patient={patient}&status:not=http://hl7.org/fhir/encounter-status|finished")));
        Assert.Equal([encounter], Ids(await SearchAsync($"Encounter?patient={patient}&status:not=http://hl7.org/fhir/encounter-status|planned")));
        Assert.Equal([observation], Ids(await SearchAsync($"Observation?patient={patient}&status=http://hl7.org/fhir/observation-status|final")));
        Assert.Equal([appointment], Ids(await SearchAsync($"Appointment?patient={patient}&status=http://hl7.org/fhir/appointmentstatus|booked,http://hl7.org/fhir/appointmentstatus|fulfilled")));
        Assert.Equal([patient], Ids(await SearchAsync($"Patient?family=systeme&gender=http://hl7.org/fhir/administrative-gender|male")));
        Assert.Empty(Ids(await SearchAsync($"Patient?family=systeme&gender=http://hl7.org/fhir/administrative-gender|female")));
        // |code asks for a code with no system (FHIR R4 search, token): a code element bound to one code system has that system.
        Assert.Empty(Ids(await SearchAsync($"Patient?family=systeme&gender=|male")));
        Assert.Empty(Ids(await SearchAsync($"Encounter?patient={patient}&status=|finished")));
        Assert.Equal([patient], Ids(await SearchAsync($"Patient?family=systeme&gender:not=|male")));
        // A Coding keeps its own system: Encounter.class is searched as before.
        Assert.Equal([encounter], Ids(await SearchAsync($"Encounter?patient={patient}&class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB")));
    }

    [Fact]
    public async Task A_birth_date_of_year_or_month_precision_is_found_by_every_range_it_intersects()
    {
        // FHIR R4 search, "prefix": gt/ge/lt/le match when the target's range intersects the searched one, sa/eb when it lies wholly
        // after/before it, eq when the searched range contains it. A birth date of year or month precision is the whole year or month.
        string[] births = ["1979", "1980", "1980-05", "1980-06", "1980-06-10", "1980-06-20"];
        var labels = new Dictionary<string, string>();
        foreach (var birth in births)
        {
            var id = (await CreateAsync("Patient", Samples.Patient(family: "Partielle", given: "Naissance", birthDate: birth))).GetProperty("id").GetString()!;
            labels[id] = birth;
        }
        (string Search, string Expected)[] cases =
        [
            ("ge1980-06-15", "1980 1980-06 1980-06-20"),
            ("gt1980-06-15", "1980 1980-06 1980-06-20"),
            ("le1980-06-15", "1979 1980 1980-05 1980-06 1980-06-10"),
            ("lt1980-06-15", "1979 1980 1980-05 1980-06 1980-06-10"),
            ("sa1980-06-15", "1980-06-20"),
            ("eb1980-06-15", "1979 1980-05 1980-06-10"),
            ("ge1980-07", "1980"),
            ("gt1980-06", "1980"),
            ("lt1980-06", "1979 1980 1980-05"),
            ("le1980-05-31", "1979 1980 1980-05"),
            ("ge1980-06-01", "1980 1980-06 1980-06-10 1980-06-20"),
            ("gt1979", "1980 1980-05 1980-06 1980-06-10 1980-06-20"),
            ("le1979-12-31", "1979"),
            ("1980", "1980 1980-05 1980-06 1980-06-10 1980-06-20"),
            ("1980-06", "1980-06 1980-06-10 1980-06-20"),
            ("1980-06-10", "1980-06-10"),
            ("ap1980-06", "1979 1980 1980-05 1980-06 1980-06-10 1980-06-20"), // 1980-06-01 ± a tenth of the 46 years since: 1975-08 to 1985-04
            ("ne1980-06", "1979 1980 1980-05"),
            ("ge1980-06-15,le1979-06-01", "1979 1980 1980-06 1980-06-20"),
        ];
        var wrong = new List<string>();
        foreach (var (search, expected) in cases)
        {
            var found = string.Join(' ', Ids(await SearchAsync($"Patient?family=partielle&birthdate={search}&_count=50")).Select(id => labels[id]).Order(StringComparer.Ordinal));
            var wanted = string.Join(' ', expected.Split(' ').Order(StringComparer.Ordinal));
            if (found != wanted) wrong.Add($"birthdate={search}: found [{found}], expected [{wanted}]");
        }
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
        // Without a name to drive the search, the range is tested on each of the type's rows instead of the name's candidates.
        Assert.Equal(["1980", "1980-06", "1980-06-20"], Ids(await SearchAsync("Patient?birthdate=ge1980-06-15&gender=male")).Select(id => labels[id]).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_GET_of_search_is_405_allowing_POST_not_a_read_of_a_record_named_search()
    {
        // R4 searches by GET [base]/[type]?parameters or POST [base]/[type]/_search.
        foreach (var url in new[] { "/fhir/Observation/_search?patient=Patient/x", "/fhir/Patient/_search" })
        {
            using var response = await Api.GetAsync(url);
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.MethodNotAllowed, $"GET {url}: {(int)response.StatusCode} {body}");
            Assert.Contains("POST", response.Content.Headers.Allow);
            Assert.Contains("takes POST", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Batch_runs_entries_independently()
    {
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "batch",
              "entry": [
                { "resource": {{Samples.Patient(family: "Lot")}}, "request": { "method": "POST", "url": "Patient" } },
                { "request": { "method": "GET", "url": "Patient/unknown-id" } },
                { "request": { "method": "GET", "url": "Patient?family=lot" } }
              ]
            }
            """;
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("batch-response", body.GetProperty("type").GetString());
        var statuses = body.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("response").GetProperty("status").GetString()!).ToList();
        Assert.StartsWith("201", statuses[0]);
        Assert.StartsWith("404", statuses[1]);
        Assert.StartsWith("200", statuses[2]);
    }

    [Fact]
    public async Task Each_response_entry_that_carries_a_resource_has_the_records_fullUrl_in_a_batch_and_in_a_transaction()
    {
        // R4 Bundle.entry.fullUrl SHALL have a value except for a create's request and a search's or an operation's unidentified results.
        var serverBase = new Uri(Api.BaseAddress!, "/fhir").ToString().TrimEnd('/');
        var existing = (await CreateAsync("Patient", Samples.Patient(family: "Pleinurl"))).GetProperty("id").GetString()!;
        foreach (var type in new[] { "batch", "transaction" })
        {
            var bundle = $$"""
                {
                  "resourceType": "Bundle", "type": "{{type}}",
                  "entry": [
                    { "resource": {{Samples.Patient(family: "Pleinurl")}}, "request": { "method": "POST", "url": "Patient" } },
                    { "request": { "method": "GET", "url": "Patient/{{existing}}" } }
                  ]
                }
                """;
            using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{type}: {(int)response.StatusCode} {body}");
            foreach (var entry in body.GetProperty("entry").EnumerateArray())
            {
                var resource = entry.GetProperty("resource");
                Assert.True(entry.TryGetProperty("fullUrl", out var fullUrl), $"{type}: an entry with a resource has no fullUrl: {entry}");
                Assert.Equal($"{serverBase}/Patient/{resource.GetProperty("id").GetString()}", fullUrl.GetString());
            }
        }
    }

    [Fact]
    public async Task A_search_in_a_batch_links_to_its_next_page_and_a_batch_follows_that_link()
    {
        for (var i = 0; i < 3; i++) await CreateAsync("Patient", Samples.Patient(family: "Paginelot", given: "G" + i));
        static string Batch(string url) => $$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ { "request": { "method": "GET", "url": "{{url}}" } } ] }""";
        async Task<JsonElement> SearchInBatchAsync(string url)
        {
            using var response = await Api.PostAsync("/fhir", FhirContent.Json(Batch(url)));
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
            var entry = body.GetProperty("entry")[0];
            Assert.True(entry.GetProperty("response").GetProperty("status").GetString()!.StartsWith("200", StringComparison.Ordinal), entry.ToString());
            return entry.GetProperty("resource");
        }
        static string? Next(JsonElement searchset) => searchset.TryGetProperty("link", out var links)
            ? links.EnumerateArray().Where(l => l.GetProperty("relation").GetString() == "next").Select(l => l.GetProperty("url").GetString()).FirstOrDefault()
            : null;

        // Two of three: the searchset must say there is more, as GET [base]/Patient does.
        var first = await SearchInBatchAsync("Patient?family=paginelot&_count=2");
        var found = Ids(first);
        Assert.Equal(2, found.Count);
        var next = Next(first);
        Assert.True(next is not null, "no next link: " + first);
        // The link works as a GET, and as a batch entry (relative to the base).
        var byGet = await SearchAsync(next![(next.IndexOf("/fhir/", StringComparison.Ordinal) + "/fhir/".Length)..]);
        var rest = Ids(byGet);
        Assert.Single(rest);
        var byBatch = await SearchInBatchAsync(next[(next.IndexOf("/fhir/", StringComparison.Ordinal) + "/fhir/".Length)..]);
        Assert.Equal(rest, Ids(byBatch));
        Assert.Null(Next(byBatch));
        Assert.Equal(3, found.Concat(rest).Distinct().Count());
    }

    [Fact]
    public async Task A_batch_entry_that_cannot_be_run_is_that_entrys_error_the_others_run()
    {
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "batch",
              "entry": [
                { "request": { "method": "GET", "url": "Foo/1" } },
                { "resource": {{Samples.Patient(family: "Voisin")}}, "request": { "method": "POST", "url": "Patient" } },
                { "request": { "method": "GET", "url": "Patient/x/$everything" } },
                { "request": { "method": "PATCH", "url": "Patient/x" } }
              ]
            }
            """;
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var statuses = body.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("response").GetProperty("status").GetString()!).ToList();
        Assert.Equal(4, statuses.Count);
        Assert.StartsWith("404", statuses[0]);
        Assert.StartsWith("201", statuses[1]);
        Assert.StartsWith("400", statuses[2]);
        Assert.StartsWith("400", statuses[3]);
        // A patch is sent alone: the entry says so.
        Assert.Contains("send it alone", body.GetProperty("entry")[3].GetProperty("response").GetProperty("outcome").ToString(), StringComparison.Ordinal);
        Assert.Single(Ids(await SearchAsync("Patient?family=voisin")));

        // The same entries in a transaction fail it whole, naming each, and write nothing.
        using var transaction = await Api.PostAsync("/fhir", FhirContent.Json(bundle.Replace("\"batch\"", "\"transaction\"", StringComparison.Ordinal)));
        var outcome = await transaction.Content.ReadAsStringAsync();
        Assert.True(transaction.StatusCode == HttpStatusCode.BadRequest, outcome);
        Assert.Contains("Bundle.entry[0]", outcome, StringComparison.Ordinal);
        Assert.Contains("Bundle.entry[3]", outcome, StringComparison.Ordinal);
        Assert.Single(Ids(await SearchAsync("Patient?family=voisin")));
    }

    [Fact]
    public async Task Dates_in_year_9999_and_year_1_are_stored_updated_and_searched_never_a_500()
    {
        var patientId = (await CreateAsync("Patient", Samples.Patient(family: "Borne", birthDate: "9999-12-31"))).GetProperty("id").GetString()!;
        var practitionerId = (await CreateAsync("Practitioner", Samples.Practitioner())).GetProperty("id").GetString()!;
        var late = (await CreateAsync("Observation", Samples.Observation($"Patient/{patientId}", effective: "9999-12-31"))).GetProperty("id").GetString()!;
        var early = (await CreateAsync("Observation", Samples.Observation($"Patient/{patientId}", effective: "0001-01-01"))).GetProperty("id").GetString()!;
        await CreateAsync("Encounter", Samples.Encounter(patientId, practitionerId, "9999-12"));
        using (var put = await Api.PutAsync($"/fhir/Patient/{patientId}", FhirContent.Json(Samples.Patient(family: "Borne", birthDate: "0001-01-01", id: patientId))))
        {
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }

        Assert.Equal([patientId], Ids(await SearchAsync("Patient?birthdate=0001-01-01")));
        foreach (var query in new[] { "birthdate=gt9999-12-31", "birthdate=sa9999-12-31", "birthdate=lt0001-01-01", "birthdate=eb0001-01-01", "_lastUpdated=gt9999-12-31" })
        {
            Assert.Empty(Ids(await SearchAsync("Patient?" + query)));
        }
        // Range searches on birth dates tile 1880 to this year (blind index); their far bounds must still answer.
        await SearchAsync("Patient?birthdate=le9999-12-31");
        await SearchAsync("Patient?birthdate=ge0001-01-01");
        Assert.Equal([late], Ids(await SearchAsync("Observation?date=9999-12-31")));
        Assert.Equal([late], Ids(await SearchAsync("Observation?date=gt9999-12-30")));
        Assert.Equal([early], Ids(await SearchAsync("Observation?date=lt0001-01-02")));
        Assert.Single(Ids(await SearchAsync("Encounter?date=9999-12")));
        using (var history = await Api.GetAsync("/fhir/Patient/_history?_since=9999-12-31T23:59:59Z")) Assert.Equal(HttpStatusCode.OK, history.StatusCode);

        var conditional = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient(family: "Conditionnel", nir: Samples.ValidNir("2850575123457"))) };
        conditional.Headers.TryAddWithoutValidation("If-None-Exist", "birthdate=gt9999-12-31");
        // Nothing matches, and a patient born in 1980 is not born after 9999 either: refused (it would be created unfindable by its
        // own criteria), the far bound answered all the same.
        using (var refused = await Api.SendAsync(conditional))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("birthdate", (await refused.BodyAsync()).GetProperty("issue")[0].GetProperty("expression")[0].GetString());
        }

        // A batch reports each entry's own status (it used to answer 500 after committing the patient).
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "batch",
              "entry": [
                { "resource": {{Samples.Patient(family: "Lot")}}, "request": { "method": "POST", "url": "Patient" } },
                { "resource": {{Samples.Observation($"Patient/{patientId}", effective: "9999-12-31")}}, "request": { "method": "POST", "url": "Observation" } }
              ]
            }
            """;
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("batch-response", body.GetProperty("type").GetString());
        Assert.All(body.GetProperty("entry").EnumerateArray(), e => Assert.StartsWith("201", e.GetProperty("response").GetProperty("status").GetString()));
    }

    [Fact]
    public async Task Every_dateTime_the_validator_accepts_is_found_by_date_search()
    {
        // Each used to be stored but not indexed, so date search, _sort and care relationships never saw it.
        var patientId = (await CreateAsync("Patient", Samples.Patient(family: "Horloge"))).GetProperty("id").GetString()!;
        var cases = new[]
        {
            (Effective: "2026-02-01T10:00:00.12345678Z", Search: "date=2026-02-01"),
            (Effective: "2016-12-31T23:59:60Z", Search: "date=2017-01-01"), // 00:59:59.999 on New Year's Day in Paris
            // Midnight in Paris on 1 January of year 1 (UTC+1 before 1945, on every machine), an hour before year 1 in UTC; and an
            // hour before it.
            (Effective: "0001-01-01T00:00:00+01:00", Search: "date=0001-01-01"),
            (Effective: "0001-01-01T00:00:00+02:00", Search: "date=lt0001-01-01"),
            (Effective: "9999-12-31T23:59:59-01:00", Search: "date=gt9999-12-31"),
        };
        foreach (var (effective, search) in cases)
        {
            var id = (await CreateAsync("Observation", Samples.Observation($"Patient/{patientId}", effective: effective))).GetProperty("id").GetString()!;
            Assert.Equal([id], Ids(await SearchAsync($"Observation?{search}")));
            Assert.Equal([id], Ids(await SearchAsync($"Observation?date={Uri.EscapeDataString(effective)}")));
        }

        Assert.Equal(cases.Length, Ids(await SearchAsync($"Observation?subject=Patient/{patientId}&_sort=date")).Count);
    }

    [Fact]
    public async Task Patient_everything_returns_the_patient_their_records_and_referenced_practitioners()
    {
        var practitioner = (await CreateAsync("Practitioner", Samples.Practitioner())).GetProperty("id").GetString()!;
        var patient = (await CreateAsync("Patient", Samples.Patient(gp: $"Practitioner/{practitioner}"))).GetProperty("id").GetString()!;
        await CreateAsync("Observation", Samples.Observation($"Patient/{patient}"));
        await CreateAsync("Appointment", Samples.Appointment($"Patient/{patient}", $"Practitioner/{practitioner}", "2026-12-01T09:00:00+01:00"));
        var someoneElse = (await CreateAsync("Patient", Samples.Patient(family: "Autre"))).GetProperty("id").GetString()!;
        await CreateAsync("Observation", Samples.Observation($"Patient/{someoneElse}"));
        using var response = await Api.GetAsync($"/fhir/Patient/{patient}/$everything");
        var bundle = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([patient], Ids(bundle, "Patient"));
        Assert.Single(Ids(bundle, "Observation"));
        Assert.Single(Ids(bundle, "Appointment"));
        Assert.Equal([practitioner], Ids(bundle, "Practitioner"));
    }

    [Fact]
    public async Task Patient_everything_honours_type_since_and_count_with_next_links_that_keep_them()
    {
        var practitioner = (await CreateAsync("Practitioner", Samples.Practitioner())).GetProperty("id").GetString()!;
        var patient = (await CreateAsync("Patient", Samples.Patient(gp: $"Practitioner/{practitioner}"))).GetProperty("id").GetString()!;
        var early = (await CreateAsync("Observation", Samples.Observation($"Patient/{patient}"))).GetProperty("id").GetString()!;
        var appointment = (await CreateAsync("Appointment", Samples.Appointment($"Patient/{patient}", $"Practitioner/{practitioner}", "2026-12-01T09:00:00+01:00")))
            .GetProperty("id").GetString()!;
        await Task.Delay(20);
        var since = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);
        await Task.Delay(20);
        var late = (await CreateAsync("Observation", Samples.Observation($"Patient/{patient}", loinc: "718-7"))).GetProperty("id").GetString()!;
        var everything = $"/fhir/Patient/{patient}/$everything";
        // The guard counts each $everything call (not each patient) towards its limit without a stated reason; this test makes many.
        Api.DefaultRequestHeaders.Add("X-Vauban-Reason", "checking the $everything parameters");

        var observations = await SearchAsync($"Patient/{patient}/$everything?_type=Observation");
        Assert.Equal(new[] { early, late }.Order(StringComparer.Ordinal), Ids(observations).Order(StringComparer.Ordinal));
        Assert.Equal(2, observations.GetProperty("total").GetInt32());
        var two = await SearchAsync($"Patient/{patient}/$everything?_type=Observation,Practitioner");
        Assert.Equal([practitioner], Ids(two, "Practitioner"));
        Assert.Equal(2, Ids(two, "Observation").Count);
        Assert.Empty(Ids(two, "Patient"));
        Assert.Empty(Ids(two, "Appointment"));

        Assert.Equal([late], Ids(await SearchAsync($"Patient/{patient}/$everything?_since={Uri.EscapeDataString(since)}")));

        // Paged: every resource once, two a page, the next links keeping _count (and _type).
        var seen = new List<string>();
        var sizes = new List<int>();
        for (string? next = everything + "?_count=2"; next is not null;)
        {
            using var response = await Api.GetAsync(next);
            var page = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, page.ToString());
            Assert.False(page.TryGetProperty("total", out _)); // a page reads only its own rows: no count of the whole record
            sizes.Add(Ids(page).Count);
            seen.AddRange(Ids(page));
            next = page.GetProperty("link").EnumerateArray().Where(l => l.GetProperty("relation").GetString() == "next")
                .Select(l => l.GetProperty("url").GetString()).FirstOrDefault();
            Assert.True(sizes.Count < 10, "too many pages");
        }
        Assert.Equal([2, 2, 1], sizes);
        Assert.Equal(new[] { patient, early, appointment, late, practitioner }.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        var typed = await SearchAsync($"Patient/{patient}/$everything?_type=Observation,Appointment&_count=1");
        var nextTyped = typed.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!;
        using (var second = await Api.GetAsync(nextTyped))
        {
            var page = await second.BodyAsync();
            Assert.Single(Ids(page));
        }

        // Without parameters, everything in one page (up to 10,000 resources), with its total.
        var whole = await SearchAsync($"Patient/{patient}/$everything");
        Assert.Equal(5, Ids(whole).Count);
        Assert.Equal(5, whole.GetProperty("total").GetInt32());
        // A page of one: the patient alone, then each record, then the practitioner, one page each.
        var ones = new List<string>();
        for (string? next = everything + "?_count=1"; next is not null;)
        {
            using var response = await Api.GetAsync(next);
            var page = await response.BodyAsync();
            Assert.Single(Ids(page));
            ones.AddRange(Ids(page));
            next = page.GetProperty("link").EnumerateArray().Where(l => l.GetProperty("relation").GetString() == "next")
                .Select(l => l.GetProperty("url").GetString()).FirstOrDefault();
            Assert.True(ones.Count < 10, "too many pages");
        }
        Assert.Equal(new[] { patient, early, appointment, late, practitioner }.Order(StringComparer.Ordinal), ones.Order(StringComparer.Ordinal));
        Assert.Equal(patient, ones[0]);
        Assert.Equal(practitioner, ones[^1]);

        // Invoked by POST (R4 operations), the same parameters in a Parameters resource, or none with an empty body.
        var parameters = $$"""
            { "resourceType": "Parameters", "parameter": [
              { "name": "_type", "valueCode": "Observation" }, { "name": "_since", "valueInstant": "{{since}}" }, { "name": "_count", "valueInteger": 5 } ] }
            """;
        using (var posted = await Api.PostAsync(everything, FhirContent.Json(parameters)))
        {
            var page = await posted.BodyAsync();
            Assert.True(posted.StatusCode == HttpStatusCode.OK, page.ToString());
            Assert.Equal([late], Ids(page));
        }
        using (var empty = await Api.PostAsync(everything, new ByteArrayContent([])))
        {
            Assert.Equal(5, Ids(await empty.BodyAsync()).Count);
        }
        foreach (var wrong in new[] { """{ "resourceType": "Patient" }""", """{ "resourceType": "Parameters", "parameter": [{ "name": "_type" }] }""",
                     """{ "resourceType": "Parameters", "parameter": [{ "name": "_count", "valueInteger": 1, "valueString": "1" }] }""",
                     """{ "resourceType": "Parameters", "parameter": [{ "name": "_since", "valueInstant": "hier" }] }""" })
        {
            using var refused = await Api.PostAsync(everything, FhirContent.Json(wrong));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("OperationOutcome", (await refused.BodyAsync()).GetProperty("resourceType").GetString());
        }
    }

    [Theory]
    [InlineData("_type=Spaceship", "Spaceship")]
    [InlineData("_type=Observation,AuditEvent", "AuditEvent")]
    [InlineData("_type=", "_type")]
    [InlineData("_since=yesterday", "_since must be an instant")]
    [InlineData("_since=2026-01-01T08:00:00", "_since must be an instant with its time zone")]
    [InlineData("_count=-1", "_count must be a non-negative integer")]
    [InlineData("_count=many", "_count must be a non-negative integer")]
    [InlineData("colour=blue", "Unknown parameter 'colour'")]
    [InlineData("start=2026-01-01", "not supported")]
    [InlineData("_page=forged", "paging link is invalid")]
    [InlineData("_count=1&_count=2", "_count is given twice")]
    public async Task Patient_everything_refuses_bad_or_unknown_parameters_with_400(string query, string mentions)
    {
        var patient = (await CreateAsync("Patient", Samples.Patient())).GetProperty("id").GetString()!;
        using var response = await Api.GetAsync($"/fhir/Patient/{patient}/$everything?{query}");
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
        Assert.Contains(mentions, body.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Patient_everything_under_lenient_handling_ignores_unknown_parameters_and_leaves_them_out_of_its_self_link()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient())).GetProperty("id").GetString()!;
        await CreateAsync("Observation", Samples.Observation($"Patient/{patient}"));
        var request = new HttpRequestMessage(HttpMethod.Get, $"/fhir/Patient/{patient}/$everything?colour=blue&_type=Patient");
        request.Headers.TryAddWithoutValidation("Prefer", "handling=lenient");
        using var response = await Api.SendAsync(request);
        var bundle = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([patient], Ids(bundle));
        var self = bundle.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "self").GetProperty("url").GetString()!;
        Assert.Contains($"/fhir/Patient/{patient}/$everything?_page=", self, StringComparison.Ordinal);
        // Followed strictly, it is the same page: _type=Patient kept, colour (which would be refused) left out.
        using var again = await Api.GetAsync(self);
        var repeated = await again.BodyAsync();
        Assert.True(again.StatusCode == HttpStatusCode.OK, repeated.ToString());
        Assert.Equal([patient], Ids(repeated));
    }

    [Fact]
    public async Task Patient_everything_with_count_0_is_the_total_alone_as_a_search_with_count_0_is()
    {
        var practitioner = (await CreateAsync("Practitioner", Samples.Practitioner())).GetProperty("id").GetString()!;
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Comptee"))).GetProperty("id").GetString()!;
        await CreateAsync("Observation", Samples.Observation($"Patient/{patient}"));
        await CreateAsync("Observation", Samples.Observation($"Patient/{patient}", loinc: "718-7"));
        await CreateAsync("Encounter", Samples.Encounter(patient, practitioner, "2026-03-01T09:00:00+01:00"));
        using (var whole = await Api.GetAsync($"/fhir/Patient/{patient}/$everything"))
        {
            Assert.Equal(5, Ids(await whole.BodyAsync()).Count); // the patient, two observations, the encounter, its practitioner
        }

        foreach (var (query, total) in new[] { ("_count=0", 5), ("_type=Observation&_count=0", 2), ("_type=Patient,Practitioner&_count=0", 2),
            ($"_count=0&_since={Uri.EscapeDataString("9999-12-31T23:59:59Z")}", 0) })
        {
            using var response = await Api.GetAsync($"/fhir/Patient/{patient}/$everything?{query}");
            var bundle = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{query}: {(int)response.StatusCode} {bundle}");
            Assert.Equal(total, bundle.GetProperty("total").GetInt32());
            Assert.False(bundle.TryGetProperty("entry", out _));
            Assert.DoesNotContain(bundle.GetProperty("link").EnumerateArray(), l => l.GetProperty("relation").GetString() == "next");
        }

        // Audited as a count of that patient's record, with no record returned.
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        var entries = await Server.Store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Patient = patient, Actions = [Vauban.Audit.AuditAction.Everything], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Equal(4, entries.Count(e => e.Detail.Note == "count only" && e.Detail.Records.SequenceEqual([$"Patient/{patient}"])));
    }

    [Fact]
    public async Task No_self_or_next_link_carries_a_search_value_and_each_serves_only_the_principal_it_was_handed_to()
    {
        var nir = Samples.ValidNir("1850344109555");
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Scellee", nir: nir, phone: "+33 6 11 22 33 44"))).GetProperty("id").GetString()!;
        await CreateAsync("Patient", Samples.Patient(family: "Scellee", given: "Marc"));
        string[] values = ["scellee", "0611223344", "11223344", nir, "1980-03-12"];
        static string Link(JsonElement bundle, string relation) => bundle.GetProperty("link").EnumerateArray()
            .Single(l => l.GetProperty("relation").GetString() == relation).GetProperty("url").GetString()!;
        var pages = new List<(string Self, List<string> Ids)>();
        var links = new List<string>();
        async Task<JsonElement> KeptAsync(HttpResponseMessage response)
        {
            var bundle = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {bundle}");
            pages.Add((Link(bundle, "self"), Ids(bundle)));
            links.AddRange(bundle.GetProperty("link").EnumerateArray().Select(l => l.GetProperty("url").GetString()!));
            return bundle;
        }

        // A GET search and its next page, a POST _search (used to keep the NIR out of URLs), a count.
        JsonElement first;
        using (var get = await Api.GetAsync("/fhir/Patient?family=scellee&birthdate=1980-03-12&_count=1")) first = await KeptAsync(get);
        using (var next = await Api.GetAsync(Link(first, "next"))) await KeptAsync(next);
        using (var post = await Api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent([new("identifier", nir), new("phone", "06 11 22 33 44")]))) await KeptAsync(post);
        using (var count = await Api.GetAsync("/fhir/Patient?family=scellee&_summary=count")) await KeptAsync(count);
        // $everything, history, and a search run in a batch.
        using (var everything = await Api.GetAsync($"/fhir/Patient/{id}/$everything?_type=Patient")) await KeptAsync(everything);
        using (var history = await Api.GetAsync($"/fhir/Patient/{id}/_history?_count=1")) await KeptAsync(history);
        var batch = $$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ { "request": { "method": "GET", "url": "Patient?family=scellee&phone=0611223344" } } ] }""";
        using (var response = await Api.PostAsync("/fhir", FhirContent.Json(batch)))
        {
            var searchset = (await response.BodyAsync()).GetProperty("entry")[0].GetProperty("resource");
            pages.Add((Link(searchset, "self"), Ids(searchset)));
            links.AddRange(searchset.GetProperty("link").EnumerateArray().Select(l => l.GetProperty("url").GetString()!));
        }

        Assert.Equal(8, links.Count); // a self link on each of the 7 pages, and the first search's next link
        Assert.All(links, link => Assert.Contains("?_page=", link, StringComparison.Ordinal));
        foreach (var value in values) Assert.All(links, link => Assert.DoesNotContain(value, link, StringComparison.OrdinalIgnoreCase));

        // Each self link gives its page again, to the client it was handed to; another client, of this establishment or another,
        // is refused it as it is a next link.
        using var colleague = await Server.ClientAsync(TenantName);
        using var stranger = await Server.ClientAsync(TenantName + "-z");
        foreach (var (self, ids) in pages)
        {
            using (var again = await Api.GetAsync(self))
            {
                var bundle = await again.BodyAsync();
                Assert.True(again.StatusCode == HttpStatusCode.OK, $"{self}: {(int)again.StatusCode} {bundle}");
                Assert.Equal(ids, Ids(bundle));
            }
            foreach (var other in new[] { colleague, stranger })
            {
                using var refused = await other.GetAsync(self);
                Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            }
        }
    }

    [Fact]
    public async Task Type_history_pages_through_every_version()
    {
        var id = (await CreateAsync("Organization", """{ "resourceType": "Organization", "name": "CHU de Nantes" }""")).GetProperty("id").GetString()!;
        using (await Api.PutAsync($"/fhir/Organization/{id}", FhirContent.Json($$"""{ "resourceType": "Organization", "id": "{{id}}", "name": "CHU Nantes" }"""))) { }
        await CreateAsync("Organization", """{ "resourceType": "Organization", "name": "Clinique Jules Verne" }""");
        using var response = await Api.GetAsync("/fhir/Organization/_history?_count=2");
        var first = await response.BodyAsync();
        Assert.Equal(2, first.GetProperty("entry").GetArrayLength());
        var next = first.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!;
        using var second = await Api.GetAsync(next);
        Assert.Equal(1, (await second.BodyAsync()).GetProperty("entry").GetArrayLength());
    }

    private async Task<List<JsonElement>> HistoryPagesAsync(string url)
    {
        var pages = new List<JsonElement>();
        for (string? next = url; next is not null && pages.Count < 20;)
        {
            using var response = await Api.GetAsync(next);
            var page = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{next}: {(int)response.StatusCode} {page}");
            Assert.Equal("history", page.GetProperty("type").GetString());
            pages.Add(page);
            next = page.GetProperty("link").EnumerateArray().Where(l => l.GetProperty("relation").GetString() == "next")
                .Select(l => l.GetProperty("url").GetString()).FirstOrDefault();
        }
        return pages;
    }

    private static int EntryCount(JsonElement bundle) => bundle.TryGetProperty("entry", out var entries) ? entries.GetArrayLength() : 0;

    [Fact]
    public async Task Instance_history_honours_count_with_next_links_that_keep_it()
    {
        var id = (await CreateAsync("Organization", """{ "resourceType": "Organization", "name": "Version 1" }""")).GetProperty("id").GetString()!;
        for (var v = 2; v <= 5; v++)
        {
            using var put = await Api.PutAsync($"/fhir/Organization/{id}", FhirContent.Json($$"""{ "resourceType": "Organization", "id": "{{id}}", "name": "Version {{v}}" }"""));
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }
        var pages = await HistoryPagesAsync($"/fhir/Organization/{id}/_history?_count=2");
        Assert.Equal([2, 2, 1], pages.Select(EntryCount));
        Assert.All(pages, p => Assert.Equal(5, p.GetProperty("total").GetInt32()));
        var versions = pages.SelectMany(p => p.GetProperty("entry").EnumerateArray())
            .Select(e => e.GetProperty("resource").GetProperty("meta").GetProperty("versionId").GetString()).ToList();
        Assert.Equal(["5", "4", "3", "2", "1"], versions);
        // Without _count, the default page size (50) holds them all.
        Assert.Equal([5], (await HistoryPagesAsync($"/fhir/Organization/{id}/_history")).Select(EntryCount));
    }

    [Fact]
    public async Task History_with_count_0_is_the_total_alone_as_a_search_with_count_0_is()
    {
        var id = (await CreateAsync("Organization", """{ "resourceType": "Organization", "name": "Version 1" }""")).GetProperty("id").GetString()!;
        using (var put = await Api.PutAsync($"/fhir/Organization/{id}", FhirContent.Json($$"""{ "resourceType": "Organization", "id": "{{id}}", "name": "Version 2" }"""))) { }
        await CreateAsync("Organization", """{ "resourceType": "Organization", "name": "Another" }""");

        // A search's _count=0 (FHIR R4: the same as _summary=count), for comparison.
        var search = await SearchAsync("Organization?_count=0");
        Assert.Equal(2, search.GetProperty("total").GetInt32());
        Assert.False(search.TryGetProperty("entry", out _));

        foreach (var (url, total) in new[] { ($"/fhir/Organization/{id}/_history?_count=0", 2), ("/fhir/Organization/_history?_count=0", 3) })
        {
            using var response = await Api.GetAsync(url);
            var bundle = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url}: {(int)response.StatusCode} {bundle}");
            Assert.Equal("history", bundle.GetProperty("type").GetString());
            Assert.Equal(total, bundle.GetProperty("total").GetInt32());
            Assert.False(bundle.TryGetProperty("entry", out _));
            Assert.DoesNotContain(bundle.GetProperty("link").EnumerateArray(), l => l.GetProperty("relation").GetString() == "next");
        }
        // With _since, the versions changed since then.
        using (var since = await Api.GetAsync($"/fhir/Organization/_history?_count=0&_since={Uri.EscapeDataString("9999-12-31T23:59:59Z")}"))
        {
            Assert.Equal(0, (await since.BodyAsync()).GetProperty("total").GetInt32());
        }
        using (var negative = await Api.GetAsync($"/fhir/Organization/{id}/_history?_count=-1"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, negative.StatusCode);
            Assert.Contains("_count must be a non-negative integer", await negative.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Type_history_next_links_keep_count_and_since()
    {
        await CreateAsync("Organization", """{ "resourceType": "Organization", "name": "Avant" }""");
        await Task.Delay(20);
        var since = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);
        await Task.Delay(20);
        for (var i = 0; i < 5; i++) await CreateAsync("Organization", $$"""{ "resourceType": "Organization", "name": "Après {{i}}" }""");
        var pages = await HistoryPagesAsync($"/fhir/Organization/_history?_count=2&_since={Uri.EscapeDataString(since)}");
        Assert.Equal([2, 2, 1], pages.Select(EntryCount));
        var names = pages.SelectMany(p => p.GetProperty("entry").EnumerateArray()).Select(e => e.GetProperty("resource").GetProperty("name").GetString()!).ToList();
        Assert.DoesNotContain("Avant", names);
        Assert.Equal(5, names.Distinct().Count());

        // A moment without its time zone is not a moment: in Paris it is one or two hours from UTC.
        foreach (var unzoned in new[] { "2026-01-01", "2026-01-01T08:00:00", "2026-01-01T08:00Z" })
        {
            using var refused = await Api.GetAsync($"/fhir/Organization/_history?_since={Uri.EscapeDataString(unzoned)}");
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("instant with its time zone", (await refused.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        }
        using (var offset = await Api.GetAsync($"/fhir/Organization/_history?_since={Uri.EscapeDataString("2026-01-01T08:00:00+01:00")}")) Assert.Equal(HttpStatusCode.OK, offset.StatusCode);
    }

    /// <summary>Each entry of a history as (request method, request url, response status), newest first.</summary>
    private async Task<List<string>> HistoryRequestsAsync(string url)
    {
        var pages = await HistoryPagesAsync(url);
        return pages.SelectMany(p => p.TryGetProperty("entry", out var e) ? e.EnumerateArray().ToList() : [])
            .Select(e => $"{e.GetProperty("request").GetProperty("method").GetString()} {e.GetProperty("request").GetProperty("url").GetString()} {e.GetProperty("response").GetProperty("status").GetString()}")
            .ToList();
    }

    [Fact]
    public async Task History_shows_how_each_version_was_written_so_that_a_client_replaying_it_keeps_the_ids()
    {
        static string Organization(string id, string name) => $$"""{ "resourceType": "Organization", "id": "{{id}}", "name": "{{name}}" }""";
        // POST, then an update.
        var posted = (await CreateAsync("Organization", """{ "resourceType": "Organization", "name": "Posted" }""")).GetProperty("id").GetString()!;
        using (var put = await Api.PutAsync($"/fhir/Organization/{posted}", FhirContent.Json(Organization(posted, "Posted, renamed")))) Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal([$"PUT Organization/{posted} 200", "POST Organization 201"], await HistoryRequestsAsync($"/fhir/Organization/{posted}/_history"));

        // Created by PUT (update as create), updated, deleted, and brought back by PUT (201, as answered).
        const string chosen = "org-put-created";
        using (var put = await Api.PutAsync($"/fhir/Organization/{chosen}", FhirContent.Json(Organization(chosen, "One")))) Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        using (var put = await Api.PutAsync($"/fhir/Organization/{chosen}", FhirContent.Json(Organization(chosen, "Two")))) Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        using (var delete = await Api.DeleteAsync($"/fhir/Organization/{chosen}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using (var put = await Api.PutAsync($"/fhir/Organization/{chosen}", FhirContent.Json(Organization(chosen, "Back")))) Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal([$"PUT Organization/{chosen} 201", $"DELETE Organization/{chosen} 204", $"PUT Organization/{chosen} 200", $"PUT Organization/{chosen} 201"],
            await HistoryRequestsAsync($"/fhir/Organization/{chosen}/_history"));

        // A transaction's POST and its PUT of a new id.
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "urn:uuid:9b2e1d4c-0000-4000-8000-000000000001", "resource": { "resourceType": "Organization", "name": "In a transaction" },
                "request": { "method": "POST", "url": "Organization" } },
              { "resource": {{Organization("org-tx-put", "Put in a transaction")}}, "request": { "method": "PUT", "url": "Organization/org-tx-put" } } ] }
            """;
        string transactionPosted;
        using (var transaction = await Api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            var answer = await transaction.BodyAsync();
            Assert.True(transaction.StatusCode == HttpStatusCode.OK, answer.ToString());
            transactionPosted = answer.GetProperty("entry")[0].GetProperty("response").GetProperty("location").GetString()!.Split('/')[^3];
        }
        Assert.Equal(["POST Organization 201"], await HistoryRequestsAsync($"/fhir/Organization/{transactionPosted}/_history"));
        Assert.Equal(["PUT Organization/org-tx-put 201"], await HistoryRequestsAsync("/fhir/Organization/org-tx-put/_history"));

        // A load keeps the ids it is given: PUT, created; the same id loaded again is an update.
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        var loader = Vauban.Access.AccessContext.Operator(tenant, "test");
        await Server.Store.Records.ImportAsync(loader, [Samples.Import("Organization", "org-imported", Organization("org-imported", "Loaded"))], null, CancellationToken.None);
        await Server.Store.Records.ImportAsync(loader, [Samples.Import("Organization", "org-imported", Organization("org-imported", "Loaded again"))], null, CancellationToken.None);
        Assert.Equal(["PUT Organization/org-imported 200", "PUT Organization/org-imported 201"], await HistoryRequestsAsync("/fhir/Organization/org-imported/_history"));

        // The type's history says the same of each version, across pages.
        var all = await HistoryRequestsAsync("/fhir/Organization/_history?_count=3");
        Assert.Equal(4, all.Count(r => r.StartsWith($"PUT Organization/{chosen} ", StringComparison.Ordinal) || r.StartsWith($"DELETE Organization/{chosen} ", StringComparison.Ordinal)));
        Assert.Contains($"PUT Organization/{chosen} 201", all);
        Assert.Contains($"DELETE Organization/{chosen} 204", all);
        Assert.Contains("PUT Organization/org-tx-put 201", all);
        Assert.Contains("PUT Organization/org-imported 201", all);
        Assert.Equal(2, all.Count(r => r == "POST Organization 201"));

        // Versions stored before how they were made was recorded (schema step 13 leaves them NULL) are shown as history showed them.
        await using (var database = Vauban.Storage.StoreDatabase.Open(Server.Db))
        await using (var connection = await database.OpenAsync(CancellationToken.None))
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "UPDATE resources SET made = NULL; UPDATE resource_history SET made = NULL;";
            await command.ExecuteNonQueryAsync();
        }
        Assert.Equal([$"PUT Organization/{chosen} 200", $"DELETE Organization/{chosen} 204", $"PUT Organization/{chosen} 200", "POST Organization 201"],
            await HistoryRequestsAsync($"/fhir/Organization/{chosen}/_history"));
    }

    /// <summary>Patients named "Approchee" born 101 and 100 days before, on, and 100 and 101 days after a day 1,000 days ago, one
    /// born that day's year (year precision), one with no birth date; by id, their label ("-101" … "+101", "year", "none").</summary>
    private async Task<(DateOnly Searched, Dictionary<string, string> Labels)> PatientsAroundADayAsync()
    {
        var searched = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-1000);
        var labels = new Dictionary<string, string>();
        foreach (var (label, offset) in new (string, int?)[] { ("-101", -101), ("-100", -100), ("0", 0), ("+100", 100), ("+101", 101), ("year", 0), ("none", null) })
        {
            var birth = offset is { } days ? searched.AddDays(days).ToString(label == "year" ? "yyyy" : "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture) : "";
            var json = Samples.Patient(family: "Approchee", birthDate: birth);
            if (offset is null) json = json.Replace("\"birthDate\": \"\",", "", StringComparison.Ordinal);
            labels[(await CreateAsync("Patient", json)).GetProperty("id").GetString()!] = label;
        }
        return (searched, labels);
    }

    private async Task<string> LabelsFoundAsync(Dictionary<string, string> labels, string query) =>
        string.Join(' ', Ids(await SearchAsync($"Patient?family=approchee&{query}&_count=50")).Select(id => labels[id]).Order(StringComparer.Ordinal));

    private static string Sorted(string labels) => string.Join(' ', labels.Split(' ').Order(StringComparer.Ordinal));

    private static string Day(DateOnly date, int offset = 0) => date.AddDays(offset).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_birth_date_searched_with_ne_matches_only_patients_that_have_a_birth_date()
    {
        var (searched, labels) = await PatientsAroundADayAsync();
        // FHIR R4 search: a parameter matches only resources that have a value for it; ne those whose birth date is not that day.
        Assert.Equal(Sorted("-101 -100 +100 +101 year"), await LabelsFoundAsync(labels, $"birthdate=ne{Day(searched)}"));
        Assert.Equal(Sorted("-100 0 +100 year"), await LabelsFoundAsync(labels, $"birthdate=ne{Day(searched, -101)}&birthdate=ne{Day(searched, 101)}"));

        // Two ne values of one parameter are alternatives, which every birth date meets: refused rather than read as "neither".
        using var both = await Api.GetAsync($"/fhir/Patient?birthdate=ne{Day(searched, -101)},ne{Day(searched, 101)}");
        Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
        Assert.Contains("takes one ne value", await both.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_birth_date_searched_with_ne_holds_partial_and_early_dates_to_FHIR_ranges()
    {
        // FHIR R4 search: ne matches when the searched range does not fully contain the birth date's range. A year-only or
        // month-only birth date is the whole year or month; a date before 1880 (a data-entry slip, kept as written) is a date too.
        var labels = new Dictionary<string, string>();
        foreach (var (label, birth) in new[] { ("1875", "1875-03-02"), ("1880", "1880"), ("1880-05", "1880-05"), ("1880-05-17", "1880-05-17"), ("1980", "1980-06-12") })
        {
            labels[(await CreateAsync("Patient", Samples.Patient(family: "Approchee", birthDate: birth))).GetProperty("id").GetString()!] = label;
        }
        var none = Samples.Patient(family: "Approchee").Replace("\"birthDate\": \"1980-03-12\",", "", StringComparison.Ordinal);
        labels[(await CreateAsync("Patient", none)).GetProperty("id").GetString()!] = "none";

        Assert.Equal(Sorted("1875 1980"), await LabelsFoundAsync(labels, "birthdate=ne1880"));
        Assert.Equal(Sorted("1875 1880 1980"), await LabelsFoundAsync(labels, "birthdate=ne1880-05"));
        Assert.Equal(Sorted("1875 1880 1880-05 1980"), await LabelsFoundAsync(labels, "birthdate=ne1880-05-17"));
        Assert.Equal(Sorted("1880 1880-05 1880-05-17 1980"), await LabelsFoundAsync(labels, "birthdate=ne1875"));
        // eq, for comparison: the searched range contains the birth date's.
        Assert.Equal(Sorted("1880 1880-05 1880-05-17"), await LabelsFoundAsync(labels, "birthdate=1880"));
    }

    [Fact]
    public async Task A_birth_date_searched_approximately_is_a_tenth_of_its_distance_from_today_either_side()
    {
        // FHIR R4 search, "ap": 10 % of the gap between now and the date. 1,000 days ago: 100 days either side.
        var (searched, labels) = await PatientsAroundADayAsync();
        Assert.Equal(Sorted("-100 0 +100 year"), await LabelsFoundAsync(labels, $"birthdate=ap{Day(searched)}"));

        // The CapabilityStatement says how wide ap is.
        using var metadata = await Server.Http.GetAsync("/fhir/metadata");
        var birthdate = (await metadata.BodyAsync()).GetProperty("rest")[0].GetProperty("resource").EnumerateArray()
            .Single(r => r.GetProperty("type").GetString() == "Patient").GetProperty("searchParam").EnumerateArray()
            .Single(p => p.GetProperty("name").GetString() == "birthdate");
        Assert.Contains("ap: within a tenth of the time between the date and today", birthdate.GetProperty("documentation").GetString()!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_date_of_care_searched_approximately_is_a_tenth_of_its_distance_from_today_either_side_as_a_birth_date_is()
    {
        // The same rule as birthdate's ap (FHIR R4 search, "ap"): 1,000 days ago, 100 days either side; it was one day.
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Soins"))).GetProperty("id").GetString()!;
        var searched = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-1000);
        var labels = new Dictionary<string, string>();
        foreach (var offset in new[] { -101, -100, -2, 0, 2, 100, 101 })
        {
            var json = Samples.Observation($"Patient/{patient}", effective: Day(searched, offset) + "T12:00:00Z");
            labels[(await CreateAsync("Observation", json)).GetProperty("id").GetString()!] = offset.ToString("+0;-0;0", System.Globalization.CultureInfo.InvariantCulture);
        }
        var found = Ids(await SearchAsync($"Observation?subject=Patient/{patient}&date=ap{Day(searched)}&_count=50")).Select(id => labels[id]);
        Assert.Equal(Sorted("-100 -2 0 +2 +100"), string.Join(' ', found.Order(StringComparer.Ordinal)));

        // The CapabilityStatement says so for dates of care and _lastUpdated, as for birthdate.
        using var metadata = await Server.Http.GetAsync("/fhir/metadata");
        var observation = (await metadata.BodyAsync()).GetProperty("rest")[0].GetProperty("resource").EnumerateArray()
            .Single(r => r.GetProperty("type").GetString() == "Observation").GetProperty("searchParam").EnumerateArray().ToList();
        foreach (var name in new[] { "date", "_lastUpdated" })
        {
            var documentation = observation.Single(p => p.GetProperty("name").GetString() == name).GetProperty("documentation").GetString()!;
            Assert.Contains("ap: within a tenth of the time between the date and today", documentation, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Metadata_is_a_CapabilityStatement_listing_the_supported_types_and_search_parameters()
    {
        using var response = await Server.Http.GetAsync("/fhir/metadata");
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("CapabilityStatement", body.GetProperty("resourceType").GetString());
        // The limits the README says it states: string search on the first 12 letters or digits, no :contains, the sort keys.
        Assert.Contains("first 12 letters or digits", body.GetProperty("rest")[0].GetProperty("documentation").GetString(), StringComparison.Ordinal);
        var practitionerFamily = body.GetProperty("rest")[0].GetProperty("resource").EnumerateArray().Single(r => r.GetProperty("type").GetString() == "Practitioner")
            .GetProperty("searchParam").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "family");
        Assert.Contains("no :contains", practitionerFamily.GetProperty("documentation").GetString(), StringComparison.Ordinal);
        Assert.Equal("4.0.1", body.GetProperty("fhirVersion").GetString());
        var resources = body.GetProperty("rest")[0].GetProperty("resource").EnumerateArray().ToList();
        Assert.Equal(14, resources.Count); // the 13 record types and the audit log's AuditEvent view
        var audit = resources.Single(r => r.GetProperty("type").GetString() == "AuditEvent");
        Assert.Equal(["read", "vread", "search-type"], audit.GetProperty("interaction").EnumerateArray().Select(i => i.GetProperty("code").GetString()!).ToArray());
        var patient = resources.Single(r => r.GetProperty("type").GetString() == "Patient");
        var parameters = patient.GetProperty("searchParam").EnumerateArray().Select(p => p.GetProperty("name").GetString()).ToList();
        Assert.Contains("birthdate", parameters);
        Assert.Contains("general-practitioner", parameters);
        var everything = patient.GetProperty("operation").EnumerateArray().Single(o => o.GetProperty("name").GetString() == "everything");
        Assert.Contains("_type", everything.GetProperty("documentation").GetString()!, StringComparison.Ordinal);
        // What a transaction does with its searches is said where an integrator looks: run after its writes, seeing them, a first page.
        var transaction = body.GetProperty("rest")[0].GetProperty("interaction").EnumerateArray().Single(i => i.GetProperty("code").GetString() == "transaction");
        var documentation = transaction.GetProperty("documentation").GetString()!;
        Assert.Contains("searches (GET [type]?…, GET [type])", documentation, StringComparison.Ordinal);
        Assert.Contains("(DELETE, POST, PUT, then GET): a read or search sees the transaction's own writes", documentation, StringComparison.Ordinal);
        Assert.Contains("_page inside a transaction is refused", documentation, StringComparison.Ordinal);
        Assert.DoesNotContain("inside a transaction is refused (400): send it in a batch", documentation, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metadata_offers_each_type_only_the_includes_that_can_match_it_and_each_one_offered_answers()
    {
        using var response = await Server.Http.GetAsync("/fhir/metadata");
        var resources = (await response.BodyAsync()).GetProperty("rest")[0].GetProperty("resource").EnumerateArray().ToList();
        List<string> Listed(string type, string property) =>
            resources.Single(r => r.GetProperty("type").GetString() == type).TryGetProperty(property, out var list)
                ? list.EnumerateArray().Select(v => v.GetString()!).ToList() : [];

        // Observation.subject may point to a Patient, Group, Device or Location: of those, only Patient is kept here.
        Assert.Contains("Observation:subject", Listed("Patient", "searchRevInclude"));
        Assert.DoesNotContain("Observation:subject", Listed("Practitioner", "searchRevInclude"));
        Assert.DoesNotContain("Encounter:subject", Listed("Organization", "searchRevInclude"));
        Assert.Contains("Observation:performer", Listed("Practitioner", "searchRevInclude"));
        Assert.Contains("DocumentReference:subject", Listed("Practitioner", "searchRevInclude"));
        foreach (var type in resources.Select(r => r.GetProperty("type").GetString()!).Where(t => t != "AuditEvent"))
        {
            foreach (var (property, parameter) in new[] { ("searchInclude", "_include"), ("searchRevInclude", "_revinclude") })
            {
                foreach (var value in Listed(type, property))
                {
                    using var search = await Api.GetAsync($"/fhir/{type}?{parameter}={value}");
                    Assert.True(search.StatusCode == HttpStatusCode.OK, $"{type}?{parameter}={value}: {(int)search.StatusCode} {await search.Content.ReadAsStringAsync()}");
                }
            }
        }

        // A reference search names a type its parameter can match, or is told which it can.
        using var wrongType = await Api.GetAsync("/fhir/Observation?subject=Practitioner/abc");
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.StatusCode);
        Assert.Contains("Patient", (await wrongType.BodyAsync()).GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metadata_has_no_empty_array_which_FHIR_JSON_forbids()
    {
        using var response = await Server.Http.GetAsync("/fhir/metadata");
        var empty = new List<string>();
        Walk(await response.BodyAsync(), "CapabilityStatement");
        Assert.Empty(empty);

        void Walk(JsonElement element, string path)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject()) Walk(property.Value, $"{path}.{property.Name}");
                    break;
                case JsonValueKind.Array:
                    if (element.GetArrayLength() == 0) empty.Add(path);
                    var i = 0;
                    foreach (var item in element.EnumerateArray()) Walk(item, $"{path}[{i++}]");
                    break;
            }
        }
    }

    [Fact]
    public async Task A_record_naming_a_patient_that_does_not_exist_is_refused_with_422_and_cannot_be_adopted_by_creating_that_patient_later()
    {
        // The attack: records planted under an id no patient has are read as hers by whoever later creates that patient.
        const string planted = "planted-patient-1";
        static string WithId(string json, string id)
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
            node["id"] = id;
            return node.ToJsonString();
        }
        static async Task RefusedAsync(HttpResponseMessage response, string patient, string? entry = null, string element = "Observation.subject", string? expression = null)
        {
            var body = await response.BodyAsync();
            Assert.True((int)response.StatusCode == 422, $"{(int)response.StatusCode} {body}");
            var issue = body.GetProperty("issue")[0];
            Assert.Equal("not-found", issue.GetProperty("code").GetString());
            Assert.Equal(expression ?? element, issue.GetProperty("expression")[0].GetString());
            var diagnostics = issue.GetProperty("diagnostics").GetString()!;
            Assert.Contains($"{element} names Patient/{patient}, which ", diagnostics, StringComparison.Ordinal);
            if (entry is not null) Assert.StartsWith(entry, diagnostics, StringComparison.Ordinal);
        }
        var plantedObservation = Samples.Observation($"Patient/{planted}");
        using (var post = await Api.PostAsync("/fhir/Observation", FhirContent.Json(plantedObservation))) await RefusedAsync(post, planted);
        using (var put = await Api.PutAsync("/fhir/Observation/planted-obs", FhirContent.Json(WithId(plantedObservation, "planted-obs")))) await RefusedAsync(put, planted);
        var real = (await CreateAsync("Patient", Samples.Patient(family: "Réel"))).GetProperty("id").GetString()!;
        using (var appointment = await Api.PostAsync("/fhir/Appointment", FhirContent.Json(Samples.Appointment($"Patient/{real}", $"Patient/{planted}", "2026-03-02T10:00:00+01:00"))))
        {
            await RefusedAsync(appointment, planted, element: "Appointment.participant.actor");
        }
        using (var transaction = await Api.PostAsync("/fhir", FhirContent.Json($$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Observation($"Patient/{real}")}}, "request": { "method": "POST", "url": "Observation" } },
              { "resource": {{plantedObservation}}, "request": { "method": "POST", "url": "Observation" } } ] }
            """)))
        {
            await RefusedAsync(transaction, planted, "Bundle.entry[1] (POST Observation): ", expression: "Bundle.entry[1].resource.subject");
        }
        using (var batch = await Api.PostAsync("/fhir", FhirContent.Json($$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [ { "resource": {{plantedObservation}}, "request": { "method": "POST", "url": "Observation" } } ] }
            """)))
        {
            var response = (await batch.BodyAsync()).GetProperty("entry")[0].GetProperty("response");
            Assert.Equal("422", response.GetProperty("status").GetString());
            Assert.Equal("Bundle.entry[0].resource.subject", response.GetProperty("outcome").GetProperty("issue")[0].GetProperty("expression")[0].GetString());
        }
        // A deleted patient no longer takes records.
        var gone = (await CreateAsync("Patient", Samples.Patient(family: "Parti"))).GetProperty("id").GetString()!;
        using (var delete = await Api.DeleteAsync($"/fhir/Patient/{gone}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using (var late = await Api.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{gone}"))))
        {
            await RefusedAsync(late, gone);
        }

        // The patient created later, by update as create, has no record but those written for her since.
        using (var created = await Api.PutAsync($"/fhir/Patient/{planted}", FhirContent.Json(Samples.Patient(family: "Adoptée", id: planted))))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        Assert.Empty(Ids(await SearchAsync($"Observation?subject=Patient/{planted}")));
        Assert.Empty(Ids(await SearchAsync($"Appointment?actor=Patient/{planted}")));
        // The refused transaction wrote nothing, its good entry included.
        Assert.Equal(0, (await SearchAsync($"Observation?subject=Patient/{real}&_total=accurate")).GetProperty("total").GetInt32());

        // A patient the same bundle creates counts: by urn:uuid, or by a PUT of its id (run after the POSTs in a transaction).
        using (var transaction = await Api.PostAsync("/fhir", FhirContent.Json($$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Observation("urn:uuid:6f1c0d2e-0000-4000-8000-000000000001")}}, "request": { "method": "POST", "url": "Observation" } },
              { "fullUrl": "urn:uuid:6f1c0d2e-0000-4000-8000-000000000001", "resource": {{Samples.Patient(family: "Nouvelle")}}, "request": { "method": "POST", "url": "Patient" } },
              { "resource": {{Samples.Observation("Patient/put-in-bundle")}}, "request": { "method": "POST", "url": "Observation" } },
              { "resource": {{Samples.Patient(family: "Posée", id: "put-in-bundle")}}, "request": { "method": "PUT", "url": "Patient/put-in-bundle" } } ] }
            """)))
        {
            Assert.True(transaction.StatusCode == HttpStatusCode.OK, await transaction.Content.ReadAsStringAsync());
        }
        Assert.Single(Ids(await SearchAsync("Observation?subject=Patient/put-in-bundle")));
        using (var batch = await Api.PostAsync("/fhir", FhirContent.Json($$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              { "resource": {{Samples.Patient(family: "Lot", id: "batch-patient")}}, "request": { "method": "PUT", "url": "Patient/batch-patient" } },
              { "resource": {{Samples.Observation("Patient/batch-patient")}}, "request": { "method": "POST", "url": "Observation" } } ] }
            """)))
        {
            var entries = (await batch.BodyAsync()).GetProperty("entry");
            Assert.Equal("201 Created", entries[0].GetProperty("response").GetProperty("status").GetString());
            Assert.Equal("201 Created", entries[1].GetProperty("response").GetProperty("status").GetString());
        }
    }

    [Fact]
    public async Task A_patient_still_named_by_records_is_not_deleted_409_until_they_are_deleted_or_refiled_in_the_same_transaction_too()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Gardée"))).GetProperty("id").GetString()!;
        var other = (await CreateAsync("Patient", Samples.Patient(family: "Autre"))).GetProperty("id").GetString()!;
        var practitioner = (await CreateAsync("Practitioner", Samples.Practitioner())).GetProperty("id").GetString()!;
        var observation = (await CreateAsync("Observation", Samples.Observation($"Patient/{patient}"))).GetProperty("id").GetString()!;
        // An appointment of the other patient's that names her as a participant names her too.
        var appointment = (await CreateAsync("Appointment", Samples.Appointment($"Patient/{other}", $"Patient/{patient}", "2026-03-02T10:00:00+01:00"))).GetProperty("id").GetString()!;

        async Task RefusedAsync(HttpResponseMessage response, int named, string? entry = null)
        {
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode} {body}");
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            var issue = body.GetProperty("issue")[0];
            Assert.Equal("conflict", issue.GetProperty("code").GetString());
            var diagnostics = issue.GetProperty("diagnostics").GetString()!;
            Assert.Contains($"Patient/{patient} is still named by {named} record", diagnostics, StringComparison.Ordinal);
            if (entry is not null) Assert.StartsWith(entry, diagnostics, StringComparison.Ordinal);
        }
        async Task StandsAsync()
        {
            using var read = await Api.GetAsync($"/fhir/Patient/{patient}");
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("\"1\"", read.Headers.ETag!.Tag);
        }

        using (var delete = await Api.DeleteAsync($"/fhir/Patient/{patient}")) await RefusedAsync(delete, 2);
        await StandsAsync();
        // In a transaction that deletes one of the two records: still refused, and nothing of it is done.
        using (var transaction = await Api.PostAsync("/fhir", FhirContent.Json($$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "request": { "method": "DELETE", "url": "Patient/{{patient}}" } },
              { "request": { "method": "DELETE", "url": "Observation/{{observation}}" } } ] }
            """)))
        {
            await RefusedAsync(transaction, 1, "Bundle.entry[0] (DELETE Patient): ");
        }
        await StandsAsync();
        using (var read = await Api.GetAsync($"/fhir/Observation/{observation}")) Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        // In a batch, the entry is refused alone.
        using (var batch = await Api.PostAsync("/fhir", FhirContent.Json($$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [ { "request": { "method": "DELETE", "url": "Patient/{{patient}}" } } ] }
            """)))
        {
            Assert.Equal("409", (await batch.BodyAsync()).GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString());
        }
        await StandsAsync();

        // The refusals are on the audit chain, as failed deletes of her record.
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        await Server.Store.Audit.CatchUpAsync();
        var entries = await Server.Store.AuditLog.SearchAsync(Vauban.Access.AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Patient = patient, Actions = [Vauban.Audit.AuditAction.Delete], Count = 100 }, CancellationToken.None) ?? [];
        Assert.Equal(3, entries.Count(e => e.Outcome != Vauban.Audit.AuditOutcome.Success && e.Detail.Note!.StartsWith("refused: still named by", StringComparison.Ordinal)));
        Assert.DoesNotContain(entries, e => e.Outcome == Vauban.Audit.AuditOutcome.Success);

        // Deleting the observation and moving the appointment to another patient in the same transaction as her delete: done.
        var moved = System.Text.Json.Nodes.JsonNode.Parse(Samples.Appointment($"Patient/{other}", $"Practitioner/{practitioner}", "2026-03-02T10:00:00+01:00"))!.AsObject();
        moved["id"] = appointment;
        using (var transaction = await Api.PostAsync("/fhir", FhirContent.Json($$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "request": { "method": "DELETE", "url": "Patient/{{patient}}" } },
              { "request": { "method": "DELETE", "url": "Observation/{{observation}}" } },
              { "resource": {{moved.ToJsonString()}}, "request": { "method": "PUT", "url": "Appointment/{{appointment}}" } } ] }
            """)))
        {
            Assert.True(transaction.StatusCode == HttpStatusCode.OK, await transaction.Content.ReadAsStringAsync());
        }
        using (var gone = await Api.GetAsync($"/fhir/Patient/{patient}")) Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
        // A patient no record names is deleted at once, and deleting her again is the idempotent 204.
        var alone = (await CreateAsync("Patient", Samples.Patient(family: "Seule"))).GetProperty("id").GetString()!;
        using (var delete = await Api.DeleteAsync($"/fhir/Patient/{alone}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using (var delete = await Api.DeleteAsync($"/fhir/Patient/{patient}")) Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
    }
}

public sealed class FhirApiTests_Sqlite(FhirServerFixture_Sqlite shared) : FhirApiTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class FhirApiTests_Postgres(FhirServerFixture_Postgres shared) : FhirApiTests(shared), IClassFixture<FhirServerFixture_Postgres>;
