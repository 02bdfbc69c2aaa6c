using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BertSharp;

/// <summary>
/// How long libtorch's OpenMP worker threads (libgomp, on Linux) spin after each parallel region before they sleep,
/// and so whether BertSharp's own CPU kernels may use more than one thread.
/// </summary>
/// <remarks>
/// By default libgomp's workers spin for 300,000 pauses after every libtorch op (milliseconds on a recent Xeon),
/// holding the cores. The vectorised kernels (<see cref="Modeling.ColumnSoftmax"/>, <see cref="Modeling.Bf16LayerNorm"/>,
/// <see cref="Modeling.FastDropout"/>, <see cref="Modeling.Bf16.AddTo"/>) run between libtorch ops on .NET threads,
/// which then compete with spinning workers: split over two threads, the bf16 loss's softmax took 90 ms per step
/// instead of 78 on one (81 vs 88 in a second run). With a spin of 10,000 pauses the split took 54 ms against 87,
/// while libtorch's own ops kept their speed (docs/PERFORMANCE.md; passive waiting instead, no spin at all, made the
/// whole step 10–20 % slower).
/// libgomp reads the setting once, when it is loaded, so it is set here, when BertSharp's assembly is loaded,
/// before libtorch is; a GOMP_SPINCOUNT or OMP_WAIT_POLICY of the user's own is left alone and honoured.
/// </remarks>
internal static class OpenMpWorkers
{
    /// <summary>The spin set when the user has set none.</summary>
    public const long ShortSpinCount = 10_000;

    /// <summary>true when libgomp's workers spin briefly (as set here, or by the user's GOMP_SPINCOUNT ≤ 100,000 or
    /// OMP_WAIT_POLICY=passive): the kernels then split their rows over libtorch's thread count.</summary>
    public static bool SpinBriefly { get; private set; }

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "libgomp reads its environment when libtorch is loaded: this must run before any torch call")]
    internal static void LimitSpinning()
    {
        if (!OperatingSystem.IsLinux()) return;
        string? spin = Environment.GetEnvironmentVariable("GOMP_SPINCOUNT");
        string? policy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");
        if (spin != null) { SpinBriefly = long.TryParse(spin.Trim(), out long n) && n <= 100_000; return; }
        if (policy != null) { SpinBriefly = policy.Trim().Equals("passive", StringComparison.OrdinalIgnoreCase); return; }
        if (LibgompLoaded()) return;   // too late: libtorch was loaded before BertSharp, with the default spin
        try { SpinBriefly = setenv("GOMP_SPINCOUNT", ShortSpinCount.ToString(), 0) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    private static bool LibgompLoaded()
    {
        try { return File.ReadLines("/proc/self/maps").Any(line => line.Contains("libgomp")); }
        catch (IOException) { return true; }
        catch (UnauthorizedAccessException) { return true; }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv(string name, string value, int overwrite);
}
