// The audit journal file on its own: records of every size read back whole and in order, by the appender while the file
// is written and by whoever opens it after; a rotated file keeps its records; zeros or a torn record after the last whole
// record end the records (a power loss leaves either); a live file is allocated ahead of its records, and what its process
// leaves if it dies reads back whole.
using Vauban.Audit;

namespace Vauban.Tests.Security;

public sealed class AuditJournalTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vauban-journal-unit-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private static PreparedEntry Entry(int n, int sealedBytes) =>
        new(1_700_000_000_000 + n, 1, 0, 3, 1000 + n, 2000 + n, Enumerable.Range(0, sealedBytes).Select(i => (byte)(i * 7 + n)).ToArray());

    private byte[] FileBytes(string name) => File.ReadAllBytes(Path.Combine(_directory, name));

    [Fact]
    public void Records_of_every_size_read_back_whole_and_in_order_and_a_closed_file_ends_with_them()
    {
        // A search's one entry, an act of several patients, and records of ~600 KB (an export lists thousands of patients).
        string name;
        long end;
        var written = new List<(long Tenant, PreparedEntry[] Entries)>
        {
            (7, [Entry(1, 300), Entry(2, 40)]),
            (8, [Entry(3, 600_000)]),
            (7, [Entry(4, 600_000), Entry(5, 12)]),
            (9, [Entry(6, 90)]),
        };
        using (var journal = AuditJournal.Create(_directory, "store", rotateAt: 4096))
        {
            name = journal.Name;
            long last = 0;
            foreach (var (tenant, entries) in written)
            {
                var after = journal.Write(tenant, entries);
                Assert.True(after > last);
                last = after;
                // What was written is readable at once from the file, as the appender's copy reads it.
                Assert.Equal(after, AuditJournal.Parse(journal.Read(0, after))[^1].End);
            }
            end = last;
        }

        var bytes = FileBytes(name);
        Assert.Equal(end, bytes.Length); // nothing after the records
        var records = AuditJournal.Parse(bytes);
        Assert.Equal(written.Count, records.Count);
        for (var i = 0; i < written.Count; i++)
        {
            Assert.Equal(written[i].Tenant, records[i].TenantId);
            Assert.Equal(written[i].Entries.Length, records[i].Entries.Count);
            for (var j = 0; j < written[i].Entries.Length; j++)
            {
                var (expected, actual) = (written[i].Entries[j], records[i].Entries[j]);
                Assert.Equal((expected.At, expected.Action, expected.Outcome, expected.Type, expected.PrincipalIndex, expected.PatientIndex),
                    (actual.At, actual.Action, actual.Outcome, actual.Type, actual.PrincipalIndex, actual.PatientIndex));
                Assert.Equal(expected.Sealed, actual.Sealed);
            }
        }
    }

    [Fact]
    public void A_rotated_file_keeps_its_records_and_the_next_one_takes_the_rest()
    {
        using var journal = AuditJournal.Create(_directory, "store", rotateAt: 4096);
        var first = journal.Name;
        Assert.Null(journal.RotateIfLarge()); // not due
        var end = 0L;
        for (var i = 0; i < 20; i++) end = journal.Write(5, [Entry(i, 250)]);
        var retired = journal.RotateIfLarge();
        Assert.NotNull(retired);
        using (retired.File)
        {
            Assert.Equal(first, retired.Name);
            Assert.Equal(end, retired.End);
            Assert.Equal(end, retired.File.Length);
            Assert.Equal(20, AuditJournal.Parse(AuditJournal.ReadRange(retired.File.SafeFileHandle, 0, end)).Count);
        }
        Assert.NotEqual(first, journal.Name);
        Assert.Equal(0, journal.Position);
        var next = journal.Write(5, [Entry(99, 10)]);
        journal.FlushToDisk();
        Assert.Single(AuditJournal.Parse(journal.Read(0, next)));
    }

    [Fact]
    public void Zeros_or_a_torn_record_after_the_records_end_them()
    {
        string name;
        long end;
        using (var journal = AuditJournal.Create(_directory, "store", rotateAt: 1 << 20))
        {
            name = journal.Name;
            journal.Write(3, [Entry(1, 100)]);
            end = journal.Write(3, [Entry(2, 100)]);
        }
        var bytes = FileBytes(name);
        // A power loss after the file grew but before its last pages reached the disk: zeros after the records.
        var killed = bytes.Concat(new byte[8192]).ToArray();
        Assert.Equal(end, AuditJournal.Parse(killed)[^1].End);
        Assert.Equal(2, AuditJournal.Parse(killed).Count);
        // A record torn in the middle: the records before it stand, nothing of it is read.
        var torn = bytes.Concat(bytes.AsSpan(0, 40).ToArray()).Concat(new byte[100]).ToArray();
        Assert.Equal(2, AuditJournal.Parse(torn).Count);
        // What was written: the zeros are not, the torn record's bytes are, up to its last byte that is not zero (the
        // journal's damage report counts them).
        Assert.Equal(end, AuditJournal.Written(killed));
        Assert.Equal(end + bytes.AsSpan(0, 40).LastIndexOfAnyExcept((byte)0) + 1, AuditJournal.Written(torn));
    }

    [Fact]
    public void A_live_file_has_its_space_allocated_ahead_and_what_its_process_leaves_if_it_dies_reads_back_whole()
    {
        using var journal = AuditJournal.Create(_directory, "store", rotateAt: 1 << 20);
        var path = Path.Combine(_directory, journal.Name);
        var end = 0L;
        for (var i = 0; i < 50; i++) end = journal.Write(4, [Entry(i, 200), Entry(i + 100, 30)]);
        // Allocated past the rotation size when made, on the disk and not only in length: a full disk refuses the file
        // there, not a page later (a store into an unallocated page of a mapping kills the process).
        var info = new FileInfo(path);
        Assert.True(info.Length > 1 << 20, $"the file is {info.Length} bytes");
        Assert.True(AllocatedBytes(path) >= 1 << 20, "the file's blocks are allocated");

        // A process killed now leaves the file as it is (in the page cache): read as cat reads it, past the live lock.
        var left = Cat(path);
        Assert.Equal(info.Length, left.Length);
        Assert.Equal(end, AuditJournal.Written(left));
        var records = AuditJournal.Parse(left.AsSpan(0, AuditJournal.Written(left)));
        Assert.Equal(50, records.Count);
        Assert.Equal(end, records[^1].End);
        Assert.Equal(Entry(49, 200).Sealed, records[^1].Entries[0].Sealed);

        // A record larger than what the file has left grows it in place.
        var large = journal.Write(4, [Entry(7, 1_500_000)]);
        Assert.Equal(journal.Name, Path.GetFileName(path));
        Assert.Equal(51, AuditJournal.Parse(journal.Read(0, large)).Count);
        Assert.Equal(1_500_000, AuditJournal.Parse(journal.Read(0, large))[^1].Entries[0].Sealed.Length);
    }

    private static byte[] Cat(string path)
    {
        using var cat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("cat", [path]) { RedirectStandardOutput = true })!;
        using var copy = new MemoryStream();
        cat.StandardOutput.BaseStream.CopyTo(copy);
        cat.WaitForExit();
        return copy.ToArray();
    }

    /// <summary>The bytes the file system has allocated to a file (stat's blocks, 512 bytes each).</summary>
    private static long AllocatedBytes(string path)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%b", path]) { RedirectStandardOutput = true })!;
        var blocks = long.Parse(stat.StandardOutput.ReadToEnd().Trim(), System.Globalization.CultureInfo.InvariantCulture);
        stat.WaitForExit();
        return blocks * 512;
    }
}
