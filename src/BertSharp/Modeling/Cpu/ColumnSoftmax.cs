using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>
/// The softmax statistics of the fused MLM loss in two memory passes: for logits z [V, n] (one column per masked
/// row, as <see cref="FusedLinearCrossEntropy"/> forms them) and a bias b [V], per column c the maximum
/// m = max_v (z[v,c] + b[v]) and the sum s = Σ_v exp(z[v,c] + b[v] − m), with z overwritten by the exponentials.
/// </summary>
/// <remarks>
/// libtorch needs a pass per op for this (bias, amax, sub, exp, sum, and with bf16 products a cast to fp32 and one
/// back), each over a chunk that only fits in the last-level cache: a large share of the bf16 step
/// (docs/PERFORMANCE.md). Here one pass reads for the maximum and one reads, exponentiates
/// in fp32, accumulates and writes back in z's dtype (bf16 rounded to nearest even, as a cast would). The
/// exponential is the classic range reduction exp(x) = 2^k·exp(r), |r| ≤ ln2/2, with a degree-7 polynomial for
/// exp(r) (Cephes' expf coefficients): within 2 ulp of exp; .NET's own Vector512.Exp is an order of magnitude slower.
/// Written with Vector512, which .NET lowers to two 256-bit (or four 128-bit) operations where AVX-512 is missing.
/// </remarks>
internal static class ColumnSoftmax
{
    /// <summary>Columns handled per vector.</summary>
    private const int Lanes = 16;

    /// <summary>Rows summed into a partial sum before it is added to the column's total (keeps the fp32 sum over
    /// 20,000+ rows within a few ulp of an exact one).</summary>
    private const int SumBlock = 64;

    /// <param name="z">[V, n] contiguous, float32 or bfloat16, on the CPU; overwritten with the exponentials</param>
    /// <param name="bias">[V] float32 contiguous</param>
    /// <param name="max">n floats: per column max_v (z + b)</param>
    /// <param name="sum">n floats: per column Σ_v exp(z + b − max)</param>
    /// <remarks>The rows are split over <see cref="KernelThreads"/>: each part finds its own maxima, then, with the
    /// overall ones, writes its exponentials and sums them; the parts' sums are added in order.</remarks>
    public static unsafe void ExpInPlace(Tensor z, Tensor bias, float[] max, float[] sum)
    {
        if (z.dim() != 2 || !z.is_contiguous() || z.device_type != DeviceType.CPU)
            throw new ArgumentException("z must be a contiguous [V, n] CPU tensor");
        bool bf16 = z.dtype == ScalarType.BFloat16;
        if (!bf16 && z.dtype != ScalarType.Float32) throw new ArgumentException($"z must be float32 or bfloat16, got {z.dtype}");
        long V = z.shape[0];
        int n = checked((int)z.shape[1]);
        if (bias.dtype != ScalarType.Float32 || !bias.is_contiguous() || bias.numel() != V)
            throw new ArgumentException("bias must be a contiguous float32 [V]");
        if (max.Length != n || sum.Length != n) throw new ArgumentException("max and sum need one entry per column");

        nint zp = (nint)NativeTensor.Data<byte>(z), bp = (nint)NativeTensor.Data<float>(bias);
        int parts = KernelThreads.Parts(V, n);
        var partMax = new float[parts][];
        var partSum = new float[parts][];
        KernelThreads.Run(parts, p =>
        {
            var (v0, v1) = KernelThreads.Range(V, parts, p, SumBlock);
            partMax[p] = new float[n];
            if (bf16) ColumnMax<Bf16Elements>((byte*)zp, (float*)bp, n, v0, v1, partMax[p]);
            else ColumnMax<Fp32Elements>((byte*)zp, (float*)bp, n, v0, v1, partMax[p]);
        });
        Array.Copy(partMax[0], max, n);
        for (int p = 1; p < parts; p++)
            for (int c = 0; c < n; c++) max[c] = MathF.Max(max[c], partMax[p][c]);
        KernelThreads.Run(parts, p =>
        {
            var (v0, v1) = KernelThreads.Range(V, parts, p, SumBlock);
            partSum[p] = new float[n];
            if (bf16) ExpAndSum<Bf16Elements>((byte*)zp, (float*)bp, n, v0, v1, max, partSum[p]);
            else ExpAndSum<Fp32Elements>((byte*)zp, (float*)bp, n, v0, v1, max, partSum[p]);
        });
        GC.KeepAlive(z); GC.KeepAlive(bias);   // read through raw pointers above: alive until the kernel is done
        Array.Copy(partSum[0], sum, n);
        for (int p = 1; p < parts; p++)
            for (int c = 0; c < n; c++) sum[c] += partSum[p][c];
    }

    /// <summary>max[c] = max over rows [v0, v1) of z[v, c] + b[v].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    private static unsafe void ColumnMax<T>(byte* zp, float* bp, int n, long v0, long v1, float[] max) where T : struct, IElements
    {
        int vectorEnd = n / Lanes * Lanes;   // the columns after it are done one at a time
        fixed (float* m = max)
        {
            for (int c = 0; c < n; c++) m[c] = float.NegativeInfinity;
            for (long v = v0; v < v1; v++)
            {
                var bv = Vector512.Create(bp[v]);
                long row = v * n;
                int c = 0;
                for (; c < vectorEnd; c += Lanes)
                    Vector512.Max(Vector512.Load(m + c), T.Load(zp, row + c) + bv).Store(m + c);
                for (; c < n; c++) m[c] = MathF.Max(m[c], T.LoadOne(zp, row + c) + bp[v]);
            }
        }
    }

    /// <summary>z[v, c] ← exp(z[v, c] + b[v] − max[c]) for rows [v0, v1); sum[c] = their sum (by blocks of rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    private static unsafe void ExpAndSum<T>(byte* zp, float* bp, int n, long v0, long v1, float[] max, float[] sum) where T : struct, IElements
    {
        int vectorEnd = n / Lanes * Lanes;
        var partial = new float[n];
        fixed (float* m = max, s = sum, part = partial)
        {
            for (long b0 = v0; b0 < v1; b0 += SumBlock)
            {
                Array.Clear(partial);
                for (long v = b0; v < Math.Min(v1, b0 + SumBlock); v++)
                {
                    var bv = Vector512.Create(bp[v]);
                    long row = v * n;
                    int c = 0;
                    for (; c < vectorEnd; c += Lanes)
                    {
                        var e = Exp(T.Load(zp, row + c) + bv - Vector512.Load(m + c));
                        T.Store(zp, row + c, e);
                        (Vector512.Load(part + c) + e).Store(part + c);
                    }
                    for (; c < n; c++)
                    {
                        float e = Exp(Vector512.Create(T.LoadOne(zp, row + c) + bp[v] - m[c])).ToScalar();
                        T.StoreOne(zp, row + c, e);
                        part[c] += e;
                    }
                }
                for (int c = 0; c < n; c++) s[c] += part[c];
            }
        }
    }


    /// <summary>exp(x) for x ≤ 0 (as here: logits minus their maximum): 0 where the result would be below the smallest
    /// normal float (x &lt; −87.34), NaN for NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp(Vector512<float> x)
    {
        var underflow = Vector512.LessThan(x, Vector512.Create(-87.33654f));
        // x = k·ln2 + r with k = round(x·log2(e)): adding 1.5·2^23 rounds to an integer and leaves k in the low bits
        // of t (valid for |k| < 2^22; beyond, only where the result is selected away as an underflow).
        var shifter = Vector512.Create(12582912f);
        var t = Vector512.FusedMultiplyAdd(x, Vector512.Create(1.44269504088896341f), shifter);
        var k = t - shifter;
        var r = Vector512.FusedMultiplyAdd(k, Vector512.Create(-0.693359375f), x);   // ln2 in two parts: k·hi is exact
        r = Vector512.FusedMultiplyAdd(k, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        p = Vector512.FusedMultiplyAdd(p, r * r, r + Vector512<float>.One);
        var twoToK = Vector512.ShiftLeft(t.AsInt32() + Vector512.Create(127), 23).AsSingle();
        return Vector512.ConditionalSelect(underflow, Vector512<float>.Zero, p * twoToK);
    }
}
