using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Vauban.Access;
using Vauban.Records;

namespace Vauban.Web.Pages.Patients;

/// <summary>
/// Finding a patient: by family name (starts with), given name, birth date or national identifier, through the records
/// service's search, so the person sees only the patients their role and care relationships open, each result is audited
/// and the guard counts them. The form is posted, never sent in the URL: names and NIRs stay out of browser history,
/// proxies and access logs (ADR 0003). A next page is the search's own sealed token, bound to this person. The POST is
/// answered by a redirect to <c>/patients?results=…</c>, the form sealed for this person and sign-in for 15 minutes, whose GET
/// runs the search (Post/Redirect/Get): Back from a chart shows the results again rather than asking to send the form again.
/// </summary>
[RequireSession(SessionStage.Full)]
public sealed class PatientSearchModel : StaffPage
{
    /// <summary>Patients a page lists: below the guard's default step-up for a person (15 patients a minute), so that looking
    /// at one page of results does not by itself ask for both factors again; each patient listed counts.</summary>
    public const int PageSize = 10;

    [BindProperty] public string? Family { get; set; }
    [BindProperty] public string? Given { get; set; }
    [BindProperty] public string? BirthDate { get; set; }
    [BindProperty] public string? Identifier { get; set; }
    [BindProperty] public string? Next { get; set; }

    public string? Error { get; private set; }
    public bool Searched { get; private set; }
    public IReadOnlyList<PatientIdentity> Results { get; private set; } = [];
    public string? NextPage { get; private set; }
    public int? Total { get; private set; }

    /// <summary>Patients outside the person's care relationships that her exact identifying search (a complete NIR with its valid
    /// key) names, when none in her care does and her role may break the glass: each offered with the way to break the glass,
    /// since no clinician knows a record's id (RecordsService.OutsideCareMatchesAsync).</summary>
    public IReadOnlyList<PatientIdentity> OutsideCare { get; private set; } = [];

    /// <summary>Whether this person's role may search patients at all (the security officer and the administrator may not).</summary>
    public bool MaySearch => HttpContext.PersonAccess() is { } access && Store.Policy.Authorize(access, Interaction.Search, "Patient").Allowed;

    /// <summary>The role registers patients (admissions): the page links to the registration form.</summary>
    public bool MayRegister => HttpContext.PersonAccess() is { } access && RegisterModel.MayRegisterAs(access, Store.Policy);

    /// <summary>The sealed token of a page the guard held back until both factors were given again (/account/reauth comes back
    /// here with it): the page offers to show it, by the same POST as "Next". Only a token goes through the URL, never a value
    /// searched for; it opens nothing for another person, and expires as a next page does.</summary>
    [BindProperty(SupportsGet = true)] public string? Resume { get; set; }

    /// <summary>How long the results of a search can be shown again by their URL (Back from a chart): a few charts opened from
    /// them, not a day's work — a search is run again each time, and counts as any.</summary>
    public static readonly TimeSpan ResultsLifetime = TimeSpan.FromMinutes(15);

    /// <summary>The sealed token of the search whose results this page shows (the POST's redirect puts it in the URL): the form
    /// as typed, bound to this person and this sign-in, expiring after <see cref="ResultsLifetime"/> (RecordsService.SealSearchForm).</summary>
    [BindProperty(SupportsGet = true, Name = "results")] public string? ResultsToken { get; set; }

    /// <summary>Why the results asked for are not shown (expired, another sign-in's, altered): the empty form follows.</summary>
    public string? Gone { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        // Bounded as a return URL is (/account/reauth keeps one under 2,000 characters); a token is base64url.
        if (Resume is not null && !IsToken(Resume)) Resume = null;
        if (ResultsToken is null) return Page();
        if (HttpContext.PersonAccess() is not { } access || Person is not { } person) return Redirect("/account/signin");
        if (!IsToken(ResultsToken) || Store.Records.OpenSearchForm(access, person.Session.Id, ResultsToken) is not { } form)
        {
            // A token of another person or sign-in, altered, or past its time says no more than that: the empty form, no error page.
            ResultsToken = null;
            Gone = "These search results are no longer available (they are kept for "
                + ResultsLifetime.TotalMinutes.ToString(System.Globalization.CultureInfo.InvariantCulture) + " minutes, in the session that searched): search again.";
            return Page();
        }
        string? Value(string name) => form.FirstOrDefault(p => p.Key == name).Value;
        (Family, Given, BirthDate, Identifier, Next) = (Value("family"), Value("given"), Value("birthdate"), Value("identifier"), Value("next"));
        return await ShowAsync(access);
    }

    private static bool IsToken(string value) => value.Length <= 1500 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>"Open by id": to the chart, whose answer (the record, or the way to break the glass) is the records service's. Posted,
    /// as the search is: what is typed (an NIR or a name in the wrong field, say) never goes into a URL — a GET put it in the
    /// browser's history and the proxies' logs before the server could refuse it.</summary>
    public IActionResult OnPostOpen([FromForm(Name = "id")] string? id)
    {
        id = id?.Trim();
        Response.StatusCode = 400;
        // An NIR typed here instead of in the identifier field would go on into the chart's URL (history, proxies, logs); no
        // record id is one (the store refuses them), so it is refused here and not redirected.
        if (id is not null && IdRules.IsIdentifying(id))
        {
            Error = "This looks like a social-security number (NIR), not a record id: search with it in the identifier field above.";
            return Page();
        }
        if (IdRules.IsValid(id)) return Redirect("/patients/" + Uri.EscapeDataString(id!));
        Error = "A patient id is 1 to 64 letters, digits, '-' and '.'.";
        return Page();
    }

    /// <summary>The search posted (or a next page's token): held to the form's rules, then answered by a redirect to its results
    /// (303, Post/Redirect/Get) with the form sealed in the URL, so that Back from a chart shows the results again without asking
    /// to send the form again. The search is run when the results are shown, never on the POST: once, audited and guarded.</summary>
    public IActionResult OnPost()
    {
        if (HttpContext.PersonAccess() is not { } access || Person is not { } person) return Redirect("/account/signin");
        if (Refused() is { } refused) return refused;
        var form = Filled(("family", Family), ("given", Given), ("birthdate", BirthDate), ("identifier", Identifier), ("next", Next));
        var token = Store.Records.SealSearchForm(access, person.Session.Id, form, ResultsLifetime);
        Response.Headers.Location = Request.PathBase + "/patients?results=" + token;
        return StatusCode(StatusCodes.Status303SeeOther);
    }

    /// <summary>The page saying why the form as typed is not searched (a 400), or null when it may be.</summary>
    private PageResult? Refused()
    {
        // The form's date field gives year-month-day; anything else (a day that does not exist, typed where the field is text) is
        // said in the page's words, not the FHIR search's ("'birthdate' expects a FHIR date… prefixed by eq, ne…").
        if (!string.IsNullOrWhiteSpace(BirthDate)
            && !DateOnly.TryParseExact(BirthDate.Trim(), ["yyyy-MM-dd", "yyyy-MM", "yyyy"], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out _))
        {
            return Refuse("Give the birth date as a day that exists (year-month-day), or a year or a month (year-month).");
        }
        // A NIR whose key does not match its 13 digits is a typing error: said as registration says it, and not searched for (it
        // found no one, and the page said no patient in her care matched).
        if (Identifier is not null && Nir.HasWrongKey(Identifier)) return Refuse("The control key of this NIR does not match its first 13 digits: check each digit.");
        if (string.IsNullOrEmpty(Next) && new[] { Family, Given, BirthDate, Identifier }.All(string.IsNullOrWhiteSpace))
        {
            return Refuse("Give a family name, a given name, a birth date or an identifier.");
        }
        return null;
    }

    /// <summary>The fields given (not empty), trimmed, in order: the form sealed in the results' URL, or the search's parameters.</summary>
    private static List<KeyValuePair<string, string>> Filled(params (string Name, string? Value)[] fields) =>
        [.. fields.Where(f => !string.IsNullOrWhiteSpace(f.Value)).Select(f => new KeyValuePair<string, string>(f.Name, f.Value!.Trim()))];

    private PageResult Refuse(string error)
    {
        Response.StatusCode = 400;
        Error = error;
        return Page();
    }

    /// <summary>The results of the search the URL's token holds: run as any search (authorized, guarded, audited each time it
    /// is shown).</summary>
    private async Task<IActionResult> ShowAsync(AccessContext access)
    {
        if (Refused() is { } refused) return refused;
        var parameters = Filled(("family", Family), ("given", Given), ("birthdate", BirthDate), ("identifier", WithNirKey(Identifier?.Replace(" ", "", StringComparison.Ordinal))));
        var next = string.IsNullOrEmpty(Next) ? null : Next;
        parameters.Add(new("_count", PageSize.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var page = await Store.Records.SearchAsync(access, "Patient", parameters, next, lenient: false, HttpContext.RequestAborted);
        if (page.Status != RecordStatus.Ok)
        {
            if (page.Status == RecordStatus.ReauthenticationRequired)
            {
                return Redirect(HttpContext.ReauthenticationUrl(page.ThisPage is { } held ? "/patients?resume=" + Uri.EscapeDataString(held) : "/patients"));
            }
            Response.StatusCode = RecordStatusCodes.Http(page.Status);
            Error = Said(page.Issues) ?? "The search was refused.";
            return Page();
        }
        Searched = true;
        Results = PatientChart.Matched(page.Entries)
            // Names are encrypted, so the database cannot order by them; a page is put in order here.
            .OrderBy(p => p.Name, StringComparer.InvariantCultureIgnoreCase).ToList();
        NextPage = page.NextPage;
        Total = page.Total;
        if (next is not null) ShowSearched(page.Searched);
        else if (Results.Count == 0 && await OutsideCareAsync(access, parameters) is { } held) return held;
        return Page();
    }

    /// <summary>A first page that found no one in her care, when its identifier is a complete NIR with its valid key and her role
    /// may break the glass: the patients outside her care the same criteria find, through the records service (guarded, audited
    /// as her search). Anything else — a name or a prefix alone, a role that may not break the glass — is offered nothing.</summary>
    private async Task<IActionResult?> OutsideCareAsync(AccessContext access, List<KeyValuePair<string, string>> parameters)
    {
        if (Identifier is null || Nir.Normalize(Identifier) is not { } nir || !BreaksTheGlass(access)) return null;
        var exact = parameters.Where(p => p.Key is not ("identifier" or "_count")).Append(new("identifier", nir)).ToList();
        if (!RecordsService.IsExactIdentifying(exact)) return null;
        var found = await Store.Records.OutsideCareMatchesAsync(access, exact, HttpContext.RequestAborted);
        if (found.Status == RecordStatus.ReauthenticationRequired) return Redirect(HttpContext.ReauthenticationUrl("/patients"));
        if (found.Status == RecordStatus.Ok)
        {
            OutsideCare = PatientChart.Matched(found.Entries).OrderBy(p => p.Name, StringComparer.InvariantCultureIgnoreCase).ToList();
        }
        else
        {
            Response.StatusCode = RecordStatusCodes.Http(found.Status);
            Error = Said(found.Issues) ?? "The search was refused.";
        }
        return null;
    }

    private static bool BreaksTheGlass(AccessContext access) => access.Principal.Role is { } role && RolePermissions.MayBreakTheGlass(role);

    /// <summary>A next or resumed page's form shows the search it is a page of, read back from the page's own token (the
    /// criteria were posted once, and go through no URL): after re-authentication the person sees what they had typed.</summary>
    private void ShowSearched(IReadOnlyList<KeyValuePair<string, string>>? searched)
    {
        string? Value(string name) => searched?.FirstOrDefault(p => p.Key == name).Value;
        Family = Value("family");
        Given = Value("given");
        BirthDate = Value("birthdate");
        // The identifier as typed: WithNirKey added the NIR with its key as a second value.
        Identifier = Value("identifier")?.Split(',')[0];
    }

    /// <summary>An identifier as typed, and, when it is the first 13 characters of a NIR (the number on a carte Vitale is
    /// often read out without its key), also the whole NIR with its key: "either". Typed 13 digits found nothing, since
    /// patients are filed under their 15-character NIR; an establishment's own 13-digit number still matches as typed.</summary>
    public static string? WithNirKey(string? identifier)
    {
        return identifier is { Length: 13 } && Nir.TryComputeKey(identifier, out var key) ? identifier + "," + identifier.ToUpperInvariant() + key : identifier;
    }
}
