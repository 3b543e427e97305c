using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using Vauban.Audit;

namespace Vauban.Tests.Security;

/// <summary>The bytes every stored chain already holds: the associated data of an entry's sealed part (the stack-formatted
/// binding must be, character for character, the string entries were sealed under before it existed), the entry hash and
/// the RFC 6962 tree, recomputed here from their definitions with one-shot SHA-256 whatever the appender uses.</summary>
public sealed class AuditChainTests
{
    [Theory]
    [InlineData(0L, 0, 0, 0L, 0L)]
    [InlineData(1_764_582_000_000L, 1, 42, 0x1234_5678_9ABC_DEF0L, -1L)]
    [InlineData(long.MinValue, int.MinValue, int.MinValue, long.MinValue, long.MinValue)]
    [InlineData(long.MaxValue, int.MaxValue, int.MaxValue, long.MaxValue, long.MaxValue)]
    [InlineData(-1L, -1, -1, -1L, 0L)]
    public void The_seal_binding_is_the_string_entries_were_sealed_under_even_at_the_extremes(long at, int action, int type, long principal, long patient)
    {
        var earlier = string.Create(CultureInfo.InvariantCulture, $"audit:{at}:{action}:{type}:{principal:x16}:{patient:x16}");
        Assert.Equal(earlier, AuditChain.SealBinding(at, action, type, principal, patient));
        Span<char> exact = stackalloc char[AuditChain.SealBindingMaxLength];
        var length = AuditChain.WriteSealBinding(exact, at, action, type, principal, patient);
        Assert.Equal(earlier, exact[..length].ToString());
    }

    [Fact]
    public void A_buffer_shorter_than_the_longest_binding_is_refused_rather_than_cut()
    {
        var buffer = new char[AuditChain.SealBindingMaxLength - 1];
        Assert.Throws<ArgumentException>(() => AuditChain.WriteSealBinding(buffer, long.MinValue, int.MinValue, int.MinValue, long.MinValue, long.MinValue));
    }

    [Fact]
    public void The_reused_hash_object_gives_the_one_shot_SHA256_on_every_thread_and_every_size()
    {
        var inputs = Enumerable.Range(0, 40).Select(n => RandomNumberGenerator.GetBytes(n * 37)).ToArray();
        Parallel.For(0, 8, _ =>
        {
            for (var round = 0; round < 50; round++)
            {
                foreach (var input in inputs)
                {
                    var reused = new byte[32];
                    AuditChain.Sha256(input, reused);
                    Assert.Equal(SHA256.HashData(input), reused);
                }
            }
        });
    }

    [Fact]
    public void A_hash_that_fails_leaves_nothing_behind_for_the_next()
    {
        var input = RandomNumberGenerator.GetBytes(100);
        Assert.ThrowsAny<ArgumentException>(() => AuditChain.Sha256(input, new byte[31]));
        var next = new byte[32];
        AuditChain.Sha256("after"u8, next);
        Assert.Equal(SHA256.HashData("after"u8), next);
    }

    [Fact]
    public void An_entry_hash_covers_the_previous_hash_and_every_column_in_the_documented_layout()
    {
        var previous = RandomNumberGenerator.GetBytes(32);
        var row = new AuditRow(7, 123_456, 1_764_582_000_123, 3, 1, 42, 0x0102_0304_0506_0708, -5, RandomNumberGenerator.GetBytes(300));
        var expected = new List<byte>(previous);
        expected.AddRange("VAE1"u8.ToArray());
        void Int64(long v) { var b = new byte[8]; BinaryPrimitives.WriteInt64BigEndian(b, v); expected.AddRange(b); }
        void Int16(int v) { var b = new byte[2]; BinaryPrimitives.WriteInt16BigEndian(b, (short)v); expected.AddRange(b); }
        Int64(row.TenantId); Int64(row.Sequence); Int64(row.At); Int16(row.Action); Int16(row.Outcome); Int16(row.Type);
        Int64(row.PrincipalIndex); Int64(row.PatientIndex);
        var length = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, row.Sealed.Length);
        expected.AddRange(length);
        expected.AddRange(row.Sealed);

        var hash = new byte[32];
        AuditChain.EntryHash(previous, row, hash);
        Assert.Equal(SHA256.HashData(expected.ToArray()), hash);

        var changed = new byte[32];
        AuditChain.EntryHash(previous, row with { Sequence = row.Sequence + 1 }, changed);
        Assert.NotEqual(hash, changed);
    }

    [Fact]
    public void The_tree_grown_leaf_by_leaf_has_the_RFC_6962_root_at_every_size()
    {
        var leaves = Enumerable.Range(0, 33).Select(_ => RandomNumberGenerator.GetBytes(32)).ToList();
        var tree = new CompactMerkleTree();
        Assert.Equal(SHA256.HashData([]), tree.Root());
        for (var n = 1; n <= leaves.Count; n++)
        {
            tree.Append(leaves[n - 1]);
            Assert.Equal(Rfc6962Root(leaves.GetRange(0, n)), tree.Root());
        }
    }

    // RFC 6962 §2.1: MTH of one leaf is SHA-256(0x00 || d); of n > 1, SHA-256(0x01 || MTH(first k) || MTH(rest)), k the largest power of 2 below n.
    private static byte[] Rfc6962Root(List<byte[]> leaves)
    {
        if (leaves.Count == 1) return SHA256.HashData([0, .. leaves[0]]);
        var k = 1;
        while (k * 2 < leaves.Count) k *= 2;
        return SHA256.HashData([1, .. Rfc6962Root(leaves.GetRange(0, k)), .. Rfc6962Root(leaves.GetRange(k, leaves.Count - k))]);
    }
}
