// What a read, vread, update or delete by id does with what comes beside the id: a query it does not honour, an If-Match naming a
// deleted version, a conditional read. Found by probing the API as an integrating client; each test failed before its fix.
using System.Net;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class InstanceInteractionTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    private async Task PutAsync(string id, string family, HttpStatusCode expected)
    {
        using var response = await Api.PutAsync($"/fhir/Patient/{id}", FhirContent.Json(Samples.Patient(family: family, id: id)));
        Assert.True(response.StatusCode == expected, $"PUT Patient/{id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response, string what)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{what}: {(int)response.StatusCode} {body}");
        Assert.Contains("\"OperationOutcome\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_update_or_delete_by_id_with_a_query_is_refused_and_changes_nothing()
    {
        await PutAsync("requete", "Avant", HttpStatusCode.Created);

        // A client that meant a conditional update (criteria beside an id) is told so; the update is not made without them.
        using (var put = await Api.PutAsync("/fhir/Patient/requete?name=Avant", FhirContent.Json(Samples.Patient(family: "Apres", id: "requete"))))
        {
            await AssertRefusedAsync(put, "PUT Patient/requete?name=Avant");
        }
        using (var delete = await Api.DeleteAsync("/fhir/Patient/requete?x=y")) await AssertRefusedAsync(delete, "DELETE Patient/requete?x=y");
        using (var create = await Api.PostAsync("/fhir/Patient?identifier=a|b", FhirContent.Json(Samples.Patient(family: "Double"))))
        {
            await AssertRefusedAsync(create, "POST Patient?identifier=a|b");
        }

        using var read = await Api.GetAsync("/fhir/Patient/requete");
        var body = await read.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal("1", body.GetProperty("meta").GetProperty("versionId").GetString());
        Assert.Equal("Avant", body.GetProperty("name")[0].GetProperty("family").GetString());

        // _format and _pretty are every interaction's.
        using var formatted = await Api.PutAsync("/fhir/Patient/requete?_format=json&_pretty=true", FhirContent.Json(Samples.Patient(family: "Apres", id: "requete")));
        Assert.Equal(HttpStatusCode.OK, formatted.StatusCode);
    }

    [Fact]
    public async Task A_read_or_vread_with_a_parameter_it_does_not_apply_is_refused_not_ignored()
    {
        await PutAsync("lecture", "Lecture", HttpStatusCode.Created);
        foreach (var query in new[] { "foo=bar", "_count=1", "_sort=_id" })
        {
            using (var read = await Api.GetAsync($"/fhir/Patient/lecture?{query}")) await AssertRefusedAsync(read, "read ?" + query);
            using (var vread = await Api.GetAsync($"/fhir/Patient/lecture/_history/1?{query}")) await AssertRefusedAsync(vread, "vread ?" + query);
        }
        // _summary and _elements are a read's (SummaryElementsTests).
        foreach (var query in new[] { "_format=json", "_pretty=true", "_summary=false", "_summary=true", "_summary=text", "_elements=id" })
        {
            using var read = await Api.GetAsync($"/fhir/Patient/lecture?{query}");
            Assert.True(read.StatusCode == HttpStatusCode.OK, $"read ?{query}: {(int)read.StatusCode}");
        }
    }

    [Fact]
    public async Task A_batch_read_or_vread_with_a_parameter_it_does_not_apply_is_that_entrys_400()
    {
        await PutAsync("lot", "Lot", HttpStatusCode.Created);
        using var response = await Api.PostAsync("/fhir", FhirContent.Json("""
            { "resourceType": "Bundle", "type": "batch", "entry": [
              { "request": { "method": "GET", "url": "Patient/lot?_count=1" } },
              { "request": { "method": "GET", "url": "Patient/lot/_history/1?foo=bar" } },
              { "request": { "method": "GET", "url": "Patient/lot?_format=json" } } ] }
            """));
        var body = await response.BodyAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var statuses = body.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("response").GetProperty("status").GetString()![..3]).ToList();
        Assert.Equal(["400", "400", "200"], statuses);
    }

    [Fact]
    public async Task A_conditional_read_of_the_version_the_client_holds_is_304_without_the_record()
    {
        await PutAsync("cache", "Cache", HttpStatusCode.Created);
        DateTimeOffset lastModified;
        using (var read = await Api.GetAsync("/fhir/Patient/cache")) lastModified = read.Content.Headers.LastModified!.Value;

        foreach (var (header, value, expected) in new[]
                 {
                     ("If-None-Match", "W/\"1\"", HttpStatusCode.NotModified), ("If-None-Match", "\"1\"", HttpStatusCode.NotModified),
                     ("If-None-Match", "*", HttpStatusCode.NotModified), ("If-None-Match", "W/\"7\", W/\"1\"", HttpStatusCode.NotModified),
                     ("If-None-Match", "W/\"2\"", HttpStatusCode.OK),
                     ("If-Modified-Since", lastModified.ToString("R", System.Globalization.CultureInfo.InvariantCulture), HttpStatusCode.NotModified),
                     ("If-Modified-Since", lastModified.AddDays(-1).ToString("R", System.Globalization.CultureInfo.InvariantCulture), HttpStatusCode.OK),
                 })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient/cache");
            request.Headers.TryAddWithoutValidation(header, value);
            using var response = await Api.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == expected, $"{header}: {value}: {(int)response.StatusCode}");
            Assert.Equal("W/\"1\"", response.Headers.ETag!.ToString());
            Assert.Equal(expected == HttpStatusCode.OK, body.Length > 0);
        }

        // A new version is read again.
        await PutAsync("cache", "Change", HttpStatusCode.OK);
        using var stale = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient/cache");
        stale.Headers.TryAddWithoutValidation("If-None-Match", "W/\"1\"");
        using var fresh = await Api.SendAsync(stale);
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        Assert.Equal("W/\"2\"", fresh.Headers.ETag!.ToString());
    }

    [Fact]
    public async Task A_written_versions_Last_Modified_is_never_later_than_the_responses_Date()
    {
        // RFC 9110 §8.8.2.1. Kestrel's Date is refreshed once a second: before, a version written just after the second turned
        // was answered with a Last-Modified a second later than the Date, for about one write in two.
        for (var i = 0; i < 12; i++)
        {
            using var response = await Api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Horloge")));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            var date = response.Headers.Date!.Value;
            var lastModified = response.Content.Headers.LastModified!.Value;
            Assert.True(lastModified <= date, $"Last-Modified {lastModified:R} is later than Date {date:R}");
            await Task.Delay(90);
        }
    }

    [Fact]
    public async Task A_write_precondition_the_server_does_not_evaluate_is_refused_not_ignored()
    {
        await PutAsync("garde", "Garde", HttpStatusCode.Created);
        // If-None-Match: * is "only if it does not exist": the record exists, and was overwritten.
        foreach (var (header, value) in new[] { ("If-None-Match", "*"), ("If-None-Match", "W/\"1\""), ("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT") })
        {
            foreach (var method in new[] { HttpMethod.Put, HttpMethod.Delete })
            {
                using var request = new HttpRequestMessage(method, "/fhir/Patient/garde");
                if (method == HttpMethod.Put) request.Content = FhirContent.Json(Samples.Patient(family: "Ecrase", id: "garde"));
                request.Headers.TryAddWithoutValidation(header, value);
                using var response = await Api.SendAsync(request);
                await AssertRefusedAsync(response, $"{method} with {header}: {value}");
            }
        }
        // A create's condition on an update: it was ignored and the record overwritten.
        using (var request = new HttpRequestMessage(HttpMethod.Put, "/fhir/Patient/garde") { Content = FhirContent.Json(Samples.Patient(family: "Ecrase", id: "garde")) })
        {
            request.Headers.TryAddWithoutValidation("If-None-Exist", "family=Garde");
            using var response = await Api.SendAsync(request);
            await AssertRefusedAsync(response, "PUT with If-None-Exist");
        }
        using (var read = await Api.GetAsync("/fhir/Patient/garde"))
        {
            Assert.Equal("1", (await read.BodyAsync()).GetProperty("meta").GetProperty("versionId").GetString());
        }
        // An update's or a read's condition on a create: it was ignored and a record created.
        foreach (var (header, value) in new[] { ("If-Match", "W/\"5\""), ("If-Match", "*"), ("If-None-Match", "*"), ("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirContent.Json(Samples.Patient(family: "Doublon")) };
            request.Headers.TryAddWithoutValidation(header, value);
            using var response = await Api.SendAsync(request);
            await AssertRefusedAsync(response, $"POST with {header}: {value}");
        }
        using var search = await Api.GetAsync("/fhir/Patient?family=Doublon&_summary=count");
        Assert.Equal(0, (await search.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task If_Match_naming_the_version_a_deletion_made_does_not_bring_the_record_back()
    {
        await PutAsync("efface", "Efface", HttpStatusCode.Created);
        using (var delete = await Api.DeleteAsync("/fhir/Patient/efface"))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
            Assert.Equal("W/\"2\"", delete.Headers.ETag!.ToString());
        }

        var revive = new HttpRequestMessage(HttpMethod.Put, "/fhir/Patient/efface") { Content = FhirContent.Json(Samples.Patient(family: "Revenu", id: "efface")) };
        revive.Headers.TryAddWithoutValidation("If-Match", "W/\"2\"");
        using (var response = await Api.SendAsync(revive))
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.PreconditionFailed, $"{(int)response.StatusCode} {body}");
            Assert.Contains("\"OperationOutcome\"", body, StringComparison.Ordinal);
        }
        using (var read = await Api.GetAsync("/fhir/Patient/efface")) Assert.Equal(HttpStatusCode.Gone, read.StatusCode);
    }
}

public sealed class InstanceInteractionTests_Sqlite(FhirServerFixture_Sqlite shared) : InstanceInteractionTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class InstanceInteractionTests_Postgres(FhirServerFixture_Postgres shared) : InstanceInteractionTests(shared), IClassFixture<FhirServerFixture_Postgres>;
