using System.Text.Json;
using Npgsql;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

/// <summary>PostgreSQL's planner on a grown chain. A tenant analyzed while its chain was small had its lookups built — and
/// its unindexed tail searched — through the (tenant, at) index, filtering every entry of the tenant: the build refreshes
/// the statistics first when they are that stale. A date window ending in the past was searched by walking the chain back
/// from its newest entry: with many entries after the window, the search reads the date index instead.</summary>
public sealed class AuditStatisticsTests
{
    private const int Entries = 60_000;

    [Fact]
    public async Task A_tenant_grown_past_the_planners_statistics_has_them_refreshed_before_its_lookups_are_built()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Postgres);
        var tenant = await server.Store.Tenants.AddAsync("clinique-statistiques", CancellationToken.None);
        var trail = server.Store.Audit;
        await using var raw = new NpgsqlConnection(server.Db);
        await raw.OpenAsync();
        // Autoanalyze off for the table: what the test sees is the trail's doing, not the daemon's timing.
        await ExecuteAsync(raw, "ALTER TABLE audit_entries SET (autovacuum_enabled = off)");
        try
        {
            await ExecuteAsync(raw, "ANALYZE audit_entries"); // the statistics know this tenant with no entry
            var reader = AccessContext.Operator(tenant, "statistics test");
            async Task AppendAsync(int count)
            {
                for (var written = 0; written < count; written += 5_000)
                {
                    await using var scope = await server.Store.Database.BeginWriteAsync(CancellationToken.None);
                    for (var i = 0; i < 5_000; i++)
                    {
                        var patient = "pat-" + ((written + i) % 997).ToString("D4", System.Globalization.CultureInfo.InvariantCulture);
                        await trail.AppendAsync(scope, reader, AuditAction.Read, AuditOutcome.Success, "Patient", [new AuditedRecord("Patient", patient, patient)], CancellationToken.None);
                    }
                    await scope.CommitAsync(CancellationToken.None);
                }
            }
            await AppendAsync(Entries);
            Assert.True(await EstimateAsync(raw, tenant.Id) < Entries / 2, "the statistics were stale to begin with");
            var refreshed = trail.StatisticsRefreshed;

            await using (var builder = await server.Store.Database.OpenAsync(CancellationToken.None))
            {
                Assert.True(await trail.BuildLookupsAsync(builder, tenant.Id, CancellationToken.None));
            }

            Assert.Equal(refreshed + 1, trail.StatisticsRefreshed);
            Assert.True(await EstimateAsync(raw, tenant.Id) >= Entries / 2, "the statistics know the tenant's entries");
            // The unindexed tail of a search is read on the primary key, not by filtering the tenant's every entry.
            using (var plan = new NpgsqlCommand($"EXPLAIN SELECT seq FROM audit_entries WHERE tenant_id = {tenant.Id} AND seq > {Entries - 100} AND patient_ix = 1", raw))
            {
                var text = string.Join("\n", await ReadAllAsync(plan));
                Assert.Contains("audit_entries_pkey", text, StringComparison.Ordinal);
            }

            // Not again at the next build (less than a quarter of growth since), nor a quarter further on: with the tenant's
            // share of the table known, PostgreSQL scales the estimate by the table's pages and it follows the chain.
            await using (var builder = await server.Store.Database.OpenAsync(CancellationToken.None))
            {
                Assert.True(await trail.BuildLookupsAsync(builder, tenant.Id, CancellationToken.None));
            }
            Assert.Equal(refreshed + 1, trail.StatisticsRefreshed);
            await AppendAsync(20_000);
            await using (var builder = await server.Store.Database.OpenAsync(CancellationToken.None))
            {
                Assert.True(await trail.BuildLookupsAsync(builder, tenant.Id, CancellationToken.None));
            }
            Assert.Equal(refreshed + 1, trail.StatisticsRefreshed);
        }
        finally
        {
            await ExecuteAsync(raw, "ALTER TABLE audit_entries RESET (autovacuum_enabled)");
        }
    }

    [Fact]
    public async Task A_date_window_with_many_entries_after_it_finds_exactly_its_entries_newest_first()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Postgres);
        // From before the establishment is made: the entry its chain begins with is in the window too, the oldest.
        var from = DateTimeOffset.UtcNow.AddSeconds(-1);
        var tenant = await server.Store.Tenants.AddAsync("clinique-fenetre", CancellationToken.None);
        var trail = server.Store.Audit;
        var reader = AccessContext.Operator(tenant, "date window test");
        async Task AppendAsync(int count, string prefix)
        {
            await using var scope = await server.Store.Database.BeginWriteAsync(CancellationToken.None);
            for (var i = 0; i < count; i++)
            {
                await trail.AppendAsync(scope, reader, AuditAction.Read, AuditOutcome.Success, "Patient", [new AuditedRecord("Patient", $"{prefix}-{i}", $"{prefix}-{i}")], CancellationToken.None);
            }
            await scope.CommitAsync(CancellationToken.None);
        }
        await AppendAsync(12, "in-window");
        await Task.Delay(20);
        var to = DateTimeOffset.UtcNow;
        await Task.Delay(20);
        // More entries after the window than the primary key's walk back may pass over: the search reads the date index.
        await AppendAsync(AuditLog.WalkBack + 500, "after");

        var found = await server.Store.AuditLog.SearchAsync(reader, new AuditQuery { From = from, To = to, Count = 10 }, CancellationToken.None);

        Assert.NotNull(found);
        Assert.Equal(Enumerable.Range(2, 10).Reverse().Select(i => $"in-window-{i}"), found.Select(e => e.Detail.Patient));
        Assert.True(found.Zip(found.Skip(1)).All(p => p.First.Sequence > p.Second.Sequence), "newest first");
        var page = await server.Store.AuditLog.SearchAsync(reader, new AuditQuery { From = from, To = to, Count = 10, BeforeSequence = found[^1].Sequence }, CancellationToken.None);
        Assert.NotNull(page);
        Assert.Equal(3, page.Count);
        Assert.Equal(["in-window-1", "in-window-0"], page.Take(2).Select(e => e.Detail.Patient));
        Assert.Equal((1L, AuditAction.SecurityRecords), (page[2].Sequence, page[2].Action));
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<double> EstimateAsync(NpgsqlConnection connection, long tenantId)
    {
        using var command = new NpgsqlCommand($"EXPLAIN (FORMAT JSON) SELECT 1 FROM audit_entries WHERE tenant_id = {tenantId}", connection);
        using var plan = JsonDocument.Parse((string)(await command.ExecuteScalarAsync())!);
        return plan.RootElement[0].GetProperty("Plan").GetProperty("Plan Rows").GetDouble();
    }

    private static async Task<List<string>> ReadAllAsync(NpgsqlCommand command)
    {
        var lines = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) lines.Add(reader.GetString(0));
        return lines;
    }
}
