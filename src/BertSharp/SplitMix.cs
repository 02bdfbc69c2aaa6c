namespace BertSharp;

/// <summary>
/// A small, fast, deterministic random generator (SplitMix64). Its whole state is one ulong, so data
/// pipelines can derive an independent stream per (seed, epoch, item) and a resumed run draws exactly the
/// numbers the interrupted one would have, without saving generator state.
/// </summary>
public struct SplitMix
{
    private ulong state;

    public SplitMix(ulong seed) { state = seed; }

    /// <summary>A stream keyed by several values (e.g. seed, epoch, index); different keys give unrelated streams.</summary>
    public static SplitMix For(long seed, params long[] keys)
    {
        ulong h = Mix((ulong)seed ^ 0x9E3779B97F4A7C15UL);
        foreach (var k in keys) h = Mix(h ^ (ulong)k * 0xBF58476D1CE4E5B9UL);
        return new SplitMix(h);
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextULong()
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, maxExclusive).</summary>
    public int Next(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive));
        return (int)((NextULong() >> 32) * (ulong)maxExclusive >> 32);
    }

    /// <summary>Uniform integer in [min, maxInclusive], like Python's random.randint.</summary>
    public int NextInclusive(int min, int maxInclusive) => min + Next(maxInclusive - min + 1);

    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
