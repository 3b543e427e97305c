using System.CommandLine;
using Spectre.Console;
using Vauban.Web;

namespace Vauban.Cli;

internal static class ServeCommand
{
    public static Command Build()
    {
        var serve = new Command("serve", "Run the Vauban server: FHIR R4 API at /fhir and the OAuth 2.0 token endpoint.");
        var urls = new Option<string>("--urls") { Description = "Where to listen.", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var demo = new Option<bool>("--demo") { Description = "On first start, create a demo establishment with synthetic patients and print API credentials." };
        serve.Options.Add(urls);
        serve.Options.Add(demo);
        StoreArguments.AddTo(serve);
        serve.SetAction((parse, ct) => VaubanCommands.RunAsync(async token =>
        {
            await using var store = await StoreArguments.OpenAsync(parse, token);
            AnsiConsole.MarkupLineInterpolated($"Store: {store.Description}");
            if (parse.GetValue(demo)) await Demo.EnsureAsync(store, parse.GetValue(urls)!, token);
            var app = VaubanHost.Build(store, new ServerOptions(parse.GetValue(urls)!));
            await app.RunAsync(token);
            return 0;
        }, ct));
        return serve;
    }
}
