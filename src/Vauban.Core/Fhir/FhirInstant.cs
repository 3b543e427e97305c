using System.Globalization;

namespace Vauban.Fhir;

/// <summary>meta.lastUpdated and other instants: UTC, millisecond precision, as FHIR writes them.</summary>
public static class FhirInstant
{
    public static string Format(long unixMilliseconds) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>The HTTP-date form for Last-Modified headers.</summary>
    public static string Http(long unixMilliseconds) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds).ToString("R", CultureInfo.InvariantCulture);
}
