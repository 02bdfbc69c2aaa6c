using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Tasks.QuestionAnswering;

namespace BertSharp.Cli.Commands;

/// <summary>The options `bert predict` and `bert evaluate` take for question-answering models, their JSONL input and
/// the JSON of an answer.</summary>
public static class QaCliHandlers
{
    public sealed class PredictOptions
    {
        public Option<string?> Question { get; init; } = new("--question", "-q") { Description = "QA models: the question" };
        public Option<string?> Context { get; init; } = new("--context", "-c") { Description = "QA models: the text to find the answer in" };
        public Option<string?> Input { get; init; } = new("--input") { Description = "QA models: a JSONL file of {\"id\"?, \"question\", \"context\"} lines (instead of --question/--context)" };
        public Option<string?> Output { get; init; } = new("--output") { Description = "QA models with --input: write the JSONL answers here (default: stdout)" };
        public Option<bool> Json { get; init; } = new("--json") { Description = "Write JSON to stdout" };
        public QaSettingOptions Settings { get; init; } = new();
        public IEnumerable<Option> All => new Option[] { Question, Context, Input, Output, Json }.Concat(Settings.All);
    }

    public sealed class EvaluateOptions
    {
        public Option<string> Data { get; init; } = new("--data") { Description = "A SQuAD v1.1/v2.0 JSON file with answers", Required = true };
        public Option<int?> SplitArticles { get; init; } = new("--split-articles") { Description = "Score only the articles after the first N (the evaluation half of `finetune qa --split-articles N`)" };
        public Option<string?> Output { get; init; } = new("--output") { Description = "Folder for predictions.json, nbest_predictions.json and eval_results.json" };
        public Option<bool> Json { get; init; } = new("--json") { Description = "Write the scores as JSON to stdout" };
        public QaSettingOptions Settings { get; init; } = new();
        public IEnumerable<Option> All => new Option[] { Data, SplitArticles, Output, Json }.Concat(Settings.All);
    }

    public static readonly JsonSerializerOptions JsonOut = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static JsonObject ToJson(QaAnswer a, bool includeId)
    {
        var o = new JsonObject();
        if (includeId) o["id"] = a.Id;
        o["answer"] = a.Text;
        o["score"] = Math.Round(a.Score, 6);
        o["probability"] = Math.Round(a.Probability, 6);
        o["start"] = a.Start;
        o["end"] = a.End;
        if (a.NullScoreDiff is double d) o["null_score_diff"] = Math.Round(d, 6);
        return o;
    }

    /// <summary>JSONL questions: one {"id"?, "question", "context"} object per line; blank lines skipped.</summary>
    public static List<SquadExample> ReadJsonl(string path)
    {
        if (!File.Exists(path)) throw new BertSharpException($"{path}: file not found");
        var list = new List<SquadExample>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        // The one text-input rule (TextLineReader.InputRule), as for every other text file BertSharp reads.
        using var reader = TextLineReader.Open(path);
        while (reader.TryReadLine(out var line))
        {
            int lineNo = reader.LineNumber;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject? o;
            try { o = JsonNode.Parse(line) as JsonObject; }
            catch (JsonException e) { throw new BertSharpException($"{path}:{lineNo}: not valid JSON: {e.Message.Split('\n')[0]}"); }
            if (o is null) throw new BertSharpException($"{path}:{lineNo}: expected a JSON object with \"question\" and \"context\"");
            string Field(string name)
            {
                if (o[name] is JsonValue v && v.TryGetValue(out string? s)) return s;
                throw new BertSharpException($"{path}:{lineNo}: \"{name}\" must be a string");
            }
            string id = o["id"] is JsonValue iv ? (iv.TryGetValue(out string? sid) ? sid : iv.ToJsonString()) : lineNo.ToString();
            string question = Field("question"), context = Field("context");
            if (string.IsNullOrWhiteSpace(question)) throw new BertSharpException($"{path}:{lineNo}: the question is empty");
            if (string.IsNullOrWhiteSpace(context)) throw new BertSharpException($"{path}:{lineNo}: the context is empty");
            if (!ids.Add(id)) throw new BertSharpException($"{path}:{lineNo}: id {id} appears twice");
            list.Add(new SquadExample(id, question, context, Array.Empty<SquadAnswer>()));
        }
        if (list.Count == 0) throw new BertSharpException($"{path}: no questions (expected JSONL lines {{\"question\": …, \"context\": …}})");
        return list;
    }
}
