namespace Vauban.Records.Synthetic;

// xoshiro256** seeded through SplitMix64: a few nanoseconds per draw, no allocation, and the same
// sequence on every platform and .NET version (System.Random's seeded sequence is not a contract).
// Not for anything secret: synthetic data only.
internal sealed class FastRandom
{
    private ulong _s0;
    private ulong _s1;
    private ulong _s2;
    private ulong _s3;

    public FastRandom(ulong seed)
    {
        _s0 = SplitMix64(ref seed);
        _s1 = SplitMix64(ref seed);
        _s2 = SplitMix64(ref seed);
        _s3 = SplitMix64(ref seed);
    }

    /// <summary>A generator for one stream of a seeded run (e.g. one patient), independent of the others.</summary>
    public static FastRandom ForStream(int seed, long stream)
    {
        var mixed = ((ulong)(uint)seed << 32) ^ 0x9E3779B97F4A7C15UL;
        mixed ^= (ulong)stream * 0xD1B54A32D192ED03UL;
        return new FastRandom(SplitMix64(ref mixed));
    }

    public ulong NextUInt64()
    {
        var result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A value in [0, maxExclusive) (Lemire's multiply-shift; the bias is negligible here).</summary>
    public int Next(int maxExclusive) => (int)(((NextUInt64() >> 32) * (ulong)(uint)maxExclusive) >> 32);

    public int Next(int minInclusive, int maxExclusive) => minInclusive + Next(maxExclusive - minInclusive);

    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public bool Chance(double probability) => NextDouble() < probability;

    public T Pick<T>(T[] items) => items[Next(items.Length)];

    private static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
