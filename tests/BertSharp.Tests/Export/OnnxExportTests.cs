using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;
using BertSharp.Tokenization;
using Microsoft.ML.OnnxRuntime;
using static BertSharp.Tests.Cli.CliRunner;
using static TorchSharp.torch;

namespace BertSharp.Tests.Export;

/// <summary>Task folders made from the tiny fixture, every weight (biases and LayerNorms included) moved off its
/// initial value by seeded noise, so that a weight the graph leaves out or misplaces shows in the outputs.</summary>
internal static class TinyTaskFolders
{
    static readonly Dictionary<string, string> Architectures = new()
    {
        ["classify"] = "BertForSequenceClassification", ["similarity"] = "BertForSequenceClassification",
        ["tag"] = "BertForTokenClassification", ["qa"] = "BertForQuestionAnswering", ["embed"] = "BertModel",
    };

    /// <param name="threshold">with <paramref name="multiLabel"/>: the decision threshold the folder records</param>
    public static string Make(string task, string hiddenAct = "gelu", SentenceEmbeddingSettings? embedding = null, int seed = 1, bool multiLabel = false, double? threshold = null)
    {
        var family = TaskFamily.Named(task);
        void Configure(BertConfig c)
        {
            c.HiddenAct = hiddenAct;
            switch (task)
            {
                case "classify": ClassificationModel.Configure(c, ["yes", "no", "maybe"], multiLabel); break;
                case "similarity": SimilarityModel.Configure(c); break;
                case "tag": TaggingModel.Configure(c, ["O", "B-NP", "I-NP", "B-VP"]); break;
                case "embed": EmbeddingModel.Configure(c); break;
            }
        }
        var (model, _) = ModelFolder.Load(TestPaths.TinyBert, Architectures[task], Configure, newHead: true);
        var gen = new TorchSharp.torch.Generator((ulong)seed);
        using (no_grad())
            foreach (var (_, p) in model.named_parameters())
                p.add_(randn(p.shape, generator: gen).mul_(0.1));
        var tiny = BertTokenizer.FromFolder(TestPaths.TinyBert);
        var tokenizer = new BertTokenizer(tiny.Vocabulary, tiny.Options with { ModelMaxLength = 64 });   // as a fine-tuning run saves it
        using var taskModel = family.Wrap(model, tokenizer, 64, null);
        if (taskModel is EmbeddingModel e && embedding is not null) e.Settings = embedding;
        if (taskModel is ClassificationModel classifier && threshold is double t) classifier.Threshold = t;
        string dir = TestPaths.TempDir(task);
        taskModel.Save(dir);
        return dir;
    }

    /// <summary>Padded batches of real text: one text alone, then pairs and singles of different lengths.</summary>
    public static IEnumerable<(long[] Ids, long[] Mask, long[] Types, int B, int L)> Batches(BertTokenizer tok)
    {
        string[][] batches =
        [
            ["the cat sat on the mat"],
            ["a short one", "this sentence is quite a bit longer than the first one of the batch|and it has a pair"],
            ["one", "two words|a pair", "the of and to in is it you that he was for on are with as his they be at", "what|but not", "x y z"],
        ];
        foreach (var texts in batches)
        {
            var encodings = texts.Select(t => t.Split('|')).Select(p => tok.Encode(p[0], p.Length > 1 ? p[1] : null, 64)).ToList();
            var t = Batching.PaddedInputs(encodings.Select(e => e.InputIds).ToList(), encodings.Select(e => e.TokenTypeIds).ToList(), tok.PadId, out int L);
            yield return (t["input_ids"].data<long>().ToArray(), t["attention_mask"].data<long>().ToArray(), t["token_type_ids"].data<long>().ToArray(), texts.Length, L);
            foreach (var v in t.Values) v.Dispose();
        }
    }
}

// Loading and initialising models draws from libtorch's process-global generator, which would shift the seeded runs of
// tests in parallel (a seeded fine-tuning test failed that way); these run alone.
[Collection(SerialCollection.Name)]
public class OnnxExportTests
{
    /// <summary>ONNX Runtime's API directly (not the library's runner): every output of one padded batch.</summary>
    internal static Dictionary<string, (float[] Data, long[] Shape)> RunOnnx(InferenceSession session, (long[] Ids, long[] Mask, long[] Types, int B, int L) b)
    {
        long[] shape = [b.B, b.L];
        using var ids = OrtValue.CreateTensorValueFromMemory(b.Ids, shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(b.Mask, shape);
        using var types = OrtValue.CreateTensorValueFromMemory(b.Types, shape);
        var names = session.OutputMetadata.Keys.ToArray();
        using var results = session.Run(new RunOptions(), ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], names);
        return names.Zip(results).ToDictionary(x => x.First, x => (x.Second.GetTensorDataAsSpan<float>().ToArray(), x.Second.GetTensorTypeAndShape().Shape));
    }

    /// <summary>The largest difference of each output between ONNX Runtime on the exported file and BertSharp's forward
    /// pass on the source folder, over the sample batches; token outputs on real tokens only.</summary>
    static Dictionary<string, double> MaxDifferences(string modelDir, string onnxDir, string[] expectedOutputs)
    {
        using var model = FineTunedModel.Load(modelDir);
        using var session = new InferenceSession(Path.Combine(onnxDir, "model.onnx"));
        Assert.Equal(expectedOutputs.Order(), session.OutputMetadata.Keys.Order());
        var diffs = expectedOutputs.ToDictionary(n => n, _ => 0.0);
        foreach (var b in TinyTaskFolders.Batches(model.Tokenizer))
        {
            var reference = OnnxVerifier.BertSharpOutputs(model, new OnnxVerifier.PaddedBatch(b.Ids, b.Mask, b.Types, b.B, b.L));
            var onnx = RunOnnx(session, b);
            foreach (var name in expectedOutputs)
            {
                var (actual, shape) = onnx[name];
                var expected = reference[name];
                Assert.Equal(expected.Length, actual.Length);
                Assert.Equal(b.B, shape[0]);
                bool perToken = name is "token_embeddings" or "start_logits" or "end_logits" || (name == "logits" && shape.Length == 3);
                int stride = perToken ? expected.Length / (b.B * b.L) : 0;
                for (int k = 0; k < expected.Length; k++)
                    if (!perToken || b.Mask[k / stride] == 1) diffs[name] = Math.Max(diffs[name], Math.Abs(actual[k] - expected[k]));
            }
        }
        return diffs;
    }

    static readonly Dictionary<string, string[]> OutputsOf = new()
    {
        ["classify"] = ["logits", "probabilities"], ["similarity"] = ["logits"], ["tag"] = ["logits"],
        ["qa"] = ["start_logits", "end_logits"], ["embed"] = ["sentence_embedding", "token_embeddings"],
    };

    [Theory]
    [InlineData("classify", false)]
    [InlineData("classify", true)]
    [InlineData("similarity", false)]
    [InlineData("similarity", true)]
    [InlineData("tag", false)]
    [InlineData("tag", true)]
    [InlineData("qa", false)]
    [InlineData("qa", true)]
    [InlineData("embed", false)]
    [InlineData("embed", true)]
    public void EveryHeadMatchesBertSharpWithin1e4(string task, bool optimize)
    {
        var embedding = task == "embed" ? new SentenceEmbeddingSettings { Pooling = [PoolingMode.Mean], Normalize = true } : null;
        string dir = TinyTaskFolders.Make(task, embedding: embedding);
        string onnxDir = TestPaths.TempDir("onnx");
        var result = OnnxExport.Export(dir, onnxDir, new OnnxExportOptions { Optimize = optimize });
        Assert.Equal(task, result.Info.Task);
        var diffs = MaxDifferences(dir, onnxDir, OutputsOf[task]);
        Assert.All(diffs, kv => Assert.True(kv.Value < 1e-4, $"{task}{(optimize ? " --optimize" : "")}: {kv.Key} differs by {kv.Value}"));

        var ops = OnnxOps(result.ModelPath).Select(o => o.Op).ToList();
        if (optimize)
        {
            Assert.Contains("EmbedLayerNormalization", ops);
            Assert.Contains("Attention", ops);
            Assert.Contains("SkipLayerNormalization", ops);
            Assert.Contains("BiasGelu", ops);
            Assert.DoesNotContain("LayerNormalization", ops);
            Assert.DoesNotContain("Erf", ops);
        }
        else Assert.DoesNotContain(OnnxOps(result.ModelPath), o => o.Domain == OnnxGraph.MicrosoftDomain);
    }

    /// <summary>The operators of a model file, read back with ONNX's own protobuf classes.</summary>
    static List<(string Op, string Domain)> OnnxOps(string path)
    {
        var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        Assert.Contains(model.OpsetImport, o => o.Domain == "" && o.Version == 17);
        foreach (var input in model.Graph.Input)
        {
            Assert.Equal((int)Onnx.TensorProto.Types.DataType.Int64, input.Type.TensorType.ElemType);
            Assert.Equal(["batch", "sequence"], input.Type.TensorType.Shape.Dim.Select(d => d.DimParam));
        }
        Assert.Equal(["input_ids", "attention_mask", "token_type_ids"], model.Graph.Input.Select(i => i.Name));
        return model.Graph.Node.Select(n => (n.OpType, n.Domain)).ToList();
    }

    [Theory]
    [InlineData("gelu_new", false)]
    [InlineData("gelu_new", true)]
    [InlineData("relu", false)]
    [InlineData("relu", true)]
    [InlineData("tanh", true)]
    public void OtherActivationsMatchWithin1e4(string act, bool optimize)
    {
        string dir = TinyTaskFolders.Make("classify", act, seed: 2);
        string onnxDir = TestPaths.TempDir("onnx");
        var result = OnnxExport.Export(dir, onnxDir, new OnnxExportOptions { Optimize = optimize });
        Assert.All(MaxDifferences(dir, onnxDir, OutputsOf["classify"]), kv => Assert.True(kv.Value < 1e-4, $"{act}: {kv.Key} differs by {kv.Value}"));
        if (optimize && act == "gelu_new") Assert.Contains(("FastGelu", OnnxGraph.MicrosoftDomain), OnnxOps(result.ModelPath));
    }

    [Theory]
    [InlineData("cls", false, false)]
    [InlineData("max+mean", false, true)]
    [InlineData("mean-sqrt-len", true, false)]
    [InlineData("cls+max+mean+mean-sqrt-len", true, true)]
    public void EmbeddingPoolingIsBakedIn(string pooling, bool normalize, bool optimize)
    {
        var settings = new SentenceEmbeddingSettings { Pooling = pooling.Split('+').Select(SentenceEmbeddingSettings.ParseMode).ToList(), Normalize = normalize };
        string dir = TinyTaskFolders.Make("embed", embedding: settings, seed: 3);
        string onnxDir = TestPaths.TempDir("onnx");
        var result = OnnxExport.Export(dir, onnxDir, new OnnxExportOptions { Optimize = optimize });
        Assert.All(MaxDifferences(dir, onnxDir, OutputsOf["embed"]), kv => Assert.True(kv.Value < 1e-4, $"{pooling}: {kv.Key} differs by {kv.Value}"));
        var info = OnnxModelInfo.Load(onnxDir);
        Assert.Equal(settings.Pooling.Distinct().Order().Select(SentenceEmbeddingSettings.Name), info.Pooling!);
        Assert.Equal(normalize, info.Normalize);
        Assert.Equal([(object)"batch", 32L * settings.Pooling.Count], info.Outputs.Single(o => o.Name == "sentence_embedding").Shape);
        Assert.Equal(result.Info.Outputs.Count, info.Outputs.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Int8QuantizesTheEncoderLinearsAndStaysClose(bool optimize)
    {
        string dir = TinyTaskFolders.Make("classify", seed: 4);
        string onnxDir = TestPaths.TempDir("onnx");
        var result = OnnxExport.Export(dir, onnxDir, new OnnxExportOptions { Optimize = optimize, Quantize = "int8" });
        Assert.Equal("int8", result.Info.Quantization);
        var model = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(result.ModelPath));
        var quantized = model.Graph.Node.Where(n => n.OpType == "DynamicQuantizeMatMul").ToList();
        // per layer: Q, K, V (plain graph only: Attention takes float weights), attention output, intermediate, output; and the pooler
        Assert.Equal(2 * (optimize ? 3 : 6) + 1, quantized.Count);
        var weights = model.Graph.Initializer.ToDictionary(t => t.Name);
        Assert.All(quantized, n => Assert.Equal((int)Onnx.TensorProto.Types.DataType.Int8, weights[n.Input[1]].DataType));
        Assert.DoesNotContain(model.Graph.Initializer, t => t.Name == "bert.encoder.layer.0.output.dense.weight");
        Assert.Contains(model.Graph.Initializer, t => t.Name == "classifier.weight" && t.DataType == (int)Onnx.TensorProto.Types.DataType.Float);
        // int8 moves the outputs a little, not a lot
        var diffs = MaxDifferences(dir, onnxDir, OutputsOf["classify"]);
        Assert.True(diffs["probabilities"] < 0.05, $"probabilities differ by {diffs["probabilities"]}");
        Assert.True(diffs["logits"] > 1e-6, "int8 weights should change the logits a little");
    }

    [Fact]
    public void QuantizeColumnsIsSymmetricPerOutputColumn()
    {
        // [2, 3] (in, out): column maxima 0.5, 2, 0 (an all-zero column keeps scale 1)
        var (q, scale) = BertOnnxGraph.QuantizeColumns([0.5f, -2f, 0f, -0.25f, 1f, 0f], 2, 3);
        Assert.Equal([0.5f / 127, 2f / 127, 1f], scale);
        Assert.Equal(new sbyte[] { 127, -127, 0, -64, 64, 0 }, q);
    }

    [Fact]
    public void TheFolderHasTheTokenizerConfigAndADescriptionOfTheOutputs()
    {
        string dir = TinyTaskFolders.Make("classify", seed: 5);
        File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), "{\"cls_token\": \"[CLS]\"}");
        string onnxDir = TestPaths.TempDir("onnx");
        OnnxExport.Export(dir, onnxDir);
        foreach (var f in new[] { "model.onnx", "onnx_config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "config.json" })
            Assert.True(File.Exists(Path.Combine(onnxDir, f)), f);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "vocab.txt")), File.ReadAllBytes(Path.Combine(onnxDir, "vocab.txt")));
        var info = OnnxModelInfo.Load(onnxDir);
        Assert.Equal("classify", info.Task);
        Assert.Equal(["yes", "no", "maybe"], info.Labels);
        Assert.Equal(64, info.MaxSeqLength);
        Assert.Equal(["input_ids", "attention_mask", "token_type_ids"], info.Inputs.Select(i => i.Name));
        Assert.Equal([(object)"batch", 3L], info.Outputs.Single(o => o.Name == "probabilities").Shape);
        // the tokenizer reads the exported folder as it read the model folder
        var tok = BertTokenizer.FromFolder(onnxDir);
        Assert.Equal(BertTokenizer.FromFolder(dir).Encode("the cat sat", "on it", 64).InputIds, tok.Encode("the cat sat", "on it", 64).InputIds);
        using var session = new InferenceSession(Path.Combine(onnxDir, "model.onnx"));
        Assert.Equal("classify", session.ModelMetadata.CustomMetadataMap["bertsharp_task"]);
        Assert.Equal("[\"yes\",\"no\",\"maybe\"]", session.ModelMetadata.CustomMetadataMap["labels"]);
        Assert.Equal("BertSharp", session.ModelMetadata.ProducerName);
    }

    [Fact]
    public void VerifyReportsTheDifferenceAndTheMetricOnADevFile()
    {
        string dir = TinyTaskFolders.Make("classify", seed: 6);
        using var data = new TempDir();
        Tasks.CliFineTuneTests.WriteClassification(data.Path);
        string onnxDir = TestPaths.TempDir("onnx");
        var result = OnnxExport.Export(dir, onnxDir, new OnnxExportOptions { Verify = true, VerifyData = data.File("dev.tsv") });
        var v = result.Info.Verification!;
        Assert.True(v.WithinTolerance, v.Describe());
        Assert.Equal(1e-4, v.Tolerance);
        Assert.Equal(12 + 8, v.Sequences);                     // the sample batches (1 + 3 + 8) and the 8 dev pairs
        Assert.Equal("accuracy", v.Metric!.Metric);
        Assert.Equal(8, v.Metric.Examples);
        Assert.Equal(v.Metric.BertSharp, v.Metric.OnnxRuntime);
        Assert.Equal(1.0, v.Metric.Agreement);
        // BertSharp's side of the metric is what bert evaluate reports
        using var model = FineTunedModel.Load(dir);
        Assert.Equal(model.EvaluateFile(data.File("dev.tsv"), new DataFileOptions()).Metrics["accuracy"], v.Metric.BertSharp, 1e-9);
        using var written = JsonDocument.Parse(File.ReadAllText(Path.Combine(onnxDir, "onnx_config.json")));
        Assert.True(written.RootElement.GetProperty("verification").GetProperty("within_tolerance").GetBoolean());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AMultiLabelClassifierBakesASigmoidPerLabel(bool optimize)
    {
        string dir = TinyTaskFolders.Make("classify", seed: 11, multiLabel: true, threshold: 0.3);
        string onnxDir = TestPaths.TempDir("onnx");
        var result = OnnxExport.Export(dir, onnxDir, new OnnxExportOptions { Optimize = optimize });
        Assert.All(MaxDifferences(dir, onnxDir, OutputsOf["classify"]), kv => Assert.True(kv.Value < 1e-4, $"multi-label{(optimize ? " --optimize" : "")}: {kv.Key} differs by {kv.Value}"));
        var graph = Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(result.ModelPath)).Graph;
        Assert.Equal("Sigmoid", graph.Node.Single(n => n.Output.Contains("probabilities")).OpType);
        // each probability is the sigmoid of its own logit, not a share of a softmax over the labels
        using var session = new InferenceSession(result.ModelPath);
        foreach (var b in TinyTaskFolders.Batches(BertTokenizer.FromFolder(dir)))
        {
            var outputs = RunOnnx(session, b);
            var (logits, probabilities) = (outputs["logits"].Data, outputs["probabilities"].Data);
            for (int k = 0; k < logits.Length; k++) Assert.Equal(1 / (1 + Math.Exp(-logits[k])), probabilities[k], 1e-6);
        }
        var info = OnnxModelInfo.Load(onnxDir);
        Assert.Equal(0.3, info.Threshold);
        Assert.Equal("0.3", session.ModelMetadata.CustomMetadataMap["threshold"]);
        Assert.Equal("multi_label_classification", ModelFolder.ReadConfig(onnxDir).ProblemType);
        // a single-label classifier keeps its softmax and records no threshold
        var single = OnnxExport.Export(TinyTaskFolders.Make("classify", seed: 11), TestPaths.TempDir("onnx"));
        Assert.Equal("Softmax", Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(single.ModelPath)).Graph.Node.Single(n => n.Output.Contains("probabilities")).OpType);
        Assert.Null(OnnxModelInfo.Load(single.Folder).Threshold);
    }

    [Fact]
    public void VerifyDataScoresAMultiLabelClassifierBySubsetAccuracy()
    {
        string dir = TinyTaskFolders.Make("classify", seed: 12, multiLabel: true, threshold: 0.4);
        string[] texts = ["the cat sat", "one of the", "a word", "it was his", "they are not", "what is this", "the day", "from that"];
        using var data = new TempDir();
        string dev;
        using (var model = FineTunedModel.Load<ClassificationModel>(dir))
        {
            // gold: the model's own label set for the first half, another set for the rest → subset accuracy ½
            var predicted = model.Predict(texts.Select(t => (t, (string?)null)).ToList());
            dev = data.Write("dev.jsonl", string.Concat(texts.Select((t, i) =>
            {
                var labels = i < 4 ? predicted[i].Labels : model.Labels.Where(l => !predicted[i].Labels.Contains(l)).ToList();
                return JsonSerializer.Serialize(new { text = t, labels }) + "\n";
            })));
        }
        var result = OnnxExport.Export(dir, TestPaths.TempDir("onnx"), new OnnxExportOptions { Verify = true, VerifyData = dev });
        var v = result.Info.Verification!;
        Assert.True(v.WithinTolerance, v.Describe());
        Assert.Equal("subset accuracy", v.Metric!.Metric);
        Assert.Equal(8, v.Metric.Examples);
        Assert.Equal(0.5, v.Metric.BertSharp, 12);
        Assert.Equal(v.Metric.BertSharp, v.Metric.OnnxRuntime);
        Assert.Equal(1.0, v.Metric.Agreement);
        using var reloaded = FineTunedModel.Load(dir);
        Assert.Equal(0.5, reloaded.EvaluateFile(dev, new DataFileOptions()).Metrics["subset_accuracy"], 12);   // bert evaluate reads the lists by itself
    }

    static string DevFile(TempDir d, string task)
    {
        var r = new Random(9);
        string[] words = "the of and to in is it you that he was for on are with as his they be at one have this from".Split(' ');
        string Sentence(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => words[r.Next(words.Length)]));
        switch (task)
        {
            case "similarity" or "embed":
                return d.Write("sts-dev.csv", string.Concat(Enumerable.Range(0, 12).Select(i =>
                    $"main-captions\tMSRvid\t2012test\t{i:D4}\t{r.Next(0, 51) / 10.0:F3}\t{Sentence(4 + r.Next(5))}\t{Sentence(3 + r.Next(6))}\n")));
            case "tag":
                string[] tags = ["O", "B-NP", "I-NP", "B-VP"];
                return d.Write("dev.txt", "-DOCSTART- -X- O\n\n" + string.Concat(Enumerable.Range(0, 6).Select(_ =>
                    string.Concat(Enumerable.Range(0, 3 + r.Next(12)).Select(w => $"{words[r.Next(words.Length)]} XX {tags[r.Next(tags.Length)]}\n")) + "\n")));
            default:   // qa: SQuAD v1.1
                string[] colors = ["red", "blue", "green"], things = ["cat", "car", "cup"];
                var paragraphs = Enumerable.Range(0, 4).Select(p =>
                {
                    string context = string.Join(" ", things.Select((t, i) => $"The {t} is {colors[(i + p) % 3]}."));
                    var qas = things.Select((t, i) => new System.Text.Json.Nodes.JsonObject
                    {
                        ["id"] = $"q{p}{i}", ["question"] = $"What is the {t}?",
                        ["answers"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
                            { ["text"] = colors[(i + p) % 3], ["answer_start"] = context.IndexOf($"{t} is ", StringComparison.Ordinal) + t.Length + 4 }),
                    }).ToArray();
                    return (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject { ["context"] = context, ["qas"] = new System.Text.Json.Nodes.JsonArray(qas) };
                }).ToArray();
                var doc = new System.Text.Json.Nodes.JsonObject
                {
                    ["version"] = "1.1",
                    ["data"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["title"] = "A", ["paragraphs"] = new System.Text.Json.Nodes.JsonArray(paragraphs) }),
                };
                return d.Write("dev.json", doc.ToJsonString());
        }
    }

    [Theory]
    [InlineData("similarity", "pearson", 12)]
    [InlineData("tag", "token accuracy", 6)]
    [InlineData("qa", "span accuracy", 12)]
    [InlineData("embed", "spearman", 12)]
    public void VerifyDataScoresEveryTaskAlikeInBothEngines(string task, string metric, int examples)
    {
        string dir = TinyTaskFolders.Make(task, seed: 10);
        using var data = new TempDir();
        var result = OnnxExport.Export(dir, TestPaths.TempDir("onnx"), new OnnxExportOptions { Optimize = true, Verify = true, VerifyData = DevFile(data, task) });
        var v = result.Info.Verification!;
        Assert.True(v.WithinTolerance, v.Describe());
        Assert.Equal(metric, v.Metric!.Metric);
        Assert.Equal(examples, v.Metric.Examples);
        Assert.Equal(v.Metric.BertSharp, v.Metric.OnnxRuntime, 1e-6);
        if (v.Metric.Agreement is double agreement) Assert.Equal(1.0, agreement);
    }

    [Fact]
    public void UnsupportedPositionEmbeddingsAreAOneLineError()
    {
        string dir = TinyTaskFolders.Make("classify", seed: 7);
        string config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"position_embedding_type\": \"absolute\"", "\"position_embedding_type\": \"relative_key\""));
        var e = Assert.Throws<BertSharpException>(() => OnnxExport.Export(dir, TestPaths.TempDir("onnx")));
        Assert.Equal($"{config}: cannot export to ONNX: position_embedding_type 'relative_key' is not supported (supported: absolute)", e.Message);
        var (code, _, err) = Run("export", "onnx", dir, "--output", TestPaths.TempDir("onnx"));
        Assert.Equal(1, code);
        Assert.Equal($"error: {e.Message}", err.Trim());
    }

    [Fact]
    public void AnActivationTheGraphCannotExpressIsAOneLineError()
    {
        var config = ModelFolder.ReadConfig(TestPaths.TinyBert);
        config.HiddenAct = "silu";
        var e = Assert.Throws<BertSharpException>(() => OnnxExport.CheckExportable(config, "x/config.json"));
        Assert.Equal("x/config.json: cannot export to ONNX: hidden_act 'silu' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, tanh)", e.Message);
        // in a folder, config.json itself refuses it first, naming the same field
        string dir = TestPaths.CopyOf(TestPaths.TinyBert);
        string path = Path.Combine(dir, "config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"silu\""));
        var (code, _, err) = Run("export", "onnx", dir, "--output", TestPaths.TempDir("onnx"), "--task", "embed");
        Assert.Equal(1, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("hidden_act 'silu' is not supported", err);
    }

    [Fact]
    public void APreTrainingFolderExportsItsEncoderOnlyAsAnEmbedding()
    {
        var (code, _, err) = Run("export", "onnx", TestPaths.TinyBert, "--output", TestPaths.TempDir("onnx"));
        Assert.Equal(1, code);
        Assert.Contains("holds BertForPreTraining, which has no head to export; export its encoder with --task embed", err);
        string onnxDir = TestPaths.TempDir("onnx");
        (code, var stdout, err) = Run("export", "onnx", TestPaths.TinyBert, "--output", onnxDir, "--task", "embed", "--optimize", "--verify", "--json");
        Assert.True(code == 0, err);
        Assert.Contains("(within 0.0001)", err);
        var info = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("embed", info.GetProperty("task").GetString());
        Assert.Equal("mean", info.GetProperty("pooling")[0].GetString());
        Assert.False(info.GetProperty("normalize").GetBoolean());
    }

    [Fact]
    public void TheOutputFolderCannotBeTheModelFolder()
    {
        string dir = TinyTaskFolders.Make("similarity", seed: 8);
        var (code, _, err) = Run("export", "onnx", dir, "--output", dir);
        Assert.Equal(1, code);
        Assert.Contains("is the model folder itself", err);
        (code, _, err) = Run("export", "onnx", dir, "--output", TestPaths.TempDir("onnx"), "--quantize", "int4");
        Assert.Equal(1, code);
        Assert.Contains("--quantize 'int4': the supported quantization is int8", err);
    }
}

/// <summary>A Hub id exports as a folder does (the fake Hub of the Hub tests).</summary>
[Collection(SerialCollection.Name)]   // loads a model: the global generator (see OnnxExportTests)
public class OnnxExportHubTests
{
    [Fact]
    public void AHubIdIsFetchedThenExported()
    {
        using var hub = new Hub.FakeHub();
        hub.AddRepo(Hub.HubFixtures.TinyClassifier, Hub.HubFixtures.TinyClassifierFiles());
        var options = Hub.HubFixtures.Options(hub, TestPaths.TempDir("hub-cache"));
        string onnxDir = TestPaths.TempDir("onnx");
        var result = OnnxExport.Export(Hub.HubFixtures.TinyClassifier, onnxDir, new OnnxExportOptions { Hub = options, Verify = true });
        Assert.Equal("classify", result.Info.Task);
        Assert.True(result.Info.Verification!.WithinTolerance, result.Info.Verification.Describe());
        Assert.StartsWith(options.CacheDir, result.Info.Source);
        Assert.True(File.Exists(Path.Combine(onnxDir, "vocab.txt")));
    }
}
