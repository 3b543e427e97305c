// Invariant 7: bad input gets a clear 4xx OperationOutcome and changes nothing — never a 500.
using System.Net;
using System.Text;
using Vauban.Fhir;
using Vauban.Tests.Infrastructure;
using Vauban.Records;

namespace Vauban.Tests.Fhir;

/// <summary>One server for the class's tests (a start and stop cost more than most of these tests), with a small resource limit:
/// each test is a client of an establishment of its own, so that "nothing stored" is its own establishment's count.</summary>
public sealed class BadInputServer_Sqlite() : FhirServerFixture(Engine.Sqlite, BadInputTests.Options);

public sealed class BadInputServer_Postgres() : FhirServerFixture(Engine.Postgres, BadInputTests.Options);

public abstract class BadInputTests(FhirServerFixture shared) : IAsyncLifetime
{
    internal static Web.ServerOptions Options => new("http://127.0.0.1:0") { MaxResourceBytes = 64 * 1024 };

    private readonly VaubanServer _server = shared.Server;
    private HttpClient _api = null!;

    public async Task InitializeAsync() => _api = await _server.ClientAsync("hospital-" + Guid.NewGuid().ToString("N")[..10]);

    public Task DisposeAsync()
    {
        _api.Dispose();
        return Task.CompletedTask;
    }

    private async Task AssertRefusedAsync(HttpResponseMessage response, HttpStatusCode status, string mentions)
    {
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
        var diagnostics = string.Join(" ", body.GetProperty("issue").EnumerateArray().Select(i => i.GetProperty("diagnostics").GetString()));
        Assert.Contains(mentions, diagnostics, StringComparison.OrdinalIgnoreCase);
        await AssertNothingStoredAsync();
    }

    private async Task AssertNothingStoredAsync()
    {
        using var count = await _api.GetAsync("/fhir/Patient?_summary=count");
        Assert.Equal(0, (await count.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Malformed_JSON_is_400_naming_the_position()
    {
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json("{ \"resourceType\": \"Patient\", \"name\": [ "));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "not valid JSON");
    }

    [Fact]
    public async Task JSON_nested_deeper_than_64_levels_is_400_saying_it_is_nested_too_deeply_not_that_it_is_invalid()
    {
        var deep = "{ \"resourceType\": \"Patient\", \"extension\": " + new string('[', 70) + new string(']', 70) + " }";
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json(deep));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "nested too deeply");
        using var again = await _api.PostAsync("/fhir/Patient", FhirContent.Json(deep));
        var diagnostics = (await again.BodyAsync()).GetProperty("issue")[0].GetProperty("diagnostics").GetString()!;
        Assert.DoesNotContain("not valid JSON", diagnostics, StringComparison.Ordinal);
        // Malformed JSON that is not deep is still reported as malformed, with its position.
        using var malformed = await _api.PostAsync("/fhir/Patient", FhirContent.Json("{ \"resourceType\": \"Patient\", \"extension\": [[[ } "));
        await AssertRefusedAsync(malformed, HttpStatusCode.BadRequest, "not valid JSON at line");
    }

    [Fact]
    public async Task An_OperationOutcome_carrying_a_correlation_id_has_a_valid_FHIR_id()
    {
        // A chunked body whose chunk size is not hexadecimal: Kestrel fails the read outside the FHIR code, in the one
        // exception handler, which answers with the correlation id as the OperationOutcome's id (Kestrel's own id has a ':').
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(_server.BaseAddress.Host, _server.BaseAddress.Port);
        await using var stream = socket.GetStream();
        var request = "POST /fhir/Patient HTTP/1.1\r\nHost: localhost\r\n"
            + $"Authorization: Bearer {_api.DefaultRequestHeaders.Authorization!.Parameter}\r\n"
            + "Content-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var response = await reader.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        var json = response[response.IndexOf('{', StringComparison.Ordinal)..];
        using var body = System.Text.Json.JsonDocument.Parse(json[..(json.LastIndexOf('}') + 1)]);
        Assert.Equal("OperationOutcome", body.RootElement.GetProperty("resourceType").GetString());
        Assert.Matches("^[A-Za-z0-9\\-\\.]{1,64}$", body.RootElement.GetProperty("id").GetString()!);
    }

    [Fact]
    public async Task A_form_over_the_form_readers_limits_is_400_at_search_audit_search_and_token_endpoints()
    {
        var fields = Enumerable.Range(0, 1_100).Select(i => new KeyValuePair<string, string>("family", "x")).ToList();
        using (var response = await _api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent(fields)))
        {
            await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "at most 1,024 fields");
        }
        using (var response = await _api.PostAsync("/fhir/AuditEvent/_search", new FormUrlEncodedContent(fields)))
        {
            await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "at most 1,024 fields");
        }
        using (var response = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(fields)))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var body = await response.BodyAsync();
            Assert.Equal("invalid_request", body.GetProperty("error").GetString());
            Assert.Contains("at most 1,024 fields", body.GetProperty("error_description").GetString()!, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_token_endpoint_answers_a_method_it_does_not_take_with_405_Allow_POST_and_an_OAuth_error()
    {
        foreach (var method in new[] { HttpMethod.Get, HttpMethod.Put, HttpMethod.Patch, HttpMethod.Delete, HttpMethod.Options })
        {
            using var request = new HttpRequestMessage(method, "/oauth/token");
            if (method != HttpMethod.Get && method != HttpMethod.Options) request.Content = new StringContent("grant_type=client_credentials", Encoding.ASCII, "application/x-www-form-urlencoded");
            using var response = await _server.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
            Assert.Equal(["POST"], response.Content.Headers.Allow);
            var body = await response.BodyAsync();
            Assert.Equal("invalid_request", body.GetProperty("error").GetString());
            Assert.StartsWith($"The token endpoint takes POST, not {method.Method}", body.GetProperty("error_description").GetString()!, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_form_holding_a_NUL_is_400_saying_so_not_that_it_is_over_the_limits()
    {
        foreach (var path in new[] { "/fhir/Patient/_search", "/fhir/AuditEvent/_search" })
        {
            using var response = await _api.PostAsync(path, new StringContent("family=%00abc", Encoding.ASCII, "application/x-www-form-urlencoded"));
            await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "a NUL");
            Assert.DoesNotContain("limits", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var response = await _server.Http.PostAsync("/oauth/token", new StringContent("grant_type=client_credentials&scope=%00", Encoding.ASCII, "application/x-www-form-urlencoded")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var body = await response.BodyAsync();
            Assert.Equal("invalid_request", body.GetProperty("error").GetString());
            Assert.Contains("a NUL", body.GetProperty("error_description").GetString()!, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_URL_over_the_limit_is_414_pointing_to_POST_search()
    {
        var ids = string.Join(",", Enumerable.Range(0, 300).Select(_ => Guid.NewGuid().ToString("D")));
        using var response = await _api.GetAsync($"/fhir/Patient?_id={ids}");
        await AssertRefusedAsync(response, HttpStatusCode.RequestUriTooLong, "POST [type]/_search");
        // The same parameters in a form body are a search.
        using var posted = await _api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent([new("_id", ids)]));
        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        // Far over the limit, Kestrel answers before the application: still a 414.
        using var far = await _api.GetAsync($"/fhir/Patient?_id={ids}{ids}{ids}");
        Assert.Equal(HttpStatusCode.RequestUriTooLong, far.StatusCode);
    }

    [Fact]
    public async Task Headers_over_the_limit_are_431_with_an_OperationOutcome_saying_which_limit()
    {
        // A grown cookie or token, somewhat over the 32 KiB limit: the client learns why, in FHIR.
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient"))
        {
            request.Headers.TryAddWithoutValidation("X-Grown", new string('a', 40 * 1024));
            using var response = await _api.SendAsync(request);
            await AssertRefusedAsync(response, HttpStatusCode.RequestHeaderFieldsTooLarge, "the limit is 32,768");
        }
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient"))
        {
            for (var i = 0; i < 120; i++) request.Headers.TryAddWithoutValidation($"X-Many-{i}", "1");
            using var response = await _api.SendAsync(request);
            await AssertRefusedAsync(response, HttpStatusCode.RequestHeaderFieldsTooLarge, "header lines; the limit is 100");
        }
        // Far over it, Kestrel answers before the application: still a 431, without a body.
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient"))
        {
            request.Headers.TryAddWithoutValidation("X-Grown", new string('a', 80 * 1024));
            using var response = await _api.SendAsync(request);
            Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        }
    }

    [Fact]
    public async Task Duplicate_properties_are_refused()
    {
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json("{ \"resourceType\": \"Patient\", \"gender\": \"male\", \"gender\": \"female\" }"));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "not valid JSON at line 1: an object gives the property 'gender' twice.");
    }

    [Fact]
    public async Task A_code_outside_its_required_binding_is_400_and_nothing_is_stored()
    {
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json("""{ "resourceType": "Patient", "gender": "robot" }"""));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "male, female, other, unknown");
    }

    [Fact]
    public async Task A_period_surely_ending_before_it_starts_is_400_and_nothing_is_stored_and_one_that_may_not_is_stored()
    {
        async Task<int> EncountersAsync()
        {
            using var count = await _api.GetAsync("/fhir/Encounter?_summary=count");
            return (await count.BodyAsync()).GetProperty("total").GetInt32();
        }
        string? patient = null;
        string Encounter(string start, string end) => $$"""
            { "resourceType": "Encounter", "status": "finished", "class": { "code": "AMB" }, "subject": { "reference": "Patient/{{patient}}" },
              "period": { "start": "{{start}}", "end": "{{end}}" } }
            """;
        using (var created = await _api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient())))
        {
            patient = (await created.BodyAsync()).GetProperty("id").GetString();
        }

        // The 12th begins, in any zone, after 23:00 UTC on the 10th (at the earliest 10:00 UTC on the 11th, at +14:00).
        using (var refused = await _api.PostAsync("/fhir/Encounter", FhirContent.Json(Encounter("2024-03-12", "2024-03-10T23:00:00Z"))))
        {
            var body = await refused.BodyAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, body.ToString());
            Assert.Contains("per-1", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        Assert.Equal(0, await EncountersAsync());

        // 21:00 on the 1st at -04:00 is 02:00 on the 2nd in Paris, but the day that ends "2024-03-01" is the writer's, not Paris's:
        // R4's per-1 (start <= end under FHIRPath) cannot decide it, and does not fail.
        using (var accepted = await _api.PostAsync("/fhir/Encounter", FhirContent.Json(Encounter("2024-03-01T21:00:00-04:00", "2024-03-01"))))
        {
            Assert.True(accepted.StatusCode == HttpStatusCode.Created, (await accepted.BodyAsync()).ToString());
        }
        Assert.Equal(1, await EncountersAsync());
    }

    [Fact]
    public async Task A_reference_to_a_type_its_element_does_not_allow_is_400_and_nothing_is_stored()
    {
        // An Observation whose subject is a Practitioner would be in no patient's record, open to every reader of Observation.
        using var observation = await _api.PostAsync("/fhir/Observation", FhirContent.Json(
            """{ "resourceType": "Observation", "status": "final", "code": { "text": "VIH" }, "subject": { "reference": "Practitioner/pra-1" } }"""));
        await AssertRefusedAsync(observation, HttpStatusCode.BadRequest, "A reference of type Practitioner is not allowed here");
        using var count = await _api.GetAsync("/fhir/Observation?_summary=count");
        Assert.Equal(0, (await count.BodyAsync()).GetProperty("total").GetInt32());

        using var patient = await _api.PostAsync("/fhir/Patient", FhirContent.Json(
            """{ "resourceType": "Patient", "generalPractitioner": [{ "reference": "Patient/p-2" }] }"""));
        await AssertRefusedAsync(patient, HttpStatusCode.BadRequest, "refers to Organization, Practitioner or PractitionerRole");
    }

    [Fact]
    public async Task A_body_that_is_not_valid_UTF8_is_400_and_another_charset_415_not_stored_altered()
    {
        // "Zzutf" followed by 0xC3 0x28, an invalid UTF-8 sequence, inside a family name.
        var bytes = System.Text.Encoding.ASCII.GetBytes("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Zzutf??x\"}]}");
        var at = Array.IndexOf(bytes, (byte)'?');
        bytes[at] = 0xC3;
        bytes[at + 1] = 0x28;
        using var invalid = new ByteArrayContent(bytes);
        invalid.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/fhir+json");
        using var response = await _api.PostAsync("/fhir/Patient", invalid);
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "not valid UTF-8");

        using var latin1 = new ByteArrayContent(System.Text.Encoding.Latin1.GetBytes("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Hélène\"}]}"));
        latin1.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("application/fhir+json; charset=iso-8859-1");
        using var refused = await _api.PostAsync("/fhir/Patient", latin1);
        await AssertRefusedAsync(refused, HttpStatusCode.UnsupportedMediaType, "UTF-8");

        using var utf8 = new StringContent("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Hélène\"}]}", System.Text.Encoding.UTF8);
        utf8.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("application/fhir+json; charset=utf-8");
        using var created = await _api.PostAsync("/fhir/Patient", utf8);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("Hélène", (await created.BodyAsync()).GetProperty("name")[0].GetProperty("family").GetString());
    }

    [Theory]
    [InlineData("""{"resourceType":"Patient","name":[{"family":"Zz\ud800x"}]}""")]
    [InlineData("""{"resourceType":"Patient","name":[{"given":["a\udc00"]}]}""")]
    [InlineData("""{"resourceType":"Patient","gender":"male\ud800"}""")]
    [InlineData("""{"resourceType":"Patient","\ud800":1}""")]
    [InlineData("""{"resourceType":"Pati\ud800ent"}""")]
    public async Task A_u_escape_encoding_half_a_surrogate_pair_is_400_not_500(string json)
    {
        // It parses as JSON, and fails wherever the string is decoded (the validator, the index, the writer): a 500 before.
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json(json));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "surrogate");
        var bundle = $$"""{ "resourceType": "Bundle", "type": "transaction", "entry": [ { "resource": {{json}}, "request": { "method": "POST", "url": "Patient" } } ] }""";
        using var transaction = await _api.PostAsync("/fhir", FhirContent.Json(bundle));
        await AssertRefusedAsync(transaction, HttpStatusCode.BadRequest, "surrogate");
        // A pair, escaped, is one character and is kept.
        using var pair = await _api.PostAsync("/fhir/Patient", FhirContent.Json("""{"resourceType":"Patient","name":[{"family":"Zz\ud83d\ude00"}]}"""));
        Assert.Equal(HttpStatusCode.Created, pair.StatusCode);
        Assert.Equal("Zz\U0001F600", (await pair.BodyAsync()).GetProperty("name")[0].GetProperty("family").GetString());
    }

    [Fact]
    public async Task A_body_starting_with_a_UTF8_byte_order_mark_is_read_as_the_JSON_after_it()
    {
        using var content = new ByteArrayContent([0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(Samples.Patient(family: "Bommer"))]);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/fhir+json");
        using var response = await _api.PostAsync("/fhir/Patient", content);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("Bommer", (await response.BodyAsync()).GetProperty("name")[0].GetProperty("family").GetString());
    }

    [Fact]
    public async Task An_NIR_with_a_wrong_control_key_is_refused_on_a_Coverage_too_and_not_echoed()
    {
        const string badNir = "180034410912399";
        var coverage = $$"""
            { "resourceType": "Coverage", "status": "active", "beneficiary": { "reference": "Patient/x" }, "payor": [{ "display": "CPAM" }],
              "identifier": [{ "system": "{{KnownIdentifierSystems.InsNir}}", "value": "{{badNir}}" }] }
            """;
        using var response = await _api.PostAsync("/fhir/Coverage", FhirContent.Json(coverage));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
        Assert.Contains("Coverage.identifier[0].value", body, StringComparison.Ordinal);
        Assert.Contains("control key", body, StringComparison.Ordinal);
        Assert.DoesNotContain("..", body, StringComparison.Ordinal);
        Assert.DoesNotContain(badNir, body, StringComparison.Ordinal);
        using var count = await _api.GetAsync("/fhir/Coverage?_summary=count");
        Assert.Equal(0, (await count.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task An_NIR_system_written_with_u_escapes_is_still_the_NIR_system_and_its_control_key_is_checked()
    {
        const string badNir = "180034410912399";
        var escaped = KnownIdentifierSystems.InsNir.Replace(".", "\\u002e", StringComparison.Ordinal);
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(nir: badNir).Replace(KnownIdentifierSystems.InsNir, escaped, StringComparison.Ordinal)));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "control key");
    }

    [Fact]
    public async Task A_NIR_used_as_an_id_or_in_a_reference_is_400_since_ids_are_stored_in_clear()
    {
        var nir = "1800344109123" + Nir.ComputeKey("1800344109123");
        // Update as create under the patient's social-security number.
        using var put = await _api.PutAsync($"/fhir/Patient/{nir}", FhirContent.Json(Samples.Patient(id: nir)));
        Assert.DoesNotContain(nir, await put.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await AssertRefusedAsync(put, HttpStatusCode.BadRequest, "social-security number");
        using (var read = await _api.GetAsync($"/fhir/Patient/{nir}")) Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
        // The same in a transaction, and a record referring to a patient by it.
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(id: nir)}}, "request": { "method": "PUT", "url": "Patient/{{nir}}" } } ] }
            """;
        using var transaction = await _api.PostAsync("/fhir", FhirContent.Json(bundle));
        await AssertRefusedAsync(transaction, HttpStatusCode.BadRequest, "social-security number");
        foreach (var reference in new[] { $"Patient/{nir}", $"https://other.example/fhir/Patient/{nir}/_history/2" })
        {
            using var observation = await _api.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation(reference)));
            Assert.DoesNotContain(nir, await observation.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            await AssertRefusedAsync(observation, HttpStatusCode.BadRequest, "social-security number");
            using var observations = await _api.GetAsync("/fhir/Observation?_summary=count");
            Assert.Equal(0, (await observations.BodyAsync()).GetProperty("total").GetInt32());
        }
        // Written with the separators an id may hold, it is still the NIR.
        foreach (var written in new[] { $"{nir[..1]}-{nir[1..3]}-{nir[3..5]}-{nir[5..7]}-{nir[7..10]}-{nir[10..13]}-{nir[13..]}", string.Join('.', nir.Chunk(3).Select(c => new string(c))) })
        {
            using var separated = await _api.PutAsync($"/fhir/Patient/{written}", FhirContent.Json(Samples.Patient(id: written)));
            Assert.DoesNotContain(written, await separated.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            await AssertRefusedAsync(separated, HttpStatusCode.BadRequest, "social-security number");
            using var observation = await _api.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{written}")));
            await AssertRefusedAsync(observation, HttpStatusCode.BadRequest, "social-security number");
        }
        // Fifteen digits that are not a NIR (the control key does not match) are an ordinary id.
        using var other = await _api.PutAsync("/fhir/Patient/180034410912399", FhirContent.Json(Samples.Patient(id: "180034410912399")));
        Assert.Equal(HttpStatusCode.Created, other.StatusCode);
    }

    [Fact]
    public async Task A_resourceType_that_does_not_match_the_URL_is_400()
    {
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Practitioner()));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "does not match");
    }

    [Fact]
    public async Task An_NIR_whose_control_key_is_wrong_is_400_and_not_echoed()
    {
        const string badNir = "180034410912399";
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(nir: badNir)));
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(badNir, text);
        using var again = await _api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(nir: badNir)));
        await AssertRefusedAsync(again, HttpStatusCode.BadRequest, "control key");
    }

    [Theory]
    [InlineData("\"colour\": \"blue\",", "Unknown element 'colour'")]
    [InlineData("\"gender\": [\"male\"],", "must not be an array")]
    [InlineData("\"active\": \"yes\",", "Expected a JSON boolean")]
    [InlineData("\"deceasedDateTime\": \"2019-02-29\",", "Invalid dateTime")]
    [InlineData("\"deceasedDateTime\": \"2020-01-01T10:00:00\",", "Invalid dateTime")]
    [InlineData("\"multipleBirthInteger\": 2.5,", "32-bit integer")]
    [InlineData("\"photo\": { \"url\": \"http://example.org/p.png\" },", "must be a JSON array")]
    [InlineData("\"maritalStatus\": { \"coding\": [{ \"system\": \"http://x\", \"code\": \"M\", \"colour\": 1 }] },", "Unknown element 'colour'")]
    [InlineData("\"communication\": [{ \"preferred\": true }],", "required element 'language'")]
    [InlineData("\"photo\": [],", "must not be empty")]
    [InlineData("\"gender\": null,", "null is not allowed")]
    [InlineData("\"contained\": [{ \"resourceType\": \"Spaceship\" }],", "Unsupported resourceType")]
    [InlineData("\"photo\": [{ \"title\": \"A\\u0000B\" }],", "control characters")]
    public async Task Structurally_invalid_resources_are_400_and_name_the_element(string fragment, string mentions)
    {
        var patient = Samples.Patient().Replace("\"gender\": \"male\",", "", StringComparison.Ordinal).Replace("\"active\": true,", fragment, StringComparison.Ordinal);
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json(patient));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, mentions);
    }

    [Fact]
    public async Task A_birth_date_that_does_not_exist_is_400()
    {
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(birthDate: "1980-02-30")));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "Invalid date");
    }

    [Fact]
    public async Task A_missing_required_element_is_reported_with_its_path()
    {
        var observation = Samples.Observation("Patient/x").Replace("\"status\": \"final\",", "", StringComparison.Ordinal);
        using var response = await _api.PostAsync("/fhir/Observation", FhirContent.Json(observation));
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("Observation.status", body.GetProperty("issue")[0].GetProperty("expression")[0].GetString());
    }

    [Fact]
    public async Task A_body_over_the_configured_limit_is_413()
    {
        var huge = Samples.Patient().Replace("\"active\": true,", $"\"active\": true, \"extension\": [{{ \"url\": \"http://example.org/x\", \"valueString\": \"{new string('x', 100_000)}\" }}],");
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json(huge));
        await AssertRefusedAsync(response, HttpStatusCode.RequestEntityTooLarge, "limit");
    }

    [Fact]
    public async Task A_resource_with_more_searchable_values_than_one_resource_may_have_is_400_not_a_long_write()
    {
        // 6,000 given names (under 64 KiB) are ~12,000 index rows: at the default 1 MiB, 45,000 names held the write lock for 30 s.
        var names = string.Join(",", Enumerable.Range(0, 6_000).Select(i => "\"a" + i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture) + "\""));
        using var response = await _api.PostAsync("/fhir/Patient", FhirContent.Json($$"""{ "resourceType": "Patient", "name": [{ "family": "Nombreux", "given": [{{names}}] }] }"""));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "more searchable values");
    }

    [Fact]
    public async Task A_bundle_entry_over_the_single_resource_limit_is_413_fails_a_transaction_whole_and_is_its_own_413_in_a_batch()
    {
        var huge = Samples.Patient(family: "Enorme").Replace("\"active\": true,", $"\"active\": true, \"extension\": [{{ \"url\": \"http://example.org/x\", \"valueString\": \"{new string('x', 100_000)}\" }}],");
        var bundle = $$"""
            {
              "resourceType": "Bundle", "type": "transaction",
              "entry": [
                { "resource": {{Samples.Patient(family: "Petit")}}, "request": { "method": "POST", "url": "Patient" } },
                { "resource": {{huge}}, "request": { "method": "POST", "url": "Patient" } }
              ]
            }
            """;
        using (var transaction = await _api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            await AssertRefusedAsync(transaction, HttpStatusCode.RequestEntityTooLarge, "Bundle.entry[1]");
        }
        using var batch = await _api.PostAsync("/fhir", FhirContent.Json(bundle.Replace("\"transaction\"", "\"batch\"", StringComparison.Ordinal)));
        var body = await batch.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
        var entries = body.GetProperty("entry").EnumerateArray().ToList();
        Assert.StartsWith("201", entries[0].GetProperty("response").GetProperty("status").GetString());
        Assert.StartsWith("413", entries[1].GetProperty("response").GetProperty("status").GetString());
        Assert.Contains("limit", entries[1].GetProperty("response").GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, StringComparison.Ordinal);
        using var count = await _api.GetAsync("/fhir/Patient?_summary=count");
        Assert.Equal(1, (await count.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Theory]
    [InlineData("DELETE", "Patient/a%20b")]
    [InlineData("DELETE", "Patient/' OR 1=1 --")]
    [InlineData("GET", "Patient/x y")]
    public async Task A_transaction_entry_naming_an_id_that_cannot_be_one_fails_the_transaction_as_a_single_request_would(string method, string url)
    {
        // It was run: a 204 for a delete of nothing (the caller's text written into the audit entry as a record id), the rest applied.
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Applique")}}, "request": { "method": "POST", "url": "Patient" } },
              { "request": { "method": "{{method}}", "url": "{{url}}" } } ] }
            """;
        await AssertTransactionRefusedAndBatchEntryAsync(bundle, "Bundle.entry[1]: Patient/", "404");
    }

    /// <summary>A transaction with a bad second entry is refused whole (400, nothing stored); the same bundle as a batch answers
    /// that entry alone with <paramref name="batchStatus"/>.</summary>
    private async Task AssertTransactionRefusedAndBatchEntryAsync(string bundle, string mentions, string batchStatus)
    {
        using (var response = await _api.PostAsync("/fhir", FhirContent.Json(bundle)))
        {
            await AssertRefusedAsync(response, HttpStatusCode.BadRequest, mentions);
        }
        using var batch = await _api.PostAsync("/fhir", FhirContent.Json(bundle.Replace("\"transaction\"", "\"batch\"", StringComparison.Ordinal)));
        var entries = (await batch.BodyAsync()).GetProperty("entry");
        Assert.StartsWith(batchStatus, entries[1].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    // A misspelt condition was ignored: the patient was created whether or not one matched.
    [InlineData("\"request\": { \"method\": \"POST\", \"url\": \"Patient\", \"ifNoneExists\": \"family=x\" }", "Bundle.entry[1].request.ifNoneExists: Unknown element 'ifNoneExists'")]
    [InlineData("\"request\": { \"method\": \"POST\", \"url\": \"Patient\" }, \"reponse\": {}", "Bundle.entry[1].reponse: Unknown element 'reponse'")]
    [InlineData("\"request\": { \"method\": \"POST\", \"url\": \"Patient\" }, \"response\": { \"status\": \"201 Created\" }", "(FHIR R4 invariant bdl-4)")]
    [InlineData("\"request\": { \"method\": \"POST\", \"url\": \"Patient\" }, \"search\": { \"mode\": \"match\" }", "(FHIR R4 invariant bdl-2)")]
    [InlineData("\"request\": { \"method\": \"POST\", \"url\": \"Patient\", \"ifNoneMatch\": 3 }", "Bundle.entry[1].request.ifNoneMatch")]
    [InlineData("\"request\": { \"method\": \"POST\", \"url\": \"Patient\", \"ifModifiedSince\": \"yesterday\" }", "Bundle.entry[1].request.ifModifiedSince")]
    public async Task A_bundle_entry_that_R4_does_not_allow_fails_the_transaction_and_is_that_entrys_400_in_a_batch(string envelope, string mentions)
    {
        // The envelope was not validated, only the entries' resources: unknown or misplaced elements were accepted and ignored.
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Applique")}}, "request": { "method": "POST", "url": "Patient" } },
              { "resource": {{Samples.Patient(family: "Enveloppe")}}, {{envelope}} } ] }
            """;
        await AssertTransactionRefusedAndBatchEntryAsync(bundle, mentions, "400");
        using var count = await _api.GetAsync("/fhir/Patient?family=enveloppe&_summary=count");
        Assert.Equal(0, (await count.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Theory]
    [InlineData("\"total\": 2,", "Bundle.total: A batch Bundle has no total")]
    [InlineData("\"timestamp\": \"2026-12-04\",", "Bundle.timestamp")]
    [InlineData("\"entries\": [],", "Bundle.entries: Unknown element 'entries'")]
    [InlineData("\"link\": [ { \"relation\": \"self\" } ],", "Bundle.link[0].url: Missing required element 'url'")]
    public async Task A_batch_whose_envelope_R4_does_not_allow_is_refused_whole_and_runs_nothing(string property, string mentions)
    {
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "batch", {{property}} "entry": [
              { "resource": {{Samples.Patient(family: "Applique")}}, "request": { "method": "POST", "url": "Patient" } } ] }
            """;
        using var response = await _api.PostAsync("/fhir", FhirContent.Json(bundle));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, mentions);
    }

    [Theory]
    [InlineData("http://localhost/fhir/Patient", "is absolute; give it relative to the server's base")]
    [InlineData("urn:uuid:0f0e0d0c-0000-4000-8000-000000000001", "is absolute; give it relative to the server's base")]
    [InlineData("Patient?identifier=urn:x|1", "a POST's request.url is the type alone")]
    public async Task A_bundle_POST_entry_whose_url_is_absolute_or_carries_a_query_is_400_saying_so_and_writes_nothing(string url, string message)
    {
        // An absolute url was "'http:' is not a supported resource type"; a query on a POST was ignored and the patient created.
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Applique")}}, "request": { "method": "POST", "url": "Patient" } },
              { "resource": {{Samples.Patient(family: "Absolue")}}, "request": { "method": "POST", "url": "{{url}}" } } ] }
            """;
        await AssertTransactionRefusedAndBatchEntryAsync(bundle, message, "400");
        using var count = await _api.GetAsync("/fhir/Patient?family=absolue&_summary=count");
        Assert.Equal(0, (await count.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Theory]
    [InlineData("\"method\": \"POST\", \"url\": \"Patient\", \"ifMatch\": \"W/\\\"1\\\"\"", "ifMatch conditions an update or a delete")]
    [InlineData("\"method\": \"PUT\", \"url\": \"Patient/cond-1\", \"ifNoneExist\": \"family=x\"", "ifNoneExist conditions a create")]
    public async Task A_bundle_entry_with_a_condition_its_interaction_does_not_take_is_400_instead_of_ignoring_it(string request, string message)
    {
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Conditionne", id: "cond-1")}}, "request": { {{request}} } } ] }
            """;
        using var response = await _api.PostAsync("/fhir", FhirContent.Json(bundle));
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, message);
    }

    [Theory]
    [InlineData("Practitioner/_history")]
    [InlineData("Patient/$everything")]
    [InlineData("Patient/p-1/_history")]
    public async Task A_batch_GET_of_a_history_or_an_operation_is_its_own_400_saying_it_is_not_supported_in_a_bundle(string url)
    {
        var bundle = $$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ { "request": { "method": "GET", "url": "{{url}}" } } ] }""";
        using var response = await _api.PostAsync("/fhir", FhirContent.Json(bundle));
        var entry = (await response.BodyAsync()).GetProperty("entry")[0].GetProperty("response");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("400", entry.GetProperty("status").GetString(), StringComparison.Ordinal);
        Assert.Contains("is not supported inside a bundle", entry.GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString()!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_content_type_is_415()
    {
        using var response = await _api.PostAsync("/fhir/Patient", new StringContent(Samples.Patient(), Encoding.UTF8, "application/xml"));
        await AssertRefusedAsync(response, HttpStatusCode.UnsupportedMediaType, "application/fhir+json");
    }

    [Fact]
    public async Task Asking_for_XML_is_406()
    {
        using var response = await _api.GetAsync("/fhir/Patient?_format=xml");
        await AssertRefusedAsync(response, HttpStatusCode.NotAcceptable, "JSON");
    }

    [Fact]
    public async Task Another_FHIR_version_or_a_refused_media_type_is_406_or_415()
    {
        // R4 content was returned to a client asking for STU3, and an STU3 body parsed as R4; q=0 means "not acceptable".
        foreach (var accept in new[] { "application/fhir+json; fhirVersion=3.0", "application/fhir+json;q=0" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient");
            request.Headers.TryAddWithoutValidation("Accept", accept);
            using var response = await _api.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.NotAcceptable, accept);
        }
        using var current = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient");
        current.Headers.TryAddWithoutValidation("Accept", "application/fhir+json; fhirVersion=4.0");
        using (var response = await _api.SendAsync(current)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = new StringContent(Samples.Patient(family: "Version"), System.Text.Encoding.UTF8);
        body.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("application/fhir+json; fhirVersion=1.0");
        using var stu = await _api.PostAsync("/fhir/Patient", body);
        await AssertRefusedAsync(stu, HttpStatusCode.UnsupportedMediaType, "FHIR R4");
    }

    [Fact]
    public async Task Format_json_overrides_an_Accept_header_the_client_cannot_set()
    {
        // R4: _format overrides Accept (a browser's text/html, an XSLT's XML); the Accept header alone still gets 406.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient?_format=json");
        request.Headers.TryAddWithoutValidation("Accept", "text/html,application/xhtml+xml");
        using (var response = await _api.SendAsync(request)) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // The media type written unencoded, its '+' read as a space, as many clients send it.
        using (var response = await _api.GetAsync("/fhir/Patient?_format=application/fhir+json")) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using (var response = await _api.GetAsync("/fhir/Patient?_format=application/fhir+xml")) Assert.Equal(HttpStatusCode.NotAcceptable, response.StatusCode);
        using var html = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient");
        html.Headers.TryAddWithoutValidation("Accept", "text/html");
        using (var response = await _api.SendAsync(html)) Assert.Equal(HttpStatusCode.NotAcceptable, response.StatusCode);
    }

    [Theory]
    [InlineData("Patient?colour=blue", "Unknown search parameter 'colour'")]
    [InlineData("Patient?birthdate=1980-13-45", "FHIR date")]
    [InlineData("Patient?birthdate=gt1980-06-15T10:00:00Z", "'birthdate' is a date: search it by year, month or day, without a time")]
    [InlineData("Patient?family:contains=dup", "not supported")]
    [InlineData("Patient?_sort=family", "_sort=family is not supported")]
    [InlineData("Patient?_sort=--_lastUpdated", "one '-' before the key sorts in descending order")] // was read as -_lastUpdated
    [InlineData("Patient?_count=-1", "_count")]
    [InlineData("Patient?general-practitioner=Observation/1", "reference to")]
    [InlineData("Observation?subject.name=dupont", "Chained search")]
    [InlineData("Patient?_include=Observation:patient", "_include must start")]
    // Includes that can never match were answered with nothing, as if no record were linked.
    [InlineData("Observation?_include=Observation:patient:Practitioner", "Observation:patient refers to Patient, never to Practitioner")]
    [InlineData("Observation?_revinclude=Patient:link", "Patient:link refers to Patient, never to Observation")]
    [InlineData("Observation?_revinclude=Patient:link:Observation", "Patient:link refers to Patient, never to Observation")]
    [InlineData("Patient?_page=forged-token", "paging link is invalid")]
    [InlineData("Patient?_sort=_id&_sort=-_id", "_sort is given twice")]
    [InlineData("Observation?_include=Observation:*", "every reference) is not supported")]
    [InlineData("Observation?_include=*", "every reference) is not supported")]
    [InlineData("PractitionerRole?_include=PractitionerRole:practitioner,PractitionerRole:organization", "repeat _include for each")]
    [InlineData("Patient?_count=4&_count=2", "_count is given twice")]
    [InlineData("Patient?_summary=count&_summary=false", "_summary is given twice")]
    [InlineData("Patient/_history?_since=2026-01-01T00:00:00Z&_since=2020-01-01T00:00:00Z", "_since is given twice")]
    [InlineData("Patient/_history?_count=1&_count=2", "_count is given twice")]
    public async Task Bad_search_requests_are_400_and_say_what_is_wrong(string query, string mentions)
    {
        using var response = await _api.GetAsync("/fhir/" + query);
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, mentions);
    }

    [Fact]
    public async Task A_search_with_more_values_than_the_limit_is_400_naming_the_limit()
    {
        var ids = string.Join(",", Enumerable.Range(0, 40_000).Select(i => "z" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using (var response = await _api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent([new("_id", ids)])))
        {
            await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "at most 1000 values");
        }
        var families = string.Join(",", Enumerable.Range(0, 1_001).Select(i => "n" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using (var response = await _api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent([new("family", families)])))
        {
            await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "at most 1000 values");
        }
        // Repeated parameters count together.
        var repeated = Enumerable.Range(0, 1_001).Select(i => new KeyValuePair<string, string>("family", "n" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using (var response = await _api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent(repeated)))
        {
            await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "at most 1000 values");
        }
        // A birth-date range expands to the days, months and years that tile it: many such ranges are refused too.
        var ranges = string.Join(",", Enumerable.Range(0, 900).Select(i => "ge" + new DateOnly(1900, 1, 15).AddDays(i * 31).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)));
        using (var response = await _api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent([new("birthdate", ranges)])))
        {
            await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "index values");
        }
        // At the limit, the search runs.
        var allowed = string.Join(",", Enumerable.Range(0, 1_000).Select(i => "z" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using var ok = await _api.PostAsync("/fhir/Patient/_search", new FormUrlEncodedContent([new("_id", allowed)]));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task An_unknown_resource_type_is_404_with_the_supported_list()
    {
        using var response = await _api.GetAsync("/fhir/Spaceship/1");
        await AssertRefusedAsync(response, HttpStatusCode.NotFound, "Supported:");
    }

    [Fact]
    public async Task A_malformed_If_Match_is_400()
    {
        var request = new HttpRequestMessage(HttpMethod.Put, "/fhir/Patient/abc") { Content = FhirContent.Json(Samples.Patient(id: "abc")) };
        request.Headers.TryAddWithoutValidation("If-Match", "yesterday");
        using var response = await _api.SendAsync(request);
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, "If-Match");
    }

    [Theory]
    [InlineData("PUT", "If-Match")]
    [InlineData("POST", "If-None-Exist")]
    public async Task A_condition_header_sent_empty_is_400_not_an_unconditional_write(string method, string header)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), method == "PUT" ? "/fhir/Patient/abc" : "/fhir/Patient")
        {
            Content = FhirContent.Json(Samples.Patient(id: method == "PUT" ? "abc" : null)),
        };
        request.Headers.TryAddWithoutValidation(header, "");
        using var response = await _api.SendAsync(request);
        await AssertRefusedAsync(response, HttpStatusCode.BadRequest, header);
    }

    [Theory]
    [InlineData("' OR 1=1 --")]
    [InlineData("\"; DROP TABLE resources; --")]
    [InlineData("<script>alert(1)</script>")]
    [InlineData("%00%01")]
    [InlineData("../../etc/passwd")]
    public async Task Injection_strings_in_ids_and_search_values_change_nothing_and_never_500(string attack)
    {
        var escaped = Uri.EscapeDataString(attack);
        foreach (var url in new[] { $"/fhir/Patient/{escaped}", $"/fhir/Patient?family={escaped}", $"/fhir/Patient?identifier={escaped}",
                     $"/fhir/Observation?patient={escaped}", $"/fhir/Patient?_id={escaped}", $"/fhir/Patient/{escaped}/_history" })
        {
            using var response = await _api.GetAsync(url);
            Assert.True((int)response.StatusCode is 200 or 400 or 404, $"{url}: {(int)response.StatusCode}");
            if (response.StatusCode != HttpStatusCode.OK) Assert.Equal("OperationOutcome", (await response.BodyAsync()).GetProperty("resourceType").GetString());
        }
        using var create = await _api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: attack.Replace("\"", "\\\"", StringComparison.Ordinal))));
        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        using var found = await _api.GetAsync($"/fhir/Patient?family:exact={escaped}");
        Assert.Single((await found.BodyAsync()).GetProperty("entry").EnumerateArray());
    }
}

public sealed class BadInputTests_Sqlite(BadInputServer_Sqlite shared) : BadInputTests(shared), IClassFixture<BadInputServer_Sqlite>;

public sealed class BadInputTests_Postgres(BadInputServer_Postgres shared) : BadInputTests(shared), IClassFixture<BadInputServer_Postgres>;
