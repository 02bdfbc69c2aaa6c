using System.CommandLine;
using BertSharp.Tasks;
using BertSharp.Tasks.QuestionAnswering;

namespace BertSharp.Cli.Commands;

/// <summary>`bert finetune qa`: extractive question answering on SQuAD v1.1/v2.0 files.</summary>
public static class FinetuneQaCommand
{
    public static Command Build(CommandContext ctx)
    {
        var d = new FineTuneOptions { Task = QuestionAnsweringModel.Task };
        var o = new List<Option>();
        Option<T> Add<T>(Option<T> option) { o.Add(option); return option; }
        // Not Required at parse time: with --resume it comes from the run's args.json.
        var train = Add(new Option<string?>("--train") { Description = "SQuAD v1.1/v2.0 JSON file to train on (required; with --resume, taken from the run)" });
        var dev = Add(new Option<string?>("--dev") { Description = "SQuAD JSON file to evaluate on (the best model by F1 is kept)" });
        var split = Add(new Option<int?>("--split-articles") { Description = "Use ONE file: train on the first N articles of --train (file order) and evaluate on the rest, instead of --dev" });
        var output = Add(new Option<string>("--output") { Description = "Run folder", DefaultValueFactory = _ => d.OutputFolder });
        var model = Add(new Option<string?>("--model") { Description = "Pre-trained model folder or Hub id (org/name[@revision]; a new qa_outputs head is added); with --init random, only its config and vocab.txt are used" });
        var init = Add(new Option<string>("--init") { Description = "pretrained (weights from --model) or random (same size as --model, or --model-preset with --vocab)", DefaultValueFactory = _ => "pretrained" });
        init.AcceptOnlyFromAmong("pretrained", "random");
        var preset = Add(new Option<string?>("--model-preset") { Description = "Model size for --init random without --model: tiny, mini, small, medium, base, large, seed (default seed)" });
        var vocab = Add(new Option<string?>("--vocab") { Description = "vocab.txt for --init random without --model" });
        var cased = Add(new Option<bool>("--cased") { Description = "With --vocab: keep case and accents (default: lower-case)" });
        var epochs = Add(new Option<int?>("--epochs") { Description = "Passes over the training windows (default 2)" });
        var maxSteps = Add(new Option<long?>("--max-steps") { Description = "Optimizer steps to train (overrides --epochs)" });
        var batch = Add(new Option<int>("--batch-size") { Description = "Windows per optimizer step (per micro-batch with --gradient-accumulation)", DefaultValueFactory = _ => d.BatchSize });
        var accum = Add(new Option<int>("--gradient-accumulation") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => d.GradientAccumulation });
        var lr = Add(new Option<double?>("--learning-rate") { Description = "Peak learning rate (AdamW, linear warmup and decay; default 5e-5)" });
        var warmup = Add(new Option<double>("--warmup-ratio") { Description = "Fraction of the steps spent warming up", DefaultValueFactory = _ => d.WarmupRatio });
        var evalEvery = Add(new Option<long>("--eval-every") { Description = "Evaluate and checkpoint every N steps (0: once per epoch)", DefaultValueFactory = _ => d.EvalEvery });
        var metric = Add(new Option<string?>("--metric-for-best-model") { Description = EarlyStoppingHelp.Metric });
        var patience = Add(new Option<int?>("--early-stopping-patience") { Description = EarlyStoppingHelp.Patience });
        var maxEval = Add(new Option<int?>("--max-eval-questions") { Description = "Evaluate on only the first N evaluation questions (quick runs)" });
        var s = new QaSettingOptions(opt => { o.Add(opt); return opt; });
        var v2 = Add(new Option<bool>("--version-2-with-negative") { Description = "SQuAD 2.0: some questions have no answer (is_impossible); the model learns to point at [CLS]" });
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --output from its last checkpoint (its saved options are used)" };

        var cmd = new Command("qa", "Fine-tune extractive question answering (SQuAD v1.1/v2.0)").WithDetails(
            "Question + context windows, start/end logits, official EM/F1. Writes the best model (by F1) to --output with predictions.json, " +
            "nbest_predictions.json and eval_results.json for it. --resume continues an interrupted run.");
        foreach (var opt in o) cmd.Add(opt);
        cmd.Add(resume);
        var json = new Option<bool>("--json") { Description = "Write the final metrics to stdout as JSON" };
        cmd.Add(json);
        cmd.SetAction(r =>
        {
            var options = d with
            {
                Output = r.GetValue(output), Resume = r.GetValue(resume),
                Train = r.GetValue(train), Dev = r.GetValue(dev), SplitArticles = r.GetValue(split), MaxEvalExamples = r.GetValue(maxEval),
                Model = ModelArgument.Pin(ctx, r.GetValue(model)), RandomInit = r.GetValue(init) == "random", ModelPreset = r.GetValue(preset), Vocab = r.GetValue(vocab), LowerCase = !r.GetValue(cased),
                MaxSeqLength = r.GetValue(s.MaxSeqLength), DocStride = r.GetValue(s.DocStride), MaxQueryLength = r.GetValue(s.MaxQueryLength),
                NBestSize = r.GetValue(s.NBestSize) ?? d.NBestSize, MaxAnswerLength = r.GetValue(s.MaxAnswerLength) ?? d.MaxAnswerLength,
                Version2WithNegative = r.GetValue(v2), NullScoreDiffThreshold = r.GetValue(s.NullScoreDiffThreshold) ?? d.NullScoreDiffThreshold,
                LearningRate = r.GetValue(lr), Epochs = r.GetValue(epochs), MaxSteps = r.GetValue(maxSteps), BatchSize = r.GetValue(batch),
                GradientAccumulation = r.GetValue(accum), WarmupRatio = r.GetValue(warmup), EvalEvery = r.GetValue(evalEvery),
                MetricForBestModel = r.GetValue(metric), EarlyStoppingPatience = r.GetValue(patience),
                Seed = r.GetValue(Cli.Seed), Threads = r.GetValue(Cli.Threads), Precision = Cli.PrecisionOf(r), Device = r.GetValue(Cli.Device)!,
            };
            var result = TrainingConsole.Run(ctx, "finetune qa", (events, cancel) => FineTuneRun.Run(options, events, cancel));
            if (!result.Completed)
            {
                ctx.Err.WriteLine(TrainingConsole.NotFinished(result.RunFolder, options.OutputFolder));
                return 0;
            }
            if (result.Training.StopReason is { } reason) ctx.Err.WriteLine($"stopped early at step {result.Training.Step} of {result.Training.TotalSteps}: {reason}");
            ctx.Err.Write($"best model on {result.Final[0].Score.Report}");
            ctx.Err.WriteLine($"run folder: {result.RunFolder} (predictions.json, nbest_predictions.json, eval_results.json; try: bert predict {result.RunFolder} --question \"…\" --context \"…\")");
            if (r.GetValue(json)) FinetuneCommand.WriteFinalJson(ctx, "qa", result);
            return 0;
        });
        return cmd;
    }
}
