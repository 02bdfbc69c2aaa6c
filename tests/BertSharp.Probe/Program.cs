using System.Runtime.InteropServices;
using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Runtime;
using static TorchSharp.torch;

// Usage: bertsharp-probe MODEL_DIR [--tune]
// Loads the model and runs a forward pass as a library user's program does (with --tune, after ProcessTuning.Apply),
// then prints what the process's environment and MKL say, read through libc and libtorch's own exports.
if (args.Contains("--tune")) ProcessTuning.Apply();
var (loaded, _) = ModelFolder.Load(args[0], "BertForPreTraining");
using var model = (BertForPreTraining)loaded;
model.eval();
using (no_grad())
using (var ids = tensor(new long[,] { { 2, 7, 9, 11, 3 } }))
using (var output = model.Forward(ids)) { }

Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
{
    ["GOMP_SPINCOUNT"] = Marshal.PtrToStringUTF8(getenv("GOMP_SPINCOUNT")),
    ["mkl_serv_intel_cpu_true"] = MklIntelCpuTrue(),
    ["tuning"] = ProcessTuning.Applied?.ToString(),
}));
return 0;

static unsafe int? MklIntelCpuTrue()
{
    string? torchCpu = File.ReadLines("/proc/self/maps").Select(l => l[Math.Max(0, l.IndexOf('/'))..])
        .FirstOrDefault(p => p.EndsWith("/libtorch_cpu.so"));
    if (torchCpu is null || !NativeLibrary.TryLoad(torchCpu, out var lib) || !NativeLibrary.TryGetExport(lib, "mkl_serv_intel_cpu_true", out var f))
        return null;
    return ((delegate* unmanaged<int>)f)();
}

[DllImport("libc")]
static extern nint getenv(string name);
