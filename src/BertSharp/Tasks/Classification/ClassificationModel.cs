using System.Text;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Evaluation;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Tasks.Classification;

/// <summary>A classifier's prediction: the most probable label with its probability, the probability of every label,
/// and the predicted labels. Single-label: probabilities are the softmax of the logits and <see cref="Labels"/> is
/// [<see cref="Label"/>]. Multi-label: each probability is the sigmoid of its logit and <see cref="Labels"/> holds every
/// label whose probability reaches <see cref="Threshold"/>, most probable first (possibly none).</summary>
public sealed record ClassificationPrediction(string Label, double Probability, IReadOnlyDictionary<string, double> Probabilities) : TaskPrediction, IWindowedPrediction
{
    public IReadOnlyList<string> Labels { get; init; } = [Label];
    /// <summary>Multi-label: the decision threshold of <see cref="Labels"/>; null for a single-label classifier.</summary>
    public double? Threshold { get; init; }
    public bool MultiLabel => Threshold is not null;
    public int Windows { get; init; } = 1;
    public int TruncatedTokens { get; init; }
}

/// <summary>
/// Text or pair classification: BertForSequenceClassification ([CLS] pooled → linear), label names from config.json
/// id2label, as in HF modeling_bert.py by problem_type:
/// <list type="bullet">
/// <item>single-label: cross-entropy loss, softmax probabilities. Metrics: accuracy (selects the best model), macro-F1,
/// loss; the report has per-class precision/recall/F1 and the confusion matrix.</item>
/// <item>multi-label (problem_type "multi_label_classification"): binary cross-entropy with logits against multi-hot
/// labels, a sigmoid per label, and the labels whose probability reaches <see cref="Threshold"/> predicted. Metrics:
/// micro-F1 (selects the best model), macro-F1, subset accuracy, loss; the report has per-label precision/recall/F1
/// (<see cref="MultiLabelReport"/>). Fine-tuning chooses the threshold on dev at each evaluation.</item>
/// </list>
/// <see cref="ClassWeights"/> weighs the labels in the training loss (<see cref="ClassWeighting"/>). An input longer than
/// the window is read in windows whose logits are combined before the softmax or sigmoid, or cut
/// (<see cref="WindowedTaskModel{TExample}.LongInputs"/>).
/// </summary>
public sealed class ClassificationModel : WindowedTaskModel<ClassificationExample>
{
    public const string Task = "classify";
    /// <summary>HF's problem_type of a multi-label classifier.</summary>
    public const string MultiLabelProblem = "multi_label_classification";
    /// <summary>config.json's record of a multi-label classifier's decision threshold.</summary>
    public const string ThresholdKey = "bertsharp_threshold";
    /// <summary>The threshold of a multi-label folder that records none (one fine-tuned with transformers).</summary>
    public const double DefaultThreshold = 0.5;

    public ClassificationModel(BertForSequenceClassification model, BertTokenizer tokenizer, int maxSeqLength) : base(model, tokenizer, maxSeqLength)
    {
        if (model.Config.NumLabels < 2) throw new BertSharpException($"classification needs at least 2 labels; the model has {model.Config.NumLabels}");
        labelIds = Labels.Select((l, i) => (l, i)).DistinctBy(x => x.l).ToDictionary(x => x.l, x => x.i);
    }

    private readonly Dictionary<string, int> labelIds;
    private IReadOnlyList<double>? classWeights;

    public IReadOnlyList<string> Labels => Config.Labels;

    /// <summary>Whether this is a multi-label classifier: config.json problem_type "multi_label_classification", as
    /// transformers writes it (a folder fine-tuned there predicts here as multi-label too).</summary>
    public bool MultiLabel => Config.ProblemType == MultiLabelProblem;

    /// <summary>Multi-label: the probability from which a label is predicted — config.json's bertsharp_threshold
    /// (chosen on dev by fine-tuning), else 0.5.</summary>
    public double Threshold
    {
        get => Config.Extra[ThresholdKey] is JsonValue v && v.TryGetValue(out double t) ? t : DefaultThreshold;
        set
        {
            if (!(value > 0 && value < 1)) throw new BertSharpException($"threshold must be between 0 and 1, got {value}") { Parameters = ["threshold"] };
            Config.Extra[ThresholdKey] = value;
        }
    }

    /// <summary>The weights of the labels in the training loss, by label id (<see cref="ClassWeighting"/>: the
    /// cross-entropy's class weights, or multi-label the pos_weight of each label); null: unweighted. Evaluation losses
    /// are unweighted, so that runs with and without weights compare.</summary>
    public IReadOnlyList<double>? ClassWeights
    {
        get => classWeights;
        set
        {
            if (value is not null && value.Count != Labels.Count)
                throw new ArgumentException($"{value.Count} class weights for {Labels.Count} labels");
            classWeights = value;
        }
    }

    /// <summary>config.json's record of whether the model was fine-tuned on text pairs.</summary>
    public const string PairsKey = "bertsharp_text_pairs";

    public override bool? TakesPairs => Config.Extra[PairsKey] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue(out bool b) ? b : null;
    public override string TaskName => Task;
    public override LabelKind LabelKind => MultiLabel ? LabelKind.MultiLabel : LabelKind.Class;
    public override string SelectionMetric => MultiLabel ? "micro_f1" : "accuracy";
    public override IReadOnlyList<string> PlotMetrics => MultiLabel ? ["micro_f1", "macro_f1"] : ["accuracy", "macro_f1"];
    public override IReadOnlyList<string> EvaluationMetrics => MultiLabel ? [.. base.EvaluationMetrics, "subset_accuracy"] : base.EvaluationMetrics;

    /// <summary>Configures a model config for these labels (id2label/label2id, the problem type, task name).</summary>
    public static void Configure(BertConfig c, IReadOnlyList<string> labels, bool multiLabel = false)
    {
        c.Labels = labels.ToList();
        c.ProblemType = multiLabel ? MultiLabelProblem : "single_label_classification";
        c.Extra.Remove(ThresholdKey);   // a new head's threshold and long-input settings are chosen anew
        c.Extra.Remove(LongInputSettings.ConfigKey);
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
        public override RunArgs<FineTuneOptions> RunArgs => FineTuneArgs.Classification;
        public override ExampleSet<ClassificationExample> Read(string path, DataFileOptions options) => ClassificationModel.Read(path, options);

        public override void Configure(BertConfig c, IReadOnlyList<ClassificationExample> train)
        {
            bool multiLabel = train.Any(e => e.Labels != null);
            var labels = ClassificationData.LabelSet(multiLabel ? train.SelectMany(e => e.Labels ?? []) : train.Select(e => e.Label));
            if (labels.Count < 2) throw new BertSharpException($"the training data has {labels.Count} label{(labels.Count == 1 ? $" ('{labels[0]}')" : "s")}; classification needs at least 2");
            ClassificationModel.Configure(c, labels, multiLabel);
            c.Extra[PairsKey] = train.Any(e => e.Pair != null);
        }

        public override TaskModel<ClassificationExample> Create(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder)
        {
            int folderLength = FolderMaxSeqLength(tokenizer, model.Config);
            var m = new ClassificationModel((BertForSequenceClassification)model, tokenizer, maxSeqLength ?? folderLength);
            if (maxSeqLength != folderLength) m.StrideFollowsLength();
            return m;
        }

        public override void Apply(TaskModel<ClassificationExample> model, FineTuneOptions options, IReadOnlyList<ClassificationExample> train)
        {
            var m = (ClassificationModel)model;
            m.ClassWeights = ClassWeighting.Resolve(options, train, m.Labels, m.MultiLabel);
            m.LongInputs = LongInputSettings.For(options);
        }

        public override FineTuneOptions Resolved(FineTuneOptions options, TaskModel<ClassificationExample> model)
        {
            var m = (ClassificationModel)model;
            options = m.LongInputs.Resolved(options, m.MaxSeqLength);
            return m.ClassWeights is { } w ? options with { ClassWeightValues = m.Labels.Zip(w).ToDictionary(x => x.First, x => x.Second) } : options;
        }
    }

    /// <summary>An example's gold labels: its set (multi-label), else its one label.</summary>
    static IReadOnlyList<string> GoldLabels(ClassificationExample e) => e.Labels ?? (e.Label is { } l ? [l] : []);

    /// <summary>The label id of a single-label example; -1 when it has none the model knows.</summary>
    long LabelId(ClassificationExample e) => !MultiLabel && e.Label != null && labelIds.TryGetValue(e.Label, out int id) ? id : -1;

    /// <summary>A multi-label example's labels as 1 (has it) or 0 per label id; null for a single-label classifier.</summary>
    float[]? Targets(ClassificationExample e)
    {
        if (!MultiLabel) return null;
        var targets = new float[Labels.Count];
        foreach (var l in GoldLabels(e)) if (labelIds.TryGetValue(l, out int c)) targets[c] = 1;
        return targets;
    }

    EncodedInputs EncodeExamples(IReadOnlyList<ClassificationExample> examples) =>
        EncodeInputs(examples.Count, i => (examples[i].Text, examples[i].Pair), (i, ids, types) => new Feature
        {
            InputIds = ids, TokenTypeIds = types, Example = i, Targets = Targets(examples[i]), Label = LabelId(examples[i]),
        });

    /// <summary>Training features: the windows of each example, each with the example's label.</summary>
    public override IReadOnlyList<Feature> Encode(IReadOnlyList<ClassificationExample> examples)
    {
        var encoded = EncodeExamples(examples);
        TrainingInputs = encoded.Counts;
        return encoded.Features;
    }

    protected override InputCounts EvaluationInputs(IReadOnlyList<ClassificationExample> examples) => EncodeExamples(examples).Counts;

    public override IEnumerable<string> EncodingNotes(IReadOnlyList<ClassificationExample> train, IReadOnlyList<Feature> features, IReadOnlyList<ClassificationExample> dev)
    {
        foreach (var n in base.EncodingNotes(train, features, dev)) yield return n;
        if (ClassWeights is { } w)
            yield return $"class weights ({(MultiLabel ? "pos_weight of each label in the binary cross-entropy" : "of each class in the cross-entropy")}): {ClassWeighting.Describe(w, Labels)}";
    }

    /// <summary>The loss of a batch on its inputs' logits (an input's windows combined): cross-entropy, or multi-label
    /// binary cross-entropy, with the class weights.</summary>
    public override BatchLoss Loss(Batch batch)
    {
        using var logits = InputLogits(batch);
        using var weights = ClassWeights is { } w ? tensor(w.Select(x => (float)x).ToArray(), device: logits.device) : null;
        var loss = MultiLabel
            ? functional.binary_cross_entropy_with_logits(logits, batch["labels"], pos_weights: weights)
            : functional.cross_entropy(logits, batch["labels"], weight: weights, ignore_index: -100);
        return new BatchLoss(loss, new Dictionary<string, Tensor>());
    }

    /// <summary>Per input, in input order: its log-probabilities (single-label) or its logits (multi-label), from its
    /// windows' combined logits.</summary>
    float[][] Outputs(EncodedInputs inputs)
    {
        int k = Config.NumLabels;
        using var logits = InputLogits(inputs);
        using var rows = MultiLabel ? logits.alias() : functional.log_softmax(logits, -1);
        var flat = rows.data<float>().ToArray();
        return Enumerable.Range(0, inputs.WindowsPerInput.Count).Select(i => flat.AsSpan(i * k, k).ToArray()).ToArray();
    }

    /// <summary>The probabilities of logits [B, C]: a softmax over the labels, or multi-label a sigmoid of each.</summary>
    internal Tensor Probabilities(Tensor logits) => MultiLabel ? logits.sigmoid() : logits.softmax(-1);

    /// <summary>Predicts the label(s) of each input (text, or text + pair).</summary>
    public IReadOnlyList<ClassificationPrediction> Predict(IReadOnlyList<(string Text, string? Pair)> inputs)
    {
        var encoded = EncodeInputs(inputs.Count, i => inputs[i], (i, ids, types) => new Feature { InputIds = ids, TokenTypeIds = types, Example = i });
        return Outputs(encoded).Select((o, i) => Decode(o) with { Windows = encoded.WindowsPerInput[i], TruncatedTokens = encoded.TruncatedTokens[i] }).ToList();
    }

    public ClassificationPrediction Predict(string text, string? pair = null) => Predict([(text, pair)])[0];

    ClassificationPrediction Decode(float[] outputs) => MultiLabel ? DecodeMultiLabel(outputs) : DecodeSingleLabel(outputs);

    ClassificationPrediction DecodeSingleLabel(float[] logProbs)
    {
        int best = 0;
        for (int c = 1; c < logProbs.Length; c++) if (logProbs[c] > logProbs[best]) best = c;
        var probs = new Dictionary<string, double>();
        for (int c = 0; c < logProbs.Length; c++) probs[Labels[c]] = Math.Exp(logProbs[c]);
        return new ClassificationPrediction(Labels[best], Math.Exp(logProbs[best]), probs);
    }

    ClassificationPrediction DecodeMultiLabel(float[] logits)
    {
        var p = logits.Select(x => Sigmoid(x)).ToArray();
        int best = 0;
        for (int c = 1; c < p.Length; c++) if (p[c] > p[best]) best = c;
        double threshold = Threshold;
        var predicted = Enumerable.Range(0, p.Length).Where(c => p[c] >= threshold).OrderByDescending(c => p[c]).ThenBy(c => c).Select(c => Labels[c]).ToList();
        var probs = new Dictionary<string, double>();
        for (int c = 0; c < p.Length; c++) probs[Labels[c]] = p[c];
        return new ClassificationPrediction(Labels[best], p[best], probs) { Labels = predicted, Threshold = threshold };
    }

    static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    public override DatasetScore Score(IReadOnlyList<ClassificationExample> examples, bool withPredictions = false)
    {
        var inputs = EncodeExamples(examples);
        var outputs = Outputs(inputs);
        return MultiLabel ? ScoreMultiLabel(examples, inputs.Counts, outputs, withPredictions) : ScoreSingleLabel(examples, inputs.Counts, outputs, withPredictions);
    }

    /// <summary>Multi-label: chooses <see cref="Threshold"/> on the dev examples (the best micro-F1 of
    /// <see cref="MultiLabelReport.ThresholdGrid"/>), then scores them with it.</summary>
    public override DatasetScore EvaluateDev(IReadOnlyList<ClassificationExample> dev)
    {
        if (!MultiLabel) return base.EvaluateDev(dev);
        var inputs = EncodeExamples(dev);
        var logits = Outputs(inputs);
        var probabilities = logits.Select(row => row.Select(x => Sigmoid(x)).ToArray()).ToList();
        var gold = dev.Select(e => Targets(e)!.Select(t => t > 0).ToArray()).ToList();
        long unknown = dev.Sum(e => (long)GoldLabels(e).Count(l => !labelIds.ContainsKey(l)));
        Threshold = MultiLabelReport.BestThreshold(probabilities, gold, unknown);
        return ScoreMultiLabel(dev, inputs.Counts, logits, withPredictions: true);
    }

    public override void LoadSaved(string dir)
    {
        base.LoadSaved(dir);
        if (MultiLabel && ModelFolder.ReadConfig(dir).Extra[ThresholdKey] is JsonValue v && v.TryGetValue(out double t)) Threshold = t;
    }

    DatasetScore ScoreSingleLabel(IReadOnlyList<ClassificationExample> examples, InputCounts inputs, float[][] lp, bool withPredictions)
    {
        var gold = new List<string>(examples.Count);
        var predicted = new List<string>(examples.Count);
        double lossSum = 0;
        int lossCount = 0, unknown = 0;
        List<JsonObject>? rows = withPredictions ? new() : null;
        for (int i = 0; i < examples.Count; i++)
        {
            var p = DecodeSingleLabel(lp[i]);
            var e = examples[i];
            gold.Add(e.Label ?? "");
            predicted.Add(p.Label);
            if (LabelId(e) is var id and >= 0) { lossSum -= lp[i][id]; lossCount++; }
            else unknown++;
            if (rows != null)
            {
                var row = Row(e);
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
        text.Append(InputsLine(inputs));
        if (unknown > 0) text.Append($"{unknown} examples have labels the model does not know; they count as errors\n");
        text.Append('\n').Append(report.Format());
        return new DatasetScore(metrics, text.ToString(), rows, inputs);
    }

    DatasetScore ScoreMultiLabel(IReadOnlyList<ClassificationExample> examples, InputCounts inputs, float[][] logits, bool withPredictions)
    {
        var gold = examples.Select(GoldLabels).ToList();
        var predictions = logits.Select(DecodeMultiLabel).ToList();
        // BCEWithLogitsLoss's mean over examples × labels, in its stable form max(x, 0) − x·y + log(1 + e^−|x|)
        double lossSum = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            var targets = Targets(examples[i])!;
            for (int c = 0; c < logits[i].Length; c++)
            {
                double x = logits[i][c];
                lossSum += Math.Max(x, 0) - x * targets[c] + Math.Log(1 + Math.Exp(-Math.Abs(x)));
            }
        }
        int unknown = examples.Count(e => GoldLabels(e).Any(l => !labelIds.ContainsKey(l)));
        var report = MultiLabelReport.Compute(gold, predictions.Select(p => p.Labels).ToList(), Labels);
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = examples.Count == 0 ? 0 : lossSum / (examples.Count * (double)Labels.Count),
            ["micro_f1"] = report.MicroF1,
            ["macro_f1"] = report.MacroF1,
            ["subset_accuracy"] = report.SubsetAccuracy,
            ["threshold"] = Threshold,
        };
        List<JsonObject>? rows = null;
        if (withPredictions)
            rows = examples.Select((e, i) =>
            {
                var row = Row(e);
                row["labels"] = Names(gold[i]);
                row["prediction"] = Names(predictions[i].Labels);
                row["probabilities"] = Probabilities(predictions[i]);
                return row;
            }).ToList();
        var text = new StringBuilder();
        text.Append($"{examples.Count} examples: micro-F1 {report.MicroF1:F4}, macro-F1 {report.MacroF1:F4}, subset accuracy {report.SubsetAccuracy:P2} (multi-label, threshold {Threshold:0.###})\n");
        text.Append(InputsLine(inputs));
        if (unknown > 0) text.Append($"{unknown} examples have labels the model does not know; they count as missed\n");
        text.Append('\n').Append(report.Format());
        return new DatasetScore(metrics, text.ToString(), rows, inputs);
    }

    static JsonObject Row(ClassificationExample e)
    {
        var row = new JsonObject { ["text"] = e.Text };
        if (e.Pair != null) row["pair"] = e.Pair;
        return row;
    }

    static JsonArray Names(IEnumerable<string> labels) => new(labels.Select(l => (JsonNode?)l).ToArray());

    static JsonObject Probabilities(ClassificationPrediction p) =>
        new(p.Probabilities.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 6))));

    public override DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false) =>
        WithNotes(Read(path, options with { MultiLabel = MultiLabel }), withPredictions);

    public override IReadOnlyList<TaskPrediction> Predict(IReadOnlyList<PredictInput> inputs) =>
        Predict(inputs.Select(i => (i.Text, i.Pair)).ToList());
}
