// A page on a sibling host of the same registrable domain (intranet.chu.example beside vauban.chu.example) is the same site:
// SameSite=Strict does not keep the session cookie off its requests. An outside review (2026-12-07) had such a page's two
// <img> tags search /fhir/Patient?_count=50 in a signed-in clinician's name: every patient was read and audited as hers, and the
// guard suspended her session (a second time would lock her account). Browsers say who made a request (Fetch Metadata:
// Sec-Fetch-Site); with the session cookie, one another site's page made runs nothing in the person's name, on both engines.
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class AnotherSitesRequestTests(Engine engine) : StaffPageTests(engine, "chu-sites")
{
    private const string Billing = "billing@chu.example";

    protected override async Task SetUpAsync()
    {
        await CreateAsync("first", Samples.Patient(family: "Premier", given: "Anne", nir: Samples.ValidNir("2800344109001")));
        for (var i = 1; i < 30; i++)
        {
            await CreateAsync("p" + i, Samples.Patient(family: "Suivant" + (char)('a' + i % 26), given: "Paul", nir: Samples.ValidNir($"1800344{100000 + i}")));
        }
        await EnrolAsync(Billing, StaffRole.Billing, null);
    }

    /// <summary>A GET as Chromium sends it for <paramref name="site"/> (null: no Fetch Metadata, as a non-browser client).</summary>
    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(StaffClient staff, string url, string? site, string mode = "no-cors", string dest = "image")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (site is not null)
        {
            request.Headers.Add("Sec-Fetch-Site", site);
            request.Headers.Add("Sec-Fetch-Mode", mode);
            request.Headers.Add("Sec-Fetch-Dest", dest);
        }
        using var response = await staff.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_sibling_sites_images_search_nothing_in_her_name_and_her_session_is_neither_suspended_nor_kept_alive()
    {
        using var billing = await SignedInAsync(Billing);
        var entriesBefore = await AuditEntriesAsync();
        foreach (var url in new[] { "/fhir/Patient?_count=50", "/fhir/Patient?_count=50&name=suivant", $"/fhir/Patient/{Ids["first"]}" })
        {
            var (status, body) = await GetAsync(billing, url, "same-site");
            Assert.Equal(HttpStatusCode.Forbidden, status);
            using var outcome = JsonDocument.Parse(body);
            Assert.Equal("OperationOutcome", outcome.RootElement.GetProperty("resourceType").GetString());
            Assert.Equal("forbidden", outcome.RootElement.GetProperty("issue")[0].GetProperty("code").GetString());
            Assert.DoesNotContain("Premier", body, StringComparison.OrdinalIgnoreCase);
        }
        // A request from another site altogether (a browser that sent the cookie anyway) is refused alike.
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(billing, "/fhir/Patient?_count=50", "cross-site")).Status);
        // Nothing ran in her name: not one entry on the chain, and the guard weighed nothing — her own search of 10 patients is neither stepped up nor
        // suspended, as it would be after the 30 distinct patients of those searches (step-up past 15 a minute, suspension past 25).
        Assert.Equal(entriesBefore, await AuditEntriesAsync());
        var (own, ownBody) = await GetAsync(billing, "/fhir/Patient?_count=10", "same-origin", "cors", "empty");
        Assert.True(own == HttpStatusCode.OK, own + ownBody);
        Assert.Equal(10, JsonDocument.Parse(ownBody).RootElement.GetProperty("entry").GetArrayLength());
        // Typed in the address bar (none) and without Fetch Metadata (a non-browser client), as before.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(billing, $"/fhir/Patient/{Ids["first"]}", "none", "navigate", "document")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(billing, $"/fhir/Patient/{Ids["first"]}", null)).Status);

        // Another site's requests do not keep her session alive: 14 minutes of them, then the idle end (15 minutes) is met.
        Time.Advance(TimeSpan.FromMinutes(8));
        Assert.Equal(HttpStatusCode.Forbidden, (await GetAsync(billing, "/fhir/Patient?_count=1", "same-site")).Status);
        Time.Advance(TimeSpan.FromMinutes(8));
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync(billing, "/fhir/Patient?_count=1", "same-origin", "cors", "empty")).Status);
    }

    [Fact]
    public async Task A_link_followed_from_a_sibling_site_opens_a_page_that_shows_nothing_and_offers_to_open_the_address_from_here()
    {
        using var billing = await SignedInAsync(Billing);
        var chart = $"/patients/{Ids["first"]}";
        var (status, page) = await GetAsync(billing, chart, "same-site", "navigate", "document");
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal("Opened from another site", StaffClient.ById(page, "status"));
        Assert.Contains($"id=\"continue\" href=\"{chart}\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("PREMIER", page, StringComparison.OrdinalIgnoreCase);
        // Opened from here (her click on that link is this site's own request), the chart is hers to read.
        var (opened, chartPage) = await GetAsync(billing, chart, "same-origin", "navigate", "document");
        Assert.Equal(HttpStatusCode.OK, opened);
        Assert.Contains("PREMIER", chartPage, StringComparison.Ordinal);
        // The link never leads to another host, whatever path was asked for.
        var (_, odd) = await GetAsync(billing, Server.BaseAddress.GetLeftPart(UriPartial.Authority) + "//evil.example/x?y=1", "same-site", "navigate", "document");
        Assert.Contains("id=\"continue\" href=\"/evil.example/x?y=1\"", odd, StringComparison.Ordinal);
        // An image or a script another site's page asks of a staff page gets the refusal, without the link.
        var (image, refusal) = await GetAsync(billing, chart, "same-site");
        Assert.Equal(HttpStatusCode.Forbidden, image);
        Assert.Equal("Sent from another site", StaffClient.ById(refusal, "status"));
        Assert.DoesNotContain("id=\"continue\"", refusal, StringComparison.Ordinal);
    }

    private async Task<long> AuditEntriesAsync() =>
        (await Server.Store.AuditLog.VerifyAsync(Tenant.Id, null, CancellationToken.None)).Entries;
}

public sealed class AnotherSitesRequestTests_Sqlite() : AnotherSitesRequestTests(Engine.Sqlite);

public sealed class AnotherSitesRequestTests_Postgres() : AnotherSitesRequestTests(Engine.Postgres);
