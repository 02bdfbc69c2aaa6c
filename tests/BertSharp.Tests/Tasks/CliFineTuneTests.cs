using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Tagging;
using static BertSharp.Tests.Cli.CliRunner;

namespace BertSharp.Tests.Tasks;

/// <summary>train → evaluate → predict through the `bert` command, a few steps on the tiny fixture model, for each task.</summary>
public class CliFineTuneTests
{
    static readonly string[] Words = "the of and to in is it you that he was for on are with as his they be at one have this from or had by not word but what".Split(' ');

    static string Sentence(Random r, int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => Words[r.Next(Words.Length)]));

    internal static void WriteClassification(string dir)
    {
        var r = new Random(5);
        foreach (var (name, n) in new[] { ("train", 16), ("dev", 8), ("test", 8) })
        {
            var lines = new List<string> { "premise\thypothesis\tlabel" };
            for (int i = 0; i < n; i++) lines.Add($"{Sentence(r, 3 + r.Next(6))}\t{Sentence(r, 2 + r.Next(4))}\t{(i % 3 == 0 ? "yes" : i % 3 == 1 ? "no" : "maybe")}");
            File.WriteAllLines(Path.Combine(dir, $"{name}.tsv"), lines);
        }
    }

    internal static void WriteSimilarity(string dir)
    {
        var r = new Random(6);
        foreach (var (name, n) in new[] { ("sts-train.csv", 16), ("sts-dev.csv", 8), ("sts-test.csv", 8) })
            File.WriteAllLines(Path.Combine(dir, name), Enumerable.Range(0, n).Select(i =>
                $"main-captions\tMSRvid\t2012test\t{i:D4}\t{r.Next(0, 51) / 10.0:F3}\t{Sentence(r, 4)}\t{Sentence(r, 5)}"));
    }

    internal static void WriteConll(string dir)
    {
        var r = new Random(7);
        foreach (var (name, n) in new[] { ("train.txt", 12), ("dev.txt", 6), ("test.txt", 6) })
        {
            var lines = new List<string> { "-DOCSTART- -X- O", "" };
            for (int s = 0; s < n; s++)
            {
                int len = 3 + r.Next(20);
                for (int w = 0; w < len; w++)
                {
                    string tag = w % 4 == 1 ? "B-NP" : w % 4 == 2 ? "I-NP" : "O";
                    lines.Add($"{Words[r.Next(Words.Length)]} XX {tag}");
                }
                lines.Add("");
            }
            File.WriteAllLines(Path.Combine(dir, name), lines);
        }
    }

    static JsonElement Json(string s) => JsonDocument.Parse(s).RootElement;

    static void AssertSameMetrics(JsonElement expected, JsonElement actual)
    {
        foreach (var p in expected.EnumerateObject())
            Assert.Equal(p.Value.GetDouble(), actual.GetProperty(p.Name).GetDouble(), 1e-5);
    }

    /// <summary>finetune → results.json, predictions; evaluate on dev gives the dev metrics again; predict writes a line per input.</summary>
    static JsonElement TrainEvaluatePredict(string dir, string task, string[] data, string[] extra, string predictInput)
    {
        string run = Path.Combine(dir, "run");
        var args = new List<string> { "finetune", task, "--output", run, "--max-steps", "3", "--batch-size", "4", "--json", "--seed", "3" };
        args.AddRange(data);
        args.AddRange(extra);
        var (code, stdout, err) = Run(args.ToArray());
        Assert.True(code == 0, err);
        var result = Json(stdout);
        Assert.Equal(task, result.GetProperty("task").GetString());
        foreach (var f in new[] { "config.json", "vocab.txt", "model.safetensors", "tokenizer_config.json", "args.json", "metrics.jsonl", "results.json", "predictions_dev.jsonl", "predictions_test.jsonl", "plots/loss.png" })
            Assert.True(File.Exists(Path.Combine(run, f)), $"{f} missing; stderr:\n{err}");
        var config = Json(File.ReadAllText(Path.Combine(run, "config.json")));
        Assert.Equal(task, config.GetProperty("bertsharp_task").GetString());

        string devFile = data[Array.IndexOf(data, "--dev") + 1];
        var ev = Run("evaluate", run, "--data", devFile, "--json");
        Assert.True(ev.Code == 0, ev.Err);
        AssertSameMetrics(result.GetProperty("dev"), Json(ev.Out).GetProperty("metrics"));
        Assert.NotEmpty(File.ReadLines(Path.Combine(run, "predictions_dev.jsonl")));

        var input = Path.Combine(dir, "input.txt");
        File.WriteAllText(input, predictInput);
        var pr = Run("predict", run, "--input", input);
        Assert.True(pr.Code == 0, pr.Err);
        var lines = pr.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(predictInput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, lines.Length);
        return Json(lines[0]);
    }

    [Fact]
    public void Classify()
    {
        var dir = TestPaths.TempDir("ft-classify");
        WriteClassification(dir);
        string F(string n) => Path.Combine(dir, n);
        var first = TrainEvaluatePredict(dir, "classify",
            ["--model", TestPaths.TinyBert, "--train", F("train.tsv"), "--dev", F("dev.tsv"), "--test", F("test.tsv")], [],
            "the word is\tit was\n{\"text\": \"one\", \"pair\": \"two\"}\n");
        Assert.Contains(first.GetProperty("label").GetString(), new[] { "maybe", "no", "yes" });
        Assert.Equal(1.0, first.GetProperty("probabilities").EnumerateObject().Sum(p => p.Value.GetDouble()), 1e-4);

        // labels in config.json, a per-class report with a confusion matrix, the new head reported
        var config = Json(File.ReadAllText(Path.Combine(dir, "run", "config.json")));
        Assert.Equal("maybe", config.GetProperty("id2label").GetProperty("0").GetString());
        Assert.Equal(2, config.GetProperty("label2id").GetProperty("yes").GetInt32());
        var pred = Json(File.ReadLines(Path.Combine(dir, "run", "predictions_test.jsonl")).First());
        Assert.True(pred.TryGetProperty("prediction", out _) && pred.TryGetProperty("label", out _));

        // the C# API: load once, predict many
        using var model = FineTunedModel.Load<ClassificationModel>(Path.Combine(dir, "run"));
        var many = model.Predict([("the word is", "it was"), ("one", "two")]);
        Assert.Equal(2, many.Count);
        Assert.Equal(first.GetProperty("label").GetString(), many[0].Label);
        Assert.Equal(first.GetProperty("probability").GetDouble(), many[0].Probability, 1e-5);
        Assert.Throws<BertSharpException>(() => FineTunedModel.Load<TaggingModel>(Path.Combine(dir, "run")));
    }

    [Fact]
    public void ClassifyReportsTheNewHeadAndRefusesToOverwriteARun()
    {
        var dir = TestPaths.TempDir("ft-classify2");
        WriteClassification(dir);
        string F(string n) => Path.Combine(dir, n);
        string[] args = ["finetune", "classify", "--model", TestPaths.TinyBert, "--train", F("train.tsv"), "--dev", F("dev.tsv"), "--output", F("run"), "--max-steps", "1"];
        var (code, _, err) = Run(args);
        Assert.True(code == 0, err);
        Assert.Contains("newly initialized: [classifier.weight, classifier.bias]", err);
        Assert.Contains("== dev:", err);
        Assert.Contains("confusion matrix (rows: gold, columns: predicted)", err);
        var again = Run(args);
        Assert.Equal(1, again.Code);
        Assert.Contains("already holds a run; continue it with --resume", again.Err);
        // --resume needs only the run folder: the other options come from its args.json
        var resumed = Run("finetune", "classify", "--resume", "--output", F("run"), "--json");
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Equal(
            Json(File.ReadAllText(F("run/results.json"))).GetProperty("dev").GetProperty("metrics").GetProperty("accuracy").GetDouble(),
            Json(resumed.Out).GetProperty("dev").GetProperty("accuracy").GetDouble(), 6);
        var noDev = Run("finetune", "classify", "--model", TestPaths.TinyBert, "--train", F("train.tsv"), "--output", F("run2"));
        Assert.Equal(1, noDev.Code);
        Assert.Contains("give --dev", noDev.Err);
    }

    [Fact]
    public void SimilarityFromRandomInitialization()
    {
        var dir = TestPaths.TempDir("ft-sim");
        WriteSimilarity(dir);
        string F(string n) => Path.Combine(dir, n);
        var first = TrainEvaluatePredict(dir, "similarity",
            ["--train", F("sts-train.csv"), "--dev", F("sts-dev.csv"), "--test", F("sts-test.csv")],
            ["--init", "random", "--model-preset", "seed", "--vocab", Path.Combine(TestPaths.TinyBert, "vocab.txt")],
            "the word\tit was\n");
        Assert.Equal(JsonValueKind.Number, first.GetProperty("score").ValueKind);
        var config = Json(File.ReadAllText(Path.Combine(dir, "run", "config.json")));
        Assert.Equal("regression", config.GetProperty("problem_type").GetString());
        Assert.Equal(128, config.GetProperty("hidden_size").GetInt32());   // the seed preset
        var results = Json(File.ReadAllText(Path.Combine(dir, "run", "results.json")));
        Assert.True(results.GetProperty("test").GetProperty("metrics").TryGetProperty("spearman", out _));
    }

    [Fact]
    public void TagConllChunks()
    {
        var dir = TestPaths.TempDir("ft-tag");
        WriteConll(dir);
        string F(string n) => Path.Combine(dir, n);
        var first = TrainEvaluatePredict(dir, "tag",
            ["--model", TestPaths.TinyBert, "--train", F("train.txt"), "--dev", F("dev.txt"), "--test", F("test.txt")],
            ["--max-seq-length", "12"],
            "the word is it\n{\"words\": [\"one\", \"of\"]}\n");
        Assert.Equal(4, first.GetProperty("tags").GetArrayLength());
        var results = Json(File.ReadAllText(Path.Combine(dir, "run", "results.json")));
        var dev = results.GetProperty("dev").GetProperty("metrics");
        foreach (var m in new[] { "accuracy", "precision", "recall", "f1" }) Assert.True(dev.TryGetProperty(m, out _), m);
        var pred = Json(File.ReadLines(Path.Combine(dir, "run", "predictions_dev.jsonl")).First());
        Assert.Equal(pred.GetProperty("words").GetArrayLength(), pred.GetProperty("predicted").GetArrayLength());
    }
}
