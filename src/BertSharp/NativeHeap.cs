using System.Runtime.InteropServices;

namespace BertSharp;

/// <summary>
/// Keeps glibc's heap from holding freed tensor memory. glibc serves a freed large block's size from the heap from
/// then on (its mmap threshold rises with every large free, up to 32 MB), and with dynamic padding every batch frees
/// and asks for slightly different sizes, so the heap fragments: a `seed`-preset run at batch 16 grew from 771 MiB
/// at step 100 to 1,925 MiB at step 400 and stayed there. A fixed 4 MiB threshold sends the large tensors to mmap,
/// which returns them to the system when freed (measured: 574 MiB at step 200, 565 MiB at step 500, same step time
/// within noise; docs/PERFORMANCE.md). No-op where glibc's mallopt is absent (musl, macOS, Windows), and when the
/// environment variable BERTSHARP_GLIBC_HEAP=default asks for glibc's own behaviour.
/// </summary>
public static class NativeHeap
{
    const int M_MMAP_THRESHOLD = -3;
    public const int MmapThresholdBytes = 4 << 20;
    static bool configured;

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int Mallopt(int param, int value);

    /// <summary>Sets the fixed threshold once per process; returns whether glibc accepted it.</summary>
    public static bool Configure()
    {
        if (configured || !OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("BERTSHARP_GLIBC_HEAP") == "default") return configured;
        try { configured = Mallopt(M_MMAP_THRESHOLD, MmapThresholdBytes) == 1; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        return configured;
    }
}
