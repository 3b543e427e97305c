// The host neither reads configuration from where it was started nor watches a folder the store writes into.
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Vauban.Tests.Infrastructure;

namespace Vauban.Tests.Security;

public class HostTests
{
    [Fact]
    public async Task The_server_watches_no_configuration_file_and_is_rooted_in_its_own_folder()
    {
        await using var server = await VaubanServer.StartAsync(Engine.Sqlite);
        // The default data folder (SQLite file, WAL, audit journal) is under the working directory. A configuration file
        // reloaded on change makes the host watch its content root and every folder below it: each write to the store
        // then woke the watcher's thread (17-18 µs of CPU a read, bench/README.md, tenth pass).
        var configuration = (IConfigurationRoot)server.Services.GetRequiredService<IConfiguration>();
        var files = configuration.Providers.OfType<FileConfigurationProvider>().ToList();
        Assert.NotEmpty(files); // the host's optional appsettings files: present, so the next line checks something
        Assert.All(files, file => Assert.False(file.Source.ReloadOnChange, $"{file.Source.Path} is reloaded on change"));
        var environment = server.Services.GetRequiredService<IWebHostEnvironment>();
        Assert.Equal(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory), Path.TrimEndingDirectorySeparator(environment.ContentRootPath));
    }
}
