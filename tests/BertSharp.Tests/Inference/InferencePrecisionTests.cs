using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using static TorchSharp.torch;

namespace BertSharp.Tests.Inference;

/// <summary>A bfloat16 model loaded to predict keeps its Linear weights in bfloat16 instead of casting them for
/// every product, and computes exactly what the training model's per-product casts compute.</summary>
public class InferencePrecisionTests
{
    static long[] Ids => [2, 17, 25, 33, 41, 3, 0, 0, 2, 9, 11, 3, 0, 0, 0, 0];

    static float[] LastHiddenState(BertWithHead model)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(Ids, [2, 8]);
        var mask = ids.ne(0).to(ScalarType.Int64);
        var hidden = ((BertForEmbedding)model).Forward(ids, zeros_like(ids), mask);   // [2, 8, H]
        return hidden.to(ScalarType.Float32).data<float>().ToArray();
    }

    [Fact]
    public void Bf16InferenceWeightsAreStoredOnceAndGiveTheSameOutputs()
    {
        var (training, _) = ModelFolder.Load(TestPaths.TinyBert, "BertModel", compute: ComputeOptions.ForPrecision("bf16"));
        var (inference, _) = ModelFolder.Load(TestPaths.TinyBert, "BertModel", compute: ComputeOptions.ForInference("bf16"));
        using (training)
        using (inference)
        {
            var linears = inference.named_parameters().Where(p => !p.name.Contains("LayerNorm") && !p.name.Contains("embeddings")).ToList();
            Assert.NotEmpty(linears);
            Assert.All(linears, p => Assert.Equal(ScalarType.BFloat16, p.parameter.dtype));
            Assert.All(training.named_parameters(), p => Assert.Equal(ScalarType.Float32, p.parameter.dtype));
            Assert.All(inference.named_parameters().Where(p => p.name.Contains("LayerNorm") || p.name.Contains("embeddings")),
                p => Assert.Equal(ScalarType.Float32, p.parameter.dtype));
            Assert.Equal(LastHiddenState(training), LastHiddenState(inference));
        }
    }

    [Fact]
    public void Fp32InferenceLoadingChangesNothing()
    {
        var (inference, _) = ModelFolder.Load(TestPaths.TinyBert, "BertModel", compute: ComputeOptions.ForInference("fp32"));
        using (inference)
            Assert.All(inference.named_parameters(), p => Assert.Equal(ScalarType.Float32, p.parameter.dtype));
    }

    [Fact]
    public void TheEncoderLoadsBf16ForInference()
    {
        using var bf16 = SentenceEncoder.Load(TestPaths.TinyBert, new SentenceEncoderOptions { Precision = "bf16" });
        using var fp32 = SentenceEncoder.Load(TestPaths.TinyBert);
        var (a, b) = (bf16.Encode("one word of the day"), fp32.Encode("one word of the day"));
        for (int k = 0; k < a.Length; k++) Assert.Equal(b[k], a[k], 0.05);
    }
}
