// Adversarial tests of the guard's learned baselines and risk signals (issue 5), on both engines: a stolen desk
// session reading slowly from a network the establishment never saw, a vendor's client reading slowly beyond
// its learned volume, each signal (unusual hour, new device, failed sign-ins before success, consecutive ids,
// name and birth-date sweeps) raising an alert and tightening the response, baselines surviving a restart —
// and a learned clinician's and client's ordinary day, which must contain no one.
using System.Data.Common;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public abstract class GuardSignalTests(GuardSignalServer shared) : IAsyncLifetime
{
    private const string Password = "correct horse battery staple";
    private const string Ward = "10.20.0.15";
    private const string Browser = "browser:firefox/windows";
    private const string VendorHost = "192.0.2.10";
    // One server for the class (GuardSignalServer), each test in an establishment of its own: the guard learns its baselines, and
    // raises its signals, per establishment and principal. The test that signs in does so from a loopback address of its own (the
    // sign-in throttle counts per source, in the server's database).
    private string Establishment { get; } = SharedServer.EstablishmentName("hopital-signaux");
    private readonly Engine _engine = shared.Engine;
    private readonly ManualTime _time = shared.Time;
    private readonly VaubanServer _server = shared.Server;
    private readonly IPAddress _source = shared.SourceAddresses(1)[0];
    // Midnight UTC of the day after the shared clock's now, where the test's set-up moves the clock, so that each test chooses its hours.
    private readonly DateTimeOffset _start = new(shared.Time.GetUtcNow().UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
    private Tenant _tenant = null!;
    private string _drA = "";
    private readonly List<string> _patients = [];
    private readonly List<string> _own = [];
    private static readonly CancellationToken None = CancellationToken.None;

    private RecordsService Records => _server.Store.Records;

    internal static GuardOptions Options => new() { SlowDelay = TimeSpan.Zero, MaxDelay = TimeSpan.Zero };

    public async Task InitializeAsync()
    {
        _time.Advance(_start - _time.GetUtcNow());
        _tenant = await _server.Store.Tenants.AddAsync(Establishment, None);
        Task<string> Create(string json) => _server.CreateAsOperatorAsync(_tenant, json);
        var cardiology = await Create("""{"resourceType":"Organization","name":"Cardiologie"}""");
        _drA = await Create(Samples.Practitioner("Alpha", "10000000001"));
        for (var i = 0; i < 60; i++) _patients.Add(await Create(Samples.Patient(family: "Inconnu", given: "P" + i)));
        var day = _start.AddDays(-2).AddHours(12).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        for (var i = 0; i < 30; i++)
        {
            var patient = await Create(Samples.Patient(family: "Suivi", given: "S" + i));
            _own.Add(patient);
            await Create(Samples.Encounter(patient, _drA, day, cardiology));
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private void At(int day, double hour) => _time.Advance(_start.AddDays(day).AddHours(hour) - _time.GetUtcNow());

    private AccessContext Desk(string source = Ward, string device = Browser, bool fresh = false) =>
        new(new Principal(PrincipalKind.Person, "user:desk", "Desk", StaffUser.PersonScopes)
        {
            Role = StaffRole.Secretary, SessionId = "desk-session",
            AuthenticatedAt = fresh ? _time.GetUtcNow().AddMilliseconds(1) : _time.GetUtcNow().AddHours(-1),
        }, _tenant, "TREAT", source) { Device = device };

    private AccessContext DrA(string source = Ward, bool fresh = false) =>
        new(new Principal(PrincipalKind.Person, "user:drA", "Dr Alpha", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician, Practitioner = _drA, SessionId = "dra-session",
            AuthenticatedAt = fresh ? _time.GetUtcNow().AddMilliseconds(1) : _time.GetUtcNow().AddHours(-1),
        }, _tenant, "TREAT", source) { Device = Browser };

    private AccessContext Vendor(string source = VendorHost)
    {
        Assert.True(SmartScopes.TryParse("system/Patient.rs", TypeCodes.Names, out var scopes, out _));
        return new AccessContext(new Principal(PrincipalKind.ApiClient, "vendor-lab", "Laboratoire vendor interface", scopes), _tenant, "TREAT", source) { Device = "library:java" };
    }

    /// <summary>Days 0–3: the principal works as it always does (reads every <paramref name="every"/> from 09:00), and the guard learns it.</summary>
    private async Task LearnAsync(Func<AccessContext> who, List<string> patients, int readsPerDay, TimeSpan every, int days = 4)
    {
        for (var day = 0; day < days; day++)
        {
            At(day, 9);
            for (var k = 0; k < readsPerDay; k++)
            {
                var result = await Records.ReadAsync(who(), "Patient", patients[(day * 3 + k) % patients.Count], None);
                Assert.Equal(RecordStatus.Ok, result.Status);
                _time.Advance(every);
            }
        }
    }

    /// <summary>Reads one patient after another, every <paramref name="every"/>, re-proving both factors when asked (phished); returns the patients
    /// opened before the step-up and before containment.</summary>
    private async Task<(int BeforeStepUp, int Opened, RecordStatus Last)> ReadOnAsync(Func<bool, AccessContext> who, List<string> patients, TimeSpan every,
        RecordsService? records = null)
    {
        records ??= Records;
        var opened = 0;
        var stepUp = -1;
        var last = RecordStatus.Ok;
        foreach (var patient in patients)
        {
            var result = await records.ReadAsync(who(stepUp >= 0), "Patient", patient, None);
            if (result.Status == RecordStatus.ReauthenticationRequired && stepUp < 0)
            {
                stepUp = opened;
                result = await records.ReadAsync(who(true), "Patient", patient, None);
            }
            last = result.Status;
            if (result.Status != RecordStatus.Ok) break;
            opened++;
            _time.Advance(every);
        }
        return (stepUp < 0 ? opened : stepUp, opened, last);
    }

    private async Task<IReadOnlyList<SecurityAlert>> SignalsAsync() =>
        [.. (await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None)).Where(a => a.Kind == KnownAlertKinds.GuardSignal)];

    [Theory]
    [InlineData(5)]
    [InlineData(300)]
    public async Task Slow_and_low_a_stolen_desk_session_from_a_network_the_establishment_never_saw_is_contained_by_25_patients(int seconds)
    {
        await LearnAsync(() => Desk(), _patients, readsPerDay: 12, every: TimeSpan.FromMinutes(30));
        At(4, 9);
        var (beforeStepUp, opened, last) = await ReadOnAsync(fresh => Desk(source: "203.0.113.9", fresh: fresh), _patients, TimeSpan.FromSeconds(seconds));
        Assert.Equal(RecordStatus.Locked, last);
        // The risk's own bound (step-up at 10, suspension beyond 25 since it began), or sooner the learned day's or the
        // minute's bounds, halved at this risk; without the signal the learned day's bound would let 50 through.
        Assert.InRange(beforeStepUp, 1, 9);
        Assert.InRange(opened, 10, 25);
        _ = seconds;
        var signal = Assert.Single(await SignalsAsync());
        Assert.StartsWith(KnownGuardSignals.NewSourceForEstablishment, signal.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("203.0.113", signal.Detail, StringComparison.Ordinal);
        var suspended = Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None), a => a.Kind == KnownAlertKinds.GuardSuspended);
        Assert.Contains("since the risk signals", suspended.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_vendor_client_reading_slowly_is_suspended_within_25_patients_beyond_its_learned_volume()
    {
        // Its normal: six patients a day, one an hour.
        await LearnAsync(() => Vendor(), _patients, readsPerDay: 6, every: TimeSpan.FromHours(1));
        At(4, 9);
        var (_, opened, last) = await ReadOnAsync(_ => Vendor(), _patients, TimeSpan.FromSeconds(10));
        Assert.Equal(RecordStatus.Locked, last);
        // Learned peak: 1 an hour; without the baseline the clients' hour bound (200) would let all 60 through.
        Assert.InRange(opened, 20, 1 + 25);
        Assert.Contains(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None),
            a => a.Kind == KnownAlertKinds.GuardSuspended && a.Detail.Contains("learned peak", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Baselines_survive_a_restart_and_hold_no_source_address_or_device_in_clear()
    {
        await LearnAsync(() => Vendor(), _patients, readsPerDay: 6, every: TimeSpan.FromHours(1));
        At(4, 8);
        await _server.Store.Guard.FlushBaselinesAsync(None);
        await using (var restarted = await VaubanStore.OpenAsync(new StoreOptions(_server.Db, _server.MasterKey) { Time = _time, Guard = Options }, None))
        {
            At(4, 9);
            var (_, opened, last) = await ReadOnAsync(_ => Vendor(), _patients, TimeSpan.FromSeconds(10), restarted.Records);
            Assert.Equal(RecordStatus.Locked, last);
            Assert.InRange(opened, 20, 1 + 25);
        }
        await using var connection = await RawAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT subject, profile FROM guard_baselines";
        var rows = new Dictionary<string, string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) rows[reader.GetString(0)] = reader.GetString(1);
        }
        Assert.Contains("vendor-lab", rows.Keys);
        Assert.Contains("establishment", rows.Keys);
        Assert.All(rows.Values, profile =>
        {
            Assert.DoesNotContain("192.0.2", profile, StringComparison.Ordinal);
            Assert.DoesNotContain("java", profile, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task Reading_at_an_hour_the_account_never_works_raises_an_alert_and_the_step_up_comes_sooner()
    {
        // Days 0–3, 09:00–17:00.
        await LearnAsync(() => Desk(), _patients, readsPerDay: 16, every: TimeSpan.FromMinutes(30));
        At(5, 3);
        var (beforeStepUp, _, _) = await ReadOnAsync(fresh => Desk(fresh: fresh), _patients, TimeSpan.FromSeconds(10));
        // Elevated risk: the hour's step-up level (learned: 27) is halved.
        Assert.Equal(13, beforeStepUp);
        Assert.Contains(await SignalsAsync(), a => a.Detail.StartsWith(KnownGuardSignals.UnusualHour, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_hours_an_account_works_are_Paris_hours_the_same_when_the_clocks_have_gone_back()
    {
        // Four mornings in summer time, 08:00–11:59 in Paris (06:00–09:59 UTC), the last days before the clocks go back.
        var change = AutumnChangeAfter(DateOnly.FromDateTime(_start.UtcDateTime).AddDays(7));
        DateTimeOffset Paris(DateOnly day, int hour, int minute) =>
            new(day.ToDateTime(new TimeOnly(hour, minute)), TimeSpan.FromHours(day < change ? 2 : 1));
        for (var day = 4; day >= 1; day--)
        {
            _time.Advance(Paris(change.AddDays(-day), 8, 0) - _time.GetUtcNow());
            for (var k = 0; k < 16; k++)
            {
                Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(Desk(), "Patient", _patients[(day * 3 + k) % _patients.Count], None)).Status);
                _time.Advance(TimeSpan.FromMinutes(15));
            }
        }

        // In winter time her morning is the same on the clocks: 12:30 in Paris, next to it, is no unusual hour (by UTC's hours it
        // was: 11:30 UTC, two hours after the last she worked in summer).
        _time.Advance(Paris(change.AddDays(2), 12, 30) - _time.GetUtcNow());
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(Desk(), "Patient", _patients[50], None)).Status);
        Assert.Empty(await SignalsAsync());

        // 06:30 in Paris, two hours before she ever starts, is one (by UTC's it was not: 05:30 UTC, next to the summer's 06:00 UTC).
        _time.Advance(Paris(change.AddDays(3), 6, 30) - _time.GetUtcNow());
        Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(Desk(), "Patient", _patients[51], None)).Status);
        var signal = Assert.Single(await SignalsAsync());
        Assert.StartsWith(KnownGuardSignals.UnusualHour, signal.Detail, StringComparison.Ordinal);
        Assert.Contains("reading at 06:00 Paris time", signal.Detail, StringComparison.Ordinal);
    }

    /// <summary>The last Sunday of October (the clocks go back) on or after <paramref name="from"/>.</summary>
    private static DateOnly AutumnChangeAfter(DateOnly from)
    {
        for (var year = from.Year; ; year++)
        {
            var last = new DateOnly(year, 10, 31);
            var sunday = last.AddDays(-(int)last.DayOfWeek);
            if (sunday >= from) return sunday;
        }
    }

    [Fact]
    public async Task A_device_the_account_never_used_raises_an_alert_and_the_step_up_comes_sooner()
    {
        await LearnAsync(() => Desk(), _patients, readsPerDay: 12, every: TimeSpan.FromMinutes(30));
        At(4, 10);
        var (beforeStepUp, _, _) = await ReadOnAsync(fresh => Desk(device: DeviceClass.Of("python-requests/2.31")!, fresh: fresh), _patients, TimeSpan.FromSeconds(10));
        Assert.Equal(13, beforeStepUp);
        var signal = Assert.Single(await SignalsAsync());
        Assert.StartsWith(KnownGuardSignals.NewDevice, signal.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_network_the_account_never_used_but_the_establishment_knows_raises_the_risk_one_step()
    {
        // Another desk works from the second floor's network; this one from the ward's.
        var turn = 0;
        await LearnAsync(() => turn++ % 2 == 0 ? Desk() : Desk("10.30.0.7") with { Principal = Desk().Principal with { Id = "user:desk2", SessionId = "desk2-session" } },
            _patients, readsPerDay: 24, every: TimeSpan.FromMinutes(15));
        At(4, 10);
        var (beforeStepUp, _, _) = await ReadOnAsync(fresh => Desk(source: "10.30.0.9", fresh: fresh), _patients, TimeSpan.FromSeconds(10));
        Assert.Equal(13, beforeStepUp);
        Assert.Contains(await SignalsAsync(), a => a.Detail.StartsWith(KnownGuardSignals.NewSource + ":", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Failed_sign_ins_before_a_success_raise_an_alert_and_the_step_up_comes_sooner()
    {
        var account = await _server.Store.Accounts.AddAsync(_tenant, "dra@signaux.example", StaffRole.Physician, _drA, null, "Dr Alpha", None);
        string secret;
        using (var browser = new StaffClient(_server.BaseAddress, _source)) (secret, _) = await browser.EnrolWithTotpAsync(account.Token, Password, _time);
        _time.Advance(TimeSpan.FromSeconds(30));
        using var thief = new StaffClient(_server.BaseAddress, _source);
        foreach (var guess in new[] { "password123", "Hopital2024!", "azerty123456" })
        {
            await thief.PasswordAsync(Establishment, "dra@signaux.example", guess);
            _time.Advance(TimeSpan.FromMinutes(2)); // past the sign-in throttle's delay
        }
        var (password, _) = await thief.PasswordAsync(Establishment, "dra@signaux.example", Password);
        Assert.Equal("/account/signin/totp", password.Headers.Location?.ToString());
        var (totp, _) = await thief.TotpAsync(Totp.Code(secret, _time));
        Assert.Equal("/", totp.Headers.Location?.ToString());
        _time.Advance(TimeSpan.FromSeconds(30));
        var opened = 0;
        HttpStatusCode status = HttpStatusCode.OK;
        foreach (var patient in _own)
        {
            using var response = await thief.Http.GetAsync($"/fhir/Patient/{patient}");
            status = response.StatusCode;
            if (status != HttpStatusCode.OK) break;
            opened++;
            _time.Advance(TimeSpan.FromSeconds(10));
        }
        // Elevated risk: the hour's step-up level (60 for physicians) is halved; without the signal all 30 would be read.
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal(29, opened);
        var signal = Assert.Single(await SignalsAsync());
        Assert.StartsWith(KnownGuardSignals.FailedSignIns, signal.Detail, StringComparison.Ordinal);
        Assert.Contains("3 failed", signal.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reading_patients_by_consecutive_ids_is_an_enumeration_and_is_contained_by_25()
    {
        var op = AccessContext.Operator(_tenant, "import with the old system's numbers");
        var numbered = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            var id = "dossier-" + (104_200 + i).ToString(CultureInfo.InvariantCulture);
            using var document = JsonDocument.Parse(Samples.Patient(family: "Ancien", given: "N" + i, id: id));
            Assert.Equal(RecordStatus.Created, (await Records.UpdateAsync(op, "Patient", id, document.RootElement, null, None)).Status);
            numbered.Add(id);
        }
        // One a minute: under every volume bound of a client.
        var (_, opened, last) = await ReadOnAsync(_ => Vendor(), numbered, TimeSpan.FromMinutes(1));
        Assert.Equal(RecordStatus.Locked, last);
        Assert.Equal(25, opened);
        Assert.Contains(await SignalsAsync(), a => a.Detail.StartsWith(KnownGuardSignals.ConsecutiveIds, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Searches_walking_family_name_prefixes_are_a_sweep_and_bring_the_step_up_within_10_patients()
    {
        At(0, 10);
        foreach (var prefix in new[] { "ba", "bb", "bc", "bd" })
        {
            var page = await Records.SearchAsync(Desk(), "Patient", [new("family", prefix), new("_count", "5")], null, false, None);
            Assert.Equal(RecordStatus.Ok, page.Status);
            _time.Advance(TimeSpan.FromMinutes(1));
        }
        Assert.Contains(await SignalsAsync(), a => a.Detail.StartsWith(KnownGuardSignals.NameSweep, StringComparison.Ordinal));
        var (beforeStepUp, _, _) = await ReadOnAsync(fresh => Desk(fresh: fresh), _patients, TimeSpan.FromMinutes(1));
        Assert.Equal(9, beforeStepUp);
    }

    [Fact]
    public async Task Searches_stepping_birth_dates_are_a_sweep()
    {
        At(0, 10);
        foreach (var date in new[] { "1950-01-01", "1950-01-02", "1950-01-03", "1950-01-04" })
        {
            var page = await Records.SearchAsync(Desk(), "Patient", [new("birthdate", date)], null, false, None);
            Assert.Equal(RecordStatus.Ok, page.Status);
            _time.Advance(TimeSpan.FromSeconds(20));
        }
        Assert.Contains(await SignalsAsync(), a => a.Detail.StartsWith(KnownGuardSignals.BirthDateSweep, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_desk_looking_people_up_by_name_and_birth_date_all_day_is_no_sweep()
    {
        At(0, 9);
        string[] names = ["dupont", "martin", "bernard", "durand", "petit", "moreau", "laurent", "simon", "michel", "lefebvre", "leroy", "roux"];
        string[] dates = ["1984-06-02", "1951-11-23", "1990-01-15", "1962-03-30", "2001-09-09", "1977-07-07"];
        for (var i = 0; i < 60; i++)
        {
            var page = await Records.SearchAsync(Desk(), "Patient", [new("family", names[i % names.Length][..Math.Min(names[i % names.Length].Length, 3 + i % 4)]), new("birthdate", dates[i % dates.Length])], null, false, None);
            Assert.Equal(RecordStatus.Ok, page.Status);
            _time.Advance(TimeSpan.FromMinutes(7));
        }
        Assert.Empty(await SignalsAsync());
    }

    [Fact]
    public async Task Her_own_days_list_from_a_device_she_never_used_counts_in_the_minute()
    {
        await LearnAsync(() => DrA(), _own, readsPerDay: 12, every: TimeSpan.FromMinutes(30));
        At(4, 8);
        var day = _start.AddDays(4);
        for (var i = 0; i < 20; i++)
        {
            var start = day.AddHours(9).AddMinutes(10 * i).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            await _server.CreateAsOperatorAsync(_tenant, Samples.Appointment("Patient/" + _own[i], "Practitioner/" + _drA, start));
        }
        List<KeyValuePair<string, string>> agenda =
        [
            new("practitioner", "Practitioner/" + _drA), new("date", "ge" + day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            new("date", "lt" + day.AddDays(1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), new("_count", "100"), new("_include", "Appointment:patient"),
        ];
        // From her own browser, her day of 20 at once is her work list: left out of the minute (15 would ask both factors again).
        At(4, 10);
        Assert.Equal(RecordStatus.Ok, (await Records.SearchAsync(DrA(), "Appointment", agenda, null, false, None)).Status);
        // The same list from a device the account never used, an hour later: a stolen session's look, so no exemption.
        At(4, 11.1);
        var script = DrA() with { Device = DeviceClass.Of("python-requests/2.31")! };
        Assert.Equal(RecordStatus.ReauthenticationRequired, (await Records.SearchAsync(script, "Appointment", agenda, null, false, None)).Status);
        var stepUp = Assert.Single(await _server.Store.Alerts.ListAsync(_tenant.Id, all: true, 100, None), a => a.Kind == KnownAlertKinds.GuardStepUp);
        Assert.Contains("distinct patients in a minute: 20", stepUp.Detail, StringComparison.Ordinal);
        Assert.Contains(await SignalsAsync(), a => a.Detail.StartsWith(KnownGuardSignals.NewDevice, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_learned_clinician_and_a_learned_client_go_through_an_ordinary_busier_day_without_signal_or_containment()
    {
        // Four days: the physician reads a dozen of their patients from two ward workstations; the client its six an hour-apart.
        for (var day = 0; day < 4; day++)
        {
            At(day, 8);
            for (var k = 0; k < 12; k++)
            {
                Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(DrA(source: k % 2 == 0 ? "10.20.0.15" : "10.20.0.16"), "Patient", _own[(day * 5 + k) % _own.Count], None)).Status);
                if (k < 6) Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(Vendor(), "Patient", _patients[(day * 6 + k) % _patients.Count], None)).Status);
                _time.Advance(TimeSpan.FromMinutes(40));
            }
        }
        // Day 5: a busier day (twice the patients), from a third workstation of the same ward, starting an hour earlier.
        At(4, 7);
        for (var k = 0; k < 24; k++)
        {
            var status = (await Records.ReadAsync(DrA(source: "10.20.0.42"), "Patient", _own[k % _own.Count], None)).Status;
            Assert.Equal(RecordStatus.Ok, status);
            if (k < 6) Assert.Equal(RecordStatus.Ok, (await Records.ReadAsync(Vendor(), "Patient", _patients[40 + k], None)).Status);
            _time.Advance(TimeSpan.FromMinutes(20));
        }
        Assert.Empty(await SignalsAsync());
        Assert.Empty(await _server.Store.Guard.ContainmentsAsync(_tenant.Id, None));
    }

    private async Task<DbConnection> RawAsync()
    {
        DbConnection connection = _engine == Engine.Sqlite ? new SqliteConnection($"Data Source={_server.Db};Pooling=False") : new NpgsqlConnection(_server.Db);
        await connection.OpenAsync();
        return connection;
    }
}

/// <summary>The server <see cref="GuardSignalTests"/> share, its clock at midnight UTC of yesterday when it starts (each test then moves it
/// on to a midnight of its own); its guard adds no delays.</summary>
public abstract class GuardSignalServer(Engine engine) : SharedServer(engine, new ManualTime(new DateTimeOffset(ManualTime.RealNow.UtcDateTime.Date.AddDays(-1), TimeSpan.Zero)),
    o => o with { Guard = GuardSignalTests.Options });

public sealed class GuardSignalServer_Sqlite() : GuardSignalServer(Engine.Sqlite);

public sealed class GuardSignalServer_Postgres() : GuardSignalServer(Engine.Postgres);

public sealed class GuardSignalTests_Sqlite(GuardSignalServer_Sqlite shared) : GuardSignalTests(shared), IClassFixture<GuardSignalServer_Sqlite>;

public sealed class GuardSignalTests_Postgres(GuardSignalServer_Postgres shared) : GuardSignalTests(shared), IClassFixture<GuardSignalServer_Postgres>;
