// Writers racing on the same record: what an integrating system retrying or fanning out relies on. SQLite
// serializes writers in-process; PostgreSQL runs them side by side under read committed, so each race
// below must be settled by the store, not by luck.
using System.Net;
using System.Text.Json;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class ConcurrentWriteTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    private const int Racers = 8;

    private static string Practitioner(string id, string family, string rpps = "10001234567") =>
        Samples.Practitioner(family, rpps).Replace("\"resourceType\": \"Practitioner\",", $"\"resourceType\": \"Practitioner\", \"id\": \"{id}\",", StringComparison.Ordinal);

    /// <summary>Starts all requests together, so that they reach the store side by side.</summary>
    private static async Task<(HttpStatusCode Status, JsonElement Body)[]> RaceAsync(Func<int, HttpRequestMessage> request, HttpClient client)
    {
        using var start = new SemaphoreSlim(0);
        var tasks = Enumerable.Range(0, Racers).Select(async i =>
        {
            using var message = request(i);
            await start.WaitAsync();
            using var response = await client.SendAsync(message);
            return (response.StatusCode, await response.BodyAsync());
        }).ToList();
        start.Release(Racers);
        return await Task.WhenAll(tasks);
    }

    [Fact]
    public async Task Parallel_conditional_creates_with_the_same_If_None_Exist_create_one_record()
    {
        var nir = Samples.ValidNir("1690575123456");
        var results = await RaceAsync(_ =>
        {
            var message = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient(nir: nir)) };
            message.Headers.TryAddWithoutValidation("If-None-Exist", $"identifier={Samples.InsNir}|{nir}");
            return message;
        }, Api);

        Assert.All(results, r => Assert.True(r.Status is HttpStatusCode.Created or HttpStatusCode.OK, $"{(int)r.Status} {r.Body}"));
        Assert.Single(results, r => r.Status == HttpStatusCode.Created);
        Assert.Single(results.Select(r => r.Body.GetProperty("id").GetString()).Distinct());
        using var search = await Api.GetAsync($"/fhir/Patient?identifier={Samples.InsNir}|{nir}&_summary=count");
        Assert.Equal(1, (await search.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Parallel_conditional_creates_inside_transactions_create_one_record()
    {
        var nir = Samples.ValidNir("1690675123456");
        var bundle = $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "fullUrl": "urn:uuid:5d0f3b7e-8f0a-4a59-9d5e-1c0b8a3e7f21", "resource": {{Samples.Patient(nir: nir)}},
                "request": { "method": "POST", "url": "Patient", "ifNoneExist": "identifier={{Samples.InsNir}}|{{nir}}" } } ] }
            """;
        var results = await RaceAsync(_ => new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = FhirContent.Json(bundle) }, Api);

        Assert.All(results, r => Assert.True(r.Status == HttpStatusCode.OK, $"{(int)r.Status} {r.Body}"));
        var statuses = results.Select(r => r.Body.GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString()).ToList();
        Assert.Single(statuses, s => s == "201 Created");
        using var search = await Api.GetAsync($"/fhir/Patient?identifier={Samples.InsNir}|{nir}&_summary=count");
        Assert.Equal(1, (await search.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Parallel_conditional_updates_that_match_nothing_create_one_record_and_update_it()
    {
        var nir = Samples.ValidNir("1690775123456");
        var results = await RaceAsync(i => new HttpRequestMessage(HttpMethod.Put, $"/fhir/Patient?identifier={Samples.InsNir}|{nir}")
            { Content = FhirContent.Json(Samples.Patient(family: "Racer" + (char)('a' + i), nir: nir)) }, Api);

        Assert.All(results, r => Assert.True(r.Status is HttpStatusCode.Created or HttpStatusCode.OK, $"{(int)r.Status} {r.Body}"));
        Assert.Single(results, r => r.Status == HttpStatusCode.Created);
        Assert.Single(results.Select(r => r.Body.GetProperty("id").GetString()).Distinct());
        using var search = await Api.GetAsync($"/fhir/Patient?identifier={Samples.InsNir}|{nir}&_summary=count");
        Assert.Equal(1, (await search.BodyAsync()).GetProperty("total").GetInt32());
        using var read = await Api.GetAsync($"/fhir/Patient/{results[0].Body.GetProperty("id").GetString()}");
        Assert.Equal(Racers.ToString(System.Globalization.CultureInfo.InvariantCulture), (await read.BodyAsync()).GetProperty("meta").GetProperty("versionId").GetString());
    }

    [Fact]
    public async Task Parallel_conditional_updates_and_creates_inside_transactions_create_one_record()
    {
        // A conditional create and a conditional update of the same criteria take the same lock: neither creates beside the other.
        var nir = Samples.ValidNir("1690875123456");
        var criteria = $"identifier={Samples.InsNir}|{nir}";
        string Bundle(int i) => $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Samples.Patient(family: "Racer" + (char)('a' + i), nir: nir)}},
                "request": {{(i % 2 == 0 ? $"{{ \"method\": \"PUT\", \"url\": \"Patient?{criteria}\" }}" : $"{{ \"method\": \"POST\", \"url\": \"Patient\", \"ifNoneExist\": \"{criteria}\" }}")}} } ] }
            """;
        var results = await RaceAsync(i => new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = FhirContent.Json(Bundle(i)) }, Api);

        Assert.All(results, r => Assert.True(r.Status == HttpStatusCode.OK, $"{(int)r.Status} {r.Body}"));
        var statuses = results.Select(r => r.Body.GetProperty("entry")[0].GetProperty("response").GetProperty("status").GetString()).ToList();
        Assert.Single(statuses, s => s == "201 Created");
        using var search = await Api.GetAsync($"/fhir/Patient?{criteria}&_summary=count");
        Assert.Equal(1, (await search.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Parallel_conditional_deletes_of_the_same_criteria_delete_the_match_once()
    {
        // Each racer answers 204; the one that deleted carries the deletion's ETag, the others found nothing left to delete.
        // A second deletion version would mean two racers both took the match as live.
        using (var created = await Api.PutAsync("/fhir/Practitioner/rpps-delete-race", FhirContent.Json(Practitioner("rpps-delete-race", "Partant", "10009876543"))))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        var etags = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var start = new SemaphoreSlim(0);
        var tasks = Enumerable.Range(0, Racers).Select(async _ =>
        {
            await start.WaitAsync();
            using var response = await Api.DeleteAsync("/fhir/Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1|10009876543");
            Assert.True(response.StatusCode == HttpStatusCode.NoContent, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            if (response.Headers.ETag is { } etag) etags.Add(etag.Tag);
        }).ToList();
        start.Release(Racers);
        await Task.WhenAll(tasks);

        Assert.Equal("\"2\"", Assert.Single(etags));
        using var history = await Api.GetAsync("/fhir/Practitioner/rpps-delete-race/_history");
        var body = await history.BodyAsync();
        Assert.Equal(2, body.GetProperty("total").GetInt32());
        using var gone = await Api.GetAsync("/fhir/Practitioner/rpps-delete-race");
        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
    }

    [Fact]
    public async Task Parallel_PUTs_creating_the_same_id_make_one_record_with_consecutive_versions()
    {
        var results = await RaceAsync(i => new HttpRequestMessage(HttpMethod.Put, "/fhir/Practitioner/rpps-race")
            { Content = FhirContent.Json(Practitioner("rpps-race", "Racer" + (char)('a' + i))) }, Api);

        Assert.All(results, r => Assert.True(r.Status is HttpStatusCode.Created or HttpStatusCode.OK, $"{(int)r.Status} {r.Body}"));
        Assert.Single(results, r => r.Status == HttpStatusCode.Created);
        var versions = results.Select(r => int.Parse(r.Body.GetProperty("meta").GetProperty("versionId").GetString()!, System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        Assert.Equal(Enumerable.Range(1, Racers).ToList(), versions);
        using var history = await Api.GetAsync("/fhir/Practitioner/rpps-race/_history");
        Assert.Equal(Racers, (await history.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Parallel_updates_with_the_same_If_Match_let_exactly_one_win_and_the_others_get_412()
    {
        using (var created = await Api.PutAsync("/fhir/Practitioner/rpps-match", FhirContent.Json(Practitioner("rpps-match", "Start"))))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        var results = await RaceAsync(i =>
        {
            var message = new HttpRequestMessage(HttpMethod.Put, "/fhir/Practitioner/rpps-match") { Content = FhirContent.Json(Practitioner("rpps-match", "Racer" + (char)('a' + i))) };
            message.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
            return message;
        }, Api);

        Assert.Single(results, r => r.Status == HttpStatusCode.OK);
        Assert.All(results.Where(r => r.Status != HttpStatusCode.OK), r => Assert.Equal(HttpStatusCode.PreconditionFailed, r.Status));
        using var read = await Api.GetAsync("/fhir/Practitioner/rpps-match");
        Assert.Equal("2", (await read.BodyAsync()).GetProperty("meta").GetProperty("versionId").GetString());
    }

    [Fact]
    public async Task Parallel_transactions_changing_the_same_records_in_opposite_orders_both_succeed()
    {
        foreach (var id in new[] { "rpps-order-a", "rpps-order-b" })
        {
            using var created = await Api.PutAsync($"/fhir/Practitioner/{id}", FhirContent.Json(Practitioner(id, "Start")));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        static string Bundle(string first, string second, string family) => $$"""
            { "resourceType": "Bundle", "type": "transaction", "entry": [
              { "resource": {{Practitioner(first, family)}}, "request": { "method": "PUT", "url": "Practitioner/{{first}}" } },
              { "resource": {{Practitioner(second, family)}}, "request": { "method": "PUT", "url": "Practitioner/{{second}}" } } ] }
            """;

        var results = await RaceAsync(i => new HttpRequestMessage(HttpMethod.Post, "/fhir")
        {
            Content = FhirContent.Json(i % 2 == 0 ? Bundle("rpps-order-a", "rpps-order-b", "Even" + (char)('a' + i)) : Bundle("rpps-order-b", "rpps-order-a", "Odd" + (char)('a' + i))),
        }, Api);

        Assert.All(results, r => Assert.True(r.Status == HttpStatusCode.OK, $"{(int)r.Status} {r.Body}"));
        foreach (var id in new[] { "rpps-order-a", "rpps-order-b" })
        {
            using var read = await Api.GetAsync($"/fhir/Practitioner/{id}");
            Assert.Equal((Racers + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), (await read.BodyAsync()).GetProperty("meta").GetProperty("versionId").GetString());
        }
    }
}

public sealed class ConcurrentWriteTests_Sqlite(FhirServerFixture_Sqlite shared) : ConcurrentWriteTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class ConcurrentWriteTests_Postgres(FhirServerFixture_Postgres shared) : ConcurrentWriteTests(shared), IClassFixture<FhirServerFixture_Postgres>;
