using Vauban.Fhir;
using Vauban.Guard;

namespace Vauban.Records;

/// <summary>
/// Outcomes of record interactions. <see cref="ReauthenticationRequired"/>: the guard asks a person to prove both factors
/// again (401); <see cref="Locked"/>: the guard has suspended the session or client, or locked the account (423);
/// <see cref="Damaged"/>: a stored record failed its integrity check and was not shown (500); <see cref="Unprocessable"/>: a
/// well-formed resource that a rule of this server refuses — a patient reference it does not follow, or that names no patient
/// here (422, FHIR R4 http.html: "violated applicable FHIR profiles or server business rules").
/// </summary>
public enum RecordStatus { Ok, Created, NoContent, NotFound, Gone, PreconditionFailed, Conflict, Invalid, Forbidden, ReauthenticationRequired, Locked, Damaged, TooManyRequests, Unprocessable }

public static class RecordStatusCodes
{
    /// <summary>The one mapping from record outcomes to HTTP status codes (API responses and bundle entries).</summary>
    public static int Http(RecordStatus status) => status switch
    {
        RecordStatus.Ok => 200,
        RecordStatus.Created => 201,
        RecordStatus.NoContent => 204,
        RecordStatus.NotFound => 404,
        RecordStatus.Gone => 410,
        RecordStatus.PreconditionFailed => 412,
        RecordStatus.Conflict => 409,
        RecordStatus.Forbidden => 403,
        RecordStatus.ReauthenticationRequired => 401,
        RecordStatus.Locked => 423,
        RecordStatus.Damaged => 500,
        RecordStatus.TooManyRequests => 429,
        RecordStatus.Unprocessable => 422,
        _ => 400,
    };
}

/// <summary>The outcome of one record interaction: the resource as stored (JSON), or the issues that explain why not.</summary>
public sealed record RecordResult(RecordStatus Status, string Type, string? Id = null, int Version = 0, long LastUpdated = 0, byte[]? Json = null, IReadOnlyList<Issue>? Issues = null)
{
    public static RecordResult Fail(RecordStatus status, string type, params Issue[] issues) => new(status, type, Issues: issues);

    /// <summary>The guard's refusal as an outcome: a step-up is 401 (<c>login</c>: prove both factors again), a reason required
    /// 403 (<c>business-rule</c>), a containment 423 (<c>security</c>).</summary>
    public static RecordResult Held(GuardDecision decision, string type) => decision.Verdict switch
    {
        GuardVerdict.Admit => throw new ArgumentException("An admitted request is not held.", nameof(decision)),
        GuardVerdict.StepUp => Fail(RecordStatus.ReauthenticationRequired, type, Issue.Error("login", decision.Reason!)),
        GuardVerdict.ReasonRequired => Fail(RecordStatus.Forbidden, type, Issue.Error("business-rule", decision.Reason!)),
        _ => Fail(RecordStatus.Locked, type, Issue.Error("security", decision.Reason!)),
    };
}

/// <param name="Made">For a history entry: how the version was written (its request method and the status answered).</param>
public sealed record SearchEntry(string Type, string Id, int Version, long LastUpdated, byte[]? Json, bool Included, bool Deleted = false, VersionMade Made = VersionMade.Unknown);

/// <summary>
/// How a version was written, stored with it as this small code (resources.made, carried into resource_history) and shown by
/// history as the entry's request method and response status. <see cref="Unknown"/>: written before the code was stored
/// (schema step 13); history then says what was said before: version 1 POST 201, a deletion DELETE 204, any other PUT 200.
/// </summary>
public enum VersionMade
{
    Unknown = 0,
    /// <summary>POST, answered 201.</summary>
    Created = 1,
    /// <summary>PUT of an id that did not exist or was deleted (update as create, a load keeping its ids), answered 201.</summary>
    CreatedByUpdate = 2,
    /// <summary>PUT of an existing record, answered 200.</summary>
    Updated = 3,
    /// <summary>DELETE, answered 204.</summary>
    Deleted = 4,
    /// <summary>PATCH of an existing record, answered 200.</summary>
    Patched = 5,
}

/// <summary>A page of search or history results; <see cref="NextPage"/> is an opaque token for the next page.</summary>
public sealed record SearchPage(RecordStatus Status, IReadOnlyList<SearchEntry> Entries, int? Total, string? NextPage, IReadOnlyList<Issue>? Issues = null)
{
    /// <summary>An opaque token that leads to this page again, for its self link: the token it was reached through, or for a
    /// first page one sealed as a next link is, holding the parameters the search used (ignored ones left out) — never the
    /// values themselves in a URL (ADR 0003). On a page refused with <see cref="RecordStatus.ReauthenticationRequired"/>, the
    /// token of the page refused, to come back to once both factors are given again.</summary>
    public string? ThisPage { get; init; }

    /// <summary>Warnings about a page that succeeded (it left out some of what was asked for), sent as the Bundle's
    /// OperationOutcome entry (search mode "outcome"); null when there are none.</summary>
    public IReadOnlyList<Issue>? Outcome { get; init; }

    /// <summary>The parameters the page searched with, as given (from its token, for a next page): for the page's form to show
    /// the search it is a page of, without the values ever going through a URL.</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Searched { get; init; }

    public static SearchPage Fail(RecordStatus status, params Issue[] issues) => new(status, [], null, null, issues);
}
