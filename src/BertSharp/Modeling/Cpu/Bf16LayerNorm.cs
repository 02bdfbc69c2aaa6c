using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>
/// LayerNorm over the last dimension of a bfloat16 tensor with float32 weight and bias, computed in float32 in one
/// pass forward and one backward: what casting to float32, libtorch's LayerNorm and casting back compute, without
/// the four casting passes.
/// </summary>
/// <remarks>
/// Each row is read once as bf16, normalised in fp32 registers (mean, then the variance about it) and written back
/// rounded to nearest even; the row's mean and 1/σ are kept for the backward, which returns dx in bf16 (as the
/// cast's backward would) and the weight and bias gradients in fp32, summed over the rows in fp32 by blocks of rows.
/// libtorch's own bf16 LayerNorm (bf16 weights) would save the casts too, but its weight gradient is far off the fp64
/// one (docs/PERFORMANCE.md); this one is within fp32 rounding of it.
/// </remarks>
internal sealed class Bf16LayerNorm : autograd.SingleTensorFunction<Bf16LayerNorm>
{
    public override string Name => nameof(Bf16LayerNorm);

    private const int Lanes = 16;
    private const int SumBlock = 64;   // rows whose weight and bias gradients are summed before adding to the total

    /// <summary>Whether <see cref="Apply"/> can take this input (else the caller casts around libtorch's LayerNorm).</summary>
    internal static bool Supports(Tensor x, TorchSharp.Modules.LayerNorm m) =>
        x.dtype == ScalarType.BFloat16 && x.device_type == DeviceType.CPU && m.weight is not null && m.bias is not null
        && m.weight.dtype == ScalarType.Float32 && m.bias.dtype == ScalarType.Float32 && m.weight.dim() == 1
        && x.shape[^1] == m.weight.shape[0];


    internal static Tensor Apply(Tensor x, Tensor weight, Tensor bias, double eps) => apply(x, weight, bias, eps);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = ((Tensor)vars[0]).contiguous();
        var weight = ((Tensor)vars[1]).detach().contiguous();
        var bias = ((Tensor)vars[2]).detach().contiguous();
        float eps = (float)(double)vars[3];
        int h = checked((int)x.shape[^1]);
        long rows = x.numel() / h;
        var y = empty_like(x);
        var mean = empty(rows, dtype: ScalarType.Float32);
        var rstd = empty(rows, dtype: ScalarType.Float32);
        unsafe
        {
            nint xp = (nint)NativeTensor.Data<ushort>(x), wp = (nint)NativeTensor.Data<float>(weight), bp = (nint)NativeTensor.Data<float>(bias);
            nint yp = (nint)NativeTensor.Data<ushort>(y), mp = (nint)NativeTensor.Data<float>(mean), rp = (nint)NativeTensor.Data<float>(rstd);
            int parts = KernelThreads.Parts(rows, h);
            KernelThreads.Run(parts, p =>
            {
                var (r0, r1) = KernelThreads.Range(rows, parts, p);
                Forward<Bf16Elements>((byte*)xp, (float*)wp, (float*)bp, eps, r0, r1, h, (byte*)yp, (float*)mp, (float*)rp);
            });
        }
        ctx.save_for_backward(new List<Tensor> { x, weight, mean, rstd });
        return y;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (x, weight, mean, rstd) = (saved[0], saved[1], saved[2], saved[3]);
        var dy = gradOutput.to(ScalarType.BFloat16).contiguous();
        int h = checked((int)x.shape[^1]);
        long rows = x.numel() / h;
        var dx = empty_like(x);
        // Each part of the rows sums its own weight and bias gradients; the parts' sums are added in order.
        int parts = KernelThreads.Parts(rows, h);
        using var dWeight = zeros(parts, h, dtype: ScalarType.Float32);
        using var dBias = zeros(parts, h, dtype: ScalarType.Float32);
        unsafe
        {
            nint xp = (nint)NativeTensor.Data<ushort>(x), dyp = (nint)NativeTensor.Data<ushort>(dy), wp = (nint)NativeTensor.Data<float>(weight);
            nint mp = (nint)NativeTensor.Data<float>(mean), rp = (nint)NativeTensor.Data<float>(rstd), dxp = (nint)NativeTensor.Data<ushort>(dx);
            nint dwp = (nint)NativeTensor.Data<float>(dWeight), dbp = (nint)NativeTensor.Data<float>(dBias);
            KernelThreads.Run(parts, p =>
            {
                var (r0, r1) = KernelThreads.Range(rows, parts, p, SumBlock);
                Backward<Bf16Elements>((byte*)xp, (byte*)dyp, (float*)wp, (float*)mp, (float*)rp, r0, r1, h, (byte*)dxp, (float*)dwp + p * h, (float*)dbp + p * h);
            });
            GC.KeepAlive(dy);   // read through raw pointers above: alive until the kernel is done
        }
        return new List<Tensor> { dx, dWeight.sum(0, keepdim: false), dBias.sum(0, keepdim: false), null! };
    }

    /// <summary>Rows [r0, r1) of y = LayerNorm(x)·w + b, x and y of element type T (bf16 or fp32), arithmetic in
    /// fp32; each row's mean and 1/σ into mean[r] and rstd[r]. (Also the LayerNorm of <see cref="DropoutAddLayerNorm"/>.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    internal static unsafe void Forward<T>(byte* x, float* w, float* b, float eps, long r0, long r1, int h, byte* y, float* mean, float* rstd) where T : struct, IElements
    {
        int vectorEnd = h / Lanes * Lanes;
        for (long r = r0; r < r1; r++)
        {
            long o = r * h;
            var acc = Vector512<float>.Zero;
            float tail = 0;
            int c = 0;
            for (; c < vectorEnd; c += Lanes) acc += T.Load(x, o + c);
            for (; c < h; c++) tail += T.LoadOne(x, o + c);
            float mu = (Vector512.Sum(acc) + tail) / h;
            var muV = Vector512.Create(mu);
            acc = Vector512<float>.Zero;
            tail = 0;
            for (c = 0; c < vectorEnd; c += Lanes) { var d = T.Load(x, o + c) - muV; acc = Vector512.FusedMultiplyAdd(d, d, acc); }
            for (; c < h; c++) { float d = T.LoadOne(x, o + c) - mu; tail += d * d; }
            float rs = 1f / MathF.Sqrt((Vector512.Sum(acc) + tail) / h + eps);
            var rsV = Vector512.Create(rs);
            for (c = 0; c < vectorEnd; c += Lanes)
                T.Store(y, o + c, Vector512.FusedMultiplyAdd((T.Load(x, o + c) - muV) * rsV, Vector512.Load(w + c), Vector512.Load(b + c)));
            for (; c < h; c++) T.StoreOne(y, o + c, (T.LoadOne(x, o + c) - mu) * rs * w[c] + b[c]);
            mean[r] = mu;
            rstd[r] = rs;
        }
    }

    /// <summary>Rows [r0, r1): dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·w and x̂ = (x − μ)·rstd; dw += Σ dy·x̂,
    /// db += Σ dy (summed by blocks of rows first). x, dy and dx of element type T.</summary>
    /// <remarks>With a <paramref name="dropoutMask"/> (<see cref="DropoutAddLayerNorm"/>), also dh = dx·(mask ? scale : 0)
    /// from the same registers.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    internal static unsafe void Backward<T>(byte* x, byte* dy, float* w, float* mean, float* rstd, long r0, long r1, int h,
        byte* dx, float* dw, float* db, ushort* dropoutMask = null, float dropoutScale = 0, byte* dh = null) where T : struct, IElements
    {
        var scaleV = Vector512.Create(dropoutScale);
        int vectorEnd = h / Lanes * Lanes;
        var blockDw = new float[h];
        var blockDb = new float[h];
        fixed (float* bw = blockDw, bb = blockDb)
        {
            for (long s0 = r0; s0 < r1; s0 += SumBlock)
            {
                Array.Clear(blockDw);
                Array.Clear(blockDb);
                for (long r = s0; r < Math.Min(r1, s0 + SumBlock); r++)
                {
                    long o = r * h;
                    float mu = mean[r], rs = rstd[r];
                    var muV = Vector512.Create(mu);
                    var rsV = Vector512.Create(rs);
                    var sumG = Vector512<float>.Zero;
                    var sumGx = Vector512<float>.Zero;
                    float tailG = 0, tailGx = 0;
                    int c = 0;
                    for (; c < vectorEnd; c += Lanes)
                    {
                        var xhat = (T.Load(x, o + c) - muV) * rsV;
                        var d = T.Load(dy, o + c);
                        var g = d * Vector512.Load(w + c);
                        sumG += g;
                        sumGx = Vector512.FusedMultiplyAdd(g, xhat, sumGx);
                        Vector512.FusedMultiplyAdd(d, xhat, Vector512.Load(bw + c)).Store(bw + c);
                        (Vector512.Load(bb + c) + d).Store(bb + c);
                    }
                    for (; c < h; c++)
                    {
                        float xhat = (T.LoadOne(x, o + c) - mu) * rs, d = T.LoadOne(dy, o + c), g = d * w[c];
                        tailG += g;
                        tailGx += g * xhat;
                        bw[c] += d * xhat;
                        bb[c] += d;
                    }
                    float meanG = (Vector512.Sum(sumG) + tailG) / h, meanGx = (Vector512.Sum(sumGx) + tailGx) / h;
                    var meanGV = Vector512.Create(meanG);
                    var meanGxV = Vector512.Create(meanGx);
                    for (c = 0; c < vectorEnd; c += Lanes)
                    {
                        var xhat = (T.Load(x, o + c) - muV) * rsV;
                        var g = T.Load(dy, o + c) * Vector512.Load(w + c);
                        var d = (g - meanGV - xhat * meanGxV) * rsV;
                        T.Store(dx, o + c, d);
                        if (dropoutMask != null) T.Store(dh, o + c, d * FastDropout.KeepScale(dropoutMask + o + c, scaleV));
                    }
                    for (; c < h; c++)
                    {
                        float xhat = (T.LoadOne(x, o + c) - mu) * rs, g = T.LoadOne(dy, o + c) * w[c];
                        float d = (g - meanG - xhat * meanGx) * rs;
                        T.StoreOne(dx, o + c, d);
                        if (dropoutMask != null) T.StoreOne(dh, o + c, d * (dropoutMask[o + c] != 0 ? dropoutScale : 0f));
                    }
                }
                for (int c = 0; c < h; c++) { dw[c] += bw[c]; db[c] += bb[c]; }
            }
        }
    }
}
