// _summary (true, text, data) and _elements (R4 search.html, "Summary" and "Elements") on a read, a version read and a search:
// R4's parts of each record, tagged SUBSETTED; a bad value is a 400 that reads nothing; a record tagged SUBSETTED is not
// written back. On both engines (the derived classes at the end).
using System.Net;
using System.Text.Json;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class SummaryElementsTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    private const string Subsetted = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue|SUBSETTED";

    /// <summary>A Patient with elements of every kind: summary (name, birthDate), not (text, contact, communication, extension).</summary>
    private static string FullPatient(string family) => $$"""
        {
          "resourceType": "Patient",
          "meta": { "tag": [{ "system": "urn:example:tags", "code": "vip" }] },
          "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">{{family}}</div>" },
          "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": { "city": "Rennes" } }],
          "identifier": [{ "system": "urn:oid:1.2.250.1.213.1.4.10", "value": "IPP-{{family}}" }],
          "active": true,
          "name": [{ "family": "{{family}}", "given": ["Anne"] }],
          "gender": "female",
          "birthDate": "1971-05-02",
          "_birthDate": { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1971-05-02T06:30:00+01:00" }] },
          "contact": [{ "name": { "family": "Voisin" }, "telecom": [{ "system": "phone", "value": "0240000000" }] }],
          "communication": [{ "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "fr" }] } }]
        }
        """;

    /// <summary>An Observation whose component has a summary element (code, value) and one that is not (interpretation).</summary>
    private static string ObservationWithComponent(string patient) => $$"""
        {
          "resourceType": "Observation",
          "status": "final",
          "code": { "coding": [{ "system": "http://loinc.org", "code": "85354-9" }] },
          "subject": { "reference": "Patient/{{patient}}" },
          "effectiveDateTime": "2026-03-01T10:00:00+01:00",
          "note": [{ "text": "au repos" }],
          "component": [{
            "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
            "valueQuantity": { "value": 128, "unit": "mm[Hg]" },
            "interpretation": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N" }] }]
          }]
        }
        """;

    private async Task<(HttpStatusCode Status, JsonElement Body, string? ETag)> GetAsync(string url)
    {
        using var response = await Api.GetAsync(url);
        var body = await response.BodyAsync();
        return (response.StatusCode, body, response.Headers.ETag?.ToString());
    }

    private static string[] Names(JsonElement resource) => [.. resource.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];

    private static string[] Tags(JsonElement resource) => resource.TryGetProperty("meta", out var meta) && meta.TryGetProperty("tag", out var tags)
        ? [.. tags.EnumerateArray().Select(t => t.GetProperty("system").GetString() + "|" + t.GetProperty("code").GetString())]
        : [];

    [Fact]
    public async Task A_read_with_summary_true_keeps_the_summary_elements_tagged_subsetted_and_the_version()
    {
        var id = (await CreateAsync("Patient", FullPatient("Resume"))).GetProperty("id").GetString()!;
        var whole = await GetAsync($"/fhir/Patient/{id}");
        foreach (var url in new[] { $"/fhir/Patient/{id}?_summary=true", $"/fhir/Patient/{id}/_history/1?_summary=true" })
        {
            var (status, body, etag) = await GetAsync(url);
            Assert.True(status == HttpStatusCode.OK, $"{url}: {(int)status} {body}");
            Assert.Equal(["_birthDate", "active", "birthDate", "gender", "id", "identifier", "meta", "name", "resourceType"], Names(body));
            Assert.Equal(["urn:example:tags|vip", Subsetted], Tags(body));
            Assert.Equal("1", body.GetProperty("meta").GetProperty("versionId").GetString());
            Assert.Equal(whole.ETag, etag);
            // A kept element's value is the whole of it.
            Assert.Equal(whole.Body.GetProperty("name").GetRawText(), body.GetProperty("name").GetRawText());
        }
        // The whole record is untouched, and not tagged.
        Assert.Equal(["urn:example:tags|vip"], Tags((await GetAsync($"/fhir/Patient/{id}")).Body));
        Assert.True(whole.Body.TryGetProperty("contact", out _));
    }

    [Fact]
    public async Task Summary_true_keeps_only_the_summary_elements_of_a_kept_backbone_element()
    {
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Composante"))).GetProperty("id").GetString()!;
        var id = (await CreateAsync("Observation", ObservationWithComponent(patient))).GetProperty("id").GetString()!;
        var body = (await GetAsync($"/fhir/Observation/{id}?_summary=true")).Body;
        Assert.False(body.TryGetProperty("note", out _));
        var component = body.GetProperty("component")[0];
        Assert.Equal(["code", "valueQuantity"], Names(component));
        Assert.Equal(128, component.GetProperty("valueQuantity").GetProperty("value").GetInt32());
    }

    [Fact]
    public async Task Summary_text_and_data_and_elements_keep_what_R4_says()
    {
        var id = (await CreateAsync("Patient", FullPatient("Parties"))).GetProperty("id").GetString()!;
        var text = (await GetAsync($"/fhir/Patient/{id}?_summary=text")).Body;
        // Patient.active is a modifier (an inactive record reads otherwise as a valid one): it comes with any part.
        Assert.Equal(["active", "id", "meta", "resourceType", "text"], Names(text));
        var data = (await GetAsync($"/fhir/Patient/{id}?_summary=data")).Body;
        Assert.False(data.TryGetProperty("text", out _));
        Assert.True(data.TryGetProperty("contact", out _) && data.TryGetProperty("extension", out _));
        Assert.Contains(Subsetted, Tags(data));
        // _elements: those named (a primitive's extensions with it), with id and meta.
        var elements = (await GetAsync($"/fhir/Patient/{id}?_elements=birthDate,contact")).Body;
        Assert.Equal(["_birthDate", "active", "birthDate", "contact", "id", "meta", "resourceType"], Names(elements));
        Assert.Contains(Subsetted, Tags(elements));

        // An Observation's mandatory elements (status, code) come whatever is named; a choice by its name, with or without [x].
        var patient = (await CreateAsync("Patient", Samples.Patient(family: "Obligatoire"))).GetProperty("id").GetString()!;
        var observation = (await CreateAsync("Observation", Samples.Observation("Patient/" + patient))).GetProperty("id").GetString()!;
        foreach (var named in new[] { "value", "value[x]", "valueQuantity" })
        {
            var body = (await GetAsync($"/fhir/Observation/{observation}?_elements={named}")).Body;
            Assert.Equal(["code", "id", "meta", "resourceType", "status", "valueQuantity"], Names(body));
        }
        var summaryText = (await GetAsync($"/fhir/Observation/{observation}?_summary=text")).Body;
        Assert.Equal(["code", "id", "meta", "resourceType", "status"], Names(summaryText));
    }

    [Fact]
    public async Task A_search_cuts_every_record_on_every_page_and_elements_leaves_the_included_records_whole()
    {
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add((await CreateAsync("Patient", FullPatient("Feuillete"))).GetProperty("id").GetString()!);
        var page = await SearchAsync("Patient?family=feuillete&_summary=true&_count=2");
        var seen = new List<string>();
        while (true)
        {
            foreach (var entry in page.GetProperty("entry").EnumerateArray())
            {
                var resource = entry.GetProperty("resource");
                Assert.False(resource.TryGetProperty("contact", out _), resource.GetRawText());
                Assert.Contains(Subsetted, Tags(resource));
                seen.Add(resource.GetProperty("id").GetString()!);
            }
            var next = page.GetProperty("link").EnumerateArray().FirstOrDefault(l => l.GetProperty("relation").GetString() == "next");
            if (next.ValueKind == JsonValueKind.Undefined) break;
            var url = next.GetProperty("url").GetString()!;
            page = await SearchAsync(url[(url.IndexOf("/fhir/", StringComparison.Ordinal) + 6)..]);
        }
        Assert.Equal(ids.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));

        var observation = (await CreateAsync("Observation", ObservationWithComponent(ids[0]))).GetProperty("id").GetString()!;
        var bundle = await SearchAsync($"Observation?_id={observation}&_include=Observation:patient&_elements=subject");
        var entries = bundle.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("resource")).ToList();
        Assert.Equal(["code", "id", "meta", "resourceType", "status", "subject"], Names(entries.Single(e => e.GetProperty("resourceType").GetString() == "Observation")));
        var included = entries.Single(e => e.GetProperty("resourceType").GetString() == "Patient");
        Assert.True(included.TryGetProperty("contact", out _));
        Assert.DoesNotContain(Subsetted, Tags(included));
        // _summary cuts the included records too.
        bundle = await SearchAsync($"Observation?_id={observation}&_include=Observation:patient&_summary=true");
        Assert.All(bundle.GetProperty("entry").EnumerateArray(), e => Assert.Contains(Subsetted, Tags(e.GetProperty("resource"))));

        // A POST _search takes them from its form.
        using var posted = await Api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent([new("family", "feuillete"), new("_elements", "name")]));
        var postedBundle = await posted.BodyAsync();
        Assert.All(postedBundle.GetProperty("entry").EnumerateArray(), e => Assert.Equal(["active", "id", "meta", "name", "resourceType"], Names(e.GetProperty("resource"))));
    }

    [Theory]
    [InlineData("_summary=maybe", "_summary")]
    [InlineData("_summary=count", "count is a search's")]
    [InlineData("_elements=nmae", "Patient has no element 'nmae'")]
    [InlineData("_elements=name,,gender", "without empty ones")]
    [InlineData("_summary=true&_elements=name", "cannot be combined")]
    [InlineData("_elements=name&_elements=gender", "given twice")]
    public async Task A_read_with_a_subset_it_cannot_give_is_a_400_that_says_why(string query, string said)
    {
        var id = (await CreateAsync("Patient", FullPatient("Refus"))).GetProperty("id").GetString()!;
        foreach (var url in new[] { $"/fhir/Patient/{id}?{query}", $"/fhir/Patient/{id}/_history/1?{query}" })
        {
            var (status, body, _) = await GetAsync(url);
            Assert.True(status == HttpStatusCode.BadRequest, $"{url}: {(int)status} {body}");
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.Contains(said, body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Many_unknown_element_names_get_one_issue_not_one_each()
    {
        var id = (await CreateAsync("Patient", FullPatient("Multiple"))).GetProperty("id").GetString()!;
        var (status, body, _) = await GetAsync($"/fhir/Patient/{id}?_elements={string.Join(',', Enumerable.Range(0, 500).Select(i => "x" + i))}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Single(body.GetProperty("issue").EnumerateArray());
        Assert.Contains("'x0'", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("_summary=maybe")]
    [InlineData("_elements=nmae")]
    [InlineData("_summary=data&_elements=name")]
    [InlineData("_elements=name&_elements=gender")]
    public async Task A_search_with_a_subset_it_cannot_give_is_a_400(string query)
    {
        using var response = await Api.GetAsync($"/fhir/Patient?family=refus&{query}");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("OperationOutcome", (await response.BodyAsync()).GetProperty("resourceType").GetString());
    }

    [Fact]
    public async Task A_record_read_in_part_is_not_written_back()
    {
        var id = (await CreateAsync("Patient", FullPatient("Partiel"))).GetProperty("id").GetString()!;
        var summary = (await GetAsync($"/fhir/Patient/{id}?_summary=true")).Body.GetRawText();
        using (var update = await Api.PutAsync($"/fhir/Patient/{id}", FhirContent.Json(summary)))
        {
            var body = await update.BodyAsync();
            Assert.True(update.StatusCode == HttpStatusCode.BadRequest, $"{(int)update.StatusCode} {body}");
            Assert.Contains("SUBSETTED", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        using (var create = await Api.PostAsync("/fhir/Patient", FhirContent.Json(summary.Replace($"\"id\":\"{id}\",", "", StringComparison.Ordinal))))
        {
            var body = await create.BodyAsync();
            Assert.True(create.StatusCode == HttpStatusCode.BadRequest, $"{(int)create.StatusCode} {body}");
            Assert.Contains("SUBSETTED", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        // Nothing changed: the record is whole, at version 1.
        var read = (await GetAsync($"/fhir/Patient/{id}")).Body;
        Assert.Equal("1", read.GetProperty("meta").GetProperty("versionId").GetString());
        Assert.True(read.TryGetProperty("contact", out _));
        Assert.Single(Ids(await SearchAsync("Patient?family=partiel")));
    }
}

public sealed class SummaryElementsTests_Sqlite(FhirServerFixture_Sqlite shared) : SummaryElementsTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class SummaryElementsTests_Postgres(FhirServerFixture_Postgres shared) : SummaryElementsTests(shared), IClassFixture<FhirServerFixture_Postgres>;
