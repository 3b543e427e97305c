// `vauban serve` terminating TLS itself, as an operator runs it: the real server (a child process) answers a real HTTPS request
// with the operator's certificate, and every mistake with a certificate is one line naming the file, before the store opens.
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Cli;

[Collection("console")]
public sealed class ServeTlsTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-tls-" + Guid.NewGuid().ToString("N")[..8]);

    public ServeTlsTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        try { Directory.Delete(_directory, true); } catch (IOException) { }
    }

    private string Db => Path.Combine(_directory, "v.db");

    private string[] StoreArguments => ["--db", Db, "--master-key-file", Path.Combine(_directory, "master.key")];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Serve_on_an_outside_address_without_a_public_URL_warns_that_its_URLs_follow_the_Host_header(bool publicUrl)
    {
        var port = FreePort();
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        string[] named = publicUrl ? ["--public-url", "https://ehr.hopital.example"] : [];
        using var server = Launch(["serve", "--urls", $"http://0.0.0.0:{port}", .. named, .. StoreArguments], new Dictionary<string, string>(), output);
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            await WaitUntilAnsweringAsync(client, server, output);
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            await server.WaitForExitAsync();
        }
        Assert.Equal(!publicUrl, output.Any(line => line.Contains("no --public-url: the URLs Vauban hands out", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("pem")]
    [InlineData("pfx")]
    public async Task Serve_with_a_certificate_answers_a_real_HTTPS_request_and_plain_HTTP_only_for_healthz(string format)
    {
        using var certificate = SelfSigned("CN=localhost", DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(90));
        var (https, http) = (FreePort(), FreePort());
        string[] tls;
        var environment = new Dictionary<string, string>();
        if (format == "pem")
        {
            var (certificateFile, keyFile) = WritePem(certificate, "server");
            tls = ["--tls-certificate", certificateFile, "--tls-key", keyFile];
        }
        else
        {
            var pfx = Path.Combine(_directory, "server.pfx");
            await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "pfx password"));
            File.SetUnixFileMode(pfx, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            tls = ["--tls-certificate", pfx];
            environment["VAUBAN_TLS_PASSWORD"] = "pfx password";
        }
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var server = Launch(["serve", "--urls", $"https://127.0.0.1:{https};http://127.0.0.1:{http}", .. tls, .. StoreArguments], environment, output);
        try
        {
            // Trusts exactly this certificate, and says so: the client is not told to accept anything.
            using var client = new HttpClient(new HttpClientHandler
            {
                ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented is not null && presented.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span),
            })
            { BaseAddress = new Uri($"https://127.0.0.1:{https}"), Timeout = TimeSpan.FromSeconds(30) };
            await WaitUntilAnsweringAsync(client, server, output);
            using (var metadata = await client.GetAsync("/fhir/metadata"))
            {
                Assert.Equal(HttpStatusCode.OK, metadata.StatusCode);
                Assert.Contains("CapabilityStatement", await metadata.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                Assert.True(metadata.Headers.Contains("Strict-Transport-Security"));
            }

            // Plain HTTP on the same server: the health check, nothing else (no token, no record, no staff page in clear).
            using var plain = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http}"), Timeout = TimeSpan.FromSeconds(30) };
            using (var health = await plain.GetAsync("/healthz")) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            foreach (var path in new[] { "/fhir/metadata", "/account/signin", "/" })
            {
                using var refused = await plain.GetAsync(path);
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
                Assert.Contains("HTTPS only", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            using (var token = await plain.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" })))
            {
                Assert.Equal(HttpStatusCode.Forbidden, token.StatusCode);
            }
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            await server.WaitForExitAsync();
        }
        Assert.DoesNotContain(output, line => line.Contains("PRIVATE KEY", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_https_address_without_a_certificate_is_refused_with_what_to_do_instead()
    {
        var (exit, output) = await RunAsync(["serve", "--urls", "https://127.0.0.1:18084", .. StoreArguments]);
        Assert.Equal(2, exit); // the operator's mistake: a usage error
        var line = output.Trim().Split('\n')[0];
        Assert.Equal(["Try 'vauban serve --help'."], output.Trim().Split('\n').Skip(1).Select(l => l.TrimEnd('\r')));
        Assert.StartsWith("error: --urls: 'https://127.0.0.1:18084' is an https:// address", line, StringComparison.Ordinal);
        foreach (var remedy in new[] { "--tls-certificate", "--tls-key", "--trusted-proxies", "--public-url" }) Assert.Contains(remedy, line, StringComparison.Ordinal);
        Assert.DoesNotContain("UseKestrelHttpsConfiguration", output, StringComparison.Ordinal);
        Assert.False(File.Exists(Db));
    }

    [Fact]
    public async Task Serve_help_says_how_to_give_a_certificate()
    {
        var (exit, output) = await RunAsync(["serve", "--help"]);
        Assert.Equal(0, exit);
        foreach (var option in new[] { "--tls-certificate", "--tls-key", "VAUBAN_TLS_PASSWORD" }) Assert.Contains(option, output, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> Mistakes => new()
    {
        { "a key that is not the certificate's", "does not match the certificate" },
        { "a key file readable by other users", "readable by other users; restrict it with 'chmod 600'" },
        { "an expired certificate", "expired on" },
        { "a certificate not yet valid", "is not valid before" },
        { "a key file given as the certificate", "holds no PEM certificate" },
        { "a certificate given as the key", "holds no PEM private key" },
        { "a PEM certificate without its key", "give its private key with --tls-key" },
        { "a certificate file that is not there", "no file at" },
        { "a key without a certificate", "--tls-key: give the certificate it belongs to" },
        { "a certificate and no https address", "no https:// address in --urls" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public async Task A_certificate_mistake_is_a_usage_error_in_one_line_naming_the_file_before_the_store_opens(string mistake, string said)
    {
        var now = DateTimeOffset.UtcNow;
        using var good = SelfSigned("CN=localhost", now.AddDays(-1), now.AddDays(90));
        var (certificate, key) = WritePem(good, "good");
        using var other = SelfSigned("CN=other", now.AddDays(-1), now.AddDays(90));
        var (_, otherKey) = WritePem(other, "other");
        using var expired = SelfSigned("CN=localhost", now.AddDays(-90), now.AddDays(-1));
        var (expiredCertificate, expiredKey) = WritePem(expired, "expired");
        using var future = SelfSigned("CN=localhost", now.AddDays(1), now.AddDays(90));
        var (futureCertificate, futureKey) = WritePem(future, "future");
        var https = "https://127.0.0.1:18084";
        var (urls, tls, named) = mistake switch
        {
            "a key that is not the certificate's" => (https, new[] { "--tls-certificate", certificate, "--tls-key", otherKey }, otherKey),
            "a key file readable by other users" => (https, ["--tls-certificate", certificate, "--tls-key", ReadableByAll(key)], key),
            "an expired certificate" => (https, ["--tls-certificate", expiredCertificate, "--tls-key", expiredKey], expiredCertificate),
            "a certificate not yet valid" => (https, ["--tls-certificate", futureCertificate, "--tls-key", futureKey], futureCertificate),
            "a key file given as the certificate" => (https, ["--tls-certificate", key, "--tls-key", key], key),
            "a certificate given as the key" => (https, ["--tls-certificate", certificate, "--tls-key", certificate], certificate),
            "a PEM certificate without its key" => (https, ["--tls-certificate", certificate], certificate),
            "a certificate file that is not there" => (https, ["--tls-certificate", Path.Combine(_directory, "typo.pem"), "--tls-key", key], Path.Combine(_directory, "typo.pem")),
            "a key without a certificate" => (https, ["--tls-key", key], "--tls-certificate"),
            "a certificate and no https address" => ("http://127.0.0.1:18084", ["--tls-certificate", certificate, "--tls-key", key], "--urls"),
            _ => throw new ArgumentOutOfRangeException(nameof(mistake)),
        };
        var (exit, output) = await RunAsync(["serve", "--urls", urls, .. tls, .. StoreArguments]);
        Assert.Equal(2, exit); // the operator's mistake: a usage error, one line saying what, one pointing to the help
        var line = output.Trim().Split('\n')[0];
        Assert.Equal(["Try 'vauban serve --help'."], output.Trim().Split('\n').Skip(1).Select(l => l.TrimEnd('\r')));
        Assert.StartsWith("error: --", line, StringComparison.Ordinal);
        Assert.Contains(said, line, StringComparison.Ordinal);
        Assert.Contains(named, line, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY-----", output.Replace("(-----BEGIN PRIVATE KEY-----)", "", StringComparison.Ordinal), StringComparison.Ordinal);
        foreach (var keyFile in new[] { key, otherKey }) Assert.DoesNotContain(File.ReadAllLines(keyFile)[1], output, StringComparison.Ordinal);
        Assert.False(File.Exists(Db));
    }

    /// <summary>Reading a named pipe waits for a writer: a certificate or key file given as one held the start for ever, before
    /// it said anything. Refused without being opened, as a usage error naming the option and the file.</summary>
    [Fact]
    public async Task A_certificate_or_key_file_that_is_a_named_pipe_is_a_usage_error_not_a_wait()
    {
        if (!OperatingSystem.IsLinux()) return;
        var now = DateTimeOffset.UtcNow;
        using var good = SelfSigned("CN=localhost", now.AddDays(-1), now.AddDays(90));
        var (certificate, key) = WritePem(good, "good");
        var pipe = Path.Combine(_directory, "tls.pipe");
        using (var mkfifo = Process.Start("mkfifo", pipe)) await mkfifo.WaitForExitAsync();
        try
        {
            foreach (var (tls, said) in new[]
            {
                (new[] { "--tls-certificate", certificate, "--tls-key", pipe }, $"--tls-key: '{pipe}' is a named pipe (FIFO), not a regular file."),
                (["--tls-certificate", pipe, "--tls-key", key], $"--tls-certificate: '{pipe}' is a named pipe (FIFO), not a regular file."),
                (["--tls-certificate", pipe], $"--tls-certificate: '{pipe}' is a named pipe (FIFO), not a regular file."),
            })
            {
                // On another thread, and bounded: a reader blocked in open() would hold this one for ever.
                await Task.Run(() => CliRunner.UsageErrorAsync(["serve", "--urls", "https://127.0.0.1:18084", .. tls, .. StoreArguments], said, "vauban serve"))
                    .WaitAsync(TimeSpan.FromSeconds(60));
            }
        }
        finally
        {
            // Whatever still waits on the pipe (this test failing) is given a writer, and an end.
            using (new FileStream(pipe, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite)) { }
        }
        Assert.False(File.Exists(Db));
    }

    [Fact]
    public async Task A_renewed_certificate_is_presented_within_seconds_without_a_restart_and_a_failing_replacement_never_is()
    {
        var now = DateTimeOffset.UtcNow;
        using var first = SelfSigned("CN=first", now.AddDays(-1), now.AddDays(90));
        using var renewed = SelfSigned("CN=renewed", now.AddDays(-1), now.AddDays(90));
        using var other = SelfSigned("CN=other", now.AddDays(-1), now.AddDays(90));
        using var expired = SelfSigned("CN=expired", now.AddDays(-90), now.AddDays(-1));
        var (certificateFile, keyFile) = WritePem(first, "server");
        var (renewedCertificate, renewedKey) = WritePem(renewed, "renewed");
        var (_, otherKey) = WritePem(other, "other");
        var (expiredCertificate, expiredKey) = WritePem(expired, "expired");
        // Replaced in place, as a deployment or an ACME hook copies them: the file, its mode kept, gets new bytes.
        void Replace(string certificateFrom, string keyFrom)
        {
            File.WriteAllBytes(certificateFile, File.ReadAllBytes(certificateFrom));
            File.WriteAllBytes(keyFile, File.ReadAllBytes(keyFrom));
        }
        var port = FreePort();
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var server = Launch(["serve", "--urls", $"https://127.0.0.1:{port}", "--tls-certificate", certificateFile, "--tls-key", keyFile, .. StoreArguments], [], output);
        try
        {
            using (var client = Trusting(port, first)) await WaitUntilAnsweringAsync(client, server, output);
            Assert.Equal(Sha256(first), await PresentedAsync(port, first, renewed));

            // Each failing replacement: not taken, the first certificate still presented, and said once in a line naming the file.
            var failing = new (string Said, string Named, Action Make)[]
            {
                ("does not match the certificate", keyFile, () => Replace(renewedCertificate, otherKey)),
                ("expired on", certificateFile, () => Replace(expiredCertificate, expiredKey)),
                // Made readable first, so that no moment of the replacement is a pair the server may take.
                ("readable by other users", keyFile, () => { ReadableByAll(keyFile); Replace(renewedCertificate, renewedKey); }),
            };
            foreach (var (said, named, make) in failing)
            {
                make();
                var line = await WaitForLineAsync(output, l => l.Contains("were not taken", StringComparison.Ordinal) && l.Contains(said, StringComparison.Ordinal), server);
                Assert.Contains(named, line, StringComparison.Ordinal);
                Assert.Contains(Sha256(first), line, StringComparison.Ordinal); // the certificate still served
                Assert.Equal(Sha256(first), await PresentedAsync(port, first, renewed));
            }
            // Two more checks of the same files: nothing said again (not at each check, nor at each handshake).
            for (var i = 0; i < 10; i++) Assert.Equal(Sha256(first), await PresentedAsync(port, first, renewed));
            await Task.Delay(2 * TimeSpan.FromSeconds(3) + TimeSpan.FromSeconds(1));
            Assert.Equal(failing.Length, output.Count(l => l.Contains("were not taken", StringComparison.Ordinal)));
            Assert.DoesNotContain(output, l => l.Contains("TLS certificate renewed", StringComparison.Ordinal));

            // The key restricted again: the renewed pair passes the checks of the start, and is presented within seconds.
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var taken = Stopwatch.StartNew();
            while (await PresentedAsync(port, first, renewed) != Sha256(renewed))
            {
                Assert.True(taken.Elapsed < TimeSpan.FromSeconds(10), "the renewed certificate was not presented within 10 s: " + string.Join('\n', output));
                await Task.Delay(100);
            }
            var renewal = await WaitForLineAsync(output, l => l.Contains("TLS certificate renewed", StringComparison.Ordinal), server);
            foreach (var part in new[] { "CN=renewed", Sha256(renewed), renewed.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture) }) Assert.Contains(part, renewal, StringComparison.Ordinal);
            using (var client = Trusting(port, renewed)) using (var metadata = await client.GetAsync("/fhir/metadata")) Assert.Equal(HttpStatusCode.OK, metadata.StatusCode);
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            await server.WaitForExitAsync();
        }
        Assert.Single(output, l => l.Contains("TLS certificate renewed", StringComparison.Ordinal));
        Assert.DoesNotContain(output, line => line.Contains("PRIVATE KEY", StringComparison.Ordinal));
        foreach (var key in new[] { renewedKey, otherKey, expiredKey }) Assert.DoesNotContain(output, line => line.Contains(File.ReadAllLines(key)[1], StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_certificate_renewed_by_moving_symbolic_links_as_an_ACME_client_does_is_presented_without_a_restart()
    {
        var now = DateTimeOffset.UtcNow;
        using var first = SelfSigned("CN=first", now.AddDays(-1), now.AddDays(90));
        using var renewed = SelfSigned("CN=renewed", now.AddDays(-1), now.AddDays(90));
        var (firstCertificate, firstKey) = WritePem(first, "archive-1");
        var (renewedCertificate, renewedKey) = WritePem(renewed, "archive-2");
        // live/ links to archive/, as certbot keeps them; a renewal points the links at new files.
        var (certificateLink, keyLink) = (Path.Combine(_directory, "live.crt.pem"), Path.Combine(_directory, "live.key.pem"));
        File.CreateSymbolicLink(certificateLink, firstCertificate);
        File.CreateSymbolicLink(keyLink, firstKey);
        var port = FreePort();
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var server = Launch(["serve", "--urls", $"https://127.0.0.1:{port}", "--tls-certificate", certificateLink, "--tls-key", keyLink, .. StoreArguments], [], output);
        try
        {
            using (var client = Trusting(port, first)) await WaitUntilAnsweringAsync(client, server, output);
            Assert.Equal(Sha256(first), await PresentedAsync(port, first, renewed));
            foreach (var (link, target) in new[] { (certificateLink, renewedCertificate), (keyLink, renewedKey) })
            {
                var moved = link + ".new";
                File.CreateSymbolicLink(moved, target);
                File.Move(moved, link, overwrite: true); // rename(2): the link is replaced at once
            }
            var taken = Stopwatch.StartNew();
            while (await PresentedAsync(port, first, renewed) != Sha256(renewed))
            {
                Assert.True(taken.Elapsed < TimeSpan.FromSeconds(10), "the renewed certificate was not presented within 10 s: " + string.Join('\n', output));
                await Task.Delay(100);
            }
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            await server.WaitForExitAsync();
        }
        Assert.DoesNotContain(output, l => l.Contains("were not taken", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(10, "127.0.0.1,localhost", null, true, false)]
    [InlineData(90, "127.0.0.1,localhost", null, false, false)]
    [InlineData(90, "127.0.0.1,localhost", "https://ehr.hopital.example", false, true)]
    [InlineData(90, "", "https://ehr.hopital.example", false, true)]
    [InlineData(90, "*.hopital.example", "https://dpi.hopital.example/vauban", false, false)]
    [InlineData(90, "*.hopital.example", "https://hopital.example", false, true)]
    [InlineData(90, "ehr.hopital.example,10.0.0.5", "https://10.0.0.5:8443", false, false)]
    [InlineData(90, "127.0.0.1,localhost", "http://ehr.hopital.example", false, false)] // not reached over this certificate
    [InlineData(90, "127.0.0.1,localhost", "https://ehr.hopital.example", false, true, true)] // named by where it came from
    public async Task Serve_warns_at_start_of_a_certificate_near_its_end_and_of_one_that_does_not_name_the_public_URL_host(int days, string names, string? publicUrl, bool expiring, bool unnamed,
        bool fromVariable = false)
    {
        var now = DateTimeOffset.UtcNow;
        using var certificate = SelfSigned("CN=vauban", now.AddDays(-1), now.AddDays(days), names);
        var (certificateFile, keyFile) = WritePem(certificate, "server");
        var port = FreePort();
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        string[] named = publicUrl is null || fromVariable ? [] : ["--public-url", publicUrl];
        var environment = fromVariable ? new Dictionary<string, string> { ["VAUBAN_PUBLIC_URL"] = publicUrl! } : [];
        using var server = Launch(["serve", "--urls", $"https://127.0.0.1:{port}", "--tls-certificate", certificateFile, "--tls-key", keyFile, .. named, .. StoreArguments], environment, output);
        try
        {
            using var client = Trusting(port, certificate);
            await WaitUntilAnsweringAsync(client, server, output);
            await WaitForLineAsync(output, l => l.Contains($"Now listening on: https://127.0.0.1:{port}", StringComparison.Ordinal), server);
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            await server.WaitForExitAsync();
        }
        // The console wraps a long warning at its width: read as words.
        var said = System.Text.RegularExpressions.Regex.Replace(string.Join(' ', output), @"\s+", " ");
        var expiry = $"Warning: the TLS certificate (CN=vauban) expires on {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC; renew it";
        Assert.Equal(expiring, said.Contains(expiry, StringComparison.Ordinal));
        var host = publicUrl is null ? "" : new Uri(publicUrl).Host;
        var source = fromVariable ? "$VAUBAN_PUBLIC_URL" : "--public-url";
        Assert.Equal(unnamed, said.Contains($"Warning: the TLS certificate (CN=vauban) does not name {host}, the host of {source}", StringComparison.Ordinal));
        Assert.DoesNotContain(fromVariable ? "the host of --public-url" : "$VAUBAN_PUBLIC_URL", said, StringComparison.Ordinal);
    }

    [Fact]
    public void A_renewed_certificate_that_does_not_name_the_public_URL_host_is_said_naming_where_the_URL_came_from()
    {
        // The URL given by $VAUBAN_PUBLIC_URL: the warning named --public-url, an option the operator had not typed.
        var start = DateTimeOffset.UtcNow;
        using var first = SelfSigned("CN=first", start.AddDays(-1), start.AddDays(90), "ehr.hopital.example");
        using var renewed = SelfSigned("CN=renewed", start.AddDays(-1), start.AddDays(90), "other.hopital.example");
        var (certificateFile, keyFile) = WritePem(first, "server");
        var (renewedCertificate, renewedKey) = WritePem(renewed, "renewed");
        var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var renewal = new Vauban.Web.ServerCertificateRenewal(Vauban.Web.ServerCertificate.Load(certificateFile, keyFile, null, start),
            new("ehr.hopital.example", "$VAUBAN_PUBLIC_URL"), new ManualTime(start));
        renewal.StartUnwatched(new VaubanServer.CapturingLogger("tls", logs));
        File.WriteAllBytes(certificateFile, File.ReadAllBytes(renewedCertificate));
        File.WriteAllBytes(keyFile, File.ReadAllBytes(renewedKey));
        renewal.Check();
        Assert.Equal("CN=renewed", renewal.Current.Certificate.Subject);
        var warning = Assert.Single(logs, l => l.Contains("does not name", StringComparison.Ordinal));
        Assert.Contains("the TLS certificate (CN=renewed) does not name ehr.hopital.example, the host of $VAUBAN_PUBLIC_URL: it names other.hopital.example", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void A_certificate_near_its_end_is_said_again_once_a_day_while_served_and_as_an_error_once_past_it()
    {
        // A server runs for months: the start's warning is long gone from the screen when the certificate's last days come.
        var start = DateTimeOffset.UtcNow;
        using var certificate = SelfSigned("CN=vauban", start.AddDays(-300), start.AddDays(40));
        var (certificateFile, keyFile) = WritePem(certificate, "server");
        var time = new ManualTime(start);
        var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var renewal = new Vauban.Web.ServerCertificateRenewal(Vauban.Web.ServerCertificate.Load(certificateFile, keyFile, null, start), null, time);
        renewal.StartUnwatched(new VaubanServer.CapturingLogger("tls", logs));
        int Said(string level) => logs.Count(l => l.StartsWith(level + " tls: the TLS certificate (CN=vauban) ", StringComparison.Ordinal));

        renewal.Check();
        Assert.Equal((0, 0), (Said("Warning"), Said("Error")));
        time.Advance(TimeSpan.FromDays(11)); // 29 days left
        renewal.Check();
        renewal.Check();
        Assert.Equal(1, Said("Warning"));
        Assert.Contains(logs, l => l.Contains($"expires on {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC; renew it", StringComparison.Ordinal));
        time.Advance(TimeSpan.FromHours(23));
        renewal.Check();
        Assert.Equal(1, Said("Warning"));
        time.Advance(TimeSpan.FromHours(1));
        renewal.Check();
        Assert.Equal(2, Said("Warning"));
        time.Advance(TimeSpan.FromDays(30)); // past its end
        renewal.Check();
        Assert.Equal((2, 1), (Said("Warning"), Said("Error")));
        Assert.Contains(logs, l => l.Contains("expired on", StringComparison.Ordinal) && l.Contains("clients refuse to connect", StringComparison.Ordinal));
    }

    [Fact]
    public void A_replaced_certificate_is_released_once_a_later_one_replaces_it_and_the_start_s_never()
    {
        // Renewed every 90 days by an ACME client, a server running for years must not keep every private key it ever served.
        var start = DateTimeOffset.UtcNow;
        var generations = Enumerable.Range(0, 4).Select(i => SelfSigned($"CN=generation{i}", start.AddDays(-1), start.AddDays(90))).ToList();
        try
        {
            var (certificateFile, keyFile) = WritePem(generations[0], "server");
            var replacements = generations.Skip(1).Select((certificate, i) => WritePem(certificate, $"next{i}")).ToList();
            var initial = Vauban.Web.ServerCertificate.Load(certificateFile, keyFile, null, start);
            using var renewal = new Vauban.Web.ServerCertificateRenewal(initial, null, new ManualTime(start));
            renewal.StartUnwatched(new VaubanServer.CapturingLogger("tls", new System.Collections.Concurrent.ConcurrentQueue<string>()));
            renewal.Check(); // the same files read again: nothing taken
            Assert.Same(initial, renewal.Current);

            var served = new List<Vauban.Web.ServerCertificate>();
            var subjects = new List<string>();
            foreach (var (nextCertificate, nextKey) in replacements)
            {
                File.WriteAllBytes(certificateFile, File.ReadAllBytes(nextCertificate));
                File.WriteAllBytes(keyFile, File.ReadAllBytes(nextKey));
                renewal.Check();
                served.Add(renewal.Current);
                subjects.Add(renewal.Current.Certificate.Subject);
                Assert.Equal(renewal.Current.Thumbprint, renewal.Context.TargetCertificate.GetCertHashString(HashAlgorithmName.SHA256));
            }

            Assert.Equal(["CN=generation1", "CN=generation2", "CN=generation3"], subjects);
            Assert.NotEqual(IntPtr.Zero, initial.Certificate.Handle); // Kestrel's default since the start
            Assert.Equal(IntPtr.Zero, served[0].Certificate.Handle); // replaced, then replaced again: released
            Assert.NotEqual(IntPtr.Zero, served[1].Certificate.Handle); // replaced last: a handshake may still present it
            Assert.NotEqual(IntPtr.Zero, served[2].Certificate.Handle); // in use
            initial.Dispose();
        }
        finally
        {
            foreach (var certificate in generations) certificate.Dispose();
        }
    }

    [Fact]
    public void A_certificate_that_is_past_its_end_when_the_server_starts_serving_is_logged_as_an_error_at_once()
    {
        // Valid when read, then past its end once the store has opened (a long migration): every client refuses the server now.
        var start = DateTimeOffset.UtcNow;
        using var certificate = SelfSigned("CN=vauban", start.AddDays(-300), start.AddMinutes(5));
        var (certificateFile, keyFile) = WritePem(certificate, "server");
        var loaded = Vauban.Web.ServerCertificate.Load(certificateFile, keyFile, null, start);
        var time = new ManualTime(start.AddMinutes(10));
        var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var renewal = new Vauban.Web.ServerCertificateRenewal(loaded, null, time);
        renewal.StartUnwatched(new VaubanServer.CapturingLogger("tls", logs));

        var error = Assert.Single(logs, l => l.StartsWith("Error tls: the TLS certificate (CN=vauban) ", StringComparison.Ordinal));
        Assert.Contains("expired on", error, StringComparison.Ordinal);
        Assert.Contains("clients refuse to connect", error, StringComparison.Ordinal);
        renewal.Check(); // said once a day, not at every look at the files
        Assert.Single(logs, l => l.StartsWith("Error tls: ", StringComparison.Ordinal));
        time.Advance(TimeSpan.FromDays(1));
        renewal.Check();
        Assert.Equal(2, logs.Count(l => l.StartsWith("Error tls: ", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("ehr.hopital.example", true)]
    [InlineData("EHR.Hopital.Example.", true)]
    [InlineData("dpi.hopital.example", true)] // *.hopital.example
    [InlineData("hopital.example", false)] // a wildcard stands for one label, never none
    [InlineData("a.dpi.hopital.example", false)] // nor two
    [InlineData("evil-hopital.example", false)]
    [InlineData("hopital.example.evil", false)]
    [InlineData("10.0.0.5", true)]
    [InlineData("[::1]", true)]
    [InlineData("10.0.0.6", false)]
    [InlineData("x.example", false)] // *.example names no one
    [InlineData("localhost", false)]
    public void A_host_is_named_by_a_subject_alternative_name_as_clients_match_it(string host, bool named)
    {
        var now = DateTimeOffset.UtcNow;
        using var certificate = SelfSigned("CN=localhost", now.AddDays(-1), now.AddDays(90), "ehr.hopital.example,*.hopital.example,*.example,e*.other.example,10.0.0.5,::1");
        var (certificateFile, keyFile) = WritePem(certificate, "named");
        var loaded = Vauban.Web.ServerCertificate.Load(certificateFile, keyFile, null, now);
        Assert.Equal(named, loaded.Names(host));
        Assert.False(loaded.Names("eh.other.example")); // a partial wildcard, which browsers refuse
    }

    [Theory]
    [InlineData("127.0.0.1,localhost", "127.0.0.1")]
    [InlineData("ehr.hopital.example", "127.0.0.1")] // reached by the name it holds, resolved to the address listened on
    [InlineData("localhost", "0.0.0.0")]
    public async Task The_demo_commands_work_as_printed_against_a_self_signed_certificate(string names, string listen)
    {
        var now = DateTimeOffset.UtcNow;
        using var certificate = SelfSigned("CN=vauban demo", now.AddDays(-1), now.AddDays(90), names);
        var (certificateFile, keyFile) = WritePem(certificate, "demo");
        var port = FreePort();
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var server = Launch(["serve", "--demo", "--urls", $"https://{listen}:{port}", "--tls-certificate", certificateFile, "--tls-key", keyFile, .. StoreArguments], [], output);
        string answer, token;
        try
        {
            using (var client = Trusting(port, certificate)) await WaitUntilAnsweringAsync(client, server, output);
            token = (await WaitForLineAsync(output, l => l.StartsWith("  TOKEN=$(curl", StringComparison.Ordinal), server)).Trim();
            var search = (await WaitForLineAsync(output, l => l.StartsWith("  curl ", StringComparison.Ordinal), server)).Trim();
            using var shell = Process.Start(new ProcessStartInfo("bash", ["-c", token + "\n" + search]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetTempPath() })!;
            answer = await shell.StandardOutput.ReadToEndAsync() + await shell.StandardError.ReadToEndAsync();
            await shell.WaitForExitAsync();
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            await server.WaitForExitAsync();
        }
        Assert.Contains("\"resourceType\":\"Bundle\"", answer, StringComparison.Ordinal);
        Assert.Contains("--cacert", token, StringComparison.Ordinal); // the certificate given to curl, never -k
        Assert.Contains("\"resourceType\":\"Patient\"", answer, StringComparison.Ordinal);
    }

    // ---- certificates ----

    /// <summary>A self-signed server certificate naming <paramref name="names"/> (DNS names and IP addresses, comma-separated;
    /// none: no subject alternative name at all).</summary>
    private static X509Certificate2 SelfSigned(string subject, DateTimeOffset notBefore, DateTimeOffset notAfter, string names = "127.0.0.1,localhost")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        if (names.Length > 0)
        {
            var alternative = new SubjectAlternativeNameBuilder();
            foreach (var name in names.Split(','))
            {
                if (IPAddress.TryParse(name, out var address)) alternative.AddIpAddress(address);
                else alternative.AddDnsName(name);
            }
            request.CertificateExtensions.Add(alternative.Build());
        }
        return request.CreateSelfSigned(notBefore, notAfter);
    }

    private static string Sha256(X509Certificate2 certificate) => certificate.GetCertHashString(HashAlgorithmName.SHA256);

    /// <summary>The certificate and its key as PEM files, the key readable by its owner only, as an operator keeps it.</summary>
    private (string Certificate, string Key) WritePem(X509Certificate2 certificate, string name)
    {
        var certificateFile = Path.Combine(_directory, name + ".crt.pem");
        var keyFile = Path.Combine(_directory, name + ".key.pem");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (certificateFile, keyFile);
    }

    private static string ReadableByAll(string file)
    {
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return file;
    }

    // ---- the command ----

    private static Task<(int Exit, string Output)> RunAsync(string[] arguments) => CliRunner.RunAsync(arguments);

    private Process Launch(IEnumerable<string> arguments, Dictionary<string, string> environment, System.Collections.Concurrent.ConcurrentQueue<string> output) =>
        ChildVauban.Start(arguments, _directory, output, environment);

    private static async Task WaitUntilAnsweringAsync(HttpClient client, Process server, System.Collections.Concurrent.ConcurrentQueue<string> output)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(server.HasExited, "vauban serve exited: " + string.Join('\n', output));
            try
            {
                using var health = await client.GetAsync("/healthz");
                Assert.Equal(HttpStatusCode.OK, health.StatusCode);
                return;
            }
            catch (HttpRequestException) when (deadline.Elapsed < TimeSpan.FromSeconds(90))
            {
                await Task.Delay(100); // not listening yet
            }
        }
    }

    /// <summary>A client that trusts exactly <paramref name="certificate"/>.</summary>
    private static HttpClient Trusting(int port, X509Certificate2 certificate) => new(new HttpClientHandler
    {
        ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented is not null && presented.RawDataMemory.Span.SequenceEqual(certificate.RawDataMemory.Span),
    })
    { BaseAddress = new Uri($"https://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>The SHA-256 fingerprint of the certificate a new connection is presented (one of <paramref name="known"/>, or
    /// the request fails).</summary>
    private static async Task<string?> PresentedAsync(int port, params X509Certificate2[] known)
    {
        string? seen = null;
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) =>
        {
            seen = presented is null ? null : Convert.ToHexString(SHA256.HashData(presented.GetRawCertData()));
            return presented is not null && known.Any(certificate => certificate.RawDataMemory.Span.SequenceEqual(presented.GetRawCertData()));
        };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        using var health = await client.GetAsync(new Uri($"https://127.0.0.1:{port}/healthz"));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        return seen;
    }

    private static async Task<string> WaitForLineAsync(System.Collections.Concurrent.ConcurrentQueue<string> output, Func<string, bool> wanted, Process server)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (output.FirstOrDefault(wanted) is { } line) return line;
            Assert.False(server.HasExited, "vauban serve exited: " + string.Join('\n', output));
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "not said within 30 s: " + string.Join('\n', output));
            await Task.Delay(100);
        }
    }

    private static int FreePort() => ChildVauban.FreePort();
}
