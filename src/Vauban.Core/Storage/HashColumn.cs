// A record's blind-index hashes as its resource row holds them, so that they can be removed exactly (an update, a delete, a
// re-index), including those an older extraction made: PostgreSQL's bigint[] column (step 1), SQLite's BLOB of 8-byte big-endian
// values (step 18; before, idx_hash rows found by record through a second index, idx_hash_rid).
using System.Buffers.Binary;
using System.Data.Common;

namespace Vauban.Storage;

internal static class HashColumn
{
    /// <summary>The value bound to <c>resources.hashes</c>.</summary>
    public static object Value(StorageEngine engine, List<long> hashes) => engine == StorageEngine.Postgres ? hashes.ToArray() : Pack(hashes);

    /// <summary>SQLite's form: the hashes one after another, 8 bytes each, big-endian (what <c>unhex(printf('%016x', h))</c> gives,
    /// which step 18 used to fill the column from the rows it held).</summary>
    public static byte[] Pack(List<long> hashes)
    {
        var packed = new byte[hashes.Count * sizeof(long)];
        for (var i = 0; i < hashes.Count; i++) BinaryPrimitives.WriteInt64BigEndian(packed.AsSpan(i * sizeof(long)), hashes[i]);
        return packed;
    }

    /// <summary>The hashes held in column <paramref name="ordinal"/> of the row read (none when null).</summary>
    public static HashSet<long> Read(DbDataReader reader, int ordinal)
    {
        var hashes = new HashSet<long>();
        if (reader.IsDBNull(ordinal)) return hashes;
        if (reader.GetValue(ordinal) is long[] array)
        {
            hashes.UnionWith(array);
            return hashes;
        }
        var packed = (byte[])reader.GetValue(ordinal);
        if (packed.Length % sizeof(long) != 0) throw new InvalidDataException($"A resource row's hash list is {packed.Length} bytes, not a multiple of 8.");
        for (var at = 0; at < packed.Length; at += sizeof(long)) hashes.Add(BinaryPrimitives.ReadInt64BigEndian(packed.AsSpan(at)));
        return hashes;
    }
}
