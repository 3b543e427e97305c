// The audit journal: where a read-side act's entries are appended before its data leaves. Each act's record is copied
// into this process's own file, mapped in memory, then the appender copies them onto the tenant's chain in the database
// behind the requests, in large batches (ADR 0009, revised). The file survives the process: a store that opens finds the
// journals no live process holds (each is locked while its owner runs) and puts what they hold on the chain, from
// where audit_journals says the last copy stopped.
//
// Why mapped: a byte stored in a shared mapping of a file is in the operating system's page cache at once, as a write()
// puts it there, so a process that dies (a kill, a crash) loses nothing, and the flusher's fsync brings it to the disk
// the same way. The write() system call cost ~3.5 µs of every audited read on this project's virtual machines; the copy
// costs a fraction of that (bench/README.md, twenty-third pass). The file's space is allocated when it is made
// (posix_fallocate), so a full disk refuses the journal there — a clear failure, the act refused — and never strikes
// later as a fault while an entry is copied into a page the disk has no room for.
//
// A record: magic, body length, body (tenant, count, then each entry's clear columns and sealed part), and a trailer
// (the length masked), so that a record torn or zero-filled by a power loss ends the file instead of being misread.
// The file is longer than what was written (zeros after the records) until it is closed or rotated, when it is cut to
// its records. Identifying fields are in the sealed part (AES-256-GCM, as on the chain): the journal holds nothing in
// clear that the chain does not.
using System.Buffers;
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using Vauban.Storage;

namespace Vauban.Audit;

/// <summary>A journal file rotated out: its name, its size, and the stream that holds its lock until it is deleted.</summary>
internal sealed record RetiredJournal(string Name, long End, FileStream File);

/// <summary>One act's entries read back from a journal, and the offset just past its record.</summary>
internal readonly record struct JournalRecord(long TenantId, List<PreparedEntry> Entries, long End);

internal sealed class AuditJournal : IDisposable
{
    public const string Extension = ".journal";

    /// <summary>By default a journal file is retired, and a new one started, past this size; the retired file is deleted once
    /// its entries are on the chain and the database has them on disk.</summary>
    public const long DefaultRotateAt = 64L << 20;

    private const uint Magic = 0x314A4156; // "VAJ1"
    private const uint TrailerMask = 0x5A5A5A5A;
    private const int HeaderSize = 8;
    private const int TrailerSize = 4;
    private const int EntryFixedSize = 8 + 2 + 2 + 2 + 8 + 8 + 4;

    /// <summary>Files are allocated, and grown for a record that does not fit, in steps of this size.</summary>
    private const long AllocationStep = 64L << 10;

    private readonly string _directory;
    private readonly string _store;
    private readonly long _rotateAt;
    private JournalFile _current;
    private readonly Lock _flushLock = new(); // the flusher's fsync against a file being swapped, grown or closed
    private bool _closed;

    private AuditJournal(string directory, string store, long rotateAt, JournalFile current)
    {
        _directory = directory;
        _store = store;
        _rotateAt = rotateAt;
        _current = current;
    }

    /// <summary>The current file's name (the key of its row in audit_journals).</summary>
    public string Name => _current.Name;

    /// <summary>Bytes written to the current file.</summary>
    public long Position { get; private set; }

    /// <summary>A new journal file of the store <paramref name="store"/> (its id) in <paramref name="directory"/> (created 0700),
    /// locked for this process, rotated past <paramref name="rotateAt"/> bytes.</summary>
    public static AuditJournal Create(string directory, string store, long rotateAt) =>
        new(directory, store, rotateAt, JournalFile.Create(directory, store, InitialSize(rotateAt)));

    /// <summary>A file holds the records up to the rotation size and the one that crosses it, mostly small.</summary>
    private static long InitialSize(long rotateAt) => RoundUp(Math.Max(rotateAt, 0) + AllocationStep);

    private static long RoundUp(long size) => (size + AllocationStep - 1) / AllocationStep * AllocationStep;

    /// <summary>The length of one act's record.</summary>
    private static int RecordLength(IReadOnlyList<PreparedEntry> entries, out int body)
    {
        body = 8 + 4;
        foreach (var e in entries) body += EntryFixedSize + e.Sealed.Length;
        return HeaderSize + body + TrailerSize;
    }

    /// <summary>Appends one act's entries; returns the offset just past them. The caller serializes calls. The record is
    /// in the page cache when this returns. Fails (IOException) only when a record larger than what the file has left
    /// cannot be given the room: nothing is written then.</summary>
    public long Write(long tenantId, IReadOnlyList<PreparedEntry> entries)
    {
        var length = RecordLength(entries, out var body);
        if (Position + length > _current.Size)
        {
            lock (_flushLock) _current.Grow(RoundUp(Math.Max(Position + length, _current.Size * 2)));
        }
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var span = buffer.AsSpan(0, length);
            BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
            BinaryPrimitives.WriteInt32LittleEndian(span[4..], body);
            BinaryPrimitives.WriteInt64LittleEndian(span[8..], tenantId);
            BinaryPrimitives.WriteInt32LittleEndian(span[16..], entries.Count);
            var at = 20;
            foreach (var e in entries)
            {
                BinaryPrimitives.WriteInt64LittleEndian(span[at..], e.At);
                BinaryPrimitives.WriteInt16LittleEndian(span[(at + 8)..], checked((short)e.Action));
                BinaryPrimitives.WriteInt16LittleEndian(span[(at + 10)..], checked((short)e.Outcome));
                BinaryPrimitives.WriteInt16LittleEndian(span[(at + 12)..], checked((short)e.Type));
                BinaryPrimitives.WriteInt64LittleEndian(span[(at + 14)..], e.PrincipalIndex);
                BinaryPrimitives.WriteInt64LittleEndian(span[(at + 22)..], e.PatientIndex);
                BinaryPrimitives.WriteInt32LittleEndian(span[(at + 30)..], e.Sealed.Length);
                e.Sealed.CopyTo(span[(at + EntryFixedSize)..]);
                at += EntryFixedSize + e.Sealed.Length;
            }
            BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)body ^ TrailerMask);
            _current.View.WriteArray(Position, buffer, 0, length);
            Position += length;
            return Position;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Past the rotation size: syncs the current file, cuts it to its records and starts a new one. Returns the
    /// retired file — name, size, and the stream that keeps it locked: the caller disposes it only once the file is deleted,
    /// or another store opening meanwhile would take it for a dead process's journal and copy it a second time. Null when
    /// not due. A failure leaves the current file in use. The caller serializes this with <see cref="Write"/>.</summary>
    public RetiredJournal? RotateIfLarge()
    {
        if (Position < _rotateAt) return null;
        var next = JournalFile.Create(_directory, _store, InitialSize(_rotateAt));
        JournalFile retired;
        lock (_flushLock)
        {
            try
            {
                RandomAccess.FlushToDisk(_current.Handle);
            }
            catch
            {
                next.Discard();
                throw;
            }
            retired = _current;
            _current = next;
        }
        var end = Position;
        Position = 0;
        retired.Unmap(end);
        return new RetiredJournal(retired.Name, end, retired.File);
    }

    /// <summary>The bytes of the current file from <paramref name="from"/> to <paramref name="to"/> (written already). The caller
    /// serializes this with <see cref="Write"/> and <see cref="RotateIfLarge"/>.</summary>
    public byte[] Read(long from, long to)
    {
        var end = Math.Min(to, Position); // never the zeros past the records
        if (end <= from) return [];
        var data = new byte[checked((int)(end - from))];
        _current.View.ReadArray(from, data, 0, data.Length);
        return data;
    }

    /// <summary>The bytes of a journal file from <paramref name="from"/> to <paramref name="to"/>, or fewer if it ends before.</summary>
    public static byte[] ReadRange(SafeFileHandle handle, long from, long to)
    {
        var data = new byte[checked((int)(to - from))];
        var read = 0;
        while (read < data.Length)
        {
            var n = RandomAccess.Read(handle, data.AsSpan(read), from + read);
            if (n == 0) return data[..read];
            read += n;
        }
        return data;
    }

    /// <summary>How much of a journal file's bytes is written: a live file, or one whose process died, is followed by zeros
    /// up to its allocated size. A record never ends with a zero byte (its trailer's last byte is the mask's), so zeros
    /// cut off are never part of a whole record; a torn one's zeros at its end are not counted.</summary>
    public static int Written(ReadOnlySpan<byte> data) => data.LastIndexOfAnyExcept((byte)0) + 1;

    /// <summary>Brings what was written to the disk (the flusher, every DurableEvery). An fsync of the file covers what was
    /// stored through its mapping: both are the same pages of the page cache.</summary>
    public void FlushToDisk()
    {
        lock (_flushLock)
        {
            if (!_closed) RandomAccess.FlushToDisk(_current.Handle);
        }
    }

    /// <summary>Closes the file, cut to its records. What was written stays in the page cache for the disk; the caller
    /// flushes first when it must be durable now.</summary>
    public void Dispose()
    {
        lock (_flushLock)
        {
            if (_closed) return;
            _closed = true;
            try
            {
                _current.Unmap(Position);
            }
            finally
            {
                _current.File.Dispose();
            }
        }
    }

    /// <summary>One journal file: the stream that holds it (and its lock) open, and its mapping.</summary>
    private sealed class JournalFile
    {
        private MemoryMappedFile _map;

        private JournalFile(string directory, string name, FileStream file, MemoryMappedFile map, MemoryMappedViewAccessor view, long size)
        {
            Directory = directory;
            Name = name;
            File = file;
            Handle = file.SafeFileHandle;
            _map = map;
            View = view;
            Size = size;
        }

        public string Directory { get; }
        public string Name { get; }
        public FileStream File { get; }

        /// <summary>File's handle, taken once: FileStream.SafeFileHandle seeks (lseek) on every call to sync its position.</summary>
        public SafeFileHandle Handle { get; }
        public MemoryMappedViewAccessor View { get; private set; }

        /// <summary>The file's allocated and mapped length.</summary>
        public long Size { get; private set; }

        /// <summary>A new file named for the store, created 0600 and locked (FileShare.None is an exclusive flock for as long
        /// as it is open), its <paramref name="size"/> allocated and mapped, its name synced with the folder.</summary>
        public static JournalFile Create(string directory, string store, long size)
        {
            DirectorySync.Create(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var name = FileName(store);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0 };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            var file = new FileStream(Path.Combine(directory, name), options);
            MemoryMappedFile? map = null;
            try
            {
                FileSpace.Allocate(file, size);
                (map, var view) = Map(file, size);
                // The entries written to it are synced with the file; its name, with the folder, once.
                DirectorySync.Sync(directory);
                return new JournalFile(directory, name, file, map, view, size);
            }
            catch
            {
                map?.Dispose();
                file.Dispose();
                System.IO.File.Delete(Path.Combine(directory, name));
                throw;
            }
        }

        /// <summary>Allocates and maps the file up to <paramref name="size"/>: its records stay where they are. The new mapping is
        /// made before the old one goes, so a failure leaves the file in use as it was.</summary>
        public void Grow(long size)
        {
            FileSpace.Allocate(File, size); // first: a full disk leaves the file as it was
            var (map, view) = Map(File, size);
            var (oldView, oldMap) = (View, _map);
            (View, _map, Size) = (view, map, size);
            Release(oldView, oldMap);
        }

        /// <summary>Maps the first <paramref name="size"/> bytes of <paramref name="file"/> (already that long) for reading and
        /// writing, shared with the page cache.</summary>
        private static (MemoryMappedFile Map, MemoryMappedViewAccessor View) Map(FileStream file, long size)
        {
            var map = MemoryMappedFile.CreateFromFile(file, null, size, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: true);
            try
            {
                return (map, map.CreateViewAccessor(0, size, MemoryMappedFileAccess.ReadWrite));
            }
            catch
            {
                map.Dispose();
                throw;
            }
        }

        /// <summary>Unmaps a view. Disposing it flushes its pages (msync) and throws if that fails; the pages are in the page
        /// cache all the same, and the flusher's or the closer's fsync of the file brings them to the disk.</summary>
        private static void Release(MemoryMappedViewAccessor view, MemoryMappedFile map)
        {
            try
            {
                view.Dispose();
            }
            catch (IOException)
            {
                // see above
            }
            finally
            {
                map.Dispose();
            }
        }

        /// <summary>Unmaps the file and cuts it to its <paramref name="records"/> bytes. The stream (and the lock) stays open
        /// for the caller. A file that cannot be cut keeps zeros after its records, which readers ignore.</summary>
        public void Unmap(long records)
        {
            Release(View, _map);
            try
            {
                File.SetLength(records);
            }
            catch (IOException)
            {
                // zeros after the records
            }
        }

        /// <summary>Closes and deletes a new file that could not be put in use: nothing was written to it.</summary>
        public void Discard()
        {
            Release(View, _map);
            File.Dispose();
            System.IO.File.Delete(Path.Combine(Directory, Name));
        }
    }

    /// <summary>A journal file's name: the store's id, then a new id. A store copies only its own journals.</summary>
    private static string FileName(string store) => store + "-" + Guid.NewGuid().ToString("N") + Extension;

    /// <summary>The records of a journal, up to the first one that is incomplete or damaged.</summary>
    public static List<JournalRecord> Parse(ReadOnlySpan<byte> data)
    {
        var records = new List<JournalRecord>();
        var at = 0;
        while (data.Length - at >= HeaderSize + 12 + TrailerSize)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(data[at..]) != Magic) break;
            var body = BinaryPrimitives.ReadInt32LittleEndian(data[(at + 4)..]);
            if (body < 12 || body > data.Length - at - HeaderSize - TrailerSize) break;
            var span = data.Slice(at + HeaderSize, body);
            if (BinaryPrimitives.ReadUInt32LittleEndian(data[(at + HeaderSize + body)..]) != ((uint)body ^ TrailerMask)) break;
            var tenantId = BinaryPrimitives.ReadInt64LittleEndian(span);
            var count = BinaryPrimitives.ReadInt32LittleEndian(span[8..]);
            var entries = new List<PreparedEntry>(Math.Max(0, Math.Min(count, 1024)));
            var p = 12;
            var damaged = count < 0;
            for (var i = 0; i < count && !damaged; i++)
            {
                if (span.Length - p < EntryFixedSize) { damaged = true; break; }
                var sealedLength = BinaryPrimitives.ReadInt32LittleEndian(span[(p + 30)..]);
                if (sealedLength < 0 || sealedLength > span.Length - p - EntryFixedSize) { damaged = true; break; }
                entries.Add(new PreparedEntry(
                    BinaryPrimitives.ReadInt64LittleEndian(span[p..]),
                    BinaryPrimitives.ReadInt16LittleEndian(span[(p + 8)..]),
                    BinaryPrimitives.ReadInt16LittleEndian(span[(p + 10)..]),
                    BinaryPrimitives.ReadInt16LittleEndian(span[(p + 12)..]),
                    BinaryPrimitives.ReadInt64LittleEndian(span[(p + 14)..]),
                    BinaryPrimitives.ReadInt64LittleEndian(span[(p + 22)..]),
                    span.Slice(p + EntryFixedSize, sealedLength).ToArray()));
                p += EntryFixedSize + sealedLength;
            }
            if (damaged || p != body) break;
            at += HeaderSize + body + TrailerSize;
            records.Add(new JournalRecord(tenantId, entries, at));
        }
        return records;
    }

    /// <summary>The journal files of the store <paramref name="store"/> in <paramref name="directory"/> that no live process
    /// holds, each opened (and so locked) for the caller, who disposes the handle. Files of other stores sharing the folder
    /// are left to them. <paramref name="unnamed"/>: also the files named before journals carried their store's id (a
    /// 32-digit name), taken as this store's in its own folder.</summary>
    public static IEnumerable<(string Name, SafeFileHandle Handle)> Orphans(string directory, string store, bool unnamed)
    {
        if (!Directory.Exists(directory)) yield break;
        foreach (var path in Directory.EnumerateFiles(directory, "*" + Extension).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            if (!IsOfStore(name, store) && !(unnamed && name.Length == 32 + Extension.Length)) continue;
            SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                continue; // held by its live owner (or gone meanwhile)
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }
            yield return (name, handle);
        }
    }

    private static bool IsOfStore(string name, string store) =>
        name.Length > store.Length + 1 && name.StartsWith(store, StringComparison.Ordinal) && name[store.Length] == '-';
}
