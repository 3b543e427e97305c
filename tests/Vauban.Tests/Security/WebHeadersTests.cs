// What every answer tells the browser and what the operator's log keeps: patient data (a staff page, or FHIR JSON
// read with the session cookie) is never stored by a browser or proxy cache; a form page leaves no warning in the log;
// an unexpected error is logged by type and correlation id, never by its message (which may quote data), and its answer
// carries the same headers as any other; no key is kept in the user profile.
using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public class WebHeadersTests
{
    private const string Marker = "DUPONT-Jeanne-1840575123456";

    [Fact]
    public async Task Patient_data_read_over_fhir_is_never_kept_in_a_browser_or_proxy_cache()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite);
        using var api = await server.ClientAsync("hospital-a");
        using var created = await api.PostAsync("/fhir/Patient", FhirContent.Json(Samples.Patient(family: "Cache")));
        var id = (await created.BodyAsync()).GetProperty("id").GetString()!;
        foreach (var url in new[] { $"/fhir/Patient/{id}", "/fhir/Patient?family=cache", $"/fhir/Patient/{id}/_history" })
        {
            using var response = await api.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.True(response.Headers.CacheControl?.NoStore, $"{url} answers without Cache-Control: no-store");
            Assert.Contains("nosniff", response.Headers.GetValues("X-Content-Type-Options"));
        }
        using var page = await server.Http.GetAsync("/account/signin");
        Assert.True(page.Headers.CacheControl?.NoStore);
        Assert.Contains("frame-ancestors 'none'", string.Join(' ', page.Headers.GetValues("Content-Security-Policy")));
    }

    [Fact]
    public async Task A_form_page_leaves_no_warning_in_the_operators_log()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite);
        await server.Store.Tenants.AddAsync("hospital-a", CancellationToken.None);
        for (var i = 0; i < 3; i++)
        {
            using var page = await server.Http.GetAsync("/account/signin");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        }
        Assert.DoesNotContain(server.Logs, line => line.StartsWith("Warning", StringComparison.Ordinal) || line.StartsWith("Error", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_server_keeps_no_key_of_its_own_in_the_user_profile()
    {
        // Antiforgery's Data Protection runs on an ephemeral provider. The key ring it does not use stays in memory too: it was
        // loaded from, and on a new machine written unencrypted to, ~/.aspnet/DataProtection-Keys.
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite);
        var keys = server.Services.GetRequiredService<IOptions<KeyManagementOptions>>().Value;
        Assert.NotNull(keys.XmlRepository);
        Assert.IsNotType<FileSystemXmlRepository>(keys.XmlRepository);
        Assert.NotEmpty(keys.XmlRepository.GetAllElements()); // the key the start-up service made, in memory
        using var page = await server.Http.GetAsync("/account/signin");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.DoesNotContain(server.Logs, line => (line.StartsWith("Warning", StringComparison.Ordinal) || line.StartsWith("Error", StringComparison.Ordinal))
            && line.Contains("DataProtection", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unexpected_error_is_logged_by_type_and_correlation_id_never_by_its_message()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite, extend: app =>
            app.MapGet("/account/test-failure", (HttpContext _) => throw new InvalidOperationException("Patient " + Marker + " could not be shown")));
        using var response = await server.Http.GetAsync("/account/test-failure");
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.DoesNotContain(Marker, await response.Content.ReadAsStringAsync());
        // The error page is a page like the others: not cached, not framed, not sniffed.
        Assert.True(response.Headers.CacheControl?.NoStore, "the error answer may be cached");
        Assert.Contains("nosniff", response.Headers.GetValues("X-Content-Type-Options"));
        Assert.Contains("frame-ancestors 'none'", string.Join(' ', response.Headers.GetValues("Content-Security-Policy")));
        Assert.Contains(server.Logs, line => line.Contains("Unexpected InvalidOperationException", StringComparison.Ordinal));
        Assert.DoesNotContain(Marker, server.AllLogs());
    }

    [Fact]
    public async Task An_error_after_the_answer_has_started_is_logged_by_type_too_and_the_connection_is_cut()
    {
        // A streamed answer ($export's files) that fails half-way: the exception handler can no longer answer, and Kestrel
        // logged the exception with its message.
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite, extend: app =>
            app.MapGet("/account/test-late-failure", async (HttpContext http) =>
            {
                await http.Response.WriteAsync("{\"resourceType\": \"Patient\"");
                await http.Response.Body.FlushAsync();
                throw new InvalidOperationException("Patient " + Marker + " could not be streamed");
            }));
        var answer = await Record.ExceptionAsync(async () =>
        {
            using var response = await server.Http.GetAsync("/account/test-late-failure");
            await response.Content.ReadAsStringAsync();
        });
        Assert.NotNull(answer); // the body is cut off: the client sees the answer fail, not a complete one
        var logged = Stopwatch.StartNew();
        while (!server.Logs.Any(line => line.Contains("Unexpected InvalidOperationException", StringComparison.Ordinal)) && logged.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(20);
        Assert.Contains(server.Logs, line => line.Contains("Unexpected InvalidOperationException", StringComparison.Ordinal));
        Assert.DoesNotContain(Marker, server.AllLogs());
    }
}
