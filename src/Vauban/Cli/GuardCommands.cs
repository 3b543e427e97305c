// vauban guard — the security officer's verbs for the guard: alerts (what was raised), acknowledge (alerts
// reviewed), contained (who is suspended or locked now), release (after review), grants (break-the-glass, with the
// explanations stated), canaries add|list. A running server sees a release
// or new canaries within seconds (it re-reads them from the database).
using System.CommandLine;
using Vauban.Access;
using Vauban.Guard;

namespace Vauban.Cli;

internal static class GuardCommands
{
    public static Command Build()
    {
        var guard = new Command("guard", "The guard: alerts, contained sessions, clients and accounts, their release, bulk exports awaiting approval, canary patients.");
        guard.Subcommands.Add(Alerts());
        guard.Subcommands.Add(Acknowledge());
        guard.Subcommands.Add(Contained());
        guard.Subcommands.Add(Release());
        guard.Subcommands.Add(Grants());
        guard.Subcommands.Add(ExportApprovalCommands.List());
        guard.Subcommands.Add(ExportApprovalCommands.Decide(approve: true));
        guard.Subcommands.Add(ExportApprovalCommands.Decide(approve: false));
        var canaries = new Command("canaries", "Canary patients: ordinary-looking synthetic patients no workflow opens; reading one contains the reader at once.");
        canaries.Subcommands.Add(AddCanaries());
        canaries.Subcommands.Add(ListCanaries());
        guard.Subcommands.Add(canaries);
        return guard;
    }

    private static Command Alerts()
    {
        var command = new Command("alerts", "Security alerts of an establishment, newest first: guard containments, canaries, break-the-glass, locked accounts.");
        var tenant = TenantCommands.Option();
        var all = new Option<bool>("--all") { Description = "Include acknowledged alerts." };
        var limit = LimitOption();
        command.Options.Add(tenant);
        command.Options.Add(all);
        command.Options.Add(limit);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var n = parse.GetValue(limit);
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var alerts = await store.Alerts.ListAsync(owner.Id, parse.GetValue(all), n, token);
            await VaubanCommands.AuditReadAsync(store, owner, "guard alerts", alerts.Count, token);
            var showAcknowledged = parse.GetValue(all);
            Console.WriteLine("id\traised (UTC)\tkind\tprincipal\tdetail" + (showAcknowledged ? "\tacknowledged (UTC)" : ""));
            foreach (var a in alerts)
            {
                Console.WriteLine($"{a.Id}\t{a.RaisedAt:yyyy-MM-dd HH:mm:ss}\t{a.Kind}\t{a.Principal}\t{a.Detail}"
                    + (showAcknowledged ? "\t" + (a.AcknowledgedAt is { } at ? at.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) : "-") : ""));
            }
            if (alerts.Count == 0) Console.Error.WriteLine(showAcknowledged ? "No alerts." : "No alerts to review (--all lists the acknowledged ones too).");
            return 0;
        }, ct));
        return command;
    }

    /// <summary>--limit of a listing: at most this many, 1 to 10,000 (100 by default).</summary>
    private static Option<int> LimitOption() => new Option<int>("--limit") { Description = "At most this many (1–10,000).", DefaultValueFactory = _ => 100 }.Within(1, 10_000);

    private static Command Grants()
    {
        var command = new Command("grants", "Break-the-glass grants of an establishment, newest first, with the explanation each holder stated (sealed at rest, opened for this review; the reading is audited).");
        var tenant = TenantCommands.Option();
        var limit = LimitOption();
        command.Options.Add(tenant);
        command.Options.Add(limit);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var n = parse.GetValue(limit);
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var grants = await store.BreakTheGlass.ReviewAsync(owner, n, token);
            await VaubanCommands.AuditReadAsync(store, owner, "guard grants", grants.Count, token, Vauban.Access.ReviewedGrant.Audited(grants));
            Console.WriteLine("id\tgranted (UTC)\texpires (UTC)\tprincipal\tpatient\treason\texplanation");
            foreach (var g in grants)
            {
                // One line each: the free text's line breaks and tabs would break the columns.
                var explanation = string.Join(' ', g.Explanation.Split(['\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
                Console.WriteLine($"{g.Id}\t{g.GrantedAt:yyyy-MM-dd HH:mm:ss}\t{g.ExpiresAt:yyyy-MM-dd HH:mm:ss}\t{g.Principal}\tPatient/{g.Patient}\t{g.Reason}\t{explanation}");
            }
            if (grants.Count == 0) Console.Error.WriteLine("No break-the-glass grants.");
            return 0;
        }, ct));
        return command;
    }

    private static Command Acknowledge()
    {
        var command = new Command("acknowledge", "Mark alerts as reviewed: they leave 'vauban guard alerts' (still listed with --all). Audited.");
        command.Aliases.Add("ack");
        var tenant = TenantCommands.Option();
        var ids = new Argument<long[]>("id")
        {
            Description = "The alerts' ids, as shown by 'vauban guard alerts'.",
            Arity = ArgumentArity.OneOrMore,
            // A word that is no id was "Unrecognized command or argument": said for what it is.
            CustomParser = result =>
            {
                var parsed = new List<long>();
                foreach (var token in result.Tokens)
                {
                    if (long.TryParse(token.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) && id > 0) parsed.Add(id);
                    else result.AddError($"'{token.Value}' is not an alert id: ids are the numbers 'vauban guard alerts' shows.");
                }
                return [.. parsed];
            },
        };
        command.Options.Add(tenant);
        command.Arguments.Add(ids);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var wanted = parse.GetValue(ids)!;
            if (wanted.Length > RecordsGuard.MaxAcknowledgedPerCall) throw new UsageException($"At most {RecordsGuard.MaxAcknowledgedPerCall:N0} alerts at a time.");
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var done = await store.Guard.AcknowledgeAlertsAsync(AdministrationAudit.Context(owner), wanted, token);
            var left = wanted.Distinct().Except(done).ToList();
            if (done.Count > 0) Console.WriteLine($"Acknowledged {Counted.En(done.Count, "alert", "alerts")} of {owner.Name}: {string.Join(", ", done)}.");
            if (left.Count > 0)
            {
                Console.Error.WriteLine($"error: not an unacknowledged alert of {owner.Name}: {string.Join(", ", left)} (see: vauban guard alerts --tenant {owner.Name} --all).");
                return 1;
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command Contained()
    {
        var command = new Command("contained", "Sessions and clients the guard has suspended, and accounts it has locked, not yet released.");
        var tenant = TenantCommands.Option();
        command.Options.Add(tenant);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var list = await store.Guard.ContainmentsAsync(owner.Id, token);
            await VaubanCommands.AuditReadAsync(store, owner, "guard contained", list.Count, token);
            Console.WriteLine("principal\taccount\tlevel\tcause\tsince (UTC)\treason");
            foreach (var c in list) Console.WriteLine($"{c.Principal}\t{c.Account ?? "-"}\t{c.Level}\t{c.Cause}\t{c.ContainedAt:yyyy-MM-dd HH:mm:ss}\t{c.Reason}");
            if (list.Count == 0) Console.Error.WriteLine("No one is contained.");
            return 0;
        }, ct));
        return command;
    }

    private static Command Release()
    {
        var command = new Command("release", "Release a contained session (session:<id>), API client (its client id) or account (user:<id>: also its sessions and the guard's lock), after review.");
        var tenant = TenantCommands.Option();
        var principal = new Argument<string>("principal") { Description = "As shown by 'vauban guard alerts' or 'vauban guard contained'." };
        command.Options.Add(tenant);
        command.Arguments.Add(principal);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var who = parse.GetValue(principal)!;
            if (!RecordsGuard.IsValidPrincipal(who)) throw new UsageException("<principal>: a principal is a session:…, user:… or client id (letters, digits, ':', '-', '_', '.').");
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            // The entry commits with the release: an audit log that cannot be written releases nothing (fail closed).
            // The operator's context: a containment a canary caused is released here too (RecordsGuard.MayActOnCanaries).
            var release = await store.Guard.ReleaseAsync(AdministrationAudit.Context(owner), who, token);
            if (release.Status == ReleaseStatus.NotContained) throw new ArgumentException($"{who} is not contained in {owner.Name} (see: vauban guard contained --tenant {owner.Name}).");
            if (release.Status != ReleaseStatus.Released) throw new InvalidOperationException($"{who} was not released: a canary's containment is the security officer's to release.");
            Console.WriteLine($"Released {who} ({Counted.En(release.Containments, "containment", "containments")}); its reading windows start afresh.");
            return 0;
        }, ct));
        return command;
    }

    private static Command AddCanaries()
    {
        var command = new Command("add", "Create canary patients in an establishment (synthetic identities, no care relationship, no marker in the record).");
        var tenant = TenantCommands.Option();
        var count = new Option<int>("--count") { Description = $"How many (1–{RecordsGuard.MaxCanariesPerCall}).", DefaultValueFactory = _ => 5 }.Within(1, RecordsGuard.MaxCanariesPerCall);
        command.Options.Add(tenant);
        command.Options.Add(count);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var n = parse.GetValue(count);
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var ids = await store.Guard.AddCanariesAsync(store.Records, owner, n, token);
            Console.WriteLine($"{ids.Count} canary patient(s) added to {owner.Name}. Keep their ids to yourself: no workflow should ever open them.");
            foreach (var id in ids) Console.WriteLine("Patient/" + id);
            return 0;
        }, ct));
        return command;
    }

    private static Command ListCanaries()
    {
        var command = new Command("list", "The establishment's canary patients.");
        var tenant = TenantCommands.Option();
        command.Options.Add(tenant);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var list = await store.Guard.CanariesAsync(owner.Id, token);
            await VaubanCommands.AuditReadAsync(store, owner, "guard canaries list", list.Count, token);
            Console.WriteLine("patient\tcreated (UTC)");
            foreach (var c in list) Console.WriteLine($"Patient/{c.Patient}\t{c.CreatedAt:yyyy-MM-dd HH:mm:ss}");
            if (list.Count == 0) Console.Error.WriteLine($"No canaries: add some with vauban guard canaries add --tenant {owner.Name}.");
            return 0;
        }, ct));
        return command;
    }

    /// <summary>Canaries for a freshly seeded establishment: about one per 1,000 patients, at least 3, at most 100.</summary>
    public static int CanariesFor(int patients) => Math.Clamp(patients / 1000, 3, RecordsGuard.MaxCanariesPerCall);
}
