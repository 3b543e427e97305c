// The master key wraps every tenant key. It never touches the database: it comes from the
// environment (VAUBAN_MASTER_KEY, base64) or from a file created with mode 0600 on first start.
using System.Security.Cryptography;

namespace Vauban.Crypto;

public sealed class MasterKey
{
    public const string EnvironmentVariable = "VAUBAN_MASTER_KEY";
    public const int Length = 32;

    private readonly byte[] _key;

    private MasterKey(byte[] key) => _key = key;

    internal ReadOnlySpan<byte> Bytes => _key;

    /// <summary>A short public fingerprint, to tell operators which master key a store was opened with.</summary>
    public string Fingerprint => Convert.ToHexStringLower(SHA256.HashData(_key).AsSpan(0, 6));

    public static MasterKey FromBytes(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length != Length)
        {
            throw new VaubanConfigurationException($"The master key must be {Length} bytes (it is {key.Length}).");
        }
        return new MasterKey((byte[])key.Clone());
    }

    public static MasterKey Generate() => new(RandomNumberGenerator.GetBytes(Length));

    /// <summary>
    /// Loads the master key from the environment variable if set, else from the file, creating the file
    /// (mode 0600, owner only) when it does not exist.
    /// </summary>
    public static MasterKey Load(string filePath, string? environmentValue)
    {
        if (!string.IsNullOrWhiteSpace(environmentValue))
        {
            return FromBase64(environmentValue.Trim(), EnvironmentVariable);
        }

        if (File.Exists(filePath))
        {
            if (!OperatingSystem.IsWindows())
            {
                var mode = File.GetUnixFileMode(filePath);
                if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
                {
                    throw new VaubanConfigurationException(
                        $"The master key file '{filePath}' is readable by other users; restrict it with 'chmod 600'.");
                }
            }
            return FromBase64(ReadWritten(filePath), filePath);
        }

        if (Directory.Exists(filePath))
        {
            throw new VaubanConfigurationException($"The master key file '{filePath}' is a folder; name the key file itself.");
        }
        var directory = Path.GetDirectoryName(Path.GetFullPath(filePath));
        if (!string.IsNullOrEmpty(directory))
        {
            Storage.DirectorySync.Create(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        // Created exclusively and synced before it is used: the store's first keys are wrapped under it and committed
        // durably right after, so a key file still in the page cache when the power goes (empty or missing at restart)
        // would lose every establishment. A second process starting at the same moment finds the file made first and
        // uses that key (ReadWritten waits for its writer), never a second one.
        var created = Generate();
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        FileStream stream;
        try
        {
            stream = new FileStream(filePath, options);
        }
        catch (IOException) when (File.Exists(filePath))
        {
            return FromBase64(ReadWritten(filePath), filePath);
        }
        using (stream)
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(created._key)));
            stream.Flush(flushToDisk: true);
        }
        // The file's name too: synced contents under a name the folder lost would be the same loss.
        if (!string.IsNullOrEmpty(directory)) Storage.DirectorySync.Sync(directory);
        return created;
    }

    /// <summary>The key file's text; while it is shorter than a key, another process starting at the same moment may be
    /// writing it: wait for it a little (an empty file left by a start that died is then reported as such).</summary>
    private static string ReadWritten(string filePath)
    {
        var expected = Convert.ToBase64String(new byte[Length]).Length;
        var text = File.ReadAllText(filePath).Trim();
        for (var attempt = 0; attempt < 40 && text.Length < expected; attempt++)
        {
            Thread.Sleep(50);
            text = File.ReadAllText(filePath).Trim();
        }
        return text;
    }

    private static MasterKey FromBase64(string text, string source)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            throw new VaubanConfigurationException($"The master key from {source} is not valid base64.");
        }
        if (bytes.Length != Length)
        {
            throw new VaubanConfigurationException($"The master key from {source} must decode to {Length} bytes (it has {bytes.Length}).");
        }
        return new MasterKey(bytes);
    }
}
