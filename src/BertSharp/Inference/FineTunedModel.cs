using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using BertSharp.Tokenization;

namespace BertSharp.Inference;

/// <summary>How a model folder is loaded for prediction.</summary>
public sealed record LoadOptions
{
    /// <summary>Tokens per input (default: the length the model was fine-tuned with).</summary>
    public int? MaxSeqLength { get; init; }
    /// <summary>"fp32" or "bf16".</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>What runs the forward pass: "torch" (libtorch, the default), "onnxruntime" or "auto" (<see cref="InferenceEngine"/>).</summary>
    public string Engine { get; init; } = InferenceEngine.Torch;
    /// <summary>Where a Hub id is fetched from and cached (default: <see cref="Hub.HubOptions.FromEnvironment()"/>).</summary>
    public Hub.HubOptions? Hub { get; init; }
}

/// <summary>
/// Loads a fine-tuned model folder once for many predictions — the C# side of `bert predict` and `bert evaluate`:
/// <code>
/// using var classifier = FineTunedModel.Load&lt;ClassificationModel&gt;("runs/snli");
/// var p = classifier.Predict("A man is playing a guitar.", "Someone makes music.");   // p.Label, p.Probabilities
/// using var tagger = FineTunedModel.Load&lt;TaggingModel&gt;("runs/pos");
/// var tags = tagger.Predict("The cat sat .").Tags;
/// using var qa = FineTunedModel.Load&lt;QuestionAnsweringModel&gt;("runs/qa");
/// var answer = qa.Answer("Who sat?", "The cat sat.");                                 // answer.Text, answer.Start
/// </code>
/// The task comes from config.json (<see cref="TaskFamily.Of"/>): "bertsharp_task" when BertSharp wrote the
/// folder, else the HF architecture and problem_type (a folder fine-tuned with transformers works too).
/// </summary>
public static class FineTunedModel
{
    /// <summary>The task name of a model folder's config ("classify", "similarity", "tag", "qa", "embed").</summary>
    public static string TaskOf(Modeling.BertConfig c, string source = "config.json") => TaskFamily.Of(c, source).Task;

    /// <summary>Loads the folder (or Hub model: <see cref="Hub.ModelSource"/>) as the task model its config names; a
    /// sentence-transformers folder (modules.json) of another architecture as an <see cref="EmbeddingModel"/>.</summary>
    public static TaskModel Load(string dir, LoadOptions? options = null)
    {
        dir = Hub.ModelSource.Resolve(dir, options?.Hub);
        var config = ModelFolder.ReadConfig(dir);
        if (TaskFamily.TryOf(config) is null && File.Exists(Path.Combine(dir, SentenceEmbeddingSettings.ModulesFile))) return Load<EmbeddingModel>(dir, options);
        return Load(dir, TaskFamily.Of(config, Path.Combine(dir, ModelFolder.ConfigFile)), options ?? new());
    }

    static TaskModel Load(string dir, TaskFamily family, LoadOptions o)
    {
        var tokenizer = BertTokenizer.FromFolder(dir);
        var (model, report) = ModelFolder.Load(dir, family.Architecture, compute: ComputeOptions.ForInference(o.Precision), device: o.Device);
        try
        {
            var taskModel = family.Wrap(model, tokenizer, o.MaxSeqLength, dir);
            taskModel.LoadReport = report;
            InferenceEngine.Attach(taskModel, o.Engine, dir);
            return taskModel;
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>Loads the folder as a <typeparamref name="T"/> (e.g. <see cref="ClassificationModel"/>); a folder of
    /// another task is an error naming what it holds.</summary>
    public static T Load<T>(string dir, LoadOptions? options = null) where T : TaskModel
    {
        if (typeof(T) == typeof(TaskModel)) return (T)Load(dir, options);
        dir = Hub.ModelSource.Resolve(dir, options?.Hub);
        if (typeof(T) == typeof(EmbeddingModel))
        {
            // Any BERT folder embeds: its encoder with the folder's pooling (a plain folder: mean pooling).
            var o = options ?? new();
            return (T)(TaskModel)SentenceEncoder.LoadModel(dir, o.MaxSeqLength, o.Precision, o.Device, o.Engine).Model;
        }
        var config = ModelFolder.ReadConfig(dir);
        var wanted = TaskFamily.All.FirstOrDefault(f => f.ModelType == typeof(T)) ?? throw new ArgumentException($"{typeof(T).Name} is not a task model of a family");
        var family = TaskFamily.TryOf(config);
        if (family != wanted)
        {
            string holds = family is null ? $"config.json architectures: {config.Architectures.FirstOrDefault() ?? "none"}" : $"it is {family.Description}";
            throw new BertSharpException($"{dir}: not {wanted.Description} ({holds}); fine-tune one with `bert finetune {wanted.Task}`");
        }
        return (T)Load(dir, family, options ?? new());
    }
}
