// Makes a new file's name durable. On POSIX systems a file's fsync covers its contents, not the folder entry that names
// it: after a power loss a synced file may be gone if its folder was not synced too. Used after creating the master key
// file and each audit journal file, whose loss would lose every establishment's keys or acknowledged acts.
using System.Runtime.InteropServices;
using System.Text;

namespace Vauban.Storage;

internal static class DirectorySync
{
    private const int EINVAL = 22; // a file system that cannot sync folders: nothing more to do

    /// <summary>Syncs <paramref name="directory"/> (its entries) to disk. No-op on Windows, where NTFS journals names.</summary>
    public static void Sync(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        var path = Encoding.UTF8.GetBytes(Path.GetFullPath(directory) + "\0");
        var fd = NativeMethods.open(path, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"Cannot open the folder {directory} to sync it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (NativeMethods.fsync(fd) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != EINVAL)
            {
                throw new IOException($"Cannot sync the folder {directory} (errno {errno}).");
            }
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }

    /// <summary>Creates <paramref name="directory"/> (and its missing parents, with <paramref name="mode"/>) and syncs each
    /// parent it added an entry to, so that the folder survives a power loss with what is created in it.</summary>
    public static void Create(string directory, UnixFileMode mode)
    {
        var full = Path.GetFullPath(directory);
        if (Directory.Exists(full)) return;
        var parent = Path.GetDirectoryName(full);
        if (parent is not null) Create(parent, mode);
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(full);
        else Directory.CreateDirectory(full, mode);
        if (parent is not null) Sync(parent);
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054, CA5392 // plain libc calls with blittable arguments
        [DllImport("libc", SetLastError = true)]
        internal static extern int open(byte[] path, int flags);

        [DllImport("libc", SetLastError = true)]
        internal static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        internal static extern int close(int fd);
#pragma warning restore SYSLIB1054, CA5392
    }
}
