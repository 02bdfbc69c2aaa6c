using System.Text.Json.Nodes;
using BertSharp.Evaluation;
using BertSharp.Modeling;
using BertSharp.Tasks.Tagging;
using BertSharp.Training;

namespace BertSharp.Tasks;

/// <summary>A fine-tuning run: the task, the data, the starting model, the schedule and the run folder. Every
/// option has the default `bert finetune` gives it; null ones are resolved when the run starts (and recorded so in
/// args.json).</summary>
public sealed record FineTuneOptions
{
    /// <summary>"classify", "similarity", "tag" or "qa" (<see cref="TaskFamily"/>).</summary>
    public required string Task { get; init; }
    /// <summary>The run folder; default runs/finetune-TASK (question answering: runs/qa).</summary>
    public string? Output { get; init; }
    /// <summary>Continue the run in <see cref="Output"/> from its last checkpoint: options left at their defaults
    /// take the values the run was started with (its args.json).</summary>
    public bool Resume { get; init; }

    // The data.
    public string? Train { get; init; }
    public string? Dev { get; init; }
    public string? Test { get; init; }
    public DataFileOptions Data { get; init; } = new();
    /// <summary>Question answering, one SQuAD file: train on its first N articles and evaluate on the rest (instead of <see cref="Dev"/>).</summary>
    public int? SplitArticles { get; init; }
    /// <summary>Read at most this many training examples / evaluation examples per file (the first ones).</summary>
    public int? MaxTrainExamples { get; init; }
    public int? MaxEvalExamples { get; init; }

    // The starting model.
    /// <summary>The starting model: a folder (a `bert pretrain` run folder or any HF BERT folder) or a Hub id
    /// (org/name[@revision], fetched by <see cref="Hub.ModelSource"/>). With
    /// <see cref="RandomInit"/>, only its config.json and vocab.txt are used.</summary>
    public string? Model { get; init; }
    /// <summary>Random initialization (a from-scratch baseline): the architecture from <see cref="Model"/>'s
    /// config, else from <see cref="ModelPreset"/> (default seed) and <see cref="Vocab"/>.</summary>
    public bool RandomInit { get; init; }
    public string? ModelPreset { get; init; }
    public string? Vocab { get; init; }
    public bool LowerCase { get; init; } = true;
    /// <summary>Tokens per input including [CLS]/[SEP]; default min(128, max_position_embeddings) (question
    /// answering: min(384, max_position_embeddings)).</summary>
    public int? MaxSeqLength { get; init; }

    // The task's own.
    /// <summary>Classification: weights of the labels in the loss — "auto" (from the training labels, see
    /// <see cref="Classification.ClassWeighting"/>) or a file of "label TAB weight" lines; null: unweighted. Multi-label
    /// data (<see cref="DataFileOptions.MultiLabel"/>): each label's pos_weight in the binary cross-entropy.</summary>
    public string? ClassWeights { get; init; }
    /// <summary>Classification: the weights themselves, by label (a run records the weights it used here, in args.json,
    /// so that a resumed run uses them); they take the place of <see cref="ClassWeights"/>.</summary>
    public IReadOnlyDictionary<string, double>? ClassWeightValues { get; init; }
    /// <summary>Tagging with chunk tags: score entities with seqeval's strict mode in this scheme (null: its default mode).</summary>
    public EntityScheme? EntityScheme { get; init; }
    /// <summary>Classification and similarity: cut inputs longer than <see cref="MaxSeqLength"/> (HF's longest_first
    /// truncation) instead of reading them in windows (<see cref="LongInputSettings"/>).</summary>
    public bool Truncate { get; init; }
    /// <summary>Classification and similarity: how the windows of a long input combine (mean or max of their logits).</summary>
    public WindowAggregation WindowAggregation { get; init; } = WindowAggregation.Mean;
    /// <summary>The distance in tokens between the starts of consecutive windows of a long input: question answering's
    /// context (<see cref="QuestionAnswering.QaSettings"/>), a classifier's or similarity model's text
    /// (<see cref="LongInputSettings"/>); null: half the window.</summary>
    public int? DocStride { get; init; }
    /// <summary>Question answering: windows and decoding (see <see cref="QuestionAnswering.QaSettings"/>; null: by the model's size).</summary>
    public int? MaxQueryLength { get; init; }
    public int NBestSize { get; init; } = 20;
    public int MaxAnswerLength { get; init; } = 30;
    public bool Version2WithNegative { get; init; }
    public double NullScoreDiffThreshold { get; init; }
    /// <summary>Sentence embeddings: the pooling ("mean", "cls", "max", "mean-sqrt-len"; several joined by '+'),
    /// whether to L2-normalise, and the loss for scored pairs ("cosent" or "cosine"); null: the starting folder's
    /// sentence-transformers settings (a plain BERT: mean, not normalised) and CoSENT.</summary>
    public string? Pooling { get; init; }
    public bool? Normalize { get; init; }
    public string? Loss { get; init; }

    // The schedule.
    /// <summary>Peak learning rate and passes over the data; default by the model's size (<see cref="FineTuneDefaults"/>).</summary>
    public double? LearningRate { get; init; }
    public int? Epochs { get; init; }
    /// <summary>Optimizer steps to train (instead of <see cref="Epochs"/>).</summary>
    public long? MaxSteps { get; init; }
    public int BatchSize { get; init; } = 32;
    /// <summary>Inputs per forward pass when evaluating; default 128 (question answering: the batch size, at least 64).</summary>
    public int? EvalBatchSize { get; init; }
    public int GradientAccumulation { get; init; } = 1;
    public double WarmupRatio { get; init; } = 0.1;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Evaluate on dev (and checkpoint) every N steps; 0: once per epoch.</summary>
    public long EvalEvery { get; init; }
    /// <summary>The dev metric that picks the best model and that early stopping watches: any the task's evaluation
    /// reports (<see cref="TaskModel{TExample}.EvaluationMetrics"/>; "loss" is better lower, the others higher); null:
    /// the task's own (accuracy, pearson, f1, spearman, ...).</summary>
    public string? MetricForBestModel { get; init; }
    /// <summary>Stop after this many evaluations in a row without a better <see cref="MetricForBestModel"/> (null:
    /// never); the run is then complete, with its best model.</summary>
    public int? EarlyStoppingPatience { get; init; }
    public bool GroupByLength { get; init; } = true;

    // The process.
    /// <summary>Seeds torch, the data order and the new head; default 42.</summary>
    public long? Seed { get; init; }
    /// <summary>Intra-op CPU threads (default: libtorch's choice).</summary>
    public int? Threads { get; init; }
    /// <summary>"fp32" or "bf16" (bfloat16 activations and matmuls; float32 weights, optimizer state and losses).</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>The run folder (<see cref="Output"/> or its default).</summary>
    public string OutputFolder => Output ?? (Task == QuestionAnswering.QuestionAnsweringModel.Task ? "runs/qa" : $"runs/finetune-{Task}");
}

/// <summary>Per-size defaults of the fine-tuning schedule (the batch size default is 32 for all).</summary>
public static class FineTuneDefaults
{
    /// <summary>Learning rate and epochs by hidden size: small models take larger steps and more epochs (the best
    /// epoch is kept, so extra epochs cost time, not quality). The ≤ 256 row was chosen on the dev sets of SNLI,
    /// STS-B and the treebank with the seed preset (docs/RESULTS.md); the others follow the usual BERT recipes
    /// (Devlin et al.; Turc et al. for the small sizes) and are not measured here.</summary>
    public static (double LearningRate, int Epochs) For(BertConfig c) => c.HiddenSize switch
    {
        <= 256 => (5e-4, 10),
        <= 512 => (1e-4, 4),
        _ => (3e-5, 3),
    };

    public const string Describe = "learning rate 5e-4 and 10 epochs for hidden size ≤ 256 (seed, tiny, mini); 1e-4 and 4 for ≤ 512 (small, medium); 3e-5 and 3 for larger (base, large); question answering: 5e-5 and 2";
}

/// <summary>The args.json of fine-tuning runs: the options of `bert finetune TASK` under their names.</summary>
public static class FineTuneArgs
{
    static RunArgs<FineTuneOptions> Head(bool qa)
    {
        var a = new RunArgs<FineTuneOptions>()
            .Add("--train", o => o.Train, (o, v) => o with { Train = v })
            .Add("--dev", o => o.Dev, (o, v) => o with { Dev = v });
        if (qa) a.Add("--split-articles", o => o.SplitArticles, (o, v) => o with { SplitArticles = v });
        else a.Add("--test", o => o.Test, (o, v) => o with { Test = v });
        return a
            .Add("--output", o => o.Output, (o, v) => o with { Output = v })
            .Add("--model", o => o.Model, (o, v) => o with { Model = v })
            .Add("--init", o => o.RandomInit ? "random" : "pretrained", (o, v) => o with { RandomInit = v == "random" })
            // a preset goes with random initialization only (runs of other versions recorded "seed" for every run)
            .Add("--model-preset", o => o.ModelPreset, (o, v) => o.RandomInit ? o with { ModelPreset = v } : o)
            .Add("--vocab", o => o.Vocab, (o, v) => o with { Vocab = v })
            .Add("--cased", o => !o.LowerCase, (o, v) => o with { LowerCase = !v });
    }

    static RunArgs<FineTuneOptions> Tail(RunArgs<FineTuneOptions> a) => a
        .Add("--seed", o => o.Seed, (o, v) => o with { Seed = v })
        .Add("--threads", o => o.Threads, (o, v) => o with { Threads = v })
        .Add("--precision", o => o.Precision, (o, v) => o with { Precision = v ?? "fp32" });

    static RunArgs<FineTuneOptions> Schedule() => Head(qa: false)
        .Add("--epochs", o => o.Epochs, (o, v) => o with { Epochs = v })
        .Add("--batch-size", o => o.BatchSize, (o, v) => o with { BatchSize = v })
        .Add("--learning-rate", o => o.LearningRate, (o, v) => o with { LearningRate = v })
        .Add("--max-seq-length", o => o.MaxSeqLength, (o, v) => o with { MaxSeqLength = v })
        .Add("--warmup-ratio", o => o.WarmupRatio, (o, v) => o with { WarmupRatio = v })
        .Add("--weight-decay", o => o.WeightDecay, (o, v) => o with { WeightDecay = v })
        .Add("--gradient-accumulation", o => o.GradientAccumulation, (o, v) => o with { GradientAccumulation = v })
        .Add("--max-steps", o => o.MaxSteps, (o, v) => o with { MaxSteps = v })
        .Add("--eval-every", o => o.EvalEvery, (o, v) => o with { EvalEvery = v })
        .Add("--metric-for-best-model", o => o.MetricForBestModel, (o, v) => o with { MetricForBestModel = v })
        .Add("--early-stopping-patience", o => o.EarlyStoppingPatience, (o, v) => o with { EarlyStoppingPatience = v })
        .Add("--eval-batch-size", o => o.EvalBatchSize, (o, v) => o with { EvalBatchSize = v })
        .Add("--max-train-examples", o => o.MaxTrainExamples, (o, v) => o with { MaxTrainExamples = v })
        .Add("--max-eval-examples", o => o.MaxEvalExamples, (o, v) => o with { MaxEvalExamples = v })
        .Add("--no-length-grouping", o => !o.GroupByLength, (o, v) => o with { GroupByLength = !v })
        .Add("--format", o => o.Data.Format, (o, v) => o with { Data = o.Data with { Format = v } });

    static RunArgs<FineTuneOptions> Columns(RunArgs<FineTuneOptions> a) => a
        .Add("--text-column", o => o.Data.TextColumn, (o, v) => o with { Data = o.Data with { TextColumn = v } })
        .Add("--pair-column", o => o.Data.PairColumn, (o, v) => o with { Data = o.Data with { PairColumn = v } })
        .Add("--label-column", o => o.Data.LabelColumn, (o, v) => o with { Data = o.Data with { LabelColumn = v } })
        .Add("--no-header", o => o.Data.NoHeader, (o, v) => o with { Data = o.Data with { NoHeader = v } });

    /// <summary>Long inputs of classification and similarity. A run recorded before windows existed cut them: its
    /// args.json has no "--truncate", and a resumed run goes on cutting.</summary>
    static RunArgs<FineTuneOptions> LongInputs(RunArgs<FineTuneOptions> a) => a
        .Add("--truncate", o => o.Truncate, (o, v) => o with { Truncate = v }, absent: JsonValue.Create(true))
        .Add("--doc-stride", o => o.DocStride, (o, v) => o with { DocStride = v })
        .Add("--window-aggregation", o => LongInputSettings.Name(o.WindowAggregation), (o, v) => o with { WindowAggregation = v is null ? WindowAggregation.Mean : LongInputSettings.ParseAggregation(v) });

    /// <summary>Similarity: tables with text, pair and label columns; long inputs.</summary>
    public static RunArgs<FineTuneOptions> Table { get; } = Tail(LongInputs(Columns(Schedule())));

    /// <summary>Classification: tables with text, pair and label columns; long inputs; multi-label data; the class weights, recorded
    /// as the weights used (a label → weight object), so that a resumed run uses the same.</summary>
    public static RunArgs<FineTuneOptions> Classification { get; } = Tail(LongInputs(Columns(Schedule()))
        .Add("--multi-label", o => o.Data.MultiLabel, (o, v) => o with { Data = o.Data with { MultiLabel = v } })
        .AddJson("--class-weights",
            o => o.ClassWeightValues is { } w ? new JsonObject(w.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)))
                : o.ClassWeights is { } s ? JsonValue.Create(s) : null,
            (o, v) => v switch
            {
                null => o with { ClassWeights = null, ClassWeightValues = null },
                JsonObject w => o with { ClassWeightValues = w.ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<double>() ?? throw new FormatException($"the weight of '{kv.Key}' is null")) },
                _ => o with { ClassWeights = v.GetValue<string>() },
            }));

    /// <summary>Sentence embeddings: tables with text, pair and label columns; pooling, normalisation, loss.</summary>
    public static RunArgs<FineTuneOptions> Embedding { get; } = Tail(Columns(Schedule())
        .Add("--pooling", o => o.Pooling, (o, v) => o with { Pooling = v })
        .Add("--normalize", o => o.Normalize, (o, v) => o with { Normalize = v })
        .Add("--loss", o => o.Loss, (o, v) => o with { Loss = v }));

    /// <summary>Tagging: CoNLL tag column, JSONL fields, the entity scheme.</summary>
    public static RunArgs<FineTuneOptions> Tagging { get; } = Tail(Schedule()
        .Add("--tag-column", o => o.Data.TagColumn, (o, v) => o with { Data = o.Data with { TagColumn = v } })
        .Add("--text-column", o => o.Data.TextColumn, (o, v) => o with { Data = o.Data with { TextColumn = v } })
        .Add("--label-column", o => o.Data.LabelColumn, (o, v) => o with { Data = o.Data with { LabelColumn = v } })
        .Add("--entity-scheme", o => o.EntityScheme?.ToString(), (o, v) => o with { EntityScheme = v is null ? null : TaggingModel.ParseScheme(v) }));

    /// <summary>Question answering: SQuAD files, windows and decoding.</summary>
    public static RunArgs<FineTuneOptions> QuestionAnswering { get; } = Tail(Head(qa: true)
        .Add("--epochs", o => o.Epochs, (o, v) => o with { Epochs = v })
        .Add("--max-steps", o => o.MaxSteps, (o, v) => o with { MaxSteps = v })
        .Add("--batch-size", o => o.BatchSize, (o, v) => o with { BatchSize = v })
        .Add("--gradient-accumulation", o => o.GradientAccumulation, (o, v) => o with { GradientAccumulation = v })
        .Add("--learning-rate", o => o.LearningRate, (o, v) => o with { LearningRate = v })
        .Add("--warmup-ratio", o => o.WarmupRatio, (o, v) => o with { WarmupRatio = v })
        .Add("--eval-every", o => o.EvalEvery, (o, v) => o with { EvalEvery = v })
        .Add("--metric-for-best-model", o => o.MetricForBestModel, (o, v) => o with { MetricForBestModel = v })
        .Add("--early-stopping-patience", o => o.EarlyStoppingPatience, (o, v) => o with { EarlyStoppingPatience = v })
        .Add("--max-eval-questions", o => o.MaxEvalExamples, (o, v) => o with { MaxEvalExamples = v })
        .Add("--max-seq-length", o => o.MaxSeqLength, (o, v) => o with { MaxSeqLength = v })
        .Add("--doc-stride", o => o.DocStride, (o, v) => o with { DocStride = v })
        .Add("--max-query-length", o => o.MaxQueryLength, (o, v) => o with { MaxQueryLength = v })
        .Add("--n-best-size", o => o.NBestSize, (o, v) => o with { NBestSize = v })
        .Add("--max-answer-length", o => o.MaxAnswerLength, (o, v) => o with { MaxAnswerLength = v })
        .Add("--null-score-diff-threshold", o => o.NullScoreDiffThreshold, (o, v) => o with { NullScoreDiffThreshold = v })
        .Add("--version-2-with-negative", o => o.Version2WithNegative, (o, v) => o with { Version2WithNegative = v }));
}
