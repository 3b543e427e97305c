// The shapes the guard recognises in a principal's requests, beyond volume: where it comes from (its source
// network and device class), and whether its reading walks the records — consecutive ids, family-name
// prefixes stepped one letter at a time, birth dates stepped a few days at a time. Each recogniser keeps a
// few numbers per principal and is fed under the principal's lock.
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Vauban.Guard;

/// <summary>
/// Known signals. The risk signals are each an alert (kind guard-signal, the detail starts with its name) and an
/// audit entry when they begin. <see cref="IdentityReads"/> is a volume signal like distinct patients: it has its own
/// levels (GuardLimits.IdentitiesPerHour and IdentitiesPerDay) and is named in the step-up and containment alerts it causes.
/// </summary>
public static class KnownGuardSignals
{
    public const string IdentityReads = "identity-reads";
    public const string NewSource = "new-source";
    public const string NewSourceForEstablishment = "new-source-for-establishment";
    public const string NewDevice = "new-device";
    public const string UnusualHour = "unusual-hour";
    public const string FailedSignIns = "failed-sign-ins";
    public const string ConsecutiveIds = "consecutive-ids";
    public const string NameSweep = "name-sweep";
    public const string BirthDateSweep = "birth-date-sweep";
}

/// <summary>The network a source address belongs to (IPv4 /24, IPv6 /64): a workstation moving within a ward's network is not new.</summary>
public static class SourceNetwork
{
    public static string? Of(string? address)
    {
        if (string.IsNullOrEmpty(address) || !IPAddress.TryParse(address, out var ip)) return null;
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        var bytes = ip.GetAddressBytes();
        if (ip.AddressFamily == AddressFamily.InterNetwork) return $"{bytes[0]}.{bytes[1]}.{bytes[2]}.0/24";
        return Convert.ToHexString(bytes, 0, 8) + "::/64";
    }
}

/// <summary>
/// A coarse class of the device from its User-Agent: browser family and operating system, or the tool or
/// library of a client ("browser:firefox/windows", "tool:curl", "library:python"). Coarse on purpose: a
/// browser update is not a new device, a script where a browser used to be is.
/// </summary>
public static class DeviceClass
{
    public static string? Of(string? userAgent)
    {
        if (string.IsNullOrWhiteSpace(userAgent)) return null;
        var ua = userAgent.Length > 512 ? userAgent[..512] : userAgent;
        bool Has(string s) => ua.Contains(s, StringComparison.OrdinalIgnoreCase);
        if (Has("curl/")) return "tool:curl";
        if (Has("wget/")) return "tool:wget";
        if (Has("python")) return "library:python";
        if (Has("java/") || Has("okhttp") || Has("apache-httpclient")) return "library:java";
        if (Has("go-http-client")) return "library:go";
        if (Has("node") || Has("axios")) return "library:node";
        if (Has("postman")) return "tool:postman";
        var os = Has("windows") ? "windows" : Has("android") ? "android" : Has("iphone") || Has("ipad") ? "ios" : Has("mac os") ? "macos" : Has("linux") ? "linux" : "other";
        var browser = Has("edg/") ? "edge" : Has("firefox/") ? "firefox" : Has("chrome/") || Has("chromium/") ? "chrome" : Has("safari/") ? "safari" : null;
        if (browser is not null) return $"browser:{browser}/{os}";
        var token = new string(ua.TakeWhile(c => char.IsAsciiLetter(c) || c == '-' || c == '.').Take(32).ToArray()).ToLowerInvariant();
        return "other:" + (token.Length == 0 ? "unknown" : token);
    }
}

/// <summary>Recognises reading that walks the records, fed one request at a time. Not thread-safe: used under the principal's lock.</summary>
internal sealed class EnumerationShapes
{
    private string? _idPrefix;
    private long _idNumber;
    private int _idRun;
    private string? _name;
    private int _nameSteps;
    private int _nameDirection;
    private DateOnly? _birthDate;
    private int _dateSteps;
    private int _dateDirection;

    /// <summary>How many times the shapes were fed or cleared: a taken-back feed is restored only while nothing came after it.</summary>
    private long _changes;

    /// <summary>The shapes as they are, to be put back (<see cref="TakeBack"/>) when what is fed next is an attempt abandoned and
    /// done again: the same read or search fed twice breaks a run (a step of 0) that the act, done once, extends.</summary>
    public Saved Save() => new(_idPrefix, _idNumber, _idRun, _name, _nameSteps, _nameDirection, _birthDate, _dateSteps, _dateDirection, _changes);

    /// <summary>The count of changes after an attempt's feed (<see cref="TakeBack"/>'s proof that nothing was fed since).</summary>
    public long Changes => _changes;

    /// <summary>Puts the shapes back as <paramref name="before"/> held them, when nothing was fed (or cleared) since the feed that left
    /// <paramref name="changesAfter"/>; otherwise another request of the principal came between, and the shapes stay as they are.
    /// The count of changes goes back too, so that the feeds of one attempt, taken back last first, each find theirs the last.</summary>
    public void TakeBack(Saved before, long changesAfter)
    {
        if (_changes != changesAfter) return;
        (_idPrefix, _idNumber, _idRun, _name, _nameSteps, _nameDirection, _birthDate, _dateSteps, _dateDirection, _changes) =
            (before.IdPrefix, before.IdNumber, before.IdRun, before.Name, before.NameSteps, before.NameDirection, before.BirthDate, before.DateSteps,
             before.DateDirection, before.Changes);
    }

    public readonly record struct Saved(string? IdPrefix, long IdNumber, int IdRun, string? Name, int NameSteps, int NameDirection,
        DateOnly? BirthDate, int DateSteps, int DateDirection, long Changes);

    /// <summary>A patient read by id; returns the run of consecutive ids it extends (1 when it starts one).</summary>
    public int ReadId(string id)
    {
        _changes++;
        var digits = 0;
        while (digits < id.Length && char.IsAsciiDigit(id[id.Length - 1 - digits])) digits++;
        if (digits is 0 or > 18)
        {
            _idPrefix = null;
            _idRun = 0;
            return 0;
        }
        var prefix = id[..^digits];
        var number = long.Parse(id.AsSpan(id.Length - digits), NumberStyles.None, CultureInfo.InvariantCulture);
        var step = Math.Abs(number - _idNumber);
        _idRun = _idPrefix == prefix && step is >= 1 and <= 3 ? _idRun + 1 : 1;
        _idPrefix = prefix;
        _idNumber = number;
        return _idRun;
    }

    /// <summary>A first search page's parameters: returns the name steps and birth-date steps of the sweeps they extend.</summary>
    public (int NameSteps, int DateSteps) Search(IReadOnlyList<KeyValuePair<string, string>> parameters)
    {
        _changes++;
        string? name = null;
        DateOnly? date = null;
        foreach (var (key, value) in parameters)
        {
            var bare = key.Split(':')[0];
            if (name is null && bare is "family" or "name" or "given") name = Letters(value);
            else if (date is null && bare == "birthdate") date = Date(value);
        }
        if (name is { Length: > 0 })
        {
            var direction = _name is { } last && last.Length == name.Length && string.CompareOrdinal(last, 0, name, 0, name.Length - 1) == 0
                ? name[^1] - last[^1] : 0;
            if (Math.Abs(direction) is >= 1 and <= 2 && (_nameSteps == 0 || Math.Sign(direction) == _nameDirection))
            {
                _nameSteps++;
                _nameDirection = Math.Sign(direction);
            }
            else _nameSteps = 0;
            _name = name;
        }
        if (date is { } d)
        {
            var days = _birthDate is { } previous ? d.DayNumber - previous.DayNumber : 0;
            if (Math.Abs(days) is >= 1 and <= 31 && (_dateSteps == 0 || Math.Sign(days) == _dateDirection))
            {
                _dateSteps++;
                _dateDirection = Math.Sign(days);
            }
            else _dateSteps = 0;
            _birthDate = d;
        }
        return (_nameSteps, _dateSteps);
    }

    public void Clear()
    {
        _changes++;
        _idPrefix = _name = null;
        _idRun = _nameSteps = _dateSteps = 0;
        _birthDate = null;
    }

    /// <summary>The letters of a searched name, lower-cased without accents (as the name index compares them), at most 12.</summary>
    /// <remarks>Folded by the index's own table (<see cref="Records.Search.TextNormalizer"/>): string.Normalize does nothing to
    /// non-ASCII text in this process (invariant globalization), so "Hélène" read as "hlne" where the index compares "helene".</remarks>
    private static string Letters(string value)
    {
        var letters = new System.Text.StringBuilder(12);
        foreach (var c in Records.Search.TextNormalizer.Fold(value))
        {
            if (char.IsAsciiLetter(c)) letters.Append(c);
            if (letters.Length == 12) break;
        }
        return letters.ToString();
    }

    private static DateOnly? Date(string value)
    {
        var text = value.Length > 2 && char.IsAsciiLetterLower(value[0]) && char.IsAsciiLetterLower(value[1]) ? value[2..] : value;
        if (text.Length >= 10 && DateOnly.TryParseExact(text[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)) return day;
        if (text.Length == 7 && DateOnly.TryParseExact(text + "-01", "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var month)) return month;
        return null;
    }
}
