// Trains the Zstandard dictionary that RecordCipher compresses record bodies with, from the synthetic hospital's
// records stamped as the server stores them (resourceType, id, meta, then the rest). It is how
// src/Vauban.Core/Crypto/Resources/records-1.zdict was made, and how a later one would be:
//   dotnet run -c Release --project bench/Vauban.Bench -- dictionary [--out FILE]
// A shipped dictionary never changes (every body compressed with it needs it to open): a new one gets a new flag.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Vauban.Fhir;
using Vauban.Records.Synthetic;

namespace Vauban.Bench;

internal static class RecordDictionary
{
    private const int Capacity = 32 * 1024;
    private const int TrainingPatients = 20_000;
    private const int TestPatients = 3_000;

    public static int Run(string[] args)
    {
        var output = args is ["--out", var path] ? path : Path.Combine("bench", "data", "records.zdict");
        var watch = Stopwatch.StartNew();
        // Training and held-out samples come from different seeds and different patients.
        var training = Samples(seed: 11, first: 0, TrainingPatients);
        var test = Samples(seed: 99, first: 500_000, TestPatients);
        var dictionary = ZstdSharp.DictBuilder.TrainFromBuffer(training, Capacity);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllBytes(output, dictionary);
        Console.WriteLine($"{dictionary.Length:N0} B dictionary from {training.Count:N0} records ({TrainingPatients:N0} patients) in {watch.Elapsed.TotalSeconds:F0} s: {output}");
        Console.WriteLine($"SHA-256 {Convert.ToHexStringLower(SHA256.HashData(dictionary))}");
        Report(test, null);
        Report(test, dictionary);
        return 0;
    }

    private static List<byte[]> Samples(int seed, int first, int patients)
    {
        var hospital = new SyntheticHospital(seed, new DateOnly(2026, 11, 1));
        var samples = new List<byte[]>();
        var at = new DateTimeOffset(2026, 11, 1, 8, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        foreach (var resource in hospital.Establishment().Concat(hospital.Patients(first, patients)))
        {
            using var json = JsonDocument.Parse(resource.Json);
            at += 1_237;
            samples.Add(ResourceStamp.Apply(json.RootElement, resource.ResourceType, resource.Id, 1, at));
        }
        return samples;
    }

    private static void Report(List<byte[]> test, byte[]? dictionary)
    {
        using var compressor = new ZstdSharp.Compressor(3);
        using var decompressor = new ZstdSharp.Decompressor();
        if (dictionary is not null)
        {
            compressor.LoadDictionary(dictionary);
            decompressor.LoadDictionary(dictionary);
        }
        var compressed = test.Select(t => compressor.Wrap(t).ToArray()).ToList();
        for (var i = 0; i < compressed.Count; i++) decompressor.Unwrap(compressed[i], test[i].Length); // warm-up
        var watch = Stopwatch.StartNew();
        var rounds = 5;
        for (var r = 0; r < rounds; r++)
        {
            foreach (var body in compressed) decompressor.Unwrap(body, 1 << 20);
        }
        var decompress = watch.Elapsed.TotalMicroseconds / (rounds * compressed.Count);
        var buffer = new byte[1 << 20];
        watch.Restart();
        for (var r = 0; r < rounds; r++)
        {
            foreach (var body in test) compressor.Wrap(body, buffer);
        }
        var compress = watch.Elapsed.TotalMicroseconds / (rounds * test.Count);
        long plain = test.Sum(t => (long)t.Length), packed = compressed.Sum(c => (long)c.Length);
        Console.WriteLine($"{(dictionary is null ? "without" : "with"),-7} the dictionary, {test.Count:N0} held-out records of {plain / test.Count} B: "
            + $"{100.0 * packed / plain:F1} % of the bytes ({packed / test.Count} B), compress {compress:F2} µs, decompress {decompress:F2} µs");
    }
}
