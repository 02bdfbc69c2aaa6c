using System.Diagnostics;
using System.Runtime.InteropServices;

namespace BertSharp.Runtime;

/// <summary>
/// The training heap policy, applied only when the process asked for it (<see cref="ProcessTuning.Apply"/>; the
/// trainer gets one from <see cref="ForTraining"/>). With dynamic padding every batch frees and asks for slightly
/// different sizes, and glibc keeps the holes: the heap grows step after step. So for training glibc keeps freed
/// memory (<see cref="KeepFreedMemory"/>: no page faults for each step's large blocks), the finalizers of the TorchSharp
/// objects a step leaves to the GC run after each step (<see cref="CollectAfterStep"/>), and free pages are given
/// back when resident memory has grown (<see cref="TrimIfGrown"/>) and after each evaluation (<see cref="ReleaseAll"/>).
/// Measurements: docs/PERFORMANCE.md, "Memory". The glibc parts are no-ops where glibc's malloc_trim is absent (musl,
/// macOS, Windows), and with BERTSHARP_GLIBC_HEAP=default.
/// </summary>
internal sealed class NativeHeap
{
    /// <summary>Trim when resident memory has grown by this fraction since the last trim…</summary>
    public const double GrowthToTrim = 0.03;
    /// <summary>…but not more often than this, nor than every <see cref="MinStepsBetween"/> steps: each trim makes
    /// the next step fault its pages in again.</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(2);
    public const int MinStepsBetween = 20;

    static readonly bool available = OperatingSystem.IsLinux()
        && Environment.GetEnvironmentVariable("BERTSHARP_GLIBC_HEAP") != "default" && Probe();
    /// <summary>Whether glibc's heap calls are there to use (and not turned off with BERTSHARP_GLIBC_HEAP=default).</summary>
    public static bool GlibcPolicyAvailable => available;
    static readonly long pageSize = Environment.SystemPageSize;
    /// <summary>At most one collection per this much training time (a collection costs about a millisecond).</summary>
    public static readonly TimeSpan MinCollectInterval = TimeSpan.FromMilliseconds(50);
    /// <summary>Resident memory just before the last trim (or after the first step): the steps after a trim fault
    /// their working set back in, so growth is measured from the level the trim brought down, not from the trimmed
    /// size; null until the first step.</summary>
    long? baseline;
    TimeSpan lastTrim;
    int stepsSinceTrim;

    /// <summary>The heap policy of one training run; from now on glibc keeps freed memory (<see cref="KeepFreedMemory"/>).</summary>
    public NativeHeap() : this(null) { }

    /// <param name="clock">the time since some fixed start (a test's hand-moved clock; default a stopwatch)</param>
    /// <param name="residentBytes">resident memory now (a test's; default <see cref="ResidentBytes"/>)</param>
    internal NativeHeap(Func<TimeSpan>? clock, Func<long>? residentBytes = null)
    {
        this.residentBytes = residentBytes ?? ResidentBytes;
        if (clock is null)
        {
            var watch = Stopwatch.StartNew();
            clock = () => watch.Elapsed;
        }
        this.clock = clock;
        lastCollect = clock() - MinCollectInterval;
        lastTrim = clock();
        KeepFreedMemory();
    }

    readonly Func<TimeSpan> clock;
    readonly Func<long> residentBytes;
    TimeSpan lastCollect;

    /// <summary>A training run's heap policy when the process was tuned for it (<see cref="ProcessTuningOptions.TrainingHeap"/>),
    /// else null: a library that was not asked leaves the process's heap and GC alone.</summary>
    public static NativeHeap? ForTraining() => ProcessTuning.TrainingHeap ? new NativeHeap() : null;

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int MallOpt(int param, int value);
    const int M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4;
    static int kept;

    /// <summary>
    /// From now on glibc serves every block from its heaps and keeps freed pages (no mmap for large blocks, no automatic
    /// trim of a heap's top), so a step reuses the pages the previous step freed instead of faulting fresh zeroed ones
    /// in; <see cref="TrimIfGrown"/> and <see cref="TrimNow"/> are then what gives memory back. For the whole process,
    /// once. Fully so only in the main thread's arena: other threads' arenas still map blocks larger than their heaps.
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
    /// A young-generation collection and the finalizers it queues, at most once per <see cref="MinCollectInterval"/>:
    /// TorchSharp objects that nothing disposes (Scalars made from numeric arguments) free their small native blocks
    /// only in their finalizers, and a step allocates so little managed memory that the GC would hardly run; meanwhile
    /// their blocks split the holes freed tensors leave, so the next step's tensors no longer fit and the heap grows.
    /// </summary>
    /// <returns>whether it collected</returns>
    public bool CollectAfterStep()
    {
        var now = clock();
        if (now - lastCollect < MinCollectInterval) return false;
        GC.Collect(1, GCCollectionMode.Forced, blocking: true);
        GC.WaitForPendingFinalizers();   // their frees land before the next step allocates
        lastCollect = clock();
        return true;
    }

    /// <summary>Trims when resident memory has grown by <see cref="GrowthToTrim"/> beyond its level before the last
    /// trim (the first step's, before any), at least <see cref="MinStepsBetween"/> steps and <see cref="MinInterval"/> after it; true if it did.
    /// Called after each step.</summary>
    public bool TrimIfGrown()
    {
        if (!available) return false;
        if (baseline is not long grownFrom) { baseline = residentBytes(); return false; }
        if (++stepsSinceTrim < MinStepsBetween || clock() - lastTrim < MinInterval) return false;
        if (residentBytes() <= grownFrom * (1 + GrowthToTrim)) return false;
        TrimNow();
        return true;
    }

    /// <summary>
    /// Gives back all the memory nothing uses now: the managed heap collected, compacted and decommitted, MKL's unused
    /// buffers (<see cref="Mkl.FreeBuffers"/>), then <see cref="TrimNow"/>. Before the first step (what loading and
    /// preparing the data left free) and after each evaluation (its larger batches), because otherwise the GC gives
    /// its committed memory back whenever it chooses, in a long run hours later.
    /// </summary>
    public void ReleaseAll()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Mkl.FreeBuffers();
        TrimNow();
    }

    /// <summary>Trims; the resident size before it becomes the baseline of <see cref="TrimIfGrown"/>.</summary>
    public void TrimNow()
    {
        baseline = residentBytes();
        Trim();
        lastTrim = clock();
        stepsSinceTrim = 0;
    }
}
