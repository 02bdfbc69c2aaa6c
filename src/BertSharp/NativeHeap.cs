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
/// A no-op where glibc's malloc_trim is absent (musl, macOS, Windows), and with BERTSHARP_GLIBC_HEAP=default.
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
    readonly Stopwatch sinceTrim = Stopwatch.StartNew();
    long baseline = ResidentBytes();
    int stepsSinceTrim;

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

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

    /// <summary>Called after every training step: trims when resident memory has grown by
    /// <see cref="GrowthToTrim"/> since the last trim, at least <see cref="MinStepsBetween"/> steps and
    /// <see cref="MinInterval"/> after it.</summary>
    public void TrimIfGrown()
    {
        if (!available || ++stepsSinceTrim < MinStepsBetween || sinceTrim.Elapsed < MinInterval) return;
        if (ResidentBytes() <= baseline * (1 + GrowthToTrim)) return;
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
