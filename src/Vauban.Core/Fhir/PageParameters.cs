// A paging link (_page=<sealed token>) carries the whole search, history or $everything it continues. A parameter given beside
// it would be ignored — a criterion such as _id=x would widen the answer without a word, a _count would not be the page's — so
// it is refused, as an unknown parameter is; _format and _pretty, which every interaction takes, are the exceptions.
namespace Vauban.Fhir;

public static class PageParameters
{
    /// <summary>The first parameter of <paramref name="names"/> that may not stand beside _page, when _page is among them; else null.</summary>
    public static string? Beside(IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Contains("_page") ? list.FirstOrDefault(n => n is not ("_page" or "_format" or "_pretty")) : null;
    }

    public static Issue Refusal(string parameter) => Issue.Invalid(
        $"'{parameter}' is given beside _page: a paging link carries its whole query, so follow it as given, or run a new query with the parameters wanted.", parameter);
}
