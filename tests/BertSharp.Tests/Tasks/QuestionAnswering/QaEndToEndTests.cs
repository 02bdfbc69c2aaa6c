using System.Text.Json.Nodes;
using BertSharp.Modeling;
using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tokenization;
using TorchSharp;

namespace BertSharp.Tests.Tasks.QuestionAnswering;

/// <summary>
/// The commands end to end on the tiny fixture model: `bert finetune qa` → `bert predict` → `bert evaluate`, for
/// SQuAD 1.1 and 2.0 style data, and the errors a user sees for bad input.
/// </summary>
public class QaEndToEndTests
{
    static readonly string[] Things = ["bird", "girl", "wood", "face", "list", "talk"];
    static readonly string[] Colors = ["red", "plain", "young", "main", "usual", "ready"];

    /// <summary>Articles of short paragraphs ("the bird is red. the girl is plain. …") with "what is the X?" questions;
    /// with <paramref name="impossible"/>, some questions ask about a thing the paragraph does not mention.</summary>
    internal static string SyntheticSquad(int articles, int paragraphsPerArticle, bool impossible = false, int seed = 1)
    {
        var rng = new Random(seed);
        var data = new JsonArray();
        int n = 0;
        for (int a = 0; a < articles; a++)
        {
            var paragraphs = new JsonArray();
            for (int p = 0; p < paragraphsPerArticle; p++)
            {
                var things = Things.OrderBy(_ => rng.Next()).Take(3).ToArray();
                var colors = things.Select(_ => Colors[rng.Next(Colors.Length)]).ToArray();
                var sentences = things.Select((t, i) => $"The {t} is {colors[i]}.").ToArray();
                var context = string.Join(" ", sentences);
                var qas = new JsonArray();
                for (int i = 0; i < things.Length; i++)
                {
                    int sentenceStart = context.IndexOf(sentences[i], StringComparison.Ordinal);
                    int start = sentenceStart + sentences[i].LastIndexOf(colors[i], StringComparison.Ordinal);
                    var qa = new JsonObject
                    {
                        ["id"] = $"q{n++}",
                        ["question"] = $"What is the {things[i]}?",
                        ["answers"] = new JsonArray(new JsonObject { ["text"] = colors[i], ["answer_start"] = start }),
                    };
                    if (impossible) qa["is_impossible"] = false;
                    qas.Add(qa);
                }
                if (impossible)
                {
                    var absent = Things.First(t => !things.Contains(t));
                    qas.Add(new JsonObject
                    {
                        ["id"] = $"q{n++}", ["question"] = $"What is the {absent}?", ["answers"] = new JsonArray(), ["is_impossible"] = true,
                        ["plausible_answers"] = new JsonArray(new JsonObject { ["text"] = colors[0], ["answer_start"] = context.IndexOf(colors[0] + ".", StringComparison.Ordinal) }),
                    });
                }
                paragraphs.Add(new JsonObject { ["context"] = context, ["qas"] = qas });
            }
            data.Add(new JsonObject { ["title"] = $"Article {a}", ["paragraphs"] = paragraphs });
        }
        return new JsonObject { ["version"] = impossible ? "v2.0" : "1.1", ["data"] = data }.ToJsonString();
    }

    static (int Code, string Out, string Err) Bert(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BertSharp.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    static string Write(string dir, string name, string text)
    {
        var p = Path.Combine(dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    [Fact]
    public void Finetune_predict_and_evaluate_on_the_tiny_model()
    {
        var dir = TestPaths.TempDir("qa-e2e");
        var data = Write(dir, "squad.json", SyntheticSquad(articles: 4, paragraphsPerArticle: 8));
        var run = Path.Combine(dir, "run");
        var (code, finetuneOut, err) = Bert("finetune", "qa", "--train", data, "--split-articles", "3", "--model", TestPaths.TinyBert,
            "--output", run, "--epochs", "3", "--batch-size", "8", "--learning-rate", "2e-3", "--max-seq-length", "32", "--seed", "3", "--json");
        Assert.True(code == 0, err);
        Assert.Contains("72 training questions (3 articles", err);
        Assert.Contains("24 evaluation questions (1 articles", err);
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "qa_config.json", "args.json", "metrics.jsonl",
                     "predictions.json", "nbest_predictions.json", "eval_results.json", "plots/loss.png", "plots/f1.png", "checkpoints/last/trainer_state.json" })
            Assert.True(File.Exists(Path.Combine(run, f)), f);
        Assert.Equal("qa", BertSharp.Inference.FineTunedModel.TaskOf(BertSharp.Checkpoints.ModelFolder.ReadConfig(run)));
        Assert.Equal(32, QaSettings.Load(run)!.MaxSeqLength);

        // predictions.json is {id: text} for the held-out article's questions.
        var preds = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "predictions.json")))!.AsObject();
        Assert.Equal(Enumerable.Range(72, 24).Select(i => $"q{i}"), preds.Select(kv => kv.Key));
        var nbest = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "nbest_predictions.json")))!.AsObject();
        Assert.Equal(preds["q72"]!.GetValue<string>(), nbest["q72"]![0]!["text"]!.GetValue<string>());
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "eval_results.json")))!.AsObject();
        double f1 = results["f1"]!.GetValue<double>();
        // --json: the same scores on stdout, as the other tasks print them
        var printed = JsonNode.Parse(finetuneOut)!;
        Assert.Equal("qa", printed["task"]!.GetValue<string>());
        Assert.Equal(f1, printed["dev"]!["f1"]!.GetValue<double>(), 6);
        // The scores are those of predictions.json against the gold answers, by SQuAD's definitions (one gold answer each).
        var gold = JsonNode.Parse(File.ReadAllText(data))!["data"]!.AsArray().SelectMany(a => a!["paragraphs"]!.AsArray())
            .SelectMany(p => p!["qas"]!.AsArray()).ToDictionary(q => q!["id"]!.GetValue<string>(), q => q!["answers"]![0]!["text"]!.GetValue<string>());
        static string[] Words(string s) => System.Text.RegularExpressions.Regex.Replace(
            new string(s.ToLowerInvariant().Where(c => !char.IsPunctuation(c)).ToArray()), @"\b(a|an|the)\b", " ").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        static double F1(string[] p, string[] g)
        {
            int common = p.GroupBy(w => w).Sum(x => Math.Min(x.Count(), g.Count(w => w == x.Key)));
            return common == 0 ? 0 : 2.0 * common / (p.Length + g.Length);
        }
        var pairs = preds.Select(kv => (P: Words(kv.Value!.GetValue<string>()), G: Words(gold[kv.Key]))).ToList();
        Assert.Equal(100.0 * pairs.Count(x => x.P.SequenceEqual(x.G)) / pairs.Count, results["exact_match"]!.GetValue<double>(), 9);
        Assert.Equal(100.0 * pairs.Average(x => F1(x.P, x.G)), f1, 9);

        // The training loss went down.
        var rows = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).Where(r => r["split"]!.GetValue<string>() == "train").ToList();
        Assert.True(rows[^1]["loss"]!.GetValue<double>() < rows[0]["loss"]!.GetValue<double>(), "training loss did not decrease");

        // predict: an answer, its score and its character span in the context.
        const string context = "The wood is ready. The bird is young.";
        (code, var stdout, err) = Bert("predict", run, "--question", "What is the bird?", "--context", context, "--json");
        Assert.True(code == 0, err);
        var answer = JsonNode.Parse(stdout)!.AsObject();
        int start = answer["start"]!.GetValue<int>(), end = answer["end"]!.GetValue<int>();
        Assert.Equal(context[start..end], answer["answer"]!.GetValue<string>());
        Assert.True(double.IsFinite(answer["score"]!.GetValue<double>()));

        // JSONL in, JSONL out.
        var input = Write(dir, "q.jsonl", "{\"id\": \"x\", \"question\": \"What is the wood?\", \"context\": \"The wood is ready.\"}\n\n{\"question\": \"What is it?\", \"context\": \"The face is red.\"}\n");
        var output = Path.Combine(dir, "answers.jsonl");
        (code, _, err) = Bert("predict", run, "--input", input, "--output", output);
        Assert.True(code == 0, err);
        var lines = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(["x", "3"], lines.Select(l => l["id"]!.GetValue<string>()));

        // evaluate the same held-out articles: the same F1 as the run wrote for its best model.
        var evalDir = Path.Combine(dir, "eval");
        (code, stdout, err) = Bert("evaluate", run, "--data", data, "--split-articles", "3", "--json", "--output", evalDir);
        Assert.True(code == 0, err);
        var scores = JsonNode.Parse(stdout)!.AsObject();
        Assert.Equal(f1, scores["f1"]!.GetValue<double>(), 9);
        Assert.Equal(24, scores["total"]!.GetValue<double>());
        Assert.Equal("evaluate-v1.1.py", scores["script"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(evalDir, "predictions.json")));
    }

    [Fact]
    public void Version_2_training_reports_HasAns_and_NoAns()
    {
        var dir = TestPaths.TempDir("qa-v2");
        var data = Write(dir, "squad2.json", SyntheticSquad(articles: 3, paragraphsPerArticle: 4, impossible: true));
        var run = Path.Combine(dir, "run");

        var (code, _, err) = Bert("finetune", "qa", "--train", data, "--split-articles", "2", "--model", TestPaths.TinyBert, "--output", run,
            "--epochs", "1", "--batch-size", "8", "--max-seq-length", "32");
        Assert.Equal(1, code);
        Assert.Contains("is unanswerable (is_impossible, SQuAD 2.0); train with --version-2-with-negative", err);

        (code, _, err) = Bert("finetune", "qa", "--train", data, "--split-articles", "2", "--model", TestPaths.TinyBert, "--output", run,
            "--epochs", "1", "--batch-size", "8", "--max-seq-length", "32", "--version-2-with-negative", "--null-score-diff-threshold", "0.5");
        Assert.True(code == 0, err);
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "eval_results.json")))!.AsObject();
        Assert.Equal(12, results["HasAns_total"]!.GetValue<double>());
        Assert.Equal(4, results["NoAns_total"]!.GetValue<double>());
        Assert.Equal("evaluate-v2.0.py", results["script"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(run, "null_odds.json")));
        var settings = QaSettings.Load(run)!;
        Assert.True(settings.Version2WithNegative);
        Assert.Equal(0.5, settings.NullScoreDiffThreshold);
    }

    [Fact]
    public void Bad_input_gets_one_line_errors()
    {
        var dir = TestPaths.TempDir("qa-bad");
        var notSquad = Write(dir, "not-squad.json", "{\"sentences\": [\"a\", \"b\"]}");
        var (code, _, err) = Bert("finetune", "qa", "--train", notSquad, "--split-articles", "1", "--model", TestPaths.TinyBert, "--output", Path.Combine(dir, "r1"));
        Assert.Equal(1, code);
        Assert.Equal($"error: {notSquad}: not a SQuAD file: expected a JSON object with a \"data\" list of articles, found an object with keys \"sentences\"", err.Trim());

        var beyond = Write(dir, "beyond.json", SquadDatasetTests.File(("T", new[] { ("A short context.", new[] { SquadDatasetTests.Qa("b1", "What?", ("context", 99)) }) })));
        (code, _, err) = Bert("finetune", "qa", "--train", beyond, "--dev", beyond, "--model", TestPaths.TinyBert, "--output", Path.Combine(dir, "r2"));
        Assert.Equal(1, code);
        Assert.Contains("(question b1): answers[0]: answer_start 99 is beyond the context (16 characters)", err);

        var qa = Path.Combine(dir, "qa-model");
        WriteUntrainedQaModel(qa);
        (code, _, err) = Bert("predict", qa, "--question", "What?", "--context", "");
        Assert.Equal(1, code);
        Assert.Equal("error: question 0: the context is empty", err.Trim());

        var longQuestion = string.Join(" ", Enumerable.Repeat("what color is the bird", 10));
        (code, _, err) = Bert("predict", qa, "--question", longQuestion, "--context", "The bird is red.", "--max-seq-length", "32");
        Assert.Equal(1, code);
        Assert.StartsWith("error: question 0: the question is ", err.Trim());
        Assert.Contains(" tokens, too long for --max-seq-length 32", err);

        (code, _, err) = Bert("predict", TestPaths.TinyBert, "--question", "What?", "--context", "Text.");
        Assert.Equal(1, code);
        Assert.Contains("not a question-answering model (config.json architectures: BertForPreTraining)", err);

        (code, _, err) = Bert("evaluate", qa, "--data", notSquad);
        Assert.Equal(1, code);
        Assert.Contains("not a SQuAD file", err);

        var badLine = Write(dir, "bad.jsonl", "{\"question\": \"a?\", \"context\": \"b\"}\n{\"question\": \"a?\"}\n");
        (code, _, err) = Bert("predict", qa, "--input", badLine);
        Assert.Equal(1, code);
        Assert.Equal($"error: {badLine}:2: \"context\" must be a string", err.Trim());
    }

    /// <summary>The tiny fixture with a fresh QA head, saved as a QA model folder (no qa_config.json: defaults from its size).</summary>
    static void WriteUntrainedQaModel(string dir)
    {
        var (model, _) = BertSharp.Checkpoints.ModelFolder.Load(TestPaths.TinyBert, QuestionAnsweringModel.Architecture);
        BertSharp.Checkpoints.ModelFolder.Save(model, dir);
        BertTokenizer.FromFolder(TestPaths.TinyBert).Save(dir);
        model.Dispose();
    }

    [Fact]
    public void Training_batches_resume_exactly_from_any_batch()
    {
        var tok = BertTokenizer.FromFolder(TestPaths.TinyBert);
        var data = SquadDataset.Parse(SyntheticSquad(2, 3), "syn.json");
        var settings = QaSettings.ForModel(32);
        var set = new QaFeaturizer(tok, settings).Build(data.Examples, withTargets: true);
        var config = BertConfig.Load(Path.Combine(TestPaths.TinyBert, "config.json"));
        using var qa = new QuestionAnsweringModel(new BertForQuestionAnswering(config), tok, settings);
        var task = new BertSharp.Tasks.FineTuningTask<SquadExample>(qa, qa.Encode(data.Examples), [], batchSize: 4, seed: 9);
        static long[][] Ids(IEnumerable<BertSharp.Training.Batch> bs) => bs.Select(b => { using (b) return b["input_ids"].data<long>().ToArray(); }).ToArray();
        var all = Ids(task.TrainBatches(1, 0));
        Assert.Equal(task.BatchesPerEpoch, all.Length);
        Assert.Equal(all.Skip(2), Ids(task.TrainBatches(1, 2)));
        Assert.NotEqual(all, Ids(task.TrainBatches(2, 0)));           // another epoch, another order
        // Every training window of every question appears once per epoch.
        Assert.Equal(set.Features.Count, task.TrainBatches(0, 0).Sum(b => { using (b) return b.Sequences; }));
    }
}
