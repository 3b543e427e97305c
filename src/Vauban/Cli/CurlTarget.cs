// The URL and curl options under which the commands `serve --demo` prints work as printed. Over HTTPS, curl checks the
// certificate: that a trusted authority issued it (a demo's is self-signed, an establishment's from its internal PKI) and that it
// names the host of the URL (a certificate for ehr.hopital.example does not name 127.0.0.1).
using Vauban.Web;

namespace Vauban.Cli;

internal sealed record CurlTarget(string BaseUrl, string Options, string? Note)
{
    /// <param name="baseUrl">The address the server listens on that the commands use (https:// first).</param>
    public static CurlTarget For(string baseUrl, ServerCertificate? tls)
    {
        if (tls is null || !baseUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase)) return new(baseUrl, "", null);
        var address = Microsoft.AspNetCore.Http.BindingAddress.Parse(baseUrl);
        var listening = address.Host.Trim('[', ']');
        var everywhere = listening is "0.0.0.0" or "::" or "*" or "+";
        var local = everywhere || listening.Equals("localhost", StringComparison.OrdinalIgnoreCase);
        // Where curl connects: the machine itself when the server listens on every address or on localhost.
        var connectTo = local ? "127.0.0.1" : listening;
        string[] reachable = local ? ["localhost", "127.0.0.1"] : [listening];
        var options = "";
        var host = reachable.FirstOrDefault(tls.Names);
        if (host is null)
        {
            // A name the certificate holds, which curl resolves to the server's address (--resolve), not through DNS.
            host = tls.DnsNames().Select(name => name.StartsWith("*.", StringComparison.Ordinal) ? "vauban" + name[1..] : name).FirstOrDefault(tls.Names);
            if (host is not null)
            {
                options += $" --resolve {host}:{address.Port}:{(connectTo.Contains(':', StringComparison.Ordinal) ? $"[{connectTo}]" : connectTo)}";
            }
            else
            {
                host = listening; // the certificate names no host curl could be told: the commands fail as they would for any client
            }
        }
        string? note = null;
        if (!tls.TrustedHere())
        {
            if (tls.KeyFile is not null)
            {
                options += $" --cacert {Quoted(Path.GetFullPath(tls.CertificateFile))}";
            }
            else
            {
                // curl (OpenSSL) takes the certificates to trust in PEM only; a PKCS#12 file gives its certificate with this.
                const string pem = "vauban-certificate.pem";
                options += $" --cacert {pem}";
                note = $"openssl pkcs12 -in {Quoted(Path.GetFullPath(tls.CertificateFile))} -nokeys -clcerts -out {pem}   # the certificate in PEM for curl (asks the PKCS#12 password)";
            }
        }
        var hostInUrl = host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host;
        return new($"{address.Scheme}://{hostInUrl}:{address.Port}{address.PathBase.TrimEnd('/')}", options, note);
    }

    /// <summary>A path as one shell word.</summary>
    private static string Quoted(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
