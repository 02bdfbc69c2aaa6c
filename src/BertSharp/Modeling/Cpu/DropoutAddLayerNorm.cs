using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>
/// LayerNorm(dropout(h) + residual) for training on the CPU, in one pass forward and one backward: what
/// <see cref="FastDropout"/>.Apply, the residual add and LayerNorm (in fp32: <see cref="Bf16LayerNorm"/> for bf16,
/// libtorch's for fp32) compute in BertResidualOutput, with the same mask for the same seed.
/// </summary>
/// <remarks>
/// Unfused, each of those is a memory pass over the [tokens, hidden] activations forward (the mask, the scale, the
/// mask product, the add, the LayerNorm) and again backward; they run after every attention output and every FFN.
/// Here each row is read once: s = h·mask/(1 − p) + residual is formed in fp32, rounded to the activations' dtype and
/// kept for the backward (it is the LayerNorm's input), then normalised; the backward reads s, the mask and the
/// output gradient once and writes the gradients of the residual (the LayerNorm's dx) and of h (that times the mask
/// and scale), with the weight and bias gradients summed in fp32.
/// </remarks>
internal sealed class DropoutAddLayerNorm : autograd.SingleTensorFunction<DropoutAddLayerNorm>
{
    public override string Name => nameof(DropoutAddLayerNorm);

    private const int Lanes = 16;
    private const int Block = 64;   // rows whose sums are formed and then normalised together (kept in cache); the
                                    // backward's parts start at multiples of it, as Bf16LayerNorm's weight-gradient blocks

    /// <summary>Whether <see cref="Apply"/> takes these (contiguous float32 or bfloat16 CPU activations of one dtype,
    /// float32 weight and bias over the last dimension, a dropout probability in (0, 1)).</summary>
    /// <param name="forFloat32">whether fp32 activations take it too (<see cref="FusedKernelOptions.DropoutAddLayerNormFloat32"/>)</param>
    internal static bool Supports(Tensor h, Tensor residual, TorchSharp.Modules.LayerNorm norm, double p, bool forFloat32) =>
        h.device_type == DeviceType.CPU && residual.device_type == DeviceType.CPU
        && (h.dtype == ScalarType.BFloat16 || h.dtype == ScalarType.Float32 && forFloat32) && residual.dtype == h.dtype
        && h.shape.SequenceEqual(residual.shape) && h.dim() >= 1
        && norm.weight is { } w && norm.bias is { } b && w.dtype == ScalarType.Float32 && b.dtype == ScalarType.Float32
        && w.dim() == 1 && w.shape[0] == h.shape[^1] && b.shape.SequenceEqual(w.shape)
        && p > 0 && Math.Round(p * 65536) < 65536;

    public static Tensor Apply(Tensor h, Tensor residual, Tensor weight, Tensor bias, double p, double eps) =>
        apply(h, residual, weight, bias, p, eps);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var h = ((Tensor)vars[0]).detach().contiguous();
        var residual = ((Tensor)vars[1]).detach().contiguous();
        var weight = ((Tensor)vars[2]).detach().contiguous();
        var bias = ((Tensor)vars[3]).detach().contiguous();
        double p = (double)vars[4];
        float eps = (float)(double)vars[5];
        int H = checked((int)h.shape[^1]);
        long rows = h.numel() / H;
        float scale = (float)(1.0 / (1.0 - p));
        var mask = empty(h.shape, dtype: ScalarType.Int16);
        FastDropout.Fill(mask.bytes, sizeof(ushort), FastDropout.NextSeed(), (ushort)Math.Round(p * 65536), 0xFFFF);
        var sum = empty_like(h);
        var y = empty_like(h);
        var mean = empty(rows, dtype: ScalarType.Float32);
        var rstd = empty(rows, dtype: ScalarType.Float32);
        bool bf16 = h.dtype == ScalarType.BFloat16;
        unsafe
        {
            nint hp = (nint)NativeTensor.Data<byte>(h), rp = (nint)NativeTensor.Data<byte>(residual), mp = (nint)NativeTensor.Data<ushort>(mask);
            nint sp = (nint)NativeTensor.Data<byte>(sum), yp = (nint)NativeTensor.Data<byte>(y);
            nint wp = (nint)NativeTensor.Data<float>(weight), bp = (nint)NativeTensor.Data<float>(bias);
            nint meanp = (nint)NativeTensor.Data<float>(mean), rstdp = (nint)NativeTensor.Data<float>(rstd);
            int parts = KernelThreads.Parts(rows, H);
            KernelThreads.Run(parts, part =>
            {
                var (r0, r1) = KernelThreads.Range(rows, parts, part);
                for (long b0 = r0; b0 < r1; b0 += Block)
                {
                    long b1 = Math.Min(r1, b0 + Block);
                    if (bf16) ForwardRows<Bf16Elements>((byte*)hp, (byte*)rp, (ushort*)mp, scale, (byte*)sp, (float*)wp, (float*)bp, eps, b0, b1, H, (byte*)yp, (float*)meanp, (float*)rstdp);
                    else ForwardRows<Fp32Elements>((byte*)hp, (byte*)rp, (ushort*)mp, scale, (byte*)sp, (float*)wp, (float*)bp, eps, b0, b1, H, (byte*)yp, (float*)meanp, (float*)rstdp);
                }
            });
            GC.KeepAlive(h); GC.KeepAlive(residual);   // read through raw pointers above: alive until the kernel is done
        }
        ctx.save_for_backward(new List<Tensor> { sum, mask, weight, mean, rstd });
        ctx.save_data("scale", scale);
        return y;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (sum, mask, weight, mean, rstd) = (saved[0], saved[1], saved[2], saved[3], saved[4]);
        float scale = (float)ctx.get_data("scale");
        var dy = gradOutput.to(sum.dtype).contiguous();
        int H = checked((int)sum.shape[^1]);
        long rows = sum.numel() / H;
        bool bf16 = sum.dtype == ScalarType.BFloat16;
        var dResidual = empty_like(sum);
        var dH = empty_like(sum);
        int parts = KernelThreads.Parts(rows, H);
        using var dWeight = zeros(parts, H, dtype: ScalarType.Float32);
        using var dBias = zeros(parts, H, dtype: ScalarType.Float32);
        unsafe
        {
            nint sp = (nint)NativeTensor.Data<byte>(sum), mp = (nint)NativeTensor.Data<ushort>(mask), dyp = (nint)NativeTensor.Data<byte>(dy);
            nint wp = (nint)NativeTensor.Data<float>(weight), meanp = (nint)NativeTensor.Data<float>(mean), rstdp = (nint)NativeTensor.Data<float>(rstd);
            nint drp = (nint)NativeTensor.Data<byte>(dResidual), dhp = (nint)NativeTensor.Data<byte>(dH);
            nint dwp = (nint)NativeTensor.Data<float>(dWeight), dbp = (nint)NativeTensor.Data<float>(dBias);
            KernelThreads.Run(parts, part =>
            {
                // The LayerNorm's backward: dx is the residual's gradient; it also writes h's (dx through the mask).
                var (r0, r1) = KernelThreads.Range(rows, parts, part, Block);
                if (bf16) Bf16LayerNorm.Backward<Bf16Elements>((byte*)sp, (byte*)dyp, (float*)wp, (float*)meanp, (float*)rstdp, r0, r1, H,
                    (byte*)drp, (float*)dwp + part * H, (float*)dbp + part * H, (ushort*)mp, scale, (byte*)dhp);
                else Bf16LayerNorm.Backward<Fp32Elements>((byte*)sp, (byte*)dyp, (float*)wp, (float*)meanp, (float*)rstdp, r0, r1, H,
                    (byte*)drp, (float*)dwp + part * H, (float*)dbp + part * H, (ushort*)mp, scale, (byte*)dhp);
            });
            GC.KeepAlive(dy);   // read through raw pointers above: alive until the kernel is done
        }
        return new List<Tensor> { dH, dResidual, dWeight.sum(0, keepdim: false), dBias.sum(0, keepdim: false), null!, null! };
    }

    /// <summary>Rows [r0, r1): sum = h·(mask ? scale : 0) + residual, rounded to T, then y = LayerNorm(sum).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    private static unsafe void ForwardRows<T>(byte* h, byte* residual, ushort* mask, float scale, byte* sum, float* w, float* b, float eps,
        long r0, long r1, int H, byte* y, float* mean, float* rstd) where T : struct, IElements
    {
        var scaleV = Vector512.Create(scale);
        long e = r0 * H, e1 = r1 * H;
        for (; e + Lanes <= e1; e += Lanes)
            T.Store(sum, e, Vector512.FusedMultiplyAdd(T.Load(h, e), FastDropout.KeepScale(mask + e, scaleV), T.Load(residual, e)));
        for (; e < e1; e++) T.StoreOne(sum, e, T.LoadOne(h, e) * (mask[e] != 0 ? scale : 0f) + T.LoadOne(residual, e));
        Bf16LayerNorm.Forward<T>(sum, w, b, eps, r0, r1, H, y, mean, rstd);
    }
}
