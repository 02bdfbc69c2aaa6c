using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Reporting;
using BertSharp.Tokenization;
using BertSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tasks;

/// <summary>The result of scoring labelled examples: metrics (names without prefix; "loss" included), a report
/// for people, and — when asked for — one JSON object per example with the gold value and the prediction (the
/// lines of a run's predictions_dev.jsonl); for a task that reads long inputs in windows, how many were windowed or cut.</summary>
public record DatasetScore(IReadOnlyDictionary<string, double> Metrics, string Report, IReadOnlyList<JsonObject>? Predictions = null, InputCounts? Inputs = null);

/// <summary>One input to predict on: a text, or a pair (text + pair); for tagging, the words (else the text split
/// on whitespace); for question answering, the question (<see cref="Text"/>), its context (<see cref="Pair"/>) and
/// an id to report it by.</summary>
public sealed record PredictInput(string Text, string? Pair = null, IReadOnlyList<string>? Words = null, string? Id = null);

/// <summary>A prediction of a task model: <see cref="Classification.ClassificationPrediction"/>,
/// <see cref="Similarity.SimilarityPrediction"/>, <see cref="Tagging.TaggingPrediction"/> or
/// <see cref="QuestionAnswering.QaAnswer"/>.</summary>
public abstract record TaskPrediction;

/// <summary>
/// A fine-tuned (or being fine-tuned) model of one task family with its tokenizer and maximum input length.
/// This is its prediction side: loaded once (<see cref="Inference.FineTunedModel.Load"/>), it predicts many
/// inputs and scores labelled files; not thread-safe. The training side is <see cref="TaskModel{TExample}"/>'s.
/// </summary>
public abstract class TaskModel : IDisposable
{
    protected TaskModel(BertWithHead model, BertTokenizer tokenizer, int maxSeqLength)
    {
        CheckMaxSeqLength(maxSeqLength, model.Config);
        Model = model;
        Tokenizer = tokenizer;
        maxSeq = maxSeqLength;
        Device = model.parameters().First().device;
    }

    private readonly int maxSeq;

    public BertWithHead Model { get; }
    public BertTokenizer Tokenizer { get; }
    public BertConfig Config => Model.Config;
    /// <summary>Tokens per model input, [CLS] and [SEP] included.</summary>
    public virtual int MaxSeqLength => maxSeq;
    /// <summary>Inputs per forward pass when predicting or evaluating.</summary>
    public int BatchSize { get; set; } = 64;
    /// <summary>The report of loading the weights, when the model came from a folder.</summary>
    public LoadReport? LoadReport { get; set; }
    /// <summary>Where the model's parameters are, and so where its batches go.</summary>
    public Device Device { get; }

    /// <summary>"classify", "similarity", "tag" or "qa" (see <see cref="TaskFamily"/>).</summary>
    public abstract string TaskName { get; }

    /// <summary>Whether inputs are pairs (true), single texts (false), or either (null: unknown, or both work).</summary>
    public virtual bool? TakesPairs => null;

    /// <summary>Whether inputs longer than <see cref="MaxSeqLength"/> are cut (true) or handled whole in windows (false).</summary>
    public virtual bool CutsLongInputs => true;

    /// <summary>Predictions in input order: a <see cref="TaskPrediction"/> of this task's kind per input.</summary>
    public abstract IReadOnlyList<TaskPrediction> Predict(IReadOnlyList<PredictInput> inputs);

    /// <summary>Reads a data file of this task's formats and scores the model on it.</summary>
    public abstract DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false);

    /// <summary>Writes the model folder: weights, config.json (with the task and labels), vocab.txt and
    /// tokenizer_config.json (whose model_max_length is the maximum input length).</summary>
    public virtual void Save(string dir)
    {
        ModelFolder.Save(Model, dir);
        Tokenizer.Save(dir);
    }

    /// <summary>Loads into this model the weights of a folder it saved (a run's best model), with what was chosen on
    /// dev along with them (a multi-label classifier's decision threshold).</summary>
    public virtual void LoadSaved(string dir) => ModelFolder.LoadWeights(Model, Path.Combine(dir, ModelFolder.SafeTensorsFileName));

    internal static void CheckMaxSeqLength(int maxSeqLength, BertConfig config)
    {
        if (maxSeqLength < 4) throw new BertSharpException($"maxSeqLength must be at least 4, got {maxSeqLength}") { Parameters = ["maxSeqLength"] };
        if (maxSeqLength > config.MaxPositionEmbeddings)
            throw new BertSharpException($"maxSeqLength {maxSeqLength} exceeds the model's max_position_embeddings {config.MaxPositionEmbeddings}") { Parameters = ["maxSeqLength"] };
    }

    /// <summary>The ONNX Runtime forward this model predicts with when loaded with the "onnxruntime" engine
    /// (<see cref="Inference.InferenceEngine"/>); null: libtorch. Training always runs in libtorch.</summary>
    internal Inference.InferenceEngine? Engine { get; set; }

    /// <summary>What runs this model's forward when it predicts: "torch" or "onnxruntime".</summary>
    public string EngineName => Engine is null ? Inference.InferenceEngine.Torch : Inference.InferenceEngine.OnnxRuntime;

    /// <summary>[B, C] (sequence heads) or [B, L, C] (token head) logits, as float32.</summary>
    protected Tensor Logits(Batch b)
    {
        if (Engine is { } engine && !Model.training) return engine.Output(b, "logits");
        using var logits = Model switch
        {
            BertForSequenceClassification s => s.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"]),
            BertForTokenClassification t => t.Forward(b["input_ids"], b["token_type_ids"], b["attention_mask"]),
            _ => throw new InvalidOperationException($"{Model.Architecture} has no task logits"),
        };
        return logits.to(ScalarType.Float32);
    }

    /// <summary>Runs <paramref name="body"/> with the model in evaluation mode and without gradients.</summary>
    protected void Evaluating(Action body)
    {
        bool wasTraining = Model.training;
        Model.eval();
        try
        {
            using var _ = no_grad();
            body();
        }
        finally
        {
            if (wasTraining) Model.train();
        }
    }

    /// <summary>Runs the model over the features in length-sorted batches; <paramref name="body"/> gets each batch's
    /// feature indices and its float32 logits on the CPU.</summary>
    protected void Run(IReadOnlyList<Feature> features, LabelKind kind, Action<int[], Tensor> body)
    {
        if (features.Count == 0) return;
        Evaluating(() =>
        {
            foreach (var idx in Batching.EvalOrder(features.Select(f => f.Length).ToList(), Math.Max(1, BatchSize)))
            {
                using var scope = NewDisposeScope();
                using var batch = Batching.Collate(idx.Select(i => features[i]).ToList(), Tokenizer.PadId, kind, device: Device);
                using var logits = Logits(batch);
                using var cpu = logits.cpu();
                body(idx, cpu);
            }
        });
    }

    /// <summary>A metric value safe to log: NaN (an undefined correlation) becomes 0.</summary>
    protected static double Finite(double v) => double.IsFinite(v) ? v : 0;

    public void Dispose()
    {
        Engine?.Dispose();
        Model.Dispose();
    }
}

/// <summary>
/// A task model for examples of type <typeparamref name="TExample"/>: scoring labelled examples (prediction side)
/// and what fine-tuning needs (training side): features, the loss of a batch, how batches are ordered, and the
/// metric that picks the best model.
/// </summary>
public abstract class TaskModel<TExample> : TaskModel
{
    protected TaskModel(BertWithHead model, BertTokenizer tokenizer, int maxSeqLength) : base(model, tokenizer, maxSeqLength) { }

    /// <summary>Metrics, report and (optionally) per-example predictions on labelled examples.</summary>
    public abstract DatasetScore Score(IReadOnlyList<TExample> examples, bool withPredictions = false);

    /// <summary>Scores examples read from a file; the reader's notes (counts, dropped examples, the part read) head the report.</summary>
    protected DatasetScore WithNotes(ExampleSet<TExample> set, bool withPredictions)
    {
        var score = Score(set.Examples, withPredictions);
        return score with { Report = string.Concat(set.Notes.Select(n => n + "\n")) + score.Report };
    }

    // ---- the training side ----

    /// <summary>Called once before training, with the training and dev examples (a task whose metrics depend on the
    /// kind of dev data chooses its selection metric here).</summary>
    public virtual void PrepareTraining(IReadOnlyList<TExample> train, IReadOnlyList<TExample> dev) { }

    /// <summary>A dev evaluation while fine-tuning, whose score picks the best model. A task that chooses a setting on
    /// dev (a multi-label classifier's decision threshold) chooses it here, so that the model saved as the best carries it.</summary>
    public virtual DatasetScore EvaluateDev(IReadOnlyList<TExample> dev) => Score(dev, withPredictions: true);

    /// <summary>What a batch's labels are.</summary>
    public abstract LabelKind LabelKind { get; }
    /// <summary>Training features (labels the model does not know are ignored by the loss).</summary>
    public abstract IReadOnlyList<Feature> Encode(IReadOnlyList<TExample> examples);
    /// <summary>The training loss of a batch from <see cref="Batching.Collate"/>.</summary>
    public abstract BatchLoss Loss(Batch batch);
    /// <summary>The metric that picks the best model by default, and the metrics to plot (names without prefix).</summary>
    public abstract string SelectionMetric { get; }
    public abstract IReadOnlyList<string> PlotMetrics { get; }
    /// <summary>The names of the metrics <see cref="Score"/> reports once training is prepared: what a run may pick its
    /// best model by. By default the loss and the plotted metrics.</summary>
    public virtual IReadOnlyList<string> EvaluationMetrics => ["loss", .. PlotMetrics];
    /// <summary>The figures a fine-tuning run draws: the loss and each plotted metric, by epoch.</summary>
    public virtual IReadOnlyList<PlotSpec> Plots => PlotSpec.FineTuning(PlotMetrics.Select(m => "val_" + m));
    /// <summary>Whether an input's prediction combines its windows' logits (<see cref="TextWindows"/>): training then
    /// batches an input's windows together, and <see cref="Loss"/> gets <see cref="Batching.CollateInputs"/>' batches.</summary>
    public virtual bool CombinesWindows => false;
    /// <summary>What reading the training examples took (windows, cuts), where the task counts it; set by <see cref="Encode"/>.</summary>
    public InputCounts? TrainingInputs { get; protected set; }
    /// <summary>Whether training batches group inputs of similar length (less padding).</summary>
    public virtual bool GroupsByLength => true;
    /// <summary>The random stream of the training order (see <see cref="Batching.Shuffled"/>).</summary>
    public virtual long OrderStream => Batching.OrderStream;

    /// <summary>Notes on the training features, for the user (e.g. how many windows long inputs became).</summary>
    public virtual IEnumerable<string> EncodingNotes(IReadOnlyList<TExample> train, IReadOnlyList<Feature> features, IReadOnlyList<TExample> dev)
    {
        if (features.Count != train.Count) yield return $"{features.Count} training windows from {train.Count} examples (max_seq_length {MaxSeqLength})";
    }

    /// <summary>Writes what the final evaluation of a run leaves in its folder: predictions_SPLIT.jsonl per score
    /// and results.json; returns the predictions file of each score.</summary>
    public virtual IReadOnlyList<string> WriteFinalFiles(string runDir, IReadOnlyList<(string Split, string Data, DatasetScore Score)> scores)
    {
        var files = new List<string>();
        foreach (var (split, _, score) in scores)
        {
            var file = Path.Combine(runDir, $"predictions_{split}.jsonl");
            JsonLines.Write(file, score.Predictions ?? []);
            files.Add(file);
        }
        var doc = new JsonObject { ["task"] = TaskName };
        if (TrainingInputs is { } train) doc["train"] = new JsonObject { ["inputs"] = train.ToJson() };
        foreach (var (split, data, score) in scores)
        {
            doc[split] = new JsonObject { ["data"] = data, ["metrics"] = JsonLines.Metrics(score.Metrics) };
            if (score.Inputs is { } inputs) doc[split]!["inputs"] = inputs.ToJson();
        }
        AtomicFile.WriteAllText(Path.Combine(runDir, "results.json"), doc.ToJsonString(JsonLines.Indented) + "\n");
        return files;
    }
}
