using BertSharp.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Tests.Training;

/// <summary>The fused AdamW update gives TorchSharp's AdamW's parameters and state, with clipping folded in.</summary>
[Collection(SerialCollection.Name)] // seeds the global generator
public class FusedAdamWTests
{
    // Lengths off the 16-lane vector (tails), and one large enough to be split over the threads.
    static readonly long[][] Shapes = { new long[] { 37 }, new long[] { 5, 33 }, new long[] { 300, 257 }, new long[] { 16 } };

    static (List<Parameter> Params, AdamW Optimizer) Create()
    {
        TorchRuntime.Seed(3);
        var ps = Shapes.Select(s => new Parameter(randn(s))).ToList();
        var groups = new[]
        {
            new AdamW.ParamGroup(ps.Take(2), lr: 1e-2, eps: 1e-6, weight_decay: 0.05),
            new AdamW.ParamGroup(ps.Skip(2), lr: 1e-2, eps: 1e-6, weight_decay: 0.0),
        };
        return (ps, optim.AdamW(groups, lr: 1e-2, eps: 1e-6, weight_decay: 0.05));
    }

    /// <summary>Three steps on both, the same gradients each step (parameter 1 without one in step 2), a new learning
    /// rate each step; the fused side's gradients multiplied by <paramref name="scale"/>, TorchSharp's clipped first.</summary>
    static void RunBoth(double scale, Action<List<Parameter>, List<Parameter>, AdamW, AdamW> check, bool fused = true)
    {
        var (a, optA) = Create();
        var (b, optB) = Create();
        using var _ = optA;
        using var __ = optB;
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < a.Count; i++)
            {
                if (step == 1 && i == 1) { a[i].grad = null; b[i].grad = null; continue; }
                var g = randn(a[i].shape).mul_(0.5 + i);
                a[i].grad = g.clone();
                b[i].grad = g;
            }
            foreach (var g in optA.ParamGroups.Concat(optB.ParamGroups)) g.LearningRate = 1e-2 / (step + 1);
            double norm = FusedAdamW.GradientNorm(a);
            FusedAdamW.Step(optA, scale == 1.0 ? 1.0 : FusedAdamW.ClipScale(norm, norm * scale), fused);
            if (scale != 1.0) nn.utils.clip_grad_norm_(b, norm * scale);
            optB.step();
        }
        check(a, b, optA, optB);
    }

    static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        double diff = (expected - actual).abs().max().item<float>(), size = expected.abs().max().item<float>();
        Assert.True(diff <= 1e-6 * Math.Max(1, size), $"{what}: max |diff| {diff} (max |value| {size})");
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.3)]   // clipped: the gradients' norm brought down to 0.3 of itself
    public void MatchesTorchSharpsAdamWWithTheGradientsClipped(double scale)
    {
        RunBoth(scale, (a, b, optA, optB) =>
        {
            var sa = optA.state_dict().State.Cast<AdamW.State>().ToList();
            var sb = optB.state_dict().State.Cast<AdamW.State>().ToList();
            for (int i = 0; i < a.Count; i++)
            {
                Assert.Equal(sb[i].step, sa[i].step);
                AssertClose(b[i], a[i], $"parameter {i}");
                AssertClose(sb[i].exp_avg, sa[i].exp_avg, $"exp_avg {i}");
                AssertClose(sb[i].exp_avg_sq, sa[i].exp_avg_sq, $"exp_avg_sq {i}");
            }
            Assert.Equal(2, sa[1].step);   // no gradient in one step: not counted
            Assert.False(a[0].allclose(Create().Params[0]));   // the update did something
        });
    }

    [Fact]
    public void DisabledItScalesTheGradientsAndRunsTorchSharpsStep()
    {
        RunBoth(0.3, (a, b, _, _) =>
        {
            for (int i = 0; i < a.Count; i++) AssertClose(b[i], a[i], $"parameter {i}");
        }, fused: false);
    }

    [Fact]
    public void GradientNormIsClipGradNormsTotal()
    {
        var (ps, opt) = Create();
        using var _ = opt;
        foreach (var p in ps.Skip(1)) p.grad = randn(p.shape);   // parameter 0 has none
        double norm = FusedAdamW.GradientNorm(ps);
        double expected = Math.Sqrt(ps.Skip(1).Sum(p => p.grad!.pow(2).sum().item<float>()));
        Assert.Equal(expected, norm, expected * 1e-6);
        Assert.Equal(norm, nn.utils.clip_grad_norm_(ps, 1e9), norm * 1e-6);
        Assert.Equal(1.0, FusedAdamW.ClipScale(norm, 2 * norm));
        Assert.Equal(0.5, FusedAdamW.ClipScale(norm, 0.5 * norm), 1e-6);
    }
}
