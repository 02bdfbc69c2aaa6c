using BertSharp.Runtime;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Splits the vectorised CPU kernels' rows over libtorch's thread count (torch.set_num_threads,
/// --threads), when libtorch's OpenMP workers let the cores go soon enough for it to pay
/// (<see cref="OpenMpWorkers.SpinBriefly"/>); otherwise the kernels run on the calling thread.</summary>
internal static class KernelThreads
{
    /// <summary>The most threads a kernel splits its rows over now (1 when they run on the calling thread).</summary>
    public static int Threads => OpenMpWorkers.SpinBriefly ? get_num_threads() : 1;

    /// <summary>For tests and bench/StepProfile's one-thread ablation: the parts to split into on this thread whatever
    /// the thread count (null: decide as below).</summary>
    [ThreadStatic] internal static int? ForcedParts;

    /// <summary>Below this many elements a part costs less than waking a thread for it (~10 µs).</summary>
    private const long MinElementsPerPart = 1 << 16;

    /// <summary>How many parts to split <paramref name="rows"/> rows of <paramref name="rowElements"/> elements into.</summary>
    internal static int Parts(long rows, long rowElements)
    {
        if (ForcedParts is int forced) return (int)Math.Clamp(forced, 1, Math.Max(1, rows));
        if (!OpenMpWorkers.SpinBriefly || rows < 2) return 1;
        long byWork = rows * Math.Max(1, rowElements) / MinElementsPerPart;
        return (int)Math.Clamp(Math.Min(byWork, rows), 1, get_num_threads());
    }

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of [0, rows): [start, end), the starts at
    /// multiples of <paramref name="align"/> (all but the last part's lengths too).</summary>
    internal static (long Start, long End) Range(long rows, int parts, int part, long align = 1)
    {
        long per = (rows + parts - 1) / parts;
        per = (per + align - 1) / align * align;
        return (Math.Min(rows, part * per), Math.Min(rows, (part + 1) * per));
    }

    /// <summary>Runs part(0) … part(parts − 1), at once on as many threads (the calling one included).</summary>
    internal static void Run(int parts, Action<int> part)
    {
        if (parts <= 1) { part(0); return; }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part);
    }
}
