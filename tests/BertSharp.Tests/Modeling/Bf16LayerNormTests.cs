using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>The one-pass bf16 LayerNorm against the cast path (bf16 → fp32 LayerNorm → bf16) and fp64.</summary>
[Collection(SerialCollection.Name)] // seeds the global generator
public class Bf16LayerNormTests
{
    static (Tensor Y, Tensor Dx, Tensor Dw, Tensor Db) Run(Tensor x0, Tensor w0, Tensor b0, Tensor dy, bool fused, ScalarType compute)
    {
        using var scope = NewDisposeScope();
        var x = x0.detach().clone().requires_grad_();
        var w = w0.detach().clone().requires_grad_();
        var b = b0.detach().clone().requires_grad_();
        long h = x0.shape[^1];
        Tensor y = fused
            ? Bf16LayerNorm.apply(x, w, b, 1e-12)
            : nn.functional.layer_norm(x.to(compute), new[] { h }, w.to(compute), b.to(compute), 1e-12).to(x0.dtype);
        torch.autograd.backward(new[] { y }, new[] { dy });
        return (y.detach().MoveToOuterDisposeScope(), x.grad!.MoveToOuterDisposeScope(), w.grad!.MoveToOuterDisposeScope(), b.grad!.MoveToOuterDisposeScope());
    }

    static double MaxRel(Tensor expected, Tensor actual)
    {
        using var e = expected.to(ScalarType.Float64);
        using var a = actual.to(ScalarType.Float64);
        return (e - a).abs().max().item<double>() / e.abs().max().item<double>();
    }

    [Theory]
    [InlineData(4096, 128)]   // the seed model's rows: eight vectors per row
    [InlineData(333, 37)]     // two vectors and five single columns per row, and rows not a multiple of the sum block
    public void MatchesTheCastPathAndFp64(int rows, int h)
    {
        manual_seed(31);
        using var x = randn(rows, h).mul_(2).add_(0.5).to(ScalarType.BFloat16);
        using var w = randn(h).mul_(0.1).add_(1);
        using var b = randn(h).mul_(0.1);
        using var dy = randn(rows, h).to(ScalarType.BFloat16);
        var cast = Run(x, w, b, dy, false, ScalarType.Float32);
        var fused = Run(x, w, b, dy, true, ScalarType.Float32);
        var exact = Run(x, w, b, dy, false, ScalarType.Float64);   // the same bf16 inputs, fp64 arithmetic
        Assert.Equal(ScalarType.BFloat16, fused.Y.dtype);
        Assert.Equal(ScalarType.BFloat16, fused.Dx.dtype);
        Assert.Equal(ScalarType.Float32, fused.Dw.dtype);
        // y and dx: the same fp32 values up to rounding order, so equal to the cast path's within one bf16 ulp.
        Assert.True(MaxRel(cast.Y, fused.Y) <= 1.0 / 128, $"y: {MaxRel(cast.Y, fused.Y)}");
        using (var same = cast.Y.eq(fused.Y).to(ScalarType.Float32).mean()) Assert.True(same.item<float>() > 0.99f);
        Assert.True(MaxRel(cast.Dx, fused.Dx) <= 1.0 / 128, $"dx: {MaxRel(cast.Dx, fused.Dx)}");
        // The weight and bias gradients stay fp32-accurate (libtorch's all-bf16 LayerNorm was 20 % off here).
        Assert.True(MaxRel(exact.Dw, fused.Dw) < 1e-5, $"dw vs fp64: {MaxRel(exact.Dw, fused.Dw)}");
        Assert.True(MaxRel(exact.Db, fused.Db) < 1e-5, $"db vs fp64: {MaxRel(exact.Db, fused.Db)}");
        Assert.True(MaxRel(exact.Y, fused.Y) <= 1.0 / 128, $"y vs fp64: {MaxRel(exact.Y, fused.Y)}");
    }

    [Fact]
    public void TheModelUsesItForBf16OnTheCpuAndAgreesWithTheCastPath()
    {
        manual_seed(32);
        var config = BertConfig.FromPreset("seed", 300);
        using var model = new BertModel(config, new ComputeOptions { Dtype = ScalarType.BFloat16 });
        model.eval();
        using var castModel = new BertModel(config, new ComputeOptions { Dtype = ScalarType.BFloat16, Kernels = BertKernels.FusedWith(new() { Bf16LayerNorm = false }) });
        castModel.load_state_dict(model.state_dict());
        castModel.eval();
        using var ids = randint(5, 300, new long[] { 4, 16 });
        {
            using var _ = no_grad();
            using var castOut = castModel.Forward(ids);
            using var fusedOut = model.Forward(ids);
            using var diff = (castOut.LastHiddenState.to(ScalarType.Float32) - fusedOut.LastHiddenState.to(ScalarType.Float32)).abs();
            Assert.True(diff.max().item<float>() < 0.1f, $"max |diff| {diff.max().item<float>()}");
            Assert.True(diff.mean().item<float>() < 1e-3f, $"mean |diff| {diff.mean().item<float>()}");
        }

    }
}
