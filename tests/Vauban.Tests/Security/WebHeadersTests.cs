// What the operator's log keeps: an unexpected error is logged by type and correlation id, never by its message (which may quote data).
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public class WebHeadersTests
{
    private const string Marker = "DUPONT-Jeanne-1840575123456";

    [Fact]
    public async Task An_unexpected_error_is_logged_by_type_and_correlation_id_never_by_its_message()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite, extend: app =>
            app.MapGet("/account/test-failure", (HttpContext _) => throw new InvalidOperationException("Patient " + Marker + " could not be shown")));
        using var response = await server.Http.GetAsync("/account/test-failure");
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.DoesNotContain(Marker, await response.Content.ReadAsStringAsync());
        Assert.Contains(server.Logs, line => line.Contains("Unexpected InvalidOperationException", StringComparison.Ordinal));
        Assert.DoesNotContain(Marker, server.AllLogs());
    }
}
