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
public sealed record SimilarityPrediction(double Score) : TaskPrediction;

/// <summary>
/// Sentence-pair similarity as regression: BertForSequenceClassification with one output (problem_type
/// "regression", as HF's STS-B setup), mean squared error loss. Metrics: Pearson (selects the best model; the
/// official STS measure), Spearman, and the MSE as "loss".
/// </summary>
public sealed class SimilarityModel : TaskModel<SimilarityExample>
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
    public override IReadOnlyList<string> PlotMetrics => ["pearson", "spearman"];

    public static void Configure(BertConfig c)
    {
        c.Labels = ["LABEL_0"];
        c.ProblemType = "regression";
        c.Extra["bertsharp_task"] = Task;
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

        public override TaskModel<SimilarityExample> Create(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder) =>
            new SimilarityModel((BertForSequenceClassification)model, tokenizer, maxSeqLength ?? FolderMaxSeqLength(tokenizer, model.Config));
    }

    Feature Make(string a, string b, double? score, int i)
    {
        var enc = Tokenizer.Encode(a, b, MaxSeqLength);
        return new Feature { InputIds = enc.InputIds, TokenTypeIds = enc.TokenTypeIds, Example = i, Score = (float)(score ?? 0) };
    }

    public override IReadOnlyList<Feature> Encode(IReadOnlyList<SimilarityExample> examples)
    {
        var features = new Feature[examples.Count];
        Parallel.For(0, examples.Count, i => features[i] = Make(examples[i].Text, examples[i].Pair, examples[i].Score, i));
        return features;
    }

    public override BatchLoss Loss(Batch batch)
    {
        using var logits = Logits(batch);
        using var scores = logits.squeeze(-1);
        return new BatchLoss(functional.mse_loss(scores, batch["labels"]), new Dictionary<string, Tensor>());
    }

    double[] Scores(IReadOnlyList<Feature> features)
    {
        var result = new double[features.Count];
        Run(features, LabelKind, (idx, logits) =>
        {
            var v = logits.data<float>().ToArray();
            for (int j = 0; j < idx.Length; j++) result[idx[j]] = v[j];
        });
        return result;
    }

    /// <summary>The predicted similarity of each pair.</summary>
    public IReadOnlyList<double> Predict(IReadOnlyList<(string Text, string Pair)> pairs)
    {
        var features = new Feature[pairs.Count];
        Parallel.For(0, pairs.Count, i => features[i] = Make(pairs[i].Text, pairs[i].Pair, null, i));
        return Scores(features);
    }

    public double Predict(string text, string pair) => Predict([(text, pair)])[0];

    public override DatasetScore Score(IReadOnlyList<SimilarityExample> examples, bool withPredictions = false)
    {
        var labelled = examples.Where(e => e.Score.HasValue).ToList();
        var predicted = Scores(Encode(labelled));
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
        if (!double.IsFinite(pearson)) report += "the correlations are undefined (constant scores) and logged as 0\n";
        List<JsonObject>? rows = null;
        if (withPredictions)
            rows = labelled.Select((e, i) => new JsonObject
            {
                ["text"] = e.Text, ["pair"] = e.Pair, ["score"] = e.Score, ["prediction"] = Math.Round(predicted[i], 6),
            }).ToList();
        return new DatasetScore(metrics, report, rows);
    }

    public override DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false) =>
        WithNotes(Read(path, options), withPredictions);

    /// <summary>Scores each input's pair; an input without one is an error.</summary>
    public override IReadOnlyList<TaskPrediction> Predict(IReadOnlyList<PredictInput> inputs)
    {
        foreach (var i in inputs)
            if (i.Pair is null) throw new BertSharpException($"similarity scores a pair of texts; got one text: '{Short(i.Text)}'");
        return Predict(inputs.Select(i => (i.Text, i.Pair!)).ToList()).Select(s => new SimilarityPrediction(s)).ToList();
    }

    static string Short(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
