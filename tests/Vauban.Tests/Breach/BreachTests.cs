// `vauban breach` as a DPO runs it after a compromise: the scope is exactly the patients whose data left through the
// compromised principal (not what it was refused, not another principal's), within the window asked; the letters go to those
// patients in French and English, read through the records service and audited; the files are private; standard output names
// no patient; a tampered log is refused with nothing written; the run is itself on the chain. Against SQLite and PostgreSQL.
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Crypto;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Breach;

[Collection("console")]
public abstract class BreachTests : IAsyncLifetime
{
    private readonly Engine _engine;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-breach-" + Guid.NewGuid().ToString("N")[..8]);
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private string _keyFile = "";
    private string _client = "";
    private DateTimeOffset _secondPhase;

    // The compromised client's patients: read by id (A with a lab result, B), found by a search (C, D), read then deleted (F).
    // Refused to it: E and the canary K (outside its patient limit). Read by another client only: G.
    private string _a = "", _b = "", _c = "", _d = "", _e = "", _f = "", _g = "", _canary = "", _observation = "";

    private static readonly string[] Families = ["Aubrac", "Bessonneau", "Cévenole", "Cévenole", "Esterel", "Fougeray", "Gâtinais"];

    protected BreachTests(Engine engine) => _engine = engine;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _keyFile = Path.Combine(_directory, "master.key");
        var key = MasterKey.CreateFile(_keyFile);
        _server = await VaubanServer.StartAsync(_engine, configure: o => o with { MasterKey = key, Audit = new AuditOptions { CheckpointEvery = 8, IndexEvery = 4 } });
        _tenant = await _server.Store.Tenants.AddAsync("hospital", CancellationToken.None);
        var ids = new List<string>();
        for (var i = 0; i < Families.Length; i++)
        {
            ids.Add(await _server.CreateAsOperatorAsync(_tenant, Samples.Patient(family: Families[i], given: "Prénom" + i, nir: Samples.ValidNir("18503751230" + (10 + i)))));
        }
        (_a, _b, _c, _d, _e, _f, _g) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6]);
        _observation = await _server.CreateAsOperatorAsync(_tenant, Samples.Observation($"Patient/{_a}"));
        _canary = (await _server.Store.Guard.AddCanariesAsync(_server.Store.Records, _tenant, 1, CancellationToken.None))[0];

        var (compromised, clientId) = await ClientAsync(new ClientLimits([_a, _b, _c, _d, _f], false));
        _client = clientId;
        using var other = (await ClientAsync(ClientLimits.None)).Http;
        using (compromised)
        {
            await ExpectAsync(compromised, $"/fhir/Patient/{_a}", HttpStatusCode.OK);
            await ExpectAsync(compromised, $"/fhir/Observation/{_observation}", HttpStatusCode.OK);
            await ExpectAsync(compromised, $"/fhir/Patient/{_b}", HttpStatusCode.OK);
            await Task.Delay(50);
            _secondPhase = DateTimeOffset.UtcNow;
            await Task.Delay(50);
            using (var search = await compromised.GetAsync("/fhir/Patient?family=Cévenole"))
            {
                Assert.Equal(HttpStatusCode.OK, search.StatusCode);
                Assert.Equal(2, (await search.BodyAsync()).GetProperty("entry").GetArrayLength());
            }
            await ExpectAsync(compromised, $"/fhir/Patient/{_f}", HttpStatusCode.OK);
            using (var refused = await compromised.GetAsync($"/fhir/Patient/{_e}")) Assert.False(refused.IsSuccessStatusCode);
            using (var refused = await compromised.GetAsync($"/fhir/Patient/{_canary}")) Assert.False(refused.IsSuccessStatusCode);
        }
        await ExpectAsync(other, $"/fhir/Patient/{_g}", HttpStatusCode.OK);
        await ExpectAsync(other, $"/fhir/Patient/{_a}", HttpStatusCode.OK);
        var deleted = await _server.Store.Records.DeleteAsync(AccessContext.Operator(_tenant, "test fixture"), "Patient", _f, CancellationToken.None);
        Assert.Equal(Vauban.Records.RecordStatus.NoContent, deleted.Status);
        await _server.Store.Audit.CatchUpAsync();
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        try { Directory.Delete(_directory, true); } catch (IOException) { }
    }

    private async Task<(HttpClient Http, string ClientId)> ClientAsync(ClientLimits limits)
    {
        var registration = await _server.Store.Clients.AddAsync(_tenant, "partner", "system/*.cruds", null, limits, CancellationToken.None);
        var http = new HttpClient { BaseAddress = _server.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await _server.TokenAsync(registration.ClientId, registration.ClientSecret!));
        return (http, registration.ClientId);
    }

    private static async Task ExpectAsync(HttpClient http, string url, HttpStatusCode expected)
    {
        using var response = await http.GetAsync(url);
        Assert.Equal(expected, response.StatusCode);
    }

    private string Out(string name) => Path.Combine(_directory, name);

    private Task<(int Exit, string Output)> BreachAsync(string folder, params string[] more) =>
        CliRunner.RunAsync(["breach", "--tenant", "hospital", "--out", folder, "--db", _server.Db, "--master-key-file", _keyFile, .. more]);

    private static JsonElement Scope(string folder) => JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "scope.json"))).RootElement;

    private static Dictionary<string, JsonElement> PatientsOf(JsonElement scope) =>
        scope.GetProperty("patients").EnumerateArray().ToDictionary(p => p.GetProperty("id").GetString()!);

    private static string[] Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToArray();

    [Fact]
    public async Task The_scope_is_exactly_the_patients_whose_data_left_through_the_compromised_client_with_their_categories_and_counts()
    {
        var folder = Out("all");
        var (exit, output) = await BreachAsync(folder, "--principal", "client:" + _client, "--dpo-name", "Claire Delorme", "--dpo-email", "dpo@hopital.example");
        Assert.True(exit == 0, output);

        var scope = Scope(folder);
        Assert.True(scope.GetProperty("auditLog").GetProperty("verified").GetBoolean());
        Assert.Equal(_client, scope.GetProperty("principal").GetString());
        Assert.Equal("client", scope.GetProperty("principalKind").GetString());
        var patients = PatientsOf(scope);
        Assert.Equal(new[] { _a, _b, _c, _d, _f }.Order(), patients.Keys.Order());
        Assert.Equal(["identity", "labResults"], Strings(patients[_a].GetProperty("categories")));
        Assert.Equal(2, patients[_a].GetProperty("accesses").GetInt32());
        Assert.Equal(2, patients[_a].GetProperty("records").GetInt32());
        Assert.Equal(["identity"], Strings(patients[_c].GetProperty("categories")));
        Assert.Equal(["search"], Strings(patients[_c].GetProperty("actions")));
        Assert.Equal(1, patients[_b].GetProperty("accesses").GetInt32());
        Assert.Equal("deletedSince", patients[_f].GetProperty("state").GetString());
        Assert.Empty(Strings(patients[_f].GetProperty("letters")));
        Assert.True(patients[_a].GetProperty("firstAccess").GetDateTimeOffset() < patients[_c].GetProperty("firstAccess").GetDateTimeOffset());
        // Refused: E and the canary, apart, not in scope; the canary named as such.
        var refused = scope.GetProperty("refused");
        Assert.Equal(2, refused.GetProperty("accesses").GetInt32());
        Assert.Equal(2, refused.GetProperty("patientsNotInScope").GetInt32());
        Assert.Equal([_canary], Strings(refused.GetProperty("canaries")));
        Assert.Equal(5, scope.GetProperty("dataSubjects").GetInt32());
        Assert.Equal(6, scope.GetProperty("records").GetInt32());
        Assert.False(scope.GetProperty("containment").GetProperty("clientRevoked").GetBoolean());
        Assert.True(scope.GetProperty("containment").GetProperty("knownToTheStore").GetBoolean());
    }

    [Fact]
    public async Task Each_patient_in_scope_on_record_gets_a_letter_in_French_and_English_with_their_name_and_the_notification_counts_them()
    {
        var folder = Out("letters");
        var (exit, output) = await BreachAsync(folder, "--principal", _client, "--dpo-email", "dpo@hopital.example", "--detected-at", "2026-12-01T09:30:00Z");
        Assert.True(exit == 0, output);
        var letters = Directory.GetFiles(Path.Combine(folder, "letters")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(new[] { _a, _b, _c, _d }.SelectMany(p => new[] { p + ".en.md", p + ".fr.md" }).Order(), letters);
        var french = File.ReadAllText(Path.Combine(folder, "letters", _a + ".fr.md"));
        Assert.Contains("Prénom0 Aubrac", french, StringComparison.Ordinal);
        Assert.Contains("44000 Nantes", french, StringComparison.Ordinal);
        Assert.Contains("résultats d'analyses", french, StringComparison.Ordinal);
        Assert.Contains("dpo@hopital.example", french, StringComparison.Ordinal);
        var english = File.ReadAllText(Path.Combine(folder, "letters", _b + ".en.md"));
        Assert.Contains("Prénom1 Bessonneau", english, StringComparison.Ordinal);
        Assert.Contains("identity and contact details", english, StringComparison.Ordinal);
        Assert.DoesNotContain("laboratory", english, StringComparison.Ordinal); // B's lab results were not reached
        Assert.DoesNotContain("Aubrac", english, StringComparison.Ordinal);     // nor is another patient named in B's letter
        var notification = File.ReadAllText(Path.Combine(folder, "notification-cnil.en.md"));
        Assert.Contains("**5** patients", notification, StringComparison.Ordinal);
        Assert.Contains("2026-12-04 10:30 (Paris time)", notification, StringComparison.Ordinal); // the 72-hour deadline, 09:30 UTC
        // A patient reads the times as her clock showed them, and no internal account id nor the operator's reminders.
        Assert.Contains("(heure de Paris)", french, StringComparison.Ordinal);
        Assert.DoesNotContain("UTC", french, StringComparison.Ordinal);
        Assert.DoesNotContain("`", french, StringComparison.Ordinal);
        Assert.DoesNotContain("vauban ", french, StringComparison.Ordinal);
        Assert.Contains("______", notification, StringComparison.Ordinal);               // the DPO's name left blank
        Assert.True(File.Exists(Path.Combine(folder, "notification-cnil.fr.md")));
        foreach (var family in Families) Assert.DoesNotContain(family, notification, StringComparison.Ordinal);
        // Each letter counts its patient's accesses with the noun agreed: "(1 access)", "(3 accesses)".
        foreach (var letter in Directory.GetFiles(Path.Combine(folder, "letters"), "*.en.md"))
        {
            var count = System.Text.RegularExpressions.Regex.Match(File.ReadAllText(letter), @"\((\d+) (access|accesses)\)\.");
            Assert.True(count.Success, letter);
            Assert.Equal(count.Groups[1].Value == "1" ? "access" : "accesses", count.Groups[2].Value);
        }
    }

    [Fact]
    public async Task Standard_output_names_no_patient_and_the_files_are_private()
    {
        var folder = Out("private");
        var (exit, output) = await BreachAsync(folder, "--principal", "client:" + _client);
        Assert.True(exit == 0, output);
        Assert.Contains("5 patients whose data left", output, StringComparison.Ordinal);
        foreach (var family in Families) Assert.DoesNotContain(family, output, StringComparison.Ordinal);
        Assert.DoesNotContain("Prénom", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Nantes", output, StringComparison.Ordinal);
        if (OperatingSystem.IsWindows()) return;
        const UnixFileMode Folder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Assert.Equal(Folder, File.GetUnixFileMode(folder));
        Assert.Equal(Folder, File.GetUnixFileMode(Path.Combine(folder, "letters")));
        var files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories);
        Assert.Equal(3 + 8, files.Length);
        Assert.All(files, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
    }

    [Fact]
    public async Task The_window_keeps_only_the_acts_inside_it()
    {
        var folder = Out("window");
        var (exit, output) = await BreachAsync(folder, "--principal", _client, "--from", _secondPhase.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture), "--lang", "fr");
        Assert.True(exit == 0, output);
        Assert.Equal(new[] { _c, _d, _f }.Order(), PatientsOf(Scope(folder)).Keys.Order());
        Assert.Equal(2, Directory.GetFiles(Path.Combine(folder, "letters")).Length); // C and D, in French only
        Assert.False(File.Exists(Path.Combine(folder, "notification-cnil.en.md")));

        var before = Out("before");
        (exit, output) = await BreachAsync(before, "--principal", _client, "--to", _secondPhase.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(exit == 0, output);
        Assert.Equal(new[] { _a, _b }.Order(), PatientsOf(Scope(before)).Keys.Order());
    }

    [Fact]
    public async Task The_addressees_are_read_through_the_records_service_and_the_run_is_itself_on_the_chain()
    {
        var (exit, output) = await BreachAsync(Out("audited"), "--principal", _client);
        Assert.True(exit == 0, output);
        var officer = AccessContext.Operator(_tenant, "audit test");
        var entries = await _server.Store.AuditLog.SearchAsync(officer, new AuditQuery { Patient = _a, Actions = [AuditAction.Read], Count = 100 }, CancellationToken.None);
        Assert.Contains(entries!, e => e.Detail.Purpose == "breach notification" && e.Detail.Principal.StartsWith("cli:", StringComparison.Ordinal));
        var runs = await _server.Store.AuditLog.SearchAsync(officer,
            new AuditQuery { Agent = "cli:" + Environment.UserName, Actions = [AuditAction.Administration], Count = 100 }, CancellationToken.None);
        var run = Assert.Single(runs!, e => e.Detail.Records.Contains("cli:breach"));
        Assert.Contains($"breach scope of {_client}", run.Detail.Note, StringComparison.Ordinal);
        Assert.Contains("5 patients", run.Detail.Note, StringComparison.Ordinal);
        // The deleted patient's read was attempted, audited, and gave no letter; the canary and the refused patient were not read.
        var canaryReads = await _server.Store.AuditLog.SearchAsync(officer, new AuditQuery { Patient = _canary, Agent = "cli:" + Environment.UserName, Count = 100 }, CancellationToken.None);
        Assert.DoesNotContain(canaryReads!, e => e.Action == AuditAction.Read);
        Assert.True((await _server.Store.AuditLog.VerifyAsync(_tenant.Id, null, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task A_tampered_audit_row_is_refused_with_exit_code_3_and_nothing_written()
    {
        await _server.ExecuteSqlAsync($"UPDATE audit_entries SET at = at + 1000 WHERE tenant_id = {_tenant.Id} AND seq = 5");
        var folder = Out("tampered");
        var (exit, output) = await BreachAsync(folder, "--principal", _client);
        Assert.Equal(3, exit);
        Assert.Contains("BROKEN at entry 5", output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(folder));

        // --unverified computes it anyway, and every file says so first.
        (exit, output) = await BreachAsync(folder, "--principal", _client, "--unverified");
        Assert.True(exit == 0, output);
        Assert.Contains("AUDIT LOG NOT VERIFIED", output, StringComparison.Ordinal);
        Assert.False(Scope(folder).GetProperty("auditLog").GetProperty("verified").GetBoolean());
        Assert.StartsWith("> **WARNING — AUDIT LOG NOT VERIFIED.**", File.ReadAllText(Path.Combine(folder, "notification-cnil.en.md")), StringComparison.Ordinal);
        Assert.StartsWith("> **ATTENTION — JOURNAL D'AUDIT NON VÉRIFIÉ.**", File.ReadAllText(Path.Combine(folder, "letters", _a + ".fr.md")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_run_into_a_folder_already_written_is_refused_and_changes_nothing()
    {
        var folder = Out("twice");
        Assert.Equal(0, (await BreachAsync(folder, "--principal", _client)).Exit);
        var written = File.ReadAllText(Path.Combine(folder, "scope.json"));
        var (exit, output) = await BreachAsync(folder, "--principal", _client);
        Assert.Equal(2, exit); // a usage error, found before the store is opened
        Assert.Contains("is not empty", output, StringComparison.Ordinal);
        Assert.Equal(written, File.ReadAllText(Path.Combine(folder, "scope.json")));
    }

    [Fact]
    public async Task A_staff_accounts_scope_is_found_by_its_account_and_a_lock_is_told_as_a_measure_taken()
    {
        var user = (await _server.Store.Accounts.AddAsync(_tenant, "interne@hopital.example", StaffRole.Physician, null, null, "Interne", CancellationToken.None)).User;
        var person = new AccessContext(new Principal(PrincipalKind.Person, user.PrincipalId, "Interne", StaffUser.PersonScopes) { Role = StaffRole.Physician, SessionId = "s1" },
            _tenant, KnownPurposes.Treatment);
        // What the records service records when a person opens a patient's whole record: the patient and every record returned.
        await _server.Store.Audit.AppendAsync(person, AuditAction.Everything, AuditOutcome.Success, "Patient",
            [new AuditedRecord("Patient", _g, _g), new AuditedRecord("Encounter", "enc-1", _g), new AuditedRecord("MedicationRequest", "rx-1", _g)], CancellationToken.None);
        await _server.Store.Audit.AppendAsync(person, AuditAction.Read, AuditOutcome.MinorFailure, "Patient", [new AuditedRecord("Patient", _e, _e)], CancellationToken.None);
        // A bulk export's download: one entry per patient its file carried. A search's count alone returns no record.
        await _server.Store.Audit.AppendAsync(person, AuditAction.Export, AuditOutcome.Success, "Coverage", [new AuditedRecord("Coverage", "cov-1", _g)],
            CancellationToken.None, "bulk export job-1");
        await _server.Store.Audit.AppendAsync(person, AuditAction.Search, AuditOutcome.Success, "Patient", [new AuditedRecord("Patient", _d, _d)],
            CancellationToken.None, "count only");
        Assert.True(await _server.Store.Accounts.LockAsync(_tenant, user.Email, CancellationToken.None));
        await _server.Store.Audit.CatchUpAsync(); // the server's journaled entries on the chain, where another process reads them

        var folder = Out("person");
        var (exit, output) = await BreachAsync(folder, "--principal", user.PrincipalId);
        Assert.True(exit == 0, output);
        var scope = Scope(folder);
        Assert.Equal("person", scope.GetProperty("principalKind").GetString());
        var patient = Assert.Single(PatientsOf(scope)).Value;
        Assert.Equal(_g, patient.GetProperty("id").GetString());
        Assert.Equal(["identity", "careEpisodes", "prescriptions", "insuranceAndBilling"], Strings(patient.GetProperty("categories")));
        Assert.Equal(["everything", "export"], Strings(patient.GetProperty("actions")));
        Assert.Equal(4, patient.GetProperty("records").GetInt32());
        Assert.Equal(1, scope.GetProperty("refused").GetProperty("accesses").GetInt32());
        Assert.True(scope.GetProperty("containment").GetProperty("accountLocked").GetBoolean());
        Assert.Contains("the account concerned is locked", File.ReadAllText(Path.Combine(folder, "notification-cnil.en.md")), StringComparison.Ordinal);
        Assert.Contains("séjours, consultations et rendez-vous", File.ReadAllText(Path.Combine(folder, "letters", _g + ".fr.md")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_the_guard_contained_on_a_canary_has_no_patient_in_scope_and_the_canary_and_the_hold_are_reported()
    {
        var (walker, clientId) = await ClientAsync(ClientLimits.None);
        using (walker)
        {
            using var canary = await walker.GetAsync($"/fhir/Patient/{_canary}");
            Assert.False(canary.IsSuccessStatusCode);
        }
        await _server.Store.Audit.CatchUpAsync();
        var folder = Out("contained");
        var (exit, output) = await BreachAsync(folder, "--principal", clientId);
        Assert.True(exit == 0, output);
        var scope = Scope(folder);
        Assert.Empty(PatientsOf(scope));
        Assert.Equal([_canary], Strings(scope.GetProperty("refused").GetProperty("canaries")));
        Assert.NotEqual(JsonValueKind.Null, scope.GetProperty("containment").GetProperty("guardLevel").ValueKind);
        Assert.Empty(Directory.GetFiles(Path.Combine(folder, "letters")));
        var notification = File.ReadAllText(Path.Combine(folder, "notification-cnil.en.md"));
        Assert.Contains("held by Vauban's guard", notification, StringComparison.Ordinal);
        Assert.Contains("Canary patients (synthetic, opened by no care workflow) reached: 0, refused: 1", notification, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_compromised_officer_who_read_a_patients_access_history_has_that_patient_in_scope_for_their_access_history()
    {
        // A security officer's stolen password: the audit log says who cared for the patient, when and from where.
        var officer = new AccessContext(new Principal(PrincipalKind.Person, "user:officer-vole", "Officier", StaffUser.PersonScopes) { Role = StaffRole.SecurityOfficer }, _tenant, "TREAT");
        Assert.NotEmpty((await _server.Store.AuditLog.SearchAsync(officer, new AuditQuery { Patient = _g, Count = 50 }, CancellationToken.None))!);
        // A count returns no entry: no patient reached by it.
        Assert.NotNull(await _server.Store.AuditLog.SearchPageAsync(officer, new AuditQuery { Patient = _b, Count = 0 }, CancellationToken.None));
        await _server.Store.Audit.CatchUpAsync();

        var scope = await ScopeOfAsync("user:officer-vole");

        var reached = Assert.Single(scope.Patients);
        Assert.Equal(_g, reached.Id);
        Assert.Equal([Vauban.Breach.BreachCategory.AccessHistory], reached.Categories);
        Assert.Contains("qui l'a consulté", Vauban.Breach.BreachDocuments.Describe(Vauban.Breach.BreachCategory.AccessHistory, french: true), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Counts_of_a_patients_history_and_record_return_no_record_and_put_no_patient_in_scope()
    {
        var (http, clientId) = await ClientAsync(ClientLimits.None);
        using (http)
        {
            await ExpectAsync(http, $"/fhir/Patient/{_g}/_history?_count=0", HttpStatusCode.OK);
            await ExpectAsync(http, $"/fhir/Patient/{_e}/$everything?_count=0", HttpStatusCode.OK);
            await ExpectAsync(http, "/fhir/Patient?family=Gâtinais&_summary=count", HttpStatusCode.OK);
            await ExpectAsync(http, $"/fhir/Patient/{_b}", HttpStatusCode.OK); // one read, which does reach B
        }
        await _server.Store.Audit.CatchUpAsync();

        var scope = await ScopeOfAsync(clientId);

        Assert.Equal([_b], scope.Patients.Select(p => p.Id));
    }

    private async Task<Vauban.Breach.BreachScope> ScopeOfAsync(string principal)
    {
        var log = await Vauban.Breach.BreachInvestigation.CheckLogAsync(_server.Store, _tenant, CancellationToken.None);
        Assert.True(log.Chain.Valid, log.Chain.Problem);
        return (await Vauban.Breach.BreachInvestigation.ScopeAsync(_server.Store, AccessContext.Operator(_tenant, "breach notification"), principal, null, null, log,
            CancellationToken.None))!;
    }

    [Fact]
    public async Task An_unknown_principal_or_establishment_is_an_error_and_a_malformed_one_a_usage_error()
    {
        var (exit, output) = await BreachAsync(Out("unknown"), "--principal", "client:vc_nobody");
        Assert.Equal(1, exit);
        Assert.Contains("error: no such principal on this establishment's audit log", output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Out("unknown")));

        (exit, output) = await CliRunner.RunAsync(["breach", "--tenant", "hopital", "--principal", _client, "--out", Out("x"), "--db", _server.Db, "--master-key-file", _keyFile]);
        Assert.Equal(1, exit);
        Assert.Contains("error:", output, StringComparison.Ordinal);

        (exit, output) = await BreachAsync(Out("bad"), "--principal", "session:abc");
        Assert.Equal(2, exit);
        Assert.Contains("--principal", output, StringComparison.Ordinal);

        (exit, _) = await BreachAsync(Out("bad"), "--principal", _client, "--from", "yesterday");
        Assert.Equal(2, exit);
    }
}

public sealed class BreachTests_Sqlite() : BreachTests(Engine.Sqlite);

public sealed class BreachTests_Postgres() : BreachTests(Engine.Postgres);
