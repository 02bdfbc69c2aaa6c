using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Inference;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Embedding;
using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;

namespace BertSharp.Cli.Commands;

/// <summary>`bert predict MODEL_DIR`: JSONL predictions for arguments, stdin lines or a file.</summary>
public static class PredictCommand
{
    const int Chunk = 256;

    public static Command Build(CommandContext ctx)
    {
        var dir = new Argument<string>("MODEL_DIR") { Description = "A fine-tuned model folder, or a Hub id: name, org/name or org/name@revision" };
        var texts = new Argument<string[]>("TEXT") { Description = "Inputs, one per argument (tagging: words separated by spaces); without any, lines are read from --input or stdin", Arity = ArgumentArity.ZeroOrMore };
        var pair = new Option<string?>("--pair") { Description = "Second text of a pair, with one TEXT" };
        var input = new Option<string?>("--input") { Description = "Read inputs from this file (- for stdin): one per line, a tab between the two texts of a pair, or a JSON object {\"text\": …, \"pair\": …} ({\"words\": […]} for tagging)" };
        var maxSeq = new Option<int?>("--max-seq-length") { Description = "Tokens per input (default: the length the model was fine-tuned with)" };
        var batch = new Option<int>("--batch-size") { Description = "Inputs per forward pass", DefaultValueFactory = _ => 64 };
        var cmd = new Command("predict", "Predict with a fine-tuned model folder: one JSON line per input on stdout")
        { dir, texts, pair, input, maxSeq, batch };
        cmd.WithDetails("Each line holds the label and the probability of each label (classify; multi-label: \"labels\", each label whose probability reaches the model's threshold with its probability, and the threshold), the score (similarity), a tag per word (tag), " +
            "or for question answering (--question/--context) the answer, its score and character span.\n" + TextLineReader.InputRule);
        // Question-answering folders take --question/--context (or --input JSONL) instead of TEXT.
        var qa = new QaCliHandlers.PredictOptions { Input = input, Settings = new QaSettingOptions(maxSeqLength: maxSeq) };
        foreach (var opt in qa.All.Where(o => o != input && o != maxSeq)) cmd.Add(opt);
        cmd.SetAction(r =>
        {
            string modelDir = ModelArgument.Resolve(ctx, r.GetRequiredValue(dir));
            var load = new LoadOptions { MaxSeqLength = r.GetValue(maxSeq), Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)! };
            // --question/--context ask for question answering: a folder of another task is refused as not one.
            bool asksQa = r.GetValue(qa.Question) != null || r.GetValue(qa.Context) != null;
            using var model = asksQa ? FineTunedModel.Load<QuestionAnsweringModel>(modelDir, load) : FineTunedModel.Load(modelDir, load);
            foreach (var m in model.LoadReport?.Messages() ?? []) ctx.Err.WriteLine($"warning: {m}");
            model.BatchSize = r.GetValue(batch);
            if (model is QuestionAnsweringModel qaModel)
            {
                qaModel.Settings = qa.Settings.Apply(r, modelDir, qaModel.Config.MaxPositionEmbeddings);
                return PredictQa(ctx, r, qaModel, qa);
            }
            var args = r.GetValue(texts) ?? [];
            string? p = r.GetValue(pair), file = r.GetValue(input);
            if (args.Length > 0 && file != null) throw new BertSharpException("give either TEXT arguments or --input, not both");
            if (p != null && args.Length != 1) throw new BertSharpException("--pair goes with exactly one TEXT");
            var longInputs = new LongInputTally();
            void Write(List<PredictInput> inputs)
            {
                if (model is SimilarityModel && inputs.FirstOrDefault(i => i.Pair is null) is { } single)
                    throw new BertSharpException($"similarity scores a pair of texts; got one text: '{Short(single.Text)}' (give the pair: TEXT --pair PAIR, or a line 'text<TAB>pair', or JSON {{\"text\": …, \"pair\": …}})");
                var predictions = model.Predict(inputs);
                for (int i = 0; i < inputs.Count; i++) ctx.Out.WriteLine(ToJson(inputs[i], predictions[i]).ToJsonString(JsonOut));
                ctx.Out.Flush();
                longInputs.Add(predictions);
                inputs.Clear();
            }
            if (args.Length > 0)
            {
                Write(args.Select(a => new PredictInput(a, p)).ToList());
                longInputs.Report(ctx, model.MaxSeqLength);
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
            longInputs.Report(ctx, model.MaxSeqLength);
            return 0;
        });
        return cmd;
    }

    static readonly JsonSerializerOptions JsonOut = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>How many predicted inputs were longer than the window: read in windows, or cut.</summary>
    sealed class LongInputTally
    {
        int windowed, windows, truncated;
        long truncatedTokens;

        public void Add(IEnumerable<TaskPrediction> predictions)
        {
            foreach (var w in predictions.OfType<IWindowedPrediction>())
            {
                if (w.Windows > 1) { windowed++; windows += w.Windows; }
                if (w.TruncatedTokens > 0) { truncated++; truncatedTokens += w.TruncatedTokens; }
            }
        }

        public void Report(CommandContext ctx, int maxSeqLength)
        {
            if (windowed > 0) ctx.Err.WriteLine($"note: {windowed} inputs longer than {maxSeqLength} tokens were read in {windows} windows");
            if (truncated > 0) ctx.Err.WriteLine($"note: {truncated} inputs were cut to {maxSeqLength} tokens, {truncatedTokens} tokens in all (their lines say \"truncated_tokens\")");
        }
    }

    /// <summary>"windows" and "truncated_tokens" on the line of an input longer than the window.</summary>
    static JsonObject WithLongInput(JsonObject line, TaskPrediction prediction)
    {
        if (prediction is IWindowedPrediction w)
        {
            if (w.Windows > 1) line["windows"] = w.Windows;
            if (w.TruncatedTokens > 0) line["truncated_tokens"] = w.TruncatedTokens;
        }
        return line;
    }

    static string Short(string s) => s.Length <= 40 ? s : s[..40] + "…";

    /// <summary>The JSON line of one prediction: the input and what the model says about it.</summary>
    static JsonObject ToJson(PredictInput input, TaskPrediction prediction)
    {
        switch (prediction)
        {
            case ClassificationPrediction c:
            {
                var o = new JsonObject { ["text"] = input.Text };
                if (input.Pair != null) o["pair"] = input.Pair;
                if (c.MultiLabel)
                {
                    o["labels"] = Rounded(c.Labels.Select(l => KeyValuePair.Create(l, c.Probabilities[l])));
                    o["threshold"] = c.Threshold;
                }
                else
                {
                    o["label"] = c.Label;
                    o["probability"] = Math.Round(c.Probability, 6);
                }
                o["probabilities"] = Rounded(c.Probabilities);
                return WithLongInput(o, c);
            }
            case SimilarityPrediction s:
                return WithLongInput(new JsonObject { ["text"] = input.Text, ["pair"] = input.Pair, ["score"] = Math.Round(s.Score, 6) }, s);
            case TaggingPrediction t:
                return new JsonObject
                {
                    ["words"] = new JsonArray(t.Words.Select(w => (JsonNode?)w).ToArray()),
                    ["tags"] = new JsonArray(t.Tags.Select(w => (JsonNode?)w).ToArray()),
                };
            case QaAnswer a:
                return QaCliHandlers.ToJson(a, includeId: true);
            case EmbeddingPrediction e:
                return EmbedCommand.ToJson(null, e, input.Text);
            default:
                throw new InvalidOperationException($"no JSON for a {prediction.GetType().Name}");
        }
    }

    static JsonObject Rounded(IEnumerable<KeyValuePair<string, double>> probabilities) =>
        new(probabilities.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 6))));

    /// <summary>Question answering: --question/--context (one answer) or --input JSONL (one line per question).</summary>
    static int PredictQa(CommandContext ctx, ParseResult r, QuestionAnsweringModel model, QaCliHandlers.PredictOptions o)
    {
        string? question = r.GetValue(o.Question), context = r.GetValue(o.Context), input = r.GetValue(o.Input), output = r.GetValue(o.Output);
        if (input is null && (question is null || context is null))
            throw new BertSharpException("give --question and --context, or --input FILE.jsonl");
        if (input is not null && (question is not null || context is not null))
            throw new BertSharpException("give either --input FILE.jsonl or --question/--context, not both");
        if (output is not null && input is null)
            throw new BertSharpException("--output goes with --input (a single answer is written to stdout)");
        if (input is null)
        {
            var a = model.Answer(question!, context!);
            if (r.GetValue(o.Json)) ctx.Out.WriteLine(QaCliHandlers.ToJson(a, includeId: false).ToJsonString(JsonOut));
            else
            {
                ctx.Out.WriteLine(a.IsNoAnswer ? "answer: (no answer)" : $"answer: {a.Text}");
                ctx.Out.WriteLine(a.IsNoAnswer
                    ? $"score {a.Score:F3} (probability {a.Probability:F3})"
                    : $"score {a.Score:F3} (probability {a.Probability:F3}), characters [{a.Start}, {a.End}) of the context");
            }
            return 0;
        }
        var questions = QaCliHandlers.ReadJsonl(input);
        var answers = model.Predict(questions.Select(q => new PredictInput(q.Question, q.Context, Id: q.Id)).ToList());
        using var writer = output is null ? null : new StreamWriter(output, false, new System.Text.UTF8Encoding(false));
        var sink = writer ?? ctx.Out;
        foreach (QaAnswer a in answers) sink.WriteLine(QaCliHandlers.ToJson(a, includeId: true).ToJsonString(JsonOut));
        if (output is not null) ctx.Err.WriteLine($"{answers.Count} answers written to {output}");
        return 0;
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
