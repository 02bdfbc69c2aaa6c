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
        Assert.Equal(p[0].Tags.Zip(tags).Count(t => t.First == t.Second) / (double)words.Count, score.Metrics["accuracy"], 9);   // the predictions' share right
        Assert.False(score.Metrics.ContainsKey("f1"));   // A/B are not chunk tags
    }
}

[Collection(SerialCollection.Name)]
public class FineTuneResumeTests
{
    static (Trainer, FineTuning.Prepared<ClassificationExample>) Make(string dir, string output, bool resume)
    {
        var o = new FineTuneOptions
        {
            Train = Path.Combine(dir, "train.tsv"), Dev = Path.Combine(dir, "dev.tsv"), Model = TestPaths.TinyBert,
            BatchSize = 4, MaxSeqLength = 16,
        };
        var p = FineTuning.Prepare(ClassificationModel.Spec, o, seed: 9);
        var t = new Trainer(p.Task, new TrainingOptions { OutputDir = output, LearningRate = 1e-3, Epochs = 2, EvalEvery = 3, Seed = 9, Resume = resume });
        return (t, p);
    }

    [Fact]
    public void TrainBatchesFromAnyStartContinueTheSameOrderAndResumeRepeatsTheLosses()
    {
        var dir = TestPaths.TempDir("ft-resume");
        CliFineTuneTests.WriteClassification(dir);
        var (straightTrainer, p) = Make(dir, Path.Combine(dir, "straight"), false);
        var all = p.Task.TrainBatches(1, 0).Select(b => { using (b) return b["input_ids"].data<long>().ToArray(); }).ToList();
        var later = p.Task.TrainBatches(1, 2).Select(b => { using (b) return b["input_ids"].data<long>().ToArray(); }).ToList();
        Assert.Equal(all.Skip(2), later);

        straightTrainer.Train();
        var expected = Pretraining.ResumeTests.TrainLosses(Path.Combine(dir, "straight"));
        var stopped = Path.Combine(dir, "stopped");
        var (t1, _) = Make(dir, stopped, false);
        using var cts = new CancellationTokenSource();
        t1.OnStep = s => { if (s.Step == 5) cts.Cancel(); };
        t1.Train(cts.Token);
        Make(dir, stopped, true).Item1.Train();
        var resumed = Pretraining.ResumeTests.TrainLosses(stopped);
        Assert.Equal(expected.Count, resumed.Count);
        Assert.Equal(string.Join(" ", expected.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}:{kv.Value:F5}")), string.Join(" ", resumed.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}:{kv.Value:F5}")));
        foreach (var (step, loss) in expected) Assert.Equal(loss, resumed[step], 1e-5);
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
