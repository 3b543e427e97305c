// The master key file as processes starting together find it: one key, whole, owner-only.
using Vauban.Crypto;

namespace Vauban.Tests.Crypto;

public class MasterKeyTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-key-" + Guid.NewGuid().ToString("N")[..8]);

    public MasterKeyTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        try { Directory.Delete(_directory, true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Processes_starting_together_on_a_new_store_all_get_the_one_key_that_is_kept()
    {
        for (var round = 0; round < 20; round++)
        {
            var file = Path.Combine(_directory, $"master-{round}.key");
            using var start = new Barrier(8);
            // Each start either makes the key or reads the whole of the one made first; none fails on a half-written file.
            var keys = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
            {
                start.SignalAndWait();
                return MasterKey.Load(file, null).Fingerprint;
            })));
            Assert.Single(keys.Distinct());
            Assert.Equal(keys[0], MasterKey.Load(file, null).Fingerprint);
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
    }

    [Fact]
    public void A_key_file_path_that_is_a_folder_says_so()
    {
        var error = Assert.Throws<VaubanConfigurationException>(() => MasterKey.Load(_directory, null));
        Assert.Contains("is a folder", error.Message, StringComparison.Ordinal);
    }
}
