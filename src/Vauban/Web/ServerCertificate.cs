// The certificate `vauban serve` terminates TLS with (--tls-certificate, --tls-key): loaded and checked before the store is
// opened, so that every mistake an operator can make with it is one line naming the file, never a handshake that fails later.
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Vauban.Web;

public sealed class ServerCertificate
{
    /// <summary>The password of a PKCS#12 file or of an encrypted PEM key: from the environment only, since a command line is
    /// readable by every local account in the process list.</summary>
    public const string PasswordVariable = "VAUBAN_TLS_PASSWORD";

    /// <summary>Within this of its end, a certificate is still used, with a warning at start.</summary>
    private static readonly TimeSpan ExpiryWarning = TimeSpan.FromDays(30);

    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    private ServerCertificate(X509Certificate2 certificate, X509Certificate2Collection chain)
    {
        Certificate = certificate;
        Chain = chain;
    }

    /// <summary>The server's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The intermediate certificates that follow it in the file, sent with it so that clients can build the chain.</summary>
    public X509Certificate2Collection Chain { get; }

    /// <summary>What the operator should know at start (a certificate close to its end), or null.</summary>
    public string? Warning(DateTimeOffset now) => Certificate.NotAfter.ToUniversalTime() - now.UtcDateTime < ExpiryWarning
        ? $"the TLS certificate ({Certificate.Subject}) expires on {Certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC; renew it and restart the server."
        : null;

    /// <summary>Loads a PEM certificate (intermediates may follow it) and its PEM private key, or, when <paramref name="keyFile"/>
    /// is null, a PKCS#12 file holding both. <paramref name="password"/> opens a PKCS#12 file or an encrypted PEM key.
    /// Refuses with an <see cref="ArgumentException"/> whose message names the option and the file, never the key's content.</summary>
    public static ServerCertificate Load(string certificateFile, string? keyFile, string? password, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(certificateFile);
        var certificateBytes = Read("--tls-certificate", certificateFile);
        var certificateText = System.Text.Encoding.Latin1.GetString(certificateBytes); // a PEM file is ASCII; Latin-1 keeps a PKCS#12 file's bytes
        var isPem = certificateText.Contains("-----BEGIN", StringComparison.Ordinal);
        X509Certificate2 certificate;
        X509Certificate2Collection chain;
        if (keyFile is null)
        {
            if (isPem)
            {
                throw new ArgumentException($"--tls-certificate: '{certificateFile}' is a PEM file; give its private key with --tls-key (or a PKCS#12 .pfx file holding both).");
            }
            RefuseReadableByOthers("--tls-certificate", certificateFile);
            (certificate, chain) = LoadPkcs12(certificateFile, certificateBytes, password);
        }
        else
        {
            var keyText = System.Text.Encoding.ASCII.GetString(Read("--tls-key", keyFile));
            if (!keyText.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            {
                throw new ArgumentException($"--tls-key: '{keyFile}' holds no PEM private key (-----BEGIN PRIVATE KEY-----).");
            }
            RefuseReadableByOthers("--tls-key", keyFile);
            (certificate, chain) = LoadPem(certificateFile, certificateText, keyFile, keyText, password);
        }
        if (now.UtcDateTime < certificate.NotBefore.ToUniversalTime())
        {
            throw new ArgumentException($"--tls-certificate: the certificate in '{certificateFile}' is not valid before {certificate.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm} UTC.");
        }
        // Refused rather than served: the staff pages send Strict-Transport-Security, under which a browser offers no way past a
        // certificate error, and every API client refuses one, so an expired certificate would only delay the same outage
        // behind a server that seems to start.
        if (now.UtcDateTime > certificate.NotAfter.ToUniversalTime())
        {
            throw new ArgumentException($"--tls-certificate: the certificate in '{certificateFile}' expired on {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC; renew it.");
        }
        // Kestrel refuses such a certificate itself, but only once the store is open, in a stack trace.
        if (certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } usages
            && !usages.EnhancedKeyUsages.Cast<Oid>().Any(usage => usage.Value == ServerAuthentication))
        {
            throw new ArgumentException($"--tls-certificate: the certificate in '{certificateFile}' is not for server authentication (its extended key usage lacks serverAuth).");
        }
        return new ServerCertificate(certificate, chain);
    }

    private static byte[] Read(string option, string file)
    {
        if (Directory.Exists(file)) throw new ArgumentException($"{option}: '{file}' is a folder; name the file itself.");
        if (!File.Exists(file)) throw new ArgumentException($"{option}: no file at '{file}'.");
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

    private static (X509Certificate2, X509Certificate2Collection) LoadPem(string certificateFile, string certificateText, string keyFile, string keyText, string? password)
    {
        var all = new X509Certificate2Collection();
        try
        {
            all.ImportFromPem(certificateText);
        }
        catch (CryptographicException)
        {
            throw new ArgumentException($"--tls-certificate: '{certificateFile}' holds a PEM certificate that cannot be read.");
        }
        if (all.Count == 0) throw new ArgumentException($"--tls-certificate: '{certificateFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----).");
        var encrypted = keyText.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
        if (encrypted && string.IsNullOrEmpty(password))
        {
            throw new ArgumentException($"--tls-key: the key in '{keyFile}' is encrypted; give its password in ${PasswordVariable}.");
        }
        X509Certificate2 certificate;
        try
        {
            // The first certificate in the file is the server's; CreateFromPem takes it and the first key the key file holds.
            certificate = encrypted ? X509Certificate2.CreateFromEncryptedPem(certificateText, keyText, password) : X509Certificate2.CreateFromPem(certificateText, keyText);
        }
        catch (ArgumentException)
        {
            throw new ArgumentException($"--tls-key: the key in '{keyFile}' does not match the certificate in '{certificateFile}'.");
        }
        catch (CryptographicException)
        {
            throw new ArgumentException(encrypted
                ? $"--tls-key: the key in '{keyFile}' cannot be read with the password in ${PasswordVariable}."
                : $"--tls-key: the key in '{keyFile}' cannot be read (an RSA, EC or DSA key in PEM is expected).");
        }
        var chain = new X509Certificate2Collection();
        for (var i = 1; i < all.Count; i++) chain.Add(all[i]);
        all[0].Dispose();
        return (certificate, chain);
    }

    private static (X509Certificate2, X509Certificate2Collection) LoadPkcs12(string file, byte[] bytes, string? password)
    {
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(bytes, password);
        }
        catch (CryptographicException)
        {
            throw new ArgumentException($"--tls-certificate: '{file}' is neither a PEM certificate (then give --tls-key) nor a PKCS#12 file that opens with the password in ${PasswordVariable}.");
        }
        var withKey = all.Where(certificate => certificate.HasPrivateKey).ToList();
        if (withKey.Count != 1)
        {
            throw new ArgumentException($"--tls-certificate: the PKCS#12 file '{file}' holds {withKey.Count} certificates with a private key; it must hold exactly one, the server's.");
        }
        var chain = new X509Certificate2Collection();
        foreach (var other in all) if (!other.HasPrivateKey) chain.Add(other);
        return (withKey[0], chain);
    }
}
