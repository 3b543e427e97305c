// Form bodies (POST _search, the token endpoint) are client input: a body the form reader refuses is the client's
// mistake and gets a 400 that says why, never the 500 of an unhandled InvalidDataException.
namespace Vauban.Web;

internal static class FormReading
{
    /// <summary>What the form reader accepts (ASP.NET Core's FormOptions defaults, which Vauban keeps).</summary>
    public const string Limits = "at most 1,024 fields, names of at most 2,048 bytes and values of at most 4 MiB";

    /// <summary>The request's form, or why the form reader refused it (to follow "The form body …" or "The token
    /// request's form …"). The reason never quotes the body.</summary>
    public static async Task<(IFormCollection? Form, string? Refusal)> ReadFormOrRefusalAsync(this HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return (await request.ReadFormAsync(cancellationToken), null);
        }
        catch (InvalidDataException exception) when (exception.InnerException is InvalidOperationException)
        {
            // The URL decoder refuses a NUL (%00) and escapes that decode to one.
            return (null, "holds a character a form may not carry (a NUL, %00)");
        }
        catch (InvalidDataException)
        {
            return (null, $"is over the form reader's limits ({Limits})");
        }
    }
}
