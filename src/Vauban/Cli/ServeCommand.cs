using System.CommandLine;
using Spectre.Console;
using Vauban.Web;

namespace Vauban.Cli;

internal static class ServeCommand
{
    /// <summary>--max-resource-kib: serve's limit on one resource's body, and import's on one resource of a bundle (with the same
    /// default), so that an import brings in nothing the API would refuse.</summary>
    public static Option<int> MaxResourceKib(string description) =>
        new Option<int>("--max-resource-kib") { Description = description, DefaultValueFactory = _ => Vauban.Web.ServerOptions.DefaultMaxResourceKib }.Within(1, 65536);

    public static Command Build()
    {
        var serve = new Command("serve", "Run the Vauban server: FHIR R4 API at /fhir and the OAuth 2.0 token endpoint.");
        var urls = new Option<string>("--urls")
        {
            Description = "Where to listen, several separated by ';'. An https:// address is served with --tls-certificate; with one, plain http:// addresses answer /healthz alone.",
            DefaultValueFactory = _ => "http://127.0.0.1:8080",
        };
        var tlsCertificate = new Option<string?>("--tls-certificate")
        {
            Description = "The server's TLS certificate for the https:// addresses of --urls (TLS 1.2 and 1.3): a PEM file (intermediate certificates may follow) with --tls-key, "
                + $"or a PKCS#12 .pfx file holding the key too, its password in ${ServerCertificate.PasswordVariable}. Renewed by replacing the files: taken within seconds, without a restart, once they pass the checks of the start. Also $VAUBAN_TLS_CERTIFICATE.",
        };
        var tlsKey = new Option<string?>("--tls-key")
        {
            Description = $"The PEM private key of --tls-certificate (not readable by other users: chmod 600, or 640 with a group such as ssl-cert; if encrypted, its password in ${ServerCertificate.PasswordVariable}). Also $VAUBAN_TLS_KEY.",
        };
        var demo = new Option<bool>("--demo") { Description = "In a new store, create a demo establishment with synthetic patients and staff accounts; at each start print a new API client (the previous one revoked) and enrolment links. Refused on a store holding other establishments." };
        var maxResource = MaxResourceKib("Largest accepted resource body, in KiB (larger: 413).");
        var maxBundle = new Option<int>("--max-bundle-kib") { Description = "Largest accepted batch/transaction body, in KiB.", DefaultValueFactory = _ => 32 * 1024 }.Within(1, 1_048_576);
        var passwordMin = new Option<int>("--password-min-length") { Description = "Shortest accepted staff password (NIST SP 800-63B-4: 8 when a second factor is required, as here; 15 for a stricter policy).", DefaultValueFactory = _ => 8 }
            .Within(8, new Vauban.Access.AccountOptions().PasswordMaxLength);
        var lockoutAfter = new Option<int>("--lockout-after") { Description = "Failed sign-ins that lock a staff account until the security officer unlocks it (3 to 100).", DefaultValueFactory = _ => 10 }.Within(3, 100);
        var guardConfig = new Option<FileInfo?>("--guard-config") { Description = "A JSON file of guard thresholds per role, for API clients and per establishment (docs/adr/0008-guard.md)." };
        var trustedProxies = new Option<string?>("--trusted-proxies")
        {
            Description = "Reverse proxies whose X-Forwarded-For/-Proto/-Host headers are believed (addresses or CIDR networks, comma-separated), e.g. the TLS proxy in front of Vauban. Without it those headers are ignored.",
        };
        var internalNetworks = new Option<string?>("--internal-networks")
        {
            Description = "The establishment's own networks (CIDR networks or addresses, comma-separated), e.g. 10.0.0.0/8,192.168.0.0/16 and the public address of its NAT: "
                + "sign-ins from them are not delayed for the failures of everyone behind the same address (each account's own failures still are); "
                + "many failures from one of them alert the security officer instead. Behind a reverse proxy, declare it with --trusted-proxies, or every client is the proxy's address.",
        };
        var internalAlertAfter = new Option<int>("--internal-alert-after")
        {
            Description = "Failed sign-ins from one source in --internal-networks within about an hour that alert the security officer (password spraying from inside).",
            DefaultValueFactory = _ => new Vauban.Access.AccountOptions().InternalSourceFailuresBeforeAlert,
        };
        var publicUrl = new Option<string?>("--public-url")
        {
            Description = "The URL clients reach Vauban by, when it is not an address it listens on (behind a proxy, under a name), e.g. https://ehr.hopital.example. "
                + "It makes the token endpoint's URL, which a private_key_jwt assertion must name as its audience; without it, only the addresses in --urls do. Also $VAUBAN_PUBLIC_URL.",
        };
        serve.Options.Add(publicUrl);
        serve.Options.Add(trustedProxies);
        serve.Options.Add(internalNetworks);
        serve.Options.Add(internalAlertAfter);
        serve.Options.Add(guardConfig);
        serve.Options.Add(passwordMin);
        serve.Options.Add(lockoutAfter);
        serve.Options.Add(maxResource);
        serve.Options.Add(maxBundle);
        serve.Options.Add(urls);
        serve.Options.Add(tlsCertificate);
        serve.Options.Add(tlsKey);
        serve.Options.Add(demo);
        StoreArguments.AddTo(serve);
        serve.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            // Everything the operator typed is checked before the store is opened (or created) and the demo set up; a value or
            // file that cannot be used as given is a usage error (exit 2), as a mistyped option is.
            var (resourceKib, bundleKib) = (parse.GetValue(maxResource), parse.GetValue(maxBundle));
            // A refusal names where each value came from: the option, or the variable when the option was not typed.
            var certificateGiven = Given.From(parse, tlsCertificate, "VAUBAN_TLS_CERTIFICATE", "--tls-certificate");
            var keyGiven = Given.From(parse, tlsKey, "VAUBAN_TLS_KEY", "--tls-key");
            var certificateFile = certificateGiven.Value is { Length: > 0 } ? certificateGiven.Value : null;
            var keyFile = keyGiven.Value is { Length: > 0 } ? keyGiven.Value : null;
            if (keyFile is not null && certificateFile is null) throw new UsageException($"{keyGiven.Source}: give the certificate it belongs to with --tls-certificate or $VAUBAN_TLS_CERTIFICATE.");
            var httpsAddresses = 0;
            var addresses = parse.GetValue(urls)!.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            // None at all (--urls "" from an unset variable) left Kestrel to its own default, http://localhost:5000.
            if (addresses.Length == 0) throw new UsageException("--urls: no address to listen on (e.g. http://127.0.0.1:8080; several separated by ';').");
            foreach (var address in addresses)
            {
                Microsoft.AspNetCore.Http.BindingAddress parsed;
                try
                {
                    parsed = Microsoft.AspNetCore.Http.BindingAddress.Parse(address);
                }
                catch (FormatException)
                {
                    // Kestrel's own refusal comes after the store is open, as a logged stack trace.
                    throw new UsageException($"--urls: '{address}' is not an address to listen on (e.g. http://127.0.0.1:8080; several separated by ';').");
                }
                if (!parsed.IsUnixPipe && parsed.Port is < 0 or > 65535)
                {
                    // Kestrel's refusal: "Specified argument was out of the range of valid values."
                    throw new UsageException($"--urls: {parsed.Port} in '{address}' is not a port (0 to 65535; 0 lets the system choose one).");
                }
                // Kestrel listens on every interface for any host that is not an IP address or localhost (a name, a typo such
                // as 999.1.1.1): a server meant for one network would be reachable from all of them.
                if (!parsed.IsUnixPipe && !System.Net.IPAddress.TryParse(parsed.Host.Trim('[', ']'), out _)
                    && !parsed.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase) && parsed.Host is not ("*" or "+"))
                {
                    throw new UsageException($"--urls: '{parsed.Host}' in '{address}' is not an IP address; the server would listen on every interface. Give the address to listen on (e.g. http://10.0.0.5:8080), localhost, or 0.0.0.0 for every interface.");
                }
                if (parsed.Scheme.Equals("https", StringComparison.OrdinalIgnoreCase))
                {
                    httpsAddresses++;
                    if (certificateFile is null)
                    {
                        throw new UsageException($"--urls: '{address}' is an https:// address and no certificate was given. Give it with --tls-certificate <cert.pem> --tls-key <key.pem> (or a .pfx), "
                            + "or listen on http:// behind a TLS reverse proxy declared with --trusted-proxies, and name the https:// URL clients use with --public-url.");
                    }
                }
            }
            // Refused rather than ignored: the operator meant TLS, and the server would take staff passwords in clear on http://.
            if (certificateFile is not null && httpsAddresses == 0)
            {
                throw new UsageException($"{certificateGiven.Source}: no https:// address in --urls to serve it on; add one (e.g. --urls https://0.0.0.0:8443).");
            }
            var tls = certificateFile is null ? null
                : UsageError.Checked(() => ServerCertificate.Load(certificateFile, keyFile, Environment.GetEnvironmentVariable(ServerCertificate.PasswordVariable), DateTimeOffset.UtcNow,
                    new ServerCertificate.Sources(certificateGiven.Source, keyGiven.Source)));
            var proxies = UsageError.Checked(() => Vauban.Access.NetworkList.Parse("--trusted-proxies", parse.GetValue(trustedProxies)));
            if (Vauban.Access.NetworkList.WiderThanAnEstablishment(proxies) is { } anyone)
            {
                // 0.0.0.0/0 believed every client's X-Forwarded-For: the address in the audit log, the sign-in limits and the guard's
                // new-network signal became whatever a client wrote.
                throw new UsageException($"--trusted-proxies: {anyone} is wider than an establishment's own networks (at most /8 in IPv4, /7 in IPv6): every client in it could "
                    + "write its own address into the audit log and past the sign-in limits. Name the reverse proxies' addresses (e.g. 10.0.0.2).");
            }
            var ownNetworks = UsageError.Checked(() => Vauban.Access.NetworkList.Parse("--internal-networks", parse.GetValue(internalNetworks)));
            Uri? publicBase = null;
            var publicGiven = Given.From(parse, publicUrl, "VAUBAN_PUBLIC_URL", "--public-url");
            if (publicGiven.Value is { Length: > 0 } given && !VaubanCommands.IsBaseUrl(given, out publicBase))
            {
                throw new UsageException($"{publicGiven.Source}: '{given}' is not the http(s) URL clients reach Vauban by (e.g. https://ehr.hopital.example, without a query).");
            }
            var accounts = new Vauban.Access.AccountOptions
            {
                PasswordMinLength = parse.GetValue(passwordMin), LockoutAfterFailures = parse.GetValue(lockoutAfter),
                InternalNetworks = ownNetworks, InternalSourceFailuresBeforeAlert = parse.GetValue(internalAlertAfter),
            };
            // Refused at the store's opening, after a new store's master key was made: checked here first.
            UsageError.Checked(() => { accounts.Validate(); return accounts; });
            var guard = new Vauban.Guard.GuardOptions();
            if (parse.GetValue(guardConfig) is { } file) // there, and a regular file, when parsed: VaubanCommands.SayValues
            {
                var json = await UsageError.ReadAsync(file, "--guard-config", token);
                guard = UsageError.Checked(() => Vauban.Guard.GuardOptions.FromJson(json), problem => $"--guard-config: {file.FullName}: {problem}");
            }
            await StoreArguments.RefuseForeignAsync(StoreArguments.DbValue(parse), token);
            var options = await StoreArguments.ResolveAsync(parse, token);
            await using var store = await VaubanStore.OpenAsync(options with { Accounts = accounts, Guard = guard }, token);
            StoreArguments.SayMadeKey(options);
            AnsiConsole.MarkupLineInterpolated($"Store: {store.Description}");
            if (tls?.Warning(DateTimeOffset.UtcNow) is { } expiring) AnsiConsole.MarkupLineInterpolated($"[yellow]Warning: {expiring}[/]");
            // A warning, not a refusal: a name the certificate lacks may still be on its way (DNS, a certificate being issued).
            if (tls is not null && publicBase is { Scheme: "https" } && tls.NamesWarning(new(publicBase.IdnHost, publicGiven.Source)) is { } unnamed) AnsiConsole.MarkupLineInterpolated($"[yellow]Warning: {unnamed}[/]");
            foreach (var warning in store.DurabilityWarnings) AnsiConsole.MarkupLineInterpolated($"[yellow]Warning: {warning}[/]");
            var index = await store.Records.IndexStatusAsync(token);
            if (index.Outdated) AnsiConsole.MarkupLineInterpolated($"[yellow]Warning: {index.Warning}[/]");
            if (index.Newer) AnsiConsole.MarkupLineInterpolated($"[yellow]Warning: {index.NewerWarning}[/]");
            if (publicBase is null && !ListensOnLoopbackOnly(parse.GetValue(urls)!))
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]Warning: no --public-url: the URLs Vauban hands out (Location, paging links, fullUrl) and the origin a signed-in session's writes must come from follow each request's Host header. Set --public-url to the address clients use.[/]");
            }
            AnsiConsole.MarkupLineInterpolated($"Audit journal: {store.Audit.JournalDirectory} (keep it across restarts; $VAUBAN_AUDIT_JOURNAL)");
            if (parse.GetValue(demo)) await Demo.EnsureAsync(store, parse.GetValue(urls)!, tls, token);
            var app = VaubanHost.Build(store, new ServerOptions(parse.GetValue(urls)!) { MaxResourceBytes = resourceKib * 1024L, MaxBundleBytes = bundleKib * 1024L, TrustedProxies = proxies, PublicUrl = publicBase, PublicUrlSource = publicGiven.Source, Tls = tls });
            await app.RunAsync(token);
            return 0;
        }, ct));
        return serve;
    }

    /// <summary>Whether every address of --urls is the machine's own (loopback or localhost): only then can no one else choose
    /// the Host header the server's URLs follow without --public-url.</summary>
    private static bool ListensOnLoopbackOnly(string urls) =>
        urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).All(address =>
            Microsoft.AspNetCore.Http.BindingAddress.Parse(address) is var parsed
            && (parsed.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                || System.Net.IPAddress.TryParse(parsed.Host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip)));
}
