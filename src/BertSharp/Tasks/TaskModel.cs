using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tasks;

/// <summary>The result of scoring labelled examples: metrics (names without prefix; "loss" included), a report
/// for people, and — when asked for — one JSON object per example with the gold value and the prediction.</summary>
public sealed record DatasetScore(IReadOnlyDictionary<string, double> Metrics, string Report, IReadOnlyList<JsonObject>? Predictions = null);

/// <summary>One input to predict on: a text, or a pair (text + pair); for tagging, the words (else the text split
/// on whitespace).</summary>
public sealed record PredictInput(string Text, string? Pair = null, IReadOnlyList<string>? Words = null);

/// <summary>
/// A fine-tuned (or being fine-tuned) model of one task family with its tokenizer and maximum input length:
/// encodes examples into features, computes the training loss of a batch, predicts, and scores labelled examples.
/// Loaded once, it predicts many inputs; not thread-safe.
/// </summary>
public abstract class TaskModel : IDisposable
{
    protected TaskModel(BertWithHead model, BertTokenizer tokenizer, int maxSeqLength)
    {
        if (maxSeqLength < 4) throw new BertSharpException($"--max-seq-length must be at least 4, got {maxSeqLength}");
        if (maxSeqLength > model.Config.MaxPositionEmbeddings)
            throw new BertSharpException($"--max-seq-length {maxSeqLength} exceeds the model's max_position_embeddings {model.Config.MaxPositionEmbeddings}");
        Model = model;
        Tokenizer = tokenizer;
        MaxSeqLength = maxSeqLength;
    }

    public BertWithHead Model { get; }
    public BertTokenizer Tokenizer { get; }
    public BertConfig Config => Model.Config;
    public int MaxSeqLength { get; }
    /// <summary>Inputs per forward pass when predicting or evaluating.</summary>
    public int BatchSize { get; set; } = 64;
    /// <summary>The report of loading the weights, when the model came from a folder.</summary>
    public LoadReport? LoadReport { get; set; }

    /// <summary>"classify", "similarity" or "tag": the value of config.json's "bertsharp_task".</summary>
    public abstract string TaskName { get; }
    public abstract LabelKind LabelKind { get; }
    /// <summary>The metric that picks the best model, and the metrics to plot (names without prefix).</summary>
    public abstract string SelectionMetric { get; }
    public abstract IReadOnlyList<string> PlotMetrics { get; }

    /// <summary>The training loss of a batch from <see cref="Batching.Collate"/>.</summary>
    public abstract BatchLoss Loss(Batch batch);

    /// <summary>Reads a data file of this task's formats and scores the model on it.</summary>
    public abstract DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false);

    /// <summary>Predictions as JSON objects (the JSONL lines of `bert predict`), in input order.</summary>
    public abstract IReadOnlyList<JsonObject> PredictJson(IReadOnlyList<PredictInput> inputs);

    /// <summary>Writes the model folder: weights, config.json (with the task and labels), vocab.txt and
    /// tokenizer_config.json (whose model_max_length is the maximum input length).</summary>
    public void Save(string dir)
    {
        ModelFolder.Save(Model, dir);
        Tokenizer.Save(dir);
    }

    /// <summary>[B, C] (sequence heads) or [B, L, C] (token head) logits, as float32.</summary>
    protected Tensor Logits(Batch b)
    {
        using var logits = Model switch
        {
            BertForSequenceClassification s => s.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"]),
            BertForTokenClassification t => t.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"]),
            _ => throw new InvalidOperationException($"{Model.Architecture} has no task logits"),
        };
        return logits.to(ScalarType.Float32);
    }

    /// <summary>Runs the model, in evaluation mode and without gradients, over the features in length-sorted
    /// batches; <paramref name="body"/> gets each batch's feature indices and its float32 logits on the CPU.</summary>
    protected void Run(IReadOnlyList<Feature> features, Action<int[], Tensor> body)
    {
        if (features.Count == 0) return;
        bool wasTraining = Model.training;
        Model.eval();
        try
        {
            using var _ = no_grad();
            foreach (var idx in Batching.EvalOrder(features.Select(f => f.Length).ToList(), Math.Max(1, BatchSize)))
            {
                using var scope = NewDisposeScope();
                using var batch = Batching.Collate(idx.Select(i => features[i]).ToList(), Tokenizer.PadId, LabelKind);
                using var logits = Logits(batch);
                using var cpu = logits.cpu();
                body(idx, cpu);
            }
        }
        finally
        {
            if (wasTraining) Model.train();
        }
    }

    /// <summary>A metric value safe to log: NaN (an undefined correlation) becomes 0.</summary>
    protected static double Finite(double v) => double.IsFinite(v) ? v : 0;

    public void Dispose() => Model.Dispose();
}

/// <summary>A task model for examples of type <typeparamref name="TExample"/>.</summary>
public abstract class TaskModel<TExample> : TaskModel
{
    protected TaskModel(BertWithHead model, BertTokenizer tokenizer, int maxSeqLength) : base(model, tokenizer, maxSeqLength) { }

    /// <summary>Training features (labels the model does not know are ignored by the loss).</summary>
    public abstract IReadOnlyList<Feature> Encode(IReadOnlyList<TExample> examples);

    /// <summary>Metrics, report and (optionally) per-example predictions on labelled examples.</summary>
    public abstract DatasetScore Score(IReadOnlyList<TExample> examples, bool withPredictions = false);

    /// <summary>Scores examples read from a file; the reader's notes (counts, dropped examples, the part read) head the report.</summary>
    protected DatasetScore WithNotes(ExampleSet<TExample> set, bool withPredictions)
    {
        var score = Score(set.Examples, withPredictions);
        return score with { Report = string.Concat(set.Notes.Select(n => n + "\n")) + score.Report };
    }
}

/// <summary>The fine-tuning <see cref="ITrainingTask"/> of every task family: batches of training features
/// (length-grouped, dynamically padded), the task model's loss, and its score on the dev examples.</summary>
public sealed class FineTuningTask<TExample> : ITrainingTask
{
    private readonly TaskModel<TExample> task;
    private readonly IReadOnlyList<Feature> train;
    private readonly IReadOnlyList<TExample> dev;
    private readonly int[] lengths;
    private readonly int batchSize;
    private readonly long seed;
    private readonly bool groupByLength;

    public FineTuningTask(TaskModel<TExample> task, IReadOnlyList<Feature> train, IReadOnlyList<TExample> dev, int batchSize, long seed, bool groupByLength = true)
    {
        if (batchSize < 1) throw new BertSharpException($"--batch-size must be at least 1, got {batchSize}");
        if (train.Count == 0) throw new BertSharpException("the training data has no examples");
        this.task = task;
        this.train = train;
        this.dev = dev;
        this.batchSize = batchSize;
        this.seed = seed;
        this.groupByLength = groupByLength;
        lengths = train.Select(f => f.Length).ToArray();
    }

    public TaskModel<TExample> TaskModel => task;
    public BertWithHead Model => task.Model;
    public int BatchesPerEpoch => (train.Count + batchSize - 1) / batchSize;
    public string SelectionMetric => task.SelectionMetric;
    public bool HigherIsBetter => true;

    public IEnumerable<Batch> TrainBatches(int epoch, int start)
    {
        var batches = Batching.TrainOrder(lengths, batchSize, seed, epoch, groupByLength);
        for (int b = start; b < batches.Length; b++)
            yield return Batching.Collate(batches[b].Select(i => train[i]).ToList(), task.Tokenizer.PadId, task.LabelKind, epoch, b);
    }

    public BatchLoss Loss(Batch batch) => task.Loss(batch);

    public IReadOnlyDictionary<string, double> Evaluate() => task.Score(dev).Metrics;

    public void SaveModel(string dir) => task.Save(dir);
}
