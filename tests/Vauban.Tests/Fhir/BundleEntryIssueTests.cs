// What a batch or transaction answers about a faulty entry must lead a client to that entry: an issue's expression names the
// place in the Bundle (Bundle.entry[3].resource.birthDate, Bundle.entry[1].request.url), not the place in the resource alone
// (Patient.birthDate, which four Patient entries share). On both engines (the derived classes at the end).
using System.Net;
using System.Text.Json;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Fhir;

public abstract class BundleEntryIssueTests(FhirServerFixture shared) : FhirServerTests(shared)
{
    private static string Bundle(string type, params string[] entries) =>
        $$"""{ "resourceType": "Bundle", "type": "{{type}}", "entry": [ {{string.Join(", ", entries)}} ] }""";

    private static string Post(string resource, string? ifNoneExist = null) =>
        $$"""{ "resource": {{resource}}, "request": { "method": "POST", "url": "Patient"{{(ifNoneExist is null ? "" : $", \"ifNoneExist\": \"{ifNoneExist}\"")}} } }""";

    private static string Get(string url) => $$"""{ "request": { "method": "GET", "url": "{{url}}" } }""";

    private static (string Diagnostics, string Expression) FirstIssue(JsonElement outcome)
    {
        var issue = outcome.GetProperty("issue")[0];
        return (issue.GetProperty("diagnostics").GetString()!, issue.GetProperty("expression")[0].GetString()!);
    }

    [Fact]
    public async Task A_batch_entry_refused_for_its_resource_or_its_search_names_its_place_in_the_bundle()
    {
        var good = Samples.Patient(family: "Placee");
        var bad = Samples.Patient(family: "Placee", birthDate: "1980-13-45");
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(Bundle("batch",
            Post(good), Get("Patient?_count=many"), Post(good, ifNoneExist: "birthdate=someday"), Post(bad))));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        var entries = body.GetProperty("entry");
        Assert.StartsWith("201", entries[0].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        foreach (var (index, expression, said) in new[]
        {
            (1, "Bundle.entry[1].request.url", "_count"),
            (2, "Bundle.entry[2].request.ifNoneExist", "'birthdate' expects a FHIR date"),
            (3, "Bundle.entry[3].resource.birthDate", "Invalid date"),
        })
        {
            var answer = entries[index].GetProperty("response");
            Assert.StartsWith("400", answer.GetProperty("status").GetString(), StringComparison.Ordinal);
            var (diagnostics, found) = FirstIssue(answer.GetProperty("outcome"));
            Assert.Equal(expression, found);
            // The entry's own answer: its text says what is wrong, and the position (the entry's) is not repeated in it.
            Assert.StartsWith(said, diagnostics, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_batch_entry_the_server_could_not_run_states_its_position_once()
    {
        // Each says where it is at its start, as a transaction's outcome does; the read's refused parameter said "on
        // Bundle.entry[1]'s read" mid-sentence, and a line quoting it with the position first named the entry twice.
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(Bundle("batch",
            Post(Samples.Patient(family: "Position")), Get("Patient/x?_summary=maybe"), Get("Patient/x?colour=blue"), Get("Nothing/1"), """{ "request": { "method": "GET" } }""")));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        foreach (var (index, said) in new[]
        {
            (1, "Bundle.entry[1]: _summary must be true, text, data or false"),
            (2, "Bundle.entry[2]: 'colour' is not a parameter of a read"),
            (3, "Bundle.entry[3]: 'Nothing' is not a supported resource type."),
            (4, "Bundle.entry[4] needs request.method and request.url."),
        })
        {
            var diagnostics = body.GetProperty("entry")[index].GetProperty("response").GetProperty("outcome").GetProperty("issue")[0].GetProperty("diagnostics").GetString()!;
            Assert.StartsWith(said, diagnostics, StringComparison.Ordinal);
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(diagnostics, @"Bundle\.entry\["));
        }
    }

    [Fact]
    public async Task A_bundle_entry_s_summary_and_elements_are_honoured_and_refused_as_the_request_alone_honours_and_refuses_them()
    {
        // A search entry's _summary=count answers the count alone, as the search alone does; a read's _summary=false the whole
        // resource; _summary=true and _elements the records in part (SummaryElementsTests). What a request alone refuses (a
        // read's _summary=count, an unknown element) an entry refuses, in its place.
        var id = (await CreateAsync("Patient", Samples.Patient(family: "Resume"))).GetProperty("id").GetString()!;
        await CreateAsync("Patient", Samples.Patient(family: "Resume"));
        var entries = new[]
        {
            Get("Patient?family=Resume&_summary=count"), Get("Patient?family=Resume&_summary=false"), Get($"Patient/{id}?_summary=false"),
            Get("Patient?family=Resume&_summary=true"), Get("Patient?family=Resume&_elements=name"), Get($"Patient/{id}?_elements=name"),
            Get($"Patient/{id}?_summary=count"), Get($"Patient/{id}?_elements=nmae"), Get("Patient?family=Resume&_elements=nmae"),
        };
        using var response = await Api.PostAsync("/fhir", FhirContent.Json(Bundle("batch", entries)));
        var body = await response.BodyAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        var answers = body.GetProperty("entry").EnumerateArray().ToList();
        Assert.Equal(["200 OK", "200 OK", "200 OK", "200 OK", "200 OK", "200 OK", "400", "400", "400"], answers.Select(a => a.GetProperty("response").GetProperty("status").GetString()));
        var count = answers[0].GetProperty("resource");
        Assert.Equal(2, count.GetProperty("total").GetInt32());
        Assert.False(count.TryGetProperty("entry", out _));
        Assert.Equal(2, answers[1].GetProperty("resource").GetProperty("entry").GetArrayLength());
        Assert.Equal("Resume", answers[2].GetProperty("resource").GetProperty("name")[0].GetProperty("family").GetString());
        static bool Subsetted(JsonElement resource) => resource.GetProperty("meta").GetProperty("tag").EnumerateArray().Any(t => t.GetProperty("code").GetString() == "SUBSETTED");
        Assert.All(answers[3].GetProperty("resource").GetProperty("entry").EnumerateArray(), e => Assert.True(Subsetted(e.GetProperty("resource"))));
        Assert.All(answers[4].GetProperty("resource").GetProperty("entry").EnumerateArray(), e => Assert.False(e.GetProperty("resource").TryGetProperty("telecom", out _)));
        var part = answers[5].GetProperty("resource");
        Assert.True(Subsetted(part) && part.TryGetProperty("name", out _) && !part.TryGetProperty("telecom", out _), part.ToString());
        for (var index = 6; index < answers.Count; index++)
        {
            var issue = answers[index].GetProperty("response").GetProperty("outcome").GetProperty("issue")[0];
            Assert.Contains(index is 6 ? "_summary" : "nmae", issue.GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }

        // In a transaction too, the count alone, and a read in part.
        using var transaction = await Api.PostAsync("/fhir", FhirContent.Json(Bundle("transaction", entries[0], entries[5])));
        var counted = await transaction.BodyAsync();
        Assert.True(transaction.StatusCode == HttpStatusCode.OK, counted.ToString());
        Assert.Equal(2, counted.GetProperty("entry")[0].GetProperty("resource").GetProperty("total").GetInt32());
        var read = counted.GetProperty("entry")[1].GetProperty("resource");
        Assert.True(Subsetted(read) && !read.TryGetProperty("telecom", out _), read.ToString());
    }

    [Fact]
    public async Task A_transaction_refused_for_one_entry_names_that_entry_in_its_outcome_once()
    {
        var good = Samples.Patient(family: "Transaction");
        var bad = Samples.Patient(family: "Transaction", birthDate: "1980-13-45");
        // Refused before anything is written (the resources are validated first), and once the entries run (a search's parameters).
        foreach (var (bundle, expression, said) in new[]
        {
            (Bundle("transaction", Post(good), Post(good), Post(good), Post(bad)), "Bundle.entry[3].resource.birthDate", "Bundle.entry[3]: Invalid date"),
            (Bundle("transaction", Post(good), $$"""{ "resource": {{Samples.Patient(id: "a")}}, "request": { "method": "PUT", "url": "Patient/b" } }"""),
                "Bundle.entry[1].resource.id", "Bundle.entry[1]: The resource id must equal the id in request.url."),
            (Bundle("transaction", Post(good), Get("Patient?_count=many")), "Bundle.entry[1].request.url", "Bundle.entry[1] (GET Patient): "),
        })
        {
            using var response = await Api.PostAsync("/fhir", FhirContent.Json(bundle));
            var body = await response.BodyAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body.ToString());
            var (diagnostics, found) = FirstIssue(body);
            Assert.Equal(expression, found);
            Assert.StartsWith(said, diagnostics, StringComparison.Ordinal);
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(diagnostics, @"Bundle\.entry\["));
        }
        Assert.Empty(Ids(await SearchAsync("Patient?family=Transaction")));
    }
}

public sealed class BundleEntryIssueTests_Sqlite(FhirServerFixture_Sqlite shared) : BundleEntryIssueTests(shared), IClassFixture<FhirServerFixture_Sqlite>;

public sealed class BundleEntryIssueTests_Postgres(FhirServerFixture_Postgres shared) : BundleEntryIssueTests(shared), IClassFixture<FhirServerFixture_Postgres>;
