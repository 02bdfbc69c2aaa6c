using System.Globalization;
using System.Text.Json.Nodes;
using BertSharp.Evaluation;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;
using BertSharp.Training;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace BertSharp.Export;

/// <summary>A task metric computed from both engines' outputs on the same batches of a labelled file.</summary>
/// <param name="Metric">"accuracy", "subset accuracy" (multi-label), "pearson", "token accuracy", "span accuracy" or "spearman"</param>
/// <param name="Agreement">for predictions (classes, label sets, tags, spans): the share on which the engines agree</param>
public sealed record OnnxMetricComparison(string Data, string Metric, int Examples, double BertSharp, double OnnxRuntime, double? Agreement)
{
    public double Change => OnnxRuntime - BertSharp;

    public string Describe() => string.Format(CultureInfo.InvariantCulture,
        "{0} on {1} ({2} examples): BertSharp {3:F4}, ONNX Runtime {4:F4} (change {5:+0.0000;-0.0000;0.0000}){6}",
        Metric, Data, Examples, BertSharp, OnnxRuntime, Change, Agreement is double a ? $"; predictions agree on {a:P2}" : "");
}

/// <summary>ONNX Runtime against BertSharp's forward pass on the same inputs: the largest absolute difference of each
/// output (token outputs over real tokens only), and optionally a task metric on a labelled file.</summary>
public sealed record OnnxVerification
{
    /// <summary>The largest |ONNX Runtime − BertSharp| of each output.</summary>
    public required IReadOnlyDictionary<string, double> MaxAbsDifference { get; init; }
    /// <summary>How many input sequences were compared.</summary>
    public required int Sequences { get; init; }
    /// <summary>The agreement a float32 export must reach; null for int8, whose measure is <see cref="Metric"/>.</summary>
    public double? Tolerance { get; init; }
    public OnnxMetricComparison? Metric { get; init; }

    public double MaxDifference => MaxAbsDifference.Values.DefaultIfEmpty(0).Max();
    public bool WithinTolerance => Tolerance is not double t || MaxDifference <= t;

    public string Describe()
    {
        var s = string.Format(CultureInfo.InvariantCulture, "ONNX Runtime vs BertSharp on {0} sequences: max |difference| {1}{2}",
            Sequences, string.Join(", ", MaxAbsDifference.Select(kv => $"{kv.Key} {kv.Value:G3}")),
            Tolerance is double t ? (WithinTolerance ? $" (within {t:G1})" : $" — exceeds {t:G1}") : " (int8: compare the task metric)");
        return Metric is null ? s : s + "\n" + Metric.Describe();
    }

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["sequences"] = Sequences,
            ["max_abs_difference"] = new JsonObject(MaxAbsDifference.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["tolerance"] = Tolerance,
            ["within_tolerance"] = WithinTolerance,
        };
        if (Metric is { } m)
            o["metric"] = new JsonObject
            {
                ["data"] = m.Data, ["name"] = m.Metric, ["examples"] = m.Examples, ["bertsharp"] = m.BertSharp,
                ["onnxruntime"] = m.OnnxRuntime, ["change"] = m.Change, ["agreement"] = m.Agreement,
            };
        return o;
    }
}

/// <summary>An ONNX Runtime session over an exported model.onnx: int64 [B, L] inputs in, float32 outputs out.</summary>
public sealed class OnnxModelRunner : IDisposable
{
    readonly InferenceSession session;
    readonly RunOptions runOptions = new();
    readonly string[] outputNames;

    /// <param name="threads">ONNX Runtime's intra-op threads (null: its default, one per core)</param>
    /// <param name="graphOptimization">ONNX Runtime's graph rewriting when it loads the file (default: all, its own
    /// default, which includes its transformer fusions)</param>
    public OnnxModelRunner(string modelPath, int? threads = null, GraphOptimizationLevel graphOptimization = GraphOptimizationLevel.ORT_ENABLE_ALL)
    {
        try
        {
            using var options = new SessionOptions { GraphOptimizationLevel = graphOptimization };
            if (threads is int t) { options.IntraOpNumThreads = t; options.InterOpNumThreads = 1; }
            session = new InferenceSession(modelPath, options);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            throw new BertSharpException($"ONNX Runtime's native library could not be loaded ({e.GetBaseException().Message.Split('\n')[0]}); a program that runs ONNX models needs the Microsoft.ML.OnnxRuntime package (or .Gpu)", e);
        }
        catch (OnnxRuntimeException e)
        {
            throw new BertSharpException($"{modelPath}: ONNX Runtime cannot load it: {e.Message.Split('\n')[0]}", e);
        }
        outputNames = session.OutputMetadata.Keys.ToArray();
    }

    public IReadOnlyList<string> OutputNames => outputNames;

    /// <summary>Runs one padded batch; each output asked for (default: every output) as a flat float array with its shape.</summary>
    public Dictionary<string, (float[] Data, long[] Shape)> Run(long[] inputIds, long[] attentionMask, long[] tokenTypeIds, int batch, int length,
        IReadOnlyList<string>? outputs = null)
    {
        long[] shape = [batch, length];
        var names = outputs ?? outputNames;
        using var ids = OrtValue.CreateTensorValueFromMemory(inputIds, shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(attentionMask, shape);
        using var types = OrtValue.CreateTensorValueFromMemory(tokenTypeIds, shape);
        using var results = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], names);
        var values = new Dictionary<string, (float[], long[])>();
        int i = 0;
        foreach (var r in results)
            values[names[i++]] = (r.GetTensorDataAsSpan<float>().ToArray(), r.GetTensorTypeAndShape().Shape);
        return values;
    }

    /// <summary>Runs token sequences ([CLS] … [SEP]) padded to the longest of them (token types all 0 when
    /// <paramref name="tokenTypeIds"/> is null); each output asked for (default: every output) as a flat float array with its shape.</summary>
    public Dictionary<string, (float[] Data, long[] Shape)> Run(IReadOnlyList<int[]> inputIds, IReadOnlyList<int[]>? tokenTypeIds, int padId,
        IReadOnlyList<string>? outputs = null)
    {
        var p = Tasks.Batching.Pad(inputIds, tokenTypeIds, padId);
        return Run(p.InputIds, p.AttentionMask, p.TokenTypeIds, p.Batch, p.Length, outputs);
    }

    public void Dispose()
    {
        runOptions.Dispose();
        session.Dispose();
    }
}

/// <summary>Checks an exported file against the model it was exported from (<see cref="OnnxExportOptions.Verify"/>).</summary>
public static class OnnxVerifier
{
    /// <summary>The agreement of a float32 export: the 1e-4 (the float32 engines differ in summation order).</summary>
    public const double FloatTolerance = 1e-4;

    /// <summary>Runs both engines on sample batches (batch sizes 1, 3 and 8, padded lengths, text pairs) and, with
    /// <paramref name="dataFile"/>, on every example of that labelled file, scoring both with the task's metric.</summary>
    public static OnnxVerification Verify(TaskModel model, string modelPath, OnnxModelInfo info, string? dataFile = null, DataFileOptions? dataOptions = null, int? threads = null)
    {
        using var ort = new OnnxModelRunner(modelPath, threads);
        var diffs = info.Outputs.ToDictionary(o => o.Name, _ => 0.0);
        var tokenOutputs = info.Outputs.Where(o => o.Shape.Count > 1 && "sequence".Equals(o.Shape[1])).Select(o => o.Name).ToHashSet();
        int sequences = 0;
        void Compare(PaddedBatch b, Dictionary<string, float[]> reference, Dictionary<string, (float[] Data, long[] Shape)> onnx)
        {
            foreach (var (name, expected) in reference)
            {
                var actual = onnx[name].Data;
                if (actual.Length != expected.Length) throw new InvalidOperationException($"{name}: ONNX Runtime gave {actual.Length} values, BertSharp {expected.Length}");
                int perToken = tokenOutputs.Contains(name) ? expected.Length / (b.Batch * b.Length) : 0;
                double max = diffs[name];
                for (int k = 0; k < expected.Length; k++)
                    if (perToken == 0 || b.Mask[k / perToken] != 0) max = Math.Max(max, Math.Abs(actual[k] - expected[k]));
                diffs[name] = max;
            }
            sequences += b.Batch;
        }
        foreach (var b in SampleBatches(model))
            Compare(b, BertSharpOutputs(model, b), ort.Run(b.Ids, b.Mask, b.Types, b.Batch, b.Length));
        OnnxMetricComparison? metric = null;
        if (dataFile is not null) metric = Score(model, ort, dataFile, dataOptions ?? new(), Compare);
        return new OnnxVerification
        {
            MaxAbsDifference = diffs, Sequences = sequences, Metric = metric,
            Tolerance = info.Quantization is null ? FloatTolerance : null,
        };
    }

    /// <summary>A padded batch as flat [B, L] arrays.</summary>
    internal sealed record PaddedBatch(long[] Ids, long[] Mask, long[] Types, int Batch, int Length);

    /// <summary>Deterministic random token sequences: [CLS] tokens [SEP] (every other one a pair with a second
    /// segment), of different lengths in each batch, so that padding is exercised.</summary>
    internal static IEnumerable<PaddedBatch> SampleBatches(TaskModel model)
    {
        var rng = new Random(22);
        var tok = model.Tokenizer;
        int maxLength = Math.Min(model.MaxSeqLength, 40);
        foreach (int batch in new[] { 1, 3, 8 })
        {
            var lengths = Enumerable.Range(0, batch).Select(i => i == 0 ? maxLength : rng.Next(4, maxLength + 1)).ToArray();
            int L = lengths.Max();
            var ids = new long[batch * L];
            var mask = new long[batch * L];
            var types = new long[batch * L];
            Array.Fill(ids, tok.PadId);
            for (int b = 0; b < batch; b++)
            {
                int n = lengths[b], firstSep = b % 2 == 1 ? n / 2 : n - 1;
                for (int t = 0; t < n; t++)
                {
                    long id = t == 0 ? tok.ClsId : t == firstSep || t == n - 1 ? tok.SepId : NonSpecial(rng, model);
                    ids[b * L + t] = id;
                    mask[b * L + t] = 1;
                    types[b * L + t] = t > firstSep ? 1 : 0;
                }
            }
            yield return new PaddedBatch(ids, mask, types, batch, L);
        }
    }

    static long NonSpecial(Random rng, TaskModel model)
    {
        while (true)
        {
            int id = rng.Next(model.Config.VocabSize);
            if (!model.Tokenizer.IsSpecialId(id)) return id;
        }
    }

    /// <summary>BertSharp's forward pass on a batch, named as the exported outputs (evaluation mode, no gradients).</summary>
    internal static Dictionary<string, float[]> BertSharpOutputs(TaskModel model, PaddedBatch b)
    {
        var device = model.Device;
        using var scope = NewDisposeScope();
        var ids = tensor(b.Ids, [b.Batch, b.Length], device: device);
        var mask = tensor(b.Mask, [b.Batch, b.Length], device: device);
        var types = tensor(b.Types, [b.Batch, b.Length], device: device);
        return BertSharpOutputs(model, ids, mask, types);
    }

    internal static Dictionary<string, float[]> BertSharpOutputs(TaskModel model, Tensor ids, Tensor mask, Tensor types)
    {
        bool wasTraining = model.Model.training;
        model.Model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var result = new Dictionary<string, Tensor>();
            switch (model.Model)
            {
                case BertForSequenceClassification s:
                    result["logits"] = s.Forward(ids, types, mask);
                    if (model is ClassificationModel c) result["probabilities"] = c.Probabilities(result["logits"].to(ScalarType.Float32));
                    break;
                case BertForTokenClassification t:
                    result["logits"] = t.Forward(ids, types, mask);
                    break;
                case BertForQuestionAnswering q:
                    (result["start_logits"], result["end_logits"]) = q.Forward(ids, types, mask);
                    break;
                case BertForEmbedding e:
                    result["token_embeddings"] = e.Forward(ids, types, mask);
                    result["sentence_embedding"] = ((EmbeddingModel)model).Embed(ids, types, mask);
                    break;
                default:
                    throw new InvalidOperationException($"{model.Model.Architecture} has no exported outputs");
            }
            return result.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray());
        }
        finally
        {
            if (wasTraining) model.Model.train();
        }
    }

    // ---- the task metric on a labelled file ----

    static (IReadOnlyList<Feature> Features, LabelKind Kind) Features<T>(TaskModel<T> model, TaskFamily family, string path, DataFileOptions options) =>
        (model.Encode(((TaskFamily<T>)family).Read(path, options).Examples), model.LabelKind);

    static OnnxMetricComparison Score(TaskModel model, OnnxModelRunner ort, string path, DataFileOptions options,
        Action<PaddedBatch, Dictionary<string, float[]>, Dictionary<string, (float[] Data, long[] Shape)>> compare)
    {
        var family = TaskFamily.Named(model.TaskName);
        var (features, kind) = model switch
        {
            ClassificationModel m => Features(m, family, path, options with { MultiLabel = m.MultiLabel }),
            SimilarityModel m => Features(m, family, path, options),
            TaggingModel m => Features(m, family, path, options),
            QuestionAnsweringModel m => Features(m, family, path, options with { Split = DataSplit.Test }),   // as its EvaluateFile reads
            EmbeddingModel m => Features(m, family, path, options),
            _ => throw new InvalidOperationException(model.TaskName),
        };
        if (features.Count == 0) throw new BertSharpException($"{path}: no examples to verify on") { Parameters = ["verifyData"] };
        var metric = new MetricAccumulator(kind, (model as ClassificationModel)?.Threshold ?? 0);
        foreach (var idx in Batching.EvalOrder(features.Select(f => f.Length).ToList(), 32))
        {
            using var scope = NewDisposeScope();
            var items = idx.Select(i => features[i]).ToList();
            using var batch = Batching.Collate(items, model.Tokenizer.PadId, kind, device: CPU);
            foreach (var suffix in kind == LabelKind.Texts ? new[] { "", "_1" } : [""])
            {
                var b = new PaddedBatch(batch["input_ids" + suffix].data<long>().ToArray(), batch["attention_mask" + suffix].data<long>().ToArray(),
                    batch["token_type_ids" + suffix].data<long>().ToArray(), items.Count, (int)batch["input_ids" + suffix].shape[1]);
                var reference = BertSharpOutputs(model, b);
                var onnx = ort.Run(b.Ids, b.Mask, b.Types, b.Batch, b.Length);
                compare(b, reference, onnx);
                metric.Add(batch, items, b, suffix, reference, onnx.ToDictionary(kv => kv.Key, kv => kv.Value.Data));
            }
        }
        var (name, bs, ox, agreement) = metric.Result();
        return new OnnxMetricComparison(path, name, features.Count, bs, ox, agreement);
    }

    /// <summary>The metric of a label kind, for both engines at once; multi-label sets are read from the probabilities
    /// at <paramref name="threshold"/>.</summary>
    sealed class MetricAccumulator(LabelKind kind, double threshold)
    {
        long total, agree;
        readonly long[] correct = new long[2];
        readonly List<double> gold = [];
        readonly List<double>[] predicted = [[], []];
        readonly Dictionary<int, float[]>[] anchors = [[], []], positives = [[], []];
        readonly Dictionary<int, double> scores = [];

        static int ArgMax(float[] v, int offset, int count, Func<int, bool>? allowed = null)
        {
            int best = -1;
            for (int k = 0; k < count; k++)
                if ((allowed is null || allowed(k)) && (best < 0 || v[offset + k] > v[offset + best])) best = k;
            return best;
        }

        public void Add(Batch batch, IReadOnlyList<Feature> items, PaddedBatch b, string suffix, Dictionary<string, float[]> reference, Dictionary<string, float[]> onnx)
        {
            var engines = new[] { reference, onnx };
            int B = b.Batch, L = b.Length;
            switch (kind)
            {
                case LabelKind.Class:
                {
                    var labels = batch["labels"].data<long>().ToArray();
                    int C = reference["logits"].Length / B;
                    for (int i = 0; i < B; i++)
                    {
                        if (labels[i] < 0) continue;
                        var p = engines.Select(e => ArgMax(e["logits"], i * C, C)).ToArray();
                        Count(p, (int)labels[i]);
                    }
                    break;
                }
                case LabelKind.MultiLabel:
                {
                    var labels = batch["labels"].data<float>().ToArray();
                    int C = reference["probabilities"].Length / B;
                    for (int i = 0; i < B; i++)
                    {
                        var sets = engines.Select(e => Enumerable.Range(0, C).Select(c => e["probabilities"][i * C + c] >= threshold)).ToArray();
                        var gold = Enumerable.Range(0, C).Select(c => labels[i * C + c] > 0);
                        total++;
                        if (sets[0].SequenceEqual(sets[1])) agree++;
                        for (int e = 0; e < 2; e++) if (sets[e].SequenceEqual(gold)) correct[e]++;
                    }
                    break;
                }
                case LabelKind.Score:
                {
                    var labels = batch["labels"].data<float>().ToArray();
                    for (int i = 0; i < B; i++)
                    {
                        gold.Add(labels[i]);
                        for (int e = 0; e < 2; e++) predicted[e].Add(engines[e]["logits"][i]);
                    }
                    break;
                }
                case LabelKind.Token:
                {
                    var labels = batch["labels"].data<long>().ToArray();
                    int C = reference["logits"].Length / (B * L);
                    for (int t = 0; t < B * L; t++)
                    {
                        if (labels[t] < 0) continue;
                        var p = engines.Select(e => ArgMax(e["logits"], t * C, C)).ToArray();
                        Count(p, (int)labels[t]);
                    }
                    break;
                }
                case LabelKind.Span:
                {
                    var starts = batch["start_positions"].data<long>().ToArray();
                    var ends = batch["end_positions"].data<long>().ToArray();
                    for (int i = 0; i < B; i++)
                    {
                        bool Real(int t) => b.Mask[i * L + t] != 0;
                        // a span is right when both its ends are: encode it as one number per engine
                        var p = engines.Select(e => ArgMax(e["start_logits"], i * L, L, Real) * L + ArgMax(e["end_logits"], i * L, L, Real)).ToArray();
                        Count(p, (int)(starts[i] * L + ends[i]));
                    }
                    break;
                }
                case LabelKind.Texts:
                {
                    var labels = batch["labels"].data<float>().ToArray();
                    int D = reference["sentence_embedding"].Length / B;
                    for (int i = 0; i < B; i++)
                    {
                        int example = items[i].Example;
                        scores[example] = labels[i];
                        for (int e = 0; e < 2; e++)
                            (suffix == "" ? anchors : positives)[e][example] = engines[e]["sentence_embedding"].AsSpan(i * D, D).ToArray();
                    }
                    break;
                }
            }
        }

        void Count(int[] p, int label)
        {
            total++;
            if (p[0] == p[1]) agree++;
            for (int e = 0; e < 2; e++) if (p[e] == label) correct[e]++;
        }

        public (string Name, double BertSharp, double OnnxRuntime, double? Agreement) Result()
        {
            double Share(long n) => total == 0 ? 0 : n / (double)total;
            switch (kind)
            {
                case LabelKind.Score:
                    return ("pearson", Metrics.Pearson(gold.ToArray(), predicted[0].ToArray()), Metrics.Pearson(gold.ToArray(), predicted[1].ToArray()), null);
                case LabelKind.Texts:
                {
                    var keys = anchors[0].Keys.Order().ToArray();
                    bool scored = keys.Select(k => scores[k]).Distinct().Count() > 1;
                    var values = new double[2];
                    for (int e = 0; e < 2; e++)
                    {
                        var cos = keys.Select(k => EmbeddingModel.Cosine(anchors[e][k], positives[e][k])).ToArray();
                        if (scored) values[e] = Metrics.Spearman(keys.Select(k => scores[k]).ToArray(), cos);
                        else
                        {
                            // retrieval: is each anchor's own positive the nearest of all positives?
                            int hits = keys.Count(k => keys.All(j => j == k || EmbeddingModel.Cosine(anchors[e][k], positives[e][j]) < cos[Array.IndexOf(keys, k)]));
                            values[e] = hits / (double)keys.Length;
                        }
                    }
                    return (scored ? "spearman" : "retrieval accuracy", values[0], values[1], null);
                }
                default:
                    string name = kind switch { LabelKind.Class => "accuracy", LabelKind.MultiLabel => "subset accuracy", LabelKind.Token => "token accuracy", _ => "span accuracy" };
                    return (name, Share(correct[0]), Share(correct[1]), Share(agree));
            }
        }
    }
}
