using BertSharp.Checkpoints;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>The one-pass attention softmax + dropout + cast against libtorch's softmax, FastDropout and cast.</summary>
[Collection(SerialCollection.Name)] // seeds the global generator
public class AttentionSoftmaxDropoutTests
{
    const double P = 0.1;

    static (Tensor Y, Tensor Dx) Run(Tensor s0, Tensor dy, bool fused)
    {
        using var scope = NewDisposeScope();
        var s = s0.detach().clone().requires_grad_();
        manual_seed(5);   // the same seed for the mask either way
        Tensor y = fused
            ? AttentionSoftmaxDropout.Apply(s, P, dy.dtype)
            : FastDropout.Apply(nn.functional.softmax(s, -1, ScalarType.Float32), P, true).to(dy.dtype);
        torch.autograd.backward(new[] { y }, new[] { dy });
        return (y.detach().MoveToOuterDisposeScope(), s.grad!.MoveToOuterDisposeScope());
    }

    static (Tensor Scores, Tensor Dy) Inputs(int L, ScalarType inDtype, ScalarType outDtype)
    {
        manual_seed(41);
        const float padded = -3.3895313892515355e38f;   // bf16's lowest finite value (BertModel's additive mask), exact in fp32 too
        var scores = randn(3, 2, 9, L).mul_(3);
        scores[0, TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(L / 2)] = tensor(padded);   // padded keys
        scores[1, 1, 4] = tensor(padded);                                                             // a row with every key padded
        return (scores.to(inDtype), randn(3, 2, 9, L).to(outDtype));
    }

    static double MaxRel(Tensor expected, Tensor actual)
    {
        using var e = expected.to(ScalarType.Float64);
        using var a = actual.to(ScalarType.Float64);
        return (e - a).abs().max().item<double>() / e.abs().max().item<double>();
    }

    [Theory]
    [InlineData(64, ScalarType.Float32, ScalarType.Float32)]     // the seed model's rows: four vectors
    [InlineData(37, ScalarType.Float32, ScalarType.Float32)]     // two vectors and five single elements per row
    [InlineData(64, ScalarType.BFloat16, ScalarType.BFloat16)]   // bf16 training: bf16 scores, bf16 values
    [InlineData(37, ScalarType.BFloat16, ScalarType.BFloat16)]
    public void MatchesSoftmaxFastDropoutAndTheCast(int L, ScalarType inDtype, ScalarType outDtype)
    {
        var (scores, dy) = Inputs(L, inDtype, outDtype);
        var reference = Run(scores, dy, fused: false);
        var fused = Run(scores, dy, fused: true);
        Assert.Equal(outDtype, fused.Y.dtype);
        Assert.Equal(inDtype, fused.Dx.dtype);
        // The same mask: the same elements are zero (kept probabilities here are never zero but in padded keys).
        using (var zeros = reference.Y.eq(0).ne(fused.Y.eq(0)).sum()) Assert.Equal(0, zeros.item<long>());
        using (var dropped = fused.Y.eq(0).to(ScalarType.Float32).mean()) Assert.InRange(dropped.item<float>(), 0.2f, 0.45f);   // ~half padded, then 10 %
        // A fully padded row is uniform, as softmax makes it.
        using (var row = fused.Y[1, 1, 4].to(ScalarType.Float32))
        using (var kept = row.ne(0))
            Assert.True(row.masked_select(kept).sub(1.0 / L / (1 - P)).abs().max().item<float>() < 1e-6 + (inDtype == ScalarType.BFloat16 ? 1e-4 : 0));
        double tolerance = outDtype == ScalarType.Float32 ? 1e-6 : 1.0 / 128;   // fp32 rounding, or one bf16 ulp
        Assert.True(MaxRel(reference.Y, fused.Y) <= tolerance, $"y: {MaxRel(reference.Y, fused.Y)}");
        Assert.True(MaxRel(reference.Dx, fused.Dx) <= (inDtype == ScalarType.Float32 ? 1e-5 : 1.0 / 128), $"dx: {MaxRel(reference.Dx, fused.Dx)}");
        if (outDtype == ScalarType.BFloat16)
            using (var same = reference.Y.eq(fused.Y).to(ScalarType.Float32).mean()) Assert.True(same.item<float>() > 0.97f, $"same bits: {same.item<float>()}");
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void SplittingTheRowsOverThreadsChangesNothing(ScalarType dtype)
    {
        var (scores, dy) = Inputs(64, dtype, dtype);
        var saved = KernelThreads.ForcedParts;
        try
        {
            KernelThreads.ForcedParts = 1;
            var one = Run(scores, dy, fused: true);
            KernelThreads.ForcedParts = 5;
            var split = Run(scores, dy, fused: true);
            Assert.True(one.Y.eq(split.Y).all().item<bool>(), "y");
            Assert.True(one.Dx.eq(split.Dx).all().item<bool>(), "dx");
        }
        finally { KernelThreads.ForcedParts = saved; }
    }

    [Fact]
    public void TheModelsTrainingStepIsTheSameWithAndWithoutIt()
    {
        var with = new FusedKernelOptions { AttentionSoftmaxDropoutFloat32 = true };   // the tiny model trains in fp32
        TrainingStepCheck.SameWithAndWithout(with with { AttentionSoftmaxDropout = false }, with);
    }

    [Fact]
    public void Float32ScoresKeepTheLibtorchOpsUnlessAskedFor()
    {
        using var scores = randn(2, 2, 4, 4);
        Assert.False(AttentionSoftmaxDropout.Supports(scores, P, ScalarType.Float32, new FusedKernelOptions().AttentionSoftmaxDropoutFloat32));
        using var bf16 = scores.to(ScalarType.BFloat16);
        Assert.True(AttentionSoftmaxDropout.Supports(bf16, P, ScalarType.BFloat16, forFloat32: false));
    }
}
