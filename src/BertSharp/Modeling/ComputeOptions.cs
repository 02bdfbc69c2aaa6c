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

    public static ScalarType ParsePrecision(string precision) => precision.ToLowerInvariant() switch
    {
        "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        _ => throw new BertSharpException($"precision {precision}: choose fp32 or bf16") { Parameters = ["precision"] },
    };

    /// <summary>"fp32" or "bf16", as args.json records it.</summary>
    public string Precision => Dtype == ScalarType.BFloat16 ? "bf16" : "fp32";
}
