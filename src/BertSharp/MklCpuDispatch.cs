using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace BertSharp;

/// <summary>
/// Lets MKL, libtorch's fp32 matrix-product library on x86, pick its kernels by what the processor can do rather than
/// by who made it. MKL asks <c>mkl_serv_intel_cpu_true()</c> before choosing a code path, and on any processor that is
/// not Intel's takes a generic path: on this AMD EPYC (Zen 5, AVX-512) a 2048² fp32 product ran at ~105 GFLOP/s per
/// core, against ~250 once the function answers 1, and the `seed` training step went from 307 to 633 sequences/s
/// (docs/PERFORMANCE.md). That is the workaround PyTorch's maintainers give for AMD (a preloaded library defining the
/// function to return 1); here the function's first instructions are overwritten in memory with "return 1", so no
/// preload and no extra file are needed. MKL then checks the processor's features itself (AVX-512, AVX2, …) as it does
/// on Intel's. oneDNN, which runs the bf16 products, already chooses by features and is untouched.
/// Done once, before the first product (MKL remembers its choice); only on Linux x64, only when the processor is not
/// Intel's and libtorch carries MKL; BERTSHARP_MKL_DISPATCH=default leaves MKL as it is.
/// </summary>
public static class MklCpuDispatch
{
    /// <summary>What was done, in words (<c>bert bench</c> prints it beside the matmul peak).</summary>
    public static string Status { get; private set; } = "not applied";

    static int applied;

    /// <summary>Applies the fix once per process; later calls return at once. libtorch must be loaded.</summary>
    public static void Apply()
    {
        if (Interlocked.Exchange(ref applied, 1) == 1) return;
        try { Status = Patch(); }
        catch (Exception e) { Status = $"MKL as shipped ({e.GetType().Name}: {e.Message})"; }   // never worth failing a run for
    }

    static string Patch()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return "MKL as shipped (not Linux x64)";
        if (Environment.GetEnvironmentVariable("BERTSHARP_MKL_DISPATCH") == "default")
            return "MKL as shipped (BERTSHARP_MKL_DISPATCH=default)";
        string vendor = CpuVendor();
        if (vendor == "GenuineIntel") return "MKL as shipped (an Intel processor)";
        string? library = LoadedLibrary("libtorch_cpu.so");
        if (library == null || !NativeLibrary.TryLoad(library, out var handle)) return "MKL as shipped (libtorch_cpu not loaded)";
        if (!NativeLibrary.TryGetExport(handle, "mkl_serv_intel_cpu_true", out var function))
            return "MKL as shipped (libtorch has no MKL)";
        unsafe
        {
            var isIntel = (delegate* unmanaged<int>)function;
            if (isIntel() != 0) return $"MKL as shipped ({vendor}: MKL already takes its fast path)";
            // mov eax, 1; ret
            ReadOnlySpan<byte> returnOne = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];
            long page = Environment.SystemPageSize, start = function & ~(page - 1);
            nuint length = (nuint)(function + returnOne.Length - start);
            // Writable and still executable throughout, so no thread ever meets a page it cannot run.
            if (mprotect(start, length, ProtRead | ProtWrite | ProtExec) != 0)
                return $"MKL as shipped ({vendor}: its code could not be made writable, errno {Marshal.GetLastPInvokeError()})";
            returnOne.CopyTo(new Span<byte>((void*)function, returnOne.Length));
            mprotect(start, length, ProtRead | ProtExec);
            if (isIntel() != 1) return $"MKL as shipped ({vendor}: the patch did not take)";
            // MKL chooses at its first call and keeps the choice: 0 is its generic path, which a product run before
            // this one would have fixed.
            if (!NativeLibrary.TryGetExport(handle, "mkl_serv_cpu_detect", out var detect)) return $"MKL's fast path on {vendor}";
            int path = ((delegate* unmanaged<int>)detect)();
            return path > 0 ? $"MKL's fast path on {vendor} (its code path {path})"
                : $"MKL as shipped ({vendor}: MKL chose its generic path before BertSharp could change it)";
        }
    }

    static string CpuVendor()
    {
        if (!X86Base.IsSupported) return "";
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        var bytes = new byte[12];
        BitConverter.TryWriteBytes(bytes.AsSpan(0), ebx);
        BitConverter.TryWriteBytes(bytes.AsSpan(4), edx);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), ecx);
        return Encoding.ASCII.GetString(bytes);
    }

    /// <summary>The path of a shared library this process has loaded, from /proc/self/maps.</summary>
    static string? LoadedLibrary(string fileName)
    {
        try
        {
            return File.ReadLines("/proc/self/maps").Select(line => line[(line.IndexOf('/') is int i and >= 0 ? i : line.Length)..])
                .FirstOrDefault(path => Path.GetFileName(path) == fileName);
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    const int ProtRead = 1, ProtWrite = 2, ProtExec = 4;

    [DllImport("libc", SetLastError = true)]
    static extern int mprotect(long address, nuint length, int protection);
}
