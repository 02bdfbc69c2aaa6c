using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;
using BertSharp.Tokenization;
using TorchSharp;

namespace BertSharp.Inference;

/// <summary>
/// Loads a fine-tuned model folder once for many predictions — the C# side of `bert predict` and `bert evaluate`:
/// <code>
/// using var classifier = FineTunedModel.Load&lt;ClassificationModel&gt;("runs/snli");
/// var p = classifier.Predict("A man is playing a guitar.", "Someone makes music.");   // p.Label, p.Probabilities
/// using var tagger = FineTunedModel.Load&lt;TaggingModel&gt;("runs/pos");
/// var tags = tagger.Predict("The cat sat .").Tags;
/// </code>
/// The task comes from config.json: "bertsharp_task" when BertSharp wrote the folder, else the HF architecture
/// and problem_type (a folder fine-tuned with transformers works too).
/// </summary>
public static class FineTunedModel
{
    /// <summary>A task family a folder can hold: its name (config.json "bertsharp_task"), its HF architecture, when a
    /// folder of that architecture without "bertsharp_task" is this task, and how to wrap the loaded model.</summary>
    public sealed record Kind(string Task, string Architecture, Func<BertConfig, bool> Matches, Func<BertWithHead, BertTokenizer, int, TaskModel> Create);

    /// <summary>The one dispatch on the task, used by `bert predict`, `bert evaluate` and <see cref="Load"/>: a new task
    /// family adds its line here.</summary>
    public static readonly IReadOnlyList<Kind> Kinds =
    [
        new(SimilarityModel.Task, "BertForSequenceClassification", c => c.ProblemType == "regression" || c.NumLabels == 1, (m, t, n) => new SimilarityModel((BertForSequenceClassification)m, t, n)),
        new(ClassificationModel.Task, "BertForSequenceClassification", _ => true, (m, t, n) => new ClassificationModel((BertForSequenceClassification)m, t, n)),
        new(TaggingModel.Task, "BertForTokenClassification", _ => true, (m, t, n) => new TaggingModel((BertForTokenClassification)m, t, n)),
    ];

    /// <summary>The task family of a model folder's config: "bertsharp_task" when BertSharp wrote it, else the first
    /// kind whose architecture and condition match (a folder fine-tuned with transformers).</summary>
    public static Kind KindOf(BertConfig c, string source = "config.json")
    {
        if (c.Extra["bertsharp_task"] is JsonValue v && v.TryGetValue(out string? named))
            return Kinds.FirstOrDefault(k => k.Task == named)
                ?? throw new BertSharpException($"{source}: unknown bertsharp_task '{named}' ({string.Join(", ", Kinds.Select(k => k.Task))})");
        string? arch = c.Architectures.FirstOrDefault();
        return Kinds.FirstOrDefault(k => k.Architecture == arch && k.Matches(c))
            ?? throw new BertSharpException($"{source}: architecture '{arch ?? "(none)"}' is not a fine-tuned task model ({string.Join(", ", Kinds.Select(k => k.Architecture).Distinct())}); fine-tune it first with bert finetune");
    }

    /// <summary>The task name of a model folder's config ("classify", "similarity", "tag").</summary>
    public static string TaskOf(BertConfig c, string source = "config.json") => KindOf(c, source).Task;

    /// <summary>Loads the folder as the task model its config names. <paramref name="maxSeqLength"/> defaults to the
    /// tokenizer's model_max_length (the fine-tuning length), at most max_position_embeddings.</summary>
    public static TaskModel Load(string dir, int? maxSeqLength = null, ComputeOptions? compute = null)
    {
        var config = ModelFolder.ReadConfig(dir);
        var kind = KindOf(config, Path.Combine(dir, ModelFolder.ConfigFile));
        var tokenizer = BertTokenizer.FromFolder(dir);
        int maxSeq = maxSeqLength ?? Math.Min(tokenizer.Options.ModelMaxLength ?? 512, config.MaxPositionEmbeddings);
        var (model, report) = ModelFolder.Load(dir, kind.Architecture, compute: compute);
        model.to(TorchRuntime.Device);
        model.eval();
        try
        {
            var taskModel = kind.Create(model, tokenizer, maxSeq);
            taskModel.LoadReport = report;
            return taskModel;
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>Loads the folder and checks it is a <typeparamref name="T"/> (e.g. <see cref="ClassificationModel"/>).</summary>
    public static T Load<T>(string dir, int? maxSeqLength = null, ComputeOptions? compute = null) where T : TaskModel
    {
        var m = Load(dir, maxSeqLength, compute);
        if (m is T t) return t;
        string task = m.TaskName;
        m.Dispose();
        throw new BertSharpException($"{dir}: is a '{task}' model, not a {typeof(T).Name}");
    }
}
