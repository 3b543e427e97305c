// _format and _pretty (R4 http.html, "Parameters for all interactions"): how an answer is written, not what it holds. The
// request that is answered names them — alone, or the request that posts a Bundle for all its entries at once: an entry's answer
// is written within the Bundle, so an entry's request.url cannot ask its own (FhirHttp.CheckFormat checks a request's; the
// records service a bundle entry's).
namespace Vauban.Fhir;

public static class FormatParameters
{
    /// <summary>Whether a _format value asks for JSON, the one format this server writes: json, application/json, or
    /// application/fhir+json with or without parameters ("fhir json": its '+' sent unencoded and read as a space, as many clients do).</summary>
    public static bool IsJson(string format)
    {
        format = format.Replace("fhir json", "fhir+json", StringComparison.Ordinal);
        return format is "json" or "application/json" or "application/fhir+json" || format.StartsWith("application/fhir+json", StringComparison.Ordinal);
    }

    /// <summary>Why a bundle entry's _pretty or _format (in <paramref name="query"/>, its request.url's) is refused, with its status, or
    /// null. _pretty indents the whole response or none of it, as the request posting the Bundle asks: an entry's cannot be honoured, and
    /// is refused rather than ignored. _format asking for JSON is what the entry gets; any other is 406, as alone.</summary>
    /// <param name="where">The entry (Bundle.entry[3]).</param>
    public static (int Status, Issue Issue)? EntryRefusal(IEnumerable<KeyValuePair<string, string>> query, string where)
    {
        foreach (var (name, value) in query)
        {
            if (name == "_pretty")
            {
                return (400, Issue.Invalid($"{where}: _pretty has no place in an entry's request.url: the response Bundle is written as a whole, indented or not "
                    + "as the request that posts it asks (POST [base]?_pretty=true).", where + ".request.url"));
            }
            if (name == "_format" && !IsJson(value))
            {
                return (406, Issue.Error("not-supported", $"{where}: an entry's answer is written within the response Bundle, in JSON: its _format may ask "
                    + "only for JSON (json, application/fhir+json), and the Bundle's format is the posting request's.", where + ".request.url"));
            }
        }
        return null;
    }
}
