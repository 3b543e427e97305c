// A renewed certificate taken without a restart. Hospitals renew by replacing the files (an internal PKI's deployment, an ACME
// client's hook); a server that kept the old certificate until restarted broke every client once it expired. The files are
// looked at every few seconds by a timer, never in a handshake, which only reads the certificate in use. A replacement is held
// to the checks of the start; one that fails them is not taken, and said once, with the previous certificate still served.
// A certificate near its end is said again once a day while it is served: the start's warning may be months old and lost.
using System.Net.Security;

namespace Vauban.Web;

internal sealed class ServerCertificateRenewal : IDisposable
{
    /// <summary>How often the files are looked at (their modification time, size and mode: one stat each).</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(3);

    /// <summary>How often a certificate within its last 30 days, or past its end, is said again while it is served.</summary>
    public static readonly TimeSpan ExpiryReminder = TimeSpan.FromDays(1);

    private readonly Lock _checking = new();
    private readonly ServerCertificate.PublicHost? _publicHost;
    private readonly TimeProvider _time;
    private DateTimeOffset? _remindedAt;
    private readonly ServerCertificate _initial;
    private ServerCertificate _current;
    private ServerCertificate? _retired;
    private SslStreamCertificateContext _context;
    private Stamp _taken;
    private Stamp? _failedOnce;
    private ILogger? _log;
    private Timer? _timer;

    /// <param name="publicHost">The host of an https:// public URL (and where it came from), which a renewed certificate should name too.</param>
    /// <param name="time">The clock (tests move it on).</param>
    public ServerCertificateRenewal(ServerCertificate initial, ServerCertificate.PublicHost? publicHost, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _current = initial;
        _initial = initial;
        // A certificate near its end: the start has said it already (ServeCommand), the next reminder is a day from now. One
        // already past its end (it was valid when read, before the store opened, which may take minutes) is said as an error
        // at once, by Start: every client refuses the server from the first handshake, not from tomorrow.
        var now = _time.GetUtcNow();
        if (initial.Warning(now) is not null && !Expired(initial, now)) _remindedAt = now;
        _context = ContextOf(initial);
        // Not stamped now: the files were read before the store opened, which may take a while, and may have been replaced
        // since. The first check reads them again; the same certificate found there is kept without a word.
        _taken = default;
        _publicHost = publicHost;
    }

    /// <summary>The certificate and chain a handshake presents: the one in use, read without a lock.</summary>
    public SslStreamCertificateContext Context => Volatile.Read(ref _context);

    /// <summary>Tests: the certificate in use.</summary>
    internal ServerCertificate Current => _current;

    /// <summary>Starts looking at the files, logging what it takes or refuses to <paramref name="log"/>.</summary>
    public void Start(ILogger log)
    {
        _log = log;
        RemindNow();
        _timer = new Timer(_ => Check(), null, CheckInterval, CheckInterval);
    }

    /// <summary>Tests: logs to <paramref name="log"/>, with no timer; the test calls <see cref="Check"/> itself.</summary>
    internal void StartUnwatched(ILogger log)
    {
        _log = log;
        RemindNow();
    }

    private void RemindNow()
    {
        lock (_checking) Remind();
    }

    private static bool Expired(ServerCertificate certificate, DateTimeOffset now) => certificate.Certificate.NotAfter.ToUniversalTime() <= now.UtcDateTime;

    /// <summary>Stops looking at the files. The certificate in use is left to the process's end: a handshake of the shutdown
    /// may still present it.</summary>
    public void Dispose()
    {
        _timer?.Dispose();
        lock (_checking) Retire(null);
    }

    /// <summary>Disposes the certificate replaced before the last one, and keeps <paramref name="replaced"/> until the next
    /// replacement: a handshake that read the context just before a replacement still presents it. The start's certificate is
    /// Kestrel's default and never disposed here.</summary>
    private void Retire(ServerCertificate? replaced)
    {
        _retired?.Dispose();
        _retired = ReferenceEquals(replaced, _initial) ? null : replaced;
    }

    /// <summary>One look at the files (taking a replacement), then the daily reminder of an expiring certificate.</summary>
    internal void Check()
    {
        // A slow disk could make checks overlap; one at a time, and a late one is skipped.
        if (!_checking.TryEnter()) return;
        try
        {
            TakeReplacement();
            Remind();
        }
        finally
        {
            _checking.Exit();
        }
    }

    private void TakeReplacement()
    {
        try
        {
            var seen = Stamp.Of(_current);
            if (seen == _taken) return;
            ServerCertificate renewed;
            try
            {
                renewed = _current.Reload(_time.GetUtcNow());
            }
            catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                // Files are replaced one after the other, not at once: a certificate beside the previous key is a renewal half
                // done. Refused without a word until the files stay the same for one more check, then said once, until they change.
                if (seen != _failedOnce)
                {
                    _failedOnce = seen;
                    return;
                }
                _taken = seen;
                var reason = e is ArgumentException ? e.Message : $"the files cannot be read ({e.GetType().Name}).";
                _log?.LogWarning("The replaced TLS certificate files were not taken; still serving {Subject} (SHA-256 {Thumbprint}, valid until {NotAfter:yyyy-MM-dd HH:mm} UTC): {Reason}",
                    _current.Certificate.Subject, _current.Thumbprint, _current.Certificate.NotAfter.ToUniversalTime(), reason);
                return;
            }
            _taken = seen;
            _failedOnce = null;
            // The same certificate written again; new intermediates beside the same leaf are a renewal all the same.
            if (renewed.Thumbprint == _current.Thumbprint && SameChain(renewed, _current))
            {
                renewed.Dispose();
                return;
            }
            try
            {
                Volatile.Write(ref _context, ContextOf(renewed));
            }
            catch
            {
                renewed.Dispose();
                throw;
            }
            Retire(_current);
            _current = renewed;
            _log?.LogInformation("TLS certificate renewed: now serving {Subject} (SHA-256 {Thumbprint}), valid until {NotAfter:yyyy-MM-dd HH:mm} UTC, from {File}",
                renewed.Certificate.Subject, renewed.Thumbprint, renewed.Certificate.NotAfter.ToUniversalTime(), renewed.CertificateFile);
            if (renewed.Warning(_time.GetUtcNow()) is { } expiring)
            {
                _remindedAt = _time.GetUtcNow();
                _log?.LogWarning("{Warning}", expiring);
            }
            if (_publicHost is not null && renewed.NamesWarning(_publicHost) is { } unnamed) _log?.LogWarning("{Warning}", unnamed);
        }
        catch (Exception e)
        {
            // Anything unforeseen (building the handshake context of a certificate that passed the checks): the timer's thread
            // must not end the process; the certificate in use stays.
            _taken = Stamp.Of(_current);
            _log?.LogWarning("The replaced TLS certificate files were not taken; still serving {Subject} (SHA-256 {Thumbprint}): {Reason}",
                _current.Certificate.Subject, _current.Thumbprint, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>A certificate in use within its last 30 days is said again once a day, as an error once past its end (every
    /// client then refuses the server); a renewal stops it.</summary>
    private void Remind()
    {
        var now = _time.GetUtcNow();
        if (_current.Warning(now) is not { } warning)
        {
            _remindedAt = null;
            return;
        }
        if (_remindedAt is { } last && now - last < ExpiryReminder) return;
        _remindedAt = now;
        if (Expired(_current, now)) _log?.LogError("{Warning}", warning);
        else _log?.LogWarning("{Warning}", warning);
    }

    private static bool SameChain(ServerCertificate a, ServerCertificate b) =>
        a.Chain.Select(c => c.Thumbprint).SequenceEqual(b.Chain.Select(c => c.Thumbprint), StringComparer.Ordinal);

    // As Kestrel builds it from a certificate and the intermediates that follow it.
    private static SslStreamCertificateContext ContextOf(ServerCertificate certificate) =>
        SslStreamCertificateContext.Create(certificate.Certificate, certificate.Chain);

    /// <summary>What a replacement changes in the files: their modification time and size, and their mode (a key file made
    /// readable by others, then restricted again, is the same bytes).</summary>
    private readonly record struct Stamp(FileFacts Certificate, FileFacts? Key)
    {
        public static Stamp Of(ServerCertificate certificate) =>
            new(FileFacts.Of(certificate.CertificateFile), certificate.KeyFile is null ? null : FileFacts.Of(certificate.KeyFile));
    }

    private readonly record struct FileFacts(DateTime Modified, long Size, UnixFileMode Mode)
    {
        // Follows a symbolic link (an ACME client's live/ links to archive/), so that a link moved to new files is a change.
        public static FileFacts Of(string file)
        {
            try
            {
                var info = new FileInfo(file);
                if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target) info = target;
                if (info.Exists) return new FileFacts(info.LastWriteTimeUtc, info.Length, OperatingSystem.IsWindows() ? default : info.UnixFileMode);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // a link to nowhere, a folder that cannot be listed: as missing, which the reload then says in its own words
            }
            return new FileFacts(DateTime.MinValue, -1, default);
        }
    }
}
