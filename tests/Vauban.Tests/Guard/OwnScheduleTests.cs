// The guard's own-schedule rule (ADR 0008) on the nights Paris's clocks change: yesterday's and the seventh day ahead's whole
// days on Paris's clocks are a physician's own day's list whenever she asks, the 25-hour day in October included, and the
// day before yesterday and the eighth day ahead never are.
using System.Globalization;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Guard;

public abstract class OwnScheduleTests(Engine engine)
{
    private const int Booked = 30; // beyond the 25 distinct patients in a minute that suspend a physician
    private static readonly CancellationToken None = CancellationToken.None;

    [Theory]
    // In 2026 the clocks go back at 03:00 on Sunday 25 October (01:00 UTC): that day has 25 hours.
    [InlineData("2026-10-25T22:30:00Z", "2026-10-24", true)]  // 23:30 on the 25-hour day: yesterday, 48 h 30 min before
    [InlineData("2026-10-26T22:30:00Z", "2026-10-25", true)]  // 23:30 the day after: yesterday is the 25-hour day
    [InlineData("2026-10-17T22:30:00Z", "2026-10-25", true)]  // 00:30 on 18 October: the seventh day ahead, 192 h 30 min away
    [InlineData("2026-10-24T22:30:00Z", "2026-11-01", true)]  // 00:30 on the 25-hour day itself: its seventh day ahead
    [InlineData("2026-10-25T22:30:00Z", "2026-10-23", false)] // the day before yesterday
    [InlineData("2026-10-17T22:30:00Z", "2026-10-26", false)] // the eighth day ahead
    // The clocks go forward at 02:00 on Sunday 29 March 2026: that day has 23 hours.
    [InlineData("2026-03-29T22:30:00Z", "2026-03-28", false)] // 00:30 the day after: the day before yesterday, 47 h 30 min before
    [InlineData("2026-03-29T22:30:00Z", "2026-03-29", true)]  // and yesterday, the 23-hour day
    public async Task Her_busy_day_is_her_own_days_list_from_yesterday_to_the_seventh_day_ahead_on_Paris_clocks_whatever_the_hour(
        string now, string day, bool ownList)
    {
        var time = new ManualTime(DateTimeOffset.Parse(now, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal));
        await using var server = await VaubanServer.StartAsync(engine, configure: o => o with { Time = time, Guard = new GuardOptions { SlowDelay = TimeSpan.Zero } });
        var tenant = await server.Store.Tenants.AddAsync("hopital-agenda", None);
        var drA = await server.CreateAsOperatorAsync(tenant, Samples.Practitioner("Alpha", "10000000001"));
        var listed = DateOnly.ParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture);
        var encounter = time.GetUtcNow().AddDays(-3).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        for (var i = 0; i < Booked; i++)
        {
            // Her own patients (seen three days ago): only the minute's count is left out for a day's list, not the outside-care one.
            var patient = await server.CreateAsOperatorAsync(tenant, Samples.Patient(family: "Mine", given: "M" + i));
            await server.CreateAsOperatorAsync(tenant, Samples.Encounter(patient, drA, encounter));
            await server.CreateAsOperatorAsync(tenant, Samples.Appointment("Patient/" + patient, "Practitioner/" + drA,
                listed.ToDateTime(new TimeOnly(9, 0)).AddMinutes(i * 10).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        }
        var context = new AccessContext(new Principal(PrincipalKind.Person, "user:drA", "Dr Alpha", StaffUser.PersonScopes)
        {
            Role = StaffRole.Physician,
            Practitioner = drA,
            SessionId = "s-1",
            AuthenticatedAt = time.GetUtcNow().AddHours(-1),
        }, tenant, "TREAT");

        // Her agenda's question: her appointments from the day's midnight to the next's, on Paris's clocks.
        var page = await server.Store.Records.SearchAsync(context, "Appointment",
            [
                new("practitioner", "Practitioner/" + drA), new("date", "ge" + day),
                new("date", "lt" + listed.AddDays(1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), new("_count", "100"),
            ], null, false, None);

        if (ownList)
        {
            Assert.Equal(RecordStatus.Ok, page.Status);
            Assert.Equal(Booked, page.Entries.Count);
            Assert.Empty(await server.Store.Guard.ContainmentsAsync(tenant.Id, None));
        }
        else
        {
            Assert.Equal(RecordStatus.Locked, page.Status);
            Assert.Contains("distinct patients in a minute", (await server.Store.Guard.ContainmentsAsync(tenant.Id, None)).Single().Reason, StringComparison.Ordinal);
        }
    }
}

public sealed class OwnScheduleTests_Sqlite() : OwnScheduleTests(Engine.Sqlite);

public sealed class OwnScheduleTests_Postgres() : OwnScheduleTests(Engine.Postgres);
