// The certificate `vauban serve` terminates TLS with (--tls-certificate, --tls-key): loaded and checked before the store is
// opened, so that every mistake an operator can make with it is one line naming the file, never a handshake that fails later.
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Vauban.Web;

public sealed class ServerCertificate : IDisposable
{
    /// <summary>The password of a PKCS#12 file or of an encrypted PEM key: from the environment only, since a command line is
    /// readable by every local account in the process list.</summary>
    public const string PasswordVariable = "VAUBAN_TLS_PASSWORD";

    /// <summary>Within this of its end, a certificate is still used, with a warning at start.</summary>
    private static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(30);

    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    private const string SubjectAlternativeName = "2.5.29.17";

    private readonly string? _password;
    private readonly Sources _sources;

    private ServerCertificate(X509Certificate2 certificate, X509Certificate2Collection chain, string certificateFile, string? keyFile, string? password, Sources sources)
    {
        Certificate = certificate;
        Chain = chain;
        CertificateFile = certificateFile;
        KeyFile = keyFile;
        _password = password;
        _sources = sources;
    }

    /// <summary>Where the two paths came from, as a refusal names them: the options, or $VAUBAN_TLS_CERTIFICATE and
    /// $VAUBAN_TLS_KEY when those gave them (the operator looked for an option never typed).</summary>
    public sealed record Sources(string Certificate, string Key)
    {
        public static Sources Options { get; } = new("--tls-certificate", "--tls-key");
    }

    /// <summary>The file it was read from (PEM, or PKCS#12 holding the key too).</summary>
    public string CertificateFile { get; }

    /// <summary>The PEM file its private key was read from; null for a PKCS#12 file.</summary>
    public string? KeyFile { get; }

    /// <summary>The SHA-256 fingerprint of the certificate, as browsers and `openssl x509 -fingerprint -sha256` show it.</summary>
    public string Thumbprint => Certificate.GetCertHashString(HashAlgorithmName.SHA256);

    /// <summary>The server's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The intermediate certificates that follow it in the file, sent with it so that clients can build the chain.</summary>
    public X509Certificate2Collection Chain { get; }

    /// <summary>What the operator should know (a certificate close to its end, or past it), or null.</summary>
    public string? Warning(DateTimeOffset now)
    {
        var end = Certificate.NotAfter.ToUniversalTime();
        if (end - now.UtcDateTime >= ExpiryWarning) return null;
        return end <= now.UtcDateTime
            ? $"the TLS certificate ({Certificate.Subject}) expired on {end:yyyy-MM-dd HH:mm} UTC: clients refuse to connect. Renew it (replace its files: the server takes them within seconds, without a restart)."
            : $"the TLS certificate ({Certificate.Subject}) expires on {end:yyyy-MM-dd HH:mm} UTC; renew it (replace its files: the server takes them within seconds, without a restart).";
    }

    /// <summary>Loads a PEM certificate (intermediates may follow it) and its PEM private key, or, when <paramref name="keyFile"/>
    /// is null, a PKCS#12 file holding both. <paramref name="password"/> opens a PKCS#12 file or an encrypted PEM key.
    /// Refuses with an <see cref="ArgumentException"/> whose message names where the path came from (<paramref name="sources"/>,
    /// the options by default) and the file, never the key's content.</summary>
    public static ServerCertificate Load(string certificateFile, string? keyFile, string? password, DateTimeOffset now, Sources? sources = null)
    {
        ArgumentNullException.ThrowIfNull(certificateFile);
        var from = sources ?? Sources.Options;
        var certificateBytes = Read(from.Certificate, certificateFile);
        var certificateText = System.Text.Encoding.Latin1.GetString(certificateBytes); // a PEM file is ASCII; Latin-1 keeps a PKCS#12 file's bytes
        var isPem = certificateText.Contains("-----BEGIN", StringComparison.Ordinal);
        X509Certificate2 certificate;
        X509Certificate2Collection chain;
        if (keyFile is null)
        {
            if (isPem)
            {
                throw new ArgumentException($"{from.Certificate}: '{certificateFile}' is a PEM file; give its private key with --tls-key or $VAUBAN_TLS_KEY (or a PKCS#12 .pfx file holding both).");
            }
            RefuseReadableByOthers(from.Certificate, certificateFile);
            (certificate, chain) = LoadPkcs12(from, certificateFile, certificateBytes, password);
        }
        else
        {
            var keyText = System.Text.Encoding.ASCII.GetString(Read(from.Key, keyFile));
            if (!keyText.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            {
                throw new ArgumentException($"{from.Key}: '{keyFile}' holds no PEM private key (-----BEGIN PRIVATE KEY-----).");
            }
            RefuseReadableByOthers(from.Key, keyFile);
            (certificate, chain) = LoadPem(from, certificateFile, certificateText, keyFile, keyText, password);
        }
        try
        {
            Check(from, certificateFile, certificate, now);
        }
        catch
        {
            Dispose(certificate, chain);
            throw;
        }
        return new ServerCertificate(certificate, chain, certificateFile, keyFile, password, from);
    }

    /// <summary>Releases the private key's native handle and the chain's. Only for a certificate no handshake presents any more
    /// (<see cref="ServerCertificateRenewal"/> keeps the one in use, the last replaced, and Kestrel's default from the start).</summary>
    public void Dispose() => Dispose(Certificate, Chain);

    private static void Dispose(X509Certificate2 certificate, X509Certificate2Collection chain)
    {
        certificate.Dispose();
        foreach (var intermediate in chain) intermediate.Dispose();
    }

    private static void Check(Sources from, string certificateFile, X509Certificate2 certificate, DateTimeOffset now)
    {
        if (now.UtcDateTime < certificate.NotBefore.ToUniversalTime())
        {
            throw new ArgumentException($"{from.Certificate}: the certificate in '{certificateFile}' is not valid before {certificate.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm} UTC.");
        }
        // Refused rather than served: the staff pages send Strict-Transport-Security, under which a browser offers no way past a
        // certificate error, and every API client refuses one, so an expired certificate would only delay the same outage
        // behind a server that seems to start.
        if (now.UtcDateTime > certificate.NotAfter.ToUniversalTime())
        {
            throw new ArgumentException($"{from.Certificate}: the certificate in '{certificateFile}' expired on {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC; renew it.");
        }
        // Kestrel refuses such a certificate itself, but only once the store is open, in a stack trace.
        if (certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } usages
            && !usages.EnhancedKeyUsages.Cast<Oid>().Any(usage => usage.Value == ServerAuthentication))
        {
            throw new ArgumentException($"{from.Certificate}: the certificate in '{certificateFile}' is not for server authentication (its extended key usage lacks serverAuth).");
        }
    }

    /// <summary>The same files read again, with the same checks as at start (a renewal replaces them in place).</summary>
    public ServerCertificate Reload(DateTimeOffset now) => Load(CertificateFile, KeyFile, _password, now, _sources);

    /// <summary>Whether a client reaching the server by <paramref name="host"/> (a DNS name or an IP address) finds it among the
    /// certificate's subject alternative names, as RFC 6125 has clients match: a name case-insensitively, a wildcard only as the
    /// whole left-most label (*.hopital.example names ehr.hopital.example, not hopital.example nor a.ehr.hopital.example), an
    /// address only as an IP entry. The subject's CN is not looked at: browsers have ignored it for years.</summary>
    public bool Names(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (AlternativeNames() is not { } names) return false;
        host = host.Trim('[', ']').TrimEnd('.');
        if (System.Net.IPAddress.TryParse(host, out var address)) return names.EnumerateIPAddresses().Any(address.Equals);
        return names.EnumerateDnsNames().Any(name => DnsNameMatches(name.TrimEnd('.'), host));
    }

    /// <summary>The host clients reach the server by, that of an https:// public URL, and where the URL came from as the operator
    /// gave it: "--public-url", or "$VAUBAN_PUBLIC_URL" when the option was not typed (a warning naming the option sent the
    /// operator looking for one never typed).</summary>
    public sealed record PublicHost(string Host, string Source);

    /// <summary>What the operator should know when clients reach the server by <paramref name="reached"/> and the certificate
    /// does not name it: every client would refuse the connection. Null when it names it.</summary>
    public string? NamesWarning(PublicHost reached)
    {
        ArgumentNullException.ThrowIfNull(reached);
        var host = reached.Host;
        if (Names(host)) return null;
        var listed = DnsNames().Concat(AlternativeNames()?.EnumerateIPAddresses().Select(address => address.ToString()) ?? []).ToList();
        return $"the TLS certificate ({Certificate.Subject}) does not name {host}, the host of {reached.Source}: "
            + (listed.Count == 0 ? "it has no subject alternative name (clients ignore the subject's CN)" : $"it names {string.Join(", ", listed)}")
            + "; clients reaching the server by that name will refuse its certificate.";
    }

    /// <summary>Whether this machine's trusted authorities vouch for the certificate (a public CA, or an internal one installed
    /// here); when not, a client such as curl must be given the certificate to trust.</summary>
    public bool TrustedHere()
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ExtraStore.AddRange(Chain);
        var trusted = chain.Build(Certificate);
        foreach (var element in chain.ChainElements) element.Certificate.Dispose();
        return trusted;
    }

    /// <summary>The DNS names among the certificate's subject alternative names, wildcards included.</summary>
    public IEnumerable<string> DnsNames() => AlternativeNames()?.EnumerateDnsNames() ?? [];

    private X509SubjectAlternativeNameExtension? AlternativeNames() =>
        Certificate.Extensions.FirstOrDefault(extension => extension.Oid?.Value == SubjectAlternativeName) is { } found
            ? found as X509SubjectAlternativeNameExtension ?? new X509SubjectAlternativeNameExtension(found.RawData, found.Critical)
            : null;

    private static bool DnsNameMatches(string pattern, string host)
    {
        if (!pattern.StartsWith("*.", StringComparison.Ordinal)) return string.Equals(pattern, host, StringComparison.OrdinalIgnoreCase);
        // A wildcard over a single label (*.example, *.com) names no one: clients refuse it.
        var parent = pattern[2..];
        var dot = host.IndexOf('.', StringComparison.Ordinal);
        return parent.Contains('.', StringComparison.Ordinal) && dot > 0 && string.Equals(parent, host[(dot + 1)..], StringComparison.OrdinalIgnoreCase);
    }

    private static byte[] Read(string option, string file)
    {
        if (Directory.Exists(file)) throw new ArgumentException($"{option}: '{file}' is a folder; name the file itself.");
        if (!File.Exists(file)) throw new ArgumentException($"{option}: no file at '{file}'.");
        // Reading a named pipe waits for a writer: the start (or a renewal's look at the files) hung for ever.
        if (Cli.FileKind.NotRegular(file) is { } kind) throw new ArgumentException($"{option}: '{file}' is {kind}, not a regular file.");
        try
        {
            return File.ReadAllBytes(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option}: '{file}' cannot be read ({e.GetType().Name}); the server's account must be able to read it.");
        }
    }

    /// <summary>A file holding the private key is refused when other users can read or write it, as the master key file is.
    /// A group may read it: Debian's convention for TLS keys is root:ssl-cert, mode 0640, the service's account in that group.</summary>
    private static void RefuseReadableByOthers(string option, string file)
    {
        if (!OperatingSystem.IsWindows() && File.Exists(file) && (File.GetUnixFileMode(file) & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            throw new ArgumentException($"{option}: '{file}' holds the TLS private key and is readable by other users; restrict it with 'chmod 600' (or 640 with a group such as ssl-cert).");
        }
    }

    private static (X509Certificate2, X509Certificate2Collection) LoadPem(Sources from, string certificateFile, string certificateText, string keyFile, string keyText, string? password)
    {
        var all = new X509Certificate2Collection();
        try
        {
            all.ImportFromPem(certificateText);
        }
        catch (CryptographicException)
        {
            throw new ArgumentException($"{from.Certificate}: '{certificateFile}' holds a PEM certificate that cannot be read.");
        }
        if (all.Count == 0) throw new ArgumentException($"{from.Certificate}: '{certificateFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----).");
        X509Certificate2 certificate;
        try
        {
            certificate = CertificateWithKey(from, certificateFile, certificateText, keyFile, keyText, password);
        }
        catch
        {
            foreach (var read in all) read.Dispose();
            throw;
        }
        var chain = new X509Certificate2Collection();
        for (var i = 1; i < all.Count; i++) chain.Add(all[i]);
        all[0].Dispose();
        return (certificate, chain);
    }

    private static X509Certificate2 CertificateWithKey(Sources from, string certificateFile, string certificateText, string keyFile, string keyText, string? password)
    {
        var encrypted = keyText.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
        if (encrypted && string.IsNullOrEmpty(password))
        {
            throw new ArgumentException($"{from.Key}: the key in '{keyFile}' is encrypted; give its password in ${PasswordVariable}.");
        }
        try
        {
            // The first certificate in the file is the server's; CreateFromPem takes it and the first key the key file holds.
            return encrypted ? X509Certificate2.CreateFromEncryptedPem(certificateText, keyText, password) : X509Certificate2.CreateFromPem(certificateText, keyText);
        }
        catch (ArgumentException)
        {
            throw new ArgumentException($"{from.Key}: the key in '{keyFile}' does not match the certificate in '{certificateFile}'.");
        }
        catch (CryptographicException)
        {
            throw new ArgumentException(encrypted
                ? $"{from.Key}: the key in '{keyFile}' cannot be read with the password in ${PasswordVariable}."
                : $"{from.Key}: the key in '{keyFile}' cannot be read (an RSA, EC or DSA key in PEM is expected).");
        }
    }

    private static (X509Certificate2, X509Certificate2Collection) LoadPkcs12(Sources from, string file, byte[] bytes, string? password)
    {
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(bytes, password);
        }
        catch (CryptographicException)
        {
            throw new ArgumentException($"{from.Certificate}: '{file}' is neither a PEM certificate (then give --tls-key or $VAUBAN_TLS_KEY) nor a PKCS#12 file that opens with the password in ${PasswordVariable}.");
        }
        var withKey = all.Where(certificate => certificate.HasPrivateKey).ToList();
        if (withKey.Count != 1)
        {
            foreach (var certificate in all) certificate.Dispose();
            throw new ArgumentException($"{from.Certificate}: the PKCS#12 file '{file}' holds {withKey.Count} certificates with a private key; it must hold exactly one, the server's.");
        }
        var chain = new X509Certificate2Collection();
        foreach (var other in all) if (!other.HasPrivateKey) chain.Add(other);
        return (withKey[0], chain);
    }
}
