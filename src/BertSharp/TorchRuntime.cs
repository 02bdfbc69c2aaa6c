using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp;

/// <summary>The one place device, threads and seed are set (the CLI's --device, --threads, --seed).</summary>
public static class TorchRuntime
{
    public static Device Device { get; private set; } = CPU;

    /// <summary>The dtype activations are computed in: Float32, or BFloat16 for --precision bf16 (weights,
    /// optimizer state, LayerNorm, softmax and losses stay float32).</summary>
    public static ScalarType ComputeDtype { get; set; } = ScalarType.Float32;

    public static ScalarType ParsePrecision(string precision) => precision.ToLowerInvariant() switch
    {
        "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        _ => throw new BertSharpException($"--precision {precision}: choose fp32 or bf16"),
    };

    public static Device ParseDevice(string spec)
    {
        try
        {
            var d = torch.device(spec);
            if (d.type == DeviceType.CUDA && !cuda.is_available())
                throw new BertSharpException($"--device {spec}: CUDA is not available in this build or on this machine (build with -p:TorchBackend=cuda on a machine with a GPU)");
            return d;
        }
        catch (BertSharpException) { throw; }
        catch (Exception) { throw new BertSharpException($"--device {spec}: not a device (use cpu, cuda or cuda:N)"); }
    }

    public static void Configure(string? device = null, int? threads = null, long? seed = null)
    {
        if (device != null) Device = ParseDevice(device);
        if (threads is int t)
        {
            if (t < 1) throw new BertSharpException($"--threads must be at least 1, got {t}");
            torch.set_num_threads(t);
        }
        if (seed is long s) Seed(s);
    }

    public static void Seed(long seed)
    {
        torch.manual_seed(seed);
        if (cuda.is_available()) cuda.manual_seed_all(seed);
    }
}
