using BertSharp.Checkpoints;
using BertSharp.Training;
using Xunit.Abstractions;

namespace BertSharp.Tests.Reliability;

/// <summary>
/// Faults during a real (tiny) pre-training run, in-process: a crash at named points of a checkpoint save
/// (then --resume must reproduce the uninterrupted run's losses exactly), and NaN losses and gradients
/// (the run stops naming the step, and checkpoints/last stays the last good one).
/// </summary>
[Collection(SerialCollection.Name)] // exact loss comparisons: libtorch's generator is process-global
public class TrainerFaultTests(ITestOutputHelper log)
{
    static readonly Lazy<(string Corpus, Dictionary<long, double> Losses)> Straight = new(() =>
    {
        var dir = TestPaths.TempDir("fault-straight");
        var corpus = TinyPretraining.Corpus(dir);
        var output = Path.Combine(dir, "run");
        TinyPretraining.Make(corpus, output, resume: false).Train();
        return (corpus, TinyPretraining.TrainLosses(output));
    });

    // Steps 1-8, a checkpoint every 2 steps: the third save (step 6) is interrupted.
    [Theory]
    [InlineData("written", 3, 4)]      // last.new half written: resume from step 4
    [InlineData("old-moved", 2, 6)]    // last gone, last.new complete: resume from step 6
    [InlineData("new-moved", 3, 6)]    // last.old not yet deleted: resume from step 6
    [InlineData("staged", 2, 2)]       // the second best model (step 4) is staged but not in place: resume from step 2
    public void A_crash_during_a_checkpoint_save_resumes_from_a_complete_checkpoint_and_repeats_the_same_losses(string point, int occurrence, long resumeStep)
    {
        var (corpus, expected) = Straight.Value;
        Assert.Equal(8, expected.Count);
        var output = Path.Combine(TestPaths.TempDir("fault-" + point), "run");

        var crashed = TinyPretraining.Make(corpus, output, resume: false);
        Assert.True(CrashPointTests.CrashAt(point, () => crashed.Train(), occurrence), $"the run never reached {point} #{occurrence}");
        var found = RunFolder.FindCheckpoint(new RunFolder(output).LastCheckpoint);
        Assert.NotNull(found);
        Assert.Equal(resumeStep, TinyPretraining.CheckpointStep(found!));

        var resumed = TinyPretraining.Make(corpus, output, resume: true);
        var messages = new List<string>();
        resumed.OnMessage = messages.Add;
        resumed.Train();
        Assert.Contains(messages, m => m.StartsWith("resuming from") && m.Contains($"at step {resumeStep} "));
        var losses = TinyPretraining.TrainLosses(output);
        Assert.Equal(expected.Keys.Order(), losses.Keys.Order());
        foreach (var (step, loss) in expected) Assert.Equal(loss, losses[step]) /* bit for bit */;

        // The best model at the root is a complete, loadable folder; no staging or half-swapped folders remain.
        var (model, _) = ModelFolder.Load(output);
        model.Dispose();
        Assert.False(Directory.Exists(Path.Combine(output, ".model.new")));
        Assert.False(Directory.Exists(new RunFolder(output).LastCheckpoint + ".new"));
        Assert.False(Directory.Exists(new RunFolder(output).LastCheckpoint + ".old"));
    }

    [Fact]
    public void A_libtorch_failure_stops_naming_the_step_and_the_intact_checkpoint_and_resume_finishes_the_same_run()
    {
        var (corpus, expected) = Straight.Value;
        var output = Path.Combine(TestPaths.TempDir("native-failure"), "run");
        var t = TinyPretraining.Make(corpus, output, resume: false, wrap: task => new FaultyTask(task) { NativeFailureAtStep = 7 });
        var e = Assert.Throws<BertSharpException>(() => t.Train());
        log.WriteLine(e.Message);
        Assert.StartsWith("step 7: libtorch failed: [enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory", e.Message);
        string report = Path.Combine(output, Trainer.FailuresFileName);
        Assert.EndsWith($"the last checkpoint, {new RunFolder(output).LastCheckpoint} (step 6), is intact: resume to continue from it (report: {report})", e.Message);
        Assert.Equal(["resume"], e.Parameters);
        Assert.Contains("DefaultCPUAllocator: not enough memory", File.ReadAllText(report));
        AssertLastGoodCheckpoint(output, 6);
        ResumeAndAssertTheSameLosses(corpus, output, expected);
    }

    // Issue 24: an unexpected exception (exit code 2 in the CLI) mid-run. It keeps its type and stack trace, the run
    // folder keeps them too (a rare failure's console output is easily lost), and resume finishes the same run.
    [Fact]
    public void An_unexpected_exception_in_a_step_keeps_its_type_is_recorded_in_the_run_folder_and_resume_finishes_the_same_run()
    {
        var (corpus, expected) = Straight.Value;
        var output = Path.Combine(TestPaths.TempDir("bug-in-step"), "run");
        var t = TinyPretraining.Make(corpus, output, resume: false, wrap: task => new FaultyTask(task) { BugAtStep = 7 });
        var e = Assert.Throws<InvalidOperationException>(() => t.Train());
        AssertRecordedAndResumable(e, output, corpus, expected, failedStep: 7, checkpointStep: 6, thrownBy: nameof(FaultyTask.Loss));
    }

    // 14 steps of 10 per epoch: the second epoch starts at step 11, right after the checkpoint of step 10.
    static readonly Lazy<Dictionary<long, double>> StraightAcrossAnEpoch = new(() =>
    {
        var output = Path.Combine(TestPaths.TempDir("fault-straight-14"), "run");
        var t = TinyPretraining.Make(Straight.Value.Corpus, output, resume: false, maxSteps: 14);
        Assert.Equal(10, t.StepsPerEpoch);
        t.Train();
        return TinyPretraining.TrainLosses(output);
    });

    [Fact]
    public void An_unexpected_exception_of_the_batch_producer_at_an_epoch_boundary_is_recorded_and_resume_finishes_the_same_run()
    {
        var expected = StraightAcrossAnEpoch.Value;
        var output = Path.Combine(TestPaths.TempDir("bug-in-producer"), "run");
        var t = TinyPretraining.Make(Straight.Value.Corpus, output, resume: false, maxSteps: 14, wrap: task => new FaultyTask(task) { ProducerBugAtEpoch = 1 });
        var e = Assert.Throws<InvalidOperationException>(() => t.Train());
        Assert.Equal("injected: the batch source of epoch 1 failed", e.Message);
        AssertRecordedAndResumable(e, output, Straight.Value.Corpus, expected, failedStep: 11, checkpointStep: 10, thrownBy: nameof(FaultyTask.TrainBatches), maxSteps: 14);
    }

    void AssertRecordedAndResumable(Exception e, string output, string corpus, Dictionary<long, double> expected, long failedStep, long checkpointStep, string thrownBy, long maxSteps = 8)
    {
        string report = Path.Combine(output, Trainer.FailuresFileName);
        string last = new RunFolder(output).LastCheckpoint;
        var note = Assert.IsType<string>(e.Data[Trainer.ResumeNoteKey]);
        log.WriteLine(note);
        Assert.Equal($"the run stopped at step {failedStep}; the last checkpoint, {last} (step {checkpointStep}), is intact: resume to continue from it; the stack trace is also in {report}", note);
        string recorded = File.ReadAllText(report);
        Assert.Contains($"Z step {failedStep}, libtorch threads ", recorded);
        Assert.Contains(e.GetType().FullName + ": " + e.Message, recorded);
        Assert.Contains(thrownBy, recorded);             // the stack trace, down to the method that threw
        AssertLastGoodCheckpoint(output, checkpointStep);
        ResumeAndAssertTheSameLosses(corpus, output, expected, maxSteps);
    }

    /// <summary>Resumes the run in <paramref name="output"/> to its end; its losses must be the uninterrupted run's.</summary>
    static void ResumeAndAssertTheSameLosses(string corpus, string output, Dictionary<long, double> expected, long maxSteps = 8)
    {
        TinyPretraining.Make(corpus, output, resume: true, maxSteps: maxSteps).Train();
        var losses = TinyPretraining.TrainLosses(output);
        Assert.Equal(expected.Keys.Order(), losses.Keys.Order());
        foreach (var (step, loss) in expected) Assert.Equal(loss, losses[step]) /* bit for bit: no more than the steps since the checkpoint lost */;
    }

    [Fact]
    public void A_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint()
    {
        var (corpus, _) = Straight.Value;
        var output = Path.Combine(TestPaths.TempDir("nan-loss"), "run");
        var t = TinyPretraining.Make(corpus, output, resume: false, wrap: task => new FaultyTask(task) { NanLossAtStep = 5 });
        var e = Assert.Throws<BertSharpException>(() => t.Train());
        log.WriteLine(e.Message);
        Assert.Equal($"step 5: the loss is NaN; stopping. The last good checkpoint is {new RunFolder(output).LastCheckpoint} (step 4); lower learningRate and resume", e.Message);
        Assert.Equal(["learningRate", "resume"], e.Parameters);
        AssertLastGoodCheckpoint(output, 4);
    }

    [Fact]
    public void A_run_diverging_with_a_huge_learning_rate_stops_naming_the_step_and_what_to_go_back_to()
    {
        var (corpus, _) = Straight.Value;
        var output = Path.Combine(TestPaths.TempDir("diverge"), "run");
        var t = TinyPretraining.Make(corpus, output, resume: false, maxSteps: 40, evalEvery: 2, learningRate: 1e8);
        var e = Assert.Throws<BertSharpException>(() => t.Train());
        log.WriteLine(e.Message);
        var m = System.Text.RegularExpressions.Regex.Match(e.Message,
            @"^step (\d+): the (loss|gradient norm|validation loss) is (NaN|\+infinity|-infinity); stopping[^.]*\. ");
        Assert.True(m.Success, e.Message);
        var run = new RunFolder(output);
        if (RunFolder.FindCheckpoint(run.LastCheckpoint) is string found)
        {
            Assert.Contains($"The last good checkpoint is {found} (step {TinyPretraining.CheckpointStep(found)}); lower learningRate and resume", e.Message);
            Assert.True(TinyPretraining.AllFinite(Path.Combine(found, ModelFolder.SafeTensorsFileName)));
        }
        else Assert.EndsWith("No checkpoint was saved yet; lower learningRate and start again", e.Message);
    }

    [Fact]
    public void A_nan_gradient_with_a_finite_loss_stops_before_the_update_and_keeps_the_last_good_checkpoint()
    {
        var (corpus, _) = Straight.Value;
        var output = Path.Combine(TestPaths.TempDir("nan-grad"), "run");
        // Step 6 is a checkpoint step: without the check, NaN weights would be saved as checkpoints/last.
        var t = TinyPretraining.Make(corpus, output, resume: false, wrap: task => new FaultyTask(task) { NanGradientAtStep = 6 });
        var e = Assert.Throws<BertSharpException>(() => t.Train());
        log.WriteLine(e.Message);
        Assert.StartsWith("step 6: the gradient norm is NaN; stopping before the update.", e.Message);
        AssertLastGoodCheckpoint(output, 4);
    }

    [Fact]
    public void A_nan_validation_loss_stops_without_saving()
    {
        var (corpus, _) = Straight.Value;
        var output = Path.Combine(TestPaths.TempDir("nan-val"), "run");
        var t = TinyPretraining.Make(corpus, output, resume: false, wrap: task => new FaultyTask(task) { NanValidationAtEvaluation = 3 });
        var e = Assert.Throws<BertSharpException>(() => t.Train());
        log.WriteLine(e.Message);
        Assert.StartsWith("step 6: the validation loss is NaN; stopping without saving.", e.Message);
        AssertLastGoodCheckpoint(output, 4);
    }

    [TmpfsFact]
    public void A_full_disk_during_a_run_is_a_one_line_error_naming_the_path_and_resume_continues_exactly()
    {
        var (corpus, expected) = Straight.Value;
        using var tmpfs = new FileSystemFaults.Tmpfs(64 << 20);
        var output = Path.Combine(tmpfs.Path, "run");
        string? filler = null;
        var t = TinyPretraining.Make(corpus, output, resume: false);
        // After step 2's checkpoint, leave 1 MB free: step 4's model (1.8 MB) and checkpoint (5 MB) cannot fit.
        t.OnStep = p => { if (p.Step == 3) filler = FileSystemFaults.Fill(tmpfs.Path, leave: 1 << 20); };
        var e = Assert.Throws<BertSharpException>(() => t.Train());
        log.WriteLine(e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith("step 4: ", e.Message);
        Assert.Contains(output, e.Message);
        Assert.Contains("No space left on device", e.Message);
        Assert.EndsWith("fix the cause and continue with resume", e.Message);
        Assert.EndsWith("fix the cause and continue with --resume", BertSharp.Cli.ParameterFlags.Message(e));
        AssertLastGoodCheckpoint(output, 2);
        Assert.False(Directory.Exists(new RunFolder(output).LastCheckpoint + ".new"));
        Assert.False(Directory.Exists(Path.Combine(output, ".model.new")));

        File.Delete(filler!);
        TinyPretraining.Make(corpus, output, resume: true).Train();
        var losses = TinyPretraining.TrainLosses(output);
        foreach (var (step, loss) in expected) Assert.Equal(loss, losses[step]) /* bit for bit */;
    }

    [ChattrFact]
    public void Permission_denied_on_the_checkpoints_folder_is_a_one_line_error_and_resume_continues_exactly()
    {
        var (corpus, expected) = Straight.Value;
        var output = Path.Combine(TestPaths.TempDir("denied"), "run");
        var checkpoints = new RunFolder(output).Checkpoints;
        var t = TinyPretraining.Make(corpus, output, resume: false);
        // Root ignores file modes; the immutable attribute refuses even root (EPERM, "access denied" in .NET).
        t.OnStep = p => { if (p.Step == 3) FileSystemFaults.Run("chattr", "+i", checkpoints); };
        try
        {
            var e = Assert.Throws<BertSharpException>(() => t.Train());
            log.WriteLine(e.Message);
        log.WriteLine(e.Message);
            Assert.DoesNotContain('\n', e.Message);
            Assert.StartsWith("step 4: ", e.Message);
            Assert.Contains(checkpoints, e.Message);
            Assert.Contains("denied", e.Message);
            AssertLastGoodCheckpoint(output, 2);
        }
        finally
        {
            FileSystemFaults.Run("chattr", "-i", checkpoints);
        }
        Assert.False(Directory.Exists(new RunFolder(output).LastCheckpoint + ".new"));
        TinyPretraining.Make(corpus, output, resume: true).Train();
        var losses = TinyPretraining.TrainLosses(output);
        foreach (var (step, loss) in expected) Assert.Equal(loss, losses[step]) /* bit for bit */;
    }

    static void AssertLastGoodCheckpoint(string output, long step)
    {
        var run = new RunFolder(output);
        Assert.Equal(run.LastCheckpoint, RunFolder.FindCheckpoint(run.LastCheckpoint));
        Assert.Equal(step, TinyPretraining.CheckpointStep(run.LastCheckpoint));
        Assert.True(TinyPretraining.AllFinite(Path.Combine(run.LastCheckpoint, ModelFolder.SafeTensorsFileName)));
        Assert.True(TinyPretraining.AllFinite(Path.Combine(output, ModelFolder.SafeTensorsFileName)));
    }
}
