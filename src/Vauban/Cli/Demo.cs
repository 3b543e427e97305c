// serve --demo: on first start, in a new store only, a demo establishment with synthetic patients and one
// staff account per role (the physician acts as a seeded Practitioner, in the hospital's Organization); on
// every start, a fresh demo API client whose secret is printed (secrets are stored hashed and cannot be
// shown twice) in place of the previous one, revoked, and a fresh enrolment link for each demo account
// not yet enrolled.
using Spectre.Console;
using Vauban.Access;
using Vauban.Records.Synthetic;

namespace Vauban.Cli;

public static class Demo
{
    public const string TenantName = "demo";
    private const int Patients = 500;
    private const int RandomSeed = 2026;
    private const string ClientNamePrefix = "demo client ";

    /// <summary>The demo's set-up acts (establishment, staff accounts, each start's client) are administrative acts on its audit chain.</summary>
    private static AccessContext Setup(Tenant tenant) => AccessContext.Operator(tenant, "demo set-up");

    public static async Task EnsureAsync(VaubanStore store, string urls, Vauban.Web.ServerCertificate? tls, CancellationToken cancellationToken)
    {
        // A --demo left in a service file (the README's first command) put 500 synthetic patients, with canaries, and a
        // full-access client into a store in use, and another client at every restart: refused while the store holds any
        // establishment but the demo's (also one added to the demo's store later).
        if ((await store.Tenants.ListAsync(cancellationToken)).Select(t => t.Name).Where(n => n != TenantName).Order(StringComparer.Ordinal).ToList() is { Count: > 0 } existing)
        {
            throw new ArgumentException($"--demo: this store already holds {(existing.Count == 1 ? "the establishment" : "the establishments")} {string.Join(", ", existing.Select(n => $"'{n}'"))}; "
                + "the demo is made only in a new store (give --db another path), never beside real establishments.");
        }
        var tenant = await store.Tenants.FindAsync(TenantName, cancellationToken);
        if (tenant is null)
        {
            tenant = await store.Tenants.AddAsync(TenantName, Setup, cancellationToken);
            // One day for the records and the staff's practitioners: the generator's ids follow from it.
            var day = ParisTime.DateOf(store.Time.GetUtcNow());
            var seeded = await SeedCommand.SeedAsync(store, tenant, Patients, RandomSeed, day, showProgress: false, cancellationToken, GuardCommands.CanariesFor(Patients));
            AnsiConsole.MarkupLineInterpolated($"Demo establishment '{TenantName}' created with {Patients} synthetic patients ({Counted.En(seeded.Resources, "resource", "resources")}), {GuardCommands.CanariesFor(Patients)} of them canaries.");
            await AddStaffAsync(store, tenant, day, cancellationToken);
        }
        // The previous start's client is revoked: one live full-access demo secret at a time, not one more in the log at each restart.
        foreach (var previous in (await store.Clients.ListAsync(tenant, cancellationToken)).Where(c => !c.Revoked && c.Name.StartsWith(ClientNamePrefix, StringComparison.Ordinal)))
        {
            await store.Clients.RevokeAsync(Setup(tenant), previous.ClientId, cancellationToken);
        }
        var client = await store.Clients.AddAsync(Setup(tenant), $"{ClientNamePrefix}{store.Time.GetUtcNow():yyyy-MM-dd HH:mm:ss}", "system/*.cruds", null, ClientLimits.None, cancellationToken);
        // An https:// address first: with a certificate, plain http:// answers /healthz alone.
        var addresses = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var baseUrl = (addresses.FirstOrDefault(address => address.StartsWith("https://", StringComparison.OrdinalIgnoreCase)) ?? addresses.FirstOrDefault() ?? "").TrimEnd('/');
        var curl = CurlTarget.For(baseUrl, tls);
        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine("[bold]Demo API credentials[/] (a new client each start, the previous one revoked; all data is synthetic):");
        Console.WriteLine($"  client_id:     {client.ClientId}");
        Console.WriteLine($"  client_secret: {client.ClientSecret}");
        Console.WriteLine("  Try:");
        if (curl.Note is not null) Console.WriteLine($"  {curl.Note}");
        Console.WriteLine($"  TOKEN=$(curl -s{curl.Options} -u {client.ClientId}:{client.ClientSecret} -d grant_type=client_credentials {curl.BaseUrl}/oauth/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')");
        Console.WriteLine($"  curl{curl.Options} -H \"Authorization: Bearer $TOKEN\" '{curl.BaseUrl}/fhir/Patient?_count=5'");
        await PrintEnrolmentLinksAsync(store, tenant, baseUrl.Replace("127.0.0.1", "localhost", StringComparison.Ordinal), cancellationToken);
        AnsiConsole.WriteLine();
    }

    private static async Task AddStaffAsync(VaubanStore store, Tenant tenant, DateOnly seededAsOf, CancellationToken cancellationToken)
    {
        var establishment = new SyntheticHospital(RandomSeed, seededAsOf).Establishment();
        var hospital = establishment.First(r => r.ResourceType == "Organization").Id;
        var practitioners = establishment.Where(r => r.ResourceType == "Practitioner").Select(r => r.Id).ToList();
        var accounts = new (string Email, StaffRole Role, string Name, string? Practitioner)[]
        {
            ("physician@demo.invalid", StaffRole.Physician, "Dr Demo Physician", practitioners[0]),
            ("nurse@demo.invalid", StaffRole.Nurse, "Demo Nurse", null),
            ("secretary@demo.invalid", StaffRole.Secretary, "Demo Secretary", null),
            ("biologist@demo.invalid", StaffRole.Biologist, "Demo Biologist", practitioners[1]),
            ("billing@demo.invalid", StaffRole.Billing, "Demo Billing", null),
            ("officer@demo.invalid", StaffRole.SecurityOfficer, "Demo Security Officer", null),
            ("admin@demo.invalid", StaffRole.Administrator, "Demo Administrator", null),
        };
        foreach (var (email, role, name, practitioner) in accounts)
        {
            await store.Accounts.AddAsync(Setup(tenant), email, role, practitioner, hospital, name, cancellationToken);
        }
    }

    private static async Task PrintEnrolmentLinksAsync(VaubanStore store, Tenant tenant, string baseUrl, CancellationToken cancellationToken)
    {
        var pending = (await store.Accounts.ListAsync(tenant, cancellationToken)).Where(a => !a.Enrolled).ToList();
        if (pending.Count == 0) return;
        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine($"[bold]Demo staff accounts[/] (establishment '{TenantName}'): open a link in a browser to set a password and a passkey or TOTP:");
        foreach (var account in pending)
        {
            var user = await store.Accounts.FindByIdAsync(account.Id, cancellationToken);
            if (user is null) continue;
            var link = await store.Accounts.ReissueEnrolmentLinkAsync(Setup(tenant), user, cancellationToken);
            Console.WriteLine($"  {account.Role,-16} {account.Email,-26} {UserCommands.EnrolmentUrl(link, baseUrl)}");
        }
    }
}
