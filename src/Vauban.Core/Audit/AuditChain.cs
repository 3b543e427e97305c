// The arithmetic of the tamper-evident log, shared by the appender and the verifier so that both compute
// exactly the same bytes:
//   entry hash  = SHA-256(previous entry hash || "VAE1" || every stored column in a fixed binary layout)
//   tree        = RFC 6962 Merkle tree over the entry hashes (leaf = SHA-256(0x00 || h), node = SHA-256(0x01 || l || r)),
//                 kept as a compact range: the roots of its perfect subtrees, largest first
//   checkpoint  = ECDSA P-256 signature over (tenant, size, tree root, chain head, time)
// The chain gives "first broken entry"; the signed tree head lets an outside witness hold the operator to
// one history without trusting the database.
using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Vauban.Audit;

/// <summary>The clear columns of one stored entry, in the order they are hashed.</summary>
internal readonly record struct AuditRow(long TenantId, long Sequence, long At, int Action, int Outcome, int Type, long PrincipalIndex, long PatientIndex, byte[] Sealed);

internal static class AuditChain
{
    public const int HashSize = 32;
    private static readonly byte[] EntryDomain = "VAE1"u8.ToArray();

    /// <summary>Blind-index parameter codes of the audit's searchable columns (records use codes below 2000).</summary>
    public const int PrincipalIndexCode = 9001;

    /// <summary>Who did an act, for a table outside the chain that must not name them in clear (a release's or an export
    /// decision's author): the principal's blind index on the chain, so an investigator finds their entries by it.</summary>
    internal const string PrincipalReferencePrefix = "principal-ix:";

    internal static string PrincipalReference(Crypto.TenantKeys keys, string principalId) =>
        PrincipalReferencePrefix + PrincipalIndex(keys, principalId).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A principal's blind index on the chain (principal_ix, and the lookups by agent), for every table that names a
    /// principal by it: kept by the key for the principals that act again and again.</summary>
    internal static long PrincipalIndex(Crypto.TenantKeys keys, string principalId) => keys.Index.HashRepeated(PrincipalIndexCode, 'x', principalId);

    /// <summary>A patient's blind index on the chain (patient_ix, and the lookups by patient), for every table that names a
    /// patient by it.</summary>
    internal static long PatientIndex(Crypto.TenantKeys keys, string patientId) => keys.Index.Hash(PatientIndexCode, 'x', patientId);
    public const int PatientIndexCode = 9002;

    /// <summary>audit_index rows are grouped by bucket = seq >> this (schema step 7), so that a batch of recent entries
    /// lands in one narrow region of that B-tree; a lookup visits every bucket.</summary>
    public const int IndexBucketBits = 16;

    /// <summary>audit_index kinds.</summary>
    public const int PatientLookup = 1;
    public const int PrincipalLookup = 2;

    /// <summary>The type code used in the sealed part's associated data.</summary>
    public const int SealTypeCode = 9000;

    public static byte[] Genesis => new byte[HashSize];

    /// <summary>How far two processes' clocks sharing a store may disagree (each stamps its own entries and checkpoints), when
    /// an entry is held to the checkpoint that should have signed it (verification, and a process about to sign a tail).</summary>
    public const long ClockToleranceMilliseconds = 1000;

    /// <summary>The hash of <paramref name="row"/> chained to <paramref name="previous"/>, written into <paramref name="destination"/>.</summary>
    public static void EntryHash(ReadOnlySpan<byte> previous, in AuditRow row, Span<byte> destination)
    {
        // One buffer, one hash: the verifier calls this once per entry, and creating an incremental hash object for each
        // entry cost as much as the hashing itself (the thread's own object, reset after each use, does not).
        const int FixedLength = HashSize + 4 + 8 + 8 + 8 + 2 + 2 + 2 + 8 + 8 + 4;
        var length = FixedLength + row.Sealed.Length;
        byte[]? rented = null;
        Span<byte> input = length <= 1024 ? stackalloc byte[1024] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            previous.CopyTo(input);
            var span = input[HashSize..];
            EntryDomain.CopyTo(span);
            BinaryPrimitives.WriteInt64BigEndian(span[4..], row.TenantId);
            BinaryPrimitives.WriteInt64BigEndian(span[12..], row.Sequence);
            BinaryPrimitives.WriteInt64BigEndian(span[20..], row.At);
            BinaryPrimitives.WriteInt16BigEndian(span[28..], checked((short)row.Action));
            BinaryPrimitives.WriteInt16BigEndian(span[30..], checked((short)row.Outcome));
            BinaryPrimitives.WriteInt16BigEndian(span[32..], checked((short)row.Type));
            BinaryPrimitives.WriteInt64BigEndian(span[34..], row.PrincipalIndex);
            BinaryPrimitives.WriteInt64BigEndian(span[42..], row.PatientIndex);
            BinaryPrimitives.WriteInt32BigEndian(span[50..], row.Sealed.Length);
            row.Sealed.CopyTo(input[FixedLength..]);
            Sha256(input[..length], destination);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    [ThreadStatic] private static IncrementalHash? t_sha256;

    /// <summary>SHA-256 of <paramref name="input"/> into <paramref name="destination"/>, through one hash object per thread
    /// reset after each use: a one-shot call creates and frees an OpenSSL context each time, 0.2–0.4 µs more a hash here,
    /// and the appender computes three an entry (bench/README). A failure drops the thread's object, so that no
    /// half-fed state reaches the next hash.</summary>
    public static void Sha256(ReadOnlySpan<byte> input, Span<byte> destination)
    {
        var hash = t_sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            hash.AppendData(input);
            hash.GetHashAndReset(destination);
        }
        catch
        {
            t_sha256 = null;
            hash.Dispose();
            throw;
        }
    }

    /// <summary>The AES-GCM associated data of an entry's sealed part: its clear columns other than the sequence
    /// (known only when the appender orders it; the chain binds the position).</summary>
    public static string SealBinding(long at, int action, int type, long principalIndex, long patientIndex)
    {
        Span<char> binding = stackalloc char[SealBindingMaxLength];
        return new string(binding[..WriteSealBinding(binding, at, action, type, principalIndex, patientIndex)]);
    }

    /// <summary>"audit:" and five fields: two longs and two ints in decimal, two longs in 16 hex digits, colons between.</summary>
    public const int SealBindingMaxLength = 6 + 20 + 1 + 11 + 1 + 11 + 1 + 16 + 1 + 16;

    /// <summary><see cref="SealBinding"/> written into <paramref name="destination"/> (at least <see cref="SealBindingMaxLength"/>
    /// characters); returns its length.</summary>
    public static int WriteSealBinding(Span<char> destination, long at, int action, int type, long principalIndex, long patientIndex) =>
        destination.TryWrite(CultureInfo.InvariantCulture, $"audit:{at}:{action}:{type}:{principalIndex:x16}:{patientIndex:x16}", out var written)
            ? written
            : throw new ArgumentException($"needs {SealBindingMaxLength} characters", nameof(destination));

    public static byte[] CheckpointStatement(long tenantId, long size, ReadOnlySpan<byte> root, ReadOnlySpan<byte> head, long at) =>
        Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"vauban-audit-checkpoint/1\n{tenantId}\n{size}\n{Convert.ToBase64String(root)}\n{Convert.ToBase64String(head)}\n{at}\n"));
}

/// <summary>An RFC 6962 Merkle tree grown one leaf at a time, kept as the roots of its perfect subtrees.</summary>
internal sealed class CompactMerkleTree
{
    private readonly List<byte[]> _roots;

    public CompactMerkleTree() : this(0, []) { }

    private CompactMerkleTree(long size, List<byte[]> roots)
    {
        Size = size;
        _roots = roots;
    }

    public long Size { get; private set; }

    /// <summary>Restores a tree of <paramref name="size"/> leaves from its serialized subtree roots.</summary>
    public static CompactMerkleTree Restore(long size, ReadOnlySpan<byte> serialized)
    {
        var expected = long.PopCount(size);
        if (serialized.Length != expected * AuditChain.HashSize)
        {
            throw new AuditIntegrityException($"the stored tree state does not match its size {size}");
        }
        var roots = new List<byte[]>((int)expected + 1);
        for (var i = 0; i < expected; i++) roots.Add(serialized.Slice(i * AuditChain.HashSize, AuditChain.HashSize).ToArray());
        return new CompactMerkleTree(size, roots);
    }

    public byte[] Serialize()
    {
        var output = new byte[_roots.Count * AuditChain.HashSize];
        for (var i = 0; i < _roots.Count; i++) _roots[i].CopyTo(output, i * AuditChain.HashSize);
        return output;
    }

    public CompactMerkleTree Clone() => new(Size, [.. _roots]);

    public void Append(ReadOnlySpan<byte> entryHash)
    {
        Span<byte> leafInput = stackalloc byte[1 + AuditChain.HashSize];
        leafInput[0] = 0;
        entryHash.CopyTo(leafInput[1..]);
        var node = new byte[AuditChain.HashSize];
        AuditChain.Sha256(leafInput, node);
        // Each trailing 1 bit of the old size is a perfect subtree of the same height as the new node: merge.
        for (var size = Size; (size & 1) == 1; size >>= 1)
        {
            node = Node(_roots[^1], node);
            _roots.RemoveAt(_roots.Count - 1);
        }
        _roots.Add(node);
        Size++;
    }

    /// <summary>The Merkle Tree Hash of RFC 6962 §2.1 over every leaf so far.</summary>
    public byte[] Root()
    {
        if (_roots.Count == 0) return SHA256.HashData([]);
        var root = _roots[^1];
        for (var i = _roots.Count - 2; i >= 0; i--) root = Node(_roots[i], root);
        return root;
    }

    private static byte[] Node(byte[] left, byte[] right)
    {
        Span<byte> input = stackalloc byte[1 + 2 * AuditChain.HashSize];
        input[0] = 1;
        left.CopyTo(input[1..]);
        right.CopyTo(input[(1 + AuditChain.HashSize)..]);
        var node = new byte[AuditChain.HashSize];
        AuditChain.Sha256(input, node);
        return node;
    }
}

/// <summary>The audit log's own state is inconsistent (tampering or corruption). Never a client error.</summary>
public sealed class AuditIntegrityException : Exception
{
    public AuditIntegrityException(string message) : base(message) { }
    public AuditIntegrityException() { }
    public AuditIntegrityException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The audit store could not be written: the request fails and no data leaves (fail closed).</summary>
public sealed class AuditUnavailableException : Exception
{
    public AuditUnavailableException(string message, Exception inner) : base(message, inner) { }
    public AuditUnavailableException(string message) : base(message) { }
    public AuditUnavailableException() { }
}
