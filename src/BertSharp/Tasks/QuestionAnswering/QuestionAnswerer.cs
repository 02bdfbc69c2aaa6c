using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;

namespace BertSharp.Tasks.QuestionAnswering;

/// <summary>The answers to a SQuAD file and their official scores.</summary>
public sealed record QaEvaluation(IReadOnlyList<QaAnswer> Answers, SquadScores Scores);

/// <summary>
/// Answers questions about a context with a fine-tuned question-answering model folder (config.json architectures
/// BertForQuestionAnswering). Loads the folder once; answers one question or many (long contexts are read in
/// overlapping windows and the best span over all of them wins). Settings come from the folder's qa_config.json
/// (written by fine-tuning), else from the model's size.
/// </summary>
public sealed class QuestionAnswerer : IDisposable
{
    public const string Architecture = "BertForQuestionAnswering";

    private readonly BertForQuestionAnswering model;
    private readonly QaFeaturizer featurizer;

    /// <param name="adjust">changes the folder's settings (e.g. from command-line options) before they are checked</param>
    public QuestionAnswerer(string modelDir, Func<QaSettings, QaSettings>? adjust = null, ComputeOptions? compute = null)
    {
        var config = ModelFolder.ReadConfig(modelDir);
        var arch = config.Architectures.FirstOrDefault();
        if (arch != Architecture)
            throw new BertSharpException($"{modelDir}: not a question-answering model (config.json architectures: {arch ?? "none"}); fine-tune one with `bert finetune qa`");
        var (m, report) = ModelFolder.Load(modelDir, Architecture, compute: compute);
        model = (BertForQuestionAnswering)m;
        model.to(TorchRuntime.Device);
        model.eval();
        LoadReport = report;
        Tokenizer = BertTokenizer.FromFolder(modelDir);
        var settings = QaSettings.Load(modelDir) ?? QaSettings.ForModel(model.Config.MaxPositionEmbeddings);
        if (adjust != null) settings = adjust(settings);
        settings.Validate(model.Config.MaxPositionEmbeddings);
        Settings = settings;
        featurizer = new QaFeaturizer(Tokenizer, settings);
    }

    /// <summary>Whether <paramref name="modelDir"/> holds a question-answering model (config.json architectures).</summary>
    public static bool IsQaModel(string modelDir)
    {
        var path = Path.Combine(modelDir, ModelFolder.ConfigFile);
        if (!File.Exists(path)) return false;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) is JsonObject o && o["architectures"] is JsonArray a
                && a.Count > 0 && a[0] is JsonValue v && v.TryGetValue(out string? s) && s == Architecture;
        }
        catch (JsonException) { return false; }
    }

    public BertTokenizer Tokenizer { get; }
    public QaSettings Settings { get; }
    public LoadReport LoadReport { get; }
    public BertConfig Config => model.Config;
    /// <summary>Windows per forward pass.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>The answer to one question about one context.</summary>
    public QaAnswer Answer(string question, string context, string id = "0")
    {
        ArgumentNullException.ThrowIfNull(question);
        ArgumentNullException.ThrowIfNull(context);
        if (string.IsNullOrWhiteSpace(context)) throw new BertSharpException($"question {id}: the context is empty");
        if (string.IsNullOrWhiteSpace(question)) throw new BertSharpException($"question {id}: the question is empty");
        return Answer(new[] { new SquadExample(id, question, context, Array.Empty<SquadAnswer>()) })[0];
    }

    /// <summary>Answers many questions, batching their windows; the answers come in the questions' order. A
    /// question too long to fit max_seq_length is an error (cut to max_query_length it would hardly be the question
    /// asked), unless <paramref name="cutLongQuestions"/> (how datasets are read, as Google's run_squad.py does).</summary>
    /// <param name="progress">called with the number of windows done and the total</param>
    public IReadOnlyList<QaAnswer> Answer(IReadOnlyList<SquadExample> questions, Action<int, int>? progress = null, bool cutLongQuestions = false)
    {
        if (questions.Count == 0) return Array.Empty<QaAnswer>();
        var set = featurizer.Build(questions, withTargets: false, rejectOverlongQuestions: !cutLongQuestions);
        var (logits, _) = QaTask.Run(model, set.Features, BatchSize, Tokenizer.PadId,
            progress: progress is null ? null : done => progress(done, set.Features.Count));
        return QaPostProcessing.Decode(set, logits, Settings);
    }

    /// <summary>Answers every question of <paramref name="data"/> and scores the answers with the official SQuAD
    /// script (v2.0 when the data has unanswerable questions or the model was trained for them, else v1.1).</summary>
    public QaEvaluation Evaluate(SquadDataset data, Action<int, int>? progress = null)
    {
        var answers = Answer(data.Examples, progress, cutLongQuestions: true);
        var predictions = answers.ToDictionary(a => a.Id, a => a.Text);
        var scores = SquadScoring.Evaluate(data.Examples, predictions, data.IsVersion2 || Settings.Version2WithNegative);
        return new QaEvaluation(answers, scores);
    }

    public void Dispose() => model.Dispose();
}

/// <summary>The files the SQuAD tools read and write: predictions.json ({id: text}, what the official evaluation
/// script reads), nbest_predictions.json, null_odds.json (SQuAD 2.0) and eval_results.json.</summary>
public static class QaOutputFiles
{
    public const string Predictions = "predictions.json";
    public const string NBest = "nbest_predictions.json";
    public const string NullOdds = "null_odds.json";
    public const string Results = "eval_results.json";

    static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes predictions.json and nbest_predictions.json (and null_odds.json when the answers carry null
    /// score differences) into <paramref name="dir"/>; returns the paths written.</summary>
    public static List<string> Write(string dir, IReadOnlyList<QaAnswer> answers, SquadScores? scores = null)
    {
        Directory.CreateDirectory(dir);
        var written = new List<string>();
        void Save(string name, JsonNode node)
        {
            var path = Path.Combine(dir, name);
            AtomicFile.WriteAllText(path, node.ToJsonString(Indented) + "\n");
            written.Add(path);
        }
        var preds = new JsonObject();
        foreach (var a in answers) preds[a.Id] = a.Text;
        Save(Predictions, preds);
        var nbest = new JsonObject();
        foreach (var a in answers)
            nbest[a.Id] = new JsonArray(a.NBest.Select(c => (JsonNode)new JsonObject
            {
                ["text"] = c.Text,
                ["probability"] = c.Probability,
                ["start_logit"] = c.StartLogit,
                ["end_logit"] = c.EndLogit,
                ["start"] = c.Start,
                ["end"] = c.End,
            }).ToArray());
        Save(NBest, nbest);
        if (answers.Any(a => a.NullScoreDiff is not null))
        {
            var odds = new JsonObject();
            foreach (var a in answers) odds[a.Id] = a.NullScoreDiff;
            Save(NullOdds, odds);
        }
        if (scores != null)
        {
            var o = new JsonObject();
            foreach (var (k, v) in scores.ToDictionary()) o[k] = v;
            if (scores.Missing > 0) o["missing"] = scores.Missing;
            o["script"] = $"evaluate-v{scores.ScriptVersion}.py";
            Save(Results, o);
        }
        return written;
    }
}
