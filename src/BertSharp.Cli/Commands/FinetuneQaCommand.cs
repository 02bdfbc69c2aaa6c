using System.CommandLine;
using BertSharp.Tasks;
using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Training;

namespace BertSharp.Cli.Commands;

/// <summary>`bert finetune qa`: extractive question answering on SQuAD v1.1/v2.0 files.</summary>
public static class FinetuneQaCommand
{
    public static Command Build(CommandContext ctx)
    {
        var o = new RunOptions();
        var train = o.Add(new Option<string>("--train") { Description = "SQuAD v1.1/v2.0 JSON file to train on", Required = true });
        var dev = o.Add(new Option<string?>("--dev") { Description = "SQuAD JSON file to evaluate on (the best model by F1 is kept)" });
        var split = o.Add(new Option<int?>("--split-articles") { Description = "Use ONE file: train on the first N articles of --train (file order) and evaluate on the rest, instead of --dev" });
        var output = o.Add(new Option<string>("--output") { Description = "Run folder", DefaultValueFactory = _ => "runs/qa" });
        var model = o.Add(new Option<string?>("--model") { Description = "Pre-trained model folder (a new qa_outputs head is added); with --init random, only its config and vocab.txt are used" });
        var init = o.Add(new Option<string>("--init") { Description = "pretrained (weights from --model) or random (same size as --model, or --model-preset with --vocab)", DefaultValueFactory = _ => "pretrained" });
        init.AcceptOnlyFromAmong("pretrained", "random");
        var preset = o.Add(new Option<string?>("--model-preset") { Description = "Model size for --init random without --model: tiny, mini, small, medium, base, large, seed (default seed)" });
        var vocab = o.Add(new Option<string?>("--vocab") { Description = "vocab.txt for --init random without --model" });
        var cased = o.Add(new Option<bool>("--cased") { Description = "With --vocab: keep case and accents (default: lower-case)" });
        var epochs = o.Add(new Option<int>("--epochs") { Description = "Passes over the training windows", DefaultValueFactory = _ => 2 });
        var maxSteps = o.Add(new Option<long?>("--max-steps") { Description = "Optimizer steps to train (overrides --epochs)" });
        var batch = o.Add(new Option<int>("--batch-size") { Description = "Windows per optimizer step (per micro-batch with --gradient-accumulation)", DefaultValueFactory = _ => 32 });
        var accum = o.Add(new Option<int>("--gradient-accumulation") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 });
        var lr = o.Add(new Option<double>("--learning-rate") { Description = "Peak learning rate (AdamW, linear warmup and decay)", DefaultValueFactory = _ => 5e-5 });
        var warmup = o.Add(new Option<double>("--warmup-ratio") { Description = "Fraction of the steps spent warming up", DefaultValueFactory = _ => 0.1 });
        var evalEvery = o.Add(new Option<long>("--eval-every") { Description = "Evaluate and checkpoint every N steps (0: once per epoch)", DefaultValueFactory = _ => 0 });
        var maxEval = o.Add(new Option<int?>("--max-eval-questions") { Description = "Evaluate on only the first N evaluation questions (quick runs)" });
        var s = new QaSettingOptions(opt => { o.Options.Add(opt); return opt; });
        var v2 = o.Add(new Option<bool>("--version-2-with-negative") { Description = "SQuAD 2.0: some questions have no answer (is_impossible); the model learns to point at [CLS]" });
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --output from its last checkpoint (its saved options are used)" };

        var cmd = new Command("qa", "Fine-tune extractive question answering (SQuAD v1.1/v2.0): question + context windows, start/end logits, official EM/F1.\n" +
            "Writes the best model (by F1) to --output with predictions.json, nbest_predictions.json and eval_results.json for it.");
        foreach (var opt in o.Options) cmd.Add(opt);
        cmd.Add(resume);
        cmd.SetAction(r =>
        {
            bool isResume = r.GetValue(resume);
            var outDir = r.GetValue(output)!;
            var run = new RunFolder(outDir);
            var saved = isResume ? RunOptions.LoadSaved(run.ArgsFile) : null;
            var v = o.Resolve(r, saved);
            long seed = r.GetValue(Cli.Seed) ?? v.Get<long?>("--seed") ?? 42;
            if (!isResume && Directory.Exists(run.LastCheckpoint))
                throw new BertSharpException($"{run.Root}: already holds a run; continue it with --resume, or choose another --output");
            var options = new FineTuneOptions
            {
                Train = v.Get(train)!, Dev = v.Get(dev), SplitArticles = v.Get(split), Model = v.Get(model),
                RandomInit = v.Get(init) == "random", ModelPreset = v.Get(preset), Vocab = v.Get(vocab), LowerCase = !v.Get(cased),
                MaxSeqLength = v.Get(s.MaxSeqLength), DocStride = v.Get(s.DocStride), MaxQueryLength = v.Get(s.MaxQueryLength),
                NBestSize = v.Get(s.NBestSize) ?? 20, MaxAnswerLength = v.Get(s.MaxAnswerLength) ?? 30,
                Version2WithNegative = v.Get(v2), NullScoreDiffThreshold = v.Get(s.NullScoreDiffThreshold) ?? 0,
                BatchSize = v.Get(batch), MaxEvalExamples = v.Get(maxEval),
                Precision = r.GetValue(Cli.Precision)!, Device = r.GetValue(Cli.Device)!,
            };
            var args = v.ToDictionary();
            args["--seed"] = seed;
            run.WriteArgs(args);

            var prepared = FineTuning.Prepare(QuestionAnsweringModel.Family, options, seed, m => ctx.Err.WriteLine(m));
            var trainer = new Trainer(prepared.Task, new TrainingOptions
            {
                OutputDir = outDir, LearningRate = v.Get(lr), WarmupRatio = v.Get(warmup), MaxSteps = v.Get(maxSteps),
                Epochs = v.Get(epochs), GradientAccumulation = v.Get(accum), EvalEvery = v.Get(evalEvery), Seed = seed, Resume = isResume,
            })
            { Plots = prepared.Model.Plots };
            TrainingConsole.Run(ctx, trainer, "finetune qa");
            var (finished, bestIsLast) = State(run);
            if (!finished) return 0; // interrupted: the state is saved for --resume

            var final = FineTuning.FinalEvaluation(prepared, run.Root, bestIsLive: bestIsLast);
            var result = (QaScore)final[0].Score;
            ctx.Err.WriteLine($"best model on {prepared.Dev.Set.Examples switch { SquadDataset d => d.Source, _ => prepared.Dev.Name }}: {QuestionAnsweringModel.Describe(result.Scores)}");
            ctx.Err.WriteLine($"run folder: {run.Root} (predictions.json, nbest_predictions.json, eval_results.json; try: bert predict {run.Root} --question \"…\" --context \"…\")");
            return 0;
        });
        return cmd;
    }

    /// <summary>Whether the run's last checkpoint is its final step (not an interruption), and whether that step
    /// gave the best model.</summary>
    static (bool Finished, bool BestIsLast) State(RunFolder run)
    {
        var dir = RunFolder.FindCheckpoint(run.LastCheckpoint);
        if (dir is null || !File.Exists(Path.Combine(run.Root, "model.safetensors"))) return (false, false);
        var state = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "trainer_state.json")))!;
        long step = state["global_step"]!.GetValue<long>();
        return (step >= state["total_steps"]!.GetValue<long>(), state["best_step"]!.GetValue<long>() == step);
    }
}
