// Adversarial tests of the door: no token, forged or expired tokens, scopes, and tenant isolation
// (invariants 1 and 3). Named after the attack they try.
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public abstract class DoorTests : IAsyncLifetime
{
    private readonly Engine _engine;
    private VaubanServer _server = null!;
    private HttpClient _hospitalA = null!;
    private HttpClient _hospitalB = null!;
    private string _patientOfA = "";

    protected DoorTests(Engine engine) => _engine = engine;

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine);
        _hospitalA = await _server.ClientAsync("hospital-a");
        _hospitalB = await _server.ClientAsync("hospital-b");
        using var created = await _hospitalA.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Secret")));
        _patientOfA = (await created.BodyAsync()).GetProperty("id").GetString()!;
        using var observation = await _hospitalA.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{_patientOfA}")));
        Assert.Equal(HttpStatusCode.Created, observation.StatusCode);
    }

    public async Task DisposeAsync()
    {
        _hospitalA.Dispose();
        _hospitalB.Dispose();
        await _server.DisposeAsync();
    }

    [Theory]
    [InlineData("")]
    [InlineData("Bearer ")]
    [InlineData("Bearer vt_forged-token-value")]
    [InlineData("Basic dXNlcjpwYXNz")]
    public async Task No_valid_token_no_data(string authorization)
    {
        foreach (var url in new[] { $"/fhir/Patient/{_patientOfA}", "/fhir/Patient?family=secret", $"/fhir/Patient/{_patientOfA}/$everything", "/fhir/Patient/_history" })
        {
            var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (authorization.Length > 0) request.Headers.TryAddWithoutValidation("Authorization", authorization);
            using var response = await _server.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString());
            var body = await response.BodyAsync();
            Assert.Equal("OperationOutcome", body.GetProperty("resourceType").GetString());
            Assert.DoesNotContain("Secret", body.ToString());
            if (authorization.StartsWith("Basic", StringComparison.Ordinal))
                Assert.Contains("not client credentials: exchange those for a token at /oauth/token", body.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Wrong_client_secret_gets_no_token_and_does_not_say_which_part_was_wrong()
    {
        var tenant = await _server.Store.Tenants.FindAsync("hospital-a", CancellationToken.None);
        var client = await _server.Store.Clients.AddAsync(tenant!, "c", "system/Patient.rs", null, CancellationToken.None);
        var wrongSecret = await TokenResponseAsync(client.ClientId, "vs_wrong");
        var unknownClient = await TokenResponseAsync("vc_unknown", client.ClientSecret!);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongSecret.Status);
        Assert.Equal(wrongSecret.Body, unknownClient.Body);
    }

    [Fact]
    public async Task The_token_endpoint_names_Basic_on_a_401_to_Basic_and_refuses_two_authentication_methods()
    {
        var tenant = await _server.Store.Tenants.FindAsync("hospital-a", CancellationToken.None);
        var client = await _server.Store.Clients.AddAsync(tenant!, "basic", "system/Patient.rs", null, CancellationToken.None);
        HttpRequestMessage Request(string secret, Dictionary<string, string> form)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = new FormUrlEncodedContent(form) };
            request.Headers.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{client.ClientId}:{secret}")));
            return request;
        }
        var grant = new Dictionary<string, string> { ["grant_type"] = "client_credentials" };

        using (var wrong = await _server.Http.SendAsync(Request("vs_wrong", grant)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            Assert.Equal("Basic", Assert.Single(wrong.Headers.WwwAuthenticate).Scheme);
        }
        using (var both = await _server.Http.SendAsync(Request(client.ClientSecret!, new(grant) { ["client_secret"] = client.ClientSecret! })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, both.StatusCode);
            Assert.Contains("invalid_request", await both.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var other = await _server.Http.SendAsync(Request(client.ClientSecret!, new(grant) { ["client_id"] = "vc_someone-else" })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, other.StatusCode);
            Assert.Contains("invalid_request", await other.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var same = await _server.Http.SendAsync(Request(client.ClientSecret!, new(grant) { ["client_id"] = client.ClientId }))) Assert.Equal(HttpStatusCode.OK, same.StatusCode);
        using (var right = await _server.Http.SendAsync(Request(client.ClientSecret!, grant))) Assert.Equal(HttpStatusCode.OK, right.StatusCode);
    }

    [Fact]
    public async Task Guessing_client_credentials_from_one_address_is_throttled_even_for_the_right_secret_next()
    {
        var tenant = await _server.Store.Tenants.FindAsync("hospital-a", CancellationToken.None);
        var client = await _server.Store.Clients.AddAsync(tenant!, "guessed", "system/Patient.rs", null, CancellationToken.None);
        // Wrong secrets for a registered client and made-up client ids count alike (throttling does not tell which exist).
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await TokenResponseAsync(i % 2 == 0 ? client.ClientId : "vc_made-up-" + i, "vs_guess" + i)).Status);
        }
        using var throttled = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = client.ClientId, ["client_secret"] = client.ClientSecret!,
        }));
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.NotNull(throttled.Headers.RetryAfter);
        var body = JsonDocument.Parse(await throttled.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("temporarily_unavailable", body.GetProperty("error").GetString());
        Assert.StartsWith("Too many client authentications from this address that failed or were still being checked", body.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(client.ClientSecret!, body.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unexpected_failure_at_the_token_endpoint_is_an_oauth_server_error_that_quotes_nothing_sent()
    {
        var tenant = await _server.Store.Tenants.FindAsync("hospital-a", CancellationToken.None);
        var client = await _server.Store.Clients.AddAsync(tenant!, "unlucky", "system/Patient.rs", null, CancellationToken.None);
        await using (var connection = _engine == Engine.Sqlite
            ? (System.Data.Common.DbConnection)new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_server.Db};Pooling=False")
            : new Npgsql.NpgsqlConnection(_server.Db))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "ALTER TABLE access_tokens RENAME TO access_tokens_away";
            await command.ExecuteNonQueryAsync();
        }
        var (status, body) = await TokenResponseAsync(client.ClientId, client.ClientSecret!);
        Assert.Equal(HttpStatusCode.InternalServerError, status);
        var error = JsonDocument.Parse(body).RootElement;
        Assert.Equal("server_error", error.GetProperty("error").GetString());
        Assert.Contains("correlation id", error.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(client.ClientSecret!, body, StringComparison.Ordinal);
        Assert.DoesNotContain("access_tokens", body, StringComparison.Ordinal);
    }

    private async Task<(HttpStatusCode Status, string Body)> TokenResponseAsync(string id, string secret)
    {
        using var response = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = id, ["client_secret"] = secret,
        }));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Scopes_are_enforced_per_interaction()
    {
        using var readOnly = await _server.ClientAsync("hospital-a", "system/Patient.rs");
        using (var read = await readOnly.GetAsync($"/fhir/Patient/{_patientOfA}")) Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        using (var create = await readOnly.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient())))
        {
            Assert.Equal(HttpStatusCode.Forbidden, create.StatusCode);
            Assert.Equal("OperationOutcome", (await create.BodyAsync()).GetProperty("resourceType").GetString());
        }
        using (var delete = await readOnly.DeleteAsync($"/fhir/Patient/{_patientOfA}")) Assert.Equal(HttpStatusCode.Forbidden, delete.StatusCode);
        using (var other = await readOnly.GetAsync("/fhir/Observation?category=laboratory")) Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        using (var include = await readOnly.GetAsync($"/fhir/Patient?_id={_patientOfA}&_revinclude=Observation:patient")) Assert.Equal(HttpStatusCode.Forbidden, include.StatusCode);
        // An include whose parameter reaches one type only (Observation.subject: of the types kept here, Patient) is
        // refused like any include naming that type.
        using var observer = await _server.ClientAsync("hospital-a", "system/Observation.rs");
        using (var single = await observer.GetAsync($"/fhir/Observation?subject={_patientOfA}&_include=Observation:subject"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, single.StatusCode);
            Assert.Contains("Patient", (await single.BodyAsync()).ToString(), StringComparison.Ordinal);
        }
        // An include that may reach several types returns only those the scopes allow.
        using var practitioner = await _hospitalA.PostAsync("/fhir/Practitioner", FhirContent.Json(Samples.Practitioner()));
        var practitionerId = (await practitioner.BodyAsync()).GetProperty("id").GetString();
        using (var booked = await _hospitalA.PostAsync("/fhir/Appointment", FhirContent.Json(Samples.Appointment($"Patient/{_patientOfA}", $"Practitioner/{practitionerId}", "2026-03-02T10:00:00+01:00"))))
            Assert.Equal(HttpStatusCode.Created, booked.StatusCode);
        async Task<string[]> IncludedTypesAsync(string scopes)
        {
            using var client = await _server.ClientAsync("hospital-a", scopes);
            using var response = await client.GetAsync($"/fhir/Appointment?actor=Patient/{_patientOfA}&_include=Appointment:actor");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await response.BodyAsync()).GetProperty("entry").EnumerateArray()
                .Select(e => e.GetProperty("resource").GetProperty("resourceType").GetString()!).Distinct().Order().ToArray();
        }
        Assert.Equal(["Appointment"], await IncludedTypesAsync("system/Appointment.rs"));
        Assert.Equal(["Appointment", "Practitioner"], await IncludedTypesAsync("system/Appointment.rs system/Practitioner.rs"));
        Assert.Equal(["Appointment", "Patient", "Practitioner"], await IncludedTypesAsync("system/Appointment.rs system/Practitioner.rs system/Patient.rs"));
        // $everything returns only the types the scopes allow.
        using var everything = await readOnly.GetAsync($"/fhir/Patient/{_patientOfA}/$everything");
        var types = (await everything.BodyAsync()).GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("resource").GetProperty("resourceType").GetString()).Distinct();
        Assert.Equal(["Patient"], types);
        // A type it asks for by name and may not read is refused, as an _include of it is — not answered with none.
        using (var typed = await readOnly.GetAsync($"/fhir/Patient/{_patientOfA}/$everything?_type=Patient,Appointment"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, typed.StatusCode);
            var outcome = await typed.BodyAsync();
            Assert.Equal("OperationOutcome", outcome.GetProperty("resourceType").GetString());
            Assert.Equal("The granted scopes do not allow reading Appointment, requested by _type.", outcome.GetProperty("issue")[0].GetProperty("diagnostics").GetString());
        }
        using (var own = await readOnly.GetAsync($"/fhir/Patient/{_patientOfA}/$everything?_type=Patient"))
        {
            Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        }
    }

    [Fact]
    public async Task An_update_only_client_cannot_create_a_record_by_updating_an_id_that_does_not_exist()
    {
        using var updater = await _server.ClientAsync("hospital-a", "system/Patient.ru");
        using (var created = await updater.PutAsync("/fhir/Patient/made-by-put", FhirContent.Json(Samples.Patient(family: "Planted", id: "made-by-put"))))
        {
            Assert.Equal(HttpStatusCode.Forbidden, created.StatusCode);
            Assert.Equal("OperationOutcome", (await created.BodyAsync()).GetProperty("resourceType").GetString());
        }
        var transaction = new
        {
            resourceType = "Bundle", type = "transaction",
            entry = new[] { new { resource = JsonDocument.Parse(Samples.Patient(family: "Planted", id: "made-by-put-2")).RootElement, request = new { method = "PUT", url = "Patient/made-by-put-2" } } },
        };
        using (var bundled = await updater.PostAsync("/fhir", FhirContent.Json(transaction))) Assert.Equal(HttpStatusCode.Forbidden, bundled.StatusCode);
        using (var none = await _hospitalA.GetAsync("/fhir/Patient/made-by-put")) Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        using (var none = await _hospitalA.GetAsync("/fhir/Patient/made-by-put-2")) Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
        // The same client updates what exists, and a client that may create may create by update.
        using (var updated = await updater.PutAsync($"/fhir/Patient/{_patientOfA}", FhirContent.Json(Samples.Patient(family: "Secret", id: _patientOfA))))
        {
            Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        }
        using (var upsert = await _hospitalA.PutAsync("/fhir/Patient/made-by-put", FhirContent.Json(Samples.Patient(family: "Planted", id: "made-by-put"))))
        {
            Assert.Equal(HttpStatusCode.Created, upsert.StatusCode);
        }
        // Nor bring back a deleted one: that is a create too.
        using (var deleted = await _hospitalA.DeleteAsync("/fhir/Patient/made-by-put")) Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        using (var back = await updater.PutAsync("/fhir/Patient/made-by-put", FhirContent.Json(Samples.Patient(family: "Planted", id: "made-by-put"))))
        {
            Assert.Equal(HttpStatusCode.Forbidden, back.StatusCode);
        }
        using (var gone = await _hospitalA.GetAsync("/fhir/Patient/made-by-put")) Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
    }

    [Fact]
    public async Task A_create_only_client_cannot_read_a_record_through_a_conditional_create()
    {
        var nir = $"identifier={Samples.InsNir}|{Samples.ValidNir()}";
        using var patientCreator = await _server.ClientAsync("hospital-a", "system/Patient.c");
        using var observationCreator = await _server.ClientAsync("hospital-a", "system/Observation.c");
        foreach (var (client, type, criteria) in new[] { (patientCreator, "Patient", nir), (observationCreator, "Observation", $"patient={_patientOfA}&code=2345-7") })
        {
            var single = new HttpRequestMessage(HttpMethod.Post, $"/fhir/{type}") { Content = FhirContent.Json($$"""{"resourceType":"{{type}}"}""") };
            single.Headers.TryAddWithoutValidation("If-None-Exist", criteria);
            using (var response = await client.SendAsync(single))
            {
                var body = await response.Content.ReadAsStringAsync();
                Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
                Assert.Contains("OperationOutcome", body);
                Assert.DoesNotContain(_patientOfA, body);
            }
            foreach (var bundleType in new[] { "batch", "transaction" })
            {
                var bundle = JsonSerializer.Serialize(new
                {
                    resourceType = "Bundle", type = bundleType,
                    entry = new[] { new { resource = new { resourceType = type }, request = new { method = "POST", url = type, ifNoneExist = criteria } } },
                });
                using var response = await client.PostAsync("/fhir", FhirContent.Json(bundle));
                var body = await response.Content.ReadAsStringAsync();
                if (bundleType == "batch") Assert.StartsWith("403", (await response.BodyAsync()).GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString());
                else Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
                Assert.DoesNotContain(_patientOfA, body);
                Assert.DoesNotContain("Secret", body);
            }
        }
        // Nothing was created by the refused requests.
        foreach (var type in new[] { "Patient", "Observation" })
        {
            using var all = await _hospitalA.GetAsync($"/fhir/{type}?_count=100");
            Assert.Single((await all.BodyAsync()).GetProperty("entry").EnumerateArray());
        }
        // With search and read as well, the conditional create returns the match, as FHIR says.
        using var full = await _server.ClientAsync("hospital-a", "system/Patient.crs");
        var allowed = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json("""{"resourceType":"Patient"}""") };
        allowed.Headers.TryAddWithoutValidation("If-None-Exist", nir);
        using var matched = await full.SendAsync(allowed);
        Assert.Equal(HttpStatusCode.OK, matched.StatusCode);
        Assert.Equal(_patientOfA, (await matched.BodyAsync()).GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_client_never_gets_scopes_beyond_its_registration()
    {
        var tenant = await _server.Store.Tenants.FindAsync("hospital-a", CancellationToken.None);
        var client = await _server.Store.Clients.AddAsync(tenant!, "reader", "system/Patient.rs", null, CancellationToken.None);
        var token = await _server.TokenAsync(client.ClientId, client.ClientSecret!, "system/Patient.rs system/Observation.cruds");
        using var http = new HttpClient { BaseAddress = _server.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.GetAsync("/fhir/Observation?category=laboratory");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    [Fact]
    public async Task A_client_cannot_be_registered_for_or_ask_for_a_person_s_user_scopes()
    {
        var tenant = await _server.Store.Tenants.FindAsync("hospital-a", CancellationToken.None);
        await Assert.ThrowsAsync<ArgumentException>(() => _server.Store.Clients.AddAsync(tenant!, "as a person", "user/Patient.rs", null, CancellationToken.None));
        var client = await _server.Store.Clients.AddAsync(tenant!, "reader", "system/Patient.rs", null, CancellationToken.None);
        using var response = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = client.ClientId, ["client_secret"] = client.ClientSecret!, ["scope"] = "user/Patient.rs",
        }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_scope", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_token_request_in_multipart_with_a_parameter_given_twice_or_without_grant_type_is_invalid_request_saying_which()
    {
        var tenant = await _server.Store.Tenants.FindAsync("hospital-a", CancellationToken.None);
        var client = await _server.Store.Clients.AddAsync(tenant!, "form rules", "system/Patient.rs system/Observation.rs", null, CancellationToken.None);
        async Task AssertInvalidAsync(HttpContent content, string mentions)
        {
            using var response = await _server.Http.PostAsync("/oauth/token", content);
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("invalid_request", body.GetProperty("error").GetString());
            Assert.Contains(mentions, body.GetProperty("error_description").GetString()!, StringComparison.Ordinal);
        }
        // RFC 6749 4.4.2: application/x-www-form-urlencoded; a multipart form got a token.
        var multipart = new MultipartFormDataContent
        {
            { new StringContent("client_credentials"), "grant_type" }, { new StringContent(client.ClientId), "client_id" }, { new StringContent(client.ClientSecret!), "client_secret" },
        };
        await AssertInvalidAsync(multipart, "application/x-www-form-urlencoded");
        // RFC 6749 3.2: a parameter at most once (two scopes were joined with a comma and refused as a bad resource type).
        await AssertInvalidAsync(new FormUrlEncodedContent([new("grant_type", "client_credentials"), new("client_id", client.ClientId), new("client_secret", client.ClientSecret!),
            new("scope", "system/Patient.rs"), new("scope", "system/Observation.rs")]), "gives scope more than once");
        await AssertInvalidAsync(new FormUrlEncodedContent([new("client_id", client.ClientId), new("client_secret", client.ClientSecret!)]), "has no grant_type");
        // Over the server's body limit (32 MiB here): said so, not "could not be read (413)".
        // (Expect: 100-continue: the server refuses on the length alone and the client sends no body, instead of the connection
        // being closed under an upload.)
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token")
        {
            Content = new StringContent("grant_type=client_credentials&scope=" + new string('x', 33 * 1024 * 1024), System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"),
        };
        request.Headers.ExpectContinue = true;
        using var huge = await _server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);
        Assert.Contains("larger than this server reads", await huge.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_secret_and_an_assertion_in_one_token_request_are_refused_as_two_authentication_methods()
    {
        var tenant = await _server.Store.Tenants.FindAsync("hospital-a", CancellationToken.None);
        var client = await _server.Store.Clients.AddAsync(tenant!, "two methods", "system/Patient.rs", null, CancellationToken.None);
        using var response = await _server.Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = client.ClientId, ["client_secret"] = client.ClientSecret!,
            ["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", ["client_assertion"] = "eyJhbGciOiJFUzM4NCJ9.e30.AAAA",
        }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Cross_tenant_read_update_delete_history_and_everything_answer_404_as_if_the_record_did_not_exist()
    {
        foreach (var url in new[] { $"/fhir/Patient/{_patientOfA}", $"/fhir/Patient/{_patientOfA}/_history/1", $"/fhir/Patient/{_patientOfA}/_history", $"/fhir/Patient/{_patientOfA}/$everything" })
        {
            using var response = await _hospitalB.GetAsync(url);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{url}: {(int)response.StatusCode}");
            Assert.DoesNotContain("Secret", await response.Content.ReadAsStringAsync());
        }
        var update = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient/{_patientOfA}") { Content = FhirContent.Json(Samples.Patient(family: "Hijack", id: _patientOfA)) };
        update.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        using (var response = await _hospitalB.SendAsync(update)) Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        using (await _hospitalB.DeleteAsync($"/fhir/Patient/{_patientOfA}")) { }
        using var stillThere = await _hospitalA.GetAsync($"/fhir/Patient/{_patientOfA}");
        Assert.Equal(HttpStatusCode.OK, stillThere.StatusCode);
        Assert.Equal("Secret", (await stillThere.BodyAsync()).GetProperty("name")[0].GetProperty("family").GetString());
    }

    [Fact]
    public async Task Cross_tenant_search_include_and_references_find_nothing()
    {
        foreach (var query in new[] { "Patient?family=secret", $"Patient?_id={_patientOfA}", $"Observation?patient={_patientOfA}", "Observation?category=laboratory", "Patient?_summary=count&family=secret" })
        {
            using var response = await _hospitalB.GetAsync("/fhir/" + query);
            var body = await response.BodyAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.False(body.TryGetProperty("entry", out _), query);
        }
        // A transaction in B cannot read A's patient.
        var transaction = $$"""{ "resourceType": "Bundle", "type": "batch", "entry": [ { "request": { "method": "GET", "url": "Patient/{{_patientOfA}}" } } ] }""";
        using (var batch = await _hospitalB.PostAsync("/fhir", FhirContent.Json(transaction)))
        {
            Assert.StartsWith("404", (await batch.BodyAsync()).GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString());
        }
        // B stores an observation pointing at A's patient id: A's patient is no patient of B's, so it is refused.
        using (var planted = await _hospitalB.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{_patientOfA}"))))
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, planted.StatusCode);
        }
        // Under a patient of its own given A's patient's id, it is stored; including it pulls B's patient, never A's across.
        using (var twin = await _hospitalB.PutAsync($"/fhir/Patient/{_patientOfA}", FhirContent.Json(Samples.Patient(family: "Jumeau", id: _patientOfA))))
        {
            Assert.Equal(HttpStatusCode.Created, twin.StatusCode);
        }
        using (var planted = await _hospitalB.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{_patientOfA}")))) Assert.Equal(HttpStatusCode.Created, planted.StatusCode);
        using var included = await _hospitalB.GetAsync($"/fhir/Observation?patient={_patientOfA}&_include=Observation:patient");
        var bundle = await included.BodyAsync();
        var types = bundle.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("resource").GetProperty("resourceType").GetString()).ToList();
        Assert.Equal(["Observation", "Patient"], types);
        Assert.Contains("Jumeau", bundle.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Secret", bundle.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_paging_link_of_one_client_is_refused_to_another()
    {
        for (var i = 0; i < 3; i++) using (await _hospitalA.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Secret")))) { }
        using var first = await _hospitalA.GetAsync("/fhir/Patient?family=secret&_count=1");
        var next = (await first.BodyAsync()).GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!;
        using var stolen = await _hospitalB.GetAsync(next);
        Assert.Equal(HttpStatusCode.BadRequest, stolen.StatusCode);
        Assert.DoesNotContain("Secret", await stolen.Content.ReadAsStringAsync());
    }
}

public sealed class DoorTests_Sqlite() : DoorTests(Engine.Sqlite);

public sealed class DoorTests_Postgres() : DoorTests(Engine.Postgres);
