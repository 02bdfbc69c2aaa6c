using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace BertSharp.Runtime;

/// <summary>
/// MKL, the library libtorch runs fp32 matrix products with on x86 (linked into libtorch_cpu): which code path it takes,
/// and the buffers it keeps. Everything here is a no-op where libtorch carries no MKL.
/// </summary>
internal static class Mkl
{
    /// <summary>What <see cref="UseFeatureDispatch"/> did, in words (<c>bert bench</c> prints it beside the matmul peak).</summary>
    public static string DispatchStatus { get; private set; } = "MKL as shipped (no process tuning)";

    static readonly object Gate = new();
    static bool dispatched;

    /// <summary>
    /// Lets MKL pick its kernels by what the processor can do rather than by who made it: MKL asks
    /// <c>mkl_serv_intel_cpu_true()</c> before choosing a code path and takes a generic one on any processor that is
    /// not Intel's (half the fp32 speed on an AMD EPYC with AVX-512: docs/PERFORMANCE.md, "Process tuning"). As PyTorch's
    /// maintainers' preloaded workaround does, the function is made to answer 1, here by overwriting its first
    /// instructions in memory; MKL then checks the processor's features itself. oneDNN (the bf16 products) is untouched.
    /// Once per process, before the first product (MKL keeps its first choice); only on Linux x64 and a processor that
    /// is not Intel's; BERTSHARP_MKL_DISPATCH=default leaves MKL as it is. Never throws: the status says what happened.
    /// Called by <see cref="ProcessTuning.Apply"/> only.
    /// </summary>
    internal static string UseFeatureDispatch()
    {
        lock (Gate)
        {
            if (dispatched) return DispatchStatus;
            dispatched = true;
            try { DispatchStatus = Patch(); }
            catch (Exception e) { DispatchStatus = $"MKL as shipped ({e.GetType().Name}: {e.Message})"; }   // never worth failing a run for
            return DispatchStatus;
        }
    }

    /// <summary>Gives back the buffers MKL keeps between products (<c>mkl_free_buffers</c>): an evaluation's larger
    /// batches would leave theirs held for the rest of a run.</summary>
    public static unsafe void FreeBuffers()
    {
        if (Export("mkl_serv_free_buffers") is nint f) ((delegate* unmanaged<void>)f)();
    }

    /// <summary>Bytes MKL's allocator holds now (<c>mkl_mem_stat</c>); 0 without MKL.</summary>
    public static unsafe long BufferBytes()
    {
        if (Export("mkl_serv_mem_stat") is not nint f) return 0;
        int buffers;
        return ((delegate* unmanaged<int*, long>)f)(&buffers);
    }

    static unsafe string Patch()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return "MKL as shipped (not Linux x64)";
        if (Environment.GetEnvironmentVariable("BERTSHARP_MKL_DISPATCH") == "default")
            return "MKL as shipped (BERTSHARP_MKL_DISPATCH=default)";
        string vendor = CpuVendor();
        if (vendor == "GenuineIntel") return "MKL as shipped (an Intel processor)";
        if (Export("mkl_serv_intel_cpu_true") is not nint function) return "MKL as shipped (libtorch has no MKL)";
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
        // MKL chooses at its first call and keeps the choice: 0 is its generic path, which a product run before this
        // one would have fixed.
        if (Export("mkl_serv_cpu_detect") is not nint detect) return $"MKL's fast path on {vendor}";
        int path = ((delegate* unmanaged<int>)detect)();
        return path > 0 ? $"MKL's fast path on {vendor} (its code path {path})"
            : $"MKL as shipped ({vendor}: MKL chose its generic path before BertSharp could change it)";
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

    static nint? libtorchCpu;

    /// <summary>An MKL function exported by the loaded libtorch_cpu (found through /proc/self/maps), or null.</summary>
    static nint? Export(string name)
    {
        if (libtorchCpu is null && LoadedLibrary("libtorch_cpu.so") is string path && NativeLibrary.TryLoad(path, out var h))
            libtorchCpu = h;
        return libtorchCpu is nint lib && NativeLibrary.TryGetExport(lib, name, out var f) ? f : null;
    }

    static string? LoadedLibrary(string fileName)
    {
        if (!OperatingSystem.IsLinux()) return null;
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
