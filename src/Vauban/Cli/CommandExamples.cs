// Worked examples at the end of a verb's --help: what an operator types for the usual cases, each said in a line. A test
// parses every example against the command tree, so that none goes stale when an option is renamed.
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Vauban.Cli;

/// <param name="Purpose">What it does, in a few words.</param>
/// <param name="Line">The command line, beginning with "vauban".</param>
internal sealed record CommandExample(string Purpose, string Line);

internal static class CommandExamples
{
    /// <summary>The examples of <paramref name="command"/>, found by what is typed to reach it ("keys rotate-data"); none for the
    /// root and the verbs that only group others.</summary>
    public static IReadOnlyList<CommandExample> Of(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var names = new List<string>();
        for (var verb = command; verb is not null and not RootCommand; verb = verb.Parents.OfType<Command>().FirstOrDefault()) names.Insert(0, verb.Name);
        return ByVerb.TryGetValue(string.Join(' ', names), out var examples) ? examples : [];
    }

    /// <summary>Every verb's examples, by what is typed to reach it. A line that no longer parses (an option renamed) fails
    /// CliTests, as does a verb without examples.</summary>
    internal static readonly IReadOnlyDictionary<string, CommandExample[]> ByVerb = new Dictionary<string, CommandExample[]>(StringComparer.Ordinal)
    {
        ["serve"] =
        [
            new("Try Vauban on this machine: a new SQLite store under ./data with a demo establishment", "vauban serve --demo"),
            new("In service, on PostgreSQL, over TLS", "vauban serve --db \"Host=db1;Database=vauban;Username=vauban\" --urls https://0.0.0.0:8443 --tls-certificate /etc/vauban/tls.pem --tls-key /etc/vauban/tls.key --public-url https://dpi.chu-nantes.fr:8443"),
            new("Behind a reverse proxy that sets X-Forwarded-For", "vauban serve --urls http://127.0.0.1:8080 --trusted-proxies 10.0.0.5 --public-url https://dpi.chu-nantes.fr"),
        ],
        ["tenants add"] = [new("A new establishment, with its own keys", "vauban tenants add chu-nantes")],
        ["tenants list"] = [new("The establishments of a PostgreSQL store", "vauban tenants list --db \"Host=db1;Database=vauban;Username=vauban\"")],
        ["clients add"] =
        [
            new("A laboratory system that reads patients and writes results, with a client secret", "vauban clients add --tenant chu-nantes --name \"Labo SIL\" --scopes \"system/Patient.rs system/Observation.cruds system/DiagnosticReport.cruds\""),
            new("A SMART Backend Services client (private_key_jwt) that reads everything", "vauban clients add --tenant chu-nantes --name \"Entrepôt de données\" --scopes system/*.rs --jwks entrepot.jwks.json"),
        ],
        ["clients list"] = [new("Every API client of an establishment", "vauban clients list --tenant chu-nantes")],
        ["clients revoke"] = [new("A client whose secret leaked", "vauban clients revoke --tenant chu-nantes vc_0123456789abcdef")],
        ["clients set-purpose"] = [new("What a client's accesses are recorded as (here: billing)", "vauban clients set-purpose --tenant chu-nantes vc_0123456789abcdef --purpose HPAYMT")],
        ["users add"] = [new("A physician, who acts as a Practitioner of the store", "vauban users add --tenant chu-nantes --email claire.martin@chu-nantes.fr --role Physician --practitioner prat-0042 --name \"Dr Claire Martin\" --url https://dpi.chu-nantes.fr")],
        ["users list"] = [new("Every staff account of an establishment", "vauban users list --tenant chu-nantes")],
        ["users lock"] = [new("An account whose password was seen on a sticky note", "vauban users lock --tenant chu-nantes --email claire.martin@chu-nantes.fr")],
        ["users unlock"] = [new("After review", "vauban users unlock --tenant chu-nantes --email claire.martin@chu-nantes.fr")],
        ["users revoke-sessions"] = [new("Sign out a lost laptop", "vauban users revoke-sessions --tenant chu-nantes --email claire.martin@chu-nantes.fr")],
        ["users enrol-link"] = [new("A new link after a lost phone", "vauban users enrol-link --tenant chu-nantes --email claire.martin@chu-nantes.fr --url https://dpi.chu-nantes.fr")],
        ["guard alerts"] = [new("Open alerts", "vauban guard alerts --tenant chu-nantes"), new("Acknowledged ones too", "vauban guard alerts --tenant chu-nantes --all")],
        ["guard acknowledge"] = [new("Two alerts reviewed", "vauban guard acknowledge --tenant chu-nantes 12 13")],
        ["guard contained"] = [new("What the guard holds now", "vauban guard contained --tenant chu-nantes")],
        ["guard release"] =
        [
            new("An account, after review (its sessions too)", "vauban guard release --tenant chu-nantes user:Qm9uam91ckNs"),
            new("An API client", "vauban guard release --tenant chu-nantes vc_0123456789abcdef"),
        ],
        ["guard grants"] = [new("Break-the-glass grants to review", "vauban guard grants --tenant chu-nantes --limit 50")],
        ["guard exports"] = [new("Bulk exports awaiting approval", "vauban guard exports --tenant chu-nantes")],
        ["guard approve-export"] = [new("Approve one, by its job id", "vauban guard approve-export --tenant chu-nantes Zx3tq0Lk2mBv9WcY1pNa4Q")],
        ["guard deny-export"] = [new("Deny one", "vauban guard deny-export --tenant chu-nantes Zx3tq0Lk2mBv9WcY1pNa4Q")],
        ["guard canaries add"] = [new("Ten more canary patients", "vauban guard canaries add --tenant chu-nantes --count 10")],
        ["guard canaries list"] = [new("The canary patients", "vauban guard canaries list --tenant chu-nantes")],
        ["seed"] =
        [
            new("10,000 synthetic patients into a new establishment", "vauban seed --tenant demo --patients 10000"),
            new("The same data again elsewhere (same seed and date, same records)", "vauban seed --tenant demo-2 --patients 10000 --seed 7 --as-of 2026-12-01"),
        ],
        ["import"] =
        [
            new("One Bundle", "vauban import transfert.json --tenant chu-nantes"),
            new("Every *.json file of a folder and its subfolders", "vauban import ./export-ancien-dpi --tenant chu-nantes"),
            new("Resources up to 4 MiB each, for a server started with --max-resource-kib 4096", "vauban import transfert.json --tenant chu-nantes --max-resource-kib 4096"),
        ],
        ["backup"] =
        [
            new("Tonight's copy of the store, beside the running server", "vauban backup /var/backups/vauban/vauban-2026-12-05.db"),
            new("A copy of another store file", "vauban backup --db /srv/vauban/data/vauban.db /mnt/backup/vauban.db"),
        ],
        ["reindex"] = [new("After an upgrade that indexes more of Observation", "vauban reindex --tenant chu-nantes --type Observation")],
        ["audit verify"] =
        [
            new("Every establishment's chain", "vauban audit verify"),
            new("One, against the checkpoints an outside witness kept", "vauban audit verify --tenant chu-nantes --witness witness-checkpoints.json"),
        ],
        ["audit patient"] = [new("Who opened a patient's record", "vauban audit patient pat-000123 --tenant chu-nantes --limit 100")],
        ["audit checkpoints"] = [new("For the outside witness", "vauban audit checkpoints --tenant chu-nantes")],
        ["audit remove-row"] =
        [
            new("A staff account's row that `audit verify` lists as ROW NOT AUTHENTIC, after review (its e-mail address can then be given again)",
                "vauban audit remove-row --tenant chu-nantes --table staff_users --id t-O0K83WSy7D"),
            new("The passkeys written in the database on an account (those that verify stay)", "vauban audit remove-row --tenant chu-nantes --table staff_passkeys --id t-O0K83WSy7D"),
        ],
        ["keys rotate-master"] = [new("A new master key, after the old file was copied", "vauban keys rotate-master --new-key-file /etc/vauban/master-2026-12.key")],
        ["keys rotate-data"] =
        [
            new("A new data key for one establishment, beside the running server", "vauban keys rotate-data --tenant chu-nantes"),
            new("Finish what a pass left (exit code 3)", "vauban keys rotate-data --tenant chu-nantes --resume"),
        ],
        ["breach"] =
        [
            new("A stolen staff account over the last month", "vauban breach --tenant chu-nantes --principal user:Qm9uam91ckNs --from 2026-11-01 --out ./breach-2026-12 --dpo-email dpo@chu-nantes.fr"),
            new("A leaked API client, letters in French only", "vauban breach --tenant chu-nantes --principal client:vc_0123456789abcdef --detected-at 2026-12-04T08:30:00Z --out ./breach-sil --lang fr"),
        ],
    };

    /// <summary>Makes --help, wherever it is given in the tree, end with the command's examples.</summary>
    public static void ShowInHelp(RootCommand root)
    {
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
