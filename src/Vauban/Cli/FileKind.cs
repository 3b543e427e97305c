// What a path the operator names as a file is, found without opening it: opening a named pipe (FIFO) for reading waits
// for a writer, so `vauban import` given one — or a folder holding one — hung for ever, and a device never ends. .NET
// reports a pipe, a socket and a device as plain files; statx(2) tells them apart (Linux, whose struct statx has the
// same layout on every architecture).
using System.Runtime.InteropServices;
using System.Text;

namespace Vauban.Cli;

internal static class FileKind
{
    /// <summary>"a named pipe (FIFO)", "a socket", "a character device", "a block device" when <paramref name="path"/> (followed
    /// through symbolic links) is one; null for a regular file, a folder, or what cannot be told (a path that is not there,
    /// another system than Linux), left to the opening to say.</summary>
    public static string? NotRegular(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        var buffer = new byte[StatxSize];
        try
        {
            if (NativeMethods.statx(AtCurrentFolder, Encoding.UTF8.GetBytes(path + "\0"), 0, StatxType, buffer) != 0) return null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return null; // a C library older than statx (glibc 2.28), or not found as "libc": left to the opening
        }
        if ((BitConverter.ToUInt32(buffer, 0) & StatxType) == 0) return null;
        return (BitConverter.ToUInt16(buffer, ModeOffset) & FileTypeMask) switch
        {
            0x1000 => "a named pipe (FIFO)",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0xC000 => "a socket",
            _ => null, // 0x8000 a regular file, 0x4000 a folder
        };
    }

    private const int AtCurrentFolder = -100; // AT_FDCWD: a relative path is read from the working directory
    private const uint StatxType = 0x1; // STATX_TYPE: stx_mode's file type is asked for (and stx_mask says it was given)
    private const int StatxSize = 256; // sizeof(struct statx)
    private const int ModeOffset = 28; // stx_mode: after stx_mask, stx_blksize (u32), stx_attributes (u64), stx_nlink, stx_uid, stx_gid (u32)
    private const int FileTypeMask = 0xF000; // S_IFMT

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054, CA5392 // a plain libc call with blittable arguments
        [DllImport("libc", SetLastError = true)]
        internal static extern int statx(int dirfd, byte[] path, int flags, uint mask, byte[] statxbuf);
#pragma warning restore SYSLIB1054, CA5392
    }
}
