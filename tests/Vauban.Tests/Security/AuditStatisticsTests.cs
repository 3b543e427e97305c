using System.Text.Json;
using Npgsql;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

/// <summary>PostgreSQL only: a tenant whose chain grew far past the planner's statistics (lost in a crash, or grown faster
/// than autoanalyze follows) had its lookups built — and its unindexed tail searched — through the (tenant, at) index,
/// filtering every entry of the tenant. The build refreshes the statistics first when they are that stale.</summary>
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
