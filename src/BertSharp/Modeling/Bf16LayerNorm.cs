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
/// libtorch's own bf16 LayerNorm (bf16 weights) would save the casts too, but its weight gradient was 20 % off the
/// fp64 one on [32768, 128] (docs/PERFORMANCE.md); this one is within fp32 rounding of it.
/// </remarks>
public sealed class Bf16LayerNorm : autograd.SingleTensorFunction<Bf16LayerNorm>
{
    public override string Name => nameof(Bf16LayerNorm);

    private const int Lanes = 16;
    private const int SumBlock = 64;   // rows whose weight and bias gradients are summed before adding to the total

    /// <summary>Whether <see cref="Apply"/> can take this input (else the caller casts around libtorch's LayerNorm).</summary>
    internal static bool Supports(Tensor x, TorchSharp.Modules.LayerNorm m) =>
        Enabled && x.dtype == ScalarType.BFloat16 && x.device_type == DeviceType.CPU && m.weight is not null && m.bias is not null
        && m.weight.dtype == ScalarType.Float32 && m.bias.dtype == ScalarType.Float32 && m.weight.dim() == 1
        && x.shape[^1] == m.weight.shape[0];

    /// <summary>false: the cast path everywhere (bench/StepProfile's before/after).</summary>
    public static bool Enabled { get; set; } = true;

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
                Forward((ushort*)xp + r0 * h, (float*)wp, (float*)bp, eps, r1 - r0, h, (ushort*)yp + r0 * h, (float*)mp + r0, (float*)rp + r0);
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
                Backward((ushort*)xp + r0 * h, (ushort*)dyp + r0 * h, (float*)wp, (float*)mp + r0, (float*)rp + r0, r1 - r0, h,
                    (ushort*)dxp + r0 * h, (float*)dwp + p * h, (float*)dbp + p * h);
            });
        }
        return new List<Tensor> { dx, dWeight.sum(0, keepdim: false), dBias.sum(0, keepdim: false), null! };
    }

    internal static unsafe void Forward(ushort* x, float* w, float* b, float eps, long rows, int h, ushort* y, float* mean, float* rstd)
    {
        int vectorEnd = h / Lanes * Lanes;
        for (long r = 0; r < rows; r++)
        {
            ushort* xr = x + r * h, yr = y + r * h;
            var acc = Vector512<float>.Zero;
            float tail = 0;
            int c = 0;
            for (; c < vectorEnd; c += Lanes) acc += Bf16.Load(xr + c);
            for (; c < h; c++) tail += Bf16.ToFloat(xr[c]);
            float mu = (Vector512.Sum(acc) + tail) / h;
            var muV = Vector512.Create(mu);
            acc = Vector512<float>.Zero;
            tail = 0;
            for (c = 0; c < vectorEnd; c += Lanes) { var d = Bf16.Load(xr + c) - muV; acc = Vector512.FusedMultiplyAdd(d, d, acc); }
            for (; c < h; c++) { float d = Bf16.ToFloat(xr[c]) - mu; tail += d * d; }
            float rs = 1f / MathF.Sqrt((Vector512.Sum(acc) + tail) / h + eps);
            var rsV = Vector512.Create(rs);
            for (c = 0; c < vectorEnd; c += Lanes)
                Bf16.Store(yr + c, Vector512.FusedMultiplyAdd((Bf16.Load(xr + c) - muV) * rsV, Vector512.Load(w + c), Vector512.Load(b + c)));
            for (; c < h; c++) yr[c] = Bf16.FromFloat((Bf16.ToFloat(xr[c]) - mu) * rs * w[c] + b[c]);
            mean[r] = mu;
            rstd[r] = rs;
        }
    }

    /// <summary>dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·w and x̂ = (x − μ)·rstd; dw = Σ dy·x̂, db = Σ dy.</summary>
    internal static unsafe void Backward(ushort* x, ushort* dy, float* w, float* mean, float* rstd, long rows, int h,
        ushort* dx, float* dw, float* db)
    {
        int vectorEnd = h / Lanes * Lanes;
        var blockDw = new float[h];
        var blockDb = new float[h];
        fixed (float* bw = blockDw, bb = blockDb)
        {
            for (long r0 = 0; r0 < rows; r0 += SumBlock)
            {
                Array.Clear(blockDw);
                Array.Clear(blockDb);
                for (long r = r0; r < Math.Min(rows, r0 + SumBlock); r++)
                {
                    ushort* xr = x + r * h, dyr = dy + r * h, dxr = dx + r * h;
                    float mu = mean[r], rs = rstd[r];
                    var muV = Vector512.Create(mu);
                    var rsV = Vector512.Create(rs);
                    var sumG = Vector512<float>.Zero;
                    var sumGx = Vector512<float>.Zero;
                    float tailG = 0, tailGx = 0;
                    int c = 0;
                    for (; c < vectorEnd; c += Lanes)
                    {
                        var xhat = (Bf16.Load(xr + c) - muV) * rsV;
                        var d = Bf16.Load(dyr + c);
                        var g = d * Vector512.Load(w + c);
                        sumG += g;
                        sumGx = Vector512.FusedMultiplyAdd(g, xhat, sumGx);
                        Vector512.FusedMultiplyAdd(d, xhat, Vector512.Load(bw + c)).Store(bw + c);
                        (Vector512.Load(bb + c) + d).Store(bb + c);
                    }
                    for (; c < h; c++)
                    {
                        float xhat = (Bf16.ToFloat(xr[c]) - mu) * rs, d = Bf16.ToFloat(dyr[c]), g = d * w[c];
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
                        var xhat = (Bf16.Load(xr + c) - muV) * rsV;
                        var g = Bf16.Load(dyr + c) * Vector512.Load(w + c);
                        Bf16.Store(dxr + c, (g - meanGV - xhat * meanGxV) * rsV);
                    }
                    for (; c < h; c++)
                    {
                        float xhat = (Bf16.ToFloat(xr[c]) - mu) * rs, g = Bf16.ToFloat(dyr[c]) * w[c];
                        dxr[c] = Bf16.FromFloat((g - meanG - xhat * meanGx) * rs);
                    }
                }
                for (int c = 0; c < h; c++) { dw[c] += bw[c]; db[c] += bb[c]; }
            }
        }
    }
}
