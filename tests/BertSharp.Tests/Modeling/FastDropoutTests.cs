using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>FastDropout behaves as nn.Dropout: the drop rate, the scale, gradients, seeding, and the mask bits.</summary>
[Collection(SerialCollection.Name)] // seeds the global generator and changes the thread count
public class FastDropoutTests
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void WordIsSplitMix64()
    {
        // The first outputs of SplitMix64 seeded with 0 (the reference C implementation by Vigna).
        Assert.Equal(0xE220A8397B1DCDAFUL, FastDropout.Word(0, 0));
        Assert.Equal(0x6E789E6AA1B965F4UL, FastDropout.Word(0, 1));
        Assert.Equal(0x06C45D188009454FUL, FastDropout.Word(0, 2));
    }

    [Theory]
    [InlineData(4, 1_000_003)]   // odd length: vector body, scalar words, and a last word with 3 elements
    [InlineData(2, 131_073)]     // bf16 bits
    [InlineData(4, 5)]           // shorter than one vector
    public void VectorisedMaskEqualsTheScalarDefinition(int elementSize, int n)
    {
        var bytes = new byte[n * elementSize];
        const ulong seed = 0x1234_5678_9ABC_DEF0UL;
        const ushort threshold = 6554;   // p = 0.1
        uint keep = elementSize == 4 ? 0x3F8E38E4u : 0x3F80u;
        FastDropout.Fill(bytes, elementSize, seed, threshold, keep);
        for (long e = 0; e < n; e++)
        {
            ulong word = FastDropout.Word(seed, e / 4);
            uint expected = (ushort)(word >> (int)(16 * (e % 4))) >= threshold ? keep : 0u;
            uint actual = elementSize == 4 ? BitConverter.ToUInt32(bytes, (int)e * 4) : BitConverter.ToUInt16(bytes, (int)e * 2);
            if (actual != expected) Assert.Fail($"element {e}: {actual:X} instead of {expected:X}");
        }
    }

    [Fact]
    public void DropsAboutPAndScalesTheRestExactly()
    {
        manual_seed(3);
        using var x = full(1000, 1000, 2.0f);
        using var y = FastDropout.Apply(x, 0.1, training: true);
        using var zero = y.eq(0);
        double dropped = zero.to(ScalarType.Float64).mean().item<double>();
        Assert.InRange(dropped, 0.1 - 0.002, 0.1 + 0.002);    // binomial sd 0.0003
        using var kept = y.masked_select(zero.logical_not());
        Assert.Equal(2.0f * (float)(1.0 / 0.9), kept.min().item<float>());
        Assert.Equal(2.0f * (float)(1.0 / 0.9), kept.max().item<float>());
    }

    [Fact]
    public void NeighbouringElementsAreDroppedIndependently()
    {
        manual_seed(4);
        using var x = ones(4_000_000);
        using var d = FastDropout.Apply(x, 0.5, training: true).eq(0).to(ScalarType.Float64);
        // Lanes of one word (offsets 1–3) and of adjacent words (offset 4): both dropped with probability 0.25.
        foreach (int offset in new[] { 1, 2, 3, 4 })
        {
            using var a = d.narrow(0, 0, d.shape[0] - offset);
            using var b = d.narrow(0, offset, d.shape[0] - offset);
            double both = (a * b).mean().item<double>();
            Assert.InRange(both, 0.25 - 0.002, 0.25 + 0.002); // sd 0.0002
        }
        for (int lane = 0; lane < 4; lane++)
        {
            double rate = d.view(-1, 4).select(1, lane).mean().item<double>();
            Assert.InRange(rate, 0.5 - 0.003, 0.5 + 0.003);
        }
    }

    [Fact]
    public void EvaluationAndZeroProbabilityAreTheIdentity()
    {
        using var x = randn(7, 5);
        using var e = FastDropout.Apply(x, 0.1, training: false);
        using var z = FastDropout.Apply(x, 0.0, training: true);
        Assert.True(Same(e, x));
        Assert.True(Same(z, x));
        Assert.Throws<ArgumentOutOfRangeException>(() => FastDropout.Apply(x, 1.5, training: true));
    }

    [Fact]
    public void TheGradientIsTheMaskTimesTheScale()
    {
        manual_seed(5);
        using var x = (rand(64, 33) + 0.5).requires_grad_();
        using var y = FastDropout.Apply(x, 0.2, training: true);
        y.sum().backward();
        using var expected = (y / x).detach();   // 0 where dropped, 1/(1 − p) where kept
        Assert.True(x.grad!.allclose(expected, rtol: 1e-6, atol: 1e-7));
        Assert.True(y.eq(0).any().item<bool>());
    }

    [Fact]
    public void TheTorchSeedGovernsTheMaskWhateverTheThreadCount()
    {
        using var x = ones(300_000);
        int saved = get_num_threads();
        try
        {
            set_num_threads(1);
            manual_seed(9);
            using var a = FastDropout.Apply(x, 0.1, training: true);
            using var next = FastDropout.Apply(x, 0.1, training: true);
            set_num_threads(2);
            manual_seed(9);
            using var b = FastDropout.Apply(x, 0.1, training: true);
            Assert.True(Same(a, b));
            Assert.False(Same(a, next));   // each call draws a fresh seed
        }
        finally { set_num_threads(saved); }
    }

    [Fact]
    public void BFloat16KeepsTheExactScale()
    {
        manual_seed(6);
        using var x = randn(300, 301).to(ScalarType.BFloat16);
        using var y = FastDropout.Apply(x, 0.1, training: true);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        using var keptMask = y.ne(0);
        // Kept elements are x·(1/0.9) rounded once to bf16, not x times a bf16-rounded scale.
        using var expected = (x.to(ScalarType.Float32) * (1.0 / 0.9)).to(ScalarType.BFloat16);
        Assert.True(Same(y.masked_select(keptMask), expected.masked_select(keptMask)));
        double dropped = keptMask.logical_not().to(ScalarType.Float64).mean().item<double>();
        Assert.InRange(dropped, 0.1 - 0.005, 0.1 + 0.005);
    }
}
