using System.Diagnostics;
using System.Runtime.InteropServices;

namespace BertSharp;

/// <summary>
/// Gives glibc's freed heap memory back to the system now and then. glibc serves a freed large block's size from the
/// heap from then on (its mmap threshold rises with every large free, up to 32 MB), and with dynamic padding every
/// batch frees and asks for slightly different sizes, so the heap keeps holes it never returns: a `seed`-preset run
/// at batch 16 grew from 771 MiB at step 100 to 1,925 MiB at step 400 and stayed there. malloc_trim releases the
/// free pages. Not after every step: the next step faults the pages in again (a fixed 4 MiB mmap threshold, which
/// does that on every allocation, made the batch-512 step 1.45× slower). Measured in docs/PERFORMANCE.md.
/// A no-op where glibc's malloc_trim is absent (musl, macOS, Windows).
/// </summary>
public sealed class NativeHeap
{
    /// <summary>How often <see cref="TrimIfDue"/> trims.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    static readonly bool available = OperatingSystem.IsLinux() && Probe();
    readonly Stopwatch sinceTrim = Stopwatch.StartNew();

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    static bool Probe()
    {
        try { MallocTrim(0); return true; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>Releases free heap pages now; returns whether anything could be released.</summary>
    public static bool Trim() => available && MallocTrim(0) == 1;

    /// <summary>Trims when <see cref="Interval"/> has passed since the last trim of this instance.</summary>
    public void TrimIfDue()
    {
        if (sinceTrim.Elapsed < Interval) return;
        Trim();
        sinceTrim.Restart();
    }
}
