using BertSharp.Inference;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tests.Tasks;

namespace BertSharp.Tests.Inference;

/// <summary>The "onnxruntime" engine answers what the libtorch forward answers.</summary>
[Collection(SerialCollection.Name)] // the classifier's seeded fine-tuning run
public class InferenceEngineTests
{
    static readonly string[] Texts = ["the day", "one word of the day is long", "", "what"];

    [Fact]
    public void EmbeddingsMatchLibtorchWithin1e5()
    {
        using var torch = SentenceEncoder.Load(TestPaths.TinyBert, new SentenceEncoderOptions { BatchSize = 3 });
        using var onnx = SentenceEncoder.Load(TestPaths.TinyBert, new SentenceEncoderOptions { BatchSize = 3, Engine = InferenceEngine.OnnxRuntime });
        var (a, b) = (torch.Encode(Texts), onnx.Encode(Texts));
        for (int i = 0; i < Texts.Length; i++)
            for (int k = 0; k < a[i].Length; k++) Assert.Equal(a[i][k], b[i][k], 1e-5);
    }

    [Fact]
    public void ClassifierProbabilitiesMatchLibtorchAndBadEnginesAreRefused()
    {
        var dir = TestPaths.TempDir("engine-classifier");
        CliFineTuneTests.WriteClassification(dir);
        var run = Path.Combine(dir, "run");
        FineTuneRun.Run(new FineTuneOptions { Task = "classify", Model = TestPaths.TinyBert, Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"), Output = run, MaxSteps = 2, Seed = 3, Threads = 1 });
        using var torch = FineTunedModel.Load<ClassificationModel>(run);
        using var onnx = FineTunedModel.Load<ClassificationModel>(run, new LoadOptions { Engine = InferenceEngine.OnnxRuntime });
        var pairs = new (string, string?)[] { ("the word is", "it was"), ("one", "two words of the day") };
        var (a, b) = (torch.Predict(pairs), onnx.Predict(pairs));
        for (int i = 0; i < pairs.Length; i++)
        {
            Assert.Equal(a[i].Label, b[i].Label);
            foreach (var (label, p) in a[i].Probabilities) Assert.Equal(p, b[i].Probabilities[label], 1e-5);
        }
        var e = Assert.Throws<BertSharpException>(() => FineTunedModel.Load<ClassificationModel>(run, new LoadOptions { Engine = "tensorrt" }));
        Assert.Equal("engine 'tensorrt': choose torch, onnxruntime or auto", e.Message);
        e = Assert.Throws<BertSharpException>(() => FineTunedModel.Load<ClassificationModel>(run, new LoadOptions { Engine = InferenceEngine.OnnxRuntime, Precision = "bf16" }));
        Assert.Equal("engine onnxruntime computes in float32; precision bf16 is for the torch engine", e.Message);
    }
}
