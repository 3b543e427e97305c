// The guard's configuration: for each kind of principal (each staff role, API clients) the thresholds of
// its reading signals, each with up to three levels — slow down, ask people to prove both factors again,
// suspend. Establishments may override any role; the defaults keep DESIGN.md's invariant: no more than
// 25 distinct patients opened outside care relationships (and no more than 25 distinct patients in any
// minute, whatever the role) before the session or client is suspended.
using Vauban.Access;

namespace Vauban.Guard;

/// <summary>
/// The levels of one signal; null = that level is not used. The guard compares the count the signal would
/// reach with the records about to be returned: at or beyond <see cref="Slow"/> it adds a delay, at or beyond
/// <see cref="StepUp"/> a person must prove both factors again, beyond <see cref="Suspend"/> the request is refused
/// and the session or client suspended (so at most <see cref="Suspend"/> is ever reached).
/// </summary>
public sealed record Threshold(int? Slow = null, int? StepUp = null, int? Suspend = null)
{
    public static Threshold None { get; } = new();

    internal void Validate(string name)
    {
        if (Slow is < 1 || StepUp is < 1 || Suspend is < 1) throw new VaubanConfigurationException($"Guard threshold {name}: levels are positive numbers.");
        if (Slow > StepUp || Slow > Suspend || StepUp > Suspend)
            throw new VaubanConfigurationException($"Guard threshold {name}: levels must rise (slow ≤ step-up ≤ suspend).");
    }
}

/// <summary>The thresholds for one kind of principal.</summary>
public sealed record GuardLimits
{
    /// <summary>Distinct patients whose data was returned, in the last minute (the burst of a script).</summary>
    public Threshold PatientsPerMinute { get; init; } = new(Slow: 10, StepUp: 15, Suspend: 25);

    /// <summary>… in the last hour (a slower script, or a sweep between ward rounds).</summary>
    public Threshold PatientsPerHour { get; init; } = new(Slow: 40, StepUp: 60, Suspend: 100);

    /// <summary>… in the last 24 hours (slow and low).</summary>
    public Threshold PatientsPerDay { get; init; } = new(StepUp: 150, Suspend: 250);

    /// <summary>
    /// Identity reads: distinct patients whose identity (their Patient resource: name, NIR/INS, birth date, address,
    /// phone, e-mail) was returned in the last hour — what the vendor breach and a desk insider take, as distinct from
    /// clinical records that concern a patient. Null: the <see cref="PatientsPerHour"/> levels (identities are patients
    /// too), for roles whose work is identities; the learned identity peak tightens it either way.
    /// </summary>
    public Threshold? IdentitiesPerHour { get; init; }

    /// <summary>… in the last 24 hours; null: the <see cref="PatientsPerDay"/> levels.</summary>
    public Threshold? IdentitiesPerDay { get; init; }

    /// <summary>Distinct patients opened outside care relationships (through break-the-glass grants) in 24 hours.</summary>
    public Threshold OutsideCarePerDay { get; init; } = new(StepUp: 10, Suspend: 25);

    /// <summary>Break-the-glass grants obtained in 24 hours.</summary>
    public Threshold BreakTheGlassPerDay { get; init; } = new(Suspend: 25);

    /// <summary>Records returned by searches in the last hour (result volume).</summary>
    public Threshold SearchRecordsPerHour { get; init; } = new(Slow: 2_000, Suspend: 10_000);

    /// <summary>Distinct patients whose Patient/$everything is asked for in an hour without a stated reason; beyond, a reason is
    /// required (asking again for one already counted is not another).</summary>
    public int EverythingWithoutReasonPerHour { get; init; } = 3;

    /// <summary>Distinct patients whose $everything is asked for in a day, even with a reason.</summary>
    public Threshold EverythingPerDay { get; init; } = new(Suspend: 50);

    /// <summary>Search pages deeper than this (1 = the first page) require a stated reason.</summary>
    public int PageDepthWithoutReason { get; init; } = 10;

    internal void Validate(string name)
    {
        PatientsPerMinute.Validate(name + ".PatientsPerMinute");
        PatientsPerHour.Validate(name + ".PatientsPerHour");
        PatientsPerDay.Validate(name + ".PatientsPerDay");
        OutsideCarePerDay.Validate(name + ".OutsideCarePerDay");
        BreakTheGlassPerDay.Validate(name + ".BreakTheGlassPerDay");
        SearchRecordsPerHour.Validate(name + ".SearchRecordsPerHour");
        EverythingPerDay.Validate(name + ".EverythingPerDay");
        IdentitiesPerHour?.Validate(name + ".IdentitiesPerHour");
        IdentitiesPerDay?.Validate(name + ".IdentitiesPerDay");
        // Every identity read is a patient read: an identity level above the patients' would never be reached.
        if (Looser(IdentitiesPerHour, PatientsPerHour) || Looser(IdentitiesPerDay, PatientsPerDay))
            throw new VaubanConfigurationException($"Guard {name}: identity-read levels cannot be above the distinct-patient levels of the same window (leave them out to follow those).");
        if (OutsideCarePerDay.Suspend is null or > 25 && name.StartsWith("default", StringComparison.Ordinal))
            throw new VaubanConfigurationException($"Guard {name}: the default bound of patients outside care relationships is at most 25.");
        if (EverythingWithoutReasonPerHour < 0 || PageDepthWithoutReason < 1) throw new VaubanConfigurationException($"Guard {name}: bulk limits cannot be negative.");
    }

    private static bool Looser(Threshold? identities, Threshold patients) => identities is { } i
        && (i.Slow > patients.Slow || i.StepUp > patients.StepUp || i.Suspend > patients.Suspend);
}

/// <summary>One establishment's overrides (by tenant name).</summary>
public sealed record GuardTenantOptions
{
    public IReadOnlyDictionary<StaffRole, GuardLimits> Roles { get; init; } = new Dictionary<StaffRole, GuardLimits>();
    public GuardLimits? Clients { get; init; }

    /// <summary>This establishment's bulk export thresholds (ExportLimits.cs).</summary>
    public ExportLimits? Export { get; init; }
}

public sealed record GuardOptions
{
    /// <summary>Off only for benchmarks measuring what the guard costs.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Default limits per staff role. Roles not listed use <see cref="People"/>.</summary>
    public IReadOnlyDictionary<StaffRole, GuardLimits> Roles { get; init; } = DefaultRoles;

    /// <summary>People whose role is not listed in <see cref="Roles"/>.</summary>
    public GuardLimits People { get; init; } = Clinicians;

    /// <summary>API clients (their normal volume is stated when they are configured; the default suits an interface reading a few patients at a time).</summary>
    public GuardLimits Clients { get; init; } = new()
    {
        PatientsPerMinute = new(Slow: 15, Suspend: 25),
        PatientsPerHour = new(Slow: 100, Suspend: 200),
        PatientsPerDay = new(Suspend: 1_000),
        OutsideCarePerDay = Threshold.None,
        SearchRecordsPerHour = new(Slow: 5_000, Suspend: 20_000),
    };

    /// <summary>Per-establishment overrides, by tenant name.</summary>
    public IReadOnlyDictionary<string, GuardTenantOptions> Tenants { get; init; } = new Dictionary<string, GuardTenantOptions>(StringComparer.Ordinal);

    /// <summary>The added delay per request at the slow level, growing with each step beyond it.</summary>
    public TimeSpan SlowDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The largest added delay.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A second suspension of the same account within this time locks the account.</summary>
    public TimeSpan LockAfterSecondSuspensionWithin { get; init; } = TimeSpan.FromDays(1);

    /// <summary>
    /// A canary in a search page suspends when the page carries more than this many distinct patients: a
    /// broad or enumerating search. A person's narrow search (the desk finding one person) that meets a canary raises
    /// an alert; opening the canary then locks. An API client has no narrow search: any page with a canary suspends it.
    /// </summary>
    public int CanaryNarrowSearchPatients { get; init; } = 3;

    /// <summary>Bulk $export: the size above which a second person approves, and how long a job lives (ExportLimits.cs).</summary>
    public ExportLimits Export { get; init; } = new();

    /// <summary>Learned baselines and the signals that raise a principal's risk (unusual hours, new source or device,
    /// failed sign-ins before success, enumeration shapes).</summary>
    public GuardSignalOptions Signals { get; init; } = new();

    /// <summary>How often containments, releases and canaries written by other processes (CLI, other servers) are read.</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Clinicians' work is the clinical record of their patients: identities are held tighter than patients (an hour's
    /// and a day's rounds and admissions stay well under them; a harvest of identities does not).
    /// </summary>
    private static GuardLimits Clinicians { get; } = new()
    {
        IdentitiesPerHour = new(Slow: 40, StepUp: 60, Suspend: 80),
        IdentitiesPerDay = new(StepUp: 100, Suspend: 150),
    };

    /// <summary>
    /// The security officer opens no patient's records: what she reads is the audit log, whose entries name patients (opaque
    /// ids, who opened them, which service, why). Looking into one account or one patient reads tens to hundreds of patients'
    /// entries; a stolen officer session must not walk the whole log. Past 500 patients an hour, or 1,500 a day, she proves both
    /// factors again (a cookie thief stops there); beyond 3,000 an hour or 10,000 a day her session is suspended. Her learned peaks
    /// do not tighten these (an incident is a burst). A larger investigation (a breach's scope) runs at the server, where the
    /// operator is not weighed: <c>vauban breach</c>, <c>vauban audit patient</c>. Declared before <see cref="DefaultRoles"/>,
    /// whose initializer reads it.
    /// </summary>
    private static GuardLimits SecurityOfficer { get; } = new()
    {
        PatientsPerMinute = new(Suspend: 1_500),
        PatientsPerHour = new(StepUp: 500, Suspend: 3_000),
        PatientsPerDay = new(StepUp: 1_500, Suspend: 10_000),
        SearchRecordsPerHour = new(Suspend: 100_000),
    };

    /// <summary>Roles that open only related patients, with the defaults above; roles reaching the whole establishment
    /// for identity (admissions, billing) read more patients at the desk and have higher hour and day bounds. Identities:
    /// clinicians are held tighter; roles whose work is identities (the desk, billing, the laboratory matching samples)
    /// follow their patients' levels, and their learned identity peak does the rest.</summary>
    public static IReadOnlyDictionary<StaffRole, GuardLimits> DefaultRoles { get; } = new Dictionary<StaffRole, GuardLimits>
    {
        [StaffRole.Physician] = Clinicians,
        [StaffRole.Nurse] = Clinicians,
        [StaffRole.Biologist] = new() { PatientsPerHour = new(Slow: 60, StepUp: 90, Suspend: 150), PatientsPerDay = new(StepUp: 300, Suspend: 500) },
        [StaffRole.Secretary] = new() { PatientsPerHour = new(Slow: 60, StepUp: 90, Suspend: 150), PatientsPerDay = new(StepUp: 300, Suspend: 500) },
        [StaffRole.Billing] = new() { PatientsPerHour = new(Slow: 60, StepUp: 90, Suspend: 150), PatientsPerDay = new(StepUp: 300, Suspend: 500) },
        [StaffRole.SecurityOfficer] = SecurityOfficer,
    };

    public GuardLimits For(Tenant tenant, Principal principal)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(principal);
        Tenants.TryGetValue(tenant.Name, out var overrides);
        if (principal.Kind == PrincipalKind.ApiClient) return overrides?.Clients ?? Clients;
        if (principal.Role is { } role)
        {
            if (overrides is not null && overrides.Roles.TryGetValue(role, out var mine)) return mine;
            if (Roles.TryGetValue(role, out var limits)) return limits;
        }
        return People;
    }

    private static readonly System.Text.Json.JsonSerializerOptions FileFormat = new()
    {
        PropertyNameCaseInsensitive = true,
        AllowTrailingCommas = true,
        ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    /// <summary>
    /// Reads guard options from JSON (serve --guard-config): any property of this type, e.g.
    /// {"roles": {"Physician": {"patientsPerHour": {"slow": 40, "stepUp": 60, "suspend": 100}}}, "tenants": {"chu-lyon": {"clients": {…}}}}.
    /// Unknown names are refused, so a typo does not silently keep a default. Validated.
    /// </summary>
    /// <summary>A JSON refusal in the operator's terms: where (the setting's path, line and column counted from 1) and what, not
    /// .NET's "could not be mapped to any .NET member contained in type 'Vauban.Guard.GuardLimits'" or a 0-based "LineNumber: 0".</summary>
    private static string Described(System.Text.Json.JsonException e)
    {
        var path = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : e.Path.TrimStart('$', '.');
        var where = e.LineNumber is { } line ? $"line {line + 1}, column {(e.BytePositionInLine ?? 0) + 1}" : "";
        var what = e.Message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal)
            ? $"unknown setting '{path.Split('.')[^1]}'{(path.Contains('.', StringComparison.Ordinal) ? $" in {path[..path.LastIndexOf('.')]}" : "")} (the settings are in docs/adr/0008-guard.md)"
            : Unquoted(e.Message.Split(" Path:", 2)[0].Split(" LineNumber:", 2)[0].TrimEnd());
        return string.Join(": ", new[] { path.Length > 0 && !what.StartsWith("unknown setting", StringComparison.Ordinal) ? path : "", where, what }.Where(p => p.Length > 0));
    }

    /// <summary>The parser's words without the text it quotes from the file ("'tcBT+GZ…' is an invalid JSON literal"): a key or a
    /// password file named by mistake would be printed on stderr, a service's journal.</summary>
    private static string Unquoted(string message) =>
        System.Text.RegularExpressions.Regex.Match(message, "^'.*' (is (an )?invalid .*)$", System.Text.RegularExpressions.RegexOptions.Singleline) is { Success: true } quoted
            ? "what is written there " + quoted.Groups[1].Value
            : message;

    public static GuardOptions FromJson(string json)
    {
        GuardOptions? options;
        try
        {
            options = System.Text.Json.JsonSerializer.Deserialize<GuardOptions>(json, FileFormat);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new VaubanConfigurationException($"The guard configuration is not valid: {Described(e)}", e);
        }
        if (options is null) throw new VaubanConfigurationException("The guard configuration is empty.");
        // Invariant 5 holds in every deployment: a file may move the bounds, never switch the guard off (that switch is for
        // the in-process benchmark measuring what the guard costs).
        if (!options.Enabled) throw new VaubanConfigurationException("The guard configuration cannot turn the guard off (\"enabled\": false); raise the limits that are too low instead.");
        // Roles not named in the file keep their defaults.
        if (!ReferenceEquals(options.Roles, DefaultRoles))
        {
            var roles = new Dictionary<StaffRole, GuardLimits>(DefaultRoles);
            foreach (var (role, limits) in options.Roles) roles[role] = limits;
            options = options with { Roles = roles };
        }
        options.Validate();
        return options;
    }

    public void Validate()
    {
        People.Validate("default people");
        Clients.Validate("clients");
        foreach (var (role, limits) in Roles) limits.Validate("default " + AccessPolicy.RoleName(role));
        foreach (var (tenant, options) in Tenants)
        {
            foreach (var (role, limits) in options.Roles) limits.Validate($"{tenant} {AccessPolicy.RoleName(role)}");
            options.Clients?.Validate(tenant + " clients");
        }
        if (SlowDelay < TimeSpan.Zero || MaxDelay < SlowDelay) throw new VaubanConfigurationException("Guard delays: 0 ≤ slow delay ≤ max delay.");
        if (LockAfterSecondSuspensionWithin < TimeSpan.Zero) throw new VaubanConfigurationException("Guard: the lock window cannot be negative.");
        if (CanaryNarrowSearchPatients < 0) throw new VaubanConfigurationException("Guard: the narrow-search size cannot be negative.");
        if (RefreshInterval <= TimeSpan.Zero) throw new VaubanConfigurationException("Guard: the refresh interval is positive.");
        Export.Validate("export");
        foreach (var (tenant, options) in Tenants) options.Export?.Validate(tenant + " export");
        Signals.Validate();
    }
}

/// <summary>
/// What the guard learns and which signals raise a principal's risk. Each signal adds its weight for
/// <see cref="SignalLifetime"/>; at <see cref="ElevatedRisk"/> the distinct-patients-an-hour levels are scaled by
/// <see cref="ElevatedScale"/>, at <see cref="HighRisk"/> the patients opened since the risk began meet
/// <see cref="AtRiskPatients"/> (default: step-up at 10, suspension beyond 25).
/// </summary>
public sealed record GuardSignalOptions
{
    /// <summary>Active days before a principal's own baseline (volumes, hours, sources, devices) is trusted; before, the role's, then the configured limits.</summary>
    public int LearningDays { get; init; } = 3;

    /// <summary>Account-days of the role learned before the role's baseline stands in for a new account.</summary>
    public int RoleLearningDays { get; init; } = 5;

    public int ElevatedRisk { get; init; } = 1;
    public int HighRisk { get; init; } = 2;

    /// <summary>At elevated risk, the distinct-patients-an-hour levels are multiplied by this.</summary>
    public double ElevatedScale { get; init; } = 0.5;

    /// <summary>At high risk: distinct patients opened since the risk began.</summary>
    public Threshold AtRiskPatients { get; init; } = new(StepUp: 10, Suspend: 25);

    /// <summary>How long a signal weighs on the principal (a session's absolute lifetime).</summary>
    public TimeSpan SignalLifetime { get; init; } = TimeSpan.FromHours(12);

    /// <summary>Weights: a source network the account has not used (but the establishment has); one the establishment has never seen.</summary>
    public int NewSourceWeight { get; init; } = 1;
    public int NewSourceForEstablishmentWeight { get; init; } = 2;

    /// <summary>Weight of a device class (browser and system, or client library) the principal has not used.</summary>
    public int NewDeviceWeight { get; init; } = 1;

    /// <summary>Weight of reading at an hour of the day (on Paris's clocks) the principal does not work.</summary>
    public int UnusualHourWeight { get; init; } = 1;

    /// <summary>An hour is unusual when it and its two neighbours carry less than this share of the learned activity.</summary>
    public double UnusualHourShare { get; init; } = 0.02;

    /// <summary>Failed sign-ins of the account before a success that count as a signal, and its weight.</summary>
    public int FailedSignInsBeforeSuccess { get; init; } = 3;
    public int FailedSignInsWeight { get; init; } = 1;

    /// <summary>Weight of an enumeration shape: consecutive ids, a name-prefix sweep, a birth-date sweep.</summary>
    public int EnumerationWeight { get; init; } = 2;

    /// <summary>Patients read one after another with consecutive numeric ids (same prefix, steps of 1–3) that make a run.</summary>
    public int ConsecutiveIdRun { get; init; } = 5;

    /// <summary>Successive searches stepping family-name prefixes (dup → duq → dur) or birth dates (within a month, one direction) that make a sweep.</summary>
    public int SweepSteps { get; init; } = 3;

    /// <summary>API clients: suspended beyond their learned peak volume (hour, day) plus this many patients.</summary>
    public int ClientMargin { get; init; } = 25;

    /// <summary>People: step-up beyond max(peak × StepUpFactor, peak + StepUpMargin), suspension beyond max(peak × SuspendFactor, peak + SuspendMargin), within the configured levels.</summary>
    public double PersonStepUpFactor { get; init; } = 1.5;
    public int PersonStepUpMargin { get; init; } = 25;
    public double PersonSuspendFactor { get; init; } = 2.0;
    public int PersonSuspendMargin { get; init; } = 50;

    /// <summary>A day's peak folds into the baseline at most this many times the learned peak (plus 10): a slow ramp cannot teach the guard a breach in a day.</summary>
    public double MaxDailyGrowth { get; init; } = 1.5;

    /// <summary>How often learned baselines are written (in one batch, in the background).</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromMinutes(1);

    internal void Validate()
    {
        AtRiskPatients.Validate("signals.AtRiskPatients");
        if (LearningDays < 1 || RoleLearningDays < 1) throw new VaubanConfigurationException("Guard signals: learning takes at least one day.");
        if (ElevatedRisk < 1 || HighRisk < ElevatedRisk) throw new VaubanConfigurationException("Guard signals: 1 ≤ elevated risk ≤ high risk.");
        if (ElevatedScale is <= 0 or > 1) throw new VaubanConfigurationException("Guard signals: the elevated scale is in (0, 1].");
        if (AtRiskPatients.Suspend is null or > 25) throw new VaubanConfigurationException("Guard signals: at high risk the bound of patients is at most 25.");
        if (new[] { NewSourceWeight, NewSourceForEstablishmentWeight, NewDeviceWeight, UnusualHourWeight, FailedSignInsWeight, EnumerationWeight }.Any(w => w < 0))
            throw new VaubanConfigurationException("Guard signals: weights cannot be negative.");
        if (UnusualHourShare is < 0 or >= 1) throw new VaubanConfigurationException("Guard signals: the unusual-hour share is in [0, 1).");
        if (FailedSignInsBeforeSuccess < 1 || ConsecutiveIdRun < 3 || SweepSteps < 2) throw new VaubanConfigurationException("Guard signals: runs and counts are too small to mean anything.");
        if (ClientMargin < 0 || PersonStepUpMargin < 0 || PersonSuspendMargin < PersonStepUpMargin || PersonStepUpFactor < 1 || PersonSuspendFactor < PersonStepUpFactor)
            throw new VaubanConfigurationException("Guard signals: baseline margins rise (step-up ≤ suspension) and factors are at least 1.");
        if (MaxDailyGrowth < 1) throw new VaubanConfigurationException("Guard signals: the daily growth factor is at least 1.");
        if (SignalLifetime <= TimeSpan.Zero || FlushInterval <= TimeSpan.Zero) throw new VaubanConfigurationException("Guard signals: lifetimes and intervals are positive.");
    }
}
