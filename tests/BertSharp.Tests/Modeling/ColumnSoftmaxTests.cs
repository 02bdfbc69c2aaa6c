using System.Runtime.Intrinsics;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>The fused loss's softmax statistics kernel against libtorch's ops and double-precision references.</summary>
[Collection(SerialCollection.Name)] // seeds the global generator
public class ColumnSoftmaxTests
{
    [Fact]
    public void Float32MaxSumsAndExponentialsMatchTheReference()
    {
        manual_seed(21);
        using var z = randn(300, 53).mul_(4);   // 53 columns: three vectors of 16 and five single columns
        using var b = randn(300);
        using var reference = z + b.unsqueeze(1);
        using var refMax = reference.amax(new long[] { 0 });
        using var refExp = (reference - refMax).exp();
        float[] max = new float[53], sum = new float[53];
        ColumnSoftmax.ExpInPlace(z, b, max, sum);
        Assert.Equal(refMax.data<float>().ToArray(), max);   // the same fp32 additions: exact
        // Within 2.5 fp32 ulp of libtorch's exp.
        double rel = ((z - refExp).abs() / refExp.clamp_min(1e-30)).max().item<float>();
        Assert.True(rel < 1.5e-7, $"exponentials: max relative difference {rel}");
        var r = reference.data<float>().ToArray();
        for (int c = 0; c < 53; c++)
        {
            double exact = 0;
            for (int v = 0; v < 300; v++) exact += Math.Exp((double)r[v * 53 + c] - max[c]);
            Assert.True(Math.Abs(sum[c] - exact) <= 1e-6 * exact, $"column {c}: sum {sum[c]} vs {exact}");
        }
    }

    [Fact]
    public void Bfloat16ExponentialsAreRoundedAsACastWouldRoundThem()
    {
        manual_seed(22);
        using var z = randn(200, 37).mul_(3).to(ScalarType.BFloat16);
        using var b = randn(200).mul_(0.5);
        using var reference = z.to(ScalarType.Float32) + b.unsqueeze(1);
        using var refMax = reference.amax(new long[] { 0 });
        using var refExp32 = (reference - refMax).exp();
        using var refExp = refExp32.to(ScalarType.BFloat16).to(ScalarType.Float32);
        float[] max = new float[37], sum = new float[37];
        ColumnSoftmax.ExpInPlace(z, b, max, sum);
        Assert.Equal(ScalarType.BFloat16, z.dtype);
        Assert.Equal(refMax.data<float>().ToArray(), max);
        using var got = z.to(ScalarType.Float32);
        // The fp32 exponentials differ from libtorch's by an ulp or two, which can flip a bf16 rounding: at most one
        // bf16 ulp (2^-8 relative), and nearly always the same bits.
        using var diff = (got - refExp).abs();
        Assert.True((diff / refExp.clamp_min(1e-30)).max().item<float>() <= 1.0 / 256, "more than one bf16 ulp apart");
        double same = diff.eq(0).to(ScalarType.Float32).mean().item<float>();
        Assert.True(same > 0.97, $"only {same:P1} of the bf16 exponentials equal a cast of libtorch's");
        // The sums are of the fp32 exponentials, before rounding.
        using var refSum = refExp32.sum(0, keepdim: false);
        var rs = refSum.data<float>().ToArray();
        for (int c = 0; c < 37; c++) Assert.True(Math.Abs(sum[c] - rs[c]) <= 1e-6 * rs[c], $"column {c}: sum {sum[c]} vs {rs[c]}");
    }

    [Fact]
    public void ExpIsWithinTwoUlpAndUnderflowsToZero()
    {
        double worst = 0;
        for (int i = 0; i <= 200_000; i++)
        {
            float x = -87.3f * i / 200_000;
            double exact = Math.Exp(x);
            float got = ColumnSoftmax.Exp(Vector512.Create(x)).ToScalar();
            worst = Math.Max(worst, Math.Abs(got - exact) / exact);
        }
        Assert.True(worst < 1.8e-7, $"max relative error {worst}");
        Assert.Equal(1f, ColumnSoftmax.Exp(Vector512<float>.Zero).ToScalar());
        Assert.Equal(0f, ColumnSoftmax.Exp(Vector512.Create(-87.5f)).ToScalar());
        Assert.Equal(0f, ColumnSoftmax.Exp(Vector512.Create(-1e30f)).ToScalar());
        Assert.Equal(0f, ColumnSoftmax.Exp(Vector512.Create(float.NegativeInfinity)).ToScalar());
        Assert.True(float.IsNaN(ColumnSoftmax.Exp(Vector512.Create(float.NaN)).ToScalar()));
    }

    [Fact]
    public void ANaNLogitMakesItsColumnSumNaN()
    {
        using var z = ones(40, 20);
        z[7, 3] = tensor(float.NaN);    // a vector column
        z[9, 17] = tensor(float.NaN);   // a single column
        using var b = zeros(40);
        float[] max = new float[20], sum = new float[20];
        ColumnSoftmax.ExpInPlace(z, b, max, sum);
        Assert.True(float.IsNaN(sum[3]) && float.IsNaN(sum[17]));
        Assert.Equal(40f, sum[0]);
        Assert.Equal(40f, sum[16]);
    }

    [Fact]
    public void RejectsWhatItCannotRead()
    {
        float[] max = new float[4], sum = new float[4];
        using var b = zeros(4);
        using var z = zeros(4, 4);
        Assert.Throws<ArgumentException>(() => ColumnSoftmax.ExpInPlace(z.t().narrow(0, 0, 4).narrow(1, 1, 3).contiguous().t(), b, new float[3], new float[3]));
        Assert.Throws<ArgumentException>(() => ColumnSoftmax.ExpInPlace(zeros(4, 4, dtype: ScalarType.Float64), b, max, sum));
        Assert.Throws<ArgumentException>(() => ColumnSoftmax.ExpInPlace(z, zeros(3), max, sum));
        Assert.Throws<ArgumentException>(() => ColumnSoftmax.ExpInPlace(z, b, new float[3], sum));
    }
}
