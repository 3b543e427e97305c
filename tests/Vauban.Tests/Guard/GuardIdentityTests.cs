// The guard's identity-read signal (issue 5), on both engines: a principal taking patients' identities (their
// Patient resource: name, NIR/INS, birth date, address, phone, e-mail) is contained at its identity bound,
// whether the identities come as Patient search pages or as Patients _include'd with clinical records; the same
// number of patients' clinical records alone is not an identity read. The desk reads identities for a living: its
// learned identity peak, not a fixed clinician bound, decides — and a baseline learned before identities were
// counted is not taken for a normal of zero identities.
using System.Text.Json;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public abstract class GuardIdentityTests : IAsyncLifetime
{
    private const string Establishment = "hopital-identites";
    private const string Ward = "10.20.0.15";
    private const string Browser = "browser:firefox/windows";

    /// <summary>This establishment's physicians: suspended beyond 20 patients' identities an hour (their distinct-patient levels are the defaults: 40/60/100).</summary>
    private const int PhysicianIdentityBound = 20;

    /// <summary>This establishment's API clients: suspended beyond 30 patients' identities an hour (their distinct-patient levels raised out of the way).</summary>
    private const int ClientIdentityBound = 30;

    private const int OwnPatients = 40;
    private const int DeskPatients = 60;
    private readonly Engine _engine;
    private static readonly DateTimeOffset Start = new(ManualTime.RealNow.UtcDateTime.Date.AddDays(-1), TimeSpan.Zero);
    private readonly ManualTime _time = new(Start);
    private VaubanServer _server = null!;
    private Tenant _tenant = null!;
    private string _drA = "", _insurer = "";
    private readonly List<string> _own = [];
    private readonly List<string> _desk = [];
    private static readonly CancellationToken None = CancellationToken.None;

    protected GuardIdentityTests(Engine engine) => _engine = engine;

    private RecordsService Records => _server.Store.Records;

    private static GuardOptions Options => new()
    {
        SlowDelay = TimeSpan.Zero,
        MaxDelay = TimeSpan.Zero,
        Tenants = new Dictionary<string, GuardTenantOptions>(StringComparer.Ordinal)
        {
            [Establishment] = new()
            {
                Roles = new Dictionary<StaffRole, GuardLimits> { [StaffRole.Physician] = new() { IdentitiesPerHour = new(Suspend: PhysicianIdentityBound) } },
                Clients = new() { PatientsPerMinute = new(Suspend: 100), IdentitiesPerHour = new(Suspend: ClientIdentityBound) },
                Export = new() { ApprovalAbovePatients = 100 },
            },
        },
    };

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(_engine, configure: o => o with { Time = _time, Guard = Options });
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, None);
        _drA = await CreateAsync(Samples.Practitioner("Alpha", "10000000001"));
        _insurer = await CreateAsync("""{"resourceType":"Organization","name":"CPAM de Loire-Atlantique"}""");
        var day = Start.AddDays(-3).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        for (var i = 0; i < OwnPatients; i++)
        {
            var patient = await CreateAsync(Samples.Patient(family: "Suivi", given: "S" + i));
            _own.Add(patient);
            await CreateAsync(Samples.Encounter(patient, _drA, day));
        }
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<string> CreateAsync(string json) => _server.CreateAsOperatorAsync(_tenant, json);

    /// <summary>Patients the desk meets, each with an insurance coverage (what the desk checks without opening the identity).</summary>
    private async Task<List<(string Patient, string Coverage)>> DeskPatientsAsync()
    {
        var made = new List<(string, string)>();
        for (var i = 0; i < DeskPatients; i++)
        {
            var patient = await CreateAsync(Samples.Patient(family: "Guichet", given: "G" + i));
            _desk.Add(patient);
            made.Add((patient, await CreateAsync($$"""
                {"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/{{patient}}"},"payor":[{"reference":"Organization/{{_insurer}}"}]}
                """)));
        }
        return made;
    }

    private void At(int day, double hour) => _time.Advance(Start.AddDays(day).AddHours(hour) - _time.GetUtcNow());

    private AccessContext DrA(bool fresh = false) =>
        new(new Principal(PrincipalKind.Person, "user:drA", "Dr Alpha", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, Practitioner = _drA, SessionId = "dra-session",
            AuthenticatedAt = fresh ? _time.GetUtcNow().AddMilliseconds(1) : _time.GetUtcNow().AddHours(-1),
        }, _tenant, "TREAT", Ward) { Device = Browser };

    private AccessContext Desk(string account, bool fresh = false) =>
        new(new Principal(PrincipalKind.Person, "user:" + account, "Desk", StaffUser.PersonScopes)
        {
            Role = StaffRole.Secretary, SessionId = account + "-session",
            AuthenticatedAt = fresh ? _time.GetUtcNow().AddMilliseconds(1) : _time.GetUtcNow().AddHours(-1),
        }, _tenant, "TREAT", Ward) { Device = Browser };

    /// <summary>Pages through a search, one page every two minutes (under every minute bound); returns the distinct patients whose
    /// identity came back, the distinct patients the pages concerned, and the last status.</summary>
    private async Task<(int Identities, int Patients, RecordStatus Last)> PageThroughAsync(string type, List<KeyValuePair<string, string>> parameters)
    {
        var identities = new HashSet<string>(StringComparer.Ordinal);
        var patients = new HashSet<string>(StringComparer.Ordinal);
        string? next = null;
        var last = RecordStatus.Ok;
        for (var i = 0; i < 20; i++)
        {
            var page = await Records.SearchAsync(DrA(), type, next is null ? parameters : [], next, false, None);
            last = page.Status;
            if (page.Status != RecordStatus.Ok) break;
            foreach (var entry in page.Entries)
            {
                if (entry.Type == "Patient") identities.Add(entry.Id);
                patients.Add(entry.Type == "Patient" ? entry.Id : SubjectOf(entry));
            }
            next = page.NextPage;
            if (next is null) break;
            _time.Advance(TimeSpan.FromMinutes(2));
        }
        return (identities.Count, patients.Count, last);
    }

    private static string SubjectOf(SearchEntry entry)
    {
        using var document = JsonDocument.Parse(entry.Json);
        return document.RootElement.GetProperty("subject").GetProperty("reference").GetString()!["Patient/".Length..];
    }

    /// <summary>Days 0–3, from 09:00, one read every two minutes: the desk's normal, which the guard learns.</summary>
    private async Task LearnAsync(string account, Func<int, (string Type, string Id)> read, int readsPerDay)
    {
        for (var day = 0; day < 4; day++)
        {
            At(day, 9);
            for (var k = 0; k < readsPerDay; k++)
            {
                var (type, id) = read(k);
                Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(Desk(account), type, id, None)).Status);
                _time.Advance(TimeSpan.FromMinutes(2));
            }
        }
    }

    /// <summary>Each account reads the same Patients, one every 30 s side by side, re-proving both factors when asked (phished) and
    /// stopping when refused; returns, per account, the identities opened before the step-up and before containment.</summary>
    private async Task<Dictionary<string, (int BeforeStepUp, int Opened, RecordStatus Last)>> TakeIdentitiesAsync(IEnumerable<string> patients, params string[] accounts)
    {
        var taken = accounts.ToDictionary(a => a, _ => (BeforeStepUp: -1, Opened: 0, Last: RecordStatus.Ok), StringComparer.Ordinal);
        foreach (var patient in patients)
        {
            foreach (var account in accounts)
            {
                var (stepUp, opened, last) = taken[account];
                if (last != RecordStatus.Ok) continue;
                var result = await Records.ReadAsync(Desk(account, fresh: stepUp >= 0), "Patient", patient, None);
                if (result.Status == RecordStatus.ReauthenticationRequired && stepUp < 0)
                {
                    stepUp = opened;
                    result = await Records.ReadAsync(Desk(account, fresh: true), "Patient", patient, None);
                }
                taken[account] = (stepUp, result.Status == RecordStatus.Ok ? opened + 1 : opened, result.Status);
            }
            _time.Advance(TimeSpan.FromSeconds(30));
        }
        return taken.ToDictionary(t => t.Key, t => (t.Value.BeforeStepUp < 0 ? t.Value.Opened : t.Value.BeforeStepUp, t.Value.Opened, t.Value.Last), StringComparer.Ordinal);
    }

    private AccessContext Registry()
    {
        Assert.True(SmartScopes.TryParse("system/Patient.rs system/Encounter.rs", TypeCodes.Names, out var scopes, out _));
        return new AccessContext(new Principal(PrincipalKind.ApiClient, "registry", "Regional registry", scopes), _tenant, "TREAT", "192.0.2.20")
        {
            Device = "library:java", StatedReason = "monthly extract for the regional registry",
        };
    }

    /// <summary>Kicks off a system-level export of one type and asks for its file; returns the download's status.</summary>
    private async Task<RecordStatus> ExportAsync(string type)
    {
        var job = await Records.ExportAsync(Registry(), ExportLevel.System, [type], null, "/fhir/$export?_type=" + type, None);
        Assert.Equal(RecordStatus.Ok, job.Status);
        return (await Records.ExportFileAsync(Registry(), job.Job!.Id, type, None)).Status;
    }

    private async Task<IReadOnlyList<SecurityAlert>> AlertsAsync(string kind) =>
        [.. (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None)).Where(a => a.Kind == kind)];

    [Theory]
    [InlineData("Patient", null)]
    [InlineData("Encounter", "Encounter:subject")]
    public async Task A_session_taking_identities_through_search_pages_is_suspended_by_the_identity_signal_at_the_configured_bound(string type, string? include)
    {
        At(0, 10);
        List<KeyValuePair<string, string>> parameters = [new("_count", "10")];
        if (include is not null) parameters.Add(new("_include", include));
        var (identities, _, last) = await PageThroughAsync(type, parameters);
        // Two pages of 10 identities pass; the third would make 30 > 20 and is refused whole.
        Assert.Equal(RecordStatus.Locked, last);
        Assert.Equal(PhysicianIdentityBound, identities);
        var suspended = Assert.Single(await AlertsAsync(KnownAlertKinds.GuardSuspended));
        Assert.Contains($"{KnownGuardSignals.IdentityReads}: distinct patients' identities in an hour: 30 > {PhysicianIdentityBound}", suspended.Detail, StringComparison.Ordinal);
        Assert.NotNull(_server.Store.Guard.ContainmentOf(_tenant.Id, DrA().Principal));
    }

    [Fact]
    public async Task Reading_the_clinical_records_of_twice_as_many_patients_is_not_an_identity_read()
    {
        At(0, 10);
        var (identities, patients, last) = await PageThroughAsync("Encounter", [new("_count", "10")]);
        // All 40 patients' encounters, twice the identity bound, under the distinct-patient levels (step-up at 60): admitted.
        Assert.Equal(RecordStatus.Ok, last);
        Assert.Equal(0, identities);
        Assert.Equal(OwnPatients, patients);
        Assert.Empty(await AlertsAsync(KnownAlertKinds.GuardSuspended));
        Assert.Empty(await AlertsAsync(KnownAlertKinds.GuardStepUp));
        Assert.Null(_server.Store.Guard.ContainmentOf(_tenant.Id, DrA().Principal));
        // Their identities next are counted from the first: the bound holds.
        _time.Advance(TimeSpan.FromMinutes(2));
        var (taken, _, after) = await PageThroughAsync("Patient", [new("_count", "10")]);
        Assert.Equal(RecordStatus.Locked, after);
        Assert.Equal(PhysicianIdentityBound, taken);
    }

    [Fact]
    public async Task An_export_of_Patient_is_an_identity_read_and_an_export_of_clinical_records_is_not()
    {
        At(0, 10);
        // The encounters of all 40 patients: admitted (no identity in them).
        Assert.Equal(RecordStatus.Ok, await ExportAsync("Encounter"));
        // The same 40 patients' identities: beyond 30, refused whole, the client suspended.
        Assert.Equal(RecordStatus.Locked, await ExportAsync("Patient"));
        var suspended = Assert.Single(await AlertsAsync(KnownAlertKinds.GuardSuspended));
        Assert.Contains($"{KnownGuardSignals.IdentityReads}: distinct patients' identities in an hour: {OwnPatients} > {ClientIdentityBound}", suspended.Detail, StringComparison.Ordinal);
        Assert.Contains("export of Patient", suspended.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_desk_whose_learned_identity_peak_is_high_is_not_contained_where_a_desk_that_rarely_opens_identities_is()
    {
        var desk = await DeskPatientsAsync();
        // Both desks deal with 30 patients a day in an hour; one opens their identities, the other checks their coverage and opens 3 identities.
        await LearnAsync("desk-admissions", k => ("Patient", desk[k].Patient), readsPerDay: 30);
        await LearnAsync("desk-coverage", k => k < 3 ? ("Patient", desk[k].Patient) : ("Coverage", desk[k].Coverage), readsPerDay: 30);

        // Day 4, 10:00: each takes the same 54 identities, one every 30 s.
        At(4, 10);
        var taken = await TakeIdentitiesAsync(_desk.Take(54), "desk-coverage", "desk-admissions");
        var (lowStepUp, lowOpened, lowLast) = taken["desk-coverage"];
        var (highStepUp, highOpened, highLast) = taken["desk-admissions"];

        // The coverage desk (learned identity peak 3): asked to step up at its 28th identity (3 + 25), suspended beyond 53 (3 + 50);
        // its distinct-patient peak (30) alone would have let all 54 through without asking anything.
        Assert.Equal(27, lowStepUp);
        Assert.Equal(53, lowOpened);
        Assert.Equal(RecordStatus.Locked, lowLast);
        // The admissions desk (learned identity peak 30: step-up at 55, suspension beyond 80): all 54, nothing asked.
        Assert.Equal(54, highStepUp);
        Assert.Equal(54, highOpened);
        Assert.Equal(RecordStatus.Ok, highLast);
        var suspended = Assert.Single(await AlertsAsync(KnownAlertKinds.GuardSuspended));
        Assert.Contains("user:desk-coverage", suspended.Detail, StringComparison.Ordinal);
        Assert.Contains($"{KnownGuardSignals.IdentityReads}: distinct patients' identities in an hour (learned peak 3): 54 > 53", suspended.Detail, StringComparison.Ordinal);
        var stepUp = Assert.Single(await AlertsAsync(KnownAlertKinds.GuardStepUp));
        Assert.Contains(KnownGuardSignals.IdentityReads, stepUp.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_baseline_learned_before_identities_were_counted_is_not_taken_for_a_normal_of_no_identities()
    {
        var desk = await DeskPatientsAsync();
        await LearnAsync("desk-admissions", k => ("Patient", desk[k].Patient), readsPerDay: 30);
        // As restored from a profile written before identity reads were learned: mature volumes, no identity figures.
        foreach (var subject in new[] { "user:desk-admissions", RecordsGuard.RoleSubject(StaffRole.Secretary) })
        {
            var baseline = _server.Store.Guard.BaselineOf(_tenant.Id, subject);
            lock (baseline)
            {
                Assert.True(baseline.IdentityDays >= 3);
                baseline.IdentityDays = baseline.IdentityDayPeak = baseline.IdentityHourPeak = baseline.TodayIdentityDayPeak = baseline.TodayIdentityHourPeak = 0;
            }
        }
        At(4, 10);
        // Held to its learned distinct-patient levels (step-up at 55), not to 0 + 25 identities.
        var (beforeStepUp, opened, last) = (await TakeIdentitiesAsync(_desk.Take(54), "desk-admissions"))["desk-admissions"];
        Assert.Equal(54, beforeStepUp);
        Assert.Equal(54, opened);
        Assert.Equal(RecordStatus.Ok, last);
    }

    [Fact]
    public void Identity_levels_are_configured_per_role_and_establishment_and_bad_values_are_refused()
    {
        var physician = new Principal(PrincipalKind.Person, "user:x", "x", SmartScopes.None) { Role = StaffRole.Physician };
        var secretary = physician with { Role = StaffRole.Secretary };
        var defaults = new GuardOptions();
        defaults.Validate();
        Assert.Equal(new Threshold(Slow: 40, StepUp: 60, Suspend: 80), defaults.For(new Tenant(1, "any"), physician).IdentitiesPerHour);
        Assert.Equal(150, defaults.For(new Tenant(1, "any"), physician).IdentitiesPerDay?.Suspend);
        // The desk's work is identities: its levels follow its distinct-patient levels, and its learned peak does the rest.
        Assert.Null(defaults.For(new Tenant(1, "any"), secretary).IdentitiesPerHour);
        Assert.Equal(PhysicianIdentityBound, Options.For(new Tenant(1, Establishment), physician).IdentitiesPerHour?.Suspend);

        var file = GuardOptions.FromJson("""{ "tenants": { "chu-nantes": { "roles": { "Secretary": { "identitiesPerDay": { "stepUp": 100, "suspend": 200 } } } } } }""");
        Assert.Equal(200, file.For(new Tenant(2, "chu-nantes"), secretary).IdentitiesPerDay?.Suspend);

        // Falling levels, levels that are not positive, identity levels above the distinct-patient levels they can never pass.
        Assert.Throws<VaubanConfigurationException>(() => new GuardOptions { People = new GuardLimits { IdentitiesPerHour = new Threshold(StepUp: 30, Suspend: 20) } }.Validate());
        Assert.Throws<VaubanConfigurationException>(() => new GuardOptions { People = new GuardLimits { IdentitiesPerDay = new Threshold(Suspend: 0) } }.Validate());
        Assert.Throws<VaubanConfigurationException>(() => new GuardOptions { Clients = new GuardLimits { IdentitiesPerDay = new Threshold(Suspend: 2_000) } }.Validate());
        Assert.Throws<VaubanConfigurationException>(() => new GuardOptions
        {
            Tenants = new Dictionary<string, GuardTenantOptions> { ["chu-nantes"] = new() { Roles = new Dictionary<StaffRole, GuardLimits> { [StaffRole.Nurse] = new() { IdentitiesPerHour = new Threshold(Slow: 50) } } } },
        }.Validate());
        Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "roles": { "Physician": { "identitiesPerHour": { "stepUp": 90, "suspend": 60 } } } }"""));
        Assert.Throws<VaubanConfigurationException>(() => GuardOptions.FromJson("""{ "roles": { "Physician": { "identitesPerHour": { "suspend": 60 } } } }"""));
    }
}

public sealed class GuardIdentityTests_Sqlite() : GuardIdentityTests(Engine.Sqlite);

public sealed class GuardIdentityTests_Postgres() : GuardIdentityTests(Engine.Postgres);
