using System.Globalization;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Reporting;
using BertSharp.Runtime;
using BertSharp.Tokenization;
using BertSharp.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Tasks.QuestionAnswering;

/// <summary>The score of a question-answering model on SQuAD questions: the metrics, the answers (in question
/// order) and the official scores.</summary>
public sealed record QaScore(IReadOnlyDictionary<string, double> Metrics, string Report, IReadOnlyList<QaAnswer> Answers, SquadScores Scores)
    : DatasetScore(Metrics, Report);

/// <summary>
/// Extractive question answering (SQuAD): BertForQuestionAnswering. A question and its context become windows of
/// <see cref="QaSettings.MaxSeqLength"/> tokens (long contexts overlap, <see cref="QaFeaturizer"/>); the loss is the
/// mean of the start and end cross-entropy (HF's); the answer is the best span over all windows of a question
/// (<see cref="QaPostProcessing"/>), scored by the official SQuAD scripts (<see cref="SquadScoring"/>). Settings
/// come from a folder's qa_config.json (written by fine-tuning), else from the model's size.
/// </summary>
public sealed class QuestionAnsweringModel : TaskModel<SquadExample>
{
    public const string Task = "qa";
    public const string Architecture = "BertForQuestionAnswering";

    private readonly BertForQuestionAnswering qa;
    private QaSettings settings;
    private QaFeaturizer featurizer;
    // Evaluation windows of the last examples scored: fine-tuning scores the same dev questions at every evaluation.
    private (IReadOnlyList<SquadExample> Examples, QaFeatureSet Set)? lastEval;
    private QaFeatureSet? lastTrain;

    public QuestionAnsweringModel(BertForQuestionAnswering model, BertTokenizer tokenizer, QaSettings settings)
        : base(model, tokenizer, settings.MaxSeqLength)
    {
        qa = model;
        settings.Validate(model.Config.MaxPositionEmbeddings);
        this.settings = settings;
        featurizer = new QaFeaturizer(tokenizer, settings);
    }

    /// <summary>How questions become windows and windows become answers; checked against the model when set.</summary>
    public QaSettings Settings
    {
        get => settings;
        set
        {
            value.Validate(Config.MaxPositionEmbeddings);
            settings = value;
            featurizer = new QaFeaturizer(Tokenizer, value);
            lastEval = null;
        }
    }

    public override int MaxSeqLength => settings.MaxSeqLength;
    public override bool? TakesPairs => true;
    public override bool CutsLongInputs => false;
    public override string TaskName => Task;

    /// <summary>The question-answering family: a qa_outputs head (start and end logits), no labels.</summary>
    public static TaskFamily<SquadExample> Family { get; } = new QaFamily();

    sealed class QaFamily : TaskFamily<SquadExample>
    {
        public override string Task => QuestionAnsweringModel.Task;
        public override string Architecture => QuestionAnsweringModel.Architecture;
        public override string Description => "a question-answering model";
        public override Type ModelType => typeof(QuestionAnsweringModel);
        public override bool HasLabels => false;
        public override bool SplitHasTestPart => false;
        public override string NoDevHint => "or splitArticles N to train on the first N articles of train and evaluate on the rest";

        /// <summary>A SQuAD file: with splitArticles, the first N articles (train part) or the rest (other parts);
        /// maxExamples keeps the first questions.</summary>
        public override ExampleSet<SquadExample> Read(string path, DataFileOptions options)
        {
            var data = SquadDataset.Load(path);
            if (options.SplitArticles is int n)
            {
                var (head, tail) = data.SplitArticles(n);
                data = options.Split == DataSplit.Train ? head : tail;
            }
            data = data.Take(options.MaxExamples);
            string what = options.Split == DataSplit.Train ? "training" : "evaluation";
            return new ExampleSet<SquadExample>(data, [$"data: {data.Count} {what} questions ({data.Articles.Count} articles, {data.Source})"],
                HasBuiltInSplit: options.SplitArticles is not null);
        }

        public override void Configure(BertConfig config, IReadOnlyList<SquadExample> train) { }

        public override TaskModel<SquadExample> Create(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder)
        {
            int positions = model.Config.MaxPositionEmbeddings;
            var settings = (folder is null ? QaSettings.ForModel(positions) : QaSettings.ForFolder(folder, positions)).Override(maxSeqLength);
            return new QuestionAnsweringModel((BertForQuestionAnswering)model, tokenizer, settings);
        }

        public override int DefaultMaxSeqLength(BertConfig config) => QaSettings.ForModel(config.MaxPositionEmbeddings).MaxSeqLength;
        public override (double LearningRate, int Epochs) DefaultSchedule(BertConfig config) => (5e-5, 2);
        public override int DefaultEvalBatchSize(int batchSize) => Math.Max(batchSize, 64);

        public override void CheckData(ExampleSet<SquadExample> train, ExampleSet<SquadExample> dev, FineTuneOptions o)
        {
            foreach (var d in new[] { train.Examples, dev.Examples }.OfType<SquadDataset>())
                if (d.HasUnanswerable && !o.Version2WithNegative)
                    throw new BertSharpException($"{d.Source}: question {d.Examples.First(e => e.IsImpossible).Id} is unanswerable (is_impossible, SQuAD 2.0); train with version2WithNegative") { Parameters = ["version2WithNegative"] };
            var noAnswer = train.Examples.FirstOrDefault(e => !e.IsImpossible && e.Answers.Count == 0);
            if (noAnswer != null)
                throw new BertSharpException($"{(train.Examples as SquadDataset)?.Source}: question {noAnswer.Id} has no answer to train on (mark an unanswerable question \"is_impossible\": true and use version2WithNegative)") { Parameters = ["version2WithNegative"] };
        }

        public override RunArgs<FineTuneOptions> RunArgs => FineTuneArgs.QuestionAnswering;

        public override FineTuneOptions Resolved(FineTuneOptions o, TaskModel<SquadExample> model)
        {
            var s = ((QuestionAnsweringModel)model).Settings;
            return o with
            {
                DocStride = s.DocStride, MaxQueryLength = s.MaxQueryLength, NBestSize = s.NBestSize, MaxAnswerLength = s.MaxAnswerLength,
                NullScoreDiffThreshold = s.NullScoreDiffThreshold, Version2WithNegative = s.Version2WithNegative,
            };
        }

        public override void Apply(TaskModel<SquadExample> model, FineTuneOptions o, IReadOnlyList<SquadExample> train)
        {
            var m = (QuestionAnsweringModel)model;
            m.Settings = QaSettings.ForModel(m.Config.MaxPositionEmbeddings, m.MaxSeqLength, o.DocStride, o.MaxQueryLength) with
            {
                NBestSize = o.NBestSize, MaxAnswerLength = o.MaxAnswerLength,
                Version2WithNegative = o.Version2WithNegative, NullScoreDiffThreshold = o.NullScoreDiffThreshold,
            };
        }
    }

    // ---- the prediction side ----

    /// <summary>The answer to one question about one context.</summary>
    public QaAnswer Answer(string question, string context, string id = "0") => Predict([new PredictInput(question, context, Id: id)]).Cast<QaAnswer>().Single();

    /// <summary>Answers many questions, batching their windows; the answers come in the questions' order. A
    /// question too long to fit max_seq_length is an error (cut to max_query_length it would hardly be the question
    /// asked), unless <paramref name="cutLongQuestions"/> (how datasets are read, as Google's run_squad.py does).</summary>
    public IReadOnlyList<QaAnswer> Answer(IReadOnlyList<SquadExample> questions, bool cutLongQuestions = false)
    {
        if (questions.Count == 0) return [];
        var set = featurizer.Build(questions, withTargets: false, rejectOverlongQuestions: !cutLongQuestions);
        var (logits, _) = RunWindows(set.Features, withLoss: false);
        return QaPostProcessing.Decode(set, logits, Settings);
    }

    /// <summary>Answers each input: its question (<see cref="PredictInput.Text"/>) about its context
    /// (<see cref="PredictInput.Pair"/>); <see cref="PredictInput.Id"/> names it in errors (default: its index).</summary>
    public override IReadOnlyList<TaskPrediction> Predict(IReadOnlyList<PredictInput> inputs)
    {
        var questions = inputs.Select((input, i) =>
        {
            string id = input.Id ?? i.ToString(CultureInfo.InvariantCulture);
            if (string.IsNullOrWhiteSpace(input.Pair)) throw new BertSharpException($"question {id}: the context is empty");
            if (string.IsNullOrWhiteSpace(input.Text)) throw new BertSharpException($"question {id}: the question is empty");
            return new SquadExample(id, input.Text, input.Pair, []);
        }).ToList();
        return Answer(questions);
    }

    /// <summary>Answers the questions and scores the answers with the official SQuAD script (v2.0 when the data is
    /// SQuAD 2.0 or the model was trained for unanswerable questions, else v1.1); the metrics include the mean loss
    /// of the windows.</summary>
    public override DatasetScore Score(IReadOnlyList<SquadExample> examples, bool withPredictions = false) => ScoreQuestions(examples, withLoss: true);

    QaScore ScoreQuestions(IReadOnlyList<SquadExample> examples, bool withLoss)
    {
        QaFeatureSet set;
        if (lastEval is { } cached && ReferenceEquals(cached.Examples, examples)) set = cached.Set;
        else
        {
            set = featurizer.Build(examples, withTargets: withLoss);
            if (withLoss) lastEval = (examples, set);
        }
        var (logits, lossSum) = RunWindows(set.Features, withLoss);
        var answers = QaPostProcessing.Decode(set, logits, Settings);
        var predictions = answers.ToDictionary(a => a.Id, a => a.Text);
        bool version2 = (examples is SquadDataset d && d.IsVersion2) || examples.Any(e => e.IsImpossible) || Settings.Version2WithNegative;
        var scores = SquadScoring.Evaluate(examples, predictions, version2);
        var metrics = scores.ToDictionary();
        metrics.Remove("total");
        if (withLoss) metrics["loss"] = lossSum / Math.Max(1, set.Features.Count);
        string source = examples is SquadDataset data ? data.Source + ": " : "";
        return new QaScore(metrics, source + Describe(scores) + "\n", answers, scores);
    }

    /// <summary>Scores a SQuAD file (<see cref="DataFileOptions.SplitArticles"/>: the articles after the first N).</summary>
    public override DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false)
    {
        var data = Family.Read(path, options with { Split = DataSplit.Test });
        return ScoreQuestions(data.Examples, withLoss: false);
    }

    /// <summary>"EM 12.34, F1 23.45 (2,695 questions, SQuAD v1.1 script)" and the v2.0 breakdown.</summary>
    public static string Describe(SquadScores s)
    {
        var text = $"EM {s.ExactMatch:F2}, F1 {s.F1:F2} ({s.Total:N0} questions, SQuAD v{s.ScriptVersion} script)";
        if (s.ScriptVersion == "2.0")
            text += $"; HasAns EM {s.HasAnsExact:F2} F1 {s.HasAnsF1:F2} ({s.HasAnsTotal}), NoAns EM {s.NoAnsExact:F2} F1 {s.NoAnsF1:F2} ({s.NoAnsTotal})";
        if (s.Missing > 0) text += $"; {s.Missing} without prediction";
        return text;
    }

    /// <summary>Writes the model folder and qa_config.json (the settings it was trained with).</summary>
    public override void Save(string dir)
    {
        base.Save(dir);
        Settings.Save(dir);
    }

    // ---- the training side ----

    public override LabelKind LabelKind => LabelKind.Span;
    public override string SelectionMetric => "f1";
    public override IReadOnlyList<string> PlotMetrics => ["f1", "exact_match"];
    /// <summary>SQuAD's scores (SQuAD 2.0's split by answerable and unanswerable questions, as its script reports them
    /// when the evaluation has both kinds) and the loss.</summary>
    public override IReadOnlyList<string> EvaluationMetrics => Settings.Version2WithNegative
        ? ["f1", "exact_match", "loss", "exact", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"]
        : ["f1", "exact_match", "loss"];
    public override bool GroupsByLength => false;
    /// <summary>The stream question answering's training order has always been drawn from ("QAO").</summary>
    public override long OrderStream => 0x51414F;

    public override IReadOnlyList<PlotSpec> Plots =>
    [
        .. PlotSpec.FineTuning([]),
        new PlotSpec("f1.png", "Validation F1 (official SQuAD)", "F1 (%)", ("eval/val_f1", "validation")) { XColumn = "epoch" },
        new PlotSpec("exact_match.png", "Validation exact match (official SQuAD)", "EM (%)", ("eval/val_exact_match", "validation")) { XColumn = "epoch" },
    ];

    /// <summary>The training windows: each points at its question's first answer when it holds it whole, else at [CLS].</summary>
    public override IReadOnlyList<Feature> Encode(IReadOnlyList<SquadExample> examples)
    {
        lastTrain = featurizer.Build(examples, withTargets: true);
        if (lastTrain.Features.Count == 0) throw new BertSharpException("the training data produced no windows");
        return lastTrain.Features.Select(ToFeature).ToList();
    }

    static Feature ToFeature(QaFeature f) => new()
    {
        InputIds = f.InputIds, TokenTypeIds = f.TokenTypeIds, Example = f.ExampleIndex,
        StartPosition = f.StartPosition, EndPosition = f.EndPosition,
    };

    public override IEnumerable<string> EncodingNotes(IReadOnlyList<SquadExample> train, IReadOnlyList<Feature> features, IReadOnlyList<SquadExample> dev)
    {
        var evalSet = featurizer.Build(dev, withTargets: true);
        lastEval = (dev, evalSet);
        int holding = features.Count(f => f.StartPosition > 0);
        var s = Settings;
        yield return $"windows: max_seq_length {s.MaxSeqLength}, doc_stride {s.DocStride}, max_query_length {s.MaxQueryLength}: " +
            $"{features.Count} training windows ({holding} hold their answer, the rest point at [CLS]), {evalSet.Features.Count} evaluation windows";
        int truncatedTrain = lastTrain?.TruncatedQuestions ?? 0;
        if (truncatedTrain + evalSet.TruncatedQuestions > 0)
            yield return $"questions cut to {s.MaxQueryLength} tokens: {truncatedTrain} training, {evalSet.TruncatedQuestions} evaluation";
        if (lastTrain?.AnswersOutsideWindows > 0)
            yield return $"{lastTrain.AnswersOutsideWindows} training answers fit in no window whole (longer than the window); their windows point at [CLS]";
    }

    public override BatchLoss Loss(Batch b)
    {
        var (start, end) = qa.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"]);
        using (start)
        using (end)
        {
            var (total, s, e) = Loss(start, end, b["attention_mask"], b["start_positions"], b["end_positions"]);
            return new BatchLoss(total, new Dictionary<string, Tensor> { ["start_loss"] = s, ["end_loss"] = e });
        }
    }

    /// <summary>
    /// (CE(start) + CE(end)) / 2 over the sequence positions, padding excluded (its logits are masked out, so
    /// dynamic padding does not change the loss). <paramref name="reduction"/> Sum gives per-batch sums.
    /// </summary>
    public static (Tensor Total, Tensor Start, Tensor End) Loss(Tensor startLogits, Tensor endLogits, Tensor attentionMask,
        Tensor startPositions, Tensor endPositions, Reduction reduction = Reduction.Mean)
    {
        using var pad = attentionMask.With(0L, (m, zero) => m.eq(zero));
        using var s = startLogits.to(ScalarType.Float32).With(-1e4, (t, fill) => t.masked_fill(pad, fill));
        using var e = endLogits.to(ScalarType.Float32).With(-1e4, (t, fill) => t.masked_fill(pad, fill));
        var startLoss = functional.cross_entropy(s, startPositions, reduction: reduction);
        var endLoss = functional.cross_entropy(e, endPositions, reduction: reduction);
        return (startLoss.Plus(endLoss).With(2L, (t, two) => t.div(two)), startLoss, endLoss);
    }

    /// <summary>The final evaluation's files: the SQuAD tools' predictions.json, nbest_predictions.json,
    /// null_odds.json and eval_results.json for the dev questions.</summary>
    public override IReadOnlyList<string> WriteFinalFiles(string runDir, IReadOnlyList<(string Split, string Data, DatasetScore Score)> scores)
    {
        var dev = (QaScore)scores.First(s => s.Split == "dev").Score;
        QaOutputFiles.Write(runDir, dev.Answers, dev.Scores);
        return scores.Select(_ => Path.Combine(runDir, QaOutputFiles.Predictions)).ToList();
    }

    /// <summary>Start and end logits of every window, in window order and batches of <see cref="TaskModel.BatchSize"/>,
    /// and the summed loss (windows carry their targets).</summary>
    (List<QaLogits> Logits, double LossSum) RunWindows(IReadOnlyList<QaFeature> features, bool withLoss)
    {
        var result = new List<QaLogits>(features.Count);
        double lossSum = 0;
        int batchSize = Math.Max(1, BatchSize);
        Evaluating(() =>
        {
            for (int start = 0; start < features.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var items = features.Skip(start).Take(batchSize).ToList();
                using var b = Batching.Collate(items.Select(ToFeature).ToList(), Tokenizer.PadId, LabelKind.Span, device: Device);
                var (s, e) = qa.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"]);
                if (withLoss)
                {
                    var (total, _, _) = Loss(s, e, b["attention_mask"], b["start_positions"], b["end_positions"], Reduction.Sum);
                    lossSum += total.item<float>();
                }
                var sv = s.to(ScalarType.Float32).cpu().data<float>().ToArray();
                var ev = e.to(ScalarType.Float32).cpu().data<float>().ToArray();
                int L = (int)s.shape[1];
                for (int i = 0; i < items.Count; i++)
                    result.Add(new QaLogits(sv.AsSpan(i * L, items[i].Length).ToArray(), ev.AsSpan(i * L, items[i].Length).ToArray()));
            }
        });
        return (result, lossSum);
    }
}
