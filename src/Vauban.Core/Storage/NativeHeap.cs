// glibc's malloc hands freed memory at the top of a heap back to the kernel (trims it) once more than 128 KiB is free
// there. SQLite allocates its page caches a page at a time with malloc and frees them whenever another connection's
// commit empties them (the audit appender commits every IngestEvery): the heap was trimmed, and every page read after
// that faulted fresh memory in from the kernel again. On this project's virtual machines a page fault is dear — sysmalloc
// and madvise were ~10 µs of a Patient read's CPU (perf, bench/README.md). Keeping freed memory in the heap costs what the
// caches hold at their fullest (2 MiB a connection), no more.
using System.Runtime.InteropServices;

namespace Vauban.Storage;

internal static class NativeHeap
{
    private const int M_TRIM_THRESHOLD = -1;
    private const int M_MMAP_THRESHOLD = -3;
    private static int _tuned;

    /// <summary>Once per process, on Linux with glibc: freed memory stays in the heap for the next allocation. Elsewhere
    /// (another C library, another system) nothing is changed.</summary>
    public static void KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux() || Interlocked.Exchange(ref _tuned, 1) == 1) return;
        try
        {
            // Setting the trim threshold also fixes the threshold above which a block gets a mapping of its own (glibc
            // otherwise raises it as it sees large blocks freed): set it too, so that blocks up to 4 MiB are reused as well.
            _ = NativeMethods.mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
            _ = NativeMethods.mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: its allocator has its own policy.
        }
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054, CA5392 // a plain libc call with blittable arguments
        [DllImport("libc")]
        internal static extern int mallopt(int param, int value);
#pragma warning restore SYSLIB1054, CA5392
    }
}
