using System.CommandLine;
using System.Runtime.InteropServices;
using BertSharp.Data;
using BertSharp.Pretraining;
using BertSharp.Reporting;
using BertSharp.Training;

namespace BertSharp.Cli.Commands;

public static class PretrainCommand
{
    public static Command Build(CommandContext ctx)
    {
        var o = new RunOptions();
        var corpus = o.Add(new Option<string>("--corpus") { Description = "wikitext-2 (fetched on first use) or a corpus file: .tokens (WikiText), .txt (documents separated by blank lines), .jsonl ({\"text\": …}). " + TextLineReader.InputRule, DefaultValueFactory = _ => "wikitext-2" });
        var validation = o.Add(new Option<string?>("--validation-corpus") { Description = "Validation corpus file (default: WikiText-2's valid split, or the last 5% of a file corpus's documents)" });
        var dataDir = o.Add(new Option<string?>("--data-dir") { Description = $"Dataset folder (default: ${DatasetCache.DataDirEnvVar}, else ~/.cache/bertsharp/datasets)" });
        var output = o.Add(new Option<string>("--output") { Description = "Run folder", DefaultValueFactory = _ => "runs/pretrain" });
        var preset = o.Add(new Option<string>("--model-preset") { Description = "tiny, mini, small, medium, base, large, or seed (2 layers, hidden 128, max length 64: the d2l.ai setting)", DefaultValueFactory = _ => "seed" });
        var vocab = o.Add(new Option<string?>("--vocab") { Description = "An existing vocab.txt (default: learn a WordPiece vocabulary from the corpus)" });
        var vocabSize = o.Add(new Option<int>("--vocab-size") { Description = "Size of the learned vocabulary", DefaultValueFactory = _ => 20256 });
        var cased = o.Add(new Option<bool>("--cased") { Description = "Keep case and accents (default: lower-case and strip accents)" });
        var maxSeq = o.Add(new Option<int?>("--max-seq-length") { Description = "Tokens per example including [CLS]/[SEP] (default: the preset's max positions, at most 128)" });
        var batch = o.Add(new Option<int>("--batch-size") { Description = "Sequences per optimizer step (per micro-batch with --gradient-accumulation)", DefaultValueFactory = _ => 512 });
        var accum = o.Add(new Option<int>("--gradient-accumulation") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 });
        var maxSteps = o.Add(new Option<long?>("--max-steps") { Description = "Optimizer steps to train (default: 500, about 6.5 epochs of WikiText-2 at batch 512, unless --epochs is given)" });
        var epochs = o.Add(new Option<int?>("--epochs") { Description = "Passes over the training examples (instead of --max-steps)" });
        var lr = o.Add(new Option<double>("--learning-rate") { Description = "Peak learning rate (AdamW)", DefaultValueFactory = _ => 1e-3 });
        var warmup = o.Add(new Option<long?>("--warmup-steps") { Description = "Linear warmup steps (default: 10% of the steps)" });
        var evalEvery = o.Add(new Option<long>("--eval-every") { Description = "Evaluate on the validation split and checkpoint every N steps", DefaultValueFactory = _ => 25 });
        var maxPred = o.Add(new Option<int>("--max-predictions-per-seq") { Description = "At most this many masked tokens per sequence", DefaultValueFactory = _ => 10 });
        var wwm = o.Add(new Option<bool>("--whole-word-mask") { Description = "Mask all WordPieces of a word together" });
        var evalExamples = o.Add(new Option<int>("--max-eval-examples") { Description = "Validation examples used at each evaluation (a fixed random subset)", DefaultValueFactory = _ => 4096 });
        var staticMask = o.Add(new Option<bool>("--static-mask") { Description = "Use the same masks every epoch (default: fresh masks each epoch)" });
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --output from its last checkpoint (its saved options are used)" };

        var cmd = new Command("pretrain", "Pre-train a BERT (masked LM + next sentence prediction) on a corpus with Google BERT's recipe");
        foreach (var opt in o.Options) cmd.Add(opt);
        cmd.Add(resume);
        cmd.SetAction(r =>
        {
            bool isResume = r.GetValue(resume);
            var outDir = r.GetValue(output)!;
            var saved = isResume ? RunOptions.LoadSaved(new RunFolder(outDir).ArgsFile) : null;
            var v = o.Resolve(r, saved);
            long seed = r.GetValue(Cli.Seed) ?? v.Get<long?>("--seed") ?? 42;
            var runOptions = new PretrainingRunOptions
            {
                Corpus = v.Get(corpus)!, ValidationCorpus = v.Get(validation), DataDir = v.Get(dataDir),
                ModelPreset = v.Get(preset)!, Vocab = v.Get(vocab), VocabSize = v.Get(vocabSize), LowerCase = !v.Get(cased),
                MaxSeqLength = v.Get(maxSeq), BatchSize = v.Get(batch), MaxPredictionsPerSeq = v.Get(maxPred),
                WholeWordMask = v.Get(wwm), StaticMask = v.Get(staticMask), MaxValidationExamples = v.Get(evalExamples),
            };
            var run = new RunFolder(outDir);
            // Held from here to the end: a second run on this folder is refused before it writes anything.
            using var runLock = run.Lock();
            if (!isResume && (Directory.Exists(run.LastCheckpoint) || RunFolder.FindCheckpoint(run.LastCheckpoint) != null))
                throw new BertSharpException($"{run.Root}: already holds a run; continue it with --resume, or choose another --output");
            // A resumed run keeps the precision it was started with unless --precision is given again.
            var compute = r.GetResult(Cli.Precision) is not { Implicit: false } && v.Get<string>("--precision") is string savedPrecision
                ? Cli.Compute(savedPrecision) : Cli.Compute(r);
            runOptions = runOptions with { Precision = compute.Precision, Device = r.GetValue(Cli.Device)! };
            // The thread count changes the last bits of CPU matmuls: a resumed run keeps the original one.
            int? threads = r.GetValue(Cli.Threads) ?? v.Get<int?>("--threads");
            if (threads is int t && r.GetValue(Cli.Threads) is null) TorchRuntime.Configure(threads: t);
            var args = v.ToDictionary();
            args["--threads"] = threads;
            args["--seed"] = seed;
            args["--precision"] = compute.Precision;
            run.WriteArgs(args);

            var prepared = PretrainingRun.Prepare(runOptions, outDir, seed, isResume, m => ctx.Err.WriteLine(m));
            ctx.Err.WriteLine($"model: {runOptions.ModelPreset} preset, {prepared.Config.NumHiddenLayers} layers, hidden {prepared.Config.HiddenSize}, vocab {prepared.Config.VocabSize}; validation [UNK] rate {prepared.ValidationUnkRate:P2}");
            var trainer = new Trainer(prepared.Task, new TrainingOptions
            {
                OutputDir = outDir, LearningRate = v.Get(lr), WarmupSteps = v.Get(warmup), MaxSteps = v.Get(maxSteps) ?? (v.Get(epochs) is null ? 500 : null),
                Epochs = v.Get(epochs) ?? 1, GradientAccumulation = v.Get(accum), EvalEvery = v.Get(evalEvery), Seed = seed, Resume = isResume,
            })
            { Plots = PlotSpec.Pretraining };
            var final = TrainingConsole.Run(ctx, trainer, "pretrain");
            if (final.Count > 0)
                ctx.Err.WriteLine($"MLM accuracy {final.GetValueOrDefault("mlm_accuracy"):P2} (always predicting the most frequent token: {prepared.MajorityBaselineAccuracy:P2}), perplexity {final.GetValueOrDefault("perplexity"):F1}, NSP accuracy {final.GetValueOrDefault("nsp_accuracy"):P2}");
            ctx.Err.WriteLine($"run folder: {run.Root} (best model at its root; try: bert fill-mask {run.Root} \"the [MASK] of the city\")");
            return 0;
        });
        return cmd;
    }
}

/// <summary>Runs a Trainer with a progress bar on stderr, and Ctrl+C / SIGTERM saving the state before exit.</summary>
public static class TrainingConsole
{
    public static IReadOnlyDictionary<string, double> Run(CommandContext ctx, Trainer trainer, string label)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        try
        {
            using var progress = new ConsoleProgress(trainer.TotalSteps, label: label, output: ctx.Err);
            trainer.OnStart = progress.Restart;
            trainer.OnStep = p => progress.Update(p.Step, p.Loss, p.SequencesPerSecond);
            trainer.OnMessage = progress.WriteLine;
            return trainer.Train(cts.Token);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
