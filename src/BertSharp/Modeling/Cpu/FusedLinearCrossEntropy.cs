using BertSharp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>
/// mean cross-entropy(h·Wᵀ + b, labels) without materialising the [rows, vocab] logits and their gradient.
/// </summary>
/// <remarks>
/// The MLM loss of a pre-training step is a softmax over the whole vocabulary at every masked position: with the
/// `seed` preset that is 5,120 × 20,256 floats (415 MB). Autograd's log_softmax + nll_loss then streams that matrix
/// through memory about eight times (logits, log-probabilities, a zeroed gradient, the softmax backward), and on a
/// CPU the step spends more time there than in any matrix product (bench/StepProfile). Here the rows are taken in
/// chunks small enough to stay in cache: each chunk's logits are computed, turned into their gradient
/// (softmax − one-hot) / count at once, and multiplied into the gradients of h, W and b, which are kept. The loss
/// that is returned carries those gradients through a surrogate term whose value is zero, so backward() gives
/// exactly the gradients of the plain formulation (the same approach as Liger Kernel's fused linear
/// cross-entropy). Rows labelled -100 are ignored, as in cross_entropy.
/// </remarks>
internal static class FusedLinearCrossEntropy
{
    public const long IgnoreIndex = -100;

    /// <summary>Rows per chunk by the products' dtype: the fastest measured (docs/PERFORMANCE.md), bf16's GEMMs wanting
    /// a longer inner dimension for the weight gradient.</summary>
    internal static int DefaultChunkRows(ScalarType dtype) => dtype == ScalarType.Float32 ? 128 : 256;

    /// <param name="hidden">[M, H] in the compute dtype (float32 or bfloat16)</param>
    /// <param name="weight">[V, H] float32 (the master copy; cast to the hidden dtype for the products)</param>
    /// <param name="bias">[V] float32</param>
    /// <param name="labels">[M] int64, -100 for rows to ignore</param>
    /// <param name="chunkRows">rows per chunk; null for <see cref="DefaultChunkRows"/></param>
    /// <param name="vectorisedSoftmax">the softmax statistics on the CPU by <see cref="ColumnSoftmax"/> (else libtorch's ops)</param>
    /// <param name="divisor">what the rows' summed losses are divided by; null for the rows not ignored (a
    /// <see cref="DataParallel"/> shard passes its whole batch's count)</param>
    /// <returns>A float32 scalar: the mean over the rows that are not ignored (or the sum over the divisor).</returns>
    public static Tensor Loss(Tensor hidden, Tensor weight, Tensor bias, Tensor labels, int? chunkRows = null, long? divisor = null, bool vectorisedSoftmax = true)
    {
        if (divisor is < 1) throw new ArgumentOutOfRangeException(nameof(divisor), "must be at least 1");
        int chunk = chunkRows ?? DefaultChunkRows(hidden.dtype);
        if (chunk < 1) throw new ArgumentOutOfRangeException(nameof(chunkRows));
        if (hidden.dim() != 2 || labels.dim() != 1 || labels.shape[0] != hidden.shape[0])
            throw new ArgumentException($"hidden must be [M, H] and labels [M]; got [{string.Join(", ", hidden.shape)}] and [{string.Join(", ", labels.shape)}]");
        bool needsGrad = is_grad_enabled() && (hidden.requires_grad || weight.requires_grad || bias.requires_grad);
        if (!needsGrad) return Plain(hidden, weight, bias, labels, divisor);

        using var scope = NewDisposeScope();
        var dt = hidden.dtype;
        long M = hidden.shape[0];
        Tensor loss, gradH, gradW, gradB;
        using (no_grad())
        {
            var valid = labels.With(IgnoreIndex, (t, s) => t.ne(s));
            long count = divisor ?? valid.sum().item<long>();
            if (count == 0) return Plain(hidden, weight, bias, labels).MoveToOuterDisposeScope(); // NaN, as cross_entropy
            var h = hidden.detach();
            var w = weight.detach().to(dt);
            bool vectorised = vectorisedSoftmax && hidden.device_type == DeviceType.CPU;
            // The bias as each path adds it: in fp32 by ColumnSoftmax, in the products' dtype by addmm.
            var b = vectorised ? bias.detach().to(ScalarType.Float32).contiguous() : bias.detach().to(dt);
            var safeLabels = labels.With(0L, (t, s) => t.clamp_min(s)).unsqueeze(1);              // [M, 1]
            var rowScale = valid.to(ScalarType.Float32).With(count, (t, s) => t.div_(s)).unsqueeze(1); // [M, 1]: 1/count, 0 where ignored
            gradH = empty(hidden.shape, dtype: dt, device: hidden.device);
            gradW = zeros(weight.shape, dtype: ScalarType.Float32, device: weight.device);
            gradB = zeros(bias.shape, dtype: ScalarType.Float32, device: bias.device);
            var lossSum = zeros(1, dtype: ScalarType.Float32, device: hidden.device);
            // Each chunk's logits are formed transposed, [V, n] = W·hᵀ: with the vocabulary as the GEMM's long side and
            // the chunk's rows as its short one, the three products run faster on a CPU than [n, V] = h·Wᵀ
            // (bench/StepProfile), and the weight gradient accumulates in place (addmm_) without a [V, H] temporary.
            bool inPlace = dt == gradW.dtype;   // bf16 products return bf16: added to the fp32 gradient instead (by Bf16.AddTo on the CPU)
            for (long r0 = 0; r0 < M; r0 += chunk)
            {
                using var chunkScope = NewDisposeScope();
                long r1 = Math.Min(M, r0 + chunk), n = r1 - r0;
                var hc = h.narrow(0, r0, n);
                var lab = safeLabels.narrow(0, r0, n);                           // [n, 1]
                var labFlat = lab.squeeze(1);
                var scale = rowScale.narrow(0, r0, n);                          // [n, 1]
                Tensor z, max, sumExp, picked;
                if (vectorised)
                {
                    // The bias is added by the kernel, in fp32, during its two passes.
                    z = w.mm(hc.t()).contiguous();                               // [V, n] logits less bias
                    picked = z.gather(0, lab.t()).to(ScalarType.Float32).PlusInPlace(b.index_select(0, labFlat).unsqueeze(0)); // [1, n]
                    float[] maxes = new float[n], sums = new float[n];
                    ColumnSoftmax.ExpInPlace(z, b, maxes, sums);               // z ← exp(z + b − max), in z's dtype
                    max = tensor(maxes).unsqueeze(0);
                    sumExp = tensor(sums).unsqueeze(0);
                }
                else
                {
                    z = addmm(b.unsqueeze(1), w, hc.t(), 1, 1);                 // [V, n] logits, one column per row
                    // Softmax and loss in fp32. (Casting first is faster than letting a bf16 z minus an fp32 max
                    // promote: libtorch's mixed-dtype elementwise path is not vectorised.)
                    if (z.dtype != ScalarType.Float32) z = z.to(ScalarType.Float32);
                    picked = z.gather(0, lab.t());                               // [1, n] the label's logit
                    max = z.amax(new long[] { 0 }, keepdim: true);               // [1, n]
                    z.sub_(max).exp_();                                          // one exp per logit
                    sumExp = z.sum(0, keepdim: true);                            // [1, n]
                }
                lossSum.PlusInPlace((sumExp.log().Plus(max) - picked).mul_(scale.t()).sum()); // log-sum-exp − label logit
                // d loss / d logits = rowFactor·exp(z − max) − scale·onehot(label). Neither term is formed over
                // [V, n]: the row factor is applied to the products' small sides, the one-hot part is a row gather
                // or scatter of W, h and b, so the exponentials are read only by the three products below.
                var rowFactor = (scale / sumExp.t()).to(dt);                      // [n, 1]
                var e = z.dtype == dt ? z : z.to(dt);                            // [V, n]
                var scaleDt = scale.to(dt);
                var scaledH = hc.mul(scaleDt);                                    // [n, H]
                gradH.narrow(0, r0, n).copy_(e.t().mm(w).mul_(rowFactor).sub_(w.index_select(0, labFlat).mul_(scaleDt)));
                var hFactor = hc.mul(rowFactor);                                  // [n, H]
                if (inPlace) gradW.addmm_(e, hFactor, 1, 1);                        // [V, H] += e·(h·rowFactor)
                else if (vectorised && dt == ScalarType.BFloat16) Bf16.AddTo(gradW, e.mm(hFactor));
                else gradW.PlusInPlace(e.mm(hFactor));
                gradW.With(-1L, (t, minusOne) => t.index_add_(0, labFlat, scaledH.to(ScalarType.Float32), minusOne));
                gradB.PlusInPlace(e.mm(rowFactor).squeeze(1)).With(-1L, (t, minusOne) => t.index_add_(0, labFlat, scale.squeeze(1), minusOne));
            }
            loss = lossSum.squeeze();   // each row was scaled by 1/count: this is the mean
        }
        // Zero-valued term whose gradient is (gradH, gradW, gradB): backward() then propagates the exact gradients.
        var surrogate = hidden.mul(gradH).sum().to(ScalarType.Float32).Plus(weight.mul(gradW).sum()).Plus(bias.mul(gradB).sum());
        return (loss.Plus(surrogate) - surrogate.detach()).MoveToOuterDisposeScope();
    }

    /// <summary>The textbook formulation (logits, then cross_entropy), used where no gradient is needed.</summary>
    public static Tensor Plain(Tensor hidden, Tensor weight, Tensor bias, Tensor labels, long? divisor = null)
    {
        using var scope = NewDisposeScope();
        var logits = nn.functional.linear(hidden, weight.to(hidden.dtype), bias.to(hidden.dtype)).to(ScalarType.Float32);
        if (divisor is long d)
            return nn.functional.cross_entropy(logits, labels, ignore_index: IgnoreIndex, reduction: nn.Reduction.Sum).With(d, (t, s) => t.div(s)).MoveToOuterDisposeScope();
        return nn.functional.cross_entropy(logits, labels, ignore_index: IgnoreIndex).MoveToOuterDisposeScope();
    }
}
