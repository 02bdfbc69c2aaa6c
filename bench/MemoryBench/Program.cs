// Memory flatness and progress-output cost of a long pre-training run (docs/RELIABILITY.md, item 6).
//
// Trains the `seed` preset on WikiText-2 for --steps steps in-process, through the same PretrainingRun + Trainer
// code path as `bert pretrain` (metrics, TensorBoard, plots and checkpoints included), and:
//  - every 200 steps samples the process's resident memory (VmRSS), its peak (VmHWM) and the managed heap, then
//    VmRSS again "at rest" (after a full GC and malloc_trim, so that GC and trim timing do not move the sample),
//    split into anonymous and file-backed pages, glibc's heap (mallinfo2) and the GC's committed bytes;
//  - alternates blocks of --block steps with the progress bar on (redrawn 4x per second, as on a terminal) and
//    off, timing each step, so both see the same machine load; steps right after an evaluation are left out.
//
// dotnet run -c Release --project bench/MemoryBench -- [--steps 10000] [--batch-size 16] [--threads 1]
//     [--block 250] [--eval-every 1000] [--sample-every 200] [--output DIR] [--data-dir DIR] [--vocab vocab.txt]
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using BertSharp;
using BertSharp.Runtime;
using BertSharp.Pretraining;
using BertSharp.Reporting;
using BertSharp.Training;

ProcessTuning.Apply();   // as the `bert` command does, before anything touches libtorch
var a = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) a[args[i]] = args[i + 1];
if (args.Contains("--help")) { Console.WriteLine("see the comment at the top of bench/MemoryBench/Program.cs"); return 0; }
string Arg(string name, string dflt) => a.TryGetValue(name, out var v) ? v : dflt;
long steps = long.Parse(Arg("--steps", "10000"));
int batch = int.Parse(Arg("--batch-size", "16"));
int threads = int.Parse(Arg("--threads", "1"));
int block = int.Parse(Arg("--block", "250"));
long evalEvery = long.Parse(Arg("--eval-every", "1000"));
string output = Arg("--output", Path.Combine(Path.GetTempPath(), "bertsharp-memory-bench"));
string? dataDir = a.GetValueOrDefault("--data-dir");
string? vocab = a.GetValueOrDefault("--vocab");
const long seed = 1;

if (Directory.Exists(output)) Directory.Delete(output, true);
TorchRuntime.Configure("cpu", threads, seed);
var sw = Stopwatch.StartNew();
var prepared = PretrainingRun.Prepare(new PretrainingRunOptions
{
    Corpus = "wikitext-2", DataDir = dataDir, Vocab = vocab, ModelPreset = "seed", BatchSize = batch, MaxValidationExamples = 256,
}, output, seed, resume: false, log: m => Console.Error.WriteLine(m));
Console.Error.WriteLine($"prepared in {sw.Elapsed.TotalSeconds:F0} s: {prepared.TrainExamples} train examples, vocab {prepared.Config.VocabSize}");
var trainer = new Trainer(prepared.Task, new TrainingOptions
{
    OutputDir = output, LearningRate = 1e-3, MaxSteps = steps, EvalEvery = evalEvery, Seed = seed,
});

static long StatusKb(string field)
{
    var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field + ":"));
    return line is null ? -1 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}

// Where resident memory is, at rest: anonymous vs file-backed pages (/proc/self/status), glibc's heap (mallinfo2:
// bytes in use and free in its arenas, bytes in its own mmaps), the .NET GC's committed bytes and MKL's buffers (part
// of glibc's bytes in use).
static string Breakdown()
{
    var m = MallInfo2();
    var gc = GC.GetGCMemoryInfo();
    return string.Create(CultureInfo.InvariantCulture,
        $"anon {StatusKb("RssAnon") / 1024.0:F0} file {StatusKb("RssFile") / 1024.0:F0} MiB; glibc in use {m.uordblks / 1048576.0:F0} free {m.fordblks / 1048576.0:F0} mmapped {m.hblkhd / 1048576.0:F0} MiB ({m.hblks} maps); GC committed {gc.TotalCommittedBytes / 1048576.0:F0} MiB; MKL buffers {Mkl.BufferBytes() / 1048576.0:F1} MiB");
}

var samples = new List<(long Step, double RssMiB, double HwmMiB, double ManagedMiB, double Seconds, long LiveTensors, double RestMiB)>();
int sampleEvery = int.Parse(Arg("--sample-every", "200"));
var stepTimes = new List<(long Step, bool Progress, double Ms)>();
var progress = new ConsoleProgress(steps, label: "bench", output: Console.Error, interactive: true);
bool progressOn = false;
var clock = Stopwatch.StartNew();
var total = Stopwatch.StartNew();
trainer.OnStep = p =>
{
    double ms = clock.Elapsed.TotalMilliseconds;
    clock.Restart();
    bool afterEval = (p.Step - 1) % evalEvery == 0 && p.Step > 1;
    if (p.Step > block && !afterEval) stepTimes.Add((p.Step, progressOn, ms)); // the first block warms up
    if (progressOn) progress.Update(p.Step, p.Loss, p.SequencesPerSecond);
    if (p.Step % block == 0) progressOn = !progressOn;
    if (p.Step % sampleEvery == 0)
    {
        double rss = StatusKb("VmRSS") / 1024.0, hwm = StatusKb("VmHWM") / 1024.0, managed = GC.GetTotalMemory(false) / 1048576.0;
        long live = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;   // before the collection below
        // RSS at rest: after a full collection (finalizers free unreferenced tensors) and a malloc_trim, so that the
        // sample does not depend on where the GC and the trainer's own trims happen to be (±10 % on raw samples).
        var restClock = Stopwatch.StartNew();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        NativeHeap.Trim();
        double rest = StatusKb("VmRSS") / 1024.0;
        var s = (p.Step, rss, hwm, managed, total.Elapsed.TotalSeconds, live, rest);
        samples.Add(s);
        clock.Restart();   // the collection is not the next step's time
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"\nstep {s.Item1}: RSS {s.Item2:F0} MiB (at rest {s.Item7:F0} MiB: {Breakdown()}), peak {s.Item3:F0} MiB, managed {s.Item4:F0} MiB, live tensors {s.Item6}, {s.Item5:F0} s"));
    }
};
trainer.OnMessage = m => Console.Error.WriteLine("\n" + m);
trainer.Train();
progress.Dispose();

var inv = CultureInfo.InvariantCulture;
File.WriteAllLines(Path.Combine(output, "memory.csv"),
    new[] { "step,rss_mib,rss_at_rest_mib,peak_rss_mib,managed_mib,live_tensors,seconds" }.Concat(samples.Select(s => string.Create(inv, $"{s.Step},{s.RssMiB:F1},{s.RestMiB:F1},{s.HwmMiB:F1},{s.ManagedMiB:F1},{s.LiveTensors},{s.Seconds:F1}"))));
Console.WriteLine($"seed preset, batch {batch}, {threads} thread(s), {steps} steps in {total.Elapsed.TotalMinutes:F1} min (evaluation + checkpoint every {evalEvery})");
Console.WriteLine("| step | RSS (MiB) | RSS at rest (MiB) | peak RSS (MiB) | managed heap (MiB) | live tensors |");
Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
foreach (var s in samples.Where(s => s.Step == 200 || s.Step % 1000 == 0 || s.Step == steps))
    Console.WriteLine(string.Create(inv, $"| {s.Step} | {s.RssMiB:F0} | {s.RestMiB:F0} | {s.HwmMiB:F0} | {s.ManagedMiB:F0} | {s.LiveTensors} |"));
var at200 = samples.FirstOrDefault(s => s.Step == 200);
var atEnd = samples.LastOrDefault();
if (at200.Step == 200 && atEnd.Step > 200)
    Console.WriteLine(string.Create(inv, $"step {atEnd.Step} vs step 200: RSS {100 * (atEnd.RssMiB / at200.RssMiB - 1):+0.0;-0.0} %, at rest {100 * (atEnd.RestMiB / at200.RestMiB - 1):+0.0;-0.0} %"));
var late = samples.Where(s => s.Step >= Math.Min(2000, steps / 2)).ToList();
if (late.Count >= 2)
{
    // Least-squares slope of RSS against step over the second part of the run.
    double mx = late.Average(s => (double)s.Step), my = late.Average(s => s.RssMiB);
    double slope = late.Sum(s => (s.Step - mx) * (s.RssMiB - my)) / late.Sum(s => (s.Step - mx) * (s.Step - mx));
    Console.WriteLine(string.Create(inv, $"RSS trend from step {late[0].Step}: {slope * 1000:+0.00;-0.00} MiB per 1,000 steps (min {late.Min(s => s.RssMiB):F0}, max {late.Max(s => s.RssMiB):F0} MiB)"));
}
foreach (var on in new[] { false, true })
{
    var t = stepTimes.Where(x => x.Progress == on).Select(x => x.Ms).Order().ToList();
    if (t.Count == 0) continue;
    Console.WriteLine(string.Create(inv, $"progress {(on ? "on " : "off")}: {t.Count} steps, mean {t.Average():F1} ms/step ({1000 / t.Average():F1} steps/s), median {t[t.Count / 2]:F1} ms"));
}
return 0;

[DllImport("libc", EntryPoint = "mallinfo2")]
static extern MallInfo MallInfo2();

/// <summary>glibc's struct mallinfo2 (glibc 2.33 and later).</summary>
[StructLayout(LayoutKind.Sequential)]
struct MallInfo
{
    public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
}
