// A bulk $export job as the API and the officer see it: the request (level, types, since), the size estimated
// at kick-off, and where it stands. The exported data itself is never stored: each NDJSON file is generated
// when it is downloaded, through the records service.
using System.Security.Cryptography;
using Vauban.Fhir;

namespace Vauban.Records;

public enum ExportLevel { System, Patient }

public enum ExportStatus { Ready, AwaitingApproval, Denied }

public sealed record ExportJob(string Id, long TenantId, string Principal, ExportLevel Level, IReadOnlyList<string> Types, long? Since, long TransactionTime,
    string RequestUrl, int Patients, int Resources, ExportStatus Status, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, string? DecidedBy, DateTimeOffset? DecidedAt)
{
    /// <summary>Approved by a second person (it was above the threshold).</summary>
    public bool Approved => Status == ExportStatus.Ready && DecidedBy is not null;

    public static string StatusName(ExportStatus status) => status switch
    {
        ExportStatus.Ready => "ready",
        ExportStatus.AwaitingApproval => "awaiting-approval",
        _ => "denied",
    };

    public static ExportStatus ParseStatus(string text) => text switch
    {
        "ready" => ExportStatus.Ready,
        "awaiting-approval" => ExportStatus.AwaitingApproval,
        _ => ExportStatus.Denied,
    };

    /// <summary>A new job id: 22 URL-safe characters (128 random bits), never beginning with '-' — the operator types it after
    /// `vauban guard approve-export|deny-export`, where a leading '-' would be read as an option ("-h…" as help).</summary>
    public static string NewId()
    {
        while (true)
        {
            var id = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            if (id[0] != '-') return id;
        }
    }

    /// <summary>Job ids are 22 URL-safe characters (128 random bits); anything else is refused before the database is asked.</summary>
    public static bool IsValidId(string? id) => id is { Length: 22 } && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}

/// <summary>One NDJSON file of a ready job: its type and how many resources it holds now.</summary>
public sealed record ExportFile(string Type, int Count);

/// <summary>The outcome of a kick-off, status request or cancellation; <see cref="Files"/> when the job is ready.</summary>
public sealed record ExportOutcome(RecordStatus Status, ExportJob? Job = null, IReadOnlyList<ExportFile>? Files = null, IReadOnlyList<Issue>? Issues = null)
{
    public static ExportOutcome Fail(RecordStatus status, params Issue[] issues) => new(status, Issues: issues);
}

/// <summary>A file ready to stream (<see cref="WriteAsync"/> audits each part before writing it), or why not. WriteAsync answers
/// false when the file stopped before its end (the principal was contained meanwhile): what was written is not the whole file,
/// and the caller must not let it pass for one (the HTTP answer is aborted).</summary>
public sealed record ExportDownload(RecordStatus Status, Func<Stream, CancellationToken, Task<bool>>? WriteAsync = null, IReadOnlyList<Issue>? Issues = null)
{
    public static ExportDownload Fail(RecordStatus status, params Issue[] issues) => new(status, Issues: issues);
}
