using System.Text.Json.Nodes;
using BertSharp.Modeling;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;
using BertSharp.Tokenization;
using BertSharp.Training;

namespace BertSharp.Tasks;

/// <summary>
/// One task family: its name (config.json "bertsharp_task"), its HF architecture, how a folder of that architecture
/// without "bertsharp_task" is recognised, and how a model of it is wrapped as a <see cref="TaskModel"/>.
/// <see cref="All"/> is the one dispatch on the task, used by loading (predict, evaluate, info) and fine-tuning.
/// </summary>
public abstract class TaskFamily
{
    /// <summary>"classify", "similarity", "tag", "qa" or "embed".</summary>
    public abstract string Task { get; }
    public abstract string Architecture { get; }
    /// <summary>The <see cref="TaskModel"/> class of the family.</summary>
    public abstract Type ModelType { get; }
    /// <summary>For messages: "a classification model".</summary>
    public abstract string Description { get; }
    /// <summary>Whether the config's labels (id2label) are this family's classes or tags.</summary>
    public virtual bool HasLabels => true;

    /// <summary>A folder of <see cref="Architecture"/> without "bertsharp_task" is this family when this holds
    /// (tried in <see cref="All"/>'s order).</summary>
    public virtual bool Matches(BertConfig config) => true;

    /// <summary>Wraps a model of <see cref="Architecture"/>. <paramref name="folder"/>: the folder it was loaded
    /// from, whose own settings then apply (null for a new model); <paramref name="maxSeqLength"/>: tokens per
    /// input (null: the length the folder was fine-tuned with, at most max_position_embeddings).</summary>
    public abstract TaskModel Wrap(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder);

    /// <summary>Runs a fine-tuning run of this family (<see cref="FineTuneRun.Run(FineTuneOptions, TrainingEvents?, CancellationToken)"/>).</summary>
    internal abstract FineTuneResult FineTune(FineTuneOptions options, TrainingEvents? events, CancellationToken cancel);

    /// <summary>Every family a model folder can hold.</summary>
    public static IReadOnlyList<TaskFamily> All { get; } =
        [SimilarityModel.Family, ClassificationModel.Family, TaggingModel.Family, QuestionAnsweringModel.Family, EmbeddingModel.Family];

    public static TaskFamily Named(string task) =>
        All.FirstOrDefault(f => f.Task == task)
        ?? throw new BertSharpException($"task '{task}': choose {string.Join(", ", All.Select(f => f.Task))}") { Parameters = ["task"] };

    /// <summary>The family of a model folder's config: "bertsharp_task" when BertSharp wrote it, else the first
    /// family whose architecture and condition match (a folder fine-tuned with transformers); null when none does.</summary>
    public static TaskFamily? TryOf(BertConfig c)
    {
        if (c.Extra["bertsharp_task"] is JsonValue v && v.TryGetValue(out string? named))
            return All.FirstOrDefault(k => k.Task == named);
        string? arch = c.Architectures.FirstOrDefault();
        return All.FirstOrDefault(k => k.Architecture == arch && k.Matches(c));
    }

    /// <summary>As <see cref="TryOf"/>, an error naming <paramref name="source"/> when no family matches.</summary>
    public static TaskFamily Of(BertConfig c, string source = "config.json")
    {
        if (TryOf(c) is { } family) return family;
        if (c.Extra["bertsharp_task"] is JsonValue v && v.TryGetValue(out string? named))
            throw new BertSharpException($"{source}: unknown bertsharp_task '{named}' ({string.Join(", ", All.Select(k => k.Task))})");
        string? arch = c.Architectures.FirstOrDefault();
        throw new BertSharpException($"{source}: architecture '{arch ?? "(none)"}' is not a fine-tuned task model ({string.Join(", ", All.Select(k => k.Architecture).Distinct())}); fine-tune it first with bert finetune");
    }

    /// <summary>The default maximum input length of a folder: its tokenizer's model_max_length (the fine-tuning
    /// length), at most max_position_embeddings.</summary>
    protected static int FolderMaxSeqLength(BertTokenizer tokenizer, BertConfig config) =>
        Math.Min(tokenizer.Options.ModelMaxLength ?? 512, config.MaxPositionEmbeddings);
}

/// <summary>A task family's fine-tuning: its data reader, the labels of a new head, and its defaults.</summary>
public abstract class TaskFamily<TExample> : TaskFamily
{
    /// <summary>Reads a data file of the family's formats (<see cref="DataFileOptions"/> says which part).</summary>
    public abstract ExampleSet<TExample> Read(string path, DataFileOptions options);

    /// <summary>Sets a config for a new head: the labels of the training examples, problem_type, the task name.</summary>
    public abstract void Configure(BertConfig config, IReadOnlyList<TExample> train);

    public abstract TaskModel<TExample> Create(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder);

    public sealed override TaskModel Wrap(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder) =>
        Create(model, tokenizer, maxSeqLength, folder);

    internal sealed override FineTuneResult FineTune(FineTuneOptions options, TrainingEvents? events, CancellationToken cancel) =>
        FineTuneRun.Run(this, options, events, cancel);

    /// <summary>The options a run of this family records in args.json.</summary>
    public virtual RunArgs<FineTuneOptions> RunArgs => FineTuneArgs.Table;

    /// <summary>The options with the family's own defaults resolved by the model (e.g. question-answering windows).</summary>
    public virtual FineTuneOptions Resolved(FineTuneOptions options, TaskModel<TExample> model) => options;

    /// <summary>Tokens per input when fine-tuning without a given length.</summary>
    public virtual int DefaultMaxSeqLength(BertConfig config) => Math.Min(128, config.MaxPositionEmbeddings);

    /// <summary>The learning rate and epochs when fine-tuning without given ones.</summary>
    public virtual (double LearningRate, int Epochs) DefaultSchedule(BertConfig config) => FineTuneDefaults.For(config);

    /// <summary>Inputs per forward pass when evaluating, without a given size.</summary>
    public virtual int DefaultEvalBatchSize(int batchSize) => 128;

    /// <summary>Whether a file with a built-in split has a test part besides its train and dev parts.</summary>
    public virtual bool SplitHasTestPart => true;

    /// <summary>What "give dev" means for this family when neither a dev file nor a built-in split is there.</summary>
    public virtual string NoDevHint => "only the treebank sample has a built-in split";

    /// <summary>Checks the data against the options before a model is built (e.g. unanswerable questions need
    /// version2WithNegative).</summary>
    public virtual void CheckData(ExampleSet<TExample> train, ExampleSet<TExample> dev, FineTuneOptions options) { }

    /// <summary>Applies the family's own options to a new task model (question-answering windows, an entity scheme, a
    /// sentence encoder's pooling, a classifier's class weights, which may come from <paramref name="train"/>);
    /// <see cref="FineTuneOptions.Model"/> is then the starting folder as resolved (a Hub id's snapshot folder).</summary>
    public virtual void Apply(TaskModel<TExample> model, FineTuneOptions options, IReadOnlyList<TExample> train) { }
}
