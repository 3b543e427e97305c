// How SQLite runs a search: the selective clause drives, the other index clauses are probed on each candidate's row id,
// and only a candidate that passes them has its resource row read. At a million patients, reading the row of every
// patient born on the searched day before probing the name prefix was most of a search's cost (bench/README.md).
using Microsoft.Data.Sqlite;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records.Search;
using Vauban.Storage;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public sealed class SearchPlanTests : IAsyncLifetime
{
    private VaubanServer _server = null!;

    public async Task InitializeAsync() => _server = await VaubanServer.StartAsync(Engine.Sqlite);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<List<string>> PlanAsync(string type, params (string Name, string Value)[] parameters)
    {
        using var keys = new TenantKeys(1, 1, new byte[32], new byte[32]);
        var issues = new List<Issue>();
        var query = SearchQuery.Parse(type, parameters.Select(p => new KeyValuePair<string, string>(p.Name, p.Value)), keys, lenient: false, issues, ParisTime.DateOf(ManualTime.RealNow));
        Assert.True(query is not null, string.Join("; ", issues.Select(i => i.Diagnostics)));
        await using var connection = (SqliteConnection)await _server.Store.Database.OpenAsync(CancellationToken.None);
        using var command = connection.CreateCommand();
        SearchSql.Build(command, StorageEngine.Sqlite, query, 1, null, countOnly: false, allowed: null);
        command.CommandText = "EXPLAIN QUERY PLAN " + command.CommandText;
        var plan = new List<string>();
        using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) plan.Add(reader.GetString(3));
        return plan;
    }

    [Theory]
    [InlineData("Patient", "birthdate", "1980-03-12", "family", "Mar")]
    [InlineData("Patient", "birthdate", "1980-03-12", "general-practitioner", "Practitioner/pr-1")]
    [InlineData("Encounter", "patient", "Patient/p-1", "date", "ge2026-01-01")]
    public async Task Index_clauses_are_probed_before_the_candidates_resource_row_is_read(string type, string driving, string drivingValue, string probed, string probedValue)
    {
        var plan = await PlanAsync(type, (driving, drivingValue), (probed, probedValue));
        var probe = plan.FindIndex(line => line.StartsWith("CORRELATED SCALAR SUBQUERY", StringComparison.Ordinal));
        var row = plan.FindIndex(line => line.StartsWith("SEARCH r USING INTEGER PRIMARY KEY", StringComparison.Ordinal));
        Assert.True(probe >= 0 && row >= 0 && probe < row, "plan:\n" + string.Join('\n', plan));
    }
}
