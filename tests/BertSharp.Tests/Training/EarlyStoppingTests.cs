using System.Text.Json;
using BertSharp.Modeling;
using BertSharp.Tasks;
using BertSharp.Tests.Reliability;
using BertSharp.Tests.Tasks;
using BertSharp.Tests.Tasks.QuestionAnswering;
using BertSharp.Training;
using static BertSharp.Tests.Cli.CliRunner;

namespace BertSharp.Tests.Training;

/// <summary>A task whose evaluations report the values of a script (by evaluation number, from 1), so that when early
/// stopping must stop is known in advance; training is the wrapped task's.</summary>
internal sealed class ScriptedEvaluation(ITrainingTask inner, Func<int, double> loss, Func<int, double> score, int evaluationsDone = 0) : ITrainingTask
{
    int evaluations = evaluationsDone;

    public int TrainingSteps { get; private set; }
    public BertWithHead Model => inner.Model;
    public int BatchesPerEpoch => inner.BatchesPerEpoch;
    public IEnumerable<Batch> TrainBatches(int epoch, int start) => inner.TrainBatches(epoch, start);
    public BatchLoss Loss(Batch batch) { TrainingSteps++; return inner.Loss(batch); }
    public IReadOnlyCollection<string> Metrics { get; } = ["loss", "score"];
    public string SelectionMetric => "loss";
    public void SaveModel(string dir) => inner.SaveModel(dir);

    public IReadOnlyDictionary<string, double> Evaluate()
    {
        int n = ++evaluations;
        return new Dictionary<string, double> { ["loss"] = loss(n), ["score"] = score(n) };
    }
}

[Collection(SerialCollection.Name)]
public class EarlyStoppingTests
{
    static JsonElement TrainerState(string run) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "checkpoints", "last", "trainer_state.json"))).RootElement;

    static List<long> EvalSteps(string run) =>
        File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(r => r.GetProperty("split").GetString() == "eval").Select(r => r.GetProperty("step").GetInt64()).ToList();

    [Fact]
    public void Stops_after_patience_evaluations_without_improvement_in_the_metrics_own_direction()
    {
        var dir = TestPaths.TempDir("early-stop");
        var corpus = TinyPretraining.Corpus(dir);
        // Every evaluation the loss falls (better: lower) and the score falls too (worse: higher is better).
        TrainingResult Train(string name, string? metric, int patience) =>
            TinyPretraining.Make(corpus, Path.Combine(dir, name), resume: false, maxSteps: 8, evalEvery: 1,
                wrap: t => new ScriptedEvaluation(t, loss: n => 10.0 / n, score: n => 1.0 / n),
                options: o => o with { SelectionMetric = metric, EarlyStoppingPatience = patience }).Train();

        var byLoss = Train("loss", "eval_loss", patience: 1);
        Assert.Equal("loss", byLoss.SelectionMetric);
        Assert.True(byLoss.Completed);
        Assert.Null(byLoss.StopReason);
        Assert.Equal((8, 8), (byLoss.Step, byLoss.BestStep));

        var run = Path.Combine(dir, "score");
        var byScore = Train("score", "score", patience: 2);
        Assert.True(byScore.Completed);   // stopped early is finished, not interrupted
        Assert.Equal((3, 1), (byScore.Step, byScore.BestStep));
        Assert.Equal(1.0, byScore.BestMetric);
        Assert.Equal("early stopping: score did not improve on 1 (step 1) in 2 evaluations", byScore.StopReason);
        Assert.Equal([1, 2, 3], EvalSteps(run));
        var state = TrainerState(run);
        Assert.Equal(byScore.StopReason, state.GetProperty("stop_reason").GetString());
        Assert.Equal(2, state.GetProperty("evaluations_without_improvement").GetInt32());
        Assert.Equal("score", state.GetProperty("selection_metric").GetString());

        var e = Assert.Throws<BertSharpException>(() => Train("bleu", "bleu", patience: 1));
        Assert.Equal("metricForBestModel 'bleu': the evaluation reports loss, score", e.Message);
        Assert.Equal(["metricForBestModel"], e.Parameters);
        e = Assert.Throws<BertSharpException>(() => Train("zero", null, patience: 0));
        Assert.Equal(["earlyStoppingPatience"], e.Parameters);
    }

    [Fact]
    public void The_patience_counter_survives_a_resume_and_an_early_stopped_run_stays_finished()
    {
        var dir = TestPaths.TempDir("early-stop-resume");
        var corpus = TinyPretraining.Corpus(dir);
        var run = Path.Combine(dir, "run");
        // Best at evaluation 2; 3, 4 and 5 are worse (patience 3 runs out at step 5); 6 would be a new best.
        double[] scores = [0.5, 0.6, 0.55, 0.55, 0.58, 0.7, 0.8, 0.9];
        Trainer Make(bool resume, int done, out ScriptedEvaluation task)
        {
            ScriptedEvaluation? made = null;
            var trainer = TinyPretraining.Make(corpus, run, resume, maxSteps: 8, evalEvery: 1,
                wrap: t => made = new ScriptedEvaluation(t, loss: _ => 1, score: n => scores[n - 1], done),
                options: o => o with { SelectionMetric = "score", EarlyStoppingPatience = 3 });
            task = made!;
            return trainer;
        }

        using var cts = new CancellationTokenSource();
        var first = Make(resume: false, done: 0, out _);
        first.OnStep = p => { if (p.Step == 4) cts.Cancel(); };
        var interrupted = first.Train(cts.Token);
        Assert.False(interrupted.Completed);
        Assert.Equal(4, interrupted.Step);
        Assert.Equal(2, TrainerState(run).GetProperty("evaluations_without_improvement").GetInt32());

        // Counted afresh, evaluation 5 would be the first without improvement and 6 a new best: the run would go to 8.
        var resumed = Make(resume: true, done: 4, out _).Train();
        Assert.True(resumed.Completed);
        Assert.Equal((5, 2), (resumed.Step, resumed.BestStep));
        Assert.Contains("in 3 evaluations", resumed.StopReason);

        var messages = new List<string>();
        var again = Make(resume: true, done: 5, out var task);
        again.OnMessage = messages.Add;
        var done = again.Train();
        Assert.True(done.Completed);
        Assert.Equal(5, done.Step);
        Assert.Equal(resumed.StopReason, done.StopReason);
        Assert.Equal(0, task.TrainingSteps);
        Assert.Contains(messages, m => m.StartsWith("the run is complete: it stopped early at step 5") && m.EndsWith("nothing left to train"));
        Assert.Equal([1, 2, 3, 4, 5], EvalSteps(run));

        // The best model of a run is by one metric: a resume by another is refused.
        var other = TinyPretraining.Make(corpus, run, resume: true, maxSteps: 8, evalEvery: 1,
            wrap: t => new ScriptedEvaluation(t, loss: _ => 1, score: _ => 1), options: o => o with { SelectionMetric = "loss" });
        var e = Assert.Throws<BertSharpException>(() => other.Train());
        Assert.Contains("the run picks its best model by score, not loss", e.Message);
    }

    /// <summary>A fine-tuning run of each task, evaluated every step: at a learning rate too small to change a weight
    /// the dev metric never improves on the first evaluation, so patience 2 stops the run at step 3 of 10.</summary>
    [Theory]
    [InlineData("classify", "accuracy")]
    [InlineData("similarity", "pearson")]
    [InlineData("tag", "f1")]
    [InlineData("qa", "f1")]
    [InlineData("embed", "accuracy")]
    public void Every_task_evaluates_every_N_steps_and_stops_early(string task, string metric)
    {
        var dir = TestPaths.TempDir($"early-stop-{task}");
        string F(string name) => Path.Combine(dir, name);
        var o = new FineTuneOptions
        {
            Task = task, Model = TestPaths.TinyBert, Output = F("run"), BatchSize = 4, MaxSeqLength = 32, LearningRate = 1e-30,
            MaxSteps = 10, EvalEvery = 1, EarlyStoppingPatience = 2, Seed = 3,
        };
        switch (task)
        {
            case "classify": CliFineTuneTests.WriteClassification(dir); o = o with { Train = F("train.tsv"), Dev = F("dev.tsv") }; break;
            case "similarity": CliFineTuneTests.WriteSimilarity(dir); o = o with { Train = F("sts-train.csv"), Dev = F("sts-dev.csv") }; break;
            case "tag": CliFineTuneTests.WriteConll(dir); o = o with { Train = F("train.txt"), Dev = F("dev.txt") }; break;
            case "qa":
                File.WriteAllText(F("squad.json"), QaEndToEndTests.SyntheticSquad(articles: 2, paragraphsPerArticle: 2));
                o = o with { Train = F("squad.json"), SplitArticles = 1 };
                break;
            case "embed":
                EmbeddingTests.WriteParaphrases(F("train.tsv"), 24, 1);
                EmbeddingTests.WriteParaphrases(F("dev.tsv"), 8, 2);
                o = o with { Train = F("train.tsv"), Dev = F("dev.tsv") };
                break;
        }
        var result = FineTuneRun.Run(o);
        Assert.True(result.Completed);
        Assert.Equal(metric, result.Training.SelectionMetric);
        Assert.Equal((3, 10), (result.Training.Step, result.Training.TotalSteps));
        Assert.Equal(1, result.Training.BestStep);
        Assert.StartsWith($"early stopping: {metric} did not improve", result.Training.StopReason);
        Assert.Equal([1, 2, 3], EvalSteps(result.RunFolder));
        Assert.NotEmpty(result.Final);
        var args = JsonDocument.Parse(File.ReadAllText(Path.Combine(result.RunFolder, "args.json"))).RootElement;
        Assert.Equal(metric, args.GetProperty("--metric-for-best-model").GetString());
        Assert.Equal(2, args.GetProperty("--early-stopping-patience").GetInt32());
    }

    [Fact]
    public void The_cli_stops_early_records_both_options_and_a_resume_finds_the_run_finished()
    {
        var dir = TestPaths.TempDir("early-stop-cli");
        CliFineTuneTests.WriteClassification(dir);
        string F(string name) => Path.Combine(dir, name);
        string run = F("run");
        string[] common = ["finetune", "classify", "--model", TestPaths.TinyBert, "--train", F("train.tsv"), "--dev", F("dev.tsv"), "--batch-size", "4",
            "--max-seq-length", "32", "--max-steps", "10", "--eval-every", "1", "--learning-rate", "1e-30", "--seed", "3"];

        var bad = Run([.. common, "--output", F("bad"), "--metric-for-best-model", "bleu"]);
        Assert.Equal(1, bad.Code);
        Assert.Contains("--metric-for-best-model 'bleu': the evaluation reports loss, accuracy, macro_f1", bad.Err);
        Assert.Single(bad.Err.Trim().Split('\n'), l => l.Contains("bleu"));

        var (code, stdout, err) = Run([.. common, "--output", run, "--metric-for-best-model", "eval_loss", "--early-stopping-patience", "2", "--json"]);
        Assert.True(code == 0, err);
        Assert.Contains("best model by dev loss, stopping after 2 evaluations without a better one", err);
        Assert.Contains("stopped early at step 3 of 10: early stopping: loss did not improve", err);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.StartsWith("early stopping: loss", json.GetProperty("stop_reason").GetString());
        Assert.True(json.TryGetProperty("dev", out _));
        var args = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "args.json"))).RootElement;
        Assert.Equal("loss", args.GetProperty("--metric-for-best-model").GetString());
        Assert.Equal(2, args.GetProperty("--early-stopping-patience").GetInt32());

        var resumed = Run("finetune", "classify", "--resume", "--output", run);
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Contains("the run is complete: it stopped early at step 3", resumed.Err);
        Assert.DoesNotContain("not finished", resumed.Err);
        Assert.Equal([1, 2, 3], EvalSteps(run));
    }
}
