using System.Runtime.InteropServices;

namespace BertSharp.Tests;

/// <summary>A test of something only Linux with glibc on x64 has (MKL's dispatch in libtorch, glibc's heap calls, libgomp):
/// reported skipped, with the reason, elsewhere.</summary>
public sealed class LinuxX64FactAttribute : FactAttribute
{
    public LinuxX64FactAttribute()
    {
        if (!IsLinuxX64WithGlibc) Skip = "needs Linux with glibc on x64 (MKL in libtorch_cpu, glibc's malloc_trim, libgomp)";
    }

    public static bool IsLinuxX64WithGlibc => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
        && File.Exists("/proc/self/maps") && File.ReadLines("/proc/self/maps").Any(l => l.Contains("libc.so.6"));
}
