// A reason chosen in a page's short list (cancelling an appointment, stopping a prescription), with an optional comment, read
// into the FHIR CodeableConcept the record keeps: the code and its official display in the coding, the reason in the page's
// words with the comment as text (R4: "as seen/selected/uttered by the user").
using System.Text.Json.Nodes;
using Vauban.Access;
using Vauban.Fhir;

namespace Vauban.Web.Pages.Patients;

public static class ChosenReason
{
    public const int MaximumCommentLength = 200;

    /// <param name="reason">The choice posted, found in the page's list; null when it is not one of them.</param>
    /// <param name="withoutCode">The list's choice that has no code (its words and the comment only); it needs the comment.</param>
    public static (JsonObject? Reason, string? Problem) Read(string system, KnownCancellationReasons.Reason? reason, string? comment, string? withoutCode = null)
    {
        if (reason is null) return (null, "Choose the reason in the list.");
        var said = string.IsNullOrWhiteSpace(comment) ? null : comment.Trim();
        if (said is { Length: > MaximumCommentLength }) return (null, $"The comment is at most {MaximumCommentLength} characters.");
        if (said is not null && StatedText.HasHiddenCharacters(said))
        {
            return (null, "The comment holds control or invisible characters (zero-width, direction overrides): type it plainly.");
        }
        var text = said is null ? reason.Label : reason.Label + " — " + said;
        if (reason.Code == withoutCode)
        {
            return said is null ? (null, "Say the reason in the comment.") : (new JsonObject { ["text"] = said }, null);
        }
        return (new JsonObject
        {
            ["coding"] = new JsonArray(new JsonObject { ["system"] = system, ["code"] = reason.Code, ["display"] = reason.Display }),
            ["text"] = text,
        }, null);
    }
}
