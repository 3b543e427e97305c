using System.CommandLine;

namespace Vauban.Cli;

internal static class TenantCommands
{
    /// <summary>The required --tenant option of the verbs that act in one existing establishment.</summary>
    public static Option<string> Option() => new("--tenant") { Description = "The establishment.", Required = true };

    /// <summary>The named tenant, or the only one when no name is given; otherwise a clear error listing the choices.</summary>
    public static async Task<Vauban.Access.Tenant> ResolveAsync(VaubanStore store, string? name, CancellationToken cancellationToken)
    {
        if (name is not null)
        {
            RefuseImpossible(name);
            return await store.Tenants.FindAsync(name, cancellationToken) ?? throw new ArgumentException(await NotFoundAsync(store, name, cancellationToken));
        }
        var all = await store.Tenants.ListAsync(cancellationToken);
        return all.Count switch
        {
            1 => all[0],
            0 => throw new ArgumentException("The store has no tenant yet. Create one with: vauban tenants add <name>"),
            _ => throw new ArgumentException($"The store has several tenants; choose one with --tenant ({string.Join(", ", all.Select(t => t.Name))})."),
        };
    }

    /// <summary>A --tenant no establishment can have (<see cref="Vauban.Access.Tenants.IsValidName"/>: an invisible character, a
    /// character no name holds) is a usage error, exit 2, in every verb: `tenants add` and `seed` said so, the verbs that look an
    /// establishment up answered "No establishment with this name", exit 1. One a store made earlier may hold is looked up.</summary>
    public static void RefuseImpossible(string name)
    {
        if (!Vauban.Access.Tenants.IsValidName(name))
        {
            throw new UsageException(UsageError.About("--tenant", Vauban.Access.Tenants.NameProblem(name) ?? "An establishment name is 1 to 100 letters, digits, '-', '_' or '.'."));
        }
    }

    /// <summary>Why no establishment is named <paramref name="name"/>: looked up exactly (a name is a key, and names that differ only
    /// by case may both exist in a store made before they were refused), with the one it reads like when there is one.</summary>
    public static async Task<string> NotFoundAsync(VaubanStore store, string name, CancellationToken cancellationToken)
    {
        var alike = await store.Tenants.AlikeAsync(name, cancellationToken);
        // Quoted only when it shows as itself; an invisible character would make the quote read as another name.
        var shown = Vauban.Access.StatedText.HasHiddenCharacters(name) ? "with this name (it holds invisible characters)" : $"'{name}'";
        return alike.Count > 0
            ? $"No establishment {shown} — did you mean {string.Join(" or ", alike.Select(t => $"'{t.Name}'"))}?"
            : $"No establishment {shown}. Create it with: vauban tenants add <name> (see: vauban tenants list)";
    }

    public static Command Build()
    {
        var tenants = new Command("tenants", "Manage establishments (hospital, clinic, laboratory, practice); each is a tenant with its own keys.");
        var add = new Command("add", "Create an establishment and its encryption keys.");
        var name = new Argument<string>("name") { Description = "The tenant's short name: letters, digits, '-', '_' or '.' (e.g. chu-nantes); refused when it reads like an existing one (same letters in another case or look-alike characters)." };
        add.Arguments.Add(name);
        StoreArguments.AddTo(add);
        add.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            // Refused before the store is opened: a name mistyped on a first run left a new, empty store and master key behind.
            // (Only a name no establishment can have: one that reads like an existing one is named as such by AddAsync.)
            // A name no establishment can have is a usage error (exit 2); one a store made earlier may hold, or one that reads like
            // an existing one, is the store's refusal (Tenants.AddAsync compares it with those there first).
            if (!Vauban.Access.Tenants.IsValidName(parse.GetValue(name)))
                throw new UsageException(Vauban.Access.Tenants.NameProblem(parse.GetValue(name)) ?? "An establishment name is 1 to 100 letters, digits, '-', '_' or '.'.");
            await using var store = await StoreArguments.OpenAsync(parse, token, create: true);
            // The act is the first entry of the new tenant's own chain, committed with the tenant: no entry, no tenant (fail closed).
            var tenant = await store.Tenants.AddAsync(parse.GetValue(name)!, AdministrationAudit.Context, token);
            Console.WriteLine($"Created the establishment '{tenant.Name}' (id {tenant.Id}) in {store.Description}.");
            return 0;
        }, ct));

        var list = new Command("list", "List the establishments in the store.");
        StoreArguments.AddTo(list);
        list.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            foreach (var tenant in await store.Tenants.ListAsync(token)) Console.WriteLine($"{tenant.Id}\t{tenant.Name}");
            return 0;
        }, ct));
        tenants.Subcommands.Add(add);
        tenants.Subcommands.Add(list);
        return tenants;
    }
}
