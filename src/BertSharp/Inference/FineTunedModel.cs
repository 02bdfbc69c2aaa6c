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
    /// <summary>The task of a model folder's config: "classify", "similarity", "tag" (the value of <see cref="TaskModel.TaskName"/>).</summary>
    public static string TaskOf(BertConfig c, string source = "config.json")
    {
        if (c.Extra["bertsharp_task"] is JsonValue v && v.TryGetValue(out string? named)) return named;
        string? arch = c.Architectures.FirstOrDefault();
        return arch switch
        {
            "BertForSequenceClassification" => c.ProblemType == "regression" || c.NumLabels == 1 ? SimilarityModel.Task : ClassificationModel.Task,
            "BertForTokenClassification" => TaggingModel.Task,
            _ => throw new BertSharpException($"{source}: architecture '{arch ?? "(none)"}' is not a fine-tuned task model (BertForSequenceClassification, BertForTokenClassification); fine-tune it first with bert finetune"),
        };
    }

    /// <summary>Loads the folder as the task model its config names. <paramref name="maxSeqLength"/> defaults to the
    /// tokenizer's model_max_length (the fine-tuning length), at most max_position_embeddings.</summary>
    public static TaskModel Load(string dir, int? maxSeqLength = null)
    {
        var config = ModelFolder.ReadConfig(dir);
        string task = TaskOf(config, Path.Combine(dir, ModelFolder.ConfigFile));
        var tokenizer = BertTokenizer.FromFolder(dir);
        int maxSeq = maxSeqLength ?? Math.Min(tokenizer.Options.ModelMaxLength ?? 512, config.MaxPositionEmbeddings);
        // The one dispatch on the task: a new task family adds its line here.
        return task switch
        {
            ClassificationModel.Task => Open(dir, "BertForSequenceClassification", (m, r) => new ClassificationModel((BertForSequenceClassification)m, tokenizer, maxSeq) { LoadReport = r }),
            SimilarityModel.Task => Open(dir, "BertForSequenceClassification", (m, r) => new SimilarityModel((BertForSequenceClassification)m, tokenizer, maxSeq) { LoadReport = r }),
            TaggingModel.Task => Open(dir, "BertForTokenClassification", (m, r) => new TaggingModel((BertForTokenClassification)m, tokenizer, maxSeq) { LoadReport = r }),
            _ => throw new BertSharpException($"{Path.Combine(dir, ModelFolder.ConfigFile)}: unknown bertsharp_task '{task}' (classify, similarity, tag)"),
        };
    }

    /// <summary>Loads the folder and checks it is a <typeparamref name="T"/> (e.g. <see cref="ClassificationModel"/>).</summary>
    public static T Load<T>(string dir, int? maxSeqLength = null) where T : TaskModel
    {
        var m = Load(dir, maxSeqLength);
        if (m is T t) return t;
        string task = m.TaskName;
        m.Dispose();
        throw new BertSharpException($"{dir}: is a '{task}' model, not a {typeof(T).Name}");
    }

    static TaskModel Open(string dir, string architecture, Func<BertWithHead, LoadReport, TaskModel> create)
    {
        var (model, report) = ModelFolder.Load(dir, architecture);
        model.to(TorchRuntime.Device);
        model.eval();
        try { return create(model, report); }
        catch { model.Dispose(); throw; }
    }
}
