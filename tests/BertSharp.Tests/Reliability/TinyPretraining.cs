using System.Text.Json;
using BertSharp.Modeling;
using BertSharp.Pretraining;
using BertSharp.Tests.Pretraining;
using BertSharp.Training;
using static TorchSharp.torch;

namespace BertSharp.Tests.Reliability;

/// <summary>A pre-training run small enough to run in-process in seconds (seed preset, 120-token vocabulary,
/// 32-token sequences, batches of 8), as in <see cref="ResumeTests"/>.</summary>
internal static class TinyPretraining
{
    public const long Seed = 5;

    public static string Corpus(string dir) => ResumeTests.WriteCorpus(dir);

    public static Trainer Make(string corpus, string output, bool resume, long maxSteps = 8, long evalEvery = 2,
        Func<ITrainingTask, ITrainingTask>? wrap = null, double learningRate = 1e-3, Func<TrainingOptions, TrainingOptions>? options = null)
    {
        var o = new PretrainingRunOptions { Corpus = corpus, ModelPreset = "seed", VocabSize = 120, MaxSeqLength = 32, BatchSize = 8, MaxValidationExamples = 16 };
        var prepared = PretrainingRun.Prepare(o, output, seed: Seed, resume: resume);
        ITrainingTask task = wrap is null ? prepared.Task : wrap(prepared.Task);
        var training = new TrainingOptions { OutputDir = output, LearningRate = learningRate, MaxSteps = maxSteps, EvalEvery = evalEvery, Seed = Seed, Resume = resume };
        return new Trainer(task, options is null ? training : options(training));
    }

    public static Dictionary<long, double> TrainLosses(string runDir) => ResumeTests.TrainLosses(runDir);

    public static long CheckpointStep(string checkpointDir) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(checkpointDir, "trainer_state.json"))).RootElement.GetProperty("global_step").GetInt64();

    /// <summary>Every tensor of a safetensors file is finite.</summary>
    public static bool AllFinite(string safetensorsPath)
    {
        var weights = BertSharp.Checkpoints.SafeTensorsFile.Load(safetensorsPath);
        try { return weights.Values.All(t => t.isfinite().all().item<bool>()); }
        finally { foreach (var t in weights.Values) t.Dispose(); }
    }
}

/// <summary>Wraps a task to inject numerical faults: a NaN loss, a NaN gradient (with a finite loss) at a given
/// optimizer step, or a NaN validation loss at a given evaluation.</summary>
internal sealed class FaultyTask(ITrainingTask inner) : ITrainingTask
{
    int _lossCalls, _evaluations;

    public long NanLossAtStep { get; init; } = -1;
    public long NanGradientAtStep { get; init; } = -1;
    public int NanValidationAtEvaluation { get; init; } = -1;
    /// <summary>The step whose loss throws what TorchSharp throws when libtorch fails.</summary>
    public long NativeFailureAtStep { get; init; } = -1;
    /// <summary>The step whose loss throws an exception of no kind the trainer expects (a bug).</summary>
    public long BugAtStep { get; init; } = -1;
    /// <summary>The epoch whose batch source throws (a bug) before its first batch: on the prefetch thread, at the
    /// epoch boundary.</summary>
    public int ProducerBugAtEpoch { get; init; } = -1;

    public BertWithHead Model => inner.Model;
    public int BatchesPerEpoch => inner.BatchesPerEpoch;
    public IEnumerable<Batch> TrainBatches(int epoch, int start)
    {
        if (epoch == ProducerBugAtEpoch) throw new InvalidOperationException($"injected: the batch source of epoch {epoch} failed");
        foreach (var b in inner.TrainBatches(epoch, start)) yield return b;
    }
    public string SelectionMetric => inner.SelectionMetric;
    public IReadOnlyCollection<string> Metrics => inner.Metrics;
    public void SaveModel(string dir) => inner.SaveModel(dir);

    public BatchLoss Loss(Batch batch)
    {
        var l = inner.Loss(batch);
        long step = ++_lossCalls; // one micro-batch per step in these tests
        if (step == NativeFailureAtStep)
        {
            l.Loss.Dispose();
            throw new System.Runtime.InteropServices.ExternalException("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 1073741824 bytes.");
        }
        if (step == BugAtStep)
        {
            l.Loss.Dispose();
            throw new InvalidOperationException("injected: an unexpected failure in the step");
        }
        if (step == NanLossAtStep) return l with { Loss = l.Loss * double.NaN };
        if (step == NanGradientAtStep)
        {
            // sqrt'(0) is infinite and 0 * inf is NaN: the loss value is unchanged, its gradient is NaN.
            var p = inner.Model.parameters().First();
            var zero = (p - p.detach()).sum();
            return l with { Loss = l.Loss + 0.0 * zero.sqrt() };
        }
        return l;
    }

    public IReadOnlyDictionary<string, double> Evaluate()
    {
        var r = inner.Evaluate();
        if (++_evaluations == NanValidationAtEvaluation)
            return new Dictionary<string, double>(r) { ["loss"] = double.NaN };
        return r;
    }
}
