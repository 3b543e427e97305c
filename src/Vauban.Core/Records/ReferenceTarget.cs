namespace Vauban.Records;

/// <summary>Local references ("Patient/123", "Patient/123/_history/2") in the form the index stores them: "Patient/123".</summary>
internal static class ReferenceTarget
{
    public static bool TryParseLocal(string reference, out string target, out string type)
    {
        target = type = "";
        if (reference.Length == 0 || reference[0] == '#' || reference.Contains("://", StringComparison.Ordinal) || reference.StartsWith("urn:", StringComparison.Ordinal)) return false;
        var parts = reference.Split('/');
        if (parts.Length is not (2 or 4)) return false;
        if (parts.Length == 4 && parts[2] != "_history") return false;
        if (!TypeCodes.TryGet(parts[0], out _) || !IdRules.IsValid(parts[1])) return false;
        type = parts[0];
        target = parts[0] + "/" + parts[1];
        return true;
    }
}

public static class IdRules
{
    /// <summary>A version id as this server writes them ("1", "2", …): a positive whole number without leading zeros. "01" is
    /// another id (a versionId is a string), so it names no version here.</summary>
    public static bool TryParseVersion(string? text, out int version)
    {
        version = 0;
        return text is { Length: > 0 } && text[0] != '0'
            && int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out version);
    }

    /// <summary>FHIR id: [A-Za-z0-9\-\.]{1,64}.</summary>
    public static bool IsValid(string? id) => id is not null && IsValid(id.AsSpan());

    /// <summary>FHIR id: [A-Za-z0-9\-\.]{1,64}, on a part of a larger text (a reference's id).</summary>
    public static bool IsValid(ReadOnlySpan<char> id)
    {
        if (id.IsEmpty || id.Length > 64) return false;
        foreach (var c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '.')) return false;
        }
        return true;
    }

    public static string NewId() => Guid.CreateVersion7().ToString("D");

    /// <summary>Whether an id is a NIR (15 characters with a valid control key), also when written with the '-' or '.' an id may
    /// hold between its digits ("1-80-03-44-109-123-45"): ids are stored, indexed and referenced in clear (ADR 0003), and a
    /// NIR must never be (invariant 4). A client choosing its ids (update as create, import) must not use the patient's
    /// social-security number.</summary>
    public static bool IsIdentifying(ReadOnlySpan<char> id)
    {
        if (id.Length < NirLength) return false;
        Span<char> compact = stackalloc char[NirLength];
        var length = 0;
        foreach (var c in id)
        {
            if (c is '-' or '.') continue;
            if (length == NirLength) return false;
            compact[length++] = char.ToUpperInvariant(c);
        }
        return length == NirLength && Nir.IsValid(new string(compact));
    }

    private const int NirLength = 15;

    public const string IdentifyingIdMessage = "ids are stored in clear, so they must not identify a patient";
}
