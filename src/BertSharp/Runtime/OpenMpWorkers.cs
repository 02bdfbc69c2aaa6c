using System.Runtime.InteropServices;

namespace BertSharp.Runtime;

/// <summary>
/// How long libtorch's OpenMP worker threads (libgomp, on Linux) spin after each parallel region before they sleep,
/// and so whether BertSharp's own CPU kernels may use more than one thread.
/// </summary>
/// <remarks>
/// By default libgomp's workers spin for 300,000 pauses after every libtorch op, holding the cores while the
/// vectorised kernels (which run on .NET threads between libtorch ops) want them; a short spin lets both share the
/// cores, while no spin at all slows every libtorch op (docs/PERFORMANCE.md, "Process tuning").
/// libgomp reads the setting once, when libtorch is loaded, so <see cref="ProcessTuning.Apply"/> sets it before the
/// first torch call; a GOMP_SPINCOUNT or OMP_WAIT_POLICY of the user's own is left alone and honoured.
/// </remarks>
internal static class OpenMpWorkers
{
    /// <summary>The spin set when the user has set none.</summary>
    public const long ShortSpinCount = 10_000;

    static bool? shortenedHere;

    /// <summary>true when libgomp's workers spin briefly (shortened by <see cref="ShortenSpin"/>, or the user's
    /// GOMP_SPINCOUNT ≤ 100,000 or OMP_WAIT_POLICY=passive): the kernels then split their rows over libtorch's thread
    /// count. Reading it changes nothing.</summary>
    public static bool SpinBriefly => shortenedHere ?? UserSpinsBriefly() ?? false;

    /// <summary>What the user's own environment says, or null when it says nothing.</summary>
    static bool? UserSpinsBriefly()
    {
        string? spin = Environment.GetEnvironmentVariable("GOMP_SPINCOUNT");
        if (spin != null) return long.TryParse(spin.Trim(), out long n) && n <= 100_000;
        string? policy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");
        if (policy != null) return policy.Trim().Equals("passive", StringComparison.OrdinalIgnoreCase);
        return null;
    }

    /// <summary>Sets GOMP_SPINCOUNT to <see cref="ShortSpinCount"/> for libgomp to read when it loads, unless the user
    /// chose a spin or libgomp is already loaded. Returns what happened, in words.</summary>
    public static string ShortenSpin()
    {
        if (!OperatingSystem.IsLinux()) return "OpenMP spin as is (not Linux)";
        if (UserSpinsBriefly() is bool user)
            return $"OpenMP spin as the environment sets it ({(user ? "brief" : "long")}: GOMP_SPINCOUNT/OMP_WAIT_POLICY)";
        if (LibgompLoaded()) return "OpenMP spin as is (libtorch was loaded before the tuning call)";
        try
        {
            if (setenv("GOMP_SPINCOUNT", ShortSpinCount.ToString(), 0) != 0) return "OpenMP spin as is (setenv failed)";
            shortenedHere = true;
            return $"OpenMP workers spin {ShortSpinCount:N0} pauses (GOMP_SPINCOUNT)";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return "OpenMP spin as is (no libc setenv)"; }
    }

    static bool LibgompLoaded()
    {
        try { return File.ReadLines("/proc/self/maps").Any(line => line.Contains("libgomp")); }
        catch (IOException) { return true; }
        catch (UnauthorizedAccessException) { return true; }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv(string name, string value, int overwrite);
}
