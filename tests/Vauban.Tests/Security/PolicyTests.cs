// Adversarial tests of the access policy (issue 3): who may open which patient's record. People are
// given their access context directly (sign-in has its own tests); each test is named after the attack
// it tries: IDOR across patients through read, search, _include, history, Bundle and $everything; role
// escalation; writing oneself into a patient's care; break-the-glass without reason or re-authentication.
using System.Globalization;
using System.Net;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public abstract class PolicyTests(PolicyServer shared) : IAsyncLifetime
{
    // One server for the class (PolicyServer), each test in an establishment of its own: relationships, remembered decisions
    // and the audit log are an establishment's.
    private readonly string _establishment = SharedServer.EstablishmentName("hopital-policy");
    private readonly VaubanServer _server = shared.Server;
    private Tenant _tenant = null!;
    private readonly Dictionary<string, string> _ids = [];
    private static readonly CancellationToken None = CancellationToken.None;

    private RecordsService Records => _server.Store.Records;

    private static string Day(int offset) => DateTimeOffset.UtcNow.AddDays(offset).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public async Task InitializeAsync()
    {
        _tenant = await _server.Store.Tenants.AddAsync(_establishment, None);
        async Task<string> Create(string key, string json) => _ids[key] = await _server.CreateAsOperatorAsync(_tenant, json);
        await Create("cardiology", """{"resourceType":"Organization","name":"Cardiologie"}""");
        await Create("lab", """{"resourceType":"Organization","name":"Laboratoire"}""");
        await Create("drA", Samples.Practitioner("Alpha", "10000000001"));
        await Create("drB", Samples.Practitioner("Bravo", "10000000002"));
        await Create("p1", Samples.Patient(family: "Related", nir: Samples.ValidNir("1800344109001")));
        await Create("p2", Samples.Patient(family: "Unrelated", nir: Samples.ValidNir("1800344109002"), gp: "Practitioner/" + _ids["drB"]));
        await Create("p3", Samples.Patient(family: "LongAgo", nir: Samples.ValidNir("1800344109003")));
        await Create("p4", Samples.Patient(family: "GpOfA", nir: Samples.ValidNir("1800344109004"), gp: "Practitioner/" + _ids["drA"]));
        await Create("enc1", Encounter(_ids["p1"], _ids["drA"], _ids["cardiology"], Day(-10)));
        await Create("enc2", Encounter(_ids["p2"], _ids["drB"], null, Day(-5)));
        await Create("enc3", Encounter(_ids["p3"], _ids["drA"], null, Day(-800)));
        await Create("obs1", Samples.Observation("Patient/" + _ids["p1"], effective: Day(-9)).Replace("\"status\": \"final\",", $"\"status\": \"final\", \"performer\": [{{\"reference\": \"Organization/{_ids["lab"]}\"}}],", StringComparison.Ordinal));
        await Create("obs2", Samples.Observation("Patient/" + _ids["p2"], effective: Day(-4)));
        await Create("inv1", $$$"""{"resourceType":"Invoice","status":"issued","subject":{"reference":"Patient/{{{_ids["p1"]}}}"}}""");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private static string Encounter(string patient, string practitioner, string? service, string start) => Samples.Encounter(patient, practitioner, start, service);

    private AccessContext Person(StaffRole role, string? practitioner = null, string? service = null, string id = "user:1", DateTimeOffset? authenticatedAt = null)
    {
        SmartScopes.TryParse("user/*.cruds", TypeCodes.Names, out var scopes, out _);
        return new AccessContext(new Principal(PrincipalKind.Person, id, "Test " + role, scopes)
        {
            Role = role,
            Practitioner = practitioner is null ? null : _ids[practitioner],
            Service = service is null ? null : _ids[service],
            SessionId = "s-" + id,
            AuthenticatedAt = authenticatedAt ?? DateTimeOffset.UtcNow.AddHours(-1),
        }, _tenant, "TREAT");
    }

    private AccessContext DrA => Person(StaffRole.Physician, "drA", id: "user:drA");

    private async Task<List<string>> SearchIdsAsync(AccessContext context, string type, params (string, string)[] parameters)
    {
        var page = await Records.SearchAsync(context, type, parameters.Select(p => new KeyValuePair<string, string>(p.Item1, p.Item2)).ToList(), null, false, None);
        Assert.Equal(RecordStatus.Ok, page.Status);
        return page.Entries.Select(e => e.Type + "/" + e.Id).ToList();
    }

    [Fact]
    public async Task Idor_read_a_patient_outside_ones_care_is_refused_with_break_the_glass_offered()
    {
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA, "Patient", _ids["p1"], None)).Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA, "Observation", _ids["obs1"], None)).Status);
        var refused = await Records.ReadAsync(DrA, "Patient", _ids["p2"], None);
        Assert.Equal(RecordStatus.Forbidden, refused.Status);
        Assert.Contains("break-the-glass", refused.Issues![0].Diagnostics, StringComparison.OrdinalIgnoreCase);
        Assert.Null(refused.Json);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(DrA, "Observation", _ids["obs2"], None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.VReadAsync(DrA, "Observation", _ids["obs2"], 1, None)).Status);
    }

    [Fact]
    public async Task A_physician_filing_a_record_under_a_patient_that_does_not_exist_is_not_told_the_patient_is_outside_their_care()
    {
        var outside = await Records.CreateAsync(DrA, "Observation", JsonDocument.Parse(Samples.Observation($"Patient/{_ids["p2"]}")).RootElement, null, None);
        var unknown = await Records.CreateAsync(DrA, "Observation", JsonDocument.Parse(Samples.Observation("Patient/no-such-patient-here")).RootElement, null, None);
        // The policy answers first (ADR 0006), the same for both: break-the-glass is possible. Its words no longer claim that
        // the patient exists ("is outside your care relationships" did, for an id no patient has).
        foreach (var (refused, patient) in new[] { (outside, _ids["p2"]), (unknown, "no-such-patient-here") })
        {
            Assert.Equal(RecordStatus.Forbidden, refused.Status);
            Assert.StartsWith($"Patient/{patient} is not a patient in your care relationships (or not a patient here). Break-the-glass is possible",
                refused.Issues![0].Diagnostics, StringComparison.Ordinal);
        }
        Assert.Equal(outside.Issues![0].Diagnostics.Replace(_ids["p2"], "no-such-patient-here", StringComparison.Ordinal), unknown.Issues![0].Diagnostics);
    }

    [Fact]
    public async Task A_relationship_older_than_the_window_no_longer_opens_the_record_but_a_declared_gp_does()
    {
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(DrA, "Patient", _ids["p3"], None)).Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA, "Patient", _ids["p4"], None)).Status);
    }

    [Fact]
    public async Task A_remembered_refusal_does_not_outlive_a_relationship_written_since()
    {
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(DrA, "Patient", _ids["p3"], None)).Status);
        Assert.DoesNotContain("Patient/" + _ids["p3"], await SearchIdsAsync(DrA, "Patient"));
        using var document = JsonDocument.Parse(Encounter(_ids["p3"], _ids["drA"], null, Day(0)));
        Assert.Equal(RecordStatus.Created, (await Records.CreateAsync(AccessContext.Operator(_tenant, "admission"), "Encounter", document.RootElement, null, None)).Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA, "Patient", _ids["p3"], None)).Status);
        Assert.Contains("Patient/" + _ids["p3"], await SearchIdsAsync(DrA, "Patient"));
    }

    [Fact]
    public async Task A_cancelled_missed_or_mistaken_appointment_or_an_encounter_entered_in_error_opens_no_record()
    {
        // p3's only relationship to Dr A is 800 days old. The front desk can book any patient it finds with any practitioner: a
        // booking cancelled at once (or missed, or booked in error) must not leave the patient's whole record open to them.
        var admission = AccessContext.Operator(_tenant, "admission");
        var voiding = new[]
        {
            ("Appointment", Samples.Appointment("Patient/" + _ids["p3"], "Practitioner/" + _ids["drA"], Day(1), "cancelled")),
            ("Appointment", Samples.Appointment("Patient/" + _ids["p3"], "Practitioner/" + _ids["drA"], Day(-1), "noshow")),
            ("Appointment", Samples.Appointment("Patient/" + _ids["p3"], "Practitioner/" + _ids["drA"], Day(2), "entered-in-error")),
            ("Encounter", Encounter(_ids["p3"], _ids["drA"], null, Day(-1)).Replace("\"status\":\"finished\"", "\"status\":\"entered-in-error\"", StringComparison.Ordinal)),
        };
        var n = 0;
        foreach (var (type, json) in voiding)
        {
            Assert.Matches("\"status\": ?\"(cancelled|noshow|entered-in-error)\"", json);
            using var document = JsonDocument.Parse(json);
            Assert.Equal(RecordStatus.Created, (await Records.CreateAsync(admission, type, document.RootElement, null, None)).Status);
            // A principal never seen before: nothing remembered decides for it.
            var drA = Person(StaffRole.Physician, "drA", id: "user:drA-" + ++n);
            Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(drA, "Patient", _ids["p3"], None)).Status);
            Assert.DoesNotContain("Patient/" + _ids["p3"], await SearchIdsAsync(drA, "Patient"));
        }
        // Booked, it does.
        using (var booked = JsonDocument.Parse(Samples.Appointment("Patient/" + _ids["p3"], "Practitioner/" + _ids["drA"], Day(3))))
        {
            Assert.Equal(RecordStatus.Created, (await Records.CreateAsync(admission, "Appointment", booked.RootElement, null, None)).Status);
        }
        var now = Person(StaffRole.Physician, "drA", id: "user:drA-booked");
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(now, "Patient", _ids["p3"], None)).Status);
        Assert.Contains("Patient/" + _ids["p3"], await SearchIdsAsync(now, "Patient"));
    }

    [Fact]
    public async Task Search_sweep_returns_only_ones_own_patients_and_counts_do_not_leak_the_rest()
    {
        var patients = await SearchIdsAsync(DrA, "Patient");
        Assert.Equal(new[] { "Patient/" + _ids["p1"], "Patient/" + _ids["p4"] }.Order(), patients.Order());
        var count = await Records.SearchAsync(DrA, "Patient", [new("_summary", "count")], null, false, None);
        Assert.Equal(2, count.Total);
        var total = await Records.SearchAsync(DrA, "Observation", [new("_total", "accurate")], null, false, None);
        Assert.Equal(1, total.Total);
        Assert.Equal(["Observation/" + _ids["obs1"]], total.Entries.Select(e => e.Type + "/" + e.Id));
        // Paging one by one walks only the allowed rows.
        var seen = new List<string>();
        var page = await Records.SearchAsync(DrA, "Patient", [new("_count", "1")], null, false, None);
        while (true)
        {
            seen.AddRange(page.Entries.Select(e => e.Id));
            if (page.NextPage is null) break;
            page = await Records.SearchAsync(DrA, "Patient", [], page.NextPage, false, None);
        }
        Assert.Equal(new[] { _ids["p1"], _ids["p4"] }.Order(), seen.Order());
        // A search by a name of someone else's patient finds nothing.
        Assert.Empty(await SearchIdsAsync(DrA, "Patient", ("family", "Unrelated")));
    }

    [Fact]
    public async Task A_search_of_one_patients_records_outside_ones_care_is_refused_and_on_that_patients_access_history()
    {
        // Before, an empty page and an entry naming no one: the attempt on the patient's record left no trace on their access
        // history, and "no result" could be read as the patient having none.
        var p2 = _ids["p2"];
        var attempts = new (string Type, string Parameter, string Value)[]
        {
            ("Observation", "patient", p2), ("Observation", "subject", "Patient/" + p2), ("Encounter", "patient", p2), ("MedicationRequest", "subject", "Patient/" + p2),
        };
        foreach (var (type, parameter, value) in attempts)
        {
            foreach (var extra in new KeyValuePair<string, string>[][] { [], [new("_summary", "count")] })
            {
                var page = await Records.SearchAsync(DrA, type, [new(parameter, value), .. extra], null, false, None);
                Assert.True(page.Status == RecordStatus.Forbidden, $"{type}?{parameter}={value}: {page.Status}");
                Assert.StartsWith($"Patient/{p2} is not a patient in your care relationships (or not a patient here). Break-the-glass is possible",
                    page.Issues![0].Diagnostics, StringComparison.Ordinal);
                Assert.Empty(page.Entries);
            }
        }
        // Her own patient's records, and a search over two patients one of whom is hers, are as before.
        Assert.Equal(["Observation/" + _ids["obs1"]], await SearchIdsAsync(DrA, "Observation", ("patient", _ids["p1"])));
        Assert.Equal(["Observation/" + _ids["obs1"]], await SearchIdsAsync(DrA, "Observation", ("patient", _ids["p1"] + "," + p2)));
        // The refusals are on the patient's access history, as a refused read is.
        var history = (await _server.Store.AuditLog.SearchAsync(AccessContext.Operator(_tenant, "policy test"), new AuditQuery { Patient = p2, Count = 100 }, None))!;
        var refusals = history.Where(e => e.Detail.Principal == "user:drA" && e.Action == AuditAction.Search && e.Outcome == AuditOutcome.MinorFailure).ToList();
        Assert.Equal(attempts.Length * 2, refusals.Count);
        Assert.All(refusals, e => Assert.Equal("refused by the access policy", e.Detail.Note));
    }

    [Fact]
    public async Task Idor_through_include_revinclude_history_and_everything_is_refused()
    {
        // Observations of every patient, with their subjects included: only the own patient's come back.
        var page = await Records.SearchAsync(DrA, "Observation", [new("_include", "Observation:subject")], null, false, None);
        Assert.DoesNotContain(page.Entries, e => e.Id == _ids["p2"] || e.Id == _ids["obs2"]);
        // Encounters of drB's patient reached from the Patient side.
        var rev = await Records.SearchAsync(DrA, "Patient", [new("_revinclude", "Encounter:subject")], null, false, None);
        Assert.DoesNotContain(rev.Entries, e => e.Id == _ids["enc2"] || e.Id == _ids["p2"]);
        Assert.Contains(rev.Entries, e => e.Id == _ids["enc1"]);
        // Type history lists only allowed resources; instance history of another's patient is refused.
        var history = await Records.HistoryAsync(DrA, "Patient", null, null, 100, null, None);
        Assert.DoesNotContain(history.Entries, e => e.Id == _ids["p2"] || e.Id == _ids["p3"]);
        Assert.Equal(RecordStatus.Forbidden, (await Records.HistoryAsync(DrA, "Patient", _ids["p2"], null, 100, null, None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.EverythingAsync(DrA, _ids["p2"], None)).Status);
        var everything = await Records.EverythingAsync(DrA, _ids["p1"], None);
        Assert.Equal(RecordStatus.Ok, everything.Status);
        Assert.Contains(everything.Entries, e => e.Id == _ids["obs1"]);
    }

    [Fact]
    public async Task Idor_through_the_history_of_a_record_moved_from_another_patient_is_refused()
    {
        // An observation filed under drB's patient, then moved (a wrong-patient correction) to drA's: its first version is
        // still what was said about p2, and drA may not open p2's record.
        var op = AccessContext.Operator(_tenant, "filing");
        using var filed = JsonDocument.Parse(Samples.Observation("Patient/" + _ids["p2"], effective: Day(-2)));
        var created = await Records.CreateAsync(op, "Observation", filed.RootElement, null, None);
        using var moved = JsonDocument.Parse("{\"id\":\"" + created.Id + "\"," + Samples.Observation("Patient/" + _ids["p1"], effective: Day(-2)).Trim()[1..]);
        Assert.Equal(RecordStatus.Ok, (await Records.UpdateAsync(op, "Observation", created.Id!, moved.RootElement, null, None)).Status);

        Assert.Equal(RecordStatus.Ok, (await Records.VReadAsync(DrA, "Observation", created.Id!, 2, None)).Status);
        var old = await Records.VReadAsync(DrA, "Observation", created.Id!, 1, None);
        Assert.Equal(RecordStatus.Forbidden, old.Status);
        Assert.Null(old.Json);
        var bundle = $$$"""{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Observation/{{{created.Id}}}/_history/1"}}]}""";
        using (var document = JsonDocument.Parse(bundle))
        {
            Assert.Equal(403, (await Records.ProcessBundleAsync(DrA, document.RootElement, "http://localhost/fhir", None)).Status);
        }
        var instance = await Records.HistoryAsync(DrA, "Observation", created.Id, null, 100, null, None);
        Assert.Equal(RecordStatus.Ok, instance.Status);
        Assert.Equal([2], instance.Entries.Select(e => e.Version));
        var type = await Records.HistoryAsync(DrA, "Observation", null, null, 100, null, None);
        Assert.Equal([2], type.Entries.Where(e => e.Id == created.Id).Select(e => e.Version));
        // Nothing of p2 came back on any path.
        Assert.DoesNotContain(instance.Entries.Concat(type.Entries), e => e.Json is { } json && System.Text.Encoding.UTF8.GetString(json).Contains(_ids["p2"], StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_history_of_a_record_moved_from_another_patient_totals_the_versions_its_pages_show()
    {
        // Two versions filed under drB's patient, then moved to drA's and corrected twice more: drA's pages show versions 3 to
        // 5, and the total must say three, on every page and for _count=0 — not the five stored.
        var op = AccessContext.Operator(_tenant, "filing");
        JsonDocument Version(string patient, string effective, string? id = null) =>
            JsonDocument.Parse((id is null ? "{" : "{\"id\":\"" + id + "\",") + Samples.Observation("Patient/" + _ids[patient], effective: effective).Trim()[1..]);
        using var filed = Version("p2", Day(-3));
        var id = (await Records.CreateAsync(op, "Observation", filed.RootElement, null, None)).Id!;
        foreach (var (patient, effective) in new[] { ("p2", Day(-2)), ("p1", Day(-2)), ("p1", Day(-1)), ("p1", Day(0)) })
        {
            using var version = Version(patient, effective, id);
            Assert.Equal(RecordStatus.Ok, (await Records.UpdateAsync(op, "Observation", id, version.RootElement, null, None)).Status);
        }

        var whole = await Records.HistoryAsync(DrA, "Observation", id, null, 100, null, None);
        Assert.Equal([5, 4, 3], whole.Entries.Select(e => e.Version));
        Assert.Equal(3, whole.Total);
        Assert.Equal(3, (await Records.HistoryAsync(DrA, "Observation", id, null, 0, null, None)).Total);
        // Pages of two, followed to the end: every page says three, and three entries come back.
        var shown = new List<int>();
        string? next = null;
        do
        {
            var page = await Records.HistoryAsync(DrA, "Observation", id, null, 2, next, None);
            Assert.Equal(RecordStatus.Ok, page.Status);
            Assert.Equal(3, page.Total);
            shown.AddRange(page.Entries.Select(e => e.Version));
            next = page.NextPage;
        }
        while (next is not null);
        Assert.Equal([5, 4, 3], shown);
        // The operator, who may open both patients, is shown and told all five.
        Assert.Equal(5, (await Records.HistoryAsync(op, "Observation", id, null, 2, null, None)).Total);
    }

    [Fact]
    public async Task Idor_through_a_bundle_read_is_refused()
    {
        var bundle = $$$"""
            {"resourceType":"Bundle","type":"batch","entry":[
              {"request":{"method":"GET","url":"Patient/{{{_ids["p1"]}}}"}},
              {"request":{"method":"GET","url":"Patient/{{{_ids["p2"]}}}"}},
              {"request":{"method":"GET","url":"Observation?subject=Patient/{{{_ids["p2"]}}}"}}]}
            """;
        using var document = JsonDocument.Parse(bundle);
        var (status, body) = await Records.ProcessBundleAsync(DrA, document.RootElement, "http://localhost/fhir", None);
        Assert.Equal(200, status);
        using var response = JsonDocument.Parse(body);
        var entries = response.RootElement.GetProperty("entry").EnumerateArray().ToList();
        Assert.StartsWith("200", entries[0].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("403", entries[1].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        Assert.False(entries[1].TryGetProperty("resource", out _));
        // A search of that patient's records is refused as the read of the patient is, and returns nothing of them.
        Assert.StartsWith("403", entries[2].GetProperty("response").GetProperty("status").GetString(), StringComparison.Ordinal);
        Assert.False(entries[2].TryGetProperty("resource", out _));
        Assert.DoesNotContain(_ids["obs2"], System.Text.Encoding.UTF8.GetString(body), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Idor_through_a_search_inside_a_transaction_finds_only_patients_in_ones_care_and_those_the_transaction_creates()
    {
        // A search in a transaction runs on the transaction's connection, with the policy's SQL filter: the same answers as alone.
        var bundle = $$$"""
            {"resourceType":"Bundle","type":"transaction","entry":[
              {"request":{"method":"GET","url":"Patient?family=unrelated"}},
              {"request":{"method":"GET","url":"Observation?code=http://loinc.org|2823-3"}},
              {"request":{"method":"GET","url":"Patient?family=related&_revinclude=Observation:subject"}},
              {"request":{"method":"GET","url":"Patient?family=nouveau"}},
              {"resource":{{{Samples.Patient(family: "Nouveau", nir: Samples.ValidNir("1800344109005"))}}},"request":{"method":"POST","url":"Patient"}}]}
            """;
        using var document = JsonDocument.Parse(bundle);
        var (status, body) = await Records.ProcessBundleAsync(DrA, document.RootElement, "http://localhost/fhir", None);
        using var response = JsonDocument.Parse(body);
        Assert.True(status == 200, response.RootElement.ToString());
        var entries = response.RootElement.GetProperty("entry").EnumerateArray().ToList();
        static List<string> Found(JsonElement entry) => entry.GetProperty("resource").TryGetProperty("entry", out var found)
            ? found.EnumerateArray().Select(e => e.GetProperty("resource").GetProperty("resourceType").GetString() + "/" + e.GetProperty("resource").GetProperty("id").GetString()).ToList()
            : [];
        Assert.Empty(Found(entries[0]));
        Assert.DoesNotContain("Observation/" + _ids["obs2"], Found(entries[1]));
        Assert.Equal(new[] { "Observation/" + _ids["obs1"], "Patient/" + _ids["p1"] }.Order(StringComparer.Ordinal), Found(entries[2]).Order(StringComparer.Ordinal));
        // The patient the physician creates in the transaction is theirs to find in it, as a read by id in it finds it.
        var created = entries[4].GetProperty("resource").GetProperty("id").GetString()!;
        Assert.Equal(["Patient/" + created], Found(entries[3]));

        // A search of the records of a patient outside her care is refused, as a read of them is: the whole transaction, and its
        // new patient is not created.
        var refusedBundle = bundle.Replace("Observation?code=http://loinc.org|2823-3", $"Observation?subject=Patient/{_ids["p2"]}", StringComparison.Ordinal);
        Assert.NotEqual(bundle, refusedBundle);
        using var refusedDocument = JsonDocument.Parse(refusedBundle);
        var (refusedStatus, refusedBody) = await Records.ProcessBundleAsync(DrA, refusedDocument.RootElement, "http://localhost/fhir", None);
        Assert.True(refusedStatus == 403, System.Text.Encoding.UTF8.GetString(refusedBody));
        Assert.Contains("Bundle.entry[1] (GET Observation)", System.Text.Encoding.UTF8.GetString(refusedBody), StringComparison.Ordinal);
        var op = AccessContext.Operator(_tenant, "check");
        Assert.Equal(1, (await Records.SearchAsync(op, "Patient", [new("family", "nouveau"), new("_summary", "count")], null, false, None)).Total);
    }

    [Fact]
    public async Task Writing_oneself_into_another_patients_care_to_find_them_in_a_search_of_the_same_transaction_reveals_nothing()
    {
        // The encounter would make p2 drA's patient, and the transaction's search sees it (it runs on the transaction's connection).
        // The write is checked on committed data once the whole transaction is in place: refused, and nothing leaves, the search's page included.
        var bundle = $$$"""
            {"resourceType":"Bundle","type":"transaction","entry":[
              {"resource":{{{Encounter(_ids["p2"], _ids["drA"], null, Day(0))}}},"request":{"method":"POST","url":"Encounter"}},
              {"request":{"method":"GET","url":"Patient?family=unrelated"}},
              {"request":{"method":"GET","url":"Observation?subject=Patient/{{{_ids["p2"]}}}"}}]}
            """;
        using var document = JsonDocument.Parse(bundle);
        var (status, body) = await Records.ProcessBundleAsync(DrA, document.RootElement, "http://localhost/fhir", None);
        var text = System.Text.Encoding.UTF8.GetString(body);
        Assert.True(status == 403, text);
        Assert.DoesNotContain("searchset", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Unrelated", text, StringComparison.Ordinal);
        Assert.DoesNotContain(_ids["obs2"], text, StringComparison.Ordinal);
        var op = AccessContext.Operator(_tenant, "check");
        await _server.Store.Audit.CatchUpAsync();
        var searched = (await _server.Store.AuditLog.SearchAsync(op, new Vauban.Audit.AuditQuery { Patient = _ids["p2"], Agent = "user:drA", Actions = [Vauban.Audit.AuditAction.Search], Count = 100 }, None))!;
        Assert.DoesNotContain(searched, e => e.Outcome == Vauban.Audit.AuditOutcome.Success);
        var encounters = await Records.SearchAsync(op, "Encounter", [new("patient", "Patient/" + _ids["p2"]), new("_summary", "count")], null, false, None);
        Assert.Equal(1, encounters.Total);
    }

    [Fact]
    public async Task Writing_oneself_into_another_patients_care_is_refused_and_changes_nothing()
    {
        // An encounter naming drA for drB's patient would create the relationship it needs: refused.
        using var encounter = JsonDocument.Parse(Encounter(_ids["p2"], _ids["drA"], null, Day(0)));
        var created = await Records.CreateAsync(DrA, "Encounter", encounter.RootElement, null, None);
        Assert.Equal(RecordStatus.Forbidden, created.Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(DrA, "Patient", _ids["p2"], None)).Status);
        // The same inside a transaction with an observation: all refused, nothing written.
        var bundle = $$$"""
            {"resourceType":"Bundle","type":"transaction","entry":[
              {"fullUrl":"urn:uuid:7d1c2b9e-0b1a-4c55-9a53-2d6c1f9e0a01","resource":{{{Encounter(_ids["p2"], _ids["drA"], null, Day(0))}}},"request":{"method":"POST","url":"Encounter"}},
              {"resource":{{{Samples.Observation("Patient/" + _ids["p2"], effective: Day(0))}}},"request":{"method":"POST","url":"Observation"}}]}
            """;
        using var document = JsonDocument.Parse(bundle);
        var (status, _) = await Records.ProcessBundleAsync(DrA, document.RootElement, "http://localhost/fhir", None);
        Assert.Equal(403, status);
        var op = AccessContext.Operator(_tenant, "check");
        // The transaction's refused POST is on the chain as the create it was (it was recorded as an update).
        var refusals = (await _server.Store.AuditLog.SearchAsync(op, new Vauban.Audit.AuditQuery { Patient = _ids["p2"], Agent = "user:drA", Count = 100 }, None))!
            .Where(e => e.Outcome == Vauban.Audit.AuditOutcome.MinorFailure).Select(e => e.Action).ToList();
        Assert.Equal(2, refusals.Count(a => a == Vauban.Audit.AuditAction.Create)); // the direct create, then the transaction's
        Assert.DoesNotContain(Vauban.Audit.AuditAction.Update, refusals);
        var encounters = await Records.SearchAsync(op, "Encounter", [new("patient", "Patient/" + _ids["p2"]), new("_summary", "count")], null, false, None);
        Assert.Equal(1, encounters.Total);
        // Updating someone else's patient's observation is refused before anything is revealed.
        using var obs = JsonDocument.Parse("{\"id\":\"" + _ids["obs2"] + "\"," + Samples.Observation("Patient/" + _ids["p1"]).Trim()[1..]);
        Assert.Equal(RecordStatus.Forbidden, (await Records.UpdateAsync(DrA, "Observation", _ids["obs2"], obs.RootElement, 1, None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.DeleteAsync(DrA, "Observation", _ids["obs2"], None)).Status);
        Assert.Equal(1, (await Records.ReadAsync(op, "Observation", _ids["obs2"], None)).Version);
    }

    [Fact]
    public async Task Writing_oneself_into_another_patients_care_through_a_second_participant_of_an_appointment_is_refused()
    {
        // An appointment whose first participant is drA's own patient (its compartment) also names drB's patient and drA:
        // the relationship it would create is with p2, whose record drA could not open before.
        var appointment = $$$"""
            {"resourceType":"Appointment","status":"booked","start":"{{{Day(1)}}}","end":"{{{Day(1)}}}","participant":[
              {"actor":{"reference":"Patient/{{{_ids["p1"]}}}"},"status":"accepted"},
              {"actor":{"reference":"Patient/{{{_ids["p2"]}}}"},"status":"accepted"},
              {"actor":{"reference":"Practitioner/{{{_ids["drA"]}}}"},"status":"accepted"}]}
            """;
        using (var document = JsonDocument.Parse(appointment))
        {
            Assert.Equal(RecordStatus.Forbidden, (await Records.CreateAsync(DrA, "Appointment", document.RootElement, null, None)).Status);
        }
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(DrA, "Patient", _ids["p2"], None)).Status);
        // Nor by updating an appointment of one's own patient to name the other one too, alone or in a transaction.
        using (var own = JsonDocument.Parse(Samples.Appointment("Patient/" + _ids["p1"], "Practitioner/" + _ids["drA"], Day(1))))
        {
            var created = await Records.CreateAsync(DrA, "Appointment", own.RootElement, null, None);
            Assert.Equal(RecordStatus.Created, created.Status);
            using var widened = JsonDocument.Parse("{\"id\":\"" + created.Id + "\"," + appointment.Trim()[1..]);
            Assert.Equal(RecordStatus.Forbidden, (await Records.UpdateAsync(DrA, "Appointment", created.Id!, widened.RootElement, null, None)).Status);
            var bundle = $$$"""
                {"resourceType":"Bundle","type":"transaction","entry":[
                  {"resource":{{{widened.RootElement.GetRawText()}}},"request":{"method":"PUT","url":"Appointment/{{{created.Id}}}"}}]}
                """;
            using var transaction = JsonDocument.Parse(bundle);
            Assert.Equal(403, (await Records.ProcessBundleAsync(DrA, transaction.RootElement, "http://localhost/fhir", None)).Status);
        }
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(DrA, "Patient", _ids["p2"], None)).Status);
        Assert.DoesNotContain("Patient/" + _ids["p2"], await SearchIdsAsync(DrA, "Patient"));
    }

    [Fact]
    public async Task A_new_patient_and_their_first_encounter_can_be_created_in_one_transaction()
    {
        var bundle = $$$"""
            {"resourceType":"Bundle","type":"transaction","entry":[
              {"fullUrl":"urn:uuid:0b6d3a3e-6a43-4d1c-8f5e-1f2a3b4c5d01","resource":{{{Samples.Patient(family: "Newcomer", nir: Samples.ValidNir("1800344109005"))}}},"request":{"method":"POST","url":"Patient"}},
              {"resource":{{{Encounter("X", _ids["drA"], null, Day(0)).Replace("Patient/X", "urn:uuid:0b6d3a3e-6a43-4d1c-8f5e-1f2a3b4c5d01", StringComparison.Ordinal)}}},"request":{"method":"POST","url":"Encounter"}}]}
            """;
        using var document = JsonDocument.Parse(bundle);
        var (status, body) = await Records.ProcessBundleAsync(DrA, document.RootElement, "http://localhost/fhir", None);
        Assert.True(status == 200, System.Text.Encoding.UTF8.GetString(body));
        Assert.Single(await SearchIdsAsync(DrA, "Patient", ("family", "Newcomer")));
    }

    [Fact]
    public async Task A_relationship_forged_in_another_tenant_does_not_count()
    {
        // Another establishment records an encounter naming this tenant's physician and patient ids (under a patient of its own
        // given the same id: a record is filed only under a patient of its tenant).
        var other = await _server.Store.Tenants.AddAsync(_establishment + "-forge", None);
        using (var twin = JsonDocument.Parse(Samples.Patient(family: "Forged", id: _ids["p2"])))
        {
            Assert.Equal(RecordStatus.Created, (await Records.UpdateAsync(AccessContext.Operator(other, "forge"), "Patient", _ids["p2"], twin.RootElement, null, None)).Status);
        }
        using var document = JsonDocument.Parse(Encounter(_ids["p2"], _ids["drA"], null, Day(-1)));
        Assert.Equal(RecordStatus.Created, (await Records.CreateAsync(AccessContext.Operator(other, "forge"), "Encounter", document.RootElement, null, None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(DrA, "Patient", _ids["p2"], None)).Status);
        Assert.DoesNotContain("Patient/" + _ids["p2"], await SearchIdsAsync(DrA, "Patient"));
        // And a person of that other tenant reaches nothing here, whatever the id.
        SmartScopes.TryParse("user/*.cruds", TypeCodes.Names, out var scopes, out _);
        var intruder = new AccessContext(new Principal(PrincipalKind.Person, "user:intruder", "Intruder", scopes)
        {
            Role = StaffRole.Physician, Practitioner = _ids["drA"], AuthenticatedAt = DateTimeOffset.UtcNow,
        }, other, "TREAT");
        Assert.Equal(RecordStatus.NotFound, (await Records.ReadAsync(intruder, "Patient", _ids["p1"], None)).Status);
        Assert.DoesNotContain((await Records.SearchAsync(intruder, "Patient", [], null, false, None)).Entries, e => e.Id == _ids["p1"]);
    }

    [Fact]
    public async Task Role_escalation_a_secretary_reading_lab_results_is_refused()
    {
        var secretary = Person(StaffRole.Secretary, service: "cardiology", id: "user:sec");
        var read = await Records.ReadAsync(secretary, "Observation", _ids["obs1"], None);
        Assert.Equal(RecordStatus.Forbidden, read.Status);
        Assert.Contains("secretary", read.Issues![0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(RecordStatus.Forbidden, (await Records.SearchAsync(secretary, "Observation", [], null, false, None)).Status);
        // Refused in the words of what refuses it: her role, not "the granted scopes" a person has none of.
        var revincluded = await Records.SearchAsync(secretary, "Patient", [new("_revinclude", "Observation:subject")], null, false, None);
        Assert.Equal(RecordStatus.Forbidden, revincluded.Status);
        Assert.Equal("The secretary role does not allow reading Observation, requested by _revinclude.", revincluded.Issues![0].Diagnostics);
        var everything = await Records.EverythingAsync(secretary, _ids["p1"], None);
        Assert.DoesNotContain(everything.Entries, e => e.Type is "Observation" or "Invoice" or "MedicationRequest");
        // The lab results asked for by name in $everything are refused, not answered with none (which reads as "no results").
        var typed = await Records.EverythingAsync(secretary, _ids["p1"], [new("_type", "Encounter,Observation")], null, false, None);
        Assert.Equal(RecordStatus.Forbidden, typed.Status);
        Assert.Equal("The secretary role does not allow reading Observation, requested by _type.", typed.Issues![0].Diagnostics);
        Assert.Empty(typed.Entries);
        Assert.Equal(RecordStatus.Ok, (await Records.EverythingAsync(secretary, _ids["p1"], [new("_type", "Patient,Encounter")], null, false, None)).Status);
        // Identity across the establishment (admissions), scheduling only for the service's patients.
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(secretary, "Patient", _ids["p2"], None)).Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(secretary, "Encounter", _ids["enc1"], None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(secretary, "Encounter", _ids["enc2"], None)).Status);
    }

    [Fact]
    public async Task Billing_sees_identity_and_invoices_and_nothing_clinical()
    {
        var billing = Person(StaffRole.Billing, id: "user:bill");
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(billing, "Invoice", _ids["inv1"], None)).Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(billing, "Patient", _ids["p2"], None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(billing, "Encounter", _ids["enc1"], None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(billing, "Observation", _ids["obs1"], None)).Status);
    }

    [Fact]
    public async Task A_biologist_sees_the_results_of_the_labs_patients_only()
    {
        var biologist = Person(StaffRole.Biologist, service: "lab", id: "user:bio");
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(biologist, "Observation", _ids["obs1"], None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(biologist, "Observation", _ids["obs2"], None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(biologist, "Encounter", _ids["enc1"], None)).Status);
        Assert.Equal(["Observation/" + _ids["obs1"]], await SearchIdsAsync(biologist, "Observation"));
    }

    [Fact]
    public async Task Security_officer_and_administrator_open_no_patient_data()
    {
        foreach (var role in new[] { StaffRole.SecurityOfficer, StaffRole.Administrator })
        {
            var person = Person(role, id: "user:" + role);
            Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(person, "Patient", _ids["p1"], None)).Status);
            Assert.Equal(RecordStatus.Forbidden, (await Records.SearchAsync(person, "Patient", [], null, false, None)).Status);
            Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(person, "Practitioner", _ids["drA"], None)).Status);
        }
    }

    [Fact]
    public async Task Break_the_glass_without_reason_or_fresh_authentication_is_refused()
    {
        var glass = _server.Store.BreakTheGlass;
        var stale = Person(StaffRole.Physician, "drA", id: "user:drA-stale", authenticatedAt: DateTimeOffset.UtcNow.AddMinutes(-30));
        var fresh = Person(StaffRole.Physician, "drA", id: "user:drA-fresh", authenticatedAt: DateTimeOffset.UtcNow);
        Assert.Equal(BreakGlassStatus.Invalid, (await glass.OpenAsync(fresh, _ids["p2"], null, "patient unconscious in ER", None)).Status);
        Assert.Equal(BreakGlassStatus.Invalid, (await glass.OpenAsync(fresh, _ids["p2"], "because", "patient unconscious in ER", None)).Status);
        Assert.Equal(BreakGlassStatus.Invalid, (await glass.OpenAsync(fresh, _ids["p2"], KnownBreakGlassReasons.Emergency, "", None)).Status);
        Assert.Equal(BreakGlassStatus.ReauthenticationRequired, (await glass.OpenAsync(stale, _ids["p2"], KnownBreakGlassReasons.Emergency, "patient unconscious in ER", None)).Status);
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(fresh, "Patient", _ids["p2"], None)).Status);
        var billing = Person(StaffRole.Billing, id: "user:bill-btg", authenticatedAt: DateTimeOffset.UtcNow);
        Assert.Equal(BreakGlassStatus.NotAllowed, (await glass.OpenAsync(billing, _ids["p2"], KnownBreakGlassReasons.Emergency, "I want to see it", None)).Status);
        Assert.Equal(BreakGlassStatus.PatientNotFound, (await glass.OpenAsync(fresh, "no-such-patient", KnownBreakGlassReasons.Emergency, "patient unconscious in ER", None)).Status);
        Assert.DoesNotContain(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None), a => a.Kind == KnownAlertKinds.BreakTheGlass);

        // Each refused attempt is on the audit chain, naming the patient; the justification text is never in the entry.
        var officer = AccessContext.Operator(_tenant, "break-the-glass attempts");
        var attempts = (await _server.Store.AuditLog.SearchAsync(officer, new Vauban.Audit.AuditQuery { Patient = _ids["p2"], Count = 100 }, None) ?? [])
            .Where(e => e.Action == Vauban.Audit.AuditAction.BreakTheGlass).ToList();
        Assert.Equal(5, attempts.Count);
        Assert.All(attempts, e => Assert.Equal(Vauban.Audit.AuditOutcome.MinorFailure, e.Outcome));
        Assert.All(attempts, e => Assert.DoesNotContain("unconscious", e.Detail.Note, StringComparison.Ordinal));
        Assert.Equal(3, attempts.Count(e => e.Detail.Principal.Contains("drA-fresh", StringComparison.Ordinal)));
        Assert.Single(attempts, e => e.Detail.Note!.Contains("fresh proof", StringComparison.Ordinal));
        Assert.Single(attempts, e => e.Detail.Note!.Contains("not allowed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_record_written_under_a_break_the_glass_grant_opens_the_patient_to_no_one_else_and_not_beyond_the_grant()
    {
        // A CareTeam without period naming the physician's service, written under a personal four-hour grant, made every person of
        // that service "in care" of the patient for good: no grant, no emergency purpose, no alert.
        var fresh = Person(StaffRole.Physician, "drA", service: "cardiology", id: "user:drA-team", authenticatedAt: DateTimeOffset.UtcNow);
        var nurse = Person(StaffRole.Nurse, service: "cardiology", id: "user:nurse-team");
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(nurse, "Patient", _ids["p2"], None)).Status);
        Assert.Equal(BreakGlassStatus.Granted, (await _server.Store.BreakTheGlass.OpenAsync(fresh, _ids["p2"], KnownBreakGlassReasons.Emergency, "Patient unconscious in the emergency room", None)).Status);
        var team = $$$"""
            {"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/{{{_ids["p2"]}}}"},
             "participant":[{"member":{"reference":"Organization/{{{_ids["cardiology"]}}}"}},{"member":{"reference":"Practitioner/{{{_ids["drA"]}}}"}}]}
            """;
        var created = await Records.CreateAsync(fresh, "CareTeam", JsonDocument.Parse(team).RootElement, null, None);
        Assert.Equal(RecordStatus.Created, created.Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(fresh, "Patient", _ids["p2"], None)).Status); // the grant itself
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(nurse, "Patient", _ids["p2"], None)).Status);
        Assert.DoesNotContain("Patient/" + _ids["p2"], await SearchIdsAsync(nurse, "Patient"));
        // Past the grant, its author is outside the patient's care again.
        var later = new ShiftedTime(_server.Store.Policy.Options.BreakGlassDuration + TimeSpan.FromHours(1));
        await using (var store = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = later }, None))
            Assert.Equal(RecordStatus.Forbidden, (await store.Records.ReadAsync(fresh, "Patient", _ids["p2"], None)).Status);

        // Written again by someone in the patient's care without a grant, the record is a care relationship as any other.
        var op = AccessContext.Operator(_tenant, "admission");
        var current = await Records.ReadAsync(op, "CareTeam", created.Id!, None);
        var again = JsonDocument.Parse(System.Text.Encoding.UTF8.GetString(current.Json!)).RootElement;
        Assert.Equal(RecordStatus.Ok, (await Records.UpdateAsync(op, "CareTeam", created.Id!, again, null, None)).Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(nurse, "Patient", _ids["p2"], None)).Status);
    }

    [Fact]
    public async Task Break_the_glass_with_reason_and_fresh_authentication_opens_the_record_for_a_limited_time_and_tells_the_officer()
    {
        var fresh = Person(StaffRole.Physician, "drA", id: "user:drA-btg", authenticatedAt: DateTimeOffset.UtcNow);
        var result = await _server.Store.BreakTheGlass.OpenAsync(fresh, _ids["p2"], KnownBreakGlassReasons.Emergency, "Patient unconscious in the emergency room", None);
        Assert.Equal(BreakGlassStatus.Granted, result.Status);
        Assert.InRange(result.Grant!.ExpiresAt - result.Grant.GrantedAt, TimeSpan.FromMinutes(1), _server.Store.Policy.Options.BreakGlassDuration);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(fresh, "Patient", _ids["p2"], None)).Status);
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(fresh, "Observation", _ids["obs2"], None)).Status);
        Assert.Contains("Patient/" + _ids["p2"], await SearchIdsAsync(fresh, "Patient"));
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(fresh, "Patient", _ids["p1"], None)).Status); // in drA's care
        // The grant and every act under it are recorded as emergency access (ETREAT); the same person's access to a patient
        // in their care stays treatment (TREAT), in the same search too.
        var officer = AccessContext.Operator(_tenant, "purpose check");
        var underGrant = (await _server.Store.AuditLog.SearchAsync(officer, new Vauban.Audit.AuditQuery { Patient = _ids["p2"], Agent = "user:drA-btg", Count = 100 }, None))!;
        Assert.Equal(new[] { Vauban.Audit.AuditAction.Search, Vauban.Audit.AuditAction.Read, Vauban.Audit.AuditAction.Read, Vauban.Audit.AuditAction.BreakTheGlass },
            underGrant.Select(e => e.Action));
        Assert.All(underGrant, e => Assert.Equal(KnownPurposes.EmergencyTreatment, e.Detail.Purpose));
        var inCare = (await _server.Store.AuditLog.SearchAsync(officer, new Vauban.Audit.AuditQuery { Patient = _ids["p1"], Agent = "user:drA-btg", Count = 100 }, None))!;
        Assert.Equal(new[] { Vauban.Audit.AuditAction.Read, Vauban.Audit.AuditAction.Search }, inCare.Select(e => e.Action));
        Assert.All(inCare, e => Assert.Equal(KnownPurposes.Treatment, e.Detail.Purpose));
        // Another physician's session does not inherit the grant.
        Assert.Equal(RecordStatus.Forbidden, (await Records.ReadAsync(DrA, "Patient", _ids["p2"], None)).Status);
        var alert = Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: false, 100, None), a => a.Kind == KnownAlertKinds.BreakTheGlass);
        Assert.Equal("user:drA-btg", alert.Principal);
        Assert.DoesNotContain("unconscious", alert.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("Unrelated", alert.Detail, StringComparison.Ordinal);
        // The console lists alerts in Paris time and the CLI in UTC: the grant's end is given in both, each named.
        var end = result.Grant.ExpiresAt;
        Assert.Contains($"until {ParisTime.Of(end):yyyy-MM-dd HH:mm} Paris time ({end.UtcDateTime:HH:mm} UTC).",
            alert.Detail, StringComparison.Ordinal);

        // An hour past the grant's end, on a store whose clock is set ahead, the record is closed again.
        var later = new ShiftedTime(_server.Store.Policy.Options.BreakGlassDuration + TimeSpan.FromHours(1));
        await using var store = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = later }, None);
        Assert.Equal(RecordStatus.Forbidden, (await store.Records.ReadAsync(fresh, "Patient", _ids["p2"], None)).Status);
    }

    private sealed class ShiftedTime(TimeSpan shift) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + shift;
    }
}

/// <summary>The server <see cref="PolicyTests"/> share.</summary>
/// <param name="sqlFilter">Without remembered decisions searches test every row's relationships in SQL; with them
/// (the default) they are screened in memory. Both paths must give the same answers.</param>
public abstract class PolicyServer(Engine engine, bool sqlFilter)
    : SharedServer(engine, sqlFilter ? o => o with { Access = new AccessOptions { DecisionCacheLifetime = TimeSpan.Zero } } : null);

public sealed class PolicyServer_Sqlite() : PolicyServer(Engine.Sqlite, sqlFilter: false);

public sealed class PolicyServer_Postgres() : PolicyServer(Engine.Postgres, sqlFilter: false);

public sealed class PolicyServer_Sqlite_SqlFilter() : PolicyServer(Engine.Sqlite, sqlFilter: true);

public sealed class PolicyServer_Postgres_SqlFilter() : PolicyServer(Engine.Postgres, sqlFilter: true);

public sealed class PolicyTests_Sqlite(PolicyServer_Sqlite shared) : PolicyTests(shared), IClassFixture<PolicyServer_Sqlite>;

public sealed class PolicyTests_Postgres(PolicyServer_Postgres shared) : PolicyTests(shared), IClassFixture<PolicyServer_Postgres>;

public sealed class PolicyTests_Sqlite_SqlFilter(PolicyServer_Sqlite_SqlFilter shared) : PolicyTests(shared), IClassFixture<PolicyServer_Sqlite_SqlFilter>;

public sealed class PolicyTests_Postgres_SqlFilter(PolicyServer_Postgres_SqlFilter shared) : PolicyTests(shared), IClassFixture<PolicyServer_Postgres_SqlFilter>;
