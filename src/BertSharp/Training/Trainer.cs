using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Reporting;
using BertSharp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>
/// The one training loop, shared by pre-training and fine-tuning: AdamW (no weight decay on biases and
/// LayerNorm), linear warmup then linear decay, gradient clipping, gradient accumulation, evaluation every
/// N steps with the best model kept (by the task's metric or a chosen one), early stopping, a last checkpoint that
/// --resume continues exactly, and logs.
/// </summary>
public sealed class Trainer
{
    private readonly ITrainingTask task;
    private readonly TrainingOptions o;
    private readonly RunFolder run;
    private readonly string metric;
    private readonly bool higherIsBetter;

    public Trainer(ITrainingTask task, TrainingOptions options)
    {
        this.task = task;
        o = options;
        run = new RunFolder(options.OutputDir);
        if (o.GradientAccumulation < 1) throw new BertSharpException($"gradientAccumulation must be at least 1, got {o.GradientAccumulation}") { Parameters = ["gradientAccumulation"] };
        if (o.LearningRate <= 0) throw new BertSharpException($"learningRate must be positive, got {o.LearningRate}") { Parameters = ["learningRate"] };
        if (o.EarlyStoppingPatience is int patience && patience < 1)
            throw new BertSharpException($"earlyStoppingPatience must be at least 1, got {patience}") { Parameters = ["earlyStoppingPatience"] };
        metric = MetricSelection.Resolve(o.SelectionMetric, task.SelectionMetric, task.Metrics);
        higherIsBetter = MetricSelection.HigherIsBetter(metric);
    }

    public Action<TrainerProgress>? OnStep { get; set; }

    /// <summary>Called once before the first step with the step training starts from (the checkpoint's when resumed).</summary>
    public Action<long>? OnStart { get; set; }
    public Action<string>? OnMessage { get; set; }
    /// <summary>Plots redrawn at every evaluation (null: the three pre-training loss figures).</summary>
    public IReadOnlyList<PlotSpec>? Plots { get; init; }

    public long StepsPerEpoch => Math.Max(1, (task.BatchesPerEpoch + o.GradientAccumulation - 1) / o.GradientAccumulation);
    public long TotalSteps => o.MaxSteps ?? StepsPerEpoch * o.Epochs;

    /// <summary>Weight decay on weights only: HF and Google exclude biases and LayerNorm parameters.</summary>
    public static bool Decays(string name) => !(name.EndsWith(".bias") || name.Contains("LayerNorm") || name == "cls.predictions.bias");

    AdamW CreateOptimizer()
    {
        var named = task.Model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        var groups = new[]
        {
            new AdamW.ParamGroup(named.Where(p => Decays(p.name)).Select(p => p.parameter), lr: o.LearningRate, eps: o.AdamEpsilon, weight_decay: o.WeightDecay),
            new AdamW.ParamGroup(named.Where(p => !Decays(p.name)).Select(p => p.parameter), lr: o.LearningRate, eps: o.AdamEpsilon, weight_decay: 0.0),
        };
        return torch.optim.AdamW(groups, lr: o.LearningRate, eps: o.AdamEpsilon, weight_decay: o.WeightDecay);
    }

    /// <summary>Where training stands; <paramref name="WithoutImprovement"/> counts the evaluations since the best one
    /// (early stopping's patience), <paramref name="StopReason"/> says why a run stopped early.</summary>
    sealed record State(long Step, int Epoch, int NextBatch, double? BestMetric, long BestStep, int WithoutImprovement = 0, string? StopReason = null);

    /// <summary>Trains until the total steps are done or <paramref name="cancel"/> fires (then the state is
    /// saved so a resumed run continues). Returns where the run stands and its last evaluation.</summary>
    public TrainingResult Train(CancellationToken cancel = default)
    {
        using var runLock = run.Lock();            // a second run writing into the same folder is refused
        RunFolder.FinishReplaceFiles(run.Root);    // a best-model save a crash interrupted
        var model = task.Model;
        var optimizer = CreateOptimizer();
        var schedule = new LinearSchedule(o.LearningRate, o.WarmupSteps ?? (long)Math.Round(TotalSteps * o.WarmupRatio), TotalSteps);
        var state = new State(0, 0, 0, null, -1);
        if (o.Resume)
        {
            state = LoadCheckpoint(optimizer);
            if (state.StopReason != null || state.Step >= TotalSteps)
            {
                // A finished run stays finished: an early-stopped one is not trained on to its last step.
                OnMessage?.Invoke(state.StopReason != null
                    ? $"the run is complete: it stopped early at step {state.Step} ({state.StopReason}); nothing left to train"
                    : $"the run is complete (step {state.Step} of {TotalSteps}); nothing left to train");
                return Result(state.Step, state, null);
            }
        }
        else TorchRuntime.Seed(o.Seed);

        using var logger = new RunLogger(run.Root, o.Resume ? state.Step : null, Plots);
        long evalEvery = o.EvalEvery > 0 ? o.EvalEvery : StepsPerEpoch;
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        IReadOnlyDictionary<string, double>? lastEval = null;
        var clock = Stopwatch.StartNew();
        var heap = NativeHeap.ForTraining();   // only in a process tuned for it (ProcessTuning)
        heap?.ReleaseAll();   // what loading and preparing the data left free
        long sequencesSinceLog = 0;
        var logClock = Stopwatch.StartNew();
        var sums = new Dictionary<string, double>();
        int microInStep = 0, microsSinceLog = 0;
        model.train();

        using var batches = new Prefetcher<Batch>(Batches(state.Epoch, state.NextBatch));
        long step = state.Step;
        int epoch = state.Epoch, nextBatch = state.NextBatch;
        OnStart?.Invoke(step);
        try
        {
        while (step < TotalSteps)
        {
            if (cancel.IsCancellationRequested)
            {
                SaveCheckpoint(optimizer, state with { Step = step, Epoch = epoch, NextBatch = nextBatch });
                OnMessage?.Invoke($"interrupted at step {step}; state saved to {run.LastCheckpoint}");
                return Result(step, state, lastEval);
            }
            if (microInStep == 0) FusedAdamW.ClearGradients(parameters);
            if (!batches.TryTake(out var batch)) throw new InvalidOperationException("the batch source ended");
            using (var scope = NewDisposeScope())
            using (batch)
            {
                var loss = task.Loss(batch);
                double value = loss.Loss.item<float>();
                if (!double.IsFinite(value))
                    throw NotFinite(step + 1, "the loss", value, "stopping");
                loss.Loss.With((long)o.GradientAccumulation, (t, s) => t.div(s)).backward();
                Accumulate(sums, "loss", value);
                foreach (var (k, t) in loss.Parts) Accumulate(sums, k, t.item<float>());
                sequencesSinceLog += batch.Sequences;
                (epoch, nextBatch) = batch.Index + 1 >= task.BatchesPerEpoch ? (batch.Epoch + 1, 0) : (batch.Epoch, batch.Index + 1);
            }
            microsSinceLog++;
            if (++microInStep < o.GradientAccumulation && nextBatch != 0) continue;
            microInStep = 0;

            double lr = schedule.At(step);
            foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
            double gradNorm = FusedAdamW.GradientNorm(parameters);
            if (!double.IsFinite(gradNorm))
                throw NotFinite(step + 1, "the gradient norm", gradNorm, "stopping before the update");
            FusedAdamW.Step(optimizer, FusedAdamW.ClipScale(gradNorm, o.MaxGradNorm));   // clipped to MaxGradNorm in the update
            step++;

            if (step % o.LogEvery == 0 || step == TotalSteps)
            {
                var row = sums.ToDictionary(kv => kv.Key, kv => kv.Value / microsSinceLog);
                double seconds = logClock.Elapsed.TotalSeconds;
                row["learning_rate"] = lr;
                row["grad_norm"] = gradNorm;
                row["epoch"] = epoch + (double)nextBatch / task.BatchesPerEpoch;
                row["sequences_per_second"] = sequencesSinceLog / Math.Max(seconds, 1e-9);
                logger.LogTrain(step, row);
                OnStep?.Invoke(new TrainerProgress(step, TotalSteps, epoch, row["loss"], row["sequences_per_second"], clock.Elapsed));
                sequencesSinceLog = 0;
                microsSinceLog = 0;
                sums.Clear();
                logClock.Restart();
            }

            if (step % evalEvery == 0 || step == TotalSteps)
            {
                lastEval = EvaluateNow();
                if (lastEval.TryGetValue("loss", out var evalLoss) && !double.IsFinite(evalLoss))
                    throw NotFinite(step, "the validation loss", evalLoss, "stopping without saving");
                var evalRow = lastEval.ToDictionary(kv => "val_" + kv.Key, kv => kv.Value);
                evalRow["epoch"] = epoch + (double)nextBatch / task.BatchesPerEpoch;
                logger.LogEval(step, evalRow);
                state = state with { Step = step, Epoch = epoch, NextBatch = nextBatch };
                if (!lastEval.TryGetValue(metric, out var value))
                    throw new BertSharpException($"step {step}: the evaluation reported no {metric} (it reported {string.Join(", ", lastEval.Keys)})") { Parameters = ["metricForBestModel"] };
                if (IsBetter(value, state.BestMetric))
                {
                    state = state with { BestMetric = value, BestStep = step, WithoutImprovement = 0 };
                    SaveBestModel(step);
                }
                else state = state with { WithoutImprovement = state.WithoutImprovement + 1 };
                if (o.EarlyStoppingPatience is int patience && state.WithoutImprovement >= patience && step < TotalSteps)
                    state = state with { StopReason = $"early stopping: {metric} did not improve on {state.BestMetric:G6} (step {state.BestStep}) in {patience} evaluation{(patience == 1 ? "" : "s")}" };
                SaveCheckpoint(optimizer, state);   // the stop reason with it: a resume finds the run complete
                OnMessage?.Invoke($"step {step}: " + string.Join(", ", lastEval.Select(kv => $"{kv.Key} {kv.Value:G4}")));
                if (state.StopReason != null)
                {
                    OnMessage?.Invoke($"{state.StopReason}; stopped at step {step} of {TotalSteps}, keeping the best model (step {state.BestStep})");
                    break;
                }
                model.train();
                heap?.ReleaseAll();   // evaluation and saving leave the largest holes
            }
            heap?.AfterStep();
        }
        }
        catch (ExternalException e)
        {
            // libtorch failed inside TorchSharp (out of memory, a kernel error): nothing the user gave was wrong, and
            // the checkpoint the run last completed is intact.
            string advice = ResumeAdvice();
            string report = RecordFailure(step + 1, e, advice);
            throw new BertSharpException($"step {step + 1}: libtorch failed: {e.Message.ReplaceLineEndings(" ").Trim()}; {advice} (report: {report})", e)
            { Parameters = ["resume"] };
        }
        catch (Exception e) when (e is not (BertSharpException or OperationCanceledException or IOException or UnauthorizedAccessException))
        {
            // A bug: it keeps its type and stack trace (the CLI reports it as one), and the run folder keeps both, since
            // a rare failure's console output is easily lost; the note says what the user still has.
            string advice = ResumeAdvice();
            string report = RecordFailure(step + 1, e, advice);
            e.Data[ResumeNoteKey] = $"the run stopped at step {step + 1}; {advice}; the stack trace is also in {report}";
            throw;
        }
        return Result(step, state, lastEval);
    }

    /// <summary>The key of <see cref="Exception.Data"/> under which an unexpected exception that stopped training
    /// carries one line saying where the run stopped, what to resume from and where its report is.</summary>
    public const string ResumeNoteKey = "BertSharp.ResumeNote";

    /// <summary>The file of the run folder that collects the reports of failures that stopped it.</summary>
    public const string FailuresFileName = "failures.log";

    /// <summary>Appends the failure, with its stack trace, the thread settings and <paramref name="advice"/> (what to
    /// resume from), to the run folder's <see cref="FailuresFileName"/>; returns its path. Never throws: the failure
    /// itself is what matters.</summary>
    string RecordFailure(long step, Exception e, string advice)
    {
        string path = Path.Combine(run.Root, FailuresFileName);
        try
        {
            File.AppendAllText(path,
                $"{DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss.fff}Z step {step}, libtorch threads {get_num_threads()}, process {Environment.ProcessId}, " +
                $"{advice}{Environment.NewLine}{e}{Environment.NewLine}{Environment.NewLine}");
        }
        catch (Exception writeError) when (writeError is IOException or UnauthorizedAccessException) { }
        return path;
    }

    /// <summary>What a run that stops now can be continued from: the intact last checkpoint, or nothing yet.</summary>
    string ResumeAdvice() => LastCheckpoint() is { } last
        ? $"the last checkpoint, {last}, is intact: resume to continue from it"
        : "no checkpoint was saved yet; start the run again";

    /// <summary>The complete checkpoint a resume would start from, with the step it holds when known ("…/last (step 6)"); null when none.</summary>
    string? LastCheckpoint() =>
        RunFolder.FindCheckpoint(run.LastCheckpoint) is { } found ? $"{found}{(savedStep is long s ? $" (step {s})" : "")}" : null;

    TrainingResult Result(long step, State state, IReadOnlyDictionary<string, double>? lastEval) =>
        new(step >= TotalSteps || state.StopReason != null, step, TotalSteps, state.BestStep, state.BestMetric, metric, lastEval ?? new Dictionary<string, double>())
        {
            StopReason = state.StopReason,
        };

    IEnumerable<Batch> Batches(int epoch, int start)
    {
        for (int e = epoch; ; e++, start = 0)
            foreach (var b in task.TrainBatches(e, start)) yield return b;
    }

    static void Accumulate(Dictionary<string, double> sums, string key, double v) => sums[key] = sums.GetValueOrDefault(key) + v;

    bool IsBetter(double value, double? best) =>
        best is null || (higherIsBetter ? value > best : value < best);

    IReadOnlyDictionary<string, double> EvaluateNow()
    {
        var model = task.Model;
        model.eval();
        using var _ = no_grad();
        // Evaluation must not disturb the dropout random stream of training, or a resumed run would diverge.
        using var rng = torch.get_rng_state();
        var result = task.Evaluate();
        torch.set_rng_state(rng);
        return result;
    }

    long? savedStep; // the step of the checkpoint this run last saved or resumed from

    /// <summary>The error for a NaN or infinite number at <paramref name="step"/>, naming the checkpoint to go back to.</summary>
    BertSharpException NotFinite(long step, string what, double value, string stopping)
    {
        string v = double.IsNaN(value) ? "NaN" : value > 0 ? "+infinity" : "-infinity";
        string next = LastCheckpoint() is { } last
            ? $"The last good checkpoint is {last}; lower learningRate and resume"
            : "No checkpoint was saved yet; lower learningRate and start again";
        return new BertSharpException($"step {step}: {what} is {v}; {stopping}. {next}") { Parameters = ["learningRate", "resume"] };
    }

    /// <summary>The best model at the run folder's root, replaced as a set of files (crash-safe).</summary>
    void SaveBestModel(long step)
    {
        try { RunFolder.ReplaceFiles(run.Root, task.SaveModel); }
        catch (BertSharpException e) { throw ContinueAfterFix(step, e); }
    }

    void SaveCheckpoint(AdamW optimizer, State s)
    {
        try { WriteCheckpoint(optimizer, s); savedStep = s.Step; }
        catch (BertSharpException e) { throw ContinueAfterFix(s.Step, e); }
    }

    static BertSharpException ContinueAfterFix(long step, BertSharpException e) =>
        new($"step {step}: {e.Message}; fix the cause and continue with resume", e) { Parameters = [.. e.Parameters, "resume"] };

    void WriteCheckpoint(AdamW optimizer, State s)
    {
        RunFolder.ReplaceFolder(run.LastCheckpoint, dir =>
        {
            task.SaveModel(dir);
            using (NewDisposeScope()) optimizer.save_state_dict(Path.Combine(dir, "optimizer.bin")); // its handles would go to the GC
            using var rng = torch.get_rng_state();
            File.WriteAllBytes(Path.Combine(dir, "rng_state.bin"), rng.data<byte>().ToArray());
            var json = new JsonObject
            {
                ["global_step"] = s.Step,
                ["epoch"] = s.Epoch,
                ["next_batch"] = s.NextBatch,
                ["best_metric"] = s.BestMetric,
                ["best_step"] = s.BestStep,
                ["selection_metric"] = metric,
                ["evaluations_without_improvement"] = s.WithoutImprovement,
                ["early_stopping_patience"] = o.EarlyStoppingPatience,
                ["stop_reason"] = s.StopReason,
                ["total_steps"] = TotalSteps,
                ["seed"] = o.Seed,
            };
            File.WriteAllText(Path.Combine(dir, "trainer_state.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
    }

    State LoadCheckpoint(AdamW optimizer)
    {
        var dir = RunFolder.FindCheckpoint(run.LastCheckpoint)
            ?? throw new BertSharpException($"{run.LastCheckpoint}: no complete checkpoint to resume from (start without resume)") { Parameters = ["resume"] };
        var statePath = Path.Combine(dir, "trainer_state.json");
        var j = JsonNode.Parse(File.ReadAllText(statePath))!.AsObject();
        if (j["selection_metric"]?.GetValue<string>() is { } saved && saved != metric)
            throw new BertSharpException($"{statePath}: the run picks its best model by {saved}, not {metric}; resume it with the same metricForBestModel, or start a new run") { Parameters = ["metricForBestModel", "resume"] };
        ModelFolder.LoadWeights(task.Model, Path.Combine(dir, ModelFolder.SafeTensorsFileName));
        optimizer.load_state_dict(Path.Combine(dir, "optimizer.bin"));
        var rngBytes = File.ReadAllBytes(Path.Combine(dir, "rng_state.bin"));
        using (var rng = torch.tensor(rngBytes, dtype: ScalarType.Byte)) torch.set_rng_state(rng);
        var s = new State(
            j["global_step"]!.GetValue<long>(), j["epoch"]!.GetValue<int>(), j["next_batch"]!.GetValue<int>(),
            j["best_metric"]?.GetValue<double>(), j["best_step"]!.GetValue<long>(),
            j["evaluations_without_improvement"]?.GetValue<int>() ?? 0, j["stop_reason"]?.GetValue<string>());
        savedStep = s.Step;
        OnMessage?.Invoke($"resuming from {dir} at step {s.Step} (epoch {s.Epoch}, batch {s.NextBatch})");
        return s;
    }
}
