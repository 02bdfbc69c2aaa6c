using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BertSharp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>
/// Inverted dropout (zero each element with probability p, scale the rest by 1/(1−p); identity in evaluation), as
/// nn.Dropout, but with the mask drawn here instead of by libtorch on the CPU.
/// </summary>
/// <remarks>
/// libtorch's CPU dropout draws one Mersenne-Twister double per element on one thread, a large share of a training
/// step (docs/PERFORMANCE.md). Here each mask comes from a counter-based generator (SplitMix64's output function over seed + counter·γ, the generator of
/// Java's SplittableRandom), vectorised: every 64-bit word gives four 16-bit lanes, each compared with
/// round(p·65536). The seed of each mask is one draw from torch's default generator, so torch.manual_seed and the
/// RNG state a checkpoint saves govern the masks as before. Other devices and dtypes keep libtorch's dropout (on a
/// GPU it is a fused kernel).
/// </remarks>
internal static class FastDropout
{
    private const ulong Gamma = 0x9E3779B97F4A7C15UL;

    /// <summary>Whether <see cref="Apply"/> draws the masks itself on this device (for float32, bfloat16 and
    /// float16 tensors); elsewhere it is libtorch's dropout.</summary>
    public static bool DrawsMasksOn(DeviceType device) => device == DeviceType.CPU;

    public static Tensor Apply(Tensor x, double p, bool training)
    {
        if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), $"dropout probability must be in [0, 1], got {p}");
        if (!training || p == 0) return x.alias();
        int threshold = (int)Math.Round(p * 65536);
        var dt = x.dtype;
        bool supported = DrawsMasksOn(x.device_type) && threshold < 65536
            && (dt == ScalarType.Float32 || dt == ScalarType.BFloat16 || dt == ScalarType.Float16);
        if (!supported) return nn.functional.dropout(x, p, true);

        double scale = 1.0 / (1.0 - p);
        using var mask = empty(x.shape, dtype: dt, device: x.device);
        ulong seed = NextSeed();
        if (dt == ScalarType.Float32)
        {
            // The scale is folded into the mask: one pass forward, one backward, as libtorch's own dropout.
            Fill(mask.bytes, sizeof(float), seed, (ushort)threshold, BitConverter.SingleToUInt32Bits((float)scale));
            return x.mul(mask);
        }
        // 16-bit floats: the scale in fp32 arithmetic (out of place: in-place mul_ would round the scalar to bf16
        // first), then a 0/1 mask.
        ushort one = dt == ScalarType.BFloat16 ? (ushort)0x3F80 : (ushort)0x3C00;
        Fill(mask.bytes, sizeof(ushort), seed, (ushort)threshold, one);
        var y = x.With(scale, (t, s) => t.mul(s));
        return y.mul_(mask);
    }

    [ThreadStatic] private static ulong? shardSeed;
    [ThreadStatic] private static long shardDraws;

    /// <summary>While set (on a <see cref="DataParallel"/> shard's thread), the masks' seeds come from this seed, in
    /// order, instead of from torch's generator, which the shards would otherwise draw from in a racing order.</summary>
    internal static ulong? ShardSeed { get => shardSeed; set { shardSeed = value; shardDraws = 0; } }

    /// <summary>One 62-bit draw from torch's default CPU generator (or from the shard's seed).</summary>
    internal static ulong NextSeed()
    {
        if (shardSeed is ulong s) return Word(s, shardDraws++) >> 2;
        using var t = empty(1, dtype: ScalarType.Int64).random_(0, (double)(1L << 62));
        return (ulong)t.item<long>();
    }

    /// <summary>Element e is kept when 16-bit lane e mod 4 of Word(seed, e / 4) is ≥ threshold.</summary>
    internal static ulong Word(ulong seed, long index)
    {
        ulong z = seed + (ulong)(index + 1) * Gamma;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Writes the keep value's bits (<paramref name="keepBits"/>, 2 or 4 bytes) or zero into each element.</summary>
    /// <remarks>~0.3 ns per element; the words are split over <see cref="KernelThreads"/> (each word's value depends
    /// only on the seed and its index, so the mask does not depend on the split).</remarks>
    internal static unsafe void Fill(Span<byte> dest, int elementSize, ulong seed, ushort threshold, uint keepBits)
    {
        if (elementSize != 2 && elementSize != 4) throw new ArgumentOutOfRangeException(nameof(elementSize));
        long n = dest.Length / elementSize, words = (n + 3) / 4;
        nint basePtr = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(dest));
        int parts = KernelThreads.Parts(words, 4);
        KernelThreads.Run(parts, p =>
        {
            var (w0, w1) = KernelThreads.Range(words, parts, p, 64);   // whole vectors of words in every part but the last
            FillWords((byte*)basePtr, elementSize, n, seed, threshold, keepBits, w0, w1);
        });
    }

    /// <summary>Words [w0, w1) of the mask (w0 a multiple of the vector's word count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    private static unsafe void FillWords(byte* basePtr, int elementSize, long n, ulong seed, ushort threshold, uint keepBits, long w0, long w1)
    {
        ushort* dest16 = (ushort*)basePtr;
        uint* dest32 = (uint*)basePtr;
        long w = w0;
        if (Vector.IsHardwareAccelerated)
        {
            int lanes = Vector<ulong>.Count;               // words per vector; 4·lanes elements
            long vectorEnd = Math.Min(w1, n / 4 / lanes * lanes);   // whole words only: the last partial word is scalar
            var counters = VectorCounters(seed, w);
            var step = new Vector<ulong>((ulong)lanes * Gamma);
            var limit = new Vector<ushort>(threshold);
            var keep16 = new Vector<ushort>((ushort)keepBits);
            var keep32 = new Vector<uint>(keepBits);
            for (; w < vectorEnd; w += lanes)
            {
                var kept = Vector.GreaterThanOrEqual(Mix(counters).As<ulong, ushort>(), limit); // all ones where kept
                counters += step;
                if (elementSize == 2) { (kept & keep16).Store(dest16 + w * 4); continue; }
                // Widened as signed so that the ones extend to 32 bits.
                Vector.Widen(kept.As<ushort, short>(), out Vector<int> lo, out Vector<int> hi);
                (lo.As<int, uint>() & keep32).Store(dest32 + w * 4);
                (hi.As<int, uint>() & keep32).Store(dest32 + w * 4 + Vector<uint>.Count);
            }
        }
        for (; w < w1; w++)
        {
            ulong word = Word(seed, w);
            for (long e = w * 4; e < Math.Min(n, w * 4 + 4); e++)
            {
                bool kept = (ushort)(word >> (int)(16 * (e - w * 4))) >= threshold;
                if (elementSize == 2) dest16[e] = kept ? (ushort)keepBits : (ushort)0;
                else dest32[e] = kept ? keepBits : 0u;
            }
        }
    }

    /// <summary>16 elements of a 16-bit mask drawn by <see cref="Fill"/> (keep value non-zero) as factors: the scale
    /// where kept, else 0, for the fused kernels to multiply in (so that, as with the unfused mask product, a NaN stays
    /// NaN where dropped).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe Vector512<float> KeepScale(ushort* mask, Vector512<float> scale) =>
        scale & ~Vector512.Equals(Vector512.WidenLower(
            Vector256.Load(mask).ToVector512Unsafe()), Vector512<uint>.Zero).AsSingle();

    /// <summary>seed + (w + i + 1)·γ for lane i: the pre-mix state of words w, w+1, ….</summary>
    private static Vector<ulong> VectorCounters(ulong seed, long w)
    {
        Span<ulong> c = stackalloc ulong[Vector<ulong>.Count];
        for (int i = 0; i < c.Length; i++) c[i] = seed + (ulong)(w + i + 1) * Gamma;
        return new Vector<ulong>(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<ulong> Mix(Vector<ulong> z)
    {
        z = (z ^ Vector.ShiftRightLogical(z, 30)) * new Vector<ulong>(0xBF58476D1CE4E5B9UL);
        z = (z ^ Vector.ShiftRightLogical(z, 27)) * new Vector<ulong>(0x94D049BB133111EBUL);
        return z ^ Vector.ShiftRightLogical(z, 31);
    }
}
