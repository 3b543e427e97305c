// vauban guard exports | approve-export <id> | deny-export <id> — the second person on bulk exports above the
// establishment's threshold, at the command line (the security console has the same acts). The operator
// decides as "cli:<user>", which is never the requester; the decision is audited and the officer alerted.
using System.CommandLine;
using Vauban.Access;
using Vauban.Guard;
using Vauban.Records;

namespace Vauban.Cli;

internal static class ExportApprovalCommands
{
    public static Command List()
    {
        var command = new Command("exports", "Bulk exports awaiting approval (above the establishment's size threshold), oldest first, with the reasons stated.");
        var tenant = TenantCommands.Option();
        command.Options.Add(tenant);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var pending = await store.ExportApprovals.PendingAsync(owner.Id, token);
            await VaubanCommands.AuditReadAsync(store, owner, "guard exports", pending.Count, token);
            Console.WriteLine("id\trequested (UTC)\tby\tlevel\ttypes\tpatients\tresources\treason");
            foreach (var p in pending)
            {
                Console.WriteLine($"{p.Job.Id}\t{p.Job.CreatedAt:yyyy-MM-dd HH:mm:ss}\t{p.Job.Principal}\t{(p.Job.Level == ExportLevel.Patient ? "patient" : "system")}\t"
                    + $"{string.Join(",", p.Job.Types)}\t{p.Job.Patients}\t{p.Job.Resources}\t{p.Reason}");
            }
            if (pending.Count == 0) Console.Error.WriteLine("No export awaits approval.");
            return 0;
        }, ct));
        return command;
    }

    public static Command Decide(bool approve)
    {
        var command = new Command(approve ? "approve-export" : "deny-export",
            approve ? "Approve a bulk export awaiting approval: its requester may then download it." : "Deny a bulk export awaiting approval: nothing is exported.");
        var tenant = TenantCommands.Option();
        var id = new Argument<string>("id") { Description = "The job id, as shown by 'vauban guard exports'." };
        // An id that cannot be one is a usage error (exit 2), refused before the store is opened.
        id.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { } given && !ExportJob.IsValidId(given))
                result.AddError($"'{given}' is not an export job id: one is 22 letters, digits, '-' or '_', as 'vauban guard exports' lists them.");
        });
        command.Options.Add(tenant);
        command.Arguments.Add(id);
        StoreArguments.AddTo(command);
        command.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            var job = parse.GetValue(id)!;
            await using var store = await StoreArguments.OpenAsync(parse, token);
            var owner = await TenantCommands.ResolveAsync(store, parse.GetValue(tenant), token);
            var decision = await store.ExportApprovals.DecideAsync(AccessContext.Operator(owner, "export approval"), job, approve, token);
            if (decision != ExportDecision.Done) throw new ArgumentException($"No export of {owner.Name} awaits approval under {job} (see: vauban guard exports --tenant {owner.Name}).");
            Console.WriteLine(approve ? $"Export {job} approved: its requester can download it now." : $"Export {job} denied.");
            return 0;
        }, ct));
        return command;
    }
}
