using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>The one-pass LayerNorm(dropout(h) + residual) against FastDropout, the add and LayerNorm as separate ops.</summary>
[Collection(SerialCollection.Name)] // seeds the global generator
public class DropoutAddLayerNormTests
{
    const double P = 0.1, Eps = 1e-12;

    record Result(Tensor Y, Tensor DH, Tensor DResidual, Tensor DW, Tensor DB);

    static Result Run(Tensor h0, Tensor r0, Tensor w0, Tensor b0, Tensor dy, bool fused)
    {
        using var scope = NewDisposeScope();
        var h = h0.detach().clone().requires_grad_();
        var r = r0.detach().clone().requires_grad_();
        var w = w0.detach().clone().requires_grad_();
        var b = b0.detach().clone().requires_grad_();
        manual_seed(5);   // the same seed for the mask either way
        Tensor y;
        if (fused) y = DropoutAddLayerNorm.Apply(h, r, w, b, P, Eps);
        else
        {
            var sum = FastDropout.Apply(h, P, true) + r;
            y = h0.dtype == ScalarType.BFloat16
                ? Bf16LayerNorm.apply(sum, w, b, Eps)
                : nn.functional.layer_norm(sum, new[] { h0.shape[^1] }, w, b, Eps);
        }
        torch.autograd.backward(new List<Tensor> { y }, new List<Tensor> { dy });
        return new Result(y.detach().MoveToOuterDisposeScope(), h.grad!.MoveToOuterDisposeScope(), r.grad!.MoveToOuterDisposeScope(),
            w.grad!.MoveToOuterDisposeScope(), b.grad!.MoveToOuterDisposeScope());
    }

    static (Tensor H, Tensor R, Tensor W, Tensor B, Tensor Dy) Inputs(int rows, int hidden, ScalarType dtype)
    {
        manual_seed(43);
        return (randn(rows, hidden).mul_(2).to(dtype), randn(rows, hidden).add_(0.5).to(dtype), randn(hidden).mul_(0.1).add_(1),
            randn(hidden).mul_(0.1), randn(rows, hidden).to(dtype));
    }

    static double MaxRel(Tensor expected, Tensor actual)
    {
        using var e = expected.to(ScalarType.Float64);
        using var a = actual.to(ScalarType.Float64);
        return (e - a).abs().max().item<double>() / e.abs().max().item<double>();
    }

    [Theory]
    [InlineData(333, 128, ScalarType.Float32)]    // the seed model's rows; rows not a multiple of the blocks
    [InlineData(333, 37, ScalarType.Float32)]     // two vectors and five single elements per row
    [InlineData(333, 128, ScalarType.BFloat16)]
    [InlineData(333, 37, ScalarType.BFloat16)]
    public void MatchesFastDropoutTheAddAndLayerNorm(int rows, int hidden, ScalarType dtype)
    {
        var (h, r, w, b, dy) = Inputs(rows, hidden, dtype);
        var reference = Run(h, r, w, b, dy, fused: false);
        var fused = Run(h, r, w, b, dy, fused: true);
        Assert.Equal(dtype, fused.Y.dtype);
        Assert.Equal(dtype, fused.DH.dtype);
        Assert.Equal(ScalarType.Float32, fused.DW.dtype);
        // The same mask: h's gradient is zero exactly where the reference's is.
        using (var zeros = reference.DH.eq(0).ne(fused.DH.eq(0)).sum()) Assert.Equal(0, zeros.item<long>());
        using (var dropped = fused.DH.eq(0).to(ScalarType.Float32).mean()) Assert.InRange(dropped.item<float>(), 0.07f, 0.13f);
        // fp32: rounding order only. bf16: the sum is rounded once here, twice (scale, then add) unfused: one bf16 ulp
        // of the sum, which LayerNorm scales by 1/σ.
        bool bf16 = dtype == ScalarType.BFloat16;
        double act = bf16 ? 2.0 / 128 : 1e-5, par = bf16 ? 1e-2 : 1e-5;
        Assert.True(MaxRel(reference.Y, fused.Y) <= act, $"y: {MaxRel(reference.Y, fused.Y)}");
        Assert.True(MaxRel(reference.DResidual, fused.DResidual) <= act, $"dresidual: {MaxRel(reference.DResidual, fused.DResidual)}");
        Assert.True(MaxRel(reference.DH, fused.DH) <= act, $"dh: {MaxRel(reference.DH, fused.DH)}");
        Assert.True(MaxRel(reference.DW, fused.DW) <= par, $"dw: {MaxRel(reference.DW, fused.DW)}");
        Assert.True(MaxRel(reference.DB, fused.DB) <= par, $"db: {MaxRel(reference.DB, fused.DB)}");
        // Against the same computation in fp64 (same inputs, same mask), the one rounding of the sum is at least as
        // close as the unfused two.
        using var keep = reference.DH.ne(0).to(ScalarType.Float64);
        using var s64 = h.to(ScalarType.Float64).mul(keep).mul(1 / (1 - P)).add(r.to(ScalarType.Float64));
        using var exact = nn.functional.layer_norm(s64, new[] { (long)hidden }, w.to(ScalarType.Float64), b.to(ScalarType.Float64), Eps);
        double MeanErr(Tensor y) { using var d = (y.to(ScalarType.Float64) - exact).abs().mean(); return d.item<double>(); }
        Assert.True(MeanErr(fused.Y) <= MeanErr(reference.Y) * 1.02, $"mean |y - exact|: fused {MeanErr(fused.Y)}, unfused {MeanErr(reference.Y)}");
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void SplittingTheRowsOverThreadsChangesOnlyTheSumsOrder(ScalarType dtype)
    {
        var (h, r, w, b, dy) = Inputs(333, 128, dtype);
        var saved = KernelThreads.ForcedParts;
        try
        {
            KernelThreads.ForcedParts = 1;
            var one = Run(h, r, w, b, dy, fused: true);
            KernelThreads.ForcedParts = 3;
            var split = Run(h, r, w, b, dy, fused: true);
            Assert.True(one.Y.eq(split.Y).all().item<bool>(), "y");
            Assert.True(one.DH.eq(split.DH).all().item<bool>(), "dh");
            Assert.True(one.DResidual.eq(split.DResidual).all().item<bool>(), "dresidual");
            Assert.True(MaxRel(one.DW, split.DW) < 1e-5 && MaxRel(one.DB, split.DB) < 1e-5, "weight and bias gradients");
        }
        finally { KernelThreads.ForcedParts = saved; }
    }

    [Fact]
    public void TheModelsTrainingStepIsTheSameWithAndWithoutIt()
    {
        var with = new FusedKernelOptions { DropoutAddLayerNormFloat32 = true };   // the tiny model trains in fp32
        TrainingStepCheck.SameWithAndWithout(with with { DropoutAddLayerNorm = false }, with);
    }
}
