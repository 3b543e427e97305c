// Conditional update and delete (PUT and DELETE [base]/[type]?criteria, FHIR R4 http.html) as an integrating system relies
// on them: an interface engine that knows a patient by identifier, never by the id this server gave. Alone, in batches and
// in transactions, on SQLite and PostgreSQL (the two derived classes at the end); the races are in ConcurrentWriteTests.
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class ConditionalWriteTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    private sealed record Answer(HttpStatusCode Status, JsonElement? Body, string? ETag, string? Location, string Text);

    private async Task<Answer> SendAsync(HttpMethod method, string url, string? body = null, HttpClient? client = null, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is not null) request.Content = FhirContent.Json(body);
        foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
        using var response = await (client ?? Api).SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return new Answer(response.StatusCode, text.Length == 0 ? null : JsonDocument.Parse(text).RootElement.Clone(), response.Headers.ETag?.ToString(),
            response.Headers.Location?.ToString(), text);
    }

    private Task<Answer> PutAsync(string criteria, string body, params (string, string)[] headers) => SendAsync(HttpMethod.Put, "/fhir/Patient?" + criteria, body, null, headers);

    private static string ByNir(string nir) => $"identifier={Samples.InsNir}|{nir}";

    private async Task<string> CreateAsync(string json, HttpClient? client = null)
    {
        var type = JsonDocument.Parse(json).RootElement.GetProperty("resourceType").GetString();
        var created = await SendAsync(HttpMethod.Post, $"/fhir/{type}", json, client);
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        return created.Body!.Value.GetProperty("id").GetString()!;
    }

    private async Task<List<JsonElement>> FindAsync(string query, HttpClient? client = null)
    {
        var found = await SendAsync(HttpMethod.Get, "/fhir/" + query, null, client);
        Assert.True(found.Status == HttpStatusCode.OK, found.Text);
        return found.Body!.Value.TryGetProperty("entry", out var entries) ? entries.EnumerateArray().Select(e => e.GetProperty("resource")).ToList() : [];
    }

    private async Task<JsonElement> ReadAsync(string reference, HttpClient? client = null)
    {
        var read = await SendAsync(HttpMethod.Get, "/fhir/" + reference, null, client);
        Assert.True(read.Status == HttpStatusCode.OK, $"{reference}: {read.Text}");
        return read.Body!.Value;
    }

    private static string Family(JsonElement patient) => patient.GetProperty("name")[0].GetProperty("family").GetString()!;

    private static string Version(JsonElement resource) => resource.GetProperty("meta").GetProperty("versionId").GetString()!;

    private static string Diagnostics(Answer answer) => answer.Body!.Value.GetProperty("issue")[0].GetProperty("diagnostics").GetString()!;

    [Fact]
    public async Task A_conditional_update_that_matches_nothing_creates_the_patient_under_a_server_id_or_the_id_it_gives()
    {
        var nir = Samples.ValidNir("1850375100001");
        var created = await PutAsync(ByNir(nir), Samples.Patient(family: "Nouveau", nir: nir));
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var id = created.Body!.Value.GetProperty("id").GetString()!;
        Assert.Equal("1", Version(created.Body.Value));
        Assert.Equal("W/\"1\"", created.ETag);
        Assert.EndsWith($"/fhir/Patient/{id}/_history/1", created.Location);
        Assert.Equal([id], (await FindAsync($"Patient?{ByNir(nir)}")).Select(p => p.GetProperty("id").GetString()));

        // With an id and nothing matching, as an update as create: the record gets that id.
        var other = Samples.ValidNir("1850375100002");
        var chosen = await PutAsync(ByNir(other), Samples.Patient(family: "Choisi", nir: other, id: "cond-chosen"));
        Assert.True(chosen.Status == HttpStatusCode.Created, chosen.Text);
        Assert.Equal("cond-chosen", chosen.Body!.Value.GetProperty("id").GetString());
        Assert.Equal("Choisi", Family(await ReadAsync("Patient/cond-chosen")));
        // History says how it was written: a PUT that created.
        var history = await SendAsync(HttpMethod.Get, $"/fhir/Patient/{id}/_history");
        Assert.Equal("PUT", history.Body!.Value.GetProperty("entry")[0].GetProperty("request").GetProperty("method").GetString());
    }

    [Fact]
    public async Task A_conditional_update_that_matches_one_patient_updates_it_and_answers_as_an_update()
    {
        var nir = Samples.ValidNir("1850375100003");
        var id = await CreateAsync(Samples.Patient(family: "Avant", nir: nir));

        var updated = await PutAsync(ByNir(nir), Samples.Patient(family: "Apres", nir: nir));
        Assert.True(updated.Status == HttpStatusCode.OK, updated.Text);
        Assert.Equal(id, updated.Body!.Value.GetProperty("id").GetString());
        Assert.Equal("2", Version(updated.Body.Value));
        Assert.Equal("W/\"2\"", updated.ETag);
        Assert.Null(updated.Location);
        Assert.Equal("Apres", Family(await ReadAsync($"Patient/{id}")));

        // The body may name the match's id; Prefer: return=minimal answers without a body, as an update does.
        var minimal = await PutAsync(ByNir(nir), Samples.Patient(family: "Encore", nir: nir, id: id), ("Prefer", "return=minimal"));
        Assert.Equal(HttpStatusCode.OK, minimal.Status);
        Assert.Null(minimal.Body);
        Assert.Equal("W/\"3\"", minimal.ETag);

        // Another id in the body than the match's: 400, nothing written.
        var mismatch = await PutAsync(ByNir(nir), Samples.Patient(family: "Autre", nir: nir, id: "not-the-match"));
        Assert.Equal(HttpStatusCode.BadRequest, mismatch.Status);
        Assert.Equal("OperationOutcome", mismatch.Body!.Value.GetProperty("resourceType").GetString());
        Assert.Contains("is not the id of the Patient the criteria match", Diagnostics(mismatch), StringComparison.Ordinal);
        var current = await ReadAsync($"Patient/{id}");
        Assert.Equal(("Encore", "3"), (Family(current), Version(current)));
        Assert.Single(await FindAsync($"Patient?{ByNir(nir)}"));
        using (var none = await Api.GetAsync("/fhir/Patient/not-the-match")) Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
    }

    [Fact]
    public async Task If_Match_holds_a_conditional_update_and_delete_to_the_version_of_the_match()
    {
        var nir = Samples.ValidNir("1850375100004");
        var id = await CreateAsync(Samples.Patient(family: "Version", nir: nir));
        Assert.Equal(HttpStatusCode.OK, (await PutAsync(ByNir(nir), Samples.Patient(family: "Deux", nir: nir), ("If-Match", "W/\"1\""))).Status);
        var stale = await PutAsync(ByNir(nir), Samples.Patient(family: "Perdu", nir: nir), ("If-Match", "W/\"1\""));
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.Status);
        Assert.Equal("Deux", Family(await ReadAsync($"Patient/{id}")));
        var staleDelete = await SendAsync(HttpMethod.Delete, $"/fhir/Patient?{ByNir(nir)}", null, null, ("If-Match", "W/\"1\""));
        Assert.Equal(HttpStatusCode.PreconditionFailed, staleDelete.Status);
        Assert.Equal("Deux", Family(await ReadAsync($"Patient/{id}")));

        // If-Match with nothing matching: 412, and nothing is created.
        var missing = Samples.ValidNir("1850375100005");
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await PutAsync(ByNir(missing), Samples.Patient(nir: missing), ("If-Match", "*"))).Status);
        Assert.Empty(await FindAsync($"Patient?{ByNir(missing)}"));
        Assert.Equal(HttpStatusCode.BadRequest, (await PutAsync(ByNir(nir), Samples.Patient(nir: nir), ("If-Match", "yesterday"))).Status);
    }

    [Fact]
    public async Task Criteria_that_match_several_records_are_412_and_change_nothing()
    {
        var first = await CreateAsync(Samples.Patient(family: "Homonyme", nir: Samples.ValidNir("1850375100006")));
        var second = await CreateAsync(Samples.Patient(family: "Homonyme", nir: Samples.ValidNir("1850375100007")));

        var update = await PutAsync("family=homonyme", Samples.Patient(family: "Ecrase"));
        Assert.Equal(HttpStatusCode.PreconditionFailed, update.Status);
        Assert.Equal("multiple-matches", update.Body!.Value.GetProperty("issue")[0].GetProperty("code").GetString());
        var delete = await SendAsync(HttpMethod.Delete, "/fhir/Patient?family=homonyme");
        Assert.Equal(HttpStatusCode.PreconditionFailed, delete.Status);
        Assert.Contains("one record at a time", Diagnostics(delete), StringComparison.Ordinal);
        foreach (var id in new[] { first, second })
        {
            var patient = await ReadAsync($"Patient/{id}");
            Assert.Equal(("Homonyme", "1"), (Family(patient), Version(patient)));
        }
        Assert.Equal(2, (await FindAsync("Patient?family=homonyme")).Count);
        Assert.Empty(await FindAsync("Patient?family=ecrase"));
    }

    [Fact]
    public async Task A_conditional_update_whose_resource_names_another_existing_record_is_409_and_changes_it_not()
    {
        var other = await CreateAsync(Samples.Patient(family: "Intouchable", nir: Samples.ValidNir("1850375100008")));
        var nir = Samples.ValidNir("1850375100009");
        var conflict = await PutAsync(ByNir(nir), Samples.Patient(family: "Intrus", nir: nir, id: other));
        Assert.Equal(HttpStatusCode.Conflict, conflict.Status);
        var patient = await ReadAsync($"Patient/{other}");
        Assert.Equal(("Intouchable", "1"), (Family(patient), Version(patient)));
        Assert.Empty(await FindAsync($"Patient?{ByNir(nir)}"));
    }

    [Fact]
    public async Task A_conditional_delete_deletes_the_one_match_and_answers_a_match_of_nothing_as_a_delete_of_an_unknown_id()
    {
        var nir = Samples.ValidNir("1850375100010");
        var id = await CreateAsync(Samples.Patient(family: "Supprime", nir: nir));
        var deleted = await SendAsync(HttpMethod.Delete, $"/fhir/Patient?{ByNir(nir)}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal("W/\"2\"", deleted.ETag);
        using (var gone = await Api.GetAsync($"/fhir/Patient/{id}")) Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);

        // Nothing matches now (a deleted record matches no search): 204 as DELETE of an unknown id answers, without a version.
        var again = await SendAsync(HttpMethod.Delete, $"/fhir/Patient?{ByNir(nir)}");
        var unknown = await SendAsync(HttpMethod.Delete, "/fhir/Patient/no-such-patient");
        Assert.Equal((unknown.Status, unknown.ETag, unknown.Text), (again.Status, again.ETag, again.Text));
        Assert.Equal(HttpStatusCode.NoContent, again.Status);

        // A patient still named by a record is not deleted, as by id: 409.
        var named = Samples.ValidNir("1850375100011");
        var patient = await CreateAsync(Samples.Patient(family: "Nomme", nir: named));
        var observation = await CreateAsync(Samples.Observation($"Patient/{patient}"));
        Assert.Equal(HttpStatusCode.Conflict, (await SendAsync(HttpMethod.Delete, $"/fhir/Patient?{ByNir(named)}")).Status);
        await ReadAsync($"Patient/{patient}");
        // In a transaction the refusal names the conditional entry; deleting the record that names her in the same one, it passes.
        var alone = await SendAsync(HttpMethod.Post, "/fhir", $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [ { "request": { "method": "DELETE", "url": "Patient?{{ByNir(named)}}" } } ] }
            """);
        Assert.True(alone.Status == HttpStatusCode.Conflict, alone.Text);
        Assert.StartsWith("Bundle.entry[0] (DELETE Patient)", Diagnostics(alone), StringComparison.Ordinal);
        await ReadAsync($"Patient/{patient}");
        var together = await SendAsync(HttpMethod.Post, "/fhir", $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "request": { "method": "DELETE", "url": "Patient?{{ByNir(named)}}" } },
              { "request": { "method": "DELETE", "url": "Observation/{{observation}}" } } ] }
            """);
        Assert.True(together.Status == HttpStatusCode.OK, together.Text);
        using (var gone = await Api.GetAsync($"/fhir/Patient/{patient}")) Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
    }

    [Theory]
    [InlineData("Patient?{0}")]
    [InlineData("http://ehr.hopital.example/fhir/Patient?{0}")]
    [InlineData("/fhir/Patient?{0}")]
    public async Task If_None_Exist_given_as_a_url_rather_than_its_query_is_400_saying_so_not_an_unknown_or_chained_parameter(string shape)
    {
        // R4: If-None-Exist (and a bundle entry's ifNoneExist) is the query alone, what follows the '?'.
        var nir = Samples.ValidNir("1850375100091");
        var condition = string.Format(System.Globalization.CultureInfo.InvariantCulture, shape, ByNir(nir));
        var create = await SendAsync(HttpMethod.Post, "/fhir/Patient", Samples.Patient(family: "Condurl", nir: nir), null, ("If-None-Exist", condition));
        Assert.True(create.Status == HttpStatusCode.BadRequest, $"If-None-Exist {condition}: {create.Text}");
        Assert.Contains("the search parameters alone, what follows '?'", Diagnostics(create), StringComparison.Ordinal);
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              { "resource": {{Samples.Patient(family: "Condurl", nir: nir)}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": "{{condition}}" } } ] }
            """;
        var batch = await SendAsync(HttpMethod.Post, "/fhir", bundle);
        Assert.True(batch.Status == HttpStatusCode.OK, batch.Text);
        var response = batch.Body!.Value.GetProperty("entry")[0].GetProperty("response");
        Assert.StartsWith("400", response.GetProperty("status").GetString(), StringComparison.Ordinal);
        Assert.Contains("the search parameters alone, what follows '?'", response.GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        Assert.Empty(await FindAsync("Patient?" + ByNir(nir)));
    }

    [Theory]
    [InlineData("family=Formatee&_pretty=true", "_pretty")]
    [InlineData("_format=json&family=Formatee", "_format")]
    [InlineData("family=Formatee&_format=application/fhir%2Bxml", "_format")]
    [InlineData("_pretty=false", "_pretty")]
    public async Task If_None_Exist_holding_format_or_pretty_is_400_saying_they_are_no_criteria_and_creates_nothing(string condition, string named)
    {
        // They say how the answer is written, which the request's URL says; in the criteria they were skipped, and the create ran on
        // the rest as if the client had not written them.
        var nir = Samples.ValidNir("1850375100111");
        var body = Samples.Patient(family: "Formatee", nir: nir);
        var create = await SendAsync(HttpMethod.Post, "/fhir/Patient", body, null, ("If-None-Exist", condition));
        Assert.True(create.Status == HttpStatusCode.BadRequest, $"If-None-Exist {condition}: {create.Text}");
        var issue = Assert.Single(create.Body!.Value.GetProperty("issue").EnumerateArray());
        Assert.Equal((named, "invalid"), (Expression(issue), issue.GetProperty("code").GetString()));
        Assert.StartsWith($"If-None-Exist: {named} is no search criterion; it says how the answer is written", issue.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        foreach (var type in new[] { "batch", "transaction" })
        {
            var bundle = await SendAsync(HttpMethod.Post, "/fhir", $$"""
                { "resourceType": "Bundle", "type": "{{type}}", "entry": [
                  { "resource": {{body}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": "{{condition}}" } } ] }
                """);
            var outcome = type == "batch" ? bundle.Body!.Value.GetProperty("entry")[0].GetProperty("response").GetProperty("outcome") : bundle.Body!.Value;
            Assert.True(type == "batch" ? bundle.Status == HttpStatusCode.OK : bundle.Status == HttpStatusCode.BadRequest, bundle.Text);
            if (type == "batch") Assert.Equal("400", bundle.Body!.Value.GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString());
            Assert.Equal("Bundle.entry[0].request.ifNoneExist", Expression(outcome.GetProperty("issue")[0]));
            Assert.Contains($"{named} is no search criterion", outcome.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        Assert.Empty(await FindAsync($"Patient?{ByNir(nir)}"));
        // In a conditional update's URL they are the request's own, and no criteria: it answers as asked.
        var update = await SendAsync(HttpMethod.Put, $"/fhir/Patient?{ByNir(nir)}&_format=json&_pretty=true", body);
        Assert.True(update.Status == HttpStatusCode.Created, update.Text);
        Assert.Contains("\n  \"resourceType\"", update.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "is a conditional update")]
    [InlineData("?", "is a conditional update")]
    [InlineData("?_format=json", "must be a search query")]
    [InlineData("?shoe-size=42", "Unknown search parameter 'shoe-size'")]
    [InlineData("?family=x&_count=1", "_count has no place there")]
    [InlineData("?family=x&_sort=_id", "_sort has no place there")]
    [InlineData("?family=x&_include=Patient:general-practitioner", "_include has no place there")]
    [InlineData("?family=x&_summary=count", "_summary has no place there")]
    [InlineData("?name:contains=x", "not supported")]
    public async Task Criteria_that_are_no_search_of_records_are_400_naming_why_and_write_nothing(string query, string message)
    {
        var update = await SendAsync(HttpMethod.Put, "/fhir/Patient" + query, Samples.Patient(family: "Critere"));
        Assert.True(update.Status == HttpStatusCode.BadRequest, $"PUT {query}: {update.Text}");
        Assert.Contains(message, update.Text, StringComparison.Ordinal);
        var delete = await SendAsync(HttpMethod.Delete, "/fhir/Patient" + query);
        Assert.True(delete.Status == HttpStatusCode.BadRequest, $"DELETE {query}: {delete.Text}");
        Assert.Contains(message.Replace("conditional update", "conditional delete", StringComparison.Ordinal), delete.Text, StringComparison.Ordinal);
        // If-None-Exist is read by the same rules.
        if (query.Length > 1 && !message.StartsWith("must", StringComparison.Ordinal))
        {
            var create = await SendAsync(HttpMethod.Post, "/fhir/Patient", Samples.Patient(family: "Critere"), null, ("If-None-Exist", query[1..]));
            Assert.True(create.Status == HttpStatusCode.BadRequest, $"If-None-Exist {query}: {create.Text}");
        }
        Assert.Empty(await FindAsync("Patient?family=critere"));
        // An unsupported type, and injection strings, are a 4xx OperationOutcome, never a 500.
        foreach (var url in new[] { "/fhir/Shoe?family=x", "/fhir/Patient?family=%27%20OR%201%3D1%20--", "/fhir/Patient?_id=..%2F..%2Fetc" })
        {
            var odd = await SendAsync(HttpMethod.Put, url, Samples.Patient(family: "Critere"));
            Assert.True((int)odd.Status is 201 or 400 or 404, $"PUT {url}: {odd.Text}");
            var oddDelete = await SendAsync(HttpMethod.Delete, url);
            Assert.True((int)oddDelete.Status is 204 or 400 or 404, $"DELETE {url}: {oddDelete.Text}");
        }
    }

    [Fact]
    public async Task A_batch_runs_conditional_updates_and_deletes_entry_by_entry()
    {
        var nir = Samples.ValidNir("1850375100012");
        await CreateAsync(Samples.Patient(family: "Double", nir: Samples.ValidNir("1850375100013")));
        await CreateAsync(Samples.Patient(family: "Double", nir: Samples.ValidNir("1850375100014")));
        var url = $"Patient?{ByNir(nir)}";
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              { "resource": {{Samples.Patient(family: "Lot", nir: nir)}}, "request": { "method": "PUT", "url": "{{url}}" } },
              { "resource": {{Samples.Patient(family: "Lotbis", nir: nir)}}, "request": { "method": "PUT", "url": "{{url}}" } },
              { "resource": {{Samples.Patient(family: "Lotter", nir: nir)}}, "request": { "method": "PUT", "url": "Patient?family=double" } },
              { "request": { "method": "DELETE", "url": "Patient?family=double" } },
              { "request": { "method": "DELETE", "url": "{{url}}" } },
              { "request": { "method": "DELETE", "url": "Patient?shoe-size=42" } } ] }
            """;
        var response = await SendAsync(HttpMethod.Post, "/fhir", bundle);
        Assert.True(response.Status == HttpStatusCode.OK, response.Text);
        var entries = response.Body!.Value.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("response")).ToList();
        Assert.Equal(["201 Created", "200 OK", "412", "412", "204 No Content", "400"], entries.Select(e => e.GetProperty("status").GetString()));
        Assert.Contains("/_history/1", entries[0].GetProperty("location").GetString(), StringComparison.Ordinal);
        Assert.Equal("W/\"2\"", entries[1].GetProperty("etag").GetString());
        Assert.Equal("W/\"3\"", entries[4].GetProperty("etag").GetString());
        Assert.Empty(await FindAsync($"Patient?{ByNir(nir)}"));
        Assert.Equal(2, (await FindAsync("Patient?family=double")).Count);
    }

    [Fact]
    public async Task A_transaction_resolves_its_conditional_entries_and_rewrites_references_to_what_they_match()
    {
        var known = Samples.ValidNir("1850375100015");
        var existing = await CreateAsync(Samples.Patient(family: "Connu", nir: known));
        var fresh = Samples.ValidNir("1850375100016");
        var retired = await CreateAsync(Samples.Patient(family: "Retraite", nir: Samples.ValidNir("1850375100017")));
        const string knownUrn = "urn:uuid:6a0e1d5c-8a59-4d7e-9c1b-2b7a4f6d8e01";
        const string freshUrn = "urn:uuid:6a0e1d5c-8a59-4d7e-9c1b-2b7a4f6d8e02";
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Observation(knownUrn)}}, "request": { "method": "POST", "url": "Observation" } },
              { "fullUrl": "{{knownUrn}}", "resource": {{Samples.Patient(family: "Connu-Mis-A-Jour", nir: known)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(known)}}" } },
              { "fullUrl": "{{freshUrn}}", "resource": {{Samples.Patient(family: "Inconnu", nir: fresh)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(fresh)}}" } },
              { "resource": {{Samples.Observation(freshUrn, loinc: "718-7")}}, "request": { "method": "POST", "url": "Observation" } },
              { "request": { "method": "DELETE", "url": "Patient?family=retraite" } } ] }
            """;
        var response = await SendAsync(HttpMethod.Post, "/fhir", bundle);
        Assert.True(response.Status == HttpStatusCode.OK, response.Text);
        var entries = response.Body!.Value.GetProperty("entry").EnumerateArray().ToList();
        Assert.Equal(["201 Created", "200 OK", "201 Created", "201 Created", "204 No Content"], entries.Select(e => e.GetProperty("response").GetProperty("status").GetString()));
        Assert.Equal(existing, entries[1].GetProperty("resource").GetProperty("id").GetString());
        var created = entries[2].GetProperty("resource").GetProperty("id").GetString()!;
        Assert.Equal($"Patient/{existing}", entries[0].GetProperty("resource").GetProperty("subject").GetProperty("reference").GetString());
        Assert.Equal($"Patient/{created}", entries[3].GetProperty("resource").GetProperty("subject").GetProperty("reference").GetString());
        Assert.Equal("Connu-Mis-A-Jour", Family(await ReadAsync($"Patient/{existing}")));
        using (var gone = await Api.GetAsync($"/fhir/Patient/{retired}")) Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
    }

    [Fact]
    public async Task A_transaction_weighs_each_record_its_conditional_entries_match_once_with_the_guard()
    {
        // Patients another client created, so that the guard counts them. Each match was weighed twice: before the transaction's
        // overlap and fullUrl checks, and again as its entry ran.
        var updated = Samples.ValidNir("1850375100094");
        var deleted = Samples.ValidNir("1850375100095");
        await CreateAsync(Samples.Patient(family: "Pese", nir: updated));
        await CreateAsync(Samples.Patient(family: "Pesee", nir: deleted));
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        var registration = await Server.Store.Clients.AddAsync(tenant, "guard count", "system/*.cruds", null, ClientLimits.None, CancellationToken.None);
        using var writer = new HttpClient { BaseAddress = Server.BaseAddress };
        writer.DefaultRequestHeaders.Authorization = new("Bearer", await Server.TokenAsync(registration.ClientId, registration.ClientSecret!));

        var response = await SendAsync(HttpMethod.Post, "/fhir", $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "urn:uuid:6a0e1d5c-8a59-4d7e-9c1b-2b7a4f6d8e03", "resource": {{Samples.Patient(family: "Repese", nir: updated)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(updated)}}" } },
              { "request": { "method": "DELETE", "url": "Patient?{{ByNir(deleted)}}" } } ] }
            """, writer);
        Assert.True(response.Status == HttpStatusCode.OK, response.Text);

        // The guard's admissions that weighed patients, as its baseline keeps them: one for each of the two records.
        var baseline = Server.Store.Guard.BaselineOf(tenant.Id, registration.ClientId);
        int admissions;
        lock (baseline) admissions = baseline.TodayHours.Sum();
        Assert.Equal(2, admissions);
    }

    [Fact]
    public async Task A_bundle_entry_whose_url_names_an_id_and_a_query_is_400_saying_how_to_write_it_and_writes_nothing()
    {
        // PUT or DELETE Patient/id?criteria was run as a write of Patient/id, its query dropped: the client meant a conditional
        // write, or a condition on the write by id, and got neither.
        var nir = Samples.ValidNir("1850375100096");
        var id = await CreateAsync(Samples.Patient(family: "Nommee", nir: nir));
        var fresh = Samples.ValidNir("1850375100097");
        var create = $$"""{ "resource": {{Samples.Patient(family: "Voisine", nir: fresh)}}, "request": { "method": "POST", "url": "Patient" } }""";
        var put = $$"""{ "resource": {{Samples.Patient(family: "Requete", nir: nir, id: id)}}, "request": { "method": "PUT", "url": "Patient/{{id}}?{{ByNir(nir)}}" } }""";
        var delete = $$"""{ "request": { "method": "DELETE", "url": "Patient/{{id}}?{{ByNir(nir)}}" } }""";
        static void SaysHow(string diagnostics, string act)
        {
            Assert.Contains($"a conditional {act}'s url is Patient?criteria", diagnostics, StringComparison.Ordinal);
            Assert.Contains("by id (Patient/id) takes no query", diagnostics, StringComparison.Ordinal);
        }

        // A transaction: refused whole, nothing written (not the create before it either).
        foreach (var (entry, act) in new[] { (put, "update"), (delete, "delete") })
        {
            var transaction = await SendAsync(HttpMethod.Post, "/fhir", $$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{create}}, {{entry}} ] }""");
            Assert.True(transaction.Status == HttpStatusCode.BadRequest, transaction.Text);
            Assert.Equal("OperationOutcome", transaction.Body!.Value.GetProperty("resourceType").GetString());
            Assert.StartsWith("Bundle.entry[1]: ", Diagnostics(transaction), StringComparison.Ordinal);
            SaysHow(Diagnostics(transaction), act);
            Assert.Empty(await FindAsync($"Patient?{ByNir(fresh)}"));
        }
        // A batch: those entries alone fail.
        var batch = await SendAsync(HttpMethod.Post, "/fhir", $$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ {{create}}, {{put}}, {{delete}} ] }""");
        Assert.True(batch.Status == HttpStatusCode.OK, batch.Text);
        var responses = batch.Body!.Value.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("response")).ToList();
        Assert.Equal(["201 Created", "400", "400"], responses.Select(r => r.GetProperty("status").GetString()));
        SaysHow(responses[1].GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, "update");
        SaysHow(responses[2].GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, "delete");
        Assert.Single(await FindAsync($"Patient?{ByNir(fresh)}"));
        var patient = await ReadAsync($"Patient/{id}");
        Assert.Equal(("Nommee", "1"), (Family(patient), Version(patient)));
    }

    [Fact]
    public async Task A_transaction_whose_later_entry_fails_leaves_nothing_of_its_conditional_entries()
    {
        var known = Samples.ValidNir("1850375100018");
        var existing = await CreateAsync(Samples.Patient(family: "Stable", nir: known));
        var doomed = await CreateAsync(Samples.Patient(family: "Sursis", nir: Samples.ValidNir("1850375100019")));
        var fresh = Samples.ValidNir("1850375100020");
        foreach (var failing in new[]
                 {
                     // A conditional entry that fails: its criteria match two patients.
                     $$"""{ "resource": {{Samples.Patient(family: "Ambigu")}}, "request": { "method": "PUT", "url": "Patient?birthdate=1980-03-12" } }""",
                     // An ordinary entry that fails: an observation of a patient that does not exist (422).
                     $$"""{ "resource": {{Samples.Observation("Patient/nobody-here")}}, "request": { "method": "POST", "url": "Observation" } }""",
                 })
        {
            var bundle = $$"""
                { "resourceType": "Bundle", "type": "transaction", "entry": [
                  { "request": { "method": "DELETE", "url": "Patient?family=sursis" } },
                  { "resource": {{Samples.Patient(family: "Change", nir: known)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(known)}}" } },
                  { "resource": {{Samples.Patient(family: "Neuf", nir: fresh)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(fresh)}}" } },
                  {{failing}} ] }
                """;
            var response = await SendAsync(HttpMethod.Post, "/fhir", bundle);
            Assert.True((int)response.Status is 412 or 422, response.Text);
            Assert.Contains("Bundle.entry[3]", Diagnostics(response), StringComparison.Ordinal);
            var stable = await ReadAsync($"Patient/{existing}");
            Assert.Equal(("Stable", "1"), (Family(stable), Version(stable)));
            Assert.Equal("Sursis", Family(await ReadAsync($"Patient/{doomed}")));
            Assert.Empty(await FindAsync($"Patient?{ByNir(fresh)}"));
        }
    }

    [Fact]
    public async Task A_transaction_whose_conditional_entries_could_write_one_record_twice_is_refused_whole()
    {
        var nir = Samples.ValidNir("1850375100021");
        var id = await CreateAsync(Samples.Patient(family: "Cible", nir: nir));
        var fresh = Samples.ValidNir("1850375100022");
        var cases = new (string First, string Second, string Message)[]
        {
            // The same criteria twice: both would create (or change) the patient they match.
            ($$"""{ "resource": {{Samples.Patient(family: "Un", nir: fresh)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(fresh)}}" } }""",
             $$"""{ "resource": {{Samples.Patient(family: "Deux", nir: fresh)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(fresh)}}" } }""",
             "its search criteria repeat Bundle.entry[0]'s"),
            ($$"""{ "resource": {{Samples.Patient(family: "Un", nir: fresh)}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": "{{ByNir(fresh)}}" } }""",
             $$"""{ "request": { "method": "DELETE", "url": "Patient?{{ByNir(fresh)}}" } }""",
             "its search criteria repeat Bundle.entry[0]'s"),
            // Other criteria that resolve to a record another entry changes by id, or that another conditional entry matches.
            ($$"""{ "resource": {{Samples.Patient(family: "Un", nir: nir, id: id)}}, "request": { "method": "PUT", "url": "Patient/{{id}}" } }""",
             $$"""{ "resource": {{Samples.Patient(family: "Deux", nir: nir)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(nir)}}" } }""",
             "is changed by Bundle.entry[0] too"),
            ($$"""{ "request": { "method": "DELETE", "url": "Patient?family=cible" } }""",
             $$"""{ "resource": {{Samples.Patient(family: "Deux", nir: nir)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(nir)}}" } }""",
             "is changed by Bundle.entry[0] too"),
        };
        foreach (var (first, second, message) in cases)
        {
            var response = await SendAsync(HttpMethod.Post, "/fhir", $$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{first}}, {{second}} ] }""");
            Assert.True(response.Status == HttpStatusCode.BadRequest, response.Text);
            Assert.Contains($"Bundle.entry[1]: ", Diagnostics(response), StringComparison.Ordinal);
            Assert.Contains(message, Diagnostics(response), StringComparison.Ordinal);
            var patient = await ReadAsync($"Patient/{id}");
            Assert.Equal(("Cible", "1"), (Family(patient), Version(patient)));
            Assert.Empty(await FindAsync($"Patient?{ByNir(fresh)}"));
        }
    }

    [Fact]
    public async Task A_client_without_search_and_read_cannot_learn_a_match_through_a_conditional_update_or_delete()
    {
        var nir = Samples.ValidNir("1850375100023");
        var id = await CreateAsync(Samples.Patient(family: "Secret", nir: nir));
        var url = $"Patient?{ByNir(nir)}";
        // Update without search, or without read (it returns the match's id); delete without search.
        foreach (var (scopes, method) in new[] { ("system/Patient.u", "PUT"), ("system/Patient.cu", "PUT"), ("system/Patient.us", "PUT"),
                     ("system/Patient.d", "DELETE"), ("system/Patient.rd", "DELETE") })
        {
            using var client = await Server.ClientAsync(TenantName, scopes);
            var body = method == "PUT" ? Samples.Patient(family: "Pirate", nir: nir) : null;
            var single = await SendAsync(new HttpMethod(method), "/fhir/" + url, body, client);
            Assert.True(single.Status == HttpStatusCode.Forbidden, $"{scopes} {method}: {single.Text}");
            Assert.DoesNotContain(id, single.Text, StringComparison.Ordinal);
            Assert.Contains(method == "PUT" ? "needs search and read on Patient as well as update" : "needs search on Patient as well as delete", Diagnostics(single), StringComparison.Ordinal);
            foreach (var bundleType in new[] { "batch", "transaction" })
            {
                var entry = method == "PUT"
                    ? $$"""{ "resource": {{body}}, "request": { "method": "PUT", "url": "{{url}}" } }"""
                    : $$"""{ "request": { "method": "DELETE", "url": "{{url}}" } }""";
                var bundle = await SendAsync(HttpMethod.Post, "/fhir", $$"""{ "resourceType": "Bundle", "type": "{{bundleType}}", "entry": [ {{entry}} ] }""", client);
                if (bundleType == "batch") Assert.StartsWith("403", bundle.Body!.Value.GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString());
                else Assert.Equal(HttpStatusCode.Forbidden, bundle.Status);
                Assert.DoesNotContain(id, bundle.Text, StringComparison.Ordinal);
            }
        }
        var patient = await ReadAsync($"Patient/{id}");
        Assert.Equal(("Secret", "1"), (Family(patient), Version(patient)));

        // Each refusal is on the chain as the refused act, before any search ran.
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        await Server.Store.Audit.CatchUpAsync();
        var refused = await Server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Actions = [Vauban.Audit.AuditAction.Update, Vauban.Audit.AuditAction.Delete], Count = 200 }, CancellationToken.None) ?? [];
        Assert.Equal(9, refused.Count(e => e.Outcome != Vauban.Audit.AuditOutcome.Success
            && e.Detail.Note!.Contains("A conditional update (PUT Patient?criteria) searches", StringComparison.Ordinal)));
        Assert.Equal(6, refused.Count(e => e.Outcome != Vauban.Audit.AuditOutcome.Success
            && e.Detail.Note!.Contains("A conditional delete (DELETE Patient?criteria) searches", StringComparison.Ordinal)));

        // With search and read, the conditional update is allowed; with search, the conditional delete.
        using var updater = await Server.ClientAsync(TenantName, "system/Patient.rus");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Put, "/fhir/" + url, Samples.Patient(family: "Permis", nir: nir), updater)).Status);
        using var deleter = await Server.ClientAsync(TenantName, "system/Patient.ds");
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(HttpMethod.Delete, "/fhir/" + url, null, deleter)).Status);
        // An update-only client that would create (nothing matches) needs create too, as an update as create does.
        var fresh = Samples.ValidNir("1850375100024");
        var create = await SendAsync(HttpMethod.Put, $"/fhir/Patient?{ByNir(fresh)}", Samples.Patient(family: "Cree", nir: fresh), updater);
        Assert.Equal(HttpStatusCode.Forbidden, create.Status);
        Assert.Contains("needs create on Patient as well as update", Diagnostics(create), StringComparison.Ordinal);
        Assert.Empty(await FindAsync($"Patient?{ByNir(fresh)}"));
    }

    [Fact]
    public async Task A_client_limited_to_its_own_resources_never_matches_nor_learns_of_another_client_s_record()
    {
        // The attack: a client limited to what it created probes, or overwrites, a record another client holds, by its NIR.
        var nir = Samples.ValidNir("1850375100025");
        var others = await CreateAsync(Samples.Patient(family: "Ailleurs", nir: nir));
        using var own = await Server.ClientAsync(TenantName, "system/*.cruds", new ClientLimits(null, true));

        var delete = await SendAsync(HttpMethod.Delete, $"/fhir/Patient?{ByNir(nir)}", null, own);
        var unknownDelete = await SendAsync(HttpMethod.Delete, $"/fhir/Patient?{ByNir(Samples.ValidNir("1850375100026"))}", null, own);
        Assert.Equal((unknownDelete.Status, unknownDelete.ETag, unknownDelete.Text), (delete.Status, delete.ETag, delete.Text));
        Assert.Equal("Ailleurs", Family(await ReadAsync($"Patient/{others}")));

        // Its conditional update finds only its own records: here none, so it creates its own, and leaves the other's alone.
        var put = await SendAsync(HttpMethod.Put, $"/fhir/Patient?{ByNir(nir)}", Samples.Patient(family: "Mien", nir: nir), own);
        Assert.True(put.Status == HttpStatusCode.Created, put.Text);
        var mine = put.Body!.Value.GetProperty("id").GetString()!;
        Assert.NotEqual(others, mine);
        Assert.DoesNotContain(others, put.Text, StringComparison.Ordinal);
        var theirs = await ReadAsync($"Patient/{others}");
        Assert.Equal(("Ailleurs", "1"), (Family(theirs), Version(theirs)));
        // Naming the other's id in its resource is answered as a PUT of that id is: not revealed, nothing written.
        var named = await SendAsync(HttpMethod.Put, $"/fhir/Patient?{ByNir(Samples.ValidNir("1850375100027"))}", Samples.Patient(family: "Vol", id: others), own);
        var byId = await SendAsync(HttpMethod.Put, $"/fhir/Patient/{others}", Samples.Patient(family: "Vol", id: others), own);
        Assert.Equal(byId.Status, named.Status);
        Assert.NotEqual(HttpStatusCode.Conflict, named.Status);
        Assert.Equal("Ailleurs", Family(await ReadAsync($"Patient/{others}")));
        // Its own record it updates and deletes by the same criteria.
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Put, $"/fhir/Patient?{ByNir(nir)}", Samples.Patient(family: "Mien", nir: nir), own)).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(HttpMethod.Delete, $"/fhir/Patient?{ByNir(nir)}", null, own)).Status);
        using (var gone = await Api.GetAsync($"/fhir/Patient/{mine}")) Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
        Assert.Equal("Ailleurs", Family(await ReadAsync($"Patient/{others}")));
    }

    private const string StaffPassword = "tourmaline ferry quietly 42";

    /// <summary>A physician of the test's establishment (practitioner <paramref name="practitioner"/>), enrolled and signed in through the pages
    /// (password and TOTP) as at a screen: their session cookie reaches /fhir, and their writes carry this site's Origin, as a
    /// browser's do.</summary>
    private async Task<(StaffClient Staff, string Principal)> SignedInPhysicianAsync(string email, string practitioner)
    {
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        var link = await Server.Store.Accounts.AddAsync(tenant, email, StaffRole.Physician, practitioner, null, "Dr " + email, CancellationToken.None);
        string secret;
        using (var browser = new StaffClient(Server.BaseAddress)) (secret, _) = await browser.EnrolWithTotpAsync(link.Token, StaffPassword, TimeProvider.System);
        var staff = new StaffClient(Server.BaseAddress);
        await staff.PasswordAsync(TenantName, email, StaffPassword);
        // The next time step's code: enrolment took this one's, and a step is accepted once (one step of drift is allowed).
        var (totp, _) = await staff.TotpAsync(Totp.Code(secret, TimeProvider.System, stepOffset: 1));
        Assert.Equal("/", totp.Headers.Location?.ToString());
        staff.Http.DefaultRequestHeaders.Add("Origin", Server.BaseAddress.GetLeftPart(UriPartial.Authority));
        return (staff, link.User.PrincipalId);
    }

    /// <summary>A practitioner, and a care relationship between them and each patient (an encounter yesterday), written by the API client.</summary>
    private async Task<string> PractitionerCaringForAsync(params string[] patients)
    {
        var practitioner = await CreateAsync(Samples.Practitioner("Soignant"));
        var yesterday = DateTimeOffset.UtcNow.AddDays(-1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var patient in patients) await CreateAsync(Samples.Encounter(patient, practitioner, yesterday));
        return practitioner;
    }

    [Fact]
    public async Task A_signed_in_physician_updates_and_deletes_their_patient_s_records_by_criteria()
    {
        var nir = Samples.ValidNir("1850375100098");
        var patient = await CreateAsync(Samples.Patient(family: "Suivie", nir: nir));
        var observation = await CreateAsync(Samples.Observation($"Patient/{patient}", loinc: "2093-3"));
        var (staff, principal) = await SignedInPhysicianAsync("dr.suivi@chu.example", await PractitionerCaringForAsync(patient));
        using var signedIn = staff;

        var updated = await SendAsync(HttpMethod.Put, $"/fhir/Patient?{ByNir(nir)}", Samples.Patient(family: "Corrigee", nir: nir), staff.Http);
        Assert.True(updated.Status == HttpStatusCode.OK, updated.Text);
        Assert.Equal(patient, updated.Body!.Value.GetProperty("id").GetString());
        Assert.Equal("W/\"2\"", updated.ETag);
        Assert.Equal("Corrigee", Family(await ReadAsync($"Patient/{patient}")));

        var deleted = await SendAsync(HttpMethod.Delete, $"/fhir/Observation?patient=Patient/{patient}&code=http://loinc.org|2093-3", null, staff.Http);
        Assert.True(deleted.Status == HttpStatusCode.NoContent, deleted.Text);
        Assert.Equal("W/\"2\"", deleted.ETag);
        using (var gone = await Api.GetAsync($"/fhir/Observation/{observation}")) Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);

        // On the chain as the physician's acts, in their session.
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        await Server.Store.Audit.CatchUpAsync();
        var acts = await Server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Agent = principal, Actions = [Vauban.Audit.AuditAction.Update, Vauban.Audit.AuditAction.Delete], Count = 50 }, CancellationToken.None) ?? [];
        foreach (var act in new[] { Vauban.Audit.AuditAction.Update, Vauban.Audit.AuditAction.Delete })
            Assert.Contains(acts, e => e.Action == act && e.Outcome == Vauban.Audit.AuditOutcome.Success && e.Detail.Session is not null);
    }

    [Fact]
    public async Task A_signed_in_physician_s_criteria_never_match_nor_reveal_a_patient_outside_their_care()
    {
        // The attack: a physician probes, or overwrites, a patient they do not care for, by NIR or by a result's code.
        var nir = Samples.ValidNir("1850375100099");
        var stranger = await CreateAsync(Samples.Patient(family: "Etrangere", nir: nir));
        var result = await CreateAsync(Samples.Observation($"Patient/{stranger}", loinc: "2085-9"));
        var own = await CreateAsync(Samples.Patient(family: "Suivie", nir: Samples.ValidNir("1850375100100")));
        var (staff, _) = await SignedInPhysicianAsync("dr.ailleurs@chu.example", await PractitionerCaringForAsync(own));
        using var signedIn = staff;

        // Its conditional delete is answered as one of criteria that match nothing: 204, no version, nothing deleted.
        var delete = await SendAsync(HttpMethod.Delete, "/fhir/Observation?code=http://loinc.org|2085-9", null, staff.Http);
        var nothing = await SendAsync(HttpMethod.Delete, "/fhir/Observation?code=http://loinc.org|1234-5", null, staff.Http);
        Assert.Equal((HttpStatusCode.NoContent, (string?)null), (delete.Status, delete.ETag));
        Assert.Equal((nothing.Status, nothing.ETag, nothing.Text), (delete.Status, delete.ETag, delete.Text));
        using (var kept = await Api.GetAsync($"/fhir/Observation/{result}")) Assert.Equal(HttpStatusCode.OK, kept.StatusCode);

        // Its conditional update finds nothing it may see: it creates a patient of its own beside her, and leaves her alone.
        var put = await SendAsync(HttpMethod.Put, $"/fhir/Patient?{ByNir(nir)}", Samples.Patient(family: "Ecrasee", nir: nir), staff.Http);
        Assert.True(put.Status == HttpStatusCode.Created, put.Text);
        Assert.NotEqual(stranger, put.Body!.Value.GetProperty("id").GetString());
        Assert.DoesNotContain(stranger, put.Text, StringComparison.Ordinal);
        var untouched = await ReadAsync($"Patient/{stranger}");
        Assert.Equal(("Etrangere", "1"), (Family(untouched), Version(untouched)));
    }

    /// <summary>A conditional update that searched while a write by id holds the match's row (PostgreSQL): the write by id commits
    /// first, then the conditional update takes the row. Held here by a raw row lock, released once both wait behind it.</summary>
    private async Task<(Answer ById, Answer Conditional)> RaceBehindRowLockAsync(string id, Func<Task<Answer>> byId, Func<Task<Answer>> conditional)
    {
        await using var raw = new Npgsql.NpgsqlConnection(Server.Db);
        await raw.OpenAsync();
        await using var transaction = await raw.BeginTransactionAsync();
        await using (var hold = new Npgsql.NpgsqlCommand("SELECT rid FROM resources WHERE id = @id FOR UPDATE", raw, transaction))
        {
            hold.Parameters.AddWithValue("id", id);
            Assert.NotNull(await hold.ExecuteScalarAsync());
        }
        var first = byId();
        await Task.Delay(1500);
        var second = conditional();
        await Task.Delay(1500);
        await transaction.CommitAsync();
        return (await first, await second);
    }

    private static string Expression(JsonElement issue) => issue.GetProperty("expression")[0].GetString()!;

    [Fact]
    public async Task A_conditional_create_whose_resource_does_not_meet_its_own_criteria_is_400_naming_them_and_creates_nothing()
    {
        // Created, the patient would not be found by the criteria it was created under: the same request sent again would find
        // nothing again and create a second patient (HAPI FHIR refuses it too, HAPI-0929).
        var searched = Samples.ValidNir("1850375100100");
        var given = Samples.ValidNir("1850375100101");
        var body = Samples.Patient(family: "Decale", nir: given);
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var refused = await SendAsync(HttpMethod.Post, "/fhir/Patient", body, null, ("If-None-Exist", ByNir(searched)));
            Assert.True(refused.Status == HttpStatusCode.BadRequest, refused.Text);
            var issue = refused.Body!.Value.GetProperty("issue").EnumerateArray().Single();
            Assert.Equal(("invalid", "identifier"), (issue.GetProperty("code").GetString(), Expression(issue)));
            Assert.StartsWith("If-None-Exist: nothing matches them, and the Patient given does not meet identifier", Diagnostics(refused), StringComparison.Ordinal);
            // The criterion is named, not its value (a NIR).
            Assert.DoesNotContain(searched, refused.Text, StringComparison.Ordinal);
        }
        Assert.Empty(await FindAsync($"Patient?{ByNir(searched)}"));
        Assert.Empty(await FindAsync($"Patient?{ByNir(given)}"));
        // Each refusal is on the audit chain as a failed create (it tells that nothing matched, as a create would have); no create succeeded.
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        var creates = (await Server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Actions = [Vauban.Audit.AuditAction.Create], Count = 100 }, CancellationToken.None))!;
        Assert.Equal(2, creates.Count(e => e.Outcome == Vauban.Audit.AuditOutcome.MinorFailure && e.Detail.Note!.Contains("does not meet them", StringComparison.Ordinal)));
        Assert.DoesNotContain(creates, e => e.Outcome == Vauban.Audit.AuditOutcome.Success);

        // Only the criteria the resource does not meet are named: its family and identifier are those searched, its birth year not.
        var partly = await SendAsync(HttpMethod.Post, "/fhir/Patient", body, null, ("If-None-Exist", $"family=decale&birthdate=1990&{ByNir(given)}"));
        Assert.True(partly.Status == HttpStatusCode.BadRequest, partly.Text);
        Assert.Equal(["birthdate"], partly.Body!.Value.GetProperty("issue").EnumerateArray().Select(Expression));
        Assert.Empty(await FindAsync($"Patient?{ByNir(given)}"));
    }

    [Fact]
    public async Task A_conditional_create_refused_for_criteria_its_resource_does_not_meet_is_on_that_patient_s_access_history()
    {
        // A result filed by If-None-Exist on its code, its body carrying another code: refused, and the attempt is one the patient
        // (and the officer) finds by asking who tried to write into her record, as any refused write into it is.
        var patient = await CreateAsync(Samples.Patient(family: "Historique", nir: Samples.ValidNir("1850375100108")));
        var refused = await SendAsync(HttpMethod.Post, "/fhir/Observation", Samples.Observation($"Patient/{patient}", loinc: "2085-9"), null,
            ("If-None-Exist", $"patient=Patient/{patient}&code=http://loinc.org|2093-3"));
        Assert.True(refused.Status == HttpStatusCode.BadRequest, refused.Text);
        Assert.Equal("code", Expression(refused.Body!.Value.GetProperty("issue")[0]));
        Assert.Empty(await FindAsync($"Observation?patient=Patient/{patient}"));

        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        await Server.Store.Audit.CatchUpAsync();
        var history = await Server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "test"),
            new Vauban.Audit.AuditQuery { Patient = patient, Actions = [Vauban.Audit.AuditAction.Create], Count = 50 }, CancellationToken.None) ?? [];
        var attempt = Assert.Single(history, e => e.ResourceType == "Observation");
        Assert.Equal(Vauban.Audit.AuditOutcome.MinorFailure, attempt.Outcome);
        Assert.Contains("does not meet them", attempt.Detail.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_writer_the_policy_refuses_gets_the_policy_s_answer_to_a_conditional_create_whatever_its_criteria()
    {
        // The criteria are judged once the policy has judged the patient the record goes into: a writer who may not write there is
        // answered as a create without If-None-Exist is, not told that nothing matched its criteria.
        var stranger = await CreateAsync(Samples.Patient(family: "Gardee", nir: Samples.ValidNir("1850375100109")));
        var own = await CreateAsync(Samples.Patient(family: "Soignee", nir: Samples.ValidNir("1850375100110")));
        var body = Samples.Observation($"Patient/{stranger}", loinc: "2085-9");
        var unmet = ("If-None-Exist", $"patient=Patient/{stranger}&code=http://loinc.org|2093-3");

        var (physician, _) = await SignedInPhysicianAsync("dr.criteres@chu.example", await PractitionerCaringForAsync(own));
        using var signedIn = physician;
        using var limited = await Server.ClientAsync(TenantName, "system/*.cruds", new ClientLimits([own], false));
        foreach (var (client, status) in new[] { (physician.Http, HttpStatusCode.Forbidden), (limited, HttpStatusCode.NotFound) })
        {
            var plain = await SendAsync(HttpMethod.Post, "/fhir/Observation", body, client);
            var conditional = await SendAsync(HttpMethod.Post, "/fhir/Observation", body, client, unmet);
            Assert.True(plain.Status == status, plain.Text);
            Assert.True(conditional.Status == status, conditional.Text);
            Assert.Equal(Diagnostics(plain), Diagnostics(conditional));
            // In a transaction too: the policy's answer, for the entry.
            var transaction = await SendAsync(HttpMethod.Post, "/fhir", $$"""
                { "resourceType": "Bundle", "type": "transaction", "entry": [
                  { "resource": {{body}}, "request": { "method": "POST", "url": "Observation", "ifNoneExist": "{{unmet.Item2}}" } } ] }
                """, client);
            Assert.True(transaction.Status == status, transaction.Text);
            Assert.DoesNotContain("does not meet", transaction.Text, StringComparison.Ordinal);
        }
        Assert.Empty(await FindAsync($"Observation?patient=Patient/{stranger}"));
    }

    [Fact]
    public async Task A_conditional_create_is_held_to_its_criteria_as_a_search_matches_them_prefixes_accents_and_typed_spaces_included()
    {
        // The resource is judged by the search itself over the blind index it is stored under, not by comparing text: a NIR typed
        // with spaces, a family name's prefix in capitals without its accent and a birth year all find it, so it is created, and
        // the same request sent again returns it.
        var nir = Samples.ValidNir("1850375100102");
        var spaced = $"{nir[..1]} {nir[1..3]} {nir[3..5]} {nir[5..7]} {nir[7..10]} {nir[10..13]} {nir[13..]}";
        var criteria = $"identifier={Samples.InsNir}|{Uri.EscapeDataString(spaced)}&family=LEFEV&birthdate=1985";
        var body = Samples.Patient(family: "Lefèvre", birthDate: "1985-04-02", nir: nir);
        var created = await SendAsync(HttpMethod.Post, "/fhir/Patient", body, null, ("If-None-Exist", criteria));
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var again = await SendAsync(HttpMethod.Post, "/fhir/Patient", body, null, ("If-None-Exist", criteria));
        Assert.True(again.Status == HttpStatusCode.OK, again.Text);
        Assert.Equal(created.Body!.Value.GetProperty("id").GetString(), again.Body!.Value.GetProperty("id").GetString());
        Assert.Single(await FindAsync($"Patient?{ByNir(nir)}"));
    }

    [Fact]
    public async Task A_conditional_update_may_correct_the_identifier_it_matched_by_but_never_creates_a_record_its_criteria_would_not_find()
    {
        var wrong = Samples.ValidNir("1850375100103");
        var right = Samples.ValidNir("1850375100104");
        var id = await CreateAsync(Samples.Patient(family: "Corrige", nir: wrong));

        // One match: it is updated, its identifier corrected — as a PUT of its id could (decided: an update may change what its
        // criteria match; HAPI FHIR allows it too unless configured otherwise).
        var corrected = await PutAsync(ByNir(wrong), Samples.Patient(family: "Corrige", nir: right));
        Assert.True(corrected.Status == HttpStatusCode.OK, corrected.Text);
        Assert.Equal(id, corrected.Body!.Value.GetProperty("id").GetString());
        Assert.Equal([id], (await FindAsync($"Patient?{ByNir(right)}")).Select(p => p.GetProperty("id").GetString()));
        Assert.Empty(await FindAsync($"Patient?{ByNir(wrong)}"));

        // The same request again (a retry): nothing has the wrong NIR now, and the patient it would create has the right one, which
        // its criteria would never find: refused, and no second patient with the right NIR.
        var again = await PutAsync(ByNir(wrong), Samples.Patient(family: "Corrige", nir: right));
        Assert.True(again.Status == HttpStatusCode.BadRequest, again.Text);
        Assert.Equal("identifier", Expression(again.Body!.Value.GetProperty("issue")[0]));
        Assert.StartsWith("The criteria of a conditional update (PUT Patient?criteria): nothing matches them, and the Patient given does not meet identifier",
            Diagnostics(again), StringComparison.Ordinal);
        Assert.Equal([id], (await FindAsync($"Patient?{ByNir(right)}")).Select(p => p.GetProperty("id").GetString()));

        // Nor under the id the resource gives (an update as create of it).
        var withId = await PutAsync(ByNir(wrong), Samples.Patient(family: "Corrige", nir: right, id: "cond-unfound"));
        Assert.True(withId.Status == HttpStatusCode.BadRequest, withId.Text);
        using (var none = await Api.GetAsync("/fhir/Patient/cond-unfound")) Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        Assert.Single(await FindAsync($"Patient?{ByNir(right)}"));
    }

    [Fact]
    public async Task A_conditional_write_whose_resource_does_not_meet_its_criteria_fails_alone_in_a_batch_and_fails_a_transaction_whole()
    {
        var searched = Samples.ValidNir("1850375100105");
        var given = Samples.ValidNir("1850375100106");
        var neighbour = Samples.ValidNir("1850375100107");
        var create = $$"""{ "resource": {{Samples.Patient(family: "Voisin", nir: neighbour)}}, "request": { "method": "POST", "url": "Patient" } }""";
        var conditionalCreate = $$"""{ "resource": {{Samples.Patient(family: "Ecart", nir: given)}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": "{{ByNir(searched)}}" } }""";
        var conditionalUpdate = $$"""{ "resource": {{Samples.Patient(family: "Ecart", nir: given)}}, "request": { "method": "PUT", "url": "Patient?{{ByNir(searched)}}" } }""";

        foreach (var (entry, expression) in new[] { (conditionalCreate, "Bundle.entry[1].request.ifNoneExist"), (conditionalUpdate, "Bundle.entry[1].request.url") })
        {
            var transaction = await SendAsync(HttpMethod.Post, "/fhir", $$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{create}}, {{entry}} ] }""");
            Assert.True(transaction.Status == HttpStatusCode.BadRequest, transaction.Text);
            Assert.StartsWith("Bundle.entry[1] (", Diagnostics(transaction), StringComparison.Ordinal);
            Assert.Contains("does not meet identifier", Diagnostics(transaction), StringComparison.Ordinal);
            Assert.Equal(expression, Expression(transaction.Body!.Value.GetProperty("issue")[0]));
            Assert.Empty(await FindAsync($"Patient?{ByNir(neighbour)}"));
            Assert.Empty(await FindAsync($"Patient?{ByNir(given)}"));
        }

        var batch = await SendAsync(HttpMethod.Post, "/fhir", $$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ {{create}}, {{conditionalCreate}}, {{conditionalUpdate}} ] }""");
        Assert.True(batch.Status == HttpStatusCode.OK, batch.Text);
        var responses = batch.Body!.Value.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("response")).ToList();
        Assert.Equal(["201 Created", "400", "400"], responses.Select(r => r.GetProperty("status").GetString()));
        Assert.Equal("Bundle.entry[1].request.ifNoneExist", Expression(responses[1].GetProperty("outcome").GetProperty("issue")[0]));
        Assert.Equal("Bundle.entry[2].request.url", Expression(responses[2].GetProperty("outcome").GetProperty("issue")[0]));
        Assert.Single(await FindAsync($"Patient?{ByNir(neighbour)}"));
        Assert.Empty(await FindAsync($"Patient?{ByNir(given)}"));
    }

    [Fact]
    public async Task Review_a_conditional_update_racing_a_delete_by_id_does_not_bring_the_deleted_match_back()
    {
        if (Engine != Engine.Postgres) return;
        var nir = Samples.ValidNir("1850375100091");
        var id = await CreateAsync(Samples.Patient(family: "Course", nir: nir));
        var (deleted, updated) = await RaceBehindRowLockAsync(id,
            () => SendAsync(HttpMethod.Delete, $"/fhir/Patient/{id}"),
            () => PutAsync(ByNir(nir), Samples.Patient(family: "Revenant", nir: nir)));
        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        // After the delete nothing matches (a new record), or the update lost the race (409): the deleted record stays deleted.
        Assert.True(updated.Status == HttpStatusCode.Conflict || (updated.Status == HttpStatusCode.Created && updated.Body!.Value.GetProperty("id").GetString() != id), updated.Text);
        using var gone = await Api.GetAsync($"/fhir/Patient/{id}");
        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
    }

    [Fact]
    public async Task Review_a_conditional_update_racing_an_update_by_id_that_makes_the_match_no_longer_match_does_not_overwrite_it()
    {
        if (Engine != Engine.Postgres) return;
        var nir = Samples.ValidNir("1850375100092");
        var corrected = Samples.ValidNir("1850375100093");
        var id = await CreateAsync(Samples.Patient(family: "Course", nir: nir));
        var (byId, updated) = await RaceBehindRowLockAsync(id,
            () => SendAsync(HttpMethod.Put, $"/fhir/Patient/{id}", Samples.Patient(family: "Corrige", nir: corrected, id: id)),
            () => PutAsync(ByNir(nir), Samples.Patient(family: "Ecrase", nir: nir)));
        Assert.Equal(HttpStatusCode.OK, byId.Status);
        // The record no longer answers the criteria: it is not the one the conditional update writes.
        Assert.NotEqual(HttpStatusCode.OK, updated.Status);
        Assert.Equal("Corrige", Family(await ReadAsync($"Patient/{id}")));
    }

    public static TheoryData<string> OddCriteria() =>
    [
        "_id=", "_id", "=x", "&&&", "identifier=", "identifier=|", "identifier=%7C%7C", "identifier=a|b|c", "_id=a&_id=b", "_id=a,b", "_id=,,,",
        "family:exact=", "family:missing=true", "family:missing=", "family:contains=x", "family:text=x", "family:=x", ":=x", "family::exact=x",
        "_has:Observation:subject:code=1234", "_has:Observation:patient:_id=x", "_has=x", "general-practitioner.name=x", "general-practitioner:Practitioner.name=x",
        "general-practitioner.family=x", "link.family=x", "general-practitioner=Practitioner/", "general-practitioner=http://other.example/fhir/Practitioner/1",
        "general-practitioner:missing=true", "birthdate=ge", "birthdate=2020-13-45", "birthdate=9999999999", "birthdate=eq", "_lastUpdated=gt", "_lastUpdated=",
        "_lastUpdated=gt2020-01-01T00:00:00", "family=%00", "family=%FF%FE", "_id=%2e%2e%2f", "family=a%26b", "_text=x", "_content=x", "_filter=x", "_query=x",
        "_list=x", "_type=Patient", "_format=json", "_pretty=true", "_security=x", "_tag=x", "_profile=x", "gender=male&gender:not=female", "gender:not=",
        "telecom=", "phone=", "email=", "address=", "identifier:of-type=x|y|z", "identifier:text=x", "_id:not=x", "_id:missing=true", "_id:exact=x",
        "family=" + new string('a', 4000), "_id=" + string.Join(",", Enumerable.Range(0, 500).Select(i => "id" + i)),
        string.Join("&", Enumerable.Range(0, 200).Select(i => "family=a" + i)), "name=%E2%80%AE", "given=%F0%9F%98%80", "_since=2020", "_offset=1", "_count=", "_summary=",
        "identifier=urn:oid:1.2.250.1.213.1.4.8|", "identifier=|123", "death-date=x", "deceased=maybe", "active=maybe", "organization=", "_elements=id",
    ];

    [Theory]
    [MemberData(nameof(OddCriteria))]
    public async Task Review_odd_criteria_are_never_a_500(string criteria)
    {
        var put = await SendAsync(HttpMethod.Put, "/fhir/Patient?" + criteria, Samples.Patient(family: "Odd"));
        Assert.True((int)put.Status < 500, $"PUT {criteria}: {put.Text}");
        var delete = await SendAsync(HttpMethod.Delete, "/fhir/Patient?" + criteria);
        Assert.True((int)delete.Status < 500, $"DELETE {criteria}: {delete.Text}");
        var url = JsonSerializer.Serialize("Patient?" + criteria);
        foreach (var (type, entry) in new[] { "batch", "transaction" }.SelectMany(t => new[] {
            (t, $$"""{ "resource": {{Samples.Patient(family: "Odd")}}, "request": { "method": "PUT", "url": {{url}} } }"""),
            (t, $$"""{ "request": { "method": "DELETE", "url": {{url}} } }""") }))
        {
            var bundle = await SendAsync(HttpMethod.Post, "/fhir", $$"""{ "resourceType": "Bundle", "type": "{{type}}", "entry": [ {{entry}} ] }""");
            Assert.True((int)bundle.Status < 500, $"{type} {criteria}: {bundle.Text}");
            // The entries' statuses, not the text: the response Bundle's random id once began with "500".
            if (type == "batch")
            {
                Assert.All(bundle.Body!.Value.GetProperty("entry").EnumerateArray(),
                    e => Assert.False(e.GetProperty("response").GetProperty("status").GetString()!.StartsWith('5'), $"{type} {criteria}: {bundle.Text}"));
            }
        }
    }

    [Fact]
    public async Task Metadata_says_conditional_update_and_single_conditional_delete_for_every_record_type()
    {
        var metadata = await SendAsync(HttpMethod.Get, "/fhir/metadata");
        var rest = metadata.Body!.Value.GetProperty("rest")[0];
        foreach (var resource in rest.GetProperty("resource").EnumerateArray().Where(r => r.GetProperty("type").GetString() != "AuditEvent"))
        {
            Assert.True(resource.GetProperty("conditionalCreate").GetBoolean());
            Assert.True(resource.GetProperty("conditionalUpdate").GetBoolean());
            Assert.Equal("single", resource.GetProperty("conditionalDelete").GetString());
        }
        var documentation = rest.GetProperty("documentation").GetString()!;
        Assert.Contains("update (PUT [type]?criteria)", documentation, StringComparison.Ordinal);
        Assert.Contains("several are 412 (one record at a time)", documentation, StringComparison.Ordinal);
    }
}

public sealed class ConditionalWriteTests_Sqlite(FhirServerFixture_Sqlite shared) : ConditionalWriteTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class ConditionalWriteTests_Postgres(FhirServerFixture_Postgres shared) : ConditionalWriteTests(shared), IClassFixture<FhirServerFixture_Postgres>;
