// Worked examples at the end of a verb's --help: what an operator types for the usual cases, each said in a line. A test
// parses every example against the command tree, so that none goes stale when an option is renamed.
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Runtime.CompilerServices;

namespace Vauban.Cli;

/// <param name="Purpose">What it does, in a few words.</param>
/// <param name="Line">The command line, beginning with "vauban".</param>
internal sealed record CommandExample(string Purpose, string Line);

internal static class CommandExamples
{
    private static readonly ConditionalWeakTable<Command, IReadOnlyList<CommandExample>> Known = [];

    /// <summary>Gives <paramref name="command"/> its examples: pairs of what it does and the line typed.</summary>
    public static T WithExamples<T>(this T command, params (string Purpose, string Line)[] examples) where T : Command
    {
        ArgumentNullException.ThrowIfNull(command);
        Known.AddOrUpdate(command, [.. examples.Select(e => new CommandExample(e.Purpose, e.Line))]);
        return command;
    }

    public static IReadOnlyList<CommandExample> Of(Command command) => Known.TryGetValue(command, out var examples) ? examples : [];

    /// <summary>Every verb's examples, by what is typed to reach it. A line that no longer parses (an option renamed) fails
    /// CliTests, as does a verb without examples.</summary>
    internal static readonly IReadOnlyDictionary<string, (string Purpose, string Line)[]> ByVerb = new Dictionary<string, (string, string)[]>(StringComparer.Ordinal)
    {
        ["serve"] =
        [
            ("Try Vauban on this machine: a new SQLite store under ./data with a demo establishment", "vauban serve --demo"),
            ("In service, on PostgreSQL, over TLS", "vauban serve --db \"Host=db1;Database=vauban;Username=vauban\" --urls https://0.0.0.0:8443 --tls-certificate /etc/vauban/tls.pem --tls-key /etc/vauban/tls.key --public-url https://dpi.chu-nantes.fr:8443"),
            ("Behind a reverse proxy that sets X-Forwarded-For", "vauban serve --urls http://127.0.0.1:8080 --trusted-proxies 10.0.0.5 --public-url https://dpi.chu-nantes.fr"),
        ],
        ["tenants add"] = [("A new establishment, with its own keys", "vauban tenants add chu-nantes")],
        ["tenants list"] = [("The establishments of a PostgreSQL store", "vauban tenants list --db \"Host=db1;Database=vauban;Username=vauban\"")],
        ["clients add"] =
        [
            ("A laboratory system that reads patients and writes results, with a client secret", "vauban clients add --tenant chu-nantes --name \"Labo SIL\" --scopes \"system/Patient.rs system/Observation.cruds system/DiagnosticReport.cruds\""),
            ("A SMART Backend Services client (private_key_jwt) that reads everything", "vauban clients add --tenant chu-nantes --name \"Entrepôt de données\" --scopes system/*.rs --jwks entrepot.jwks.json"),
        ],
        ["clients list"] = [("Every API client of an establishment", "vauban clients list --tenant chu-nantes")],
        ["clients revoke"] = [("A client whose secret leaked", "vauban clients revoke --tenant chu-nantes vc_0123456789abcdef")],
        ["clients set-purpose"] = [("What a client's accesses are recorded as (here: billing)", "vauban clients set-purpose --tenant chu-nantes vc_0123456789abcdef --purpose HPAYMT")],
        ["users add"] = [("A physician, who acts as a Practitioner of the store", "vauban users add --tenant chu-nantes --email claire.martin@chu-nantes.fr --role Physician --practitioner prat-0042 --name \"Dr Claire Martin\" --url https://dpi.chu-nantes.fr")],
        ["users list"] = [("Every staff account of an establishment", "vauban users list --tenant chu-nantes")],
        ["users lock"] = [("An account whose password was seen on a sticky note", "vauban users lock --tenant chu-nantes --email claire.martin@chu-nantes.fr")],
        ["users unlock"] = [("After review", "vauban users unlock --tenant chu-nantes --email claire.martin@chu-nantes.fr")],
        ["users revoke-sessions"] = [("Sign out a lost laptop", "vauban users revoke-sessions --tenant chu-nantes --email claire.martin@chu-nantes.fr")],
        ["users enrol-link"] = [("A new link after a lost phone", "vauban users enrol-link --tenant chu-nantes --email claire.martin@chu-nantes.fr --url https://dpi.chu-nantes.fr")],
        ["guard alerts"] = [("Open alerts", "vauban guard alerts --tenant chu-nantes"), ("Acknowledged ones too", "vauban guard alerts --tenant chu-nantes --all")],
        ["guard acknowledge"] = [("Two alerts reviewed", "vauban guard acknowledge --tenant chu-nantes 12 13")],
        ["guard contained"] = [("What the guard holds now", "vauban guard contained --tenant chu-nantes")],
        ["guard release"] =
        [
            ("An account, after review (its sessions too)", "vauban guard release --tenant chu-nantes user:Qm9uam91ckNs"),
            ("An API client", "vauban guard release --tenant chu-nantes vc_0123456789abcdef"),
        ],
        ["guard grants"] = [("Break-the-glass grants to review", "vauban guard grants --tenant chu-nantes --limit 50")],
        ["guard exports"] = [("Bulk exports awaiting approval", "vauban guard exports --tenant chu-nantes")],
        ["guard approve-export"] = [("Approve one, by its job id", "vauban guard approve-export --tenant chu-nantes Zx3tq0Lk2mBv9WcY1pNa4Q")],
        ["guard deny-export"] = [("Deny one", "vauban guard deny-export --tenant chu-nantes Zx3tq0Lk2mBv9WcY1pNa4Q")],
        ["guard canaries add"] = [("Ten more canary patients", "vauban guard canaries add --tenant chu-nantes --count 10")],
        ["guard canaries list"] = [("The canary patients", "vauban guard canaries list --tenant chu-nantes")],
        ["seed"] =
        [
            ("10,000 synthetic patients into a new establishment", "vauban seed --tenant demo --patients 10000"),
            ("The same data again elsewhere (same seed and date, same records)", "vauban seed --tenant demo-2 --patients 10000 --seed 7 --as-of 2026-12-01"),
        ],
        ["import"] =
        [
            ("One Bundle", "vauban import transfert.json --tenant chu-nantes"),
            ("Every *.json file of a folder and its subfolders", "vauban import ./export-ancien-dpi --tenant chu-nantes"),
        ],
        ["reindex"] = [("After an upgrade that indexes more of Observation", "vauban reindex --tenant chu-nantes --type Observation")],
        ["audit verify"] =
        [
            ("Every establishment's chain", "vauban audit verify"),
            ("One, against the checkpoints an outside witness kept", "vauban audit verify --tenant chu-nantes --witness witness-checkpoints.json"),
        ],
        ["audit patient"] = [("Who opened a patient's record", "vauban audit patient pat-000123 --tenant chu-nantes --limit 100")],
        ["audit checkpoints"] = [("For the outside witness", "vauban audit checkpoints --tenant chu-nantes")],
        ["keys rotate-master"] = [("A new master key, after the old file was copied", "vauban keys rotate-master --new-key-file /etc/vauban/master-2026-12.key")],
        ["keys rotate-data"] =
        [
            ("A new data key for one establishment, beside the running server", "vauban keys rotate-data --tenant chu-nantes"),
            ("Finish what a pass left (exit code 3)", "vauban keys rotate-data --tenant chu-nantes --resume"),
        ],
        ["breach"] =
        [
            ("A stolen staff account over the last month", "vauban breach --tenant chu-nantes --principal user:Qm9uam91ckNs --from 2026-11-01 --out ./breach-2026-12 --dpo-email dpo@chu-nantes.fr"),
            ("A leaked API client, letters in French only", "vauban breach --tenant chu-nantes --principal client:vc_0123456789abcdef --detected-at 2026-12-04T08:30:00Z --out ./breach-sil --lang fr"),
        ],
    };

    /// <summary>Gives each verb of <paramref name="root"/> its examples, and makes --help, wherever it is given in the tree, end with
    /// them.</summary>
    public static void ShowInHelp(RootCommand root)
    {
        var pending = new Stack<(string, Command)>([("", root)]);
        while (pending.Count > 0)
        {
            var (typed, command) = pending.Pop();
            if (ByVerb.TryGetValue(typed, out var examples)) command.WithExamples(examples);
            foreach (var sub in command.Subcommands) pending.Push(((typed + " " + sub.Name).Trim(), sub));
        }
        var help = root.Options.OfType<HelpOption>().Single();
        if (help.Action is SynchronousCommandLineAction standard) help.Action = new HelpThenExamples(standard);
    }

    private sealed class HelpThenExamples(SynchronousCommandLineAction standard) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var exit = standard.Invoke(parseResult);
            var examples = Of(parseResult.CommandResult.Command);
            if (examples.Count == 0) return exit;
            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine("Examples:");
            foreach (var example in examples)
            {
                output.WriteLine($"  {example.Purpose}:");
                output.WriteLine($"    {example.Line}");
            }
            output.WriteLine();
            return exit;
        }
    }
}
