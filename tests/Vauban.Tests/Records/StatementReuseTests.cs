// A read or a search on SQLite is parsed and planned once per read connection, then only bound and run again. SQLite
// re-prepares a statement whose plan used the value of a bound parameter each time that parameter is bound again: a
// bound LIMIT did that, and every search spent more time in SQLite's parser and planner than in its query.
using System.Net;
using System.Runtime.InteropServices;
using Vauban.Storage;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public sealed class StatementReuseTests : IAsyncLifetime
{
    private const int ReprepareCounter = 5; // SQLITE_STMTSTATUS_REPREPARE
    private VaubanServer _server = null!;

    public async Task InitializeAsync() => _server = await VaubanServer.StartAsync(Engine.Sqlite);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [DllImport("e_sqlite3")]
    private static extern IntPtr sqlite3_next_stmt(IntPtr db, IntPtr statement);

    [DllImport("e_sqlite3")]
    private static extern int sqlite3_stmt_status(IntPtr statement, int counter, int reset);

    [DllImport("e_sqlite3")]
    private static extern IntPtr sqlite3_sql(IntPtr statement);

    [Fact]
    public async Task Repeated_reads_and_searches_run_their_prepared_statements_without_preparing_them_again()
    {
        using var api = await _server.ClientAsync("hospital-a");
        var ids = new List<string>();
        foreach (var (family, birthDate) in new[] { ("Martin", "1980-03-12"), ("Marchand", "1980-03-12"), ("Bernard", "1975-11-02"), ("Berger", "1962-06-30") })
        {
            using var created = await api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: family, birthDate: birthDate)));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            ids.Add((await created.BodyAsync()).GetProperty("id").GetString()!);
        }
        // Each shape several times with other values, as a clinic's searches come: the page size, the names and dates change.
        for (var round = 0; round < 4; round++)
        {
            foreach (var query in new[]
                     {
                         $"Patient/{ids[round]}",
                         $"Patient?family={(round % 2 == 0 ? "Mar" : "Ber")}&birthdate={(round % 2 == 0 ? "1980-03-12" : "1975-11-02")}",
                         $"Patient?family=B&_count={round + 1}",
                         $"Patient?_lastUpdated=ge20{20 + round}-01-01&_sort=-_lastUpdated&_count={2 + round}",
                         $"Patient?_summary=count&family={(round % 2 == 0 ? "Mart" : "Berg")}",
                     })
            {
                using var response = await api.GetAsync("/fhir/" + query);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{query}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        }

        var database = Assert.IsType<SqliteDatabase>(_server.Store.Database);
        var statements = 0;
        var reprepared = new List<string>();
        foreach (var connection in database.IdleReadConnections())
        {
            var db = connection.Handle!.DangerousGetHandle();
            for (var statement = sqlite3_next_stmt(db, IntPtr.Zero); statement != IntPtr.Zero; statement = sqlite3_next_stmt(db, statement))
            {
                statements++;
                if (sqlite3_stmt_status(statement, ReprepareCounter, 0) is var count and > 0) reprepared.Add($"{count}× {Marshal.PtrToStringUTF8(sqlite3_sql(statement))}");
            }
        }
        Assert.True(statements >= 4, $"only {statements} statements kept prepared on the idle read connections");
        Assert.True(reprepared.Count == 0, "re-prepared on execution:\n" + string.Join('\n', reprepared));
    }
}
