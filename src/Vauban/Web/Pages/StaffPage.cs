// What every staff page shares: the request's person, the sign-in service, safe return URLs, the clock, and an act done
// answered by a redirect to the page (Post/Redirect/Get), which says what it did once.
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Vauban.Web.Pages;

public abstract class StaffPage : PageModel
{
    public PersonSession? Person => HttpContext.Person();

    protected PersonSignIn People => HttpContext.RequestServices.GetRequiredService<PersonSignIn>();

    protected VaubanStore Store => HttpContext.RequestServices.GetRequiredService<VaubanStore>();

    /// <summary>Now, by the server's clock (the one the records services and sessions keep time by).</summary>
    protected DateTimeOffset UtcNow => HttpContext.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();

    /// <summary>The key of a form that writes, made for each showing of the page (<see cref="SubmittedForms"/>): its hidden field
    /// <c>Submission</c>.</summary>
    public string FormKey => _formKey ??= SubmittedForms.NewKey();

    private string? _formKey;

    /// <summary>The key the posted form carried (absent from a form of before, or one not made by a page: then nothing is held).</summary>
    [BindProperty] public string? Submission { get; set; }

    /// <summary>Whether the posted form was already sent in this session (a double click, Back and send again): the act is not done
    /// again. Otherwise the key is claimed: <see cref="ReleaseSubmission"/> when the act is then not done, so the form may be sent
    /// again.</summary>
    protected bool AlreadySubmitted() => SubmittingSession is { } session && !Submitted.Claim(session, Submission!);

    protected void ReleaseSubmission()
    {
        if (SubmittingSession is { } session) Submitted.Release(session, Submission!);
    }

    /// <summary>The session whose form key was posted, or null when the post carried none (nothing is held then).</summary>
    private string? SubmittingSession => SubmittedForms.IsKey(Submission) ? Person?.Session.Id : null;

    private SubmittedForms Submitted => HttpContext.RequestServices.GetRequiredService<SubmittedForms>();

    /// <summary>To the re-authentication page, which brings the person back to this page by GET; what she typed is kept for that
    /// GET (<see cref="TakeDraft"/>), so that proving her factors again does not cost her the form.</summary>
    protected RedirectResult ReauthenticateKeeping(IReadOnlyDictionary<string, string?> typed)
    {
        if (Person is { } person) Drafts.Keep(person.Session.Id, Request.Path, typed);
        return Redirect(HttpContext.ReauthenticationUrl(Request.PathBase + Request.Path));
    }

    /// <summary>What <see cref="ReauthenticateKeeping"/> kept for this page in this session, once; null when nothing was.</summary>
    protected IReadOnlyDictionary<string, string?>? TakeDraft() => Person is { } person ? Drafts.Take(person.Session.Id, Request.Path) : null;

    private FormDrafts Drafts => HttpContext.RequestServices.GetRequiredService<FormDrafts>();

    /// <summary>The answer to a form sent again: back to <paramref name="page"/>, which shows what was done.</summary>
    protected RedirectResult SentTwice(PathString page) =>
        Acted("This form had already been sent: it was not sent again. What was recorded is shown here.", page);

    /// <summary>What the act just done did: set by the act, shown once by the page its answer redirects to.</summary>
    [TempData] public string? Done { get; set; }

    /// <summary>An act done: the answer sends the browser back to the page by GET (Post/Redirect/Get), which says
    /// <paramref name="done"/> once, so that a refresh or Back repeats nothing (another booking, another release).</summary>
    protected RedirectResult Acted(string done) => Acted(done, Request.Path);

    /// <summary>An act done, answered by a redirect to <paramref name="page"/> (a local path: the record the act created).</summary>
    protected RedirectResult Acted(string done, PathString page)
    {
        Done = done;
        return Redirect(Request.PathBase + page);
    }

    /// <summary>Only local paths: an open redirect after sign-in would make a fine phishing tool. Printable ASCII only: a
    /// browser drops tabs and newlines from a URL, so "/&lt;TAB&gt;/evil.example" would take it to //evil.example, and a
    /// newline or a non-ASCII letter in a Location header is a 500 (our own return URLs come escaped).</summary>
    protected static string SafeReturnUrl(string? returnUrl) =>
        returnUrl is { Length: > 0 and < 2000 } && returnUrl[0] == '/' && (returnUrl.Length == 1 || (returnUrl[1] != '/' && returnUrl[1] != '\\'))
            && returnUrl.All(c => c is > ' ' and <= '~')
            ? returnUrl : "/";

    /// <summary>The record of <paramref name="type"/> with this id when it is <paramref name="patientId"/>'s, found by a search of
    /// that patient's records (<c>_id</c> and <c>patient</c>) rather than read by its id: an id posted from one patient's page never
    /// reads another patient's record (a read the audit trail and the guard would count against that other patient). Another
    /// patient's record, or none, is NotFound; a refused search is its refusal.</summary>
    protected async Task<Records.RecordResult> OfPatientAsync(Access.AccessContext access, string type, string id, string patientId)
    {
        var page = await Store.Records.SearchAsync(access, type, [new("_id", id), new("patient", patientId)], null, false, HttpContext.RequestAborted);
        if (page.Status != Records.RecordStatus.Ok) return Records.RecordResult.Fail(page.Status, type, [.. page.Issues ?? []]);
        return page.Entries.FirstOrDefault(e => !e.Included && e.Type == type && e.Id == id && e.Json is not null) is { } entry
            ? new Records.RecordResult(Records.RecordStatus.Ok, type, entry.Id, entry.Version, entry.LastUpdated, entry.Json)
            : Records.RecordResult.Fail(Records.RecordStatus.NotFound, type);
    }

    /// <summary>Why an act on a patient's record was refused, in a page's words rather than the API's (whose diagnostics name FHIR
    /// paths and interactions a clinician has no use for), for the HTTP status the records service answered: the role
    /// (<paramref name="roleRefused"/>, when the role may not do the act at all), the care relationship, the guard's hold or its
    /// throttle. Only for what the page cannot say better (a record the service found invalid, say) does it add the service's own
    /// words, <paramref name="said"/>. The statuses a page answers itself (a reauthentication, a record changed meanwhile, one not
    /// found) are its own.</summary>
    protected static string ActRefusal(int status, string notDone, string? roleRefused, string? said) => status switch
    {
        403 when roleRefused is not null => $"{notDone} {roleRefused}",
        403 => $"{notDone} This patient is not in your care relationships now (a break-the-glass access may have ended): open the chart again.",
        423 => $"{notDone} Your account is held by the security officer: ask them, or your service's manager, to release it.",
        429 => $"{notDone} Too many records were opened or written in a short time: wait a moment and try again.",
        _ => string.IsNullOrWhiteSpace(said) ? notDone : $"{notDone} {said}",
    };

    /// <summary>The diagnostics of a refusal's issues, joined, for <see cref="ActRefusal"/>.</summary>
    protected static string? Said(IReadOnlyList<Fhir.Issue>? issues) => issues is { Count: > 0 } ? string.Join(" ", issues.Select(i => i.Diagnostics)) : null;

    protected async Task<string> ReadBodyAsync()
    {
        using var reader = new StreamReader(Request.Body);
        var buffer = new char[64 * 1024];
        var read = await reader.ReadBlockAsync(buffer, HttpContext.RequestAborted);
        return new string(buffer, 0, read);
    }

    protected static JsonResult Json(object value) => new(value);
}
