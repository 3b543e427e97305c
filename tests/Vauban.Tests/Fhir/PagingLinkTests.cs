// A paging link carries its whole query: a parameter added beside _page was ignored, so _id=x beside a search's next link
// answered the page as if it were not there. Each kind of paged answer refuses it with 400.
using System.Net;
using System.Text.Json;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class PagingLinkTests(Engine engine) : FhirServerTests(engine)
{
    private async Task<string> NextAsync(string url)
    {
        using var response = await Api.GetAsync(url);
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url}: {(int)response.StatusCode} {body}");
        return body.GetProperty("link").EnumerateArray().Single(l => l.GetProperty("relation").GetString() == "next").GetProperty("url").GetString()!;
    }

    [Fact]
    public async Task A_parameter_given_beside_a_paging_link_is_refused_not_ignored()
    {
        string patient = "";
        for (var i = 0; i < 3; i++)
        {
            using var created = await Api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Page")));
            patient = (await created.BodyAsync()).GetProperty("id").GetString()!;
        }
        using (var updated = await Api.PutAsync($"/fhir/Patient/{patient}", FhirContent.Json(Samples.Patient(family: "Page2", id: patient)))) Assert.Equal(HttpStatusCode.OK, updated.StatusCode);

        foreach (var first in new[] { "/fhir/Patient?_count=1", "/fhir/Patient/_history?_count=1", $"/fhir/Patient/{patient}/_history?_count=1" })
        {
            var next = await NextAsync(first);
            foreach (var beside in new[] { "_id=nothing", "_count=5", "_since=2099-01-01T00:00:00Z" })
            {
                using var response = await Api.GetAsync(next + "&" + beside);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{first} next &{beside}: {(int)response.StatusCode} {body}");
                Assert.Equal("OperationOutcome", JsonDocument.Parse(body).RootElement.GetProperty("resourceType").GetString());
            }
            using var formatted = await Api.GetAsync(next + "&_format=json&_pretty=true");
            Assert.Equal(HttpStatusCode.OK, formatted.StatusCode);
        }
    }
}

public sealed class PagingLinkTests_Sqlite() : PagingLinkTests(Engine.Sqlite);

public sealed class PagingLinkTests_Postgres() : PagingLinkTests(Engine.Postgres);
