// The query parameters R4 http.html gives an interaction on one record (read, vread, update, delete by id) and a create: _format
// and _pretty, and for a read _summary and _elements, which a record's read and vread apply (ResourceSubset), alone and in a
// bundle, and AuditEvent's honours only as _summary=false (the whole resource). Any other is refused, by a request of its own
// and by a bundle's entry alike, rather than ignored: a write with a query is not a conditional one, and a read that dropped
// _elements would return what the client did not ask for. (A bundle entry's _pretty, and its _format but JSON, are refused
// before: FormatParameters.EntryRefusal.)
namespace Vauban.Fhir;

public static class InstanceParameters
{
    /// <summary>The first parameter of <paramref name="query"/> the interaction does not honour (<paramref name="read"/>: a read or
    /// vread; <paramref name="subsets"/>: one that applies _summary and _elements), or null when it honours them all.</summary>
    public static string? Unhonoured(IEnumerable<KeyValuePair<string, string>> query, bool read, bool subsets = false) =>
        query.Where(p => !(p.Key is "_format" or "_pretty" || (read && (subsets ? p.Key is "_summary" or "_elements" : p.Key == "_summary" && p.Value == "false"))))
            .Select(p => p.Key).FirstOrDefault();

    /// <summary>Why <paramref name="parameter"/> is refused on <paramref name="interaction"/> ("a read", "an update by id");
    /// <paramref name="subsets"/> as given to <see cref="Unhonoured"/>.</summary>
    public static Issue Refusal(string parameter, string interaction, bool read, bool subsets = false) => read && !subsets && parameter is "_summary" or "_elements"
        ? Issue.NotSupported($"{parameter} is not supported on {interaction}: only _summary=false (the whole resource) is.")
        : Issue.Invalid($"'{parameter}' is not a parameter of {interaction}, which takes only _format{(read && subsets ? ", _pretty, _summary and _elements" : " and _pretty")}; "
            + "a conditional update or delete names its criteria on the type (Type?criteria), without an id.");
}
