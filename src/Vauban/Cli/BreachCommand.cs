// vauban breach — when an account or API client is known compromised: verify the establishment's audit log, compute from it
// which patients' data that principal reached and which kinds, read the addressees through the records service (audited as a
// breach notification), and write into a new private folder the machine-readable scope, the regulator's notification (GDPR
// art. 33, CNIL) and one letter per patient (art. 34), in French and English. Standard output holds counts and paths only:
// never a patient's name or data (DESIGN invariant 4).
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Vauban.Access;
using Vauban.Audit;
using Vauban.Breach;

namespace Vauban.Cli;

internal static class BreachCommand
{
    public static Command Build()
    {
        var command = new Command("breach",
            "Compute from the verified audit log which patients' data a compromised account (user:…) or API client (client:… or its id) reached, with when, "
            + "how often and which kinds of data (refused attempts counted apart), and write into --out: scope.json, the regulator's notification "
            + "(notification-cnil.fr.md / .en.md, GDPR art. 33) and one letter per patient (letters/<patient-id>.fr.md / .en.md, art. 34). The addressees' "
            + "names and addresses are read through the records service, audited as a breach notification; the run itself is audited. Exit code 3, nothing "
            + "written, when the audit log does not verify (unless --unverified).");
        var tenant = new Option<string>("--tenant") { Description = "The establishment whose audit log is examined.", Required = true };
        var principal = new Option<string>("--principal")
        {
            Description = "The compromised principal, as the audit log and 'vauban guard alerts' name it: a staff account user:<id>, or an API client client:<id> (or its id alone).",
            Required = true,
        };
        principal.Validators.Add(result =>
        {
            if (BreachInvestigation.PrincipalId(result.GetValueOrDefault<string>()) is null)
                result.AddError("--principal: a staff account user:<id> or an API client client:<id> (letters, digits, '-', '_', '.').");
        });
        var from = new Option<string?>("--from")
        {
            Description = "Only acts at or after this date (2026-11-30, from its start in Paris) or time (2026-11-30T08:00:00, Paris time; with Z or an offset, "
                + "in that zone: 2026-11-30T07:00:00Z). Default: the log's beginning.",
        };
        var to = new Option<string?>("--to") { Description = "Only acts before this time, or up to the end of this date (2026-12-04 includes that day in Paris). Default: now." };
        var detected = new Option<string?>("--detected-at")
        {
            Description = "When the establishment became aware of the breach (a date or a time, as --from): the 72-hour deadline of the notification runs from it. Default: now.",
        };
        foreach (var option in new[] { from, to, detected })
        {
            option.Validators.Add(result =>
            {
                if (result.GetValueOrDefault<string?>() is { } text && Instant(text, endOfDay: false) is null)
                    result.AddError($"{option.Name}: '{text}' is not a date (yyyy-MM-dd) or a time (yyyy-MM-ddTHH:mm:ss, Paris time, or followed by Z or ±hh:mm).");
            });
        }
        var output = new Option<DirectoryInfo>("--out")
        {
            Description = "The folder to write into: created with mode 0700 (a folder that exists must be empty); every file mode 0600.",
            Required = true,
        };
        var language = new Option<string>("--lang") { Description = "The language of the notification and letters: fr, en or both.", DefaultValueFactory = _ => "both" };
        language.AcceptOnlyFromAmong("fr", "en", "both");
        var dpoName = new Option<string?>("--dpo-name") { Description = "The data protection officer's name, written in the notification and letters (default: a blank to fill in)." };
        var dpoEmail = new Option<string?>("--dpo-email") { Description = "The data protection officer's e-mail address, written in the notification and letters (default: a blank to fill in)." };
        foreach (var option in new[] { dpoName, dpoEmail })
        {
            option.Validators.Add(result =>
            {
                if (result.GetValueOrDefault<string?>() is { } text && (text.Length is 0 or > 200 || text.Any(char.IsControl)))
                    result.AddError($"{option.Name}: one line of 1 to 200 characters.");
            });
        }
        var unverified = new Option<bool>("--unverified")
        {
            Description = "Compute the scope even though the audit log does not verify (tampered with, or its lookups incomplete); every file then says so first. Without it, such a log is refused (exit code 3).",
        };
        command.Options.Add(tenant);
        command.Options.Add(principal);
        command.Options.Add(from);
        command.Options.Add(to);
        command.Options.Add(output);
        command.Options.Add(language);
        command.Options.Add(detected);
        command.Options.Add(dpoName);
        command.Options.Add(dpoEmail);
        command.Options.Add(unverified);
        command.Validators.Add(result =>
        {
            if (result.GetValue(from) is { } f && result.GetValue(to) is { } t && Instant(f, false) is { } start && Instant(t, true) is { } end && start >= end)
                result.AddError("--from must be before --to.");
            // The 72-hour deadline runs from it: a time not yet come made a deadline that is not the law's (and past 9999, a failure).
            if (result.GetValue(detected) is { } d && Instant(d, false) is { } aware && aware > DateTimeOffset.UtcNow.AddMinutes(5))
                result.AddError($"--detected-at: '{d}' is in the future; it is when the establishment became aware of the breach.");
        });
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var folder = parse.GetValue(output)!;
            RefuseUsedFolder(folder);
            var who = BreachInvestigation.PrincipalId(parse.GetValue(principal))!;
            var window = (From: parse.GetValue(from) is { } f ? Instant(f, false) : null, To: parse.GetValue(to) is { } t ? Instant(t, true) : null);
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var investigator = AccessContext.Operator(owner, BreachAddressees.Purpose);

            var log = await BreachInvestigation.CheckLogAsync(store, owner, token);
            var trusted = log.Trustworthy;
            if (!trusted && !parse.GetValue(unverified))
            {
                Console.Error.WriteLine($"error: {log.Problem}. A scope computed from it cannot be trusted: nothing was written. "
                    + "Investigate with 'vauban audit verify --lookups'; --unverified computes it anyway, marked as such in every file.");
                return 3;
            }
            var scope = await BreachInvestigation.ScopeAsync(store, investigator, who, window.From, window.To, log, token)
                ?? throw new ArgumentException($"no such principal on this establishment's audit log: {who} has no entry on {owner.Name}'s log (check the id with 'vauban guard alerts --all' or 'vauban audit').");
            var containment = await BreachInvestigation.ContainmentAsync(store, owner, who, token);
            var addressees = await BreachAddressees.ReadAsync(store.Records, investigator, scope.DataSubjects.Select(p => p.Id), token);
            var now = store.Time.GetUtcNow();
            var facts = new BreachFacts(owner.Name, parse.GetValue(dpoName), parse.GetValue(dpoEmail),
                parse.GetValue(detected) is { } d ? Instant(d, false)!.Value : now, now, containment);
            var languages = parse.GetValue(language) switch
            {
                "fr" => new[] { BreachLanguage.French },
                "en" => [BreachLanguage.English],
                _ => [BreachLanguage.French, BreachLanguage.English],
            };
            var letters = scope.DataSubjects.Count(p => addressees[p.Id].State == BreachAddresseeState.OnRecord);
            var deleted = scope.DataSubjects.Count(p => addressees[p.Id].State == BreachAddresseeState.Deleted);
            var unreadable = scope.DataSubjects.Count(p => addressees[p.Id].State == BreachAddresseeState.Unreadable);

            // The run is on the establishment's chain before anything is written: an audit log that cannot take it stops here.
            await store.Audit.AppendAsync(investigator, AuditAction.Administration, AuditOutcome.Success, null, [new AuditedRecord("cli:breach", null, null)], token,
                string.Create(CultureInfo.InvariantCulture,
                    $"breach scope of {who} ({Window(window.From, window.To)}): {Counted.En(scope.DataSubjects.Count(), "patient", "patients")}, {Counted.En(scope.Records, "record", "records")}, {Counted.En(scope.RefusedAccesses, "refused access", "refused accesses")}; "
                    + $"{Counted.En(letters, "letter", "letters")}{(trusted ? "" : "; AUDIT LOG NOT VERIFIED (--unverified)")}"));

            CreatePrivateFolder(folder.FullName);
            var letterFolder = Path.Combine(folder.FullName, "letters");
            CreatePrivateFolder(letterFolder);
            var written = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            try
            {
                foreach (var patient in scope.DataSubjects.Where(p => addressees[p.Id].State == BreachAddresseeState.OnRecord))
                {
                    var files = written[patient.Id] = [];
                    foreach (var lang in languages)
                    {
                        var name = $"{patient.Id}.{BreachDocuments.FileSuffix(lang)}.md";
                        await WriteAsync(Path.Combine(letterFolder, name), BreachDocuments.Letter(scope, patient, addressees[patient.Id], facts, lang), token);
                        files.Add("letters/" + name);
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Said without the file's name, which is a patient's id: the terminal's scrollback is no place for it.
                throw new IOException(string.Create(CultureInfo.InvariantCulture,
                    $"a letter could not be written in {letterFolder} ({e.GetType().Name}; {written.Count - 1} of {letters} patients' letters written): the folder is incomplete; remove it and run again."));
            }
            foreach (var lang in languages)
            {
                await WriteAsync(Path.Combine(folder.FullName, $"notification-cnil.{BreachDocuments.FileSuffix(lang)}.md"), BreachDocuments.Notification(scope, facts, lang), token);
            }
            await WriteAsync(Path.Combine(folder.FullName, "scope.json"), ScopeJson(scope, facts, addressees, written), token);

            if (!trusted) Console.WriteLine($"WARNING: AUDIT LOG NOT VERIFIED — {log.Problem}. Every file says so; do not send them before establishing the scope otherwise.");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Breach scope of {who} on {owner.Name} ({Window(window.From, window.To)}), {scope.EntriesExamined:N0} of its audit entries examined:"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {Counted.En(scope.DataSubjects.Count(), "patient", "patients")} whose data left ({Counted.En(scope.Records, "record", "records")}, {Counted.En(scope.Accesses, "access", "accesses")}); {Counted.En(scope.Patients.Count(p => p.Canary), "canary patient", "canary patients")} reached"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {Counted.En(scope.RefusedAccesses, "refused access", "refused accesses")} on {Counted.En(scope.RefusedPatientsNotInScope, "other patient", "other patients")} ({Counted.En(scope.RefusedCanaries.Count, "canary", "canaries")}): not in scope"));
            if (deleted + unreadable > 0) Console.WriteLine($"  {Counted.En(deleted, "patient", "patients")} deleted since and {unreadable} unreadable: in scope, no letter (see scope.json)");
            Console.WriteLine($"Wrote {Path.Combine(folder.FullName, "scope.json")}, the notification in {string.Join(" and ", languages.Select(l => $"notification-cnil.{BreachDocuments.FileSuffix(l)}.md"))}, "
                + $"and {Counted.En(letters, "letter", "letters")} in {letterFolder}.");
            Console.WriteLine($"The notification to the CNIL is due by {facts.Deadline.UtcDateTime:yyyy-MM-dd HH:mm} UTC (72 hours after detection at {facts.DetectedAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC).");
            return 0;
        }, ct));
        return command;
    }

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>A folder that holds anything is refused before the store is opened, a usage error (exit 2): a breach's files are
    /// never mixed with others or written over (a second run goes into a new folder).</summary>
    private static void RefuseUsedFolder(DirectoryInfo folder)
    {
        if (File.Exists(folder.FullName)) throw new UsageException($"--out: {folder.FullName} is a file: name a new or empty folder.");
        if (Directory.Exists(folder.FullName) && Directory.EnumerateFileSystemEntries(folder.FullName).Any())
            throw new UsageException($"--out: {folder.FullName} is not empty: name a new or empty folder (a breach's files are never written over or mixed with others).");
    }

    /// <summary>A folder only its owner may enter (0700); an empty one that existed is narrowed to that.</summary>
    private static void CreatePrivateFolder(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }
        Directory.CreateDirectory(path, Private);
        File.SetUnixFileMode(path, Private);
    }

    /// <summary>A new file (never one written over) only its owner may read (0600): the letters hold names and addresses.</summary>
    private static async Task WriteAsync(string path, string text, CancellationToken cancellationToken)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using var stream = new FileStream(path, options);
        await stream.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text), cancellationToken);
    }

    /// <summary>A date (its start in Paris, or with <paramref name="endOfDay"/> the start of the next day there) or a time (a FHIR
    /// dateTime: Paris time without a zone, as every date and time without one in Vauban: ParisTime); null when neither. The officer
    /// reads the console in Paris time: "2026-12-04" is that day there, from 2026-12-03T23:00:00Z (it was UTC's, an hour later).</summary>
    internal static DateTimeOffset? Instant(string text, bool endOfDay)
    {
        var day = text.Length == 10;
        if ((!day && !text.Contains('T', StringComparison.Ordinal)) || !Fhir.FhirDate.TryParseRange(text, out var start, out var end)) return null;
        return day && endOfDay ? end : start;
    }

    private static string Window(DateTimeOffset? from, DateTimeOffset? to) => (from, to) switch
    {
        (null, null) => "all time",
        _ => $"{from?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) ?? "the beginning"} to {to?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) ?? "now"}",
    };

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private static string ScopeJson(BreachScope scope, BreachFacts facts, IReadOnlyDictionary<string, BreachAddressee> addressees, Dictionary<string, List<string>> letters) =>
        JsonSerializer.Serialize(new
        {
            establishment = facts.Establishment,
            principal = scope.Principal,
            principalKind = scope.PrincipalKind,
            window = new { from = scope.From, to = scope.To },
            computedAt = facts.WrittenAt,
            detectedAt = facts.DetectedAt,
            notificationDeadline = facts.Deadline,
            auditLog = new
            {
                verified = scope.Log.Trustworthy,
                problem = scope.Log.Problem,
                entries = scope.Log.Chain.Entries,
                checkpoints = scope.Log.Chain.Checkpoints,
                firstBroken = scope.Log.Chain.FirstBroken,
                lookupsComplete = scope.Log.Lookups.Complete,
                firstMissingLookup = scope.Log.Lookups.FirstMissing,
            },
            entriesExamined = scope.EntriesExamined,
            dataSubjects = scope.DataSubjects.Count(),
            records = scope.Records,
            accesses = scope.Accesses,
            categories = scope.Categories,
            refused = new { accesses = scope.RefusedAccesses, patientsNotInScope = scope.RefusedPatientsNotInScope, canaries = scope.RefusedCanaries },
            containment = new
            {
                guardLevel = facts.Containment.GuardLevel,
                guardContainedAt = facts.Containment.GuardContainedAt,
                accountLocked = facts.Containment.AccountLocked,
                clientRevoked = facts.Containment.ClientRevoked,
                knownToTheStore = facts.Containment.Known,
            },
            patients = scope.Patients.Select(p => new
            {
                id = p.Id,
                canary = p.Canary,
                state = p.Canary ? "canary" : addressees[p.Id].State switch
                {
                    BreachAddresseeState.OnRecord => "onRecord",
                    BreachAddresseeState.Deleted => "deletedSince",
                    _ => "unreadable",
                },
                firstAccess = p.FirstAccess,
                lastAccess = p.LastAccess,
                accesses = p.Accesses,
                records = p.Records,
                categories = p.Categories,
                actions = p.Actions,
                letters = letters.TryGetValue(p.Id, out var files) ? files : [],
            }),
        }, Json);
}
