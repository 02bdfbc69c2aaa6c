using System.Diagnostics;
using System.Runtime.InteropServices;

namespace BertSharp;

/// <summary>
/// Gives glibc's freed heap memory back to the system now and then. glibc serves a freed large block's size from the
/// heap from then on (its mmap threshold rises with every large free, up to 32 MB), and with dynamic padding every
/// batch frees and asks for slightly different sizes, so the heap keeps holes it never returns: a `seed`-preset run
/// at batch 16 grew from 771 MiB at step 100 to 1,925 MiB at step 400 and stayed there. malloc_trim releases the
/// free pages; the trainer calls it when resident memory has grown since the last trim, not after every step: the
/// next step faults the pages in again (a fixed 4 MiB mmap threshold, which does that on every allocation, made the
/// batch-512 step 1.45× slower). Measured in docs/PERFORMANCE.md.
/// For training it also stops glibc returning memory on its own (<see cref="KeepFreedMemory"/>), so those trims are
/// the only returns, and runs the finalizers of the TorchSharp objects a step leaves to the GC (<see cref="CollectAfterStep"/>).
/// The glibc parts are no-ops where glibc's malloc_trim is absent (musl, macOS, Windows), and with BERTSHARP_GLIBC_HEAP=default.
/// </summary>
public sealed class NativeHeap
{
    /// <summary>Trim when resident memory has grown by this fraction since the last trim…</summary>
    public const double GrowthToTrim = 0.03;
    /// <summary>…but not more often than this, nor than every <see cref="MinStepsBetween"/> steps: each trim makes
    /// the next step fault its pages in again (trimming after nearly every batch-512 step cost 10 %).</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(2);
    public const int MinStepsBetween = 20;

    static readonly bool available = OperatingSystem.IsLinux()
        && Environment.GetEnvironmentVariable("BERTSHARP_GLIBC_HEAP") != "default" && Probe();
    static readonly long pageSize = Environment.SystemPageSize;
    /// <summary>At most one collection per this much training time (one costs ~1 ms: ≤ 2 %).</summary>
    public static readonly TimeSpan MinCollectInterval = TimeSpan.FromMilliseconds(50);
    readonly Stopwatch sinceTrim = Stopwatch.StartNew();
    readonly Stopwatch sinceCollect = Stopwatch.StartNew();
    long baseline = ResidentBytes();
    int stepsSinceTrim;

    /// <summary>The heap policy of one training run; from now on glibc keeps freed memory (<see cref="KeepFreedMemory"/>).</summary>
    public NativeHeap() => KeepFreedMemory();

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int MallOpt(int param, int value);
    const int M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4;
    static int kept;

    /// <summary>
    /// From now on glibc serves every block from its heaps and keeps freed pages (no mmap for large blocks, no automatic
    /// trim of a heap's top), so a step reuses the pages the previous step freed instead of faulting fresh zeroed ones
    /// in. By default glibc maps each block over its mmap threshold (at most 32 MB: the `seed` step's [32768, 512]
    /// activations) anew and unmaps it when freed, and returns a heap's free top whenever it exceeds 64 MB — which
    /// it does at the end of every step: 70–120 thousand page faults and 100–270 ms of kernel time per `seed` step at
    /// batch 512 on one thread (a 1.5–2 s step), against under 3,000 and 1–7 ms with this. <see cref="TrimIfGrown"/> and
    /// <see cref="TrimNow"/> are then what gives memory back. Done by the first training heap (the constructor), for
    /// the whole process. Fully so only
    /// in the main thread's arena: other threads' arenas (the workers of <see cref="Modeling.DataParallel"/>'s shards after the first) still map
    /// blocks larger than their 64 MB heaps and delete a heap once it is empty.
    /// </summary>
    static void KeepFreedMemory()
    {
        if (!available || Interlocked.Exchange(ref kept, 1) == 1) return;
        MallOpt(M_MMAP_MAX, 0);
        MallOpt(M_TRIM_THRESHOLD, int.MaxValue);
    }

    static bool Probe()
    {
        try { MallocTrim(0); return true; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>Resident set size from /proc/self/statm; 0 where there is none.</summary>
    public static long ResidentBytes()
    {
        if (!available) return 0;
        try
        {
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) * pageSize;
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException) { return 0; }
    }

    /// <summary>Releases free heap pages now; returns whether anything could be released.</summary>
    public static bool Trim() => available && MallocTrim(0) == 1;

    /// <summary>Called after every training step: <see cref="CollectAfterStep"/>, then <see cref="TrimIfGrown"/>.</summary>
    public void AfterStep()
    {
        CollectAfterStep();
        TrimIfGrown();
    }

    /// <summary>
    /// A young-generation collection and the finalizers it queues, at most once per <see cref="MinCollectInterval"/>.
    /// TorchSharp objects that nothing disposes (~4,000 Scalars, made from numeric arguments, waited in the finalizer
    /// queue after six `seed` steps) free their small native blocks only in their finalizers, and a step allocates so
    /// little managed memory that the GC did not run once in 14 steps.
    /// Meanwhile glibc carves new small blocks out of the holes freed tensors leave in its heap, so the next step's
    /// tensors of the same sizes no longer fit there and the heap grows, each step faulting in fresh pages: `seed` at
    /// batch 512 on one thread, fp32, resident memory 1.6 → 2.0 GB over 14 steps (1.7 → 3.4 GB with the fused
    /// training kernels on, 2.4 GB of it free in glibc's heap and 8 % of the time in the kernel's page clearing);
    /// collected after each step, 1.2–1.5 GB, flat. docs/PERFORMANCE.md, "Memory".
    /// </summary>
    /// <returns>whether it collected</returns>
    public bool CollectAfterStep()
    {
        if (sinceCollect.Elapsed < MinCollectInterval) return false;
        GC.Collect(1, GCCollectionMode.Forced, blocking: true);
        GC.WaitForPendingFinalizers();   // their frees land before the next step allocates
        sinceCollect.Restart();
        return true;
    }

    /// <summary>Trims when resident memory has grown by
    /// <see cref="GrowthToTrim"/> since the last trim, at least <see cref="MinStepsBetween"/> steps and
    /// <see cref="MinInterval"/> after it.</summary>
    public void TrimIfGrown()
    {
        if (!available || ++stepsSinceTrim < MinStepsBetween || sinceTrim.Elapsed < MinInterval) return;
        if (ResidentBytes() <= baseline * (1 + GrowthToTrim)) return;
        TrimNow();
    }

    /// <summary>
    /// Gives back all the memory nothing uses now: the managed heap collected, compacted and decommitted, MKL's unused
    /// buffers (<see cref="Mkl.FreeBuffers"/>: an evaluation's larger batches would leave ~9 MiB of them held), then
    /// <see cref="TrimNow"/>. Before the first step and after each evaluation. Loading and preparing the data leaves
    /// the managed heap with tens of MB committed but free (44 MiB of 113 in a pre-training run at batch 16), and the
    /// GC's committed memory otherwise creeps up between evaluations and stays (28 → 41 MiB over 2,000 steps at
    /// batch 16), given back whenever the GC chooses, in a long run hours later (docs/PERFORMANCE.md, "Memory").
    /// </summary>
    public void ReleaseAll()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Mkl.FreeBuffers();
        TrimNow();
    }

    /// <summary>Trims and takes the resulting resident size as the new baseline.</summary>
    public void TrimNow()
    {
        Trim();
        baseline = ResidentBytes();
        sinceTrim.Restart();
        stepsSinceTrim = 0;
    }
}
