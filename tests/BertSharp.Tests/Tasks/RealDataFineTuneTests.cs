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

    [RealDataFact("ptb-pos")]
    public void Conll2000ZipReadsAsTrainDevAndTestParts()
    {
        var zip = P("ptb-pos", "conll2000.zip");
        int Count(DataSplit s) => TaggingData.Read(zip, new DataFileOptions { Split = s }).Examples.Count;
        Assert.Equal((8043, 893, 2012), (Count(DataSplit.Train), Count(DataSplit.Dev), Count(DataSplit.Test)));   // train.txt: 8,936
        var test = TaggingData.Read(zip, new DataFileOptions { Split = DataSplit.Test });
        Assert.Equal(47377, test.Examples.Sum(s => s.Words.Count));
        Assert.Equal("I-NP", test.Examples[0].Tags![1]);
    }

    /// <summary>Fine-tunes the fixture model through the CLI; returns its --json result and the run folder's
    /// predictions_{split}.jsonl lines.</summary>
    static (JsonElement Result, Func<string, List<JsonElement>> Predictions) FineTune(string task, params string[] args)
    {
        var run = Path.Combine(TestPaths.TempDir($"real-{task}"), "run");
        var all = new List<string> { "finetune", task, "--model", TestPaths.TinyBert, "--output", run, "--batch-size", "8", "--seed", "3", "--json" };
        all.AddRange(args);
        var (code, stdout, err) = BertSharp.Tests.Cli.CliRunner.Run(all.ToArray());
        Assert.True(code == 0, err);
        return (JsonDocument.Parse(stdout).RootElement, split => File.ReadLines(Path.Combine(run, $"predictions_{split}.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement).ToList());
    }

    static double Metric(JsonElement result, string split, string name) => result.GetProperty(split).GetProperty(name).GetDouble();

    [RealDataFact("snli")]
    public void SnliSliceIsFittedFarAboveTheMajorityLabel()
    {
        // 60 steps on 32 training pairs, scored on those same pairs (--dev is the training file): the tiny model fits
        // them, which a model that ignored its input or its labels could not.
        string train = P("snli", "snli_1.0_train_0.01.jsonl.gz");
        var (r, predictions) = FineTune("classify", "--train", train, "--dev", train, "--test", P("snli", "snli_1.0_test.jsonl.gz"),
            "--max-train-examples", "32", "--max-eval-examples", "32", "--max-steps", "60", "--eval-every", "60",
            "--learning-rate", "5e-3", "--max-seq-length", "64");
        var dev = predictions("dev");
        Assert.Equal(32, dev.Count);
        double majority = dev.GroupBy(p => p.GetProperty("label").GetString()).Max(g => g.Count()) / 32.0;   // 12/32 here
        double accuracy = Metric(r, "dev", "accuracy");
        Assert.True(accuracy > majority + 0.4, $"accuracy {accuracy} on the training pairs; the majority label alone gives {majority}");
        // The reported accuracies are those of the written predictions.
        foreach (var split in new[] { "dev", "test" })
        {
            var rows = predictions(split);
            Assert.Equal(rows.Count(p => p.GetProperty("prediction").GetString() == p.GetProperty("label").GetString()) / (double)rows.Count,
                Metric(r, split, "accuracy"), 5);
        }
    }

    [RealDataFact("stsb")]
    public void StsbSliceIsFittedWithAPositiveCorrelation()
    {
        // 80 steps on 32 training pairs, scored on those same pairs: a model that ignored its input would score a
        // Pearson correlation near 0 (0.69 here).
        string train = P("stsb", "sts-train.csv");
        var (r, predictions) = FineTune("similarity", "--train", train, "--dev", train, "--test", P("stsb", "sts-test.csv"),
            "--max-train-examples", "32", "--max-eval-examples", "32", "--max-steps", "80", "--eval-every", "80",
            "--learning-rate", "5e-3", "--max-seq-length", "64");
        double pearson = Metric(r, "dev", "pearson");
        Assert.True(pearson > 0.5, $"Pearson {pearson} on the training pairs");
        // The reported correlation is that of the written predictions, computed here from its definition.
        var dev = predictions("dev");
        double[] gold = dev.Select(p => p.GetProperty("score").GetDouble()).ToArray();
        double[] predicted = dev.Select(p => p.GetProperty("prediction").GetDouble()).ToArray();
        double gm = gold.Average(), pm = predicted.Average();
        double cov = gold.Zip(predicted).Sum(x => (x.First - gm) * (x.Second - pm));
        double expected = cov / Math.Sqrt(gold.Sum(g => (g - gm) * (g - gm)) * predicted.Sum(q => (q - pm) * (q - pm)));
        Assert.Equal(expected, pearson, 4);
    }

    [RealDataFact("ptb-pos")]
    public void TreebankSliceBeatsTheMostFrequentTagOnItsBuiltInTestSplit()
    {
        // 60 steps on 64 training sentences; scored on 64 held-out sentences of the built-in split, where always
        // answering the most frequent tag (NN) gives 0.16 and the tiny model 0.38.
        var (r, predictions) = FineTune("tag", "--train", P("ptb-pos", "treebank.zip"), "--max-seq-length", "32",
            "--max-train-examples", "64", "--max-eval-examples", "64", "--max-steps", "60", "--eval-every", "60", "--learning-rate", "1e-2");
        Assert.False(r.GetProperty("test").TryGetProperty("f1", out _));   // POS tags are not chunk tags
        var words = predictions("test").SelectMany(p => p.GetProperty("tags").EnumerateArray().Select(t => t.GetString())
            .Zip(p.GetProperty("predicted").EnumerateArray().Select(t => t.GetString()))).ToList();
        double majority = words.GroupBy(w => w.First).Max(g => g.Count()) / (double)words.Count;
        double accuracy = Metric(r, "test", "accuracy");
        Assert.Equal(words.Count(w => w.First == w.Second) / (double)words.Count, accuracy, 5);
        Assert.True(accuracy > majority + 0.1, $"accuracy {accuracy}; the most frequent tag alone gives {majority}");
    }
}
