using BertSharp.Checkpoints;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>The chunked MLM loss gives the loss and gradients of cross_entropy(linear(h, W, b), labels).</summary>
[Collection(SerialCollection.Name)] // seeds the global generator
public class FusedLinearCrossEntropyTests
{
    static (Tensor Loss, Tensor GradH, Tensor GradW, Tensor GradB) Run(bool fused, Tensor h0, Tensor w0, Tensor b0, Tensor labels,
        int chunkRows, ScalarType dtype = ScalarType.Float32, bool vectorised = true)
    {
        using var h = h0.detach().clone().requires_grad_();
        using var w = w0.detach().clone().requires_grad_();
        using var b = b0.detach().clone().requires_grad_();
        using var hd = h.to(dtype);
        var loss = fused ? FusedLinearCrossEntropy.Loss(hd, w, b, labels, chunkRows, vectorisedSoftmax: vectorised) : FusedLinearCrossEntropy.Plain(hd, w, b, labels);
        // A factor on the loss, as gradient accumulation applies, must reach the gradients.
        loss.mul(0.25).backward();
        return (loss.detach(), h.grad!.clone(), w.grad!.clone(), b.grad!.clone());
    }

    static void Close(Tensor expected, Tensor actual, double atol, string what)
    {
        double diff = (expected - actual).abs().max().item<float>();
        Assert.True(diff <= atol, $"{what}: max |diff| {diff} > {atol}");
    }

    [Theory]
    [InlineData(7, true)]     // chunks of 7 rows: 37 = 5×7 + 2
    [InlineData(128, true)]   // one chunk
    [InlineData(7, false)]    // softmax statistics by libtorch's ops (as on a GPU) instead of ColumnSoftmax
    public void LossAndGradientsMatchTheTextbookFormulation(int chunkRows, bool vectorised)
    {
        CheckAgainstTextbook(chunkRows, vectorised);
    }

    static void CheckAgainstTextbook(int chunkRows, bool vectorised)
    {
        manual_seed(11);
        using var h = randn(37, 16);
        using var w = randn(50, 16).mul_(0.5);
        using var b = randn(50).mul_(0.1);
        var lab = Enumerable.Range(0, 37).Select(i => i % 9 == 4 ? -100L : (i * 13 + 5) % 50).ToArray();
        lab[0] = lab[1] = 17;                       // a label repeated in one chunk
        using var labels = tensor(lab);
        var plain = Run(false, h, w, b, labels, chunkRows);
        var fused = Run(true, h, w, b, labels, chunkRows, vectorised: vectorised);
        Assert.Equal(ScalarType.Float32, fused.Loss.dtype);
        Assert.Equal(0, fused.Loss.dim());
        Close(plain.Loss, fused.Loss, 2e-6, "loss");
        Close(plain.GradH, fused.GradH, 1e-6, "d loss / d h");
        Close(plain.GradW, fused.GradW, 1e-6, "d loss / d W");
        Close(plain.GradB, fused.GradB, 1e-6, "d loss / d b");
        // Ignored rows get no gradient.
        for (int i = 0; i < lab.Length; i++)
            if (lab[i] == -100) Assert.Equal(0f, fused.GradH[i].abs().sum().item<float>());
        // The hand-computable value: mean over kept rows of logsumexp(z) − z[label].
        using var z = h.matmul(w.t()) + b;
        double sum = 0; int kept = 0;
        for (int i = 0; i < lab.Length; i++)
        {
            if (lab[i] == -100) continue;
            sum += z[i].logsumexp(0).item<float>() - z[i, lab[i]].item<float>();
            kept++;
        }
        Assert.Equal(sum / kept, fused.Loss.item<float>(), 1e-4);
    }

    [Fact]
    public void Bf16InputsGiveCloseLossAndFloat32Gradients()
    {
        manual_seed(12);
        using var h = randn(40, 32);
        using var w = randn(64, 32).mul_(0.3);
        using var b = randn(64).mul_(0.2);
        using var labels = randint(0, 64, new long[] { 40 });
        var plain = Run(false, h, w, b, labels, 16);
        var fused = Run(true, h, w, b, labels, 16, ScalarType.BFloat16);
        Assert.Equal(ScalarType.Float32, fused.GradW.dtype);
        Assert.Equal(ScalarType.Float32, fused.GradH.dtype);
        Close(plain.Loss, fused.Loss, 0.05, "bf16 loss");
        double scale = plain.GradW.abs().max().item<float>();
        Close(plain.GradW, fused.GradW, 0.05 * scale, "bf16 d loss / d W");
        // Against the textbook loss over the same bf16 logits (softmax and loss in fp32): the fused loss multiplies
        // bf16-rounded exponentials, which must cost no more than bf16's own rounding.
        var plainBf16 = Run(false, h, w, b, labels, 16, ScalarType.BFloat16);
        Close(plainBf16.Loss, fused.Loss, 2e-3 * plainBf16.Loss.item<float>(), "bf16 loss vs textbook bf16");
        Close(plainBf16.GradW, fused.GradW, 0.01 * scale, "bf16 d loss / d W vs textbook bf16");
        Close(plainBf16.GradH, fused.GradH, 0.01 * plainBf16.GradH.abs().max().item<float>(), "bf16 d loss / d h vs textbook bf16");
    }

    [Fact]
    public void WithoutGradientsOrLabelsItIsThePlainLoss()
    {
        manual_seed(13);
        using var h = randn(5, 8);
        using var w = randn(10, 8);
        using var b = zeros(10);
        using var labels = tensor(new long[] { 1, 2, 3, 4, 5 });
        using var expected = FusedLinearCrossEntropy.Plain(h, w, b, labels);
        using (no_grad())
        {
            using var l = FusedLinearCrossEntropy.Loss(h, w, b, labels);
            Assert.Equal(expected.item<float>(), l.item<float>());
        }
        // Every row ignored: NaN, as cross_entropy with ignore_index gives.
        using var none = full(5, -100L);
        using var hg = h.clone().requires_grad_();
        Assert.True(float.IsNaN(FusedLinearCrossEntropy.Loss(hg, w, b, none).item<float>()));
    }

    [Fact]
    public void PretrainingLossEqualsTheLossOfTheForwardOutputs()
    {
        var (m, _) = ModelFolder.Load(TestPaths.TinyBert);
        using var model = (BertForPreTraining)m;
        model.eval();   // no dropout: both paths see the same activations
        using var ids = tensor(new long[] { 2, 40, 41, 4, 42, 3, 43, 44, 4, 3, 2, 50, 4, 51, 3, 52, 4, 53, 54, 3 }).view(2, 10);
        using var types = tensor(new long[] { 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1 }).view(2, 10);
        using var mask = ones(2, 10, dtype: ScalarType.Int64);
        using var positions = tensor(new long[] { 3, 8, 12, 16 });
        using var labels = tensor(new long[] { 60, 61, 62, 63 });
        using var nsp = tensor(new long[] { 0, 1 });

        model.zero_grad();
        using var o = model.Forward(ids, types, mask, positions);
        var (expected, expectedMlm, _) = BertForPreTraining.Loss(o.MlmLogits, labels, o.NspLogits!, nsp);
        expected.backward();
        var expectedGrads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());

        model.zero_grad();
        var (total, mlm, _) = model.PretrainingLoss(ids, types, mask, positions, labels, nsp);
        total.backward();
        Assert.Equal(expectedMlm.item<float>(), mlm.item<float>(), 1e-5);
        Assert.Equal(expected.item<float>(), total.item<float>(), 1e-5);
        foreach (var (name, p) in model.named_parameters())
            Close(expectedGrads[name], p.grad!, 1e-6, name);
    }
}
