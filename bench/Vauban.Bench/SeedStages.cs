// What each stage of a seed's preparation costs a patient, on one thread, without a store: generation, parsing,
// validation, the compartment checks, stamping, index extraction (blind-index HMACs included), and sealing
// (Zstandard then AES-GCM). Run by hand: `dotnet run -c Release --project bench/Vauban.Bench -- stages [--patients N]`.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Vauban.Crypto;
using Vauban.Fhir;
using Vauban.Records;
using Vauban.Records.Search;
using Vauban.Records.Synthetic;

namespace Vauban.Bench;

internal static class SeedStages
{
    public static int Run(string[] args)
    {
        var patients = args is [.., "--patients", var n] ? int.Parse(n) : 5_000;
        using var keys = new TenantKeys(1, 1, RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32));
        var hospital = new SyntheticHospital(1, new DateOnly(2026, 11, 1));
        for (var round = 1; round <= 3; round++)
        {
            var times = new Dictionary<string, long>();
            void Add(string stage, long ticks) => times[stage] = times.GetValueOrDefault(stage) + ticks;
            var watch = Stopwatch.StartNew();
            var items = new List<SyntheticResource>();
            for (var i = 0; i < patients; i++) items.AddRange(hospital.Patient(i));
            Add("generate", watch.ElapsedTicks);
            long bytes = 0, sealedBytes = 0;
            foreach (var item in items)
            {
                var t0 = Stopwatch.GetTimestamp();
                using var document = JsonDocument.Parse(item.Json, new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false });
                var t1 = Stopwatch.GetTimestamp();
                var issues = RecordValidation.Validate(item.ResourceType, document.RootElement);
                if (issues.Count > 0) throw new InvalidOperationException(issues[0].Diagnostics);
                var t2 = Stopwatch.GetTimestamp();
                _ = Compartments.UnfollowedPatientReference(item.ResourceType, document.RootElement);
                var t3 = Stopwatch.GetTimestamp();
                var json = ResourceStamp.Apply(document.RootElement, item.ResourceType, item.Id, 1, 1_790_000_000_000);
                var t4 = Stopwatch.GetTimestamp();
                var index = IndexEntries.Extract(item.ResourceType, document.RootElement, keys.Index);
                var t5 = Stopwatch.GetTimestamp();
                _ = index.TooMany(item.ResourceType);
                _ = Compartments.NamesNoPatient(item.ResourceType, document.RootElement, index);
                var t6 = Stopwatch.GetTimestamp();
                TypeCodes.TryGet(item.ResourceType, out var code);
                var sealedBody = RecordCipher.Seal(keys, code, item.Id, 1, json);
                var t7 = Stopwatch.GetTimestamp();
                var plainSealed = RecordCipher.Seal(keys, code, item.Id, 1, json, compress: false);
                var t8 = Stopwatch.GetTimestamp();
                bytes += json.Length;
                sealedBytes += sealedBody.Length;
                Add("parse", t1 - t0);
                Add("validate", t2 - t1);
                Add("compartment checks", t3 - t2 + t6 - t5);
                Add("stamp", t4 - t3);
                Add("index extraction", t5 - t4);
                Add("seal (zstd + aes)", t7 - t6);
                Add("  aes, json uncompressed", t8 - t7);
            }
            Console.WriteLine($"round {round}: {patients:N0} patients, {items.Count:N0} resources, {bytes / items.Count:N0} B of JSON a resource, {sealedBytes / items.Count:N0} sealed");
            var total = 0.0;
            foreach (var (stage, ticks) in times)
            {
                var us = ticks * 1e6 / Stopwatch.Frequency / patients;
                if (!stage.StartsWith(' ')) total += us;
                Console.WriteLine($"  {stage,-22} {us,8:F1} µs a patient");
            }
            Console.WriteLine($"  {"total",-22} {total,8:F1} µs a patient (one thread)");
        }
        return 0;
    }
}
