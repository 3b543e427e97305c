// vauban audit — the security officer's verbs on the audit log: verify the chain and its signed
// checkpoints, a patient's access history, the checkpoints with their public key for an outside witness,
// and the removal of a row that grants access and fails its check (which verify lists).
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Vauban.Access;
using Vauban.Audit;

namespace Vauban.Cli;

internal static class AuditCommands
{
    public static Command Build()
    {
        var audit = new Command("audit", "The tamper-evident audit log: verify it, show who opened a patient's record, export signed checkpoints, remove a row that grants access and fails its check.");
        audit.Subcommands.Add(Verify());
        audit.Subcommands.Add(Patient());
        audit.Subcommands.Add(Checkpoints());
        audit.Subcommands.Add(RemoveRow());
        return audit;
    }

    /// <summary>The one way, short of SQL, to take away a row `verify` lists as not authentic: refused for a row that verifies.</summary>
    private static Command RemoveRow()
    {
        var command = new Command("remove-row", "Remove a row that grants access and fails its check — listed by `vauban audit verify` as ROW NOT AUTHENTIC "
            + "(written or changed in the database, not by Vauban) —, after review. A row that verifies is refused: lock, revoke or reset it with its own verb. "
            + "The act is recorded on the establishment's audit chain. A staff account's row that fails its check keeps its e-mail address from a new account until it is removed.");
        var tenant = TenantCommands.Option();
        var table = new Option<string>("--table") { Description = $"The table `audit verify` names: {string.Join(", ", AccessRows.Tables)}.", Required = true };
        table.AcceptOnlyFromAmong([.. AccessRows.Tables]);
        var id = new Option<string>("--id")
        {
            Description = "The id `audit verify` names the row by: a client id, an access token's token-… id, a staff session's or account's id; for a passkey, "
                + "recovery code or enrolment link, its account's id (each such row of the account that fails its check is removed).",
            Required = true,
        };
        foreach (var option in new Option[] { tenant, table, id }) command.Options.Add(option);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            // Recorded in the transaction that removes: an audit log that cannot be written leaves the row (fail closed).
            var owner = AdministrationAudit.Context(await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token));
            var removal = await store.AccessRows.RemoveUnauthenticAsync(owner, parse.GetValue(table)!, parse.GetValue(id)!, token);
            foreach (var row in removal.Removed) Console.WriteLine($"Removed: {row} in {parse.GetValue(table)}, which failed its check.");
            return 0;
        }, ct));
        return command;
    }

    private static Command Verify()
    {
        var verify = new Command("verify", "Re-check every entry's hash, the chain, the signed checkpoints and the chain head, and hold the security records beside it "
            + "(alerts, containments, break-the-glass grants and their explanations) to their digests on it; report the first broken entry, or the first record missing, "
            + "altered or added; and hold every row that grants access (API clients, their tokens, staff sessions, staff accounts and their passkeys, recovery codes and enrolment links, break-the-glass grants) to its MAC, listing each that fails. "
            + "Exit code 3 when the log or those rows were tampered with.");
        var tenant = new Option<string?>("--tenant") { Description = "Only this establishment (default: every establishment in the store)." };
        var lookups = new Option<bool>("--lookups")
        {
            Description = "Also check that every entry can be found by its patient and principal (the search lookups are built beside the chain, not on it).",
        };
        var witness = new Option<FileInfo?>("--witness")
        {
            Description = "A file written earlier by `vauban audit checkpoints` and kept outside the store (by an outside witness): the log must still "
                + "give every tree head in it. Catches a rewrite or truncation of the newest entries together with their checkpoints. Verifies that file's establishment.",
        };
        verify.Options.Add(tenant);
        verify.Options.Add(lookups);
        // A file that is not there is a usage error (exit 2), as for --jwks and import's path: VaubanCommands.SayValues.
        verify.Options.Add(witness);
        StoreArguments.AddTo(verify);
        verify.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var witnessed = parse.GetValue(witness) is { } file ? ReadWitness(file) : null;
            if (witnessed is not null && parse.GetValue(tenant) is { } named && named != witnessed.Value.Tenant)
            {
                throw new UsageException($"--witness holds the tree heads of '{witnessed.Value.Tenant}', not of '{named}'.");
            }
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var tenants = (witnessed?.Tenant ?? parse.GetValue(tenant)) is { } name
                ? [await TenantCommands.ResolveAsync(store, name, token)]
                : await store.Tenants.ListAsync(token);
            if (tenants.Count == 0)
            {
                // Said, not silent: an empty output with exit code 0 reads as "verified".
                Console.WriteLine($"No establishment in {store.Description}: nothing to verify.");
                return 0;
            }
            var broken = false;
            foreach (var t in tenants)
            {
                var started = System.Diagnostics.Stopwatch.StartNew();
                var result = await store.AuditLog.VerifyAsync(t.Id, null, token, witnessed?.Heads);
                var seconds = started.Elapsed.TotalSeconds;
                if (result.Valid)
                {
                    var tail = result.UnsignedTail > 0
                        ? string.Create(CultureInfo.InvariantCulture, $"; the last {Counted.En(result.UnsignedTail, "entry awaits its", "entries await their")} next checkpoint")
                        : "";
                    var heads = witnessed is { } w ? string.Create(CultureInfo.InvariantCulture, $", the {w.Heads.Count:N0} witnessed tree heads reproduced") : "";
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{t.Name}: OK — {Counted.En(result.Entries, "entry", "entries")}, {Counted.En(result.Checkpoints, "signed checkpoint", "signed checkpoints")} "
                        + $"and {Counted.En(result.SecurityRecords, "security record", "security records")} verified in {seconds:0.0} s{heads}{tail}."));
                }
                else if (result.InSecurityRecords)
                {
                    // The chain holds; a row it vouches for (an alert, a containment, a break-the-glass grant) does not.
                    broken = true;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{t.Name}: BROKEN — {result.Problem}. The chain's {Counted.En(result.Entries, "entry", "entries")} verified; the security records beside it did not."));
                }
                else
                {
                    broken = true;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{t.Name}: BROKEN at entry {result.FirstBroken} — {result.Problem}. {Counted.En(result.Entries, "entry", "entries")} before it verified."));
                }
                if (parse.GetValue(lookups))
                {
                    var check = await store.AuditLog.VerifyLookupsAsync(t.Id, token);
                    if (check.Complete)
                    {
                        // The lookups are built behind the chain (a bulk load builds them at its end): entries past them are
                        // searched directly, so a partly built lookup is not a fault, but say how far it reaches.
                        var beyond = result.Valid && result.Entries > check.Indexed;
                        var line = check.Indexed == 0
                            ? $"{t.Name}: lookups not built yet"
                              + (beyond ? string.Create(CultureInfo.InvariantCulture, $" for any of the {Counted.En(result.Entries, "entry", "entries")} (searches read them directly)") : "")
                            : string.Create(CultureInfo.InvariantCulture, $"{t.Name}: lookups OK — entries 1 to {check.Indexed:N0} found by patient and principal")
                              + (beyond ? string.Create(CultureInfo.InvariantCulture, $"; entries {check.Indexed + 1:N0} to {result.Entries:N0} are not in them yet (searches read those directly)") : "");
                        Console.WriteLine(line + ".");
                    }
                    else
                    {
                        broken = true;
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{t.Name}: LOOKUPS INCOMPLETE from entry {check.FirstMissing} — searches by patient or principal would not show it (rows removed from audit_index)."));
                    }
                }
            }
            // The rows that grant access, held to their MACs (ADR 0014): of the establishment named, or of the whole store.
            var single = witnessed is not null || parse.GetValue(tenant) is not null;
            var (rows, unauthentic) = await store.AccessRows.VerifyAsync(single ? tenants[0].Id : null, token);
            var names = tenants.ToDictionary(t => t.Id, t => t.Name);
            foreach (var row in unauthentic)
            {
                broken = true;
                var where = row.TenantId is { } id && names.TryGetValue(id, out var establishment) ? establishment : "store";
                Console.WriteLine($"{where}: ROW NOT AUTHENTIC — {row.Row} in {row.Table} does not carry the store's authentication (written or changed in the database, not by Vauban); it is refused. "
                    + $"After review: vauban audit remove-row --tenant {(where == "store" ? "<any establishment>" : where)} --table {row.Table} --id {row.Id}");
            }
            if (unauthentic.Count == 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Rows that grant access: OK — {Counted.En(rows, "row", "rows")} of clients, access tokens, staff sessions, staff accounts and their passkeys, recovery codes and enrolment links, and break-the-glass grants authenticated."));
            }
            return broken ? 3 : 0;
        }, ct));
        return verify;
    }

    /// <summary>The tree heads of a <c>vauban audit checkpoints</c> export (its signatures are checked against the store's key). A
    /// file that cannot be read as one is a usage error (exit 2), as a missing one is: nothing was verified, and exit code 1 read
    /// as a verification that failed.</summary>
    private static (string Tenant, List<AuditCheckpoint> Heads)? ReadWitness(FileInfo file)
    {
        const string Expected = "expected the JSON written by `vauban audit checkpoints`";
        List<AuditCheckpoint> heads;
        string tenant;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(file.FullName));
            var root = document.RootElement;
            tenant = root.GetProperty("tenant").GetString() ?? throw new FormatException("no tenant");
            heads = root.GetProperty("checkpoints").EnumerateArray().Select(c => new AuditCheckpoint(
                c.GetProperty("tenantId").GetInt64(), c.GetProperty("size").GetInt64(), DateTimeOffset.FromUnixTimeMilliseconds(c.GetProperty("at").GetInt64()),
                Convert.FromBase64String(c.GetProperty("root").GetString()!), Convert.FromBase64String(c.GetProperty("head").GetString()!),
                c.GetProperty("keyVersion").GetInt32(), Convert.FromBase64String(c.GetProperty("signature").GetString()!))).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException(UsageError.CannotRead(file, "--witness", e));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new UsageException($"--witness: {file.FullName} is not a checkpoint export ({Expected}).");
        }
        // An export with no tree head holds the log to nothing: "0 witnessed tree heads reproduced" read as a witness's OK.
        if (heads.Count == 0) throw new UsageException($"--witness: {file.FullName} holds no tree head: it cannot witness anything.");
        return (tenant, heads);
    }

    private static Command Patient()
    {
        var command = new Command("patient", "A patient's access history: who (name, role, service), when, what and why — every entry that names the patient, newest first.");
        var patient = new Argument<string>("patient-id") { Description = "The Patient resource id." };
        var tenant = new Option<string?>("--tenant") { Description = "The establishment (needed when the store has several)." };
        var limit = new Option<int>("--limit") { Description = "At most this many entries, newest first (1–1,000,000; read 1,000 at a time).", DefaultValueFactory = _ => 200 }.Within(1, 1_000_000);
        command.Arguments.Add(patient);
        command.Options.Add(tenant);
        command.Options.Add(limit);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var count = parse.GetValue(limit);
            var id = parse.GetValue(patient)!;
            // A NIR typed for the id named no entry and printed "(0 entries)", read as "no one looked" (and put the NIR on the
            // audit chain as the operator's question). Not echoed: the terminal's scrollback is no place for it either.
            if (Records.IdRules.IsIdentifying(id)) throw new UsageException("<patient-id>: this looks like a social-security number (NIR), not a record id: give the patient's record id (the last part of the chart's address, /patients/<id>).");
            if (!Records.IdRules.IsValid(id)) throw new UsageException("<patient-id>: not a Patient id (1 to 64 letters, digits, '-' or '.').");
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var context = AccessContext.Operator(owner, "patient access history report");
            var history = (await Web.PatientAccessHistory.ReadAsync(store, context, id, count, token))!; // the operator reads the log
            // The guard admits the operator; were it ever to hold the history, no line is no history.
            if (history.Held is { } held) throw new InvalidOperationException($"The guard held the access history ({held.Verdict}): nothing is shown. {held.Reason}");
            Console.WriteLine($"Access history of Patient/{id} in {owner.Name} ({Counted.En(history.Lines.Count, "entry", "entries")}, newest first)");
            Console.WriteLine("when (UTC)\twho\trole\tservice\twhat\trecords\twhy\toutcome\tfrom");
            foreach (var line in history.Lines)
            {
                Console.WriteLine(string.Join('\t',
                    line.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), line.Who, line.Role, line.Service, line.What, line.Records, line.Why, line.Outcome, line.From));
            }
            if (history.More) Console.WriteLine($"(older entries not shown: --limit {count:N0} reached)");
            if (history.Lines.Count == 0)
            {
                Console.WriteLine($"No entry names Patient/{id}: no one has read, searched or changed a record of this patient in {owner.Name} — or this is not the patient's record id.");
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command Checkpoints()
    {
        var command = new Command("checkpoints", "Export the signed checkpoints (tree heads) and the verification key, as JSON, for an outside witness.");
        var tenant = new Option<string?>("--tenant") { Description = "The establishment (needed when the store has several)." };
        command.Options.Add(tenant);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var checkpoints = await store.AuditLog.CheckpointsAsync(owner.Id, token);
            await VaubanCommands.AuditReadAsync(store, owner, "audit checkpoints", checkpoints.Count, token);
            var export = new
            {
                tenant = owner.Name,
                algorithm = "ECDSA P-256 SHA-256 (IEEE P1363 r||s) over \"vauban-audit-checkpoint/1\\n{tenant id}\\n{size}\\n{root b64}\\n{head b64}\\n{unix ms}\\n\"; root = RFC 6962 Merkle tree hash of the entry hashes",
                publicKey = await store.AuditLog.PublicKeyPemAsync(owner.Id, token),
                checkpoints = checkpoints.Select(c => new
                {
                    tenantId = c.TenantId,
                    size = c.Size,
                    at = c.At.ToUnixTimeMilliseconds(),
                    root = Convert.ToBase64String(c.Root),
                    head = Convert.ToBase64String(c.Head),
                    keyVersion = c.KeyVersion,
                    signature = Convert.ToBase64String(c.Signature),
                }),
            };
            Console.WriteLine(JsonSerializer.Serialize(export, Indented));
            return 0;
        }, ct));
        return command;
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
