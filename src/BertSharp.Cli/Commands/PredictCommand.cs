using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Inference;
using BertSharp.Tasks;

namespace BertSharp.Cli.Commands;

/// <summary>`bert predict MODEL_DIR`: JSONL predictions for arguments, stdin lines or a file.</summary>
public static class PredictCommand
{
    const int Chunk = 256;

    public static Command Build(CommandContext ctx)
    {
        var dir = new Argument<string>("MODEL_DIR") { Description = "A fine-tuned model folder" };
        var texts = new Argument<string[]>("TEXT") { Description = "Inputs, one per argument (tagging: words separated by spaces); without any, lines are read from --input or stdin", Arity = ArgumentArity.ZeroOrMore };
        var pair = new Option<string?>("--pair") { Description = "Second text of a pair, with one TEXT" };
        var input = new Option<string?>("--input") { Description = "Read inputs from this file (- for stdin): one per line, a tab between the two texts of a pair, or a JSON object {\"text\": …, \"pair\": …} ({\"words\": […]} for tagging)" };
        var maxSeq = new Option<int?>("--max-seq-length") { Description = "Tokens per input (default: the length the model was fine-tuned with)" };
        var batch = new Option<int>("--batch-size") { Description = "Inputs per forward pass", DefaultValueFactory = _ => 64 };
        var cmd = new Command("predict", "Predict with a fine-tuned model folder; writes one JSON line per input to stdout: the label and the " +
            "probability of each label (classify), the score (similarity), a tag per word (tag), or for question answering " +
            "(--question/--context) the answer, its score and character span.\n" + TextLineReader.InputRule)
        { dir, texts, pair, input, maxSeq, batch };
        // Question-answering folders take --question/--context (or --input JSONL) instead of TEXT.
        var qa = new QaCliHandlers.PredictOptions { Input = input, Settings = new QaSettingOptions(maxSeqLength: maxSeq) };
        foreach (var opt in qa.All.Where(o => o != input && o != maxSeq)) cmd.Add(opt);
        cmd.SetAction(r =>
        {
            // --question/--context mean question answering: a folder of another task gets the QA loader's error.
            if (BertSharp.Tasks.QuestionAnswering.QuestionAnswerer.IsQaModel(r.GetRequiredValue(dir))
                || r.GetValue(qa.Question) != null || r.GetValue(qa.Context) != null)
                return QaCliHandlers.Predict(ctx, r, r.GetRequiredValue(dir), qa);
            var args = r.GetValue(texts) ?? [];
            string? p = r.GetValue(pair), file = r.GetValue(input);
            if (args.Length > 0 && file != null) throw new BertSharpException("give either TEXT arguments or --input, not both");
            if (p != null && args.Length != 1) throw new BertSharpException("--pair goes with exactly one TEXT");
            using var model = FineTunedModel.Load(r.GetRequiredValue(dir), r.GetValue(maxSeq), Cli.Compute(r));
            foreach (var m in model.LoadReport?.Messages() ?? []) ctx.Err.WriteLine($"warning: {m}");
            model.BatchSize = r.GetValue(batch);
            var options = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            void Write(List<PredictInput> inputs)
            {
                foreach (var o in model.PredictJson(inputs)) ctx.Out.WriteLine(o.ToJsonString(options));
                ctx.Out.Flush();
                inputs.Clear();
            }
            if (args.Length > 0)
            {
                Write(args.Select(a => new PredictInput(a, p)).ToList());
                return 0;
            }
            using var reader = file is null or "-"
                ? new TextLineReader(Console.OpenStandardInput(), "stdin") { KeepTabs = true }
                : TextLineReader.Open(file, keepTabs: true);
            var pending = new List<PredictInput>();
            // typed at a terminal: answer each line at once; from a file or a pipe: predict in batches
            int chunk = file is null or "-" && !Console.IsInputRedirected ? 1 : Chunk;
            while (reader.TryReadLine(out var line))
            {
                if (string.IsNullOrWhiteSpace(line)) continue;
                pending.Add(Parse(line, reader));
                if (pending.Count >= chunk) Write(pending);
            }
            if (pending.Count > 0) Write(pending);
            return 0;
        });
        return cmd;
    }

    /// <summary>A JSON object line ({"text", "pair"} or {"words"}/{"tokens"}), else text with an optional tab-separated pair.</summary>
    public static PredictInput Parse(string line, TextLineReader reader)
    {
        var trimmed = line.TrimStart();
        if (trimmed.StartsWith('{'))
        {
            JsonNode? node;
            try { node = JsonNode.Parse(trimmed); }
            catch (JsonException e) { throw reader.Error($"not a JSON object: {e.Message.Split('\n')[0]}"); }
            if (node is not JsonObject o) throw reader.Error("expected a JSON object");
            foreach (var key in new[] { "words", "tokens" })
                if (o[key] is JsonArray arr)
                {
                    var words = arr.Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw reader.Error($"\"{key}\" must be a list of strings")).ToList();
                    return new PredictInput(string.Join(' ', words), null, words);
                }
            string text = o["text"] is JsonValue tv && tv.GetValueKind() == JsonValueKind.String ? tv.GetValue<string>() : throw reader.Error("missing string field \"text\"");
            string? pair = null;
            if (o["pair"] is JsonNode pn)
                pair = pn is JsonValue pv && pv.GetValueKind() == JsonValueKind.String ? pv.GetValue<string>() : throw reader.Error("field \"pair\" must be a string");
            return new PredictInput(text, pair);
        }
        int tab = line.IndexOf('\t');
        return tab < 0 ? new PredictInput(line) : new PredictInput(line[..tab], line[(tab + 1)..]);
    }
}
