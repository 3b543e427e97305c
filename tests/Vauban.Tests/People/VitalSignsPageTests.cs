// Recording vital signs from the clinician UI over HTTP, on both engines: the measures become FHIR R4 Observations shaped by
// the vital signs profiles, written in one transaction through the records service (its policy, guard and audit); bad input
// is refused with a clear page and records nothing; a role that does not record observations, or a patient outside the
// person's care, is refused by the records service.
using System.Globalization;
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.People;

public abstract class VitalSignsPageTests(Engine engine) : StaffPageTests(engine, "chu-vitals")
{

    protected override async Task SetUpAsync()
    {
        await CreateAsync("nurse", Samples.Practitioner(family: "Soignant", rpps: "10001234567"));
        await CreateAsync("mine", Samples.Patient(family: "Vital", given: "Rose", birthDate: "1958-01-20", nir: Samples.ValidNir("2580144109001")));
        await CreateAsync("other", Samples.Patient(family: "Ailleurs", given: "Paul", nir: Samples.ValidNir("1800344109002")));
        var yesterday = Time.GetUtcNow().AddDays(-1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        await CreateAsync("enc", Samples.Encounter(Ids["mine"], Ids["nurse"], yesterday));
        await EnrolAsync("nurse@chu.example", StaffRole.Nurse, Ids["nurse"]);
    }

    private string Page(string patient = "mine") => $"/patients/{Ids[patient]}/vitals";

    private async Task<List<JsonElement>> ObservationsOfAsync(string patient)
    {
        var page = await Server.Store.Records.SearchAsync(AccessContext.Operator(Tenant, "test"), "Observation",
            [new("patient", Ids[patient])], null, false, CancellationToken.None);
        return [.. page.Entries.Select(e => JsonDocument.Parse(e.Json).RootElement.Clone())];
    }

    [Fact]
    public async Task A_nurse_records_vital_signs_which_are_FHIR_vital_signs_observations_on_the_chart_and_in_the_audit_trail()
    {
        using var nurse = await SignedInAsync("nurse@chu.example");
        var (form, html) = await nurse.GetAsync(Page());
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        Assert.Equal("VITAL Rose", StaffClient.ById(html, "patient-name")); // the patient is named: measures go on the right chart
        var (chart, chartHtml) = await nurse.GetAsync($"/patients/{Ids["mine"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.Contains("id=\"record-vitals\"", chartHtml, StringComparison.Ordinal);

        var (done, doneHtml) = await nurse.SubmitAsync(Page(), new Dictionary<string, string>
        {
            ["Measures[Systolic]"] = "132", ["Measures[Diastolic]"] = "84", ["Measures[HeartRate]"] = "72", ["Measures[Temperature]"] = "37,8", ["Measures[Weight]"] = "",
        });
        Assert.True(done.StatusCode == HttpStatusCode.Redirect, done.StatusCode + doneHtml + Server.AllLogs());
        Assert.Equal($"/patients/{Ids["mine"]}", done.Headers.Location?.ToString());
        var (_, after) = await nurse.GetAsync($"/patients/{Ids["mine"]}");
        Assert.StartsWith("Recorded heart rate 72 beats/min, temperature 37.8 °C, blood pressure 132/84 mmHg", StaffClient.ById(after, "done"), StringComparison.Ordinal);
        Assert.Contains("Heart rate", after, StringComparison.Ordinal);

        var observations = await ObservationsOfAsync("mine");
        Assert.Equal(3, observations.Count);
        foreach (var o in observations)
        {
            Assert.Equal("final", o.GetProperty("status").GetString());
            Assert.Equal("vital-signs", o.GetProperty("category")[0].GetProperty("coding")[0].GetProperty("code").GetString());
            Assert.Equal("Patient/" + Ids["mine"], o.GetProperty("subject").GetProperty("reference").GetString());
            Assert.Equal("Practitioner/" + Ids["nurse"], o.GetProperty("performer")[0].GetProperty("reference").GetString());
            Assert.True(DateTimeOffset.Parse(o.GetProperty("effectiveDateTime").GetString()!, CultureInfo.InvariantCulture) <= Time.GetUtcNow());
        }
        JsonElement Coded(string loinc) => Assert.Single(observations, o => o.GetProperty("code").GetProperty("coding")[0].GetProperty("code").GetString() == loinc);
        var temperature = Coded("8310-5").GetProperty("valueQuantity");
        Assert.Equal(37.8m, temperature.GetProperty("value").GetDecimal());
        Assert.Equal(("http://unitsofmeasure.org", "Cel"), (temperature.GetProperty("system").GetString(), temperature.GetProperty("code").GetString()));
        Assert.Equal(72m, Coded("8867-4").GetProperty("valueQuantity").GetProperty("value").GetDecimal());
        var pressure = Coded("85354-9").GetProperty("component").EnumerateArray()
            .Select(c => (c.GetProperty("code").GetProperty("coding")[0].GetProperty("code").GetString(), c.GetProperty("valueQuantity").GetProperty("value").GetDecimal(),
                c.GetProperty("valueQuantity").GetProperty("code").GetString())).ToList();
        Assert.Equal([("8480-6", 132m, "mm[Hg]"), ("8462-4", 84m, "mm[Hg]")], pressure);

        var creates = await Server.AuditEntriesOfAsync(Tenant, "nurse@chu.example", AuditAction.Create);
        Assert.Equal(3, creates.Count(e => e.Outcome == AuditOutcome.Success && e.ResourceType == "Observation" && e.Detail.Patient == Ids["mine"]));
    }

    // Each bad input (the field, the value typed, what the page must say). One server and one sign-in for all: none writes anything.
    private static readonly (string Field, string Value, string Said)[] BadInputs =
    [
        ("HeartRate", "700", "Heart rate is between 20 and 300 beats/min"),
        ("HeartRate", "72.5", "Heart rate is a whole number of beats/min."),
        ("Temperature", "98.6", "Temperature is between 30 and 45 °C"),
        ("Temperature", "trente-sept", "is not a number"),
        ("Temperature", "-37", "is not a number"),
        ("Systolic", "120", "Give the blood pressure's two values"),
        ("Diastolic", "80", "Give the blood pressure's two values"),
        ("Pressure", "80/120", "The diastolic pressure must be lower than the systolic"),
        ("Nothing", "", "Give at least one measure."),
        ("Future", "", "The measures' time is in the future"),
        ("LongAgo", "", "up to 7 days after they were taken"),
    ];

    [Fact]
    public async Task Bad_input_is_refused_with_a_clear_message_and_records_nothing()
    {
        using var nurse = await SignedInAsync("nurse@chu.example");
        string Local(TimeSpan offset, string format) => ParisTime.Of(Time.GetUtcNow() + offset).ToString(format, CultureInfo.InvariantCulture);
        static string M(string sign) => $"Measures[{sign}]";
        foreach (var (field, value, said) in BadInputs)
        {
            var fields = field switch
            {
                "Pressure" => new Dictionary<string, string> { [M("Systolic")] = value.Split('/')[0], [M("Diastolic")] = value.Split('/')[1] },
                "Nothing" => new Dictionary<string, string> { [M("HeartRate")] = " " },
                "Future" => new Dictionary<string, string> { [M("HeartRate")] = "70", ["Date"] = Local(TimeSpan.FromHours(3), "yyyy-MM-dd"), ["Time"] = Local(TimeSpan.FromHours(3), "HH:mm") },
                "LongAgo" => new Dictionary<string, string> { [M("HeartRate")] = "70", ["Date"] = Local(TimeSpan.FromDays(-8), "yyyy-MM-dd"), ["Time"] = "10:00" },
                _ => new Dictionary<string, string> { [M(field)] = value, [M("HeartRate")] = field == "HeartRate" ? value : "70" },
            };
            var (refused, html) = await nurse.SubmitAsync(Page(), fields);
            Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, $"{field}={value}: {refused.StatusCode} {html}");
            Assert.True(StaffClient.ById(html, "error")?.Contains(said, StringComparison.Ordinal) == true, $"{field}={value}: {StaffClient.ById(html, "error")}");
            Assert.Equal("VITAL Rose", StaffClient.ById(html, "patient-name")); // the form again, as typed
            if (field is "HeartRate" or "Temperature") Assert.Equal(value, StaffClient.FieldValue(html, M(field)));
        }
        Assert.Empty(await ObservationsOfAsync("mine"));
        Assert.DoesNotContain(await Server.AuditEntriesOfAsync(Tenant, "nurse@chu.example", AuditAction.Create), e => e.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public async Task A_role_that_records_no_observations_is_not_offered_the_form_and_a_forged_post_is_refused_by_the_records_service()
    {
        // The front desk reads identities establishment-wide but records nothing clinical (RolePermissions).
        await EnrolAsync("desk@chu.example", StaffRole.Secretary, null);
        using var desk = await SignedInAsync("desk@chu.example");
        var (chart, chartHtml) = await desk.GetAsync($"/patients/{Ids["mine"]}");
        Assert.Equal(HttpStatusCode.OK, chart.StatusCode);
        Assert.DoesNotContain("record-vitals", chartHtml, StringComparison.Ordinal);

        var (forged, html) = await desk.SubmitAsync(Page(), new Dictionary<string, string> { ["Measures[HeartRate]"] = "72" });
        Assert.True(forged.StatusCode == HttpStatusCode.Forbidden, forged.StatusCode + html);
        Assert.Equal("Nothing was recorded. Your role does not record vital signs.", StaffClient.ById(html, "error"));
        Assert.Empty(await ObservationsOfAsync("mine"));
        var refusals = await Server.AuditEntriesOfAsync(Tenant, "desk@chu.example", AuditAction.Create);
        // On the patient's access history: the refusal names the patient whose record the form was for.
        Assert.Contains(refusals, e => e.Outcome != AuditOutcome.Success && e.Detail.Patient == Ids["mine"]);
        Assert.DoesNotContain(refusals, e => e.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public async Task A_patient_outside_the_nurses_care_is_refused_and_nothing_is_recorded()
    {
        using var nurse = await SignedInAsync("nurse@chu.example");
        var (form, html) = await nurse.GetAsync(Page("other"));
        Assert.Equal(HttpStatusCode.Forbidden, form.StatusCode);
        Assert.Contains("not in your care relationships", StaffClient.ById(html, "error"), StringComparison.Ordinal);
        Assert.DoesNotContain("Ailleurs", html, StringComparison.OrdinalIgnoreCase);

        // A post made anyway (the token from the nurse's own patient's page) is refused by the records service.
        var token = StaffClient.Token((await nurse.GetAsync(Page())).Html);
        using var post = await nurse.Http.PostAsync(Page("other"), new FormUrlEncodedContent(new Dictionary<string, string> { ["Measures[HeartRate]"] = "72", ["__RequestVerificationToken"] = token }));
        Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
        Assert.Empty(await ObservationsOfAsync("other"));
        var (unknown, _) = await nurse.GetAsync("/patients/no-such-patient/vitals");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }
}

public sealed class VitalSignsPageTests_Sqlite() : VitalSignsPageTests(Engine.Sqlite);

public sealed class VitalSignsPageTests_Postgres() : VitalSignsPageTests(Engine.Postgres);
