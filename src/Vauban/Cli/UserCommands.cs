// vauban users — the security officer's verbs for staff accounts: add (prints a one-time enrolment
// link), list, lock, unlock, revoke-sessions. Locking and revoking end the person's sessions at once
// on a running server (sessions are checked against the database on every request).
using System.CommandLine;
using Vauban.Access;

namespace Vauban.Cli;

internal static class UserCommands
{
    public const string DefaultBaseUrl = "http://localhost:8080";

    public static Command Build()
    {
        var users = new Command("users", "Manage staff accounts: each has a role, a second factor (passkey or TOTP) and belongs to one establishment.");
        users.Subcommands.Add(Add());
        users.Subcommands.Add(List());
        users.Subcommands.Add(Act("lock", "Lock an account (until unlocked), end its sessions at once and cancel its unused enrolment link (issue a new one after review).", async (store, tenant, email, ct) =>
            await store.Accounts.LockAsync(AdministrationAudit.Context(tenant), email, ct) ? "Account locked; its sessions are ended and its unused enrolment link cancelled." : null));
        users.Subcommands.Add(Act("unlock", "Unlock an account and clear its failed sign-in count (a lock by the guard is lifted with 'vauban guard release').", async (store, tenant, email, ct) =>
        {
            if (!await store.Accounts.UnlockAsync(AdministrationAudit.Context(tenant), email, ct)) return null;
            var user = await store.Accounts.FindAsync(tenant, email, ct);
            var held = user is null ? [] : (await store.Guard.ContainmentsAsync(tenant.Id, ct)).Where(c => c.Account == user.PrincipalId || c.Principal == user.PrincipalId).ToList();
            return held.Count == 0 ? "Account unlocked."
                : $"Account unlocked for sign-in, but the guard still holds it ({string.Join(", ", held.Select(c => c.Principal + " " + c.Level))}): review, then vauban guard release --tenant {tenant.Name} {user!.PrincipalId}";
        }));
        users.Subcommands.Add(Act("revoke-sessions", "End every session of an account at once (it must sign in again with both factors).", async (store, tenant, email, ct) =>
            await store.Accounts.RevokeSessionsAsync(AdministrationAudit.Context(tenant), email, ct) is { } n ? $"{Counted.En(n, "session", "sessions")} ended." : null));
        // --url as `users add` has it: the link names the server the person will open (it always named http://localhost:8080).
        var url = UrlOption();
        users.Subcommands.Add(Act("enrol-link", "Issue a new one-time enrolment link (lost device or password): the account's password, passkeys, authenticator and recovery codes are replaced when it is used.",
            [url], async (store, tenant, email, parse, ct) => await store.Accounts.FindAsync(tenant, email, ct) is { } user
                ? LinkText(await store.Accounts.ReissueEnrolmentLinkAsync(AdministrationAudit.Context(tenant), user, ct), parse.GetValue(url)!) : null));
        return users;
    }

    private static Command Add()
    {
        var add = new Command("add", "Create a staff account and print its one-time enrolment link (valid 72 hours, stored only hashed).");
        var tenant = TenantCommands.Option();
        var email = new Option<string>("--email") { Description = "The person's e-mail address (their sign-in name in this establishment).", Required = true };
        var role = new Option<string>("--role") { Description = "Physician, Nurse, Secretary, Biologist, Billing, SecurityOfficer or Administrator.", Required = true };
        // A role that is none is a usage error (exit 2), as --purpose's code is, refused before the store is opened.
        role.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { } given && Role(given) is null)
                result.AddError($"--role: '{given}' is not a role (one of: {string.Join(", ", Enum.GetNames<StaffRole>())}).");
        });
        var practitioner = new Option<string?>("--practitioner") { Description = "The Practitioner resource id the person acts as (care relationships name it)." };
        var service = new Option<string?>("--service") { Description = "The Organization resource id of the person's service." };
        var name = new Option<string?>("--name") { Description = "The display name, e.g. \"Dr Claire Martin\"." };
        var url = UrlOption();
        foreach (var option in new Option[] { tenant, email, role, practitioner, service, name, url }) add.Options.Add(option);
        StoreArguments.AddTo(add);
        add.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var parsedRole = Role(parse.GetValue(role)!)!.Value;
            // A value no account can take is a usage error (exit 2), told before the store is opened; an id the establishment
            // does not have, or an address already taken, is found in the store (exit 1).
            if (!StaffAccounts.IsValidEmail(parse.GetValue(email)!.Trim())) throw new UsageException("--email: not an e-mail address (one '@', no spaces, no control or invisible characters).");
            var ids = new[] { ("--practitioner", "Practitioner", parse.GetValue(practitioner)), ("--service", "Organization", parse.GetValue(service)) };
            foreach (var (option, type, id) in ids)
            {
                if (id is not null && !Vauban.Records.IdRules.IsValid(id)) throw new UsageException($"{option}: {type} resource ids are 1 to 64 letters, digits, '-' or '.'.");
            }
            if (parse.GetValue(name) is { } displayName && !string.IsNullOrWhiteSpace(displayName) && StaffAccounts.DisplayNameProblem(displayName.Trim()) is { } wrongName)
                throw new UsageException(UsageError.About("--name", wrongName));
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            // Care relationships name the practitioner, the console names the service: a mistyped id would leave the person
            // outside their patients' care, without a word.
            foreach (var (option, type, id) in ids)
            {
                if (id is null) continue;
                if ((await store.Records.UnknownAsync(AccessContext.Operator(owner, KnownPurposes.SystemAdministration), type, [id], "users add " + option, token)).Count > 0)
                    throw new ArgumentException($"{option}: {owner.Name} has no {type} '{id}'; no account was created.");
            }
            // The entry commits with the account: an audit log that cannot be written leaves no account (fail closed).
            var link = await store.Accounts.AddAsync(AdministrationAudit.Context(owner), parse.GetValue(email)!, parsedRole, parse.GetValue(practitioner), parse.GetValue(service),
                parse.GetValue(name), token);
            Console.WriteLine($"Account created: {link.User.DisplayName} ({link.User.Role}) in {owner.Name}.");
            Console.WriteLine(LinkText(link, parse.GetValue(url)!));
            return 0;
        }, ct));
        return add;
    }

    /// <summary>The role named, in any case; null for a name that is none, or a number (which Enum.TryParse takes).</summary>
    private static StaffRole? Role(string given) =>
        Enum.TryParse<StaffRole>(given, ignoreCase: true, out var role) && Enum.IsDefined(role) && !int.TryParse(given, out _) ? role : null;

    private static Option<string> UrlOption()
    {
        var url = new Option<string>("--url") { Description = "The server's public base URL, for the link (http or https).", DefaultValueFactory = _ => DefaultBaseUrl };
        // The link is handed to a person to open: a javascript: or data: URL, or a relative one, would be printed as given.
        url.Validators.Add(result =>
        {
            var given = result.GetValueOrDefault<string>();
            if (given is not null && !VaubanCommands.IsBaseUrl(given, out _))
            {
                result.AddError($"--url: '{given}' is not the server's http(s) base URL (e.g. https://ehr.hopital.example, without a query).");
            }
        });
        return url;
    }

    public static string EnrolmentUrl(EnrolmentLink link, string baseUrl) =>
        $"{baseUrl.TrimEnd('/')}/account/enrol?token={Uri.EscapeDataString(link.Token)}";

    private static string LinkText(EnrolmentLink link, string baseUrl) =>
        $"Enrolment link (single use, until {link.ExpiresAt:yyyy-MM-dd HH:mm} UTC; give it to the person only):\n{EnrolmentUrl(link, baseUrl)}";

    private static Command List()
    {
        var list = new Command("list", "List an establishment's staff accounts: role, enrolment, lock, open sessions, and the principal (user:…) the audit log, `breach --principal` and `guard release` name each by.");
        var tenant = TenantCommands.Option();
        list.Options.Add(tenant);
        StoreArguments.AddTo(list);
        list.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            // The principal last: what `breach --principal`, `guard release` and the audit log name the account by.
            Console.WriteLine("email\tname\trole\tpractitioner\tservice\tenrolled\tlocked\tsessions\tprincipal");
            var accounts = await store.Accounts.ListAsync(owner, token);
            await VaubanCommands.AuditReadAsync(store, owner, "users list", accounts.Count, token);
            foreach (var a in accounts)
            {
                Console.WriteLine($"{a.Email}\t{a.DisplayName}\t{a.Role}\t{a.Practitioner ?? "-"}\t{a.Service ?? "-"}\t{(a.Enrolled ? "yes" : "no")}\t{(a.Locked ? "yes" : "no")}\t{a.Sessions}\t{StaffUser.PrincipalPrefix}{a.Id}");
            }
            return 0;
        }, ct));
        return list;
    }

    private static Command Act(string verb, string description, Func<VaubanStore, Tenant, string, CancellationToken, Task<string?>> act) =>
        Act(verb, description, [], (store, tenant, email, _, ct) => act(store, tenant, email, ct));

    private static Command Act(string verb, string description, Option[] extra, Func<VaubanStore, Tenant, string, ParseResult, CancellationToken, Task<string?>> act)
    {
        var command = new Command(verb, description);
        var tenant = TenantCommands.Option();
        var email = new Option<string>("--email") { Description = "The account's e-mail address.", Required = true };
        command.Options.Add(tenant);
        command.Options.Add(email);
        foreach (var option in extra) command.Options.Add(option);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            // The act records itself in its own transaction: if the audit log cannot be written, it is not done (fail closed).
            var message = await act(store, owner, parse.GetValue(email)!, parse, token)
                ?? throw new ArgumentException($"No account with this e-mail address in {owner.Name}.");
            Console.WriteLine(message);
            return 0;
        }, ct));
        return command;
    }
}
