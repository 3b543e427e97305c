// Searches inside a transaction Bundle (GET [type]?criteria, GET [type]), as an integrating system relies on them: R4 runs a
// transaction's GETs after its writes and they see those writes; the result is a searchset as the entry's resource. The search
// is the search alone's, authorized, guarded and audited the same; a transaction that fails returns no search result and
// changes nothing. On SQLite and PostgreSQL (the two derived classes at the end).
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class TransactionSearchTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    private sealed record Answer(HttpStatusCode Status, JsonElement Body, string Text)
    {
        public string Diagnostics => string.Join(" | ", Body.GetProperty("issue").EnumerateArray().Select(i => i.GetProperty("diagnostics").GetString()));
    }

    private async Task<Answer> TransactionAsync(string entries, HttpClient? client = null)
    {
        using var response = await (client ?? Api).PostAsync("/fhir", FhirContent.Json($$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ {{entries}} ] }"""));
        var text = await response.Content.ReadAsStringAsync();
        return new Answer(response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), text);
    }

    private async Task<string> CreateAsync(string json)
    {
        var type = JsonDocument.Parse(json).RootElement.GetProperty("resourceType").GetString();
        using var response = await Api.PostAsync($"/fhir/{type}", FhirContent.Json(json));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body.ToString());
        return body.GetProperty("id").GetString()!;
    }

    private async Task<List<string>> FindAsync(string query)
    {
        using var response = await Api.GetAsync("/fhir/" + query);
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return Ids(body);
    }

    private static List<string> Ids(JsonElement searchset)
    {
        Assert.Equal("searchset", searchset.GetProperty("type").GetString());
        return searchset.TryGetProperty("entry", out var entries) ? entries.EnumerateArray().Select(e => e.GetProperty("resource").GetProperty("id").GetString()!).ToList() : [];
    }

    private static string Post(string json, string? fullUrl = null) =>
        $$"""{ {{(fullUrl is null ? "" : $"\"fullUrl\": \"{fullUrl}\", ")}}"resource": {{json}}, "request": { "method": "POST", "url": "{{JsonDocument.Parse(json).RootElement.GetProperty("resourceType").GetString()}}" } }""";

    private static string Get(string url) => $$"""{ "request": { "method": "GET", "url": "{{url}}" } }""";

    private static string? Link(JsonElement searchset, string relation) =>
        searchset.GetProperty("link").EnumerateArray().Where(l => l.GetProperty("relation").GetString() == relation).Select(l => l.GetProperty("url").GetString()).FirstOrDefault();

    [Fact]
    public async Task A_transaction_that_creates_a_patient_finds_it_by_family_name_in_its_own_search_whatever_the_entries_order()
    {
        var before = await CreateAsync(Samples.Patient(family: "Anterieure"));
        // The searches come first in the bundle; R4 runs GETs after the writes, and they see them.
        var answer = await TransactionAsync(string.Join(", ",
            Get("Patient?family=nouvelle"),
            Get("Patient"),
            Post(Samples.Patient(family: "Nouvelle"), "urn:uuid:3b8f6c1e-4d1a-4e0b-9c55-000000000001")));
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Text);
        Assert.Equal("transaction-response", answer.Body.GetProperty("type").GetString());
        var entries = answer.Body.GetProperty("entry").EnumerateArray().ToList();
        Assert.StartsWith("201", entries[2].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        var created = entries[2].GetProperty("resource").GetProperty("id").GetString()!;

        // The search's result is a searchset as the entry's resource, status 200.
        Assert.StartsWith("200", entries[0].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        var byName = entries[0].GetProperty("resource");
        Assert.Equal([created], Ids(byName));
        Assert.Equal(1, byName.GetProperty("total").GetInt32());
        Assert.Equal("Nouvelle", byName.GetProperty("entry")[0].GetProperty("resource").GetProperty("name")[0].GetProperty("family").GetString());
        // Its self link is the sealed token a search alone gives: the family searched is in no URL.
        Assert.Contains("/fhir/Patient?_page=", Link(byName, "self"), StringComparison.Ordinal);
        Assert.DoesNotContain("nouvelle", answer.Text.Replace("\"Nouvelle\"", "", StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase);

        // GET [type] without criteria: every patient, the one just created among them.
        Assert.StartsWith("200", entries[1].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        Assert.Equal(new[] { before, created }.Order(StringComparer.Ordinal), Ids(entries[1].GetProperty("resource")).Order(StringComparer.Ordinal));
        // Committed: found alone too.
        Assert.Equal([created], await FindAsync("Patient?family=nouvelle"));
    }

    [Fact]
    public async Task A_search_in_a_transaction_that_names_an_entry_by_its_urn_uuid_searches_the_record_the_transaction_wrote()
    {
        const string patient = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";
        var other = await CreateAsync(Samples.Patient(family: "Voisine"));
        await CreateAsync(Samples.Observation($"Patient/{other}"));
        // R4 (resolving references in Bundles): the urn:uuid: in the criteria is replaced by the Patient/id the transaction creates,
        // plain or URL-encoded, alone or among alternatives, under subject and its alias patient.
        var answer = await TransactionAsync(string.Join(", ",
            Get($"Observation?subject={patient}"),
            Get($"Observation?subject={Uri.EscapeDataString(patient)}"),
            Get($"Observation?patient=Patient/{other},{patient}"),
            Post(Samples.Patient(family: "Referencee"), patient),
            Post(Samples.Observation(patient))));
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Text);
        var entries = answer.Body.GetProperty("entry").EnumerateArray().ToList();
        var created = entries[3].GetProperty("resource").GetProperty("id").GetString()!;
        var observation = entries[4].GetProperty("resource").GetProperty("id").GetString()!;
        Assert.Equal($"Patient/{created}", entries[4].GetProperty("resource").GetProperty("subject").GetProperty("reference").GetString());
        Assert.Equal([observation], Ids(entries[0].GetProperty("resource")));
        Assert.Equal([observation], Ids(entries[1].GetProperty("resource")));
        Assert.Equal(2, Ids(entries[2].GetProperty("resource")).Count);
        Assert.Contains(observation, Ids(entries[2].GetProperty("resource")));
        Assert.DoesNotContain("urn:uuid", answer.Text, StringComparison.Ordinal);

        // A conditional create that matches names the record it found, not the id it would have created under: the search finds
        // the observations already filed under that patient.
        var again = await TransactionAsync(string.Join(", ",
            Get($"Observation?subject={patient}"),
            $$"""{ "fullUrl": "{{patient}}", "resource": {{Samples.Patient(family: "Referencee")}}, "request": { "method": "POST", "url": "Patient", "ifNoneExist": "identifier={{Samples.InsNir}}|{{Samples.ValidNir()}}&family=referencee" } }"""));
        Assert.True(again.Status == HttpStatusCode.OK, again.Text);
        Assert.Equal(created, again.Body.GetProperty("entry")[1].GetProperty("resource").GetProperty("id").GetString());
        Assert.Equal([observation], Ids(again.Body.GetProperty("entry")[0].GetProperty("resource")));
    }

    [Fact]
    public async Task A_search_in_a_transaction_naming_a_urn_uuid_that_no_entry_has_is_a_400_OperationOutcome_and_changes_nothing()
    {
        var answer = await TransactionAsync(string.Join(", ",
            Post(Samples.Patient(family: "Orpheline"), "urn:uuid:0c6b1f3e-7f43-4b1a-9d2e-6a1c2b3d4e5f"),
            Get("Observation?subject=urn:uuid:9f1d2c3b-0000-4000-8000-000000000009")));
        Assert.True(answer.Status == HttpStatusCode.BadRequest, answer.Text);
        Assert.Equal("OperationOutcome", answer.Body.GetProperty("resourceType").GetString());
        Assert.Contains("Bundle.entry[1]", answer.Diagnostics, StringComparison.Ordinal);
        Assert.Contains("urn:uuid:9f1d2c3b-0000-4000-8000-000000000009", answer.Diagnostics, StringComparison.Ordinal);
        Assert.Contains("names no entry of this transaction", answer.Diagnostics, StringComparison.Ordinal);
        Assert.Empty(await FindAsync("Patient?family=orpheline"));
    }

    [Fact]
    public async Task A_conditional_write_in_a_transaction_whose_criteria_name_an_entry_by_urn_uuid_is_a_400_and_changes_nothing()
    {
        // Its criteria are matched before the entries are written: not resolved, they would match nothing named so, and the
        // conditional create or update would create. Refused, saying so; an unknown urn:uuid: as one in a search is.
        const string patient = "urn:uuid:2f4e6a8c-1b3d-4f5a-8c7e-9d0b1a2c3e4f";
        const string unknown = "urn:uuid:7a7a7a7a-0000-4000-8000-00000000000a";
        var observation = Samples.Observation(patient, loinc: "1558-6");
        foreach (var (entry, expected) in new[]
        {
            ($$"""{ "resource": {{observation}}, "request": { "method": "POST", "url": "Observation", "ifNoneExist": "subject={{patient}}&code=1558-6" } }""", "does not resolve"),
            ($$"""{ "resource": {{observation}}, "request": { "method": "PUT", "url": "Observation?subject={{Uri.EscapeDataString(patient)}}&code=1558-6" } }""", "does not resolve"),
            ($$"""{ "request": { "method": "DELETE", "url": "Observation?patient={{patient}}" } }""", "does not resolve"),
            ($$"""{ "resource": {{observation}}, "request": { "method": "POST", "url": "Observation", "ifNoneExist": "subject={{unknown}}" } }""", "names no entry"),
        })
        {
            var answer = await TransactionAsync(string.Join(", ", Post(Samples.Patient(family: "Conditionnee"), patient), entry));
            Assert.True(answer.Status == HttpStatusCode.BadRequest, answer.Text);
            Assert.Equal("OperationOutcome", answer.Body.GetProperty("resourceType").GetString());
            Assert.StartsWith("Bundle.entry[1]", answer.Diagnostics, StringComparison.Ordinal);
            Assert.Contains(expected, answer.Diagnostics, StringComparison.Ordinal);
        }
        Assert.Empty(await FindAsync("Patient?family=conditionnee"));
        Assert.Empty(await FindAsync("Observation?code=http://loinc.org|1558-6"));
    }

    [Fact]
    public async Task A_search_in_a_transaction_answers_its_first_page_with_count_honoured_and_a_next_link_that_continues_once_committed()
    {
        var answer = await TransactionAsync(string.Join(", ",
            Post(Samples.Patient(family: "Paginee", given: "Un")),
            Post(Samples.Patient(family: "Paginee", given: "Deux")),
            Post(Samples.Patient(family: "Paginee", given: "Trois")),
            Get("Patient?family=paginee&_count=2")));
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Text);
        var entries = answer.Body.GetProperty("entry").EnumerateArray().ToList();
        var created = entries.Take(3).Select(e => e.GetProperty("resource").GetProperty("id").GetString()!).ToList();
        var page = entries[3].GetProperty("resource");
        var first = Ids(page);
        Assert.Equal(2, first.Count);
        Assert.False(page.TryGetProperty("total", out _)); // as a search alone: no total across pages unless _total=accurate
        var next = Link(page, "next");
        Assert.NotNull(next);
        using var followed = await Api.GetAsync(new Uri(next).PathAndQuery);
        var rest = await followed.BodyAsync();
        Assert.True(followed.StatusCode == HttpStatusCode.OK, rest.ToString());
        Assert.Equal(created.Order(StringComparer.Ordinal), first.Concat(Ids(rest)).Order(StringComparer.Ordinal));

        // _summary=count and _total=accurate count what the transaction wrote as well.
        var counted = await TransactionAsync(string.Join(", ",
            Post(Samples.Patient(family: "Paginee", given: "Quatre")),
            Get("Patient?family=paginee&_summary=count"),
            Get("Patient?family=paginee&_count=1&_total=accurate")));
        Assert.True(counted.Status == HttpStatusCode.OK, counted.Text);
        Assert.Equal(4, counted.Body.GetProperty("entry")[1].GetProperty("resource").GetProperty("total").GetInt32());
        Assert.Equal(4, counted.Body.GetProperty("entry")[2].GetProperty("resource").GetProperty("total").GetInt32());

        // A paging token continues a search answered before, outside the transaction: refused, naming it, and nothing is written.
        var token = new Uri(next).Query;
        var paged = await TransactionAsync(string.Join(", ", Post(Samples.Patient(family: "Jamaisecrite")), Get("Patient" + token)));
        Assert.True(paged.Status == HttpStatusCode.BadRequest, paged.Text);
        Assert.Equal("OperationOutcome", paged.Body.GetProperty("resourceType").GetString());
        Assert.Contains("Bundle.entry[1]", paged.Diagnostics, StringComparison.Ordinal);
        Assert.Contains("_page", paged.Diagnostics, StringComparison.Ordinal);
        Assert.Empty(await FindAsync("Patient?family=jamaisecrite"));
    }

    [Fact]
    public async Task A_search_in_a_transaction_whose_other_entry_fails_returns_no_search_result_and_changes_nothing()
    {
        // The read after the search fails: the search ran, and its page does not leave.
        var failed = await TransactionAsync(string.Join(", ",
            Post(Samples.Patient(family: "Annulee")),
            Get("Patient?family=annulee"),
            Get("Patient/inconnue")));
        Assert.True(failed.Status == HttpStatusCode.NotFound, failed.Text);
        Assert.Equal("OperationOutcome", failed.Body.GetProperty("resourceType").GetString());
        Assert.StartsWith("Bundle.entry[2] (GET Patient)", failed.Diagnostics, StringComparison.Ordinal);
        Assert.DoesNotContain("searchset", failed.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("Annulee", failed.Text, StringComparison.Ordinal);
        Assert.Empty(await FindAsync("Patient?family=annulee"));

        // A write refused once the whole transaction is in place (after its GETs: an observation filed under a patient that is
        // not here): the search that found the observation returns nothing either, and the observation is not kept.
        var refused = await TransactionAsync(string.Join(", ",
            Post(Samples.Observation("Patient/absente", loinc: "1558-6")),
            Get("Observation?code=http://loinc.org|1558-6")));
        Assert.True(refused.Status == HttpStatusCode.UnprocessableEntity, refused.Text);
        Assert.Equal("OperationOutcome", refused.Body.GetProperty("resourceType").GetString());
        Assert.DoesNotContain("searchset", refused.Text, StringComparison.Ordinal);
        Assert.Empty(await FindAsync("Observation?code=http://loinc.org|1558-6"));
    }

    [Fact]
    public async Task A_bad_search_parameter_in_a_transaction_is_a_400_OperationOutcome_naming_it_for_the_whole_transaction_and_changes_nothing()
    {
        foreach (var (query, named) in new[] { ("Patient?famille=dupont", "famille"), ("Patient?birthdate=hier", "birthdate"), ("Patient?family=a&_count=deux", "_count") })
        {
            var answer = await TransactionAsync(string.Join(", ", Post(Samples.Patient(family: "Invalidee")), Get(query)));
            Assert.True(answer.Status == HttpStatusCode.BadRequest, $"{query}: {answer.Text}");
            Assert.Equal("OperationOutcome", answer.Body.GetProperty("resourceType").GetString());
            Assert.StartsWith("Bundle.entry[1] (GET Patient)", answer.Diagnostics, StringComparison.Ordinal);
            Assert.Contains(named, answer.Diagnostics, StringComparison.Ordinal);
            // The same parameter alone is refused the same way.
            using var alone = await Api.GetAsync("/fhir/" + query);
            Assert.Equal(HttpStatusCode.BadRequest, alone.StatusCode);
        }
        Assert.Empty(await FindAsync("Patient?family=invalidee"));
    }

    [Fact]
    public async Task A_transaction_with_more_searches_than_the_bound_is_refused_whole_and_changes_nothing()
    {
        // Its searches run while every other write of the server waits: twenty at most.
        var searches = Enumerable.Repeat(Get("Patient?family=borne"), 21);
        var answer = await TransactionAsync(string.Join(", ", [Post(Samples.Patient(family: "Borne")), .. searches]));
        Assert.True(answer.Status == HttpStatusCode.BadRequest, answer.Text);
        Assert.Contains("at most 20 searches", answer.Diagnostics, StringComparison.Ordinal);
        Assert.Empty(await FindAsync("Patient?family=borne"));
        var twenty = await TransactionAsync(string.Join(", ", [Post(Samples.Patient(family: "Borne")), .. searches.Take(20)]));
        Assert.True(twenty.Status == HttpStatusCode.OK, twenty.Text);
    }

    [Fact]
    public async Task A_search_in_a_transaction_is_allowed_or_refused_by_the_clients_scopes_as_the_search_alone_is()
    {
        var patient = await CreateAsync(Samples.Patient(family: "Portee"));
        await CreateAsync(Samples.Observation($"Patient/{patient}"));
        // Create, read and search patients; observations neither read nor searched.
        using var client = await Server.ClientAsync(TenantName, "system/Patient.crs");
        var allowed = await TransactionAsync(string.Join(", ", Post(Samples.Patient(family: "Portee", given: "Marie")), Get("Patient?family=portee")), client);
        Assert.True(allowed.Status == HttpStatusCode.OK, allowed.Text);
        Assert.Equal(2, Ids(allowed.Body.GetProperty("entry")[1].GetProperty("resource")).Count);

        foreach (var (query, reason) in new[]
        {
            ($"Observation?subject=Patient/{patient}", "The granted scopes do not allow search on Observation."),
            ("Patient?family=portee&_revinclude=Observation:subject", "The granted scopes do not allow reading Observation, requested by _revinclude."),
        })
        {
            using (var alone = await client.GetAsync("/fhir/" + query))
            {
                Assert.Equal(HttpStatusCode.Forbidden, alone.StatusCode);
                Assert.Contains(reason, (await alone.Content.ReadAsStringAsync()), StringComparison.Ordinal);
            }
            var refused = await TransactionAsync(string.Join(", ", Post(Samples.Patient(family: "Refusee")), Get(query)), client);
            Assert.True(refused.Status == HttpStatusCode.Forbidden, $"{query}: {refused.Text}");
            Assert.StartsWith("Bundle.entry[1]", refused.Diagnostics, StringComparison.Ordinal);
            Assert.Contains(reason, refused.Diagnostics, StringComparison.Ordinal);
            Assert.DoesNotContain("searchset", refused.Text, StringComparison.Ordinal);
        }
        Assert.Empty(await FindAsync("Patient?family=refusee"));

        // Each refusal is on the chain as the refused search, alone and in the transaction alike.
        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        await Server.Store.Audit.CatchUpAsync();
        var searches = await Server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "test"), new AuditQuery { Actions = [AuditAction.Search], Count = 200 }, CancellationToken.None) ?? [];
        Assert.Equal(2, searches.Count(e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note!.Contains("do not allow search on Observation", StringComparison.Ordinal)));
        Assert.Equal(2, searches.Count(e => e.Outcome == AuditOutcome.MinorFailure && e.Detail.Note!.Contains("requested by _revinclude", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_search_in_a_transaction_puts_an_audit_entry_on_the_chain_for_each_patient_it_returns_and_none_when_the_transaction_fails()
    {
        var first = await CreateAsync(Samples.Patient(family: "Temoin", given: "Paul"));
        var second = await CreateAsync(Samples.Patient(family: "Temoin", given: "Pierre"));
        var answer = await TransactionAsync(string.Join(", ",
            Post(Samples.Observation($"Patient/{first}")),
            Get("Patient?family=temoin"),
            Get($"Observation?subject=Patient/{first}")));
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Text);
        var observation = answer.Body.GetProperty("entry")[0].GetProperty("resource").GetProperty("id").GetString()!;
        Assert.Equal([observation], Ids(answer.Body.GetProperty("entry")[2].GetProperty("resource")));

        var tenant = (await Server.Store.Tenants.FindAsync(TenantName, CancellationToken.None))!;
        await Server.Store.Audit.CatchUpAsync();
        async Task<List<AuditEntry>> SearchesOfAsync(string patient) =>
            [.. await Server.Store.AuditLog.SearchAsync(AccessContext.Operator(tenant, "test"), new AuditQuery { Patient = patient, Actions = [AuditAction.Search], Count = 100 },
                CancellationToken.None) ?? []];
        var ofFirst = await SearchesOfAsync(first);
        Assert.Single(ofFirst, e => e.Outcome == AuditOutcome.Success && e.Detail.Records.SequenceEqual([$"Patient/{first}"]));
        Assert.Single(ofFirst, e => e.Outcome == AuditOutcome.Success && e.Detail.Records.SequenceEqual([$"Observation/{observation}"]));
        var ofSecond = await SearchesOfAsync(second);
        Assert.Single(ofSecond, e => e.Outcome == AuditOutcome.Success && e.Detail.Records.SequenceEqual([$"Patient/{second}"]));
        Assert.All(ofFirst.Concat(ofSecond), e => Assert.Equal("client", e.Detail.PrincipalKind));

        // A transaction that fails after its search returned nothing: no entry says the patient left.
        var failed = await TransactionAsync(string.Join(", ", Get("Patient?family=temoin"), Get("Patient/inconnue")));
        Assert.Equal(HttpStatusCode.NotFound, failed.Status);
        await Server.Store.Audit.CatchUpAsync();
        Assert.Equal(ofSecond.Count, (await SearchesOfAsync(second)).Count);
        Assert.True((await Server.Store.AuditLog.VerifyAsync(tenant.Id, null, CancellationToken.None)).Valid);
    }
}

public sealed class TransactionSearchTests_Sqlite(FhirServerFixture_Sqlite shared) : TransactionSearchTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class TransactionSearchTests_Postgres(FhirServerFixture_Postgres shared) : TransactionSearchTests(shared), IClassFixture<FhirServerFixture_Postgres>;
