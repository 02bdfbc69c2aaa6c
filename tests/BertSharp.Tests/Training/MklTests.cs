using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using static TorchSharp.torch;

namespace BertSharp.Tests.Training;

/// <summary>MKL takes the code path the processor's features allow, whoever made it (<see cref="Mkl.UseFeatureDispatch"/>).</summary>
[Collection(SerialCollection.Name)]   // seeds the global generator; counts MKL's buffers with no other test's products running
public class MklTests
{
    /// <summary>From /proc/cpuinfo, not CPUID as the code reads it: a second witness.</summary>
    static string? Vendor() => File.Exists("/proc/cpuinfo")
        ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id"))?.Split(':')[1].Trim() : null;

    /// <summary>`bert bench train` in its own process: the matmul row says which path MKL took.</summary>
    static string MatmulDetail(string? dispatch)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath is string p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet")
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "bert.dll"), "--threads", "1", "bench", "train",
                     "--model-preset", "mini", "--steps", "1", "--batch-size", "2", "--max-seq-length", "16", "--json" })
            psi.ArgumentList.Add(a);
        psi.Environment["BERTSHARP_MKL_DISPATCH"] = dispatch;
        using var bert = Process.Start(psi)!;
        var stderr = bert.StandardError.ReadToEndAsync();
        string stdout = bert.StandardOutput.ReadToEnd();
        Assert.True(bert.WaitForExit(120_000), "bert bench did not finish");
        Assert.True(bert.ExitCode == 0, stderr.Result);
        using var json = JsonDocument.Parse(stdout);
        return json.RootElement.EnumerateArray().First(r => r.GetProperty("name").GetString()!.StartsWith("matmul"))
            .GetProperty("detail").GetString()!;
    }

    [LinuxX64Fact]
    public void TheCommandGivesMklItsFastPathUnlessToldNot()
    {
        string vendor = Vendor()!;
        string detail = MatmulDetail(null);
        if (vendor == "GenuineIntel") Assert.Contains("MKL as shipped (an Intel processor)", detail);
        else Assert.Contains($"MKL's fast path on {vendor} (its code path ", detail);
        Assert.Contains("MKL as shipped (BERTSHARP_MKL_DISPATCH=default)", MatmulDetail("default"));
    }

    [LinuxX64Fact]
    public unsafe void InThisProcessMklSeesAnIntelProcessorAndItsProductsAreRight()
    {
        Assert.True(NativeLibrary.TryLoad(File.ReadLines("/proc/self/maps").Select(l => l[Math.Max(0, l.IndexOf('/'))..])
            .First(p => p.EndsWith("/libtorch_cpu.so")), out var torchCpu));
        Assert.True(NativeLibrary.TryGetExport(torchCpu, "mkl_serv_intel_cpu_true", out var isIntel));
        Assert.Equal(1, ((delegate* unmanaged<int>)isIntel)());
        Assert.StartsWith(Vendor() == "GenuineIntel" ? "MKL as shipped" : "MKL's fast path", Mkl.DispatchStatus);

        // Products of the shapes and layouts training uses (a transposed operand, a thin inner dimension, a batch)
        // against float64.
        manual_seed(3);
        using var a = randn(300, 128); using var b = randn(384, 128); using var x = randn(8, 64, 32); using var y = randn(8, 32, 64);
        foreach (var (f, d) in new[] { (a.matmul(b.t()), a.to(ScalarType.Float64).matmul(b.to(ScalarType.Float64).t())),
                     (x.bmm(y), x.to(ScalarType.Float64).bmm(y.to(ScalarType.Float64))) })
        {
            double err = (f.to(ScalarType.Float64) - d).abs().max().item<double>();
            Assert.True(err < 1e-4 * d.abs().max().item<double>(), $"max |fp32 - fp64| {err}");
        }
    }

    [LinuxX64Fact]
    public void FreeBuffersGivesBackWhatMklKeepsBetweenProducts()
    {
        using var a = randn(1024, 1024); using var b = randn(1024, 1024);
        using (a.matmul(b)) { }
        long held = Mkl.BufferBytes();
        Assert.True(held > 0, "MKL keeps no buffers after a product");
        Mkl.FreeBuffers();
        Assert.True(Mkl.BufferBytes() < held, $"still {Mkl.BufferBytes()} of {held} bytes");
    }
}
