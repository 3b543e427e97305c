// The audit journal: where a read-side act's entries are appended before its data leaves. One write() per act into
// a file of this process's own, then the appender copies them onto the tenant's chain in the database behind the
// requests, in large batches (ADR 0009, revised). The file survives the process: a store that opens finds the
// journals no live process holds (each is locked while its owner runs) and puts what they hold on the chain, from
// where audit_journals says the last copy stopped.
//
// A record: magic, body length, body (tenant, count, then each entry's clear columns and sealed part), and a trailer
// (the length masked), so that a record torn or zero-filled by a power loss ends the file instead of being misread.
// Identifying fields are in the sealed part (AES-256-GCM, as on the chain): the journal holds nothing in clear that the
// chain does not.
using System.Buffers;
using System.Buffers.Binary;
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

    private readonly string _directory;
    private readonly string _store;
    private readonly long _rotateAt;
    private FileStream _file; // holds the file (and its lock) open; written through RandomAccess at explicit offsets
    private SafeFileHandle _handle; // _file's, taken once: FileStream.SafeFileHandle seeks (lseek) on every call to sync its position
    private readonly Lock _flushLock = new();
    private bool _closed;

    private AuditJournal(string directory, string store, long rotateAt, FileStream file, string name)
    {
        _directory = directory;
        _store = store;
        _rotateAt = rotateAt;
        _file = file;
        _handle = file.SafeFileHandle;
        Name = name;
    }

    /// <summary>The current file's name (the key of its row in audit_journals).</summary>
    public string Name { get; private set; }

    /// <summary>Bytes written to the current file.</summary>
    public long Position { get; private set; }

    /// <summary>A new journal file of the store <paramref name="store"/> (its id) in <paramref name="directory"/> (created 0700),
    /// locked for this process, rotated past <paramref name="rotateAt"/> bytes.</summary>
    public static AuditJournal Create(string directory, string store, long rotateAt)
    {
        var (file, name) = NewFile(directory, store);
        return new AuditJournal(directory, store, rotateAt, file, name);
    }

    /// <summary>A journal file's name: the store's id, then a new id. A store copies only its own journals.</summary>
    private static string FileName(string store) => store + "-" + Guid.NewGuid().ToString("N") + Extension;

    private static (FileStream File, string Name) NewFile(string directory, string store)
    {
        DirectorySync.Create(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var name = FileName(store);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0 };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        // FileShare.None is an exclusive lock on the file (flock on Unix) for as long as this process holds it open.
        var file = new FileStream(Path.Combine(directory, name), options);
        try
        {
            // The entries written to it are synced with the file; its name, with the folder, once.
            DirectorySync.Sync(directory);
        }
        catch
        {
            Discard(file, directory, name);
            throw;
        }
        return (file, name);
    }

    /// <summary>Closes and deletes a new file that could not be made durable or put in use: nothing was written to it.</summary>
    private static void Discard(FileStream file, string directory, string name)
    {
        file.Dispose();
        File.Delete(Path.Combine(directory, name));
    }

    /// <summary>Appends one act's entries; returns the offset just past them. The caller serializes calls. On failure
    /// the file is cut back to where it was, so a half-written record never precedes a good one.</summary>
    public long Write(long tenantId, IReadOnlyList<PreparedEntry> entries)
    {
        var body = 8 + 4;
        foreach (var e in entries) body += EntryFixedSize + e.Sealed.Length;
        var length = HeaderSize + body + TrailerSize;
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
            try
            {
                RandomAccess.Write(_handle, span, Position);
            }
            catch
            {
                try { RandomAccess.SetLength(_handle, Position); }
                catch (IOException) { /* the reader stops at the torn record anyway */ }
                throw;
            }
            Position += length;
            return Position;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Past the rotation size: syncs the current file and starts a new one. Returns the retired file — name,
    /// size, and the stream that keeps it locked: the caller disposes it only once the file is deleted, or another store
    /// opening meanwhile would take it for a dead process's journal and copy it a second time. Null when not due. The
    /// caller serializes this with <see cref="Write"/>.</summary>
    public RetiredJournal? RotateIfLarge()
    {
        if (Position < _rotateAt) return null;
        var (file, name) = NewFile(_directory, _store);
        RetiredJournal retired;
        lock (_flushLock)
        {
            try
            {
                RandomAccess.FlushToDisk(_handle);
            }
            catch
            {
                Discard(file, _directory, name);
                throw;
            }
            retired = new RetiredJournal(Name, Position, _file);
            _file = file;
            _handle = file.SafeFileHandle;
        }
        Name = name;
        Position = 0;
        return retired;
    }

    /// <summary>The bytes of the current file from <paramref name="from"/> to <paramref name="to"/> (written already). The caller
    /// serializes this with <see cref="Write"/> and <see cref="RotateIfLarge"/>.</summary>
    public byte[] Read(long from, long to) => ReadRange(_handle, from, to);

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

    /// <summary>Brings what was written to the disk (the flusher, every DurableEvery).</summary>
    public void FlushToDisk()
    {
        lock (_flushLock)
        {
            if (!_closed) RandomAccess.FlushToDisk(_handle);
        }
    }

    public void Dispose()
    {
        lock (_flushLock)
        {
            _closed = true;
            _file.Dispose();
        }
    }

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
