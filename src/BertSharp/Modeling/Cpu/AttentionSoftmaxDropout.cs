using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>
/// The training attention's probabilities in one pass forward and one backward: softmax over the last dimension in
/// float32, then <see cref="FastDropout"/>, then a cast back to the scores' dtype (the compute dtype of the product that follows); what
/// softmax(scores, dtype: float32), FastDropout.Apply and .to(dtype) compute, with the same mask for the same seed.
/// </summary>
/// <remarks>
/// libtorch makes a memory pass over the [B, N, L, L] scores for each of those ops and for each of their backwards
/// (softmax, mask, multiply and, with bf16, a cast, forward; cast, multiply, softmax backward and a cast, backward).
/// Here each row of L scores is read once and its probabilities (kept in float32 for the backward, as the softmax's
/// own output would be) and dropped-out outputs are written at once; the backward reads the probabilities, the mask
/// and the output gradient once and writes the scores' gradient, dS = p·(dP − Σ p·dP) with dP = dY·mask/(1 − p).
/// The mask is FastDropout's, drawn into 16 bits per element from one seed of torch's generator (or the
/// <see cref="DataParallel"/> shard's), so the masks are those the unfused path draws.
/// </remarks>
internal sealed class AttentionSoftmaxDropout : autograd.SingleTensorFunction<AttentionSoftmaxDropout>
{
    public override string Name => nameof(AttentionSoftmaxDropout);

    private const int Lanes = 16;

    /// <summary>Whether <see cref="Apply"/> takes these scores (float32 or bfloat16 on the CPU, where FastDropout draws
    /// the masks, a dropout probability in (0, 1), the output in the scores' dtype: the model's products are all in
    /// the compute dtype).</summary>
    /// <param name="forFloat32">whether fp32 scores take it too (<see cref="FusedKernelOptions.AttentionSoftmaxDropoutFloat32"/>)</param>
    internal static bool Supports(Tensor scores, double p, ScalarType outDtype, bool forFloat32) =>
        scores.device_type == DeviceType.CPU
        && (scores.dtype == ScalarType.BFloat16 || scores.dtype == ScalarType.Float32 && forFloat32)
        && outDtype == scores.dtype
        && p > 0 && Math.Round(p * 65536) < 65536 && scores.dim() >= 1 && scores.shape[^1] > 0;

    /// <param name="scores">[…, L] attention scores (the additive mask already added)</param>
    /// <param name="p">dropout probability</param>
    /// <param name="outDtype">dtype of the result (the value tensor's, for the product that follows): the scores'</param>
    public static Tensor Apply(Tensor scores, double p, ScalarType outDtype)
    {
        if (outDtype != scores.dtype) throw new ArgumentException($"the output dtype must be the scores' ({scores.dtype}), got {outDtype}");
        return apply(scores, p);
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = ((Tensor)vars[0]).detach().contiguous();
        double p = (double)vars[1];
        int L = checked((int)x.shape[^1]);
        long rows = x.numel() / L;
        ushort threshold = (ushort)Math.Round(p * 65536);
        float scale = (float)(1.0 / (1.0 - p));
        var mask = empty(x.shape, dtype: ScalarType.Int16);
        FastDropout.Fill(mask.bytes, sizeof(ushort), FastDropout.NextSeed(), threshold, 0xFFFF);
        var probs = empty(x.shape, dtype: ScalarType.Float32);
        var y = empty_like(x);
        bool bf16 = x.dtype == ScalarType.BFloat16;
        unsafe
        {
            nint xp = (nint)NativeTensor.Data<byte>(x), mp = (nint)NativeTensor.Data<ushort>(mask);
            nint pp = (nint)NativeTensor.Data<float>(probs), yp = (nint)NativeTensor.Data<byte>(y);
            int parts = KernelThreads.Parts(rows, L);
            KernelThreads.Run(parts, part =>
            {
                var (r0, r1) = KernelThreads.Range(rows, parts, part);
                for (long r = r0; r < r1; r++)
                    if (bf16) ForwardRow<Bf16Elements>((byte*)xp, (ushort*)mp, (float*)pp, (byte*)yp, r * L, L, scale);
                    else ForwardRow<Fp32Elements>((byte*)xp, (ushort*)mp, (float*)pp, (byte*)yp, r * L, L, scale);
            });
        }
        ctx.save_for_backward(new List<Tensor> { probs, mask });
        ctx.save_data("scale", scale);
        ctx.save_data("dtype", (int)x.dtype);
        return y;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (probs, mask) = (saved[0], saved[1]);
        float scale = (float)ctx.get_data("scale");
        var dtype = (ScalarType)(int)ctx.get_data("dtype");
        var dy = gradOutput.to(dtype).contiguous();
        bool bf16 = dtype == ScalarType.BFloat16;
        int L = checked((int)probs.shape[^1]);
        long rows = probs.numel() / L;
        var dx = empty_like(dy);
        unsafe
        {
            nint pp = (nint)NativeTensor.Data<float>(probs), mp = (nint)NativeTensor.Data<ushort>(mask);
            nint gp = (nint)NativeTensor.Data<byte>(dy), dp = (nint)NativeTensor.Data<byte>(dx);
            int parts = KernelThreads.Parts(rows, L);
            KernelThreads.Run(parts, part =>
            {
                var (r0, r1) = KernelThreads.Range(rows, parts, part);
                for (long r = r0; r < r1; r++)
                    if (bf16) BackwardRow<Bf16Elements>((float*)pp, (ushort*)mp, (byte*)gp, (byte*)dp, r * L, L, scale);
                    else BackwardRow<Fp32Elements>((float*)pp, (ushort*)mp, (byte*)gp, (byte*)dp, r * L, L, scale);
            });
            GC.KeepAlive(dy);   // read through raw pointers above: alive until the kernel is done
        }
        return new List<Tensor> { dx, null! };
    }

    /// <summary>One row: p = softmax(x) in fp32 into <paramref name="probs"/>, y = p·scale where the mask keeps, else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    internal static unsafe void ForwardRow<T>(byte* x, ushort* mask, float* probs, byte* y, long start, int L, float scale) where T : struct, IElements
    {
        int vectorEnd = L / Lanes * Lanes;
        float* pr = probs + start;
        ushort* mr = mask + start;
        var maxV = Vector512.Create(float.NegativeInfinity);
        float max = float.NegativeInfinity;
        int c = 0;
        for (; c < vectorEnd; c += Lanes) maxV = Vector512.Max(maxV, T.Load(x, start + c));
        for (; c < L; c++) max = MathF.Max(max, T.LoadOne(x, start + c));
        var max128 = Vector128.Max(Vector256.Max(maxV.GetLower(), maxV.GetUpper()).GetLower(), Vector256.Max(maxV.GetLower(), maxV.GetUpper()).GetUpper());
        for (int i = 0; i < 4; i++) max = MathF.Max(max, max128.GetElement(i));
        var m = Vector512.Create(max);
        var sumV = Vector512<float>.Zero;
        float sum = 0;
        for (c = 0; c < vectorEnd; c += Lanes)
        {
            var e = ColumnSoftmax.Exp(T.Load(x, start + c) - m);
            e.Store(pr + c);
            sumV += e;
        }
        for (; c < L; c++) { float e = ColumnSoftmax.Exp(Vector512.Create(T.LoadOne(x, start + c) - max)).ToScalar(); pr[c] = e; sum += e; }
        var inv = Vector512.Create(1f / (Vector512.Sum(sumV) + sum));
        var scaleV = Vector512.Create(scale);
        for (c = 0; c < vectorEnd; c += Lanes)
        {
            var prob = Vector512.Load(pr + c) * inv;
            prob.Store(pr + c);
            T.Store(y, start + c, prob * FastDropout.KeepScale(mr + c, scaleV));
        }
        for (; c < L; c++)
        {
            float prob = pr[c] * inv.ToScalar();
            pr[c] = prob;
            T.StoreOne(y, start + c, prob * (mr[c] != 0 ? scale : 0f));
        }
    }

    /// <summary>One row of the backward: dP = dY·scale where the mask keeps, else 0; dx = p·(dP − Σ p·dP).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    internal static unsafe void BackwardRow<T>(float* probs, ushort* mask, byte* dy, byte* dx, long start, int L, float scale) where T : struct, IElements
    {
        int vectorEnd = L / Lanes * Lanes;
        float* pr = probs + start;
        ushort* mr = mask + start;
        var scaleV = Vector512.Create(scale);
        var dotV = Vector512<float>.Zero;
        float dot = 0;
        int c = 0;
        for (; c < vectorEnd; c += Lanes)
        {
            var dp = T.Load(dy, start + c) * FastDropout.KeepScale(mr + c, scaleV);
            dotV = Vector512.FusedMultiplyAdd(Vector512.Load(pr + c), dp, dotV);
        }
        for (; c < L; c++) dot += pr[c] * (T.LoadOne(dy, start + c) * (mr[c] != 0 ? scale : 0f));
        dot += Vector512.Sum(dotV);
        var dotB = Vector512.Create(dot);
        for (c = 0; c < vectorEnd; c += Lanes)
        {
            var dp = T.Load(dy, start + c) * FastDropout.KeepScale(mr + c, scaleV);
            T.Store(dx, start + c, Vector512.Load(pr + c) * (dp - dotB));
        }
        for (; c < L; c++)
        {
            float dp = T.LoadOne(dy, start + c) * (mr[c] != 0 ? scale : 0f);
            T.StoreOne(dx, start + c, pr[c] * (dp - dot));
        }
    }
}
