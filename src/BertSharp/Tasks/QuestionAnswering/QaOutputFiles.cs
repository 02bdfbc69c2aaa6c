using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Tasks.QuestionAnswering;

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
        if (scores != null) Save(Results, ResultsJson(scores));
        return written;
    }

    /// <summary>The official script's numbers, what missed a prediction, and which script: eval_results.json.</summary>
    public static JsonObject ResultsJson(SquadScores scores)
    {
        var o = new JsonObject();
        foreach (var (k, v) in scores.ToDictionary()) o[k] = v;
        if (scores.Missing > 0) o["missing"] = scores.Missing;
        o["script"] = $"evaluate-v{scores.ScriptVersion}.py";
        return o;
    }
}
