using System.Text.Json;
using BertSharp.Pretraining;
using BertSharp.Training;

namespace BertSharp.Tests.Pretraining;

/// <summary>An interrupted pre-training run, resumed, logs exactly the losses of an uninterrupted one.</summary>
[Collection(SerialCollection.Name)]
public class ResumeTests
{
    internal static string WriteCorpus(string dir, int docs = 24, int sentences = 8, int seed = 3)
    {
        var words = "the of and a to in is was for on as with by he at from his an were are which this be or had first one their its new after but who not they have".Split(' ');
        var rng = new Random(seed);
        var lines = new List<string>();
        for (int d = 0; d < docs; d++)
        {
            var sb = new List<string>();
            for (int s = 0; s < sentences; s++)
            {
                int n = 4 + rng.Next(8);
                var w = Enumerable.Range(0, n).Select(_ => words[rng.Next(words.Length)]).ToList();
                w[0] = char.ToUpperInvariant(w[0][0]) + w[0][1..];
                sb.Add(string.Join(' ', w) + ".");
            }
            lines.Add(string.Join(' ', sb));
            lines.Add("");
        }
        var path = Path.Combine(dir, "corpus.txt");
        File.WriteAllLines(path, lines);
        return path;
    }

    static PretrainingRunOptions Options(string corpus, string output, bool resume = false, long maxSteps = 12) => new()
    {
        Corpus = corpus, Output = output, Resume = resume, ModelPreset = "seed", VocabSize = 120, MaxSeqLength = 32, BatchSize = 8,
        MaxValidationExamples = 16, LearningRate = 1e-3, MaxSteps = maxSteps, EvalEvery = 4, Seed = 5,
    };

    internal static Dictionary<long, double> TrainLosses(string runDir) =>
        File.ReadLines(Path.Combine(runDir, "metrics.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("split").GetString() == "train")
            .ToDictionary(e => e.GetProperty("step").GetInt64(), e => e.GetProperty("loss").GetDouble());

    [Fact]
    public void CrashAfterACheckpointThenResumeRepeatsTheSameLosses()
    {
        var dir = TestPaths.TempDir("resume");
        var corpus = WriteCorpus(dir);
        var straight = Path.Combine(dir, "straight");
        Assert.True(PretrainingRun.Run(Options(corpus, straight)).Completed);
        var expected = TrainLosses(straight);
        Assert.Equal(12, expected.Count);

        // A crash at step 10: the last checkpoint is step 8's; rows 9 and 10 were logged and must be dropped.
        var crashed = Path.Combine(dir, "crashed");
        var crash = new TrainingEvents { Step = p => { if (p.Step == 10) throw new IOException("simulated crash"); } };
        Assert.Throws<IOException>(() => PretrainingRun.Run(Options(corpus, crashed), crash));
        // Resumed with nothing but the folder: the options come from its args.json.
        var again = PretrainingRun.Run(new PretrainingRunOptions { Output = crashed, Resume = true });
        Assert.True(again.Completed);
        Assert.Equal(12, again.Training.Step);
        var resumed = TrainLosses(crashed);
        Assert.Equal(expected.Keys.Order(), resumed.Keys.Order());
        foreach (var (step, loss) in expected) Assert.Equal(loss, resumed[step], 1e-6);
    }

    [Fact]
    public void CancelMidRunSavesAndResumeContinuesExactly()
    {
        var dir = TestPaths.TempDir("cancel");
        var corpus = WriteCorpus(dir);
        var straight = Path.Combine(dir, "straight");
        PretrainingRun.Run(Options(corpus, straight));
        var expected = TrainLosses(straight);

        var stopped = Path.Combine(dir, "stopped");
        using var cts = new CancellationTokenSource();
        var first = PretrainingRun.Run(Options(corpus, stopped), new TrainingEvents { Step = p => { if (p.Step == 6) cts.Cancel(); } }, cts.Token);
        Assert.False(first.Completed);
        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(stopped, "checkpoints", "last", "trainer_state.json"))).RootElement;
        Assert.Equal(6, state.GetProperty("global_step").GetInt64());
        Assert.True(PretrainingRun.Run(Options(corpus, stopped, resume: true)).Completed);
        var resumed = TrainLosses(stopped);
        foreach (var (step, loss) in expected) Assert.Equal(loss, resumed[step], 1e-6);
    }
}
