// _pretty (R4 http.html, "Parameters for all interactions"): true asks for human-readable JSON — every FHIR JSON answer indented,
// a resource, a Bundle, an OperationOutcome, the CapabilityStatement —, false or absent for compact JSON; any other value is a
// 400 that runs nothing. On both engines (the derived classes at the end).
using System.Net;
using System.Text.Json.Nodes;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class PrettyOutputTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    private async Task<(HttpStatusCode Status, string Text)> SendAsync(HttpMethod method, string url, string? body = null)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is not null) request.Content = FhirContent.Json(body);
        using var response = await Api.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static string With(string url, string parameter) => url + (url.Contains('?', StringComparison.Ordinal) ? "&" : "?") + parameter;

    /// <summary>Indented as System.Text.Json indents: each member on a line of its own, two spaces a level.</summary>
    private static void AssertIndented(string text, string what)
    {
        Assert.True(text.StartsWith("{\n  \"resourceType\": ", StringComparison.Ordinal) || text.StartsWith("{\r\n  \"resourceType\": ", StringComparison.Ordinal),
            $"{what} is not indented: {text}");
        JsonNode.Parse(text);
    }

    private static void AssertCompact(string text, string what)
    {
        Assert.True(text.StartsWith("{\"resourceType\":", StringComparison.Ordinal) && !text.Contains('\n', StringComparison.Ordinal), $"{what} is not compact: {text}");
    }

    [Fact]
    public async Task Pretty_true_indents_every_kind_of_answer_and_false_or_absent_leaves_it_compact()
    {
        var created = await SendAsync(HttpMethod.Post, "/fhir/Patient?_pretty=true", Samples.Patient(family: "Lisible"));
        Assert.Equal(HttpStatusCode.Created, created.Status);
        AssertIndented(created.Text, "a create's resource");
        var id = JsonNode.Parse(created.Text)!["id"]!.GetValue<string>();
        var batch = $$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ { "request": { "method": "GET", "url": "Patient/{{id}}" } } ] }""";
        (HttpMethod Method, string Url, string? Body, HttpStatusCode Status)[] interactions =
        [
            (HttpMethod.Get, $"/fhir/Patient/{id}", null, HttpStatusCode.OK),
            (HttpMethod.Get, $"/fhir/Patient/{id}/_history/1", null, HttpStatusCode.OK),
            (HttpMethod.Get, "/fhir/Patient?family=Lisible", null, HttpStatusCode.OK),
            (HttpMethod.Get, $"/fhir/Patient/{id}/_history", null, HttpStatusCode.OK),
            (HttpMethod.Get, $"/fhir/Patient/{id}/$everything", null, HttpStatusCode.OK),
            (HttpMethod.Get, "/fhir/metadata", null, HttpStatusCode.OK),
            (HttpMethod.Post, "/fhir", batch, HttpStatusCode.OK),
            (HttpMethod.Put, $"/fhir/Patient/{id}", Samples.Patient(family: "Lisible", id: id), HttpStatusCode.OK),
            // OperationOutcomes: a record not found, a refused format, a refused parameter.
            (HttpMethod.Get, "/fhir/Patient/no-such-patient", null, HttpStatusCode.NotFound),
            (HttpMethod.Get, "/fhir/Patient?_format=xml", null, HttpStatusCode.NotAcceptable),
            (HttpMethod.Get, "/fhir/Patient?colour=blue", null, HttpStatusCode.BadRequest),
        ];
        foreach (var (method, url, body, status) in interactions)
        {
            var pretty = await SendAsync(method, With(url, "_pretty=true"), body);
            Assert.True(pretty.Status == status, $"{method} {url}&_pretty=true: {(int)pretty.Status} {pretty.Text}");
            AssertIndented(pretty.Text, $"{method} {url}&_pretty=true");
            foreach (var compact in new[] { url, With(url, "_pretty=false") })
            {
                var answer = await SendAsync(method, compact, body);
                Assert.True(answer.Status == status, $"{method} {compact}: {(int)answer.Status} {answer.Text}");
                AssertCompact(answer.Text, $"{method} {compact}");
            }
        }
        // The same resource either way, to the character of each value.
        var read = await SendAsync(HttpMethod.Get, $"/fhir/Patient/{id}");
        var readPretty = await SendAsync(HttpMethod.Get, $"/fhir/Patient/{id}?_pretty=true");
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(read.Text), JsonNode.Parse(readPretty.Text)), readPretty.Text);
    }

    [Fact]
    public async Task A_bundle_entry_cannot_ask_its_own_pretty_nor_a_format_but_json_and_is_refused_rather_than_ignored()
    {
        // The response Bundle is written whole, indented or not as the request posting it asks: an entry's _pretty was accepted and
        // ignored, and so was its _format=xml (the entry answered in JSON all the same).
        var nir = Samples.ValidNir("1850375100110");
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Entree", nir: nir))).GetProperty("id").GetString()!;
        string Get(string url) => $$"""{ "request": { "method": "GET", "url": "{{url}}" } }""";
        var put = $$"""{ "resource": {{Samples.Patient(family: "Entree", nir: nir, id: id)}}, "request": { "method": "PUT", "url": "Patient?identifier={{Samples.InsNir}}|{{nir}}&_pretty=true" } }""";
        var batch = $$"""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              {{Get($"Patient/{id}?_pretty=true")}}, {{Get("Patient?family=Entree&_pretty=false")}}, {{Get($"Patient/{id}?_format=xml")}},
              {{Get("Patient?family=Entree&_format=application/fhir+json")}}, {{Get($"Patient/{id}?_format=json")}}, {{put}} ] }
            """;
        var answer = await SendAsync(HttpMethod.Post, "/fhir?_pretty=true", batch);
        Assert.True(answer.Status == HttpStatusCode.OK, answer.Text);
        AssertIndented(answer.Text, "the batch-response");
        var entries = JsonNode.Parse(answer.Text)!["entry"]!.AsArray();
        Assert.Equal(["400", "400", "406", "200 OK", "200 OK", "400"], entries.Select(e => e!["response"]!["status"]!.GetValue<string>()));
        foreach (var (index, said) in new[] { (0, "_pretty has no place"), (1, "_pretty has no place"), (2, "an entry's answer is written within the response Bundle, in JSON"), (5, "_pretty has no place") })
        {
            var issue = entries[index]!["response"]!["outcome"]!["issue"]![0]!;
            Assert.Equal($"Bundle.entry[{index}].request.url", issue["expression"]![0]!.GetValue<string>());
            Assert.StartsWith($"Bundle.entry[{index}]: {said}", issue["diagnostics"]!.GetValue<string>(), StringComparison.Ordinal);
        }
        // The conditional update did not run.
        Assert.Equal("1", JsonNode.Parse((await SendAsync(HttpMethod.Get, $"/fhir/Patient/{id}")).Text)!["meta"]!["versionId"]!.GetValue<string>());

        // A transaction carrying one is refused whole, before anything is written.
        var transaction = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Entreebis")}}, "request": { "method": "POST", "url": "Patient" } }, {{Get($"Patient/{id}?_pretty=true")}} ] }
            """;
        var refused = await SendAsync(HttpMethod.Post, "/fhir", transaction);
        Assert.True(refused.Status == HttpStatusCode.BadRequest, refused.Text);
        Assert.Equal("Bundle.entry[1].request.url", JsonNode.Parse(refused.Text)!["issue"]![0]!["expression"]![0]!.GetValue<string>());
        Assert.Empty(Ids(await SearchAsync("Patient?family=Entreebis")));
    }

    [Fact]
    public async Task A_request_refused_before_it_runs_is_indented_under_pretty_true_and_a_bad_pretty_never_hides_its_refusal()
    {
        // Refused before the format check: no token or a bad one (401), no such endpoint (404), a method the path does not take
        // (405, from routing), a URL over the limit (414). _pretty=true indents them all (every FHIR JSON answer is written by
        // FhirResult); a bad _pretty is not read as asking for indentation, and changes neither their status nor their outcome.
        using var anonymous = new HttpClient { BaseAddress = Server.BaseAddress };
        using var stranger = new HttpClient { BaseAddress = Server.BaseAddress };
        stranger.DefaultRequestHeaders.Authorization = new("Bearer", "not-a-token");
        var longQuery = "family=" + new string('a', 9_000);
        (HttpClient Client, HttpMethod Method, string Url, HttpStatusCode Status)[] early =
        [
            (anonymous, HttpMethod.Get, "/fhir/Patient?family=Refus", HttpStatusCode.Unauthorized),
            (stranger, HttpMethod.Get, "/fhir/Patient?family=Refus", HttpStatusCode.Unauthorized),
            (anonymous, HttpMethod.Get, "/fhir/no/such/endpoint/at/all", HttpStatusCode.NotFound),
            (Api, HttpMethod.Get, "/fhir/no/such/endpoint/at/all", HttpStatusCode.NotFound),
            (Api, HttpMethod.Post, "/fhir/Patient/some-id", HttpStatusCode.MethodNotAllowed),
            // _pretty first, as the limit is measured on the whole target.
            (Api, HttpMethod.Get, "/fhir/Patient?{pretty}&" + longQuery, HttpStatusCode.RequestUriTooLong),
        ];
        foreach (var (client, method, url, status) in early)
        {
            foreach (var (pretty, indented) in new[] { ("_pretty=true", true), ("_pretty=false", false), ("_pretty=yes", false), ("_pretty=true&_pretty=false", false) })
            {
                using var request = new HttpRequestMessage(method, url.Contains("{pretty}", StringComparison.Ordinal)
                    ? url.Replace("{pretty}", pretty, StringComparison.Ordinal) : With(url, pretty));
                if (method == HttpMethod.Post) request.Content = FhirContent.Json(Samples.Patient(family: "Refus"));
                using var response = await client.SendAsync(request);
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == status, $"{method} {url[..Math.Min(url.Length, 60)]}&{pretty}: {(int)response.StatusCode} {text}");
                Assert.Equal("OperationOutcome", JsonNode.Parse(text)!["resourceType"]!.GetValue<string>());
                if (indented) AssertIndented(text, $"{method} {url[..Math.Min(url.Length, 60)]}&{pretty}");
                else AssertCompact(text, $"{method} {url[..Math.Min(url.Length, 60)]}&{pretty}");
            }
        }
        // Refused by the interaction, once routed and authenticated: an unsupported type, a method an interaction refuses. The format
        // check comes first there (before anything runs), so a bad _pretty is the 400 that names it; true indents the refusal.
        foreach (var (method, url, status) in new[]
        {
            (HttpMethod.Get, "/fhir/Shoe", HttpStatusCode.NotFound),
            (HttpMethod.Get, "/fhir/Patient/_search", HttpStatusCode.MethodNotAllowed),
            (HttpMethod.Post, "/fhir/AuditEvent", HttpStatusCode.MethodNotAllowed),
        })
        {
            var body = method == HttpMethod.Post ? "{}" : null;
            var pretty = await SendAsync(method, With(url, "_pretty=true"), body);
            Assert.True(pretty.Status == status, $"{method} {url}?_pretty=true: {(int)pretty.Status} {pretty.Text}");
            AssertIndented(pretty.Text, $"{method} {url}?_pretty=true");
            var bad = await SendAsync(method, With(url, "_pretty=yes"), body);
            Assert.True(bad.Status == HttpStatusCode.BadRequest, $"{method} {url}?_pretty=yes: {(int)bad.Status} {bad.Text}");
            Assert.Equal("_pretty", JsonNode.Parse(bad.Text)!["issue"]![0]!["expression"]![0]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task Pretty_keeps_a_decimal_as_it_was_written()
    {
        // R4: a decimal's precision is part of its value (1.50 g/L is not 1.5 g/L).
        var patient = JsonNode.Parse((await CreateAsync("Patient", Samples.Patient(family: "Decimale"))).GetRawText())!["id"]!.GetValue<string>();
        var observation = Samples.Observation($"Patient/{patient}").Replace("\"value\": 1.02", "\"value\": 1.50", StringComparison.Ordinal);
        var id = (await CreateAsync("Observation", observation)).GetProperty("id").GetString()!;
        var compact = await SendAsync(HttpMethod.Get, $"/fhir/Observation/{id}");
        Assert.Contains("\"value\":1.50", compact.Text, StringComparison.Ordinal);
        var pretty = await SendAsync(HttpMethod.Get, $"/fhir/Observation/{id}?_pretty=true");
        Assert.Contains("\"value\": 1.50", pretty.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("_pretty=yes")]
    [InlineData("_pretty=TRUE")]
    [InlineData("_pretty=1")]
    [InlineData("_pretty=")]
    [InlineData("_pretty=true&_pretty=false")]
    public async Task A_pretty_that_is_neither_true_nor_false_is_400_and_runs_nothing(string parameter)
    {
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Illisible"))).GetProperty("id").GetString()!;
        foreach (var (method, url, body) in new (HttpMethod, string, string?)[]
        {
            (HttpMethod.Get, $"/fhir/Patient/{id}", null),
            (HttpMethod.Get, "/fhir/Patient?family=Illisible", null),
            (HttpMethod.Get, "/fhir/metadata", null),
            (HttpMethod.Post, "/fhir/Patient", Samples.Patient(family: "Illisible")),
            (HttpMethod.Delete, $"/fhir/Patient/{id}", null),
        })
        {
            var answer = await SendAsync(method, With(url, parameter), body);
            Assert.True(answer.Status == HttpStatusCode.BadRequest, $"{method} {url}&{parameter}: {(int)answer.Status} {answer.Text}");
            var issue = JsonNode.Parse(answer.Text)!["issue"]![0]!;
            Assert.Equal("invalid", issue["code"]!.GetValue<string>());
            Assert.Equal("_pretty", issue["expression"]![0]!.GetValue<string>());
            Assert.Contains("true (indented JSON) or false", issue["diagnostics"]!.GetValue<string>(), StringComparison.Ordinal);
        }
        // Neither the create nor the delete ran.
        var found = await SearchAsync("Patient?family=Illisible");
        Assert.Equal([id], Ids(found));
    }

    [Fact]
    public async Task A_POST_search_takes_pretty_from_its_form_body_as_from_its_url()
    {
        // helper-113 L3: a search's parameters may all be in its form body; there _pretty was ignored, and a bad value not refused.
        await CreateAsync("Patient", Samples.Patient(family: "Formulaire"));
        async Task<(HttpStatusCode Status, string Text)> PostAsync(string form)
        {
            using var content = new StringContent(form, System.Text.Encoding.UTF8, "application/x-www-form-urlencoded");
            using var response = await Api.PostAsync("/fhir/Patient/_search", content);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        var pretty = await PostAsync("family=Formulaire&_pretty=true");
        Assert.Equal(HttpStatusCode.OK, pretty.Status);
        AssertIndented(pretty.Text, "POST _search with _pretty=true in its body");
        Assert.Equal(1, JsonNode.Parse(pretty.Text)!["total"]!.GetValue<int>());
        var compact = await PostAsync("family=Formulaire&_pretty=false");
        Assert.Equal(HttpStatusCode.OK, compact.Status);
        AssertCompact(compact.Text, "POST _search with _pretty=false in its body");
        var refused = await PostAsync("family=Formulaire&_pretty=yes");
        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Equal("_pretty", JsonNode.Parse(refused.Text)!["issue"]![0]!["expression"]![0]!.GetValue<string>());
    }
}

public sealed class PrettyOutputTests_Sqlite(FhirServerFixture_Sqlite shared) : PrettyOutputTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class PrettyOutputTests_Postgres(FhirServerFixture_Postgres shared) : PrettyOutputTests(shared), IClassFixture<FhirServerFixture_Postgres>;
