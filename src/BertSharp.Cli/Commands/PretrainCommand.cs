using System.CommandLine;
using BertSharp.Data;
using BertSharp.Pretraining;

namespace BertSharp.Cli.Commands;

public static class PretrainCommand
{
    public static Command Build(CommandContext ctx)
    {
        var o = new List<Option>();
        Option<T> Add<T>(Option<T> option) { o.Add(option); return option; }
        var d = new PretrainingRunOptions();
        var corpus = Add(new Option<string>("--corpus") { Description = "wikitext-2 (fetched on first use) or a corpus file: .tokens (WikiText), .txt (documents separated by blank lines), .jsonl ({\"text\": …}). " + TextLineReader.InputRule, DefaultValueFactory = _ => d.Corpus });
        var validation = Add(new Option<string?>("--validation-corpus") { Description = "Validation corpus file (default: WikiText-2's valid split, or the last 5% of a file corpus's documents)" });
        var dataDir = Add(new Option<string?>("--data-dir") { Description = $"Dataset folder (default: ${DatasetCache.DataDirEnvVar}, else ~/.cache/bertsharp/datasets)" });
        var output = Add(new Option<string>("--output") { Description = "Run folder", DefaultValueFactory = _ => d.Output });
        var model = Add(new Option<string?>("--model") { Description = "Continue pre-training this model on the corpus (domain adaptation, as transformers' run_mlm.py): " + ModelArgument.Help + "; its vocabulary, lower-casing, config and weights are kept (a model without an MLM head, e.g. a sentence-transformers BertModel, gets a new one tied to the word embeddings); the run folder loads with bert finetune --model and in transformers (BertForMaskedLM / BertForPreTraining)" });
        var objective = Add(new Option<string?>("--objective") { Description = "mlm (masked LM alone, single-segment examples) or mlm+nsp (with next-sentence prediction on sentence pairs); default: mlm+nsp for a new model, mlm with --model (as run_mlm.py; an NSP head the model has is kept unchanged)" });
        var preset = Add(new Option<string?>("--model-preset") { Description = "Size of a new model: tiny, mini, small, medium, base, large, or seed (2 layers, hidden 128, max length 64: the d2l.ai setting; the default)" });
        var vocab = Add(new Option<string?>("--vocab") { Description = "An existing vocab.txt for a new model (default: learn a WordPiece vocabulary from the corpus)" });
        var vocabSize = Add(new Option<int?>("--vocab-size") { Description = $"Size of the learned vocabulary (default {PretrainingRunOptions.DefaultVocabSize})" });
        var cased = Add(new Option<bool>("--cased") { Description = "New model: keep case and accents (default: lower-case and strip accents)" });
        var maxSeq = Add(new Option<int?>("--max-seq-length") { Description = "Tokens per example including [CLS]/[SEP] (default: the preset's max positions, at most 128)" });
        var batch = Add(new Option<int>("--batch-size") { Description = "Sequences per optimizer step (per micro-batch with --gradient-accumulation)", DefaultValueFactory = _ => d.BatchSize });
        var accum = Add(new Option<int>("--gradient-accumulation") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => d.GradientAccumulation });
        var maxSteps = Add(new Option<long?>("--max-steps") { Description = $"Optimizer steps to train (default: {PretrainingRunOptions.DefaultMaxSteps}, about 9.8 epochs of WikiText-2 at batch 128, unless --epochs is given)" });
        var epochs = Add(new Option<int?>("--epochs") { Description = "Passes over the training examples (instead of --max-steps)" });
        var lr = Add(new Option<double?>("--learning-rate") { Description = $"Peak learning rate (AdamW; default {PretrainingRunOptions.DefaultLearningRate:0e0}, with --model {PretrainingRunOptions.ContinuedLearningRate:0e0}, run_mlm.py's)" });
        var warmup = Add(new Option<long?>("--warmup-steps") { Description = "Linear warmup steps (default: 10% of the steps)" });
        var evalEvery = Add(new Option<long>("--eval-every") { Description = "Evaluate on the validation split and checkpoint every N steps", DefaultValueFactory = _ => d.EvalEvery });
        var maxPred = Add(new Option<int>("--max-predictions-per-seq") { Description = "At most this many masked tokens per sequence", DefaultValueFactory = _ => d.MaxPredictionsPerSeq });
        var wwm = Add(new Option<bool>("--whole-word-mask") { Description = "Mask all WordPieces of a word together" });
        var evalExamples = Add(new Option<int>("--max-eval-examples") { Description = "Validation examples used at each evaluation (a fixed random subset)", DefaultValueFactory = _ => d.MaxValidationExamples ?? 4096 });
        var staticMask = Add(new Option<bool>("--static-mask") { Description = "Use the same masks every epoch (default: fresh masks each epoch)" });
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --output from its last checkpoint (its saved options are used)" };

        var cmd = new Command("pretrain", "Pre-train a BERT (masked LM + next sentence prediction) on a corpus with Google BERT's recipe, or continue pre-training a model (--model) on your own corpus");
        foreach (var opt in o) cmd.Add(opt);
        cmd.Add(resume);
        cmd.SetAction(r =>
        {
            var runOptions = new PretrainingRunOptions
            {
                Output = r.GetValue(output)!, Resume = r.GetValue(resume),
                Corpus = r.GetValue(corpus)!, ValidationCorpus = r.GetValue(validation), DataDir = r.GetValue(dataDir),
                Model = ModelArgument.Pin(ctx, r.GetValue(model)), Objective = r.GetValue(objective)?.ToLowerInvariant(),
                ModelPreset = r.GetValue(preset), Vocab = r.GetValue(vocab), VocabSize = r.GetValue(vocabSize), LowerCase = !r.GetValue(cased),
                MaxSeqLength = r.GetValue(maxSeq), BatchSize = r.GetValue(batch), MaxPredictionsPerSeq = r.GetValue(maxPred),
                WholeWordMask = r.GetValue(wwm), StaticMask = r.GetValue(staticMask), MaxValidationExamples = r.GetValue(evalExamples),
                LearningRate = r.GetValue(lr), WarmupSteps = r.GetValue(warmup), MaxSteps = r.GetValue(maxSteps), Epochs = r.GetValue(epochs),
                GradientAccumulation = r.GetValue(accum), EvalEvery = r.GetValue(evalEvery),
                Seed = r.GetValue(Cli.Seed), Threads = r.GetValue(Cli.Threads), Precision = r.GetValue(Cli.Precision) ?? d.Precision, Device = r.GetValue(Cli.Device)!,
            };
            var result = TrainingConsole.Run(ctx, "pretrain", (events, cancel) => PretrainingRun.Run(runOptions, events, cancel));
            var final = result.Training.LastEvaluation;
            if (final.Count > 0)
                ctx.Err.WriteLine($"MLM accuracy {final.GetValueOrDefault("mlm_accuracy"):P2} (always predicting the most frequent token: {result.MajorityBaselineAccuracy:P2}), perplexity {final.GetValueOrDefault("perplexity"):F1}" +
                    (final.TryGetValue("nsp_accuracy", out var nsp) ? $", NSP accuracy {nsp:P2}" : "") +
                    (result.StartEvaluation is { } start ? $"; the starting model: MLM accuracy {start["mlm_accuracy"]:P2}, perplexity {start["perplexity"]:F1}" : ""));
            ctx.Err.WriteLine(result.Completed
                ? $"run folder: {result.RunFolder} (best model at its root; try: bert fill-mask {result.RunFolder} \"the [MASK] of the city\")"
                : TrainingConsole.NotFinished(result.RunFolder, runOptions.Output));
            return 0;
        });
        return cmd;
    }
}
