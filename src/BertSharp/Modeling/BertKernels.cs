using BertSharp.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using LayerNormModule = TorchSharp.Modules.LayerNorm;

namespace BertSharp.Modeling;

/// <summary>
/// The operations of BERT's forward that have a fast CPU kernel, chosen when a model is built
/// (<see cref="ComputeOptions.Kernels"/>): <see cref="Reference"/> computes them with plain TorchSharp ops exactly as
/// HF's modeling_bert.py does; <see cref="Fused"/> runs BertSharp's fused CPU kernels where they apply and the reference
/// ops elsewhere (other devices, dtypes or shapes).
/// </summary>
public abstract class BertKernels
{
    private protected BertKernels() { }

    /// <summary>HF's ops: libtorch's dropout, LayerNorm in float32, eager attention, logits then cross-entropy.</summary>
    public static BertKernels Reference { get; } = new ReferenceKernels();

    /// <summary>BertSharp's fused CPU kernels (the default).</summary>
    public static BertKernels Fused { get; } = new FusedCpuKernels(new FusedKernelOptions());

    /// <summary>The fused CPU kernels with some of them turned off (bench/StepProfile measures each this way).</summary>
    public static BertKernels FusedWith(FusedKernelOptions options) => new FusedCpuKernels(options);

    /// <summary>Inverted dropout: zero each element with probability <paramref name="p"/>, scale the rest by 1/(1−p);
    /// a copy-free identity when not training.</summary>
    public abstract Tensor Dropout(Tensor x, double p, bool training);

    /// <summary>LayerNorm over the last dimension, computed in float32, returned in <paramref name="x"/>'s dtype.</summary>
    public abstract Tensor LayerNorm(Tensor x, LayerNormModule norm);

    /// <summary>LayerNorm(Dropout(<paramref name="x"/>) + <paramref name="residual"/>): BertSelfOutput's and BertOutput's tail.</summary>
    public abstract Tensor DropoutAddLayerNorm(Tensor x, Tensor residual, LayerNormModule norm, double p, bool training);

    /// <summary>softmax(q·kᵀ/√D + mask) · v with dropout on the probabilities.</summary>
    /// <param name="q">[B, N, L, D], as are <paramref name="k"/> and <paramref name="v"/></param>
    /// <param name="additiveMask">[B, 1, 1, L] (0 or the dtype's minimum), or null when nothing is padded</param>
    /// <param name="probs">when not null, receives the probabilities [B, N, L, L] in q's dtype</param>
    /// <returns>the context, [B, N, L, D]</returns>
    public abstract Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor? additiveMask, double p, bool training, List<Tensor>? probs);

    /// <summary>The masked-LM loss at [M, H] hidden states against [M] labels (-100 ignored), as the float32 mean over
    /// the labelled rows, or with <paramref name="divisor"/> their summed losses over it; the decoder is
    /// <paramref name="weight"/> [V, H] and <paramref name="bias"/> [V] (float32).</summary>
    public abstract Tensor MlmLoss(Tensor hidden, Tensor weight, Tensor bias, Tensor labels, long? divisor = null);

    /// <summary>Whether <see cref="Dropout"/> draws its masks from its own seeded generator on this device (then a batch
    /// can be cut into shards whose masks are reproducible, as pre-training's data parallelism does).</summary>
    internal abstract bool DrawsDropoutMasksOn(DeviceType device);

    /// <summary>A Linear on an input of another dtype: the weights cast to it for the product.</summary>
    internal static Tensor Linear(TorchSharp.Modules.Linear m, Tensor x) =>
        x.dtype == m.weight!.dtype ? m.call(x) : functional.linear(x, m.weight.to(x.dtype), m.bias?.to(x.dtype));
}

/// <summary>HF's semantics with plain TorchSharp ops (modeling_bert.py's eager path).</summary>
internal sealed class ReferenceKernels : BertKernels
{
    public override Tensor Dropout(Tensor x, double p, bool training) =>
        training && p > 0 ? functional.dropout(x, p, true) : x.alias();

    public override Tensor LayerNorm(Tensor x, LayerNormModule norm)
    {
        if (x.dtype == ScalarType.Float32) return norm.call(x);
        using var f = x.to(ScalarType.Float32);
        using var y = norm.call(f);
        return y.to(x.dtype);
    }

    public override Tensor DropoutAddLayerNorm(Tensor x, Tensor residual, LayerNormModule norm, double p, bool training)
    {
        using var h = Dropout(x, p, training);
        using var sum = h.Plus(residual);
        return LayerNorm(sum, norm);
    }

    public override Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor? additiveMask, double p, bool training, List<Tensor>? probs)
    {
        // No dispose scope here: the probabilities handed out belong to the caller's scope, as its other tensors do.
        using var kt = k.transpose(-1, -2);
        using var products = q.matmul(kt);
        using var scores = products.With(Math.Sqrt(q.shape[^1]), (t, s) => t.div(s));   // [B, N, L, L]
        using var masked = additiveMask is null ? scores.alias() : scores.Plus(additiveMask);
        using var attention = functional.softmax(masked, -1, ScalarType.Float32);            // softmax in fp32, as autocast
        if (probs != null) using (var detached = attention.detach()) probs.Add(detached.to(q.dtype));
        using var dropped = Dropout(attention, p, training);
        using var cast = dropped.to(v.dtype);
        return cast.matmul(v);                                                              // [B, N, L, D]
    }

    public override Tensor MlmLoss(Tensor hidden, Tensor weight, Tensor bias, Tensor labels, long? divisor = null) =>
        FusedLinearCrossEntropy.Plain(hidden, weight, bias, labels, divisor);

    internal override bool DrawsDropoutMasksOn(DeviceType device) => false;
}

/// <summary>Which of the fused CPU kernels run (all of them by default; bench/StepProfile measures each against its
/// reference by turning it off).</summary>
public sealed record FusedKernelOptions
{
    /// <summary>Dropout masks from BertSharp's counter-based generator, vectorised (else libtorch's dropout).</summary>
    public bool Dropout { get; init; } = true;
    /// <summary>LayerNorm of bfloat16 activations in one pass (else cast to float32 and back around libtorch's).</summary>
    public bool Bf16LayerNorm { get; init; } = true;
    /// <summary>Dropout + residual add + LayerNorm in one pass for bfloat16 activations while training.</summary>
    public bool DropoutAddLayerNorm { get; init; } = true;
    /// <summary>…and for float32 activations (off: its backward is slower than libtorch's in fp32).</summary>
    public bool DropoutAddLayerNormFloat32 { get; init; }
    /// <summary>Attention softmax + dropout + cast in one pass for bfloat16 scores while training.</summary>
    public bool AttentionSoftmaxDropout { get; init; } = true;
    /// <summary>…and for float32 scores (off: no faster in fp32).</summary>
    public bool AttentionSoftmaxDropoutFloat32 { get; init; }
    /// <summary>The MLM loss by chunks of rows without the [M, V] logits when training (else logits, then cross-entropy).</summary>
    public bool FusedMlmLoss { get; init; } = true;
    /// <summary>Rows per chunk of the fused MLM loss; null for the fastest measured for the dtype.</summary>
    public int? MlmLossChunkRows { get; init; }
    /// <summary>The fused MLM loss's softmax statistics by a vectorised two-pass kernel (else libtorch's ops).</summary>
    public bool VectorisedSoftmax { get; init; } = true;
}

/// <summary>BertSharp's fused CPU kernels (Modeling/Cpu/), each where it applies, the reference ops elsewhere.</summary>
internal sealed class FusedCpuKernels(FusedKernelOptions options) : BertKernels
{
    static readonly ReferenceKernels Plain = new();

    public FusedKernelOptions Options { get; } = options;

    public override Tensor Dropout(Tensor x, double p, bool training) =>
        Options.Dropout ? FastDropout.Apply(x, p, training) : Plain.Dropout(x, p, training);

    public override Tensor LayerNorm(Tensor x, LayerNormModule norm) =>
        Options.Bf16LayerNorm && Bf16LayerNorm.Supports(x, norm) ? Bf16LayerNorm.Apply(x, norm.weight!, norm.bias!, norm.eps) : Plain.LayerNorm(x, norm);

    public override Tensor DropoutAddLayerNorm(Tensor x, Tensor residual, LayerNormModule norm, double p, bool training)
    {
        if (training && Options.Dropout && Options.DropoutAddLayerNorm && Modeling.DropoutAddLayerNorm.Supports(x, residual, norm, p, Options.DropoutAddLayerNormFloat32))
            return Modeling.DropoutAddLayerNorm.Apply(x, residual, norm.weight!, norm.bias!, p, norm.eps);
        using var h = Dropout(x, p, training);
        using var sum = h.Plus(residual);
        return LayerNorm(sum, norm);
    }

    public override Tensor Attention(Tensor q, Tensor k, Tensor v, Tensor? additiveMask, double p, bool training, List<Tensor>? probs)
    {
        // On a CPU, SDPA with dropout falls back to the explicit computation, with libtorch's slow dropout.
        bool explicitPath = probs != null || (training && p > 0 && DrawsDropoutMasksOn(q.device_type));
        if (!explicitPath) return functional.scaled_dot_product_attention(q, k, v, additiveMask, training ? p : 0.0);
        // No dispose scope here: the probabilities handed out belong to the caller's scope, as its other tensors do.
        // q is scaled as the strided view is copied for the product (a pass over [B, N, L, D], not [B, N, L, L]).
        using var qScaled = q.With(1.0 / Math.Sqrt(q.shape[^1]), (t, s) => t.mul(s));
        using var kt = k.transpose(-1, -2);
        using var scores = qScaled.matmul(kt);                                                 // [B, N, L, L]
        if (additiveMask is not null) scores.PlusInPlace(additiveMask);
        if (probs == null && training && Options.AttentionSoftmaxDropout
            && AttentionSoftmaxDropout.Supports(scores, p, v.dtype, Options.AttentionSoftmaxDropoutFloat32))
        {
            using var fused = AttentionSoftmaxDropout.Apply(scores, p, v.dtype);                  // the three below in one pass
            return fused.matmul(v);
        }
        using var softmax = functional.softmax(scores, -1, ScalarType.Float32);
        if (probs != null) using (var detached = softmax.detach()) probs.Add(detached.to(q.dtype));
        using var dropped = Dropout(softmax, p, training);
        using var cast = dropped.to(v.dtype);
        return cast.matmul(v);                                                                 // [B, N, L, D]
    }

    public override Tensor MlmLoss(Tensor hidden, Tensor weight, Tensor bias, Tensor labels, long? divisor = null) =>
        Options.FusedMlmLoss
            ? FusedLinearCrossEntropy.Loss(hidden, weight, bias, labels, Options.MlmLossChunkRows, divisor, Options.VectorisedSoftmax)
            : FusedLinearCrossEntropy.Plain(hidden, weight, bias, labels, divisor);

    internal override bool DrawsDropoutMasksOn(DeviceType device) => Options.Dropout && FastDropout.DrawsMasksOn(device);
}
