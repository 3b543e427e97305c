// PostgreSQL runs writers side by side: a record filed under a patient while that patient is deleted must not be left
// behind the delete. The record's write key-share locks the patient row; the delete's FOR UPDATE conflicts with it, so one
// waits for the other and then sees what it did. (SQLite serialises writers: the checks alone suffice there.)
using System.Net;
using Npgsql;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Records;

public sealed class PatientDeleteRaceTests : IAsyncLifetime
{
    private VaubanServer _server = null!;
    private HttpClient _api = null!;

    public async Task InitializeAsync()
    {
        _server = await VaubanServer.StartAsync(Engine.Postgres);
        _api = await _server.ClientAsync("hospital-race");
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
    }

    private async Task<string> NewPatientAsync(string family)
    {
        using var created = await _api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: family)));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await created.BodyAsync()).GetProperty("id").GetString()!;
    }

    /// <summary>A transaction of its own that holds the patient's row as a delete in progress does (FOR UPDATE).</summary>
    private async Task<(NpgsqlConnection, NpgsqlTransaction)> HoldAsync(string patient)
    {
        var connection = new NpgsqlConnection(_server.Db);
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var hold = new NpgsqlCommand("SELECT 1 FROM resources WHERE type = 1 AND id = @p FOR UPDATE", connection, transaction);
        hold.Parameters.AddWithValue("p", patient);
        Assert.Equal(1, await hold.ExecuteScalarAsync());
        return (connection, transaction);
    }

    /// <summary>A record posted under <paramref name="patient"/> while its row is held: it must wait for the holder (before the
    /// lock, it read the patient alive and committed a record the delete did not see).</summary>
    private async Task<Task<HttpResponseMessage>> PostWaitingAsync(string patient)
    {
        var post = _api.PostAsync("/fhir/Observation", FhirContent.Json(Samples.Observation($"Patient/{patient}")));
        Assert.NotSame(post, await Task.WhenAny(post, Task.Delay(TimeSpan.FromSeconds(1))));
        return post;
    }

    [Fact]
    public async Task A_record_filed_while_its_patient_is_being_deleted_waits_and_is_refused_once_the_delete_commits()
    {
        var patient = await NewPatientAsync("Course");
        var (connection, transaction) = await HoldAsync(patient);
        await using (connection)
        {
            var post = await PostWaitingAsync(patient);
            // The delete's change of the row, as far as the record's check reads it; then its commit.
            await using (var delete = new NpgsqlCommand("UPDATE resources SET deleted = 1 WHERE type = 1 AND id = @p", connection, transaction))
            {
                delete.Parameters.AddWithValue("p", patient);
                Assert.Equal(1, await delete.ExecuteNonQueryAsync());
            }
            await transaction.CommitAsync();
            using var refused = await post;
            var body = await refused.BodyAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)refused.StatusCode} {body}");
            Assert.Contains($"names Patient/{patient}, which was deleted", body.GetProperty("issue")[0].GetProperty("diagnostics").GetString(), StringComparison.Ordinal);
        }
        using var search = await _api.GetAsync($"/fhir/Observation?subject=Patient/{patient}&_summary=count");
        Assert.Equal(0, (await search.BodyAsync()).GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task A_record_filed_while_its_patient_is_changed_waits_for_the_change_and_is_filed_when_the_patient_stays()
    {
        var patient = await NewPatientAsync("Attente");
        var (connection, transaction) = await HoldAsync(patient);
        await using (connection)
        {
            var post = await PostWaitingAsync(patient);
            await transaction.RollbackAsync(); // an update or a delete that did not happen
            using var filed = await post;
            Assert.Equal(HttpStatusCode.Created, filed.StatusCode);
        }
        // And the delete that comes after it sees it.
        using var delete = await _api.DeleteAsync($"/fhir/Patient/{patient}");
        Assert.Equal(HttpStatusCode.Conflict, delete.StatusCode);
    }
}
