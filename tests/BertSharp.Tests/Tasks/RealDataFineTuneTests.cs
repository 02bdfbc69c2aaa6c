using System.IO.Compression;
using System.Text.Json;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Similarity;
using BertSharp.Tasks.Tagging;
using BertSharp.Tests.Data;

namespace BertSharp.Tests.Tasks;

/// <summary>The readers on the shared datasets (counts from /work/shared/data/README.md), and a few fine-tuning
/// steps of the fixture model on small slices of them. Skipped when the datasets are not found.</summary>
public class RealDataFineTuneTests
{
    static string P(params string[] parts) => Path.Combine([RealData.Dir!, .. parts]);

    [RealDataFact("snli")]
    public void SnliDevDropsTheUnlabelledPairs()
    {
        var dev = ClassificationData.Read(P("snli", "snli_1.0_dev.jsonl.gz"), new DataFileOptions());
        Assert.Equal(9842, dev.Examples.Count);
        Assert.Contains(dev.Notes, n => n.Contains("dropped 158 examples"));
        Assert.Equal(["contradiction", "entailment", "neutral"], ClassificationData.LabelSet(dev.Examples.Select(e => e.Label)));
        var train = ClassificationData.Read(P("snli", "snli_1.0_train_0.01.jsonl.gz"), new DataFileOptions());
        Assert.Equal(5502 - 4, train.Examples.Count);
    }

    [RealDataFact("stsb")]
    public void StsbSplitsHaveTheirPublishedSizes()
    {
        foreach (var (file, n) in new[] { ("sts-train.csv", 5749), ("sts-dev.csv", 1500), ("sts-test.csv", 1379) })
        {
            var set = SimilarityData.Read(P("stsb", file), new DataFileOptions());
            Assert.Equal(n, set.Examples.Count);
            Assert.All(set.Examples, e => Assert.InRange(e.Score!.Value, 0, 5));
        }
    }

    [RealDataFact("ptb-pos")]
    public void TreebankSampleMatchesNltkCountsAndSplitsByFile()
    {
        var zip = P("ptb-pos", "treebank.zip");
        var all = TaggingData.Read(zip, new DataFileOptions());
        Assert.Equal(3914, all.Examples.Count);                              // nltk treebank.tagged_sents()
        Assert.Equal(94084, all.Examples.Sum(s => s.Words.Count));            // non -NONE- leaves
        Assert.DoesNotContain(all.Examples.SelectMany(s => s.Tags!), t => t == "-NONE-");
        int Count(DataSplit s) => TaggingData.Read(zip, new DataFileOptions { Split = s }).Examples.Count;
        Assert.Equal((3396, 273, 245), (Count(DataSplit.Train), Count(DataSplit.Dev), Count(DataSplit.Test)));
    }

    [RealDataFact("ptb-pos")]
    public void Conll2000TestFileHasItsPublishedSize()
    {
        var dir = TestPaths.TempDir("conll2000");
        ZipFile.ExtractToDirectory(P("ptb-pos", "conll2000.zip"), dir);
        var path = Directory.EnumerateFiles(dir, "test.txt", SearchOption.AllDirectories).Single();
        var chunks = TaggingData.Read(path, new DataFileOptions());
        Assert.Equal(2012, chunks.Examples.Count);
        Assert.Equal(47377, chunks.Examples.Sum(s => s.Words.Count));
        var pos = TaggingData.Read(path, new DataFileOptions { TagColumn = 1 });
        Assert.Equal(("International", "NNP"), (pos.Examples[0].Words[1], pos.Examples[0].Tags![1]));
        Assert.Equal("I-NP", chunks.Examples[0].Tags![1]);
    }

    static JsonElement FineTune(string task, params string[] args) => FineTuneIn(task, out _, args);

    static JsonElement FineTuneIn(string task, out string run, params string[] args)
    {
        run = Path.Combine(TestPaths.TempDir($"real-{task}"), "run");
        var all = new List<string> { "finetune", task, "--model", TestPaths.TinyBert, "--output", run, "--max-steps", "4", "--batch-size", "8", "--max-train-examples", "64", "--max-eval-examples", "64", "--json" };
        all.AddRange(args);
        var (code, stdout, err) = BertSharp.Tests.Cli.CliRunner.Run(all.ToArray());
        Assert.True(code == 0, err);
        return JsonDocument.Parse(stdout).RootElement;
    }

    static List<System.Text.Json.Nodes.JsonObject> Predictions(string run, string split) =>
        File.ReadLines(Path.Combine(run, $"predictions_{split}.jsonl")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!.AsObject()).ToList();

    static double Pearson(double[] x, double[] y)
    {
        double mx = x.Average(), my = y.Average();
        double sxy = x.Zip(y).Sum(p => (p.First - mx) * (p.Second - my));
        return sxy / Math.Sqrt(x.Sum(v => (v - mx) * (v - mx)) * y.Sum(v => (v - my) * (v - my)));
    }

    [RealDataFact("snli")]
    public void SnliSliceFineTunes()
    {
        var r = FineTuneIn("classify", out var run, "--train", P("snli", "snli_1.0_train_0.01.jsonl.gz"), "--dev", P("snli", "snli_1.0_dev.jsonl.gz"), "--test", P("snli", "snli_1.0_test.jsonl.gz"));
        // The reported accuracy is the share of the written test predictions that equal their labels.
        var rows = Predictions(run, "test");
        Assert.Equal(64, rows.Count);
        double share = rows.Count(x => x["prediction"]!.GetValue<string>() == x["label"]!.GetValue<string>()) / (double)rows.Count;
        Assert.Equal(share, r.GetProperty("test").GetProperty("accuracy").GetDouble(), 1e-6);
    }

    [RealDataFact("stsb")]
    public void StsbSliceFineTunes()
    {
        var r = FineTuneIn("similarity", out var run, "--train", P("stsb", "sts-train.csv"), "--dev", P("stsb", "sts-dev.csv"), "--test", P("stsb", "sts-test.csv"));
        // The reported Pearson correlation is that of the written test predictions with their gold scores.
        var rows = Predictions(run, "test");
        var gold = rows.Select(x => x["score"]!.GetValue<double>()).ToArray();
        var predicted = rows.Select(x => x["prediction"]!.GetValue<double>()).ToArray();
        Assert.Equal(Pearson(gold, predicted), r.GetProperty("test").GetProperty("pearson").GetDouble(), 1e-4);
    }

    [RealDataFact("ptb-pos")]
    public void TreebankSliceFineTunesWithItsBuiltInSplit()
    {
        var r = FineTuneIn("tag", out var run, "--train", P("ptb-pos", "treebank.zip"), "--max-seq-length", "32");
        // The reported tag accuracy is the share of the written test words whose predicted tag is the gold one.
        var rows = Predictions(run, "test");
        var pairs = rows.SelectMany(x => x["tags"]!.AsArray().Zip(x["predicted"]!.AsArray())).ToList();
        double share = pairs.Count(t => t.First!.GetValue<string>() == t.Second!.GetValue<string>()) / (double)pairs.Count;
        Assert.Equal(share, r.GetProperty("test").GetProperty("accuracy").GetDouble(), 1e-6);
        Assert.False(r.GetProperty("test").TryGetProperty("f1", out _));   // POS tags are not chunk tags
    }
}
