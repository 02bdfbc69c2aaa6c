using BertSharp.Checkpoints;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>A fused training kernel leaves the tiny model's pre-training loss and gradients as they were.</summary>
internal static class TrainingStepCheck
{
    /// <param name="without">the kernels with the one under test turned off</param>
    /// <param name="with">the same with it on</param>
    public static void SameWithAndWithout(FusedKernelOptions without, FusedKernelOptions with)
    {
        (float Loss, Dictionary<string, Tensor> Grads) Step(bool on)
        {
            var compute = new ComputeOptions { Kernels = BertKernels.FusedWith(on ? with : without) };
            using var model = (BertForPreTraining)ModelFolder.Load(TestPaths.TinyBert, compute: compute).Model;
            model.train();
            Assert.True(model.Bert.Config.AttentionProbsDropoutProb > 0 && model.Bert.Config.HiddenDropoutProb > 0);
            TorchRuntime.Seed(9);   // the same dropout masks either way
            using var scope = NewDisposeScope();
            var ids = randint(5, 1000, new long[] { 4, 12 });
            var mask = ones(4, 12, dtype: ScalarType.Int64);
            mask[3, TensorIndex.Slice(8)] = tensor(0L);   // padding: an additive attention mask
            model.zero_grad();
            var (total, _, _) = model.PretrainingLoss(ids, zeros(4, 12, dtype: ScalarType.Int64), mask,
                tensor(new long[] { 2, 15, 27, 40 }), tensor(new long[] { 7, 8, 9, 10 }), tensor(new long[] { 0, 1, 1, 0 }));
            total.backward();
            return (total.item<float>(), model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().MoveToOuterDisposeScope()));
        }
        {
            var plain = Step(false);
            var fused = Step(true);
            Assert.True(Math.Abs(plain.Loss - fused.Loss) <= 1e-5 * Math.Abs(plain.Loss), $"loss {plain.Loss} vs {fused.Loss}");
            // Relative to the largest gradient: the key biases' gradients are zero but for rounding (softmax ignores a
            // constant added to a row).
            double largest = plain.Grads.Values.Max(g => g.abs().max().item<float>());
            foreach (var (name, g) in plain.Grads)
            {
                double diff = (g - fused.Grads[name]).abs().max().item<float>();
                Assert.True(diff <= 1e-5 * largest, $"{name}: max |diff| {diff} (largest gradient {largest})");
            }
        }
    }
}
