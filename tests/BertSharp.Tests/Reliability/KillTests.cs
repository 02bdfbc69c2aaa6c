using System.Diagnostics;
using System.Text.RegularExpressions;
using BertSharp.Checkpoints;
using BertSharp.Training;
using Xunit.Abstractions;

namespace BertSharp.Tests.Reliability;

/// <summary>
/// The real thing: `bert pretrain` in its own process, killed with SIGKILL while it writes checkpoints (a
/// checkpoint after every step), several times; each `--resume` must start from a complete checkpoint, and the
/// finished run must have logged exactly the losses of an uninterrupted run. Also: a second process on the
/// same run folder is refused while the first holds it, and a killed holder never blocks --resume.
/// </summary>
public class KillTests(ITestOutputHelper log)
{
    /// <summary>Kills per test run: 4 by default; BERTSHARP_KILLS=N for a longer stress run (docs/RELIABILITY.md).</summary>
    static readonly int Kills = int.TryParse(Environment.GetEnvironmentVariable("BERTSHARP_KILLS"), out int k) && k > 0 ? k : 4;
    static readonly int Steps = Math.Max(16, 3 * Kills + 4);

    static readonly string[] RunArgs =
    {
        "--model-preset", "seed", "--vocab-size", "120", "--max-seq-length", "32", "--batch-size", "8",
        "--max-steps", Steps.ToString(), "--eval-every", "1", "--max-eval-examples", "16", "--seed", "5", "--threads", "1",
    };

    sealed class Bert : IDisposable
    {
        readonly List<string> _err = new();
        public Process Process { get; }

        public Bert(params string[] args)
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "bert.dll");
            var host = Environment.ProcessPath is string p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
            var psi = new ProcessStartInfo(host) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            psi.ArgumentList.Add(dll);
            foreach (var a in args) psi.ArgumentList.Add(a);
            Process = Process.Start(psi)!;
            Process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_err) _err.Add(e.Data); };
            Process.OutputDataReceived += (_, _) => { };
            Process.BeginErrorReadLine();
            Process.BeginOutputReadLine();
        }

        public string Stderr { get { lock (_err) return string.Join("\n", _err); } }

        public int Wait(int seconds = 300)
        {
            if (!Process.WaitForExit(seconds * 1000)) { Process.Kill(true); throw new TimeoutException("bert did not finish"); }
            Process.WaitForExit(); // drains the output
            return Process.ExitCode;
        }

        public void Dispose()
        {
            if (!Process.HasExited) Process.Kill(true);
            Process.Dispose();
        }
    }

    static string[] Pretrain(string corpus, string output, bool resume) =>
        new[] { "pretrain", "--corpus", corpus, "--output", output }.Concat(resume ? new[] { "--resume", "--threads", "1" } : RunArgs).ToArray(); // --threads is not saved with the run

    static bool Until(Func<bool> condition, Process p, int timeoutMs = 120_000)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (p.HasExited || sw.ElapsedMilliseconds > timeoutMs) return false;
            Thread.Sleep(1);
        }
        return true;
    }

    /// <summary>What a kill left behind: the checkpoint folders present (+ = complete) and the staging folder.</summary>
    static string Describe(string output)
    {
        var last = new RunFolder(output).LastCheckpoint;
        string F(string d) => Directory.Exists(d) ? Path.GetFileName(d) + (File.Exists(Path.Combine(d, ".complete")) ? "+" : "") : "";
        var parts = new[] { F(last), F(last + ".new"), F(last + ".old"), Directory.Exists(Path.Combine(output, ".model.new")) ? ".model.new" : "" };
        return string.Join(" ", parts.Where(p => p.Length > 0));
    }

    /// <summary>The step of the complete checkpoint at <paramref name="last"/>; 0 while there is none (or it is
    /// being swapped by the other process).</summary>
    static long StepOrZero(string last)
    {
        try { return File.Exists(Path.Combine(last, ".complete")) ? TinyPretraining.CheckpointStep(last) : 0; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException) { return 0; }
    }

    [UnixFact]
    public void Sigkill_during_checkpoint_writes_then_resume_repeats_the_uninterrupted_losses_and_a_second_run_is_refused()
    {
        var dir = TestPaths.TempDir("kill");
        var corpus = TinyPretraining.Corpus(dir);

        var straightDir = Path.Combine(dir, "straight");
        using (var straight = new Bert(Pretrain(corpus, straightDir, resume: false)))
            Assert.True(straight.Wait() == 0, straight.Stderr);
        var expected = TinyPretraining.TrainLosses(straightDir);
        Assert.Equal(Steps, expected.Count);

        var output = Path.Combine(dir, "killed");
        var last = new RunFolder(output).LastCheckpoint;
        var rng = new Random(11 + Kills);
        var resumedAt = new List<long>();
        for (int kill = 0; kill < Kills; kill++)
        {
            long before = kill == 0 ? 0 : TinyPretraining.CheckpointStep(RunFolder.FindCheckpoint(last)!);
            using var run = new Bert(Pretrain(corpus, output, resume: kill > 0));
            // Wait for this process to complete a checkpoint of its own, then for its next save to start.
            Assert.True(Until(() => StepOrZero(last) > before, run.Process), run.Stderr);
            if (kill == 0)
            {
                // A second run on the same folder while the first holds it (paused, so it cannot finish meanwhile).
                FileSystemFaults.Run("kill", "-STOP", run.Process.Id.ToString());
                using (var second = new Bert(Pretrain(corpus, output, resume: false)))
                {
                    Assert.Equal(1, second.Wait());
                    Assert.Matches($"^error: {Regex.Escape(output)}: the run folder is in use by another run \\(pid {run.Process.Id} on .*\\); wait for it to end, or choose another --output$", second.Stderr.Trim());
                    log.WriteLine($"second run refused: {second.Stderr.Trim()}");
                }
                FileSystemFaults.Run("kill", "-CONT", run.Process.Id.ToString());
            }
            string watched = rng.Next(4) == 0 ? Path.Combine(output, ".model.new") : last + ".new";
            Assert.True(Until(() => Directory.Exists(watched), run.Process), $"no save seen before the run ended: {run.Stderr}");
            // Even kills land early in the save, odd ones anywhere from the save into the next step.
            int delayMs = kill % 2 == 0 ? rng.Next(0, 10) : rng.Next(0, 150);
            if (delayMs > 0) Thread.Sleep(delayMs);
            run.Process.Kill(entireProcessTree: true); // SIGKILL on Unix: nothing runs after it
            run.Process.WaitForExit();
            var found = RunFolder.FindCheckpoint(last);
            Assert.NotNull(found);
            log.WriteLine($"kill {kill + 1}: after {Path.GetFileName(watched)} appeared + {delayMs} ms: left [{Describe(output)}], resume from {Path.GetFileName(found)} (step {TinyPretraining.CheckpointStep(found!)})");
        }

        using (var final = new Bert(Pretrain(corpus, output, resume: true)))
        {
            Assert.True(final.Wait() == 0, final.Stderr);
            var m = Regex.Match(final.Stderr, @"resuming from \S+ at step (\d+)");
            Assert.True(m.Success, final.Stderr);
            log.WriteLine($"final resume from step {m.Groups[1].Value}; ran to step {Steps}");
        }
        var losses = TinyPretraining.TrainLosses(output);
        Assert.Equal(expected.Keys.Order(), losses.Keys.Order());
        foreach (var (step, loss) in expected) Assert.Equal(loss, losses[step]) /* bit for bit */;
        Assert.Equal("last+", Describe(output));
        var (model, _) = ModelFolder.Load(output);
        model.Dispose();
    }
}
