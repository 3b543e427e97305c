using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Vauban.Crypto;

namespace Vauban.Tests.Crypto;

public class RecordCipherTests
{
    private static TenantKeys Keys(long tenant = 1) => new(tenant, 1, RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32));

    private static readonly byte[] Json = Encoding.UTF8.GetBytes("""{"resourceType":"Patient","name":[{"family":"Dupont"}]}""");

    [Fact]
    public void A_sealed_record_opens_to_the_same_bytes_and_does_not_contain_them()
    {
        using var keys = Keys();
        var sealedBody = RecordCipher.Seal(keys, 1, "abc", 1, Json);
        Assert.Equal(Json, RecordCipher.Open(keys, 1, "abc", 1, sealedBody));
        Assert.True(sealedBody.AsSpan().IndexOf("Dupont"u8) < 0);
    }

    [Fact]
    public void Sealing_twice_gives_different_ciphertexts()
    {
        using var keys = Keys();
        Assert.NotEqual(RecordCipher.Seal(keys, 1, "abc", 1, Json), RecordCipher.Seal(keys, 1, "abc", 1, Json));
    }

    [Theory]
    [InlineData(2, "abc", 1)]
    [InlineData(1, "abd", 1)]
    [InlineData(1, "abc", 2)]
    public void A_ciphertext_moved_to_another_type_id_or_version_fails_authentication(int type, string id, int version)
    {
        using var keys = Keys();
        var sealedBody = RecordCipher.Seal(keys, 1, "abc", 1, Json);
        Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(keys, type, id, version, sealedBody));
    }

    [Theory]
    [InlineData(1, "abc", 1, -1, true)]
    [InlineData(2, "abc", 1, -1, false)]
    [InlineData(1, "abd", 1, -1, false)]
    [InlineData(1, "abc", 2, -1, false)]
    [InlineData(1, "abc", 1, 0, false)] // the format byte
    [InlineData(1, "abc", 1, 1, false)] // the compression flag (authenticated in format 2)
    [InlineData(1, "abc", 1, 30, false)]
    public void Authentic_tells_what_Open_would_accept_without_opening(int type, string id, int version, int flipped, bool expected)
    {
        using var keys = Keys();
        var large = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("""{"resourceType":"Patient"},""", 40))); // compressed
        foreach (var plaintext in new[] { Json, large })
        {
            var sealedBody = RecordCipher.Seal(keys, 1, "abc", 1, plaintext);
            if (flipped >= 0) sealedBody[flipped] ^= 1;
            Assert.Equal(expected, RecordCipher.Authentic(keys, type, id, version, sealedBody));
            if (expected) Assert.Equal(plaintext, RecordCipher.Open(keys, type, id, version, sealedBody));
            else Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(keys, type, id, version, sealedBody));
        }
        Assert.False(RecordCipher.Authentic(keys, 1, "abc", 1, new byte[5])); // shorter than any sealed body
    }

    [Fact]
    public void A_ciphertext_moved_to_another_tenant_fails_even_with_the_same_key()
    {
        var data = RandomNumberGenerator.GetBytes(32);
        using var a = new TenantKeys(1, 1, (byte[])data.Clone(), RandomNumberGenerator.GetBytes(32));
        using var b = new TenantKeys(2, 1, (byte[])data.Clone(), RandomNumberGenerator.GetBytes(32));
        Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(b, 1, "abc", 1, RecordCipher.Seal(a, 1, "abc", 1, Json)));
    }

    [Fact]
    public void A_body_opens_with_the_data_key_version_it_names_and_the_newest_version_seals()
    {
        var v1 = RandomNumberGenerator.GetBytes(32);
        var v2 = RandomNumberGenerator.GetBytes(32);
        var index = RandomNumberGenerator.GetBytes(32);
        using var before = new TenantKeys(1, 1, (byte[])v1.Clone(), (byte[])index.Clone());
        var sealedBefore = RecordCipher.Seal(before, 1, "abc", 1, Json);
        Assert.Equal(1, RecordCipher.KeyVersionOf(sealedBefore));

        using var after = new TenantKeys(1, [(2, (byte[])v2.Clone()), (1, (byte[])v1.Clone())], (byte[])index.Clone());
        Assert.Equal(2, after.KeyVersion);
        Assert.Equal([1, 2], after.KeyVersions);
        Assert.Equal(Json, RecordCipher.Open(after, 1, "abc", 1, sealedBefore));
        var sealedAfter = RecordCipher.Seal(after, 1, "abc", 1, Json);
        Assert.Equal(2, RecordCipher.KeyVersionOf(sealedAfter));
        Assert.Equal(Json, RecordCipher.Open(after, 1, "abc", 1, sealedAfter));

        // Keys loaded before the rotation do not have version 2: said as such (the key ring loads them again), not as damage.
        var unknown = Assert.Throws<UnknownKeyVersionException>(() => RecordCipher.Open(before, 1, "abc", 1, sealedAfter));
        Assert.Equal(2, unknown.Version);
        // The version in the header is authenticated: a body made to name another version fails.
        var renamed = (byte[])sealedAfter.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(renamed.AsSpan(2), 1);
        Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(after, 1, "abc", 1, renamed));
    }

    [Fact]
    public void A_flipped_bit_is_detected()
    {
        using var keys = Keys();
        var sealedBody = RecordCipher.Seal(keys, 1, "abc", 1, Json);
        sealedBody[^20] ^= 1;
        Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(keys, 1, "abc", 1, sealedBody));
    }

    [Fact]
    public void A_record_is_compressed_with_zstandard_before_it_is_encrypted()
    {
        using var keys = Keys();
        var json = Encoding.UTF8.GetBytes("{\"resourceType\":\"Observation\",\"note\":[" + string.Join(',', Enumerable.Repeat("{\"text\":\"glycémie à jeun normale\"}", 200)) + "]}");
        var sealedBody = RecordCipher.Seal(keys, 1, "abc", 1, json);
        Assert.Equal(3, sealedBody[1]); // flag 3: Zstandard with the record dictionary
        Assert.True(sealedBody.Length < json.Length / 10, $"{sealedBody.Length} bytes sealed for {json.Length}");
        Assert.Equal(json, RecordCipher.Open(keys, 1, "abc", 1, sealedBody));
    }

    [Fact]
    public void A_synthetic_patient_record_is_sealed_in_under_a_third_of_its_bytes_with_the_dictionary()
    {
        using var keys = Keys();
        var hospital = new Vauban.Records.Synthetic.SyntheticHospital(3, new DateOnly(2026, 11, 1));
        var records = hospital.Patients(700_000, 50).ToList();
        long plain = 0, sealedBytes = 0;
        foreach (var record in records)
        {
            var sealedBody = RecordCipher.Seal(keys, 1, record.Id, 1, record.Json);
            Assert.Equal(record.Json, RecordCipher.Open(keys, 1, record.Id, 1, sealedBody));
            plain += record.Json.Length;
            sealedBytes += sealedBody.Length;
        }
        // Zstandard alone keeps ~55 % of these bytes; with the dictionary ~17 %, plus 34 bytes of header, nonce and tag.
        Assert.True(sealedBytes * 3 < plain, $"{sealedBytes} bytes sealed for {plain} in {records.Count} records");
    }

    [Fact]
    public void The_record_dictionary_is_the_one_shipped_first()
    {
        // Every body sealed with flag 3 needs these exact bytes to open: a retrained dictionary is a new file and a new flag.
        using var stream = typeof(RecordCipher).Assembly.GetManifestResourceStream("Vauban.Crypto.records-1.zdict");
        Assert.NotNull(stream);
        Assert.Equal("f33ee242b720518eac89365f39c6c425deb315c33d1e6abedc81c1120136af03", Convert.ToHexStringLower(SHA256.HashData(stream)));
    }

    [Fact]
    public void A_body_sealed_with_zstandard_before_the_dictionary_still_opens()
    {
        // Format 2, flag 2: Zstandard without a dictionary, as bodies were sealed before flag 3; built here byte for byte.
        var dataKey = RandomNumberGenerator.GetBytes(32);
        using var keys = new TenantKeys(7, 3, (byte[])dataKey.Clone(), RandomNumberGenerator.GetBytes(32));
        var json = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("""{"resourceType":"Patient","name":[{"family":"Dupont"}]}""", 10)));
        using var compressor = new ZstdSharp.Compressor(3);
        var compressed = compressor.Wrap(json).ToArray();
        var body = new byte[6 + 12 + compressed.Length + 16];
        body[0] = 2;
        body[1] = 2;
        BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(2), 3);
        RandomNumberGenerator.Fill(body.AsSpan(6, 12));
        var aad = new byte[16 + 3 + 6];
        BinaryPrimitives.WriteInt64LittleEndian(aad, 7);
        BinaryPrimitives.WriteInt32LittleEndian(aad.AsSpan(8), 1);
        BinaryPrimitives.WriteInt32LittleEndian(aad.AsSpan(12), 4);
        "abc"u8.CopyTo(aad.AsSpan(16));
        body.AsSpan(0, 6).CopyTo(aad.AsSpan(19));
        using (var aes = new AesGcm(dataKey, 16))
        {
            aes.Encrypt(body.AsSpan(6, 12), compressed, body.AsSpan(18, compressed.Length), body.AsSpan(18 + compressed.Length), aad);
        }

        Assert.Equal(json, RecordCipher.Open(keys, 1, "abc", 4, body));
        // The flag is authenticated: the same bytes labelled for the dictionary do not open.
        var relabelled = (byte[])body.Clone();
        relabelled[1] = 3;
        Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(keys, 1, "abc", 4, relabelled));
    }

    [Theory]
    [InlineData(1, 0)] // compressed bytes would be handed out as the record
    [InlineData(1, 1)] // Zstandard bytes given to Brotli
    [InlineData(1, 2)] // bytes compressed with the dictionary given to Zstandard without it
    [InlineData(0, 1)] // format 1: the header left out of the associated data
    [InlineData(2, 9)] // key version
    public void A_changed_header_byte_fails_authentication(int position, byte value)
    {
        using var keys = Keys();
        var sealedBody = RecordCipher.Seal(keys, 1, "abc", 1, Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("""{"family":"Dupont"}""", 20))));
        Assert.NotEqual(value, sealedBody[position]);
        sealedBody[position] = value;
        // A key version the keys do not hold is UnknownKeyVersionException, one kind of RecordIntegrityException.
        Assert.ThrowsAny<RecordIntegrityException>(() => RecordCipher.Open(keys, 1, "abc", 1, sealedBody));
    }

    [Fact]
    public void A_body_sealed_in_format_1_with_brotli_still_opens()
    {
        // Bodies stored before format 2 are never rewritten: built here byte for byte as format 1 sealed them
        // ([1][flag 1 = Brotli][key version][nonce][AES-256-GCM ciphertext][tag], associated data tenant, type, version, id).
        var dataKey = RandomNumberGenerator.GetBytes(32);
        using var keys = new TenantKeys(7, 3, (byte[])dataKey.Clone(), RandomNumberGenerator.GetBytes(32));
        var json = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("""{"resourceType":"Patient","name":[{"family":"Dupont"}]}""", 10)));
        var compressed = new byte[BrotliEncoder.GetMaxCompressedLength(json.Length)];
        Assert.True(BrotliEncoder.TryCompress(json, compressed, out var length, quality: 2, window: 16));
        var body = new byte[6 + 12 + length + 16];
        body[0] = 1;
        body[1] = 1;
        BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(2), 3);
        RandomNumberGenerator.Fill(body.AsSpan(6, 12));
        var aad = new byte[16 + 3];
        BinaryPrimitives.WriteInt64LittleEndian(aad, 7);
        BinaryPrimitives.WriteInt32LittleEndian(aad.AsSpan(8), 1);
        BinaryPrimitives.WriteInt32LittleEndian(aad.AsSpan(12), 4);
        "abc"u8.CopyTo(aad.AsSpan(16));
        using (var aes = new AesGcm(dataKey, 16))
        {
            aes.Encrypt(body.AsSpan(6, 12), compressed.AsSpan(0, length), body.AsSpan(18, length), body.AsSpan(18 + length), aad);
        }

        Assert.Equal(json, RecordCipher.Open(keys, 1, "abc", 4, body));
        Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(keys, 1, "abc", 5, body));
        // Format 1's flag is outside the associated data: changed, it must not reach another codec.
        foreach (var flag in new byte[] { 0, 2, 3 })
        {
            var changed = (byte[])body.Clone();
            changed[1] = flag;
            if (flag == 0) Assert.NotEqual(json, RecordCipher.Open(keys, 1, "abc", 4, changed)); // the Brotli bytes, as format 1 always allowed
            else Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(keys, 1, "abc", 4, changed));
        }
    }

    [Fact]
    public void A_tenant_key_cannot_be_unwrapped_with_another_master_key_or_for_another_tenant()
    {
        var master = MasterKey.Generate();
        var wrapped = KeyWrap.Wrap(master, 7, "data", 1, RandomNumberGenerator.GetBytes(32));
        Assert.Throws<VaubanConfigurationException>(() => KeyWrap.Unwrap(MasterKey.Generate(), 7, "data", 1, wrapped));
        Assert.Throws<VaubanConfigurationException>(() => KeyWrap.Unwrap(master, 8, "data", 1, wrapped));
    }

    [Fact]
    public void The_master_key_file_is_created_owner_only_and_reloaded()
    {
        var path = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "master.key");
        var created = MasterKey.Load(path, null);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(created.Fingerprint, MasterKey.Load(path, null).Fingerprint);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        Assert.Throws<VaubanConfigurationException>(() => MasterKey.Load(path, null));
    }

    [Fact]
    public void Blind_index_hashes_depend_on_the_tenant_key_and_the_parameter()
    {
        var k1 = RandomNumberGenerator.GetBytes(32);
        var k2 = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(BlindIndex.Compute(k1, 101, 'p', "dup"), BlindIndex.Compute(k1, 101, 'p', "dup"));
        Assert.NotEqual(BlindIndex.Compute(k1, 101, 'p', "dup"), BlindIndex.Compute(k2, 101, 'p', "dup"));
        Assert.NotEqual(BlindIndex.Compute(k1, 101, 'p', "dup"), BlindIndex.Compute(k1, 102, 'p', "dup"));
        using var index = new BlindIndex((byte[])k1.Clone());
        Assert.Equal(BlindIndex.Compute(k1, 101, 'p', "dupont"), index.Hash(101, 'p', "dupont"));
        Assert.Equal(BlindIndex.Compute(k1, 101, 'e', new string('é', 400)), index.Hash(101, 'e', new string('é', 400)));
    }

    [Fact]
    public void A_blind_index_hash_is_the_reference_HMAC_for_every_length_across_SHA_256_blocks_and_from_several_threads()
    {
        // On Linux the index hashes through OpenSSL's SHA-256 from the key's padded states; it must give .NET's HMAC exactly.
        var key = RandomNumberGenerator.GetBytes(32);
        using var index = new BlindIndex((byte[])key.Clone());
        var values = Enumerable.Range(0, 300).Select(n => string.Concat(Enumerable.Range(0, n).Select(i => (char)('a' + (i * 7 + n) % 26)))).ToList();
        values.Add(new string('é', 100));
        Parallel.ForEach(values, new ParallelOptions { MaxDegreeOfParallelism = 4 }, value =>
        {
            Assert.Equal(BlindIndex.Compute(key, 114, 'p', value), index.Hash(114, 'p', value));
            Assert.Equal(BlindIndex.Compute(key, 7, 'e', value), index.Hash(7, 'e', value));
        });
    }

    [Fact]
    public void A_remembered_blind_index_is_the_computed_one_for_every_value_kind_and_parameter_past_the_memory_bound()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        using var index = new BlindIndex((byte[])key.Clone());
        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < 5000; i++)
            {
                var value = "client-" + i;
                Assert.Equal(BlindIndex.Compute(key, 9001, 'x', value), index.HashRepeated(9001, 'x', value));
            }
        }
        Assert.Equal(BlindIndex.Compute(key, 9002, 'x', "client-1"), index.HashRepeated(9002, 'x', "client-1"));
        Assert.Equal(BlindIndex.Compute(key, 9001, 'p', "client-1"), index.HashRepeated(9001, 'p', "client-1"));
        Assert.NotEqual(index.HashRepeated(9001, 'x', "client-1"), index.HashRepeated(9002, 'x', "client-1"));
    }

    [Fact]
    public void A_record_sealed_under_an_id_given_as_characters_opens_under_the_same_id_as_a_string_and_under_no_other()
    {
        using var keys = Keys(7);
        var plaintext = "{\"resourceType\":\"Patient\"}"u8.ToArray();
        Span<char> id = stackalloc char[64];
        "audit:1:2:3".AsSpan().CopyTo(id);
        var sealedBody = RecordCipher.Seal(keys, 9000, id[..11], 1, plaintext, compress: false);
        Assert.Equal(plaintext, RecordCipher.Open(keys, 9000, "audit:1:2:3", 1, sealedBody));
        Assert.Throws<RecordIntegrityException>(() => RecordCipher.Open(keys, 9000, "audit:1:2:4", 1, sealedBody));
    }

    [Fact]
    public void Every_seal_has_a_nonce_of_its_own_past_each_thread_s_batch_of_nonces_and_across_threads()
    {
        using var keys = Keys();
        // Format: [format][flags][key version: 4][nonce: 12]…; a thread draws its nonces 256 at a time.
        static string Nonce(byte[] body) => Convert.ToHexString(body, 6, 12);
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            for (var i = 0; i < 700; i++) seen.AddOrUpdate(Nonce(RecordCipher.Seal(keys, 1, "p" + i, 1, Json)), 1, (_, n) => n + 1);
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(4 * 700, seen.Count);
        Assert.All(seen.Values, n => Assert.Equal(1, n));
    }
}

