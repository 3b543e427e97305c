// Form bodies (POST _search, the token endpoint) are client input: a body that breaks the form reader's limits is
// the client's mistake and gets a 400 that says which limit, never the 500 of an unhandled InvalidDataException.
namespace Vauban.Web;

internal static class FormReading
{
    /// <summary>What the form reader accepts (ASP.NET Core's FormOptions defaults, which Vauban keeps).</summary>
    public const string Limits = "at most 1,024 fields, names of at most 2,048 bytes and values of at most 4 MiB";

    /// <summary>The request's form, or null when it is over the form reader's <see cref="Limits"/>.</summary>
    public static async Task<IFormCollection?> ReadFormOrNullAsync(this HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await request.ReadFormAsync(cancellationToken);
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }
}
