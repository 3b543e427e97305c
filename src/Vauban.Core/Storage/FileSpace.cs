// Disk space given to a file before it is written through a memory mapping. A page stored into through a mapping is
// allocated on the disk only when the kernel writes it back; on a full disk that allocation fails then, and the next
// store into such a page kills the process (SIGBUS) instead of failing one call. posix_fallocate reserves the blocks up
// front, so a full disk is an IOException where the file is made or grown.
using System.Runtime.InteropServices;

namespace Vauban.Storage;

internal static class FileSpace
{
    private const int EINTR = 4;
    private const int EINVAL = 22;
    private const int ENOSPC = 28;
    private const int EOPNOTSUPP = 95;

    /// <summary>Makes <paramref name="file"/> <paramref name="length"/> bytes long (never shorter), every block allocated on
    /// Linux; elsewhere, or on a file system without allocation, only its length is set.</summary>
    public static void Allocate(FileStream file, long length)
    {
        if (OperatingSystem.IsLinux())
        {
            var handle = file.SafeFileHandle;
            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                var fd = (int)handle.DangerousGetHandle();
                int error;
                do error = NativeMethods.posix_fallocate(fd, 0, length);
                while (error == EINTR);
                if (error == 0) return;
                if (error is not (EOPNOTSUPP or EINVAL))
                {
                    throw new IOException($"Cannot allocate {length:N0} bytes for {file.Name} (errno {error}{(error == ENOSPC ? ": no space left on the device" : "")}).");
                }
            }
            finally
            {
                if (added) handle.DangerousRelease();
            }
        }
        if (file.Length < length) file.SetLength(length);
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054, CA5392 // a plain libc call with blittable arguments
        [DllImport("libc")]
        internal static extern int posix_fallocate(int fd, long offset, long length);
#pragma warning restore SYSLIB1054, CA5392
    }
}
