using System.CommandLine;

namespace Vauban.Cli;

internal static class ClientCommands
{
    public static Command Build()
    {
        var clients = new Command("clients", "Manage registered API clients (OAuth 2.0 client credentials, SMART Backend Services).");
        var add = new Command("add", "Register an API client and print its client_id and client_secret once (the secret is stored only hashed).");
        var tenant = new Option<string>("--tenant") { Description = "The establishment the client belongs to.", Required = true };
        var name = new Option<string>("--name") { Description = "A name that tells the security officer what this client is.", Required = true };
        var scopes = new Option<string>("--scopes") { Description = "SMART v2 scopes, space-separated, e.g. \"system/Patient.rs system/Observation.rs\" or \"system/*.cruds\".", Required = true };
        var jwks = new Option<FileInfo?>("--jwks") { Description = "A JSON Web Key Set file with the client's public key(s), each with its own \"kid\": the client then authenticates with private_key_jwt instead of a secret (its assertions name their key by kid)." };
        add.Options.Add(tenant);
        add.Options.Add(name);
        add.Options.Add(scopes);
        var patients = new Option<string?>("--patients") { Description = "Limit the client to these patients' records: Patient ids separated by commas or spaces." };
        var ownOnly = new Option<bool>("--own-resources-only") { Description = "Limit the client to the resources it created itself." };
        var purpose = PurposeOption("What the client's acts are for, recorded on each of their audit entries");
        purpose.DefaultValueFactory = _ => Vauban.Access.KnownPurposes.Treatment;
        // A file that is not there is a usage error (exit 2), as a missing argument is: VaubanCommands.SayValues.
        add.Options.Add(jwks);
        add.Options.Add(patients);
        add.Options.Add(ownOnly);
        add.Options.Add(purpose);
        StoreArguments.AddTo(add);
        add.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            // What was typed and the file named are checked before the store is opened: a value that cannot be registered as
            // given is the operator's mistake (exit 2). A patient the establishment does not have is found in the store (exit 1).
            if (Vauban.Access.ApiClients.NameProblem(parse.GetValue(name)) is { } wrongName) throw new UsageException(UsageError.About("--name", wrongName));
            if (Vauban.Access.ApiClients.ScopesProblem(parse.GetValue(scopes)) is { } wrongScopes) throw new UsageException(UsageError.About("--scopes", wrongScopes));
            var patientList = parse.GetValue(patients)?.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var limits = new Vauban.Access.ClientLimits(patientList, parse.GetValue(ownOnly));
            if (limits.Problem is { } wrongPatients) throw new UsageException(UsageError.About("--patients", wrongPatients));
            string? jwksText = null;
            if (parse.GetValue(jwks) is { } file)
            {
                jwksText = await UsageError.ReadAsync(file, "--jwks", token);
                if (Vauban.Access.ApiClients.JwksProblem(jwksText) is { } wrongKeys) throw new UsageException($"--jwks: {file.FullName}: {wrongKeys}");
            }
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            if (limits.Patients is { } asked)
            {
                // A mistyped id would limit the client to no one, or to whoever is later given that id: refused, nothing registered.
                var unknown = await store.Records.UnknownAsync(Vauban.Access.AccessContext.Operator(owner, Vauban.Access.KnownPurposes.SystemAdministration),
                    Vauban.Fhir.KnownResourceTypes.Patient, asked, "clients add --patients", token);
                if (unknown.Count > 0)
                {
                    throw new ArgumentException($"--patients: {owner.Name} has no patient {string.Join(", ", unknown.Take(5).Select(id => $"'{id}'"))}"
                        + $"{(unknown.Count > 5 ? $" (and {unknown.Count - 5} more)" : "")}; no client was registered.");
                }
            }
            // The entry commits with the registration: an audit log that cannot be written leaves no client (fail closed).
            var registration = await store.Clients.AddAsync(AdministrationAudit.Context(owner), parse.GetValue(name)!, parse.GetValue(scopes)!, jwksText, limits,
                parse.GetValue(purpose)!, token);
            Console.WriteLine($"client_id:     {registration.ClientId}");
            if (registration.ClientSecret is not null)
            {
                Console.WriteLine($"client_secret: {registration.ClientSecret}");
                Console.WriteLine("The secret is shown only now; it is stored hashed and cannot be recovered.");
            }
            Console.WriteLine($"scopes:        {registration.Scopes}");
            Console.WriteLine($"purpose:       {registration.Purpose} ({Vauban.Access.KnownPurposes.Display(registration.Purpose)})");
            if (limits.Patients is { } limited) Console.WriteLine($"limited to:    {Counted.En(limited.Count, "patient", "patients")}");
            if (limits.OwnResourcesOnly) Console.WriteLine("limited to:    the resources it creates");
            return 0;
        }, ct));
        clients.Subcommands.Add(add);
        clients.Subcommands.Add(List());
        clients.Subcommands.Add(Revoke());
        clients.Subcommands.Add(SetPurpose());
        return clients;
    }

    /// <summary>--purpose, a client's purpose of use: <paramref name="what"/>, then the codes it takes. An unknown code is a usage
    /// error (exit 2), refused before the store is opened: nothing is registered or changed.</summary>
    private static Option<string> PurposeOption(string what)
    {
        var purpose = new Option<string>("--purpose")
        {
            Description = what + " (a v3-ActReason code): "
                + string.Join(", ", Vauban.Access.KnownPurposes.ForClients.Select(p => $"{p} ({Vauban.Access.KnownPurposes.Display(p)})")) + ".",
        };
        purpose.Validators.Add(result =>
        {
            if (Vauban.Access.ApiClients.PurposeProblem(result.GetValueOrDefault<string>()) is { } problem) result.AddError("--purpose: " + problem);
        });
        return purpose;
    }

    private static Command SetPurpose()
    {
        var command = new Command("set-purpose",
            "Change what an API client's acts are for (e.g. a billing system registered for treatment): every audit entry of its acts records it from now on "
            + "(within 30 s on running servers); entries already written keep theirs. Audited, naming both purposes.");
        var tenant = TenantCommands.Option();
        var clientId = new Argument<string>("client_id") { Description = "As shown by 'vauban clients list'." };
        var purpose = PurposeOption("The client's purpose of use");
        purpose.Required = true;
        command.Options.Add(tenant);
        command.Options.Add(purpose);
        command.Arguments.Add(clientId);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var id = parse.GetValue(clientId)!;
            var next = parse.GetValue(purpose)!;
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var previous = await store.Clients.SetPurposeAsync(AdministrationAudit.Context(owner), id, next, token)
                ?? throw new ArgumentException($"{owner.Name} has no active API client '{Web.ServiceLabels.OneLine(id)}' (see: vauban clients list --tenant {owner.Name}).");
            Console.WriteLine(previous == next
                ? $"{id} is already registered for {next} ({Vauban.Access.KnownPurposes.Display(next)}): nothing changed."
                : $"{id}: its acts are now recorded for {next} ({Vauban.Access.KnownPurposes.Display(next)}), no longer {previous}; within 30 s on running servers.");
            return 0;
        }, ct));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "The establishment's API clients: id, name, scopes, purpose of use, limits, and whether revoked (never a secret).");
        var tenant = TenantCommands.Option();
        command.Options.Add(tenant);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var list = await store.Clients.ListAsync(owner, token);
            await VaubanCommands.AuditReadAsync(store, owner, "clients list", list.Count, token);
            Console.WriteLine("client_id\tname\tscopes\tpurpose\tauthentication\tlimited to\tcreated (UTC)\tstatus");
            foreach (var c in list)
            {
                var limits = c.PatientLimit is { } n ? Counted.En(n, "patient", "patients") : c.OwnResourcesOnly ? "its own resources" : "-";
                Console.WriteLine($"{c.ClientId}\t{Web.ServiceLabels.OneLine(c.Name)}\t{c.Scopes}\t{c.Purpose}\t{(c.PrivateKeyJwt ? "private_key_jwt" : "secret")}\t{limits}\t{c.CreatedAt:yyyy-MM-dd HH:mm:ss}\t{(c.Revoked ? "revoked" : "active")}");
            }
            if (list.Count == 0) Console.Error.WriteLine($"No API clients in {owner.Name}.");
            return 0;
        }, ct));
        return command;
    }

    private static Command Revoke()
    {
        var command = new Command("revoke", "Revoke an API client for good (a leaked secret or key, a contract ended): no new token, and its tokens stop working within 30 s on running servers. Audited.");
        var tenant = TenantCommands.Option();
        var clientId = new Argument<string>("client_id") { Description = "As shown by 'vauban clients list'." };
        command.Options.Add(tenant);
        command.Arguments.Add(clientId);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var id = parse.GetValue(clientId)!;
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            // The entry commits with the revocation: an audit log that cannot be written revokes nothing (fail closed).
            if (!await store.Clients.RevokeAsync(AdministrationAudit.Context(owner), id, token))
                throw new ArgumentException($"{owner.Name} has no active API client '{Web.ServiceLabels.OneLine(id)}' (see: vauban clients list --tenant {owner.Name}).");
            Console.WriteLine($"Revoked {id}: it gets no new token, and its tokens stop working within 30 s on running servers.");
            return 0;
        }, ct));
        return command;
    }
}
