using BertSharp.Checkpoints;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>bf16 compute keeps float32 master weights and gradients, and stays close to float32 results.</summary>
public class MixedPrecisionTests
{
    [Fact]
    public void Bf16ForwardIsCloseAndGradientsAreFloat32()
    {
        using var fp32 = (BertForPreTraining)ModelFolder.Load(TestPaths.TinyBert).Model;
        using var model = (BertForPreTraining)ModelFolder.Load(TestPaths.TinyBert, compute: ComputeOptions.ForPrecision("bf16")).Model;
        using var ids = tensor(new long[] { 2, 40, 41, 4, 42, 3, 43, 44, 45, 3 }).unsqueeze(0);
        using var types = tensor(new long[] { 0, 0, 0, 0, 0, 0, 1, 1, 1, 1 }).unsqueeze(0);
        using var positions = tensor(new long[] { 3 });
        {
            using var _ = no_grad();
            using var a = fp32.Forward(ids, types, null, positions);
            using var b = model.Forward(ids, types, null, positions);
            Assert.Equal(ScalarType.BFloat16, b.MlmLogits.dtype);
            using var fa = a.MlmLogits;
            using var fb = b.MlmLogits.to(ScalarType.Float32);
            double maxDiff = (fa - fb).abs().max().item<float>();
            double scale = fa.abs().max().item<float>();
            Assert.True(maxDiff < 0.05 * scale, $"bf16 logits differ by {maxDiff} (logit scale {scale})");
            // The ranking of the top prediction survives.
            Assert.Equal(fa.argmax().item<long>(), fb.argmax().item<long>());
        }

        {
            model.train();
            using var o = model.Forward(ids, types, null, positions);
            var (loss, _, _) = BertForPreTraining.Loss(o.MlmLogits, tensor(new long[] { 50 }), o.NspLogits!, tensor(new long[] { 1 }));
            Assert.Equal(ScalarType.Float32, loss.dtype);
            loss.backward();
            foreach (var (name, p) in model.named_parameters())
            {
                Assert.Equal(ScalarType.Float32, p.dtype);
                Assert.True(p.grad is null || p.grad.dtype == ScalarType.Float32, name);
            }
            Assert.NotNull(model.named_parameters().First(p => p.name.EndsWith("layer.0.attention.self.query.weight")).parameter.grad);
        }
    }
}
