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
            return await store.Tenants.FindAsync(name, cancellationToken)
                ?? throw new ArgumentException($"No tenant named '{name}'. Create it with: vauban tenants add {name}");
        }
        var all = await store.Tenants.ListAsync(cancellationToken);
        return all.Count switch
        {
            1 => all[0],
            0 => throw new ArgumentException("The store has no tenant yet. Create one with: vauban tenants add <name>"),
            _ => throw new ArgumentException($"The store has several tenants; choose one with --tenant ({string.Join(", ", all.Select(t => t.Name))})."),
        };
    }

    public static Command Build()
    {
        var tenants = new Command("tenants", "Manage establishments (hospital, clinic, laboratory, practice); each is a tenant with its own keys.");
        var add = new Command("add", "Create an establishment and its encryption keys.");
        var name = new Argument<string>("name") { Description = "The tenant's short name: letters, digits, '-', '_' or '.' (e.g. chu-nantes)." };
        add.Arguments.Add(name);
        StoreArguments.AddTo(add);
        add.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token, create: true);
            // The act is the first entry of the new tenant's own chain, committed with the tenant: no entry, no tenant (fail closed).
            var tenant = await store.Tenants.AddAsync(parse.GetValue(name)!, AdministrationAudit.Context, token);
            Console.WriteLine($"Tenant {tenant.Name} created (id {tenant.Id}) in {store.Description}.");
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
