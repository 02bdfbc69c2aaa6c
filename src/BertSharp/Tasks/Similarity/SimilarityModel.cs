using System.Globalization;
using System.Text.Json.Nodes;
using BertSharp.Evaluation;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Tasks.Similarity;

/// <summary>The predicted similarity of a pair.</summary>
public sealed record SimilarityPrediction(double Score) : TaskPrediction, IWindowedPrediction
{
    public int Windows { get; init; } = 1;
    public int TruncatedTokens { get; init; }
}

/// <summary>
/// Sentence-pair similarity as regression: BertForSequenceClassification with one output (problem_type
/// "regression", as HF's STS-B setup), mean squared error loss. Metrics: Pearson (selects the best model; the
/// official STS measure), Spearman, and the MSE as "loss". A pair longer than the window is read in windows whose
/// scores are combined, or cut (<see cref="WindowedTaskModel{TExample}.LongInputs"/>).
/// </summary>
public sealed class SimilarityModel : WindowedTaskModel<SimilarityExample>
{
    public const string Task = "similarity";

    public SimilarityModel(BertForSequenceClassification model, BertTokenizer tokenizer, int maxSeqLength) : base(model, tokenizer, maxSeqLength)
    {
        if (model.Config.NumLabels != 1) throw new BertSharpException($"similarity needs a one-output (regression) head; the model has {model.Config.NumLabels} labels");
    }

    public override bool? TakesPairs => true;
    public override string TaskName => Task;
    public override LabelKind LabelKind => LabelKind.Score;
    public override string SelectionMetric => "pearson";
    protected override string OutputName => "scores";
    public override IReadOnlyList<string> PlotMetrics => ["pearson", "spearman"];

    public static void Configure(BertConfig c)
    {
        c.Labels = ["LABEL_0"];
        c.ProblemType = "regression";
        c.Extra["bertsharp_task"] = Task;
        c.Extra.Remove(LongInputSettings.ConfigKey);   // a new head's long-input settings are chosen anew
    }

    public static ExampleSet<SimilarityExample> Read(string path, DataFileOptions o) => SimilarityData.Read(path, o);

    /// <summary>The similarity family: a one-output regression head.</summary>
    public static TaskFamily<SimilarityExample> Family { get; } = new SimilarityFamily();

    sealed class SimilarityFamily : TaskFamily<SimilarityExample>
    {
        public override string Task => SimilarityModel.Task;
        public override string Architecture => "BertForSequenceClassification";
        public override string Description => "a similarity model";
        public override Type ModelType => typeof(SimilarityModel);
        public override bool Matches(BertConfig c) => c.ProblemType == "regression" || c.NumLabels == 1;
        public override ExampleSet<SimilarityExample> Read(string path, DataFileOptions options) => SimilarityModel.Read(path, options);
        public override void Configure(BertConfig c, IReadOnlyList<SimilarityExample> train) => SimilarityModel.Configure(c);

        public override TaskModel<SimilarityExample> Create(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder)
        {
            int folderLength = FolderMaxSeqLength(tokenizer, model.Config);
            var m = new SimilarityModel((BertForSequenceClassification)model, tokenizer, maxSeqLength ?? folderLength);
            if (maxSeqLength != folderLength) m.StrideFollowsLength();
            return m;
        }

        public override void Apply(TaskModel<SimilarityExample> model, FineTuneOptions options, IReadOnlyList<SimilarityExample> train) =>
            ((SimilarityModel)model).LongInputs = LongInputSettings.For(options);

        public override FineTuneOptions Resolved(FineTuneOptions options, TaskModel<SimilarityExample> model) =>
            ((SimilarityModel)model).LongInputs.Resolved(options, model.MaxSeqLength);
    }

    EncodedInputs EncodePairs(int count, Func<int, (string Text, string Pair)> pair, Func<int, double?> score) =>
        EncodeInputs(count, i => pair(i), (i, ids, types) => new Feature { InputIds = ids, TokenTypeIds = types, Example = i, Score = (float)(score(i) ?? 0) });

    EncodedInputs EncodeExamples(IReadOnlyList<SimilarityExample> examples) =>
        EncodePairs(examples.Count, i => (examples[i].Text, examples[i].Pair), i => examples[i].Score);

    /// <summary>Training features: the windows of each pair, each with the pair's score.</summary>
    public override IReadOnlyList<Feature> Encode(IReadOnlyList<SimilarityExample> examples)
    {
        var encoded = EncodeExamples(examples);
        TrainingInputs = encoded.Counts;
        return encoded.Features;
    }

    protected override InputCounts EvaluationInputs(IReadOnlyList<SimilarityExample> examples) =>
        EncodeExamples(examples.Where(e => e.Score.HasValue).ToList()).Counts;

    /// <summary>The mean squared error of a batch's pair scores (a pair's windows combined) against the gold scores.</summary>
    public override BatchLoss Loss(Batch batch)
    {
        using var logits = InputLogits(batch);
        using var scores = logits.squeeze(-1);
        return new BatchLoss(functional.mse_loss(scores, batch["labels"]), new Dictionary<string, Tensor>());
    }

    /// <summary>The score of each pair, in pair order: its windows' scores combined.</summary>
    double[] Scores(EncodedInputs inputs)
    {
        using var scores = InputLogits(inputs);
        return scores.data<float>().ToArray().Select(x => (double)x).ToArray();
    }

    /// <summary>The predicted similarity of each pair.</summary>
    public IReadOnlyList<double> Predict(IReadOnlyList<(string Text, string Pair)> pairs) => PredictPairs(pairs).Select(p => p.Score).ToList();

    IReadOnlyList<SimilarityPrediction> PredictPairs(IReadOnlyList<(string Text, string Pair)> pairs)
    {
        var encoded = EncodePairs(pairs.Count, i => pairs[i], _ => null);
        return Scores(encoded).Select((s, i) => new SimilarityPrediction(s) { Windows = encoded.WindowsPerInput[i], TruncatedTokens = encoded.TruncatedTokens[i] }).ToList();
    }

    public double Predict(string text, string pair) => Predict([(text, pair)])[0];

    public override DatasetScore Score(IReadOnlyList<SimilarityExample> examples, bool withPredictions = false)
    {
        var labelled = examples.Where(e => e.Score.HasValue).ToList();
        var inputs = EncodeExamples(labelled);
        var predicted = Scores(inputs);
        var gold = labelled.Select(e => e.Score!.Value).ToArray();
        double mse = 0;
        for (int i = 0; i < gold.Length; i++) mse += (predicted[i] - gold[i]) * (predicted[i] - gold[i]);
        mse = gold.Length == 0 ? 0 : mse / gold.Length;
        double pearson = Metrics.Pearson(gold, predicted), spearman = Metrics.Spearman(gold, predicted);
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = mse,
            ["pearson"] = Finite(pearson),
            ["spearman"] = Finite(spearman),
        };
        var inv = CultureInfo.InvariantCulture;
        string report = string.Format(inv, "{0} pairs: Pearson {1:F4}, Spearman {2:F4}, MSE {3:F4}; gold scores {4:F2}–{5:F2} (mean {6:F2}), predicted {7:F2}–{8:F2} (mean {9:F2})\n",
            gold.Length, pearson, spearman, mse,
            gold.DefaultIfEmpty().Min(), gold.DefaultIfEmpty().Max(), gold.DefaultIfEmpty().Average(),
            predicted.DefaultIfEmpty().Min(), predicted.DefaultIfEmpty().Max(), predicted.DefaultIfEmpty().Average());
        report += InputsLine(inputs.Counts);
        if (!double.IsFinite(pearson)) report += "the correlations are undefined (constant scores) and logged as 0\n";
        List<JsonObject>? rows = null;
        if (withPredictions)
            rows = labelled.Select((e, i) => new JsonObject
            {
                ["text"] = e.Text, ["pair"] = e.Pair, ["score"] = e.Score, ["prediction"] = Math.Round(predicted[i], 6),
            }).ToList();
        return new DatasetScore(metrics, report, rows, inputs.Counts);
    }

    public override DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false) =>
        WithNotes(Read(path, options), withPredictions);

    /// <summary>Scores each input's pair; an input without one is an error.</summary>
    public override IReadOnlyList<TaskPrediction> Predict(IReadOnlyList<PredictInput> inputs)
    {
        foreach (var i in inputs)
            if (i.Pair is null) throw new BertSharpException($"similarity scores a pair of texts; got one text: '{Short(i.Text)}'");
        return PredictPairs(inputs.Select(i => (i.Text, i.Pair!)).ToList());
    }

    static string Short(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
