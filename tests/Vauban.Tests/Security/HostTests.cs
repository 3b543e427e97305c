// The host watches no folder the store writes into (its configuration is not reloaded on change).
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public class HostTests
{
    [Fact]
    public async Task The_server_watches_no_configuration_file()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite);
        // The default data folder (SQLite file, WAL, audit journal) is under the working directory. A configuration file
        // reloaded on change makes the host watch its content root and every folder below it: each write to the store
        // then woke the watcher's thread (17-18 µs of CPU a read, bench/README.md, tenth pass).
        var configuration = (IConfigurationRoot)server.Services.GetRequiredService<IConfiguration>();
        var files = configuration.Providers.OfType<FileConfigurationProvider>().ToList();
        Assert.NotEmpty(files); // the host's optional appsettings files: present, so the next line checks something
        Assert.All(files, file => Assert.False(file.Source.ReloadOnChange, $"{file.Source.Path} is reloaded on change"));
        // The content root is also the program's folder now, but under dotnet test the working directory is that folder
        // too, so no assertion here could tell the two apart.
    }
}
