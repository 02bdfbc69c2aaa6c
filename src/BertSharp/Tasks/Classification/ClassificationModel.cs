using System.Text;
using System.Text.Json.Nodes;
using BertSharp.Evaluation;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Tasks.Classification;

/// <summary>A predicted label with the probability of every label (softmax of the logits).</summary>
public sealed record ClassificationPrediction(string Label, double Probability, IReadOnlyDictionary<string, double> Probabilities) : TaskPrediction;

/// <summary>
/// Text or pair classification: BertForSequenceClassification ([CLS] pooled → linear), cross-entropy loss,
/// label names from config.json id2label. Metrics: accuracy (selects the best model), macro-F1, loss; the report
/// has per-class precision/recall/F1 and the confusion matrix.
/// </summary>
public sealed class ClassificationModel : TaskModel<ClassificationExample>
{
    public const string Task = "classify";

    public ClassificationModel(BertForSequenceClassification model, BertTokenizer tokenizer, int maxSeqLength) : base(model, tokenizer, maxSeqLength)
    {
        if (model.Config.NumLabels < 2) throw new BertSharpException($"classification needs at least 2 labels; the model has {model.Config.NumLabels}");
        labelIds = Labels.Select((l, i) => (l, i)).DistinctBy(x => x.l).ToDictionary(x => x.l, x => x.i);
    }

    private readonly Dictionary<string, int> labelIds;

    public IReadOnlyList<string> Labels => Config.Labels;

    /// <summary>config.json's record of whether the model was fine-tuned on text pairs.</summary>
    public const string PairsKey = "bertsharp_text_pairs";

    public override bool? TakesPairs => Config.Extra[PairsKey] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue(out bool b) ? b : null;
    public override string TaskName => Task;
    public override LabelKind LabelKind => LabelKind.Class;
    public override string SelectionMetric => "accuracy";
    public override IReadOnlyList<string> PlotMetrics => ["accuracy", "macro_f1"];

    /// <summary>Configures a model config for these labels (id2label/label2id, single-label problem, task name).</summary>
    public static void Configure(BertConfig c, IReadOnlyList<string> labels)
    {
        c.Labels = labels.ToList();
        c.ProblemType = "single_label_classification";
        c.Extra["bertsharp_task"] = Task;
    }

    public static ExampleSet<ClassificationExample> Read(string path, DataFileOptions o) => ClassificationData.Read(path, o);

    /// <summary>The classification family: labels from the training examples.</summary>
    public static TaskFamily<ClassificationExample> Family { get; } = new ClassificationFamily();

    sealed class ClassificationFamily : TaskFamily<ClassificationExample>
    {
        public override string Task => ClassificationModel.Task;
        public override string Architecture => "BertForSequenceClassification";
        public override string Description => "a classification model";
        public override Type ModelType => typeof(ClassificationModel);
        public override ExampleSet<ClassificationExample> Read(string path, DataFileOptions options) => ClassificationModel.Read(path, options);

        public override void Configure(BertConfig c, IReadOnlyList<ClassificationExample> train)
        {
            var labels = ClassificationData.LabelSet(train.Select(e => e.Label));
            if (labels.Count < 2) throw new BertSharpException($"the training data has {labels.Count} label{(labels.Count == 1 ? $" ('{labels[0]}')" : "s")}; classification needs at least 2");
            ClassificationModel.Configure(c, labels);
            c.Extra[PairsKey] = train.Any(e => e.Pair != null);
        }

        public override TaskModel<ClassificationExample> Create(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder) =>
            new ClassificationModel((BertForSequenceClassification)model, tokenizer, maxSeqLength ?? FolderMaxSeqLength(tokenizer, model.Config));
    }

    BertEncoding EncodeText(string text, string? pair) => Tokenizer.Encode(text, pair, MaxSeqLength);

    public override IReadOnlyList<Feature> Encode(IReadOnlyList<ClassificationExample> examples)
    {
        var features = new Feature[examples.Count];
        Parallel.For(0, examples.Count, i =>
        {
            var e = examples[i];
            var enc = EncodeText(e.Text, e.Pair);
            features[i] = new Feature
            {
                InputIds = enc.InputIds, TokenTypeIds = enc.TokenTypeIds, Example = i,
                Label = e.Label != null && labelIds.TryGetValue(e.Label, out int id) ? id : -1,
            };
        });
        return features;
    }

    public override BatchLoss Loss(Batch batch)
    {
        using var logits = Logits(batch);
        var loss = functional.cross_entropy(logits, batch["labels"], ignore_index: -100);
        return new BatchLoss(loss, new Dictionary<string, Tensor>());
    }

    /// <summary>Log-probabilities [N][labels] of the features, in feature order.</summary>
    float[][] LogProbabilities(IReadOnlyList<Feature> features)
    {
        var result = new float[features.Count][];
        int k = Config.NumLabels;
        Run(features, LabelKind, (idx, logits) =>
        {
            using var lp = functional.log_softmax(logits, -1);
            var flat = lp.data<float>().ToArray();
            for (int j = 0; j < idx.Length; j++) result[idx[j]] = flat.AsSpan(j * k, k).ToArray();
        });
        return result;
    }

    /// <summary>Predicts the label of each input (text, or text + pair).</summary>
    public IReadOnlyList<ClassificationPrediction> Predict(IReadOnlyList<(string Text, string? Pair)> inputs)
    {
        var features = new Feature[inputs.Count];
        Parallel.For(0, inputs.Count, i =>
        {
            var enc = EncodeText(inputs[i].Text, inputs[i].Pair);
            features[i] = new Feature { InputIds = enc.InputIds, TokenTypeIds = enc.TokenTypeIds, Example = i };
        });
        return LogProbabilities(features).Select(Decode).ToList();
    }

    public ClassificationPrediction Predict(string text, string? pair = null) => Predict([(text, pair)])[0];

    ClassificationPrediction Decode(float[] logProbs)
    {
        int best = 0;
        for (int c = 1; c < logProbs.Length; c++) if (logProbs[c] > logProbs[best]) best = c;
        var probs = new Dictionary<string, double>();
        for (int c = 0; c < logProbs.Length; c++) probs[Labels[c]] = Math.Exp(logProbs[c]);
        return new ClassificationPrediction(Labels[best], Math.Exp(logProbs[best]), probs);
    }

    public override DatasetScore Score(IReadOnlyList<ClassificationExample> examples, bool withPredictions = false)
    {
        var features = Encode(examples);
        var lp = LogProbabilities(features);
        var gold = new List<string>(examples.Count);
        var predicted = new List<string>(examples.Count);
        double lossSum = 0;
        int lossCount = 0, unknown = 0;
        List<JsonObject>? rows = withPredictions ? new() : null;
        for (int i = 0; i < examples.Count; i++)
        {
            var p = Decode(lp[i]);
            var e = examples[i];
            gold.Add(e.Label ?? "");
            predicted.Add(p.Label);
            if (features[i].Label >= 0) { lossSum -= lp[i][features[i].Label]; lossCount++; }
            else unknown++;
            if (rows != null)
            {
                var row = new JsonObject { ["text"] = e.Text };
                if (e.Pair != null) row["pair"] = e.Pair;
                row["label"] = e.Label;
                row["prediction"] = p.Label;
                row["probabilities"] = Probabilities(p);
                rows.Add(row);
            }
        }
        var report = ClassificationReport.Compute(gold, predicted, Labels);
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = lossCount == 0 ? 0 : lossSum / lossCount,
            ["accuracy"] = report.Accuracy,
            ["macro_f1"] = report.MacroF1,
        };
        var text = new StringBuilder();
        text.Append($"{examples.Count} examples: accuracy {report.Accuracy:P2}, macro-F1 {report.MacroF1:F4}\n");
        if (unknown > 0) text.Append($"{unknown} examples have labels the model does not know; they count as errors\n");
        text.Append('\n').Append(report.Format());
        return new DatasetScore(metrics, text.ToString(), rows);
    }

    static JsonObject Probabilities(ClassificationPrediction p) =>
        new(p.Probabilities.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 6))));

    public override DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false) =>
        WithNotes(Read(path, options), withPredictions);

    public override IReadOnlyList<TaskPrediction> Predict(IReadOnlyList<PredictInput> inputs) =>
        Predict(inputs.Select(i => (i.Text, i.Pair)).ToList());
}
