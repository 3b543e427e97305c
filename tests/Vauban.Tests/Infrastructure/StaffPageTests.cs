// What the clinician pages' tests share: a server on one engine with a clock the test moves, one establishment, the records its
// set-up created by name, and staff enrolled (password and authenticator) then signed in over HTTP.
using System.Globalization;
using Vauban.Access;

namespace Vauban.Tests.Infrastructure;

public abstract class StaffPageTests(Engine engine, string establishment) : IAsyncLifetime
{
    protected const string Password = "harbour violet across 9 bridges";

    protected string Establishment { get; } = establishment;

    protected ManualTime Time { get; } = ManualTime.AwayFromParisMidnight();

    protected VaubanServer Server { get; private set; } = null!;

    protected Tenant Tenant { get; private set; } = null!;

    /// <summary>The ids of the records the set-up created, by the name it gave them.</summary>
    protected Dictionary<string, string> Ids { get; } = [];

    /// <summary>Each enrolled person's authenticator secret, by e-mail.</summary>
    protected Dictionary<string, string> Secrets { get; } = [];

    public async Task InitializeAsync()
    {
        Server = await VaubanServer.StartAsync(engine, configure: o => o with { Time = Time });
        Tenant = await Server.Store.Tenants.AddAsync(Establishment, CancellationToken.None);
        await SetUpAsync();
    }

    /// <summary>The establishment's records and staff, for the class's tests.</summary>
    protected abstract Task SetUpAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>Creates a record as the operator and keeps its id under <paramref name="name"/>.</summary>
    protected async Task CreateAsync(string name, string json) => Ids[name] = await Server.CreateAsOperatorAsync(Tenant, json);

    protected async Task EnrolAsync(string email, StaffRole role, string? practitioner) =>
        Secrets[email] = await StaffClient.EnrolledAsync(Server, Tenant, email, role, practitioner, Password, Time);

    /// <summary>The Paris day <paramref name="days"/> from the test's now.</summary>
    protected DateOnly ParisDay(int days) => ParisTime.DateOf(Time.GetUtcNow().AddDays(days));

    /// <summary>The instant at <paramref name="hour"/>:<paramref name="minute"/> (Paris) on <paramref name="day"/>, in UTC as FHIR writes it.</summary>
    protected static string At(DateOnly day, int hour, int minute = 0) =>
        ParisTime.At(day, new TimeOnly(hour, minute))!.Value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    protected Task<StaffClient> SignedInAsync(string email) => StaffClient.SignedInAsync(Server.BaseAddress, Establishment, email, Password, Secrets[email], Time);
}
