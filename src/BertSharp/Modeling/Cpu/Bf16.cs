using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>bfloat16 ⇄ float32 for the vectorised kernels (<see cref="ColumnSoftmax"/>, <see cref="Bf16LayerNorm"/>):
/// a bf16 is the upper half of an fp32, rounded to nearest even, as libtorch's casts round; and an fp32 += bf16.</summary>
internal static class Bf16
{
    /// <summary>16 bf16 values widened to fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<float> Load(ushort* p) =>
        Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load(p).ToVector512Unsafe()), 16).AsSingle();

    /// <summary>16 fp32 values rounded to bf16; NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Store(ushort* p, Vector512<float> value)
    {
        var bits = value.AsUInt32();
        var rounded = Vector512.ShiftRightLogical(bits + Vector512.Create(0x7FFFu) + (Vector512.ShiftRightLogical(bits, 16) & Vector512<uint>.One), 16);
        var notNaN = Vector512.Equals(value, value).AsUInt32();
        rounded = Vector512.ConditionalSelect(notNaN, rounded, Vector512.ShiftRightLogical(bits, 16) | Vector512.Create(0x40u));
        Vector512.Narrow(rounded, rounded).GetLower().Store(p);
    }

    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    public static ushort FromFloat(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>target += addend, for a float32 target and a bfloat16 addend of the same shape (contiguous, CPU): what
    /// libtorch's mixed-dtype add_ computes, but vectorised (libtorch's is not).</summary>
    public static unsafe void AddTo(Tensor target, Tensor addend)
    {
        if (target.dtype != ScalarType.Float32 || addend.dtype != ScalarType.BFloat16 || !target.is_contiguous() || !addend.is_contiguous()
            || target.device_type != DeviceType.CPU || addend.device_type != DeviceType.CPU || !target.shape.SequenceEqual(addend.shape))
            throw new ArgumentException("AddTo needs a contiguous float32 target and a bfloat16 addend of the same shape, on the CPU");
        const int Lanes = 16;
        long n = target.numel();
        nint tp = (nint)NativeTensor.Data<float>(target), ap = (nint)NativeTensor.Data<ushort>(addend);
        int parts = KernelThreads.Parts(n, 1);
        KernelThreads.Run(parts, p =>
        {
            var (i0, i1) = KernelThreads.Range(n, parts, p, Lanes);
            AddRange((float*)tp, (ushort*)ap, i0, i1);
        });
        GC.KeepAlive(target); GC.KeepAlive(addend);   // read through raw pointers above: alive until the kernel is done
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loops: compiled optimised at once, not after tier 0 (docs/PERFORMANCE.md)
    private static unsafe void AddRange(float* t, ushort* a, long i0, long i1)
    {
        const int Lanes = 16;
        long i = i0;
        for (; i + Lanes <= i1; i += Lanes) (Vector512.Load(t + i) + Load(a + i)).Store(t + i);
        for (; i < i1; i++) t[i] += ToFloat(a[i]);
    }
}

/// <summary>An element type the vectorised kernels read and write as fp32: a type parameter
/// (<see cref="Bf16Elements"/>, <see cref="Fp32Elements"/>), so that the JIT compiles one loop per dtype with the
/// loads inlined (a run-time dtype flag inside the loops made them markedly slower).</summary>
internal unsafe interface IElements
{
    static abstract Vector512<float> Load(byte* p, long index);
    static abstract void Store(byte* p, long index, Vector512<float> value);
    static abstract float LoadOne(byte* p, long index);
    static abstract void StoreOne(byte* p, long index, float value);
}

internal readonly unsafe struct Bf16Elements : IElements
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(byte* p, long index) => Bf16.Load((ushort*)p + index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(byte* p, long index, Vector512<float> value) => Bf16.Store((ushort*)p + index, value);
    public static float LoadOne(byte* p, long index) => Bf16.ToFloat(((ushort*)p)[index]);
    public static void StoreOne(byte* p, long index, float value) => ((ushort*)p)[index] = Bf16.FromFloat(value);
}

internal readonly unsafe struct Fp32Elements : IElements
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(byte* p, long index) => Vector512.Load((float*)p + index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(byte* p, long index, Vector512<float> value) => value.Store((float*)p + index);
    public static float LoadOne(byte* p, long index) => ((float*)p)[index];
    public static void StoreOne(byte* p, long index, float value) => ((float*)p)[index] = value;
}
