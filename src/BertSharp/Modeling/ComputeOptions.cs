using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>
/// How a model computes, chosen when it is built: the dtype of its activations and the kernels of the operations that
/// have a fast CPU implementation. Mixed precision without autocast (TorchSharp has none): weights stay float32 (the
/// master copy the optimizer updates); a Linear given a bfloat16 input casts its weights for the product, a
/// differentiable cast, so gradients arrive in float32; LayerNorm, softmax and the losses compute in float32.
/// </summary>
public sealed record ComputeOptions
{
    /// <summary>Float32, or BFloat16 for bfloat16 activations and products.</summary>
    public ScalarType Dtype { get; init; } = ScalarType.Float32;

    public BertKernels Kernels { get; init; } = BertKernels.Fused;

    /// <summary>Built to predict, never to train: in bfloat16 the Linear weights are stored in bfloat16 once, when the
    /// weights are loaded (<see cref="BertWithHead.StoreLinearWeightsInComputeDtype"/>), instead of cast from the float32
    /// master copy for every product; the products are the same bfloat16 products either way.</summary>
    public bool InferenceOnly { get; init; }

    public static ComputeOptions Default { get; } = new();

    /// <summary>"fp32" (or "float32") and "bf16" (or "bfloat16"), with the fused kernels.</summary>
    public static ComputeOptions ForPrecision(string precision) => new() { Dtype = ParsePrecision(precision) };

    /// <summary>As <see cref="ForPrecision"/>, for a model that only predicts (<see cref="InferenceOnly"/>).</summary>
    public static ComputeOptions ForInference(string precision) => ForPrecision(precision) with { InferenceOnly = true };

    public static ScalarType ParsePrecision(string precision) => ResolvePrecision(precision) switch
    {
        "bf16" => ScalarType.BFloat16,
        _ => ScalarType.Float32,
    };

    /// <summary>"auto": bf16 where this processor computes bfloat16 products natively (<see cref="CpuHasNativeBf16"/>),
    /// else fp32; the other names as given, in their short form ("fp32", "bf16").</summary>
    public static string ResolvePrecision(string precision) => precision.ToLowerInvariant() switch
    {
        "fp32" or "float32" => "fp32",
        "bf16" or "bfloat16" => "bf16",
        "auto" => CpuHasNativeBf16 ? "bf16" : "fp32",
        _ => throw new BertSharpException($"precision {precision}: choose fp32, bf16 or auto") { Parameters = ["precision"] },
    };

    /// <summary>Whether the CPU has bfloat16 dot-product instructions (x86 AVX512-BF16 or AMX-BF16, from
    /// /proc/cpuinfo): there bf16 training runs about 1.5× fp32; without them libtorch emulates bf16, slower than fp32.</summary>
    public static bool CpuHasNativeBf16 => cpuHasNativeBf16.Value;

    static readonly Lazy<bool> cpuHasNativeBf16 = new(() =>
    {
        try
        {
            if (!OperatingSystem.IsLinux()) return false;
            var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal));
            return flags != null && flags.Split([' ', '\t', ':'], StringSplitOptions.RemoveEmptyEntries).Any(f => f is "avx512_bf16" or "amx_bf16");
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    });

    /// <summary>"fp32" or "bf16", as args.json records it.</summary>
    public string Precision => Dtype == ScalarType.BFloat16 ? "bf16" : "fp32";
}
