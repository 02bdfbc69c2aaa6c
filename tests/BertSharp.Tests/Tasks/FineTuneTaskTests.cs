using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tasks.Classification;
using BertSharp.Tasks.Tagging;
using BertSharp.Tokenization;
using BertSharp.Training;

namespace BertSharp.Tests.Tasks;

public class BatchingTests
{
    [Fact]
    public void TrainOrderCoversEveryFeatureOnceAndIsFixedBySeedAndEpoch()
    {
        var rng = new Random(1);
        var lengths = Enumerable.Range(0, 1000).Select(_ => 5 + rng.Next(60)).ToArray();
        var a = Batching.TrainOrder(lengths, 16, seed: 3, epoch: 0);
        Assert.Equal(63, a.Length);                                         // ceil(1000 / 16)
        Assert.Equal(Enumerable.Range(0, 1000), a.SelectMany(b => b).Order());
        Assert.Equal(a, Batching.TrainOrder(lengths, 16, seed: 3, epoch: 0));
        Assert.NotEqual(a, Batching.TrainOrder(lengths, 16, seed: 3, epoch: 1));
        Assert.Single(a, b => b.Length != 16);

        // length grouping: far less padding than plain shuffled batches
        long Padded(int[][] batches) => batches.Sum(b => (long)b.Length * b.Max(i => lengths[i]));
        var plain = Batching.TrainOrder(lengths, 16, 3, 0, groupByLength: false);
        Assert.Equal(Enumerable.Range(0, 1000), plain.SelectMany(b => b).Order());
        Assert.True(Padded(a) < 0.8 * Padded(plain), $"{Padded(a)} vs {Padded(plain)}");
    }

    [Fact]
    public void CollatePadsToTheLongestAndIgnoresPaddedTokenLabels()
    {
        var items = new[]
        {
            new Feature { InputIds = [2, 7, 3], TokenTypeIds = [0, 0, 0], TokenLabels = [-100, 1, -100] },
            new Feature { InputIds = [2, 3], TokenTypeIds = [0, 0], TokenLabels = [-100, -100] },
        };
        using var b = Batching.Collate(items, padId: 0, LabelKind.Token);
        Assert.Equal(new long[] { 2, 3 }, b["input_ids"].shape);
        Assert.Equal(new long[] { 2, 7, 3, 2, 3, 0 }, b["input_ids"].data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 0 }, b["attention_mask"].data<long>().ToArray());
        Assert.Equal(new long[] { -100, 1, -100, -100, -100, -100 }, b["labels"].data<long>().ToArray());
    }
}

public class TaggingWindowTests
{
    static TaggingModel Tagger(int maxSeq)
    {
        var config = ModelFolder.ReadConfig(TestPaths.TinyBert);
        TaggingModel.Configure(config, ["A", "B"]);
        var model = new BertForTokenClassification(config);
        model.InitWeights();
        return new TaggingModel(model, BertTokenizer.FromFolder(TestPaths.TinyBert), maxSeq);
    }

    [Fact]
    public void LongSentencesAreSplitIntoWindowsOfWholeWordsNeverCut()
    {
        using var tagger = Tagger(8);   // 6 pieces per window
        var tok = tagger.Tokenizer;
        var words = new List<string> { "the", "unbelievably", "of", "1234567890123", "and", "to", "in", "is", "it", "you", "that", "he", "was" };
        Assert.True(tok.Encode("1234567890123").Length > 6);       // a word longer than a window
        Assert.True(tok.Encode("unbelievably").Length > 1);
        var tags = words.Select((_, i) => i % 2 == 0 ? "A" : "B").ToList();
        var features = tagger.Encode([new TaggedSentence(words, tags)]);
        Assert.True(features.Count >= 3);
        Assert.All(features, f => Assert.True(f.Length <= 8));
        // every word starts exactly once, carries its tag on its first piece, and the other pieces are ignored
        var starts = features.SelectMany(f => f.WordStarts!.Where(w => w >= 0)).ToList();
        Assert.Equal(Enumerable.Range(0, words.Count), starts);
        foreach (var f in features)
            for (int t = 0; t < f.Length; t++)
                Assert.Equal(f.WordStarts![t] >= 0 ? (f.WordStarts[t] % 2 == 0 ? 0 : 1) : -100, f.TokenLabels![t]);
        var p = tagger.Predict([words]);
        Assert.Equal(words.Count, p[0].Tags.Count);
        var score = tagger.Score([new TaggedSentence(words, tags)]);
        // The reported accuracy is the share of words whose predicted tag (as Predict gives it) is the gold one.
        Assert.Equal(Enumerable.Range(0, words.Count).Count(i => p[0].Tags[i] == tags[i]) / (double)words.Count, score.Metrics["accuracy"], 1e-9);
        Assert.False(score.Metrics.ContainsKey("f1"));   // A/B are not chunk tags
    }
}

[Collection(SerialCollection.Name)]
public class FineTuneResumeTests
{
    static FineTuneOptions Options(string dir, string output, bool resume = false) => new()
    {
        Task = ClassificationModel.Task, Output = output, Resume = resume,
        Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"), Model = TestPaths.TinyBert,
        BatchSize = 4, MaxSeqLength = 16, LearningRate = 1e-3, Epochs = 2, EvalEvery = 3, Seed = 9,
    };

    [Fact]
    public void TrainBatchesFromAnyStartContinueTheSameOrderAndResumeRepeatsTheLosses()
    {
        var dir = TestPaths.TempDir("ft-resume");
        CliFineTuneTests.WriteClassification(dir);
        var p = FineTuneRun.Prepare(ClassificationModel.Family, Options(dir, Path.Combine(dir, "unused")), seed: 9);
        var all = p.Task.TrainBatches(1, 0).Select(b => { using (b) return b["input_ids"].data<long>().ToArray(); }).ToList();
        var later = p.Task.TrainBatches(1, 2).Select(b => { using (b) return b["input_ids"].data<long>().ToArray(); }).ToList();
        Assert.Equal(all.Skip(2), later);
        p.Model.Dispose();

        var straight = FineTuneRun.Run(Options(dir, Path.Combine(dir, "straight")));
        Assert.True(straight.Completed);
        var expected = Pretraining.ResumeTests.TrainLosses(straight.RunFolder);
        var stopped = Path.Combine(dir, "stopped");
        using var cts = new CancellationTokenSource();
        var interrupted = FineTuneRun.Run(Options(dir, stopped), new TrainingEvents { Step = s => { if (s.Step == 5) cts.Cancel(); } }, cts.Token);
        Assert.False(interrupted.Completed);
        Assert.Equal(5, interrupted.Training.Step);
        Assert.Empty(interrupted.Final);
        // Resumed with nothing but the folder: the options come from its args.json.
        var resumed = FineTuneRun.Run(new FineTuneOptions { Task = ClassificationModel.Task, Output = stopped, Resume = true });
        Assert.True(resumed.Completed);
        var losses = Pretraining.ResumeTests.TrainLosses(stopped);
        Assert.Equal(expected.Count, losses.Count);
        foreach (var (step, loss) in expected) Assert.Equal(loss, losses[step], 1e-5);
        Assert.Equal(straight.Training.BestStep, resumed.Training.BestStep);
        Assert.Equal(straight.Final.Select(f => f.Score.Metrics["accuracy"]), resumed.Final.Select(f => f.Score.Metrics["accuracy"]));
    }

    [Fact]
    public void ArgsJsonRecordsTheResolvedValuesAndARunIsNotStartedTwice()
    {
        var dir = TestPaths.TempDir("ft-args");
        CliFineTuneTests.WriteClassification(dir);
        var o = Options(dir, Path.Combine(dir, "run")) with { LearningRate = null, Epochs = null, MaxSeqLength = null, MaxSteps = 1 };
        var result = FineTuneRun.Run(o);
        var args = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.RunFolder, "args.json"))).RootElement;
        var (lr, epochs) = FineTuneDefaults.For(ModelFolder.ReadConfig(TestPaths.TinyBert));
        Assert.Equal(lr, args.GetProperty("--learning-rate").GetDouble());
        Assert.Equal(epochs, args.GetProperty("--epochs").GetInt32());
        Assert.Equal(128, args.GetProperty("--max-seq-length").GetInt32());
        Assert.Equal(9, args.GetProperty("--seed").GetInt64());
        Assert.Equal("pretrained", args.GetProperty("--init").GetString());
        Assert.Equal(lr, result.Options.LearningRate);
        var e = Assert.Throws<BertSharpException>(() => FineTuneRun.Run(o));
        Assert.Contains("already holds a run", e.Message);
        Assert.Equal(["resume", "output"], e.Parameters);
    }
}

public class TaskDispatchTests
{
    static BertConfig Config(string arch, int labels, string? problem = null) =>
        new() { Architectures = [arch], Labels = Enumerable.Range(0, labels).Select(i => $"LABEL_{i}").ToList(), ProblemType = problem };

    [Fact]
    public void FoldersWithoutBertSharpTaskAreRecognisedByArchitecture()
    {
        Assert.Equal("similarity", BertSharp.Inference.FineTunedModel.TaskOf(Config("BertForSequenceClassification", 1, "regression")));
        Assert.Equal("classify", BertSharp.Inference.FineTunedModel.TaskOf(Config("BertForSequenceClassification", 3)));
        Assert.Equal("tag", BertSharp.Inference.FineTunedModel.TaskOf(Config("BertForTokenClassification", 9)));
        var e = Assert.Throws<BertSharpException>(() => BertSharp.Inference.FineTunedModel.TaskOf(Config("BertForPreTraining", 2)));
        Assert.Contains("is not a fine-tuned task model", e.Message);
        var named = Config("BertForSequenceClassification", 3);
        named.Extra["bertsharp_task"] = "tag";   // the explicit field wins
        Assert.Equal("tag", BertSharp.Inference.FineTunedModel.TaskOf(named));
    }
}
