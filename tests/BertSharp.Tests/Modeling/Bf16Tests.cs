using System.Runtime.Intrinsics;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>The kernels' bf16 conversions round exactly as libtorch's casts do.</summary>
public class Bf16Tests
{
    [Fact]
    public unsafe void RoundingMatchesLibtorchsCastBitForBit()
    {
        var rng = new Random(5);
        var values = new float[4096];
        for (int i = 0; i < values.Length; i++)
            values[i] = BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32));   // every exponent, ties included
        values[0] = float.PositiveInfinity; values[1] = float.NegativeInfinity; values[2] = 0f; values[3] = -0f;
        values[4] = BitConverter.UInt32BitsToSingle(0x3F808000);   // a tie to even (down)
        values[5] = BitConverter.UInt32BitsToSingle(0x3F818000);   // a tie to even (up)
        using var t = tensor(values);
        using var cast = t.to(ScalarType.BFloat16);
        var expected = MemoryMarshalBits(cast);
        var scalar = new ushort[values.Length];
        var vector = new ushort[values.Length];
        fixed (float* src = values)
        fixed (ushort* dst = vector)
            for (int i = 0; i < values.Length; i += 16) Bf16.Store(dst + i, Vector512.Load(src + i));
        for (int i = 0; i < values.Length; i++)
        {
            scalar[i] = Bf16.FromFloat(values[i]);
            if (float.IsNaN(values[i]))
            {
                Assert.True(float.IsNaN(Bf16.ToFloat(scalar[i])) && float.IsNaN(Bf16.ToFloat(vector[i])), $"NaN at {i}");
                continue;
            }
            Assert.True(expected[i] == scalar[i], $"{values[i]:R}: cast {expected[i]:X4}, scalar {scalar[i]:X4}");
            Assert.True(expected[i] == vector[i], $"{values[i]:R}: cast {expected[i]:X4}, vector {vector[i]:X4}");
        }
        // And back: widening is exact.
        fixed (ushort* p = vector)
            for (int i = 0; i < values.Length; i += 16)
            {
                var w = Bf16.Load(p + i);
                for (int k = 0; k < 16; k++)
                    Assert.Equal(BitConverter.SingleToUInt32Bits(Bf16.ToFloat(vector[i + k])), BitConverter.SingleToUInt32Bits(w[k]));
            }
    }

    static ushort[] MemoryMarshalBits(Tensor bf16) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bf16.bytes).ToArray();
}
