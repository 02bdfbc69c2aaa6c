using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>The vectorised kernels split over threads give what they give on one: the same bits where no sum is
/// split, sums that differ only by rounding where one is.</summary>
[Collection(SerialCollection.Name)] // seeds the global generator
public class KernelThreadsTests
{
    /// <summary>Runs <paramref name="body"/> with its kernels split into <paramref name="parts"/> parts.</summary>
    static T WithParts<T>(int parts, Func<T> body)
    {
        var saved = KernelThreads.ForcedParts;
        KernelThreads.ForcedParts = parts;
        try { return body(); }
        finally { KernelThreads.ForcedParts = saved; }
    }

    static void AssertClose(float[] expected, float[] actual, double rel, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= rel * Math.Abs(expected[i]) + 1e-30, $"{what}[{i}]: {actual[i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData(1, 1000, 2)]
    [InlineData(1, 10, 4)]
    [InlineData(3, 1000, 7)]
    [InlineData(2, 1000, 53)]
    public void RangesCoverTheRowsOnceWithAlignedStarts(int parts, long rows, long align)
    {
        long next = 0;
        for (int p = 0; p < parts; p++)
        {
            var (start, end) = KernelThreads.Range(rows, parts, p, align);
            Assert.Equal(next, start);
            Assert.True(start % align == 0 || start == rows, $"part {p} starts at {start}");
            Assert.True(end >= start);
            next = end;
        }
        Assert.Equal(rows, next);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void ColumnSoftmaxSplitOverRowsEqualsOnePart(ScalarType dtype)
    {
        manual_seed(41);
        using var z0 = randn(1000, 53).mul_(4).to(dtype);   // 1,000 rows: parts that are not multiples of the sum block
        using var b = randn(1000);
        (float[] Max, float[] Sum, Tensor Z) Run(int parts) => WithParts(parts, () =>
        {
            var z = z0.clone();
            float[] max = new float[53], sum = new float[53];
            ColumnSoftmax.ExpInPlace(z, b, max, sum);
            return (max, sum, z);
        });
        var one = Run(1);
        var three = Run(3);
        Assert.Equal(one.Max, three.Max);
        Assert.True(one.Z.eq(three.Z).all().item<bool>(), "exponentials differ");
        AssertClose(one.Sum, three.Sum, 1e-6, "sum");
        one.Z.Dispose(); three.Z.Dispose();
    }

    [Fact]
    public void Bf16LayerNormSplitOverRowsEqualsOnePart()
    {
        manual_seed(42);
        using var x0 = randn(999, 128).mul_(2).to(ScalarType.BFloat16);
        using var w0 = randn(128).mul_(0.1).add_(1);
        using var b0 = randn(128).mul_(0.1);
        using var dy = randn(999, 128).to(ScalarType.BFloat16);
        (Tensor Y, Tensor Dx, float[] Dw, float[] Db) Run(int parts) => WithParts(parts, () =>
        {
            using var scope = NewDisposeScope();
            var x = x0.clone().requires_grad_();
            var w = w0.clone().requires_grad_();
            var b = b0.clone().requires_grad_();
            var y = Bf16LayerNorm.apply(x, w, b, 1e-12);
            autograd.backward(new[] { y }, new[] { dy });
            return (y.detach().MoveToOuterDisposeScope(), x.grad!.MoveToOuterDisposeScope(), w.grad!.data<float>().ToArray(), b.grad!.data<float>().ToArray());
        });
        var one = Run(1);
        var three = Run(3);
        Assert.True(one.Y.eq(three.Y).all().item<bool>(), "y differs");
        Assert.True(one.Dx.eq(three.Dx).all().item<bool>(), "dx differs");
        AssertClose(one.Dw, three.Dw, 1e-5, "dw");
        AssertClose(one.Db, three.Db, 1e-5, "db");
    }

    [Theory]
    [InlineData(4, 300_007)]
    [InlineData(2, 300_001)]
    public void DropoutMaskDoesNotDependOnTheSplit(int elementSize, int n)
    {
        byte[] Run(int parts) => WithParts(parts, () =>
        {
            var bytes = new byte[n * elementSize];
            FastDropout.Fill(bytes, elementSize, 0xC0FFEEUL, 6554, elementSize == 4 ? 0x3F8E38E4u : 0x3F80u);
            return bytes;
        });
        var one = Run(1);
        Assert.Equal(one, Run(3));
        Assert.Equal(one, Run(7));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void AddToEqualsLibtorchsMixedAdd(int parts)
    {
        manual_seed(43);
        using var target = randn(1001, 37);
        using var addend = randn(1001, 37).to(ScalarType.BFloat16);
        using var expected = target + addend.to(ScalarType.Float32);
        WithParts(parts, () => { Bf16.AddTo(target, addend); return 0; });
        Assert.True(expected.eq(target).all().item<bool>());
        using var wrongDtype = randn(1001, 37);
        Assert.Throws<ArgumentException>(() => Bf16.AddTo(target, wrongDtype));
    }
}
