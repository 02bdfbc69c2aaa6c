using System.Runtime.InteropServices;

namespace BertSharp.Tests;

/// <summary>A fact for Linux on x64, where libtorch brings MKL; elsewhere it reports itself skipped, with the reason.</summary>
public sealed class LinuxX64FactAttribute : FactAttribute
{
    public LinuxX64FactAttribute()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            Skip = $"needs Linux on x64 (libtorch's MKL); this is {RuntimeInformation.OSDescription} on {RuntimeInformation.ProcessArchitecture}";
    }
}

/// <summary>A fact for Linux with glibc (malloc_trim); elsewhere it reports itself skipped, with the reason.</summary>
public sealed class GlibcFactAttribute : FactAttribute
{
    public GlibcFactAttribute()
    {
        bool glibc = OperatingSystem.IsLinux() && File.ReadLines("/proc/self/maps").Any(l => l.Contains("libc.so.6"));
        if (!glibc) Skip = $"needs Linux with glibc (malloc_trim); this is {RuntimeInformation.OSDescription}";
    }
}
