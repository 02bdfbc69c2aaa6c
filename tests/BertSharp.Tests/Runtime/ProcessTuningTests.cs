using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using BertSharp.Runtime;

namespace BertSharp.Tests.Runtime;

/// <summary>Referencing BertSharp changes nothing in a process until <see cref="ProcessTuning.Apply"/> is called: checked in
/// a separate program that loads a model and runs a forward pass as a library user's program does.</summary>
public class ProcessTuningTests
{
    static JsonElement Probe(bool tune)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath is string p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet")
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "bertsharp-probe.dll"));
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "fixtures", "tiny-hf-bert"));
        if (tune) psi.ArgumentList.Add("--tune");
        foreach (var name in new[] { "GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "BERTSHARP_MKL_DISPATCH" }) psi.Environment.Remove(name);
        using var probe = Process.Start(psi)!;
        var stderr = probe.StandardError.ReadToEndAsync();
        string stdout = probe.StandardOutput.ReadToEnd();
        Assert.True(probe.WaitForExit(120_000), "the probe did not finish");
        Assert.True(probe.ExitCode == 0, stderr.Result);
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }

    static bool LinuxX64 => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;
    static bool IntelCpu => File.Exists("/proc/cpuinfo") && File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("vendor_id") && l.Contains("GenuineIntel"));

    [Fact]
    public void LoadingTheLibraryAndRunningAModelLeavesTheProcessAlone()
    {
        var untuned = Probe(tune: false);
        Assert.Equal(JsonValueKind.Null, untuned.GetProperty("GOMP_SPINCOUNT").ValueKind);
        Assert.Equal(JsonValueKind.Null, untuned.GetProperty("tuning").ValueKind);
        if (LinuxX64) Assert.Equal(IntelCpu ? 1 : 0, untuned.GetProperty("mkl_serv_intel_cpu_true").GetInt32());   // MKL as shipped
    }

    [LinuxX64Fact]
    public void TheTuningCallSetsTheSpinAndMklsDispatch()
    {
        var tuned = Probe(tune: true);
        Assert.Contains("training heap", tuned.GetProperty("tuning").GetString());
        Assert.Equal(OpenMpWorkers.ShortSpinCount.ToString(), tuned.GetProperty("GOMP_SPINCOUNT").GetString());
        Assert.Equal(1, tuned.GetProperty("mkl_serv_intel_cpu_true").GetInt32());   // on Intel as shipped, elsewhere patched
    }

    [Fact]
    public void ApplyIsIdempotentAndReportsWhatItDid()
    {
        var first = ProcessTuning.Apply();   // this test process was tuned by its module initializer
        Assert.Same(first, ProcessTuning.Apply(new ProcessTuningOptions { MklFeatureDispatch = false }));
        Assert.Same(first, ProcessTuning.Applied);
        Assert.Equal(Mkl.DispatchStatus, first.Mkl);
    }
}
