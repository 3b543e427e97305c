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
            return FromBase64(File.ReadAllText(filePath).Trim(), filePath);
        }

        if (Directory.Exists(filePath))
        {
            throw new VaubanConfigurationException($"The master key file '{filePath}' is a folder; name the key file itself.");
        }
        var directory = Path.GetDirectoryName(Path.GetFullPath(filePath));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        // Written whole and synced under a name of its own, then put in place without replacing anything: the store's
        // first keys are wrapped under it and committed durably right after, so a key file still in the page cache
        // when the power goes (empty or missing at restart) would lose every establishment; and a second process
        // starting at the same moment must find either no file or the whole key, never an empty one.
        var created = Generate();
        var temporary = $"{filePath}.{Guid.NewGuid():N}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(created._key)));
                stream.Flush(flushToDisk: true);
            }
            try
            {
                File.Move(temporary, filePath, overwrite: false);
            }
            catch (IOException) when (File.Exists(filePath))
            {
                return Load(filePath, null); // another process made it first: that key is the store's
            }
        }
        finally
        {
            File.Delete(temporary);
        }
        return created;
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
